/* vkc_op_gaussian_latent and vkc_op_blend_tile against plain C references.
 *
 * gaussian_latent, fp32: the only difference from the double reference is the GPU's exp and
 * fp32 rounding (a few ulp), so NMSE ≤ 1e-12. With round_bf16 the reference applies the
 * same bf16 roundings in the same order; an exp that differs from libm by an ulp can flip one
 * rounding by one bf16 ulp (2⁻⁸ relative) on rare elements, hence NMSE ≤ 1e-6.
 * blend_tile is a multiply-add per element: NMSE ≤ 1e-12. */
#include <math.h>
#include "op_test.h"
#include "vkc_ops_latent.h"

static void
check_latent (int64_t B, int64_t H, int64_t W, int64_t C, bool with_eps, bool rb, guint32 seed)
{
  OpTest *t = op_test_new ();
  int64_t npx = B * H * W, n = npx * C;
  g_autofree float *mom = op_randn ((size_t) (npx * 2 * C), seed, 2.0f);
  g_autofree float *eps = op_randn ((size_t) n, seed + 1, 1.0f);
  /* Log-variances outside the clamp range on both sides. */
  mom[C] = 45.0f;
  if (npx > 1)
    mom[2 * C + C] = -70.0f;
  if (rb) {
    op_round_to (mom, (size_t) (npx * 2 * C), VKC_BF16);
    op_round_to (eps, (size_t) n, VKC_BF16);
  }
  VkcGaussianLatentParams p = { -30.0f, 20.0f, 0.0609f, 1.5305f, rb };
  VkcTensor m = op_tensor (t, VKC_F32, 4, (int64_t[]) { B, H, W, 2 * C }, mom);
  VkcTensor e = op_tensor (t, VKC_F32, 4, (int64_t[]) { B, H, W, C }, eps);
  VkcTensor y = op_tensor (t, VKC_F32, 4, (int64_t[]) { B, H, W, C }, NULL);
  VkcCmd *cmd = op_cmd (t);
  vkc_op_gaussian_latent (cmd, &y, &m, with_eps ? &e : NULL, &p);
  op_run (t, cmd);
  g_autofree float *got = op_download (t, &y);
  g_autofree double *ref = g_new (double, n);
  for (int64_t px = 0; px < npx; px++)
    for (int64_t c = 0; c < C; c++) {
      float mean = mom[px * 2 * C + c], lv = fminf (fmaxf (mom[px * 2 * C + C + c], -30.0f), 20.0f);
      float ep = eps[px * C + c];
      if (rb) {
        float sd = vkc_round_bf16 (expf (vkc_round_bf16 (0.5f * lv)));
        float z = with_eps ? vkc_round_bf16 (mean + vkc_round_bf16 (sd * ep)) : mean;
        ref[px * C + c] = vkc_round_bf16 (vkc_round_bf16 (z - 0.0609f) * 1.5305f);
      } else {
        double z = with_eps ? mean + exp (0.5 * lv) * ep : mean;
        ref[px * C + c] = (z - (double) 0.0609f) * (double) 1.5305f;
      }
    }
  char what[96];
  g_snprintf (what, sizeof what, "gaussian_latent %ldx%ldx%ldx%ld eps=%d bf16=%d", (long) B, (long) H, (long) W,
              (long) C, with_eps, rb);
  op_check (what, ref, got, (size_t) n, rb ? 1e-6 : 1e-12);
  op_test_free (t);
}

static void
test_gaussian_latent (void)
{
  for (int rb = 0; rb < 2; rb++)
    for (int with_eps = 0; with_eps < 2; with_eps++) {
      check_latent (1, 1, 1, 1, with_eps, rb, 3);
      check_latent (2, 5, 7, 3, with_eps, rb, 5);
      check_latent (1, 33, 17, 16, with_eps, rb, 7); /* > one workgroup, latent width 16 */
    }
}

static double
ramp_ref (int k, const VkcTileRamp *r)
{
  double w = 1.0;
  if (k < r->in_start)
    return 0.0;
  if (k < r->in_start + r->in_len)
    w = (k - r->in_start + 0.5) / r->in_len;
  if (k >= r->out_start + r->out_len)
    return 0.0;
  if (k >= r->out_start)
    w *= 1.0 - (k - r->out_start + 0.5) / r->out_len;
  return w;
}

/* y is a channel slice [1, C] of a [B, H, W, C + 2] tensor (pixel stride ≠ C); t is a
 * contiguous tile. Two tiles are blended in one command buffer to check accumulation. */
