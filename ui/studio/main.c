/* deepgen-studio: a small GTK 3 app around the DeepGen panel, for people who do not use GIMP.
 *
 *   deepgen-studio [--model DIR] [--job edit|generate|inpaint] [--select X,Y,W,H] [--no-service] [IMAGE]
 */
#include <locale.h>
#include <stdio.h>

#include "dg_gettext.h"
#include "dg_task.h"
#include "studio_window.h"

#define APP_ID "org.deepgen.Studio"

static char *opt_model;
static char *opt_job;
static char *opt_select;
static gboolean opt_no_service;

static const GOptionEntry options[] = {
  { "model", 'm', 0, G_OPTION_ARG_FILENAME, &opt_model, N_ ("The DeepGen model folder"), N_ ("DIR") },
  { "job", 'j', 0, G_OPTION_ARG_STRING, &opt_job, N_ ("Start with this job: edit, generate or inpaint"), N_ ("JOB") },
  { "select", 's', 0, G_OPTION_ARG_STRING, &opt_select, N_ ("Mark this rectangle of the image"), N_ ("X,Y,W,H") },
  { "no-service", 0, 0, G_OPTION_ARG_NONE, &opt_no_service,
    N_ ("Run in this process instead of the resident DeepGen service (see 'deepgen serve --help')"), NULL },
  { NULL }
};

static StudioWindow *
new_window (GApplication *app)
{
  StudioWindow *win = studio_window_new (GTK_APPLICATION (app));
  if (opt_model)
    studio_window_set_model_folder (win, opt_model);
  studio_window_set_in_process (win, opt_no_service);
  return win;
}

static void
apply_options (StudioWindow *win)
{
  DgJob job;
  if (opt_job && dg_job_from_string (opt_job, &job))
    studio_window_set_job (win, job);
  int x, y, w, h;
  if (opt_select && sscanf (opt_select, "%d,%d,%d,%d", &x, &y, &w, &h) == 4)
    studio_window_select_rectangle (win, x, y, w, h);
}

static void
on_activate (GApplication *app)
{
  StudioWindow *win = new_window (app);
  apply_options (win);
  gtk_window_present (GTK_WINDOW (win));
}

static void
on_open (GApplication *app, GFile **files, int n_files, const char *hint)
{
  for (int i = 0; i < n_files; i++) {
    StudioWindow *win = new_window (app);
    g_autoptr (GError) error = NULL;
    if (!studio_window_open (win, files[i], &error)) {
      g_printerr ("deepgen-studio: %s\n", error->message);
      gtk_widget_destroy (GTK_WIDGET (win));
      g_application_quit (app); /* a bad file on the command line is an error */
      return;
    }
    apply_options (win);
    gtk_window_present (GTK_WINDOW (win));
  }
}

static int
on_local_options (GApplication *app, GVariantDict *dict)
{
  DgJob job;
  if (opt_job && !dg_job_from_string (opt_job, &job)) {
    g_printerr (_ ("deepgen-studio: unknown job “%s”: use edit, generate or inpaint\n"), opt_job);
    return 2;
  }
  return -1;
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  dg_i18n_init ();
  textdomain (GETTEXT_PACKAGE);
  g_set_application_name (_ ("DeepGen Studio"));
  g_autoptr (GtkApplication) app = gtk_application_new (APP_ID, G_APPLICATION_HANDLES_OPEN | G_APPLICATION_NON_UNIQUE);
  g_application_add_main_option_entries (G_APPLICATION (app), options);
  g_application_set_option_context_parameter_string (G_APPLICATION (app), _ ("[IMAGE]"));
  g_signal_connect (app, "activate", G_CALLBACK (on_activate), NULL);
  g_signal_connect (app, "open", G_CALLBACK (on_open), NULL);
  g_signal_connect (app, "handle-local-options", G_CALLBACK (on_local_options), NULL);
  const int status = g_application_run (G_APPLICATION (app), argc, argv);
  dg_task_model_unload ();
  return status;
}
