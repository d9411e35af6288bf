/* The SD3 VAE (model/vae/vae.h) against the canonical diffusers AutoencoderKL on the tiny model:
 * every VAE module golden of modules_{fp32,bf16}.safetensors, the scenario encodes of the
 * reference PNGs and decodes of the final latents, and tiled against whole processing.
 *
 * Limits, fp32 mode: we run the reference's arithmetic in another summation order (tiled
 * convs, online-softmax attention, two-pass GroupNorm statistics), relative differences of
 * ~1e-7 per operation. Measured NMSE: 2e-14..1.3e-13 per module, 1e-12..3.3e-12 through a whole
 * encoder or decoder. LIMIT_F32 = 1e-10 leaves a 30× margin for other devices' orders; a wrong
 * layer (missing shortcut, padding on the wrong side, wrong eps) gives ≥ 1e-4.
 *
 * bf16 mode: the reference rounds every intermediate to bf16 (a relative step of 2⁻⁸). We
 * round at the same points, in the same way (GroupNorm and SiLU each once, every conv output,
 * every residual add, q/k/v before and after their bias — see vae.c), and the single modules
 * come out bit-identical (resnets, downsample) or within a few flipped roundings (upsample
 * 6e-9; mid attention 2.1e-6, where torch's CPU flash attention also rounds the unnormalised
 * probabilities to bf16 before P·V, which vkc_op_attention does not). LIMIT_BF16_MODULE =
 * 2e-5: 10× the worst.
 * A whole encoder or decoder cannot be matched that closely by any implementation that is not
 * bit-exact: this random-weight network is chaotic at the bf16 noise level. A numpy emulation
 * of the reference's bf16 rules (written to find this, not kept) lands NMSE 3e-4 from the
 * golden decode although it agrees with it to 6.6e-8 on the attention module; flipping just
 * 0.01% of its roundings by one ulp moves its output by NMSE 3e-4; and the bf16 reference
 * itself is NMSE 2.5e-4 from exact arithmetic (our fp32 mode: 3.7e-4 from it). Measured here:
 * 1.1e-4..3.2e-4. LIMIT_BF16_NET = 1e-3 (3× the noise floor; a real bug gives ≥ 1e-2).
 * The same floor at 8 bits: 83–94% of values within ±1 of the bf16 out.u8, mean |Δ| 0.48–0.79
 * levels; limits ≥ 75% and ≤ 1.2 levels. (fp32 mode: ±1 on ≥ 99.9%, as the issue asks;
 * measured 100%.) */
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#ifdef HAVE_GDK_PIXBUF
#include <gdk-pixbuf/gdk-pixbuf.h>
#endif

#include "golden.h"
#include "image.h"
#include "vae.h"
#include "vkc_half.h"
#include "vkc_ops_eltwise.h"

#define LIMIT_F32 1e-10
#define LIMIT_BF16_MODULE 2e-5
#define LIMIT_BF16_NET 1e-3
#define U8_BF16_WITHIN1 0.75
#define U8_BF16_MEAN_ABS 1.2

static VkcDevice *dev;
static DgVae *vaes[2]; /* [0] fp32, [1] bf16 */

static const char *
tag (int bf)
{
  return bf ? "bf16" : "fp32";
}

/* ---- helpers ------------------------------------------------------------------------------ */

static VkcTensor
upload (DgArena *arena, const float *data, gint64 b, gint64 h, gint64 w, gint64 c)
{
  VkcTensor t;
  g_assert_true (DG_ACT (arena, &t, b, h, w, c));
  g_autoptr (GError) error = NULL;
  g_assert_true (vkc_tensor_upload (dev, &t, data, &error));
  return t;
}

/* Uploads an NCHW golden tensor as NHWC; shape into s[4]. */
static VkcTensor
upload_golden (DgArena *arena, DgSafetensors *st, const char *name, gint64 *s)
{
  gint64 shape[8];
  g_autofree float *x = golden_f32 (st, name, shape, NULL);
  g_autofree float *nhwc = golden_nchw_to_nhwc (x, shape[0], shape[1], shape[2], shape[3]);
  if (s)
    memcpy (s, shape, 4 * sizeof *s);
  return upload (arena, nhwc, shape[0], shape[2], shape[3], shape[1]);
}

/* Downloads NHWC and compares with an NCHW golden. */
static double
compare_nchw (const char *what, DgSafetensors *st, const char *name, const VkcTensor *got, double limit)
{
  gint64 s[8];
  g_autofree float *want = golden_f32 (st, name, s, NULL);
  g_assert_cmpint (got->shape[0], ==, s[0]);
  g_assert_cmpint (got->shape[1], ==, s[2]);
  g_assert_cmpint (got->shape[2], ==, s[3]);
  g_assert_cmpint (got->shape[3], ==, s[1]);
  g_autoptr (GError) error = NULL;
  g_autofree float *nhwc = dg_tensor_download_f32 (dev, got, &error);
  g_assert_no_error (error);
  g_autofree float *g = golden_nhwc_to_nchw (nhwc, s[0], s[2], s[3], s[1]);
  return golden_compare (what, want, g, (gsize) (s[0] * s[1] * s[2] * s[3]), limit);
}

static DgSafetensors *
modules_file (int bf)
{
  g_autofree char *name = g_strdup_printf ("golden/modules_%s.safetensors", tag (bf));
  return golden_open (name);
}

