/* What the GIMP 3 and GIMP 2.10 plug-ins register: the same three procedures, with the same
 * names, menu entries and arguments, so that scripts and muscle memory carry over. Strings
 * are marked N_() here and translated where GIMP shows them. */
#pragma once

#include "deepgen.h"
#include "dg_task.h"

G_BEGIN_DECLS

typedef struct {
  const char *name;        /* PDB procedure name */
  DgJob job;
  const char *menu_label;  /* N_(), with mnemonic and ellipsis */
  const char *title;       /* N_(), the dialog's title */
  const char *blurb;       /* N_() */
  const char *help;        /* N_() */
} DgProcedure;

/* In the order of the menu. */
extern const DgProcedure dg_procedures[3];
const DgProcedure *dg_procedure_find (const char *name);

#define DG_MENU_PATH "<Image>/Filters/DeepGen"
#define DG_PROCEDURE_AUTHOR "DeepGen for GIMP contributors"
#define DG_PROCEDURE_DATE "2025"

/* Argument documentation, shared by both plug-ins (N_() strings). */
#define DG_ARG_PROMPT_BLURB N_("What to generate, or the instruction for the change")
#define DG_ARG_NEGATIVE_BLURB N_("What to avoid; empty = the model's default for the job")
#define DG_ARG_STEPS_BLURB N_("Denoising steps (default 50)")
#define DG_ARG_GUIDANCE_BLURB N_("Classifier-free guidance scale (default 4; 1 or less turns it off)")
#define DG_ARG_SEED_BLURB N_("Random seed; -1 draws a new one")
#define DG_ARG_POLICY_BLURB N_("Working size: \"fit\" (the region's aspect at max-size, fast) or \"region\" (the region's own size)")
#define DG_ARG_MAX_SIZE_BLURB N_("Longer side the model works at with \"fit\" (default 512)")
#define DG_ARG_FOLDER_BLURB N_("DeepGen-1.0-diffusers model folder; empty = $DEEPGEN_MODEL or the default folder")

/* The arguments of one procedure call, as both plug-ins read them. */
typedef struct {
  const char *prompt, *negative, *policy, *folder;
  int steps, seed, max_size;
  double guidance;
} DgProcedureArgs;

/* Reads the arguments from the properties of their names on @object (the GIMP 3 procedure
 * config, the panel); the strings are new: free them with dg_procedure_args_clear. */
void dg_procedure_args_read (DgProcedureArgs *args, GObject *object);
void dg_procedure_args_clear (DgProcedureArgs *args);

/* The call's task: its settings, and the source (pixels and selection, or none for generate)
 * on a canvas of width × height. FALSE with an error for settings the task refuses. */
gboolean dg_procedure_spec (const DgProcedureArgs *args, DgJob job, const DgImage *pixels, const DgMask *selection,
                            int width, int height, DgTaskSpec *spec, GError **error);

/* A non-interactive run: the shared warm model of the folder, then the task. `progress`
 * reports each stage (dg_plugin.c forwards it to gimp_progress_*). */
DgTaskResult *dg_procedure_run (const DgTaskSpec *spec, const char *folder, DgProgressFunc progress,
                                gpointer user_data, GError **error);

G_END_DECLS
