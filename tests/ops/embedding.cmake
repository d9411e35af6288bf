deepgen_op_test(embedding test_embedding.c)
