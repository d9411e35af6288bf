/* `deepgen download`: the model folder from the Hugging Face Hub (model/download/dg_download.h),
 * then checked as dg_model_open checks it, and with --weights q8 converted (dg_convert_model, the
 * code of `deepgen convert`). Only the public headers of model/: deepgen.h, dg_download.h. */
#include "cli_download.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gstdio.h>

#include "cli_args.h"
#include "cli_i18n.h"
#include "deepgen.h"
#include "dg_download.h"

static void print_error (const char *fmt, ...) G_GNUC_PRINTF (1, 2);

static void
print_error (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  fprintf (stderr, "deepgen: %s\n", msg);
}

typedef struct {
  /* in */
  char *dir;
  DgDownloadOptions options;
  gboolean tty, quiet;
  /* state */
  GCancellable *cancel;
  GMainLoop *loop;
  guint interrupts;
  int last_tenth;
  gboolean line_open;
  /* out */
  gboolean ok;
  DgDownloadResult result;
  GError *error;
} Download;

static void
on_progress (const DgDownloadProgress *p, gpointer data)
{
  Download *d = data;
  if (d->quiet || p->phase == DG_DOWNLOAD_PHASE_LISTING)
    return;
  g_autofree char *text = dg_download_progress_text (p);
  if (d->tty) {
    fputs ("\r\033[K", stderr);
    /* TRANSLATORS: progress line: the sizes and speed, then files done of all */
    fprintf (stderr, _ ("  %s (%u of %u files)"), text, p->files_done, p->n_files);
    d->line_open = TRUE;
    if (p->phase == DG_DOWNLOAD_PHASE_DONE) {
      fputc ('\n', stderr);
      d->line_open = FALSE;
    }
  } else {
    /* logs: a line at every tenth, and at the end */
    const int tenth = p->total_bytes ? (int) (p->done_bytes * 10 / p->total_bytes) : 0;
    if (tenth > d->last_tenth || p->phase == DG_DOWNLOAD_PHASE_DONE) {
      fprintf (stderr, _ ("  %s (%u of %u files)"), text, p->files_done, p->n_files);
      fputc ('\n', stderr);
      d->last_tenth = tenth;
    }
  }
  fflush (stderr);
}

static gboolean
done_on_main (gpointer data)
{
  g_main_loop_quit (((Download *) data)->loop);
  return G_SOURCE_REMOVE;
}

static gpointer
download_thread (gpointer data)
{
  Download *d = data;
  d->ok = dg_download_model (d->dir, &d->options, d->cancel, &d->result, &d->error);
  g_idle_add (done_on_main, d);
  return NULL;
}

static gboolean
on_signal (gpointer data)
{
  Download *d = data;
  if (d->interrupts++ == 0) {
    g_cancellable_cancel (d->cancel);
    return G_SOURCE_CONTINUE;
  }
  /* a second Ctrl-C: at once; the .part files are complete up to what was written */
  fprintf (stderr, _ ("\ndeepgen: stopped; run the same command again to continue the download.\n"));
  _exit (CLI_EXIT_CANCELLED);
}

/* Removes @path and everything under it (no symbolic link is followed). */
static gboolean
remove_tree (const char *path, GError **error)
{
  GStatBuf st;
  if (g_lstat (path, &st) == 0 && S_ISDIR (st.st_mode)) {
    GDir *dir = g_dir_open (path, 0, error);
    if (!dir)
      return FALSE;
    const char *name;
    gboolean ok = TRUE;
    while (ok && (name = g_dir_read_name (dir)) != NULL) {
      g_autofree char *sub = g_build_filename (path, name, NULL);
      ok = remove_tree (sub, error);
    }
    g_dir_close (dir);
    if (!ok)
      return FALSE;
    if (g_rmdir (path) == 0)
      return TRUE;
  } else if (g_unlink (path) == 0) {
    return TRUE;
  }
  const int err = errno;
  g_autofree char *display = g_filename_display_name (path);
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (err), _ ("Cannot remove %s: %s"), display,
               g_strerror (err));
  return FALSE;
}

/* The folder as dg_model_open sees it: complete, and every config, the tokenizer and every
 * weight header valid. Without a Vulkan device only the first part can be checked. */
static gboolean
check_folder (const char *dir, gboolean quiet, GError **error)
{
  g_autofree char *missing = dg_model_folder_missing (dir);
  if (missing) {
    g_autofree char *list = g_strdelimit (g_strchomp (g_strdup (missing)), "\n", ',');
    g_set_error (error, DG_ERROR, DG_ERROR_MISSING,
                 _ ("The downloaded repository is not a complete DeepGen model folder; missing: %s. Is the "
                    "repository (--repo) the right one?"),
                 list);
    return FALSE;
  }
  GError *local = NULL;
  g_autoptr (DgEngine) engine = dg_engine_new (NULL, &local);
  if (!engine) {
    if (!quiet)
      fprintf (stderr, _ ("Every file matches its checksum; the model was not opened (%s).\n"), local->message);
    g_error_free (local);
    return TRUE;
  }
  g_autoptr (DgModel) model = dg_model_open (engine, dir, NULL, error);
  return model != NULL;
}

