#include "vkc_ops_linear.h"
#include "vkc_ops_common.h"
#include "vkc_ops_rows.h"
#include "vkc_quant.h"
#include "vkc_half.h"
#include "vkc_internal.h"
#include <math.h>
#include <string.h>

/* Mirrors the push block of shaders/linear_common.glsl. */
typedef struct {
  uint32_t M, N, K;
  uint32_t ldx, ldy, ldw;
  uint32_t x_off, y_off, w_off, b_off;
  uint32_t flags;
} LinearPush;

enum { LINEAR_BIAS = 1, LINEAR_ACCUMULATE = 2, LINEAR_W_PAIRS = 4, LINEAR_X_VEC4 = 8, LINEAR_W_VEC4 = 16 };

/* Tile shapes of linear_tiled.comp (specialization constants 0..5); each invocation keeps a
 * TM×TN block of outputs in registers. 64×128 with 4×8 per invocation for many rows (each
 * shared-memory value feeds 4 or 8 FMAs); 32×64 with 2×4 for up to 64 rows, so that short
 * inputs still spread over enough workgroups to fill a GPU. Shared memory ≤ 12.5 KiB. */
typedef struct {
  uint32_t wg, bm, bn, bk, tm, tn;
} TileShape;
static const TileShape tile_large = { 256, 64, 128, 16, 4, 8 };
static const TileShape tile_small = { 256, 32, 64, 16, 2, 4 };
static const TileShape tile_min = { 64, 32, 32, 16, 4, 4 }; /* devices with < 256 invocations */
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

/* The register-blocked tiles (vkc_ops_common.h), shared by linear_blocked.comp and
 * conv2d_blocked.comp. */
G_STATIC_ASSERT ((int) VKC_LINEAR_TILE_LARGE == (int) VKC_BLOCKED_TILE_LARGE &&
                 (int) VKC_LINEAR_TILE_MEDIUM == (int) VKC_BLOCKED_TILE_MEDIUM &&
                 (int) VKC_LINEAR_TILE_SMALL == (int) VKC_BLOCKED_TILE_SMALL);
static const VkcBlockedTile blocked_large = { "large", 128, 128, 8, 8 };
static const VkcBlockedTile blocked_medium = { "medium", 64, 64, 4, 4 };
static const VkcBlockedTile blocked_small = { "small", 32, 64, 4, 4 };
static const VkcBlockedTile blocked_test_8x8 = { "8x8 test", 64, 64, 8, 8 };
#define BLOCKED_SMALL_MAX_ROWS 64

static uint32_t
blocked_shared_bytes (const VkcBlockedTile *t, bool half, uint32_t per_row)
{
  return VKC_BLOCKED_BK * (t->bm / 4 + 1 + t->bn / 4 + 1) * (half ? 8 : 16) + (half ? 4 : 0) + t->bm * per_row;
}

bool
vkc_blocked_pick (const VkcDeviceInfo *info, int64_t M, int64_t N, bool half, uint32_t per_row, int forced,
                  VkcBlockedPlan *out)
{
  const VkcBlockedTile *order[4];
  int n = 0;
  if (forced) {
    order[n++] = forced == VKC_BLOCKED_TILE_LARGE    ? &blocked_large
                 : forced == VKC_BLOCKED_TILE_MEDIUM ? &blocked_medium
                 : forced == VKC_BLOCKED_TILE_SMALL  ? &blocked_small
                                                     : &blocked_test_8x8;
    out->why = "asked for";
  } else if (M <= BLOCKED_SMALL_MAX_ROWS) {
    order[n++] = &blocked_small;
    out->why = "M <= 64";
  } else if (M >= 512 && N >= 512 && info->subgroup_size >= 32) {
    order[n++] = &blocked_large;
    out->why = "M and N >= 512, subgroups of >= 32";
  } else {
    out->why = info->subgroup_size < 32 && M >= 512 && N >= 512 ? "subgroups narrower than 32" : "default";
  }
  order[n++] = &blocked_medium;
  order[n++] = &blocked_small;
  for (int i = 0; i < n; i++) {
    const VkcBlockedTile *t = order[i];
    uint32_t wg = (t->bm / t->tm) * (t->bn / t->tn);
    if (blocked_shared_bytes (t, half, per_row) > info->max_shared_memory || wg > info->max_workgroup_invocations)
      continue;
    out->t = *t;
    out->wg = wg;
    out->shared = blocked_shared_bytes (t, half, per_row);
    if (i > 0 && order[0] != t)
      out->why = "larger tiles exceed the device's shared memory or workgroup size";
    return true;
  }
  return false;
}

bool
vkc_blocked_switched_off (void)
{
  const char *v = g_getenv ("DEEPGEN_VK_DISABLE_BLOCKED");
  return v && *v && strcmp (v, "0") != 0;
}

/* linear_coopmat.comp: a workgroup of SGM×SGN subgroups, each holding FM×FN accumulators of the
 * device's C×C shape (C = 16 on GPUs, 8 on lavapipe), so a tile is (SGM·FM·C)×(SGN·FN·C):
 *  - large  2×2 subgroups of 4×4: 128×128 at C = 16, for M and N ≥ 512 (each staged fp16 value
 *    feeds 4 MMAs per subgroup; 24 KiB of shared memory);
 *  - medium 2×2 of 2×2: 64×64, the default;
 *  - small  1×4 of 1×2: 16×128, for M ≤ 2C (a few text tokens): the rows are not wasted on
 *    padding and N still spreads over many workgroups.
 * Shapes are not tuned on lavapipe (which runs 8×8×8 at CPU speed, correctness only); a tile
 * whose shared memory does not fit the device steps down to the next smaller. */
