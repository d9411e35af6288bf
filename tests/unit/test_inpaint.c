/* unit_inpaint: the inpaint plan (crop, context, working size), the inward feather and the
 * composite (model/image/inpaint.h): pixels outside the mask stay bit-identical, the edge ramps
 * monotonically over the feather radius, alpha is carried through. */
#include <math.h>
#include <string.h>

#include "image.h"
#include "inpaint.h"

static DgImage *
make_image (int w, int h, int channels, guint32 seed)
{
  DgImage *img = dg_image_new (w, h, channels);
  guint32 s = seed * 2654435761u + 7;
  for (gsize i = 0; i < (gsize) img->rowstride * h; i++) {
    s = s * 1664525u + 1013904223u;
    img->pixels[i] = (guint8) (s >> 24);
  }
  return img;
}

static DgMask *
mask_rect (int w, int h, int x0, int y0, int rw, int rh, guint8 value)
{
  DgMask *m = dg_image_new (w, h, 1);
  for (int y = y0; y < y0 + rh; y++) memset (m->pixels + (gsize) y * m->rowstride + x0, value, rw);
  return m;
}

static DgMask *
mask_disc (int w, int h, double cx, double cy, double r)
{
  DgMask *m = dg_image_new (w, h, 1);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      /* a soft edge of about two pixels, like an antialiased GIMP selection */
      double d = sqrt ((x - cx) * (x - cx) + (y - cy) * (y - cy));
      double v = CLAMP (r - d, 0.0, 2.0) / 2.0;
      m->pixels[(gsize) y * m->rowstride + x] = (guint8) floor (255.0 * v + 0.5);
    }
  return m;
}

/* The invariants every plan must satisfy. */
static void
assert_plan_sane (const DgInpaintPlan *p)
{
  g_assert_cmpint (p->box_x, >=, p->crop_x);
  g_assert_cmpint (p->box_y, >=, p->crop_y);
  g_assert_cmpint (p->box_x + p->box_width, <=, p->crop_x + p->crop_width);
  g_assert_cmpint (p->box_y + p->box_height, <=, p->crop_y + p->crop_height);
  g_assert_cmpint (p->crop_x, >=, 0);
  g_assert_cmpint (p->crop_y, >=, 0);
  g_assert_cmpint (p->crop_x + p->crop_width, <=, p->image_width);
  g_assert_cmpint (p->crop_y + p->crop_height, <=, p->image_height);
  g_assert_cmpint (p->work_width % 32, ==, 0);
  g_assert_cmpint (p->work_height % 32, ==, 0);
  g_assert_cmpint (p->work_width, >=, 32);
  g_assert_cmpint (p->work_height, >=, 32);
  g_assert_cmpint (p->work_width, <=, DG_INPAINT_MAX_WORK_SIDE);
  g_assert_cmpint (p->work_height, <=, DG_INPAINT_MAX_WORK_SIDE);
  g_assert_cmpint (p->feather, ==, 3 * p->blur_half);
}

static void
test_plan_centre (void)
{
  g_autoptr (DgImage) src = make_image (1000, 800, 3, 1);
  g_autoptr (DgImage) mask = mask_rect (1000, 800, 400, 300, 200, 100, 255);
  DgInpaintPlan p;
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_inpaint_plan (src, mask, NULL, &p, &error));
  g_assert_no_error (error);
  assert_plan_sane (&p);
  g_assert_cmpint (p.box_x, ==, 400);
  g_assert_cmpint (p.box_y, ==, 300);
  g_assert_cmpint (p.box_width, ==, 200);
  g_assert_cmpint (p.box_height, ==, 100);
  /* context: 25 % of the longer side = 50 px on every side, at least */
  g_assert_cmpint (p.crop_x, <=, 350);
  g_assert_cmpint (p.crop_y, <=, 250);
  g_assert_cmpint (p.crop_x + p.crop_width, >=, 650);
  g_assert_cmpint (p.crop_y + p.crop_height, >=, 450);
  /* near the native 512² area, the aspect of the crop */
  double area = (double) p.work_width * p.work_height;
  g_assert_cmpfloat (area, >=, 0.75 * 512 * 512);
  g_assert_cmpfloat (area, <=, 1.3 * 512 * 512);
  double crop_aspect = (double) p.crop_width / p.crop_height, work_aspect = (double) p.work_width / p.work_height;
  g_assert_cmpfloat (fabs (crop_aspect / work_aspect - 1.0), <, 0.01);
  g_assert_cmpint (p.feather, ==, 9); /* default 8 → three passes of k = 3 */
  g_assert_false (p.whole);

  /* the model's input: the crop, PIL bicubic to the working size */
  g_autoptr (DgImage) in = dg_inpaint_prepare (src, &p);
  g_assert_cmpint (in->width, ==, p.work_width);
  g_assert_cmpint (in->height, ==, p.work_height);
  g_assert_cmpint (in->channels, ==, 3);
  g_autoptr (DgImage) crop = dg_image_crop (src, p.crop_x, p.crop_y, p.crop_width, p.crop_height);
  g_autoptr (DgImage) want = dg_image_resize (crop, p.work_width, p.work_height, DG_RESAMPLE_BICUBIC);
  g_assert_cmpmem (in->pixels, (gsize) in->rowstride * in->height, want->pixels,
                   (gsize) want->rowstride * want->height);
}