static void
convert_progress (const char *what, guint64 done, guint64 total, gpointer data)
{
  if (done >= total) {
    g_autofree char *size = g_format_size (total);
    fprintf (stderr, "  %-28s %10s\n", what, size);
  }
}

int
cli_cmd_download (int argc, char **argv)
{
  g_autofree char *model = NULL, *revision = NULL, *weights = NULL, *repo = NULL;
  gboolean keep = FALSE, quiet = FALSE;
  int jobs = 0;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model,
      N_ ("The folder to download into (created when missing; an interrupted download there is continued)"),
      N_ ("DIR") },
    { "revision", 0, 0, G_OPTION_ARG_STRING, &revision,
      N_ ("A branch, tag or commit of the repository (default: main)"), N_ ("REV") },
    { "weights", 0, 0, G_OPTION_ARG_STRING, &weights,
      N_ ("q8: convert to 8-bit weights after the download (about 8.3 GB instead of 14.4); released: keep them "
          "as they are (the default)"),
      N_ ("FORMAT") },
    { "keep-original", 0, 0, G_OPTION_ARG_NONE, &keep,
      N_ ("With --weights q8: keep the released folder and write the 8-bit one beside it (DIR-q8)"), NULL },
    { "repo", 0, 0, G_OPTION_ARG_STRING, &repo, N_ ("The repository (default: deepgenteam/DeepGen-1.0-diffusers)"),
      N_ ("OWNER/NAME") },
    { "jobs", 'j', 0, G_OPTION_ARG_INT, &jobs, N_ ("Files fetched at once (default 4)"), N_ ("N") },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, N_ ("No progress output"), NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (NULL);
  g_option_context_set_translation_domain (ctx, GETTEXT_PACKAGE);
  g_option_context_set_summary (
      ctx, _ ("deepgen download — the DeepGen 1.0 model from Hugging Face (about 14.4 GB)\n\n"
              "Fetches every file of the repository into the model folder, a few at a time. An interrupted\n"
              "download (Ctrl-C, a lost connection, a full disk) continues where it stopped when the same\n"
              "command runs again. Every file is checked against the repository's SHA-256 (or git hash)\n"
              "before it gets its name, so the folder never holds a damaged file; at the end the folder\n"
              "is opened as the other commands open it."));
  g_option_context_set_description (
      ctx, _ ("Examples:\n  deepgen download\n  deepgen download --model ~/models/DeepGen-1.0-diffusers\n"
              "  deepgen download --weights q8\n\n"
              "Environment: HF_ENDPOINT (a mirror of the Hub), HF_TOKEN or the token file\n"
              "~/.cache/huggingface/token (HF_HOME) for gated or private repositories; the proxy comes from\n"
              "http_proxy / https_proxy or the desktop's settings.\n\n"
              "Exit status: 0 the model is in place; 1 the download failed (the message says why); 2 usage\n"
              "error; 130 stopped (Ctrl-C): run the same command again to continue.\n"));
  g_option_context_add_main_entries (ctx, entries, GETTEXT_PACKAGE);
  GError *error = NULL;
  DgWeightFormat wfmt = DG_WEIGHTS_RELEASED;
  if (g_option_context_parse (ctx, &argc, &argv, &error) && (!weights || cli_parse_weights (weights, &wfmt, &error))) {
    if (argc > 1)
      g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _ ("unexpected argument '%s'"), argv[1]);
    else if (wfmt != DG_WEIGHTS_RELEASED && wfmt != DG_WEIGHTS_Q8_0)
      g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _ ("--weights %s: download takes q8 or released"),
                   weights);
    else if (keep && wfmt != DG_WEIGHTS_Q8_0)
      g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _ ("--keep-original goes with --weights q8"));
    else if (jobs < 0 || jobs > 16)
      g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _ ("--jobs must be between 1 and 16"));
  }
  if (error) {
    fprintf (stderr, _ ("%s: %s\nRun '%s --help' for the options.\n"), "deepgen", error->message, g_get_prgname ());
    g_error_free (error);
    return CLI_EXIT_USAGE;
  }

  Download d = { 0 };
  d.dir = model ? g_strdup (model) : dg_model_default_path ();
  g_autofree char *display = g_filename_display_name (d.dir);
  /* a folder converted earlier by this command: nothing to download into it */
  if (!dg_model_folder_missing (d.dir) && dg_model_folder_weights (d.dir) == DG_WEIGHTS_Q8_0) {
    if (!quiet)
      printf (_ ("%s already holds the model with 8-bit weights.\n"), display);
    g_free (d.dir);
    return CLI_EXIT_OK;
  }
  d.options = (DgDownloadOptions) DG_DOWNLOAD_OPTIONS_INIT;
  d.options.revision = revision;
  d.options.repo = repo;
  d.options.parallel = (guint) jobs;
  d.options.progress = on_progress;
  d.options.user_data = &d;
  d.quiet = quiet;
  d.tty = isatty (fileno (stderr)) && g_strcmp0 (g_getenv ("TERM"), "dumb") != 0;
  d.last_tenth = -1;
  d.cancel = g_cancellable_new ();
  d.loop = g_main_loop_new (NULL, FALSE);
  if (!quiet) {
    const char *endpoint = g_getenv ("HF_ENDPOINT");
    fprintf (stderr, _ ("Downloading %s (%s) from %s into %s:\n"), repo ? repo : DG_DOWNLOAD_DEFAULT_REPO,
             revision ? revision : DG_DOWNLOAD_DEFAULT_REVISION,
             endpoint && *endpoint ? endpoint : DG_DOWNLOAD_DEFAULT_ENDPOINT, display);
  }
  guint sources[3] = {
    g_unix_signal_add (SIGINT, on_signal, &d),
    g_unix_signal_add (SIGTERM, on_signal, &d),
    g_unix_signal_add (SIGHUP, on_signal, &d),
  };
  GThread *t = g_thread_new ("deepgen-download", download_thread, &d);
  g_main_loop_run (d.loop);
  g_thread_join (t);
  for (guint i = 0; i < G_N_ELEMENTS (sources); i++) g_source_remove (sources[i]);
  g_main_loop_unref (d.loop);
  g_object_unref (d.cancel);
  if (d.line_open)
    fputc ('\n', stderr);

  int rc = CLI_EXIT_OK;
  if (!d.ok) {
    if (g_error_matches (d.error, DG_ERROR, DG_ERROR_CANCELLED)) {
      fprintf (stderr, "deepgen: %s\n", d.error->message);
      rc = CLI_EXIT_CANCELLED;
    } else {
      print_error ("%s", d.error->message);
      rc =
          d.error->domain == DG_ERROR && d.error->code == DG_ERROR_INVALID_ARGUMENT ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
    }
    g_clear_error (&d.error);
    g_free (d.dir);
    return rc;
  }
  if (!quiet) {
    g_autofree char *got = g_format_size (d.result.transferred_bytes);
    g_autofree char *all = g_format_size (d.result.total_bytes);
    printf (_ ("%u files (%s) at commit %.12s, all verified: %u fetched (%s transferred), %u already in place.\n"),
            d.result.n_files, all, d.result.commit, d.result.files_fetched, got, d.result.files_present);
  }
  dg_download_result_clear (&d.result);

  if (!check_folder (d.dir, quiet, &error)) {
    print_error ("%s", error->message);
    g_error_free (error);
    g_free (d.dir);
    return CLI_EXIT_FAILURE;
  }

  if (wfmt == DG_WEIGHTS_Q8_0) {
    g_autofree char *q8 = g_strconcat (d.dir, "-q8", NULL);
    g_autofree char *q8_display = g_filename_display_name (q8);
    if (!quiet)
      fprintf (stderr, _ ("Converting to 8-bit weights (%s):\n"), q8_display);
    DgConvertOptions co = DG_CONVERT_OPTIONS_INIT;
    co.progress = quiet ? NULL : convert_progress;
    if (!dg_convert_model (d.dir, q8, &co, &error)) {
      print_error ("%s", error->message);
      g_error_free (error);
      g_free (d.dir);
      return CLI_EXIT_FAILURE;
    }
    if (!keep) {
      /* the converted folder takes the released one's place, so every front-end finds it */
      if (!remove_tree (d.dir, &error) || g_rename (q8, d.dir) < 0) {
        if (!error)
          g_set_error (&error, G_FILE_ERROR, g_file_error_from_errno (errno), _ ("Cannot rename %s to %s: %s"),
                       q8_display, display, g_strerror (errno));
        print_error ("%s", error->message);
        g_error_free (error);
        g_free (d.dir);
        return CLI_EXIT_FAILURE;
      }
      if (!quiet)
        printf (_ ("%s now holds the model with 8-bit weights.\n"), display);
    } else if (!quiet) {
      printf (_ ("The 8-bit model is in %s (use it with --model %s); the released one stays in %s.\n"), q8_display,
              q8_display, display);
    }
  } else if (!quiet) {
    printf (_ ("The model is ready in %s.\n"), display);
  }
  g_free (d.dir);
  return CLI_EXIT_OK;
}
