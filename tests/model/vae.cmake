# SD3 VAE and the SCB connector (model/vae/vae.c, model/connector/connector.c) against the goldens.
deepgen_model_test(vae test_vae.c)
deepgen_model_test(connector test_connector.c)
# The scenario encodes read the reference PNGs; gdk-pixbuf is a test-only dependency here.
pkg_check_modules(DG_TEST_PIXBUF IMPORTED_TARGET gdk-pixbuf-2.0)
if(DG_TEST_PIXBUF_FOUND)
  target_link_libraries(model_vae PRIVATE PkgConfig::DG_TEST_PIXBUF)
  target_compile_definitions(model_vae PRIVATE HAVE_GDK_PIXBUF=1)
else()
  message(STATUS "DeepGen: gdk-pixbuf-2.0 not found, model_vae skips the PNG scenario encodes")
endif()
# The default VAE tiling on a 512×768 image (~1 min on lavapipe): GLib's thorough mode of model_vae.
add_test(NAME model_vae_tiles COMMAND model_vae -m thorough -p /vae/fp32/tiled-default)
set_tests_properties(model_vae_tiles PROPERTIES ENVIRONMENT "${DEEPGEN_TEST_ENV}" LABELS "model;vulkan" TIMEOUT 900)
