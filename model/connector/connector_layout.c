/* The connector's weights and activations, declared once (connector_layout.h). */
#include "connector_layout.h"

#include <string.h>

typedef struct {
  DgLayoutVisit visit;
  gpointer data;
  GError **error;
  gboolean ok;
} Walk;

static void
emit (Walk *w, DgLayoutKind kind, int slot, int layer, int sub, gint64 rows, gint64 cols, const char *name,
      const char *suffix)
{
  if (!w->ok)
    return;
  DgLayoutTensor t = {
    .kind = kind, .ndim = cols ? 2 : 1, .shape = { rows, cols }, .slot = slot, .layer = layer, .sub = sub
  };
  g_snprintf (t.name, sizeof t.name, "%s%s", name, suffix);
  w->ok = w->visit (&t, w->data, w->error);
}

static void
linear (Walk *w, int slot, int layer, gint64 out, gint64 in, const char *name)
{
  emit (w, DG_LAYOUT_LINEAR, slot, layer, 0, out, in, name, ".weight");
  emit (w, DG_LAYOUT_VECTOR, slot, layer, 1, out, 0, name, ".bias");
}

static void
norm (Walk *w, int slot, int layer, gint64 n, const char *name)
{
  emit (w, DG_LAYOUT_VECTOR, slot, layer, 0, n, 0, name, ".weight");
  emit (w, DG_LAYOUT_VECTOR, slot, layer, 1, n, 0, name, ".bias");
}

gboolean
dg_connector_layout_weights (const DgConnectorShape *s, DgLayoutVisit visit, gpointer user_data, GError **error)
{
  Walk w = { visit, user_data, error, TRUE };
  const gint64 D = s->cfg.hidden, F = s->cfg.intermediate;
  emit (&w, DG_LAYOUT_F32, CONN_META, -1, 0, s->n_queries, s->llm_hidden, "meta_queries", "");
  linear (&w, CONN_P1, -1, D, s->in_dim, "projector_1");
  linear (&w, CONN_P2, -1, s->pooled_dim, D, "projector_2");
  linear (&w, CONN_P3, -1, s->seq_dim, D, "projector_3");
  for (guint i = 0; i < s->cfg.n_layers && w.ok; i++) { /* transformers SiglipEncoderLayer */
    const int l = (int) i;
    char p[64], n[96];
#define NAME(suffix) (g_snprintf (n, sizeof n, "%s." suffix, p), n)
    g_snprintf (p, sizeof p, "connector.layers.%u", i);
    norm (&w, CONN_LN1, l, D, NAME ("layer_norm1"));
    linear (&w, CONN_Q, l, D, D, NAME ("self_attn.q_proj"));
    linear (&w, CONN_K, l, D, D, NAME ("self_attn.k_proj"));
    linear (&w, CONN_V, l, D, D, NAME ("self_attn.v_proj"));
    linear (&w, CONN_OUT, l, D, D, NAME ("self_attn.out_proj"));
    norm (&w, CONN_LN2, l, D, NAME ("layer_norm2"));
    linear (&w, CONN_FC1, l, F, D, NAME ("mlp.fc1"));
    linear (&w, CONN_FC2, l, D, F, NAME ("mlp.fc2"));
#undef NAME
  }
  return w.ok;
}

void
dg_connector_layout_acts (const DgConnectorShape *s, gint64 R, gint64 S, gboolean bf16, DgLayoutAct a[CONN_N_ACTS])
{
  const gint64 D = s->cfg.hidden;
  DG_LAYOUT_ACT (&a[CONN_ACT_X], R, S, D); /* projector_1 output, the residual stream */
  DG_LAYOUT_ACT (&a[CONN_ACT_MEAN], R, D);
  DG_LAYOUT_ACT (&a[CONN_ACT_POOLED], R, s->pooled_dim);
  DG_LAYOUT_ACT (&a[CONN_ACT_SEQ], R, S, s->seq_dim);
  DG_LAYOUT_ACT (&a[CONN_ACT_H], R, S, D);
  DG_LAYOUT_ACT (&a[CONN_ACT_QKV], R, S, 3 * D);
  DG_LAYOUT_ACT (&a[CONN_ACT_O], R, S, D);
  DG_LAYOUT_ACT (&a[CONN_ACT_F], R, S, s->cfg.intermediate);
  if (bf16)
    DG_LAYOUT_ACT (&a[CONN_ACT_TMP], R, S, D);
  else
    a[CONN_ACT_TMP].ndim = 0;
}
