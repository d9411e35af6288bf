/* deepgen-studio's main window (studio_window.h). */
#include "studio_window.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dg_autopilot.h"
#include "dg_error.h"
#include "dg_expand_form.h"
#include "dg_gettext.h"
#include "dg_panel.h"
#include "studio_canvas.h"
#include "studio_save.h"

#define THUMB_SIDE 64
#define DEFAULT_CANVAS 512 /* generate with nothing open: the model's native size */

/* One history entry: an image and how it came about. */
typedef struct {
  DgImage *image;
  char *label;
  char *params; /* what made it (DgTaskResult.params), NULL for an opened file */
} Entry;

static void
entry_free (Entry *e)
{
  dg_image_free (e->image);
  g_free (e->label);
  g_free (e->params);
  g_free (e);
}

struct _StudioWindow {
  GtkApplicationWindow parent;
  GtkWidget *canvas, *panel, *history, *save_button, *expand_button, *status;
  GtkWidget *rect_tool, *brush_tool, *brush_spin;
  GPtrArray *entries; /* Entry*, oldest first; rows of `history` in the same order */
  int current;        /* index into entries, -1 = nothing open */
  char *basename;     /* of the opened file, for the save dialog */
};

G_DEFINE_TYPE (StudioWindow, studio_window, GTK_TYPE_APPLICATION_WINDOW)

/* ---- images and pixbufs ------------------------------------------------------------------ */

DgImage *
studio_image_from_pixbuf (GdkPixbuf *pixbuf)
{
  g_return_val_if_fail (gdk_pixbuf_get_bits_per_sample (pixbuf) == 8, NULL);
  const int nc = gdk_pixbuf_get_n_channels (pixbuf);
  const int w = gdk_pixbuf_get_width (pixbuf), h = gdk_pixbuf_get_height (pixbuf);
  DgImage *img = dg_image_new (w, h, nc);
  if (!img)
    return NULL;
  const guint8 *src = gdk_pixbuf_read_pixels (pixbuf);
  const int stride = gdk_pixbuf_get_rowstride (pixbuf);
  for (int y = 0; y < h; y++)
    memcpy (img->pixels + (gsize) y * img->rowstride, src + (gsize) y * stride, (gsize) w * nc);
  return img;
}

static void
free_image_pixels (guchar *pixels, gpointer data)
{
  dg_image_free (data);
}

GdkPixbuf *
studio_pixbuf_from_image (const DgImage *image)
{
  DgImage *copy = dg_image_copy (image);
  if (!copy || copy->channels == 1) {
    dg_image_free (copy);
    return NULL;
  }
  return gdk_pixbuf_new_from_data (copy->pixels, GDK_COLORSPACE_RGB, copy->channels == 4, 8, copy->width, copy->height,
                                   copy->rowstride, free_image_pixels, copy);
}

/* ---- current image, mask and the panel's input ------------------------------------------- */

static const DgImage *
current_image (StudioWindow *self)
{
  return self->current >= 0 ? ((Entry *) g_ptr_array_index (self->entries, self->current))->image : NULL;
}

static void
update_panel_source (StudioWindow *self)
{
  const DgImage *img = current_image (self);
  DgMask *mask = studio_canvas_dup_mask (STUDIO_CANVAS (self->canvas));
  dg_panel_set_source (DG_PANEL (self->panel), img ? dg_image_copy (img) : NULL, mask, DEFAULT_CANVAS, DEFAULT_CANVAS);
  gtk_widget_set_sensitive (self->save_button, img != NULL);
  gtk_widget_set_sensitive (self->expand_button, img != NULL && !g_object_get_data (G_OBJECT (self), "dg-expanding"));
}

static void
show_current (StudioWindow *self)
{
  studio_canvas_set_image (STUDIO_CANVAS (self->canvas), current_image (self));
  update_panel_source (self);
  if (self->current >= 0) {
    GtkFlowBoxChild *child = gtk_flow_box_get_child_at_index (GTK_FLOW_BOX (self->history), self->current);
    if (child && !gtk_flow_box_child_is_selected (child))
      gtk_flow_box_select_child (GTK_FLOW_BOX (self->history), child);
  }
}

static void
on_mask_changed (StudioCanvas *canvas, StudioWindow *self)
{
  update_panel_source (self);
}

