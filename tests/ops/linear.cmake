deepgen_op_test(linear test_linear.c)
deepgen_op_test(linear_q8 test_linear_q8.c)
deepgen_op_test(linear_q4 test_linear_q4.c)
# The half of the block-type tests that every format shares (quant_test.h).
add_library(quant_test STATIC quant_test.c)
target_link_libraries(quant_test PUBLIC op_test)
target_link_libraries(op_linear_q8 PRIVATE quant_test)
target_link_libraries(op_linear_q4 PRIVATE quant_test)
# The double-precision reference loops are heavy (real DeepGen shapes): optimise them even in
# unoptimised builds so the test stays well inside its time budget.
set_source_files_properties(test_linear.c test_linear_q8.c quant_test.c PROPERTIES COMPILE_OPTIONS -O2)
# q4_0's reference quantizer rounds x·id before adding 8.5, as ggml's rule does in ISO C: no
# FMA contraction, whatever -march is added.
set_source_files_properties(test_linear_q4.c PROPERTIES COMPILE_OPTIONS "-O2;-ffp-contract=off")
# The register-blocked scalar GEMM, fp32 and fp16 tiles, every tile and weight type.
deepgen_op_test(linear_blocked test_linear_blocked.c)
set_source_files_properties(test_linear_blocked.c PROPERTIES COMPILE_OPTIONS -O2)
# Its self-check catches a deliberately broken variant (DEEPGEN_VK_TEST_BROKEN_BLOCKED).
deepgen_op_test(blocked_selfcheck test_blocked_selfcheck.c)
# The GEMM for CPU Vulkan devices, every weight type, against the reference and the tiled kernel's bits.
deepgen_op_test(linear_cpu test_linear_cpu.c)
set_source_files_properties(test_linear_cpu.c PROPERTIES COMPILE_OPTIONS -O2)
# Its self-check catches a deliberately broken variant (DEEPGEN_VK_TEST_BROKEN_CPU_GEMM).
deepgen_op_test(cpu_gemm_selfcheck test_cpu_gemm_selfcheck.c)
