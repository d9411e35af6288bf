#version 450
// Multi-head attention on cooperative matrices: the same contract, bindings, push constants and
// masks as attention.comp (flash-attention-2 with an fp32 online softmax), with the two matrix
// products on coopmat tiles:
//   S = Q·Kᵀ  — Q (pre-scaled into the exp2 domain) and the K tile in fp16 shared memory, fp32
//               accumulators of the driver's CM×CN×CK shape, stored to an fp32 scratch;
//   P·V       — P (in [0, 1]) rounded to fp16, the V tile (reusing K's buffer) in fp16, fp32
//               accumulators stored to the same scratch, then O = alpha·O + P·V in fp32
//               registers (coopmat1 cannot scale an accumulator's rows, so O lives outside).
// The softmax (masks, running max m, sum l, alpha) is fp32, one invocation per query row; l sums
// the fp16-rounded P actually multiplied, so the normalisation matches the products.
//
// Specialization constants: 0 workgroup size (a multiple of the subgroup size), 1 BR query rows,
// 2 BC keys per tile (BC ≤ D), 3 D head dim, 4..6 the coopmat shape. D, BR and BC are multiples
// of the shape (the launcher takes this kernel for D = 64, 80, 128 … only). Subgroups take the
// S and P·V blocks round-robin.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint BR = 32;
layout(constant_id = 2) const uint BC = 32;
layout(constant_id = 3) const uint D = 64;
layout(constant_id = 4) const uint CM = 16;
layout(constant_id = 5) const uint CN = 16;
layout(constant_id = 6) const uint CK = 16;

const uint HS = D + 8u;      // fp16 row stride of the Q and K/V tiles (16-byte multiple)
const uint PSH = BC + 8u;    // fp16 row stride of P
const uint SST = BC + 4u;    // fp32 row stride of S in the scratch
const uint OST = D + 4u;     // fp32 row stride of P·V in the scratch
const uint OE = (BR * D + gl_WorkGroupSize.x - 1u) / gl_WorkGroupSize.x;   // O values per invocation

layout(set = 0, binding = 0) readonly buffer Qb { float qb[]; };
layout(set = 0, binding = 1) readonly buffer Kb { float kb[]; };
layout(set = 0, binding = 2) readonly buffer Vb { float vb[]; };
layout(set = 0, binding = 3) writeonly buffer Ob { float ob[]; };
layout(set = 0, binding = 4) readonly buffer Valid { uint kvalid[]; };
layout(set = 0, binding = 5) readonly buffer Range { uint krange[]; };

#define F_CAUSAL 1u
#define F_VALID 2u
#define F_PAD_SELF 4u
#define F_RANGE 8u

layout(push_constant) uniform Push {
  uint q_off, k_off, v_off, o_off, valid_off, range_off;
  uint q_sb, q_st, k_sb, k_st, v_sb, v_st, o_sb, o_st;
  uint valid_sb, range_sb;
  uint nq, nk;
  uint group;
  uint q_base;
  uint flags;
  float scale_log2;
} p;

const float NEG = -3.0e38;

shared float16_t Qh[BR * HS];
shared float16_t KVh[BC * HS];
shared float SC[BR * OST];           // S (stride SST, BC ≤ D) then P·V (stride OST)
shared float16_t Ph[BR * PSH];
shared float m_s[BR], l_s[BR], alpha_s[BR];
shared uint row_lo[BR], row_hi[BR], row_chk[BR];
shared uint key_ok[BC];

void load_kv(bool is_v, uint b, uint hk, uint kt, uint t)
{
  const uint NT = gl_WorkGroupSize.x;
  for (uint e = t; e < BC * D; e += NT) {
    uint c = e / D, d = e - c * D, key = kt + c;
    float x = 0.0;
    if (key < p.nk) {
      x = is_v ? vb[p.v_off + b * p.v_sb + key * p.v_st + hk * D + d]
               : kb[p.k_off + b * p.k_sb + key * p.k_st + hk * D + d];
    }
    KVh[c * HS + d] = float16_t(x);
  }
}

