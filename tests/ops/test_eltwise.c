/* Element-wise ops vs double-precision C references, on strided views of random buffers.
 *
 * Every operand is a view (shape, strides, offset) into a 1-D random buffer, so the same code
 * tests contiguous tensors, channel slices with a row stride, odd offsets (no vec4) and
 * broadcasts. Elements of the output buffer outside the output view must stay untouched.
 *
 * NMSE limits (Σ(ref−got)²/Σref²):
 *  - LIMIT_EXACT 0: copy moves bits.
 *  - LIMIT_ARITH 1e-12: add/mul/scale/modulate/gated-add are 1–3 fp32 roundings of the
 *    exact result (≤ ~2e-7 relative each, NMSE ~1e-14 on random data); two orders of margin
 *    for FMA contraction choices of the driver.
 *  - LIMIT_TRANSC 1e-11: SiLU/GELU/erf use our own exp/erf (eltwise_math.glsl, a few ulp,
 *    NMSE ~1e-13) plus a division.
 *  - erf and exact GELU also get a max relative error bound of 1e-6 (~16 ulp) over a dense
 *    sweep including the tails, where an accurate erf matters (GELU(-5) ≈ -1.4e-6).
 *  - mean over tokens LIMIT_MEAN 1e-11: fp32 sums of up to ~600 values per thread, error
 *    ~√n·ulp relative.
 */
#include "op_test.h"
#include "vkc_ops_eltwise.h"
#include <math.h>
#include <string.h>

#define LIMIT_EXACT 0.0
#define LIMIT_ARITH 1e-12
#define LIMIT_TRANSC 1e-11
#define LIMIT_MEAN 1e-11
#define MAX_REL_ERF 1e-6

static OpTest *T;
static bool splitting; /* test_split: every op must be cut into several dispatches */

static void
run_cmd (VkcCmd *cmd)
{
  if (splitting)
    g_assert_cmpuint (vkc_cmd_n_dispatches (cmd), >, 1);
  op_run (T, cmd);
}

/* A random 1-D f32 buffer: device tensor and the host copy of its initial contents. */
typedef struct {
  VkcTensor dev;
  float *host;
  int64_t n;
} Buf;

static Buf
buf_new (int64_t n, guint32 seed, float scale)
{
  Buf b;
  b.n = n;
  b.host = op_randn ((size_t) n, seed, scale);
  b.dev = op_tensor (T, VKC_F32, 1, &n, b.host);
  return b;
}

static void
buf_free (Buf *b)
{
  g_free (b->host);
}

static VkcTensor
view (const Buf *b, int nd, const int64_t *shape, const int64_t *stride, int64_t off)
{
  return vkc_tensor_view (&b->dev, nd, shape, stride, off);
}

/* A contiguous view of shape (row-major) at offset `off`. */
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

/* Buffer index of element `idx` of output view `out`, read through operand view `v` with the
 * launcher's broadcast rule (leading dims match from the left, missing/size-1 broadcast). */
