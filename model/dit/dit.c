/* The DeepGen DiT (dit.h; MODEL.md §5). Layout of this file, following the math:
 * loading → position table → embeddings (time, patch, context) → one transformer block
 * (modulation, joint attention, attn2, MLPs) → output head → the whole forward pass. */
#include "dit.h"

#include <math.h>
#include <string.h>

#include "dg_i18n.h"
#include "mapped_guard.h"
#include "plan.h"
#include "safetensors.h"
#include "vkc_ops_adaln.h"
#include "vkc_ops_attention.h"
#include "vkc_ops_conv.h"
#include "vkc_ops_convert.h"
#include "vkc_ops_eltwise.h"
#include "vkc_ops_linear.h"
#include "vkc_ops_norm.h"
#include "vkc_ops_timestep.h"

/* ---- model numbers (MODEL.md §5, diffusers SD3Transformer2DModel) ---------------------- */

#define DIT_EPS 1e-6f /* non-affine LayerNorms and q/k RMSNorm (§5.4, §10.8) */
#define DIT_FREQ_MAX_PERIOD 10000.0
#define DIT_POS_THETA 10000.0 /* 2-D sin-cos position table (§5.2) */
/* The widths, chunk orders and the weight list are in dit_layout.h. */

typedef struct {
  VkcTensor w, b;
} Linear;

/* The projections of one attention stream: attn (image side: to_q/k/v, to_out.0), attn
 * (context side: add_q/k/v_proj, to_add_out) or attn2. */
typedef struct {
  Linear q, k, v, out;      /* out unset for the context of the last block */
  VkcTensor norm_q, norm_k; /* per-head RMSNorm weights [head_dim]; unset without qk_norm */
} Proj;

typedef struct {
  gboolean dual;     /* SD3.5 "X" block: attn2 and a 9-chunk modulation */
  gboolean pre_only; /* last block: context only feeds keys/values */
  Linear norm1, norm1_ctx;
  Proj img, ctx, img2;
  Linear ff1, ff2, ffc1, ffc2;
} Block;

struct _DgDit {
  VkcDevice *dev;
  DgDitConfig cfg;
  DgPrecision precision;
  DgSafetensors *st;             /* kept open: the position table is cropped from the mapping */
  const DgTensorInfo *pos_table; /* [1, M², D] or NULL (recomputed) */
  DgWeights *w;
  VkcTensor patch_w, patch_b;
  Linear t1, t2, p1, p2, ctx_emb, norm_out, proj_out;
  Block *blocks;
  GHashTable *pos; /* (h/2 << 32 | w/2) → VkcTensor* [1, N, D] */
  DgTapFunc observe;
  gpointer observe_data;
};

/* ======================================================================================== *
 * Loading
 * ======================================================================================== */

/* The field of @dit that receives a tensor of dg_dit_layout_weights. */
static VkcTensor *
weight_slot (DgDit *dit, const DgLayoutTensor *t)
{
  Block *b = t->layer >= 0 ? &dit->blocks[t->layer] : NULL;
  Linear *l = NULL;
  Proj *p = NULL;
  switch ((DgDitSlot) t->slot) {
  case DIT_PATCH_W: return &dit->patch_w;
  case DIT_PATCH_B: return &dit->patch_b;
  case DIT_POS_TABLE: return NULL;
  case DIT_T1: l = &dit->t1; break;
  case DIT_T2: l = &dit->t2; break;
  case DIT_P1: l = &dit->p1; break;
  case DIT_P2: l = &dit->p2; break;
  case DIT_CTX_EMB: l = &dit->ctx_emb; break;
  case DIT_NORM_OUT: l = &dit->norm_out; break;
  case DIT_PROJ_OUT: l = &dit->proj_out; break;
  case DIT_NORM1: l = &b->norm1; break;
  case DIT_NORM1_CTX: l = &b->norm1_ctx; break;
  case DIT_IMG: p = &b->img; break;
  case DIT_CTX: p = &b->ctx; break;
  case DIT_IMG2: p = &b->img2; break;
  case DIT_FF1: l = &b->ff1; break;
  case DIT_FF2: l = &b->ff2; break;
  case DIT_FFC1: l = &b->ffc1; break;
  case DIT_FFC2: l = &b->ffc2; break;
  }
  if (p) {
    if (t->sub == DIT_SUB_NORM_Q)
      return &p->norm_q;
    if (t->sub == DIT_SUB_NORM_K)
      return &p->norm_k;
    Linear *const pl[4] = { &p->q, &p->k, &p->v, &p->out };
    l = pl[t->sub / 2];
  }
  return t->sub % 2 ? &l->b : &l->w;
}

/* Uploads one tensor of the layout, shape-checked; the position table stays in the mapping. */
static gboolean
load_tensor (const DgLayoutTensor *t, gpointer data, GError **error)
{
  DgDit *dit = data;
  if (t->slot == DIT_POS_TABLE) {
    if (!dg_safetensors_find (dit->st, t->name))
      return TRUE; /* recomputed */
    dit->pos_table =
        dg_safetensors_expect_shape (dit->st, t->name, DG_DTYPES_FLOAT, error, t->shape[0], t->shape[1], t->shape[2]);
    return dit->pos_table != NULL;
  }
  VkcTensor *dst = weight_slot (dit, t);
  switch (t->kind) {
  case DG_LAYOUT_LINEAR: return dg_weights_linear (dit->w, dst, t->shape[0], t->shape[1], error, "%s", t->name);
  case DG_LAYOUT_VECTOR: return dg_weights_vector (dit->w, dst, t->shape[0], error, "%s", t->name);
  case DG_LAYOUT_MATRIX:
    return dg_weights_conv (dit->w, dst, t->shape[0], t->shape[1], t->shape[2], t->shape[3], error, "%s", t->name);
  default: g_assert_not_reached ();
  }
}

