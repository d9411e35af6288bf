#include "config.h"

#include <math.h>
#include <string.h>

#include "dg_error.h"
#include "dg_i18n.h"
#include "json_strict.h"

/* Real configs are a few KB and three levels deep. */
#define MAX_CONFIG_BYTES (16u * 1024u * 1024u)
#define MAX_CONFIG_DEPTH 32
/* Bounds for sanity checks only: far above any model this code targets. */
#define MAX_WIDTH (1u << 20)
#define MAX_HEADS 4096u
#define MAX_VOCAB (1u << 24)
#define MAX_SIZE (1u << 24)

/* ---- reading typed keys ------------------------------------------------------------------- */

/* One JSON object and how its keys are spelled in messages ("text_config." + key). A NULL object
 * is a section the file leaves out: every key then takes its default. */
typedef struct {
  const char *display;
  JsonObject *obj;
  const char *prefix;
} Src;

/* A key set to null means "use the default" in the Python classes, the same as leaving it out. */
static JsonNode *
src_get (const Src *s, const char *key)
{
  if (s->obj == NULL)
    return NULL;
  JsonNode *n = json_object_get_member (s->obj, key);
  return (n == NULL || JSON_NODE_HOLDS_NULL (n)) ? NULL : n;
}

static char *
node_repr (JsonNode *n)
{
  /* json-glib prints doubles with 17 digits (1e-6 becomes 9.9999999999999995e-07). */
  if (JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_DOUBLE)
    return g_strdup_printf ("%g", json_node_get_double (n));
  g_autofree char *s = json_to_string (n, FALSE);
  if (g_utf8_strlen (s, -1) <= 48)
    return g_steal_pointer (&s);
  g_autofree char *head = g_utf8_substring (s, 0, 45);
  return g_strconcat (head, "...", NULL);
}

static gboolean
fail_missing (const Src *s, const char *key, GError **error)
{
  g_set_error (error, DG_ERROR, DG_ERROR_MISSING,
               _ ("%s: the required key '%s%s' is missing — is this the config of the right component?"), s->display,
               s->prefix, key);
  return FALSE;
}

static gboolean
fail_value (const Src *s, const char *key, JsonNode *n, const char *expected, GError **error)
{
  g_autofree char *have = node_repr (n);
  g_set_error (error, DG_ERROR, DG_ERROR_CONFIG, _ ("%s: '%s%s' must be %s, but it is %s"), s->display, s->prefix, key,
               expected, have);
  return FALSE;
}

static gboolean
node_is_int (JsonNode *n)
{
  return JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_INT64;
}

static gboolean
int_in_range (JsonNode *n, gint64 lo, gint64 hi, gint64 *out)
{
  if (!node_is_int (n))
    return FALSE;
  gint64 v = json_node_get_int (n);
  if (v < lo || v > hi)
    return FALSE;
  *out = v;
  return TRUE;
}

static gboolean
get_uint (const Src *s, const char *key, gboolean required, guint def, guint lo, guint hi, guint *out, GError **error)
{
  JsonNode *n = src_get (s, key);
  gint64 v;
  if (n == NULL) {
    if (required)
      return fail_missing (s, key, error);
    *out = def;
    return TRUE;
  }
  if (!int_in_range (n, lo, hi, &v)) {
    g_autofree char *want = g_strdup_printf (_ ("an integer from %u to %u"), lo, hi);
    return fail_value (s, key, n, want, error);
  }
  *out = (guint) v;
  return TRUE;
}

/* Token ids: an integer ≥ 0, or (eos in some configs) a list whose first entry is used. */
static gboolean
get_token_id (const Src *s, const char *key, gint def, gint *out, GError **error)
{
  JsonNode *n = src_get (s, key);
  gint64 v;
  if (n == NULL) {
    *out = def;
    return TRUE;
  }
  JsonNode *first = n;
  if (JSON_NODE_HOLDS_ARRAY (n) && json_array_get_length (json_node_get_array (n)) > 0)
    first = json_array_get_element (json_node_get_array (n), 0);
  if (!int_in_range (first, 0, G_MAXINT, &v))
    return fail_value (s, key, n, _ ("a token id (an integer ≥ 0)"), error);
  *out = (gint) v;
  return TRUE;
}

static gboolean
get_double (const Src *s, const char *key, gboolean required, double def, gboolean positive, double *out,
            GError **error)
{
  JsonNode *n = src_get (s, key);
  if (n == NULL) {
    if (required)
      return fail_missing (s, key, error);
    *out = def;
    return TRUE;
  }
  double v = NAN;
  if (node_is_int (n))
    v = (double) json_node_get_int (n);
  else if (JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_DOUBLE)
    v = json_node_get_double (n);
  if (!isfinite (v) || (positive && !(v > 0)))
    return fail_value (s, key, n, positive ? _ ("a positive number") : _ ("a number"), error);
  *out = v;
  return TRUE;
}

static gboolean
get_bool (const Src *s, const char *key, gboolean def, gboolean *out, GError **error)
{
  JsonNode *n = src_get (s, key);
  if (n == NULL) {
    *out = def;
    return TRUE;
  }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
    return fail_value (s, key, n, _ ("true or false"), error);
  *out = json_node_get_boolean (n);
  return TRUE;
}

