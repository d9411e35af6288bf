/* The Qwen2.5-VL vision tower (vit.h, MODEL.md §2.2). */
#include "vit.h"

#include <math.h>
#include <string.h>

#include "dg_i18n.h"
#include "plan.h"
#include "vkc_half.h"
#include "vkc_ops_attention.h"
#include "vkc_ops_convert.h"
#include "vkc_ops_eltwise.h"
#include "vkc_ops_embedding.h"
#include "vkc_ops_linear.h"
#include "vkc_ops_norm.h"

/* Qwen2_5_VLVisionBlock and Qwen2_5_VLPatchMerger build their RMSNorms with eps=1e-6 whatever
 * the config says (MODEL.md §2.2). */
#define VIT_NORM_EPS 1e-6f
/* Qwen2_5_VisionRotaryEmbedding(dim, theta=10000.0) (MODEL.md §2.2 item 2). */
#define VIT_ROPE_THETA 10000.0f
/* Patches per merged token: spatial_merge_size² = 4 in every Qwen2.5-VL; the grouped patch
 * order and the window permutation work in these units. */
#define MERGE_UNIT(cfg) dg_vit_layout_merge_unit (cfg)

typedef struct {
  VkcTensor norm1, norm2;   /* [C] */
  VkcTensor qkv_w, qkv_b;   /* [3C, C]: rows q (heads × head_dim), then k, then v */
  VkcTensor proj_w, proj_b; /* [C, C] */
  VkcTensor gate_w, gate_b, up_w, up_b, down_w, down_b;
  gboolean full; /* in fullatt_block_indexes: attends over the whole image */
} VitBlock;

struct _DgVit {
  VkcDevice *dev;
  DgQwenVisionConfig cfg;
  DgPrecision precision;
  DgWeights *w;
  VkcTensor patch_w; /* Conv3d kernel as the matrix [C, in·t·p·p] */
  VitBlock *blocks;
  VkcTensor ln_q, mlp0_w, mlp0_b, mlp2_w, mlp2_b;
};

/* An f32 activation of the layout's shape from the arena. */
static gboolean
take (DgArena *arena, VkcTensor *out, const DgLayoutAct *a)
{
  return dg_arena_tensor (arena, out, VKC_F32, (int) a->ndim, a->shape);
}

/* ---- loading --------------------------------------------------------------------------- */

typedef struct {
  DgVit *vit;
  DgLora *lora;
} Loader;

/* Uploads one tensor of the layout (vit_layout.h), merging the LoRA into the Linear weights. */
static gboolean
load_tensor (const DgLayoutTensor *t, gpointer data, GError **error)
{
  Loader *l = data;
  DgVit *vit = l->vit;
  VitBlock *b = t->layer >= 0 ? &vit->blocks[t->layer] : NULL;
  VkcTensor *dst = NULL;
  switch ((DgVitSlot) t->slot) {
  case VIT_PATCH: return dg_weights_matrix (vit->w, &vit->patch_w, t->shape[0], t->shape[1], error, "%s", t->name);
  case VIT_NORM1: dst = &b->norm1; break;
  case VIT_NORM2: dst = &b->norm2; break;
  case VIT_QKV: dst = t->sub ? &b->qkv_b : &b->qkv_w; break;
  case VIT_PROJ: dst = t->sub ? &b->proj_b : &b->proj_w; break;
  case VIT_GATE: dst = t->sub ? &b->gate_b : &b->gate_w; break;
  case VIT_UP: dst = t->sub ? &b->up_b : &b->up_w; break;
  case VIT_DOWN: dst = t->sub ? &b->down_b : &b->down_w; break;
  case VIT_LN_Q: dst = &vit->ln_q; break;
  case VIT_MLP0: dst = t->sub ? &vit->mlp0_b : &vit->mlp0_w; break;
  case VIT_MLP2: dst = t->sub ? &vit->mlp2_b : &vit->mlp2_w; break;
  }
  if (t->kind == DG_LAYOUT_LINEAR) {
    g_autofree char *module = g_strndup (t->name, strlen (t->name) - strlen (".weight"));
    return dg_lora_weights_matrix (vit->w, l->lora, DG_LORA_VISION, module, t->shape[0], t->shape[1], dst, error);
  }
  return dg_weights_vector (vit->w, dst, t->shape[0], error, "%s", t->name);
}

