#version 450
// y[M, N] (+)= x[M, K] · W[N, K]ᵀ (+ b): the many-rows kernel.
//
// One workgroup computes a BM×BN tile of y. K is walked in BK-wide slices: the workgroup
// stages the x slice [BM, BK] and the W slice [BN, BK] in shared memory (transposed to
// k-major, padded by one to keep both the stores and the loads free of bank conflicts), then
// each invocation accumulates a TM×TN register block in fp32. Rows and columns of the register
// block are strided by the thread grid (row ty + i·BM/TM, column tx + j·BN/TN) so that
// neighbouring invocations read neighbouring shared words and write neighbouring y columns.
// Out-of-range rows, columns and k are loaded as 0, so no shape needs to be a tile multiple.
//
// Tile sizes are specialization constants; the workgroup size (id 0) must equal
// (BM/TM)·(BN/TN), and BK must be even (16-bit weights are staged in word pairs); for the
// block types a multiple of 4 (a quad of 4 weights at a time; the launcher takes 32 where
// shared memory allows: one block per W row and slice).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "linear_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint BK = 16;
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;

const uint SA = BM + 1;   // padded k-major strides of the shared tiles
const uint SB = BN + 1;
shared float As[BK * SA];
shared float Bs[BK * SB];

void main()
{
  const uint WG = gl_WorkGroupSize.x;
  const uint TX = BN / TN, TY = BM / TM;
  uint tid = gl_LocalInvocationID.x;
  uint tx = tid % TX, ty = tid / TX;
  uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
  bool pairs = (p.flags & LINEAR_W_PAIRS) != 0u;

  float acc[TM * TN];
  for (uint i = 0; i < TM * TN; i++) acc[i] = 0.0;

  for (uint k0 = 0; k0 < p.K; k0 += BK) {
    // x slice: consecutive invocations walk k inside a row (coalesced global reads).
    for (uint i = tid; i < BM * BK; i += WG) {
      uint r = i / BK, kk = i % BK;
      uint m = m0 + r, k = k0 + kk;
      float v = 0.0;
      if (m < p.M && k < p.K) v = xbuf[p.x_off + m * p.ldx + k];
      As[kk * SA + r] = v;
    }
    // W slice.
#ifdef W_BLOCKS
    // Whole quads: k0 and BK are multiples of 4 and K of 32, so k < K covers all 4.
    // Neighbouring invocations read neighbouring words of a block (its scale word is shared;
    // for q4_0 each word twice, once per half of the block).
    for (uint i = tid; i < BN * (BK / 4u); i += WG) {
      uint c = i / (BK / 4u), kk = 4u * (i % (BK / 4u));
      uint n = n0 + c, k = k0 + kk;
      vec4 v = vec4(0.0);
      if (n < p.N && k < p.K) {
        uint blk = wb_block(n, k);
        v = wb_quad(blk, k, wb_scale(blk));
      }
      Bs[kk * SB + c] = v.x;
      Bs[(kk + 1u) * SB + c] = v.y;
      Bs[(kk + 2u) * SB + c] = v.z;
      Bs[(kk + 3u) * SB + c] = v.w;
    }
#else
#if W_T != DTYPE_F32
    if (pairs) {
      for (uint i = tid; i < BN * BK / 2; i += WG) {
        uint c = i / (BK / 2), kk = 2u * (i % (BK / 2));
        uint n = n0 + c, k = k0 + kk;
        vec2 v = vec2(0.0);
        if (n < p.N && k < p.K) {
          uint e = p.w_off + n * p.ldw + k;   // even by LINEAR_W_PAIRS and BK even
          if (k + 1u < p.K) v = load_w2(e);
          else v.x = load_w(e);
        }
        Bs[kk * SB + c] = v.x;
        Bs[(kk + 1u) * SB + c] = v.y;
      }
    } else
#endif
    {
      for (uint i = tid; i < BN * BK; i += WG) {
        uint c = i / BK, kk = i % BK;
        uint n = n0 + c, k = k0 + kk;
        float v = 0.0;
        if (n < p.N && k < p.K) v = load_w(p.w_off + n * p.ldw + k);
        Bs[kk * SB + c] = v;
      }
    }
#endif
    barrier();

    for (uint kk = 0; kk < BK; kk++) {
      float a[TM], b[TN];
      for (uint i = 0; i < TM; i++) a[i] = As[kk * SA + ty + i * TY];
      for (uint j = 0; j < TN; j++) b[j] = Bs[kk * SB + tx + j * TX];
      for (uint i = 0; i < TM; i++)
        for (uint j = 0; j < TN; j++) acc[i * TN + j] = fma(a[i], b[j], acc[i * TN + j]);
    }
    barrier();   // the next slice overwrites As/Bs
  }

  for (uint i = 0; i < TM; i++) {
    uint m = m0 + ty + i * TY;
    if (m >= p.M) break;
    for (uint j = 0; j < TN; j++) {
      uint n = n0 + tx + j * TX;
      if (n < p.N) store_y(m, n, acc[i * TN + j]);
    }
  }
}
