/* Sinusoidal timestep embedding (vkc_ops_timestep.h) against two double-precision references:
 *
 *  - "exact": sin/cos(t·ω_k) with ω_k = exp(−ln(P)·k/(half − shift)) all in double — the
 *    mathematical function. The GPU (like diffusers) forms the argument a = t·f_k in fp32, and
 *    a reaches ~1000 rad at t = 1000, where one fp32 ulp is 2⁻¹⁴ ≈ 6.1e-5: rounding a alone moves
 *    sin/cos by up to 3.1e-5, and the fp32 exponent (|−ln(P)·k/half| up to 9.2, ulp 9.5e-7,
 *    relative error of f_k) adds up to ~4e-5 more at mid k. If every element were off by
 *    1e-4 the NMSE (outputs have mean square 1/2) would be 2e-8; the limit is 2e-8.
 *  - "fp32 order": the same fp32 steps as diffusers (fp32 exponent, fp32 product t·f_k; exp,
 *    sin and cos evaluated in double on those fp32 values, i.e. correctly rounded). The GPU's
 *    exp is within one ulp (correctly rounded in most cases), so a few arguments differ by one
 *    ulp; even every argument one ulp of 1000 off (6.1e-5) would give NMSE (6.1e-5)² ≈ 3.7e-9:
 *    limit 4e-9. Measured: ~1e-11 (and ~1e-10 against "exact") on lavapipe. */
#include "op_test.h"
#include "vkc_ops_timestep.h"
#include <math.h>

static void
references (const float *t, int B, int dim, bool flip, double shift, double period, double *exact, double *fp32)
{
  int half = dim / 2;
  float nlp = (float) -log (period), den = (float) (half - shift);
  for (int b = 0; b < B; b++)
    for (int col = 0; col < dim; col++) {
      size_t i = (size_t) b * dim + col;
      if (col >= 2 * half) {
        exact[i] = fp32[i] = 0.0;
        continue;
      }
      bool second = col >= half;
      int k = second ? col - half : col;
      bool use_cos = second != flip;
      double ae = (double) t[b] * exp (-log (period) * k / (half - shift));
      volatile float e = nlp * (float) k;
      e = e / den;
      volatile float f = (float) exp ((double) e);
      volatile float a = t[b] * f;
      exact[i] = use_cos ? cos (ae) : sin (ae);
      fp32[i] = use_cos ? cos ((double) a) : sin ((double) a);
    }
}

static void
check (OpTest *ot, const float *t, int B, int dim, bool flip, double shift, double period, int row_pad)
{
  int64_t bs = B, ys[2] = { B, dim + row_pad };
  VkcTensor tt = op_tensor (ot, VKC_F32, 1, &bs, t);
  g_autofree float *fill = g_new (float, (size_t) B *(dim + row_pad));
  for (int i = 0; i < B * (dim + row_pad); i++) fill[i] = 77.0f;
  VkcTensor yfull = op_tensor (ot, VKC_F32, 2, ys, fill);
  VkcTensor y = vkc_tensor_narrow (&yfull, 1, 0, dim);
  VkcCmd *cmd = op_cmd (ot);
  vkc_op_timestep_embedding (cmd, &y, &tt, dim, flip, shift, period);
  op_run (ot, cmd);
  g_autofree float *full = op_download (ot, &yfull);
  g_autofree float *got = g_new (float, (size_t) B *dim);
  for (int b = 0; b < B; b++)
    for (int c = 0; c < dim + row_pad; c++) {
      float v = full[(size_t) b * (dim + row_pad) + c];
      if (c < dim)
        got[(size_t) b * dim + c] = v;
      else if (v != 77.0f)
        g_error ("timestep embedding wrote outside its row");
    }
  if (dim % 2)
    for (int b = 0; b < B; b++) g_assert_cmpfloat (got[(size_t) b * dim + dim - 1], ==, 0.0f);
  g_autofree double *exact = g_new (double, (size_t) B *dim);
  g_autofree double *fp32 = g_new (double, (size_t) B *dim);
  references (t, B, dim, flip, shift, period, exact, fp32);
  char what[128];
  g_snprintf (what, sizeof what, "timestep B%d dim%d flip%d shift%g vs exact", B, dim, flip, shift);
  op_check (what, exact, got, (size_t) B * dim, 2e-8);
  g_snprintf (what, sizeof what, "timestep B%d dim%d flip%d shift%g vs fp32 order", B, dim, flip, shift);
  op_check (what, fp32, got, (size_t) B * dim, 4e-9);
  vkc_pool_arena_reset (ot->pool);
}

/* The DiT's configuration (MODEL.md §5.2): dim 256, cos first, shift 0, period 10000, at the
 * timesteps of a real schedule (1000·σ, not integers). */
static void
test_dit (void)
{
  OpTest *ot = op_test_new ();
  const float ts[] = { 1000.0f, 993.1244f, 8.9286f, 0.0f };
  check (ot, ts, 4, 256, true, 0.0, 10000.0, 0);
  for (int i = 0; i < 4; i++) check (ot, &ts[i], 1, 256, true, 0.0, 10000.0, 0);
  op_test_free (ot);
}

/* Other settings: sin first with shift 1 (SD1.x/UNet style), an odd dim (zero last column), a
 * strided output, a larger batch of random timesteps. */
static void
test_variants (void)
{
  OpTest *ot = op_test_new ();
  g_autofree float *ts = op_randu (37, 3, 0.0f, 1000.0f);
  check (ot, ts, 37, 320, false, 1.0, 10000.0, 0);
  check (ot, ts, 5, 255, true, 0.0, 10000.0, 0);
  check (ot, ts, 3, 17, false, 0.5, 1000.0, 0);
  check (ot, ts, 37, 256, true, 0.0, 10000.0, 13);
  check (ot, ts, 2, 1, true, 0.0, 10000.0, 0); /* dim 1: a single zero column */
  op_test_free (ot);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/timestep/dit", test_dit);
  g_test_add_func ("/timestep/variants", test_variants);
  return g_test_run ();
}
