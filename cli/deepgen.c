/* deepgen: the command line over model/deepgen.h (DESIGN.md §1: a thin front-end; all image
 * logic is in model/).
 *
 *   deepgen generate --prompt TEXT [-o out.png]
 *   deepgen edit     --image in.png --prompt TEXT [-o out.png]
 *   deepgen inpaint  --image in.png --mask mask.png --prompt TEXT [-o out.png]
 *   deepgen expand   in.png --left/--top/--right/--bottom N | --aspect W:H [--prompt TEXT] [-o out.png]
 *   (generate, edit, inpaint, expand: --n-results N writes N variations, out-1.png … out-N.png)
 *   deepgen info     [--plan] [--check]
 *   deepgen bench    [ops | flops]
 *   deepgen convert  -o DIR [--model SRC]
 *
 * Jobs run in a worker thread while the main thread runs a main loop for the signals: Ctrl-C
 * cancels through the GCancellable (the run stops at its next GPU submission), a second
 * Ctrl-C ends the process at once. The output is written through a temporary file and a
 * rename (image_io.h), so no partial file is ever left under the output name. */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "bench_ops.h"
#include "cli_args.h"
#ifdef DEEPGEN_HAVE_DOWNLOAD
#include "cli_download.h"
#endif
#include "cli_i18n.h"
#include "cli_describe.h"
#include "cli_plan.h"
#include "deepgen.h"
#include "dg_service.h"
#include "image_io.h"
#include "progress.h"

#ifndef DEEPGEN_VERSION
#define DEEPGEN_VERSION "0.0"
#endif

#define HF_REPO "deepgenteam/DeepGen-1.0-diffusers"
#define SAMPLE_PROMPT "a red fox in the snow at sunrise, photograph"
#define SAMPLE_PROMPT_2 "a lighthouse on a cliff at dusk, oil painting" /* bench --service: a new prompt */

static const char *
prog (void)
{
  return "deepgen";
}

/* "deepgen: message" on stderr. */
static void print_error (const char *fmt, ...) G_GNUC_PRINTF (1, 2);

static void
print_error (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  fprintf (stderr, "%s: %s\n", prog (), msg);
}

static int
exit_code_for (const GError *error)
{
  if (error->domain == G_OPTION_ERROR)
    return CLI_EXIT_USAGE;
  if (error->domain == DG_ERROR && error->code == DG_ERROR_CANCELLED)
    return CLI_EXIT_CANCELLED;
  return CLI_EXIT_FAILURE;
}

static int
fail (GError *error)
{
  int code = exit_code_for (error);
  if (code == CLI_EXIT_USAGE)
    fprintf (stderr, _ ("%s: %s\nRun '%s --help' for the options.\n"), prog (), error->message,
             g_get_prgname () ? g_get_prgname () : prog ());
  else if (code == CLI_EXIT_CANCELLED)
    fprintf (stderr, _ ("%s: cancelled; nothing was written.\n"), prog ());
  else
    print_error ("%s", error->message);
  g_error_free (error);
  return code;
}

/* ---- help ------------------------------------------------------------------------------ */

static const char *
exit_codes_text (void)
{
  return _ ("Exit status: 0 success; 1 the command could not be carried out (model missing, unreadable image,\n"
            "no Vulkan device, out of memory, a failure while running); 2 usage error (unknown option, bad or\n"
            "missing value); 130 cancelled (Ctrl-C): nothing was written.\n");
}

static const char *
model_text (void)
{
  return _ ("The model: the DeepGen-1.0-diffusers folder (Hugging Face "
            "deepgenteam/DeepGen-1.0-diffusers, about 14.4 GB), from\n"
            "--model DIR, else $DEEPGEN_MODEL, else ~/.local/share/deepgen/DeepGen-1.0-diffusers.\n");
}

static void
print_overview (FILE *out)
{
  fprintf (out,
           _ ("Usage: %s COMMAND [OPTION…]\n\n"
              "DeepGen 1.0 image generation and editing on any Vulkan GPU.\n\n"
              "Commands:\n"
              "  generate   make an image from a text prompt\n"
              "  edit       change one or more images following an instruction\n"
              "  inpaint    repaint the masked part of an image; the rest stays exactly as it is\n"
              "  expand     grow the canvas and paint the new border (outpainting); the image stays as it is\n"
              "  describe   write a caption of an image (a starting point for an instruction)\n"
              "  info       show the GPU, the model folder and the memory plan (--plan)\n"
              "  download   fetch the model from Hugging Face (resumes, verifies every file)\n"
              "  convert    copy the model folder with 8-bit weights: smaller, loads faster\n"
              "  serve      the resident service that keeps the model loaded between jobs\n"
              "  bench      time each stage of the pipeline; 'bench ops' times the GPU ops,\n"
              "             'bench flops' prints the FLOP counts\n\n"
              "Run '%s COMMAND --help' for the options of a command.\n\n"
              "Examples:\n"
              "  %s generate --prompt \"a lighthouse on a cliff at dusk\" -o lighthouse.png\n"
              "  %s edit --image photo.jpg --prompt \"make it winter\" -o winter.png\n"
              "  %s inpaint --image room.png --mask mask.png --prompt \"a green armchair\" -o room2.png\n"
              "  %s expand photo.jpg --aspect 16:9 -o wide.png\n"
              "  %s info --plan\n\n"),
           prog (), prog (), prog (), prog (), prog (), prog (), prog ());
  fputs (model_text (), out);
  fputc ('\n', out);
  fputs (exit_codes_text (), out);
}

/* ---- job options ----------------------------------------------------------------------- */

typedef struct {
  DgJob job;
  char *model;
  char *device;
  char *prompt; /* raw bytes (UTF-8 checked later) */
  char *negative;
  char **images;
  char *mask;
  char *size;
  int steps;
  double guidance;
  char *seed;
  char *rng;
  char *precision;
  char *weights;
  char *output;
  int n_results; /* --n-results: variations */
  int feather;
  double strength;
  char *from;
  gboolean quiet;
  gboolean no_service;
  char *preview;
  gboolean synthetic; /* the synthetic DeepGen 1.0 instead of a model folder */
  int layers;         /* with synthetic: layers per component, 0 = full depth */
  /* `deepgen expand`: an inpaint of the grown canvas (deepgen.h, "expanding the canvas") */
  gboolean expand;
  DgExpandSides sides;
  char *aspect;
} JobOptions;

static void
job_options_clear (JobOptions *o)
{
  g_free (o->model);
  g_free (o->device);
  g_free (o->prompt);
  g_free (o->negative);
  g_strfreev (o->images);
  g_free (o->mask);
  g_free (o->size);
  g_free (o->seed);
  g_free (o->rng);
  g_free (o->precision);
  g_free (o->weights);
  g_free (o->output);
  g_free (o->preview);
  g_free (o->from);
  g_free (o->aspect);
}

/* --prompt and --negative keep the bytes as given (G_OPTION_FLAG_FILENAME): GOption would
 * convert them from the locale's charset and fail with a message that names no option. */
static gboolean
on_text (const char *name, const char *value, gpointer data, GError **error)
{
  JobOptions *o = data;
  char **slot = g_str_equal (name, "--negative") || g_str_equal (name, "-n") ? &o->negative : &o->prompt;
  g_free (*slot);
  *slot = g_strdup (value);
  return TRUE;
}

static const char *
job_name (DgJob job)
{
  return job == DG_JOB_GENERATE ? "generate" : job == DG_JOB_EDIT ? "edit" : "inpaint";
}

/* The command: the job's name, or "expand" (which runs as an inpaint). */
static const char *
command_name (const JobOptions *o)
{
  return o->expand ? "expand" : job_name (o->job);
}

