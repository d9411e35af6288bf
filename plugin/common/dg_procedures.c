/* The procedures both GIMP plug-ins register (dg_procedures.h). */
#include "dg_procedures.h"

#include "dg_gettext.h"

const DgProcedure dg_procedures[4] = {
  { "plug-in-deepgen-edit", DG_JOB_EDIT, N_ ("_Edit with Instruction…"), N_ ("DeepGen: Edit with Instruction"),
    N_ ("Change the layer, or the selection within it, as an instruction says"),
    N_ ("Runs DeepGen 1.0 on the selected layer (or the selection's bounding box within it) with a text "
        "instruction, and puts the result on a new layer above it, masked by the selection."),
    FALSE },
  { "plug-in-deepgen-generate", DG_JOB_GENERATE, N_ ("_Generate Layer from Prompt…"),
    N_ ("DeepGen: Generate Layer from Prompt"), N_ ("Generate a new layer from a text prompt"),
    N_ ("Runs DeepGen 1.0 text-to-image and puts the result on a new layer of the selection's size (or the "
        "canvas's), above the selected layer, masked by the selection."),
    FALSE },
  { "plug-in-deepgen-inpaint", DG_JOB_INPAINT, N_ ("_Inpaint Selection…"), N_ ("DeepGen: Inpaint Selection"),
    N_ ("Repaint the selected pixels as an instruction says"),
    N_ ("Runs DeepGen 1.0 on the selection's surroundings and changes only the selected pixels; pixels "
        "outside the selection stay exactly as they were. The result is a new layer above the source."),
    FALSE },
  { "plug-in-deepgen-expand", DG_JOB_INPAINT, N_ ("E_xpand Canvas…"), N_ ("DeepGen: Expand Canvas"),
    N_ ("Grow the canvas and paint the new area around the image"),
    N_ ("Adds pixels on the chosen sides (or up to an aspect ratio), resizes the canvas and runs DeepGen 1.0 to "
        "paint the new area from the image's border and an optional prompt. Every pixel of the layer is kept "
        "exactly; the result is a new layer of the grown size above it, in one undo step."),
    TRUE },
};

const DgArgument dg_expand_arguments[DG_N_EXPAND_ARGUMENTS] = {
  { "left", DG_ARG_INT, N_ ("_Left"), N_ ("Pixels to add on the left"), 0, DG_EXPAND_MAX_SIDE, 0 },
  { "top", DG_ARG_INT, N_ ("_Top"), N_ ("Pixels to add at the top"), 0, DG_EXPAND_MAX_SIDE, 0 },
  { "right", DG_ARG_INT, N_ ("_Right"), N_ ("Pixels to add on the right"), 0, DG_EXPAND_MAX_SIDE, 0 },
  { "bottom", DG_ARG_INT, N_ ("_Bottom"), N_ ("Pixels to add at the bottom"), 0, DG_EXPAND_MAX_SIDE, 0 },
  { "aspect", DG_ARG_STRING, N_ ("_Aspect ratio"),
    N_ ("Instead of the sides: grow the shorter axis to this ratio, W:H (e.g. 16:9), evenly on both sides; empty = "
        "use the sides"),
    0, 0, 0 },
};

const DgArgument dg_arguments[DG_N_ARGUMENTS] = {
  { "prompt", DG_ARG_STRING, N_ ("_Prompt"), N_ ("What to generate, or the instruction for the change"), 0, 0, 0 },
  { "negative-prompt", DG_ARG_STRING, N_ ("_Negative prompt"),
    N_ ("What to avoid; empty = the model's default for the job"), 0, 0, 0 },
  { "steps", DG_ARG_INT, N_ ("_Steps"), N_ ("Denoising steps (default 50)"), 1, DG_TASK_MAX_STEPS,
    DG_TASK_DEFAULT_STEPS },
  { "guidance", DG_ARG_DOUBLE, N_ ("_Guidance"),
    N_ ("Classifier-free guidance scale (default 4; 1 or less turns it off)"), 0.0, DG_TASK_MAX_GUIDANCE,
    DG_TASK_DEFAULT_GUIDANCE },
  { "seed", DG_ARG_INT, N_ ("S_eed"), N_ ("Random seed; -1 draws a new one"), -1, G_MAXINT32, DG_TASK_RANDOM_SEED },
  { "size-policy", DG_ARG_POLICY, N_ ("Output si_ze"),
    N_ ("Working size: \"fit\" (the region's aspect at max-size, fast) or \"region\" (the region's own size)"), 0, 0,
    0 },
  { "max-size", DG_ARG_INT, N_ ("_Working size"), N_ ("Longer side the model works at with \"fit\" (default 512)"),
    DG_TASK_MIN_SIZE, DG_TASK_MAX_SIZE, DG_TASK_DEFAULT_MAX_SIZE },
  { "model-folder", DG_ARG_STRING, N_ ("_Model folder"),
    N_ ("DeepGen-1.0-diffusers model folder; empty = $DEEPGEN_MODEL or the default folder"), 0, 0, 0 },
  /* last, so that 2.10 scripts written before it only need one more value at the end */
  { "strength", DG_ARG_DOUBLE, N_ ("Change s_trength"),
    N_ ("Edit and inpaint: how much may change, above 0 to 1 (default 1: follow the instruction freely; smaller "
        "values keep more of the composition); generate ignores it"),
    0.0, 1.0, 1.0 },
  { "n-results", DG_ARG_INT, N_ ("N_umber of results"),
    N_ ("Variations: how many results to make in one batch, with the seeds seed, seed + 1, …; each becomes a "
        "layer (the first is returned)"),
    1, DG_TASK_MAX_RESULTS, 1 },
};

