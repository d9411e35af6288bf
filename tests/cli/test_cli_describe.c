/* `deepgen describe` end to end on the tiny model (spawned; exit codes and output checked). The
 * tiny model's weights are random, so its caption is gibberish by design: the run must succeed
 * with a non-empty caption that equals what dg_describe returns in-process for the same image
 * and options (the model test model_describe pins the ids against transformers). Also the
 * command's usage errors and failures. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_args.h"
#include "deepgen.h"
#include "deepgen_hooks.h"
#include "image_io.h"

#ifndef DEEPGEN_CLI
#define DEEPGEN_CLI "deepgen"
#endif
#ifndef DEEPGEN_TEST_DATA_DIR
#define DEEPGEN_TEST_DATA_DIR "tests/data"
#endif

static char *tiny;  /* the tiny model */
static char *image; /* a 128×128 PNG of the golden data */

typedef struct {
  int status;
  char *out, *err;
} Result;

static void
result_clear (Result *r)
{
  g_free (r->out);
  g_free (r->err);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Result, result_clear)

static void
run_env (Result *r, const char *env, const char *const *args)
{
  GPtrArray *argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) DEEPGEN_CLI);
  g_ptr_array_add (argv, (gpointer) "describe");
  for (guint i = 0; args[i]; i++) g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_auto (GStrv) envp = g_environ_unsetenv (g_get_environ (), "DEEPGEN_MODEL");
  if (env) {
    g_auto (GStrv) kv = g_strsplit (env, "=", 2);
    envp = g_environ_setenv (envp, kv[0], kv[1], TRUE);
  }
  int wait_status = 0;
  GError *error = NULL;
  memset (r, 0, sizeof *r);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, &r->out, &r->err,
                               &wait_status, &error));
  g_assert_no_error (error);
  r->status = WIFEXITED (wait_status) ? WEXITSTATUS (wait_status) : 128 + WTERMSIG (wait_status);
  g_ptr_array_unref (argv);
  g_test_message ("deepgen describe → %d\n%s%s", r->status, r->out, r->err);
  g_assert_null (strstr (r->err, "vkc: validation"));
  g_assert_null (strstr (r->err, "CRITICAL"));
}

#define RUN(r, ...) run_env ((r), NULL, (const char *const[]) { __VA_ARGS__, NULL })
#define RUN_ENV(r, env, ...) run_env ((r), (env), (const char *const[]) { __VA_ARGS__, NULL })

/* dg_describe in this process, for the same image file. */
static char *
api_caption (const char *instruction, int max_tokens)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DgEngine) engine = dg_engine_new (NULL, &error);
  g_assert_no_error (error);
  DgLoadOptions lo = DG_LOAD_OPTIONS_INIT;
  lo.precision = DG_PRECISION_F32;
  g_autoptr (DgModel) model = dg_model_open (engine, tiny, &lo, &error);
  g_assert_no_error (error);
  g_autoptr (DgImage) img = cli_image_load (image, &error);
  g_assert_no_error (error);
  char *text = dg_describe (model, img, instruction, max_tokens, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (vkc_device_validation_messages (dg_engine_device (engine)), ==, 0);
  return text;
}

static void
test_caption (void)
{
  g_auto (Result) r = { 0 };
  RUN (&r, image, "-m", tiny, "--precision", "f32", "--max-tokens", "6", "-q");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_true (g_str_has_suffix (r.out, "\n"));
  r.out[strlen (r.out) - 1] = '\0';
  g_assert_cmpuint (strlen (r.out), >, 0);
  g_autofree char *api = api_caption (NULL, 6);
  g_assert_cmpstr (r.out, ==, api);

  /* Another instruction changes the prompt, so (with these weights) the caption. */
  g_auto (Result) q = { 0 };
  RUN (&q, image, "-m", tiny, "--precision", "f32", "--max-tokens", "6", "-q", "--instruction",
       "What is in the background?");
  g_assert_cmpint (q.status, ==, 0);
  g_autofree char *api_q = api_caption ("What is in the background?", 6);
  g_autofree char *api_q_line = g_strconcat (api_q, "\n", NULL);
  g_assert_cmpstr (q.out, ==, api_q_line);

  /* Progress goes to stderr, with the stage name of the decoding. */
  g_auto (Result) p = { 0 };
  RUN (&p, image, "-m", tiny, "--max-tokens", "2");
  g_assert_cmpint (p.status, ==, 0);
  g_assert_nonnull (strstr (p.err, "2/2"));
}

