/* dtype conversion op vs the host conversions of vkc_half.h (which round to nearest even).
 * Conversions are exact functions, so the limit is 0: every element must match bit for bit. */
#include "op_test.h"
#include "vkc_ops_convert.h"

static void
check_pair (VkcDType from, VkcDType to, int64_t n, int64_t view_off)
{
  OpTest *t = op_test_new ();
  g_autofree float *x = op_randn ((size_t) (n + view_off), 11 + (guint32) n, 3.0f);
  x[0] = 0.0f;
  if (n > 3) {
    x[1] = 1e-30f;
    x[2] = 70000.0f;
    x[3] = -1e-6f;
  } /* underflow, f16 overflow, subnormal */
  op_round_to (x, (size_t) (n + view_off), from);
  int64_t sn = n + view_off;
  VkcTensor src = op_tensor (t, from, 1, &sn, x);
  VkcTensor dst_full = op_tensor (t, to, 1, &sn, NULL);
  VkcTensor srcv = vkc_tensor_narrow (&src, 0, view_off, n);
  VkcTensor dstv = vkc_tensor_narrow (&dst_full, 0, view_off, n);
  /* Pre-fill the destination so partial words at the view's edges can be checked. */
  g_autofree float *fill = g_new (float, sn);
  for (int64_t i = 0; i < sn; i++) fill[i] = -7.0f;
  {
    VkcTensor tmp = op_tensor (t, to, 1, &sn, fill);
    VkcCmd *cmd = op_cmd (t);
    vkc_cmd_copy (cmd, tmp.buffer, tmp.offset, dst_full.buffer, dst_full.offset,
                  (VkDeviceSize) sn * vkc_dtype_size (to));
    vkc_op_convert (cmd, &dstv, &srcv);
    op_run (t, cmd);
  }
  g_autofree float *got = op_download (t, &dst_full);
  for (int64_t i = 0; i < sn; i++) {
    float want = i < view_off ? -7.0f : x[i];
    if (i >= view_off)
      op_round_to (&want, 1, to);
    if (memcmp (&want, &got[i], 4) != 0 && !(want != want && got[i] != got[i]))
      g_error ("convert %s→%s n=%" G_GINT64_FORMAT " off=%" G_GINT64_FORMAT ": element %" G_GINT64_FORMAT
               " got %.9g want %.9g",
               vkc_dtype_name (from), vkc_dtype_name (to), n, view_off, i, got[i], want);
  }
  op_test_free (t);
}

static void
test_all_pairs (void)
{
  const VkcDType types[] = { VKC_F32, VKC_F16, VKC_BF16 };
  const int64_t sizes[] = { 1, 2, 7, 255, 257, 1001, 70001 };
  for (guint a = 0; a < 3; a++)
    for (guint b = 0; b < 3; b++) {
      if (a == b)
        continue;
      for (guint s = 0; s < G_N_ELEMENTS (sizes); s++) {
        check_pair (types[a], types[b], sizes[s], 0);
        check_pair (types[a], types[b], sizes[s], 1); /* odd element offset: split words */
      }
    }
}

static void
test_round_bf16 (void)
{
  OpTest *t = op_test_new ();
  const int64_t n = 4099;
  g_autofree float *x = op_randn (n, 5, 10.0f);
  VkcTensor a = op_tensor (t, VKC_F32, 1, &n, x);
  VkcCmd *cmd = op_cmd (t);
  vkc_op_round_bf16 (cmd, &a, &a); /* in place */
  op_run (t, cmd);
  g_autofree float *got = op_download (t, &a);
  for (int64_t i = 0; i < n; i++) g_assert_cmpfloat (got[i], ==, vkc_round_bf16 (x[i]));
  op_test_free (t);
}

/* Tensors larger than one binding go in pieces (limit lowered to 4 KiB here; the real case is
 * a 512 MiB VAE activation against lavapipe's 128 MiB): same bits as one pass. */
static void
test_split (void)
{
  OpTest *t = op_test_new ();
  const int64_t n = 10001;
  g_autofree float *x = op_randn (n, 9, 4.0f);
  VkcTensor a = op_tensor (t, VKC_F32, 1, &n, x);
  VkcTensor b = op_tensor (t, VKC_BF16, 1, &n, NULL);
  VkcTensor c = op_tensor (t, VKC_F32, 1, &n, NULL);
  vkc_convert_set_binding_limit (4096);
  VkcCmd *cmd = op_cmd (t);
  vkc_op_convert (cmd, &b, &a);
  vkc_op_round_bf16 (cmd, &c, &a);
  g_assert_cmpuint (vkc_cmd_n_dispatches (cmd), >=, 2 * (n * 4 / 4096));
  op_run (t, cmd);
  vkc_convert_set_binding_limit (0);
  g_autofree float *gb = op_download (t, &b), *gc = op_download (t, &c);
  for (int64_t i = 0; i < n; i++) {
    g_assert_cmpfloat (gb[i], ==, vkc_round_bf16 (x[i]));
    g_assert_cmpfloat (gc[i], ==, vkc_round_bf16 (x[i]));
  }
  op_test_free (t);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/convert/all-pairs", test_all_pairs);
  g_test_add_func ("/convert/round-bf16", test_round_bf16);
  g_test_add_func ("/convert/split", test_split);
  return g_test_run ();
}
