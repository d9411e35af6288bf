/* unit_expand: the expand-canvas geometry (model/image/expand.c): sides from an aspect ratio, the
 * plan's checks on awkward sizes, the canvas and mask the inpaint starts from, and the inpaint
 * composite over them keeping every old pixel bit for bit. */
#include <string.h>

#include "deepgen.h"
#include "image.h"

static DgImage *
make_image (int w, int h, int channels, guint32 seed)
{
  DgImage *img = dg_image_new (w, h, channels);
  guint32 s = seed * 2654435761u + 7;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w * channels; x++) {
      s = s * 1664525u + 1013904223u;
      img->pixels[(gsize) y * img->rowstride + x] = (guint8) (s >> 24);
    }
  return img;
}

static void
assert_invalid (GError *error, const char *fragment)
{
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_test_message ("%s", error->message);
  if (fragment)
    g_assert_nonnull (strstr (error->message, fragment));
  g_error_free (error);
}

static void
expect_sides (int w, int h, int aw, int ah, int left, int top, int right, int bottom)
{
  DgExpandSides s;
  GError *error = NULL;
  g_assert_true (dg_expand_sides_for_aspect (w, h, aw, ah, &s, &error));
  g_assert_no_error (error);
  g_assert_cmpint (s.left, ==, left);
  g_assert_cmpint (s.top, ==, top);
  g_assert_cmpint (s.right, ==, right);
  g_assert_cmpint (s.bottom, ==, bottom);
}

static void
test_aspect (void)
{
  /* 100 · 16 / 9 = 177.8 → 178: 78 more, split evenly */
  expect_sides (100, 100, 16, 9, 39, 0, 39, 0);
  /* odd extra: the odd pixel to the right (178 − 101 = 77) */
  expect_sides (101, 100, 16, 9, 38, 0, 39, 0);
  /* too wide for 1:1: the height grows (300 → 300, 200 more) */
  expect_sides (300, 100, 1, 1, 0, 100, 0, 100);
  /* 161 · 9 / 16 = 90.56 → 91: one pixel, to the bottom */
  expect_sides (161, 90, 16, 9, 0, 0, 0, 1);
  /* a 1-pixel image to 3:1 */
  expect_sides (1, 1, 3, 1, 1, 0, 1, 0);

  GError *error = NULL;
  DgExpandSides s;
  /* already met exactly, and within half a pixel (1001 · 9 / 16 = 563.06 → 563) */
  g_assert_false (dg_expand_sides_for_aspect (160, 90, 16, 9, &s, &error));
  assert_invalid (g_steal_pointer (&error), "16:9");
  g_assert_false (dg_expand_sides_for_aspect (1001, 563, 16, 9, &s, &error));
  assert_invalid (g_steal_pointer (&error), "nothing to add");
  /* a ratio that would need a canvas beyond the limit */
  g_assert_false (dg_expand_sides_for_aspect (100, 100, DG_EXPAND_MAX_SIDE, 1, &s, &error));
  assert_invalid (g_steal_pointer (&error), NULL);
  /* bad terms and sizes */
  g_assert_false (dg_expand_sides_for_aspect (100, 100, 0, 9, &s, &error));
  assert_invalid (g_steal_pointer (&error), NULL);
  g_assert_false (dg_expand_sides_for_aspect (100, 100, 16, -9, &s, &error));
  assert_invalid (g_steal_pointer (&error), NULL);
  g_assert_false (dg_expand_sides_for_aspect (0, 100, 16, 9, &s, &error));
  assert_invalid (g_steal_pointer (&error), NULL);
  g_assert_false (dg_expand_sides_for_aspect (G_MAXINT, G_MAXINT, G_MAXINT, 1, &s, &error));
  assert_invalid (g_steal_pointer (&error), NULL);
}

