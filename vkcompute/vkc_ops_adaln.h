/* AdaLN element-wise steps with an exact bf16 mode: modulation x·(1 + scale) + shift and the
 * gated residual x + gate ⊙ v.
 *
 * vkc_op_modulate / vkc_op_gated_add (vkc_ops_eltwise.h) compute these in fp32; a model that
 * emulates a bf16 reference must round after every operation, as PyTorch does on bf16 tensors
 * — rounding once at the end leaves a one-ulp difference on about half of the values, which
 * then grows through every later layer (DiT, MODEL.md §5.4). VKC_ADALN_ROUND_BF16 does the
 * whole torch sequence in one pass:
 *   modulate:  s = bf16(1 + scale);  p = bf16(x·s);  y = bf16(p + shift)
 *   gated add: p = bf16(gate·v);     y = bf16(x + p)
 * (x, scale, shift, gate, v are expected to hold bf16 values; each operation is one IEEE fp32
 * operation then a round to nearest even, so the result is bit-exact with torch.)
 *
 * Shapes: x, y (and v) [B, N, C] or [N, C], f32, channels contiguous, batch and token strides
 * free (token ranges of a larger buffer are fine); scale/shift/gate [B, C] (or [C] for [N, C]),
 * channels contiguous, batch stride free — typically column chunks of a modulation tensor
 * [B, k·C]. y may be the same view as x (in place); otherwise y must not overlap any input.
 * Tensors larger than one storage binding are split by batch row and token range. */
#pragma once
#include "vkc.h"

G_BEGIN_DECLS

typedef enum {
  VKC_ADALN_F32 = 0,        /* plain fp32 arithmetic */
  VKC_ADALN_ROUND_BF16 = 1, /* torch's bf16 rounding after every operation */
} VkcAdalnFlags;

void vkc_op_adaln_modulate (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *scale,
                            const VkcTensor *shift, VkcAdalnFlags flags);
void vkc_op_adaln_gated_add (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *gate,
                             const VkcTensor *v, VkcAdalnFlags flags);

/* For tests: split bindings larger than `bytes` (0 = the device's maxStorageBufferRange).
 * Process-wide. */
void vkc_adaln_set_binding_limit (VkDeviceSize bytes);

G_END_DECLS
