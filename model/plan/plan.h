/* The memory plan and the FLOP counts of DeepGen (DESIGN.md §5, MODEL.md §9): pure host
 * arithmetic on the configs, no weights and no GPU, so that `deepgen info --plan` can print the
 * table for the real model anywhere and the pipeline can refuse a job early, before it uploads
 * anything, with a message that says what to change.
 *
 *   DgPlanModel m;   dg_plan_model_load (&m, model_dir, &error);       (or dg_plan_model_deepgen_1_0)
 *   DgPlanRequest r = DG_PLAN_REQUEST_INIT;  r.job = DG_JOB_EDIT;  r.width = r.height = 512; …
 *   DgPlan plan;     dg_plan_compute (&m, &r, &plan, &error);
 *   if (!dg_plan_check (&plan, device_bytes, &error)) …                 "needs 7.9 GiB …"
 *
 * What is counted, stage by stage, as pipeline.c runs them (each component's weights are
 * uploaded when its stage starts and released when it ends):
 *
 *   encode      VLM weights (the LLM without its embedding table, which stays in the mapped
 *               file; the ViT only when there are references) + one arena: the connector's
 *               meta queries (read from its file alone: the connector is not loaded yet), every
 *               reference through the ViT, then the prompt rows (conditional, unconditional for
 *               each request) through the LLM
 *   bridge      connector weights + the same arena, the connector's activations on top (the
 *               VLM is released before the connector loads)
 *   vae-encode  (edit, inpaint) VAE encoder weights + one reference's arena, whole or in tiles
 *   denoise     DiT weights (+ the position crop of each image size) + the inputs kept for all
 *               steps (context, pooled, reference latents: "carried") + one step's arena
 *               (latents, timestep, velocity and the forward, CFG rows and reference tokens
 *               included)
 *   decode      VAE decoder weights + its arena, whole or in tiles (one image at a time)
 *
 * Stage outputs that cross a release go through host memory and are not counted.
 *
 * Weights are counted as weights.h stores them: matrices (Linear, conv, patch embedding) in
 * bf16 (DG_PRECISION_BF16) or f32, vectors (biases, norm weights) in f32. Activations are f32,
 * tensor by tensor as the stage's code allocates them from its arena (vlm.c, vit.c, llm.c,
 * connector.c, dit.c, vae.c, pipeline.c). Pools hand out 256-byte aligned pieces
 * (vkc_memory.c) and are sized to what they will hold (vkc_pool_expect: each loader gives its
 * weights' bytes, pipeline.c its arenas' from this plan, vae.c its pass's from its dry run), in
 * blocks no larger than the device allows (max_allocation); the plan packs each pool the same
 * way, so a stage's figure is what its pools reserve. Attention is tiled (flash-style), so no
 * stage holds an N×N score matrix.
 *
 * A safety margin (DG_PLAN_MARGIN_FIXED + DG_PLAN_MARGIN_PERCENT of the peak) covers what the
 * plan cannot see: the driver's own allocations, the 64 MiB staging buffer on unified-memory
 * devices, pipelines and command buffers, and allocation-order details. */
#pragma once

#include <glib.h>

#include "config.h"
#include "connector_layout.h"
#include "deepgen.h"

G_BEGIN_DECLS

/* ---- the architecture ----------------------------------------------------------------- */

struct _DgPlanModel { /* typedef DgPlanModel in deepgen.h */
  DgQwenVLConfig vlm;
  DgConnectorConfig connector;
  guint n_queries;  /* meta queries appended to every LLM row (128) */
  guint n_selected; /* LLM hidden states stacked for the connector: len(range(n−1, 0, −6)) = 6 */
  DgDitConfig dit;
  DgVaeConfig vae;
};

/* DeepGen 1.0 as released (MODEL.md §2, §4–§6; the configs of tests/data/deepgen-1.0-configs):
 * for plans and FLOP counts of the real model without its files. */
void dg_plan_model_deepgen_1_0 (DgPlanModel *m);
/* The config texts it parses, by component folder ("vlm", "connector", "transformer", "vae",
 * "scheduler": the keys that differ from the canonical classes' defaults); NULL for another name.
 * The synthetic model (model/nn/synthetic.c) serves them as its config files. */
const char *dg_plan_deepgen_1_0_config (const char *component);

/* The architecture of a model folder from its configs only (vlm/, connector/, transformer/,
 * vae/ config.json). The number of meta queries comes from connector/model.safetensors (or
 * the model.gguf of a converted folder: meta_queries' rows) when the file is there, else the
 * connector config's "num_queries", else 128. Errors: those of the config loaders (DG_ERROR_MISSING, _FORMAT, _CONFIG, _UNSUPPORTED). */
