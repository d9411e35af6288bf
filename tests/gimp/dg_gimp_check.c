/* Checks what a GIMP run of a DeepGen procedure left behind (tests/gimp/run-gimp-test.sh).
 *
 *   dg-gimp-check input OUT.png W H            a deterministic test image (RGB, smooth + edges)
 *   dg-gimp-check result DIR CASE JOB PROMPT   one procedure call: DIR/CASE-{before,after,sel,mask}.png
 *                                              and DIR/CASE-info.txt (written by the Script-Fu)
 *   dg-gimp-check untouched DIR CASE           a failed call: layer count and pixels unchanged
 *   dg-gimp-check expand DIR CASE PROMPT L T R B   Expand Canvas by L, T, R, B pixels (see check_expand)
 *
 * "result" checks, in canvas coordinates (the source layer is at 0, 0 and covers the canvas):
 *  - exactly one new layer (three for JOB "variations"), named after the prompt;
 *  - its offset and size are the selection's bounding box (the whole canvas without one);
 *  - its mask is the selection (compared on the canvas, ±1 level for the export round trip), or
 *    there is no mask when nothing was selected;
 *  - the flattened image is bit-identical to the one before wherever the selection is 0;
 *  - and differs somewhere inside (the model did something);
 *  - the layer's parameters parasite, read back from a saved XCF (CASE-params.txt), parses
 *    (dg_job_params_from_string) and says what the call asked: job, prompt, seed 7, 2 steps,
 *    guidance 4, strength (0.5 for JOB "strength", else 1). */
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deepgen.h"

static int failures;

#define CHECK(cond, ...)                                    \
  do {                                                      \
    if (!(cond)) {                                          \
      fprintf (stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf (stderr, __VA_ARGS__);                        \
      fputc ('\n', stderr);                                 \
      failures++;                                           \
    }                                                       \
  } while (0)

static GdkPixbuf *
load (const char *dir, const char *cas, const char *what)
{
  g_autofree char *path = g_strdup_printf ("%s/%s-%s.png", dir, cas, what);
  g_autoptr (GError) error = NULL;
  GdkPixbuf *pb = gdk_pixbuf_new_from_file (path, &error);
  if (!pb) {
    fprintf (stderr, "FAIL: cannot read %s: %s\n", path, error->message);
    exit (1);
  }
  return pb;
}

static const guint8 *
px (GdkPixbuf *pb, int x, int y)
{
  return gdk_pixbuf_read_pixels (pb) + (gsize) y * gdk_pixbuf_get_rowstride (pb) +
         (gsize) x * gdk_pixbuf_get_n_channels (pb);
}

/* key value lines, as the Script-Fu writes them */
static GHashTable *
read_info (const char *dir, const char *cas)
{
  g_autofree char *path = g_strdup_printf ("%s/%s-info.txt", dir, cas);
  g_autofree char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL)) {
    fprintf (stderr, "FAIL: the GIMP script wrote no %s (did the procedure call fail?)\n", path);
    exit (1);
  }
  GHashTable *h = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l; l++) {
    char *sp = strchr (*l, ' ');
    if (sp)
      g_hash_table_insert (h, g_strndup (*l, sp - *l), g_strdup (sp + 1));
  }
  return h;
}

static int
info_int (GHashTable *h, const char *key)
{
  const char *v = g_hash_table_lookup (h, key);
  if (!v) {
    fprintf (stderr, "FAIL: info lacks %s\n", key);
    exit (1);
  }
  return atoi (v);
}

static void
make_input (const char *path, int w, int h)
{
  g_autoptr (GdkPixbuf) pb = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, w, h);
  guint8 *p = gdk_pixbuf_get_pixels (pb);
  const int rs = gdk_pixbuf_get_rowstride (pb);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      guint8 *q = p + (gsize) y * rs + x * 3;
      q[0] = (guint8) (x * 255 / MAX (1, w - 1));
      q[1] = (guint8) (y * 255 / MAX (1, h - 1));
      q[2] = ((x / 16 + y / 16) & 1) ? 200 : 40; /* a checkerboard: sharp edges */
    }
  g_autoptr (GError) error = NULL;
  if (!gdk_pixbuf_save (pb, path, "png", &error, NULL)) {
    fprintf (stderr, "cannot write %s: %s\n", path, error->message);
    exit (1);
  }
}

