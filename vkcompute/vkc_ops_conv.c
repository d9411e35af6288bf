#include "vkc_ops_conv.h"
#include "vkc_ops_common.h"
#include "vkc_half.h"
#include "vkc_internal.h"
#include <math.h>
#include <string.h>

/* Must match the push block of shaders/conv2d.comp. */
typedef struct {
  uint32_t x_off, w_off, b_off, y_off;
  uint32_t xs_b, xs_h, xs_w;
  uint32_t ys_b, ys_h, ys_w;
  uint32_t H, W, Cin;
  uint32_t in_row0;
  uint32_t Ho, Wo, Cout;
  uint32_t out_row0;
  uint32_t nimg;
  uint32_t kh, kw, stride, pad_t, pad_l;
  uint32_t up;
  uint32_t has_bias;
  uint32_t flags; /* conv2d_blocked.comp only: CONV_X_VEC4, CONV_W_VEC4 */
} ConvPush;
enum { CONV_X_VEC4 = 1, CONV_W_VEC4 = 2 };
G_STATIC_ASSERT (sizeof (ConvPush) <= VKC_PUSH_CONSTANT_BYTES);

/* Must match shaders/upsample.comp. */
typedef struct {
  uint32_t x_off, y_off;
  uint32_t xs_b, xs_h, xs_w;
  uint32_t ys_b, ys_h, ys_w;
  uint32_t C, Wo, Ho;
  uint32_t out_row0, in_row0;
  uint32_t n;
} UpsamplePush;
G_STATIC_ASSERT (sizeof (UpsamplePush) <= VKC_PUSH_CONSTANT_BYTES);

/* Workgroup tiles (pixels × output channels) of the conv2d.comp variants (shaders/conv.cmake).
 * The thin tile serves convs with few output channels (VAE conv_out 128→3), where most of a
 * 64-channel tile would be padding. */
#define TILE_M 64
#define TILE_N 64
#define THIN_TILE_M 128
#define THIN_TILE_N 16

static VkDeviceSize binding_limit_override;

void
vkc_conv_set_binding_limit (VkDeviceSize bytes)
{
  binding_limit_override = bytes;
}

/* Largest tensor span one binding may take: maxStorageBufferRange (or the test override) less
 * the alignment slack vkc_tensor_binding may put in front of the tensor. */
static VkDeviceSize
usable_range (VkcDevice *dev)
{
  const VkcDeviceInfo *info = vkc_device_info (dev);
  VkDeviceSize lim = info->max_storage_buffer_range;
  if (binding_limit_override && binding_limit_override < lim)
    lim = binding_limit_override;
  VkDeviceSize slack = info->min_storage_offset_alignment;
  return lim > slack ? lim - slack : 0;
}

static bool
fits (VkcDevice *dev, const VkcTensor *t)
{
  return vkc_tensor_span_bytes (t) <= usable_range (dev);
}

/* An image tensor as a 4-D NHWC view ([H, W, C] gets B = 1); channels must be contiguous. */
static VkcTensor
as_nhwc (const VkcTensor *t)
{
  g_assert (t->dtype == VKC_F32);
  VkcTensor v = *t;
  if (t->ndim == 3) {
    int64_t shape[4] = { 1, t->shape[0], t->shape[1], t->shape[2] };
    int64_t stride[4] = { t->shape[0] * t->stride[0], t->stride[0], t->stride[1], t->stride[2] };
    v = vkc_tensor_view (t, 4, shape, stride, 0);
  }
  g_assert_cmpint (v.ndim, ==, 4);
  g_assert (v.stride[3] == 1 || v.shape[3] == 1);
  return v;
}

/* Rows [r0, r0 + n) of image b of a 4-D NHWC tensor, as a [1, n, W, C] view. */
static VkcTensor
rows_view (const VkcTensor *t, int64_t b, int64_t r0, int64_t n)
{
  int64_t shape[4] = { 1, n, t->shape[2], t->shape[3] };
  return vkc_tensor_view (t, 4, shape, t->stride, b * t->stride[0] + r0 * t->stride[1]);
}

static uint32_t
u32 (int64_t v)
{
  g_assert (v >= 0 && v <= (int64_t) UINT32_MAX);
  return (uint32_t) v;
}

/* Source rows [*r0, *r1) that output rows [o0, o1) of a conv read (at least one row). */
static void
conv_input_rows (const VkcConv2dGeom *g, int64_t H, int64_t o0, int64_t o1, int64_t *r0, int64_t *r1)
{
  int up = g->upsample2 ? 1 : 0;
  int64_t lo = o0 * g->stride - g->pad_top;
  int64_t hi = (o1 - 1) * g->stride - g->pad_top + g->kh - 1; /* inclusive, logical rows */
  lo = MAX (lo, 0);
  hi = MIN (hi, (H << up) - 1);
  if (hi < lo) {
    *r0 = 0;
    *r1 = 1;
    return;
  } /* the band reads only padding */
  *r0 = lo >> up;
  *r1 = (hi >> up) + 1;
}

