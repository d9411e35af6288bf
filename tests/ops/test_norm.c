/* Normalisations vs double-precision C references (statistics in double from the same fp32
 * inputs), on strided views of random buffers; elements of the output buffer outside the
 * output view must stay untouched.
 *
 * Every row-norm case (LayerNorm, RMSNorm, per-head RMSNorm) runs twice, as /norm/.../subgroup
 * with the default reduction (subgroup arithmetic where the device has it) and as
 * /norm/.../shared with the shared-memory reduction forced (VkcNormOptions.no_subgroup). Which
 * one ran is checked twice: the launcher's report, and, where the device has timestamps, the
 * names of the pipelines that the command buffer timed.
 *
 * NMSE limits:
 *  - LIMIT_NORM 1e-10: fp32 statistics (per-thread sums then a tree; Welford/Chan for
 *    GroupNorm) carry ~√n·ulp relative error, rsqrt 2 ulp, then 1–3 roundings per output:
 *    measured NMSE ~1e-14; the limit leaves room for inputs with a mean offset of 10σ, where
 *    the fp32 mean's own rounding (~1e-6 of σ) shows up.
 *  - LIMIT_BF16 1e-7 for outputs rounded to bf16 (both sides): an fp32 result within a few
 *    ulp of a bf16 rounding boundary may round the other way (error 2^-8 relative on ~1e-4 of
 *    the elements → NMSE ~1e-9). Those outputs must also be exactly bf16-representable, which
 *    catches a missing rounding that the NMSE (~1e-6) would not.
 */
#include "op_test.h"
#include "vkc_ops_eltwise.h"
#include "vkc_ops_norm.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#define LIMIT_NORM 1e-10
#define LIMIT_BF16 1e-7
#define EPS 1e-6f /* every DeepGen norm (MODEL.md §2.1, §4, §5.4, §6) */

static OpTest *T;
static bool splitting;   /* every op must be cut into several dispatches */
static bool shared_pass; /* row norms: force the shared-memory reduction */
static double worst[2];  /* largest NMSE of the current test, f32 / bf16 outputs (summary) */
static guint named;      /* commands whose pipeline names were checked (summary) */

/* The reduction the row norms must report in this pass: the default one is the subgroup
 * reduction unless the device cannot (or the environment's kill switch says not to). */
static VkcNormReduction
expected_reduction (void)
{
  const VkcDeviceInfo *i = vkc_device_info (T->dev);
  const char *e = g_getenv ("DEEPGEN_VK_DISABLE_SUBGROUP");
  bool sg = i->subgroup_arith && i->min_subgroup_size >= 4 && !(e && *e && strcmp (e, "0") != 0);
  return shared_pass || !sg ? VKC_NORM_REDUCE_SHARED : VKC_NORM_REDUCE_SUBGROUP;
}

static const VkcNormOptions *
row_options (void)
{
  static VkcNormOptions o = VKC_NORM_OPTIONS_DEFAULT;
  o.no_subgroup = shared_pass;
  return &o;
}

static void
check_reduction (const char *what, VkcNormReduction got)
{
  if (got != expected_reduction ())
    g_error ("%s: the launcher used the %s reduction in the %s pass", what,
             got == VKC_NORM_REDUCE_SHARED ? "shared-memory" : "subgroup", shared_pass ? "shared" : "subgroup");
}

typedef struct {
  VkcTensor dev;
  float *host;
  int64_t n;
} Buf;

static Buf
buf_new (int64_t n, guint32 seed, float scale, float offset, VkcDType dtype)
{
  Buf b;
  b.n = n;
  b.host = op_randn ((size_t) n, seed, scale);
  for (int64_t i = 0; i < n; i++) b.host[i] += offset;
  op_round_to (b.host, (size_t) n, dtype);
  b.dev = op_tensor (T, dtype, 1, &n, b.host);
  return b;
}

static VkcTensor
view (const Buf *b, int nd, const int64_t *shape, const int64_t *stride, int64_t off)
{
  return vkc_tensor_view (&b->dev, nd, shape, stride, off);
}

static VkcTensor
cview (const Buf *b, int nd, const int64_t *shape, int64_t off)
{
  int64_t st[4], s = 1;
  for (int d = nd - 1; d >= 0; d--) {
    st[d] = s;
    s *= shape[d];
  }
  return view (b, nd, shape, st, off);
}