static gboolean
get_string (const Src *s, const char *key, const char *def, const char **out, GError **error)
{
  JsonNode *n = src_get (s, key);
  if (n == NULL) {
    *out = def;
    return TRUE;
  }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return fail_value (s, key, n, _ ("a string"), error);
  *out = json_node_get_string (n);
  return TRUE;
}

/* A list of integers in [lo, hi] with at most max_n entries; absent → a copy of @def. */
static gboolean
get_uint_list (const Src *s, const char *key, gboolean required, const guint *def, guint n_def, guint max_n, guint lo,
               guint hi, guint *out, guint *n_out, GError **error)
{
  JsonNode *n = src_get (s, key);
  if (n == NULL) {
    if (required)
      return fail_missing (s, key, error);
    if (n_def > 0) /* def may be NULL for an empty default */
      memcpy (out, def, n_def * sizeof (guint));
    *n_out = n_def;
    return TRUE;
  }
  g_autofree char *want = g_strdup_printf (_ ("a list of at most %u integers from %u to %u"), max_n, lo, hi);
  if (!JSON_NODE_HOLDS_ARRAY (n))
    return fail_value (s, key, n, want, error);
  JsonArray *a = json_node_get_array (n);
  guint len = json_array_get_length (a);
  if (len > max_n)
    return fail_value (s, key, n, want, error);
  for (guint i = 0; i < len; i++) {
    gint64 v;
    if (!int_in_range (json_array_get_element (a, i), lo, hi, &v))
      return fail_value (s, key, n, want, error);
    out[i] = (guint) v;
  }
  *n_out = len;
  return TRUE;
}

/* A nested section ("text_config"): absent or null gives a NULL object (all defaults). */
static gboolean
get_section (const Src *s, const char *key, Src *out, char **prefix_owned, GError **error)
{
  JsonNode *n = src_get (s, key);
  *out = (Src) { s->display, NULL, "" };
  if (n == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (n))
    return fail_value (s, key, n, _ ("an object"), error);
  *prefix_owned = g_strconcat (s->prefix, key, ".", NULL);
  out->obj = json_node_get_object (n);
  out->prefix = *prefix_owned;
  return TRUE;
}

static gboolean
get_activation (const Src *s, const char *key, const char *def, DgActivation *out, GError **error)
{
  const char *name;
  if (!get_string (s, key, def, &name, error))
    return FALSE;
  if (strcmp (name, "silu") == 0 || strcmp (name, "swish") == 0)
    *out = DG_ACT_SILU;
  else if (strcmp (name, "gelu") == 0)
    *out = DG_ACT_GELU;
  else if (strcmp (name, "gelu_pytorch_tanh") == 0 || strcmp (name, "gelu_new") == 0)
    *out = DG_ACT_GELU_TANH;
  else {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 _ ("%s: '%s%s' is \"%s\"; DeepGen implements silu, gelu and gelu_pytorch_tanh"), s->display, s->prefix,
                 key, name);
    return FALSE;
  }
  return TRUE;
}

const char *
dg_activation_name (DgActivation act)
{
  switch (act) {
  case DG_ACT_SILU: return "silu";
  case DG_ACT_GELU: return "gelu";
  case DG_ACT_GELU_TANH: return "gelu_pytorch_tanh";
  }
  return "?";
}

/* A consistency error between keys: the message says which and why. */
G_GNUC_PRINTF (3, 4) static gboolean fail_config (GError **error, const char *display, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, DG_ERROR, DG_ERROR_CONFIG, "%s: %s", display, msg);
  return FALSE;
}

/* A file that names its class must name the one we read; a different one means the user pointed
 * at the wrong component folder. */
static gboolean
check_class (const Src *root, const char *expected, GError **error)
{
  const char *cls;
  if (!get_string (root, "_class_name", expected, &cls, error))
    return FALSE;
  if (strcmp (cls, expected) != 0) {
    g_set_error (error, DG_ERROR, DG_ERROR_CONFIG,
                 _ ("%s is the config of %s, not %s — is this the right component folder?"), root->display, cls,
                 expected);
    return FALSE;
  }
  return TRUE;
}

/* ---- loading ------------------------------------------------------------------------------ */

typedef gboolean (*ParseFunc) (const Src *root, gpointer out, GError **error);

static gboolean
load_with (const char *path, const char *default_name, ParseFunc parse, gpointer out, GError **error)
{
  g_autofree char *file =
      g_file_test (path, G_FILE_TEST_IS_DIR) ? g_build_filename (path, default_name, NULL) : g_strdup (path);
  g_autofree char *display = dg_display_name (file);
  g_autoptr (JsonObject) obj = dg_json_load_object (file, display, MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH, error);
  if (obj == NULL)
    return FALSE;
  Src root = { display, obj, "" };
  return parse (&root, out, error);
}

