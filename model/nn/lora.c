/* Merging PEFT LoRA adapters into the Qwen2.5-VL weights at load (lora.h, MODEL.md §3). */
#include "lora.h"

#include <math.h>
#include <string.h>

#include "dg_i18n.h"
#include "json_strict.h"

#define ADAPTER_CONFIG "adapter_config.json"
#define ADAPTER_WEIGHTS "adapter_model.safetensors"
#define MAX_CONFIG_BYTES (1u << 20)

typedef struct {
  const DgTensorInfo *a, *b;
  gboolean embedding;
  gboolean used;
} LoraModule;

struct _DgLora {
  DgSafetensors *st;
  char *display;
  gint64 rank;
  double scale;
  GHashTable *modules[DG_LORA_N_PARTS]; /* module path → LoraModule */
};

void
dg_lora_free (DgLora *lora)
{
  if (!lora)
    return;
  for (int p = 0; p < DG_LORA_N_PARTS; p++)
    if (lora->modules[p])
      g_hash_table_unref (lora->modules[p]);
  dg_safetensors_free (lora->st);
  g_free (lora->display);
  g_free (lora);
}

gboolean
dg_lora_folder_has_adapter (const char *folder)
{
  g_autofree char *p = g_build_filename (folder, ADAPTER_CONFIG, NULL);
  return g_file_test (p, G_FILE_TEST_IS_REGULAR);
}

/* ---- adapter_config.json ------------------------------------------------------------------ */

static gboolean
config_bool (JsonObject *o, const char *key)
{
  JsonNode *n = json_object_get_member (o, key);
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_BOOLEAN && json_node_get_boolean (n);
}

static gboolean
config_number (JsonObject *o, const char *key, const char *display, double *out, GError **error)
{
  JsonNode *n = json_object_get_member (o, key);
  if (!n || !JSON_NODE_HOLDS_VALUE (n) ||
      (json_node_get_value_type (n) != G_TYPE_INT64 && json_node_get_value_type (n) != G_TYPE_DOUBLE)) {
    g_set_error (error, DG_ERROR, DG_ERROR_CONFIG, _ ("%s: '%s' must be a number"), display, key);
    return FALSE;
  }
  *out = json_node_get_double (n);
  if (!(*out > 0) || !isfinite (*out)) {
    g_set_error (error, DG_ERROR, DG_ERROR_CONFIG, _ ("%s: '%s' must be positive, it is %g"), display, key, *out);
    return FALSE;
  }
  return TRUE;
}

/* A string member, @fallback when absent; anything else present (a number, null, an object) is a
 * config error rather than a guess. */
static gboolean
config_string (JsonObject *o, const char *key, const char *fallback, const char *display, const char **out,
               GError **error)
{
  JsonNode *n = json_object_get_member (o, key);
  if (!n) {
    *out = fallback;
    return TRUE;
  }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING) {
    g_set_error (error, DG_ERROR, DG_ERROR_CONFIG, _ ("%s: '%s' must be a string"), display, key);
    return FALSE;
  }
  *out = json_node_get_string (n);
  return TRUE;
}

static gboolean
object_nonempty (JsonObject *o, const char *key)
{
  JsonNode *n = json_object_get_member (o, key);
  return n && JSON_NODE_HOLDS_OBJECT (n) && json_object_get_size (json_node_get_object (n)) > 0;
}

/* The variants we do not implement are refused rather than merged wrongly. */
static gboolean
read_config (DgLora *lora, const char *path, GError **error)
{
  g_autofree char *display = dg_display_name (path);
  g_autoptr (JsonObject) o = dg_json_load_object (path, display, MAX_CONFIG_BYTES, 16, error);
  if (!o)
    return FALSE;
  const char *type, *bias;
  if (!config_string (o, "peft_type", NULL, display, &type, error) ||
      !config_string (o, "bias", "none", display, &bias, error))
    return FALSE;
  const char *unsupported = NULL;
  if (!type || strcmp (type, "LORA") != 0)
    unsupported = _ ("peft_type other than \"LORA\"");
  else if (config_bool (o, "use_dora"))
    unsupported = "use_dora (DoRA)";
  else if (config_bool (o, "fan_in_fan_out"))
    unsupported = "fan_in_fan_out";
  else if (config_bool (o, "lora_bias") || strcmp (bias, "none") != 0)
    unsupported = _ ("trained biases (bias / lora_bias)");
  else if (object_nonempty (o, "rank_pattern") || object_nonempty (o, "alpha_pattern"))
    unsupported = _ ("per-module rank_pattern / alpha_pattern");
  if (unsupported) {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 _ ("%s: this adapter uses %s, which DeepGen cannot merge; merge it with PEFT "
                    "(merge_and_unload) and load the merged model instead"),
                 display, unsupported);
    return FALSE;
  }
  double r, alpha;
  if (!config_number (o, "r", display, &r, error) || !config_number (o, "lora_alpha", display, &alpha, error))
    return FALSE;
  lora->rank = (gint64) r;
  /* PEFT: scaling = lora_alpha / r, or lora_alpha / sqrt(r) with rsLoRA. */
  lora->scale = config_bool (o, "use_rslora") ? alpha / sqrt (r) : alpha / r;
  return TRUE;
}

