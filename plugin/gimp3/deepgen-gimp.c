/* deepgen-gimp: the GIMP 3 plug-in (DESIGN.md §6). An adapter over the plug-in core
 * (plugin/common/dg_plugin.h), which reads the source, runs the job (directly, or in the dialog
 * around the shared panel) and writes the result layer: here only the registration and the
 * arguments (the libgimp 3 calls the core needs, the DgHost, are in gimp3_host.c). All settings are procedure
 * arguments (prompt, negative-prompt, steps, guidance, seed, size-policy, max-size,
 * model-folder, strength, n-results; Expand Canvas also left, top, right, bottom, aspect), so every procedure runs
 * from Script-Fu or Python-Fu; in the dialog the panel's
 * fields are bound to the procedure config, so GIMP remembers them between interactive runs. */
#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>
#include <string.h>

#include "dg_gettext.h"
#include "gimp3_host.h"

DG_PLUGIN_CHECK_GIMP_ENUMS ();

#define DEEPGEN_TYPE (deepgen_get_type ())
G_DECLARE_FINAL_TYPE (DeepGen, deepgen, DEEPGEN, PLUG_IN, GimpPlugIn)

struct _DeepGen {
  GimpPlugIn parent_instance;
};

G_DEFINE_TYPE (DeepGen, deepgen, GIMP_TYPE_PLUG_IN)

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
  DgPluginCall call = { .host = &dg_gimp3_host,
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
