# AdaLN modulation and gated residual with an exact bf16 mode (vkc_ops_adaln.c)
# vkc_shaders_adaln[OP][round to bf16]
deepgen_shader_table(adaln "[2][2]")
deepgen_shader(adaln_modulate adaln.comp OP=0 AT adaln[0][0])
deepgen_shader(adaln_modulate_bf16 adaln.comp OP=0 ROUND_BF16=1 AT adaln[0][1])
deepgen_shader(adaln_gated_add adaln.comp OP=1 AT adaln[1][0])
deepgen_shader(adaln_gated_add_bf16 adaln.comp OP=1 ROUND_BF16=1 AT adaln[1][1])
