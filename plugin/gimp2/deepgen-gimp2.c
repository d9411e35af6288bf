/* deepgen-gimp2: the GIMP 2.10 plug-in, the same three procedures and arguments as the GIMP 3
 * one (plugin/gimp3) and the same GTK 3 panel.
 *
 * It links libgimp-2.0 and GTK 3 only: libgimpui-2.0 is GTK 2, and the two GTKs in one process
 * abort at gtk_init (ENV.md). So the dialog is a plain GtkDialog, and last values are kept with
 * gimp_get_data/gimp_set_data.
 *
 * Script-Fu:
 *   (plug-in-deepgen-edit RUN-NONINTERACTIVE image drawable "prompt" "negative" steps guidance
 *                         seed "fit" max-size "model-folder")          → the new layer
 * Safety as in GIMP 3: the image changes only after the result exists, inside one undo group. */
#include <string.h>

#include <libgimp/gimp.h>
#include <gtk/gtk.h>

#include "dg_autopilot.h"
#include "dg_gettext.h"
#include "dg_panel.h"
#include "dg_procedures.h"
#include "dg_task.h"

static void query (void);
static void run (const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals, GimpParam **return_vals);

const GimpPlugInInfo PLUG_IN_INFO = { NULL, NULL, query, run };

MAIN ()

/* The arguments after run-mode, image, drawable, in this order (as in GIMP 3). */
enum { ARG_RUN_MODE, ARG_IMAGE, ARG_DRAWABLE, ARG_PROMPT, ARG_NEGATIVE, ARG_STEPS, ARG_GUIDANCE, ARG_SEED,
       ARG_POLICY, ARG_MAX_SIZE, ARG_FOLDER, N_ARGS };

static void
query (void)
{
  static const GimpParamDef args[N_ARGS] = {
    { GIMP_PDB_INT32, "run-mode", "The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1) }" },
    { GIMP_PDB_IMAGE, "image", "Input image" },
    { GIMP_PDB_DRAWABLE, "drawable", "The layer to work on (generate: the layer to put the result above)" },
    { GIMP_PDB_STRING, "prompt", DG_ARG_PROMPT_BLURB },
    { GIMP_PDB_STRING, "negative-prompt", DG_ARG_NEGATIVE_BLURB },
    { GIMP_PDB_INT32, "steps", DG_ARG_STEPS_BLURB },
    { GIMP_PDB_FLOAT, "guidance", DG_ARG_GUIDANCE_BLURB },
    { GIMP_PDB_INT32, "seed", DG_ARG_SEED_BLURB },
    { GIMP_PDB_STRING, "size-policy", DG_ARG_POLICY_BLURB },
    { GIMP_PDB_INT32, "max-size", DG_ARG_MAX_SIZE_BLURB },
    { GIMP_PDB_STRING, "model-folder", DG_ARG_FOLDER_BLURB },
  };
  static const GimpParamDef rets[] = { { GIMP_PDB_LAYER, "layer", "The new layer" } };

  gimp_plugin_domain_register (GETTEXT_PACKAGE, dg_i18n_localedir ());
  for (guint i = 0; i < G_N_ELEMENTS (dg_procedures); i++)
    {
      const DgProcedure *p = &dg_procedures[i];
      /* GIMP 2.10 translates blurb, help and menu label with the registered domain. */
      gimp_install_procedure (p->name, p->blurb, p->help, DG_PROCEDURE_AUTHOR, DG_PROCEDURE_AUTHOR,
                              DG_PROCEDURE_DATE, p->menu_label, "RGB*, GRAY*, INDEXED*", GIMP_PLUGIN, N_ARGS,
                              G_N_ELEMENTS (rets), args, rets);
      gimp_plugin_menu_register (p->name, DG_MENU_PATH);
    }
}

/* ---- settings, remembered with gimp_set_data ---------------------------------------------- */

typedef struct {
  char prompt[2048];
  char negative[1024];
  char policy[16];
  char folder[2048];
  gint32 steps, seed, max_size;
  double guidance;
} Settings;

static void
settings_default (Settings *s)
{
  memset (s, 0, sizeof *s);
  g_strlcpy (s->policy, "fit", sizeof s->policy);
  s->steps = DG_TASK_DEFAULT_STEPS;
  s->seed = DG_TASK_RANDOM_SEED;
  s->max_size = DG_TASK_DEFAULT_MAX_SIZE;
  s->guidance = DG_TASK_DEFAULT_GUIDANCE;
}

