/* The DeepGen panel (dg_panel.h). */
#include "dg_panel.h"

#include <string.h>

#include "dg_gettext.h"
#include "dg_panel_preview.h"
#include "dg_panel_private.h"
#ifdef DEEPGEN_HAVE_DOWNLOAD
#include "dg_download.h"
#endif

/* The pixels a run works on. Refcounted: a run keeps them alive even when the front-end sets a
 * new source or destroys the panel while the worker thread is still reading them. */
typedef struct {
  gint ref;
  DgImage *source;
  DgMask *selection;
  int canvas_width, canvas_height;
} Input;

static Input *
input_ref (Input *in)
{
  g_atomic_int_inc (&in->ref);
  return in;
}

static void
input_unref (Input *in)
{
  if (in && g_atomic_int_dec_and_test (&in->ref)) {
    dg_image_free (in->source);
    dg_image_free (in->selection);
    g_free (in);
  }
}

struct _DgPanel {
  GtkBox parent;

  Input *input;
  DgTaskResult *result;
  GCancellable *cancellable; /* non-NULL while a run is in flight */
  gint64 last_seed;          /* -1 until a run has finished */
  gboolean in_process;       /* the "in-process" setting: not through the resident service */
  int live_step;             /* the step of the live preview shown now; 0 when none */
  char *message;             /* the error bar's text */

  GtkWidget *job_combo, *job_row;
  GtkWidget *prompt_label, *prompt_view;
  GtkWidget *steps_spin, *guidance_spin, *strength_label, *strength_scale;
  GtkWidget *seed_spin, *seed_random, *seed_reuse, *results_spin;
  GtkWidget *negative_entry, *policy_combo, *size_spin, *folder_entry;
  GtkWidget *region_label;
  /* the fit indicator: whether the job fits this GPU, from the memory plan (dg_task_fit) */
  GtkWidget *fit_label;
  enum { DEVICE_UNKNOWN, DEVICE_PROBING, DEVICE_KNOWN } device_state;
  guint64 device_bytes; /* 0 when there is no usable GPU (device_error says why) */
  char *device_name, *device_error;
  DgPlanModel *plan_model; /* of plan_folder's configs, else DeepGen 1.0's */
  char *plan_folder;
  GtkWidget *info_bar, *info_label;
  GtkWidget *progress_box, *progress_bar, *stop_button;
  GtkWidget *preview_frame, *preview_image, *preview_caption;
  GtkWidget *discard_button, *run_button, *apply_button;

  /* the model download (issue #12): offered while the model folder is missing or incomplete */
  GtkWidget *download_box, *download_label, *download_button;
  GtkWidget *download_progress, *download_bar, *download_pause;
  GCancellable *download_cancellable; /* non-NULL while a download runs */
};

G_DEFINE_TYPE (DgPanel, dg_panel, GTK_TYPE_BOX)

enum {
  PROP_0,
  PROP_JOB,
  PROP_JOB_SELECTABLE,
  PROP_PROMPT,
  PROP_NEGATIVE_PROMPT,
  PROP_STEPS,
  PROP_GUIDANCE,
  PROP_STRENGTH,
  PROP_SEED,
  PROP_SIZE_POLICY,
  PROP_MAX_SIZE,
  PROP_MODEL_FOLDER,
  PROP_N_RESULTS,
  PROP_BUSY,
  PROP_IN_PROCESS,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

enum { SIGNAL_APPLY, SIGNAL_FINISHED, SIGNAL_DOWNLOAD_FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];

#define PREVIEW_SIDE 320

/* ---- small helpers ---------------------------------------------------------------------- */

static DgJob
panel_job (DgPanel *self)
{
  DgJob job = DG_JOB_EDIT;
  dg_job_from_string (gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->job_combo)), &job);
  return job;
}

static DgSizePolicy
panel_policy (DgPanel *self)
{
  DgSizePolicy p = DG_SIZE_POLICY_FIT;
  dg_size_policy_from_string (gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->policy_combo)), &p);
  return p;
}

static gint64
panel_seed (DgPanel *self)
{
  if (gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->seed_random)))
    return DG_TASK_RANDOM_SEED;
  return (gint64) gtk_spin_button_get_value (GTK_SPIN_BUTTON (self->seed_spin));
}

char *
dg_panel_dup_prompt (DgPanel *self)
{
  g_return_val_if_fail (DG_IS_PANEL (self), NULL);
  GtkTextBuffer *buf = gtk_text_view_get_buffer (GTK_TEXT_VIEW (self->prompt_view));
  GtkTextIter a, b;
  gtk_text_buffer_get_bounds (buf, &a, &b);
  return gtk_text_buffer_get_text (buf, &a, &b, FALSE);
}

void
dg_panel_set_prompt (DgPanel *self, const char *prompt)
{
  g_return_if_fail (DG_IS_PANEL (self));
  gtk_text_buffer_set_text (gtk_text_view_get_buffer (GTK_TEXT_VIEW (self->prompt_view)), prompt ? prompt : "", -1);
}

void
dg_panel_get_spec (DgPanel *self, DgTaskSpec *spec, char ***strings)
{
  g_return_if_fail (DG_IS_PANEL (self));
  char **s = g_new0 (char *, 4);
  s[0] = dg_panel_dup_prompt (self);
  s[1] = g_strdup (gtk_entry_get_text (GTK_ENTRY (self->negative_entry)));
  *spec = (DgTaskSpec) DG_TASK_SPEC_INIT;
  spec->job = panel_job (self);
  spec->prompt = s[0];
  spec->negative_prompt = s[1];
  spec->steps = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->steps_spin));
  spec->guidance = gtk_spin_button_get_value (GTK_SPIN_BUTTON (self->guidance_spin));
  spec->strength = gtk_range_get_value (GTK_RANGE (self->strength_scale));
  spec->n_results = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->results_spin));
  spec->seed = panel_seed (self);
  spec->size_policy = panel_policy (self);
  spec->max_size = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->size_spin));
  if (self->input) {
    spec->source = self->input->source;
    spec->selection = self->input->selection;
    spec->canvas_width = self->input->canvas_width;
    spec->canvas_height = self->input->canvas_height;
  }
  *strings = s;
}

static void
show_message (DgPanel *self, GtkMessageType type, const char *text)
{
  g_free (self->message);
  self->message = g_strdup (text);
  gtk_info_bar_set_message_type (GTK_INFO_BAR (self->info_bar), type);
  gtk_label_set_text (GTK_LABEL (self->info_label), text);
  gtk_widget_show (self->info_bar);
}

static void
hide_message (DgPanel *self)
{
  g_clear_pointer (&self->message, g_free);
  gtk_widget_hide (self->info_bar);
}

const char *
dg_panel_get_message (DgPanel *self)
{
  g_return_val_if_fail (DG_IS_PANEL (self), NULL);
  return self->message;
}

/* ---- the fit indicator ------------------------------------------------------------------- */

typedef struct {
  guint64 bytes;
  char *name, *error;
} DeviceProbe;

static void
device_probe_free (gpointer data)
{
  DeviceProbe *p = data;
  g_free (p->name);
  g_free (p->error);
  g_free (p);
}

/* off the GUI thread: the first engine opens the Vulkan device */
static void
probe_device (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  DeviceProbe *p = g_new0 (DeviceProbe, 1);
  g_autoptr (GError) error = NULL;
  p->bytes = dg_task_device_bytes (&p->name, &error);
  if (!p->bytes)
    p->error = g_strdup (error ? error->message : _ ("The GPU reports no memory size."));
  g_task_return_pointer (task, p, device_probe_free);
}

static void update_fit (DgPanel *self);

static void
on_device_probed (GObject *source, GAsyncResult *res, gpointer data)
{
  DgPanel *self = DG_PANEL (source);
  DeviceProbe *p = g_task_propagate_pointer (G_TASK (res), NULL);
  self->device_state = DEVICE_KNOWN;
  self->device_bytes = p->bytes;
  self->device_name = g_steal_pointer (&p->name);
  self->device_error = g_steal_pointer (&p->error);
  device_probe_free (p);
  update_fit (self);
}

/* The architecture for the plan: the model folder's configs when they load, else DeepGen 1.0's
 * (the plan needs only configs). */
