#version 450
// y[M, N] (+)= x[M, K] · W[N, K]ᵀ (+ b) on cooperative matrices (VK_KHR_cooperative_matrix,
// "coopmat1"): the tensor-core / matrix-core path of vkc_op_linear.
//
// One workgroup computes a BM×BN tile of y with NSG = (BM/WM)·(BN/WN) subgroups; each subgroup
// owns a WM×WN sub-tile held as FM×FN accumulators of CM×CN fp32 (FM = WM/CM, FN = WN/CN).
// K is walked in BK-wide slices: the workgroup converts the x slice [BM, BK] and the W slice
// [BN, BK] to fp16 while staging them in shared memory (W dequantized there for q8_0 / q4_0,
// bf16 and f32 rounded to fp16), both k-contiguous with rows padded by 8 halves (16 bytes, so
// coopMatLoad's rows stay 16-byte aligned and consecutive rows start in different banks), then
// every subgroup runs BK/CK steps of coopMatMulAdd: fp16 × fp16 products summed in fp32.
//
// The cooperative-matrix shape CM×CN×CK is not fixed here: specialization constants 4..6 carry
// the one vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR reported (8×8×8 on lavapipe,
// 16×16×16 on NVIDIA/AMD/Intel GPUs), so one SPIR-V serves every device.
//
// Bounds: out-of-range rows, columns and k are staged as 0, and the accumulators go through
// shared memory (one CM×CN scratch per subgroup) to a bounds-checked epilogue (bias,
// accumulate, store: store_y of linear_common.glsl), so no shape needs to be a tile multiple.
//
// ALIGNED=1 builds the variant the launcher takes when M, N and K are multiples of the tile (BM,
// BN, BK) and y's offset and row stride are multiples of 4 floats: no bounds checks while staging,
// and the accumulators go straight to y with coopMatStore (y itself loaded first to accumulate,
// the bias added as a broadcast tile), without the scratch round trip.
//
// fp16 range: an |x| or |w| beyond 65504 (LLM outlier channels after SwiGLU, DiT FF inputs)
// would become ±Inf in fp16. Staging raises a workgroup flag when it meets one; the workgroup
// then drops its accumulators and computes its whole tile in fp32 from global memory (the
// scalar kernel's arithmetic), so such inputs cost time only in the tiles they touch and never
// produce an Inf the fp32 reference does not have.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"
#include "linear_common.glsl"

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
const uint SGN = BN / WN;                 // subgroups along n
const uint NSG = (BM / WM) * (BN / WN);
const uint SA = BK + 8u;                  // padded row stride of both tiles, in halves

shared float16_t As[BM * SA];
shared float16_t Bs[BN * SA];
shared float Cs[NSG * CM * CN];
shared uint wide;                         // an input beyond fp16's range was staged

const float F16_MAX = 65504.0;

float16_t to_half(float v)
{
  if (abs(v) > F16_MAX) atomicOr(wide, 1u);
  return float16_t(v);
}

// y tile in fp32 from global memory: the path for tiles with inputs beyond fp16's range.
void tile_fp32(uint m0, uint n0)
{
  const uint WG = gl_WorkGroupSize.x;
  for (uint i = gl_LocalInvocationID.x; i < BM * BN; i += WG) {
    uint m = m0 + i / BN, n = n0 + i % BN;
    if (m >= p.M || n >= p.N) continue;
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
    store_y(m, n, acc);
  }
}

