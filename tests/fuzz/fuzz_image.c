/* libFuzzer target: the image and mask files the CLI reads (cli/image_io.c: gdk-pixbuf, then our
 * checks). The first byte picks the file name's extension (.png, .jpg, .bmp, .tif, .gif) and
 * whether it is read as an image or as a mask; the rest is the file. Every input must give either
 * an image whose size and rows are consistent or an error with a message, never a crash or an
 * allocation past the image-size limit. */
#include <string.h>

#include "deepgen.h"
#include "fuzz_input_file.h"
#include "image_io.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const char *const names[] = { "in.png", "in.jpg", "in.bmp", "in.tif", "in.gif" };
  if (size == 0)
    return 0;
  g_autofree char *path = fuzz_write_file (names[data[0] % G_N_ELEMENTS (names)], data + 1, size - 1);
  GError *error = NULL;
  gboolean as_mask = data[0] / G_N_ELEMENTS (names) % 2;
  DgImage *img = as_mask ? cli_mask_load (path, &error) : cli_image_load (path, &error);
  if (!img) {
    FUZZ_CHECK (error && error->message[0]);
    g_error_free (error);
    return 0;
  }
  FUZZ_CHECK (error == NULL);
  FUZZ_CHECK (img->width >= 1 && img->height >= 1);
  FUZZ_CHECK (as_mask ? img->channels == 1 : img->channels == 3 || img->channels == 4);
  FUZZ_CHECK (img->rowstride >= img->width * img->channels);
  /* every row readable */
  volatile guint8 sum = 0;
  for (int y = 0; y < img->height; y++)
    sum += img->pixels[(gsize) y * img->rowstride + (gsize) img->width * img->channels - 1];
  dg_image_free (img);
  return 0;
}
