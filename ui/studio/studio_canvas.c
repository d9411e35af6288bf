/* deepgen-studio's image view and region marking (studio_canvas.h). */
#include "studio_canvas.h"

#include <math.h>
#include <string.h>

struct _StudioCanvas {
  GtkDrawingArea parent;
  DgImage *image;
  DgMask *mask;
  cairo_surface_t *image_surface; /* the image, premultiplied ARGB for cairo */
  cairo_surface_t *mask_surface;  /* the mask as a red overlay */
  StudioTool tool;
  int brush_radius;
  gboolean dragging;
  double drag_x0, drag_y0, drag_x1, drag_y1; /* image coordinates */
};

G_DEFINE_TYPE (StudioCanvas, studio_canvas, GTK_TYPE_DRAWING_AREA)

enum { SIGNAL_MASK_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

/* ---- geometry: the image is centred and scaled to fit (at most 4×) -------------------- */

static void
view_transform (StudioCanvas *self, double *scale, double *ox, double *oy)
{
  const int aw = gtk_widget_get_allocated_width (GTK_WIDGET (self));
  const int ah = gtk_widget_get_allocated_height (GTK_WIDGET (self));
  if (!self->image) {
    *scale = 1, *ox = *oy = 0;
    return;
  }
  *scale = MIN (4.0, MIN ((double) aw / self->image->width, (double) ah / self->image->height));
  *ox = (aw - self->image->width * *scale) / 2;
  *oy = (ah - self->image->height * *scale) / 2;
}

static void
to_image (StudioCanvas *self, double wx, double wy, double *ix, double *iy)
{
  double s, ox, oy;
  view_transform (self, &s, &ox, &oy);
  *ix = (wx - ox) / s;
  *iy = (wy - oy) / s;
}

/* ---- surfaces --------------------------------------------------------------------------- */

static void
rebuild_image_surface (StudioCanvas *self)
{
  g_clear_pointer (&self->image_surface, cairo_surface_destroy);
  if (!self->image)
    return;
  const DgImage *img = self->image;
  cairo_surface_t *s = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, img->width, img->height);
  cairo_surface_flush (s);
  guint8 *data = cairo_image_surface_get_data (s);
  const int stride = cairo_image_surface_get_stride (s);
  for (int y = 0; y < img->height; y++) {
    const guint8 *src = img->pixels + (gsize) y * img->rowstride;
    guint32 *dst = (guint32 *) (data + (gsize) y * stride);
    for (int x = 0; x < img->width; x++, src += img->channels) {
      const guint a = img->channels == 4 ? src[3] : 255;
      const guint r = src[0] * a / 255, g = src[1] * a / 255, b = src[2] * a / 255;
      dst[x] = (a << 24) | (r << 16) | (g << 8) | b;
    }
  }
  cairo_surface_mark_dirty (s);
  self->image_surface = s;
}

static void
rebuild_mask_surface (StudioCanvas *self)
{
  g_clear_pointer (&self->mask_surface, cairo_surface_destroy);
  if (!self->mask)
    return;
  const DgMask *m = self->mask;
  cairo_surface_t *s = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, m->width, m->height);
  cairo_surface_flush (s);
  guint8 *data = cairo_image_surface_get_data (s);
  const int stride = cairo_image_surface_get_stride (s);
  for (int y = 0; y < m->height; y++) {
    const guint8 *src = m->pixels + (gsize) y * m->rowstride;
    guint32 *dst = (guint32 *) (data + (gsize) y * stride);
    for (int x = 0; x < m->width; x++) {
      const guint a = src[x] * 110 / 255; /* translucent red, premultiplied */
      dst[x] = (a << 24) | (a << 16);
    }
  }
  cairo_surface_mark_dirty (s);
  self->mask_surface = s;
}

static gboolean
mask_is_empty (const DgMask *m)
{
  for (int y = 0; y < m->height; y++) {
    const guint8 *r = m->pixels + (gsize) y * m->rowstride;
    for (int x = 0; x < m->width; x++)
      if (r[x])
        return FALSE;
  }
  return TRUE;
}

/* ---- public ----------------------------------------------------------------------------- */

