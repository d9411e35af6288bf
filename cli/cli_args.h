/* Parsing and checking the values of the `deepgen` command line: pure functions (no GPU, no
 * files), so that tests reach every rule without a model.
 *
 * Exit codes of `deepgen` (documented in `deepgen --help`):
 *   0    success
 *   1    the command could not be carried out: model folder missing or incomplete, an input
 *        image unreadable, no Vulkan device, out of memory, a failure while running
 *   2    usage: unknown command or option, a missing or malformed value, a value out of range
 *   130  cancelled (Ctrl-C, SIGTERM); nothing was written */
#pragma once

#include <glib.h>

#include "deepgen.h"

G_BEGIN_DECLS

enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_FAILURE = 1,
  CLI_EXIT_USAGE = 2,
  CLI_EXIT_CANCELLED = 130,
};

/* Usage errors are G_OPTION_ERROR_BAD_VALUE / _FAILED, like GOptionContext's own. */

/* "WxH", "W×H", "W*H", "WXH" or a single "N" (square), positive decimal sides up to DG_MAX_SIDE. */
gboolean cli_parse_size (const char *text, int *width, int *height, GError **error);
/* "philox" or "torch" (also "torch-cpu"). */
gboolean cli_parse_rng (const char *text, DgRng *out, GError **error);
/* "bf16" or "f32" (also "fp32", "float32", "bfloat16"). */
gboolean cli_parse_precision (const char *text, DgPrecision *out, GError **error);
/* --weights: released (or bf16), q8 (q8_0), q4 (q4_0), auto. */
gboolean cli_parse_weights (const char *text, DgWeightFormat *out, GError **error);
/* "released", "q8_0", "q4_0" or "auto" */
const char *cli_weights_name (DgWeightFormat weights);
/* "generate", "edit" or "inpaint". */
gboolean cli_parse_job (const char *text, DgJob *out, GError **error);
/* A decimal seed 0 … 2^64 − 1. */
gboolean cli_parse_seed (const char *text, guint64 *out, GError **error);

/* The text of @option ("--prompt") as UTF-8: @raw as given when it is valid UTF-8; else, when
 * the locale's charset is not UTF-8, converted from it; else an error that says which byte is
 * wrong. Returns a new string or NULL. */
char *cli_text_to_utf8 (const char *raw, const char *option, GError **error);

/* The gdk-pixbuf type to write @path as, from its extension: "png" or "jpeg" (.jpg, .jpeg);
 * anything else is a usage error that names the supported extensions. */
gboolean cli_output_type (const char *path, const char **type, GError **error);

/* --n-results: variations, 1 … CLI_MAX_RESULTS results from the seeds seed, seed + 1, … */
#define CLI_MAX_RESULTS 8

/* Where variation @index (1 … n) of @output goes: the index inserted before the extension of the
 * file name ("out.png" → "out-2.png", "dir/a.b.jpg" → "dir/a.b-2.jpg"; a name without one gets
 * "-2" at its end). Returns a new string. */
char *cli_variation_path (const char *output, guint index);

/* Range checks shared by the subcommands; @option names the flag in the message. */
gboolean cli_check_int (int value, int min, int max, const char *option, GError **error);
gboolean cli_check_double (double value, double min, double max, const char *option, GError **error);

/* "1:05", "12:34", "1:02:03" for an ETA in seconds (≥ 0). */
char *cli_format_duration (double seconds);

G_END_DECLS