static gboolean
parse_with (const char *json, gssize len, const char *display, ParseFunc parse, gpointer out, GError **error)
{
  g_return_val_if_fail (json != NULL, FALSE);
  if (display == NULL)
    display = "config";
  gsize n = len < 0 ? strlen (json) : (gsize) len;
  g_autoptr (JsonObject) obj = dg_json_parse_object (json, n, display, _ ("file"), MAX_CONFIG_DEPTH, error);
  if (obj == NULL)
    return FALSE;
  Src root = { display, obj, "" };
  return parse (&root, out, error);
}

/* ---- Qwen2.5-VL --------------------------------------------------------------------------- */

static gboolean
parse_rope (const Src *t, DgQwenTextConfig *c, GError **error)
{
  /* transformers ≤ 4.56 writes rope_scaling; newer versions rope_parameters (with rope_theta inside). */
  g_autofree char *prefix = NULL;
  Src rope;
  const char *key = src_get (t, "rope_scaling") ? "rope_scaling" : "rope_parameters";
  if (!get_section (t, key, &rope, &prefix, error))
    return FALSE;
  if (rope.obj == NULL) {
    Src named = { t->display, NULL, t->prefix };
    return fail_missing (&named, "rope_scaling", error);
  }
  const char *type = NULL;
  if (!get_string (&rope, "rope_type", NULL, &type, error))
    return FALSE;
  if (type == NULL && !get_string (&rope, "type", "default", &type, error))
    return FALSE;
  if (strcmp (type, "default") != 0 && strcmp (type, "mrope") != 0) {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 _ ("%s: '%s%s' has rope type \"%s\"; DeepGen implements only Qwen2.5-VL's default M-RoPE"), t->display,
                 t->prefix, key, type);
    return FALSE;
  }
  guint n = 0;
  if (!get_uint_list (&rope, "mrope_section", TRUE, NULL, 0, 3, 1, MAX_WIDTH, c->mrope_section, &n, error))
    return FALSE;
  if (n != 3)
    return fail_config (error, t->display, _ ("'%smrope_section' must have 3 entries (t, h, w), not %u"), rope.prefix,
                        n);
  if (!get_double (t, "rope_theta", FALSE, 1e6, TRUE, &c->rope_theta, error))
    return FALSE;
  if (src_get (&rope, "rope_theta") && !get_double (&rope, "rope_theta", FALSE, 1e6, TRUE, &c->rope_theta, error))
    return FALSE;
  return TRUE;
}

static gboolean
parse_qwen_text (const Src *t, DgQwenTextConfig *c, GError **error)
{
  /* Defaults: transformers Qwen2_5_VLTextConfig (which describes the 72B model). */
  if (!get_uint (t, "num_hidden_layers", FALSE, 80, 1, DG_CONFIG_MAX_LAYERS, &c->n_layers, error) ||
      !get_uint (t, "hidden_size", FALSE, 8192, 1, MAX_WIDTH, &c->hidden, error) ||
      !get_uint (t, "num_attention_heads", FALSE, 64, 1, MAX_HEADS, &c->n_heads, error) ||
      !get_uint (t, "intermediate_size", FALSE, 29568, 1, MAX_WIDTH, &c->intermediate, error) ||
      !get_uint (t, "vocab_size", FALSE, 152064, 1, MAX_VOCAB, &c->vocab_size, error) ||
      !get_uint (t, "max_position_embeddings", FALSE, 32768, 1, G_MAXINT, &c->max_position_embeddings, error) ||
      !get_double (t, "rms_norm_eps", FALSE, 1e-5, TRUE, &c->rms_eps, error) ||
      !get_bool (t, "tie_word_embeddings", FALSE, &c->tie_word_embeddings, error) ||
      !get_activation (t, "hidden_act", "silu", &c->act, error))
    return FALSE;
  /* An explicit null means "same as num_attention_heads" (plain MHA); absent means the class default 8. */
  guint kv_default = (t->obj && json_object_has_member (t->obj, "num_key_value_heads")) ? c->n_heads : 8;
  if (!get_uint (t, "num_key_value_heads", FALSE, kv_default, 1, MAX_HEADS, &c->n_kv_heads, error))
    return FALSE;

  gboolean sliding;
  if (!get_bool (t, "use_sliding_window", FALSE, &sliding, error))
    return FALSE;
  if (sliding) {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 _ ("%s: '%suse_sliding_window' is true; DeepGen implements only full causal attention"), t->display,
                 t->prefix);
    return FALSE;
  }

  if (src_get (t, "head_dim")) {
    if (!get_uint (t, "head_dim", FALSE, 0, 1, MAX_WIDTH, &c->head_dim, error))
      return FALSE;
  } else if (c->hidden % c->n_heads != 0)
    return fail_config (error, t->display, _ ("'%shidden_size' (%u) is not divisible by 'num_attention_heads' (%u)"),
                        t->prefix, c->hidden, c->n_heads);
  else
    c->head_dim = c->hidden / c->n_heads;

  if (c->n_heads % c->n_kv_heads != 0)
    return fail_config (error, t->display,
                        _ ("'%snum_attention_heads' (%u) is not a multiple of 'num_key_value_heads' (%u)"), t->prefix,
                        c->n_heads, c->n_kv_heads);
  return parse_rope (t, c, error);
}