static void
settings_from_params (Settings *s, const GimpParam *param)
{
  g_strlcpy (s->prompt, param[ARG_PROMPT].data.d_string ? param[ARG_PROMPT].data.d_string : "", sizeof s->prompt);
  g_strlcpy (s->negative, param[ARG_NEGATIVE].data.d_string ? param[ARG_NEGATIVE].data.d_string : "",
             sizeof s->negative);
  g_strlcpy (s->policy, param[ARG_POLICY].data.d_string ? param[ARG_POLICY].data.d_string : "fit", sizeof s->policy);
  g_strlcpy (s->folder, param[ARG_FOLDER].data.d_string ? param[ARG_FOLDER].data.d_string : "", sizeof s->folder);
  s->steps = param[ARG_STEPS].data.d_int32;
  s->guidance = param[ARG_GUIDANCE].data.d_float;
  s->seed = param[ARG_SEED].data.d_int32;
  s->max_size = param[ARG_MAX_SIZE].data.d_int32;
}

static void
settings_to_panel (const Settings *s, GtkWidget *panel)
{
  g_object_set (panel, "prompt", s->prompt, "negative-prompt", s->negative, "steps", CLAMP (s->steps, 1, DG_TASK_MAX_STEPS),
                "guidance", CLAMP (s->guidance, 0.0, DG_TASK_MAX_GUIDANCE), "seed", (gint64) MAX (-1, s->seed),
                "size-policy", s->policy, "max-size", CLAMP (s->max_size, DG_TASK_MIN_SIZE, DG_TASK_MAX_SIZE),
                "model-folder", s->folder, NULL);
}

static void
settings_from_panel (Settings *s, GtkWidget *panel)
{
  g_autofree char *prompt = NULL, *negative = NULL, *policy = NULL, *folder = NULL;
  gint64 seed = -1;
  int steps = 0, max_size = 0;
  g_object_get (panel, "prompt", &prompt, "negative-prompt", &negative, "steps", &steps, "guidance", &s->guidance,
                "seed", &seed, "size-policy", &policy, "max-size", &max_size, "model-folder", &folder, NULL);
  g_strlcpy (s->prompt, prompt ? prompt : "", sizeof s->prompt);
  g_strlcpy (s->negative, negative ? negative : "", sizeof s->negative);
  g_strlcpy (s->policy, policy ? policy : "fit", sizeof s->policy);
  g_strlcpy (s->folder, folder ? folder : "", sizeof s->folder);
  s->steps = steps;
  s->seed = (gint32) seed;
  s->max_size = max_size;
}

/* ---- reading the image -------------------------------------------------------------------- */

typedef struct {
  gint32 drawable;            /* the selected layer, or -1 */
  DgImage *pixels;
  DgMask *selection;
  int offset_x, offset_y, width, height;
} Source;

static void
source_clear (Source *s)
{
  dg_image_free (s->pixels);
  dg_image_free (s->selection);
}

static gboolean
read_source (gint32 image, gint32 drawable, const DgProcedure *info, Source *src, GError **error)
{
  src->drawable = drawable;
  if (gimp_image_base_type (image) == GIMP_INDEXED)
    return g_set_error_literal (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                                _("DeepGen works on RGB and grayscale images. Convert this indexed image first "
                                  "(Image ▸ Mode ▸ RGB).")),
           FALSE;
  const gboolean on_layer = info->job != DG_JOB_GENERATE;
  if (on_layer || drawable >= 0)
    {
      if (!gimp_item_is_valid (drawable) || !gimp_item_is_layer (drawable) || gimp_item_is_layer_mask (drawable))
        return g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                                    _("DeepGen works on layers: select a layer, not a channel or a layer mask.")),
               FALSE;
      if (on_layer && gimp_item_is_group (drawable))
        return g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                                    _("DeepGen cannot edit a layer group: select one of its layers, or merge the "
                                      "group first.")),
               FALSE;
    }
  if (on_layer)
    {
      gimp_drawable_offsets (drawable, &src->offset_x, &src->offset_y);
      src->width = gimp_drawable_width (drawable);
      src->height = gimp_drawable_height (drawable);
    }
  else
    {
      src->width = gimp_image_width (image);
      src->height = gimp_image_height (image);
    }

  if (!gimp_selection_is_empty (image))
    {
      int x, y, w, h;
      if (on_layer && !gimp_drawable_mask_intersect (drawable, &x, &y, &w, &h))
        return g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                                    _("The selection does not touch the layer: select part of the layer, or "
                                      "select nothing to work on all of it.")),
               FALSE;
      src->selection = dg_image_new (src->width, src->height, 1);
      if (!src->selection)
        return g_set_error_literal (error, DG_ERROR, DG_ERROR_OOM, _("Not enough memory for the selection.")), FALSE;
      GeglBuffer *buf = gimp_drawable_get_buffer (gimp_image_get_selection (image));
      gegl_buffer_get (buf, GEGL_RECTANGLE (src->offset_x, src->offset_y, src->width, src->height), 1.0,
                       babl_format ("Y u8"), src->selection->pixels, src->selection->rowstride, GEGL_ABYSS_NONE);
      g_object_unref (buf);
    }

  if (on_layer)
    {
      const gboolean alpha = gimp_drawable_has_alpha (drawable);
      src->pixels = dg_image_new (src->width, src->height, alpha ? 4 : 3);
      if (!src->pixels)
        return g_set_error (error, DG_ERROR, DG_ERROR_OOM, _("Not enough memory to read the %d×%d layer."),
                            src->width, src->height),
               FALSE;
      GeglBuffer *buf = gimp_drawable_get_buffer (drawable);
      gegl_buffer_get (buf, GEGL_RECTANGLE (0, 0, src->width, src->height), 1.0,
                       babl_format (alpha ? "R'G'B'A u8" : "R'G'B' u8"), src->pixels->pixels, src->pixels->rowstride,
                       GEGL_ABYSS_NONE);
      g_object_unref (buf);
    }
  return TRUE;
}