/* What the kernels here implement; anything else is refused rather than computed wrongly. */
static gboolean
check_supported (const DgDitConfig *c, const char *display, GError **error)
{
  const char *what = NULL;
  if (c->patch_size != DIT_PATCH)
    what = _ ("a patch size other than 2");
  else if (c->qk_norm == DG_QK_NORM_LAYER)
    what = _ ("LayerNorm q/k normalisation");
  else if (c->pos_embed_max_size == 0)
    what = _ ("a DiT without pos_embed_max_size (uncropped position table)");
  else if (c->caption_projection_dim != c->inner_dim)
    what = _ ("caption_projection_dim different from the inner width");
  else if (c->inner_dim % 4 != 0)
    what = _ ("an inner width that is not a multiple of 4");
  if (!what)
    return TRUE;
  g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED, _ ("%s: %s is not supported"), display, what);
  return FALSE;
}

DgDit *
dg_dit_load (VkcDevice *dev, const char *path, DgPrecision precision, DgWeightFormat weights, GError **error)
{
  g_autoptr (DgDit) dit = g_new0 (DgDit, 1);
  dit->dev = dev;
  dit->precision = precision;
  dit->pos = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  if (!dg_dit_config_load (path, &dit->cfg, error))
    return NULL;
  dit->st = dg_safetensors_open (path, error);
  if (!dit->st || !check_supported (&dit->cfg, dg_safetensors_display_name (dit->st), error))
    return NULL;
  dit->w = dg_weights_new (dev, dit->st, precision, "dit");
  dg_weights_set_linear_format (dit->w, weights, DG_COMPONENT_DIT);
  DgPlanModel shape = { .dit = dit->cfg }; /* the pool sized to the weights (plan.h) */
  dg_weights_expect (dit->w, dg_plan_weight_pool_bytes (&shape, DG_COMPONENT_DIT, precision, weights));
  dit->blocks = g_new0 (Block, dit->cfg.n_layers);
  for (guint i = 0; i < dit->cfg.n_layers; i++) {
    dit->blocks[i].dual = dg_dit_config_is_dual (&dit->cfg, i);
    dit->blocks[i].pre_only = dg_dit_layout_pre_only (&dit->cfg, i);
  }
  if (!dg_dit_layout_weights (&dit->cfg, load_tensor, dit, error))
    return NULL;
  return g_steal_pointer (&dit);
}

void
dg_dit_free (DgDit *dit)
{
  if (!dit)
    return;
  if (dit->pos)
    g_hash_table_destroy (dit->pos); /* the tensors live in the weights pool */
  dg_weights_free (dit->w);
  dg_safetensors_free (dit->st);
  g_free (dit->blocks);
  g_free (dit);
}

const DgDitConfig *
dg_dit_config (const DgDit *dit)
{
  return &dit->cfg;
}

guint64
dg_dit_weight_bytes (const DgDit *dit)
{
  return dit->w->uploaded_bytes;
}

guint64
dg_dit_weight_reserved (const DgDit *dit)
{
  return vkc_pool_reserved (dit->w->pool);
}

void
dg_dit_set_observer (DgDit *dit, DgTapFunc func, gpointer user_data)
{
  dit->observe = func;
  dit->observe_data = user_data;
}

static void observe (DgDit *dit, VkcCmd *cmd, const VkcTensor *t, const char *fmt, ...) G_GNUC_PRINTF (4, 5);

static void
observe (DgDit *dit, VkcCmd *cmd, const VkcTensor *t, const char *fmt, ...)
{
  if (!dit->observe)
    return;
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  dit->observe (cmd, name, t, dit->observe_data);
}

/* ======================================================================================== *
 * Position table (§5.2): a 2-D sin-cos grid of M×M cells, x in the first half of the channels,
 * y in the second, centre-cropped to the token grid of each image.
 * ======================================================================================== */

/* Row `gy`, columns left..left+n−1 of diffusers' get_2d_sincos_pos_embed(D, M, base_size):
 * coordinates index / (M / base) in float32, frequencies 1/10000^(k/(D/4)) and sin/cos in
 * float64, rounded to float32 (as the buffer is registered). */
void
dg_dit_pos_embed_row (const DgDitConfig *c, gint64 gy, gint64 left, gint64 n, float *dst)
{
  const gint64 D = c->inner_dim, Q = D / 4; /* Q frequencies per axis and function */
  const float cells_per_unit = (float) ((double) c->pos_embed_max_size / (c->sample_size / c->patch_size));
  const float y = (float) gy / cells_per_unit;
  for (gint64 j = 0; j < n; j++) {
    const float x = (float) (left + j) / cells_per_unit;
    float *row = dst + j * D;
    for (gint64 k = 0; k < Q; k++) {
      double omega = 1.0 / pow (DIT_POS_THETA, (double) k / (D / 4.0));
      row[k] = (float) sin (x * omega);
      row[Q + k] = (float) cos (x * omega);
      row[2 * Q + k] = (float) sin (y * omega);
      row[3 * Q + k] = (float) cos (y * omega);
    }
  }
}

static void
pos_row_stored (const DgTensorInfo *t, gint64 M, gint64 D, gint64 gy, gint64 left, gint64 n, float *dst)
{
  const gsize es = dg_dtype_size (t->dtype);
  const guint8 *src = (const guint8 *) t->data + (gsize) ((gy * M + left) * D) * es;
  const gsize count = (gsize) (n * D);
  if (t->dtype == DG_DTYPE_BF16)
    dg_bf16_to_f32_array (src, dst, count);
  else if (t->dtype == DG_DTYPE_F16)
    dg_f16_to_f32_array (src, dst, count);
  else
    memcpy (dst, src, count * sizeof (float));
}

