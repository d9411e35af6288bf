/* Describe (model/vlm/describe.c) on the tiny model against transformers' greedy
 * Qwen2_5_VLForConditionalGeneration.generate (tests/data/describe/describe_fp32.json, written by
 * tests/golden/make_describe_golden.py): the chat-template prompt and its ids, the M-RoPE position
 * ids of get_rope_index over the whole final sequence, and the generated ids with their logits,
 * for the KV-cache path and for the plain path it replaces (the whole sequence again each token).
 *
 * Near-ties. A random tiny model's top two logits can be close; a flip there is not a bug. Each
 * step checks that our logits of the reference's top-1 and runner-up tokens are within
 * LOGIT_ATOL of the reference's values. When both are, our argmax can differ from the
 * reference's only if the reference's margin (top-1 − runner-up) is below 2·LOGIT_ATOL — so a
 * different id is accepted (and the comparison ends: the sequences diverge from there) only at
 * such a step, and fails the test everywhere else.
 *
 * LOGIT_ATOL: fp32 on both sides, only summation order differs (the LLM stack is within NMSE
 * 1e-12 of the reference, test_llm.c); the tiny model's logits are O(0.1–1). Measured here: see
 * the log line "largest logit difference" (1.1e-5 cached, 1.3e-5 plain, at logits of 15–21).
 * A wrong position moves them by far more: shifting the generated tokens' h position by one on
 * purpose moved step 1's logits by 1.7e-2 and failed the test. The golden's smallest margin is
 * 1.2e-2, so every step is compared (no near-tie in the committed file). */
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include <gdk-pixbuf/gdk-pixbuf.h>

#include "deepgen.h"
#include "describe.h"
#include "golden.h"
#include "image.h"
#include "plan.h"

#define LOGIT_ATOL 1e-4

typedef struct {
  gint32 id, runner_up;
  double logit, runner_up_logit;
} GoldStep;

typedef struct {
  JsonParser *parser;
  JsonObject *root;
  char *instruction, *prompt;
  guint max_new;
  GArray *prompt_ids, *generated; /* gint32 */
  GArray *steps;                  /* GoldStep */
  gint64 *positions;              /* [3, n_total] */
  guint n_total;
  gint64 grid[3];
} Gold;

static GArray *
int_array (JsonObject *o, const char *name)
{
  JsonArray *a = json_object_get_array_member (o, name);
  GArray *out = g_array_new (FALSE, FALSE, sizeof (gint32));
  for (guint i = 0; i < json_array_get_length (a); i++) {
    gint32 v = (gint32) json_array_get_int_element (a, i);
    g_array_append_val (out, v);
  }
  return out;
}

static void
gold_load (Gold *g)
{
  g_autofree char *path = golden_data_path ("describe/describe_fp32.json");
  g->parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_file (g->parser, path, &error));
  g_assert_no_error (error);
  g->root = json_node_get_object (json_parser_get_root (g->parser));
  g->instruction = g_strdup (json_object_get_string_member (g->root, "instruction"));
  g->prompt = g_strdup (json_object_get_string_member (g->root, "prompt"));
  g->max_new = (guint) json_object_get_int_member (g->root, "max_new_tokens");
  g->prompt_ids = int_array (g->root, "prompt_ids");
  g->generated = int_array (g->root, "generated");
  JsonArray *steps = json_object_get_array_member (g->root, "steps");
  g->steps = g_array_new (FALSE, FALSE, sizeof (GoldStep));
  for (guint i = 0; i < json_array_get_length (steps); i++) {
    JsonObject *s = json_array_get_object_element (steps, i);
    GoldStep st = { (gint32) json_object_get_int_member (s, "id"), (gint32) json_object_get_int_member (s, "runner_up"),
                    json_object_get_double_member (s, "logit"), json_object_get_double_member (s, "runner_up_logit") };
    g_array_append_val (g->steps, st);
  }
  JsonArray *pos = json_object_get_array_member (g->root, "position_ids");
  g->n_total = json_array_get_length (json_array_get_array_element (pos, 0));
  g->positions = g_new (gint64, 3 * (gsize) g->n_total);
  for (guint a = 0; a < 3; a++)
    for (guint i = 0; i < g->n_total; i++)
      g->positions[a * g->n_total + i] = json_array_get_int_element (json_array_get_array_element (pos, a), i);
  JsonArray *grid = json_object_get_array_member (g->root, "image_grid_thw");
  for (guint i = 0; i < 3; i++) g->grid[i] = json_array_get_int_element (grid, i);
}