/* ---- loading ------------------------------------------------------------------------------ */

static void
test_load_errors (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *missing = golden_data_path ("tiny-deepgen/no-such-vae");
  g_assert_null (dg_vae_load (dev, missing, DG_VAE_BOTH, DG_PRECISION_F32, &error));
  g_assert_nonnull (error);
  g_test_message ("missing folder: %s", error->message);
  g_clear_error (&error);
  /* The connector folder has a config.json that is not an AutoencoderKL. */
  g_autofree char *wrong = golden_data_path ("tiny-deepgen/connector");
  g_assert_null (dg_vae_load (dev, wrong, DG_VAE_BOTH, DG_PRECISION_F32, &error));
  g_assert_nonnull (error);
  g_test_message ("wrong folder: %s", error->message);
  /* Decoder only: the encoder's modules are absent. */
  g_autofree char *dir = golden_data_path ("tiny-deepgen/vae");
  g_clear_error (&error);
  g_autoptr (DgVae) dec = dg_vae_load (dev, dir, DG_VAE_DECODER, DG_PRECISION_F32, &error);
  g_assert_no_error (error);
  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  VkcTensor x = upload (arena, (float[16]) { 0 }, 1, 2, 2, 4), y;
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
  g_assert_false (dg_vae_forward_module (dec, cmd, arena, "encoder.down_blocks.0.resnets.0", &x, &y));
  g_assert_false (dg_vae_forward_module (dec, cmd, arena, "decoder.up_blocks.9.resnets.0", &x, &y));
  g_assert_false (dg_vae_forward_module (dec, cmd, arena, "decoder.up_blocks.0.resnets.0x", &x, &y));
  g_assert_false (dg_vae_forward_module (dec, cmd, arena, "decoder.up_blocks.3.upsamplers.0", &x, &y));
  g_assert_cmpuint (dg_vae_downscale (dec), ==, 8);
}

/* ---- module goldens ------------------------------------------------------------------------ */

typedef struct {
  const char *golden; /* <golden>.in → <golden>.out */
  const char *module;
} ModuleCase;

/* The modules golden_modules.py ran (manifest.json, modules.weights). */
static const ModuleCase module_cases[] = {
  { "vae.resnet_shortcut", "encoder.down_blocks.1.resnets.0" }, { "vae.resnet", "encoder.down_blocks.1.resnets.1" },
  { "vae.downsample", "encoder.down_blocks.0.downsamplers.0" }, /* odd input height 13 */
  { "vae.upsample", "decoder.up_blocks.0.upsamplers.0" },       { "vae.mid_attn", "decoder.mid_block.attentions.0" },
};

static void
test_modules (gconstpointer data)
{
  int bf = GPOINTER_TO_INT (data);
  g_autoptr (DgSafetensors) st = modules_file (bf);
  for (guint i = 0; i < G_N_ELEMENTS (module_cases); i++) {
    const ModuleCase *m = &module_cases[i];
    g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
    g_autofree char *in = g_strconcat (m->golden, ".in", NULL), *out = g_strconcat (m->golden, ".out", NULL);
    VkcTensor x = upload_golden (arena, st, in, NULL), y;
    g_autoptr (GError) error = NULL;
    g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
    g_assert_true (dg_vae_forward_module (vaes[bf], cmd, arena, m->module, &x, &y));
    golden_submit (cmd, arena, NULL);
    g_autofree char *what = g_strdup_printf ("%s %s", m->golden, tag (bf));
    compare_nchw (what, st, out, &y, bf ? LIMIT_BF16_MODULE : LIMIT_F32);
  }
}

static void
test_decode_module (gconstpointer data)
{
  int bf = GPOINTER_TO_INT (data);
  g_autoptr (DgSafetensors) st = modules_file (bf);
  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  VkcTensor z = upload_golden (arena, st, "vae.decode.in", NULL), y;
  g_autoptr (GError) error = NULL;
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
  dg_vae_decode_raw (vaes[bf], cmd, arena, &z, &y);
  golden_submit (cmd, arena, NULL);
  g_autofree char *what = g_strdup_printf ("vae.decode %s", tag (bf));
  compare_nchw (what, st, "vae.decode.out", &y, bf ? LIMIT_BF16_NET : LIMIT_F32);
}

/* Compares channels [c0, c0 + n) of NHWC moments with an NCHW golden, clamping like
 * DiagonalGaussianDistribution when asked (logvar). */
static void
compare_moments (const char *what, DgSafetensors *st, const char *name, const float *mom, const gint64 *ms, gint64 c0,
                 gboolean clamp, double limit)
{
  gint64 B = ms[0], H = ms[1], W = ms[2], C2 = ms[3], n = C2 / 2;
  g_autofree float *part = g_new (float, B *H *W *n);
  for (gint64 p = 0; p < B * H * W; p++)
    for (gint64 c = 0; c < n; c++) {
      float v = mom[p * C2 + c0 + c];
      part[p * n + c] = clamp ? fminf (fmaxf (v, -30.0f), 20.0f) : v;
    }
  g_autofree float *g = golden_nhwc_to_nchw (part, B, H, W, n);
  gint64 s[8];
  g_autofree float *want = golden_f32 (st, name, s, NULL);
  g_assert_cmpint (s[0] * s[1] * s[2] * s[3], ==, B * H * W * n);
  golden_compare (what, want, g, (gsize) (B * H * W * n), limit);
}

