#version 450
// GroupNorm pass 1: per-chunk statistics of NHWC images. A workgroup takes `chunk_px`
// consecutive pixels of one image and writes, for every group, (count, mean, M2) to
// part[((img · chunks) + chunk) · G + g]. Pieces of an image that is too large for one
// binding are dispatched separately with their own chunk_base, so the statistics of any
// image size are built from pieces.
//
// Threads: a pixel's channels are G segments of cpg contiguous channels; thread t (t < A,
// A = the largest multiple of G <= 256) reads segments t, t + A, ... of the chunk, which all
// belong to group t mod G, keeping Welford statistics; consecutive threads read consecutive
// memory. The A/G threads of each group are then merged (Chan) by one thread.
#extension GL_GOOGLE_include_directive : require
#include "norm_common.glsl"

layout(local_size_x = 256) in;

layout(set = 0, binding = 0) readonly buffer X { T x_[]; };
layout(set = 0, binding = 1) buffer Part { float part[]; };

layout(push_constant) uniform Push {
  uint n1, n2;          // pixel q of an image → row levels (q / n2, q % n2)
  uint px;              // pixels per image in this piece
  uint chunk_px;        // pixels per workgroup
  uint G, cpg;          // groups, channels per group (vec units)
  uint x_off, x_s0, x_s1, x_s2;
  uint part_off;        // element offset of part[0] in its binding
  uint chunks;          // chunks per image over all pieces
  uint chunk_base;      // first chunk of this piece
  uint img_base;        // first image of this piece
} p;

shared float sh_n[256], sh_mean[256], sh_m2[256];

void main()
{
  uint t = gl_LocalInvocationID.x;
  uint chunk = gl_WorkGroupID.x;
  uint img = gl_WorkGroupID.y;
  uint q0 = chunk * p.chunk_px;
  uint npx = min(p.chunk_px, p.px - q0);
  uint A = (256u / p.G) * p.G;
  uint g = t % p.G;
  Stats s = Stats(0.0f, 0.0f, 0.0f);
  if (t < A) {
    uint ximg = p.x_off + img * p.x_s0 + g * p.cpg;
    for (uint seg = t; seg < npx * p.G; seg += A) {
      uint q = q0 + seg / p.G;
      uint base = ximg + (q / p.n2) * p.x_s1 + (q % p.n2) * p.x_s2;
      for (uint k = 0u; k < p.cpg; k++) {
        T v = x_[base + k];
#if VEC == 4
        stats_push(s, v.x); stats_push(s, v.y); stats_push(s, v.z); stats_push(s, v.w);
#else
        stats_push(s, v);
#endif
      }
    }
  }
  sh_n[t] = s.n;
  sh_mean[t] = s.mean;
  sh_m2[t] = s.m2;
  barrier();
  if (t < p.G) {
    Stats m = Stats(0.0f, 0.0f, 0.0f);
    for (uint j = t; j < A; j += p.G) m = stats_merge(m, Stats(sh_n[j], sh_mean[j], sh_m2[j]));
    uint o = p.part_off + (((p.img_base + img) * p.chunks + p.chunk_base + chunk) * p.G + t) * 3u;
    part[o] = m.n;
    part[o + 1u] = m.mean;
    part[o + 2u] = m.m2;
  }
}
