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
#include "deepgen.h"

G_BEGIN_DECLS

/* ---- the architecture ----------------------------------------------------------------- */

typedef struct {
  DgQwenVLConfig vlm;
  DgConnectorConfig connector;
  guint n_queries;     /* meta queries appended to every LLM row (128) */
  guint n_selected;    /* LLM hidden states stacked for the connector: len(range(n−1, 0, −6)) = 6 */
  DgDitConfig dit;
  DgVaeConfig vae;
} DgPlanModel;

/* DeepGen 1.0 as released (MODEL.md §2, §4–§6; the configs of tests/data/deepgen-1.0-configs):
 * for plans and FLOP counts of the real model without its files. */
void dg_plan_model_deepgen_1_0 (DgPlanModel *m);

/* The architecture of a model folder from its configs only (vlm/, connector/, transformer/,
 * vae/ config.json). The number of meta queries comes from connector/model.safetensors (or
 * the model.gguf of a converted folder: meta_queries' rows) when the file is there, else the
 * connector config's "num_queries", else 128. Errors: those of the config loaders (DG_ERROR_MISSING, _FORMAT, _CONFIG, _UNSUPPORTED). */
gboolean dg_plan_model_load (DgPlanModel *m, const char *folder, GError **error);

/* ---- weights ---------------------------------------------------------------------------- */

typedef enum {
  DG_COMPONENT_LLM,          /* Qwen2.5-VL language model (vlm/ without visual.*) */
  DG_COMPONENT_VIT,          /* Qwen2.5-VL vision tower (visual.*) */
  DG_COMPONENT_CONNECTOR,    /* projector_1/2/3, the connector layers, meta_queries */
  DG_COMPONENT_DIT,          /* transformer/ */
  DG_COMPONENT_VAE_ENCODER,
  DG_COMPONENT_VAE_DECODER,
  DG_N_COMPONENTS
} DgComponent;

typedef struct {
  guint n_tensors;           /* tensors in the released files */
  guint64 stored;            /* elements in the released files (buffers such as pos_embed included) */
  guint64 host;              /* stored elements that never go to the GPU: the LLM's embed_tokens
                              * (rows are gathered on the host), the DiT's pos_embed table
                              * (cropped per image size, see position_bytes) */
  guint64 matrices;          /* uploaded elements of tensors with ≥ 2 dims (bf16 or f32 by precision) */
  guint64 quantizable;       /* of those, the Linear weights that DG_WEIGHTS_Q8_0 / _Q4_0 quantize
                              * (VLM, connector and DiT layers whose input width is a multiple of 32) */
  guint64 f32;               /* elements uploaded as f32 whatever the precision: vectors (biases,
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
guint64 dg_plan_weight_pool_bytes (const DgPlanModel *m, DgComponent c, DgPrecision precision,
                                   DgWeightFormat weights);
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
  DG_LINEAR_AS_RELEASED,     /* the matrix dtype of the precision (bf16 or f32) */
  DG_LINEAR_Q8_0,
  DG_LINEAR_Q4_0,
} DgLinearStorage;
DgLinearStorage dg_plan_linear_storage (DgWeightFormat weights, DgComponent c);
/* What DG_WEIGHTS_AUTO tries after the released weights, smallest last: Q8_0, then Q4_0. */
const DgWeightFormat *dg_plan_auto_fallbacks (guint *n);
/* Bytes of @n weights (a multiple of 32) stored as @storage (not AS_RELEASED). */
guint64 dg_plan_linear_block_bytes (DgLinearStorage storage, guint64 n);
/* The same rule by name, for a tensor of a component's weight file: whether @name, of PyTorch
 * shape @shape[0..ndim), in the model folder's component folder @folder ("vlm", "connector",
 * "transformer"; anything else: FALSE) is a Linear weight that the loaders read through
 * dg_weights_linear and that DG_WEIGHTS_Q8_0 quantizes. These are the 2-D `.weight` tensors
 * of those folders except the VLM's embedding table and whatever lies outside its language
 * model and vision tower (lm_head: not loaded). */
gboolean dg_plan_tensor_quantizable (const char *folder, const char *name, guint ndim, const gint64 *shape);

/* ---- the plan --------------------------------------------------------------------------- */

typedef enum {
  DG_PLAN_ENCODE,
  DG_PLAN_BRIDGE,
  DG_PLAN_VAE_ENCODE,
  DG_PLAN_DENOISE,
  DG_PLAN_DECODE,
  DG_PLAN_N_STAGES
} DgPlanStage;

/* Tokens of the longest prompt row without image pads or queries when the caller does not know
 * them yet: the template takes 14 (MODEL.md §1.2), which leaves ~100 for the prompt. */
#define DG_PLAN_DEFAULT_TEXT_TOKENS 114
/* VAE tiles (vae.h DG_VAE_TILING_DEFAULT): images with a side above tile · 8 pixels are
 * encoded and decoded in tiles of tile latents overlapping by overlap. */
#define DG_PLAN_VAE_TILE 64
#define DG_PLAN_VAE_OVERLAP 16
#define DG_PLAN_MARGIN_FIXED (256ull << 20)
#define DG_PLAN_MARGIN_PERCENT 5

/* At most this many references per batch (a bit each in DgPlan.vae_encode_tiled_refs). */
#define DG_PLAN_MAX_REFS 64