typedef struct {
  const char *name;
  uint32_t sgm, sgn, fm, fn;
} CoopTile;
static const CoopTile coop_large = { "large", 2, 2, 4, 4 };
static const CoopTile coop_medium = { "medium", 2, 2, 2, 2 };
static const CoopTile coop_small = { "small", 1, 4, 1, 2 };
#define COOP_BK 32

typedef struct {
  CoopTile t;
  uint32_t bm, bn, wg, shared;
  const char *why;
} CoopPlan;

static uint32_t
coop_shared_bytes (const CoopTile *t, uint32_t c)
{
  uint32_t bm = t->sgm * t->fm * c, bn = t->sgn * t->fn * c;
  return (bm + bn) * (COOP_BK + 8) * 2 + t->sgm * t->sgn * c * c * 4 + 16;
}

static bool
coop_pick (const VkcDeviceInfo *info, int64_t M, int64_t N, CoopPlan *out)
{
  uint32_t c = MAX (info->coopmat_m, info->coopmat_n);
  const CoopTile *order[3];
  int n = 0;
  if (M <= 2 * (int64_t) c) {
    order[n++] = &coop_small;
    out->why = "M <= 2 coopmat rows";
  } else if (M >= 512 && N >= 512) {
    order[n++] = &coop_large;
    out->why = "M and N >= 512";
  } else {
    out->why = "default";
  }
  order[n++] = &coop_medium;
  order[n++] = &coop_small;
  for (int i = 0; i < n; i++) {
    const CoopTile *t = order[i];
    uint32_t wg = t->sgm * t->sgn * info->subgroup_size;
    if (coop_shared_bytes (t, c) > info->max_shared_memory || wg > info->max_workgroup_invocations)
      continue;
    out->t = *t;
    out->bm = t->sgm * t->fm * info->coopmat_m;
    out->bn = t->sgn * t->fn * info->coopmat_n;
    out->wg = wg;
    out->shared = coop_shared_bytes (t, c);
    if (i > 0 && order[0] != t)
      out->why = "larger tiles exceed the device's shared memory or workgroup size";
    return true;
  }
  return false;
}

/* linear_cpu.comp (CPU devices): CPU_WG columns per workgroup (one per invocation, lanes along
 * n) and CPU_RM rows (per-lane x loads spread over the lanes by subgroupShuffle), in subgroups
 * of exactly CPU_SG = 8 lanes (llvmpipe's AVX2 vector). */
#define CPU_WG 64
#define CPU_RM 16 /* RM of linear_cpu.comp */
#define CPU_SG 8

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
  uint32_t bm, bn;           /* the tiled / coopmat kernel's output tile */
  VkcPipeline *pipe_aligned; /* coopmat: the ALIGNED variant, for chunks that allow it */
  bool cpu;                  /* linear_cpu.comp: its pipeline is picked per chunk */
  VkcShader cpu_shader;
  uint32_t flags;
} LinearPlan;

static void
dispatch_chunk (VkcCmd *cmd, const LinearPlan *plan, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w,
                const VkcTensor *bias)
{
  LinearPush pc = {
    .M = (uint32_t) x->shape[0],
    .N = (uint32_t) w->shape[0],
    .K = (uint32_t) x->shape[1],
    .ldx = (uint32_t) x->stride[0],
    .ldy = (uint32_t) y->stride[0],
    .ldw = (uint32_t) w->stride[0],
    .flags = plan->flags,
  };
  VkcBinding b[4];
  b[0] = vkc_tensor_binding (plan->dev, x, false, &pc.x_off);
  b[1] = vkc_tensor_binding (plan->dev, w, false, &pc.w_off);
  if (bias) {
    b[2] = vkc_tensor_binding (plan->dev, bias, false, &pc.b_off);
  } else {
    b[2] = b[0]; /* never read; any valid range will do */
    pc.b_off = 0;
  }
  b[3] = vkc_tensor_binding (plan->dev, y, true, &pc.y_off);
  if ((w->dtype == VKC_F16 || w->dtype == VKC_BF16) && pc.w_off % 2 == 0 && pc.ldw % 2 == 0)
    pc.flags |= LINEAR_W_PAIRS;
  /* 16-byte loads (linear_blocked.comp) where every quad starts on a 16-byte (f32) or 8-byte
   * (16-bit) boundary: the range starts 16-byte aligned and the offset, row stride and K are
   * multiples of 4 elements. */
  if (b[0].offset % 16 == 0 && pc.x_off % 4 == 0 && pc.ldx % 4 == 0 && pc.K % 4 == 0)
    pc.flags |= LINEAR_X_VEC4;
  if (b[1].offset % 16 == 0 && vkc_dtype_block (w->dtype) == 1 && pc.w_off % 4 == 0 && pc.ldw % 4 == 0 && pc.K % 4 == 0)
    pc.flags |= LINEAR_W_VEC4;

  VkcPipeline *pipe = plan->pipe;
  if (plan->cpu) {
    /* linear_cpu.comp takes the 16-byte load flags as specialization constants. */
    const uint32_t spec[3] = { CPU_WG, (pc.flags & LINEAR_X_VEC4) != 0, (pc.flags & LINEAR_W_VEC4) != 0 };
    pipe = vkc_pipeline_get_sg (plan->dev, plan->cpu_shader, spec, 3, 4, CPU_SG);
  }
  /* Whole tiles and 16-byte aligned y rows: the variant that stores accumulators straight to y. */
  if (plan->pipe_aligned && pc.M % plan->bm == 0 && pc.N % plan->bn == 0 && pc.K % 32 == 0 && pc.y_off % 4 == 0 &&
      pc.ldy % 4 == 0)
    pipe = plan->pipe_aligned;
  uint32_t gx, gy;
  if (plan->gemv) {
    vkc_grid_1d (vkc_div_up (pc.N, GEMV_NR) * (uint64_t) GEMV_WG, GEMV_WG, &gx, &gy);
  } else {
    gx = vkc_div_up (pc.N, plan->bn);
    gy = vkc_div_up (pc.M, plan->bm);
  }
  vkc_cmd_dispatch (cmd, pipe, b, 4, &pc, sizeof pc, gx, gy, 1);
}