void main()
{
  const uint NT = gl_WorkGroupSize.x;
  const uint t = gl_LocalInvocationID.x;
  const uint sg = gl_SubgroupID, nsg = gl_NumSubgroups;
  const uint q0 = gl_WorkGroupID.x * BR;
  const uint h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
  const uint hk = h / p.group;

  for (uint e = t; e < BR * D; e += NT) {
    uint r = e / D, d = e - r * D;
    float x = 0.0;
    if (q0 + r < p.nq) x = qb[p.q_off + b * p.q_sb + (q0 + r) * p.q_st + h * D + d] * p.scale_log2;
    Qh[r * HS + d] = float16_t(x);
  }
  for (uint r = t; r < BR; r += NT) {
    uint lo = 0u, hi = 0u, chk = 1u;
    uint qi = q0 + r, qabs = p.q_base + qi;
    if (qi < p.nq) {
      hi = p.nk;
      if ((p.flags & F_RANGE) != 0u) {
        uint base = p.range_off + b * p.range_sb + 2u * qi;
        lo = krange[base];
        hi = min(hi, krange[base + 1u]);
      }
      if ((p.flags & F_CAUSAL) != 0u) hi = min(hi, qabs + 1u);
      if ((p.flags & F_PAD_SELF) != 0u && kvalid[p.valid_off + b * p.valid_sb + qabs] == 0u) {
        lo = qabs; hi = qabs + 1u; chk = 0u;
      }
      if (lo >= hi) { lo = 0u; hi = 0u; }
    }
    row_lo[r] = lo; row_hi[r] = hi; row_chk[r] = chk;
    m_s[r] = NEG; l_s[r] = 0.0; alpha_s[r] = 0.0;
  }
  barrier();
  uint klo = 0xffffffffu, khi = 0u;
  for (uint r = 0u; r < BR; r++) {
    if (row_lo[r] < row_hi[r]) { klo = min(klo, row_lo[r]); khi = max(khi, row_hi[r]); }
  }

  float acc[OE];
  for (uint i = 0u; i < OE; i++) acc[i] = 0.0;

  for (uint kt = klo; kt < khi; kt += BC) {
    barrier();   // the previous tile's readers of KVh, SC, Ph and alpha_s are done
    load_kv(false, b, hk, kt, t);
    for (uint c = t; c < BC; c += NT) {
      uint key = kt + c, ok = uint(key < p.nk);
      if (ok != 0u && (p.flags & F_VALID) != 0u) ok = uint(kvalid[p.valid_off + b * p.valid_sb + key] != 0u);
      key_ok[c] = ok;
    }
    barrier();

    // S = Q·Kᵀ, block (bi, bj) of CM×CN per subgroup turn.
    for (uint blk = sg; blk < (BR / CM) * (BC / CN); blk += nsg) {
      uint bi = blk / (BC / CN), bj = blk % (BC / CN);
      coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator> s =
          coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator>(0.0);
      for (uint d0 = 0u; d0 < D; d0 += CK) {
        coopmat<float16_t, gl_ScopeSubgroup, CM, CK, gl_MatrixUseA> a;
        coopmat<float16_t, gl_ScopeSubgroup, CK, CN, gl_MatrixUseB> kb_;
        coopMatLoad(a, Qh, bi * CM * HS + d0, HS, gl_CooperativeMatrixLayoutRowMajor);
        coopMatLoad(kb_, KVh, bj * CN * HS + d0, HS, gl_CooperativeMatrixLayoutColumnMajor);
        s = coopMatMulAdd(a, kb_, s);
      }
      coopMatStore(s, SC, bi * CM * SST + bj * CN, SST, gl_CooperativeMatrixLayoutRowMajor);
    }
    barrier();

    // Online softmax, fp32, one invocation per row.
    for (uint r = t; r < BR; r += NT) {
      uint lo = row_lo[r], hi = row_hi[r], chk = row_chk[r];
      float mx = NEG;
      for (uint c = 0u; c < BC; c++) {
        uint key = kt + c;
        bool ok = key >= lo && key < hi && (chk == 0u || key_ok[c] != 0u);
        float sv = ok ? SC[r * SST + c] : NEG;
        SC[r * SST + c] = sv;
        mx = max(mx, sv);
      }
      float m_old = m_s[r], m_new = max(m_old, mx);
      float m_use = m_new == NEG ? 0.0 : m_new;
      float alpha = m_old == NEG ? 0.0 : exp2(m_old - m_use);
      float sum = 0.0;
      for (uint c = 0u; c < BC; c++) {
        float sv = SC[r * SST + c];
        float16_t ph = float16_t(sv == NEG ? 0.0 : exp2(sv - m_use));
        Ph[r * PSH + c] = ph;
        sum += float(ph);
      }
      l_s[r] = l_s[r] * alpha + sum;
      m_s[r] = m_new;
      alpha_s[r] = alpha;
    }
    barrier();
    load_kv(true, b, hk, kt, t);   // K is no longer needed: V takes its buffer
    barrier();

    // P·V, block (bi, bj) of CM×CN over the head dim.
    for (uint blk = sg; blk < (BR / CM) * (D / CN); blk += nsg) {
      uint bi = blk / (D / CN), bj = blk % (D / CN);
      coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator> o =
          coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator>(0.0);
      for (uint c0 = 0u; c0 < BC; c0 += CK) {
        coopmat<float16_t, gl_ScopeSubgroup, CM, CK, gl_MatrixUseA> a;
        coopmat<float16_t, gl_ScopeSubgroup, CK, CN, gl_MatrixUseB> vb_;
        coopMatLoad(a, Ph, bi * CM * PSH + c0, PSH, gl_CooperativeMatrixLayoutRowMajor);
        coopMatLoad(vb_, KVh, c0 * HS + bj * CN, HS, gl_CooperativeMatrixLayoutRowMajor);
        o = coopMatMulAdd(a, vb_, o);
      }
      coopMatStore(o, SC, bi * CM * OST + bj * CN, OST, gl_CooperativeMatrixLayoutRowMajor);
    }
    barrier();
    for (uint i = 0u; i < OE; i++) {
      uint e = t + i * NT;
      if (e < BR * D) {
        uint r = e / D, d = e - r * D;
        acc[i] = alpha_s[r] * acc[i] + SC[r * OST + d];
      }
    }
  }

  for (uint i = 0u; i < OE; i++) {
    uint e = t + i * NT;
    if (e >= BR * D) break;
    uint r = e / D, d = e - r * D;
    if (q0 + r >= p.nq) continue;
    float l = l_s[r];
    ob[p.o_off + b * p.o_sb + (q0 + r) * p.o_st + h * D + d] = l > 0.0 ? acc[i] / l : 0.0;
  }
}
