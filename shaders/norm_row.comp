#version 450
// LayerNorm (NORM == 0) or RMSNorm (NORM == 1) over the last dim, one workgroup per row.
//   LN:  y = (x − mean) · rsqrt(var + eps) [· w] [+ b]      (biased variance, two passes)
//   RMS: y = x · rsqrt(mean(x²) + eps) [· w]
// Rows use the same three-level addressing as eltwise.comp (per-head norms are rows of a
// [B, N, H, D] view). Every thread touches the same columns in all passes, so y may alias x.
// Statistics in fp32: per-thread partial sums, then a workgroup sum in a fixed order (results
// are deterministic): with USE_SUBGROUP, subgroupAdd and one shared slot per subgroup summed by
// every thread (one barrier per sum); without it (devices lacking subgroup arithmetic, or the
// DEEPGEN_VK_DISABLE_SUBGROUP kill switch), a pairwise tree over one shared slot per thread
// (log2(workgroup size) + 1 barriers per sum). The two orders differ, hence not bit-identical.
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#define WB_BINDING 2
#include "norm_common.glsl"

layout(local_size_x_id = 0) in;   // 64, 128 or 256, chosen by the launcher from the row width

layout(set = 0, binding = 0) buffer Y { T y_[]; };
layout(set = 0, binding = 1) readonly buffer X { T x_[]; };

layout(push_constant) uniform Push {
  uint rows, cols, n1, n2;           // cols in vec units
  uint y_off, y_s0, y_s1, y_s2;
  uint x_off, x_s0, x_s1, x_s2;
  uint w_off, b_off, flags;
  float eps;
  float inv_n;                       // 1 / (cols · VEC)
} p;

// Each sum has its own slots, so the second sum (LayerNorm's variance) may start writing
// while slow threads still read the first one's result: no barrier after the read.
#ifdef USE_SUBGROUP
// One slot per subgroup (subgroups of >= 4 lanes, launcher-checked).
shared float red[2][64];

float wg_sum(float v, uint slot)
{
  v = subgroupAdd(v);
  if (subgroupElect()) red[slot][gl_SubgroupID] = v;
  barrier();
  float s = 0.0f;
  for (uint k = 0u; k < gl_NumSubgroups; k++) s += red[slot][k];
  return s;
}
#else
// One slot per thread; the workgroup size is a power of two (64, 128 or 256).
shared float red[2][gl_WorkGroupSize.x];

float wg_sum(float v, uint slot)
{
  uint t = gl_LocalInvocationID.x;
  red[slot][t] = v;
  barrier();
  for (uint h = gl_WorkGroupSize.x / 2u; h > 0u; h >>= 1) {
    if (t < h) red[slot][t] += red[slot][t + h];
    barrier();
  }
  return red[slot][0];
}
#endif

#if VEC == 4
float hsum(vec4 v) { return (v.x + v.y) + (v.z + v.w); }
float sq(vec4 v) { return dot(v, v); }
#else
float hsum(float v) { return v; }
float sq(float v) { return v * v; }
#endif

void main()
{
  uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (row >= p.rows) return;   // uniform across the workgroup
  uint i0 = 0u, i1 = 0u, i2 = row;
  if (p.n2 < p.rows) {
    i2 = row % p.n2;
    uint q = row / p.n2;
    i1 = q % p.n1;
    i0 = q / p.n1;
  }
  uint xb = p.x_off + i0 * p.x_s0 + i1 * p.x_s1 + i2 * p.x_s2;
  uint yb = p.y_off + i0 * p.y_s0 + i1 * p.y_s1 + i2 * p.y_s2;
  uint t = gl_LocalInvocationID.x, nt = gl_WorkGroupSize.x;

#if NORM == 0
  float s = 0.0f;
  for (uint c = t; c < p.cols; c += nt) s += hsum(x_[xb + c]);
  float mean = wg_sum(s, 0u) * p.inv_n;
  float q = 0.0f;
  for (uint c = t; c < p.cols; c += nt) q += sq(x_[xb + c] - mean);
  float rstd = inversesqrt(wg_sum(q, 1u) * p.inv_n + p.eps);
#else
  float q = 0.0f;
  for (uint c = t; c < p.cols; c += nt) q += sq(x_[xb + c]);
  float rstd = inversesqrt(wg_sum(q, 0u) * p.inv_n + p.eps);
  const float mean = 0.0f;
#endif

  for (uint c = t; c < p.cols; c += nt) {
    T v = (x_[xb + c] - mean) * rstd;
    if ((p.flags & NF_ROUND_NORMED) != 0u) v = round_bf16_t(v);
    if ((p.flags & NF_HAS_W) != 0u) v *= LOAD_W(p.w_off + c);
    if ((p.flags & NF_HAS_B) != 0u) v += LOAD_B(p.b_off + c);
    if ((p.flags & NF_ROUND_OUT) != 0u) v = round_bf16_t(v);
    y_[yb + c] = v;
  }
}
