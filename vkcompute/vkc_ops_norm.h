/* Normalisations on f32 activations, statistics in fp32: LayerNorm, RMSNorm, per-head
 * RMSNorm (q/k norm) and GroupNorm over NHWC images (optionally fused with SiLU).
 *
 * x and y are f32 with a contiguous last dim and any leading strides (views with a row
 * stride are fine); y may be the same view as x (in place). Affine parameters are 1-D,
 * contiguous, f32, f16 or bf16 (weight and bias of one op in the same dtype), and optional
 * (NULL). Large tensors are split into dispatches that fit maxStorageBufferRange (see
 * vkc_eltwise_set_binding_limit for the test override).
 */
#pragma once
#include "vkc.h"

G_BEGIN_DECLS

typedef enum {
  VKC_NORM_DEFAULT = 0,
  /* bf16 activations. RMSNorm: the Qwen2 / diffusers rule y = bf16(w · bf16(x̂)) — normalise in
   * fp32, round to bf16, multiply by the weight, round again (MODEL.md §2.1). LayerNorm and
   * GroupNorm: round the result once, like PyTorch's bf16 kernels (and again after SiLU). */
  VKC_NORM_ROUND_BF16 = 1 << 0,
  /* GroupNorm only: y = silu(GN(x)) (every VAE GroupNorm but the attention's). */
  VKC_NORM_SILU = 1 << 1,
} VkcNormFlags;

/* y = (x − mean) / sqrt(var + eps) [· weight] [+ bias] over the last dim (biased variance). */
void vkc_op_layer_norm (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *weight,
                        const VkcTensor *bias, float eps, VkcNormFlags flags);
/* y = x / sqrt(mean(x²) + eps) [· weight] over the last dim. */
void vkc_op_rms_norm (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *weight, float eps,
                      VkcNormFlags flags);
/* RMSNorm of every head: x, y [..., H·head_dim] (up to 3-D, e.g. a [B, N, H·D] column slice
 * of a fused QKV tensor), weight [head_dim] shared by all heads. */
void vkc_op_head_rms_norm (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *weight,
                           int64_t head_dim, float eps, VkcNormFlags flags);

/* How the row norms above sum a row across their workgroup: subgroup arithmetic where the
 * device has it in compute shaders with subgroups of at least 4 lanes, else through shared
 * memory only. Both accumulate in fp32 (in different orders, so results may differ in the
 * last bits; each is deterministic). The environment variable DEEPGEN_VK_DISABLE_SUBGROUP=1
 * turns the subgroup reduction off (debugging kill switch). GroupNorm uses no subgroups. */
typedef enum {
  VKC_NORM_REDUCE_SUBGROUP,
  VKC_NORM_REDUCE_SHARED,
} VkcNormReduction;

typedef struct {
  bool no_subgroup; /* shared-memory reduction even where subgroup arithmetic exists */
} VkcNormOptions;

#define VKC_NORM_OPTIONS_DEFAULT { false }

/* The row norms with options (NULL = defaults); they return the reduction their dispatches
 * use (also when there is nothing to dispatch), so tests can tell which variant ran. */
VkcNormReduction vkc_op_layer_norm_ex (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *weight,
                                       const VkcTensor *bias, float eps, VkcNormFlags flags, const VkcNormOptions *opt);
VkcNormReduction vkc_op_rms_norm_ex (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *weight,
                                     float eps, VkcNormFlags flags, const VkcNormOptions *opt);
VkcNormReduction vkc_op_head_rms_norm_ex (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *weight,
                                          int64_t head_dim, float eps, VkcNormFlags flags, const VkcNormOptions *opt);

/* GroupNorm over NHWC images: x, y [B, H, W, C] (or [H, W, C]); `groups` (<= 256) divides C;
 * the statistics of (image, group) run over H·W·C/groups values. Needs a scratch f32 tensor
 * of at least vkc_group_norm_scratch_elems(dev, y, x, groups) elements (contiguous, not
 * overlapping x or y) for the partial statistics of the two-pass reduction; the count depends
 * on how the op must split x and y for the binding limit, hence the same y and x. About
 * B·groups·(3·H·W·C/32768 + 5) elements. */
int64_t vkc_group_norm_scratch_elems (VkcDevice *dev, const VkcTensor *y, const VkcTensor *x, int groups);
void vkc_op_group_norm (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *weight,
                        const VkcTensor *bias, int groups, float eps, VkcNormFlags flags, const VkcTensor *scratch);

G_END_DECLS
