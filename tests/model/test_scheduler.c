/* The sampler (model/sampling/scheduler.h) against diffusers 0.35.2:
 *  - set_timesteps(N) tables of tests/data/golden/scheduler.safetensors (N = 1, 2, 4, 28, 50) and
 *    of every scenario: float32 equality, bit for bit (they are pure functions of N and config);
 *  - the dynamic-shift branch against values dumped once from diffusers (not used by DeepGen's
 *    config, kept exact in case a config enables it);
 *  - guidance and the Euler update against the scenarios' dit.step{s}.{v, v_cfg, latents}:
 *    given the golden inputs of a step, our host arithmetic must give the golden outputs exactly,
 *    in fp32 and in bf16 (where torch rounds dt, the product and the result to bf16);
 *  - the change strength against tests/data/strength (tests/golden/make_strength.py: diffusers'
 *    StableDiffusion3Img2ImgPipeline.get_timesteps and FlowMatchEulerDiscreteScheduler.scale_noise):
 *    the first kept step, the kept sigmas and timesteps, the noised source latent in fp32 and bf16. */
#include <math.h>
#include <string.h>

#include "config.h"
#include "golden.h"
#include "scheduler.h"
#include "vkc_half.h"

static DgSchedulerConfig
tiny_config (void)
{
  g_autofree char *path = golden_data_path ("tiny-deepgen/scheduler");
  g_autoptr (GError) error = NULL;
  DgSchedulerConfig c;
  g_assert_true (dg_scheduler_config_load (path, &c, &error));
  g_assert_no_error (error);
  return c;
}

static void
assert_same_f32 (const char *what, const float *got, const float *want, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (memcmp (&got[i], &want[i], 4) != 0)
      g_error ("%s[%zu]: got %.9g, diffusers %.9g", what, i, got[i], want[i]);
}

