/* unit_image: PIL-exact resizing against Pillow goldens (tests/data/image, written by
 * tests/golden/make_image_golden.py), the size rules of MODEL.md §1.4/§7, and the [-1, 1]
 * conversions (MODEL.md §10 item 17). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dtype.h"
#include "image.h"
#include "safetensors.h"

static char *
golden_path (void)
{
  const char *dir = g_getenv ("DEEPGEN_TEST_DATA");
  return g_build_filename (dir ? dir : DEEPGEN_TEST_DATA_DIR, "image", "resize.safetensors", NULL);
}

static DgSafetensors *
open_golden (void)
{
  g_autofree char *path = golden_path ();
  g_autoptr (GError) error = NULL;
  DgSafetensors *st = dg_safetensors_open (path, &error);
  g_assert_no_error (error);
  return st;
}

/* A DgImage copy of a [H, W, C] U8 tensor. */
static DgImage *
image_from_tensor (const DgTensorInfo *t)
{
  g_assert_cmpint (t->dtype, ==, DG_DTYPE_U8);
  g_assert_cmpuint (t->ndim, ==, 3);
  DgImage *img = dg_image_new ((int) t->shape[1], (int) t->shape[0], (int) t->shape[2]);
  g_assert_nonnull (img);
  memcpy (img->pixels, t->data, t->nbytes);
  return img;
}

/* "bicubic", or "bicubic_hfirst" for the pass order of Pillow < 13 (*legacy). */
static gboolean
parse_filter (const char *name, DgResample *f, gboolean *legacy)
{
  *legacy = g_str_has_suffix (name, "_hfirst");
  g_autofree char *base = g_strndup (name, strlen (name) - (*legacy ? strlen ("_hfirst") : 0));
  static const struct {
    const char *name;
    DgResample f;
  } table[] = {
    { "nearest", DG_RESAMPLE_NEAREST },
    { "bilinear", DG_RESAMPLE_BILINEAR },
    { "bicubic", DG_RESAMPLE_BICUBIC },
    { "lanczos", DG_RESAMPLE_LANCZOS },
  };
  for (guint i = 0; i < G_N_ELEMENTS (table); i++)
    if (g_str_equal (base, table[i].name)) {
      *f = table[i].f;
      return TRUE;
    }
  return FALSE;
}

/* Every "<filter>.<mode>.<W>x<H>.<W2>x<H2>" tensor against dg_image_resize of its input. */
static void
test_resize_pil_golden (void)
{
  g_autoptr (DgSafetensors) st = open_golden ();
  guint n_cases = 0, n_failed = 0, n_rgba = 0, n_legacy = 0;
  for (guint i = 0; i < dg_safetensors_n_tensors (st); i++) {
    const DgTensorInfo *t = dg_safetensors_tensor (st, i);
    g_auto (GStrv) parts = g_strsplit (t->name, ".", -1);
    DgResample filter;
    gboolean legacy;
    if (g_strv_length (parts) != 4 || !parse_filter (parts[0], &filter, &legacy))
      continue;
    g_autofree char *input_name = g_strdup_printf ("input.%s.%s", parts[1], parts[2]);
    const DgTensorInfo *ti = dg_safetensors_find (st, input_name);
    g_assert_nonnull (ti);
    g_autoptr (DgImage) in = image_from_tensor (ti);
    g_autoptr (DgImage) want = image_from_tensor (t);
    g_autoptr (DgImage) got = dg_image_resize_pil (in, want->width, want->height, filter, legacy);
    g_assert_nonnull (got);
    g_assert_cmpint (got->width, ==, want->width);
    g_assert_cmpint (got->height, ==, want->height);
    g_assert_cmpint (got->channels, ==, want->channels);
    gsize n = t->nbytes, diff = 0;
    int max_diff = 0;
    for (gsize j = 0; j < n; j++)
      if (got->pixels[j] != want->pixels[j]) {
        diff++;
        max_diff = MAX (max_diff, ABS ((int) got->pixels[j] - (int) want->pixels[j]));
      }
    if (diff) {
      g_printerr ("%s: %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes differ (max %d)\n", t->name, diff, n, max_diff);
      n_failed++;
    }
    n_cases++;
    n_rgba += want->channels == 4;
    n_legacy += legacy;
  }
  g_test_message ("%u PIL resize cases (%u RGBA, %u in the Pillow < 13 pass order), %u not bit-exact", n_cases, n_rgba,
                  n_legacy, n_failed);
  g_assert_cmpuint (n_cases, >=, 70);
  g_assert_cmpuint (n_rgba, >=, 16);
  g_assert_cmpuint (n_legacy, >=, 4);
  g_assert_cmpuint (n_failed, ==, 0);
}

