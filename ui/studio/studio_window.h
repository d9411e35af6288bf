/* deepgen-studio's main window: the image with its marked region (StudioCanvas), the DeepGen
 * panel, and the history of results; open and save through gdk-pixbuf. */
#pragma once

#include <gtk/gtk.h>

#include "deepgen.h"

G_BEGIN_DECLS

#define STUDIO_TYPE_WINDOW (studio_window_get_type ())
G_DECLARE_FINAL_TYPE (StudioWindow, studio_window, STUDIO, WINDOW, GtkApplicationWindow)

StudioWindow *studio_window_new (GtkApplication *app);

/* Opens an image file (PNG, JPEG, … what gdk-pixbuf reads) as the first history entry. */
gboolean studio_window_open (StudioWindow *window, GFile *file, GError **error);
/* Saves the current image; the format follows the extension (png, jpg/jpeg, tif/tiff, bmp). */
gboolean studio_window_save (StudioWindow *window, GFile *file, GError **error);

/* Lists an image file among the panel's reference images (ticked); it is read when a run starts
 * (edit and inpaint), and one that cannot be read then stops the run with the reason. */
void studio_window_add_reference (StudioWindow *window, GFile *file);

/* Settings from the command line. */
void studio_window_select_rectangle (StudioWindow *window, int x, int y, int width, int height);
void studio_window_set_job (StudioWindow *window, DgJob job);
void studio_window_set_model_folder (StudioWindow *window, const char *folder);
/* Jobs in this process instead of the resident DeepGen service (--no-service). */
void studio_window_set_in_process (StudioWindow *window, gboolean in_process);

/* Image <-> pixbuf, for loading, saving and thumbnails. */
DgImage *studio_image_from_pixbuf (GdkPixbuf *pixbuf);
GdkPixbuf *studio_pixbuf_from_image (const DgImage *image);

G_END_DECLS