/* ---- path choice --------------------------------------------------------------------- */

static int conv_path;         /* vkc_conv_set_path */
static int conv_blocked_tile; /* vkc_conv_set_blocked_tile */
static bool conv_check_running;

void
vkc_conv_set_path (int path)
{
  conv_path = path;
}

void
vkc_conv_set_blocked_tile (int tile)
{
  conv_blocked_tile = tile;
}

/* ---- the register-blocked scalar path (conv2d_blocked.comp) ---------------------------- */

/* Bytes of shared memory per tile pixel beyond the tiles: its origin (ivec2) and x offset. */
#define BLOCKED_PER_PIXEL 12

/* The blocked variant for a weight type; DEEPGEN_VK_TEST_BROKEN_BLOCKED=1 (a test hook, as for
 * linear) swaps in conv2d_blocked_broken_f16 (drops the last K slice) for f16 weights. */
static VkcShader
blocked_shader (VkcDType wt)
{
  const char *broken = g_getenv ("DEEPGEN_VK_TEST_BROKEN_BLOCKED");
  if (wt == VKC_F16 && broken && *broken && strcmp (broken, "0") != 0)
    return VKC_SHADER_CONV2D_BLOCKED_BROKEN_F16;
  return vkc_shaders_conv2d_blocked[wt];
}

static void blocked_selfcheck (VkcDevice *dev, const char *name, VkcDType wt);

/* Whether conv2d_blocked.comp may run for wt: a tile that fits and a passed (or first run now)
 * self-check against conv2d.comp. *why says why not. */
static bool
blocked_usable (VkcDevice *dev, VkcDType wt, const char **why)
{
  const char *name = vkc_shader_name (blocked_shader (wt)); /* the verdict is kept under it */
  VkcBlockedPlan bp;
  if (!vkc_blocked_pick (vkc_device_info (dev), 1024, 1024, false, BLOCKED_PER_PIXEL, 0, &bp)) {
    *why = "no blocked tile fits the device's shared memory or workgroup size";
    return false;
  }
  if (conv_check_running)
    return true;
  if (vkc_fastpath_state (dev, name) == VKC_FASTPATH_UNKNOWN)
    blocked_selfcheck (dev, name, wt);
  return vkc_fastpath_passed (dev, name, why);
}

/* The scalar kernel: the blocked one (AUTO, or path 3) where usable, else conv2d.comp. */
static bool
blocked_chosen (VkcDevice *dev, VkcDType wt, const char **why)
{
  const char *dummy;
  if (!why)
    why = &dummy;
  if (conv_path == 1) {
    *why = "the tiled kernel was asked for";
    return false;
  }
  if (conv_path != 3 && vkc_blocked_switched_off ()) {
    *why = "switched off by DEEPGEN_VK_DISABLE_BLOCKED";
    return false;
  }
  return blocked_usable (dev, wt, why);
}

/* ---- the cooperative-matrix path ---------------------------------------------------- */

/* conv2d_coopmat.comp's tile: 2×2 subgroups of 2×2 accumulators, (4·CM) pixels × (4·CN) channels. */
typedef struct {
  uint32_t bm, bn, wg, wm, wn;
} CoopConvTile;

static CoopConvTile
coop_tile (const VkcDeviceInfo *i)
{
  return (CoopConvTile) { 4 * i->coopmat_m, 4 * i->coopmat_n, 4 * i->subgroup_size, 2 * i->coopmat_m,
                          2 * i->coopmat_n };
}

static bool coop_conv_checked (VkcDevice *dev, VkcDType wt);

static bool
coop_conv_usable (VkcDevice *dev, VkcDType wt, const char **why)
{
  const VkcDeviceInfo *info = vkc_device_info (dev);
  const char *dummy;
  if (!why)
    why = &dummy;
  if (conv_path == 1 || conv_path == 3) {
    *why = "a scalar kernel was asked for";
    return false;
  }
  if (!info->cooperative_matrix) {
    *why = info->coopmat_why;
    return false;
  }
  if (!vkc_shader_exists (vkc_shaders_conv2d_coopmat[wt])) {
    *why = "this build has no coopmat shaders (its glslc lacked GL_KHR_cooperative_matrix)";
    return false;
  }
  if (conv_path != 2) {
    if (wt == VKC_F32) {
      *why = "f32 weights ask for fp32 products";
      return false;
    }
    if (info->type == VK_PHYSICAL_DEVICE_TYPE_CPU && !info->coopmat_forced) {
      *why = "a CPU device emulates cooperative matrices, slower than the scalar kernel";
      return false;
    }
  }
  CoopConvTile t = coop_tile (info);
  if ((t.bm + t.bn) * 40 * 2 + 4 * info->coopmat_m * info->coopmat_n * 4 + 16 > info->max_shared_memory ||
      t.wg > info->max_workgroup_invocations) {
    *why = "the coopmat tile does not fit the device";
    return false;
  }
  if (!coop_conv_checked (dev, wt)) {
    *why = "it failed its self-check on this driver";
    return false;
  }
  return true;
}

