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

/* Terminal columns of UTF-8 @text: East Asian wide characters take 2, combining marks 0, so
 * that tables line up in Chinese and Japanese too (g_utf8_strlen counts characters). */
glong cli_text_width (const char *text);
/* @text, then spaces up to @width columns (none when it is already as wide). */
void cli_append_padded (GString *s, const char *text, int width);
/* Spaces up to @width columns, then @text (right-aligned column headings). */
void cli_append_right (GString *s, const char *text, int width);
