# Peak-rate kernels for `deepgen bench ops` (cli/bench_ops.c): fp32 and fp16 FMA, and the
# cooperative-matrix MMA where glslc supports it.
deepgen_shader(peak_fma_f32 peak_fma.comp FP16=0)
deepgen_shader(peak_fma_f16 peak_fma.comp FP16=1)
deepgen_coopmat_shader(peak_coopmat peak_coopmat.comp)
