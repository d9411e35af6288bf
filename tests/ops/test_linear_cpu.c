/* The GEMM for CPU Vulkan devices (linear_cpu.comp), every weight type, against a
 * double-precision C reference on awkward shapes: M, N no multiple of its 16 rows × 64 columns;
 * M = 1; K no multiple of 4 (the one-k-at-a-time tail) for f32 / f16 / bf16; column-slice views
 * and odd W strides (16-byte loads off); W strides ≡ 2 mod 4 (16-bit W one value at a time);
 * bindings split by rows and columns (chunks whose alignment differs, so both specializations of
 * the 16-byte loads run in one product); the fused bias and accumulate epilogues. The reference
 * reads the same (dtype-rounded) W the device reads.
 *
 * NMSE bound, derived (not fitted): the sums are fp32 FMA chains over k in order, as in the tiled
 * kernel, so test_linear.c's bound holds: 30·u²·K with u = 2⁻²⁴ (≈ 100× the expected u²·K/3),
 * floored at 1e-12. And since the order is the tiled kernel's, on llvmpipe (fma() stays fused)
 * the outputs are the tiled kernel's bits: /linear_cpu/same-bits-as-tiled. The kernel is built
 * for CPU devices but correct anywhere with subgroups of 8 and shuffles; elsewhere it is skipped. */
#include "op_test.h"
#include "vkc_ops_linear.h"
#include "vkc_shader_tables.h"
#include <math.h>
#include <string.h>

static double
fp32_limit (int64_t K)
{
  const double u = 1.0 / (1 << 24);
  return MAX (1e-12, 30.0 * u * u * (double) K);
}

/* Whether the device can run the kernel (AUTO's other conditions aside): full subgroups of 8
 * with shuffles. */
static bool
runnable (OpTest *t)
{
  const VkcDeviceInfo *i = vkc_device_info (t->dev);
  bool sg8 =
      i->subgroup_size == 8 || (i->subgroup_size_control && i->min_subgroup_size <= 8 && 8 <= i->max_subgroup_size);
  if (!sg8 || !i->subgroup_shuffle) {
    g_test_skip ("the device has no subgroups of 8 with shuffles");
    return false;
  }
  return true;
}

typedef struct {
  int64_t M, K, N;
  VkcDType wt;
  bool bias, accumulate;
  int64_t x_pad, x_col;     /* x is a column slice [.., x_col : x_col+K] of [.., K + x_pad] */
  int64_t w_pad;            /* W rows have stride K + w_pad (block types: 0) */
  VkDeviceSize max_binding; /* ≠ 0: split the bindings */
} Case;

/* Runs the case with `kernel` into y (prefilled with y0) and returns y. */
static float *
run_kernel (OpTest *t, const Case *c, VkcLinearKernel kernel, const float *x, const float *w, const float *b,
            const float *y0, const char *what)
{
  const int64_t M = c->M, K = c->K, N = c->N, xw = K + c->x_pad, ldw = K + c->w_pad;
  VkcTensor xf = op_tensor (t, VKC_F32, 2, (int64_t[]) { M, xw }, x);
  VkcTensor xv = vkc_tensor_narrow (&xf, 1, c->x_col, K);
  int64_t wn = N * ldw;
  bool blocks = vkc_dtype_block (c->wt) > 1;
  VkcTensor wf = blocks ? op_tensor (t, c->wt, 2, (int64_t[]) { N, K }, w) : op_tensor (t, c->wt, 1, &wn, w);
  VkcTensor wv = blocks ? wf : vkc_tensor_view (&wf, 2, (int64_t[]) { N, K }, (int64_t[]) { ldw, 1 }, 0);
  VkcTensor bt = op_tensor (t, VKC_F32, 1, &N, b);
  VkcTensor yt = op_tensor (t, VKC_F32, 2, (int64_t[]) { M, N }, y0);
  VkcLinearOptions opt = VKC_LINEAR_OPTIONS_DEFAULT;
  opt.accumulate = c->accumulate;
  opt.kernel = kernel;
  opt.max_binding = c->max_binding;
  VkcCmd *cmd = op_cmd (t);
  vkc_op_linear_ex (cmd, &yt, &xv, &wv, c->bias ? &bt : NULL, &opt);
  g_autoptr (GError) error = NULL;
  g_assert_true (vkc_cmd_submit_wait (cmd, &error));
  /* The variant asked for ran (the profile names the pipelines, where the device has timestamps). */
  g_autoptr (GHashTable) prof = vkc_cmd_profile (cmd);
  vkc_cmd_free (cmd);
  const char *variant =
      vkc_shader_name (kernel == VKC_LINEAR_CPU ? vkc_shaders_linear_cpu[c->wt] : vkc_shaders_linear_tiled[c->wt]);
  if (prof && !g_hash_table_contains (prof, variant))
    g_error ("%s: %s did not run", what, variant);
  float *got = op_download (t, &yt);
  vkc_pool_arena_reset (t->pool);
  return got;
}

