/* linear / matmul y = x·Wᵀ + b against a double-precision C reference.
 *
 * The reference reads the SAME values the GPU reads (W rounded to f16/bf16 first), so every
 * limit below only covers fp32 arithmetic, whatever the weight dtype:
 *   a dot product of K terms summed in fp32 gains about one rounding (u = 2⁻²⁴) of the running
 *   sum per term, a random walk whose variance relative to the result's is ≈ u²·K/3; the
 *   limit is 30·u²·K (≈ 100× the expected NMSE), floored at 1e-12 for the bias / accumulate
 *   roundings of tiny K. That is ≈ 2e-9 for K = 11946 and 2e-10 for K = 2048.
 * Outputs outside the written view must stay bit-identical (checked on the padding columns). */
#include "op_test.h"
#include "vkc_ops_linear.h"
#include <math.h>
#include <string.h>

static double
nmse_limit (int64_t K)
{
  const double u = 1.0 / (1 << 24);
  return MAX (1e-12, 30.0 * u * u * (double) K);
}

typedef struct {
  int64_t batch; /* 0: 2-D x [M, K]; else 3-D x [batch, M/batch, K] */
  int64_t M, K, N;
  VkcDType wt;
  bool bias, accumulate;
  int64_t x_pad, x_col; /* x is a column slice [.., x_col : x_col+K] of [.., K + x_pad] */
  int64_t y_pad, y_col; /* same for y */
  int64_t w_pad, w_off; /* W rows have stride K + w_pad and start w_off elements in */
  VkcLinearKernel kernel;
  bool no_subgroup;
  VkDeviceSize max_binding;
  guint min_dispatches; /* the split must have produced at least this many */
} Case;

static void
run_case (OpTest *t, const char *what, const Case *c)
{
  const int64_t M = c->M, K = c->K, N = c->N;
  const int64_t xw = K + c->x_pad, yw = N + c->y_pad, ldw = K + c->w_pad;
  guint32 seed = (guint32) (M * 7 + K * 13 + N * 17 + c->wt);

  g_autofree float *x = op_randn ((size_t) (M * xw), seed, 1.0f);
  g_autofree float *w = op_randn ((size_t) (N * ldw + c->w_off), seed + 1, 0.05f);
  g_autofree float *b = op_randn ((size_t) N, seed + 2, 0.5f);
  g_autofree float *y0 = op_randn ((size_t) (M * yw), seed + 3, 1.0f);
  op_round_to (w, (size_t) (N * ldw + c->w_off), c->wt);

  /* Device tensors: full buffers, then the views the op sees. */
  int64_t xs[3], ys[3];
  int nd = c->batch ? 3 : 2;
  if (c->batch) {
    g_assert (M % c->batch == 0);
    xs[0] = ys[0] = c->batch;
    xs[1] = ys[1] = M / c->batch;
    xs[2] = xw;
    ys[2] = yw;
  } else {
    xs[0] = ys[0] = M;
    xs[1] = xw;
    ys[1] = yw;
  }
  VkcTensor xf = op_tensor (t, VKC_F32, nd, xs, x);
  VkcTensor yf = op_tensor (t, VKC_F32, nd, ys, y0);
  int64_t wn = N * ldw + c->w_off;
  VkcTensor wf = op_tensor (t, c->wt, 1, &wn, w);
  VkcTensor bt = op_tensor (t, VKC_F32, 1, &N, b);
  VkcTensor xv = vkc_tensor_narrow (&xf, nd - 1, c->x_col, K);
  VkcTensor yv = vkc_tensor_narrow (&yf, nd - 1, c->y_col, N);
  VkcTensor wv = vkc_tensor_view (&wf, 2, (int64_t[]) { N, K }, (int64_t[]) { ldw, 1 }, c->w_off);

  VkcLinearOptions opt = VKC_LINEAR_OPTIONS_DEFAULT;
  opt.accumulate = c->accumulate;
  opt.kernel = c->kernel;
  opt.no_subgroup = c->no_subgroup;
  opt.max_binding = c->max_binding;
  VkcCmd *cmd = op_cmd (t);
  gint64 t0 = g_get_monotonic_time ();
  vkc_op_linear_ex (cmd, &yv, &xv, &wv, c->bias ? &bt : NULL, &opt);
  guint nd_disp = vkc_cmd_n_dispatches (cmd);
  op_run (t, cmd);
  double gpu_s = (g_get_monotonic_time () - t0) / 1e6;
  g_assert_cmpuint (nd_disp, >=, MAX (c->min_dispatches, 1));
  g_autofree float *got = op_download (t, &yf);

  /* Reference over the whole y buffer: untouched columns keep y0 exactly. */
  g_autofree double *ref = g_new (double, (size_t) (M * yw));
  g_autofree float *gv = g_new (float, (size_t) (M * N));
  g_autofree double *rv = g_new (double, (size_t) (M * N));
  for (int64_t m = 0; m < M; m++) {
    for (int64_t j = 0; j < yw; j++) ref[m * yw + j] = y0[m * yw + j];
    const float *xr = x + m * xw + c->x_col;
    for (int64_t n = 0; n < N; n++) {
      const float *wr = w + c->w_off + n * ldw;
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += (double) xr[k] * (double) wr[k];
      if (c->bias)
        s += b[n];
      if (c->accumulate)
        s += y0[m * yw + c->y_col + n];
      ref[m * yw + c->y_col + n] = s;
      rv[m * N + n] = s;
      gv[m * N + n] = got[m * yw + c->y_col + n];
    }
  }
  for (int64_t m = 0; m < M; m++)
    for (int64_t j = 0; j < yw; j++)
      if (j < c->y_col || j >= c->y_col + N)
        if (memcmp (&got[m * yw + j], &y0[m * yw + j], 4) != 0)
          g_error ("%s: y[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] outside the view changed", what, m, j);
  char label[256];
  g_snprintf (label, sizeof label,
              "%s (M=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT " W %s, %u dispatches, %.2f s)",
              what, M, K, N, vkc_dtype_name (c->wt), nd_disp, gpu_s);
  op_check (label, rv, gv, (size_t) (M * N), nmse_limit (K));
  vkc_pool_arena_reset (t->pool);
}