static GOptionContext *
job_context (JobOptions *o)
{
  GOptionEntry common[] = {
    { "prompt", 'p', G_OPTION_FLAG_FILENAME, G_OPTION_ARG_CALLBACK, on_text,
      N_ ("What to make, or the instruction (also taken from the arguments)"), N_ ("TEXT") },
    { "negative", 'n', G_OPTION_FLAG_FILENAME, G_OPTION_ARG_CALLBACK, on_text,
      N_ ("What to avoid (default: none for generate; the model's edit negative for edit and inpaint)"), N_ ("TEXT") },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &o->output, N_ ("Where to write the result (.png, .jpg)"), N_ ("FILE") },
    { "n-results", 0, 0, G_OPTION_ARG_INT, &o->n_results,
      N_ ("Variations: N results (1 to 8, default 1) from the seeds seed, seed + 1, … in one batch, in this "
          "process; each is the image a single run with its seed gives. With N > 1 the number goes before the "
          "extension: out.png becomes out-1.png … out-N.png"),
      N_ ("N") },
    { "size", 's', 0, G_OPTION_ARG_STRING, &o->size,
      N_ ("Output size WIDTHxHEIGHT (multiples of 16; default 512x512; edit: the longest side)"), N_ ("WxH") },
    { "steps", 0, 0, G_OPTION_ARG_INT, &o->steps, N_ ("Denoising steps (default 50)"), N_ ("N") },
    { "guidance", 'g', 0, G_OPTION_ARG_DOUBLE, &o->guidance,
      N_ ("Classifier-free guidance scale (default 4.0; 1 or less turns it off)"), N_ ("G") },
    { "seed", 0, 0, G_OPTION_ARG_STRING, &o->seed, N_ ("Random seed (default 42)"), N_ ("N") },
    { "rng", 0, 0, G_OPTION_ARG_STRING, &o->rng,
      N_ ("Noise generator: philox (same on every machine, default) or torch (torch.randn on the CPU)"), N_ ("NAME") },
    { "precision", 0, 0, G_OPTION_ARG_STRING, &o->precision, N_ ("bf16 (default, as the reference) or f32"),
      N_ ("NAME") },
    { "weights", 0, 0, G_OPTION_ARG_STRING, &o->weights,
      N_ ("auto (default: smaller weights only when the GPU is too small), released (as the model files), q8 "
          "(8-bit Linear layers: about half the GPU memory) or q4 (a 4-bit language model, for 4 GB cards)"),
      N_ ("FORMAT") },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &o->model, N_ ("The DeepGen-1.0-diffusers folder"), N_ ("DIR") },
    { "synthetic", 0, 0, G_OPTION_ARG_NONE, &o->synthetic,
      N_ ("DeepGen 1.0 with random weights made in memory instead of a model folder (the image is noise: for "
          "trying sizes and memory)"),
      NULL },
    { "layers", 0, 0, G_OPTION_ARG_INT, &o->layers,
      N_ ("With --synthetic: the real widths with N layers per component (default: the full depth)"), N_ ("N") },
    { "device", 0, 0, G_OPTION_ARG_STRING, &o->device,
      N_ ("Vulkan device by index or part of its name (default: $DEEPGEN_VK_DEVICE, else the best)"), N_ ("DEV") },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &o->quiet, N_ ("No progress output"), NULL },
    { "no-service", 0, 0, G_OPTION_ARG_NONE, &o->no_service,
      N_ ("Run in this process instead of the resident DeepGen service (see 'deepgen serve --help')"), NULL },
    { "preview", 0, 0, G_OPTION_ARG_FILENAME, &o->preview,
      N_ ("Write a preview of the image to FILE after every step, at 1/8 of the size (through the service)"),
      N_ ("FILE") },
    { "from", 0, 0, G_OPTION_ARG_FILENAME, &o->from,
      N_ ("Run again what made this PNG (its stored parameters; options given as well override them)"), N_ ("FILE") },
    { NULL },
  };
  GOptionEntry images[] = {
    { "image", 'i', 0, G_OPTION_ARG_FILENAME_ARRAY, &o->images,
      o->job == DG_JOB_EDIT ? N_ ("An input image (repeat for several references)") : N_ ("The image to repaint"),
      N_ ("FILE") },
    { "strength", 0, 0, G_OPTION_ARG_DOUBLE, &o->strength,
      N_ ("How much may change, above 0 to 1 (default 1: follow the instruction freely; smaller keeps more of the "
          "image's composition)"),
      N_ ("S") },
    { NULL },
  };
  GOptionEntry inpaint[] = {
    { "mask", 0, 0, G_OPTION_ARG_FILENAME, &o->mask,
      N_ ("Where to repaint: white = repaint, black = keep (same size as the image)"), N_ ("FILE") },
    { "feather", 0, 0, G_OPTION_ARG_INT, &o->feather, N_ ("Edge blend width in pixels (default 8)"), N_ ("PX") },
    { NULL },
  };
  GOptionEntry expand[] = {
    { "left", 0, 0, G_OPTION_ARG_INT, &o->sides.left, N_ ("Pixels to add on the left"), N_ ("N") },
    { "top", 0, 0, G_OPTION_ARG_INT, &o->sides.top, N_ ("Pixels to add at the top"), N_ ("N") },
    { "right", 0, 0, G_OPTION_ARG_INT, &o->sides.right, N_ ("Pixels to add on the right"), N_ ("N") },
    { "bottom", 0, 0, G_OPTION_ARG_INT, &o->sides.bottom, N_ ("Pixels to add at the bottom"), N_ ("N") },
    { "aspect", 0, 0, G_OPTION_ARG_STRING, &o->aspect,
      N_ ("Instead of the sides: grow the shorter axis to this aspect ratio, evenly on both sides"), N_ ("W:H") },
    { "feather", 0, 0, G_OPTION_ARG_INT, &o->feather, N_ ("Edge blend width in pixels (default 8)"), N_ ("PX") },
    { NULL },
  };
  const char *params = o->expand ? N_ ("IMAGE — grow the canvas and paint the new area around the image")
                       : o->job == DG_JOB_GENERATE ? N_ ("[PROMPT…] — make an image from a text prompt")
                       : o->job == DG_JOB_EDIT     ? N_ ("[INSTRUCTION…] — edit images following an instruction")
                                                   : N_ ("[INSTRUCTION…] — repaint the masked part of an image");
  GOptionContext *ctx = g_option_context_new (NULL);
  g_option_context_set_translation_domain (ctx, GETTEXT_PACKAGE);
  g_autofree char *summary = g_strdup_printf ("%s %s %s", prog (), command_name (o), _ (params));
  g_option_context_set_summary (ctx, summary);
  GOptionGroup *main_group = g_option_group_new (command_name (o), "", "", o, NULL);
  g_option_group_set_translation_domain (main_group, GETTEXT_PACKAGE);
  if (o->expand)
    g_option_group_add_entries (main_group, expand);
  else if (o->job != DG_JOB_GENERATE)
    g_option_group_add_entries (main_group, images);
  if (o->job == DG_JOB_INPAINT && !o->expand)
    g_option_group_add_entries (main_group, inpaint);
  g_option_group_add_entries (main_group, common);
  g_option_context_set_main_group (ctx, main_group);

  GString *d = g_string_new (NULL);
  g_string_append (d, _ ("Examples:\n"));
  switch (o->job) {
  case DG_JOB_GENERATE:
    g_string_append_printf (d, "  %s generate --prompt \"a lighthouse on a cliff at dusk\" -o lighthouse.png\n",
                            prog ());
    g_string_append_printf (d, "  %s generate -p \"a watercolour city map\" --size 768x512 --seed 7 -o map.jpg\n",
                            prog ());
    g_string_append_printf (d, "  %s generate a bowl of ramen, studio photo --steps 30\n", prog ());
    break;
  case DG_JOB_EDIT:
    g_string_append_printf (d, "  %s edit --image photo.jpg --prompt \"make it winter\" -o winter.png\n", prog ());
    g_string_append_printf (d, "  %s edit -i cat.png -i hat.png -p \"put the hat on the cat\" --size 512x512\n",
                            prog ());
    g_string_append (d, _ ("\nWith one image the result keeps its aspect ratio; its longest side is the largest of\n"
                           "--size (default 512). With several images the result is --size.\n"));
    break;
  case DG_JOB_INPAINT:
    if (o->expand) {
      g_string_append_printf (d, "  %s expand photo.jpg --aspect 16:9 -o wide.png\n", prog ());
      g_string_append_printf (d, "  %s expand room.png --right 256 --prompt \"a window with a garden view\"\n",
                              prog ());
      g_string_append (d, _ ("\nEvery pixel of the image is kept exactly; the model paints the new area from what it\n"
                             "sees near the border, and --prompt can say what belongs there. --aspect grows the\n"
                             "shorter axis only, half on each side.\n"));
      break;
    }
    g_string_append_printf (d,
                            "  %s inpaint --image room.png --mask mask.png --prompt \"a green armchair\" -o "
                            "room2.png\n",
                            prog ());
    g_string_append (d, _ ("\nPixels where the mask is black are copied from the image unchanged; the model sees\n"
                           "the masked area with some context around it, at a working size near 512×512.\n"));
    break;
  }
  g_string_append_c (d, '\n');
  g_string_append (d, model_text ());
  g_string_append_c (d, '\n');
  g_string_append (d, exit_codes_text ());
  g_option_context_set_description (ctx, d->str);
  g_string_free (d, TRUE);
  return ctx;
}

/* ---- the model folder ------------------------------------------------------------------- */

static char *
model_path (const char *option)
{
  return option ? g_strdup (option) : dg_model_default_path ();
}

/* The message for a missing or incomplete model folder: what is missing, where to get it. */
static char *
missing_model_text (const char *path, const char *missing)
{
  GString *s = g_string_new (NULL);
  g_autofree char *display = g_filename_display_name (path);
  g_autofree char *quoted = g_shell_quote (path);
  if (!g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_string_append_printf (s, _ ("The DeepGen model folder %s does not exist.\n"), display);
  } else {
    g_string_append_printf (s, _ ("The DeepGen model folder %s is incomplete. Missing:\n"), display);
    g_auto (GStrv) lines = g_strsplit (missing, "\n", -1);
    for (guint i = 0; lines[i]; i++)
      if (*lines[i])
        g_string_append_printf (s, "  %s\n", lines[i]);
  }
  g_string_append_printf (s,
                          _ ("Download DeepGen-1.0-diffusers from Hugging Face (%s, about 14.4 GB) with:\n"
                             "  deepgen download --model %s\n"
                             "or point --model (or DEEPGEN_MODEL) at the folder that holds it.\n"),
                          HF_REPO, quoted);
  return g_string_free (s, FALSE);
}

/* NULL when the folder is complete, else the message. */
static char *
check_model (const char *path)
{
  g_autofree char *missing = dg_model_folder_missing (path);
  return missing ? missing_model_text (path, missing) : NULL;
}

/* ---- running a job ------------------------------------------------------------------------ */

typedef struct {
  /* in */
  char *model_dir; /* NULL: the synthetic model of @layers */
  guint layers;
  char *device;
  DgPrecision precision;
  DgWeightFormat weights;
  DgRequest req;
  guint n_results; /* variations: req with the seeds req.seed, req.seed + 1, … in one batch */
  gboolean use_service;
  char **outputs; /* [n_results] where each result goes */
  const char *type;
  const char *preview, *preview_type;
  /* state */
  CliProgress *progress;
  GCancellable *cancel;
  GMainLoop *loop;
  guint interrupts;
  /* out */
  GPtrArray *results; /* DgImage*: the n_results images in seed order, once written */
  char *device_name;
  GError *error;
  gint64 t_start, t_end;
  DgWeightFormat used_weights;
} Job;

static gboolean
job_done (gpointer data)
{
  Job *j = data;
  g_main_loop_quit (j->loop);
  return G_SOURCE_REMOVE;
}

/* --preview: the file is replaced (written aside, then renamed) at every step, so a reader never
 * sees half of it. A preview that cannot be written is not worth stopping the job for. */
static void
on_preview (const DgImage *rgb, int step, int n_steps, gpointer data)
{
  (void) step;
  (void) n_steps;
  Job *j = data;
  g_autoptr (GError) error = NULL;
  if (!cli_image_save (rgb, j->preview, j->preview_type, &error))
    g_debug ("preview: %s", error->message);
}

/* The job through the resident service (dg_service.h), started when none runs; variations as one
 * batch there, as in this process. FALSE when no service can be had: the caller runs the job in
 * this process. */
G_STATIC_ASSERT (CLI_MAX_RESULTS <= DG_SERVICE_MAX_RESULTS);
static gboolean
job_via_service (Job *j)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  const char *serve_argv[] = { self ? self : "deepgen", "serve", "--detach", NULL };
  g_autoptr (DgServiceClient) client = dg_service_client_connect (NULL, serve_argv, &error);
  if (!client) {
    g_autofree char *notice =
        g_strdup_printf (_ ("%s: %s Running the job in this process instead."), prog (), error->message);
    cli_progress_message (j->progress, notice);
    return FALSE;
  }
  if (j->preview)
    dg_service_client_set_preview (client, on_preview, j);
  DgServiceModel m = { j->model_dir, j->device, j->precision, j->weights, j->model_dir == NULL, j->layers };
  DgServiceRunInfo info = { 0 };
  j->t_start = g_get_monotonic_time ();
  j->results = dg_service_client_run_batch (client, &m, &j->req, j->n_results, cli_progress_func, j->progress, &info,
                                            j->cancel, &j->error);
  if (g_error_matches (j->error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED)) {
    /* The service was leaving (idle) as we came: nothing ran; once more with a new one. */
    g_clear_error (&j->error);
    g_clear_pointer (&client, dg_service_client_free);
    if (!(client = dg_service_client_connect (NULL, serve_argv, &j->error)))
      return TRUE;
    if (j->preview)
      dg_service_client_set_preview (client, on_preview, j);
    j->results = dg_service_client_run_batch (client, &m, &j->req, j->n_results, cli_progress_func, j->progress, &info,
                                              j->cancel, &j->error);
  }
  j->t_end = g_get_monotonic_time ();
  j->device_name = g_steal_pointer (&info.device_name);
  j->used_weights = info.weights;
  return TRUE;
}

