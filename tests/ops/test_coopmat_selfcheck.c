/* The fast-path self-check (vkc.h): a deliberately broken coopmat variant (the test hook
 * DEEPGEN_VK_TEST_BROKEN_COOPMAT=1 selects linear_coopmat_broken_f16, which drops the last K
 * slice) must be caught the first time it is about to run, switched off with exactly one
 * warning, the linear op must still give correct (scalar) results, the verdict must be written to
 * the cache file, and a second device on the same driver must read it back without testing or
 * warning again. The correct kernel of another weight type passes and is recorded as ok.
 * Skipped (77) without usable cooperative matrices or without the broken variant. */
#include "op_test.h"
#include "vkc_ops_linear.h"
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static double
fp32_limit (int64_t K)
{
  const double u = 1.0 / (1 << 24);
  return MAX (1e-12, 30.0 * u * u * (double) K);
}

/* y = x·Wᵀ through AUTO with f16 W at M = 64, checked against fp32's
 * bound: passing it means the scalar kernel ran, not a coopmat one (fp16 inputs are ~1e-7 off). */
static void
run_f16 (OpTest *t)
{
  enum { M = 64, K = 100, N = 40 };
  g_autofree float *x = op_randn (M * K, 5, 1.0f);
  g_autofree float *w = op_randn (N * K, 6, 1.0f);
  op_round_to (w, N * K, VKC_F16);
  /* x off the fp16 grid, so that a coopmat result would stand out from fp32's bound. */
  VkcTensor xt = op_tensor (t, VKC_F32, 2, (int64_t[]) { M, K }, x);
  VkcTensor wt = op_tensor (t, VKC_F16, 2, (int64_t[]) { N, K }, w);
  VkcTensor yt = op_tensor (t, VKC_F32, 2, (int64_t[]) { M, N }, NULL);
  VkcCmd *cmd = op_cmd (t);
  vkc_op_linear (cmd, &yt, &xt, &wt, NULL);
  op_run (t, cmd);
  g_autofree float *got = op_download (t, &yt);
  g_autofree double *ref = g_new (double, M *N);
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double s = 0;
      for (int k = 0; k < K; k++) s += (double) x[m * K + k] * w[n * K + k];
      ref[m * N + n] = s;
    }
  op_check ("linear f16 after the self-check", ref, got, M * N, fp32_limit (K));
  vkc_pool_arena_reset (t->pool);
}

static char *cache_dir;

static void
test_broken (void)
{
  OpTest *t = op_test_new ();
  g_autofree char *file = g_strdup (vkc_fastpath_cache_file (t->dev));
  g_assert_true (g_str_has_prefix (file, cache_dir));
  g_assert_false (g_file_test (file, G_FILE_TEST_EXISTS));
  g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_coopmat_broken_f16"), ==, VKC_FASTPATH_UNKNOWN);

  /* First use: the self-check runs, fails, warns once. */
  g_test_expect_message (NULL, G_LOG_LEVEL_WARNING, "*linear_coopmat_broken_f16 computes wrong results*");
  run_f16 (t);
  g_test_assert_expected_messages ();
  g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_coopmat_broken_f16"), ==, VKC_FASTPATH_BAD);
  /* Second use: no new check, no new warning (an unexpected warning would abort the test). */
  run_f16 (t);
  char *d = vkc_linear_describe (t->dev, 64, 40, 100, VKC_F16);
  g_test_message ("f16 after the failed self-check: %s", d);
  g_assert_nonnull (strstr (d, "failed its self-check"));
  g_free (d);

  /* The cache file holds the verdict. */
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (file, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "linear_coopmat_broken_f16 bad\n"));

  /* A correct kernel (bf16 W) passes its own check and is recorded as ok. */
  d = vkc_linear_describe (t->dev, 64, 40, 100, VKC_BF16);
  g_assert_true (g_str_has_prefix (d, "coopmat"));
  g_free (d);
  g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_coopmat_bf16"), ==, VKC_FASTPATH_OK);
  op_test_free (t);

  g_free (text);
  text = NULL;
  g_assert_true (g_file_get_contents (file, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "linear_coopmat_bf16 ok\n"));

  /* A new device on the same driver reads the verdicts: no check, no warning, scalar path. */
  t = op_test_new ();
  g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_coopmat_broken_f16"), ==, VKC_FASTPATH_BAD);
  g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_coopmat_bf16"), ==, VKC_FASTPATH_OK);
  run_f16 (t);
  op_test_free (t);
}

int
main (int argc, char **argv)
{
  /* Before anything asks GLib for the cache folder (it keeps the first answer). */
  cache_dir = g_dir_make_tmp ("deepgen-selfcheck-XXXXXX", NULL);
  g_assert_nonnull (cache_dir);
  g_setenv ("XDG_CACHE_HOME", cache_dir, TRUE);
  g_setenv ("DEEPGEN_VK_TEST_BROKEN_COOPMAT", "1", TRUE);
  g_unsetenv ("DEEPGEN_VK_FORCE_COOPMAT");
  g_test_init (&argc, &argv, NULL);

  OpTest *t = op_test_new ();
  const VkcDeviceInfo *i = vkc_device_info (t->dev);
  int rc = 0;
  if (!i->cooperative_matrix || !vkc_shader_exists ("linear_coopmat_broken_f16")) {
    g_print ("SKIP: %s\n", !i->cooperative_matrix ? i->coopmat_why : "this build has no coopmat shaders");
    rc = 77;
  }
  op_test_free (t);
  /* Forced, so that AUTO takes cooperative matrices on a CPU device (lavapipe) too: a failed
   * self-check must win even then. */
  g_setenv ("DEEPGEN_VK_FORCE_COOPMAT", "1", TRUE);
  if (rc == 0) {
    g_test_add_func ("/coopmat/selfcheck/broken-variant", test_broken);
    rc = g_test_run ();
  }
  g_autofree char *file = NULL;
  GDir *dir = g_dir_open (cache_dir, 0, NULL);
  /* Remove the temporary cache (deepgen/selfcheck-*.txt). */
  if (dir)
    g_dir_close (dir);
  g_autofree char *sub = g_build_filename (cache_dir, "deepgen", NULL);
  GDir *sd = g_dir_open (sub, 0, NULL);
  if (sd) {
    const char *n;
    while ((n = g_dir_read_name (sd))) {
      g_free (file);
      file = g_build_filename (sub, n, NULL);
      g_remove (file);
    }
    g_dir_close (sd);
    g_rmdir (sub);
  }
  g_rmdir (cache_dir);
  g_free (cache_dir);
  return rc;
}