char *
vkc_conv_describe (VkcDevice *dev, VkcDType wt)
{
  const VkcDeviceInfo *i = vkc_device_info (dev);
  const char *why = "";
  if (coop_conv_usable (dev, wt, &why)) {
    CoopConvTile t = coop_tile (i);
    return g_strdup_printf ("coopmat %ux%ux%u implicit GEMM, %u pixels x %u channels per tile", i->coopmat_m,
                            i->coopmat_n, i->coopmat_k, t.bm, t.bn);
  }
  const char *why_blocked = "";
  if (blocked_chosen (dev, wt, &why_blocked)) {
    VkcBlockedPlan bp;
    vkc_blocked_pick (i, 1024 * 1024, 512, false, BLOCKED_PER_PIXEL, conv_blocked_tile, &bp);
    return g_strdup_printf (
        "scalar blocked implicit GEMM, %u pixels x %u channels per tile for 512 output channels (%s), "
        "%ux%u per invocation, %u invocations, fp32 tiles; self-check passed (coopmat not "
        "used: %s)",
        bp.t.bm, bp.t.bn, bp.why, bp.t.tm, bp.t.tn, bp.wg, why);
  }
  return g_strdup_printf ("scalar fp32 implicit GEMM, 64 pixels x 64 channels per tile (blocked kernel not used: "
                          "%s; coopmat not used: %s)",
                          why_blocked, why);
}

/* conv2d_blocked.comp (forced, tile `tile`) against conv2d.comp on one geometry with random
 * inputs; returns the NMSE, or -1 when it could not run. */
static double
blocked_selfcheck_shape (VkcDevice *dev, VkcDType wt, int tile, int B, int H, int W, int cin, int cout,
                         const VkcConv2dGeom *g, bool with_bias, GError **error)
{
  int up = g->upsample2 ? 1 : 0;
  int ho = ((H << up) + g->pad_top + g->pad_bottom - g->kh) / g->stride + 1;
  int wo = ((W << up) + g->pad_left + g->pad_right - g->kw) / g->stride + 1;
  size_t nx = (size_t) B * H * W * cin, nw = (size_t) cout * g->kh * g->kw * cin, ny = (size_t) B * ho * wo * cout;
  g_autoptr (VkcPool) pool = vkc_pool_new (dev, VKC_POOL_HOST, 1 << 20, "selfcheck");
  VkcTensor x, w, b, y1, y2;
  if (!vkc_tensor_alloc (&x, pool, false, VKC_F32, 4, (int64_t[]) { B, H, W, cin }, error) ||
      !vkc_tensor_alloc (&w, pool, false, wt, 4, (int64_t[]) { cout, g->kh, g->kw, cin }, error) ||
      !vkc_tensor_alloc (&b, pool, false, VKC_F32, 1, (int64_t[]) { cout }, error) ||
      !vkc_tensor_alloc (&y1, pool, false, VKC_F32, 4, (int64_t[]) { B, ho, wo, cout }, error) ||
      !vkc_tensor_alloc (&y2, pool, false, VKC_F32, 4, (int64_t[]) { B, ho, wo, cout }, error))
    return -1;
  g_autofree float *h = g_new (float, nx + nw + cout);
  guint32 seed = 777;
  for (size_t i = 0; i < nx + nw + cout; i++) {
    seed = seed * 1664525u + 1013904223u;
    h[i] = ((float) (seed >> 8) / 16777216.0f - 0.5f) * 2.0f;
  }
  g_autofree uint16_t *hw = g_new (uint16_t, nw);
  for (size_t i = 0; i < nw; i++) hw[i] = wt == VKC_BF16 ? vkc_f32_to_bf16 (h[nx + i]) : vkc_f32_to_f16 (h[nx + i]);
  if (!vkc_tensor_upload (dev, &x, h, error) ||
      !vkc_tensor_upload (dev, &w, wt == VKC_F32 ? (const void *) (h + nx) : (const void *) hw, error) ||
      !vkc_tensor_upload (dev, &b, h + nx + nw, error))
    return -1;
  VkcCmd *cmd = vkc_cmd_begin (dev, error);
  if (!cmd)
    return -1;
  int saved_path = conv_path, saved_tile = conv_blocked_tile;
  conv_check_running = true;
  conv_path = 3;
  conv_blocked_tile = tile;
  vkc_op_conv2d (cmd, &y1, &x, &w, with_bias ? &b : NULL, g);
  conv_check_running = false;
  conv_path = 1;
  vkc_op_conv2d (cmd, &y2, &x, &w, with_bias ? &b : NULL, g);
  conv_path = saved_path;
  conv_blocked_tile = saved_tile;
  bool ok = vkc_cmd_submit_wait (cmd, error);
  vkc_cmd_free (cmd);
  if (!ok)
    return -1;
  g_autofree float *a = g_new (float, ny), *r = g_new (float, ny);
  if (!vkc_tensor_download (dev, &y1, a, error) || !vkc_tensor_download (dev, &y2, r, error))
    return -1;
  double num = 0, den = 0;
  for (size_t i = 0; i < ny; i++) {
    double d = (double) a[i] - r[i];
    num += d * d;
    den += (double) r[i] * r[i];
  }
  double nmse = den > 0 ? num / den : num;
  return isnan (nmse) ? INFINITY : nmse;
}

