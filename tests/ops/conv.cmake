# Convolutions, nearest upsample and the timestep sinusoid
deepgen_op_test(conv test_conv.c)
# The same cases on the register-blocked scalar implicit GEMM, every tile, bit-compared with the
# plain kernel: test_conv.c built with CONV_BLOCKED=1.
deepgen_op_test(conv_blocked test_conv.c)
target_compile_definitions(op_conv_blocked PRIVATE CONV_BLOCKED=1)
deepgen_op_test(timestep test_timestep.c)
