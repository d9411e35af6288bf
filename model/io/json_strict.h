/* Strict JSON loading for every JSON file the model reads (safetensors headers, shard indexes,
 * configs).
 *
 * json-glib is a fine DOM, but as a gatekeeper for untrusted files it is too lenient and too
 * trusting: it recurses once per nesting level (a file of a million '[' overflows the stack), it
 * accepts comments, single quotes and hex numbers, it returns no root and no error for empty
 * input, it silently keeps the last of two equal keys, and it ignores a second value after the
 * first ("{}{}"). A one-pass byte scan in front of it fixes all of these, so what reaches the DOM
 * is one plain JSON object of bounded depth. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Parses @len bytes of @text (need not be NUL-terminated), which must be one JSON object nested
 * at most @max_depth levels, with no duplicate key at its top level. @display names the file in
 * messages and @what says which part of it ("header", "file").
 * Returns a new reference, or NULL with DG_ERROR_FORMAT. */
JsonObject *dg_json_parse_object (const char *text, gsize len, const char *display, const char *what, guint max_depth,
                                  GError **error);

/* Reads a whole JSON file of at most @max_bytes and parses it as above. A file that does not
 * exist gives DG_ERROR_MISSING, one that cannot be read DG_ERROR_IO. */
JsonObject *dg_json_load_object (const char *path, const char *display, gsize max_bytes, guint max_depth,
                                 GError **error);

/* "parent/base" of a path: enough to tell the user which component's file is meant
 * ("transformer/diffusion_pytorch_model.safetensors") without a long absolute path. */
char *dg_display_name (const char *path);

G_END_DECLS
