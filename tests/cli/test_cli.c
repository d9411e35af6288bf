/* The `deepgen` command end to end, as a user runs it (spawned, exit codes and files checked).
 *
 *   /usage/…   no GPU needed: help, usage errors, missing model, bad input files, plan tables
 *   /run/…     the tiny model on Vulkan: generate, edit, inpaint, expand, cancellation, bench
 *   /i18n/…    a command under LANGUAGE=de when a German catalogue exists (skipped otherwise)
 *
 * ctest runs the groups as separate tests (-p /usage, -p /run, -p /i18n). */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "image_io.h"

#ifndef DEEPGEN_CLI
#define DEEPGEN_CLI "deepgen"
#endif
#ifndef DEEPGEN_TEST_DATA_DIR
#define DEEPGEN_TEST_DATA_DIR "tests/data"
#endif
#ifndef DEEPGEN_BUILD_DIR
#define DEEPGEN_BUILD_DIR "."
#endif

static char *tmp;  /* a scratch folder for this test run */
static char *tiny; /* the tiny model */

typedef struct {
  int status; /* exit code, or 128 + signal */
  char *out, *err;
} Result;

static void
result_clear (Result *r)
{
  g_free (r->out);
  g_free (r->err);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Result, result_clear)

static int
exit_status (int wait_status)
{
  if (WIFEXITED (wait_status))
    return WEXITSTATUS (wait_status);
  if (WIFSIGNALED (wait_status))
    return 128 + WTERMSIG (wait_status);
  return -1;
}

/* Runs deepgen with @args (NULL-terminated) and extra environment @env ("K=V", NULL-terminated). */
static void
run_env (Result *r, const char *const *env, const char *const *args)
{
  GPtrArray *argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) DEEPGEN_CLI);
  for (guint i = 0; args[i]; i++) g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_auto (GStrv) envp = g_get_environ ();
  envp = g_environ_unsetenv (envp, "DEEPGEN_MODEL");
  envp = g_environ_setenv (envp, "HOME", tmp, TRUE);
  envp = g_environ_setenv (envp, "XDG_DATA_HOME", tmp, TRUE);
  for (guint i = 0; env && env[i]; i++) {
    g_auto (GStrv) kv = g_strsplit (env[i], "=", 2);
    envp = g_environ_setenv (envp, kv[0], kv[1], TRUE);
  }
  int wait_status = 0;
  GError *error = NULL;
  memset (r, 0, sizeof *r);
  g_assert_true (g_spawn_sync (tmp, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, &r->out, &r->err,
                               &wait_status, &error));
  g_assert_no_error (error);
  r->status = exit_status (wait_status);
  g_ptr_array_unref (argv);
  g_test_message ("deepgen %s → %d\n%s%s", args[0] ? args[0] : "", r->status, r->out, r->err);
  g_assert_null (strstr (r->err, "vkc: validation"));
  g_assert_null (strstr (r->err, "CRITICAL"));
}

#define RUN(r, ...) run_env ((r), NULL, (const char *const[]) { __VA_ARGS__, NULL })
#define RUN_ENV(r, env, ...) run_env ((r), (env), (const char *const[]) { __VA_ARGS__, NULL })

static char *
path_in_tmp (const char *name)
{
  return g_build_filename (tmp, name, NULL);
}

static void
assert_no_leftovers (const char *name)
{
  g_autofree char *p = path_in_tmp (name);
  g_assert_false (g_file_test (p, G_FILE_TEST_EXISTS));
  g_autoptr (GDir) d = g_dir_open (tmp, 0, NULL);
  const char *entry;
  g_autofree char *prefix = g_strdup_printf (".%s.", name);
  while ((entry = g_dir_read_name (d))) g_assert_false (g_str_has_prefix (entry, prefix));
}

/* ---- usage ------------------------------------------------------------------------------- */

static void
test_help (void)
{
  g_auto (Result) r = { 0 }, g = { 0 }, e = { 0 }, i = { 0 }, n = { 0 };
  RUN (&r, "--help");
  g_assert_cmpint (r.status, ==, 0);
  for (const char *const *w = (const char *const[]) { "generate", "edit", "inpaint", "info", "bench", "Examples",
                                                      "deepgenteam/DeepGen-1.0-diffusers", "Exit status", NULL };
       *w; w++)
    g_assert_nonnull (strstr (r.out, *w));
  RUN (&g, "generate", "--help");
  g_assert_cmpint (g.status, ==, 0);
  for (const char *const *w = (const char *const[]) { "--prompt", "--negative", "--size", "--steps", "--guidance",
                                                      "--seed", "--rng", "--precision", "--model", "--output",
                                                      "Examples:", "deepgen generate --prompt", "130", NULL };
       *w; w++)
    g_assert_nonnull (strstr (g.out, *w));
  RUN (&e, "edit", "--help");
  g_assert_nonnull (strstr (e.out, "--image"));
  g_assert_nonnull (strstr (e.out, "--strength"));
  g_assert_null (strstr (e.out, "--mask"));
  RUN (&i, "help", "inpaint");
  g_assert_cmpint (i.status, ==, 0);
  g_assert_nonnull (strstr (i.out, "--mask"));
  g_assert_nonnull (strstr (i.out, "--feather"));
  RUN (&n, "info", "--help");
  g_assert_nonnull (strstr (n.out, "--plan"));
}

