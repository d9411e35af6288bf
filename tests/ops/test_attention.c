/* Attention op vs a plain C reference (double precision, explicit mask, full softmax).
 *
 * NMSE limit ATTN_NMSE = 1e-8 for every case: the GPU works in fp32 throughout — dot products
 * over D (relative error ~1e-7), exp2 (GLSL allows a few ulp), the online rescaling and the
 * sum over Nk keys — which puts the per-element relative error near 1e-6 at worst and the
 * NMSE near 1e-12 in practice (measured ~1e-13 on lavapipe); 1e-8 keeps margin for GPUs with
 * coarser exp2 while any masking or indexing mistake gives an NMSE of 1e-3 or more.
 * Rows whose allowed key set is empty must be exactly 0, and pad_self rows exactly their own
 * value vector (a softmax over one key is exactly 1): both are checked bit for bit. */
#include "op_test.h"
#include "vkc_ops_attention.h"
#include <math.h>
#include <stdio.h>

#define ATTN_NMSE 1e-8

#ifndef ATTN_COOPMAT
#define ATTN_COOPMAT 0
#endif
/* Built a second time with ATTN_COOPMAT=1 (op_attention_coopmat, tests/ops/coopmat.cmake): the
 * same cases on the cooperative-matrix kernel (attention_coopmat.comp), skipped (77) where the
 * device has none. Its limit is derived, not fitted:
 *   the kernel rounds q·scale·log2(e), k, v and P to fp16 (unit roundoff u = 2⁻¹¹; a rounded value
 *   carries a relative error of variance ≤ u²/3) and keeps the softmax and every sum in fp32.
 *   A logit s = scale·Σ_d q_d·k_d then errs by Σ_d q_d·k_d·scale·(ε_q + ε_k), variance
 *   (2u²/3)·Σ_d (scale·q_d·k_d)² ≈ (2u²/3)·Var(s) for independent zero-mean inputs; through exp
 *   that is a relative error of P of the same variance (the exp2 domain's ln 2 and log2 e
 *   cancel). Rounding P and v adds u²/3 each. An output O = Σ_j p_j·v_j / Σ_j p_j with relative
 *   term errors δ_j has error Σ_j p_j·δ_j·(v_j − O), whose variance over E[O²] is E[δ²] for
 *   random v. So NMSE ≈ (2u²/3)·(Var(s) + 1), Var(s) = scale²·D·σ_q²·σ_k² (σ_q = 1.5, σ_k = 1
 *   below); the limit is 10× that (sampling spread over a few thousand outputs): 5e-6 for
 *   scale = 1/√D, 2.2e-5 for d64 with scale 0.3. Empty rows stay exactly 0; a pad_self row is
 *   its own v rounded to fp16 (a softmax over one key is exactly 1). */
static const int attn_path = ATTN_COOPMAT ? 2 : 0;

static double
attn_limit (int D, float scale)
{
  if (!ATTN_COOPMAT)
    return ATTN_NMSE;
  const double u = 1.0 / 2048;
  double var_s = (double) scale * scale * D * 1.5 * 1.5;
  return 10.0 * (2.0 * u * u / 3.0) * (var_s + 1.0);
}

typedef struct {
  const char *name;
  int B, Nq, Nk, Hq, Hkv, D;
  float scale; /* 0 = 1/√D */
  bool causal;
  bool fused; /* q, k, v as channel slices of one [B, N, (Hq+2·Hkv)·D] tensor */
  int valid;  /* 0 none, 1 left padding (LLM), 2 right padding (DiT), 3 random */
  bool pad_self;
  int range;        /* 0 none, 1 uneven windows (Nq == Nk), 2 random ranges, some empty */
  bool empty_batch; /* with valid: the last batch row has no valid key at all */
  guint dispatches; /* expected number of dispatches (split tests), 0 = unchecked */
  int row_step;     /* reference for every row_step-th query row only (big cases); 0 = all */
} Case;

