/* The plug-in core shared by the GIMP 3 and GIMP 2.10 plug-ins (dg_plugin.h). */
#include "dg_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dg_autopilot.h"
#include "dg_expand_form.h"
#include "dg_gettext.h"
#include "dg_panel.h"

/* ---- reading the image -------------------------------------------------------------------- */

/* What a run works on, read from GIMP before anything else happens. */
typedef struct {
  DgHostItem *drawable;   /* the selected layer, or NULL (generate with nothing selected) */
  DgImage *pixels;        /* the layer's pixels (edit, inpaint) */
  DgMask *selection;      /* the selection over the layer (or canvas), NULL = none */
  int offset_x, offset_y; /* where pixels/selection (0, 0) lies on the canvas */
  int width, height;      /* of the layer, or of the canvas */
} Source;

static void
source_clear (Source *s)
{
  dg_image_free (s->pixels);
  dg_image_free (s->selection);
}

static gboolean
fail (GError **error, int code, const char *message)
{
  g_set_error_literal (error, DG_ERROR, code, message);
  return FALSE;
}

/* w × h pixels at (x, y) of @item in babl @format, into a new image of @channels. */
static DgImage *
read_pixels (const DgHost *host, DgHostItem *item, int x, int y, int w, int h, int channels, const char *format)
{
  DgImage *img = dg_image_new (w, h, channels);
  if (!img)
    return NULL;
  GeglBuffer *buf = host->buffer (item);
  gegl_buffer_get (buf, GEGL_RECTANGLE (x, y, w, h), 1.0, babl_format (format), img->pixels, img->rowstride,
                   GEGL_ABYSS_NONE);
  g_object_unref (buf);
  return img;
}

/* What a run holds at once for a w × h layer (canvas, for generate) of @channels, at most: its
 * pixels, GEGL's tiles of them while they are read, the region's copy, the result and its tiles
 * on the way back to GIMP (five layer-sized images), and the selection. Tried as one allocation,
 * given back at once, before anything is read: a layer too large for this process's memory fails
 * here with a message instead of aborting the plug-in at a later g_malloc, where GIMP could only
 * report a crash (docs/RELIABILITY.md). */
static gboolean
check_memory (int w, int h, int channels, GError **error)
{
  const guint64 need = (guint64) w * (guint64) h * (5 * (guint64) channels + 1);
  gpointer probe = need <= G_MAXSIZE ? g_try_malloc ((gsize) need) : NULL;
  if (probe) {
    g_free (probe);
    return TRUE;
  }
  g_autofree char *size = g_format_size (need);
  g_set_error (error, DG_ERROR, DG_ERROR_OOM,
               _ ("Not enough memory for DeepGen to work on this %d×%d layer: it needs about %s. Close other "
                  "images or programs, or scale the layer down (Layer ▸ Scale Layer), and try again."),
               w, h, size);
  return FALSE;
}

