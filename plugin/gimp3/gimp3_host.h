/* The GIMP 3 plug-in's DgHost: libgimp 3 for the plug-in core (gimp3_host.c). */
#pragma once

#include "dg_plugin.h"

#define PLUG_IN_BINARY "deepgen-gimp" /* also the dialog's role */

extern const DgHost dg_gimp3_host;
