# The whole pipeline (model/pipeline.c) end to end on the tiny model against the six golden
# scenarios. Reference images are PNGs: gdk-pixbuf decodes them (a test-only dependency).
pkg_check_modules(GDKPIXBUF IMPORTED_TARGET gdk-pixbuf-2.0)
if(GDKPIXBUF_FOUND)
  deepgen_model_test(pipeline test_pipeline.c)
  target_link_libraries(model_pipeline PRIVATE PkgConfig::GDKPIXBUF)
  set_tests_properties(model_pipeline PROPERTIES TIMEOUT 1800)
else()
  message(STATUS "DeepGen: gdk-pixbuf-2.0 not found, model_pipeline test skipped")
endif()