static void
run_case (OpTest *t, const char *what, const Case *c)
{
  const int64_t M = c->M, K = c->K, N = c->N, xw = K + c->x_pad, ldw = K + c->w_pad;
  guint32 seed = (guint32) (M * 7 + K * 13 + N * 17 + c->wt * 5 + c->w_pad);
  g_autofree float *x = op_randn ((size_t) (M * xw), seed, 1.0f);
  g_autofree float *w = op_randn ((size_t) (N * ldw), seed + 1, 0.05f);
  g_autofree float *b = op_randn ((size_t) N, seed + 2, 0.5f);
  g_autofree float *y0 = op_randn ((size_t) (M * N), seed + 3, 1.0f);
  op_round_to (w, (size_t) (N * ldw), c->wt);
  g_autofree float *got = run_kernel (t, c, VKC_LINEAR_CPU, x, w, b, y0, what);

  g_autofree double *ref = g_new (double, (size_t) (M * N));
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += (double) x[m * xw + c->x_col + k] * (double) w[n * ldw + k];
      if (c->bias)
        s += b[n];
      if (c->accumulate)
        s += y0[m * N + n];
      ref[m * N + n] = s;
    }
  char label[256];
  g_snprintf (label, sizeof label, "%s (M=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT " W %s)",
              what, M, K, N, vkc_dtype_name (c->wt));
  op_check (label, ref, got, (size_t) (M * N), fp32_limit (K));

  /* Same order of sums as the tiled kernel: the same bits where fma() stays fused (llvmpipe). */
  g_autofree float *tiled = run_kernel (t, c, VKC_LINEAR_TILED, x, w, b, y0, what);
  size_t differ = 0;
  for (size_t i = 0; i < (size_t) (M * N); i++) differ += memcmp (&got[i], &tiled[i], 4) != 0;
  if (differ && strstr (vkc_device_info (t->dev)->driver_name, "llvmpipe"))
    g_error ("%s: the CPU and tiled kernels differ on %zu outputs: their summation orders parted", label, differ);
}

static const VkcDType all_types[] = { VKC_F32, VKC_F16, VKC_BF16, VKC_Q8_0, VKC_Q4_0 };

static void
test_shapes (void)
{
  OpTest *t = op_test_new ();
  if (!runnable (t)) {
    op_test_free (t);
    return;
  }
  for (guint i = 0; i < G_N_ELEMENTS (all_types); i++) {
    VkcDType wt = all_types[i];
    bool blocks = vkc_dtype_block (wt) > 1;
    /* 16-byte loads on: K % 4 == 0, contiguous rows; neither M nor N a multiple of 16 / 64. */
    run_case (t, "aligned rows", &(Case) { .M = 37, .K = 160, .N = 71, .wt = wt, .bias = true });
    /* One row, and 16 + 1 rows (a second workgroup row with one live row). */
    run_case (t, "M = 1", &(Case) { .M = 1, .K = blocks ? 64 : 37, .N = 70, .wt = wt, .accumulate = true });
    run_case (t, "M = 17", &(Case) { .M = 17, .K = blocks ? 32 : 3, .N = 9, .wt = wt, .bias = true });
    /* Odd K (a tail of 3 after the quads), a column-slice view of x (x_off odd), an odd W stride. */
    run_case (t, "odd K, views",
              &(Case) { .M = 131,
                        .K = blocks ? 96 : 67,
                        .N = 261,
                        .wt = wt,
                        .bias = true,
                        .accumulate = true,
                        .x_pad = 3,
                        .x_col = 1,
                        .w_pad = blocks ? 0 : 1 });
    /* K % 4 == 0, W stride ≡ 2 mod 4: W four values at a time from single loads. */
    if (!blocks)
      run_case (t, "K = 4·odd, W stride 2 mod 4", &(Case) { .M = 70, .K = 204, .N = 133, .wt = wt, .w_pad = 2 });
    /* Bindings of at most 16 KiB: x and y split by rows, W by columns, chunks of different
     * alignment (some with 16-byte loads, some without). */
    run_case (t, "split bindings",
              &(Case) { .M = 100, .K = 160, .N = 90, .wt = wt, .bias = true, .max_binding = 16384 });
  }
  op_test_free (t);
}

/* AUTO takes the CPU kernel on CPU devices (lavapipe), and never elsewhere; and
 * DEEPGEN_VK_DISABLE_CPU_GEMM=1 switches it off. */
static void
test_auto (void)
{
  OpTest *t = op_test_new ();
  bool cpu = vkc_device_info (t->dev)->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
  char *d = vkc_linear_describe (t->dev, 4096, 6144, 1536, VKC_BF16);
  g_test_message ("DiT FF: %s", d);
  if (cpu && !vkc_device_info (t->dev)->coopmat_forced)
    g_assert_true (g_str_has_prefix (d, "CPU GEMM"));
  if (!cpu)
    g_assert_false (g_str_has_prefix (d, "CPU GEMM"));
  g_free (d);
  /* One row stays on the GEMV. */
  d = vkc_linear_describe (t->dev, 1, 2048, 2048, VKC_BF16);
  g_assert_false (g_str_has_prefix (d, "CPU GEMM"));
  g_free (d);
  g_setenv ("DEEPGEN_VK_DISABLE_CPU_GEMM", "1", TRUE);
  d = vkc_linear_describe (t->dev, 4096, 6144, 1536, VKC_BF16);
  g_test_message ("DiT FF, switched off: %s", d);
  g_assert_false (g_str_has_prefix (d, "CPU GEMM"));
  if (cpu)
    g_assert_nonnull (strstr (d, "CPU GEMM not used: switched off by DEEPGEN_VK_DISABLE_CPU_GEMM"));
  g_free (d);
  g_unsetenv ("DEEPGEN_VK_DISABLE_CPU_GEMM");
  op_test_free (t);
}

int
main (int argc, char **argv)
{
  g_unsetenv ("DEEPGEN_VK_DISABLE_CPU_GEMM");
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/linear_cpu/shapes-and-same-bits-as-tiled", test_shapes);
  g_test_add_func ("/linear_cpu/auto", test_auto);
  return g_test_run ();
}