/* The [1, h2·w2, D] crop for a token grid of h2 × w2, uploaded once per size. */
static const VkcTensor *
pos_crop (DgDit *dit, gint64 h2, gint64 w2, GError **error)
{
  gint64 key = (h2 << 32) | w2;
  const VkcTensor *have = g_hash_table_lookup (dit->pos, &key);
  if (have)
    return have;
  const gint64 M = dit->cfg.pos_embed_max_size, D = dit->cfg.inner_dim;
  const gint64 top = (M - h2) / 2, left = (M - w2) / 2;
  g_autofree float *host = g_try_new (float, (gsize) (h2 * w2 * D));
  if (!host) {
    g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("out of memory for the DiT position table"));
    return NULL;
  }
  DgMappedGuard g; /* the stored table is read from the mapped file */
  if (!DG_MAPPED_TRY (&g)) {
    dg_mapped_guard_fail (&g, dit->pos_table->file, error);
    return NULL;
  }
  for (gint64 r = 0; r < h2; r++) {
    if (dit->pos_table)
      pos_row_stored (dit->pos_table, M, D, top + r, left, w2, host + r * w2 * D);
    else
      dg_dit_pos_embed_row (&dit->cfg, top + r, left, w2, host + r * w2 * D);
  }
  dg_mapped_guard_end (&g);
  if (dit->precision == DG_PRECISION_BF16) /* the reference's .to(bfloat16) of the buffer */
    for (gint64 i = 0; i < h2 * w2 * D; i++) host[i] = dg_bf16_to_f32 (dg_f32_to_bf16 (host[i]));
  VkcTensor *t = g_new0 (VkcTensor, 1);
  dg_weights_expect (dit->w, vkc_pool_piece_size ((VkDeviceSize) (h2 * w2 * D) * sizeof (float)));
  if (!dg_weights_upload_f32 (dit->w, t, VKC_F32, 3, (const int64_t[]) { 1, h2 * w2, D }, host, error)) {
    g_free (t);
    return NULL;
  }
  g_hash_table_insert (dit->pos, g_memdup2 (&key, sizeof key), t);
  return t;
}

/* ======================================================================================== *
 * Recording helpers
 * ======================================================================================== */

/* bf16 mode: round an activation to bf16 in place, where the reference holds a bf16 tensor.
 * Views that are not contiguous are rounded batch row by batch row. */
static void
round_contiguous (VkcCmd *cmd, const VkcTensor *t)
{
  /* vkc_op_round_bf16 binds the whole range: cut it into pieces that fit one binding (the MLP
   * hidden of a 1024² edit is ~400 MB, lavapipe binds 128 MiB). */
  const VkcDeviceInfo *info = vkc_device_info (vkc_cmd_device (cmd));
  const int64_t n = vkc_tensor_numel (t);
  const int64_t piece = (int64_t) ((info->max_storage_buffer_range - info->min_storage_offset_alignment) / 4);
  for (int64_t i = 0; i < n; i += piece) {
    const int64_t len = MIN (piece, n - i), one = 1;
    VkcTensor r = vkc_tensor_view (t, 1, &len, &one, i);
    vkc_op_round_bf16 (cmd, &r, &r);
  }
}

static void
rnd (const DgDit *dit, VkcCmd *cmd, const VkcTensor *t)
{
  if (dit->precision != DG_PRECISION_BF16)
    return;
  if (vkc_tensor_is_contiguous (t)) {
    round_contiguous (cmd, t);
    return;
  }
  for (int64_t b = 0; b < t->shape[0]; b++) {
    VkcTensor r = vkc_tensor_narrow (t, 0, b, 1);
    g_assert (vkc_tensor_is_contiguous (&r));
    round_contiguous (cmd, &r);
  }
}

static gboolean
rows_flatten (const VkcTensor *t)
{
  return t->ndim < 3 || t->shape[0] == 1 || t->stride[0] == t->shape[1] * t->stride[1];
}

/* y = x·Wᵀ + b, then rounded. Token-range views of a joint [B, L+S, ·] buffer do not flatten
 * into one row range, so they go one batch row at a time. */
static void
linear (const DgDit *dit, VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const Linear *l, gboolean round)
{
  if (rows_flatten (x) && rows_flatten (y)) {
    vkc_op_linear (cmd, y, x, &l->w, &l->b);
  } else {
    for (int64_t b = 0; b < x->shape[0]; b++) {
      VkcTensor xb = vkc_tensor_narrow (x, 0, b, 1), yb = vkc_tensor_narrow (y, 0, b, 1);
      vkc_op_linear (cmd, &yb, &xb, &l->w, &l->b);
    }
  }
  if (round)
    rnd (dit, cmd, y);
}

static VkcNormFlags
norm_flags (const DgDit *dit)
{
  return dit->precision == DG_PRECISION_BF16 ? VKC_NORM_ROUND_BF16 : VKC_NORM_DEFAULT;
}

/* y = x·(1 + scale) + shift and stream += gate ⊙ v, rounded after every operation in bf16 mode
 * as torch does: rounding once at the end doubles the distance to the bf16 reference (measured
 * on the block goldens: NMSE 2e-5 → 1e-5). */
static VkcAdalnFlags
adaln_flags (const DgDit *dit)
{
  return dit->precision == DG_PRECISION_BF16 ? VKC_ADALN_ROUND_BF16 : VKC_ADALN_F32;
}

static void
modulate (const DgDit *dit, VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *scale,
          const VkcTensor *shift)
{
  vkc_op_adaln_modulate (cmd, y, x, scale, shift, adaln_flags (dit));
}

