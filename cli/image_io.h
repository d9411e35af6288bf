/* Image files of the command line, through gdk-pixbuf (PNG, JPEG and whatever loaders the
 * system has for reading; PNG and JPEG for writing). gdk-pixbuf is a dependency of cli/ only:
 * model/ never reads or writes files of pixels.
 *
 * Writing never leaves a partial file: the image goes to a hidden temporary file in the same
 * folder, which is renamed over the target only when it is complete (a rename within one
 * file system is atomic). A run that fails or is cancelled removes the temporary file; one
 * killed with SIGKILL during the write can leave ".NAME.XXXXXX" behind, never a broken NAME. */
#pragma once

#include <glib.h>

#include "deepgen.h"

G_BEGIN_DECLS

/* The largest image the CLI reads, in pixels: 100 megapixels (400 MB as RGBA). Larger files are
 * refused from their header, before anything is allocated; DeepGen itself works at up to
 * 6144 × 6144, and a larger input only costs memory. */
#define CLI_MAX_IMAGE_PIXELS 100000000

/* An 8-bit RGB or RGBA image (EXIF orientation applied). Errors name the file: a missing or
 * unreadable file (G_FILE_ERROR), an unknown or broken format or one past CLI_MAX_IMAGE_PIXELS
 * (GDK_PIXBUF_ERROR). */
DgImage *cli_image_load (const char *path, GError **error);

/* A mask: one channel, 255 = change, 0 = keep. Grey or colour files give their luminance
 * (Rec. 601 weights), times alpha when there is alpha (a transparent pixel keeps). */
DgMask *cli_mask_load (const char *path, GError **error);

/* Checks before any work that the file can be written later: its folder exists and is
 * writable, and it is not a folder, nor anything but a regular file if it exists. */
gboolean cli_output_writable (const char *path, GError **error);

/* Writes @img as @type ("png" or "jpeg"; JPEG drops alpha) to @path through a temporary file
 * in the same folder, flushed to disk, and a rename. On failure (a full disk, a read-only
 * folder) the error names the cause, the temporary file is removed and a file already at
 * @path is left as it was. */
gboolean cli_image_save (const DgImage *img, const char *path, const char *type, GError **error);
/* cli_image_save with a PNG text chunk @key = @text (UTF-8; gdk-pixbuf writes tEXt when the text is
 * Latin-1, else iTXt). JPEG files get no chunk. */
gboolean cli_image_save_with_text (const DgImage *img, const char *path, const char *type, const char *key,
                                   const char *text, GError **error);
/* The text chunk @key of the image file @path (UTF-8), or NULL with an error naming the file when
 * it cannot be read or has no such chunk (G_FILE_ERROR_NOENT for the latter). */
char *cli_image_read_text (const char *path, const char *key, GError **error);

/* Removes the temporary file of a save in progress, if any: for a second Ctrl-C that ends the
 * process at once. Async-signal-safe it is not; call it from the main loop. */
void cli_image_save_abort (void);

G_END_DECLS
