/* Progress on stderr (progress.h). */
#include "progress.h"

#include <string.h>
#include <unistd.h>

#include "cli_args.h"
#include "cli_i18n.h"

#define BAR_WIDTH 24
#define NAME_WIDTH 20

struct _CliProgress {
  GMutex lock;
  FILE *out;
  CliProgressMode mode;
  gboolean unicode;
  CliStageName stage_name;
  gboolean started;
  gboolean bar_shown; /* a bar line is on screen, without its newline */
  DgStage stage;
  int step, n_steps;
  gint64 t0;       /* first update */
  gint64 stage_t0; /* this stage's first update */
  int stage_step0; /* the step that update reported */
  int last_tenth;  /* lines mode: last tenth printed */
};

CliProgress *
cli_progress_new (FILE *out, CliProgressMode mode, gboolean unicode, CliStageName stage_name)
{
  CliProgress *p = g_new0 (CliProgress, 1);
  p->stage_name = stage_name;
  g_mutex_init (&p->lock);
  p->out = out;
  p->mode = mode;
  p->unicode = unicode;
  return p;
}

void
cli_progress_free (CliProgress *p)
{
  if (!p)
    return;
  cli_progress_end (p);
  g_mutex_clear (&p->lock);
  g_free (p);
}

CliProgressMode
cli_progress_mode_for_stderr (gboolean quiet)
{
  if (quiet)
    return CLI_PROGRESS_QUIET;
  const char *term = g_getenv ("TERM");
  if (isatty (STDERR_FILENO) && g_strcmp0 (term, "dumb") != 0)
    return CLI_PROGRESS_BAR;
  return CLI_PROGRESS_LINES;
}

/* Seconds per step of the current stage and the time left, when there is a step to go by. */
static gboolean
rate (const CliProgress *p, gint64 now, double *per_step, double *left)
{
  int done = p->step - p->stage_step0;
  if (p->n_steps <= 1 || done <= 0)
    return FALSE;
  *per_step = (double) (now - p->stage_t0) / 1e6 / done;
  *left = *per_step * (p->n_steps - p->step);
  return TRUE;
}

static char *
render_locked (CliProgress *p, gint64 now)
{
  if (!p->started)
    return NULL;
  GString *s = g_string_new (NULL);
  cli_append_padded (s, p->stage_name (p->stage), NAME_WIDTH);
  if (p->n_steps > 1) {
    int filled = (int) ((gint64) BAR_WIDTH * CLAMP (p->step, 0, p->n_steps) / p->n_steps);
    g_string_append_c (s, ' ');
    for (int i = 0; i < BAR_WIDTH; i++)
      g_string_append (s, i < filled ? (p->unicode ? "█" : "#") : (p->unicode ? "░" : "."));
    g_string_append_printf (s, " %d/%d", p->step, p->n_steps);
    double per_step, left;
    if (rate (p, now, &per_step, &left)) {
      g_autofree char *eta = cli_format_duration (left);
      /* TRANSLATORS: seconds per step, then the estimated time left, e.g. "1.2 s/step  ETA 0:41" */
      g_string_append_printf (s, _ ("  %.1f s/step  ETA %s"), per_step, eta);
    }
  }
  g_autofree char *elapsed = cli_format_duration ((double) (now - p->t0) / 1e6);
  g_string_append_printf (s, "  [%s]", elapsed);
  return g_string_free (s, FALSE);
}

char *
cli_progress_render (CliProgress *p, gint64 now)
{
  g_mutex_lock (&p->lock);
  char *s = render_locked (p, now);
  g_mutex_unlock (&p->lock);
  return s;
}

static void
clear_bar_locked (CliProgress *p)
{
  if (p->bar_shown) {
    fputs ("\r\033[K", p->out);
    p->bar_shown = FALSE;
  }
}

static void
draw_locked (CliProgress *p, gint64 now, gboolean new_stage)
{
  g_autofree char *text = render_locked (p, now);
  if (!text)
    return;
  if (p->mode == CLI_PROGRESS_BAR) {
    fprintf (p->out, "\r\033[K%s", text);
    p->bar_shown = TRUE;
    fflush (p->out);
    return;
  }
  /* Lines: every stage once, multi-step stages at each tenth and at their end. */
  int tenth = p->n_steps > 1 ? (int) ((gint64) p->step * 10 / p->n_steps) : 0;
  if (!new_stage && tenth == p->last_tenth)
    return;
  p->last_tenth = tenth;
  g_autofree char *elapsed = cli_format_duration ((double) (now - p->t0) / 1e6);
  if (p->n_steps > 1) {
    double per_step, left;
    g_autofree char *eta = rate (p, now, &per_step, &left) ? cli_format_duration (left) : NULL;
    if (eta)
      /* TRANSLATORS: elapsed time, stage, step/of, time left: "[0:12] Denoising 10/50, ETA 0:40" */
      fprintf (p->out, _ ("[%s] %s %d/%d, ETA %s\n"), elapsed, p->stage_name (p->stage), p->step, p->n_steps, eta);
    else
      fprintf (p->out, "[%s] %s %d/%d\n", elapsed, p->stage_name (p->stage), p->step, p->n_steps);
  } else {
    fprintf (p->out, "[%s] %s\n", elapsed, p->stage_name (p->stage));
  }
  fflush (p->out);
}

void
cli_progress_update (CliProgress *p, DgStage stage, int step, int n_steps, gint64 now)
{
  if (p->mode == CLI_PROGRESS_QUIET)
    return;
  g_mutex_lock (&p->lock);
  gboolean new_stage = !p->started || stage != p->stage || n_steps != p->n_steps || step < p->step;
  if (!p->started)
    p->t0 = now;
  p->started = TRUE;
  if (new_stage) {
    p->stage = stage;
    p->n_steps = n_steps;
    p->stage_t0 = now;
    p->stage_step0 = step;
    p->last_tenth = -1;
  }
  p->step = step;
  draw_locked (p, now, new_stage);
  g_mutex_unlock (&p->lock);
}

void
cli_progress_message (CliProgress *p, const char *text)
{
  g_mutex_lock (&p->lock);
  gboolean had_bar = p->bar_shown;
  clear_bar_locked (p);
  fprintf (p->out, "%s\n", text);
  if (had_bar)
    draw_locked (p, g_get_monotonic_time (), FALSE);
  fflush (p->out);
  g_mutex_unlock (&p->lock);
}

void
cli_progress_end (CliProgress *p)
{
  g_mutex_lock (&p->lock);
  clear_bar_locked (p);
  fflush (p->out);
  g_mutex_unlock (&p->lock);
}

void
cli_progress_func (DgStage stage, int step, int n_steps, gpointer user_data)
{
  cli_progress_update (user_data, stage, step, n_steps, g_get_monotonic_time ());
}