/* Chunk k of a modulation tensor [B, n·D]: a [B, D] column slice. */
static VkcTensor
chunk (const VkcTensor *mod, int k, int64_t D)
{
  return vkc_tensor_narrow (mod, 1, k * D, D);
}

/* A contiguous [shape] view over the start of a scratch tensor. */
static VkcTensor
scratch_view (const VkcTensor *t, int ndim, const int64_t *shape)
{
  int64_t stride[VKC_MAX_DIMS], n = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    stride[d] = n;
    n *= shape[d];
  }
  g_assert (n <= vkc_tensor_numel (t));
  return vkc_tensor_view (t, ndim, shape, stride, 0);
}

/* An f32 activation of the layout's shape from the arena. */
static void
take (DgArena *arena, VkcTensor *out, const DgLayoutAct *a)
{
  dg_arena_tensor (arena, out, VKC_F32, (int) a->ndim, a->shape);
}

/* ======================================================================================== *
 * Embeddings (§5.2)
 * ======================================================================================== */

gboolean
dg_dit_time_embed (DgDit *dit, VkcCmd *cmd, DgArena *arena, const VkcTensor *t, const VkcTensor *pooled,
                   const VkcTensor *temb, GError **error)
{
  const int64_t B = t->shape[0];
  DgLayoutAct a[DIT_N_ACTS];
  dg_dit_layout_acts (&dit->cfg, B, 0, 0, FALSE, a);
  VkcTensor sinus, h, te, pe;
  take (arena, &sinus, &a[DIT_ACT_SINUS]);
  take (arena, &h, &a[DIT_ACT_TIME_H]);
  take (arena, &te, &a[DIT_ACT_TIME_E]);
  take (arena, &pe, &a[DIT_ACT_POOLED_E]);
  if (!dg_arena_check (arena, error))
    return FALSE;
  /* timestep_embedder(time_proj(t).to(dtype)): the float32 sinusoid, cos first. */
  vkc_op_timestep_embedding (cmd, &sinus, t, DIT_FREQ_DIM, true, 0.0, DIT_FREQ_MAX_PERIOD);
  observe (dit, cmd, &sinus, "time.sinusoid");
  rnd (dit, cmd, &sinus);
  linear (dit, cmd, &h, &sinus, &dit->t1, TRUE);
  vkc_op_unary (cmd, &h, &h, VKC_UNARY_SILU);
  rnd (dit, cmd, &h);
  linear (dit, cmd, &te, &h, &dit->t2, TRUE);
  observe (dit, cmd, &te, "time.timestep_emb");
  /* text_embedder(pooled): Linear → SiLU → Linear. */
  linear (dit, cmd, &h, pooled, &dit->p1, TRUE);
  vkc_op_unary (cmd, &h, &h, VKC_UNARY_SILU);
  rnd (dit, cmd, &h);
  linear (dit, cmd, &pe, &h, &dit->p2, TRUE);
  vkc_op_binary (cmd, temb, &te, &pe, VKC_BINARY_ADD);
  rnd (dit, cmd, temb);
  return TRUE;
}

static gboolean
check_image_size (const DgDit *dit, int64_t h, int64_t w, const char *what, GError **error)
{
  const int64_t M = dit->cfg.pos_embed_max_size;
  if (h > 0 && w > 0 && h % DIT_PATCH == 0 && w % DIT_PATCH == 0 && h / DIT_PATCH <= M && w / DIT_PATCH <= M)
    return TRUE;
  g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
               _ ("%s of %" PRId64 "×%" PRId64 " latent pixels: sides must be even and at most %" PRId64
                  " (images up to %" PRId64 " pixels)"),
               what, w, h, 2 * M, 16 * M);
  return FALSE;
}

gboolean
dg_dit_patch_embed (DgDit *dit, VkcCmd *cmd, DgArena *arena, const VkcTensor *latents, const VkcTensor *tokens,
                    GError **error)
{
  const int64_t h = latents->shape[latents->ndim - 3], w = latents->shape[latents->ndim - 2];
  if (!check_image_size (dit, h, w, _ ("a latent image"), error))
    return FALSE;
  const VkcTensor *pos = pos_crop (dit, h / DIT_PATCH, w / DIT_PATCH, error);
  if (!pos)
    return FALSE;
  vkc_op_conv2d_patch2 (cmd, tokens, latents, &dit->patch_w, &dit->patch_b);
  rnd (dit, cmd, tokens);
  vkc_op_binary (cmd, tokens, tokens, pos, VKC_BINARY_ADD); /* [1, N, D] broadcast over rows */
  rnd (dit, cmd, tokens);
  return TRUE;
}

/* ======================================================================================== *
 * One transformer block (§5.4, §5.5)
 * ======================================================================================== */

/* Activations of one block pass, shared by all blocks of a forward pass. */
typedef struct {
  DgDit *dit;
  VkcCmd *cmd;
  int64_t B, L, S, D;
  const VkcTensor *key_valid; /* U32 [B, L+S] or NULL */
  VkcTensor st;               /* [B, D]    silu(temb) */
  VkcTensor mod, cmod;        /* [B, 9D], [B, 6D] modulation chunks */
  VkcTensor xn, xa, xb;       /* [B, L, D] LN(x), modulated for attn (later: projections), for attn2 */
  VkcTensor cn, ca;           /* [B, S, D] the same for the context */
  /* The attention buffers and the MLP hidden share memory (the MLPs run after both attentions
   * of a block; the recorder's barriers order the reuse): */
  VkcTensor qkv; /* [3, B, L+S, D]: q, k, v; image tokens first, then context
                                 * (§10.8); separate planes keep one row's keys within a binding */
  VkcTensor o;   /* [B, L+S, D] attention output, right after qkv */
  VkcTensor hid; /* [B·(L+S)·4D] over both; the MLP hidden [B, max(L,S), 4D] */
} Pass;

