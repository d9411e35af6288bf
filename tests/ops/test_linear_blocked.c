/* The register-blocked scalar GEMM (linear_blocked.comp), both tile precisions, every tile shape
 * and every weight type, against a double-precision C reference on awkward shapes (M, N, K no
 * tile multiples; M = 1; K no multiple of 32 or 4 for f32 / f16 / bf16; column-slice views and
 * odd W strides, which turn the 16-byte loads off), with the fused bias and accumulate epilogues.
 * The reference reads the same (dtype-rounded) W the device reads.
 *
 * NMSE bounds, derived (not fitted):
 *  - fp32 tiles: the sums are fp32 FMA chains as in the tiled kernel, so test_linear.c's bound
 *    holds: 30·u²·K with u = 2⁻²⁴ (≈ 100× the expected u²·K/3), floored at 1e-12.
 *  - fp16 tiles: x and W are rounded to fp16 (u₁₆ = 2⁻¹¹, round to nearest) while staged; the
 *    products and sums are fp32. A rounded value carries a relative error ε with |ε| ≤ u₁₆ and
 *    variance ≤ u₁₆²/3 (ε spread over [−u₁₆, u₁₆] as the mantissa varies), so a product x·w
 *    carries ε_x + ε_w, variance ≤ 2u₁₆²/3, independent from term to term; for a dot product of
 *    independent zero-mean terms the NMSE is then ≈ 2u₁₆²/3 ≈ 1.6e-7 whatever K (f16 W, and bf16
 *    W in fp16's normal range, are exact in fp16: only x's half remains). fp32 summation adds
 *    the first bound's K·u²/3, negligible; bias and accumulate add exact terms and only lower
 *    the NMSE. The limit is 10× that, 1.6e-6, as for the coopmat kernel (test_linear_coopmat.c):
 *    the margin covers the sampling spread of the NMSE over a few thousand outputs.
 *  - fp16 range: an |x| or |w| > 65504 would be Inf in fp16; the workgroups that stage one
 *    compute their whole tile in fp32 from global memory, so the rows and columns that met such
 *    values meet the fp32 bound and nothing is Inf. */
#include "op_test.h"
#include "vkc_ops_linear.h"
#include "vkc_shader_tables.h"
#include <math.h>
#include <string.h>

static double
fp32_limit (int64_t K)
{
  const double u = 1.0 / (1 << 24);
  return MAX (1e-12, 30.0 * u * u * (double) K);
}

static double
fp16_limit (void)
{
  const double u16 = 1.0 / 2048.0;
  return 10.0 * 2.0 * u16 * u16 / 3.0;
}

typedef struct {
  int64_t M, K, N;
  VkcDType wt;
  bool bias, accumulate;
  int64_t x_pad, x_col; /* x is a column slice [.., x_col : x_col+K] of [.., K + x_pad] */
  int64_t w_pad;        /* W rows have stride K + w_pad (block types: 0) */
  bool half;            /* fp16 tiles */
  int tile;             /* VKC_LINEAR_TILE_* */
  float wide;           /* ≠ 0: row 3 of x holds values of this size (> 65504) */
  float wide_w;         /* ≠ 0: W row 1 holds a value of this size */
} Case;

static const char *
tile_name (int tile)
{
  return tile == VKC_LINEAR_TILE_LARGE ? "large" : tile == VKC_LINEAR_TILE_MEDIUM ? "medium" : "small";
}

/* Whether the tile fits the device (else the launcher would pick another: the case is skipped). */
static bool
tile_fits (OpTest *t, int tile, bool half)
{
  const VkcDeviceInfo *i = vkc_device_info (t->dev);
  uint32_t bm = tile == VKC_LINEAR_TILE_LARGE ? 128 : tile == VKC_LINEAR_TILE_MEDIUM ? 64 : 32;
  uint32_t bn = tile == VKC_LINEAR_TILE_SMALL ? 64 : bm, tmn = tile == VKC_LINEAR_TILE_LARGE ? 8 : 4;
  uint32_t shared = 32 * (bm / 4 + 1 + bn / 4 + 1) * (half ? 8 : 16) + (half ? 4 : 0);
  return shared <= i->max_shared_memory && (bm / tmn) * (bn / tmn) <= i->max_workgroup_invocations;
}

