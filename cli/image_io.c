/* Image files through gdk-pixbuf (image_io.h). */
#include "image_io.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>

#include "cli_i18n.h"

G_LOCK_DEFINE_STATIC (tmp_lock);
static char *tmp_path; /* the temporary file of the save in progress */

static GdkPixbuf *
load_pixbuf (const char *path, GError **error)
{
  /* The header first: a file that claims a huge size is refused before gdk-pixbuf allocates it. */
  int claimed_w = 0, claimed_h = 0;
  if (gdk_pixbuf_get_file_info (path, &claimed_w, &claimed_h) &&
      (gint64) claimed_w * claimed_h > CLI_MAX_IMAGE_PIXELS) {
    g_autofree char *name = g_filename_display_name (path);
    g_set_error (error, GDK_PIXBUF_ERROR, GDK_PIXBUF_ERROR_INSUFFICIENT_MEMORY,
                 _ ("The image %s is %d×%d pixels (%.0f megapixels); the largest image deepgen reads is "
                    "%d megapixels. Scale it down first (DeepGen works at up to 6144 pixels a side)."),
                 name, claimed_w, claimed_h, (double) claimed_w * claimed_h / 1e6, CLI_MAX_IMAGE_PIXELS / 1000000);
    return NULL;
  }
  g_autoptr (GError) e = NULL;
  g_autoptr (GdkPixbuf) raw = gdk_pixbuf_new_from_file (path, &e);
  if (!raw) {
    g_autofree char *name = g_filename_display_name (path);
    /* gdk-pixbuf's own message names the file already in most cases; say what to do. */
    g_set_error (error, e->domain, e->code, _ ("Cannot read the image %s: %s"), name, e->message);
    return NULL;
  }
  GdkPixbuf *oriented = gdk_pixbuf_apply_embedded_orientation (raw);
  if (gdk_pixbuf_get_bits_per_sample (oriented) != 8 || gdk_pixbuf_get_colorspace (oriented) != GDK_COLORSPACE_RGB) {
    g_autofree char *name = g_filename_display_name (path);
    g_set_error (error, GDK_PIXBUF_ERROR, GDK_PIXBUF_ERROR_UNKNOWN_TYPE,
                 _ ("Cannot read the image %s: only 8-bit RGB images are supported"), name);
    g_object_unref (oriented);
    return NULL;
  }
  return oriented;
}

DgImage *
cli_image_load (const char *path, GError **error)
{
  g_autoptr (GdkPixbuf) pb = load_pixbuf (path, error);
  if (!pb)
    return NULL;
  const int w = gdk_pixbuf_get_width (pb), h = gdk_pixbuf_get_height (pb), ch = gdk_pixbuf_get_n_channels (pb);
  const int stride = gdk_pixbuf_get_rowstride (pb);
  DgImage *img = dg_image_new (w, h, ch);
  if (!img) {
    g_autofree char *name = g_filename_display_name (path);
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOMEM, _ ("Not enough memory for the image %s (%d×%d)"), name, w, h);
    return NULL;
  }
  const guint8 *src = gdk_pixbuf_read_pixels (pb);
  for (int y = 0; y < h; y++)
    memcpy (img->pixels + (gsize) y * img->rowstride, src + (gsize) y * stride, (gsize) w * ch);
  return img;
}

DgMask *
cli_mask_load (const char *path, GError **error)
{
  g_autoptr (GdkPixbuf) pb = load_pixbuf (path, error);
  if (!pb)
    return NULL;
  const int w = gdk_pixbuf_get_width (pb), h = gdk_pixbuf_get_height (pb), ch = gdk_pixbuf_get_n_channels (pb);
  const int stride = gdk_pixbuf_get_rowstride (pb);
  DgMask *mask = dg_image_new (w, h, 1);
  if (!mask) {
    g_autofree char *name = g_filename_display_name (path);
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOMEM, _ ("Not enough memory for the mask %s (%d×%d)"), name, w, h);
    return NULL;
  }
  const guint8 *src = gdk_pixbuf_read_pixels (pb);
  for (int y = 0; y < h; y++) {
    const guint8 *s = src + (gsize) y * stride;
    guint8 *d = mask->pixels + (gsize) y * mask->rowstride;
    for (int x = 0; x < w; x++, s += ch) {
      guint lum = (299u * s[0] + 587u * s[1] + 114u * s[2] + 500u) / 1000u;
      d[x] = (guint8) (ch == 4 ? (lum * s[3] + 127u) / 255u : lum);
    }
  }
  return mask;
}

gboolean
cli_output_writable (const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *name = g_filename_display_name (path);
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_ISDIR, _ ("Cannot write %s: it is a folder"), name);
    return FALSE;
  }
  /* The result is written beside it and renamed over it: a device or a pipe (/dev/null, a FIFO)
   * would be replaced by a file, so only a regular file may be overwritten. */
  if (g_file_test (path, G_FILE_TEST_EXISTS) && !g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_EXIST, _ ("Cannot write %s: it exists and is not a regular file"),
                 name);
    return FALSE;
  }
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_autofree char *dname = g_filename_display_name (dir);
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, _ ("Cannot write %s: the folder %s does not exist"), name,
                 dname);
    return FALSE;
  }
  if (access (dir, W_OK | X_OK) != 0) {
    int err = errno;
    g_autofree char *dname = g_filename_display_name (dir);
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (err), _ ("Cannot write into the folder %s: %s"), dname,
                 g_strerror (err));
    return FALSE;
  }
  return TRUE;
}

