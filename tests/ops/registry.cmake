# The generated shader registry: the enum, the blobs and the lookup tables of shaders/CMakeLists.txt
# against the names the launchers used to format (no device needed).
deepgen_op_test(shader_registry test_shader_registry.c)
if(DEEPGEN_HAVE_COOPMAT_SHADERS)
  target_compile_definitions(op_shader_registry PRIVATE DEEPGEN_TEST_COOPMAT_SHADERS=1)
else()
  target_compile_definitions(op_shader_registry PRIVATE DEEPGEN_TEST_COOPMAT_SHADERS=0)
endif()
