/* Host-side q8_0 and q4_0 quantization (formats in vkc_quant.h). Runs over every weight of a
 * model at load (~5e9 values), so the per-value loops are branch-free selects and integer ops that the
 * compiler turns into SIMD (this file is built with -fno-trapping-math, which lets GCC turn
 * the float selects into blends; it changes no result); the caller threads over rows if it
 * wants more. */
#include "vkc_quant.h"
#include "vkc_half.h"
#include <glib.h>
#include <math.h>
#include <string.h>

#define F16_MAX 65504.0f

void
vkc_quantize_q8_0 (const float *src, int64_t n, uint32_t *dst)
{
  g_return_if_fail (n >= 0 && n % VKC_Q8_0_BLOCK == 0);
  for (int64_t b = 0; b < n / VKC_Q8_0_BLOCK; b++) {
    const float *x = src + b * VKC_Q8_0_BLOCK;
    uint32_t *out = dst + b * VKC_Q8_0_BLOCK_WORDS;

    /* max |x| over the finite values, on the bit patterns: for non-negative finite floats
     * they order as the values do, and NaN / inf (exponent all ones) are dropped as 0. An
     * unsigned max reduction vectorises where a float one with NaN rules does not. */
    uint32_t amax_bits = 0;
    for (int j = 0; j < VKC_Q8_0_BLOCK; j++) {
      uint32_t u;
      memcpy (&u, &x[j], 4);
      u &= 0x7fffffffu;
      u = u < 0x7f800000u ? u : 0;
      amax_bits = u > amax_bits ? u : amax_bits;
    }
    float amax;
    memcpy (&amax, &amax_bits, 4);
    float d = amax / 127.0f;
    d = d > F16_MAX ? F16_MAX : d;          /* keep the stored scale finite */
    float id = d != 0.0f ? 1.0f / d : 0.0f; /* ggml multiplies by 1/d, not x/d */

    int32_t q[VKC_Q8_0_BLOCK];
    for (int j = 0; j < VKC_Q8_0_BLOCK; j++) {
      float v = x[j] * id;
      v = v == v ? v : 0.0f; /* NaN (also 0·inf of a tiny d) → 0 */
      v = v > 127.0f ? 127.0f : v;
      v = v < -127.0f ? -127.0f : v;
      /* roundf without the libm call, so the loop vectorises: truncate (exact, |v| ≤ 127),
       * then step away from zero when the dropped fraction is at least one half. Adding 0.5
       * before truncating would be wrong for 0.5 − 2⁻²⁵, whose sum rounds up to 1. */
      int32_t i = (int32_t) v;
      float f = v - (float) i; /* exact */
      i += (f >= 0.5f) - (f <= -0.5f);
      q[j] = i;
    }

    out[0] = vkc_f32_to_f16 (d);
    for (int w = 0; w < 8; w++)
      out[1 + w] = ((uint32_t) q[4 * w] & 0xffu) | ((uint32_t) q[4 * w + 1] & 0xffu) << 8 |
                   ((uint32_t) q[4 * w + 2] & 0xffu) << 16 | ((uint32_t) q[4 * w + 3] & 0xffu) << 24;
  }
}

void
vkc_dequantize_q8_0 (const uint32_t *src, int64_t n, float *dst)
{
  g_return_if_fail (n >= 0 && n % VKC_Q8_0_BLOCK == 0);
  for (int64_t b = 0; b < n / VKC_Q8_0_BLOCK; b++) {
    const uint32_t *in = src + b * VKC_Q8_0_BLOCK_WORDS;
    float *y = dst + b * VKC_Q8_0_BLOCK;
    float d = vkc_f16_to_f32 ((uint16_t) (in[0] & 0xffffu));
    for (int j = 0; j < VKC_Q8_0_BLOCK; j++) {
      int32_t q = (int32_t) ((in[1 + j / 4] >> (8 * (j % 4))) & 0xffu);
      q -= (q & 0x80) << 1; /* sign-extend the byte */
      y[j] = d * (float) q;
    }
  }
}

