/* The gettext shorthand for cli/ (DESIGN.md §8): user-visible strings go through _() in the
 * "deepgen" domain that po/ builds catalogues for. cli_i18n_init binds it once at start. */
#pragma once

#ifndef GETTEXT_PACKAGE
#define GETTEXT_PACKAGE "deepgen"
#endif
#include <glib/gi18n-lib.h>
/* In translated formats, 64-bit values use PRId64/PRIu64 and sizes %zu: xgettext and gettext
 * understand those, not G_GINT64_FORMAT / G_GSIZE_FORMAT (the msgid would be cut at the macro). */
#include <inttypes.h>

/* setlocale, then the domain bound to the first of: $DEEPGEN_LOCALEDIR (tests run from the
 * build tree), locale/ beside the program, the configured <prefix>/share/locale. */
void cli_i18n_init (void);
