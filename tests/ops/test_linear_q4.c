/* q4_0 weights: the host quantizer (vkcompute/vkc_quant.h) on hand-computed blocks and on
 * blocks made of ties, and — with the shared tests of quant_test.c — against ggml's rule on
 * random data, the Q4_0 tensor rules, and linear / matmul y = x·Wᵀ + b with q4_0 W against a
 * double-precision C reference. A dequantized q4_0 weight (q − 8)·d is exact in fp32, so the
 * NMSE limit is the one of the other linear tests, 30·u²·K (the reasons in quant_test.c).
 *
 * The reference quantizer below is ggml's rule as stated (quantize_row_q4_0_ref), written out
 * plainly; this file is built with -ffp-contract=off (tests/ops/linear.cmake) so that x·id is
 * rounded before 8.5 is added, as in vkc_quant.c. */
#include "quant_test.h"
#include <math.h>
#include <string.h>

#define QB VKC_Q4_0_BLOCK
#define QW VKC_Q4_0_BLOCK_WORDS

/* ---- the format ---------------------------------------------------------------------- */

/* ggml's rule for one block of finite values: max = the first value of largest |x| (a strict
 * comparison, so a later −a does not replace +a), d = max / −8, id = 1/d (0 for d = 0),
 * q = min (15, (int) (x·id + 8.5)), the product rounded to fp32 first; the scale is f16 (d). */
static void
ggml_q4_0 (const float *x, uint16_t *d_bits, int *q)
{
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < QB; j++)
    if (amax < fabsf (x[j])) {
      amax = fabsf (x[j]);
      max = x[j];
    }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  *d_bits = vkc_f32_to_f16 (d);
  for (int j = 0; j < QB; j++) {
    const float v = x[j] * id;
    q[j] = MIN (15, (int) (v + 8.5f));
  }
}

/* Value j of a block: byte j % 16 of the 16 quant bytes (byte j % 4 of word 1 + (j % 16)/4),
 * low nibble for the first half of the block, high nibble for the second. */
static int
quant_of (const uint32_t *blk, int j)
{
  uint32_t byte = (blk[1 + (j % 16) / 4] >> (8 * (j % 4))) & 0xffu;
  return (int) (j < 16 ? byte & 0xfu : byte >> 4);
}

static float
value_q4 (float dh, int q)
{
  return (float) (q - 8) * dh;
}

/* With d = max/−8 unrounded and v = x/d ∈ [−8, 8]: q − 8 is v rounded (half up) for v < 7.5,
 * an error of at most half a step |d|/2; above, the clamp at q = 15 leaves v − 7, up to one
 * step |d| at x = −max (v = 8). The stored dh adds |q − 8|·|d − dh| ≤ 8·|d − dh|, and the fp32
 * roundings of x·id (2 ulp of |v| ≤ 8: 1e-6) and of + 8.5 (half an ulp of 16: 1e-6) move the
 * decision by at most 2e-6 steps, taken as 4e-6. */
static double
bound_q4 (const float *x, int j, double dh)
{
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < QB; i++)
    if (amax < fabsf (x[i])) {
      amax = fabsf (x[i]);
      max = x[i];
    }
  double d = max / -8.0f;
  if (d == 0)
    return 1e-30;
  double v = x[j] / d;
  return fabs (d) * (MAX (0.5, v - 7.0) + 4e-6) + 8.0 * fabs (d - dh) + 1e-30;
}

/* ---- hand-computed blocks ------------------------------------------------------------- */

static void
quantize_one (const float *x, uint32_t *blk, float *y)
{
  vkc_quantize_q4_0 (x, QB, blk);
  vkc_dequantize_q4_0 (blk, QB, y);
}