static const DgPlanModel *
plan_model (DgPanel *self)
{
  const char *typed = gtk_entry_get_text (GTK_ENTRY (self->folder_entry));
  g_autofree char *folder = typed && *typed ? g_strdup (typed) : dg_model_default_path ();
  if (!self->plan_model || g_strcmp0 (folder, self->plan_folder) != 0) {
    g_clear_pointer (&self->plan_model, dg_plan_model_free);
    self->plan_model = dg_plan_model_new_from_folder (folder, NULL);
    if (!self->plan_model)
      self->plan_model = dg_plan_model_new ();
    g_free (self->plan_folder);
    self->plan_folder = g_steal_pointer (&folder);
  }
  return self->plan_model;
}

/* Before Run, live as the settings change: whether the job fits this GPU and with which weights. */
static void
update_fit (DgPanel *self)
{
  GtkStyleContext *style = gtk_widget_get_style_context (self->fit_label);
  gtk_style_context_remove_class (style, GTK_STYLE_CLASS_ERROR);
  if (!self->input) {
    gtk_label_set_text (GTK_LABEL (self->fit_label), "");
    return;
  }
  if (self->device_state != DEVICE_KNOWN) {
    if (self->device_state == DEVICE_UNKNOWN) {
      self->device_state = DEVICE_PROBING;
      g_autoptr (GTask) task = g_task_new (self, NULL, on_device_probed, NULL);
      g_task_run_in_thread (task, probe_device);
    }
    gtk_label_set_text (GTK_LABEL (self->fit_label), _ ("Checking the GPU…"));
    return;
  }
  if (!self->device_bytes) {
    g_autofree char *text = g_strdup_printf (_ ("No usable GPU: %s"), self->device_error);
    gtk_label_set_text (GTK_LABEL (self->fit_label), text);
    gtk_style_context_add_class (style, GTK_STYLE_CLASS_ERROR);
    return;
  }
  g_auto (GStrv) strings = NULL;
  DgTaskSpec spec;
  dg_panel_get_spec (self, &spec, &strings);
  if (!spec.prompt || !*spec.prompt)
    spec.prompt = "-"; /* the plan does not depend on it */
  /* the plan counts the ticked reference layers, not their pixels: the source stands in for each */
  const guint n_refs = spec.source ? dg_panel_count_references (self) : 0;
  g_autofree const DgImage **stand_ins = g_new (const DgImage *, n_refs + 1);
  for (guint i = 0; i < n_refs; i++) stand_ins[i] = spec.source;
  spec.references = stand_ins;
  spec.n_references = n_refs;
  DgTaskFit fit;
  if (!dg_task_fit (&spec, plan_model (self), self->device_bytes, &fit, NULL)) {
    gtk_label_set_text (GTK_LABEL (self->fit_label), "");
    return;
  }
  g_autofree char *need = g_format_size_full (fit.required, G_FORMAT_SIZE_IEC_UNITS);
  g_autofree char *have = g_format_size_full (fit.device_bytes, G_FORMAT_SIZE_IEC_UNITS);
  g_autofree char *text = NULL;
  if (!fit.fits) {
    text = g_strdup_printf (_ ("Too large for this GPU: needs %s, it has %s. Lower the working size."), need, have);
    gtk_style_context_add_class (style, GTK_STYLE_CLASS_ERROR);
  } else if (fit.weights == DG_WEIGHTS_RELEASED)
    text = g_strdup_printf (_ ("Fits this GPU: needs %s of %s."), need, have);
  else if (fit.weights == DG_WEIGHTS_Q8_0)
    text = g_strdup_printf (_ ("Fits this GPU with 8-bit weights: needs %s of %s."), need, have);
  else
    text = g_strdup_printf (_ ("Fits this GPU with a 4-bit language model: needs %s of %s."), need, have);
  gtk_label_set_text (GTK_LABEL (self->fit_label), text);
  gtk_widget_set_tooltip_text (self->fit_label, self->device_name);
}

const char *
dg_panel_get_fit_text (DgPanel *self)
{
  g_return_val_if_fail (DG_IS_PANEL (self), NULL);
  return gtk_label_get_text (GTK_LABEL (self->fit_label));
}

/* What the region is and how large the model will work, below the settings. */
static void
update_region_label (DgPanel *self)
{
  g_auto (GStrv) strings = NULL;
  DgTaskSpec spec;
  dg_panel_get_spec (self, &spec, &strings);
  if (!spec.prompt || !*spec.prompt)
    spec.prompt = "-"; /* the region does not depend on it */
  int x, y, w, h;
  if (!self->input || !dg_task_region (&spec, &x, &y, &w, &h, NULL)) {
    gtk_label_set_text (GTK_LABEL (self->region_label), "");
    update_fit (self);
    return;
  }
  g_autofree char *text = NULL;
  if (self->input->selection)
    text = g_strdup_printf (_ ("Selection: %d×%d at (%d, %d)"), w, h, x, y);
  else
    text = spec.source ? g_strdup_printf (_ ("Whole layer: %d×%d"), w, h)
                       : g_strdup_printf (_ ("Whole canvas: %d×%d"), w, h);
  gtk_label_set_text (GTK_LABEL (self->region_label), text);
  update_fit (self);
}

static void
update_sensitivity (DgPanel *self)
{
  const gboolean busy = self->cancellable != NULL;
  const gboolean have = self->result != NULL;
  const gboolean downloading = self->download_cancellable != NULL;
  gtk_widget_set_sensitive (self->run_button, !busy && !downloading && !dg_panel_is_describing (self));
  gtk_widget_set_sensitive (self->folder_entry, !downloading);
  gtk_widget_set_sensitive (self->download_button, !busy);
  gtk_widget_set_sensitive (self->apply_button, !busy && have && dg_panel_count_picked (self) > 0);
  gtk_widget_set_sensitive (self->discard_button, !busy && have);
  gtk_widget_set_visible (self->progress_box, busy);
  gtk_widget_set_sensitive (self->seed_spin, !gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->seed_random)));
  gtk_widget_set_sensitive (self->seed_reuse, self->last_seed >= 0);
  gtk_widget_set_sensitive (self->size_spin, panel_policy (self) == DG_SIZE_POLICY_FIT);
  gtk_button_set_label (GTK_BUTTON (self->run_button), have ? _ ("Re_generate") : _ ("_Run"));

  const DgJob job = panel_job (self);
  gtk_label_set_text_with_mnemonic (GTK_LABEL (self->prompt_label),
                                    job == DG_JOB_GENERATE ? _ ("_Prompt") : _ ("_Instruction"));
  /* a new image has nothing to keep */
  gtk_widget_set_sensitive (self->strength_scale, job != DG_JOB_GENERATE);
  gtk_widget_set_sensitive (self->strength_label, job != DG_JOB_GENERATE);
  dg_panel_describe_sync (self, busy || downloading);
  dg_panel_references_sync (self, job, busy);
}

/* ---- preview ---------------------------------------------------------------------------- */

static void
pixels_free (guchar *pixels, gpointer data)
{
  dg_image_free (data);
}

/* A GdkPixbuf that shares a copy of @img (RGB or RGBA). */
static GdkPixbuf *
pixbuf_from_image (const DgImage *img)
{
  DgImage *copy = dg_image_copy (img);
  if (!copy)
    return NULL;
  return gdk_pixbuf_new_from_data (copy->pixels, GDK_COLORSPACE_RGB, copy->channels == 4, 8, copy->width, copy->height,
                                   copy->rowstride, pixels_free, copy);
}

static void
show_preview (DgPanel *self)
{
  dg_panel_picks_show (self, self->result);
  if (!self->result) {
    gtk_image_clear (GTK_IMAGE (self->preview_image));
    gtk_widget_hide (self->preview_frame);
    return;
  }
  const DgImage *img = self->result->image;
  g_autoptr (GdkPixbuf) full = pixbuf_from_image (img);
  if (!full)
    return;
  const double s = MIN (1.0, (double) PREVIEW_SIDE / MAX (img->width, img->height));
  g_autoptr (GdkPixbuf) small = gdk_pixbuf_scale_simple (full, MAX (1, (int) (img->width * s + 0.5)),
                                                         MAX (1, (int) (img->height * s + 0.5)), GDK_INTERP_BILINEAR);
  gtk_image_set_from_pixbuf (GTK_IMAGE (self->preview_image), small);
  g_autofree char *caption
      /* TRANSLATORS: the preview's caption: result size, its place, the seed, the model's working size */
      = g_strdup_printf (_ ("%d×%d at (%d, %d), seed %u, worked at %d×%d"), img->width, img->height, self->result->x,
                         self->result->y, (guint) self->result->seed, self->result->work_width,
                         self->result->work_height);
  if (self->result->weights == DG_WEIGHTS_Q8_0 || self->result->weights == DG_WEIGHTS_Q4_0) {
    /* TRANSLATORS: added to the preview's caption when the GPU was too small for the full weights */
    g_autofree char *more =
        g_strconcat (caption,
                     self->result->weights == DG_WEIGHTS_Q8_0 ? _ (", with 8-bit weights to fit the GPU")
                                                              : _ (", with a 4-bit language model to fit the GPU"),
                     NULL);
    g_free (caption);
    caption = g_steal_pointer (&more);
  }
  gtk_label_set_text (GTK_LABEL (self->preview_caption), caption);
  gtk_widget_show (self->preview_frame);
}