static gboolean
parse_qwen_vision (const Src *v, DgQwenVisionConfig *c, GError **error)
{
  static const guint fullatt_default[] = { 7, 15, 23, 31 };
  /* Defaults: transformers Qwen2_5_VLVisionConfig. Qwen's own 3B file still says in_chans and
   * spatial_patch_size, which transformers ignores; they agree with the defaults, so read them
   * only as a fallback. */
  guint in_chans = 3, spatial_patch = 14;
  if (!get_uint (v, "in_chans", FALSE, 3, 1, 64, &in_chans, error) ||
      !get_uint (v, "spatial_patch_size", FALSE, 14, 1, 1024, &spatial_patch, error) ||
      !get_uint (v, "depth", FALSE, 32, 1, DG_CONFIG_MAX_LAYERS, &c->depth, error) ||
      !get_uint (v, "hidden_size", FALSE, 3584, 1, MAX_WIDTH, &c->hidden, error) ||
      !get_uint (v, "num_heads", FALSE, 16, 1, MAX_HEADS, &c->n_heads, error) ||
      !get_uint (v, "intermediate_size", FALSE, 3420, 1, MAX_WIDTH, &c->intermediate, error) ||
      !get_uint (v, "out_hidden_size", FALSE, 3584, 1, MAX_WIDTH, &c->out_hidden, error) ||
      !get_uint (v, "in_channels", FALSE, in_chans, 1, 64, &c->in_channels, error) ||
      !get_uint (v, "patch_size", FALSE, spatial_patch, 1, 1024, &c->patch_size, error) ||
      !get_uint (v, "temporal_patch_size", FALSE, 2, 1, 64, &c->temporal_patch_size, error) ||
      !get_uint (v, "spatial_merge_size", FALSE, 2, 1, 64, &c->spatial_merge_size, error) ||
      !get_uint (v, "window_size", FALSE, 112, 1, MAX_SIZE, &c->window_size, error) ||
      !get_uint (v, "tokens_per_second", FALSE, 4, 0, 1000000, &c->tokens_per_second, error) ||
      !get_activation (v, "hidden_act", "silu", &c->act, error) ||
      !get_uint_list (v, "fullatt_block_indexes", FALSE, fullatt_default, G_N_ELEMENTS (fullatt_default),
                      DG_CONFIG_MAX_LAYERS, 0, DG_CONFIG_MAX_LAYERS - 1, c->fullatt_block_indexes, &c->n_fullatt,
                      error))
    return FALSE;

  if (c->hidden % c->n_heads != 0)
    return fail_config (error, v->display, _ ("'%shidden_size' (%u) is not divisible by 'num_heads' (%u)"), v->prefix,
                        c->hidden, c->n_heads);
  c->head_dim = c->hidden / c->n_heads;
  /* The 2-D rotary gives a quarter of each head to rows, a quarter to columns (MODEL.md §2.2). */
  if (c->head_dim % 4 != 0)
    return fail_config (error, v->display,
                        _ ("the vision head size %u ('%shidden_size' / 'num_heads') is not a "
                           "multiple of 4, which the 2-D rotary embedding needs"),
                        c->head_dim, v->prefix);
  guint merge_px = c->patch_size * c->spatial_merge_size;
  if (c->window_size % merge_px != 0)
    return fail_config (error, v->display,
                        _ ("'%swindow_size' (%u) is not a multiple of patch_size × spatial_merge_size (%u)"), v->prefix,
                        c->window_size, merge_px);
  for (guint i = 0; i < c->n_fullatt; i++)
    if (c->fullatt_block_indexes[i] >= c->depth)
      return fail_config (error, v->display, _ ("'%sfullatt_block_indexes' names block %u, but 'depth' is %u"),
                          v->prefix, c->fullatt_block_indexes[i], c->depth);
  return TRUE;
}

