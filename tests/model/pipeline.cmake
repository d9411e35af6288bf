# The whole pipeline (model/pipeline/pipeline.c) end to end on the tiny model against the six golden
# scenarios. Reference images are PNGs: gdk-pixbuf decodes them (a test-only dependency).
pkg_check_modules(GDKPIXBUF IMPORTED_TARGET gdk-pixbuf-2.0)
if(GDKPIXBUF_FOUND)
  deepgen_model_test(pipeline test_pipeline.c)
  target_link_libraries(model_pipeline PRIVATE PkgConfig::GDKPIXBUF)
  set_tests_properties(model_pipeline PROPERTIES TIMEOUT 1800)
else()
  message(STATUS "DeepGen: gdk-pixbuf-2.0 not found, model_pipeline test skipped")
endif()
# The memory plan against real runs: every stage holds what the plan computed; a job that does
# not fit the device (DEEPGEN_VK_FAKE_DEVICE_BYTES) is refused before anything is uploaded; a
# resident model on a device that holds only some components keeps those and reuploads the rest.
deepgen_model_test(pipeline_memory test_pipeline_memory.c)