/* Buffer index of element idx of view v. */
static int64_t
elem (const Buf *b, const VkcTensor *v, const int64_t *idx)
{
  int64_t e = (int64_t) (v->offset - b->dev.offset) / (int64_t) vkc_dtype_size (b->dev.dtype);
  for (int d = 0; d < v->ndim; d++) e += idx[d] * v->stride[d];
  return e;
}

static void
unravel (const VkcTensor *v, int64_t i, int64_t *idx)
{
  for (int d = v->ndim - 1; d >= 0; d--) {
    idx[d] = i % v->shape[d];
    i /= v->shape[d];
  }
}

/* Submit; for row norms (rows = true) also check the names of the timed pipelines, which
 * carry "_sg_" for the subgroup variants (no timestamps on the device: nothing to check). */
static void
run_cmd (VkcCmd *cmd, bool rows)
{
  if (splitting)
    g_assert_cmpuint (vkc_cmd_n_dispatches (cmd), >, 1);
  g_autoptr (GError) error = NULL;
  g_assert_true (vkc_cmd_submit_wait (cmd, &error));
  g_assert_no_error (error);
  GHashTable *prof = rows ? vkc_cmd_profile (cmd) : NULL;
  if (prof) {
    bool want_sg = expected_reduction () == VKC_NORM_REDUCE_SUBGROUP;
    guint n = 0;
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init (&it, prof);
    while (g_hash_table_iter_next (&it, &key, NULL)) {
      const char *name = key;
      g_assert_true (g_str_has_prefix (name, "norm_layer_") || g_str_has_prefix (name, "norm_rms_"));
      if ((strstr (name, "_sg_") != NULL) != want_sg)
        g_error ("pipeline %s ran in the %s pass", name, shared_pass ? "shared" : "subgroup");
      n++;
    }
    g_assert_cmpuint (n, >, 0);
    g_hash_table_unref (prof);
    named++;
  }
  vkc_cmd_free (cmd);
}

/* Compare ref (in y-view element order) with the GPU output; check the rest of the buffer. */
static void
check (const char *what, const Buf *yb, const VkcTensor *y, const double *ref, bool bf16)
{
  g_autofree float *got = op_download (T, &yb->dev);
  int64_t n = vkc_tensor_numel (y);
  g_autofree float *g = g_new (float, n ? n : 1);
  g_autofree guint8 *touched = g_new0 (guint8, yb->n);
  for (int64_t i = 0; i < n; i++) {
    int64_t idx[4];
    unravel (y, i, idx);
    int64_t e = elem (yb, y, idx);
    g[i] = got[e];
    touched[e] = 1;
    if (bf16 && vkc_round_bf16 (g[i]) != g[i])
      g_error ("%s: element %" G_GINT64_FORMAT " = %.9g is not a bf16 value", what, i, g[i]);
  }
  op_check (what, ref, g, (size_t) n, bf16 ? LIMIT_BF16 : LIMIT_NORM);
  worst[bf16] = MAX (worst[bf16], op_nmse (ref, g, (size_t) n));
  for (int64_t e = 0; e < yb->n; e++)
    if (!touched[e] && memcmp (&got[e], &yb->host[e], 4) != 0)
      g_error ("%s: element %" G_GINT64_FORMAT " outside the output view changed", what, e);
}

static double
rb (double v)
{
  return vkc_round_bf16 ((float) v);
}
static double
silu (double v)
{
  return v / (1.0 + exp (-v));
}

/* ---------------------------------------------------------------------------------------
 * LayerNorm / RMSNorm over rows of [B, N, C] views with row stride ld.
 * ------------------------------------------------------------------------------------- */

typedef struct {
  const char *name;
  bool rms;
  int64_t B, N, C, xld, xoff; /* x view; y is contiguous unless in place */
  bool in_place;
  VkcDType wdt; /* weight dtype; VKC_U32 = no weight */
  bool bias;
  bool round;
  float offset; /* mean offset of x, in units of its σ = 1 */
} RowCase;