static gboolean
parse_qwen (const Src *root, gpointer out, GError **error)
{
  DgQwenVLConfig c = { 0 };
  const char *model_type;
  if (!get_string (root, "model_type", "qwen2_5_vl", &model_type, error))
    return FALSE;
  if (strcmp (model_type, "qwen2_5_vl") != 0) {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 _ ("%s: 'model_type' is \"%s\"; DeepGen's VLM is a Qwen2.5-VL (qwen2_5_vl) — is this the vlm/ "
                    "folder of DeepGen-1.0-diffusers?"),
                 root->display, model_type);
    return FALSE;
  }

  g_autofree char *text_prefix = NULL, *vision_prefix = NULL;
  Src text, vision;
  if (!get_section (root, "text_config", &text, &text_prefix, error) ||
      !get_section (root, "vision_config", &vision, &vision_prefix, error))
    return FALSE;
  c.layout = text.obj ? DG_QWEN_LAYOUT_NESTED : DG_QWEN_LAYOUT_FLAT;
  if (text.obj == NULL)
    text = *root; /* the flat layout keeps the text model at the top level */

  if (!parse_qwen_text (&text, &c.text, error) || !parse_qwen_vision (&vision, &c.vision, error))
    return FALSE;

  /* Image token ids belong to the top level in both layouts (Qwen2_5_VLConfig); bos/eos to the
   * text model, though older files keep them at the top level too. */
  if (!get_token_id (root, "image_token_id", 151655, &c.image_token_id, error) ||
      !get_token_id (root, "video_token_id", 151656, &c.video_token_id, error) ||
      !get_token_id (root, "vision_start_token_id", 151652, &c.vision_start_token_id, error) ||
      !get_token_id (root, "vision_end_token_id", 151653, &c.vision_end_token_id, error) ||
      !get_token_id (root, "bos_token_id", -1, &c.bos_token_id, error) ||
      !get_token_id (root, "eos_token_id", -1, &c.eos_token_id, error) ||
      !get_token_id (&text, "bos_token_id", c.bos_token_id, &c.bos_token_id, error) ||
      !get_token_id (&text, "eos_token_id", c.eos_token_id, &c.eos_token_id, error))
    return FALSE;

  if (c.vision.out_hidden != c.text.hidden)
    return fail_config (error, root->display,
                        _ ("the vision merger output ('%sout_hidden_size', %u) differs from the text width "
                           "('%shidden_size', %u)"),
                        vision.prefix, c.vision.out_hidden, text.prefix, c.text.hidden);
  guint sum = c.text.mrope_section[0] + c.text.mrope_section[1] + c.text.mrope_section[2];
  if (2 * sum != c.text.head_dim)
    return fail_config (error, root->display,
                        _ ("the M-RoPE sections (%u+%u+%u) must add up to half the head size (%u / 2)"),
                        c.text.mrope_section[0], c.text.mrope_section[1], c.text.mrope_section[2], c.text.head_dim);
  const struct {
    const char *key;
    gint id;
  } ids[] = {
    { "image_token_id", c.image_token_id },
    { "video_token_id", c.video_token_id },
    { "vision_start_token_id", c.vision_start_token_id },
    { "vision_end_token_id", c.vision_end_token_id },
  };
  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    if ((guint) ids[i].id >= c.text.vocab_size)
      return fail_config (error, root->display, _ ("'%s' (%d) is outside the vocabulary ('vocab_size' %u)"), ids[i].key,
                          ids[i].id, c.text.vocab_size);

  *(DgQwenVLConfig *) out = c;
  return TRUE;
}

gboolean
dg_qwen_vl_config_load (const char *path, DgQwenVLConfig *out, GError **error)
{
  return load_with (path, "config.json", parse_qwen, out, error);
}

gboolean
dg_qwen_vl_config_parse (const char *json, gssize len, const char *display, DgQwenVLConfig *out, GError **error)
{
  return parse_with (json, len, display, parse_qwen, out, error);
}

/* ---- Connector ---------------------------------------------------------------------------- */

static gboolean
parse_connector (const Src *root, gpointer out, GError **error)
{
  DgConnectorConfig c = { 0 };
  /* Defaults: DeepGen ConnectorConfig (SigLIP-base sized). */
  if (!get_uint (root, "hidden_size", FALSE, 768, 1, MAX_WIDTH, &c.hidden, error) ||
      !get_uint (root, "intermediate_size", FALSE, 3072, 1, MAX_WIDTH, &c.intermediate, error) ||
      !get_uint (root, "num_hidden_layers", FALSE, 12, 1, DG_CONFIG_MAX_LAYERS, &c.n_layers, error) ||
      !get_uint (root, "num_attention_heads", FALSE, 12, 1, MAX_HEADS, &c.n_heads, error) ||
      !get_double (root, "layer_norm_eps", FALSE, 1e-6, TRUE, &c.eps, error) ||
      !get_activation (root, "hidden_act", "gelu_pytorch_tanh", &c.act, error))
    return FALSE;
  if (c.hidden % c.n_heads != 0)
    return fail_config (error, root->display, _ ("'hidden_size' (%u) is not divisible by 'num_attention_heads' (%u)"),
                        c.hidden, c.n_heads);
  c.head_dim = c.hidden / c.n_heads;
  *(DgConnectorConfig *) out = c;
  return TRUE;
}

gboolean
dg_connector_config_load (const char *path, DgConnectorConfig *out, GError **error)
{
  return load_with (path, "config.json", parse_connector, out, error);
}

gboolean
dg_connector_config_parse (const char *json, gssize len, const char *display, DgConnectorConfig *out, GError **error)
{
  return parse_with (json, len, display, parse_connector, out, error);
}

/* ---- DiT ---------------------------------------------------------------------------------- */

