#include "st_writer.h"

#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

struct StWriter {
  JsonBuilder *header;
  JsonBuilder *meta;
  gboolean has_meta;
  GByteArray *data;
};

StWriter *
st_writer_new (void)
{
  StWriter *w = g_new0 (StWriter, 1);
  w->header = json_builder_new ();
  json_builder_begin_object (w->header);
  w->meta = json_builder_new ();
  json_builder_begin_object (w->meta);
  w->data = g_byte_array_new ();
  return w;
}

void
st_writer_free (StWriter *w)
{
  if (w == NULL)
    return;
  g_object_unref (w->header);
  g_object_unref (w->meta);
  g_byte_array_unref (w->data);
  g_free (w);
}

void
st_writer_add (StWriter *w, const char *name, const char *dtype, guint ndim, const gint64 *shape, const void *data,
               gsize nbytes)
{
  json_builder_set_member_name (w->header, name);
  json_builder_begin_object (w->header);
  json_builder_set_member_name (w->header, "dtype");
  json_builder_add_string_value (w->header, dtype);
  json_builder_set_member_name (w->header, "shape");
  json_builder_begin_array (w->header);
  for (guint i = 0; i < ndim; i++) json_builder_add_int_value (w->header, shape[i]);
  json_builder_end_array (w->header);
  json_builder_set_member_name (w->header, "data_offsets");
  json_builder_begin_array (w->header);
  json_builder_add_int_value (w->header, w->data->len);
  json_builder_add_int_value (w->header, w->data->len + nbytes);
  json_builder_end_array (w->header);
  json_builder_end_object (w->header);
  if (nbytes)
    g_byte_array_append (w->data, data, (guint) nbytes);
}

void
st_writer_metadata (StWriter *w, const char *key, const char *value)
{
  json_builder_set_member_name (w->meta, key);
  json_builder_add_string_value (w->meta, value);
  w->has_meta = TRUE;
}

GBytes *
st_writer_finish (StWriter *w)
{
  if (w->has_meta) {
    json_builder_end_object (w->meta);
    json_builder_set_member_name (w->header, "__metadata__");
    json_builder_add_value (w->header, json_builder_get_root (w->meta));
  }
  json_builder_end_object (w->header);
  g_autoptr (JsonNode) root = json_builder_get_root (w->header);
  g_autofree char *text = json_to_string (root, FALSE);
  GString *h = g_string_new (text);
  while (h->len % 8) g_string_append_c (h, ' ');
  GBytes *b = st_image (h->str, w->data->data, w->data->len);
  g_string_free (h, TRUE);
  st_writer_free (w);
  return b;
}

GBytes *
st_image_raw (guint64 length_field, const char *header, gsize header_len, const void *data, gsize data_len)
{
  GByteArray *a = g_byte_array_new ();
  guint8 len[8];
  for (int i = 0; i < 8; i++) len[i] = (guint8) (length_field >> (8 * i));
  g_byte_array_append (a, len, 8);
  if (header_len)
    g_byte_array_append (a, (const guint8 *) header, (guint) header_len);
  if (data_len)
    g_byte_array_append (a, data, (guint) data_len);
  return g_byte_array_free_to_bytes (a);
}

GBytes *
st_image (const char *header, const void *data, gsize data_len)
{
  gsize n = strlen (header);
  return st_image_raw (n, header, n, data, data_len);
}

char *
st_write_file (const char *dir, const char *name, GBytes *bytes)
{
  g_autoptr (GError) error = NULL;
  char *path = g_build_filename (dir, name, NULL);
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);
  g_file_set_contents (path, data ? data : "", (gssize) len, &error);
  g_assert_no_error (error);
  return path;
}

char *
st_write_text (const char *dir, const char *name, const char *text)
{
  g_autoptr (GBytes) b = g_bytes_new (text, strlen (text));
  return st_write_file (dir, name, b);
}

char *
st_tmpdir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("deepgen-unit-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

void
st_rmtree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK)) {
    g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d)) != NULL) {
      g_autofree char *child = g_build_filename (path, name, NULL);
      st_rmtree (child);
    }
    g_rmdir (path);
  } else
    g_unlink (path);
}
