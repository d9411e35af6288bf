/* `deepgen download` against the test Hub (hub_server.h) on 127.0.0.1:
 *   /cli-download/fresh-open-run   into an empty folder; the command opens the folder
 *                                  (dg_model_open) and `deepgen generate` runs on it
 *   /cli-download/interrupt-resume Ctrl-C during a slow download: exit 130, the message says
 *                                  how to continue; the same command again completes it
 *   /cli-download/q8               --weights q8 converts, the folder holds 8-bit weights
 *   /cli-download/errors           401 without a token, 404, usage errors */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "deepgen.h"
#include "hub_server.h"

static HubServer *hub;
static char *tmp;

typedef struct {
  int status; /* exit status, or 128 + signal */
  char *out, *err;
} Result;

static void
result_clear (Result *r)
{
  g_free (r->out);
  g_free (r->err);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Result, result_clear)

static GSubprocess *
spawn (const char *const *args, GError **error)
{
  g_autoptr (GSubprocessLauncher) l =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (l, "HF_ENDPOINT", hub_server_endpoint (hub), TRUE);
  g_subprocess_launcher_setenv (l, "HF_HOME", tmp, TRUE);
  g_subprocess_launcher_setenv (l, "no_proxy", "127.0.0.1,localhost", TRUE);
  g_subprocess_launcher_unsetenv (l, "HF_TOKEN");
  g_subprocess_launcher_setenv (l, "LANGUAGE", "C", TRUE);
  GPtrArray *argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) DEEPGEN_CLI);
  for (guint i = 0; args[i]; i++) g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  GSubprocess *p = g_subprocess_launcher_spawnv (l, (const char *const *) argv->pdata, error);
  g_ptr_array_free (argv, TRUE);
  return p;
}

static void
finish (GSubprocess *p, Result *r)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (g_subprocess_communicate_utf8 (p, NULL, NULL, &r->out, &r->err, &error));
  g_assert_no_error (error);
  r->status = g_subprocess_get_if_signaled (p) ? 128 + g_subprocess_get_term_sig (p) : g_subprocess_get_exit_status (p);
  g_test_message ("exit %d\nstdout: %s\nstderr: %s", r->status, r->out, r->err);
}

static void
run (Result *r, const char *const *args)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) p = spawn (args, &error);
  g_assert_no_error (error);
  finish (p, r);
}

#define RUN(r, ...) run ((r), (const char *const[]) { __VA_ARGS__, NULL })

static char *
fresh_dir (const char *name)
{
  return g_build_filename (tmp, name, "DeepGen-1.0-diffusers", NULL);
}

static void
test_fresh_open_run (void)
{
  hub_server_set_faults (hub, 0, NULL, NULL);
  g_autofree char *dir = fresh_dir ("fresh");
  g_auto (Result) r = { 0 }, again = { 0 }, gen = { 0 };
  RUN (&r, "download", "--model", dir, "--repo", HUB_REPO);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "all verified"));
  g_assert_nonnull (strstr (r.out, "The model is ready in"));
  g_assert_null (dg_model_folder_missing (dir));
  g_assert_false (g_file_test (dir, G_FILE_TEST_IS_DIR) && dg_model_folder_weights (dir) == DG_WEIGHTS_Q8_0);

  /* again: nothing is transferred */
  RUN (&again, "download", "--model", dir, "--repo", HUB_REPO);
  g_assert_cmpint (again.status, ==, 0);
  g_assert_nonnull (strstr (again.out, "0 fetched"));

  /* and it runs */
  g_autofree char *png = g_build_filename (tmp, "fresh.png", NULL);
  RUN (&gen, "generate", "--model", dir, "--prompt", "a red fox", "--size", "64x64", "--steps", "1", "-o", png);
  g_assert_cmpint (gen.status, ==, 0);
  g_assert_true (g_file_test (png, G_FILE_TEST_IS_REGULAR));
}

static gboolean
has_partial (const char *dir)
{
  g_autofree char *cache = g_build_filename (dir, ".cache", "deepgen-download", NULL);
  return g_file_test (cache, G_FILE_TEST_IS_DIR);
}

