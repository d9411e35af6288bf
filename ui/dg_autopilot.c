/* Test hook that drives a panel (dg_autopilot.h). */
#include "dg_autopilot.h"

#include "dg_expand_form.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  GtkWindow *window;
  DgPanel *panel;
  void (*close) (GtkWindow *window);
  char *prompt, *model, *shot, *shot2, *dlshot, *save, *liveshot;
  char **unpick; /* result indices to untick before Apply */
  char **tick;   /* reference layers to tick before the run */
  int steps, seed, max_size, move_x, move_y, n_results, livestep;
  gboolean root, apply, done, download, rerun;
  guint timeout_id;
} Pilot;

static void
pilot_close (Pilot *p)
{
  if (!p->window)
    return;
  if (p->close)
    p->close (p->window);
  else
    gtk_window_close (p->window);
}

gboolean
dg_screenshot_save (GtkWindow *window, gboolean whole_screen, const char *path, GError **error)
{
  GdkWindow *w = whole_screen ? gdk_get_default_root_window () : gtk_widget_get_window (GTK_WIDGET (window));
  if (!w)
    return g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "window not realized"), FALSE;
  const int width = gdk_window_get_width (w), height = gdk_window_get_height (w);
  g_autoptr (GdkPixbuf) pb = gdk_pixbuf_get_from_window (w, 0, 0, width, height);
  if (!pb)
    return g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "could not read the window"), FALSE;
  return gdk_pixbuf_save (pb, path, "png", error, NULL);
}

static void
shoot (Pilot *p, const char *path)
{
  g_autoptr (GError) error = NULL;
  if (p->window && path && !dg_screenshot_save (p->window, p->root, path, &error))
    fprintf (stderr, "autopilot: screenshot failed: %s\n", error->message);
}

static gboolean
after_apply (gpointer data)
{
  Pilot *p = data;
  shoot (p, p->shot2);
  if (p->window && p->save)
    g_object_set_data_full (G_OBJECT (p->window), "dg-autopilot-save", g_strdup (p->save), g_free);
  pilot_close (p);
  return G_SOURCE_REMOVE;
}

static gboolean
after_draw (gpointer data)
{
  Pilot *p = data;
  for (char **i = p->unpick; p->panel && i && *i; i++) dg_panel_set_picked (p->panel, (guint) atoi (*i), FALSE);
  shoot (p, p->shot);
  if (p->apply && p->panel && dg_panel_get_result (p->panel)) {
    fprintf (stderr, "autopilot: apply\n");
    dg_panel_apply (p->panel);
    /* the front-end may have closed the window on "apply" (the GIMP dialogs do) */
    if (p->window)
      g_timeout_add (700, after_apply, p);
  } else
    pilot_close (p);
  return G_SOURCE_REMOVE;
}

static void
on_finished (DgPanel *panel, gboolean success, Pilot *p)
{
  if (p->done)
    return;
  p->done = TRUE;
  if (p->timeout_id)
    g_source_remove (p->timeout_id), p->timeout_id = 0;
  const DgTaskResult *r = dg_panel_get_result (panel);
  if (r)
    fprintf (stderr, "autopilot: result: %dx%d at (%d, %d) seed %" G_GUINT64_FORMAT "\n", r->image->width,
             r->image->height, r->x, r->y, r->seed);
  if (r && r->via_service)
    fprintf (stderr, "autopilot: ran in the resident service\n");
  if (!r)
    fprintf (stderr, "autopilot: error: %s\n", dg_panel_get_message (panel) ? dg_panel_get_message (panel) : "?");
  /* let the preview and the progress bar redraw before the screenshot */
  g_timeout_add (700, after_draw, p);
}

static gboolean
on_timeout (gpointer data)
{
  Pilot *p = data;
  p->timeout_id = 0;
  if (p->done)
    return G_SOURCE_REMOVE;
  p->done = TRUE;
  fprintf (stderr, "autopilot: timeout\n");
  if (p->panel)
    dg_panel_cancel (p->panel);
  pilot_close (p);
  return G_SOURCE_REMOVE;
}

static gboolean
download_shot (gpointer data)
{
  Pilot *p = data;
  if (p->panel && dg_panel_is_downloading (p->panel))
    shoot (p, p->dlshot);
  return G_SOURCE_REMOVE;
}