static void
gold_clear (Gold *g)
{
  g_clear_object (&g->parser);
  g_free (g->instruction);
  g_free (g->prompt);
  g_array_unref (g->prompt_ids);
  g_array_unref (g->generated);
  g_array_unref (g->steps);
  g_free (g->positions);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Gold, gold_clear)

static DgImage *
load_png (const char *relative)
{
  g_autofree char *path = golden_data_path (relative);
  g_autoptr (GError) error = NULL;
  g_autoptr (GdkPixbuf) pb = gdk_pixbuf_new_from_file (path, &error);
  g_assert_no_error (error);
  int w = gdk_pixbuf_get_width (pb), h = gdk_pixbuf_get_height (pb), c = gdk_pixbuf_get_n_channels (pb);
  DgImage *img = dg_image_new (w, h, c);
  for (int y = 0; y < h; y++)
    memcpy (img->pixels + (gsize) y * img->rowstride,
            gdk_pixbuf_read_pixels (pb) + (gsize) y * gdk_pixbuf_get_rowstride (pb), (gsize) w * c);
  return img;
}

static DgTokenizer *
tiny_tokenizer (void)
{
  g_autofree char *dir = golden_data_path ("tiny-deepgen");
  g_autoptr (GError) error = NULL;
  DgTokenizer *tok = dg_tokenizer_load (dir, &error);
  g_assert_no_error (error);
  return tok;
}

static void
test_prompt (void)
{
  g_auto (Gold) g = { 0 };
  gold_load (&g);
  const guint n_image = (guint) (g.grid[0] * g.grid[1] * g.grid[2] / 4);
  g_autofree char *prompt = dg_describe_prompt (g.instruction, n_image);
  g_assert_cmpstr (prompt, ==, g.prompt);
  g_autoptr (DgTokenizer) tok = tiny_tokenizer ();
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_tokenizer_encode (tok, prompt, ids, &error));
  g_assert_cmpuint (ids->len, ==, g.prompt_ids->len);
  g_assert_cmpmem (ids->data, ids->len * 4, g.prompt_ids->data, g.prompt_ids->len * 4);
}

static void
test_positions (void)
{
  g_auto (Gold) g = { 0 };
  gold_load (&g);
  guint image_start = 0;
  while (g_array_index (g.prompt_ids, gint32, image_start) != 1012) image_start++; /* config image_token_id */
  DgVitGrid grid = { 0 };
  grid.merged_h = (guint) g.grid[1] / 2;
  grid.merged_w = (guint) g.grid[2] / 2;
  grid.n_tokens = grid.merged_h * grid.merged_w;
  g_autofree gint64 *pos = g_new (gint64, 3 * (gsize) g.n_total);
  dg_describe_positions (g.n_total, image_start, &grid, pos);
  for (guint a = 0; a < 3; a++)
    for (guint i = 0; i < g.n_total; i++)
      if (pos[a * g.n_total + i] != g.positions[a * g.n_total + i])
        g_error ("position_ids[%u][%u] = %" G_GINT64_FORMAT ", get_rope_index says %" G_GINT64_FORMAT, a, i,
                 pos[a * g.n_total + i], g.positions[a * g.n_total + i]);
}

typedef struct {
  GPtrArray *logits; /* float[vocab] per step */
  guint vocab;
} Kept;

static void
keep_logits (guint index, gint32 id, const float *logits, guint vocab, gpointer user_data)
{
  Kept *k = user_data;
  (void) id;
  g_assert_cmpuint (index, ==, k->logits->len);
  k->vocab = vocab;
  g_ptr_array_add (k->logits, g_memdup2 (logits, vocab * sizeof (float)));
}

