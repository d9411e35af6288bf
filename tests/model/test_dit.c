/* The DiT (model/dit/dit.h) against the diffusers goldens of tests/data/golden (tiny DeepGen DiT:
 * D = 32, 2 heads of 16, 4 blocks: 0–1 dual, 2 plain, 3 context_pre_only):
 *  - modules_{fp32,bf16}: patch embedding at three sizes (centre crops), timestep + pooled
 *    embedding, the dual / plain / last blocks with and without reference tokens (right padding
 *    and the pad-self mask), the whole DiT with and without references;
 *  - scenario{1..6}_{fp32,bf16}: the whole denoising loop from the golden SCB outputs, reference
 *    latents and initial noise, recorded once and resubmitted per step, compared at every step
 *    (raw v, guided v, latents) and, where dumped, block by block;
 *  - the position table recomputed like diffusers equals the stored one;
 *  - bad inputs end in DG_ERROR_INVALID_ARGUMENT, bad folders in errors.
 *
 * NMSE limits (Σ(got − want)² / Σwant²) — why these numbers:
 *  - fp32 mode, LIM_F32 = 1e-9 everywhere: the same fp32 math as torch with other summation
 *    orders (tiled GEMMs, online-softmax attention, two-pass norms) and the GPU's exp/tanh/sin:
 *    a few 1e-7 relative per op, growing through 4 blocks and up to 4 free-running steps;
 *    measured ≤ 2e-11 (the timestep sinusoid at t = 1000, where the GPU's sin of an argument
 *    of 1000 is good to ~3e-5 absolute, and the guided velocities). A wrong index, chunk order
 *    or mask gives ≥ 1e-4: five orders of magnitude apart.
 *  - bf16 mode: the reference rounds every intermediate to bf16 (relative step 2^-8, rounding
 *    noise ≈ 5e-6 NMSE per rounded tensor). We round at the same tensors, including each step
 *    of x·(1+s)+t and x+g·y (vkc_ops_adaln), so what remains is (a) summation order flipping
 *    near-ties, (b) torch's CPU flash attention rounding the softmax probabilities to bf16
 *    before P·V, which our fp32 attention does not: once one value differs by an ulp, later
 *    roundings are independent noise. Measured: patch and time embeddings bit-exact (NMSE 0),
 *    single blocks ≤ 1e-5 → LIM_BF16 = 5e-5; the whole DiT and the raw velocity of the loop
 *    ≤ 4.2e-5 → LIM_BF16_DIT = 8e-5. For scale: the fp32 reference itself is 1.2e-4 (whole
 *    DiT) to 2.4e-3 (scenario 3 velocity) away from the bf16 reference, so LIM_BF16_DIT fails
 *    an implementation that ignores the bf16 policy (test_full checks that our fp32 mode on the
 *    same bf16 inputs does fail it).
 *  - guided velocity and latents, LIM_BF16_CFG = 2e-3: v_u + g·(v_c − v_u) with g = 4 weighs
 *    the independent errors of the two rows by (1 − g)² + g² = 25 while the signal stays about
 *    |v| (v_c ≈ v_u in a random-weight model), so NMSE grows up to 25× (measured 15×: 4e-4
 *    from 2.6e-5); the loop runs free (our latents feed the next step). Measured ≤ 1.2e-3;
 *    the fp32 reference is 5e-4 .. 2.6e-3 away from the bf16 one on the same tensors.
 *  - q8_0 weights (DG_WEIGHTS_Q8_0, fp32 activations) against the fp32 golden, LIM_Q8_DIT = 1e-3:
 *    rounding a block of 32 weights to steps of d = max|w| / 127 leaves errors uniform in
 *    ±d/2, a weight NMSE of (max|w| / σ)² / (12 · 127²): 1.5e-5 for the tiny model's uniform
 *    init (max ≈ √3 σ), 2.2e-5 for Gaussian weights. Each Linear's output inherits that NMSE;
 *    the whole DiT puts about 25 Linears in series (embeddings, per block AdaLN, q/k/v, out and
 *    the two FF layers), so even errors adding up in full stay below 25 · 2.2e-5 = 5.5e-4; the
 *    residual stream dilutes most of it. A wrong scale, block order or sign gives NMSE ≥ 1e-1,
 *    and unquantized weights give ≤ LIM_F32, which the test also rules out. */
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "config.h"
#include "dit.h"
#include "golden.h"
#include "scheduler.h"
#include "vkc_half.h"
#include "vkc_ops_adaln.h"
#include "vkc_ops_attention.h"
#include "vkc_ops_conv.h"
#include "vkc_ops_eltwise.h"

#define LIM_F32 1e-9
#define LIM_BF16 5e-5
#define LIM_BF16_DIT 8e-5
#define LIM_BF16_CFG 2e-3
#define LIM_Q8_DIT 1e-3