static gboolean
check_supported (const DgQwenVisionConfig *c, GError **error)
{
  const char *what = NULL;
  if (c->act != DG_ACT_SILU)
    what = _ ("hidden_act other than silu");
  else if (c->spatial_merge_size != 2)
    what = _ ("spatial_merge_size other than 2");
  else if (c->head_dim % 4 != 0)
    what = _ ("a head size that is not a multiple of 4 (2-D rotary)");
  if (what)
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED, _ ("vlm/config.json: the vision tower has %s"), what);
  return what == NULL;
}

DgVit *
dg_vit_load (VkcDevice *dev, const DgQwenVisionConfig *cfg, const DgSafetensors *st, const char *prefix,
             DgPrecision precision, DgWeightFormat weights, DgLora *lora, GError **error)
{
  if (!check_supported (cfg, error))
    return NULL;
  g_autoptr (DgVit) vit = g_new0 (DgVit, 1);
  vit->dev = dev;
  vit->cfg = *cfg;
  vit->precision = precision;
  vit->w = dg_weights_new (dev, st, precision, "vit weights");
  dg_weights_set_prefix (vit->w, prefix);
  dg_weights_set_linear_format (vit->w, weights, DG_COMPONENT_VIT);
  DgPlanModel shape = { .vlm.vision = *cfg }; /* the pool sized to the weights (plan.h) */
  dg_weights_expect (vit->w, dg_plan_weight_pool_bytes (&shape, DG_COMPONENT_VIT, precision, weights));
  vit->blocks = g_new0 (VitBlock, cfg->depth);
  for (guint i = 0; i < cfg->depth; i++)
    for (guint k = 0; k < cfg->n_fullatt; k++) vit->blocks[i].full |= cfg->fullatt_block_indexes[k] == i;
  Loader l = { vit, lora };
  if (!dg_vit_layout_weights (cfg, load_tensor, &l, error))
    return NULL;
  if (lora && !dg_lora_check_all_used (lora, DG_LORA_VISION, error))
    return NULL;
  return g_steal_pointer (&vit);
}

void
dg_vit_free (DgVit *vit)
{
  if (!vit)
    return;
  dg_weights_free (vit->w); /* owns every weight tensor */
  g_free (vit->blocks);
  g_free (vit);
}

const DgQwenVisionConfig *
dg_vit_config (const DgVit *vit)
{
  return &vit->cfg;
}
DgPrecision
dg_vit_precision (const DgVit *vit)
{
  return vit->precision;
}

guint
dg_vit_patch_values (const DgVit *vit)
{
  return dg_vit_layout_patch_values (&vit->cfg);
}

/* ---- host tables ----------------------------------------------------------------------- */

void
dg_vit_window_index (const DgQwenVisionConfig *cfg, const DgVitGrid *grid, guint32 **index, guint32 **cu,
                     guint *n_windows)
{
  /* get_window_index: windows of ws × ws merged tokens, row-major, partial at the bottom and
   * right; the reference pads to whole windows and drops the padding, so windows that hold
   * nothing (a whole padding window when the grid is a multiple of ws) vanish. */
  const guint ws = cfg->window_size / cfg->spatial_merge_size / cfg->patch_size;
  const guint mh = grid->merged_h, mw = grid->merged_w, unit = MERGE_UNIT (cfg);
  *index = g_new (guint32, (gsize) mh * mw);
  *cu = g_new (guint32, (gsize) vkc_div_up (mh, ws) * vkc_div_up (mw, ws) + 1);
  guint n = 0, w = 0;
  (*cu)[0] = 0;
  for (guint wy = 0; wy * ws < mh; wy++)
    for (guint wx = 0; wx * ws < mw; wx++) {
      for (guint y = wy * ws; y < MIN (mh, (wy + 1) * ws); y++)
        for (guint x = wx * ws; x < MIN (mw, (wx + 1) * ws); x++) (*index)[n++] = y * mw + x;
      (*cu)[++w] = n * unit;
    }
  *n_windows = w;
}

/* Qwen2_5_VisionRotaryEmbedding.inv_freq: 1 / theta^(2j/dim), dim = head_dim / 2, in fp32 as
 * torch computes it; model.to(bfloat16) also casts this buffer (tests/golden/README.md). */
static float
vit_inv_freq (const DgVit *vit, guint j)
{
  const guint dim = vit->cfg.head_dim / 2;
  float e = (float) (2 * j) / (float) dim;
  float inv = 1.0f / (float) pow (VIT_ROPE_THETA, e);
  return vit->precision == DG_PRECISION_BF16 ? vkc_round_bf16 (inv) : inv;
}

