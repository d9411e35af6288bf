deepgen_op_test(eltwise test_eltwise.c)