/* A deterministic test image (LCG noise over a gradient). */
static DgImage *
make_image (int w, int h, int channels, guint32 seed)
{
  DgImage *img = dg_image_new (w, h, channels);
  guint32 s = seed * 2654435761u + 1;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < channels; c++) {
        s = s * 1664525u + 1013904223u;
        img->pixels[(gsize) y * img->rowstride + x * channels + c] =
            (guint8) ((x * 7 + y * 3 + c * 50) % 256 / 2 + (s >> 25));
      }
  return img;
}

/* The same pixels, rows padded to a wider rowstride (as GIMP or GdkPixbuf hand them over). */
static DgImage *
with_padded_rows (const DgImage *img, int extra)
{
  DgImage *out = g_new0 (DgImage, 1);
  *out = *img;
  out->rowstride = img->width * img->channels + extra;
  out->pixels = g_malloc0 ((gsize) out->rowstride * img->height);
  for (int y = 0; y < img->height; y++)
    memcpy (out->pixels + (gsize) y * out->rowstride, img->pixels + (gsize) y * img->rowstride,
            (gsize) img->width * img->channels);
  return out;
}

static void
assert_same_pixels (const DgImage *a, const DgImage *b)
{
  g_assert_cmpint (a->width, ==, b->width);
  g_assert_cmpint (a->height, ==, b->height);
  g_assert_cmpint (a->channels, ==, b->channels);
  for (int y = 0; y < a->height; y++)
    g_assert_cmpmem (a->pixels + (gsize) y * a->rowstride, a->width * a->channels, b->pixels + (gsize) y * b->rowstride,
                     b->width * b->channels);
}

static void
test_resize_properties (void)
{
  const DgResample filters[] = { DG_RESAMPLE_NEAREST, DG_RESAMPLE_BILINEAR, DG_RESAMPLE_BICUBIC, DG_RESAMPLE_LANCZOS };
  const int sizes[][2] = { { 1, 1 }, { 2, 7 }, { 33, 17 }, { 64, 64 }, { 5, 200 } };
  /* a constant image stays constant (weights are normalised; RGBA premultiplication with a
   * constant alpha round-trips for these values) */
  for (guint f = 0; f < G_N_ELEMENTS (filters); f++)
    for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
      for (int ch = 1; ch <= 4; ch++) {
        if (ch == 2)
          continue;
        g_autoptr (DgImage) img = dg_image_new (13, 9, ch);
        memset (img->pixels, ch == 4 ? 255 : 77, (gsize) img->rowstride * img->height);
        g_autoptr (DgImage) out = dg_image_resize (img, sizes[s][0], sizes[s][1], filters[f]);
        for (gsize i = 0; i < (gsize) out->rowstride * out->height; i++)
          g_assert_cmpuint (out->pixels[i], ==, ch == 4 ? 255 : 77);
      }
  /* padded rows give the same result as tight rows; same size is a copy */
  g_autoptr (DgImage) img = make_image (31, 23, 4, 3);
  g_autoptr (DgImage) padded = with_padded_rows (img, 5);
  for (guint f = 0; f < G_N_ELEMENTS (filters); f++) {
    g_autoptr (DgImage) a = dg_image_resize (img, 17, 40, filters[f]);
    g_autoptr (DgImage) b = dg_image_resize (padded, 17, 40, filters[f]);
    assert_same_pixels (a, b);
    g_autoptr (DgImage) same = dg_image_resize (padded, 31, 23, filters[f]);
    assert_same_pixels (same, img);
  }
  g_free (padded->pixels);
  g_free (g_steal_pointer (&padded));
}

static void
test_to_f32_golden (void)
{
  g_autoptr (DgSafetensors) st = open_golden ();
  const DgTensorInfo *t = dg_safetensors_find (st, "to_f32");
  g_assert_nonnull (t);
  g_assert_cmpint (t->n_elements, ==, 256);
  float want[256];
  memcpy (want, t->data, sizeof want);
  for (int v = 0; v < 256; v++) {
    float got = dg_u8_to_unit ((guint8) v);
    g_assert_cmpmem (&got, 4, &want[v], 4);
  }
  g_assert_cmpfloat (dg_u8_to_unit (0), ==, -1.0f);
  g_assert_cmpfloat (dg_u8_to_unit (255), ==, 1.0f);
}

