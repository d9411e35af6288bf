/* The panel's editing extras (issue #13), kept out of dg_panel.c so that each lives in functions
 * of its own: the Describe button. dg_panel.h documents the public calls, dg_panel_private.h the
 * hooks dg_panel.c calls. */
#include <string.h>

#include "dg_gettext.h"
#include "dg_panel_private.h"

/* ---- Describe ---------------------------------------------------------------------------- */

/* The Describe row's widgets and state, kept on the panel (object data DESCRIBE_KEY). */
typedef struct {
  GtkWidget *row, *button, *progress, *stop;
  GCancellable *cancellable; /* non-NULL while a description is being written */
} Describe;

#define DESCRIBE_KEY "dg-panel-describe"

static void
describe_free (gpointer data)
{
  Describe *d = data;
  if (d->cancellable)
    g_cancellable_cancel (d->cancellable);
  g_clear_object (&d->cancellable);
  g_free (d);
}

static Describe *
describe_of (DgPanel *panel)
{
  return g_object_get_data (G_OBJECT (panel), DESCRIBE_KEY);
}

gboolean
dg_panel_is_describing (DgPanel *panel)
{
  g_return_val_if_fail (DG_IS_PANEL (panel), FALSE);
  Describe *d = describe_of (panel);
  return d && d->cancellable != NULL;
}

void
dg_panel_describe_sync (DgPanel *panel, gboolean busy)
{
  Describe *d = describe_of (panel);
  if (!d)
    return; /* dg_panel_init has not made the row yet */
  const gboolean describing = d->cancellable != NULL;
  gtk_widget_set_sensitive (d->button, !busy && !describing && dg_panel_peek_source (panel, NULL) != NULL);
  gtk_widget_set_visible (d->progress, describing);
  gtk_widget_set_visible (d->stop, describing);
  gtk_widget_set_sensitive (d->stop, describing && !g_cancellable_is_cancelled (d->cancellable));
}

/* A copy of the pixels Describe looks at: the region a run would fill (the selection's box, else
 * the whole layer), NULL without a source. */
static DgImage *
describe_region (DgPanel *panel)
{
  const DgMask *selection = NULL;
  const DgImage *source = dg_panel_peek_source (panel, &selection);
  if (!source)
    return NULL;
  g_auto (GStrv) strings = NULL;
  DgTaskSpec spec;
  dg_panel_get_spec (panel, &spec, &strings);
  spec.prompt = "-"; /* the region does not depend on it */
  int x = 0, y = 0, w = source->width, h = source->height;
  /* a region outside the layer (generate on the canvas) falls back to the whole layer */
  if (!dg_task_region (&spec, &x, &y, &w, &h, NULL) || x < 0 || y < 0 || w < 1 || h < 1 || x + w > source->width ||
      y + h > source->height)
    x = 0, y = 0, w = source->width, h = source->height;
  return dg_image_crop (source, x, y, w, h);
}

typedef struct {
  DgImage *region;
  char *model_folder;
  GMainContext *context;
  DgPanel *panel; /* a reference, only touched from the main loop */
  GCancellable *cancellable;
} DescribeJob;

static void
describe_job_free (DescribeJob *j)
{
  dg_image_free (j->region);
  g_free (j->model_folder);
  g_main_context_unref (j->context);
  g_object_unref (j->panel);
  g_object_unref (j->cancellable);
  g_free (j);
}

typedef struct {
  DgPanel *panel;
  GCancellable *cancellable; /* the description it belongs to: stale reports are dropped */
  int step, n_steps;         /* n_steps 0: loading the model */
} DescribeProgress;

static void
describe_progress_free (DescribeProgress *p)
{
  g_object_unref (p->panel);
  g_object_unref (p->cancellable);
  g_free (p);
}