/* ---- history ---------------------------------------------------------------------------- */

static void
add_entry (StudioWindow *self, DgImage *image, const char *label, const char *params)
{
  Entry *e = g_new0 (Entry, 1);
  e->image = image;
  e->label = g_strdup (label);
  e->params = g_strdup (params);
  g_ptr_array_add (self->entries, e);

  GtkWidget *row = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  gtk_container_set_border_width (GTK_CONTAINER (row), 4);
  g_autoptr (GdkPixbuf) full = studio_pixbuf_from_image (image);
  if (full) {
    const double s = (double) THUMB_SIDE / MAX (image->width, image->height);
    g_autoptr (GdkPixbuf) thumb = gdk_pixbuf_scale_simple (full, MAX (1, (int) (image->width * s)),
                                                           MAX (1, (int) (image->height * s)), GDK_INTERP_BILINEAR);
    gtk_box_pack_start (GTK_BOX (row), gtk_image_new_from_pixbuf (thumb), FALSE, FALSE, 0);
  }
  GtkWidget *text = gtk_label_new (label);
  gtk_label_set_ellipsize (GTK_LABEL (text), PANGO_ELLIPSIZE_END);
  gtk_label_set_xalign (GTK_LABEL (text), 0.0);
  gtk_label_set_max_width_chars (GTK_LABEL (text), 14);
  gtk_label_set_width_chars (GTK_LABEL (text), 14);
  gtk_widget_set_tooltip_text (row, label);
  gtk_box_pack_start (GTK_BOX (row), text, TRUE, TRUE, 0);
  gtk_widget_show_all (row);
  gtk_flow_box_insert (GTK_FLOW_BOX (self->history), row, -1);
  self->current = (int) self->entries->len - 1;
  show_current (self);
}

static void
on_history_selected (GtkFlowBox *box, StudioWindow *self)
{
  GList *sel = gtk_flow_box_get_selected_children (box);
  if (!sel)
    return;
  const int i = gtk_flow_box_child_get_index (sel->data);
  g_list_free (sel);
  if (i == self->current || i < 0 || (guint) i >= self->entries->len)
    return;
  self->current = i;
  show_current (self);
}

static void apply_one (DgPanel *panel, const DgTaskResult *result, StudioWindow *self);

/* Each result (and each variation) becomes an entry, all made from the same image. */
static void
on_apply (DgPanel *panel, const DgTaskResult *result, StudioWindow *self)
{
  const int base = self->current;
  apply_one (panel, result, self);
  for (guint i = 0; result->variations && i < result->variations->len; i++) {
    self->current = base;
    apply_one (panel, g_ptr_array_index (result->variations, i), self);
  }
}

static void
apply_one (DgPanel *panel, const DgTaskResult *result, StudioWindow *self)
{
  const DgImage *cur = current_image (self);
  g_autoptr (GError) error = NULL;
  DgImage *next = NULL;
  if (cur) {
    next = dg_image_copy (cur);
    if (!next || !dg_task_result_apply (next, result, &error)) {
      dg_image_free (next);
      gtk_label_set_text (GTK_LABEL (self->status), error ? error->message : _ ("Out of memory."));
      return;
    }
  } else
    next = dg_image_copy (result->image);
  g_auto (GStrv) strings = NULL;
  DgTaskSpec spec;
  dg_panel_get_spec (panel, &spec, &strings);
  const char *what = spec.job == DG_JOB_GENERATE ? _ ("Generate")
                     : spec.job == DG_JOB_EDIT   ? _ ("Edit")
                                                 : _ ("Inpaint");
  g_autofree char *label = g_strdup_printf ("%s: %s", what, spec.prompt);
  add_entry (self, next, label, result->params);
  gtk_label_set_text (GTK_LABEL (self->status), "");
}

/* ---- open and save ---------------------------------------------------------------------- */

/* The autopilot's end (tests/ui/test-studio.sh): save=FILE saves the current image first. */
static void
autopilot_close (GtkWindow *window)
{
  const char *path = g_object_get_data (G_OBJECT (window), "dg-autopilot-save");
  if (path) {
    g_autoptr (GFile) file = g_file_new_for_path (path);
    g_autoptr (GError) error = NULL;
    if (studio_window_save (STUDIO_WINDOW (window), file, &error))
      fprintf (stderr, "autopilot: saved %s\n", path);
    else
      fprintf (stderr, "autopilot: save failed: %s\n", error->message);
  }
  gtk_window_close (window);
}

