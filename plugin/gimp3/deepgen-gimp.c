/* deepgen-gimp: the GIMP 3 plug-in (DESIGN.md §6). An adapter over the plug-in core
 * (plugin/common/dg_plugin.h), which reads the source, runs the job (directly, or in the dialog
 * around the shared panel) and writes the result layer: here only the registration, the
 * arguments and the libgimp 3 calls the core needs (the DgHost). All settings are procedure
 * arguments (prompt, negative-prompt, steps, guidance, seed, size-policy, max-size,
 * model-folder, strength, n-results; Expand Canvas also left, top, right, bottom, aspect), so every procedure runs
 * from Script-Fu or Python-Fu; in the dialog the panel's
 * fields are bound to the procedure config, so GIMP remembers them between interactive runs. */
#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>
#include <string.h>

#include "dg_gettext.h"
#include "dg_plugin.h"

#define PLUG_IN_BINARY "deepgen-gimp" /* also the dialog's role */

DG_PLUGIN_CHECK_GIMP_ENUMS ();

#define DEEPGEN_TYPE (deepgen_get_type ())
G_DECLARE_FINAL_TYPE (DeepGen, deepgen, DEEPGEN, PLUG_IN, GimpPlugIn)

struct _DeepGen {
  GimpPlugIn parent_instance;
};

G_DEFINE_TYPE (DeepGen, deepgen, GIMP_TYPE_PLUG_IN)

/* ---- the host: libgimp 3 on GObject handles ---------------------------------------------- */

#define IMG(h) ((GimpImage *) (h))
#define DRW(h) ((GimpDrawable *) (h))

static DgHostMode
image_info (DgHostImage *image, int *width, int *height)
{
  *width = gimp_image_get_width (IMG (image));
  *height = gimp_image_get_height (IMG (image));
  return (DgHostMode) gimp_image_get_base_type (IMG (image));
}

static DgHostItem *
selection (DgHostImage *image, DgHostItem *drawable, gboolean *touches)
{
  int x, y, w, h;
  *touches = !drawable || gimp_drawable_mask_intersect (DRW (drawable), &x, &y, &w, &h);
  return gimp_selection_is_empty (IMG (image)) ? NULL : (DgHostItem *) gimp_image_get_selection (IMG (image));
}

static DgHostItemKind
item_info (DgHostItem *item, int *x, int *y, int *width, int *height, gboolean *alpha)
{
  if (!GIMP_IS_LAYER (item))
    return DG_HOST_OTHER;
  gimp_drawable_get_offsets (DRW (item), x, y);
  *width = gimp_drawable_get_width (DRW (item));
  *height = gimp_drawable_get_height (DRW (item));
  *alpha = gimp_drawable_has_alpha (DRW (item));
  return gimp_item_is_group (GIMP_ITEM (item)) ? DG_HOST_LAYER_GROUP : DG_HOST_LAYER;
}

static GeglBuffer *
buffer (DgHostItem *drawable)
{
  return gimp_drawable_get_buffer (DRW (drawable));
}

static void
undo_group (DgHostImage *image, gboolean start)
{
  (start ? gimp_image_undo_group_start : gimp_image_undo_group_end) (IMG (image));
}

static DgHostItem *
layer_new (DgHostImage *image, DgHostItem *above, const char *name, int width, int height, int x, int y)
{
  GimpImage *img = IMG (image);
  const GimpImageType type = gimp_image_get_base_type (img) == GIMP_GRAY ? GIMP_GRAYA_IMAGE : GIMP_RGBA_IMAGE;
  GimpLayer *layer =
      gimp_layer_new (img, name, width, height, type, 100.0, gimp_image_get_default_new_layer_mode (img));
  if (!layer)
    return NULL;
  GimpItem *parent = above ? gimp_item_get_parent (GIMP_ITEM (above)) : NULL;
  gimp_image_insert_layer (img, layer, GIMP_IS_LAYER (parent) ? GIMP_LAYER (parent) : NULL,
                           above ? gimp_image_get_item_position (img, GIMP_ITEM (above)) : 0);
  gimp_layer_set_offsets (layer, x, y);
  return (DgHostItem *) layer;
}

