/* The fast-path self-check (vkc.h): a deliberately broken coopmat variant (the test hook
 * DEEPGEN_VK_TEST_BROKEN_COOPMAT=1 selects linear_coopmat_broken_f16, which drops the last K
 * slice) must be caught the first time it is about to run, switched off with exactly one
 * warning, the linear op must still give correct (scalar) results, the verdict must be written to
 * the cache file, and a second device on the same driver must read it back without testing or
 * warning again. The correct kernel of another weight type passes and is recorded as ok.
 * Skipped (77) without usable cooperative matrices or without the broken variant. */
#include "op_test.h"
#include "vkc_ops_linear.h"
#include <string.h>

static const char *cache_dir;

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
  op_run_linear_f16_fp32_bound (t, "linear f16 after the self-check");
  g_test_assert_expected_messages ();
  g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_coopmat_broken_f16"), ==, VKC_FASTPATH_BAD);
  /* Second use: no new check, no new warning (an unexpected warning would abort the test). */
  op_run_linear_f16_fp32_bound (t, "linear f16 after the self-check");
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
  op_run_linear_f16_fp32_bound (t, "linear f16 after the self-check");
  op_test_free (t);
}

int
main (int argc, char **argv)
{
  /* Before anything asks GLib for the cache folder (it keeps the first answer). */
  cache_dir = op_temp_cache_begin ("deepgen-selfcheck-XXXXXX");
  g_setenv ("DEEPGEN_VK_TEST_BROKEN_COOPMAT", "1", TRUE);
  g_unsetenv ("DEEPGEN_VK_FORCE_COOPMAT");
  g_test_init (&argc, &argv, NULL);

  OpTest *t = op_test_new ();
  const VkcDeviceInfo *i = vkc_device_info (t->dev);
  int rc = 0;
  if (!i->cooperative_matrix || !vkc_shader_exists (VKC_SHADER_LINEAR_COOPMAT_BROKEN_F16)) {
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
  op_temp_cache_remove ();
  return rc;
}