static void
test_encode_module (gconstpointer data)
{
  int bf = GPOINTER_TO_INT (data);
  g_autoptr (DgSafetensors) st = modules_file (bf);
  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  VkcTensor x = upload_golden (arena, st, "vae.encode.in", NULL), m;
  g_autoptr (GError) error = NULL;
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
  dg_vae_encode_moments (vaes[bf], cmd, arena, &x, &m);
  golden_submit (cmd, arena, NULL);
  g_autofree float *mom = dg_tensor_download_f32 (dev, &m, &error);
  g_autofree char *w1 = g_strdup_printf ("vae.encode.mean %s", tag (bf));
  g_autofree char *w2 = g_strdup_printf ("vae.encode.logvar %s", tag (bf));
  double limit = bf ? LIMIT_BF16_NET : LIMIT_F32;
  compare_moments (w1, st, "vae.encode.mean", mom, m.shape, 0, FALSE, limit);
  compare_moments (w2, st, "vae.encode.logvar", mom, m.shape, m.shape[3] / 2, TRUE, limit);
}

/* ---- scenarios ------------------------------------------------------------------------------ */

static DgSafetensors *
scenario_file (int k, int bf)
{
  g_autofree char *name = g_strdup_printf ("golden/scenario%d_%s.safetensors", k, tag (bf));
  return golden_open (name);
}

/* The reference images of scenario k in flat order (manifest.json scenarios.list[k−1].refs). */
static GPtrArray *
scenario_refs (int k)
{
  g_autofree char *path = golden_data_path ("golden/manifest.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_file (parser, path, &error));
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  JsonArray *list = json_object_get_array_member (json_object_get_object_member (root, "scenarios"), "list");
  JsonObject *sc = json_array_get_object_element (list, (guint) k - 1);
  g_assert_cmpint (json_object_get_int_member (sc, "id"), ==, k);
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  JsonNode *refs = json_object_get_member (sc, "refs");
  if (JSON_NODE_HOLDS_ARRAY (refs)) {
    JsonArray *rows = json_node_get_array (refs);
    for (guint r = 0; r < json_array_get_length (rows); r++) {
      JsonArray *row = json_array_get_array_element (rows, r);
      for (guint j = 0; j < json_array_get_length (row); j++)
        g_ptr_array_add (names, g_strdup (json_array_get_string_element (row, j)));
    }
  }
  return names;
}

#ifdef HAVE_GDK_PIXBUF
/* A reference PNG as the generator loaded it: x = 2·(u8/255) − 1 in fp32 (dg_u8_to_unit),
 * then the run dtype; NHWC [1, H, W, 3]. */
static float *
load_png (const char *name, int bf, gint64 *h, gint64 *w)
{
  g_autofree char *rel = g_strdup_printf ("golden/%s.png", name);
  g_autofree char *path = golden_data_path (rel);
  g_autoptr (GError) error = NULL;
  g_autoptr (GdkPixbuf) pb = gdk_pixbuf_new_from_file (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gdk_pixbuf_get_bits_per_sample (pb), ==, 8);
  int nc = gdk_pixbuf_get_n_channels (pb), stride = gdk_pixbuf_get_rowstride (pb);
  *h = gdk_pixbuf_get_height (pb);
  *w = gdk_pixbuf_get_width (pb);
  const guint8 *px = gdk_pixbuf_read_pixels (pb);
  float *x = g_new (float, *h **w * 3);
  for (gint64 i = 0; i < *h; i++)
    for (gint64 j = 0; j < *w; j++)
      for (int c = 0; c < 3; c++) {
        float v = dg_u8_to_unit (px[i * stride + j * nc + c]);
        x[(i * *w + j) * 3 + c] = bf ? vkc_round_bf16 (v) : v;
      }
  return x;
}

/* vae.enc.mean/logvar.{i} and vae.ref_latent.{i} (with the stored ε) from the PNGs. */
static void
test_scenario_encode (gconstpointer data)
{
  int bf = GPOINTER_TO_INT (data);
  double limit = bf ? LIMIT_BF16_NET : LIMIT_F32;
  for (int k = 1; k <= 6; k++) {
    g_autoptr (GPtrArray) refs = scenario_refs (k);
    if (refs->len == 0)
      continue;
    g_autoptr (DgSafetensors) st = scenario_file (k, bf);
    for (guint i = 0; i < refs->len; i++) {
      gint64 h, w;
      g_autofree float *img = load_png (refs->pdata[i], bf, &h, &w);
      g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
      VkcTensor x = upload (arena, img, 1, h, w, 3), m, z;
      g_autofree char *en = g_strdup_printf ("vae.enc.eps.%u", i);
      VkcTensor eps = upload_golden (arena, st, en, NULL);
      g_autoptr (GError) error = NULL;
      g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
      dg_vae_encode_moments (vaes[bf], cmd, arena, &x, &m);
      dg_vae_latents_from_moments (vaes[bf], cmd, arena, &m, &eps, &z);
      double ms;
      golden_submit (cmd, arena, &ms);
      g_test_message ("scenario %d encode %s (%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT ", %s): %.0f ms", k,
                      (char *) refs->pdata[i], w, h, tag (bf), ms);
      g_autofree float *mom = dg_tensor_download_f32 (dev, &m, &error);
      g_autofree char *mn = g_strdup_printf ("vae.enc.mean.%u", i), *ln = g_strdup_printf ("vae.enc.logvar.%u", i);
      g_autofree char *rn = g_strdup_printf ("vae.ref_latent.%u", i);
      g_autofree char *w1 = g_strdup_printf ("s%d %s %s", k, mn, tag (bf)),
                      *w2 = g_strdup_printf ("s%d %s %s", k, ln, tag (bf));
      g_autofree char *w3 = g_strdup_printf ("s%d %s %s", k, rn, tag (bf));
      compare_moments (w1, st, mn, mom, m.shape, 0, FALSE, limit);
      if (golden_has (st, ln))
        compare_moments (w2, st, ln, mom, m.shape, m.shape[3] / 2, TRUE, limit);
      compare_nchw (w3, st, rn, &z, limit);
    }
  }
}
#endif

