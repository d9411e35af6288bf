#include "dtype.h"

#include <string.h>

static const struct {
  const char *name;
  gsize size;
} dtype_table[DG_DTYPE_COUNT] = {
  [DG_DTYPE_F32]  = { "F32", 4 },
  [DG_DTYPE_F16]  = { "F16", 2 },
  [DG_DTYPE_BF16] = { "BF16", 2 },
  [DG_DTYPE_F64]  = { "F64", 8 },
  [DG_DTYPE_I64]  = { "I64", 8 },
  [DG_DTYPE_I32]  = { "I32", 4 },
  [DG_DTYPE_I16]  = { "I16", 2 },
  [DG_DTYPE_I8]   = { "I8", 1 },
  [DG_DTYPE_U8]   = { "U8", 1 },
  [DG_DTYPE_BOOL] = { "BOOL", 1 },
};

gsize
dg_dtype_size (DgDType t)
{
  g_return_val_if_fail ((guint) t < DG_DTYPE_COUNT, 0);
  return dtype_table[t].size;
}

const char *
dg_dtype_name (DgDType t)
{
  g_return_val_if_fail ((guint) t < DG_DTYPE_COUNT, "?");
  return dtype_table[t].name;
}

gboolean
dg_dtype_from_name (const char *name, DgDType *out)
{
  for (guint i = 0; i < DG_DTYPE_COUNT; i++)
    if (name && strcmp (name, dtype_table[i].name) == 0)
      {
        *out = (DgDType) i;
        return TRUE;
      }
  return FALSE;
}

static inline guint32
f32_bits (float f)
{
  guint32 u;
  memcpy (&u, &f, 4);
  return u;
}

static inline float
bits_f32 (guint32 u)
{
  float f;
  memcpy (&f, &u, 4);
  return f;
}

float
dg_f16_to_f32 (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16;
  guint32 exp = (h >> 10) & 0x1f;
  guint32 man = h & 0x3ff;

  if (exp == 0x1f) /* inf / NaN: keep the payload in the top mantissa bits */
    return bits_f32 (sign | 0x7f800000u | (man << 13));
  if (exp == 0)
    {
      if (man == 0)
        return bits_f32 (sign);
      /* Subnormal: man·2^-24 is exact in f32; renormalise by shifting the leading 1 out. */
      int e = -1;
      do
        {
          man <<= 1;
          e++;
        }
      while (!(man & 0x400));
      man &= 0x3ff;
      return bits_f32 (sign | ((guint32) (127 - 15 - e) << 23) | (man << 13));
    }
  return bits_f32 (sign | ((exp + (127 - 15)) << 23) | (man << 13));
}

guint16
dg_f32_to_bf16 (float f)
{
  guint32 u = f32_bits (f);
  if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: truncate, force quiet so it cannot become inf */
    return (guint16) ((u >> 16) | 0x0040);
  /* Ties to even: add 0x7fff plus the lowest kept bit; a carry into the exponent is the correct
   * rounding up (and reaches inf exactly when the value rounds past the largest finite bf16). */
  u += 0x7fffu + ((u >> 16) & 1);
  return (guint16) (u >> 16);
}

guint16
dg_f32_to_f16 (float f)
{
  guint32 u = f32_bits (f);
  guint16 sign = (guint16) ((u >> 16) & 0x8000);
  guint32 abs = u & 0x7fffffffu;

  if (abs > 0x7f800000u) /* NaN: keep the top payload bits, force quiet */
    return sign | 0x7e00 | (guint16) ((abs >> 13) & 0x3ff);
  if (abs >= 0x477ff000u) /* ≥ 65520 rounds to inf (65504 is the largest finite half) */
    return sign | 0x7c00;
  if (abs < 0x38800000u) /* below 2^-14: half subnormal or zero */
    {
      if (abs < 0x33000000u) /* below 2^-25: rounds to zero (2^-25 itself is a tie to even 0) */
        return sign;
      guint32 exp = abs >> 23;
      guint32 man = (abs & 0x7fffff) | 0x800000; /* 24 significant bits */
      guint32 shift = 126 - exp;                 /* 14..24: aligns to units of 2^-24 */
      guint32 q = man >> shift;
      guint32 rem = man & ((1u << shift) - 1);
      guint32 half = 1u << (shift - 1);
      if (rem > half || (rem == half && (q & 1)))
        q++;
      return sign | (guint16) q; /* q may carry into the smallest normal: still correct */
    }
  /* Normal: rebias and round the 13 dropped mantissa bits, ties to even. */
  guint32 v = abs - ((127u - 15u) << 23);
  v += 0xfffu + ((v >> 13) & 1);
  return sign | (guint16) (v >> 13);
}

static inline guint16
load_u16 (const guint8 *p)
{
  return (guint16) (p[0] | (p[1] << 8)); /* safetensors is little-endian by definition */
}

void
dg_bf16_to_f32_array (const void *src, float *dst, gsize n)
{
  const guint8 *s = src;
  for (gsize i = 0; i < n; i++)
    dst[i] = dg_bf16_to_f32 (load_u16 (s + 2 * i));
}

void
dg_f16_to_f32_array (const void *src, float *dst, gsize n)
{
  const guint8 *s = src;
  for (gsize i = 0; i < n; i++)
    dst[i] = dg_f16_to_f32 (load_u16 (s + 2 * i));
}

void
dg_f32_to_bf16_array (const void *src, guint16 *dst, gsize n)
{
  const guint8 *s = src;
  for (gsize i = 0; i < n; i++)
    {
      float f;
      memcpy (&f, s + 4 * i, 4);
      dst[i] = dg_f32_to_bf16 (f);
    }
}

void
dg_f32_to_f16_array (const void *src, guint16 *dst, gsize n)
{
  const guint8 *s = src;
  for (gsize i = 0; i < n; i++)
    {
      float f;
      memcpy (&f, s + 4 * i, 4);
      dst[i] = dg_f32_to_f16 (f);
    }
}