/* The coopmat variant for a weight type. DEEPGEN_VK_TEST_BROKEN_COOPMAT=1 (a test hook) swaps in
 * a variant that drops the last K slice, where one was built (f16), to exercise the self-check. */
static VkcShader
coop_shader (VkcDType wt)
{
  if (wt == VKC_F16 && env_flag ("DEEPGEN_VK_TEST_BROKEN_COOPMAT") &&
      vkc_shader_exists (VKC_SHADER_LINEAR_COOPMAT_BROKEN_F16))
    return VKC_SHADER_LINEAR_COOPMAT_BROKEN_F16;
  return vkc_shaders_linear_coopmat[0][wt];
}

/* NMSE bound of the coopmat kernel against an fp64 reference on the exact fp32 inputs, for
 * N(0,1) inputs and fp32 accumulation: rounding x and w to fp16 (u = 2⁻¹¹, round to nearest:
 * relative error uniform in ±u/2·… with variance ≤ u²/12 per input, so a product x·w carries
 * ≤ 2·u²/12 = u²/6 relative variance, independent across terms) makes the NMSE of a K-term dot
 * product of independent zero-mean terms ≈ u²/6 ≈ 4e-8, whatever K; fp32 accumulation adds
 * ≈ K·(2⁻²⁴)²/3, negligible. 100× margin for sums with cancellation: 4e-6. (The test derives the
 * same bound in tests/ops/test_linear_coopmat.c.) */
#define COOP_SELFCHECK_NMSE 4e-6

/* The blocked kernel with fp32 tiles sums like the tiled one, so it is held to fp32's bound
 * (30·(2⁻²⁴)²·K, tests/ops/test_linear.c): 1.7e-11 at the check's largest K, 160. With fp16 tiles it
 * rounds x and W to fp16 as the coopmat kernel does: COOP_SELFCHECK_NMSE. */
#define BLOCKED_SELFCHECK_NMSE (30.0 * 160 / (16777216.0 * 16777216.0))

/* Runs the fast kernel `fast` on small known inputs against the scalar tiled kernel: a shape
 * that is no tile multiple and spans several K slices (dropped or misplaced tiles show), and one
 * that is (coopmat: the aligned variant, with bias). Returns the NMSE, or -1 when it could not
 * run. While it runs, the self-checked kernel is taken without checking it again. */
static bool selfcheck_running;

static double
selfcheck_shape (VkcDevice *dev, VkcLinearKernel fast, int tile, VkcDType wt, int M, int N, int K, bool bias,
                 GError **error)
{
  g_autoptr (VkcPool) pool = vkc_pool_new (dev, VKC_POOL_HOST, 1 << 20, "selfcheck");
  g_autofree float *xs = g_new (float, (size_t) M *K + (size_t) N * K + N);
  float *ws = xs + (size_t) M * K, *bs = ws + (size_t) N * K;
  guint32 seed = 12345;
  for (size_t i = 0; i < (size_t) M * K + (size_t) N * K + N; i++) {
    seed = seed * 1664525u + 1013904223u;
    xs[i] = ((float) (seed >> 8) / 16777216.0f - 0.5f) * 2.0f;
  }
  VkcTensor x = { 0 }, w = { 0 }, b = { 0 }, y1 = { 0 }, y2 = { 0 };
  if (!vkc_tensor_alloc (&x, pool, false, VKC_F32, 2, (int64_t[]) { M, K }, error) ||
      !vkc_tensor_alloc (&w, pool, false, wt, 2, (int64_t[]) { N, K }, error) ||
      !vkc_tensor_alloc (&b, pool, false, VKC_F32, 1, (int64_t[]) { N }, error) ||
      !vkc_tensor_alloc (&y1, pool, false, VKC_F32, 2, (int64_t[]) { M, N }, error) ||
      !vkc_tensor_alloc (&y2, pool, false, VKC_F32, 2, (int64_t[]) { M, N }, error))
    return -1;
  g_autofree void *wdata = NULL;
  if (wt == VKC_F32) {
    wdata = g_memdup2 (ws, sizeof (float) * N * K);
  } else if (vkc_dtype_block (wt) > 1) {
    wdata = g_malloc (vkc_dtype_bytes (wt, (int64_t) N * K));
    vkc_quantize (wt, ws, (int64_t) N * K, wdata);
  } else {
    uint16_t *h = g_new (uint16_t, (size_t) N *K);
    for (size_t i = 0; i < (size_t) N * K; i++)
      h[i] = wt == VKC_BF16 ? vkc_f32_to_bf16 (ws[i]) : vkc_f32_to_f16 (ws[i]);
    wdata = h;
  }
  if (!vkc_tensor_upload (dev, &x, xs, error) || !vkc_tensor_upload (dev, &w, wdata, error) ||
      !vkc_tensor_upload (dev, &b, bs, error))
    return -1;
  VkcCmd *cmd = vkc_cmd_begin (dev, error);
  if (!cmd)
    return -1;
  VkcLinearOptions o = VKC_LINEAR_OPTIONS_DEFAULT;
  o.kernel = fast;
  o.blocked_tile = tile;
  selfcheck_running = true;
  vkc_op_linear_ex (cmd, &y1, &x, &w, bias ? &b : NULL, &o);
  selfcheck_running = false;
  o.kernel = VKC_LINEAR_TILED;
  o.blocked_tile = 0;
  vkc_op_linear_ex (cmd, &y2, &x, &w, bias ? &b : NULL, &o);
  bool ok = vkc_cmd_submit_wait (cmd, error);
  vkc_cmd_free (cmd);
  if (!ok)
    return -1;
  g_autofree float *a = g_new (float, (size_t) M *N), *r = g_new (float, (size_t) M *N);
  if (!vkc_tensor_download (dev, &y1, a, error) || !vkc_tensor_download (dev, &y2, r, error))
    return -1;
  double num = 0, den = 0;
  for (size_t i = 0; i < (size_t) M * N; i++) {
    double d = (double) a[i] - r[i];
    num += d * d;
    den += (double) r[i] * r[i];
  }
  double nmse = den > 0 ? num / den : num;
  return isnan (nmse) ? INFINITY : nmse;
}

