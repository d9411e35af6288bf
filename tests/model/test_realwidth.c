/* Real-width smoke tests (DESIGN.md §5, docs/TESTING.md "realwidth"): DeepGen 1.0's real widths on
 * the synthetic model (model/nn/synthetic.h: random weights made in memory, one layer per
 * component unless a case says otherwise), under the validation layer. Every case checks that it
 * ends without an error, that what it computed is finite (no NaN or Inf), that the device memory
 * it held is what the memory plan computed, and that no validation message was emitted.
 *
 * Two kinds of case:
 *  - whole pipeline runs (dg_run_batch_measured; every stage's output through
 *    DgRunHooks.stage_output, every stage's peak against its plan, the VAE stages within the
 *    GroupNorm scratch that follows the device's row splits, as test_pipeline_memory.c):
 *    "prompt" is the cheap one, in the default run — the LLM (2048 wide, two layers: the fewest
 *    the connector can read) and the connector on a short prompt with guidance (two rows, the
 *    128 meta queries), then a 32² image, so that the DiT and the VAE cost next to nothing; the
 *    512², edit and 1024² runs and the full-depth one are `slow` (one layer of the VAE decoder
 *    alone is 2.5 TFLOP at 512², 10.5 at 1024²);
 *  - single components, each as pipeline.c runs its stage (the same loader, arenas told the plan's
 *    figures), so that one component costs only its own work: the ViT on one 512² reference,
 *    the DiT at 512² (one step, one row) with the position crop for 1024², and the VAE decoder's
 *    last full-resolution block on a band of a 1024² image just taller than one storage-buffer
 *    binding (the whole decoder at 1024² is 10.5 TFLOP, hours on lavapipe).
 *
 * One case per ctest (`-p /realwidth/<case>`, tests/model/realwidth.cmake). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "deepgen.h"
#include "deepgen_hooks.h"
#include "dit.h"
#include "golden.h"
#include "plan.h"
#include "synthetic.h"
#include "vae.h"
#include "vit_layout.h"
#include "vkc_ops_linear.h"
#include "vlm.h"

/* The synthetic model of the component cases: one layer per component, seed 1 (as
 * dg_model_open_synthetic (engine, 1, 1, …) in the pipeline cases). */
#define LAYERS 1
#define SEED 1

typedef struct {
  const char *name;
  DgJob job;
  int size;     /* output (and reference) side */
  guint layers; /* 0 = full depth */
  DgWeightFormat weights;
  const char *prompt;
} Case;

#define LONG_PROMPT "a red fox in the snow at sunrise, photograph"

static const Case cases[] = {
  /* the LLM and the connector on a short prompt (two rows: guidance), DiT and VAE at 32² */
  { "prompt", DG_JOB_GENERATE, 32, 1, DG_WEIGHTS_RELEASED, "a fox" },
  /* LLM, connector, DiT at 512² (CFG rows), VAE decode at 512² (slow) */
  { "generate-512", DG_JOB_GENERATE, 512, 1, DG_WEIGHTS_RELEASED, LONG_PROMPT },
  /* the ViT on one 512² reference, the VAE encoder, the DiT with reference tokens (slow) */
  { "edit-512", DG_JOB_EDIT, 512, 1, DG_WEIGHTS_RELEASED, LONG_PROMPT },
  /* the DiT's position crop for 1024², the whole VAE decoder at 1024² (slow) */
  { "generate-1024", DG_JOB_GENERATE, 1024, 1, DG_WEIGHTS_RELEASED, LONG_PROMPT },
  /* the whole synthetic model, end to end (slow) */
  { "full-256-q8", DG_JOB_GENERATE, 256, 0, DG_WEIGHTS_Q8_0, LONG_PROMPT },
};

typedef struct {
  guint64 values[DG_PLAN_N_STAGES];
  guint64 bad[DG_PLAN_N_STAGES];
  double max_abs[DG_PLAN_N_STAGES];
} Outputs;

static void
on_stage_output (gpointer user_data, DgPlanStage stage, const float *values, gsize n)
{
  Outputs *o = user_data;
  o->values[stage] += n;
  for (gsize i = 0; i < n; i++) {
    if (!isfinite (values[i]))
      o->bad[stage]++;
    else
      o->max_abs[stage] = MAX (o->max_abs[stage], fabs (values[i]));
  }
}

