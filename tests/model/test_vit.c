/* The Qwen2.5-VL vision tower (model/vlm/vit.c) against the module goldens of the tiny model
 * (tests/golden/golden_modules.py: vit_10x12 = the whole tower on a 10 × 12 patch grid with
 * random patch rows; blocks 0 and 2 windowed, 1 and 3 full; 5 × 6 merged tokens give partial
 * windows at the bottom and the right).
 *
 * NMSE limits, and why:
 *  - fp32: 1e-10. The reference runs fp32 on the CPU; we run fp32 on the GPU with other
 *    summation orders. Each dot product then differs by a few ulps (relative 1e-7), which
 *    after four blocks and the merger gives NMSE ~1e-12 (measured 6e-13 … 2.6e-12); a wrong
 *    index, window or rotary angle gives 1e-4 or more, so 1e-10 separates the two with room.
 *  - bf16, each stage fed its golden input: 1e-4. Every value the reference stores in bf16 is
 *    rounded here at the same point, so what remains are bf16 rounding decisions flipped by
 *    last-bit differences of our fp32 sums (a flip is a 2⁻⁸ relative error on one element),
 *    and torch's bf16 attention, which rounds its softmax probabilities to bf16 before P·V
 *    (we keep them fp32; emulating that in Python moves block 0 from 1e-5 to 2.5e-6 NMSE).
 *    Measured: patch embedding 1e-9, blocks 4e-6 … 1e-5, merger 0 (bit-exact).
 *  - bf16, the tower chained from the patch rows: 5e-4; the same flips compounded over four
 *    blocks and the merger, measured 1e-5 (block 0) growing to 1.2e-4 (merger).
 * The bf16 limits check the precision policy; the logic is pinned by the fp32 limits.
 *  - quantized Linear weights (fp32 activations) against the fp32 golden, the whole tower. Block
 *    rounding to steps of d leaves errors uniform in ±d/2, a weight NMSE of (max|w| / σ)² / 12
 *    divided by 127² for q8_0 (d = max / 127) and by 8² for q4_0 (d = max / 8): for Gaussian
 *    weights (max ≈ 2.1 σ over 32) 2.2e-5 and 5.6e-3 per Linear, and each Linear's output inherits
 *    it. The tower puts 18 quantized Linears in series (q, k, v as one, proj, gate and up in each
 *    of 4 blocks — down_proj reads 48 and stays fp32 — and the merger's two), so even errors
 *    adding up in full stay below 18× that: LIMIT_Q8 = 1e-3 (4e-4 × 2.5) and LIMIT_Q4 = 0.15
 *    (0.1 × 1.5). A wrong nibble or block order gives NMSE ≈ 1 or more. */
#include <math.h>
#include <string.h>

#include "golden.h"
#include "vit.h"
#include "vkc_ops_eltwise.h"

#define FP32_LIMIT 1e-10
#define BF16_STAGE_LIMIT 1e-4
#define BF16_CHAIN_LIMIT 5e-4
#define LIMIT_Q8 1e-3
#define LIMIT_Q4 0.15

typedef GoldenFixture Fixture;

static VkcTensor
upload (Fixture *f, const float *data, int64_t rows, int64_t cols)
{
  VkcTensor t;
  g_assert_true (DG_ACT (f->arena, &t, rows, cols));
  g_autoptr (GError) error = NULL;
  g_assert_true (vkc_tensor_upload (f->dev, &t, data, &error));
  return t;
}

static void
run (Fixture *f, VkcCmd *cmd)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_arena_check (f->arena, &error));
  g_assert_true (vkc_cmd_submit_wait (cmd, &error));
  g_assert_no_error (error);
}

static double
compare (Fixture *f, DgSafetensors *gold, const char *name, const VkcTensor *t, double limit)
{
  gint64 shape[8];
  guint ndim;
  g_autofree float *want = golden_f32 (gold, name, shape, &ndim);
  gint64 n = 1;
  for (guint d = 0; d < ndim; d++) n *= shape[d];
  g_assert_cmpint (n, ==, vkc_tensor_numel (t));
  g_autoptr (GError) error = NULL;
  g_autofree float *got = dg_tensor_download_f32 (f->dev, t, &error);
  g_assert_no_error (error);
  return golden_compare (name, want, got, (gsize) n, limit);
}

static DgVit *
load_vit (Fixture *f, DgPrecision precision, DgQwenVLConfig *cfg, DgSafetensors **st)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = golden_data_path ("tiny-deepgen/vlm");
  g_autofree char *config = g_build_filename (dir, "config.json", NULL);
  g_assert_true (dg_qwen_vl_config_load (config, cfg, &error));
  *st = golden_open ("tiny-deepgen/vlm");
  DgVit *vit = dg_vit_load (f->dev, &cfg->vision, *st, "visual.", precision, DG_WEIGHTS_RELEASED, NULL, &error);
  g_assert_no_error (error);
  return vit;
}