static void
test_quant_examples (void)
{
  uint32_t blk[QW];
  float x[QB], y[QB];

  /* max = 8 ⇒ d = −1 (f16 0xbc00), id = −1: q = trunc (8.5 − x), value 8 − q. Ties fall toward
   * +∞ in v = −x, so towards 0 for positive x and away from it for negative x: 0.5 → 0 but
   * −0.5 → −1, 2.5 → 2, −2.5 → −3, 7.5 → 7, −1.5 → −2. The max itself is exact (q = 0), −8
   * clamps from 16 to 15: −7, an error of one whole step |d| (the bound's far side).
   * −0.49999997 (= −0.5 + 2⁻²⁵): 8.5 + 0.49999997 rounds to 9.0 in fp32, so q = 9 (value −1)
   * where exact arithmetic would truncate 8.99999997 to 8: the fp32 sum is ggml's. */
  const float in[10] = { 8.0f, -8.0f, 0.5f, -0.5f, 2.5f, -2.5f, -0.49999997f, 7.5f, -7.5f, -1.5f };
  const int want[10] = { 0, 15, 8, 9, 6, 11, 9, 1, 15, 10 };
  memset (x, 0, sizeof x);
  memcpy (x, in, sizeof in);
  quantize_one (x, blk, y);
  g_assert_cmphex (blk[0], ==, 0xbc00);
  for (int j = 0; j < 10; j++) {
    g_assert_cmpint (quant_of (blk, j), ==, want[j]);
    g_assert_cmpfloat (y[j], ==, (float) (8 - want[j]));
  }
  for (int j = 10; j < QB; j++) g_assert_cmpint (quant_of (blk, j), ==, 8);
  g_assert_cmpfloat (fabsf (x[1] - y[1]), ==, 1.0f);

  /* Nibble order: x = 8 − q with q[j] = j for j < 16 and 31 − j above; byte i = q[i] | q[i+16]
   * << 4 = i | (15 − i) << 4, bytes little-endian in words 1..4. */
  for (int j = 0; j < QB; j++) x[j] = 8.0f - (float) (j < 16 ? j : 31 - j);
  quantize_one (x, blk, y);
  g_assert_cmphex (blk[0], ==, 0xbc00);
  g_assert_cmphex (blk[1], ==, 0xc3d2e1f0u);
  g_assert_cmphex (blk[2], ==, 0x8796a5b4u);
  g_assert_cmphex (blk[3], ==, 0x4b5a6978u);
  g_assert_cmphex (blk[4], ==, 0x0f1e2d3cu);
  for (int j = 0; j < QB; j++) g_assert_cmpfloat (y[j], ==, x[j]);

  /* The sign of d is the sign of the FIRST value of largest |x|: −6 at 3 before +6 at 10
   * gives d = 0.75 (0x3a00): −6 → q 0 (−6), 6 → 16 → 15 (5.25); the other order d = −0.75
   * (0xba00): 6 → 0 (6), −6 → 15 (−5.25). The small rest (|x| ≤ 0.1) all round to 8. */
  for (int order = 0; order < 2; order++) {
    for (int j = 0; j < QB; j++) x[j] = 0.1f * (float) j / 32.0f;
    x[3] = order ? 6.0f : -6.0f;
    x[10] = -x[3];
    quantize_one (x, blk, y);
    g_assert_cmphex (blk[0], ==, order ? 0xba00 : 0x3a00);
    for (int j = 0; j < QB; j++) g_assert_cmpint (quant_of (blk, j), ==, j == 3 ? 0 : j == 10 ? 15 : 8);
    g_assert_cmpfloat (y[3], ==, x[3]);
    g_assert_cmpfloat (y[10], ==, order ? -5.25f : 5.25f);
  }

  /* All zero (or −0, or zeros with NaN): ggml's max stays +0, so d = +0/−8 = −0 (0x8000), id
   * = 0, every q = trunc (0 + 8.5) = 8, every value 0·(−0) = −0. */
  for (int k = 0; k < 3; k++) {
    for (int j = 0; j < QB; j++) x[j] = k == 1 ? -0.0f : 0.0f;
    if (k == 2)
      x[7] = NAN;
    quantize_one (x, blk, y);
    g_assert_cmphex (blk[0], ==, 0x8000);
    for (int w = 1; w < QW; w++) g_assert_cmphex (blk[w], ==, 0x88888888u);
    for (int j = 0; j < QB; j++) g_assert_true (y[j] == 0.0f && signbit (y[j]));
  }

  /* One non-zero value, 3 at j = 21 (the high nibble of byte 5: bits 12–15 of word 2): d =
   * −0.375 (0xb600), 3·id = −8 → q 0 → 3 exactly; the zeros → 8 → −0. */
  memset (x, 0, sizeof x);
  x[21] = 3.0f;
  quantize_one (x, blk, y);
  g_assert_cmphex (blk[0], ==, 0xb600);
  g_assert_cmphex (blk[1], ==, 0x88888888u);
  g_assert_cmphex (blk[2], ==, 0x88880888u);
  g_assert_cmphex (blk[3], ==, 0x88888888u);
  g_assert_cmphex (blk[4], ==, 0x88888888u);
  g_assert_cmpfloat (y[21], ==, 3.0f);
  for (int j = 0; j < QB; j++) g_assert_true (j == 21 || (y[j] == 0.0f && signbit (y[j])));

  /* id comes from the unrounded d: max = 0.1 ⇒ d = −0.0125 (fp32), id = −80, f16 (d) =
   * −0.01249694824 (0xa266). −0.0062495·id = 0.49996 → 8.99996 → q 8, where 1/f16 (d) would
   * give 0.500082 → 9; −0.00625 is the tie (0.5 → 9.0 → 9) and 0.05 → −4 → 4.5 → 4. */
  memset (x, 0, sizeof x);
  x[0] = 0.1f;
  x[1] = -0.0062495f;
  x[2] = -0.00625f;
  x[3] = 0.05f;
  quantize_one (x, blk, y);
  g_assert_cmphex (blk[0], ==, 0xa266);
  g_assert_cmpint (quant_of (blk, 0), ==, 0);
  g_assert_cmpint (quant_of (blk, 1), ==, 8);
  g_assert_cmpint (quant_of (blk, 2), ==, 9);
  g_assert_cmpint (quant_of (blk, 3), ==, 4);
  g_assert_cmpfloat (y[3], ==, -4.0f * -0.0124969482421875f);

  /* Largest halves: |max| = 8·65510 < 8·65520 is still ggml's (d = −65510 rounds to the half
   * −65504, 0xfbff, with id = −1/65510); the whole block equals the reference. */
  for (int j = 0; j < QB; j++) x[j] = 16000.0f * (float) (j - 10);
  x[0] = 524080.0f;
  x[1] = -262040.0f; /* ·id = 4 → 12.5 → 12 */
  quantize_one (x, blk, y);
  {
    uint16_t rd;
    int rq[QB];
    ggml_q4_0 (x, &rd, rq);
    g_assert_cmphex (blk[0], ==, 0xfbff);
    g_assert_cmphex (rd, ==, 0xfbff);
    for (int j = 0; j < QB; j++) g_assert_cmpint (quant_of (blk, j), ==, rq[j]);
    g_assert_cmpint (quant_of (blk, 1), ==, 12);
  }
}

