/* Private to model/: the gettext shorthand for user-visible strings (DESIGN.md §8).
 * The domain is bound by the program (plug-in, app, CLI), not by the library. */
#pragma once

#ifndef GETTEXT_PACKAGE
#define GETTEXT_PACKAGE "deepgen"
#endif
#include <glib/gi18n-lib.h>
