#version 450
// Rotate-half rotary position embedding from per-token angle tables (RoPE, M-RoPE, 2-D ViT):
//   for j < R/2:  y[j]       = x[j]·cos[j]       − x[j+R/2]·sin[j]
//                 y[j+R/2]   = x[j+R/2]·cos[j+R/2] + x[j]·sin[j+R/2]
//   channels R..D−1 of each head are copied. R = rot_dim, D = head dim.
// x, y: [B, N, H·D] (channel stride 1, batch/token strides free; y may be x: each invocation
// reads exactly the elements it writes). cos, sin: [B or 1, N, R] (batch stride 0 = broadcast).
// One invocation per rotated pair or copied channel.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

layout(set = 0, binding = 0) readonly buffer X { float xb[]; };
layout(set = 0, binding = 1) readonly buffer Cos { float cb[]; };
layout(set = 0, binding = 2) readonly buffer Sin { float sb[]; };
layout(set = 0, binding = 3) buffer Y { float yb[]; };

layout(push_constant) uniform Push {
  uint x_off, c_off, s_off, y_off;
  uint x_sb, x_st, c_sb, c_st, s_sb, s_st, y_sb, y_st;
  uint n, heads, dim, rot;
  uint total;   // B · N · heads · (dim − rot/2)
} p;

void main()
{
  uint i = linear_id(256);
  if (i >= p.total) return;
  uint half_r = p.rot / 2u, per_head = p.dim - half_r;
  uint j = i % per_head, bnh = i / per_head;
  uint h = bnh % p.heads, bn = bnh / p.heads;
  uint tok = bn % p.n, b = bn / p.n;
  uint xs = p.x_off + b * p.x_sb + tok * p.x_st + h * p.dim;
  uint ys = p.y_off + b * p.y_sb + tok * p.y_st + h * p.dim;
  if (j < half_r) {
    uint cs = p.c_off + b * p.c_sb + tok * p.c_st;
    uint ss = p.s_off + b * p.s_sb + tok * p.s_st;
    float a = xb[xs + j], c = xb[xs + j + half_r];
    float ya = a * cb[cs + j] - c * sb[ss + j];
    float yc = c * cb[cs + j + half_r] + a * sb[ss + j + half_r];
    yb[ys + j] = ya;
    yb[ys + j + half_r] = yc;
  } else {
    uint ch = j + half_r;   // rot .. dim−1
    yb[ys + ch] = xb[xs + ch];
  }
}
