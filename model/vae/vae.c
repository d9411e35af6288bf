/* The SD3 VAE (MODEL.md §6) on vkcompute: loading, the encoder and decoder forward passes,
 * tiled processing and the 8-bit conversions. */
#include "vae.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dg_i18n.h"
#include "safetensors.h"
#include "vkc_ops_attention.h"
#include "vkc_ops_conv.h"
#include "vkc_ops_convert.h"
#include "vkc_ops_eltwise.h"
#include "vkc_ops_latent.h"
#include "vkc_ops_linear.h"
#include "vkc_ops_norm.h"

/* Every GroupNorm of AutoencoderKL (resnets, mid-block attention, conv_norm_out) uses eps 1e-6
 * (diffusers Encoder/Decoder pass resnet_eps=1e-6; MODEL.md §6). */
#define VAE_NORM_EPS 1e-6f
/* DiagonalGaussianDistribution clamps the log-variance to [−30, 20] (MODEL.md §6). */
#define VAE_LOGVAR_MIN -30.0f
#define VAE_LOGVAR_MAX 20.0f

/* ---- weights ---------------------------------------------------------------------------- */

typedef struct {
  VkcTensor w, b;
} Param;

typedef struct {
  guint cin, cout;
  Param norm1, conv1, norm2, conv2, shortcut;
  gboolean has_shortcut;
} Resnet;

/* Single-head self-attention over the H·W pixels (head dim = channels). */
typedef struct {
  guint c;
  Param norm, q, k, v, out;
} Attn;

typedef struct {
  guint n_res;
  Resnet *res;
  gboolean has_sampler;   /* encoder: downsampler after the resnets; decoder: upsampler */
  Param sampler;
} Block;

typedef struct {
  gboolean loaded;
  Param conv_in;
  Resnet mid[2];
  gboolean has_attn;
  Attn attn;
  guint n_blocks;
  Block blocks[DG_CONFIG_MAX_BLOCKS];
  Param norm_out, conv_out;
} Coder;

struct _DgVae {
  VkcDevice *dev;
  DgVaeConfig cfg;
  DgPrecision precision;
  DgWeights *weights;        /* owns every weight tensor */
  Coder enc, dec;
  /* z_vae = z_model · (1 + dec_scale) + dec_shift, i.e. z/scaling_factor + shift_factor */
  VkcTensor dec_scale, dec_shift;
  DgTapFunc tap;
  gpointer tap_data;
};

/* Uploads weights through `w`, or with w == NULL only adds up the device bytes they would take
 * (planning from a config alone). */
typedef struct {
  DgWeights *w;
  gsize matrix_size;    /* bytes per matrix element on the device */
  guint64 bytes;
  guint64 pieces;       /* the same as a pool hands them out (vkc_pool_piece_size) */
} Loader;

/* Counts one tensor of @bytes (w == NULL). */
static void
count (Loader *l, guint64 bytes)
{
  l->bytes += bytes;
  l->pieces += vkc_pool_piece_size (bytes);
}

static gboolean
load_conv (Loader *l, Param *p, guint cout, guint cin, guint k, const char *name, GError **error)
{
  if (!l->w) {
    count (l, (guint64) cout * cin * k * k * l->matrix_size);
    count (l, cout * sizeof (float));
    return TRUE;
  }
  return dg_weights_conv (l->w, &p->w, cout, cin, k, k, error, "%s.weight", name)
         && dg_weights_vector (l->w, &p->b, cout, error, "%s.bias", name);
}

static gboolean
load_norm (Loader *l, Param *p, guint c, const char *name, GError **error)
{
  if (!l->w) {
    count (l, (guint64) c * sizeof (float));
    count (l, (guint64) c * sizeof (float));
    return TRUE;
  }
  return dg_weights_vector (l->w, &p->w, c, error, "%s.weight", name)
         && dg_weights_vector (l->w, &p->b, c, error, "%s.bias", name);
}

static gboolean
load_linear (Loader *l, Param *p, guint out, guint in, const char *name, GError **error)
{
  if (!l->w) {
    count (l, (guint64) out * in * l->matrix_size);
    count (l, out * sizeof (float));
    return TRUE;
  }
  return dg_weights_matrix (l->w, &p->w, out, in, error, "%s.weight", name)
         && dg_weights_vector (l->w, &p->b, out, error, "%s.bias", name);
}

static gboolean
load_resnet (Loader *w, Resnet *r, guint cin, guint cout, const char *name, GError **error)
{
  g_autofree char *n1 = g_strdup_printf ("%s.norm1", name), *c1 = g_strdup_printf ("%s.conv1", name);
  g_autofree char *n2 = g_strdup_printf ("%s.norm2", name), *c2 = g_strdup_printf ("%s.conv2", name);
  g_autofree char *sc = g_strdup_printf ("%s.conv_shortcut", name);
  r->cin = cin;
  r->cout = cout;
  r->has_shortcut = cin != cout;   /* diffusers ResnetBlock2D: use_in_shortcut = in != out */
  return load_norm (w, &r->norm1, cin, n1, error) && load_conv (w, &r->conv1, cout, cin, 3, c1, error)
         && load_norm (w, &r->norm2, cout, n2, error) && load_conv (w, &r->conv2, cout, cout, 3, c2, error)
         && (!r->has_shortcut || load_conv (w, &r->shortcut, cout, cin, 1, sc, error));
}

static gboolean
load_attn (Loader *w, Attn *a, guint c, const char *name, GError **error)
{
  g_autofree char *gn = g_strdup_printf ("%s.group_norm", name), *q = g_strdup_printf ("%s.to_q", name);
  g_autofree char *k = g_strdup_printf ("%s.to_k", name), *v = g_strdup_printf ("%s.to_v", name);
  g_autofree char *o = g_strdup_printf ("%s.to_out.0", name);
  a->c = c;
  return load_norm (w, &a->norm, c, gn, error) && load_linear (w, &a->q, c, c, q, error)
         && load_linear (w, &a->k, c, c, k, error) && load_linear (w, &a->v, c, c, v, error)
         && load_linear (w, &a->out, c, c, o, error);
}

