#version 450
// Mean over tokens: y[b, c] (+)= Σ_n x[b, n, c] / N_total, fp32.
// A workgroup covers 32 consecutive channels of one batch row with 8 token slices; each
// thread sums its slice serially, the 8 partial sums meet in shared memory. When a launcher
// has to split N into pieces (binding range), later pieces accumulate into y.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#define COLS 32
#define SLICES 8
layout(local_size_x = 256) in;   // COLS × SLICES

layout(set = 0, binding = 0) buffer Y { float y[]; };
layout(set = 0, binding = 1) readonly buffer X { float x[]; };

layout(push_constant) uniform Push {
  uint cols;       // C
  uint n;          // tokens in this piece
  uint x_off, x_sb, x_sn;
  uint y_off, y_sb;
  uint accumulate; // 1: add to y instead of overwriting it
  float inv_total; // 1 / N (all pieces)
} p;

shared float part[SLICES][COLS];

void main()
{
  uint lc = gl_LocalInvocationID.x % COLS;
  uint sl = gl_LocalInvocationID.x / COLS;
  uint c = gl_WorkGroupID.x * COLS + lc;
  uint b = gl_WorkGroupID.y;
  float s = 0.0f;
  if (c < p.cols) {
    uint base = p.x_off + b * p.x_sb + c;
    for (uint t = sl; t < p.n; t += SLICES) s += x[base + t * p.x_sn];
  }
  part[sl][lc] = s;
  barrier();
  if (sl == 0u && c < p.cols) {
    float tot = 0.0f;
    for (uint k = 0u; k < SLICES; k++) tot += part[k][lc];
    uint yi = p.y_off + b * p.y_sb + c;
    float v = tot * p.inv_total;
    y[yi] = p.accumulate != 0u ? y[yi] + v : v;
  }
}