static VkcDevice *dev;
static DgDit *dits[3]; /* [0] fp32, [1] bf16, [2] fp32 with q8_0 Linear weights */
static const char *const tag[3] = { "fp32", "bf16", "q8_0" };

static double
limit_for (int bf)
{
  return bf ? LIM_BF16 : LIM_F32;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static VkcTensor
upload (DgArena *arena, const float *data, int ndim, const int64_t *shape)
{
  VkcTensor t;
  g_assert_true (dg_arena_tensor (arena, &t, VKC_F32, ndim, shape));
  g_autoptr (GError) error = NULL;
  if (data)
    g_assert_true (vkc_tensor_upload (dev, &t, data, &error));
  return t;
}

static VkcTensor
upload_golden (DgArena *arena, DgSafetensors *st, const char *name)
{
  gint64 shape[8];
  guint ndim;
  g_autofree float *h = golden_f32 (st, name, shape, &ndim);
  int64_t s[4];
  for (guint d = 0; d < ndim; d++) s[d] = shape[d];
  return upload (arena, h, (int) ndim, s);
}

/* A golden NCHW latent [B, C, h, w] (or [C, h, w]) uploaded as NHWC [B, h, w, C]. */
static VkcTensor
upload_latent (DgArena *arena, DgSafetensors *st, const char *name)
{
  gint64 shape[8];
  guint ndim;
  g_autofree float *h = golden_f32 (st, name, shape, &ndim);
  gint64 b = ndim == 4 ? shape[0] : 1, o = ndim == 4 ? 1 : 0;
  g_autofree float *nhwc = golden_nchw_to_nhwc (h, b, shape[o], shape[o + 1], shape[o + 2]);
  return upload (arena, nhwc, 4, (const int64_t[]) { b, shape[o + 1], shape[o + 2], shape[o] });
}

static void
submit (VkcCmd *cmd)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (vkc_cmd_submit_wait (cmd, &error));
  g_assert_no_error (error);
}

static float *
download (const VkcTensor *t)
{
  g_autoptr (GError) error = NULL;
  float *h = dg_tensor_download_f32 (dev, t, &error);
  g_assert_no_error (error);
  return h;
}

static double
compare (const char *what, DgSafetensors *st, const char *name, const float *got, double limit)
{
  gint64 shape[8];
  guint ndim;
  g_autofree float *want = golden_f32 (st, name, shape, &ndim);
  gsize n = 1;
  for (guint d = 0; d < ndim; d++) n *= (gsize) shape[d];
  g_autofree char *label = g_strdup_printf ("%s %s", what, name);
  return golden_compare (label, want, got, n, limit);
}

/* Compares image-token tensors [B, L, D] on the valid tokens only (the values of padding
 * tokens are irrelevant: they never reach a valid token). */
static double
compare_valid (const char *what, const float *want, const float *got_in, gint64 B, gint64 L, gint64 D,
               const guint8 *valid, double limit)
{
  g_autofree float *got = g_memdup2 (got_in, (gsize) (B * L * D) * sizeof (float));
  for (gint64 i = 0; i < B * L; i++)
    if (valid && !valid[i])
      memcpy (got + i * D, want + i * D, (gsize) D * sizeof (float));
  return golden_compare (what, want, got, (gsize) (B * L * D), limit);
}

/* Observer: a copy of every observed tensor, made at its point in the command stream. */
typedef struct {
  DgArena *arena;
  GHashTable *t; /* name → VkcTensor* */
} Capture;

static void
capture_cb (VkcCmd *cmd, const char *name, const VkcTensor *t, gpointer user)
{
  Capture *c = user;
  VkcTensor *copy = g_new0 (VkcTensor, 1);
  g_assert_true (dg_arena_tensor (c->arena, copy, VKC_F32, t->ndim, t->shape));
  vkc_op_copy (cmd, copy, t);
  g_hash_table_replace (c->t, g_strdup (name), copy);
}

static Capture *
capture_new (DgArena *arena)
{
  Capture *c = g_new0 (Capture, 1);
  c->arena = arena;
  c->t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return c;
}

static void
capture_free (Capture *c)
{
  g_hash_table_destroy (c->t);
  g_free (c);
}

static float *
captured (Capture *c, const char *name)
{
  VkcTensor *t = g_hash_table_lookup (c->t, name);
  g_assert_nonnull (t);
  return download (t);
}

/* ---- modules --------------------------------------------------------------------------- */