static VkcTensor
u32_tensor (OpTest *t, int ndim, const int64_t *shape, const uint32_t *data)
{
  g_autoptr (GError) error = NULL;
  VkcTensor x;
  g_assert_true (vkc_tensor_alloc (&x, t->pool, true, VKC_U32, ndim, shape, &error));
  g_assert_true (vkc_tensor_upload (t->dev, &x, data, &error));
  g_assert_no_error (error);
  return x;
}

static bool
allowed (const Case *c, const uint32_t *valid, const uint32_t *range, int b, int i, int j)
{
  if (c->pad_self && !valid[(size_t) b * c->Nk + i])
    return j == i;
  if (valid && !valid[(size_t) b * c->Nk + j])
    return false;
  if (c->causal && j > i)
    return false;
  if (range) {
    const uint32_t *r = range + ((size_t) b * c->Nq + i) * 2;
    if ((uint32_t) j < r[0] || (uint32_t) j >= r[1])
      return false;
  }
  return true;
}

/* o[b, i, h·D + d] for contiguous host q [B, Nq, Hq·D], k/v [B, Nk, Hkv·D]; empty[b·Nq+i·Hq+h]
 * marks rows with no allowed key. */
static void
ref_attention (const Case *c, float scale, const float *q, const float *k, const float *v, const uint32_t *valid,
               const uint32_t *range, double *o, bool *empty)
{
  const int step = c->row_step ? c->row_step : 1;
  const int D = c->D, Cq = c->Hq * D, Ck = c->Hkv * D, grp = c->Hq / c->Hkv;
  g_autofree double *s = g_new (double, c->Nk);
  for (int b = 0; b < c->B; b++)
    for (int i = 0; i < c->Nq; i += step)
      for (int h = 0; h < c->Hq; h++) {
        const float *qi = q + ((size_t) b * c->Nq + i) * Cq + (size_t) h * D;
        int hk = h / grp;
        double mx = -INFINITY;
        for (int j = 0; j < c->Nk; j++) {
          if (!allowed (c, valid, range, b, i, j)) {
            s[j] = -INFINITY;
            continue;
          }
          const float *kj = k + ((size_t) b * c->Nk + j) * Ck + (size_t) hk * D;
          double acc = 0;
          for (int d = 0; d < D; d++) acc += (double) qi[d] * kj[d];
          s[j] = acc * scale;
          if (s[j] > mx)
            mx = s[j];
        }
        double *oi = o + ((size_t) b * c->Nq + i) * Cq + (size_t) h * D;
        for (int d = 0; d < D; d++) oi[d] = 0;
        empty[((size_t) b * c->Nq + i) * c->Hq + h] = mx == -INFINITY;
        if (mx == -INFINITY)
          continue;
        double l = 0;
        for (int j = 0; j < c->Nk; j++) {
          if (s[j] == -INFINITY)
            continue;
          double pj = exp (s[j] - mx);
          l += pj;
          const float *vj = v + ((size_t) b * c->Nk + j) * Ck + (size_t) hk * D;
          for (int d = 0; d < D; d++) oi[d] += pj * vj[d];
        }
        for (int d = 0; d < D; d++) oi[d] /= l;
      }
}

static uint32_t *
make_valid (const Case *c)
{
  if (!c->valid)
    return NULL;
  uint32_t *m = g_new (uint32_t, (size_t) c->B * c->Nk);
  g_autoptr (GRand) r = g_rand_new_with_seed (77);
  for (int b = 0; b < c->B; b++) {
    int pad = c->B > 1 ? b * c->Nk / (c->B + 1) : c->Nk / 3; /* row 0 unpadded when B > 1 */
    for (int j = 0; j < c->Nk; j++) {
      bool ok = c->valid == 1 ? j >= pad : c->valid == 2 ? j < c->Nk - pad : g_rand_int_range (r, 0, 4) != 0;
      if (c->empty_batch && b == c->B - 1)
        ok = false;
      m[(size_t) b * c->Nk + j] = ok;
    }
  }
  return m;
}

