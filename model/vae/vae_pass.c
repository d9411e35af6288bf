/* The walk of a VAE pass (vae_pass.h): the layer structure of vae.c's forward, once. */
#include "vae_pass.h"

#include <string.h>

#define GN_VALUES_PER_GROUP 32768 /* vkc_ops_norm.h: the estimate of the GroupNorm scratch */

static gboolean
live (const DgVaePass *p)
{
  return p->ops != NULL;
}

static void
view (DgVaePass *p, DgVaeAct *a, gint64 B, gint64 H, gint64 W, gint64 C)
{
  const gint64 n = B * H * W * C;
  if (!live (p))
    p->need[a->slot] = MAX (p->need[a->slot], n);
  else
    g_assert (n <= p->need[a->slot]);
  a->B = B;
  a->H = H;
  a->W = W;
  a->C = C;
}

static DgVaeAct
take (DgVaePass *p, gint64 B, gint64 H, gint64 W, gint64 C)
{
  DgVaeAct a = { -1, 0, 0, 0, 0 };
  for (int i = 0; i < DG_VAE_N_SLABS && a.slot < 0; i++)
    if (!p->busy[i])
      a.slot = i;
  g_assert (a.slot >= 0);
  p->busy[a.slot] = TRUE;
  view (p, &a, B, H, W, C);
  return a;
}

static void
drop (DgVaePass *p, DgVaeAct a)
{
  if (a.slot >= 0)
    p->busy[a.slot] = FALSE;
}

static void
output (DgVaePass *p, DgVaeAct *out, gint64 B, gint64 H, gint64 W, gint64 C)
{
  *out = (DgVaeAct) { DG_VAE_OUT, B, H, W, C };
  if (!live (p))
    p->out_bytes += (guint64) (B * H * W * C) * sizeof (float);
  else
    p->ops->output (p->user_data, out);
}

static void
tap (DgVaePass *p, const char *name, const DgVaeAct *t)
{
  if (live (p) && p->ops->tap)
    p->ops->tap (p->user_data, name, t);
}

static void
group_norm (DgVaePass *p, const DgVaeAct *y, const DgVaeAct *x, DgVaeParam w, gboolean silu)
{
  if (live (p)) {
    p->ops->group_norm (p->user_data, y, x, &w, silu);
    return;
  }
  const int groups = (int) p->cfg->norm_num_groups;
  const gint64 need = p->limits && p->limits->group_norm_scratch
                          ? p->limits->group_norm_scratch (p->limits->user_data, y->B, y->H, y->W, y->C, groups)
                          : y->B * groups * (3 * y->H * y->W * y->C / GN_VALUES_PER_GROUP + 5);
  p->scratch = MAX (p->scratch, need);
}

static void
conv (DgVaePass *p, DgVaeConvKind kind, const DgVaeAct *y, const DgVaeAct *x, DgVaeParam w)
{
  if (live (p))
    p->ops->conv (p->user_data, kind, y, x, &w);
}

static void
add (DgVaePass *p, const DgVaeAct *y, const DgVaeAct *a, const DgVaeAct *b)
{
  if (live (p))
    p->ops->add (p->user_data, y, a, b);
}

static DgVaeParam
param (int part, int slot, int layer, int j)
{
  return (DgVaeParam) { slot | part, layer, j };
}

/* ResnetBlock2D (MODEL.md §6): h = conv2(silu(GN2(conv1(silu(GN1(x)))))), out = shortcut(x) + h.
 * Three buffers: x, the normalised tensor t, the output h. The 1×1 shortcut when the width changes. */
static DgVaeAct
resnet (DgVaePass *p, int part, int layer, int j, gint64 cout, DgVaeAct x)
{
  const gint64 B = x.B, H = x.H, W = x.W, cin = x.C;
  DgVaeAct t = take (p, B, H, W, cin);
  group_norm (p, &t, &x, param (part, VAE_RES_NORM1, layer, j), TRUE);
  DgVaeAct h = take (p, B, H, W, cout);
  conv (p, DG_VAE_CONV_3X3, &h, &t, param (part, VAE_RES_CONV1, layer, j));
  view (p, &t, B, H, W, cout);
  group_norm (p, &t, &h, param (part, VAE_RES_NORM2, layer, j), TRUE);
  conv (p, DG_VAE_CONV_3X3, &h, &t, param (part, VAE_RES_CONV2, layer, j));
  if (cin != cout) {
    conv (p, DG_VAE_CONV_1X1, &t, &x, param (part, VAE_RES_SHORTCUT, layer, j));
    add (p, &h, &h, &t);
  } else {
    add (p, &h, &h, &x);
  }
  drop (p, t);
  drop (p, x);
  return h;
}

