#include "dg_error.h"

G_DEFINE_QUARK (dg - error - quark, dg_error)