/* The blocked conv sums exactly like conv2d.comp (fp32 tiles, one FMA chain per output in k
 * order), so it is held to fp32's bound as the blocked GEMM is (30·(2⁻²⁴)²·K, tests/ops/
 * test_linear.c) at the check's largest K, 216 (3×3×24): 3.9e-11. */
#define BLOCKED_CONV_SELFCHECK_NMSE (30.0 * 216 / (16777216.0 * 16777216.0))

/* Every tile it may use, on geometries that are no tile multiple: a 3×3 of a 6×7×24 image to 20
 * channels on the small tile (K = 216: several K slices, the last one partial; 16-byte loads), a
 * ×2-upsampled 3×3 of two 5×6×5 images to 70 channels with bias on the medium one (odd Cin:
 * scalar loads; two channel tiles) and a stride-2 3×3 of a 25×23×8 image to 130 channels on the
 * large one (where it fits the device; else the medium one again). */
static void
blocked_selfcheck (VkcDevice *dev, const char *name, VkcDType wt)
{
  g_autoptr (GError) error = NULL;
  const VkcConv2dGeom g3 = { 3, 3, 1, 1, 1, 1, 1, false }, up = { 3, 3, 1, 1, 1, 1, 1, true },
                      s2 = { 3, 3, 2, 0, 0, 1, 1, false };
  double e1 = blocked_selfcheck_shape (dev, wt, VKC_BLOCKED_TILE_SMALL, 1, 6, 7, 24, 20, &g3, false, &error);
  double e2 =
      e1 < 0 ? -1 : blocked_selfcheck_shape (dev, wt, VKC_BLOCKED_TILE_MEDIUM, 2, 5, 6, 5, 70, &up, true, &error);
  double e3 =
      e2 < 0 ? -1 : blocked_selfcheck_shape (dev, wt, VKC_BLOCKED_TILE_LARGE, 1, 25, 23, 8, 130, &s2, true, &error);
  if (e1 < 0 || e2 < 0 || e3 < 0) {
    g_debug ("vkc: self-check of %s could not run: %s", name, error ? error->message : "?");
    vkc_fastpath_not_run (dev, name);
    return;
  }
  double nmse = MAX (MAX (e1, e2), e3);
  g_autofree char *detail = g_strdup_printf ("NMSE %.3g against conv2d.comp on three geometries (limit %.1e)", nmse,
                                             BLOCKED_CONV_SELFCHECK_NMSE);
  vkc_fastpath_record (dev, name, nmse <= BLOCKED_CONV_SELFCHECK_NMSE, detail);
}

void
vkc_conv_selfcheck_all (VkcDevice *dev)
{
  static const VkcDType types[] = { VKC_F32, VKC_BF16, VKC_F16 };
  for (guint i = 0; i < G_N_ELEMENTS (types); i++) {
    const char *why;
    if (!coop_conv_usable (dev, types[i], &why))
      blocked_chosen (dev, types[i], &why);
  }
}

/* One-time self-check per weight type (vkc.h): a 3×3 conv of a 6×7×24 image to 20 channels
 * (K = 216: several K slices, no tile multiple) against the scalar kernel. Bound as for linear:
 * fp16 rounding of both inputs, NMSE ≈ 2u²/3 = 1.6e-7 for zero-mean inputs; limit 4e-6. */