static gboolean
describe_progress_on_main (gpointer data)
{
  DescribeProgress *p = data;
  Describe *d = describe_of (p->panel);
  if (!d || d->cancellable != p->cancellable || g_cancellable_is_cancelled (p->cancellable))
    return G_SOURCE_REMOVE;
  g_autofree char *text = NULL;
  if (p->n_steps <= 0) {
    text = g_strdup (_ ("Loading the model…"));
    gtk_progress_bar_pulse (GTK_PROGRESS_BAR (d->progress));
  } else {
    /* TRANSLATORS: Describe's progress; %d counts the tokens (word pieces) written so far */
    text = g_strdup_printf (_ ("Describing: token %d"), p->step);
    /* the caption usually ends well before the token limit: the bar only shows that it moves */
    gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (d->progress), (double) p->step / p->n_steps);
  }
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (d->progress), text);
  return G_SOURCE_REMOVE;
}

static void
describe_report (DescribeJob *j, int step, int n_steps)
{
  DescribeProgress *p = g_new (DescribeProgress, 1);
  p->panel = g_object_ref (j->panel);
  p->cancellable = g_object_ref (j->cancellable);
  p->step = step, p->n_steps = n_steps;
  g_main_context_invoke_full (j->context, G_PRIORITY_DEFAULT, describe_progress_on_main, p,
                              (GDestroyNotify) describe_progress_free);
}

static void
on_describe_progress (DgStage stage, int step, int n_steps, gpointer user_data)
{
  /* DG_STAGE_LOAD while the VLM uploads, then one DG_STAGE_ENCODE report per token */
  describe_report (user_data, stage == DG_STAGE_ENCODE ? step : 0, stage == DG_STAGE_ENCODE ? n_steps : 0);
}

static void
describe_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  DescribeJob *j = task_data;
  GError *error = NULL;
  describe_report (j, 0, 0);
  DgModel *model = dg_task_model_acquire (j->model_folder, &error);
  if (!model) {
    g_task_return_error (task, error);
    return;
  }
  char *text = dg_describe (model, j->region, NULL, 0, on_describe_progress, j, cancellable, &error);
  dg_task_model_release (model);
  if (text)
    g_task_return_pointer (task, text, g_free);
  else
    g_task_return_error (task, error);
}

static void
describe_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  DgPanel *panel = DG_PANEL (source);
  GTask *task = G_TASK (result);
  g_autoptr (GError) error = NULL;
  g_autofree char *text = g_task_propagate_pointer (task, &error);
  Describe *d = describe_of (panel);
  /* a description whose panel has since cancelled it (a new source) only cleans up */
  if (!d || g_task_get_cancellable (task) != d->cancellable)
    return;
  g_clear_object (&d->cancellable);
  if (text && *g_strstrip (text)) {
    dg_panel_hide_message (panel);
    dg_panel_set_prompt (panel, text);
  } else if (text)
    dg_panel_show_message (panel, GTK_MESSAGE_INFO, _ ("The model wrote no description of this image."));
  else if (g_error_matches (error, DG_ERROR, DG_ERROR_CANCELLED) ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    dg_panel_show_message (panel, GTK_MESSAGE_INFO, _ ("Cancelled."));
  else
    dg_panel_show_message (panel, GTK_MESSAGE_ERROR, error->message);
  dg_panel_update_sensitivity (panel);
}

void
dg_panel_describe (DgPanel *panel)
{
  g_return_if_fail (DG_IS_PANEL (panel));
  Describe *d = describe_of (panel);
  if (!d || d->cancellable || dg_panel_is_busy (panel) || dg_panel_is_downloading (panel))
    return;
  DgImage *region = describe_region (panel);
  if (!region) {
    dg_panel_show_message (panel, GTK_MESSAGE_WARNING, _ ("There is no image to describe."));
    return;
  }
  DescribeJob *j = g_new0 (DescribeJob, 1);
  j->region = region;
  g_object_get (panel, "model-folder", &j->model_folder, NULL);
  j->context = g_main_context_ref_thread_default ();
  j->panel = g_object_ref (panel);
  d->cancellable = g_cancellable_new ();
  j->cancellable = g_object_ref (d->cancellable);
  dg_panel_hide_message (panel);
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (d->progress), 0.0);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (d->progress), _ ("Starting…"));
  dg_panel_update_sensitivity (panel);

  g_autoptr (GTask) task = g_task_new (panel, d->cancellable, describe_done, NULL);
  g_task_set_source_tag (task, dg_panel_describe);
  g_task_set_task_data (task, j, (GDestroyNotify) describe_job_free);
  g_task_set_return_on_cancel (task, FALSE); /* dg_describe checks the cancellable between tokens */
  g_task_run_in_thread (task, describe_thread);
}