static void
run_case (OpTest *t, const char *what, const Case *c)
{
  const int64_t M = c->M, K = c->K, N = c->N, xw = K + c->x_pad, ldw = K + c->w_pad;
  const bool half = c->half && c->wt != VKC_F32;
  if (!tile_fits (t, c->tile, half)) {
    g_test_message ("%s: the %s tile does not fit this device, skipped", what, tile_name (c->tile));
    return;
  }
  if (half && !vkc_device_info (t->dev)->fp16_arith) {
    g_test_message ("%s: no shaderFloat16, skipped", what);
    return;
  }
  guint32 seed = (guint32) (M * 7 + K * 13 + N * 17 + c->wt * 5 + c->tile + (c->half ? 100 : 0));
  g_autofree float *x = op_randn ((size_t) (M * xw), seed, 1.0f);
  g_autofree float *w = op_randn ((size_t) (N * ldw), seed + 1, 0.05f);
  g_autofree float *b = op_randn ((size_t) N, seed + 2, 0.5f);
  g_autofree float *y0 = op_randn ((size_t) (M * N), seed + 3, 1.0f);
  if (c->wide != 0)
    for (int64_t k = 0; k < K; k += 5) x[3 * xw + c->x_col + k] = (k % 2 ? -1.0f : 1.0f) * c->wide;
  if (c->wide_w != 0)
    w[1 * ldw + K / 3] = c->wide_w;
  op_round_to (w, (size_t) (N * ldw), c->wt);

  VkcTensor xf = op_tensor (t, VKC_F32, 2, (int64_t[]) { M, xw }, x);
  VkcTensor xv = vkc_tensor_narrow (&xf, 1, c->x_col, K);
  /* Block types exist only as whole rows of blocks: [N, K] itself. */
  int64_t wn = N * ldw;
  bool blocks = vkc_dtype_block (c->wt) > 1;
  VkcTensor wf = blocks ? op_tensor (t, c->wt, 2, (int64_t[]) { N, K }, w) : op_tensor (t, c->wt, 1, &wn, w);
  VkcTensor wv = blocks ? wf : vkc_tensor_view (&wf, 2, (int64_t[]) { N, K }, (int64_t[]) { ldw, 1 }, 0);
  VkcTensor bt = op_tensor (t, VKC_F32, 1, &N, b);
  VkcTensor yt = op_tensor (t, VKC_F32, 2, (int64_t[]) { M, N }, y0);

  VkcLinearOptions opt = VKC_LINEAR_OPTIONS_DEFAULT;
  opt.accumulate = c->accumulate;
  opt.kernel = c->half ? VKC_LINEAR_BLOCKED_HALF : VKC_LINEAR_BLOCKED;
  opt.blocked_tile = c->tile;
  VkcCmd *cmd = op_cmd (t);
  vkc_op_linear_ex (cmd, &yt, &xv, &wv, c->bias ? &bt : NULL, &opt);
  g_autoptr (GError) error = NULL;
  g_assert_true (vkc_cmd_submit_wait (cmd, &error));
  /* The variant asked for ran (the profile names the pipelines, where the device has timestamps). */
  g_autoptr (GHashTable) prof = vkc_cmd_profile (cmd);
  vkc_cmd_free (cmd);
  const char *variant = vkc_shader_name (vkc_shaders_linear_blocked[half][c->wt]);
  if (prof && !g_hash_table_contains (prof, variant))
    g_error ("%s: %s did not run", what, variant);
  g_autofree float *got = op_download (t, &yt);

  g_autofree double *ref = g_new (double, (size_t) (M * N));
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += (double) x[m * xw + c->x_col + k] * (double) w[n * ldw + k];
      if (c->bias)
        s += b[n];
      if (c->accumulate)
        s += y0[m * N + n];
      ref[m * N + n] = s;
    }
  char label[256];
  g_snprintf (label, sizeof label,
              "%s (%s tile, %s tiles, M=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT " W %s)", what,
              tile_name (c->tile), half ? "fp16" : "fp32", M, K, N, vkc_dtype_name (c->wt));
  op_check (label, ref, got, (size_t) (M * N), half ? fp16_limit () : fp32_limit (K));
  if (c->wide != 0) {
    g_autofree char *l = g_strdup_printf ("%s, row 3 with |x| = %g", label, c->wide);
    op_check (l, ref + 3 * N, got + 3 * N, (size_t) N, fp32_limit (K));
  }
  if (c->wide_w != 0) {
    g_autofree double *rc = g_new (double, (size_t) M);
    g_autofree float *gc = g_new (float, (size_t) M);
    for (int64_t m = 0; m < M; m++) {
      rc[m] = ref[m * N + 1];
      gc[m] = got[m * N + 1];
    }
    g_autofree char *l = g_strdup_printf ("%s, column 1 with |w| = %g", label, c->wide_w);
    op_check (l, rc, gc, (size_t) M, fp32_limit (K));
  }
  vkc_pool_arena_reset (t->pool);
}