static uint32_t *
make_range (const Case *c)
{
  if (!c->range)
    return NULL;
  uint32_t *m = g_new (uint32_t, (size_t) c->B * c->Nq * 2);
  g_autoptr (GRand) r = g_rand_new_with_seed (99);
  static const int sizes[] = { 5, 17, 1, 40, 64, 3, 29, 33 };
  for (int b = 0; b < c->B; b++) {
    if (c->range == 1) {
      g_assert_cmpint (c->Nq, ==, c->Nk);
      int start = 0, w = b;
      while (start < c->Nq) {
        int size = sizes[w++ % G_N_ELEMENTS (sizes)];
        int end = MIN (c->Nq, start + size);
        for (int i = start; i < end; i++) {
          m[((size_t) b * c->Nq + i) * 2] = (uint32_t) start;
          m[((size_t) b * c->Nq + i) * 2 + 1] = (uint32_t) end;
        }
        start = end;
      }
    } else {
      for (int i = 0; i < c->Nq; i++) {
        uint32_t lo = (uint32_t) g_rand_int_range (r, 0, c->Nk);
        uint32_t hi = (uint32_t) g_rand_int_range (r, 0, c->Nk + 8); /* may be < lo: empty */
        m[((size_t) b * c->Nq + i) * 2] = lo;
        m[((size_t) b * c->Nq + i) * 2 + 1] = hi;
      }
    }
  }
  return m;
}