static gboolean
pass_alloc (Pass *p, DgDit *dit, VkcCmd *cmd, DgArena *arena, int64_t B, int64_t L, int64_t S,
            const VkcTensor *key_valid, GError **error)
{
  const int64_t D = dit->cfg.inner_dim;
  *p = (Pass) { .dit = dit, .cmd = cmd, .B = B, .L = L, .S = S, .D = D, .key_valid = key_valid };
  DgLayoutAct a[DIT_N_ACTS];
  dg_dit_layout_acts (&dit->cfg, B, L, S, key_valid != NULL, a);
  take (arena, &p->st, &a[DIT_ACT_SILU]);
  take (arena, &p->mod, &a[DIT_ACT_MOD]);
  take (arena, &p->cmod, &a[DIT_ACT_CMOD]);
  take (arena, &p->xn, &a[DIT_ACT_XN]);
  take (arena, &p->xa, &a[DIT_ACT_XA]);
  take (arena, &p->xb, &a[DIT_ACT_XB]);
  take (arena, &p->cn, &a[DIT_ACT_CN]);
  take (arena, &p->ca, &a[DIT_ACT_CA]);
  take (arena, &p->hid, &a[DIT_ACT_SCRATCH]);
  if (!dg_arena_check (arena, error))
    return FALSE;
  p->qkv = scratch_view (&p->hid, 4, (const int64_t[]) { 3, B, L + S, D });
  const int64_t o_shape[3] = { B, L + S, D }, o_stride[3] = { (L + S) * D, D, 1 };
  p->o = vkc_tensor_view (&p->hid, 3, o_shape, o_stride, B * (L + S) * 3 * D);
  return TRUE;
}

/* q, k, v [B, N, D] of a qkv view [3, B, N, D]. */
static void
qkv_split (const VkcTensor *qkv, int64_t D, VkcTensor *q, VkcTensor *k, VkcTensor *v)
{
  VkcTensor *out[3] = { q, k, v };
  const int64_t shape[3] = { qkv->shape[1], qkv->shape[2], D };
  const int64_t stride[3] = { qkv->stride[1], qkv->stride[2], 1 };
  for (int i = 0; i < 3; i++) *out[i] = vkc_tensor_view (qkv, 3, shape, stride, i * qkv->stride[0]);
}

/* Projections of one stream into its token rows of the qkv buffer. */
static void
project_qkv (const Pass *p, const Proj *pr, const VkcTensor *x, const VkcTensor *qkv_rows)
{
  VkcTensor q, k, v;
  qkv_split (qkv_rows, p->D, &q, &k, &v);
  linear (p->dit, p->cmd, &q, x, &pr->q, FALSE);
  linear (p->dit, p->cmd, &k, x, &pr->k, FALSE);
  linear (p->dit, p->cmd, &v, x, &pr->v, FALSE);
}

/* The per-head q/k RMSNorm of one stream: after the projection, before image and context are
 * joined (§5.4), with each stream's own weights. */
static void
qk_norm (const Pass *p, const Proj *pr, const VkcTensor *qkv_rows)
{
  if (p->dit->cfg.qk_norm != DG_QK_NORM_RMS)
    return;
  VkcTensor q, k, v;
  qkv_split (qkv_rows, p->D, &q, &k, &v);
  vkc_op_head_rms_norm (p->cmd, &q, &q, &pr->norm_q, p->dit->cfg.head_dim, DIT_EPS, norm_flags (p->dit));
  vkc_op_head_rms_norm (p->cmd, &k, &k, &pr->norm_k, p->dit->cfg.head_dim, DIT_EPS, norm_flags (p->dit));
}

static void
attend (const Pass *p, const VkcTensor *o, const VkcTensor *qkv, const VkcTensor *key_valid)
{
  const DgDitConfig *c = &p->dit->cfg;
  VkcTensor q, k, v;
  qkv_split (qkv, p->D, &q, &k, &v);
  VkcAttnParams ap = {
    .heads_q = (int) c->n_heads,
    .heads_kv = (int) c->n_heads,
    .head_dim = (int) c->head_dim,
    .scale = (float) (1.0 / sqrt ((double) c->head_dim)),
    .key_valid = key_valid,
    .pad_self = key_valid != NULL,
  };
  vkc_op_attention (p->cmd, o, &q, &k, &v, &ap);
  rnd (p->dit, p->cmd, &p->o);
}

/* stream ← stream + gate ⊙ out_proj(o_rows), through the scratch `tmp` [B, N, D]. */
static void
gated_residual (const Pass *p, const VkcTensor *stream, const VkcTensor *gate, const Linear *out,
                const VkcTensor *o_rows, const VkcTensor *tmp)
{
  linear (p->dit, p->cmd, tmp, o_rows, out, TRUE);
  vkc_op_adaln_gated_add (p->cmd, stream, stream, gate, tmp, adaln_flags (p->dit));
}

/* Joint attention over [image; context] and the residual updates of both streams. */
static void
joint_attention (const Pass *p, const Block *b, const VkcTensor *x, const VkcTensor *c)
{
  const int64_t L = p->L, S = p->S, D = p->D;
  VkcTensor qkv_img = vkc_tensor_narrow (&p->qkv, 2, 0, L), qkv_ctx = vkc_tensor_narrow (&p->qkv, 2, L, S);
  project_qkv (p, &b->img, &p->xa, &qkv_img);
  project_qkv (p, &b->ctx, &p->ca, &qkv_ctx);
  rnd (p->dit, p->cmd, &p->qkv);
  qk_norm (p, &b->img, &qkv_img);
  qk_norm (p, &b->ctx, &qkv_ctx);
  attend (p, &p->o, &p->qkv, p->key_valid);
  VkcTensor o_img = vkc_tensor_narrow (&p->o, 1, 0, L), o_ctx = vkc_tensor_narrow (&p->o, 1, L, S);
  VkcTensor g = chunk (&p->mod, GATE_MSA, D);
  gated_residual (p, x, &g, &b->img.out, &o_img, &p->xa);
  if (!b->pre_only) {
    VkcTensor cg = chunk (&p->cmod, GATE_MSA, D);
    gated_residual (p, c, &cg, &b->ctx.out, &o_ctx, &p->ca);
  }
}

