/* deepgen-gimp2: the GIMP 2.10 plug-in, the same four procedures and arguments as the GIMP 3
 * one over the same plug-in core (plugin/common/dg_plugin.h) and GTK 3 panel: here only the
 * registration and the arguments (the libgimp 2.0 calls the core needs, the DgHost on IDs, are in
 * gimp2_host.c).
 *
 * It links libgimp-2.0 and GTK 3 only: libgimpui-2.0 is GTK 2, and the two GTKs in one process
 * abort at gtk_init (DESIGN.md §6). So the dialog is a plain GtkDialog, and last values are kept with
 * gimp_get_data/gimp_set_data: an interactive run starts from them, not from the arguments.
 * Script-Fu:
 *   (plug-in-deepgen-edit RUN-NONINTERACTIVE image drawable "prompt" "negative" steps guidance
 *                         seed "fit" max-size "model-folder" strength n-results) → the new layer
 *   (plug-in-deepgen-expand … the same … left top right bottom "aspect") → the new layer */
#include <libgimp/gimp.h>
#include <string.h>

#include "dg_gettext.h"
#include "gimp2_host.h"

DG_PLUGIN_CHECK_GIMP_ENUMS ();

/* run-mode, image, drawable, then dg_arguments in their order (as in GIMP 3) */
enum {
  ARG_RUN_MODE,
  ARG_IMAGE,
  ARG_DRAWABLE,
  ARG_PROMPT,
  ARG_NEGATIVE,
  ARG_STEPS,
  ARG_GUIDANCE,
  ARG_SEED,
  ARG_POLICY,
  ARG_MAX_SIZE,
  ARG_FOLDER,
  ARG_STRENGTH,
  ARG_N_RESULTS,
  N_ARGS,
  /* Expand Canvas: dg_expand_arguments after the common ones */
  ARG_LEFT = N_ARGS,
  ARG_TOP,
  ARG_RIGHT,
  ARG_BOTTOM,
  ARG_ASPECT,
  N_EXPAND_ARGS
};
G_STATIC_ASSERT (N_ARGS == ARG_PROMPT + DG_N_ARGUMENTS);
G_STATIC_ASSERT (N_EXPAND_ARGS == N_ARGS + DG_N_EXPAND_ARGUMENTS);

static void
query (void)
{
  static const GimpPDBArgType types[] = { GIMP_PDB_STRING, GIMP_PDB_STRING, GIMP_PDB_INT32, GIMP_PDB_FLOAT };
  GimpParamDef args[N_EXPAND_ARGS] = {
    { GIMP_PDB_INT32, "run-mode", "The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1) }" },
    { GIMP_PDB_IMAGE, "image", "Input image" },
    { GIMP_PDB_DRAWABLE, "drawable", "The layer to work on (generate: the layer to put the result above)" },
  };
  for (guint i = 0; i < DG_N_ARGUMENTS; i++)
    args[ARG_PROMPT + i] =
        (GimpParamDef) { types[dg_arguments[i].type], (gchar *) dg_arguments[i].name, (gchar *) dg_arguments[i].blurb };
  for (guint i = 0; i < DG_N_EXPAND_ARGUMENTS; i++)
    args[N_ARGS + i] = (GimpParamDef) { types[dg_expand_arguments[i].type], (gchar *) dg_expand_arguments[i].name,
                                        (gchar *) dg_expand_arguments[i].blurb };
  static const GimpParamDef rets[] = { { GIMP_PDB_LAYER, "layer", "The new layer" } };

  gimp_plugin_domain_register (GETTEXT_PACKAGE, dg_i18n_localedir ());
  for (guint i = 0; i < G_N_ELEMENTS (dg_procedures); i++) {
    const DgProcedure *p = &dg_procedures[i];
    /* GIMP 2.10 translates blurb, help and menu label with the registered domain. */
    gimp_install_procedure (p->name, p->blurb, p->help, DG_PROCEDURE_AUTHOR, DG_PROCEDURE_AUTHOR, DG_PROCEDURE_DATE,
                            p->menu_label, "RGB*, GRAY*, INDEXED*", GIMP_PLUGIN, p->expand ? N_EXPAND_ARGS : N_ARGS,
                            G_N_ELEMENTS (rets), args, rets);
    gimp_plugin_menu_register (p->name, DG_MENU_PATH);
  }
}

/* ---- settings, remembered with gimp_set_data ---------------------------------------------- */

typedef struct {
  char prompt[2048], negative[1024], policy[16], folder[2048];
  gint32 steps, seed, max_size;
  double guidance;
  double strength;
  gint32 n_results;
  DgExpandSides sides; /* Expand Canvas */
  char aspect[32];
} Settings;

static void
settings_set (Settings *s, const DgProcedureArgs *a)
{
  g_strlcpy (s->prompt, a->prompt ? a->prompt : "", sizeof s->prompt);
  g_strlcpy (s->negative, a->negative ? a->negative : "", sizeof s->negative);
  g_strlcpy (s->policy, a->policy ? a->policy : "fit", sizeof s->policy);
  g_strlcpy (s->folder, a->folder ? a->folder : "", sizeof s->folder);
  s->steps = a->steps, s->seed = a->seed, s->max_size = a->max_size, s->guidance = a->guidance;
  s->strength = a->strength;
  s->n_results = a->n_results;
  s->sides = a->sides;
  g_strlcpy (s->aspect, a->aspect ? a->aspect : "", sizeof s->aspect);
}

