/* The SD3 VAE (MODEL.md §6) on vkcompute: loading, the encoder and decoder forward passes,
 * tiled processing and the 8-bit conversions. */
#include "vae.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dg_i18n.h"
#include "safetensors.h"
#include "vae_pass.h"
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
  gboolean has_sampler; /* encoder: downsampler after the resnets; decoder: upsampler */
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
  DgWeights *weights; /* owns every weight tensor */
  Coder enc, dec;
  /* z_vae = z_model · (1 + dec_scale) + dec_shift, i.e. z/scaling_factor + shift_factor */
  VkcTensor dec_scale, dec_shift;
  DgTapFunc tap;
  gpointer tap_data;
};

/* Builds the structure of the parts the layout walks (vae_layout.h) and, with w set, uploads
 * their tensors; with w == NULL only adds up the device bytes they would take (planning from a
 * config alone). */
typedef struct {
  DgVae *vae;
  DgWeights *w;
  gsize matrix_size; /* bytes per matrix element on the device */
  guint64 bytes;
  guint64 pieces; /* the same as a pool hands them out (vkc_pool_piece_size) */
} Loader;

/* The Param a tensor of the layout belongs to, the structure it implies noted on the way. */
static Param *
param_of (DgVae *vae, const DgLayoutTensor *t)
{
  Coder *cd = (t->slot & VAE_IN_DECODER) ? &vae->dec : &vae->enc;
  const int slot = t->slot & ~VAE_IN_DECODER, j = t->sub / 2;
  cd->loaded = TRUE;
  cd->n_blocks = vae->cfg.n_blocks;
  Block *b = t->layer >= 0 ? &cd->blocks[t->layer] : NULL;
  Resnet *r = NULL;
  if (slot >= VAE_RES_NORM1 && slot <= VAE_RES_SHORTCUT) {
    if (b && !b->res)
      b->res = g_new0 (Resnet, vae->cfg.layers_per_block + 1);
    if (b)
      b->n_res = MAX (b->n_res, (guint) j + 1);
    r = b ? &b->res[j] : &cd->mid[j];
  }
  switch ((DgVaeSlot) slot) {
  case VAE_CONV_IN: return &cd->conv_in;
  case VAE_RES_NORM1: r->cin = (guint) t->shape[0]; return &r->norm1;
  case VAE_RES_CONV1: r->cout = (guint) t->shape[0]; return &r->conv1;
  case VAE_RES_NORM2: return &r->norm2;
  case VAE_RES_CONV2: return &r->conv2;
  case VAE_RES_SHORTCUT: r->has_shortcut = TRUE; return &r->shortcut;
  case VAE_SAMPLER: b->has_sampler = TRUE; return &b->sampler;
  case VAE_ATTN_NORM:
    cd->has_attn = TRUE;
    cd->attn.c = (guint) t->shape[0];
    return &cd->attn.norm;
  case VAE_ATTN_Q: return &cd->attn.q;
  case VAE_ATTN_K: return &cd->attn.k;
  case VAE_ATTN_V: return &cd->attn.v;
  case VAE_ATTN_OUT: return &cd->attn.out;
  case VAE_NORM_OUT: return &cd->norm_out;
  case VAE_CONV_OUT: return &cd->conv_out;
  case VAE_SCALE:
  case VAE_SHIFT:
  case VAE_QUANT_CONV: break;
  }
  g_return_val_if_reached (NULL);
}

/* z_vae = z_model · (1 + scale) + shift: 1/scaling_factor − 1 and shift_factor per channel. */
static gboolean
upload_latent_const (DgVae *vae, gboolean shift, GError **error)
{
  guint L = vae->cfg.latent_channels;
  g_autofree float *v = g_new (float, L);
  for (guint i = 0; i < L; i++)
    v[i] = shift ? (float) vae->cfg.shift_factor : (float) (1.0 / vae->cfg.scaling_factor - 1.0);
  const int64_t shape[1] = { L };
  return dg_weights_upload_f32 (vae->weights, shift ? &vae->dec_shift : &vae->dec_scale, VKC_F32, 1, shape, v, error);
}