void
dg_panel_cancel_describe (DgPanel *panel)
{
  g_return_if_fail (DG_IS_PANEL (panel));
  Describe *d = describe_of (panel);
  if (d && d->cancellable) {
    g_cancellable_cancel (d->cancellable);
    gtk_progress_bar_set_text (GTK_PROGRESS_BAR (d->progress), _ ("Cancelling…"));
    gtk_widget_set_sensitive (d->stop, FALSE);
  }
}

void
dg_panel_extras_dispose (DgPanel *panel)
{
  Describe *d = describe_of (panel);
  if (d && d->cancellable) {
    g_cancellable_cancel (d->cancellable);
    g_clear_object (&d->cancellable); /* describe_done sees another cancellable and only cleans up */
  }
}

static void
on_describe_clicked (GtkButton *b, DgPanel *panel)
{
  dg_panel_describe (panel);
}

static void
on_describe_stop_clicked (GtkButton *b, DgPanel *panel)
{
  dg_panel_cancel_describe (panel);
}

GtkWidget *
dg_panel_describe_row_new (DgPanel *panel)
{
  Describe *d = g_new0 (Describe, 1);
  d->row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  d->button = gtk_button_new_with_mnemonic (_ ("Des_cribe"));
  gtk_widget_set_tooltip_text (d->button, _ ("Let the model describe the selection (or the layer) in words; the "
                                             "description replaces the text above, as a starting point."));
  d->progress = gtk_progress_bar_new ();
  gtk_progress_bar_set_show_text (GTK_PROGRESS_BAR (d->progress), TRUE);
  gtk_widget_set_valign (d->progress, GTK_ALIGN_CENTER);
  d->stop = gtk_button_new_with_mnemonic (_ ("_Stop"));
  gtk_widget_set_tooltip_text (d->stop, _ ("Stop describing; the text above stays as it was."));
  gtk_box_pack_start (GTK_BOX (d->row), d->button, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (d->row), d->progress, TRUE, TRUE, 0);
  gtk_box_pack_start (GTK_BOX (d->row), d->stop, FALSE, FALSE, 0);
  g_signal_connect (d->button, "clicked", G_CALLBACK (on_describe_clicked), panel);
  g_signal_connect (d->stop, "clicked", G_CALLBACK (on_describe_stop_clicked), panel);
  gtk_widget_show_all (d->row);
  /* the progress and Stop show only while describing: a front-end's show_all must not bring them */
  gtk_widget_set_no_show_all (d->progress, TRUE);
  gtk_widget_set_no_show_all (d->stop, TRUE);
  gtk_widget_hide (d->progress);
  gtk_widget_hide (d->stop);
  g_object_set_data_full (G_OBJECT (panel), DESCRIBE_KEY, d, describe_free);
  return d->row;
}

/* ---- picking among variations ------------------------------------------------------------ */

/* The strip of thumbnails below the preview when a run made several results: one check button
 * per result (the first is the preview's), all picked at first; Apply hands over the picked. */
typedef struct {
  GtkWidget *box, *label, *strip;
  GPtrArray *buttons; /* GtkToggleButton*, in result order; empty without variations */
} Picks;

#define PICKS_KEY "dg-panel-picks"
#define PICK_THUMB_SIDE 96

static void
picks_free (gpointer data)
{
  Picks *p = data;
  g_ptr_array_unref (p->buttons);
  g_free (p);
}

static Picks *
picks_of (DgPanel *panel)
{
  return g_object_get_data (G_OBJECT (panel), PICKS_KEY);
}

static void
pixels_free (guchar *pixels, gpointer data)
{
  dg_image_free (data);
}

