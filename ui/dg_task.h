/* One DeepGen run as the front-ends see it: a layer (or nothing) and a selection in, a
 * layer-shaped result out. Shared by the panel, deepgen-studio and the non-interactive GIMP
 * procedures; needs GLib only (no GTK, no GIMP), so a plug-in running from a script links it
 * without a display.
 *
 * This file decides *where* the result goes (the region: the selection's bounding box, or the
 * whole layer or canvas) and *at what size the model works* (the size policy); every pixel
 * operation it needs (crop, resize, inpaint plan, feather, composite) is model/'s
 * (image.h, inpaint.h; DESIGN.md §1).
 *
 *   job       region                             what the model sees          result
 *   generate  selection box, else the canvas     nothing (prompt only)        the region, resized
 *   edit      selection box, else the layer      the region's pixels          the region, resized back
 *   inpaint   selection box, else the layer      box + context (inpaint.h)    the box, equal to the
 *                                                                             source where unselected
 *   expand    the new canvas: the layer grown     an inpaint of the grown      the whole new canvas, equal
 *             by `expand`'s sides                 canvas, new area as mask     to the source where it was
 * The front-end places the result at (x, y) of the source and masks it with `mask` (the
 * selection over the region), so that pixels outside the selection stay exactly as they were. */
#pragma once

#include <gio/gio.h>

#include "deepgen.h"

G_BEGIN_DECLS

/* How large the model works (DgTaskSpec.size_policy). Script and config values are the nicks. */
typedef enum {
  DG_SIZE_POLICY_FIT,    /* "fit": the region's aspect at about max_size on the longer side (fast) */
  DG_SIZE_POLICY_REGION, /* "region": the region's own size, capped at DG_TASK_MAX_SIZE (sharp, slow) */
} DgSizePolicy;

#define DG_TASK_DEFAULT_STEPS 50
#define DG_TASK_MAX_STEPS 200
#define DG_TASK_DEFAULT_GUIDANCE 4.0
#define DG_TASK_MAX_GUIDANCE 20.0
#define DG_TASK_DEFAULT_MAX_SIZE 512 /* the model's native size (MODEL.md §1.1) */
#define DG_TASK_MIN_SIZE 64
#define DG_TASK_MAX_SIZE 2048
#define DG_TASK_RANDOM_SEED (-1) /* DgTaskSpec.seed: draw one */
#define DG_TASK_MAX_RESULTS 8    /* DgTaskSpec.n_results */

const char *dg_size_policy_to_string (DgSizePolicy policy);
/* FALSE for an unknown nick; *policy is left unchanged. */
gboolean dg_size_policy_from_string (const char *nick, DgSizePolicy *policy);
const char *dg_job_to_string (DgJob job); /* "generate", "edit", "inpaint" */
gboolean dg_job_from_string (const char *nick, DgJob *job);

typedef struct {
  DgJob job;
  const char *prompt;          /* required, not blank */
  const char *negative_prompt; /* NULL or "" = the model's default for the job */
  int steps;                   /* 1 … DG_TASK_MAX_STEPS */
  double guidance;             /* 0 … DG_TASK_MAX_GUIDANCE; <= 1 turns guidance off */
  gint64 seed;                 /* 0 … G_MAXUINT32, or DG_TASK_RANDOM_SEED */
  DgSizePolicy size_policy;
  int max_size; /* "fit": the longer working side, DG_TASK_MIN_SIZE … DG_TASK_MAX_SIZE */

  const DgImage *source;           /* the layer: RGB or RGBA; required for edit and inpaint */
  const DgMask *selection;         /* the selection over the source, same size; NULL = none */
  int canvas_width, canvas_height; /* generate without a source: the region when there is no selection */
  double strength;                 /* edit and inpaint: the change strength, above 0 … 1 (DgRequest.strength);
                                    * generate ignores it */
  int n_results;                   /* variations, 1 … DG_TASK_MAX_RESULTS: one batch (dg_run_batch) with
                                    * the seeds seed, seed + 1, … */
  const DgExpandSides *expand;     /* with job inpaint: expand the canvas (outpaint) by these sides instead
                                    * (deepgen.h); the prompt is then optional and the selection ignored;
                                    * NULL = no expand */
  /* edit and inpaint: more reference images after the region (other layers, whole, RGB or RGBA:
   * "put the cat from this layer into that scene"); NULL / 0 = none. The model sees the region
   * first, then these, each prepared like the first (dg_reference_size at the output's longer
   * side, MODEL.md §1.4); the output keeps the region's working size. Generate takes none. */
  const DgImage *const *references;
  guint n_references;
} DgTaskSpec;

