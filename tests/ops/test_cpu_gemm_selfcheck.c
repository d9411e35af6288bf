/* The fast-path self-check (vkc.h) of the CPU GEMM (linear_cpu.comp): a deliberately broken
 * variant (the test hook DEEPGEN_VK_TEST_BROKEN_CPU_GEMM=1 selects linear_cpu_broken_f16, which
 * drops the last k) must be caught the first time AUTO is about to run it, switched off with
 * exactly one warning, the op must still give correct results (the next kernel in line), the
 * verdict must be written to the cache file, and a second device on the same driver must read it
 * back without testing or warning again. The correct kernel of another weight type passes and is
 * recorded as ok. AUTO takes the CPU GEMM on CPU devices only: elsewhere the test is skipped. */
#include "op_test.h"
#include "vkc_ops_linear.h"
#include <string.h>

static const char *cache_dir;

static void
test_broken (void)
{
  OpTest *t = op_test_new ();
  const VkcDeviceInfo *info = vkc_device_info (t->dev);
  if (info->type != VK_PHYSICAL_DEVICE_TYPE_CPU) {
    g_test_skip ("AUTO takes the CPU GEMM on CPU devices only");
    op_test_free (t);
    return;
  }
  g_autofree char *file = g_strdup (vkc_fastpath_cache_file (t->dev));
  g_assert_true (g_str_has_prefix (file, cache_dir));
  g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_cpu_broken_f16"), ==, VKC_FASTPATH_UNKNOWN);

  /* First use: the self-check runs, fails, warns once; the product is still right. */
  g_test_expect_message (NULL, G_LOG_LEVEL_WARNING, "*linear_cpu_broken_f16 computes wrong results*");
  op_run_linear_f16_fp32_bound (t, "linear f16 after the self-check");
  g_test_assert_expected_messages ();
  g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_cpu_broken_f16"), ==, VKC_FASTPATH_BAD);
  /* Second use: no new check, no new warning (an unexpected warning would abort the test). */
  op_run_linear_f16_fp32_bound (t, "linear f16 after the self-check");
  char *d = vkc_linear_describe (t->dev, 64, 40, 100, VKC_F16);
  g_test_message ("f16 after the failed self-check: %s", d);
  g_assert_nonnull (strstr (d, "CPU GEMM not used: it failed its self-check"));
  g_free (d);

  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (file, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "linear_cpu_broken_f16 bad\n"));

  /* A correct kernel (bf16 W) passes its own check and is recorded as ok. */
  d = vkc_linear_describe (t->dev, 64, 40, 100, VKC_BF16);
  g_test_message ("bf16: %s", d);
  g_assert_true (g_str_has_prefix (d, "CPU GEMM"));
  g_free (d);
  g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_cpu_bf16"), ==, VKC_FASTPATH_OK);
  op_test_free (t);

  /* A new device on the same driver reads the verdicts: no check, no warning. */
  t = op_test_new ();
  g_assert_cmpint (vkc_fastpath_state (t->dev, "linear_cpu_broken_f16"), ==, VKC_FASTPATH_BAD);
  op_run_linear_f16_fp32_bound (t, "linear f16 after the self-check");
  op_test_free (t);
}

int
main (int argc, char **argv)
{
  /* Before anything asks GLib for the cache folder (it keeps the first answer). */
  cache_dir = op_temp_cache_begin ("deepgen-cpu-gemm-selfcheck-XXXXXX");
  g_setenv ("DEEPGEN_VK_TEST_BROKEN_CPU_GEMM", "1", TRUE);
  /* The CPU GEMM is what AUTO takes only where cooperative matrices are not. */
  g_setenv ("DEEPGEN_VK_DISABLE_COOPMAT", "1", TRUE);
  g_unsetenv ("DEEPGEN_VK_FORCE_COOPMAT");
  g_unsetenv ("DEEPGEN_VK_DISABLE_CPU_GEMM");
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/linear_cpu/selfcheck/broken-variant", test_broken);
  int rc = g_test_run ();
  op_temp_cache_remove ();
  return rc;
}