static gboolean
load_tensor (const DgLayoutTensor *t, gpointer data, GError **error)
{
  Loader *l = data;
  const int slot = t->slot & ~VAE_IN_DECODER;
  if (slot == VAE_QUANT_CONV) { /* refused by check_supported before anything loads */
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED, _ ("%s is not supported"), t->name);
    return FALSE;
  }
  if (!l->w) { /* counting */
    const guint64 n = (guint64) dg_layout_numel (t);
    const guint64 bytes =
        n * (t->kind == DG_LAYOUT_VECTOR || t->kind == DG_LAYOUT_COMPUTED ? sizeof (float) : l->matrix_size);
    l->bytes += bytes;
    l->pieces += vkc_pool_piece_size (bytes);
    if (slot != VAE_SCALE && slot != VAE_SHIFT)
      param_of (l->vae, t);
    return TRUE;
  }
  if (slot == VAE_SCALE || slot == VAE_SHIFT)
    return upload_latent_const (l->vae, slot == VAE_SHIFT, error);
  Param *p = param_of (l->vae, t);
  VkcTensor *dst = t->sub % 2 ? &p->b : &p->w;
  switch (t->kind) {
  case DG_LAYOUT_MATRIX:
    return dg_weights_conv (l->w, dst, t->shape[0], t->shape[1], t->shape[2], t->shape[3], error, "%s", t->name);
  case DG_LAYOUT_LINEAR: return dg_weights_matrix (l->w, dst, t->shape[0], t->shape[1], error, "%s", t->name);
  case DG_LAYOUT_VECTOR: return dg_weights_vector (l->w, dst, t->shape[0], error, "%s", t->name);
  default: g_return_val_if_reached (FALSE);
  }
}

/* Options of AutoencoderKL that the SD3 VAE does not use and we do not implement. */
static gboolean
check_supported (const DgVaeConfig *cfg, const char *dir, GError **error)
{
  const char *what = NULL;
  if (cfg->act != DG_ACT_SILU)
    what = _ ("act_fn other than \"silu\"");
  else if (cfg->use_quant_conv || cfg->use_post_quant_conv)
    what = "use_quant_conv / use_post_quant_conv";
  if (what) {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 _ ("%s/config.json: %s is not supported (DeepGen's SD3 VAE has none)"), dir, what);
    return FALSE;
  }
  return TRUE;
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
  guint64 pieces; /* the pool sized to the weights: counted from the same layout */
  dg_vae_free (describe (dev, &vae->cfg, parts, precision, NULL, &pieces));
  dg_weights_expect (vae->weights, pieces);
  Loader l = { vae, vae->weights, 0, 0, 0 };
  gboolean ok = dg_vae_layout_weights (&vae->cfg, (int) parts, load_tensor, &l, error);
  vae->weights->st = NULL; /* borrowed from st, which closes here */
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
  Loader l = { vae, NULL, precision == DG_PRECISION_BF16 ? 2 : 4, 0, 0 };
  dg_vae_layout_weights (cfg, (int) parts, load_tensor, &l, NULL);
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
  for (guint i = 0; i < DG_CONFIG_MAX_BLOCKS; i++) g_free (c->blocks[i].res);
}

void
dg_vae_free (DgVae *vae)
{
  if (!vae)
    return;
  coder_clear (&vae->enc);
  coder_clear (&vae->dec);
  dg_weights_free (vae->weights); /* frees the pool, with every tensor in it */
  g_free (vae);
}

const DgVaeConfig *
dg_vae_config (const DgVae *vae)
{
  return &vae->cfg;
}
guint
dg_vae_downscale (const DgVae *vae)
{
  return 1u << (vae->cfg.n_blocks - 1);
}
guint64
dg_vae_weight_bytes (const DgVae *vae)
{
  return vae->weights->uploaded_bytes;
}

void
dg_vae_set_tap (DgVae *vae, DgTapFunc func, gpointer user_data)
{
  vae->tap = func;
  vae->tap_data = user_data;
}

/* ---- recording a pass ---------------------------------------------------------------------
 *
 * The layers of a pass — which of three activation buffers ("slabs") each takes and drops, at
 * what shape — are walked by vae_pass.c. Every forward walks twice: a dry run that only follows
 * the shapes and notes how large each slab and the GroupNorm scratch must be (the memory plan
 * runs the same dry run), then the recording run over buffers of exactly that size, with the
 * operations below. Layers take a free slab for their output and drop their input; the
 * automatic barriers of vkc_cmd make the reuse safe. */