static void
row_case (const RowCase *c)
{
  int64_t B = c->B, N = c->N, C = c->C;
  Buf xb = buf_new (B * N * c->xld + c->xoff, 7, 1.0f, c->offset, VKC_F32);
  Buf yb = c->in_place ? xb : buf_new (B * N * C, 8, 1.0f, 0.0f, VKC_F32);
  bool has_w = c->wdt != VKC_U32;
  Buf wb = buf_new (C, 9, 0.5f, 1.0f, has_w ? c->wdt : VKC_F32);
  Buf bb = buf_new (C, 10, 0.5f, 0.0f, has_w ? c->wdt : VKC_F32);
  int64_t sh[3] = { B, N, C }, xs[3] = { N * c->xld, c->xld, 1 };
  VkcTensor x = view (&xb, 3, sh, xs, c->xoff);
  VkcTensor y = c->in_place ? x : cview (&yb, 3, sh, 0);
  VkcNormFlags fl = c->round ? VKC_NORM_ROUND_BF16 : VKC_NORM_DEFAULT;
  VkcCmd *cmd = op_cmd (T);
  VkcNormReduction red;
  if (c->rms)
    red = vkc_op_rms_norm_ex (cmd, &y, &x, has_w ? &wb.dev : NULL, EPS, fl, row_options ());
  else
    red = vkc_op_layer_norm_ex (cmd, &y, &x, has_w ? &wb.dev : NULL, c->bias ? &bb.dev : NULL, EPS, fl, row_options ());
  check_reduction (c->name, red);
  run_cmd (cmd, true);

  g_autofree double *ref = g_new (double, B *N *C);
  for (int64_t r = 0; r < B * N; r++) {
    const float *xr = xb.host + c->xoff + (r / N) * N * c->xld + (r % N) * c->xld;
    double mean = 0, var = 0;
    if (!c->rms) {
      for (int64_t k = 0; k < C; k++) mean += xr[k];
      mean /= (double) C;
    }
    for (int64_t k = 0; k < C; k++) var += (xr[k] - mean) * (xr[k] - mean);
    double rstd = 1.0 / sqrt (var / (double) C + EPS);
    for (int64_t k = 0; k < C; k++) {
      double v = (xr[k] - mean) * rstd;
      if (c->rms && c->round)
        v = rb (v);
      if (has_w)
        v *= wb.host[k];
      if (c->bias)
        v += bb.host[k];
      if (c->round)
        v = rb (v);
      ref[r * C + k] = v;
    }
  }
  check (c->name, &yb, &y, ref, c->round);
  if (!c->in_place)
    g_free (yb.host);
  g_free (xb.host);
  g_free (wb.host);
  g_free (bb.host);
}

static const RowCase layer_cases[] = {
  { "LN DiT [2,333,1536] no affine", false, 2, 333, 1536, 1536, 0, false, VKC_U32, false, false, 0 },
  { "LN connector [1,129,2048] bf16 affine", false, 1, 129, 2048, 2048, 0, false, VKC_BF16, true, false, 0 },
  { "LN [3,7,37] strided f16 affine", false, 3, 7, 37, 101, 5, false, VKC_F16, true, false, 0 },
  { "LN [1,5,11946] f32 weight only, in place", false, 1, 5, 11946, 11946, 0, true, VKC_F32, false, false, 0 },
  { "LN [1,4,1] C=1", false, 1, 4, 1, 1, 0, false, VKC_F32, true, false, 0 },
  { "LN [1,7,2048] mean offset 10", false, 1, 7, 2048, 2048, 0, false, VKC_U32, false, false, 10.0f },
  { "LN [2,9,1536] bf16 output", false, 2, 9, 1536, 1536, 0, false, VKC_BF16, true, true, 0 },
};

static const RowCase rms_cases[] = {
  { "RMS Qwen [2,37,2048] bf16 rule", true, 2, 37, 2048, 2048, 0, false, VKC_BF16, false, true, 0 },
  { "RMS [1,3,11946] f32", true, 1, 3, 11946, 11946, 0, false, VKC_F32, false, false, 0 },
  { "RMS [1,77,1536] f16 in place", true, 1, 77, 1536, 1536, 0, true, VKC_F16, false, false, 0 },
  { "RMS [5,3,37] strided no weight", true, 5, 3, 37, 41, 3, false, VKC_U32, false, false, 0 },
};

static void
test_layer_norm (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (layer_cases); i++) row_case (&layer_cases[i]);
}

static void
test_rms_norm (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (rms_cases); i++) row_case (&rms_cases[i]);
}

