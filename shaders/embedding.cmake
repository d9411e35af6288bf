# embedding gather y = table[ids] (vkc_ops_linear.c), per table dtype and id signedness.
foreach(t f32 f16 bf16)
  string(TOUPPER ${t} T)
  deepgen_shader(embedding_${t}_u32 embedding.comp T_T=DTYPE_${T})
  deepgen_shader(embedding_${t}_i32 embedding.comp T_T=DTYPE_${T} IDS_SIGNED=1)
endforeach()
