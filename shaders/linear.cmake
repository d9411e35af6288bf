# linear / matmul y = x·Wᵀ + b (vkc_ops_linear.c): a tiled kernel for many rows and a GEMV for
# M ≤ 8 (with a subgroup reduction and a shared-memory fallback), per weight dtype (q8_0 and
# q4_0: block-quantized, vkcompute/vkc_quant.h).
# vkc_shaders_linear_tiled[weight dtype], vkc_shaders_linear_gemv[subgroup][weight dtype]
deepgen_shader_table(linear_tiled "[VKC_N_DTYPES]")
deepgen_shader_table(linear_gemv "[2][VKC_N_DTYPES]")
foreach(w f32 f16 bf16 q8_0 q4_0)
  string(TOUPPER ${w} W)
  deepgen_shader(linear_tiled_${w} linear_tiled.comp W_T=DTYPE_${W} AT linear_tiled[VKC_${W}])
  deepgen_shader(linear_gemv_${w} linear_gemv.comp W_T=DTYPE_${W} AT linear_gemv[0][VKC_${W}])
  deepgen_shader(linear_gemv_sg_${w} linear_gemv.comp W_T=DTYPE_${W} USE_SUBGROUP=1 AT linear_gemv[1][VKC_${W}])
endforeach()
# The register-blocked scalar GEMM (linear_blocked.comp): fp32 shared tiles for every weight type,
# fp16 ones (SHARED_F16, devices with shaderFloat16) for the 16-bit and block types;
# linear_blocked_broken_f16 drops the last K slice on purpose, for the self-check's test.
# vkc_shaders_linear_blocked[fp16 tiles][weight dtype] (no fp16-tile f32 variant: VKC_SHADER_NONE)
deepgen_shader_table(linear_blocked "[2][VKC_N_DTYPES]")
foreach(w f32 f16 bf16 q8_0 q4_0)
  string(TOUPPER ${w} W)
  deepgen_shader(linear_blocked_${w} linear_blocked.comp W_T=DTYPE_${W} AT linear_blocked[0][VKC_${W}])
  if(NOT w STREQUAL "f32")
    deepgen_shader(linear_blocked_half_${w} linear_blocked.comp W_T=DTYPE_${W} SHARED_F16=1
                   AT linear_blocked[1][VKC_${W}])
  endif()
endforeach()
deepgen_shader(linear_blocked_broken_f16 linear_blocked.comp W_T=DTYPE_F16 SELFTEST_DROP_LAST_K=1)
# The cooperative-matrix GEMM (linear_coopmat.comp), when glslc supports it (shaders/CMakeLists.txt);
# linear_coopmat_broken_f16 drops the last K slice on purpose: the self-check's test uses it.
# vkc_shaders_linear_coopmat[aligned][weight dtype]
deepgen_shader_table(linear_coopmat "[2][VKC_N_DTYPES]")
foreach(w f32 f16 bf16 q8_0 q4_0)
  string(TOUPPER ${w} W)
  deepgen_coopmat_shader(linear_coopmat_${w} linear_coopmat.comp W_T=DTYPE_${W} AT linear_coopmat[0][VKC_${W}])
  deepgen_coopmat_shader(linear_coopmat_aligned_${w} linear_coopmat.comp W_T=DTYPE_${W} ALIGNED=1
                         AT linear_coopmat[1][VKC_${W}])
endforeach()
deepgen_coopmat_shader(linear_coopmat_broken_f16 linear_coopmat.comp W_T=DTYPE_F16 SELFTEST_DROP_LAST_K=1)
# The GEMM for CPU Vulkan devices (linear_cpu.comp: lanes along n, x at uniform addresses, no
# shared memory); linear_cpu_broken_f16 drops the last 4 k on purpose, for the self-check's test.
# vkc_shaders_linear_cpu[weight dtype]
deepgen_shader_table(linear_cpu "[VKC_N_DTYPES]")
foreach(w f32 f16 bf16 q8_0 q4_0)
  string(TOUPPER ${w} W)
  deepgen_shader(linear_cpu_${w} linear_cpu.comp W_T=DTYPE_${W} AT linear_cpu[VKC_${W}])
endforeach()
deepgen_shader(linear_cpu_broken_f16 linear_cpu.comp W_T=DTYPE_F16 SELFTEST_DROP_LAST_K=1)
