/* The format-independent half of the block-type tests (quant_test.h).
 *
 * Linear: the reference multiplies by the dequantized values of the SAME blocks the GPU reads
 * (op_round_to). A dequantized weight is an integer of at most 8 bits times an f16 scale, exact
 * in fp32, so the GPU's weights equal the reference's bit for bit and the only difference left
 * is the fp32 accumulation, as in test_linear.c: a dot product of K terms gains about one
 * rounding (u = 2⁻²⁴) of the running sum per term, a random walk whose variance relative to
 * the result's is ≈ u²·K/3; the limit is 30·u²·K (≈ 100× the expected NMSE), floored at 1e-12
 * for the bias / accumulate roundings of small K — 2e-10 at K = 2048. The coarser the format,
 * the further deq(q(w)) is from w, but that is quantization error, which the reference shares.
 * Outputs outside the written view must stay bit-identical (checked on the padding columns). */
#include "quant_test.h"
#include "vkc_ops_linear.h"
#include <math.h>
#include <string.h>

#define QB 32 /* values per block, both formats */

static double
nmse_limit (int64_t K)
{
  const double u = 1.0 / (1 << 24);
  return MAX (1e-12, 30.0 * u * u * (double) K);
}

/* ---- the quantizer on the host ------------------------------------------------------ */

/* Random blocks at scales from 1e-6 to 1e3 (tiny scales are subnormal halves), some with one
 * outlier as real weights have: the blocks equal the reference bit for bit, every value comes
 * back within the format's bound, and the dequantizer gives exactly value (dh, q). */
static void
test_roundtrip (gconstpointer data)
{
  const QuantFormat *f = data;
  const float scales[] = { 1e-6f, 3e-4f, 0.02f, 1.0f, 1000.0f };
  const int64_t n = 32 * 1000;
  g_autofree uint32_t *q = g_new (uint32_t, n / QB * f->block_words);
  g_autofree float *back = g_new (float, n);
  double worst = 0;
  for (guint s = 0; s < G_N_ELEMENTS (scales); s++) {
    g_autofree float *x = op_randn ((size_t) n, 100 + s, scales[s]);
    for (int64_t b = 0; b < n / QB; b += 7) x[b * QB + b % QB] *= 40.0f;
    vkc_quantize (f->dtype, x, n, q);
    vkc_dequantize (f->dtype, q, n, back);
    for (int64_t b = 0; b < n / QB; b++) {
      const uint32_t *blk = q + b * f->block_words;
      const float *xb = x + b * QB;
      uint16_t rd;
      int rq[QB];
      f->reference (xb, &rd, rq);
      g_assert_cmphex (blk[0], ==, rd); /* bits 16–31 zero */
      double dh = vkc_f16_to_f32 ((uint16_t) blk[0]);
      for (int j = 0; j < QB; j++) {
        g_assert_cmpint (f->quant_of (blk, j), ==, rq[j]);
        double err = fabs ((double) xb[j] - back[b * QB + j]), bound = f->bound (xb, j, dh);
        if (err > bound)
          g_error ("scale %g block %" G_GINT64_FORMAT " value %d: |%.9g - %.9g| = %.3g > %.3g", scales[s], b, j, xb[j],
                   back[b * QB + j], err, bound);
        worst = MAX (worst, err / bound);
        g_assert_cmpfloat (back[b * QB + j], ==, f->value ((float) dh, f->quant_of (blk, j)));
      }
    }
  }
  g_test_message ("%s: worst |x - deq(q(x))| / bound = %.6f", vkc_dtype_name (f->dtype), worst);
}

/* Load-time speed: the model loader quantizes ~5e9 weights. Reported, not enforced (the
 * machine may be loaded), except for a floor that only a pathological build misses. */