/* cos/sin [N, head_dim] in window order. Patch (row y, col x) of the grid gets the angles
 * θ = [y·inv_freq, x·inv_freq] (head_dim/2), duplicated: emb = [θ, θ]. The reference's bf16
 * run computes positions, angles and cos/sin in bf16 (arange and outer product in the buffer's
 * dtype, then emb.cos()), and upcasts the result for the rotation. */
static void
vit_rotary_tables (const DgVit *vit, const DgVitGrid *grid, const guint32 *index, float *cos_t, float *sin_t)
{
  const guint D = vit->cfg.head_dim, nf = D / 4, unit = MERGE_UNIT (&vit->cfg);
  const gboolean bf16 = vit->precision == DG_PRECISION_BF16;
  g_autofree float *inv = g_new (float, nf);
  for (guint j = 0; j < nf; j++) inv[j] = vit_inv_freq (vit, j);
  for (guint i = 0; i < grid->merged_h * grid->merged_w; i++) {
    const guint m = index[i], by = m / grid->merged_w, bx = m % grid->merged_w;
    for (guint u = 0; u < unit; u++) {
      const float pos[2] = { (float) (by * 2 + u / 2), (float) (bx * 2 + u % 2) };
      float *c = cos_t + ((gsize) i * unit + u) * D, *s = sin_t + ((gsize) i * unit + u) * D;
      for (guint axis = 0; axis < 2; axis++)
        for (guint j = 0; j < nf; j++) {
          float p = bf16 ? vkc_round_bf16 (pos[axis]) : pos[axis];
          float a = p * inv[j];
          if (bf16)
            a = vkc_round_bf16 (a);
          float cv = cosf (a), sv = sinf (a);
          if (bf16) {
            cv = vkc_round_bf16 (cv);
            sv = vkc_round_bf16 (sv);
          }
          c[axis * nf + j] = c[D / 2 + axis * nf + j] = cv;
          s[axis * nf + j] = s[D / 2 + axis * nf + j] = sv;
        }
    }
  }
}

/* ---- recording --------------------------------------------------------------------------- */

/* One image's run: its window-order tables and the scratch tensors every block reuses. */
typedef struct {
  DgVit *vit;
  VkcCmd *cmd;
  DgArena *arena;
  const DgVitTap *tap;
  gboolean bf16;
  int64_t n;                      /* patches */
  VkcTensor cos, sin;             /* [1, N, head_dim] */
  VkcTensor range;                /* U32 [1, N, 2]: the window of each patch */
  VkcTensor to_window, to_raster; /* U32 [N/4]: gather indices (merged tokens) */
  VkcTensor xn, qkv, attn, tmp, gate, up;
} VitRun;

static void
rnd (const VitRun *r, const VkcTensor *t)
{
  if (r->bf16)
    vkc_op_round_bf16 (r->cmd, t, t);
}

static gboolean
vit_run_init (VitRun *r, DgVit *vit, VkcCmd *cmd, DgArena *arena, const DgVitGrid *grid, const DgVitTap *tap)
{
  const DgQwenVisionConfig *c = &vit->cfg;
  const guint unit = MERGE_UNIT (c), nm = grid->merged_h * grid->merged_w;
  const int64_t N = (int64_t) nm * unit, D = c->head_dim;
  *r = (VitRun) {
    .vit = vit, .cmd = cmd, .arena = arena, .tap = tap, .bf16 = vit->precision == DG_PRECISION_BF16, .n = N
  };
  g_autofree guint32 *index = NULL, *cu = NULL;
  guint n_windows;
  dg_vit_window_index (c, grid, &index, &cu, &n_windows);
  g_autofree guint32 *inverse = g_new (guint32, nm);
  for (guint i = 0; i < nm; i++) inverse[index[i]] = i;
  g_autofree guint32 *range = g_new (guint32, 2 * N);
  for (guint w = 0; w < n_windows; w++)
    for (guint32 p = cu[w]; p < cu[w + 1]; p++) {
      range[2 * p] = cu[w];
      range[2 * p + 1] = cu[w + 1];
    }
  g_autofree float *cos_t = g_new (float, N *D), *sin_t = g_new (float, N *D);
  vit_rotary_tables (vit, grid, index, cos_t, sin_t);
  DgLayoutAct a[VIT_N_ACTS];
  dg_vit_layout_acts (c, N, a);
  if (!dg_arena_upload (arena, &r->to_window, VKC_U32, 1, a[VIT_ACT_TO_WINDOW].shape, index) ||
      !dg_arena_upload (arena, &r->to_raster, VKC_U32, 1, a[VIT_ACT_TO_RASTER].shape, inverse) ||
      !dg_arena_upload (arena, &r->range, VKC_U32, 3, a[VIT_ACT_RANGE].shape, range) ||
      !dg_arena_upload (arena, &r->cos, VKC_F32, 3, a[VIT_ACT_COS].shape, cos_t) ||
      !dg_arena_upload (arena, &r->sin, VKC_F32, 3, a[VIT_ACT_SIN].shape, sin_t))
    return FALSE;
  take (arena, &r->xn, &a[VIT_ACT_XN]);
  take (arena, &r->qkv, &a[VIT_ACT_QKV]);
  take (arena, &r->attn, &a[VIT_ACT_ATTN]);
  take (arena, &r->tmp, &a[VIT_ACT_TMP]);
  take (arena, &r->gate, &a[VIT_ACT_GATE]);
  take (arena, &r->up, &a[VIT_ACT_UP]);
  return !dg_arena_failed (arena);
}