/* The 8-bit image of NHWC pixels, as the reference quantises its decoder output. */
static guint8 *
to_u8 (const float *x, gsize n, int bf)
{
  guint8 *u = g_new (guint8, n);
  for (gsize i = 0; i < n; i++) u[i] = bf ? dg_unit_bf16_to_u8 (vkc_f32_to_bf16 (x[i])) : dg_unit_to_u8 (x[i]);
  return u;
}

/* Fraction of 8-bit values within ±tol of the golden; the mean |Δ| into *mean_abs. */
static double
u8_agreement (const guint8 *want, const guint8 *got, gsize n, int tol, double *mean_abs, int *max_abs)
{
  gsize ok = 0;
  double sum = 0;
  *max_abs = 0;
  for (gsize i = 0; i < n; i++) {
    int d = abs ((int) got[i] - (int) want[i]);
    ok += d <= tol;
    sum += d;
    *max_abs = MAX (*max_abs, d);
  }
  *mean_abs = sum / n;
  return (double) ok / n;
}

/* The final latents of scenario k: dit.step{last}.latents (model space). */
static char *
last_latents (DgSafetensors *st)
{
  for (int s = 64; s >= 0; s--) {
    char *name = g_strdup_printf ("dit.step%d.latents", s);
    if (golden_has (st, name))
      return name;
    g_free (name);
  }
  g_error ("no dit.step*.latents in %s", dg_safetensors_display_name (st));
}

/* Keeps a copy of one tapped tensor. */
typedef struct {
  const char *name;
  DgArena *arena;
  VkcTensor copy;
  gboolean seen;
} Tap;

static void
on_tap (VkcCmd *cmd, const char *name, const VkcTensor *t, gpointer user_data)
{
  Tap *tap = user_data;
  if (strcmp (name, tap->name) != 0)
    return;
  g_assert_true (DG_ACT (tap->arena, &tap->copy, t->shape[0], t->shape[1], t->shape[2], t->shape[3]));
  vkc_op_copy (cmd, &tap->copy, t);
  tap->seen = TRUE;
}

/* vae.dec.out and out.u8 from the last latents (and, in scenario 1, from vae.dec.in, which the
 * latent convention z / scaling_factor + shift_factor must reproduce: tapped as "decoder.in"). */
static void
test_scenario_decode (gconstpointer data)
{
  int bf = GPOINTER_TO_INT (data);
  for (int k = 1; k <= 6; k++) {
    g_autoptr (DgSafetensors) st = scenario_file (k, bf);
    g_autofree char *lat = last_latents (st);
    g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
    VkcTensor z = upload_golden (arena, st, lat, NULL), y, y_raw;
    gboolean has_in = golden_has (st, "vae.dec.in");
    VkcTensor zin = has_in ? upload_golden (arena, st, "vae.dec.in", NULL) : z;
    g_autoptr (GError) error = NULL;
    g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
    Tap tap = { "decoder.in", arena, { 0 }, FALSE };
    dg_vae_set_tap (vaes[bf], on_tap, &tap);
    dg_vae_decode (vaes[bf], cmd, arena, &z, &y);
    dg_vae_set_tap (vaes[bf], NULL, NULL);
    g_assert_true (tap.seen);
    if (has_in)
      dg_vae_decode_raw (vaes[bf], cmd, arena, &zin, &y_raw);
    double ms;
    golden_submit (cmd, arena, &ms);
    g_test_message ("scenario %d decode %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " (%s): %.0f ms%s",
                    k, y.shape[0], y.shape[2], y.shape[1], tag (bf), ms, has_in ? " (two decodes)" : "");
    double limit = bf ? LIMIT_BF16_NET : LIMIT_F32;
    if (has_in) {
      /* fp32: one ulp at most (a product with 1/scaling vs torch's division). bf16: both
       * round the quotient and the sum; the quotient's last bit may differ, then flip. */
      g_autofree char *what = g_strdup_printf ("s%d vae.dec.in from %s %s", k, lat, tag (bf));
      compare_nchw (what, st, "vae.dec.in", &tap.copy, bf ? LIMIT_BF16_MODULE : 1e-13);
    }
    if (golden_has (st, "vae.dec.out")) {
      g_autofree char *what = g_strdup_printf ("s%d vae.dec.out from %s %s", k, lat, tag (bf));
      compare_nchw (what, st, "vae.dec.out", &y, limit);
      if (has_in) {
        g_autofree char *w2 = g_strdup_printf ("s%d vae.dec.out from vae.dec.in %s", k, tag (bf));
        compare_nchw (w2, st, "vae.dec.out", &y_raw, limit);
      }
    }
    const VkcTensor *final = has_in ? &y_raw : &y;
    g_autofree float *pix = dg_tensor_download_f32 (dev, final, &error);
    gsize n = (gsize) vkc_tensor_numel (final);
    g_autofree guint8 *got = to_u8 (pix, n, bf);
    gint64 s[8];
    g_autofree gint64 *want64 = golden_i64 (st, "out.u8", s, NULL);
    g_assert_cmpint (s[0] * s[1] * s[2] * s[3], ==, n);
    g_autofree guint8 *want = g_new (guint8, n);
    for (gsize i = 0; i < n; i++) want[i] = (guint8) want64[i];
    double mean_abs;
    int max_abs;
    double within1 = u8_agreement (want, got, n, 1, &mean_abs, &max_abs);
    g_test_message ("s%d out.u8 %s: %.4f%% within +-1, mean |d| %.4f, max |d| %d", k, tag (bf), 100 * within1, mean_abs,
                    max_abs);
    if (!bf) {
      g_assert_cmpfloat (within1, >=, 0.999);
    } else {
      g_assert_cmpfloat (within1, >=, U8_BF16_WITHIN1);
      g_assert_cmpfloat (mean_abs, <=, U8_BF16_MEAN_ABS);
    }
  }
}


