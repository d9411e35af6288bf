/* The GIMP 3 plug-in's DgHost (plugin/common/dg_plugin.h): the libgimp 3 calls the plug-in core
 * needs, on GObject handles. The registration and the arguments are in deepgen-gimp.c. */
#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>
#include <string.h>

#include "dg_gettext.h"
#include "gimp3_host.h"

#define IMG(h) ((GimpImage *) (h))
#define DRW(h) ((GimpDrawable *) (h))

static DgHostMode
image_info (DgHostImage *image, int *width, int *height)
{
  *width = gimp_image_get_width (IMG (image));
  *height = gimp_image_get_height (IMG (image));
  return (DgHostMode) gimp_image_get_base_type (IMG (image));
}

static DgHostItem *
selection (DgHostImage *image, DgHostItem *drawable, gboolean *touches)
{
  int x, y, w, h;
  *touches = !drawable || gimp_drawable_mask_intersect (DRW (drawable), &x, &y, &w, &h);
  return gimp_selection_is_empty (IMG (image)) ? NULL : (DgHostItem *) gimp_image_get_selection (IMG (image));
}

static DgHostItemKind
item_info (DgHostItem *item, int *x, int *y, int *width, int *height, gboolean *alpha)
{
  if (!GIMP_IS_LAYER (item))
    return DG_HOST_OTHER;
  gimp_drawable_get_offsets (DRW (item), x, y);
  *width = gimp_drawable_get_width (DRW (item));
  *height = gimp_drawable_get_height (DRW (item));
  *alpha = gimp_drawable_has_alpha (DRW (item));
  return gimp_item_is_group (GIMP_ITEM (item)) ? DG_HOST_LAYER_GROUP : DG_HOST_LAYER;
}

static GeglBuffer *
buffer (DgHostItem *drawable)
{
  return gimp_drawable_get_buffer (DRW (drawable));
}

static void
undo_group (DgHostImage *image, gboolean start)
{
  (start ? gimp_image_undo_group_start : gimp_image_undo_group_end) (IMG (image));
}

static DgHostItem *
layer_new (DgHostImage *image, DgHostItem *above, const char *name, int width, int height, int x, int y)
{
  GimpImage *img = IMG (image);
  const GimpImageType type = gimp_image_get_base_type (img) == GIMP_GRAY ? GIMP_GRAYA_IMAGE : GIMP_RGBA_IMAGE;
  GimpLayer *layer =
      gimp_layer_new (img, name, width, height, type, 100.0, gimp_image_get_default_new_layer_mode (img));
  if (!layer)
    return NULL;
  GimpItem *parent = above ? gimp_item_get_parent (GIMP_ITEM (above)) : NULL;
  gimp_image_insert_layer (img, layer, GIMP_IS_LAYER (parent) ? GIMP_LAYER (parent) : NULL,
                           above ? gimp_image_get_item_position (img, GIMP_ITEM (above)) : 0);
  gimp_layer_set_offsets (layer, x, y);
  return (DgHostItem *) layer;
}

static void
layer_finish (DgHostItem *layer, gboolean mask, int width, int height)
{
  if (mask)
    gimp_layer_add_mask (GIMP_LAYER (layer), gimp_layer_create_mask (GIMP_LAYER (layer), GIMP_ADD_MASK_SELECTION));
  gimp_drawable_update (DRW (layer), 0, 0, width, height);
}

static void
attach_text (DgHostItem *item, const char *name, const char *text)
{
  GimpParasite *p =
      gimp_parasite_new (name, GIMP_PARASITE_PERSISTENT | GIMP_PARASITE_UNDOABLE, (guint32) strlen (text) + 1, text);
  gimp_item_attach_parasite (GIMP_ITEM (item), p);
  gimp_parasite_free (p);
}

static void
image_resize (DgHostImage *image, int width, int height, int x, int y)
{
  gimp_image_resize (IMG (image), width, height, x, y);
}

static char *
read_text (DgHostItem *item, const char *name)
{
  GimpParasite *p = gimp_item_get_parasite (GIMP_ITEM (item), name);
  if (!p)
    return NULL;
  guint32 size = 0;
  const char *data = gimp_parasite_get_data (p, &size);
  char *text = data && size ? g_strndup (data, size) : NULL;
  gimp_parasite_free (p);
  return text;
}

static DgHostItem **
image_layers (DgHostImage *image, int *n_layers)
{
  GimpLayer **layers = gimp_image_get_layers (GIMP_IMAGE (image));
  *n_layers = layers ? (int) gimp_core_object_array_get_length ((GObject **) layers) : 0;
  DgHostItem **items = g_new0 (DgHostItem *, *n_layers + 1);
  for (int i = 0; i < *n_layers; i++) items[i] = (DgHostItem *) layers[i];
  g_free (layers); /* the layers belong to libgimp */
  return items;
}

static char *
item_name (DgHostItem *item)
{
  return g_strdup (gimp_item_get_name (GIMP_ITEM (item)));
}

static GtkWidget *
dialog_new (const DgProcedure *info)
{
  gimp_ui_init (PLUG_IN_BINARY);
  return gimp_dialog_new (_ (info->title), PLUG_IN_BINARY, NULL, 0, gimp_standard_help_func, info->name, _ ("_Close"),
                          GTK_RESPONSE_CANCEL, NULL);
}

static int
dialog_run (GtkDialog *dialog)
{
  return gimp_dialog_run (GIMP_DIALOG (dialog));
}

const DgHost dg_gimp3_host = {
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
  dialog_run,
  image_resize,
  read_text,
  image_layers,
  item_name,
};