/* Awkward widths and row counts, LayerNorm and RMSNorm, cycling through the parameter dtypes,
 * bias, bf16 rounding and a row stride that forces the scalar path. The launcher picks 64,
 * 128 or 256 threads from the row width in vec units: 1 and 7 leave most of a 64-thread
 * workgroup idle, 33 is a scalar row, 100 (scalar) and 500 (125 vec4) take 128 threads,
 * 1000, 1280, 2048, 3072 take 256 threads (1000: 250 vec4, not a multiple of them). */
static void
test_widths (void)
{
  static const int64_t widths[] = { 1, 7, 33, 100, 500, 1000, 1280, 2048, 3072 };
  static const int64_t rows[] = { 1, 5, 257 };
  static const VkcDType wdts[] = { VKC_BF16, VKC_F16, VKC_F32, VKC_U32 };
  guint k = 0;
  for (guint wi = 0; wi < G_N_ELEMENTS (widths); wi++)
    for (guint ri = 0; ri < G_N_ELEMENTS (rows); ri++)
      for (int rms = 0; rms < 2; rms++, k++) {
        int64_t C = widths[wi], N = rows[ri];
        RowCase c = {
          .rms = rms,
          .B = 1,
          .N = N,
          .C = C,
          .xld = k % 5 == 4 ? C + 3 : C,
          .xoff = k % 5 == 4 ? 1 : 0,
          .in_place = k % 7 == 3,
          .wdt = wdts[k % 4],
          .bias = !rms && k % 4 != 3 && k % 3 != 0,
          .round = k % 3 == 1,
          .offset = k % 11 == 5 ? 10.0f : 0.0f,
        };
        char name[96];
        snprintf (name, sizeof name, "%s [1,%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT "] case %u", rms ? "RMS" : "LN", N,
                  C, k);
        c.name = name;
        row_case (&c);
      }
}

/* ---------------------------------------------------------------------------------------
 * Per-head RMSNorm on column slices of a fused QKV tensor [B, N, 3·H·D].
 * ------------------------------------------------------------------------------------- */

static void
head_case (const char *name, int64_t B, int64_t N, int64_t H, int64_t D, int64_t slice, bool in_place, VkcDType wdt,
           bool round)
{
  int64_t W = 3 * H * D;
  Buf qkv = buf_new (B * N * W, 20, 2.0f, 0.0f, VKC_F32);
  Buf yb = in_place ? qkv : buf_new (B * N * H * D, 21, 1.0f, 0.0f, VKC_F32);
  Buf wb = buf_new (D, 22, 0.3f, 1.0f, wdt);
  int64_t sh[3] = { B, N, H * D }, st[3] = { N * W, W, 1 };
  VkcTensor x = view (&qkv, 3, sh, st, slice * H * D);
  VkcTensor y = in_place ? x : cview (&yb, 3, sh, 0);
  VkcCmd *cmd = op_cmd (T);
  check_reduction (name, vkc_op_head_rms_norm_ex (cmd, &y, &x, &wb.dev, D, EPS,
                                                  round ? VKC_NORM_ROUND_BF16 : VKC_NORM_DEFAULT, row_options ()));
  run_cmd (cmd, true);
  g_autofree double *ref = g_new (double, B *N *H *D);
  for (int64_t t = 0; t < B * N; t++)
    for (int64_t h = 0; h < H; h++) {
      const float *xr = qkv.host + t * W + slice * H * D + h * D;
      double ss = 0;
      for (int64_t k = 0; k < D; k++) ss += (double) xr[k] * xr[k];
      double rstd = 1.0 / sqrt (ss / (double) D + EPS);
      for (int64_t k = 0; k < D; k++) {
        double v = xr[k] * rstd;
        ref[(t * H + h) * D + k] = round ? rb (rb (v) * wb.host[k]) : v * wb.host[k];
      }
    }
  check (name, &yb, &y, ref, round);
  if (!in_place)
    g_free (yb.host);
  g_free (qkv.host);
  g_free (wb.host);
}

static void
test_head_rms_norm (void)
{
  /* DiT q and k norms in place on slices of [B, N, 3·1536], bf16 weight [64] (§5.4). */
  head_case ("head RMS DiT q", 2, 77, 24, 64, 0, true, VKC_BF16, false);
  head_case ("head RMS DiT k", 2, 77, 24, 64, 1, true, VKC_BF16, false);
  /* Qwen-sized heads of 128, bf16 rounding rule, out of place. */
  head_case ("head RMS D=128 bf16 rule", 1, 33, 16, 128, 1, false, VKC_BF16, true);
  /* Odd head size: scalar path. */
  head_case ("head RMS D=37", 3, 5, 3, 37, 2, false, VKC_F32, false);
}