static const VkcDType wtypes[] = { VKC_F32, VKC_F16, VKC_BF16 };

/* The tiled kernel on shapes that are no multiple of any tile, both tile shapes (M ≤ 32 and
 * M > 32), with column-slice views of x and y, an odd W row stride (16-bit words split across
 * rows) and an even one (word-pair loads), with and without bias, and accumulate. */
static void
test_tiled (void)
{
  OpTest *t = op_test_new ();
  const VkcLinearKernel T = VKC_LINEAR_TILED;
  for (guint i = 0; i < G_N_ELEMENTS (wtypes); i++) {
    run_case (t, "tiled small tile",
              &(Case) { .M = 37, .K = 203, .N = 71, .wt = wtypes[i], .bias = true, .kernel = T });
    run_case (t, "tiled small tile, views",
              &(Case) { .M = 5,
                        .K = 130,
                        .N = 97,
                        .wt = wtypes[i],
                        .x_pad = 9,
                        .x_col = 3,
                        .y_pad = 5,
                        .y_col = 2,
                        .w_pad = 3,
                        .w_off = 1,
                        .kernel = T });
    run_case (t, "tiled large tile, odd K, even W stride",
              &(Case) { .M = 131,
                        .K = 67,
                        .N = 261,
                        .wt = wtypes[i],
                        .w_pad = 1,
                        .w_off = 2,
                        .bias = true,
                        .accumulate = true,
                        .y_pad = 3,
                        .y_col = 3,
                        .kernel = T });
    run_case (t, "tiled K=1", &(Case) { .M = 9, .K = 1, .N = 3, .wt = wtypes[i], .bias = true, .kernel = T });
  }
  op_test_free (t);
}

/* 3-D inputs: leading dims flatten to rows, also through a column-slice view. */
static void
test_batched (void)
{
  OpTest *t = op_test_new ();
  run_case (t, "batched 3-D",
            &(Case) { .batch = 3,
                      .M = 57,
                      .K = 45,
                      .N = 33,
                      .wt = VKC_BF16,
                      .bias = true,
                      .x_pad = 4,
                      .x_col = 1,
                      .y_pad = 2,
                      .y_col = 1 });
  run_case (t, "batched 3-D gemv", &(Case) { .batch = 2, .M = 6, .K = 301, .N = 19, .wt = VKC_F16 });
  op_test_free (t);
}