static void
clear_result (DgPanel *self)
{
  g_clear_pointer (&self->result, dg_task_result_free);
  show_preview (self);
  update_sensitivity (self);
}

const DgTaskResult *
dg_panel_get_result (DgPanel *self)
{
  g_return_val_if_fail (DG_IS_PANEL (self), NULL);
  return self->result;
}

DgTaskResult *
dg_panel_steal_result (DgPanel *self)
{
  g_return_val_if_fail (DG_IS_PANEL (self), NULL);
  DgTaskResult *r = g_steal_pointer (&self->result);
  show_preview (self);
  update_sensitivity (self);
  return r;
}

static void update_download_offer (DgPanel *self);

/* ---- the run (worker thread) ------------------------------------------------------------ */

typedef struct {
  DgTaskSpec spec;
  char **strings; /* owns spec's strings */
  char *model_folder;
  char *notice;          /* dg_task_run_default's: the service could not be had (once) */
  gboolean in_process;   /* the panel's setting */
  Input *input;          /* owns spec's images */
  GPtrArray *references; /* DgImage*: owns spec's references */
  GMainContext *context; /* the panel's main loop, for progress */
  DgPanel *panel;        /* a reference, only touched from the main loop */
} RunData;

static void
run_data_free (RunData *d)
{
  g_strfreev (d->strings);
  g_free (d->model_folder);
  g_free (d->notice);
  input_unref (d->input);
  if (d->references)
    g_ptr_array_unref (d->references);
  g_main_context_unref (d->context);
  g_object_unref (d->panel);
  g_free (d);
}

typedef struct {
  DgPanel *panel;
  GCancellable *cancellable; /* the run it belongs to: stale reports are dropped */
  int stage;                 /* DgStage, or -1 for "loading the model" */
  int step, n_steps;
  DgLivePreview *preview; /* NULL, or the estimate after denoising step @step */
} Progress;

static void
progress_free (Progress *p)
{
  dg_live_preview_free (p->preview);
  g_object_unref (p->panel);
  g_object_unref (p->cancellable);
  g_free (p);
}

static gboolean
progress_on_main (gpointer data)
{
  Progress *p = data;
  DgPanel *self = p->panel;
  if (self->cancellable != p->cancellable || g_cancellable_is_cancelled (p->cancellable))
    return G_SOURCE_REMOVE;
  g_autofree char *text = NULL;
  if (p->stage < 0)
    text = g_strdup (_ ("Loading the model…"));
  else
    text = dg_task_progress_text ((DgStage) p->stage, p->step, p->n_steps);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar), text);
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress_bar),
                                 p->stage < 0 ? 0.01
                                              : dg_task_progress_fraction ((DgStage) p->stage, p->step, p->n_steps));
  if (p->preview) {
    dg_live_preview_show (p->preview, GTK_IMAGE (self->preview_image), GTK_LABEL (self->preview_caption), PREVIEW_SIDE);
    gtk_widget_show (self->preview_frame);
    self->live_step = p->step;
  }
  return G_SOURCE_REMOVE;
}

typedef struct {
  RunData *data;
  GCancellable *cancellable;
} Reporter;

static void
report (Reporter *r, int stage, int step, int n, DgLivePreview *preview)
{
  Progress *p = g_new (Progress, 1);
  p->panel = g_object_ref (r->data->panel);
  p->cancellable = g_object_ref (r->cancellable);
  p->stage = stage, p->step = step, p->n_steps = n;
  p->preview = preview;
  g_main_context_invoke_full (r->data->context, G_PRIORITY_DEFAULT, progress_on_main, p,
                              (GDestroyNotify) progress_free);
}

static void
on_progress (DgStage stage, int step, int n_steps, gpointer user_data)
{
  report (user_data, (int) stage, step, n_steps, NULL);
}

static void
on_live_preview (const DgImage *rgb, int step, int n_steps, gpointer user_data)
{
  report (user_data, DG_STAGE_DENOISE, step, n_steps, dg_live_preview_new (rgb, step, n_steps));
}

static void
run_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  RunData *d = task_data;
  Reporter rep = { d, cancellable };
  GError *error = NULL;
  report (&rep, -1, 0, 0, NULL);
  DgTaskRunOptions o = DG_TASK_RUN_OPTIONS_INIT;
  o.model_folder = d->model_folder;
  o.in_process = d->in_process;
  o.progress = on_progress, o.preview = on_live_preview, o.user_data = &rep;
  DgTaskResult *res = dg_task_run_default (&o, &d->spec, cancellable, &error);
  d->notice = o.notice;
  if (res)
    g_task_return_pointer (task, res, (GDestroyNotify) dg_task_result_free);
  else
    g_task_return_error (task, error);
}

static void
run_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  DgPanel *self = DG_PANEL (source);
  GTask *task = G_TASK (result);
  GError *error = NULL;
  DgTaskResult *res = g_task_propagate_pointer (task, &error);
  /* A run whose panel has since started another (or was disposed) only cleans up. */
  if (g_task_get_cancellable (task) != self->cancellable) {
    dg_task_result_free (res);
    g_clear_error (&error);
    return;
  }
  g_clear_object (&self->cancellable);
  self->live_step = 0;
  if (res) {
    g_clear_pointer (&self->result, dg_task_result_free);
    self->result = res;
    self->last_seed = (gint64) res->seed;
    hide_message (self);
    show_preview (self);
    const RunData *d = g_task_get_task_data (task);
    if (d->notice)
      show_message (self, GTK_MESSAGE_INFO, d->notice);
  } else if (g_error_matches (error, DG_ERROR, DG_ERROR_CANCELLED) ||
             g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    show_message (self, GTK_MESSAGE_INFO, _ ("Cancelled."));
  else
    show_message (self, GTK_MESSAGE_ERROR, error->message);
  if (!res)
    show_preview (self); /* the result from before the run, not its last live preview */
  update_download_offer (self);
  update_sensitivity (self);
  g_signal_emit (self, signals[SIGNAL_FINISHED], 0, res != NULL);
  g_clear_error (&error);
}

void
dg_panel_run (DgPanel *self)
{
  g_return_if_fail (DG_IS_PANEL (self));
  if (self->cancellable || self->download_cancellable || dg_panel_is_describing (self))
    return;
  RunData *d = g_new0 (RunData, 1);
  dg_panel_get_spec (self, &d->spec, &d->strings);
  d->input = self->input ? input_ref (self->input) : NULL;
  d->model_folder = g_strdup (gtk_entry_get_text (GTK_ENTRY (self->folder_entry)));
  d->in_process = self->in_process;
  d->context = g_main_context_ref_thread_default ();
  d->panel = g_object_ref (self);

  GError *error = NULL;
  d->references = dg_panel_references_read (self, &error);
  if (d->references) {
    d->spec.references = (const DgImage *const *) d->references->pdata;
    d->spec.n_references = d->references->len;
  }
  if (!d->references || !dg_task_check (&d->spec, &error)) {
    /* Wrong settings are reported at once, without a thread. */
    show_message (self, GTK_MESSAGE_WARNING, error->message);
    g_error_free (error);
    run_data_free (d);
    g_signal_emit (self, signals[SIGNAL_FINISHED], 0, FALSE);
    return;
  }
  hide_message (self);
  self->cancellable = g_cancellable_new ();
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress_bar), 0.0);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar), _ ("Starting…"));
  update_sensitivity (self);

  g_autoptr (GTask) task = g_task_new (self, self->cancellable, run_done, NULL);
  g_task_set_source_tag (task, dg_panel_run);
  g_task_set_task_data (task, d, (GDestroyNotify) run_data_free);
  /* dg_run checks the cancellable itself between GPU submissions. */
  g_task_set_return_on_cancel (task, FALSE);
  g_task_run_in_thread (task, run_thread);
}