/* Non-finite and out-of-range input (documented in vkc_quant.h; ggml's is undefined there). */
static void
test_quant_nonfinite (void)
{
  uint32_t blk[QW];
  float x[QB], y[QB];

  /* NaN and ±inf are left out of max: x = (j − 16)/2 has max = −8 at j = 0 (d = 1, 0x3c00, q =
   * trunc (x + 8.5)); NaN → 8 (0), +inf → 15 (7), −inf → 0 (−8). */
  for (int j = 0; j < QB; j++) x[j] = (float) (j - 16) * 0.5f;
  x[1] = NAN;
  x[2] = INFINITY;
  x[3] = -INFINITY;
  quantize_one (x, blk, y);
  g_assert_cmphex (blk[0], ==, 0x3c00);
  g_assert_cmpint (quant_of (blk, 0), ==, 0);
  g_assert_cmpint (quant_of (blk, 1), ==, 8);
  g_assert_cmpint (quant_of (blk, 2), ==, 15);
  g_assert_cmpint (quant_of (blk, 3), ==, 0);
  g_assert_cmpint (quant_of (blk, 4), ==, 2);   /* −6 → 2.5 */
  g_assert_cmpint (quant_of (blk, 31), ==, 15); /* 7.5 → 16 → 15 */
  g_assert_cmpfloat (y[2], ==, 7.0f);
  g_assert_cmpfloat (y[3], ==, -8.0f);

  /* No finite non-zero value: d = −0 and every q = 8, the infinities too (inf·0 is NaN). */
  memset (x, 0, sizeof x);
  x[0] = INFINITY;
  x[9] = -INFINITY;
  x[17] = NAN;
  quantize_one (x, blk, y);
  g_assert_cmphex (blk[0], ==, 0x8000);
  for (int w = 1; w < QW; w++) g_assert_cmphex (blk[w], ==, 0x88888888u);

  /* |max| ≥ 8·65520 would make ggml's half infinite: the scale saturates at 65504 (0x7bff for
   * max = −1e7) and the values clamp: −1e7 → q 0 (−524032), 1e6·id = 15.3 → 15 (458528); the
   * others, |x·id| ≤ 0.47, → 8. */
  for (int j = 0; j < QB; j++) x[j] = 1000.0f * (float) j;
  x[5] = -1e7f;
  x[6] = 1e6f;
  quantize_one (x, blk, y);
  g_assert_cmphex (blk[0], ==, 0x7bff);
  for (int j = 0; j < QB; j++) g_assert_cmpint (quant_of (blk, j), ==, j == 5 ? 0 : j == 6 ? 15 : 8);
  g_assert_cmpfloat (y[5], ==, -524032.0f);
  g_assert_cmpfloat (y[6], ==, 458528.0f);
  for (int j = 0; j < QB; j++) g_assert_true (isfinite (y[j]));

  /* A subnormal max: d = −1.25e-40, 1/d = −inf; the max → −inf → q 0, the zeros → NaN → 8;
   * f16 (d) = −0 (0x8000), so all values are ±0. */
  memset (x, 0, sizeof x);
  x[0] = 1e-39f;
  quantize_one (x, blk, y);
  g_assert_cmphex (blk[0], ==, 0x8000);
  g_assert_cmpint (quant_of (blk, 0), ==, 0);
  for (int j = 1; j < QB; j++) g_assert_cmpint (quant_of (blk, j), ==, 8);
  for (int j = 0; j < QB; j++) g_assert_true (y[j] == 0.0f);
}