static void
check_blend (VkDeviceSize limit)
{
  OpTest *t = op_test_new ();
  vkc_latent_set_binding_limit (limit);
  const int64_t B = 2, H = 11, W = 13, C = 5, CF = C + 2;
  const int64_t th = 7, tw = 9;
  g_autofree float *yinit = op_randn ((size_t) (B * H * W * CF), 21, 1.0f);
  g_autofree float *t1 = op_randn ((size_t) (B * th * tw * C), 22, 1.0f);
  g_autofree float *t2 = op_randn ((size_t) (B * th * tw * C), 23, 1.0f);
  VkcTensor yfull = op_tensor (t, VKC_F32, 4, (int64_t[]) { B, H, W, CF }, yinit);
  VkcTensor y = vkc_tensor_narrow (&yfull, 3, 1, C);
  VkcTensor a = op_tensor (t, VKC_F32, 4, (int64_t[]) { B, th, tw, C }, t1);
  VkcTensor b = op_tensor (t, VKC_F32, 4, (int64_t[]) { B, th, tw, C }, t2);
  const int64_t pos[2][2] = { { 0, 0 }, { 4, 4 } };
  const VkcTileRamp ry[2] = { { 0, 0, 4, 3 }, { 0, 3, 7, 0 } };
  const VkcTileRamp rx[2] = { { 0, 0, 5, 4 }, { 1, 4, 9, 0 } }; /* in_start 1: column 0 unused */
  VkcCmd *cmd = op_cmd (t);
  vkc_op_blend_tile (cmd, &y, &a, pos[0][0], pos[0][1], &ry[0], &rx[0]);
  vkc_op_blend_tile (cmd, &y, &b, pos[1][0], pos[1][1], &ry[1], &rx[1]);
  op_run (t, cmd);
  g_autofree float *got = op_download (t, &yfull);
  g_autofree double *ref = g_new (double, B *H *W *CF);
  for (int64_t i = 0; i < B * H * W * CF; i++) ref[i] = yinit[i];
  const float *tiles[2] = { t1, t2 };
  for (int k = 0; k < 2; k++)
    for (int64_t n = 0; n < B; n++)
      for (int64_t i = 0; i < th; i++)
        for (int64_t j = 0; j < tw; j++)
          for (int64_t c = 0; c < C; c++) {
            double w = ramp_ref ((int) i, &ry[k]) * ramp_ref ((int) j, &rx[k]);
            ref[((n * H + pos[k][0] + i) * W + pos[k][1] + j) * CF + 1 + c] +=
                w * tiles[k][((n * th + i) * tw + j) * C + c];
          }
  op_check ("blend_tile", ref, got, (size_t) (B * H * W * CF), 1e-12);
  vkc_latent_set_binding_limit (0);
  op_test_free (t);
}

static void
test_blend_tile (void)
{
  check_blend (0);
  check_blend (1024); /* a few rows per band */
}

/* Complementary ramps of two overlapping tiles sum to 1: blending a constant over a
 * partition gives the constant back. */
static void
test_blend_partition (void)
{
  OpTest *t = op_test_new ();
  const int64_t W = 20, C = 3;
  VkcTensor y = op_tensor (t, VKC_F32, 4, (int64_t[]) { 1, 1, W, C }, NULL);
  g_autofree float *ones = g_new (float, 12 * C);
  for (int i = 0; i < 12 * C; i++) ones[i] = 1.0f;
  VkcTensor a = op_tensor (t, VKC_F32, 4, (int64_t[]) { 1, 1, 12, C }, ones);
  const VkcTileRamp none = { 0, 0, 1, 0 };
  const VkcTileRamp left = { 0, 0, 9, 3 }, right = { 1, 3, 12, 0 }; /* zone = columns 9..11 */
  VkcCmd *cmd = op_cmd (t);
  vkc_cmd_fill (cmd, y.buffer, y.offset, (VkDeviceSize) W * C * 4, 0);
  vkc_op_blend_tile (cmd, &y, &a, 0, 0, &none, &left);
  vkc_op_blend_tile (cmd, &y, &a, 0, 8, &none, &right);
  op_run (t, cmd);
  g_autofree float *got = op_download (t, &y);
  for (int64_t i = 0; i < W * C; i++) g_assert_cmpfloat_with_epsilon (got[i], 1.0f, 1e-6f);
  op_test_free (t);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/latent/gaussian", test_gaussian_latent);
  g_test_add_func ("/latent/blend-tile", test_blend_tile);
  g_test_add_func ("/latent/blend-partition", test_blend_partition);
  return g_test_run ();
}
