/* PEFT LoRA adapters on the Qwen2.5-VL, merged into the base weights at load (MODEL.md §3).
 *
 * The released DeepGen-1.0-diffusers `vlm/` already has its LoRA merged, so this is only needed
 * for a stock Qwen2.5-VL plus an adapter (or the tiny test model's vlm_lora/). An adapter is the
 * folder PEFT's save_pretrained writes: `adapter_config.json` + `adapter_model.safetensors`.
 *
 * Merge rule (PEFT LoraLayer.get_delta_weight, scale = lora_alpha / r):
 *   Linear     W' = W + scale · B·A            A [r, in], B [out, r]
 *   Embedding  E' = E + scale · (B·A)ᵀ         A [r, vocab], B [dim, r]
 * done in fp32 on the host before the weight is rounded to the GPU dtype.
 *
 * Module names: adapter keys ("base_model.model.model.language_model.layers.0.self_attn.q_proj
 * .lora_A.weight", "...visual.merger.mlp.0.lora_A.default.weight", "...embed_tokens
 * .lora_embedding_A") are reduced to a part (text or vision) and the module path inside it
 * ("layers.0.self_attn.q_proj", "merger.mlp.0", "embed_tokens"), so both Qwen key layouts
 * (model.layers.* / visual.* and model.language_model.* / model.visual.*) find their adapters.
 * Adapters on modules outside both parts (lm_head, which DeepGen never runs) are ignored. */
#pragma once

#include <glib.h>

#include "weights.h"

G_BEGIN_DECLS

typedef struct _DgLora DgLora;

typedef enum {
  DG_LORA_TEXT,   /* the language model: layers.*, embed_tokens */
  DG_LORA_VISION, /* the vision tower: blocks.*, merger.* */
  DG_LORA_N_PARTS
} DgLoraPart;

/* @path: an adapter folder, or its adapter_model.safetensors (adapter_config.json beside it).
 * Errors: DG_ERROR_MISSING (no adapter files), DG_ERROR_FORMAT / DG_ERROR_SHAPE (malformed
 * tensors, A/B of a module missing or of mismatched rank), DG_ERROR_UNSUPPORTED (DoRA, rsLoRA
 * is fine, per-module rank/alpha patterns, fan_in_fan_out, LoRA biases). */
DgLora *dg_lora_open (const char *path, GError **error);
void dg_lora_free (DgLora *lora);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgLora, dg_lora_free)

/* Whether @folder holds an adapter (adapter_config.json). */
gboolean dg_lora_folder_has_adapter (const char *folder);

/* Number of adapted modules in @part; alpha / r (or alpha / √r with use_rslora). */
guint dg_lora_n_modules (const DgLora *lora, DgLoraPart part);
double dg_lora_scale (const DgLora *lora);
const char *dg_lora_display_name (const DgLora *lora);

/* Adds the Linear delta of @module to @w [rows, cols] (row-major f32). *merged says whether the
 * module had an adapter (when not, @w is untouched). DG_ERROR_SHAPE when A/B do not fit @w. */
gboolean dg_lora_merge_linear (DgLora *lora, DgLoraPart part, const char *module, float *w, gint64 rows, gint64 cols,
                               gboolean *merged, GError **error);

/* The Embedding adapter of @module ("embed_tokens") as host copies, for merging the gathered
 * rows only (the table has 151,936 rows; merging all of them would cost seconds for nothing):
 * row id of E' = E[id] + scale · Σ_j A[j, id] · B[:, j]. FALSE when the module has no adapter. */
typedef struct {
  gint64 rank, vocab, dim;
  float *a; /* [rank, vocab] */
  float *b; /* [dim, rank] */
  float scale;
} DgLoraEmbedding;

gboolean dg_lora_take_embedding (DgLora *lora, DgLoraPart part, const char *module, gint64 vocab, gint64 dim,
                                 DgLoraEmbedding *out, gboolean *found, GError **error);
void dg_lora_embedding_clear (DgLoraEmbedding *e);
/* row += scale · Σ_j A[j, id] · B[:, j] */
void dg_lora_embedding_add_row (const DgLoraEmbedding *e, gint64 id, float *row);

/* A Linear weight [rows, cols] named "<module>.weight" (after the DgWeights prefix) uploaded under
 * @w's precision policy, with the adapter of @module merged first when @lora has one (@lora may be
 * NULL). The merge works on the stored values, so the rounding to bf16 happens once, after it, as
 * in `model.to(bfloat16)` of a merged model. Under DG_WEIGHTS_Q8_0 the result is quantized like
 * dg_weights_linear's. */
gboolean dg_lora_weights_matrix (DgWeights *w, DgLora *lora, DgLoraPart part, const char *module, gint64 rows,
                                 gint64 cols, VkcTensor *out, GError **error);

/* After loading a part: DG_ERROR_UNSUPPORTED naming the first adapted module of @part that no
 * load used (a module we do not know would otherwise be silently left unmerged). */
gboolean dg_lora_check_all_used (const DgLora *lora, DgLoraPart part, GError **error);

G_END_DECLS
