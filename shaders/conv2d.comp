#version 450
// 2-D convolution over NHWC activations as an implicit GEMM:
//   y[m, n] = bias[n] + Σ_k A[m, k] · w[n, k]
// with m = an output pixel (image, row, column), n = an output channel and
// k = (ky, kx, ci) flattened with ci fastest, so that w is laid out [Cout, kh, kw, Cin]
// (vkc_conv_weight_from_torch makes it from PyTorch's [Cout, Cin, kh, kw]) and A[m, k] is
// the input pixel under tap (ky, kx) of output pixel m, channel ci — zero outside the image
// (padding). The input is never materialised as columns: each BK-slice of A is gathered
// straight from x into shared memory. Tile sizes are -D defines (shaders/conv.cmake) so that
// a tuner can add variants; they are not tuned yet (no GPU measured).
//
// One kernel covers every geometry DeepGen needs through push constants: kernel size,
// stride, top/left padding (bottom/right padding is implied by the output size), and an
// optional nearest ×2 upsample of the input (`up` = 1: the conv sees a 2H×2W image whose
// pixel (iy, ix) is x[iy/2, ix/2]; the VAE Upsample without its 4× intermediate).
//
// Large tensors are processed in bands of output rows (see vkc_ops_conv.c): the x binding
// then starts at source row `in_row0` and the y binding at output row `out_row0`.
//
// Tiles: a workgroup computes BM pixels × BN channels, each invocation a TM × TN block of
// adjacent pixels × adjacent channels, read from shared memory as vec4s (TM, TN multiples of
// 4); neighbouring invocations take neighbouring channel blocks, so NHWC stores are coalesced.
// The next K-slice is fetched into registers while the current one is multiplied.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#ifndef BM
#define BM 64
#endif
#ifndef BN
#define BN 64
#endif
#ifndef BK
#define BK 16
#endif
#ifndef TM
#define TM 4
#endif
#ifndef TN
#define TN 4
#endif
#define NT ((BM / TM) * (BN / TN))          // invocations per workgroup
#define A_LOADS (BK * BM / NT)              // A elements each invocation gathers per K step
#define B_LOADS (BK * BN / NT)
#define ROWS_PER_PASS (NT / BK)             // pixels (or channels) covered per load pass

#if (NT % BK) != 0 || (BK * BM) % NT != 0 || (BK * BN) % NT != 0 || (TM % 4) != 0 || (TN % 4) != 0
#error "tile sizes do not divide"
#endif