/* A thumbnail of @img (RGB or RGBA) no larger than @side. */
static GdkPixbuf *
thumbnail (const DgImage *img, int side)
{
  DgImage *copy = dg_image_copy (img);
  if (!copy)
    return NULL;
  g_autoptr (GdkPixbuf) full = gdk_pixbuf_new_from_data (copy->pixels, GDK_COLORSPACE_RGB, copy->channels == 4, 8,
                                                         copy->width, copy->height, copy->rowstride, pixels_free, copy);
  const double s = MIN (1.0, (double) side / MAX (img->width, img->height));
  return gdk_pixbuf_scale_simple (full, MAX (1, (int) (img->width * s + 0.5)), MAX (1, (int) (img->height * s + 0.5)),
                                  GDK_INTERP_BILINEAR);
}

guint
dg_panel_count_picked (DgPanel *panel)
{
  g_return_val_if_fail (DG_IS_PANEL (panel), 0);
  Picks *p = picks_of (panel);
  const DgTaskResult *r = dg_panel_get_result (panel);
  if (!r)
    return 0;
  if (!p || p->buttons->len == 0)
    return 1;
  guint n = 0;
  for (guint i = 0; i < p->buttons->len; i++) n += gtk_toggle_button_get_active (p->buttons->pdata[i]) ? 1 : 0;
  return n;
}

static void
update_picks_label (DgPanel *panel)
{
  Picks *p = picks_of (panel);
  g_autofree char *text =
      /* TRANSLATORS: above the variations' thumbnails; %u of %u: how many are picked of how many */
      g_strdup_printf (_ ("Pick the results to keep (%u of %u): Apply adds each picked one."),
                       dg_panel_count_picked (panel), p->buttons->len);
  gtk_label_set_text (GTK_LABEL (p->label), text);
}

static void
on_pick_toggled (GtkToggleButton *b, DgPanel *panel)
{
  update_picks_label (panel);
  dg_panel_update_sensitivity (panel);
}

static void
destroy_child (GtkWidget *w, gpointer data)
{
  gtk_widget_destroy (w);
}

void
dg_panel_picks_show (DgPanel *panel, const DgTaskResult *result)
{
  Picks *p = picks_of (panel);
  if (!p)
    return;
  gtk_container_foreach (GTK_CONTAINER (p->strip), destroy_child, NULL);
  g_ptr_array_set_size (p->buttons, 0);
  if (!result || !result->variations || result->variations->len == 0) {
    gtk_widget_hide (p->box);
    return;
  }
  for (guint i = 0; i <= result->variations->len; i++) {
    const DgTaskResult *r = i == 0 ? result : g_ptr_array_index (result->variations, i - 1);
    g_autoptr (GdkPixbuf) thumb = thumbnail (r->image, PICK_THUMB_SIDE);
    GtkWidget *button = gtk_check_button_new (); /* a toggle whose tick shows the pick */
    GtkWidget *inner = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
    gtk_box_pack_start (GTK_BOX (inner), gtk_image_new_from_pixbuf (thumb), FALSE, FALSE, 0);
    g_autofree char *seed = g_strdup_printf (_ ("seed %u"), (guint) r->seed);
    gtk_box_pack_start (GTK_BOX (inner), gtk_label_new (seed), FALSE, FALSE, 0);
    gtk_container_add (GTK_CONTAINER (button), inner);
    gtk_widget_set_tooltip_text (button, _ ("Ticked: Apply adds this result. Click to leave it out or take it."));
    gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (button), TRUE);
    g_signal_connect (button, "toggled", G_CALLBACK (on_pick_toggled), panel);
    gtk_flow_box_insert (GTK_FLOW_BOX (p->strip), button, -1);
    g_ptr_array_add (p->buttons, button);
  }
  update_picks_label (panel);
  /* the box itself is no_show_all (a front-end's show_all must not bring it back empty) */
  gtk_widget_show (p->label);
  gtk_widget_show_all (p->strip);
  gtk_widget_show (p->box);
}

void
dg_panel_set_picked (DgPanel *panel, guint index, gboolean picked)
{
  g_return_if_fail (DG_IS_PANEL (panel));
  Picks *p = picks_of (panel);
  if (p && index < p->buttons->len)
    gtk_toggle_button_set_active (p->buttons->pdata[index], picked);
}

gboolean
dg_panel_get_picked (DgPanel *panel, guint index)
{
  g_return_val_if_fail (DG_IS_PANEL (panel), FALSE);
  Picks *p = picks_of (panel);
  if (!p || p->buttons->len == 0)
    return index == 0 && dg_panel_get_result (panel) != NULL;
  return index < p->buttons->len && gtk_toggle_button_get_active (p->buttons->pdata[index]);
}

