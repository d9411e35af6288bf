/* The memory plan against real runs of the pipeline (DESIGN.md §5, model/plan/plan.h), on the tiny
 * model:
 *  - every stage of a run holds exactly the device memory its plan computed (the pools are
 *    sized from the plan and the loaders' counts, so the two agree by construction; the VAE
 *    stages up to the GroupNorm scratch, which follows the device's row splits);
 *  - a job that needs more memory than the device reports is refused before anything is
 *    uploaded, with DG_ERROR_OOM and a message naming both sizes (DEEPGEN_VK_FAKE_DEVICE_BYTES
 *    pretends the device is smaller, vkc.h);
 *  - the pieces behind the lower peak: the meta queries read on their own equal the loaded
 *    connector's, and a VLM loaded text_only refuses images;
 *  - q8_0 and q4_0 weights: the pools equal the plan too, they are smaller, and DG_WEIGHTS_AUTO
 *    takes q8_0 exactly when the released weights would not fit, q4_0 when q8_0 would not;
 *  - a resident model on a device that holds only some components together keeps those
 *    (dg_plan_resident_set): its next job uploads exactly the others' weights, and the images
 *    equal a non-resident model's byte for byte. */
#include <string.h>

#include "connector.h"
#include "deepgen.h"
#include "golden.h"
#include "deepgen_hooks.h"
#include "plan.h"
#include "resident.h"
#include "tokenizer.h"
#include "vlm.h"

static DgEngine *engine;

static DgModel *
open_tiny_weights (DgEngine *e, DgPrecision precision, DgWeightFormat weights)
{
  g_autofree char *dir = golden_data_path ("tiny-deepgen");
  g_autoptr (GError) error = NULL;
  DgLoadOptions lo = DG_LOAD_OPTIONS_INIT;
  lo.precision = precision;
  lo.weights = weights;
  DgModel *m = dg_model_open (e, dir, &lo, &error);
  g_assert_no_error (error);
  return m;
}

static DgModel *
open_tiny (DgEngine *e, DgPrecision precision)
{
  return open_tiny_weights (e, precision, DG_WEIGHTS_RELEASED);
}

/* A smooth RGB test image. */
static DgImage *
test_image (int width, int height, int seed)
{
  DgImage *img = dg_image_new (width, height, 3);
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      for (int c = 0; c < 3; c++)
        img->pixels[(gsize) y * img->rowstride + x * 3 + c] = (guint8) ((x * (c + 1) + y * 3 + seed * 40) & 255);
  return img;
}

/* What the pools held in each stage equals the plan; the VAE stages within the GroupNorm
 * scratch that the device's row splits add (a few MB at most, test_plan_device). */
static void
check_memory (const char *what, const DgRunMemory *mem)
{
  g_assert_true (mem->planned);
  for (int s = 0; s < DG_PLAN_N_STAGES; s++) {
    const guint64 planned = mem->plan.stage[s].total, held = mem->stage_peaks[s];
    g_test_message ("%s %-10s planned %10" G_GUINT64_FORMAT "  held %10" G_GUINT64_FORMAT, what,
                    dg_plan_stage_name ((DgPlanStage) s), planned, held);
    if (s == DG_PLAN_VAE_ENCODE || s == DG_PLAN_DECODE) {
      g_assert_cmpuint (held + (4u << 20), >=, planned);
      g_assert_cmpuint (planned + (4u << 20), >=, held);
      g_assert_cmpuint (held == 0, ==, planned == 0);
    } else {
      g_assert_cmpuint (held, ==, planned);
    }
  }
}

typedef struct {
  const char *name;
  DgJob job;
  guint batch;
  guint n_images[2];
  int image_sizes[2][2][2]; /* [request][image] width, height */
  double guidance;
} Case;