static const VkcDType all_types[] = { VKC_F32, VKC_F16, VKC_BF16, VKC_Q8_0, VKC_Q4_0 };
static const int tiles[] = { VKC_LINEAR_TILE_SMALL, VKC_LINEAR_TILE_MEDIUM, VKC_LINEAR_TILE_LARGE };

/* Every weight type × tile × tile precision on shapes that are no tile multiple. The block types
 * need K % 32 == 0 (their layout); the others get a K that is not a multiple of 32 or 4. */
static void
run_shapes (bool half)
{
  OpTest *t = op_test_new ();
  for (guint i = 0; i < G_N_ELEMENTS (all_types); i++) {
    VkcDType wt = all_types[i];
    bool blocks = vkc_dtype_block (wt) > 1;
    for (guint j = 0; j < G_N_ELEMENTS (tiles); j++) {
      int tile = tiles[j];
      /* 16-byte loads on: K % 4 == 0, contiguous rows; several K slices, a partial last one. */
      run_case (t, "aligned rows",
                &(Case) { .M = 37, .K = 96 + 64, .N = 71, .wt = wt, .bias = true, .half = half, .tile = tile });
      /* One row. */
      run_case (
          t, "M = 1",
          &(Case) { .M = 1, .K = blocks ? 64 : 37, .N = 70, .wt = wt, .accumulate = true, .half = half, .tile = tile });
      /* Odd K, a column-slice view of x (x_off odd) and an odd W stride: the scalar staging. */
      run_case (t, "odd K, views",
                &(Case) { .M = 131,
                          .K = blocks ? 96 : 67,
                          .N = 261,
                          .wt = wt,
                          .bias = true,
                          .accumulate = true,
                          .x_pad = 3,
                          .x_col = 1,
                          .w_pad = blocks ? 0 : 1,
                          .half = half,
                          .tile = tile });
      /* K % 4 == 0 but not % 32, even W stride (16-bit pairs), x rows aligned. */
      if (!blocks)
        run_case (t, "K = 4·odd",
                  &(Case) { .M = 70, .K = 204, .N = 133, .wt = wt, .w_pad = 2, .half = half, .tile = tile });
    }
  }
  op_test_free (t);
}

static void
test_fp32_tiles (void)
{
  run_shapes (false);
}

static void
test_fp16_tiles (void)
{
  run_shapes (true);
}

/* Inputs beyond fp16's range on the fp16 tiles: nothing Inf, the touched rows / columns exact to
 * fp32's bound. W: bf16 and q8_0 can hold 2e5 (f16 cannot). */