void
vkc_quantize_q4_0 (const float *src, int64_t n, uint32_t *dst)
{
  g_return_if_fail (n >= 0 && n % VKC_Q4_0_BLOCK == 0);
  for (int64_t b = 0; b < n / VKC_Q4_0_BLOCK; b++) {
    const float *x = src + b * VKC_Q4_0_BLOCK;
    uint32_t *out = dst + b * VKC_Q4_0_BLOCK_WORDS;

    /* max |x| over the finite values on the bit patterns, as for q8_0 ... */
    uint32_t abs_bits[VKC_Q4_0_BLOCK], amax_bits = 0;
    for (int j = 0; j < VKC_Q4_0_BLOCK; j++) {
      uint32_t u;
      memcpy (&u, &x[j], 4);
      u &= 0x7fffffffu;
      u = u < 0x7f800000u ? u : 0;
      abs_bits[j] = u;
      amax_bits = u > amax_bits ? u : amax_bits;
    }
    /* ... but q4_0 keeps the sign of that value, and ggml's strict `amax < |x|` scan keeps the
     * first of equal magnitudes: +a before −a gives d < 0, −a before +a d > 0. The first index
     * is a min reduction (vectorises; a scan with a break would not). A block without a finite
     * non-zero value keeps ggml's initial max = +0. */
    int first = VKC_Q4_0_BLOCK;
    for (int j = 0; j < VKC_Q4_0_BLOCK; j++) {
      int i = abs_bits[j] == amax_bits ? j : VKC_Q4_0_BLOCK;
      first = i < first ? i : first;
    }
    uint32_t max_bits = amax_bits;
    if (amax_bits) {
      uint32_t u;
      memcpy (&u, &x[first], 4);
      max_bits |= u & 0x80000000u;
    }
    float max;
    memcpy (&max, &max_bits, 4);
    float d = max / -8.0f;
    /* f16 (d) would be infinite from 65520 up (ggml stores inf there); saturate instead. Below,
     * the id from the unrounded d is ggml's, whatever the half rounds to. */
    if (!(fabsf (d) < 65520.0f))
      d = d < 0.0f ? -F16_MAX : F16_MAX;
    float id = d != 0.0f ? 1.0f / d : 0.0f;

    uint32_t q[VKC_Q4_0_BLOCK];
    for (int j = 0; j < VKC_Q4_0_BLOCK; j++) {
      float v = x[j] * id;
      float t = v + 8.5f;    /* rounded, as ggml's fp32 sum */
      t = t == t ? t : 8.0f; /* NaN (also inf·0, 0·inf) → 8: value 0 */
      /* Finite input gives t ∈ [0.5 − ε, 16.5 + ε]: the low clamp changes nothing there (it
       * truncates to 0 either way) and the high one is ggml's min (15, ·), which commutes with
       * truncation; both keep ±inf (and a saturated scale's overflow) a defined conversion. */
      t = t < 0.0f ? 0.0f : t;
      t = t > 15.0f ? 15.0f : t;
      q[j] = (uint32_t) (int32_t) t; /* truncation toward zero, as ggml's cast */
    }

    out[0] = vkc_f32_to_f16 (d);
    for (int w = 0; w < 4; w++) {
      uint32_t word = 0;
      for (int i = 0; i < 4; i++) /* byte 4w+i: q[4w+i] low, q[4w+i+16] high */
        word |= (q[4 * w + i] | q[4 * w + i + 16] << 4) << (8 * i);
      out[1 + w] = word;
    }
  }
}

void
vkc_dequantize_q4_0 (const uint32_t *src, int64_t n, float *dst)
{
  g_return_if_fail (n >= 0 && n % VKC_Q4_0_BLOCK == 0);
  for (int64_t b = 0; b < n / VKC_Q4_0_BLOCK; b++) {
    const uint32_t *in = src + b * VKC_Q4_0_BLOCK_WORDS;
    float *y = dst + b * VKC_Q4_0_BLOCK;
    float d = vkc_f16_to_f32 ((uint16_t) (in[0] & 0xffffu));
    for (int j = 0; j < VKC_Q4_0_BLOCK / 2; j++) {
      uint32_t byte = (in[1 + j / 4] >> (8 * (j % 4))) & 0xffu;
      y[j] = (float) ((int32_t) (byte & 0xfu) - 8) * d;
      y[j + 16] = (float) ((int32_t) (byte >> 4) - 8) * d;
    }
  }
}

void
vkc_quantize (VkcDType t, const float *src, int64_t n, uint32_t *dst)
{
  switch (t) {
  case VKC_Q8_0: vkc_quantize_q8_0 (src, n, dst); return;
  case VKC_Q4_0: vkc_quantize_q4_0 (src, n, dst); return;
  default: g_critical ("vkc_quantize: %s is no block type", vkc_dtype_name (t));
  }
}

void
vkc_dequantize (VkcDType t, const uint32_t *src, int64_t n, float *dst)
{
  switch (t) {
  case VKC_Q8_0: vkc_dequantize_q8_0 (src, n, dst); return;
  case VKC_Q4_0: vkc_dequantize_q4_0 (src, n, dst); return;
  default: g_critical ("vkc_dequantize: %s is no block type", vkc_dtype_name (t));
  }
}