/* ---- memory plan ---------------------------------------------------------------------------- */

static guint64
arena_used (DgArena *arena)
{
  return (guint64) vkc_pool_used (arena->pool);
}

/* The dry-run plan equals what a forward takes from its arena (up to allocation alignment),
 * the weight plan what loading uploads, and on the real SD3 VAE config the parameter counts of
 * MODEL.md §6 (encoder 34,274,208, decoder 49,545,475). */
static void
test_plan (void)
{
  const DgVaeConfig *cfg = dg_vae_config (vaes[0]);
  for (int bf = 0; bf < 2; bf++) {
    DgPrecision prec = bf ? DG_PRECISION_BF16 : DG_PRECISION_F32;
    g_assert_cmpuint (dg_vae_plan_weight_bytes (cfg, DG_VAE_BOTH, prec), ==, dg_vae_weight_bytes (vaes[bf]));
  }
  g_autoptr (DgArena) in = dg_arena_new (dev, "test-in");
  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  g_autofree float *zeros = g_new0 (float, 2 * 20 * 24 * 16);
  VkcTensor z = upload (in, zeros, 2, 20, 24, 16), y;
  g_autoptr (GError) error = NULL;
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
  dg_vae_decode (vaes[0], cmd, arena, &z, &y);
  guint64 plan = dg_vae_plan_decode_bytes (dev, cfg, 2, 20, 24), used = arena_used (arena);
  g_test_message ("tiny decode 2x160x192: plan %" G_GUINT64_FORMAT " bytes, arena %" G_GUINT64_FORMAT, plan, used);
  g_assert_cmpuint (plan, <=, used);
  g_assert_cmpuint (used, <=, plan + 16 * 256); /* a few allocations, 256-byte aligned */
  VkcTensor m;
  dg_arena_reset (arena);
  dg_vae_encode (vaes[0], cmd, arena, &y, NULL, &m);
  plan = dg_vae_plan_encode_bytes (dev, cfg, 2, 160, 192);
  used = arena_used (arena);
  g_assert_cmpuint (plan, <=, used);
  g_assert_cmpuint (used, <=, plan + 16 * 256);

  g_autofree char *real = golden_data_path ("deepgen-1.0-configs/vae");
  DgVaeConfig rc;
  g_assert_true (dg_vae_config_load (real, &rc, &error));
  const guint64 consts = 2 * 16 * sizeof (float);
  g_assert_cmpuint (dg_vae_plan_weight_bytes (&rc, DG_VAE_ENCODER, DG_PRECISION_F32), ==, 4 * 34274208ull + consts);
  g_assert_cmpuint (dg_vae_plan_weight_bytes (&rc, DG_VAE_DECODER, DG_PRECISION_F32), ==, 4 * 49545475ull + consts);
  const int sides[] = { 512, 1024 };
  for (guint i = 0; i < G_N_ELEMENTS (sides); i++) {
    int p = sides[i], l = p / 8;
    g_test_message ("SD3 VAE, %dx%d: decode %.0f MiB, encode %.0f MiB of activations; decoder weights %.0f MiB bf16", p,
                    p, dg_vae_plan_decode_bytes (dev, &rc, 1, l, l) / 1048576.0,
                    dg_vae_plan_encode_bytes (dev, &rc, 1, p, p) / 1048576.0,
                    dg_vae_plan_weight_bytes (&rc, DG_VAE_DECODER, DG_PRECISION_BF16) / 1048576.0);
  }
  /* 2048² (65536 latent tokens, 384 MiB of keys): never one binding on lavapipe. */
  if (vkc_device_info (dev)->max_storage_buffer_range < (384ull << 20)) {
    g_assert_cmpuint (dg_vae_plan_decode_bytes (dev, &rc, 1, 256, 256), ==, G_MAXUINT64);
    g_assert_cmpuint (dg_vae_plan_encode_bytes (dev, &rc, 1, 2048, 2048), ==, G_MAXUINT64);
  }
  DgVaeTiling t = DG_VAE_TILING_DEFAULT;
  g_test_message ("SD3 VAE, one %ux%u-latent tile: decode %.0f MiB, encode %.0f MiB", t.tile, t.tile,
                  dg_vae_plan_decode_bytes (dev, &rc, 1, t.tile, t.tile) / 1048576.0,
                  dg_vae_plan_encode_bytes (dev, &rc, 1, 8 * t.tile, 8 * t.tile) / 1048576.0);
}

