/* `deepgen convert`: a DeepGen-1.0-diffusers folder with its Linear weights already quantized
 * (DESIGN.md §3), so that 8-bit runs need neither the 14.4 GB of released files nor the
 * quantization at every load.
 *
 * The output has the source's layout. vlm/, connector/ and transformer/ each hold one
 * `model.gguf` (gguf.h) instead of their safetensors files: every Linear weight that
 * DG_WEIGHTS_Q8_0 quantizes (dg_plan_tensor_quantizable, the rule plan.c and weights.c use) is
 * stored as q8_0, quantized from its bf16-rounded values exactly as dg_weights_linear does at
 * load, so a converted folder gives the GPU the very bits that load-time quantization gives in
 * bf16 mode; every other tensor keeps its stored dtype and values, and its diffusers name. The
 * metadata says general.architecture = "deepgen", deepgen.component = the folder name,
 * deepgen.weights = "q8_0" and general.alignment = 32. Everything else (configs, tokenizer,
 * scheduler, adapter files beside the VLM, vae/ whole) is copied as it is; entries whose name
 * starts with a dot (.cache, .gitattributes) are left out.
 *
 * dg_model_open () runs a converted folder with DG_WEIGHTS_Q8_0 whatever was asked: it has no
 * released weights to give. The output is built in a temporary folder beside @dst and renamed
 * to @dst at the end, so an interrupted conversion never leaves a folder that looks complete. */
#pragma once

#include "deepgen.h"

G_BEGIN_DECLS

/* dg_convert_model and its options are in deepgen.h. */

/* Writes the weights of the component folder @src_dir (named @folder: "vlm", "connector",
 * "transformer") as one GGUF file @dst_path, as dg_convert_model does. */
gboolean dg_convert_component (const char *src_dir, const char *folder, const char *dst_path,
                               const DgConvertOptions *options, GError **error);

G_END_DECLS
