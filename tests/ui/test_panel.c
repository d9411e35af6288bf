/* The DeepGen panel in a real window (run under Xvfb by tests/ui/CMakeLists.txt):
 *
 *   test-panel run MODEL OUTDIR     fill the prompt, run on the tiny model, wait for the preview;
 *                                   check the result's place and size, Reuse last, a wrong model
 *                                   folder (message in place), an empty prompt; screenshots
 *   test-panel describe MODEL OUTDIR   Describe on the tiny model: the prompt field gets what
 *                                   dg_describe writes for the selection's box; Stop, a wrong
 *                                   model folder, no source; a screenshot
 *   test-panel variations MODEL OUTDIR   three results side by side: the picked ones (not the
 *                                   first) are what Apply hands over; none picked, no Apply; a screenshot
 *   test-panel rerun MODEL OUTDIR           "Load its settings" with a layer's stored parameters: the fields
 *                                   take them; a fixed job stays; bad text is a warning; a screenshot
 *   test-panel references MODEL OUTDIR   other layers as references: the ticked ones are read and
 *                                   change the result (same size); a layer that cannot be read
 *                                   stops the run with its message; generate takes none; a screenshot
 *   test-panel references-remove   removable references (files): a row's remove button, the
 *                                   items forgotten when removed and when the panel goes
 *   test-panel german OUTDIR        with LANGUAGE=de: the panel and a message are German
 *   test-panel service MODEL DEEPGEN OUTDIR   through the resident service, which the panel starts
 *                                   (DEEPGEN, the deepgen program, in a private runtime folder):
 *                                   live previews "Step n of N" while it runs (screenshot), Stop
 *                                   keeps nothing, and a finished run equals in-process byte for byte
 *   test-panel download MODEL OUTDIR   (with libsoup 3) the model download against a test Hub
 *                                   on 127.0.0.1 serving MODEL: the offer for an empty folder,
 *                                   progress, Pause, Resume, the run afterwards, a 401; screenshots
 */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>

#include "dg_autopilot.h"
#include "dg_gettext.h"
#include "dg_panel.h"
#include "dg_panel_preview.h"
#include "dg_service.h"
#include "dg_task.h"
#ifdef DEEPGEN_HAVE_DOWNLOAD
#include "dg_download.h"
#include "hub_server.h"
#endif

static int failures;

