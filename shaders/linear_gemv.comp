#version 450
// y[M, N] (+)= x[M, K] · W[N, K]ᵀ (+ b) for M ≤ ROWS ≤ 8 rows (pooled vectors, timestep
// embeddings, single tokens): bandwidth-bound, so every weight is read once and used for all
// M rows.
//
// One workgroup computes NR consecutive outputs n0..n0+NR-1 for all M rows. Its invocations
// stride over K (neighbours read neighbouring weights: coalesced), accumulate M×NR partial dot
// products in fp32, then reduce them across the workgroup: subgroupAdd and one shared slot per
// subgroup (USE_SUBGROUP), or one shared slot per invocation summed by NR·M invocations
// (fallback for devices without subgroup arithmetic). Both reductions have a fixed order, so
// results are deterministic.
//
// Specialization constants: 0 = workgroup size, 1 = NR, 2 = ROWS (the most rows per dispatch;
// the accumulators are ROWS×NR floats). The launcher only enables USE_SUBGROUP when subgroups
// have at least 4 invocations (the shared array holds WG/4 slots).
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common.glsl"
#include "linear_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint NR = 4;
layout(constant_id = 2) const uint ROWS = 4;

const uint NACC = ROWS * NR;
#ifdef USE_SUBGROUP
shared float red[(gl_WorkGroupSize.x / 4u) * NACC];
#else
shared float red[gl_WorkGroupSize.x * NACC];
#endif

void main()
{
  const uint WG = gl_WorkGroupSize.x;
  uint tid = gl_LocalInvocationID.x;
  uint n0 = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * NR;
  if (n0 >= p.N) return;   // whole workgroup: no barrier is skipped by part of it

  float acc[NACC];
  for (uint i = 0; i < NACC; i++) acc[i] = 0.0;

#ifdef W_BLOCKS
  // One quad (4 weights) per invocation and step; K % 32 == 0, so quads are whole and
  // neighbouring invocations read neighbouring words of the same blocks.
  for (uint k = 4u * tid; k < p.K; k += 4u * WG) {
    vec4 xv[ROWS];
    for (uint r = 0; r < ROWS; r++) {
      xv[r] = vec4(0.0);
      if (r < p.M) {
        uint xi = p.x_off + r * p.ldx + k;
        xv[r] = vec4(xbuf[xi], xbuf[xi + 1u], xbuf[xi + 2u], xbuf[xi + 3u]);
      }
    }
    for (uint j = 0; j < NR; j++) {
      uint n = n0 + j;
      if (n >= p.N) break;
      uint blk = wb_block(n, k);
      vec4 w = wb_quad(blk, k, wb_scale(blk));
      for (uint r = 0; r < ROWS; r++) acc[r * NR + j] += dot(xv[r], w);
    }
  }
#else
#if W_T != DTYPE_F32
  if ((p.flags & LINEAR_W_PAIRS) != 0u) {
    for (uint k = 2u * tid; k < p.K; k += 2u * WG) {
      bool two = k + 1u < p.K;
      vec2 xv[ROWS];
      for (uint r = 0; r < ROWS; r++) {
        xv[r] = vec2(0.0);
        if (r < p.M) {
          uint xi = p.x_off + r * p.ldx + k;
          xv[r].x = xbuf[xi];
          if (two) xv[r].y = xbuf[xi + 1u];
        }
      }
      for (uint j = 0; j < NR; j++) {
        uint n = n0 + j;
        if (n >= p.N) break;
        uint e = p.w_off + n * p.ldw + k;   // even by LINEAR_W_PAIRS
        vec2 w = two ? load_w2(e) : vec2(load_w(e), 0.0);
        for (uint r = 0; r < ROWS; r++) acc[r * NR + j] += dot(xv[r], w);
      }
    }
  } else
#endif
  {
    for (uint k = tid; k < p.K; k += WG) {
      float xv[ROWS];
      for (uint r = 0; r < ROWS; r++) xv[r] = r < p.M ? xbuf[p.x_off + r * p.ldx + k] : 0.0;
      for (uint j = 0; j < NR; j++) {
        uint n = n0 + j;
        if (n >= p.N) break;
        float w = load_w(p.w_off + n * p.ldw + k);
        for (uint r = 0; r < ROWS; r++) acc[r * NR + j] = fma(xv[r], w, acc[r * NR + j]);
      }
    }
  }
#endif

#ifdef USE_SUBGROUP
  for (uint i = 0; i < NACC; i++) {
    float s = subgroupAdd(acc[i]);
    if (subgroupElect()) red[gl_SubgroupID * NACC + i] = s;
  }
  barrier();
  uint nslots = gl_NumSubgroups;
#else
  for (uint i = 0; i < NACC; i++) red[tid * NACC + i] = acc[i];
  barrier();
  uint nslots = WG;
#endif
  if (tid < NACC) {
    uint r = tid / NR, j = tid % NR;
    if (r < p.M && n0 + j < p.N) {
      float s = 0.0;
      for (uint t = 0; t < nslots; t++) s += red[t * NACC + tid];
      store_y(r, n0 + j, s);
    }
  }
}
