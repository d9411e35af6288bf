/* Live previews in the DeepGen panel (dg_panel_preview.h). */
#include "dg_panel_preview.h"

#include "dg_gettext.h"

struct _DgLivePreview {
  DgImage *rgb;
  int step, n_steps;
};

DgLivePreview *
dg_live_preview_new (const DgImage *rgb, int step, int n_steps)
{
  g_return_val_if_fail (rgb != NULL && rgb->channels == 3, NULL);
  DgImage *copy = dg_image_copy (rgb);
  if (!copy)
    return NULL;
  DgLivePreview *p = g_new (DgLivePreview, 1);
  p->rgb = copy;
  p->step = step, p->n_steps = n_steps;
  return p;
}

void
dg_live_preview_free (DgLivePreview *p)
{
  if (!p)
    return;
  dg_image_free (p->rgb);
  g_free (p);
}

void
dg_live_preview_show (const DgLivePreview *p, GtkImage *image, GtkLabel *caption, int side)
{
  g_return_if_fail (p != NULL && GTK_IS_IMAGE (image) && GTK_IS_LABEL (caption) && side > 0);
  const DgImage *rgb = p->rgb;
  /* The pixbuf borrows the copy, which outlives it (the scaled pixbuf owns its own pixels). */
  g_autoptr (GdkPixbuf) small = gdk_pixbuf_new_from_data (rgb->pixels, GDK_COLORSPACE_RGB, FALSE, 8, rgb->width,
                                                          rgb->height, rgb->rowstride, NULL, NULL);
  /* latent resolution is 1/8 of the image's: bilinear keeps the blur honest (a preview, not detail) */
  const double s = (double) side / MAX (rgb->width, rgb->height);
  g_autoptr (GdkPixbuf) big = gdk_pixbuf_scale_simple (small, MAX (1, (int) (rgb->width * s + 0.5)),
                                                       MAX (1, (int) (rgb->height * s + 0.5)), GDK_INTERP_BILINEAR);
  if (!big)
    return;
  gtk_image_set_from_pixbuf (image, big);
  /* TRANSLATORS: the live preview's caption while the model denoises: step n of N */
  g_autofree char *text =
      g_strdup_printf (_ ("Step %d of %d (a rough preview; the final image follows)"), p->step, p->n_steps);
  gtk_label_set_text (caption, text);
}