static void
check_params (const char *dir, const char *cas, const char *job, const char *prompt)
{
  g_autofree char *path = g_strdup_printf ("%s/%s-params.txt", dir, cas);
  g_autofree char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL)) {
    fprintf (stderr, "FAIL: the GIMP script wrote no %s (no parameters parasite on the layer?)\n", path);
    failures++;
    return;
  }
  g_autoptr (GError) error = NULL;
  g_autoptr (DgJobParams) p = dg_job_params_from_string (text, &error);
  if (!p) {
    fprintf (stderr, "FAIL: the parameters parasite does not parse: %s\n%s\n", error->message, text);
    failures++;
    return;
  }
  const DgJob want_job = g_str_equal (job, "generate")  ? DG_JOB_GENERATE
                         : g_str_equal (job, "inpaint") ? DG_JOB_INPAINT
                                                        : DG_JOB_EDIT;
  const double want_strength = g_str_equal (job, "strength") ? 0.5 : 1.0;
  CHECK (p->job == want_job, "parasite: job %d, expected %d", p->job, want_job);
  CHECK (g_str_equal (p->prompt, prompt), "parasite: prompt \"%s\"", p->prompt);
  CHECK (p->seed == 7 && p->steps == 2 && p->guidance == 4.0,
         "parasite: seed %" G_GUINT64_FORMAT ", %d steps, guidance %g", p->seed, p->steps, p->guidance);
  CHECK (want_job == DG_JOB_GENERATE || p->strength == want_strength, "parasite: strength %g, expected %g", p->strength,
         want_strength);
  printf ("%s: parameters parasite after an XCF round trip: %s\n", cas, text);
}

static void
check_result (const char *dir, const char *cas, const char *job, const char *prompt)
{
  g_autoptr (GHashTable) info = read_info (dir, cas);
  g_autoptr (GdkPixbuf) before = load (dir, cas, "before");
  g_autoptr (GdkPixbuf) after = load (dir, cas, "after");
  const int W = gdk_pixbuf_get_width (before), H = gdk_pixbuf_get_height (before);
  CHECK (gdk_pixbuf_get_width (after) == W && gdk_pixbuf_get_height (after) == H, "canvas size changed");

  const int new_layers = g_str_equal (job, "variations") ? 3 : 1;
  CHECK (info_int (info, "layers_after") == info_int (info, "layers_before") + new_layers, "%d layers before, %d after",
         info_int (info, "layers_before"), info_int (info, "layers_after"));
  const char *name = g_hash_table_lookup (info, "name");
  CHECK (name && g_str_equal (name, prompt), "layer named \"%s\", expected \"%s\"", name ? name : "(none)", prompt);

  const gboolean has_sel = info_int (info, "has_selection") != 0;
  int bx = 0, by = 0, bw = W, bh = H;
  g_autoptr (GdkPixbuf) sel = NULL;
  if (has_sel) {
    sel = load (dir, cas, "sel");
    int x0 = W, y0 = H, x1 = -1, y1 = -1;
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        if (px (sel, x, y)[0])
          x0 = MIN (x0, x), x1 = MAX (x1, x), y0 = MIN (y0, y), y1 = MAX (y1, y);
    CHECK (x1 >= 0, "the exported selection is empty");
    bx = x0, by = y0, bw = x1 - x0 + 1, bh = y1 - y0 + 1;
  }
  const int ox = info_int (info, "offset_x"), oy = info_int (info, "offset_y");
  const int lw = info_int (info, "width"), lh = info_int (info, "height");
  CHECK (ox == bx && oy == by && lw == bw && lh == bh,
         "%s: layer %dx%d at (%d, %d), expected the selection's box %dx%d at (%d, %d)", job, lw, lh, ox, oy, bw, bh, bx,
         by);

  const gboolean has_mask = info_int (info, "has_mask") != 0;
  CHECK (has_mask == has_sel, "layer mask %s, selection %s", has_mask ? "present" : "absent",
         has_sel ? "present" : "absent");
  if (has_mask && has_sel) {
    /* CASE-mask.png: the layer mask made a selection again, canvas-sized (cases.scm) */
    g_autoptr (GdkPixbuf) mask = load (dir, cas, "mask");
    CHECK (gdk_pixbuf_get_width (mask) == W && gdk_pixbuf_get_height (mask) == H, "mask export is %dx%d",
           gdk_pixbuf_get_width (mask), gdk_pixbuf_get_height (mask));
    int bad = 0;
    for (int y = 0; y < MIN (H, gdk_pixbuf_get_height (mask)); y++)
      for (int x = 0; x < MIN (W, gdk_pixbuf_get_width (mask)); x++)
        bad += abs ((int) px (mask, x, y)[0] - (int) px (sel, x, y)[0]) > 1;
    CHECK (bad == 0, "%d mask pixels differ from the selection", bad);
  }

  /* the promise: unselected pixels exactly as they were; selected ones changed somewhere */
  int changed_outside = 0, changed_inside = 0, inside = 0;
  const int nc = MIN (gdk_pixbuf_get_n_channels (before), gdk_pixbuf_get_n_channels (after));
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      const gboolean in = has_sel ? px (sel, x, y)[0] != 0 : TRUE;
      const gboolean same = memcmp (px (before, x, y), px (after, x, y), nc) == 0;
      inside += in;
      if (!in && !same) {
        if (changed_outside < 5)
          fprintf (stderr, "  outside the selection (%d, %d) changed\n", x, y);
        changed_outside++;
      }
      changed_inside += in && !same;
    }
  CHECK (changed_outside == 0, "%s: %d pixels outside the selection changed", job, changed_outside);
  CHECK (changed_inside > inside / 10, "%s: only %d of %d selected pixels changed", job, changed_inside, inside);
  check_params (dir, cas, job, prompt);
  printf ("%s %s: layer %dx%d at (%d, %d), mask %s, %d/%d selected pixels changed, 0 outside\n", cas, job, lw, lh, ox,
          oy, has_mask ? "= selection" : "none", changed_inside, inside);
}