/* attn2 of dual blocks: self-attention of the image tokens on xb = LN(x_in)·(1+sc2)+sh2 from
 * the block input, added after the joint-attention residual (§5.4, §10.10). */
static void
second_attention (const Pass *p, const Block *b, const VkcTensor *x)
{
  const int64_t L = p->L, D = p->D;
  VkcTensor qkv = vkc_tensor_narrow (&p->qkv, 2, 0, L), o = vkc_tensor_narrow (&p->o, 1, 0, L);
  project_qkv (p, &b->img2, &p->xb, &qkv);
  rnd (p->dit, p->cmd, &p->qkv);
  qk_norm (p, &b->img2, &qkv);
  VkcTensor valid;
  if (p->key_valid)
    valid = vkc_tensor_narrow (p->key_valid, 1, 0, L);
  attend (p, &o, &qkv, p->key_valid ? &valid : NULL);
  VkcTensor g = chunk (&p->mod, GATE_MSA2, D);
  gated_residual (p, x, &g, &b->img2.out, &o, &p->xa);
}

/* stream ← stream + gate ⊙ FF(LN(stream)·(1+scale)+shift), FF = Linear, GELU(tanh), Linear. */
static void
mlp (const Pass *p, const VkcTensor *stream, const VkcTensor *mod, const Linear *ff1, const Linear *ff2,
     const VkcTensor *norm, const VkcTensor *modulated)
{
  const int64_t D = p->D, N = stream->shape[1];
  VkcTensor sc = chunk (mod, SCALE_MLP, D), sh = chunk (mod, SHIFT_MLP, D), g = chunk (mod, GATE_MLP, D);
  vkc_op_layer_norm (p->cmd, norm, stream, NULL, NULL, DIT_EPS, norm_flags (p->dit));
  modulate (p->dit, p->cmd, modulated, norm, &sc, &sh);
  VkcTensor h = scratch_view (&p->hid, 3, (const int64_t[]) { p->B, N, DIT_FF_MULT * D });
  linear (p->dit, p->cmd, &h, modulated, ff1, TRUE);
  vkc_op_unary (p->cmd, &h, &h, VKC_UNARY_GELU_TANH);
  rnd (p->dit, p->cmd, &h);
  gated_residual (p, stream, &g, ff2, &h, norm);
}

/* The modulations of both streams and the attention inputs xa, xb, ca. */
static void
block_inputs (const Pass *p, const Block *b, const VkcTensor *temb, const VkcTensor *x, const VkcTensor *c)
{
  const int64_t D = p->D;
  const VkcNormFlags nf = norm_flags (p->dit);
  vkc_op_unary (p->cmd, &p->st, temb, VKC_UNARY_SILU);
  rnd (p->dit, p->cmd, &p->st);
  VkcTensor mod = vkc_tensor_narrow (&p->mod, 1, 0, b->norm1.w.shape[0]);
  VkcTensor cmod = vkc_tensor_narrow (&p->cmod, 1, 0, b->norm1_ctx.w.shape[0]);
  linear (p->dit, p->cmd, &mod, &p->st, &b->norm1, TRUE);
  linear (p->dit, p->cmd, &cmod, &p->st, &b->norm1_ctx, TRUE);

  vkc_op_layer_norm (p->cmd, &p->xn, x, NULL, NULL, DIT_EPS, nf);
  VkcTensor sc = chunk (&p->mod, SCALE_MSA, D), sh = chunk (&p->mod, SHIFT_MSA, D);
  modulate (p->dit, p->cmd, &p->xa, &p->xn, &sc, &sh);
  if (b->dual) {
    VkcTensor sc2 = chunk (&p->mod, SCALE_MSA2, D), sh2 = chunk (&p->mod, SHIFT_MSA2, D);
    modulate (p->dit, p->cmd, &p->xb, &p->xn, &sc2, &sh2);
  }

  vkc_op_layer_norm (p->cmd, &p->cn, c, NULL, NULL, DIT_EPS, nf);
  VkcTensor csc = chunk (&p->cmod, b->pre_only ? CONT_SCALE : SCALE_MSA, D);
  VkcTensor csh = chunk (&p->cmod, b->pre_only ? CONT_SHIFT : SHIFT_MSA, D);
  modulate (p->dit, p->cmd, &p->ca, &p->cn, &csc, &csh);
}

static void
block_record (const Pass *p, guint layer, const VkcTensor *x, const VkcTensor *c, const VkcTensor *temb)
{
  const Block *b = &p->dit->blocks[layer];
  block_inputs (p, b, temb, x, c);
  joint_attention (p, b, x, c);
  if (b->dual)
    second_attention (p, b, x);
  mlp (p, x, &p->mod, &b->ff1, &b->ff2, &p->xn, &p->xa);
  if (!b->pre_only)
    mlp (p, c, &p->cmod, &b->ffc1, &b->ffc2, &p->cn, &p->ca);
}

