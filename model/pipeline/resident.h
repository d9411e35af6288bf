/* Residency across runs (DESIGN.md §9): what the service asks of an open model besides deepgen.h.
 * Internal to model/ (the service in model/service/ uses it). */
#pragma once

#include "deepgen.h"

/* A resident model also keeps the last run's conditioning (the VLM and connector outputs, keyed by
 * the prompts, negatives, references' pixels, rows and weight format): a run that changes only seed,
 * steps, guidance (on stays on) or size of a generate skips the VLM and the connector (no ENCODE or
 * BRIDGE progress), with the same outputs, so the same image.
 *
 * Components kept on the device between runs: dg_plan_resident_set's choice (deepgen.h) from each
 * run's memory plan and the device's size: all of them when they fit together, else the ones
 * that cost most to reload and still leave every stage room, those no longer used evicted least
 * recently used first. The others, and all when a run changes the weight format, are released
 * after their stage as in-process runs do. Off by default: a one-shot run gains nothing and the
 * tests of the per-stage peaks assume it off. */
void dg_model_set_resident (DgModel *model, gboolean resident);
/* Weight bytes the last run uploaded to the device (0 when every component was resident). */
guint64 dg_model_last_run_uploaded (DgModel *model);
/* Device memory the kept components hold now. */
guint64 dg_model_resident_bytes (DgModel *model);
/* The components kept now: bit 1 << DgPlanStage of the stage that loads each (deepgen.h
 * DgResidentHeld). */
guint dg_model_resident_components (DgModel *model);

/* Live previews (DESIGN.md §9, sampling/preview.h): @func gets, after every DiT step of the next
 * runs, the first request's clean-latent estimate as an RGB image at latent resolution (valid
 * during the call), step n of N. NULL = none. Called from the thread that runs dg_run. */
typedef void (*DgPreviewFunc) (const DgImage *rgb, int step, int n_steps, gpointer user_data);
void dg_model_set_preview (DgModel *model, DgPreviewFunc func, gpointer user_data);
/* Seconds the last run spent making previews and in DiT steps (previews excluded). */
void dg_model_last_run_preview_cost (DgModel *model, double *preview_seconds, double *step_seconds);