static bool
coop_conv_checked (VkcDevice *dev, VkcDType wt)
{
  /* the self-check's verdict is kept under the variant's name */
  const char *name = vkc_shader_name (vkc_shaders_conv2d_coopmat[wt]);
  if (conv_check_running)
    return true;
  VkcFastpathState st = vkc_fastpath_state (dev, name);
  if (st != VKC_FASTPATH_UNKNOWN)
    return st == VKC_FASTPATH_OK;
  enum { H = 6, W = 7, CI = 24, CO = 20, NX = H * W * CI, NW = CO * 9 * CI, NY = H * W * CO };
  g_autoptr (GError) error = NULL;
  g_autoptr (VkcPool) pool = vkc_pool_new (dev, VKC_POOL_HOST, 1 << 20, "selfcheck");
  VkcTensor x, w, y1, y2;
  bool ok = vkc_tensor_alloc (&x, pool, false, VKC_F32, 4, (int64_t[]) { 1, H, W, CI }, &error) &&
            vkc_tensor_alloc (&w, pool, false, wt, 4, (int64_t[]) { CO, 3, 3, CI }, &error) &&
            vkc_tensor_alloc (&y1, pool, false, VKC_F32, 4, (int64_t[]) { 1, H, W, CO }, &error) &&
            vkc_tensor_alloc (&y2, pool, false, VKC_F32, 4, (int64_t[]) { 1, H, W, CO }, &error);
  if (ok) {
    g_autofree float *h = g_new (float, NW);
    guint32 seed = 4242;
    for (int i = 0; i < NW; i++) {
      seed = seed * 1664525u + 1013904223u;
      h[i] = ((float) (seed >> 8) / 16777216.0f - 0.5f) * 2.0f;
    }
    g_autofree uint16_t *hw = g_new (uint16_t, NW);
    for (int i = 0; i < NW; i++) hw[i] = wt == VKC_BF16 ? vkc_f32_to_bf16 (h[i]) : vkc_f32_to_f16 (h[i]);
    ok = vkc_tensor_upload (dev, &x, h + 5, &error) &&
         vkc_tensor_upload (dev, &w, wt == VKC_F32 ? (const void *) h : (const void *) hw, &error);
  }
  VkcCmd *cmd = ok ? vkc_cmd_begin (dev, &error) : NULL;
  if (cmd) {
    int saved = conv_path;
    conv_check_running = true;
    conv_path = 2;
    vkc_op_conv2d_3x3 (cmd, &y1, &x, &w, NULL);
    conv_check_running = false;
    conv_path = 1;
    vkc_op_conv2d_3x3 (cmd, &y2, &x, &w, NULL);
    conv_path = saved;
    ok = vkc_cmd_submit_wait (cmd, &error);
    vkc_cmd_free (cmd);
  } else {
    ok = false;
  }
  double nmse = -1;
  if (ok) {
    g_autofree float *a = g_new (float, NY), *b = g_new (float, NY);
    ok = vkc_tensor_download (dev, &y1, a, &error) && vkc_tensor_download (dev, &y2, b, &error);
    double num = 0, den = 0;
    for (int i = 0; ok && i < NY; i++) {
      double e = (double) a[i] - b[i];
      num += e * e;
      den += (double) b[i] * b[i];
    }
    nmse = den > 0 ? num / den : num;
  }
  if (!ok) {
    g_debug ("vkc: coopmat conv self-check could not run: %s", error ? error->message : "?");
    vkc_fastpath_not_run (dev, name);
    return false;
  }
  bool good = nmse <= 4e-6;
  g_autofree char *detail = g_strdup_printf ("NMSE %.3g against the scalar kernel (limit 4e-06)", nmse);
  vkc_fastpath_record (dev, name, good, detail);
  return good;
}

/* One dispatch: y holds output rows [out_row0, out_row0 + y.shape[1]) of y.shape[0] images;
 * x holds source rows from in_row0 of images whose full height is H. */