static void
job_in_process (Job *j)
{
  DgEngineOptions eo = { j->device };
  DgLoadOptions lo = DG_LOAD_OPTIONS_INIT;
  lo.precision = j->precision;
  lo.weights = j->weights;
  g_autoptr (DgEngine) engine = dg_engine_new (&eo, &j->error);
  g_autoptr (DgModel) model = NULL;
  if (engine) {
    j->device_name = g_strdup (dg_engine_device_name (engine));
    model = j->model_dir ? dg_model_open (engine, j->model_dir, &lo, &j->error)
                         : dg_model_open_synthetic (engine, j->layers, 0, &lo, &j->error);
  }
  if (model && !g_cancellable_set_error_if_cancelled (j->cancel, &j->error)) {
    /* variations as the panel runs them (ui/dg_task.c): one batch, each request with its own seed,
     * so each image is the one a single run with that seed gives (deepgen.h, dg_run_batch) */
    g_autofree DgRequest *reqs = g_new (DgRequest, j->n_results);
    g_autofree const DgRequest **ptrs = g_new (const DgRequest *, j->n_results);
    for (guint i = 0; i < j->n_results; i++) {
      reqs[i] = j->req;
      reqs[i].seed = j->req.seed + i;
      ptrs[i] = &reqs[i];
    }
    j->t_start = g_get_monotonic_time ();
    if (j->n_results == 1) {
      DgImage *img = dg_run (model, &j->req, cli_progress_func, j->progress, j->cancel, &j->error);
      if (img) {
        j->results = g_ptr_array_new_with_free_func ((GDestroyNotify) dg_image_free);
        g_ptr_array_add (j->results, img);
      }
    } else {
      j->results = dg_run_batch (model, ptrs, j->n_results, cli_progress_func, j->progress, j->cancel, &j->error);
    }
    j->t_end = g_get_monotonic_time ();
    j->used_weights = dg_model_last_run_weights (model);
  }
}

static gpointer
job_thread (gpointer data)
{
  Job *j = data;
  if (!j->use_service || !job_via_service (j))
    job_in_process (j);
  cli_progress_end (j->progress);
  /* A result that arrives after Ctrl-C is not written: the user asked for nothing. */
  if (j->results && g_cancellable_is_cancelled (j->cancel)) {
    g_clear_pointer (&j->results, g_ptr_array_unref);
    g_set_error (&j->error, DG_ERROR, DG_ERROR_CANCELLED, _ ("Cancelled."));
  }
  for (guint i = 0; j->results && i < j->results->len; i++) {
    /* the parameters ride along in the PNG, for --from (DgJobParams): each with its own seed */
    DgRequest r = j->req;
    r.seed = j->req.seed + i;
    g_autoptr (DgJobParams) params = dg_job_params_new (&r, j->precision, j->used_weights);
    g_autofree char *params_text = dg_job_params_to_string (params);
    if (!cli_image_save_with_text (g_ptr_array_index (j->results, i), j->outputs[i], j->type, DG_JOB_PARAMS_KEY,
                                   params_text, &j->error))
      g_clear_pointer (&j->results, g_ptr_array_unref);
  }
  if (j->error && j->error->domain == G_IO_ERROR && j->error->code == G_IO_ERROR_CANCELLED) {
    g_clear_error (&j->error);
    g_set_error (&j->error, DG_ERROR, DG_ERROR_CANCELLED, _ ("Cancelled."));
  }
  g_idle_add (job_done, j);
  return NULL;
}

static gboolean
on_signal (gpointer data)
{
  Job *j = data;
  if (j->interrupts++ == 0) {
    g_cancellable_cancel (j->cancel);
    cli_progress_message (j->progress, _ ("Cancelling at the next step… (press Ctrl-C again to stop at once)"));
    return G_SOURCE_CONTINUE;
  }
  cli_progress_end (j->progress);
  cli_image_save_abort ();
  fprintf (stderr, _ ("%s: cancelled; nothing was written.\n"), prog ());
  _exit (CLI_EXIT_CANCELLED);
}

static int
run_job (Job *j)
{
  j->cancel = g_cancellable_new ();
  j->loop = g_main_loop_new (NULL, FALSE);
  guint sources[3] = {
    g_unix_signal_add (SIGINT, on_signal, j),
    g_unix_signal_add (SIGTERM, on_signal, j),
    g_unix_signal_add (SIGHUP, on_signal, j),
  };
  GThread *t = g_thread_new ("deepgen-run", job_thread, j);
  g_main_loop_run (j->loop);
  g_thread_join (t);
  for (guint i = 0; i < G_N_ELEMENTS (sources); i++) g_source_remove (sources[i]);
  g_main_loop_unref (j->loop);
  g_object_unref (j->cancel);
  if (j->error)
    return fail (g_steal_pointer (&j->error));
  g_autofree char *display = g_filename_display_name (j->outputs[0]);
  g_autofree char *last = g_filename_display_name (j->outputs[j->n_results - 1]);
  g_autofree char *took = cli_format_duration ((double) (j->t_end - j->t_start) / 1e6);
  const DgImage *first = g_ptr_array_index (j->results, 0);
  if (j->n_results == 1)
    printf (_ ("Wrote %s (%d×%d) in %s on %s.\n"), display, first->width, first->height, took,
            j->device_name ? j->device_name : "?");
  else
    printf (_ ("Wrote %u images, %s … %s (%d×%d), in %s on %s.\n"), j->n_results, display, last, first->width,
            first->height, took, j->device_name ? j->device_name : "?");
  if (j->weights == DG_WEIGHTS_AUTO && j->used_weights == DG_WEIGHTS_Q8_0)
    printf (_ ("The GPU's memory is too small for the released weights, so 8-bit weights were used (--weights q8); "
               "the image differs slightly from a full-precision run.\n"));
  else if (j->weights == DG_WEIGHTS_AUTO && j->used_weights == DG_WEIGHTS_Q4_0)
    printf (_ ("The GPU's memory is too small for the released and the 8-bit weights, so a 4-bit language model "
               "was used (--weights q4); the image differs from a full-precision run.\n"));
  return CLI_EXIT_OK;
}

static gboolean
blank (const char *text)
{
  for (const char *p = text; *p; p = g_utf8_next_char (p))
    if (!g_unichar_isspace (g_utf8_get_char (p)))
      return FALSE;
  return TRUE;
}

static gboolean
usage_error (GError **error, const char *msg)
{
  g_set_error_literal (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, msg);
  return FALSE;
}

/* --from FILE: the parameters stored in a result PNG, which must be of this job. */
static DgJobParams *
job_from_file (const char *path, DgJob job, GError **error)
{
  g_autoptr (GError) e = NULL;
  g_autofree char *text = cli_image_read_text (path, DG_JOB_PARAMS_KEY, &e);
  g_autoptr (DgJobParams) p = text ? dg_job_params_from_string (text, &e) : NULL;
  g_autofree char *name = g_filename_display_name (path);
  if (!p) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--from: %s", e->message);
    return NULL;
  }
  if (p->job != job) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 _ ("--from: %s was made by “%s %s”: run that command with --from instead"), name, prog (),
                 job_name (p->job));
    return NULL;
  }
  return g_steal_pointer (&p);
}

/* `deepgen expand IMAGE`: one image as the argument (it becomes --image), the sides or --aspect
 * (not both), no --from (an expand result records the inpaint it ran). */
static gboolean
expand_arguments (JobOptions *o, int argc, char **argv, GError **error)
{
  if (argc < 2)
    return usage_error (error, _ ("no image: say which image to expand (deepgen expand IMAGE …)"));
  if (argc > 2) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 _ ("unexpected argument '%s': expand takes one image; give the prompt with --prompt"), argv[2]);
    return FALSE;
  }
  if (o->from)
    return usage_error (error, _ ("--from cannot rerun an expand: give the image and the sides again"));
  const DgExpandSides *s = &o->sides;
  const gboolean any_side = s->left || s->top || s->right || s->bottom;
  if (o->aspect && any_side)
    return usage_error (error, _ ("give either --aspect or the sides (--left, --top, --right, --bottom), not both"));
  if (!o->aspect && !any_side)
    return usage_error (error, _ ("nothing to expand: give --left, --top, --right or --bottom N, or --aspect W:H"));
  o->images = g_new0 (char *, 2);
  o->images[0] = g_strdup (argv[1]);
  return TRUE;
}

/* The request from the parsed options: every value checked, before anything heavy. */
static gboolean
job_request (JobOptions *o, int argc, char **argv, Job *j, char **prompt, char **negative, GError **error)
{
  const DgJob job = o->job;
  if (o->expand && !expand_arguments (o, argc, argv, error))
    return FALSE;
  /* The prompt: --prompt, else the remaining arguments joined by spaces. */
  if (o->prompt && argc > 1 && !o->expand) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 _ ("unexpected argument '%s': give the prompt either with --prompt or as arguments"), argv[1]);
    return FALSE;
  }
  if (!o->prompt && argc > 1 && !o->expand)
    o->prompt = g_strjoinv (" ", argv + 1);
  g_autoptr (DgJobParams) from = NULL;
  if (o->from && !(from = job_from_file (o->from, job, error)))
    return FALSE;
  if (from && !o->prompt)
    *prompt = g_strdup (from->prompt);
  if (from && !o->negative)
    *negative = g_strdup (from->negative_prompt);
  if (o->prompt && !(*prompt = cli_text_to_utf8 (o->prompt, "--prompt", error)))
    return FALSE;
  if (o->negative && !(*negative = cli_text_to_utf8 (o->negative, "--negative", error)))
    return FALSE;
  if (o->expand) { /* the prompt is optional: it adds to the fixed instruction */
    g_autofree char *user = g_steal_pointer (prompt);
    *prompt = dg_expand_instruction (user);
  }
  if (!*prompt || blank (*prompt))
    return usage_error (error, job == DG_JOB_GENERATE ? _ ("no prompt: say what to make with --prompt \"…\"")
                                                      : _ ("no instruction: say what to change with --prompt \"…\""));
  const guint n_images = o->images ? g_strv_length (o->images) : 0;
  if (job == DG_JOB_EDIT && n_images == 0)
    return usage_error (error, _ ("edit needs at least one --image FILE"));
  if (job == DG_JOB_INPAINT && n_images != 1)
    return usage_error (error, _ ("inpaint needs exactly one --image FILE"));
  if (job == DG_JOB_INPAINT && !o->mask && !o->expand)
    return usage_error (error, _ ("inpaint needs a --mask FILE (white = repaint, black = keep)"));

  DgRequest *r = &j->req;
  *r = (DgRequest) DG_REQUEST_INIT;
  if (from)
    dg_job_params_to_request (from, r);
  r->job = job;
  r->prompt = *prompt;
  r->negative_prompt = *negative;
  j->precision = from ? from->precision : DG_PRECISION_BF16;
  j->weights = from ? from->weights : DG_WEIGHTS_AUTO;
  if (o->size && !cli_parse_size (o->size, &r->width, &r->height, error))
    return FALSE;
  if (o->steps != -1 && !cli_check_int (o->steps, 1, 1000, "--steps", error))
    return FALSE;
  if (o->steps != -1)
    r->steps = o->steps;
  if (o->guidance != -1.0 && !cli_check_double (o->guidance, 0.0, 100.0, "--guidance", error))
    return FALSE;
  if (o->guidance != -1.0)
    r->guidance = o->guidance;
  if (o->feather != -1 && !cli_check_int (o->feather, 0, 255, "--feather", error))
    return FALSE;
  r->feather = o->feather;
  if (o->strength != -1.0 && !cli_check_double (o->strength, 0.0, 1.0, "--strength", error))
    return FALSE;
  if (o->strength != -1.0)
    r->strength = o->strength;
  if ((o->seed && !cli_parse_seed (o->seed, &r->seed, error)) || (o->rng && !cli_parse_rng (o->rng, &r->rng, error)) ||
      (o->precision && !cli_parse_precision (o->precision, &j->precision, error)) ||
      (o->weights && !cli_parse_weights (o->weights, &j->weights, error)))
    return FALSE;
  return TRUE;
}

