/* Writing an image file for deepgen-studio (studio_save.h). */
#include "studio_save.h"

#include <string.h>

#include "dg_gettext.h"

gboolean
studio_pixbuf_save (GdkPixbuf *pixbuf, const char *path, const char *type, GError **error)
{
  return studio_pixbuf_save_with_text (pixbuf, path, type, NULL, NULL, error);
}

gboolean
studio_pixbuf_save_with_text (GdkPixbuf *pixbuf, const char *path, const char *type, const char *key, const char *text,
                              GError **error)
{
  g_autofree char *name = g_filename_display_name (path);
  /* The rename would put a file in place of a device or a pipe. */
  if (g_file_test (path, G_FILE_TEST_EXISTS) && !g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_EXIST, _ ("Cannot write %s: it exists and is not a regular file"),
                 name);
    return FALSE;
  }
  g_autofree gchar *data = NULL;
  gsize len = 0;
  g_autoptr (GError) e = NULL;
  g_autofree char *option = key && strcmp (type, "png") == 0 ? g_strconcat ("tEXt::", key, NULL) : NULL;
  gboolean ok = strcmp (type, "jpeg") == 0
                    ? gdk_pixbuf_save_to_buffer (pixbuf, &data, &len, type, &e, "quality", "95", NULL)
                    : gdk_pixbuf_save_to_buffer (pixbuf, &data, &len, type, &e, option, text, NULL);
  /* Written whole in memory first: a write error then carries its cause ("No space left on
   * device"), where gdk-pixbuf's file savers say "Write Error". g_file_set_contents_full writes
   * a temporary file beside @path, fsyncs it and renames it; on failure it removes it. */
  ok = ok && g_file_set_contents_full (path, data, (gssize) len, G_FILE_SET_CONTENTS_CONSISTENT, 0666, &e);
  if (!ok)
    g_set_error (error, e->domain, e->code, _ ("Cannot write %s: %s"), name, e->message);
  return ok;
}