/* An image file as pixels, upright (its EXIF orientation applied): the opened image and the
 * reference images both come this way. */
static DgImage *
load_image_file (GFile *file, GError **error)
{
  g_autofree char *path = g_file_get_path (file);
  g_autoptr (GdkPixbuf) loaded = path ? gdk_pixbuf_new_from_file (path, error) : NULL;
  if (!loaded) {
    if (!path)
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, _ ("Only local files can be opened."));
    return NULL;
  }
  g_autoptr (GdkPixbuf) oriented = gdk_pixbuf_apply_embedded_orientation (loaded);
  DgImage *img = studio_image_from_pixbuf (oriented);
  if (!img)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, _ ("Out of memory."));
  return img;
}

gboolean
studio_window_open (StudioWindow *self, GFile *file, GError **error)
{
  g_return_val_if_fail (STUDIO_IS_WINDOW (self), FALSE);
  DgImage *img = load_image_file (file, error);
  if (!img)
    return FALSE;
  g_free (self->basename);
  self->basename = g_file_get_basename (file);
  g_autofree char *label = g_strdup_printf (_ ("Opened %s"), self->basename);
  add_entry (self, img, label, NULL);
  /* an open image is most often there to be edited */
  int job = DG_JOB_GENERATE;
  g_object_get (self->panel, "job", &job, NULL);
  if (job == DG_JOB_GENERATE)
    g_object_set (self->panel, "job", (int) DG_JOB_EDIT, NULL);
  g_autofree char *title = g_strdup_printf ("%s — DeepGen Studio", self->basename);
  gtk_window_set_title (GTK_WINDOW (self), title);
  return TRUE;
}

gboolean
studio_window_save (StudioWindow *self, GFile *file, GError **error)
{
  g_return_val_if_fail (STUDIO_IS_WINDOW (self), FALSE);
  const DgImage *img = current_image (self);
  if (!img)
    return g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, _ ("There is no image to save.")), FALSE;
  g_autofree char *path = g_file_get_path (file);
  g_autofree char *lower = g_ascii_strdown (path ? path : "", -1);
  const char *type = "png";
  if (g_str_has_suffix (lower, ".jpg") || g_str_has_suffix (lower, ".jpeg"))
    type = "jpeg";
  else if (g_str_has_suffix (lower, ".tif") || g_str_has_suffix (lower, ".tiff"))
    type = "tiff";
  else if (g_str_has_suffix (lower, ".bmp"))
    type = "bmp";
  g_autoptr (GdkPixbuf) pb = studio_pixbuf_from_image (img);
  if (!pb)
    return g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, _ ("Out of memory.")), FALSE;
  if (g_str_equal (type, "jpeg") && gdk_pixbuf_get_has_alpha (pb)) {
    /* JPEG has no alpha: flatten onto white */
    g_autoptr (GdkPixbuf) flat =
        gdk_pixbuf_composite_color_simple (pb, img->width, img->height, GDK_INTERP_NEAREST, 255, 1, 0xffffff, 0xffffff);
    return studio_pixbuf_save (flat, path, type, error);
  }
  /* a PNG carries what made it, as the CLI's do (`deepgen generate --from`) */
  const Entry *e = self->current >= 0 ? g_ptr_array_index (self->entries, self->current) : NULL;
  return studio_pixbuf_save_with_text (pb, path, type, e && e->params ? DG_JOB_PARAMS_KEY : NULL, e ? e->params : NULL,
                                       error);
}

static void
on_open_clicked (GtkButton *b, StudioWindow *self)
{
  g_autoptr (GtkFileChooserNative) chooser = gtk_file_chooser_native_new (
      _ ("Open an image"), GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_OPEN, _ ("_Open"), _ ("_Cancel"));
  GtkFileFilter *filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _ ("Images"));
  gtk_file_filter_add_pixbuf_formats (filter);
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), filter);
  if (gtk_native_dialog_run (GTK_NATIVE_DIALOG (chooser)) != GTK_RESPONSE_ACCEPT)
    return;
  g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));
  g_autoptr (GError) error = NULL;
  if (!studio_window_open (self, file, &error))
    gtk_label_set_text (GTK_LABEL (self->status), error->message);
}