static gboolean
read_source (const DgPluginCall *call, Source *src, GError **error)
{
  const DgHost *host = call->host;
  const gboolean on_layer = call->info->job != DG_JOB_GENERATE;
  /* edit and inpaint: the first selected layer is edited, the others are references */
  if ((call->n_drawables > 1 && !on_layer) || (call->n_drawables == 0 && on_layer))
    return fail (error, DG_ERROR_INVALID_ARGUMENT, _ ("Select exactly one layer for DeepGen to work on."));
  /* the canvas, where generate works */
  if (host->image_info (call->image, &src->width, &src->height) == DG_HOST_INDEXED)
    return fail (
        error, DG_ERROR_UNSUPPORTED,
        _ ("DeepGen works on RGB and grayscale images. Convert this indexed image first (Image ▸ Mode ▸ RGB)."));
  src->drawable = call->n_drawables >= 1 ? call->drawable : NULL;
  int x, y, w, h;
  gboolean alpha = FALSE, touches = TRUE;
  const DgHostItemKind kind = src->drawable ? host->item_info (src->drawable, &x, &y, &w, &h, &alpha) : DG_HOST_LAYER;
  if (kind == DG_HOST_OTHER)
    return fail (error, DG_ERROR_INVALID_ARGUMENT,
                 _ ("DeepGen works on layers: select a layer, not a channel or a layer mask."));
  if (kind == DG_HOST_LAYER_GROUP && on_layer)
    return fail (error, DG_ERROR_INVALID_ARGUMENT,
                 _ ("DeepGen cannot edit a layer group: select one of its layers, or merge the group first."));
  /* edit and inpaint work on the layer */
  if (on_layer)
    src->offset_x = x, src->offset_y = y, src->width = w, src->height = h;

  if (!check_memory (src->width, src->height, on_layer && !alpha ? 3 : 4, error))
    return FALSE;

  /* Expand Canvas ignores the selection: the new area is what it paints */
  DgHostItem *selection =
      call->info->expand ? NULL : host->selection (call->image, on_layer ? src->drawable : NULL, &touches);
  if (selection) {
    if (!touches)
      return fail (error, DG_ERROR_INVALID_ARGUMENT,
                   _ ("The selection does not touch the layer: select part of the layer, or select nothing to "
                      "work on all of it."));
    src->selection = read_pixels (host, selection, src->offset_x, src->offset_y, src->width, src->height, 1, "Y u8");
    if (!src->selection)
      return fail (error, DG_ERROR_OOM, _ ("Not enough memory for the selection."));
  }

  if (on_layer) {
    src->pixels = read_pixels (host, src->drawable, 0, 0, src->width, src->height, alpha ? 4 : 3,
                               alpha ? "R'G'B'A u8" : "R'G'B' u8");
    if (!src->pixels)
      return g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("Not enough memory to read the %d×%d layer."), src->width,
                          src->height),
             FALSE;
  }
  return TRUE;
}

/* A reference layer, whole: its pixels as RGB, or RGBA when it has alpha. */
static DgImage *
read_reference (const DgHost *host, DgHostItem *item, GError **error)
{
  int x, y, w, h;
  gboolean alpha = FALSE;
  if (host->item_info (item, &x, &y, &w, &h, &alpha) != DG_HOST_LAYER) {
    g_autofree char *name = host->item_name (item);
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("“%s” cannot be a reference: references are layers, not layer groups, channels or masks."), name);
    return NULL;
  }
  if (!check_memory (w, h, alpha ? 4 : 3, error))
    return NULL;
  DgImage *img = read_pixels (host, item, 0, 0, w, h, alpha ? 4 : 3, alpha ? "R'G'B'A u8" : "R'G'B' u8");
  if (!img)
    g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("Not enough memory to read the %d×%d layer."), w, h);
  return img;
}

/* The call's references (GIMP 3's other selected layers), read; NULL with @error. */
static GPtrArray *
read_references (const DgPluginCall *call, GError **error)
{
  GPtrArray *refs = g_ptr_array_new_with_free_func ((GDestroyNotify) dg_image_free);
  for (int i = 0; i < call->n_references; i++) {
    DgImage *img = read_reference (call->host, call->references[i], error);
    if (!img) {
      g_ptr_array_unref (refs);
      return NULL;
    }
    g_ptr_array_add (refs, img);
  }
  return refs;
}

/* DgPanelReadReference for the dialog: @item is a DgHostItem of the call's image. */
static DgImage *
panel_read_reference (gpointer item, gpointer user_data, GError **error)
{
  const DgPluginCall *call = user_data;
  return read_reference (call->host, item, error);
}

/* ---- writing the result ------------------------------------------------------------------- */

static DgHostItem *
apply_result (const DgPluginCall *call, const Source *src, const DgTaskResult *res, const char *prompt, GError **error)
{
  const DgHost *host = call->host;
  const DgImage *img = res->image;
  g_autofree char *name = dg_task_layer_name (prompt);

  host->undo_group (call->image, TRUE);
  DgHostItem *layer = host->layer_new (call->image, src->drawable, name, img->width, img->height,
                                       src->offset_x + res->x, src->offset_y + res->y);
  if (!layer) {
    host->undo_group (call->image, FALSE);
    fail (error, DG_ERROR_FAILED, _ ("GIMP could not create the new layer."));
    return NULL;
  }
  GeglBuffer *buf = host->buffer (layer);
  gegl_buffer_set (buf, GEGL_RECTANGLE (0, 0, img->width, img->height), 0,
                   babl_format (img->channels == 4 ? "R'G'B'A u8" : "R'G'B' u8"), img->pixels, img->rowstride);
  g_object_unref (buf); /* flushes to the core */

  /* the mask: the selection itself, at the layer's position, feathering included */
  host->layer_finish (layer, src->selection != NULL, img->width, img->height);
  if (res->params) /* what made it, to run it again (DG_JOB_PARAMS_KEY) */
    host->attach_text (layer, DG_JOB_PARAMS_KEY, res->params);
  host->undo_group (call->image, FALSE);
  return layer;
}

