#version 450
// 2-D convolution as an implicit GEMM on cooperative matrices: the contract, bindings, push
// constants and geometry of conv2d.comp (any kernel size, stride, top/left padding, the fused
// nearest ×2 upsample, row bands), with the GEMM part of linear_coopmat.comp:
//   y[m, n] = bias[n] + Σ_k A[m, k] · w[n, k],  m = output pixel, n = output channel,
//   k = (ky, kx, ci) with ci fastest (w is [Cout, kh, kw, Cin]).
// Each BK-slice of A is gathered from x straight into fp16 shared memory (zero outside the image),
// w's slice likewise; subgroups own WM×WN sub-tiles of fp32 accumulators of the driver's shape
// (specialization constants 4..6), and the epilogue goes through a per-subgroup scratch to
// bounds-checked NHWC stores with the bias. A tile that meets an input beyond fp16's range is
// recomputed in fp32 from global memory, as in linear_coopmat.comp.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint BK = 32;
layout(constant_id = 4) const uint CM = 16;
layout(constant_id = 5) const uint CN = 16;
layout(constant_id = 6) const uint CK = 16;
layout(constant_id = 7) const uint WM = 32;
layout(constant_id = 8) const uint WN = 32;

const uint FM = WM / CM;
const uint FN = WN / CN;
const uint SGN = BN / WN;
const uint NSG = (BM / WM) * (BN / WN);
const uint SA = BK + 8u;

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
} p;

shared float16_t As[BM * SA];
shared float16_t Bs[BN * SA];
shared float Cs[NSG * CM * CN];
shared uint wide;

const float F16_MAX = 65504.0;

float16_t to_half(float v)
{
  if (abs(v) > F16_MAX) atomicOr(wide, 1u);
  return float16_t(v);
}

// A[m, k]: the input under tap (ky, kx) of output pixel m, channel ci; 0 outside the image.
float a_at(uint m, uint k, uint M, uint K, int Hl, int Wl)
{
  if (m >= M || k >= K) return 0.0;
  uint ox = m % p.Wo, t = m / p.Wo;
  uint oy = t % p.Ho, b = t / p.Ho;
  uint ci = k % p.Cin, tap = k / p.Cin;
  int iy = int((oy + p.out_row0) * p.stride) - int(p.pad_t) + int(tap / p.kw);
  int ix = int(ox * p.stride) - int(p.pad_l) + int(tap % p.kw);
  if (iy < 0 || iy >= Hl || ix < 0 || ix >= Wl) return 0.0;
  uint sy = uint(iy) >> p.up, sx = uint(ix) >> p.up;
  return x[p.x_off + b * p.xs_b + (sy - p.in_row0) * p.xs_h + sx * p.xs_w + ci];
}

void store(uint m, uint n, float v)
{
  uint ox = m % p.Wo, t = m / p.Wo;
  uint oy = t % p.Ho, b = t / p.Ho;
  if (p.has_bias != 0u) v += bias[p.b_off + n];
  y[p.y_off + b * p.ys_b + oy * p.ys_h + ox * p.ys_w + n] = v;
}

void main()
{
  const uint WG = gl_WorkGroupSize.x;
  const uint tid = gl_LocalInvocationID.x;
  const uint M = p.nimg * p.Ho * p.Wo;
  const uint m0 = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * BM;
  if (m0 >= M) return;                      // whole workgroup: uniform, before any barrier
  const uint n0 = gl_WorkGroupID.z * BN;
  const uint K = p.kh * p.kw * p.Cin;
  const int Hl = int(p.H << p.up), Wl = int(p.W << p.up);
  const uint sg = gl_SubgroupID;
  const uint wm0 = (sg / SGN) * WM, wn0 = (sg % SGN) * WN;

  coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator> acc[FM * FN];
  for (uint i = 0; i < FM * FN; i++) acc[i] = coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator>(0.0);
  if (tid == 0u) wide = 0u;
  barrier();

  bool fp32_tile = false;
  for (uint k0 = 0; k0 < K; k0 += BK) {
    for (uint i = tid; i < BM * BK; i += WG) {
      uint r = i / BK, kk = i % BK;
      As[r * SA + kk] = to_half(a_at(m0 + r, k0 + kk, M, K, Hl, Wl));
    }
    for (uint i = tid; i < BN * BK; i += WG) {
      uint c = i / BK, kk = i % BK;
      uint n = n0 + c, k = k0 + kk;
      Bs[c * SA + kk] = to_half((n < p.Cout && k < K) ? load_w(p.w_off + n * K + k) : 0.0);
    }
    barrier();
    if (wide != 0u) {
      fp32_tile = true;
      break;
    }
    for (uint kk = 0; kk < BK; kk += CK) {
      coopmat<float16_t, gl_ScopeSubgroup, CM, CK, gl_MatrixUseA> a[FM];
      for (uint i = 0; i < FM; i++)
        coopMatLoad(a[i], As, (wm0 + i * CM) * SA + kk, SA, gl_CooperativeMatrixLayoutRowMajor);
      for (uint j = 0; j < FN; j++) {
        coopmat<float16_t, gl_ScopeSubgroup, CK, CN, gl_MatrixUseB> b;
        coopMatLoad(b, Bs, (wn0 + j * CN) * SA + kk, SA, gl_CooperativeMatrixLayoutColumnMajor);
        for (uint i = 0; i < FM; i++) acc[i * FN + j] = coopMatMulAdd(a[i], b, acc[i * FN + j]);
      }
    }
    barrier();
  }

  if (fp32_tile) {
    for (uint i = tid; i < BM * BN; i += WG) {
      uint m = m0 + i / BN, n = n0 + i % BN;
      if (m >= M || n >= p.Cout) continue;
      float s = 0.0;
      for (uint k = 0; k < K; k++) s = fma(a_at(m, k, M, K, Hl, Wl), load_w(p.w_off + n * K + k), s);
      store(m, n, s);
    }
    return;
  }

  uint lane = gl_SubgroupInvocationID, lanes = gl_SubgroupSize;
  uint cs = sg * CM * CN;
  for (uint i = 0; i < FM; i++) {
    for (uint j = 0; j < FN; j++) {
      coopMatStore(acc[i * FN + j], Cs, cs, CN, gl_CooperativeMatrixLayoutRowMajor);
      subgroupMemoryBarrierShared();
      subgroupBarrier();
      for (uint e = lane; e < CM * CN; e += lanes) {
        uint m = m0 + wm0 + i * CM + e / CN, n = n0 + wn0 + j * CN + e % CN;
        if (m < M && n < p.Cout) store(m, n, Cs[cs + e]);
      }
      subgroupMemoryBarrierShared();
      subgroupBarrier();
    }
  }
}
