/* The VAE's weights, declared once (vae_layout.h). */
#include "vae_layout.h"

typedef struct {
  DgLayoutVisit visit;
  gpointer data;
  GError **error;
  gboolean ok;
  int part;           /* 0 or VAE_IN_DECODER */
  const char *prefix; /* "encoder" / "decoder" */
} Walk;

static void
emit (Walk *w, DgLayoutKind kind, int slot, int layer, int sub, guint ndim, const gint64 *shape, const char *name,
      const char *suffix)
{
  if (!w->ok)
    return;
  DgLayoutTensor t = { .kind = kind, .ndim = ndim, .slot = slot | w->part, .layer = layer, .sub = sub };
  for (guint i = 0; i < ndim; i++) t.shape[i] = shape[i];
  g_snprintf (t.name, sizeof t.name, "%s%s", name, suffix);
  w->ok = w->visit (&t, w->data, w->error);
}

/* weight and bias of a k×k convolution */
static void
conv (Walk *w, int slot, int layer, int sub, gint64 cout, gint64 cin, gint64 k, const char *name)
{
  emit (w, DG_LAYOUT_MATRIX, slot, layer, sub, 4, (const gint64[]) { cout, cin, k, k }, name, ".weight");
  emit (w, DG_LAYOUT_VECTOR, slot, layer, sub + 1, 1, (const gint64[]) { cout }, name, ".bias");
}

static void
norm (Walk *w, int slot, int layer, int sub, gint64 c, const char *name)
{
  emit (w, DG_LAYOUT_VECTOR, slot, layer, sub, 1, (const gint64[]) { c }, name, ".weight");
  emit (w, DG_LAYOUT_VECTOR, slot, layer, sub + 1, 1, (const gint64[]) { c }, name, ".bias");
}

static void
linear (Walk *w, int slot, gint64 out, gint64 in, const char *name)
{
  emit (w, DG_LAYOUT_LINEAR, slot, -1, 0, 2, (const gint64[]) { out, in }, name, ".weight");
  emit (w, DG_LAYOUT_VECTOR, slot, -1, 1, 1, (const gint64[]) { out }, name, ".bias");
}

/* diffusers ResnetBlock2D; the 1×1 conv_shortcut only when the width changes. */
static void
resnet (Walk *w, int layer, guint j, gint64 cin, gint64 cout, const char *name)
{
  char n[128];
  const int sub = 2 * (int) j;
  g_snprintf (n, sizeof n, "%s.norm1", name);
  norm (w, VAE_RES_NORM1, layer, sub, cin, n);
  g_snprintf (n, sizeof n, "%s.conv1", name);
  conv (w, VAE_RES_CONV1, layer, sub, cout, cin, 3, n);
  g_snprintf (n, sizeof n, "%s.norm2", name);
  norm (w, VAE_RES_NORM2, layer, sub, cout, n);
  g_snprintf (n, sizeof n, "%s.conv2", name);
  conv (w, VAE_RES_CONV2, layer, sub, cout, cout, 3, n);
  if (cin != cout) {
    g_snprintf (n, sizeof n, "%s.conv_shortcut", name);
    conv (w, VAE_RES_SHORTCUT, layer, sub, cout, cin, 1, n);
  }
}

/* mid_block: both resnets at the innermost width, then the attention (if the config adds it). */
static void
mid (Walk *w, const DgVaeConfig *c)
{
  const gint64 C = c->block_out_channels[c->n_blocks - 1];
  char n[128];
  for (guint i = 0; i < 2; i++) {
    g_snprintf (n, sizeof n, "%s.mid_block.resnets.%u", w->prefix, i);
    resnet (w, -1, i, C, C, n);
  }
  if (!c->mid_block_add_attention)
    return;
  static const char *const names[] = { "group_norm", "to_q", "to_k", "to_v", "to_out.0" };
  g_snprintf (n, sizeof n, "%s.mid_block.attentions.0.%s", w->prefix, names[0]);
  norm (w, VAE_ATTN_NORM, -1, 0, C, n);
  for (int k = 1; k < 5; k++) {
    g_snprintf (n, sizeof n, "%s.mid_block.attentions.0.%s", w->prefix, names[k]);
    linear (w, VAE_ATTN_NORM + k, C, C, n);
  }
}

