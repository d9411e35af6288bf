/* dtype conversion between f32, f16 and bf16, and rounding f32 through bf16. Tensors larger
 * than one storage binding are converted in pieces. */
#pragma once
#include "vkc.h"

G_BEGIN_DECLS

/* dst = src converted to dst's dtype. Both contiguous, same element count. */
void vkc_op_convert (VkcCmd *cmd, const VkcTensor *dst, const VkcTensor *src);
/* dst = bf16(src) kept in f32 storage (both f32; may be the same tensor). */
void vkc_op_round_bf16 (VkcCmd *cmd, const VkcTensor *dst, const VkcTensor *src);

/* For tests: split bindings larger than `bytes` (0 = the device's maxStorageBufferRange). */
void vkc_convert_set_binding_limit (VkDeviceSize bytes);

G_END_DECLS
