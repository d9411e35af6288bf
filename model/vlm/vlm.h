/* The VLM half of DeepGen (MODEL.md §1.4a–§1.7): reference images through the vision tower,
 * prompt rows through the language model, out come the stacked hidden states that the
 * connector (SCB) reads. This file is the glue: loading the vlm/ folder (either Qwen key
 * layout, an optional PEFT adapter), preprocessing, splicing image embeddings into the prompt
 * rows, and submitting the two stages with their timings.
 *
 *   g_autoptr (DgVlm) vlm = dg_vlm_load (dev, "DeepGen-1.0-diffusers/vlm", &opt, &error);
 *   g_autoptr (DgPromptBatch) batch = dg_prompt_batch_new (tok, reqs, n, n_queries, dg_vlm_vision_config (vlm), &error);
 *   dg_vlm_encode (vlm, arena, batch, images, n_images, meta_queries, &merged, &timings, NULL, &error);
 *   → merged [2B, L + n_queries, 6 · 2048] in the arena */
#pragma once

#include "image.h"
#include "llm.h"
#include "prompt.h"
#include "vit.h"

G_BEGIN_DECLS

typedef struct _DgVlm DgVlm;

typedef struct {
  DgPrecision precision;
  /* A PEFT adapter folder to merge at load; NULL = the adapter in the vlm folder itself
   * (adapter_config.json beside the weights), if any. */
  const char *lora;
  /* Load the language model alone, without the vision tower (its 1.3 GB stay in the file):
   * for prompts without reference images (text-to-image). dg_vlm_encode then refuses images. */
  gboolean text_only;
  DgWeightFormat weights; /* RELEASED, Q8_0 or Q4_0 for the Linear layers (deepgen.h) */
} DgVlmOptions;

#define DG_VLM_OPTIONS_INIT { DG_PRECISION_BF16, NULL, FALSE, DG_WEIGHTS_RELEASED }

/* @path: the vlm/ folder (config.json + model.safetensors or a sharded index). The key layout is
 * read from the weights: legacy (model.layers.*, visual.*) or nested (model.language_model.*,
 * model.visual.*). Errors name the file and what to do: DG_ERROR_MISSING, _FORMAT, _SHAPE,
 * _CONFIG, _UNSUPPORTED (e.g. unmerged PEFT tensors inside the weights), _OOM, _DEVICE. */
DgVlm *dg_vlm_load (VkcDevice *dev, const char *path, const DgVlmOptions *options, GError **error);
void dg_vlm_free (DgVlm *vlm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgVlm, dg_vlm_free)

const DgQwenVLConfig *dg_vlm_config (const DgVlm *vlm);
const DgQwenVisionConfig *dg_vlm_vision_config (const DgVlm *vlm);
DgVit *dg_vlm_vit (DgVlm *vlm); /* NULL when loaded text_only */
DgLlm *dg_vlm_llm (DgVlm *vlm);
VkcDevice *dg_vlm_device (DgVlm *vlm);
/* Whether the weights use the nested model.language_model.* / model.visual.* keys. */
gboolean dg_vlm_nested_layout (const DgVlm *vlm);
/* Whether a LoRA adapter was merged at load. */
gboolean dg_vlm_has_lora (const DgVlm *vlm);

/* Host preprocessing (MODEL.md §1.4a, §10 item 2): @image [-1, 1] (@layout, @height × @width,
 * sides multiples of 32) → bilinear 28/32 rescale (align_corners=False, no antialias), (x+1)/2,
 * CLIP normalisation, patch rows [N, 1176] in patch order (two identical temporal frames).
 * In bf16 mode the image, the constants and every intermediate are rounded to bf16 as in the
 * reference's bf16 arithmetic. *resized (optional): the rescaled [-1, 1] image, planar
 * [3, H', W'], for tests. Returns the patch rows (g_free), *grid filled. */
float *dg_vlm_preprocess (const DgQwenVisionConfig *cfg, DgPrecision precision, const float *image, DgLayout layout,
                          guint height, guint width, DgVitGrid *grid, float **resized, GError **error);

/* A reference image in [-1, 1] (x = 2·u8/255 − 1), sides multiples of 32. */
typedef struct {
  const float *pixels;
  DgLayout layout;
  guint height, width;
} DgVlmImage;

/* Per-stage times of one encode, for benchmarks: GPU time from the timestamps of each stage's
 * command buffer (< 0 when the device has no timestamps), host wall time of record + submit +
 * wait, and the per-pipeline GPU times of vkc_cmd_profile (NULL without timestamps). */
typedef struct {
  double vit_gpu_ms, llm_gpu_ms;
  double vit_wall_ms, llm_wall_ms;
  GHashTable *vit_profile, *llm_profile;
} DgVlmTimings;

void dg_vlm_timings_clear (DgVlmTimings *t);

typedef struct {
  DgVitTap vit; /* names as in vit.h, recorded once per image (image i after image i−1) */
  DgLlmTap llm; /* "llm.h0" is the assembled input (inputs_embeds) */
} DgVlmTaps;

/* Encodes @batch: every reference image once through the ViT (@images: the references of
 * request 0, then of request 1, …, as dg_prompt_batch_new was given their sizes; a VLM loaded
 * text_only refuses images with DG_ERROR_INVALID_ARGUMENT), their
 * embeddings into the image-pad runs of both the conditional and the unconditional rows,
 * @meta_queries [batch->n_queries, hidden] (the connector's, GPU, f32 holding bf16 values in
 * bf16 mode as the connector's vectors do) appended to every row, the
 * decoder run over the whole batch. *merged (arena) [n_rows, seq_len, n_selected · hidden].
 * Two submissions (ViT, then LLM), waited for. @timings and @taps may be NULL. */
gboolean dg_vlm_encode (DgVlm *vlm, DgArena *arena, const DgPromptBatch *batch, const DgVlmImage *images,
                        guint n_images, const VkcTensor *meta_queries, VkcTensor *merged, DgVlmTimings *timings,
                        const DgVlmTaps *taps, GError **error);

G_END_DECLS
