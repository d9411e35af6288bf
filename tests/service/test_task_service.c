/* The front-ends' runs through the resident service (ui/dg_task.c, dg_task_run_default; DESIGN.md
 * §9) on the tiny model, in a private runtime folder: the first run starts `deepgen serve` itself
 * (DEEPGEN_PROGRAM names a wrapper that adds --idle-exit, so the service leaves when the test is
 * done). Every result is compared byte for byte with dg_task_run in this process.
 *
 *   /task-service/same-results  generate, edit (RGBA, a selection) and inpaint through the service:
 *                               image, mask, place, seed, parameters equal in-process; one live
 *                               preview per DiT step at 1/8 of the working size
 *   /task-service/cancel        Stop during the DiT: DG_ERROR_CANCELLED, the next run is served
 *   /task-service/variations    variations (n_results > 1) as one job of the service: every result
 *                               equal in-process; Stop mid-batch; the next run is served
 *   /task-service/in-process    the setting and DEEPGEN_NO_SERVICE run here; variations too
 *   /task-service/fallback      no service and none can be started: the job runs here, said once
 *   /task-service/latency       figures: dg_task_run_default's call to the first DiT step, warm,
 *                               new prompt and Regenerate (printed; no pass/fail on time)
 *   /task-service/idle-exit     the started service leaves once idle; its log has no validation
 *                               message */
#include <stdio.h>
#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "deepgen.h"
#include "dg_service.h"
#include "dg_task.h"

#define IDLE_EXIT_S 4

static char *tiny;
static char *runtime_dir, *sock, *wrapper;

/* ---- specs and the in-process references ---------------------------------------------------- */

static DgImage *
test_image (int w, int h, int channels)
{
  DgImage *img = dg_image_new (w, h, channels);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      guint8 *p = img->pixels + (gsize) y * img->rowstride + (gsize) x * channels;
      p[0] = (guint8) (x * 255 / (w - 1));
      p[1] = (guint8) (y * 255 / (h - 1));
      p[2] = ((x / 8 + y / 8) & 1) ? 200 : 40;
      if (channels == 4)
        p[3] = (guint8) (128 + x);
    }
  return img;
}

/* an ellipse inside @w × @h, soft at its edge (a feathered GIMP selection) */
static DgMask *
ellipse_mask (int w, int h)
{
  DgMask *m = dg_image_new (w, h, 1);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const double dx = (x - w * 0.5) / (w * 0.3), dy = (y - h * 0.5) / (h * 0.3);
      const double d = dx * dx + dy * dy;
      m->pixels[(gsize) y * m->rowstride + x] = d < 0.8 ? 255 : d < 1.2 ? (guint8) ((1.2 - d) / 0.4 * 255) : 0;
    }
  return m;
}

static void
base_spec (DgTaskSpec *s, DgJob job)
{
  *s = (DgTaskSpec) DG_TASK_SPEC_INIT;
  s->job = job;
  s->prompt = "a red square on a blue field";
  s->steps = 3;
  s->guidance = 2.0;
  s->seed = 42;
  s->max_size = 64;
  s->strength = 1.0;
}

static DgTaskResult *
in_process (const DgTaskSpec *spec)
{
  g_autoptr (GError) error = NULL;
  DgModel *model = dg_task_model_acquire (tiny, &error);
  g_assert_no_error (error);
  DgTaskResult *res = dg_task_run (model, spec, NULL, NULL, NULL, &error);
  dg_task_model_release (model);
  g_assert_no_error (error);
  g_assert_false (res->via_service);
  return res;
}

static void
assert_same_image (const DgImage *a, const DgImage *b)
{
  if (!a || !b) {
    g_assert_true (a == b);
    return;
  }
  g_assert_cmpint (a->width, ==, b->width);
  g_assert_cmpint (a->height, ==, b->height);
  g_assert_cmpint (a->channels, ==, b->channels);
  for (int y = 0; y < a->height; y++)
    g_assert_cmpmem (a->pixels + (gsize) y * a->rowstride, (gsize) a->width * a->channels,
                     b->pixels + (gsize) y * b->rowstride, (gsize) b->width * b->channels);
}

static void
assert_same_result (const DgTaskResult *a, const DgTaskResult *b)
{
  assert_same_image (a->image, b->image);
  assert_same_image (a->mask, b->mask);
  g_assert_cmpint (a->x, ==, b->x);
  g_assert_cmpint (a->y, ==, b->y);
  g_assert_cmpuint (a->seed, ==, b->seed);
  g_assert_cmpint (a->work_width, ==, b->work_width);
  g_assert_cmpint (a->work_height, ==, b->work_height);
  g_assert_cmpint (a->weights, ==, b->weights);
  g_assert_cmpstr (a->params, ==, b->params);
}