static void
test_usage_errors (void)
{
  const char *const cases[][8] = {
    { NULL },                                   /* no command */
    { "paint", NULL },                          /* unknown command */
    { "generate", NULL },                       /* no prompt */
    { "generate", "--prompt", "   ", NULL },    /* blank prompt */
    { "generate", "-p", "x", "--bogus", NULL }, /* unknown option */
    { "generate", "-p", "x", "--size", "0x512", NULL },
    { "generate", "-p", "x", "--size", "big", NULL },
    { "generate", "-p", "x", "--size", "9000x9000", NULL },
    { "generate", "-p", "x", "--steps", "0", NULL },
    { "generate", "-p", "x", "--steps", "many", NULL },
    { "generate", "-p", "x", "--guidance", "-2", NULL },
    { "generate", "-p", "x", "--seed", "-1", NULL },
    { "generate", "-p", "x", "--rng", "mt19937", NULL },
    { "generate", "-p", "x", "--precision", "fp8", NULL },
    { "generate", "-p", "x", "-o", "out.webp", NULL },
    { "generate", "-p", "x", "extra", NULL }, /* prompt twice */
    { "edit", "-p", "x", NULL },              /* no image */
    { "edit", "-p", "x", "-i", "a.png", "--strength", "1.5", NULL },
    { "inpaint", "-p", "x", "-i", "a.png", NULL },     /* no mask */
    { "inpaint", "-p", "x", "--mask", "m.png", NULL }, /* no image */
    { "expand", "--left", "8", NULL },                 /* no image */
    { "expand", "a.png", "b.png", "--left", "8", NULL },
    { "expand", "a.png", NULL }, /* nothing to add */
    { "expand", "a.png", "--aspect", "16:9", "--left", "4", NULL },
    { "expand", "a.png", "--left", "4", "--from", "a.png", NULL },
    { "info", "--size", "x", NULL },
    { "bench", "--job", "paint", NULL },
    { "bench", "nope", NULL },
    { "bench", "--synthetic", "-m", "somewhere", NULL }, /* a model folder and no folder */
    { "bench", "--layers", "1", NULL },                  /* --layers without --synthetic */
    { "bench", "--synthetic", "--layers", "-1", NULL },
    { "bench", "--synthetic", "--service", "--runs", "3", NULL }, /* the service bench runs its own three */
    { "generate", "-p", "x", "--layers", "1", NULL },
    { "generate", "-p", "x", "--synthetic", "-m", "somewhere", NULL },
    { "generate", "-p", "x", "--n-results", "0", NULL },
    { "generate", "-p", "x", "--n-results", "9", NULL },
    { "edit", "-p", "x", "-i", "a.png", "--n-results", "-1", NULL },
  };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    g_auto (Result) r = { 0 };
    const char *args[10] = { NULL };
    for (guint k = 0; k < 8 && cases[c][k]; k++) args[k] = cases[c][k];
    run_env (&r, NULL, args);
    g_assert_cmpint (r.status, ==, 2);
    g_assert_cmpstr (r.out, ==, "");
    g_assert_true (strstr (r.err, "deepgen") != NULL);
  }
  assert_no_leftovers ("generated.png");
  /* the range is named */
  g_auto (Result) n = { 0 };
  RUN (&n, "inpaint", "-p", "x", "-i", "a.png", "--mask", "m.png", "--n-results", "9");
  g_assert_cmpint (n.status, ==, 2);
  g_assert_nonnull (strstr (n.err, "--n-results: 9 is out of range (1 to 8)"));
}

static void
test_bad_utf8 (void)
{
  g_auto (Result) r = { 0 }, c = { 0 };
  RUN (&r, "generate", "-m", tiny, "--prompt", "caf\xe9 cr\xe8me", "-o", "x.png");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "--prompt"));
  g_assert_nonnull (strstr (r.err, "UTF-8"));
  /* The same in the C locale (charset ASCII): still refused, with the same clarity. */
  const char *const c_locale[] = { "LC_ALL=C", "LANGUAGE=", NULL };
  RUN_ENV (&c, c_locale, "generate", "-m", tiny, "-n", "\xff", "-p", "ok", "-o", "x.png");
  g_assert_cmpint (c.status, ==, 2);
  g_assert_nonnull (strstr (c.err, "--negative"));
  assert_no_leftovers ("x.png");
}

/* A copy of the tiny model with two files missing. */
static char *
partial_model (void)
{
  g_autofree char *dst = path_in_tmp ("partial-model");
  g_autofree char *cmd = g_strdup_printf ("cp -r '%s' '%s'", tiny, dst);
  g_assert_cmpint (system (cmd), ==, 0);
  g_autofree char *a = g_build_filename (dst, "vlm", "model-00002-of-00002.safetensors", NULL);
  g_autofree char *b = g_build_filename (dst, "transformer", "diffusion_pytorch_model.safetensors", NULL);
  g_assert_cmpint (g_remove (a), ==, 0);
  g_assert_cmpint (g_remove (b), ==, 0);
  return g_steal_pointer (&dst);
}