typedef struct {
  DgVae *vae;
  VkcDevice *dev;
  VkcCmd *cmd;
  DgArena *arena;
  gboolean bf16;
  VkcTensor slab[DG_VAE_N_SLABS];
  VkcTensor scratch;
  int64_t scratch_elems;
  const VkcTensor *in; /* the pass's input */
  VkcTensor *out;      /* its result, allocated when the walk reaches it */
} Ctx;

static gboolean
live (const Ctx *c)
{
  return !dg_arena_failed (c->arena);
}

static VkcTensor
nhwc_view (const VkcTensor *base, int64_t B, int64_t H, int64_t W, int64_t C)
{
  const int64_t shape[4] = { B, H, W, C }, stride[4] = { H * W * C, W * C, C, 1 };
  if (base)
    return vkc_tensor_view (base, 4, shape, stride, 0);
  VkcTensor t; /* shape only */
  memset (&t, 0, sizeof t);
  t.dtype = VKC_F32;
  t.ndim = 4;
  memcpy (t.shape, shape, sizeof shape);
  memcpy (t.stride, stride, sizeof stride);
  return t;
}

/* The tensor an activation of the walk stands for. */
static VkcTensor
tensor_of (const Ctx *c, const DgVaeAct *a)
{
  if (a->slot == DG_VAE_IN)
    return *c->in;
  if (a->slot == DG_VAE_OUT)
    return *c->out;
  return nhwc_view (&c->slab[a->slot], a->B, a->H, a->W, a->C);
}

/* The parameters a step of the walk names. */
static const Coder *
coder_of (const DgVae *vae, const DgVaeParam *p)
{
  return (p->slot & VAE_IN_DECODER) ? &vae->dec : &vae->enc;
}

static const Param *
param_at (const DgVae *vae, const DgVaeParam *p)
{
  const Coder *cd = coder_of (vae, p);
  const Resnet *r =
      p->layer >= 0 ? (cd->blocks[p->layer].res ? &cd->blocks[p->layer].res[p->j] : NULL) : &cd->mid[p->j];
  switch ((DgVaeSlot) (p->slot & ~VAE_IN_DECODER)) {
  case VAE_CONV_IN: return &cd->conv_in;
  case VAE_RES_NORM1: return &r->norm1;
  case VAE_RES_CONV1: return &r->conv1;
  case VAE_RES_NORM2: return &r->norm2;
  case VAE_RES_CONV2: return &r->conv2;
  case VAE_RES_SHORTCUT: return &r->shortcut;
  case VAE_SAMPLER: return &cd->blocks[p->layer].sampler;
  case VAE_ATTN_NORM: return &cd->attn.norm;
  case VAE_NORM_OUT: return &cd->norm_out;
  case VAE_CONV_OUT: return &cd->conv_out;
  default: break;
  }
  g_return_val_if_reached (NULL);
}

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
op_group_norm (gpointer u, const DgVaeAct *ya, const DgVaeAct *xa, const DgVaeParam *w, gboolean silu)
{
  Ctx *c = u;
  if (!live (c))
    return;
  const int groups = (int) c->vae->cfg.norm_num_groups;
  VkcTensor y = tensor_of (c, ya), x = tensor_of (c, xa);
  const int64_t need = vkc_group_norm_scratch_elems (c->dev, &y, &x, groups);
  if (need > c->scratch_elems) {
    /* The dry run measured with other buffer offsets; a split can differ by a chunk. */
    DG_ACT (c->arena, &c->scratch, need);
    c->scratch_elems = need;
  }
  const Param *p = param_at (c->vae, w);
  if (live (c))
    vkc_op_group_norm (c->cmd, &y, &x, &p->w, &p->b, groups, VAE_NORM_EPS, norm_flags (c, silu), &c->scratch);
}