/* Rows of @x [.., cols·unit] regrouped by merged token: y[i] = x[ids[i]] (unit patches each). */
static void
gather_into (VitRun *r, const VkcTensor *x, const VkcTensor *ids, const VkcTensor *y)
{
  const int64_t groups = ids->shape[0], width = vkc_tensor_numel (x) / groups;
  g_assert (y->ndim == 2 && y->shape[0] == groups && y->shape[1] == width);
  VkcTensor table = vkc_tensor_reshape (x, 2, (int64_t[]) { groups, width });
  vkc_op_embedding (r->cmd, y, &table, ids);
}

static gboolean
gather_groups (VitRun *r, const VkcTensor *x, const VkcTensor *ids, VkcTensor *y)
{
  const int64_t groups = ids->shape[0], width = vkc_tensor_numel (x) / groups;
  if (!DG_ACT (r->arena, y, groups, width))
    return FALSE;
  gather_into (r, x, ids, y);
  return TRUE;
}

/* The tap sees @x (window order, [1, N, cols]) in patch order. */
static void
tap_patch_order (VitRun *r, const char *name, const VkcTensor *x)
{
  if (!r->tap || !r->tap->func)
    return;
  VkcTensor y;
  if (!gather_groups (r, x, &r->to_raster, &y))
    return;
  VkcTensor v = vkc_tensor_reshape (&y, 2, (int64_t[]) { r->n, x->shape[2] });
  r->tap->func (r->cmd, name, &v, r->tap->user_data);
}

/* x += proj(a) with the reference's roundings: in bf16 the projection and the sum are each
 * rounded; in fp32 the linear op accumulates into x directly. */
static void
residual_linear (VitRun *r, const VkcTensor *x, const VkcTensor *a, const VkcTensor *w, const VkcTensor *b,
                 const VkcTensor *tmp)
{
  if (!r->bf16) {
    VkcLinearOptions opt = VKC_LINEAR_OPTIONS_DEFAULT;
    opt.accumulate = true;
    vkc_op_linear_ex (r->cmd, x, a, w, b, &opt);
    return;
  }
  vkc_op_linear (r->cmd, tmp, a, w, b);
  rnd (r, tmp);
  vkc_op_binary (r->cmd, x, x, tmp, VKC_BINARY_ADD);
  rnd (r, x);
}