static void
test_missing_model (void)
{
  g_autofree char *partial = partial_model ();
  g_auto (Result) r = { 0 }, d = { 0 }, e = { 0 }, i = { 0 }, c = { 0 };
  RUN (&r, "generate", "-m", partial, "-p", "a fox", "-o", "m.png");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "incomplete"));
  g_assert_nonnull (strstr (r.err, "  vlm/model-00002-of-00002.safetensors\n"));
  g_assert_nonnull (strstr (r.err, "  transformer/diffusion_pytorch_model.safetensors\n"));
  g_assert_null (strstr (r.err, "vae/")); /* exactly what is missing, nothing else */
  g_assert_nonnull (strstr (r.err, "deepgenteam/DeepGen-1.0-diffusers"));
  g_assert_nonnull (strstr (r.err, "14.4 GB"));
  g_assert_nonnull (strstr (r.err, "deepgen download --model "));
  assert_no_leftovers ("m.png");
  /* The default folder: $DEEPGEN_MODEL, else the user data folder (here: empty). */
  const char *const env_model[] = { "DEEPGEN_MODEL=/nonexistent/dg", NULL };
  RUN_ENV (&d, env_model, "edit", "-i", "a.png", "-p", "x");
  g_assert_cmpint (d.status, ==, 1);
  g_assert_nonnull (strstr (d.err, "/nonexistent/dg"));
  g_assert_nonnull (strstr (d.err, "does not exist"));
  RUN (&e, "generate", "-p", "x");
  g_assert_cmpint (e.status, ==, 1);
  g_autofree char *deflt = g_build_filename (tmp, "deepgen", "DeepGen-1.0-diffusers", NULL);
  g_assert_nonnull (strstr (e.err, deflt));
  /* info reports it too, and --check says it with the exit status. */
  RUN (&i, "info", "--no-device", "-m", partial);
  g_assert_cmpint (i.status, ==, 0);
  g_assert_nonnull (strstr (i.out, "transformer/diffusion_pytorch_model.safetensors"));
  RUN (&c, "info", "--check", "-m", partial);
  g_assert_cmpint (c.status, ==, 1);
  g_auto (Result) ok = { 0 };
  RUN (&ok, "info", "--check", "-m", tiny);
  g_assert_cmpint (ok.status, ==, 0);
}

static void
test_bad_images (void)
{
  g_autofree char *text = path_in_tmp ("text.png");
  g_assert_true (g_file_set_contents (text, "this is not a PNG", -1, NULL));
  g_auto (Result) a = { 0 }, b = { 0 }, c = { 0 };
  RUN (&a, "edit", "-m", tiny, "-i", "/nonexistent/in.png", "-p", "x", "-o", "e.png");
  g_assert_cmpint (a.status, ==, 1);
  g_assert_nonnull (strstr (a.err, "/nonexistent/in.png"));
  RUN (&b, "edit", "-m", tiny, "-i", text, "-p", "x", "-o", "e.png");
  g_assert_cmpint (b.status, ==, 1);
  g_assert_nonnull (strstr (b.err, "text.png"));
  /* A mask of another size. */
  g_autoptr (DgImage) img = dg_image_new (32, 32, 3), mask = dg_image_new (16, 32, 3);
  memset (img->pixels, 90, (gsize) img->rowstride * 32);
  memset (mask->pixels, 255, (gsize) mask->rowstride * 32);
  g_autofree char *ip = path_in_tmp ("img32.png"), *mp = path_in_tmp ("mask16.png");
  g_assert_true (cli_image_save (img, ip, "png", NULL));
  g_assert_true (cli_image_save (mask, mp, "png", NULL));
  RUN (&c, "inpaint", "-m", tiny, "-i", ip, "--mask", mp, "-p", "x", "-o", "e.png");
  g_assert_cmpint (c.status, ==, 1);
  g_assert_nonnull (strstr (c.err, "same size"));
  assert_no_leftovers ("e.png");
  /* An output folder that does not exist: refused before any work. */
  g_auto (Result) d = { 0 };
  RUN (&d, "generate", "-m", tiny, "-p", "x", "-o", "/nonexistent/dir/out.png");
  g_assert_cmpint (d.status, ==, 1);
  g_assert_nonnull (strstr (d.err, "/nonexistent/dir"));
}

static void
test_info_plan (void)
{
  g_auto (Result) r = { 0 }, s = { 0 }, f = { 0 };
  RUN (&r, "info", "--no-device", "--plan");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "DeepGen 1.0 (built-in configs)"));
  for (const char *const *w = (const char *const[]) { "generate  512×512", "edit      512×512", "generate  1024×1024",
                                                      "edit      1024×1024", "needs", NULL };
       *w; w++)
    g_assert_nonnull (strstr (r.out, *w));
  RUN (&s, "info", "--no-device", "--plan", "--size", "768x512", "--precision", "f32");
  g_assert_cmpint (s.status, ==, 0);
  g_assert_nonnull (strstr (s.out, "generate 768×512"));
  g_assert_nonnull (strstr (s.out, "f32"));
  RUN (&f, "bench", "flops");
  g_assert_cmpint (f.status, ==, 0);
  g_assert_nonnull (strstr (f.out, "DiT, 50 steps"));
  g_assert_nonnull (strstr (f.out, "1024×1024"));
}

/* ---- runs on the tiny model ----------------------------------------------------------------- */

static DgImage *
load (const char *name)
{
  g_autofree char *p = path_in_tmp (name);
  GError *error = NULL;
  DgImage *img = cli_image_load (p, &error);
  g_assert_no_error (error);
  return img;
}

static void
save_input (const char *name, int w, int h)
{
  g_autoptr (DgImage) img = dg_image_new (w, h, 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      guint8 *p = img->pixels + (gsize) y * img->rowstride + 3 * x;
      p[0] = (guint8) (x * 255 / w);
      p[1] = (guint8) (y * 255 / h);
      p[2] = (guint8) ((x ^ y) & 0xff);
    }
  g_autofree char *p = path_in_tmp (name);
  g_assert_true (cli_image_save (img, p, "png", NULL));
}

