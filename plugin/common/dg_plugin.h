/* The one plug-in core of the GIMP 3 and GIMP 2.10 plug-ins: reading the source
 * (the layer's pixels and the selection, through GEGL buffers), the direct (non-interactive)
 * run with GIMP's progress bar, the dialog around the shared panel, and writing the result as
 * a new layer with a mask from the selection, in one undo group. The adapters
 * (plugin/gimp3/deepgen-gimp.c, plugin/gimp2/deepgen-gimp2.c) only register the procedures,
 * read their arguments, and fill a DgHost: the few calls where libgimp 3 and 2.10 differ
 * (GObjects against gint32 IDs, gimp_dialog_new against a plain GtkDialog).
 *
 * This core includes no libgimp header: it is built once and sees GIMP only through DgHost.
 *
 * Safety: nothing touches the image until the result exists, and then only between the host's
 * undo group start and end. GIMP's Cancel kills the plug-in; before that point the image is
 * untouched, and a group left open is closed by GIMP. */
#pragma once

#include <gegl.h>
#include <gtk/gtk.h>

#include "dg_procedures.h"

G_BEGIN_DECLS

/* Opaque handles: GimpImage * and GimpDrawable * in GIMP 3, GINT_TO_POINTER (ID) in GIMP 2.10
 * (IDs are > 0; NULL = none). */
typedef struct _DgHostImage DgHostImage;
typedef struct _DgHostItem DgHostItem;

typedef enum { DG_HOST_RGB, DG_HOST_GRAY, DG_HOST_INDEXED } DgHostMode; /* GimpImageBaseType's */
typedef enum { DG_HOST_OTHER, DG_HOST_LAYER, DG_HOST_LAYER_GROUP } DgHostItemKind;

/* What each adapter provides: libgimp calls on handles, nothing more. */
typedef struct {
  /* the image's mode and size */
  DgHostMode (*image_info) (DgHostImage *image, int *width, int *height);
  /* the selection channel, NULL when the selection is empty; *touches: whether it touches
   * @drawable (gimp_drawable_mask_intersect) */
  DgHostItem *(*selection) (DgHostImage *image, DgHostItem *drawable, gboolean *touches);
  /* what @item is; for a layer, its offsets on the canvas, its size and whether it has alpha */
  DgHostItemKind (*item_info) (DgHostItem *item, int *x, int *y, int *width, int *height, gboolean *alpha);
  GeglBuffer *(*buffer) (DgHostItem *drawable); /* gimp_drawable_get_buffer */

  void (*undo_group) (DgHostImage *image, gboolean start);
  /* A new RGBA (GRAYA on a grayscale image) layer @name of width × height in the default mode,
   * inserted above @above (NULL: at the top) and placed at (x, y); NULL if GIMP refuses. */
  DgHostItem *(*layer_new) (DgHostImage *image, DgHostItem *above, const char *name, int width, int height, int x,
                            int y);
  /* after the pixels: a mask from the selection (GIMP_ADD_MASK_SELECTION) if @mask, and the
   * layer's update */
  void (*layer_finish) (DgHostItem *layer, gboolean mask, int width, int height);
  /* a persistent, undoable parasite @name holding @text (with its NUL) on @item */
  void (*attach_text) (DgHostItem *item, const char *name, const char *text);

  /* gimp_progress_* and gimp_displays_flush (the same in both GIMPs) */
  gboolean (*progress_init) (const char *message);
  gboolean (*progress_set_text) (const char *text);
  gboolean (*progress_update) (double fraction);
  gboolean (*progress_end) (void);
  gboolean (*displays_flush) (void);

  /* The dialog: initializes the toolkit and returns a GtkDialog titled with the procedure's
   * title, with a Close (cancel) button; then runs it (gimp_dialog_run or gtk_dialog_run). */
  GtkWidget *(*dialog_new) (const DgProcedure *info);
  int (*dialog_run) (GtkDialog *dialog);

  /* gimp_image_resize: the canvas to width × height, the layers moved by (x, y) (Expand Canvas) */
  void (*image_resize) (DgHostImage *image, int width, int height, int x, int y);
  /* the text of parasite @name on @item (what attach_text wrote), newly allocated; NULL when
   * there is none. Untrusted: a file may carry anything. */
  char *(*read_text) (DgHostItem *item, const char *name);
  /* the image's layers, top first (top level: gimp_image_get_layers), in a new array of
   * *n_layers (g_free); and a layer's name, newly allocated — for the dialog's reference list */
  DgHostItem **(*image_layers) (DgHostImage *image, int *n_layers);
  char *(*item_name) (DgHostItem *item);
} DgHost;