/* ---- runs through dg_task_run_default --------------------------------------------------------- */

typedef struct {
  int n_previews, last_step, n_steps, preview_width, preview_height;
  gboolean steps_in_order;
  GCancellable *cancel_at_denoise; /* cancelled at the first DiT step when set */
  gint64 first_denoise_us;         /* monotonic time of the first DiT step's progress */
} Seen;

static void
on_progress (DgStage stage, int step, int n_steps, gpointer user_data)
{
  Seen *seen = user_data;
  if (stage == DG_STAGE_DENOISE && !seen->first_denoise_us)
    seen->first_denoise_us = g_get_monotonic_time ();
  if (stage == DG_STAGE_DENOISE && seen->cancel_at_denoise)
    g_cancellable_cancel (seen->cancel_at_denoise);
}

static void
on_preview (const DgImage *rgb, int step, int n_steps, gpointer user_data)
{
  Seen *seen = user_data;
  g_assert_cmpint (rgb->channels, ==, 3);
  if (step != seen->last_step + 1)
    seen->steps_in_order = FALSE;
  seen->last_step = step;
  seen->n_steps = n_steps;
  seen->n_previews++;
  seen->preview_width = rgb->width, seen->preview_height = rgb->height;
}

static DgTaskResult *
run_default (const DgTaskSpec *spec, gboolean in_process_setting, Seen *seen, char **notice, GCancellable *cancel,
             GError **error)
{
  DgTaskRunOptions o = DG_TASK_RUN_OPTIONS_INIT;
  o.model_folder = tiny;
  o.in_process = in_process_setting;
  o.progress = on_progress, o.preview = on_preview, o.user_data = seen;
  DgTaskResult *res = dg_task_run_default (&o, spec, cancel, error);
  if (notice)
    *notice = o.notice;
  else
    g_assert_null (o.notice);
  return res;
}