static void
test_quantize_golden (void)
{
  g_autoptr (DgSafetensors) st = open_golden ();
  const DgTensorInfo *ti = dg_safetensors_find (st, "quant.in"), *to = dg_safetensors_find (st, "quant.out");
  g_assert_nonnull (ti);
  g_assert_nonnull (to);
  g_assert_cmpint (ti->n_elements, ==, to->n_elements);
  g_assert_cmpint (to->dtype, ==, DG_DTYPE_U8);
  const guint8 *want = to->data;
  for (gint64 i = 0; i < ti->n_elements; i++) {
    float x;
    memcpy (&x, (const guint8 *) ti->data + 4 * i, 4);
    if (dg_unit_to_u8 (x) != want[i])
      g_error ("quantising %.9g: got %u, numpy float32 gives %u", x, dg_unit_to_u8 (x), want[i]);
  }
  g_assert_cmpuint (dg_unit_to_u8 (NAN), ==, 0);
}

static void
test_round_trip (void)
{
  for (int v = 0; v < 256; v++) g_assert_cmpuint (dg_unit_to_u8 (dg_u8_to_unit ((guint8) v)), ==, v);

  /* both layouts, alpha dropped on the way in */
  g_autoptr (DgImage) img = make_image (7, 5, 4, 11);
  for (int layout = DG_LAYOUT_CHW; layout <= DG_LAYOUT_HWC; layout++) {
    float *buf = g_new (float, 3 * 7 * 5);
    dg_image_to_f32 (img, layout, buf);
    /* the documented index order: pixel (x=2, y=3), green */
    gsize i = layout == DG_LAYOUT_CHW ? 1 * 35 + 3 * 7 + 2 : (3 * 7 + 2) * 3 + 1;
    g_assert_cmpfloat (buf[i], ==, dg_u8_to_unit (img->pixels[3 * img->rowstride + 2 * 4 + 1]));
    g_autoptr (DgImage) back = dg_image_from_f32 (buf, layout, 7, 5);
    g_autoptr (DgImage) rgb = dg_image_to_rgb (img);
    assert_same_pixels (back, rgb);

    guint16 *b16 = g_new (guint16, 3 * 7 * 5);
    dg_f32_to_bf16_array (buf, b16, 3 * 7 * 5);
    g_autoptr (DgImage) back16 = dg_image_from_bf16 (b16, layout, 7, 5);
    for (gsize j = 0; j < 3 * 7 * 5; j++) /* bf16 keeps 8 bits: at most one level off */
      g_assert_cmpint (ABS ((int) back16->pixels[j] - (int) rgb->pixels[j]), <=, 1);
    g_free (b16);
    g_free (buf);
  }
}

/* The quantisation of a bf16 run (MODEL.md §10 item 17 in bf16 arithmetic). */
static void
test_quantize_bf16 (void)
{
  /* 0.5: 127.5·0.5 = 63.75 is exact; + 128 = 191.75 rounds to 192 in bf16 (float32 gives 191) */
  g_assert_cmpuint (dg_unit_bf16_to_u8 (dg_f32_to_bf16 (0.5f)), ==, 192);
  g_assert_cmpuint (dg_unit_to_u8 (0.5f), ==, 191);
  /* −0.5: 64.25 is a tie between 64 and 64.5 in bf16 → even → 64 */
  g_assert_cmpuint (dg_unit_bf16_to_u8 (dg_f32_to_bf16 (-0.5f)), ==, 64);
  g_assert_cmpuint (dg_unit_bf16_to_u8 (dg_f32_to_bf16 (-1.0f)), ==, 0);
  g_assert_cmpuint (dg_unit_bf16_to_u8 (dg_f32_to_bf16 (1.0f)), ==, 255);
  g_assert_cmpuint (dg_unit_bf16_to_u8 (dg_f32_to_bf16 (0.0f)), ==, 128);
  g_assert_cmpuint (dg_unit_bf16_to_u8 (0x7fc0), ==, 0);   /* NaN */
  g_assert_cmpuint (dg_unit_bf16_to_u8 (0x7f80), ==, 255); /* +inf */
  g_assert_cmpuint (dg_unit_bf16_to_u8 (0xff80), ==, 0);   /* −inf */
  /* monotone over every finite bf16 value in increasing order */
  int prev = -1;
  for (int h = 0xff7f; h >= 0x8000; h--) /* negative values, most negative first */
  {
    int q = dg_unit_bf16_to_u8 ((guint16) h);
    g_assert_cmpint (q, >=, prev);
    prev = q;
  }
  for (int h = 0x0000; h <= 0x7f7f; h++) {
    int q = dg_unit_bf16_to_u8 ((guint16) h);
    g_assert_cmpint (q, >=, prev);
    prev = q;
  }
}

