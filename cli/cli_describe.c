/* `deepgen describe IMAGE`: the VLM writes a caption of an image (dg_describe, MODEL.md §13).
 * The caption goes to stdout alone (for scripts); progress and messages to stderr. The run is in
 * a worker thread while the main loop waits for Ctrl-C, which cancels at the next token. */
#include "cli_describe.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <glib-unix.h>

#include "cli_args.h"
#include "cli_i18n.h"
#include "deepgen.h"
#include "image_io.h"
#include "progress.h"

typedef struct {
  /* in */
  const char *model_dir, *device, *instruction;
  DgLoadOptions load;
  const DgImage *image;
  int max_tokens;
  CliProgress *progress;
  /* state */
  GCancellable *cancel;
  GMainLoop *loop;
  /* out */
  char *caption;
  char *device_name;
  gint64 t_start, t_end;
  GError *error;
} Describe;

static gboolean
done (gpointer data)
{
  g_main_loop_quit (((Describe *) data)->loop);
  return G_SOURCE_REMOVE;
}

static gpointer
describe_thread (gpointer data)
{
  Describe *d = data;
  DgEngineOptions eo = { d->device };
  g_autoptr (DgEngine) engine = dg_engine_new (&eo, &d->error);
  g_autoptr (DgModel) model = engine ? dg_model_open (engine, d->model_dir, &d->load, &d->error) : NULL;
  if (engine)
    d->device_name = g_strdup (dg_engine_device_name (engine));
  if (model) {
    d->t_start = g_get_monotonic_time ();
    d->caption = dg_describe (model, d->image, d->instruction, d->max_tokens, cli_progress_func, d->progress, d->cancel,
                              &d->error);
    d->t_end = g_get_monotonic_time ();
  }
  cli_progress_end (d->progress);
  g_idle_add (done, d);
  return NULL;
}

static gboolean
on_signal (gpointer data)
{
  Describe *d = data;
  g_cancellable_cancel (d->cancel);
  cli_progress_message (d->progress, _ ("Cancelling at the next token…"));
  return G_SOURCE_CONTINUE;
}

/* dg_describe reports its tokens as DG_STAGE_ENCODE steps. */
static const char *
stage_name (DgStage stage)
{
  return stage == DG_STAGE_ENCODE ? _ ("Writing the caption") : dg_stage_name (stage);
}

static int
fail (GError *error)
{
  int code = error->domain == G_OPTION_ERROR                                  ? CLI_EXIT_USAGE
             : error->domain == DG_ERROR && error->code == DG_ERROR_CANCELLED ? CLI_EXIT_CANCELLED
                                                                              : CLI_EXIT_FAILURE;
  if (code == CLI_EXIT_USAGE)
    fprintf (stderr, _ ("%s: %s\nRun '%s --help' for the options.\n"), "deepgen", error->message, g_get_prgname ());
  else if (code == CLI_EXIT_CANCELLED)
    fprintf (stderr, _ ("%s: cancelled.\n"), "deepgen");
  else
    fprintf (stderr, "deepgen: %s\n", error->message);
  g_error_free (error);
  return code;
}

