#version 450
// y[M, N] (+)= x[M, K] · W[N, K]ᵀ (+ b): the register-blocked scalar GEMM, for devices without
// cooperative matrices (RDNA2, Pascal, older Intel). linear_tiled.comp stays the reference and
// the fallback; vkc_ops_linear.c picks this one (VKC_LINEAR_BLOCKED) after its self-check.
//
// What it does beyond linear_tiled.comp:
//  - K slices of BK = 32 (half the barriers);
//  - 16-byte global loads where the launcher says the rows are aligned (LINEAR_X_VEC4,
//    LINEAR_W_VEC4: four x or f32 W values, four f16/bf16 W values in two words), quads for the
//    block types (one q8_0 word);
//  - shared tiles held as vec4 along m and n, so that every invocation reads its operands with
//    16-byte shared loads: a TM×TN micro-tile (8×8 on large tiles) is TM/4 × TN/4 groups of 4
//    consecutive rows / columns, group g of invocation t at g·(4·threads) + 4·t, so neighbouring
//    invocations read neighbouring 16-byte words (no bank conflicts) and each staged value
//    feeds TN (or TM) FMAs from registers;
//  - SHARED_F16: the tiles in fp16 (half the shared memory and its bandwidth; W dequantized,
//    x rounded while staging), products and sums still fp32. An input beyond fp16's range
//    (|v| > 65504) raises a workgroup flag; that workgroup then computes its whole tile in fp32
//    from global memory (the coopmat kernels' design, docs/PERF.md), so no Inf appears that
//    fp32 would not give.
// Each output is one fp32 FMA chain over k = 0..K−1 in order, as in linear_tiled.comp: with
// fp32 tiles both kernels give the same bits wherever the driver keeps fma() fused.
//
// Tile sizes are specialization constants chosen per device by the launcher: the workgroup
// size (id 0) must equal (BM/TM)·(BN/TN); TM and TN multiples of 4; BK a multiple of 4.
// Out-of-range rows, columns and k are staged as 0: no shape needs to be a tile multiple.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#ifdef SHARED_F16
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#include "common.glsl"
#include "linear_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint BM = 128;
layout(constant_id = 2) const uint BN = 128;
layout(constant_id = 3) const uint BK = 32;
layout(constant_id = 4) const uint TM = 8;
layout(constant_id = 5) const uint TN = 8;

// The same bindings seen 16 bytes at a time (aliases of linear_common.glsl's).
layout(set = 0, binding = 0) readonly buffer Xbuf4 { vec4 xbuf4[]; };
#if W_T == DTYPE_F32
layout(set = 0, binding = 1) readonly buffer Wbuf4 { vec4 wbuf4[]; };
#elif W_T == DTYPE_F16 || W_T == DTYPE_BF16
layout(set = 0, binding = 1) readonly buffer Wbuf2 { uvec2 wbuf2[]; };
#endif

const uint TX = BN / TN;   // invocations along n
const uint TY = BM / TM;   // invocations along m
const uint GM = TM / 4u;   // 4-row groups per micro-tile
const uint GN = TN / 4u;
// k-major tiles in vec4 units, padded by one vec4 against bank conflicts of the transposing
// stores (the loads read whole consecutive rows and need no padding).
const uint SA = BM / 4u + 1u;
const uint SB = BN / 4u + 1u;

#ifdef SHARED_F16
#define TVEC f16vec4
#define TSCALAR float16_t
shared uint wide;   // an input beyond fp16's range was staged
const float F16_MAX = 65504.0;
float16_t to_tile(float v)
{
  if (abs(v) > F16_MAX) atomicOr(wide, 1u);
  return float16_t(v);
}
#else
#define TVEC vec4
#define TSCALAR float
float to_tile(float v) { return v; }
#endif
shared TVEC As[BK * SA];
shared TVEC Bs[BK * SB];

void stage_x(uint kk, uint r, float v) { As[kk * SA + (r >> 2u)][r & 3u] = to_tile(v); }
void stage_w(uint kk, uint c, float v) { Bs[kk * SB + (c >> 2u)][c & 3u] = to_tile(v); }

