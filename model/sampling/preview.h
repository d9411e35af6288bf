/* Live previews (DESIGN.md §9): the flow-matching sampler's current estimate of the clean latent,
 * x̂0 = x_t − σ_t · v (MODEL.md §7: x_t = (1 − σ) x0 + σ ε and the DiT predicts v = ε − x0),
 * projected 16 → 3 with the published SD3 latent-to-RGB factors at latent resolution — a cheap
 * look at the image while it forms, not the VAE's decode. */
#pragma once

#include "deepgen.h"

#define DG_PREVIEW_LATENT_CHANNELS 16

/* An RGB image of @lw × @lh from the latents @x (NHWC, @channels per pixel) and the velocity @v of
 * the same layout at noise level @sigma; NULL when @channels is not 16 (no factors for it). */
DgImage *dg_preview_rgb (const float *x, const float *v, float sigma, int lh, int lw, int channels);