void
dg_panel_cancel (DgPanel *self)
{
  g_return_if_fail (DG_IS_PANEL (self));
  if (self->cancellable) {
    g_cancellable_cancel (self->cancellable);
    gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar), _ ("Cancelling…"));
    gtk_widget_set_sensitive (self->stop_button, FALSE);
  }
}

int
dg_panel_get_live_step (DgPanel *self)
{
  g_return_val_if_fail (DG_IS_PANEL (self), 0);
  return self->live_step;
}

gboolean
dg_panel_is_busy (DgPanel *self)
{
  g_return_val_if_fail (DG_IS_PANEL (self), FALSE);
  return self->cancellable != NULL;
}

void
dg_panel_apply (DgPanel *self)
{
  g_return_if_fail (DG_IS_PANEL (self));
  if (!self->result || self->cancellable || dg_panel_count_picked (self) == 0)
    return;
  /* variations: only the picked ones go (the strip then shows those) */
  if (self->result->variations) {
    self->result = dg_panel_picks_take (self, self->result);
    show_preview (self);
    update_sensitivity (self);
  }
  g_signal_emit (self, signals[SIGNAL_APPLY], 0, self->result);
}

void
dg_panel_set_source (DgPanel *self, DgImage *source, DgMask *selection, int canvas_width, int canvas_height)
{
  g_return_if_fail (DG_IS_PANEL (self));
  dg_panel_cancel (self);
  g_clear_object (&self->cancellable);
  dg_panel_cancel_describe (self); /* its text would be of the old source */
  input_unref (self->input);
  self->input = g_new0 (Input, 1);
  self->input->ref = 1;
  self->input->source = source;
  self->input->selection = selection;
  self->input->canvas_width = source ? source->width : canvas_width;
  self->input->canvas_height = source ? source->height : canvas_height;
  clear_result (self);
  hide_message (self);
  update_region_label (self);
}

/* ---- the model download (issue #12) ------------------------------------------------------- */

#ifdef DEEPGEN_HAVE_DOWNLOAD
/* The folder a run opens: the field, else the default (dg_task_model_acquire's rule). */
static char *
panel_model_folder (DgPanel *self)
{
  const char *f = gtk_entry_get_text (GTK_ENTRY (self->folder_entry));
  return f && *f ? g_strdup (f) : dg_model_default_path ();
}
#endif

gboolean
dg_panel_is_downloading (DgPanel *self)
{
  g_return_val_if_fail (DG_IS_PANEL (self), FALSE);
  return self->download_cancellable != NULL;
}

gboolean
dg_panel_offers_download (DgPanel *self)
{
  g_return_val_if_fail (DG_IS_PANEL (self), FALSE);
  return gtk_widget_get_visible (self->download_box) && gtk_widget_get_visible (self->download_button);
}

/* Shows the download offer when the model folder is missing or incomplete, with "Resume" when
 * an earlier download left partial files; hides it when the folder is complete. */
static void
update_download_offer (DgPanel *self)
{
#ifdef DEEPGEN_HAVE_DOWNLOAD
  if (self->download_cancellable) {
    gtk_widget_show (self->download_box);
    gtk_widget_hide (self->download_button);
    gtk_widget_show (self->download_progress);
    return;
  }
  g_autofree char *folder = panel_model_folder (self);
  g_autofree char *missing = dg_model_folder_missing (folder);
  if (!missing) {
    gtk_widget_hide (self->download_box);
    return;
  }
  g_autofree char *display = g_filename_display_name (folder);
  const guint64 partial = dg_download_partial_bytes (folder);
  g_autofree char *text = NULL, *button = NULL;
  if (partial > 0) {
    g_autofree char *size = g_format_size (partial);
    text = g_strdup_printf (_ ("The download of the DeepGen model into %s stopped with %s fetched. It continues "
                               "where it stopped."),
                            display, size);
    button = g_strdup (_ ("_Resume the download"));
  } else {
    g_autofree char *size = g_format_size (DG_DOWNLOAD_MODEL_BYTES);
    text = g_file_test (folder, G_FILE_TEST_IS_DIR)
               ? g_strdup_printf (_ ("The DeepGen model folder %s is incomplete."), display)
               : g_strdup_printf (_ ("The DeepGen model is not installed (%s)."), display);
    /* TRANSLATORS: the button that downloads the model; %s is its size, "14.4 GB" */
    button = g_strdup_printf (_ ("_Download the model (%s)"), size);
  }
  gtk_label_set_text (GTK_LABEL (self->download_label), text);
  gtk_button_set_label (GTK_BUTTON (self->download_button), button);
  gtk_widget_show (self->download_box);
  gtk_widget_show (self->download_button);
  gtk_widget_hide (self->download_progress);
#else
  gtk_widget_hide (self->download_box);
#endif
}

#ifdef DEEPGEN_HAVE_DOWNLOAD
typedef struct {
  char *folder; /* the field's text, as a run passes it to dg_task_model_acquire */
  char *path;   /* the folder itself */
  GMainContext *context;
  DgPanel *panel; /* a reference, only touched from the main loop */
  GCancellable *cancellable;
} DownloadData;

static void
download_data_free (DownloadData *d)
{
  g_free (d->folder);
  g_free (d->path);
  g_main_context_unref (d->context);
  g_object_unref (d->panel);
  g_object_unref (d->cancellable);
  g_free (d);
}

typedef struct {
  DgPanel *panel;
  GCancellable *cancellable;
  double fraction;
  char *text;
} DownloadProgress;

static void
download_progress_free (DownloadProgress *p)
{
  g_object_unref (p->panel);
  g_object_unref (p->cancellable);
  g_free (p->text);
  g_free (p);
}

static gboolean
download_progress_on_main (gpointer data)
{
  DownloadProgress *p = data;
  DgPanel *self = p->panel;
  if (self->download_cancellable != p->cancellable || g_cancellable_is_cancelled (p->cancellable))
    return G_SOURCE_REMOVE;
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->download_bar), p->fraction);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->download_bar), p->text);
  return G_SOURCE_REMOVE;
}

static void
on_download_progress (const DgDownloadProgress *progress, gpointer user_data)
{
  DownloadData *d = user_data;
  DownloadProgress *p = g_new0 (DownloadProgress, 1);
  p->panel = g_object_ref (d->panel);
  p->cancellable = g_object_ref (d->cancellable);
  p->fraction = progress->total_bytes ? (double) progress->done_bytes / (double) progress->total_bytes : 0.0;
  p->text = dg_download_progress_text (progress);
  g_main_context_invoke_full (d->context, G_PRIORITY_DEFAULT, download_progress_on_main, p,
                              (GDestroyNotify) download_progress_free);
}

static void
download_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  DownloadData *d = task_data;
  DgDownloadOptions o = DG_DOWNLOAD_OPTIONS_INIT;
  o.progress = on_download_progress;
  o.user_data = d;
  GError *error = NULL;
  if (!dg_download_model (d->path, &o, cancellable, NULL, &error)) {
    g_task_return_error (task, error);
    return;
  }
  /* every file matches its hash; now the folder as a run opens it (dg_model_open), which also
   * warms the model for the first run */
  DgModel *model = dg_task_model_acquire (d->folder, &error);
  if (!model) {
    g_task_return_error (task, error);
    return;
  }
  dg_task_model_release (model);
  g_task_return_boolean (task, TRUE);
}

static void
download_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  DgPanel *self = DG_PANEL (source);
  GTask *task = G_TASK (result);
  GError *error = NULL;
  const gboolean ok = g_task_propagate_boolean (task, &error);
  if (g_task_get_cancellable (task) != self->download_cancellable) {
    g_clear_error (&error);
    return;
  }
  g_clear_object (&self->download_cancellable);
  gtk_widget_set_sensitive (self->download_pause, TRUE);
  if (ok)
    show_message (self, GTK_MESSAGE_INFO, _ ("The model is downloaded, verified and ready."));
  else if (g_error_matches (error, DG_ERROR, DG_ERROR_CANCELLED) ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    show_message (self, GTK_MESSAGE_INFO,
                  _ ("The download is paused. Resume it at any time, also after closing this window."));
  else
    show_message (self, GTK_MESSAGE_ERROR, error->message);
  update_download_offer (self);
  update_sensitivity (self);
  g_signal_emit (self, signals[SIGNAL_DOWNLOAD_FINISHED], 0, ok);
  g_clear_error (&error);
}
#endif

