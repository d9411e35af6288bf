#include "op_test.h"
#include <math.h>
#include <glib/gstdio.h>

#include "vkc_ops_linear.h"

OpTest *
op_test_new (void)
{
  g_autoptr (GError) error = NULL;
  VkcDeviceOptions opt = VKC_DEVICE_OPTIONS_DEFAULT;
  opt.validation = 1;
  opt.no_pipeline_cache = true;
  OpTest *t = g_new0 (OpTest, 1);
  t->dev = vkc_device_new (&opt, &error);
  g_assert_no_error (error);
  g_assert_true (vkc_device_validation_enabled (t->dev));
  t->pool = vkc_pool_new (t->dev, VKC_POOL_DEVICE, 0, "op-test");
  return t;
}

void
op_test_free (OpTest *t)
{
  vkc_pool_free (t->pool);
  guint messages = vkc_device_validation_messages (t->dev);
  vkc_device_free (t->dev);
  g_assert_cmpuint (messages, ==, 0);
  g_free (t);
}

float *
op_randn (size_t n, guint32 seed, float scale)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (seed);
  float *x = g_new (float, n ? n : 1);
  for (size_t i = 0; i < n; i += 2) {
    double u1 = g_rand_double (r), u2 = g_rand_double (r);
    double rad = sqrt (-2.0 * log (1.0 - u1)), th = 2.0 * G_PI * u2;
    x[i] = (float) (scale * rad * cos (th));
    if (i + 1 < n)
      x[i + 1] = (float) (scale * rad * sin (th));
  }
  return x;
}

float *
op_randu (size_t n, guint32 seed, float lo, float hi)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (seed);
  float *x = g_new (float, n ? n : 1);
  for (size_t i = 0; i < n; i++) x[i] = (float) g_rand_double_range (r, lo, hi);
  return x;
}

void
op_round_to (float *x, size_t n, VkcDType dtype)
{
  for (size_t i = 0; i < n; i++) {
    if (dtype == VKC_BF16)
      x[i] = vkc_round_bf16 (x[i]);
    else if (dtype == VKC_F16)
      x[i] = vkc_f16_to_f32 (vkc_f32_to_f16 (x[i]));
  }
  if (vkc_dtype_block (dtype) > 1) {
    g_assert_cmpuint (n % (size_t) vkc_dtype_block (dtype), ==, 0);
    g_autofree uint32_t *q = g_malloc (vkc_dtype_bytes (dtype, (int64_t) n) + 4);
    vkc_quantize (dtype, x, (int64_t) n, q);
    vkc_dequantize (dtype, q, (int64_t) n, x);
  }
}

VkcTensor
op_tensor (OpTest *t, VkcDType dtype, int ndim, const int64_t *shape, const float *data)
{
  g_autoptr (GError) error = NULL;
  VkcTensor x;
  g_assert_true (vkc_tensor_alloc (&x, t->pool, true, dtype, ndim, shape, &error));
  g_assert_no_error (error);
  if (data) {
    size_t n = (size_t) vkc_tensor_numel (&x);
    if (dtype == VKC_F32) {
      g_assert_true (vkc_tensor_upload (t->dev, &x, data, &error));
    } else if (vkc_dtype_block (dtype) > 1) {
      g_autofree uint32_t *q = g_malloc (vkc_dtype_bytes (dtype, (int64_t) n) + 4);
      vkc_quantize (dtype, data, (int64_t) n, q);
      g_assert_true (vkc_tensor_upload (t->dev, &x, q, &error));
    } else {
      g_autofree uint16_t *h = g_new (uint16_t, n ? n : 1);
      for (size_t i = 0; i < n; i++) h[i] = dtype == VKC_BF16 ? vkc_f32_to_bf16 (data[i]) : vkc_f32_to_f16 (data[i]);
      g_assert_true (vkc_tensor_upload (t->dev, &x, h, &error));
    }
    g_assert_no_error (error);
  }
  return x;
}

