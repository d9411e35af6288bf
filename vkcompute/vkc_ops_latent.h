/* Latent-space helpers of a VAE: sampling the diagonal-Gaussian posterior into the diffusion
 * model's latent space, and blending overlapping NHWC tiles (tiled decoding / encoding).
 *
 * Both ops take f32 NHWC tensors ([B, H, W, C], channels contiguous). */
#pragma once
#include "vkc.h"

G_BEGIN_DECLS

typedef struct {
  float logvar_min, logvar_max; /* clamp of the log-variance before exp */
  float shift, scale;           /* y = (z − shift) · scale */
  /* Round every intermediate to bf16, in the order PyTorch's bf16 ops do:
   * std = bf16(exp(½·lv)), z = bf16(mean + bf16(std·ε)), y = bf16(bf16(z − shift)·scale). */
  bool round_bf16;
} VkcGaussianLatentParams;

/* y = ((mean + exp(½·clamp(logvar)) · ε) − shift) · scale, or with ε NULL the posterior mean:
 * y = (mean − shift) · scale.
 *  moments [B, H, W, 2C] contiguous: mean = channels 0..C−1, logvar = channels C..2C−1;
 *  eps [B, H, W, C] contiguous or NULL; y [B, H, W, C] contiguous, not overlapping the inputs.
 * Every tensor must fit one storage binding (latents are small: 8× below the image). */
void vkc_op_gaussian_latent (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *moments, const VkcTensor *eps,
                             const VkcGaussianLatentParams *p);

/* Weight profile of a tile along one axis, in tile-local pixels: 0 before in_start, rising
 * linearly over [in_start, in_start + in_len), 1 until out_start, falling linearly over
 * [out_start, out_start + out_len), 0 after. The rise of one tile and the fall of its
 * neighbour over the same pixels sum to exactly 1 (w = (k + ½)/len and 1 − w), so overlapping
 * tiles blend into a partition of unity. A length of 0 makes a step: in_len = 0 gives 0 before
 * in_start and 1 from it on, out_len = 0 gives 1 before out_start and 0 from it on. A tile
 * side without a neighbour: in_start = in_len = 0, or out_start = tile size, out_len = 0. */
typedef struct {
  int in_start, in_len;
  int out_start, out_len;
} VkcTileRamp;

/* y[b, y0 + i, x0 + j, c] += wy(i) · wx(j) · t[b, i, j, c] for the whole tile
 * t [B, th, tw, C] (any strides, channels contiguous), y [B, H, W, C] (likewise) with the
 * tile inside it. Tensors larger than one binding are processed in bands of rows. */
void vkc_op_blend_tile (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *t, int64_t y0, int64_t x0,
                        const VkcTileRamp *ry, const VkcTileRamp *rx);

/* For tests: split bindings larger than `bytes` (0 = the device's maxStorageBufferRange). */
void vkc_latent_set_binding_limit (VkDeviceSize bytes);

G_END_DECLS
