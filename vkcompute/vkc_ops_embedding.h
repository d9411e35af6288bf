/* Embedding gather: rows of a table picked by token ids. */
#pragma once
#include "vkc.h"

G_BEGIN_DECLS

/* y[i, :] = table[ids[i], :].
 *  table [V, D] f32, f16 or bf16, last dim contiguous, any row stride;
 *  ids   any shape, VKC_U32 or VKC_I32, contiguous, numel = rows of y;
 *  y     [..., D] f32: leading dims flatten to rows (row stride allowed, see vkc_op_linear).
 * Out-of-range ids are clamped (negative → 0, ≥ V → V-1): a bad id never reads outside the
 * table; validate ids before the call where a wrong row matters. Tables and outputs larger
 * than one storage binding are gathered in several dispatches. */
void vkc_op_embedding (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *table, const VkcTensor *ids);
/* The same, splitting bindings above `max_binding` bytes (0 = maxStorageBufferRange; tests
 * lower it to exercise the split on small tables). */
void vkc_op_embedding_ex (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *table, const VkcTensor *ids,
                          VkDeviceSize max_binding);

G_END_DECLS
