# Normalisations (vkc_ops_norm.c). W_T is the storage type of the affine parameters (also
# used when there are none: the launcher then binds a placeholder); VEC = 4 for rows whose
# offsets, strides and width are multiples of 4. The row norms come twice: the _sg variants
# (USE_SUBGROUP) reduce with subgroup arithmetic, the others through shared memory only (for
# devices without it). The GroupNorm passes use shared memory only.
foreach(vec 1 4)
  set(_norm_sfx "")
  if(vec EQUAL 4)
    set(_norm_sfx "_vec4")
  endif()
  foreach(wt f32 f16 bf16)
    string(TOUPPER ${wt} _norm_wt)
    deepgen_shader(norm_layer_${wt}${_norm_sfx} norm_row.comp NORM=0 W_T=DTYPE_${_norm_wt} VEC=${vec})
    deepgen_shader(norm_rms_${wt}${_norm_sfx} norm_row.comp NORM=1 W_T=DTYPE_${_norm_wt} VEC=${vec})
    deepgen_shader(norm_layer_sg_${wt}${_norm_sfx} norm_row.comp NORM=0 W_T=DTYPE_${_norm_wt} VEC=${vec}
                   USE_SUBGROUP=1)
    deepgen_shader(norm_rms_sg_${wt}${_norm_sfx} norm_row.comp NORM=1 W_T=DTYPE_${_norm_wt} VEC=${vec}
                   USE_SUBGROUP=1)
    deepgen_shader(norm_group_apply_${wt}${_norm_sfx} norm_group_apply.comp W_T=DTYPE_${_norm_wt} VEC=${vec})
  endforeach()
  deepgen_shader(norm_group_stats${_norm_sfx} norm_group_stats.comp VEC=${vec})
endforeach()
deepgen_shader(norm_group_merge norm_group_merge.comp)
