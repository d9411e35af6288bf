/* What a resident model keeps between jobs (deepgen.h dg_plan_resident_set, DESIGN.md §9), on
 * constructed plans whose sizes leave clear room or clear want around each decision. */
#include "deepgen.h"

#define GIB (1ull << 30)
#define BIT(s) (1u << (s))

static void
stage (DgPlan *p, DgPlanStage s, double weights_gib, double work_gib)
{
  p->stage[s].weights = (guint64) (weights_gib * GIB);
  p->stage[s].activations = (guint64) (work_gib * GIB);
  p->stage[s].carried = 0;
  p->stage[s].total = p->stage[s].weights + p->stage[s].activations;
}

/* A generate: VLM 6 GiB, connector 1, DiT 8 (+ 2 working), VAE decoder 0.25; no VAE encoder. */
static DgPlan
generate_plan (void)
{
  DgPlan p = { 0 };
  stage (&p, DG_PLAN_ENCODE, 6, 1);
  stage (&p, DG_PLAN_BRIDGE, 1, 1);
  stage (&p, DG_PLAN_DENOISE, 8, 2);
  stage (&p, DG_PLAN_DECODE, 0.25, 1);
  return p;
}

static guint64
gib (double n)
{
  return (guint64) (n * GIB);
}

static void
test_all_fit (void)
{
  DgPlan p = generate_plan ();
  /* 15.25 GiB of weights + denoise's 2 working + the margin (256 MiB + 5 %) ≈ 18.4 GiB. */
  g_assert_cmphex (dg_plan_resident_set (&p, gib (24), NULL), ==,
                   BIT (DG_PLAN_ENCODE) | BIT (DG_PLAN_BRIDGE) | BIT (DG_PLAN_DENOISE) | BIT (DG_PLAN_DECODE));
  /* A device of unknown size keeps nothing. */
  g_assert_cmphex (dg_plan_resident_set (&p, 0, NULL), ==, 0);
}

static void
test_none_fit (void)
{
  DgPlan p = generate_plan ();
  /* The denoise stage alone needs 10 · 1.05 + 0.25 = 10.75 GiB; beside even the 0.25 GiB decoder
   * 11.01: nothing can stay. */
  g_assert_cmphex (dg_plan_resident_set (&p, gib (10.8), NULL), ==, 0);
}

static void
test_partial (void)
{
  DgPlan p = generate_plan ();
  /* 17 GiB: the DiT (8) stays (encode then holds 7 + 8 → 16.0 GiB with the margin); the VLM
   * beside it would not (denoise 10 + 6 → 17.05), nor the connector (encode 7 + 8 + 1 → 17.05);
   * the VAE decoder still does (encode 15.25 → 16.26). */
  g_assert_cmphex (dg_plan_resident_set (&p, gib (17), NULL), ==, BIT (DG_PLAN_DENOISE) | BIT (DG_PLAN_DECODE));
  /* 14 GiB: neither the DiT (encode 15) nor the VLM (denoise 16) fits beside the others'
   * stages; the connector and the decoder do (denoise 11.25 → 12.06). */
  g_assert_cmphex (dg_plan_resident_set (&p, gib (14), NULL), ==, BIT (DG_PLAN_BRIDGE) | BIT (DG_PLAN_DECODE));
}

static void
test_lru (void)
{
  /* A job that loads only the DiT and the decoder (a constructed plan), with the connector and
   * the VAE encoder (1 GiB each) left by earlier jobs. */
  DgPlan p = { 0 };
  stage (&p, DG_PLAN_DENOISE, 8, 2);
  stage (&p, DG_PLAN_DECODE, 0.25, 1);
  DgResidentHeld held = { 0 };
  held.weights[DG_PLAN_BRIDGE] = gib (1);
  held.weights[DG_PLAN_VAE_ENCODE] = gib (1);
  held.last_used[DG_PLAN_BRIDGE] = 2;
  held.last_used[DG_PLAN_VAE_ENCODE] = 5;
  /* Room for all: denoise beside 2.25 GiB → 12.25 · 1.05 + 0.25 = 13.11 GiB. */
  g_assert_cmphex (dg_plan_resident_set (&p, gib (13.5), &held), ==,
                   BIT (DG_PLAN_BRIDGE) | BIT (DG_PLAN_VAE_ENCODE) | BIT (DG_PLAN_DENOISE) | BIT (DG_PLAN_DECODE));
  /* Room for one of the two (11.25 → 12.06): the most recently used stays, the job's own first. */
  g_assert_cmphex (dg_plan_resident_set (&p, gib (12.5), &held), ==,
                   BIT (DG_PLAN_VAE_ENCODE) | BIT (DG_PLAN_DENOISE) | BIT (DG_PLAN_DECODE));
  held.last_used[DG_PLAN_BRIDGE] = 7;
  g_assert_cmphex (dg_plan_resident_set (&p, gib (12.5), &held), ==,
                   BIT (DG_PLAN_BRIDGE) | BIT (DG_PLAN_DENOISE) | BIT (DG_PLAN_DECODE));
  /* Room for the job's own only: both earlier ones go, though they are smaller than the DiT. */
  g_assert_cmphex (dg_plan_resident_set (&p, gib (11.2), &held), ==, BIT (DG_PLAN_DENOISE) | BIT (DG_PLAN_DECODE));
  /* What the job loads counts with its plan's bytes, whatever an earlier job recorded. */
  held.weights[DG_PLAN_DENOISE] = gib (100);
  g_assert_cmphex (dg_plan_resident_set (&p, gib (11.2), &held), ==, BIT (DG_PLAN_DENOISE) | BIT (DG_PLAN_DECODE));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/resident-set/all-fit", test_all_fit);
  g_test_add_func ("/resident-set/none-fit", test_none_fit);
  g_test_add_func ("/resident-set/partial", test_partial);
  g_test_add_func ("/resident-set/lru", test_lru);
  return g_test_run ();
}
