/* Faults a real machine produces, injected on purpose (vkc_device_set_faults), on the tiny
 * model for the three jobs (generate, edit, inpaint):
 *  - every device allocation of a run in turn fails as a driver out of memory would (buffers,
 *    memory blocks, pipelines, descriptor pools, command buffers): the run ends in DG_ERROR_OOM
 *    with a message, and the next run on the same engine gives the reference image byte for byte;
 *  - the device is lost at a queue submission and at a fence wait: DG_ERROR_DEVICE saying the GPU
 *    was reset, later runs on that engine fail the same way, and a new engine in the same process
 *    runs the job again byte for byte;
 *  - the run is cancelled from each progress callback in turn: DG_ERROR_CANCELLED, and the next
 *    run gives the reference image.
 * Every run is checked: the result is either an error of the expected kind or the reference
 * bytes, never a third thing. Every run from no pipelines makes the same allocations in the same
 * order, so "the N-th" names one allocation site. DEEPGEN_FAULT_STRIDE=k tries every k-th
 * allocation (default 3: every kind of site, minutes; 1: every one, the `slow` test). A run
 * makes 55–70 device allocations since command buffers are reused (844–1035 before). */
#include <stdlib.h>
#include <string.h>

#include "deepgen.h"
#include "golden.h"
#include "tiny_jobs.h"
#include "deepgen_hooks.h"
#include "vkc.h"

static DgEngine *engine;

typedef struct {
  const char *name;
  DgJob job;
} Job;

static const Job jobs[] = {
  { "generate", DG_JOB_GENERATE },
  { "edit", DG_JOB_EDIT },
  { "inpaint", DG_JOB_INPAINT },
};

