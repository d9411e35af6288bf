/* Live previews (model/sampling/preview.c, DESIGN.md §9). The expected pixels are worked out by
 * hand from ComfyUI's SD3 table (comfy/latent_formats.py): a pixel is
 * trunc(clamp((Σ_k x0[k]·F[k][c] + bias[c] + 1) / 2, 0, 1) · 255) with x0 = x − σ·v. */
#include <string.h>

#include "preview.h"

static void
test_projection (void)
{
  enum { H = 1, W = 4, C = DG_PREVIEW_LATENT_CHANNELS };
  float x[H * W * C] = { 0 }, v[H * W * C] = { 0 };
  /* pixel 0: all zero → the bias alone: (1.2394, 1.2135, 1.1925) / 2 · 255 = 158.02, 154.72, 152.04 */
  /* pixel 1: channel 0 = 1 → F[0] = (-0.0922, -0.0175, 0.0749): 146.27, 152.49, 161.59 */
  x[1 * C + 0] = 1.0f;
  /* pixel 2: channel 0: x = 1, v = 1, σ = 0.5 → x0 = 0.5: (1.1933, 1.20475, 1.22995) / 2 · 255 =
   * 152.15, 153.61, 156.82 */
  x[2 * C + 0] = 1.0f;
  v[2 * C + 0] = 1.0f;
  /* pixel 3: channel 15 = -20 → F[15] = (-0.1448, -0.1463, -0.1189) · -20 = 2.896, 2.926, 2.378:
   * clamped to 255 */
  x[3 * C + 15] = -20.0f;
  DgImage *img = dg_preview_rgb (x, v, 0.5f, H, W, C);
  g_assert_nonnull (img);
  g_assert_cmpint (img->width, ==, W);
  g_assert_cmpint (img->height, ==, H);
  g_assert_cmpint (img->channels, ==, 3);
  const guint8 want[W][3] = { { 158, 154, 152 }, { 146, 152, 161 }, { 152, 153, 156 }, { 255, 255, 255 } };
  for (int p = 0; p < W; p++)
    for (int c = 0; c < 3; c++) g_assert_cmpuint (img->pixels[p * 3 + c], ==, want[p][c]);
  dg_image_free (img);
}

static void
test_other_widths (void)
{
  float x[4] = { 0 }, v[4] = { 0 };
  g_assert_null (dg_preview_rgb (x, v, 0.5f, 1, 1, 4)); /* no published factors for 4 channels here */
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/preview/projection", test_projection);
  g_test_add_func ("/preview/other-widths", test_other_widths);
  return g_test_run ();
}
