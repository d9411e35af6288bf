/* What the panel's parts in other files (dg_panel_extras.c) and dg_panel.c call of each other.
 * Not for front-ends: they use dg_panel.h. Kept apart so that each feature of the panel lives in
 * functions of its own (the Describe button, picking among variations). */
#pragma once

#include "dg_panel.h"

G_BEGIN_DECLS

/* dg_panel.c: the message bar and the buttons' sensitivity */
void dg_panel_show_message (DgPanel *panel, GtkMessageType type, const char *text);
void dg_panel_hide_message (DgPanel *panel);
void dg_panel_update_sensitivity (DgPanel *panel);
/* a setting kept outside dg_panel.c changed (the reference layers): sensitivity, region, fit */
void dg_panel_settings_changed (DgPanel *panel);
/* The source and selection set by dg_panel_set_source, borrowed; NULL without a source. A
 * worker thread must copy what it reads: a new source frees these. */
const DgImage *dg_panel_peek_source (DgPanel *panel, const DgMask **selection);

/* dg_panel_extras.c: called by dg_panel_dispose. A description in flight stops, and its end
 * only cleans up (the panel's widgets are going). */
void dg_panel_extras_dispose (DgPanel *panel);

/* dg_panel_extras.c: the Describe row (button, progress, Stop), created once by dg_panel_init */
GtkWidget *dg_panel_describe_row_new (DgPanel *panel);
/* Called by dg_panel_update_sensitivity: Describe needs a source and an idle panel. */
void dg_panel_describe_sync (DgPanel *panel, gboolean busy);

/* dg_panel_extras.c: picking among variations. The strip below the preview, created once by
 * dg_panel_init; dg_panel_picks_show (from show_preview) fills it for a new result (all picked)
 * or hides it; dg_panel_picks_take turns @result into the picked ones only (the first picked is
 * the head, the others its variations; the rest freed) and returns it, NULL when none is picked. */
GtkWidget *dg_panel_picks_new (DgPanel *panel);
void dg_panel_picks_show (DgPanel *panel, const DgTaskResult *result);
DgTaskResult *dg_panel_picks_take (DgPanel *panel, DgTaskResult *result);

/* dg_panel_extras.c: the "DeepGen made this layer — Load its settings" row, created once by
 * dg_panel_init; hidden until dg_panel_set_layer_params gives it the layer's parameters. */
GtkWidget *dg_panel_rerun_row_new (DgPanel *panel);

/* dg_panel_extras.c: the reference layers, created once by dg_panel_init (hidden until the
 * front-end adds a layer); dg_panel_update_sensitivity syncs it with the job; dg_panel_run reads
 * the ticked layers (on the GTK thread, through the front-end's reader) into a GPtrArray of
 * DgImage* (empty for none or for generate), NULL with @error when one cannot be read. */
GtkWidget *dg_panel_references_new (DgPanel *panel);
void dg_panel_references_sync (DgPanel *panel, DgJob job, gboolean busy);
GPtrArray *dg_panel_references_read (DgPanel *panel, GError **error);

G_END_DECLS