static gboolean
parse_dit (const Src *root, gpointer out, GError **error)
{
  DgDitConfig c = { 0 };
  const char *qk_norm;
  /* Defaults: diffusers SD3Transformer2DModel (which describes SD3-Medium). */
  if (!check_class (root, "SD3Transformer2DModel", error) ||
      !get_uint (root, "sample_size", FALSE, 128, 1, MAX_SIZE, &c.sample_size, error) ||
      !get_uint (root, "patch_size", FALSE, 2, 1, 64, &c.patch_size, error) ||
      !get_uint (root, "in_channels", FALSE, 16, 1, 4096, &c.in_channels, error) ||
      !get_uint (root, "out_channels", FALSE, c.in_channels, 1, 4096, &c.out_channels, error) ||
      !get_uint (root, "num_layers", FALSE, 18, 1, DG_CONFIG_MAX_LAYERS, &c.n_layers, error) ||
      !get_uint (root, "attention_head_dim", FALSE, 64, 1, MAX_WIDTH, &c.head_dim, error) ||
      !get_uint (root, "num_attention_heads", FALSE, 18, 1, MAX_HEADS, &c.n_heads, error) ||
      !get_uint (root, "joint_attention_dim", FALSE, 4096, 1, MAX_WIDTH, &c.joint_attention_dim, error) ||
      !get_uint (root, "caption_projection_dim", FALSE, 1152, 1, MAX_WIDTH, &c.caption_projection_dim, error) ||
      !get_uint (root, "pooled_projection_dim", FALSE, 2048, 1, MAX_WIDTH, &c.pooled_projection_dim, error) ||
      !get_uint (root, "pos_embed_max_size", FALSE, 96, 1, MAX_SIZE, &c.pos_embed_max_size, error) ||
      !get_string (root, "qk_norm", "", &qk_norm, error) ||
      !get_uint_list (root, "dual_attention_layers", FALSE, NULL, 0, DG_CONFIG_MAX_LAYERS, 0, DG_CONFIG_MAX_LAYERS - 1,
                      c.dual_attention_layers, &c.n_dual, error))
    return FALSE;
  /* pos_embed_max_size: null in the file means no stored table (diffusers' default is 96). */
  if (json_object_has_member (root->obj, "pos_embed_max_size") && src_get (root, "pos_embed_max_size") == NULL)
    c.pos_embed_max_size = 0;

  if (qk_norm[0] == '\0')
    c.qk_norm = DG_QK_NORM_NONE;
  else if (strcmp (qk_norm, "rms_norm") == 0)
    c.qk_norm = DG_QK_NORM_RMS;
  else if (strcmp (qk_norm, "layer_norm") == 0)
    c.qk_norm = DG_QK_NORM_LAYER;
  else {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 _ ("%s: 'qk_norm' is \"%s\"; DeepGen implements null, rms_norm and layer_norm"), root->display,
                 qk_norm);
    return FALSE;
  }

  if ((guint64) c.n_heads * c.head_dim > MAX_WIDTH)
    return fail_config (error, root->display, _ ("'num_attention_heads' × 'attention_head_dim' is too large"));
  c.inner_dim = c.n_heads * c.head_dim;
  /* The context embedder's output enters the blocks, whose width is the inner dimension. */
  if (c.caption_projection_dim != c.inner_dim)
    return fail_config (
        error, root->display,
        _ ("'caption_projection_dim' (%u) must equal 'num_attention_heads' × 'attention_head_dim' (%u)"),
        c.caption_projection_dim, c.inner_dim);
  for (guint i = 0; i < c.n_dual; i++)
    if (c.dual_attention_layers[i] >= c.n_layers)
      return fail_config (error, root->display, _ ("'dual_attention_layers' names block %u, but 'num_layers' is %u"),
                          c.dual_attention_layers[i], c.n_layers);
  *(DgDitConfig *) out = c;
  return TRUE;
}

gboolean
dg_dit_config_load (const char *path, DgDitConfig *out, GError **error)
{
  return load_with (path, "config.json", parse_dit, out, error);
}

gboolean
dg_dit_config_parse (const char *json, gssize len, const char *display, DgDitConfig *out, GError **error)
{
  return parse_with (json, len, display, parse_dit, out, error);
}

gboolean
dg_dit_config_is_dual (const DgDitConfig *c, guint layer)
{
  for (guint i = 0; i < c->n_dual; i++)
    if (c->dual_attention_layers[i] == layer)
      return TRUE;
  return FALSE;
}

/* ---- VAE ---------------------------------------------------------------------------------- */

/* The block type lists must match block_out_channels and name the only blocks AutoencoderKL
 * (and our VAE) builds. */