/* ---- tensor names ------------------------------------------------------------------------- */

/* "…q_proj.lora_A.weight", "…q_proj.lora_A.default.weight", "…embed_tokens.lora_embedding_A(.default)":
 * the module path before the suffix, which matrix, and whether it is an embedding adapter. */
static gboolean
split_key (const char *key, char **module, gboolean *is_b, gboolean *embedding)
{
  static const struct {
    const char *tag;
    gboolean b, emb;
  } tags[] = {
    { ".lora_A.", FALSE, FALSE },
    { ".lora_B.", TRUE, FALSE },
    { ".lora_embedding_A", FALSE, TRUE },
    { ".lora_embedding_B", TRUE, TRUE },
  };
  for (guint i = 0; i < G_N_ELEMENTS (tags); i++) {
    const char *at = strstr (key, tags[i].tag);
    if (!at)
      continue;
    const char *rest = at + strlen (tags[i].tag);
    /* Linear: "weight" or "<adapter>.weight"; embedding: "" or ".<adapter>". */
    gboolean ok = tags[i].emb ? (*rest == '\0' || (*rest == '.' && !strchr (rest + 1, '.')))
                              : (strcmp (rest, "weight") == 0 || g_str_has_suffix (rest, ".weight"));
    if (!ok)
      return FALSE;
    *module = g_strndup (key, (gsize) (at - key));
    *is_b = tags[i].b;
    *embedding = tags[i].emb;
    return TRUE;
  }
  return FALSE;
}

/* The part and the path inside it: "…visual.blocks.0.attn.qkv" → vision "blocks.0.attn.qkv";
 * "…(language_)model.layers.3.mlp.up_proj" → text "layers.3.mlp.up_proj"; -1 for anything else. */
static int
module_part (const char *path, char **inner)
{
  g_auto (GStrv) parts = g_strsplit (path, ".", -1);
  guint n = g_strv_length (parts);
  for (guint i = 0; i < n; i++) {
    int part = -1;
    if (strcmp (parts[i], "visual") == 0 && i + 1 < n) {
      *inner = g_strjoinv (".", parts + i + 1);
      return DG_LORA_VISION;
    }
    if (strcmp (parts[i], "layers") == 0 || strcmp (parts[i], "embed_tokens") == 0)
      part = DG_LORA_TEXT;
    if (part >= 0) {
      *inner = g_strjoinv (".", parts + i);
      return part;
    }
  }
  return -1;
}

static gboolean
index_tensors (DgLora *lora, GError **error)
{
  for (int p = 0; p < DG_LORA_N_PARTS; p++)
    lora->modules[p] = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; i < dg_safetensors_n_tensors (lora->st); i++) {
    const DgTensorInfo *t = dg_safetensors_tensor (lora->st, i);
    g_autofree char *module = NULL, *inner = NULL;
    gboolean is_b, emb;
    if (!split_key (t->name, &module, &is_b, &emb)) {
      g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                   _ ("%s: tensor '%s' is not a LoRA A/B matrix; only plain LoRA adapters can be merged"),
                   lora->display, t->name);
      return FALSE;
    }
    if (t->ndim != 2 || !(DG_DTYPES_FLOAT & DG_DTYPE_BIT (t->dtype))) {
      g_set_error (error, DG_ERROR, DG_ERROR_SHAPE, _ ("%s: LoRA tensor '%s' must be a 2-D float matrix"),
                   lora->display, t->name);
      return FALSE;
    }
    int part = module_part (module, &inner);
    if (part < 0) {
      g_debug ("%s: adapter on '%s' ignored (not part of the vision tower or the language model)", lora->display,
               module);
      continue;
    }
    LoraModule *m = g_hash_table_lookup (lora->modules[part], inner);
    if (!m) {
      m = g_new0 (LoraModule, 1);
      m->embedding = emb;
      g_hash_table_insert (lora->modules[part], g_strdup (inner), m);
    }
    if (m->embedding != emb || (is_b ? m->b : m->a)) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: module '%s' has conflicting LoRA tensors ('%s')"),
                   lora->display, module, t->name);
      return FALSE;
    }
    *(is_b ? &m->b : &m->a) = t;
  }
  return TRUE;
}