static int64_t
elem (const Buf *b, const VkcTensor *v, const VkcTensor *out, const int64_t *idx)
{
  int64_t e = (int64_t) (v->offset - b->dev.offset) / 4;
  int nd = out->ndim;
  for (int d = 0; d < nd; d++) {
    int k = v->ndim == nd ? d : (d < v->ndim - 1 ? d : (d == nd - 1 ? v->ndim - 1 : -1));
    if (k < 0 || v->shape[k] == 1)
      continue;
    e += idx[d] * v->stride[k];
  }
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

typedef double (*RefFn) (double a, double b, double d, double alpha);

/* Run-check helper: ref(in[k] values) for each element of out view, compared with the GPU;
 * the rest of the output buffer must be unchanged. `a` may be the output buffer (in place). */
static void
check (const char *what, const Buf *yb, const VkcTensor *y, int n_in, const Buf *const *ib, const VkcTensor *const *iv,
       RefFn fn, double alpha, double limit)
{
  g_autofree float *got = op_download (T, &yb->dev);
  int64_t n = vkc_tensor_numel (y);
  g_autofree double *ref = g_new (double, n ? n : 1);
  g_autofree float *g = g_new (float, n ? n : 1);
  g_autofree guint8 *touched = g_new0 (guint8, yb->n);
  for (int64_t i = 0; i < n; i++) {
    int64_t idx[4];
    unravel (y, i, idx);
    double v[3] = { 0, 0, 0 };
    for (int k = 0; k < n_in; k++) v[k] = ib[k]->host[elem (ib[k], iv[k], y, idx)];
    ref[i] = fn (v[0], v[1], v[2], alpha);
    int64_t e = elem (yb, y, y, idx);
    g[i] = got[e];
    touched[e] = 1;
  }
  op_check (what, ref, g, (size_t) n, limit);
  for (int64_t e = 0; e < yb->n; e++)
    if (!touched[e] && memcmp (&got[e], &yb->host[e], 4) != 0)
      g_error ("%s: element %" G_GINT64_FORMAT " outside the output view changed", what, e);
}

static double
r_copy (double a, double b, double d, double al)
{
  return a;
}
static double
r_silu (double a, double b, double d, double al)
{
  return a / (1.0 + exp (-a));
}
static double
r_gelu_erf (double a, double b, double d, double al)
{
  return 0.5 * a * erfc (-a / sqrt (2.0));
}
static double
r_gelu_tanh (double a, double b, double d, double al)
{
  return 0.5 * a * (1.0 + tanh (sqrt (2.0 / G_PI) * (a + 0.044715 * a * a * a)));
}
static double
r_erf (double a, double b, double d, double al)
{
  return erf (a);
}
static double
r_scale (double a, double b, double d, double al)
{
  return (double) (float) al * a;
}
static double
r_add (double a, double b, double d, double al)
{
  return a + b;
}
static double
r_mul (double a, double b, double d, double al)
{
  return a * b;
}
static double
r_swiglu (double a, double b, double d, double al)
{
  return a / (1.0 + exp (-a)) * b;
}
static double
r_modulate (double a, double b, double d, double al)
{
  return a * (1.0 + b) + d;
}
static double
r_gated (double a, double b, double d, double al)
{
  return a + b * d;
}

static const struct {
  VkcUnaryOp op;
  const char *name;
  RefFn ref;
  double limit;
} unary_ops[] = {
  { VKC_UNARY_COPY, "copy", r_copy, LIMIT_EXACT },
  { VKC_UNARY_SILU, "silu", r_silu, LIMIT_TRANSC },
  { VKC_UNARY_GELU_ERF, "gelu_erf", r_gelu_erf, LIMIT_TRANSC },
  { VKC_UNARY_GELU_TANH, "gelu_tanh", r_gelu_tanh, LIMIT_TRANSC },
  { VKC_UNARY_ERF, "erf", r_erf, LIMIT_TRANSC },
};

/* One unary case: y view and x view described by (shape, row stride, offset) of 3-D tensors
 * [B, N, C] with rows of `ld` elements. */
static void
unary_case (int64_t B, int64_t N, int64_t C, int64_t xld, int64_t xoff, int64_t yld, int64_t yoff, bool in_place,
            float scale)
{
  for (guint u = 0; u < G_N_ELEMENTS (unary_ops); u++) {
    Buf xb = buf_new (B * N * xld + xoff, 100 + u, scale);
    Buf yb = in_place ? xb : buf_new (B * N * yld + yoff, 200 + u, 1.0f);
    int64_t sh[3] = { B, N, C };
    int64_t xs[3] = { N * xld, xld, 1 }, ys[3] = { N * yld, yld, 1 };
    VkcTensor x = view (&xb, 3, sh, xs, xoff);
    VkcTensor y = in_place ? x : view (&yb, 3, sh, ys, yoff);
    VkcCmd *cmd = op_cmd (T);
    vkc_op_unary (cmd, &y, &x, unary_ops[u].op);
    run_cmd (cmd);
    char what[160];
    g_snprintf (what, sizeof what,
                "%s [%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT "] ld %" G_GINT64_FORMAT
                "/%" G_GINT64_FORMAT "%s",
                unary_ops[u].name, B, N, C, xld, yld, in_place ? " in place" : "");
    const Buf *ib[1] = { &xb };
    const VkcTensor *iv[1] = { &x };
    check (what, &yb, &y, 1, ib, iv, unary_ops[u].ref, 0, unary_ops[u].limit);
    if (!in_place)
      buf_free (&yb);
    buf_free (&xb);
  }
}

