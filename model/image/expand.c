/* Expanding the canvas (outpainting): the geometry and the inpaint's inputs (the rules are in
 * deepgen.h, "expanding the canvas"). All sizes are checked in 64-bit integers before anything
 * is allocated, so a huge request ends in a message, never in an overflow. */
#include <string.h>

#include "deepgen.h"
#include "dg_i18n.h"
#include "image.h"

static gboolean
invalid (GError **error, const char *message)
{
  g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, message);
  return FALSE;
}

static gboolean
check_image_size (int width, int height, GError **error)
{
  if (width < 1 || height < 1 || width > DG_EXPAND_MAX_SIDE || height > DG_EXPAND_MAX_SIDE) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("Cannot expand a %d×%d image: its sides must be between 1 and %d pixels."), width, height,
                 DG_EXPAND_MAX_SIDE);
    return FALSE;
  }
  return TRUE;
}

gboolean
dg_expand_sides_for_aspect (int width, int height, int aw, int ah, DgExpandSides *sides, GError **error)
{
  g_return_val_if_fail (sides != NULL, FALSE);
  memset (sides, 0, sizeof *sides);
  if (!check_image_size (width, height, error))
    return FALSE;
  if (aw < 1 || ah < 1 || aw > DG_EXPAND_MAX_SIDE || ah > DG_EXPAND_MAX_SIDE) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("The aspect ratio %d:%d is not valid: both terms must be between 1 and %d."), aw, ah,
                 DG_EXPAND_MAX_SIDE);
    return FALSE;
  }
  /* Compare width/height with aw/ah exactly (cross products), then grow the short axis to the
   * nearest pixel: round(h · aw / ah) = (2 · h · aw + ah) / (2 · ah) in integers. */
  const gint64 lhs = (gint64) width * ah, rhs = (gint64) height * aw;
  gint64 extra = 0;
  gboolean grow_width = lhs < rhs;
  if (grow_width)
    extra = ((gint64) 2 * height * aw + ah) / (2 * (gint64) ah) - width;
  else if (lhs > rhs)
    extra = ((gint64) 2 * width * ah + aw) / (2 * (gint64) aw) - height;
  if (extra <= 0) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("The image (%d×%d) already has the aspect ratio %d:%d: there is nothing to add. Give the sides "
                    "to add instead, or another ratio."),
                 width, height, aw, ah);
    return FALSE;
  }
  const gint64 side = grow_width ? width : height;
  if (side + extra > DG_EXPAND_MAX_SIDE) {
    /* the length as text: it can pass G_MAXINT, and a format macro would hide the message from xgettext */
    g_autofree char *length = g_strdup_printf ("%" G_GINT64_FORMAT, side + extra);
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("The aspect ratio %d:%d would make the %d×%d image %s pixels long on one side, more than the %d "
                    "an expand makes. Choose a ratio closer to the image's."),
                 aw, ah, width, height, length, DG_EXPAND_MAX_SIDE);
    return FALSE;
  }
  const int first = (int) (extra / 2), second = (int) (extra - extra / 2);
  if (grow_width)
    sides->left = first, sides->right = second;
  else
    sides->top = first, sides->bottom = second;
  return TRUE;
}

gboolean
dg_expand_parse_aspect (const char *text, int *aw, int *ah, GError **error)
{
  g_autofree char *t = g_strstrip (g_strdup (text ? text : ""));
  char *sep = strpbrk (t, ":xX/");
  guint64 a = 0, b = 0;
  if (sep) {
    *sep = '\0';
    g_strstrip (t);
    g_strstrip (sep + 1);
  }
  if (!sep || !g_ascii_string_to_unsigned (t, 10, 1, DG_EXPAND_MAX_SIDE, &a, NULL) ||
      !g_ascii_string_to_unsigned (sep + 1, 10, 1, DG_EXPAND_MAX_SIDE, &b, NULL)) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("“%s” is not an aspect ratio: write it as WIDTH:HEIGHT, e.g. 16:9 (whole numbers from 1 to %d)."),
                 text ? text : "", DG_EXPAND_MAX_SIDE);
    return FALSE;
  }
  *aw = (int) a, *ah = (int) b;
  return TRUE;
}