/* Expand: images[0] becomes the grown canvas and *mask its new area (deepgen.h, "expanding the
 * canvas"); the geometry's refusals are usage errors (exit 2). */
static gboolean
expand_source (const JobOptions *o, GPtrArray *images, DgMask **mask, DgExpandPlan *plan, GError **error)
{
  const DgImage *src = g_ptr_array_index (images, 0);
  DgExpandSides sides = o->sides;
  int aw, ah;
  g_autoptr (GError) e = NULL;
  if (o->aspect && (!dg_expand_parse_aspect (o->aspect, &aw, &ah, &e) ||
                    !dg_expand_sides_for_aspect (src->width, src->height, aw, ah, &sides, &e))) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--aspect: %s", e->message);
    return FALSE;
  }
  if (!dg_expand_plan (src->width, src->height, &sides, plan, &e)) {
    g_set_error_literal (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, e->message);
    return FALSE;
  }
  DgImage *canvas = dg_expand_canvas (src, plan);
  *mask = dg_expand_mask (plan);
  if (!canvas || !*mask) {
    dg_image_free (canvas);
    g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("Not enough memory for the %d×%d canvas."), plan->canvas_width,
                 plan->canvas_height);
    return FALSE;
  }
  g_ptr_array_remove_index (images, 0); /* frees the source */
  g_ptr_array_insert (images, 0, canvas);
  return TRUE;
}

static int
job_main (JobOptions *o, int argc, char **argv)
{
  GError *error = NULL;
  Job j = { 0 };
  g_autofree char *prompt = NULL, *negative = NULL;
  if (!job_request (o, argc, argv, &j, &prompt, &negative, &error))
    return fail (error);
  const char *deflt = o->expand                   ? "expanded.png"
                      : o->job == DG_JOB_GENERATE ? "generated.png"
                      : o->job == DG_JOB_EDIT     ? "edited.png"
                                                  : "inpainted.png";
  const char *output = o->output ? o->output : deflt;
  if (!cli_check_int (o->n_results, 1, CLI_MAX_RESULTS, "--n-results", &error))
    return fail (error);
  j.n_results = (guint) o->n_results;
  g_auto (GStrv) outputs = g_new0 (char *, j.n_results + 1);
  for (guint i = 0; i < j.n_results; i++)
    outputs[i] = j.n_results == 1 ? g_strdup (output) : cli_variation_path (output, i + 1);
  /* Before any heavy work: a known output type in a writable folder, and the model. */
  if (!cli_output_type (output, &j.type, &error))
    return fail (error);
  for (guint i = 0; i < j.n_results; i++)
    if (!cli_output_writable (outputs[i], &error))
      return fail (error);
  if ((o->synthetic && o->model) || (o->layers && !o->synthetic) ||
      !cli_check_int (o->layers, 0, 256, "--layers", &error)) {
    if (!error)
      g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   o->model ? _ ("--synthetic and --model exclude each other") : _ ("--layers needs --synthetic"));
    return fail (error);
  }
  if (o->preview &&
      (!cli_output_type (o->preview, &j.preview_type, &error) || !cli_output_writable (o->preview, &error)))
    return fail (error);
  j.preview = o->preview;
  g_autofree char *dir = o->synthetic ? NULL : model_path (o->model);
  g_autofree char *missing = o->synthetic ? NULL : check_model (dir);
  if (missing) {
    fprintf (stderr, "%s: %s", prog (), missing);
    return CLI_EXIT_FAILURE;
  }
  j.layers = (guint) o->layers;

  /* Inputs. */
  g_autoptr (GPtrArray) images = g_ptr_array_new_with_free_func ((GDestroyNotify) dg_image_free);
  for (guint i = 0; o->images && o->images[i]; i++) {
    DgImage *img = cli_image_load (o->images[i], &error);
    if (!img)
      return fail (error);
    g_ptr_array_add (images, img);
  }
  g_autoptr (DgMask) mask = NULL;
  if (o->mask) {
    if (!(mask = cli_mask_load (o->mask, &error)))
      return fail (error);
    const DgImage *src = g_ptr_array_index (images, 0);
    if (mask->width != src->width || mask->height != src->height) {
      g_set_error (&error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   _ ("The mask is %d×%d but the image is %d×%d: they must have the same size"), mask->width,
                   mask->height, src->width, src->height);
      return fail (error);
    }
  }
  DgExpandPlan expand = { 0 };
  if (o->expand) {
    if (!expand_source (o, images, &mask, &expand, &error))
      return fail (error);
  }
  j.req.images = (const DgImage *const *) images->pdata;
  j.req.n_images = images->len;
  j.req.mask = mask;
  int w, h;
  g_autoptr (GError) size_error = NULL;
  if (!dg_output_size_checked (&j.req, &w, &h, &size_error)) {
    g_set_error_literal (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, size_error->message);
    return fail (error);
  }

  j.model_dir = dir;
  j.device = o->device;
  j.use_service = !o->no_service && !g_getenv ("DEEPGEN_NO_SERVICE");
  j.outputs = outputs;
  g_autoptr (CliProgress) progress =
      cli_progress_new (stderr, cli_progress_mode_for_stderr (o->quiet), g_get_charset (NULL), dg_stage_name);
  j.progress = progress;
  if (!o->quiet) {
    if (o->job == DG_JOB_GENERATE && j.req.width && (w != j.req.width || h != j.req.height))
      fprintf (stderr, _ ("%s: generate, %d×%d (sides rounded to multiples of 16)\n"), prog (), w, h);
    else if (o->expand)
      fprintf (stderr, _ ("%s: expand, %d×%d image to %d×%d\n"), prog (), expand.image_width, expand.image_height, w,
               h);
    else if (o->job == DG_JOB_INPAINT)
      fprintf (stderr, _ ("%s: inpaint, %d×%d image\n"), prog (), w, h);
    else
      fprintf (stderr, "%s: %s, %d×%d\n", prog (), job_name (o->job), w, h);
  }
  int rc = run_job (&j);
  g_clear_pointer (&j.results, g_ptr_array_unref);
  g_free (j.device_name);
  return rc;
}

static int
cmd_job (DgJob job, gboolean expand, int argc, char **argv)
{
  JobOptions o = {
    .job = job, .expand = expand, .n_results = 1, .steps = -1, .guidance = -1.0, .feather = -1, .strength = -1.0
  };
  g_autoptr (GOptionContext) ctx = job_context (&o);
  GError *error = NULL;
  int rc = g_option_context_parse (ctx, &argc, &argv, &error) ? job_main (&o, argc, argv) : fail (error);
  job_options_clear (&o);
  return rc;
}

/* ---- info ------------------------------------------------------------------------------- */

static const CliPlanRow plan_rows[] = {
  { DG_JOB_GENERATE, 512, 512 },
  { DG_JOB_EDIT, 512, 512 },
  { DG_JOB_GENERATE, 1024, 1024 },
  { DG_JOB_EDIT, 1024, 1024 },
};

/* The architecture for plans: the model folder's configs when they load, else DeepGen 1.0. */
static char *
plan_model (const char *dir, DgPlanModel **m)
{
  if (dir && (*m = dg_plan_model_new_from_folder (dir, NULL))) {
    g_autofree char *display = g_filename_display_name (dir);
    return g_strdup_printf (_ ("the configs in %s"), display);
  }
  *m = dg_plan_model_new ();
  return g_strdup (_ ("DeepGen 1.0 (built-in configs)"));
}

static int
cmd_info (int argc, char **argv)
{
  g_autofree char *model = NULL, *size = NULL, *precision = NULL, *device = NULL, *weights = NULL;
  gboolean plan = FALSE, check = FALSE, no_device = FALSE;
  int text_tokens = 0;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, N_ ("The DeepGen-1.0-diffusers folder"), N_ ("DIR") },
    { "plan", 0, 0, G_OPTION_ARG_NONE, &plan,
      N_ ("Print the peak GPU memory of generate and edit at 512² and 1024² (or --size)"), NULL },
    { "size", 's', 0, G_OPTION_ARG_STRING, &size, N_ ("Plan this size too, stage by stage"), N_ ("WxH") },
    { "precision", 0, 0, G_OPTION_ARG_STRING, &precision, N_ ("Plan for bf16 (default) or f32"), N_ ("NAME") },
    { "weights", 0, 0, G_OPTION_ARG_STRING, &weights, N_ ("Plan for released (default), q8 or q4 weights"),
      N_ ("FORMAT") },
    { "text-tokens", 0, 0, G_OPTION_ARG_INT, &text_tokens, N_ ("Plan for prompt rows of N tokens"), N_ ("N") },
    { "check", 0, 0, G_OPTION_ARG_NONE, &check,
      N_ ("Only check the model folder: exit 0 when it is complete, 1 when not"), NULL },
    { "device", 0, 0, G_OPTION_ARG_STRING, &device, N_ ("Vulkan device by index or part of its name"), N_ ("DEV") },
    { "no-device", 0, 0, G_OPTION_ARG_NONE, &no_device, N_ ("Do not open a Vulkan device"), NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (NULL);
  g_option_context_set_translation_domain (ctx, GETTEXT_PACKAGE);
  g_autofree char *summary = g_strdup_printf (_ ("%s info — the GPU, the model folder and the memory plan"), prog ());
  g_option_context_set_summary (ctx, summary);
  g_autofree char *desc = g_strdup_printf (_ ("Examples:\n  %s info\n  %s info --plan\n  %s info --plan --size "
                                              "768x512\n  %s info --check && echo ready\n\n%s\n%s"),
                                           prog (), prog (), prog (), prog (), model_text (), exit_codes_text ());
  g_option_context_set_description (ctx, desc);
  g_option_context_add_main_entries (ctx, entries, GETTEXT_PACKAGE);
  GError *error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return fail (error);
  if (argc > 1) {
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _ ("unexpected argument '%s'"), argv[1]);
    return fail (error);
  }
  DgPrecision prec = DG_PRECISION_BF16;
  DgWeightFormat wfmt = DG_WEIGHTS_RELEASED;
  int sw = 0, sh = 0;
  if ((precision && !cli_parse_precision (precision, &prec, &error)) ||
      (size && !cli_parse_size (size, &sw, &sh, &error)) || (weights && !cli_parse_weights (weights, &wfmt, &error)) ||
      (text_tokens && !cli_check_int (text_tokens, 1, 100000, "--text-tokens", &error)))
    return fail (error);

  g_autofree char *dir = model_path (model);
  g_autofree char *missing = check_model (dir);
  g_autofree char *display = g_filename_display_name (dir);
  if (check) {
    if (missing) {
      fprintf (stderr, "%s", missing);
      return CLI_EXIT_FAILURE;
    }
    printf (_ ("The model folder %s is complete.\n"), display);
    return CLI_EXIT_OK;
  }

  printf ("deepgen %s\n\n", DEEPGEN_VERSION);
  guint64 device_bytes = 0;
  g_autofree char *device_name = NULL;
  if (!no_device) {
    DgEngineOptions eo = { .device = device };
    g_autoptr (GError) derr = NULL;
    g_autoptr (DgEngine) engine = dg_engine_new (&eo, &derr);
    if (engine) {
      g_autofree char *text = dg_engine_describe (engine);
      printf ("%s\n\n", text);
      device_bytes = dg_engine_device_bytes (engine);
      device_name = g_strdup (dg_engine_device_name (engine));
    } else {
      printf (_ ("Vulkan: no usable device (%s)\n\n"), derr->message);
    }
  }
  printf (_ ("Model folder: %s\n"), display);
  if (missing)
    printf ("%s", missing);
  else
    printf (_ ("  complete\n"));

  if (plan || size) {
    g_autoptr (DgPlanModel) m = NULL;
    g_autofree char *source = plan_model (missing ? NULL : dir, &m);
    if (!missing && dg_model_folder_weights (dir) == DG_WEIGHTS_Q8_0)
      wfmt = DG_WEIGHTS_Q8_0;         /* a converted folder runs 8-bit whatever is asked */
    else if (wfmt == DG_WEIGHTS_AUTO) /* a plan is for one format */
      wfmt = DG_WEIGHTS_RELEASED;
    g_autofree char *table = cli_plan_table (m, source, prec, wfmt, plan_rows, G_N_ELEMENTS (plan_rows),
                                             (guint) text_tokens, device_bytes, device_name, &error);
    if (!table)
      return fail (error);
    printf ("\n%s", table);
    if (size) {
      for (int k = 0; k < 2; k++) {
        DgPlanRequest r = DG_PLAN_REQUEST_INIT;
        r.job = k ? DG_JOB_EDIT : DG_JOB_GENERATE;
        r.n_refs = k;
        r.precision = prec;
        r.weights = wfmt;
        r.text_tokens = (guint) text_tokens;
        dg_output_size (&(DgRequest) { .job = DG_JOB_GENERATE, .width = sw, .height = sh }, &r.width, &r.height);
        if (k) { /* references are multiples of 32 */
          r.width = (r.width + 31) / 32 * 32;
          r.height = (r.height + 31) / 32 * 32;
        }
        g_autofree char *detail = cli_plan_detail (m, &r, &error);
        if (!detail)
          return fail (error);
        printf ("\n%s", detail);
      }
    }
  }
  return CLI_EXIT_OK;
}