static void
run_case (OpTest *t, const Case *c)
{
  const int D = c->D, Cq = c->Hq * D, Ck = c->Hkv * D;
  const float scale = c->scale ? c->scale : 1.0f / sqrtf ((float) D);
  const size_t nq = (size_t) c->B * c->Nq * Cq, nk = (size_t) c->B * c->Nk * Ck;
  g_autofree float *hq = op_randn (nq, 1 + (guint32) D, 1.5f);
  g_autofree float *hk = op_randn (nk, 2 + (guint32) D, 1.0f);
  g_autofree float *hv = op_randn (nk, 3 + (guint32) D, 1.0f);
  g_autofree uint32_t *valid = make_valid (c);
  g_autofree uint32_t *range = make_range (c);

  VkcTensor q, k, v;
  if (c->fused) {
    g_assert_cmpint (c->Nq, ==, c->Nk);
    const int Cf = Cq + 2 * Ck;
    g_autofree float *f = g_new (float, (size_t) c->B * c->Nq * Cf);
    for (size_t r = 0; r < (size_t) c->B * c->Nq; r++) {
      memcpy (f + r * Cf, hq + r * Cq, sizeof (float) * Cq);
      memcpy (f + r * Cf + Cq, hk + r * Ck, sizeof (float) * Ck);
      memcpy (f + r * Cf + Cq + Ck, hv + r * Ck, sizeof (float) * Ck);
    }
    int64_t shape[3] = { c->B, c->Nq, Cf };
    VkcTensor qkv = op_tensor (t, VKC_F32, 3, shape, f);
    q = vkc_tensor_narrow (&qkv, 2, 0, Cq);
    k = vkc_tensor_narrow (&qkv, 2, Cq, Ck);
    v = vkc_tensor_narrow (&qkv, 2, Cq + Ck, Ck);
  } else {
    int64_t sq[3] = { c->B, c->Nq, Cq }, sk[3] = { c->B, c->Nk, Ck };
    q = op_tensor (t, VKC_F32, 3, sq, hq);
    k = op_tensor (t, VKC_F32, 3, sk, hk);
    v = op_tensor (t, VKC_F32, 3, sk, hv);
  }
  /* The output gets a token stride wider than its rows to exercise strided writes; the gap
   * is pre-filled with a sentinel that must survive. */
  int64_t so[3] = { c->B, c->Nq, Cq + 3 };
  size_t no_full = (size_t) c->B * c->Nq * (Cq + 3);
  g_autofree float *sentinel = g_new (float, no_full);
  for (size_t i = 0; i < no_full; i++) sentinel[i] = 12345.0f;
  VkcTensor o_full = op_tensor (t, VKC_F32, 3, so, sentinel);
  VkcTensor o = vkc_tensor_narrow (&o_full, 2, 0, Cq);

  VkcTensor tvalid, trange;
  if (valid) {
    int64_t s[2] = { c->B, c->Nk };
    tvalid = u32_tensor (t, 2, s, valid);
  }
  if (range) {
    int64_t s[3] = { c->B, c->Nq, 2 };
    trange = u32_tensor (t, 3, s, range);
  }
  VkcAttnParams p = { c->Hq, c->Hkv, D, scale, c->causal, valid ? &tvalid : NULL, c->pad_self, range ? &trange : NULL };
  VkcCmd *cmd = op_cmd (t);
  gint64 t0 = g_get_monotonic_time ();
  vkc_op_attention (cmd, &o, &q, &k, &v, &p);
  if (c->dispatches)
    g_assert_cmpuint (vkc_cmd_n_dispatches (cmd), ==, c->dispatches);
  g_autoptr (GError) error = NULL;
  g_assert_true (vkc_cmd_submit_wait (cmd, &error));
  g_assert_no_error (error);
  double wall = (g_get_monotonic_time () - t0) / 1000.0;
  double gpu = vkc_cmd_gpu_ms (cmd);
  vkc_cmd_free (cmd);
  g_autofree float *got_full = op_download (t, &o_full);

  g_autofree double *ref = g_new (double, nq);
  g_autofree bool *empty = g_new (bool, (size_t) c->B * c->Nq * c->Hq);
  ref_attention (c, scale, hq, hk, hv, valid, range, ref, empty);

  g_autofree float *got = g_new (float, nq);
  for (size_t r = 0; r < (size_t) c->B * c->Nq; r++) {
    memcpy (got + r * Cq, got_full + r * (Cq + 3), sizeof (float) * Cq);
    for (int x = 0; x < 3; x++)
      if (got_full[r * (Cq + 3) + Cq + x] != 12345.0f)
        g_error ("%s: write outside o (row %zu)", c->name, r);
  }
  size_t n_empty = 0;
  for (int b = 0; b < c->B; b++)
    for (int i = 0; i < c->Nq; i += c->row_step ? c->row_step : 1)
      for (int h = 0; h < c->Hq; h++) {
        size_t row = ((size_t) b * c->Nq + i) * Cq + (size_t) h * D;
        bool self_only = c->pad_self && !valid[(size_t) b * c->Nk + i];
        if (empty[((size_t) b * c->Nq + i) * c->Hq + h]) {
          n_empty++;
          for (int d = 0; d < D; d++)
            if (got[row + d] != 0.0f || signbit (got[row + d]))
              g_error ("%s: empty row b=%d i=%d h=%d d=%d is %g, not exactly 0", c->name, b, i, h, d, got[row + d]);
        } else if (self_only) {
          const float *vi = hv + ((size_t) b * c->Nk + i) * Ck + (size_t) (h / (c->Hq / c->Hkv)) * D;
          for (int d = 0; d < D; d++)
            if (ATTN_COOPMAT ? fabsf (got[row + d] - vi[d]) > fabsf (vi[d]) / 2048 + 6.2e-5f : got[row + d] != vi[d])
              g_error ("%s: pad_self row b=%d i=%d h=%d d=%d is %.9g, not its value %.9g", c->name, b, i, h, d,
                       got[row + d], vi[d]);
        }
      }
  const int step = c->row_step ? c->row_step : 1;
  size_t n_cmp = 0;
  for (size_t r = 0; r < (size_t) c->B * c->Nq; r++) {
    if ((r % c->Nq) % step)
      continue;
    memmove (ref + n_cmp * Cq, ref + r * Cq, sizeof (double) * Cq);
    memmove (got + n_cmp * Cq, got + r * Cq, sizeof (float) * Cq);
    n_cmp++;
  }
  g_autofree char *what = g_strdup_printf ("attention %s", c->name);
  op_check (what, ref, got, n_cmp * Cq, attn_limit (D, scale));
  double gflop = 4.0 * c->B * c->Hq * (double) c->Nq * c->Nk * D / 1e9;
  g_test_message (
      "%s: B=%d Nq=%d Nk=%d H=%d/%d D=%d: %.1f ms wall, %.1f ms GPU (%.2f GFLOP/s unmasked), %zu empty rows", c->name,
      c->B, c->Nq, c->Nk, c->Hq, c->Hkv, D, wall, gpu, gflop / (gpu > 0 ? gpu : wall) * 1e3, n_empty);
}

