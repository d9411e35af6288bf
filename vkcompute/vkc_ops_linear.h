/* linear / matmul: y = x·Wᵀ + b with W in PyTorch Linear layout [N, K]. */
#pragma once
#include "vkc.h"

G_BEGIN_DECLS

/* Which kernel runs. AUTO takes the GEMV for at most VKC_LINEAR_GEMV_MAX_ROWS rows (one
 * workgroup per few outputs, reduction over K: bandwidth-bound, weights read once) and the
 * tiled kernel otherwise. The environment variable DEEPGEN_VK_DISABLE_GEMV=1 turns AUTO's GEMV
 * off, DEEPGEN_VK_DISABLE_SUBGROUP=1 the GEMV's subgroup reduction (debugging kill switches). */
typedef enum {
  VKC_LINEAR_AUTO = 0,
  VKC_LINEAR_TILED,
  VKC_LINEAR_GEMV,     /* any M: processed in groups of VKC_LINEAR_GEMV_MAX_ROWS rows */
} VkcLinearKernel;

#define VKC_LINEAR_GEMV_MAX_ROWS 8

typedef struct {
  bool accumulate;           /* y += x·Wᵀ (+ b), e.g. to add a residual in the same pass */
  VkcLinearKernel kernel;
  bool no_subgroup;          /* GEMV: shared-memory reduction even where subgroup ops exist */
  /* Largest binding in bytes before the launcher splits x/y by rows and W (with y and b) by
   * output columns (= rows of W, whole rows of blocks); 0 = the device's maxStorageBufferRange.
   * Tests lower it to exercise the split on small tensors. */
  VkDeviceSize max_binding;
} VkcLinearOptions;

#define VKC_LINEAR_OPTIONS_DEFAULT { false, VKC_LINEAR_AUTO, false, 0 }

/* y = x·Wᵀ + b.
 *  x    [..., K] f32: leading dims flatten to M rows; the last dim is contiguous, the rows may
 *       have any stride (e.g. a channel-slice view) as long as the leading dims flatten;
 *  w    [N, K] f32, f16 or bf16, last dim contiguous, any row stride; or q8_0 / q4_0
 *       (vkc_quant.h), K % 32 == 0, rows contiguous (the only layout of a block type),
 *       dequantized in the kernels;
 *  bias [N] f32 contiguous, or NULL;
 *  y    [..., N] f32 with the same leading dims as x (same row rules); must not overlap x, w
 *       or bias.
 * Accumulation is fp32 in a fixed order (deterministic). Tensors larger than one storage
 * binding are split over several dispatches. */
void vkc_op_linear (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w,
                    const VkcTensor *bias);
/* The same with options (NULL = defaults). */
void vkc_op_linear_ex (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w,
                       const VkcTensor *bias, const VkcLinearOptions *opt);

G_END_DECLS
