# The VLM half (issue 4): vision tower, language model, glue (model/vlm/vit.c, llm.c, vlm.c, lora.c)
# against the golden data of the tiny model.
deepgen_model_test(vit test_vit.c)
deepgen_model_test(llm test_llm.c)
deepgen_model_test(vlm test_vlm.c)
