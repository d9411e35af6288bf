/* The GIMP 2.10 plug-in's DgHost: libgimp 2.0 for the plug-in core (gimp2_host.c), on IDs. */
#pragma once

#include "dg_plugin.h"

/* libgimp 2.0 names images and items by positive IDs; the core's handles are those IDs */
#define ID(h) GPOINTER_TO_INT (h)
#define HANDLE(id) ((id) > 0 ? GINT_TO_POINTER (id) : NULL)

extern const DgHost dg_gimp2_host;