static void
op_conv (gpointer u, DgVaeConvKind kind, const DgVaeAct *ya, const DgVaeAct *xa, const DgVaeParam *w)
{
  Ctx *c = u;
  if (!live (c))
    return;
  VkcTensor y = tensor_of (c, ya), x = tensor_of (c, xa);
  const Param *p = param_at (c->vae, w);
  switch (kind) {
  case DG_VAE_CONV_3X3: vkc_op_conv2d_3x3 (c->cmd, &y, &x, &p->w, &p->b); break;
  case DG_VAE_CONV_3X3_S2: vkc_op_conv2d_3x3_s2 (c->cmd, &y, &x, &p->w, &p->b); break;
  case DG_VAE_CONV_3X3_UP2: vkc_op_conv2d_3x3_up2 (c->cmd, &y, &x, &p->w, &p->b); break;
  case DG_VAE_CONV_1X1: vkc_op_conv2d_1x1 (c->cmd, &y, &x, &p->w, &p->b); break;
  }
  round_bf16 (c, &y);
}

/* y = a + b, rounded (a bf16 add) in bf16 mode; y is a contiguous slab view. */
static void
op_add (gpointer u, const DgVaeAct *ya, const DgVaeAct *aa, const DgVaeAct *ba)
{
  Ctx *c = u;
  if (!live (c))
    return;
  VkcTensor y = tensor_of (c, ya), a = tensor_of (c, aa), b = tensor_of (c, ba);
  vkc_op_binary (c->cmd, &y, &a, &b, VKC_BINARY_ADD);
  round_bf16 (c, &y);
}

static VkcTensor
tokens (const VkcTensor *t)
{
  const int64_t shape[3] = { t->shape[0], t->shape[1] * t->shape[2], t->shape[3] };
  return vkc_tensor_reshape (t, 3, shape);
}

/* Mid-block attention (MODEL.md §6), first half: q, k, v = Linear(GroupNorm(x)) into one
 * [B, HW, 3C] buffer, then softmax(q kᵀ/√C) v over the normalised input @na, which the
 * projections consumed. */
static void
op_attention (gpointer u, const DgVaeAct *na, const DgVaeAct *qkva, const DgVaeParam *w)
{
  Ctx *c = u;
  if (!live (c))
    return;
  const Attn *a = &coder_of (c->vae, w)->attn;
  const int64_t C = a->c;
  VkcTensor n = tensor_of (c, na), qkv = tensor_of (c, qkva);
  VkcTensor nt = tokens (&n), qt = tokens (&qkv);
  VkcTensor q = vkc_tensor_narrow (&qt, 2, 0, C), k = vkc_tensor_narrow (&qt, 2, C, C);
  VkcTensor v = vkc_tensor_narrow (&qt, 2, 2 * C, C);
  const VkcTensor *dst[3] = { &q, &k, &v };
  const Param *p[3] = { &a->q, &a->k, &a->v };
  /* The reference's input to q/k/v is a transposed (non-contiguous) view, for which torch's
   * F.linear computes matmul, then add_(bias): in bf16 the product is rounded before the
   * bias is added, and the sum again. (to_out gets a contiguous input: addmm, one rounding.) */
  for (int i = 0; i < 3; i++) vkc_op_linear (c->cmd, dst[i], &nt, &p[i]->w, c->bf16 ? NULL : &p[i]->b);
  if (c->bf16) {
    round_bf16 (c, &qkv);
    for (int i = 0; i < 3; i++) vkc_op_binary (c->cmd, dst[i], dst[i], &p[i]->b, VKC_BINARY_ADD);
    round_bf16 (c, &qkv);
  }
  VkcAttnParams ap = { 1, 1, (int) C, (float) (1.0 / sqrt ((double) C)), false, NULL, false, NULL };
  vkc_op_attention (c->cmd, &nt, &q, &k, &v, &ap);
  round_bf16 (c, &n);
}

/* Second half: to_out.0 of the attention output into the (re-viewed) qkv slab. */
static void
op_attention_out (gpointer u, const DgVaeAct *proja, const DgVaeAct *na, const DgVaeParam *w)
{
  Ctx *c = u;
  if (!live (c))
    return;
  const Attn *a = &coder_of (c->vae, w)->attn;
  VkcTensor n = tensor_of (c, na), proj = tensor_of (c, proja);
  VkcTensor nt = tokens (&n), pt = tokens (&proj);
  vkc_op_linear (c->cmd, &pt, &nt, &a->out.w, &a->out.b);
  round_bf16 (c, &proj);
}