/* The 10 × 12 patch grid of the module golden is a 160 × 192 reference. */
static void
grid_10x12 (const DgQwenVLConfig *cfg, DgVitGrid *grid)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_vit_grid (160, 192, &cfg->vision, grid, &error));
  g_assert_cmpuint (grid->grid_h, ==, 10);
  g_assert_cmpuint (grid->grid_w, ==, 12);
}

/* get_window_index: the permutation and the window boundaries, exactly. */
static void
test_window_index (void)
{
  DgQwenVLConfig cfg;
  g_autoptr (GError) error = NULL;
  g_autofree char *config = golden_data_path ("tiny-deepgen/vlm/config.json");
  g_assert_true (dg_qwen_vl_config_load (config, &cfg, &error));
  g_autoptr (DgSafetensors) gold = golden_open ("golden/modules_fp32.safetensors");
  DgVitGrid grid;
  grid_10x12 (&cfg, &grid);
  g_autofree guint32 *index = NULL, *cu = NULL;
  guint n_windows;
  dg_vit_window_index (&cfg.vision, &grid, &index, &cu, &n_windows);
  gint64 shape[8];
  g_autofree gint64 *want = golden_i64 (gold, "vit_10x12.window_index", shape, NULL);
  g_assert_cmpint (shape[0], ==, 30);
  for (guint i = 0; i < 30; i++) g_assert_cmpint (index[i], ==, want[i]);
  g_autofree gint64 *want_cu = golden_i64 (gold, "vit_10x12.cu_window_seqlens", shape, NULL);
  g_assert_cmpint (shape[0], ==, n_windows + 1);
  for (guint w = 0; w <= n_windows; w++) g_assert_cmpint (cu[w], ==, want_cu[w]);

  /* 8 × 8 merged tokens (256 × 256 px): a multiple of the window, the reference adds a whole
   * padding window per axis and drops it again; 4 windows of 16 remain. */
  g_assert_true (dg_vit_grid (256, 256, &cfg.vision, &grid, &error));
  g_autofree guint32 *index2 = NULL, *cu2 = NULL;
  dg_vit_window_index (&cfg.vision, &grid, &index2, &cu2, &n_windows);
  g_assert_cmpuint (n_windows, ==, 4);
  for (guint w = 0; w <= 4; w++) g_assert_cmpuint (cu2[w], ==, w * 64);
  g_assert_cmpuint (index2[16], ==, 4); /* window 1 starts at merged column 4 of row 0 */
}

static void
check_tower (DgPrecision precision)
{
  g_autoptr (GoldenFixture) fx = golden_fixture_new ();
  Fixture *f = fx;
  const gboolean bf16 = precision == DG_PRECISION_BF16;
  const double chain = bf16 ? BF16_CHAIN_LIMIT : FP32_LIMIT, stage = bf16 ? BF16_STAGE_LIMIT : FP32_LIMIT;
  DgQwenVLConfig cfg;
  g_autoptr (DgSafetensors) st = NULL;
  g_autoptr (DgVit) vit = load_vit (f, precision, &cfg, &st);
  g_autoptr (DgSafetensors) gold =
      golden_open (bf16 ? "golden/modules_bf16.safetensors" : "golden/modules_fp32.safetensors");
  DgVitGrid grid;
  grid_10x12 (&cfg, &grid);
  const int64_t N = 120, C = cfg.vision.hidden;
  g_autoptr (GError) error = NULL;

  /* The whole tower from the patch rows, every stage observed through the tap. */
  g_autofree float *patches = golden_f32 (gold, "vit_10x12.patches", NULL, NULL);
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (f->dev, &error);
  VkcTensor p = upload (f, patches, N, dg_vit_patch_values (vit)), embeds;
  DgVitTap tap = { golden_keep_tap, f };
  g_assert_true (dg_vit_forward (vit, cmd, f->arena, &p, &grid, &embeds, &tap));
  run (f, cmd);
  compare (f, gold, "vit_10x12.patch_embed.out", g_hash_table_lookup (f->kept, "vit.patch_embed.out"), stage);
  for (guint j = 0; j < cfg.vision.depth; j++) {
    g_autofree char *name = g_strdup_printf ("vit_10x12.block%u.out", j);
    g_autofree char *tap_name = g_strdup_printf ("vit.block%u.out", j);
    compare (f, gold, name, g_hash_table_lookup (f->kept, tap_name), chain);
  }
  compare (f, gold, "vit_10x12.merger.out", &embeds, chain);

  /* Each block alone from its golden input, and the merger from the last block's golden output. */
  for (guint j = 0; j < cfg.vision.depth; j++) {
    g_autofree char *in_name = g_strdup_printf ("vit_10x12.block%u.in", j);
    g_autofree char *out_name = g_strdup_printf ("vit_10x12.block%u.out", j);
    g_autofree float *in = golden_f32 (gold, in_name, NULL, NULL);
    g_autoptr (VkcCmd) c2 = vkc_cmd_begin (f->dev, &error);
    VkcTensor x = upload (f, in, N, C), y;
    g_assert_true (dg_vit_forward_blocks (vit, c2, f->arena, &x, &grid, j, 1, &y, NULL));
    run (f, c2);
    compare (f, gold, out_name, &y, stage);
  }
  g_autofree float *last = golden_f32 (gold, "vit_10x12.block3.out", NULL, NULL);
  g_autoptr (VkcCmd) c3 = vkc_cmd_begin (f->dev, &error);
  VkcTensor x = upload (f, last, N, C), y;
  g_assert_true (dg_vit_forward_merger (vit, c3, f->arena, &x, &y));
  run (f, c3);
  compare (f, gold, "vit_10x12.merger.out", &y, stage);
}