static void
test_interrupt_resume (void)
{
  hub_server_set_faults (hub, HUB_SLOW, NULL, NULL);
  g_autofree char *dir = fresh_dir ("interrupt");
  g_autoptr (GError) error = NULL;
  const char *const args[] = { "download", "--model", dir, "--repo", HUB_REPO, NULL };
  g_autoptr (GSubprocess) p = spawn (args, &error);
  g_assert_no_error (error);
  /* wait until bytes arrive, then Ctrl-C */
  const gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (!has_partial (dir) && g_get_monotonic_time () < end) g_usleep (20000);
  g_usleep (300000);
  g_subprocess_send_signal (p, SIGINT);
  g_auto (Result) r = { 0 }, again = { 0 };
  finish (p, &r);
  g_assert_cmpint (r.status, ==, 130);
  g_assert_nonnull (strstr (r.err, "run it again to continue"));
  g_assert_true (has_partial (dir));

  hub_server_set_faults (hub, 0, NULL, NULL);
  RUN (&again, "download", "--model", dir, "--repo", HUB_REPO, "--quiet");
  g_assert_cmpint (again.status, ==, 0);
  g_assert_false (has_partial (dir));
  g_assert_null (dg_model_folder_missing (dir));
}

static void
test_q8 (void)
{
  hub_server_set_faults (hub, 0, NULL, NULL);
  g_autofree char *dir = fresh_dir ("q8");
  g_auto (Result) r = { 0 }, again = { 0 };
  RUN (&r, "download", "--model", dir, "--repo", HUB_REPO, "--weights", "q8");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "8-bit"));
  g_assert_null (dg_model_folder_missing (dir));
  g_assert_cmpint (dg_model_folder_weights (dir), ==, DG_WEIGHTS_Q8_0);
  g_autofree char *q8 = g_strconcat (dir, "-q8", NULL);
  g_assert_false (g_file_test (q8, G_FILE_TEST_EXISTS)); /* it took the released folder's place */
  RUN (&again, "download", "--model", dir, "--repo", HUB_REPO, "--weights", "q8");
  g_assert_cmpint (again.status, ==, 0);
  g_assert_nonnull (strstr (again.out, "already holds"));
}

static void
test_errors (void)
{
  g_autofree char *dir = fresh_dir ("errors");
  g_auto (Result) a = { 0 }, n = { 0 }, u = { 0 }, k = { 0 };
  hub_server_set_faults (hub, HUB_NEED_TOKEN, NULL, "hf_secret");
  RUN (&a, "download", "--model", dir, "--repo", HUB_REPO);
  g_assert_cmpint (a.status, ==, 1);
  g_assert_nonnull (strstr (a.err, "token (401)"));
  hub_server_set_faults (hub, 0, NULL, NULL);
  RUN (&n, "download", "--model", dir, "--repo", HUB_REPO, "--revision", "v2");
  g_assert_cmpint (n.status, ==, 1);
  g_assert_nonnull (strstr (n.err, "'v2' does not exist"));
  RUN (&u, "download", "--weights", "q4");
  g_assert_cmpint (u.status, ==, 2);
  RUN (&k, "download", "--keep-original");
  g_assert_cmpint (k.status, ==, 2);
  g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS) && dg_model_folder_missing (dir) == NULL);
}

static void
rm_rf (const char *path)
{
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", path);
  if (system (cmd) != 0)
    g_warning ("could not remove %s", path);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmp = g_dir_make_tmp ("dg-cli-download-XXXXXX", NULL);
  hub = hub_server_new (DEEPGEN_TEST_DATA_DIR "/tiny-deepgen");
  g_test_add_func ("/cli-download/fresh-open-run", test_fresh_open_run);
  g_test_add_func ("/cli-download/interrupt-resume", test_interrupt_resume);
  g_test_add_func ("/cli-download/q8", test_q8);
  g_test_add_func ("/cli-download/errors", test_errors);
  int rc = g_test_run ();
  hub_server_free (hub);
  rm_rf (tmp);
  g_free (tmp);
  return rc;
}