/* z_vae = z_model / scaling + shift. */
static void
op_unscale (gpointer u, const DgVaeAct *za, const DgVaeAct *ina)
{
  Ctx *c = u;
  if (!live (c))
    return;
  VkcTensor z = tensor_of (c, za), in = tensor_of (c, ina);
  if (!c->bf16) {
    vkc_op_modulate (c->cmd, &z, &in, &c->vae->dec_scale, &c->vae->dec_shift);
  } else {
    /* The reference computes z / scaling + shift on bf16 latents: two rounded steps. */
    vkc_op_scale (c->cmd, &z, &in, (float) (1.0 / c->vae->cfg.scaling_factor));
    round_bf16 (c, &z);
    vkc_op_binary (c->cmd, &z, &z, &c->vae->dec_shift, VKC_BINARY_ADD);
    round_bf16 (c, &z);
  }
}

/* The result tensor, from the arena: it outlives the pass. */
static void
op_output (gpointer u, const DgVaeAct *a)
{
  Ctx *c = u;
  DG_ACT (c->arena, c->out, a->B, a->H, a->W, a->C);
}

static void
op_copy (gpointer u, const DgVaeAct *ya, const DgVaeAct *xa)
{
  Ctx *c = u;
  if (!live (c))
    return;
  VkcTensor y = tensor_of (c, ya), x = tensor_of (c, xa);
  vkc_op_copy (c->cmd, &y, &x);
}

static void
op_tap (gpointer u, const char *name, const DgVaeAct *a)
{
  Ctx *c = u;
  if (live (c) && c->vae->tap) {
    VkcTensor t = tensor_of (c, a);
    c->vae->tap (c->cmd, name, &t, c->vae->tap_data);
  }
}

static const DgVaeOps live_ops = {
  op_conv, op_group_norm, op_add, op_attention, op_attention_out, op_unscale, op_output, op_copy, op_tap,
};

/* ---- running a forward: dry run, buffers, recording ------------------------------------- */

typedef enum { JOB_ENCODE, JOB_DECODE, JOB_DECODE_RAW, JOB_MODULE } JobKind;

typedef struct {
  JobKind kind;
  const VkcTensor *in;
  VkcTensor *out;
  int part, module, layer, j; /* JOB_MODULE: dg_vae_pass_module's arguments */
} Job;

static void
walk (DgVaePass *p, const Job *j)
{
  const int64_t *s = j->in->shape;
  const DgVaeAct in = { DG_VAE_IN, s[0], s[1], s[2], s[3] };
  switch (j->kind) {
  case JOB_ENCODE: dg_vae_pass_encode (p, &in); break;
  case JOB_DECODE: dg_vae_pass_decode (p, &in); break;
  case JOB_DECODE_RAW: dg_vae_pass_decode_raw (p, &in); break;
  case JOB_MODULE: dg_vae_pass_module (p, j->part, j->module, j->layer, j->j, &in); break;
  }
}

/* The GroupNorm scratch vkc_ops_norm asks for on this device, for tensors of that shape. */
static gint64
device_group_norm_scratch (gpointer dev, gint64 B, gint64 H, gint64 W, gint64 C, int groups)
{
  VkcTensor t = nhwc_view (NULL, B, H, W, C);
  return vkc_group_norm_scratch_elems (dev, &t, &t, groups);
}

/* The dry run on @dev (NULL: no device, the scratch estimated, no binding limit): bytes of the
 * arena, G_MAXUINT64 when the device cannot run it whole. */
static guint64
dry_run (VkcDevice *dev, const DgVaeConfig *cfg, const Job *j, DgVaePass *dry)
{
  DgVaeLimits lim = { 0, device_group_norm_scratch, dev };
  if (dev)
    lim.max_binding = vkc_device_info (dev)->max_storage_buffer_range;
  *dry = (DgVaePass) { .cfg = cfg, .limits = dev ? &lim : NULL };
  walk (dry, j);
  dry->limits = NULL; /* lim is local */
  return dry->too_large ? G_MAXUINT64 : dg_vae_pass_bytes (dry);
}

