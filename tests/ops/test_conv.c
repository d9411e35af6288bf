/* Convolutions and nearest ×2 upsampling (vkc_ops_conv.h) against a plain C reference written
 * in PyTorch's terms: input NCHW, weights [Cout, Cin, kh, kw], F.pad / F.interpolate
 * semantics. The test transposes the input to NHWC and the weights through
 * vkc_conv_weight_from_torch, so a layout mistake on either side cannot cancel out.
 *
 * NMSE limit for every conv: 1e-9. The reference runs in double on exactly the values the GPU
 * reads (weights rounded to their dtype first), so the only error left is the fp32
 * accumulation over K = kh·kw·Cin terms: about √K·2⁻²⁴ relative per output, NMSE ~K·2⁻⁴⁸/3,
 * under 1e-11 even at K = 4608 (512 channels × 9 taps). 1e-9 leaves that a 100× margin and
 * still fails on any wrong tap or channel (one misplaced term of K = 27 gives NMSE ~1/27).
 * Upsampling copies values, so it must match exactly (limit 0). */
#include "op_test.h"
#include "vkc_ops_conv.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#ifndef CONV_COOPMAT
#define CONV_COOPMAT 0
#endif
#ifndef CONV_BLOCKED
#define CONV_BLOCKED 0
#endif
/* Built a second time with CONV_BLOCKED=1 (op_conv_blocked, tests/ops/conv.cmake): every conv case
 * on the register-blocked scalar implicit GEMM (conv2d_blocked.comp) with each of its tiles (the
 * real sizes with the tile AUTO picks; see run_cases), against the same reference and limit (it sums like
 * conv2d.comp, in fp32), and each output also compared bit for bit with conv2d.comp's on the
 * same inputs: the same FMA chain per output gives the same bits wherever the driver keeps fma()
 * fused (lavapipe does; elsewhere a difference is only reported). The plain build runs
 * conv2d.comp itself (path 1), the reference of both fast paths. */
/* Built a second time with CONV_COOPMAT=1 (op_conv_coopmat, tests/ops/coopmat.cmake): every conv
 * case on the cooperative-matrix implicit GEMM (conv2d_coopmat.comp), skipped (77) where the
 * device has none. Its limit is derived as for linear (test_linear_coopmat.c): x and w rounded
 * to fp16 (u = 2⁻¹¹, relative error variance ≤ u²/3 each), exact products, fp32 sums, so
 * NMSE ≈ 2u²/3 = 1.6e-7 for independent zero-mean terms, whatever K; the bias only lowers it.
 * Limit 10× that, 1.6e-6, for the sampling spread over the outputs. */
static double
conv_limit (void)
{
  const double u = 1.0 / 2048;
  return CONV_COOPMAT ? 10.0 * 2.0 * u * u / 3.0 : 1e-9;
}

typedef struct {
  int B, H, W, cin, cout;
  int kh, kw, stride, pt, pl, pb, pr;
  bool up;
  VkcDType wt;
  bool bias;
  bool views;         /* x and y as channel slices of wider tensors (strided rows) */
  bool tokens;        /* patch conv: y as [B, N, Cout] */
  VkDeviceSize limit; /* binding limit override (0 = device's), forces bands */
} Case;

enum { K3, K3UP, K3S2, K1, P2 };

static Case
make (int kind, int B, int H, int W, int cin, int cout, VkcDType wt)
{
  Case c = { .B = B, .H = H, .W = W, .cin = cin, .cout = cout, .wt = wt, .bias = true };
  switch (kind) {
  case K3:
  case K3UP:
    c.kh = c.kw = 3;
    c.stride = 1;
    c.pt = c.pl = c.pb = c.pr = 1;
    c.up = kind == K3UP;
    break;
  case K3S2:
    c.kh = c.kw = 3;
    c.stride = 2;
    c.pb = c.pr = 1;
    break;
  case K1:
    c.kh = c.kw = 1;
    c.stride = 1;
    break;
  default:
    c.kh = c.kw = 2;
    c.stride = 2;
    break;
  }
  return c;
}

/* PyTorch: y = conv2d(F.pad(interpolate(x, 2, "nearest") if up else x, (pl, pr, pt, pb)), w) + b,
 * all NCHW. Returns y as NCHW doubles. */
