/* deepgen-studio's image view: shows the current image scaled to fit and lets the user mark
 * the region to work on, with a rectangle or a brush. The mark is a DgMask of the image's
 * size (255 inside), drawn over the image in translucent red.
 *
 * Signals: "mask-changed" (StudioCanvas *canvas): a stroke or rectangle ended, or the mask was
 * cleared. */
#pragma once

#include <gtk/gtk.h>

#include "deepgen.h"

G_BEGIN_DECLS

#define STUDIO_TYPE_CANVAS (studio_canvas_get_type ())
G_DECLARE_FINAL_TYPE (StudioCanvas, studio_canvas, STUDIO, CANVAS, GtkDrawingArea)

typedef enum {
  STUDIO_TOOL_RECTANGLE,
  STUDIO_TOOL_BRUSH,
} StudioTool;

GtkWidget *studio_canvas_new (void);

/* Shows @image (copied; NULL = none) and clears the mask when the size changes. */
void studio_canvas_set_image (StudioCanvas *canvas, const DgImage *image);
void studio_canvas_set_tool (StudioCanvas *canvas, StudioTool tool);
void studio_canvas_set_brush_radius (StudioCanvas *canvas, int radius);
/* Replaces the mask by a rectangle (clipped to the image). */
void studio_canvas_select_rectangle (StudioCanvas *canvas, int x, int y, int width, int height);
void studio_canvas_clear_mask (StudioCanvas *canvas);
/* A copy of the mask, NULL when nothing is marked. */
DgMask *studio_canvas_dup_mask (StudioCanvas *canvas);

G_END_DECLS