/* Runs Describe on the golden image; *kept gets the logits of every step. */
static GArray *
describe (DgPrecision precision, gboolean plain, guint max_new, const char *instruction, Kept *kept)
{
  g_autoptr (GoldenFixture) f = golden_fixture_new ();
  g_autofree char *dir = golden_data_path ("tiny-deepgen/vlm");
  g_autoptr (GError) error = NULL;
  DgVlmOptions vo = DG_VLM_OPTIONS_INIT;
  vo.precision = precision;
  g_autoptr (DgVlm) vlm = dg_vlm_load (f->dev, dir, &vo, &error);
  g_assert_no_error (error);
  g_autoptr (DgTokenizer) tok = tiny_tokenizer ();
  g_autoptr (DgImage) img = load_png ("golden/ref_128x128.png");
  g_autofree float *pixels = g_new (float, (gsize) img->width * img->height * 3);
  dg_image_to_f32 (img, DG_LAYOUT_HWC, pixels);
  DgVlmImage image = { pixels, DG_LAYOUT_HWC, (guint) img->height, (guint) img->width };
  DgDescribeOptions opt = DG_DESCRIBE_OPTIONS_INIT;
  opt.instruction = instruction;
  opt.max_new_tokens = max_new;
  opt.plain = plain;
  opt.on_token = keep_logits;
  opt.user_data = kept;
  gint64 t0 = g_get_monotonic_time ();
  GArray *ids = dg_vlm_describe (vlm, tok, &image, &opt, &error);
  g_assert_no_error (error);
  g_test_message ("%s %s: %u tokens in %.2f s", precision == DG_PRECISION_F32 ? "fp32" : "bf16",
                  plain ? "plain" : "cached", ids->len, (double) (g_get_monotonic_time () - t0) / 1e6);
  return ids;
}

static void
check_against_golden (gboolean plain)
{
  g_auto (Gold) g = { 0 };
  gold_load (&g);
  Kept kept = { g_ptr_array_new_with_free_func (g_free), 0 };
  g_autoptr (GArray) ids = describe (DG_PRECISION_F32, plain, g.max_new, g.instruction, &kept);
  double worst = 0;
  guint compared = 0;
  for (guint i = 0; i < g.steps->len; i++) {
    const GoldStep *s = &g_array_index (g.steps, GoldStep, i);
    g_assert_cmpuint (i, <, kept.logits->len);
    const float *l = g_ptr_array_index (kept.logits, i);
    const double d1 = fabs (l[s->id] - s->logit), d2 = fabs (l[s->runner_up] - s->runner_up_logit);
    worst = MAX (worst, MAX (d1, d2));
    if (d1 > LOGIT_ATOL || d2 > LOGIT_ATOL)
      g_error ("step %u: logits of ids %d / %d are %.7g / %.7g, the reference's %.7g / %.7g (tolerance %g)", i, s->id,
               s->runner_up, l[s->id], l[s->runner_up], s->logit, s->runner_up_logit, LOGIT_ATOL);
    const gint32 got = i < ids->len ? g_array_index (ids, gint32, i) : -1;
    compared++;
    if (got == s->id || (i == ids->len && i == g.generated->len))
      continue;
    if (s->logit - s->runner_up_logit < 2 * LOGIT_ATOL) {
      g_test_message ("step %u: near-tie (margin %.3g < %.3g), sequences diverge here", i,
                      s->logit - s->runner_up_logit, 2 * LOGIT_ATOL);
      break;
    }
    g_error ("step %u: generated id %d, transformers %d (margin %.4g, not a near-tie)", i, got, s->id,
             s->logit - s->runner_up_logit);
  }
  if (compared == g.steps->len) {
    g_assert_cmpuint (ids->len, ==, g.generated->len);
    g_assert_cmpmem (ids->data, ids->len * 4, g.generated->data, g.generated->len * 4);
  }
  g_test_message ("%s: %u of %u steps compared, largest logit difference %.3g", plain ? "plain" : "cached", compared,
                  g.steps->len, worst);
  g_ptr_array_unref (kept.logits);
}