static void
test_unary (void)
{
  unary_case (2, 129, 1536, 1536, 0, 1536, 0, false, 3.0f);           /* DiT width, contiguous, vec4 */
  unary_case (3, 37, 11946, 11946, 0, 11946, 0, false, 3.0f);         /* connector MLP width, odd rows */
  unary_case (2, 33, 1536, 3 * 1536, 1536, 1536 + 8, 4, false, 2.0f); /* slices with row strides, vec4 */
  unary_case (3, 9, 37, 101, 5, 41, 3, false, 4.0f);                  /* odd width and offsets */
  unary_case (1, 7, 2048, 2048, 0, 2048, 0, true, 3.0f);              /* in place */
  unary_case (1, 1, 1, 1, 0, 1, 0, false, 1.0f);                      /* one element */
}

/* erf and exact GELU over a dense sweep, with a max relative error bound. */
static void
test_erf_accuracy (void)
{
  const int64_t n = 60001;
  Buf xb = buf_new (n, 1, 1.0f);
  for (int64_t i = 0; i < n; i++) xb.host[i] = (float) (-15.0 + 30.0 * (double) i / (double) (n - 1));
  xb.host[0] = 1e-30f;
  xb.host[1] = -3e-8f;
  xb.host[2] = 0.0f;
  g_assert_true (vkc_tensor_upload (T->dev, &xb.dev, xb.host, NULL));
  Buf yb = buf_new (n, 2, 1.0f);
  const VkcUnaryOp ops[2] = { VKC_UNARY_ERF, VKC_UNARY_GELU_ERF };
  const RefFn refs[2] = { r_erf, r_gelu_erf };
  for (int k = 0; k < 2; k++) {
    VkcCmd *cmd = op_cmd (T);
    vkc_op_unary (cmd, &yb.dev, &xb.dev, ops[k]);
    op_run (T, cmd);
    g_autofree float *got = op_download (T, &yb.dev);
    double worst = 0;
    int64_t wi = 0;
    for (int64_t i = 0; i < n; i++) {
      double r = refs[k](xb.host[i], 0, 0, 0);
      if (fabs (r) < 1e-36)
        continue; /* fp32 denormals: flushed on many GPUs */
      double e = fabs (got[i] - r) / fabs (r);
      if (e > worst) {
        worst = e;
        wi = i;
      }
    }
    g_test_message ("%s: max relative error %.3g at x = %.9g", k ? "gelu_erf" : "erf", worst, xb.host[wi]);
    if (worst > MAX_REL_ERF)
      g_error ("%s: relative error %.3g at x = %.9g (got %.9g, want %.9g)", k ? "gelu_erf" : "erf", worst, xb.host[wi],
               got[wi], refs[k](xb.host[wi], 0, 0, 0));
  }
  buf_free (&xb);
  buf_free (&yb);
}

static void
test_scale (void)
{
  Buf xb = buf_new (5 * 37 * 41, 3, 2.0f), yb = buf_new (5 * 37 * 41, 4, 1.0f);
  int64_t sh[3] = { 5, 37, 39 }, st[3] = { 37 * 41, 41, 1 };
  VkcTensor x = view (&xb, 3, sh, st, 1), y = view (&yb, 3, sh, st, 2);
  VkcCmd *cmd = op_cmd (T);
  vkc_op_scale (cmd, &y, &x, -0.37f);
  op_run (T, cmd);
  const Buf *ib[1] = { &xb };
  const VkcTensor *iv[1] = { &x };
  check ("scale", &yb, &y, 1, ib, iv, r_scale, -0.37f, LIMIT_ARITH);
  buf_free (&xb);
  buf_free (&yb);
}

