/* deepgen-gimp: the GIMP 3 plug-in (DESIGN.md §6). A thin adapter: it reads the layer and the
 * selection into DgImage/DgMask, lets ui/ run the job (dg_task_run, or the panel when
 * interactive), and writes the result back as a new layer with a mask from the selection,
 * inside one undo group. All image logic is model/'s; all settings are procedure arguments
 * (prompt, negative-prompt, steps, guidance, seed, size-policy, max-size, model-folder), so
 * every procedure runs from Script-Fu or Python-Fu, and GIMP remembers them between
 * interactive runs (GimpProcedureConfig).
 *
 * Safety: nothing touches the image until the result exists, and then only between
 * gimp_image_undo_group_start/end. GIMP's Cancel kills this process; before that point the
 * image is untouched, and a group left open is closed by GIMP. */
#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include "dg_autopilot.h"
#include "dg_gettext.h"
#include "dg_panel.h"
#include "dg_procedures.h"
#include "dg_task.h"

#define PLUG_IN_BINARY "deepgen-gimp"
#define PLUG_IN_ROLE "deepgen-gimp"

typedef struct _DeepGen DeepGen;
typedef struct _DeepGenClass DeepGenClass;

struct _DeepGen {
  GimpPlugIn parent_instance;
};

struct _DeepGenClass {
  GimpPlugInClass parent_class;
};

#define DEEPGEN_TYPE (deepgen_get_type ())
GType deepgen_get_type (void) G_GNUC_CONST;

G_DEFINE_TYPE (DeepGen, deepgen, GIMP_TYPE_PLUG_IN)

/* ---- registration ------------------------------------------------------------------------ */

static GList *
deepgen_query_procedures (GimpPlugIn *plug_in)
{
  GList *list = NULL;
  for (guint i = 0; i < G_N_ELEMENTS (dg_procedures); i++)
    list = g_list_append (list, g_strdup (dg_procedures[i].name));
  return list;
}

static gboolean
deepgen_set_i18n (GimpPlugIn *plug_in, const char *procedure_name, char **domain, char **catalog_dir)
{
  /* catalogues in locale/ beside the binary (GIMP's default layout), domain "deepgen" */
  *domain = g_strdup (GETTEXT_PACKAGE);
  *catalog_dir = NULL;
  return TRUE;
}

static GimpValueArray *deepgen_run (GimpProcedure *procedure, GimpRunMode run_mode, GimpImage *image,
                                    GimpDrawable **drawables, GimpProcedureConfig *config, gpointer run_data);

