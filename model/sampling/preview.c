/* Live previews (preview.h). */
#include "preview.h"

/* SD3's latent-to-RGB factors and bias as ComfyUI publishes them (comfy/latent_formats.py, class
 * SD3: latent_rgb_factors, latent_rgb_factors_bias), for latents in the DiT's (scaled and shifted)
 * space; rgb[c] = Σ_k x[k] · F[k][c] + bias[c], then ((rgb + 1) / 2) clamped to [0, 1] · 255 and
 * truncated to 8 bits, as its preview_to_image does. */
static const float SD3_RGB[DG_PREVIEW_LATENT_CHANNELS][3] = {
  { -0.0922f, -0.0175f, 0.0749f },  { 0.0311f, 0.0633f, 0.0954f },    { 0.1994f, 0.0927f, 0.0458f },
  { 0.0856f, 0.0339f, 0.0902f },    { 0.0587f, 0.0272f, -0.0496f },   { -0.0006f, 0.1104f, 0.0309f },
  { 0.0978f, 0.0306f, 0.0427f },    { -0.0042f, 0.1038f, 0.1358f },   { -0.0194f, 0.0020f, 0.0669f },
  { -0.0488f, 0.0130f, -0.0268f },  { 0.0922f, 0.0988f, 0.0951f },    { -0.0278f, 0.0524f, -0.0542f },
  { 0.0332f, 0.0456f, 0.0895f },    { -0.0069f, -0.0030f, -0.0810f }, { -0.0596f, -0.0465f, -0.0293f },
  { -0.1448f, -0.1463f, -0.1189f },
};
static const float SD3_RGB_BIAS[3] = { 0.2394f, 0.2135f, 0.1925f };

DgImage *
dg_preview_rgb (const float *x, const float *v, float sigma, int lh, int lw, int channels)
{
  if (channels != DG_PREVIEW_LATENT_CHANNELS || lh < 1 || lw < 1)
    return NULL;
  DgImage *img = dg_image_new (lw, lh, 3);
  if (!img)
    return NULL;
  for (int y = 0; y < lh; y++) {
    guint8 *out = img->pixels + (gsize) y * img->rowstride;
    for (int px = 0; px < lw; px++, out += 3) {
      const gsize at = ((gsize) y * lw + px) * DG_PREVIEW_LATENT_CHANNELS;
      float rgb[3] = { SD3_RGB_BIAS[0], SD3_RGB_BIAS[1], SD3_RGB_BIAS[2] };
      for (int k = 0; k < DG_PREVIEW_LATENT_CHANNELS; k++) {
        const float x0 = x[at + k] - sigma * v[at + k];
        for (int c = 0; c < 3; c++) rgb[c] += x0 * SD3_RGB[k][c];
      }
      for (int c = 0; c < 3; c++) {
        const float u = CLAMP ((rgb[c] + 1.0f) / 2.0f, 0.0f, 1.0f) * 255.0f;
        out[c] = (guint8) u; /* truncation, as torch's cast to uint8 */
      }
    }
  }
  return img;
}