void
dg_panel_download (DgPanel *self)
{
  g_return_if_fail (DG_IS_PANEL (self));
#ifdef DEEPGEN_HAVE_DOWNLOAD
  if (self->download_cancellable || self->cancellable)
    return;
  DownloadData *d = g_new0 (DownloadData, 1);
  d->folder = g_strdup (gtk_entry_get_text (GTK_ENTRY (self->folder_entry)));
  d->path = panel_model_folder (self);
  d->context = g_main_context_ref_thread_default ();
  d->panel = g_object_ref (self);
  self->download_cancellable = g_cancellable_new ();
  d->cancellable = g_object_ref (self->download_cancellable);
  hide_message (self);
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->download_bar), 0.0);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->download_bar), _ ("Asking the server for the file list…"));
  g_autofree char *display = g_filename_display_name (d->path);
  g_autofree char *text = g_strdup_printf (_ ("Downloading the DeepGen model into %s…"), display);
  gtk_label_set_text (GTK_LABEL (self->download_label), text);
  update_download_offer (self);
  update_sensitivity (self);

  g_autoptr (GTask) task = g_task_new (self, self->download_cancellable, download_done, NULL);
  g_task_set_source_tag (task, dg_panel_download);
  g_task_set_task_data (task, d, (GDestroyNotify) download_data_free);
  g_task_set_return_on_cancel (task, FALSE); /* the download stops at once by itself */
  g_task_run_in_thread (task, download_thread);
#endif
}

void
dg_panel_pause_download (DgPanel *self)
{
  g_return_if_fail (DG_IS_PANEL (self));
  if (self->download_cancellable) {
    g_cancellable_cancel (self->download_cancellable);
    gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->download_bar), _ ("Pausing…"));
    gtk_widget_set_sensitive (self->download_pause, FALSE);
  }
}

static void
on_download_clicked (GtkButton *b, DgPanel *self)
{
  dg_panel_download (self);
}

static void
on_pause_clicked (GtkButton *b, DgPanel *self)
{
  dg_panel_pause_download (self);
}

static void
on_folder_changed (GtkEditable *e, DgPanel *self)
{
  update_download_offer (self);
  update_fit (self);
}

/* ---- signal handlers -------------------------------------------------------------------- */

static void
on_run_clicked (GtkButton *b, DgPanel *self)
{
  dg_panel_run (self);
}

static void
on_stop_clicked (GtkButton *b, DgPanel *self)
{
  dg_panel_cancel (self);
}

static void
on_apply_clicked (GtkButton *b, DgPanel *self)
{
  dg_panel_apply (self);
}

static void
on_discard_clicked (GtkButton *b, DgPanel *self)
{
  clear_result (self);
}

static void
on_reuse_clicked (GtkButton *b, DgPanel *self)
{
  if (self->last_seed < 0)
    return;
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->seed_random), FALSE);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->seed_spin), (double) self->last_seed);
}

static void
on_setting_changed (GtkWidget *w, DgPanel *self)
{
  update_sensitivity (self);
  update_region_label (self);
}

/* The user changed a field: its property changed too, so that g_object_bind_property (the GIMP 3
 * plug-in binds its procedure config) and "notify" follow edits, not only g_object_set. */
static void
on_field_changed (GObject *field, DgPanel *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), g_object_get_data (field, "dg-panel-prop"));
}

static void
notify_on (DgPanel *self, gpointer field, const char *signal, guint prop)
{
  g_object_set_data (G_OBJECT (field), "dg-panel-prop", props[prop]);
  g_signal_connect_object (field, signal, G_CALLBACK (on_field_changed), self, 0);
}

static void
on_info_response (GtkInfoBar *bar, int response, DgPanel *self)
{
  hide_message (self);
}

static void
on_browse_clicked (GtkButton *b, DgPanel *self)
{
  GtkWidget *top = gtk_widget_get_toplevel (GTK_WIDGET (self));
  GtkFileChooserNative *chooser =
      gtk_file_chooser_native_new (_ ("Choose the DeepGen model folder"), GTK_IS_WINDOW (top) ? GTK_WINDOW (top) : NULL,
                                   GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _ ("_Select"), _ ("_Cancel"));
  const char *cur = gtk_entry_get_text (GTK_ENTRY (self->folder_entry));
  if (cur && *cur)
    gtk_file_chooser_set_filename (GTK_FILE_CHOOSER (chooser), cur);
  if (gtk_native_dialog_run (GTK_NATIVE_DIALOG (chooser)) == GTK_RESPONSE_ACCEPT) {
    g_autofree char *path = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));
    gtk_entry_set_text (GTK_ENTRY (self->folder_entry), path ? path : "");
  }
  g_object_unref (chooser);
}

/* ---- construction ----------------------------------------------------------------------- */

static GtkWidget *
label_for (const char *text, GtkWidget *mnemonic_widget)
{
  GtkWidget *l = gtk_label_new_with_mnemonic (text);
  gtk_label_set_xalign (GTK_LABEL (l), 0.0);
  if (mnemonic_widget)
    gtk_label_set_mnemonic_widget (GTK_LABEL (l), mnemonic_widget);
  return l;
}

