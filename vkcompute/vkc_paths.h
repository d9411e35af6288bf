/* Kernel-path report for `deepgen info`. */
#pragma once
#include "vkc.h"

G_BEGIN_DECLS
/* One line per op family (linear at DeepGen's shapes, attention, conv): the kernel, its tile, and
 * why (cooperative matrices used or not, and the reason). May run the coopmat self-check. */
char *vkc_paths_describe (VkcDevice *dev);
G_END_DECLS
