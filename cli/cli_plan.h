/* Tables of `deepgen info --plan` and `deepgen bench`: the memory plan and the FLOP counts of
 * deepgen.h, formatted. No GPU needed. */
#pragma once

#include <glib.h>

#include "deepgen.h"

G_BEGIN_DECLS

/* One row of the plan table. */
typedef struct {
  DgJob job;
  int width, height;
} CliPlanRow;

/* The plan table for @rows (edit: one reference of the output size; inpaint: the working size),
 * with a "fits" column when @device_bytes > 0 (named @device_name). @source says where the
 * configs came from ("built-in DeepGen 1.0", a folder). @text_tokens 0 = the plan's default. */
char *cli_plan_table (const DgPlanModel *m, const char *source, DgPrecision precision, DgWeightFormat weights,
                      const CliPlanRow *rows, guint n_rows, guint text_tokens, guint64 device_bytes,
                      const char *device_name, GError **error);

/* Stage by stage (weights, activations, inputs kept, total, TFLOP) for one request. */
char *cli_plan_detail (const DgPlanModel *m, const DgPlanRequest *r, GError **error);

/* FLOPs per stage of @m at @width × @height for generate and edit (one reference of that size),
 * with @text_tokens prompt tokens (0 = the plan's default) and @steps steps. */
char *cli_flops_table (const DgPlanModel *m, int width, int height, guint text_tokens, guint steps);

G_END_DECLS