/* A clean run of @in, which must give @want (when set). */
static DgImage *
run_clean (DgModel *m, TinyJob *in, const DgImage *want)
{
  vkc_device_set_faults (dg_engine_device (engine), NULL);
  g_autoptr (GError) error = NULL;
  DgImage *out = dg_run (m, &in->request, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  if (want)
    tiny_jobs_assert_same (out, want);
  return out;
}

static guint
fault_stride (void)
{
  const char *s = g_getenv ("DEEPGEN_FAULT_STRIDE");
  return s && atoi (s) > 0 ? (guint) atoi (s) : 3;
}

static void
test_alloc_failures (gconstpointer data)
{
  const Job *job = data;
  VkcDevice *dev = dg_engine_device (engine);
  g_autoptr (DgModel) m = tiny_jobs_open_model (engine, DG_PRECISION_F32, DG_WEIGHTS_RELEASED);
  TinyJob in;
  tiny_job_init (&in, job->job, 64, 48);

  /* The allocation sequence of a run from no pipelines: the same for every N below. The first
   * run of the process also makes what the device keeps for good (the staging buffer, the fast
   * paths' self-checks): one run before counting, so that the count holds for later runs. */
  g_autoptr (DgImage) first = run_clean (m, &in, NULL);
  vkc_device_drop_pipelines (dev);
  g_autoptr (DgImage) want = run_clean (m, &in, NULL);
  VkcFaultCounts counts;
  vkc_device_fault_counts (dev, &counts);
  g_assert_cmpuint (counts.allocs, >, 10);
  g_test_message ("%s: %" G_GUINT64_FORMAT " device allocations, %" G_GUINT64_FORMAT " submissions per run", job->name,
                  counts.allocs, counts.submits);

  guint tried = 0;
  for (guint64 n = 1; n <= counts.allocs; n += fault_stride ()) {
    vkc_device_drop_pipelines (dev);
    vkc_device_set_faults (dev, &(VkcFaults) { .fail_alloc_at = n });
    g_autoptr (GError) error = NULL;
    g_autoptr (DgImage) out = dg_run (m, &in.request, NULL, NULL, NULL, &error);
    if (out)
      g_error ("%s: allocation %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " failed, yet the run returned an image",
               job->name, n, counts.allocs);
    if (!error)
      g_error ("%s: allocation %" G_GUINT64_FORMAT " failed: the run returned neither an image nor an error", job->name,
               n);
    if (!g_error_matches (error, DG_ERROR, DG_ERROR_OOM))
      g_error ("%s: allocation %" G_GUINT64_FORMAT " failed: expected DG_ERROR_OOM, got %s %d: %s", job->name, n,
               g_quark_to_string (error->domain), error->code, error->message);
    g_assert_nonnull (strstr (error->message, "memory"));
    g_autoptr (DgImage) again = run_clean (m, &in, want);
    tried++;
  }
  g_test_message ("%s: %u allocation failures, each a clean DG_ERROR_OOM, each followed by an identical run", job->name,
                  tried);
  tiny_job_clear (&in);
  g_assert_cmpuint (vkc_device_validation_messages (dev), ==, 0);
}

/* Device lost at the @at-th submission or wait: the error, the lost engine, a new engine. */
static void
check_device_lost (const Job *job, gboolean at_wait, guint64 at)
{
  TinyJob in;
  tiny_job_init (&in, job->job, 64, 48);
  g_autoptr (DgModel) m = tiny_jobs_open_model (engine, DG_PRECISION_F32, DG_WEIGHTS_RELEASED);
  g_autoptr (DgImage) want = run_clean (m, &in, NULL);
  VkcDevice *dev = dg_engine_device (engine);
  vkc_device_set_faults (dev, &(VkcFaults) { .lose_at_submit = at_wait ? 0 : at, .lose_at_wait = at_wait ? at : 0 });
  g_autoptr (GError) error = NULL;
  g_autoptr (DgImage) out = dg_run (m, &in.request, NULL, NULL, NULL, &error);
  g_assert_null (out);
  g_assert_error (error, DG_ERROR, DG_ERROR_DEVICE);
  g_assert_nonnull (strstr (error->message, "reset"));
  g_assert_true (vkc_device_lost (dev));
  g_clear_error (&error);
  /* A lost device stays lost: the next run says so again, it does not crash or hang. */
  g_autoptr (DgImage) still = dg_run (m, &in.request, NULL, NULL, NULL, &error);
  g_assert_null (still);
  g_assert_error (error, DG_ERROR, DG_ERROR_DEVICE);
  g_clear_error (&error);
  g_clear_pointer (&m, dg_model_free);

  /* Reopen in the same process: a new engine and model run the job as before. */
  g_assert_cmpuint (vkc_device_validation_messages (dev), ==, 0);
  dg_engine_free (engine);
  engine = dg_engine_new (NULL, &error);
  g_assert_no_error (error);
  m = tiny_jobs_open_model (engine, DG_PRECISION_F32, DG_WEIGHTS_RELEASED);
  g_autoptr (DgImage) again = run_clean (m, &in, want);
  tiny_job_clear (&in);
}

static void
test_device_lost (gconstpointer data)
{
  const Job *job = data;
  check_device_lost (job, FALSE, 1); /* the first submission: weights upload */
  check_device_lost (job, FALSE, 7); /* in the middle of the run */
  check_device_lost (job, TRUE, 3);
}

typedef struct {
  GCancellable *cancel;
  guint calls, cancel_at;
} CancelAt;

static void
count_or_cancel (DgStage stage, int step, int n_steps, gpointer user_data)
{
  (void) stage, (void) step, (void) n_steps;
  CancelAt *c = user_data;
  if (++c->calls == c->cancel_at)
    g_cancellable_cancel (c->cancel);
}

static void
test_cancel_everywhere (gconstpointer data)
{
  const Job *job = data;
  g_autoptr (DgModel) m = tiny_jobs_open_model (engine, DG_PRECISION_F32, DG_WEIGHTS_RELEASED);
  TinyJob in;
  tiny_job_init (&in, job->job, 64, 48);
  CancelAt count = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (DgImage) want = dg_run (m, &in.request, count_or_cancel, &count, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (count.calls, >, 3);
  for (guint k = 1; k <= count.calls; k++) {
    CancelAt c = { g_cancellable_new (), 0, k };
    g_autoptr (DgImage) out = dg_run (m, &in.request, count_or_cancel, &c, c.cancel, &error);
    if (out)
      g_error ("%s: cancelled at progress call %u of %u, yet the run returned an image", job->name, k, count.calls);
    g_assert_error (error, DG_ERROR, DG_ERROR_CANCELLED);
    g_clear_error (&error);
    g_object_unref (c.cancel);
  }
  g_test_message ("%s: cancelled at each of %u progress calls", job->name, count.calls);
  g_autoptr (DgImage) again = run_clean (m, &in, want);
  tiny_job_clear (&in);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autoptr (GError) error = NULL;
  engine = dg_engine_new (NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (jobs); i++) {
    g_autofree char *a = g_strdup_printf ("/faults/alloc/%s", jobs[i].name);
    g_autofree char *l = g_strdup_printf ("/faults/device-lost/%s", jobs[i].name);
    g_autofree char *c = g_strdup_printf ("/faults/cancel/%s", jobs[i].name);
    g_test_add_data_func (a, &jobs[i], test_alloc_failures);
    g_test_add_data_func (l, &jobs[i], test_device_lost);
    g_test_add_data_func (c, &jobs[i], test_cancel_everywhere);
  }
  int rc = g_test_run ();
  guint messages = vkc_device_validation_messages (dg_engine_device (engine));
  dg_engine_free (engine);
  g_assert_cmpuint (messages, ==, 0);
  return rc;
}