static void
set_tmp (char *path)
{
  G_LOCK (tmp_lock);
  g_free (tmp_path);
  tmp_path = path;
  G_UNLOCK (tmp_lock);
}

void
cli_image_save_abort (void)
{
  G_LOCK (tmp_lock);
  if (tmp_path)
    g_unlink (tmp_path);
  g_clear_pointer (&tmp_path, g_free);
  G_UNLOCK (tmp_lock);
}

static mode_t
file_mode (void)
{
  /* What open (…, 0666) would give: the process umask applied (read without changing it, as
   * far as POSIX allows: set and restore at once). */
  static mode_t mask = (mode_t) -1;
  if (mask == (mode_t) -1) {
    mask = umask (022);
    umask (mask);
  }
  return 0666 & ~mask;
}

gboolean
cli_image_save (const DgImage *img, const char *path, const char *type, GError **error)
{
  return cli_image_save_with_text (img, path, type, NULL, NULL, error);
}

char *
cli_image_read_text (const char *path, const char *key, GError **error)
{
  g_autoptr (GdkPixbuf) pb = load_pixbuf (path, error);
  if (!pb)
    return NULL;
  g_autofree char *option = g_strconcat ("tEXt::", key, NULL);
  const char *text = gdk_pixbuf_get_option (pb, option);
  if (!text) {
    g_autofree char *name = g_filename_display_name (path);
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                 _ ("%s holds no DeepGen parameters (only PNG files written by DeepGen do)"), name);
    return NULL;
  }
  return g_strdup (text);
}

gboolean
cli_image_save_with_text (const DgImage *img, const char *path, const char *type, const char *key, const char *text,
                          GError **error)
{
  g_autofree char *name = g_filename_display_name (path);
  g_autoptr (DgImage) rgb = NULL;
  const DgImage *src = img;
  if (strcmp (type, "jpeg") == 0 && img->channels == 4) {
    rgb = dg_image_new (img->width, img->height, 3);
    if (!rgb) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOMEM, _ ("Not enough memory to write %s"), name);
      return FALSE;
    }
    for (int y = 0; y < img->height; y++)
      for (int x = 0; x < img->width; x++)
        memcpy (rgb->pixels + (gsize) y * rgb->rowstride + 3 * x, img->pixels + (gsize) y * img->rowstride + 4 * x, 3);
    src = rgb;
  }
  g_autoptr (GdkPixbuf) pb = gdk_pixbuf_new_from_data (src->pixels, GDK_COLORSPACE_RGB, src->channels == 4, 8,
                                                       src->width, src->height, src->rowstride, NULL, NULL);
  /* Encoded in memory, then written with plain writes: a full disk or an I/O error is reported
   * with its cause ("No space left on device"), where gdk-pixbuf's savers say "Write Error". */
  g_autofree gchar *data = NULL;
  gsize len = 0;
  g_autoptr (GError) e = NULL;
  g_autofree char *option = key ? g_strconcat ("tEXt::", key, NULL) : NULL; /* PNG only */
  gboolean encoded = strcmp (type, "jpeg") == 0
                         ? gdk_pixbuf_save_to_buffer (pb, &data, &len, "jpeg", &e, "quality", "95", NULL)
                         : gdk_pixbuf_save_to_buffer (pb, &data, &len, "png", &e, option, text, NULL);
  if (!encoded) {
    g_set_error (error, e->domain, e->code, _ ("Cannot write %s: %s"), name, e->message);
    return FALSE;
  }
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *templ = g_strdup_printf ("%s%s.%s.XXXXXX", dir, G_DIR_SEPARATOR_S, base);
  int fd = g_mkstemp_full (templ, O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (err), _ ("Cannot write %s: %s"), name, g_strerror (err));
    return FALSE;
  }
  set_tmp (g_strdup (templ));
  /* mkstemp makes the file private; the result gets the permissions of a plain new file. */
  gboolean ok = fchmod (fd, file_mode ()) == 0;
  for (gsize done = 0; ok && done < len;) {
    ssize_t n = write (fd, data + done, len - done);
    if (n < 0 && errno == EINTR)
      continue;
    ok = n > 0;
    done += ok ? (gsize) n : 0;
  }
  /* Some file systems report a full disk only when the data reaches it: at fsync or close. */
  ok = ok && fsync (fd) == 0;
  int err = errno;
  if (close (fd) != 0 && ok) {
    err = errno;
    ok = FALSE;
  }
  if (ok && g_rename (templ, path) != 0) {
    err = errno;
    ok = FALSE;
  }
  if (ok) {
    set_tmp (NULL);
    return TRUE;
  }
  /* The temporary file goes; a file that was at @path before is untouched. */
  cli_image_save_abort ();
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (err), _ ("Cannot write %s: %s"), name, g_strerror (err));
  return FALSE;
}
