/* Writing an image file for deepgen-studio so that a failure leaves nothing half-written. */
#pragma once

#include <gdk-pixbuf/gdk-pixbuf.h>

G_BEGIN_DECLS

/* Encodes @pixbuf as @type (a gdk-pixbuf saver name: "png", "jpeg" at quality 95, "tiff", "bmp")
 * and writes it to @path through a temporary file in the same folder, flushed and renamed over
 * @path. On failure — a full disk, a read-only folder, @path an existing non-regular file — the
 * error names the file and the cause, no temporary file is left and a file already at @path is
 * as it was. */
gboolean studio_pixbuf_save (GdkPixbuf *pixbuf, const char *path, const char *type, GError **error);
/* The same with a PNG text chunk @key = @text (ignored for other types). */
gboolean studio_pixbuf_save_with_text (GdkPixbuf *pixbuf, const char *path, const char *type, const char *key,
                                       const char *text, GError **error);

G_END_DECLS
