/* Expand Canvas's form (GTK 3), shared by the GIMP plug-ins' dialog and deepgen-studio: the
 * pixels to add on each side, or an aspect ratio, and the optional prompt, with the new canvas
 * size (or what is wrong with the values) shown as they change. */
#pragma once

#include <gtk/gtk.h>

#include "deepgen.h"

G_BEGIN_DECLS

/* A new form for a @width × @height source, starting from @sides, @aspect and @prompt (NULL:
 * none). @apply, the button that runs the expand, is made sensitive only while the values give a
 * canvas the geometry accepts (dg_task_expand_sides, dg_expand_plan). */
GtkWidget *dg_expand_form_new (int width, int height, const DgExpandSides *sides, const char *aspect,
                               const char *prompt, GtkWidget *apply);
/* The values: @sides (all 0 when an aspect ratio is given), the aspect ratio ("" for none) and
 * the prompt, both new strings. */
void dg_expand_form_get (GtkWidget *form, DgExpandSides *sides, char **aspect, char **prompt);
/* Sets the sides and the prompt (NULL: left as they are), as a user would; for test autopilots. */
void dg_expand_form_set (GtkWidget *form, const DgExpandSides *sides, const char *prompt);
/* What the form shows below the fields: "400×300 → 496×324" or the message for wrong values. */
const char *dg_expand_form_summary (GtkWidget *form);

G_END_DECLS