/* Binary ops: a [B, N, C] (maybe strided), b of shape bshape (broadcast). */
static void
binary_case (const char *name, VkcBinaryOp op, RefFn ref, int64_t B, int64_t N, int64_t C, int bnd,
             const int64_t *bshape, bool in_place)
{
  Buf ab = buf_new (B * N * C + 3, 10, 2.0f);
  int64_t bn = 1;
  for (int d = 0; d < bnd; d++) bn *= bshape[d];
  Buf bb = buf_new (bn, 11, 1.5f);
  Buf yb = in_place ? ab : buf_new (B * N * C, 12, 1.0f);
  int64_t sh[3] = { B, N, C };
  VkcTensor a = cview (&ab, 3, sh, in_place ? 0 : 3); /* odd offset unless in place */
  VkcTensor b = cview (&bb, bnd, bshape, 0);
  VkcTensor y = in_place ? a : cview (&yb, 3, sh, 0);
  VkcCmd *cmd = op_cmd (T);
  vkc_op_binary (cmd, &y, &a, &b, op);
  run_cmd (cmd);
  const Buf *ib[2] = { &ab, &bb };
  const VkcTensor *iv[2] = { &a, &b };
  check (name, &yb, &y, 2, ib, iv, ref, 0, op == VKC_BINARY_SWIGLU ? LIMIT_TRANSC : LIMIT_ARITH);
  if (!in_place)
    buf_free (&yb);
  buf_free (&ab);
  buf_free (&bb);
}

static void
test_binary (void)
{
  binary_case ("add same shape", VKC_BINARY_ADD, r_add, 2, 67, 1536, 3, (int64_t[]) { 2, 67, 1536 }, false);
  binary_case ("add bias [C]", VKC_BINARY_ADD, r_add, 3, 31, 11946, 1, (int64_t[]) { 11946 }, false);
  binary_case ("add [B,C] in place", VKC_BINARY_ADD, r_add, 2, 129, 1536, 2, (int64_t[]) { 2, 1536 }, true);
  binary_case ("mul [B,C]", VKC_BINARY_MUL, r_mul, 3, 17, 37, 2, (int64_t[]) { 3, 37 }, false);
  binary_case ("mul [B,1,C]", VKC_BINARY_MUL, r_mul, 3, 17, 37, 3, (int64_t[]) { 3, 1, 37 }, false);
}

/* SwiGLU with gate and up as the two halves of one [T, 2·I] tensor (Qwen MLP, I = 11008). */
static void
test_swiglu (void)
{
  const int64_t rows[2] = { 9, 3 }, I[2] = { 11008, 37 };
  for (int k = 0; k < 2; k++) {
    Buf gu = buf_new (rows[k] * 2 * I[k], 20, 3.0f);
    Buf yb = buf_new (rows[k] * I[k], 21, 1.0f);
    int64_t sh[2] = { rows[k], I[k] }, st[2] = { 2 * I[k], 1 };
    VkcTensor g = view (&gu, 2, sh, st, 0), u = view (&gu, 2, sh, st, I[k]);
    VkcTensor y = cview (&yb, 2, sh, 0);
    VkcCmd *cmd = op_cmd (T);
    vkc_op_binary (cmd, &y, &g, &u, VKC_BINARY_SWIGLU);
    op_run (T, cmd);
    const Buf *ib[2] = { &gu, &gu };
    const VkcTensor *iv[2] = { &g, &u };
    check (k ? "swiglu I=37" : "swiglu I=11008", &yb, &y, 2, ib, iv, r_swiglu, 0, LIMIT_TRANSC);
    buf_free (&gu);
    buf_free (&yb);
  }
}