/* ---- tiles ------------------------------------------------------------------------------------ */

typedef struct {
  double nmse, psnr; /* PSNR over the 8-bit range */
  int max_u8;        /* max |Δ| of the 8-bit images */
  double seam_mean;  /* mean |Δ| (8-bit levels) in the columns/rows of blend zones */
  double rest_mean;  /* mean |Δ| elsewhere */
} TileStats;

static float *
download (const VkcTensor *t)
{
  g_autoptr (GError) error = NULL;
  float *x = dg_tensor_download_f32 (dev, t, &error);
  g_assert_no_error (error);
  return x;
}

/* The whole decode of z, on the host. */
static float *
decode_whole (DgVae *vae, const VkcTensor *z, double *ms)
{
  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  g_autoptr (GError) error = NULL;
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
  VkcTensor whole;
  dg_vae_decode (vae, cmd, arena, z, &whole);
  golden_submit (cmd, arena, ms);
  return download (&whole);
}

/* Decodes z tiled and compares with the whole decode @a. @seam_row / @seam_col mark the pixel
 * rows and columns where a seam would show. */
static TileStats
tiled_vs_whole (DgVae *vae, const VkcTensor *z, const float *a, const DgVaeTiling *tiling, const gboolean *seam_row,
                const gboolean *seam_col, double *ms_tiled)
{
  g_autoptr (DgArena) out_arena = dg_arena_new (dev, "test-out");
  g_autoptr (GError) error = NULL;
  gint64 B = z->shape[0], H = 8 * z->shape[1], W = 8 * z->shape[2];
  VkcTensor tiled;
  g_assert_true (DG_ACT (out_arena, &tiled, B, H, W, 3));
  gint64 t0 = g_get_monotonic_time ();
  g_assert_true (dg_vae_decode_tiled (vae, z, &tiled, tiling, NULL, NULL, &error));
  g_assert_no_error (error);
  *ms_tiled = (g_get_monotonic_time () - t0) / 1000.0;
  g_autofree float *b = download (&tiled);
  gsize n = (gsize) (B * H * W * 3);
  TileStats st = { 0 };
  double num = 0, den = 0, seam_sum = 0, rest_sum = 0;
  gsize seam_n = 0, rest_n = 0;
  for (gsize i = 0; i < n; i++) {
    double d = (double) b[i] - a[i];
    num += d * d;
    den += (double) a[i] * a[i];
    int du = abs ((int) dg_unit_to_u8 (b[i]) - (int) dg_unit_to_u8 (a[i]));
    st.max_u8 = MAX (st.max_u8, du);
    gsize px = i / 3;
    gint64 col = (gint64) (px % (gsize) W), row = (gint64) (px / (gsize) W % (gsize) H);
    if (seam_row[row] || seam_col[col]) {
      seam_sum += du;
      seam_n++;
    } else {
      rest_sum += du;
      rest_n++;
    }
  }
  st.nmse = num / den;
  /* [−1, 1] spans 255 levels: PSNR = 10·log10(2² / MSE). */
  st.psnr = 10 * log10 (4.0 / (num / n));
  st.seam_mean = seam_n ? seam_sum / seam_n : 0;
  st.rest_mean = rest_n ? rest_sum / rest_n : 0;
  return st;
}

/* Pixel rows (or columns) within one latent of the centre of a blend zone, where a seam would
 * show: the tiling's placement recomputed here (tiles spread evenly, the middle @overlap
 * latents of each overlap blended). */
static gboolean *
seam_mask (gint64 len, const DgVaeTiling *t)
{
  gboolean *m = g_new0 (gboolean, 8 * len);
  if (len <= t->tile)
    return m;
  gint64 n = 1 + (len - t->tile + (t->tile - t->overlap) - 1) / (t->tile - t->overlap);
  for (gint64 i = 0; i + 1 < n; i++) {
    gint64 p0 = i * (len - t->tile) / (n - 1), p1 = (i + 1) * (len - t->tile) / (n - 1);
    gint64 g = p0 + t->tile - p1, centre = 8 * p1 + 8 * (g - t->overlap) / 2 + 4 * t->overlap;
    for (gint64 k = MAX (centre - 8, 0); k < MIN (centre + 8, 8 * len); k++) m[k] = TRUE;
  }
  return m;
}

static TileStats
tiled_case (DgVae *vae, const VkcTensor *z, const float *whole, double ms_whole, const DgVaeTiling *t)
{
  g_autofree gboolean *rows = seam_mask (z->shape[1], t), *cols = seam_mask (z->shape[2], t);
  double ms_tiled;
  TileStats s = tiled_vs_whole (vae, z, whole, t, rows, cols, &ms_tiled);
  g_test_message ("tiled decode %ux%u latents, tile %u overlap %u: nmse %.3g, PSNR %.1f dB, max |d u8| %d, "
                  "mean |d u8| %.3f at blend-zone centres, %.3f elsewhere; whole %.0f ms, tiled %.0f ms",
                  (guint) z->shape[2], (guint) z->shape[1], t->tile, t->overlap, s.nmse, s.psnr, s.max_u8, s.seam_mean,
                  s.rest_mean, ms_whole, ms_tiled);
  return s;
}

