/* The DiT's weights and activations, declared once (dit_layout.h). */
#include "dit_layout.h"

#include <string.h>

typedef struct {
  DgLayoutVisit visit;
  gpointer data;
  GError **error;
  gboolean ok;
} Walk;

static void emit (Walk *w, DgLayoutKind kind, int slot, int layer, int sub, guint ndim, const gint64 *shape,
                  const char *fmt, ...) G_GNUC_PRINTF (8, 9);

static void
emit (Walk *w, DgLayoutKind kind, int slot, int layer, int sub, guint ndim, const gint64 *shape, const char *fmt, ...)
{
  if (!w->ok)
    return;
  DgLayoutTensor t = { .kind = kind, .ndim = ndim, .slot = slot, .layer = layer, .sub = sub };
  memcpy (t.shape, shape, ndim * sizeof *shape);
  va_list ap;
  va_start (ap, fmt);
  g_vsnprintf (t.name, sizeof t.name, fmt, ap);
  va_end (ap);
  w->ok = w->visit (&t, w->data, w->error);
}

/* A Linear layer with bias: "<name>.weight" [out, in] as sub 2·p, "<name>.bias" as 2·p + 1. */
static void
linear (Walk *w, int slot, int layer, int p, gint64 out, gint64 in, const char *name)
{
  emit (w, DG_LAYOUT_LINEAR, slot, layer, 2 * p, 2, (const gint64[]) { out, in }, "%s.weight", name);
  emit (w, DG_LAYOUT_VECTOR, slot, layer, 2 * p + 1, 1, (const gint64[]) { out }, "%s.bias", name);
}

/* One attention stream; `names` = q, k, v, out, norm_q, norm_k (out NULL when absent). */
static void
proj (Walk *w, const DgDitConfig *c, int slot, int layer, const char *prefix, const char *const names[6])
{
  const gint64 D = c->inner_dim;
  for (int p = 0; p < 4; p++) {
    if (!names[p])
      continue;
    g_autofree char *n = g_strdup_printf ("%s.%s", prefix, names[p]);
    linear (w, slot, layer, p, D, D, n);
  }
  if (c->qk_norm == DG_QK_NORM_RMS)
    for (int k = 0; k < 2; k++)
      emit (w, DG_LAYOUT_VECTOR, slot, layer, DIT_SUB_NORM_Q + k, 1, (const gint64[]) { c->head_dim }, "%s.%s.weight",
            prefix, names[4 + k]);
}

gboolean
dg_dit_layout_pre_only (const DgDitConfig *c, guint layer)
{
  return layer + 1 == c->n_layers; /* SD3Transformer2DModel: context_pre_only = last */
}

