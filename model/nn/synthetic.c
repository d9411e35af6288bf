/* The synthetic DeepGen 1.0 (synthetic.h): a virtual model folder of configs, a tokenizer and
 * generated weights. */
#include "synthetic.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "dg_error.h"
#include "dg_i18n.h"
#include "dit_layout.h"
#include "llm_layout.h"
#include "vae_layout.h"
#include "vfolder.h"
#include "vit_layout.h"

/* The LLM's prefix in the VLM's file (the flat layout, MODEL.md §2.3) and the vision tower's. */
#define LLM_PREFIX "model."
#define VIT_PREFIX "visual."

typedef struct {
  guint layers; /* 0 = full depth */
  guint64 seed;
  char *rest; /* what follows the root: "transformer/config.json", "vlm", "" */
} Spec;

static void
spec_clear (Spec *s)
{
  g_clear_pointer (&s->rest, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Spec, spec_clear)

/* "synthetic:layers=1,seed=7/vlm/config.json" */
static gboolean
parse_path (const char *path, Spec *s, GError **error)
{
  memset (s, 0, sizeof *s);
  const char *p = path + strlen (DG_SYNTHETIC_PREFIX);
  const char *slash = strchr (p, '/');
  g_autofree char *opts = slash ? g_strndup (p, (gsize) (slash - p)) : g_strdup (p);
  s->rest = g_strdup (slash ? slash + 1 : "");
  g_auto (GStrv) parts = g_strsplit (opts, ",", -1);
  for (guint i = 0; parts[i]; i++) {
    guint64 v;
    if (!*parts[i])
      continue;
    if (g_str_has_prefix (parts[i], "layers=") && g_ascii_string_to_unsigned (parts[i] + 7, 10, 0, 256, &v, NULL))
      s->layers = (guint) v;
    else if (g_str_has_prefix (parts[i], "seed=") &&
             g_ascii_string_to_unsigned (parts[i] + 5, 10, 0, G_MAXUINT64, &v, NULL))
      s->seed = v;
    else {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                   _ ("%s: unknown synthetic model option '%s' (layers=N, seed=S)"), path, parts[i]);
      spec_clear (s);
      return FALSE;
    }
  }
  return TRUE;
}

char *
dg_synthetic_path (guint layers, guint64 seed)
{
  return g_strdup_printf (DG_SYNTHETIC_PREFIX "layers=%u,seed=%" G_GUINT64_FORMAT, layers, seed);
}

/* ---- configs -------------------------------------------------------------------------------- */

static JsonArray *
index_array (guint first, guint end)
{
  JsonArray *a = json_array_new ();
  for (guint i = first; i < end; i++) json_array_add_int_element (a, i);
  return a;
}

/* The built-in config of @component with @layers applied (synthetic.h). */
static char *
config_text (const char *component, guint layers)
{
  const char *json = dg_plan_deepgen_1_0_config (component);
  if (!json)
    return NULL;
  if (layers == 0 || g_str_equal (component, "vae") || g_str_equal (component, "scheduler"))
    return g_strdup (json);
  g_autoptr (JsonNode) root = json_from_string (json, NULL);
  g_assert (root); /* constant text */
  JsonObject *o = json_node_get_object (root);
  if (g_str_equal (component, "vlm")) {
    JsonObject *text = json_object_get_object_member (o, "text_config");
    JsonObject *vision = json_object_get_object_member (o, "vision_config");
    json_object_set_int_member (text, "num_hidden_layers", MAX (layers, 2));
    json_object_set_int_member (vision, "depth", layers);
    json_object_set_array_member (vision, "fullatt_block_indexes", index_array (layers - 1, layers));
  } else if (g_str_equal (component, "connector"))
    json_object_set_int_member (o, "num_hidden_layers", layers);
  else if (g_str_equal (component, "transformer")) {
    /* the real model's dual-attention blocks are its first ones (0…12) */
    guint n_dual = (guint) json_array_get_length (json_object_get_array_member (o, "dual_attention_layers"));
    json_object_set_int_member (o, "num_layers", layers);
    json_object_set_array_member (o, "dual_attention_layers", index_array (0, MIN (layers, n_dual)));
  }
  return json_to_string (root, FALSE);
}