float *
op_download (OpTest *t, const VkcTensor *x)
{
  g_autoptr (GError) error = NULL;
  size_t n = (size_t) vkc_tensor_numel (x);
  float *out = g_new (float, n ? n : 1);
  if (x->dtype == VKC_F32) {
    g_assert_true (vkc_tensor_download (t->dev, x, out, &error));
  } else if (vkc_dtype_block (x->dtype) > 1) {
    g_autofree uint32_t *q = g_malloc (vkc_dtype_bytes (x->dtype, (int64_t) n) + 4);
    g_assert_true (vkc_tensor_download (t->dev, x, q, &error));
    vkc_dequantize (x->dtype, q, (int64_t) n, out);
  } else {
    g_autofree uint16_t *h = g_new (uint16_t, n ? n : 1);
    g_assert_true (vkc_tensor_download (t->dev, x, h, &error));
    for (size_t i = 0; i < n; i++) out[i] = x->dtype == VKC_BF16 ? vkc_bf16_to_f32 (h[i]) : vkc_f16_to_f32 (h[i]);
  }
  g_assert_no_error (error);
  return out;
}

VkcCmd *
op_cmd (OpTest *t)
{
  g_autoptr (GError) error = NULL;
  VkcCmd *cmd = vkc_cmd_begin (t->dev, &error);
  g_assert_no_error (error);
  return cmd;
}

void
op_run (OpTest *t, VkcCmd *cmd)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (vkc_cmd_submit_wait (cmd, &error));
  g_assert_no_error (error);
  vkc_cmd_free (cmd);
}

double
op_nmse (const double *ref, const float *got, size_t n)
{
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    double d = ref[i] - got[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return den > 0 ? num / den : num;
}

void
op_check (const char *what, const double *ref, const float *got, size_t n, double limit)
{
  for (size_t i = 0; i < n; i++) {
    if (!isfinite (got[i]) && isfinite (ref[i]))
      g_error ("%s: element %zu is %g, expected %g", what, i, got[i], ref[i]);
  }
  double e = op_nmse (ref, got, n);
  if (g_test_verbose ())
    g_test_message ("%s: nmse %.3g (limit %.1g)", what, e, limit);
  if (!(e <= limit)) {
    size_t worst = 0;
    double wd = -1;
    for (size_t i = 0; i < n; i++) {
      double d = fabs (ref[i] - got[i]);
      if (d > wd) {
        wd = d;
        worst = i;
      }
    }
    g_error ("%s: nmse %.3g exceeds %.1g (worst element %zu: got %.8g, expected %.8g)", what, e, limit, worst,
             got[worst], ref[worst]);
  }
}

static char *temp_cache;

const char *
op_temp_cache_begin (const char *name_template)
{
  temp_cache = g_dir_make_tmp (name_template, NULL);
  g_assert_nonnull (temp_cache);
  g_setenv ("XDG_CACHE_HOME", temp_cache, TRUE);
  return temp_cache;
}

void
op_temp_cache_remove (void)
{
  /* The verdict files are deepgen/selfcheck-*.txt. */
  g_autofree char *sub = g_build_filename (temp_cache, "deepgen", NULL);
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
  g_rmdir (temp_cache);
  g_clear_pointer (&temp_cache, g_free);
}

void
op_run_linear_f16_fp32_bound (OpTest *t, const char *what)
{
  enum { M = 64, K = 100, N = 40 };
  g_autofree float *x = op_randn (M * K, 5, 1.0f);
  g_autofree float *w = op_randn (N * K, 6, 1.0f);
  op_round_to (w, N * K, VKC_F16);
  /* x stays off the fp16 grid, so that a kernel rounding it to fp16 stands out from fp32's bound. */
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
  const double u = 1.0 / (1 << 24);
  op_check (what, ref, got, M * N, MAX (1e-12, 30.0 * u * u * K));
  vkc_pool_arena_reset (t->pool);
}