#define DG_TASK_SPEC_INIT     \
  { DG_JOB_EDIT,              \
    NULL,                     \
    NULL,                     \
    DG_TASK_DEFAULT_STEPS,    \
    DG_TASK_DEFAULT_GUIDANCE, \
    DG_TASK_RANDOM_SEED,      \
    DG_SIZE_POLICY_FIT,       \
    DG_TASK_DEFAULT_MAX_SIZE, \
    NULL,                     \
    NULL,                     \
    0,                        \
    0,                        \
    1.0,                      \
    1,                        \
    NULL,                     \
    NULL,                     \
    0 }

typedef struct {
  DgImage *image;              /* the region: RGB (generate) or the source's channels */
  DgMask *mask;                /* the selection over the region; NULL when there was no selection */
  int x, y;                    /* the region's offset in the source (or canvas); expand: (−left, −top) */
  guint64 seed;                /* the seed used, for "reuse last" */
  int work_width, work_height; /* the size the model worked at, for the preview's caption */
  DgWeightFormat weights;      /* what the run used: RELEASED, or Q8_0 / Q4_0 because the GPU is too
                                * small for the released weights (DG_WEIGHTS_AUTO, deepgen.h) */
  char *params;                /* what made it, dg_job_params_to_string (deepgen.h): the job, prompt,
                                * seed, steps, guidance, strength, working size and weights — the
                                * result layer's parasite and the PNG chunk (DG_JOB_PARAMS_KEY) */
  GPtrArray *variations;       /* DgTaskResult*: results 2 … n_results (seeds seed + 1, …); NULL for one */
  gboolean via_service;        /* ran in the resident service (dg_task_run_default), not in this process */
} DgTaskResult;

void dg_task_result_free (DgTaskResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgTaskResult, dg_task_result_free)

/* Checks @spec without running anything (the arguments a script passed, the panel's fields):
 * DG_ERROR_INVALID_ARGUMENT with a message that says what to change. Also finds the region:
 * a selection that is all zero counts as none for generate/edit/inpaint alike (GIMP: empty
 * selection = whole layer). */
gboolean dg_task_check (const DgTaskSpec *spec, GError **error);

/* Expand's sides for a @width × @height source: @sides, or, when @aspect ("W:H") is not blank,
 * the sides that grow it to that ratio (dg_expand_sides_for_aspect; @sides must then be all 0).
 * DG_ERROR_INVALID_ARGUMENT with the geometry's message otherwise. */
gboolean dg_task_expand_sides (const DgExpandSides *sides, const char *aspect, int width, int height,
                               DgExpandSides *out, GError **error);

/* The region dg_task_run will fill, in source (or canvas) coordinates. */
gboolean dg_task_region (const DgTaskSpec *spec, int *x, int *y, int *width, int *height, GError **error);

/* Runs @spec on @model (one dg_run). @progress is called from the calling thread. */
DgTaskResult *dg_task_run (DgModel *model, const DgTaskSpec *spec, DgProgressFunc progress, gpointer user_data,
                           GCancellable *cancellable, GError **error);

/* Progress as the front-ends show it: the share of a whole run done at (@stage, @step of
 * @n_steps) (denoising is nearly all of the time), and a line like "Denoising: 12 of 50". */
double dg_task_progress_fraction (DgStage stage, int step, int n_steps);
char *dg_task_progress_text (DgStage stage, int step, int n_steps);

/* A layer name for a result: the prompt on one line, shortened to about 60 characters. */
char *dg_task_layer_name (const char *prompt);

/* Puts @result into @image (the source it was computed from, or a copy of it) in place: inside
 * the result's mask the result, outside it the image as it was, with the soft mask's partial
 * values blended. For front-ends without layers (deepgen-studio); the composite is inpaint.h's
 * (dg_inpaint_blend with no feather), so there is one blend rule in the project. */
gboolean dg_task_result_apply (DgImage *image, const DgTaskResult *result, GError **error);

/* A process-wide open model, so that Regenerate and later runs do not reload the weights
 * (DESIGN.md §6 asks for a warm model). Opens @path (NULL or "" = dg_model_default_path) on
 * first use or when the path changes, after checking the folder with dg_model_folder_missing
 * so that a wrong folder gives a message that lists what is missing. The model stays locked
 * (one run at a time, deepgen.h) until dg_task_model_release. */