static void
test_errors (void)
{
  g_auto (Result) a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 }, e = { 0 }, f = { 0 };
  RUN (&a, "-m", tiny);
  g_assert_cmpint (a.status, ==, 2);
  RUN (&b, image, "-m", tiny, "--max-tokens", "5000");
  g_assert_cmpint (b.status, ==, 2);
  RUN (&c, image, image, "-m", tiny);
  g_assert_cmpint (c.status, ==, 2);
  RUN (&d, "/no/such/image.png", "-m", tiny);
  g_assert_cmpint (d.status, ==, 1);
  RUN (&e, image, "-m", "/no/such/model");
  g_assert_cmpint (e.status, ==, 1);
  g_assert_nonnull (strstr (e.err, "deepgen download"));
  RUN (&f, image, "-m", tiny, "--max-tokens", "2", "--instruction", "what is <|image_pad|>?");
  g_assert_cmpint (f.status, ==, 1);
  g_assert_nonnull (strstr (f.err, "<|image_pad|>"));
  /* A device too small for the plan (DEEPGEN_VK_FAKE_DEVICE_BYTES: 64 MiB) refuses the job before
   * anything is uploaded, naming the sizes. */
  g_auto (Result) g = { 0 };
  RUN_ENV (&g, "DEEPGEN_VK_FAKE_DEVICE_BYTES=67108864", image, "-m", tiny, "--max-tokens", "2");
  g_assert_cmpint (g.status, ==, 1);
  g_assert_nonnull (strstr (g.err, "GPU memory"));
  g_assert_null (strstr (g.err, "Writing the caption"));
}

/* Ctrl-C while tokens are written (plain progress lines: the stage starts with 0/N): the run stops
 * at the next token, exit 130, no caption. */
static void
test_cancel (void)
{
  const char *argv[] = { DEEPGEN_CLI, "describe", image, "-m", tiny, "--max-tokens", "4000", NULL };
  GPid pid;
  int out_fd, err_fd;
  GError *error = NULL;
  g_assert_true (g_spawn_async_with_pipes (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
                                           NULL, &out_fd, &err_fd, &error));
  g_assert_no_error (error);
  GString *seen = g_string_new (NULL);
  char buf[256];
  gssize n;
  while (!strstr (seen->str, "Writing the caption 0/") && (n = read (err_fd, buf, sizeof buf - 1)) > 0)
    g_string_append_len (seen, buf, n);
  g_assert_nonnull (strstr (seen->str, "Writing the caption 0/"));
  kill (pid, SIGINT);
  while ((n = read (err_fd, buf, sizeof buf - 1)) > 0) g_string_append_len (seen, buf, n);
  GString *out = g_string_new (NULL);
  while ((n = read (out_fd, buf, sizeof buf - 1)) > 0) g_string_append_len (out, buf, n);
  close (err_fd);
  close (out_fd);
  int wait_status;
  g_assert_cmpint (waitpid (pid, &wait_status, 0), ==, pid);
  g_spawn_close_pid (pid);
  g_test_message ("%s", seen->str);
  g_assert_true (WIFEXITED (wait_status));
  g_assert_cmpint (WEXITSTATUS (wait_status), ==, 130);
  g_assert_cmpstr (out->str, ==, "");
  g_assert_null (strstr (seen->str, "4000/4000"));
  g_string_free (seen, TRUE);
  g_string_free (out, TRUE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autofree char *cwd = g_get_current_dir ();
  tiny = g_canonicalize_filename (DEEPGEN_TEST_DATA_DIR "/tiny-deepgen", cwd);
  image = g_canonicalize_filename (DEEPGEN_TEST_DATA_DIR "/golden/ref_128x128.png", cwd);
  g_test_add_func ("/describe/caption", test_caption);
  g_test_add_func ("/describe/errors", test_errors);
  g_test_add_func ("/describe/cancel", test_cancel);
  return g_test_run ();
}