/* mid_block: resnet, attention (if the config adds it), resnet, all at the innermost width. */
static gboolean
load_mid (Loader *w, Coder *cd, const DgVaeConfig *cfg, const char *part, GError **error)
{
  guint c = cfg->block_out_channels[cfg->n_blocks - 1];
  for (guint i = 0; i < 2; i++) {
    g_autofree char *name = g_strdup_printf ("%s.mid_block.resnets.%u", part, i);
    if (!load_resnet (w, &cd->mid[i], c, c, name, error))
      return FALSE;
  }
  cd->has_attn = cfg->mid_block_add_attention;
  g_autofree char *an = g_strdup_printf ("%s.mid_block.attentions.0", part);
  return !cd->has_attn || load_attn (w, &cd->attn, c, an, error);
}

/* diffusers Encoder: conv_in → DownEncoderBlock2D × n (layers_per_block resnets, a
 * downsampler after all but the last) → mid → GN + SiLU → conv_out to 2·latent (double_z). */
static gboolean
load_encoder (Loader *w, Coder *e, const DgVaeConfig *cfg, GError **error)
{
  const guint *ch = cfg->block_out_channels;
  if (!load_conv (w, &e->conv_in, ch[0], cfg->in_channels, 3, "encoder.conv_in", error))
    return FALSE;
  e->n_blocks = cfg->n_blocks;
  guint cin = ch[0];
  for (guint i = 0; i < cfg->n_blocks; i++) {
    Block *b = &e->blocks[i];
    b->n_res = cfg->layers_per_block;
    b->res = g_new0 (Resnet, b->n_res);
    for (guint j = 0; j < b->n_res; j++) {
      g_autofree char *name = g_strdup_printf ("encoder.down_blocks.%u.resnets.%u", i, j);
      if (!load_resnet (w, &b->res[j], j == 0 ? cin : ch[i], ch[i], name, error))
        return FALSE;
    }
    b->has_sampler = i + 1 < cfg->n_blocks;
    g_autofree char *sn = g_strdup_printf ("encoder.down_blocks.%u.downsamplers.0.conv", i);
    if (b->has_sampler && !load_conv (w, &b->sampler, ch[i], ch[i], 3, sn, error))
      return FALSE;
    cin = ch[i];
  }
  guint top = ch[cfg->n_blocks - 1];
  return load_mid (w, e, cfg, "encoder", error) && load_norm (w, &e->norm_out, top, "encoder.conv_norm_out", error)
         && load_conv (w, &e->conv_out, 2 * cfg->latent_channels, top, 3, "encoder.conv_out", error);
}

/* diffusers Decoder: conv_in → mid → UpDecoderBlock2D × n over the reversed widths
 * (layers_per_block + 1 resnets, an upsampler after all but the last) → GN + SiLU → conv_out. */
static gboolean
load_decoder (Loader *w, Coder *d, const DgVaeConfig *cfg, GError **error)
{
  const guint *ch = cfg->block_out_channels;
  guint n = cfg->n_blocks, top = ch[n - 1];
  if (!load_conv (w, &d->conv_in, top, cfg->latent_channels, 3, "decoder.conv_in", error)
      || !load_mid (w, d, cfg, "decoder", error))
    return FALSE;
  d->n_blocks = n;
  guint cin = top;
  for (guint i = 0; i < n; i++) {
    Block *b = &d->blocks[i];
    guint cout = ch[n - 1 - i];
    b->n_res = cfg->layers_per_block + 1;
    b->res = g_new0 (Resnet, b->n_res);
    for (guint j = 0; j < b->n_res; j++) {
      g_autofree char *name = g_strdup_printf ("decoder.up_blocks.%u.resnets.%u", i, j);
      if (!load_resnet (w, &b->res[j], j == 0 ? cin : cout, cout, name, error))
        return FALSE;
    }
    b->has_sampler = i + 1 < n;
    g_autofree char *sn = g_strdup_printf ("decoder.up_blocks.%u.upsamplers.0.conv", i);
    if (b->has_sampler && !load_conv (w, &b->sampler, cout, cout, 3, sn, error))
      return FALSE;
    cin = cout;
  }
  return load_norm (w, &d->norm_out, ch[0], "decoder.conv_norm_out", error)
         && load_conv (w, &d->conv_out, cfg->out_channels, ch[0], 3, "decoder.conv_out", error);
}

/* Options of AutoencoderKL that the SD3 VAE does not use and we do not implement. */
static gboolean
check_supported (const DgVaeConfig *cfg, const char *dir, GError **error)
{
  const char *what = NULL;
  if (cfg->act != DG_ACT_SILU)
    what = _("act_fn other than \"silu\"");
  else if (cfg->use_quant_conv || cfg->use_post_quant_conv)
    what = "use_quant_conv / use_post_quant_conv";
  if (what) {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 _("%s/config.json: %s is not supported (DeepGen's SD3 VAE has none)"), dir, what);
    return FALSE;
  }
  return TRUE;
}

static gboolean
upload_latent_consts (DgVae *vae, GError **error)
{
  guint L = vae->cfg.latent_channels;
  g_autofree float *s = g_new (float, L), *t = g_new (float, L);
  for (guint i = 0; i < L; i++) {
    s[i] = (float) (1.0 / vae->cfg.scaling_factor - 1.0);
    t[i] = (float) vae->cfg.shift_factor;
  }
  const int64_t shape[1] = { L };
  return dg_weights_upload_f32 (vae->weights, &vae->dec_scale, VKC_F32, 1, shape, s, error)
         && dg_weights_upload_f32 (vae->weights, &vae->dec_shift, VKC_F32, 1, shape, t, error);
}

static gboolean
build_parts (DgVae *vae, Loader *l, DgVaeParts parts, GError **error)
{
  gboolean ok = TRUE;
  if (ok && (parts & DG_VAE_ENCODER))
    ok = vae->enc.loaded = load_encoder (l, &vae->enc, &vae->cfg, error);
  if (ok && (parts & DG_VAE_DECODER))
    ok = vae->dec.loaded = load_decoder (l, &vae->dec, &vae->cfg, error);
  return ok;
}

static DgVae *describe (VkcDevice *dev, const DgVaeConfig *cfg, DgVaeParts parts, DgPrecision precision,
                        guint64 *weight_bytes, guint64 *pieces);