void main()
{
  const uint WG = gl_WorkGroupSize.x;
  uint tid = gl_LocalInvocationID.x;
  uint sg = gl_SubgroupID;
  uint wm0 = (sg / SGN) * WM, wn0 = (sg % SGN) * WN;
  uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
  bool pairs = (p.flags & LINEAR_W_PAIRS) != 0u;

  coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator> acc[FM * FN];
  for (uint i = 0; i < FM * FN; i++) acc[i] = coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator>(0.0);

  if (tid == 0u) wide = 0u;
  barrier();

  bool fp32_tile = false;
  for (uint k0 = 0; k0 < p.K; k0 += BK) {
    // x slice: consecutive invocations walk k inside a row (coalesced global reads).
    for (uint i = tid; i < BM * BK; i += WG) {
      uint r = i / BK, kk = i % BK;
      uint m = m0 + r, k = k0 + kk;
#ifdef ALIGNED
      float v = xbuf[p.x_off + m * p.ldx + k];
#else
      float v = 0.0;
      if (m < p.M && k < p.K) v = xbuf[p.x_off + m * p.ldx + k];
#endif
      As[r * SA + kk] = to_half(v);
    }
    // W slice, stored [n][k]: read by coopMatLoad as the column-major K×N operand B.
#ifdef W_BLOCKS
    for (uint i = tid; i < BN * (BK / 4u); i += WG) {
      uint c = i / (BK / 4u), kk = 4u * (i % (BK / 4u));
      uint n = n0 + c, k = k0 + kk;
      vec4 v = vec4(0.0);
      if (n < p.N && k < p.K) {
        uint blk = wb_block(n, k);
        v = wb_quad(blk, k, wb_scale(blk));
      }
      uint o = c * SA + kk;
      Bs[o] = to_half(v.x);
      Bs[o + 1u] = to_half(v.y);
      Bs[o + 2u] = to_half(v.z);
      Bs[o + 3u] = to_half(v.w);
    }
#else
#if W_T != DTYPE_F32
    if (pairs) {
      for (uint i = tid; i < BN * BK / 2u; i += WG) {
        uint c = i / (BK / 2u), kk = 2u * (i % (BK / 2u));
        uint n = n0 + c, k = k0 + kk;
        vec2 v = vec2(0.0);
        if (n < p.N && k < p.K) {
          uint e = p.w_off + n * p.ldw + k;   // even by LINEAR_W_PAIRS and BK even
          if (k + 1u < p.K) v = load_w2(e);
          else v.x = load_w(e);
        }
        Bs[c * SA + kk] = to_half(v.x);
        Bs[c * SA + kk + 1u] = to_half(v.y);
      }
    } else
#endif
    {
      for (uint i = tid; i < BN * BK; i += WG) {
        uint c = i / BK, kk = i % BK;
        uint n = n0 + c, k = k0 + kk;
        float v = 0.0;
        if (n < p.N && k < p.K) v = load_w(p.w_off + n * p.ldw + k);
        Bs[c * SA + kk] = to_half(v);
      }
    }
#endif
    barrier();
    // `wide` is read by every invocation after the barrier and by none of them written again
    // before the next one: a uniform branch.
    if (wide != 0u) {
      fp32_tile = true;
      break;
    }

#ifdef SELFTEST_DROP_LAST_K
    // A deliberately wrong variant for the self-check's test (vkc_ops_linear.c): the last K
    // slice is staged but never multiplied.
    if (k0 + BK >= p.K) {
      barrier();
      continue;
    }
#endif
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
    barrier();   // the next slice overwrites As/Bs
  }

  if (fp32_tile) {
    tile_fp32(m0, n0);
    return;
  }

  uint lane = gl_SubgroupInvocationID, lanes = gl_SubgroupSize;
  uint cs = sg * CM * CN;
#ifdef ALIGNED
  // Epilogue: (y +) acc (+ bias) stored straight to y, whole accumulators.
  for (uint i = 0; i < FM; i++) {
    for (uint j = 0; j < FN; j++) {
      uint m = m0 + wm0 + i * CM, n = n0 + wn0 + j * CN;
      coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator> r = acc[i * FN + j];
      if ((p.flags & LINEAR_BIAS) != 0u) {
        for (uint e = lane; e < CM * CN; e += lanes) Cs[cs + e] = bbuf[p.b_off + n + e % CN];
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator> bt;
        coopMatLoad(bt, Cs, cs, CN, gl_CooperativeMatrixLayoutRowMajor);
        r = r + bt;
        subgroupBarrier();   // before the next bias tile overwrites the scratch
      }
      uint yi = p.y_off + m * p.ldy + n;
      if ((p.flags & LINEAR_ACCUMULATE) != 0u) {
        coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator> yo;
        coopMatLoad(yo, ybuf, yi, p.ldy, gl_CooperativeMatrixLayoutRowMajor);
        r = r + yo;
      }
      coopMatStore(r, ybuf, yi, p.ldy, gl_CooperativeMatrixLayoutRowMajor);
    }
  }
  return;
#endif
  // Epilogue: each accumulator through this subgroup's scratch to bounds-checked stores.
  for (uint i = 0; i < FM; i++) {
    for (uint j = 0; j < FN; j++) {
      coopMatStore(acc[i * FN + j], Cs, cs, CN, gl_CooperativeMatrixLayoutRowMajor);
      subgroupMemoryBarrierShared();
      subgroupBarrier();
      for (uint e = lane; e < CM * CN; e += lanes) {
        uint m = m0 + wm0 + i * CM + e / CN, n = n0 + wn0 + j * CN + e % CN;
        if (m < p.M && n < p.N) store_y(m, n, Cs[cs + e]);
      }
      subgroupMemoryBarrierShared();
      subgroupBarrier();   // before the next accumulator overwrites the scratch
    }
  }
}