/* ---- bench --------------------------------------------------------------------------------- */

/* Wall time between progress callbacks, summed per part of the pipeline. dg_run reports at
 * the start of each unit of work (pipeline.c), so the time up to the next report belongs to
 * the unit just reported. ENCODE reports after BRIDGE are the VAE encoding references. */
enum { PART_LOAD, PART_VLM, PART_CONNECTOR, PART_VAE_ENCODE, PART_DIT, PART_VAE_DECODE, N_PARTS };

typedef struct {
  gint64 last;
  int part;
  gboolean bridged;
  double seconds[N_PARTS];
  int dit_steps;
  double dit_first;  /* the first step: recording and first-touch costs included */
  int dit_step_open; /* the step whose time is running, −1 none */
  CliProgress *progress;
} Timeline;

static void
timeline_func (DgStage stage, int step, int n_steps, gpointer data)
{
  Timeline *t = data;
  gint64 now = g_get_monotonic_time ();
  if (t->part >= 0) {
    double dt = (double) (now - t->last) / 1e6;
    t->seconds[t->part] += dt;
    if (t->part == PART_DIT && t->dit_step_open == 0)
      t->dit_first += dt;
  }
  t->dit_step_open = -1;
  switch (stage) {
  case DG_STAGE_LOAD: t->part = PART_LOAD; break;
  case DG_STAGE_ENCODE: t->part = t->bridged ? PART_VAE_ENCODE : PART_VLM; break;
  case DG_STAGE_BRIDGE:
    t->part = PART_CONNECTOR;
    t->bridged = TRUE;
    break;
  case DG_STAGE_DENOISE:
    t->part = PART_DIT;
    if (step < n_steps) {
      t->dit_step_open = step;
      t->dit_steps = MAX (t->dit_steps, step + 1);
    }
    break;
  case DG_STAGE_DECODE: t->part = PART_VAE_DECODE; break;
  }
  t->last = now;
  cli_progress_update (t->progress, stage, step, n_steps, now);
}

static int
cmd_bench_flops (int argc, char **argv)
{
  g_autofree char *size = NULL;
  int text_tokens = 0, steps = 50;
  GOptionEntry entries[] = {
    { "size", 's', 0, G_OPTION_ARG_STRING, &size, N_ ("Image size (default 512x512; also 1024x1024)"), N_ ("WxH") },
    { "text-tokens", 0, 0, G_OPTION_ARG_INT, &text_tokens, N_ ("Prompt rows of N text tokens"), N_ ("N") },
    { "steps", 0, 0, G_OPTION_ARG_INT, &steps, N_ ("Denoising steps (default 50)"), N_ ("N") },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (NULL);
  g_option_context_set_translation_domain (ctx, GETTEXT_PACKAGE);
  g_autofree char *summary =
      g_strdup_printf (_ ("%s bench flops — FLOP counts of DeepGen 1.0 per stage (no GPU)"), prog ());
  g_option_context_set_summary (ctx, summary);
  g_option_context_add_main_entries (ctx, entries, GETTEXT_PACKAGE);
  GError *error = NULL;
  int w = 0, h = 0;
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || (size && !cli_parse_size (size, &w, &h, &error)) ||
      !cli_check_int (steps, 1, 1000, "--steps", &error) ||
      (text_tokens && !cli_check_int (text_tokens, 1, 100000, "--text-tokens", &error)))
    return fail (error);
  g_autoptr (DgPlanModel) m = dg_plan_model_new ();
  const int sizes[][2] = { { 512, 512 }, { 1024, 1024 } };
  for (guint i = 0; i < (size ? 1u : G_N_ELEMENTS (sizes)); i++) {
    int sw = size ? (w + 31) / 32 * 32 : sizes[i][0], sh = size ? (h + 31) / 32 * 32 : sizes[i][1];
    g_autofree char *table = cli_flops_table (m, sw, sh, (guint) text_tokens, (guint) steps);
    printf ("%s%s", i ? "\n" : "", table);
  }
  return CLI_EXIT_OK;
}

static DgImage *
bench_reference (int w, int h)
{
  /* An input for edit timings: a smooth colour field (its content does not change the time). */
  DgImage *img = dg_image_new (w, h, 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      guint8 *p = img->pixels + (gsize) y * img->rowstride + 3 * x;
      p[0] = (guint8) (255 * x / MAX (w - 1, 1));
      p[1] = (guint8) (255 * y / MAX (h - 1, 1));
      p[2] = 128;
    }
  return img;
}

typedef struct {
  DgEngine *engine;
  DgModel *model;
  const char *display; /* the model, for the heading */
  DgJob job;
  DgPrecision precision;
  int steps, runs;
  gboolean synthetic;
} BenchOptions;

/* Each stage's device memory as held (the pools' peak) beside the memory plan's figure. They are
 * equal byte for byte except the VAE stages, whose GroupNorm scratch follows the device's row
 * splits (a few MiB at most, plan.h). */
static void
bench_print_memory (const DgStageTimes *times)
{
  g_autoptr (GString) s = g_string_new (NULL);
  cli_append_padded (s, _ ("device memory, MiB"), 34);
  cli_append_right (s, _ ("held"), 11);
  cli_append_right (s, _ ("planned"), 11);
  cli_append_right (s, _ ("difference"), 11);
  g_string_append_c (s, '\n');
  for (guint i = 0; i < DG_PLAN_N_STAGES; i++) {
    if (!times->held[i])
      continue;
    cli_append_padded (s, dg_plan_stage_name ((DgPlanStage) i), 34);
    g_string_append_printf (s, " %10.1f %10.1f %+10.2f\n", times->held[i] / 1048576.0, times->planned[i] / 1048576.0,
                            ((double) times->held[i] - (double) times->planned[i]) / 1048576.0);
  }
  fputs (s->str, stdout);
}

/* @o's job on @prompt at @w × @h; an edit takes @refs' one reference. */
static DgRequest
bench_request (const BenchOptions *o, const char *prompt, int w, int h, const DgImage *const *refs)
{
  DgRequest req = DG_REQUEST_INIT;
  req.job = o->job;
  req.prompt = prompt;
  req.width = w;
  req.height = h;
  req.steps = o->steps;
  if (o->job == DG_JOB_EDIT) {
    req.images = refs;
    req.n_images = 1;
  }
  return req;
}