DgVae *
dg_vae_load (VkcDevice *dev, const char *dir, DgVaeParts parts, DgPrecision precision, GError **error)
{
  g_return_val_if_fail (dev && dir && (parts & DG_VAE_BOTH), NULL);
  g_autoptr (DgVae) vae = g_new0 (DgVae, 1);
  vae->dev = dev;
  vae->precision = precision;
  if (!dg_vae_config_load (dir, &vae->cfg, error) || !check_supported (&vae->cfg, dir, error))
    return NULL;
  g_autoptr (DgSafetensors) st = dg_safetensors_open (dir, error);
  if (!st)
    return NULL;
  vae->weights = dg_weights_new (dev, st, precision, "vae");
  guint64 pieces;   /* the pool sized to the weights: counted by the same loader code */
  dg_vae_free (describe (dev, &vae->cfg, parts, precision, NULL, &pieces));
  dg_weights_expect (vae->weights, pieces);
  Loader l = { vae->weights, 0, 0, 0 };
  gboolean ok = upload_latent_consts (vae, error) && build_parts (vae, &l, parts, error);
  vae->weights->st = NULL;   /* borrowed from st, which closes here */
  if (!ok)
    return NULL;
  return g_steal_pointer (&vae);
}

/* A VAE with the structure of @cfg and no weights: enough for dry runs. *weight_bytes: the
 * device bytes of its weights, *pieces: the same as a pool hands them out (both optional). */
static DgVae *
describe (VkcDevice *dev, const DgVaeConfig *cfg, DgVaeParts parts, DgPrecision precision, guint64 *weight_bytes,
          guint64 *pieces)
{
  DgVae *vae = g_new0 (DgVae, 1);
  vae->dev = dev;
  vae->cfg = *cfg;
  vae->precision = precision;
  Loader l = { NULL, precision == DG_PRECISION_BF16 ? 2 : 4, 0, 0 };
  count (&l, (guint64) cfg->latent_channels * sizeof (float));   /* upload_latent_consts: scale, shift */
  count (&l, (guint64) cfg->latent_channels * sizeof (float));
  build_parts (vae, &l, parts, NULL);
  if (weight_bytes)
    *weight_bytes = l.bytes;
  if (pieces)
    *pieces = l.pieces;
  return vae;
}

guint64
dg_vae_plan_weight_bytes (const DgVaeConfig *cfg, DgVaeParts parts, DgPrecision precision)
{
  guint64 bytes;
  g_autoptr (DgVae) vae = describe (NULL, cfg, parts, precision, &bytes, NULL);
  return bytes;
}

static void
coder_clear (Coder *c)
{
  for (guint i = 0; i < DG_CONFIG_MAX_BLOCKS; i++)
    g_free (c->blocks[i].res);
}

void
dg_vae_free (DgVae *vae)
{
  if (!vae)
    return;
  coder_clear (&vae->enc);
  coder_clear (&vae->dec);
  dg_weights_free (vae->weights);   /* frees the pool, with every tensor in it */
  g_free (vae);
}

const DgVaeConfig *dg_vae_config (const DgVae *vae) { return &vae->cfg; }
guint dg_vae_downscale (const DgVae *vae) { return 1u << (vae->cfg.n_blocks - 1); }
guint64 dg_vae_weight_bytes (const DgVae *vae) { return vae->weights->uploaded_bytes; }

void
dg_vae_set_tap (DgVae *vae, DgTapFunc func, gpointer user_data)
{
  vae->tap = func;
  vae->tap_data = user_data;
}

/* ---- recording context -------------------------------------------------------------------
 *
 * Every forward runs twice: a dry run (cmd == NULL) that only follows the shapes and notes how
 * large each of the three activation buffers ("slabs") and the GroupNorm scratch must be, then
 * the recording run over buffers of exactly that size. Layers take a free slab for their
 * output and drop their input; the automatic barriers of vkc_cmd make the reuse safe. */

#define N_SLABS 3

typedef struct {
  DgVae *vae;
  VkcDevice *dev;
  VkcCmd *cmd;                /* NULL during the dry run */
  DgArena *arena;
  gboolean bf16;
  gboolean busy[N_SLABS];
  VkcTensor slab[N_SLABS];
  int64_t need[N_SLABS];      /* elements: dry run result / recording capacity */
  VkcTensor scratch;
  int64_t scratch_elems;
  guint64 out_bytes;          /* dry run: tensors allocated outside the slabs */
  gboolean too_large;         /* dry run: a tensor exceeds what one op can bind on this device */
} Ctx;

/* An activation: a view of slab `slot`, or (slot −1) a tensor the slabs do not own. */
typedef struct {
  int slot;
  VkcTensor t;
} Act;

static gboolean
live (const Ctx *c)
{
  return c->cmd && !dg_arena_failed (c->arena);
}

static VkcTensor
nhwc_view (const VkcTensor *base, int64_t B, int64_t H, int64_t W, int64_t C)
{
  const int64_t shape[4] = { B, H, W, C }, stride[4] = { H * W * C, W * C, C, 1 };
  if (base)
    return vkc_tensor_view (base, 4, shape, stride, 0);
  VkcTensor t;   /* dry run: shape only */
  memset (&t, 0, sizeof t);
  t.dtype = VKC_F32;
  t.ndim = 4;
  memcpy (t.shape, shape, sizeof shape);
  memcpy (t.stride, stride, sizeof stride);
  return t;
}

static void
view_slab (Ctx *c, Act *a, int64_t B, int64_t H, int64_t W, int64_t C)
{
  int64_t n = B * H * W * C;
  if (!c->cmd)
    c->need[a->slot] = MAX (c->need[a->slot], n);
  else
    g_assert (n <= c->need[a->slot]);
  a->t = nhwc_view (live (c) ? &c->slab[a->slot] : NULL, B, H, W, C);
}

static Act
take (Ctx *c, int64_t B, int64_t H, int64_t W, int64_t C)
{
  Act a = { -1, { 0 } };
  for (int i = 0; i < N_SLABS && a.slot < 0; i++)
    if (!c->busy[i])
      a.slot = i;
  g_assert (a.slot >= 0);
  c->busy[a.slot] = TRUE;
  view_slab (c, &a, B, H, W, C);
  return a;
}

static void
drop (Ctx *c, Act a)
{
  if (a.slot >= 0)
    c->busy[a.slot] = FALSE;
}

static Act
borrow (const VkcTensor *t)
{
  Act a = { -1, *t };
  return a;
}