/* AdaLN: scale/shift/gate are column chunks of a modulation tensor [B, k·C] (MODEL.md §5.4). */
static void
modulate_case (int64_t B, int64_t N, int64_t C, int64_t chunks, bool in_place)
{
  Buf xb = buf_new (B * N * C, 30, 1.0f);
  Buf mb = buf_new (B * chunks * C, 31, 0.5f);
  Buf yb = in_place ? xb : buf_new (B * N * C, 32, 1.0f);
  Buf vb = buf_new (B * N * C, 33, 1.0f);
  int64_t sh[3] = { B, N, C }, msh[2] = { B, C }, mst[2] = { chunks * C, 1 };
  VkcTensor x = cview (&xb, 3, sh, 0), y = in_place ? x : cview (&yb, 3, sh, 0), v = cview (&vb, 3, sh, 0);
  VkcTensor shift = view (&mb, 2, msh, mst, 0), scale = view (&mb, 2, msh, mst, C);
  VkcTensor gate = view (&mb, 2, msh, mst, 2 * C);
  char what[96];
  VkcCmd *cmd = op_cmd (T);
  vkc_op_modulate (cmd, &y, &x, &scale, &shift);
  run_cmd (cmd);
  {
    const Buf *ib[3] = { &xb, &mb, &mb };
    const VkcTensor *iv[3] = { &x, &scale, &shift };
    g_snprintf (what, sizeof what, "modulate C=%" G_GINT64_FORMAT "%s", C, in_place ? " in place" : "");
    check (what, &yb, &y, 3, ib, iv, r_modulate, 0, LIMIT_ARITH);
  }
  /* Gated residual in place on a fresh residual stream. */
  Buf rb = buf_new (B * N * C, 34, 1.0f);
  VkcTensor r = cview (&rb, 3, sh, 0);
  cmd = op_cmd (T);
  vkc_op_gated_add (cmd, &r, &r, &gate, &v);
  run_cmd (cmd);
  {
    const Buf *ib[3] = { &rb, &mb, &vb };
    const VkcTensor *iv[3] = { &r, &gate, &v };
    g_snprintf (what, sizeof what, "gated_add C=%" G_GINT64_FORMAT, C);
    check (what, &rb, &r, 3, ib, iv, r_gated, 0, LIMIT_ARITH);
  }
  buf_free (&rb);
  if (!in_place)
    buf_free (&yb);
  buf_free (&xb);
  buf_free (&mb);
  buf_free (&vb);
}

static void
test_modulate (void)
{
  modulate_case (2, 333, 1536, 9, false); /* DiT dual block: chunk9 of [2, 9·1536] */
  modulate_case (3, 5, 37, 6, true);      /* odd width: offsets not multiples of 4 */
}

/* Concat along channels with strided copies, then slice back out. */
static void
test_concat_slice (void)
{
  const int64_t B = 2, N = 9, C1 = 37, C2 = 1536, C = C1 + C2;
  Buf pb1 = buf_new (B * N * C1, 40, 1.0f), pb2 = buf_new (B * N * C2, 41, 1.0f);
  Buf cb = buf_new (B * N * C, 42, 1.0f), sb = buf_new (B * N * C2, 43, 1.0f);
  int64_t s1[3] = { B, N, C1 }, s2[3] = { B, N, C2 }, cst[3] = { N * C, C, 1 };
  VkcTensor p1 = cview (&pb1, 3, s1, 0), p2 = cview (&pb2, 3, s2, 0);
  VkcTensor d1 = view (&cb, 3, s1, cst, 0), d2 = view (&cb, 3, s2, cst, C1);
  VkcTensor out = cview (&sb, 3, s2, 0);
  VkcCmd *cmd = op_cmd (T);
  vkc_op_copy (cmd, &d1, &p1);
  vkc_op_copy (cmd, &d2, &p2);
  vkc_op_copy (cmd, &out, &d2); /* reads what the previous copy wrote: needs the barrier */
  op_run (T, cmd);
  g_autofree float *cat = op_download (T, &cb.dev);
  g_autofree float *sl = op_download (T, &sb.dev);
  for (int64_t b = 0; b < B; b++)
    for (int64_t n = 0; n < N; n++)
      for (int64_t c = 0; c < C; c++) {
        float want = c < C1 ? pb1.host[(b * N + n) * C1 + c] : pb2.host[(b * N + n) * C2 + c - C1];
        g_assert_cmpfloat (cat[(b * N + n) * C + c], ==, want);
        if (c >= C1)
          g_assert_cmpfloat (sl[(b * N + n) * C2 + c - C1], ==, want);
      }
  buf_free (&pb1);
  buf_free (&pb2);
  buf_free (&cb);
  buf_free (&sb);
}

