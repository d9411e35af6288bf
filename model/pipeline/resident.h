/* Residency across runs (DESIGN.md §9): what the service asks of an open model besides deepgen.h.
 * Internal to model/ (the service in model/service/ uses it). */
#pragma once

#include "deepgen.h"

/* A resident model also keeps the last run's conditioning (the VLM and connector outputs, keyed by
 * the prompts, negatives, references' pixels, rows and weight format): a run that changes only seed,
 * steps, guidance (on stays on) or size of a generate skips the VLM and the connector (no ENCODE or
 * BRIDGE progress), with the same outputs, so the same image.
 *
 * Keep the components' weights on the device between runs when the run's memory plan says they
 * all fit together (every stage's weights + the largest stage's activations + the margin); else,
 * and when a run changes the weight format, they are released as in-process runs do. Off by
 * default: a one-shot run gains nothing and the tests of the per-stage peaks assume it off. */
void dg_model_set_resident (DgModel *model, gboolean resident);
/* Weight bytes the last run uploaded to the device (0 when every component was resident). */
guint64 dg_model_last_run_uploaded (DgModel *model);
/* Weight bytes kept on the device now. */
guint64 dg_model_resident_bytes (DgModel *model);

/* Live previews (DESIGN.md §9, sampling/preview.h): @func gets, after every DiT step of the next
 * runs, the first request's clean-latent estimate as an RGB image at latent resolution (valid
 * during the call), step n of N. NULL = none. Called from the thread that runs dg_run. */
typedef void (*DgPreviewFunc) (const DgImage *rgb, int step, int n_steps, gpointer user_data);
void dg_model_set_preview (DgModel *model, DgPreviewFunc func, gpointer user_data);
/* Seconds the last run spent making previews and in DiT steps (previews excluded). */
void dg_model_last_run_preview_cost (DgModel *model, double *preview_seconds, double *step_seconds);