static void
layer_finish (DgHostItem *layer, gboolean mask, int width, int height)
{
  if (mask)
    gimp_layer_add_mask (GIMP_LAYER (layer), gimp_layer_create_mask (GIMP_LAYER (layer), GIMP_ADD_MASK_SELECTION));
  gimp_drawable_update (DRW (layer), 0, 0, width, height);
}

static void
attach_text (DgHostItem *item, const char *name, const char *text)
{
  GimpParasite *p =
      gimp_parasite_new (name, GIMP_PARASITE_PERSISTENT | GIMP_PARASITE_UNDOABLE, (guint32) strlen (text) + 1, text);
  gimp_item_attach_parasite (GIMP_ITEM (item), p);
  gimp_parasite_free (p);
}

static void
image_resize (DgHostImage *image, int width, int height, int x, int y)
{
  gimp_image_resize (IMG (image), width, height, x, y);
}

static char *
read_text (DgHostItem *item, const char *name)
{
  GimpParasite *p = gimp_item_get_parasite (GIMP_ITEM (item), name);
  if (!p)
    return NULL;
  guint32 size = 0;
  const char *data = gimp_parasite_get_data (p, &size);
  char *text = data && size ? g_strndup (data, size) : NULL;
  gimp_parasite_free (p);
  return text;
}

static DgHostItem **
image_layers (DgHostImage *image, int *n_layers)
{
  GimpLayer **layers = gimp_image_get_layers (GIMP_IMAGE (image));
  *n_layers = layers ? (int) gimp_core_object_array_get_length ((GObject **) layers) : 0;
  DgHostItem **items = g_new0 (DgHostItem *, *n_layers + 1);
  for (int i = 0; i < *n_layers; i++) items[i] = (DgHostItem *) layers[i];
  g_free (layers); /* the layers belong to libgimp */
  return items;
}

static char *
item_name (DgHostItem *item)
{
  return g_strdup (gimp_item_get_name (GIMP_ITEM (item)));
}

static GtkWidget *
dialog_new (const DgProcedure *info)
{
  gimp_ui_init (PLUG_IN_BINARY);
  return gimp_dialog_new (_ (info->title), PLUG_IN_BINARY, NULL, 0, gimp_standard_help_func, info->name, _ ("_Close"),
                          GTK_RESPONSE_CANCEL, NULL);
}

static int
dialog_run (GtkDialog *dialog)
{
  return gimp_dialog_run (GIMP_DIALOG (dialog));
}

static const DgHost host = {
  image_info,
  selection,
  item_info,
  buffer,
  undo_group,
  layer_new,
  layer_finish,
  attach_text,
  gimp_progress_init,
  gimp_progress_set_text,
  gimp_progress_update,
  gimp_progress_end,
  gimp_displays_flush,
  dialog_new,
  dialog_run,
  image_resize,
  read_text,
  image_layers,
  item_name,
};

/* ---- running ------------------------------------------------------------------------------ */

/* Expand Canvas's dialog: what it ran with becomes the config's, which GIMP keeps for the next run */
static void
remember_expand (const DgProcedureArgs *a, gpointer config)
{
  g_object_set (config, "prompt", a->prompt ? a->prompt : "", "left", a->sides.left, "top", a->sides.top, "right",
                a->sides.right, "bottom", a->sides.bottom, "aspect", a->aspect ? a->aspect : "", NULL);
}

