/* The DeepGen panel: the one GTK 3 widget that the GIMP 3 and GIMP 2.10 plug-ins and
 * deepgen-studio show (DESIGN.md §1, §6).
 *
 * It holds the settings (job, prompt, steps, guidance, seed, negative prompt, size policy,
 * working size, model folder: each a GObject property, named as the GIMP procedure arguments,
 * that notifies when the user edits its field, so it can be bound with g_object_bind_property),
 * runs the job off the GTK main thread (a GTask around dg_task_run_default: in the resident
 * service unless the "in-process" property is set; progress and live previews marshalled back to
 * the main loop, Cancel through a GCancellable), shows the result as a preview, and emits
 * "apply" when the user accepts it. It never touches GIMP or files: the front-end gives it the
 * pixels (dg_panel_set_source) and decides what "apply" means (a new layer, a new history entry).
 *
 * Signals:
 *   "apply"    (DgPanel *panel, const DgTaskResult *result): the user pressed Apply; the result
 *              belongs to the panel and is valid during the emission (copy or steal it).
 *   "finished" (DgPanel *panel, gboolean success): a run ended (result, error or cancel).
 *   "download-finished" (DgPanel *panel, gboolean success): a model download ended (the model
 *              is in place and opens, or an error / a pause is shown in the message bar).
 *
 * While the model folder (the field, or the default folder) is missing or incomplete, the panel
 * offers to download the model there (model/download/dg_download.h): a button with the size,
 * then progress with speed and time left and Pause; a paused or interrupted download is offered
 * as Resume. Built without libsoup 3 (no deepgen_download), the offer is left out. */
#pragma once

#include <gtk/gtk.h>

#include "deepgen.h"
#include "dg_task.h"

G_BEGIN_DECLS

#define DG_TYPE_PANEL (dg_panel_get_type ())
G_DECLARE_FINAL_TYPE (DgPanel, dg_panel, DG, PANEL, GtkBox)

GtkWidget *dg_panel_new (DgJob job);

/* The pixels to work on: @source (a layer; NULL for generate without an image) and @selection
 * (one channel, the source's or the canvas's size; NULL = no selection). The panel takes both.
 * Setting a new source cancels a running job and drops the preview. */
void dg_panel_set_source (DgPanel *panel, DgImage *source, DgMask *selection, int canvas_width, int canvas_height);

/* The same as pressing Run / Cancel / Apply. */
void dg_panel_run (DgPanel *panel);
void dg_panel_cancel (DgPanel *panel);
void dg_panel_apply (DgPanel *panel);

gboolean dg_panel_is_busy (DgPanel *panel);
/* The DiT step whose live preview the panel shows now (through the service), 0 when none. */
int dg_panel_get_live_step (DgPanel *panel);
/* The previewed result, NULL when there is none. */
const DgTaskResult *dg_panel_get_result (DgPanel *panel);
/* The result, handed over to the caller (the preview is cleared). */
DgTaskResult *dg_panel_steal_result (DgPanel *panel);
/* The model download: the same as pressing Download (or Resume) and Pause. */
void dg_panel_download (DgPanel *panel);
void dg_panel_pause_download (DgPanel *panel);
gboolean dg_panel_is_downloading (DgPanel *panel);
/* Whether the Download / Resume button is shown now. */
gboolean dg_panel_offers_download (DgPanel *panel);

/* Describe (the Describe button, below the prompt): the model writes a description of the
 * region a run would fill (the selection's bounding box, else the layer) off the GTK thread,
 * with progress and Stop, and it replaces the prompt field's text as a starting point (an error
 * or a cancel goes to the message bar and leaves the text). Nothing happens while a job or a
 * download runs; without a source the button is insensitive. A new source cancels it. */
void dg_panel_describe (DgPanel *panel);
void dg_panel_cancel_describe (DgPanel *panel);
gboolean dg_panel_is_describing (DgPanel *panel);

/* Picking among variations: when a run made several results (Number of results > 1), the
 * preview shows them side by side as thumbnails, each a toggle, all picked at first; Apply hands
 * over only the picked ones ("apply"'s result is the first picked, its variations the other
 * picked), and is insensitive while none is. @index counts the results in order (0 = the
 * first, seed; 1 = seed + 1, …). With one result, it is the only one and always picked. */
void dg_panel_set_picked (DgPanel *panel, guint index, gboolean picked);
gboolean dg_panel_get_picked (DgPanel *panel, guint index);
guint dg_panel_count_picked (DgPanel *panel);

/* Re-run from layer: the front-end passes the job parameters stored with the source layer
 * (DG_JOB_PARAMS_KEY: dg_job_params_to_string's text; NULL = none), and the panel offers "Load
 * its settings", which puts the prompt, negative prompt, seed, steps, guidance, strength and the
 * working size (generate and edit) into the fields, and the job when the job is selectable.
 * dg_panel_load_layer_params is the same as pressing it (a text that does not parse is a warning
 * in the message bar, the fields unchanged); dg_panel_load_params does it for any @text. */
void dg_panel_set_layer_params (DgPanel *panel, const char *params);
gboolean dg_panel_offers_layer_params (DgPanel *panel);
void dg_panel_load_layer_params (DgPanel *panel);
gboolean dg_panel_load_params (DgPanel *panel, const char *text, GError **error);

/* Several references (edit and inpaint): the front-end lists other layers of the image
 * (dg_panel_add_reference_layer: a name, an opaque handle, ticked or not) and gives a reader
 * that turns a handle into pixels (RGB or RGBA, the whole layer), called on the GTK thread when
 * a run starts, for the ticked layers only. The model sees the source's region first, then the
 * ticked layers in list order (DgTaskSpec.references). Hidden while no layer is listed. */
typedef DgImage *(*DgPanelReadReference) (gpointer item, gpointer user_data, GError **error);
void dg_panel_set_reference_reader (DgPanel *panel, DgPanelReadReference read, gpointer user_data);
void dg_panel_add_reference_layer (DgPanel *panel, const char *name, gpointer item, gboolean checked);
void dg_panel_set_reference_checked (DgPanel *panel, guint index, gboolean checked);
/* Files rather than layers (deepgen-studio): with @forget set (before the first
 * dg_panel_add_reference_layer), each listed item gets a remove button, and the panel calls
 * @forget on an item when it is removed (dg_panel_remove_reference_layer, @index in list order)
 * and on those left when it is destroyed. */
void dg_panel_set_reference_remover (DgPanel *panel, GDestroyNotify forget);
void dg_panel_remove_reference_layer (DgPanel *panel, guint index);
/* the ticked layers a run would take (0 for generate) */
guint dg_panel_count_references (DgPanel *panel);

/* The message shown in the panel's error bar, NULL when none is shown (tests read it). */
const char *dg_panel_get_message (DgPanel *panel);
/* The fit indicator's text: whether the job fits this GPU and with which weights, "" without a
 * source (for tests). It follows the settings; the first time it waits for the GPU's size. */
const char *dg_panel_get_fit_text (DgPanel *panel);

/* Convenience accessors for the properties of the same names. */
void dg_panel_set_prompt (DgPanel *panel, const char *prompt);
char *dg_panel_dup_prompt (DgPanel *panel);
/* Fills @spec from the panel's fields; strings point into @strings (free with g_strfreev). The
 * reference layers are not in it: their pixels are read when a run starts. */
void dg_panel_get_spec (DgPanel *panel, DgTaskSpec *spec, char ***strings);

G_END_DECLS
