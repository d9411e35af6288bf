/* The GIMP 2.10 plug-in's DgHost (plugin/common/dg_plugin.h): the libgimp 2.0 calls the plug-in
 * core needs, on IDs. The registration, the arguments and the last values are in deepgen-gimp2.c. */
#include <libgimp/gimp.h>
#include <string.h>

#include "dg_gettext.h"
#include "gimp2_host.h"


static DgHostMode
image_info (DgHostImage *image, int *width, int *height)
{
  *width = gimp_image_width (ID (image));
  *height = gimp_image_height (ID (image));
  return (DgHostMode) gimp_image_base_type (ID (image));
}

static DgHostItem *
selection (DgHostImage *image, DgHostItem *drawable, gboolean *touches)
{
  int x, y, w, h;
  *touches = !drawable || gimp_drawable_mask_intersect (ID (drawable), &x, &y, &w, &h);
  return gimp_selection_is_empty (ID (image)) ? NULL : HANDLE (gimp_image_get_selection (ID (image)));
}

static DgHostItemKind
item_info (DgHostItem *item, int *x, int *y, int *width, int *height, gboolean *alpha)
{
  const gint32 id = ID (item);
  if (!gimp_item_is_valid (id) || !gimp_item_is_layer (id) || gimp_item_is_layer_mask (id))
    return DG_HOST_OTHER;
  gimp_drawable_offsets (id, x, y);
  *width = gimp_drawable_width (id);
  *height = gimp_drawable_height (id);
  *alpha = gimp_drawable_has_alpha (id);
  return gimp_item_is_group (id) ? DG_HOST_LAYER_GROUP : DG_HOST_LAYER;
}

static GeglBuffer *
buffer (DgHostItem *drawable)
{
  return gimp_drawable_get_buffer (ID (drawable));
}

static void
undo_group (DgHostImage *image, gboolean start)
{
  (start ? gimp_image_undo_group_start : gimp_image_undo_group_end) (ID (image));
}

static DgHostItem *
layer_new (DgHostImage *image, DgHostItem *above, const char *name, int width, int height, int x, int y)
{
  const gint32 img = ID (image);
  const GimpImageType type = gimp_image_base_type (img) == GIMP_GRAY ? GIMP_GRAYA_IMAGE : GIMP_RGBA_IMAGE;
  const gint32 layer =
      gimp_layer_new (img, name, width, height, type, 100.0, gimp_image_get_default_new_layer_mode (img));
  if (layer < 0)
    return NULL;
  const gint32 parent = above ? gimp_item_get_parent (ID (above)) : -1;
  gimp_image_insert_layer (img, layer, parent > 0 ? parent : 0,
                           above ? gimp_image_get_item_position (img, ID (above)) : 0);
  gimp_layer_set_offsets (layer, x, y);
  return HANDLE (layer);
}

static void
layer_finish (DgHostItem *layer, gboolean mask, int width, int height)
{
  if (mask)
    gimp_layer_add_mask (ID (layer), gimp_layer_create_mask (ID (layer), GIMP_ADD_MASK_SELECTION));
  gimp_drawable_update (ID (layer), 0, 0, width, height);
}

static void
attach_text (DgHostItem *item, const char *name, const char *text)
{
  GimpParasite *p =
      gimp_parasite_new (name, GIMP_PARASITE_PERSISTENT | GIMP_PARASITE_UNDOABLE, (guint32) strlen (text) + 1, text);
  gimp_item_attach_parasite (ID (item), p);
  gimp_parasite_free (p);
}

static void
image_resize (DgHostImage *image, int width, int height, int x, int y)
{
  gimp_image_resize (ID (image), width, height, x, y);
}

static char *
read_text (DgHostItem *item, const char *name)
{
  GimpParasite *p = gimp_item_get_parasite (ID (item), name);
  if (!p)
    return NULL;
  const char *data = gimp_parasite_data (p);
  const guint32 size = gimp_parasite_data_size (p);
  char *text = data && size ? g_strndup (data, size) : NULL;
  gimp_parasite_free (p);
  return text;
}

static DgHostItem **
image_layers (DgHostImage *image, int *n_layers)
{
  gint n = 0;
  gint *ids = gimp_image_get_layers (ID (image), &n);
  DgHostItem **items = g_new0 (DgHostItem *, n + 1);
  for (int i = 0; i < n; i++) items[i] = GINT_TO_POINTER (ids[i]);
  g_free (ids);
  *n_layers = n;
  return items;
}

static char *
item_name (DgHostItem *item)
{
  return gimp_item_get_name (ID (item));
}

static GtkWidget *
dialog_new (const DgProcedure *info)
{
  gtk_init (NULL, NULL);
  GtkWidget *dialog = gtk_dialog_new_with_buttons (_ (info->title), NULL, 0, _ ("_Close"), GTK_RESPONSE_CANCEL, NULL);
  gtk_window_set_role (GTK_WINDOW (dialog), "deepgen-gimp2");
  return dialog;
}

const DgHost dg_gimp2_host = {
  image_info,
  selection,
  item_info,
  buffer,
  undo_group,
  layer_new,
  layer_finish,
  attach_text,
  gimp_progress_init,
  gimp_progress_set_text,
  gimp_progress_update,
  gimp_progress_end,
  gimp_displays_flush,
  dialog_new,
  gtk_dialog_run,
  image_resize,
  read_text,
  image_layers,
  item_name,
};
