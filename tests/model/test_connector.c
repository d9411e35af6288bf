/* Stacked Channel Bridging (model/connector/connector.h) against DeepGen's connector package on the tiny
 * model (transformers SiglipEncoder layers + projectors): the module goldens connector_layer and
 * connector_full, and scb.merged → scb.p1, scb.conn.layer{l}, scb.pooled, scb.seq of the six
 * scenarios.
 *
 * Limits, fp32 mode: only the summation order differs (tiled GEMMs, online-softmax attention,
 * two-pass LayerNorm), ~1e-7 relative per operation; measured NMSE ≤ 1e-13 after two layers.
 * LIMIT_F32 = 1e-10.
 *
 * bf16 mode: we round where the reference stores bf16 tensors (every linear output, LayerNorm,
 * GELU, attention output, residual add, the mean), and the matrices are the same bf16 values.
 * What remains: one-ulp flips where our fp32 sums differ from torch's in the last bits, and
 * the roundings inside the tiny reference's eager attention (q·kᵀ, then the probabilities,
 * rounded to bf16 before P·V) that our fused attention keeps in fp32 (the native reference's
 * flash-attention computes the logits in fp32 too). One bf16 rounding of a tensor is NMSE
 * ≈ 5e-6; the measured values are given next to each limit below. */
#include <string.h>

#include "connector.h"
#include "golden.h"
#include "vkc_half.h"
#include "vkc_ops_eltwise.h"

#define LIMIT_F32 1e-10
/* One layer: measured 1.3e-5 (the eager attention's logit rounding dominates). */
#define LIMIT_BF16_LAYER 1e-4
/* projector_1 + 2 layers + projectors, module and scenario goldens: measured ≤ 4e-5. */
#define LIMIT_BF16_FULL 2e-4

static VkcDevice *dev;
static DgConnector *conns[2]; /* [0] fp32, [1] bf16 */

static const char *
tag (int bf)
{
  return bf ? "bf16" : "fp32";
}

static VkcTensor
upload (DgArena *arena, const float *data, gint64 r, gint64 s, gint64 c)
{
  VkcTensor t;
  g_assert_true (DG_ACT (arena, &t, r, s, c));
  g_autoptr (GError) error = NULL;
  g_assert_true (vkc_tensor_upload (dev, &t, data, &error));
  return t;
}

static double
compare (const char *what, DgSafetensors *st, const char *name, const VkcTensor *got, double limit)
{
  gint64 s[8];
  guint nd;
  g_autofree float *want = golden_f32 (st, name, s, &nd);
  g_assert_cmpint (nd, ==, got->ndim);
  for (guint d = 0; d < nd; d++) g_assert_cmpint (s[d], ==, got->shape[d]);
  g_autoptr (GError) error = NULL;
  g_autofree float *g = dg_tensor_download_f32 (dev, got, &error);
  g_assert_no_error (error);
  return golden_compare (what, want, g, (gsize) vkc_tensor_numel (got), limit);
}

static DgSafetensors *
open_file (const char *fmt, int k, int bf)
{
  g_autofree char *base = k >= 0 ? g_strdup_printf (fmt, k) : g_strdup (fmt);
  g_autofree char *name = g_strdup_printf ("golden/%s_%s.safetensors", base, tag (bf));
  return golden_open (name);
}

/* ---- loading ------------------------------------------------------------------------------ */

static void
test_load (void)
{
  DgConnector *c = conns[0];
  g_assert_cmpuint (dg_connector_n_queries (c), ==, 8);
  g_assert_cmpuint (dg_connector_llm_hidden (c), ==, 32);
  g_assert_cmpuint (dg_connector_in_dim (c), ==, 6 * 32);
  g_assert_cmpuint (dg_connector_pooled_dim (c), ==, 24);
  g_assert_cmpuint (dg_connector_seq_dim (c), ==, 48);
  g_assert_cmpuint (dg_connector_config (c)->n_layers, ==, 2);

  /* Meta queries as stored (fp32), and rounded to bf16 in bf16 mode, on host and GPU. */
  g_autoptr (DgSafetensors) st = golden_open ("tiny-deepgen/connector");
  g_autofree float *want = golden_f32 (st, "meta_queries", NULL, NULL);
  for (int bf = 0; bf < 2; bf++) {
    const float *host = dg_connector_meta_queries_host (conns[bf]);
    g_autoptr (GError) error = NULL;
    g_autofree float *gpu = dg_tensor_download_f32 (dev, dg_connector_meta_queries (conns[bf]), &error);
    g_assert_no_error (error);
    for (guint i = 0; i < 8 * 32; i++) {
      float w = bf ? vkc_round_bf16 (want[i]) : want[i];
      g_assert_cmpfloat (host[i], ==, w);
      g_assert_cmpfloat (gpu[i], ==, w);
    }
  }
}

