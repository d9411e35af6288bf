/* Soak: 200 consecutive jobs in one process on one engine, as a long-lived deepgen-studio (or
 * the service) runs them — generate, edit and inpaint, three sizes, batches of 1 and 2, four
 * weight setups (fp32, bf16, 8-bit, 4-bit VLM) and a cancel now and then. After each job the
 * host RSS and the device memory the pools hold are recorded; once every kind of job has run
 * (the warm-up: pipelines compiled, caches filled) neither may grow by 1 % or more, and every
 * repeat of a request gives the same bytes as its first run. Slow (label `slow`): about 200 tiny
 * runs; the figures it prints are kept in docs/RELIABILITY.md.
 *
 * For bisecting a growth: DEEPGEN_SOAK_REPEAT=1 makes every job the first one (generate 64×48,
 * fp32) — growth then is no cache of distinct shapes; the heap figures printed (glibc's live
 * and free bytes) tell live allocations from fragmentation; DEEPGEN_VK_VALIDATION=0 tells ours
 * from the validation layer's. */
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "deepgen.h"
#include "golden.h"
#include "deepgen_hooks.h"
#include "tiny_jobs.h"
#include "vkc.h"

#define N_JOBS 200
#define N_SIZES 3
#define N_SETUPS 4
/* kind × size × setup × batch: the warm-up runs each of them once. */
#define PERIOD (3 * N_SIZES * N_SETUPS * 2)

static const int sizes[N_SIZES][2] = { { 64, 48 }, { 96, 64 }, { 64, 64 } };
static const DgLoadOptions setups[N_SETUPS] = {
  { DG_PRECISION_F32, DG_WEIGHTS_RELEASED },
  { DG_PRECISION_BF16, DG_WEIGHTS_RELEASED },
  { DG_PRECISION_BF16, DG_WEIGHTS_Q8_0 },
  { DG_PRECISION_BF16, DG_WEIGHTS_Q4_0 },
};

static guint64
rss_bytes (void)
{
  unsigned long size = 0, resident = 0;
  FILE *f = fopen ("/proc/self/statm", "r");
  g_assert_nonnull (f);
  g_assert_cmpint (fscanf (f, "%lu %lu", &size, &resident), ==, 2);
  fclose (f);
  return (guint64) resident * (guint64) sysconf (_SC_PAGESIZE);
}

typedef struct {
  GCancellable *cancel;
  guint calls, cancel_at;
} Cancel;

static void
maybe_cancel (DgStage stage, int step, int n_steps, gpointer user_data)
{
  (void) stage, (void) step, (void) n_steps;
  Cancel *c = user_data;
  if (++c->calls == c->cancel_at)
    g_cancellable_cancel (c->cancel);
}

static void
test_soak (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DgEngine) engine = dg_engine_new (NULL, &error);
  g_assert_no_error (error);
  VkcDevice *dev = dg_engine_device (engine);
  DgModel *models[N_SETUPS];
  for (guint s = 0; s < N_SETUPS; s++)
    models[s] = tiny_jobs_open_model (engine, setups[s].precision, setups[s].weights);
  /* first result of each request, by its key */
  g_autoptr (GHashTable) firsts =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_ptr_array_unref);
  guint64 rss_warm = 0, rss_max = 0, held_warm = 0, held_max = 0;
  guint repeats = 0, cancels = 0;
  gint64 t0 = g_get_monotonic_time ();
  gboolean repeat = g_strcmp0 (g_getenv ("DEEPGEN_SOAK_REPEAT"), "1") == 0;
  for (guint n = 0; n < N_JOBS; n++) {
    guint i = repeat ? 0 : n;
    DgJob kind = (DgJob) (i % 3);
    guint size = i / 3 % N_SIZES, setup = i / (3 * N_SIZES) % N_SETUPS, batch = 1 + i / (PERIOD / 2) % 2;
    TinyJob jobs[2];
    const DgRequest *requests[2];
    for (guint b = 0; b < batch; b++) {
      tiny_job_init (&jobs[b], kind, sizes[size][0], sizes[size][1]);
      jobs[b].request.seed += b;
      requests[b] = &jobs[b].request;
    }
    Cancel c = { g_cancellable_new (), 0, n % 13 == 6 ? 3 : 0 };
    g_autoptr (GPtrArray) out = dg_run_batch (models[setup], requests, batch, maybe_cancel, &c, c.cancel, &error);
    if (c.cancel_at) {
      g_assert_null (out);
      g_assert_error (error, DG_ERROR, DG_ERROR_CANCELLED);
      g_clear_error (&error);
      cancels++;
    } else {
      g_assert_no_error (error);
      g_assert_cmpuint (out->len, ==, batch);
      g_autofree char *key = g_strdup_printf ("%d/%u/%u/%u", kind, size, setup, batch);
      GPtrArray *first = g_hash_table_lookup (firsts, key);
      if (first) {
        for (guint b = 0; b < batch; b++)
          tiny_jobs_assert_same (g_ptr_array_index (out, b), g_ptr_array_index (first, b));
        repeats++;
      } else {
        g_hash_table_insert (firsts, g_steal_pointer (&key), g_ptr_array_ref (out));
      }
    }
    g_object_unref (c.cancel);
    for (guint b = 0; b < batch; b++) tiny_job_clear (&jobs[b]);

    guint64 rss = rss_bytes (), held = vkc_device_reserved (dev, NULL);
    if (n + 1 == PERIOD) {
      rss_warm = rss;
      held_warm = held;
    }
    if (n + 1 >= PERIOD) {
      rss_max = MAX (rss_max, rss);
      held_max = MAX (held_max, held);
    }
    if (n % 25 == 24) {
      struct mallinfo2 heap = mallinfo2 ();
      g_test_message ("job %u: RSS %.1f MiB (heap: %.1f MiB live, %.1f MiB free), device memory held %.1f MiB, "
                      "%.1f s so far",
                      n + 1, rss / 1048576.0, heap.uordblks / 1048576.0, heap.fordblks / 1048576.0, held / 1048576.0,
                      (g_get_monotonic_time () - t0) / 1e6);
    }
  }
  g_test_message ("%u jobs (%u cancelled, %u repeats identical) in %.0f s; after the warm-up of %u jobs: RSS %.2f → "
                  "max %.2f MiB (+%.3f %%), device memory held %.2f → max %.2f MiB",
                  N_JOBS, cancels, repeats, (g_get_monotonic_time () - t0) / 1e6, PERIOD, rss_warm / 1048576.0,
                  rss_max / 1048576.0, 100.0 * ((double) rss_max / rss_warm - 1.0), held_warm / 1048576.0,
                  held_max / 1048576.0);
  g_assert_cmpuint (repeats, >, 50);
  g_assert_cmpfloat ((double) rss_max, <, 1.01 * rss_warm);
  g_assert_cmpfloat ((double) held_max, <=, 1.01 * held_warm);
  for (guint s = 0; s < N_SETUPS; s++) dg_model_free (models[s]);
  g_assert_cmpuint (vkc_device_validation_messages (dev), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/soak/200-jobs", test_soak);
  return g_test_run ();
}
