# `deepgen convert` (model/io/convert.c): the tiny model converted to q8_0 GGUF files gives the same
# GPU weights, the same images and the same memory plan as load-time q8_0 on the original.
deepgen_model_test(convert test_convert.c)