static void
expect_load_error (const char *relative, DgError code)
{
  g_autofree char *dir = golden_data_path (relative);
  g_autoptr (GError) error = NULL;
  g_assert_null (dg_connector_load (dev, dir, DG_PRECISION_F32, DG_WEIGHTS_RELEASED, &error));
  g_assert_error (error, DG_ERROR, code);
  g_test_message ("%s: %s", relative, error->message);
}

static void
test_load_errors (void)
{
  expect_load_error ("tiny-deepgen/no-such-connector", DG_ERROR_MISSING);
  /* The VAE folder: its config.json parses (defaults), its weights are not a connector's. */
  expect_load_error ("tiny-deepgen/vae", DG_ERROR_MISSING);
}

/* ---- module goldens ------------------------------------------------------------------------ */

static void
test_layer (gconstpointer data)
{
  int bf = GPOINTER_TO_INT (data);
  g_autoptr (DgSafetensors) st = open_file ("modules", -1, bf);
  gint64 s[8];
  g_autofree float *in = golden_f32 (st, "connector_layer.in", s, NULL);
  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  VkcTensor x = upload (arena, in, s[0], s[1], s[2]), y;
  g_autoptr (GError) error = NULL;
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
  dg_connector_forward_layer (conns[bf], cmd, arena, 0, &x, &y);
  golden_submit (cmd, arena, NULL);
  g_autofree char *what = g_strdup_printf ("connector_layer %s", tag (bf));
  compare (what, st, "connector_layer.out", &y, bf ? LIMIT_BF16_LAYER : LIMIT_F32);
}

static void
test_full (gconstpointer data)
{
  int bf = GPOINTER_TO_INT (data);
  g_autoptr (DgSafetensors) st = open_file ("modules", -1, bf);
  gint64 s[8];
  g_autofree float *in = golden_f32 (st, "connector_full.in", s, NULL);
  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  VkcTensor x = upload (arena, in, s[0], s[1], s[2]), pooled, seq;
  g_autoptr (GError) error = NULL;
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
  dg_connector_forward (conns[bf], cmd, arena, &x, &pooled, &seq);
  golden_submit (cmd, arena, NULL);
  g_autofree char *w1 = g_strdup_printf ("connector_full.pooled %s", tag (bf));
  g_autofree char *w2 = g_strdup_printf ("connector_full.seq %s", tag (bf));
  double limit = bf ? LIMIT_BF16_FULL : LIMIT_F32;
  compare (w1, st, "connector_full.pooled", &pooled, limit);
  compare (w2, st, "connector_full.seq", &seq, limit);
}

/* ---- scenarios ------------------------------------------------------------------------------ */

/* Keeps copies of the tapped tensors ("p1", "layer0", ...). */
typedef struct {
  DgArena *arena;
  GHashTable *copies; /* name → VkcTensor* */
} Taps;

static void
on_tap (VkcCmd *cmd, const char *name, const VkcTensor *t, gpointer user_data)
{
  Taps *taps = user_data;
  VkcTensor *copy = g_new (VkcTensor, 1);
  int64_t shape[VKC_MAX_DIMS];
  memcpy (shape, t->shape, sizeof shape);
  g_assert_true (dg_arena_tensor (taps->arena, copy, VKC_F32, t->ndim, shape));
  vkc_op_copy (cmd, copy, t);
  g_hash_table_insert (taps->copies, g_strdup (name), copy);
}

/* scb.merged, or (where the file leaves it out) cat(h35, h29, h23, h17, h11, h5) on the last
 * axis: the layer selection of MODEL.md §1.7. */
