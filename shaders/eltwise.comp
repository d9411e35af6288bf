#version 450
// Element-wise ops over row views: out[r, c] = OP(a[r, c], b[r, c], d[r, c]).
//
// Rows are addressed through three levels (i0, i1, i2) with one stride per level and operand
// (row r = (i0·n1 + i1)·n2 + i2), which covers [B, N, C] views with a row stride, channel
// slices, and broadcasting over tokens or over everything (stride 0). Columns are contiguous.
// With VEC = 4 every offset, stride and the column count are in units of vec4 (the launcher
// divides them). The output may be the same memory as operand a: each invocation reads its
// element(s) before writing them and no other invocation touches them.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "eltwise_math.glsl"

// OP_* values (must match vkc_ops_eltwise.c)
#define OP_COPY 0
#define OP_SILU 1
#define OP_GELU_ERF 2
#define OP_GELU_TANH 3
#define OP_ERF 4
#define OP_SCALE 5
#define OP_ADD 6
#define OP_MUL 7
#define OP_SWIGLU 8
#define OP_MODULATE 9
#define OP_GATED_ADD 10

#if OP <= OP_SCALE
#define N_IN 1
#elif OP <= OP_SWIGLU
#define N_IN 2
#else
#define N_IN 3
#endif

layout(local_size_x = 256) in;

#if VEC == 4
#define T vec4
#else
#define T float
#endif

layout(set = 0, binding = 0) buffer Out { T out_[]; };
layout(set = 0, binding = 1) readonly buffer A { T a_[]; };
#if N_IN >= 2
layout(set = 0, binding = 2) readonly buffer B { T b_[]; };
#endif
#if N_IN >= 3
layout(set = 0, binding = 3) readonly buffer D { T d_[]; };
#endif

layout(push_constant) uniform Push {
  uint total;    // rows · cols
  uint cols;     // per row (vec units)
  uint rows;
  uint n1, n2;   // sizes of row levels 1 and 2
  float alpha;   // OP_SCALE
  uint pad0, pad1;
  uvec4 off;     // element offsets of out, a, b, d in their bindings
  uvec4 s0, s1, s2;  // row strides per level of out, a, b, d
} p;

#if VEC == 4
#define MAP(f, v) vec4(f(v.x), f(v.y), f(v.z), f(v.w))
#else
#define MAP(f, v) f(v)
#endif

void main()
{
  uint i = linear_id(256);
  if (i >= p.total) return;
  uint r = i / p.cols;
  uint c = i - r * p.cols;
  uint i0 = 0u, i1 = 0u, i2 = r;
  if (p.n2 < p.rows) {
    i2 = r % p.n2;
    uint q = r / p.n2;
    i1 = q % p.n1;
    i0 = q / p.n1;
  }
  uvec4 idx = p.off + i0 * p.s0 + i1 * p.s1 + i2 * p.s2 + uvec4(c);

  T a = a_[idx.y];
#if N_IN >= 2
  T b = b_[idx.z];
#endif
#if N_IN >= 3
  T d = d_[idx.w];
#endif

#if OP == OP_COPY
  T y = a;
#elif OP == OP_SILU
  T y = MAP(silu_f, a);
#elif OP == OP_GELU_ERF
  T y = MAP(gelu_erf_f, a);
#elif OP == OP_GELU_TANH
  T y = MAP(gelu_tanh_f, a);
#elif OP == OP_ERF
  T y = MAP(erf_acc, a);
#elif OP == OP_SCALE
  T y = p.alpha * a;
#elif OP == OP_ADD
  T y = a + b;
#elif OP == OP_MUL
  T y = a * b;
#elif OP == OP_SWIGLU
  T y = MAP(silu_f, a) * b;
#elif OP == OP_MODULATE
  T y = a * (1.0f + b) + d;    // b = scale, d = shift
#elif OP == OP_GATED_ADD
  T y = a + b * d;             // b = gate, d = value
#endif
  out_[idx.x] = y;
}
