#version 450
// Multi-head attention, flash-attention-2 style: o = softmax(scale · q kᵀ + mask) v per head,
// tiled over keys with an online softmax, so no Nq×Nk score matrix ever exists in memory.
//
// One workgroup computes BR query rows of one (batch, query head). Per key tile of BC keys:
//   load K (and V) tile → S = Q·Kᵀ (each thread a TR×TC micro-tile) → row max across the NTC
//   threads sharing a row (subgroup shuffles, or shared memory without them) → P = exp2(S − m),
//   alpha = exp2(m_old − m_new) → O = alpha·O + P·V (each thread an OR×OD micro-tile in registers).
// The row sum l is accumulated by the threads that own the output rows (they read every P of
// their rows anyway), so only the max needs a cross-thread reduction.
//
// Masks: each query row gets an allowed key interval [lo, hi) (kv_range ∩ causal ∩ [0, Nk))
// and, with a key-valid mask, only valid keys; a pad_self row (its own key invalid) allows just
// its own key. A row with nothing allowed keeps m = −∞, l = 0 and writes exactly 0 (FA-2 varlen).
//
// Layout: token tensors [B, N, H·D] with channel stride 1, head h at channels h·D..h·D+D−1;
// batch and token strides come in push constants (q, k, v may be slices of a fused qkv tensor).
#extension GL_GOOGLE_include_directive : require
#if USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#endif
#include "common.glsl"

layout(constant_id = 0) const uint NT = 128;       // invocations per workgroup
layout(constant_id = 1) const uint BR = 32;        // query rows per workgroup
layout(constant_id = 2) const uint BC = 32;        // keys per tile
layout(constant_id = 3) const uint D = 64;         // head dim
layout(constant_id = 4) const uint NTC = 8;        // threads sharing one S row (power of 2, ≤ subgroup)
layout(constant_id = 5) const uint NTD = 16;       // threads across the head dim in P·V
layout(constant_id = 6) const uint KV_ALIAS = 0;   // 1: V reuses K's shared buffer (large D)
layout(local_size_x_id = 0) in;

const uint TC = BC / NTC;                 // S columns per thread (launcher: BC % NTC == 0)
const uint NRG = NT / NTC;                // S row groups
const uint TR = (BR + NRG - 1) / NRG;     // S rows per thread
const uint NRO = NT / NTD;                // O row groups
const uint OR = (BR + NRO - 1) / NRO;     // O rows per thread
const uint OD = (D + NTD - 1) / NTD;      // O dims per thread
const uint DS = D + 1;                    // shared row stride: odd, so rows fall in distinct banks
const uint PS = BC + 1;
const uint VLEN = BC * DS - KV_ALIAS * (BC * DS - 1);
#if USE_SUBGROUP
const uint REDLEN = 1;
#else
const uint REDLEN = BR * NTC;
#endif

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
  uint q_off, k_off, v_off, o_off, valid_off, range_off;   // element offsets in the bindings
  uint q_sb, q_st, k_sb, k_st, v_sb, v_st, o_sb, o_st;     // batch / token strides (elements)
  uint valid_sb, range_sb;   // key_valid [B, Nk] and kv_range [B, Nq, 2] batch strides
  uint nq, nk;               // query rows in this dispatch, keys
  uint group;                // query heads per kv head
  uint q_base;               // absolute index of this dispatch's first query (split launches)
  uint flags;
  float scale_log2;          // scale · log2(e): scores live in the exp2 domain
} p;

const float NEG = -3.0e38;   // "no score": finite, so no inf arithmetic is ever needed

shared float Qs[BR * DS];
shared float Ks[BC * DS];
shared float Vs[VLEN];
shared float Ps[BR * PS];
shared float alpha_s[BR];
shared uint row_lo[BR], row_hi[BR], row_chk[BR];
shared uint key_ok[BC];
shared float red[REDLEN];

float v_at(uint i) { return KV_ALIAS != 0u ? Ks[i] : Vs[i]; }

