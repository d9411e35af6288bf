deepgen_op_test(norm test_norm.c)