/* Expand Canvas, before the result layers: opens the undo group that dg_plugin_run closes after
 * them, grows the image's canvas by the sides the result was made with (res->x, res->y are
 * −left, −top; its size is the layer's grown by all four), and moves the source's offsets with
 * the layers, so that apply_result places the result over the layer's grown rectangle. */
static void
expand_canvas (const DgPluginCall *call, Source *src, const DgTaskResult *res)
{
  const DgHost *host = call->host;
  int w, h;
  host->image_info (call->image, &w, &h);
  const int left = -res->x, top = -res->y;
  const int right = res->image->width - src->width - left, bottom = res->image->height - src->height - top;
  host->undo_group (call->image, TRUE);
  host->image_resize (call->image, w + left + right, h + top + bottom, left, top);
  src->offset_x += left, src->offset_y += top;
}

/* ---- running ------------------------------------------------------------------------------ */

/* Test-only (tests/gimp/run-gimp-fault.sh, docs/RELIABILITY.md): with DEEPGEN_TEST_PAUSE_AT_STEP=N
 * a direct run stops at denoising step N, says so on stderr with its process id, and waits (at
 * most ten minutes) to be killed, so that a test kills the plug-in at a known point in the middle
 * of a run rather than at a moment that depends on the machine's speed. Unset: nothing. */
static void
test_pause (DgStage stage, int step)
{
  static int at = -1;
  if (at < 0) {
    const char *v = g_getenv ("DEEPGEN_TEST_PAUSE_AT_STEP");
    at = v ? MAX (0, atoi (v)) : 0;
  }
  if (at == 0 || stage != DG_STAGE_DENOISE || step != at)
    return;
  g_printerr ("deepgen: DEEPGEN_TEST_PAUSE_AT_STEP: pid %d paused at step %d\n", (int) getpid (), step);
  for (int i = 0; i < 600; i++) g_usleep (G_USEC_PER_SEC);
}

static void
on_progress (DgStage stage, int step, int n_steps, gpointer user_data)
{
  const DgHost *host = user_data;
  test_pause (stage, step);
  g_autofree char *text = dg_task_progress_text (stage, step, n_steps);
  host->progress_set_text (text);
  host->progress_update (dg_task_progress_fraction (stage, step, n_steps));
}

static DgTaskResult *
run_direct (const DgPluginCall *call, const Source *src, GError **error)
{
  DgTaskSpec spec;
  DgExpandSides sides;
  if (!dg_procedure_spec (&call->args, call->info, src->pixels, src->selection, src->width, src->height, &sides, &spec,
                          error))
    return NULL;
  g_autoptr (GPtrArray) refs = read_references (call, error);
  if (!refs)
    return NULL;
  spec.references = (const DgImage *const *) refs->pdata;
  spec.n_references = refs->len;
  if (!dg_task_check (&spec, error))
    return NULL;
  /* Expand Canvas: the result layer is the grown canvas, so the memory check is for that size */
  DgExpandPlan grown;
  if (spec.expand && (!dg_expand_plan (src->width, src->height, spec.expand, &grown, error) ||
                      !check_memory (grown.canvas_width, grown.canvas_height, src->pixels->channels, error)))
    return NULL;
  call->host->progress_init (_ ("DeepGen: loading the model…"));
  DgTaskResult *res = dg_procedure_run (&spec, call->args.folder, on_progress, (gpointer) call->host, error);
  call->host->progress_end ();
  return res;
}

typedef struct {
  GtkWidget *dialog;
  DgTaskResult *result;
} DialogState;