/* Runs @o's job at @w × @h o->runs times and prints the last run's stage times, TFLOP/s and memory. */
static gboolean
bench_run (const BenchOptions *o, int w, int h, GError **error)
{
  g_autoptr (DgImage) ref = bench_reference (w, h);
  const DgImage *refs[1] = { ref };
  DgRequest req = bench_request (o, SAMPLE_PROMPT, w, h, refs);
  g_autoptr (CliProgress) progress =
      cli_progress_new (stderr, cli_progress_mode_for_stderr (FALSE), g_get_charset (NULL), dg_stage_name);
  Timeline t = { 0 };
  DgStageTimes vlm_times = { 0 };
  double total = 0;
  for (int run = 0; run < o->runs; run++) {
    t = (Timeline) { .part = -1, .dit_step_open = -1, .progress = progress };
    gint64 t0 = g_get_monotonic_time ();
    /* dg_run_batch_timed gives the VLM's ViT and LLM times separately. */
    const DgRequest *one[1] = { &req };
    g_autoptr (GPtrArray) imgs = dg_run_batch_timed (o->model, one, 1, &vlm_times, timeline_func, &t, NULL, error);
    DgImage *img = imgs ? g_ptr_array_index (imgs, 0) : NULL;
    gint64 t1 = g_get_monotonic_time ();
    cli_progress_end (progress);
    if (!img)
      return FALSE;
    if (t.part >= 0)
      t.seconds[t.part] += (double) (t1 - t.last) / 1e6;
    total = (double) (t1 - t0) / 1e6;
  }

  printf (_ ("Pipeline stages on %s, model %s, %s %d×%d, %d steps, %s, %s weights (run %d of %d):\n"),
          dg_engine_device_name (o->engine), o->display, job_name (o->job), w, h, o->steps,
          o->precision == DG_PRECISION_BF16 ? "bf16" : "f32", cli_weights_name (dg_model_last_run_weights (o->model)),
          o->runs, o->runs);
  /* FLOPs: of the model that ran when it is DeepGen 1.0's architecture or the synthetic one */
  g_autoptr (DgPlanModel) real = dg_plan_model_new ();
  g_autoptr (DgPlanModel) here = dg_model_architecture (o->model);
  gboolean is_real = o->synthetic || dg_plan_model_same_architecture (real, here);
  const DgPlanModel *counted = o->synthetic ? here : real;
  DgPlanRequest pr = DG_PLAN_REQUEST_INIT;
  pr.job = o->job;
  pr.width = w;
  pr.height = h;
  pr.n_refs = o->job == DG_JOB_EDIT ? 1 : 0;
  pr.steps = (guint) o->steps;
  pr.precision = o->precision;
  pr.weights = dg_model_last_run_weights (o->model);
  DgPlan plan;
  gboolean have_plan = dg_plan_compute (counted, &pr, &plan, NULL);
  const double dit_step =
      t.dit_steps > 1 ? (t.seconds[PART_DIT] - t.dit_first) / (t.dit_steps - 1) : t.seconds[PART_DIT];
  const double dit_flop = have_plan ? plan.stage[DG_PLAN_DENOISE].flop / plan.steps : 0;
  struct {
    const char *name;
    double seconds, tflop;
  } rows[] = {
    { N_ ("load weights (all stages)"), t.seconds[PART_LOAD], 0 },
    { N_ ("VLM (ViT + LLM)"), t.seconds[PART_VLM], have_plan ? plan.stage[DG_PLAN_ENCODE].flop / 1e12 : 0 },
    { N_ ("connector"), t.seconds[PART_CONNECTOR], have_plan ? plan.stage[DG_PLAN_BRIDGE].flop / 1e12 : 0 },
    { N_ ("VAE encode"), t.seconds[PART_VAE_ENCODE], have_plan ? plan.stage[DG_PLAN_VAE_ENCODE].flop / 1e12 : 0 },
    { N_ ("DiT, first step"), t.dit_first, dit_flop / 1e12 },
    { N_ ("DiT, one step (mean of the rest)"), t.dit_steps > 1 ? dit_step : 0, dit_flop / 1e12 },
    { N_ ("DiT, all steps"), t.seconds[PART_DIT], have_plan ? plan.stage[DG_PLAN_DENOISE].flop / 1e12 : 0 },
    { N_ ("VAE decode"), t.seconds[PART_VAE_DECODE], have_plan ? plan.stage[DG_PLAN_DECODE].flop / 1e12 : 0 },
  };
  g_autoptr (GString) stages_table = g_string_new (NULL);
  cli_append_padded (stages_table, _ ("stage"), 34);
  cli_append_right (stages_table, _ ("seconds"), 11);
  cli_append_right (stages_table, o->synthetic ? _ ("TFLOP") : _ ("TFLOP (real)"), 15);
  g_string_append_printf (stages_table, "%s\n", is_real ? "   TFLOP/s" : "");
  for (guint i = 0; i < G_N_ELEMENTS (rows); i++) {
    if (i == 3 && o->job != DG_JOB_EDIT)
      continue;
    if (i == 5 && t.dit_steps < 2)
      continue;
    cli_append_padded (stages_table, _ (rows[i].name), 34);
    g_string_append_printf (stages_table, " %10.3f %14.3f", rows[i].seconds, rows[i].tflop);
    if (is_real && rows[i].seconds > 0 && rows[i].tflop > 0)
      g_string_append_printf (stages_table, "   %8.4f", rows[i].tflop / rows[i].seconds); /* CPU devices: GFLOP/s */
    g_string_append_c (stages_table, '\n');
  }
  cli_append_padded (stages_table, _ ("total"), 34);
  g_string_append_printf (stages_table, " %10.3f\n", total);
  fputs (stages_table->str, stdout);
  if (vlm_times.llm_gpu_ms > 0)
    printf (_ ("VLM on the GPU: ViT %.3f s, LLM %.3f s (timestamps of the last run)\n"),
            MAX (vlm_times.vit_gpu_ms, 0) / 1000.0, vlm_times.llm_gpu_ms / 1000.0);
  if (!is_real)
    printf (_ ("(TFLOP: DeepGen 1.0 at this size; the times are of the model given, so no TFLOP/s.)\n"));
  bench_print_memory (&vlm_times);
  if (o->synthetic)
    return TRUE;
  printf ("\n");
  g_autofree char *table = cli_flops_table (real, w, h, 0, (guint) o->steps);
  printf ("%s", table);
  return TRUE;
}


/* Previews are asked for as the panels ask for them, so that their cost is part of the figures. */
static void
bench_preview (const DgImage *rgb, int step, int n_steps, gpointer data)
{
  (void) rgb, (void) step, (void) n_steps, (void) data;
}

/* bench --service: three jobs through the resident service (dg_service.h), as a plug-in's calls
 * come: the first (the model opened unless the service had it open already), Regenerate (the same
 * prompt, the next seed: the conditioning is reused, no VLM or connector) and a new prompt (the
 * VLM and connector run on resident weights). Each row: the call to the first DiT step, the
 * weight bytes uploaded, the stages' seconds as their progress events arrive here, and the
 * service's time making previews per step. */
static gboolean
bench_service (const BenchOptions *o, const DgServiceModel *m, int w, int h, GError **error)
{
  g_autoptr (DgImage) ref = bench_reference (w, h);
  const DgImage *refs[1] = { ref };
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  const char *serve_argv[] = { self ? self : "deepgen", "serve", "--detach", NULL };
  g_autoptr (DgServiceClient) client = dg_service_client_connect (NULL, serve_argv, error);
  if (!client)
    return FALSE;
  dg_service_client_set_preview (client, bench_preview, NULL);
  g_autoptr (CliProgress) progress =
      cli_progress_new (stderr, cli_progress_mode_for_stderr (FALSE), g_get_charset (NULL), dg_stage_name);
  /* TRANSLATORS: the rows of `deepgen bench --service`: the jobs it runs through the service */
  static const struct {
    const char *name;
    guint64 seed;
    const char *prompt;
  } jobs[] = {
    { N_ ("first job"), 1, SAMPLE_PROMPT },
    { N_ ("Regenerate (new seed)"), 2, SAMPLE_PROMPT },
    { N_ ("new prompt"), 1, SAMPLE_PROMPT_2 },
  };
  /* the columns after the job's name and whether the model was open; VAE encode for edits only */
  enum {
    COL_FIRST_STEP,
    COL_UPLOADED,
    COL_LOAD,
    COL_VLM,
    COL_CONNECTOR,
    COL_VAE_ENCODE,
    COL_DIT,
    COL_VAE_DECODE,
    COL_TOTAL,
    COL_PREVIEW,
    N_COLS
  };
  /* TRANSLATORS: column headings of `deepgen bench --service`; s: seconds, MiB: mebibytes */
  static const char *const heads[N_COLS] = { N_ ("to step 1 s"),    N_ ("uploaded MiB"), N_ ("load s"),
                                             N_ ("VLM s"),          N_ ("connector s"),  N_ ("VAE enc. s"),
                                             N_ ("DiT s"),          N_ ("VAE dec. s"),   N_ ("total s"),
                                             N_ ("preview ms/step") };
  int widths[N_COLS];
  g_autoptr (GString) table = g_string_new (NULL);
  cli_append_padded (table, _ ("job"), 24);
  cli_append_right (table, _ ("model"), 13);
  for (guint c = 0; c < N_COLS; c++) {
    widths[c] = MAX (12, (int) cli_text_width (_ (heads[c])) + 2);
    if (c != COL_VAE_ENCODE || o->job == DG_JOB_EDIT)
      cli_append_right (table, _ (heads[c]), widths[c]);
  }
  g_string_append_c (table, '\n');
  g_autofree char *device = NULL;
  DgWeightFormat used = DG_WEIGHTS_RELEASED;
  for (guint i = 0; i < G_N_ELEMENTS (jobs); i++) {
    DgRequest req = bench_request (o, jobs[i].prompt, w, h, refs);
    req.seed = jobs[i].seed;
    Timeline t = { .part = -1, .dit_step_open = -1, .progress = progress };
    DgServiceRunInfo info = { 0 };
    const gint64 t0 = g_get_monotonic_time ();
    g_autoptr (GError) e = NULL;
    g_autoptr (DgImage) img = dg_service_client_run (client, m, &req, timeline_func, &t, &info, NULL, &e);
    if (!img && g_error_matches (e, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) && i == 0) {
      /* the service was leaving (idle) as we came: nothing ran; once more with a new one */
      g_clear_error (&e);
      g_clear_pointer (&client, dg_service_client_free);
      if (!(client = dg_service_client_connect (NULL, serve_argv, error)))
        return FALSE;
      dg_service_client_set_preview (client, bench_preview, NULL);
      t = (Timeline) { .part = -1, .dit_step_open = -1, .progress = progress };
      img = dg_service_client_run (client, m, &req, timeline_func, &t, &info, NULL, &e);
    }
    const gint64 t1 = g_get_monotonic_time ();
    cli_progress_end (progress);
    if (!img) {
      dg_service_run_info_clear (&info);
      g_propagate_error (error, g_steal_pointer (&e));
      return FALSE;
    }
    if (t.part >= 0)
      t.seconds[t.part] += (double) (t1 - t.last) / 1e6;
    /* The VLM is always followed by the connector: a job without BRIDGE reused the conditioning,
     * and its ENCODE reports were the references' VAE encoding. */
    if (!t.bridged) {
      t.seconds[PART_VAE_ENCODE] += t.seconds[PART_VLM];
      t.seconds[PART_VLM] = 0;
    }
    cli_append_padded (table, _ (jobs[i].name), 24);
    cli_append_right (table, info.model_was_open ? _ ("open") : _ ("opened"), 13);
    const double cols[N_COLS] = {
      [COL_FIRST_STEP] = info.first_step_seconds,
      [COL_UPLOADED] = info.uploaded_bytes / 1048576.0,
      [COL_LOAD] = t.seconds[PART_LOAD],
      [COL_VLM] = t.seconds[PART_VLM],
      [COL_CONNECTOR] = t.seconds[PART_CONNECTOR],
      [COL_VAE_ENCODE] = t.seconds[PART_VAE_ENCODE],
      [COL_DIT] = t.seconds[PART_DIT],
      [COL_VAE_DECODE] = t.seconds[PART_VAE_DECODE],
      [COL_TOTAL] = (double) (t1 - t0) / 1e6,
      [COL_PREVIEW] = 1e3 * info.preview_seconds / MAX (t.dit_steps, 1),
    };
    for (guint c = 0; c < N_COLS; c++) {
      if (c == COL_VAE_ENCODE && o->job != DG_JOB_EDIT)
        continue;
      /* nothing uploaded is 0, not a rounded 0.0 */
      g_autofree char *cell = c == COL_UPLOADED && !info.uploaded_bytes ? g_strdup ("0")
                              : c == COL_UPLOADED                       ? g_strdup_printf ("%.1f", cols[c])
                                                                        : g_strdup_printf ("%.3f", cols[c]);
      cli_append_right (table, cell, widths[c]);
    }
    g_string_append_c (table, '\n');
    if (i == 0) {
      device = g_strdup (info.device_name);
      used = info.weights;
    }
    if (i == G_N_ELEMENTS (jobs) - 1 && info.step_seconds > 0)
      g_string_append_printf (table, _ ("Previews: %.3f ms a step in the service, %.3f %% of a DiT step (%.3f s).\n"),
                              1e3 * info.preview_seconds / MAX (t.dit_steps, 1),
                              100.0 * info.preview_seconds / info.step_seconds,
                              info.step_seconds / MAX (t.dit_steps, 1));
    dg_service_run_info_clear (&info);
  }
  printf (_ ("Through the service on %s, model %s, %s %d×%d, %d steps, %s, %s weights:\n"), device ? device : "?",
          o->display, job_name (o->job), w, h, o->steps, o->precision == DG_PRECISION_BF16 ? "bf16" : "f32",
          cli_weights_name (used));
  fputs (table->str, stdout);
  return TRUE;
}