gboolean
dg_dit_block (DgDit *dit, VkcCmd *cmd, DgArena *arena, guint layer, const VkcTensor *img, const VkcTensor *ctx,
              const VkcTensor *temb, const VkcTensor *key_valid, GError **error)
{
  g_return_val_if_fail (layer < dit->cfg.n_layers, FALSE);
  Pass p;
  if (!pass_alloc (&p, dit, cmd, arena, img->shape[0], img->shape[1], ctx->shape[1], key_valid, error))
    return FALSE;
  block_record (&p, layer, img, ctx, temb);
  return TRUE;
}

/* ======================================================================================== *
 * Output head (§5.6): norm_out, proj_out on the target tokens, unpatchify to NHWC
 * ======================================================================================== */

static void
head_record (const Pass *p, const VkcTensor *x, const VkcTensor *temb, const VkcTensor *out)
{
  DgDit *dit = p->dit;
  const int64_t B = p->B, D = p->D, h = out->shape[1], w = out->shape[2], C = out->shape[3];
  const int64_t h2 = h / DIT_PATCH, w2 = w / DIT_PATCH, Nt = h2 * w2, P = DIT_PATCH * DIT_PATCH * C;
  vkc_op_unary (p->cmd, &p->st, temb, VKC_UNARY_SILU);
  rnd (dit, p->cmd, &p->st);
  VkcTensor mod = vkc_tensor_narrow (&p->mod, 1, 0, N_CHUNKS_CONT * D);
  linear (dit, p->cmd, &mod, &p->st, &dit->norm_out, TRUE);
  VkcTensor sc = chunk (&mod, CONT_SCALE, D), sh = chunk (&mod, CONT_SHIFT, D);
  /* Only the first N_t tokens of each row are kept (§5.3 item 6): normalising the others
   * would be wasted work, the norm being per token. */
  VkcTensor xt = vkc_tensor_narrow (x, 1, 0, Nt);
  VkcTensor xn = vkc_tensor_narrow (&p->xn, 1, 0, Nt), xa = vkc_tensor_narrow (&p->xa, 1, 0, Nt);
  vkc_op_layer_norm (p->cmd, &xn, &xt, NULL, NULL, DIT_EPS, norm_flags (dit));
  modulate (dit, p->cmd, &xa, &xn, &sc, &sh);
  VkcTensor tok = scratch_view (&p->hid, 3, (const int64_t[]) { B, Nt, P });
  linear (dit, p->cmd, &tok, &xa, &dit->proj_out, TRUE);
  /* Unpatchify: token (i, j) holds (p, q, c) with c fastest → out[b, 2i+p, 2j+q, c]. For each p
   * the (q, c) pairs of a token are 2C contiguous values, and so are they in the output row. */
  for (int64_t pp = 0; pp < DIT_PATCH; pp++) {
    const int64_t shape[4] = { B, h2, w2, DIT_PATCH * C };
    const int64_t ts[4] = { Nt * P, w2 * P, P, 1 };
    const int64_t os[4] = { out->stride[0], DIT_PATCH * out->stride[1], DIT_PATCH * out->stride[2], 1 };
    VkcTensor src = vkc_tensor_view (&tok, 4, shape, ts, pp * DIT_PATCH * C);
    VkcTensor dst = vkc_tensor_view (out, 4, shape, os, pp * out->stride[1]);
    vkc_op_copy (p->cmd, &dst, &src);
  }
}

/* ======================================================================================== *
 * The forward pass
 * ======================================================================================== */

typedef struct {
  int64_t B, h, w, S, Nt, Lmax;
  int64_t *len; /* tokens per row: target + references */
  gboolean padded;
} Layout;

static VkcTensor
ref_nhwc (const VkcTensor *r)
{
  if (r->ndim == 4)
    return *r;
  const int64_t shape[4] = { 1, r->shape[0], r->shape[1], r->shape[2] };
  const int64_t stride[4] = { r->shape[0] * r->stride[0], r->stride[0], r->stride[1], r->stride[2] };
  return vkc_tensor_view (r, 4, shape, stride, 0);
}

static gboolean
bad_input (GError **error, const char *what)
{
  g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("DiT input: %s"), what);
  return FALSE;
}

static gboolean
layout_plan (const DgDit *dit, const DgDitInput *in, const VkcTensor *out, Layout *lay, GError **error)
{
  const DgDitConfig *c = &dit->cfg;
  const VkcTensor *x = in->latents;
  if (x->ndim != 4 || x->shape[3] != c->in_channels)
    return bad_input (error, _ ("latents must be [B, h, w, in_channels]"));
  lay->B = x->shape[0];
  lay->h = x->shape[1];
  lay->w = x->shape[2];
  if (!check_image_size (dit, lay->h, lay->w, _ ("a latent image"), error))
    return FALSE;
  if (in->timestep->ndim != 1 || in->timestep->shape[0] != lay->B)
    return bad_input (error, _ ("timestep must be [B]"));
  if (in->context->ndim != 3 || in->context->shape[0] != lay->B || in->context->shape[1] < 1 ||
      in->context->shape[2] != c->joint_attention_dim)
    return bad_input (error, _ ("context must be [B, S, joint_attention_dim] with S ≥ 1"));
  if (in->pooled->ndim != 2 || in->pooled->shape[0] != lay->B || in->pooled->shape[1] != c->pooled_projection_dim)
    return bad_input (error, _ ("pooled must be [B, pooled_projection_dim]"));
  if (out->ndim != 4 || out->shape[0] != lay->B || out->shape[1] != lay->h || out->shape[2] != lay->w ||
      out->shape[3] != c->out_channels || out->stride[3] != 1 || out->stride[2] != out->shape[3])
    return bad_input (error, _ ("out must be [B, h, w, out_channels] with contiguous pixels"));
  lay->S = in->context->shape[1];
  lay->Nt = (lay->h / DIT_PATCH) * (lay->w / DIT_PATCH);
  lay->len = g_new (int64_t, lay->B);
  lay->Lmax = 0;
  guint k = 0;
  for (int64_t b = 0; b < lay->B; b++) {
    lay->len[b] = lay->Nt;
    for (guint j = 0; in->n_refs && j < in->n_refs[b]; j++, k++) {
      VkcTensor r = ref_nhwc (in->refs[k]);
      if (r.shape[0] != 1 || r.shape[3] != c->in_channels)
        return bad_input (error, _ ("each reference must be [h, w, in_channels]"));
      if (!check_image_size (dit, r.shape[1], r.shape[2], _ ("a reference latent"), error))
        return FALSE;
      lay->len[b] += (r.shape[1] / DIT_PATCH) * (r.shape[2] / DIT_PATCH);
    }
    lay->Lmax = MAX (lay->Lmax, lay->len[b]);
  }
  lay->padded = FALSE;
  for (int64_t b = 0; b < lay->B; b++) lay->padded |= lay->len[b] != lay->Lmax;
  return TRUE;
}