/* Mid-block attention (MODEL.md §6): y = x + to_out(softmax(q kᵀ/√C) v) over the H·W pixels of
 * each image, q/k/v = Linear(GroupNorm(x)); q, k and v share one [B, HW, 3C] buffer. The
 * attention binds the keys (and values) of one image at once: a slice of that buffer. */
static DgVaeAct
attention (DgVaePass *p, int part, DgVaeAct x)
{
  const gint64 B = x.B, H = x.H, W = x.W, C = x.C;
  const guint64 binding = (guint64) ((H * W - 1) * 3 * C + C) * sizeof (float) + 256;
  p->attn_binding = MAX (p->attn_binding, binding);
  if (!live (p) && p->limits && p->limits->max_binding && binding > p->limits->max_binding)
    p->too_large = TRUE;
  const DgVaeParam a = param (part, VAE_ATTN_NORM, -1, 0);
  DgVaeAct n = take (p, B, H, W, C);
  group_norm (p, &n, &x, a, FALSE);
  DgVaeAct qkv = take (p, B, H, W, 3 * C);
  if (live (p))
    p->ops->attention (p->user_data, &n, &qkv, &a);
  view (p, &qkv, B, H, W, C);
  if (live (p))
    p->ops->attention_out (p->user_data, &qkv, &n, &a);
  add (p, &n, &qkv, &x); /* residual_connection, rescale_output_factor 1 */
  drop (p, qkv);
  drop (p, x);
  return n;
}

static DgVaeAct
mid_block (DgVaePass *p, int part, DgVaeAct x)
{
  x = resnet (p, part, -1, 0, x.C, x);
  if (p->cfg->mid_block_add_attention)
    x = attention (p, part, x);
  return resnet (p, part, -1, 1, x.C, x);
}

/* Downsample2D: zero pad right and bottom by 1, 3×3 stride 2 (MODEL.md §6). */
static DgVaeAct
downsample (DgVaePass *p, int part, int layer, DgVaeAct x)
{
  DgVaeAct y = take (p, x.B, (x.H - 2) / 2 + 1, (x.W - 2) / 2 + 1, x.C);
  conv (p, DG_VAE_CONV_3X3_S2, &y, &x, param (part, VAE_SAMPLER, layer, 0));
  drop (p, x);
  return y;
}

/* Upsample2D: nearest ×2 then 3×3, fused in one conv. */
static DgVaeAct
upsample (DgVaePass *p, int part, int layer, DgVaeAct x)
{
  DgVaeAct y = take (p, x.B, 2 * x.H, 2 * x.W, x.C);
  conv (p, DG_VAE_CONV_3X3_UP2, &y, &x, param (part, VAE_SAMPLER, layer, 0));
  drop (p, x);
  return y;
}

/* conv_norm_out (GroupNorm + SiLU) then conv_out into the pass's output. */
static void
head (DgVaePass *p, int part, DgVaeAct h, gint64 cout)
{
  DgVaeAct t = take (p, h.B, h.H, h.W, h.C), out;
  group_norm (p, &t, &h, param (part, VAE_NORM_OUT, -1, 0), TRUE);
  drop (p, h);
  output (p, &out, h.B, h.H, h.W, cout);
  conv (p, DG_VAE_CONV_3X3, &out, &t, param (part, VAE_CONV_OUT, -1, 0));
  drop (p, t);
}

