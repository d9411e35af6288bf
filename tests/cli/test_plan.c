/* The memory plan and FLOP counts (model/plan/plan.h) for the real DeepGen 1.0 configs:
 * element counts exactly as MODEL.md §8/§9, weight bytes as weights.h stores them, FLOPs
 * within 2 % of MODEL.md §9, activations in step with the code that allocates them. */
#include <math.h>
#include <string.h>

#include "dit_layout.h"
#include "plan.h"

#ifndef DEEPGEN_TEST_DATA_DIR
#define DEEPGEN_TEST_DATA_DIR "tests/data"
#endif

static DgPlanModel real;

static void
test_builtin_equals_configs (void)
{
  DgPlanModel loaded;
  GError *error = NULL;
  g_autofree char *dir = g_build_filename (DEEPGEN_TEST_DATA_DIR, "deepgen-1.0-configs", NULL);
  g_assert_true (dg_plan_model_load (&loaded, dir, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (loaded.n_queries, ==, 128); /* from connector/config.json "num_queries" */
  g_assert_cmpuint (loaded.n_selected, ==, 6);
  /* Every number the plan reads. */
  g_assert_true (memcmp (&loaded.vlm.text, &real.vlm.text, sizeof real.vlm.text) == 0);
  g_assert_true (memcmp (&loaded.vlm.vision, &real.vlm.vision, sizeof real.vlm.vision) == 0);
  g_assert_true (memcmp (&loaded.connector, &real.connector, sizeof real.connector) == 0);
  g_assert_true (memcmp (&loaded.dit, &real.dit, sizeof real.dit) == 0);
  g_assert_true (memcmp (&loaded.vae, &real.vae, sizeof real.vae) == 0);
  for (int job = 0; job < 2; job++) {
    DgPlanRequest r = DG_PLAN_REQUEST_INIT;
    r.job = job ? DG_JOB_EDIT : DG_JOB_GENERATE;
    r.n_refs = (guint) job;
    DgPlan a, b;
    g_assert_true (dg_plan_compute (&real, &r, &a, NULL));
    g_assert_true (dg_plan_compute (&loaded, &r, &b, NULL));
    g_assert_true (memcmp (&a, &b, sizeof a) == 0);
  }
}

/* MODEL.md §8 (released files) and §9 (parameters). */
static void
test_element_counts (void)
{
  DgComponentSize llm, vit, conn, dit, enc, dec;
  dg_plan_component_size (&real, DG_COMPONENT_LLM, &llm);
  dg_plan_component_size (&real, DG_COMPONENT_VIT, &vit);
  dg_plan_component_size (&real, DG_COMPONENT_CONNECTOR, &conn);
  dg_plan_component_size (&real, DG_COMPONENT_DIT, &dit);
  dg_plan_component_size (&real, DG_COMPONENT_VAE_ENCODER, &enc);
  dg_plan_component_size (&real, DG_COMPONENT_VAE_DECODER, &dec);

  g_assert_cmpuint (llm.stored, ==, 3085938688ull);   /* incl. the 311.2 M embedding */
  g_assert_cmpuint (llm.host, ==, 151936ull * 2048u); /* embed_tokens stays on the host */
  g_assert_cmpuint (vit.stored, ==, 668684288ull);
  g_assert_cmpuint (llm.stored + vit.stored, ==, 2498840576ull + 1255782400ull); /* vlm/ shards */
  g_assert_cmpuint (llm.n_tensors + vit.n_tensors, ==, 628 + 196);
  g_assert_cmpuint (conn.stored, ==, 432449532ull);
  g_assert_cmpuint (conn.n_tensors, ==, 103);
  g_assert_cmpuint (dit.stored, ==, 2469663936ull);
  g_assert_cmpuint (dit.stored - dit.host, ==, 2243171520ull); /* parameters without pos_embed */
  g_assert_cmpuint (dit.host, ==, 226492416ull);
  g_assert_cmpuint (dit.n_tensors, ==, 909);
  g_assert_cmpuint (enc.stored, ==, 34274208ull);
  g_assert_cmpuint (dec.stored, ==, 49545475ull);
  g_assert_cmpuint (enc.n_tensors + dec.n_tensors, ==, 244);

  /* Every stored element is either uploaded (matrix or f32) or kept on the host; a VAE part
   * uploads two computed vectors (latent scale and shift) on top. */
  DgComponentSize *all[] = { &llm, &vit, &conn, &dit };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    g_assert_cmpuint (all[i]->matrices + all[i]->f32 + all[i]->host, ==, all[i]->stored);
  g_assert_cmpuint (enc.matrices + enc.f32 + enc.host, ==, enc.stored + 2 * 16);
  g_assert_cmpuint (dec.matrices + dec.f32 + dec.host, ==, dec.stored + 2 * 16);
  g_assert_cmpuint (conn.f32 - 128u * 2048u, ==, 190460ull); /* meta queries f32 + biases/LN */
}

/* File data bytes = elements × the release's dtype (MODEL.md §8). */
static void
test_file_bytes (void)
{
  /* transformer: 4,939,433,672 B on disk = 2 × 2,469,663,936 + the safetensors header. */
  guint64 dit = dg_plan_file_bytes (&real, DG_COMPONENT_DIT);
  g_assert_cmpuint (dit, ==, 2ull * 2469663936ull);
  g_assert_cmpuint (4939433672ull - dit, <, 200000ull);
  g_assert_cmpuint (dg_plan_file_bytes (&real, DG_COMPONENT_CONNECTOR), ==, 4ull * 432449532ull);
  g_assert_cmpuint (dg_plan_file_bytes (&real, DG_COMPONENT_VAE_ENCODER) +
                        dg_plan_file_bytes (&real, DG_COMPONENT_VAE_DECODER),
                    ==, 2ull * 83819683ull);
  g_assert_cmpuint (dg_plan_file_bytes (&real, DG_COMPONENT_LLM) + dg_plan_file_bytes (&real, DG_COMPONENT_VIT), ==,
                    2ull * 3754622976ull);
}

/* Device bytes: matrices bf16 (or f32), vectors f32 (weights.h). */
static void
test_weight_bytes (void)
{
  for (int c = 0; c < DG_N_COMPONENTS; c++) {
    DgComponentSize s;
    dg_plan_component_size (&real, (DgComponent) c, &s);
    g_assert_cmpuint (dg_plan_weight_bytes (&real, (DgComponent) c, DG_PRECISION_BF16, DG_WEIGHTS_RELEASED), ==,
                      2 * s.matrices + 4 * s.f32);
    g_assert_cmpuint (dg_plan_weight_bytes (&real, (DgComponent) c, DG_PRECISION_F32, DG_WEIGHTS_RELEASED), ==,
                      4 * (s.matrices + s.f32));
  }
  /* The DiT: parameters − vectors (biases, q/k norms) in bf16 + vectors in f32. */
  DgComponentSize d;
  dg_plan_component_size (&real, DG_COMPONENT_DIT, &d);
  const guint64 D = 1536, hd = 64;
  guint64 vectors = D /* patch conv bias */ + 4 * D /* time/text embedders */ + D /* context embedder */
                    + 2 * D /* norm_out */ + 64 /* proj_out */;
  for (int i = 0; i < 24; i++) {
    gboolean dual = i <= 12, last = i == 23;
    vectors += (dual ? 9 : 6) * D + (last ? 2 : 6) * D; /* norm1, norm1_context biases */
    vectors += (last ? 7 : 8) * D + 4 * hd;             /* attn biases, q/k norms */
    vectors += dual ? 4 * D + 2 * hd : 0;               /* attn2 */
    vectors += (last ? 1 : 2) * (4 * D + D);            /* ff (+ ff_context) biases */
  }
  g_assert_cmpuint (d.f32, ==, vectors);
  g_assert_cmpuint (d.matrices, ==, 2243171520ull - vectors);
}

/* MODEL.md §9: per-block parameter counts, from 1- and 2-block versions of the config. */
static void
test_dit_blocks (void)
{
  DgPlanModel m = real;
  DgComponentSize one, two_dual, two_plain;
  m.dit.n_layers = 1;
  m.dit.n_dual = 0;
  dg_plan_component_size (&m, DG_COMPONENT_DIT, &one);
  m.dit.n_layers = 2;
  dg_plan_component_size (&m, DG_COMPONENT_DIT, &two_plain);
  m.dit.n_dual = 1;
  m.dit.dual_attention_layers[0] = 0;
  dg_plan_component_size (&m, DG_COMPONENT_DIT, &two_dual);
  const guint64 dual = two_dual.stored - one.stored, plain = two_plain.stored - one.stored;
  g_assert_cmpuint (dual, ==, 101506944ull);
  g_assert_cmpuint (plain, ==, 84980992ull);
  DgComponentSize full;
  dg_plan_component_size (&real, DG_COMPONENT_DIT, &full);
  /* The last block: the rest once the 13 dual and 10 plain blocks and the embeddings are out. */
  const guint64 outside = one.stored - 54294784ull;
  g_assert_cmpuint (full.stored, ==, outside + 13 * dual + 10 * plain + 54294784ull);
}

static void
assert_near (double value, double expected, double tolerance)
{
  double rel = fabs (value - expected) / expected;
  if (rel > tolerance)
    g_error ("%.4g vs MODEL.md §9 %.4g: %.1f %% off (limit %.0f %%)", value, expected, 100 * rel, 100 * tolerance);
}

static void
test_flops (void)
{
  const double T = 1e12;
  /* LLM ≈ 5.55 GFLOP/token; 0.84 TFLOP at 150 tokens, 2.5 at 450 (per row). */
  assert_near (dg_flops_llm_per_token (&real.vlm.text), 5.55e9, 0.02);
  assert_near (dg_flops_llm (&real.vlm.text, 150), 0.84 * T, 0.02);
  assert_near (dg_flops_llm (&real.vlm.text, 450), 2.5 * T, 0.02);
  /* Connector ≈ 0.13 TFLOP (150 tok) / 0.40 (450 tok). */
  assert_near (dg_flops_connector (&real, 150), 0.13 * T, 0.02);
  assert_near (dg_flops_connector (&real, 450), 0.40 * T, 0.02);
  /* ViT ≈ 1.34 TFLOP per 512² reference, ≈ 5.6 per 1024². */
  assert_near (dg_flops_vit (&real.vlm.vision, 512, 512), 1.34 * T, 0.02);
  assert_near (dg_flops_vit (&real.vlm.vision, 1024, 1024), 5.6 * T, 0.02);
  /* The DiT table: TFLOP per forward per row, per CFG step, 50 steps. */
  const struct {
    gint64 n, s;
    double row, step, all;
  } dit[] = {
    { 1024, 150, 2.13, 4.26, 213 }, { 1024, 300, 2.38, 4.77, 238 },   { 4096, 150, 10.77, 21.5, 1077 },
    { 2048, 424, 5.09, 10.2, 509 }, { 8192, 1192, 33.1, 66.2, 3308 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (dit); i++) {
    double f = dg_flops_dit (&real.dit, dit[i].n, dit[i].s);
    assert_near (f, dit[i].row * T, 0.02);
    assert_near (2 * f, dit[i].step * T, 0.02);
    assert_near (100 * f, dit[i].all * T, 0.02);
  }
  /* VAE decode ≈ 2.5 TFLOP at 512², encode ≈ 1.1. */
  assert_near (dg_flops_vae_decode (&real.vae, 512, 512), 2.5 * T, 0.02);
  assert_near (dg_flops_vae_encode (&real.vae, 512, 512), 1.1 * T, 0.02);
  /* "≈ 10 TFLOP at 1024²" is 4 × the 512² figure: the convolutions scale by 4 (checked here
   * within 2 %), the mid-block attention by 16 (0.55 TFLOP at 1024²), which makes 10.5. */
  const double attn512 = 4.0 * 4096.0 * 4096.0 * 512 + 8.0 * 4096 * 512 * 512;
  const double attn1024 = 4.0 * 16384.0 * 16384.0 * 512 + 8.0 * 16384 * 512 * 512;
  assert_near (dg_flops_vae_decode (&real.vae, 1024, 1024) - attn1024, 4 * (2.5 * T - attn512), 0.02);
  assert_near (dg_flops_vae_decode (&real.vae, 1024, 1024), 10 * T, 0.05);
  /* Tiles: 3 × 3 tiles of 512² cover a 1024² image. */
  assert_near (dg_flops_vae_decode_tiled (&real.vae, 1024, 1024, 64, 16), 9 * dg_flops_vae_decode (&real.vae, 512, 512),
               1e-9);
  g_assert_cmpfloat (dg_flops_vae_decode_tiled (&real.vae, 512, 512, 64, 16), ==,
                     dg_flops_vae_decode (&real.vae, 512, 512));
}

/* dit.c's own count of its arena (no alignment) and ours (256-byte pieces). */
static void
test_dit_activations (void)
{
  const gint64 cases[][3] = { { 2, 1024, 242 }, { 2, 2048, 498 }, { 1, 4096, 242 }, { 2, 8192, 1266 }, { 2, 17, 5 } };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    guint64 ours = dg_plan_dit_activation_bytes (&real.dit, cases[i][0], cases[i][1], cases[i][2]);
    guint64 code = dg_dit_activation_bytes (&real.dit, cases[i][0], cases[i][1], cases[i][2]);
    /* dit.c counts the key-validity mask always (an upper bound); the forward allocates it only
     * for rows of different lengths, which one request never has. Beyond that: at most one
     * alignment pad per tensor. (test_plan_device checks the arena's real use exactly.) */
    const guint64 mask = (guint64) (cases[i][0] * (cases[i][1] + cases[i][2])) * 4;
    g_assert_cmpuint (ours + mask, >=, code);
    g_assert_cmpuint (ours + mask, <, code + 20 * 256);
  }
}

/* The VAE's activations (vae_pass.c's dry run, without a device) at the sizes vae.h quotes;
 * vae.c's own figures, with and without a device, are compared in test_plan_device. */
static void
test_vae_bytes (void)
{
  /* vae.h: a 64-latent tile needs 644 MiB, a whole 1024² decode 2.5 GiB. */
  g_assert_cmpuint ((dg_plan_vae_decode_bytes (&real.vae, 64, 64) + (1u << 19)) >> 20, ==, 644);
  g_assert_cmpfloat (dg_plan_vae_decode_bytes (&real.vae, 128, 128) / 1073741824.0, >, 2.4);
  g_assert_cmpfloat (dg_plan_vae_decode_bytes (&real.vae, 128, 128) / 1073741824.0, <, 2.6);
}

static void
test_plan_real (void)
{
  const int sizes[] = { 512, 1024 };
  guint64 prev_peak[2] = { 0, 0 };
  for (guint si = 0; si < G_N_ELEMENTS (sizes); si++)
    for (int job = 0; job < 2; job++) {
      DgPlanRequest r = DG_PLAN_REQUEST_INIT;
      r.job = job ? DG_JOB_EDIT : DG_JOB_GENERATE;
      r.n_refs = (guint) job;
      r.width = r.height = sizes[si];
      DgPlan p;
      GError *error = NULL;
      g_assert_true (dg_plan_compute (&real, &r, &p, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (p.seq_len, ==,
                        DG_PLAN_DEFAULT_TEXT_TOKENS + 128 + (job ? (guint) (sizes[si] / 32) * (sizes[si] / 32) : 0));
      g_assert_cmpuint (p.image_tokens, ==, (guint) (sizes[si] / 16) * (sizes[si] / 16));
      g_assert_cmpuint (p.ref_tokens, ==, job ? p.image_tokens : 0);
      /* Resident weights: each pool sized to its tensors (no allocation limit given), so it
       * reserves exactly their 256-byte pieces — the ViT only for edit, the connector only
       * once the VLM is released. */
      guint64 pieces[DG_N_COMPONENTS];
      for (int c = 0; c < DG_N_COMPONENTS; c++) {
        DgComponentSize cs;
        dg_plan_component_size (&real, (DgComponent) c, &cs);
        pieces[c] = dg_plan_weight_pool_bytes (&real, (DgComponent) c, r.precision, r.weights);
        guint64 bytes = dg_plan_weight_bytes (&real, (DgComponent) c, r.precision, r.weights);
        g_assert_cmpuint (pieces[c], >=, bytes);
        g_assert_cmpuint (pieces[c], <, bytes + 256ull * cs.n_tensors + 512);
      }
      g_assert_cmpuint (p.stage[DG_PLAN_ENCODE].weights, ==,
                        pieces[DG_COMPONENT_LLM] + (job ? pieces[DG_COMPONENT_VIT] : 0));
      g_assert_cmpuint (p.stage[DG_PLAN_BRIDGE].weights, ==, pieces[DG_COMPONENT_CONNECTOR]);
      guint64 crop = (guint64) p.image_tokens * 1536 * 4; /* one: the reference has the output's size */
      g_assert_cmpuint (p.stage[DG_PLAN_DENOISE].weights, ==, pieces[DG_COMPONENT_DIT] + crop);
      g_assert_cmpuint (p.stage[DG_PLAN_DECODE].weights, ==, pieces[DG_COMPONENT_VAE_DECODER]);
      if (job) {
        g_assert_cmpuint (p.stage[DG_PLAN_VAE_ENCODE].weights, ==, pieces[DG_COMPONENT_VAE_ENCODER]);
        g_assert_cmpfloat (p.stage[DG_PLAN_VAE_ENCODE].flop, ==, dg_flops_vae_encode (&real.vae, sizes[si], sizes[si]));
      }
      /* Arenas: each sized to what it takes, so the encode stage holds the LLM, the ViT and
       * an arena of exactly encode_arena; the bridge adds bridge_arena on top. */
      g_assert_cmpuint (p.stage[DG_PLAN_ENCODE].activations, ==, p.encode_arena);
      g_assert_cmpuint (p.stage[DG_PLAN_BRIDGE].activations, ==, p.encode_arena + p.bridge_arena);
      g_assert_cmpuint (p.stage[DG_PLAN_DENOISE].activations, ==, p.dit_arena);
      if (job)
        g_assert_cmpuint (p.stage[DG_PLAN_VAE_ENCODE].total, >, 0);
      else
        g_assert_cmpuint (p.stage[DG_PLAN_VAE_ENCODE].total, ==, 0);
      /* The peak is the largest stage: the encode stage (the LLM's 5.2 GiB) for the real
       * model at these sizes. */
      for (int s = 0; s < DG_PLAN_N_STAGES; s++) g_assert_cmpuint (p.stage[s].total, <=, p.peak);
      g_assert_cmpint (p.peak_stage, ==, DG_PLAN_ENCODE);
      g_assert_cmpuint (p.required, ==, p.peak + p.margin);
      g_assert_cmpuint (p.peak, >=, prev_peak[job]);
      prev_peak[job] = p.peak;
      /* 50 steps × 2 rows of the DiT forward. */
      g_assert_cmpfloat (p.stage[DG_PLAN_DENOISE].flop, ==,
                         100.0 * dg_flops_dit (&real.dit, p.image_tokens + p.ref_tokens, p.seq_len));
      g_test_message ("%s %d²: peak %.2f GiB (%s), needs %.2f GiB", job ? "edit" : "generate", sizes[si],
                      p.peak / 1073741824.0, dg_plan_stage_name (p.peak_stage), p.required / 1073741824.0);
    }
}

static void
test_plan_check (void)
{
  DgPlanRequest r = DG_PLAN_REQUEST_INIT;
  DgPlan p;
  g_assert_true (dg_plan_compute (&real, &r, &p, NULL));
  GError *error = NULL;
  g_assert_true (dg_plan_check (&p, 0, &error)); /* unknown device: no verdict */
  g_assert_true (dg_plan_check (&p, p.required, &error));
  g_assert_no_error (error);
  g_assert_false (dg_plan_check (&p, p.required - 1, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_OOM);
  g_assert_nonnull (strstr (error->message, "GiB"));
  g_assert_nonnull (strstr (error->message, "512×512"));
  g_assert_nonnull (strstr (error->message, "smaller size"));
  g_clear_error (&error);
  r.precision = DG_PRECISION_F32;
  g_assert_true (dg_plan_compute (&real, &r, &p, NULL));
  g_assert_false (dg_plan_check (&p, 4ull << 30, &error));
  g_assert_nonnull (strstr (error->message, "bf16"));
  g_clear_error (&error);
}

/* The VAE runs whole unless that raises the peak beyond what the device (when known) holds,
 * or unless the device cannot bind its attention at once (pipeline.c follows the plan). */
static void
test_vae_tiling (void)
{
  DgPlanRequest r = DG_PLAN_REQUEST_INIT;
  DgPlan p;
  r.width = r.height = 512;
  g_assert_true (dg_plan_compute (&real, &r, &p, NULL));
  g_assert_false (p.vae_decode_tiled);
  /* 2048²: a whole decode (~10 GiB of activations) would double the peak. */
  r.width = r.height = 2048;
  g_assert_true (dg_plan_compute (&real, &r, &p, NULL));
  g_assert_true (p.vae_decode_tiled);
  g_assert_cmpuint (p.stage[DG_PLAN_DECODE].total, <=, p.peak);
  r.device_bytes = 8ull << 30; /* the raised peak does not fit: tiles */
  g_assert_true (dg_plan_compute (&real, &r, &p, NULL));
  g_assert_true (p.vae_decode_tiled);
  g_assert_cmpuint (p.required, <=, r.device_bytes);
  r.device_bytes = 24ull << 30; /* it fits: whole, the faster way */
  g_assert_true (dg_plan_compute (&real, &r, &p, NULL));
  g_assert_false (p.vae_decode_tiled);
  g_assert_cmpint (p.peak_stage, ==, DG_PLAN_DECODE);
  g_assert_cmpuint (p.required, <=, r.device_bytes);
  /* 1024²: the whole decode (2.6 GiB) stays below the encode stage, whatever the device. */
  r.width = r.height = 1024;
  r.device_bytes = 4ull << 30;
  g_assert_true (dg_plan_compute (&real, &r, &p, NULL));
  g_assert_false (p.vae_decode_tiled);
  g_assert_cmpuint (dg_plan_vae_decode_bytes (&real.vae, 128, 128), >, 2ull << 30);
  /* A device that cannot bind the mid-block attention of a whole 1024² image (16384 keys and
   * values of 512 channels: ~100 MB) gets tiles for the decode and for an edit's encode. */
  r.max_binding = 64ull << 20;
  g_assert_true (dg_plan_compute (&real, &r, &p, NULL));
  g_assert_true (p.vae_decode_tiled);
  r.job = DG_JOB_EDIT;
  r.n_refs = 1;
  g_assert_true (dg_plan_compute (&real, &r, &p, NULL));
  g_assert_true (p.vae_encode_tiled);
  g_assert_cmpuint (p.vae_encode_tiled_refs, ==, 1);
  r.max_binding = 1ull << 30;
  g_assert_true (dg_plan_compute (&real, &r, &p, NULL));
  g_assert_false (p.vae_encode_tiled || p.vae_decode_tiled);
}

/* maxMemoryAllocationSize below a component's weights: its pool is several blocks, none over
 * the limit, with little more than the tensors (a tensor that does not fit a block's tail
 * starts the next one, sized to what is still expected). */
static void
test_allocation_limit (void)
{
  DgPlanRequest r = DG_PLAN_REQUEST_INIT;
  DgPlan whole, split;
  g_assert_true (dg_plan_compute (&real, &r, &whole, NULL));
  r.max_allocation = 1ull << 30;
  g_assert_true (dg_plan_compute (&real, &r, &split, NULL));
  const guint64 llm = dg_plan_weight_pool_bytes (&real, DG_COMPONENT_LLM, r.precision, r.weights);
  g_assert_cmpuint (whole.stage[DG_PLAN_ENCODE].weights, ==, llm);
  g_assert_cmpuint (split.stage[DG_PLAN_ENCODE].weights, >=, llm);
  /* At most one block more, and the lost tails are below one MLP matrix (45 MB) per block. */
  g_assert_cmpuint (split.stage[DG_PLAN_ENCODE].weights, <=, llm + 7 * (46ull << 20));
  for (int s = 0; s < DG_PLAN_N_STAGES; s++) g_assert_cmpuint (split.stage[s].total, >=, whole.stage[s].total);
}

/* dg_run_batch: B requests run together (2B prompt rows, 2B DiT rows with guidance), every
 * reference through the ViT and the VAE, rows of different lengths padded (dit.c). */
static void
test_batch (void)
{
  DgPlanRequest r = DG_PLAN_REQUEST_INIT;
  DgPlan one, two, mixed;
  r.job = DG_JOB_EDIT;
  r.n_refs = 1;
  g_assert_true (dg_plan_compute (&real, &r, &one, NULL));
  r.batch = 2;
  r.n_refs = 2;
  g_assert_true (dg_plan_compute (&real, &r, &two, NULL));
  g_assert_cmpuint (two.batch, ==, 2);
  g_assert_cmpuint (two.vlm_rows, ==, 4);
  g_assert_cmpuint (two.dit_rows, ==, 4);
  g_assert_cmpuint (two.seq_len, ==, one.seq_len);
  g_assert_cmpuint (two.ref_tokens, ==, one.ref_tokens);
  g_assert_cmpuint (two.dit_arena, >, one.dit_arena);
  g_assert_cmpuint (two.stage[DG_PLAN_DENOISE].weights, ==, one.stage[DG_PLAN_DENOISE].weights);
  g_assert_cmpuint (two.stage[DG_PLAN_DENOISE].carried, >, one.stage[DG_PLAN_DENOISE].carried);
  g_assert_cmpuint (two.stage[DG_PLAN_DENOISE].activations, >, one.stage[DG_PLAN_DENOISE].activations);
  g_assert_cmpuint (two.stage[DG_PLAN_ENCODE].activations, >, one.stage[DG_PLAN_ENCODE].activations);
  g_assert_cmpuint (two.stage[DG_PLAN_VAE_ENCODE].total, ==, one.stage[DG_PLAN_VAE_ENCODE].total);
  g_assert_cmpuint (two.stage[DG_PLAN_DECODE].total, ==, one.stage[DG_PLAN_DECODE].total);
  g_assert_cmpfloat (two.stage[DG_PLAN_DENOISE].flop, ==, 2 * one.stage[DG_PLAN_DENOISE].flop);
  g_assert_cmpfloat (two.stage[DG_PLAN_DECODE].flop, ==, 2 * one.stage[DG_PLAN_DECODE].flop);
  /* One request with one reference, one with two: the longest row sets the lengths. */
  const guint per[2] = { 1, 2 };
  const int sizes[6] = { 512, 512, 512, 512, 256, 256 };
  r.n_refs = 3;
  r.request_refs = per;
  r.ref_sizes = sizes;
  g_assert_true (dg_plan_compute (&real, &r, &mixed, NULL));
  g_assert_cmpuint (mixed.ref_tokens, ==, 1024 + 256);
  g_assert_cmpuint (mixed.seq_len, ==, DG_PLAN_DEFAULT_TEXT_TOKENS + 256 + 64 + 128);
  g_assert_cmpuint (mixed.dit_arena, >, two.dit_arena);
  /* The pipeline gives the tokenised length; the text tokens are what is left of it. */
  r.seq_len = 600;
  g_assert_true (dg_plan_compute (&real, &r, &mixed, NULL));
  g_assert_cmpuint (mixed.seq_len, ==, 600);
  g_assert_cmpuint (mixed.text_tokens, ==, 600 - 320 - 128);
}

static void
test_bad_requests (void)
{
  DgPlanRequest r = DG_PLAN_REQUEST_INIT;
  DgPlan p;
  GError *error = NULL;
  r.width = 500;
  g_assert_false (dg_plan_compute (&real, &r, &p, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  r.width = 512;
  r.job = DG_JOB_EDIT;
  g_assert_false (dg_plan_compute (&real, &r, &p, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  r.n_refs = 1;
  const int sizes[2] = { 100, 64 };
  r.ref_sizes = sizes;
  g_assert_false (dg_plan_compute (&real, &r, &p, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  r.job = DG_JOB_GENERATE;
  r.width = r.height = 8192;
  g_assert_false (dg_plan_compute (&real, &r, &p, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  /* Batches: every edit request needs a reference, and the counts must add up. */
  DgPlanRequest b = DG_PLAN_REQUEST_INIT;
  const guint per[2] = { 2, 0 };
  b.job = DG_JOB_EDIT;
  b.batch = 2;
  b.n_refs = 2;
  b.request_refs = per;
  g_assert_false (dg_plan_compute (&real, &b, &p, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  b.n_refs = 3;
  b.request_refs = NULL;
  g_assert_false (dg_plan_compute (&real, &b, &p, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  b.batch = 1;
  b.n_refs = DG_PLAN_MAX_REFS + 1;
  b.width = b.height = 64;
  g_assert_false (dg_plan_compute (&real, &b, &p, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
}

/* q8_0 (DG_WEIGHTS_Q8_0): which weights it quantizes, from the architecture (MODEL.md), and that
 * the real model then fits a 6 GB card at every planned size. */
static void
test_q8_weights (void)
{
  DgComponentSize llm, vit, dit, vae_dec;
  dg_plan_component_size (&real, DG_COMPONENT_LLM, &llm);
  dg_plan_component_size (&real, DG_COMPONENT_VIT, &vit);
  dg_plan_component_size (&real, DG_COMPONENT_DIT, &dit);
  dg_plan_component_size (&real, DG_COMPONENT_VAE_DECODER, &vae_dec);
  /* LLM: per layer q and o 2048 × 2048, k and v 256 × 2048, gate, up and down 11008 × 2048;
   * every input width (2048, 11008) is a multiple of 32, and embed_tokens stays on the host. */
  const guint64 llm_layer = 2 * 2048ull * 2048 + 2 * 256ull * 2048 + 3 * 11008ull * 2048;
  g_assert_cmpuint (llm.quantizable, ==, 36 * llm_layer);
  g_assert_cmpuint (llm.matrices, ==, llm.quantizable);
  /* ViT: qkv, proj, gate and up read 1280 wide; down_proj reads 3420 (not a multiple of 32) and
   * the patch Conv3d is no Linear: those two stay bf16. The merger's MLP reads 5120. */
  const guint64 vit_q = 32 * (3840ull * 1280 + 1280ull * 1280 + 2 * 3420ull * 1280) + 5120ull * 5120 + 2048ull * 5120;
  g_assert_cmpuint (vit.quantizable, ==, vit_q);
  g_assert_cmpuint (vit.matrices - vit.quantizable, ==, 32 * 1280ull * 3420 + 1280ull * 1176);
  /* The DiT's Linears all read 1536, 6144, 256 (timesteps), 2048 (pooled) or 2048 (context):
   * everything but the patch conv is quantized. */
  g_assert_cmpuint (dit.matrices - dit.quantizable, ==, 1536ull * 16 * 2 * 2);
  g_assert_cmpuint (vae_dec.quantizable, ==, 0); /* the VAE stays as released */
  for (int c = 0; c < DG_N_COMPONENTS; c++) {
    DgComponentSize s;
    dg_plan_component_size (&real, (DgComponent) c, &s);
    g_assert_cmpuint (dg_plan_weight_bytes (&real, (DgComponent) c, DG_PRECISION_BF16, DG_WEIGHTS_Q8_0), ==,
                      2 * (s.matrices - s.quantizable) + s.quantizable / 32 * 36 + 4 * s.f32);
  }
  /* 6 GB cards: every planned job of the real model fits in 6 GiB with q8_0 (not as released). */
  static const struct {
    DgJob job;
    int size;
  } jobs[] = {
    { DG_JOB_GENERATE, 512 },
    { DG_JOB_EDIT, 512 },
    { DG_JOB_GENERATE, 1024 },
    { DG_JOB_EDIT, 1024 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (jobs); i++) {
    DgPlanRequest r = DG_PLAN_REQUEST_INIT;
    r.job = jobs[i].job;
    r.width = r.height = jobs[i].size;
    r.n_refs = jobs[i].job == DG_JOB_EDIT;
    DgPlan released, q8;
    g_assert_true (dg_plan_compute (&real, &r, &released, NULL));
    r.weights = DG_WEIGHTS_Q8_0;
    g_assert_true (dg_plan_compute (&real, &r, &q8, NULL));
    g_test_message ("%s %d²: released %.2f GiB, q8_0 %.2f GiB", jobs[i].job == DG_JOB_EDIT ? "edit" : "generate",
                    jobs[i].size, released.required / 1073741824.0, q8.required / 1073741824.0);
    g_assert_cmpint (q8.weights, ==, DG_WEIGHTS_Q8_0);
    g_assert_cmpuint (q8.required, <, 6ull << 30);
    g_assert_cmpuint (q8.required, <, released.required);
    /* 4 GB cards: with the 4-bit language model every planned job fits in 4 GiB */
    DgPlan q4;
    r.weights = DG_WEIGHTS_Q4_0;
    g_assert_true (dg_plan_compute (&real, &r, &q4, NULL));
    g_test_message ("  q4_0 %.2f GiB", q4.required / 1073741824.0);
    g_assert_cmpint (q4.weights, ==, DG_WEIGHTS_Q4_0);
    g_assert_cmpuint (q4.required, <, 4ull << 30);
    g_assert_cmpuint (q4.required, <, q8.required);
  }
  /* q4_0: the VLM's quantizable weights at 20 bytes per 32, the connector and the DiT as q8_0 */
  for (int c = 0; c < DG_N_COMPONENTS; c++) {
    DgComponentSize s;
    dg_plan_component_size (&real, (DgComponent) c, &s);
    const gboolean vlm = c == DG_COMPONENT_LLM || c == DG_COMPONENT_VIT;
    g_assert_cmpuint (dg_plan_weight_bytes (&real, (DgComponent) c, DG_PRECISION_BF16, DG_WEIGHTS_Q4_0), ==,
                      2 * (s.matrices - s.quantizable) + s.quantizable / 32 * (vlm ? 20 : 36) + 4 * s.f32);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  dg_plan_model_deepgen_1_0 (&real);
  g_test_add_func ("/plan/builtin-equals-configs", test_builtin_equals_configs);
  g_test_add_func ("/plan/element-counts", test_element_counts);
  g_test_add_func ("/plan/file-bytes", test_file_bytes);
  g_test_add_func ("/plan/weight-bytes", test_weight_bytes);
  g_test_add_func ("/plan/q8-weights", test_q8_weights);
  g_test_add_func ("/plan/dit-blocks", test_dit_blocks);
  g_test_add_func ("/plan/flops", test_flops);
  g_test_add_func ("/plan/dit-activations", test_dit_activations);
  g_test_add_func ("/plan/vae-bytes", test_vae_bytes);
  g_test_add_func ("/plan/real-model", test_plan_real);
  g_test_add_func ("/plan/check", test_plan_check);
  g_test_add_func ("/plan/vae-tiling", test_vae_tiling);
  g_test_add_func ("/plan/allocation-limit", test_allocation_limit);
  g_test_add_func ("/plan/batch", test_batch);
  g_test_add_func ("/plan/bad-requests", test_bad_requests);
  return g_test_run ();
}