static void
run (DgVae *vae, VkcCmd *cmd, DgArena *arena, const Job *j)
{
  DgVaePass dry;
  g_assert (dry_run (vae->dev, &vae->cfg, j, &dry) != G_MAXUINT64); /* callers plan first (vae.h) */
  /* The arena sized to this pass: the slabs, the scratch and the output, as the dry run found. */
  guint64 pieces =
      vkc_pool_piece_size ((guint64) MAX (dry.scratch, 1) * sizeof (float)) + vkc_pool_piece_size (dry.out_bytes);
  for (int i = 0; i < DG_VAE_N_SLABS; i++)
    if (dry.need[i] > 0)
      pieces += vkc_pool_piece_size ((guint64) dry.need[i] * sizeof (float));
  dg_arena_expect (arena, pieces);
  Ctx c = { .vae = vae,
            .dev = vae->dev,
            .cmd = cmd,
            .arena = arena,
            .bf16 = vae->precision == DG_PRECISION_BF16,
            .in = j->in,
            .out = j->out };
  for (int i = 0; i < DG_VAE_N_SLABS; i++)
    if (dry.need[i] > 0)
      DG_ACT (arena, &c.slab[i], dry.need[i]);
  c.scratch_elems = MAX (dry.scratch, 1);
  DG_ACT (arena, &c.scratch, c.scratch_elems);
  DgVaePass rec = { .cfg = &vae->cfg, .ops = &live_ops, .user_data = &c };
  memcpy (rec.need, dry.need, sizeof rec.need);
  walk (&rec, j);
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
  Job j = { JOB_DECODE_RAW, z, out, 0, 0, 0, 0 };
  run (vae, cmd, arena, &j);
}

void
dg_vae_decode (DgVae *vae, VkcCmd *cmd, DgArena *arena, const VkcTensor *z, VkcTensor *out)
{
  check_latent (vae, z);
  Job j = { JOB_DECODE, z, out, 0, 0, 0, 0 };
  run (vae, cmd, arena, &j);
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
  Job j = { JOB_ENCODE, pixels, moments, 0, 0, 0, 0 };
  run (vae, cmd, arena, &j);
}

void
dg_vae_latents_from_moments (DgVae *vae, VkcCmd *cmd, DgArena *arena, const VkcTensor *moments, const VkcTensor *eps,
                             VkcTensor *z)
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
dg_vae_encode (DgVae *vae, VkcCmd *cmd, DgArena *arena, const VkcTensor *pixels, const VkcTensor *eps, VkcTensor *z)
{
  VkcTensor moments;
  dg_vae_encode_moments (vae, cmd, arena, pixels, &moments);
  dg_vae_latents_from_moments (vae, cmd, arena, &moments, eps, z);
}

guint64
dg_vae_plan_decode_bytes (VkcDevice *dev, const DgVaeConfig *cfg, int batch, int latent_h, int latent_w)
{
  VkcTensor z = nhwc_view (NULL, batch, latent_h, latent_w, cfg->latent_channels), out;
  Job j = { JOB_DECODE, &z, &out, 0, 0, 0, 0 };
  DgVaePass dry;
  return dry_run (dev, cfg, &j, &dry);
}

guint64
dg_vae_plan_encode_bytes (VkcDevice *dev, const DgVaeConfig *cfg, int batch, int height, int width)
{
  VkcTensor x = nhwc_view (NULL, batch, height, width, cfg->in_channels), out;
  Job j = { JOB_ENCODE, &x, &out, 0, 0, 0, 0 };
  DgVaePass dry;
  /* The moments' posterior sample (dg_vae_latents_from_moments) adds a latent-sized tensor. */
  int f = 1 << (cfg->n_blocks - 1);
  guint64 bytes = dry_run (dev, cfg, &j, &dry);
  return bytes == G_MAXUINT64
             ? bytes
             : bytes + (guint64) batch * (height / f) * (width / f) * cfg->latent_channels * sizeof (float);
}

/* ---- single modules ---------------------------------------------------------------------- */

static gboolean
scan (const char *s, const char *fmt, guint *a, guint *b)
{
  int end = -1;
  int n = b ? sscanf (s, fmt, a, b, &end) : sscanf (s, fmt, a, &end);
  return n == (b ? 2 : 1) && end >= 0 && s[end] == '\0';
}