static void
test_golden_cached (void)
{
  check_against_golden (FALSE);
}

static void
test_golden_plain (void)
{
  check_against_golden (TRUE);
}

/* The fast path against the plain path it replaces, in the release precision. The two run the
 * same operations on differently shaped tensors, so our fp32 sums may differ in the last bits
 * and a bf16 rounding flip moves a logit by one bf16 ulp of its size; a few compound through the
 * layers. Every logit must be within BF16_ULPS ulps (at the largest logit's magnitude) of the
 * plain path's, and by the near-tie rule of the header the ids may differ only where the plain
 * path's top-2 margin is below twice that. Measured: one ulp (0.125 at logits of 16–32). */
#define BF16_ULPS 4

static double
bf16_ulp (double x)
{
  return ldexp (1.0, (int) floor (log2 (fabs (x) + 1e-30)) - 7);
}

static void
test_cached_equals_plain_bf16 (void)
{
  Kept a = { g_ptr_array_new_with_free_func (g_free), 0 }, b = { g_ptr_array_new_with_free_func (g_free), 0 };
  g_autoptr (GArray) fast = describe (DG_PRECISION_BF16, FALSE, 8, NULL, &a);
  g_autoptr (GArray) slow = describe (DG_PRECISION_BF16, TRUE, 8, NULL, &b);
  double worst = 0;
  guint compared = 0;
  for (guint i = 0; i < MIN (a.logits->len, b.logits->len); i++, compared++) {
    const float *x = g_ptr_array_index (a.logits, i), *y = g_ptr_array_index (b.logits, i);
    guint top = 0, second = top == 0 ? 1 : 0;
    for (guint v = 0; v < b.vocab; v++)
      if (y[v] > y[top])
        top = v;
    for (guint v = 0; v < b.vocab; v++)
      if (v != top && y[v] > y[second])
        second = v;
    const double tol = BF16_ULPS * bf16_ulp (y[top]);
    for (guint v = 0; v < a.vocab; v++) {
      worst = MAX (worst, fabs (x[v] - y[v]));
      if (fabs (x[v] - y[v]) > tol)
        g_error ("step %u: cached logit %u is %.6g, plain %.6g (tolerance %g)", i, v, x[v], y[v], tol);
    }
    const gint32 fi = i < fast->len ? g_array_index (fast, gint32, i) : -1;
    const gint32 si = i < slow->len ? g_array_index (slow, gint32, i) : -1;
    if (fi == si)
      continue;
    if (y[top] - y[second] >= 2 * tol)
      g_error ("step %u: cached id %d, plain id %d (plain margin %.4g, not a near-tie)", i, fi, si, y[top] - y[second]);
    g_test_message ("step %u: near-tie, the paths diverge here", i);
    break;
  }
  g_test_message ("bf16 cached vs plain: %u steps, largest logit difference %.3g", compared, worst);
  g_assert_cmpuint (compared, >, 0);
  g_ptr_array_unref (a.logits);
  g_ptr_array_unref (b.logits);
}

