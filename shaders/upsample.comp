#version 450
// Nearest-neighbour ×2 upsample of NHWC activations: y[b, oy, ox, c] = x[b, oy/2, ox/2, c]
// (PyTorch F.interpolate(scale_factor=2, mode="nearest")). Large tensors go in bands of
// output rows (vkc_ops_conv.c): the y binding starts at output row `out_row0`, the x binding
// at source row `in_row0`. Strides allow views; channels must be contiguous.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
  uint x_off, y_off;
  uint xs_b, xs_h, xs_w;
  uint ys_b, ys_h, ys_w;
  uint C, Wo, Ho;         // Ho = output rows in this band
  uint out_row0, in_row0;
  uint n;                 // elements in this dispatch (images · Ho · Wo · C)
} p;

void main()
{
  uint i = linear_id(256);
  if (i >= p.n) return;
  uint c = i % p.C, t = i / p.C;
  uint ox = t % p.Wo; t /= p.Wo;
  uint oy = t % p.Ho, b = t / p.Ho;
  uint sy = ((oy + p.out_row0) >> 1) - p.in_row0;
  y[p.y_off + b * p.ys_b + oy * p.ys_h + ox * p.ys_w + c] =
      x[p.x_off + b * p.xs_b + sy * p.xs_h + (ox >> 1) * p.xs_w + c];
}
