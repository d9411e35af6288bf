#version 450
// Configure-time probe (shaders/CMakeLists.txt): does this glslc compile GL_KHR_cooperative_matrix
// with the constructs the coopmat kernels use (spec-constant shapes, fp16 A/B, fp32 accumulator,
// shared-memory load/store)? Debian 12's shaderc 2023.2 does not; Debian 13's does.
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
layout(local_size_x = 32) in;
layout(constant_id = 0) const uint CM = 16;
shared float16_t s[CM * CM];
shared float r[CM * CM];
void main()
{
  coopmat<float16_t, gl_ScopeSubgroup, CM, CM, gl_MatrixUseA> a;
  coopmat<float16_t, gl_ScopeSubgroup, CM, CM, gl_MatrixUseB> b;
  coopmat<float, gl_ScopeSubgroup, CM, CM, gl_MatrixUseAccumulator> c = coopmat<float, gl_ScopeSubgroup, CM, CM, gl_MatrixUseAccumulator>(0.0);
  coopMatLoad(a, s, 0, CM, gl_CooperativeMatrixLayoutRowMajor);
  coopMatLoad(b, s, 0, CM, gl_CooperativeMatrixLayoutColumnMajor);
  c = coopMatMulAdd(a, b, c);
  coopMatStore(c, r, 0, CM, gl_CooperativeMatrixLayoutRowMajor);
}
