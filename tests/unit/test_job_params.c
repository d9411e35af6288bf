/* A result's parameters (deepgen.h, DgJobParams; model/io/job_params.c): the round trip through
 * the one-line JSON every front-end writes (PNG chunk, GIMP parasite), the request it gives back,
 * and damaged or foreign text refused with DG_ERROR_FORMAT, never a crash. */
#include <string.h>

#include "deepgen.h"

static void
assert_same (const DgJobParams *a, const DgJobParams *b)
{
  g_assert_cmpint (a->job, ==, b->job);
  g_assert_cmpstr (a->prompt, ==, b->prompt);
  g_assert_cmpstr (a->negative_prompt, ==, b->negative_prompt);
  g_assert_cmpuint (a->seed, ==, b->seed);
  g_assert_cmpint (a->rng, ==, b->rng);
  g_assert_cmpint (a->steps, ==, b->steps);
  g_assert_cmpfloat (a->guidance, ==, b->guidance);
  g_assert_cmpfloat (a->strength, ==, b->strength);
  g_assert_cmpint (a->width, ==, b->width);
  g_assert_cmpint (a->height, ==, b->height);
  g_assert_cmpint (a->precision, ==, b->precision);
  g_assert_cmpint (a->weights, ==, b->weights);
  g_assert_cmpstr (a->model_revision, ==, b->model_revision);
}

static void
test_round_trip (void)
{
  DgRequest r = DG_REQUEST_INIT;
  r.job = DG_JOB_INPAINT;
  r.prompt = "ein \"Fuchs\" 狐 \\ im Schnee\nzweite Zeile";
  r.negative_prompt = "blur, ✗";
  r.seed = G_MAXUINT64 - 1; /* more than a double holds */
  r.rng = DG_RNG_TORCH_CPU;
  r.steps = 0;            /* resolved: 50 */
  r.guidance = -1;        /* resolved: 4.0 */
  r.strength = 0.1 + 0.2; /* not a short decimal */
  r.width = 768;
  g_autoptr (DgJobParams) p = dg_job_params_new (&r, DG_PRECISION_F32, DG_WEIGHTS_Q4_0);
  g_assert_cmpint (p->steps, ==, DG_DEFAULT_STEPS);
  g_assert_cmpfloat (p->guidance, ==, DG_DEFAULT_GUIDANCE);
  p->model_revision = g_strdup ("0123abcd");
  g_autofree char *text = dg_job_params_to_string (p);
  g_assert_null (strchr (text, '\n')); /* one line */
  g_autoptr (GError) error = NULL;
  g_autoptr (DgJobParams) q = dg_job_params_from_string (text, &error);
  g_assert_no_error (error);
  assert_same (p, q);
  g_autofree char *again = dg_job_params_to_string (q);
  g_assert_cmpstr (text, ==, again);

  DgRequest back;
  dg_job_params_to_request (q, &back);
  g_assert_cmpint (back.job, ==, r.job);
  g_assert_cmpstr (back.prompt, ==, r.prompt);
  g_assert_cmpstr (back.negative_prompt, ==, r.negative_prompt);
  g_assert_cmpuint (back.seed, ==, r.seed);
  g_assert_cmpint (back.rng, ==, r.rng);
  g_assert_cmpint (back.steps, ==, 50);
  g_assert_cmpfloat (back.guidance, ==, 4.0);
  g_assert_cmpfloat (back.strength, ==, r.strength);
  g_assert_cmpint (back.width, ==, 768);
  g_assert_cmpint (back.height, ==, 0);

  /* no negative prompt and no revision: absent, and absent again after the trip */
  r.negative_prompt = NULL;
  g_autoptr (DgJobParams) n = dg_job_params_new (&r, DG_PRECISION_BF16, DG_WEIGHTS_RELEASED);
  g_autofree char *nt = dg_job_params_to_string (n);
  g_assert_null (strstr (nt, "negative"));
  g_assert_null (strstr (nt, "revision"));
  g_autoptr (DgJobParams) n2 = dg_job_params_from_string (nt, &error);
  g_assert_no_error (error);
  assert_same (n, n2);
}

static void
test_bad (void)
{
  static const char *const bad[] = {
    "",
    "not json",
    "[1, 2]",
    "{}",
    "{\"deepgen-parameters\":2,\"job\":\"generate\"}", /* a later version */
    "{\"deepgen-parameters\":1,\"job\":\"paint\",\"prompt\":\"x\",\"seed\":\"1\",\"rng\":\"philox\",\"steps\":2,"
    "\"guidance\":4,\"strength\":1,\"width\":0,\"height\":0,\"precision\":\"bf16\",\"weights\":\"released\"}",
    "{\"deepgen-parameters\":1,\"job\":\"generate\",\"prompt\":\"x\",\"seed\":\"-1\",\"rng\":\"philox\",\"steps\":2,"
    "\"guidance\":4,\"strength\":1,\"width\":0,\"height\":0,\"precision\":\"bf16\",\"weights\":\"released\"}",
    "{\"deepgen-parameters\":1,\"job\":\"generate\",\"prompt\":\"x\",\"seed\":\"1\",\"rng\":\"philox\",\"steps\":2.5,"
    "\"guidance\":4,\"strength\":1,\"width\":0,\"height\":0,\"precision\":\"bf16\",\"weights\":\"released\"}",
    "{\"deepgen-parameters\":1,\"job\":\"generate\",\"prompt\":\"x\",\"seed\":\"1\",\"rng\":\"philox\",\"steps\":2,"
    "\"guidance\":4,\"strength\":1.5,\"width\":0,\"height\":0,\"precision\":\"bf16\",\"weights\":\"released\"}",
    "{\"deepgen-parameters\":1,\"job\":\"generate\",\"prompt\":7,\"seed\":\"1\",\"rng\":\"philox\",\"steps\":2,"
    "\"guidance\":4,\"strength\":1,\"width\":0,\"height\":0,\"precision\":\"bf16\",\"weights\":\"released\"}",
    "{\"deepgen-parameters\":1,\"job\":\"generate\",\"prompt\":\"x\",\"seed\":\"1\",\"rng\":\"philox\",\"steps\":2,"
    "\"guidance\":4,\"strength\":1,\"width\":99999,\"height\":0,\"precision\":\"bf16\",\"weights\":\"released\"}",
    "{\"a\":{\"b\":{\"c\":{}}}}",
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (DgJobParams) p = dg_job_params_from_string (bad[i], &error);
    g_assert_null (p);
    g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
  }
  g_autoptr (GError) error = NULL;
  g_assert_null (dg_job_params_from_string (NULL, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
  g_clear_error (&error);
  /* far too long for parameters */
  g_autofree char *huge = g_strnfill (300 * 1024, ' ');
  g_assert_null (dg_job_params_from_string (huge, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/job-params/round-trip", test_round_trip);
  g_test_add_func ("/job-params/bad", test_bad);
  return g_test_run ();
}