static void
test_round_to_multiple (void)
{
  g_assert_cmpint (dg_round_to_multiple (0, 16), ==, 16);
  g_assert_cmpint (dg_round_to_multiple (1, 16), ==, 16);
  g_assert_cmpint (dg_round_to_multiple (23, 16), ==, 16);
  g_assert_cmpint (dg_round_to_multiple (24, 16), ==, 32); /* halves round up */
  g_assert_cmpint (dg_round_to_multiple (1000, 16), ==, 1008);
  g_assert_cmpint (dg_round_to_multiple (500, 32), ==, 512);
  g_assert_cmpint (dg_round_to_multiple (G_MAXINT, 32), <=, G_MAXINT);
}

static void
test_reference_size (void)
{
  static const int cases[][5] = {
    /* w, h, target → w', h' */
    { 1000, 600, 512, 512, 320 }, /* 307.2 → ceil to 320 */
    { 600, 1000, 512, 320, 512 },
    { 1024, 640, 512, 512, 320 }, /* exactly 320: no float overshoot to 352 */
    { 512, 512, 512, 512, 512 },
    { 500, 300, 512, 512, 320 }, /* smaller: rounded up only */
    { 1, 1, 512, 32, 32 },
    { 3, 2, 512, 32, 32 },
    { 33, 33, 512, 64, 64 },
    { 4000, 10, 512, 512, 32 }, /* the short side never vanishes */
    { 10000, 8000, 512, 512, 416 },
    { 1000, 600, 500, 512, 320 }, /* target rounded to a multiple of 32 first */
    { 12288, 6144, 6144, 6144, 3072 },
    { 700, 700, 1024, 704, 704 },
    { 728, 546, 512, 512, 416 }, /* the official float rule: 409.99999999999994 → 416 */
    { 546, 728, 512, 416, 512 },
    { 1092, 1092, 768, 768, 800 },    /* a square past a non-power-of-two target: 768.0000000000001 */
    { 8379, 8379, 6144, 6144, 6144 }, /* 6176 would pass DG_MAX_SIDE: held there */
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    int w, h;
    dg_reference_size (cases[i][0], cases[i][1], cases[i][2], &w, &h);
    g_assert_cmpint (w, ==, cases[i][3]);
    g_assert_cmpint (h, ==, cases[i][4]);
  }
  /* invariants over a sweep */
  for (int w = 1; w < 1500; w += 37)
    for (int h = 1; h < 1500; h += 41) {
      int rw, rh;
      dg_reference_size (w, h, 512, &rw, &rh);
      g_assert_cmpint (rw % 32, ==, 0);
      g_assert_cmpint (rh % 32, ==, 0);
      g_assert_cmpint (rw, >=, 32);
      g_assert_cmpint (MAX (rw, rh), <=, 512);
      if (MAX (w, h) > 512)
        g_assert_cmpint (MAX (rw, rh), ==, 512);
    }
}

/* Every row of tests/data/reference-sizes/reference_sizes.tsv: sizes computed by the official
 * DeepGen resize_image in Python (tests/golden/make_reference_sizes.py), including every pair
 * with sides up to 2048 where its float arithmetic differs from the exact quotient. */
static void
test_reference_size_official_table (void)
{
  const char *dir = g_getenv ("DEEPGEN_TEST_DATA");
  g_autofree char *path =
      g_build_filename (dir ? dir : DEEPGEN_TEST_DATA_DIR, "reference-sizes", "reference_sizes.tsv", NULL);
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, &error));
  g_assert_no_error (error);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  guint rows = 0, disagreeing = 0;
  for (guint i = 0; lines[i]; i++) {
    if (lines[i][0] == '#' || lines[i][0] == '\0')
      continue;
    int target, w, h, ow, oh, differs;
    g_assert_cmpint (sscanf (lines[i], "%d\t%d\t%d\t%d\t%d\t%d", &target, &w, &h, &ow, &oh, &differs), ==, 6);
    int rw, rh;
    dg_reference_size (w, h, target, &rw, &rh);
    if (rw != ow || rh != oh)
      g_error ("%s line %u: %d×%d at %d gives %d×%d, the official code %d×%d", path, i + 1, w, h, target, rw, rh, ow,
               oh);
    rows++;
    disagreeing += differs;
  }
  /* the generator's header: 226 + 232 + 170 pairs where float and exact rules differ */
  g_assert_cmpuint (disagreeing, ==, 628);
  g_assert_cmpuint (rows, >, 6000);
}

