# Convolutions, nearest upsample (vkc_ops_conv.c) and the timestep sinusoid (vkc_ops_timestep.c)
# vkc_shaders_conv2d[thin][weight dtype]
deepgen_shader_table(conv2d "[2][VKC_N_DTYPES]")
foreach(wt f32 f16 bf16)
  string(TOUPPER ${wt} W)
  # 64 pixels × 64 channels per workgroup: every conv with Cout > 16.
  deepgen_shader(conv2d_${wt} conv2d.comp W_T=DTYPE_${W} AT conv2d[0][VKC_${W}])
  # 128 pixels × 16 channels for Cout ≤ 16 (VAE decoder conv_out 128→3), where most of a
  # 64-channel tile would be padding.
  deepgen_shader(conv2d_thin_${wt} conv2d.comp W_T=DTYPE_${W} BM=128 BN=16 BK=8 AT conv2d[1][VKC_${W}])
endforeach()
# The register-blocked scalar implicit GEMM (conv2d_blocked.comp, tiles of vkc_blocked_pick), fp32
# shared tiles; conv2d_blocked_broken_f16 drops the last K slice on purpose, for the self-check's
# test. vkc_shaders_conv2d_blocked[weight dtype]
deepgen_shader_table(conv2d_blocked "[VKC_N_DTYPES]")
foreach(wt f32 f16 bf16)
  string(TOUPPER ${wt} W)
  deepgen_shader(conv2d_blocked_${wt} conv2d_blocked.comp W_T=DTYPE_${W} AT conv2d_blocked[VKC_${W}])
endforeach()
deepgen_shader(conv2d_blocked_broken_f16 conv2d_blocked.comp W_T=DTYPE_F16 SELFTEST_DROP_LAST_K=1)
deepgen_shader(upsample_nearest2 upsample.comp)
deepgen_shader(timestep_embedding timestep.comp)
# The cooperative-matrix implicit GEMM (conv2d_coopmat.comp), when glslc supports it.
# vkc_shaders_conv2d_coopmat[weight dtype]
deepgen_shader_table(conv2d_coopmat "[VKC_N_DTYPES]")
foreach(wt f32 f16 bf16)
  string(TOUPPER ${wt} W)
  deepgen_coopmat_shader(conv2d_coopmat_${wt} conv2d_coopmat.comp W_T=DTYPE_${W} AT conv2d_coopmat[VKC_${W}])
endforeach()