/* A tensor that outlives the forward (its result), from the arena. */
static void
output (Ctx *c, VkcTensor *out, int64_t B, int64_t H, int64_t W, int64_t C)
{
  if (!c->cmd) {
    c->out_bytes += (guint64) (B * H * W * C) * sizeof (float);
    *out = nhwc_view (NULL, B, H, W, C);
    return;
  }
  DG_ACT (c->arena, out, B, H, W, C);
}

static void
tap (Ctx *c, const char *name, const VkcTensor *t)
{
  if (live (c) && c->vae->tap)
    c->vae->tap (c->cmd, name, t, c->vae->tap_data);
}

/* ---- ops (no-ops during the dry run) ---------------------------------------------------- */

/* Rounds a contiguous tensor to bf16 in place (vkc_op_round_bf16 splits what exceeds a binding). */
static void
round_bf16 (Ctx *c, const VkcTensor *t)
{
  if (!c->bf16 || !live (c))
    return;
  vkc_op_round_bf16 (c->cmd, t, t);
}

static VkcNormFlags
norm_flags (const Ctx *c, gboolean silu)
{
  return (c->bf16 ? VKC_NORM_ROUND_BF16 : 0) | (silu ? VKC_NORM_SILU : 0);
}

/* y = [silu](GroupNorm(x)); rounded inside the op in bf16 mode. */
static void
group_norm (Ctx *c, const VkcTensor *y, const VkcTensor *x, const Param *p, gboolean silu)
{
  int groups = (int) c->vae->cfg.norm_num_groups;
  /* Planning without a device: the estimate vkc_ops_norm.h gives for one binding. */
  int64_t need = c->dev ? vkc_group_norm_scratch_elems (c->dev, y, x, groups)
                        : y->shape[0] * groups * (3 * vkc_tensor_numel (y) / y->shape[0] / 32768 + 5);
  if (!c->cmd) {
    c->scratch_elems = MAX (c->scratch_elems, need);
    return;
  }
  if (need > c->scratch_elems) {
    /* The dry run measured with other buffer offsets; a split can differ by a chunk. */
    DG_ACT (c->arena, &c->scratch, need);
    c->scratch_elems = need;
  }
  if (live (c))
    vkc_op_group_norm (c->cmd, y, x, &p->w, &p->b, groups, VAE_NORM_EPS, norm_flags (c, silu), &c->scratch);
}

typedef enum { CONV_3X3, CONV_3X3_S2, CONV_3X3_UP2, CONV_1X1 } ConvKind;

static void
conv (Ctx *c, ConvKind kind, const VkcTensor *y, const VkcTensor *x, const Param *p)
{
  if (!live (c))
    return;
  switch (kind) {
  case CONV_3X3: vkc_op_conv2d_3x3 (c->cmd, y, x, &p->w, &p->b); break;
  case CONV_3X3_S2: vkc_op_conv2d_3x3_s2 (c->cmd, y, x, &p->w, &p->b); break;
  case CONV_3X3_UP2: vkc_op_conv2d_3x3_up2 (c->cmd, y, x, &p->w, &p->b); break;
  case CONV_1X1: vkc_op_conv2d_1x1 (c->cmd, y, x, &p->w, &p->b); break;
  }
  round_bf16 (c, y);
}

/* y = a + b, rounded (a bf16 add) in bf16 mode; y is a contiguous slab view. */
static void
add (Ctx *c, const VkcTensor *y, const VkcTensor *a, const VkcTensor *b)
{
  if (!live (c))
    return;
  vkc_op_binary (c->cmd, y, a, b, VKC_BINARY_ADD);
  round_bf16 (c, y);
}

/* ---- layers ----------------------------------------------------------------------------- */

/* ResnetBlock2D (MODEL.md §6): h = conv2(silu(GN2(conv1(silu(GN1(x)))))), out = shortcut(x) + h.
 * Three buffers: x, the normalised tensor t, the output h. */
static Act
resnet (Ctx *c, const Resnet *r, Act x)
{
  int64_t B = x.t.shape[0], H = x.t.shape[1], W = x.t.shape[2];
  g_assert_cmpint (x.t.shape[3], ==, r->cin);
  Act t = take (c, B, H, W, r->cin);
  group_norm (c, &t.t, &x.t, &r->norm1, TRUE);
  Act h = take (c, B, H, W, r->cout);
  conv (c, CONV_3X3, &h.t, &t.t, &r->conv1);
  view_slab (c, &t, B, H, W, r->cout);
  group_norm (c, &t.t, &h.t, &r->norm2, TRUE);
  conv (c, CONV_3X3, &h.t, &t.t, &r->conv2);
  if (r->has_shortcut) {
    conv (c, CONV_1X1, &t.t, &x.t, &r->shortcut);
    add (c, &h.t, &h.t, &t.t);
  } else {
    add (c, &h.t, &h.t, &x.t);
  }
  drop (c, t);
  drop (c, x);
  return h;
}

static VkcTensor
tokens (const VkcTensor *t)
{
  const int64_t shape[3] = { t->shape[0], t->shape[1] * t->shape[2], t->shape[3] };
  return vkc_tensor_reshape (t, 3, shape);
}

static void
linear (Ctx *c, const VkcTensor *y, const VkcTensor *x, const Param *p)
{
  if (live (c))
    vkc_op_linear (c->cmd, y, x, &p->w, &p->b);
}

/* Mid-block attention (MODEL.md §6): y = x + to_out(softmax(q kᵀ/√C) v) over the H·W pixels of
 * each image, q/k/v = Linear(GroupNorm(x)). q, k and v share one [B, HW, 3C] buffer. */