static void
coop_selfcheck (VkcDevice *dev, const char *name, VkcDType wt)
{
  g_autoptr (GError) error = NULL;
  double e1 = selfcheck_shape (dev, VKC_LINEAR_COOPMAT, 0, wt, 37, 45, 160, false, &error);
  /* 64×64×96 is a multiple of every tile coop_pick gives 64 rows (C = 8 or 16). */
  double e2 = e1 < 0 ? -1 : selfcheck_shape (dev, VKC_LINEAR_COOPMAT, 0, wt, 64, 64, 96, true, &error);
  if (e1 < 0 || e2 < 0) {
    /* Could not run (out of memory, …): no verdict, the scalar path for now, check again later. */
    g_debug ("vkc: coopmat self-check of %s could not run: %s", name, error ? error->message : "?");
    vkc_fastpath_not_run (dev, name);
    return;
  }
  double nmse = MAX (e1, e2);
  g_autofree char *detail = g_strdup_printf ("NMSE %.3g against the scalar kernel on 37x45x160 and 64x64x96 "
                                             "products (limit %.0e)",
                                             nmse, COOP_SELFCHECK_NMSE);
  vkc_fastpath_record (dev, name, nmse <= COOP_SELFCHECK_NMSE, detail);
}

/* Whether the coopmat kernel for wt may run: device support, an embedded variant, and a passed
 * (or first run now) self-check. *why (optional) says why not. */
static bool
coop_usable (VkcDevice *dev, VkcDType wt, const char **why)
{
  const VkcDeviceInfo *info = vkc_device_info (dev);
  VkcShader shader = coop_shader (wt);
  const char *name = vkc_shader_name (shader); /* the self-check's verdict is kept under it */
  CoopPlan cp;
  const char *dummy;
  if (!why)
    why = &dummy;
  if (!info->cooperative_matrix) {
    *why = info->coopmat_why;
    return false;
  }
  if (!vkc_shader_exists (shader)) {
    *why = "this build has no coopmat shaders (its glslc lacked GL_KHR_cooperative_matrix)";
    return false;
  }
  if (!coop_pick (info, 1024, 1024, &cp)) {
    *why = "no coopmat tile fits the device's shared memory";
    return false;
  }
  if (selfcheck_running)
    return true;
  if (vkc_fastpath_state (dev, name) == VKC_FASTPATH_UNKNOWN)
    coop_selfcheck (dev, name, wt);
  return vkc_fastpath_passed (dev, name, why);
}

/* The blocked kernel's shader for a weight type; DEEPGEN_VK_TEST_BROKEN_BLOCKED=1 (a test hook)
 * swaps in linear_blocked_broken_f16 (drops the last K slice) for f16 fp32-tile requests. */
static VkcShader
blocked_shader (VkcDType wt, bool half)
{
  if (wt == VKC_F16 && !half && env_flag ("DEEPGEN_VK_TEST_BROKEN_BLOCKED") &&
      vkc_shader_exists (VKC_SHADER_LINEAR_BLOCKED_BROKEN_F16))
    return VKC_SHADER_LINEAR_BLOCKED_BROKEN_F16;
  return vkc_shaders_linear_blocked[half][wt];
}

/* Self-check of a blocked variant on every tile it may use: 37×45×160 on the small tile (no tile
 * multiple, several K slices), 128×128×96 with bias on the medium one (whole tiles) and 130×140×96
 * on the large one (where it fits the device; else the medium one again). */
static void
blocked_selfcheck (VkcDevice *dev, const char *name, VkcDType wt, bool half)
{
  g_autoptr (GError) error = NULL;
  VkcLinearKernel k = half ? VKC_LINEAR_BLOCKED_HALF : VKC_LINEAR_BLOCKED;
  double e1 = selfcheck_shape (dev, k, VKC_LINEAR_TILE_SMALL, wt, 37, 45, 160, false, &error);
  double e2 = e1 < 0 ? -1 : selfcheck_shape (dev, k, VKC_LINEAR_TILE_MEDIUM, wt, 128, 128, 96, true, &error);
  double e3 = e2 < 0 ? -1 : selfcheck_shape (dev, k, VKC_LINEAR_TILE_LARGE, wt, 130, 140, 96, false, &error);
  if (e1 < 0 || e2 < 0 || e3 < 0) {
    g_debug ("vkc: self-check of %s could not run: %s", name, error ? error->message : "?");
    vkc_fastpath_not_run (dev, name);
    return;
  }
  double nmse = MAX (MAX (e1, e2), e3), limit = half ? COOP_SELFCHECK_NMSE : BLOCKED_SELFCHECK_NMSE;
  g_autofree char *detail = g_strdup_printf ("NMSE %.3g against the tiled kernel on 37x45x160, 128x128x96 and "
                                             "130x140x96 products (limit %.1e)",
                                             nmse, limit);
  vkc_fastpath_record (dev, name, nmse <= limit, detail);
}