gboolean dg_plan_model_load (DgPlanModel *m, const char *folder, GError **error);

/* The connector's sizes in @m (the projectors' widths follow the LLM and the DiT). */
DgConnectorShape dg_plan_connector_shape (const DgPlanModel *m);

/* ---- weights ---------------------------------------------------------------------------- */

typedef enum {
  DG_COMPONENT_LLM,       /* Qwen2.5-VL language model (vlm/ without visual.*) */
  DG_COMPONENT_VIT,       /* Qwen2.5-VL vision tower (visual.*) */
  DG_COMPONENT_CONNECTOR, /* projector_1/2/3, the connector layers, meta_queries */
  DG_COMPONENT_DIT,       /* transformer/ */
  DG_COMPONENT_VAE_ENCODER,
  DG_COMPONENT_VAE_DECODER,
  DG_N_COMPONENTS
} DgComponent;

typedef struct {
  guint n_tensors;     /* tensors in the released files */
  guint64 stored;      /* elements in the released files (buffers such as pos_embed included) */
  guint64 host;        /* stored elements that never go to the GPU: the LLM's embed_tokens
                              * (rows are gathered on the host), the DiT's pos_embed table
                              * (cropped per image size, see position_bytes) */
  guint64 matrices;    /* uploaded elements of tensors with ≥ 2 dims (bf16 or f32 by precision) */
  guint64 quantizable; /* of those, the Linear weights that DG_WEIGHTS_Q8_0 / _Q4_0 quantize
                              * (VLM, connector and DiT layers whose input width is a multiple of 32) */
  guint64 f32;         /* elements uploaded as f32 whatever the precision: vectors (biases,
                              * norm weights), the connector's meta queries, and values computed at
                              * load (the VAE decoder's latent scale and shift) */
} DgComponentSize;

const char *dg_component_name (DgComponent c);
void dg_plan_component_size (const DgPlanModel *m, DgComponent c, DgComponentSize *out);
/* Device bytes of a component's weights under @precision and @weights (RELEASED, Q8_0, Q4_0; AUTO
 * counts as RELEASED), before pool packing: matrices · (2 or 4) + f32 · 4, with the quantizable
 * matrices as dg_plan_linear_storage stores them (36 bytes per 32 weights in q8_0, 20 in q4_0). */
guint64 dg_plan_weight_bytes (const DgPlanModel *m, DgComponent c, DgPrecision precision, DgWeightFormat weights);
/* What a pool holding exactly those weights hands out: each tensor a 256-byte aligned piece
 * (vkc_pool_piece_size), in load order. The loaders size their pools with it (dg_weights_expect):
 * only the fields of @m that the component's tensors depend on need to be set. */
guint64 dg_plan_weight_pool_bytes (const DgPlanModel *m, DgComponent c, DgPrecision precision, DgWeightFormat weights);
/* Bytes of the released files' tensor data: stored elements × the release's dtype (bf16, the
 * connector fp32; MODEL.md §8). */
guint64 dg_plan_file_bytes (const DgPlanModel *m, DgComponent c);

/* The q8_0 rule, shared by this plan, the loaders (weights.h dg_weights_linear) and
 * `deepgen convert` (convert.h), so that the three always agree on what is quantized: under
 * DG_WEIGHTS_Q8_0 a Linear weight [out, in] of the VLM (LLM and ViT), the connector or the DiT
 * is stored as q8_0 when @in_features is a positive multiple of the 32-value block; the VAE's
 * Linear layers and every other tensor are not. */
gboolean dg_plan_linear_quantizable (gint64 in_features);

/* How a component's quantizable Linear weights are stored under a weight format: the one
 * table of which format quantizes what, for the plan, the loaders and the converter. */
typedef enum {
  DG_LINEAR_AS_RELEASED, /* the matrix dtype of the precision (bf16 or f32) */
  DG_LINEAR_Q8_0,
  DG_LINEAR_Q4_0,
} DgLinearStorage;
DgLinearStorage dg_plan_linear_storage (DgWeightFormat weights, DgComponent c);
/* Bytes of @n weights (a multiple of 32) stored as @storage (not AS_RELEASED). */
guint64 dg_plan_linear_block_bytes (DgLinearStorage storage, guint64 n);
/* The same rule by name, for a tensor of a component's weight file: whether @name, of PyTorch
 * shape @shape[0..ndim), in the model folder's component folder @folder ("vlm", "connector",
 * "transformer"; anything else: FALSE) is a Linear weight that the loaders read through
 * dg_weights_linear and that DG_WEIGHTS_Q8_0 quantizes. These are the 2-D `.weight` tensors
 * of those folders except the VLM's embedding table and whatever lies outside its language
 * model and vision tower (lm_head: not loaded). */