static Act
attention (Ctx *c, const Attn *a, Act x)
{
  int64_t B = x.t.shape[0], H = x.t.shape[1], W = x.t.shape[2], C = a->c;
  /* vkc_op_attention binds the keys (and values) of one image at once: a slice of the
   * [HW, 3C] buffer, ~12·HW·C bytes. Above the binding range only tiles can run. */
  if (!c->cmd && c->dev
      && (VkDeviceSize) ((H * W - 1) * 3 * C + C) * sizeof (float) + 256 > vkc_device_info (c->dev)->max_storage_buffer_range)
    c->too_large = TRUE;
  Act n = take (c, B, H, W, C);
  group_norm (c, &n.t, &x.t, &a->norm, FALSE);
  Act qkv = take (c, B, H, W, 3 * C);
  if (live (c)) {
    VkcTensor nt = tokens (&n.t), qt = tokens (&qkv.t);
    VkcTensor q = vkc_tensor_narrow (&qt, 2, 0, C), k = vkc_tensor_narrow (&qt, 2, C, C);
    VkcTensor v = vkc_tensor_narrow (&qt, 2, 2 * C, C);
    const VkcTensor *dst[3] = { &q, &k, &v };
    const Param *w[3] = { &a->q, &a->k, &a->v };
    /* The reference's input to q/k/v is a transposed (non-contiguous) view, for which torch's
     * F.linear computes matmul, then add_(bias): in bf16 the product is rounded before the
     * bias is added, and the sum again. (to_out gets a contiguous input: addmm, one rounding.) */
    for (int i = 0; i < 3; i++)
      vkc_op_linear (c->cmd, dst[i], &nt, &w[i]->w, c->bf16 ? NULL : &w[i]->b);
    if (c->bf16) {
      round_bf16 (c, &qkv.t);
      for (int i = 0; i < 3; i++)
        vkc_op_binary (c->cmd, dst[i], dst[i], &w[i]->b, VKC_BINARY_ADD);
      round_bf16 (c, &qkv.t);
    }
    /* The attention output goes over the normalised input, which the projections consumed. */
    VkcAttnParams ap = { 1, 1, (int) C, (float) (1.0 / sqrt ((double) C)), false, NULL, false, NULL };
    vkc_op_attention (c->cmd, &nt, &q, &k, &v, &ap);
    round_bf16 (c, &n.t);
  }
  view_slab (c, &qkv, B, H, W, C);
  if (live (c)) {
    VkcTensor nt = tokens (&n.t), pt = tokens (&qkv.t);
    linear (c, &pt, &nt, &a->out);
    round_bf16 (c, &qkv.t);
  }
  add (c, &n.t, &qkv.t, &x.t);   /* residual_connection, rescale_output_factor 1 */
  drop (c, qkv);
  drop (c, x);
  return n;
}

static Act
mid_block (Ctx *c, const Coder *cd, Act x)
{
  x = resnet (c, &cd->mid[0], x);
  if (cd->has_attn)
    x = attention (c, &cd->attn, x);
  return resnet (c, &cd->mid[1], x);
}

/* Downsample2D: zero pad right and bottom by 1, 3×3 stride 2 (MODEL.md §6). */
static Act
downsample (Ctx *c, const Param *p, Act x)
{
  const int64_t *s = x.t.shape;
  Act y = take (c, s[0], (s[1] - 2) / 2 + 1, (s[2] - 2) / 2 + 1, s[3]);
  conv (c, CONV_3X3_S2, &y.t, &x.t, p);
  drop (c, x);
  return y;
}

/* Upsample2D: nearest ×2 then 3×3, fused in one conv. */
static Act
upsample (Ctx *c, const Param *p, Act x)
{
  const int64_t *s = x.t.shape;
  Act y = take (c, s[0], 2 * s[1], 2 * s[2], s[3]);
  conv (c, CONV_3X3_UP2, &y.t, &x.t, p);
  drop (c, x);
  return y;
}

/* conv_norm_out (GroupNorm + SiLU) then conv_out into a tensor of the arena. */
static void
head (Ctx *c, const Coder *cd, Act h, guint cout, VkcTensor *out)
{
  const int64_t *s = h.t.shape;
  Act t = take (c, s[0], s[1], s[2], s[3]);
  group_norm (c, &t.t, &h.t, &cd->norm_out, TRUE);
  drop (c, h);
  output (c, out, s[0], s[1], s[2], cout);
  conv (c, CONV_3X3, out, &t.t, &cd->conv_out);
  drop (c, t);
}

static void
encoder (Ctx *c, const VkcTensor *pixels, VkcTensor *moments)
{
  const Coder *e = &c->vae->enc;
  const int64_t *s = pixels->shape;
  Act h = take (c, s[0], s[1], s[2], c->vae->cfg.block_out_channels[0]);
  conv (c, CONV_3X3, &h.t, pixels, &e->conv_in);
  tap (c, "encoder.conv_in", &h.t);
  for (guint i = 0; i < e->n_blocks; i++) {
    const Block *b = &e->blocks[i];
    for (guint j = 0; j < b->n_res; j++)
      h = resnet (c, &b->res[j], h);
    if (b->has_sampler)
      h = downsample (c, &b->sampler, h);
    char name[48];
    g_snprintf (name, sizeof name, "encoder.down_blocks.%u", i);
    tap (c, name, &h.t);
  }
  h = mid_block (c, e, h);
  tap (c, "encoder.mid_block", &h.t);
  head (c, e, h, 2 * c->vae->cfg.latent_channels, moments);
  tap (c, "encoder.moments", moments);
}

static void
decoder (Ctx *c, Act z, VkcTensor *out)
{
  const Coder *d = &c->vae->dec;
  const int64_t *s = z.t.shape;
  Act h = take (c, s[0], s[1], s[2], c->vae->cfg.block_out_channels[c->vae->cfg.n_blocks - 1]);
  conv (c, CONV_3X3, &h.t, &z.t, &d->conv_in);
  drop (c, z);
  tap (c, "decoder.conv_in", &h.t);
  h = mid_block (c, d, h);
  tap (c, "decoder.mid_block", &h.t);
  for (guint i = 0; i < d->n_blocks; i++) {
    const Block *b = &d->blocks[i];
    for (guint j = 0; j < b->n_res; j++)
      h = resnet (c, &b->res[j], h);
    if (b->has_sampler)
      h = upsample (c, &b->sampler, h);
    char name[48];
    g_snprintf (name, sizeof name, "decoder.up_blocks.%u", i);
    tap (c, name, &h.t);
  }
  head (c, d, h, c->vae->cfg.out_channels, out);
}

/* ---- running a forward: dry run, buffers, recording ------------------------------------- */

typedef void (*Body) (Ctx *c, gpointer data);

static void
ctx_init (Ctx *c, DgVae *vae, VkcCmd *cmd, DgArena *arena)
{
  memset (c, 0, sizeof *c);
  c->vae = vae;
  c->dev = vae->dev;
  c->cmd = cmd;
  c->arena = arena;
  c->bf16 = vae->precision == DG_PRECISION_BF16;
}