/* ---- reference images -------------------------------------------------------------------- */

/* The panel's reference list holds files here (a GFile each, the panel's to forget); their pixels
 * are read when a run starts, so a file changed since it was added is read as it is now. */
static DgImage *
read_reference_file (gpointer item, gpointer user_data, GError **error)
{
  GFile *file = item;
  g_autoptr (GError) local = NULL;
  DgImage *img = load_image_file (file, &local);
  if (!img) {
    g_autofree char *name = g_file_get_parse_name (file);
    /* TRANSLATORS: %s: a file name, then the reason it could not be read */
    g_set_error (error, DG_ERROR, DG_ERROR_FAILED, _ ("The reference image %s could not be read: %s"), name,
                 local->message);
  }
  return img;
}

void
studio_window_add_reference (StudioWindow *self, GFile *file)
{
  g_return_if_fail (STUDIO_IS_WINDOW (self));
  g_autofree char *name = g_file_get_basename (file);
  /* just chosen: ticked, so that the next edit takes it */
  dg_panel_add_reference_layer (DG_PANEL (self->panel), name, g_object_ref (file), TRUE);
}

static void
on_add_reference_clicked (GtkButton *b, StudioWindow *self)
{
  g_autoptr (GtkFileChooserNative) chooser = gtk_file_chooser_native_new (
      _ ("Add reference images"), GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_OPEN, _ ("_Add"), _ ("_Cancel"));
  gtk_file_chooser_set_select_multiple (GTK_FILE_CHOOSER (chooser), TRUE);
  GtkFileFilter *filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _ ("Images"));
  gtk_file_filter_add_pixbuf_formats (filter);
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), filter);
  if (gtk_native_dialog_run (GTK_NATIVE_DIALOG (chooser)) != GTK_RESPONSE_ACCEPT)
    return;
  GSList *files = gtk_file_chooser_get_files (GTK_FILE_CHOOSER (chooser));
  for (GSList *f = files; f; f = f->next) studio_window_add_reference (self, f->data);
  g_slist_free_full (files, g_object_unref);
}

static void
on_save_clicked (GtkButton *b, StudioWindow *self)
{
  g_autoptr (GtkFileChooserNative) chooser = gtk_file_chooser_native_new (
      _ ("Save the image"), GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_SAVE, _ ("_Save"), _ ("_Cancel"));
  gtk_file_chooser_set_do_overwrite_confirmation (GTK_FILE_CHOOSER (chooser), TRUE);
  g_autofree char *stem = self->basename ? g_strndup (self->basename, strcspn (self->basename, ".")) : NULL;
  g_autofree char *name = g_strdup_printf ("%s-deepgen.png", stem ? stem : "image");
  gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (chooser), name);
  if (gtk_native_dialog_run (GTK_NATIVE_DIALOG (chooser)) != GTK_RESPONSE_ACCEPT)
    return;
  g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));
  g_autoptr (GError) error = NULL;
  if (!studio_window_save (self, file, &error))
    gtk_label_set_text (GTK_LABEL (self->status), error->message);
}

/* ---- Expand Canvas ------------------------------------------------------------------------ */

/* One expand of the current image (DgTaskSpec.expand), run in a worker thread with the panel's
 * other settings; the result, the whole grown image, becomes a history entry. */
typedef struct {
  StudioWindow *self; /* a reference */
  DgImage *source;
  DgExpandSides sides;
  char *aspect, *prompt, *folder;
  char **strings; /* the panel's spec's */
  DgTaskSpec spec;
} ExpandJob;

static void
expand_job_free (ExpandJob *j)
{
  g_object_unref (j->self);
  dg_image_free (j->source);
  g_free (j->aspect);
  g_free (j->prompt);
  g_free (j->folder);
  g_strfreev (j->strings);
  g_free (j);
}

typedef struct {
  StudioWindow *self;
  char *text;
} StatusText;

static gboolean
expand_status (gpointer data)
{
  StatusText *t = data;
  g_autofree char *line = g_strdup_printf (_ ("Expanding: %s"), t->text);
  gtk_label_set_text (GTK_LABEL (t->self->status), line);
  g_object_unref (t->self);
  g_free (t->text);
  g_free (t);
  return G_SOURCE_REMOVE;
}