static void
test_speed (gconstpointer data)
{
  const QuantFormat *f = data;
  const int64_t n = (int64_t) 1 << 22;
  g_autofree float *x = op_randn ((size_t) n, 7, 0.05f);
  g_autofree uint32_t *q = g_new (uint32_t, n / QB * f->block_words);
  gint64 t0 = g_get_monotonic_time ();
  for (int r = 0; r < 4; r++) vkc_quantize (f->dtype, x, n, q);
  double s = (g_get_monotonic_time () - t0) / 1e6;
  double rate = 4.0 * n / s;
  g_test_message ("vkc_quantize %s: %.0f M values/s on one thread (5e9 weights: %.1f s)", vkc_dtype_name (f->dtype),
                  rate / 1e6, 5e9 / rate);
  g_assert_cmpfloat (rate, >, 2e7);
}

/* ---- tensors ------------------------------------------------------------------------ */

/* The tensor rules of a block type: sizes in bytes, row narrowing, upload/download of blocks,
 * and the refusals (shapes that are not [N, 32·k] fail with an error, not a crash). */
static void
test_tensor (gconstpointer data)
{
  const QuantFormat *f = data;
  const VkcDType dt = f->dtype;
  const VkDeviceSize bb = (VkDeviceSize) f->block_bytes;
  g_assert_cmpint (f->block_bytes, ==, 4 * f->block_words);
  g_assert_cmpuint (vkc_dtype_bytes (dt, 64), ==, 2 * bb);
  g_assert_cmpuint (vkc_dtype_bytes (VKC_BF16, 3), ==, 6);
  g_assert_cmpint (vkc_dtype_block (dt), ==, 32);
  g_assert_cmpint (vkc_dtype_block (VKC_F16), ==, 1);

  OpTest *t = op_test_new ();
  g_autoptr (GError) error = NULL;
  VkcTensor w;
  g_assert_false (vkc_tensor_alloc (&w, t->pool, true, dt, 2, (int64_t[]) { 4, 33 }, &error));
  g_assert_error (error, VKC_ERROR, VKC_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, vkc_dtype_name (dt)));
  g_assert_nonnull (strstr (error->message, "[4, 33]"));
  g_clear_error (&error);
  g_assert_false (vkc_tensor_alloc (&w, t->pool, true, dt, 2, (int64_t[]) { 4, 48 }, &error));
  g_assert_error (error, VKC_ERROR, VKC_ERROR_FAILED);
  g_clear_error (&error);
  g_assert_false (vkc_tensor_alloc (&w, t->pool, true, dt, 1, (int64_t[]) { 64 }, &error));
  g_assert_error (error, VKC_ERROR, VKC_ERROR_FAILED);
  g_clear_error (&error);
  g_assert_false (vkc_tensor_alloc (&w, t->pool, true, dt, 3, (int64_t[]) { 2, 2, 64 }, &error));
  g_assert_error (error, VKC_ERROR, VKC_ERROR_FAILED);
  g_clear_error (&error);

  const int64_t N = 7, K = 96;
  const size_t bytes = (size_t) (N * K / QB * bb), row = (size_t) (K / QB * bb);
  g_autofree float *x = op_randn ((size_t) (N * K), 3, 1.0f);
  g_autofree uint32_t *q = g_malloc (bytes);
  g_autofree uint32_t *got = g_malloc0 (bytes);
  vkc_quantize (dt, x, N * K, q);
  g_assert_true (vkc_tensor_alloc (&w, t->pool, true, dt, 2, (int64_t[]) { N, K }, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (vkc_tensor_span_bytes (&w), ==, bytes);
  g_assert_true (vkc_tensor_upload (t->dev, &w, q, &error));
  g_assert_true (vkc_tensor_download (t->dev, &w, got, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (got, bytes, q, bytes);

  /* Rows 2..5: 3 blocks per row in. */
  VkcTensor r = vkc_tensor_narrow (&w, 0, 2, 4);
  g_assert_cmpuint (r.offset, ==, w.offset + 2 * row);
  g_assert_cmpuint (vkc_tensor_span_bytes (&r), ==, 4 * row);
  memset (got, 0, bytes);
  g_assert_true (vkc_tensor_download (t->dev, &r, got, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (got, 4 * row, (const char *) q + 2 * row, 4 * row);
  /* The binding's offset of a block type counts words: 2 rows in is 6 blocks, a whole number of
   * words past an aligned start but not of blocks (216 or 120 bytes). */
  uint32_t off;
  VkcBinding b = vkc_tensor_binding (t->dev, &r, false, &off);
  g_assert_cmpuint (b.offset + 4 * off, ==, r.offset);
  VkcTensor v = vkc_tensor_view (&w, 2, (int64_t[]) { 3, 96 }, (int64_t[]) { 96, 1 }, 4 * 96);
  g_assert_cmpuint (v.offset, ==, w.offset + 4 * row);
  VkcTensor rs = vkc_tensor_reshape (&w, 2, (int64_t[]) { 21, 32 });
  g_assert_cmpint (rs.stride[0], ==, 32);
  op_test_free (t);
}

/* Views that would split blocks or break the row layout abort with a message (programming
 * errors, like other misuse of views). No device needed: they fail before any Vulkan call. */
static void
test_tensor_refusals (gconstpointer data)
{
  const QuantFormat *f = data;
  if (g_test_subprocess ()) {
    VkcTensor w = { .dtype = f->dtype, .ndim = 2, .shape = { 4, 64 }, .stride = { 64, 1 } };
    const char *which = g_getenv ("QUANT_REFUSAL");
    if (!g_strcmp0 (which, "narrow"))
      vkc_tensor_narrow (&w, 1, 0, 32);
    if (!g_strcmp0 (which, "offset"))
      vkc_tensor_view (&w, 2, (int64_t[]) { 1, 64 }, (int64_t[]) { 64, 1 }, 16);
    if (!g_strcmp0 (which, "stride"))
      vkc_tensor_view (&w, 2, (int64_t[]) { 2, 32 }, (int64_t[]) { 64, 1 }, 0);
    if (!g_strcmp0 (which, "reshape"))
      vkc_tensor_reshape (&w, 1, (int64_t[]) { 256 });
    if (!g_strcmp0 (which, "size"))
      vkc_dtype_size (f->dtype);
    return;
  }
  const char *cases[][2] = {
    { "narrow", "only be narrowed along its rows" },
    { "offset", "must start on a block" },
    { "stride", "strides {K, 1}" },
    { "reshape", "strides {K, 1}" },
    { "size", "is a block type" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_setenv ("QUANT_REFUSAL", cases[i][0], TRUE);
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDIN);
    g_test_trap_assert_failed ();
    g_autofree char *pattern = g_strdup_printf ("*%s*%s*", vkc_dtype_name (f->dtype), cases[i][1]);
    g_test_trap_assert_stderr (pattern);
  }
  g_unsetenv ("QUANT_REFUSAL");
}

/* ---- linear with block-quantized weights -------------------------------------------- */

typedef struct {
  int64_t M, K, N;
  bool bias, accumulate;
  int64_t x_pad, x_col; /* x is a column slice [.., x_col : x_col+K] of [.., K + x_pad] */
  int64_t y_pad, y_col; /* same for y */
  int64_t w_row0;       /* W is rows [w_row0, w_row0 + N) of a [w_row0 + N + 1, K] tensor */
  VkcLinearKernel kernel;
  bool no_subgroup;
  VkDeviceSize max_binding;
  guint min_dispatches;
} Case;

static void
run_case (OpTest *t, const QuantFormat *f, const char *what, const Case *c)
{
  const int64_t M = c->M, K = c->K, N = c->N;
  const int64_t xw = K + c->x_pad, yw = N + c->y_pad, wrows = c->w_row0 + N + 1;
  guint32 seed = (guint32) (M * 7 + K * 13 + N * 17);

  g_autofree float *x = op_randn ((size_t) (M * xw), seed, 1.0f);
  g_autofree float *w = op_randn ((size_t) (wrows * K), seed + 1, 0.05f);
  g_autofree float *b = op_randn ((size_t) N, seed + 2, 0.5f);
  g_autofree float *y0 = op_randn ((size_t) (M * yw), seed + 3, 1.0f);
  /* An outlier every few blocks, so scales differ widely between blocks. */
  for (int64_t i = 5; i < wrows * K; i += 97) w[i] *= 30.0f;

  VkcTensor xf = op_tensor (t, VKC_F32, 2, (int64_t[]) { M, xw }, x);
  VkcTensor yf = op_tensor (t, VKC_F32, 2, (int64_t[]) { M, yw }, y0);
  VkcTensor wf = op_tensor (t, f->dtype, 2, (int64_t[]) { wrows, K }, w); /* quantizes w */
  VkcTensor bt = op_tensor (t, VKC_F32, 1, &N, b);
  op_round_to (w, (size_t) (wrows * K), f->dtype); /* the reference's weights: deq(q(w)) */
  VkcTensor xv = vkc_tensor_narrow (&xf, 1, c->x_col, K);
  VkcTensor yv = vkc_tensor_narrow (&yf, 1, c->y_col, N);
  VkcTensor wv = vkc_tensor_narrow (&wf, 0, c->w_row0, N);

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

  g_autofree float *gv = g_new (float, (size_t) (M * N));
  g_autofree double *rv = g_new (double, (size_t) (M * N));
  for (int64_t m = 0; m < M; m++) {
    const float *xr = x + m * xw + c->x_col;
    for (int64_t n = 0; n < N; n++) {
      const float *wr = w + (c->w_row0 + n) * K;
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += (double) xr[k] * (double) wr[k];
      if (c->bias)
        s += b[n];
      if (c->accumulate)
        s += y0[m * yw + c->y_col + n];
      rv[m * N + n] = s;
      gv[m * N + n] = got[m * yw + c->y_col + n];
    }
    for (int64_t j = 0; j < yw; j++)
      if ((j < c->y_col || j >= c->y_col + N) && memcmp (&got[m * yw + j], &y0[m * yw + j], 4) != 0)
        g_error ("%s: y[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] outside the view changed", what, m, j);
  }
  char label[256];
  g_snprintf (label, sizeof label,
              "%s %s (M=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT "%s%s, %u dispatches, %.2f s)",
              vkc_dtype_name (f->dtype), what, M, K, N, c->bias ? " bias" : "", c->accumulate ? " accumulate" : "",
              nd_disp, gpu_s);
  op_check (label, rv, gv, (size_t) (M * N), nmse_limit (K));
  vkc_pool_arena_reset (t->pool);
}

static const int64_t Ns[] = { 1, 37, 301, 1537 };
static const int64_t Ks[] = { 32, 96, 1056, 2048 };

/* The GEMV for 1, 3 and 8 rows (1, 4 and 8 rows per dispatch) with both reductions, every N
 * and K of the lists (each M takes the K list rotated), views of x and y, W starting some rows
 * into its tensor, bias and accumulate; and forced on 9 and 77 rows (groups of 8). */
static void
test_gemv (gconstpointer data)
{
  const QuantFormat *f = data;
  OpTest *t = op_test_new ();
  const int64_t rows[] = { 1, 3, 8 };
  for (int sg = 0; sg < 2; sg++)
    for (guint r = 0; r < G_N_ELEMENTS (rows); r++)
      for (guint i = 0; i < G_N_ELEMENTS (Ns); i++) {
        int64_t M = rows[r];
        run_case (t, f, sg ? "gemv shared" : "gemv subgroup",
                  &(Case) { .M = M,
                            .N = Ns[i],
                            .K = Ks[(i + r) % 4],
                            .bias = i & 1,
                            .accumulate = (i + r) % 3 == 0,
                            .kernel = VKC_LINEAR_GEMV,
                            .no_subgroup = sg,
                            .x_pad = r,
                            .x_col = r ? 1 : 0,
                            .y_pad = 2,
                            .y_col = i & 1,
                            .w_row0 = i + r });
      }
  run_case (
      t, f, "gemv 9 rows",
      &(Case) {
          .M = 9, .K = 1056, .N = 301, .bias = true, .kernel = VKC_LINEAR_GEMV, .min_dispatches = 2, .w_row0 = 3 });
  run_case (t, f, "gemv 77 rows",
            &(Case) { .M = 77,
                      .K = 96,
                      .N = 37,
                      .accumulate = true,
                      .kernel = VKC_LINEAR_GEMV,
                      .no_subgroup = true,
                      .min_dispatches = 10 });
  /* AUTO picks the GEMV for ≤ 8 rows. */
  run_case (t, f, "auto 8 rows", &(Case) { .M = 8, .K = 2048, .N = 1537, .bias = true });
  op_test_free (t);
}

/* The tiled kernel: 1 row (forced), 9 (small tile) and 77, 300 (large tile) rows, every N and
 * K of the lists, views, W row offsets, bias and accumulate. */
static void
test_tiled (gconstpointer data)
{
  const QuantFormat *f = data;
  OpTest *t = op_test_new ();
  const int64_t rows[] = { 1, 9, 77, 300 };
  for (guint r = 0; r < G_N_ELEMENTS (rows); r++)
    for (guint i = 0; i < G_N_ELEMENTS (Ns); i++) {
      int64_t M = rows[r], N = Ns[i], K = Ks[(i + 2 * r) % 4];
      if (M == 300 && N == 1537)
        K = 96; /* keep the double reference inside the time budget */
      run_case (t, f, "tiled",
                &(Case) { .M = M,
                          .N = N,
                          .K = K,
                          .bias = (i + r) & 1,
                          .accumulate = i == 2,
                          .kernel = VKC_LINEAR_TILED,
                          .x_pad = 3,
                          .x_col = i & 1 ? 2 : 0,
                          .y_pad = 1,
                          .y_col = r & 1,
                          .w_row0 = r });
    }
  run_case (t, f, "auto 300 rows", &(Case) { .M = 300, .K = 2048, .N = 301, .bias = true, .accumulate = true });
  op_test_free (t);
}

/* W above the binding limit is split by whole rows (y and b follow), x and y by rows; the
 * chunks of W start at byte offsets that are no multiple of the offset alignment (word
 * offsets in the shaders). The limit is lowered so that small tensors take the path. */
static void
test_split (gconstpointer data)
{
  const QuantFormat *f = data;
  OpTest *t = op_test_new ();
  run_case (t, f, "split tiled",
            &(Case) { .M = 150,
                      .K = 96,
                      .N = 77,
                      .bias = true,
                      .accumulate = true,
                      .x_pad = 3,
                      .x_col = 1,
                      .y_pad = 2,
                      .y_col = 1,
                      .w_row0 = 1,
                      .kernel = VKC_LINEAR_TILED,
                      .max_binding = 2048,
                      .min_dispatches = 4 });
  run_case (t, f, "split gemv",
            &(Case) { .M = 3,
                      .K = 1056,
                      .N = 37,
                      .bias = true,
                      .w_row0 = 5,
                      .kernel = VKC_LINEAR_GEMV,
                      .max_binding = 8192,
                      .min_dispatches = 5 });
  run_case (t, f, "split gemv shared",
            &(Case) { .M = 8,
                      .K = 1056,
                      .N = 37,
                      .accumulate = true,
                      .w_row0 = 2,
                      .kernel = VKC_LINEAR_GEMV,
                      .no_subgroup = true,
                      .max_binding = 8192,
                      .min_dispatches = 5 });
  op_test_free (t);
}

void
quant_test_add (const QuantFormat *f)
{
  static const struct {
    const char *name;
    GTestDataFunc func;
  } tests[] = {
    { "quant/roundtrip", test_roundtrip },
    { "quant/speed", test_speed },
    { "tensor", test_tensor },
    { "tensor/refusals", test_tensor_refusals },
    { "gemv", test_gemv },
    { "tiled", test_tiled },
    { "split", test_split },
  };
  for (guint i = 0; i < G_N_ELEMENTS (tests); i++) {
    g_autofree char *path = g_strdup_printf ("%s/%s", f->path, tests[i].name);
    g_test_add_data_func (path, f, tests[i].func);
  }
}
