/* Test helper: builds safetensors images and files from C, so the unit tests need no fixtures
 * checked in and can make any header, valid or broken. */
#pragma once

#include <glib.h>

typedef struct StWriter StWriter;

/* A well-formed image, tensors packed in the order added, header padded with spaces to a
 * multiple of 8 like Hugging Face's writer. */
StWriter *st_writer_new (void);
void st_writer_free (StWriter *w);
void st_writer_add (StWriter *w, const char *name, const char *dtype, guint ndim, const gint64 *shape, const void *data,
                    gsize nbytes);
void st_writer_metadata (StWriter *w, const char *key, const char *value);
GBytes *st_writer_finish (StWriter *w); /* frees w */
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StWriter, st_writer_free)

/* An image from a literal header (no padding added) and a data section. */
GBytes *st_image (const char *header, const void *data, gsize data_len);
/* The same with any value in the 8-byte length field, for broken-length cases. */
GBytes *st_image_raw (guint64 length_field, const char *header, gsize header_len, const void *data, gsize data_len);

/* Writes @bytes to dir/name and returns the path. Aborts the test on failure. */
char *st_write_file (const char *dir, const char *name, GBytes *bytes);
char *st_write_text (const char *dir, const char *name, const char *text);

/* A fresh temporary folder, and its recursive removal. */
char *st_tmpdir (void);
void st_rmtree (const char *path);