/* Whether @spec's job fits a GPU with @device_bytes of memory (the memory plan, DESIGN.md §5), as
 * dg_task_run would run it: the region's working size, one reference for edit and inpaint (one
 * more per spec reference, counted at the output's size), two
 * rows with guidance, n_results requests in one batch, the default prompt length, and the weight format DG_WEIGHTS_AUTO would take
 * (dg_plan_auto). FALSE for a spec dg_task_check refuses or a plan error. For the fit indicator. */
typedef struct {
  gboolean fits;
  DgWeightFormat weights; /* RELEASED, Q8_0 or Q4_0: what the run would use */
  guint64 required, device_bytes;
  int work_width, work_height;
} DgTaskFit;
gboolean dg_task_fit (const DgTaskSpec *spec, const DgPlanModel *m, guint64 device_bytes, DgTaskFit *fit,
                      GError **error);
/* The device memory of the shared engine (created on first use, without a model), and its name
 * when @device_name; 0 with an error when there is no usable GPU. Blocking (the first call opens
 * the Vulkan device): call it off the GUI thread. */
guint64 dg_task_device_bytes (char **device_name, GError **error);

DgModel *dg_task_model_acquire (const char *path, GError **error);
void dg_task_model_release (DgModel *model);
/* Frees the shared model (idle unload, program exit). No-op while it is acquired. */
void dg_task_model_unload (void);

/* ---- where a job runs: the resident service, else this process (DESIGN.md §9) ------------- */

/* A live preview (dg_service.h, DgServicePreviewFunc): the estimate of the clean image after DiT
 * step @step of @n_steps, RGB at latent resolution (1/8 of the working size's sides), valid during
 * the call. Called from the thread that runs the job. */
typedef void (*DgTaskPreviewFunc) (const DgImage *rgb, int step, int n_steps, gpointer user_data);

typedef struct {
  const char *model_folder;  /* NULL or "" = dg_model_default_path (dg_task_model_acquire's rule) */
  gboolean in_process;       /* the setting "run in this process"; DEEPGEN_NO_SERVICE (any value) too */
  DgProgressFunc progress;   /* may be NULL; called from the calling thread */
  DgTaskPreviewFunc preview; /* may be NULL; only through the service (in-process runs have none) */
  gpointer user_data;        /* for both */
  char *notice;              /* out: set (g_free) the first time in this process that the service
                               * could not be had: why, and that the job runs here instead */
} DgTaskRunOptions;

#define DG_TASK_RUN_OPTIONS_INIT { NULL, FALSE, NULL, NULL, NULL, NULL }

/* Runs @spec where the front-ends run it. By default in the resident service (dg_service.h),
 * started when none runs (`deepgen serve --detach`, the deepgen program found by
 * dg_task_serve_program), on the model folder opened with DG_WEIGHTS_AUTO in bf16 as
 * dg_task_model_acquire opens it, so the result is the same, byte for byte, as in this process.
 * Variations (n_results > 1) are one job there, the same batch as here (dg_service_client_run_batch).
 * In this process (the shared model: dg_task_model_acquire, dg_task_run, release) when
 * @options->in_process or DEEPGEN_NO_SERVICE is set, and when no service can be had (no deepgen program, the socket's folder unusable, …; options->notice says
 * so once). A service that fails mid-job (killed, crashed) is an error (DG_ERROR_IO), not a second
 * run here: nothing has been written anywhere. A cancelled @cancellable cancels the job in the
 * service too (DG_ERROR_CANCELLED). */
DgTaskResult *dg_task_run_default (DgTaskRunOptions *options, const DgTaskSpec *spec, GCancellable *cancellable,
                                   GError **error);

/* The deepgen program that starts the service, newly allocated, NULL when there is none: the one
 * named by $DEEPGEN_PROGRAM, else `deepgen` beside this program (deepgen-studio), else the one
 * installed in the configured bindir (the GIMP plug-ins live elsewhere). */
char *dg_task_serve_program (void);

/* Binds the "deepgen" gettext domain to the installed catalogues, or to $DEEPGEN_LOCALEDIR
 * (tests run from the build tree). Safe to call more than once. */
void dg_i18n_init (void);
const char *dg_i18n_localedir (void);

G_END_DECLS
