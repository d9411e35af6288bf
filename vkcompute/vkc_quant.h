/* Block quantization of weights on the host (the GPU side is in the linear shaders).
 *
 * q8_0, ggml's format: blocks of 32 consecutive values, each stored as one f16 scale d and 32
 * int8 quants q (value = d·q), 36 bytes. In memory (and on the GPU) a block is 9 little-endian
 * 32-bit words: word 0 holds the IEEE half d in bits 0–15 (bits 16–31 zero), words 1..8 the
 * quants, q[4i+j] in byte j of word 1+i (two's complement). Blocks of a row follow each
 * other; a VKC_Q8_0 tensor [N, K] is N·K/32 such blocks, row after row. */
#pragma once
#include <stdint.h>

#define VKC_Q8_0_BLOCK 32        /* values per block */
#define VKC_Q8_0_BLOCK_BYTES 36  /* bytes per block (9 words) */
#define VKC_Q8_0_BLOCK_WORDS 9

#ifdef __cplusplus
extern "C" {
#endif

/* Quantize n values (n % 32 == 0) into n/32 blocks at dst (n/32·9 words), exactly as ggml's
 * quantize_row_q8_0_ref: per block amax = max |x|, d = amax/127, id = 1/d (0 when d == 0),
 * q = round-half-away-from-zero(x·id), and the stored scale is f16(d) rounded to nearest even.
 * Since q is computed from the unrounded d, |x − f16(d)·q| ≤ d/2 + 127·|d − f16(d)| (up to
 * fp32 rounding of x·id).
 * Non-finite input (ggml leaves it undefined; here it is defined and never UB): NaN and ±inf
 * are left out of amax; a NaN value quantizes to 0 and ±inf to ±127 (so it dequantizes to
 * ±amax of the finite values). A scale above the largest half (amax > 65504·127 ≈ 8.3e6)
 * saturates at 65504 instead of becoming infinite, so such a block clamps at ±65504·127; every
 * stored scale is finite. Thread-safe (no state); plain C that the compiler vectorises. */
void vkc_quantize_q8_0 (const float *src, int64_t n, uint32_t *dst);

/* The inverse: n values (n % 32 == 0) from n/32 blocks. d·q is exact in fp32 (an 11-bit by
 * 8-bit product), so this gives exactly the values the shaders use. */
void vkc_dequantize_q8_0 (const uint32_t *src, int64_t n, float *dst);

#ifdef __cplusplus
}
#endif
