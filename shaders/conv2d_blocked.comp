#version 450
// 2-D convolution over NHWC activations as a register-blocked implicit GEMM, for devices
// without cooperative matrices: conv2d.comp's problem (y[m, n] = bias[n] + Σ_k A[m, k]·w[n, k],
// m = output pixel, n = output channel, k = (ky, kx, ci) with ci fastest; every geometry, band
// and upsample of that kernel, through the same push constants) on linear_blocked.comp's tiles.
// conv2d.comp stays the reference and the fallback; vkc_ops_conv.c picks this one after its
// self-check.
//
// What it does beyond conv2d.comp (as linear_blocked.comp does beyond linear_tiled.comp):
//  - K slices of BK = 32 (half the barriers);
//  - 16-byte global loads where the launcher says they are aligned (CONV_X_VEC4: Cin and every x
//    offset and stride a multiple of 4, so four consecutive k are four channels of one tap of one
//    pixel; CONV_W_VEC4: K and w_off multiples of 4, four f32 or two words of 16-bit weights);
//  - shared tiles held as vec4 along m and n, read with 16-byte shared loads: a TM×TN micro-tile
//    (8×8 on large tiles) is TM/4 × TN/4 groups of 4 consecutive pixels / channels, group g of
//    invocation t at g·(4·threads) + 4·t, so neighbouring invocations read neighbouring 16-byte
//    words and each staged value feeds TN (or TM) FMAs from registers;
//  - each pixel's image origin and base offset computed once per workgroup (shared), not per
//    K slice.
// Each output is one fp32 FMA chain over k = 0..K−1 in order from 0, then + bias, as in
// conv2d.comp: both kernels give the same bits wherever the driver keeps fma() fused.
//
// Tile sizes are specialization constants chosen per device by the launcher with the blocked
// GEMM's rule (vkc_blocked_pick): the workgroup size (id 0) must equal (BM/TM)·(BN/TN); TM and
// TN multiples of 4; BK a multiple of 4. Out-of-range pixels, channels and k are staged as 0.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint BK = 32;
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 0) readonly buffer X4 { vec4 x4[]; };
#if W_T == DTYPE_F32
layout(set = 0, binding = 1) readonly buffer Wt { float w[]; };
layout(set = 0, binding = 1) readonly buffer Wt4 { vec4 w4[]; };
float load_w(uint j) { return w[j]; }
#else
layout(set = 0, binding = 1) readonly buffer Wt { uint w[]; };
layout(set = 0, binding = 1) readonly buffer Wt2 { uvec2 w2[]; };
vec2 unpack_w2(uint v)
{
#if W_T == DTYPE_BF16
  return vec2(bf16_lo(v), bf16_hi(v));
#else
  return unpackHalf2x16(v);
#endif
}
float load_w(uint j) { return unpack_w2(w[j >> 1])[j & 1u]; }
#endif
layout(set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(set = 0, binding = 3) writeonly buffer Y { float y[]; };

// conv2d.comp's push block, then the flags below (vkc_ops_conv.c).
layout(push_constant) uniform Push {
  uint x_off, w_off, b_off, y_off;
  uint xs_b, xs_h, xs_w;
  uint ys_b, ys_h, ys_w;
  uint H, W, Cin;
  uint in_row0;
  uint Ho, Wo, Cout;
  uint out_row0;
  uint nimg;
  uint kh, kw, stride, pad_t, pad_l;
  uint up;
  uint has_bias;
  uint flags;
} p;
#define CONV_X_VEC4 1u
#define CONV_W_VEC4 2u

const uint TX = BN / TN;   // invocations along n
const uint TY = BM / TM;   // invocations along m
const uint GM = TM / 4u;   // 4-pixel groups per micro-tile
const uint GN = TN / 4u;
// k-major tiles in vec4 units, padded by one vec4 against bank conflicts of the transposing
// stores.
const uint SA = BM / 4u + 1u;
const uint SB = BN / 4u + 1u;
shared vec4 As[BK * SA];
shared vec4 Bs[BK * SB];
// Per pixel of the tile: the image row and column of its tap (0, 0), and x's offset of its image
// (origin far outside the image for pixels past M: every tap then reads zero).
shared ivec2 origin[BM];
shared uint xbase[BM];

void stage_x(uint kk, uint r, float v) { As[kk * SA + (r >> 2u)][r & 3u] = v; }
void stage_w(uint kk, uint c, float v) { Bs[kk * SB + (c >> 2u)][c & 3u] = v; }

// x's element offset of channel ci under tap k − ci of tile pixel r, or -1 in the padding.
int x_index(uint r, uint k, int Hl, int Wl)
{
  uint ci = k % p.Cin, tap = k / p.Cin;
  int iy = origin[r].x + int(tap / p.kw), ix = origin[r].y + int(tap % p.kw);
  if (iy < 0 || iy >= Hl || ix < 0 || ix >= Wl) return -1;
  uint sy = uint(iy) >> p.up, sx = uint(ix) >> p.up;
  return int(xbase[r] + (sy - p.in_row0) * p.xs_h + sx * p.xs_w + ci);
}

void main()
{
  const uint WG = gl_WorkGroupSize.x;
  const uint tid = gl_LocalInvocationID.x;
  const uint M = p.nimg * p.Ho * p.Wo;
  const uint m0 = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * BM;
  if (m0 >= M) return;   // whole workgroup: uniform, before any barrier
  const uint n0 = gl_WorkGroupID.z * BN;
  const uint K = p.kh * p.kw * p.Cin;
  const int Hl = int(p.H << p.up), Wl = int(p.W << p.up);
  const bool x_vec4 = (p.flags & CONV_X_VEC4) != 0u;
  const bool w_vec4 = (p.flags & CONV_W_VEC4) != 0u;
  const uint tx = tid % TX, ty = tid / TX;

  for (uint r = tid; r < BM; r += WG) {
    uint m = m0 + r;
    if (m < M) {
      uint ox = m % p.Wo, t = m / p.Wo;
      uint oy = t % p.Ho, b = t / p.Ho;
      origin[r] = ivec2(int((oy + p.out_row0) * p.stride) - int(p.pad_t), int(ox * p.stride) - int(p.pad_l));
      xbase[r] = p.x_off + b * p.xs_b;
    } else {
      origin[r] = ivec2(-0x40000000, 0);
      xbase[r] = 0u;
    }
  }
  barrier();

  vec4 acc[TM * GN];
  [[unroll]] for (uint i = 0; i < TM * GN; i++) acc[i] = vec4(0.0);

  for (uint k0 = 0; k0 < K; k0 += BK) {
    // A slice [BM, BK]: consecutive invocations walk k (channels) inside a pixel, coalesced NHWC.
    if (x_vec4) {
      // Cin % 4 == 0: a quad of k is four channels of one tap, wholly inside or outside [0, K).
      for (uint i = tid; i < BM * (BK / 4u); i += WG) {
        uint r = i / (BK / 4u), kk = 4u * (i % (BK / 4u));
        uint k = k0 + kk;
        vec4 v = vec4(0.0);
        if (k < K) {
          int e = x_index(r, k, Hl, Wl);
          if (e >= 0) v = x4[uint(e) >> 2u];
        }
        stage_x(kk, r, v.x);
        stage_x(kk + 1u, r, v.y);
        stage_x(kk + 2u, r, v.z);
        stage_x(kk + 3u, r, v.w);
      }
    } else {
      for (uint i = tid; i < BM * BK; i += WG) {
        uint r = i / BK, kk = i % BK;
        uint k = k0 + kk;
        float v = 0.0;
        if (k < K) {
          int e = x_index(r, k, Hl, Wl);
          if (e >= 0) v = x[uint(e)];
        }
        stage_x(kk, r, v);
      }
    }
    // w slice [BN, BK]: rows of K consecutive weights.
    if (w_vec4) {
      for (uint i = tid; i < BN * (BK / 4u); i += WG) {
        uint c = i / (BK / 4u), kk = 4u * (i % (BK / 4u));
        uint n = n0 + c, k = k0 + kk;
        vec4 v = vec4(0.0);
        if (n < p.Cout && k < K) {
          uint e = p.w_off + n * K + k;
#if W_T == DTYPE_F32
          v = w4[e >> 2u];
#else
          uvec2 q = w2[e >> 2u];
          v = vec4(unpack_w2(q.x), unpack_w2(q.y));
#endif
        }
        stage_w(kk, c, v.x);
        stage_w(kk + 1u, c, v.y);
        stage_w(kk + 2u, c, v.z);
        stage_w(kk + 3u, c, v.w);
      }
    } else {
      for (uint i = tid; i < BN * BK; i += WG) {
        uint c = i / BK, kk = i % BK;
        uint n = n0 + c, k = k0 + kk;
        stage_w(kk, c, (n < p.Cout && k < K) ? load_w(p.w_off + n * K + k) : 0.0);
      }
    }
    barrier();
#ifdef SELFTEST_DROP_LAST_K
    // A deliberately wrong variant for the self-check's test (vkc_ops_conv.c): the last K slice
    // is staged but never multiplied.
    if (k0 + BK >= K) {
      barrier();
      continue;
    }
#endif

    for (uint kk = 0; kk < BK; kk++) {
      vec4 a[GM], b[GN];
      [[unroll]] for (uint g = 0; g < GM; g++) a[g] = As[kk * SA + g * TY + ty];
      [[unroll]] for (uint g = 0; g < GN; g++) b[g] = Bs[kk * SB + g * TX + tx];
      [[unroll]] for (uint g = 0; g < GM; g++)
        [[unroll]] for (uint i = 0; i < 4u; i++)
          [[unroll]] for (uint h = 0; h < GN; h++)
            acc[(4u * g + i) * GN + h] = fma(vec4(a[g][i]), b[h], acc[(4u * g + i) * GN + h]);
    }
    barrier();   // the next slice overwrites As/Bs
  }

  [[unroll]] for (uint g = 0; g < GM; g++) {
    [[unroll]] for (uint i = 0; i < 4u; i++) {
      uint m = m0 + g * (4u * TY) + 4u * ty + i;
      if (m >= M) continue;
      uint ox = m % p.Wo, t = m / p.Wo;
      uint oy = t % p.Ho, b = t / p.Ho;
      uint ybase = p.y_off + b * p.ys_b + oy * p.ys_h + ox * p.ys_w;
      [[unroll]] for (uint h = 0; h < GN; h++) {
        [[unroll]] for (uint j = 0; j < 4u; j++) {
          uint n = n0 + h * (4u * TX) + 4u * tx + j;
          if (n >= p.Cout) continue;
          float v = acc[(4u * g + i) * GN + h][j];
          if (p.has_bias != 0u) v += bias[p.b_off + n];
          y[ybase + n] = v;
        }
      }
    }
  }
}
