/* Image operations: PIL-exact resampling, size rules, [-1, 1] conversions (image.h).
 *
 * The resampler reproduces Pillow's libImaging/Resample.c integer arithmetic because the
 * reference model gets its reference images from PIL's Image.resize (MODEL.md §1.4): a 1-level
 * difference in a reference pixel changes the VAE latents and the ViT embeddings, and parity
 * tests compare those against PyTorch dumps. tests/golden/make_image_golden.py holds the
 * Pillow outputs that test_image.c compares with, bit for bit.
 *
 * This file is compiled with -ffp-contract=off (model/CMakeLists.txt): the double-precision
 * filter weights and the float32 quantisation must round after every operation, as PIL and
 * torch do on x86-64; a fused multiply-add would move ties. */
#include "image.h"

#include <math.h>
#include <string.h>

#include "dg_i18n.h"
#include "dtype.h"

/* ---- DgImage (public) ------------------------------------------------------------------- */

static gboolean
valid_geometry (int width, int height, int channels)
{
  if (width < 1 || height < 1 || (channels != 1 && channels != 3 && channels != 4))
    return FALSE;
  /* rowstride is an int, and the buffer size must fit a gsize */
  return width <= G_MAXINT / channels && (gsize) height <= G_MAXSIZE / ((gsize) width * (gsize) channels);
}

DgImage *
dg_image_new (int width, int height, int channels)
{
  g_return_val_if_fail (valid_geometry (width, height, channels), NULL);
  /* A caller may ask for a layer-sized image (GIMP): report a failed allocation as NULL rather
   * than aborting the plug-in. */
  gsize size = (gsize) width * (gsize) channels * (gsize) height;
  guint8 *pixels = g_try_malloc0 (size);
  if (!pixels)
    return NULL;
  DgImage *img = g_new (DgImage, 1);
  img->width = width;
  img->height = height;
  img->channels = channels;
  img->rowstride = width * channels;
  img->pixels = pixels;
  return img;
}

/* For the operations below, whose sizes are bounded by an image the caller already holds or by
 * DG_MAX_SIDE: out of memory there aborts, as g_malloc does. */
DgImage *
dg_image_alloc (int width, int height, int channels)
{
  DgImage *img = dg_image_new (width, height, channels);
  if (!img)
    g_error ("deepgen: out of memory for a %d×%d×%d image", width, height, channels);
  return img;
}

static inline guint8 *
row_of (const DgImage *img, int y)
{
  return img->pixels + (gsize) y * (gsize) img->rowstride;
}

DgImage *
dg_image_copy (const DgImage *img)
{
  g_return_val_if_fail (img != NULL, NULL);
  DgImage *out = dg_image_new (img->width, img->height, img->channels);
  if (!out)
    return NULL;
  for (int y = 0; y < img->height; y++) memcpy (row_of (out, y), row_of (img, y), (gsize) img->width * img->channels);
  return out;
}

void
dg_image_free (DgImage *img)
{
  if (!img)
    return;
  g_free (img->pixels);
  g_free (img);
}

gboolean
dg_image_check (const DgImage *img, gboolean mask, const char *what, GError **error)
{
  if (!img || !img->pixels) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("%s is missing"), what);
    return FALSE;
  }
  if (mask ? img->channels != 1 : img->channels != 3 && img->channels != 4) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 mask ? _ ("%s has %d channels; a mask has exactly one (0 = keep, 255 = change)")
                      : _ ("%s has %d channels; images must be RGB (3) or RGBA (4)"),
                 what, img->channels);
    return FALSE;
  }
  if (!valid_geometry (img->width, img->height, img->channels) || img->rowstride < img->width * img->channels ||
      (gsize) img->height > G_MAXSIZE / (gsize) img->rowstride) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("%s has an invalid size (%d×%d, %d channels, %d bytes per row)"), what, img->width, img->height,
                 img->channels, img->rowstride);
    return FALSE;
  }
  return TRUE;
}

DgImage *
dg_image_crop (const DgImage *img, int x, int y, int width, int height)
{
  g_return_val_if_fail (img != NULL, NULL);
  g_return_val_if_fail (x >= 0 && y >= 0 && width >= 1 && height >= 1, NULL);
  g_return_val_if_fail (width <= img->width - x && height <= img->height - y, NULL);
  DgImage *out = dg_image_alloc (width, height, img->channels);
  for (int r = 0; r < height; r++)
    memcpy (row_of (out, r), row_of (img, y + r) + (gsize) x * img->channels, (gsize) width * img->channels);
  return out;
}