static void
check_tables (DgSafetensors *st, const char *prefix, const DgSchedulerConfig *c)
{
  g_autofree char *sn = g_strconcat (prefix, "sigmas", NULL);
  g_autofree char *tn = g_strconcat (prefix, "timesteps", NULL);
  gint64 shape[8];
  g_autofree float *want_t = golden_f32 (st, tn, shape, NULL);
  guint n = (guint) shape[0];
  g_autofree float *want_s = golden_f32 (st, sn, shape, NULL);
  g_assert_cmpint (shape[0], ==, n + 1);
  g_autoptr (GError) error = NULL;
  g_autoptr (DgSchedule) s = dg_schedule_new (c, n, 64, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (s->n_steps, ==, n);
  assert_same_f32 (sn, s->sigmas, want_s, n + 1);
  assert_same_f32 (tn, s->timesteps, want_t, n);
}

static void
test_tables (void)
{
  DgSchedulerConfig c = tiny_config ();
  g_assert_false (c.use_dynamic_shifting);
  g_assert_cmpfloat (c.shift, ==, 3.0);
  g_autoptr (DgSafetensors) st = golden_open ("golden/scheduler.safetensors");
  static const guint ns[] = { 1, 2, 4, 28, 50 };
  for (guint i = 0; i < G_N_ELEMENTS (ns); i++) {
    g_autofree char *prefix = g_strdup_printf ("sched.N%u.", ns[i]);
    check_tables (st, prefix, &c);
  }
  /* MODEL.md §7 quotes the 50-step table: σ_1 = 0.993124, σ_49 = 0.008929, t_1 = 993.1244. */
  g_autoptr (DgSchedule) s = dg_schedule_new (&c, 50, 0, NULL);
  g_assert_cmpfloat (fabs (s->sigmas[1] - 0.993124), <, 5e-7);
  g_assert_cmpfloat (fabs (s->sigmas[49] - 0.008929), <, 5e-7);
  g_assert_cmpfloat (fabs (s->timesteps[1] - 993.1244), <, 5e-5);
  g_assert_cmpfloat (s->sigmas[0], ==, 1.0f);
  g_assert_cmpfloat (s->sigmas[50], ==, 0.0f);

  for (int k = 1; k <= 6; k++)
    for (int bf = 0; bf < 2; bf++) {
      g_autofree char *name = g_strdup_printf ("golden/scenario%d_%s.safetensors", k, bf ? "bf16" : "fp32");
      g_autoptr (DgSafetensors) sc = golden_open (name);
      check_tables (sc, "sched.", &c);
    }
}

static void
test_dynamic_shift (void)
{
  /* diffusers FlowMatchEulerDiscreteScheduler.from_config(tiny config + use_dynamic_shifting,
   * time_shift_type) .set_timesteps(5, mu = calculate_shift(1024)) — μ = 0.63. */
  static const struct {
    DgTimeShiftType type;
    guint32 sigmas[6], timesteps[5];
  } cases[] = {
    { DG_TIME_SHIFT_EXPONENTIAL,
      { 0x3f800000, 0x3f5972a4, 0x3f272743, 0x3ec5938b, 0x3af5e2eb, 0 },
      { 0x447a0000, 0x445459f4, 0x44233c57, 0x43c0f216, 0x3ff01f99 } },
    { DG_TIME_SHIFT_LINEAR,
      { 0x3f800000, 0x3f277ef6, 0x3ec621e7, 0x3e324e83, 0x3a25363c, 0 },
      { 0x447a0000, 0x442391fc, 0x43c17d1c, 0x432e20ac, 0x3f2156f7 } },
  };
  for (guint k = 0; k < G_N_ELEMENTS (cases); k++) {
    DgSchedulerConfig c = tiny_config ();
    c.use_dynamic_shifting = TRUE;
    c.time_shift_type = cases[k].type;
    g_assert_cmpfloat (fabs (dg_schedule_mu (&c, 1024) - 0.63), <, 1e-12);
    g_autoptr (DgSchedule) s = dg_schedule_new (&c, 5, 1024, NULL);
    float want_s[6], want_t[5];
    memcpy (want_s, cases[k].sigmas, sizeof want_s);
    memcpy (want_t, cases[k].timesteps, sizeof want_t);
    assert_same_f32 ("dynamic sigmas", s->sigmas, want_s, 6);
    assert_same_f32 ("dynamic timesteps", s->timesteps, want_t, 5);
  }
}

static void
test_bad_input (void)
{
  DgSchedulerConfig c = tiny_config ();
  g_autoptr (GError) error = NULL;
  g_assert_null (dg_schedule_new (&c, 0, 0, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
}

/* Every step of every scenario: v_cfg from v (step 0, the only step with raw v), latents from
 * the previous latents and v_cfg (all steps). */
static void
test_cfg_and_euler (void)
{
  DgSchedulerConfig c = tiny_config ();
  for (int k = 1; k <= 6; k++)
    for (int bf = 0; bf < 2; bf++) {
      DgPrecision prec = bf ? DG_PRECISION_BF16 : DG_PRECISION_F32;
      g_autofree char *name = g_strdup_printf ("golden/scenario%d_%s.safetensors", k, bf ? "bf16" : "fp32");
      g_autoptr (DgSafetensors) st = golden_open (name);
      gint64 shape[8];
      const DgTensorInfo *sig = dg_safetensors_find (st, "sched.sigmas");
      g_assert_nonnull (sig);
      guint n_steps = (guint) sig->shape[0] - 1;
      g_autoptr (DgSchedule) s = dg_schedule_new (&c, n_steps, 0, NULL);
      g_autofree float *x = golden_f32 (st, "dit.noise0", shape, NULL);
      gsize n = (gsize) (shape[0] * shape[1] * shape[2] * shape[3]);

      g_autofree float *v = golden_f32 (st, "dit.step0.v", NULL, NULL);
      g_autofree float *want_cfg = golden_f32 (st, "dit.step0.v_cfg", NULL, NULL);
      g_autofree float *cfg = g_new (float, n);
      dg_cfg_combine (cfg, v, v + n, n, 4.0, prec); /* rows [uncond..., cond...] */
      assert_same_f32 (name, cfg, want_cfg, n);

      for (guint i = 0; i < n_steps; i++) {
        g_autofree char *vn = g_strdup_printf ("dit.step%u.v_cfg", i);
        g_autofree char *ln = g_strdup_printf ("dit.step%u.latents", i);
        g_autofree float *vc = golden_f32 (st, vn, NULL, NULL);
        g_autofree float *want = golden_f32 (st, ln, NULL, NULL);
        dg_euler_step (s, i, x, vc, n, prec);
        assert_same_f32 (ln, x, want, n);
      }
    }
}

/* The cases of tests/golden/make_strength.py (CASES), in its order. */
static const struct {
  guint n;
  double strength;
} strength_cases[] = {
  { 4, 0.5 },  { 4, 0.3 },   { 28, 0.6 },   { 28, 0.95 },  { 50, 0.7 }, { 50, 0.75 }, { 50, 0.999 },
  { 50, 1.0 }, { 50, 0.02 }, { 100, 0.57 }, { 100, 0.58 }, { 1, 1.0 },  { 2, 0.5 },
};

static void
test_strength (void)
{
  DgSchedulerConfig c = tiny_config ();
  g_autoptr (DgSafetensors) st = golden_open ("strength/strength.safetensors");
  gint64 shape[8];
  g_autofree float *x0 = golden_f32 (st, "x0", shape, NULL);
  g_autofree float *noise = golden_f32 (st, "noise", NULL, NULL);
  const gsize n = (gsize) (shape[0] * shape[1] * shape[2] * shape[3]);
  for (guint k = 0; k < G_N_ELEMENTS (strength_cases); k++) {
    const guint steps = strength_cases[k].n;
    g_autofree char *p = g_strdup_printf ("case%u.", k);
    g_autofree char *nn = g_strconcat (p, "n", NULL), *sn = g_strconcat (p, "strength", NULL),
                    *tn = g_strconcat (p, "t_start", NULL), *ts = g_strconcat (p, "timesteps", NULL),
                    *sg = g_strconcat (p, "sigmas", NULL);
    g_autofree float *want_n = golden_f32 (st, nn, NULL, NULL), *want_strength = golden_f32 (st, sn, NULL, NULL),
                     *want_start = golden_f32 (st, tn, NULL, NULL);
    g_assert_cmpfloat (want_n[0], ==, (float) steps); /* the same table as the generator's */
    g_assert_cmpfloat (want_strength[0], ==, (float) strength_cases[k].strength);

    const guint first = dg_schedule_first_step (steps, strength_cases[k].strength);
    g_assert_cmpuint (first, ==, (guint) want_start[0]);
    g_autoptr (DgSchedule) s = dg_schedule_new (&c, steps, 0, NULL);
    g_autofree float *want_t = golden_f32 (st, ts, shape, NULL);
    g_assert_cmpint (shape[0], ==, steps - first);
    assert_same_f32 (ts, s->timesteps + first, want_t, steps - first);
    g_autofree float *want_s = golden_f32 (st, sg, shape, NULL);
    g_assert_cmpint (shape[0], ==, steps - first + 1);
    assert_same_f32 (sg, s->sigmas + first, want_s, steps - first + 1);

    for (int bf = 0; bf < 2; bf++) {
      g_autofree char *yn = g_strconcat (p, bf ? "scaled_bf16" : "scaled_fp32", NULL);
      g_autofree float *want = golden_f32 (st, yn, NULL, NULL);
      g_autofree float *x = g_new (float, n), *e = g_new (float, n);
      for (gsize i = 0; i < n; i++) {
        x[i] = bf ? vkc_round_bf16 (x0[i]) : x0[i];
        e[i] = bf ? vkc_round_bf16 (noise[i]) : noise[i];
      }
      dg_scale_noise (s, first, x, e, n, bf ? DG_PRECISION_BF16 : DG_PRECISION_F32);
      assert_same_f32 (yn, x, want, n);
    }
  }
  /* int() truncates: any strength whose n·strength is not lost in n − n·strength keeps a step
   * (50·0.01 → t_start = int(49.5) = 49); strength 0 keeps none (the pipeline refuses it). */
  g_assert_cmpuint (dg_schedule_first_step (50, 0.01), ==, 49);
  g_assert_cmpuint (dg_schedule_first_step (50, 1e-20), ==, 50);
  g_assert_cmpuint (dg_schedule_first_step (50, 0.0), ==, 50);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/scheduler/tables", test_tables);
  g_test_add_func ("/scheduler/dynamic-shift", test_dynamic_shift);
  g_test_add_func ("/scheduler/bad-input", test_bad_input);
  g_test_add_func ("/scheduler/cfg-euler", test_cfg_and_euler);
  g_test_add_func ("/scheduler/strength", test_strength);
  return g_test_run ();
}
