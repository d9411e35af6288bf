# Convolutions, nearest upsample and the timestep sinusoid
deepgen_op_test(conv test_conv.c)
deepgen_op_test(timestep test_timestep.c)
