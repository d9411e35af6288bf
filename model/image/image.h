/* Image operations of model/: PIL-exact resampling, the size rules of the model, and the
 * conversions between 8-bit images and the [-1, 1] tensors the networks use (DESIGN.md §1:
 * all image logic lives here so that the app, the plug-ins and the CLI share it).
 *
 * Images are DgImage (deepgen.h): 8-bit, row-major, top row first, 1 (mask), 3 (RGB) or
 * 4 (RGBA) channels, rows `rowstride` bytes apart. Nothing here reads or writes files.
 *
 * Alpha, in one place: the networks see RGB only, so every path into a tensor drops alpha;
 * results of edit and inpaint get the source's alpha back unchanged (dg_image_with_alpha_of,
 * inpaint.h). Alpha is carried through, never generated.
 *
 * The part the front-ends use (size rules, crops, resizing, alpha) is declared in deepgen.h. */
#pragma once

#include <glib.h>

#include "deepgen.h"

G_BEGIN_DECLS

/* ---- size rules (MODEL.md §1.4, §7) --------------------------------------------------- */

/* Output sides are multiples of 16: VAE downsampling 8 × DiT patch 2. */
#define DG_OUTPUT_MULTIPLE 16
/* Reference sides are multiples of 32, so that 7/8 of a side is a multiple of 28 (ViT patch 14
 * × merge 2). prompt.h defines the same number for the ViT grid. */
#ifndef DG_REFERENCE_MULTIPLE
#define DG_REFERENCE_MULTIPLE 32
#endif
/* Trained near 512² (MODEL.md §1.1); the default of every job. */
#define DG_DEFAULT_SIDE 512

/* @value rounded to the nearest positive multiple of @multiple (halves round up; never below
 * @multiple). */
int dg_round_to_multiple (int value, int multiple);


/* ---- images ------------------------------------------------------------------------------ */


/* dg_image_new for sizes bounded by an image the caller already holds or by DG_MAX_SIDE:
 * out of memory aborts, as g_malloc does, instead of returning NULL. */
DgImage *dg_image_alloc (int width, int height, int channels);


/* The same with the pass order of Pillow 7–12 when @legacy_order: those always resize
 * horizontally first, Pillow 13 vertically first when the height loses more than twice as many
 * pixels as the width (tall images downscaled: 300×1000 → 160×512). Only that case differs:
 * by a few levels at most pixels, ~10 at hard edges. The reference's Pillow version is not
 * pinned (MODEL.md §1.4), so parity tests against an older environment can ask for its order. */
DgImage *dg_image_resize_pil (const DgImage *img, int width, int height, DgResample filter, gboolean legacy_order);

/* A reference image as the model takes it: alpha dropped, then PIL bicubic to
 * dg_reference_size (@target) (MODEL.md §1.4). */
DgImage *dg_reference_prepare (const DgImage *img, int target);

/* ---- tensors ------------------------------------------------------------------------------ */

typedef enum {
  DG_LAYOUT_CHW, /* planar: 3 planes of height × width (PyTorch's [3, H, W]) */
  DG_LAYOUT_HWC, /* interleaved: height × width × 3 (NHWC with N = 1) */
} DgLayout;

/* 2·(v/255) − 1 in float32, evaluated as the reference does (golden_scenarios.load_image:
 * u8 → float, / 255, · 2, − 1, each rounded to float32), so 0 → −1, 255 → 1, 128 → 0.0039216. */
float dg_u8_to_unit (guint8 v);
/* The reference quantisation (MODEL.md §10 item 17) in float32: trunc(clamp(127.5·x + 128, 0, 255)),
 * the product and the sum each rounded to float32 (no fused multiply-add). NaN → 0. The +128
 * (not +127.5) puts each level half a step above its integer, so truncation rounds and
 * dg_unit_to_u8 (dg_u8_to_unit (v)) == v for every v. */
guint8 dg_unit_to_u8 (float x);
/* The same quantisation as the reference computes it in a bf16 run: 127.5·x rounded to bf16,
 * + 128 rounded to float32 then to bf16 (torch's CPU bf16 arithmetic), clamp, truncate. */
guint8 dg_unit_bf16_to_u8 (guint16 x);

/* RGB of @img (alpha dropped) as 3·width·height floats in [-1, 1] (dg_u8_to_unit) into @dst. */
void dg_image_to_f32 (const DgImage *img, DgLayout layout, float *dst);
/* An RGB image from 3·width·height floats (dg_unit_to_u8) or bf16 values (dg_unit_bf16_to_u8). */
DgImage *dg_image_from_f32 (const float *src, DgLayout layout, int width, int height);
DgImage *dg_image_from_bf16 (const guint16 *src, DgLayout layout, int width, int height);

G_END_DECLS