/* ATTN_CASE=name in the environment runs only that case (debugging). */
static void
run_cases (const Case *cases, guint n)
{
  OpTest *t = op_test_new ();
  VkcAttnTuning tu = VKC_ATTN_TUNING_DEFAULT;
  tu.path = attn_path;
  vkc_attention_set_tuning (&tu);
  for (guint i = 0; i < n; i++) {
    if (g_getenv ("ATTN_CASE") && strcmp (g_getenv ("ATTN_CASE"), cases[i].name))
      continue;
    if (ATTN_COOPMAT) {
      /* Only the head dims the coopmat kernel takes (multiples of the coopmat shape, ≤ 256). */
      g_autofree char *d = vkc_attention_describe (t->dev, cases[i].D);
      if (!g_str_has_prefix (d, "coopmat")) {
        g_test_message ("%s: not a coopmat case (%s)", cases[i].name, d);
        continue;
      }
    }
    run_case (t, &cases[i]);
  }
  vkc_attention_set_tuning (NULL);
  op_test_free (t);
}

static void
test_head_dims (void)
{
  const Case cases[] = {
    { "d16", 2, 37, 37, 3, 3, 16, 0, false, false, 0, false, 0, false, 0, 0 },
    { "d32-fused", 1, 129, 129, 2, 2, 32, 0, false, true, 0, false, 0, false, 0, 0 },
    { "d64-scale", 2, 129, 129, 4, 4, 64, 0.3f, false, false, 0, false, 0, false, 0, 0 },
    { "d80-vit", 1, 150, 150, 2, 2, 80, 0, false, true, 0, false, 0, false, 0, 0 },
    { "d128", 1, 70, 70, 2, 2, 128, 0, false, false, 0, false, 0, false, 0, 0 },
    { "d512-vae", 1, 41, 41, 1, 1, 512, 0, false, true, 0, false, 0, false, 0, 0 },
    { "d100-odd", 1, 33, 45, 2, 1, 100, 0.05f, false, false, 0, false, 0, false, 0, 0 },
  };
  run_cases (cases, G_N_ELEMENTS (cases));
}

static void
test_masks (void)
{
  const Case cases[] = {
    /* LLM: GQA 16/2, causal, left padding (pad query rows → exactly 0), fused qkv. */
    { "llm-gqa16/2-causal-leftpad", 3, 45, 45, 16, 2, 128, 0, true, true, 1, false, 0, false, 0, 0 },
    { "gqa2/1-causal", 3, 45, 45, 2, 1, 32, 0, true, false, 0, false, 0, false, 0, 0 },
    /* Cross-attention shape with a random key mask and a key-less batch row. */
    { "cross-valid", 3, 50, 131, 2, 2, 64, 0, false, false, 3, false, 0, true, 0, 0 },
    /* DiT padding rule: right-padded rows, pad queries attend only to themselves. */
    { "dit-pad-self", 3, 70, 70, 2, 2, 64, 0.125f, false, true, 2, true, 0, false, 0, 0 },
    /* ViT windows of uneven sizes (1..64 tokens), head dim 80. */
    { "vit-windows", 2, 150, 150, 2, 2, 80, 0, false, true, 0, false, 1, false, 0, 0 },
    /* Random ranges (some empty) on a cross shape, together with a key mask. */
    { "ranges-random", 2, 67, 90, 2, 1, 16, 0, false, false, 3, false, 2, false, 0, 0 },
    /* Everything at once. */
    { "causal-windows-leftpad", 2, 99, 99, 4, 2, 64, 0, true, true, 1, false, 1, false, 0, 0 },
  };
  run_cases (cases, G_N_ELEMENTS (cases));
}

