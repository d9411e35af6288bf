#version 450
// GroupNorm pass 3: y = (x − mean_g) · rstd_g [· w] [+ b], optionally SiLU, over NHWC rows
// (pixels) with the three-level row addressing of eltwise.comp, level 0 being the image.
// With VEC = 4 the launcher guarantees that 4 consecutive channels share a group.
#extension GL_GOOGLE_include_directive : require
#define WB_BINDING 3
#include "norm_common.glsl"
#include "eltwise_math.glsl"

layout(local_size_x = 256) in;

layout(set = 0, binding = 0) buffer Y { T y_[]; };
layout(set = 0, binding = 1) readonly buffer X { T x_[]; };
layout(set = 0, binding = 2) readonly buffer St { float stats[]; };

layout(push_constant) uniform Push {
  uint total, cols, rows, n1, n2;    // cols in vec units
  uint y_off, y_s0, y_s1, y_s2;
  uint x_off, x_s0, x_s1, x_s2;
  uint w_off, b_off, flags;
  uint cpg;                          // channels per group (elements)
  uint G, img_base, stats_off;
} p;

void main()
{
  uint i = linear_id(256);
  if (i >= p.total) return;
  uint r = i / p.cols;
  uint c = i - r * p.cols;
  uint i0 = 0u, i1 = 0u, i2 = r;
  if (p.n2 < p.rows) {
    i2 = r % p.n2;
    uint q = r / p.n2;
    i1 = q % p.n1;
    i0 = q / p.n1;
  }
  uint g = (c * VEC) / p.cpg;
  uint so = p.stats_off + ((p.img_base + i0) * p.G + g) * 2u;
  T v = (x_[p.x_off + i0 * p.x_s0 + i1 * p.x_s1 + i2 * p.x_s2 + c] - stats[so]) * stats[so + 1u];
  if ((p.flags & NF_HAS_W) != 0u) v *= LOAD_W(p.w_off + c);
  if ((p.flags & NF_HAS_B) != 0u) v += LOAD_B(p.b_off + c);
  if ((p.flags & NF_ROUND_OUT) != 0u) v = round_bf16_t(v);
  if ((p.flags & NF_SILU) != 0u) {
#if VEC == 4
    v = vec4(silu_f(v.x), silu_f(v.y), silu_f(v.z), silu_f(v.w));
#else
    v = silu_f(v);
#endif
    if ((p.flags & NF_ROUND_OUT) != 0u) v = round_bf16_t(v);
  }
  y_[p.y_off + i0 * p.y_s0 + i1 * p.y_s1 + i2 * p.y_s2 + c] = v;
}