static void
test_parse_aspect (void)
{
  int a = 0, b = 0;
  GError *error = NULL;
  g_assert_true (dg_expand_parse_aspect ("16:9", &a, &b, &error));
  g_assert_cmpint (a, ==, 16);
  g_assert_cmpint (b, ==, 9);
  g_assert_true (dg_expand_parse_aspect (" 4 x 3 ", &a, &b, &error));
  g_assert_cmpint (a, ==, 4);
  g_assert_cmpint (b, ==, 3);
  g_assert_true (dg_expand_parse_aspect ("3/2", &a, &b, &error));
  g_assert_cmpint (a, ==, 3);
  g_assert_cmpint (b, ==, 2);
  g_assert_no_error (error);
  const char *bad[] = { "", "16", "0:9", "16:0", "a:b", "16:9:1", "-4:3", "99999999999:1", ":", NULL };
  for (guint i = 0; bad[i]; i++) {
    g_assert_false (dg_expand_parse_aspect (bad[i], &a, &b, &error));
    assert_invalid (g_steal_pointer (&error), "WIDTH:HEIGHT");
  }
  g_assert_false (dg_expand_parse_aspect (NULL, &a, &b, &error));
  assert_invalid (g_steal_pointer (&error), NULL);
}

static void
test_plan (void)
{
  DgExpandPlan p;
  GError *error = NULL;
  /* odd sizes, every side different */
  DgExpandSides s = { 1, 2, 3, 4 };
  g_assert_true (dg_expand_plan (33, 17, &s, &p, &error));
  g_assert_no_error (error);
  g_assert_cmpint (p.canvas_width, ==, 37);
  g_assert_cmpint (p.canvas_height, ==, 23);
  g_assert_cmpint (p.image_x, ==, 1);
  g_assert_cmpint (p.image_y, ==, 2);
  g_assert_cmpint (p.image_width, ==, 33);
  g_assert_cmpint (p.image_height, ==, 17);
  /* zero on some sides: one side only */
  DgExpandSides one = { 0, 0, 0, 7 };
  g_assert_true (dg_expand_plan (1, 1, &one, &p, &error));
  g_assert_cmpint (p.canvas_width, ==, 1);
  g_assert_cmpint (p.canvas_height, ==, 8);
  g_assert_cmpint (p.image_x, ==, 0);
  g_assert_cmpint (p.image_y, ==, 0);
  /* exactly at the limit */
  DgExpandSides edge = { DG_EXPAND_MAX_SIDE - 10, 0, 0, 0 };
  g_assert_true (dg_expand_plan (10, 10, &edge, &p, &error));
  g_assert_cmpint (p.canvas_width, ==, DG_EXPAND_MAX_SIDE);

  /* refused: nothing, negative, beyond the limit (also where int would overflow), empty image */
  DgExpandSides zero = { 0, 0, 0, 0 }, neg = { 5, -1, 0, 0 }, huge = { DG_EXPAND_MAX_SIDE - 9, 0, 0, 0 },
                over = { G_MAXINT, 0, G_MAXINT, 0 };
  g_assert_false (dg_expand_plan (10, 10, &zero, &p, &error));
  assert_invalid (g_steal_pointer (&error), "Nothing to expand");
  g_assert_false (dg_expand_plan (10, 10, &neg, &p, &error));
  assert_invalid (g_steal_pointer (&error), "negative");
  g_assert_false (dg_expand_plan (10, 10, &huge, &p, &error));
  assert_invalid (g_steal_pointer (&error), "16384");
  g_assert_false (dg_expand_plan (10, 10, &over, &p, &error));
  assert_invalid (g_steal_pointer (&error), "16384");
  g_assert_false (dg_expand_plan (0, 10, &s, &p, &error));
  assert_invalid (g_steal_pointer (&error), NULL);
  g_assert_false (dg_expand_plan (DG_EXPAND_MAX_SIDE + 1, 10, &s, &p, &error));
  assert_invalid (g_steal_pointer (&error), NULL);
}

/* The canvas: the old pixels at (left, top) bit for bit, each new pixel a copy of the nearest old
 * one, alpha 255 in the new area; the mask 0 exactly over the old image. */
static void
check_canvas (int channels)
{
  const int W = 13, H = 7;
  g_autoptr (DgImage) src = make_image (W, H, channels, 3);
  DgExpandSides s = { 3, 0, 5, 2 };
  DgExpandPlan p;
  g_assert_true (dg_expand_plan (W, H, &s, &p, NULL));
  g_autoptr (DgImage) canvas = dg_expand_canvas (src, &p);
  g_autoptr (DgMask) mask = dg_expand_mask (&p);
  g_assert_cmpint (canvas->width, ==, W + 8);
  g_assert_cmpint (canvas->height, ==, H + 2);
  g_assert_cmpint (canvas->channels, ==, channels);
  g_assert_cmpint (mask->width, ==, W + 8);
  g_assert_cmpint (mask->height, ==, H + 2);
  for (int y = 0; y < canvas->height; y++)
    for (int x = 0; x < canvas->width; x++) {
      const int sx = CLAMP (x - 3, 0, W - 1), sy = CLAMP (y, 0, H - 1);
      const gboolean old = x - 3 == sx && y == sy;
      const guint8 *c = canvas->pixels + (gsize) y * canvas->rowstride + (gsize) x * channels;
      const guint8 *o = src->pixels + (gsize) sy * src->rowstride + (gsize) sx * channels;
      g_assert_cmpmem (c, 3, o, 3);
      if (channels == 4)
        g_assert_cmpuint (c[3], ==, old ? o[3] : 255);
      g_assert_cmpuint (mask->pixels[(gsize) y * mask->rowstride + x], ==, old ? 0 : 255);
    }
}

