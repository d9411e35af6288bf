# Element-wise ops (vkc_ops_eltwise.c): one source, OP selects the function (values in
# eltwise.comp), VEC = 4 for rows whose offsets, strides and width are multiples of 4.
set(_eltwise_ops copy silu gelu_erf gelu_tanh erf scale add mul swiglu modulate gated_add)
# vkc_shaders_eltwise[OP][VEC = 4]
list(LENGTH _eltwise_ops _eltwise_n)
deepgen_shader_table(eltwise "[${_eltwise_n}][2]")
set(_eltwise_i 0)
foreach(op IN LISTS _eltwise_ops)
  deepgen_shader(eltwise_${op} eltwise.comp OP=${_eltwise_i} VEC=1 AT eltwise[${_eltwise_i}][0])
  deepgen_shader(eltwise_${op}_vec4 eltwise.comp OP=${_eltwise_i} VEC=4 AT eltwise[${_eltwise_i}][1])
  math(EXPR _eltwise_i "${_eltwise_i} + 1")
endforeach()
deepgen_shader(eltwise_mean_tokens eltwise_mean.comp)