DgTaskResult *
dg_panel_picks_take (DgPanel *panel, DgTaskResult *result)
{
  Picks *p = picks_of (panel);
  if (!result || !result->variations || !p || p->buttons->len != result->variations->len + 1)
    return result;
  /* every result in order, then the picked ones: the first is the head, the others its variations */
  g_autoptr (GPtrArray) all = g_ptr_array_new ();
  g_autoptr (GPtrArray) rest = g_steal_pointer (&result->variations);
  g_ptr_array_add (all, result);
  while (rest->len > 0) g_ptr_array_add (all, g_ptr_array_steal_index (rest, 0));
  DgTaskResult *head = NULL;
  for (guint i = 0; i < all->len; i++) {
    DgTaskResult *r = all->pdata[i];
    if (!gtk_toggle_button_get_active (p->buttons->pdata[i]))
      dg_task_result_free (r);
    else if (!head)
      head = r;
    else {
      if (!head->variations)
        head->variations = g_ptr_array_new_with_free_func ((GDestroyNotify) dg_task_result_free);
      g_ptr_array_add (head->variations, r);
    }
  }
  return head;
}

GtkWidget *
dg_panel_picks_new (DgPanel *panel)
{
  Picks *p = g_new0 (Picks, 1);
  p->buttons = g_ptr_array_new ();
  p->box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  p->label = gtk_label_new ("");
  gtk_label_set_xalign (GTK_LABEL (p->label), 0.0);
  gtk_label_set_line_wrap (GTK_LABEL (p->label), TRUE);
  p->strip = gtk_flow_box_new ();
  gtk_flow_box_set_selection_mode (GTK_FLOW_BOX (p->strip), GTK_SELECTION_NONE);
  gtk_flow_box_set_homogeneous (GTK_FLOW_BOX (p->strip), TRUE);
  gtk_flow_box_set_max_children_per_line (GTK_FLOW_BOX (p->strip), DG_TASK_MAX_RESULTS);
  gtk_flow_box_set_column_spacing (GTK_FLOW_BOX (p->strip), 4);
  gtk_flow_box_set_row_spacing (GTK_FLOW_BOX (p->strip), 4);
  gtk_box_pack_start (GTK_BOX (p->box), p->label, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (p->box), p->strip, FALSE, FALSE, 0);
  gtk_widget_set_no_show_all (p->box, TRUE);
  gtk_widget_hide (p->box);
  g_object_set_data_full (G_OBJECT (panel), PICKS_KEY, p, picks_free);
  return p->box;
}

/* ---- re-run from layer ------------------------------------------------------------------- */

/* The row offering the settings stored with the source layer (its job parameters parasite). */
typedef struct {
  GtkWidget *row, *button;
  char *params; /* dg_job_params_to_string's text from the layer, NULL when it has none */
} Rerun;

#define RERUN_KEY "dg-panel-rerun"

static void
rerun_free (gpointer data)
{
  Rerun *r = data;
  g_free (r->params);
  g_free (r);
}

static Rerun *
rerun_of (DgPanel *panel)
{
  return g_object_get_data (G_OBJECT (panel), RERUN_KEY);
}

void
dg_panel_set_layer_params (DgPanel *panel, const char *params)
{
  g_return_if_fail (DG_IS_PANEL (panel));
  Rerun *r = rerun_of (panel);
  g_free (r->params);
  r->params = params && *params ? g_strdup (params) : NULL;
  gtk_widget_set_visible (r->row, r->params != NULL);
}

gboolean
dg_panel_offers_layer_params (DgPanel *panel)
{
  g_return_val_if_fail (DG_IS_PANEL (panel), FALSE);
  return rerun_of (panel)->params != NULL;
}

