# linear / matmul y = x·Wᵀ + b (vkc_ops_linear.c): a tiled kernel for many rows and a GEMV for
# M ≤ 8 (with a subgroup reduction and a shared-memory fallback), per weight dtype (q8_0 and
# q4_0: block-quantized, vkcompute/vkc_quant.h).
foreach(w f32 f16 bf16 q8_0 q4_0)
  string(TOUPPER ${w} W)
  deepgen_shader(linear_tiled_${w} linear_tiled.comp W_T=DTYPE_${W})
  deepgen_shader(linear_gemv_${w} linear_gemv.comp W_T=DTYPE_${W})
  deepgen_shader(linear_gemv_sg_${w} linear_gemv.comp W_T=DTYPE_${W} USE_SUBGROUP=1)
endforeach()
