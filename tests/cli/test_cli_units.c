/* The parts of the `deepgen` command that need no model: values, progress, image files, the
 * plan and FLOP tables. */
#include <locale.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "cli_args.h"
#include "cli_i18n.h"
#include "cli_plan.h"
#include "image_io.h"
#include "progress.h"

static void
test_size (void)
{
  const struct {
    const char *text;
    int w, h;
  } good[] = {
    { "512x512", 512, 512 }, { "768X512", 768, 512 }, { "640×480", 640, 480 },
    { "1024", 1024, 1024 },  { "16*32", 16, 32 },     { "6144x1", 6144, 1 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (good); i++) {
    int w = 0, h = 0;
    GError *error = NULL;
    g_assert_true (cli_parse_size (good[i].text, &w, &h, &error));
    g_assert_no_error (error);
    g_assert_cmpint (w, ==, good[i].w);
    g_assert_cmpint (h, ==, good[i].h);
  }
  const char *bad[] = { "",    "x",         "512x",     "x512",          "0x512", "512x0", "-5x5", "512x512x3",
                        "abc", "512 x 512", "6145x512", "99999999999x1", "5.5x5", "0x10",  NULL };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    int w = 7, h = 7;
    GError *error = NULL;
    g_assert_false (cli_parse_size (bad[i], &w, &h, &error));
    g_assert_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE);
    g_assert_nonnull (strstr (error->message, "--size"));
    g_assert_cmpint (w, ==, 7);
    g_clear_error (&error);
  }
}

static void
test_enums (void)
{
  DgRng rng;
  DgPrecision p;
  DgJob job;
  guint64 seed;
  GError *error = NULL;
  g_assert_true (cli_parse_rng ("philox", &rng, NULL) && rng == DG_RNG_PHILOX);
  g_assert_true (cli_parse_rng ("torch", &rng, NULL) && rng == DG_RNG_TORCH_CPU);
  g_assert_false (cli_parse_rng ("mt", &rng, &error));
  g_assert_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE);
  g_clear_error (&error);
  g_assert_true (cli_parse_precision ("bf16", &p, NULL) && p == DG_PRECISION_BF16);
  g_assert_true (cli_parse_precision ("f32", &p, NULL) && p == DG_PRECISION_F32);
  g_assert_false (cli_parse_precision ("fp16", &p, &error));
  g_assert_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE);
  g_clear_error (&error);
  DgWeightFormat wf = DG_WEIGHTS_RELEASED;
  g_assert_true (cli_parse_weights ("q8", &wf, NULL) && wf == DG_WEIGHTS_Q8_0);
  g_assert_true (cli_parse_weights ("auto", &wf, NULL) && wf == DG_WEIGHTS_AUTO);
  g_assert_true (cli_parse_weights ("q4", &wf, NULL) && wf == DG_WEIGHTS_Q4_0);
  g_assert_true (cli_parse_weights ("released", &wf, NULL) && wf == DG_WEIGHTS_RELEASED);
  g_assert_false (cli_parse_weights ("q2", &wf, &error));
  g_assert_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE);
  g_assert_nonnull (strstr (error->message, "--weights"));
  g_clear_error (&error);
  g_assert_cmpstr (cli_weights_name (DG_WEIGHTS_Q8_0), ==, "q8_0");
  g_assert_true (cli_parse_job ("edit", &job, NULL) && job == DG_JOB_EDIT);
  g_assert_false (cli_parse_job ("paint", &job, NULL));
  g_assert_true (cli_parse_seed ("18446744073709551615", &seed, NULL) && seed == G_MAXUINT64);
  g_assert_true (cli_parse_seed ("0", &seed, NULL) && seed == 0);
  g_assert_false (cli_parse_seed ("-1", &seed, NULL));
  g_assert_false (cli_parse_seed ("18446744073709551616", &seed, NULL));
  g_assert_false (cli_parse_seed ("4x", &seed, NULL));
  g_assert_true (cli_check_int (50, 1, 1000, "--steps", NULL));
  g_assert_false (cli_check_int (0, 1, 1000, "--steps", &error));
  g_assert_nonnull (strstr (error->message, "--steps"));
  g_clear_error (&error);
  g_assert_false (cli_check_double (NAN, 0, 100, "--guidance", NULL));
  g_assert_false (cli_check_double (-1, 0, 100, "--guidance", NULL));
}

