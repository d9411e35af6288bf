#include "vkc_ops_linear.h"
#include "vkc_ops_common.h"
#include "vkc_ops_rows.h"
#include "vkc_quant.h"
#include <string.h>

/* Mirrors the push block of shaders/linear_common.glsl. */
typedef struct {
  uint32_t M, N, K;
  uint32_t ldx, ldy, ldw;
  uint32_t x_off, y_off, w_off, b_off;
  uint32_t flags;
} LinearPush;

enum { LINEAR_BIAS = 1, LINEAR_ACCUMULATE = 2, LINEAR_W_PAIRS = 4 };

/* Tile shapes of linear_tiled.comp (specialization constants 0..5); each invocation keeps a
 * TM×TN block of outputs in registers. 64×128 with 4×8 per invocation for many rows (each
 * shared-memory value feeds 4 or 8 FMAs); 32×64 with 2×4 for up to 64 rows, so that short
 * inputs still spread over enough workgroups to fill a GPU. Shared memory ≤ 12.5 KiB. */
typedef struct { uint32_t wg, bm, bn, bk, tm, tn; } TileShape;
static const TileShape tile_large = { 256, 64, 128, 16, 4, 8 };
static const TileShape tile_small = { 256, 32, 64, 16, 2, 4 };
static const TileShape tile_min   = { 64, 32, 32, 16, 4, 4 };   /* devices with < 256 invocations */
#define TILE_SMALL_MAX_ROWS 64
/* Block-quantized weights (q8_0, q4_0) stage a K slice of 32 (one whole block per W row, half
 * the barriers) where the shared tiles fit (24.3 KiB for the large tile, more than the 16 KiB
 * Vulkan guarantees; devices below that keep BK = 16, which the block kernels handle too). */
#define TILE_BLOCK_BK 32

static TileShape
pick_tile (const VkcDeviceInfo *info, int64_t M, VkcDType wt)
{
  TileShape t = info->max_workgroup_invocations < 256 ? tile_min : M <= TILE_SMALL_MAX_ROWS ? tile_small : tile_large;
  if (vkc_dtype_block (wt) > 1 && (uint64_t) TILE_BLOCK_BK * (t.bm + 1 + t.bn + 1) * 4 <= info->max_shared_memory)
    t.bk = TILE_BLOCK_BK;
  return t;
}

/* linear_gemv.comp: workgroup size, outputs per workgroup, rows per dispatch (spec 0, 1, 2). */
#define GEMV_WG 128
#define GEMV_NR 4

static bool
env_flag (const char *name)
{
  const char *v = g_getenv (name);
  return v && *v && strcmp (v, "0") != 0;
}

typedef struct {
  VkcDevice *dev;
  VkcPipeline *pipe;
  bool gemv;
  uint32_t gemv_rows;
  TileShape tile;
  uint32_t flags;
} LinearPlan;

static void
dispatch_chunk (VkcCmd *cmd, const LinearPlan *plan, const VkcTensor *y, const VkcTensor *x,
                const VkcTensor *w, const VkcTensor *bias)
{
  LinearPush pc = {
    .M = (uint32_t) x->shape[0], .N = (uint32_t) w->shape[0], .K = (uint32_t) x->shape[1],
    .ldx = (uint32_t) x->stride[0], .ldy = (uint32_t) y->stride[0], .ldw = (uint32_t) w->stride[0],
    .flags = plan->flags,
  };
  VkcBinding b[4];
  b[0] = vkc_tensor_binding (plan->dev, x, false, &pc.x_off);
  b[1] = vkc_tensor_binding (plan->dev, w, false, &pc.w_off);
  if (bias) {
    b[2] = vkc_tensor_binding (plan->dev, bias, false, &pc.b_off);
  } else {
    b[2] = b[0];   /* never read; any valid range will do */
    pc.b_off = 0;
  }
  b[3] = vkc_tensor_binding (plan->dev, y, true, &pc.y_off);
  if ((w->dtype == VKC_F16 || w->dtype == VKC_BF16) && pc.w_off % 2 == 0 && pc.ldw % 2 == 0)
    pc.flags |= LINEAR_W_PAIRS;

  uint32_t gx, gy;
  if (plan->gemv) {
    vkc_grid_1d (vkc_div_up (pc.N, GEMV_NR) * (uint64_t) GEMV_WG, GEMV_WG, &gx, &gy);
  } else {
    gx = vkc_div_up (pc.N, plan->tile.bn);
    gy = vkc_div_up (pc.M, plan->tile.bm);
  }
  vkc_cmd_dispatch (cmd, plan->pipe, b, 4, &pc, sizeof pc, gx, gy, 1);
}