static guint64
dry_run (DgVae *vae, Body body, gpointer data, Ctx *dry)
{
  ctx_init (dry, vae, NULL, NULL);
  body (dry, data);
  if (dry->too_large)
    return G_MAXUINT64;
  guint64 bytes = dry->out_bytes + (guint64) dry->scratch_elems * sizeof (float);
  for (int i = 0; i < N_SLABS; i++)
    bytes += (guint64) dry->need[i] * sizeof (float);
  return bytes;
}

static void
run (DgVae *vae, VkcCmd *cmd, DgArena *arena, Body body, gpointer data)
{
  Ctx dry, c;
  g_assert (dry_run (vae, body, data, &dry) != G_MAXUINT64);   /* callers plan first (vae.h) */
  /* The arena sized to this pass: the slabs, the scratch and the output, as the dry run found. */
  guint64 pieces = vkc_pool_piece_size ((guint64) MAX (dry.scratch_elems, 1) * sizeof (float))
                   + vkc_pool_piece_size (dry.out_bytes);
  for (int i = 0; i < N_SLABS; i++)
    if (dry.need[i] > 0)
      pieces += vkc_pool_piece_size ((guint64) dry.need[i] * sizeof (float));
  dg_arena_expect (arena, pieces);
  ctx_init (&c, vae, cmd, arena);
  for (int i = 0; i < N_SLABS; i++) {
    c.need[i] = dry.need[i];
    if (c.need[i] > 0)
      DG_ACT (arena, &c.slab[i], c.need[i]);
  }
  c.scratch_elems = MAX (dry.scratch_elems, 1);
  DG_ACT (arena, &c.scratch, c.scratch_elems);
  body (&c, data);
}

typedef struct {
  const VkcTensor *in, *eps;
  VkcTensor *out;
  const char *module;
} Job;

static void
decode_raw_body (Ctx *c, gpointer data)
{
  Job *j = data;
  decoder (c, borrow (j->in), j->out);
}

static void
decode_body (Ctx *c, gpointer data)
{
  Job *j = data;
  const int64_t *s = j->in->shape;
  Act z = take (c, s[0], s[1], s[2], s[3]);
  if (live (c) && !c->bf16) {
    vkc_op_modulate (c->cmd, &z.t, j->in, &c->vae->dec_scale, &c->vae->dec_shift);
  } else if (live (c)) {
    /* The reference computes z / scaling + shift on bf16 latents: two rounded steps. */
    vkc_op_scale (c->cmd, &z.t, j->in, (float) (1.0 / c->vae->cfg.scaling_factor));
    round_bf16 (c, &z.t);
    vkc_op_binary (c->cmd, &z.t, &z.t, &c->vae->dec_shift, VKC_BINARY_ADD);
    round_bf16 (c, &z.t);
  }
  tap (c, "decoder.in", &z.t);
  decoder (c, z, j->out);
}

static void
encode_body (Ctx *c, gpointer data)
{
  Job *j = data;
  encoder (c, j->in, j->out);
}

static void
check_latent (const DgVae *vae, const VkcTensor *z)
{
  g_assert (vae->dec.loaded);
  g_assert (z->ndim == 4 && z->dtype == VKC_F32 && z->shape[3] == vae->cfg.latent_channels);
}

void
dg_vae_decode_raw (DgVae *vae, VkcCmd *cmd, DgArena *arena, const VkcTensor *z, VkcTensor *out)
{
  check_latent (vae, z);
  Job j = { z, NULL, out, NULL };
  run (vae, cmd, arena, decode_raw_body, &j);
}

void
dg_vae_decode (DgVae *vae, VkcCmd *cmd, DgArena *arena, const VkcTensor *z, VkcTensor *out)
{
  check_latent (vae, z);
  Job j = { z, NULL, out, NULL };
  run (vae, cmd, arena, decode_body, &j);
}

static void
check_pixels (const DgVae *vae, const VkcTensor *x)
{
  g_assert (vae->enc.loaded);
  g_assert (x->ndim == 4 && x->dtype == VKC_F32 && x->shape[3] == vae->cfg.in_channels);
  /* Each downsampler needs at least 2 rows and columns. */
  g_assert (x->shape[1] >= dg_vae_downscale (vae) && x->shape[2] >= dg_vae_downscale (vae));
}

void
dg_vae_encode_moments (DgVae *vae, VkcCmd *cmd, DgArena *arena, const VkcTensor *pixels, VkcTensor *moments)
{
  check_pixels (vae, pixels);
  Job j = { pixels, NULL, moments, NULL };
  run (vae, cmd, arena, encode_body, &j);
}

void
dg_vae_latents_from_moments (DgVae *vae, VkcCmd *cmd, DgArena *arena, const VkcTensor *moments,
                             const VkcTensor *eps, VkcTensor *z)
{
  const int64_t *s = moments->shape;
  dg_arena_expect (arena, vkc_pool_piece_size ((guint64) (s[0] * s[1] * s[2] * (s[3] / 2)) * sizeof (float)));
  if (!DG_ACT (arena, z, s[0], s[1], s[2], s[3] / 2))
    return;
  VkcGaussianLatentParams p = { VAE_LOGVAR_MIN, VAE_LOGVAR_MAX, (float) vae->cfg.shift_factor,
                                (float) vae->cfg.scaling_factor, vae->precision == DG_PRECISION_BF16 };
  if (!dg_arena_failed (arena))
    vkc_op_gaussian_latent (cmd, z, moments, eps, &p);
}

void
dg_vae_encode (DgVae *vae, VkcCmd *cmd, DgArena *arena, const VkcTensor *pixels, const VkcTensor *eps,
               VkcTensor *z)
{
  VkcTensor moments;
  dg_vae_encode_moments (vae, cmd, arena, pixels, &moments);
  dg_vae_latents_from_moments (vae, cmd, arena, &moments, eps, z);
}

guint64
dg_vae_plan_decode_bytes (VkcDevice *dev, const DgVaeConfig *cfg, int batch, int latent_h, int latent_w)
{
  g_autoptr (DgVae) vae = describe (dev, cfg, DG_VAE_DECODER, DG_PRECISION_F32, NULL, NULL);
  VkcTensor z = nhwc_view (NULL, batch, latent_h, latent_w, cfg->latent_channels), out;
  Job j = { &z, NULL, &out, NULL };
  Ctx dry;
  return dry_run (vae, decode_body, &j, &dry);
}