static GimpValueArray *
deepgen_run (GimpProcedure *procedure, GimpRunMode run_mode, GimpImage *image, GimpDrawable **drawables,
             GimpProcedureConfig *config, gpointer run_data)
{
  const int n = drawables ? (int) gimp_core_object_array_get_length ((GObject **) drawables) : 0;
  DgPluginCall call = { .host = &host,
                        .info = run_data,
                        .image = (DgHostImage *) image,
                        .drawable = n >= 1 ? (DgHostItem *) drawables[0] : NULL,
                        .n_drawables = n,
                        .references = n > 1 ? (DgHostItem *const *) drawables + 1 : NULL,
                        .n_references = MAX (0, n - 1),
                        .interactive = run_mode == GIMP_RUN_INTERACTIVE,
                        .flush = run_mode != GIMP_RUN_NONINTERACTIVE,
                        .panel_open = dg_plugin_bind_settings,
                        .data = config,
                        .args_close = remember_expand };
  dg_procedure_args_read (&call.args, G_OBJECT (config));
  DgPluginStatus status;
  GError *error = NULL;
  GimpLayer *layer = (GimpLayer *) dg_plugin_run (&call, &status, &error);
  dg_procedure_args_clear (&call.args);
  GimpValueArray *ret = gimp_procedure_new_return_values (procedure, (GimpPDBStatusType) status, error);
  if (layer)
    GIMP_VALUES_SET_LAYER (ret, 1, layer);
  return ret;
}

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

static GimpProcedure *
deepgen_create_procedure (GimpPlugIn *plug_in, const char *name)
{
  const DgProcedure *info = dg_procedure_find (name);
  if (!info)
    return NULL;
  GimpProcedure *p =
      gimp_image_procedure_new (plug_in, name, GIMP_PDB_PROC_TYPE_PLUGIN, deepgen_run, (gpointer) info, NULL);
  /* indexed images are listed so that the refusal comes with a message, not a greyed entry */
  gimp_procedure_set_image_types (p, "*");
  /* edit and inpaint: several selected layers too (the first edited, the others references) */
  gimp_procedure_set_sensitivity_mask (p, GIMP_PROCEDURE_SENSITIVE_DRAWABLE |
                                              (info->job == DG_JOB_GENERATE ? GIMP_PROCEDURE_SENSITIVE_NO_DRAWABLES
                                                                            : GIMP_PROCEDURE_SENSITIVE_DRAWABLES));
  gimp_procedure_set_menu_label (p, _ (info->menu_label));
  gimp_procedure_add_menu_path (p, DG_MENU_PATH);
  gimp_procedure_set_documentation (p, _ (info->blurb), _ (info->help), name);
  gimp_procedure_set_attribution (p, DG_PROCEDURE_AUTHOR, DG_PROCEDURE_AUTHOR, DG_PROCEDURE_DATE);

  const guint n_args = DG_N_ARGUMENTS + (info->expand ? DG_N_EXPAND_ARGUMENTS : 0);
  for (guint i = 0; i < n_args; i++) {
    const DgArgument *a = i < DG_N_ARGUMENTS ? &dg_arguments[i] : &dg_expand_arguments[i - DG_N_ARGUMENTS];
    const char *label = _ (a->label), *blurb = _ (a->blurb);
    if (a->type == DG_ARG_INT)
      gimp_procedure_add_int_argument (p, a->name, label, blurb, a->min, a->max, a->value, G_PARAM_READWRITE);
    else if (a->type == DG_ARG_DOUBLE)
      gimp_procedure_add_double_argument (p, a->name, label, blurb, a->min, a->max, a->value, G_PARAM_READWRITE);
    else if (a->type == DG_ARG_POLICY)
      gimp_procedure_add_choice_argument (
          p, a->name, label, blurb,
          gimp_choice_new_with_values ("fit", DG_SIZE_POLICY_FIT, _ ("Working size (fast)"), NULL, "region",
                                       DG_SIZE_POLICY_REGION, _ ("The region's own size (slow)"), NULL, NULL),
          "fit", G_PARAM_READWRITE);
    else
      gimp_procedure_add_string_argument (p, a->name, label, blurb, "", G_PARAM_READWRITE);
  }
  gimp_procedure_add_layer_return_value (p, "layer", _ ("Layer"), _ ("The new layer"), FALSE, G_PARAM_READWRITE);
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

GIMP_MAIN (DEEPGEN_TYPE)