/* Progress with the time since the run began, so that a long run's log shows where it is. */
static void
log_progress (DgStage stage, int step, int n_steps, gpointer user_data)
{
  const gint64 *t0 = user_data;
  g_test_message ("%8.1f s  %s %d/%d", (double) (g_get_monotonic_time () - *t0) / 1e6, dg_stage_name (stage), step,
                  n_steps);
}

/* A smooth RGB reference (its content does not matter here). */
static DgImage *
test_image (int side)
{
  DgImage *img = dg_image_new (side, side, 3);
  for (int y = 0; y < side; y++)
    for (int x = 0; x < side; x++)
      for (int c = 0; c < 3; c++)
        img->pixels[(gsize) y * img->rowstride + x * 3 + c] = (guint8) ((x * (c + 1) + y * 3) & 255);
  return img;
}

static void
run_case (gconstpointer data)
{
  const Case *c = data;
  g_autoptr (GError) error = NULL;
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (DgEngine) engine = dg_engine_new (NULL, &error);
  g_assert_no_error (error);
  DgLoadOptions lo = DG_LOAD_OPTIONS_INIT;
  lo.weights = c->weights;
  g_autoptr (DgModel) model = dg_model_open_synthetic (engine, c->layers, 1, &lo, &error);
  g_assert_no_error (error);

  g_autoptr (DgImage) ref = test_image (c->size);
  const DgImage *refs[1] = { ref };
  DgRequest r = DG_REQUEST_INIT;
  r.job = c->job;
  r.prompt = c->prompt;
  r.width = r.height = c->size;
  r.steps = 1;
  if (c->job == DG_JOB_EDIT) {
    r.images = refs;
    r.n_images = 1;
  }
  const DgRequest *rp = &r;
  Outputs outputs;
  memset (&outputs, 0, sizeof outputs);
  DgRunHooks hooks = { .stage_output = on_stage_output, .stage_output_data = &outputs };
  DgRunMemory mem;
  g_autoptr (GPtrArray) out = dg_run_batch_measured (model, &rp, 1, &hooks, &mem, log_progress, &t0, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("%s: %.1f s", c->name, (double) (g_get_monotonic_time () - t0) / 1e6);
  g_assert_cmpuint (out->len, ==, 1);
  const DgImage *img = g_ptr_array_index (out, 0);
  g_assert_cmpint (img->width, ==, c->size);
  g_assert_cmpint (img->height, ==, c->size);

  /* every stage's output finite, and there */
  for (int s = 0; s < DG_PLAN_N_STAGES; s++) {
    if (s == DG_PLAN_ENCODE) /* its rows go straight to the connector (checked at the bridge) */
      continue;
    g_test_message ("%-10s %10" G_GUINT64_FORMAT " values, %" G_GUINT64_FORMAT " not finite, max |x| %g",
                    dg_plan_stage_name ((DgPlanStage) s), outputs.values[s], outputs.bad[s], outputs.max_abs[s]);
    g_assert_cmpuint (outputs.bad[s], ==, 0);
    g_assert_cmpuint (outputs.values[s] > 0, ==, s != DG_PLAN_VAE_ENCODE || c->job == DG_JOB_EDIT);
  }

  /* every stage held what its plan computed */
  g_assert_true (mem.planned);
  g_assert_cmpint (mem.plan.weights, ==, c->weights);
  for (int s = 0; s < DG_PLAN_N_STAGES; s++) {
    const guint64 planned = mem.plan.stage[s].total, held = mem.stage_peaks[s];
    g_test_message ("%-10s planned %12" G_GUINT64_FORMAT "  held %12" G_GUINT64_FORMAT "  %8.1f GFLOP",
                    dg_plan_stage_name ((DgPlanStage) s), planned, held, mem.plan.stage[s].flop / 1e9);
    if (s == DG_PLAN_VAE_ENCODE || s == DG_PLAN_DECODE) {
      g_assert_cmpuint (held + (4u << 20), >=, planned);
      g_assert_cmpuint (planned + (4u << 20), >=, held);
      g_assert_cmpuint (held == 0, ==, planned == 0);
    } else
      g_assert_cmpuint (held, ==, planned);
  }
  g_assert_cmpuint (vkc_device_validation_messages (dg_engine_device (engine)), ==, 0);
}

/* ---- single components ---------------------------------------------------------------------- */

typedef struct {
  DgEngine *engine;
  VkcDevice *dev;
  char *root; /* the synthetic model's folder path */
  gint64 t0;
} Component;

static void
component_begin (Component *c)
{
  g_autoptr (GError) error = NULL;
  c->t0 = g_get_monotonic_time ();
  c->engine = dg_engine_new (NULL, &error); /* the device as the pipeline cases get it */
  g_assert_no_error (error);
  c->dev = dg_engine_device (c->engine);
  /* as pipeline.c plan_run: the fast kernels' first-use self-checks before any stage, so that
   * their buffers are not counted in one */
  vkc_linear_selfcheck_all (c->dev);
  dg_synthetic_register ();
  c->root = dg_synthetic_path (LAYERS, SEED);
}

static void
component_end (Component *c, const char *name)
{
  g_assert_cmpuint (vkc_device_validation_messages (c->dev), ==, 0);
  g_test_message ("%s: %.1f s", name, (double) (g_get_monotonic_time () - c->t0) / 1e6);
  g_clear_pointer (&c->root, g_free);
  g_clear_pointer (&c->engine, dg_engine_free);
}

static char *
component_dir (const Component *c, const char *component)
{
  return g_strconcat (c->root, "/", component, NULL);
}

/* The plan of a bf16 job with released weights on the synthetic model, for this device's limits
 * (as pipeline.c plan_run computes it; the default prompt length). */
static void
component_plan (const Component *c, DgJob job, int side, gboolean cfg, DgPlan *plan)
{
  g_autoptr (GError) error = NULL;
  DgPlanModel m;
  dg_synthetic_plan_model (LAYERS, &m);
  const VkcDeviceInfo *info = vkc_device_info (c->dev);
  DgPlanRequest q = DG_PLAN_REQUEST_INIT;
  q.job = job;
  q.width = q.height = side;
  q.n_refs = job == DG_JOB_EDIT ? 1 : 0;
  q.cfg = cfg;
  q.steps = 1;
  q.device_bytes = info->device_local_bytes;
  q.max_allocation = MIN (info->max_memory_allocation_size, info->max_buffer_size);
  q.max_binding = info->max_storage_buffer_range;
  g_assert_true (dg_plan_compute (&m, &q, plan, &error));
  g_assert_no_error (error);
}

/* The most the pools held since vkc_device_reset_peak equals @planned. */
static void
check_held (const Component *c, const char *what, guint64 planned)
{
  VkDeviceSize peak;
  vkc_device_reserved (c->dev, &peak);
  g_test_message ("%-10s planned %12" G_GUINT64_FORMAT "  held %12" G_GUINT64_FORMAT, what, planned, (guint64) peak);
  g_assert_cmpuint (peak, ==, planned);
}

/* Downloads @t and checks that every value is finite; returns the values (g_free). */
static float *
check_finite (const Component *c, const char *what, const VkcTensor *t)
{
  g_autoptr (GError) error = NULL;
  float *v = dg_tensor_download_f32 (c->dev, t, &error);
  g_assert_no_error (error);
  Outputs o;
  memset (&o, 0, sizeof o);
  on_stage_output (&o, (DgPlanStage) 0, v, (gsize) vkc_tensor_numel (t));
  g_test_message ("%-10s %10" G_GUINT64_FORMAT " values, %" G_GUINT64_FORMAT " not finite, max |x| %g", what,
                  o.values[0], o.bad[0], o.max_abs[0]);
  g_assert_cmpuint (o.bad[0], ==, 0);
  g_assert_cmpuint (o.values[0], >, 0);
  return v;
}

/* Normal values of standard deviation @std (Box–Muller on a seeded GRand): inputs in the range
 * of the real activations that the component would get. */
static float *
normal_values (gsize n, double std, guint32 seed)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
  float *v = g_new (float, n);
  for (gsize i = 0; i < n; i++) {
    double u = g_rand_double (rng), w = g_rand_double (rng);
    v[i] = (float) (std * sqrt (-2 * log (1 - u)) * cos (2 * G_PI * w));
  }
  return v;
}