static void
dg_panel_init (DgPanel *self)
{
  self->last_seed = -1;
  GtkBox *box = GTK_BOX (self);
  gtk_orientable_set_orientation (GTK_ORIENTABLE (self), GTK_ORIENTATION_VERTICAL);
  gtk_box_set_spacing (box, 8);
  gtk_container_set_border_width (GTK_CONTAINER (self), 8);

  /* error / information bar, in place */
  self->info_bar = gtk_info_bar_new ();
  gtk_info_bar_set_show_close_button (GTK_INFO_BAR (self->info_bar), TRUE);
  self->info_label = gtk_label_new ("");
  gtk_label_set_line_wrap (GTK_LABEL (self->info_label), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (self->info_label), 50);
  gtk_label_set_selectable (GTK_LABEL (self->info_label), TRUE);
  gtk_label_set_xalign (GTK_LABEL (self->info_label), 0.0);
  gtk_container_add (GTK_CONTAINER (gtk_info_bar_get_content_area (GTK_INFO_BAR (self->info_bar))), self->info_label);
  /* shown here: no_show_all below keeps gtk_widget_show_all out of the whole bar, label included */
  gtk_widget_show (self->info_label);
  g_signal_connect (self->info_bar, "response", G_CALLBACK (on_info_response), self);
  gtk_box_pack_start (box, self->info_bar, FALSE, FALSE, 0);
  gtk_widget_set_no_show_all (self->info_bar, TRUE);

  /* the model download, offered while the model folder is missing or incomplete */
  self->download_box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  self->download_label = gtk_label_new ("");
  gtk_label_set_line_wrap (GTK_LABEL (self->download_label), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (self->download_label), 50);
  gtk_label_set_xalign (GTK_LABEL (self->download_label), 0.0);
  gtk_box_pack_start (GTK_BOX (self->download_box), self->download_label, FALSE, FALSE, 0);
  self->download_button = gtk_button_new_with_mnemonic (_ ("_Download the model"));
  gtk_widget_set_tooltip_text (self->download_button,
                               _ ("Fetch DeepGen-1.0-diffusers from Hugging Face into the model folder. Every file is "
                                  "verified; a paused or interrupted download continues where it stopped."));
  gtk_widget_set_halign (self->download_button, GTK_ALIGN_START);
  gtk_style_context_add_class (gtk_widget_get_style_context (self->download_button), GTK_STYLE_CLASS_SUGGESTED_ACTION);
  g_signal_connect (self->download_button, "clicked", G_CALLBACK (on_download_clicked), self);
  gtk_box_pack_start (GTK_BOX (self->download_box), self->download_button, FALSE, FALSE, 0);
  self->download_progress = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->download_bar = gtk_progress_bar_new ();
  gtk_progress_bar_set_show_text (GTK_PROGRESS_BAR (self->download_bar), TRUE);
  gtk_widget_set_valign (self->download_bar, GTK_ALIGN_CENTER);
  self->download_pause = gtk_button_new_with_mnemonic (_ ("_Pause"));
  gtk_widget_set_tooltip_text (self->download_pause,
                               _ ("Stop the download; Resume continues where it stopped, also after a restart."));
  g_signal_connect (self->download_pause, "clicked", G_CALLBACK (on_pause_clicked), self);
  gtk_box_pack_start (GTK_BOX (self->download_progress), self->download_bar, TRUE, TRUE, 0);
  gtk_box_pack_start (GTK_BOX (self->download_progress), self->download_pause, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (self->download_box), self->download_progress, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (self->download_box), gtk_separator_new (GTK_ORIENTATION_HORIZONTAL), FALSE, FALSE, 0);
  gtk_box_pack_start (box, self->download_box, FALSE, FALSE, 0);
  gtk_widget_show_all (self->download_box);
  gtk_widget_set_no_show_all (self->download_box, TRUE);
  gtk_widget_set_no_show_all (self->download_button, TRUE);
  gtk_widget_set_no_show_all (self->download_progress, TRUE);
  gtk_widget_hide (self->download_box);

  GtkWidget *grid = gtk_grid_new ();
  gtk_grid_set_row_spacing (GTK_GRID (grid), 6);
  gtk_grid_set_column_spacing (GTK_GRID (grid), 8);
  gtk_box_pack_start (box, grid, FALSE, FALSE, 0);
  int row = 0;
  gtk_grid_attach (GTK_GRID (grid), dg_panel_rerun_row_new (self), 0, row++, 3, 1);

  /* job */
  self->job_combo = gtk_combo_box_text_new ();
  gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->job_combo), "edit", _ ("Edit with instruction"));
  gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->job_combo), "generate", _ ("Generate from prompt"));
  gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->job_combo), "inpaint", _ ("Inpaint selection"));
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->job_combo), "edit");
  self->job_row = label_for (_ ("_Job"), self->job_combo);
  gtk_grid_attach (GTK_GRID (grid), self->job_row, 0, row, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), self->job_combo, 1, row++, 2, 1);

  /* prompt */
  self->prompt_view = gtk_text_view_new ();
  gtk_text_view_set_wrap_mode (GTK_TEXT_VIEW (self->prompt_view), GTK_WRAP_WORD_CHAR);
  gtk_text_view_set_accepts_tab (GTK_TEXT_VIEW (self->prompt_view), FALSE);
  GtkWidget *scroll = gtk_scrolled_window_new (NULL, NULL);
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_shadow_type (GTK_SCROLLED_WINDOW (scroll), GTK_SHADOW_IN);
  gtk_scrolled_window_set_min_content_height (GTK_SCROLLED_WINDOW (scroll), 80);
  gtk_container_add (GTK_CONTAINER (scroll), self->prompt_view);
  gtk_widget_set_hexpand (scroll, TRUE);
  self->prompt_label = label_for (_ ("_Instruction"), self->prompt_view);
  gtk_widget_set_valign (self->prompt_label, GTK_ALIGN_START);
  gtk_grid_attach (GTK_GRID (grid), self->prompt_label, 0, row, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), scroll, 1, row++, 2, 1);
  gtk_grid_attach (GTK_GRID (grid), dg_panel_describe_row_new (self), 1, row++, 2, 1);

  /* steps, guidance */
  self->steps_spin = gtk_spin_button_new_with_range (1, DG_TASK_MAX_STEPS, 1);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->steps_spin), DG_TASK_DEFAULT_STEPS);
  gtk_widget_set_tooltip_text (self->steps_spin,
                               _ ("Denoising steps: more is slower and usually cleaner (default 50)."));
  gtk_grid_attach (GTK_GRID (grid), label_for (_ ("_Steps"), self->steps_spin), 0, row, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), self->steps_spin, 1, row++, 1, 1);

  self->guidance_spin = gtk_spin_button_new_with_range (0, DG_TASK_MAX_GUIDANCE, 0.5);
  gtk_spin_button_set_digits (GTK_SPIN_BUTTON (self->guidance_spin), 1);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->guidance_spin), DG_TASK_DEFAULT_GUIDANCE);
  gtk_widget_set_tooltip_text (self->guidance_spin,
                               _ ("How strongly the result follows the prompt (default 4; 1 or less turns it off)."));
  gtk_grid_attach (GTK_GRID (grid), label_for (_ ("_Guidance"), self->guidance_spin), 0, row, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), self->guidance_spin, 1, row++, 1, 1);

  /* change strength (edit and inpaint): 0 would run no step, so the scale starts above it */
  self->strength_scale = gtk_scale_new_with_range (GTK_ORIENTATION_HORIZONTAL, 0.05, 1.0, 0.05);
  gtk_scale_set_digits (GTK_SCALE (self->strength_scale), 2);
  gtk_scale_set_value_pos (GTK_SCALE (self->strength_scale), GTK_POS_RIGHT);
  gtk_range_set_value (GTK_RANGE (self->strength_scale), 1.0);
  gtk_widget_set_hexpand (self->strength_scale, TRUE);
  gtk_widget_set_tooltip_text (self->strength_scale,
                               _ ("How much may change: 1 follows the instruction freely; smaller values start "
                                  "from the image and keep its composition (edit and inpaint)."));
  self->strength_label = label_for (_ ("Change s_trength"), self->strength_scale);
  gtk_grid_attach (GTK_GRID (grid), self->strength_label, 0, row, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), self->strength_scale, 1, row++, 2, 1);

  /* seed */
  self->seed_spin = gtk_spin_button_new_with_range (0, G_MAXINT32, 1);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->seed_spin), 42);
  self->seed_random = gtk_check_button_new_with_mnemonic (_ ("Ra_ndom"));
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->seed_random), TRUE);
  self->seed_reuse = gtk_button_new_with_mnemonic (_ ("Reuse _last"));
  gtk_widget_set_tooltip_text (self->seed_reuse, _ ("Use the seed of the last result again."));
  GtkWidget *seed_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_box_pack_start (GTK_BOX (seed_box), self->seed_spin, TRUE, TRUE, 0);
  gtk_box_pack_start (GTK_BOX (seed_box), self->seed_random, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (seed_box), self->seed_reuse, FALSE, FALSE, 0);
  gtk_grid_attach (GTK_GRID (grid), label_for (_ ("S_eed"), self->seed_spin), 0, row, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), seed_box, 1, row++, 2, 1);

  /* variations: one batch, consecutive seeds */
  self->results_spin = gtk_spin_button_new_with_range (1, DG_TASK_MAX_RESULTS, 1);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->results_spin), 1);
  gtk_widget_set_tooltip_text (self->results_spin, _ ("How many results to make at once, with consecutive seeds; "
                                                      "you pick the ones to keep. More take longer and more GPU "
                                                      "memory."));
  gtk_grid_attach (GTK_GRID (grid), label_for (_ ("N_umber of results"), self->results_spin), 0, row, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), self->results_spin, 1, row++, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), dg_panel_references_new (self), 0, row++, 3, 1);

  /* advanced */
  GtkWidget *expander = gtk_expander_new_with_mnemonic (_ ("_Advanced"));
  GtkWidget *adv = gtk_grid_new ();
  gtk_grid_set_row_spacing (GTK_GRID (adv), 6);
  gtk_grid_set_column_spacing (GTK_GRID (adv), 8);
  gtk_widget_set_margin_top (adv, 6);
  gtk_container_add (GTK_CONTAINER (expander), adv);
  gtk_grid_attach (GTK_GRID (grid), expander, 0, row++, 3, 1);
  int arow = 0;

  self->negative_entry = gtk_entry_new ();
  gtk_entry_set_placeholder_text (GTK_ENTRY (self->negative_entry), _ ("The model's default"));
  gtk_widget_set_hexpand (self->negative_entry, TRUE);
  gtk_grid_attach (GTK_GRID (adv), label_for (_ ("_Negative prompt"), self->negative_entry), 0, arow, 1, 1);
  gtk_grid_attach (GTK_GRID (adv), self->negative_entry, 1, arow++, 2, 1);

  self->policy_combo = gtk_combo_box_text_new ();
  gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->policy_combo), "fit", _ ("Working size (fast)"));
  gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->policy_combo), "region", _ ("The region's own size (slow)"));
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->policy_combo), "fit");
  gtk_grid_attach (GTK_GRID (adv), label_for (_ ("Output si_ze"), self->policy_combo), 0, arow, 1, 1);
  gtk_grid_attach (GTK_GRID (adv), self->policy_combo, 1, arow++, 2, 1);

  self->size_spin = gtk_spin_button_new_with_range (DG_TASK_MIN_SIZE, DG_TASK_MAX_SIZE, 16);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->size_spin), DG_TASK_DEFAULT_MAX_SIZE);
  gtk_widget_set_tooltip_text (self->size_spin, _ ("The longer side the model works at; the result is scaled to "
                                                   "the region. DeepGen is trained near 512."));
  gtk_grid_attach (GTK_GRID (adv), label_for (_ ("_Working size"), self->size_spin), 0, arow, 1, 1);
  gtk_grid_attach (GTK_GRID (adv), self->size_spin, 1, arow++, 1, 1);

  self->folder_entry = gtk_entry_new ();
  gtk_entry_set_placeholder_text (GTK_ENTRY (self->folder_entry), _ ("The default model folder"));
  gtk_widget_set_hexpand (self->folder_entry, TRUE);
  GtkWidget *browse = gtk_button_new_with_mnemonic (_ ("_Browse…"));
  g_signal_connect (browse, "clicked", G_CALLBACK (on_browse_clicked), self);
  gtk_grid_attach (GTK_GRID (adv), label_for (_ ("_Model folder"), self->folder_entry), 0, arow, 1, 1);
  gtk_grid_attach (GTK_GRID (adv), self->folder_entry, 1, arow, 1, 1);
  gtk_grid_attach (GTK_GRID (adv), browse, 2, arow++, 1, 1);
  g_signal_connect (self->folder_entry, "changed", G_CALLBACK (on_folder_changed), self);

  self->region_label = gtk_label_new ("");
  gtk_label_set_xalign (GTK_LABEL (self->region_label), 0.0);
  gtk_style_context_add_class (gtk_widget_get_style_context (self->region_label), GTK_STYLE_CLASS_DIM_LABEL);
  gtk_grid_attach (GTK_GRID (grid), self->region_label, 0, row++, 3, 1);
  self->fit_label = gtk_label_new ("");
  gtk_label_set_xalign (GTK_LABEL (self->fit_label), 0.0);
  gtk_label_set_line_wrap (GTK_LABEL (self->fit_label), TRUE);
  gtk_grid_attach (GTK_GRID (grid), self->fit_label, 0, row++, 3, 1);

  /* preview */
  self->preview_frame = gtk_frame_new (_ ("Preview"));
  GtkWidget *pbox = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  gtk_container_set_border_width (GTK_CONTAINER (pbox), 6);
  self->preview_image = gtk_image_new ();
  self->preview_caption = gtk_label_new ("");
  gtk_style_context_add_class (gtk_widget_get_style_context (self->preview_caption), GTK_STYLE_CLASS_DIM_LABEL);
  gtk_label_set_line_wrap (GTK_LABEL (self->preview_caption), TRUE);
  gtk_box_pack_start (GTK_BOX (pbox), self->preview_image, TRUE, TRUE, 0);
  gtk_box_pack_start (GTK_BOX (pbox), self->preview_caption, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (pbox), dg_panel_picks_new (self), FALSE, FALSE, 0);
  gtk_container_add (GTK_CONTAINER (self->preview_frame), pbox);
  gtk_box_pack_start (box, self->preview_frame, TRUE, TRUE, 0);
  gtk_widget_show_all (self->preview_frame);
  gtk_widget_set_no_show_all (self->preview_frame, TRUE);
  gtk_widget_hide (self->preview_frame);

  /* progress */
  self->progress_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->progress_bar = gtk_progress_bar_new ();
  gtk_progress_bar_set_show_text (GTK_PROGRESS_BAR (self->progress_bar), TRUE);
  gtk_widget_set_valign (self->progress_bar, GTK_ALIGN_CENTER);
  self->stop_button = gtk_button_new_with_mnemonic (_ ("_Stop"));
  gtk_widget_set_tooltip_text (self->stop_button, _ ("Cancel the running job."));
  g_signal_connect (self->stop_button, "clicked", G_CALLBACK (on_stop_clicked), self);
  gtk_box_pack_start (GTK_BOX (self->progress_box), self->progress_bar, TRUE, TRUE, 0);
  gtk_box_pack_start (GTK_BOX (self->progress_box), self->stop_button, FALSE, FALSE, 0);
  gtk_box_pack_start (box, self->progress_box, FALSE, FALSE, 0);
  gtk_widget_show_all (self->progress_box);
  gtk_widget_set_no_show_all (self->progress_box, TRUE);
  gtk_widget_hide (self->progress_box);

  /* actions */
  GtkWidget *actions = gtk_button_box_new (GTK_ORIENTATION_HORIZONTAL);
  gtk_button_box_set_layout (GTK_BUTTON_BOX (actions), GTK_BUTTONBOX_END);
  gtk_box_set_spacing (GTK_BOX (actions), 6);
  self->discard_button = gtk_button_new_with_mnemonic (_ ("_Discard"));
  gtk_widget_set_tooltip_text (self->discard_button, _ ("Drop this result."));
  self->run_button = gtk_button_new_with_mnemonic (_ ("_Run"));
  self->apply_button = gtk_button_new_with_mnemonic (_ ("_Apply"));
  gtk_style_context_add_class (gtk_widget_get_style_context (self->apply_button), GTK_STYLE_CLASS_SUGGESTED_ACTION);
  gtk_container_add (GTK_CONTAINER (actions), self->discard_button);
  gtk_container_add (GTK_CONTAINER (actions), self->run_button);
  gtk_container_add (GTK_CONTAINER (actions), self->apply_button);
  gtk_box_pack_end (box, actions, FALSE, FALSE, 0);
  g_signal_connect (self->run_button, "clicked", G_CALLBACK (on_run_clicked), self);
  g_signal_connect (self->apply_button, "clicked", G_CALLBACK (on_apply_clicked), self);
  g_signal_connect (self->discard_button, "clicked", G_CALLBACK (on_discard_clicked), self);
  g_signal_connect (self->seed_reuse, "clicked", G_CALLBACK (on_reuse_clicked), self);

  g_signal_connect (self->job_combo, "changed", G_CALLBACK (on_setting_changed), self);
  g_signal_connect (self->policy_combo, "changed", G_CALLBACK (on_setting_changed), self);
  g_signal_connect (self->size_spin, "value-changed", G_CALLBACK (on_setting_changed), self);
  g_signal_connect_swapped (self->guidance_spin, "value-changed", G_CALLBACK (update_fit), self);
  g_signal_connect_swapped (self->results_spin, "value-changed", G_CALLBACK (update_fit), self);
  g_signal_connect (self->seed_random, "toggled", G_CALLBACK (on_setting_changed), self);
  notify_on (self, self->job_combo, "changed", PROP_JOB);
  notify_on (self, gtk_text_view_get_buffer (GTK_TEXT_VIEW (self->prompt_view)), "changed", PROP_PROMPT);
  notify_on (self, self->negative_entry, "changed", PROP_NEGATIVE_PROMPT);
  notify_on (self, self->steps_spin, "value-changed", PROP_STEPS);
  notify_on (self, self->guidance_spin, "value-changed", PROP_GUIDANCE);
  notify_on (self, self->strength_scale, "value-changed", PROP_STRENGTH);
  notify_on (self, self->seed_spin, "value-changed", PROP_SEED);
  notify_on (self, self->seed_random, "toggled", PROP_SEED);
  notify_on (self, self->policy_combo, "changed", PROP_SIZE_POLICY);
  notify_on (self, self->size_spin, "value-changed", PROP_MAX_SIZE);
  notify_on (self, self->folder_entry, "changed", PROP_MODEL_FOLDER);
  notify_on (self, self->results_spin, "value-changed", PROP_N_RESULTS);

  gtk_widget_show_all (grid);
  gtk_widget_show_all (actions);
  update_sensitivity (self);
  update_download_offer (self);
}

