/* Inpainting around the model (DESIGN.md §6): which part of the image the model sees, at what
 * resolution, and how its result goes back so that pixels outside the mask are bit-identical
 * to the input and the edge blends.
 *
 * DeepGen has no inpainting head: an inpaint job is an edit of a crop. The steps are
 *
 *   dg_inpaint_plan      mask bounding box → context crop → working size (below)
 *   dg_inpaint_prepare   crop, drop alpha, PIL bicubic to the working size → the edit's reference
 *   (the model runs an edit on that image with width × height = the working size: the sides are
 *   multiples of 32 and within that target, so dg_reference_size keeps the reference as it is
 *   and the result has the working size too)
 *   dg_inpaint_apply     PIL bicubic back to the crop size, feathered mask, composite in place
 *   (or dg_inpaint_blend, which returns only the composited crop, for a layer at an offset)
 *
 * Memory: everything after the bounding-box scan touches the crop only. The working image is
 * bounded by the target area (and DG_INPAINT_MAX_WORK_SIDE); the composite needs about 8 bytes
 * per crop pixel (the feather's integer sums, the weights, the result resized back); the source
 * is never copied whole (dg_inpaint_apply writes into the caller's image).
 *
 * The plan, step by step (all in source pixels):
 *  1. box: bounding box of mask > 0. An empty (or NULL) mask is an error, or, with
 *     empty_is_whole, the whole image with every pixel changed (GIMP's "no selection").
 *  2. context: the box grows by max(min_context, ceil(context · longer box side)) on each side,
 *     clipped to the image. The model needs to see what surrounds the hole to match it.
 *  3. minimum crop: each side grows to at least sqrt(target_area) / max_upscale (256 px by
 *     default), where the image allows. A tiny mask then gets more context instead of an 8×
 *     upscale of a blurry patch, which the model would read as a blurry image.
 *  4. aspect: the shorter side grows until long/short ≤ max_aspect, where the image allows;
 *     the model was trained on aspect buckets near square (MODEL.md §7).
 *  5. working size: scale s = min(sqrt(target_area / crop area), max_upscale), further limited
 *     so no side exceeds DG_INPAINT_MAX_WORK_SIDE; sides = round(side · s) to multiples of 32
 *     (references must be, MODEL.md §1.4), at least 32.
 *  6. the crop grows along one axis (where the image allows) so that its aspect matches the
 *     working size's, so the round trip does not stretch the content.
 *
 * Feather and composite (why this rule): the requirement is that unselected pixels do not
 * change at all, so the feather only reaches INWARD:
 *    S    = 1 where mask > 0, else 0; outside the image S repeats the nearest edge pixel, so
 *           the image border is not an edge (a full mask stays full);
 *    b    = S blurred by three box passes of half-width k per axis (a Gaussian approximation,
 *           σ² = k(k+1) per axis, support ±3k), in exact integer sums;
 *    w    = round(mask · clamp(2b − 1, 0, 1))  ∈ 0..255.
 * At a straight edge b = 1/2 on the boundary, so 2b − 1 rises from 0 there to 1 at 3k pixels
 * inside: a smooth, monotone ramp of width ≈ the feather radius, entirely inside the mask.
 * Where mask = 0, w = 0 exactly. k = ceil(feather / 3), but at most (shorter box side − 1) / 6,
 * so that the centre of a small selection (one pixel, a thin stroke's box) still changes fully.
 * Then out = (src · (255 − w) + gen · w + 127) / 255 per colour channel (integer, exact at
 * w = 0 and w = 255), and alpha = the source's alpha: alpha is carried through, never
 * generated. A soft mask keeps its softness (w is proportional to it). */
#pragma once

#include <glib.h>

#include "deepgen.h"

G_BEGIN_DECLS

/* The plan, the source crop and the blend are declared in deepgen.h (the front-ends use
 * them); what follows is model/'s own. */
/* The blend weights w of the crop (crop_width × crop_height, one channel), as described above. */
DgMask *dg_inpaint_feather (const DgMask *mask, const DgInpaintPlan *plan);

/* Composites @generated (the model's output: work size, RGB or RGBA, its alpha ignored) into
 * @image in place, inside the crop only. @image holds the source pixels (the source itself or a
 * copy); outside the crop and where the mask is 0 it is not written. */
gboolean dg_inpaint_apply (DgImage *image, const DgMask *mask, const DgInpaintPlan *plan, const DgImage *generated,
                           GError **error);

G_END_DECLS
