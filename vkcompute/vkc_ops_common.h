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