/* Every module has both matrices with the configured rank: A [r, in] (embedding [r, vocab]),
 * B [out, r] (embedding [dim, r]). */
static gboolean
check_modules (DgLora *lora, GError **error)
{
  for (int p = 0; p < DG_LORA_N_PARTS; p++) {
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init (&it, lora->modules[p]);
    while (g_hash_table_iter_next (&it, &key, &value)) {
      LoraModule *m = value;
      if (!m->a || !m->b) {
        g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: module '%s' lacks its LoRA %s matrix"), lora->display,
                     (const char *) key, m->a ? "B" : "A");
        return FALSE;
      }
      if (m->a->shape[0] != lora->rank || m->b->shape[1] != lora->rank) {
        g_set_error (error, DG_ERROR, DG_ERROR_SHAPE,
                     _ ("%s: module '%s' has LoRA matrices of rank %" PRId64 " / %" PRId64
                        ", but adapter_config.json says r = %" PRId64),
                     lora->display, (const char *) key, m->a->shape[0], m->b->shape[1], lora->rank);
        return FALSE;
      }
    }
  }
  return TRUE;
}

DgLora *
dg_lora_open (const char *path, GError **error)
{
  g_autofree char *dir = g_file_test (path, G_FILE_TEST_IS_DIR) ? g_strdup (path) : g_path_get_dirname (path);
  g_autofree char *weights =
      g_file_test (path, G_FILE_TEST_IS_DIR) ? g_build_filename (dir, ADAPTER_WEIGHTS, NULL) : g_strdup (path);
  g_autofree char *config = g_build_filename (dir, ADAPTER_CONFIG, NULL);
  g_autoptr (DgLora) lora = g_new0 (DgLora, 1);
  lora->display = dg_display_name (weights);
  if (!read_config (lora, config, error))
    return NULL;
  lora->st = dg_safetensors_open (weights, error);
  if (!lora->st || !index_tensors (lora, error) || !check_modules (lora, error))
    return NULL;
  return g_steal_pointer (&lora);
}

guint
dg_lora_n_modules (const DgLora *lora, DgLoraPart part)
{
  return g_hash_table_size (lora->modules[part]);
}

double
dg_lora_scale (const DgLora *lora)
{
  return lora->scale;
}
const char *
dg_lora_display_name (const DgLora *lora)
{
  return lora->display;
}

/* ---- merging ------------------------------------------------------------------------------ */

static float *
to_f32 (const DgTensorInfo *t, GError **error)
{
  float *h = g_try_new (float, MAX (t->n_elements, 1));
  if (!h) {
    g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("out of memory reading '%s'"), t->name);
    return NULL;
  }
  if (!dg_tensor_to_f32 (t, h, error)) {
    g_free (h);
    return NULL;
  }
  return h;
}

static LoraModule *
find_module (DgLora *lora, DgLoraPart part, const char *module, gboolean embedding, GError **error)
{
  LoraModule *m = lora ? g_hash_table_lookup (lora->modules[part], module) : NULL;
  if (m && m->embedding != embedding) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: module '%s' has %s LoRA tensors, expected %s ones"),
                 lora->display, module, m->embedding ? "Embedding" : "Linear", embedding ? "Embedding" : "Linear");
    return NULL;
  }
  return m;
}

