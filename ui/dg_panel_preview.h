/* Live previews in the DeepGen panel (DESIGN.md §9): while a job runs through the resident
 * service, the panel's preview area shows the sampler's estimate of the clean image after each
 * DiT step (RGB at latent resolution, 1/8 of the working size's sides), upscaled, captioned
 * "Step n of N". The final image replaces it; Stop or an error puts back what was shown before.
 *
 * The job's thread makes a DgLivePreview (a copy: the service's image is valid only during its
 * callback) and hands it to the main loop, where dg_live_preview_show draws it. */
#pragma once

#include <gtk/gtk.h>

#include "deepgen.h"

G_BEGIN_DECLS

typedef struct _DgLivePreview DgLivePreview;

/* A copy of @rgb (RGB) after DiT step @step of @n_steps; NULL when out of memory. Any thread. */
DgLivePreview *dg_live_preview_new (const DgImage *rgb, int step, int n_steps);
void dg_live_preview_free (DgLivePreview *preview);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgLivePreview, dg_live_preview_free)

/* Shows @preview in @image, upscaled smoothly so that its longer side is @side pixels, and
 * "Step n of N" in @caption. GTK main thread. */
void dg_live_preview_show (const DgLivePreview *preview, GtkImage *image, GtkLabel *caption, int side);

G_END_DECLS
