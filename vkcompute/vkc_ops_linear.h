/* linear / matmul: y = x·Wᵀ + b with W in PyTorch Linear layout [N, K]. */
#pragma once
#include "vkc.h"

G_BEGIN_DECLS

/* Which kernel runs. AUTO takes the GEMV for at most VKC_LINEAR_GEMV_MAX_ROWS rows (one
 * workgroup per few outputs, reduction over K: bandwidth-bound, weights read once) and the
 * tiled kernel otherwise. The environment variable DEEPGEN_VK_DISABLE_GEMV=1 turns AUTO's GEMV
 * off, DEEPGEN_VK_DISABLE_SUBGROUP=1 the GEMV's subgroup reduction (debugging kill switches). */
/* On devices with usable cooperative matrices (VkcDeviceInfo.cooperative_matrix), AUTO takes
 * the coopmat kernel instead of the tiled one once it passed its self-check (vkc.h): x and W are
 * rounded to fp16, products are summed in fp32 (relative error ~2⁻¹¹ per input instead of fp32's
 * 2⁻²⁴; tests/ops/test_linear_coopmat.c derives the bound). Tiles whose inputs exceed fp16's
 * range (|v| > 65504) are computed in fp32 instead, so no Inf appears that fp32 would not give.
 * AUTO never rounds f32 weights to fp16: f32 weights are the caller's request for fp32 products
 * (the model's fp32 precision mode), forced or not; explicit COOPMAT requests take them.
 * CPU devices (lavapipe) emulate cooperative matrices more slowly than the scalar kernel: AUTO
 * keeps them scalar. DEEPGEN_VK_DISABLE_COOPMAT=1 turns the path off; DEEPGEN_VK_FORCE_COOPMAT=1 makes AUTO take it
 * for every M, GEMV sizes included (testing; explicit TILED / GEMV requests, the reference
 * paths, stay as asked). */
/* Where AUTO does not take cooperative matrices (or the GEMV), it takes the register-blocked
 * scalar kernel (linear_blocked.comp: BK 32, 16-byte loads, 8×8 or 4×4 outputs per invocation,
 * tiles chosen per device) once it passed its self-check against the tiled kernel; with fp32
 * shared tiles its sums are the tiled kernel's (one fp32 FMA chain per output, k in order). On
 * GPUs with shaderFloat16 and non-f32 weights it stages fp16 tiles (BLOCKED_HALF: x and W
 * rounded to fp16 like the coopmat kernels, fp32 products and sums, tiles with inputs beyond
 * fp16's range computed in fp32; tests/ops/test_linear_blocked.c derives the bound); CPU
 * devices (no shared-memory bandwidth to save) and NVIDIA GPUs (slow fp16→fp32 conversion)
 * keep fp32 tiles. Kill switches:
 * DEEPGEN_VK_DISABLE_BLOCKED=1 (back to the tiled kernel), DEEPGEN_VK_DISABLE_FP16_TILES=1
 * (fp32 tiles only). fp32_only requests keep fp32 tiles. */
/* CPU Vulkan devices (VK_PHYSICAL_DEVICE_TYPE_CPU: lavapipe, SwiftShader) take neither for many
 * rows: AUTO takes linear_cpu.comp there (VKC_LINEAR_CPU: each invocation one output column for
 * 16 rows, x rows spread over the 8 SIMD lanes by subgroupShuffle, no shared memory; it needs
 * subgroups of 8 with shuffles; docs/PERF.md),
 * once it passed its self-check against the tiled kernel. Its sums are the tiled kernel's (one
 * fp32 FMA chain per output, k in order). DEEPGEN_VK_DISABLE_CPU_GEMM=1 switches it off (back to
 * the blocked kernel). */
typedef enum {
  VKC_LINEAR_AUTO = 0,
  VKC_LINEAR_TILED,
  VKC_LINEAR_GEMV,    /* any M: processed in groups of VKC_LINEAR_GEMV_MAX_ROWS rows */
  VKC_LINEAR_COOPMAT, /* cooperative matrices; falls back to TILED where the device has none */
  VKC_LINEAR_BLOCKED, /* register-blocked scalar kernel, fp32 shared tiles */
  /* The same with fp16 shared tiles; f32 weights, or a device without shaderFloat16, take
   * BLOCKED instead. */
  VKC_LINEAR_BLOCKED_HALF,
  /* The GEMM shaped for CPU Vulkan devices (linear_cpu.comp): what AUTO takes for many rows on
   * VK_PHYSICAL_DEVICE_TYPE_CPU devices; runs correctly (slowly) anywhere when asked for. */
  VKC_LINEAR_CPU,
} VkcLinearKernel;

#define VKC_LINEAR_GEMV_MAX_ROWS 8

typedef struct {
  bool accumulate; /* y += x·Wᵀ (+ b), e.g. to add a residual in the same pass */
  VkcLinearKernel kernel;
  bool no_subgroup; /* GEMV: shared-memory reduction even where subgroup ops exist */
  /* Largest binding in bytes before the launcher splits x/y by rows and W (with y and b) by
   * output columns (= rows of W, whole rows of blocks); 0 = the device's maxStorageBufferRange.
   * Tests lower it to exercise the split on small tensors. */
  VkDeviceSize max_binding;
  /* Keep this GEMM on the fp32 kernels even where AUTO would take cooperative matrices (a caller
   * that needs fp32 products, or knows its inputs are mostly beyond fp16's range). */
  bool fp32_only;
  /* Tests and the self-check: the blocked kernel's tile, 0 = chosen from the shape and device,
   * else VKC_LINEAR_TILE_LARGE / MEDIUM / SMALL (where it fits the device; else chosen). */
  int blocked_tile;
} VkcLinearOptions;

enum { VKC_LINEAR_TILE_LARGE = 1, VKC_LINEAR_TILE_MEDIUM, VKC_LINEAR_TILE_SMALL };

#define VKC_LINEAR_OPTIONS_DEFAULT { false, VKC_LINEAR_AUTO, false, 0, false, 0 }

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
void vkc_op_linear (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w, const VkcTensor *bias);
/* The same with options (NULL = defaults). */
void vkc_op_linear_ex (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w, const VkcTensor *bias,
                       const VkcLinearOptions *opt);

/* Which kernel and tile AUTO takes for an M×K · (N×K)ᵀ product with weights of type wt on this
 * device, and why, in one line (for `deepgen info`). May run the coopmat self-check. */
char *vkc_linear_describe (VkcDevice *dev, int64_t M, int64_t N, int64_t K, VkcDType wt);

/* Runs now every self-check that AUTO would run on the first product of each weight type (vkc.h,
 * "Fast-path self-checks"), for a caller that counts its memory: their small buffers come and go
 * here, not in the middle of its work. Verdicts are remembered; later calls cost nothing. */
void vkc_linear_selfcheck_all (VkcDevice *dev);

G_END_DECLS
