#version 450
// y[M, N] (+)= x[M, K] · W[N, K]ᵀ (+ b): the GEMM for CPU Vulkan devices (lavapipe/llvmpipe).
// vkc_ops_linear.c takes it only where VkPhysicalDeviceType is CPU, after its self-check against
// linear_tiled.comp; GPUs never run it (linear_tiled.comp / linear_blocked.comp / coopmat).
//
// Shaped for how llvmpipe compiles a compute shader (Mesa gallivm, docs/PERF.md): the
// invocations run as SIMD vectors of 8 lanes (AVX2: one subgroup). Inside a loop, Mesa 22.3
// turns every load from a buffer or shared memory into a loop over the lanes, one scalar load
// and bounds check per lane and component, even where the address is the same for all lanes;
// FMAs on the 8-lane vectors are cheap. So the kernel loads few values and makes each feed many
// FMAs:
//  - each invocation computes one output column n (lanes along n) for RM = RG·8 rows, the
//    accumulators one fp32 vector per row across the lanes;
//  - x: lane l reads rows m0 + g·8 + l (g < RG), four k at a time (16-byte loads where x's rows
//    are aligned, X_VEC4), and subgroupShuffle with a constant lane hands each row's values to
//    all lanes (one vector permute; measured on Mesa 22.3, subgroupBroadcast is several times
//    slower there);
//  - W: each lane reads its own column four k at a time (W_VEC4: four f32, or four f16/bf16 in
//    two words; q8_0 / q4_0 by quads, the block's scale once per 32 k);
//  - no shared memory, no barriers; rows past M and columns past N are clamped for the loads
//    (every load in range, no divergent branch in the loop) and skipped at the store.
// Each output is one fp32 FMA chain over k = 0..K−1 in order, as in linear_tiled.comp: both
// kernels give the same bits wherever the driver keeps fma() fused.
//
// Specialization constants: 0 the workgroup size (columns per workgroup, a multiple of 8), 1 and
// 2 the 16-byte load flags. The launcher requires full subgroups of exactly 8.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#include "common.glsl"
#include "linear_common.glsl"

layout(local_size_x_id = 0) in;
// The launcher's LINEAR_X_VEC4 / LINEAR_W_VEC4 for this dispatch as specialization constants,
// so that the loop holds only the loads it runs (a branch in the loop would run both sides
// masked on llvmpipe).
layout(constant_id = 1) const bool X_VEC4 = false;
layout(constant_id = 2) const bool W_VEC4 = false;
const uint SG = 8u;        // subgroup size (lanes)
const uint RG = 2u;        // row groups of SG rows (3 measured no faster: 16 accumulators fill AVX2's registers)
const uint RM = RG * SG;   // rows per workgroup

layout(set = 0, binding = 0) readonly buffer Xbuf4 { vec4 xbuf4[]; };
#if W_T == DTYPE_F32
layout(set = 0, binding = 1) readonly buffer Wbuf4 { vec4 wbuf4[]; };
#elif W_T == DTYPE_F16 || W_T == DTYPE_BF16
layout(set = 0, binding = 1) readonly buffer Wbuf2 { uvec2 wbuf2[]; };
#endif

// x[row, k..k+3] for k % 4 == 0, k + 3 < K, from the row starting at element e0.
vec4 load_x4(uint e0, uint k)
{
  uint e = e0 + k;
  if (X_VEC4) return xbuf4[e >> 2u];
  return vec4(xbuf[e], xbuf[e + 1u], xbuf[e + 2u], xbuf[e + 3u]);
}

#ifndef W_BLOCKS
// W[n, k..k+3] for k % 4 == 0, k + 3 < K, from the row starting at element e0.
vec4 load_w4(uint e0, uint k)
{
  uint e = e0 + k;
  if (W_VEC4) {
#if W_T == DTYPE_F32
    return wbuf4[e >> 2u];
#else
    uvec2 q = wbuf2[e >> 2u];
    return vec4(unpack_w2(q.x), unpack_w2(q.y));
#endif
  }
  return vec4(load_w(e), load_w(e + 1u), load_w(e + 2u), load_w(e + 3u));
}
#endif

// acc[r] += x[m0 + r, k..k+3] · w, k in order: lane l holds rows g·SG + l in xv[g].
#define FMA4(w)                                                      \
  {                                                                  \
    vec4 xv[RG];                                                     \
    [[unroll]] for (uint g = 0; g < RG; g++) xv[g] = load_x4(xr[g], k); \
    [[unroll]] for (uint g = 0; g < RG; g++) {                       \
      [[unroll]] for (uint l = 0; l < SG; l++) {                     \
        vec4 a = subgroupShuffle(xv[g], l);                          \
        uint r = g * SG + l;                                         \
        acc[r] = fma(a.x, w.x, acc[r]);                              \
        acc[r] = fma(a.y, w.y, acc[r]);                              \
        acc[r] = fma(a.z, w.z, acc[r]);                              \
        acc[r] = fma(a.w, w.w, acc[r]);                              \
      }                                                              \
    }                                                                \
  }

void main()
{
  uint lane = gl_SubgroupInvocationID;
  uint n = gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
  uint m0 = gl_WorkGroupID.y * RM;
  uint nl = min(n, p.N - 1u);   // columns past N read row N−1 of W and store nothing
  // This lane's x rows, m0 + g·SG + lane; rows past M read row M−1 likewise.
  uint xr[RG];
  [[unroll]] for (uint g = 0; g < RG; g++) xr[g] = p.x_off + min(m0 + g * SG + lane, p.M - 1u) * p.ldx;
  float acc[RM];
  [[unroll]] for (uint i = 0; i < RM; i++) acc[i] = 0.0;
#ifdef SELFTEST_DROP_LAST_K
  // A deliberately wrong variant for the self-check's test (vkc_ops_linear.c): the last k
  // (up to 4 of them) are never multiplied.
  uint K = p.K > 4u ? (p.K - 1u) & ~3u : 0u;
#else
  uint K = p.K;
#endif

  uint k = 0;
#ifdef W_BLOCKS
  // K is a multiple of 32: whole blocks, the scale read once per block.
  for (uint k0 = 0; k0 < K; k0 += 32u) {
    uint blk = wb_block(nl, k0);
    float d = wb_scale(blk);
    for (k = k0; k < k0 + 32u; k += 4u) {
      vec4 w = wb_quad(blk, k, d);
      FMA4(w)
    }
  }
#else
  uint wr = p.w_off + nl * p.ldw;
  for (; k + 3u < K; k += 4u) {
    vec4 w = load_w4(wr, k);
    FMA4(w)
  }
  for (; k < K; k++) {
    float w = load_w(wr + k);
    [[unroll]] for (uint g = 0; g < RG; g++) {
      float xs = xbuf[xr[g] + k];
      [[unroll]] for (uint l = 0; l < SG; l++) acc[g * SG + l] = fma(subgroupShuffle(xs, l), w, acc[g * SG + l]);
    }
  }
#endif

  if (n < p.N) {
    [[unroll]] for (uint i = 0; i < RM; i++)
      if (m0 + i < p.M) store_y(m0 + i, n, acc[i]);
  }
}
