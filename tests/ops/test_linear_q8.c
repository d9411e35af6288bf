/* q8_0 weights: the host quantizer (vkcompute/vkc_quant.h), the Q8_0 tensor rules, and
 * linear / matmul y = x·Wᵀ + b with q8_0 W against a double-precision C reference.
 *
 * The reference multiplies by vkc_dequantize_q8_0 of the SAME blocks the GPU reads. A
 * dequantized weight d·q is exact in fp32 (an 11-bit scale times an 8-bit integer), so the
 * GPU's weights equal the reference's bit for bit and the only difference left is the fp32
 * accumulation, as in test_linear.c: a dot product of K terms gains about one rounding
 * (u = 2⁻²⁴) of the running sum per term, a random walk whose variance relative to the
 * result's is ≈ u²·K/3; the limit is 30·u²·K (≈ 100× the expected NMSE), floored at 1e-12
 * for the bias / accumulate roundings of small K — 2e-10 at K = 2048.
 * Outputs outside the written view must stay bit-identical (checked on the padding columns). */
#include "op_test.h"
#include "vkc_ops_linear.h"
#include <math.h>
#include <string.h>

#define QB VKC_Q8_0_BLOCK
#define QW VKC_Q8_0_BLOCK_WORDS

static double
nmse_limit (int64_t K)
{
  const double u = 1.0 / (1 << 24);
  return MAX (1e-12, 30.0 * u * u * (double) K);
}

/* ---- the quantizer on the host ------------------------------------------------------ */

