/* Progress of a dg_run on stderr: a one-line bar with the stage name, step/of, time per step
 * and an ETA when stderr is a terminal; plain lines (one per stage, and every tenth of a
 * multi-step stage) when it is not, so logs stay readable.
 *
 * dg_run calls its progress function at the start of each unit of work with the number of
 * units done (pipeline.c: (stage, i, n) before step i, (stage, n, n) when a stage ends), from
 * the thread that runs it; everything here is thread-safe. */
#pragma once

#include <stdio.h>

#include <glib.h>

#include "deepgen.h"

G_BEGIN_DECLS

typedef enum {
  CLI_PROGRESS_QUIET,
  CLI_PROGRESS_LINES,
  CLI_PROGRESS_BAR,
} CliProgressMode;

typedef struct _CliProgress CliProgress;

/* The name shown for a stage: dg_stage_name (translated), or a stand-in in tests. */
typedef const char *(*CliStageName) (DgStage stage);

/* @out: usually stderr. @unicode: draw the bar with block characters (UTF-8 terminals). */
CliProgress *cli_progress_new (FILE *out, CliProgressMode mode, gboolean unicode, CliStageName stage_name);
void cli_progress_free (CliProgress *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CliProgress, cli_progress_free)

/* The mode for stderr: a bar on a terminal (unless TERM=dumb), lines otherwise. */
CliProgressMode cli_progress_mode_for_stderr (gboolean quiet);

/* A DgProgressFunc-shaped update; @now in µs (g_get_monotonic_time), passed in for tests. */
void cli_progress_update (CliProgress *p, DgStage stage, int step, int n_steps, gint64 now);
/* Prints @text on a line of its own (the bar, if any, is cleared and drawn again after it). */
void cli_progress_message (CliProgress *p, const char *text);
/* Clears the bar; call before printing the final result. */
void cli_progress_end (CliProgress *p);

/* The bar's text for the current state (no control characters), for tests; NULL before the
 * first update. */
char *cli_progress_render (CliProgress *p, gint64 now);

/* The DgProgressFunc for dg_run: user_data is a CliProgress. */
void cli_progress_func (DgStage stage, int step, int n_steps, gpointer user_data);

G_END_DECLS
