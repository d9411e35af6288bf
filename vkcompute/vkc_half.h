/* Host-side conversions between f32 and the 16-bit float formats the GPU stores.
 * Exact where the format allows: bf16→f32 and f16→f32 are exact; f32→bf16 and f32→f16 round
 * to nearest even, keep NaN a NaN and saturate to ±inf like hardware conversions do. */
#pragma once
#include <stdint.h>
#include <string.h>

static inline float vkc_bf16_to_f32 (uint16_t h)
{
  uint32_t u = (uint32_t) h << 16;
  float f;
  memcpy (&f, &u, 4);
  return f;
}

static inline uint16_t vkc_f32_to_bf16 (float f)
{
  uint32_t u;
  memcpy (&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u)          /* NaN: keep it quiet and non-zero */
    return (uint16_t) ((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);                /* round to nearest, ties to even */
  return (uint16_t) (u >> 16);
}

static inline float vkc_round_bf16 (float f) { return vkc_bf16_to_f32 (vkc_f32_to_bf16 (f)); }

static inline float vkc_f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {                                      /* subnormal: renormalise */
      exp = 127 - 15 + 1;
      while (!(man & 0x400u)) { man <<= 1; exp--; }
      man &= 0x3ffu;
      u = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (man << 13);         /* inf / NaN */
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  memcpy (&f, &u, 4);
  return f;
}

static inline uint16_t vkc_f32_to_f16 (float f)
{
  uint32_t u;
  memcpy (&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t) (sign | 0x7e00u);          /* NaN */
  if (a >= 0x477ff000u) return (uint16_t) (sign | 0x7c00u);         /* overflow → inf */
  if (a < 0x38800000u) {                                            /* subnormal or zero */
    if (a < 0x33000000u) return (uint16_t) sign;                    /* < half the smallest */
    uint32_t e = a >> 23;
    uint32_t m = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;                                       /* 14..24 */
    uint32_t r = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) r++;
    return (uint16_t) (sign | r);
  }
  uint32_t r = a + 0xfffu + ((a >> 13) & 1u);                       /* round mantissa to 10 bits */
  r -= (uint32_t) (127 - 15) << 23;
  return (uint16_t) (sign | (r >> 13));
}
