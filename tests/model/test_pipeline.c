/* The public pipeline (dg_run / dg_run_batch) end to end on the tiny model, against the six
 * golden scenarios of tests/data/golden (TESTING.md §5): prompt strings and reference PNGs
 * in, 8-bit images out, with the scenario's seed through the torch-compatible generator and
 * the golden run's VAE posterior noise injected.
 *
 * Limits. fp32 mode: the final 8-bit images must agree within ±1 on at least 99.9% of the
 * values (issue 5). Everything upstream matches the fp32 goldens to ~1e-9 NMSE per module, so
 * only values whose float result sits within rounding of a quantisation step can flip, and
 * then by one level. bf16 mode: the canonical bf16 run itself is not stable at the 8-bit level
 * — re-running torch with another thread count moves out.u8 by up to 47 levels on the edit
 * scenarios (tests/golden/README.md: a random 36-layer LLM amplifies last-ulp differences) —
 * so bf16 end-to-end runs are checked for shape and for closeness in the mean (mean absolute
 * difference below 3 levels on the text-to-image scenarios, whose DiT and VAE are well
 * conditioned); the bf16 numerics are validated stage by stage in test_vlm/test_dit/test_vae. */
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "deepgen.h"
#include "golden.h"
#include "deepgen_hooks.h"
#include "vkc_half.h"

static DgEngine *engine;

typedef struct {
  int id;
  guint batch;
  const char *prompts[2];
  const char *negatives[2];
  int height, width, steps;
  double guidance;
  guint64 noise_seed;
  /* references per request (PNG names) */
  guint n_refs[2];
  const char *refs[2][2];
  guint64 eps_seeds[3];
  DgJob job;
} Scenario;

#define EDIT_NEG                                                                                               \
  "blurry, low quality, low resolution, distorted, deformed, broken content, missing parts, damaged details, " \
  "artifacts, glitch, noise, pixelated, grainy, compression artifacts, bad composition, wrong proportion, "    \
  "incomplete editing, unfinished, unedited areas."

/* The same values as tests/data/golden/manifest.json (scenarios.list). */
static const Scenario scenarios[] = {
  { 1,
    1,
    { "a red fox in the snow" },
    { "low quality, blurry" },
    128,
    128,
    4,
    4.0,
    1001,
    { 0 },
    { { 0 } },
    { 0 },
    DG_JOB_GENERATE },
  { 2,
    2,
    { "a small cat", "an old man with a hat on the beach at sunset, oil painting" },
    { "", "" },
    128,
    160,
    3,
    4.0,
    1002,
    { 0 },
    { { 0 } },
    { 0 },
    DG_JOB_GENERATE },
  { 3,
    1,
    { "Make the sky darker" },
    { EDIT_NEG },
    160,
    192,
    2,
    4.0,
    1003,
    { 1 },
    { { "ref_160x192" } },
    { 2030 },
    DG_JOB_EDIT },
  { 4,
    1,
    { "Turn the photo into a painting" },
    { "" },
    256,
    256,
    2,
    4.0,
    1004,
    { 1 },
    { { "ref_256x256" } },
    { 2040 },
    DG_JOB_EDIT },
  { 5,
    1,
    { "Combine the two images into one scene" },
    { EDIT_NEG },
    192,
    192,
    2,
    4.0,
    1005,
    { 2 },
    { { "ref_160x192", "ref_224x224" } },
    { 2050, 2051 },
    DG_JOB_EDIT },
  { 6,
    2,
    { "Add a hat to the cat", "Swap the two objects" },
    { "", "" },
    128,
    128,
    2,
    4.0,
    1006,
    { 1, 2 },
    { { "ref_128x128" }, { "ref_160x128", "ref_128x96" } },
    { 2060, 2061, 2062 },
    DG_JOB_EDIT },
};

