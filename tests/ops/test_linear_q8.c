/* q8_0 weights: the host quantizer (vkcompute/vkc_quant.h) on hand-computed blocks, and — with
 * the shared tests of quant_test.c — against ggml's rule on random data, the Q8_0 tensor rules,
 * and linear / matmul y = x·Wᵀ + b with q8_0 W against a double-precision C reference (NMSE
 * limit 30·u²·K, the reasons in quant_test.c). */
#include "quant_test.h"
#include <math.h>
#include <string.h>

#define QB VKC_Q8_0_BLOCK
#define QW VKC_Q8_0_BLOCK_WORDS

/* ---- the quantizer on the host ------------------------------------------------------ */

/* ggml's quantize_row_q8_0_ref for one block, transcribed literally (roundf, x·(1/d)), for
 * finite input. */
static void
ggml_q8_0 (const float *x, uint16_t *d_bits, int *q)
{
  float amax = 0.0f;
  for (int j = 0; j < QB; j++) amax = MAX (amax, fabsf (x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  *d_bits = vkc_f32_to_f16 (d);
  for (int j = 0; j < QB; j++) q[j] = (int8_t) roundf (x[j] * id);
}

static int
quant_of (const uint32_t *blk, int j)
{
  int v = (int) ((blk[1 + j / 4] >> (8 * (j % 4))) & 0xffu);
  return v >= 128 ? v - 256 : v;
}

static float
value_q8 (float dh, int q)
{
  return dh * (float) q;
}

/* Within d/2 (d = amax/127 unrounded), + the f16 rounding of d times the largest quant, + the
 * fp32 rounding of x·(1/d) (a few units of 2⁻²⁴·127). */
static double
bound_q8 (const float *x, int j, double dh)
{
  float amax = 0;
  for (int i = 0; i < QB; i++) amax = MAX (amax, fabsf (x[i]));
  double d = amax / 127.0f;
  return d * (0.5 + 4e-5) + 127.0 * fabs (d - dh) + 1e-30;
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
  g_assert_cmpint (quant_of (blk, 22), ==, 1); /* 0.5 → 1 */
  g_assert_cmpint (quant_of (blk, 31), ==, 3); /* 2.75 → 3 */

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
  for (int j = 0; j < QB; j++) g_assert_cmpint (quant_of (blk, j), ==, j == 7 ? 127 : j == 8 ? -1 : j == 9 ? 1 : 0);
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
  g_assert_cmpint (quant_of (blk, 31), ==, 0); /* 31000/65504 = 0.47 */
  g_assert_cmpint (quant_of (blk, 30), ==, 0);
  vkc_dequantize_q8_0 (blk, QB, y);
  for (int j = 0; j < QB; j++) g_assert_true (isfinite (y[j]));
}

static const QuantFormat q8_0 = {
  .dtype = VKC_Q8_0,
  .path = "/linear_q8",
  .block_bytes = 36,
  .block_words = 9,
  .quant_of = quant_of,
  .value = value_q8,
  .reference = ggml_q8_0,
  .bound = bound_q8,
};

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/linear_q8/quant/examples", test_quant_examples);
  quant_test_add (&q8_0);
  return g_test_run ();
}