/* Whether the blocked kernel (fp32 or fp16 tiles) may run for wt: a built variant, a tile that
 * fits, and a passed (or first run now) self-check. *why says why not. */
static bool
blocked_usable (VkcDevice *dev, VkcDType wt, bool half, const char **why)
{
  const VkcDeviceInfo *info = vkc_device_info (dev);
  VkcShader shader = blocked_shader (wt, half);
  const char *name = vkc_shader_name (shader); /* the self-check's verdict is kept under it */
  VkcBlockedPlan bp;
  if (!vkc_shader_exists (shader)) {
    *why = half ? "no fp16-tile variant for f32 weights" : "this build has no blocked kernel";
    return false;
  }
  if (!vkc_blocked_pick (info, 1024, 1024, half, 0, 0, &bp)) {
    *why = "no blocked tile fits the device's shared memory or workgroup size";
    return false;
  }
  if (selfcheck_running)
    return true;
  if (vkc_fastpath_state (dev, name) == VKC_FASTPATH_UNKNOWN)
    blocked_selfcheck (dev, name, wt, half);
  return vkc_fastpath_passed (dev, name, why);
}

/* DEEPGEN_VK_DISABLE_CPU_GEMM=1: AUTO does not take linear_cpu.comp (back to the blocked kernel). */
static bool
cpu_gemm_switched_off (void)
{
  return env_flag ("DEEPGEN_VK_DISABLE_CPU_GEMM");
}

/* The CPU kernel's shader for a weight type; DEEPGEN_VK_TEST_BROKEN_CPU_GEMM=1 (a test hook)
 * swaps in linear_cpu_broken_f16 (drops the last 4 k) for f16 weights. */
static VkcShader
cpu_shader (VkcDType wt)
{
  if (wt == VKC_F16 && env_flag ("DEEPGEN_VK_TEST_BROKEN_CPU_GEMM") &&
      vkc_shader_exists (VKC_SHADER_LINEAR_CPU_BROKEN_F16))
    return VKC_SHADER_LINEAR_CPU_BROKEN_F16;
  return vkc_shaders_linear_cpu[wt];
}

/* Self-check of the CPU kernel: 37×45×160 (no multiple of the workgroup's 64 columns or 16 rows,
 * 16-byte W loads), 70×130×96 with bias, and for the element types 19×21×37 (odd K: the
 * one-k-at-a-time loop). Same sums as the tiled kernel: fp32's bound. */
static void
cpu_selfcheck (VkcDevice *dev, const char *name, VkcDType wt)
{
  g_autoptr (GError) error = NULL;
  double e1 = selfcheck_shape (dev, VKC_LINEAR_CPU, 0, wt, 37, 45, 160, false, &error);
  double e2 = e1 < 0 ? -1 : selfcheck_shape (dev, VKC_LINEAR_CPU, 0, wt, 70, 130, 96, true, &error);
  double e3 =
      e2 < 0 || vkc_dtype_block (wt) > 1 ? e2 : selfcheck_shape (dev, VKC_LINEAR_CPU, 0, wt, 19, 21, 37, false, &error);
  if (e1 < 0 || e2 < 0 || e3 < 0) {
    g_debug ("vkc: self-check of %s could not run: %s", name, error ? error->message : "?");
    vkc_fastpath_not_run (dev, name);
    return;
  }
  double nmse = MAX (MAX (e1, e2), e3);
  g_autofree char *detail = g_strdup_printf ("NMSE %.3g against the tiled kernel on 37x45x160, 70x130x96 and "
                                             "19x21x37 products (limit %.1e)",
                                             nmse, BLOCKED_SELFCHECK_NMSE);
  vkc_fastpath_record (dev, name, nmse <= BLOCKED_SELFCHECK_NMSE, detail);
}

/* Whether the CPU kernel may run for wt: a built variant and a passed (or first run now)
 * self-check. *why says why not. */
static bool
cpu_usable (VkcDevice *dev, VkcDType wt, const char **why)
{
  VkcShader shader = cpu_shader (wt);
  const char *name = vkc_shader_name (shader); /* the self-check's verdict is kept under it */
  const VkcDeviceInfo *info = vkc_device_info (dev);
  if (!vkc_shader_exists (shader)) {
    *why = "this build has no CPU GEMM";
    return false;
  }
  if (!info->subgroup_shuffle ||
      !(info->subgroup_size == CPU_SG ||
        (info->subgroup_size_control && info->min_subgroup_size <= CPU_SG && CPU_SG <= info->max_subgroup_size))) {
    *why = "it needs subgroups of 8 lanes with subgroupShuffle";
    return false;
  }
  if (selfcheck_running)
    return true;
  if (vkc_fastpath_state (dev, name) == VKC_FASTPATH_UNKNOWN)
    cpu_selfcheck (dev, name, wt);
  return vkc_fastpath_passed (dev, name, why);
}