static void
dispatch_conv (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, int64_t H, const VkcTensor *w,
               const VkcTensor *bias, const VkcConv2dGeom *g, int64_t in_row0, int64_t out_row0)
{
  VkcDevice *dev = vkc_cmd_device (cmd);
  int64_t cout = y->shape[3];
  static int no_thin = -1; /* debugging switch: always the 64×64 tile */
  if (no_thin < 0)
    no_thin = g_getenv ("DEEPGEN_VK_DISABLE_CONV_THIN") != NULL;
  bool thin = cout <= THIN_TILE_N && !no_thin;
  ConvPush pc = {
    .xs_b = u32 (x->stride[0]),
    .xs_h = u32 (x->stride[1]),
    .xs_w = u32 (x->stride[2]),
    .ys_b = u32 (y->stride[0]),
    .ys_h = u32 (y->stride[1]),
    .ys_w = u32 (y->stride[2]),
    .H = u32 (H),
    .W = u32 (x->shape[2]),
    .Cin = u32 (x->shape[3]),
    .in_row0 = u32 (in_row0),
    .Ho = u32 (y->shape[1]),
    .Wo = u32 (y->shape[2]),
    .Cout = u32 (cout),
    .out_row0 = u32 (out_row0),
    .nimg = u32 (y->shape[0]),
    .kh = u32 (g->kh),
    .kw = u32 (g->kw),
    .stride = u32 (g->stride),
    .pad_t = u32 (g->pad_top),
    .pad_l = u32 (g->pad_left),
    .up = g->upsample2 ? 1 : 0,
    .has_bias = bias != NULL,
  };
  VkcBinding b[4] = {
    vkc_tensor_binding (dev, x, false, &pc.x_off),
    vkc_tensor_binding (dev, w, false, &pc.w_off),
    /* Without bias the weights fill the slot again (read-only, never read). */
    vkc_tensor_binding (dev, bias ? bias : w, false, &pc.b_off),
    vkc_tensor_binding (dev, y, true, &pc.y_off),
  };
  uint64_t m = (uint64_t) pc.nimg * pc.Ho * pc.Wo;
  uint32_t gx, gy;
  if (coop_conv_usable (dev, w->dtype, NULL)) {
    const VkcDeviceInfo *i = vkc_device_info (dev);
    CoopConvTile t = coop_tile (i);
    vkc_grid_1d (m, t.bm, &gx, &gy);
    const uint32_t spec[9] = { t.wg, t.bm, t.bn, 32, i->coopmat_m, i->coopmat_n, i->coopmat_k, t.wm, t.wn };
    VkcPipeline *cp = vkc_pipeline_get_sg (dev, vkc_shaders_conv2d_coopmat[w->dtype], spec, 9, 4, i->subgroup_size);
    vkc_cmd_dispatch (cmd, cp, b, 4, &pc, sizeof pc, gx, gy, vkc_div_up (cout, t.bn));
    return;
  }
  /* AUTO keeps Cout ≤ 16 on conv2d.comp's thin tile (128 pixels × 16 channels): the blocked
   * tiles are 64 channels wide, 4× the padding work at the VAE's conv_out (128→3). */
  if ((conv_path == 3 || !thin) && blocked_chosen (dev, w->dtype, NULL)) {
    VkcBlockedPlan bp;
    bool picked =
        vkc_blocked_pick (vkc_device_info (dev), (int64_t) m, cout, false, BLOCKED_PER_PIXEL, conv_blocked_tile, &bp);
    g_assert (picked); /* blocked_usable checked that a tile fits */
    /* 16-byte loads where every quad of k is aligned: four channels of one pixel (x) or four
     * consecutive weights (w); the ranges start 16-byte aligned. */
    if (b[0].offset % 16 == 0 && pc.Cin % 4 == 0 && pc.x_off % 4 == 0 && pc.xs_b % 4 == 0 && pc.xs_h % 4 == 0 &&
        pc.xs_w % 4 == 0)
      pc.flags |= CONV_X_VEC4;
    if (b[1].offset % 16 == 0 && pc.w_off % 4 == 0 && (pc.kh * pc.kw * pc.Cin) % 4 == 0)
      pc.flags |= CONV_W_VEC4;
    vkc_grid_1d (m, bp.t.bm, &gx, &gy);
    const uint32_t spec[6] = { bp.wg, bp.t.bm, bp.t.bn, VKC_BLOCKED_BK, bp.t.tm, bp.t.tn };
    VkcPipeline *bpipe = vkc_pipeline_get (dev, blocked_shader (w->dtype), spec, 6, 4);
    vkc_cmd_dispatch (cmd, bpipe, b, 4, &pc, sizeof pc, gx, gy, vkc_div_up (cout, bp.t.bn));
    return;
  }
  vkc_grid_1d (m, thin ? THIN_TILE_M : TILE_M, &gx, &gy);
  uint32_t gz = vkc_div_up (cout, thin ? THIN_TILE_N : TILE_N);
  VkcPipeline *p = vkc_pipeline_get (dev, vkc_shaders_conv2d[thin][w->dtype], NULL, 0, 4);
  vkc_cmd_dispatch (cmd, p, b, 4, &pc, sizeof pc, gx, gy, gz);
}