static void
check_same (const DgTaskSpec *spec)
{
  g_autoptr (DgTaskResult) want = in_process (spec);
  Seen seen = { .steps_in_order = TRUE };
  g_autoptr (GError) error = NULL;
  g_autoptr (DgTaskResult) got = run_default (spec, FALSE, &seen, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (got->via_service);
  assert_same_result (got, want);
  /* one live preview per DiT step that runs (a strength below 1 skips the first ones), at the
   * latent's size */
  g_assert_cmpint (seen.n_previews, ==, seen.n_steps);
  g_assert_true (seen.steps_in_order);
  if (spec->job == DG_JOB_GENERATE || spec->strength >= 1.0)
    g_assert_cmpint (seen.n_steps, ==, spec->steps);
  else
    g_assert_cmpint (seen.n_steps, <, spec->steps);
  g_assert_cmpint (seen.preview_width, ==, want->work_width / 8);
  g_assert_cmpint (seen.preview_height, ==, want->work_height / 8);
}

static void
test_same_results (void)
{
  g_assert_false (g_file_test (sock, G_FILE_TEST_EXISTS)); /* the first run starts the service */
  DgTaskSpec s;
  base_spec (&s, DG_JOB_GENERATE);
  s.canvas_width = 96, s.canvas_height = 64;
  check_same (&s);
  g_assert_true (g_file_test (sock, G_FILE_TEST_EXISTS));

  g_autoptr (DgImage) rgba = test_image (80, 72, 4);
  g_autoptr (DgMask) ellipse = ellipse_mask (80, 72);
  base_spec (&s, DG_JOB_EDIT);
  s.source = rgba;
  s.selection = ellipse;
  s.strength = 0.6;
  check_same (&s);

  g_autoptr (DgImage) rgb = test_image (96, 64, 3);
  g_autoptr (DgMask) ellipse2 = ellipse_mask (96, 64);
  base_spec (&s, DG_JOB_INPAINT);
  s.source = rgb;
  s.selection = ellipse2;
  check_same (&s);
}

static void
test_cancel (void)
{
  DgTaskSpec s;
  base_spec (&s, DG_JOB_GENERATE);
  s.canvas_width = s.canvas_height = 64;
  s.steps = 200;
  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  Seen seen = { .steps_in_order = TRUE, .cancel_at_denoise = cancel };
  g_autoptr (GError) error = NULL;
  g_autoptr (DgTaskResult) res = run_default (&s, FALSE, &seen, NULL, cancel, &error);
  g_assert_null (res);
  g_assert_error (error, DG_ERROR, DG_ERROR_CANCELLED);
  g_assert_cmpint (seen.n_previews, <, s.steps);
  /* the service goes on with the next job */
  base_spec (&s, DG_JOB_GENERATE);
  s.canvas_width = s.canvas_height = 64;
  check_same (&s);
}

/* Variations through the service: the same batch as in-process, so every result the same, byte
 * for byte (each with its own seed and parameters); previews of the first. */
static void
check_same_variations (const DgTaskSpec *spec)
{
  g_autoptr (DgTaskResult) want = in_process (spec);
  Seen seen = { .steps_in_order = TRUE };
  g_autoptr (GError) error = NULL;
  g_autoptr (DgTaskResult) got = run_default (spec, FALSE, &seen, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (got->via_service);
  assert_same_result (got, want);
  g_assert_nonnull (got->variations);
  g_assert_cmpuint (got->variations->len, ==, (guint) spec->n_results - 1);
  g_assert_cmpuint (want->variations->len, ==, got->variations->len);
  for (guint i = 0; i < got->variations->len; i++) {
    const DgTaskResult *g = g_ptr_array_index (got->variations, i), *w = g_ptr_array_index (want->variations, i);
    g_assert_cmpuint (g->seed, ==, spec->seed + i + 1);
    assert_same_result (g, w);
  }
  g_assert_cmpint (seen.n_previews, ==, seen.n_steps);
  g_assert_true (seen.steps_in_order);
}

static void
test_variations (void)
{
  DgTaskSpec s;
  base_spec (&s, DG_JOB_GENERATE);
  s.canvas_width = 96, s.canvas_height = 64;
  s.n_results = 3;
  check_same_variations (&s);

  g_autoptr (DgImage) rgb = test_image (96, 64, 3);
  g_autoptr (DgMask) ellipse = ellipse_mask (96, 64);
  base_spec (&s, DG_JOB_INPAINT);
  s.source = rgb;
  s.selection = ellipse;
  s.n_results = 2;
  check_same_variations (&s);

  /* Stop mid-batch: nothing comes back, and the service goes on with the next job */
  base_spec (&s, DG_JOB_GENERATE);
  s.canvas_width = s.canvas_height = 64;
  s.steps = 200;
  s.n_results = DG_TASK_MAX_RESULTS;
  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  Seen seen = { .steps_in_order = TRUE, .cancel_at_denoise = cancel };
  g_autoptr (GError) error = NULL;
  g_autoptr (DgTaskResult) res = run_default (&s, FALSE, &seen, NULL, cancel, &error);
  g_assert_null (res);
  g_assert_error (error, DG_ERROR, DG_ERROR_CANCELLED);
  g_assert_cmpint (seen.n_previews, <, s.steps);
  base_spec (&s, DG_JOB_GENERATE);
  s.canvas_width = s.canvas_height = 64;
  s.n_results = 2;
  check_same_variations (&s);
}

static void
test_in_process (void)
{
  DgTaskSpec s;
  base_spec (&s, DG_JOB_GENERATE);
  s.canvas_width = s.canvas_height = 64;
  g_autoptr (DgTaskResult) want = in_process (&s);
  g_autoptr (GError) error = NULL;
  Seen seen = { 0 };
  /* the setting */
  g_autoptr (DgTaskResult) a = run_default (&s, TRUE, &seen, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (a->via_service);
  assert_same_result (a, want);
  /* the environment */
  g_setenv ("DEEPGEN_NO_SERVICE", "1", TRUE);
  g_autoptr (DgTaskResult) b = run_default (&s, FALSE, &seen, NULL, NULL, &error);
  g_unsetenv ("DEEPGEN_NO_SERVICE");
  g_assert_no_error (error);
  g_assert_false (b->via_service);
  assert_same_result (b, want);
  g_assert_cmpint (seen.n_previews, ==, 0); /* in-process runs have none */
  /* variations: one batch, in this process */
  s.n_results = 2;
  g_autoptr (DgTaskResult) want2 = in_process (&s);
  g_setenv ("DEEPGEN_NO_SERVICE", "1", TRUE);
  g_autoptr (DgTaskResult) c = run_default (&s, FALSE, &seen, NULL, NULL, &error);
  g_unsetenv ("DEEPGEN_NO_SERVICE");
  g_assert_no_error (error);
  g_assert_false (c->via_service);
  assert_same_result (c, want2);
  g_assert_cmpuint (c->variations->len, ==, 1);
  assert_same_result (g_ptr_array_index (c->variations, 0), g_ptr_array_index (want2->variations, 0));
}

static void
test_fallback (void)
{
  /* another runtime folder, with no service, and a deepgen program that does not exist */
  g_autofree char *saved_runtime = g_strdup (g_getenv ("XDG_RUNTIME_DIR"));
  g_autofree char *saved_program = g_strdup (g_getenv ("DEEPGEN_PROGRAM"));
  g_autofree char *other = g_dir_make_tmp ("dg-task-fallback-XXXXXX", NULL);
  g_setenv ("XDG_RUNTIME_DIR", other, TRUE);
  g_autofree char *missing = g_build_filename (other, "no-deepgen", NULL);
  g_setenv ("DEEPGEN_PROGRAM", missing, TRUE);

  DgTaskSpec s;
  base_spec (&s, DG_JOB_GENERATE);
  s.canvas_width = s.canvas_height = 64;
  g_autoptr (DgTaskResult) want = in_process (&s);
  Seen seen = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *notice = NULL;
  g_autoptr (DgTaskResult) a = run_default (&s, FALSE, &seen, &notice, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (a->via_service);
  assert_same_result (a, want);
  g_assert_nonnull (notice);
  g_test_message ("fallback notice: %s", notice);
  g_assert_nonnull (strstr (notice, "in this process instead"));
  /* said once */
  g_autoptr (DgTaskResult) b = run_default (&s, FALSE, &seen, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (b->via_service);
  assert_same_result (b, want);

  g_setenv ("XDG_RUNTIME_DIR", saved_runtime, TRUE);
  g_setenv ("DEEPGEN_PROGRAM", saved_program, TRUE);
  g_autofree char *dir = g_build_filename (other, "deepgen", NULL);
  g_rmdir (dir);
  g_rmdir (other);
}

/* seconds from the call to the first DiT step of a generate through the (running) service */
static double
first_step_seconds (const char *prompt, gint64 seed)
{
  DgTaskSpec s;
  base_spec (&s, DG_JOB_GENERATE);
  s.canvas_width = s.canvas_height = 64;
  s.prompt = prompt;
  s.seed = seed;
  s.steps = 2;
  Seen seen = { .steps_in_order = TRUE };
  g_autoptr (GError) error = NULL;
  const gint64 t0 = g_get_monotonic_time ();
  g_autoptr (DgTaskResult) res = run_default (&s, FALSE, &seen, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (res->via_service);
  return (seen.first_denoise_us - t0) / 1e6;
}

static void
test_latency (void)
{
  for (int i = 0; i < 2; i++) {
    g_autofree char *prompt = g_strdup_printf ("a lighthouse at dusk, take %d", i);
    const double fresh = first_step_seconds (prompt, 1);
    const double again = first_step_seconds (prompt, 2);
    printf ("dg_task_run_default → first DiT step, warm service: new prompt %.3f s, same prompt new seed %.3f s\n",
            fresh, again);
  }
}

static void
test_idle_exit (void)
{
  /* the service the first test started leaves on its own, IDLE_EXIT_S after its last client */
  for (int i = 0; i < 40 * IDLE_EXIT_S && g_file_test (sock, G_FILE_TEST_EXISTS); i++) g_usleep (100 * 1000);
  g_assert_false (g_file_test (sock, G_FILE_TEST_EXISTS));
  g_autofree char *log = g_build_filename (runtime_dir, "deepgen", "service.log", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  if (strstr (text, "vkc: validation"))
    g_error ("validation messages in the service's log:\n%s", text);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tiny = g_build_filename (DEEPGEN_TEST_DATA_DIR, "tiny-deepgen", NULL);
  /* this test's own service: a private runtime folder, started by the first run */
  runtime_dir = g_dir_make_tmp ("dg-task-service-XXXXXX", NULL);
  g_setenv ("XDG_RUNTIME_DIR", runtime_dir, TRUE);
  g_unsetenv ("DEEPGEN_NO_SERVICE");
  g_autofree char *sock_name = dg_service_socket_name ();
  sock = g_build_filename (runtime_dir, "deepgen", sock_name, NULL);
  wrapper = g_build_filename (runtime_dir, "deepgen-idle", NULL);
  g_autofree char *script = g_strdup_printf ("#!/bin/sh\nexec '%s' \"$@\" --idle-exit %d\n", DEEPGEN_CLI, IDLE_EXIT_S);
  g_assert_true (g_file_set_contents (wrapper, script, -1, NULL));
  g_chmod (wrapper, 0700);
  g_setenv ("DEEPGEN_PROGRAM", wrapper, TRUE);

  g_test_add_func ("/task-service/same-results", test_same_results);
  g_test_add_func ("/task-service/cancel", test_cancel);
  g_test_add_func ("/task-service/variations", test_variations);
  g_test_add_func ("/task-service/in-process", test_in_process);
  g_test_add_func ("/task-service/fallback", test_fallback);
  g_test_add_func ("/task-service/latency", test_latency);
  g_test_add_func ("/task-service/idle-exit", test_idle_exit);
  const int rc = g_test_run ();
  dg_task_model_unload ();
  g_autofree char *dir = g_build_filename (runtime_dir, "deepgen", NULL);
  g_autofree char *log = g_build_filename (dir, "service.log", NULL);
  g_autofree char *lock = g_strconcat (sock, ".lock", NULL);
  g_unlink (log);
  g_unlink (lock);
  g_rmdir (dir);
  g_unlink (wrapper);
  g_rmdir (runtime_dir);
  return rc;
}