/* The scalar kernel for many rows: blocked with fp16 tiles, blocked with fp32 tiles, or tiled.
 * `request` is AUTO, BLOCKED or BLOCKED_HALF (the fp16 tiles asked for; AUTO decides). *why
 * says why the blocked kernel is not used, or why its tiles are fp32. */
static VkcLinearKernel
choose_scalar (VkcDevice *dev, const VkcLinearOptions *opt, VkcLinearKernel request, VkcDType wt, const char **why)
{
  const VkcDeviceInfo *info = vkc_device_info (dev);
  if (request == VKC_LINEAR_AUTO && vkc_blocked_switched_off ()) {
    *why = "switched off by DEEPGEN_VK_DISABLE_BLOCKED";
    return VKC_LINEAR_TILED;
  }
  bool half = false;
  if (wt == VKC_F32) {
    *why = "f32 weights ask for fp32 products";
  } else if (!info->fp16_arith) {
    *why = "the device has no shaderFloat16";
  } else if (request == VKC_LINEAR_BLOCKED_HALF) {
    half = true;
  } else if (request == VKC_LINEAR_BLOCKED) {
    *why = "asked for";
  } else if (opt->fp32_only) {
    *why = "the caller asked for fp32";
  } else if (env_flag ("DEEPGEN_VK_DISABLE_FP16_TILES")) {
    *why = "switched off by DEEPGEN_VK_DISABLE_FP16_TILES";
  } else if (info->type == VK_PHYSICAL_DEVICE_TYPE_CPU) {
    *why = "a CPU device has no shared-memory bandwidth to save";
  } else if (info->vendor_id == 0x10de) {
    /* Each staged fp16 value is converted back to fp32 when read: 16 conversions per 64 FMAs on
     * the large tile. AMD (v_fma_mix) and Intel (mixed-precision operands) fold them into the
     * FMA; NVIDIA's F2F runs at 1/4–1/8 of its FMA rate, which would make fp16 tiles slower
     * than fp32 ones (predicted, docs/PERF.md; NVIDIA GPUs since Turing take coopmat anyway). */
    *why = "NVIDIA converts fp16 to fp32 at a fraction of its FMA rate";
  } else {
    half = true;
  }
  if (half) {
    const char *why_half = "";
    if (blocked_usable (dev, wt, true, &why_half))
      return VKC_LINEAR_BLOCKED_HALF;
    *why = why_half;
  }
  const char *why_blocked = "";
  if (blocked_usable (dev, wt, false, &why_blocked))
    return VKC_LINEAR_BLOCKED;
  *why = why_blocked;
  return VKC_LINEAR_TILED;
}

/* *why: why cooperative matrices are not used; *why_scalar: why the blocked kernel is not, or
 * why its tiles are fp32 (both optional). */
static VkcLinearKernel
choose_kernel (VkcDevice *dev, const VkcLinearOptions *opt, int64_t M, int64_t N, VkcDType wt, const char **why,
               const char **why_scalar)
{
  const VkcDeviceInfo *info = vkc_device_info (dev);
  const char *dummy, *dummy2;
  if (!why)
    why = &dummy;
  if (!why_scalar)
    why_scalar = &dummy2;
  *why = "";
  *why_scalar = "";
  VkcLinearKernel k = opt->kernel;
  if (k == VKC_LINEAR_COOPMAT) {
    if (coop_usable (dev, wt, why))
      return k;
    k = VKC_LINEAR_TILED;
  }
  if (k == VKC_LINEAR_BLOCKED || k == VKC_LINEAR_BLOCKED_HALF)
    return choose_scalar (dev, opt, k, wt, why_scalar);
  if (k == VKC_LINEAR_CPU) {
    if (cpu_usable (dev, wt, why_scalar))
      return k;
    return choose_scalar (dev, opt, VKC_LINEAR_AUTO, wt, why_scalar);
  }
  if (k != VKC_LINEAR_AUTO)
    return k;
  bool gemv = M <= VKC_LINEAR_GEMV_MAX_ROWS && !env_flag ("DEEPGEN_VK_DISABLE_GEMV");
  if (opt->fp32_only) {
    *why = "the caller asked for fp32";
  } else if (wt == VKC_F32) {
    /* f32 weights are how callers ask for fp32 arithmetic (the model's fp32 precision mode, whose
     * goldens hold to ±1 in 8 bits): rounding them and x to fp16 would break that contract. */
    *why = "f32 weights ask for fp32 products (fp32 precision mode)";
  } else if (!info->cooperative_matrix) {
    *why = info->coopmat_why;
  } else if (info->type == VK_PHYSICAL_DEVICE_TYPE_CPU && !info->coopmat_forced) {
    /* lavapipe runs cooperative matrices as plain SIMD code: correct, and slower than the scalar
     * kernel (DiT qkv on 2 cores: 0.7 against 1.3 GFLOP/s, docs/PERF.md). */
    *why = "a CPU device emulates cooperative matrices, slower than the scalar kernel "
           "(DEEPGEN_VK_FORCE_COOPMAT=1 takes them anyway)";
  } else if (gemv && !info->coopmat_forced) {
    *why = "few rows: the GEMV is bandwidth-bound, matrix units do not help";
  } else if (coop_usable (dev, wt, why)) {
    return VKC_LINEAR_COOPMAT;
  }
  if (gemv)
    return VKC_LINEAR_GEMV;
  if (info->type == VK_PHYSICAL_DEVICE_TYPE_CPU) {
    /* A CPU device runs GPU-shaped tiles at 4–9 % of a C GEMM on the same cores (per-lane shared
     * loads, spilled accumulators); linear_cpu.comp is shaped for its SIMD lanes (docs/PERF.md). */
    const char *why_cpu = "";
    if (!cpu_gemm_switched_off () && cpu_usable (dev, wt, &why_cpu))
      return VKC_LINEAR_CPU;
  }
  return choose_scalar (dev, opt, VKC_LINEAR_AUTO, wt, why_scalar);
}