/* ---- GObject ---------------------------------------------------------------------------- */

static void
dg_panel_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  DgPanel *self = DG_PANEL (object);
  switch (id) {
  case PROP_JOB: g_value_set_int (value, panel_job (self)); break;
  case PROP_JOB_SELECTABLE: g_value_set_boolean (value, gtk_widget_get_visible (self->job_combo)); break;
  case PROP_PROMPT: g_value_take_string (value, dg_panel_dup_prompt (self)); break;
  case PROP_NEGATIVE_PROMPT: g_value_set_string (value, gtk_entry_get_text (GTK_ENTRY (self->negative_entry))); break;
  case PROP_STEPS:
    g_value_set_int (value, gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->steps_spin)));
    break;
  case PROP_GUIDANCE:
    g_value_set_double (value, gtk_spin_button_get_value (GTK_SPIN_BUTTON (self->guidance_spin)));
    break;
  case PROP_STRENGTH: g_value_set_double (value, gtk_range_get_value (GTK_RANGE (self->strength_scale))); break;
  case PROP_N_RESULTS:
    g_value_set_int (value, gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->results_spin)));
    break;
  case PROP_SEED: g_value_set_int64 (value, panel_seed (self)); break;
  case PROP_SIZE_POLICY: g_value_set_string (value, dg_size_policy_to_string (panel_policy (self))); break;
  case PROP_MAX_SIZE:
    g_value_set_int (value, gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->size_spin)));
    break;
  case PROP_MODEL_FOLDER: g_value_set_string (value, gtk_entry_get_text (GTK_ENTRY (self->folder_entry))); break;
  case PROP_BUSY: g_value_set_boolean (value, self->cancellable != NULL); break;
  case PROP_IN_PROCESS: g_value_set_boolean (value, self->in_process); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
  }
}