/* download=1: the model first, through the panel's own offer, then the run */
static void
on_download_finished (DgPanel *panel, gboolean success, Pilot *p)
{
  if (p->done)
    return;
  if (!success) {
    p->done = TRUE;
    fprintf (stderr, "autopilot: error: %s\n", dg_panel_get_message (panel) ? dg_panel_get_message (panel) : "?");
    pilot_close (p);
    return;
  }
  fprintf (stderr, "autopilot: downloaded\n");
  dg_panel_run (panel);
}

/* liveshot: polls the panel until its live preview reaches livestep */
static gboolean
live_shot (gpointer data)
{
  Pilot *p = data;
  if (p->done || !p->panel)
    return G_SOURCE_REMOVE;
  const int step = dg_panel_get_live_step (p->panel);
  if (step < p->livestep)
    return G_SOURCE_CONTINUE;
  fprintf (stderr, "autopilot: live preview at step %d\n", step);
  shoot (p, p->liveshot);
  return G_SOURCE_REMOVE;
}

static gboolean
start (gpointer data)
{
  Pilot *p = data;
  if (!p->panel)
    return G_SOURCE_REMOVE;
  if (p->download) {
    if ((p->move_x || p->move_y) && p->window)
      gtk_window_move (p->window, p->move_x, p->move_y);
    if (p->prompt)
      dg_panel_set_prompt (p->panel, p->prompt);
    if (p->model)
      g_object_set (p->panel, "model-folder", p->model, NULL);
    if (p->steps > 0)
      g_object_set (p->panel, "steps", p->steps, NULL);
    if (p->max_size > 0)
      g_object_set (p->panel, "max-size", p->max_size, NULL);
    p->download = FALSE;
    if (dg_panel_offers_download (p->panel)) {
      fprintf (stderr, "autopilot: download offered\n");
      g_signal_connect (p->panel, "download-finished", G_CALLBACK (on_download_finished), p);
      dg_panel_download (p->panel);
      if (p->dlshot)
        g_timeout_add (1000, download_shot, p);
      return G_SOURCE_REMOVE;
    }
  }
  if ((p->move_x || p->move_y) && p->window)
    gtk_window_move (p->window, p->move_x, p->move_y);
  if (p->rerun) {
    fprintf (stderr, "autopilot: layer settings %s\n", dg_panel_offers_layer_params (p->panel) ? "offered" : "missing");
    dg_panel_load_layer_params (p->panel);
  }
  if (p->prompt)
    dg_panel_set_prompt (p->panel, p->prompt);
  if (p->model)
    g_object_set (p->panel, "model-folder", p->model, NULL);
  if (p->steps > 0)
    g_object_set (p->panel, "steps", p->steps, NULL);
  if (p->seed >= 0)
    g_object_set (p->panel, "seed", (gint64) p->seed, NULL);
  if (p->max_size > 0)
    g_object_set (p->panel, "max-size", p->max_size, NULL);
  if (p->n_results > 0)
    g_object_set (p->panel, "n-results", p->n_results, NULL);
  for (char **i = p->tick; i && *i; i++) dg_panel_set_reference_checked (p->panel, (guint) atoi (*i), TRUE);
  fprintf (stderr, "autopilot: references %u\n", dg_panel_count_references (p->panel));
  dg_panel_run (p->panel);
  if (p->liveshot)
    g_timeout_add (50, live_shot, p);
  return G_SOURCE_REMOVE;
}