static void
mean_case (int64_t B, int64_t N, int64_t C, int64_t ld, int64_t off)
{
  Buf xb = buf_new (B * N * ld + off, 50, 1.0f);
  for (int64_t i = 0; i < xb.n; i++) xb.host[i] += 0.5f; /* non-zero mean */
  g_assert_true (vkc_tensor_upload (T->dev, &xb.dev, xb.host, NULL));
  Buf yb = buf_new (B * (C + 3), 51, 1.0f);
  int64_t sh[3] = { B, N, C }, st[3] = { N * ld, ld, 1 }, ysh[2] = { B, C }, yst[2] = { C + 3, 1 };
  VkcTensor x = view (&xb, 3, sh, st, off), y = view (&yb, 2, ysh, yst, 1);
  VkcCmd *cmd = op_cmd (T);
  vkc_op_mean_tokens (cmd, &y, &x);
  run_cmd (cmd);
  g_autofree float *got = op_download (T, &yb.dev);
  g_autofree double *ref = g_new0 (double, B *C);
  g_autofree float *g = g_new (float, B *C);
  for (int64_t b = 0; b < B; b++)
    for (int64_t c = 0; c < C; c++) {
      for (int64_t n = 0; n < N; n++) ref[b * C + c] += xb.host[off + b * N * ld + n * ld + c];
      ref[b * C + c] /= (double) N;
      g[b * C + c] = got[1 + b * (C + 3) + c];
    }
  char what[96];
  g_snprintf (what, sizeof what, "mean_tokens [%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT "]", B, N,
              C);
  op_check (what, ref, g, (size_t) (B * C), LIMIT_MEAN);
  buf_free (&xb);
  buf_free (&yb);
}

static void
test_mean_tokens (void)
{
  mean_case (2, 1201, 2048, 2048, 0); /* pooled LLM output: 2048 wide, long sequence */
  mean_case (3, 77, 37, 101, 7);      /* strided rows, odd width */
}

/* The binding-split path: a tiny limit forces row, level and token splits. */
static void
test_split (void)
{
  vkc_eltwise_set_binding_limit (16 * 1024);
  splitting = true;
  unary_case (3, 37, 1001, 1003, 1, 1001, 0, false, 2.0f); /* ~4 KiB rows: splits within a batch */
  binary_case ("add split", VKC_BINARY_ADD, r_add, 3, 40, 500, 2, (int64_t[]) { 3, 500 }, false);
  modulate_case (2, 50, 256, 6, false);
  mean_case (2, 301, 37, 41, 0); /* tokens split: accumulates */
  splitting = false;
  vkc_eltwise_set_binding_limit (0);
}

typedef struct {
  const char *path;
  void (*fn) (void);
} Case;

static const Case cases[] = {
  { "/eltwise/unary", test_unary },
  { "/eltwise/erf-accuracy", test_erf_accuracy },
  { "/eltwise/scale", test_scale },
  { "/eltwise/binary", test_binary },
  { "/eltwise/swiglu", test_swiglu },
  { "/eltwise/modulate-gated", test_modulate },
  { "/eltwise/concat-slice", test_concat_slice },
  { "/eltwise/mean-tokens", test_mean_tokens },
  { "/eltwise/split", test_split },
};

/* Each case gets its own validated device (op_test_free fails on any validation message). */
static void
run (gconstpointer data)
{
  const Case *c = data;
  T = op_test_new ();
  c->fn ();
  op_test_free (T);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) g_test_add_data_func (cases[i].path, &cases[i], run);
  return g_test_run ();
}