void
dg_synthetic_plan_model (guint layers, DgPlanModel *m)
{
  dg_plan_model_deepgen_1_0 (m);
  if (layers == 0)
    return;
  GError *error = NULL;
  g_autofree char *vlm = config_text ("vlm", layers), *conn = config_text ("connector", layers);
  g_autofree char *dit = config_text ("transformer", layers);
  if (!dg_qwen_vl_config_parse (vlm, -1, "synthetic vlm", &m->vlm, &error) ||
      !dg_connector_config_parse (conn, -1, "synthetic connector", &m->connector, &error) ||
      !dg_dit_config_parse (dit, -1, "synthetic transformer", &m->dit, &error))
    g_error ("synthetic DeepGen config: %s", error->message); /* made from constant text */
  m->n_selected = dg_llm_layout_selected (&m->vlm.text, NULL);
}

/* ---- the tokenizer -------------------------------------------------------------------------- */

/* Qwen2.5-VL's special tokens and their ids (the config's token ids refer to these). */
static const struct {
  const char *content;
  gint id;
} SPECIAL[] = {
  { "<|endoftext|>", 151643 },    { "<|im_start|>", 151644 },   { "<|im_end|>", 151645 },
  { "<|vision_start|>", 151652 }, { "<|vision_end|>", 151653 }, { "<|vision_pad|>", 151654 },
  { "<|image_pad|>", 151655 },    { "<|video_pad|>", 151656 },
};

/* Qwen2's pre-tokenizer split (tokenizer.json "pre_tokenizer"). */
static const char QWEN2_SPLIT[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                                  "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static void
add_byte_level (JsonBuilder *b, gboolean prefix_space, gboolean trim, gboolean regex)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "ByteLevel");
  json_builder_set_member_name (b, "add_prefix_space");
  json_builder_add_boolean_value (b, prefix_space);
  json_builder_set_member_name (b, "trim_offsets");
  json_builder_add_boolean_value (b, trim);
  json_builder_set_member_name (b, "use_regex");
  json_builder_add_boolean_value (b, regex);
  json_builder_end_object (b);
}

/* A tokenizer.json: the 256 byte-level symbols of GPT-2's byte-to-unicode table as ids 0…255
 * (id = byte), no merges, the special tokens above. */
