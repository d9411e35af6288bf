# AdaLN modulation / gated residual with the exact bf16 mode (vkc_ops_adaln.c)
deepgen_op_test(adaln test_adaln.c)