static double *
reference (const Case *c, const float *x, const float *w, const float *bias, int ho, int wo)
{
  int hl = c->H << c->up, wl = c->W << c->up;
  double *y = g_new (double, (size_t) c->B * c->cout * ho * wo);
  for (int b = 0; b < c->B; b++)
    for (int o = 0; o < c->cout; o++)
      for (int oy = 0; oy < ho; oy++)
        for (int ox = 0; ox < wo; ox++) {
          double s = bias ? bias[o] : 0.0;
          for (int i = 0; i < c->cin; i++)
            for (int ky = 0; ky < c->kh; ky++) {
              int iy = oy * c->stride + ky - c->pt;
              if (iy < 0 || iy >= hl)
                continue;
              for (int kx = 0; kx < c->kw; kx++) {
                int ix = ox * c->stride + kx - c->pl;
                if (ix < 0 || ix >= wl)
                  continue;
                int sy = iy >> c->up, sx = ix >> c->up; /* nearest: floor(dst · in/out) */
                s += (double) x[(((size_t) b * c->cin + i) * c->H + sy) * c->W + sx] *
                     w[(((size_t) o * c->cin + i) * c->kh + ky) * c->kw + kx];
              }
            }
          y[(((size_t) b * c->cout + o) * ho + oy) * wo + ox] = s;
        }
  return y;
}

