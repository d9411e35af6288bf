/* Op throughput benchmark shared by `deepgen-bench ops` (and later `deepgen bench`). */
#pragma once
#include <glib.h>
#include <stdbool.h>

/* Prints one line per op case whose name contains `filter` (NULL = all); `reps` dispatches per
 * measurement; `quick` shrinks token counts for slow (CPU) devices. */
bool deepgen_bench_ops (const char *filter, int reps, bool quick, GError **error);
