#version 450
// Element-wise dtype conversion of a contiguous range: dst[i] = SRC→DST(src[i]).
// DST_T = DTYPE_F32 also serves as "round through bf16" when ROUND_BF16 is set (in place or
// not): the bf16 precision mode of the model rounds f32 activations where the reference
// stores them in bf16.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

#if SRC_T == DTYPE_F32
layout(set = 0, binding = 0) readonly buffer Src { float src[]; };
float load_src(uint j) { return src[j]; }
#else
layout(set = 0, binding = 0) readonly buffer Src { uint src[]; };
float load_src(uint j)
{
  uint w = src[j >> 1];
#if SRC_T == DTYPE_BF16
  return (j & 1u) != 0u ? bf16_hi(w) : bf16_lo(w);
#else
  return unpackHalf2x16(w)[j & 1u];
#endif
}
#endif

#if DST_T == DTYPE_F32
layout(set = 0, binding = 1) buffer Dst { float dst[]; };
#else
layout(set = 0, binding = 1) buffer Dst { uint dst[]; };
#endif

layout(push_constant) uniform Push {
  uint n;        // elements
  uint src_off;  // element offset of src[0] in its binding
  uint dst_off;  // element offset of dst[0] in its binding
} p;

uint to_bits16(float f)
{
#if DST_T == DTYPE_BF16
  return f32_to_bf16_bits(f);
#else
  return packHalf2x16(vec2(f, 0.0)) & 0xffffu;
#endif
}

void main()
{
  uint i = linear_id(256);
#if DST_T == DTYPE_F32
  if (i >= p.n) return;
  float v = load_src(p.src_off + i);
#ifdef ROUND_BF16
  v = round_bf16(v);
#endif
  dst[p.dst_off + i] = v;
#else
  // One invocation per 32-bit word of dst so that no two invocations share a word.
  uint first = p.dst_off >> 1;                       // word holding dst element 0
  uint k = first + i;
  uint a = 2u * k, b = a + 1u;                       // absolute element indices in the word
  uint lo_ok = uint(a >= p.dst_off && a < p.dst_off + p.n);
  uint hi_ok = uint(b >= p.dst_off && b < p.dst_off + p.n);
  if (lo_ok + hi_ok == 0u) return;
  uint w = (lo_ok + hi_ok == 2u) ? 0u : dst[k];      // partial word: keep the neighbour's half
  if (lo_ok != 0u) w = (w & 0xffff0000u) | to_bits16(load_src(p.src_off + a - p.dst_off));
  if (hi_ok != 0u) w = (w & 0x0000ffffu) | (to_bits16(load_src(p.src_off + b - p.dst_off)) << 16);
  dst[k] = w;
#endif
}
