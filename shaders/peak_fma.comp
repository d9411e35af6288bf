#version 450
// `deepgen bench ops`: the device's peak FMA rate, fp32 or (FP16=1) fp16 — eight independent
// chains of vec4 FMAs per invocation, so latency is hidden and only issue rate counts. Every
// chain converges (a·b + c with b < 1), so the values stay finite for any iteration count; the
// sum is stored so the compiler cannot drop the work. 2·4·8 = 64 FLOP per iteration.
#extension GL_GOOGLE_include_directive : require
#if FP16
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define T f16vec4
#define S float16_t
#else
#define T vec4
#define S float
#endif
layout(local_size_x = 256) in;
layout(push_constant) uniform Push { uint iters; float seed; } p;
layout(set = 0, binding = 0) buffer Out { float o[]; };

void main()
{
  S s = S(p.seed);
  T b = T(S(0.5) + s * S(0.25)), c = T(s * S(0.125));
  T a0 = T(s), a1 = a0 + T(S(0.01)), a2 = a0 + T(S(0.02)), a3 = a0 + T(S(0.03));
  T a4 = a0 + T(S(0.04)), a5 = a0 + T(S(0.05)), a6 = a0 + T(S(0.06)), a7 = a0 + T(S(0.07));
  for (uint i = 0; i < p.iters; i++) {
    a0 = fma(a0, b, c); a1 = fma(a1, b, c); a2 = fma(a2, b, c); a3 = fma(a3, b, c);
    a4 = fma(a4, b, c); a5 = fma(a5, b, c); a6 = fma(a6, b, c); a7 = fma(a7, b, c);
  }
  T r = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
  o[(gl_WorkGroupID.x * 256u + gl_LocalInvocationID.x) & 65535u] = float(r.x + r.y + r.z + r.w);
}