static gboolean
check_block_types (const Src *root, const char *key, const char *expected, guint n_blocks, GError **error)
{
  JsonNode *n = src_get (root, key);
  if (n == NULL) {
    /* diffusers' default is a single block; it matches only a single block_out_channels entry. */
    if (n_blocks != 1)
      return fail_missing (root, key, error);
    return TRUE;
  }
  g_autofree char *want = g_strdup_printf (_ ("a list of %u \"%s\""), n_blocks, expected);
  if (!JSON_NODE_HOLDS_ARRAY (n) || json_array_get_length (json_node_get_array (n)) != n_blocks)
    return fail_value (root, key, n, want, error);
  JsonArray *a = json_node_get_array (n);
  for (guint i = 0; i < n_blocks; i++) {
    JsonNode *e = json_array_get_element (a, i);
    if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING)
      return fail_value (root, key, n, want, error);
    if (strcmp (json_node_get_string (e), expected) != 0) {
      g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED, _ ("%s: '%s' has a \"%s\"; DeepGen's VAE builds only %s"),
                   root->display, key, json_node_get_string (e), expected);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
parse_vae (const Src *root, gpointer out, GError **error)
{
  static const guint block_default[] = { 64 };
  DgVaeConfig c = { 0 };
  /* Defaults: diffusers AutoencoderKL (the SD1 VAE). */
  if (!check_class (root, "AutoencoderKL", error) ||
      !get_uint (root, "in_channels", FALSE, 3, 1, 64, &c.in_channels, error) ||
      !get_uint (root, "out_channels", FALSE, 3, 1, 64, &c.out_channels, error) ||
      !get_uint (root, "latent_channels", FALSE, 4, 1, 4096, &c.latent_channels, error) ||
      !get_uint_list (root, "block_out_channels", FALSE, block_default, 1, DG_CONFIG_MAX_BLOCKS, 1, MAX_WIDTH,
                      c.block_out_channels, &c.n_blocks, error) ||
      !get_uint (root, "layers_per_block", FALSE, 1, 1, 64, &c.layers_per_block, error) ||
      !get_uint (root, "norm_num_groups", FALSE, 32, 1, MAX_WIDTH, &c.norm_num_groups, error) ||
      !get_activation (root, "act_fn", "silu", &c.act, error) ||
      !get_double (root, "scaling_factor", FALSE, 0.18215, TRUE, &c.scaling_factor, error) ||
      !get_double (root, "shift_factor", FALSE, 0.0, FALSE, &c.shift_factor, error) ||
      !get_bool (root, "mid_block_add_attention", TRUE, &c.mid_block_add_attention, error) ||
      !get_bool (root, "use_quant_conv", TRUE, &c.use_quant_conv, error) ||
      !get_bool (root, "use_post_quant_conv", TRUE, &c.use_post_quant_conv, error) ||
      !get_bool (root, "force_upcast", TRUE, &c.force_upcast, error))
    return FALSE;
  if (c.n_blocks == 0)
    return fail_config (error, root->display, _ ("'block_out_channels' is empty"));
  if (!check_block_types (root, "down_block_types", "DownEncoderBlock2D", c.n_blocks, error) ||
      !check_block_types (root, "up_block_types", "UpDecoderBlock2D", c.n_blocks, error))
    return FALSE;
  for (guint i = 0; i < c.n_blocks; i++)
    if (c.block_out_channels[i] % c.norm_num_groups != 0)
      return fail_config (error, root->display,
                          _ ("'block_out_channels' entry %u (%u) is not divisible by 'norm_num_groups' (%u)"), i,
                          c.block_out_channels[i], c.norm_num_groups);
  *(DgVaeConfig *) out = c;
  return TRUE;
}

gboolean
dg_vae_config_load (const char *path, DgVaeConfig *out, GError **error)
{
  return load_with (path, "config.json", parse_vae, out, error);
}

gboolean
dg_vae_config_parse (const char *json, gssize len, const char *display, DgVaeConfig *out, GError **error)
{
  return parse_with (json, len, display, parse_vae, out, error);
}

/* ---- Scheduler ---------------------------------------------------------------------------- */

/* Options of FlowMatchEulerDiscreteScheduler that change the sigmas; we implement none of them,
 * and silently ignoring one would give a different image. */
static gboolean
refuse_option (const Src *root, const char *key, GError **error)
{
  JsonNode *n = src_get (root, key);
  if (n == NULL ||
      (JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_BOOLEAN && !json_node_get_boolean (n)))
    return TRUE;
  g_autofree char *have = node_repr (n);
  g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED, _ ("%s: '%s' is %s; DeepGen's scheduler does not implement it"),
               root->display, key, have);
  return FALSE;
}

static gboolean
parse_scheduler (const Src *root, gpointer out, GError **error)
{
  DgSchedulerConfig c = { 0 };
  const char *shift_type;
  /* Defaults: diffusers FlowMatchEulerDiscreteScheduler. */
  if (!check_class (root, "FlowMatchEulerDiscreteScheduler", error) ||
      !get_uint (root, "num_train_timesteps", FALSE, 1000, 1, 1000000, &c.num_train_timesteps, error) ||
      !get_double (root, "shift", FALSE, 1.0, TRUE, &c.shift, error) ||
      !get_bool (root, "use_dynamic_shifting", FALSE, &c.use_dynamic_shifting, error) ||
      !get_double (root, "base_shift", FALSE, 0.5, FALSE, &c.base_shift, error) ||
      !get_double (root, "max_shift", FALSE, 1.15, FALSE, &c.max_shift, error) ||
      !get_uint (root, "base_image_seq_len", FALSE, 256, 1, G_MAXINT, &c.base_image_seq_len, error) ||
      !get_uint (root, "max_image_seq_len", FALSE, 4096, 1, G_MAXINT, &c.max_image_seq_len, error) ||
      !get_string (root, "time_shift_type", "exponential", &shift_type, error))
    return FALSE;
  static const char *const refused[] = {
    "invert_sigmas",          "shift_terminal",  "use_karras_sigmas",
    "use_exponential_sigmas", "use_beta_sigmas", "stochastic_sampling",
  };
  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    if (!refuse_option (root, refused[i], error))
      return FALSE;
  if (strcmp (shift_type, "exponential") == 0)
    c.time_shift_type = DG_TIME_SHIFT_EXPONENTIAL;
  else if (strcmp (shift_type, "linear") == 0)
    c.time_shift_type = DG_TIME_SHIFT_LINEAR;
  else {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 _ ("%s: 'time_shift_type' is \"%s\"; it must be exponential or linear"), root->display, shift_type);
    return FALSE;
  }
  /* The dynamic shift interpolates between these two sequence lengths. */
  if (c.use_dynamic_shifting && c.max_image_seq_len <= c.base_image_seq_len)
    return fail_config (error, root->display,
                        _ ("'max_image_seq_len' (%u) must be larger than 'base_image_seq_len' (%u)"),
                        c.max_image_seq_len, c.base_image_seq_len);
  *(DgSchedulerConfig *) out = c;
  return TRUE;
}

