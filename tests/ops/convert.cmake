deepgen_op_test(convert test_convert.c)
deepgen_op_test(runtime test_runtime.c)