static void
test_canvas (void)
{
  check_canvas (3);
  check_canvas (4);
}

/* What dg_run's inpaint does with them (plan → blend, with a stand-in for the model's output):
 * every old pixel is the source's bit for bit, the new area takes the generated pixels. */
static void
check_composite (int channels, const DgExpandSides *s)
{
  const int W = 57, H = 31;
  g_autoptr (DgImage) src = make_image (W, H, channels, 11);
  DgExpandPlan p;
  g_assert_true (dg_expand_plan (W, H, s, &p, NULL));
  g_autoptr (DgImage) canvas = dg_expand_canvas (src, &p);
  g_autoptr (DgMask) mask = dg_expand_mask (&p);
  DgInpaintPlan ip;
  GError *error = NULL;
  g_assert_true (dg_inpaint_plan (canvas, mask, NULL, &ip, &error));
  g_assert_no_error (error);
  g_autoptr (DgImage) generated = make_image (ip.work_width, ip.work_height, 3, 99);
  g_autoptr (DgImage) blended = dg_inpaint_blend (canvas, mask, &ip, generated, &error);
  g_assert_no_error (error);
  g_autoptr (DgImage) out = dg_image_copy (canvas);
  for (int y = 0; y < ip.crop_height; y++)
    memcpy (out->pixels + (gsize) (ip.crop_y + y) * out->rowstride + (gsize) ip.crop_x * channels,
            blended->pixels + (gsize) y * blended->rowstride, (gsize) ip.crop_width * channels);
  guint changed = 0, new_pixels = 0;
  for (int y = 0; y < p.canvas_height; y++)
    for (int x = 0; x < p.canvas_width; x++) {
      const guint8 *o = out->pixels + (gsize) y * out->rowstride + (gsize) x * channels;
      const guint8 *c = canvas->pixels + (gsize) y * canvas->rowstride + (gsize) x * channels;
      const int ix = x - p.image_x, iy = y - p.image_y;
      if (ix >= 0 && ix < W && iy >= 0 && iy < H)
        g_assert_cmpmem (o, channels, src->pixels + (gsize) iy * src->rowstride + (gsize) ix * channels, channels);
      else {
        new_pixels++;
        changed += memcmp (o, c, 3) != 0;
        if (channels == 4)
          g_assert_cmpuint (o[3], ==, 255);
      }
    }
  g_assert_cmpuint (new_pixels, ==, (guint) (p.canvas_width * p.canvas_height - W * H));
  g_assert_cmpuint (changed, >, new_pixels / 2);
}

static void
test_composite (void)
{
  const DgExpandSides all = { 10, 3, 7, 20 }, right = { 0, 0, 40, 0 }, top = { 0, 1, 0, 0 };
  check_composite (3, &all);
  check_composite (4, &all);
  check_composite (3, &right);
  check_composite (4, &top);
}

static void
test_instruction (void)
{
  g_autofree char *plain = dg_expand_instruction (NULL), *blank = dg_expand_instruction ("  \t"),
                  *with = dg_expand_instruction (" a beach at sunset ");
  g_assert_cmpstr (plain, ==, blank);
  g_assert_true (g_str_has_prefix (with, plain));
  g_assert_true (g_str_has_suffix (with, " a beach at sunset"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/expand/aspect", test_aspect);
  g_test_add_func ("/expand/parse-aspect", test_parse_aspect);
  g_test_add_func ("/expand/plan", test_plan);
  g_test_add_func ("/expand/canvas", test_canvas);
  g_test_add_func ("/expand/composite", test_composite);
  g_test_add_func ("/expand/instruction", test_instruction);
  return g_test_run ();
}
