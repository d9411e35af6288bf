# Real-width smoke tests on the synthetic DeepGen 1.0 (model/nn/synthetic.h): one ctest per case of
# test_realwidth.c, labels model + realwidth. In the default run: "prompt" (the LLM and the
# connector through the pipeline, a 32² image) and the single components "vit_512", "dit_512"
# (with the 1024² position crop) and "vae_decode_1024" (the decoder's last block on a band wider
# than one binding), a few minutes together on lavapipe (docs/TESTING.md, PERF.md). The pipeline
# runs at 512² and 1024² and the full-depth run are also `slow`: one layer per component is still
# 1–3 TFLOP a case there (the VAE decoder alone 2.5 at 512², 10.5 at 1024²) at a few GFLOP/s.
add_executable(model_realwidth test_realwidth.c)
target_link_libraries(model_realwidth PRIVATE golden_test)
foreach(_case prompt vit-512 dit-512 vae-decode-1024 generate-512 edit-512 generate-1024 full-256-q8)
  string(REPLACE "-" "_" _name "${_case}")
  add_test(NAME model_realwidth_${_name} COMMAND model_realwidth -p /realwidth/${_case})
  set(_labels "model;vulkan;realwidth")
  set(_timeout 600)
  if(_case MATCHES "^(generate|edit|full)-")
    list(APPEND _labels slow)
    set(_timeout 3600)
  endif()
  set(_env ${DEEPGEN_TEST_ENV})
  if(_case STREQUAL "full-256-q8")
    # 45 CPU-minutes on lavapipe (docs/PERF.md): an hour of wall time on two shared cores
    set(_timeout 7200)
    # The whole model needs 3.4 GiB at 256² in q8_0; lavapipe reports a 2 GiB heap of host memory
    # but allocates beyond it, so the memory check is told 8 GiB (vkc.h).
    list(APPEND _env DEEPGEN_VK_FAKE_DEVICE_BYTES=8589934592)
  endif()
  set_tests_properties(model_realwidth_${_name} PROPERTIES ENVIRONMENT "${_env}" LABELS "${_labels}" TIMEOUT ${_timeout})
endforeach()
