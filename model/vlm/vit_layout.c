/* The vision tower's weights and activations, declared once (vit_layout.h). */
#include "vit_layout.h"

guint
dg_vit_layout_patch_values (const DgQwenVisionConfig *c)
{
  return c->in_channels * c->temporal_patch_size * c->patch_size * c->patch_size;
}

guint
dg_vit_layout_merge_unit (const DgQwenVisionConfig *c)
{
  return c->spatial_merge_size * c->spatial_merge_size;
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
linear (Walk *w, int slot, int layer, gint64 out, gint64 in, const char *module)
{
  char n[128];
  g_snprintf (n, sizeof n, "%s.weight", module);
  emit (w, DG_LAYOUT_LINEAR, slot, layer, 0, out, in, n);
  g_snprintf (n, sizeof n, "%s.bias", module);
  emit (w, DG_LAYOUT_VECTOR, slot, layer, 1, out, 0, n);
}

gboolean
dg_vit_layout_weights (const DgQwenVisionConfig *c, DgLayoutVisit visit, gpointer user_data, GError **error)
{
  Walk w = { visit, user_data, error, TRUE };
  const gint64 C = c->hidden, I = c->intermediate, M = C * dg_vit_layout_merge_unit (c);
  emit (&w, DG_LAYOUT_MATRIX, VIT_PATCH, -1, 0, C, dg_vit_layout_patch_values (c), "patch_embed.proj.weight");
  for (guint i = 0; i < c->depth && w.ok; i++) {
    const int l = (int) i;
    char n[128];
    g_snprintf (n, sizeof n, "blocks.%u.norm1.weight", i);
    emit (&w, DG_LAYOUT_VECTOR, VIT_NORM1, l, 0, C, 0, n);
    g_snprintf (n, sizeof n, "blocks.%u.norm2.weight", i);
    emit (&w, DG_LAYOUT_VECTOR, VIT_NORM2, l, 0, C, 0, n);
    g_snprintf (n, sizeof n, "blocks.%u.attn.qkv", i);
    linear (&w, VIT_QKV, l, 3 * C, C, n);
    g_snprintf (n, sizeof n, "blocks.%u.attn.proj", i);
    linear (&w, VIT_PROJ, l, C, C, n);
    g_snprintf (n, sizeof n, "blocks.%u.mlp.gate_proj", i);
    linear (&w, VIT_GATE, l, I, C, n);
    g_snprintf (n, sizeof n, "blocks.%u.mlp.up_proj", i);
    linear (&w, VIT_UP, l, I, C, n);
    g_snprintf (n, sizeof n, "blocks.%u.mlp.down_proj", i);
    linear (&w, VIT_DOWN, l, C, I, n);
  }
  emit (&w, DG_LAYOUT_VECTOR, VIT_LN_Q, -1, 0, C, 0, "merger.ln_q.weight");
  linear (&w, VIT_MLP0, -1, M, M, "merger.mlp.0");
  linear (&w, VIT_MLP2, -1, c->out_hidden, M, "merger.mlp.2");
  return w.ok;
}

void
dg_vit_layout_acts (const DgQwenVisionConfig *c, gint64 N, DgLayoutAct a[VIT_N_ACTS])
{
  const gint64 unit = dg_vit_layout_merge_unit (c), G = N / unit, C = c->hidden, D = c->head_dim;
  const gint64 P = dg_vit_layout_patch_values (c);
  DG_LAYOUT_ACT (&a[VIT_ACT_PATCHES], N, P);
  DG_LAYOUT_ACT (&a[VIT_ACT_TO_WINDOW], G);
  DG_LAYOUT_ACT (&a[VIT_ACT_TO_RASTER], G);
  DG_LAYOUT_ACT (&a[VIT_ACT_RANGE], 1, N, 2);
  DG_LAYOUT_ACT (&a[VIT_ACT_COS], 1, N, D);
  DG_LAYOUT_ACT (&a[VIT_ACT_SIN], 1, N, D);
  DG_LAYOUT_ACT (&a[VIT_ACT_XN], 1, N, C);
  DG_LAYOUT_ACT (&a[VIT_ACT_QKV], 1, N, 3 * C);
  DG_LAYOUT_ACT (&a[VIT_ACT_ATTN], 1, N, C);
  DG_LAYOUT_ACT (&a[VIT_ACT_TMP], 1, N, C);
  DG_LAYOUT_ACT (&a[VIT_ACT_GATE], 1, N, c->intermediate);
  DG_LAYOUT_ACT (&a[VIT_ACT_UP], 1, N, c->intermediate);
  DG_LAYOUT_ACT (&a[VIT_ACT_WINDOWED], G, unit * P);
  DG_LAYOUT_ACT (&a[VIT_ACT_X], 1, N, C);
  DG_LAYOUT_ACT (&a[VIT_ACT_MERGER_XN], N, C);
  DG_LAYOUT_ACT (&a[VIT_ACT_MERGER_H], G, unit * C);
  DG_LAYOUT_ACT (&a[VIT_ACT_MERGER_OUT], G, c->out_hidden);
  DG_LAYOUT_ACT (&a[VIT_ACT_EMBEDS], G, c->out_hidden);
}

gboolean
dg_vit_layout_act_u32 (DgVitAct i)
{
  return i == VIT_ACT_TO_WINDOW || i == VIT_ACT_TO_RASTER || i == VIT_ACT_RANGE;
}
