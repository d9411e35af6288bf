# Normalisations (vkc_ops_norm.c). W_T is the storage type of the affine parameters (also
# used when there are none: the launcher then binds a placeholder); VEC = 4 for rows whose
# offsets, strides and width are multiples of 4. The row norms come twice: the _sg variants
# (USE_SUBGROUP) reduce with subgroup arithmetic, the others through shared memory only (for
# devices without it). The GroupNorm passes use shared memory only.
# vkc_shaders_norm_row[NORM: 0 layer, 1 RMS][subgroup][parameter dtype][VEC = 4],
# vkc_shaders_norm_group_apply[parameter dtype][VEC = 4], vkc_shaders_norm_group_stats[VEC = 4]
deepgen_shader_table(norm_row "[2][2][VKC_N_DTYPES][2]")
deepgen_shader_table(norm_group_apply "[VKC_N_DTYPES][2]")
deepgen_shader_table(norm_group_stats "[2]")
foreach(vec 1 4)
  set(_norm_sfx "")
  set(_v 0)
  if(vec EQUAL 4)
    set(_norm_sfx "_vec4")
    set(_v 1)
  endif()
  foreach(wt f32 f16 bf16)
    string(TOUPPER ${wt} _norm_wt)
    set(_t "[VKC_${_norm_wt}][${_v}]")
    deepgen_shader(norm_layer_${wt}${_norm_sfx} norm_row.comp NORM=0 W_T=DTYPE_${_norm_wt} VEC=${vec}
                   AT norm_row[0][0]${_t})
    deepgen_shader(norm_rms_${wt}${_norm_sfx} norm_row.comp NORM=1 W_T=DTYPE_${_norm_wt} VEC=${vec}
                   AT norm_row[1][0]${_t})
    deepgen_shader(norm_layer_sg_${wt}${_norm_sfx} norm_row.comp NORM=0 W_T=DTYPE_${_norm_wt} VEC=${vec}
                   USE_SUBGROUP=1 AT norm_row[0][1]${_t})
    deepgen_shader(norm_rms_sg_${wt}${_norm_sfx} norm_row.comp NORM=1 W_T=DTYPE_${_norm_wt} VEC=${vec}
                   USE_SUBGROUP=1 AT norm_row[1][1]${_t})
    deepgen_shader(norm_group_apply_${wt}${_norm_sfx} norm_group_apply.comp W_T=DTYPE_${_norm_wt} VEC=${vec}
                   AT norm_group_apply${_t})
  endforeach()
  deepgen_shader(norm_group_stats${_norm_sfx} norm_group_stats.comp VEC=${vec} AT norm_group_stats[${_v}])
endforeach()
deepgen_shader(norm_group_merge norm_group_merge.comp)