/* ---- writing the result ------------------------------------------------------------------- */

static gint32
apply_result (gint32 image, const Source *src, gboolean has_selection, const DgTaskResult *res, const char *prompt,
              GError **error)
{
  const DgImage *img = res->image;
  g_autofree char *name = dg_task_layer_name (prompt);
  const GimpImageType type = gimp_image_base_type (image) == GIMP_GRAY ? GIMP_GRAYA_IMAGE : GIMP_RGBA_IMAGE;

  gimp_image_undo_group_start (image);
  const gint32 layer = gimp_layer_new (image, name, img->width, img->height, type, 100.0,
                                       gimp_image_get_default_new_layer_mode (image));
  if (layer < 0)
    {
      gimp_image_undo_group_end (image);
      g_set_error_literal (error, DG_ERROR, DG_ERROR_FAILED, _("GIMP could not create the new layer."));
      return -1;
    }
  gint32 parent = -1;
  int position = 0;
  if (src->drawable >= 0)
    {
      parent = gimp_item_get_parent (src->drawable);
      position = gimp_image_get_item_position (image, src->drawable);
    }
  gimp_image_insert_layer (image, layer, parent > 0 ? parent : 0, position);
  gimp_layer_set_offsets (layer, src->offset_x + res->x, src->offset_y + res->y);

  GeglBuffer *buf = gimp_drawable_get_buffer (layer);
  gegl_buffer_set (buf, GEGL_RECTANGLE (0, 0, img->width, img->height), 0,
                   babl_format (img->channels == 4 ? "R'G'B'A u8" : "R'G'B' u8"), img->pixels, img->rowstride);
  g_object_unref (buf);

  if (has_selection)
    gimp_layer_add_mask (layer, gimp_layer_create_mask (layer, GIMP_ADD_MASK_SELECTION));
  gimp_drawable_update (layer, 0, 0, img->width, img->height);
  gimp_image_undo_group_end (image);
  return layer;
}

/* ---- running ------------------------------------------------------------------------------ */

static void
on_progress (DgStage stage, int step, int n_steps, gpointer user_data)
{
  g_autofree char *text = dg_task_progress_text (stage, step, n_steps);
  gimp_progress_set_text (text);
  gimp_progress_update (dg_task_progress_fraction (stage, step, n_steps));
}

