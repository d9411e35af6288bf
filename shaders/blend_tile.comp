#version 450
// y[y0 + i, x0 + j, c] += wy(i)·wx(j)·t[i, j, c] for one image and a band of tile rows: the
// accumulation step of tiled VAE decoding/encoding. The weights are linear ramps over the
// overlaps (vkc_ops_latent.h, VkcTileRamp) that sum to 1 between neighbouring tiles.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

layout(set = 0, binding = 0) buffer Y { float y[]; };
layout(set = 0, binding = 1) readonly buffer T { float t[]; };

layout(push_constant) uniform Push {
  uint n;                  // elements of this band: rows · tw · C
  uint C, tw;
  uint y_off, ys_h, ys_w;
  uint t_off, ts_h, ts_w;
  uint row0;               // tile-local row of the band's first row
  uint pad0, pad1;
  ivec4 ry, rx;            // in_start, in_len, out_start, out_len
} p;

float ramp(int k, ivec4 r)
{
  float w = 1.0;
  if (k < r.x) return 0.0;
  if (k < r.x + r.y) w = (float(k - r.x) + 0.5) / float(r.y);
  if (k >= r.z + r.w) return 0.0;
  if (k >= r.z) w *= 1.0 - (float(k - r.z) + 0.5) / float(r.w);
  return w;
}

void main()
{
  uint i = linear_id(256);
  if (i >= p.n) return;
  uint c = i % p.C, q = i / p.C;
  uint j = q % p.tw, r = q / p.tw;
  float w = ramp(int(r + p.row0), p.ry) * ramp(int(j), p.rx);
  uint yi = p.y_off + r * p.ys_h + j * p.ys_w + c;
  y[yi] += w * t[p.t_off + r * p.ts_h + j * p.ts_w + c];
}
