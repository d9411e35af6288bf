/* unit_dtype: the float conversions, exhaustively where the domain is 16 bits and against
 * independent references (double arithmetic, the compiler's _Float16) where it is 32. */
#include <math.h>
#include <string.h>

#include "dtype.h"

static guint32
bits (float f)
{
  guint32 u;
  memcpy (&u, &f, 4);
  return u;
}

static float
from_bits (guint32 u)
{
  float f;
  memcpy (&f, &u, 4);
  return f;
}

static void
test_names (void)
{
  for (guint t = 0; t < DG_DTYPE_COUNT; t++) {
    DgDType back;
    g_assert_cmpuint (dg_dtype_size (t), >=, 1);
    if (dg_dtype_block (t) != 1) /* block types are GGUF-only: no safetensors spelling */
    {
      g_assert_false (dg_dtype_from_name (dg_dtype_name (t), &back));
      continue;
    }
    g_assert_true (dg_dtype_from_name (dg_dtype_name (t), &back));
    g_assert_cmpint (back, ==, t);
  }
  DgDType x;
  g_assert_false (dg_dtype_from_name ("Q8_0", &x));
  g_assert_cmpuint (dg_dtype_size (DG_DTYPE_Q8_0), ==, 34);
  g_assert_cmpuint (dg_dtype_block (DG_DTYPE_Q8_0), ==, 32);
  g_assert_false (dg_dtype_from_name ("f32", &x));
  g_assert_false (dg_dtype_from_name ("F8_E4M3", &x));
  g_assert_false (dg_dtype_from_name ("", &x));
  g_assert_cmpuint (dg_dtype_size (DG_DTYPE_BF16), ==, 2);
  g_assert_cmpuint (dg_dtype_size (DG_DTYPE_BOOL), ==, 1);
  g_assert_cmpuint (dg_dtype_size (DG_DTYPE_I64), ==, 8);
}

static void
test_bf16_to_f32_exhaustive (void)
{
  for (guint32 h = 0; h < 65536; h++) g_assert_cmphex (bits (dg_bf16_to_f32 ((guint16) h)), ==, h << 16);
}

/* f16 value from its fields, computed in double: independent of the bit tricks under test. */
static double
f16_reference (guint16 h)
{
  int sign = h >> 15, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  double v = exp == 0 ? ldexp (man, -24) : ldexp (1024 + man, exp - 25);
  return sign ? -v : v;
}

static void
test_f16_to_f32_exhaustive (void)
{
  for (guint32 h = 0; h < 65536; h++) {
    float f = dg_f16_to_f32 ((guint16) h);
    guint32 exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) {
      /* inf and NaN: same class, sign and payload (in the top mantissa bits). */
      g_assert_cmphex (bits (f), ==, ((h & 0x8000u) << 16) | 0x7f800000u | (man << 13));
      g_assert_true (man ? isnan (f) : isinf (f));
    } else {
      g_assert_cmpfloat ((double) f, ==, f16_reference ((guint16) h));
      g_assert_cmpint (!!signbit (f), ==, !!(h & 0x8000)); /* -0 stays -0 */
    }
  }
}

/* Nearest-even narrowing reference: pick the closer of the two neighbours, in double. */
static guint16
bf16_reference (float f)
{
  guint32 u = bits (f);
  guint32 lo = u & 0xffff0000u, hi = lo + 0x10000u; /* toward zero, and one step away from it */
  double d = f, dlo = from_bits (lo);
  /* One step above the largest finite bf16 is inf; for rounding it counts as 2^128. */
  double dhi = (hi & 0x7fffffffu) == 0x7f800000u ? copysign (ldexp (1.0, 128), d) : (double) from_bits (hi);
  double elo = fabs (d - dlo), ehi = fabs (dhi - d);
  if (elo < ehi || (elo == ehi && !((lo >> 16) & 1)))
    return (guint16) (lo >> 16);
  return (guint16) (hi >> 16);
}

static void
test_f32_to_bf16 (void)
{
  /* A sweep over the whole f32 range with a stride that visits every exponent and many low-bit
   * patterns, plus the exact ties. */
  for (guint64 u = 0; u <= G_MAXUINT32; u += 0x1001) {
    float f = from_bits ((guint32) u);
    if (isnan (f) || isinf (f))
      continue;
    g_assert_cmphex (dg_f32_to_bf16 (f), ==, bf16_reference (f));
  }
  g_assert_cmphex (dg_f32_to_bf16 (from_bits (0x3f808000)), ==, 0x3f80); /* tie, even stays */
  g_assert_cmphex (dg_f32_to_bf16 (from_bits (0x3f818000)), ==, 0x3f82); /* tie, odd rounds up */
  g_assert_cmphex (dg_f32_to_bf16 (from_bits (0x3f808001)), ==, 0x3f81);
  g_assert_cmphex (dg_f32_to_bf16 (from_bits (0x7f7fffff)), ==, 0x7f80); /* FLT_MAX rounds to inf */
  g_assert_cmphex (dg_f32_to_bf16 (-INFINITY), ==, 0xff80);
  g_assert_cmphex (dg_f32_to_bf16 (from_bits (0x80000001)), ==, 0x8000);
  /* NaN with its payload only in the dropped bits must not turn into inf. */
  g_assert_cmphex (dg_f32_to_bf16 (from_bits (0x7f800001)), ==, 0x7fc0);
  g_assert_cmphex (dg_f32_to_bf16 (from_bits (0xff800001)), ==, 0xffc0);
  g_assert_cmphex (dg_f32_to_bf16 (from_bits (0x7fc00000)), ==, 0x7fc0);
  g_assert_true (isnan (dg_bf16_to_f32 (dg_f32_to_bf16 (NAN))));
}