static void
submit (VkcCmd *cmd, DgArena *arena)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_arena_check (arena, &error));
  g_assert_no_error (error);
  g_assert_true (vkc_cmd_submit_wait (cmd, &error));
  g_assert_no_error (error);
}

/* The vision tower of the encode stage of an edit with one 512² reference: the whole VLM
 * loaded (ViT + LLM), the stage's arena told the plan's encode_arena, the meta queries first
 * (vlm.c's order), then the reference through the ViT (1024 patches, 1280 wide, the full
 * attention block; 256 merged tokens 2048 wide). The LLM's rows are left to "prompt": with
 * the 256 image tokens they would cost several times the ViT. */
static void
test_vit (void)
{
  Component c;
  component_begin (&c);
  g_autoptr (GError) error = NULL;
  DgPlan plan;
  component_plan (&c, DG_JOB_EDIT, 512, TRUE, &plan);
  g_autofree char *dir = component_dir (&c, "vlm");
  vkc_device_reset_peak (c.dev);
  DgVlmOptions vo = DG_VLM_OPTIONS_INIT;
  g_autoptr (DgVlm) vlm = dg_vlm_load (c.dev, dir, &vo, &error);
  g_assert_no_error (error);
  const DgQwenVLConfig *cfg = dg_vlm_config (vlm);
  DgPlanModel m;
  dg_synthetic_plan_model (LAYERS, &m);

  g_autoptr (DgArena) arena = dg_arena_new (c.dev, "vlm activations");
  dg_arena_expect (arena, plan.encode_arena);
  g_autofree float *queries_h = normal_values ((gsize) m.n_queries * cfg->text.hidden, 0.02, 1);
  VkcTensor queries, patches, embeds;
  dg_arena_upload (arena, &queries, VKC_F32, 2, (const int64_t[]) { m.n_queries, cfg->text.hidden }, queries_h);

  g_autoptr (DgImage) ref = test_image (512);
  g_autofree float *pixels = g_new (float, (gsize) 512 * 512 * 3);
  dg_image_to_f32 (ref, DG_LAYOUT_HWC, pixels);
  DgVitGrid grid;
  g_autofree float *rows = dg_vlm_preprocess (&cfg->vision, dg_vit_precision (dg_vlm_vit (vlm)), pixels, DG_LAYOUT_HWC,
                                              512, 512, &grid, NULL, &error);
  g_assert_no_error (error);
  DgLayoutAct a[VIT_N_ACTS];
  dg_vit_layout_acts (&cfg->vision, (gint64) grid.grid_h * grid.grid_w, a);
  dg_arena_tensor (arena, &patches, VKC_F32, (int) a[VIT_ACT_PATCHES].ndim, a[VIT_ACT_PATCHES].shape);
  g_assert_true (dg_arena_check (arena, &error));
  g_assert_true (vkc_tensor_upload (c.dev, &patches, rows, &error));
  g_assert_no_error (error);
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (c.dev, &error);
  g_assert_no_error (error);
  g_assert_true (dg_vit_forward (dg_vlm_vit (vlm), cmd, arena, &patches, &grid, &embeds, NULL));
  submit (cmd, arena);

  g_assert_cmpint (embeds.shape[0], ==, grid.n_tokens);
  g_assert_cmpint (embeds.shape[1], ==, cfg->text.hidden);
  g_test_message ("vit: %.1f GFLOP", dg_flops_vit (&cfg->vision, 512, 512) / 1e9);
  g_autofree float *e = check_finite (&c, "vit", &embeds);
  check_held (&c, "encode", plan.stage[DG_PLAN_ENCODE].total);
  g_clear_pointer (&cmd, vkc_cmd_free);
  g_clear_pointer (&arena, dg_arena_free);
  g_clear_pointer (&vlm, dg_vlm_free);
  component_end (&c, "vit-512");
}

