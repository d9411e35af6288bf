/* Residency across runs (DESIGN.md §9): what the service asks of an open model besides deepgen.h.
 * Internal to model/ (the service in model/service/ uses it). */
#pragma once

#include "deepgen.h"

/* Keep the components' weights on the device between runs when the run's memory plan says they
 * all fit together (every stage's weights + the largest stage's activations + the margin); else,
 * and when a run changes the weight format, they are released as in-process runs do. Off by
 * default: a one-shot run gains nothing and the tests of the per-stage peaks assume it off. */
void dg_model_set_resident (DgModel *model, gboolean resident);
/* Weight bytes the last run uploaded to the device (0 when every component was resident). */
guint64 dg_model_last_run_uploaded (DgModel *model);
/* Weight bytes kept on the device now. */
guint64 dg_model_resident_bytes (DgModel *model);
