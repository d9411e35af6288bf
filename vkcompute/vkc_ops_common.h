/* Helpers shared by the op launchers (vkc_ops_*.c). Not part of the public API. */
#pragma once
#include "vkc.h"
#include "vkc_shader_tables.h" /* generated: the variants chosen by parameters (shaders/<op>.cmake) */

/* A 1-D problem of n invocations with workgroups of `local` threads, laid out as a 2-D grid
 * so that it never exceeds maxComputeWorkGroupCount[0] (65535 guaranteed). Shaders rebuild
 * the linear index as (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * local +
 * gl_LocalInvocationID.x and return when it is >= n. */
static inline void
vkc_grid_1d (uint64_t n, uint32_t local, uint32_t *gx, uint32_t *gy)
{
  uint64_t groups = (n + local - 1) / local;
  if (groups == 0)
    groups = 1;
  if (groups <= 65535) {
    *gx = (uint32_t) groups;
    *gy = 1;
    return;
  }
  *gx = 65535;
  *gy = (uint32_t) ((groups + 65534) / 65535);
}

/* Assert helpers for launchers: shapes are a caller contract. */
#define VKC_CHECK_SAME_SHAPE(a, b)                                                               \
  do {                                                                                           \
    g_assert_cmpint ((a)->ndim, ==, (b)->ndim);                                                  \
    for (int _d = 0; _d < (a)->ndim; _d++) g_assert_cmpint ((a)->shape[_d], ==, (b)->shape[_d]); \
  } while (0)

/* The register-blocked scalar kernels' tiles, one rule for linear_blocked.comp and
 * conv2d_blocked.comp (specialization constants 0..5: workgroup size, BM, BN, BK = 32, TM, TN): each invocation keeps TM×TN outputs (groups of 4×4) in registers.
 *  - large  128×128, 8×8 per invocation, 256 invocations: for M and N ≥ 512 (rows or pixels, output channels) on devices with
 *    subgroups of ≥ 32 (NVIDIA, AMD): each 16-byte shared load feeds 32 FMAs; 64 accumulators fit
 *    their 255-register (NVIDIA) / 256-VGPR (AMD) budget with room for two workgroups per SM/CU;
 *  - medium 64×64, 4×4 per invocation, 256 invocations: the default, and every size on devices
 *    with narrower subgroups (Intel's 8–16-wide SIMD has a smaller register file per lane);
 *  - small  32×64, 4×4, 128 invocations: for M ≤ 64, so few rows still make many workgroups.
 * Every workgroup size is a multiple of 64, hence of every subgroup size. Shared memory is
 * 32·(BM/4 + 1 + BN/4 + 1) vec4s: 33 KiB in fp32 / 16.5 KiB in fp16 for the large tile, 8.5 / 4.3
 * KiB for the medium one, plus `per_row` bytes per tile row (the conv's per-pixel table); a tile
 * that does not fit steps down to the next. Not tuned on lavapipe. */
typedef struct {
  const char *name;
  uint32_t bm, bn, tm, tn;
} VkcBlockedTile;
typedef struct {
  VkcBlockedTile t;
  uint32_t wg, shared;
  const char *why; /* why this tile */
} VkcBlockedPlan;
#define VKC_BLOCKED_BK 32
/* `forced`: 0 (chosen from M, N and the device) or one of these (where it fits). TEST_8X8 is
 * never chosen: 64×64 with the large tile's 8×8 per invocation (64 invocations, 17 KiB), so that
 * the tests run the 8×8 micro-tile code on lavapipe, whose 32 KiB of shared memory the large
 * tile exceeds. */
enum { VKC_BLOCKED_TILE_LARGE = 1, VKC_BLOCKED_TILE_MEDIUM, VKC_BLOCKED_TILE_SMALL, VKC_BLOCKED_TILE_TEST_8X8 };
/* The tile for an M×N output; false when none fits the device (vkc_ops_linear.c). */
bool vkc_blocked_pick (const VkcDeviceInfo *info, int64_t M, int64_t N, bool half, uint32_t per_row, int forced,
                       VkcBlockedPlan *out);
/* DEEPGEN_VK_DISABLE_BLOCKED=1: AUTO takes neither blocked kernel (linear nor conv). */
bool vkc_blocked_switched_off (void);