/* The module @name as dg_vae_pass_module's arguments; FALSE when the VAE has no such module. */
static gboolean
find_module (DgVae *vae, const char *name, Job *j)
{
  guint i, k;
  gboolean enc = g_str_has_prefix (name, "encoder."), dec = g_str_has_prefix (name, "decoder.");
  Coder *cd = enc ? &vae->enc : &vae->dec;
  if ((!enc && !dec) || !cd->loaded)
    return FALSE;
  const char *rest = name + strlen ("encoder.");
  j->kind = JOB_MODULE;
  j->part = enc ? 0 : VAE_IN_DECODER;
  j->layer = -1;
  j->j = -1;
  if (scan (rest, enc ? "down_blocks.%u.resnets.%u%n" : "up_blocks.%u.resnets.%u%n", &i, &k)) {
    j->layer = (int) i;
    j->j = (int) k;
    return i < cd->n_blocks && k < cd->blocks[i].n_res;
  }
  if (scan (rest, enc ? "down_blocks.%u.downsamplers.0%n" : "up_blocks.%u.upsamplers.0%n", &i, NULL)) {
    j->module = VAE_SAMPLER;
    j->layer = (int) i;
    return i < cd->n_blocks && cd->blocks[i].has_sampler;
  }
  if (scan (rest, "mid_block.resnets.%u%n", &i, NULL)) {
    j->j = (int) i;
    return i < 2;
  }
  if (strcmp (rest, "mid_block.attentions.0") == 0) {
    j->module = VAE_ATTN_NORM;
    return cd->has_attn;
  }
  return FALSE;
}

gboolean
dg_vae_forward_module (DgVae *vae, VkcCmd *cmd, DgArena *arena, const char *module, const VkcTensor *x, VkcTensor *y)
{
  Job j = { JOB_MODULE, x, y, 0, 0, 0, 0 };
  if (!find_module (vae, module, &j))
    return FALSE;
  run (vae, cmd, arena, &j);
  return TRUE;
}

/* ---- tiles -------------------------------------------------------------------------------- */

/* Tile placement along one axis of `len` latents. */
typedef struct {
  guint n;
  guint size; /* every tile's length (len when one tile covers it) */
  guint *pos; /* n start positions, first 0, last len − size, evenly spread */
} Axis;

static void
axis_plan (Axis *a, guint len, const DgVaeTiling *t)
{
  dg_vae_axis_tiles (len, t->tile, t->overlap, &a->n, &a->size);
  a->pos = g_new (guint, a->n);
  for (guint i = 0; i < a->n; i++) a->pos[i] = a->n == 1 ? 0 : (guint) ((guint64) i * (len - a->size) / (a->n - 1));
}

/* Start of the blend zone between tiles i and i+1, in 1/f latents: the middle `overlap`
 * latents of their overlap. */
static guint
zone_start (const Axis *a, guint i, guint overlap, guint f)
{
  guint g = a->pos[i] + a->size - a->pos[i + 1]; /* ≥ overlap by construction */
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
  g_assert (r.in_start + r.in_len <= r.out_start); /* no pixel in three tiles */
  return r;
}

static gboolean
check_tiling (const DgVaeTiling *t, GError **error)
{
  if (t->tile >= 1 && 3 * t->overlap + 3 <= t->tile)
    return TRUE;
  g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
               _ ("VAE tiling: a tile of %u latents cannot blend an overlap of %u (needs 3·overlap + 3 ≤ tile)"),
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
  guint f;     /* input pixels per latent (encode) or 1 */
  guint out_f; /* accumulator pixels per latent */
  guint overlap;
  VkcTensor result; /* of the tile just recorded */
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
      g_set_error (error, DG_ERROR, DG_ERROR_CANCELLED, _ ("VAE tiling cancelled"));
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
  g_assert (out->ndim == 4 && vkc_tensor_is_contiguous (out) && out->shape[0] == z->shape[0] &&
            out->shape[1] == f * z->shape[1] && out->shape[2] == f * z->shape[2] &&
            out->shape[3] == vae->cfg.out_channels);
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
                 _ ("tiled VAE encoding needs image sides that are multiples of %u, not %" PRId64 "×%" PRId64), f, W,
                 H);
    return FALSE;
  }
  if (!check_tiling (tiling, error))
    return FALSE;
  g_autoptr (DgArena) arena = dg_arena_new (vae->dev, "vae-moments");
  VkcTensor moments;
  dg_arena_expect (
      arena, vkc_pool_piece_size ((guint64) (pixels->shape[0] * (H / f) * (W / f) * 2 * vae->cfg.latent_channels) *
                                  sizeof (float)));
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