DgImage *
dg_image_to_rgb (const DgImage *img)
{
  g_return_val_if_fail (img != NULL && img->channels >= 3, NULL);
  DgImage *out = dg_image_alloc (img->width, img->height, 3);
  for (int y = 0; y < img->height; y++) {
    const guint8 *s = row_of (img, y);
    guint8 *d = row_of (out, y);
    for (int x = 0; x < img->width; x++, s += img->channels, d += 3) d[0] = s[0], d[1] = s[1], d[2] = s[2];
  }
  return out;
}

/* Channel @c of @img as a one-channel image. */
static DgImage *
image_channel (const DgImage *img, int c)
{
  DgImage *out = dg_image_alloc (img->width, img->height, 1);
  for (int y = 0; y < img->height; y++) {
    const guint8 *s = row_of (img, y) + c;
    guint8 *d = row_of (out, y);
    for (int x = 0; x < img->width; x++, s += img->channels) d[x] = *s;
  }
  return out;
}

DgImage *
dg_image_with_alpha_of (const DgImage *rgb, const DgImage *src)
{
  g_return_val_if_fail (rgb != NULL && rgb->channels >= 3 && src != NULL, NULL);
  if (src->channels != 4)
    return rgb->channels == 3 ? dg_image_copy (rgb) : dg_image_to_rgb (rgb);
  g_autoptr (DgImage) alpha = image_channel (src, 3);
  if (alpha->width != rgb->width || alpha->height != rgb->height) {
    DgImage *resized = dg_image_resize (alpha, rgb->width, rgb->height, DG_RESAMPLE_BICUBIC);
    dg_image_free (alpha);
    alpha = resized;
  }
  DgImage *out = dg_image_alloc (rgb->width, rgb->height, 4);
  for (int y = 0; y < rgb->height; y++) {
    const guint8 *s = row_of (rgb, y), *a = row_of (alpha, y);
    guint8 *d = row_of (out, y);
    for (int x = 0; x < rgb->width; x++, s += rgb->channels, d += 4) d[0] = s[0], d[1] = s[1], d[2] = s[2], d[3] = a[x];
  }
  return out;
}

/* ---- PIL resampling ------------------------------------------------------------------------ */

/* The filters as libImaging defines them, with the same operation order, so that the double
 * weights round identically. */