void
vkc_op_conv2d (VkcCmd *cmd, const VkcTensor *y_in, const VkcTensor *x_in, const VkcTensor *w, const VkcTensor *bias,
               const VkcConv2dGeom *g)
{
  VkcDevice *dev = vkc_cmd_device (cmd);
  VkcTensor x = as_nhwc (x_in), y = as_nhwc (y_in);
  int64_t B = x.shape[0], H = x.shape[1], W = x.shape[2], cin = x.shape[3], cout = y.shape[3];
  int up = g->upsample2 ? 1 : 0;
  g_assert (g->kh > 0 && g->kw > 0 && g->stride > 0 && cin > 0);
  g_assert (g->pad_top >= 0 && g->pad_left >= 0 && g->pad_bottom >= 0 && g->pad_right >= 0);
  int64_t ho = ((H << up) + g->pad_top + g->pad_bottom - g->kh) / g->stride + 1;
  int64_t wo = ((W << up) + g->pad_left + g->pad_right - g->kw) / g->stride + 1;
  g_assert_cmpint (y.shape[0], ==, B);
  g_assert_cmpint (y.shape[1], ==, ho);
  g_assert_cmpint (y.shape[2], ==, wo);
  g_assert (w->dtype == VKC_F32 || w->dtype == VKC_F16 || w->dtype == VKC_BF16);
  g_assert (vkc_tensor_is_contiguous (w));
  g_assert_cmpint (vkc_tensor_numel (w), ==, cout * g->kh * g->kw * cin);
  g_assert_cmpint (w->shape[0], ==, cout);
  g_assert (w->ndim != 4 || (w->shape[1] == g->kh && w->shape[2] == g->kw && w->shape[3] == cin));
  g_assert (vkc_binding_fits (dev, w)); /* weights are never split (9.4 MB at 512→512 3×3 f32) */
  if (bias) {
    g_assert (bias->dtype == VKC_F32 && vkc_tensor_is_contiguous (bias));
    g_assert_cmpint (vkc_tensor_numel (bias), ==, cout);
  }
  if (B == 0 || ho <= 0 || wo <= 0 || cout == 0)
    return;

  if (fits (dev, &x) && fits (dev, &y)) {
    dispatch_conv (cmd, &y, &x, H, w, bias, g, 0, 0);
    return;
  }
  /* Bands of output rows, one image at a time: the most rows whose output, and the input rows
   * they read (worst case over band positions), each fit one binding. */
  int64_t rows = ho;
  for (;; rows--) {
    if (rows == 0)
      g_error ("conv2d: one row of %s or %s exceeds the storage buffer range", vkc_tensor_shape_str (&x),
               vkc_tensor_shape_str (&y));
    int64_t span = (rows - 1) * g->stride + g->kh; /* logical input rows */
    int64_t in_rows = up ? ((span - 1) >> 1) + 2 : span;
    VkcTensor yv = rows_view (&y, 0, 0, rows), xv = rows_view (&x, 0, 0, MIN (in_rows, H));
    if (fits (dev, &yv) && fits (dev, &xv))
      break;
  }
  for (int64_t b = 0; b < B; b++)
    for (int64_t o0 = 0; o0 < ho; o0 += rows) {
      int64_t o1 = MIN (o0 + rows, ho), r0, r1;
      conv_input_rows (g, H, o0, o1, &r0, &r1);
      VkcTensor yv = rows_view (&y, b, o0, o1 - o0), xv = rows_view (&x, b, r0, r1 - r0);
      dispatch_conv (cmd, &yv, &xv, H, w, bias, g, r0, o0);
    }
}

void
vkc_op_conv2d_3x3 (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w, const VkcTensor *bias)
{
  const VkcConv2dGeom g = { 3, 3, 1, 1, 1, 1, 1, false };
  vkc_op_conv2d (cmd, y, x, w, bias, &g);
}

void
vkc_op_conv2d_3x3_up2 (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w, const VkcTensor *bias)
{
  const VkcConv2dGeom g = { 3, 3, 1, 1, 1, 1, 1, true };
  vkc_op_conv2d (cmd, y, x, w, bias, &g);
}

void
vkc_op_conv2d_3x3_s2 (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w, const VkcTensor *bias)
{
  const VkcConv2dGeom g = { 3, 3, 2, 0, 0, 1, 1, false };
  vkc_op_conv2d (cmd, y, x, w, bias, &g);
}

void
vkc_op_conv2d_1x1 (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w, const VkcTensor *bias)
{
  const VkcConv2dGeom g = { 1, 1, 1, 0, 0, 0, 0, false };
  vkc_op_conv2d (cmd, y, x, w, bias, &g);
}

void
vkc_op_conv2d_patch2 (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x_in, const VkcTensor *w, const VkcTensor *bias)
{
  const VkcConv2dGeom g = { 2, 2, 2, 0, 0, 0, 0, false };
  VkcTensor x = as_nhwc (x_in);
  g_assert (x.shape[1] % 2 == 0 && x.shape[2] % 2 == 0);
  if (y->ndim == 4) {
    vkc_op_conv2d (cmd, y, &x, w, bias, &g);
    return;
  }
  /* Token tensor [B, N, Cout] with N = (h/2)(w/2) in row-major order. */
  g_assert_cmpint (y->ndim, ==, 3);
  int64_t ho = x.shape[1] / 2, wo = x.shape[2] / 2;
  g_assert_cmpint (y->shape[0], ==, x.shape[0]);
  g_assert_cmpint (y->shape[1], ==, ho * wo);
  int64_t shape[4] = { y->shape[0], ho, wo, y->shape[2] };
  int64_t stride[4] = { y->stride[0], wo * y->stride[1], y->stride[1], y->stride[2] };
  VkcTensor yv = vkc_tensor_view (y, 4, shape, stride, 0);
  vkc_op_conv2d (cmd, &yv, &x, w, bias, &g);
}