/* Weights [Cout, Cin, kh, kw] (values already rounded to dtype) → device [Cout, kh, kw, Cin]. */
static VkcTensor
upload_weights (OpTest *t, const Case *c, const float *w_torch)
{
  size_t n = (size_t) c->cout * c->cin * c->kh * c->kw;
  int64_t shape[4] = { c->cout, c->kh, c->kw, c->cin };
  if (c->wt == VKC_F32) {
    g_autofree float *p = g_new (float, n);
    vkc_conv_weight_from_torch (p, w_torch, 4, c->cout, c->cin, c->kh, c->kw);
    return op_tensor (t, VKC_F32, 4, shape, p);
  }
  /* 16-bit: permute the 2-byte encodings themselves, as the model loader will. */
  g_autofree uint16_t *h = g_new (uint16_t, n);
  g_autofree uint16_t *p = g_new (uint16_t, n);
  for (size_t i = 0; i < n; i++) h[i] = c->wt == VKC_BF16 ? vkc_f32_to_bf16 (w_torch[i]) : vkc_f32_to_f16 (w_torch[i]);
  vkc_conv_weight_from_torch (p, h, 2, c->cout, c->cin, c->kh, c->kw);
  VkcTensor wt = op_tensor (t, c->wt, 4, shape, NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (vkc_tensor_upload (t->dev, &wt, p, &error));
  g_assert_no_error (error);
  return wt;
}

/* The conv of case c: y (the whole output tensor) / yv (its view) = conv(xv, w) + b. */
static void
record_conv (VkcCmd *cmd, const Case *c, const VkcTensor *yt, const VkcTensor *yv, const VkcTensor *xv,
             const VkcTensor *wt, const VkcTensor *b, int ho, int wo)
{
  if (c->kh == 2) {
    if (c->tokens) {
      int64_t ts[3] = { c->B, (int64_t) ho * wo, c->cout };
      VkcTensor tok = vkc_tensor_reshape (yt, 3, ts);
      vkc_op_conv2d_patch2 (cmd, &tok, xv, wt, b);
    } else {
      vkc_op_conv2d_patch2 (cmd, yv, xv, wt, b);
    }
  } else if (c->kh == 1) {
    vkc_op_conv2d_1x1 (cmd, yv, xv, wt, b);
  } else if (c->stride == 2) {
    vkc_op_conv2d_3x3_s2 (cmd, yv, xv, wt, b);
  } else if (c->up) {
    vkc_op_conv2d_3x3_up2 (cmd, yv, xv, wt, b);
  } else {
    vkc_op_conv2d_3x3 (cmd, yv, xv, wt, b);
  }
}

/* CONV_BLOCKED: the blocked kernel's output `got_full` against conv2d.comp's on the same inputs,
 * bit for bit (sentinels included). */
static void
compare_bits_with_tiled (OpTest *t, const Case *c, const float *got_full, const float *sentinel, size_t n,
                         const int64_t ys[4], const VkcTensor *xv, const VkcTensor *wt, const VkcTensor *b, int ho,
                         int wo)
{
  VkcTensor yt = op_tensor (t, VKC_F32, 4, ys, sentinel);
  VkcTensor yv = c->views ? vkc_tensor_narrow (&yt, 3, 1, c->cout) : yt;
  vkc_conv_set_path (1);
  vkc_conv_set_binding_limit (c->limit);
  VkcCmd *cmd = op_cmd (t);
  record_conv (cmd, c, &yt, &yv, xv, wt, b, ho, wo);
  op_run (t, cmd);
  vkc_conv_set_binding_limit (0);
  vkc_conv_set_path (3);
  g_autofree float *ref = op_download (t, &yt);
  size_t differ = 0;
  for (size_t i = 0; i < n; i++) differ += memcmp (&ref[i], &got_full[i], 4) != 0;
  if (differ && strstr (vkc_device_info (t->dev)->driver_name, "llvmpipe"))
    g_error ("blocked and tiled convs differ on %zu of %zu outputs: their summation orders parted", differ, n);
  if (differ)
    g_test_message ("blocked vs tiled: %zu of %zu outputs differ in their bits", differ, n);
}

static void
run_case (OpTest *t, const Case *c, guint32 seed)
{
  int hl = c->H << c->up, wl = c->W << c->up;
  int ho = (hl + c->pt + c->pb - c->kh) / c->stride + 1;
  int wo = (wl + c->pl + c->pr - c->kw) / c->stride + 1;
  size_t nx = (size_t) c->B * c->cin * c->H * c->W, ny = (size_t) c->B * c->cout * ho * wo;
  size_t nw = (size_t) c->cout * c->cin * c->kh * c->kw;
  g_autofree float *x = op_randn (nx, seed, 1.0f); /* NCHW */
  g_autofree float *w = op_randn (nw, seed + 1, (float) (1.0 / sqrt ((double) nw / c->cout)));
  g_autofree float *bias = op_randn ((size_t) c->cout, seed + 2, 0.5f);
  op_round_to (w, nw, c->wt);

  /* Device tensors, NHWC; with `views`, slices of channel-padded tensors. */
  int xpad = c->views ? 5 : 0, ypad = c->views ? 3 : 0;
  int xc = c->cin + xpad, yc = c->cout + ypad;
  g_autofree float *xh = g_new0 (float, (size_t) c->B * c->H * c->W * xc);
  for (int b = 0; b < c->B; b++)
    for (int i = 0; i < c->cin; i++)
      for (int r = 0; r < c->H; r++)
        for (int q = 0; q < c->W; q++)
          xh[(((size_t) b * c->H + r) * c->W + q) * xc + i + 2 * (xpad > 0)] =
              x[(((size_t) b * c->cin + i) * c->H + r) * c->W + q];
  size_t nyfull = (size_t) c->B * ho * wo * yc;
  g_autofree float *sentinel = g_new (float, nyfull);
  for (size_t i = 0; i < nyfull; i++) sentinel[i] = 1234.5f;
  int64_t xs[4] = { c->B, c->H, c->W, xc }, ys[4] = { c->B, ho, wo, yc }, bs = c->cout;
  VkcTensor xt = op_tensor (t, VKC_F32, 4, xs, xh);
  VkcTensor yt = op_tensor (t, VKC_F32, 4, ys, sentinel);
  VkcTensor bt = op_tensor (t, VKC_F32, 1, &bs, bias);
  VkcTensor wt = upload_weights (t, c, w);
  VkcTensor xv = c->views ? vkc_tensor_narrow (&xt, 3, 2, c->cin) : xt;
  VkcTensor yv = c->views ? vkc_tensor_narrow (&yt, 3, 1, c->cout) : yt;

  vkc_conv_set_binding_limit (c->limit);
  VkcCmd *cmd = op_cmd (t);
  const VkcTensor *b = c->bias ? &bt : NULL;
  record_conv (cmd, c, &yt, &yv, &xv, &wt, b, ho, wo);
  guint dispatches = vkc_cmd_n_dispatches (cmd);
  {
    g_autoptr (GError) error = NULL;
    g_assert_true (vkc_cmd_submit_wait (cmd, &error));
    g_assert_no_error (error);
    if (g_test_verbose ())
      g_test_message ("  GPU %.2f ms, %.3f GFLOP", vkc_cmd_gpu_ms (cmd),
                      2e-9 * ho * wo * c->B * c->cout * c->cin * c->kh * c->kw);
    vkc_cmd_free (cmd);
  }
  vkc_conv_set_binding_limit (0);
  if (c->limit)
    g_assert_cmpuint (dispatches, >, 1); /* the band path really ran */

  g_autofree double *ref_nchw = reference (c, x, w, c->bias ? bias : NULL, ho, wo);
  g_autofree float *got_full = op_download (t, &yt);
  g_autofree double *ref = g_new (double, ny);
  g_autofree float *got = g_new (float, ny);
  size_t k = 0;
  for (int bb = 0; bb < c->B; bb++)
    for (int r = 0; r < ho; r++)
      for (int q = 0; q < wo; q++)
        for (int ch = 0; ch < yc; ch++) {
          float v = got_full[(((size_t) bb * ho + r) * wo + q) * yc + ch];
          int o = ch - (ypad > 0);
          if (o < 0 || o >= c->cout) {
            if (v != 1234.5f)
              g_error ("conv wrote outside its output view (channel %d)", ch);
            continue;
          }
          ref[k] = ref_nchw[(((size_t) bb * c->cout + o) * ho + r) * wo + q];
          got[k++] = v;
        }
  g_assert_cmpuint (k, ==, ny);
  char what[160];
  g_snprintf (what, sizeof what, "conv %dx%d s%d%s B%d %dx%d %d->%d %s%s%s%s", c->kh, c->kw, c->stride,
              c->up ? " up2" : "", c->B, c->H, c->W, c->cin, c->cout, vkc_dtype_name (c->wt), c->bias ? "" : " nobias",
              c->views ? " views" : "", c->limit ? " bands" : "");
  op_check (what, ref, got, ny, conv_limit ());
  if (CONV_BLOCKED)
    compare_bits_with_tiled (t, c, got_full, sentinel, nyfull, ys, &xv, &wt, b, ho, wo);
  vkc_pool_arena_reset (t->pool);
}

/* CONV_BLOCKED: each tile in turn (0 = AUTO's choice, then large / medium / small, then 64×64
 * with 8×8 per invocation: lavapipe's 32 KiB of shared memory takes no large tile, which falls
 * back to medium there, so this one runs the large tile's 8×8 micro-tile code). */
static int n_blocked_tiles = 5;

static void
run_cases (const Case *cases, guint n)
{
  OpTest *t = op_test_new ();
  for (int tile = 0; tile < (CONV_BLOCKED ? n_blocked_tiles : 1); tile++) {
    vkc_conv_set_blocked_tile (tile);
    for (guint i = 0; i < n; i++) run_case (t, &cases[i], 100 + 7 * i);
  }
  vkc_conv_set_blocked_tile (0);
  op_test_free (t);
}

static void
test_3x3 (void)
{
  Case c[] = {
    make (K3, 1, 13, 17, 3, 16, VKC_F32),  make (K3, 2, 13, 17, 37, 37, VKC_F16),
    make (K3, 1, 9, 11, 16, 70, VKC_BF16), make (K3, 1, 5, 3, 37, 5, VKC_BF16), /* thin tile */
    make (K3, 1, 1, 1, 3, 3, VKC_F32), /* every tap but the centre is padding */
  };
  c[2].bias = false;
  run_cases (c, G_N_ELEMENTS (c));
}

static void
test_3x3_s2 (void)
{
  Case c[] = {
    make (K3S2, 1, 13, 17, 37, 70, VKC_F32), /* odd: the last row/column reads the pad */
    make (K3S2, 2, 16, 12, 16, 5, VKC_BF16),
    make (K3S2, 1, 2, 3, 3, 16, VKC_F16),
  };
  run_cases (c, G_N_ELEMENTS (c));
}

static void
test_1x1 (void)
{
  Case c[] = {
    make (K1, 1, 13, 17, 37, 70, VKC_F16),
    make (K1, 2, 7, 5, 128, 3, VKC_F32),
    make (K1, 1, 3, 3, 1, 1, VKC_BF16),
  };
  run_cases (c, G_N_ELEMENTS (c));
}

static void
test_patch2 (void)
{
  Case c[] = {
    make (P2, 1, 14, 18, 16, 37, VKC_F32),
    make (P2, 2, 6, 4, 16, 70, VKC_BF16),
    make (P2, 2, 2, 2, 3, 9, VKC_F16),
  };
  c[0].tokens = true;
  c[1].tokens = true;
  run_cases (c, G_N_ELEMENTS (c));
}

static void
test_3x3_up2 (void)
{
  Case c[] = {
    make (K3UP, 1, 7, 9, 37, 16, VKC_F32),
    make (K3UP, 2, 5, 3, 16, 70, VKC_F16),
    make (K3UP, 1, 1, 1, 3, 65, VKC_BF16),
  };
  run_cases (c, G_N_ELEMENTS (c));
}

/* Channel slices of wider tensors: strided rows, offset element 0, and nothing written
 * outside the output view. */
static void
test_views (void)
{
  Case c[] = {
    make (K3, 2, 7, 9, 37, 70, VKC_F32), make (K3S2, 1, 9, 7, 16, 5, VKC_F16), make (K3UP, 1, 4, 5, 3, 37, VKC_BF16),
    make (K1, 1, 5, 5, 37, 16, VKC_F32), make (P2, 2, 4, 6, 16, 37, VKC_BF16),
  };
  for (guint i = 0; i < G_N_ELEMENTS (c); i++) c[i].views = true;
  run_cases (c, G_N_ELEMENTS (c));
}

/* A lowered binding limit forces the row-band path of tensors too large for one binding
 * (512 MiB VAE activations on a 128 MiB maxStorageBufferRange). */
static void
test_bands (void)
{
  Case c[] = {
    make (K3, 2, 13, 17, 37, 37, VKC_F32), /* x 32 KiB per image */
    make (K3S2, 2, 13, 17, 37, 16, VKC_BF16), make (K3UP, 2, 7, 9, 37, 40, VKC_F16),
    make (K1, 2, 13, 17, 37, 3, VKC_F32),     make (P2, 2, 14, 18, 16, 37, VKC_F32),
    make (K3, 1, 13, 17, 16, 70, VKC_F32), /* output larger than input: bands by y */
  };
  const VkDeviceSize limits[] = { 9000, 12000, 8000, 9000, 6000, 16000 };
  for (guint i = 0; i < G_N_ELEMENTS (c); i++) c[i].limit = limits[i];
  c[4].views = true;
  c[0].views = true;
  run_cases (c, G_N_ELEMENTS (c));
}

/* DeepGen's real layer shapes at small spatial sizes (MODEL.md §5.2, §6). */
static void
test_real_sizes (void)
{
  n_blocked_tiles = 1;
  Case c[] = {
    make (K3, 1, 8, 8, 512, 512, VKC_BF16),     /* VAE mid / up_blocks 0–1 resnets */
    make (K3, 1, 64, 64, 128, 128, VKC_BF16),   /* VAE 128-channel resnets */
    make (K3, 1, 64, 64, 3, 128, VKC_BF16),     /* encoder conv_in */
    make (K3, 1, 64, 64, 128, 3, VKC_BF16),     /* decoder conv_out */
    make (K3, 1, 8, 8, 16, 512, VKC_BF16),      /* decoder conv_in */
    make (K3S2, 1, 32, 32, 128, 128, VKC_BF16), /* encoder downsampler 0 */
    make (K3UP, 1, 8, 8, 256, 256, VKC_BF16),   /* decoder upsampler 2 (256 ch at 512²) */
    make (K1, 1, 16, 16, 256, 128, VKC_BF16),   /* decoder conv_shortcut 256→128 */
    make (P2, 1, 64, 64, 16, 1536, VKC_BF16),   /* DiT pos_embed.proj at 512×512 */
  };
  c[8].tokens = true;
  run_cases (c, G_N_ELEMENTS (c));
}

/* y = nearest ×2 upsample of x: exact. */
static void
check_upsample (OpTest *t, int B, int H, int W, int C, bool views, VkDeviceSize limit)
{
  int cc = C + (views ? 4 : 0);
  size_t nx = (size_t) B * H * W * cc, ny = (size_t) B * 4 * H * W * cc;
  g_autofree float *x = op_randn (nx, 7 + H, 1.0f);
  g_autofree float *sentinel = g_new (float, ny);
  for (size_t i = 0; i < ny; i++) sentinel[i] = -99.0f;
  int64_t xs[4] = { B, H, W, cc }, ys[4] = { B, 2 * H, 2 * W, cc };
  VkcTensor xt = op_tensor (t, VKC_F32, 4, xs, x);
  VkcTensor yt = op_tensor (t, VKC_F32, 4, ys, sentinel);
  VkcTensor xv = views ? vkc_tensor_narrow (&xt, 3, 1, C) : xt;
  VkcTensor yv = views ? vkc_tensor_narrow (&yt, 3, 3, C) : yt;
  vkc_conv_set_binding_limit (limit);
  VkcCmd *cmd = op_cmd (t);
  vkc_op_upsample_nearest2 (cmd, &yv, &xv);
  guint dispatches = vkc_cmd_n_dispatches (cmd);
  op_run (t, cmd);
  vkc_conv_set_binding_limit (0);
  if (limit)
    g_assert_cmpuint (dispatches, >, 1);
  g_autofree float *got = op_download (t, &yt);
  for (int b = 0; b < B; b++)
    for (int r = 0; r < 2 * H; r++)
      for (int q = 0; q < 2 * W; q++)
        for (int ch = 0; ch < cc; ch++) {
          int c = views ? ch - 3 : ch;
          float want = c < 0 || c >= C ? -99.0f : x[(((size_t) b * H + r / 2) * W + q / 2) * cc + c + (views ? 1 : 0)];
          float v = got[(((size_t) b * 2 * H + r) * 2 * W + q) * cc + ch];
          if (v != want)
            g_error ("upsample B%d %dx%dx%d: [%d,%d,%d,%d] = %g, want %g", B, H, W, C, b, r, q, ch, v, want);
        }
  vkc_pool_arena_reset (t->pool);
}

static void
test_upsample (void)
{
  OpTest *t = op_test_new ();
  check_upsample (t, 1, 13, 17, 37, false, 0);
  check_upsample (t, 2, 5, 3, 16, true, 0);
  check_upsample (t, 1, 1, 1, 3, false, 0);
  check_upsample (t, 2, 13, 17, 37, false, 20000); /* bands */
  check_upsample (t, 2, 7, 9, 37, true, 9000);
  op_test_free (t);
}

/* The host permutation itself, both element sizes, against the index formula. */
static void
test_weight_permute (void)
{
  const int co = 3, ci = 5, kh = 2, kw = 3, n = co * ci * kh * kw;
  uint32_t s4[90], d4[90];
  uint16_t s2[90], d2[90];
  for (int i = 0; i < n; i++) {
    s4[i] = 0xabcd0000u + (uint32_t) i;
    s2[i] = (uint16_t) (0x7000 + i);
  }
  vkc_conv_weight_from_torch (d4, s4, 4, co, ci, kh, kw);
  vkc_conv_weight_from_torch (d2, s2, 2, co, ci, kh, kw);
  for (int o = 0; o < co; o++)
    for (int c = 0; c < ci; c++)
      for (int y = 0; y < kh; y++)
        for (int x = 0; x < kw; x++) {
          int from = ((o * ci + c) * kh + y) * kw + x, to = ((o * kh + y) * kw + x) * ci + c;
          g_assert_cmpuint (d4[to], ==, s4[from]);
          g_assert_cmpuint (d2[to], ==, s2[from]);
        }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  vkc_conv_set_path (1);
  if (CONV_BLOCKED) {
    vkc_conv_set_path (3);
    OpTest *t = op_test_new ();
    g_autofree char *d = vkc_conv_describe (t->dev, VKC_BF16);
    op_test_free (t);
    printf ("conv: %s\n", d);
    g_assert_true (g_str_has_prefix (d, "scalar blocked"));
  }
  if (CONV_COOPMAT) {
    vkc_conv_set_path (2);
    OpTest *t = op_test_new ();
    g_autofree char *d = vkc_conv_describe (t->dev, VKC_BF16);
    op_test_free (t);
    if (!g_str_has_prefix (d, "coopmat")) {
      printf ("SKIP: %s\n", d);
      return 77;
    }
    printf ("conv: %s\n", d);
  }
  g_test_add_func ("/conv/weight-permute", test_weight_permute);
  g_test_add_func ("/conv/3x3", test_3x3);
  g_test_add_func ("/conv/3x3-s2", test_3x3_s2);
  g_test_add_func ("/conv/1x1", test_1x1);
  g_test_add_func ("/conv/patch2", test_patch2);
  g_test_add_func ("/conv/3x3-up2", test_3x3_up2);
  g_test_add_func ("/conv/views", test_views);
  g_test_add_func ("/conv/bands", test_bands);
  g_test_add_func ("/conv/upsample", test_upsample);
  /* Real channel counts (up to 512×9 taps): too slow for lavapipe's emulated coopmat in CI. */
  if (!CONV_COOPMAT)
    g_test_add_func ("/conv/real-sizes", test_real_sizes);
  return g_test_run ();
}
