/* deepgen-bench: performance figures for docs/PERF.md.
 *
 *   deepgen-bench ops [--filter NAME] [--reps N] [--quick]
 */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_ops.h"

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  g_autofree char *filter = NULL;
  int reps = 10;
  gboolean quick = FALSE;
  GOptionEntry entries[] = {
    { "filter", 'f', 0, G_OPTION_ARG_STRING, &filter,
      "Only cases whose name contains NAME (NAME$: whose name ends with NAME)", "NAME" },
    { "reps", 'r', 0, G_OPTION_ARG_INT, &reps, "Dispatches per measurement (default 10)", "N" },
    { "quick", 'q', 0, G_OPTION_ARG_NONE, &quick, "Smaller token counts, for CPU devices", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("ops — op throughput at DeepGen's real shapes");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (
      ctx, "Prints GPU time per op and GFLOP/s (compute-bound ops) or GB/s (memory-bound ops).\n"
           "The device is chosen as everywhere else: DEEPGEN_VK_DEVICE=index|name.\n\n"
           "Example:\n  deepgen-bench ops --filter attention --reps 20\n");
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    fprintf (stderr, "deepgen-bench: %s\n", error->message);
    return 2;
  }
  if (argc != 2 || g_strcmp0 (argv[1], "ops") != 0) {
    g_autofree char *help = g_option_context_get_help (ctx, TRUE, NULL);
    fprintf (stderr, "%s", help);
    return 2;
  }
  if (!deepgen_bench_ops (filter, reps, quick, &error)) {
    fprintf (stderr, "deepgen-bench: %s\n", error->message);
    return 1;
  }
  return 0;
}
