/* AdaLN modulation and gated residual (vkc_ops_adaln.h) against C references.
 *
 * Operands are views into random buffers: x, y, v are token ranges of a [B, N + pad, C] buffer
 * (batch stride ≠ N·C), scale/shift/gate are column chunks of a [B, 6C] modulation tensor —
 * the DiT's layouts — on awkward sizes (odd C, one channel, more than one workgroup).
 *  - VKC_ADALN_ROUND_BF16: bf16-valued inputs, every step rounded: the reference computes the
 *    same fp32 operations and roundings in C, so the result must be bit-exact.
 *  - VKC_ADALN_F32: NMSE ≤ 1e-12 against a double reference (two or three fp32 roundings,
 *    ~1e-14 on random data, margin for the driver's choice to fuse a multiply-add).
 * Elements outside the output view must stay untouched; the split path (bindings over a
 * lowered limit) must give the same bits. */
#include <math.h>
#include <string.h>

#include "op_test.h"
#include "vkc_ops_adaln.h"

#define LIMIT_F32 1e-12

static OpTest *T;

typedef struct {
  int64_t B, N, C;
  gboolean in_place, two_d;
} Case;

static int64_t
idx3 (int64_t b, int64_t n, int64_t c, int64_t N, int64_t C)
{
  return (b * N + n) * C + c;
}

static void
run_case (const Case *k, int op, VkcAdalnFlags flags, guint32 seed, VkDeviceSize split)
{
  const int64_t B = k->B, N = k->N, C = k->C, P = 3; /* P padding tokens after each row */
  const int64_t NT = N + P, nbuf = B * NT * C, nmod = B * 6 * C;
  const gboolean bf = flags & VKC_ADALN_ROUND_BF16;
  g_autofree float *xh = op_randn ((size_t) nbuf, seed, 1.0f);
  g_autofree float *vh = op_randn ((size_t) nbuf, seed + 1, 1.0f);
  g_autofree float *yh = op_randn ((size_t) nbuf, seed + 2, 1.0f);
  g_autofree float *mh = op_randn ((size_t) nmod, seed + 3, 0.5f);
  if (bf) {
    op_round_to (xh, (size_t) nbuf, VKC_BF16);
    op_round_to (vh, (size_t) nbuf, VKC_BF16);
    op_round_to (mh, (size_t) nmod, VKC_BF16);
  }
  const int64_t bshape[3] = { B, NT, C }, mshape[2] = { B, 6 * C };
  VkcTensor xb = op_tensor (T, VKC_F32, 3, bshape, xh);
  VkcTensor vb = op_tensor (T, VKC_F32, 3, bshape, vh);
  VkcTensor yb = op_tensor (T, VKC_F32, 3, bshape, yh);
  VkcTensor mb = op_tensor (T, VKC_F32, 2, mshape, mh);
  /* Tokens 1 .. N of each row; chunks 4 (a) and 1 (b) of the modulation tensor. */
  VkcTensor x = vkc_tensor_narrow (&xb, 1, 1, N), v = vkc_tensor_narrow (&vb, 1, 1, N);
  VkcTensor y = k->in_place ? x : vkc_tensor_narrow (&yb, 1, 1, N);
  VkcTensor a = vkc_tensor_narrow (&mb, 1, 4 * C, C), s = vkc_tensor_narrow (&mb, 1, 1 * C, C);
  if (k->two_d) { /* [N, C] with [C] operands: batch row 0 only */
    g_assert_cmpint (B, ==, 1);
    const int64_t sh2[2] = { N, C }, st2[2] = { C, 1 }, sh1[1] = { C }, st1[1] = { 1 };
    x = vkc_tensor_view (&xb, 2, sh2, st2, C);
    v = vkc_tensor_view (&vb, 2, sh2, st2, C);
    y = k->in_place ? x : vkc_tensor_view (&yb, 2, sh2, st2, C);
    a = vkc_tensor_view (&mb, 1, sh1, st1, 4 * C);
    s = vkc_tensor_view (&mb, 1, sh1, st1, 1 * C);
  }
  vkc_adaln_set_binding_limit (split);
  VkcCmd *cmd = op_cmd (T);
  if (op == 0)
    vkc_op_adaln_modulate (cmd, &y, &x, &a, &s, flags);
  else
    vkc_op_adaln_gated_add (cmd, &y, &x, &a, &v, flags);
  if (split)
    g_assert_cmpuint (vkc_cmd_n_dispatches (cmd), >, 1);
  op_run (T, cmd);
  vkc_adaln_set_binding_limit (0);
  g_autofree float *got = op_download (T, k->in_place ? &xb : &yb);

  const float *before = k->in_place ? xh : yh;
  g_autofree double *ref = g_new (double, nbuf);
  g_autofree float *exact = g_new (float, nbuf);
  for (int64_t b = 0; b < B; b++)
    for (int64_t n = 0; n < NT; n++)
      for (int64_t c = 0; c < C; c++) {
        int64_t i = idx3 (b, n, c, NT, C);
        if (n < 1 || n > N) { /* outside the output view: untouched */
          ref[i] = before[i];
          exact[i] = before[i];
          continue;
        }
        float xv = xh[i], av = mh[b * 6 * C + 4 * C + c], sv = mh[b * 6 * C + C + c], vv = vh[i];
        if (op == 0) {
          ref[i] = (double) xv * (1.0 + av) + sv;
          exact[i] = vkc_round_bf16 (vkc_round_bf16 (xv * vkc_round_bf16 (1.0f + av)) + sv);
        } else {
          ref[i] = xv + (double) av * vv;
          exact[i] = vkc_round_bf16 (xv + vkc_round_bf16 (av * vv));
        }
      }
  g_autofree char *what = g_strdup_printf (
      "%s %s B%" G_GINT64_FORMAT " N%" G_GINT64_FORMAT " C%" G_GINT64_FORMAT "%s%s%s", op ? "gated_add" : "modulate",
      bf ? "bf16" : "f32", B, N, C, k->in_place ? " in-place" : "", k->two_d ? " 2-D" : "", split ? " split" : "");
  if (bf) {
    for (int64_t i = 0; i < nbuf; i++)
      if (memcmp (&got[i], &exact[i], 4) != 0)
        g_error ("%s: element %" G_GINT64_FORMAT " is %.9g, expected %.9g", what, i, got[i], exact[i]);
    if (g_test_verbose ())
      g_test_message ("%s: bit-exact", what);
  } else {
    op_check (what, ref, got, (size_t) nbuf, LIMIT_F32);
  }
}