static void
expand_progress (DgStage stage, int step, int n_steps, gpointer data)
{
  ExpandJob *j = data;
  StatusText *t = g_new (StatusText, 1);
  t->self = g_object_ref (j->self);
  t->text = dg_task_progress_text (stage, step, n_steps);
  g_idle_add (expand_status, t);
}

static void
expand_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  ExpandJob *j = data;
  GError *error = NULL;
  DgModel *model = dg_task_model_acquire (j->folder, &error);
  DgTaskResult *res = model ? dg_task_run (model, &j->spec, expand_progress, j, cancellable, &error) : NULL;
  if (model)
    dg_task_model_release (model);
  if (res)
    g_task_return_pointer (task, res, (GDestroyNotify) dg_task_result_free);
  else
    g_task_return_error (task, error);
}

static void
expand_done (GObject *source, GAsyncResult *result, gpointer data)
{
  StudioWindow *self = STUDIO_WINDOW (source);
  ExpandJob *j = g_task_get_task_data (G_TASK (result));
  g_autoptr (GError) error = NULL;
  g_autoptr (DgTaskResult) res = g_task_propagate_pointer (G_TASK (result), &error);
  g_object_set_data (G_OBJECT (self), "dg-expanding", NULL);
  if (!res) {
    gtk_label_set_text (GTK_LABEL (self->status), error->message);
    update_panel_source (self);
    if (g_getenv ("DEEPGEN_AUTOPILOT"))
      g_printerr ("autopilot: error: %s\n", error->message);
    return;
  }
  g_autofree char *label = g_strdup_printf ("%s: %s", _ ("Expand"), j->prompt);
  add_entry (self, g_steal_pointer (&res->image), label, res->params);
  gtk_label_set_text (GTK_LABEL (self->status), "");
  const DgImage *img = current_image (self);
  if (g_getenv ("DEEPGEN_AUTOPILOT")) { /* ui/dg_autopilot.h: then save= and close */
    g_printerr ("autopilot: expanded to %dx%d\n", img->width, img->height);
    autopilot_close (GTK_WINDOW (self));
  }
}

static void
on_expand_clicked (GtkButton *button, StudioWindow *self)
{
  const DgImage *img = current_image (self);
  if (!img)
    return;
  GtkWidget *dialog = gtk_dialog_new_with_buttons (_ ("Expand Canvas"), GTK_WINDOW (self), GTK_DIALOG_MODAL,
                                                   _ ("_Close"), GTK_RESPONSE_CANCEL, NULL);
  GtkWidget *expand = gtk_dialog_add_button (GTK_DIALOG (dialog), _ ("_Expand"), GTK_RESPONSE_OK);
  gtk_dialog_set_default_response (GTK_DIALOG (dialog), GTK_RESPONSE_OK);
  /* the form starts from the panel's prompt and the last sides */
  DgExpandSides *last = g_object_get_data (G_OBJECT (self), "dg-expand-sides");
  const char *last_aspect = g_object_get_data (G_OBJECT (self), "dg-expand-aspect");
  g_autofree char *prompt = dg_panel_dup_prompt (DG_PANEL (self->panel));
  GtkWidget *form = dg_expand_form_new (img->width, img->height, last, last_aspect, prompt, expand);
  gtk_box_pack_start (GTK_BOX (gtk_dialog_get_content_area (GTK_DIALOG (dialog))), form, TRUE, TRUE, 0);
  gtk_widget_show_all (dialog);
  dg_autopilot_attach_expand (form);
  const gboolean ok = gtk_dialog_run (GTK_DIALOG (dialog)) == GTK_RESPONSE_OK;
  ExpandJob *j = g_new0 (ExpandJob, 1);
  if (ok)
    dg_expand_form_get (form, &j->sides, &j->aspect, &j->prompt);
  gtk_widget_destroy (dialog);
  if (!ok) {
    g_free (j);
    return;
  }
  g_object_set_data_full (G_OBJECT (self), "dg-expand-sides", g_memdup2 (&j->sides, sizeof j->sides), g_free);
  g_object_set_data_full (G_OBJECT (self), "dg-expand-aspect", g_strdup (j->aspect), g_free);

  j->self = g_object_ref (self);
  dg_panel_get_spec (DG_PANEL (self->panel), &j->spec, &j->strings);
  g_object_get (self->panel, "model-folder", &j->folder, NULL);
  g_autoptr (GError) error = NULL;
  DgExpandSides sides;
  if (!(j->source = dg_image_copy (img)) ||
      !dg_task_expand_sides (&j->sides, j->aspect, img->width, img->height, &sides, &error)) {
    gtk_label_set_text (GTK_LABEL (self->status), error ? error->message : _ ("Out of memory."));
    expand_job_free (j);
    return;
  }
  j->sides = sides;
  j->spec.job = DG_JOB_INPAINT;
  j->spec.expand = &j->sides;
  j->spec.prompt = j->prompt;
  j->spec.source = j->source;
  j->spec.selection = NULL;
  j->spec.n_results = 1;
  if (!dg_task_check (&j->spec, &error)) {
    gtk_label_set_text (GTK_LABEL (self->status), error->message);
    expand_job_free (j);
    return;
  }
  g_object_set_data (G_OBJECT (self), "dg-expanding", GINT_TO_POINTER (1));
  gtk_widget_set_sensitive (self->expand_button, FALSE);
  gtk_label_set_text (GTK_LABEL (self->status), _ ("Expanding: loading the model…"));
  g_autoptr (GTask) task = g_task_new (self, NULL, expand_done, NULL);
  g_task_set_task_data (task, j, (GDestroyNotify) expand_job_free);
  g_task_run_in_thread (task, expand_thread);
}

