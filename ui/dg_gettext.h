/* The gettext shorthand for ui/ and plugin/ (DESIGN.md §8): every user-visible string goes
 * through _() in the "deepgen" domain, whose catalogues po/ builds. dg_i18n_init (dg_task.h)
 * binds the domain; a program calls it once before it shows text. */
#pragma once

#ifndef GETTEXT_PACKAGE
#define GETTEXT_PACKAGE "deepgen"
#endif
#include <glib/gi18n-lib.h>