static void
test_generate (void)
{
  g_auto (Result) r = { 0 }, j = { 0 };
  RUN (&r, "generate", "-m", tiny, "--prompt", "a red fox in the snow", "--size", "128x96", "--steps", "2", "-o",
       "gen.png");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "gen.png"));
  g_assert_nonnull (strstr (r.err, "Denoising")); /* plain progress lines: stderr is not a terminal */
  g_assert_null (strstr (r.err, "\r"));
  g_autoptr (DgImage) img = load ("gen.png");
  g_assert_cmpint (img->width, ==, 128);
  g_assert_cmpint (img->height, ==, 96);
  g_assert_cmpint (img->channels, ==, 3);
  /* Positional prompt, JPEG, the torch generator, f32, quiet. */
  RUN (&j, "generate", "-m", tiny, "a", "lighthouse", "--size", "64", "--steps", "1", "--rng", "torch", "--seed", "7",
       "--precision", "f32", "-q", "-o", "gen.jpg");
  g_assert_cmpint (j.status, ==, 0);
  g_assert_cmpstr (j.err, ==, "");
  g_autoptr (DgImage) jpg = load ("gen.jpg");
  g_assert_cmpint (jpg->width, ==, 64);
  g_assert_cmpint (jpg->height, ==, 64);
  /* The same request twice gives the same image. */
  g_auto (Result) a = { 0 }, b = { 0 };
  RUN (&a, "generate", "-m", tiny, "-p", "x", "--size", "64x64", "--steps", "1", "--seed", "3", "-q", "-o", "s1.png");
  RUN (&b, "generate", "-m", tiny, "-p", "x", "--size", "64x64", "--steps", "1", "--seed", "3", "-q", "-o", "s2.png");
  g_assert_cmpint (a.status, ==, 0);
  g_assert_cmpint (b.status, ==, 0);
  g_autoptr (DgImage) s1 = load ("s1.png"), s2 = load ("s2.png");
  g_assert_cmpmem (s1->pixels, (gsize) s1->rowstride * 64, s2->pixels, (gsize) s2->rowstride * 64);
}

static void
test_edit (void)
{
  save_input ("in160x96.png", 160, 96);
  save_input ("in64.png", 64, 64);
  g_auto (Result) r = { 0 }, m = { 0 };
  RUN (&r, "edit", "-m", tiny, "-i", "in160x96.png", "-p", "make it green", "--steps", "2", "-o", "edit.png");
  g_assert_cmpint (r.status, ==, 0);
  g_autoptr (DgImage) img = load ("edit.png");
  g_assert_cmpint (img->width, ==, 160); /* one reference: its size (multiples of 32) */
  g_assert_cmpint (img->height, ==, 96);
  g_auto (Result) s = { 0 };
  RUN (&s, "edit", "-m", tiny, "-i", "in160x96.png", "-p", "make it green", "--steps", "2", "--strength", "0.5", "-o",
       "edit-half.png");
  g_assert_cmpint (s.status, ==, 0);
  g_autoptr (DgImage) half = load ("edit-half.png");
  g_assert_cmpint (half->width, ==, 160);
  g_assert_cmpint (half->height, ==, 96);
  RUN (&m, "edit", "-m", tiny, "-i", "in160x96.png", "-i", "in64.png", "-p", "combine them", "--size", "96x64",
       "--steps", "1", "-o", "edit2.png");
  g_assert_cmpint (m.status, ==, 0);
  g_autoptr (DgImage) two = load ("edit2.png");
  g_assert_cmpint (two->width, ==, 96); /* several references: --size */
  g_assert_cmpint (two->height, ==, 64);
}

static gboolean
same_file (const char *a, const char *b)
{
  g_autofree char *pa = path_in_tmp (a), *pb = path_in_tmp (b), *ta = NULL, *tb = NULL;
  gsize na = 0, nb = 0;
  g_assert_true (g_file_get_contents (pa, &ta, &na, NULL));
  g_assert_true (g_file_get_contents (pb, &tb, &nb, NULL));
  return na == nb && memcmp (ta, tb, na) == 0;
}

/* --from FILE.png: the parameters the PNG carries run again to the same bytes; options override
 * them; a PNG of another job or without parameters is a usage error. */
static void
test_from (void)
{
  g_auto (Result) a = { 0 }, b = { 0 }, c = { 0 }, e = { 0 }, n = { 0 };
  RUN (&a, "generate", "-m", tiny, "-p", "ein Fuchs 狐", "-n", "blur", "--size", "64x48", "--steps", "2", "--seed", "9",
       "--rng", "torch", "--precision", "f32", "--guidance", "3.5", "-q", "-o", "from1.png");
  g_assert_cmpint (a.status, ==, 0);
  RUN (&b, "generate", "-m", tiny, "--from", "from1.png", "-q", "-o", "from2.png");
  g_assert_cmpint (b.status, ==, 0);
  g_assert_true (same_file ("from1.png", "from2.png"));
  RUN (&c, "generate", "-m", tiny, "--from", "from1.png", "--seed", "10", "-q", "-o", "from3.png");
  g_assert_cmpint (c.status, ==, 0);
  g_assert_false (same_file ("from1.png", "from3.png"));
  RUN (&e, "edit", "-m", tiny, "--from", "from1.png", "-i", "from1.png", "-o", "from4.png");
  g_assert_cmpint (e.status, ==, 2);
  g_assert_nonnull (strstr (e.err, "generate"));
  save_input ("plain.png", 32, 32);
  RUN (&n, "generate", "-m", tiny, "--from", "plain.png", "-o", "from5.png");
  g_assert_cmpint (n.status, ==, 2);
  g_assert_nonnull (strstr (n.err, "plain.png"));
}

