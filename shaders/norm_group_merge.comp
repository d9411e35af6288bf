#version 450
// GroupNorm pass 2: merge the per-chunk statistics of each (image, group) into
// stats[(img · G + g) · 2 + {0, 1}] = (mean, rstd). One workgroup per (group, image); each
// thread merges a strided subset of the chunks, thread 0 merges the 64 results (Chan's
// formula throughout, so no sum of squares ever cancels).
#extension GL_GOOGLE_include_directive : require
#define VEC 1
#include "norm_common.glsl"

layout(local_size_x = 64) in;

layout(set = 0, binding = 0) readonly buffer Part { float part[]; };
layout(set = 0, binding = 1) buffer St { float stats[]; };

layout(push_constant) uniform Push {
  uint chunks, G;
  uint part_off, stats_off;
  float eps;
} p;

shared float sh_n[64], sh_mean[64], sh_m2[64];

void main()
{
  uint t = gl_LocalInvocationID.x;
  uint g = gl_WorkGroupID.x, img = gl_WorkGroupID.y;
  Stats s = Stats(0.0f, 0.0f, 0.0f);
  for (uint j = t; j < p.chunks; j += 64u) {
    uint o = p.part_off + ((img * p.chunks + j) * p.G + g) * 3u;
    s = stats_merge(s, Stats(part[o], part[o + 1u], part[o + 2u]));
  }
  sh_n[t] = s.n;
  sh_mean[t] = s.mean;
  sh_m2[t] = s.m2;
  barrier();
  if (t == 0u) {
    Stats m = Stats(0.0f, 0.0f, 0.0f);
    for (uint j = 0u; j < 64u; j++) m = stats_merge(m, Stats(sh_n[j], sh_mean[j], sh_m2[j]));
    uint o = p.stats_off + (img * p.G + g) * 2u;
    stats[o] = m.mean;
    stats[o + 1u] = inversesqrt(m.m2 / m.n + p.eps);
  }
}