typedef struct {
  DgJob job;
  DgPrecision precision;
  int width, height;          /* the output size (dg_output_size); inpaint: the working size */
  guint n_refs;               /* reference images of the whole batch, request 0's first (edit:
                               * ≥ 1 per request; inpaint: 1 per request; generate: 0) */
  const int *ref_sizes;       /* [n_refs][2] width, height of each prepared reference (multiples
                               * of 32); NULL = every reference is width × height */
  guint text_tokens;          /* longest prompt row without image pads; 0 = the default above */
  gboolean cfg;               /* classifier-free guidance (guidance > 1): two DiT rows per request */
  guint steps;                /* for the FLOP totals; 0 = 50 */
  guint64 device_bytes;       /* the memory the job may use (pipeline.c: the device-local heap),
                               * for the VAE's whole-or-tiles choice: whole when that does not
                               * raise the peak, or when the raised peak still fits; 0 = unknown:
                               * whole as long as that does not raise the peak */
  /* Batches (dg_run_batch: B requests in one pass, rows 2B) and what pipeline.c knows once it
   * has tokenised the prompts: */
  guint batch;                /* requests; 0 = 1 */
  const guint *request_refs;  /* [batch] references of each request, summing to n_refs; NULL =
                               * n_refs / batch each */
  guint seq_len;              /* context tokens of every row (DgPromptBatch.seq_len: the longest
                               * row, image pads included, + the meta queries); 0 = text_tokens +
                               * the image pads of the request with most + the meta queries */
  /* Device limits (vkc_device_info), 0 = none: */
  guint64 max_allocation;     /* the largest block a pool may allocate: larger needs are split */
  guint64 max_binding;        /* maxStorageBufferRange: a whole VAE pass whose mid-block attention
                               * would bind more runs in tiles (vae.c) */
  DgWeightFormat weights;     /* RELEASED, Q8_0 or Q4_0 (AUTO counts as RELEASED: the caller decides) */
} DgPlanRequest;

#define DG_PLAN_REQUEST_INIT                                                                                \
  { DG_JOB_GENERATE, DG_PRECISION_BF16, 512, 512, 0, NULL, 0, TRUE, 0, 0, 0, NULL, 0, 0, 0, DG_WEIGHTS_RELEASED }

typedef struct {
  guint64 weights;            /* resident weight pools, as reserved (block-packed) */
  guint64 activations;        /* the stage's arena(s), as reserved */
  guint64 carried;            /* inputs the pipeline keeps on the device for the whole stage */
  guint64 total;              /* weights + activations + carried */
  double flop;                /* floating-point operations of the stage for this request */
} DgPlanStageBytes;

typedef struct {
  DgPlanStageBytes stage[DG_PLAN_N_STAGES];
  DgPlanStage peak_stage;
  guint64 peak;               /* the largest stage total */
  guint64 margin;
  guint64 required;           /* peak + margin: what dg_plan_check compares */
  /* What the numbers were computed for. */
  DgJob job;
  DgPrecision precision;
  DgWeightFormat weights;     /* RELEASED, Q8_0 or Q4_0 */
  int width, height;
  guint batch;                /* requests */
  guint vlm_rows, dit_rows, steps;
  guint text_tokens;          /* as assumed (the request's or the default) */
  guint seq_len;              /* LLM/connector/DiT context tokens: text + image pads + queries */
  guint image_tokens;         /* DiT target tokens */
  guint ref_tokens;           /* DiT reference tokens (all references of the longest row) */
  gboolean vae_encode_tiled, vae_decode_tiled;
  guint64 vae_encode_tiled_refs;   /* bit i: reference i is encoded in tiles */
  guint vae_tile, vae_overlap;   /* latents */
  /* What pipeline.c's arenas hand out (sums of 256-byte pieces), so that it sizes them exactly
   * (dg_arena_expect): */
  guint64 encode_arena;       /* meta queries, the ViT of every reference, the LLM rows */
  guint64 bridge_arena;       /* the connector's activations, on top of encode_arena */
  guint64 dit_arena;          /* one denoising step: latents, timesteps, velocity, the forward */
} DgPlan;

/* Computes the plan. Errors (DG_ERROR_INVALID_ARGUMENT): sizes that are not positive multiples of
 * 16 (references: 32) or beyond the DiT's position table, edit without references, more than
 * DG_PLAN_MAX_REFS references, request_refs that do not add up. */
gboolean dg_plan_compute (const DgPlanModel *m, const DgPlanRequest *r, DgPlan *plan, GError **error);

/* FALSE with DG_ERROR_OOM and an actionable message when plan->required > @device_bytes (the
 * memory the device can give this job: its heap budget when known, else its device-local heap).
 * @device_bytes 0 = unknown: always TRUE. */
gboolean dg_plan_check (const DgPlan *plan, guint64 device_bytes, GError **error);

const char *dg_plan_stage_name (DgPlanStage s);   /* "encode", "bridge", … (not translated: table keys) */

/* Activation bytes as the code computes them, for cross-checks: what vae.c's planning gives
 * without a device (dg_vae_plan_decode_bytes / dg_vae_plan_encode_bytes (NULL, …) for one image)
 * and what dg_dit_forward takes from its arena (256-byte aligned pieces) for B rows, L image
 * tokens and S context tokens. */
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