/* @out holds @src at (x, y) bit for bit (alpha too); the rest is opaque; returns how many
 * distinct colours the rest has. */
static guint
assert_expanded (const DgImage *src, const DgImage *out, int x0, int y0)
{
  const int nc = src->channels;
  g_assert_cmpint (out->channels, ==, nc);
  g_autoptr (GHashTable) colours = g_hash_table_new (NULL, NULL);
  for (int y = 0; y < out->height; y++)
    for (int x = 0; x < out->width; x++) {
      const guint8 *o = out->pixels + (gsize) y * out->rowstride + (gsize) nc * x;
      const int sx = x - x0, sy = y - y0;
      if (sx >= 0 && sx < src->width && sy >= 0 && sy < src->height)
        g_assert_cmpmem (src->pixels + (gsize) sy * src->rowstride + (gsize) nc * sx, nc, o, nc);
      else {
        g_hash_table_add (colours, GUINT_TO_POINTER (o[0] | o[1] << 8 | o[2] << 16));
        if (nc == 4)
          g_assert_cmpuint (o[3], ==, 255);
      }
    }
  return g_hash_table_size (colours);
}

/* deepgen expand: the canvas grows by the sides (odd sizes, one side zero) or to an aspect ratio,
 * every old pixel is in the output bit for bit, and the new area is painted (not one flat colour). */
static void
test_expand (void)
{
  const int W = 63, H = 47;
  save_input ("small.png", W, H);
  g_autoptr (DgImage) src = load ("small.png");
  g_auto (Result) r = { 0 }, a = { 0 };
  RUN (&r, "expand", "-m", tiny, "small.png", "--left", "16", "--right", "7", "--bottom", "13", "--steps", "2", "-o",
       "expanded.png");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.err, "63×47"));
  g_autoptr (DgImage) out = load ("expanded.png");
  g_assert_cmpint (out->width, ==, W + 16 + 7);
  g_assert_cmpint (out->height, ==, H + 13);
  g_assert_cmpuint (assert_expanded (src, out, 16, 0), >, 16);

  /* 16:9: 47 · 16 / 9 = 83.6 → 84 wide, 21 more: 10 on the left, 11 on the right */
  RUN (&a, "expand", "-m", tiny, "small.png", "--aspect", "16:9", "--prompt", "a sandy beach", "--steps", "2", "-q",
       "-o", "wide.png");
  g_assert_cmpint (a.status, ==, 0);
  g_autoptr (DgImage) wide = load ("wide.png");
  g_assert_cmpint (wide->width, ==, 84);
  g_assert_cmpint (wide->height, ==, H);
  g_assert_cmpuint (assert_expanded (src, wide, 10, 0), >, 16);

  /* RGBA: the old alpha kept, the new area opaque */
  g_autoptr (DgImage) rgba = dg_image_new (40, 30, 4);
  for (int y = 0; y < 30; y++)
    for (int x = 0; x < 40; x++) {
      guint8 *p = rgba->pixels + (gsize) y * rgba->rowstride + 4 * x;
      p[0] = (guint8) (x * 6), p[1] = (guint8) (y * 8), p[2] = 90, p[3] = (guint8) (60 + x * 4);
    }
  g_autofree char *rp = path_in_tmp ("rgba.png");
  g_assert_true (cli_image_save (rgba, rp, "png", NULL));
  g_auto (Result) t = { 0 };
  RUN (&t, "expand", "-m", tiny, "rgba.png", "--top", "6", "--right", "9", "--steps", "1", "-q", "-o", "rgba-out.png");
  g_assert_cmpint (t.status, ==, 0);
  g_autoptr (DgImage) rgba_in = load ("rgba.png"), rgba_out = load ("rgba-out.png");
  g_assert_cmpint (rgba_out->width, ==, 49);
  g_assert_cmpint (rgba_out->height, ==, 36);
  assert_expanded (rgba_in, rgba_out, 0, 6);
}

