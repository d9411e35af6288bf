/* The language model's weights and activations, declared once (llm_layout.h). */
#include "llm_layout.h"

#define LLM_SELECT_STRIDE 6 /* range(num_layers − 1, 0, −6) (MODEL.md §1.7) */

guint
dg_llm_layout_selected (const DgQwenTextConfig *c, guint *layers)
{
  guint n = 0;
  for (gint k = (gint) c->n_layers - 1; k > 0; k -= LLM_SELECT_STRIDE) {
    if (layers)
      layers[n] = (guint) k;
    n++;
  }
  return n;
}

typedef struct {
  DgLayoutVisit visit;
  gpointer data;
  GError **error;
  gboolean ok;
} Walk;

static void
emit (Walk *w, DgLayoutKind kind, int slot, int layer, int sub, gint64 rows, gint64 cols, const char *name)
{
  if (!w->ok)
    return;
  DgLayoutTensor t = {
    .kind = kind, .ndim = cols ? 2 : 1, .shape = { rows, cols }, .slot = slot, .layer = layer, .sub = sub
  };
  g_strlcpy (t.name, name, sizeof t.name);
  w->ok = w->visit (&t, w->data, w->error);
}

static void
linear (Walk *w, int slot, guint layer, gint64 out, gint64 in, gboolean bias, const char *module)
{
  char n[128];
  g_snprintf (n, sizeof n, "layers.%u.%s.weight", layer, module);
  emit (w, DG_LAYOUT_LINEAR, slot, (int) layer, 0, out, in, n);
  if (bias) {
    g_snprintf (n, sizeof n, "layers.%u.%s.bias", layer, module);
    emit (w, DG_LAYOUT_VECTOR, slot, (int) layer, 1, out, 0, n);
  }
}

gboolean
dg_llm_layout_weights (const DgQwenTextConfig *c, DgLayoutVisit visit, gpointer user_data, GError **error)
{
  Walk w = { visit, user_data, error, TRUE };
  const gint64 H = c->hidden, Q = (gint64) c->n_heads * c->head_dim, KV = (gint64) c->n_kv_heads * c->head_dim;
  const gint64 I = c->intermediate;
  emit (&w, DG_LAYOUT_HOST, LLM_EMBED, -1, 0, c->vocab_size, H, "embed_tokens.weight");
  for (guint i = 0; i < c->n_layers && w.ok; i++) {
    char n[128];
    g_snprintf (n, sizeof n, "layers.%u.input_layernorm.weight", i);
    emit (&w, DG_LAYOUT_VECTOR, LLM_IN_NORM, (int) i, 0, H, 0, n);
    g_snprintf (n, sizeof n, "layers.%u.post_attention_layernorm.weight", i);
    emit (&w, DG_LAYOUT_VECTOR, LLM_POST_NORM, (int) i, 0, H, 0, n);
    linear (&w, LLM_Q, i, Q, H, TRUE, "self_attn.q_proj");
    linear (&w, LLM_K, i, KV, H, TRUE, "self_attn.k_proj");
    linear (&w, LLM_V, i, KV, H, TRUE, "self_attn.v_proj");
    linear (&w, LLM_O, i, H, Q, FALSE, "self_attn.o_proj"); /* no bias (MODEL.md §2.1) */
    linear (&w, LLM_GATE, i, I, H, FALSE, "mlp.gate_proj");
    linear (&w, LLM_UP, i, I, H, FALSE, "mlp.up_proj");
    linear (&w, LLM_DOWN, i, H, I, FALSE, "mlp.down_proj");
  }
  emit (&w, DG_LAYOUT_VECTOR, LLM_NORM, -1, 0, H, 0, "norm.weight");
  return w.ok;
}

void
dg_llm_layout_acts (const DgQwenTextConfig *c, gint64 R, gint64 S, DgLayoutAct a[LLM_N_ACTS])
{
  const gint64 H = c->hidden, D = c->head_dim;
  DG_LAYOUT_ACT (&a[LLM_ACT_EMBEDS], R, S, H);
  DG_LAYOUT_ACT (&a[LLM_ACT_COS], R, S, D);
  DG_LAYOUT_ACT (&a[LLM_ACT_SIN], R, S, D);
  DG_LAYOUT_ACT (&a[LLM_ACT_VALID], R, S);
  DG_LAYOUT_ACT (&a[LLM_ACT_XN], R, S, H);
  DG_LAYOUT_ACT (&a[LLM_ACT_Q], R, S, c->n_heads * D);
  DG_LAYOUT_ACT (&a[LLM_ACT_K], R, S, c->n_kv_heads * D);
  DG_LAYOUT_ACT (&a[LLM_ACT_V], R, S, c->n_kv_heads * D);
  DG_LAYOUT_ACT (&a[LLM_ACT_ATTN], R, S, c->n_heads * D);
  DG_LAYOUT_ACT (&a[LLM_ACT_TMP], R, S, H);
  DG_LAYOUT_ACT (&a[LLM_ACT_GATE], R, S, c->intermediate);
  DG_LAYOUT_ACT (&a[LLM_ACT_UP], R, S, c->intermediate);
  DG_LAYOUT_ACT (&a[LLM_ACT_H], R, S, H);
  DG_LAYOUT_ACT (&a[LLM_ACT_MERGED], R, S, (gint64) dg_llm_layout_selected (c, NULL) * H);
}

guint64
dg_llm_layout_cache_bytes (const DgQwenTextConfig *c, guint capacity)
{
  const guint64 one = (guint64) capacity * c->n_kv_heads * c->head_dim * sizeof (float);
  return 2 * (guint64) c->n_layers * ((one + 255) / 256 * 256);
}