#define CHECK(cond, ...)                                    \
  do {                                                      \
    if (!(cond)) {                                          \
      fprintf (stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf (stderr, __VA_ARGS__);                        \
      fputc ('\n', stderr);                                 \
      failures++;                                           \
    }                                                       \
  } while (0)

/* ---- a test image and selection --------------------------------------------------------- */

static DgImage *
test_image (int w, int h)
{
  DgImage *img = dg_image_new (w, h, 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      guint8 *p = img->pixels + (gsize) y * img->rowstride + x * 3;
      p[0] = (guint8) (x * 255 / (w - 1));
      p[1] = (guint8) (y * 255 / (h - 1));
      p[2] = ((x / 16 + y / 16) & 1) ? 200 : 40;
    }
  return img;
}

static DgMask *
rect_mask (int w, int h, int x0, int y0, int rw, int rh)
{
  DgMask *m = dg_image_new (w, h, 1);
  for (int y = y0; y < y0 + rh; y++) memset (m->pixels + (gsize) y * m->rowstride + x0, 255, rw);
  return m;
}

/* ---- waiting for the panel -------------------------------------------------------------- */

typedef struct {
  gboolean done, success;
} Wait;

static void
on_finished (DgPanel *panel, gboolean success, Wait *w)
{
  w->done = TRUE;
  w->success = success;
}

static gboolean
run_and_wait (DgPanel *panel, int timeout_s)
{
  Wait w = { 0 };
  const gulong id = g_signal_connect (panel, "finished", G_CALLBACK (on_finished), &w);
  dg_panel_run (panel);
  const gint64 end = g_get_monotonic_time () + (gint64) timeout_s * G_USEC_PER_SEC;
  while (!w.done && g_get_monotonic_time () < end) g_main_context_iteration (NULL, TRUE);
  g_signal_handler_disconnect (panel, id);
  CHECK (w.done, "the run did not finish within %d s", timeout_s);
  return w.success;
}

static void
on_apply (DgPanel *panel, const DgTaskResult *result, const DgTaskResult **out)
{
  *out = result;
}

/* lets the window draw itself before a screenshot */
static void
settle (int ms)
{
  const gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;
  while (g_get_monotonic_time () < end) {
    while (g_main_context_pending (NULL)) g_main_context_iteration (NULL, FALSE);
    g_usleep (20000);
  }
}

static void
shot (GtkWidget *window, const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  settle (400);
  CHECK (dg_screenshot_save (GTK_WINDOW (window), FALSE, path, &error), "screenshot %s: %s", path,
         error ? error->message : "");
  printf ("screenshot: %s\n", path);
}

static GtkWidget *
window_with_panel (DgJob job, GtkWidget **panel_out)
{
  GtkWidget *window = gtk_window_new (GTK_WINDOW_TOPLEVEL);
  gtk_window_set_title (GTK_WINDOW (window), "DeepGen");
  gtk_window_set_default_size (GTK_WINDOW (window), 460, -1);
  GtkWidget *panel = dg_panel_new (job);
  gtk_container_add (GTK_CONTAINER (window), panel);
  gtk_widget_show_all (window);
  *panel_out = panel;
  settle (200);
  return window;
}

/* ---- the cases -------------------------------------------------------------------------- */

static GtkWidget *label_with_text (GtkWidget *w, const char *text);

static int
test_run (const char *model, const char *out)
{
  GtkWidget *panel;
  GtkWidget *window = window_with_panel (DG_JOB_INPAINT, &panel);
  DgPanel *p = DG_PANEL (panel);
  enum { W = 160, H = 120, RX = 24, RY = 40, RW = 72, RH = 48 };
  dg_panel_set_source (p, test_image (W, H), rect_mask (W, H, RX, RY, RW, RH), 0, 0);
  g_object_set (panel, "model-folder", model, "steps", 2, "max-size", 128, NULL);
  dg_panel_set_prompt (p, "replace the square with a red balloon");

  /* the fit indicator: the tiny model fits; DeepGen 1.0's configs (the full model) do not fit
   * lavapipe's 2 GiB at 2048² even with the smallest weights, and the text follows at once */
  const gint64 fit_end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (!g_str_has_prefix (dg_panel_get_fit_text (p), "Fits this GPU") && g_get_monotonic_time () < fit_end)
    g_main_context_iteration (NULL, TRUE);
  CHECK (g_str_has_prefix (dg_panel_get_fit_text (p), "Fits this GPU: needs"), "fit indicator: \"%s\"",
         dg_panel_get_fit_text (p));
  printf ("fit indicator (tiny model): %s\n", dg_panel_get_fit_text (p));
  g_autofree char *model_dir = g_path_get_dirname (model);
  g_autofree char *full = g_build_filename (model_dir, "deepgen-1.0-configs", NULL);
  g_object_set (panel, "model-folder", full, "max-size", 2048, NULL);
  CHECK (g_str_has_prefix (dg_panel_get_fit_text (p), "Too large for this GPU"), "fit indicator (full model): \"%s\"",
         dg_panel_get_fit_text (p));
  printf ("fit indicator (DeepGen 1.0 at 2048): %s\n", dg_panel_get_fit_text (p));
  g_object_set (panel, "model-folder", model, "max-size", 128, NULL);
  CHECK (g_str_has_prefix (dg_panel_get_fit_text (p), "Fits this GPU"), "fit indicator back: \"%s\"",
         dg_panel_get_fit_text (p));

  const gboolean ok = run_and_wait (p, 300);
  CHECK (ok, "the run failed: %s", dg_panel_get_message (p) ? dg_panel_get_message (p) : "?");
  const DgTaskResult *r = dg_panel_get_result (p);
  CHECK (r != NULL, "no preview after a successful run");
  if (r) {
    CHECK (r->x == RX && r->y == RY && r->image->width == RW && r->image->height == RH,
           "inpaint result %dx%d at (%d, %d), expected the selection %dx%d at (%d, %d)", r->image->width,
           r->image->height, r->x, r->y, RW, RH, RX, RY);
    CHECK (r->mask != NULL, "the result has no mask");
  }
  shot (window, out, "panel.png");

  /* Reuse last: the seed field takes the last seed and Random is switched off */
  const guint64 last = r ? r->seed : 0;
  gint64 seed = -2;
  g_object_get (panel, "seed", &seed, NULL);
  CHECK (seed == -1, "the seed should still be random, is %" G_GINT64_FORMAT, seed);
  g_object_set (panel, "seed", (gint64) last, NULL);
  g_object_get (panel, "seed", &seed, NULL);
  CHECK (seed == (gint64) last, "seed %" G_GINT64_FORMAT " after setting %" G_GUINT64_FORMAT, seed, last);

  /* Apply hands the result over */
  const DgTaskResult *applied = NULL;
  g_signal_connect (panel, "apply", G_CALLBACK (on_apply), &applied);
  dg_panel_apply (p);
  CHECK (applied == r && applied != NULL, "\"apply\" did not carry the previewed result");

  /* a wrong model folder: the message is shown in place, and names the folder */
  g_autofree char *bad = g_build_filename (out, "no-such-model", NULL);
  g_object_set (panel, "model-folder", bad, NULL);
  CHECK (!run_and_wait (p, 60), "a run with a missing model folder succeeded");
  const char *msg = dg_panel_get_message (p);
  CHECK (msg && strstr (msg, "no-such-model") && strstr (msg, "does not exist"), "message: %s", msg ? msg : "(none)");
  /* and the user can read it: a label with the text, visible and on screen */
  GtkWidget *shown = msg ? label_with_text (panel, msg) : NULL;
  CHECK (shown && gtk_widget_is_visible (shown) && gtk_widget_get_mapped (shown),
         "the message is not on screen (label %s)", shown ? "hidden" : "missing");
  shot (window, out, "panel-error.png");

  /* an empty prompt is refused at once, without a thread */
  dg_panel_set_prompt (p, "   ");
  CHECK (!run_and_wait (p, 5), "an empty prompt ran");
  msg = dg_panel_get_message (p);
  CHECK (msg && strstr (msg, "empty"), "message for an empty prompt: %s", msg ? msg : "(none)");

  gtk_widget_destroy (window);
  return failures ? 1 : 0;
}

/* Waits until Describe is done; FALSE if it did not end within @timeout_s. */
static gboolean
wait_describe (DgPanel *panel, int timeout_s)
{
  const gint64 end = g_get_monotonic_time () + (gint64) timeout_s * G_USEC_PER_SEC;
  while (dg_panel_is_describing (panel) && g_get_monotonic_time () < end) g_main_context_iteration (NULL, TRUE);
  CHECK (!dg_panel_is_describing (panel), "Describe did not end within %d s", timeout_s);
  return !dg_panel_is_describing (panel);
}

/* Presses Describe (dg_panel_describe) and waits until it is done. */
static gboolean
describe_and_wait (DgPanel *panel, int timeout_s)
{
  dg_panel_describe (panel);
  return wait_describe (panel, timeout_s);
}

static GtkWidget *button_with_label (GtkWidget *w, const char *label);

static int
test_describe (const char *model, const char *out)
{
  GtkWidget *panel;
  GtkWidget *window = window_with_panel (DG_JOB_EDIT, &panel);
  DgPanel *p = DG_PANEL (panel);
  GtkWidget *button = button_with_label (panel, "Des_cribe");
  CHECK (button && gtk_widget_get_mapped (button), "no Describe button on screen");

  /* no source (generate on an empty canvas): nothing to describe */
  dg_panel_set_source (p, NULL, NULL, 96, 64);
  CHECK (button && !gtk_widget_get_sensitive (button), "Describe is sensitive without a source");
  dg_panel_describe (p);
  CHECK (!dg_panel_is_describing (p), "Describe started without a source");

  enum { W = 160, H = 120, RX = 24, RY = 40, RW = 72, RH = 48 };
  DgImage *source = test_image (W, H);
  g_autoptr (DgImage) box = dg_image_crop (source, RX, RY, RW, RH);
  dg_panel_set_source (p, source, rect_mask (W, H, RX, RY, RW, RH), 0, 0);
  CHECK (button && gtk_widget_get_sensitive (button), "Describe is not sensitive with a source");

  /* a wrong model folder: the message in place, the prompt kept */
  g_autofree char *bad = g_build_filename (out, "no-such-model", NULL);
  g_object_set (panel, "model-folder", bad, NULL);
  dg_panel_set_prompt (p, "keep me");
  describe_and_wait (p, 60);
  const char *msg = dg_panel_get_message (p);
  CHECK (msg && strstr (msg, "no-such-model") && strstr (msg, "does not exist"), "message: %s", msg ? msg : "(none)");
  g_autofree char *kept = dg_panel_dup_prompt (p);
  CHECK (g_str_equal (kept, "keep me"), "a failed Describe changed the prompt to \"%s\"", kept);

  /* Stop at once: cancelled, the prompt kept, and the panel runs again afterwards */
  g_object_set (panel, "model-folder", model, NULL);
  dg_panel_describe (p);
  CHECK (dg_panel_is_describing (p), "Describe did not start");
  CHECK (!gtk_widget_get_sensitive (button), "Describe is sensitive while describing");
  dg_panel_cancel_describe (p);
  wait_describe (p, 60);
  msg = dg_panel_get_message (p);
  CHECK (msg && g_str_equal (msg, "Cancelled."), "message after Stop: %s", msg ? msg : "(none)");
  g_free (kept);
  kept = dg_panel_dup_prompt (p);
  CHECK (g_str_equal (kept, "keep me"), "a cancelled Describe changed the prompt to \"%s\"", kept);

  /* the description of the selection's box, as dg_describe writes it for those pixels (its
   * golden test against transformers is tests/model; here: the panel describes the right
   * pixels with the model's defaults and puts the whole text into the field) */
  CHECK (describe_and_wait (p, 300), "Describe did not finish");
  CHECK (dg_panel_get_message (p) == NULL, "message after Describe: %s", dg_panel_get_message (p));
  g_autofree char *described = dg_panel_dup_prompt (p);
  g_autoptr (GError) error = NULL;
  DgModel *m = dg_task_model_acquire (model, &error);
  CHECK (m != NULL, "cannot open the model: %s", error ? error->message : "");
  g_autofree char *expected = m ? dg_describe (m, box, NULL, 0, NULL, NULL, NULL, &error) : NULL;
  if (m)
    dg_task_model_release (m);
  CHECK (expected != NULL, "dg_describe: %s", error ? error->message : "");
  if (expected)
    g_strstrip (expected);
  CHECK (expected && *expected && g_str_equal (described, expected), "the prompt field holds \"%s\", expected \"%s\"",
         described, expected ? expected : "");
  printf ("described: %s\n", described);
  CHECK (gtk_widget_get_sensitive (button), "Describe is not sensitive after describing");
  shot (window, out, "panel-describe.png");

  /* a run while describing waits: Run is refused until Describe ends */
  dg_panel_describe (p);
  dg_panel_run (p);
  CHECK (!dg_panel_is_busy (p), "a run started while describing");
  dg_panel_cancel_describe (p);
  wait_describe (p, 60);

  /* the window closed while describing: the description stops and its end touches nothing */
  g_object_ref (panel);
  dg_panel_describe (p);
  CHECK (dg_panel_is_describing (p), "Describe did not start again");
  gtk_widget_destroy (window);
  CHECK (!dg_panel_is_describing (p), "still describing after the window closed");
  /* the worker ends and its completion runs: then the test holds the last reference. Polled, not
   * a blocking iteration: the task's last reference (its data's panel reference with it) may be
   * dropped on the worker thread after the completion ran, which wakes no main loop. */
  const gint64 end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (G_OBJECT (panel)->ref_count > 1 && g_get_monotonic_time () < end)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (10 * 1000);
  CHECK (G_OBJECT (panel)->ref_count == 1, "the description did not end after the window closed");
  g_object_unref (panel);
  dg_task_model_unload ();
  return failures ? 1 : 0;
}

static gboolean
same_pixels (const DgImage *a, const DgImage *b)
{
  if (a->width != b->width || a->height != b->height || a->channels != b->channels)
    return FALSE;
  for (int y = 0; y < a->height; y++)
    if (memcmp (a->pixels + (gsize) y * a->rowstride, b->pixels + (gsize) y * b->rowstride,
                (gsize) a->width * a->channels) != 0)
      return FALSE;
  return TRUE;
}

static int
test_variations (const char *model, const char *out)
{
  GtkWidget *panel;
  GtkWidget *window = window_with_panel (DG_JOB_GENERATE, &panel);
  DgPanel *p = DG_PANEL (panel);
  dg_panel_set_source (p, NULL, NULL, 96, 64);
  g_object_set (panel, "model-folder", model, "steps", 2, "max-size", 64, "n-results", 3, "seed", (gint64) 7, NULL);
  dg_panel_set_prompt (p, "a lighthouse at dusk");
  CHECK (run_and_wait (p, 300), "the run failed: %s", dg_panel_get_message (p) ? dg_panel_get_message (p) : "?");
  const DgTaskResult *r = dg_panel_get_result (p);
  CHECK (r && r->variations && r->variations->len == 2, "not three results");
  if (!r || !r->variations || r->variations->len != 2) {
    gtk_widget_destroy (window);
    return 1;
  }
  /* the results as the run made them: seeds 7, 8, 9 */
  g_autoptr (DgImage) first = dg_image_copy (r->image);
  const DgTaskResult *r1 = g_ptr_array_index (r->variations, 0), *r2 = g_ptr_array_index (r->variations, 1);
  g_autoptr (DgImage) second = dg_image_copy (r1->image);
  g_autoptr (DgImage) third = dg_image_copy (r2->image);
  CHECK (r->seed == 7 && r1->seed == 8 && r2->seed == 9, "seeds %u %u %u", (guint) r->seed, (guint) r1->seed,
         (guint) r2->seed);

  /* side by side, all picked, on screen */
  CHECK (dg_panel_count_picked (p) == 3, "%u picked at first, expected all 3", dg_panel_count_picked (p));
  for (guint i = 0; i < 3; i++) CHECK (dg_panel_get_picked (p, i), "result %u not picked at first", i);
  GtkWidget *label = label_with_text (panel, "Pick the results to keep (3 of 3): Apply adds each picked one.");
  CHECK (label && gtk_widget_get_mapped (label), "the variations' strip is not on screen");
  GtkWidget *apply = button_with_label (panel, "_Apply");

  /* leave the first out: Apply hands over the second (the head) and the third */
  dg_panel_set_picked (p, 0, FALSE);
  CHECK (dg_panel_count_picked (p) == 2 && !dg_panel_get_picked (p, 0), "unpicking the first did not take");
  CHECK (label_with_text (panel, "Pick the results to keep (2 of 3): Apply adds each picked one.") != NULL,
         "the strip's label does not follow the picks");
  shot (window, out, "panel-variations.png");
  const DgTaskResult *applied = NULL;
  g_signal_connect (panel, "apply", G_CALLBACK (on_apply), &applied);
  dg_panel_apply (p);
  CHECK (applied != NULL, "Apply handed nothing over");
  if (applied) {
    CHECK (applied->seed == 8 && same_pixels (applied->image, second), "Apply's first result is not the second");
    CHECK (applied->variations && applied->variations->len == 1, "Apply's result has %u variations, expected 1",
           applied->variations ? applied->variations->len : 0);
    if (applied->variations && applied->variations->len == 1) {
      const DgTaskResult *v = g_ptr_array_index (applied->variations, 0);
      CHECK (v->seed == 9 && same_pixels (v->image, third), "Apply's variation is not the third");
    }
    CHECK (!same_pixels (applied->image, first), "the first result went along");
  }
  /* the strip now shows what was handed over: two, both picked */
  CHECK (dg_panel_count_picked (p) == 2 && dg_panel_get_picked (p, 1) && !dg_panel_get_picked (p, 2),
         "after Apply the strip does not show the two applied results");

  /* none picked: Apply is insensitive and does nothing */
  dg_panel_set_picked (p, 0, FALSE);
  dg_panel_set_picked (p, 1, FALSE);
  CHECK (dg_panel_count_picked (p) == 0, "unpicking both did not take");
  CHECK (apply && !gtk_widget_get_sensitive (apply), "Apply is sensitive with nothing picked");
  applied = NULL;
  dg_panel_apply (p);
  CHECK (applied == NULL, "Apply handed a result over with nothing picked");

  gtk_widget_destroy (window);
  dg_task_model_unload ();
  return failures ? 1 : 0;
}

static int
test_rerun (const char *model, const char *out)
{
  GtkWidget *panel;
  GtkWidget *window = window_with_panel (DG_JOB_EDIT, &panel);
  DgPanel *p = DG_PANEL (panel);
  dg_panel_set_source (p, test_image (160, 120), NULL, 0, 0);
  g_object_set (panel, "model-folder", model, NULL);
  GtkWidget *button = button_with_label (panel, "L_oad its settings");
  CHECK (button != NULL, "no \"Load its settings\" button");
  CHECK (!dg_panel_offers_layer_params (p) && button && !gtk_widget_is_visible (button),
         "the layer's settings are offered for a layer without them");

  /* the parameters as a run stores them (model/io/job_params.c writes the text) */
  DgRequest req = DG_REQUEST_INIT;
  req.job = DG_JOB_GENERATE;
  req.prompt = "a red kite over the dunes";
  req.negative_prompt = "blurry";
  req.seed = 1234;
  req.steps = 7;
  req.guidance = 5.5;
  req.strength = 1.0;
  req.width = 384;
  req.height = 256;
  g_autoptr (DgJobParams) jp = dg_job_params_new (&req, DG_PRECISION_BF16, DG_WEIGHTS_RELEASED);
  g_autofree char *text = dg_job_params_to_string (jp);
  dg_panel_set_layer_params (p, text);
  CHECK (dg_panel_offers_layer_params (p) && button && gtk_widget_get_mapped (button),
         "the layer's settings are not offered on screen");

  /* the job chooser is shown: the job comes along too */
  dg_panel_load_layer_params (p);
  int job = -1, steps = 0, n = 0, max_size = 0;
  double guidance = 0;
  gint64 seed = 0;
  g_autofree char *prompt = NULL, *negative = NULL, *policy = NULL;
  g_object_get (panel, "job", &job, "steps", &steps, "guidance", &guidance, "seed", &seed, "prompt", &prompt,
                "negative-prompt", &negative, "n-results", &n, "max-size", &max_size, "size-policy", &policy, NULL);
  CHECK (job == DG_JOB_GENERATE, "job %d, expected generate", job);
  CHECK (g_str_equal (prompt, req.prompt), "prompt \"%s\"", prompt);
  CHECK (g_str_equal (negative, "blurry"), "negative prompt \"%s\"", negative);
  CHECK (steps == 7 && guidance == 5.5 && seed == 1234 && n == 1,
         "steps %d guidance %g seed %" G_GINT64_FORMAT " results %d", steps, guidance, seed, n);
  CHECK (max_size == 384 && g_str_equal (policy, "fit"), "working size %d (%s), expected 384 (fit)", max_size, policy);
  const char *msg = dg_panel_get_message (p);
  CHECK (msg && strstr (msg, "loaded"), "message after loading: %s", msg ? msg : "(none)");
  shot (window, out, "panel-rerun.png");

  /* a fixed job (the GIMP dialogs) stays; the strength of an edit comes along */
  req.job = DG_JOB_EDIT;
  req.strength = 0.4;
  req.prompt = "make it winter";
  g_autoptr (DgJobParams) jp2 = dg_job_params_new (&req, DG_PRECISION_BF16, DG_WEIGHTS_RELEASED);
  g_autofree char *text2 = dg_job_params_to_string (jp2);
  g_object_set (panel, "job", DG_JOB_INPAINT, "job-selectable", FALSE, NULL);
  dg_panel_set_layer_params (p, text2);
  dg_panel_load_layer_params (p);
  double strength = 0;
  g_free (prompt);
  g_object_get (panel, "job", &job, "strength", &strength, "prompt", &prompt, NULL);
  CHECK (job == DG_JOB_INPAINT, "the fixed job changed to %d", job);
  CHECK (strength > 0.399 && strength < 0.401 && g_str_equal (prompt, "make it winter"), "strength %g prompt \"%s\"",
         strength, prompt);

  /* text that is not job parameters: a warning that says so, the fields unchanged */
  dg_panel_set_layer_params (p, "{\"deepgen-parameters\":1,\"job\":\"paint\"}");
  dg_panel_load_layer_params (p);
  msg = dg_panel_get_message (p);
  CHECK (msg && strstr (msg, "cannot be read"), "message for bad parameters: %s", msg ? msg : "(none)");
  g_free (prompt);
  prompt = dg_panel_dup_prompt (p);
  CHECK (g_str_equal (prompt, "make it winter"), "bad parameters changed the prompt to \"%s\"", prompt);
  dg_panel_set_layer_params (p, NULL);
  CHECK (!dg_panel_offers_layer_params (p) && !gtk_widget_is_visible (button), "still offered after NULL");

  gtk_widget_destroy (window);
  return failures ? 1 : 0;
}

/* The expander whose label starts with @prefix anywhere under @w, or NULL. */
static GtkWidget *
expander_with_prefix (GtkWidget *w, const char *prefix)
{
  if (GTK_IS_EXPANDER (w) && g_str_has_prefix (gtk_expander_get_label (GTK_EXPANDER (w)), prefix))
    return w;
  GtkWidget *found = NULL;
  if (GTK_IS_CONTAINER (w)) {
    GList *children = gtk_container_get_children (GTK_CONTAINER (w));
    for (GList *l = children; l && !found; l = l->next) found = expander_with_prefix (l->data, prefix);
    g_list_free (children);
  }
  return found;
}

typedef struct {
  int calls;
  gpointer last;
} Reader;

/* The "layers": 1 is a 64×48 RGBA picture, 2 cannot be read. */
static DgImage *
read_layer (gpointer item, gpointer user_data, GError **error)
{
  Reader *r = user_data;
  r->calls++;
  r->last = item;
  if (GPOINTER_TO_INT (item) == 2) {
    g_set_error_literal (error, DG_ERROR, DG_ERROR_FAILED, "the test layer 2 cannot be read");
    return NULL;
  }
  g_autoptr (DgImage) rgb = test_image (64, 48);
  DgImage *img = dg_image_new (64, 48, 4);
  for (int y = 0; y < 48; y++)
    for (int x = 0; x < 64; x++) {
      const guint8 *s = rgb->pixels + (gsize) y * rgb->rowstride + x * 3;
      guint8 *d = img->pixels + (gsize) y * img->rowstride + x * 4;
      d[0] = 255 - s[1], d[1] = s[2], d[2] = s[0], d[3] = 255;
    }
  return img;
}

static int
test_references (const char *model, const char *out)
{
  GtkWidget *panel;
  GtkWidget *window = window_with_panel (DG_JOB_EDIT, &panel);
  DgPanel *p = DG_PANEL (panel);
  enum { W = 160, H = 120, RX = 24, RY = 40, RW = 72, RH = 48 };
  dg_panel_set_source (p, test_image (W, H), rect_mask (W, H, RX, RY, RW, RH), 0, 0);
  g_object_set (panel, "model-folder", model, "steps", 2, "max-size", 128, "seed", (gint64) 5, NULL);
  dg_panel_set_prompt (p, "put the picture of the second image into the first");
  Reader reader = { 0 };
  dg_panel_set_reference_reader (p, read_layer, &reader);
  dg_panel_add_reference_layer (p, "Picture", GINT_TO_POINTER (1), FALSE);
  dg_panel_add_reference_layer (p, "Unreadable", GINT_TO_POINTER (2), FALSE);
  CHECK (dg_panel_count_references (p) == 0, "%u references ticked at first", dg_panel_count_references (p));

  /* nothing ticked: nothing read, the plain edit */
  CHECK (run_and_wait (p, 300), "the run without references failed: %s", dg_panel_get_message (p));
  CHECK (reader.calls == 0, "%d layers read with none ticked", reader.calls);
  const DgTaskResult *r = dg_panel_get_result (p);
  g_autoptr (DgImage) plain = r ? dg_image_copy (r->image) : NULL;

  /* the first ticked: the fit indicator counts it (more memory), the layer is read once, the
   * result has the region's size again, and other pixels */
  const gint64 fit_end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (!g_str_has_prefix (dg_panel_get_fit_text (p), "Fits this GPU") && g_get_monotonic_time () < fit_end)
    g_main_context_iteration (NULL, TRUE);
  g_autofree char *fit_before = g_strdup (dg_panel_get_fit_text (p));
  dg_panel_set_reference_checked (p, 0, TRUE);
  CHECK (dg_panel_count_references (p) == 1, "%u references ticked, expected 1", dg_panel_count_references (p));
  CHECK (g_str_has_prefix (dg_panel_get_fit_text (p), "Fits this GPU") &&
             !g_str_equal (fit_before, dg_panel_get_fit_text (p)),
         "the fit indicator did not follow the ticked reference: \"%s\" then \"%s\"", fit_before,
         dg_panel_get_fit_text (p));
  printf ("fit: %s → %s\n", fit_before, dg_panel_get_fit_text (p));
  CHECK (run_and_wait (p, 300), "the run with a reference failed: %s", dg_panel_get_message (p));
  CHECK (reader.calls == 1 && reader.last == GINT_TO_POINTER (1), "the ticked layer was read %d times", reader.calls);
  r = dg_panel_get_result (p);
  CHECK (r && plain && r->image->width == RW && r->image->height == RH && r->x == RX && r->y == RY,
         "the result with a reference is not the selection's box");
  CHECK (r && plain && !same_pixels (r->image, plain), "the reference did not change the result");
  GtkWidget *expander = expander_with_prefix (panel, "Re_ference layers");
  CHECK (expander && gtk_widget_get_mapped (expander), "the reference list is not on screen");
  if (expander)
    gtk_expander_set_expanded (GTK_EXPANDER (expander), TRUE);
  shot (window, out, "panel-references.png");

  /* a layer that cannot be read: the run does not start, and the message says why */
  dg_panel_set_reference_checked (p, 1, TRUE);
  CHECK (!run_and_wait (p, 10), "a run with an unreadable reference succeeded");
  const char *msg = dg_panel_get_message (p);
  CHECK (msg && strstr (msg, "test layer 2 cannot be read"), "message: %s", msg ? msg : "(none)");

  /* generate takes none */
  g_object_set (panel, "job", DG_JOB_GENERATE, NULL);
  CHECK (dg_panel_count_references (p) == 0, "generate counts %u references", dg_panel_count_references (p));

  gtk_widget_destroy (window);
  dg_task_model_unload ();
  return failures ? 1 : 0;
}

/* The button labelled exactly @label (with its mnemonic) anywhere under @w, or NULL. */
static GtkWidget *
button_with_label (GtkWidget *w, const char *label)
{
  if (GTK_IS_BUTTON (w) && g_strcmp0 (gtk_button_get_label (GTK_BUTTON (w)), label) == 0)
    return w;
  GtkWidget *found = NULL;
  if (GTK_IS_CONTAINER (w)) {
    GList *children = gtk_container_get_children (GTK_CONTAINER (w));
    for (GList *l = children; l && !found; l = l->next) found = button_with_label (l->data, label);
    g_list_free (children);
  }
  return found;
}

static gboolean
find_label (GtkWidget *w, const char *text)
{
  if (GTK_IS_BUTTON (w) && g_strcmp0 (gtk_button_get_label (GTK_BUTTON (w)), text) == 0)
    return TRUE;
  if (GTK_IS_LABEL (w) && g_strcmp0 (gtk_label_get_label (GTK_LABEL (w)), text) == 0)
    return TRUE;
  gboolean found = FALSE;
  if (GTK_IS_CONTAINER (w)) {
    GList *children = gtk_container_get_children (GTK_CONTAINER (w));
    for (GList *l = children; l && !found; l = l->next) found = find_label (l->data, text);
    g_list_free (children);
  }
  return found;
}

typedef struct {
  const char *text;
  GtkWidget *found;
} LabelSearch;

static void
search_label (GtkWidget *w, gpointer data)
{
  LabelSearch *s = data;
  if (s->found)
    return;
  if (GTK_IS_LABEL (w) && g_strcmp0 (gtk_label_get_text (GTK_LABEL (w)), s->text) == 0)
    s->found = w;
  else if (GTK_IS_CONTAINER (w)) /* forall: internal children too (the info bar's content) */
    gtk_container_forall (GTK_CONTAINER (w), search_label, s);
}

/* The label showing exactly @text anywhere under @w, or NULL. */
static GtkWidget *
label_with_text (GtkWidget *w, const char *text)
{
  LabelSearch s = { text, NULL };
  search_label (w, &s);
  return s.found;
}

#ifdef DEEPGEN_HAVE_DOWNLOAD
/* The visible button whose label starts with @prefix (Download / Resume), or NULL. */
static GtkWidget *
button_with_prefix (GtkWidget *w, const char *prefix)
{
  if (GTK_IS_BUTTON (w) && gtk_widget_get_visible (w) && gtk_button_get_label (GTK_BUTTON (w)) &&
      g_str_has_prefix (gtk_button_get_label (GTK_BUTTON (w)), prefix))
    return w;
  GtkWidget *found = NULL;
  if (GTK_IS_CONTAINER (w)) {
    GList *children = gtk_container_get_children (GTK_CONTAINER (w));
    for (GList *l = children; l && !found; l = l->next) found = button_with_prefix (l->data, prefix);
    g_list_free (children);
  }
  return found;
}
#endif

static int
test_german (const char *out)
{
  /* a message from ui/ (GLib only) */
  DgTaskSpec spec = DG_TASK_SPEC_INIT;
  spec.prompt = "";
  g_autoptr (GError) error = NULL;
  dg_task_check (&spec, &error);
  CHECK (error && strstr (error->message, "Anweisung"), "not German: %s", error ? error->message : "(none)");
  printf ("message: %s\n", error ? error->message : "");

  /* the panel's own labels */
  GtkWidget *panel;
  GtkWidget *window = window_with_panel (DG_JOB_EDIT, &panel);
  dg_panel_set_source (DG_PANEL (panel), test_image (160, 120), NULL, 0, 0);
  CHECK (find_label (panel, "_Ausführen"), "the Run button is not German (\"_Ausführen\")");
  CHECK (find_label (panel, "_Anweisung"), "the prompt label is not German (\"_Anweisung\")");
  CHECK (find_label (panel, "Bes_chreiben"), "the Describe button is not German (\"Bes_chreiben\")");
#ifdef DEEPGEN_HAVE_DOWNLOAD
  /* no model in the folder: the download offer, in German */
  g_autofree char *none = g_build_filename (out, "no-model-here", NULL);
  g_object_set (panel, "model-folder", none, NULL);
  CHECK (button_with_prefix (panel, "Modell _herunterladen (") != NULL,
         "the download button is not German (\"Modell _herunterladen (…)\")");
#endif
  shot (window, out, "panel-de.png");
  gtk_widget_destroy (window);
  return failures ? 1 : 0;
}

/* The label under @w whose text starts with @prefix, or NULL. */
typedef struct {
  const char *prefix;
  GtkWidget *found;
} PrefixSearch;

static void
search_prefix (GtkWidget *w, gpointer data)
{
  PrefixSearch *s = data;
  if (s->found)
    return;
  if (GTK_IS_LABEL (w) && g_str_has_prefix (gtk_label_get_text (GTK_LABEL (w)), s->prefix))
    s->found = w;
  else if (GTK_IS_CONTAINER (w))
    gtk_container_forall (GTK_CONTAINER (w), search_prefix, s);
}

static GtkWidget *
label_with_prefix (GtkWidget *w, const char *prefix)
{
  PrefixSearch s = { prefix, NULL };
  search_prefix (w, &s);
  return s.found;
}

static gboolean
same_image (const DgImage *a, const DgImage *b)
{
  if (!a || !b || a->width != b->width || a->height != b->height || a->channels != b->channels)
    return FALSE;
  for (int y = 0; y < a->height; y++)
    if (memcmp (a->pixels + (gsize) y * a->rowstride, b->pixels + (gsize) y * b->rowstride,
                (gsize) a->width * a->channels) != 0)
      return FALSE;
  return TRUE;
}

static int
test_service (const char *model, const char *out, const char *deepgen)
{
  /* a private runtime folder, and a deepgen that leaves soon after its last job */
  g_autofree char *runtime = g_dir_make_tmp ("dg-panel-service-XXXXXX", NULL);
  g_setenv ("XDG_RUNTIME_DIR", runtime, TRUE);
  g_unsetenv ("DEEPGEN_NO_SERVICE");
  g_autofree char *wrapper = g_build_filename (runtime, "deepgen-idle", NULL);
  g_autofree char *script = g_strdup_printf ("#!/bin/sh\nexec '%s' \"$@\" --idle-exit 3\n", deepgen);
  g_file_set_contents (wrapper, script, -1, NULL);
  g_chmod (wrapper, 0700);
  g_setenv ("DEEPGEN_PROGRAM", wrapper, TRUE);

  GtkWidget *panel;
  GtkWidget *window = window_with_panel (DG_JOB_INPAINT, &panel);
  DgPanel *p = DG_PANEL (panel);
  enum { W = 256, H = 192 };
  dg_panel_set_source (p, test_image (W, H), rect_mask (W, H, 48, 40, 160, 112), 0, 0);
  /* many steps, so that the run is still going when the screenshot is taken */
  g_object_set (panel, "model-folder", model, "steps", 200, "max-size", 256, "seed", (gint64) 7, NULL);
  dg_panel_set_prompt (p, "replace the square with a red balloon");

  Wait w = { 0 };
  const gulong id = g_signal_connect (panel, "finished", G_CALLBACK (on_finished), &w);
  dg_panel_run (p);
  /* wait for a few steps' previews */
  GtkWidget *caption = NULL;
  int step = 0;
  const gint64 end = g_get_monotonic_time () + 120 * G_USEC_PER_SEC;
  while (!w.done && step < 3 && g_get_monotonic_time () < end) {
    g_main_context_iteration (NULL, TRUE);
    if ((caption = label_with_prefix (panel, "Step ")))
      step = atoi (gtk_label_get_text (GTK_LABEL (caption)) + strlen ("Step "));
  }
  CHECK (caption != NULL, "no live preview while the run went on (%s)",
         w.done ? "it finished without one" : "none within 120 s");
  if (caption) {
    CHECK (!w.done, "the run ended before the screenshot");
    printf ("live preview: %s\n", gtk_label_get_text (GTK_LABEL (caption)));
    shot (window, out, "panel-live-preview.png");
    CHECK (gtk_widget_is_visible (caption) && gtk_widget_get_mapped (caption), "the preview's caption is not shown");
  }
  /* Stop keeps nothing: no result, the preview gone */
  dg_panel_cancel (p);
  while (!w.done && g_get_monotonic_time () < end + 60 * G_USEC_PER_SEC) g_main_context_iteration (NULL, TRUE);
  g_signal_handler_disconnect (panel, id);
  CHECK (w.done && !w.success, "Stop did not end the run");
  CHECK (dg_panel_get_result (p) == NULL, "a stopped run left a result");
  CHECK (label_with_prefix (panel, "Step ") == NULL || !gtk_widget_is_visible (label_with_prefix (panel, "Step ")),
         "the stopped run's live preview is still shown");
  const char *msg = dg_panel_get_message (p);
  CHECK (msg && strstr (msg, "Cancelled"), "message after Stop: %s", msg ? msg : "(none)");

  /* a whole run through the service: the same result as in this process */
  g_object_set (panel, "steps", 3, "max-size", 128, NULL);
  CHECK (run_and_wait (p, 300), "the run through the service failed: %s",
         dg_panel_get_message (p) ? dg_panel_get_message (p) : "?");
  const DgTaskResult *r = dg_panel_get_result (p);
  CHECK (r && r->via_service, "the run did not go through the service");
  DgTaskSpec spec;
  char **strings = NULL;
  dg_panel_get_spec (p, &spec, &strings);
  DgImage *src = test_image (W, H);
  DgMask *sel = rect_mask (W, H, 48, 40, 160, 112);
  spec.source = src, spec.selection = sel;
  g_autoptr (GError) error = NULL;
  DgModel *m = dg_task_model_acquire (model, &error);
  DgTaskResult *want = m ? dg_task_run (m, &spec, NULL, NULL, NULL, &error) : NULL;
  if (m)
    dg_task_model_release (m);
  CHECK (want != NULL, "in-process run: %s", error ? error->message : "?");
  CHECK (r && want && same_image (r->image, want->image) && r->x == want->x && r->y == want->y,
         "the service's result differs from the in-process one");
  dg_task_result_free (want);
  dg_image_free (src);
  dg_image_free (sel);
  g_strfreev (strings);
  gtk_widget_destroy (window);
  dg_task_model_unload ();

  /* the panel's cost of one live preview (copy in the job's thread, upscale and show on the main
   * loop), at the latent sizes of 256² and 1024² images: a figure for PERF.md, no pass/fail */
  GtkWidget *image = g_object_ref_sink (gtk_image_new ()), *label = g_object_ref_sink (gtk_label_new (""));
  for (int side = 32; side <= 128; side *= 4) {
    g_autoptr (DgImage) rgb = test_image (side, side);
    enum { N = 200 };
    const gint64 t0 = g_get_monotonic_time ();
    for (int i = 0; i < N; i++) {
      g_autoptr (DgLivePreview) lp = dg_live_preview_new (rgb, i + 1, N);
      dg_live_preview_show (lp, GTK_IMAGE (image), GTK_LABEL (label), 320);
    }
    printf ("live preview in the panel, %dx%d latent -> 320 px: %.3f ms a step\n", side, side,
            (g_get_monotonic_time () - t0) / 1000.0 / N);
  }
  g_object_unref (image);
  g_object_unref (label);

  /* the service leaves once idle */
  g_autofree char *sock_name = dg_service_socket_name ();
  g_autofree char *sock = g_build_filename (runtime, "deepgen", sock_name, NULL);
  for (int i = 0; i < 100 && g_file_test (sock, G_FILE_TEST_EXISTS); i++) g_usleep (100 * 1000);
  CHECK (!g_file_test (sock, G_FILE_TEST_EXISTS), "the service did not leave after its idle time");
  g_autofree char *log = g_build_filename (runtime, "deepgen", "service.log", NULL);
  g_autofree char *text = NULL;
  if (g_file_get_contents (log, &text, NULL, NULL))
    CHECK (!strstr (text, "vkc: validation"), "validation messages in the service's log:\n%s", text);
  g_unlink (log);
  g_autofree char *lock = g_strconcat (sock, ".lock", NULL);
  g_unlink (lock);
  g_autofree char *dir = g_build_filename (runtime, "deepgen", NULL);
  g_rmdir (dir);
  g_unlink (wrapper);
  g_rmdir (runtime);
  return failures ? 1 : 0;
}

#ifdef DEEPGEN_HAVE_DOWNLOAD
static void
on_download_finished (DgPanel *panel, gboolean success, Wait *w)
{
  w->done = TRUE;
  w->success = success;
}

/* Starts the download (unless @start is FALSE: it runs already) and waits for its end. */
static gboolean
download_and_wait (DgPanel *panel, gboolean start, int timeout_s)
{
  Wait w = { 0 };
  const gulong id = g_signal_connect (panel, "download-finished", G_CALLBACK (on_download_finished), &w);
  if (start)
    dg_panel_download (panel);
  const gint64 end = g_get_monotonic_time () + (gint64) timeout_s * G_USEC_PER_SEC;
  while (!w.done && g_get_monotonic_time () < end) g_main_context_iteration (NULL, TRUE);
  g_signal_handler_disconnect (panel, id);
  CHECK (w.done, "the download did not finish within %d s", timeout_s);
  return w.success;
}

static int
test_download (const char *model, const char *out)
{
  HubServer *hub = hub_server_new_repo (model, DG_DOWNLOAD_DEFAULT_REPO);
  g_setenv ("HF_ENDPOINT", hub_server_endpoint (hub), TRUE);
  g_setenv ("HF_HOME", out, TRUE);
  g_setenv ("no_proxy", "127.0.0.1,localhost", TRUE);
  g_unsetenv ("HF_TOKEN");
  /* a short path for the screenshots */
  g_autofree char *base = g_dir_make_tmp ("deepgen-XXXXXX", NULL);
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", base);
  g_autofree char *folder = g_build_filename (base, "DeepGen-1.0-diffusers", NULL);

  GtkWidget *panel;
  GtkWidget *window = window_with_panel (DG_JOB_GENERATE, &panel);
  DgPanel *p = DG_PANEL (panel);
  dg_panel_set_source (p, NULL, NULL, 96, 64);
  g_object_set (panel, "model-folder", folder, "steps", 2, "max-size", 64, NULL);
  dg_panel_set_prompt (p, "a lighthouse at dusk");

  /* an empty folder: the offer, with the model's size */
  CHECK (dg_panel_offers_download (p), "no download offered for a missing model folder");
  GtkWidget *button = button_with_prefix (panel, "_Download the model (");
  CHECK (button && strstr (gtk_button_get_label (GTK_BUTTON (button)), "14.4"),
         "no \"Download the model (14.4 GB)\" button");
  CHECK (button && gtk_widget_get_mapped (button), "the download button is not on screen");
  shot (window, out, "panel-download-offer.png");

  /* a slow server: progress shows, Pause stops it and keeps what came */
  hub_server_set_slow_chunk (hub, 16384);
  hub_server_set_faults (hub, HUB_SLOW, NULL, NULL);
  dg_panel_download (p);
  CHECK (dg_panel_is_downloading (p), "the download did not start");
  CHECK (!dg_panel_offers_download (p), "the Download button stays while downloading");
  const gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (dg_download_partial_bytes (folder) < 1500000 && g_get_monotonic_time () < end)
    g_main_context_iteration (NULL, FALSE), g_usleep (10000);
  shot (window, out, "panel-download.png");
  dg_panel_pause_download (p);
  CHECK (!download_and_wait (p, FALSE, 30), "a paused download reported success");
  const char *msg = dg_panel_get_message (p);
  CHECK (msg && strstr (msg, "paused"), "message after Pause: %s", msg ? msg : "(none)");
  CHECK (dg_download_partial_bytes (folder) > 0, "no partial files kept after Pause");
  CHECK (button_with_prefix (panel, "_Resume the download") != NULL, "no Resume button after Pause");

  /* Resume: the rest, verified; the offer goes, and the model runs */
  hub_server_set_faults (hub, 0, NULL, NULL);
  CHECK (download_and_wait (p, TRUE, 120), "the resumed download failed: %s",
         dg_panel_get_message (p) ? dg_panel_get_message (p) : "?");
  CHECK (!dg_panel_offers_download (p), "the download is still offered for a complete folder");
  msg = dg_panel_get_message (p);
  CHECK (msg && strstr (msg, "ready"), "message after the download: %s", msg ? msg : "(none)");
  g_autofree char *missing = dg_model_folder_missing (folder);
  CHECK (missing == NULL, "the downloaded folder lacks: %s", missing);
  shot (window, out, "panel-downloaded.png");
  CHECK (run_and_wait (p, 300), "the run on the downloaded model failed: %s",
         dg_panel_get_message (p) ? dg_panel_get_message (p) : "?");
  CHECK (dg_panel_get_result (p) != NULL, "no preview after the run");

  /* a gated repository without a token: the message says so, in place */
  g_autofree char *other = g_build_filename (base, "other", NULL);
  g_object_set (panel, "model-folder", other, NULL);
  CHECK (dg_panel_offers_download (p), "no offer for another empty folder");
  hub_server_set_faults (hub, HUB_NEED_TOKEN, NULL, "hf_secret");
  CHECK (!download_and_wait (p, TRUE, 60), "a download without the needed token succeeded");
  msg = dg_panel_get_message (p);
  CHECK (msg && strstr (msg, "401") && strstr (msg, "HF_TOKEN"), "message for 401: %s", msg ? msg : "(none)");
  GtkWidget *shown = msg ? label_with_text (panel, msg) : NULL;
  CHECK (shown && gtk_widget_get_mapped (shown), "the 401 message is not on screen");
  CHECK (dg_panel_offers_download (p), "the offer is gone after a failed download");

  gtk_widget_destroy (window);
  dg_task_model_unload ();
  hub_server_free (hub);
  CHECK (system (rm) == 0, "cannot remove %s", base);
  return failures ? 1 : 0;
}
#endif

/* The first button with the tooltip @tip under @w, or NULL. */
static GtkWidget *
button_with_tooltip (GtkWidget *w, const char *tip)
{
  if (GTK_IS_BUTTON (w) && gtk_widget_get_mapped (w)) {
    g_autofree char *t = gtk_widget_get_tooltip_text (w);
    if (g_strcmp0 (t, tip) == 0)
      return w;
  }
  GtkWidget *found = NULL;
  if (GTK_IS_CONTAINER (w)) {
    GList *children = gtk_container_get_children (GTK_CONTAINER (w));
    for (GList *l = children; l && !found; l = l->next) found = button_with_tooltip (l->data, tip);
    g_list_free (children);
  }
  return found;
}

static GPtrArray *forgotten; /* the items the panel forgot, in order */

static void
forget_item (gpointer item)
{
  g_ptr_array_add (forgotten, item);
}

/* Removable references (deepgen-studio's files): each row's remove button takes it out of the
 * list and the count, the panel forgets the item then, and the rest when it is destroyed. */
static int
test_references_remove (void)
{
  GtkWidget *panel;
  GtkWidget *window = window_with_panel (DG_JOB_EDIT, &panel);
  DgPanel *p = DG_PANEL (panel);
  forgotten = g_ptr_array_new ();
  dg_panel_set_reference_remover (p, forget_item);
  dg_panel_add_reference_layer (p, "first.png", GINT_TO_POINTER (1), TRUE);
  dg_panel_add_reference_layer (p, "second.png", GINT_TO_POINTER (2), TRUE);
  GtkWidget *expander = expander_with_prefix (panel, "Re_ference layers");
  CHECK (expander != NULL, "no reference list");
  if (!expander) /* (CHECK reports; without the list nothing below can be looked at) */
    return 1;
  gtk_expander_set_expanded (GTK_EXPANDER (expander), TRUE);
  settle (200);
  CHECK (dg_panel_count_references (p) == 2, "%u references ticked, expected 2", dg_panel_count_references (p));
  GtkWidget *remove = button_with_tooltip (panel, "Remove this reference");
  CHECK (remove != NULL, "no remove button in the list");
  if (remove)
    gtk_button_clicked (GTK_BUTTON (remove));
  settle (100);
  CHECK (dg_panel_count_references (p) == 1, "%u references after removing one", dg_panel_count_references (p));
  CHECK (forgotten->len == 1 && forgotten->pdata[0] == GINT_TO_POINTER (1), "the removed item was not forgotten");
  CHECK (!find_label (panel, "first.png") && find_label (panel, "second.png"), "the wrong row went");
  dg_panel_remove_reference_layer (p, 0);
  settle (100);
  CHECK (dg_panel_count_references (p) == 0 && !gtk_widget_get_visible (expander),
         "the list is still shown with nothing in it");
  dg_panel_add_reference_layer (p, "third.png", GINT_TO_POINTER (3), FALSE);
  gtk_widget_destroy (window);
  CHECK (forgotten->len == 3 && forgotten->pdata[2] == GINT_TO_POINTER (3),
         "%u items forgotten after the panel went, expected 3", forgotten->len);
  g_ptr_array_unref (forgotten);
  return failures ? 1 : 0;
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  dg_i18n_init ();
  gtk_init (&argc, &argv);
  if (argc >= 3)
    g_mkdir_with_parents (argv[argc - 1], 0755);
  if (argc == 4 && g_str_equal (argv[1], "run"))
    return test_run (argv[2], argv[3]);
  if (argc == 4 && g_str_equal (argv[1], "describe"))
    return test_describe (argv[2], argv[3]);
  if (argc == 4 && g_str_equal (argv[1], "variations"))
    return test_variations (argv[2], argv[3]);
  if (argc == 4 && g_str_equal (argv[1], "rerun"))
    return test_rerun (argv[2], argv[3]);
  if (argc == 4 && g_str_equal (argv[1], "references"))
    return test_references (argv[2], argv[3]);
  if (argc == 2 && g_str_equal (argv[1], "references-remove"))
    return test_references_remove ();
  if (argc == 3 && g_str_equal (argv[1], "german"))
    return test_german (argv[2]);
  if (argc == 5 && g_str_equal (argv[1], "service"))
    return test_service (argv[2], argv[4], argv[3]);
  if (argc == 4 && g_str_equal (argv[1], "download")) {
#ifdef DEEPGEN_HAVE_DOWNLOAD
    return test_download (argv[2], argv[3]);
#else
    fprintf (stderr, "SKIP: built without the model download (libsoup-3.0)\n");
    return 77;
#endif
  }
  fprintf (stderr, "usage: test-panel run MODEL OUTDIR | describe MODEL OUTDIR | variations MODEL OUTDIR | rerun MODEL "
                   "OUTDIR | references MODEL OUTDIR | references-remove | german "
                   "OUTDIR | download MODEL OUTDIR\n");
  return 2;
}
