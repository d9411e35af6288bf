/* 2-D convolutions and nearest ×2 upsampling over NHWC activations.
 *
 * Activations are f32, NHWC: x [B, H, W, C] (or [H, W, C] for one image), channels
 * contiguous (stride 1); the other strides may be anything (views). Weights are f32, f16 or
 * bf16 in the layout [Cout, kh, kw, Cin] (contiguous) — vkc_conv_weight_from_torch makes it
 * from PyTorch's [Cout, Cin, kh, kw]. Bias is f32 [Cout] or NULL. Accumulation is fp32.
 * The output must not overlap the input (no in-place convolution).
 *
 * Convs with Cout ≤ 16 use a 128-pixel × 16-channel tile instead of 64 × 64
 * (DEEPGEN_VK_DISABLE_CONV_THIN=1 turns that off for debugging).
 *
 * Tensors larger than maxStorageBufferRange are handled here: the work is split into bands of
 * output rows, each binding only the input rows it reads (NHWC makes a band of rows one
 * contiguous range per image). */
#pragma once
#include "vkc.h"

G_BEGIN_DECLS

/* Geometry of a convolution. The output size is
 *   Ho = (Hin + pad_top + pad_bottom − kh) / stride + 1   (likewise Wo),
 * with Hin = 2H when `upsample2` (the conv then reads the nearest ×2 upsampled input without
 * it being stored). */
typedef struct {
  int kh, kw;
  int stride;
  int pad_top, pad_left, pad_bottom, pad_right;
  bool upsample2;
} VkcConv2dGeom;

/* y = conv(x, w) + bias with any geometry above (kh·kw·Cin > 0). */
void vkc_op_conv2d (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w, const VkcTensor *bias,
                    const VkcConv2dGeom *geom);

/* 3×3, stride 1, zero padding 1: y [B, H, W, Cout] (VAE resnet conv1/conv2, conv_in/out). */
void vkc_op_conv2d_3x3 (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w, const VkcTensor *bias);
/* Nearest ×2 upsample then 3×3 stride 1 pad 1, fused: y [B, 2H, 2W, Cout] (VAE Upsample). */
void vkc_op_conv2d_3x3_up2 (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w,
                            const VkcTensor *bias);
/* Zero padding right and bottom by 1, then 3×3 stride 2 (VAE Downsample, pad (0,1,0,1)):
 * y [B, (H−2)/2+1, (W−2)/2+1, Cout], i.e. H/2 for even H. */
void vkc_op_conv2d_3x3_s2 (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w,
                           const VkcTensor *bias);
/* 1×1 (VAE conv_shortcut): y [B, H, W, Cout]. */
void vkc_op_conv2d_1x1 (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w, const VkcTensor *bias);
/* 2×2 stride 2 patch embedding (DiT pos_embed.proj): x [B, h, w, Cin] with even h, w.
 * y is either [B, h/2, w/2, Cout] or the token tensor [B, (h/2)·(w/2), Cout] (3-D; tokens in
 * row-major order) — the same memory. */
void vkc_op_conv2d_patch2 (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w,
                           const VkcTensor *bias);

/* Nearest-neighbour ×2 upsample: y [B, 2H, 2W, C] = x [B, H, W, C] repeated. */
void vkc_op_upsample_nearest2 (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x);

/* Permute a PyTorch conv weight [Cout, Cin, kh, kw] into [Cout, kh, kw, Cin]; elements of
 * `elem_size` bytes (2 or 4: any dtype, bits copied). dst and src must not overlap. */
void vkc_conv_weight_from_torch (void *dst, const void *src, size_t elem_size, int64_t cout, int64_t cin, int64_t kh,
                                 int64_t kw);

/* Which kernel the convolutions take: 0 = auto, 1 = the scalar tiled kernel (conv2d.comp, the
 * reference), 2 = the cooperative-matrix implicit GEMM (conv2d_coopmat.comp) where the device has
 * it, else as auto, 3 = the register-blocked scalar implicit GEMM (conv2d_blocked.comp) where it
 * passed its self-check (process-wide; tests and benchmarks). AUTO takes coopmat on GPUs with usable cooperative matrices for f16/bf16
 * weights — f32 weights ask for fp32 products — after a one-time self-check against the scalar
 * kernel (vkc.h); not on CPU devices unless DEEPGEN_VK_FORCE_COOPMAT=1. x and w are rounded to
 * fp16, sums are fp32, and tiles with inputs beyond fp16's range are computed in fp32.
 * Elsewhere AUTO takes the blocked kernel (fp32 tiles, the blocked GEMM's tile rule, the same
 * bits as conv2d.comp where fma() stays fused) after its one-time self-check against
 * conv2d.comp (vkc.h), except for Cout ≤ 16 (the thin tile above); DEEPGEN_VK_DISABLE_BLOCKED=1
 * keeps AUTO on conv2d.comp. */
void vkc_conv_set_path (int path);
/* Tests and the self-check: the blocked kernel's tile, 0 = chosen from the shape and device, else
 * 1 / 2 / 3 = large / medium / small, 4 = 64×64 with 8×8 per invocation (tests only: the large
 * tile's micro-tile on devices the large tile does not fit); where it fits the device. */
void vkc_conv_set_blocked_tile (int tile);
/* Runs the self-checks of the conv fast paths AUTO would take (each weight type) now, rather
 * than at their first use inside a recording. */
void vkc_conv_selfcheck_all (VkcDevice *dev);
/* The path vkc_op_conv2d takes for weights of type wt on this device, and why, in one line. */
char *vkc_conv_describe (VkcDevice *dev, VkcDType wt);

/* Testing hook: treat bindings larger than `bytes` as too large (0 = the device's
 * maxStorageBufferRange), so that the band-splitting path runs on small tensors. Applies to
 * the launchers of this file, process-wide. */
void vkc_conv_set_binding_limit (VkDeviceSize bytes);

G_END_DECLS