gboolean
dg_expand_plan (int width, int height, const DgExpandSides *s, DgExpandPlan *plan, GError **error)
{
  g_return_val_if_fail (s != NULL && plan != NULL, FALSE);
  memset (plan, 0, sizeof *plan);
  if (!check_image_size (width, height, error))
    return FALSE;
  if (s->left < 0 || s->top < 0 || s->right < 0 || s->bottom < 0)
    return invalid (error, _ ("Expanding only adds pixels: the sides must not be negative. To cut the image down, "
                              "crop it instead."));
  if (s->left == 0 && s->top == 0 && s->right == 0 && s->bottom == 0)
    return invalid (error, _ ("Nothing to expand: give the pixels to add on at least one side, or an aspect ratio."));
  const gint64 cw = (gint64) width + s->left + s->right, ch = (gint64) height + s->top + s->bottom;
  if (cw > DG_EXPAND_MAX_SIDE || ch > DG_EXPAND_MAX_SIDE) {
    /* the size as text: it can pass G_MAXINT, and a format macro would hide the message from xgettext */
    g_autofree char *size = g_strdup_printf ("%" G_GINT64_FORMAT "×%" G_GINT64_FORMAT, cw, ch);
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("Expanding the %d×%d image by %d, %d, %d and %d pixels (left, top, right, bottom) would make it "
                    "%s, larger than the %d pixels a side an expand makes. Add less, or scale the image down "
                    "first."),
                 width, height, s->left, s->top, s->right, s->bottom, size, DG_EXPAND_MAX_SIDE);
    return FALSE;
  }
  plan->image_width = width, plan->image_height = height;
  plan->canvas_width = (int) cw, plan->canvas_height = (int) ch;
  plan->image_x = s->left, plan->image_y = s->top;
  return TRUE;
}

DgImage *
dg_expand_canvas (const DgImage *src, const DgExpandPlan *plan)
{
  g_return_val_if_fail (src != NULL && plan != NULL, NULL);
  g_return_val_if_fail (src->width == plan->image_width && src->height == plan->image_height, NULL);
  const int nc = src->channels, cw = plan->canvas_width, ch = plan->canvas_height;
  DgImage *out = dg_image_new (cw, ch, nc);
  if (!out)
    return NULL;
  for (int y = 0; y < ch; y++) {
    const int sy = CLAMP (y - plan->image_y, 0, src->height - 1);
    const gboolean old_row = y - plan->image_y == sy;
    const guint8 *s = src->pixels + (gsize) sy * src->rowstride;
    guint8 *o = out->pixels + (gsize) y * out->rowstride;
    for (int x = 0; x < cw; x++, o += nc) {
      const int sx = CLAMP (x - plan->image_x, 0, src->width - 1);
      memcpy (o, s + (gsize) sx * nc, nc);
      if (nc == 4 && !(old_row && x - plan->image_x == sx))
        o[3] = 255;
    }
  }
  return out;
}

DgMask *
dg_expand_mask (const DgExpandPlan *plan)
{
  g_return_val_if_fail (plan != NULL, NULL);
  DgMask *m = dg_image_new (plan->canvas_width, plan->canvas_height, 1);
  if (!m)
    return NULL;
  for (int y = 0; y < m->height; y++) {
    guint8 *r = m->pixels + (gsize) y * m->rowstride;
    memset (r, 255, m->width);
    if (y >= plan->image_y && y < plan->image_y + plan->image_height)
      memset (r + plan->image_x, 0, plan->image_width);
  }
  return m;
}

char *
dg_expand_instruction (const char *prompt)
{
  /* DeepGen edits from an instruction; this one names the task, and the user's text (if any)
   * says what belongs in the new area. Not translated: it is the model's input, not the user's. */
  static const char base[] = "Extend the picture beyond its borders: fill the surrounding area so that the scene "
                             "continues seamlessly, with the same style, lighting and perspective.";
  g_autofree char *p = g_strstrip (g_strdup (prompt ? prompt : ""));
  return *p ? g_strdup_printf ("%s %s", base, p) : g_strdup (base);
}
