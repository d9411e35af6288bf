/* linear / matmul on cooperative matrices (linear_coopmat.comp) against a double-precision C
 * reference and against the scalar fp32 tiled kernel, on shapes that are no tile multiple.
 *
 * Skipped (exit 77) where the device has no usable cooperative matrices or the build has no
 * coopmat shaders; `ctest -L coopmat` runs it inside the Debian 13 root on Mesa 26 lavapipe
 * (tests/ops/run-in-root.sh) with DEEPGEN_VK_FORCE_COOPMAT=1.
 *
 * The NMSE bound, derived (not fitted):
 *   the kernel rounds every x and every w to fp16 (unit roundoff u = 2⁻¹¹, round to nearest),
 *   multiplies exactly (an fp16×fp16 product fits fp32) and sums in fp32. For a value v the
 *   rounding error is v·ε with |ε| ≤ u; as v's mantissa varies, ε is spread over [−u, u] and its
 *   variance is at most u²/3 (a uniform ε on [−u, u]; the true spread is smaller). A product
 *   x·w then carries a relative error ε_x + ε_w (+ O(u²)), variance ≤ 2u²/3, independent from
 *   term to term. For a dot product of K independent zero-mean terms t_k, the error Σ t_k·δ_k
 *   has variance Σ E[t_k²]·E[δ²] while the result has variance Σ E[t_k²], so
 *       NMSE ≈ 2u²/3 ≈ 1.6e-7, independent of K;
 *   fp32 accumulation adds ≈ K·(2⁻²⁴)²/3 (2e-12 at K = 1000), negligible. Bias and accumulate
 *   add exact terms and only lower the NMSE. Weights that are already f16 halve the first term.
 *   The limit is 10× that: 1.6e-6 — the margin covers the sampling spread of the NMSE over a few
 *   thousand outputs, not a looser arithmetic. The same limit applies against the scalar path
 *   (whose own error, ≈ 1e-12, is negligible beside it).
 *
 * Inputs beyond fp16's range (|v| > 65504, which fp16 would turn into Inf) must not produce an
 * Inf: the tiles they touch are computed in fp32, so those rows meet the fp32 bound of
 * test_linear.c (30·(2⁻²⁴)²·K). */
#include "op_test.h"
#include "vkc_ops_linear.h"
#include "vkc_shader_tables.h"
#include <math.h>
#include <string.h>

static const double U16 = 1.0 / 2048.0;

static double
coop_limit (void)
{
  return 10.0 * 2.0 * U16 * U16 / 3.0;
}

static double
fp32_limit (int64_t K)
{
  const double u = 1.0 / (1 << 24);
  return MAX (1e-12, 30.0 * u * u * (double) K);
}

typedef struct {
  int64_t M, K, N;
  VkcDType wt;
  bool bias, accumulate;
  int64_t x_pad;          /* x rows have stride K + x_pad */
  VkcLinearKernel kernel; /* COOPMAT, or AUTO (which DEEPGEN_VK_FORCE_COOPMAT must route) */
  float wide;             /* ≠ 0: rows 3 and M−2 of x hold values of this size (> 65504) */
  float wide_w;           /* ≠ 0: W row 1 holds a value of this size */
  bool aligned;           /* whole tiles: the ALIGNED variant must run (checked where the
                               * device has timestamps, which name the pipelines that ran) */
} Case;