/* The denoise stage at 512² without guidance (one row: guidance's two rows run in "prompt"),
 * one step: the DiT (1536 wide, 24 heads, one dual-attention block), its inputs arena (context
 * of the plan's length, pooled) and its step arena told the plan's dit_arena, as pipeline.c
 * denoise. Then the position crop of a 1024² image, the largest DeepGen is trained for: its
 * upload adds exactly the plan's crop ((1024/16)² tokens · 1536 · 4 bytes) to the DiT's weights,
 * and the centre crops nest (diffusers' cropped_pos_embed: top = (M − h) // 2), so the 512²
 * patch embedding of zero latents (bias + crop) equals the middle 32 × 32 tokens of the 1024²
 * one. */
static void
test_dit (void)
{
  Component c;
  component_begin (&c);
  g_autoptr (GError) error = NULL;
  DgPlan plan;
  component_plan (&c, DG_JOB_GENERATE, 512, FALSE, &plan);
  g_assert_cmpuint (plan.dit_rows, ==, 1);
  g_autofree char *dir = component_dir (&c, "transformer");
  vkc_device_reset_peak (c.dev);
  g_autoptr (DgDit) dit = dg_dit_load (c.dev, dir, DG_PRECISION_BF16, DG_WEIGHTS_RELEASED, &error);
  g_assert_no_error (error);
  const DgDitConfig *cfg = dg_dit_config (dit);
  const gint64 S = plan.seq_len, lh = 512 / 8, D = cfg->inner_dim;

  g_autoptr (DgArena) inputs = dg_arena_new (c.dev, "dit inputs");
  dg_arena_expect (inputs, vkc_pool_piece_size ((VkDeviceSize) S * cfg->joint_attention_dim * 4) +
                               vkc_pool_piece_size ((VkDeviceSize) cfg->pooled_projection_dim * 4));
  VkcTensor ctx, pooled, x, ts, v;
  g_autofree float *ctx_h = normal_values ((gsize) S * cfg->joint_attention_dim, 1, 2);
  g_autofree float *pooled_h = normal_values (cfg->pooled_projection_dim, 1, 3);
  dg_arena_upload (inputs, &ctx, VKC_F32, 3, (const int64_t[]) { 1, S, cfg->joint_attention_dim }, ctx_h);
  dg_arena_upload (inputs, &pooled, VKC_F32, 2, (const int64_t[]) { 1, cfg->pooled_projection_dim }, pooled_h);
  g_assert_true (dg_arena_check (inputs, &error));

  g_autoptr (DgArena) arena = dg_arena_new (c.dev, "dit activations");
  dg_arena_expect (arena, plan.dit_arena);
  g_autofree float *x_h = normal_values ((gsize) lh * lh * cfg->in_channels, 1, 4);
  const float t = 1000;
  dg_arena_upload (arena, &x, VKC_F32, 4, (const int64_t[]) { 1, lh, lh, cfg->in_channels }, x_h);
  dg_arena_upload (arena, &ts, VKC_F32, 1, (const int64_t[]) { 1 }, &t);
  DG_ACT (arena, &v, 1, lh, lh, cfg->out_channels);
  g_assert_true (dg_arena_check (arena, &error));
  DgDitInput di = { &x, &ts, &ctx, &pooled, NULL, NULL };
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (c.dev, &error);
  g_assert_no_error (error);
  g_assert_true (dg_dit_forward (dit, cmd, arena, &di, &v, &error));
  g_assert_no_error (error);
  submit (cmd, arena);
  g_test_message ("dit step: %.1f GFLOP", plan.stage[DG_PLAN_DENOISE].flop / 1e9);
  g_autofree float *v_h = check_finite (&c, "velocity", &v);
  check_held (&c, "denoise", plan.stage[DG_PLAN_DENOISE].total);
  g_clear_pointer (&cmd, vkc_cmd_free);

  /* the position crop for 1024² */
  const guint64 weights_512 = dg_dit_weight_bytes (dit);
  const gint64 n512 = 512 / 16, n1024 = 1024 / 16;
  g_autoptr (DgArena) crop = dg_arena_new (c.dev, "patch embeddings");
  g_autofree float *zeros = g_new0 (float, (gsize) 128 * 128 * cfg->in_channels);
  VkcTensor z512, z1024, tok512, tok1024;
  dg_arena_upload (crop, &z512, VKC_F32, 4, (const int64_t[]) { 1, lh, lh, cfg->in_channels }, zeros);
  dg_arena_upload (crop, &z1024, VKC_F32, 4, (const int64_t[]) { 1, 2 * lh, 2 * lh, cfg->in_channels }, zeros);
  DG_ACT (crop, &tok512, 1, n512 * n512, D);
  DG_ACT (crop, &tok1024, 1, n1024 * n1024, D);
  g_assert_true (dg_arena_check (crop, &error));
  cmd = vkc_cmd_begin (c.dev, &error);
  g_assert_no_error (error);
  g_assert_true (dg_dit_patch_embed (dit, cmd, crop, &z512, &tok512, &error));
  g_assert_true (dg_dit_patch_embed (dit, cmd, crop, &z1024, &tok1024, &error));
  g_assert_no_error (error);
  submit (cmd, crop);
  g_assert_cmpuint (dg_dit_weight_bytes (dit) - weights_512, ==, (guint64) n1024 * n1024 * D * 4);
  g_autofree float *e512 = check_finite (&c, "crop 512", &tok512);
  g_autofree float *e1024 = check_finite (&c, "crop 1024", &tok1024);
  const gint64 off = (n1024 - n512) / 2;
  for (gint64 y = 0; y < n512; y++)
    g_assert_cmpmem (e512 + y * n512 * D, (gsize) (n512 * D) * sizeof (float), e1024 + ((y + off) * n1024 + off) * D,
                     (gsize) (n512 * D) * sizeof (float));
  g_clear_pointer (&cmd, vkc_cmd_free);
  g_clear_pointer (&crop, dg_arena_free);
  g_clear_pointer (&arena, dg_arena_free);
  g_clear_pointer (&inputs, dg_arena_free);
  g_clear_pointer (&dit, dg_dit_free);
  component_end (&c, "dit-512");
}