int
cli_cmd_describe (int argc, char **argv)
{
  g_autofree char *model = NULL, *device = NULL, *instruction_raw = NULL, *precision = NULL, *weights = NULL;
  int max_tokens = 0;
  gboolean quiet = FALSE;
  GOptionEntry entries[] = {
    /* raw bytes, as --prompt: checked and converted by cli_text_to_utf8 */
    { "instruction", 0, 0, G_OPTION_ARG_FILENAME, &instruction_raw,
      N_ ("What to ask about the image (default: \"Describe this image in one sentence.\")"), N_ ("TEXT") },
    { "max-tokens", 0, 0, G_OPTION_ARG_INT, &max_tokens, N_ ("Write at most N tokens (default 77)"), N_ ("N") },
    { "precision", 0, 0, G_OPTION_ARG_STRING, &precision, N_ ("bf16 (default, as the reference) or f32"), N_ ("NAME") },
    { "weights", 0, 0, G_OPTION_ARG_STRING, &weights, N_ ("released (default), q8, q4 or auto"), N_ ("FORMAT") },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, N_ ("The DeepGen-1.0-diffusers folder"), N_ ("DIR") },
    { "device", 0, 0, G_OPTION_ARG_STRING, &device, N_ ("Vulkan device by index or part of its name"), N_ ("DEV") },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, N_ ("No progress output"), NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (_ ("IMAGE"));
  g_option_context_set_translation_domain (ctx, GETTEXT_PACKAGE);
  g_option_context_set_summary (ctx, _ ("Writes a caption of IMAGE with DeepGen's vision-language model (the one that "
                                        "reads\nprompts), on stdout. A starting point for an edit instruction."));
  g_autofree char *desc =
      g_strdup_printf (_ ("Examples:\n  %s photo.jpg\n  %s photo.jpg --instruction \"What is in the background?\"\n"),
                       g_get_prgname (), g_get_prgname ());
  g_option_context_set_description (ctx, desc);
  g_option_context_add_main_entries (ctx, entries, GETTEXT_PACKAGE);
  GError *error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return fail (error);
  Describe d = { 0 };
  d.load = (DgLoadOptions) DG_LOAD_OPTIONS_INIT;
  g_autofree char *instruction = NULL;
  if (argc < 2)
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _ ("no image: say which image to describe"));
  else if (argc > 2)
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _ ("unexpected argument '%s'"), argv[2]);
  else if (max_tokens < 0 || max_tokens > 4096)
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _ ("--max-tokens must be between 1 and 4096"));
  if (!error && precision)
    cli_parse_precision (precision, &d.load.precision, &error);
  if (!error && weights)
    cli_parse_weights (weights, &d.load.weights, &error);
  if (!error && instruction_raw)
    instruction = cli_text_to_utf8 (instruction_raw, "--instruction", &error);
  if (error)
    return fail (error);

  g_autofree char *dir = model ? g_strdup (model) : dg_model_default_path ();
  g_autofree char *missing = dg_model_folder_missing (dir);
  if (missing) {
    g_autofree char *display = g_filename_display_name (dir);
    g_strdelimit (g_strchomp (missing), "\n", ',');
    fprintf (stderr,
             _ ("deepgen: the model folder %s is missing or incomplete (%s); get it with 'deepgen download' "
                "or point --model at it.\n"),
             display, missing);
    return CLI_EXIT_FAILURE;
  }
  g_autoptr (DgImage) image = cli_image_load (argv[1], &error);
  if (!image)
    return fail (error);

  g_autoptr (CliProgress) progress =
      cli_progress_new (stderr, cli_progress_mode_for_stderr (quiet), g_get_charset (NULL), stage_name);
  d.model_dir = dir;
  d.device = device;
  d.instruction = instruction;
  d.image = image;
  d.max_tokens = max_tokens;
  d.progress = progress;
  d.cancel = g_cancellable_new ();
  d.loop = g_main_loop_new (NULL, FALSE);
  guint sources[2] = { g_unix_signal_add (SIGINT, on_signal, &d), g_unix_signal_add (SIGTERM, on_signal, &d) };
  GThread *t = g_thread_new ("deepgen-describe", describe_thread, &d);
  g_main_loop_run (d.loop);
  g_thread_join (t);
  for (guint i = 0; i < G_N_ELEMENTS (sources); i++) g_source_remove (sources[i]);
  g_main_loop_unref (d.loop);
  g_object_unref (d.cancel);
  g_autofree char *device_name = d.device_name;
  g_autofree char *caption = d.caption;
  if (d.error)
    return fail (d.error);
  printf ("%s\n", caption);
  if (!quiet) {
    g_autofree char *took = cli_format_duration ((double) (d.t_end - d.t_start) / 1e6);
    fprintf (stderr, _ ("Described %s in %s on %s.\n"), argv[1], took, device_name ? device_name : "?");
  }
  return CLI_EXIT_OK;
}