void
vkc_op_linear_ex (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w,
                  const VkcTensor *bias, const VkcLinearOptions *opt)
{
  static const VkcLinearOptions defaults = VKC_LINEAR_OPTIONS_DEFAULT;
  if (!opt) opt = &defaults;
  VkcDevice *dev = vkc_cmd_device (cmd);
  const VkcDeviceInfo *info = vkc_device_info (dev);

  int64_t M, K, ldx, My, N, ldy;
  vkc_rows_of (x, &M, &K, &ldx);
  vkc_rows_of (y, &My, &N, &ldy);
  g_assert (x->dtype == VKC_F32 && y->dtype == VKC_F32);
  g_assert (w->dtype == VKC_F32 || w->dtype == VKC_F16 || w->dtype == VKC_BF16 || w->dtype == VKC_Q8_0
            || w->dtype == VKC_Q4_0);
  g_assert_cmpint (x->ndim, ==, y->ndim);
  for (int d = 0; d + 1 < x->ndim; d++) g_assert_cmpint (x->shape[d], ==, y->shape[d]);
  g_assert_cmpint (My, ==, M);
  g_assert_cmpint (w->ndim, ==, 2);
  g_assert_cmpint (w->shape[0], ==, N);
  g_assert_cmpint (w->shape[1], ==, K);
  g_assert (K <= 1 || w->stride[1] == 1);
  int64_t ldw = w->shape[0] > 1 ? w->stride[0] : K;
  /* Rows of a block type must start on a block: the shaders find block (n, k/32) from n·ldw/32. */
  g_assert (K % vkc_dtype_block (w->dtype) == 0 && ldw % vkc_dtype_block (w->dtype) == 0);
  if (bias) {
    g_assert (bias->dtype == VKC_F32 && bias->ndim == 1 && bias->shape[0] == N);
    g_assert (N <= 1 || bias->stride[0] == 1);
  }
  if (M == 0 || N == 0) return;
  g_assert (K < ((int64_t) 1 << 31) && N < ((int64_t) 1 << 31));

  LinearPlan plan = { .dev = dev };
  plan.flags = (bias ? LINEAR_BIAS : 0) | (opt->accumulate ? LINEAR_ACCUMULATE : 0);
  VkcLinearKernel kernel = opt->kernel;
  if (kernel == VKC_LINEAR_AUTO)
    kernel = M <= VKC_LINEAR_GEMV_MAX_ROWS && !env_flag ("DEEPGEN_VK_DISABLE_GEMV") ? VKC_LINEAR_GEMV
                                                                                : VKC_LINEAR_TILED;
  plan.gemv = kernel == VKC_LINEAR_GEMV;
  char name[64];
  const char *wt = vkc_dtype_name (w->dtype);
  if (plan.gemv) {
    uint32_t min_sg = info->min_subgroup_size ? info->min_subgroup_size : info->subgroup_size;
    bool sg = info->subgroup_arith && min_sg >= 4 && !opt->no_subgroup
              && !env_flag ("DEEPGEN_VK_DISABLE_SUBGROUP");
    g_snprintf (name, sizeof name, sg ? "linear_gemv_sg_%s" : "linear_gemv_%s", wt);
    /* Rows per dispatch: M rounded up to a power of two, so one row does not pay for eight. */
    plan.gemv_rows = 1;
    while (plan.gemv_rows < MIN (M, VKC_LINEAR_GEMV_MAX_ROWS)) plan.gemv_rows *= 2;
    const uint32_t spec[3] = { GEMV_WG, GEMV_NR, plan.gemv_rows };
    plan.pipe = vkc_pipeline_get (dev, name, spec, 3, 4);
  } else {
    plan.tile = pick_tile (info, M, w->dtype);
    g_snprintf (name, sizeof name, "linear_tiled_%s", wt);
    const TileShape *t = &plan.tile;
    const uint32_t spec[6] = { t->wg, t->bm, t->bn, t->bk, t->tm, t->tn };
    plan.pipe = vkc_pipeline_get (dev, name, spec, 6, 4);
  }

  /* Split so that every binding fits and every grid dimension stays ≤ 65535: W (with y's
   * column slice and b) by output columns, then x and y by rows. */
  VkDeviceSize limit = vkc_binding_limit (dev, opt->max_binding);
  VkDeviceSize align = info->min_storage_offset_alignment;
  int64_t w_rows = vkc_rows_fitting_bytes (limit, align, (int64_t) vkc_dtype_bytes (w->dtype, ldw),
                                           vkc_dtype_bytes (w->dtype, K));
  int64_t n_step = MIN (w_rows, vkc_rows_fitting (limit, align, 1, 1, 4));
  if (!plan.gemv) n_step = MIN (n_step, (int64_t) 65535 * plan.tile.bn);
  g_assert_cmpint (n_step, >, 0);

  VkcTensor x2 = vkc_rows_view (x, M, K, ldx);
  VkcTensor y2 = vkc_rows_view (y, M, N, ldy);
  VkcTensor w2 = vkc_rows_view (w, N, K, ldw);
  for (int64_t n0 = 0; n0 < N; n0 += n_step) {
    int64_t nc = MIN (n_step, N - n0);
    VkcTensor wc = vkc_tensor_narrow (&w2, 0, n0, nc);
    VkcTensor yc = vkc_tensor_narrow (&y2, 1, n0, nc);
    VkcTensor bc = { 0 };
    if (bias) bc = vkc_tensor_narrow (bias, 0, n0, nc);
    int64_t m_step = MIN (vkc_rows_fitting (limit, align, ldx, K, 4), vkc_rows_fitting (limit, align, ldy, nc, 4));
    m_step = MIN (m_step, plan.gemv ? (int64_t) plan.gemv_rows : (int64_t) 65535 * plan.tile.bm);
    g_assert_cmpint (m_step, >, 0);
    for (int64_t m0 = 0; m0 < M; m0 += m_step) {
      int64_t mc = MIN (m_step, M - m0);
      VkcTensor xr = vkc_tensor_narrow (&x2, 0, m0, mc);
      VkcTensor yr = vkc_tensor_narrow (&yc, 0, m0, mc);
      dispatch_chunk (cmd, &plan, &yr, &xr, &wc, bias ? &bc : NULL);
    }
  }
}

void
vkc_op_linear (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w,
               const VkcTensor *bias)
{
  vkc_op_linear_ex (cmd, y, x, w, bias, NULL);
}
