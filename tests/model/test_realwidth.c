/* Real-width smoke tests (DESIGN.md §5, docs/TESTING.md "realwidth"): DeepGen 1.0's real widths —
 * the 2048-wide LLM, the ViT on a 512² reference, the connector, the 1536-wide DiT with 24 heads
 * (its position table cropped for 512² and 1024²), the whole VAE decoder at 1024², whose
 * activations exceed one 128 MiB binding — run through the pipeline on the synthetic model
 * (model/nn/synthetic.h: random weights made in memory, one layer per component unless the case
 * says otherwise). Each case checks that the run ends without an error, that every stage's
 * output is finite (no NaN or Inf: DgRunHooks.stage_output), that every stage held exactly the
 * device memory its plan computed (the VAE stages within the GroupNorm scratch that follows
 * the device's row splits, as test_pipeline_memory.c), and no validation message.
 *
 * One case per ctest (`-p /realwidth/<case>`, tests/model/realwidth.cmake). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "deepgen.h"
#include "deepgen_hooks.h"
#include "golden.h"
#include "plan.h"

typedef struct {
  const char *name;
  DgJob job;
  int size;     /* output (and reference) side */
  guint layers; /* 0 = full depth */
  DgWeightFormat weights;
} Case;

static const Case cases[] = {
  /* LLM, connector, DiT at 512² (CFG rows), VAE decode at 512² */
  { "generate-512", DG_JOB_GENERATE, 512, 1, DG_WEIGHTS_RELEASED },
  /* the ViT on one 512² reference, the VAE encoder, the DiT with reference tokens */
  { "edit-512", DG_JOB_EDIT, 512, 1, DG_WEIGHTS_RELEASED },
  /* the DiT's position crop for 1024², the whole VAE decoder at 1024² */
  { "generate-1024", DG_JOB_GENERATE, 1024, 1, DG_WEIGHTS_RELEASED },
  /* the whole synthetic model, end to end (slow) */
  { "full-256-q8", DG_JOB_GENERATE, 256, 0, DG_WEIGHTS_Q8_0 },
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
  r.prompt = "a red fox in the snow at sunrise, photograph";
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
    g_test_message ("%-10s planned %12" G_GUINT64_FORMAT "  held %12" G_GUINT64_FORMAT,
                    dg_plan_stage_name ((DgPlanStage) s), planned, held);
    if (s == DG_PLAN_VAE_ENCODE || s == DG_PLAN_DECODE) {
      g_assert_cmpuint (held + (4u << 20), >=, planned);
      g_assert_cmpuint (planned + (4u << 20), >=, held);
      g_assert_cmpuint (held == 0, ==, planned == 0);
    } else
      g_assert_cmpuint (held, ==, planned);
  }
  g_assert_cmpuint (vkc_device_validation_messages (dg_engine_device (engine)), ==, 0);
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
  return g_test_run ();
}