static char *
tokenizer_text (void)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_string_value (b, "1.0");
  json_builder_set_member_name (b, "added_tokens");
  json_builder_begin_array (b);
  for (guint i = 0; i < G_N_ELEMENTS (SPECIAL); i++) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "id");
    json_builder_add_int_value (b, SPECIAL[i].id);
    json_builder_set_member_name (b, "content");
    json_builder_add_string_value (b, SPECIAL[i].content);
    const char *flags[] = { "single_word", "lstrip", "rstrip", "normalized" };
    for (guint f = 0; f < G_N_ELEMENTS (flags); f++) {
      json_builder_set_member_name (b, flags[f]);
      json_builder_add_boolean_value (b, FALSE);
    }
    json_builder_set_member_name (b, "special");
    json_builder_add_boolean_value (b, TRUE);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "normalizer");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "NFC");
  json_builder_end_object (b);
  json_builder_set_member_name (b, "pre_tokenizer");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "Sequence");
  json_builder_set_member_name (b, "pretokenizers");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "Split");
  json_builder_set_member_name (b, "pattern");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "Regex");
  json_builder_add_string_value (b, QWEN2_SPLIT);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "behavior");
  json_builder_add_string_value (b, "Isolated");
  json_builder_set_member_name (b, "invert");
  json_builder_add_boolean_value (b, FALSE);
  json_builder_end_object (b);
  add_byte_level (b, FALSE, TRUE, FALSE);
  json_builder_end_array (b);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "post_processor");
  add_byte_level (b, FALSE, FALSE, FALSE);
  json_builder_set_member_name (b, "decoder");
  add_byte_level (b, TRUE, TRUE, TRUE);
  json_builder_set_member_name (b, "model");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "BPE");
  json_builder_set_member_name (b, "vocab");
  json_builder_begin_object (b);
  for (guint byte = 0, extra = 0; byte < 256; byte++) {
    /* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for 256 + n */
    gboolean printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || byte >= 174;
    gunichar c = printable ? byte : 256 + extra++;
    char utf8[8] = { 0 };
    g_unichar_to_utf8 (c, utf8);
    json_builder_set_member_name (b, utf8);
    json_builder_add_int_value (b, byte);
  }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "merges");
  json_builder_begin_array (b);
  json_builder_end_array (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

static char *
read_text (const char *path, GError **error)
{
  g_auto (Spec) s = { 0 };
  if (!parse_path (path, &s, error))
    return NULL;
  g_auto (GStrv) parts = g_strsplit (s.rest, "/", 3);
  const char *dir = parts[0] ? parts[0] : "", *file = parts[0] && parts[1] ? parts[1] : NULL;
  char *text = NULL;
  if (g_str_equal (dir, "tokenizer") && g_strcmp0 (file, "tokenizer.json") == 0)
    text = tokenizer_text ();
  else if (!file || g_str_equal (file, "config.json") || g_str_equal (file, "scheduler_config.json"))
    text = config_text (dir, s.layers);
  if (!text)
    g_set_error (error, DG_ERROR, DG_ERROR_MISSING, _ ("%s: the synthetic model has no such file"), path);
  return text;
}

/* ---- weights -------------------------------------------------------------------------------- */

typedef struct {
  DgSafetensors *st;
  const char *prefix;
  DgDType dtype;
  guint64 seed;
} Gen;

static guint64
name_seed (guint64 seed, const char *component, const char *name)
{
  guint64 h = 1469598103934665603ull ^ seed; /* FNV-1a */
  for (const char *p = component; *p; p++) h = (h ^ (guchar) *p) * 1099511628211ull;
  h = (h ^ '/') * 1099511628211ull;
  for (const char *p = name; *p; p++) h = (h ^ (guchar) *p) * 1099511628211ull;
  return h;
}

static gboolean
add_tensor (const DgLayoutTensor *t, gpointer data, GError **error)
{
  Gen *g = data;
  if (t->kind == DG_LAYOUT_COMPUTED)
    return TRUE; /* not stored: made by the loader */
  g_autofree char *name = g_strconcat (g->prefix, t->name, NULL);
  float mean = 0, std;
  gint64 fan_in = 1;
  for (guint i = 1; i < t->ndim; i++) fan_in *= t->shape[i];
  switch (t->kind) {
  case DG_LAYOUT_LINEAR:
  case DG_LAYOUT_MATRIX: std = (float) (1.0 / sqrt ((double) MAX (fan_in, 1))); break;
  case DG_LAYOUT_VECTOR:
    if (g_str_has_suffix (t->name, "bias"))
      std = 0.02f;
    else { /* a norm's weight */
      mean = 1;
      std = 0;
    }
    break;
  case DG_LAYOUT_HOST: std = strstr (t->name, "pos_embed") ? (float) G_SQRT2 / 2 : 0.02f; break;
  default: std = 0.02f; break;
  }
  /* host tensors are read from their data (embedding rows, the position crop) */
  return dg_safetensors_add_generated (g->st, name, g->dtype, t->ndim, t->shape, mean, std,
                                       name_seed (g->seed, dg_safetensors_display_name (g->st), name),
                                       t->kind == DG_LAYOUT_HOST, error);
}

static DgSafetensors *
open_weights (const char *path, GError **error)
{
  g_auto (Spec) s = { 0 };
  if (!parse_path (path, &s, error))
    return NULL;
  DgPlanModel m;
  dg_synthetic_plan_model (s.layers, &m);
  g_autofree char *display = g_strdup_printf ("synthetic %s", s.rest);
  g_autoptr (DgSafetensors) st = dg_safetensors_new_generated (display);
  Gen g = { st, "", DG_DTYPE_BF16, s.seed };
  gboolean ok;
  if (g_str_equal (s.rest, "vlm")) {
    g.prefix = VIT_PREFIX;
    ok = dg_vit_layout_weights (&m.vlm.vision, add_tensor, &g, error);
    g.prefix = LLM_PREFIX;
    ok = ok && dg_llm_layout_weights (&m.vlm.text, add_tensor, &g, error);
  } else if (g_str_equal (s.rest, "connector")) {
    g.dtype = DG_DTYPE_F32; /* as released (MODEL.md §8) */
    const DgConnectorShape shape = dg_plan_connector_shape (&m);
    ok = dg_connector_layout_weights (&shape, add_tensor, &g, error);
  } else if (g_str_equal (s.rest, "transformer"))
    ok = dg_dit_layout_weights (&m.dit, add_tensor, &g, error);
  else if (g_str_equal (s.rest, "vae"))
    ok = dg_vae_layout_weights (&m.vae, DG_VAE_LAYOUT_ENCODER | DG_VAE_LAYOUT_DECODER, add_tensor, &g, error);
  else {
    g_set_error (error, DG_ERROR, DG_ERROR_MISSING, _ ("%s: the synthetic model has no such weights"), path);
    return NULL;
  }
  return ok ? g_steal_pointer (&st) : NULL;
}

static const DgVirtualFolders PROVIDER = { DG_SYNTHETIC_PREFIX, read_text, open_weights };

void
dg_synthetic_register (void)
{
  dg_vfolder_register (&PROVIDER);
}