static void
test_utf8 (void)
{
  GError *error = NULL;
  g_autofree char *ok = cli_text_to_utf8 ("un renard roux · 狐狸", "--prompt", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (ok, ==, "un renard roux · 狐狸");
  /* Latin-1 "café" in a UTF-8 locale: the byte and where it is. */
  setlocale (LC_ALL, "C.UTF-8");
  char *bad = cli_text_to_utf8 ("caf\xe9 au lait", "--prompt", &error);
  g_assert_null (bad);
  g_assert_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE);
  g_assert_nonnull (strstr (error->message, "--prompt"));
  g_assert_nonnull (strstr (error->message, "UTF-8"));
  g_assert_nonnull (strstr (error->message, "0xE9"));
  g_assert_nonnull (strstr (error->message, "position 4"));
  g_clear_error (&error);
  setlocale (LC_ALL, "C");
}

static void
test_output_type (void)
{
  const char *type;
  g_assert_true (cli_output_type ("a.png", &type, NULL) && g_str_equal (type, "png"));
  g_assert_true (cli_output_type ("dir.x/A.PNG", &type, NULL) && g_str_equal (type, "png"));
  g_assert_true (cli_output_type ("a.jpg", &type, NULL) && g_str_equal (type, "jpeg"));
  g_assert_true (cli_output_type ("a.JPEG", &type, NULL) && g_str_equal (type, "jpeg"));
  GError *error = NULL;
  g_assert_false (cli_output_type ("a.webp", &type, &error));
  g_assert_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE);
  g_clear_error (&error);
  g_assert_false (cli_output_type ("png", &type, NULL));
  g_assert_false (cli_output_type ("dir.png/out", &type, NULL));
}

/* --n-results N: where each variation goes (cli_variation_path) */
static void
test_variation_path (void)
{
  const struct {
    const char *output;
    guint index;
    const char *expected;
  } cases[] = {
    { "out.png", 1, "out-1.png" },     { "out.png", 8, "out-8.png" },         { "dir.x/a.b.JPG", 3, "dir.x/a.b-3.JPG" },
    { "/tmp/.png", 2, "/tmp/-2.png" }, { "dir.png/out", 2, "dir.png/out-2" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *p = cli_variation_path (cases[i].output, cases[i].index);
    g_assert_cmpstr (p, ==, cases[i].expected);
  }
}

static void
test_duration (void)
{
  const struct {
    double s;
    const char *text;
  } cases[] = {
    { 0, "0:00" },    { 0.4, "0:00" },     { 59.6, "1:00" }, { 65, "1:05" },
    { 754, "12:34" }, { 3723, "1:02:03" }, { -3, "0:00" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *t = cli_format_duration (cases[i].s);
    g_assert_cmpstr (t, ==, cases[i].text);
  }
}

static const char *
stage_name (DgStage s)
{
  const char *names[] = { "Loading", "Encoding", "Bridging", "Denoising", "Decoding" };
  return names[s];
}

static void
test_progress_bar (void)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  CliProgress *p = cli_progress_new (f, CLI_PROGRESS_BAR, FALSE, stage_name);
  g_assert_null (cli_progress_render (p, 0));
  const gint64 s = 1000000;
  cli_progress_update (p, DG_STAGE_LOAD, 0, 1, 0);
  cli_progress_update (p, DG_STAGE_DENOISE, 0, 50, 2 * s);
  g_autofree char *t0 = cli_progress_render (p, 2 * s);
  g_assert_nonnull (strstr (t0, "Denoising"));
  g_assert_nonnull (strstr (t0, "0/50"));
  g_assert_null (strstr (t0, "ETA"));
  cli_progress_update (p, DG_STAGE_DENOISE, 10, 50, 12 * s); /* 1 s per step, 40 to go */
  g_autofree char *t1 = cli_progress_render (p, 12 * s);
  g_assert_nonnull (strstr (t1, "10/50"));
  g_assert_nonnull (strstr (t1, "1.0 s/step"));
  g_assert_nonnull (strstr (t1, "ETA 0:40"));
  g_assert_nonnull (strstr (t1, "[0:12]"));
  g_assert_nonnull (strstr (t1, " ####...................."
                                " 10/50")); /* 24 · 10/50 = 4.8 → 4 of 24 */
  cli_progress_update (p, DG_STAGE_DECODE, 0, 1, 60 * s);
  g_autofree char *t2 = cli_progress_render (p, 60 * s);
  g_assert_nonnull (strstr (t2, "Decoding"));
  g_assert_null (strstr (t2, "ETA"));
  cli_progress_end (p);
  cli_progress_free (p);
  fclose (f);
  /* Redrawn in place with carriage returns, cleared at the end, no newlines. */
  g_assert_nonnull (strstr (buf, "\r\033[K"));
  g_assert_null (strchr (buf, '\n'));
  free (buf);
}

static void
test_progress_lines (void)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  CliProgress *p = cli_progress_new (f, CLI_PROGRESS_LINES, FALSE, stage_name);
  const gint64 s = 1000000;
  cli_progress_update (p, DG_STAGE_LOAD, 0, 1, 0);
  cli_progress_update (p, DG_STAGE_ENCODE, 0, 1, s);
  for (int i = 0; i <= 50; i++) cli_progress_update (p, DG_STAGE_DENOISE, i, 50, (2 + i) * s);
  cli_progress_update (p, DG_STAGE_DECODE, 0, 1, 60 * s);
  cli_progress_update (p, DG_STAGE_DECODE, 1, 1, 61 * s);
  cli_progress_free (p);
  fclose (f);
  /* No control characters; one line per stage and per tenth of the steps. */
  g_assert_null (strchr (buf, '\r'));
  g_assert_null (strchr (buf, '\033'));
  g_auto (GStrv) lines = g_strsplit (buf, "\n", -1);
  guint n = g_strv_length (lines) - 1;
  g_assert_cmpuint (n, ==, 1 + 1 + 11 + 1);
  g_assert_nonnull (strstr (buf, "[0:00] Loading\n"));
  g_assert_nonnull (strstr (buf, "[0:07] Denoising 5/50, ETA 0:45\n"));
  g_assert_nonnull (strstr (buf, "Denoising 50/50"));
  free (buf);
}