/* Every tile configuration and the shared-memory reduction, forced on a small case. */
static void
test_tilings (void)
{
  const struct {
    int bq, bk, alias;
    bool nosg;
  } tiles[] = {
    { 64, 32, 0, false }, { 32, 32, 1, false }, { 32, 16, 1, true }, { 16, 16, 0, false },
    { 16, 8, 1, true },   { 8, 4, 1, false },   { 4, 4, 1, true },   { 0, 0, -1, true },
  };
  const Case cases[] = {
    { "tile-d64", 2, 37, 53, 3, 1, 64, 0, false, false, 3, false, 0, false, 0, 0 },
    { "tile-d80-causal", 1, 41, 41, 2, 2, 80, 0, true, true, 1, false, 0, false, 0, 0 },
    { "tile-d32-windows", 2, 77, 77, 2, 2, 32, 0, false, true, 0, false, 1, false, 0, 0 },
  };
  OpTest *t = op_test_new ();
  for (guint i = 0; i < G_N_ELEMENTS (tiles); i++) {
    VkcAttnTuning tu = VKC_ATTN_TUNING_DEFAULT;
    tu.block_q = tiles[i].bq;
    tu.block_k = tiles[i].bk;
    tu.kv_alias = tiles[i].alias;
    tu.no_subgroup = tiles[i].nosg;
    vkc_attention_set_tuning (&tu);
    for (guint j = 0; j < G_N_ELEMENTS (cases); j++) {
      if (tiles[i].bq == 64 && cases[j].D > 32)
        continue; /* would exceed lavapipe's 32 KiB of shared memory */
      run_case (t, &cases[j]);
    }
  }
  vkc_attention_set_tuning (NULL);
  op_test_free (t);
}

/* Bindings over the limit: split by batch rows, then by query rows (q_base must keep causal,
 * pad_self and windows right). */
static void
test_split (void)
{
  /* q per batch row: 60·128·4 = 30 KiB (o 31 KiB with its wider rows), k/v 7.5 KiB:
   * one dispatch per batch row. */
  const Case batch_split = { "split-batch", 4, 60, 60, 4, 1, 32, 0, true, false, 2, true, 0, false, 4, 0 };
  /* q per batch row 50 KiB: halved to 25 rows (12.8 KiB) → 4 dispatches per batch row. */
  const Case query_split = { "split-queries", 2, 100, 100, 4, 1, 32, 0, true, false, 2, true, 1, false, 8, 0 };
  OpTest *t = op_test_new ();
  VkcAttnTuning tu = VKC_ATTN_TUNING_DEFAULT;
  tu.path = attn_path;
  tu.max_binding = 40 * 1024; /* > one batch row of q (30 KiB), < two */
  vkc_attention_set_tuning (&tu);
  run_case (t, &batch_split);
  tu.max_binding = 22 * 1024;
  vkc_attention_set_tuning (&tu);
  run_case (t, &query_split);
  vkc_attention_set_tuning (NULL);
  op_test_free (t);
}

/* DiT joint attention at its real size: 1024 image + 300 context tokens, 24 heads × 64. */
static void
test_dit_size (void)
{
  const Case cases[] = {
    /* The host reference checks every 5th query row (all heads) to keep the test short. */
    { "dit-1324x24x64", 1, 1324, 1324, 24, 24, 64, 0.125f, false, true, 0, false, 0, false, 0, 5 },
  };
  run_cases (cases, G_N_ELEMENTS (cases));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (ATTN_COOPMAT) {
    OpTest *t = op_test_new ();
    VkcAttnTuning tu = VKC_ATTN_TUNING_DEFAULT;
    tu.path = 2;
    vkc_attention_set_tuning (&tu);
    g_autofree char *d = vkc_attention_describe (t->dev, 64);
    vkc_attention_set_tuning (NULL);
    op_test_free (t);
    if (!g_str_has_prefix (d, "coopmat")) {
      printf ("SKIP: %s\n", d);
      return 77;
    }
    printf ("head dim 64: %s\n", d);
  }
  g_test_add_func ("/attention/head-dims", test_head_dims);
  g_test_add_func ("/attention/masks", test_masks);
  if (!ATTN_COOPMAT)
    g_test_add_func ("/attention/tilings", test_tilings); /* the scalar kernel's tiles */
  g_test_add_func ("/attention/split", test_split);
  /* The real DiT size: ~10 GFLOP, too slow for lavapipe's emulated coopmat in CI. */
  if (!ATTN_COOPMAT)
    g_test_add_func ("/attention/dit-size", test_dit_size);
  return g_test_run ();
}