static const Case cases[] = {
  { "generate", DG_JOB_GENERATE, 1, { 0 }, { { { 0 } } }, 4.0 },
  { "generate-no-cfg", DG_JOB_GENERATE, 1, { 0 }, { { { 0 } } }, 1.0 },
  { "edit", DG_JOB_EDIT, 1, { 1 }, { { { 160, 192 } } }, 4.0 },
  /* two requests, one and two references of different sizes: padded DiT rows */
  { "edit-batch", DG_JOB_EDIT, 2, { 1, 2 }, { { { 128, 128 } }, { { 160, 128 }, { 128, 96 } } }, 4.0 },
};

static void
test_plan_equals_pools (void)
{
  static const char *const modes[] = { "bf16", "f32", "bf16+q8_0", "bf16+q4_0" };
  static const DgWeightFormat formats[] = { DG_WEIGHTS_RELEASED, DG_WEIGHTS_RELEASED, DG_WEIGHTS_Q8_0,
                                            DG_WEIGHTS_Q4_0 };
  for (int p = 0; p < 4; p++) {
    g_autoptr (DgModel) model = open_tiny_weights (engine, p == 1 ? DG_PRECISION_F32 : DG_PRECISION_BF16, formats[p]);
    for (guint k = 0; k < G_N_ELEMENTS (cases); k++) {
      const Case *c = &cases[k];
      DgRequest reqs[2];
      const DgRequest *rp[2];
      DgImage *imgs[2][2] = { { NULL } };
      const DgImage *img_ptrs[2][2];
      for (guint b = 0; b < c->batch; b++) {
        reqs[b] = (DgRequest) DG_REQUEST_INIT;
        reqs[b].job = c->job;
        reqs[b].prompt = b ? "a second, somewhat longer prompt about a boat" : "a red fox";
        reqs[b].width = reqs[b].height = 128;
        reqs[b].steps = 1;
        reqs[b].guidance = c->guidance;
        for (guint j = 0; j < c->n_images[b]; j++) {
          imgs[b][j] = test_image (c->image_sizes[b][j][0], c->image_sizes[b][j][1], (int) (b * 2 + j));
          img_ptrs[b][j] = imgs[b][j];
        }
        reqs[b].images = img_ptrs[b];
        reqs[b].n_images = c->n_images[b];
        rp[b] = &reqs[b];
      }
      DgRunHooks hooks = { .references_as_given = TRUE }; /* references at their own (multiple-of-32) sizes */
      DgRunMemory mem;
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) out = dg_run_batch_measured (model, rp, c->batch, &hooks, &mem, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (out->len, ==, c->batch);
      g_autofree char *what = g_strdup_printf ("%s %s", c->name, modes[p]);
      check_memory (what, &mem);
      g_assert_cmpint (mem.plan.weights, ==, formats[p]);
      g_assert_cmpint (dg_model_last_run_weights (model), ==, mem.plan.weights);
      g_assert_cmpuint (mem.plan.batch, ==, c->batch);
      g_assert_cmpuint (mem.plan.dit_rows, ==, (c->guidance > 1 ? 2 : 1) * c->batch);
      for (guint b = 0; b < c->batch; b++)
        for (guint j = 0; j < c->n_images[b]; j++) dg_image_free (imgs[b][j]);
    }
  }
}

static guint progress_calls;

static void
count_progress (DgStage stage, int step, int of, gpointer user_data)
{
  (void) stage, (void) step, (void) of, (void) user_data;
  progress_calls++;
}