static void
test_f16_round_trip (void)
{
  for (guint32 h = 0; h < 65536; h++) {
    guint16 back = dg_f32_to_f16 (dg_f16_to_f32 ((guint16) h));
    if (((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff)) {
      g_assert_cmphex (back & 0xfc00, ==, h & 0xfc00); /* NaN stays NaN of the same sign */
      g_assert_cmphex (back & 0x3ff, !=, 0);
    } else
      g_assert_cmphex (back, ==, h);
  }
}

static guint16
f16_nearest (double d)
{
  /* Brute-force nearest-even over the 31744 finite non-negative halves (binary search). */
  double a = fabs (d);
  guint16 sign = signbit (d) ? 0x8000 : 0;
  if (a >= 65520.0)
    return sign | 0x7c00;
  guint lo = 0, hi = 0x7bff;
  while (lo < hi) /* largest h with value(h) <= a */
  {
    guint mid = (lo + hi + 1) / 2;
    if (f16_reference ((guint16) mid) <= a)
      lo = mid;
    else
      hi = mid - 1;
  }
  guint best = lo;
  if (lo < 0x7bff) {
    double elo = a - f16_reference ((guint16) lo), ehi = f16_reference ((guint16) (lo + 1)) - a;
    if (ehi < elo || (ehi == elo && (lo & 1)))
      best = lo + 1;
  }
  return sign | (guint16) best;
}

static void
test_f32_to_f16 (void)
{
  for (guint64 u = 0; u <= G_MAXUINT32; u += 0x1fff) {
    float f = from_bits ((guint32) u);
    if (isnan (f))
      continue;
    g_assert_cmphex (dg_f32_to_f16 (f), ==, f16_nearest (f));
  }
  /* Edges: largest half, the inf threshold, subnormal ties. */
  g_assert_cmphex (dg_f32_to_f16 (65504.0f), ==, 0x7bff);
  g_assert_cmphex (dg_f32_to_f16 (65519.996f), ==, 0x7bff);
  g_assert_cmphex (dg_f32_to_f16 (65520.0f), ==, 0x7c00);
  g_assert_cmphex (dg_f32_to_f16 (ldexpf (1.0f, -24)), ==, 0x0001);
  g_assert_cmphex (dg_f32_to_f16 (ldexpf (1.0f, -25)), ==, 0x0000); /* tie → even 0 */
  g_assert_cmphex (dg_f32_to_f16 (nextafterf (ldexpf (1.0f, -25), 1)), ==, 0x0001);
  g_assert_cmphex (dg_f32_to_f16 (ldexpf (3.0f, -25)), ==, 0x0002);    /* 1.5 ulp → even 2 */
  g_assert_cmphex (dg_f32_to_f16 (ldexpf (1023.5f, -24)), ==, 0x0400); /* carries into normal */
  g_assert_cmphex (dg_f32_to_f16 (-0.0f), ==, 0x8000);
  g_assert_cmphex (dg_f32_to_f16 (from_bits (0x7f800001)) & 0x7c00, ==, 0x7c00);
  g_assert_cmphex (dg_f32_to_f16 (from_bits (0x7f800001)) & 0x3ff, !=, 0);
  g_assert_cmphex (dg_f32_to_f16 (from_bits (0xffc00000)), ==, 0xfe00);
#ifdef __FLT16_MAX__
  /* The compiler's own conversion, where it has one, as a third opinion. */
  for (guint64 u = 0; u <= G_MAXUINT32; u += 0x7fff) {
    float f = from_bits ((guint32) u);
    if (isnan (f))
      continue;
    _Float16 h = (_Float16) f;
    guint16 hb;
    memcpy (&hb, &h, 2);
    g_assert_cmphex (dg_f32_to_f16 (f), ==, hb);
  }
#endif
}

static void
test_arrays_unaligned (void)
{
  guint8 buf[1 + 4 * 5];
  float src[5] = { 1.0f, -2.0f, 0.5f, 65504.0f, 1e-8f };
  memcpy (buf + 1, src, sizeof src);
  guint16 b[5], h[5];
  float back[5];
  dg_f32_to_bf16_array (buf + 1, b, 5);
  dg_f32_to_f16_array (buf + 1, h, 5);
  for (int i = 0; i < 5; i++) {
    g_assert_cmphex (b[i], ==, dg_f32_to_bf16 (src[i]));
    g_assert_cmphex (h[i], ==, dg_f32_to_f16 (src[i]));
  }
  guint8 raw[1 + 2 * 5];
  memcpy (raw + 1, b, sizeof b);
  dg_bf16_to_f32_array (raw + 1, back, 5);
  for (int i = 0; i < 5; i++) g_assert_cmpfloat (back[i], ==, dg_bf16_to_f32 (b[i]));
  memcpy (raw + 1, h, sizeof h);
  dg_f16_to_f32_array (raw + 1, back, 5);
  for (int i = 0; i < 5; i++) g_assert_cmpfloat (back[i], ==, dg_f16_to_f32 (h[i]));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dtype/names", test_names);
  g_test_add_func ("/dtype/bf16-to-f32-exhaustive", test_bf16_to_f32_exhaustive);
  g_test_add_func ("/dtype/f16-to-f32-exhaustive", test_f16_to_f32_exhaustive);
  g_test_add_func ("/dtype/f32-to-bf16", test_f32_to_bf16);
  g_test_add_func ("/dtype/f16-round-trip", test_f16_round_trip);
  g_test_add_func ("/dtype/f32-to-f16", test_f32_to_f16);
  g_test_add_func ("/dtype/arrays-unaligned", test_arrays_unaligned);
  return g_test_run ();
}