static void
test_patch_embed (void)
{
  static const int sizes[3][2] = { { 16, 16 }, { 20, 24 }, { 26, 14 } };
  for (int bf = 0; bf < 2; bf++) {
    g_autofree char *file = g_strdup_printf ("golden/modules_%s.safetensors", tag[bf]);
    g_autoptr (DgSafetensors) st = golden_open (file);
    g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
    for (int k = 0; k < 3; k++) {
      int h = sizes[k][0], w = sizes[k][1];
      g_autofree char *in = g_strdup_printf ("patch_embed.%dx%d.in", h, w);
      g_autofree char *out = g_strdup_printf ("patch_embed.%dx%d.out", h, w);
      VkcTensor x = upload_latent (arena, st, in);
      VkcTensor tok;
      g_assert_true (DG_ACT (arena, &tok, 1, (h / 2) * (w / 2), 32));
      g_autoptr (GError) error = NULL;
      g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
      g_assert_true (dg_dit_patch_embed (dits[bf], cmd, arena, &x, &tok, &error));
      g_assert_no_error (error);
      submit (cmd);
      g_autofree float *got = download (&tok);
      compare (tag[bf], st, out, got, limit_for (bf));
    }
  }
}

static void
test_time_embed (void)
{
  for (int bf = 0; bf < 2; bf++) {
    g_autofree char *file = g_strdup_printf ("golden/modules_%s.safetensors", tag[bf]);
    g_autoptr (DgSafetensors) st = golden_open (file);
    g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
    Capture *cap = capture_new (arena);
    dg_dit_set_observer (dits[bf], capture_cb, cap);
    VkcTensor t = upload_golden (arena, st, "timestep_embed.t");
    VkcTensor pooled = upload_golden (arena, st, "timestep_embed.pooled");
    VkcTensor temb;
    g_assert_true (DG_ACT (arena, &temb, 3, 32));
    g_autoptr (GError) error = NULL;
    g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
    g_assert_true (dg_dit_time_embed (dits[bf], cmd, arena, &t, &pooled, &temb, &error));
    submit (cmd);
    dg_dit_set_observer (dits[bf], NULL, NULL);
    g_autofree float *sinus = captured (cap, "time.sinusoid");
    g_autofree float *temb_t = captured (cap, "time.timestep_emb");
    g_autofree float *out = download (&temb);
    /* The sinusoid is fp32 in both files (time_proj ignores the module dtype). */
    compare (tag[bf], st, "timestep_embed.sinusoid", sinus, LIM_F32);
    compare (tag[bf], st, "timestep_embed.timestep_emb", temb_t, limit_for (bf));
    compare (tag[bf], st, "timestep_embed.out", out, limit_for (bf));
    capture_free (cap);
  }
}

/* Blocks 0 (dual), 2 (plain) and 3 (last) on 20 image + 7 context tokens, and on 36 image
 * tokens where row 1 has 8 padding tokens. */
static void
test_blocks (void)
{
  static const struct {
    guint layer;
    const char *name;
  } blocks[] = { { 0, "dual" }, { 2, "plain" }, { 3, "last" } };
  for (int bf = 0; bf < 2; bf++) {
    g_autofree char *file = g_strdup_printf ("golden/modules_%s.safetensors", tag[bf]);
    g_autoptr (DgSafetensors) st = golden_open (file);
    gint64 vshape[8];
    g_autofree gint64 *valid64 = golden_i64 (st, "dit_block_ref.img_valid", vshape, NULL);
    const gint64 B = vshape[0], L = vshape[1], S = 7, D = 32;
    g_autofree guint32 *kv = g_new (guint32, B * (L + S));
    for (gint64 b = 0; b < B; b++)
      for (gint64 i = 0; i < L + S; i++) kv[b * (L + S) + i] = i < L ? (guint32) valid64[b * L + i] : 1;
    for (gsize k = 0; k < G_N_ELEMENTS (blocks); k++)
      for (int ref = 0; ref < 2; ref++) {
        g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
        const char *set = ref ? "dit_block_ref" : "dit_block";
        g_autofree char *img_in = g_strdup_printf ("%s.img", set);
        VkcTensor img = upload_golden (arena, st, img_in);
        VkcTensor ctx = upload_golden (arena, st, "dit_block.ctx");
        VkcTensor temb = upload_golden (arena, st, "dit_block.temb");
        VkcTensor key_valid;
        if (ref) {
          g_assert_true (dg_arena_tensor (arena, &key_valid, VKC_U32, 2, (const int64_t[]) { B, L + S }));
          g_assert_true (vkc_tensor_upload (dev, &key_valid, kv, NULL));
        }
        g_autoptr (GError) error = NULL;
        g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
        g_assert_true (
            dg_dit_block (dits[bf], cmd, arena, blocks[k].layer, &img, &ctx, &temb, ref ? &key_valid : NULL, &error));
        submit (cmd);
        g_autofree float *got_img = download (&img);
        g_autofree float *got_ctx = download (&ctx);
        g_autofree char *on = g_strdup_printf ("%s.%s.img", set, blocks[k].name);
        g_autofree float *want = golden_f32 (st, on, NULL, NULL);
        g_autofree char *what = g_strdup_printf ("%s %s", tag[bf], on);
        /* All tokens, padding included: a pad token attends only to itself (the diagonal rule of
         * §5.3), so its values are defined and must match as well. */
        compare_valid (what, want, got_img, B, img.shape[1], D, NULL, limit_for (bf));
        g_autofree char *cn = g_strdup_printf ("%s.%s.ctx", set, blocks[k].name);
        if (golden_has (st, cn))
          compare (tag[bf], st, cn, got_ctx, limit_for (bf));
      }
  }
}