gboolean
dg_panel_load_params (DgPanel *panel, const char *text, GError **error)
{
  g_return_val_if_fail (DG_IS_PANEL (panel), FALSE);
  g_autoptr (DgJobParams) p = dg_job_params_from_string (text, error);
  if (!p)
    return FALSE;
  if (p->seed > G_MAXINT32) { /* the CLI takes larger seeds; the panel's field does not */
    g_autofree char *seed = g_strdup_printf ("%" G_GUINT64_FORMAT, p->seed);
    return g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                        _ ("The seed %s is larger than this dialog takes (at most %d)."), seed, G_MAXINT32),
           FALSE;
  }
  gboolean selectable = TRUE;
  int job = DG_JOB_EDIT;
  g_object_get (panel, "job-selectable", &selectable, "job", &job, NULL);
  /* a fixed job (the GIMP procedures) stays; the rest of the settings still apply */
  if (selectable)
    g_object_set (panel, "job", (int) p->job, NULL);
  g_object_set (panel, "prompt", p->prompt, "negative-prompt", p->negative_prompt ? p->negative_prompt : "", "steps",
                CLAMP (p->steps, 1, DG_TASK_MAX_STEPS), "guidance", CLAMP (p->guidance, 0.0, DG_TASK_MAX_GUIDANCE),
                "seed", (gint64) p->seed, "n-results", 1, NULL);
  if (p->job != DG_JOB_GENERATE)
    g_object_set (panel, "strength", CLAMP (p->strength, 0.05, 1.0), NULL);
  /* the working size it ran at; inpaint's included the context around the selection */
  if (p->job != DG_JOB_INPAINT && p->width > 0 && p->height > 0)
    g_object_set (panel, "size-policy", "fit", "max-size",
                  CLAMP (MAX (p->width, p->height), DG_TASK_MIN_SIZE, DG_TASK_MAX_SIZE), NULL);
  return TRUE;
}

void
dg_panel_load_layer_params (DgPanel *panel)
{
  g_return_if_fail (DG_IS_PANEL (panel));
  Rerun *r = rerun_of (panel);
  if (!r->params || dg_panel_is_busy (panel))
    return;
  g_autoptr (GError) error = NULL;
  if (!dg_panel_load_params (panel, r->params, &error)) {
    g_autofree char *text =
        g_strdup_printf (_ ("The settings stored with this layer cannot be read: %s"), error->message);
    dg_panel_show_message (panel, GTK_MESSAGE_WARNING, text);
    return;
  }
  dg_panel_show_message (panel, GTK_MESSAGE_INFO,
                         _ ("The settings that made this layer are loaded: Run makes it again, or change them first."));
}

static void
on_rerun_clicked (GtkButton *b, DgPanel *panel)
{
  dg_panel_load_layer_params (panel);
}

GtkWidget *
dg_panel_rerun_row_new (DgPanel *panel)
{
  Rerun *r = g_new0 (Rerun, 1);
  r->row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *label = gtk_label_new (_ ("DeepGen made this layer."));
  gtk_label_set_xalign (GTK_LABEL (label), 0.0);
  gtk_label_set_line_wrap (GTK_LABEL (label), TRUE);
  r->button = gtk_button_new_with_mnemonic (_ ("L_oad its settings"));
  gtk_widget_set_tooltip_text (r->button, _ ("Load the prompt, seed, steps and the other settings stored with this "
                                             "layer, to run it again or to vary it."));
  g_signal_connect (r->button, "clicked", G_CALLBACK (on_rerun_clicked), panel);
  gtk_box_pack_start (GTK_BOX (r->row), label, TRUE, TRUE, 0);
  gtk_box_pack_start (GTK_BOX (r->row), r->button, FALSE, FALSE, 0);
  gtk_widget_show_all (r->row);
  gtk_widget_set_no_show_all (r->row, TRUE);
  gtk_widget_hide (r->row);
  g_object_set_data_full (G_OBJECT (panel), RERUN_KEY, r, rerun_free);
  return r->row;
}

/* ---- several references ------------------------------------------------------------------ */

/* The list of other layers the front-end offers as references, each a check button; their
 * pixels are read through the front-end's reader when a run starts. */
typedef struct {
  GtkWidget *expander, *list;
  GPtrArray *buttons; /* GtkToggleButton*, each with the layer handle as object data REFERENCE_ITEM */
  DgPanelReadReference read;
  gpointer read_data;
  GDestroyNotify forget; /* set: each row has a remove button, and the panel forgets its items */
} References;

