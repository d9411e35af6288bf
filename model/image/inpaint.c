/* Inpainting around the model: plan, prepare, feather, composite (the rules are in inpaint.h). */
#include "inpaint.h"

#include <math.h>
#include <string.h>

#include "dg_i18n.h"
#include "image.h"

static void
options_resolve (const DgInpaintOptions *in, DgInpaintOptions *o)
{
  static const DgInpaintOptions defaults = DG_INPAINT_OPTIONS_INIT;
  *o = in ? *in : defaults;
  if (o->target_area <= 0)
    o->target_area = DG_DEFAULT_SIDE * DG_DEFAULT_SIDE;
  if (!(o->context >= 0.0)) /* also NaN */
    o->context = 0.25;
  if (o->min_context < 0)
    o->min_context = 32;
  if (!(o->max_upscale > 0.0))
    o->max_upscale = 2.0;
  if (!(o->max_aspect >= 1.0))
    o->max_aspect = 2.0;
  if (o->feather < 0)
    o->feather = DG_INPAINT_DEFAULT_FEATHER;
  o->feather = MIN (o->feather, DG_INPAINT_MAX_FEATHER);
}

static inline const guint8 *
row_of (const DgImage *img, int y)
{
  return img->pixels + (gsize) y * (gsize) img->rowstride;
}

/* Bounding box of the non-zero pixels as [x0, x1) × [y0, y1); FALSE when there are none. */
static gboolean
mask_bbox (const DgMask *mask, int *x0, int *y0, int *x1, int *y1)
{
  int bx0 = mask->width, by0 = -1, bx1 = 0, by1 = 0;
  for (int y = 0; y < mask->height; y++) {
    const guint8 *r = row_of (mask, y);
    int first = 0, last = mask->width - 1;
    while (first < mask->width && !r[first]) first++;
    if (first == mask->width)
      continue;
    while (!r[last]) last--;
    if (by0 < 0)
      by0 = y;
    by1 = y + 1;
    bx0 = MIN (bx0, first);
    bx1 = MAX (bx1, last + 1);
  }
  if (by0 < 0)
    return FALSE;
  *x0 = bx0, *y0 = by0, *x1 = bx1, *y1 = by1;
  return TRUE;
}

/* Grows the interval [*pos, *pos + *len) to @want (at most @limit) around its centre, shifted
 * back inside [0, limit). Never shrinks it. */
static void
grow_axis (int *pos, int *len, int limit, gint64 want)
{
  if (want > limit)
    want = limit;
  if (want <= *len)
    return;
  int extra = (int) want - *len;
  *pos -= extra / 2;
  *len = (int) want;
  if (*pos < 0)
    *pos = 0;
  if (*pos + *len > limit)
    *pos = limit - *len;
}

static gboolean
check_mask (const DgImage *src, const DgMask *mask, GError **error)
{
  if (!dg_image_check (mask, TRUE, _ ("The mask"), error))
    return FALSE;
  if (mask->width != src->width || mask->height != src->height) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("The mask is %d×%d but the image is %d×%d; they must be the same size."), mask->width, mask->height,
                 src->width, src->height);
    return FALSE;
  }
  return TRUE;
}

gboolean
dg_inpaint_plan (const DgImage *src, const DgMask *mask, const DgInpaintOptions *options, DgInpaintPlan *plan,
                 GError **error)
{
  g_return_val_if_fail (plan != NULL, FALSE);
  memset (plan, 0, sizeof *plan);
  if (!dg_image_check (src, FALSE, _ ("The source image"), error))
    return FALSE;
  if (mask && !check_mask (src, mask, error))
    return FALSE;
  DgInpaintOptions o;
  options_resolve (options, &o);
  const int iw = src->width, ih = src->height;
  plan->image_width = iw;
  plan->image_height = ih;

  /* 1. box */
  int x0, y0, x1, y1;
  if (!mask || !mask_bbox (mask, &x0, &y0, &x1, &y1)) {
    if (!o.empty_is_whole) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                   _ ("The mask is empty: select the area to change, or inpaint the whole image."));
      return FALSE;
    }
    plan->whole = TRUE;
    x0 = y0 = 0, x1 = iw, y1 = ih;
  }
  plan->box_x = x0, plan->box_y = y0, plan->box_width = x1 - x0, plan->box_height = y1 - y0;

  /* 2. context */
  const int longer = MAX (plan->box_width, plan->box_height);
  const int pad = MAX (o.min_context, (int) MIN (ceil (o.context * longer), (double) G_MAXINT / 4));
  int cx = MAX (0, x0 - pad), cy = MAX (0, y0 - pad);
  int cw = (int) MIN ((gint64) x1 + pad, iw) - cx, ch = (int) MIN ((gint64) y1 + pad, ih) - cy;

  /* 3. minimum crop */
  const gint64 min_side = (gint64) ceil (sqrt ((double) o.target_area) / o.max_upscale);
  grow_axis (&cx, &cw, iw, min_side);
  grow_axis (&cy, &ch, ih, min_side);

  /* 4. aspect */
  if (cw > o.max_aspect * ch)
    grow_axis (&cy, &ch, ih, (gint64) ceil (cw / o.max_aspect));
  else if (ch > o.max_aspect * cw)
    grow_axis (&cx, &cw, iw, (gint64) ceil (ch / o.max_aspect));

  /* 5. working size */
  double s = sqrt ((double) o.target_area / ((double) cw * ch));
  s = MIN (s, o.max_upscale);
  s = MIN (s, (double) DG_INPAINT_MAX_WORK_SIDE / cw);
  s = MIN (s, (double) DG_INPAINT_MAX_WORK_SIDE / ch);
  const int ww = dg_round_to_multiple ((int) floor (cw * s + 0.5), DG_REFERENCE_MULTIPLE);
  const int wh = dg_round_to_multiple ((int) floor (ch * s + 0.5), DG_REFERENCE_MULTIPLE);

  /* 6. crop aspect = working aspect, where the image allows */
  if ((gint64) cw * wh < (gint64) ch * ww)
    grow_axis (&cx, &cw, iw, ((gint64) ch * ww + wh - 1) / wh);
  else if ((gint64) cw * wh > (gint64) ch * ww)
    grow_axis (&cy, &ch, ih, ((gint64) cw * wh + ww - 1) / ww);

  plan->crop_x = cx, plan->crop_y = cy, plan->crop_width = cw, plan->crop_height = ch;
  plan->work_width = ww, plan->work_height = wh;

  /* feather: k = ceil(feather / 3), small enough to leave the box centre at full strength */
  int k = (o.feather + 2) / 3;
  k = MIN (k, (MIN (plan->box_width, plan->box_height) - 1) / 6);
  plan->blur_half = plan->whole ? 0 : k;
  plan->feather = 3 * plan->blur_half;
  return TRUE;
}