/* The whole DiT: latents [2, 16, 16, 20], 9 context tokens; with references row 0 has one of the
 * target's size, row 1 two smaller ones of other shapes (so row 1 is padded).
 * Runs the DiT of precision `mode` on the inputs of the modules_<bf> file; compares with that
 * file when mode == bf, else only returns the NMSE. */
static float *
run_full (int mode, int bf, int ref, double *nmse)
{
  g_autofree char *file = g_strdup_printf ("golden/modules_%s.safetensors", tag[bf]);
  g_autoptr (DgSafetensors) st = golden_open (file);
  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  VkcTensor x = upload_latent (arena, st, "dit_full.latent");
  VkcTensor ctx = upload_golden (arena, st, "dit_full.ctx");
  VkcTensor pooled = upload_golden (arena, st, "dit_full.pooled");
  VkcTensor t = upload_golden (arena, st, "dit_full.timestep");
  VkcTensor r[3] = { upload_latent (arena, st, "dit_full_ref.ref0"), upload_latent (arena, st, "dit_full_ref.ref1"),
                     upload_latent (arena, st, "dit_full_ref.ref2") };
  const VkcTensor *refs[3] = { &r[0], &r[1], &r[2] };
  const guint n_refs[2] = { 1, 2 };
  VkcTensor out;
  g_assert_true (DG_ACT (arena, &out, 2, 16, 20, 16));
  DgDitInput in = { .latents = &x,
                    .timestep = &t,
                    .context = &ctx,
                    .pooled = &pooled,
                    .n_refs = ref ? n_refs : NULL,
                    .refs = ref ? refs : NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
  guint64 before = vkc_pool_used (arena->pool);
  g_assert_true (dg_dit_forward (dits[mode], cmd, arena, &in, &out, &error));
  g_assert_no_error (error);
  /* The planner's figure is what the forward took from the arena, up to alignment slack. */
  guint64 used = vkc_pool_used (arena->pool) - before;
  guint64 plan = dg_dit_activation_bytes (dg_dit_config (dits[mode]), 2, ref ? 160 : 80, 9);
  g_test_message ("activations: planned %" G_GUINT64_FORMAT " B, used %" G_GUINT64_FORMAT " B", plan, used);
  g_assert_cmpuint (used, >=, plan - (ref ? 0 : 2 * 89 * 4)); /* no key mask without padding */
  g_assert_cmpuint (used, <=, plan + 20 * 256);
  gint64 t0 = g_get_monotonic_time ();
  submit (cmd);
  g_test_message ("%s dit_full%s: %u dispatches, %u barriers, %.1f ms", tag[mode], ref ? "_ref" : "",
                  vkc_cmd_n_dispatches (cmd), vkc_cmd_n_barriers (cmd), (g_get_monotonic_time () - t0) / 1e3);
  g_autofree float *nhwc = download (&out);
  float *got = golden_nhwc_to_nchw (nhwc, 2, 16, 20, 16);
  const char *name = ref ? "dit_full_ref.out" : "dit_full.out";
  if (mode == bf) {
    compare (tag[bf], st, name, got, bf ? LIM_BF16_DIT : LIM_F32);
  } else {
    g_autofree float *want = golden_f32 (st, name, NULL, NULL);
    double num = 0, den = 0;
    for (gsize i = 0; i < 2 * 16 * 16 * 20; i++) {
      num += ((double) got[i] - want[i]) * ((double) got[i] - want[i]);
      den += (double) want[i] * want[i];
    }
    *nmse = num / den;
  }
  return got;
}

/* q8_0 weights: the whole DiT within the quantization noise of the fp32 golden (LIM_Q8_DIT). */
static void
test_full_q8 (void)
{
  for (int ref = 0; ref < 2; ref++) {
    double nmse;
    g_free (run_full (2, 0, ref, &nmse));
    g_test_message ("q8_0 weights vs the fp32 golden%s: nmse %.3g (limit %.1g)", ref ? " (refs)" : "", nmse,
                    LIM_Q8_DIT);
    g_assert_cmpfloat (nmse, <=, LIM_Q8_DIT);
    g_assert_cmpfloat (nmse, >, LIM_F32); /* the weights really were quantized */
  }
}

static void
test_full (void)
{
  for (int bf = 0; bf < 2; bf++)
    for (int ref = 0; ref < 2; ref++) g_free (run_full (bf, bf, ref, NULL));
  /* Negative control: fp32 arithmetic on the bf16 inputs must miss the bf16 limit. */
  for (int ref = 0; ref < 2; ref++) {
    double nmse;
    g_free (run_full (0, 1, ref, &nmse));
    g_test_message ("fp32 mode vs the bf16 golden%s: nmse %.3g (must exceed %.1g)", ref ? " (refs)" : "", nmse,
                    LIM_BF16_DIT);
    g_assert_cmpfloat (nmse, >, LIM_BF16_DIT);
  }
}

/* Large images exceed one storage binding (128 MiB on lavapipe) and every launcher then splits
 * its work. Lowering all binding limits to 24 KiB (one row of keys, 21.6 KB, must still fit)
 * makes the tiny DiT take those paths (per batch row, per token range, per band); the splits cut
 * rows, never a sum, so the result must be bit-identical. */
static void
test_split_bindings (void)
{
  for (int bf = 0; bf < 2; bf++) {
    g_autofree float *whole = run_full (bf, bf, 1, NULL);
    const VkDeviceSize limit = 24 << 10;
    VkcAttnTuning tuning = VKC_ATTN_TUNING_DEFAULT;
    tuning.max_binding = limit;
    vkc_attention_set_tuning (&tuning);
    vkc_eltwise_set_binding_limit (limit);
    vkc_conv_set_binding_limit (limit);
    vkc_adaln_set_binding_limit (limit);
    g_autofree float *split = run_full (bf, bf, 1, NULL);
    vkc_attention_set_tuning (NULL);
    vkc_eltwise_set_binding_limit (0);
    vkc_conv_set_binding_limit (0);
    vkc_adaln_set_binding_limit (0);
    g_assert_cmpmem (whole, 2 * 16 * 16 * 20 * sizeof (float), split, 2 * 16 * 16 * 20 * sizeof (float));
  }
}

/* ---- the denoising loop of the scenarios ------------------------------------------------ */

typedef struct {
  gint64 B, S, h, w; /* B prompts → 2B DiT rows */
  guint *n_refs;     /* per DiT row */
  VkcTensor *refs;   /* per DiT row, in order */
  guint n_refs_total;
} Scenario;

/* Reference lists of the scenario from the manifest: prompt row r has refs[r]; the DiT rows
 * [uncond_1..B, cond_1..B] both use row r's list (cond_latents = cond_rows × 2). */
static void
scenario_refs (JsonObject *sc, DgArena *arena, DgSafetensors *st, Scenario *s)
{
  s->n_refs = g_new0 (guint, 2 * s->B);
  JsonNode *rn = json_object_get_member (sc, "refs");
  if (JSON_NODE_HOLDS_NULL (rn))
    return;
  JsonArray *rows = json_node_get_array (rn);
  g_autofree guint *first = g_new (guint, s->B);
  guint flat = 0;
  for (gint64 r = 0; r < s->B; r++) {
    first[r] = flat;
    flat += json_array_get_length (json_array_get_array_element (rows, (guint) r));
  }
  g_autofree VkcTensor *lat = g_new (VkcTensor, flat);
  for (guint i = 0; i < flat; i++) {
    g_autofree char *name = g_strdup_printf ("vae.ref_latent.%u", i);
    lat[i] = upload_latent (arena, st, name);
  }
  s->refs = g_new (VkcTensor, 2 * flat);
  for (gint64 row = 0; row < 2 * s->B; row++) {
    gint64 r = row % s->B;
    s->n_refs[row] = json_array_get_length (json_array_get_array_element (rows, (guint) r));
    for (guint j = 0; j < s->n_refs[row]; j++) s->refs[s->n_refs_total++] = lat[first[r] + j];
  }
}

/* Rows [B:] then [:B] of a [2B, ...] golden (LLM order cond, uncond → DiT order uncond, cond). */
static float *
swap_halves (const float *x, gint64 B, gsize per_row)
{
  float *y = g_new (float, 2 * B * per_row);
  memcpy (y, x + B * per_row, B * per_row * sizeof (float));
  memcpy (y + B * per_row, x, B * per_row * sizeof (float));
  return y;
}

static void
compare_blocks (const char *what, DgSafetensors *st, guint step, Capture *cap, guint n_layers)
{
  g_autofree char *bn = g_strdup_printf ("dit.step%u.block0.img", step);
  if (!golden_has (st, bn))
    return;
  gint64 vs[8];
  g_autofree gint64 *v64 = golden_i64 (st, "dit.step0.img_valid", vs, NULL); /* one layout for all steps */
  g_autofree guint8 *valid = g_new (guint8, vs[0] * vs[1]);
  for (gint64 i = 0; i < vs[0] * vs[1]; i++) valid[i] = (guint8) v64[i];
  for (guint b = 0; b <= n_layers; b++) {
    const char *names[2] = { "img", "ctx" };
    for (int k = 0; k < 2; k++) {
      g_autofree char *gname = b == n_layers ? g_strdup_printf ("dit.step%u.%s_in", step, names[k])
                                             : g_strdup_printf ("dit.step%u.block%u.%s", step, b, names[k]);
      g_autofree char *cname =
          b == n_layers ? g_strdup_printf ("%s_in", names[k]) : g_strdup_printf ("block%u.%s", b, names[k]);
      if (!golden_has (st, gname))
        continue;
      gint64 shape[8];
      g_autofree float *want = golden_f32 (st, gname, shape, NULL);
      g_autofree float *got = captured (cap, cname);
      g_autofree char *label = g_strdup_printf ("%s %s", what, gname);
      compare_valid (label, want, got, shape[0], shape[1], shape[2], k == 0 ? valid : NULL, LIM_F32);
    }
  }
}

static void
run_scenario (JsonObject *sc, int bf)
{
  const gint64 id = json_object_get_int_member (sc, "id");
  const DgPrecision prec = bf ? DG_PRECISION_BF16 : DG_PRECISION_F32;
  const double guidance = json_object_get_double_member (sc, "guidance");
  g_autofree char *file = g_strdup_printf ("golden/scenario%" G_GINT64_FORMAT "_%s.safetensors", id, tag[bf]);
  g_autoptr (DgSafetensors) st = golden_open (file);
  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  DgDit *dit = dits[bf];
  const DgDitConfig *cfg = dg_dit_config (dit);
  const gint64 C = cfg->in_channels;

  Scenario s = { .B = json_object_get_int_member (sc, "batch") };
  gint64 shape[8];
  g_autofree float *noise = golden_f32 (st, "dit.noise0", shape, NULL);
  s.h = shape[2];
  s.w = shape[3];
  const gsize per_row = (gsize) (s.h * s.w * C), n_lat = s.B * per_row;
  g_autofree float *lat = golden_nchw_to_nhwc (noise, s.B, C, s.h, s.w);
  g_autofree float *seq = golden_f32 (st, "scb.seq", shape, NULL);
  s.S = shape[1];
  g_autofree float *seq_d = swap_halves (seq, s.B, (gsize) (s.S * shape[2]));
  g_autofree float *pooled = golden_f32 (st, "scb.pooled", shape, NULL);
  g_autofree float *pooled_d = swap_halves (pooled, s.B, (gsize) shape[1]);
  scenario_refs (sc, arena, st, &s);

  VkcTensor x = upload (arena, NULL, 4, (const int64_t[]) { 2 * s.B, s.h, s.w, C });
  VkcTensor t = upload (arena, NULL, 1, (const int64_t[]) { 2 * s.B });
  VkcTensor ctx = upload (arena, seq_d, 3, (const int64_t[]) { 2 * s.B, s.S, cfg->joint_attention_dim });
  VkcTensor pool = upload (arena, pooled_d, 2, (const int64_t[]) { 2 * s.B, cfg->pooled_projection_dim });
  VkcTensor v;
  g_assert_true (DG_ACT (arena, &v, 2 * s.B, s.h, s.w, C));
  g_autofree const VkcTensor **refs = g_new (const VkcTensor *, MAX (s.n_refs_total, 1));
  for (guint i = 0; i < s.n_refs_total; i++) refs[i] = &s.refs[i];
  DgDitInput in = { .latents = &x,
                    .timestep = &t,
                    .context = &ctx,
                    .pooled = &pool,
                    .n_refs = s.n_refs_total ? s.n_refs : NULL,
                    .refs = refs };

  /* One recording, submitted once per step with new latents and timestep (the pipeline's way). */
  Capture *cap = capture_new (arena);
  dg_dit_set_observer (dit, capture_cb, cap);
  g_autoptr (GError) error = NULL;
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
  g_assert_true (dg_dit_forward (dit, cmd, arena, &in, &v, &error));
  g_assert_no_error (error);
  dg_dit_set_observer (dit, NULL, NULL);

  g_autofree char *sched_path = golden_data_path ("tiny-deepgen/scheduler");
  DgSchedulerConfig scfg;
  g_assert_true (dg_scheduler_config_load (sched_path, &scfg, NULL));
  const guint n_steps = (guint) json_object_get_int_member (sc, "steps");
  g_autoptr (DgSchedule) sched = dg_schedule_new (&scfg, n_steps, (guint) (s.h * s.w / 4), NULL);
  g_autofree float *x_in = g_new (float, 2 * n_lat);
  g_autofree float *tt = g_new (float, 2 * s.B);
  g_autofree float *v_cfg = g_new (float, n_lat);
  g_autofree char *what = g_strdup_printf ("scenario %" G_GINT64_FORMAT " %s", id, tag[bf]);
  const double lim_v = bf ? LIM_BF16_DIT : LIM_F32, lim_cfg = bf ? LIM_BF16_CFG : LIM_F32;
  double ms = 0;
  for (guint i = 0; i < sched->n_steps; i++) {
    memcpy (x_in, lat, n_lat * sizeof (float));
    memcpy (x_in + n_lat, lat, n_lat * sizeof (float));
    for (gint64 r = 0; r < 2 * s.B; r++) tt[r] = sched->timesteps[i];
    g_assert_true (vkc_tensor_upload (dev, &x, x_in, NULL));
    g_assert_true (vkc_tensor_upload (dev, &t, tt, NULL));
    gint64 t0 = g_get_monotonic_time ();
    submit (cmd);
    ms += (g_get_monotonic_time () - t0) / 1e3;
    g_autofree float *vh = download (&v);
    g_autofree char *vn = g_strdup_printf ("dit.step%u.v", i);
    if (golden_has (st, vn)) {
      g_autofree float *vnchw = golden_nhwc_to_nchw (vh, 2 * s.B, s.h, s.w, C);
      compare (what, st, vn, vnchw, lim_v);
    }
    if (!bf) {
      compare_blocks (what, st, i, cap, cfg->n_layers);
      g_autofree char *tn = g_strdup_printf ("dit.step%u.temb", i);
      g_autofree float *temb = captured (cap, "temb");
      compare (what, st, tn, temb, LIM_F32);
    }
    dg_cfg_combine (v_cfg, vh, vh + n_lat, n_lat, guidance, prec);
    dg_euler_step (sched, i, lat, v_cfg, n_lat, prec);
    g_autofree char *cn = g_strdup_printf ("dit.step%u.v_cfg", i);
    g_autofree char *ln = g_strdup_printf ("dit.step%u.latents", i);
    g_autofree float *cfg_nchw = golden_nhwc_to_nchw (v_cfg, s.B, s.h, s.w, C);
    g_autofree float *lat_nchw = golden_nhwc_to_nchw (lat, s.B, s.h, s.w, C);
    compare (what, st, cn, cfg_nchw, lim_cfg);
    compare (what, st, ln, lat_nchw, lim_cfg);
  }
  g_test_message ("%s: %u steps of %" G_GINT64_FORMAT " rows, %u dispatches per step, %.1f ms per step", what,
                  sched->n_steps, 2 * s.B, vkc_cmd_n_dispatches (cmd), ms / sched->n_steps);
  if (g_test_verbose ()) { /* GPU time of the last step by shader, where the device has timestamps */
    g_autoptr (GHashTable) prof = vkc_cmd_profile (cmd);
    GHashTableIter it;
    gpointer k, v;
    if (prof) {
      g_hash_table_iter_init (&it, prof);
      while (g_hash_table_iter_next (&it, &k, &v))
        if (*(double *) v > 0.02 * vkc_cmd_gpu_ms (cmd))
          g_test_message ("  %-28s %8.1f ms", (const char *) k, *(double *) v);
    }
  }
  capture_free (cap);
  g_free (s.n_refs);
  g_free (s.refs);
}

static void
test_scenario (gconstpointer data)
{
  const gint64 id = GPOINTER_TO_INT (data);
  g_autofree char *path = golden_data_path ("golden/manifest.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_file (parser, path, NULL));
  JsonObject *scs = json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)), "scenarios");
  JsonObject *sc = json_array_get_object_element (json_object_get_array_member (scs, "list"), (guint) id - 1);
  g_assert_cmpint (json_object_get_int_member (sc, "id"), ==, id);
  for (int bf = 0; bf < 2; bf++) run_scenario (sc, bf);
}