/* Tiled decoding of the final latents of scenario 4 (32×32 latents, 256×256 pixels), whole vs
 * tiled, fp32 mode.
 *  - One tile covering everything (scenario 1, 16×16 latents) is the whole decode, bit for bit.
 *  - Tiles of 16 with overlap 4 (3×3 tiles) and 24 with overlap 6 (2×2). The tiny decoder has
 *    the real one's depth, so the same ~17-latent receptive field; these tiles are barely
 *    larger than it (the default is 64), and each covers a quarter to half of the image, so
 *    its GroupNorm statistics (and mid-block attention) differ from the whole image's: a
 *    harsh case. The difference is spread over the tiles, not concentrated at the seams.
 *    Measured (lavapipe): NMSE 8.0e-3 / 1.0e-3, PSNR 32.5 / 41.3 dB over 8 bits, max |Δ| 45 /
 *    17 levels, mean |Δ| within a latent of the blend-zone centres 1.28× / 0.92× the mean
 *    elsewhere. Limits: NMSE ≤ 2e-2 / 3e-3, PSNR ≥ 30 / 38 dB, seam error ≤ 2× the rest.
 *  - Control: tiles of 16 without overlap (2×2, edge to edge) show what an unblended seam
 *    looks like: seam error 4.3× the rest (NMSE 0.14), which the 2× criterion rejects. */