static void
test_bad_instruction (void)
{
  g_autoptr (GoldenFixture) f = golden_fixture_new ();
  g_autofree char *dir = golden_data_path ("tiny-deepgen/vlm");
  g_autoptr (GError) error = NULL;
  DgVlmOptions vo = DG_VLM_OPTIONS_INIT;
  vo.precision = DG_PRECISION_F32;
  g_autoptr (DgVlm) vlm = dg_vlm_load (f->dev, dir, &vo, &error);
  g_assert_no_error (error);
  g_autoptr (DgTokenizer) tok = tiny_tokenizer ();
  float pixels[32 * 32 * 3] = { 0 };
  DgVlmImage image = { pixels, DG_LAYOUT_HWC, 32, 32 };
  DgDescribeOptions opt = DG_DESCRIBE_OPTIONS_INIT;
  opt.instruction = "what is <|image_pad|> here";
  g_assert_null (dg_vlm_describe (vlm, tok, &image, &opt, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  DgVlmImage odd = { pixels, DG_LAYOUT_HWC, 30, 32 };
  g_assert_null (dg_vlm_describe (vlm, tok, &odd, NULL, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
}

/* The memory plan and FLOP count of Describe for DeepGen 1.0 at 512² (256 image tokens), from the
 * MODEL.md §2.1 shapes by hand: the encode stage of the same edit plus the output head
 * (151936 × 2048 bf16), the KV cache (36 layers × K and V × 384 tokens × 2 kv heads × 128 × 4
 * bytes) and the logits (151936 f32); per new token 5.549 GFLOP of linear layers
 * (2·36·(2·2048² + 2·2048·256 + 3·2048·11008)) + 0.622 of the head (2·2048·151936) + the
 * attention over the cache (4·36·2048 per cached token). */
static void
test_plan (void)
{
  g_autoptr (DgPlanModel) m = dg_plan_model_new ();
  const guint prompt = 307, max_new = 77;
  DgPlanRequest q = DG_PLAN_REQUEST_INIT;
  DgPlan d, e;
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_plan_describe (m, &q, 512, 512, prompt, max_new, &d, &error));
  g_assert_no_error (error);
  const int ref[2] = { 512, 512 };
  q.job = DG_JOB_EDIT;
  q.n_refs = 1;
  q.ref_sizes = ref;
  q.cfg = FALSE;
  q.steps = 1;
  q.seq_len = prompt + max_new;
  g_assert_true (dg_plan_compute (m, &q, &e, &error));
  const guint64 head = 151936ull * 2048 * 2, cache = 36ull * 2 * 384 * 256 * 4, logits = 151936ull * 4;
  g_assert_cmpuint (d.stage[DG_PLAN_ENCODE].weights, ==, e.stage[DG_PLAN_ENCODE].weights + head);
  g_assert_cmpuint (d.stage[DG_PLAN_ENCODE].activations, ==, e.stage[DG_PLAN_ENCODE].activations + cache + logits);
  g_assert_cmpuint (d.peak_stage, ==, DG_PLAN_ENCODE);
  g_assert_cmpuint (d.stage[DG_PLAN_DENOISE].total, ==, 0);
  g_assert_cmpuint (d.required, >, d.peak);
  const double per_token = 2.0 * 36 * (2.0 * 2048 * 2048 + 2.0 * 2048 * 256 + 3.0 * 2048 * 11008) + 2.0 * 2048 * 151936;
  const double attention = 4.0 * 36 * 2048 * (max_new * (double) prompt + max_new * (max_new + 1) / 2.0);
  const double decode = d.stage[DG_PLAN_ENCODE].flop - dg_plan_flops_vit (m, 512, 512) - dg_plan_flops_llm (m, prompt);
  g_assert_cmpfloat (fabs (decode - (max_new * per_token + attention)), <, 1e-9 * decode);
  g_test_message ("DeepGen 1.0, 512²: %.3f GFLOP per new token (+ %.3f for attention at 307 cached tokens); "
                  "ViT + prompt %.2f TFLOP; describe needs %.2f GiB",
                  per_token / 1e9, 4.0 * 36 * 2048 * 307 / 1e9,
                  (dg_plan_flops_vit (m, 512, 512) + dg_plan_flops_llm (m, prompt)) / 1e12, d.required / 1073741824.0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/describe/prompt", test_prompt);
  g_test_add_func ("/describe/positions", test_positions);
  g_test_add_func ("/describe/golden-cached", test_golden_cached);
  g_test_add_func ("/describe/golden-plain", test_golden_plain);
  g_test_add_func ("/describe/cached-equals-plain-bf16", test_cached_equals_plain_bf16);
  g_test_add_func ("/describe/bad-input", test_bad_instruction);
  g_test_add_func ("/describe/plan", test_plan);
  return g_test_run ();
}