/* ---- position table, errors ---------------------------------------------------------------- */

/* diffusers computes the table at construction and the release stores it (bf16): recomputing
 * it must give the same numbers, so a file without the table still works. */
static void
test_pos_table (void)
{
  const DgDitConfig *c = dg_dit_config (dits[0]);
  const gint64 M = c->pos_embed_max_size, D = c->inner_dim;
  g_autoptr (DgSafetensors) st = golden_open ("tiny-deepgen/transformer/diffusion_pytorch_model.safetensors");
  g_autoptr (DgSafetensors) stb = golden_open ("tiny-deepgen/transformer/pos_embed_bf16.safetensors");
  g_autofree float *want = golden_f32 (st, "pos_embed.pos_embed", NULL, NULL);
  g_autofree float *want_b = golden_f32 (stb, "pos_embed.pos_embed", NULL, NULL);
  g_autofree float *got = g_new (float, M *M *D);
  for (gint64 r = 0; r < M; r++) dg_dit_pos_embed_row (c, r, 0, M, got + r * M * D);
  gsize diff = 0, diff_b = 0;
  double worst = 0;
  for (gint64 i = 0; i < M * M * D; i++) {
    diff += got[i] != want[i];
    diff_b += vkc_round_bf16 (got[i]) != want_b[i];
    worst = MAX (worst, fabs ((double) got[i] - want[i]));
  }
  g_test_message ("position table: %zu of %" G_GINT64_FORMAT " fp32 values differ (max %.3g, one ulp = "
                  "libm vs torch's vectorised sin/cos), %zu bf16 values differ",
                  diff, M * M * D, worst, diff_b);
  g_assert_cmpfloat (worst, <=, 1.2e-7); /* at most one float32 ulp of a value in [−1, 1] */
  g_assert_cmpuint (diff_b, ==, 0);
}

