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
/* The source and selection set by dg_panel_set_source, borrowed; NULL without a source. A
 * worker thread must copy what it reads: a new source frees these. */
const DgImage *dg_panel_peek_source (DgPanel *panel, const DgMask **selection);

/* dg_panel_extras.c: the Describe row (button, progress, Stop), created once by dg_panel_init */
GtkWidget *dg_panel_describe_row_new (DgPanel *panel);
/* Called by dg_panel_update_sensitivity: Describe needs a source and an idle panel. */
void dg_panel_describe_sync (DgPanel *panel, gboolean busy);

G_END_DECLS