void load_kv(bool is_v, uint b, uint hk, uint kt, uint t)
{
  for (uint e = t; e < BC * D; e += NT) {
    uint c = e / D, d = e - c * D, key = kt + c;
    float x = 0.0;
    if (key < p.nk) {
      x = is_v ? vb[p.v_off + b * p.v_sb + key * p.v_st + hk * D + d]
               : kb[p.k_off + b * p.k_sb + key * p.k_st + hk * D + d];
    }
    if (is_v && KV_ALIAS == 0u) Vs[c * DS + d] = x;
    else Ks[c * DS + d] = x;
  }
}

void main()
{
  const uint t = gl_LocalInvocationID.x;
  const uint q0 = gl_WorkGroupID.x * BR;
  const uint h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
  const uint hk = h / p.group;

  // Q tile, pre-scaled into the exp2 domain; rows past Nq are zero.
  for (uint e = t; e < BR * D; e += NT) {
    uint r = e / D, d = e - r * D;
    float x = 0.0;
    if (q0 + r < p.nq) x = qb[p.q_off + b * p.q_sb + (q0 + r) * p.q_st + h * D + d] * p.scale_log2;
    Qs[r * DS + d] = x;
  }
  // Allowed key interval per row.
  if (t < BR) {
    uint lo = 0u, hi = 0u, chk = 1u;   // chk: key_valid applies to this row
    uint qi = q0 + t, qabs = p.q_base + qi;
    if (qi < p.nq) {
      hi = p.nk;
      if ((p.flags & F_RANGE) != 0u) {
        uint base = p.range_off + b * p.range_sb + 2u * qi;
        lo = krange[base];
        hi = min(hi, krange[base + 1u]);
      }
      if ((p.flags & F_CAUSAL) != 0u) hi = min(hi, qabs + 1u);
      if ((p.flags & F_PAD_SELF) != 0u && kvalid[p.valid_off + b * p.valid_sb + qabs] == 0u) {
        lo = qabs; hi = qabs + 1u; chk = 0u;   // only its own key, valid or not
      }
      if (lo >= hi) { lo = 0u; hi = 0u; }
    }
    row_lo[t] = lo; row_hi[t] = hi; row_chk[t] = chk;
  }
  barrier();
  // Keys any row of the tile may see; uniform, so every thread loops over the same tiles.
  uint klo = 0xffffffffu, khi = 0u;
  for (uint r = 0u; r < BR; r++) {
    if (row_lo[r] < row_hi[r]) { klo = min(klo, row_lo[r]); khi = max(khi, row_hi[r]); }
  }

  // S-phase mapping: thread = (row group rg, column lane tc); rows rg + i·NRG, cols tc + j·NTC.
  const uint tc = t % NTC, rg = t / NTC;
  // O-phase mapping: thread = (row group ro, dim lane td); rows ro + i·NRO, dims td + j·NTD.
  const uint td = t % NTD, ro = t / NTD;

  float m[TR];
  for (uint i = 0u; i < TR; i++) m[i] = NEG;
  float l[OR];
  float acc[OR * OD];
  for (uint i = 0u; i < OR; i++) l[i] = 0.0;
  for (uint i = 0u; i < OR * OD; i++) acc[i] = 0.0;

  for (uint kt = klo; kt < khi; kt += BC) {
    barrier();   // the previous tile's readers of Ks/Vs/Ps/alpha_s/red are done
    load_kv(false, b, hk, kt, t);
    if (KV_ALIAS == 0u) load_kv(true, b, hk, kt, t);
    if (t < BC) {
      uint key = kt + t, ok = uint(key < p.nk);
      if (ok != 0u && (p.flags & F_VALID) != 0u) ok = uint(kvalid[p.valid_off + b * p.valid_sb + key] != 0u);
      key_ok[t] = ok;
    }
    barrier();

    float s[TR * TC];
    for (uint i = 0u; i < TR * TC; i++) s[i] = 0.0;
    for (uint d = 0u; d < D; d++) {
      float qv[TR], kv[TC];
      for (uint i = 0u; i < TR; i++) qv[i] = Qs[min(rg + i * NRG, BR - 1u) * DS + d];
      for (uint j = 0u; j < TC; j++) kv[j] = Ks[(tc + j * NTC) * DS + d];
      for (uint i = 0u; i < TR; i++)
        for (uint j = 0u; j < TC; j++) s[i * TC + j] = fma(qv[i], kv[j], s[i * TC + j]);
    }
    float tmax[TR];
    for (uint i = 0u; i < TR; i++) {
      uint r = min(rg + i * NRG, BR - 1u);
      uint lo = row_lo[r], hi = row_hi[r], chk = row_chk[r];
      bool real = rg + i * NRG < BR;
      float mx = NEG;
      for (uint j = 0u; j < TC; j++) {
        uint c = tc + j * NTC, key = kt + c;
        bool ok = real && key >= lo && key < hi && (chk == 0u || key_ok[c] != 0u);
        s[i * TC + j] = ok ? s[i * TC + j] : NEG;
        mx = max(mx, s[i * TC + j]);
      }
      tmax[i] = mx;
    }
#if USE_SUBGROUP
    for (uint i = 0u; i < TR; i++)
      for (uint off = 1u; off < NTC; off <<= 1) tmax[i] = max(tmax[i], subgroupShuffleXor(tmax[i], off));
#else
    for (uint i = 0u; i < TR; i++)
      if (rg + i * NRG < BR) red[(rg + i * NRG) * NTC + tc] = tmax[i];
    barrier();
    for (uint i = 0u; i < TR; i++) {
      uint r = min(rg + i * NRG, BR - 1u);
      float mx = NEG;
      for (uint u = 0u; u < NTC; u++) mx = max(mx, red[r * NTC + u]);
      tmax[i] = mx;
    }
#endif
    for (uint i = 0u; i < TR; i++) {
      uint r = rg + i * NRG;
      float m_new = max(m[i], tmax[i]);
      float m_use = m_new == NEG ? 0.0 : m_new;
      if (r < BR) {
        for (uint j = 0u; j < TC; j++) {
          float sv = s[i * TC + j];
          Ps[r * PS + tc + j * NTC] = sv == NEG ? 0.0 : exp2(sv - m_use);
        }
        if (tc == 0u) alpha_s[r] = m[i] == NEG ? 0.0 : exp2(m[i] - m_use);
      }
      m[i] = m_new;
    }
    barrier();
    if (KV_ALIAS != 0u) {
      load_kv(true, b, hk, kt, t);
      barrier();
    }

    const uint ncols = min(BC, khi - kt);
    for (uint i = 0u; i < OR; i++) {
      float a = alpha_s[min(ro + i * NRO, BR - 1u)];
      l[i] *= a;
      for (uint j = 0u; j < OD; j++) acc[i * OD + j] *= a;
    }
    for (uint c = 0u; c < ncols; c++) {
      float vv[OD];
      for (uint j = 0u; j < OD; j++) vv[j] = v_at(c * DS + min(td + j * NTD, D - 1u));
      for (uint i = 0u; i < OR; i++) {
        float pv = Ps[min(ro + i * NRO, BR - 1u) * PS + c];
        l[i] += pv;
        for (uint j = 0u; j < OD; j++) acc[i * OD + j] = fma(pv, vv[j], acc[i * OD + j]);
      }
    }
  }

  for (uint i = 0u; i < OR; i++) {
    uint r = ro + i * NRO;
    if (r >= BR || q0 + r >= p.nq) continue;
    float inv = l[i] > 0.0 ? 1.0 / l[i] : 0.0;
    uint base = p.o_off + b * p.o_sb + (q0 + r) * p.o_st + h * D;
    for (uint j = 0u; j < OD; j++) {
      uint d = td + j * NTD;
      if (d < D) ob[base + d] = l[i] > 0.0 ? acc[i * OD + j] * inv : 0.0;
    }
  }
}
