# The VLM half (issue 4): vision tower, language model, glue (model/vlm/vit.c, llm.c, vlm.c, lora.c)
# against the golden data of the tiny model.
deepgen_model_test(vit test_vit.c)
deepgen_model_test(llm test_llm.c)
deepgen_model_test(vlm test_vlm.c)
# Describe: greedy captioning with a KV cache against transformers' generate (model/vlm/describe.c).
pkg_check_modules(GDKPIXBUF IMPORTED_TARGET gdk-pixbuf-2.0)
if(GDKPIXBUF_FOUND)
  deepgen_model_test(describe test_describe.c)
  target_link_libraries(model_describe PRIVATE PkgConfig::GDKPIXBUF PkgConfig::JSONGLIB)
endif()