/* The VAE decoder of a 1024² image, the part whose activations exceed one storage-buffer binding
 * (maxStorageBufferRange, 128 MiB on lavapipe): its last full-resolution block
 * ("decoder.up_blocks.3.resnets.2": GroupNorm, SiLU, two 3×3 convolutions of 128 channels and the
 * residual add) on a band of the 1024-wide activation a few rows taller than one binding holds, so
 * that every op splits its bindings (the whole 1024 rows where one binding holds them all). The
 * decoder weights held equal the plan's decode-stage weights; the band's own activations are this
 * test's (the plan counts the whole decoder's, dg_vae_plan_decode_bytes). The whole decoder at
 * 1024² is 10.5 TFLOP: the slow "generate-1024" runs it. */
static void
test_vae_decode (void)
{
  Component c;
  component_begin (&c);
  g_autoptr (GError) error = NULL;
  DgPlan plan;
  component_plan (&c, DG_JOB_GENERATE, 1024, FALSE, &plan);
  g_autofree char *dir = component_dir (&c, "vae");
  vkc_device_reset_peak (c.dev);
  g_autoptr (DgVae) vae = dg_vae_load (c.dev, dir, DG_VAE_DECODER, DG_PRECISION_BF16, &error);
  g_assert_no_error (error);
  check_held (&c, "decode weights", plan.stage[DG_PLAN_DECODE].weights);
  const DgVaeConfig *cfg = dg_vae_config (vae);
  const gint64 W = 1024, C = cfg->block_out_channels[0];
  const guint64 binding = vkc_device_info (c.dev)->max_storage_buffer_range;
  const gint64 rows = MIN (W, (gint64) (binding / ((guint64) W * C * 4)) + 8);
  g_test_message ("band: %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                  " (%.1f MiB, binding %.1f MiB)",
                  rows, W, C, (double) (rows * W * C * 4) / 1048576.0, (double) binding / 1048576.0);
  g_assert_true (rows == W || (guint64) (rows * W * C * 4) > binding);

  g_autoptr (DgArena) arena = dg_arena_new (c.dev, "vae band");
  g_autofree float *x_h = normal_values ((gsize) rows * W * C, 1, 5);
  VkcTensor x, y;
  dg_arena_upload (arena, &x, VKC_F32, 4, (const int64_t[]) { 1, rows, W, C }, x_h);
  g_clear_pointer (&x_h, g_free);
  g_assert_true (dg_arena_check (arena, &error));
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (c.dev, &error);
  g_assert_no_error (error);
  g_assert_true (dg_vae_forward_module (vae, cmd, arena, "decoder.up_blocks.3.resnets.2", &x, &y));
  submit (cmd, arena);
  g_assert_cmpint (y.shape[1], ==, rows);
  g_assert_cmpint (y.shape[2], ==, W);
  g_assert_cmpint (y.shape[3], ==, C);
  g_autofree float *y_h = check_finite (&c, "decoder band", &y);
  g_clear_pointer (&cmd, vkc_cmd_free);
  g_clear_pointer (&arena, dg_arena_free);
  g_clear_pointer (&vae, dg_vae_free);
  component_end (&c, "vae-decode-1024");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  setvbuf (stdout, NULL, _IOLBF, 0); /* the progress of a long run shows in ctest's log as it goes */
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *path = g_strdup_printf ("/realwidth/%s", cases[i].name);
    g_test_add_data_func (path, &cases[i], run_case);
  }
  g_test_add_func ("/realwidth/vit-512", test_vit);
  g_test_add_func ("/realwidth/dit-512", test_dit);
  g_test_add_func ("/realwidth/vae-decode-1024", test_vae_decode);
  return g_test_run ();
}