#define REFERENCES_KEY "dg-panel-references"
#define REFERENCE_ITEM "dg-reference-item"

static void
references_free (gpointer data)
{
  References *r = data;
  g_ptr_array_unref (r->buttons);
  g_free (r);
}

static References *
references_of (DgPanel *panel)
{
  return g_object_get_data (G_OBJECT (panel), REFERENCES_KEY);
}

void
dg_panel_set_reference_reader (DgPanel *panel, DgPanelReadReference read, gpointer user_data)
{
  g_return_if_fail (DG_IS_PANEL (panel));
  References *r = references_of (panel);
  r->read = read;
  r->read_data = user_data;
}

static void
update_references_label (DgPanel *panel)
{
  References *r = references_of (panel);
  const guint n = dg_panel_count_references (panel);
  g_autofree char *text = n == 0 ? g_strdup (_ ("Re_ference layers"))
                                 /* TRANSLATORS: the expander's title; %u: how many layers are ticked */
                                 : g_strdup_printf (_ ("Re_ference layers (%u ticked)"), n);
  gtk_expander_set_label (GTK_EXPANDER (r->expander), text);
}

static void
on_reference_toggled (GtkToggleButton *b, DgPanel *panel)
{
  update_references_label (panel);
  dg_panel_settings_changed (panel);
}

void
dg_panel_set_reference_remover (DgPanel *panel, GDestroyNotify forget)
{
  g_return_if_fail (DG_IS_PANEL (panel));
  references_of (panel)->forget = forget;
}

void
dg_panel_remove_reference_layer (DgPanel *panel, guint index)
{
  g_return_if_fail (DG_IS_PANEL (panel));
  References *r = references_of (panel);
  if (index >= r->buttons->len)
    return;
  GtkWidget *button = r->buttons->pdata[index];
  g_ptr_array_remove_index (r->buttons, index);
  /* the row (check button and remove button) when the front-end lets layers be removed; the
   * check button's end forgets its item */
  GtkWidget *parent = gtk_widget_get_parent (button);
  gtk_widget_destroy (parent != r->list ? parent : button);
  if (r->buttons->len == 0)
    gtk_widget_hide (r->expander);
  update_references_label (panel);
  dg_panel_settings_changed (panel);
}

static void
on_reference_remove (GtkButton *remove, DgPanel *panel)
{
  References *r = references_of (panel);
  GtkWidget *check = g_object_get_data (G_OBJECT (remove), REFERENCE_ITEM);
  guint index;
  if (g_ptr_array_find (r->buttons, check, &index))
    dg_panel_remove_reference_layer (panel, index);
}

void
dg_panel_add_reference_layer (DgPanel *panel, const char *name, gpointer item, gboolean checked)
{
  g_return_if_fail (DG_IS_PANEL (panel));
  References *r = references_of (panel);
  GtkWidget *button = gtk_check_button_new_with_label (name);
  g_object_set_data_full (G_OBJECT (button), REFERENCE_ITEM, item, r->forget);
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (button), checked);
  g_signal_connect (button, "toggled", G_CALLBACK (on_reference_toggled), panel);
  if (r->forget) {
    GtkWidget *row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 4);
    GtkWidget *remove = gtk_button_new_from_icon_name ("list-remove-symbolic", GTK_ICON_SIZE_BUTTON);
    gtk_button_set_relief (GTK_BUTTON (remove), GTK_RELIEF_NONE);
    gtk_widget_set_tooltip_text (remove, _ ("Remove this reference"));
    g_object_set_data (G_OBJECT (remove), REFERENCE_ITEM, button);
    g_signal_connect (remove, "clicked", G_CALLBACK (on_reference_remove), panel);
    gtk_box_pack_start (GTK_BOX (row), button, TRUE, TRUE, 0);
    gtk_box_pack_start (GTK_BOX (row), remove, FALSE, FALSE, 0);
    gtk_box_pack_start (GTK_BOX (r->list), row, FALSE, FALSE, 0);
    gtk_widget_show_all (row);
  } else {
    gtk_box_pack_start (GTK_BOX (r->list), button, FALSE, FALSE, 0);
    gtk_widget_show (button);
  }
  g_ptr_array_add (r->buttons, button);
  gtk_widget_show (r->expander);
  /* ticked by the caller (GIMP 3's other selected layers): shown open */
  if (checked)
    gtk_expander_set_expanded (GTK_EXPANDER (r->expander), TRUE);
  update_references_label (panel);
}