/* ---------------------------------------------------------------------------------------
 * GroupNorm over NHWC images.
 * ------------------------------------------------------------------------------------- */

typedef struct {
  const char *name;
  int64_t B, H, W, C, G;
  int64_t cstride, coff; /* x is a channel slice [.., C] of [.., cstride] at coff */
  VkcDType wdt;          /* VKC_U32 = no affine */
  bool silu, in_place, round;
  float offset;
} GnCase;

static void
gn_case (const GnCase *c)
{
  int64_t B = c->B, H = c->H, W = c->W, C = c->C, G = c->G, cs = c->cstride;
  Buf xb = buf_new (B * H * W * cs, 30, 1.5f, c->offset, VKC_F32);
  Buf yb = c->in_place ? xb : buf_new (B * H * W * C, 31, 1.0f, 0.0f, VKC_F32);
  bool aff = c->wdt != VKC_U32;
  Buf wb = buf_new (C, 32, 0.5f, 1.0f, aff ? c->wdt : VKC_F32);
  Buf bb = buf_new (C, 33, 0.5f, 0.0f, aff ? c->wdt : VKC_F32);
  int64_t sh[4] = { B, H, W, C }, st[4] = { H * W * cs, W * cs, cs, 1 };
  VkcTensor x = view (&xb, 4, sh, st, c->coff);
  VkcTensor y = c->in_place ? x : cview (&yb, 4, sh, 0);
  int64_t ns = vkc_group_norm_scratch_elems (T->dev, &y, &x, (int) G);
  VkcTensor scratch = op_tensor (T, VKC_F32, 1, &ns, NULL);
  VkcNormFlags fl = (c->silu ? VKC_NORM_SILU : 0) | (c->round ? VKC_NORM_ROUND_BF16 : 0);
  VkcCmd *cmd = op_cmd (T);
  vkc_op_group_norm (cmd, &y, &x, aff ? &wb.dev : NULL, aff ? &bb.dev : NULL, (int) G, EPS, fl, &scratch);
  if (splitting)
    g_assert_cmpuint (vkc_cmd_n_dispatches (cmd), >, 3);
  run_cmd (cmd, false);

  int64_t cpg = C / G, HW = H * W;
  g_autofree double *ref = g_new (double, B *HW *C);
  for (int64_t b = 0; b < B; b++)
    for (int64_t g = 0; g < G; g++) {
      double mean = 0, var = 0;
      for (int64_t p = 0; p < HW; p++)
        for (int64_t k = 0; k < cpg; k++) mean += xb.host[c->coff + (b * HW + p) * cs + g * cpg + k];
      mean /= (double) (HW * cpg);
      for (int64_t p = 0; p < HW; p++)
        for (int64_t k = 0; k < cpg; k++) {
          double d = xb.host[c->coff + (b * HW + p) * cs + g * cpg + k] - mean;
          var += d * d;
        }
      double rstd = 1.0 / sqrt (var / (double) (HW * cpg) + EPS);
      for (int64_t p = 0; p < HW; p++)
        for (int64_t k = 0; k < cpg; k++) {
          int64_t ch = g * cpg + k;
          double v = (xb.host[c->coff + (b * HW + p) * cs + ch] - mean) * rstd;
          if (aff)
            v = v * wb.host[ch] + bb.host[ch];
          if (c->round)
            v = rb (v);
          if (c->silu)
            v = silu (v);
          if (c->round && c->silu)
            v = rb (v);
          ref[(b * HW + p) * C + ch] = v;
        }
    }
  check (c->name, &yb, &y, ref, c->round);
  vkc_tensor_release (&scratch);
  if (!c->in_place)
    g_free (yb.host);
  g_free (xb.host);
  g_free (wb.host);
  g_free (bb.host);
}