gboolean
dg_scheduler_config_load (const char *path, DgSchedulerConfig *out, GError **error)
{
  return load_with (path, "scheduler_config.json", parse_scheduler, out, error);
}

gboolean
dg_scheduler_config_parse (const char *json, gssize len, const char *display, DgSchedulerConfig *out, GError **error)
{
  return parse_with (json, len, display, parse_scheduler, out, error);
}

/* ---- model_index.json --------------------------------------------------------------------- */

void
dg_model_index_free (DgModelIndex *idx)
{
  if (idx == NULL)
    return;
  for (guint i = 0; i < idx->n_components; i++) {
    g_free (idx->components[i].name);
    g_free (idx->components[i].library);
    g_free (idx->components[i].class_name);
  }
  g_free (idx->components);
  g_free (idx->class_name);
  g_free (idx->module);
  g_free (idx->diffusers_version);
  g_free (idx);
}

static gboolean
string_or_null (JsonNode *n, char **out)
{
  if (JSON_NODE_HOLDS_NULL (n)) {
    *out = NULL;
    return TRUE;
  }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return FALSE;
  *out = g_strdup (json_node_get_string (n));
  return TRUE;
}

static gboolean
parse_model_index (const Src *root, gpointer out, GError **error)
{
  g_autoptr (DgModelIndex) idx = g_new0 (DgModelIndex, 1);
  const char *version;

  /* _class_name: "Pipeline", or [module, class] for a pipeline shipped as a script. */
  JsonNode *cls = src_get (root, "_class_name");
  if (cls == NULL)
    return fail_missing (root, "_class_name", error);
  if (JSON_NODE_HOLDS_ARRAY (cls) && json_array_get_length (json_node_get_array (cls)) == 2) {
    JsonArray *a = json_node_get_array (cls);
    if (!string_or_null (json_array_get_element (a, 0), &idx->module) ||
        !string_or_null (json_array_get_element (a, 1), &idx->class_name) || idx->class_name == NULL)
      return fail_value (root, "_class_name", cls, _ ("a class name or [module, class]"), error);
  } else if (!string_or_null (cls, &idx->class_name))
    return fail_value (root, "_class_name", cls, _ ("a class name or [module, class]"), error);
  if (!get_string (root, "_diffusers_version", NULL, &version, error))
    return FALSE;
  idx->diffusers_version = g_strdup (version);

  /* Components are the keys without a leading underscore whose value is [library, class];
   * other keys are pipeline settings (booleans and such). */
  GArray *comps = g_array_new (FALSE, TRUE, sizeof (DgModelComponent));
  JsonObjectIter iter;
  const char *key;
  JsonNode *n;
  gboolean ok = TRUE;
  json_object_iter_init_ordered (&iter, root->obj);
  while (ok && json_object_iter_next_ordered (&iter, &key, &n)) {
    if (key[0] == '_' || !JSON_NODE_HOLDS_ARRAY (n))
      continue;
    JsonArray *a = json_node_get_array (n);
    DgModelComponent mc = { 0 };
    if (json_array_get_length (a) != 2 || !string_or_null (json_array_get_element (a, 0), &mc.library) ||
        !string_or_null (json_array_get_element (a, 1), &mc.class_name)) {
      g_free (mc.library);
      ok = fail_value (root, key, n, _ ("[library, class] (strings or null)"), error);
      break;
    }
    mc.name = g_strdup (key);
    g_array_append_val (comps, mc);
  }
  idx->n_components = comps->len;
  idx->components = (DgModelComponent *) g_array_free (comps, FALSE);
  if (!ok)
    return FALSE;
  *(DgModelIndex **) out = g_steal_pointer (&idx);
  return TRUE;
}

DgModelIndex *
dg_model_index_load (const char *path, GError **error)
{
  DgModelIndex *idx = NULL;
  return load_with (path, "model_index.json", parse_model_index, &idx, error) ? idx : NULL;
}

DgModelIndex *
dg_model_index_parse (const char *json, gssize len, const char *display, GError **error)
{
  DgModelIndex *idx = NULL;
  return parse_with (json, len, display, parse_model_index, &idx, error) ? idx : NULL;
}

const DgModelComponent *
dg_model_index_find (const DgModelIndex *idx, const char *name)
{
  for (guint i = 0; i < idx->n_components; i++)
    if (g_strcmp0 (idx->components[i].name, name) == 0)
      return &idx->components[i];
  return NULL;
}