static void
dispatch_upsample (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, int64_t in_row0, int64_t out_row0)
{
  VkcDevice *dev = vkc_cmd_device (cmd);
  UpsamplePush pc = {
    .xs_b = u32 (x->stride[0]),
    .xs_h = u32 (x->stride[1]),
    .xs_w = u32 (x->stride[2]),
    .ys_b = u32 (y->stride[0]),
    .ys_h = u32 (y->stride[1]),
    .ys_w = u32 (y->stride[2]),
    .C = u32 (y->shape[3]),
    .Wo = u32 (y->shape[2]),
    .Ho = u32 (y->shape[1]),
    .out_row0 = u32 (out_row0),
    .in_row0 = u32 (in_row0),
    .n = u32 (vkc_tensor_numel (y)),
  };
  VkcBinding b[2] = {
    vkc_tensor_binding (dev, x, false, &pc.x_off),
    vkc_tensor_binding (dev, y, true, &pc.y_off),
  };
  uint32_t gx, gy;
  vkc_grid_1d (pc.n, 256, &gx, &gy);
  VkcPipeline *p = vkc_pipeline_get (dev, VKC_SHADER_UPSAMPLE_NEAREST2, NULL, 0, 2);
  vkc_cmd_dispatch (cmd, p, b, 2, &pc, sizeof pc, gx, gy, 1);
}

void
vkc_op_upsample_nearest2 (VkcCmd *cmd, const VkcTensor *y_in, const VkcTensor *x_in)
{
  VkcDevice *dev = vkc_cmd_device (cmd);
  VkcTensor x = as_nhwc (x_in), y = as_nhwc (y_in);
  int64_t B = x.shape[0], H = x.shape[1];
  g_assert_cmpint (y.shape[0], ==, B);
  g_assert_cmpint (y.shape[1], ==, 2 * H);
  g_assert_cmpint (y.shape[2], ==, 2 * x.shape[2]);
  g_assert_cmpint (y.shape[3], ==, x.shape[3]);
  if (vkc_tensor_numel (&y) == 0)
    return;
  if (fits (dev, &x) && fits (dev, &y) && vkc_tensor_numel (&y) <= UINT32_MAX) {
    dispatch_upsample (cmd, &y, &x, 0, 0);
    return;
  }
  int64_t rows = 2 * H;
  for (;; rows--) {
    if (rows == 0)
      g_error ("upsample: one row of %s exceeds the storage buffer range", vkc_tensor_shape_str (&y));
    VkcTensor yv = rows_view (&y, 0, 0, rows), xv = rows_view (&x, 0, 0, MIN (rows / 2 + 1, H));
    if (fits (dev, &yv) && fits (dev, &xv) && vkc_tensor_numel (&yv) <= UINT32_MAX)
      break;
  }
  for (int64_t b = 0; b < B; b++)
    for (int64_t o0 = 0; o0 < 2 * H; o0 += rows) {
      int64_t o1 = MIN (o0 + rows, 2 * H), r0 = o0 / 2, r1 = (o1 - 1) / 2 + 1;
      VkcTensor yv = rows_view (&y, b, o0, o1 - o0), xv = rows_view (&x, b, r0, r1 - r0);
      dispatch_upsample (cmd, &yv, &xv, r0, o0);
    }
}

void
vkc_conv_weight_from_torch (void *dst, const void *src, size_t elem_size, int64_t cout, int64_t cin, int64_t kh,
                            int64_t kw)
{
  g_assert (elem_size == 2 || elem_size == 4);
  g_assert (cout >= 0 && cin >= 0 && kh >= 0 && kw >= 0);
  const uint8_t *s = src;
  uint8_t *d = dst;
  for (int64_t o = 0; o < cout; o++)
    for (int64_t c = 0; c < cin; c++)
      for (int64_t i = 0; i < kh; i++)
        for (int64_t j = 0; j < kw; j++) {
          size_t from = (size_t) (((o * cin + c) * kh + i) * kw + j);
          size_t to = (size_t) (((o * kh + i) * kw + j) * cin + c);
          memcpy (d + to * elem_size, s + from * elem_size, elem_size);
        }
}