static int
cmd_bench (int argc, char **argv)
{
  if (argc > 1 && g_str_equal (argv[1], "ops")) {
    g_autofree char *filter = NULL;
    int reps = 10;
    gboolean quick = FALSE;
    GOptionEntry entries[] = {
      { "filter", 'f', 0, G_OPTION_ARG_STRING, &filter,
        N_ ("Only cases whose name contains NAME (NAME$: whose name ends with NAME)"), N_ ("NAME") },
      { "reps", 'r', 0, G_OPTION_ARG_INT, &reps, N_ ("Dispatches per measurement (default 10)"), N_ ("N") },
      { "quick", 'q', 0, G_OPTION_ARG_NONE, &quick, N_ ("Smaller token counts, for CPU devices"), NULL },
      { NULL },
    };
    g_autoptr (GOptionContext) ctx = g_option_context_new (NULL);
    g_option_context_set_translation_domain (ctx, GETTEXT_PACKAGE);
    g_autofree char *summary = g_strdup_printf (_ ("%s bench ops — op throughput at DeepGen's real shapes"), prog ());
    g_option_context_set_summary (ctx, summary);
    g_option_context_add_main_entries (ctx, entries, GETTEXT_PACKAGE);
    GError *error = NULL;
    int n = argc - 1;
    char **sub = argv + 1;
    sub[0] = argv[0];
    if (!g_option_context_parse (ctx, &n, &sub, &error) || !cli_check_int (reps, 1, 100000, "--reps", &error))
      return fail (error);
    if (n > 1) {
      g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _ ("unexpected argument '%s'"), sub[1]);
      return fail (error);
    }
    if (!deepgen_bench_ops (filter, reps, quick, &error))
      return fail (error);
    return CLI_EXIT_OK;
  }
  if (argc > 1 && g_str_equal (argv[1], "flops")) {
    argv[1] = argv[0];
    return cmd_bench_flops (argc - 1, argv + 1);
  }

  g_autofree char *model = NULL, *size = NULL, *jobname = NULL, *precision = NULL, *device = NULL, *weights = NULL;
  int steps = 4, runs = 0, layers = 0;
  gboolean synthetic = FALSE, service = FALSE;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, N_ ("The model folder (the tiny test model works)"), N_ ("DIR") },
    { "synthetic", 0, 0, G_OPTION_ARG_NONE, &synthetic,
      N_ ("DeepGen 1.0 with random weights made in memory, no model folder (default: generate and edit at "
          "512x512 and 1024x1024)"),
      NULL },
    { "layers", 0, 0, G_OPTION_ARG_INT, &layers,
      N_ ("With --synthetic: the real widths with N layers per component (default: the full depth)"), N_ ("N") },
    { "job", 0, 0, G_OPTION_ARG_STRING, &jobname, N_ ("generate (default) or edit"), N_ ("JOB") },
    { "size", 's', 0, G_OPTION_ARG_STRING, &size, N_ ("Image size (default 512x512)"), N_ ("WxH") },
    { "steps", 0, 0, G_OPTION_ARG_INT, &steps, N_ ("Denoising steps per run (default 4)"), N_ ("N") },
    { "runs", 0, 0, G_OPTION_ARG_INT, &runs, N_ ("Runs; the last is reported (default 2: one warm-up)"), N_ ("N") },
    { "service", 0, 0, G_OPTION_ARG_NONE, &service,
      N_ ("Through the resident service (started when none runs): a first job, Regenerate and a new prompt, "
          "each with the time to the first DiT step and the weight bytes uploaded"),
      NULL },
    { "precision", 0, 0, G_OPTION_ARG_STRING, &precision, N_ ("bf16 (default) or f32"), N_ ("NAME") },
    { "weights", 0, 0, G_OPTION_ARG_STRING, &weights, N_ ("released (default), q8 or q4"), N_ ("FORMAT") },
    { "device", 0, 0, G_OPTION_ARG_STRING, &device, N_ ("Vulkan device by index or part of its name"), N_ ("DEV") },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (NULL);
  g_option_context_set_translation_domain (ctx, GETTEXT_PACKAGE);
  g_autofree char *summary = g_strdup_printf (_ ("%s bench [ops | flops] — time each stage of the pipeline"), prog ());
  g_option_context_set_summary (ctx, summary);
  g_autofree char *desc = g_strdup_printf (
      _ ("Runs the whole pipeline on the model given and prints the wall time of each stage (VLM,\n"
         "connector, one DiT step, VAE), then the FLOPs of the real DeepGen 1.0 at that size.\n\n"
         "Examples:\n  %s bench --model tests/data/tiny-deepgen --size 128x128\n  %s bench --steps 10\n"
         "  %s bench ops --filter attention\n  %s bench flops --size 1024x1024\n"),
      prog (), prog (), prog (), prog ());
  g_autofree char *desc_synthetic = g_strdup_printf (
      _ ("With --synthetic, the real DeepGen 1.0 (or its widths with --layers N) runs on random weights\n"
         "made in memory, and each stage's device memory is printed beside the memory plan's figure:\n"
         "  %s bench --synthetic --steps 2\n  %s bench --synthetic --size 256x256 --layers 1 --weights q8\n"),
      prog (), prog ());
  g_autofree char *desc_service = g_strdup_printf (
      _ ("With --service, the jobs run in the resident service (`%s serve`), as the plug-ins' do: a first\n"
         "job, Regenerate (the same prompt, a new seed) and a new prompt, one size and job:\n"
         "  %s bench --synthetic --layers 1 --size 256x256 --steps 2 --service\n"),
      prog (), prog ());
  g_autofree char *description = g_strconcat (desc, "\n", desc_synthetic, "\n", desc_service, NULL);
  g_option_context_set_description (ctx, description);
  g_option_context_add_main_entries (ctx, entries, GETTEXT_PACKAGE);
  GError *error = NULL;
  BenchOptions o = { .job = DG_JOB_GENERATE, .precision = DG_PRECISION_BF16 };
  DgWeightFormat wfmt = DG_WEIGHTS_RELEASED;
  int w = 512, h = 512;
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || (size && !cli_parse_size (size, &w, &h, &error)) ||
      (jobname && !cli_parse_job (jobname, &o.job, &error)) ||
      (precision && !cli_parse_precision (precision, &o.precision, &error)) ||
      (weights && !cli_parse_weights (weights, &wfmt, &error)) || !cli_check_int (steps, 1, 1000, "--steps", &error) ||
      (runs && !cli_check_int (runs, 1, 100, "--runs", &error)) || !cli_check_int (layers, 0, 256, "--layers", &error))
    return fail (error);
  if (service && runs) {
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 _ ("--runs does not apply with --service (it runs three jobs: first, Regenerate, new prompt)"));
    return fail (error);
  }
  if (!runs)
    runs = 2;
  if (argc > 1) {
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 _ ("unknown bench '%s': use '%s bench', '%s bench ops' or '%s bench flops'"), argv[1], prog (),
                 prog (), prog ());
    return fail (error);
  }
  if (o.job == DG_JOB_INPAINT) {
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _ ("--job: bench runs generate or edit"));
    return fail (error);
  }
  if (synthetic && model) {
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _ ("--synthetic and --model exclude each other"));
    return fail (error);
  }
  if (layers && !synthetic) {
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _ ("--layers needs --synthetic"));
    return fail (error);
  }
  g_autofree char *dir = synthetic ? NULL : model_path (model);
  g_autofree char *missing = synthetic ? NULL : check_model (dir);
  if (missing) {
    fprintf (stderr, "%s: %s", prog (), missing);
    return CLI_EXIT_FAILURE;
  }

  g_autofree char *display =
      synthetic ? (layers ? g_strdup_printf (_ ("synthetic DeepGen 1.0, %d layers per component"), layers)
                          : g_strdup (_ ("synthetic DeepGen 1.0, full depth")))
                : g_filename_display_name (dir);
  o.display = display;
  if (service) {
    /* the service opens the model: nothing is opened here */
    o.steps = steps;
    o.synthetic = synthetic;
    const DgServiceModel m = { dir, device, o.precision, wfmt, synthetic, (guint) layers };
    if (!bench_service (&o, &m, (w + 31) / 32 * 32, (h + 31) / 32 * 32, &error))
      return fail (error);
    return CLI_EXIT_OK;
  }
  DgEngineOptions eo = { device };
  DgLoadOptions lo = DG_LOAD_OPTIONS_INIT;
  lo.precision = o.precision;
  lo.weights = wfmt;
  g_autoptr (DgEngine) engine = dg_engine_new (&eo, &error);
  if (!engine)
    return fail (error);
  g_autoptr (DgModel) dgm = synthetic ? dg_model_open_synthetic (engine, (guint) layers, 0, &lo, &error)
                                      : dg_model_open (engine, dir, &lo, &error);
  if (!dgm)
    return fail (error);
  o.engine = engine;
  o.model = dgm;
  o.steps = steps;
  o.runs = runs;
  o.synthetic = synthetic;
  /* --synthetic without --job or --size: generate and edit at both sizes of the issue's table */
  const int sizes[][2] = { { 512, 512 }, { 1024, 1024 } };
  const DgJob jobs[] = { DG_JOB_GENERATE, DG_JOB_EDIT };
  const guint n_sizes = synthetic && !size ? G_N_ELEMENTS (sizes) : 1;
  const guint n_jobs = synthetic && !jobname ? G_N_ELEMENTS (jobs) : 1;
  for (guint si = 0; si < n_sizes; si++)
    for (guint ji = 0; ji < n_jobs; ji++) {
      if (n_sizes > 1) {
        w = sizes[si][0];
        h = sizes[si][1];
      }
      if (n_jobs > 1)
        o.job = jobs[ji];
      if (si + ji > 0)
        printf ("\n");
      /* edit references are multiples of 32; keep generate comparable */
      if (!bench_run (&o, (w + 31) / 32 * 32, (h + 31) / 32 * 32, &error))
        return fail (error);
      fflush (stdout); /* each table as soon as it is measured: the next run may take long */
    }
  return CLI_EXIT_OK;
}

/* ---- convert ------------------------------------------------------------------------------- */

typedef struct {
  gboolean tty;
  char *what; /* the file or folder being written */
} ConvertProgress;