/* diffusers Encoder: conv_in → DownEncoderBlock2D × n (layers_per_block resnets, a downsampler
 * after all but the last) → mid → GN + SiLU → conv_out to 2·latent (double_z). */
static void
encoder (Walk *w, const DgVaeConfig *c)
{
  const guint *ch = c->block_out_channels;
  char n[128];
  conv (w, VAE_CONV_IN, -1, 0, ch[0], c->in_channels, 3, "encoder.conv_in");
  gint64 cin = ch[0];
  for (guint i = 0; i < c->n_blocks; i++) {
    for (guint j = 0; j < c->layers_per_block; j++) {
      g_snprintf (n, sizeof n, "encoder.down_blocks.%u.resnets.%u", i, j);
      resnet (w, (int) i, j, j == 0 ? cin : ch[i], ch[i], n);
    }
    if (i + 1 < c->n_blocks) {
      g_snprintf (n, sizeof n, "encoder.down_blocks.%u.downsamplers.0.conv", i);
      conv (w, VAE_SAMPLER, (int) i, 0, ch[i], ch[i], 3, n);
    }
    cin = ch[i];
  }
  mid (w, c);
  const gint64 top = ch[c->n_blocks - 1];
  norm (w, VAE_NORM_OUT, -1, 0, top, "encoder.conv_norm_out");
  conv (w, VAE_CONV_OUT, -1, 0, 2 * c->latent_channels, top, 3, "encoder.conv_out");
  if (c->use_quant_conv)
    conv (w, VAE_QUANT_CONV, -1, 0, 2 * c->latent_channels, 2 * c->latent_channels, 1, "quant_conv");
}

/* diffusers Decoder: conv_in → mid → UpDecoderBlock2D × n over the reversed widths
 * (layers_per_block + 1 resnets, an upsampler after all but the last) → GN + SiLU → conv_out. */
static void
decoder (Walk *w, const DgVaeConfig *c)
{
  const guint *ch = c->block_out_channels;
  const guint nb = c->n_blocks;
  char n[128];
  if (c->use_post_quant_conv)
    conv (w, VAE_QUANT_CONV, -1, 0, c->latent_channels, c->latent_channels, 1, "post_quant_conv");
  conv (w, VAE_CONV_IN, -1, 0, ch[nb - 1], c->latent_channels, 3, "decoder.conv_in");
  mid (w, c);
  gint64 cin = ch[nb - 1];
  for (guint i = 0; i < nb; i++) {
    const gint64 cout = ch[nb - 1 - i];
    for (guint j = 0; j < c->layers_per_block + 1; j++) {
      g_snprintf (n, sizeof n, "decoder.up_blocks.%u.resnets.%u", i, j);
      resnet (w, (int) i, j, j == 0 ? cin : cout, cout, n);
    }
    if (i + 1 < nb) {
      g_snprintf (n, sizeof n, "decoder.up_blocks.%u.upsamplers.0.conv", i);
      conv (w, VAE_SAMPLER, (int) i, 0, cout, cout, 3, n);
    }
    cin = cout;
  }
  norm (w, VAE_NORM_OUT, -1, 0, ch[0], "decoder.conv_norm_out");
  conv (w, VAE_CONV_OUT, -1, 0, c->out_channels, ch[0], 3, "decoder.conv_out");
}

gboolean
dg_vae_layout_weights (const DgVaeConfig *c, int parts, DgLayoutVisit visit, gpointer user_data, GError **error)
{
  Walk w = { visit, user_data, error, TRUE, 0, "" };
  const gint64 L = c->latent_channels;
  emit (&w, DG_LAYOUT_COMPUTED, VAE_SCALE, -1, 0, 1, &L, "latent scale", "");
  emit (&w, DG_LAYOUT_COMPUTED, VAE_SHIFT, -1, 0, 1, &L, "latent shift", "");
  if (parts & DG_VAE_LAYOUT_ENCODER) {
    w.prefix = "encoder";
    encoder (&w, c);
  }
  if (parts & DG_VAE_LAYOUT_DECODER) {
    w.part = VAE_IN_DECODER;
    w.prefix = "decoder";
    decoder (&w, c);
  }
  return w.ok;
}