/* deepgen expand's refusals before any GPU work: usage errors (exit 2) that say what to change. */
static void
test_expand_errors (void)
{
  save_input ("e64x48.png", 64, 48);
  const struct {
    const char *option, *value, *says;
  } cases[] = {
    { "--aspect", "4:3", "nothing to add" }, /* 64×48 is 4:3 already */
    { "--aspect", "wide", "WIDTH:HEIGHT" },  { "--aspect", "16384:1", "16384" },
    { "--left", "20000", "16384" },          { "--top", "-3", "negative" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_auto (Result) r = { 0 };
    RUN (&r, "expand", "-m", tiny, "e64x48.png", cases[i].option, cases[i].value, "-o", "never.png");
    g_assert_cmpint (r.status, ==, 2);
    g_assert_nonnull (strstr (r.err, cases[i].says));
  }
  assert_no_leftovers ("never.png");
}

static void
test_inpaint (void)
{
  const int W = 96, H = 80;
  save_input ("src.png", W, H);
  g_autoptr (DgImage) mask = dg_image_new (W, H, 3);
  memset (mask->pixels, 0, (gsize) mask->rowstride * H);
  for (int y = 20; y < 50; y++)
    for (int x = 30; x < 70; x++) memset (mask->pixels + (gsize) y * mask->rowstride + 3 * x, 255, 3);
  g_autofree char *mp = path_in_tmp ("mask.png");
  g_assert_true (cli_image_save (mask, mp, "png", NULL));
  g_auto (Result) r = { 0 };
  RUN (&r, "inpaint", "-m", tiny, "-i", "src.png", "--mask", "mask.png", "-p", "a cat", "--steps", "2", "-o",
       "inpaint.png");
  g_assert_cmpint (r.status, ==, 0);
  g_autoptr (DgImage) src = load ("src.png"), out = load ("inpaint.png");
  g_assert_cmpint (out->width, ==, W);
  g_assert_cmpint (out->height, ==, H);
  guint changed = 0;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      const guint8 *s = src->pixels + (gsize) y * src->rowstride + 3 * x;
      const guint8 *o = out->pixels + (gsize) y * out->rowstride + 3 * x;
      gboolean inside = x >= 30 && x < 70 && y >= 20 && y < 50;
      if (!inside)
        g_assert_cmpmem (s, 3, o, 3); /* outside the mask: bit-identical */
      else
        changed += memcmp (s, o, 3) != 0;
    }
  g_assert_cmpuint (changed, >, 0);
}

/* --n-results N: N files OUT-1 … OUT-N, each the same file, byte for byte (pixels and stored
 * parameters), as a single run with its seed (seed, seed + 1, …) writes; for generate, edit and
 * inpaint. */
static void
test_variations (void)
{
  save_input ("vsrc.png", 64, 64);
  g_autoptr (DgImage) mask = dg_image_new (64, 64, 3);
  memset (mask->pixels, 0, (gsize) mask->rowstride * 64);
  for (int y = 8; y < 40; y++) memset (mask->pixels + (gsize) y * mask->rowstride + 3 * 16, 255, 3 * 32);
  g_autofree char *mp = path_in_tmp ("vmask.png");
  g_assert_true (cli_image_save (mask, mp, "png", NULL));
  const struct {
    const char *job;
    guint n;
    const char *args[6];
  } jobs[] = {
    { "generate", 3, { "--size", "64x48", NULL } },
    { "edit", 2, { "-i", "vsrc.png", NULL } },
    { "inpaint", 2, { "-i", "vsrc.png", "--mask", "vmask.png", NULL } },
  };
  for (guint k = 0; k < G_N_ELEMENTS (jobs); k++) {
    g_autofree char *n_text = g_strdup_printf ("%u", jobs[k].n);
    g_autofree char *out = g_strdup_printf ("var-%s.png", jobs[k].job);
    const char *args[20] = { jobs[k].job, "-m", tiny, "-p", "a fox", "--steps", "2", "--seed", "5", "-q" };
    guint a = 10;
    for (guint i = 0; jobs[k].args[i]; i++) args[a++] = jobs[k].args[i];
    args[a] = "--n-results", args[a + 1] = n_text, args[a + 2] = "-o", args[a + 3] = out;
    g_auto (Result) v = { 0 };
    run_env (&v, NULL, args);
    g_assert_cmpint (v.status, ==, 0);
    g_autofree char *first = g_strdup_printf ("var-%s-1.png", jobs[k].job);
    g_autofree char *last = g_strdup_printf ("var-%s-%u.png", jobs[k].job, jobs[k].n);
    g_assert_nonnull (strstr (v.out, first));
    g_assert_nonnull (strstr (v.out, last));
    assert_no_leftovers (out); /* no file under the plain name */
    for (guint i = 0; i < jobs[k].n; i++) {
      g_autofree char *seed = g_strdup_printf ("%u", 5 + i);
      g_autofree char *single = g_strdup_printf ("single-%s-%u.png", jobs[k].job, i + 1);
      g_autofree char *variation = g_strdup_printf ("var-%s-%u.png", jobs[k].job, i + 1);
      args[8] = seed;
      args[a] = "-o", args[a + 1] = single, args[a + 2] = NULL;
      g_auto (Result) s = { 0 };
      run_env (&s, NULL, args);
      g_assert_cmpint (s.status, ==, 0);
      g_autoptr (DgImage) vi = load (variation), si = load (single);
      g_assert_cmpint (vi->width, ==, si->width);
      g_assert_cmpint (vi->height, ==, si->height);
      g_assert_cmpmem (vi->pixels, (gsize) vi->rowstride * vi->height, si->pixels, (gsize) si->rowstride * si->height);
      g_assert_true (same_file (variation, single)); /* the parameters too: each records its own seed */
    }
    g_autofree char *after = g_strdup_printf ("var-%s-%u.png", jobs[k].job, jobs[k].n + 1);
    assert_no_leftovers (after);
  }
}

/* Ctrl-C during a run: exit 130, nothing written, no temporary file. An engine failure:
 * exit 1, nothing written. */