/* A device that reports less memory than the job needs: refused before any upload. */
static void
test_refused_early (void)
{
  g_setenv ("DEEPGEN_VK_FAKE_DEVICE_BYTES", "67108864", TRUE); /* 64 MiB: less than the margin alone */
  g_autoptr (GError) error = NULL;
  DgEngine *small = dg_engine_new (NULL, &error);
  g_unsetenv ("DEEPGEN_VK_FAKE_DEVICE_BYTES");
  g_assert_no_error (error);
  VkcDevice *dev = dg_engine_device (small);
  g_assert_cmpuint (vkc_device_info (dev)->device_local_bytes, ==, 64u << 20);
  {
    g_autoptr (DgModel) model = open_tiny (small, DG_PRECISION_BF16);
    DgRequest r = DG_REQUEST_INIT;
    r.prompt = "a red fox";
    r.width = r.height = 128;
    r.steps = 1;
    const DgRequest *rp = &r;
    DgRunMemory mem;
    progress_calls = 0;
    vkc_device_reset_peak (dev);
    g_autoptr (GPtrArray) out = dg_run_batch_measured (model, &rp, 1, NULL, &mem, count_progress, NULL, NULL, &error);
    g_assert_null (out);
    g_assert_error (error, DG_ERROR, DG_ERROR_OOM);
    g_test_message ("%s", error->message);
    /* The message names what the job needs and what the device has. */
    g_assert_true (mem.planned);
    g_autofree char *need = g_format_size_full (mem.plan.required, G_FORMAT_SIZE_IEC_UNITS);
    g_autofree char *have = g_format_size_full (64u << 20, G_FORMAT_SIZE_IEC_UNITS); /* "64.0 MiB" */
    g_assert_nonnull (strstr (error->message, need));
    g_assert_nonnull (strstr (error->message, have));
    g_assert_nonnull (strstr (error->message, "128×128"));
    /* Nothing was uploaded, no stage began. */
    VkDeviceSize peak;
    g_assert_cmpuint (vkc_device_reserved (dev, &peak), ==, 0);
    g_assert_cmpuint (peak, ==, 0);
    g_assert_cmpuint (progress_calls, ==, 0);
    g_clear_error (&error);
    g_clear_pointer (&out, g_ptr_array_unref);

    /* Through the public entry point too. */
    g_autoptr (DgImage) none = dg_run (model, &r, NULL, NULL, NULL, &error);
    g_assert_null (none);
    g_assert_error (error, DG_ERROR, DG_ERROR_OOM);
    g_clear_error (&error);
  }
  guint messages = vkc_device_validation_messages (dev);
  dg_engine_free (small);
  g_assert_cmpuint (messages, ==, 0);

  /* A device with exactly what the plan requires runs the job. */
  g_autoptr (DgModel) model = open_tiny (engine, DG_PRECISION_BF16);
  DgRequest r = DG_REQUEST_INIT;
  r.prompt = "a red fox";
  r.width = r.height = 128;
  r.steps = 1;
  const DgRequest *rp = &r;
  DgRunMemory mem;
  g_autoptr (GPtrArray) ok = dg_run_batch_measured (model, &rp, 1, NULL, &mem, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_autofree char *exact = g_strdup_printf ("%" G_GUINT64_FORMAT, mem.plan.required);
  g_setenv ("DEEPGEN_VK_FAKE_DEVICE_BYTES", exact, TRUE);
  DgEngine *fits = dg_engine_new (NULL, &error);
  g_unsetenv ("DEEPGEN_VK_FAKE_DEVICE_BYTES");
  g_assert_no_error (error);
  {
    g_autoptr (DgModel) m2 = open_tiny (fits, DG_PRECISION_BF16);
    g_autoptr (DgImage) img = dg_run (m2, &r, NULL, NULL, NULL, &error);
    g_assert_no_error (error);
    g_assert_nonnull (img);
  }
  messages = vkc_device_validation_messages (dg_engine_device (fits));
  dg_engine_free (fits);
  g_assert_cmpuint (messages, ==, 0);
}

/* One generate run of the tiny model; its plan in @mem (the run may fail: @error). 16×16: the
 * tiny model's VAE decoder, whose weights stay as released, needs most at larger sizes, and the
 * peak must be a stage with quantizable weights for the q8_0 plan to need less. */
static GPtrArray *
run_generate (DgModel *model, DgRunMemory *mem, GError **error)
{
  DgRequest r = DG_REQUEST_INIT;
  r.prompt = "a red fox";
  r.width = r.height = 16;
  r.steps = 1;
  const DgRequest *rp = &r;
  return dg_run_batch_measured (model, &rp, 1, NULL, mem, NULL, NULL, NULL, error);
}

static DgEngine *
engine_with_bytes (guint64 bytes)
{
  g_autofree char *text = g_strdup_printf ("%" G_GUINT64_FORMAT, bytes);
  g_setenv ("DEEPGEN_VK_FAKE_DEVICE_BYTES", text, TRUE);
  g_autoptr (GError) error = NULL;
  DgEngine *e = dg_engine_new (NULL, &error);
  g_unsetenv ("DEEPGEN_VK_FAKE_DEVICE_BYTES");
  g_assert_no_error (error);
  return e;
}

/* q8_0 needs less, and AUTO switches to it exactly when the released weights do not fit. */
static void
test_auto_weights (void)
{
  g_autoptr (GError) error = NULL;
  DgRunMemory released, q8, q4;
  {
    g_autoptr (DgModel) m = open_tiny_weights (engine, DG_PRECISION_BF16, DG_WEIGHTS_Q4_0);
    g_autoptr (GPtrArray) out = run_generate (m, &q4, &error);
    g_assert_no_error (error);
  }
  {
    g_autoptr (DgModel) m = open_tiny (engine, DG_PRECISION_BF16);
    g_autoptr (GPtrArray) out = run_generate (m, &released, &error);
    g_assert_no_error (error);
  }
  {
    g_autoptr (DgModel) m = open_tiny_weights (engine, DG_PRECISION_BF16, DG_WEIGHTS_Q8_0);
    g_autoptr (GPtrArray) out = run_generate (m, &q8, &error);
    g_assert_no_error (error);
  }
  /* Every stage with VLM, connector or DiT weights holds less; the VAE stages the same. */
  for (int s = 0; s < DG_PLAN_N_STAGES; s++) {
    g_test_message ("%-10s weights: released %8" G_GUINT64_FORMAT "  q8_0 %8" G_GUINT64_FORMAT
                    "; stage: released %10" G_GUINT64_FORMAT "  q8_0 %10" G_GUINT64_FORMAT,
                    dg_plan_stage_name ((DgPlanStage) s), released.plan.stage[s].weights, q8.plan.stage[s].weights,
                    released.plan.stage[s].total, q8.plan.stage[s].total);
    if (s == DG_PLAN_ENCODE || s == DG_PLAN_BRIDGE || s == DG_PLAN_DENOISE)
      g_assert_cmpuint (q8.plan.stage[s].weights, <, released.plan.stage[s].weights);
    else
      g_assert_cmpuint (q8.plan.stage[s].weights, ==, released.plan.stage[s].weights);
  }
  g_assert_cmpint (released.plan.peak_stage, !=, DG_PLAN_DECODE);
  g_assert_cmpuint (q8.plan.required, <, released.plan.required);
  /* 4 bits for the VLM only: less in the encode stage, the rest as q8_0 */
  g_assert_cmpuint (q4.plan.stage[DG_PLAN_ENCODE].weights, <, q8.plan.stage[DG_PLAN_ENCODE].weights);
  g_assert_cmpuint (q4.plan.stage[DG_PLAN_DENOISE].weights, ==, q8.plan.stage[DG_PLAN_DENOISE].weights);
  g_assert_cmpuint (q4.plan.required, <, q8.plan.required);

  /* A device with room for the q8_0 plan only. */
  DgEngine *small = engine_with_bytes (q8.plan.required);
  {
    g_autoptr (DgModel) aut = open_tiny_weights (small, DG_PRECISION_BF16, DG_WEIGHTS_AUTO);
    DgRunMemory mem;
    g_autoptr (GPtrArray) out = run_generate (aut, &mem, &error);
    g_assert_no_error (error);
    g_assert_cmpint (dg_model_last_run_weights (aut), ==, DG_WEIGHTS_Q8_0);
    g_assert_cmpint (mem.plan.weights, ==, DG_WEIGHTS_Q8_0);
    check_memory ("auto on a small device", &mem);

    /* Released weights on it: refused early, and the message points at 8-bit weights. */
    g_autoptr (DgModel) rel = open_tiny (small, DG_PRECISION_BF16);
    g_autoptr (GPtrArray) none = run_generate (rel, &mem, &error);
    g_assert_null (none);
    g_assert_error (error, DG_ERROR, DG_ERROR_OOM);
    g_test_message ("%s", error->message);
    g_assert_nonnull (strstr (error->message, "--weights q8"));
    g_clear_error (&error);
  }
  /* One byte less: AUTO goes on to the 4-bit VLM; q8_0 asked for is refused, pointing at q4. */
  DgEngine *smaller = engine_with_bytes (q8.plan.required - 1);
  {
    g_autoptr (DgModel) aut = open_tiny_weights (smaller, DG_PRECISION_BF16, DG_WEIGHTS_AUTO);
    DgRunMemory mem;
    g_autoptr (GPtrArray) out = run_generate (aut, &mem, &error);
    g_assert_no_error (error);
    g_assert_cmpint (dg_model_last_run_weights (aut), ==, DG_WEIGHTS_Q4_0);
    check_memory ("auto on a smaller device", &mem);
    g_autoptr (DgModel) q8m = open_tiny_weights (smaller, DG_PRECISION_BF16, DG_WEIGHTS_Q8_0);
    g_autoptr (GPtrArray) none = run_generate (q8m, &mem, &error);
    g_assert_null (none);
    g_assert_error (error, DG_ERROR, DG_ERROR_OOM);
    g_assert_nonnull (strstr (error->message, "--weights q4"));
    g_clear_error (&error);
  }
  /* Less than the smallest plan: nothing fits, and AUTO reports the q4_0 plan's needs. */
  DgEngine *tiny = engine_with_bytes (q4.plan.required - 1);
  {
    g_autoptr (DgModel) aut = open_tiny_weights (tiny, DG_PRECISION_BF16, DG_WEIGHTS_AUTO);
    DgRunMemory mem;
    g_autoptr (GPtrArray) none = run_generate (aut, &mem, &error);
    g_assert_null (none);
    g_assert_error (error, DG_ERROR, DG_ERROR_OOM);
    g_autofree char *need = g_format_size_full (q4.plan.required, G_FORMAT_SIZE_IEC_UNITS);
    g_assert_nonnull (strstr (error->message, need));
    g_clear_error (&error);
  }
  /* Room for the released plan: AUTO keeps the released weights. */
  DgEngine *big = engine_with_bytes (released.plan.required);
  {
    g_autoptr (DgModel) aut = open_tiny_weights (big, DG_PRECISION_BF16, DG_WEIGHTS_AUTO);
    DgRunMemory mem;
    g_autoptr (GPtrArray) out = run_generate (aut, &mem, &error);
    g_assert_no_error (error);
    g_assert_cmpint (dg_model_last_run_weights (aut), ==, DG_WEIGHTS_RELEASED);
  }
  DgEngine *engines[] = { small, smaller, tiny, big };
  for (guint i = 0; i < G_N_ELEMENTS (engines); i++) {
    guint messages = vkc_device_validation_messages (dg_engine_device (engines[i]));
    dg_engine_free (engines[i]);
    g_assert_cmpuint (messages, ==, 0);
  }
}

/* The encode stage reads the meta queries on their own: the same values as the connector's. */
static void
test_meta_queries (void)
{
  g_autofree char *dir = golden_data_path ("tiny-deepgen/connector");
  VkcDevice *dev = dg_engine_device (engine);
  for (int p = 0; p < 2; p++) {
    DgPrecision prec = p ? DG_PRECISION_F32 : DG_PRECISION_BF16;
    g_autoptr (GError) error = NULL;
    guint n = 0, width = 0;
    g_autofree float *q = dg_connector_read_meta_queries (dir, prec, &n, &width, &error);
    g_assert_no_error (error);
    g_autoptr (DgConnector) conn = dg_connector_load (dev, dir, prec, DG_WEIGHTS_RELEASED, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (n, ==, dg_connector_n_queries (conn));
    g_assert_cmpuint (width, ==, dg_connector_llm_hidden (conn));
    g_assert_true (memcmp (q, dg_connector_meta_queries_host (conn), (gsize) n * width * sizeof (float)) == 0);
  }
}

/* dg_vlm_load text_only: no vision tower, and images are refused with a clear error. */
static void
test_text_only_vlm (void)
{
  g_autofree char *model = golden_data_path ("tiny-deepgen");
  g_autofree char *vdir = golden_data_path ("tiny-deepgen/vlm");
  VkcDevice *dev = dg_engine_device (engine);
  g_autoptr (GError) error = NULL;
  DgVlmOptions o = DG_VLM_OPTIONS_INIT;
  o.text_only = TRUE;
  g_autoptr (DgVlm) vlm = dg_vlm_load (dev, vdir, &o, &error);
  g_assert_no_error (error);
  g_assert_null (dg_vlm_vit (vlm));
  g_autoptr (DgTokenizer) tok = dg_tokenizer_load (model, &error);
  g_assert_no_error (error);
  const guint sizes[2] = { 64, 64 };
  DgPromptRequest pr = { "make it red", "", 1, sizes };
  g_autoptr (DgPromptBatch) batch = dg_prompt_batch_new (tok, &pr, 1, 4, dg_vlm_vision_config (vlm), &error);
  g_assert_no_error (error);
  g_autofree float *pixels = g_new0 (float, 64 * 64 * 3);
  DgVlmImage image = { pixels, DG_LAYOUT_HWC, 64, 64 };
  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  VkcTensor merged;
  g_assert_false (dg_vlm_encode (vlm, arena, batch, &image, 1, NULL, &merged, NULL, NULL, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "vision tower"));
  VkDeviceSize held = vkc_pool_reserved (arena->pool);
  g_assert_cmpuint (held, ==, 0);
}

/* One 16×16 generate of @prompt; its plan in @mem. */
static DgImage *
run_prompt (DgModel *model, const char *prompt, DgRunMemory *mem)
{
  DgRequest r = DG_REQUEST_INIT;
  r.prompt = prompt;
  r.width = r.height = 16;
  r.steps = 1;
  r.seed = 7;
  const DgRequest *rp = &r;
  g_autoptr (GError) error = NULL;
  GPtrArray *out = dg_run_batch_measured (model, &rp, 1, NULL, mem, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, 1);
  DgImage *img = g_ptr_array_steal_index (out, 0);
  g_ptr_array_unref (out);
  return img;
}

static void
assert_same_image (const DgImage *a, const DgImage *b)
{
  g_assert_cmpint (a->width, ==, b->width);
  g_assert_cmpint (a->height, ==, b->height);
  g_assert_cmpint (a->channels, ==, b->channels);
  for (int y = 0; y < a->height; y++)
    g_assert_cmpmem (a->pixels + (gsize) y * a->rowstride, (gsize) a->width * a->channels,
                     b->pixels + (gsize) y * b->rowstride, (gsize) b->width * b->channels);
}

/* The sum of the weights of the components of @plan in @set (bit per DgPlanStage). */
static guint64
weights_of (const DgPlan *plan, guint set)
{
  guint64 n = 0;
  for (int s = 0; s < DG_PLAN_N_STAGES; s++)
    if (set & (1u << s))
      n += plan->stage[s].weights;
  return n;
}

/* A device that holds some of the tiny model's components together but not all: the resident
 * model keeps dg_plan_resident_set's choice, and its second job (a new prompt: the VLM and the
 * connector run again) uploads exactly the weights of the components it did not keep. */
static void
test_partial_residency (void)
{
  /* This job's plan, and a device size where only part of it stays: the largest, in steps of
   * 1/256 of the weights from the plan's need, where the rule keeps something but not all. */
  DgRunMemory mem;
  g_autoptr (DgImage) probe = NULL;
  {
    g_autoptr (DgModel) m = open_tiny (engine, DG_PRECISION_BF16);
    probe = run_prompt (m, "a red fox", &mem);
  }
  const DgPlan plan = mem.plan;
  guint all = 0;
  for (int s = 0; s < DG_PLAN_N_STAGES; s++)
    if (plan.stage[s].weights)
      all |= 1u << s;
  const guint64 step = MAX (weights_of (&plan, all) / 256, 256);
  guint64 device = 0;
  guint set = 0;
  for (guint64 d = plan.required; d < plan.required + 2 * weights_of (&plan, all); d += step) {
    const guint k = dg_plan_resident_set (&plan, d, NULL);
    if (k == all)
      break;
    if (k)
      device = d, set = k;
  }
  g_test_message ("device %" G_GUINT64_FORMAT " bytes: keeps 0x%x of 0x%x", device, set, all);
  g_assert_cmphex (set, !=, 0);
  g_assert_cmphex (set, !=, all); /* the tiny model's components are too unequal to all fit first */

  DgEngine *small = engine_with_bytes (device);
  {
    /* The images of a model that keeps nothing, on the same device (the VAE's tile choice
     * depends on its size). */
    g_autoptr (DgImage) ref1 = NULL, ref2 = NULL;
    {
      g_autoptr (DgModel) plain = open_tiny (small, DG_PRECISION_BF16);
      ref1 = run_prompt (plain, "a red fox", &mem);
      ref2 = run_prompt (plain, "a blue bird", &mem);
      g_assert_cmpuint (dg_model_resident_components (plain), ==, 0);
    }
    g_autoptr (DgModel) m = open_tiny (small, DG_PRECISION_BF16);
    dg_model_set_resident (m, TRUE);
    g_autoptr (DgImage) img1 = run_prompt (m, "a red fox", &mem);
    g_assert_true (memcmp (&mem.plan.stage, &plan.stage, sizeof plan.stage) == 0);
    g_assert_cmpuint (dg_model_last_run_uploaded (m), ==, weights_of (&plan, all));
    g_assert_cmphex (dg_model_resident_components (m), ==, set);
    g_autoptr (DgImage) img2 = run_prompt (m, "a blue bird", &mem);
    g_assert_cmpuint (dg_model_last_run_uploaded (m), ==, weights_of (&plan, all & ~set));
    g_assert_cmphex (dg_model_resident_components (m), ==, set);
    g_test_message ("second job uploaded %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " weight bytes",
                    dg_model_last_run_uploaded (m), weights_of (&plan, all));
    assert_same_image (img1, ref1);
    assert_same_image (img2, ref2);
  }
  guint messages = vkc_device_validation_messages (dg_engine_device (small));
  dg_engine_free (small);
  g_assert_cmpuint (messages, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autoptr (GError) error = NULL;
  engine = dg_engine_new (NULL, &error);
  g_assert_no_error (error);
  g_test_add_func ("/pipeline-memory/plan-equals-pools", test_plan_equals_pools);
  g_test_add_func ("/pipeline-memory/refused-early", test_refused_early);
  g_test_add_func ("/pipeline-memory/auto-weights", test_auto_weights);
  g_test_add_func ("/pipeline-memory/meta-queries", test_meta_queries);
  g_test_add_func ("/pipeline-memory/text-only-vlm", test_text_only_vlm);
  g_test_add_func ("/pipeline-memory/partial-residency", test_partial_residency);
  int rc = g_test_run ();
  guint messages = vkc_device_validation_messages (dg_engine_device (engine));
  dg_engine_free (engine);
  g_assert_cmpuint (messages, ==, 0);
  return rc;
}
