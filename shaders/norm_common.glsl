// Shared pieces of the normalisation shaders: affine parameters in any storage dtype, the
// output rounding flags, and Welford/Chan statistics.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

// Push-constant flag bits (must match vkc_ops_norm.c).
#define NF_HAS_W 1u
#define NF_HAS_B 2u
#define NF_ROUND_NORMED 4u   // round x̂ to bf16 before the weight (Qwen / diffusers RMSNorm)
#define NF_ROUND_OUT 8u      // round the result to bf16 (bf16 activations)
#define NF_SILU 16u          // GroupNorm: SiLU after the affine

#if VEC == 4
#define T vec4
#else
#define T float
#endif

// Weight and bias at bindings WB_BINDING, WB_BINDING + 1 (when defined), element type W_T.
// With VEC = 4 (launcher checks alignment) 16-bit parameters are read 4 at a time as a uvec2.
#ifdef WB_BINDING
#if W_T == DTYPE_F32
layout(set = 0, binding = WB_BINDING) readonly buffer W { T w_[]; };
layout(set = 0, binding = WB_BINDING + 1) readonly buffer Bi { T b_[]; };
#define LOAD_W(i) w_[i]
#define LOAD_B(i) b_[i]
#else
#if VEC == 4
layout(set = 0, binding = WB_BINDING) readonly buffer W { uvec2 w_[]; };
layout(set = 0, binding = WB_BINDING + 1) readonly buffer Bi { uvec2 b_[]; };
vec4 unpack4(uvec2 u)
{
#if W_T == DTYPE_BF16
  return vec4(bf16_lo(u.x), bf16_hi(u.x), bf16_lo(u.y), bf16_hi(u.y));
#else
  return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
#endif
}
#define LOAD_W(i) unpack4(w_[i])
#define LOAD_B(i) unpack4(b_[i])
#else
layout(set = 0, binding = WB_BINDING) readonly buffer W { uint w_[]; };
layout(set = 0, binding = WB_BINDING + 1) readonly buffer Bi { uint b_[]; };
float unpack1(uint w, uint i)
{
#if W_T == DTYPE_BF16
  return (i & 1u) != 0u ? bf16_hi(w) : bf16_lo(w);
#else
  return unpackHalf2x16(w)[i & 1u];
#endif
}
#define LOAD_W(i) unpack1(w_[(i) >> 1], (i))
#define LOAD_B(i) unpack1(b_[(i) >> 1], (i))
#endif
#endif
#endif

#if VEC == 4
T round_bf16_t(T v) { return vec4(round_bf16(v.x), round_bf16(v.y), round_bf16(v.z), round_bf16(v.w)); }
#else
T round_bf16_t(T v) { return round_bf16(v); }
#endif

// Welford running statistics (n, mean, M2) and Chan's merge of two such sets.
struct Stats { float n; float mean; float m2; };

void stats_push(inout Stats s, float x)
{
  s.n += 1.0f;
  float d = x - s.mean;
  s.mean += d / s.n;
  s.m2 += d * (x - s.mean);
}

Stats stats_merge(Stats a, Stats b)
{
  float n = a.n + b.n;
  if (n == 0.0f) return a;
  float d = b.mean - a.mean;
  float fb = b.n / n;
  Stats r;
  r.n = n;
  r.mean = a.mean + d * fb;
  r.m2 = a.m2 + b.m2 + d * d * a.n * fb;
  return r;
}