void
vkc_linear_selfcheck_all (VkcDevice *dev)
{
  static const VkcDType types[] = { VKC_F32, VKC_BF16, VKC_F16, VKC_Q8_0, VKC_Q4_0 };
  for (guint i = 0; i < G_N_ELEMENTS (types); i++) {
    /* What AUTO takes for many rows, and what it takes when the caller asks for fp32 (the blocked
     * kernel's fp32 tiles where AUTO would take fp16 ones). */
    VkcLinearOptions opt = VKC_LINEAR_OPTIONS_DEFAULT;
    choose_kernel (dev, &opt, 1024, 1024, types[i], NULL, NULL);
    opt.fp32_only = true;
    choose_kernel (dev, &opt, 1024, 1024, types[i], NULL, NULL);
  }
}

char *
vkc_linear_describe (VkcDevice *dev, int64_t M, int64_t N, int64_t K, VkcDType wt)
{
  const VkcDeviceInfo *info = vkc_device_info (dev);
  VkcLinearOptions opt = VKC_LINEAR_OPTIONS_DEFAULT;
  const char *why = "", *why_scalar = "";
  VkcLinearKernel k = choose_kernel (dev, &opt, M, N, wt, &why, &why_scalar);
  if (k == VKC_LINEAR_COOPMAT) {
    CoopPlan cp;
    coop_pick (info, M, N, &cp);
    return g_strdup_printf ("coopmat %ux%ux%u, %s tile %ux%u (%s), %u subgroups of %u, %u B shared; "
                            "self-check passed",
                            info->coopmat_m, info->coopmat_n, info->coopmat_k, cp.t.name, cp.bm, cp.bn, cp.why,
                            cp.t.sgm * cp.t.sgn, info->subgroup_size, cp.shared);
  }
  if (k == VKC_LINEAR_GEMV)
    return g_strdup_printf ("scalar GEMV (%s)", why);
  /* On a CPU device, why its own kernel is not used ("" elsewhere). */
  g_autofree char *cpu_why_not = g_strdup ("");
  if (info->type == VK_PHYSICAL_DEVICE_TYPE_CPU && k != VKC_LINEAR_CPU) {
    const char *why_cpu = "switched off by DEEPGEN_VK_DISABLE_CPU_GEMM";
    if (!cpu_gemm_switched_off ())
      cpu_usable (dev, wt, &why_cpu);
    g_free (cpu_why_not);
    cpu_why_not = g_strdup_printf ("CPU GEMM not used: %s; ", why_cpu);
  }
  if (k == VKC_LINEAR_CPU)
    return g_strdup_printf ("CPU GEMM %ux%u (a CPU device: one output column and %u rows per invocation, x rows "
                            "spread over the %u SIMD lanes by subgroupShuffle, no shared memory); self-check "
                            "passed (coopmat not used: %s)",
                            CPU_RM, CPU_WG, CPU_RM, CPU_SG, why);
  if (k == VKC_LINEAR_BLOCKED || k == VKC_LINEAR_BLOCKED_HALF) {
    bool half = k == VKC_LINEAR_BLOCKED_HALF;
    VkcBlockedPlan bp;
    vkc_blocked_pick (info, M, N, half, 0, 0, &bp);
    g_autofree char *tiles = half ? g_strdup ("fp16 tiles") : g_strdup_printf ("fp32 tiles: %s", why_scalar);
    return g_strdup_printf ("scalar blocked %ux%u (%s), %ux%u per invocation, %u invocations, %u B shared, "
                            "%s; self-check passed (%scoopmat not used: %s)",
                            bp.t.bm, bp.t.bn, bp.why, bp.t.tm, bp.t.tn, bp.wg, bp.shared, tiles, cpu_why_not, why);
  }
  TileShape t = pick_tile (info, M, wt);
  return g_strdup_printf ("scalar fp32 tiled %ux%u (%sblocked kernel not used: %s; coopmat not used: %s)", t.bm, t.bn,
                          cpu_why_not, why_scalar, why);
}

