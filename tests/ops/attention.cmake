deepgen_op_test(attention test_attention.c)
deepgen_op_test(rotary test_rotary.c)
deepgen_op_test(softmax test_softmax.c)