layout(local_size_x = NT) in;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
#if W_T == DTYPE_F32
layout(set = 0, binding = 1) readonly buffer Wt { float w[]; };
float load_w(uint j) { return w[j]; }
#else
layout(set = 0, binding = 1) readonly buffer Wt { uint w[]; };
float load_w(uint j)
{
  uint v = w[j >> 1];
#if W_T == DTYPE_BF16
  return (j & 1u) != 0u ? bf16_hi(v) : bf16_lo(v);
#else
  return unpackHalf2x16(v)[j & 1u];
#endif
}
#endif
layout(set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(set = 0, binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
  uint x_off, w_off, b_off, y_off;   // element offsets of element 0 in each binding
  uint xs_b, xs_h, xs_w;             // x strides (elements) of image, row, column; channel = 1
  uint ys_b, ys_h, ys_w;             // y strides
  uint H, W, Cin;                    // source image (before the optional upsample)
  uint in_row0;                      // source row at the start of the x binding
  uint Ho, Wo, Cout;                 // Ho = output rows in this band
  uint out_row0;                     // image row of the band's first output row
  uint nimg;                         // images in this dispatch
  uint kh, kw, stride, pad_t, pad_l;
  uint up;                           // 1: nearest ×2 upsample of x first
  uint has_bias;
} p;

// vec4 rows padded by one vec4: the transposing scalar stores then hit 2 banks per address
// instead of 1, while vec4 reads stay aligned.
shared vec4 As[BK][BM / 4 + 1];
shared vec4 Bs[BK][BN / 4 + 1];

// Gather the K-slice [k0, k0 + BK) of A (this invocation's column kl for its A_LOADS pixels)
// and of w (column kl for its B_LOADS channels) into registers; zero outside the image (the
// padding) and past K / Cout.
void load_slice(uint k0, uint kl, int iy0[A_LOADS], int ix0[A_LOADS], uint xbase[A_LOADS],
                uint m0, uint n0, uint K, int Hl, int Wl, out float ra[A_LOADS], out float rb[B_LOADS])
{
  const uint tid = gl_LocalInvocationID.x;
  const uint k = k0 + kl;
  const bool k_ok = k < K;
  const uint ci = k % p.Cin, tap = k / p.Cin;
  const int kx = int(tap % p.kw), ky = int(tap / p.kw);
  for (uint i = 0; i < A_LOADS; i++) {
    int iy = iy0[i] + ky, ix = ix0[i] + kx;
    float v = 0.0;
    if (k_ok && iy >= 0 && iy < Hl && ix >= 0 && ix < Wl) {
      uint sy = uint(iy) >> p.up, sx = uint(ix) >> p.up;
      v = x[xbase[i] + (sy - p.in_row0) * p.xs_h + sx * p.xs_w + ci];
    }
    ra[i] = v;
  }
  for (uint j = 0; j < B_LOADS; j++) {
    uint n = n0 + tid / BK + j * ROWS_PER_PASS;
    rb[j] = (k_ok && n < p.Cout) ? load_w(p.w_off + n * K + k) : 0.0;
  }
}

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint M = p.nimg * p.Ho * p.Wo;
  const uint m0 = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * BM;
  if (m0 >= M) return;                      // whole workgroup: uniform, before any barrier
  const uint n0 = gl_WorkGroupID.z * BN;
  const uint K = p.kh * p.kw * p.Cin;
  const int Hl = int(p.H << p.up), Wl = int(p.W << p.up);

  // Gather mapping: invocation tid loads k-column kl of pixel rows ml = tid/BK + i·ROWS_PER_PASS
  // (BK consecutive invocations read BK consecutive channels of one pixel: coalesced NHWC).
  const uint kl = tid % BK;
  int iy0[A_LOADS], ix0[A_LOADS];
  uint xbase[A_LOADS];
  for (uint i = 0; i < A_LOADS; i++) {
    uint m = m0 + tid / BK + i * ROWS_PER_PASS;
    if (m < M) {
      uint ox = m % p.Wo, t = m / p.Wo;
      uint oy = t % p.Ho, b = t / p.Ho;
      iy0[i] = int((oy + p.out_row0) * p.stride) - int(p.pad_t);
      ix0[i] = int(ox * p.stride) - int(p.pad_l);
      xbase[i] = p.x_off + b * p.xs_b;
    } else {
      iy0[i] = -0x40000000;                 // every tap out of the image: loads zero
      ix0[i] = 0;
      xbase[i] = 0u;
    }
  }

  // Compute mapping: channels n0 + tn·TN + j, pixels m0 + tm·TM + i.
  const uint tn = tid % (BN / TN), tm = tid / (BN / TN);
  float acc[TM][TN];
  for (uint i = 0; i < TM; i++)
    for (uint j = 0; j < TN; j++) acc[i][j] = 0.0;

  float ra[A_LOADS], rb[B_LOADS];
  load_slice(0u, kl, iy0, ix0, xbase, m0, n0, K, Hl, Wl, ra, rb);
  for (uint k0 = 0; k0 < K; k0 += BK) {
    for (uint i = 0; i < A_LOADS; i++) {
      uint ml = tid / BK + i * ROWS_PER_PASS;
      As[kl][ml >> 2][ml & 3u] = ra[i];
    }
    for (uint j = 0; j < B_LOADS; j++) {
      uint nl = tid / BK + j * ROWS_PER_PASS;
      Bs[kl][nl >> 2][nl & 3u] = rb[j];
    }
    barrier();
    if (k0 + BK < K) load_slice(k0 + BK, kl, iy0, ix0, xbase, m0, n0, K, Hl, Wl, ra, rb);
    for (uint kk = 0; kk < BK; kk++) {
      vec4 a[TM / 4], bv[TN / 4];
      for (uint i = 0; i < TM / 4; i++) a[i] = As[kk][tm * (TM / 4) + i];
      for (uint j = 0; j < TN / 4; j++) bv[j] = Bs[kk][tn * (TN / 4) + j];
      for (uint i = 0; i < TM; i++)
        for (uint j = 0; j < TN; j++)
          acc[i][j] = fma(a[i >> 2][i & 3u], bv[j >> 2][j & 3u], acc[i][j]);
    }
    barrier();
  }

  for (uint i = 0; i < TM; i++) {
    uint m = m0 + tm * TM + i;
    if (m >= M) continue;
    uint ox = m % p.Wo, t = m / p.Wo;
    uint oy = t % p.Ho, b = t / p.Ho;
    uint ybase = p.y_off + b * p.ys_b + oy * p.ys_h + ox * p.ys_w;
    for (uint j = 0; j < TN; j++) {
      uint n = n0 + tn * TN + j;
      if (n >= p.Cout) continue;
      float v = acc[i][j];
      if (p.has_bias != 0u) v += bias[p.b_off + n];
      y[ybase + n] = v;
    }
  }
}