/* One line per output file or folder; on a terminal it counts up in place. */
static void
convert_progress (const char *what, guint64 done, guint64 total, gpointer data)
{
  ConvertProgress *p = data;
  const gboolean start = g_strcmp0 (p->what, what) != 0;
  if (start) {
    g_free (p->what);
    p->what = g_strdup (what);
  }
  const int pct = total ? (int) (done * 100 / total) : 100;
  g_autofree char *size = g_format_size (total);
  if (p->tty)
    fprintf (stderr, "\r  %-28s %10s %3d%%%s", what, size, pct, done >= total ? "\n" : "");
  else if (done >= total)
    fprintf (stderr, "  %-28s %10s\n", what, size);
  fflush (stderr);
}

static int
cmd_convert (int argc, char **argv)
{
  g_autofree char *model = NULL, *output = NULL, *weights = NULL;
  gboolean quiet = FALSE;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, N_ ("The released DeepGen-1.0-diffusers folder to convert"),
      N_ ("SRC") },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
      N_ ("The folder to write (must not exist or be empty; nothing is overwritten)"), N_ ("DIR") },
    { "weights", 0, 0, G_OPTION_ARG_STRING, &weights, N_ ("The weight format to write: q8 (the default and only one)"),
      N_ ("FORMAT") },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, N_ ("No progress output"), NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (NULL);
  g_option_context_set_translation_domain (ctx, GETTEXT_PACKAGE);
  g_autofree char *summary =
      g_strdup_printf (_ ("%s convert — a copy of the model folder with 8-bit weights\n\n"
                          "Writes a folder with the layout of the released one in which the language model, the\n"
                          "connector and the DiT are each one model.gguf whose Linear weights are already 8-bit\n"
                          "(q8_0, as --weights q8 quantizes them at every load); the VAE, the configs and the\n"
                          "tokenizer are copied as they are. The result is about half the size, loads without\n"
                          "quantizing, and gives the same images as --weights q8 on the released folder. Use it\n"
                          "like the released folder (--model, DEEPGEN_MODEL, the GIMP dialog, deepgen-studio); it\n"
                          "always runs with 8-bit weights."),
                       prog ());
  g_option_context_set_summary (ctx, summary);
  g_autofree char *desc = g_strdup_printf (
      _ ("Examples:\n  %s convert -o ~/.local/share/deepgen/DeepGen-1.0-q8\n"
         "  %s convert --model ~/models/DeepGen-1.0-diffusers -o ~/models/DeepGen-1.0-q8\n"
         "  %s generate --model ~/models/DeepGen-1.0-q8 --prompt \"a lighthouse\" -o out.png\n\n"
         "The folder is written under a temporary name beside DIR and renamed when complete, so an\n"
         "interrupted conversion leaves no DIR behind (remove the hidden .DIR.partial-* folder).\n\n%s\n%s"),
      prog (), prog (), prog (), model_text (), exit_codes_text ());
  g_option_context_set_description (ctx, desc);
  g_option_context_add_main_entries (ctx, entries, GETTEXT_PACKAGE);
  GError *error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return fail (error);
  DgWeightFormat wfmt = DG_WEIGHTS_Q8_0;
  if (argc > 1)
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _ ("unexpected argument '%s'"), argv[1]);
  else if (!output)
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 _ ("no output folder: say where to write the converted model with -o DIR"));
  else if (weights && cli_parse_weights (weights, &wfmt, &error) && wfmt != DG_WEIGHTS_Q8_0)
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 _ ("--weights %s: convert writes 8-bit weights only (--weights q8)"), weights);
  if (!error && g_file_test (output, G_FILE_TEST_EXISTS)) {
    g_autoptr (GDir) d = g_file_test (output, G_FILE_TEST_IS_DIR) ? g_dir_open (output, 0, NULL) : NULL;
    if (!d || g_dir_read_name (d) != NULL) {
      g_autofree char *display = g_filename_display_name (output);
      g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _ ("%s exists and is not an empty folder; choose a new folder (nothing is overwritten)"), display);
    }
  }
  if (error)
    return fail (error);

  g_autofree char *src = model_path (model);
  g_autofree char *missing = check_model (src);
  if (missing) {
    fprintf (stderr, "%s", missing);
    return CLI_EXIT_FAILURE;
  }
  g_autofree char *src_display = g_filename_display_name (src);
  g_autofree char *dst_display = g_filename_display_name (output);
  if (!quiet)
    fprintf (stderr, _ ("Converting %s into %s (8-bit weights):\n"), src_display, dst_display);
  ConvertProgress progress = { isatty (fileno (stderr)), NULL };
  DgConvertOptions co = DG_CONVERT_OPTIONS_INIT;
  co.weights = wfmt;
  co.progress = quiet ? NULL : convert_progress;
  co.user_data = &progress;
  gboolean ok = dg_convert_model (src, output, &co, &error);
  g_free (progress.what);
  if (!ok)
    return fail (error);
  if (!quiet)
    fprintf (stderr, _ ("Done. Use it with --model %s (or DEEPGEN_MODEL, or the model folder of the GIMP dialog).\n"),
             dst_display);
  return CLI_EXIT_OK;
}

/* ---- serve --------------------------------------------------------------------------------- */

/* --detach: the parent returns once the service listens (so the client that started it can
 * connect at once), the child runs on in its own session with its messages in service.log. */
static void
serve_ready (gpointer data)
{
  int *fd = data;
  if (*fd >= 0) {
    (void) !write (*fd, "R", 1);
    close (*fd);
    *fd = -1;
  }
}

static int
cmd_serve (int argc, char **argv)
{
  gboolean detach = FALSE;
  int idle = DG_SERVICE_DEFAULT_IDLE_EXIT;
  GOptionEntry entries[] = {
    { "idle-exit", 0, 0, G_OPTION_ARG_INT, &idle,
      N_ ("Exit after this many seconds without clients or jobs (default 600; 0 = never)"), N_ ("SECONDS") },
    { "detach", 0, 0, G_OPTION_ARG_NONE, &detach, N_ ("Run in the background; return once the service accepts clients"),
      NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (NULL);
  g_option_context_set_translation_domain (ctx, GETTEXT_PACKAGE);
  g_autofree char *socket_path = dg_service_socket_path ();
  g_autofree char *summary = g_strdup_printf (
      _ ("%s serve — the resident DeepGen service\n\n"
         "Keeps the GPU and the open model between jobs for generate, edit and inpaint (which start it\n"
         "when it is not running, unless --no-service) and runs their jobs one at a time, in order.\n"
         "Only your user can reach it: the socket is %s."),
      prog (), socket_path);
  g_option_context_set_summary (ctx, summary);
  g_option_context_add_main_entries (ctx, entries, GETTEXT_PACKAGE);
  GError *error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return fail (error);
  if (argc > 1) {
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _ ("unexpected argument '%s'"), argv[1]);
    return fail (error);
  }
  if (!cli_check_int (idle, 0, 1000000, "--idle-exit", &error))
    return fail (error);
  int ready_fd = -1;
  if (detach) {
    int p[2];
    if (pipe (p) != 0) {
      print_error ("pipe: %s", g_strerror (errno));
      return CLI_EXIT_FAILURE;
    }
    pid_t pid = fork ();
    if (pid < 0) {
      print_error ("fork: %s", g_strerror (errno));
      return CLI_EXIT_FAILURE;
    }
    if (pid > 0) {
      close (p[1]);
      char c = 0;
      gssize n;
      while ((n = read (p[0], &c, 1)) < 0 && errno == EINTR);
      /* No "ready": the child failed and said why in its log; another service running is fine. */
      return n == 1 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
    }
    close (p[0]);
    ready_fd = p[1];
    setsid ();
    g_autofree char *dir = g_path_get_dirname (socket_path);
    g_mkdir_with_parents (dir, 0700);
    g_autofree char *log = g_build_filename (dir, "service.log", NULL);
    int null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
    int log_fd = open (log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (null_fd >= 0) {
      dup2 (null_fd, STDIN_FILENO);
      dup2 (null_fd, STDOUT_FILENO);
      dup2 (log_fd >= 0 ? log_fd : null_fd, STDERR_FILENO);
    }
  }
  DgServeOptions so = DG_SERVE_OPTIONS_INIT;
  so.idle_exit = (guint) idle;
  so.ready = serve_ready;
  so.user_data = &ready_fd;
  gboolean ok = dg_service_serve (&so, &error);
  if (!ok && ready_fd >= 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
    serve_ready (&ready_fd); /* the client will find that one */
  if (!ok)
    return fail (error);
  return CLI_EXIT_OK;
}

/* ---- main ---------------------------------------------------------------------------------- */

int
main (int argc, char **argv)
{
  cli_i18n_init ();
  if (argc < 2) {
    print_overview (stderr);
    return CLI_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  char *help_args[] = { argv[0], NULL, (char *) "--help", NULL };
  if (g_str_equal (cmd, "--help") || g_str_equal (cmd, "-h") || g_str_equal (cmd, "help")) {
    if (argc > 2 && g_str_equal (cmd, "help")) {
      /* "deepgen help generate" = "deepgen generate --help" */
      help_args[1] = argv[2];
      argv = help_args;
      argc = 3;
      cmd = argv[1];
    } else {
      print_overview (stdout);
      return CLI_EXIT_OK;
    }
  }
  if (g_str_equal (cmd, "--version") || g_str_equal (cmd, "-V")) {
    printf ("deepgen %s\n", DEEPGEN_VERSION);
    return CLI_EXIT_OK;
  }
  /* The subcommand's parser sees "deepgen COMMAND" as its program name. */
  g_autofree char *name = g_strdup_printf ("%s %s", argv[0], cmd);
  g_autofree char *prgname = g_strdup_printf ("deepgen %s", cmd);
  g_set_prgname (prgname);
  char **sub = argv + 1;
  int n = argc - 1;
  sub[0] = name;
  if (g_str_equal (cmd, "generate"))
    return cmd_job (DG_JOB_GENERATE, FALSE, n, sub);
  if (g_str_equal (cmd, "edit"))
    return cmd_job (DG_JOB_EDIT, FALSE, n, sub);
  if (g_str_equal (cmd, "inpaint"))
    return cmd_job (DG_JOB_INPAINT, FALSE, n, sub);
  if (g_str_equal (cmd, "expand"))
    return cmd_job (DG_JOB_INPAINT, TRUE, n, sub);
  if (g_str_equal (cmd, "describe"))
    return cli_cmd_describe (n, sub);
  if (g_str_equal (cmd, "info"))
    return cmd_info (n, sub);
  if (g_str_equal (cmd, "bench"))
    return cmd_bench (n, sub);
  if (g_str_equal (cmd, "convert"))
    return cmd_convert (n, sub);
  if (g_str_equal (cmd, "serve"))
    return cmd_serve (n, sub);
#ifdef DEEPGEN_HAVE_DOWNLOAD
  if (g_str_equal (cmd, "download"))
    return cli_cmd_download (n, sub);
#endif
  fprintf (stderr, _ ("%s: unknown command '%s'. Run '%s --help' for the commands.\n"), prog (), cmd, prog ());
  return CLI_EXIT_USAGE;
}