static void
test_adaln (void)
{
  static const Case cases[] = {
    { 3, 37, 45, FALSE, FALSE }, { 3, 37, 45, TRUE, FALSE },  { 1, 5, 1, FALSE, FALSE },
    { 2, 129, 64, TRUE, FALSE }, { 1, 300, 17, FALSE, TRUE }, { 1, 11, 33, TRUE, TRUE },
  };
  guint32 seed = 1;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    for (int op = 0; op < 2; op++)
      for (int bf = 0; bf < 2; bf++) run_case (&cases[i], op, bf ? VKC_ADALN_ROUND_BF16 : VKC_ADALN_F32, seed += 7, 0);
}

static void
test_split (void)
{
  /* 2 rows of 129 tokens × 64 channels (33 KB per row): a 4 KiB limit cuts rows and tokens. */
  static const Case k[] = { { 2, 129, 64, FALSE, FALSE }, { 2, 129, 64, TRUE, FALSE } };
  for (gsize i = 0; i < G_N_ELEMENTS (k); i++)
    for (int op = 0; op < 2; op++)
      for (int bf = 0; bf < 2; bf++)
        run_case (&k[i], op, bf ? VKC_ADALN_ROUND_BF16 : VKC_ADALN_F32, 100 + (guint32) (4 * i + 2 * op + bf), 4096);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  T = op_test_new ();
  g_test_add_func ("/adaln/shapes", test_adaln);
  g_test_add_func ("/adaln/split", test_split);
  int rc = g_test_run ();
  op_test_free (T);
  return rc;
}
