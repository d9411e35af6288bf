/* Expand Canvas's form (dg_expand_form.h). */
#include "dg_expand_form.h"

#include "dg_gettext.h"
#include "dg_task.h"

typedef struct {
  GtkWidget *side[4]; /* left, top, right, bottom */
  GtkWidget *aspect, *prompt, *summary, *apply;
  int width, height; /* the source */
} Form;

static Form *
form_of (GtkWidget *form)
{
  return g_object_get_data (G_OBJECT (form), "dg-expand-form");
}

static DgExpandSides
form_sides (Form *f)
{
  return (DgExpandSides) { gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (f->side[0])),
                           gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (f->side[1])),
                           gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (f->side[2])),
                           gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (f->side[3])) };
}

static void
update (Form *f)
{
  g_autofree char *aspect = g_strstrip (g_strdup (gtk_entry_get_text (GTK_ENTRY (f->aspect))));
  const gboolean by_aspect = *aspect != '\0';
  for (int i = 0; i < 4; i++) gtk_widget_set_sensitive (f->side[i], !by_aspect);
  const DgExpandSides given = by_aspect ? (DgExpandSides) { 0, 0, 0, 0 } : form_sides (f);
  DgExpandSides sides;
  DgExpandPlan plan;
  g_autoptr (GError) error = NULL;
  const gboolean ok = dg_task_expand_sides (&given, aspect, f->width, f->height, &sides, &error) &&
                      dg_expand_plan (f->width, f->height, &sides, &plan, &error);
  g_autofree char *text =
      ok ? g_strdup_printf (_ ("%d×%d → %d×%d"), f->width, f->height, plan.canvas_width, plan.canvas_height)
         : g_strdup (error->message);
  gtk_label_set_text (GTK_LABEL (f->summary), text);
  if (f->apply)
    gtk_widget_set_sensitive (f->apply, ok);
}

static GtkWidget *
label_for (const char *mnemonic, GtkWidget *widget)
{
  GtkWidget *l = gtk_label_new_with_mnemonic (mnemonic);
  gtk_label_set_mnemonic_widget (GTK_LABEL (l), widget);
  gtk_label_set_xalign (GTK_LABEL (l), 0.0);
  return l;
}

GtkWidget *
dg_expand_form_new (int width, int height, const DgExpandSides *sides, const char *aspect, const char *prompt,
                    GtkWidget *apply)
{
  Form *f = g_new0 (Form, 1);
  f->width = width, f->height = height, f->apply = apply;
  GtkWidget *grid = gtk_grid_new ();
  g_object_set_data_full (G_OBJECT (grid), "dg-expand-form", f, g_free);
  gtk_grid_set_row_spacing (GTK_GRID (grid), 6);
  gtk_grid_set_column_spacing (GTK_GRID (grid), 12);
  gtk_container_set_border_width (GTK_CONTAINER (grid), 12);
  const char *labels[4] = { _ ("_Left"), _ ("_Top"), _ ("_Right"), _ ("_Bottom") };
  const int values[4] = { sides ? sides->left : 0, sides ? sides->top : 0, sides ? sides->right : 0,
                          sides ? sides->bottom : 0 };
  for (int i = 0; i < 4; i++) {
    f->side[i] = gtk_spin_button_new_with_range (0, DG_EXPAND_MAX_SIDE, 1);
    gtk_spin_button_set_value (GTK_SPIN_BUTTON (f->side[i]), CLAMP (values[i], 0, DG_EXPAND_MAX_SIDE));
    gtk_entry_set_activates_default (GTK_ENTRY (f->side[i]), TRUE);
    g_signal_connect_swapped (f->side[i], "value-changed", G_CALLBACK (update), f);
    gtk_grid_attach (GTK_GRID (grid), label_for (labels[i], f->side[i]), (i % 2) * 2, i / 2, 1, 1);
    gtk_grid_attach (GTK_GRID (grid), f->side[i], (i % 2) * 2 + 1, i / 2, 1, 1);
  }
  f->aspect = gtk_entry_new ();
  gtk_entry_set_text (GTK_ENTRY (f->aspect), aspect ? aspect : "");
  gtk_entry_set_placeholder_text (GTK_ENTRY (f->aspect), "16:9");
  gtk_widget_set_tooltip_text (f->aspect, _ ("Instead of the sides: grow the shorter axis to this ratio, W:H (e.g. "
                                             "16:9), evenly on both sides; empty = use the sides"));
  f->prompt = gtk_entry_new ();
  gtk_entry_set_text (GTK_ENTRY (f->prompt), prompt ? prompt : "");
  gtk_entry_set_placeholder_text (GTK_ENTRY (f->prompt), _ ("Optional: what belongs in the new area"));
  for (GtkWidget **e = (GtkWidget *[]) { f->aspect, f->prompt, NULL }; *e; e++) {
    gtk_entry_set_activates_default (GTK_ENTRY (*e), TRUE);
    g_signal_connect_swapped (*e, "changed", G_CALLBACK (update), f);
  }
  gtk_grid_attach (GTK_GRID (grid), label_for (_ ("_Aspect ratio"), f->aspect), 0, 2, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), f->aspect, 1, 2, 3, 1);
  gtk_grid_attach (GTK_GRID (grid), label_for (_ ("_Prompt"), f->prompt), 0, 3, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), f->prompt, 1, 3, 3, 1);
  f->summary = gtk_label_new (NULL);
  gtk_label_set_line_wrap (GTK_LABEL (f->summary), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (f->summary), 50);
  gtk_label_set_xalign (GTK_LABEL (f->summary), 0.0);
  gtk_grid_attach (GTK_GRID (grid), f->summary, 0, 4, 4, 1);
  update (f);
  return grid;
}

void
dg_expand_form_get (GtkWidget *form, DgExpandSides *sides, char **aspect, char **prompt)
{
  Form *f = form_of (form);
  *aspect = g_strstrip (g_strdup (gtk_entry_get_text (GTK_ENTRY (f->aspect))));
  *sides = **aspect ? (DgExpandSides) { 0, 0, 0, 0 } : form_sides (f);
  *prompt = g_strdup (gtk_entry_get_text (GTK_ENTRY (f->prompt)));
}

void
dg_expand_form_set (GtkWidget *form, const DgExpandSides *sides, const char *prompt)
{
  Form *f = form_of (form);
  const int v[4] = { sides ? sides->left : 0, sides ? sides->top : 0, sides ? sides->right : 0,
                     sides ? sides->bottom : 0 };
  for (int i = 0; sides && i < 4; i++) gtk_spin_button_set_value (GTK_SPIN_BUTTON (f->side[i]), v[i]);
  if (prompt)
    gtk_entry_set_text (GTK_ENTRY (f->prompt), prompt);
}

const char *
dg_expand_form_summary (GtkWidget *form)
{
  return gtk_label_get_text (GTK_LABEL (form_of (form)->summary));
}