static GimpProcedure *
deepgen_create_procedure (GimpPlugIn *plug_in, const char *name)
{
  const DgProcedure *info = dg_procedure_find (name);
  if (!info)
    return NULL;
  GimpProcedure *p = gimp_image_procedure_new (plug_in, name, GIMP_PDB_PROC_TYPE_PLUGIN, deepgen_run,
                                               (gpointer) info, NULL);
  /* indexed images are listed so that the refusal comes with a message, not a greyed entry */
  gimp_procedure_set_image_types (p, "*");
  gimp_procedure_set_sensitivity_mask (p, GIMP_PROCEDURE_SENSITIVE_DRAWABLE
                                              | (info->job == DG_JOB_GENERATE ? GIMP_PROCEDURE_SENSITIVE_NO_DRAWABLES : 0));
  gimp_procedure_set_menu_label (p, _(info->menu_label));
  gimp_procedure_add_menu_path (p, DG_MENU_PATH);
  gimp_procedure_set_documentation (p, _(info->blurb), _(info->help), name);
  gimp_procedure_set_attribution (p, DG_PROCEDURE_AUTHOR, DG_PROCEDURE_AUTHOR, DG_PROCEDURE_DATE);

  gimp_procedure_add_string_argument (p, "prompt", _("_Prompt"), _(DG_ARG_PROMPT_BLURB), "", G_PARAM_READWRITE);
  gimp_procedure_add_string_argument (p, "negative-prompt", _("_Negative prompt"), _(DG_ARG_NEGATIVE_BLURB), "",
                                      G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (p, "steps", _("_Steps"), _(DG_ARG_STEPS_BLURB), 1, DG_TASK_MAX_STEPS,
                                   DG_TASK_DEFAULT_STEPS, G_PARAM_READWRITE);
  gimp_procedure_add_double_argument (p, "guidance", _("_Guidance"), _(DG_ARG_GUIDANCE_BLURB), 0.0,
                                      DG_TASK_MAX_GUIDANCE, DG_TASK_DEFAULT_GUIDANCE, G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (p, "seed", _("S_eed"), _(DG_ARG_SEED_BLURB), -1, G_MAXINT32, -1, G_PARAM_READWRITE);
  gimp_procedure_add_choice_argument (
      p, "size-policy", _("Output si_ze"), _(DG_ARG_POLICY_BLURB),
      gimp_choice_new_with_values ("fit", DG_SIZE_POLICY_FIT, _("Working size (fast)"), NULL, "region",
                                   DG_SIZE_POLICY_REGION, _("The region's own size (slow)"), NULL, NULL),
      "fit", G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (p, "max-size", _("_Working size"), _(DG_ARG_MAX_SIZE_BLURB), DG_TASK_MIN_SIZE,
                                   DG_TASK_MAX_SIZE, DG_TASK_DEFAULT_MAX_SIZE, G_PARAM_READWRITE);
  gimp_procedure_add_string_argument (p, "model-folder", _("_Model folder"), _(DG_ARG_FOLDER_BLURB), "",
                                      G_PARAM_READWRITE);
  gimp_procedure_add_layer_return_value (p, "layer", _("Layer"), _("The new layer"), FALSE, G_PARAM_READWRITE);
  return p;
}

static void
deepgen_class_init (DeepGenClass *klass)
{
  GimpPlugInClass *pc = GIMP_PLUG_IN_CLASS (klass);
  pc->query_procedures = deepgen_query_procedures;
  pc->create_procedure = deepgen_create_procedure;
  pc->set_i18n = deepgen_set_i18n;
}

static void
deepgen_init (DeepGen *self)
{
}

/* ---- settings <-> config ----------------------------------------------------------------- */

typedef struct {
  char *prompt, *negative, *policy, *folder;
  int steps, seed, max_size;
  double guidance;
} Settings;

static void
settings_clear (Settings *s)
{
  g_free (s->prompt);
  g_free (s->negative);
  g_free (s->policy);
  g_free (s->folder);
}

static void
settings_from_config (Settings *s, GimpProcedureConfig *config)
{
  g_object_get (config, "prompt", &s->prompt, "negative-prompt", &s->negative, "steps", &s->steps, "guidance",
                &s->guidance, "seed", &s->seed, "size-policy", &s->policy, "max-size", &s->max_size, "model-folder",
                &s->folder, NULL);
}

static void
settings_to_panel (const Settings *s, GtkWidget *panel)
{
  g_object_set (panel, "prompt", s->prompt, "negative-prompt", s->negative, "steps", s->steps, "guidance",
                s->guidance, "seed", (gint64) s->seed, "size-policy", s->policy, "max-size", s->max_size,
                "model-folder", s->folder, NULL);
}

static void
panel_to_config (GtkWidget *panel, GimpProcedureConfig *config)
{
  Settings s = { 0 };
  gint64 seed = -1;
  g_object_get (panel, "prompt", &s.prompt, "negative-prompt", &s.negative, "steps", &s.steps, "guidance",
                &s.guidance, "seed", &seed, "size-policy", &s.policy, "max-size", &s.max_size, "model-folder",
                &s.folder, NULL);
  g_object_set (config, "prompt", s.prompt, "negative-prompt", s.negative, "steps", s.steps, "guidance", s.guidance,
                "seed", (int) seed, "size-policy", s.policy, "max-size", s.max_size, "model-folder", s.folder, NULL);
  settings_clear (&s);
}

/* ---- reading the image -------------------------------------------------------------------- */

/* What a run works on, read from GIMP before anything else happens. */
typedef struct {
  GimpDrawable *drawable;     /* the selected layer, or NULL (generate with nothing selected) */
  DgImage *pixels;            /* the layer's pixels (edit, inpaint) */
  DgMask *selection;          /* the selection over the layer (or canvas), NULL = none */
  int offset_x, offset_y;     /* where pixels/selection (0, 0) lies on the canvas */
  int width, height;          /* of the layer, or of the canvas */
} Source;

static void
source_clear (Source *s)
{
  dg_image_free (s->pixels);
  dg_image_free (s->selection);
}

static gboolean
read_source (GimpImage *image, GimpDrawable **drawables, const DgProcedure *info, Source *src, GError **error)
{
  const int n = drawables ? (int) gimp_core_object_array_get_length ((GObject **) drawables) : 0;
  if (n > 1 || (n == 0 && info->job != DG_JOB_GENERATE))
    return g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                                _("Select exactly one layer for DeepGen to work on.")),
           FALSE;
  if (gimp_image_get_base_type (image) == GIMP_INDEXED)
    return g_set_error_literal (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                                _("DeepGen works on RGB and grayscale images. Convert this indexed image first "
                                  "(Image ▸ Mode ▸ RGB).")),
           FALSE;
  src->drawable = n == 1 ? drawables[0] : NULL;
  if (src->drawable && !GIMP_IS_LAYER (src->drawable))
    return g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                                _("DeepGen works on layers: select a layer, not a channel or a layer mask.")),
           FALSE;
  if (src->drawable && info->job != DG_JOB_GENERATE && gimp_item_is_group (GIMP_ITEM (src->drawable)))
    return g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                                _("DeepGen cannot edit a layer group: select one of its layers, or merge the "
                                  "group first.")),
           FALSE;

  const gboolean on_layer = info->job != DG_JOB_GENERATE;
  if (on_layer)
    {
      gimp_drawable_get_offsets (src->drawable, &src->offset_x, &src->offset_y);
      src->width = gimp_drawable_get_width (src->drawable);
      src->height = gimp_drawable_get_height (src->drawable);
    }
  else
    {
      src->offset_x = src->offset_y = 0;
      src->width = gimp_image_get_width (image);
      src->height = gimp_image_get_height (image);
    }

  if (!gimp_selection_is_empty (image))
    {
      int x, y, w, h;
      if (on_layer && !gimp_drawable_mask_intersect (src->drawable, &x, &y, &w, &h))
        return g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                                    _("The selection does not touch the layer: select part of the layer, or "
                                      "select nothing to work on all of it.")),
               FALSE;
      src->selection = dg_image_new (src->width, src->height, 1);
      if (!src->selection)
        return g_set_error_literal (error, DG_ERROR, DG_ERROR_OOM, _("Not enough memory for the selection.")), FALSE;
      GeglBuffer *buf = gimp_drawable_get_buffer (GIMP_DRAWABLE (gimp_image_get_selection (image)));
      gegl_buffer_get (buf, GEGL_RECTANGLE (src->offset_x, src->offset_y, src->width, src->height), 1.0,
                       babl_format ("Y u8"), src->selection->pixels, src->selection->rowstride, GEGL_ABYSS_NONE);
      g_object_unref (buf);
    }

  if (on_layer)
    {
      const gboolean alpha = gimp_drawable_has_alpha (src->drawable);
      src->pixels = dg_image_new (src->width, src->height, alpha ? 4 : 3);
      if (!src->pixels)
        return g_set_error (error, DG_ERROR, DG_ERROR_OOM, _("Not enough memory to read the %d×%d layer."),
                            src->width, src->height),
               FALSE;
      GeglBuffer *buf = gimp_drawable_get_buffer (src->drawable);
      gegl_buffer_get (buf, GEGL_RECTANGLE (0, 0, src->width, src->height), 1.0,
                       babl_format (alpha ? "R'G'B'A u8" : "R'G'B' u8"), src->pixels->pixels, src->pixels->rowstride,
                       GEGL_ABYSS_NONE);
      g_object_unref (buf);
    }
  return TRUE;
}