static void
dg_panel_set_property (GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
  DgPanel *self = DG_PANEL (object);
  switch (id) {
  case PROP_JOB:
    gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->job_combo), dg_job_to_string ((DgJob) g_value_get_int (value)));
    break;
  case PROP_JOB_SELECTABLE:
    /* hidden for good: a front-end's show_all must not bring it back */
    gtk_widget_set_visible (self->job_combo, g_value_get_boolean (value));
    gtk_widget_set_visible (self->job_row, g_value_get_boolean (value));
    gtk_widget_set_no_show_all (self->job_combo, !g_value_get_boolean (value));
    gtk_widget_set_no_show_all (self->job_row, !g_value_get_boolean (value));
    break;
  case PROP_PROMPT: dg_panel_set_prompt (self, g_value_get_string (value)); break;
  case PROP_NEGATIVE_PROMPT:
    gtk_entry_set_text (GTK_ENTRY (self->negative_entry), g_value_get_string (value) ? g_value_get_string (value) : "");
    break;
  case PROP_STEPS: gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->steps_spin), g_value_get_int (value)); break;
  case PROP_GUIDANCE:
    gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->guidance_spin), g_value_get_double (value));
    break;
  case PROP_STRENGTH: gtk_range_set_value (GTK_RANGE (self->strength_scale), g_value_get_double (value)); break;
  case PROP_N_RESULTS: gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->results_spin), g_value_get_int (value)); break;
  case PROP_SEED: {
    const gint64 seed = g_value_get_int64 (value);
    gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->seed_random), seed < 0);
    if (seed >= 0)
      gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->seed_spin), (double) seed);
    break;
  }
  case PROP_SIZE_POLICY: {
    DgSizePolicy p = DG_SIZE_POLICY_FIT;
    dg_size_policy_from_string (g_value_get_string (value), &p);
    gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->policy_combo), dg_size_policy_to_string (p));
    break;
  }
  case PROP_MAX_SIZE: gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->size_spin), g_value_get_int (value)); break;
  case PROP_IN_PROCESS: self->in_process = g_value_get_boolean (value); break;
  case PROP_MODEL_FOLDER:
    gtk_entry_set_text (GTK_ENTRY (self->folder_entry), g_value_get_string (value) ? g_value_get_string (value) : "");
    break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
  }
  update_sensitivity (self);
  update_region_label (self);
}

static void
dg_panel_dispose (GObject *object)
{
  DgPanel *self = DG_PANEL (object);
  /* The worker keeps its own references; it only has to stop early. */
  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  /* a download stops; its partial files stay for the next time */
  if (self->download_cancellable)
    g_cancellable_cancel (self->download_cancellable);
  g_clear_object (&self->download_cancellable);
  dg_panel_extras_dispose (self);
  G_OBJECT_CLASS (dg_panel_parent_class)->dispose (object);
}

static void
dg_panel_finalize (GObject *object)
{
  DgPanel *self = DG_PANEL (object);
  input_unref (self->input);
  dg_task_result_free (self->result);
  g_free (self->message);
  g_free (self->device_name);
  g_free (self->device_error);
  g_clear_pointer (&self->plan_model, dg_plan_model_free);
  g_free (self->plan_folder);
  G_OBJECT_CLASS (dg_panel_parent_class)->finalize (object);
}

static void
dg_panel_class_init (DgPanelClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  oc->get_property = dg_panel_get_property;
  oc->set_property = dg_panel_set_property;
  oc->dispose = dg_panel_dispose;
  oc->finalize = dg_panel_finalize;

  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  props[PROP_JOB] = g_param_spec_int ("job", "Job", "DgJob: 0 generate, 1 edit, 2 inpaint", 0, 2, DG_JOB_EDIT, rw);
  props[PROP_JOB_SELECTABLE] =
      g_param_spec_boolean ("job-selectable", "Job selectable", "Show the job chooser", TRUE, rw);
  props[PROP_PROMPT] = g_param_spec_string ("prompt", "Prompt", "Prompt or instruction", "", rw);
  props[PROP_NEGATIVE_PROMPT] =
      g_param_spec_string ("negative-prompt", "Negative prompt", "Empty = the model's default", "", rw);
  props[PROP_STEPS] =
      g_param_spec_int ("steps", "Steps", "Denoising steps", 1, DG_TASK_MAX_STEPS, DG_TASK_DEFAULT_STEPS, rw);
  props[PROP_GUIDANCE] = g_param_spec_double ("guidance", "Guidance", "Classifier-free guidance scale", 0.0,
                                              DG_TASK_MAX_GUIDANCE, DG_TASK_DEFAULT_GUIDANCE, rw);
  props[PROP_N_RESULTS] = g_param_spec_int ("n-results", "Number of results", "Variations with consecutive seeds", 1,
                                            DG_TASK_MAX_RESULTS, 1, rw);
  props[PROP_STRENGTH] =
      g_param_spec_double ("strength", "Change strength", "Edit and inpaint: how much may change", 0.0, 1.0, 1.0, rw);
  props[PROP_SEED] = g_param_spec_int64 ("seed", "Seed", "-1 = random", -1, G_MAXINT32, -1, rw);
  props[PROP_SIZE_POLICY] = g_param_spec_string ("size-policy", "Size policy", "\"fit\" or \"region\"", "fit", rw);
  props[PROP_MAX_SIZE] = g_param_spec_int ("max-size", "Working size", "Longer working side for \"fit\"",
                                           DG_TASK_MIN_SIZE, DG_TASK_MAX_SIZE, DG_TASK_DEFAULT_MAX_SIZE, rw);
  props[PROP_MODEL_FOLDER] = g_param_spec_string ("model-folder", "Model folder", "Empty = the default", "", rw);
  props[PROP_BUSY] =
      g_param_spec_boolean ("busy", "Busy", "A job is running", FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  props[PROP_IN_PROCESS] = g_param_spec_boolean ("in-process", "In this process",
                                                 "Run jobs in this process, not in the resident DeepGen service "
                                                 "(dg_task_run_default)",
                                                 FALSE, rw);
  g_object_class_install_properties (oc, N_PROPS, props);

  signals[SIGNAL_APPLY] = g_signal_new ("apply", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                        G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIGNAL_FINISHED] = g_signal_new ("finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                           NULL, G_TYPE_NONE, 1, G_TYPE_BOOLEAN);
  signals[SIGNAL_DOWNLOAD_FINISHED] = g_signal_new ("download-finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                                    0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_BOOLEAN);
}

/* ---- for the panel's parts in other files (dg_panel_private.h) ----------------------------- */

void
dg_panel_show_message (DgPanel *self, GtkMessageType type, const char *text)
{
  show_message (self, type, text);
}

void
dg_panel_hide_message (DgPanel *self)
{
  hide_message (self);
}

void
dg_panel_update_sensitivity (DgPanel *self)
{
  update_sensitivity (self);
}

void
dg_panel_settings_changed (DgPanel *self)
{
  update_sensitivity (self);
  update_region_label (self); /* and the fit indicator */
}

const DgImage *
dg_panel_peek_source (DgPanel *self, const DgMask **selection)
{
  if (selection)
    *selection = self->input ? self->input->selection : NULL;
  return self->input ? self->input->source : NULL;
}

GtkWidget *
dg_panel_new (DgJob job)
{
  dg_i18n_init ();
  return g_object_new (DG_TYPE_PANEL, "job", (int) job, NULL);
}
