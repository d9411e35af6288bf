/* Rotate-half rotary embedding vs a double-precision C reference, with random tables, the
 * LLM's multi-section M-RoPE table for 3-D positions (MODEL.md §1.6, §2.1) and the ViT's 2-D
 * table (§2.2).
 *
 * NMSE limit 1e-12: each rotated output is x·c ± x'·s, two fp32 products and one sum (a few
 * 1e-8 relative), so the NMSE is ~1e-15; a wrong pairing or table index gives ~1. Channels
 * that are copied (beyond rot_dim) or outside the view must be bit-exact. */
#include "op_test.h"
#include "vkc_ops_attention.h"
#include <math.h>

#define ROTARY_NMSE 1e-12

typedef struct {
  const char *name;
  int B, N, H, D, rot;
  int table_b;       /* 1 = broadcast table, else B */
  int width, ch_off; /* x is channels [ch_off, ch_off + H·D) of a [B, N, width] tensor */
  bool in_place;
} Rot;

/* cos/sin tables [table_b, N, rot] in host memory. */
static void
run (OpTest *t, const Rot *c, const float *cosv, const float *sinv, guint min_dispatches)
{
  const int C = c->H * c->D, half = c->rot / 2;
  const size_t nfull = (size_t) c->B * c->N * c->width, ny = (size_t) c->B * c->N * C;
  g_autofree float *hx = op_randn (nfull, 5 + (guint32) c->D, 1.0f);
  int64_t sf[3] = { c->B, c->N, c->width }, sy[3] = { c->B, c->N, C };
  int64_t st[3] = { c->table_b, c->N, c->rot };
  VkcTensor xf = op_tensor (t, VKC_F32, 3, sf, hx);
  VkcTensor x = vkc_tensor_narrow (&xf, 2, c->ch_off, C);
  VkcTensor yf = c->in_place ? xf : op_tensor (t, VKC_F32, 3, sy, NULL);
  VkcTensor y = c->in_place ? x : yf;
  VkcTensor tc = op_tensor (t, VKC_F32, 3, st, cosv), ts = op_tensor (t, VKC_F32, 3, st, sinv);
  VkcCmd *cmd = op_cmd (t);
  vkc_op_rotary (cmd, &y, &x, &tc, &ts, c->H, c->rot);
  g_assert_cmpuint (vkc_cmd_n_dispatches (cmd), >=, min_dispatches);
  op_run (t, cmd);
  g_autofree float *got = op_download (t, &yf);

  /* Expected contents of y's whole tensor (for in place: x's whole tensor). */
  const int yw = c->in_place ? c->width : C, yo = c->in_place ? c->ch_off : 0;
  const size_t nexp = c->in_place ? nfull : ny;
  g_autofree double *exp_ = g_new (double, nexp);
  g_autofree bool *exact = g_new (bool, nexp);
  for (size_t i = 0; i < nexp; i++) {
    exp_[i] = c->in_place ? hx[i] : 0;
    exact[i] = true;
  }
  for (int b = 0; b < c->B; b++)
    for (int n = 0; n < c->N; n++) {
      int tb = c->table_b == 1 ? 0 : b;
      const float *cs = cosv + ((size_t) tb * c->N + n) * c->rot;
      const float *sn = sinv + ((size_t) tb * c->N + n) * c->rot;
      for (int h = 0; h < c->H; h++) {
        const float *xi = hx + ((size_t) b * c->N + n) * c->width + c->ch_off + (size_t) h * c->D;
        double *yi = exp_ + ((size_t) b * c->N + n) * yw + yo + (size_t) h * c->D;
        bool *ei = exact + ((size_t) b * c->N + n) * yw + yo + (size_t) h * c->D;
        for (int j = 0; j < half; j++) {
          yi[j] = (double) xi[j] * cs[j] - (double) xi[j + half] * sn[j];
          yi[j + half] = (double) xi[j + half] * cs[j + half] + (double) xi[j] * sn[j + half];
          ei[j] = ei[j + half] = false;
        }
        for (int j = c->rot; j < c->D; j++) yi[j] = xi[j];
      }
    }
  for (size_t i = 0; i < nexp; i++)
    if (exact[i] && (double) got[i] != exp_[i])
      g_error ("rotary %s: copied element %zu is %.9g, expected %.9g", c->name, i, got[i], exp_[i]);
  op_check (c->name, exp_, got, nexp, ROTARY_NMSE);
}

static void
test_random_tables (void)
{
  const Rot cases[] = {
    { "full-rot", 2, 37, 3, 64, 64, 2, 192, 0, false },
    { "partial-broadcast", 3, 29, 2, 64, 32, 1, 128, 0, false },
    { "odd-dims", 2, 13, 5, 18, 10, 2, 90, 0, false },
    /* q channels of a fused qkv [B, N, 3·4·32], rotated in place. */
    { "fused-in-place", 2, 19, 4, 32, 32, 2, 384, 0, true },
    /* k channels (offset 128) of the same layout, partial rotary, broadcast table. */
    { "fused-k-in-place", 2, 19, 4, 32, 16, 1, 384, 128, true },
  };
  OpTest *t = op_test_new ();
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    const Rot *c = &cases[i];
    size_t n = (size_t) c->table_b * c->N * c->rot;
    g_autofree float *cs = op_randu (n, 100 + i, -1.0f, 1.0f);
    g_autofree float *sn = op_randu (n, 200 + i, -1.0f, 1.0f);
    run (t, c, cs, sn, 1);
  }
  op_test_free (t);
}