/* ---- writing the result ------------------------------------------------------------------- */

static GimpLayer *
apply_result (GimpImage *image, const Source *src, gboolean has_selection, const DgTaskResult *res,
              const char *prompt, GError **error)
{
  const DgImage *img = res->image;
  g_autofree char *name = dg_task_layer_name (prompt);
  const GimpImageType type = gimp_image_get_base_type (image) == GIMP_GRAY ? GIMP_GRAYA_IMAGE : GIMP_RGBA_IMAGE;

  gimp_image_undo_group_start (image);
  GimpLayer *layer = gimp_layer_new (image, name, img->width, img->height, type, 100.0,
                                     gimp_image_get_default_new_layer_mode (image));
  if (!layer)
    {
      gimp_image_undo_group_end (image);
      g_set_error_literal (error, DG_ERROR, DG_ERROR_FAILED, _("GIMP could not create the new layer."));
      return NULL;
    }
  GimpLayer *parent = NULL;
  int position = 0;
  if (src->drawable)
    {
      GimpItem *p = gimp_item_get_parent (GIMP_ITEM (src->drawable));
      parent = p && GIMP_IS_LAYER (p) ? GIMP_LAYER (p) : NULL;
      position = gimp_image_get_item_position (image, GIMP_ITEM (src->drawable));
    }
  gimp_image_insert_layer (image, layer, parent, position);
  gimp_layer_set_offsets (layer, src->offset_x + res->x, src->offset_y + res->y);

  GeglBuffer *buf = gimp_drawable_get_buffer (GIMP_DRAWABLE (layer));
  gegl_buffer_set (buf, GEGL_RECTANGLE (0, 0, img->width, img->height), 0,
                   babl_format (img->channels == 4 ? "R'G'B'A u8" : "R'G'B' u8"), img->pixels, img->rowstride);
  g_object_unref (buf);   /* flushes to the core */

  if (has_selection)
    {
      /* the selection itself, at the layer's position: exact, feathering included */
      GimpLayerMask *mask = gimp_layer_create_mask (layer, GIMP_ADD_MASK_SELECTION);
      gimp_layer_add_mask (layer, mask);
    }
  gimp_drawable_update (GIMP_DRAWABLE (layer), 0, 0, img->width, img->height);
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
run_dialog (const Settings *s, const DgProcedure *info, Source *src, GimpProcedureConfig *config)
{
  gimp_ui_init (PLUG_IN_BINARY);
  DialogState st = { 0 };
  st.dialog = gimp_dialog_new (_(info->title), PLUG_IN_ROLE, NULL, 0, gimp_standard_help_func, info->name,
                               _("_Close"), GTK_RESPONSE_CANCEL, NULL);
  gtk_window_set_default_size (GTK_WINDOW (st.dialog), 460, -1);
  GtkWidget *panel = dg_panel_new (info->job);
  g_object_set (panel, "job-selectable", FALSE, NULL);
  settings_to_panel (s, panel);
  /* the panel takes the pixels; the source keeps its geometry */
  dg_panel_set_source (DG_PANEL (panel), g_steal_pointer (&src->pixels), src->selection ? dg_image_copy (src->selection) : NULL,
                       src->width, src->height);
  g_signal_connect (panel, "apply", G_CALLBACK (on_panel_apply), &st);
  gtk_box_pack_start (GTK_BOX (gtk_dialog_get_content_area (GTK_DIALOG (st.dialog))), panel, TRUE, TRUE, 0);
  gtk_widget_show_all (st.dialog);
  dg_autopilot_attach (GTK_WINDOW (st.dialog), DG_PANEL (panel), close_dialog);

  gimp_dialog_run (GIMP_DIALOG (st.dialog));
  panel_to_config (panel, config);
  gtk_widget_destroy (st.dialog);
  return st.result;
}

static GimpValueArray *
deepgen_run (GimpProcedure *procedure, GimpRunMode run_mode, GimpImage *image, GimpDrawable **drawables,
             GimpProcedureConfig *config, gpointer run_data)
{
  const DgProcedure *info = run_data;
  GError *error = NULL;
  dg_i18n_init ();

  Source src = { 0 };
  if (!read_source (image, drawables, info, &src, &error))
    {
      source_clear (&src);
      return gimp_procedure_new_return_values (procedure, GIMP_PDB_EXECUTION_ERROR, error);
    }
  const gboolean has_selection = src.selection != NULL;

  Settings s = { 0 };
  settings_from_config (&s, config);
  DgTaskResult *res = NULL;
  if (run_mode == GIMP_RUN_INTERACTIVE)
    {
      res = run_dialog (&s, info, &src, config);
      settings_clear (&s);
      settings_from_config (&s, config);   /* the prompt the user ran with names the layer */
      if (!res)
        {
          source_clear (&src);
          settings_clear (&s);
          return gimp_procedure_new_return_values (procedure, GIMP_PDB_CANCEL, NULL);
        }
    }
  else
    {
      res = run_direct (&s, info, &src, &error);
      if (!res)
        {
          source_clear (&src);
          settings_clear (&s);
          /* wrong arguments are the caller's; everything else is an execution error */
          const gboolean calling = g_error_matches (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
          return gimp_procedure_new_return_values (
              procedure, calling ? GIMP_PDB_CALLING_ERROR : GIMP_PDB_EXECUTION_ERROR, error);
        }
    }

  GimpLayer *layer = apply_result (image, &src, has_selection, res, s.prompt, &error);
  dg_task_result_free (res);
  source_clear (&src);
  settings_clear (&s);
  if (!layer)
    return gimp_procedure_new_return_values (procedure, GIMP_PDB_EXECUTION_ERROR, error);
  if (run_mode != GIMP_RUN_NONINTERACTIVE)
    gimp_displays_flush ();
  GimpValueArray *ret = gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS, NULL);
  GIMP_VALUES_SET_LAYER (ret, 1, layer);
  return ret;
}

GIMP_MAIN (DEEPGEN_TYPE)