static double
filter_bilinear (double x)
{
  if (x < 0.0)
    x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

static double
filter_bicubic (double x)
{
  const double a = -0.5; /* PIL's (and Keys') choice; OpenCV uses -0.75, so do not "fix" it */
  if (x < 0.0)
    x = -x;
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0)
    return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

static double
sinc (double x)
{
  if (x == 0.0)
    return 1.0;
  x = x * G_PI;
  return sin (x) / x;
}

static double
filter_lanczos (double x)
{
  if (-3.0 <= x && x < 3.0)
    return sinc (x) * sinc (x / 3);
  return 0.0;
}

typedef struct {
  double (*fn) (double x);
  double support;
} Filter;

static const Filter *
filter_of (DgResample f)
{
  static const Filter bilinear = { filter_bilinear, 1.0 };
  static const Filter bicubic = { filter_bicubic, 2.0 };
  static const Filter lanczos = { filter_lanczos, 3.0 };
  switch (f) {
  case DG_RESAMPLE_BILINEAR: return &bilinear;
  case DG_RESAMPLE_BICUBIC: return &bicubic;
  case DG_RESAMPLE_LANCZOS: return &lanczos;
  case DG_RESAMPLE_NEAREST: break;
  }
  return NULL;
}

/* 8-bit results leave 32 − 8 − 2 bits for the weights: the 2 spare bits absorb sums of weights
 * above 1 (negative lobes) without overflowing PIL's int accumulator. */
#define PRECISION_BITS 22

/* The weights of one axis: output sample i reads n = bounds[2i + 1] inputs from bounds[2i]
 * on, weighted by k[i·ksize ..]. */
typedef struct {
  int ksize;
  int *bounds;
  gint32 *k;
} Coeffs;

static void
coeffs_clear (Coeffs *c)
{
  g_free (c->bounds);
  g_free (c->k);
}

static void
coeffs_compute (int in_size, int out_size, const Filter *filter, Coeffs *c)
{
  /* PIL takes the box edges as floats; the box is the whole image, so in1 − in0 = in_size. */
  double scale = (double) in_size / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale; /* widen the kernel only when downscaling */
  double support = filter->support * filterscale;
  int ksize = (int) ceil (support) * 2 + 1;
  double *w = g_new (double, ksize);
  c->ksize = ksize;
  c->bounds = g_new (int, (gsize) out_size * 2);
  c->k = g_new0 (gint32, (gsize) out_size * (gsize) ksize);
  for (int xx = 0; xx < out_size; xx++) {
    double center = (xx + 0.5) * scale;
    double ss = 1.0 / filterscale;
    double ww = 0.0;
    int xmin = (int) (center - support + 0.5); /* truncation, as in PIL, then clamped */
    if (xmin < 0)
      xmin = 0;
    int xmax = (int) (center + support + 0.5);
    if (xmax > in_size)
      xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; x++) {
      w[x] = filter->fn ((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    gint32 *k = c->k + (gsize) xx * ksize;
    for (int x = 0; x < xmax; x++) {
      double v = ww != 0.0 ? w[x] / ww : w[x];
      k[x] = (gint32) (v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    c->bounds[xx * 2] = xmin;
    c->bounds[xx * 2 + 1] = xmax;
  }
  g_free (w);
}

/* The fixed-point sum (which starts at one half) to 8 bits: floor, then clip. */
static inline guint8
clip8 (gint64 ss)
{
  if (ss < 0)
    return 0;
  ss >>= PRECISION_BITS;
  return ss > 255 ? 255 : (guint8) ss;
}

/* Rows [row0, row0 + out->height) of @in, resampled horizontally into @out. */
static void
resample_horizontal (const DgImage *in, int row0, const Coeffs *c, DgImage *out)
{
  const int ch = in->channels;
  for (int y = 0; y < out->height; y++) {
    const guint8 *s = row_of (in, row0 + y);
    guint8 *d = row_of (out, y);
    for (int xx = 0; xx < out->width; xx++) {
      const gint32 *k = c->k + (gsize) xx * c->ksize;
      const guint8 *p = s + (gsize) c->bounds[xx * 2] * ch;
      const int n = c->bounds[xx * 2 + 1];
      for (int b = 0; b < ch; b++) {
        gint64 ss = 1 << (PRECISION_BITS - 1);
        for (int x = 0; x < n; x++) ss += (gint64) p[x * ch + b] * k[x];
        d[xx * ch + b] = clip8 (ss);
      }
    }
  }
}

/* @in resampled vertically into @out; bounds index rows of @in. Rows are accumulated whole so
 * the inner loop runs along memory; integer sums do not depend on the order. */
static void
resample_vertical (const DgImage *in, const Coeffs *c, DgImage *out)
{
  const gsize n_row = (gsize) out->width * out->channels;
  gint64 *acc = g_new (gint64, n_row);
  for (int yy = 0; yy < out->height; yy++) {
    const gint32 *k = c->k + (gsize) yy * c->ksize;
    const int ymin = c->bounds[yy * 2], n = c->bounds[yy * 2 + 1];
    for (gsize i = 0; i < n_row; i++) acc[i] = 1 << (PRECISION_BITS - 1);
    for (int y = 0; y < n; y++) {
      const guint8 *s = row_of (in, ymin + y);
      const gint64 w = k[y];
      for (gsize i = 0; i < n_row; i++) acc[i] += s[i] * w;
    }
    guint8 *d = row_of (out, yy);
    for (gsize i = 0; i < n_row; i++) d[i] = clip8 (acc[i]);
  }
  g_free (acc);
}

/* ImagingResampleInner. Horizontal first: the vertical weights are computed first anyway, as
 * they tell which source rows matter, and the horizontal pass runs over those rows only.
 * Pillow ≥ 13 (python-pillow/Pillow#9549) goes vertical first when the height loses more than
 * twice as many pixels as the width, (in_h − h) > 2·(in_w − w) with in_h > h; which pass runs
 * first changes the 8-bit intermediate, so the order is part of the result. */
static DgImage *
resample_convolution (const DgImage *in, int width, int height, const Filter *filter, gboolean legacy_order)
{
  const gboolean need_h = width != in->width, need_v = height != in->height;
  const gint64 loss_h = (gint64) in->height - height, loss_w = (gint64) in->width - width;
  const gboolean vertical_first = !legacy_order && need_h && need_v && loss_h > 0 && loss_h > 2 * loss_w;
  Coeffs cv, ch = { 0 };
  coeffs_compute (in->height, height, filter, &cv);
  if (need_h)
    coeffs_compute (in->width, width, filter, &ch);

  DgImage *out;
  if (vertical_first) {
    g_autoptr (DgImage) tmp = dg_image_alloc (in->width, height, in->channels);
    resample_vertical (in, &cv, tmp);
    out = dg_image_alloc (width, height, in->channels);
    resample_horizontal (tmp, 0, &ch, out);
  } else {
    g_autoptr (DgImage) tmp = NULL;
    const DgImage *src = in;
    if (need_h) {
      const int first = cv.bounds[0];
      const int last = cv.bounds[(height - 1) * 2] + cv.bounds[(height - 1) * 2 + 1];
      for (int i = 0; i < height; i++) cv.bounds[i * 2] -= first;
      tmp = dg_image_alloc (width, last - first, in->channels);
      resample_horizontal (in, first, &ch, tmp);
      src = tmp;
    }
    if (need_v) {
      out = dg_image_alloc (src->width, height, in->channels);
      resample_vertical (src, &cv, out);
    } else
      out = tmp ? g_steal_pointer (&tmp) : dg_image_copy (in);
  }
  coeffs_clear (&cv);
  coeffs_clear (&ch);
  return out;
}

/* ImagingScaleAffine with PIL's resize box: sample centres start at half a step and are
 * accumulated in double; a centre outside the image (never for a plain resize, kept for
 * exactness) gives 0 as PIL's fill does. */
static DgImage *
resample_nearest (const DgImage *in, int width, int height)
{
  const int ch = in->channels;
  int *xtab = g_new (int, width);
  double step = (double) in->width / width, xo = step * 0.5;
  for (int x = 0; x < width; x++, xo += step) {
    int xin = xo < 0.0 ? -1 : (int) xo;
    xtab[x] = xin < in->width ? xin : -1;
  }
  DgImage *out = dg_image_alloc (width, height, ch);
  double ystep = (double) in->height / height, yo = ystep * 0.5;
  for (int y = 0; y < height; y++, yo += ystep) {
    int yin = yo < 0.0 ? -1 : (int) yo;
    if (yin < 0 || yin >= in->height)
      continue;
    const guint8 *s = row_of (in, yin);
    guint8 *d = row_of (out, y);
    for (int x = 0; x < width; x++)
      if (xtab[x] >= 0)
        memcpy (d + (gsize) x * ch, s + (gsize) xtab[x] * ch, ch);
  }
  g_free (xtab);
  return out;
}

/* PIL's RGBA → RGBa: c·a/255 rounded with the MULDIV255 shift trick. */
static DgImage *
premultiply (const DgImage *in)
{
  DgImage *out = dg_image_alloc (in->width, in->height, 4);
  for (int y = 0; y < in->height; y++) {
    const guint8 *s = row_of (in, y);
    guint8 *d = row_of (out, y);
    for (int x = 0; x < in->width; x++, s += 4, d += 4) {
      for (int c = 0; c < 3; c++) {
        guint t = (guint) s[c] * s[3] + 128;
        d[c] = (guint8) (((t >> 8) + t) >> 8);
      }
      d[3] = s[3];
    }
  }
  return out;
}

/* PIL's RGBa → RGBA: 255·c / a, truncated and clipped; alpha 0 and 255 leave colour as is. */
static void
unpremultiply (DgImage *img)
{
  for (int y = 0; y < img->height; y++) {
    guint8 *p = row_of (img, y);
    for (int x = 0; x < img->width; x++, p += 4) {
      guint a = p[3];
      if (a == 0 || a == 255)
        continue;
      for (int c = 0; c < 3; c++) {
        guint v = 255u * p[c] / a;
        p[c] = v > 255 ? 255 : (guint8) v;
      }
    }
  }
}

DgImage *
dg_image_resize_pil (const DgImage *img, int width, int height, DgResample filter, gboolean legacy_order)
{
  g_return_val_if_fail (img != NULL && width >= 1 && height >= 1, NULL);
  g_return_val_if_fail (img->channels == 1 || img->channels == 3 || img->channels == 4, NULL);
  if (width == img->width && height == img->height)
    return dg_image_copy (img); /* Image.resize returns a copy before anything else */
  if (filter == DG_RESAMPLE_NEAREST)
    return resample_nearest (img, width, height);
  const Filter *f = filter_of (filter);
  g_return_val_if_fail (f != NULL, NULL);
  if (img->channels != 4)
    return resample_convolution (img, width, height, f, legacy_order);
  g_autoptr (DgImage) pre = premultiply (img);
  DgImage *out = resample_convolution (pre, width, height, f, legacy_order);
  unpremultiply (out);
  return out;
}

DgImage *
dg_image_resize (const DgImage *img, int width, int height, DgResample filter)
{
  return dg_image_resize_pil (img, width, height, filter, FALSE);
}

/* ---- size rules ---------------------------------------------------------------------------- */

int
dg_round_to_multiple (int value, int multiple)
{
  g_return_val_if_fail (multiple > 0, value);
  if (value <= multiple)
    return multiple;
  gint64 r = ((gint64) value + multiple / 2) / multiple * multiple;
  return r > G_MAXINT ? G_MAXINT / multiple * multiple : (int) r;
}

static int
ceil_to_multiple (gint64 value, int multiple)
{
  return (int) ((value + multiple - 1) / multiple * multiple);
}

void
dg_reference_size (int width, int height, int target, int *out_width, int *out_height)
{
  g_return_if_fail (width >= 1 && height >= 1 && out_width && out_height);
  const int m = DG_REFERENCE_MULTIPLE;
  target = dg_round_to_multiple (target, m);
  const int longest = MAX (width, height);
  if (longest >= target) {
    /* The official resize_image in IEEE double, operation for operation:
       * other · (target / longest), then ceil(· / 32) · 32. Where the product lands a hair above a
       * multiple of 32 this is 32 px more than the exact quotient (728×546 at 512 → 512×416), and
       * for targets that are not powers of two even a square can get a short side of target + 32
       * (1092² at 768 → 768×800): that is what the released model was run with. Each operation is
       * a single IEEE rounding (no fused multiply-add possible), so C and Python agree bit for bit
       * (tests/data/reference-sizes). Only past DG_MAX_SIDE, where the official code has no valid
       * size either (the DiT's position table ends there), the side is held at DG_MAX_SIDE. */
    const int other = MIN (width, height);
    const double scaled = (double) other * ((double) target / (double) longest);
    const double units = ceil (scaled / (double) m);
    int side = units * m > DG_MAX_SIDE ? DG_MAX_SIDE / m * m : (int) units * m;
    *out_width = width >= height ? target : side;
    *out_height = width >= height ? side : target;
  } else {
    *out_width = ceil_to_multiple (width, m);
    *out_height = ceil_to_multiple (height, m);
  }
}

DgImage *
dg_reference_prepare (const DgImage *img, int target)
{
  g_return_val_if_fail (img != NULL && img->channels >= 3, NULL);
  int w, h;
  dg_reference_size (img->width, img->height, target, &w, &h);
  g_autoptr (DgImage) rgb = dg_image_to_rgb (img);
  return dg_image_resize (rgb, w, h, DG_RESAMPLE_BICUBIC);
}

static gboolean
check_requested_side (const char *name, int value, GError **error)
{
  if (value < 0) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("The %s must be positive (or 0 for the default), not %d."), name, value);
    return FALSE;
  }
  if (value > DG_MAX_SIDE) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("A %s of %d pixels is more than the model can produce (%d pixels per side, a "
                    "grid of 384 latent tokens). Choose %d or less; DeepGen was trained near "
                    "512×512 and gives its best results between 512 and 1024."),
                 name, value, DG_MAX_SIDE, DG_MAX_SIDE);
    return FALSE;
  }
  return TRUE;
}

gboolean
dg_output_size_checked (const DgRequest *request, int *width, int *height, GError **error)
{
  g_return_val_if_fail (request != NULL && width != NULL && height != NULL, FALSE);
  *width = *height = 0;
  if (!check_requested_side (_ ("width"), request->width, error) ||
      !check_requested_side (_ ("height"), request->height, error))
    return FALSE;

  const int rw = request->width ? request->width : DG_DEFAULT_SIDE;
  const int rh = request->height ? request->height : DG_DEFAULT_SIDE;
  const DgImage *first = request->n_images > 0 && request->images ? request->images[0] : NULL;
  switch (request->job) {
  case DG_JOB_GENERATE: break;
  case DG_JOB_EDIT:
    if (!first) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("Editing needs at least one reference image."));
      return FALSE;
    }
    for (guint i = 0; i < request->n_images; i++) {
      g_autofree char *what = g_strdup_printf (_ ("Reference image %u"), i + 1);
      if (!dg_image_check (request->images[i], FALSE, what, error))
        return FALSE;
    }
    if (request->n_images == 1) {
      int target = request->width || request->height ? MAX (request->width, request->height) : DG_DEFAULT_SIDE;
      dg_reference_size (first->width, first->height, target, width, height);
      return TRUE;
    }
    break;
  case DG_JOB_INPAINT:
    if (!first) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("Inpainting needs a source image."));
      return FALSE;
    }
    if (!dg_image_check (first, FALSE, _ ("The source image"), error))
      return FALSE;
    *width = first->width;
    *height = first->height;
    return TRUE;
  default:
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("Unknown job %d."), (int) request->job);
    return FALSE;
  }
  *width = dg_round_to_multiple (rw, DG_OUTPUT_MULTIPLE);
  *height = dg_round_to_multiple (rh, DG_OUTPUT_MULTIPLE);
  return TRUE;
}

