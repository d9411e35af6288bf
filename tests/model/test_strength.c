/* The change strength through the public API (DgRequest.strength) on the tiny model, edit and
 * inpaint, fp32 and bf16. The arithmetic (which steps are kept, the noised source latent) is
 * checked against diffusers in test_scheduler.c; here the pipeline around it:
 *  - strength 0.999 keeps all steps and starts at σ = 1, where scale_noise gives the noise itself:
 *    the result is the strength-1 result byte for byte (and strength 1 is the code path of every
 *    golden scenario in test_pipeline.c, unchanged);
 *  - strength 0.5 of 4 steps runs the last 2 (the progress counts them) and gives another image;
 *  - strength 0, above 1 or NaN, below 1 for generate, and a source whose prepared size is not the
 *    output's end in DG_ERROR_INVALID_ARGUMENT before any GPU work.
 * And variations (issue 13): a batch of requests with the seeds s, s + 1 gives, for each, the image
 * of that request run alone (each request's noise from its own seed), for generate and edit. */
#include <math.h>
#include <string.h>

#include "deepgen.h"
#include "deepgen_hooks.h"
#include "golden.h"
#include "tiny_jobs.h"
#include "vkc.h"

static DgEngine *engine;

static void
count_denoise (DgStage stage, int step, int n, gpointer user)
{
  int *most = user;
  if (stage == DG_STAGE_DENOISE)
    *most = MAX (*most, n);
}

static DgImage *
run (DgModel *m, const DgRequest *r, int *denoise_steps)
{
  g_autoptr (GError) error = NULL;
  int most = 0;
  DgImage *out = dg_run (m, r, count_denoise, &most, NULL, &error);
  g_assert_no_error (error);
  if (denoise_steps)
    *denoise_steps = most;
  return out;
}

static gboolean
same (const DgImage *a, const DgImage *b)
{
  for (int y = 0; y < a->height; y++)
    if (memcmp (a->pixels + (gsize) y * a->rowstride, b->pixels + (gsize) y * b->rowstride,
                (gsize) a->width * a->channels) != 0)
      return FALSE;
  return TRUE;
}

static void
check_job (DgJob kind, DgPrecision precision)
{
  g_autoptr (DgModel) m = tiny_jobs_open_model (engine, precision, DG_WEIGHTS_RELEASED);
  TinyJob job;
  tiny_job_init (&job, kind, 64, 64);
  job.request.steps = 4;
  int n_full = 0, n_same = 0, n_half = 0;
  g_autoptr (DgImage) full = run (m, &job.request, &n_full);
  job.request.strength = 0.999;
  g_autoptr (DgImage) also_full = run (m, &job.request, &n_same);
  job.request.strength = 0.5;
  g_autoptr (DgImage) half = run (m, &job.request, &n_half);
  g_assert_cmpint (n_full, ==, 4);
  g_assert_cmpint (n_same, ==, 4);
  g_assert_cmpint (n_half, ==, 2);
  tiny_jobs_assert_same (full, also_full);
  g_assert_cmpint (half->width, ==, full->width);
  g_assert_cmpint (half->height, ==, full->height);
  g_assert_false (same (full, half));
  tiny_job_clear (&job);
}

static void
test_edit (void)
{
  check_job (DG_JOB_EDIT, DG_PRECISION_F32);
  check_job (DG_JOB_EDIT, DG_PRECISION_BF16);
}

static void
test_inpaint (void)
{
  check_job (DG_JOB_INPAINT, DG_PRECISION_F32); /* bf16's rounding is the same code as edit's */
}

static void
expect_invalid (DgModel *m, const DgRequest *r)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DgImage) none = dg_run (m, r, NULL, NULL, NULL, &error);
  g_assert_null (none);
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_test_message ("%s", error->message);
}

static void
test_bad (void)
{
  g_autoptr (DgModel) m = tiny_jobs_open_model (engine, DG_PRECISION_F32, DG_WEIGHTS_RELEASED);
  TinyJob job;
  tiny_job_init (&job, DG_JOB_EDIT, 64, 64);
  static const double bad[] = { 0.0, -0.5, 1.5, NAN, 1e-20 };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    job.request.strength = bad[i];
    expect_invalid (m, &job.request);
  }
  /* two references: the result is --size (128×128), the first reference is prepared at 128×96 */
  g_autoptr (DgImage) wide = dg_image_new (160, 120, 3);
  memset (wide->pixels, 90, (gsize) wide->rowstride * wide->height);
  const DgImage *two[2] = { wide, job.source };
  job.request.images = two;
  job.request.n_images = 2;
  job.request.width = job.request.height = 128;
  job.request.strength = 0.5;
  expect_invalid (m, &job.request);
  tiny_job_clear (&job);

  tiny_job_init (&job, DG_JOB_GENERATE, 64, 64);
  job.request.strength = 0.5;
  expect_invalid (m, &job.request);
  tiny_job_clear (&job);
}

static void
test_variation_seeds (void)
{
  g_autoptr (DgModel) m = tiny_jobs_open_model (engine, DG_PRECISION_F32, DG_WEIGHTS_RELEASED);
  for (int kind = 0; kind < 2; kind++) {
    TinyJob job;
    tiny_job_init (&job, kind ? DG_JOB_EDIT : DG_JOB_GENERATE, 64, 48);
    enum { N = 2 };
    DgRequest reqs[N];
    const DgRequest *ptrs[N];
    g_autoptr (GPtrArray) alone = g_ptr_array_new_with_free_func ((GDestroyNotify) dg_image_free);
    for (int i = 0; i < N; i++) {
      reqs[i] = job.request;
      reqs[i].seed = 5 + i;
      ptrs[i] = &reqs[i];
      g_ptr_array_add (alone, run (m, &reqs[i], NULL));
    }
    g_autoptr (GError) error = NULL;
    g_autoptr (GPtrArray) batch = dg_run_batch (m, ptrs, N, NULL, NULL, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (batch->len, ==, N);
    for (int i = 0; i < N; i++) tiny_jobs_assert_same (g_ptr_array_index (batch, i), g_ptr_array_index (alone, i));
    g_assert_false (same (g_ptr_array_index (batch, 0), g_ptr_array_index (batch, 1)));
    tiny_job_clear (&job);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autoptr (GError) error = NULL;
  engine = dg_engine_new (NULL, &error);
  g_assert_no_error (error);
  g_test_add_func ("/strength/edit", test_edit);
  g_test_add_func ("/strength/inpaint", test_inpaint);
  g_test_add_func ("/strength/bad", test_bad);
  g_test_add_func ("/batch/variation-seeds", test_variation_seeds);
  int rc = g_test_run ();
  guint messages = vkc_device_validation_messages (dg_engine_device (engine));
  dg_engine_free (engine);
  g_assert_cmpuint (messages, ==, 0);
  return rc;
}