static DgTaskResult *
run_direct (const Settings *s, const DgProcedure *info, const Source *src, GError **error)
{
  DgProcedureArgs args = { s->prompt, s->negative, s->policy, s->folder, s->steps, s->seed, s->max_size, s->guidance };
  DgTaskSpec spec;
  if (!dg_procedure_spec (&args, info->job, src->pixels, src->selection, src->width, src->height, &spec, error))
    return NULL;
  gimp_progress_init (_("DeepGen: loading the model…"));
  DgTaskResult *res = dg_procedure_run (&spec, s->folder, on_progress, error);
  gimp_progress_end ();
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

static DgTaskResult *
run_dialog (Settings *s, const DgProcedure *info, Source *src)
{
  gtk_init (NULL, NULL);
  DialogState st = { 0 };
  st.dialog = gtk_dialog_new_with_buttons (_(info->title), NULL, 0, _("_Close"), GTK_RESPONSE_CANCEL, NULL);
  gtk_window_set_role (GTK_WINDOW (st.dialog), "deepgen-gimp2");
  gtk_window_set_default_size (GTK_WINDOW (st.dialog), 460, -1);
  GtkWidget *panel = dg_panel_new (info->job);
  g_object_set (panel, "job-selectable", FALSE, NULL);
  settings_to_panel (s, panel);
  dg_panel_set_source (DG_PANEL (panel), g_steal_pointer (&src->pixels), src->selection ? dg_image_copy (src->selection) : NULL,
                       src->width, src->height);
  g_signal_connect (panel, "apply", G_CALLBACK (on_panel_apply), &st);
  gtk_box_pack_start (GTK_BOX (gtk_dialog_get_content_area (GTK_DIALOG (st.dialog))), panel, TRUE, TRUE, 0);
  gtk_widget_show_all (st.dialog);
  dg_autopilot_attach (GTK_WINDOW (st.dialog), DG_PANEL (panel), close_dialog);

  gtk_dialog_run (GTK_DIALOG (st.dialog));
  settings_from_panel (s, panel);
  gtk_widget_destroy (st.dialog);
  return st.result;
}

static GimpParam return_values[2];

static void
set_return (gint *nreturn_vals, GimpParam **return_vals, GimpPDBStatusType status, gint32 layer, const GError *error)
{
  static char message[1024];
  return_values[0].type = GIMP_PDB_STATUS;
  return_values[0].data.d_status = status;
  *nreturn_vals = 1;
  if (status == GIMP_PDB_SUCCESS)
    {
      return_values[1].type = GIMP_PDB_LAYER;
      return_values[1].data.d_layer = layer;
      *nreturn_vals = 2;
    }
  else if (error)
    {
      /* GIMP 2.10 shows a string second value of a failed call as its error message */
      g_strlcpy (message, error->message, sizeof message);
      return_values[1].type = GIMP_PDB_STRING;
      return_values[1].data.d_string = message;
      *nreturn_vals = 2;
    }
  *return_vals = return_values;
}

static void
run (const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals, GimpParam **return_vals)
{
  GError *error = NULL;
  dg_i18n_init ();
  gegl_init (NULL, NULL);
  const DgProcedure *info = dg_procedure_find (name);
  const GimpRunMode run_mode = param[ARG_RUN_MODE].data.d_int32;
  if (!info || (run_mode == GIMP_RUN_NONINTERACTIVE && nparams != N_ARGS) || nparams < ARG_DRAWABLE + 1)
    {
      g_set_error (&error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _("%s takes %d arguments, not %d."), name, N_ARGS,
                   nparams);
      set_return (nreturn_vals, return_vals, GIMP_PDB_CALLING_ERROR, -1, error);
      g_error_free (error);
      return;
    }
  const gint32 image = param[ARG_IMAGE].data.d_image;
  const gint32 drawable = param[ARG_DRAWABLE].data.d_drawable;

  Settings s;
  settings_default (&s);
  if (run_mode == GIMP_RUN_NONINTERACTIVE)
    settings_from_params (&s, param);
  else
    gimp_get_data (name, &s);

  Source src = { .drawable = -1 };
  if (!read_source (image, drawable, info, &src, &error))
    {
      source_clear (&src);
      set_return (nreturn_vals, return_vals, GIMP_PDB_EXECUTION_ERROR, -1, error);
      if (run_mode == GIMP_RUN_INTERACTIVE)
        gimp_message (error->message);
      g_error_free (error);
      return;
    }
  const gboolean has_selection = src.selection != NULL;

  DgTaskResult *res = NULL;
  if (run_mode == GIMP_RUN_INTERACTIVE)
    {
      res = run_dialog (&s, info, &src);
      gimp_set_data (name, &s, sizeof s);
      if (!res)
        {
          source_clear (&src);
          set_return (nreturn_vals, return_vals, GIMP_PDB_CANCEL, -1, NULL);
          return;
        }
    }
  else
    {
      res = run_direct (&s, info, &src, &error);
      if (!res)
        {
          source_clear (&src);
          const gboolean calling = g_error_matches (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
          set_return (nreturn_vals, return_vals, calling ? GIMP_PDB_CALLING_ERROR : GIMP_PDB_EXECUTION_ERROR, -1,
                      error);
          g_error_free (error);
          return;
        }
      if (run_mode == GIMP_RUN_WITH_LAST_VALS)
        gimp_set_data (name, &s, sizeof s);
    }

  const gint32 layer = apply_result (image, &src, has_selection, res, s.prompt, &error);
  dg_task_result_free (res);
  source_clear (&src);
  if (layer < 0)
    {
      set_return (nreturn_vals, return_vals, GIMP_PDB_EXECUTION_ERROR, -1, error);
      g_error_free (error);
      return;
    }
  if (run_mode != GIMP_RUN_NONINTERACTIVE)
    gimp_displays_flush ();
  set_return (nreturn_vals, return_vals, GIMP_PDB_SUCCESS, layer, NULL);
}