gboolean
dg_autopilot_attach (GtkWindow *window, DgPanel *panel, void (*close) (GtkWindow *window))
{
  const char *env = g_getenv ("DEEPGEN_AUTOPILOT");
  if (!env || !*env)
    return FALSE;
  Pilot *p = g_new0 (Pilot, 1);
  p->seed = -1; /* the panel's own (random) unless seed= */
  p->window = window;
  p->panel = panel;
  p->close = close;
  g_object_add_weak_pointer (G_OBJECT (window), (gpointer *) &p->window);
  int timeout = 300;
  p->livestep = 3;
  g_auto (GStrv) items = g_strsplit (env, ";", -1);
  for (char **it = items; *it; it++) {
    const char *eq = strchr (*it, '=');
    if (!eq)
      continue;
    g_autofree char *key = g_strndup (*it, eq - *it);
    const char *val = eq + 1;
    if (g_str_equal (key, "prompt"))
      p->prompt = g_strdup (val);
    else if (g_str_equal (key, "model"))
      p->model = g_strdup (val);
    else if (g_str_equal (key, "shot"))
      p->shot = g_strdup (val);
    else if (g_str_equal (key, "liveshot"))
      p->liveshot = g_strdup (val);
    else if (g_str_equal (key, "livestep"))
      p->livestep = atoi (val);
    else if (g_str_equal (key, "shot2"))
      p->shot2 = g_strdup (val);
    else if (g_str_equal (key, "save"))
      p->save = g_strdup (val);
    else if (g_str_equal (key, "move"))
      sscanf (val, "%d,%d", &p->move_x, &p->move_y);
    else if (g_str_equal (key, "steps"))
      p->steps = atoi (val);
    else if (g_str_equal (key, "seed"))
      p->seed = atoi (val);
    else if (g_str_equal (key, "max-size"))
      p->max_size = atoi (val);
    else if (g_str_equal (key, "n-results"))
      p->n_results = atoi (val);
    else if (g_str_equal (key, "rerun"))
      p->rerun = atoi (val) != 0;
    else if (g_str_equal (key, "tick"))
      p->tick = g_strsplit (val, ",", -1);
    else if (g_str_equal (key, "unpick"))
      p->unpick = g_strsplit (val, ",", -1);
    else if (g_str_equal (key, "root"))
      p->root = atoi (val) != 0;
    else if (g_str_equal (key, "apply"))
      p->apply = atoi (val) != 0;
    else if (g_str_equal (key, "download"))
      p->download = atoi (val) != 0;
    else if (g_str_equal (key, "dlshot"))
      p->dlshot = g_strdup (val);
    else if (g_str_equal (key, "timeout"))
      timeout = MAX (1, atoi (val));
  }
  g_signal_connect (panel, "finished", G_CALLBACK (on_finished), p);
  /* One pilot per process, alive until exit: the window and panel may go first. */
  g_object_add_weak_pointer (G_OBJECT (panel), (gpointer *) &p->panel);
  p->timeout_id = g_timeout_add_seconds (timeout, on_timeout, p);
  /* start once the window is on screen */
  g_timeout_add (800, start, p);
  return TRUE;
}

/* ---- Expand Canvas's dialog -------------------------------------------------------------- */

char *
dg_autopilot_value (const char *key)
{
  const char *env = g_getenv ("DEEPGEN_AUTOPILOT");
  g_auto (GStrv) items = g_strsplit (env ? env : "", ";", -1);
  g_autofree char *prefix = g_strconcat (key, "=", NULL);
  for (char **it = items; *it; it++)
    if (g_str_has_prefix (*it, prefix))
      return g_strdup (*it + strlen (prefix));
  return NULL;
}

static gboolean
expand_press (gpointer form)
{
  g_autofree char *shot = dg_autopilot_value ("shot"), *root = dg_autopilot_value ("root");
  g_autoptr (GError) error = NULL;
  GtkWidget *dialog = gtk_widget_get_toplevel (form);
  GtkWidget *expand = gtk_dialog_get_widget_for_response (GTK_DIALOG (dialog), GTK_RESPONSE_OK);
  if (shot && !dg_screenshot_save (GTK_WINDOW (dialog), root && atoi (root), shot, &error))
    g_printerr ("autopilot: screenshot failed: %s\n", error->message);
  g_printerr ("autopilot: expand %s (sensitive %d)\n", dg_expand_form_summary (form), gtk_widget_is_sensitive (expand));
  gtk_button_clicked (GTK_BUTTON (expand));
  g_object_unref (form);
  return G_SOURCE_REMOVE;
}

/* fills the form, then (once it has been drawn so) the screenshot and Expand */
static gboolean
expand_fill (gpointer form)
{
  g_autofree char *sides = dg_autopilot_value ("expand"), *prompt = dg_autopilot_value ("prompt");
  DgExpandSides v = { 0, 0, 0, 0 };
  const gboolean have = sides && sscanf (sides, "%d,%d,%d,%d", &v.left, &v.top, &v.right, &v.bottom) == 4;
  dg_expand_form_set (form, have ? &v : NULL, prompt);
  g_timeout_add (800, expand_press, form);
  return G_SOURCE_REMOVE;
}

gboolean
dg_autopilot_attach_expand (GtkWidget *form)
{
  g_autofree char *sides = dg_autopilot_value ("expand");
  if (!sides)
    return FALSE;
  g_timeout_add (800, expand_fill, g_object_ref (form));
  return TRUE;
}