/* after the dialog, Apply or not: the panel's fields are the next interactive run's values */
static void
keep_settings (GtkWidget *panel, gpointer name)
{
  Settings s;
  DgProcedureArgs a;
  dg_procedure_args_read (&a, G_OBJECT (panel));
  settings_set (&s, &a);
  dg_procedure_args_clear (&a);
  gimp_set_data (name, &s, sizeof s);
}

/* Expand Canvas's dialog: the settings it ran with are the next interactive run's */
static void
keep_args (const DgProcedureArgs *a, gpointer name)
{
  Settings s;
  settings_set (&s, a);
  gimp_set_data (name, &s, sizeof s);
}

/* ---- running ------------------------------------------------------------------------------ */

static void
run (const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals, GimpParam **return_vals)
{
  static GimpParam values[2];
  static char message[1024];
  GError *error = NULL;
  DgPluginStatus status = DG_PLUGIN_CALLING_ERROR;
  DgHostItem *layer = NULL;
  dg_i18n_init ();
  gegl_init (NULL, NULL);
  const DgProcedure *info = dg_procedure_find (name);
  const GimpRunMode run_mode = param[ARG_RUN_MODE].data.d_int32;
  const int n_args = info && info->expand ? N_EXPAND_ARGS : N_ARGS;
  if (!info || (run_mode == GIMP_RUN_NONINTERACTIVE && nparams != n_args) || nparams < ARG_DRAWABLE + 1)
    g_set_error (&error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("%s takes %d arguments, not %d."), name, n_args,
                 nparams);
  else {
    Settings s = { "",
                   "",
                   "fit",
                   "",
                   DG_TASK_DEFAULT_STEPS,
                   DG_TASK_RANDOM_SEED,
                   DG_TASK_DEFAULT_MAX_SIZE,
                   DG_TASK_DEFAULT_GUIDANCE,
                   1.0,
                   1,
                   { 0, 0, 0, 0 },
                   "" };
    if (run_mode == GIMP_RUN_NONINTERACTIVE) {
      const GimpParam *p = param;
      const gboolean x = info->expand; /* Expand Canvas's own arguments */
      const DgProcedureArgs a = { p[ARG_PROMPT].data.d_string,
                                  p[ARG_NEGATIVE].data.d_string,
                                  p[ARG_POLICY].data.d_string,
                                  p[ARG_FOLDER].data.d_string,
                                  p[ARG_STEPS].data.d_int32,
                                  p[ARG_SEED].data.d_int32,
                                  p[ARG_MAX_SIZE].data.d_int32,
                                  p[ARG_GUIDANCE].data.d_float,
                                  p[ARG_STRENGTH].data.d_float,
                                  p[ARG_N_RESULTS].data.d_int32,
                                  { x ? p[ARG_LEFT].data.d_int32 : 0, x ? p[ARG_TOP].data.d_int32 : 0,
                                    x ? p[ARG_RIGHT].data.d_int32 : 0, x ? p[ARG_BOTTOM].data.d_int32 : 0 },
                                  x ? p[ARG_ASPECT].data.d_string : NULL };
      settings_set (&s, &a);
    } else
      gimp_get_data (name, &s);
    const gint32 drawable = param[ARG_DRAWABLE].data.d_drawable;
    const DgPluginCall call = { &dg_gimp2_host,
                                info,
                                HANDLE (param[ARG_IMAGE].data.d_image),
                                HANDLE (drawable),
                                drawable > 0,
                                run_mode == GIMP_RUN_INTERACTIVE,
                                run_mode != GIMP_RUN_NONINTERACTIVE,
                                { s.prompt, s.negative, s.policy, s.folder, s.steps, s.seed, s.max_size, s.guidance,
                                  s.strength, s.n_results, s.sides, s.aspect },
                                NULL,
                                keep_settings,
                                (gpointer) name,
                                keep_args,
                                NULL, /* one drawable: references come from the dialog's list */
                                0 };
    layer = dg_plugin_run (&call, &status, &error);
    /* GIMP 2.10 does not show an interactive run's error by itself */
    if (error && run_mode == GIMP_RUN_INTERACTIVE)
      gimp_message (error->message);
  }

  *return_vals = values;
  *nreturn_vals = 2;
  values[0] = (GimpParam) { GIMP_PDB_STATUS, { .d_status = (GimpPDBStatusType) status } };
  if (layer)
    values[1] = (GimpParam) { GIMP_PDB_LAYER, { .d_layer = ID (layer) } };
  else if (error) {
    /* GIMP 2.10 shows a string second value of a failed call as its error message */
    g_strlcpy (message, error->message, sizeof message);
    values[1] = (GimpParam) { GIMP_PDB_STRING, { .d_string = message } };
  } else
    *nreturn_vals = 1;
  g_clear_error (&error);
}

const GimpPlugInInfo PLUG_IN_INFO = { NULL, NULL, query, run };

MAIN ()