static void
encoder (DgVaePass *p, const DgVaeAct *pixels)
{
  const DgVaeConfig *c = p->cfg;
  DgVaeAct h = take (p, pixels->B, pixels->H, pixels->W, c->block_out_channels[0]);
  conv (p, DG_VAE_CONV_3X3, &h, pixels, param (0, VAE_CONV_IN, -1, 0));
  tap (p, "encoder.conv_in", &h);
  for (guint i = 0; i < c->n_blocks; i++) {
    for (guint j = 0; j < c->layers_per_block; j++) h = resnet (p, 0, (int) i, (int) j, c->block_out_channels[i], h);
    if (i + 1 < c->n_blocks)
      h = downsample (p, 0, (int) i, h);
    char name[48];
    g_snprintf (name, sizeof name, "encoder.down_blocks.%u", i);
    tap (p, name, &h);
  }
  h = mid_block (p, 0, h);
  tap (p, "encoder.mid_block", &h);
  head (p, 0, h, 2 * c->latent_channels);
  const DgVaeAct out = { DG_VAE_OUT, 0, 0, 0, 0 };
  tap (p, "encoder.moments", &out);
}

static void
decoder (DgVaePass *p, DgVaeAct z)
{
  const DgVaeConfig *c = p->cfg;
  const int part = VAE_IN_DECODER;
  DgVaeAct h = take (p, z.B, z.H, z.W, c->block_out_channels[c->n_blocks - 1]);
  conv (p, DG_VAE_CONV_3X3, &h, &z, param (part, VAE_CONV_IN, -1, 0));
  drop (p, z);
  tap (p, "decoder.conv_in", &h);
  h = mid_block (p, part, h);
  tap (p, "decoder.mid_block", &h);
  for (guint i = 0; i < c->n_blocks; i++) {
    const gint64 cout = c->block_out_channels[c->n_blocks - 1 - i];
    for (guint j = 0; j < c->layers_per_block + 1; j++) h = resnet (p, part, (int) i, (int) j, cout, h);
    if (i + 1 < c->n_blocks)
      h = upsample (p, part, (int) i, h);
    char name[48];
    g_snprintf (name, sizeof name, "decoder.up_blocks.%u", i);
    tap (p, name, &h);
  }
  head (p, part, h, c->out_channels);
}

void
dg_vae_pass_encode (DgVaePass *p, const DgVaeAct *in)
{
  DgVaeAct x = *in;
  x.slot = DG_VAE_IN;
  encoder (p, &x);
}

void
dg_vae_pass_decode (DgVaePass *p, const DgVaeAct *in)
{
  DgVaeAct x = *in;
  x.slot = DG_VAE_IN;
  DgVaeAct z = take (p, in->B, in->H, in->W, in->C);
  if (live (p))
    p->ops->unscale (p->user_data, &z, &x);
  tap (p, "decoder.in", &z);
  decoder (p, z);
}

void
dg_vae_pass_decode_raw (DgVaePass *p, const DgVaeAct *in)
{
  DgVaeAct x = *in;
  x.slot = DG_VAE_IN;
  decoder (p, x);
}

void
dg_vae_pass_module (DgVaePass *p, int part, int kind, int layer, int j, const DgVaeAct *in)
{
  DgVaeAct x = *in, y, out;
  x.slot = DG_VAE_IN;
  if (j >= 0)
    y = resnet (p, part, layer, j,
                layer < 0 ? x.C
                          : (gint64) (part ? p->cfg->block_out_channels[p->cfg->n_blocks - 1 - layer]
                                           : p->cfg->block_out_channels[layer]),
                x);
  else if (kind == VAE_ATTN_NORM)
    y = attention (p, part, x);
  else if (part)
    y = upsample (p, part, layer, x);
  else
    y = downsample (p, part, layer, x);
  output (p, &out, y.B, y.H, y.W, y.C);
  if (live (p))
    p->ops->copy (p->user_data, &out, &y);
  drop (p, y);
}

guint64
dg_vae_pass_bytes (const DgVaePass *p)
{
  if (p->too_large)
    return 0;
  guint64 bytes = p->out_bytes + (guint64) p->scratch * sizeof (float);
  for (int i = 0; i < DG_VAE_N_SLABS; i++) bytes += (guint64) p->need[i] * sizeof (float);
  return bytes;
}

void
dg_vae_axis_tiles (guint len, guint tile, guint overlap, guint *n, guint *size)
{
  *size = MIN (len, tile);
  *n = len <= tile ? 1 : 1 + (len - tile + (tile - overlap) - 1) / (tile - overlap);
}
