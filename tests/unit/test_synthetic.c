/* The synthetic DeepGen 1.0 (model/nn/synthetic.h) as the readers see it, without a GPU: its
 * configs are the built-in ones (and --layers changes only the layer counts), its tokenizer gives
 * Qwen2.5-VL's special ids and one id per byte, its weight sets hold every tensor of the layout
 * walks with the shapes the loaders expect, and the generated values are deterministic and have
 * the scales synthetic.h promises. */
#include <math.h>
#include <string.h>

#include "config.h"
#include "dg_error.h"
#include "dit_layout.h"
#include "llm_layout.h"
#include "plan.h"
#include "safetensors.h"
#include "synthetic.h"
#include "tokenizer.h"

static char *
path (guint layers, guint64 seed, const char *rest)
{
  g_autofree char *root = dg_synthetic_path (layers, seed);
  return rest ? g_strconcat (root, "/", rest, NULL) : g_steal_pointer (&root);
}

static void
test_configs (void)
{
  g_autoptr (GError) error = NULL;
  DgPlanModel real, one, read_full, read_one;
  dg_plan_model_deepgen_1_0 (&real);
  /* full depth: exactly the built-in DeepGen 1.0 */
  g_autofree char *full = path (0, 0, NULL);
  g_assert_true (dg_plan_model_load (&read_full, full, &error));
  g_assert_no_error (error);
  g_assert_true (memcmp (&read_full.vlm, &real.vlm, sizeof real.vlm) == 0);
  g_assert_true (memcmp (&read_full.connector, &real.connector, sizeof real.connector) == 0);
  g_assert_true (memcmp (&read_full.dit, &real.dit, sizeof real.dit) == 0);
  g_assert_true (memcmp (&read_full.vae, &real.vae, sizeof real.vae) == 0);
  g_assert_cmpuint (read_full.n_queries, ==, 128);
  g_assert_cmpuint (read_full.n_selected, ==, 6);

  /* one layer: real widths, one layer per component (the LLM two), the VAE whole */
  g_autofree char *layers1 = path (1, 0, NULL);
  g_assert_true (dg_plan_model_load (&read_one, layers1, &error));
  g_assert_no_error (error);
  dg_synthetic_plan_model (1, &one);
  g_assert_true (dg_plan_model_same_architecture (&read_one, &one));
  g_assert_cmpuint (one.vlm.text.n_layers, ==, 2);
  g_assert_cmpuint (one.vlm.text.hidden, ==, 2048);
  g_assert_cmpuint (one.vlm.vision.depth, ==, 1);
  g_assert_cmpuint (one.vlm.vision.n_fullatt, ==, 1);
  g_assert_cmpuint (one.vlm.vision.fullatt_block_indexes[0], ==, 0);
  g_assert_cmpuint (one.connector.n_layers, ==, 1);
  g_assert_cmpuint (one.connector.hidden, ==, 2048);
  g_assert_cmpuint (one.dit.n_layers, ==, 1);
  g_assert_cmpuint (one.dit.n_dual, ==, 1);
  g_assert_cmpuint (one.dit.inner_dim, ==, 1536);
  g_assert_cmpuint (one.dit.n_heads, ==, 24);
  g_assert_cmpuint (one.dit.pos_embed_max_size, ==, 384);
  g_assert_cmpuint (one.n_selected, ==, 1);
  g_assert_true (memcmp (&one.vae, &real.vae, sizeof real.vae) == 0);

  DgSchedulerConfig sched;
  g_autofree char *sp = path (1, 0, "scheduler");
  g_assert_true (dg_scheduler_config_load (sp, &sched, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (sched.shift, ==, 3.0);
  g_assert_false (sched.use_dynamic_shifting);
}

static void
test_tokenizer (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tp = path (1, 0, "tokenizer");
  g_autoptr (DgTokenizer) tok = dg_tokenizer_load (tp, &error);
  g_assert_no_error (error);
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_assert_true (dg_tokenizer_encode (tok, "<|im_start|>user\nab <|image_pad|><|vision_end|>", ids, &error));
  g_assert_no_error (error);
  const gint32 want[] = { 151644, 'u', 's', 'e', 'r', '\n', 'a', 'b', ' ', 151655, 151653 };
  g_assert_cmpuint (ids->len, ==, G_N_ELEMENTS (want));
  for (guint i = 0; i < ids->len; i++) g_assert_cmpint (g_array_index (ids, gint32, i), ==, want[i]);
  g_assert_cmpint (dg_tokenizer_pad_id (tok), ==, 151643);
  g_assert_cmpint (dg_tokenizer_token_id (tok, "<|vision_start|>"), ==, 151652);
}

static gboolean
expect_tensor (const DgLayoutTensor *t, gpointer data, GError **error)
{
  const DgSafetensors *st = data;
  if (t->kind == DG_LAYOUT_COMPUTED)
    return TRUE;
  g_autofree char *name = g_strconcat (strstr (dg_safetensors_display_name (st), "vlm") ? "model." : "", t->name, NULL);
  return dg_safetensors_expect (st, name, DG_DTYPES_FLOAT, t->ndim, t->shape, error) != NULL;
}

static void
moments (const float *x, gsize n, double *mean, double *std)
{
  double s = 0, s2 = 0;
  for (gsize i = 0; i < n; i++) {
    s += x[i];
    s2 += (double) x[i] * x[i];
  }
  *mean = s / n;
  *std = sqrt (s2 / n - *mean * *mean);
}

static void
test_weights (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dp = path (1, 3, "transformer"), *dp_again = path (1, 3, "transformer");
  g_autofree char *dp_other = path (1, 4, "transformer");
  g_autoptr (DgSafetensors) dit = dg_safetensors_open (dp, &error);
  g_assert_no_error (error);
  DgPlanModel m;
  dg_synthetic_plan_model (1, &m);
  /* every tensor the loader reads, with its shape */
  g_assert_true (dg_dit_layout_weights (&m.dit, expect_tensor, dit, &error));
  g_assert_no_error (error);

  /* a Linear weight: LeCun normal, made on demand, the same for the same seed */
  const DgTensorInfo *q = dg_safetensors_find (dit, "transformer_blocks.0.attn.to_q.weight");
  g_assert_nonnull (q);
  g_assert_true (q->generated);
  g_assert_null (q->data);
  const gsize n = (gsize) q->n_elements;
  g_autofree float *a = g_new (float, n), *b = g_new (float, n), *c = g_new (float, n);
  g_assert_true (dg_tensor_to_f32 (q, a, &error));
  g_autoptr (DgSafetensors) again = dg_safetensors_open (dp_again, &error);
  g_autoptr (DgSafetensors) other = dg_safetensors_open (dp_other, &error);
  g_assert_no_error (error);
  g_assert_true (dg_tensor_to_f32 (dg_safetensors_find (again, q->name), b, &error));
  g_assert_true (dg_tensor_to_f32 (dg_safetensors_find (other, q->name), c, &error));
  g_assert_true (memcmp (a, b, n * sizeof (float)) == 0);
  g_assert_false (memcmp (a, c, n * sizeof (float)) == 0);
  double mean, std;
  moments (a, n, &mean, &std);
  g_test_message ("to_q: mean %g std %g (want 0, %g)", mean, std, 1 / sqrt (1536.0));
  g_assert_cmpfloat (fabs (mean), <, 1e-3);
  g_assert_cmpfloat (fabs (std * sqrt (1536.0) - 1), <, 0.01);
  /* bf16 is the f32 values rounded */
  g_autofree guint16 *h = g_new (guint16, n);
  g_assert_true (dg_tensor_to_bf16 (q, h, &error));
  for (gsize i = 0; i < n; i += 997) g_assert_cmpuint (h[i], ==, dg_f32_to_bf16 (a[i]));

  /* a norm weight is 1; a bias small */
  const DgTensorInfo *norm = dg_safetensors_find (dit, "transformer_blocks.0.attn.norm_q.weight");
  float ones[64];
  g_assert_true (dg_tensor_to_f32 (norm, ones, &error));
  for (guint i = 0; i < 64; i++) g_assert_cmpfloat (ones[i], ==, 1.0f);

  /* the position table is read in place: made when the set is opened */
  const DgTensorInfo *pos = dg_safetensors_find (dit, "pos_embed.pos_embed");
  g_assert_nonnull (pos);
  g_assert_false (pos->generated);
  g_assert_nonnull (pos->data);
  g_assert_cmpint (pos->shape[1], ==, 384 * 384);

  /* the VLM: the LLM under "model.", its embedding table in memory */
  g_autofree char *vp = path (1, 3, "vlm");
  g_autoptr (DgSafetensors) vlm = dg_safetensors_open (vp, &error);
  g_assert_no_error (error);
  g_assert_true (dg_llm_layout_weights (&m.vlm.text, expect_tensor, vlm, &error));
  g_assert_no_error (error);
  const DgTensorInfo *embed = dg_safetensors_find (vlm, "model.embed_tokens.weight");
  g_assert_nonnull (embed->data);
  g_assert_nonnull (dg_safetensors_find (vlm, "visual.patch_embed.proj.weight"));
}

static void
test_errors (void)
{
  g_autoptr (GError) error = NULL;
  g_assert_null (dg_safetensors_open ("synthetic:layers=1,colour=red/vlm", &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (dg_safetensors_open ("synthetic:layers=1/lora", &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_MISSING);
  g_clear_error (&error);
  DgDitConfig cfg;
  g_assert_false (dg_dit_config_load ("synthetic:layers=1/transformer/other.json", &cfg, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_MISSING);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  dg_synthetic_register ();
  g_test_add_func ("/synthetic/configs", test_configs);
  g_test_add_func ("/synthetic/tokenizer", test_tokenizer);
  g_test_add_func ("/synthetic/weights", test_weights);
  g_test_add_func ("/synthetic/errors", test_errors);
  return g_test_run ();
}