const DgProcedure *
dg_procedure_find (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (dg_procedures); i++)
    if (g_strcmp0 (name, dg_procedures[i].name) == 0)
      return &dg_procedures[i];
  return NULL;
}

void
dg_procedure_args_read (DgProcedureArgs *a, GObject *object)
{
  char *prompt = NULL, *negative = NULL, *policy = NULL, *folder = NULL;
  GValue seed = G_VALUE_INIT; /* an int in the config, an int64 in the panel */
  g_value_init (&seed, G_TYPE_INT);
  g_object_get_property (object, "seed", &seed);
  g_object_get (object, "prompt", &prompt, "negative-prompt", &negative, "steps", &a->steps, "guidance", &a->guidance,
                "size-policy", &policy, "max-size", &a->max_size, "model-folder", &folder, "strength", &a->strength,
                "n-results", &a->n_results, NULL);
  a->seed = g_value_get_int (&seed);
  a->prompt = prompt, a->negative = negative, a->policy = policy, a->folder = folder;
  a->sides = (DgExpandSides) { 0, 0, 0, 0 };
  a->aspect = NULL;
  if (g_object_class_find_property (G_OBJECT_GET_CLASS (object), "aspect")) {
    char *aspect = NULL;
    g_object_get (object, "left", &a->sides.left, "top", &a->sides.top, "right", &a->sides.right, "bottom",
                  &a->sides.bottom, "aspect", &aspect, NULL);
    a->aspect = aspect;
  }
}

void
dg_procedure_args_clear (DgProcedureArgs *a)
{
  g_free ((char *) a->prompt);
  g_free ((char *) a->negative);
  g_free ((char *) a->policy);
  g_free ((char *) a->folder);
  g_free ((char *) a->aspect);
}

gboolean
dg_procedure_spec (const DgProcedureArgs *a, const DgProcedure *info, const DgImage *pixels, const DgMask *selection,
                   int width, int height, DgExpandSides *sides, DgTaskSpec *spec, GError **error)
{
  *spec = (DgTaskSpec) DG_TASK_SPEC_INIT;
  spec->job = info->job;
  if (info->expand) {
    if (pixels && !dg_task_expand_sides (&a->sides, a->aspect, pixels->width, pixels->height, sides, error))
      return FALSE;
    spec->expand = sides;
  }
  spec->prompt = a->prompt;
  spec->negative_prompt = a->negative;
  spec->steps = a->steps;
  spec->guidance = a->guidance;
  spec->strength = a->strength;
  spec->n_results = a->n_results;
  spec->seed = a->seed;
  if (!dg_size_policy_from_string (a->policy, &spec->size_policy)) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("Unknown size policy “%s”: use “fit” or “region”."),
                 a->policy);
    return FALSE;
  }
  spec->max_size = a->max_size;
  spec->source = pixels;
  spec->selection = selection;
  spec->canvas_width = width;
  spec->canvas_height = height;
  return dg_task_check (spec, error);
}

DgTaskResult *
dg_procedure_run (const DgTaskSpec *spec, const char *folder, DgProgressFunc progress, gpointer user_data,
                  GError **error)
{
  DgTaskRunOptions o = DG_TASK_RUN_OPTIONS_INIT;
  o.model_folder = folder;
  o.progress = progress, o.user_data = user_data;
  DgTaskResult *res = dg_task_run_default (&o, spec, NULL, error);
  if (o.notice)
    g_printerr ("deepgen: %s\n", o.notice);
  g_free (o.notice);
  return res;
}
