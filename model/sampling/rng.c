/* Noise generators (rng.h). The float32 arithmetic here must be plain IEEE single precision
 * with exactly the fusions written as fmaf(): the results are compared bit for bit with torch,
 * and the Philox stream is promised to be the same on every machine. gnu17 GCC would otherwise
 * contract a*b+c on FMA targets (aarch64, x86 with -mfma). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "rng.h"

#include <math.h>
#include <string.h>

#include "vkc_half.h"

static inline float
f32_from_bits (guint32 u)
{
  float f;
  memcpy (&f, &u, 4);
  return f;
}

static inline guint32
f32_bits (float f)
{
  guint32 u;
  memcpy (&u, &f, 4);
  return u;
}

/* ---------------------------------------------------------------------------------------
 * Cephes float32 log and sincos as compiled into torch's AVX2 normal kernel
 * (avx_mathfun.h log256_ps / sincos256_ps; tests/data/randn/README.md §5)
 * ------------------------------------------------------------------------------------- */

enum {
  SQRTHF = 0x3F3504F3u,
  LOG_Q1 = 0xB95E8083u,
  LOG_Q2 = 0x3F318000u,
  FOPI = 0x3FA2F983u,
  DP1 = 0xBF490000u,
  DP2 = 0xB97DA000u,
  DP3 = 0xB3222169u,
  TWO_PI = 0x40C90FDBu,
};
static const guint32 log_p[9] = { 0x3D9021BBu, 0xBDEBD1B8u, 0x3DEF251Au, 0xBDFE5D4Fu, 0x3E11E9BFu,
                                  0xBE2AAE50u, 0x3E4CCEACu, 0xBE7FFFFCu, 0x3EAAAAAAu };
static const guint32 sin_p[3] = { 0xB94CA1F9u, 0x3C08839Eu, 0xBE2AAAA3u };
static const guint32 cos_p[3] = { 0x37CCF5CEu, 0xBAB6061Au, 0x3D2AAAA5u };

/* log(x) for x in (0, 1]. */
static float
cephes_logf (float x)
{
  const float min_normal = f32_from_bits (0x00800000u);
  if (x < min_normal)
    x = min_normal;
  gint32 bits = (gint32) f32_bits (x);
  float e = (float) ((bits >> 23) - 0x7F) + 1.0f;
  x = f32_from_bits (((guint32) bits & ~0x7F800000u) | 0x3F000000u); /* mantissa in [0.5, 1) */
  gboolean small = x < f32_from_bits (SQRTHF);
  float tmp = small ? x : 0.0f;
  x = x - 1.0f;
  e = e - (small ? 1.0f : 0.0f);
  x = x + tmp;
  float z = x * x;
  float y = fmaf (f32_from_bits (log_p[0]), x, f32_from_bits (log_p[1]));
  for (int i = 2; i < 9; i++) y = fmaf (y, x, f32_from_bits (log_p[i]));
  y = y * x;
  y = fmaf (y, z, e * f32_from_bits (LOG_Q1));
  y = y - z * 0.5f;
  x = x + y;
  return x + e * f32_from_bits (LOG_Q2);
}

/* sin and cos of theta >= 0. */
static void
cephes_sincosf (float theta, float *sine, float *cosine)
{
  float x = fabsf (theta);
  gint32 j = (gint32) (x * f32_from_bits (FOPI));
  j = (j + 1) & ~1;
  float y = (float) j;
  guint32 sin_sign = (guint32) (j & 4) << 29;
  guint32 cos_sign = (guint32) (~(j - 2) & 4) << 29;
  gboolean use_sin_poly = (j & 2) == 0;
  x = fmaf (y, f32_from_bits (DP1), x);
  x = fmaf (y, f32_from_bits (DP2), x);
  x = fmaf (y, f32_from_bits (DP3), x);
  float z = x * x;
  float c = fmaf (f32_from_bits (cos_p[0]), z, f32_from_bits (cos_p[1]));
  c = fmaf (c, z, f32_from_bits (cos_p[2]));
  c = c * z;
  c = fmaf (c, z, -(z * 0.5f));
  c = c + 1.0f;
  float s = fmaf (f32_from_bits (sin_p[0]), z, f32_from_bits (sin_p[1]));
  s = fmaf (s, z, f32_from_bits (sin_p[2]));
  s = s * z;
  s = fmaf (s, x, x);
  /* The kernel selects with and/andnot and adds the halves; the +0.0 terms can turn −0 into +0,
   * so the sums are kept as written. */
  float s_part = use_sin_poly ? s : 0.0f, c_part = use_sin_poly ? 0.0f : c;
  float sv = c_part + s_part;
  float cv = (c - c_part) + (s - s_part);
  *sine = f32_from_bits (f32_bits (sv) ^ sin_sign);
  *cosine = f32_from_bits (f32_bits (cv) ^ cos_sign);
}