/* Expand Canvas (CASE-{before,after}.png, CASE-info.txt from dg-expand-case): the canvas grew
 * by the sides; one new layer, no mask, covering the grown canvas at (0, 0) (the source layer
 * covered the old one), the source layer moved to (left, top); every old pixel bit-identical
 * at its new place; the new area painted (not one flat colour); the parameters parasite says
 * inpaint, the seed and steps, and ends with the prompt (it follows the expand instruction). */
static void
check_expand (const char *dir, const char *cas, const char *prompt, int l, int t, int r, int b)
{
  g_autoptr (GHashTable) info = read_info (dir, cas);
  g_autoptr (GdkPixbuf) before = load (dir, cas, "before");
  g_autoptr (GdkPixbuf) after = load (dir, cas, "after");
  const int W = gdk_pixbuf_get_width (before), H = gdk_pixbuf_get_height (before);
  const int CW = W + l + r, CH = H + t + b;
  CHECK (gdk_pixbuf_get_width (after) == CW && gdk_pixbuf_get_height (after) == CH, "canvas %dx%d, expected %dx%d",
         gdk_pixbuf_get_width (after), gdk_pixbuf_get_height (after), CW, CH);
  CHECK (info_int (info, "image_width") == CW && info_int (info, "image_height") == CH, "image %dx%d, expected %dx%d",
         info_int (info, "image_width"), info_int (info, "image_height"), CW, CH);
  CHECK (info_int (info, "layers_after") == info_int (info, "layers_before") + 1, "%d layers before, %d after",
         info_int (info, "layers_before"), info_int (info, "layers_after"));
  CHECK (info_int (info, "offset_x") == 0 && info_int (info, "offset_y") == 0 && info_int (info, "width") == CW &&
             info_int (info, "height") == CH,
         "new layer %dx%d at (%d, %d), expected %dx%d at (0, 0)", info_int (info, "width"), info_int (info, "height"),
         info_int (info, "offset_x"), info_int (info, "offset_y"), CW, CH);
  CHECK (info_int (info, "source_x") == l && info_int (info, "source_y") == t,
         "source layer at (%d, %d), expected (%d, %d)", info_int (info, "source_x"), info_int (info, "source_y"), l, t);
  CHECK (info_int (info, "has_mask") == 0, "the expand layer has a mask");
  if (failures)
    return;
  int changed_old = 0;
  g_autoptr (GHashTable) colours = g_hash_table_new (NULL, NULL);
  const int nb = gdk_pixbuf_get_n_channels (before), na = gdk_pixbuf_get_n_channels (after);
  for (int y = 0; y < CH; y++)
    for (int x = 0; x < CW; x++) {
      const guint8 *a = px (after, x, y);
      const int sx = x - l, sy = y - t;
      if (sx >= 0 && sx < W && sy >= 0 && sy < H) {
        if (memcmp (px (before, sx, sy), a, 3) != 0 || (na == 4 && nb == 3 && a[3] != 255)) {
          if (changed_old < 5)
            fprintf (stderr, "  old pixel (%d, %d), now at (%d, %d), changed\n", sx, sy, x, y);
          changed_old++;
        }
      } else
        g_hash_table_add (colours, GUINT_TO_POINTER (a[0] | a[1] << 8 | a[2] << 16));
    }
  CHECK (changed_old == 0, "%d old pixels changed", changed_old);
  CHECK (g_hash_table_size (colours) > 16, "the new area has only %u colours", g_hash_table_size (colours));

  g_autofree char *path = g_strdup_printf ("%s/%s-params.txt", dir, cas);
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (DgJobParams) p =
      g_file_get_contents (path, &text, NULL, NULL) ? dg_job_params_from_string (text, &error) : NULL;
  CHECK (p != NULL, "no parameters parasite that parses (%s)", error ? error->message : path);
  if (p) {
    CHECK (p->job == DG_JOB_INPAINT, "parasite: job %d", p->job);
    CHECK (g_str_has_suffix (p->prompt, prompt), "parasite: prompt \"%s\"", p->prompt);
    CHECK (p->seed == 7 && p->steps == 2, "parasite: seed %" G_GUINT64_FORMAT ", %d steps", p->seed, p->steps);
  }
  printf ("%s: %dx%d grown by %d, %d, %d, %d to %dx%d; 0 old pixels changed, %u colours in the new area\n", cas, W, H,
          l, t, r, b, CW, CH, g_hash_table_size (colours));
}