static void
on_panel_apply (DgPanel *panel, const DgTaskResult *result, DialogState *st)
{
  st->result = dg_panel_steal_result (panel);
  gtk_dialog_response (GTK_DIALOG (st->dialog), GTK_RESPONSE_APPLY);
}

static void
close_dialog (GtkWindow *dialog)
{
  gtk_dialog_response (GTK_DIALOG (dialog), GTK_RESPONSE_CANCEL);
}

/* The dialog, starting from call->args; the result of Apply (NULL: closed without), and in
 * *prompt the prompt it was made with. */
static DgTaskResult *
run_dialog (const DgPluginCall *call, Source *src, char **prompt)
{
  const DgProcedureArgs *a = &call->args;
  DialogState st = { 0 };
  st.dialog = call->host->dialog_new (call->info);
  gtk_window_set_default_size (GTK_WINDOW (st.dialog), 460, -1);
  GtkWidget *panel = dg_panel_new (call->info->job);
  g_object_set (panel, "job-selectable", FALSE, "prompt", a->prompt, "negative-prompt", a->negative, "steps",
                CLAMP (a->steps, 1, DG_TASK_MAX_STEPS), "guidance", CLAMP (a->guidance, 0.0, DG_TASK_MAX_GUIDANCE),
                "seed", (gint64) MAX (-1, a->seed), "size-policy", a->policy, "max-size",
                CLAMP (a->max_size, DG_TASK_MIN_SIZE, DG_TASK_MAX_SIZE), "model-folder", a->folder, "strength",
                CLAMP (a->strength, 0.0, 1.0), "n-results", CLAMP (a->n_results, 1, DG_TASK_MAX_RESULTS), NULL);
  if (call->panel_open)
    call->panel_open (panel, call->data);
  /* edit and inpaint: the image's other layers as references, the call's own ticked (GIMP 3:
   * the other selected layers) */
  if (call->info->job != DG_JOB_GENERATE && call->host->image_layers) {
    int n = 0;
    g_autofree DgHostItem **layers = call->host->image_layers (call->image, &n);
    dg_panel_set_reference_reader (DG_PANEL (panel), panel_read_reference, (gpointer) call);
    for (int i = 0; i < n; i++) {
      if (layers[i] == src->drawable)
        continue;
      gboolean ticked = FALSE;
      for (int j = 0; j < call->n_references; j++) ticked = ticked || call->references[j] == layers[i];
      g_autofree char *name = call->host->item_name (layers[i]);
      dg_panel_add_reference_layer (DG_PANEL (panel), name, layers[i], ticked);
    }
  }
  /* a layer DeepGen made: offer its settings (Re-run from layer) */
  if (call->drawable && call->host->read_text) {
    g_autofree char *params = call->host->read_text (call->drawable, DG_JOB_PARAMS_KEY);
    dg_panel_set_layer_params (DG_PANEL (panel), params);
  }
  /* the panel takes the pixels; the source keeps its geometry */
  dg_panel_set_source (DG_PANEL (panel), g_steal_pointer (&src->pixels),
                       src->selection ? dg_image_copy (src->selection) : NULL, src->width, src->height);
  g_signal_connect (panel, "apply", G_CALLBACK (on_panel_apply), &st);
  gtk_box_pack_start (GTK_BOX (gtk_dialog_get_content_area (GTK_DIALOG (st.dialog))), panel, TRUE, TRUE, 0);
  gtk_widget_show_all (st.dialog);
  dg_autopilot_attach (GTK_WINDOW (st.dialog), DG_PANEL (panel), close_dialog);

  call->host->dialog_run (GTK_DIALOG (st.dialog));
  if (call->panel_close)
    call->panel_close (panel, call->data);
  *prompt = dg_panel_dup_prompt (DG_PANEL (panel));
  gtk_widget_destroy (st.dialog);
  return st.result;
}

/* ---- Expand Canvas's dialog --------------------------------------------------------------- */

/* Runs the dialog from call->args; TRUE for Expand, with *a the settings to run (its strings new
 * in *prompt and *aspect). */
