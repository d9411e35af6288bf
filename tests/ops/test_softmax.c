/* Softmax over the last dim vs a double-precision C reference.
 *
 * NMSE limit 1e-10: each output is exp(x − max)/Σ in fp32 — GLSL's exp is good to a few ulp
 * near 0 (the values that dominate the norm) and the fp32 sum adds ~1e-7 relative, so the
 * NMSE is ~1e-13 in practice; any indexing/reduction bug gives 1e-3 or worse. Entries that are
 * −∞ must give exactly 0, and an all −∞ row exactly 0 everywhere. */
#include "op_test.h"
#include "vkc_ops_attention.h"
#include <math.h>

#define SOFTMAX_NMSE 1e-10

static guint min_dispatches = 1; /* the split test raises it */

/* Reference over a contiguous host array of rows × cols. */
static void
ref_softmax (const float *x, double *y, size_t rows, size_t cols)
{
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    double mx = -INFINITY, s = 0;
    for (size_t c = 0; c < cols; c++) mx = fmax (mx, xr[c]);
    for (size_t c = 0; c < cols; c++) s += mx == -INFINITY ? 0 : exp (xr[c] - mx);
    for (size_t c = 0; c < cols; c++) y[r * cols + c] = mx == -INFINITY ? 0 : exp (xr[c] - mx) / s;
  }
}

/* A softmax over a [.., cols] view `x` of a larger contiguous `full` host array: the view is
 * taken as dims `shape` with element strides `stride` at element offset `off`. */
static void
check (OpTest *t, const char *what, int ndim, const int64_t *full_shape, const int64_t *shape, const int64_t *stride,
       int64_t off, float scale, bool in_place, bool inf)
{
  int64_t n_full = 1, rows = 1;
  for (int d = 0; d < ndim; d++) n_full *= full_shape[d];
  for (int d = 0; d < ndim - 1; d++) rows *= shape[d];
  const int64_t cols = shape[ndim - 1];
  g_autofree float *hx = op_randn ((size_t) n_full, (guint32) (n_full + cols), scale);
  VkcTensor xf = op_tensor (t, VKC_F32, ndim, full_shape, NULL);
  VkcTensor x = vkc_tensor_view (&xf, ndim, shape, stride, off);
  /* Gather the view's rows on the host (same element order as the shader walks). */
  g_autofree float *rowsx = g_new (float, rows *cols);
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r, base = off;
    for (int d = ndim - 2; d >= 0; d--) {
      base += (rem % shape[d]) * stride[d];
      rem /= shape[d];
    }
    for (int64_t c = 0; c < cols; c++) {
      if (inf && (r % 3 == 1 ? c % 4 == 0 : r % 3 == 2))
        hx[base + c] = -INFINITY; /* row r%3==2: all −∞ */
      rowsx[r * cols + c] = hx[base + c];
    }
  }
  g_autoptr (GError) error = NULL;
  g_assert_true (vkc_tensor_upload (t->dev, &xf, hx, &error));
  VkcTensor yf = in_place ? xf : op_tensor (t, VKC_F32, ndim, full_shape, NULL);
  VkcTensor y = in_place ? x : vkc_tensor_view (&yf, ndim, shape, stride, off);
  VkcCmd *cmd = op_cmd (t);
  vkc_op_softmax (cmd, &y, &x);
  g_assert_cmpuint (vkc_cmd_n_dispatches (cmd), >=, min_dispatches);
  op_run (t, cmd);
  g_autofree float *gf = op_download (t, &yf);
  g_autofree float *got = g_new (float, rows *cols);
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r, base = off;
    for (int d = ndim - 2; d >= 0; d--) {
      base += (rem % shape[d]) * stride[d];
      rem /= shape[d];
    }
    memcpy (got + r * cols, gf + base, sizeof (float) * cols);
  }
  g_autofree double *ref = g_new (double, rows *cols);
  ref_softmax (rowsx, ref, rows, cols);
  for (int64_t i = 0; i < rows * cols; i++)
    if (ref[i] == 0 && got[i] != 0)
      g_error ("softmax %s: element %" G_GINT64_FORMAT " is %g, not exactly 0", what, i, got[i]);
  op_check (what, ref, got, (size_t) (rows * cols), SOFTMAX_NMSE);
}

static void
contiguous (OpTest *t, const char *what, int64_t rows, int64_t cols, float scale, bool inf)
{
  int64_t s[2] = { rows, cols }, st[2] = { cols, 1 };
  check (t, what, 2, s, s, st, 0, scale, false, inf);
}

static void
test_shapes (void)
{
  OpTest *t = op_test_new ();
  for (int pass = 0; pass < 2; pass++) {
    VkcAttnTuning tu = VKC_ATTN_TUNING_DEFAULT;
    tu.no_subgroup = pass == 1; /* shared-memory tree reduction */
    vkc_attention_set_tuning (&tu);
    contiguous (t, "1x1", 1, 1, 1.0f, false);
    contiguous (t, "37x5", 37, 5, 3.0f, false);
    contiguous (t, "3x1000", 3, 1000, 2.0f, false);        /* 64-thread rows, 16 elements each */
    contiguous (t, "5x3001", 5, 3001, 2.0f, false);        /* 256-thread rows */
    contiguous (t, "large-logits", 9, 257, 200.0f, false); /* exp would overflow without the max */
    contiguous (t, "neg-inf", 9, 131, 2.0f, true);
  }
  vkc_attention_set_tuning (NULL);
  op_test_free (t);
}

static void
test_views (void)
{
  OpTest *t = op_test_new ();
  /* Channel slice of a wider tensor: [2, 7, 40] inside [2, 7, 64] at channel 5. */
  {
    int64_t full[3] = { 2, 7, 64 }, shape[3] = { 2, 7, 40 }, stride[3] = { 7 * 64, 64, 1 };
    check (t, "channel-slice", 3, full, shape, stride, 5, 2.0f, false, false);
  }
  /* 4-D with a transposed pair of leading dims, in place. */
  {
    int64_t full[4] = { 2, 3, 5, 33 }, shape[4] = { 2, 5, 3, 33 }, stride[4] = { 3 * 5 * 33, 33, 5 * 33, 1 };
    check (t, "4d-transposed-inplace", 4, full, shape, stride, 0, 2.0f, true, true);
  }
  op_test_free (t);
}

/* Bindings over the limit are split along the leading dims. */
static void
test_split (void)
{
  OpTest *t = op_test_new ();
  VkcAttnTuning tu = VKC_ATTN_TUNING_DEFAULT;
  tu.max_binding = 8 * 1024; /* [3, 40, 129] f32 is 62 KiB: split into pieces of ≤ 8 KiB */
  vkc_attention_set_tuning (&tu);
  int64_t s[3] = { 3, 40, 129 }, st[3] = { 40 * 129, 129, 1 };
  min_dispatches = 8;
  check (t, "split", 3, s, s, st, 0, 2.0f, false, false);
  min_dispatches = 1;
  vkc_attention_set_tuning (NULL);
  op_test_free (t);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/softmax/shapes", test_shapes);
  g_test_add_func ("/softmax/views", test_views);
  g_test_add_func ("/softmax/split", test_split);
  return g_test_run ();
}