static DgImage *
load_png (const char *name)
{
  g_autofree char *file = g_strdup_printf ("golden/%s.png", name);
  g_autofree char *path = golden_data_path (file);
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

/* The VAE-encoder inputs a run uploaded, by flat reference index (DgRunHooks.vae_input). */
typedef struct {
  float *pixels[8];
  int height[8], width[8];
} VaeInputs;

static void
keep_vae_input (gpointer user_data, guint index, const float *pixels, int height, int width)
{
  VaeInputs *v = user_data;
  g_assert_cmpuint (index, <, G_N_ELEMENTS (v->pixels));
  g_assert_null (v->pixels[index]);
  v->pixels[index] = g_memdup2 (pixels, (gsize) height * width * 3 * sizeof (float));
  v->height[index] = height;
  v->width[index] = width;
}

/* The golden scenarios' reference pixels as golden_scenarios.py's load_image makes them:
 * torch float32 u8 / 255, then 2·x − 1, then .to(run dtype) (bf16: round to nearest even). The
 * production path must hand the VAE encoder exactly these bits. */
static void
check_vae_input (const VaeInputs *v, guint index, const DgImage *png, gboolean bf16)
{
  g_assert_nonnull (v->pixels[index]);
  g_assert_cmpint (v->width[index], ==, png->width);
  g_assert_cmpint (v->height[index], ==, png->height);
  for (int y = 0; y < png->height; y++)
    for (int x = 0; x < png->width; x++)
      for (int c = 0; c < 3; c++) {
        float t = (float) png->pixels[(gsize) y * png->rowstride + (gsize) x * png->channels + c] / 255.0f;
        float want = 2.0f * t - 1.0f;
        if (bf16)
          want = vkc_round_bf16 (want);
        float got = v->pixels[index][((gsize) y * png->width + x) * 3 + c];
        if (memcmp (&got, &want, sizeof got) != 0)
          g_error ("reference %u pixel (%d, %d, %d): the VAE encoder got %.9g, the golden input is %.9g", index, x, y,
                   c, got, want);
      }
}

static void
check_scenario (gconstpointer data)
{
  const Scenario *sc = data;
  for (int mode = 0; mode < 2; mode++) {
    DgPrecision prec = mode == 0 ? DG_PRECISION_F32 : DG_PRECISION_BF16;
    g_autofree char *golden_name = g_strdup_printf ("golden/scenario%d_%s.safetensors", sc->id, mode ? "bf16" : "fp32");
    g_autoptr (DgSafetensors) g = golden_open (golden_name);
    g_autofree char *model_dir = golden_data_path ("tiny-deepgen");
    g_autoptr (GError) error = NULL;
    DgLoadOptions lo = DG_LOAD_OPTIONS_INIT;
    lo.precision = prec;
    g_autoptr (DgModel) model = dg_model_open (engine, model_dir, &lo, &error);
    g_assert_no_error (error);

    DgRequest reqs[2];
    const DgRequest *rp[2];
    DgImage *imgs[2][2] = { { 0 } };
    const DgImage *img_ptrs[2][2];
    for (guint b = 0; b < sc->batch; b++) {
      reqs[b] = (DgRequest) DG_REQUEST_INIT;
      reqs[b].job = sc->job;
      reqs[b].prompt = sc->prompts[b];
      reqs[b].negative_prompt = sc->negatives[b];
      reqs[b].width = sc->width;
      reqs[b].height = sc->height;
      reqs[b].steps = sc->steps;
      reqs[b].guidance = sc->guidance;
      reqs[b].seed = sc->noise_seed;
      reqs[b].rng = DG_RNG_TORCH_CPU;
      for (guint j = 0; j < sc->n_refs[b]; j++) {
        imgs[b][j] = load_png (sc->refs[b][j]);
        img_ptrs[b][j] = imgs[b][j];
      }
      reqs[b].images = img_ptrs[b];
      reqs[b].n_images = sc->n_refs[b];
      rp[b] = &reqs[b];
    }
    VaeInputs vae_in;
    memset (&vae_in, 0, sizeof vae_in);
    DgRunHooks hooks = { .vae_eps_seeds = sc->eps_seeds[0] ? sc->eps_seeds : NULL,
                         .references_as_given = TRUE,
                         .vae_input = keep_vae_input,
                         .vae_input_data = &vae_in };
    gint64 t0 = g_get_monotonic_time ();
    g_autoptr (GPtrArray) out = dg_run_batch_hooked (model, rp, sc->batch, &hooks, NULL, NULL, NULL, &error);
    g_assert_no_error (error);
    for (guint b = 0, flat = 0; b < sc->batch; b++)
      for (guint j = 0; j < sc->n_refs[b]; j++, flat++) {
        check_vae_input (&vae_in, flat, imgs[b][j], prec == DG_PRECISION_BF16);
        g_free (vae_in.pixels[flat]);
      }
    g_test_message ("scenario %d %s: %.1f s", sc->id, mode ? "bf16" : "fp32", (g_get_monotonic_time () - t0) / 1e6);
    g_assert_cmpuint (out->len, ==, sc->batch);

    gint64 shape[8];
    g_autofree gint64 *want = golden_i64 (g, "out.u8", shape, NULL);
    g_assert_cmpint (shape[0], ==, sc->batch);
    g_assert_cmpint (shape[1], ==, sc->height);
    g_assert_cmpint (shape[2], ==, sc->width);
    gsize total = 0, off_by_more = 0;
    double abs_sum = 0;
    int worst = 0;
    for (guint b = 0; b < sc->batch; b++) {
      const DgImage *img = g_ptr_array_index (out, b);
      g_assert_cmpint (img->width, ==, sc->width);
      g_assert_cmpint (img->height, ==, sc->height);
      g_assert_cmpint (img->channels, ==, 3);
      for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width * 3; x++) {
          int got = img->pixels[(gsize) y * img->rowstride + x];
          int exp = (int) want[((gsize) b * sc->height + y) * sc->width * 3 + x];
          int d = ABS (got - exp);
          off_by_more += d > 1;
          abs_sum += d;
          worst = MAX (worst, d);
          total++;
        }
    }
    double frac_ok = 1.0 - (double) off_by_more / total, mad = abs_sum / total;
    g_test_message ("scenario %d %s: %.4f%% within ±1, mean |diff| %.3f, worst %d", sc->id, mode ? "bf16" : "fp32",
                    100 * frac_ok, mad, worst);
    if (prec == DG_PRECISION_F32) {
      if (frac_ok < 0.999)
        g_error ("scenario %d fp32: only %.3f%% of values within ±1 of the golden image (need 99.9%%)", sc->id,
                 100 * frac_ok);
    } else if (sc->job == DG_JOB_GENERATE && mad > 3.0) {
      g_error ("scenario %d bf16: mean |diff| %.2f levels exceeds 3", sc->id, mad);
    }
    for (guint b = 0; b < sc->batch; b++)
      for (guint j = 0; j < sc->n_refs[b]; j++) dg_image_free (imgs[b][j]);
  }
}