void
dg_output_size (const DgRequest *request, int *width, int *height)
{
  dg_output_size_checked (request, width, height, NULL);
}

/* ---- tensors ------------------------------------------------------------------------------ */

float
dg_u8_to_unit (guint8 v)
{
  float t = (float) v / 255.0f;
  return 2.0f * t - 1.0f;
}

static inline guint8
truncate_clamped (float t)
{
  if (!(t > 0.0f)) /* also NaN */
    return 0;
  return t >= 255.0f ? 255 : (guint8) t;
}

guint8
dg_unit_to_u8 (float x)
{
  float p = 127.5f * x;
  return truncate_clamped (p + 128.0f);
}

guint8
dg_unit_bf16_to_u8 (guint16 x)
{
  /* 127.5 has 8 significant bits like bf16, so the float32 product is exact before rounding. */
  float p = dg_bf16_to_f32 (dg_f32_to_bf16 (127.5f * dg_bf16_to_f32 (x)));
  return truncate_clamped (dg_bf16_to_f32 (dg_f32_to_bf16 (p + 128.0f)));
}

void
dg_image_to_f32 (const DgImage *img, DgLayout layout, float *dst)
{
  g_return_if_fail (img != NULL && img->channels >= 3 && dst != NULL);
  float lut[256];
  for (int v = 0; v < 256; v++) lut[v] = dg_u8_to_unit ((guint8) v);
  const gsize plane = (gsize) img->width * img->height;
  for (int y = 0; y < img->height; y++) {
    const guint8 *s = row_of (img, y);
    const gsize o = (gsize) y * img->width;
    for (int x = 0; x < img->width; x++, s += img->channels)
      for (int c = 0; c < 3; c++) {
        if (layout == DG_LAYOUT_CHW)
          dst[c * plane + o + x] = lut[s[c]];
        else
          dst[(o + x) * 3 + c] = lut[s[c]];
      }
  }
}

static DgImage *
image_from_values (const void *src, gboolean bf16, DgLayout layout, int width, int height)
{
  g_return_val_if_fail (src != NULL && width >= 1 && height >= 1, NULL);
  DgImage *out = dg_image_alloc (width, height, 3);
  const gsize plane = (gsize) width * height;
  for (int y = 0; y < height; y++) {
    guint8 *d = row_of (out, y);
    const gsize o = (gsize) y * width;
    for (int x = 0; x < width; x++)
      for (int c = 0; c < 3; c++) {
        gsize i = layout == DG_LAYOUT_CHW ? c * plane + o + x : (o + x) * 3 + c;
        d[x * 3 + c] =
            bf16 ? dg_unit_bf16_to_u8 (((const guint16 *) src)[i]) : dg_unit_to_u8 (((const float *) src)[i]);
      }
  }
  return out;
}

DgImage *
dg_image_from_f32 (const float *src, DgLayout layout, int width, int height)
{
  return image_from_values (src, FALSE, layout, width, height);
}

DgImage *
dg_image_from_bf16 (const guint16 *src, DgLayout layout, int width, int height)
{
  return image_from_values (src, TRUE, layout, width, height);
}