static void
test_tower_fp32 (void)
{
  check_tower (DG_PRECISION_F32);
}

/* The tower with quantized Linear weights, fp32 activations: its output's NMSE against the fp32
 * golden (within @limit). */
static double
tower_quantized (Fixture *f, DgWeightFormat weights, double limit)
{
  DgQwenVLConfig cfg;
  g_autoptr (GError) error = NULL;
  g_autofree char *config = golden_data_path ("tiny-deepgen/vlm/config.json");
  g_assert_true (dg_qwen_vl_config_load (config, &cfg, &error));
  g_autoptr (DgSafetensors) st = golden_open ("tiny-deepgen/vlm");
  g_autoptr (DgVit) vit = dg_vit_load (f->dev, &cfg.vision, st, "visual.", DG_PRECISION_F32, weights, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (DgSafetensors) gold = golden_open ("golden/modules_fp32.safetensors");
  DgVitGrid grid;
  grid_10x12 (&cfg, &grid);
  g_autofree float *patches = golden_f32 (gold, "vit_10x12.patches", NULL, NULL);
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (f->dev, &error);
  VkcTensor p = upload (f, patches, 120, dg_vit_patch_values (vit)), embeds;
  g_assert_true (dg_vit_forward (vit, cmd, f->arena, &p, &grid, &embeds, NULL));
  run (f, cmd);
  return compare (f, gold, "vit_10x12.merger.out", &embeds, limit);
}

static void
test_tower_quantized (void)
{
  g_autoptr (GoldenFixture) fx = golden_fixture_new ();
  const double q8 = tower_quantized (fx, DG_WEIGHTS_Q8_0, LIMIT_Q8);
  const double q4 = tower_quantized (fx, DG_WEIGHTS_Q4_0, LIMIT_Q4);
  g_test_message ("quantized vision tower vs the fp32 golden: q8_0 %.3g (limit %.0e), q4_0 %.3g (limit %.2g)", q8,
                  LIMIT_Q8, q4, LIMIT_Q4);
  /* the weights really were quantized, and 4 bits lose more than 8 */
  g_assert_cmpfloat (q8, >, FP32_LIMIT);
  g_assert_cmpfloat (q4, >, q8);
}
static void
test_tower_bf16 (void)
{
  check_tower (DG_PRECISION_BF16);
}

/* Loading refuses what it cannot run, with a message naming the tensor. */
static void
test_load_errors (void)
{
  g_autoptr (GoldenFixture) fx = golden_fixture_new ();
  Fixture *f = fx;
  DgQwenVLConfig cfg;
  g_autoptr (GError) error = NULL;
  g_autofree char *config = golden_data_path ("tiny-deepgen/vlm/config.json");
  g_assert_true (dg_qwen_vl_config_load (config, &cfg, &error));
  g_autoptr (DgSafetensors) st = golden_open ("tiny-deepgen/vlm");
  /* Wrong layout prefix: the tensors are not found. */
  DgVit *vit =
      dg_vit_load (f->dev, &cfg.vision, st, "model.visual.", DG_PRECISION_F32, DG_WEIGHTS_RELEASED, NULL, &error);
  g_assert_null (vit);
  g_assert_error (error, DG_ERROR, DG_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "model.visual.patch_embed.proj.weight"));
  g_clear_error (&error);
  /* A config that disagrees with the weights: a shape error naming the tensor. */
  DgQwenVisionConfig bad = cfg.vision;
  bad.intermediate += 2;
  vit = dg_vit_load (f->dev, &bad, st, "visual.", DG_PRECISION_F32, DG_WEIGHTS_RELEASED, NULL, &error);
  g_assert_null (vit);
  g_assert_error (error, DG_ERROR, DG_ERROR_SHAPE);
  g_assert_nonnull (strstr (error->message, "mlp.gate_proj.weight"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/vit/window-index", test_window_index);
  g_test_add_func ("/vit/tower-fp32", test_tower_fp32);
  g_test_add_func ("/vit/tower-bf16", test_tower_bf16);
  g_test_add_func ("/vit/tower-quantized", test_tower_quantized);
  g_test_add_func ("/vit/load-errors", test_load_errors);
  return g_test_run ();
}