static DgModel *
open_tiny (DgPrecision prec)
{
  g_autofree char *model_dir = golden_data_path ("tiny-deepgen");
  g_autoptr (GError) error = NULL;
  DgLoadOptions lo = DG_LOAD_OPTIONS_INIT;
  lo.precision = prec;
  DgModel *model = dg_model_open (engine, model_dir, &lo, &error);
  g_assert_no_error (error);
  return model;
}

/* Inpainting through the public API: every pixel where the mask is 0 is bit-identical to the
 * input, pixels deep inside the mask changed, and the result keeps the input's size and alpha. */
static void
test_inpaint (void)
{
  g_autoptr (DgModel) model = open_tiny (DG_PRECISION_F32);
  g_autoptr (DgImage) rgb = load_png ("ref_256x256");
  /* An RGBA source 300×200 (not a multiple of anything) cut from the reference, with alpha. */
  g_autoptr (DgImage) src = dg_image_new (300, 200, 4);
  for (int y = 0; y < 200; y++)
    for (int x = 0; x < 300; x++) {
      guint8 *d = src->pixels + (gsize) y * src->rowstride + 4 * x;
      const guint8 *s = rgb->pixels + (gsize) (y % 256) * rgb->rowstride + 3 * (x % 256);
      d[0] = s[0], d[1] = s[1], d[2] = s[2], d[3] = (guint8) (128 + x % 128);
    }
  g_autoptr (DgMask) mask = dg_image_new (300, 200, 1);
  memset (mask->pixels, 0, (gsize) mask->rowstride * 200);
  for (int y = 60; y < 140; y++) /* an ellipse around (150, 100) */
    for (int x = 90; x < 210; x++) {
      double dx = (x - 150) / 60.0, dy = (y - 100) / 40.0;
      if (dx * dx + dy * dy <= 1.0)
        mask->pixels[(gsize) y * mask->rowstride + x] = 255;
    }
  DgRequest r = DG_REQUEST_INIT;
  r.job = DG_JOB_INPAINT;
  r.prompt = "a blue lake";
  const DgImage *imgs[1] = { src };
  r.images = imgs;
  r.n_images = 1;
  r.mask = mask;
  r.steps = 2;
  g_autoptr (GError) error = NULL;
  g_autoptr (DgImage) out = dg_run (model, &r, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (out->width, ==, 300);
  g_assert_cmpint (out->height, ==, 200);
  g_assert_cmpint (out->channels, ==, 4);
  gsize changed_inside = 0, inside = 0;
  for (int y = 0; y < 200; y++)
    for (int x = 0; x < 300; x++) {
      const guint8 *a = src->pixels + (gsize) y * src->rowstride + 4 * x;
      const guint8 *b = out->pixels + (gsize) y * out->rowstride + 4 * x;
      if (mask->pixels[(gsize) y * mask->rowstride + x] == 0)
        g_assert_cmpmem (a, 4, b, 4);
      else {
        inside++;
        changed_inside += memcmp (a, b, 3) != 0;
        g_assert_cmpint (a[3], ==, b[3]);
      }
    }
  g_assert_cmpuint (changed_inside, >, inside / 2);
}

static void
cancel_on_step (DgStage stage, int step, int n, gpointer user)
{
  if (stage == DG_STAGE_DENOISE && step == 1)
    g_cancellable_cancel (user);
}

/* Cancelling from the progress callback stops the run with DG_ERROR_CANCELLED; bad requests
 * end in clear errors before any GPU work. */
static void
test_cancel_and_bad_requests (void)
{
  g_autoptr (DgModel) model = open_tiny (DG_PRECISION_F32);
  DgRequest r = DG_REQUEST_INIT;
  r.prompt = "a house";
  r.width = r.height = 128;
  r.steps = 4;
  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (DgImage) none = dg_run (model, &r, cancel_on_step, cancel, cancel, &error);
  g_assert_null (none);
  g_assert_error (error, DG_ERROR, DG_ERROR_CANCELLED);
  g_clear_error (&error);

  r.prompt = "\xff\xfe not UTF-8";
  g_assert_null (dg_run (model, &r, NULL, NULL, NULL, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  r.prompt = "";
  g_assert_null (dg_run (model, &r, NULL, NULL, NULL, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  r.prompt = "a house";
  r.width = 100000;
  g_assert_null (dg_run (model, &r, NULL, NULL, NULL, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  r.width = 128;
  r.job = DG_JOB_EDIT; /* no image */
  g_assert_null (dg_run (model, &r, NULL, NULL, NULL, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  r.job = DG_JOB_INPAINT; /* no mask */
  g_assert_null (dg_run (model, &r, NULL, NULL, NULL, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
}

/* A missing or incomplete model folder names what is missing and where to get the model. */
static void
test_bad_model_folder (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DgModel) m = dg_model_open (engine, "/nonexistent/deepgen", NULL, &error);
  g_assert_null (m);
  g_assert_error (error, DG_ERROR, DG_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "DeepGen-1.0-diffusers"));
  g_clear_error (&error);
  /* a copy of the tiny model without the transformer weights */
  g_autofree char *tmp = g_dir_make_tmp ("deepgen-model-XXXXXX", NULL);
  g_autofree char *src = golden_data_path ("tiny-deepgen");
  g_autofree char *cmd =
      g_strdup_printf ("cp -r '%s/.' '%s/' && rm '%s/transformer/diffusion_pytorch_model.safetensors'", src, tmp, tmp);
  g_assert_cmpint (system (cmd), ==, 0);
  g_autofree char *missing = dg_model_folder_missing (tmp);
  g_assert_nonnull (missing);
  g_assert_nonnull (strstr (missing, "transformer/diffusion_pytorch_model.safetensors"));
  m = dg_model_open (engine, tmp, NULL, &error);
  g_assert_null (m);
  g_assert_error (error, DG_ERROR, DG_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "transformer/diffusion_pytorch_model.safetensors"));
  g_clear_error (&error);
  /* a truncated weight file is caught at open time, naming the file */
  g_autofree char *trunc =
      g_strdup_printf ("cp '%s/transformer/diffusion_pytorch_model.safetensors' '%s/transformer/' && "
                       "truncate -s 5000 '%s/vae/diffusion_pytorch_model.safetensors'",
                       src, tmp, tmp);
  g_assert_cmpint (system (trunc), ==, 0);
  m = dg_model_open (engine, tmp, NULL, &error);
  g_assert_null (m);
  g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "vae"));
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", tmp);
  g_assert_cmpint (system (rm), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autoptr (GError) error = NULL;
  engine = dg_engine_new (NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (scenarios); i++) {
    g_autofree char *path = g_strdup_printf ("/pipeline/scenario%d", scenarios[i].id);
    g_test_add_data_func (path, &scenarios[i], check_scenario);
  }
  g_test_add_func ("/pipeline/inpaint", test_inpaint);
  g_test_add_func ("/pipeline/cancel-and-bad-requests", test_cancel_and_bad_requests);
  g_test_add_func ("/pipeline/bad-model-folder", test_bad_model_folder);
  int rc = g_test_run ();
  guint messages = vkc_device_validation_messages (dg_engine_device (engine));
  dg_engine_free (engine);
  g_assert_cmpuint (messages, ==, 0);
  return rc;
}
