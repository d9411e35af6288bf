# linear / matmul y = x·Wᵀ + b (vkc_ops_linear.c): a tiled kernel for many rows and a GEMV for
# M ≤ 8 (with a subgroup reduction and a shared-memory fallback), per weight dtype (q8_0 and
# q4_0: block-quantized, vkcompute/vkc_quant.h).
foreach(w f32 f16 bf16 q8_0 q4_0)
  string(TOUPPER ${w} W)
  deepgen_shader(linear_tiled_${w} linear_tiled.comp W_T=DTYPE_${W})
  deepgen_shader(linear_gemv_${w} linear_gemv.comp W_T=DTYPE_${W})
  deepgen_shader(linear_gemv_sg_${w} linear_gemv.comp W_T=DTYPE_${W} USE_SUBGROUP=1)
endforeach()
# The cooperative-matrix GEMM (linear_coopmat.comp), when glslc supports it (shaders/CMakeLists.txt);
# linear_coopmat_broken_f16 drops the last K slice on purpose: the self-check's test uses it.
foreach(w f32 f16 bf16 q8_0 q4_0)
  string(TOUPPER ${w} W)
  deepgen_coopmat_shader(linear_coopmat_${w} linear_coopmat.comp W_T=DTYPE_${W})
  deepgen_coopmat_shader(linear_coopmat_aligned_${w} linear_coopmat.comp W_T=DTYPE_${W} ALIGNED=1)
endforeach()
deepgen_coopmat_shader(linear_coopmat_broken_f16 linear_coopmat.comp W_T=DTYPE_F16 SELFTEST_DROP_LAST_K=1)