static const GnCase gn_cases[] = {
  { "GN VAE [1,32,32,128] G32 bf16 +SiLU", 1, 32, 32, 128, 32, 128, 0, VKC_BF16, true, false, false, 0 },
  { "GN VAE mid [1,40,48,512] G32 bf16", 1, 40, 48, 512, 32, 512, 0, VKC_BF16, false, false, false, 0 },
  { "GN tiny [2,17,13,64] G4 f32", 2, 17, 13, 64, 4, 64, 0, VKC_F32, false, false, false, 0 },
  { "GN [1,9,11,96] G32 f16 +SiLU (cpg 3)", 1, 9, 11, 96, 32, 96, 0, VKC_F16, true, false, false, 0 },
  { "GN [1,5,7,37] G1 no affine", 1, 5, 7, 37, 1, 37, 0, VKC_U32, false, false, false, 0 },
  { "GN channel slice, mean offset 10", 1, 20, 24, 128, 32, 384, 128, VKC_F32, true, false, false, 10.0f },
  { "GN in place bf16 output +SiLU", 2, 8, 8, 256, 32, 256, 0, VKC_BF16, true, true, true, 0 },
};

static void
test_group_norm (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (gn_cases); i++) gn_case (&gn_cases[i]);
}

/* Binding limit lowered to 64 KiB: rows of images and runs within one pixel row; then to
 * 512 KiB for pieces of several statistics chunks. GroupNorm has one reduction only, so it
 * runs in the subgroup pass alone. */
static void
test_split (void)
{
  static const GnCase split_gn[] = {
    { "GN split by rows [2,40,30,128]", 2, 40, 30, 128, 32, 128, 0, VKC_BF16, true, false, false, 0 },
    { "GN split within a row [1,3,200,128]", 1, 3, 200, 128, 32, 128, 0, VKC_F32, false, false, false, 0 },
    { "GN split in place [1,30,30,64] G4", 1, 30, 30, 64, 4, 64, 0, VKC_F16, true, true, false, 0 },
  };
  static const RowCase split_rows[] = {
    { "LN split [3,40,1536]", false, 3, 40, 1536, 1536, 0, false, VKC_F32, true, false, 0 },
    { "RMS split strided [2,50,37]", true, 2, 50, 37, 1001, 3, false, VKC_BF16, false, true, 0 },
  };
  vkc_eltwise_set_binding_limit (64 * 1024);
  splitting = true;
  if (!shared_pass)
    for (guint i = 0; i < G_N_ELEMENTS (split_gn); i++) gn_case (&split_gn[i]);
  for (guint i = 0; i < G_N_ELEMENTS (split_rows); i++) row_case (&split_rows[i]);
  head_case ("head RMS split", 2, 77, 24, 64, 1, true, VKC_BF16, false);
  /* Pieces of 512 KiB hold several statistics chunks (32 K values each). */
  static const GnCase multi = {
    "GN split, 4 chunks per piece [1,64,64,128]", 1, 64, 64, 128, 32, 128, 0, VKC_BF16, true, false, false, 0
  };
  vkc_eltwise_set_binding_limit (512 * 1024);
  if (!shared_pass)
    gn_case (&multi);
  splitting = false;
  vkc_eltwise_set_binding_limit (0);
}

typedef struct {
  const char *path;
  void (*fn) (void);
  bool shared; /* row norms with the shared-memory reduction forced */
} Case;

static const Case cases[] = {
  { "/norm/layer/subgroup", test_layer_norm, false },
  { "/norm/layer/shared", test_layer_norm, true },
  { "/norm/rms/subgroup", test_rms_norm, false },
  { "/norm/rms/shared", test_rms_norm, true },
  { "/norm/widths/subgroup", test_widths, false },
  { "/norm/widths/shared", test_widths, true },
  { "/norm/head-rms/subgroup", test_head_rms_norm, false },
  { "/norm/head-rms/shared", test_head_rms_norm, true },
  { "/norm/group", test_group_norm, false },
  { "/norm/split/subgroup", test_split, false },
  { "/norm/split/shared", test_split, true },
};

/* Each case gets its own validated device (op_test_free fails on any validation message). */
static void
run (gconstpointer data)
{
  const Case *c = data;
  T = op_test_new ();
  shared_pass = c->shared;
  worst[0] = worst[1] = 0;
  named = 0;
  c->fn ();
  g_test_message ("%s: largest NMSE %.3g (f32 outputs), %.3g (bf16 outputs); pipeline names checked "
                  "in %u commands",
                  c->path, worst[0], worst[1], named);
  op_test_free (T);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) g_test_add_data_func (cases[i].path, &cases[i], run);
  return g_test_run ();
}