static void
test_fp16_range (void)
{
  OpTest *t = op_test_new ();
  const VkcDType types[] = { VKC_F16, VKC_BF16, VKC_Q8_0, VKC_Q4_0 };
  for (guint i = 0; i < G_N_ELEMENTS (types); i++) {
    bool blocks = vkc_dtype_block (types[i]) > 1;
    run_case (t, "|x| = 3e5",
              &(Case) { .M = 70,
                        .K = blocks ? 128 : 100,
                        .N = 90,
                        .wt = types[i],
                        .bias = true,
                        .half = true,
                        .tile = VKC_LINEAR_TILE_MEDIUM,
                        .wide = 3e5f });
    run_case (
        t, "|x| = 1e6",
        &(Case) {
            .M = 9, .K = 64, .N = 40, .wt = types[i], .half = true, .tile = VKC_LINEAR_TILE_SMALL, .wide = 1e6f });
  }
  run_case (
      t, "|w| = 2e5",
      &(Case) {
          .M = 40, .K = 96, .N = 50, .wt = VKC_BF16, .half = true, .tile = VKC_LINEAR_TILE_SMALL, .wide_w = 2e5f });
  run_case (
      t, "|w| = 2e5",
      &(Case) {
          .M = 40, .K = 96, .N = 50, .wt = VKC_Q8_0, .half = true, .tile = VKC_LINEAR_TILE_MEDIUM, .wide_w = 2e5f });
  op_test_free (t);
}

/* The fp32 tiles sum exactly like the tiled kernel (one FMA chain per output, k in order): on
 * the same inputs the outputs are the same bits wherever the driver keeps fma() fused (lavapipe
 * does). A check that the two kernels' orders stay the same; where a driver splits fma() the
 * outputs may differ by a rounding, which the reference test above bounds. */
static void
test_same_bits (void)
{
  OpTest *t = op_test_new ();
  const int64_t M = 150, K = 200, N = 140;
  g_autofree float *x = op_randn ((size_t) (M * K), 11, 1.0f);
  g_autofree float *w = op_randn ((size_t) (N * K), 12, 0.05f);
  g_autofree float *b = op_randn ((size_t) N, 13, 0.5f);
  op_round_to (w, (size_t) (N * K), VKC_BF16);
  VkcTensor xt = op_tensor (t, VKC_F32, 2, (int64_t[]) { M, K }, x);
  VkcTensor wt = op_tensor (t, VKC_BF16, 2, (int64_t[]) { N, K }, w);
  VkcTensor bt = op_tensor (t, VKC_F32, 1, &N, b);
  VkcTensor y1 = op_tensor (t, VKC_F32, 2, (int64_t[]) { M, N }, NULL);
  VkcTensor y2 = op_tensor (t, VKC_F32, 2, (int64_t[]) { M, N }, NULL);
  VkcLinearOptions o = VKC_LINEAR_OPTIONS_DEFAULT;
  VkcCmd *cmd = op_cmd (t);
  o.kernel = VKC_LINEAR_BLOCKED;
  vkc_op_linear_ex (cmd, &y1, &xt, &wt, &bt, &o);
  o.kernel = VKC_LINEAR_TILED;
  vkc_op_linear_ex (cmd, &y2, &xt, &wt, &bt, &o);
  op_run (t, cmd);
  g_autofree float *a = op_download (t, &y1);
  g_autofree float *r = op_download (t, &y2);
  size_t differ = 0;
  for (size_t i = 0; i < (size_t) (M * N); i++) differ += memcmp (&a[i], &r[i], 4) != 0;
  g_test_message ("blocked vs tiled: %zu of %" G_GINT64_FORMAT " outputs differ in their bits", differ, M * N);
  if (differ && strstr (vkc_device_info (t->dev)->driver_name, "llvmpipe"))
    g_error ("blocked and tiled kernels differ on %zu outputs: their summation orders parted", differ);
  op_test_free (t);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/linear_blocked/fp32-tiles", test_fp32_tiles);
  g_test_add_func ("/linear_blocked/fp16-tiles", test_fp16_tiles);
  g_test_add_func ("/linear_blocked/fp16-range", test_fp16_range);
  g_test_add_func ("/linear_blocked/same-bits-as-tiled", test_same_bits);
  return g_test_run ();
}
