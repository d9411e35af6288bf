/* The fast-path self-check (vkc.h) of the register-blocked scalar GEMM and convolution: a
 * deliberately broken variant (the test hook DEEPGEN_VK_TEST_BROKEN_BLOCKED=1 selects
 * linear_blocked_broken_f16 and conv2d_blocked_broken_f16, which drop the last K slice) must be
 * caught the first time it is about to run, switched off with
 * exactly one warning, the op must still give correct results (the tiled kernel), the
 * verdict must be written to the cache file, and a second device on the same driver must read it
 * back without testing or warning again. The correct kernel of another weight type passes and
 * is recorded as ok. fp16 tiles are switched off (DEEPGEN_VK_DISABLE_FP16_TILES=1) so that GPUs,
 * which would take them, run the fp32-tile variant the hook replaces. */
#include "op_test.h"
#include "vkc_ops_conv.h"
#include "vkc_ops_linear.h"
#include <string.h>

/* An f16 3×3 conv (K = 9·20 = 180: the last K slice partial) through AUTO must give conv2d.comp's
 * bits: after a failed self-check AUTO runs conv2d.comp itself. */
static void
conv_f16_as_tiled (OpTest *t)
{
  const int64_t xs[4] = { 1, 6, 5, 20 }, ws[4] = { 24, 3, 3, 20 }, ys[4] = { 1, 6, 5, 24 };
  g_autofree float *x = op_randn (600, 21, 1.0f);
  g_autofree float *w = op_randn (24 * 180, 22, 0.1f);
  VkcTensor xt = op_tensor (t, VKC_F32, 4, xs, x);
  VkcTensor wt = op_tensor (t, VKC_F16, 4, ws, w);
  VkcTensor y1 = op_tensor (t, VKC_F32, 4, ys, NULL), y2 = op_tensor (t, VKC_F32, 4, ys, NULL);
  VkcCmd *cmd = op_cmd (t);
  vkc_op_conv2d_3x3 (cmd, &y1, &xt, &wt, NULL);
  vkc_conv_set_path (1);
  vkc_op_conv2d_3x3 (cmd, &y2, &xt, &wt, NULL);
  vkc_conv_set_path (0);
  op_run (t, cmd);
  g_autofree float *a = op_download (t, &y1);
  g_autofree float *b = op_download (t, &y2);
  g_assert_cmpmem (a, 720 * sizeof (float), b, 720 * sizeof (float));
  vkc_pool_arena_reset (t->pool);
}

static void
test_broken_conv (void)
{
  OpTest *t = op_test_new ();
  g_autofree char *file = g_strdup (vkc_fastpath_cache_file (t->dev));
  g_assert_cmpint (vkc_fastpath_state (t->dev, "conv2d_blocked_broken_f16"), ==, VKC_FASTPATH_UNKNOWN);
  g_test_expect_message (NULL, G_LOG_LEVEL_WARNING, "*conv2d_blocked_broken_f16 computes wrong results*");
  conv_f16_as_tiled (t);
  g_test_assert_expected_messages ();
  g_assert_cmpint (vkc_fastpath_state (t->dev, "conv2d_blocked_broken_f16"), ==, VKC_FASTPATH_BAD);
  conv_f16_as_tiled (t); /* no new check, no new warning */
  char *d = vkc_conv_describe (t->dev, VKC_F16);
  g_test_message ("conv f16 after the failed self-check: %s", d);
  g_assert_nonnull (strstr (d, "blocked kernel not used: it failed its self-check"));
  g_free (d);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (file, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "conv2d_blocked_broken_f16 bad\n"));
  /* The correct bf16 variant passes its own check and is recorded as ok. */
  d = vkc_conv_describe (t->dev, VKC_BF16);
  g_test_message ("conv bf16: %s", d);
  g_assert_true (g_str_has_prefix (d, "scalar blocked"));
  g_free (d);
  g_assert_cmpint (vkc_fastpath_state (t->dev, "conv2d_blocked_bf16"), ==, VKC_FASTPATH_OK);
  op_test_free (t);

  /* A new device on the same driver reads the verdict: no check, no warning, conv2d.comp. */
  t = op_test_new ();
  g_assert_cmpint (vkc_fastpath_state (t->dev, "conv2d_blocked_broken_f16"), ==, VKC_FASTPATH_BAD);
  conv_f16_as_tiled (t);
  op_test_free (t);
}

static const char *cache_dir;

static void
test_broken (void)
{
  OpTest *t = op_test_new ();
  g_autofree char *file = g_strdup (vkc_fastpath_cache_file (t->dev));
  g_assert_true (g_str_has_prefix (file, cache_dir));
  g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_blocked_broken_f16"), ==, VKC_FASTPATH_UNKNOWN);

  /* First use: the self-check runs, fails, warns once. */
  g_test_expect_message (NULL, G_LOG_LEVEL_WARNING, "*linear_blocked_broken_f16 computes wrong results*");
  op_run_linear_f16_fp32_bound (t, "linear f16 after the self-check");
  g_test_assert_expected_messages ();
  g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_blocked_broken_f16"), ==, VKC_FASTPATH_BAD);
  /* Second use: no new check, no new warning (an unexpected warning would abort the test). */
  op_run_linear_f16_fp32_bound (t, "linear f16 after the self-check");
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
  op_run_linear_f16_fp32_bound (t, "linear f16 after the self-check");
  op_test_free (t);
}

int
main (int argc, char **argv)
{
  /* Before anything asks GLib for the cache folder (it keeps the first answer). */
  cache_dir = op_temp_cache_begin ("deepgen-blocked-selfcheck-XXXXXX");
  g_setenv ("DEEPGEN_VK_TEST_BROKEN_BLOCKED", "1", TRUE);
  g_setenv ("DEEPGEN_VK_DISABLE_FP16_TILES", "1", TRUE);
  /* The blocked kernel is what AUTO takes only where cooperative matrices are not. */
  g_setenv ("DEEPGEN_VK_DISABLE_COOPMAT", "1", TRUE);
  /* …and, on CPU devices, where the CPU GEMM is not (test_cpu_gemm_selfcheck.c checks that one). */
  g_setenv ("DEEPGEN_VK_DISABLE_CPU_GEMM", "1", TRUE);
  g_unsetenv ("DEEPGEN_VK_FORCE_COOPMAT");
  g_unsetenv ("DEEPGEN_VK_DISABLE_BLOCKED");
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/linear_blocked/selfcheck/broken-variant", test_broken);
  g_test_add_func ("/conv_blocked/selfcheck/broken-variant", test_broken_conv);
  int rc = g_test_run ();
  op_temp_cache_remove ();
  return rc;
}
