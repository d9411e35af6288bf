/* Image operations of model/: PIL-exact resampling, the size rules of the model, and the
 * conversions between 8-bit images and the [-1, 1] tensors the networks use (DESIGN.md §1:
 * all image logic lives here so that the app, the plug-ins and the CLI share it).
 *
 * Images are DgImage (deepgen.h): 8-bit, row-major, top row first, 1 (mask), 3 (RGB) or
 * 4 (RGBA) channels, rows `rowstride` bytes apart. Nothing here reads or writes files.
 *
 * Alpha, in one place: the networks see RGB only, so every path into a tensor drops alpha;
 * results of edit and inpaint get the source's alpha back unchanged (dg_image_with_alpha_of,
 * inpaint.h). Alpha is carried through, never generated. */
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
/* The DiT's latent token grid is at most 384 × 384 (MODEL.md §7): 384 tokens × 2 (patch) × 8 (VAE). */
#define DG_MAX_SIDE 6144
/* Trained near 512² (MODEL.md §1.1); the default of every job. */
#define DG_DEFAULT_SIDE 512

/* @value rounded to the nearest positive multiple of @multiple (halves round up; never below
 * @multiple). */
int dg_round_to_multiple (int value, int multiple);

/* The size a reference image of @width × @height is resized to before the model sees it: the
 * aspect-keeping rule of the reference model's __main__ (MODEL.md §1.4). @target is the
 * longest side allowed, max(H_out, W_out); it is first rounded to the nearest multiple of 32.
 *  - longest side > target: the longest side becomes target, the other side is
 *    ceil(other · target / longest / 32) · 32 (exact rational arithmetic, no float rounding);
 *  - otherwise both sides are rounded UP to multiples of 32 (1×1 → 32×32).
 * The result never exceeds target on either side and is at least 32. */
void dg_reference_size (int width, int height, int target, int *out_width, int *out_height);

/* The size dg_run produces for @request (MODEL.md §1.4, §7), and the checks on it:
 *  - generate: width × height (0 = 512), each rounded to the nearest multiple of 16;
 *  - edit, one reference: the reference's prepared size, dg_reference_size with target =
 *    max(width, height) of the request (both 0 = 512);
 *  - edit, several references: as generate (each reference is prepared with that target);
 *  - inpaint: the source image's size (the model works on a crop, see inpaint.h).
 * Requested sides must be 0 or 1 … DG_MAX_SIDE; edit and inpaint need their images. On failure
 * DG_ERROR_INVALID_ARGUMENT with a message that says what to change, and *width = *height = 0.
 * dg_output_size (deepgen.h) is this without the error. */
gboolean dg_output_size_checked (const DgRequest *request, int *width, int *height, GError **error);

/* ---- images ------------------------------------------------------------------------------ */

/* Checks an image handed in by a caller: pixels present, sides ≥ 1, rowstride large enough,
 * size not overflowing, channels 3 or 4 (or 1 when @mask). @what names it in the message
 * ("the source image"). DG_ERROR_INVALID_ARGUMENT on failure. */
gboolean dg_image_check (const DgImage *img, gboolean mask, const char *what, GError **error);

/* dg_image_new for sizes bounded by an image the caller already holds or by DG_MAX_SIDE:
 * out of memory aborts, as g_malloc does, instead of returning NULL. */
DgImage *dg_image_alloc (int width, int height, int channels);

/* A new image holding the @width × @height rectangle at (@x, @y), which must lie inside @img. */
DgImage *dg_image_crop (const DgImage *img, int x, int y, int width, int height);

/* A new RGB image: the colour channels of @img, alpha dropped (not composited on anything:
 * the colour under a transparent pixel is what the model sees). */
DgImage *dg_image_to_rgb (const DgImage *img);

/* @rgb (3 or 4 channels) with the alpha of @src: a copy of @rgb when @src has none; @src's alpha
 * unchanged when the sizes match, else @src's alpha resized to @rgb's size (PIL bicubic). For
 * edit results, whose size can differ from the source. */
DgImage *dg_image_with_alpha_of (const DgImage *rgb, const DgImage *src);

typedef enum {
  DG_RESAMPLE_NEAREST,
  DG_RESAMPLE_BILINEAR,
  DG_RESAMPLE_BICUBIC,   /* PIL's default for Image.resize, used for reference images */
  DG_RESAMPLE_LANCZOS,
} DgResample;

/* PIL's Image.resize (reducing_gap=None) as Pillow 13 computes it, bit for bit, for 1-, 3- and
 * 4-channel images: a separable two-pass convolution through an 8-bit intermediate whose kernel
 * support is widened by the downscale factor, so downscaling antialiases; weights in 22-bit fixed
 * point, sums rounded and clipped like libImaging/Resample.c. RGBA is resized premultiplied
 * (PIL's "RGBa" round trip) except with NEAREST; a same-size resize is a copy. NEAREST
 * reproduces PIL's affine scale (sample centres accumulated in double). Sides ≥ 1. */
DgImage *dg_image_resize (const DgImage *img, int width, int height, DgResample filter);

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
  DG_LAYOUT_CHW,   /* planar: 3 planes of height × width (PyTorch's [3, H, W]) */
  DG_LAYOUT_HWC,   /* interleaved: height × width × 3 (NHWC with N = 1) */
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