static void
test_cancel (void)
{
  const char *argv[] = { DEEPGEN_CLI, "generate", "-m",   tiny, "-p",         "a slow fox", "--size",
                         "128x128",   "--steps",  "1000", "-o", "cancel.png", NULL };
  GPid pid;
  int err_fd;
  GError *error = NULL;
  g_assert_true (g_spawn_async_with_pipes (tmp, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid, NULL,
                                           NULL, &err_fd, &error));
  g_assert_no_error (error);
  /* Wait until the denoising loop runs (plain progress lines on the pipe). */
  GString *seen = g_string_new (NULL);
  char buf[256];
  gssize n;
  while (!strstr (seen->str, "Denoising 0/") && (n = read (err_fd, buf, sizeof buf - 1)) > 0)
    g_string_append_len (seen, buf, n);
  g_assert_nonnull (strstr (seen->str, "Denoising"));
  kill (pid, SIGINT);
  while ((n = read (err_fd, buf, sizeof buf - 1)) > 0) g_string_append_len (seen, buf, n);
  close (err_fd);
  int wait_status;
  g_assert_cmpint (waitpid (pid, &wait_status, 0), ==, pid);
  g_spawn_close_pid (pid);
  g_test_message ("%s", seen->str);
  g_assert_cmpint (exit_status (wait_status), ==, 130);
  g_assert_nonnull (strstr (seen->str, "nothing was written"));
  g_string_free (seen, TRUE);
  assert_no_leftovers ("cancel.png");

  g_auto (Result) r = { 0 };
  RUN (&r, "generate", "-m", tiny, "-p", "x", "--device", "no-such-gpu-anywhere", "-o", "fail.png");
  g_assert_cmpint (r.status, ==, 1);
  assert_no_leftovers ("fail.png");
}

/* A job that needs more GPU memory than the device has is refused before it starts (the memory
 * plan, DESIGN.md §5): exit 1, the needed and available sizes in the message, nothing written.
 * DEEPGEN_VK_FAKE_DEVICE_BYTES makes the device report 64 MiB. */
static void
test_out_of_memory (void)
{
  const char *const small[] = { "DEEPGEN_VK_FAKE_DEVICE_BYTES=67108864", NULL };
  g_auto (Result) r = { 0 };
  RUN_ENV (&r, small, "generate", "-m", tiny, "-p", "a red fox", "--size", "128x128", "--steps", "1", "-o", "oom.png");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "GPU memory"));
  g_assert_nonnull (strstr (r.err, "MiB of GPU memory at 128×128"));
  g_autofree char *have = g_format_size_full (64u << 20, G_FORMAT_SIZE_IEC_UNITS);
  g_assert_nonnull (strstr (r.err, have));
  g_assert_null (strstr (r.err, "Denoising"));
  assert_no_leftovers ("oom.png");
}

static void
test_bench (void)
{
  g_auto (Result) r = { 0 }, o = { 0 };
  RUN (&r, "bench", "-m", tiny, "--size", "64x64", "--steps", "2", "--runs", "1");
  g_assert_cmpint (r.status, ==, 0);
  for (const char *const *w = (const char *const[]) { "VLM (ViT + LLM)", "connector", "DiT, first step",
                                                      "DiT, one step", "VAE decode", "TFLOP", NULL };
       *w; w++)
    g_assert_nonnull (strstr (r.out, *w));
  RUN (&o, "bench", "ops", "--quick", "--reps", "1", "--filter", "gemv");
  g_assert_cmpint (o.status, ==, 0);
  g_assert_nonnull (strstr (o.out, "gemv"));
}

/* ---- translations ---------------------------------------------------------------------------- */

static char *
find_catalogue (const char *dir, int depth)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && depth > 0 && (name = g_dir_read_name (d))) {
    g_autofree char *p = g_build_filename (dir, name, NULL);
    if (g_str_equal (name, "deepgen.mo") && strstr (p, "/de/LC_MESSAGES/"))
      return g_steal_pointer (&p);
    if (g_file_test (p, G_FILE_TEST_IS_DIR) && !g_file_test (p, G_FILE_TEST_IS_SYMLINK)) {
      char *found = find_catalogue (p, depth - 1);
      if (found)
        return found;
    }
  }
  return NULL;
}

static void
test_german (void)
{
  /* po/ builds the catalogues into BUILD/locale; anywhere else in the build tree will do. */
  g_autofree char *built = g_build_filename (DEEPGEN_BUILD_DIR, "locale", "de", "LC_MESSAGES", "deepgen.mo", NULL);
  g_autofree char *mo =
      g_file_test (built, G_FILE_TEST_EXISTS) ? g_strdup (built) : find_catalogue (DEEPGEN_BUILD_DIR, 6);
  if (!mo) {
    g_test_skip ("no German catalogue (de/LC_MESSAGES/deepgen.mo) in the build tree");
    return;
  }
  /* .../<localedir>/de/LC_MESSAGES/deepgen.mo */
  g_autofree char *lc = g_path_get_dirname (mo), *de = g_path_get_dirname (lc), *localedir = g_path_get_dirname (de);
  g_autofree char *envdir = g_strdup_printf ("DEEPGEN_LOCALEDIR=%s", localedir);
  const char *const de_env[] = { envdir, "LC_ALL=C.UTF-8", "LANGUAGE=de", NULL };
  const char *const en_env[] = { envdir, "LC_ALL=C.UTF-8", "LANGUAGE=en", NULL };
  /* One of our own messages (GLib's help headings are translated by GLib's catalogue). */
  g_auto (Result) en = { 0 }, ger = { 0 };
  RUN_ENV (&en, en_env, "generate");
  RUN_ENV (&ger, de_env, "generate");
  g_assert_cmpint (en.status, ==, 2);
  g_assert_cmpint (ger.status, ==, 2); /* exit codes do not depend on the language */
  g_assert_nonnull (strstr (en.err, "no prompt"));
  if (g_str_equal (en.err, ger.err)) {
    g_test_skip ("the German catalogue has no strings of the command line yet");
    return;
  }
  g_assert_null (strstr (ger.err, "no prompt"));
  g_assert_true (g_utf8_validate (ger.err, -1, NULL));
  g_auto (Result) help = { 0 };
  RUN_ENV (&help, de_env, "generate", "--help");
  g_assert_cmpint (help.status, ==, 0);
  g_assert_nonnull (strstr (help.out, "--prompt"));
}