static void
check_untouched (const char *dir, const char *cas)
{
  g_autoptr (GHashTable) info = read_info (dir, cas);
  g_autoptr (GdkPixbuf) before = load (dir, cas, "before");
  g_autoptr (GdkPixbuf) after = load (dir, cas, "after");
  CHECK (info_int (info, "layers_after") == info_int (info, "layers_before"), "a failed call added a layer");
  CHECK (info_int (info, "failed") == 1, "the call with a bad model folder did not fail");
  const int W = gdk_pixbuf_get_width (before), H = gdk_pixbuf_get_height (before);
  int diff = 0;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) diff += memcmp (px (before, x, y), px (after, x, y), 3) != 0;
  CHECK (diff == 0, "a failed call changed %d pixels", diff);
  printf ("%s: failed cleanly, image untouched\n", cas);
}

int
main (int argc, char **argv)
{
  if (argc == 5 && g_str_equal (argv[1], "input"))
    make_input (argv[2], atoi (argv[3]), atoi (argv[4]));
  else if (argc == 6 && g_str_equal (argv[1], "result"))
    check_result (argv[2], argv[3], argv[4], argv[5]);
  else if (argc == 4 && g_str_equal (argv[1], "untouched"))
    check_untouched (argv[2], argv[3]);
  else if (argc == 9 && g_str_equal (argv[1], "expand"))
    check_expand (argv[2], argv[3], argv[4], atoi (argv[5]), atoi (argv[6]), atoi (argv[7]), atoi (argv[8]));
  else {
    fprintf (stderr,
             "usage: dg-gimp-check input OUT W H | result DIR CASE JOB PROMPT | untouched DIR CASE | expand DIR "
             "CASE PROMPT L T R B\n");
    return 2;
  }
  return failures ? 1 : 0;
}
