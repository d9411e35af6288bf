/* What the GIMP 3 and GIMP 2.10 plug-ins register: the same four procedures, with the same
 * names, menu entries and arguments, so that scripts and muscle memory carry over. Strings
 * are marked N_() here and translated where GIMP shows them. */
#pragma once

#include "deepgen.h"
#include "dg_task.h"

G_BEGIN_DECLS

typedef struct {
  const char *name; /* PDB procedure name */
  DgJob job;
  const char *menu_label; /* N_(), with mnemonic and ellipsis */
  const char *title;      /* N_(), the dialog's title */
  const char *blurb;      /* N_() */
  const char *help;       /* N_() */
  gboolean expand;        /* Expand Canvas: an inpaint of the grown canvas (DgTaskSpec.expand), with
                           * dg_expand_arguments after the common ones */
} DgProcedure;

/* In the order of the menu. */
extern const DgProcedure dg_procedures[4];
const DgProcedure *dg_procedure_find (const char *name);

#define DG_MENU_PATH "<Image>/Filters/DeepGen"
#define DG_PROCEDURE_AUTHOR "DeepGen for GIMP contributors"
#define DG_PROCEDURE_DATE "2025"

/* The arguments after run-mode, image and drawable(s), in this order in both plug-ins. */
typedef enum { DG_ARG_STRING, DG_ARG_POLICY, DG_ARG_INT, DG_ARG_DOUBLE } DgArgType;
typedef struct {
  const char *name;       /* as in Script-Fu, the GIMP 3 procedure config and the panel */
  DgArgType type;         /* POLICY: a string, "fit" or "region" (a GimpChoice in GIMP 3) */
  const char *label;      /* N_(), with mnemonic (GIMP 3's generated dialogs) */
  const char *blurb;      /* N_() */
  double min, max, value; /* numbers: the range and the default */
} DgArgument;
#define DG_N_ARGUMENTS 10
extern const DgArgument dg_arguments[DG_N_ARGUMENTS];
/* Expand Canvas's own arguments, after those: left, top, right, bottom (pixels to add) and
 * aspect ("W:H": grow to that ratio instead; "" = use the sides). */
#define DG_N_EXPAND_ARGUMENTS 5
extern const DgArgument dg_expand_arguments[DG_N_EXPAND_ARGUMENTS];

/* The arguments of one procedure call, as both plug-ins read them. */
typedef struct {
  const char *prompt, *negative, *policy, *folder;
  int steps, seed, max_size;
  double guidance;
  double strength;     /* edit and inpaint (DgTaskSpec.strength) */
  int n_results;       /* variations (DgTaskSpec.n_results) */
  DgExpandSides sides; /* Expand Canvas: the pixels to add, unless aspect is set */
  const char *aspect;  /* Expand Canvas: "W:H", or NULL or "" */
} DgProcedureArgs;

/* Reads the arguments from the properties of their names on @object (the GIMP 3 procedure
 * config, the panel; the expand arguments where @object has them); the strings are new: free
 * them with dg_procedure_args_clear. */
void dg_procedure_args_read (DgProcedureArgs *args, GObject *object);
void dg_procedure_args_clear (DgProcedureArgs *args);

/* The call's task: its settings, and the source (pixels and selection, or none for generate)
 * on a canvas of width × height; for Expand Canvas the sides (dg_task_expand_sides) in
 * @sides, which spec->expand points to. FALSE with an error for settings the task refuses. */
gboolean dg_procedure_spec (const DgProcedureArgs *args, const DgProcedure *info, const DgImage *pixels,
                            const DgMask *selection, int width, int height, DgExpandSides *sides, DgTaskSpec *spec,
                            GError **error);

/* A non-interactive run: through the resident service, else the shared warm model of the folder
 * (dg_task_run_default; the first fallback is said on stderr), then the task. `progress` reports
 * each stage (dg_plugin.c forwards it to gimp_progress_*). */
DgTaskResult *dg_procedure_run (const DgTaskSpec *spec, const char *folder, DgProgressFunc progress, gpointer user_data,
                                GError **error);

G_END_DECLS