/* Rows of different length (§5.3 item 4): zero the padding tokens, and mark valid keys — image
 * tokens up to the row's length, then every context token. */
static void
record_padding (VkcCmd *cmd, const Layout *lay, const VkcTensor *tokens, const VkcTensor *valid)
{
  const int64_t D = tokens->shape[2], N = lay->Lmax + lay->S;
  vkc_cmd_fill (cmd, valid->buffer, valid->offset, (VkDeviceSize) (lay->B * N) * 4, 1);
  for (int64_t b = 0; b < lay->B; b++) {
    int64_t pad = lay->Lmax - lay->len[b];
    if (pad == 0)
      continue;
    VkDeviceSize t0 = tokens->offset + (VkDeviceSize) ((b * lay->Lmax + lay->len[b]) * D) * 4;
    vkc_cmd_fill (cmd, tokens->buffer, t0, (VkDeviceSize) (pad * D) * 4, 0);
    VkDeviceSize v0 = valid->offset + (VkDeviceSize) (b * N + lay->len[b]) * 4;
    vkc_cmd_fill (cmd, valid->buffer, v0, (VkDeviceSize) pad * 4, 0);
  }
}

/* Target tokens, then each row's references, each with its own centre-cropped position table. */
static gboolean
record_image_tokens (DgDit *dit, VkcCmd *cmd, DgArena *arena, const DgDitInput *in, const Layout *lay,
                     const VkcTensor *tokens, GError **error)
{
  VkcTensor tgt = vkc_tensor_narrow (tokens, 1, 0, lay->Nt);
  if (!dg_dit_patch_embed (dit, cmd, arena, in->latents, &tgt, error))
    return FALSE;
  guint k = 0;
  for (int64_t b = 0; b < lay->B; b++) {
    VkcTensor row = vkc_tensor_narrow (tokens, 0, b, 1);
    int64_t at = lay->Nt;
    for (guint j = 0; in->n_refs && j < in->n_refs[b]; j++, k++) {
      VkcTensor r = ref_nhwc (in->refs[k]);
      int64_t n = (r.shape[1] / DIT_PATCH) * (r.shape[2] / DIT_PATCH);
      VkcTensor dst = vkc_tensor_narrow (&row, 1, at, n);
      if (!dg_dit_patch_embed (dit, cmd, arena, &r, &dst, error))
        return FALSE;
      at += n;
    }
  }
  return TRUE;
}

gboolean
dg_dit_forward (DgDit *dit, VkcCmd *cmd, DgArena *arena, const DgDitInput *in, const VkcTensor *out, GError **error)
{
  Layout lay = { 0 };
  gboolean ok = FALSE;
  if (!layout_plan (dit, in, out, &lay, error))
    goto done;
  const int64_t B = lay.B;
  DgLayoutAct a[DIT_N_ACTS];
  dg_dit_layout_acts (&dit->cfg, B, lay.Lmax, lay.S, lay.padded, a);
  VkcTensor temb, tokens, ctx, valid;
  take (arena, &temb, &a[DIT_ACT_TEMB]);
  take (arena, &tokens, &a[DIT_ACT_TOKENS]);
  take (arena, &ctx, &a[DIT_ACT_CTX]);
  if (lay.padded)
    dg_arena_tensor (arena, &valid, VKC_U32, a[DIT_ACT_KEY_VALID].ndim, a[DIT_ACT_KEY_VALID].shape);
  if (!dg_arena_check (arena, error))
    goto done;

  if (!dg_dit_time_embed (dit, cmd, arena, in->timestep, in->pooled, &temb, error))
    goto done;
  observe (dit, cmd, &temb, "temb");
  if (lay.padded)
    record_padding (cmd, &lay, &tokens, &valid);
  if (!record_image_tokens (dit, cmd, arena, in, &lay, &tokens, error))
    goto done;
  observe (dit, cmd, &tokens, "img_in");
  linear (dit, cmd, &ctx, in->context, &dit->ctx_emb, TRUE);
  observe (dit, cmd, &ctx, "ctx_in");

  Pass p;
  if (!pass_alloc (&p, dit, cmd, arena, B, lay.Lmax, lay.S, lay.padded ? &valid : NULL, error))
    goto done;
  for (guint i = 0; i < dit->cfg.n_layers; i++) {
    block_record (&p, i, &tokens, &ctx, &temb);
    observe (dit, cmd, &tokens, "block%u.img", i);
    if (!dit->blocks[i].pre_only)
      observe (dit, cmd, &ctx, "block%u.ctx", i);
  }
  head_record (&p, &tokens, &temb, out);
  ok = TRUE;
done:
  g_free (lay.len);
  return ok;
}