/* `deepgen convert` (host only: no GPU is opened): usage errors, then a conversion of the tiny
 * model that `info --check` accepts. */
static void
test_convert (void)
{
  g_auto (Result) h = { 0 }, o = { 0 }, extra = { 0 }, w = { 0 }, inc = { 0 }, full = { 0 }, ok = { 0 }, chk = { 0 };
  g_auto (Result) over = { 0 };
  RUN (&over, "--help");
  g_assert_nonnull (strstr (over.out, "convert"));
  RUN (&h, "convert", "--help");
  g_assert_cmpint (h.status, ==, 0);
  for (const char *const *s =
           (const char *const[]) { "--output", "--model", "--weights", "--quiet", "Examples:", "deepgen convert -o",
                                   "nothing is overwritten", "Exit status", NULL };
       *s; s++)
    g_assert_nonnull (strstr (h.out, *s));
  RUN (&o, "convert", "-m", tiny);
  g_assert_cmpint (o.status, ==, 2);
  g_assert_nonnull (strstr (o.err, "-o DIR"));
  RUN (&extra, "convert", "-m", tiny, "-o", "conv", "stray");
  g_assert_cmpint (extra.status, ==, 2);
  g_assert_nonnull (strstr (extra.err, "stray"));
  RUN (&w, "convert", "-m", tiny, "-o", "conv", "--weights", "released");
  g_assert_cmpint (w.status, ==, 2);
  g_assert_nonnull (strstr (w.err, "q8"));
  assert_no_leftovers ("conv");

  g_autofree char *partial = path_in_tmp ("partial-model"); /* made once, by whichever test runs first */
  if (!g_file_test (partial, G_FILE_TEST_IS_DIR)) {
    g_free (partial);
    partial = partial_model ();
  }
  RUN (&inc, "convert", "-m", partial, "-o", "conv");
  g_assert_cmpint (inc.status, ==, 1);
  g_assert_nonnull (strstr (inc.err, "incomplete"));
  assert_no_leftovers ("conv");

  g_autofree char *occupied = path_in_tmp ("occupied");
  g_assert_cmpint (g_mkdir (occupied, 0755), ==, 0);
  g_autofree char *keep = g_build_filename (occupied, "keep.txt", NULL);
  g_assert_true (g_file_set_contents (keep, "keep", -1, NULL));
  RUN (&full, "convert", "-m", tiny, "-o", "occupied");
  g_assert_cmpint (full.status, ==, 2);
  g_assert_nonnull (strstr (full.err, "not an empty folder"));
  g_assert_true (g_file_test (keep, G_FILE_TEST_IS_REGULAR));

  RUN (&ok, "convert", "-m", tiny, "-o", "conv");
  g_assert_cmpint (ok.status, ==, 0);
  g_assert_nonnull (strstr (ok.err, "transformer/model.gguf"));
  g_autofree char *gguf = g_build_filename (tmp, "conv", "transformer", "model.gguf", NULL);
  g_assert_true (g_file_test (gguf, G_FILE_TEST_IS_REGULAR));
  g_autofree char *conv = path_in_tmp ("conv");
  RUN (&chk, "info", "--check", "-m", conv);
  g_assert_cmpint (chk.status, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmp = g_dir_make_tmp ("deepgen-cli-test-XXXXXX", NULL);
  tiny = g_build_filename (DEEPGEN_TEST_DATA_DIR, "tiny-deepgen", NULL);
  if (!g_path_is_absolute (tiny)) {
    g_autofree char *cwd = g_get_current_dir ();
    g_autofree char *abs = g_build_filename (cwd, tiny, NULL);
    g_free (tiny);
    tiny = g_steal_pointer (&abs);
  }
  g_test_add_func ("/usage/help", test_help);
  g_test_add_func ("/usage/errors", test_usage_errors);
  g_test_add_func ("/usage/bad-utf8", test_bad_utf8);
  g_test_add_func ("/usage/missing-model", test_missing_model);
  g_test_add_func ("/usage/bad-images", test_bad_images);
  g_test_add_func ("/usage/info-plan", test_info_plan);
  g_test_add_func ("/usage/convert", test_convert);
  g_test_add_func ("/usage/expand-errors", test_expand_errors);
  g_test_add_func ("/run/generate", test_generate);
  g_test_add_func ("/run/edit", test_edit);
  g_test_add_func ("/run/inpaint", test_inpaint);
  g_test_add_func ("/run/expand", test_expand);
  g_test_add_func ("/run/from", test_from);
  g_test_add_func ("/run/variations", test_variations);
  g_test_add_func ("/run/cancel", test_cancel);
  g_test_add_func ("/run/out-of-memory", test_out_of_memory);
  g_test_add_func ("/run/bench", test_bench);
  g_test_add_func ("/i18n/german", test_german);
  int rc = g_test_run ();
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", tmp);
  if (system (cmd) != 0)
    g_printerr ("could not remove %s\n", tmp);
  return rc;
}
