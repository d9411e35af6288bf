/* Host-side conversions between f32 and the 16-bit float formats the GPU stores.
 * Exact where the format allows: bf16→f32 and f16→f32 are exact; f32→bf16 and f32→f16 round
 * to nearest even, keep NaN a NaN and saturate to ±inf like hardware conversions do. */
#pragma once
#include <stdint.h>
#include <string.h>

static inline float
vkc_bf16_to_f32 (uint16_t h)
{
  uint32_t u = (uint32_t) h << 16;
  float f;
  memcpy (&f, &u, 4);
  return f;
}

static inline uint16_t
vkc_f32_to_bf16 (float f)
{
  uint32_t u;
  memcpy (&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it quiet and non-zero */
    return (uint16_t) ((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even */
  return (uint16_t) (u >> 16);
}

static inline float
vkc_round_bf16 (float f)
{
  return vkc_bf16_to_f32 (vkc_f32_to_bf16 (f));
}

static inline float
vkc_f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (man << 13); /* inf / NaN: payload kept in the top bits */
  } else if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else { /* subnormal: man·2^-24 is exact in f32 */
      int e = -1;
      do {
        man <<= 1;
        e++;
      } while (!(man & 0x400u));
      man &= 0x3ffu;
      u = sign | ((uint32_t) (127 - 15 - e) << 23) | (man << 13);
    }
  } else {
    u = sign | ((exp + (127 - 15)) << 23) | (man << 13);
  }
  float f;
  memcpy (&f, &u, 4);
  return f;
}

static inline uint16_t
vkc_f32_to_f16 (float f)
{
  uint32_t u;
  memcpy (&u, &f, 4);
  uint16_t sign = (uint16_t) ((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) /* NaN: top payload bits, forced quiet */
    return (uint16_t) (sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) /* >= 65520 rounds to inf */
    return (uint16_t) (sign | 0x7c00u);
  if (a < 0x38800000u) { /* below 2^-14: subnormal or zero */
    if (a < 0x33000000u) /* below 2^-25 (a tie at 2^-25 goes to even 0) */
      return sign;
    uint32_t e = a >> 23;
    uint32_t m = (a & 0x7fffffu) | 0x800000u; /* 24 significant bits */
    uint32_t shift = 126 - e;                 /* 14..24: units of 2^-24 */
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u)))
      q++;
    return (uint16_t) (sign | q); /* a carry into the smallest normal is correct */
  }
  uint32_t v = a - ((127u - 15u) << 23); /* rebias, round 13 bits ties to even */
  v += 0xfffu + ((v >> 13) & 1u);
  return (uint16_t) (sign | (v >> 13));
}
