/* Host-side q8_0 quantization (format in vkc_quant.h). Runs over every weight of a model at
 * load (~5e9 values), so the per-value loops are branch-free selects and integer ops that the
 * compiler turns into SIMD (this file is built with -fno-trapping-math, which lets GCC turn
 * the float selects into blends; it changes no result); the caller threads over rows if it
 * wants more. */
#include "vkc_quant.h"
#include "vkc_half.h"
#include <glib.h>
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
    d = d > F16_MAX ? F16_MAX : d;                   /* keep the stored scale finite */
    float id = d != 0.0f ? 1.0f / d : 0.0f;          /* ggml multiplies by 1/d, not x/d */

    int32_t q[VKC_Q8_0_BLOCK];
    for (int j = 0; j < VKC_Q8_0_BLOCK; j++) {
      float v = x[j] * id;
      v = v == v ? v : 0.0f;                         /* NaN (also 0·inf of a tiny d) → 0 */
      v = v > 127.0f ? 127.0f : v;
      v = v < -127.0f ? -127.0f : v;
      /* roundf without the libm call, so the loop vectorises: truncate (exact, |v| ≤ 127),
       * then step away from zero when the dropped fraction is at least one half. Adding 0.5
       * before truncating would be wrong for 0.5 − 2⁻²⁵, whose sum rounds up to 1. */
      int32_t i = (int32_t) v;
      float f = v - (float) i;                       /* exact */
      i += (f >= 0.5f) - (f <= -0.5f);
      q[j] = i;
    }

    out[0] = vkc_f32_to_f16 (d);
    for (int w = 0; w < 8; w++)
      out[1 + w] = ((uint32_t) q[4 * w] & 0xffu) | ((uint32_t) q[4 * w + 1] & 0xffu) << 8
                 | ((uint32_t) q[4 * w + 2] & 0xffu) << 16 | ((uint32_t) q[4 * w + 3] & 0xffu) << 24;
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
      q -= (q & 0x80) << 1;                          /* sign-extend the byte */
      y[j] = d * (float) q;
    }
  }
}