static void
test_progress_quiet (void)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  CliProgress *p = cli_progress_new (f, CLI_PROGRESS_QUIET, TRUE, stage_name);
  cli_progress_update (p, DG_STAGE_DENOISE, 3, 50, 1);
  cli_progress_free (p);
  fclose (f);
  g_assert_cmpuint (len, ==, 0);
  free (buf);
}

static DgImage *
pattern (int w, int h, int ch)
{
  DgImage *img = dg_image_new (w, h, ch);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < ch; c++)
        img->pixels[(gsize) y * img->rowstride + x * ch + c] = (guint8) (x * 7 + y * 13 + c * 50);
  return img;
}

static gboolean
same_pixels (const DgImage *a, const DgImage *b)
{
  if (a->width != b->width || a->height != b->height || a->channels != b->channels)
    return FALSE;
  for (int y = 0; y < a->height; y++)
    if (memcmp (a->pixels + (gsize) y * a->rowstride, b->pixels + (gsize) y * b->rowstride,
                (gsize) a->width * a->channels))
      return FALSE;
  return TRUE;
}

static guint
count_entries (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;
  while (d && g_dir_read_name (d)) n++;
  return n;
}

static void
test_image_files (void)
{
  g_autofree char *dir = g_dir_make_tmp ("deepgen-cli-XXXXXX", NULL);
  g_autofree char *png = g_build_filename (dir, "out.png", NULL);
  g_autofree char *png4 = g_build_filename (dir, "alpha.png", NULL);
  g_autofree char *jpg = g_build_filename (dir, "out.jpg", NULL);
  GError *error = NULL;
  g_autoptr (DgImage) rgb = pattern (37, 23, 3), rgba = pattern (16, 9, 4);
  g_assert_true (cli_image_save (rgb, png, "png", &error));
  g_assert_no_error (error);
  g_assert_true (cli_image_save (rgba, png4, "png", &error));
  g_assert_true (cli_image_save (rgba, jpg, "jpeg", &error)); /* alpha dropped */
  g_assert_no_error (error);
  g_assert_cmpuint (count_entries (dir), ==, 3); /* no temporary files left */
  g_autoptr (DgImage) back = cli_image_load (png, &error);
  g_assert_no_error (error);
  g_assert_true (same_pixels (rgb, back));
  g_autoptr (DgImage) back4 = cli_image_load (png4, &error);
  g_assert_true (same_pixels (rgba, back4));
  g_autoptr (DgImage) backj = cli_image_load (jpg, &error);
  g_assert_no_error (error);
  g_assert_cmpint (backj->width, ==, 16);
  g_assert_cmpint (backj->channels, ==, 3);
  /* The new file has the permissions of a plain new file (umask applied), not mkstemp's 0600. */
  GStatBuf st;
  g_assert_cmpint (g_stat (png, &st), ==, 0);
  mode_t mask = umask (0);
  umask (mask);
  g_assert_cmpint (st.st_mode & 0777, ==, 0666 & ~mask);

  /* Masks: luminance, times alpha. */
  g_autoptr (DgImage) m = dg_image_new (4, 1, 4);
  const guint8 px[16] = { 255, 255, 255, 255, 0, 0, 0, 255, 255, 255, 255, 0, 255, 0, 0, 255 };
  memcpy (m->pixels, px, 16);
  g_autofree char *mpath = g_build_filename (dir, "mask.png", NULL);
  g_assert_true (cli_image_save (m, mpath, "png", NULL));
  g_autoptr (DgMask) mask_img = cli_mask_load (mpath, &error);
  g_assert_no_error (error);
  g_assert_cmpint (mask_img->channels, ==, 1);
  g_assert_cmpint (mask_img->pixels[0], ==, 255);
  g_assert_cmpint (mask_img->pixels[1], ==, 0);
  g_assert_cmpint (mask_img->pixels[2], ==, 0);  /* transparent white: keep */
  g_assert_cmpint (mask_img->pixels[3], ==, 76); /* red: 0.299 · 255 */

  /* Unreadable inputs: missing, not an image, truncated. */
  g_autofree char *missing = g_build_filename (dir, "nope.png", NULL);
  g_assert_null (cli_image_load (missing, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "nope.png"));
  g_clear_error (&error);
  g_autofree char *text = g_build_filename (dir, "text.png", NULL);
  g_assert_true (g_file_set_contents (text, "not an image", -1, NULL));
  g_assert_null (cli_image_load (text, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_autofree char *data = NULL;
  gsize n;
  g_assert_true (g_file_get_contents (png, &data, &n, NULL));
  g_autofree char *cut = g_build_filename (dir, "cut.png", NULL);
  g_assert_true (g_file_set_contents (cut, data, (gssize) (n / 2), NULL));
  g_assert_null (cli_image_load (cut, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* Unwritable targets fail before anything is written, and leave nothing behind. */
  g_autofree char *nodir = g_build_filename (dir, "no", "such", "out.png", NULL);
  g_assert_false (cli_output_writable (nodir, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_false (cli_output_writable (dir, &error));
  g_clear_error (&error);
  g_assert_false (cli_image_save (rgb, nodir, "png", &error));
  g_clear_error (&error);
  guint before = count_entries (dir);
  g_autofree char *subdir = g_build_filename (dir, "taken.png", NULL);
  g_assert_cmpint (g_mkdir (subdir, 0755), ==, 0); /* rename onto a folder fails */
  g_assert_false (cli_image_save (rgb, subdir, "png", &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_cmpuint (count_entries (dir), ==, before + 1);

  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (d))) {
    g_autofree char *p = g_build_filename (dir, name, NULL);
    g_remove (p);
  }
  g_rmdir (dir);
}

static void
test_tables (void)
{
  g_autoptr (DgPlanModel) m = dg_plan_model_new ();
  const CliPlanRow rows[] = { { DG_JOB_GENERATE, 512, 512 }, { DG_JOB_EDIT, 1024, 1024 } };
  GError *error = NULL;
  g_autofree char *t =
      cli_plan_table (m, "test", DG_PRECISION_BF16, DG_WEIGHTS_RELEASED, rows, 2, 0, 8ull << 30, "GPU", &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (t, "generate  512×512"));
  g_assert_nonnull (strstr (t, "edit      1024×1024"));
  g_assert_nonnull (strstr (t, "fits"));
  /* The "fits" column names the smaller weights that --weights auto would take. */
  static const struct {
    guint64 gib;
    const char *generate, *edit;
  } fits[] = { { 8, "yes", "yes" }, { 6, "yes", "q8_0" }, { 4, "q8_0", "q4_0" }, { 3, "q4_0", "no" } };
  for (guint i = 0; i < G_N_ELEMENTS (fits); i++) {
    g_autofree char *ft = cli_plan_table (m, "test", DG_PRECISION_BF16, DG_WEIGHTS_RELEASED, rows, 2, 0,
                                          fits[i].gib << 30, "GPU", &error);
    g_assert_no_error (error);
    g_auto (GStrv) lines = g_strsplit (ft, "\n", -1);
    const char *want[2] = { fits[i].generate, fits[i].edit };
    const char *prefix[2] = { "generate  512×512", "edit      1024×1024" };
    for (int k = 0; k < 2; k++) {
      gboolean found = FALSE;
      for (char **l = lines; *l; l++)
        if (g_str_has_prefix (*l, prefix[k])) {
          g_auto (GStrv) cols = g_strsplit_set (g_strstrip (*l), " ", -1);
          const char *last = NULL; /* the last column that is not the tiling mark */
          for (char **c = cols; *c; c++)
            if (**c && strcmp (*c, "*") != 0)
              last = *c;
          g_assert_cmpstr (last, ==, want[k]);
          found = TRUE;
        }
      g_assert_true (found);
    }
    g_assert_true ((strstr (ft, "--weights auto") != NULL) == (i >= 1));
  }
  /* What the service keeps between jobs like the last row, per device size (dg_plan_resident_set,
   * tested in unit_resident_set): on 24 GiB the whole model (its ~14 GB of weights beside the
   * largest stage), and a line for this device. */
  g_assert_nonnull (strstr (t, "Kept on the device between jobs of the service (deepgen serve), for edit 1024×1024"));
  g_assert_nonnull (strstr (t, "     24 GiB  all components\n"));
  g_assert_nonnull (strstr (t, "8.0 GiB, this device  "));
  DgPlanRequest r = DG_PLAN_REQUEST_INIT;
  g_autofree char *d = cli_plan_detail (m, &r, &error);
  g_assert_nonnull (strstr (d, "denoise"));
  g_autofree char *f = cli_flops_table (m, 512, 512, 0, 50);
  g_assert_nonnull (strstr (f, "DiT, 50 steps"));

  /* Columns are counted in terminal cells: CJK characters take two, combining marks none. */
  g_assert_cmpint (cli_text_width ("edit"), ==, 4);
  g_assert_cmpint (cli_text_width ("Größe"), ==, 5);
  g_assert_cmpint (cli_text_width ("大小"), ==, 4);
  g_assert_cmpint (cli_text_width ("ステップ"), ==, 8);
  g_assert_cmpint (cli_text_width ("e\xcc\x81"), ==, 1); /* e + combining acute */
  g_autoptr (GString) g = g_string_new (NULL);
  cli_append_padded (g, "大小", 6);
  g_string_append_c (g, '|');
  cli_append_right (g, "峰值", 6);
  g_string_append_c (g, '|');
  cli_append_padded (g, "toolong", 3);
  g_assert_cmpstr (g->str, ==, "大小  |  峰值|toolong");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli/size", test_size);
  g_test_add_func ("/cli/enums", test_enums);
  g_test_add_func ("/cli/utf8", test_utf8);
  g_test_add_func ("/cli/output-type", test_output_type);
  g_test_add_func ("/cli/variation-path", test_variation_path);
  g_test_add_func ("/cli/duration", test_duration);
  g_test_add_func ("/cli/progress-bar", test_progress_bar);
  g_test_add_func ("/cli/progress-lines", test_progress_lines);
  g_test_add_func ("/cli/progress-quiet", test_progress_quiet);
  g_test_add_func ("/cli/image-files", test_image_files);
  g_test_add_func ("/cli/tables", test_tables);
  return g_test_run ();
}