static gboolean
expand_dialog (const DgPluginCall *call, const Source *src, DgProcedureArgs *a, char **prompt, char **aspect)
{
  *a = call->args;
  GtkWidget *dialog = call->host->dialog_new (call->info);
  GtkWidget *expand = gtk_dialog_add_button (GTK_DIALOG (dialog), _ ("_Expand"), GTK_RESPONSE_OK);
  gtk_dialog_set_default_response (GTK_DIALOG (dialog), GTK_RESPONSE_OK);
  GtkWidget *form = dg_expand_form_new (src->width, src->height, &a->sides, a->aspect, a->prompt, expand);
  gtk_box_pack_start (GTK_BOX (gtk_dialog_get_content_area (GTK_DIALOG (dialog))), form, TRUE, TRUE, 0);
  gtk_widget_show_all (dialog);
  /* the test autopilot (ui/dg_autopilot.h) also sets the run's other settings */
  g_autofree char *pilot_model = dg_autopilot_value ("model"), *pilot_steps = dg_autopilot_value ("steps"),
                  *pilot_size = dg_autopilot_value ("max-size");
  if (dg_autopilot_attach_expand (form)) {
    a->folder = pilot_model ? g_intern_string (pilot_model) : a->folder; /* outlives the dialog */
    a->steps = pilot_steps ? atoi (pilot_steps) : a->steps;
    a->max_size = pilot_size ? atoi (pilot_size) : a->max_size;
  }

  const gboolean ok = call->host->dialog_run (GTK_DIALOG (dialog)) == GTK_RESPONSE_OK;
  if (ok) {
    g_autofree char *text = NULL;
    dg_expand_form_get (form, &a->sides, aspect, &text);
    a->prompt = *prompt = g_steal_pointer (&text);
    a->aspect = *aspect;
  }
  gtk_widget_destroy (dialog);
  return ok;
}

void
dg_plugin_bind_settings (GtkWidget *panel, gpointer object)
{
  for (guint i = 0; i < DG_N_ARGUMENTS; i++)
    g_object_bind_property (object, dg_arguments[i].name, panel, dg_arguments[i].name,
                            G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE);
}

DgHostItem *
dg_plugin_run (const DgPluginCall *call, DgPluginStatus *status, GError **error)
{
  dg_i18n_init ();
  *status = DG_PLUGIN_EXECUTION_ERROR;
  Source src = { 0 };
  if (!read_source (call, &src, error)) {
    source_clear (&src);
    return NULL;
  }

  g_autofree char *prompt = NULL;
  DgTaskResult *res = NULL;
  if (call->interactive && call->info->expand) {
    DgProcedureArgs a;
    g_autofree char *aspect = NULL;
    if (expand_dialog (call, &src, &a, &prompt, &aspect)) {
      if (call->args_close)
        call->args_close (&a, call->data);
      DgPluginCall with = *call;
      with.args = a;
      res = run_direct (&with, &src, error);
    } else
      *status = DG_PLUGIN_CANCEL;
  } else if (call->interactive) {
    res = run_dialog (call, &src, &prompt);
    if (!res)
      *status = DG_PLUGIN_CANCEL;
  } else {
    prompt = g_strdup (call->args.prompt);
    res = run_direct (call, &src, error);
    /* wrong arguments are the caller's; everything else is an execution error */
    if (!res && error && g_error_matches (*error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT))
      *status = DG_PLUGIN_CALLING_ERROR;
  }

  /* Expand Canvas: the canvas grows first (the layers move by left, top), all in one undo step */
  const gboolean expand = res && call->info->expand;
  if (expand)
    expand_canvas (call, &src, res);
  DgHostItem *layer = res ? apply_result (call, &src, res, prompt, error) : NULL;
  /* variations: each a layer of its own, above the first */
  for (guint i = 0; layer && res->variations && i < res->variations->len; i++)
    if (!apply_result (call, &src, g_ptr_array_index (res->variations, i), prompt, error))
      layer = NULL;
  if (expand)
    call->host->undo_group (call->image, FALSE);
  dg_task_result_free (res);
  source_clear (&src);
  if (!layer)
    return NULL;
  if (call->flush)
    call->host->displays_flush ();
  *status = DG_PLUGIN_SUCCESS;
  return layer;
}