guint64
dg_vae_plan_encode_bytes (VkcDevice *dev, const DgVaeConfig *cfg, int batch, int height, int width)
{
  g_autoptr (DgVae) vae = describe (dev, cfg, DG_VAE_ENCODER, DG_PRECISION_F32, NULL, NULL);
  VkcTensor x = nhwc_view (NULL, batch, height, width, cfg->in_channels), out;
  Job j = { &x, NULL, &out, NULL };
  Ctx dry;
  /* The moments' posterior sample (dg_vae_latents_from_moments) adds a latent-sized tensor. */
  int f = 1 << (cfg->n_blocks - 1);
  guint64 bytes = dry_run (vae, encode_body, &j, &dry);
  return bytes == G_MAXUINT64 ? bytes : bytes + (guint64) batch * (height / f) * (width / f) * cfg->latent_channels * sizeof (float);
}

/* ---- single modules ---------------------------------------------------------------------- */

typedef enum { MOD_RESNET, MOD_ATTN, MOD_DOWN, MOD_UP } ModKind;

typedef struct {
  ModKind kind;
  const Resnet *res;
  const Attn *attn;
  const Param *sampler;
} Module;

static gboolean
scan (const char *s, const char *fmt, guint *a, guint *b)
{
  int end = -1;
  int n = b ? sscanf (s, fmt, a, b, &end) : sscanf (s, fmt, a, &end);
  return n == (b ? 2 : 1) && end >= 0 && s[end] == '\0';
}

static gboolean
find_module (DgVae *vae, const char *name, Module *m)
{
  guint i, j;
  gboolean enc = g_str_has_prefix (name, "encoder."), dec = g_str_has_prefix (name, "decoder.");
  Coder *cd = enc ? &vae->enc : &vae->dec;
  if ((!enc && !dec) || !cd->loaded)
    return FALSE;
  const char *rest = name + strlen ("encoder.");
  memset (m, 0, sizeof *m);
  if (scan (rest, enc ? "down_blocks.%u.resnets.%u%n" : "up_blocks.%u.resnets.%u%n", &i, &j)) {
    m->kind = MOD_RESNET;
    m->res = i < cd->n_blocks && j < cd->blocks[i].n_res ? &cd->blocks[i].res[j] : NULL;
  } else if (scan (rest, enc ? "down_blocks.%u.downsamplers.0%n" : "up_blocks.%u.upsamplers.0%n", &i, NULL)) {
    m->kind = enc ? MOD_DOWN : MOD_UP;
    m->sampler = i < cd->n_blocks && cd->blocks[i].has_sampler ? &cd->blocks[i].sampler : NULL;
  } else if (scan (rest, "mid_block.resnets.%u%n", &i, NULL)) {
    m->kind = MOD_RESNET;
    m->res = i < 2 ? &cd->mid[i] : NULL;
  } else if (strcmp (rest, "mid_block.attentions.0") == 0) {
    m->kind = MOD_ATTN;
    m->attn = cd->has_attn ? &cd->attn : NULL;
  }
  return m->res || m->attn || m->sampler;
}

static void
module_body (Ctx *c, gpointer data)
{
  Job *j = data;
  Module m = { 0 };
  find_module (c->vae, j->module, &m);   /* dg_vae_forward_module checked the name */
  Act x = borrow (j->in), y;
  switch (m.kind) {
  case MOD_RESNET: y = resnet (c, m.res, x); break;
  case MOD_ATTN: y = attention (c, m.attn, x); break;
  case MOD_DOWN: y = downsample (c, m.sampler, x); break;
  default: y = upsample (c, m.sampler, x); break;
  }
  const int64_t *s = y.t.shape;
  output (c, j->out, s[0], s[1], s[2], s[3]);
  if (live (c))
    vkc_op_copy (c->cmd, j->out, &y.t);
  drop (c, y);
}

gboolean
dg_vae_forward_module (DgVae *vae, VkcCmd *cmd, DgArena *arena, const char *module, const VkcTensor *x,
                       VkcTensor *y)
{
  Module m;
  if (!find_module (vae, module, &m))
    return FALSE;
  Job j = { x, NULL, y, module };
  run (vae, cmd, arena, module_body, &j);
  return TRUE;
}

/* ---- tiles -------------------------------------------------------------------------------- */

/* Tile placement along one axis of `len` latents. */
typedef struct {
  guint n;
  guint size;        /* every tile's length (len when one tile covers it) */
  guint *pos;        /* n start positions, first 0, last len − size, evenly spread */
} Axis;

static void
axis_plan (Axis *a, guint len, const DgVaeTiling *t)
{
  a->size = MIN (len, t->tile);
  a->n = len <= t->tile ? 1 : 1 + (len - t->tile + (t->tile - t->overlap) - 1) / (t->tile - t->overlap);
  a->pos = g_new (guint, a->n);
  for (guint i = 0; i < a->n; i++)
    a->pos[i] = a->n == 1 ? 0 : (guint) ((guint64) i * (len - a->size) / (a->n - 1));
}

/* Start of the blend zone between tiles i and i+1, in 1/f latents: the middle `overlap`
 * latents of their overlap. */
static guint
zone_start (const Axis *a, guint i, guint overlap, guint f)
{
  guint g = a->pos[i] + a->size - a->pos[i + 1];   /* ≥ overlap by construction */
  return f * a->pos[i + 1] + f * (g - overlap) / 2;
}

static VkcTileRamp
axis_ramp (const Axis *a, guint i, guint overlap, guint f)
{
  VkcTileRamp r = { 0, 0, (int) (f * a->size), 0 };
  if (i > 0) {
    r.in_start = (int) (zone_start (a, i - 1, overlap, f) - f * a->pos[i]);
    r.in_len = (int) (f * overlap);
  }
  if (i + 1 < a->n) {
    r.out_start = (int) (zone_start (a, i, overlap, f) - f * a->pos[i]);
    r.out_len = (int) (f * overlap);
  }
  g_assert (r.in_start + r.in_len <= r.out_start);   /* no pixel in three tiles */
  return r;
}

