#version 450
// AdaLN steps over [B, N, C] (vkc_ops_adaln.h), one invocation per element:
//   OP_MODULATE:  y = x·(1 + a) + b     (a = scale, b = shift: [B, C])
//   OP_GATED_ADD: y = x + a·b           (a = gate [B, C], b = value [B, N, C])
// With ROUND_BF16 every operation is rounded to bf16 like torch on bf16 tensors.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#define OP_MODULATE 0
#define OP_GATED_ADD 1

layout(local_size_x = 256) in;

layout(set = 0, binding = 0) readonly buffer X { float x_[]; };
layout(set = 0, binding = 1) readonly buffer A { float a_[]; };
layout(set = 0, binding = 2) readonly buffer Bv { float b_[]; };
layout(set = 0, binding = 3) buffer Y { float y_[]; };

layout(push_constant) uniform Push {
  uint n, N, C;                  // elements, tokens per batch row, channels
  uint x_off, x_sb, x_sn;        // element offset in the binding, batch and token strides
  uint y_off, y_sb, y_sn;
  uint a_off, a_sb;              // [B, C] operand
  uint b_off, b_sb, b_sn;        // shift [B, C] (b_sn = 0) or value [B, N, C]
} p;

#ifdef ROUND_BF16
#define R(v) round_bf16(v)
#else
#define R(v) (v)
#endif

void main()
{
  uint i = linear_id(256);
  if (i >= p.n) return;
  uint c = i % p.C, t = i / p.C, n = t % p.N, b = t / p.N;
  float x = x_[p.x_off + b * p.x_sb + n * p.x_sn + c];
  float a = a_[p.a_off + b * p.a_sb + c];
  float bv = b_[p.b_off + b * p.b_sb + n * p.b_sn + c];
#if OP == OP_MODULATE
  float y = R(R(x * R(1.0 + a)) + bv);
#else
  float y = R(x + R(a * bv));
#endif
  y_[p.y_off + b * p.y_sb + n * p.y_sn + c] = y;
}
