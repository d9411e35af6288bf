#version 450
// Numerically stable softmax over the last dimension, fp32: y = exp(x − max) / Σ exp(x − max).
// One workgroup per row (rows of any length: each thread walks the row with stride NT keeping
// an online (max, sum) pair, then the pairs are combined across the workgroup). A row whose
// entries are all −∞ yields 0 (the "safe softmax" convention), never NaN.
// Views: up to 4-D, last-dim stride 1, the three leading dims with arbitrary strides.
#extension GL_GOOGLE_include_directive : require
#if USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common.glsl"

layout(constant_id = 0) const uint NT = 256;   // power of two
layout(local_size_x_id = 0) in;

layout(set = 0, binding = 0) readonly buffer X { float xb[]; };
layout(set = 0, binding = 1) buffer Y { float yb[]; };

layout(push_constant) uniform Push {
  uint x_off, y_off;
  uint x_s0, x_s1, x_s2;   // strides of the leading dims (elements)
  uint y_s0, y_s1, y_s2;
  uint n1, n2;             // sizes of leading dims 1 and 2
  uint rows, cols;
} p;

#define NEG_INF uintBitsToFloat(0xff800000u)

shared float red[NT];   // with subgroups only one slot per subgroup is used

float wg_reduce(float v, bool is_max)
{
  const uint t = gl_LocalInvocationID.x;
#if USE_SUBGROUP
  v = is_max ? subgroupMax(v) : subgroupAdd(v);
  if (subgroupElect()) red[gl_SubgroupID] = v;
  barrier();
  float r = red[0];
  for (uint i = 1u; i < gl_NumSubgroups; i++) r = is_max ? max(r, red[i]) : r + red[i];
#else
  red[t] = v;
  barrier();
  for (uint s = NT / 2u; s > 0u; s >>= 1) {
    if (t < s) red[t] = is_max ? max(red[t], red[t + s]) : red[t] + red[t + s];
    barrier();
  }
  float r = red[0];
#endif
  barrier();   // everyone has read red before it is reused
  return r;
}

void main()
{
  const uint t = gl_LocalInvocationID.x;
  const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (row >= p.rows) return;   // uniform across the workgroup
  uint i2 = row % p.n2, i01 = row / p.n2, i1 = i01 % p.n1, i0 = i01 / p.n1;
  uint xs = p.x_off + i0 * p.x_s0 + i1 * p.x_s1 + i2 * p.x_s2;
  uint ys = p.y_off + i0 * p.y_s0 + i1 * p.y_s1 + i2 * p.y_s2;

  float m = NEG_INF, l = 0.0;
  for (uint c = t; c < p.cols; c += NT) {
    float x = xb[xs + c];
    if (x == NEG_INF) continue;
    if (x > m) { l = (m == NEG_INF ? 0.0 : l * exp(m - x)) + 1.0; m = x; }
    else l += exp(x - m);
  }
  float gm = wg_reduce(m, true);
  float gl = wg_reduce(m == NEG_INF ? 0.0 : l * exp(m - gm), false);
  float inv = gm == NEG_INF ? 0.0 : 1.0 / gl;
  for (uint c = t; c < p.cols; c += NT) {
    float x = xb[xs + c];
    yb[ys + c] = x == NEG_INF ? 0.0 : exp(x - gm) * inv;
  }
}