#ifdef SHARED_F16
// y[m, n] in fp32 from global memory: tiles whose inputs exceed fp16's range.
float dot_fp32(uint m, uint n)
{
  float acc = 0.0;
  uint xr = p.x_off + m * p.ldx;
#ifdef W_BLOCKS
  for (uint k = 0; k < p.K; k += 4u) {
    uint blk = wb_block(n, k);
    vec4 w = wb_quad(blk, k, wb_scale(blk));
    acc = fma(xbuf[xr + k], w.x, acc);
    acc = fma(xbuf[xr + k + 1u], w.y, acc);
    acc = fma(xbuf[xr + k + 2u], w.z, acc);
    acc = fma(xbuf[xr + k + 3u], w.w, acc);
  }
#else
  uint wr = p.w_off + n * p.ldw;
  for (uint k = 0; k < p.K; k++) acc = fma(xbuf[xr + k], load_w(wr + k), acc);
#endif
  return acc;
}
#endif

void main()
{
  const uint WG = gl_WorkGroupSize.x;
  uint tid = gl_LocalInvocationID.x;
  uint tx = tid % TX, ty = tid / TX;
  uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
  bool x_vec4 = (p.flags & LINEAR_X_VEC4) != 0u;
  bool w_vec4 = (p.flags & LINEAR_W_VEC4) != 0u;
  bool pairs = (p.flags & LINEAR_W_PAIRS) != 0u;

  vec4 acc[TM * GN];
  [[unroll]] for (uint i = 0; i < TM * GN; i++) acc[i] = vec4(0.0);

#ifdef SHARED_F16
  if (tid == 0u) wide = 0u;
  barrier();
  bool fp32_tile = false;
#endif

  for (uint k0 = 0; k0 < p.K; k0 += BK) {
    // x slice [BM, BK]: consecutive invocations walk k inside a row (coalesced global reads).
    if (x_vec4) {
      // x_off, ldx and K are multiples of 4: a quad is wholly inside or outside [0, K).
      for (uint i = tid; i < BM * (BK / 4u); i += WG) {
        uint r = i / (BK / 4u), kk = 4u * (i % (BK / 4u));
        uint m = m0 + r, k = k0 + kk;
        vec4 v = vec4(0.0);
        if (m < p.M && k < p.K) v = xbuf4[(p.x_off + m * p.ldx + k) >> 2u];
        stage_x(kk, r, v.x);
        stage_x(kk + 1u, r, v.y);
        stage_x(kk + 2u, r, v.z);
        stage_x(kk + 3u, r, v.w);
      }
    } else {
      for (uint i = tid; i < BM * BK; i += WG) {
        uint r = i / BK, kk = i % BK;
        uint m = m0 + r, k = k0 + kk;
        float v = 0.0;
        if (m < p.M && k < p.K) v = xbuf[p.x_off + m * p.ldx + k];
        stage_x(kk, r, v);
      }
    }
    // W slice [BN, BK].
#ifdef W_BLOCKS
    // Whole quads: k0 and BK are multiples of 4 and K of 32, so k < K covers all 4.
    for (uint i = tid; i < BN * (BK / 4u); i += WG) {
      uint c = i / (BK / 4u), kk = 4u * (i % (BK / 4u));
      uint n = n0 + c, k = k0 + kk;
      vec4 v = vec4(0.0);
      if (n < p.N && k < p.K) {
        uint blk = wb_block(n, k);
        v = wb_quad(blk, k, wb_scale(blk));
      }
      stage_w(kk, c, v.x);
      stage_w(kk + 1u, c, v.y);
      stage_w(kk + 2u, c, v.z);
      stage_w(kk + 3u, c, v.w);
    }
#else
    if (w_vec4) {
      // w_off, ldw and K are multiples of 4 elements: four f32 or four 16-bit values (two
      // words) at a time, a quad wholly inside or outside [0, K).
      for (uint i = tid; i < BN * (BK / 4u); i += WG) {
        uint c = i / (BK / 4u), kk = 4u * (i % (BK / 4u));
        uint n = n0 + c, k = k0 + kk;
        vec4 v = vec4(0.0);
        if (n < p.N && k < p.K) {
          uint e = p.w_off + n * p.ldw + k;
#if W_T == DTYPE_F32
          v = wbuf4[e >> 2u];
#else
          uvec2 q = wbuf2[e >> 2u];
          v = vec4(unpack_w2(q.x), unpack_w2(q.y));
#endif
        }
        stage_w(kk, c, v.x);
        stage_w(kk + 1u, c, v.y);
        stage_w(kk + 2u, c, v.z);
        stage_w(kk + 3u, c, v.w);
      }
    } else
#if W_T != DTYPE_F32
    if (pairs) {
      for (uint i = tid; i < BN * (BK / 2u); i += WG) {
        uint c = i / (BK / 2u), kk = 2u * (i % (BK / 2u));
        uint n = n0 + c, k = k0 + kk;
        vec2 v = vec2(0.0);
        if (n < p.N && k < p.K) {
          uint e = p.w_off + n * p.ldw + k;   // even by LINEAR_W_PAIRS and BK even
          if (k + 1u < p.K) v = load_w2(e);
          else v.x = load_w(e);
        }
        stage_w(kk, c, v.x);
        stage_w(kk + 1u, c, v.y);
      }
    } else
#endif
    {
      for (uint i = tid; i < BN * BK; i += WG) {
        uint c = i / BK, kk = i % BK;
        uint n = n0 + c, k = k0 + kk;
        float v = 0.0;
        if (n < p.N && k < p.K) v = load_w(p.w_off + n * p.ldw + k);
        stage_w(kk, c, v);
      }
    }
#endif
    barrier();
#ifdef SHARED_F16
    // `wide` is read by every invocation after the barrier and written by none of them again
    // before the next one: a uniform branch.
    if (wide != 0u) {
      fp32_tile = true;
      break;
    }
#endif
#ifdef SELFTEST_DROP_LAST_K
    // A deliberately wrong variant for the self-check's test (vkc_ops_linear.c): the last K
    // slice is staged but never multiplied.
    if (k0 + BK >= p.K) {
      barrier();
      continue;
    }
#endif

    for (uint kk = 0; kk < BK; kk++) {
      vec4 a[GM], b[GN];
      [[unroll]] for (uint g = 0; g < GM; g++) a[g] = vec4(As[kk * SA + g * TY + ty]);
      [[unroll]] for (uint g = 0; g < GN; g++) b[g] = vec4(Bs[kk * SB + g * TX + tx]);
      [[unroll]] for (uint g = 0; g < GM; g++)
        [[unroll]] for (uint i = 0; i < 4u; i++)
          [[unroll]] for (uint h = 0; h < GN; h++)
            acc[(4u * g + i) * GN + h] = fma(vec4(a[g][i]), b[h], acc[(4u * g + i) * GN + h]);
    }
    barrier();   // the next slice overwrites As/Bs
  }

  // Epilogue (bias, accumulate, bounds): store_y of linear_common.glsl.
  [[unroll]] for (uint g = 0; g < GM; g++) {
    [[unroll]] for (uint i = 0; i < 4u; i++) {
      uint m = m0 + g * (4u * TY) + 4u * ty + i;
      if (m >= p.M) continue;
      [[unroll]] for (uint h = 0; h < GN; h++) {
        [[unroll]] for (uint j = 0; j < 4u; j++) {
          uint n = n0 + h * (4u * TX) + 4u * tx + j;
          if (n >= p.N) continue;
#ifdef SHARED_F16
          if (fp32_tile) {
            store_y(m, n, dot_fp32(m, n));
            continue;
          }
#endif
          store_y(m, n, acc[(4u * g + i) * GN + h][j]);
        }
      }
    }
  }
}
