# attention, softmax, rotary (vkc_ops_attention.c). USE_SUBGROUP=1 variants need subgroup
# shuffle (attention) / arithmetic (softmax); the =0 variants reduce through shared memory.
deepgen_shader(attention_sg attention.comp USE_SUBGROUP=1)
deepgen_shader(attention attention.comp USE_SUBGROUP=0)
deepgen_shader(softmax_sg softmax.comp USE_SUBGROUP=1)
deepgen_shader(softmax softmax.comp USE_SUBGROUP=0)
deepgen_shader(rotary rotary.comp)
deepgen_coopmat_shader(attention_coopmat attention_coopmat.comp)