/* ---- tools ------------------------------------------------------------------------------ */

static void
on_tool_toggled (GtkToggleButton *b, StudioWindow *self)
{
  const gboolean brush = gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->brush_tool));
  studio_canvas_set_tool (STUDIO_CANVAS (self->canvas), brush ? STUDIO_TOOL_BRUSH : STUDIO_TOOL_RECTANGLE);
  gtk_widget_set_sensitive (self->brush_spin, brush);
}

static void
on_brush_size (GtkSpinButton *spin, StudioWindow *self)
{
  studio_canvas_set_brush_radius (STUDIO_CANVAS (self->canvas), gtk_spin_button_get_value_as_int (spin));
}

static void
on_clear_clicked (GtkButton *b, StudioWindow *self)
{
  studio_canvas_clear_mask (STUDIO_CANVAS (self->canvas));
}

void
studio_window_select_rectangle (StudioWindow *self, int x, int y, int width, int height)
{
  studio_canvas_select_rectangle (STUDIO_CANVAS (self->canvas), x, y, width, height);
}

void
studio_window_set_job (StudioWindow *self, DgJob job)
{
  g_object_set (self->panel, "job", (int) job, NULL);
}

void
studio_window_set_model_folder (StudioWindow *self, const char *folder)
{
  g_object_set (self->panel, "model-folder", folder, NULL);
}

/* The autopilot's Expand Canvas: the panel's steps and model from it, then the button. */
static gboolean
autopilot_expand (gpointer data)
{
  StudioWindow *self = data;
  g_autofree char *steps = dg_autopilot_value ("steps"), *model = dg_autopilot_value ("model");
  if (steps)
    g_object_set (self->panel, "steps", atoi (steps), NULL);
  if (model)
    g_object_set (self->panel, "model-folder", model, NULL);
  /* what autopilot_close saves, as dg_autopilot_attach sets it for the panel's runs */
  g_object_set_data_full (G_OBJECT (self), "dg-autopilot-save", dg_autopilot_value ("save"), g_free);
  gtk_button_clicked (GTK_BUTTON (self->expand_button));
  return G_SOURCE_REMOVE;
}

void
studio_window_set_in_process (StudioWindow *self, gboolean in_process)
{
  g_object_set (self->panel, "in-process", in_process, NULL);
}

/* ---- construction ----------------------------------------------------------------------- */

static void
studio_window_finalize (GObject *object)
{
  StudioWindow *self = STUDIO_WINDOW (object);
  g_ptr_array_unref (self->entries);
  g_free (self->basename);
  G_OBJECT_CLASS (studio_window_parent_class)->finalize (object);
}