static float *
merged_input (DgSafetensors *st, gint64 *s)
{
  if (golden_has (st, "scb.merged"))
    return golden_f32 (st, "scb.merged", s, NULL);
  static const int layers[] = { 35, 29, 23, 17, 11, 5 };
  float *out = NULL;
  gint64 hs[8];
  for (guint i = 0; i < G_N_ELEMENTS (layers); i++) {
    g_autofree char *name = g_strdup_printf ("llm.h%d", layers[i]);
    g_autofree float *h = golden_f32 (st, name, hs, NULL);
    gint64 rows = hs[0] * hs[1], d = hs[2], n = G_N_ELEMENTS (layers);
    if (!out)
      out = g_new (float, rows *d *n);
    for (gint64 r = 0; r < rows; r++) memcpy (out + r * d * n + i * d, h + r * d, d * sizeof (float));
  }
  s[0] = hs[0];
  s[1] = hs[1];
  s[2] = hs[2] * G_N_ELEMENTS (layers);
  return out;
}

static void
test_scenarios (gconstpointer data)
{
  int bf = GPOINTER_TO_INT (data);
  double limit = bf ? LIMIT_BF16_FULL : LIMIT_F32;
  for (int k = 1; k <= 6; k++) {
    g_autoptr (DgSafetensors) st = open_file ("scenario%d", k, bf);
    gint64 s[8];
    g_autofree float *merged = merged_input (st, s);
    g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
    Taps taps = { arena, g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free) };
    dg_connector_set_tap (conns[bf], on_tap, &taps);
    VkcTensor x = upload (arena, merged, s[0], s[1], s[2]), pooled, seq;
    g_autoptr (GError) error = NULL;
    g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
    dg_connector_forward (conns[bf], cmd, arena, &x, &pooled, &seq);
    double ms;
    golden_submit (cmd, arena, &ms);
    dg_connector_set_tap (conns[bf], NULL, NULL);
    g_test_message ("scenario %d: rows %" G_GINT64_FORMAT ", tokens %" G_GINT64_FORMAT " (%s): %.1f ms", k, s[0], s[1],
                    tag (bf), ms);
    const char *taps_golden[][2] = { { "p1", "scb.p1" },
                                     { "layer0", "scb.conn.layer0" },
                                     { "layer1", "scb.conn.layer1" } };
    for (guint i = 0; i < G_N_ELEMENTS (taps_golden); i++) {
      if (!golden_has (st, taps_golden[i][1]))
        continue;
      VkcTensor *t = g_hash_table_lookup (taps.copies, taps_golden[i][0]);
      g_assert_nonnull (t);
      g_autofree char *what = g_strdup_printf ("s%d %s %s", k, taps_golden[i][1], tag (bf));
      compare (what, st, taps_golden[i][1], t, limit);
    }
    g_autofree char *w1 = g_strdup_printf ("s%d scb.pooled %s", k, tag (bf));
    g_autofree char *w2 = g_strdup_printf ("s%d scb.seq %s", k, tag (bf));
    compare (w1, st, "scb.pooled", &pooled, limit);
    compare (w2, st, "scb.seq", &seq, limit);
    g_hash_table_unref (taps.copies);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autoptr (GError) error = NULL;
  VkcDeviceOptions opt = VKC_DEVICE_OPTIONS_DEFAULT;
  opt.no_pipeline_cache = true;
  dev = vkc_device_new (&opt, &error);
  g_assert_no_error (error);
  g_autofree char *dir = golden_data_path ("tiny-deepgen/connector");
  for (int bf = 0; bf < 2; bf++) {
    conns[bf] = dg_connector_load (dev, dir, bf ? DG_PRECISION_BF16 : DG_PRECISION_F32, DG_WEIGHTS_RELEASED, &error);
    g_assert_no_error (error);
  }
  g_test_add_func ("/connector/load", test_load);
  g_test_add_func ("/connector/load-errors", test_load_errors);
  for (int bf = 0; bf < 2; bf++) {
    g_autofree char *p1 = g_strdup_printf ("/connector/%s/layer", tag (bf));
    g_autofree char *p2 = g_strdup_printf ("/connector/%s/full", tag (bf));
    g_autofree char *p3 = g_strdup_printf ("/connector/%s/scenarios", tag (bf));
    g_test_add_data_func (p1, GINT_TO_POINTER (bf), test_layer);
    g_test_add_data_func (p2, GINT_TO_POINTER (bf), test_full);
    g_test_add_data_func (p3, GINT_TO_POINTER (bf), test_scenarios);
  }
  int rc = g_test_run ();
  for (int bf = 0; bf < 2; bf++) dg_connector_free (conns[bf]);
  guint messages = vkc_device_validation_enabled (dev) ? vkc_device_validation_messages (dev) : 0;
  vkc_device_free (dev);
  g_assert_cmpuint (messages, ==, 0);
  return rc;
}
