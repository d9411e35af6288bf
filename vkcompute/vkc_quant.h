/* Block quantization of weights on the host (the GPU side is in the linear shaders).
 *
 * Both formats are ggml's, with the same scale d (an IEEE half) and the same quants, so that
 * GGUF blocks map onto ours by moving bytes: ggml stores d in 2 bytes ahead of the quants, we
 * widen it to a 32-bit word so that the quants start word-aligned for the shaders.
 *
 * q8_0, ggml's format: blocks of 32 consecutive values, each stored as one f16 scale d and 32
 * int8 quants q (value = d·q), 36 bytes. In memory (and on the GPU) a block is 9 little-endian
 * 32-bit words: word 0 holds the IEEE half d in bits 0–15 (bits 16–31 zero), words 1..8 the
 * quants, q[4i+j] in byte j of word 1+i (two's complement). Blocks of a row follow each
 * other; a VKC_Q8_0 tensor [N, K] is N·K/32 such blocks, row after row. */
#pragma once
#include <stdint.h>
#include "vkc.h"

#define VKC_Q8_0_BLOCK 32       /* values per block */
#define VKC_Q8_0_BLOCK_BYTES 36 /* bytes per block (9 words) */
#define VKC_Q8_0_BLOCK_WORDS 9

/* q4_0, ggml's format: blocks of 32 consecutive values, each stored as one f16 scale d and 32
 * unsigned 4-bit quants q (value = (q − 8)·d), 20 bytes. A block is 5 little-endian 32-bit
 * words: word 0 holds the IEEE half d in bits 0–15 (bits 16–31 zero), words 1..4 the 16 bytes
 * of ggml's qs in order, byte i (= byte i % 4 of word 1 + i/4) holding q[i] in its low nibble
 * and q[i + 16] in its high nibble. A VKC_Q4_0 tensor [N, K] is N·K/32 such blocks. */
#define VKC_Q4_0_BLOCK 32       /* values per block */
#define VKC_Q4_0_BLOCK_BYTES 20 /* bytes per block (5 words) */
#define VKC_Q4_0_BLOCK_WORDS 5

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

/* Quantize n values (n % 32 == 0) into n/32 blocks at dst (n/32·5 words), exactly as ggml's
 * quantize_row_q4_0_ref: per block max = the FIRST value of largest |x| (sign kept: a block
 * whose extremes are +a and −a takes the sign of the earlier one), d = max / −8,
 * id = 1/d (0 when d == 0), q = min(15, trunc(fl(fl(x·id) + 8.5))) — the product and the sum
 * each rounded to fp32, never fused (vkcompute/CMakeLists.txt builds this file with
 * -ffp-contract=off) — and the stored scale is f16(d) rounded to nearest even. So the value
 * max quantizes to 0 (−8·d = max) and −max clamps from 16 to 15 (7·d). A block of zeros has
 * max = +0 and so d = −0: f16 0x8000, quants 8, values −0, as ggml gives.
 * Error, with d the unrounded scale and dh = f16(d), v = x/d ∈ [−8, 8]:
 * |x − (q − 8)·dh| ≤ |d|·(max(1/2, v − 7) + 4e-6) + 8·|d − dh| — half a step everywhere except
 * on the far side of the max (v > 7.5, x within 1/16 of −max), where the clamp at 15 allows up to
 * one step |d| (reached by x = −max); 4e-6 covers the fp32 roundings of x·id and of + 8.5.
 * Non-finite input (ggml leaves it undefined; here it is defined and never UB): NaN and ±inf
 * are left out of max; a NaN value quantizes to 8 (value ±0) and ±inf to the end of the range
 * of its sign (q = 0 or 15: value max, or −7/8·max); in a block with no finite non-zero value
 * they quantize to 8. A scale whose half would be infinite (|max| ≥ 8·65520) saturates at
 * ±65504 (the values then clamp to q = 0 or 15); every stored scale is finite. In a tiny block
 * (|d| < 2⁻¹²⁸, 1/d infinite) non-zero values quantize to 0 or 15 and zeros to 8; its f16(d)
 * is ±0, so every value is ±0 anyway.
 * Thread-safe (no state); plain C that the compiler vectorises. */
void vkc_quantize_q4_0 (const float *src, int64_t n, uint32_t *dst);

/* The inverse: n values (n % 32 == 0) from n/32 blocks, (q − 8)·d as ggml's dequantize_row_q4_0
 * computes it (an integer times d: exact in fp32, so these are exactly the shaders' values). */
void vkc_dequantize_q4_0 (const uint32_t *src, int64_t n, float *dst);

/* The (de)quantizer of a block type (vkc_dtype_block (t) > 1), for code that handles any of
 * them; a critical warning and nothing done for a plain dtype. */
void vkc_quantize (VkcDType t, const float *src, int64_t n, uint32_t *dst);
void vkc_dequantize (VkcDType t, const uint32_t *src, int64_t n, float *dst);

#ifdef __cplusplus
}
#endif