/* The GEMV for 1..8 rows (1, 2, 4 and 8 rows per dispatch), both reductions, odd K (the last
 * word pair holds one element), odd and even W strides and offsets, column-slice views, and
 * more than one workgroup's worth of K. */
static void
test_gemv (void)
{
  OpTest *t = op_test_new ();
  const int64_t rows[] = { 1, 2, 3, 5, 8 };
  for (guint i = 0; i < G_N_ELEMENTS (wtypes); i++)
    for (int sg = 0; sg < 2; sg++)
      for (guint r = 0; r < G_N_ELEMENTS (rows); r++) {
        int64_t M = rows[r];
        run_case (t, sg ? "gemv shared" : "gemv subgroup",
                  &(Case) { .M = M,
                            .K = 333,
                            .N = 13,
                            .wt = wtypes[i],
                            .bias = M & 1,
                            .accumulate = M == 2,
                            .no_subgroup = sg,
                            .kernel = VKC_LINEAR_GEMV,
                            .w_pad = M & 1,
                            .w_off = M == 3,
                            .x_pad = 2,
                            .x_col = 1,
                            .y_pad = 1 });
      }
  /* Forced GEMV on more rows than it takes at once: groups of 8. */
  run_case (
      t, "gemv 19 rows",
      &(Case) {
          .M = 19, .K = 70, .N = 9, .wt = VKC_BF16, .bias = true, .kernel = VKC_LINEAR_GEMV, .min_dispatches = 3 });
  /* And the tiled kernel on a single row. */
  run_case (t, "tiled 1 row", &(Case) { .M = 1, .K = 99, .N = 65, .wt = VKC_F16, .kernel = VKC_LINEAR_TILED });
  op_test_free (t);
}

/* Bindings above the limit are split: W by columns (y and b follow), x and y by rows. The
 * limit is lowered so that small tensors take the path that real ones (DiT activations at
 * 1024², 4096 tokens × 6144 × 4 B > 128 MiB) take on lavapipe. */
static void
test_split (void)
{
  OpTest *t = op_test_new ();
  for (guint i = 0; i < G_N_ELEMENTS (wtypes); i++) {
    run_case (t, "split tiled",
              &(Case) { .M = 150,
                        .K = 41,
                        .N = 77,
                        .wt = wtypes[i],
                        .bias = true,
                        .x_pad = 3,
                        .x_col = 1,
                        .y_pad = 2,
                        .y_col = 1,
                        .w_pad = 1,
                        .w_off = 1,
                        .max_binding = 2048,
                        .min_dispatches = 4 });
    run_case (
        t, "split gemv",
        &(Case) { .M = 3, .K = 300, .N = 40, .wt = wtypes[i], .bias = true, .max_binding = 4096, .min_dispatches = 3 });
  }
  op_test_free (t);
}

/* Real DeepGen shapes (MODEL.md), few rows to stay inside the time budget on lavapipe. */
static void
test_real (void)
{
  OpTest *t = op_test_new ();
  run_case (t, "DiT 1536->6144", &(Case) { .M = 9, .K = 1536, .N = 6144, .wt = VKC_BF16, .bias = true });
  run_case (t, "connector fc1 2048->11946", &(Case) { .M = 3, .K = 2048, .N = 11946, .wt = VKC_F32, .bias = true });
  run_case (t, "connector fc2 11946->2048",
            &(Case) { .M = 9, .K = 11946, .N = 2048, .wt = VKC_F32, .bias = true, .accumulate = true });
  run_case (t, "ViT patch embed 1176->1280", &(Case) { .M = 33, .K = 1176, .N = 1280, .wt = VKC_BF16 });
  run_case (t, "LLM up 2048->11008", &(Case) { .M = 1, .K = 2048, .N = 11008, .wt = VKC_BF16 });
  run_case (t, "LLM down 11008->2048", &(Case) { .M = 2, .K = 11008, .N = 2048, .wt = VKC_BF16 });
  op_test_free (t);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/linear/tiled", test_tiled);
  g_test_add_func ("/linear/batched", test_batched);
  g_test_add_func ("/linear/gemv", test_gemv);
  g_test_add_func ("/linear/split", test_split);
  g_test_add_func ("/linear/real", test_real);
  return g_test_run ();
}
