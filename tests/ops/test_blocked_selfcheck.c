/* The fast-path self-check (vkc.h) of the register-blocked scalar GEMM: a deliberately broken
 * variant (the test hook DEEPGEN_VK_TEST_BROKEN_BLOCKED=1 selects linear_blocked_broken_f16, which
 * drops the last K slice) must be caught the first time it is about to run, switched off with
 * exactly one warning, the linear op must still give correct results (the tiled kernel), the
 * verdict must be written to the cache file, and a second device on the same driver must read it
 * back without testing or warning again. The correct kernel of another weight type passes and
 * is recorded as ok. fp16 tiles are switched off (DEEPGEN_VK_DISABLE_FP16_TILES=1) so that GPUs,
 * which would take them, run the fp32-tile variant the hook replaces. */
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

/* y = x·Wᵀ through AUTO with f16 W at M = 64, checked against fp32's bound: a broken kernel
 * (one K slice of 32 dropped out of 100) would be off by ~30 %. */
static void
run_f16 (OpTest *t)
{
  enum { M = 64, K = 100, N = 40 };
  g_autofree float *x = op_randn (M * K, 5, 1.0f);
  g_autofree float *w = op_randn (N * K, 6, 1.0f);
  op_round_to (w, N * K, VKC_F16);
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
  g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_blocked_broken_f16"), ==, VKC_FASTPATH_UNKNOWN);

  /* First use: the self-check runs, fails, warns once. */
  g_test_expect_message (NULL, G_LOG_LEVEL_WARNING, "*linear_blocked_broken_f16 computes wrong results*");
  run_f16 (t);
  g_test_assert_expected_messages ();
  g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_blocked_broken_f16"), ==, VKC_FASTPATH_BAD);
  /* Second use: no new check, no new warning (an unexpected warning would abort the test). */
  run_f16 (t);
  char *d = vkc_linear_describe (t->dev, 64, 40, 100, VKC_F16);
  g_test_message ("f16 after the failed self-check: %s", d);
  g_assert_nonnull (strstr (d, "blocked kernel not used: it failed its self-check"));
  g_free (d);

  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (file, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "linear_blocked_broken_f16 bad\n"));

  /* A correct kernel (bf16 W) passes its own check and is recorded as ok. */
  d = vkc_linear_describe (t->dev, 64, 40, 100, VKC_BF16);
  g_test_message ("bf16: %s", d);
  g_assert_true (g_str_has_prefix (d, "scalar blocked") || g_str_has_prefix (d, "coopmat"));
  g_free (d);
  if (!vkc_device_info (t->dev)->cooperative_matrix)
    g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_blocked_bf16"), ==, VKC_FASTPATH_OK);
  op_test_free (t);

  /* A new device on the same driver reads the verdicts: no check, no warning, tiled kernel. */
  t = op_test_new ();
  g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_blocked_broken_f16"), ==, VKC_FASTPATH_BAD);
  run_f16 (t);
  op_test_free (t);
}

int
main (int argc, char **argv)
{
  /* Before anything asks GLib for the cache folder (it keeps the first answer). */
  cache_dir = g_dir_make_tmp ("deepgen-blocked-selfcheck-XXXXXX", NULL);
  g_assert_nonnull (cache_dir);
  g_setenv ("XDG_CACHE_HOME", cache_dir, TRUE);
  g_setenv ("DEEPGEN_VK_TEST_BROKEN_BLOCKED", "1", TRUE);
  g_setenv ("DEEPGEN_VK_DISABLE_FP16_TILES", "1", TRUE);
  /* The blocked kernel is what AUTO takes only where cooperative matrices are not. */
  g_setenv ("DEEPGEN_VK_DISABLE_COOPMAT", "1", TRUE);
  g_unsetenv ("DEEPGEN_VK_FORCE_COOPMAT");
  g_unsetenv ("DEEPGEN_VK_DISABLE_BLOCKED");
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/linear_blocked/selfcheck/broken-variant", test_broken);
  int rc = g_test_run ();
  /* Remove the temporary cache (deepgen/selfcheck-*.txt). */
  g_autofree char *sub = g_build_filename (cache_dir, "deepgen", NULL);
  GDir *sd = g_dir_open (sub, 0, NULL);
  if (sd) {
    const char *n;
    while ((n = g_dir_read_name (sd))) {
      g_autofree char *f = g_build_filename (sub, n, NULL);
      g_remove (f);
    }
    g_dir_close (sd);
    g_rmdir (sub);
  }
  g_rmdir (cache_dir);
  g_free (cache_dir);
  return rc;
}