gboolean
dg_dit_layout_weights (const DgDitConfig *c, DgLayoutVisit visit, gpointer user_data, GError **error)
{
  Walk w = { visit, user_data, error, TRUE };
  const gint64 D = c->inner_dim, F = DIT_FF_MULT * D, P = c->patch_size;
  emit (&w, DG_LAYOUT_MATRIX, DIT_PATCH_W, -1, 0, 4, (const gint64[]) { D, c->in_channels, P, P },
        "pos_embed.proj.weight");
  emit (&w, DG_LAYOUT_VECTOR, DIT_PATCH_B, -1, 0, 1, (const gint64[]) { D }, "pos_embed.proj.bias");
  linear (&w, DIT_T1, -1, 0, D, DIT_FREQ_DIM, "time_text_embed.timestep_embedder.linear_1");
  linear (&w, DIT_T2, -1, 0, D, D, "time_text_embed.timestep_embedder.linear_2");
  linear (&w, DIT_P1, -1, 0, D, c->pooled_projection_dim, "time_text_embed.text_embedder.linear_1");
  linear (&w, DIT_P2, -1, 0, D, D, "time_text_embed.text_embedder.linear_2");
  linear (&w, DIT_CTX_EMB, -1, 0, c->caption_projection_dim, c->joint_attention_dim, "context_embedder");
  linear (&w, DIT_NORM_OUT, -1, 0, N_CHUNKS_CONT * D, D, "norm_out.linear");
  linear (&w, DIT_PROJ_OUT, -1, 0, P * P * c->out_channels, D, "proj_out");
  if (c->pos_embed_max_size) {
    const gint64 M = c->pos_embed_max_size;
    emit (&w, DG_LAYOUT_HOST, DIT_POS_TABLE, -1, 0, 3, (const gint64[]) { 1, M * M, D }, "pos_embed.pos_embed");
  }
  static const char *const img_names[6] = { "to_q", "to_k", "to_v", "to_out.0", "norm_q", "norm_k" };
  static const char *const ctx_names[6] = { "add_q_proj", "add_k_proj",   "add_v_proj",
                                            "to_add_out", "norm_added_q", "norm_added_k" };
  static const char *const ctx_names_pre[6] = { "add_q_proj", "add_k_proj",   "add_v_proj",
                                                NULL,         "norm_added_q", "norm_added_k" };
  for (guint i = 0; i < c->n_layers && w.ok; i++) {
    const gboolean dual = dg_dit_config_is_dual (c, i), pre_only = dg_dit_layout_pre_only (c, i);
    const int l = (int) i;
    char p[64];
    g_snprintf (p, sizeof p, "transformer_blocks.%u", i);
    g_autofree char *n1 = g_strconcat (p, ".norm1.linear", NULL);
    g_autofree char *n1c = g_strconcat (p, ".norm1_context.linear", NULL);
    g_autofree char *attn = g_strconcat (p, ".attn", NULL);
    g_autofree char *attn2 = g_strconcat (p, ".attn2", NULL);
    linear (&w, DIT_NORM1, l, 0, (dual ? N_CHUNKS_DUAL : N_CHUNKS_PLAIN) * D, D, n1);
    linear (&w, DIT_NORM1_CTX, l, 0, (pre_only ? N_CHUNKS_CONT : N_CHUNKS_PLAIN) * D, D, n1c);
    proj (&w, c, DIT_IMG, l, attn, img_names);
    proj (&w, c, DIT_CTX, l, attn, pre_only ? ctx_names_pre : ctx_names);
    if (dual)
      proj (&w, c, DIT_IMG2, l, attn2, img_names);
    g_autofree char *ff1 = g_strconcat (p, ".ff.net.0.proj", NULL);
    g_autofree char *ff2 = g_strconcat (p, ".ff.net.2", NULL);
    linear (&w, DIT_FF1, l, 0, F, D, ff1);
    linear (&w, DIT_FF2, l, 0, D, F, ff2);
    if (!pre_only) {
      g_autofree char *ffc1 = g_strconcat (p, ".ff_context.net.0.proj", NULL);
      g_autofree char *ffc2 = g_strconcat (p, ".ff_context.net.2", NULL);
      linear (&w, DIT_FFC1, l, 0, F, D, ffc1);
      linear (&w, DIT_FFC2, l, 0, D, F, ffc2);
    }
  }
  return w.ok;
}

void
dg_dit_layout_acts (const DgDitConfig *c, gint64 B, gint64 L, gint64 S, gboolean padded, DgLayoutAct a[DIT_N_ACTS])
{
  const gint64 D = c->inner_dim;
#define SET(i, ...) DG_LAYOUT_ACT (&a[i], __VA_ARGS__)
  SET (DIT_ACT_TEMB, B, D);
  SET (DIT_ACT_TOKENS, B, L, D);
  SET (DIT_ACT_CTX, B, S, D);
  if (padded)
    SET (DIT_ACT_KEY_VALID, B, L + S);
  else
    a[DIT_ACT_KEY_VALID].ndim = 0;
  SET (DIT_ACT_SINUS, B, DIT_FREQ_DIM);
  SET (DIT_ACT_TIME_H, B, D);
  SET (DIT_ACT_TIME_E, B, D);
  SET (DIT_ACT_POOLED_E, B, D);
  SET (DIT_ACT_SILU, B, D);
  SET (DIT_ACT_MOD, B, N_CHUNKS_DUAL * D);
  SET (DIT_ACT_CMOD, B, N_CHUNKS_PLAIN * D);
  SET (DIT_ACT_XN, B, L, D);
  SET (DIT_ACT_XA, B, L, D);
  SET (DIT_ACT_XB, B, L, D);
  SET (DIT_ACT_CN, B, S, D);
  SET (DIT_ACT_CA, B, S, D);
  SET (DIT_ACT_SCRATCH, B * (L + S) * DIT_FF_MULT * D); /* ≥ qkv + o (4·D per token) and B·max(L,S)·4D */
#undef SET
}

guint64
dg_dit_activation_bytes (const DgDitConfig *c, gint64 B, gint64 L, gint64 S)
{
  DgLayoutAct a[DIT_N_ACTS];
  dg_dit_layout_acts (c, B, L, S, TRUE, a);
  gint64 n = 0;
  for (int i = 0; i < DIT_N_ACTS; i++) n += dg_layout_act_numel (&a[i]);
  return (guint64) n * 4; /* f32, and the u32 key mask */
}