/* x += proj(Attn(RMSNorm1(x))) over the window of each token (or the whole image). */
static void
vit_attention (VitRun *r, const VitBlock *b, const VkcTensor *x)
{
  const DgQwenVisionConfig *c = &r->vit->cfg;
  const int64_t C = c->hidden;
  VkcNormFlags nf = r->bf16 ? VKC_NORM_ROUND_BF16 : VKC_NORM_DEFAULT;
  vkc_op_rms_norm (r->cmd, &r->xn, x, &b->norm1, VIT_NORM_EPS, nf);
  vkc_op_linear (r->cmd, &r->qkv, &r->xn, &b->qkv_w, &b->qkv_b);
  rnd (r, &r->qkv);
  VkcTensor q = vkc_tensor_narrow (&r->qkv, 2, 0, C), k = vkc_tensor_narrow (&r->qkv, 2, C, C);
  VkcTensor v = vkc_tensor_narrow (&r->qkv, 2, 2 * C, C);
  /* apply_rotary_pos_emb_vision: q, k upcast, rotated in fp32, cast back. */
  vkc_op_rotary (r->cmd, &q, &q, &r->cos, &r->sin, (int) c->n_heads, (int) c->head_dim);
  vkc_op_rotary (r->cmd, &k, &k, &r->cos, &r->sin, (int) c->n_heads, (int) c->head_dim);
  rnd (r, &r->qkv);
  VkcAttnParams p = { 0 };
  p.heads_q = p.heads_kv = (int) c->n_heads;
  p.head_dim = (int) c->head_dim;
  p.scale = (float) (1.0 / sqrt ((double) c->head_dim));
  p.kv_range = b->full ? NULL : &r->range;
  vkc_op_attention (r->cmd, &r->attn, &q, &k, &v, &p);
  rnd (r, &r->attn);
  residual_linear (r, x, &r->attn, &b->proj_w, &b->proj_b, &r->tmp);
}

/* gate ← act(gate) ⊙ up, rounding each product the reference stores (silu output, then the
 * product) in bf16; fp32 uses the fused op. */
static void
swiglu (VitRun *r, const VkcTensor *gate, const VkcTensor *up)
{
  if (!r->bf16) {
    vkc_op_binary (r->cmd, gate, gate, up, VKC_BINARY_SWIGLU);
    return;
  }
  rnd (r, gate);
  rnd (r, up);
  vkc_op_unary (r->cmd, gate, gate, VKC_UNARY_SILU);
  rnd (r, gate);
  vkc_op_binary (r->cmd, gate, gate, up, VKC_BINARY_MUL);
  rnd (r, gate);
}

/* x += down(silu(gate(RMSNorm2(x))) ⊙ up(RMSNorm2(x))), all with biases. */
static void
vit_mlp (VitRun *r, const VitBlock *b, const VkcTensor *x)
{
  VkcNormFlags nf = r->bf16 ? VKC_NORM_ROUND_BF16 : VKC_NORM_DEFAULT;
  vkc_op_rms_norm (r->cmd, &r->xn, x, &b->norm2, VIT_NORM_EPS, nf);
  vkc_op_linear (r->cmd, &r->gate, &r->xn, &b->gate_w, &b->gate_b);
  vkc_op_linear (r->cmd, &r->up, &r->xn, &b->up_w, &b->up_b);
  swiglu (r, &r->gate, &r->up);
  residual_linear (r, x, &r->gate, &b->down_w, &b->down_b, &r->tmp);
}

/* Blocks first..first+count-1 on x [1, N, C] in window order, in place. */
static void
vit_blocks (VitRun *r, const VkcTensor *x, guint first, guint count)
{
  for (guint i = first; i < first + count; i++) {
    vit_attention (r, &r->vit->blocks[i], x);
    vit_mlp (r, &r->vit->blocks[i], x);
    if (r->tap && r->tap->func) {
      g_autofree char *name = g_strdup_printf ("vit.block%u.out", i);
      tap_patch_order (r, name, x);
    }
  }
}

/* ln_q, groups of four patches → mlp.0 → exact GELU → mlp.2: x [.., N, C] → *out [N/4, out_hidden]
 * (rows in x's group order). */
static gboolean
vit_merger (VitRun *r, const VkcTensor *x, VkcTensor *out)
{
  DgVit *vit = r->vit;
  const int64_t N = r->n, M = (int64_t) vit->cfg.hidden * MERGE_UNIT (&vit->cfg), G = N / MERGE_UNIT (&vit->cfg);
  DgLayoutAct a[VIT_N_ACTS];
  dg_vit_layout_acts (&vit->cfg, N, a);
  VkcTensor xn, h;
  if (!take (r->arena, &xn, &a[VIT_ACT_MERGER_XN]) || !take (r->arena, &h, &a[VIT_ACT_MERGER_H]) ||
      !take (r->arena, out, &a[VIT_ACT_MERGER_OUT]))
    return FALSE;
  VkcTensor x2 = vkc_tensor_reshape (x, 2, (int64_t[]) { N, vit->cfg.hidden });
  vkc_op_rms_norm (r->cmd, &xn, &x2, &vit->ln_q, VIT_NORM_EPS, r->bf16 ? VKC_NORM_ROUND_BF16 : VKC_NORM_DEFAULT);
  VkcTensor groups = vkc_tensor_reshape (&xn, 2, (int64_t[]) { G, M });
  vkc_op_linear (r->cmd, &h, &groups, &vit->mlp0_w, &vit->mlp0_b);
  rnd (r, &h);
  vkc_op_unary (r->cmd, &h, &h, VKC_UNARY_GELU_ERF);
  rnd (r, &h);
  vkc_op_linear (r->cmd, out, &h, &vit->mlp2_w, &vit->mlp2_b);
  rnd (r, out);
  return TRUE;
}

