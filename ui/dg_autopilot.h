/* Test hook: drives a panel the way a user would, so that CI can show the real windows under
 * Xvfb (tests/ui, tests/gimp) and save screenshots for the README. Inactive unless the
 * environment variable DEEPGEN_AUTOPILOT is set; it then holds ';'-separated settings:
 *
 *   prompt=TEXT        type TEXT into the prompt field
 *   steps=N            set the steps (the tiny test model needs few)
 *   seed=N             set the seed (runs to compare start from the same noise)
 *   max-size=N         set the working size (the "fit" policy's longer side)
 *   rerun=1            first press "Load its settings" (the source layer's stored parameters),
 *                      then apply the other settings; writes "autopilot: layer settings offered|missing"
 *   model=DIR          set the model folder
 *   n-results=N        set the number of results (variations)
 *   tick=I,J,…         tick these reference layers (0 = the first listed) before the run; every run
 *                      writes "autopilot: references N" (the ticked layers it takes)
 *   reference=FILE     (deepgen-studio) add FILE as a reference image, ticked, as "Add reference
 *                      image…" does
 *   unpick=I,J,…       after the run, untick these results (0 = the first) before the shot and Apply
 *   shot=FILE.png      after the run, save a screenshot of the window (root=1: of the screen)
 *   liveshot=FILE.png  during the run, a screenshot once the live preview reaches step
 *                      livestep=N (default 3); "autopilot: live preview at step N"
 *   download=1         first press the panel's "Download the model" when it offers it, wait for
 *                      the download ("autopilot: downloaded"), then run
 *   dlshot=FILE.png    a screenshot while the download runs
 *   apply=1            then press Apply (else the window is closed with Cancel)
 *   shot2=FILE.png     after Apply, if the window is still open, a second screenshot
 *   save=FILE          after Apply, the window's data "dg-autopilot-save" holds FILE when its close
 *                      function runs (deepgen-studio saves the current image there first)
 *   move=X,Y           move the window there first (no window manager under Xvfb)
 *   timeout=SECONDS    give up (and close the window) after this long; default 300
 *
 * It writes one line "autopilot: result|error|timeout: ..." to stderr, which the tests read.
 *
 * Expand Canvas's dialog (dg_expand_form.h) has its own pilot, dg_autopilot_attach_expand:
 *   expand=L,T,R,B     fill in the pixels to add (prompt=TEXT the prompt), then take the
 *                      screenshot (shot=, root=) and press the dialog's Expand; it writes
 *                      "autopilot: expand SUMMARY (sensitive 0|1)" to stderr. */
#pragma once

#include "dg_panel.h"

G_BEGIN_DECLS

/* @window: the toplevel holding @panel; @close is called (with @window) to close it, e.g.
 * gtk_dialog_response for a dialog; NULL = gtk_window_close. Returns TRUE when active. */
gboolean dg_autopilot_attach (GtkWindow *window, DgPanel *panel, void (*close) (GtkWindow *window));

/* The value of @key in DEEPGEN_AUTOPILOT (new), NULL when it is not there. */
char *dg_autopilot_value (const char *key);

/* When DEEPGEN_AUTOPILOT holds expand=…: fills @form (in a GtkDialog whose GTK_RESPONSE_OK button
 * runs the expand) once it is on screen, takes the screenshot and presses that button. Returns
 * TRUE when active. */
gboolean dg_autopilot_attach_expand (GtkWidget *form);

/* Saves a PNG of @window (or of the whole screen) as it is on screen now. */
gboolean dg_screenshot_save (GtkWindow *window, gboolean whole_screen, const char *path, GError **error);

G_END_DECLS