DgImage *
dg_inpaint_prepare (const DgImage *src, const DgInpaintPlan *plan)
{
  g_return_val_if_fail (src != NULL && plan != NULL, NULL);
  g_return_val_if_fail (src->width == plan->image_width && src->height == plan->image_height, NULL);
  g_autoptr (DgImage) crop = dg_image_crop (src, plan->crop_x, plan->crop_y, plan->crop_width, plan->crop_height);
  g_autoptr (DgImage) rgb = crop->channels == 3 ? g_steal_pointer (&crop) : dg_image_to_rgb (crop);
  return dg_image_resize (rgb, plan->work_width, plan->work_height, DG_RESAMPLE_BICUBIC);
}

/* One box pass, "valid" part only: out[i] = in[i] + … + in[i + 2k], n − 2k outputs. Running
 * sums in integers: exact, so the result does not depend on the order or the platform. */
static void
box_pass (const gint64 *in, int n, int k, gint64 *out)
{
  gint64 s = 0;
  for (int i = 0; i <= 2 * k; i++) s += in[i];
  out[0] = s;
  for (int i = 1; i + 2 * k < n; i++) {
    s += in[i + 2 * k] - in[i - 1];
    out[i] = s;
  }
}

/* Three passes over @a (length n, overwritten), result (n − 6k values) in @a. */
static void
box3 (gint64 *a, gint64 *tmp, int n, int k)
{
  box_pass (a, n, k, tmp);
  box_pass (tmp, n - 2 * k, k, a);
  box_pass (a, n - 4 * k, k, tmp);
  memcpy (a, tmp, sizeof (gint64) * (n - 6 * k));
}

