/* Test seams of the pipeline (DESIGN.md §2): parity with the golden runs of the canonical code,
 * which sample the VAE posterior with injected noise and feed reference images as they are; the
 * memory a run reserved, against its plan; the engine's device. Only the tests include this
 * header (tests/docs/check-includes.sh keeps the front-ends on model/deepgen.h); `deepgen bench`
 * gets its stage times from dg_run_batch_timed. */
#pragma once
#include "deepgen.h"
#include "vkc.h"
#include "vlm.h"

G_BEGIN_DECLS

typedef struct {
  /* Sample the reference latents as mean + std·ε with ε = torch.randn (CPU generator) of this
   * seed per reference (flat order over the batch), instead of the posterior mean. */
  const guint64 *vae_eps_seeds;
  /* Use the edit references as given (sides already multiples of 32), without the size rule. */
  gboolean references_as_given;
  /* When set, receives the VLM's per-stage times (ViT, LLM) of the run (benchmarks). The
   * caller clears it with dg_vlm_timings_clear. */
  DgVlmTimings *vlm_timings;
  /* When set, sees each reference's VAE-encoder input exactly as it is uploaded ([H, W, 3] f32
   * in [-1, 1], already rounded to bf16 in bf16 mode), @index flat over the batch. */
  void (*vae_input) (gpointer user_data, guint index, const float *pixels, int height, int width);
  gpointer vae_input_data;
  /* When set, sees each stage's output on the host as f32 (the real-width tests check that it is
   * finite): the connector's sequence and pooled vector (DG_PLAN_BRIDGE), each reference's latents
   * (DG_PLAN_VAE_ENCODE), the latents after each step (DG_PLAN_DENOISE), each decoded image
   * before its 8-bit conversion (DG_PLAN_DECODE). */
  void (*stage_output) (gpointer user_data, DgPlanStage stage, const float *values, gsize n);
  gpointer stage_output_data;
} DgRunHooks;

GPtrArray *dg_run_batch_hooked (DgModel *model, const DgRequest *const *requests, guint n_requests,
                                const DgRunHooks *hooks, DgProgressFunc progress, gpointer user_data,
                                GCancellable *cancellable, GError **error);

/* What a run's memory was: the plan it was checked against before anything was uploaded (set
 * once the plan is computed, even when the check refuses the job), and per DgPlanStage the most
 * device memory that the pools held during the stage (vkc_device_reserved), to compare. */
typedef struct {
  gboolean planned;
  DgPlan plan;
  guint64 stage_peaks[DG_PLAN_N_STAGES];
} DgRunMemory;

/* dg_run_batch_hooked that also fills @memory (zeroed first). */
GPtrArray *dg_run_batch_measured (DgModel *model, const DgRequest *const *requests, guint n_requests,
                                  const DgRunHooks *hooks, DgRunMemory *memory, DgProgressFunc progress,
                                  gpointer user_data, GCancellable *cancellable, GError **error);

/* The engine's Vulkan device (tests check its validation-message count). */
VkcDevice *dg_engine_device (DgEngine *engine);

G_END_DECLS