static void
test_errors (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *missing = golden_data_path ("tiny-deepgen/no-such-transformer");
  g_assert_null (dg_dit_load (dev, missing, DG_PRECISION_F32, DG_WEIGHTS_RELEASED, &error));
  g_assert_nonnull (error);
  g_assert_true (error->domain == DG_ERROR);
  g_test_message ("missing folder: %s", error->message);
  g_clear_error (&error);
  g_autofree char *wrong = golden_data_path ("tiny-deepgen/vae"); /* a folder of another component */
  g_assert_null (dg_dit_load (dev, wrong, DG_PRECISION_F32, DG_WEIGHTS_RELEASED, &error));
  g_assert_nonnull (error);
  g_test_message ("wrong folder: %s", error->message);
  g_clear_error (&error);

  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  static const int64_t bad[][4] = {
    { 1, 15, 16, 16 }, /* odd height */
    { 1, 98, 16, 16 }, /* 49 token rows > pos_embed_max_size 48 */
    { 1, 16, 16, 8 },  /* wrong channel count */
  };
  for (gsize k = 0; k < G_N_ELEMENTS (bad); k++) {
    VkcTensor x, t, ctx, pooled, out;
    g_assert_true (dg_arena_tensor (arena, &x, VKC_F32, 4, bad[k]));
    g_assert_true (DG_ACT (arena, &t, 1));
    g_assert_true (DG_ACT (arena, &ctx, 1, 3, 48));
    g_assert_true (DG_ACT (arena, &pooled, 1, 24));
    g_assert_true (DG_ACT (arena, &out, 1, bad[k][1], bad[k][2], 16));
    DgDitInput in = { .latents = &x, .timestep = &t, .context = &ctx, .pooled = &pooled };
    g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, NULL);
    g_assert_false (dg_dit_forward (dits[0], cmd, arena, &in, &out, &error));
    g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
    g_test_message ("bad input: %s", error->message);
    g_clear_error (&error);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autoptr (GError) error = NULL;
  VkcDeviceOptions opt = VKC_DEVICE_OPTIONS_DEFAULT;
  opt.validation = 1; /* with synchronization validation: any message fails the test */
  opt.no_pipeline_cache = true;
  dev = vkc_device_new (&opt, &error);
  g_assert_no_error (error);
  g_assert_true (vkc_device_validation_enabled (dev));
  g_autofree char *path = golden_data_path ("tiny-deepgen/transformer");
  for (int bf = 0; bf < 2; bf++) {
    dits[bf] = dg_dit_load (dev, path, bf ? DG_PRECISION_BF16 : DG_PRECISION_F32, DG_WEIGHTS_RELEASED, &error);
    g_assert_no_error (error);
  }
  dits[2] = dg_dit_load (dev, path, DG_PRECISION_F32, DG_WEIGHTS_Q8_0, &error);
  g_assert_no_error (error);
  g_test_add_func ("/dit/pos-table", test_pos_table);
  g_test_add_func ("/dit/patch-embed", test_patch_embed);
  g_test_add_func ("/dit/time-embed", test_time_embed);
  g_test_add_func ("/dit/blocks", test_blocks);
  g_test_add_func ("/dit/full", test_full);
  g_test_add_func ("/dit/full-q8", test_full_q8);
  g_test_add_func ("/dit/split-bindings", test_split_bindings);
  for (int k = 1; k <= 6; k++) {
    g_autofree char *name = g_strdup_printf ("/dit/scenario%d", k);
    g_test_add_data_func (name, GINT_TO_POINTER (k), test_scenario);
  }
  g_test_add_func ("/dit/errors", test_errors);
  int rc = g_test_run ();
  for (int k = 0; k < 3; k++) dg_dit_free (dits[k]);
  guint messages = vkc_device_validation_messages (dev);
  vkc_device_free (dev);
  if (messages)
    g_error ("%u validation messages", messages);
  return rc;
}