DgMask *
dg_inpaint_feather (const DgMask *mask, const DgInpaintPlan *plan)
{
  g_return_val_if_fail (plan != NULL, NULL);
  const int cw = plan->crop_width, ch = plan->crop_height, k = plan->blur_half;
  DgMask *w = dg_image_alloc (cw, ch, 1);
  if (plan->whole) {
    memset (w->pixels, 255, (gsize) cw * ch);
    return w;
  }
  g_return_val_if_fail (mask != NULL && mask->width == plan->image_width && mask->height == plan->image_height, w);
  if (k == 0) {
    for (int y = 0; y < ch; y++)
      memcpy (w->pixels + (gsize) y * cw, row_of (mask, plan->crop_y + y) + plan->crop_x, cw);
    return w;
  }

  /* Horizontal: S over the crop widened by 3k each side (coordinates clamped into the image:
   * the border repeats; inside the image but outside the crop the mask is 0 anyway, the crop
   * holds its whole bounding box), three passes per row → cw sums per padded row. */
  const int pad = 3 * k, pw = cw + 2 * pad, ph = ch + 2 * pad;
  guint32 *hs = g_new (guint32, (gsize) cw * ph);
  gint64 *a = g_new (gint64, MAX (pw, ph)), *t = g_new (gint64, MAX (pw, ph));
  for (int py = 0; py < ph; py++) {
    const guint8 *r = row_of (mask, CLAMP (plan->crop_y - pad + py, 0, mask->height - 1));
    for (int px = 0; px < pw; px++) a[px] = r[CLAMP (plan->crop_x - pad + px, 0, mask->width - 1)] != 0;
    box3 (a, t, pw, k);
    for (int x = 0; x < cw; x++) hs[(gsize) py * cw + x] = (guint32) a[x];
  }

  /* Vertical, a strip of columns at a time so that the reads follow the rows. */
  enum { STRIP = 32 };
  gint64 *cols = g_new (gint64, (gsize) STRIP * ph);
  const gint64 d = (2 * k + 1) * (gint64) (2 * k + 1) * (2 * k + 1) * (2 * k + 1) * (2 * k + 1) * (2 * k + 1);
  for (int x0 = 0; x0 < cw; x0 += STRIP) {
    const int nb = MIN (STRIP, cw - x0);
    for (int py = 0; py < ph; py++)
      for (int j = 0; j < nb; j++) cols[(gsize) j * ph + py] = hs[(gsize) py * cw + x0 + j];
    for (int j = 0; j < nb; j++) {
      gint64 *c = cols + (gsize) j * ph;
      box3 (c, t, ph, k);
      for (int y = 0; y < ch; y++) {
        /* w = round(m · clamp(2b − 1, 0, 1)) with b = c / d, in integers */
        const gint64 m = row_of (mask, plan->crop_y + y)[plan->crop_x + x0 + j];
        const gint64 num = m * (2 * c[y] - d);
        w->pixels[(gsize) y * cw + x0 + j] = num <= 0 ? 0 : (guint8) ((2 * num + d) / (2 * d));
      }
    }
  }
  g_free (cols);
  g_free (hs);
  g_free (a);
  g_free (t);
  return w;
}

/* The composite of inpaint.h, read from @src inside the crop and written to @dst with the crop's
 * origin at (dst_x, dst_y). @src and @dst may be the same image. */
static gboolean
composite (const DgImage *src, const DgMask *mask, const DgInpaintPlan *plan, const DgImage *generated, DgImage *dst,
           int dst_x, int dst_y, GError **error)
{
  if (!plan->whole && !check_mask (src, mask, error))
    return FALSE;
  if (!dg_image_check (generated, FALSE, _ ("The generated image"), error))
    return FALSE;
  if (generated->width != plan->work_width || generated->height != plan->work_height) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("The generated image is %d×%d, but this inpaint job works at %d×%d."), generated->width,
                 generated->height, plan->work_width, plan->work_height);
    return FALSE;
  }
  g_autoptr (DgImage) rgb = generated->channels == 4 ? dg_image_to_rgb (generated) : NULL;
  g_autoptr (DgImage) back =
      dg_image_resize (rgb ? rgb : generated, plan->crop_width, plan->crop_height, DG_RESAMPLE_BICUBIC);
  g_autoptr (DgImage) w = dg_inpaint_feather (mask, plan);
  const int nc = src->channels;
  for (int y = 0; y < plan->crop_height; y++) {
    const guint8 *s = row_of (src, plan->crop_y + y) + (gsize) plan->crop_x * nc;
    const guint8 *g = row_of (back, y);
    const guint8 *wr = row_of (w, y);
    guint8 *o = dst->pixels + (gsize) (dst_y + y) * dst->rowstride + (gsize) dst_x * nc;
    for (int x = 0; x < plan->crop_width; x++, s += nc, o += nc, g += 3) {
      const guint wv = wr[x];
      if (wv == 0) {
        if (o != s)
          memcpy (o, s, nc);
        continue;
      }
      for (int c = 0; c < 3; c++) o[c] = (guint8) ((s[c] * (255 - wv) + g[c] * wv + 127) / 255);
      if (nc == 4)
        o[3] = s[3];
    }
  }
  return TRUE;
}

static gboolean
check_plan (const DgImage *img, const DgInpaintPlan *plan, GError **error)
{
  if (!dg_image_check (img, FALSE, _ ("The source image"), error))
    return FALSE;
  if (img->width != plan->image_width || img->height != plan->image_height) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("The image is %d×%d, but the inpaint job was planned for %d×%d."), img->width, img->height,
                 plan->image_width, plan->image_height);
    return FALSE;
  }
  return TRUE;
}

gboolean
dg_inpaint_apply (DgImage *image, const DgMask *mask, const DgInpaintPlan *plan, const DgImage *generated,
                  GError **error)
{
  g_return_val_if_fail (plan != NULL, FALSE);
  if (!check_plan (image, plan, error))
    return FALSE;
  return composite (image, mask, plan, generated, image, plan->crop_x, plan->crop_y, error);
}

DgImage *
dg_inpaint_blend (const DgImage *src, const DgMask *mask, const DgInpaintPlan *plan, const DgImage *generated,
                  GError **error)
{
  g_return_val_if_fail (plan != NULL, NULL);
  if (!check_plan (src, plan, error))
    return NULL;
  g_autoptr (DgImage) out = dg_image_alloc (plan->crop_width, plan->crop_height, src->channels);
  if (!composite (src, mask, plan, generated, out, 0, 0, error))
    return NULL;
  return g_steal_pointer (&out);
}