static gboolean
check_grid (const DgVit *vit, const DgVitGrid *grid, int64_t rows)
{
  const int64_t n = (int64_t) grid->merged_h * grid->merged_w * MERGE_UNIT (&vit->cfg);
  if (rows == n && n > 0)
    return TRUE;
  g_critical ("dg_vit: %" G_GINT64_FORMAT " rows for a %u × %u merged grid", rows, grid->merged_h, grid->merged_w);
  return FALSE;
}

gboolean
dg_vit_forward (DgVit *vit, VkcCmd *cmd, DgArena *arena, const VkcTensor *patches, const DgVitGrid *grid,
                VkcTensor *embeds, const DgVitTap *tap)
{
  g_return_val_if_fail (patches->ndim == 2 && patches->shape[1] == dg_vit_patch_values (vit), FALSE);
  g_return_val_if_fail (check_grid (vit, grid, patches->shape[0]), FALSE);
  VitRun r;
  VkcTensor win, x, merged;
  if (!vit_run_init (&r, vit, cmd, arena, grid, tap))
    return FALSE;
  DgLayoutAct a[VIT_N_ACTS];
  dg_vit_layout_acts (&vit->cfg, r.n, a);
  if (!take (arena, &win, &a[VIT_ACT_WINDOWED]) || !take (arena, &x, &a[VIT_ACT_X]))
    return FALSE;
  gather_into (&r, patches, &r.to_window, &win);
  VkcTensor rows = vkc_tensor_reshape (&win, 2, (int64_t[]) { r.n, patches->shape[1] });
  VkcTensor x2 = vkc_tensor_reshape (&x, 2, (int64_t[]) { r.n, vit->cfg.hidden });
  vkc_op_linear (cmd, &x2, &rows, &vit->patch_w, NULL);
  rnd (&r, &x);
  tap_patch_order (&r, "vit.patch_embed.out", &x);
  vit_blocks (&r, &x, 0, vit->cfg.depth);
  if (!vit_merger (&r, &x, &merged) || !take (arena, embeds, &a[VIT_ACT_EMBEDS]))
    return FALSE;
  gather_into (&r, &merged, &r.to_raster, embeds);
  return TRUE;
}

gboolean
dg_vit_forward_blocks (DgVit *vit, VkcCmd *cmd, DgArena *arena, const VkcTensor *x, const DgVitGrid *grid, guint first,
                       guint count, VkcTensor *out, const DgVitTap *tap)
{
  g_return_val_if_fail (x->ndim == 2 && x->shape[1] == vit->cfg.hidden, FALSE);
  g_return_val_if_fail (check_grid (vit, grid, x->shape[0]) && first + count <= vit->cfg.depth, FALSE);
  VitRun r;
  VkcTensor win, back;
  if (!vit_run_init (&r, vit, cmd, arena, grid, tap) || !gather_groups (&r, x, &r.to_window, &win))
    return FALSE;
  VkcTensor h = vkc_tensor_reshape (&win, 3, (int64_t[]) { 1, r.n, vit->cfg.hidden });
  vit_blocks (&r, &h, first, count);
  if (!gather_groups (&r, &h, &r.to_raster, &back))
    return FALSE;
  *out = vkc_tensor_reshape (&back, 2, (int64_t[]) { r.n, vit->cfg.hidden });
  return TRUE;
}

gboolean
dg_vit_forward_merger (DgVit *vit, VkcCmd *cmd, DgArena *arena, const VkcTensor *x, VkcTensor *out)
{
  g_return_val_if_fail (x->ndim == 2 && x->shape[1] == vit->cfg.hidden, FALSE);
  g_return_val_if_fail (x->shape[0] % MERGE_UNIT (&vit->cfg) == 0, FALSE);
  VitRun r = { .vit = vit, .cmd = cmd, .arena = arena, .bf16 = vit->precision == DG_PRECISION_BF16, .n = x->shape[0] };
  return vit_merger (&r, x, out);
}