gboolean dg_plan_tensor_quantizable (const char *folder, const char *name, guint ndim, const gint64 *shape);

/* Describe (describe.h, MODEL.md §13): the plan of captioning one @width × @height image (sides
 * multiples of 32) whose prompt has @prompt_tokens tokens (image pads included) and up to
 * @max_new new ones. One stage, DG_PLAN_ENCODE: the encode stage of an edit with that image as
 * its one reference and one LLM row of prompt + max_new tokens (the plain path's longest pass;
 * no meta queries), plus the output head [vocab, hidden] in the LLM's Linear format, the KV
 * cache and the logits. @limits: device limits and precision/weights as in dg_plan_compute
 * (job, sizes and rows are set here). FLOPs: the ViT, the prompt, then per new token the linear
 * layers, the output head and the attention over the cache (MODEL.md §13). */
/* Device bytes of the language model's output head [vocab, hidden] (llm.h dg_llm_load_head) as a
 * Linear weight under @precision and @weights (one pool piece). */
guint64 dg_plan_llm_head_bytes (const DgQwenTextConfig *c, DgPrecision precision, DgWeightFormat weights);
gboolean dg_plan_describe (const DgPlanModel *m, const DgPlanRequest *limits, int width, int height,
                           guint prompt_tokens, guint max_new, DgPlan *plan, GError **error);

/* ---- the plan ---------------------------------------------------------------------------
 * DgPlanRequest, DgPlan, dg_plan_compute, dg_plan_check: deepgen.h. */


/* Activation bytes as the plan counts them, for cross-checks: the VAE dry run (vae_pass.c)
 * without a device, as dg_vae_plan_decode_bytes / dg_vae_plan_encode_bytes (NULL, …) give it for
 * one image, and the DiT's arena list (dit_layout.c) packed in 256-byte pieces for B rows, L
 * image tokens and S context tokens. */
guint64 dg_plan_vae_decode_bytes (const DgVaeConfig *c, int latent_h, int latent_w);
guint64 dg_plan_vae_encode_bytes (const DgVaeConfig *c, int height, int width);
guint64 dg_plan_dit_activation_bytes (const DgDitConfig *c, gint64 B, gint64 L, gint64 S);

/* ---- FLOPs (a multiply-add is 2 FLOPs; MODEL.md §9) --------------------------------------
 * Linear layers and convolutions count 2·in·out per output position, attention 4·N_q·N_k·width
 * (QKᵀ and PV); norms, activations and softmax are left out (< 1 %). */

/* The LLM's linear layers per token of one row (≈ 5.55 GFLOP for Qwen2.5-VL-3B). */
double dg_flops_llm_per_token (const DgQwenTextConfig *c);
/* One row of @tokens through the decoder: linear layers + causal attention (half of N²). */
double dg_flops_llm (const DgQwenTextConfig *c, gint64 tokens);
/* One reference image of @width × @height pixels (as prepared: multiples of 32) through the
 * vision tower: 28/32 rescale, patches, window and full attention blocks, merger. */
double dg_flops_vit (const DgQwenVisionConfig *c, int width, int height);
/* One row of @tokens through projector_1, the connector layers, projector_2 (pooled) and
 * projector_3. */
double dg_flops_connector (const DgPlanModel *m, gint64 tokens);
/* One DiT forward of one row with @image_tokens (target + references) and @ctx_tokens. */
double dg_flops_dit (const DgDitConfig *c, gint64 image_tokens, gint64 ctx_tokens);
/* The whole-image VAE decoder / encoder at @width × @height pixels (one image, no tiles). */
double dg_flops_vae_decode (const DgVaeConfig *c, int width, int height);
double dg_flops_vae_encode (const DgVaeConfig *c, int width, int height);
/* The same as the tiled functions run them (every tile decoded whole, overlaps twice). */
double dg_flops_vae_decode_tiled (const DgVaeConfig *c, int width, int height, guint tile, guint overlap);
double dg_flops_vae_encode_tiled (const DgVaeConfig *c, int width, int height, guint tile, guint overlap);

G_END_DECLS
