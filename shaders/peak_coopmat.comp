#version 450
// `deepgen bench ops`: the device's peak cooperative-matrix rate (fp16 × fp16 → fp32 at the
// driver's shape, specialization constants 1..3). Each subgroup keeps four independent
// accumulators and multiplies operands already in registers: 4·2·CM·CN·CK FLOP per iteration.
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint CM = 16;
layout(constant_id = 2) const uint CN = 16;
layout(constant_id = 3) const uint CK = 16;
layout(push_constant) uniform Push { uint iters; float seed; } p;
layout(set = 0, binding = 0) buffer Out { float o[]; };
shared float16_t s[32 * 32];

void main()
{
  for (uint i = gl_LocalInvocationID.x; i < 32u * 32u; i += gl_WorkGroupSize.x)
    s[i] = float16_t(p.seed * float(i % 7u) * 0.01);
  barrier();
  coopmat<float16_t, gl_ScopeSubgroup, CM, CK, gl_MatrixUseA> a;
  coopmat<float16_t, gl_ScopeSubgroup, CK, CN, gl_MatrixUseB> b;
  coopMatLoad(a, s, 0, CK, gl_CooperativeMatrixLayoutRowMajor);
  coopMatLoad(b, s, 0, CN, gl_CooperativeMatrixLayoutRowMajor);
  coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator> c0 = coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator>(0.0);
  coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator> c1 = c0, c2 = c0, c3 = c0;
  for (uint i = 0; i < p.iters; i++) {
    c0 = coopMatMulAdd(a, b, c0);
    c1 = coopMatMulAdd(a, b, c1);
    c2 = coopMatMulAdd(a, b, c2);
    c3 = coopMatMulAdd(a, b, c3);
  }
  for (uint k = 0; k < c0.length(); k++) c0[k] = c0[k] + c1[k] + c2[k] + c3[k];
  uint slot = (gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID) % 64u;
  coopMatStore(c0, o, slot * CM * CN, CN, gl_CooperativeMatrixLayoutRowMajor);
}