void
studio_canvas_set_image (StudioCanvas *self, const DgImage *image)
{
  g_return_if_fail (STUDIO_IS_CANVAS (self));
  const gboolean same_size =
      image && self->image && image->width == self->image->width && image->height == self->image->height;
  g_clear_pointer (&self->image, dg_image_free);
  self->image = image ? dg_image_copy (image) : NULL;
  if (!same_size) {
    g_clear_pointer (&self->mask, dg_image_free);
    if (self->image)
      self->mask = dg_image_new (self->image->width, self->image->height, 1);
    rebuild_mask_surface (self);
  }
  rebuild_image_surface (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
studio_canvas_set_tool (StudioCanvas *self, StudioTool tool)
{
  g_return_if_fail (STUDIO_IS_CANVAS (self));
  self->tool = tool;
}

void
studio_canvas_set_brush_radius (StudioCanvas *self, int radius)
{
  g_return_if_fail (STUDIO_IS_CANVAS (self));
  self->brush_radius = MAX (1, radius);
}

static void
fill_rect (DgMask *m, int x0, int y0, int x1, int y1, guint8 v)
{
  x0 = CLAMP (x0, 0, m->width), x1 = CLAMP (x1, 0, m->width);
  y0 = CLAMP (y0, 0, m->height), y1 = CLAMP (y1, 0, m->height);
  for (int y = y0; y < y1; y++)
    if (x1 > x0)
      memset (m->pixels + (gsize) y * m->rowstride + x0, v, x1 - x0);
}

void
studio_canvas_select_rectangle (StudioCanvas *self, int x, int y, int width, int height)
{
  g_return_if_fail (STUDIO_IS_CANVAS (self));
  if (!self->mask)
    return;
  fill_rect (self->mask, 0, 0, self->mask->width, self->mask->height, 0);
  fill_rect (self->mask, x, y, x + width, y + height, 255);
  rebuild_mask_surface (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_signal_emit (self, signals[SIGNAL_MASK_CHANGED], 0);
}

void
studio_canvas_clear_mask (StudioCanvas *self)
{
  g_return_if_fail (STUDIO_IS_CANVAS (self));
  if (!self->mask)
    return;
  fill_rect (self->mask, 0, 0, self->mask->width, self->mask->height, 0);
  rebuild_mask_surface (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_signal_emit (self, signals[SIGNAL_MASK_CHANGED], 0);
}

DgMask *
studio_canvas_dup_mask (StudioCanvas *self)
{
  g_return_val_if_fail (STUDIO_IS_CANVAS (self), NULL);
  if (!self->mask || mask_is_empty (self->mask))
    return NULL;
  return dg_image_copy (self->mask);
}

/* ---- drawing ---------------------------------------------------------------------------- */

static gboolean
studio_canvas_draw (GtkWidget *widget, cairo_t *cr)
{
  StudioCanvas *self = STUDIO_CANVAS (widget);
  GtkStyleContext *style = gtk_widget_get_style_context (widget);
  const int aw = gtk_widget_get_allocated_width (widget), ah = gtk_widget_get_allocated_height (widget);
  gtk_render_background (style, cr, 0, 0, aw, ah);
  if (!self->image_surface) {
    PangoLayout *layout = gtk_widget_create_pango_layout (widget, NULL);
    pango_layout_set_text (layout, g_object_get_data (G_OBJECT (self), "empty-text"), -1);
    int tw, th;
    pango_layout_get_pixel_size (layout, &tw, &th);
    gtk_render_layout (style, cr, (aw - tw) / 2.0, (ah - th) / 2.0, layout);
    g_object_unref (layout);
    return FALSE;
  }
  double s, ox, oy;
  view_transform (self, &s, &ox, &oy);
  cairo_save (cr);
  cairo_translate (cr, ox, oy);
  cairo_scale (cr, s, s);
  /* a checkerboard under transparent pixels */
  cairo_set_source_rgb (cr, 0.6, 0.6, 0.6);
  cairo_rectangle (cr, 0, 0, self->image->width, self->image->height);
  cairo_fill (cr);
  cairo_set_source_surface (cr, self->image_surface, 0, 0);
  cairo_pattern_set_filter (cairo_get_source (cr), s < 1 ? CAIRO_FILTER_GOOD : CAIRO_FILTER_NEAREST);
  cairo_paint (cr);
  if (self->mask_surface) {
    cairo_set_source_surface (cr, self->mask_surface, 0, 0);
    cairo_paint (cr);
  }
  cairo_restore (cr);
  if (self->dragging && self->tool == STUDIO_TOOL_RECTANGLE) {
    const double x0 = ox + MIN (self->drag_x0, self->drag_x1) * s, y0 = oy + MIN (self->drag_y0, self->drag_y1) * s;
    const double w = fabs (self->drag_x1 - self->drag_x0) * s, h = fabs (self->drag_y1 - self->drag_y0) * s;
    const double dash[] = { 4, 4 };
    cairo_set_line_width (cr, 1);
    cairo_set_source_rgb (cr, 1, 1, 1);
    cairo_rectangle (cr, x0 + 0.5, y0 + 0.5, w, h);
    cairo_stroke (cr);
    cairo_set_dash (cr, dash, 2, 0);
    cairo_set_source_rgb (cr, 0, 0, 0);
    cairo_rectangle (cr, x0 + 0.5, y0 + 0.5, w, h);
    cairo_stroke (cr);
  }
  return FALSE;
}

/* ---- input ------------------------------------------------------------------------------ */

static void
stamp (StudioCanvas *self, double cx, double cy)
{
  DgMask *m = self->mask;
  const int r = self->brush_radius;
  for (int y = MAX (0, (int) floor (cy - r)); y <= MIN (m->height - 1, (int) ceil (cy + r)); y++)
    for (int x = MAX (0, (int) floor (cx - r)); x <= MIN (m->width - 1, (int) ceil (cx + r)); x++) {
      const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      if (dx * dx + dy * dy <= (double) r * r)
        m->pixels[(gsize) y * m->rowstride + x] = 255;
    }
}

static void
stroke_to (StudioCanvas *self, double x, double y)
{
  /* stamps along the segment from the last point, a quarter radius apart */
  const double dx = x - self->drag_x1, dy = y - self->drag_y1;
  const int n = MAX (1, (int) ceil (sqrt (dx * dx + dy * dy) / MAX (1.0, self->brush_radius / 4.0)));
  for (int i = 1; i <= n; i++) stamp (self, self->drag_x1 + dx * i / n, self->drag_y1 + dy * i / n);
  self->drag_x1 = x, self->drag_y1 = y;
  rebuild_mask_surface (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static gboolean
studio_canvas_button_press (GtkWidget *widget, GdkEventButton *event)
{
  StudioCanvas *self = STUDIO_CANVAS (widget);
  if (!self->image || event->button != GDK_BUTTON_PRIMARY)
    return FALSE;
  double ix, iy;
  to_image (self, event->x, event->y, &ix, &iy);
  self->dragging = TRUE;
  self->drag_x0 = self->drag_x1 = ix;
  self->drag_y0 = self->drag_y1 = iy;
  if (self->tool == STUDIO_TOOL_BRUSH) {
    /* Shift adds to the marked area; a plain stroke starts a new one */
    if (!(event->state & GDK_SHIFT_MASK) && !(event->state & GDK_CONTROL_MASK))
      fill_rect (self->mask, 0, 0, self->mask->width, self->mask->height, 0);
    stamp (self, ix, iy);
    rebuild_mask_surface (self);
    gtk_widget_queue_draw (widget);
  }
  return TRUE;
}

static gboolean
studio_canvas_motion (GtkWidget *widget, GdkEventMotion *event)
{
  StudioCanvas *self = STUDIO_CANVAS (widget);
  if (!self->dragging)
    return FALSE;
  double ix, iy;
  to_image (self, event->x, event->y, &ix, &iy);
  if (self->tool == STUDIO_TOOL_BRUSH)
    stroke_to (self, ix, iy);
  else {
    self->drag_x1 = ix, self->drag_y1 = iy;
    gtk_widget_queue_draw (widget);
  }
  return TRUE;
}

static gboolean
studio_canvas_button_release (GtkWidget *widget, GdkEventButton *event)
{
  StudioCanvas *self = STUDIO_CANVAS (widget);
  if (!self->dragging || event->button != GDK_BUTTON_PRIMARY)
    return FALSE;
  self->dragging = FALSE;
  if (self->tool == STUDIO_TOOL_RECTANGLE) {
    double ix, iy;
    to_image (self, event->x, event->y, &ix, &iy);
    const int x0 = (int) floor (MIN (self->drag_x0, ix)), y0 = (int) floor (MIN (self->drag_y0, iy));
    const int x1 = (int) ceil (MAX (self->drag_x0, ix)), y1 = (int) ceil (MAX (self->drag_y0, iy));
    if (!(event->state & GDK_SHIFT_MASK))
      fill_rect (self->mask, 0, 0, self->mask->width, self->mask->height, 0);
    if (x1 - x0 >= 2 && y1 - y0 >= 2)
      fill_rect (self->mask, x0, y0, x1, y1, 255);
    rebuild_mask_surface (self);
    gtk_widget_queue_draw (widget);
  }
  g_signal_emit (self, signals[SIGNAL_MASK_CHANGED], 0);
  return TRUE;
}

/* ---- GObject ---------------------------------------------------------------------------- */

static void
studio_canvas_finalize (GObject *object)
{
  StudioCanvas *self = STUDIO_CANVAS (object);
  dg_image_free (self->image);
  dg_image_free (self->mask);
  g_clear_pointer (&self->image_surface, cairo_surface_destroy);
  g_clear_pointer (&self->mask_surface, cairo_surface_destroy);
  G_OBJECT_CLASS (studio_canvas_parent_class)->finalize (object);
}

static void
studio_canvas_init (StudioCanvas *self)
{
  self->brush_radius = 24;
  gtk_widget_add_events (GTK_WIDGET (self), GDK_BUTTON_PRESS_MASK | GDK_BUTTON_RELEASE_MASK | GDK_POINTER_MOTION_MASK);
  gtk_widget_set_size_request (GTK_WIDGET (self), 320, 240);
  gtk_widget_set_hexpand (GTK_WIDGET (self), TRUE);
  gtk_widget_set_vexpand (GTK_WIDGET (self), TRUE);
}

static void
studio_canvas_class_init (StudioCanvasClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  GtkWidgetClass *wc = GTK_WIDGET_CLASS (klass);
  oc->finalize = studio_canvas_finalize;
  wc->draw = studio_canvas_draw;
  wc->button_press_event = studio_canvas_button_press;
  wc->motion_notify_event = studio_canvas_motion;
  wc->button_release_event = studio_canvas_button_release;
  signals[SIGNAL_MASK_CHANGED] =
      g_signal_new ("mask-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

GtkWidget *
studio_canvas_new (void)
{
  return g_object_new (STUDIO_TYPE_CANVAS, NULL);
}