/* ggml's quantize_row_q8_0_ref transcribed literally (roundf, x·(1/d)), for finite input. */
static void
ggml_q8_0 (const float *x, int64_t n, int8_t *q, uint16_t *d_bits)
{
  for (int64_t b = 0; b < n / QB; b++) {
    float amax = 0.0f;
    for (int j = 0; j < QB; j++) amax = MAX (amax, fabsf (x[b * QB + j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    d_bits[b] = vkc_f32_to_f16 (d);
    for (int j = 0; j < QB; j++) q[b * QB + j] = (int8_t) roundf (x[b * QB + j] * id);
  }
}

static int
quant_of (const uint32_t *blk, int j)
{
  int v = (int) ((blk[1 + j / 4] >> (8 * (j % 4))) & 0xffu);
  return v >= 128 ? v - 256 : v;
}

/* Random blocks at scales from 1e-6 to 1e3 (tiny scales are subnormal halves): the blocks
 * equal ggml's bit for bit, and every value comes back within d/2 (+ the f16 rounding of d,
 * times the largest quant; + fp32 rounding of x·(1/d), a few units of 2⁻²⁴·127). */
static void
test_quant_roundtrip (void)
{
  const float scales[] = { 1e-6f, 3e-4f, 0.02f, 1.0f, 1000.0f };
  const int64_t n = 32 * 1000;
  g_autofree uint32_t *q = g_new (uint32_t, n / QB * QW);
  g_autofree float *back = g_new (float, n);
  g_autofree int8_t *gq = g_new (int8_t, n);
  g_autofree uint16_t *gd = g_new (uint16_t, n / QB);
  double worst = 0;
  for (guint s = 0; s < G_N_ELEMENTS (scales); s++) {
    g_autofree float *x = op_randn ((size_t) n, 100 + s, scales[s]);
    /* Some blocks with one outlier, as real weights have. */
    for (int64_t b = 0; b < n / QB; b += 7) x[b * QB + b % QB] *= 40.0f;
    vkc_quantize_q8_0 (x, n, q);
    vkc_dequantize_q8_0 (q, n, back);
    ggml_q8_0 (x, n, gq, gd);
    for (int64_t b = 0; b < n / QB; b++) {
      const uint32_t *blk = q + b * QW;
      g_assert_cmphex (blk[0], ==, gd[b]);   /* bits 16–31 zero */
      float amax = 0;
      for (int j = 0; j < QB; j++) amax = MAX (amax, fabsf (x[b * QB + j]));
      double d = amax / 127.0f;
      double dh = vkc_f16_to_f32 ((uint16_t) blk[0]);
      double bound = d * (0.5 + 4e-5) + 127.0 * fabs (d - dh) + 1e-30;
      for (int j = 0; j < QB; j++) {
        g_assert_cmpint (quant_of (blk, j), ==, gq[b * QB + j]);
        double err = fabs ((double) x[b * QB + j] - back[b * QB + j]);
        if (err > bound)
          g_error ("scale %g block %" G_GINT64_FORMAT " value %d: |%.9g - %.9g| = %.3g > %.3g", scales[s], b, j,
                   x[b * QB + j], back[b * QB + j], err, bound);
        worst = MAX (worst, err / bound);
        g_assert_cmpfloat (back[b * QB + j], ==, (float) (dh * quant_of (blk, j)));
      }
    }
  }
  g_test_message ("worst |x - deq(q(x))| / bound = %.6f", worst);
}

/* Hand-computed blocks. */
static void
test_quant_examples (void)
{
  uint32_t blk[QW];
  float x[QB], y[QB];

  /* amax = 127 ⇒ d = 1 (f16 0x3c00) and id = 1: q = round-half-away-from-zero(x), which ggml's
   * roundf does: 2.5 → 3, −2.5 → −3 (not to even), 0.5 → 1, and 0.5 − 2⁻²⁵ → 0 (the value a
   * naive trunc(x + 0.5) gets wrong). */
  const float in[8] = { 127.0f, -2.5f, 2.5f, 0.5f, -0.5f, 0.49999997f, 126.5f, -126.7f };
  const int want[8] = { 127, -3, 3, 1, -1, 0, 127, -127 };
  for (int j = 0; j < QB; j++) x[j] = j < 8 ? in[j] : (float) (j - 20) * 0.25f;
  vkc_quantize_q8_0 (x, QB, blk);
  g_assert_cmphex (blk[0], ==, 0x3c00);
  for (int j = 0; j < 8; j++) g_assert_cmpint (quant_of (blk, j), ==, want[j]);
  /* Bytes in words, little-endian: q = 127, −3, 3, 1 → 0x0103fd7f; −1, 0, 127, −127 → 0x817f00ff. */
  g_assert_cmphex (blk[1], ==, 0x0103fd7fu);
  g_assert_cmphex (blk[2], ==, 0x817f00ffu);
  /* j = 8..31: (j − 20)/4 = −3, −2.75 (→ −3), −2.5 (→ −3), −2.25 (→ −2), … */
  g_assert_cmpint (quant_of (blk, 8), ==, -3);
  g_assert_cmpint (quant_of (blk, 9), ==, -3);
  g_assert_cmpint (quant_of (blk, 10), ==, -3);
  g_assert_cmpint (quant_of (blk, 11), ==, -2);
  g_assert_cmpint (quant_of (blk, 22), ==, 1);    /* 0.5 → 1 */
  g_assert_cmpint (quant_of (blk, 31), ==, 3);    /* 2.75 → 3 */

  /* x = (j − 16)/4: amax = 4, d = 4/127 = 0.0314960…, whose nearest half is 1032·2⁻¹⁵ =
   * 0.031494140625 (exponent −5, mantissa 8: 0x2808); x·id = (j − 16)·7.9375 (id = 31.75):
   * j = 0 → −127, 1 → −119.0625 → −119, 15 → −7.9375 → −8, 17 → 8, 31 → 119. */
  for (int j = 0; j < QB; j++) x[j] = (float) (j - 16) * 0.25f;
  vkc_quantize_q8_0 (x, QB, blk);
  g_assert_cmphex (blk[0], ==, 0x2808);
  g_assert_cmpint (quant_of (blk, 0), ==, -127);
  g_assert_cmpint (quant_of (blk, 1), ==, -119);
  g_assert_cmpint (quant_of (blk, 15), ==, -8);
  g_assert_cmpint (quant_of (blk, 16), ==, 0);
  g_assert_cmpint (quant_of (blk, 17), ==, 8);
  g_assert_cmpint (quant_of (blk, 31), ==, 119);
  vkc_dequantize_q8_0 (blk, QB, y);
  g_assert_cmpfloat (y[0], ==, -127 * 0.031494140625f);
  g_assert_cmpfloat (y[31], ==, 119 * 0.031494140625f);

  /* All zero: scale 0, quants 0, values +0. */
  memset (x, 0, sizeof x);
  vkc_quantize_q8_0 (x, QB, blk);
  for (int w = 0; w < QW; w++) g_assert_cmphex (blk[w], ==, 0);
  vkc_dequantize_q8_0 (blk, QB, y);
  for (int j = 0; j < QB; j++) g_assert_true (y[j] == 0.0f && !signbit (y[j]));

  /* One huge value: 1000 among values of 0.01..0.3. d = 1000/127 = 7.87401…, nearest half
   * 7.875 (2016·2⁻⁸: 0x47e0); 1000 → 127 (dequantizes to 1000.125); the small ones vanish
   * (0.3·127/1000 = 0.0381 → 0) except −3.95 → −0.5017 → −1 and 4.0 → 0.508 → 1. */
  for (int j = 0; j < QB; j++) x[j] = 0.01f * (float) (j % 30 + 1);
  x[7] = 1000.0f;
  x[8] = -3.95f;
  x[9] = 4.0f;
  vkc_quantize_q8_0 (x, QB, blk);
  g_assert_cmphex (blk[0], ==, 0x47e0);
  for (int j = 0; j < QB; j++)
    g_assert_cmpint (quant_of (blk, j), ==, j == 7 ? 127 : j == 8 ? -1 : j == 9 ? 1 : 0);
  vkc_dequantize_q8_0 (blk, QB, y);
  g_assert_cmpfloat (y[7], ==, 1000.125f);
  g_assert_cmpfloat (y[8], ==, -7.875f);

  /* Non-finite input (documented in vkc_quant.h): NaN → 0, ±inf → ±127, the scale comes from
   * the finite values (amax = 127: d = 1). */
  for (int j = 0; j < QB; j++) x[j] = (float) (j - 16);
  x[0] = 127.0f;
  x[1] = NAN;
  x[2] = INFINITY;
  x[3] = -INFINITY;
  vkc_quantize_q8_0 (x, QB, blk);
  g_assert_cmphex (blk[0], ==, 0x3c00);
  g_assert_cmpint (quant_of (blk, 1), ==, 0);
  g_assert_cmpint (quant_of (blk, 2), ==, 127);
  g_assert_cmpint (quant_of (blk, 3), ==, -127);
  g_assert_cmpint (quant_of (blk, 4), ==, -12);
  /* Beyond the half range: amax = 1e7 would need d = 78740 > 65504; the scale saturates at
   * 65504 (0x7bff) and the values at ±127·65504. */
  for (int j = 0; j < QB; j++) x[j] = j == 5 ? -1e7f : 1000.0f * (float) j;
  vkc_quantize_q8_0 (x, QB, blk);
  g_assert_cmphex (blk[0], ==, 0x7bff);
  g_assert_cmpint (quant_of (blk, 5), ==, -127);
  g_assert_cmpint (quant_of (blk, 31), ==, 0);     /* 31000/65504 = 0.47 */
  g_assert_cmpint (quant_of (blk, 30), ==, 0);
  vkc_dequantize_q8_0 (blk, QB, y);
  for (int j = 0; j < QB; j++) g_assert_true (isfinite (y[j]));
}

/* Load-time speed: the model loader quantizes ~5e9 weights. Reported, not enforced (the
 * machine may be loaded), except for a floor that only a pathological build misses. */
static void
test_quant_speed (void)
{
  const int64_t n = (int64_t) 1 << 22;
  g_autofree float *x = op_randn ((size_t) n, 7, 0.05f);
  g_autofree uint32_t *q = g_new (uint32_t, n / QB * QW);
  gint64 t0 = g_get_monotonic_time ();
  for (int r = 0; r < 4; r++) vkc_quantize_q8_0 (x, n, q);
  double s = (g_get_monotonic_time () - t0) / 1e6;
  double rate = 4.0 * n / s;
  g_test_message ("vkc_quantize_q8_0: %.0f M values/s on one thread (5e9 weights: %.1f s)", rate / 1e6, 5e9 / rate);
  g_assert_cmpfloat (rate, >, 2e7);
}

/* ---- tensors ------------------------------------------------------------------------ */

/* The Q8_0 tensor rules: sizes in bytes, row narrowing, upload/download of blocks, and the
 * refusals (shapes that are not [N, 32·k] fail with an error, not a crash). */
static void
test_tensor (void)
{
  g_assert_cmpstr (vkc_dtype_name (VKC_Q8_0), ==, "q8_0");
  g_assert_cmpuint (vkc_dtype_bytes (VKC_Q8_0, 64), ==, 72);
  g_assert_cmpuint (vkc_dtype_bytes (VKC_BF16, 3), ==, 6);
  g_assert_cmpint (vkc_dtype_block (VKC_Q8_0), ==, 32);
  g_assert_cmpint (vkc_dtype_block (VKC_F16), ==, 1);

  OpTest *t = op_test_new ();
  g_autoptr (GError) error = NULL;
  VkcTensor w;
  g_assert_false (vkc_tensor_alloc (&w, t->pool, true, VKC_Q8_0, 2, (int64_t[]) { 4, 33 }, &error));
  g_assert_error (error, VKC_ERROR, VKC_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "q8_0"));
  g_assert_nonnull (strstr (error->message, "[4, 33]"));
  g_clear_error (&error);
  g_assert_false (vkc_tensor_alloc (&w, t->pool, true, VKC_Q8_0, 1, (int64_t[]) { 64 }, &error));
  g_assert_error (error, VKC_ERROR, VKC_ERROR_FAILED);
  g_clear_error (&error);
  g_assert_false (vkc_tensor_alloc (&w, t->pool, true, VKC_Q8_0, 3, (int64_t[]) { 2, 2, 64 }, &error));
  g_assert_error (error, VKC_ERROR, VKC_ERROR_FAILED);
  g_clear_error (&error);

  const int64_t N = 7, K = 96;
  g_autofree float *x = op_randn ((size_t) (N * K), 3, 1.0f);
  g_autofree uint32_t *q = g_new (uint32_t, N * K / QB * QW);
  g_autofree uint32_t *got = g_new0 (uint32_t, N * K / QB * QW);
  vkc_quantize_q8_0 (x, N * K, q);
  g_assert_true (vkc_tensor_alloc (&w, t->pool, true, VKC_Q8_0, 2, (int64_t[]) { N, K }, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (vkc_tensor_span_bytes (&w), ==, N * K / QB * 36);
  g_assert_true (vkc_tensor_upload (t->dev, &w, q, &error));
  g_assert_true (vkc_tensor_download (t->dev, &w, got, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (got, N * K / QB * 36, q, N * K / QB * 36);

  /* Rows 2..5: 3 blocks of 36 bytes per row in. */
  VkcTensor r = vkc_tensor_narrow (&w, 0, 2, 4);
  g_assert_cmpuint (r.offset, ==, w.offset + 2 * 108);
  g_assert_cmpuint (vkc_tensor_span_bytes (&r), ==, 4 * 108);
  memset (got, 0, N * K / QB * 36);
  g_assert_true (vkc_tensor_download (t->dev, &r, got, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (got, 4 * 108, q + 2 * 3 * QW, 4 * 108);
  /* The binding's offset of a q8_0 tensor counts words: 216 bytes in = 54 words past an
   * aligned start. */
  uint32_t off;
  VkcBinding b = vkc_tensor_binding (t->dev, &r, false, &off);
  g_assert_cmpuint (b.offset + 4 * off, ==, r.offset);
  VkcTensor v = vkc_tensor_view (&w, 2, (int64_t[]) { 3, 96 }, (int64_t[]) { 96, 1 }, 4 * 96);
  g_assert_cmpuint (v.offset, ==, w.offset + 4 * 108);
  VkcTensor rs = vkc_tensor_reshape (&w, 2, (int64_t[]) { 21, 32 });
  g_assert_cmpint (rs.stride[0], ==, 32);
  op_test_free (t);
}

/* Views that would split blocks or break the row layout abort with a message (programming
 * errors, like other misuse of views). No device needed: they fail before any Vulkan call. */
static void
test_tensor_refusals (void)
{
  if (g_test_subprocess ()) {
    VkcTensor w = { .dtype = VKC_Q8_0, .ndim = 2, .shape = { 4, 64 }, .stride = { 64, 1 } };
    const char *which = g_getenv ("Q8_REFUSAL");
    if (!g_strcmp0 (which, "narrow")) vkc_tensor_narrow (&w, 1, 0, 32);
    if (!g_strcmp0 (which, "offset")) vkc_tensor_view (&w, 2, (int64_t[]) { 1, 64 }, (int64_t[]) { 64, 1 }, 16);
    if (!g_strcmp0 (which, "stride")) vkc_tensor_view (&w, 2, (int64_t[]) { 2, 32 }, (int64_t[]) { 64, 1 }, 0);
    if (!g_strcmp0 (which, "reshape")) vkc_tensor_reshape (&w, 1, (int64_t[]) { 256 });
    if (!g_strcmp0 (which, "size")) vkc_dtype_size (VKC_Q8_0);
    return;
  }
  const char *cases[][2] = {
    { "narrow", "only be narrowed along its rows" },
    { "offset", "must start on a block" },
    { "stride", "strides {K, 1}" },
    { "reshape", "strides {K, 1}" },
    { "size", "VKC_Q8_0" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_setenv ("Q8_REFUSAL", cases[i][0], TRUE);
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDIN);
    g_test_trap_assert_failed ();
    g_autofree char *pattern = g_strdup_printf ("*%s*", cases[i][1]);
    g_test_trap_assert_stderr (pattern);
  }
  g_unsetenv ("Q8_REFUSAL");
}

/* ---- linear with q8_0 weights ------------------------------------------------------- */

typedef struct {
  int64_t M, K, N;
  bool bias, accumulate;
  int64_t x_pad, x_col;   /* x is a column slice [.., x_col : x_col+K] of [.., K + x_pad] */
  int64_t y_pad, y_col;   /* same for y */
  int64_t w_row0;         /* W is rows [w_row0, w_row0 + N) of a [w_row0 + N + 1, K] tensor */
  VkcLinearKernel kernel;
  bool no_subgroup;
  VkDeviceSize max_binding;
  guint min_dispatches;
} Case;

static void
run_case (OpTest *t, const char *what, const Case *c)
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
  VkcTensor wf = op_tensor (t, VKC_Q8_0, 2, (int64_t[]) { wrows, K }, w);   /* quantizes w */
  VkcTensor bt = op_tensor (t, VKC_F32, 1, &N, b);
  op_round_to (w, (size_t) (wrows * K), VKC_Q8_0);   /* the reference's weights: deq(q(w)) */
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
      if (c->bias) s += b[n];
      if (c->accumulate) s += y0[m * yw + c->y_col + n];
      rv[m * N + n] = s;
      gv[m * N + n] = got[m * yw + c->y_col + n];
    }
    for (int64_t j = 0; j < yw; j++)
      if ((j < c->y_col || j >= c->y_col + N) && memcmp (&got[m * yw + j], &y0[m * yw + j], 4) != 0)
        g_error ("%s: y[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] outside the view changed", what, m, j);
  }
  char label[256];
  g_snprintf (label, sizeof label, "%s (M=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT
              "%s%s, %u dispatches, %.2f s)", what, M, K, N, c->bias ? " bias" : "",
              c->accumulate ? " accumulate" : "", nd_disp, gpu_s);
  op_check (label, rv, gv, (size_t) (M * N), nmse_limit (K));
  vkc_pool_arena_reset (t->pool);
}

static const int64_t Ns[] = { 1, 37, 301, 1537 };
static const int64_t Ks[] = { 32, 96, 1056, 2048 };

/* The GEMV for 1, 3 and 8 rows (1, 4 and 8 rows per dispatch) with both reductions, every N
 * and K of the lists (each M takes the K list rotated), views of x and y, W starting some rows
 * into its tensor, bias and accumulate; and forced on 9 and 77 rows (groups of 8). */
static void
test_gemv (void)
{
  OpTest *t = op_test_new ();
  const int64_t rows[] = { 1, 3, 8 };
  for (int sg = 0; sg < 2; sg++)
    for (guint r = 0; r < G_N_ELEMENTS (rows); r++)
      for (guint i = 0; i < G_N_ELEMENTS (Ns); i++) {
        int64_t M = rows[r];
        run_case (t, sg ? "gemv shared" : "gemv subgroup", &(Case) { .M = M, .N = Ns[i], .K = Ks[(i + r) % 4],
                  .bias = i & 1, .accumulate = (i + r) % 3 == 0, .kernel = VKC_LINEAR_GEMV, .no_subgroup = sg,
                  .x_pad = r, .x_col = r ? 1 : 0, .y_pad = 2, .y_col = i & 1, .w_row0 = i + r });
      }
  run_case (t, "gemv 9 rows", &(Case) { .M = 9, .K = 1056, .N = 301, .bias = true, .kernel = VKC_LINEAR_GEMV,
            .min_dispatches = 2, .w_row0 = 3 });
  run_case (t, "gemv 77 rows", &(Case) { .M = 77, .K = 96, .N = 37, .accumulate = true, .kernel = VKC_LINEAR_GEMV,
            .no_subgroup = true, .min_dispatches = 10 });
  /* AUTO picks the GEMV for ≤ 8 rows. */
  run_case (t, "auto 8 rows", &(Case) { .M = 8, .K = 2048, .N = 1537, .bias = true });
  op_test_free (t);
}

/* The tiled kernel: 1 row (forced), 9 (small tile) and 77, 300 (large tile) rows, every N and
 * K of the lists, views, W row offsets, bias and accumulate. */
static void
test_tiled (void)
{
  OpTest *t = op_test_new ();
  const int64_t rows[] = { 1, 9, 77, 300 };
  for (guint r = 0; r < G_N_ELEMENTS (rows); r++)
    for (guint i = 0; i < G_N_ELEMENTS (Ns); i++) {
      int64_t M = rows[r], N = Ns[i], K = Ks[(i + 2 * r) % 4];
      if (M == 300 && N == 1537) K = 96;   /* keep the double reference inside the time budget */
      run_case (t, "tiled", &(Case) { .M = M, .N = N, .K = K, .bias = (i + r) & 1, .accumulate = i == 2,
                .kernel = VKC_LINEAR_TILED, .x_pad = 3, .x_col = i & 1 ? 2 : 0, .y_pad = 1, .y_col = r & 1,
                .w_row0 = r });
    }
  run_case (t, "auto 300 rows", &(Case) { .M = 300, .K = 2048, .N = 301, .bias = true, .accumulate = true });
  op_test_free (t);
}

/* W above the binding limit is split by whole rows (y and b follow), x and y by rows; the
 * chunks of W start at byte offsets that are no multiple of the offset alignment (word
 * offsets in the shaders). The limit is lowered so that small tensors take the path. */
static void
test_split (void)
{
  OpTest *t = op_test_new ();
  run_case (t, "split tiled", &(Case) { .M = 150, .K = 96, .N = 77, .bias = true, .accumulate = true,
            .x_pad = 3, .x_col = 1, .y_pad = 2, .y_col = 1, .w_row0 = 1, .kernel = VKC_LINEAR_TILED,
            .max_binding = 2048, .min_dispatches = 4 });
  run_case (t, "split gemv", &(Case) { .M = 3, .K = 1056, .N = 37, .bias = true, .w_row0 = 5,
            .kernel = VKC_LINEAR_GEMV, .max_binding = 8192, .min_dispatches = 5 });
  run_case (t, "split gemv shared", &(Case) { .M = 8, .K = 1056, .N = 37, .accumulate = true, .w_row0 = 2,
            .kernel = VKC_LINEAR_GEMV, .no_subgroup = true, .max_binding = 8192, .min_dispatches = 5 });
  op_test_free (t);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/linear_q8/quant/roundtrip", test_quant_roundtrip);
  g_test_add_func ("/linear_q8/quant/examples", test_quant_examples);
  g_test_add_func ("/linear_q8/quant/speed", test_quant_speed);
  g_test_add_func ("/linear_q8/tensor", test_tensor);
  g_test_add_func ("/linear_q8/tensor/refusals", test_tensor_refusals);
  g_test_add_func ("/linear_q8/gemv", test_gemv);
  g_test_add_func ("/linear_q8/tiled", test_tiled);
  g_test_add_func ("/linear_q8/split", test_split);
  return g_test_run ();
}