/* How a call ended: the values of GimpPDBStatusType, the same in GIMP 2.10 and 3. */
typedef enum {
  DG_PLUGIN_EXECUTION_ERROR = 0,
  DG_PLUGIN_CALLING_ERROR = 1, /* a direct run's arguments were wrong */
  DG_PLUGIN_SUCCESS = 3,
  DG_PLUGIN_CANCEL = 4, /* the dialog was closed without Apply */
} DgPluginStatus;

/* In each adapter: DgHostMode and DgPluginStatus have GIMP's values (the same in 2.10 and 3),
 * so that the adapters cast rather than translate. */
#define DG_PLUGIN_CHECK_GIMP_ENUMS()                                                                                \
  G_STATIC_ASSERT (                                                                                                 \
      (int) GIMP_RGB == DG_HOST_RGB && (int) GIMP_GRAY == DG_HOST_GRAY && (int) GIMP_INDEXED == DG_HOST_INDEXED &&  \
      (int) GIMP_PDB_SUCCESS == DG_PLUGIN_SUCCESS && (int) GIMP_PDB_EXECUTION_ERROR == DG_PLUGIN_EXECUTION_ERROR && \
      (int) GIMP_PDB_CALLING_ERROR == DG_PLUGIN_CALLING_ERROR && (int) GIMP_PDB_CANCEL == DG_PLUGIN_CANCEL)

/* One call of a procedure. */
typedef struct {
  const DgHost *host;
  const DgProcedure *info;
  DgHostImage *image;
  DgHostItem *drawable; /* the (first) selected drawable, NULL when n_drawables is 0 */
  int n_drawables;
  gboolean interactive; /* the dialog; else a direct run with `args` */
  gboolean flush;       /* gimp_displays_flush after the change (not for scripts) */
  DgProcedureArgs args; /* a direct run's settings */
  /* Interactive: the dialog starts from `args`; then these are called with the panel, before
   * the dialog shows (GIMP 3 binds its config) and after it closed, Apply or not (GIMP 2.10
   * keeps the last values). Either may be NULL. */
  void (*panel_open) (GtkWidget *panel, gpointer data);
  void (*panel_close) (GtkWidget *panel, gpointer data);
  gpointer data;
  /* Expand Canvas's dialog (a form of its own: the sides, the aspect, the prompt; the other
   * settings are `args`'): called with the settings it ran with, to keep them for the next
   * interactive run. May be NULL. */
  void (*args_close) (const DgProcedureArgs *args, gpointer data);
  /* GIMP 3: the other selected drawables, references for edit and inpaint (the model sees the
   * edited layer first, then these); NULL / 0 in GIMP 2.10, which passes one drawable */
  DgHostItem *const *references;
  int n_references;
} DgPluginCall;

/* A DgPluginCall.panel_open: binds the panel's settings both ways to @object's properties of
 * the same names (the GIMP 3 procedure config), so that the object follows the user's edits. */
void dg_plugin_bind_settings (GtkWidget *panel, gpointer object);

/* Runs @call: reads the source, runs the job (directly or in the dialog), and on success
 * returns the new layer. Otherwise NULL with *status CANCEL (no error) or an error status
 * and @error set; the image is then untouched. */
DgHostItem *dg_plugin_run (const DgPluginCall *call, DgPluginStatus *status, GError **error);

G_END_DECLS