static void
run_case (OpTest *t, const char *what, const Case *c)
{
  const int64_t M = c->M, K = c->K, N = c->N, xw = K + c->x_pad;
  guint32 seed = (guint32) (M * 7 + K * 13 + N * 17 + c->wt * 3 + 1);
  g_autofree float *x = op_randn ((size_t) (M * xw), seed, 1.0f);
  g_autofree float *w = op_randn ((size_t) (N * K), seed + 1, 1.0f);
  g_autofree float *b = op_randn ((size_t) N, seed + 2, 0.5f);
  g_autofree float *y0 = op_randn ((size_t) (M * N), seed + 3, 1.0f);
  if (c->wide != 0) {
    for (int64_t k = 0; k < K; k += 5) x[3 * xw + k] = (k % 2 ? -1.0f : 1.0f) * c->wide;
    x[(M - 2) * xw + K / 2] = c->wide;
  }
  if (c->wide_w != 0)
    w[1 * K + K / 3] = c->wide_w;
  op_round_to (w, (size_t) (N * K), c->wt);

  VkcTensor xf = op_tensor (t, VKC_F32, 2, (int64_t[]) { M, xw }, x);
  VkcTensor xv = vkc_tensor_narrow (&xf, 1, 0, K);
  VkcTensor wt = op_tensor (t, c->wt, 2, (int64_t[]) { N, K }, w);
  VkcTensor bt = op_tensor (t, VKC_F32, 1, &N, b);
  VkcTensor y1 = op_tensor (t, VKC_F32, 2, (int64_t[]) { M, N }, y0);
  VkcTensor y2 = op_tensor (t, VKC_F32, 2, (int64_t[]) { M, N }, y0);

  VkcLinearOptions opt = VKC_LINEAR_OPTIONS_DEFAULT;
  opt.accumulate = c->accumulate;
  opt.kernel = c->kernel;
  VkcCmd *cmd = op_cmd (t);
  vkc_op_linear_ex (cmd, &y1, &xv, &wt, c->bias ? &bt : NULL, &opt);
  opt.kernel = VKC_LINEAR_TILED;
  vkc_op_linear_ex (cmd, &y2, &xv, &wt, c->bias ? &bt : NULL, &opt);
  g_autoptr (GError) error = NULL;
  g_assert_true (vkc_cmd_submit_wait (cmd, &error));
  g_autoptr (GHashTable) prof = vkc_cmd_profile (cmd);
  vkc_cmd_free (cmd);
  if (prof && c->kernel == VKC_LINEAR_COOPMAT) {
    const char *an = vkc_shader_name (vkc_shaders_linear_coopmat[1][c->wt]);
    if ((bool) g_hash_table_contains (prof, an) != c->aligned)
      g_error ("%s: the aligned variant %s", what, c->aligned ? "did not run" : "ran on a shape it does not fit");
  }
  g_autofree float *got = op_download (t, &y1);
  g_autofree float *scalar = op_download (t, &y2);

  g_autofree double *ref = g_new (double, (size_t) (M * N));
  g_autofree double *sref = g_new (double, (size_t) (M * N));
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += (double) x[m * xw + k] * (double) w[n * K + k];
      if (c->bias)
        s += b[n];
      if (c->accumulate)
        s += y0[m * N + n];
      ref[m * N + n] = s;
      sref[m * N + n] = scalar[m * N + n];
    }
  char label[256];
  g_snprintf (label, sizeof label, "%s (M=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT " W %s)",
              what, M, K, N, vkc_dtype_name (c->wt));
  if (c->wide == 0 && c->wide_w == 0) {
    op_check (label, ref, got, (size_t) (M * N), coop_limit ());
    g_strlcat (label, " vs the scalar kernel", sizeof label);
    op_check (label, sref, got, (size_t) (M * N), coop_limit ());
  } else {
    /* Every output finite, and the rows (columns) that met the wide values as exact as fp32. */
    op_check (label, ref, got, (size_t) (M * N), coop_limit ());
    if (c->wide != 0) {
      const int64_t rows[2] = { 3, M - 2 };
      for (int i = 0; i < 2; i++) {
        g_autofree char *l = g_strdup_printf ("%s, row %" G_GINT64_FORMAT " with |x| = %g", label, rows[i], c->wide);
        op_check (l, ref + rows[i] * N, got + rows[i] * N, (size_t) N, fp32_limit (K));
      }
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
  }
  vkc_pool_arena_reset (t->pool);
}

static OpTest *T;

static void
test_shapes (void)
{
  const VkcLinearKernel C = VKC_LINEAR_COOPMAT;
  /* Every weight type; M, N and K no multiple of any tile (K odd for f16/f32, so 16-bit W are
   * read one by one; K = 100 for bf16: no multiple of the 32-wide K slice, read in pairs). */
  run_case (T, "f32", &(Case) { .M = 37, .K = 77, .N = 71, .wt = VKC_F32, .bias = true, .kernel = C });
  run_case (T, "f16 odd K", &(Case) { .M = 45, .K = 203, .N = 39, .wt = VKC_F16, .kernel = C });
  run_case (
      T, "f16 acc",
      &(Case) { .M = 29, .K = 66, .N = 90, .wt = VKC_F16, .bias = true, .accumulate = true, .x_pad = 5, .kernel = C });
  run_case (T, "bf16 K=100", &(Case) { .M = 70, .K = 100, .N = 45, .wt = VKC_BF16, .bias = true, .kernel = C });
  run_case (T, "bf16 K=1", &(Case) { .M = 9, .K = 1, .N = 17, .wt = VKC_BF16, .kernel = C });
  run_case (T, "q8_0", &(Case) { .M = 41, .K = 96, .N = 66, .wt = VKC_Q8_0, .bias = true, .kernel = C });
  run_case (T, "q4_0", &(Case) { .M = 33, .K = 160, .N = 50, .wt = VKC_Q4_0, .accumulate = true, .kernel = C });
}