static void
test_plan_borders (void)
{
  const int w = 900, h = 600;
  g_autoptr (DgImage) src = make_image (w, h, 4, 2);
  /* corners, edges, a full-height strip, a full-width strip */
  const int rects[][4] = {
    { 0, 0, 10, 10 }, { w - 10, h - 10, 10, 10 }, { 0, h - 5, 30, 5 }, { w - 1, 0, 1, 1 },
    { 0, 0, 3, h },   { 0, 200, w, 3 },           { 0, 0, w, h },      { 440, 0, 20, 20 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (rects); i++) {
    g_autoptr (DgImage) mask = mask_rect (w, h, rects[i][0], rects[i][1], rects[i][2], rects[i][3], 255);
    DgInpaintPlan p;
    g_autoptr (GError) error = NULL;
    g_assert_true (dg_inpaint_plan (src, mask, NULL, &p, &error));
    assert_plan_sane (&p);
    g_assert_cmpint (p.box_x, ==, rects[i][0]);
    g_assert_cmpint (p.box_y, ==, rects[i][1]);
    g_assert_cmpint (p.box_width, ==, rects[i][2]);
    g_assert_cmpint (p.box_height, ==, rects[i][3]);
    /* small masks get at least 256 px of crop (2× upscale cap), where the image has it */
    g_assert_cmpint (p.crop_width, >=, MIN (256, w));
    g_assert_cmpint (p.crop_height, >=, MIN (256, h));
  }
}

static void
test_plan_single_pixel (void)
{
  g_autoptr (DgImage) src = make_image (300, 200, 3, 3);
  g_autoptr (DgImage) mask = mask_rect (300, 200, 150, 100, 1, 1, 200);
  DgInpaintPlan p;
  g_assert_true (dg_inpaint_plan (src, mask, NULL, &p, NULL));
  assert_plan_sane (&p);
  g_assert_cmpint (p.box_width, ==, 1);
  g_assert_cmpint (p.blur_half, ==, 0); /* the feather never erases a small selection */
  /* crop grows to 256 but the image is only 200 high: the whole height, 2× upscale cap */
  g_assert_cmpint (p.crop_height, ==, 200);
  g_assert_cmpint (p.work_height, <=, 416);
  g_autoptr (DgImage) w = dg_inpaint_feather (mask, &p);
  for (int y = 0; y < p.crop_height; y++)
    for (int x = 0; x < p.crop_width; x++) {
      int v = w->pixels[(gsize) y * w->rowstride + x];
      gboolean at = p.crop_x + x == 150 && p.crop_y + y == 100;
      g_assert_cmpint (v, ==, at ? 200 : 0);
    }
}

static void
test_plan_empty_and_errors (void)
{
  g_autoptr (DgImage) src = make_image (64, 48, 3, 4);
  g_autoptr (DgImage) empty = dg_image_new (64, 48, 1);
  DgInpaintPlan p;
  g_autoptr (GError) error = NULL;
  g_assert_false (dg_inpaint_plan (src, empty, NULL, &p, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "empty"));
  g_clear_error (&error);
  g_assert_false (dg_inpaint_plan (src, NULL, NULL, &p, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* "no selection" = the whole layer, when the caller asks for it */
  DgInpaintOptions o = DG_INPAINT_OPTIONS_INIT;
  o.empty_is_whole = TRUE;
  g_assert_true (dg_inpaint_plan (src, empty, &o, &p, &error));
  g_assert_true (p.whole);
  g_assert_cmpint (p.crop_width, ==, 64);
  g_assert_cmpint (p.crop_height, ==, 48);
  g_assert_cmpint (p.box_width, ==, 64);
  g_assert_true (dg_inpaint_plan (src, NULL, &o, &p, &error));
  g_assert_true (p.whole);

  /* wrong mask size or channels, bad source */
  g_autoptr (DgImage) small = dg_image_new (63, 48, 1);
  g_assert_false (dg_inpaint_plan (src, small, NULL, &p, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_autoptr (DgImage) rgb_mask = make_image (64, 48, 3, 5);
  g_assert_false (dg_inpaint_plan (src, rgb_mask, NULL, &p, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dg_inpaint_plan (NULL, empty, NULL, &p, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* a generated image of the wrong size */
  g_autoptr (DgImage) mask = mask_rect (64, 48, 10, 10, 5, 5, 255);
  g_assert_true (dg_inpaint_plan (src, mask, NULL, &p, &error));
  g_autoptr (DgImage) gen = make_image (p.work_width + 32, p.work_height, 3, 6);
  g_assert_false (dg_inpaint_apply (src, mask, &p, gen, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (dg_inpaint_blend (src, NULL, &p, gen, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_autoptr (DgImage) other = make_image (65, 48, 3, 7);
  g_autoptr (DgImage) gen_ok = make_image (p.work_width, p.work_height, 3, 8);
  g_assert_false (dg_inpaint_apply (other, mask, &p, gen_ok, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
}

/* Full mask and the whole-image mode: the result is the generated image resized back, exactly. */
static void
test_full_mask (void)
{
  g_autoptr (DgImage) src = make_image (200, 150, 4, 9);
  g_autoptr (DgImage) full = mask_rect (200, 150, 0, 0, 200, 150, 255);
  for (int mode = 0; mode < 2; mode++) {
    DgInpaintOptions o = DG_INPAINT_OPTIONS_INIT;
    o.empty_is_whole = TRUE;
    g_autoptr (DgImage) empty = dg_image_new (200, 150, 1);
    const DgMask *m = mode == 0 ? full : empty;
    DgInpaintPlan p;
    g_assert_true (dg_inpaint_plan (src, m, &o, &p, NULL));
    g_assert_cmpint (p.crop_width, ==, 200);
    g_assert_cmpint (p.crop_height, ==, 150);
    g_autoptr (DgImage) gen = make_image (p.work_width, p.work_height, 3, 10);
    g_autoptr (DgImage) back = dg_image_resize (gen, 200, 150, DG_RESAMPLE_BICUBIC);
    g_autoptr (DgImage) out = dg_image_copy (src);
    g_assert_true (dg_inpaint_apply (out, m, &p, gen, NULL));
    for (int i = 0; i < 200 * 150; i++) {
      g_assert_cmpmem (out->pixels + i * 4, 3, back->pixels + i * 3, 3);
      g_assert_cmpuint (out->pixels[i * 4 + 3], ==, src->pixels[i * 4 + 3]);
    }
  }
}

/* Outside the mask: bit-identical; alpha: untouched everywhere; blend = apply on the crop. */
static void
test_composite_invariants (void)
{
  const int w = 640, h = 480;
  for (int channels = 3; channels <= 4; channels++) {
    g_autoptr (DgImage) src = make_image (w, h, channels, 11);
    g_autoptr (DgImage) mask = mask_disc (w, h, 500.0, 120.0, 70.0);
    DgInpaintPlan p;
    g_assert_true (dg_inpaint_plan (src, mask, NULL, &p, NULL));
    assert_plan_sane (&p);
    g_autoptr (DgImage) gen = make_image (p.work_width, p.work_height, 4, 12); /* its alpha is ignored */
    g_autoptr (DgImage) out = dg_image_copy (src);
    g_autoptr (GError) error = NULL;
    g_assert_true (dg_inpaint_apply (out, mask, &p, gen, &error));
    g_assert_no_error (error);
    g_autoptr (DgImage) patch = dg_inpaint_blend (src, mask, &p, gen, &error);
    g_assert_no_error (error);
    g_assert_cmpint (patch->channels, ==, channels);
    gsize changed = 0;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        const guint8 *s = src->pixels + (gsize) y * src->rowstride + x * channels;
        const guint8 *o = out->pixels + (gsize) y * out->rowstride + x * channels;
        if (mask->pixels[(gsize) y * mask->rowstride + x] == 0)
          g_assert_cmpmem (o, channels, s, channels);
        else
          changed += memcmp (o, s, channels) != 0;
        if (channels == 4)
          g_assert_cmpuint (o[3], ==, s[3]);
        gboolean in_crop =
            x >= p.crop_x && x < p.crop_x + p.crop_width && y >= p.crop_y && y < p.crop_y + p.crop_height;
        if (in_crop)
          g_assert_cmpmem (patch->pixels + (gsize) (y - p.crop_y) * patch->rowstride + (x - p.crop_x) * channels,
                           channels, o, channels);
      }
    g_assert_cmpuint (changed, >, 10000); /* the disc (≈15 000 px) did change */
  }
}

/* A straight vertical edge: the weight is 0 outside, rises monotonically over the feather
 * radius, reaches the mask value, and is the same on every row (the image border is no edge). */
static void
test_feather_edge_profile (void)
{
  const int w = 400, h = 300, edge = 200;
  g_autoptr (DgImage) src = make_image (w, h, 3, 13);
  g_autoptr (DgImage) mask = mask_rect (w, h, edge, 0, w - edge, h, 255);
  for (int radius = 0; radius <= 24; radius += 4) {
    DgInpaintOptions o = DG_INPAINT_OPTIONS_INIT;
    o.feather = radius;
    DgInpaintPlan p;
    g_assert_true (dg_inpaint_plan (src, mask, &o, &p, NULL));
    g_assert_cmpint (p.feather, ==, 3 * ((radius + 2) / 3));
    g_autoptr (DgImage) f = dg_inpaint_feather (mask, &p);
    const guint8 *row0 = f->pixels;
    int max_step = 0;
    for (int x = 0; x < p.crop_width; x++) {
      int sx = p.crop_x + x, v = row0[x];
      if (sx < edge)
        g_assert_cmpint (v, ==, 0);
      else if (sx >= edge + p.feather)
        g_assert_cmpint (v, ==, 255);
      else
        g_assert_cmpint (v, >, 0); /* the first inside pixel already blends a little */
      if (x > 0) {
        g_assert_cmpint (v, >=, row0[x - 1]);
        max_step = MAX (max_step, v - row0[x - 1]);
      }
    }
    for (int y = 1; y < p.crop_height; y++)
      g_assert_cmpmem (f->pixels + (gsize) y * f->rowstride, p.crop_width, row0, p.crop_width);
    /* smooth: no step larger than a hard edge spread evenly over a third of the ramp would give */
    if (p.feather > 0)
      g_assert_cmpint (max_step, <=, 3 * 255 / p.feather + 1);
    g_test_message ("feather %d (ramp %d px): largest step %d", radius, p.feather, max_step);
  }
}

/* The feather scales a soft mask, never raises it, and leaves its zeros alone. */
static void
test_feather_soft_mask (void)
{
  const int w = 300, h = 300;
  g_autoptr (DgImage) src = make_image (w, h, 3, 14);
  g_autoptr (DgImage) mask = mask_disc (w, h, 150.0, 150.0, 80.0);
  for (int y = 100; y < 200; y++) /* a half-strength core */
    for (int x = 100; x < 200; x++) mask->pixels[y * w + x] = 128;
  DgInpaintPlan p;
  g_assert_true (dg_inpaint_plan (src, mask, NULL, &p, NULL));
  g_autoptr (DgImage) f = dg_inpaint_feather (mask, &p);
  for (int y = 0; y < p.crop_height; y++)
    for (int x = 0; x < p.crop_width; x++) {
      int m = mask->pixels[(p.crop_y + y) * w + p.crop_x + x], v = f->pixels[y * p.crop_width + x];
      g_assert_cmpint (v, <=, m);
      if (m == 0)
        g_assert_cmpint (v, ==, 0);
    }
  g_assert_cmpint (f->pixels[(150 - p.crop_y) * p.crop_width + 150 - p.crop_x], ==, 128);
  g_assert_cmpint (f->pixels[(150 - p.crop_y) * p.crop_width + 90 - p.crop_x], ==, 255);
}

/* A large image with a small mask: the plan, the model input and the patch stay small. */
static void
test_large_image_bounded (void)
{
  const int w = 4000, h = 3000;
  g_autoptr (DgImage) src = make_image (w, h, 3, 15);
  g_autoptr (DgImage) mask = mask_rect (w, h, 3100, 700, 120, 90, 255);
  DgInpaintPlan p;
  g_assert_true (dg_inpaint_plan (src, mask, NULL, &p, NULL));
  assert_plan_sane (&p);
  g_assert_cmpint (p.crop_width, <=, 400);
  g_assert_cmpint (p.crop_height, <=, 400);
  g_assert_cmpint ((gint64) p.work_width * p.work_height, <=, 2 * 512 * 512);
  g_autoptr (DgImage) gen = make_image (p.work_width, p.work_height, 3, 16);
  g_autoptr (DgImage) patch = dg_inpaint_blend (src, mask, &p, gen, NULL);
  g_assert_cmpint (patch->width, ==, p.crop_width);

  /* a large selection: the working size stays near 512² and within the side cap */
  g_autoptr (DgImage) big = mask_rect (w, h, 100, 100, 3800, 600, 255);
  g_assert_true (dg_inpaint_plan (src, big, NULL, &p, NULL));
  assert_plan_sane (&p);
  g_assert_cmpint ((gint64) p.work_width * p.work_height, <=, 2 * 512 * 512);
  g_assert_cmpint (p.crop_width, ==, w); /* the aspect limit widened the crop to the image */
  g_assert_cmpfloat ((double) MAX (p.crop_width, p.crop_height) / MIN (p.crop_width, p.crop_height), <=, 2.01);

  /* an extreme strip image: nothing to grow into; the side cap holds */
  g_autoptr (DgImage) strip = make_image (20000, 40, 3, 17);
  g_autoptr (DgImage) smask = mask_rect (20000, 40, 0, 0, 20000, 40, 255);
  g_assert_true (dg_inpaint_plan (strip, smask, NULL, &p, NULL));
  assert_plan_sane (&p);
  g_assert_cmpint (p.work_width, ==, DG_INPAINT_MAX_WORK_SIDE);
}

/* prepare → an edit that changes nothing → apply gives the source back up to resampling blur:
 * the crop, the working size and the way back line up (no shift, no stretch). */
static void
round_trip (int w, int h, double cx, double cy, double r, int tolerance)
{
  g_autoptr (DgImage) src = dg_image_new (w, h, 4);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      guint8 *p = src->pixels + (gsize) y * src->rowstride + x * 4;
      p[0] = (guint8) (x * 255 / (w - 1));
      p[1] = (guint8) (y * 255 / (h - 1));
      p[2] = (guint8) (127.5 + 100 * sin (x / 40.0) * cos (y / 30.0));
      p[3] = (guint8) ((x + y) % 256);
    }
  g_autoptr (DgImage) mask = mask_disc (w, h, cx, cy, r);
  DgInpaintPlan p;
  g_assert_true (dg_inpaint_plan (src, mask, NULL, &p, NULL));
  g_autoptr (DgImage) in = dg_inpaint_prepare (src, &p);
  g_autoptr (DgImage) out = dg_image_copy (src);
  g_assert_true (dg_inpaint_apply (out, mask, &p, in, NULL));
  int max_err = 0;
  for (gsize i = 0; i < (gsize) w * h * 4; i++)
    max_err = MAX (max_err, ABS ((int) out->pixels[i] - (int) src->pixels[i]));
  g_test_message ("identity edit: largest difference %d levels (crop %d×%d ↔ work %d×%d)", max_err, p.crop_width,
                  p.crop_height, p.work_width, p.work_height);
  g_assert_cmpint (max_err, <=, tolerance);
}

/* prepare → an edit that changes nothing → apply gives the source back up to resampling blur:
 * the crop, the working size and the way back line up (no shift, no stretch), when the model
 * works above the crop's resolution and below it. */
static void
test_round_trip_geometry (void)
{
  round_trip (500, 360, 180.0, 200.0, 60.0, 1);    /* crop 256² ↔ 512² */
  round_trip (1600, 1200, 700.0, 600.0, 400.0, 4); /* crop ≈ 1000² ↔ ≈ 512² */
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/inpaint/plan/centre", test_plan_centre);
  g_test_add_func ("/inpaint/plan/borders", test_plan_borders);
  g_test_add_func ("/inpaint/plan/single-pixel", test_plan_single_pixel);
  g_test_add_func ("/inpaint/plan/empty-and-errors", test_plan_empty_and_errors);
  g_test_add_func ("/inpaint/plan/large-image", test_large_image_bounded);
  g_test_add_func ("/inpaint/composite/full-mask", test_full_mask);
  g_test_add_func ("/inpaint/composite/invariants", test_composite_invariants);
  g_test_add_func ("/inpaint/composite/round-trip-geometry", test_round_trip_geometry);
  g_test_add_func ("/inpaint/feather/edge-profile", test_feather_edge_profile);
  g_test_add_func ("/inpaint/feather/soft-mask", test_feather_soft_mask);
  return g_test_run ();
}