/* Qwen2.5-VL M-RoPE (MODEL.md §1.6, §2.1): rows of text, an image of gh/2 × gw/2 merged
 * tokens, more text; row 1 left-padded (pad positions 1). Sections [16, 24, 24] over the 64
 * frequencies, duplicated to 128 channels; cos/sin in fp32 then rounded to bf16. */
static void
mrope_table (int B, int N, float *cosv, float *sinv)
{
  const int rows = 3, cols = 4, text0 = 5;
  float inv_freq[64];
  for (int j = 0; j < 64; j++) inv_freq[j] = (float) (1.0 / pow (1e6, 2.0 * j / 128.0));
  for (int b = 0; b < B; b++) {
    int pad = b == 0 ? 0 : 4;
    int next = 0;
    for (int n = 0; n < N; n++) {
      int pos[3];
      int i = n - pad;
      if (i < 0) {
        pos[0] = pos[1] = pos[2] = 1;
      } else if (i < text0) {
        pos[0] = pos[1] = pos[2] = next++;
      } else if (i < text0 + rows * cols) {
        int k = i - text0, s = text0, r = k / cols, cc = k % cols;
        pos[0] = s;
        pos[1] = s + r;
        pos[2] = s + cc;
        next = s + MAX (rows, cols);
      } else {
        pos[0] = pos[1] = pos[2] = next++;
      }
      for (int ch = 0; ch < 128; ch++) {
        int j = ch % 64, sec = j < 16 ? 0 : j < 40 ? 1 : 2;
        float th = (float) pos[sec] * inv_freq[j];
        cosv[((size_t) b * N + n) * 128 + ch] = cosf (th);
        sinv[((size_t) b * N + n) * 128 + ch] = sinf (th);
      }
    }
  }
  op_round_to (cosv, (size_t) B * N * 128, VKC_BF16);
  op_round_to (sinv, (size_t) B * N * 128, VKC_BF16);
}

static void
test_mrope (void)
{
  const int B = 2, N = 31;
  g_autofree float *cs = g_new (float, (size_t) B *N * 128);
  g_autofree float *sn = g_new (float, (size_t) B *N * 128);
  mrope_table (B, N, cs, sn);
  OpTest *t = op_test_new ();
  const Rot q = { "mrope-q", B, N, 16, 128, 128, B, 16 * 128, 0, false };
  const Rot k = { "mrope-k-in-fused", B, N, 2, 128, 128, B, (16 + 4) * 128, 16 * 128, true };
  run (t, &q, cs, sn, 1);
  run (t, &k, cs, sn, 1);
  op_test_free (t);
}

/* ViT 2-D rotary (MODEL.md §2.2): patch (row y, col x) → θ = [y·f (20), x·f (20)],
 * emb = [θ, θ] (80 channels), f_j = 10000^(−2j/40); patches in 2×2-grouped order. */
static void
test_vit_2d (void)
{
  const int gh = 6, gw = 10, N = gh * gw, D = 80;
  g_autofree float *cs = g_new (float, (size_t) N *D);
  g_autofree float *sn = g_new (float, (size_t) N *D);
  float f[20];
  for (int j = 0; j < 20; j++) f[j] = (float) (1.0 / pow (10000.0, 2.0 * j / 40.0));
  int n = 0;
  for (int by = 0; by < gh; by += 2)
    for (int bx = 0; bx < gw; bx += 2)
      for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++, n++) {
          int y = by + dy, x = bx + dx;
          for (int ch = 0; ch < D; ch++) {
            int j = ch % 40;
            float th = j < 20 ? (float) y * f[j] : (float) x * f[j - 20];
            cs[(size_t) n * D + ch] = cosf (th);
            sn[(size_t) n * D + ch] = sinf (th);
          }
        }
  OpTest *t = op_test_new ();
  const Rot q = { "vit-2d", 1, N, 16, D, D, 1, 3 * 16 * D, 0, true }; /* q of a fused qkv */
  run (t, &q, cs, sn, 1);
  op_test_free (t);
}

/* Bindings over the limit: split along batch, then tokens. */
static void
test_split (void)
{
  const Rot c = { "split", 3, 50, 2, 64, 48, 3, 128, 0, false }; /* x 25 KiB per batch row */
  size_t n = (size_t) c.table_b * c.N * c.rot;
  g_autofree float *cs = op_randu (n, 7, -1.0f, 1.0f);
  g_autofree float *sn = op_randu (n, 8, -1.0f, 1.0f);
  OpTest *t = op_test_new ();
  VkcAttnTuning tu = VKC_ATTN_TUNING_DEFAULT;
  tu.max_binding = 8 * 1024;
  vkc_attention_set_tuning (&tu);
  run (t, &c, cs, sn, 12); /* ≥ 3 batch rows × 4 token chunks */
  vkc_attention_set_tuning (NULL);
  op_test_free (t);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/rotary/random-tables", test_random_tables);
  g_test_add_func ("/rotary/mrope", test_mrope);
  g_test_add_func ("/rotary/vit-2d", test_vit_2d);
  g_test_add_func ("/rotary/split", test_split);
  return g_test_run ();
}
