# Cooperative-matrix kernels (issue #9). Natively (label "op") they report skipped (77) on
# devices without usable cooperative matrices — Debian 12's lavapipe among them. Label "coopmat"
# runs the same binaries inside the Debian 13 root (DEEPGEN_GIMP3_ROOT, scripts/make-gimp3-root.sh),
# on Mesa 26 lavapipe (8×8×8 coopmat) under that root's Khronos validation layer, with
# DEEPGEN_VK_FORCE_COOPMAT=1 so every op with a coopmat path takes it: `ctest -L coopmat`.
add_executable(coopmat_probe coopmat_probe.c)
target_link_libraries(coopmat_probe PRIVATE vkcompute)

deepgen_op_test(linear_coopmat test_linear_coopmat.c)
deepgen_op_test(coopmat_selfcheck test_coopmat_selfcheck.c)
# The attention cases on the coopmat kernel: test_attention.c built with ATTN_COOPMAT=1.
deepgen_op_test(attention_coopmat test_attention.c)
target_compile_definitions(op_attention_coopmat PRIVATE ATTN_COOPMAT=1)
# And the conv cases on the coopmat implicit GEMM: test_conv.c built with CONV_COOPMAT=1.
deepgen_op_test(conv_coopmat test_conv.c)
target_compile_definitions(op_conv_coopmat PRIVATE CONV_COOPMAT=1)
set_tests_properties(op_linear_coopmat op_coopmat_selfcheck op_attention_coopmat op_conv_coopmat PROPERTIES
                     SKIP_RETURN_CODE 77)

set(_root "${DEEPGEN_GIMP3_ROOT}")
if(NOT _root)
  set(_root "${CMAKE_BINARY_DIR}/no-gimp3-root")
endif()
set(_in_root ${CMAKE_CURRENT_SOURCE_DIR}/run-in-root.sh ${_root} ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR}
             $<TARGET_FILE:coopmat_probe>)
add_test(NAME coopmat_linear COMMAND ${_in_root} $<TARGET_FILE:op_linear_coopmat>)
add_test(NAME coopmat_selfcheck COMMAND ${_in_root} $<TARGET_FILE:op_coopmat_selfcheck>)
add_test(NAME coopmat_attention COMMAND ${_in_root} $<TARGET_FILE:op_attention_coopmat>)
add_test(NAME coopmat_conv COMMAND ${_in_root} $<TARGET_FILE:op_conv_coopmat>)
set_tests_properties(coopmat_linear coopmat_attention coopmat_conv PROPERTIES
  ENVIRONMENT "${DEEPGEN_TEST_ENV};DEEPGEN_VK_FORCE_COOPMAT=1" LABELS "coopmat" TIMEOUT 900 SKIP_RETURN_CODE 77)
# The self-check test forces cooperative matrices itself, once it has seen the device has them.
set_tests_properties(coopmat_selfcheck PROPERTIES
  ENVIRONMENT "${DEEPGEN_TEST_ENV}" LABELS "coopmat" TIMEOUT 900 SKIP_RETURN_CODE 77)

# The six golden pipeline scenarios (tests/model/test_pipeline.c) with every coopmat path forced,
# inside the root: bf16 mode then runs its GEMMs on cooperative matrices (f32 weights, the fp32
# mode, stay fp32 by rule: vkc_ops_linear.h). ~1.5 min on 2 cores. model_pipeline is defined later
# (tests/model), hence the deferred call.
set_property(GLOBAL PROPERTY DEEPGEN_COOPMAT_IN_ROOT "${_in_root}")
set_property(GLOBAL PROPERTY DEEPGEN_COOPMAT_ENV "${DEEPGEN_TEST_ENV};DEEPGEN_VK_FORCE_COOPMAT=1")
function(deepgen_coopmat_pipeline_test)
  if(TARGET model_pipeline)
    get_property(in_root GLOBAL PROPERTY DEEPGEN_COOPMAT_IN_ROOT)
    get_property(env GLOBAL PROPERTY DEEPGEN_COOPMAT_ENV)
    add_test(NAME coopmat_pipeline COMMAND ${in_root} $<TARGET_FILE:model_pipeline>)
    set_tests_properties(coopmat_pipeline PROPERTIES
      ENVIRONMENT "${env}" LABELS "coopmat" TIMEOUT 1800 SKIP_RETURN_CODE 77)
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL deepgen_coopmat_pipeline_test)