/* Blocks made of ties: x = k/2·s for integers |k| ≤ 16 puts every value on a rounding boundary
 * of q (s = 2^e keeps them exact; s = 0.1 or 0.3 leaves the decision to fp32 rounding), and ±8·s
 * both present in random order tests the sign rule. Every block equals the reference. */
static void
test_quant_ties (void)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (44);
  const float scales[] = { 1.0f, 0.25f, 1024.0f, 0.1f, 0.3f, 3e-5f };
  uint32_t blk[QW];
  float x[QB], y[QB];
  guint n_sign[2] = { 0, 0 };
  for (guint s = 0; s < G_N_ELEMENTS (scales); s++)
    for (int b = 0; b < 2000; b++) {
      for (int j = 0; j < QB; j++) x[j] = (float) g_rand_int_range (r, -16, 17) * 0.5f * scales[s];
      int a = g_rand_int_range (r, 0, QB), c = g_rand_int_range (r, 0, QB);
      x[a] = 8.0f * scales[s];
      if (c != a)
        x[c] = -8.0f * scales[s];
      quantize_one (x, blk, y);
      uint16_t rd;
      int rq[QB];
      ggml_q4_0 (x, &rd, rq);
      g_assert_cmphex (blk[0], ==, rd);
      n_sign[rd >> 15]++;
      for (int j = 0; j < QB; j++) {
        if (quant_of (blk, j) != rq[j])
          g_error ("scale %g block %d value %d (%.9g): q %d, the rule gives %d", scales[s], b, j, x[j],
                   quant_of (blk, j), rq[j]);
        g_assert_cmpfloat (y[j], ==, value_q4 (vkc_f16_to_f32 (rd), rq[j]));
      }
    }
  g_assert_cmpuint (n_sign[0], >, 1000); /* both signs of d occurred */
  g_assert_cmpuint (n_sign[1], >, 1000);
}

static const QuantFormat q4_0 = {
  .dtype = VKC_Q4_0,
  .path = "/linear_q4",
  .block_bytes = 20,
  .block_words = 5,
  .quant_of = quant_of,
  .value = value_q4,
  .reference = ggml_q4_0,
  .bound = bound_q4,
};

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/linear_q4/quant/examples", test_quant_examples);
  g_test_add_func ("/linear_q4/quant/nonfinite", test_quant_nonfinite);
  g_test_add_func ("/linear_q4/quant/ties", test_quant_ties);
  quant_test_add (&q4_0);
  return g_test_run ();
}