static void
test_reference_prepare (void)
{
  g_autoptr (DgImage) img = make_image (100, 60, 4, 5);
  g_autoptr (DgImage) ref = dg_reference_prepare (img, 64);
  g_assert_cmpint (ref->channels, ==, 3);
  g_assert_cmpint (ref->width, ==, 64);
  g_assert_cmpint (ref->height, ==, 64); /* 60·64/100 = 38.4 → 64 */
  g_autoptr (DgImage) rgb = dg_image_to_rgb (img);
  g_autoptr (DgImage) want = dg_image_resize (rgb, 64, 64, DG_RESAMPLE_BICUBIC);
  assert_same_pixels (ref, want);
}

static void
test_output_size (void)
{
  g_autoptr (DgImage) ref = make_image (1000, 600, 3, 1);
  g_autoptr (DgImage) tiny = make_image (1, 1, 4, 2);
  g_autoptr (GError) error = NULL;
  int w, h;

  DgRequest r = DG_REQUEST_INIT;
  dg_output_size (&r, &w, &h);
  g_assert_cmpint (w, ==, 512);
  g_assert_cmpint (h, ==, 512);
  r.width = 1000, r.height = 600;
  dg_output_size (&r, &w, &h);
  g_assert_cmpint (w, ==, 1008);
  g_assert_cmpint (h, ==, 608);
  r.width = 1, r.height = 0;
  dg_output_size (&r, &w, &h);
  g_assert_cmpint (w, ==, 16);
  g_assert_cmpint (h, ==, 512);
  r.width = r.height = DG_MAX_SIDE;
  g_assert_true (dg_output_size_checked (&r, &w, &h, &error));
  g_assert_cmpint (w, ==, 6144);

  /* too large: refused with a message that names the limit */
  r.width = DG_MAX_SIDE + 1;
  g_assert_false (dg_output_size_checked (&r, &w, &h, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "6144"));
  g_assert_cmpint (w, ==, 0);
  g_clear_error (&error);
  dg_output_size (&r, &w, &h);
  g_assert_cmpint (w, ==, 0);
  g_assert_cmpint (h, ==, 0);
  r.width = -5;
  g_assert_false (dg_output_size_checked (&r, &w, &h, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* edit, one reference: follows the prepared reference */
  const DgImage *one[] = { ref };
  DgRequest e = DG_REQUEST_INIT;
  e.job = DG_JOB_EDIT;
  e.images = one, e.n_images = 1;
  dg_output_size (&e, &w, &h);
  g_assert_cmpint (w, ==, 512);
  g_assert_cmpint (h, ==, 320);
  e.width = 1024;
  dg_output_size (&e, &w, &h);
  g_assert_cmpint (w, ==, 1024);
  g_assert_cmpint (h, ==, 608); /* 1000 × 600 ≤ 1024: both rounded up to 32 */
  const DgImage *small[] = { tiny };
  e.images = small, e.width = 0;
  dg_output_size (&e, &w, &h);
  g_assert_cmpint (w, ==, 32);
  g_assert_cmpint (h, ==, 32);
  /* several references: the requested size */
  const DgImage *two[] = { ref, tiny };
  e.images = two, e.n_images = 2, e.width = 640, e.height = 0;
  dg_output_size (&e, &w, &h);
  g_assert_cmpint (w, ==, 640);
  g_assert_cmpint (h, ==, 512);
  /* no reference, or a broken one */
  e.n_images = 0;
  g_assert_false (dg_output_size_checked (&e, &w, &h, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  DgImage broken = { 10, 10, 2, 20, tiny->pixels };
  const DgImage *bad[] = { &broken };
  e.images = bad, e.n_images = 1;
  g_assert_false (dg_output_size_checked (&e, &w, &h, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* inpaint: the source's size, even beyond DG_MAX_SIDE (the model only sees a crop). The
   * pixels are never read to compute a size. */
  guint8 dummy[4] = { 0 };
  DgImage huge = { 20000, 15000, 4, 80000, dummy };
  const DgImage *src[] = { &huge };
  DgRequest in = DG_REQUEST_INIT;
  in.job = DG_JOB_INPAINT;
  in.images = src, in.n_images = 1;
  g_assert_true (dg_output_size_checked (&in, &w, &h, &error));
  g_assert_no_error (error);
  g_assert_cmpint (w, ==, 20000);
  g_assert_cmpint (h, ==, 15000);
  in.n_images = 0;
  g_assert_false (dg_output_size_checked (&in, &w, &h, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
}

static void
test_image_helpers (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DgImage) img = make_image (9, 7, 4, 8);
  g_autoptr (DgImage) crop = dg_image_crop (img, 2, 3, 5, 4);
  for (int y = 0; y < 4; y++)
    g_assert_cmpmem (crop->pixels + y * crop->rowstride, 20, img->pixels + (y + 3) * img->rowstride + 8, 20);
  g_autoptr (DgImage) copy = dg_image_copy (img);
  assert_same_pixels (copy, img);

  /* alpha of the source: copied at the same size, resized (bicubic) otherwise */
  g_autoptr (DgImage) rgb = dg_image_to_rgb (img);
  g_autoptr (DgImage) back = dg_image_with_alpha_of (rgb, img);
  assert_same_pixels (back, img);
  g_autoptr (DgImage) big = dg_image_resize (rgb, 18, 14, DG_RESAMPLE_BICUBIC);
  g_autoptr (DgImage) big_a = dg_image_with_alpha_of (big, img);
  g_assert_cmpint (big_a->channels, ==, 4);
  g_autoptr (DgImage) alpha = dg_image_new (9, 7, 1);
  for (int i = 0; i < 63; i++) alpha->pixels[i] = img->pixels[i * 4 + 3];
  g_autoptr (DgImage) alpha_big = dg_image_resize (alpha, 18, 14, DG_RESAMPLE_BICUBIC);
  for (int i = 0; i < 18 * 14; i++) {
    g_assert_cmpuint (big_a->pixels[i * 4 + 3], ==, alpha_big->pixels[i]);
    g_assert_cmpuint (big_a->pixels[i * 4], ==, big->pixels[i * 3]);
  }
  g_autoptr (DgImage) no_alpha = dg_image_with_alpha_of (big_a, rgb);
  g_assert_cmpint (no_alpha->channels, ==, 3);

  /* checks of caller images */
  g_assert_true (dg_image_check (img, FALSE, "img", &error));
  g_assert_false (dg_image_check (img, TRUE, "img", &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dg_image_check (NULL, FALSE, "img", &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  DgImage short_rows = { 10, 10, 3, 29, img->pixels };
  g_assert_false (dg_image_check (&short_rows, FALSE, "img", &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  DgImage overflow = { G_MAXINT, 3, 4, G_MAXINT, img->pixels };
  g_assert_false (dg_image_check (&overflow, FALSE, "img", &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
}

/* A downscale of a photo-sized image stays fast (the horizontal pass only reads the rows the
 * vertical pass needs). */
static void
test_resize_large (void)
{
  g_autoptr (DgImage) img = make_image (2400, 1800, 3, 9);
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (DgImage) out = dg_image_resize (img, 512, 384, DG_RESAMPLE_BICUBIC);
  g_test_message ("2400×1800 → 512×384 bicubic: %.1f ms", (g_get_monotonic_time () - t0) / 1000.0);
  g_assert_cmpint (out->width, ==, 512);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/image/resize/pil-golden", test_resize_pil_golden);
  g_test_add_func ("/image/resize/properties", test_resize_properties);
  g_test_add_func ("/image/resize/large", test_resize_large);
  g_test_add_func ("/image/convert/to-f32-golden", test_to_f32_golden);
  g_test_add_func ("/image/convert/quantize-golden", test_quantize_golden);
  g_test_add_func ("/image/convert/round-trip", test_round_trip);
  g_test_add_func ("/image/convert/quantize-bf16", test_quantize_bf16);
  g_test_add_func ("/image/size/round-to-multiple", test_round_to_multiple);
  g_test_add_func ("/image/size/reference", test_reference_size);
  g_test_add_func ("/image/size/reference-official-table", test_reference_size_official_table);
  g_test_add_func ("/image/size/reference-prepare", test_reference_prepare);
  g_test_add_func ("/image/size/output", test_output_size);
  g_test_add_func ("/image/helpers", test_image_helpers);
  return g_test_run ();
}
