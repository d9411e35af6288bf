/* Private to model/: the gettext shorthand for user-visible strings (DESIGN.md §8).
 * The domain is bound by the program (plug-in, app, CLI), not by the library. */
#pragma once

#ifndef GETTEXT_PACKAGE
#define GETTEXT_PACKAGE "deepgen"
#endif
#include <glib/gi18n-lib.h>
/* In translated formats, 64-bit values use PRId64/PRIu64 and sizes %zu: xgettext and gettext
 * understand those, not G_GINT64_FORMAT / G_GSIZE_FORMAT (the msgid would be cut at the macro). */
#include <inttypes.h>
