#include "golden.h"
#include "vkc_ops_eltwise.h"
#include <math.h>
#include <string.h>

char *
golden_data_path (const char *relative)
{
  const char *root = g_getenv ("DEEPGEN_TEST_DATA");
  g_assert_nonnull (root);
  return g_build_filename (root, relative, NULL);
}

DgSafetensors *
golden_open (const char *relative)
{
  g_autofree char *path = golden_data_path (relative);
  g_autoptr (GError) error = NULL;
  DgSafetensors *st = dg_safetensors_open (path, &error);
  g_assert_no_error (error);
  return st;
}

gboolean
golden_has (DgSafetensors *st, const char *name)
{
  return dg_safetensors_find (st, name) != NULL;
}

static const DgTensorInfo *
find (DgSafetensors *st, const char *name, gint64 *shape, guint *ndim)
{
  const DgTensorInfo *t = dg_safetensors_find (st, name);
  if (!t)
    g_error ("golden tensor '%s' is missing from %s", name, dg_safetensors_display_name (st));
  if (shape)
    memcpy (shape, t->shape, sizeof t->shape);
  if (ndim)
    *ndim = t->ndim;
  return t;
}

float *
golden_f32 (DgSafetensors *st, const char *name, gint64 *shape, guint *ndim)
{
  const DgTensorInfo *t = find (st, name, shape, ndim);
  float *out = g_new (float, MAX (t->n_elements, 1));
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_tensor_to_f32 (t, out, &error));
  return out;
}

gint64 *
golden_i64 (DgSafetensors *st, const char *name, gint64 *shape, guint *ndim)
{
  const DgTensorInfo *t = find (st, name, shape, ndim);
  gint64 *out = g_new (gint64, MAX (t->n_elements, 1));
  const guint8 *p = t->data;
  for (gint64 i = 0; i < t->n_elements; i++) {
    switch (t->dtype) {
    case DG_DTYPE_I64: memcpy (&out[i], p + 8 * i, 8); break;
    case DG_DTYPE_I32: {
      gint32 v;
      memcpy (&v, p + 4 * i, 4);
      out[i] = v;
      break;
    }
    case DG_DTYPE_U8:
    case DG_DTYPE_BOOL: out[i] = p[i]; break;
    default: g_error ("golden tensor '%s' is not an integer tensor", name);
    }
  }
  return out;
}

double
golden_compare (const char *what, const float *expected, const float *got, gsize n, double limit)
{
  double num = 0, den = 0, worst = -1;
  gsize wi = 0;
  for (gsize i = 0; i < n; i++) {
    if (!isfinite (got[i]) && isfinite (expected[i]))
      g_error ("%s: element %zu is %g, expected %g", what, i, got[i], expected[i]);
    double d = (double) got[i] - expected[i];
    num += d * d;
    den += (double) expected[i] * expected[i];
    if (fabs (d) > worst) {
      worst = fabs (d);
      wi = i;
    }
  }
  double e = den > 0 ? num / den : num;
  g_test_message ("%s: nmse %.3g (limit %.1g), max |diff| %.3g", what, e, limit, worst);
  if (!(e <= limit))
    g_error ("%s: nmse %.3g exceeds %.1g (worst element %zu: got %.8g, expected %.8g)", what, e, limit, wi, got[wi],
             expected[wi]);
  return e;
}

float *
golden_nchw_to_nhwc (const float *x, gint64 b, gint64 c, gint64 h, gint64 w)
{
  float *y = g_new (float, MAX (b * c * h * w, 1));
  for (gint64 n = 0; n < b; n++)
    for (gint64 ch = 0; ch < c; ch++)
      for (gint64 i = 0; i < h * w; i++) y[(n * h * w + i) * c + ch] = x[(n * c + ch) * h * w + i];
  return y;
}

float *
golden_nhwc_to_nchw (const float *x, gint64 b, gint64 h, gint64 w, gint64 c)
{
  float *y = g_new (float, MAX (b * c * h * w, 1));
  for (gint64 n = 0; n < b; n++)
    for (gint64 ch = 0; ch < c; ch++)
      for (gint64 i = 0; i < h * w; i++) y[(n * c + ch) * h * w + i] = x[(n * h * w + i) * c + ch];
  return y;
}

VkcDevice *
golden_device_new (void)
{
  g_autoptr (GError) error = NULL;
  VkcDeviceOptions opt = VKC_DEVICE_OPTIONS_DEFAULT;
  opt.no_pipeline_cache = true;
  VkcDevice *dev = vkc_device_new (&opt, &error);
  g_assert_no_error (error);
  return dev;
}

GoldenFixture *
golden_fixture_new (void)
{
  GoldenFixture *f = g_new0 (GoldenFixture, 1);
  f->dev = golden_device_new ();
  f->arena = dg_arena_new (f->dev, "test activations");
  f->kept = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return f;
}

void
golden_fixture_free (GoldenFixture *f)
{
  g_hash_table_unref (f->kept);
  dg_arena_free (f->arena);
  guint messages = vkc_device_validation_messages (f->dev);
  vkc_device_free (f->dev);
  g_assert_cmpuint (messages, ==, 0);
  g_free (f);
}

void
golden_keep_tap (VkcCmd *cmd, const char *name, const VkcTensor *t, gpointer fixture)
{
  GoldenFixture *f = fixture;
  VkcTensor *copy = g_new (VkcTensor, 1);
  if (!dg_arena_tensor (f->arena, copy, VKC_F32, t->ndim, t->shape)) {
    g_free (copy);
    return;
  }
  vkc_op_copy (cmd, copy, t);
  g_hash_table_replace (f->kept, g_strdup (name), copy);
}

void
golden_submit (VkcCmd *cmd, DgArena *arena, double *ms)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_arena_check (arena, &error));
  gint64 t0 = g_get_monotonic_time ();
  g_assert_true (vkc_cmd_submit_wait (cmd, &error));
  if (ms)
    *ms = (g_get_monotonic_time () - t0) / 1000.0;
}