static void
test_tiles (void)
{
  const VkcLinearKernel C = VKC_LINEAR_COOPMAT;
  const VkcDeviceInfo *i = vkc_device_info (T->dev);
  uint32_t c = i->coopmat_m;
  /* The small tile (M ≤ 2 coopmat rows), the medium, and the large one (M, N ≥ 512). */
  run_case (T, "small tile", &(Case) { .M = 2 * c - 3, .K = 64, .N = 150, .wt = VKC_F16, .bias = true, .kernel = C });
  run_case (T, "one row", &(Case) { .M = 1, .K = 40, .N = 33, .wt = VKC_BF16, .kernel = C });
  run_case (T, "large tile", &(Case) { .M = 515, .K = 40, .N = 521, .wt = VKC_BF16, .bias = true, .kernel = C });
  char *d = vkc_linear_describe (T->dev, 515, 521, 40, VKC_BF16);
  g_test_message ("515x521x40 bf16: %s", d);
  g_assert_nonnull (strstr (d, "large tile"));
  g_free (d);
}

static void
test_aligned (void)
{
  const VkcLinearKernel C = VKC_LINEAR_COOPMAT;
  /* Multiples of every tile the launcher picks here (C = 8 or 16): accumulators stored straight
   * to y, with the bias tile and the accumulate load. */
  run_case (
      T, "aligned, bias + acc",
      &(Case) {
          .M = 64, .K = 64, .N = 128, .wt = VKC_BF16, .bias = true, .accumulate = true, .kernel = C, .aligned = true });
  run_case (T, "aligned q8_0", &(Case) { .M = 64, .K = 96, .N = 64, .wt = VKC_Q8_0, .kernel = C, .aligned = true });
  run_case (T, "aligned large",
            &(Case) { .M = 512, .K = 64, .N = 512, .wt = VKC_F16, .bias = true, .kernel = C, .aligned = true });
  /* One row short of a tile: the bounds-checked variant. */
  run_case (T, "almost aligned", &(Case) { .M = 63, .K = 64, .N = 128, .wt = VKC_BF16, .bias = true, .kernel = C });
}

static void
test_forced_auto (void)
{
  /* With DEEPGEN_VK_FORCE_COOPMAT AUTO takes cooperative matrices even for GEMV-sized M. */
  if (!vkc_device_info (T->dev)->coopmat_forced) {
    g_test_skip ("DEEPGEN_VK_FORCE_COOPMAT is not set");
    return;
  }
  char *d = vkc_linear_describe (T->dev, 3, 64, 64, VKC_Q8_0);
  g_assert_true (g_str_has_prefix (d, "coopmat"));
  g_free (d);
  run_case (T, "auto, 3 rows", &(Case) { .M = 3, .K = 64, .N = 70, .wt = VKC_Q8_0, .kernel = VKC_LINEAR_AUTO });
  run_case (T, "auto, 50 rows", &(Case) { .M = 50, .K = 50, .N = 70, .wt = VKC_F16, .kernel = VKC_LINEAR_AUTO });
  /* f32 weights are a request for fp32 products: AUTO keeps them on an fp32 kernel even when
   * forced (scalar, or on a CPU device its own GEMM). */
  d = vkc_linear_describe (T->dev, 50, 70, 50, VKC_F32);
  g_assert_true (g_str_has_prefix (d, "scalar") || g_str_has_prefix (d, "CPU GEMM"));
  g_free (d);
}

static void
test_fp16_range (void)
{
  const VkcLinearKernel C = VKC_LINEAR_COOPMAT;
  /* The LLM's down-projection input after SwiGLU and the DiT FF's second Linear can exceed fp16's
   * 65504 in outlier channels: such tiles go to fp32, never to Inf. */
  run_case (T, "x beyond fp16", &(Case) { .M = 40, .K = 70, .N = 37, .wt = VKC_BF16, .kernel = C, .wide = 3e5f });
  run_case (T, "x beyond fp16, q4_0", &(Case) { .M = 21, .K = 64, .N = 30, .wt = VKC_Q4_0, .kernel = C, .wide = 1e6f });
  run_case (T, "W beyond fp16", &(Case) { .M = 25, .K = 48, .N = 30, .wt = VKC_F32, .kernel = C, .wide_w = 2e5f });
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  T = op_test_new ();
  const VkcDeviceInfo *i = vkc_device_info (T->dev);
  if (!i->cooperative_matrix || !vkc_shader_exists (VKC_SHADER_LINEAR_COOPMAT_F16)) {
    g_print ("SKIP: %s\n",
             !i->cooperative_matrix ? i->coopmat_why : "this build has no coopmat shaders (configure says why)");
    op_test_free (T);
    return 77;
  }
  g_print ("device: %s, coopmat %s\n", i->name, i->coopmat_why);
  g_test_add_func ("/linear_coopmat/shapes", test_shapes);
  g_test_add_func ("/linear_coopmat/tiles", test_tiles);
  g_test_add_func ("/linear_coopmat/aligned", test_aligned);
  g_test_add_func ("/linear_coopmat/forced-auto", test_forced_auto);
  g_test_add_func ("/linear_coopmat/fp16-range", test_fp16_range);
  int rc = g_test_run ();
  op_test_free (T);
  return rc;
}
