# embedding gather y = table[ids] (vkc_ops_linear.c), per table dtype and id signedness.
# vkc_shaders_embedding[table dtype][ids signed]
deepgen_shader_table(embedding "[VKC_N_DTYPES][2]")
foreach(t f32 f16 bf16)
  string(TOUPPER ${t} T)
  deepgen_shader(embedding_${t}_u32 embedding.comp T_T=DTYPE_${T} AT embedding[VKC_${T}][0])
  deepgen_shader(embedding_${t}_i32 embedding.comp T_T=DTYPE_${T} IDS_SIGNED=1 AT embedding[VKC_${T}][1])
endforeach()