void
dg_panel_set_reference_checked (DgPanel *panel, guint index, gboolean checked)
{
  g_return_if_fail (DG_IS_PANEL (panel));
  References *r = references_of (panel);
  if (index < r->buttons->len)
    gtk_toggle_button_set_active (r->buttons->pdata[index], checked);
}

guint
dg_panel_count_references (DgPanel *panel)
{
  g_return_val_if_fail (DG_IS_PANEL (panel), 0);
  References *r = references_of (panel);
  int job = DG_JOB_EDIT;
  g_object_get (panel, "job", &job, NULL);
  if (job == DG_JOB_GENERATE) /* generate takes none; the ticks stay for a change of job */
    return 0;
  guint n = 0;
  for (guint i = 0; i < r->buttons->len; i++) n += gtk_toggle_button_get_active (r->buttons->pdata[i]) ? 1 : 0;
  return n;
}

GPtrArray *
dg_panel_references_read (DgPanel *panel, GError **error)
{
  References *r = references_of (panel);
  GPtrArray *images = g_ptr_array_new_with_free_func ((GDestroyNotify) dg_image_free);
  if (dg_panel_count_references (panel) == 0)
    return images;
  for (guint i = 0; i < r->buttons->len; i++) {
    GtkToggleButton *b = r->buttons->pdata[i];
    if (!gtk_toggle_button_get_active (b))
      continue;
    DgImage *img = r->read ? r->read (g_object_get_data (G_OBJECT (b), REFERENCE_ITEM), r->read_data, error) : NULL;
    if (!img) {
      if (error && !*error)
        g_set_error (error, DG_ERROR, DG_ERROR_FAILED, _ ("The layer “%s” could not be read as a reference."),
                     gtk_button_get_label (GTK_BUTTON (b)));
      g_ptr_array_unref (images);
      return NULL;
    }
    g_ptr_array_add (images, img);
  }
  return images;
}

void
dg_panel_references_sync (DgPanel *panel, DgJob job, gboolean busy)
{
  References *r = references_of (panel);
  if (r) {
    gtk_widget_set_sensitive (r->expander, job != DG_JOB_GENERATE && !busy);
    /* the count follows the job (generate takes none) */
    update_references_label (panel);
  }
}

GtkWidget *
dg_panel_references_new (DgPanel *panel)
{
  References *r = g_new0 (References, 1);
  r->buttons = g_ptr_array_new ();
  r->expander = gtk_expander_new_with_mnemonic (_ ("Re_ference layers"));
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  gtk_widget_set_margin_top (box, 4);
  GtkWidget *label = gtk_label_new (_ ("The model sees the layer it edits first, then each ticked layer (\"put the "
                                       "cat from the second image into the first\")."));
  gtk_label_set_xalign (GTK_LABEL (label), 0.0);
  gtk_label_set_line_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (label), 50);
  gtk_style_context_add_class (gtk_widget_get_style_context (label), GTK_STYLE_CLASS_DIM_LABEL);
  r->list = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  GtkWidget *scroll = gtk_scrolled_window_new (NULL, NULL);
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_max_content_height (GTK_SCROLLED_WINDOW (scroll), 140);
  gtk_scrolled_window_set_propagate_natural_height (GTK_SCROLLED_WINDOW (scroll), TRUE);
  gtk_container_add (GTK_CONTAINER (scroll), r->list);
  gtk_box_pack_start (GTK_BOX (box), label, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (box), scroll, FALSE, FALSE, 0);
  gtk_container_add (GTK_CONTAINER (r->expander), box);
  gtk_widget_show_all (r->expander);
  /* hidden until the front-end offers a layer */
  gtk_widget_set_no_show_all (r->expander, TRUE);
  gtk_widget_hide (r->expander);
  g_object_set_data_full (G_OBJECT (panel), REFERENCES_KEY, r, references_free);
  return r->expander;
}