/* Box–Muller of one uniform pair in float32: (r cos θ, r sin θ) with u1 ∈ (0, 1]. */
static void
box_muller_f32 (float u1, float u2, float *first, float *second)
{
  float radius = sqrtf (-2.0f * cephes_logf (u1));
  float s, c;
  cephes_sincosf (f32_from_bits (TWO_PI) * u2, &s, &c);
  /* x·std + mean with std 1, mean 0 as one fma: exact, except that −0 becomes +0. */
  *first = fmaf (radius * c, 1.0f, 0.0f);
  *second = fmaf (radius * s, 1.0f, 0.0f);
}

/* normal_fill_16_AVX2: lanes j and j+8 of a block of 16 uniforms form one pair. */
static void
box_muller16 (float d[16])
{
  for (int j = 0; j < 8; j++) box_muller_f32 (1.0f - d[j], d[j + 8], &d[j], &d[j + 8]);
}

static float
round_bf16 (float f)
{
  return vkc_round_bf16 (f);
}

/* ---------------------------------------------------------------------------------------
 * Philox4x32-10
 * ------------------------------------------------------------------------------------- */

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) − 1 */

void
dg_philox4x32_10 (const guint32 counter[4], const guint32 key[2], guint32 out[4])
{
  guint32 c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
  guint32 k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; round++) {
    if (round > 0) {
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    guint64 p0 = (guint64) PHILOX_M0 * c0, p1 = (guint64) PHILOX_M1 * c2;
    guint32 hi0 = (guint32) (p0 >> 32), lo0 = (guint32) p0;
    guint32 hi1 = (guint32) (p1 >> 32), lo1 = (guint32) p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

void
dg_philox_randn (guint64 seed, guint64 offset, float *out, gsize n)
{
  const guint32 key[2] = { (guint32) seed, (guint32) (seed >> 32) };
  const float scale = 1.0f / 16777216.0f; /* 2^-24: 24-bit uniforms are exact in float32 */
  gsize i = 0;
  while (i < n) {
    guint64 pos = offset + i, block = pos / 4;
    const guint32 ctr[4] = { (guint32) block, (guint32) (block >> 32), 0, 0 };
    guint32 x[4];
    float v[4];
    dg_philox4x32_10 (ctr, key, x);
    for (int p = 0; p < 2; p++)
      box_muller_f32 (1.0f - (float) (x[2 * p] >> 8) * scale, (float) (x[2 * p + 1] >> 8) * scale, &v[2 * p],
                      &v[2 * p + 1]);
    for (guint64 k = pos % 4; k < 4 && i < n; k++) out[i++] = v[k];
  }
}

/* ---------------------------------------------------------------------------------------
 * torch's CPU generator: at::mt19937 and the normal/uniform kernels
 * ------------------------------------------------------------------------------------- */

#define MT_N 624
#define MT_M 397

struct _DgTorchGenerator {
  guint32 state[MT_N];
  guint next;                 /* index of the next output word; MT_N = twist first */
  gboolean has_cached_normal; /* the second value of the last scalar Box–Muller pair */
  double cached_normal;
};

DgTorchGenerator *
dg_torch_generator_new (guint64 seed)
{
  DgTorchGenerator *g = g_new0 (DgTorchGenerator, 1);
  /* at::mt19937 keeps only the low 32 bits of the 64-bit seed. */
  g->state[0] = (guint32) seed;
  for (guint j = 1; j < MT_N; j++) g->state[j] = 1812433253u * (g->state[j - 1] ^ (g->state[j - 1] >> 30)) + j;
  g->next = MT_N;
  return g;
}

void
dg_torch_generator_free (DgTorchGenerator *g)
{
  g_free (g);
}

static void
mt_twist (DgTorchGenerator *g)
{
  for (guint k = 0; k < MT_N; k++) {
    guint32 y = (g->state[k] & 0x80000000u) | (g->state[(k + 1) % MT_N] & 0x7FFFFFFFu);
    g->state[k] = g->state[(k + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908B0DFu : 0u);
  }
  g->next = 0;
}

static guint32
mt_u32 (DgTorchGenerator *g)
{
  if (g->next >= MT_N)
    mt_twist (g);
  guint32 y = g->state[g->next++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9D2C5680u;
  y ^= (y << 15) & 0xEFC60000u;
  y ^= y >> 18;
  return y;
}

static float
uniform24 (DgTorchGenerator *g)
{
  return (float) (mt_u32 (g) & 0xFFFFFFu) * (1.0f / 16777216.0f);
}

static double
uniform53 (DgTorchGenerator *g)
{
  guint64 hi = mt_u32 (g); /* the first word is the high half */
  guint64 lo = mt_u32 (g);
  return (double) (((hi << 32) | lo) & ((G_GUINT64_CONSTANT (1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

/* at::normal_distribution<double>: a Box–Muller pair in double with the C library, the second
 * value cached in the generator for the next scalar draw. */
static double
normal_double (DgTorchGenerator *g)
{
  if (g->has_cached_normal) {
    g->has_cached_normal = FALSE;
    return g->cached_normal;
  }
  double u1 = uniform53 (g);
  double u2 = uniform53 (g);
  double r = sqrt (-2.0 * log1p (-u2));
  double theta = 2.0 * G_PI * u1;
  g->cached_normal = r * sin (theta);
  g->has_cached_normal = TRUE;
  return r * cos (theta);
}

/* Below 16 elements torch takes the scalar path whatever the dtype (README §4.1). */
#define TORCH_VECTOR_MIN 16

void
dg_torch_randn (DgTorchGenerator *g, DgDType dtype, float *out, gsize n)
{
  g_return_if_fail (dtype == DG_DTYPE_F32 || dtype == DG_DTYPE_BF16);
  if (n < TORCH_VECTOR_MIN) {
    for (gsize i = 0; i < n; i++) {
      float f = (float) normal_double (g);
      out[i] = dtype == DG_DTYPE_BF16 ? round_bf16 (f) : f;
    }
    return;
  }
  gsize full = n / 16 * 16;
  if (dtype == DG_DTYPE_F32) {
    /* normal_fill_AVX2: all uniforms first, transformed in place block by block. */
    for (gsize i = 0; i < n; i++) out[i] = uniform24 (g);
    for (gsize i = 0; i < full; i += 16) box_muller16 (out + i);
  } else {
    /* The reduced-precision kernel draws 16 uniforms per block (README §4.3). */
    for (gsize i = 0; i < full; i += 16) {
      for (int j = 0; j < 16; j++) out[i + j] = uniform24 (g);
      box_muller16 (out + i);
    }
  }
  if (n % 16) {
    /* The tail: 16 fresh uniforms whose transform overwrites the last 16 outputs. */
    float t[16];
    for (int j = 0; j < 16; j++) t[j] = uniform24 (g);
    box_muller16 (t);
    memcpy (out + n - 16, t, sizeof t);
  }
  if (dtype == DG_DTYPE_BF16)
    for (gsize i = 0; i < n; i++) out[i] = round_bf16 (out[i]);
}

static void
box_muller16_f64 (double d[16])
{
  for (int j = 0; j < 8; j++) {
    double radius = sqrt (-2.0 * log (1.0 - d[j]));
    double theta = 2.0 * G_PI * d[j + 8];
    d[j] = radius * cos (theta);
    d[j + 8] = radius * sin (theta);
  }
}

void
dg_torch_randn_f64 (DgTorchGenerator *g, double *out, gsize n)
{
  if (n < TORCH_VECTOR_MIN) {
    for (gsize i = 0; i < n; i++) out[i] = normal_double (g);
    return;
  }
  for (gsize i = 0; i < n; i++) out[i] = uniform53 (g);
  for (gsize i = 0; i + 16 <= n; i += 16) box_muller16_f64 (out + i);
  if (n % 16) {
    double t[16];
    for (int j = 0; j < 16; j++) t[j] = uniform53 (g);
    box_muller16_f64 (t);
    memcpy (out + n - 16, t, sizeof t);
  }
}

void
dg_torch_rand (DgTorchGenerator *g, DgDType dtype, float *out, gsize n)
{
  g_return_if_fail (dtype == DG_DTYPE_F32 || dtype == DG_DTYPE_BF16);
  for (gsize i = 0; i < n; i++) {
    float u = uniform24 (g);
    out[i] = dtype == DG_DTYPE_BF16 ? round_bf16 (u) : u;
  }
}

void
dg_torch_rand_f64 (DgTorchGenerator *g, double *out, gsize n)
{
  for (gsize i = 0; i < n; i++) out[i] = uniform53 (g);
}

/* ---------------------------------------------------------------------------------------
 * One entry point
 * ------------------------------------------------------------------------------------- */

void
dg_randn (DgRng kind, guint64 seed, DgDType dtype, float *out, gsize n)
{
  g_return_if_fail (dtype == DG_DTYPE_F32 || dtype == DG_DTYPE_BF16);
  if (kind == DG_RNG_TORCH_CPU) {
    g_autoptr (DgTorchGenerator) g = dg_torch_generator_new (seed);
    dg_torch_randn (g, dtype, out, n);
    return;
  }
  dg_philox_randn (seed, 0, out, n);
  if (dtype == DG_DTYPE_BF16)
    for (gsize i = 0; i < n; i++) out[i] = round_bf16 (out[i]);
}