static void
test_tiled_decode (void)
{
  DgVae *vae = vaes[0];
  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  double ms;
  {
    g_autoptr (DgSafetensors) st1 = scenario_file (1, 0);
    VkcTensor z1 = upload_golden (arena, st1, "dit.step3.latents", NULL);
    g_autofree float *w1 = decode_whole (vae, &z1, &ms);
    DgVaeTiling one = { 16, 4 };
    TileStats s1 = tiled_case (vae, &z1, w1, ms, &one);
    g_assert_cmpfloat (s1.nmse, ==, 0.0);
  }
  g_autoptr (DgSafetensors) st = scenario_file (4, 0);
  VkcTensor z = upload_golden (arena, st, "dit.step1.latents", NULL);
  g_autofree float *whole = decode_whole (vae, &z, &ms);
  const struct {
    DgVaeTiling t;
    double nmse, psnr;
  } cases[] = { { { 16, 4 }, 2e-2, 30 }, { { 24, 6 }, 3e-3, 38 } };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    TileStats s = tiled_case (vae, &z, whole, ms, &cases[i].t);
    g_assert_cmpfloat (s.nmse, <=, cases[i].nmse);
    g_assert_cmpfloat (s.psnr, >=, cases[i].psnr);
    g_assert_cmpfloat (s.seam_mean, <=, 2 * s.rest_mean);
  }
  DgVaeTiling hard = { 16, 0 };
  TileStats sh = tiled_case (vae, &z, whole, ms, &hard);
  g_assert_cmpfloat (sh.seam_mean, >, 2 * sh.rest_mean);

  g_autoptr (GError) error = NULL;
  DgVaeTiling bad = { 16, 5 };
  VkcTensor out;
  g_assert_true (DG_ACT (arena, &out, 1, 8 * z.shape[1], 8 * z.shape[2], 3));
  g_assert_false (dg_vae_decode_tiled (vae, &z, &out, &bad, NULL, NULL, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
}

/* The default tiling (64/16) where it first applies: 64×96 latents (512×768 pixels), two tiles
 * side by side overlapping by 32 latents, from scenario 4's final latents upsampled bilinearly
 * (smooth, like real latents). Slow on lavapipe (~1 min), so only in GLib's thorough mode:
 * ctest runs it as model_vae_tiles. Each tile sees two thirds of the image, so GroupNorm
 * statistics still differ. Measured: NMSE 1.5e-3, PSNR 39.9 dB, max |Δ| 29 levels, seam error
 * 0.57× the rest. Limits: NMSE ≤ 4e-3, PSNR ≥ 36 dB, seam error ≤ 2× the rest. */
static void
test_tiled_default (void)
{
  if (!g_test_thorough ()) {
    g_test_skip ("slow: run with -m thorough (ctest: model_vae_tiles)");
    return;
  }
  g_autoptr (DgSafetensors) st = scenario_file (4, 0);
  gint64 s[8];
  g_autofree float *lat = golden_f32 (st, "dit.step1.latents", s, NULL);
  const gint64 C = s[1], h = s[2], w = s[3], H = 64, W = 96;
  g_autofree float *up = g_new (float, H *W *C);
  for (gint64 i = 0; i < H; i++)
    for (gint64 j = 0; j < W; j++) {
      double y = (i + 0.5) * h / H - 0.5, x = (j + 0.5) * w / W - 0.5;
      gint64 y0 = CLAMP ((gint64) floor (y), 0, h - 1), x0 = CLAMP ((gint64) floor (x), 0, w - 1);
      gint64 y1 = MIN (y0 + 1, h - 1), x1 = MIN (x0 + 1, w - 1);
      double fy = CLAMP (y - y0, 0, 1), fx = CLAMP (x - x0, 0, 1);
      for (gint64 c = 0; c < C; c++) {
        const float *p = lat + c * h * w;
        up[(i * W + j) * C + c] = (float) ((1 - fy) * ((1 - fx) * p[y0 * w + x0] + fx * p[y0 * w + x1]) +
                                           fy * ((1 - fx) * p[y1 * w + x0] + fx * p[y1 * w + x1]));
      }
    }
  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  VkcTensor z = upload (arena, up, 1, H, W, C);
  DgVaeTiling def = DG_VAE_TILING_DEFAULT;
  double ms;
  g_autofree float *whole = decode_whole (vaes[0], &z, &ms);
  TileStats r = tiled_case (vaes[0], &z, whole, ms, &def);
  g_assert_cmpfloat (r.nmse, <=, 4e-3);
  g_assert_cmpfloat (r.psnr, >=, 36);
  g_assert_cmpfloat (r.seam_mean, <=, 2 * r.rest_mean);
}

static gboolean
cancel_after_two (guint done, guint total, gpointer user_data)
{
  (void) total;
  *(guint *) user_data = done;
  return done < 2;
}

/* Tiled encoding of a 256×256 image (our decode of scenario 4's latents), tiles of 16 latents
 * (128 px) overlapping by 4: moments blended, then the posterior mean, against the whole
 * encode. The encoder's tiles differ from the whole for the same reasons as the decoder's.
 * Measured NMSE 3e-3 (limit 1e-2). Cancellation stops between tiles. */
static void
test_tiled_encode (void)
{
  DgVae *vae = vaes[0];
  g_autoptr (DgSafetensors) st = scenario_file (4, 0);
  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  VkcTensor z = upload_golden (arena, st, "dit.step1.latents", NULL), x, whole, tiled;
  g_autoptr (GError) error = NULL;
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
  dg_vae_decode (vae, cmd, arena, &z, &x);
  dg_vae_encode (vae, cmd, arena, &x, NULL, &whole);
  golden_submit (cmd, arena, NULL);
  g_assert_true (DG_ACT (arena, &tiled, whole.shape[0], whole.shape[1], whole.shape[2], whole.shape[3]));
  g_assert_true (dg_arena_check (arena, &error));
  g_autofree float *a = download (&whole);
  const struct {
    DgVaeTiling t;
    double limit;
  } cases[] = { { { 16, 4 }, 5e-2 }, { { 24, 6 }, 1e-2 } };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_assert_true (dg_vae_encode_tiled (vae, &x, NULL, &tiled, &cases[i].t, NULL, NULL, &error));
    g_assert_no_error (error);
    g_autofree float *b = download (&tiled);
    g_autofree char *what =
        g_strdup_printf ("tiled encode 256x256, tile %u overlap %u (vs whole)", cases[i].t.tile, cases[i].t.overlap);
    golden_compare (what, a, b, (gsize) vkc_tensor_numel (&whole), cases[i].limit);
  }
  DgVaeTiling t = { 16, 4 };
  guint done = 0;
  g_assert_false (dg_vae_encode_tiled (vae, &x, NULL, &tiled, &t, cancel_after_two, &done, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_CANCELLED);
  g_assert_cmpuint (done, ==, 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autoptr (GError) error = NULL;
  VkcDeviceOptions opt = VKC_DEVICE_OPTIONS_DEFAULT;
  opt.no_pipeline_cache = true;
  dev = vkc_device_new (&opt, &error);
  g_assert_no_error (error);
  g_autofree char *dir = golden_data_path ("tiny-deepgen/vae");
  for (int bf = 0; bf < 2; bf++) {
    vaes[bf] = dg_vae_load (dev, dir, DG_VAE_BOTH, bf ? DG_PRECISION_BF16 : DG_PRECISION_F32, &error);
    g_assert_no_error (error);
  }
  g_test_add_func ("/vae/load-errors", test_load_errors);
  g_test_add_func ("/vae/plan", test_plan);
  for (int bf = 0; bf < 2; bf++) {
    g_autofree char *p1 = g_strdup_printf ("/vae/%s/modules", tag (bf));
    g_autofree char *p2 = g_strdup_printf ("/vae/%s/decode", tag (bf));
    g_autofree char *p3 = g_strdup_printf ("/vae/%s/encode", tag (bf));
    g_autofree char *p4 = g_strdup_printf ("/vae/%s/scenario-encode", tag (bf));
    g_autofree char *p5 = g_strdup_printf ("/vae/%s/scenario-decode", tag (bf));
    g_test_add_data_func (p1, GINT_TO_POINTER (bf), test_modules);
    g_test_add_data_func (p2, GINT_TO_POINTER (bf), test_decode_module);
    g_test_add_data_func (p3, GINT_TO_POINTER (bf), test_encode_module);
#ifdef HAVE_GDK_PIXBUF
    g_test_add_data_func (p4, GINT_TO_POINTER (bf), test_scenario_encode);
#endif
    g_test_add_data_func (p5, GINT_TO_POINTER (bf), test_scenario_decode);
  }
  g_test_add_func ("/vae/fp32/tiled-decode", test_tiled_decode);
  g_test_add_func ("/vae/fp32/tiled-encode", test_tiled_encode);
  g_test_add_func ("/vae/fp32/tiled-default", test_tiled_default);
  int rc = g_test_run ();
  for (int bf = 0; bf < 2; bf++) dg_vae_free (vaes[bf]);
  guint messages = vkc_device_validation_enabled (dev) ? vkc_device_validation_messages (dev) : 0;
  vkc_device_free (dev);
  g_assert_cmpuint (messages, ==, 0);
  return rc;
}
