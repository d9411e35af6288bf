/* The memory plan against the code it mirrors, on the tiny model (Vulkan, no submission): the
 * VAE's dry run (dg_vae_*_bytes) and the bytes the DiT's forward really takes from its arena
 * equal what model/plan/plan.c computes from the configs alone. */
#include <string.h>

#include "dit.h"
#include "plan.h"
#include "vae.h"
#include "vkc.h"

#ifndef DEEPGEN_TEST_DATA_DIR
#define DEEPGEN_TEST_DATA_DIR "tests/data"
#endif

static VkcDevice *dev;

/* With a device the GroupNorm scratch follows its row splits; everything else is equal. */
static void
test_vae_dry_run (void)
{
  GError *error = NULL;
  g_autofree char *dir = g_build_filename (DEEPGEN_TEST_DATA_DIR, "tiny-deepgen", "vae", NULL);
  DgVaeConfig cfg;
  g_assert_true (dg_vae_config_load (dir, &cfg, &error));
  g_assert_no_error (error);
  DgPlanModel real;
  dg_plan_model_deepgen_1_0 (&real);
  const DgVaeConfig *configs[] = { &cfg, &real.vae };
  const int sizes[][2] = { { 8, 8 }, { 16, 12 }, { 64, 64 }, { 24, 40 }, { 128, 128 } };
  for (guint k = 0; k < G_N_ELEMENTS (configs); k++)
    for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
      const int h = sizes[i][0], w = sizes[i][1];
      const guint64 slack = 4u << 20;
      guint64 ours = dg_plan_vae_decode_bytes (configs[k], h, w),
              code = dg_vae_plan_decode_bytes (dev, configs[k], 1, h, w);
      g_assert_cmpuint (ours + slack, >=, code);
      g_assert_cmpuint (code + slack, >=, ours);
      ours = dg_plan_vae_encode_bytes (configs[k], 8 * h, 8 * w);
      code = dg_vae_plan_encode_bytes (dev, configs[k], 1, 8 * h, 8 * w);
      g_assert_cmpuint (ours + slack, >=, code);
      g_assert_cmpuint (code + slack, >=, ours);
    }
}

/* vae.c's own planning without a device (the same dry run, the GroupNorm scratch estimated) and
 * its weight count equal the plan's. */
static void
test_vae_no_device (void)
{
  DgPlanModel real;
  dg_plan_model_deepgen_1_0 (&real);
  const int lat[][2] = { { 64, 64 }, { 128, 128 }, { 96, 64 }, { 8, 8 }, { 13, 7 } };
  for (guint i = 0; i < G_N_ELEMENTS (lat); i++) {
    const int h = lat[i][0], w = lat[i][1];
    g_assert_cmpuint (dg_plan_vae_decode_bytes (&real.vae, h, w), ==,
                      dg_vae_plan_decode_bytes (NULL, &real.vae, 1, h, w));
    g_assert_cmpuint (dg_plan_vae_encode_bytes (&real.vae, 8 * h, 8 * w), ==,
                      dg_vae_plan_encode_bytes (NULL, &real.vae, 1, 8 * h, 8 * w));
  }
  for (int p = 0; p < 2; p++) {
    DgPrecision prec = p ? DG_PRECISION_F32 : DG_PRECISION_BF16;
    g_assert_cmpuint (dg_plan_weight_bytes (&real, DG_COMPONENT_VAE_ENCODER, prec, DG_WEIGHTS_RELEASED), ==,
                      dg_vae_plan_weight_bytes (&real.vae, DG_VAE_ENCODER, prec));
    g_assert_cmpuint (dg_plan_weight_bytes (&real, DG_COMPONENT_VAE_DECODER, prec, DG_WEIGHTS_RELEASED), ==,
                      dg_vae_plan_weight_bytes (&real.vae, DG_VAE_DECODER, prec));
  }
}

static void
test_dit_arena (void)
{
  GError *error = NULL;
  g_autofree char *dir = g_build_filename (DEEPGEN_TEST_DATA_DIR, "tiny-deepgen", "transformer", NULL);
  g_autoptr (DgDit) dit = dg_dit_load (dev, dir, DG_PRECISION_BF16, DG_WEIGHTS_RELEASED, &error);
  g_assert_no_error (error);
  const DgDitConfig *c = dg_dit_config (dit);
  /* B rows, latent h × w, context S, one reference of the same size or none. */
  const int cases[][5] = { { 2, 16, 16, 20, 0 }, { 2, 16, 24, 33, 1 }, { 1, 32, 32, 7, 1 } };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    const int B = cases[i][0], h = cases[i][1], w = cases[i][2], S = cases[i][3], refs = cases[i][4];
    g_autoptr (DgArena) io = dg_arena_new (dev, "io");
    g_autoptr (DgArena) arena = dg_arena_new (dev, "dit");
    VkcTensor x, t, ctx, pooled, ref, v;
    DG_ACT (io, &x, B, h, w, c->in_channels);
    DG_ACT (io, &t, B);
    DG_ACT (io, &ctx, B, S, c->joint_attention_dim);
    DG_ACT (io, &pooled, B, c->pooled_projection_dim);
    DG_ACT (io, &ref, h, w, c->in_channels);
    DG_ACT (io, &v, B, h, w, c->out_channels);
    g_assert_true (dg_arena_check (io, &error));
    guint n_refs[2] = { (guint) refs, (guint) refs };
    const VkcTensor *ref_list[2] = { &ref, &ref };
    DgDitInput in = { &x, &t, &ctx, &pooled, refs ? n_refs : NULL, refs ? ref_list : NULL };
    g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
    g_assert_no_error (error);
    g_assert_true (dg_dit_forward (dit, cmd, arena, &in, &v, &error));
    g_assert_no_error (error);
    const gint64 L = (gint64) (h / 2) * (w / 2) * (1 + refs);
    g_assert_cmpuint (vkc_pool_used (arena->pool), ==, dg_plan_dit_activation_bytes (c, B, L, S));
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  VkcDeviceOptions o = VKC_DEVICE_OPTIONS_DEFAULT;
  o.no_pipeline_cache = true;
  GError *error = NULL;
  dev = vkc_device_new (&o, &error);
  g_assert_no_error (error);
  g_test_add_func ("/plan-device/vae-dry-run", test_vae_dry_run);
  g_test_add_func ("/plan-device/vae-no-device", test_vae_no_device);
  g_test_add_func ("/plan-device/dit-arena", test_dit_arena);
  int rc = g_test_run ();
  guint messages = vkc_device_validation_messages (dev);
  vkc_device_free (dev);
  return messages ? 1 : rc;
}