static gboolean
check_tiling (const DgVaeTiling *t, GError **error)
{
  if (t->tile >= 1 && 3 * t->overlap + 3 <= t->tile)
    return TRUE;
  g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
               _("VAE tiling: a tile of %u latents cannot blend an overlap of %u (needs 3·overlap + 3 ≤ tile)"),
               t->tile, t->overlap);
  return FALSE;
}

static VkcTensor
window (const VkcTensor *t, int64_t y0, int64_t h, int64_t x0, int64_t w)
{
  VkcTensor v = vkc_tensor_narrow (t, 1, y0, h);
  return vkc_tensor_narrow (&v, 2, x0, w);
}

/* A tiled run: the input, the accumulator the tiles are blended into, and the tile just recorded. */
typedef struct {
  const VkcTensor *in, *acc;
  guint f;            /* input pixels per latent (encode) or 1 */
  guint out_f;        /* accumulator pixels per latent */
  guint overlap;
  VkcTensor result;   /* of the tile just recorded */
} TileJob;

static gboolean
run_tiles (DgVae *vae, const DgVaeTiling *tiling, guint h, guint w, TileJob *job,
           void (*record) (DgVae *, VkcCmd *, DgArena *, const VkcTensor *, TileJob *), DgVaeTileFunc progress,
           gpointer user_data, GError **error)
{
  Axis ay, ax;
  axis_plan (&ay, h, tiling);
  axis_plan (&ax, w, tiling);
  g_autoptr (DgArena) arena = dg_arena_new (vae->dev, "vae-tiles");
  gboolean ok = TRUE;
  guint total = ay.n * ax.n;
  for (guint k = 0; ok && k < total; k++) {
    guint ty = k / ax.n, tx = k % ax.n;
    dg_arena_reset (arena);
    g_autoptr (VkcCmd) cmd = vkc_cmd_begin (vae->dev, error);
    if (!cmd) {
      ok = FALSE;
      break;
    }
    if (k == 0)
      vkc_cmd_fill (cmd, job->acc->buffer, job->acc->offset, vkc_tensor_span_bytes (job->acc), 0);
    guint f = job->f;
    VkcTensor win = window (job->in, f * ay.pos[ty], f * ay.size, f * ax.pos[tx], f * ax.size);
    record (vae, cmd, arena, &win, job);
    if (!dg_arena_check (arena, error)) {
      ok = FALSE;
      break;
    }
    VkcTileRamp ry = axis_ramp (&ay, ty, job->overlap, job->out_f), rx = axis_ramp (&ax, tx, job->overlap, job->out_f);
    vkc_op_blend_tile (cmd, job->acc, &job->result, job->out_f * ay.pos[ty], job->out_f * ax.pos[tx], &ry, &rx);
    ok = vkc_cmd_submit_wait (cmd, error);
    if (ok && progress && !progress (k + 1, total, user_data)) {
      g_set_error (error, DG_ERROR, DG_ERROR_CANCELLED, _("VAE tiling cancelled"));
      ok = FALSE;
    }
  }
  if (!ok)
    dg_error_from_vkc (error);
  g_free (ay.pos);
  g_free (ax.pos);
  return ok;
}

static void
record_decode (DgVae *vae, VkcCmd *cmd, DgArena *arena, const VkcTensor *win, TileJob *job)
{
  dg_vae_decode (vae, cmd, arena, win, &job->result);
}

static void
record_encode (DgVae *vae, VkcCmd *cmd, DgArena *arena, const VkcTensor *win, TileJob *job)
{
  dg_vae_encode_moments (vae, cmd, arena, win, &job->result);
}

gboolean
dg_vae_decode_tiled (DgVae *vae, const VkcTensor *z, const VkcTensor *out, const DgVaeTiling *tiling,
                     DgVaeTileFunc progress, gpointer user_data, GError **error)
{
  check_latent (vae, z);
  guint f = dg_vae_downscale (vae);
  g_assert (out->ndim == 4 && vkc_tensor_is_contiguous (out) && out->shape[0] == z->shape[0]
            && out->shape[1] == f * z->shape[1] && out->shape[2] == f * z->shape[2]
            && out->shape[3] == vae->cfg.out_channels);
  if (!check_tiling (tiling, error))
    return FALSE;
  TileJob job = { z, out, 1, f, tiling->overlap, { 0 } };
  return run_tiles (vae, tiling, (guint) z->shape[1], (guint) z->shape[2], &job, record_decode, progress, user_data,
                    error);
}

gboolean
dg_vae_encode_tiled (DgVae *vae, const VkcTensor *pixels, const VkcTensor *eps, const VkcTensor *z,
                     const DgVaeTiling *tiling, DgVaeTileFunc progress, gpointer user_data, GError **error)
{
  check_pixels (vae, pixels);
  guint f = dg_vae_downscale (vae);
  int64_t H = pixels->shape[1], W = pixels->shape[2];
  if (H % f || W % f) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _("tiled VAE encoding needs image sides that are multiples of %u, not %" PRId64 "×%"
                   PRId64), f, W, H);
    return FALSE;
  }
  if (!check_tiling (tiling, error))
    return FALSE;
  g_autoptr (DgArena) arena = dg_arena_new (vae->dev, "vae-moments");
  VkcTensor moments;
  dg_arena_expect (arena, vkc_pool_piece_size ((guint64) (pixels->shape[0] * (H / f) * (W / f) * 2
                                                           * vae->cfg.latent_channels) * sizeof (float)));
  DG_ACT (arena, &moments, pixels->shape[0], H / f, W / f, 2 * vae->cfg.latent_channels);
  if (!dg_arena_check (arena, error))
    return FALSE;
  TileJob job = { pixels, &moments, f, 1, tiling->overlap, { 0 } };
  if (!run_tiles (vae, tiling, (guint) (H / f), (guint) (W / f), &job, record_encode, progress, user_data, error))
    return FALSE;
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (vae->dev, error);
  VkcTensor zz;
  if (cmd)
    dg_vae_latents_from_moments (vae, cmd, arena, &moments, eps, &zz);
  if (!cmd || !dg_arena_check (arena, error))
    return FALSE;
  g_assert (vkc_tensor_is_contiguous (z));
  vkc_cmd_copy (cmd, zz.buffer, zz.offset, z->buffer, z->offset, vkc_tensor_span_bytes (&zz));
  if (!vkc_cmd_submit_wait (cmd, error)) {
    dg_error_from_vkc (error);
    return FALSE;
  }
  return TRUE;
}