static void
studio_window_init (StudioWindow *self)
{
  self->entries = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_free);
  self->current = -1;
  gtk_window_set_title (GTK_WINDOW (self), _ ("DeepGen Studio"));
  gtk_window_set_default_size (GTK_WINDOW (self), 1120, 740);
  gtk_window_set_icon_name (GTK_WINDOW (self), "org.deepgen.Studio");

  /* A plain row of buttons rather than a header bar: it looks the same with every window
   * manager (and without one, as under Xvfb for the screenshots). */
  GtkWidget *outer = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  gtk_container_add (GTK_CONTAINER (self), outer);
  GtkWidget *bar = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_container_set_border_width (GTK_CONTAINER (bar), 6);
  GtkWidget *open = gtk_button_new_with_mnemonic (_ ("_Open…"));
  self->save_button = gtk_button_new_with_mnemonic (_ ("_Save As…"));
  gtk_widget_set_sensitive (self->save_button, FALSE);
  self->expand_button = gtk_button_new_with_mnemonic (_ ("E_xpand Canvas…"));
  gtk_widget_set_tooltip_text (self->expand_button, _ ("Grow the canvas and paint the new area around the image"));
  gtk_widget_set_sensitive (self->expand_button, FALSE);
  GtkWidget *add_reference = gtk_button_new_with_mnemonic (_ ("Add _reference image…"));
  gtk_widget_set_tooltip_text (add_reference, _ ("Other images the model sees after this one when it edits or "
                                                 "inpaints; they are listed in the panel with ticks"));
  g_signal_connect (add_reference, "clicked", G_CALLBACK (on_add_reference_clicked), self);
  g_signal_connect (open, "clicked", G_CALLBACK (on_open_clicked), self);
  g_signal_connect (self->save_button, "clicked", G_CALLBACK (on_save_clicked), self);
  g_signal_connect (self->expand_button, "clicked", G_CALLBACK (on_expand_clicked), self);
  gtk_box_pack_start (GTK_BOX (bar), open, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (bar), self->save_button, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (bar), self->expand_button, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (bar), add_reference, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (bar), gtk_separator_new (GTK_ORIENTATION_VERTICAL), FALSE, FALSE, 6);
  gtk_box_pack_start (GTK_BOX (outer), bar, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (outer), gtk_separator_new (GTK_ORIENTATION_HORIZONTAL), FALSE, FALSE, 0);

  GtkWidget *paned = gtk_paned_new (GTK_ORIENTATION_HORIZONTAL);
  gtk_box_pack_start (GTK_BOX (outer), paned, TRUE, TRUE, 0);

  /* left: tools and the image */
  GtkWidget *left = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  gtk_container_set_border_width (GTK_CONTAINER (left), 6);
  GtkWidget *tools = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *mark = gtk_label_new (_ ("Mark the region:"));
  self->rect_tool = gtk_radio_button_new_with_mnemonic (NULL, _ ("_Rectangle"));
  self->brush_tool = gtk_radio_button_new_with_mnemonic_from_widget (GTK_RADIO_BUTTON (self->rect_tool), _ ("_Brush"));
  self->brush_spin = gtk_spin_button_new_with_range (1, 500, 1);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->brush_spin), 24);
  gtk_widget_set_tooltip_text (self->brush_spin, _ ("Brush radius in image pixels"));
  gtk_widget_set_sensitive (self->brush_spin, FALSE);
  GtkWidget *clear = gtk_button_new_with_mnemonic (_ ("C_lear"));
  gtk_widget_set_tooltip_text (clear, _ ("Unmark everything: the job then works on the whole image."));
  gtk_box_pack_start (GTK_BOX (tools), mark, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (tools), self->rect_tool, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (tools), self->brush_tool, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (tools), self->brush_spin, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (tools), clear, FALSE, FALSE, 0);
  g_signal_connect (self->rect_tool, "toggled", G_CALLBACK (on_tool_toggled), self);
  g_signal_connect (self->brush_spin, "value-changed", G_CALLBACK (on_brush_size), self);
  g_signal_connect (clear, "clicked", G_CALLBACK (on_clear_clicked), self);
  gtk_box_pack_start (GTK_BOX (bar), tools, FALSE, FALSE, 0);

  self->canvas = studio_canvas_new ();
  g_object_set_data_full (G_OBJECT (self->canvas), "empty-text",
                          g_strdup (_ ("Open an image to edit it, or generate a new one with the panel.")), g_free);
  g_signal_connect (self->canvas, "mask-changed", G_CALLBACK (on_mask_changed), self);
  gtk_box_pack_start (GTK_BOX (left), self->canvas, TRUE, TRUE, 0);
  self->status = gtk_label_new ("");
  gtk_label_set_xalign (GTK_LABEL (self->status), 0.0);
  gtk_label_set_ellipsize (GTK_LABEL (self->status), PANGO_ELLIPSIZE_END);
  gtk_box_pack_start (GTK_BOX (left), self->status, FALSE, FALSE, 0);

  /* history: a strip of thumbnails under the image, oldest first */
  GtkWidget *hl = gtk_label_new (NULL);
  g_autofree char *markup = g_strdup_printf ("<b>%s</b>", _ ("History"));
  gtk_label_set_markup (GTK_LABEL (hl), markup);
  gtk_label_set_xalign (GTK_LABEL (hl), 0.0);
  gtk_box_pack_start (GTK_BOX (left), hl, FALSE, FALSE, 0);
  self->history = gtk_flow_box_new ();
  gtk_orientable_set_orientation (GTK_ORIENTABLE (self->history), GTK_ORIENTATION_VERTICAL);
  gtk_flow_box_set_max_children_per_line (GTK_FLOW_BOX (self->history), 1);
  gtk_flow_box_set_selection_mode (GTK_FLOW_BOX (self->history), GTK_SELECTION_BROWSE);
  gtk_flow_box_set_activate_on_single_click (GTK_FLOW_BOX (self->history), TRUE);
  gtk_widget_set_halign (self->history, GTK_ALIGN_START);
  g_signal_connect (self->history, "selected-children-changed", G_CALLBACK (on_history_selected), self);
  GtkWidget *hscroll = gtk_scrolled_window_new (NULL, NULL);
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (hscroll), GTK_POLICY_AUTOMATIC, GTK_POLICY_NEVER);
  gtk_scrolled_window_set_shadow_type (GTK_SCROLLED_WINDOW (hscroll), GTK_SHADOW_IN);
  gtk_container_add (GTK_CONTAINER (hscroll), self->history);
  gtk_box_pack_start (GTK_BOX (left), hscroll, FALSE, FALSE, 0);
  gtk_paned_pack1 (GTK_PANED (paned), left, TRUE, FALSE);

  /* right: the panel and the history */
  GtkWidget *right = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_set_size_request (right, 400, -1);
  self->panel = dg_panel_new (DG_JOB_GENERATE);
  g_signal_connect (self->panel, "apply", G_CALLBACK (on_apply), self);
  dg_panel_set_reference_remover (DG_PANEL (self->panel), g_object_unref);
  dg_panel_set_reference_reader (DG_PANEL (self->panel), read_reference_file, self);
  GtkWidget *panel_scroll = gtk_scrolled_window_new (NULL, NULL);
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (panel_scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_propagate_natural_height (GTK_SCROLLED_WINDOW (panel_scroll), TRUE);
  gtk_container_add (GTK_CONTAINER (panel_scroll), self->panel);
  gtk_box_pack_start (GTK_BOX (right), panel_scroll, TRUE, TRUE, 0);

  gtk_paned_pack2 (GTK_PANED (paned), right, FALSE, FALSE);

  gtk_widget_show_all (outer);
  update_panel_source (self);
  /* the test autopilot (ui/dg_autopilot.h) drives the panel, or, with expand=…, Expand Canvas */
  /* reference=FILE: as if added with "Add reference image…" (ticked) */
  g_autofree char *pilot_reference = dg_autopilot_value ("reference");
  if (pilot_reference) {
    g_autoptr (GFile) file = g_file_new_for_path (pilot_reference);
    studio_window_add_reference (self, file);
  }
  g_autofree char *pilot_expand = dg_autopilot_value ("expand");
  if (pilot_expand)
    g_timeout_add (1000, autopilot_expand, self);
  else
    dg_autopilot_attach (GTK_WINDOW (self), DG_PANEL (self->panel), autopilot_close);
}

static void
studio_window_class_init (StudioWindowClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = studio_window_finalize;
}

StudioWindow *
studio_window_new (GtkApplication *app)
{
  return g_object_new (STUDIO_TYPE_WINDOW, "application", app, NULL);
}