void
vkc_op_linear_ex (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w, const VkcTensor *bias,
                  const VkcLinearOptions *opt)
{
  static const VkcLinearOptions defaults = VKC_LINEAR_OPTIONS_DEFAULT;
  if (!opt)
    opt = &defaults;
  VkcDevice *dev = vkc_cmd_device (cmd);
  const VkcDeviceInfo *info = vkc_device_info (dev);

  int64_t M, K, ldx, My, N, ldy;
  vkc_rows_of (x, &M, &K, &ldx);
  vkc_rows_of (y, &My, &N, &ldy);
  g_assert (x->dtype == VKC_F32 && y->dtype == VKC_F32);
  g_assert (w->dtype == VKC_F32 || w->dtype == VKC_F16 || w->dtype == VKC_BF16 || w->dtype == VKC_Q8_0 ||
            w->dtype == VKC_Q4_0);
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
  if (M == 0 || N == 0)
    return;
  g_assert (K < ((int64_t) 1 << 31) && N < ((int64_t) 1 << 31));

  LinearPlan plan = { .dev = dev };
  plan.flags = (bias ? LINEAR_BIAS : 0) | (opt->accumulate ? LINEAR_ACCUMULATE : 0);
  VkcLinearKernel kernel = choose_kernel (dev, opt, M, N, w->dtype, NULL, NULL);
  plan.gemv = kernel == VKC_LINEAR_GEMV;
  CoopPlan cp;
  if (kernel == VKC_LINEAR_COOPMAT) {
    VkcShader shader = coop_shader (w->dtype);
    bool picked = coop_pick (info, M, N, &cp);
    g_assert (picked); /* coop_usable checked that a tile fits */
    plan.bm = cp.bm;
    plan.bn = cp.bn;
    const uint32_t spec[9] = { cp.wg,
                               cp.bm,
                               cp.bn,
                               COOP_BK,
                               info->coopmat_m,
                               info->coopmat_n,
                               info->coopmat_k,
                               cp.t.fm * info->coopmat_m,
                               cp.t.fn * info->coopmat_n };
    plan.pipe = vkc_pipeline_get_sg (dev, shader, spec, 9, 4, info->subgroup_size);
    VkcShader aligned = vkc_shaders_linear_coopmat[1][w->dtype];
    if (shader != VKC_SHADER_LINEAR_COOPMAT_BROKEN_F16 && vkc_shader_exists (aligned))
      plan.pipe_aligned = vkc_pipeline_get_sg (dev, aligned, spec, 9, 4, info->subgroup_size);
  } else if (plan.gemv) {
    uint32_t min_sg = info->min_subgroup_size ? info->min_subgroup_size : info->subgroup_size;
    bool sg = info->subgroup_arith && min_sg >= 4 && !opt->no_subgroup && !env_flag ("DEEPGEN_VK_DISABLE_SUBGROUP");
    /* Rows per dispatch: M rounded up to a power of two, so one row does not pay for eight. */
    plan.gemv_rows = 1;
    while (plan.gemv_rows < MIN (M, VKC_LINEAR_GEMV_MAX_ROWS)) plan.gemv_rows *= 2;
    const uint32_t spec[3] = { GEMV_WG, GEMV_NR, plan.gemv_rows };
    plan.pipe = vkc_pipeline_get (dev, vkc_shaders_linear_gemv[sg][w->dtype], spec, 3, 4);
  } else if (kernel == VKC_LINEAR_BLOCKED || kernel == VKC_LINEAR_BLOCKED_HALF) {
    bool half = kernel == VKC_LINEAR_BLOCKED_HALF;
    VkcBlockedPlan bp;
    bool picked = vkc_blocked_pick (info, M, N, half, 0, opt->blocked_tile, &bp);
    g_assert (picked); /* blocked_usable checked that a tile fits */
    plan.bm = bp.t.bm;
    plan.bn = bp.t.bn;
    const uint32_t spec[6] = { bp.wg, bp.t.bm, bp.t.bn, VKC_BLOCKED_BK, bp.t.tm, bp.t.tn };
    plan.pipe = vkc_pipeline_get (dev, blocked_shader (w->dtype, half), spec, 6, 4);
  } else if (kernel == VKC_LINEAR_CPU) {
    /* The pipeline depends on each chunk's alignment (dispatch_chunk). */
    plan.cpu = true;
    plan.cpu_shader = cpu_shader (w->dtype);
    plan.bm = CPU_RM;
    plan.bn = CPU_WG;
    plan.pipe = NULL;
  } else {
    plan.tile = pick_tile (info, M, w->dtype);
    plan.bm = plan.tile.bm;
    plan.bn = plan.tile.bn;
    const TileShape *t = &plan.tile;
    const uint32_t spec[6] = { t->wg, t->bm, t->bn, t->bk, t->tm, t->tn };
    plan.pipe = vkc_pipeline_get (dev, vkc_shaders_linear_tiled[w->dtype], spec, 6, 4);
  }

  /* Split so that every binding fits and every grid dimension stays ≤ 65535: W (with y's
   * column slice and b) by output columns, then x and y by rows. */
  VkDeviceSize limit = vkc_binding_limit (dev, opt->max_binding);
  VkDeviceSize align = info->min_storage_offset_alignment;
  int64_t w_rows =
      vkc_rows_fitting_bytes (limit, align, (int64_t) vkc_dtype_bytes (w->dtype, ldw), vkc_dtype_bytes (w->dtype, K));
  int64_t n_step = MIN (w_rows, vkc_rows_fitting (limit, align, 1, 1, 4));
  if (!plan.gemv)
    n_step = MIN (n_step, (int64_t) 65535 * plan.bn);
  g_assert_cmpint (n_step, >, 0);

  VkcTensor x2 = vkc_rows_view (x, M, K, ldx);
  VkcTensor y2 = vkc_rows_view (y, M, N, ldy);
  VkcTensor w2 = vkc_rows_view (w, N, K, ldw);
  for (int64_t n0 = 0; n0 < N; n0 += n_step) {
    int64_t nc = MIN (n_step, N - n0);
    VkcTensor wc = vkc_tensor_narrow (&w2, 0, n0, nc);
    VkcTensor yc = vkc_tensor_narrow (&y2, 1, n0, nc);
    VkcTensor bc = { 0 };
    if (bias)
      bc = vkc_tensor_narrow (bias, 0, n0, nc);
    int64_t m_step = MIN (vkc_rows_fitting (limit, align, ldx, K, 4), vkc_rows_fitting (limit, align, ldy, nc, 4));
    m_step = MIN (m_step, plan.gemv ? (int64_t) plan.gemv_rows : (int64_t) 65535 * plan.bm);
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
vkc_op_linear (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w, const VkcTensor *bias)
{
  vkc_op_linear_ex (cmd, y, x, w, bias, NULL);
}