gboolean
dg_lora_merge_linear (DgLora *lora, DgLoraPart part, const char *module, float *w, gint64 rows, gint64 cols,
                      gboolean *merged, GError **error)
{
  *merged = FALSE;
  GError *local = NULL;
  LoraModule *m = find_module (lora, part, module, FALSE, &local);
  if (local) {
    g_propagate_error (error, local);
    return FALSE;
  }
  if (!m)
    return TRUE;
  if (m->a->shape[1] != cols || m->b->shape[0] != rows) {
    g_set_error (error, DG_ERROR, DG_ERROR_SHAPE,
                 _ ("%s: LoRA of '%s' is for a [%" PRId64 ", %" PRId64 "] weight, the model's is [%" PRId64 ", %" PRId64
                    "] — the adapter belongs to another model"),
                 lora->display, module, m->b->shape[0], m->a->shape[1], rows, cols);
    return FALSE;
  }
  g_autofree float *a = to_f32 (m->a, error);
  g_autofree float *b = a ? to_f32 (m->b, error) : NULL;
  if (!b)
    return FALSE;
  const gint64 r = lora->rank;
  const float s = (float) lora->scale;
  /* PEFT's order: delta = (B·A) in fp32, then · scale, then W + delta. */
  for (gint64 o = 0; o < rows; o++)
    for (gint64 i = 0; i < cols; i++) {
      float d = 0;
      for (gint64 j = 0; j < r; j++) d += b[o * r + j] * a[j * cols + i];
      w[o * cols + i] += d * s;
    }
  m->used = TRUE;
  *merged = TRUE;
  return TRUE;
}

gboolean
dg_lora_take_embedding (DgLora *lora, DgLoraPart part, const char *module, gint64 vocab, gint64 dim,
                        DgLoraEmbedding *out, gboolean *found, GError **error)
{
  memset (out, 0, sizeof *out);
  *found = FALSE;
  GError *local = NULL;
  LoraModule *m = find_module (lora, part, module, TRUE, &local);
  if (local) {
    g_propagate_error (error, local);
    return FALSE;
  }
  if (!m)
    return TRUE;
  if (m->a->shape[1] != vocab || m->b->shape[0] != dim) {
    g_set_error (error, DG_ERROR, DG_ERROR_SHAPE,
                 _ ("%s: the embedding LoRA of '%s' is for %" PRId64 " × %" PRId64 ", the model's table is %" PRId64
                    " × %" PRId64),
                 lora->display, module, m->a->shape[1], m->b->shape[0], vocab, dim);
    return FALSE;
  }
  out->a = to_f32 (m->a, error);
  out->b = out->a ? to_f32 (m->b, error) : NULL;
  if (!out->b) {
    dg_lora_embedding_clear (out);
    return FALSE;
  }
  out->rank = lora->rank;
  out->vocab = vocab;
  out->dim = dim;
  out->scale = (float) lora->scale;
  m->used = TRUE;
  *found = TRUE;
  return TRUE;
}

void
dg_lora_embedding_clear (DgLoraEmbedding *e)
{
  g_clear_pointer (&e->a, g_free);
  g_clear_pointer (&e->b, g_free);
}

void
dg_lora_embedding_add_row (const DgLoraEmbedding *e, gint64 id, float *row)
{
  /* (B·A)ᵀ[id, c] = Σ_j B[c, j] · A[j, id], summed in j order like the Linear case. */
  for (gint64 c = 0; c < e->dim; c++) {
    float d = 0;
    for (gint64 j = 0; j < e->rank; j++) d += e->b[c * e->rank + j] * e->a[j * e->vocab + id];
    row[c] += d * e->scale;
  }
}

gboolean
dg_lora_weights_matrix (DgWeights *w, DgLora *lora, DgLoraPart part, const char *module, gint64 rows, gint64 cols,
                        VkcTensor *out, GError **error)
{
  if (!lora || !g_hash_table_contains (lora->modules[part], module))
    return dg_weights_linear (w, out, rows, cols, error, "%s.weight", module);
  g_autofree char *name = g_strconcat (w->prefix, module, ".weight", NULL);
  const DgTensorInfo *t =
      dg_safetensors_expect (w->st, name, DG_DTYPES_WEIGHT, 2, (const gint64[]) { rows, cols }, error);
  if (!t)
    return FALSE;
  g_autofree float *h = to_f32 (t, error);
  gboolean merged;
  if (!h || !dg_lora_merge_linear (lora, part, module, h, rows, cols, &merged, error))
    return FALSE;
  return dg_weights_upload_linear (w, out, rows, cols, h, error);
}

gboolean
dg_lora_check_all_used (const DgLora *lora, DgLoraPart part, GError **error)
{
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init (&it, lora->modules[part]);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (!((LoraModule *) value)->used) {
      g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                   _ ("%s: the adapter changes '%s', which DeepGen's %s does not have or cannot merge into — "
                      "is the adapter for this model?"),
                   lora->display, (const char *) key, part == DG_LORA_TEXT ? _ ("language model") : _ ("vision tower"));
      return FALSE;
    }
  return TRUE;
}
