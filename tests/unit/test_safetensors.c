/* unit_safetensors: the weight-file reader on valid files, sharded sets and every kind of broken
 * header we could think of. Each broken case must end in a DG_ERROR with the right code and a
 * message naming the file — never a crash (this suite also runs under ASan + UBSan). */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "dg_error.h"
#include "safetensors.h"
#include "st_writer.h"

static char *tmp_root;

static char *
fresh_dir (void)
{
  static guint n;
  char *dir = g_strdup_printf ("%s/t%u", tmp_root, n++);
  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  return dir;
}

static const float f32_vals[6] = { 1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -65504.0f };
static const guint16 bf16_vals[4] = { 0x3f80, 0xc020, 0x0000, 0x7f80 }; /* 1, -2.5, 0, inf */
static const guint16 f16_vals[4] = { 0x3c00, 0xc100, 0x0001, 0xfc00 };  /* 1, -2.5, 2^-24, -inf */

/* A file with one tensor of each interesting kind, listed in the header in a different order
 * from the data, with metadata. */
static GBytes *
make_valid_image (void)
{
  g_autoptr (StWriter) w = st_writer_new ();
  gint64 i64[3] = { -1, 0, G_MAXINT64 };
  guint8 flags[3] = { 1, 0, 1 };
  float scalar = 42.0f;
  st_writer_add (w, "w.f32", "F32", 2, DG_SHAPE (2, 3), f32_vals, sizeof f32_vals);
  st_writer_add (w, "w.bf16", "BF16", 1, DG_SHAPE (4), bf16_vals, sizeof bf16_vals);
  st_writer_add (w, "w.f16", "F16", 2, DG_SHAPE (2, 2), f16_vals, sizeof f16_vals);
  st_writer_add (w, "ids", "I64", 1, DG_SHAPE (3), i64, sizeof i64);
  st_writer_add (w, "mask", "BOOL", 1, DG_SHAPE (3), flags, sizeof flags);
  st_writer_add (w, "scalar", "F32", 0, NULL, &scalar, sizeof scalar);
  st_writer_add (w, "empty", "BF16", 2, DG_SHAPE (0, 5), NULL, 0);
  st_writer_metadata (w, "format", "pt");
  return st_writer_finish (g_steal_pointer (&w));
}

static void
check_valid (const DgSafetensors *st, const char *file)
{
  g_assert_cmpuint (dg_safetensors_n_tensors (st), ==, 7);
  g_assert_cmpstr (dg_safetensors_metadata (st, "format"), ==, "pt");
  g_assert_null (dg_safetensors_metadata (st, "nope"));
  g_assert_null (dg_safetensors_find (st, "nope"));

  const DgTensorInfo *t = dg_safetensors_find (st, "w.f32");
  g_assert_nonnull (t);
  g_assert_cmpstr (t->name, ==, "w.f32");
  g_assert_cmpint (t->dtype, ==, DG_DTYPE_F32);
  g_assert_cmpuint (t->ndim, ==, 2);
  g_assert_cmpint (t->shape[0], ==, 2);
  g_assert_cmpint (t->shape[1], ==, 3);
  g_assert_cmpint (t->shape[2], ==, 0);
  g_assert_cmpint (t->n_elements, ==, 6);
  g_assert_cmpuint (t->nbytes, ==, 24);
  g_assert_cmpstr (t->file, ==, file);
  float out[6];
  g_assert_true (dg_tensor_to_f32 (t, out, NULL));
  g_assert_cmpmem (out, sizeof out, f32_vals, sizeof f32_vals);

  t = dg_safetensors_find (st, "w.bf16");
  g_assert_true (dg_tensor_to_f32 (t, out, NULL));
  g_assert_cmpfloat (out[0], ==, 1.0f);
  g_assert_cmpfloat (out[1], ==, -2.5f);
  g_assert_cmpfloat (out[2], ==, 0.0f);
  g_assert_true (isinf (out[3]) && out[3] > 0);

  t = dg_safetensors_find (st, "w.f16");
  g_assert_true (dg_tensor_to_f32 (t, out, NULL));
  g_assert_cmpfloat (out[0], ==, 1.0f);
  g_assert_cmpfloat (out[1], ==, -2.5f);
  g_assert_cmpfloat (out[2], ==, ldexpf (1.0f, -24));
  g_assert_true (isinf (out[3]) && out[3] < 0);

  t = dg_safetensors_find (st, "ids");
  g_assert_cmpint (t->dtype, ==, DG_DTYPE_I64);
  gint64 ids[3];
  memcpy (ids, t->data, sizeof ids);
  g_assert_cmpint (ids[2], ==, G_MAXINT64);
  g_autoptr (GError) error = NULL;
  g_assert_false (dg_tensor_to_f32 (t, out, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED);

  t = dg_safetensors_find (st, "mask");
  g_assert_cmpint (t->dtype, ==, DG_DTYPE_BOOL);
  g_assert_cmpuint (t->nbytes, ==, 3);

  t = dg_safetensors_find (st, "scalar");
  g_assert_cmpuint (t->ndim, ==, 0);
  g_assert_cmpint (t->n_elements, ==, 1);
  g_assert_true (dg_tensor_to_f32 (t, out, NULL));
  g_assert_cmpfloat (out[0], ==, 42.0f);

  t = dg_safetensors_find (st, "empty");
  g_assert_cmpint (t->n_elements, ==, 0);
  g_assert_cmpuint (t->nbytes, ==, 0);
  g_assert_true (dg_tensor_to_f32 (t, out, NULL));

  /* Storage order: by offset, which here is the order of st_writer_add. */
  const char *order[] = { "w.f32", "w.bf16", "w.f16", "ids", "mask", "scalar", "empty" };
  for (guint i = 0; i < G_N_ELEMENTS (order); i++) g_assert_cmpstr (dg_safetensors_tensor (st, i)->name, ==, order[i]);
  g_assert_cmpuint (dg_safetensors_total_bytes (st), ==, 24 + 8 + 8 + 24 + 3 + 4);
}

static void
test_single_file (void)
{
  g_autofree char *dir = fresh_dir ();
  g_autoptr (GBytes) img = make_valid_image ();
  g_autofree char *path = st_write_file (dir, "model.safetensors", img);
  g_autoptr (GError) error = NULL;

  g_autoptr (DgSafetensors) st = dg_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_autofree char *base = g_path_get_basename (dir);
  g_autofree char *display = g_strdup_printf ("%s/model.safetensors", base);
  g_assert_cmpstr (dg_safetensors_display_name (st), ==, display);
  check_valid (st, display);

  /* The same bytes from memory. */
  gsize len;
  const guint8 *data = g_bytes_get_data (img, &len);
  g_autoptr (DgSafetensors) mem = dg_safetensors_open_data (data, len, "mem", &error);
  g_assert_no_error (error);
  check_valid (mem, "mem");
}

static void
test_open_folder (void)
{
  const char *names[] = { "model.safetensors", "diffusion_pytorch_model.safetensors" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    g_autofree char *dir = fresh_dir ();
    g_autoptr (GBytes) img = make_valid_image ();
    g_free (st_write_file (dir, names[i], img));
    g_autoptr (GError) error = NULL;
    g_autoptr (DgSafetensors) st = dg_safetensors_open (dir, &error);
    g_assert_no_error (error);
    g_assert_true (g_str_has_suffix (dg_safetensors_display_name (st), names[i]));
    g_assert_cmpuint (dg_safetensors_n_tensors (st), ==, 7);
  }
}

static void
test_folder_without_weights (void)
{
  g_autofree char *dir = fresh_dir ();
  g_free (st_write_text (dir, "config.json", "{}"));
  g_autoptr (GError) error = NULL;
  g_autoptr (DgSafetensors) st = dg_safetensors_open (dir, &error);
  g_assert_null (st);
  g_assert_error (error, DG_ERROR, DG_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "component folder"));
}

static void
test_missing_path (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_build_filename (tmp_root, "no-such-file.safetensors", NULL);
  g_assert_null (dg_safetensors_open (path, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "no-such-file.safetensors"));
}

static void
test_not_regular (void)
{
  /* A folder named like a weight file is not a weight file. */
  g_autofree char *dir = fresh_dir ();
  g_autofree char *sub = g_build_filename (dir, "x.safetensors", NULL);
  g_assert_cmpint (g_mkdir (sub, 0755), ==, 0);
  g_autoptr (GError) error = NULL;
  g_autofree char *idx = st_write_text (dir, "x.safetensors.index.json", "{\"weight_map\":{\"a\":\"x.safetensors\"}}");
  g_assert_null (dg_safetensors_open (idx, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_IO);
}

/* Hugging Face pads headers to 8 bytes; others may not, so data can sit at any address. */
static void
test_unaligned (void)
{
  GString *header = g_string_new ("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[1,13]},"
                                  "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}");
  while (header->len % 4) /* then x's data sits at 8 + len + 1: odd, whatever malloc returns */
    g_string_append_c (header, ' ');
  guint8 data[13] = { 7 };
  memcpy (data + 1, f32_vals, 12);
  g_autoptr (GBytes) img = st_image (header->str, data, sizeof data);
  g_string_free (header, TRUE);
  gsize len;
  const guint8 *p = g_bytes_get_data (img, &len);
  g_autoptr (GError) error = NULL;
  g_autoptr (DgSafetensors) st = dg_safetensors_open_data (p, len, "odd", &error);
  g_assert_no_error (error);
  float out[3];
  guint16 bf[3];
  const DgTensorInfo *t = dg_safetensors_find (st, "x");
  g_assert_cmpuint ((guintptr) t->data % 2, ==, 1);
  g_assert_true (dg_tensor_to_f32 (t, out, NULL));
  g_assert_cmpmem (out, sizeof out, f32_vals, sizeof out);
  g_assert_true (dg_tensor_to_bf16 (t, bf, NULL));
  g_assert_cmphex (bf[0], ==, 0x3f80);
  g_assert_cmphex (bf[1], ==, 0xc020);
  g_assert_cmphex (bf[2], ==, 0x4050);
  g_assert_cmpstr (dg_safetensors_tensor (st, 0)->name, ==, "b");
}

static void
test_empty_header (void)
{
  const char *headers[] = { "{}", "{\"__metadata__\":{\"a\":\"b\"}}", "  {}  " };
  for (guint i = 0; i < G_N_ELEMENTS (headers); i++) {
    g_autoptr (GBytes) img = st_image (headers[i], NULL, 0);
    gsize len;
    const guint8 *p = g_bytes_get_data (img, &len);
    g_autoptr (GError) error = NULL;
    g_autoptr (DgSafetensors) st = dg_safetensors_open_data (p, len, "e", &error);
    g_assert_no_error (error);
    g_assert_cmpuint (dg_safetensors_n_tensors (st), ==, 0);
    g_assert_cmpuint (dg_safetensors_total_bytes (st), ==, 0);
  }
}

/* Gaps between tensors are harmless (nothing reads them) and are accepted. */
static void
test_gap_allowed (void)
{
  const char *header = "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                       "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[6,8]}}";
  guint8 data[8] = { 0 };
  g_autoptr (GBytes) img = st_image (header, data, sizeof data);
  gsize len;
  const guint8 *p = g_bytes_get_data (img, &len);
  g_autoptr (GError) error = NULL;
  g_autoptr (DgSafetensors) st = dg_safetensors_open_data (p, len, "gap", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dg_safetensors_n_tensors (st), ==, 2);
}

static void
test_expect (void)
{
  g_autoptr (GBytes) img = make_valid_image ();
  gsize len;
  const guint8 *p = g_bytes_get_data (img, &len);
  g_autoptr (DgSafetensors) st = dg_safetensors_open_data (p, len, "transformer/x.safetensors", NULL);
  g_assert_nonnull (st);
  g_autoptr (GError) error = NULL;

  g_assert_nonnull (dg_safetensors_expect_shape (st, "w.f32", DG_DTYPES_FLOAT, &error, 2, 3));
  g_assert_no_error (error);
  g_assert_nonnull (dg_safetensors_expect_shape (st, "w.f32", DG_DTYPE_BIT (DG_DTYPE_F32), &error, -1, 3));
  g_assert_nonnull (dg_safetensors_expect (st, "scalar", DG_DTYPES_FLOAT, 0, NULL, &error));
  g_assert_no_error (error);

  g_assert_null (dg_safetensors_expect_shape (st, "w.f32", DG_DTYPES_FLOAT, &error, 3, 2));
  g_assert_error (error, DG_ERROR, DG_ERROR_SHAPE);
  g_assert_cmpstr (error->message, ==,
                   "transformer/x.safetensors: tensor 'w.f32' has shape [2,3], expected [3,2] — is this the right "
                   "model folder?");
  g_clear_error (&error);

  g_assert_null (dg_safetensors_expect_shape (st, "w.f32", DG_DTYPES_FLOAT, &error, 2, 3, 1));
  g_assert_error (error, DG_ERROR, DG_ERROR_SHAPE);
  g_clear_error (&error);

  g_assert_null (dg_safetensors_expect_shape (st, "ids", DG_DTYPES_FLOAT, &error, 3));
  g_assert_error (error, DG_ERROR, DG_ERROR_SHAPE);
  g_assert_nonnull (strstr (error->message, "stored as I64, expected F32, F16 or BF16"));
  g_clear_error (&error);

  g_assert_null (dg_safetensors_expect_shape (st, "proj_out.weight", DG_DTYPES_FLOAT, &error, 64, 32));
  g_assert_error (error, DG_ERROR, DG_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "'proj_out.weight' is missing"));
  g_assert_nonnull (strstr (error->message, "transformer/x.safetensors"));
}

static void
test_to_bf16 (void)
{
  g_autoptr (GBytes) img = make_valid_image ();
  gsize len;
  const guint8 *p = g_bytes_get_data (img, &len);
  g_autoptr (DgSafetensors) st = dg_safetensors_open_data (p, len, "m", NULL);
  guint16 out[6];
  g_assert_true (dg_tensor_to_bf16 (dg_safetensors_find (st, "w.bf16"), out, NULL));
  g_assert_cmpmem (out, 8, bf16_vals, 8);
  g_assert_true (dg_tensor_to_bf16 (dg_safetensors_find (st, "w.f16"), out, NULL));
  g_assert_cmphex (out[0], ==, 0x3f80);
  g_assert_cmphex (out[1], ==, 0xc020);
  g_assert_cmphex (out[2], ==, 0x3380); /* 2^-24 */
  g_assert_cmphex (out[3], ==, 0xff80);
  g_assert_true (dg_tensor_to_bf16 (dg_safetensors_find (st, "w.f32"), out, NULL));
  g_assert_cmphex (out[5], ==, 0xc780); /* -65504 rounds to -65536 in bf16 */
  g_autoptr (GError) error = NULL;
  g_assert_false (dg_tensor_to_bf16 (dg_safetensors_find (st, "mask"), out, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED);
}

/* ---- broken single files ------------------------------------------------------------------ */

/* Opens @img from memory and from a file; both must fail with @code and mention @needle. */
static void
expect_failure (GBytes *img, int code, const char *needle)
{
  gsize len;
  const guint8 *p = g_bytes_get_data (img, &len);
  g_autoptr (GError) error = NULL;
  g_autoptr (DgSafetensors) st = dg_safetensors_open_data (p ? p : (const guint8 *) "", len, "mem.safetensors", &error);
  g_assert_null (st);
  g_assert_error (error, DG_ERROR, code);
  g_assert_nonnull (strstr (error->message, "mem.safetensors"));
  if (needle && !strstr (error->message, needle))
    g_error ("message \"%s\" lacks \"%s\"", error->message, needle);
  g_test_message ("%s", error->message);
  g_clear_error (&error);

  g_autofree char *dir = fresh_dir ();
  g_autofree char *path = st_write_file (dir, "bad.safetensors", img);
  g_assert_null (dg_safetensors_open (path, &error));
  g_assert_error (error, DG_ERROR, code);
  g_assert_nonnull (strstr (error->message, "bad.safetensors"));
  if (needle)
    g_assert_nonnull (strstr (error->message, needle));
}

typedef struct {
  const char *name;
  const char *header;
  gsize data_len;
  int code;
  const char *needle;
} BadHeader;

#define ENTRY(dtype, shape, offs) "{\"dtype\":" dtype ",\"shape\":" shape ",\"data_offsets\":" offs "}"
#define ONE(dtype, shape, offs) "{\"t\":" ENTRY (dtype, shape, offs) "}"

static const BadHeader bad_headers[] = {
  { "invalid-json", "{\"t\":", 0, DG_ERROR_FORMAT, "not valid JSON" },
  { "array-root", "[]", 0, DG_ERROR_FORMAT, "not a JSON object" },
  { "string-root", "\"abc\"", 0, DG_ERROR_FORMAT, "not a JSON object" },
  { "number-root", "12", 0, DG_ERROR_FORMAT, "not a JSON object" },
  { "blank", "        ", 0, DG_ERROR_FORMAT, "not a JSON object" },
  { "comment", "{/* x */}", 0, DG_ERROR_FORMAT, "not plain JSON" },
  { "single-quotes", "{'t':1}", 0, DG_ERROR_FORMAT, "not plain JSON" },
  { "trailing-garbage", "{} x", 0, DG_ERROR_FORMAT, "more text after" },
  { "leading-garbage", "x {}", 0, DG_ERROR_FORMAT, "not valid JSON" },
  { "two-objects", "{}{}", 0, DG_ERROR_FORMAT, "more text after" },
  { "two-entries-objects", "{\"a\":1}{\"b\":2}", 0, DG_ERROR_FORMAT, "more text after" },
  { "object-then-list", "{} []", 0, DG_ERROR_FORMAT, "more text after" },
  { "not-utf8", "{\"\xff\xfe\":1}", 0, DG_ERROR_FORMAT, "UTF-8" },
  { "duplicate-name", "{\"t\":" ENTRY ("\"U8\"", "[1]", "[0,1]") ",\"t\":" ENTRY ("\"U8\"", "[1]", "[1,2]") "}", 2,
    DG_ERROR_FORMAT, "appears twice" },
  { "entry-number", "{\"t\":1}", 0, DG_ERROR_FORMAT, "not a JSON object" },
  { "entry-array", "{\"t\":[1]}", 0, DG_ERROR_FORMAT, "not a JSON object" },
  { "entry-null", "{\"t\":null}", 0, DG_ERROR_FORMAT, "not a JSON object" },
  { "empty-name", "{\"\":" ENTRY ("\"U8\"", "[1]", "[0,1]") "}", 1, DG_ERROR_FORMAT, "empty name" },
  { "missing-dtype", "{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, DG_ERROR_FORMAT, "no \"dtype\"" },
  { "missing-shape", "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, DG_ERROR_FORMAT, "no \"shape\"" },
  { "missing-offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, DG_ERROR_FORMAT, "no \"data_offsets\"" },
  { "dtype-number", ONE ("3", "[1]", "[0,4]"), 4, DG_ERROR_FORMAT, "\"dtype\" is not a string" },
  { "dtype-null", ONE ("null", "[1]", "[0,4]"), 4, DG_ERROR_FORMAT, "\"dtype\" is not a string" },
  { "dtype-unknown", ONE ("\"F8_E4M3\"", "[1]", "[0,1]"), 1, DG_ERROR_UNSUPPORTED, "\"F8_E4M3\"" },
  { "dtype-lowercase", ONE ("\"f32\"", "[1]", "[0,4]"), 4, DG_ERROR_UNSUPPORTED, "\"f32\"" },
  { "dtype-empty", ONE ("\"\"", "[1]", "[0,4]"), 4, DG_ERROR_UNSUPPORTED, "dtype" },
  { "shape-number", ONE ("\"F32\"", "4", "[0,16]"), 16, DG_ERROR_FORMAT, "\"shape\" is not a list" },
  { "shape-object", ONE ("\"F32\"", "{}", "[0,16]"), 16, DG_ERROR_FORMAT, "\"shape\" is not a list" },
  { "shape-negative", ONE ("\"F32\"", "[-1]", "[0,4]"), 4, DG_ERROR_FORMAT, "shape entry 0" },
  { "shape-negative-second", ONE ("\"F32\"", "[2,-2]", "[0,16]"), 16, DG_ERROR_FORMAT, "shape entry 1" },
  { "shape-float", ONE ("\"F32\"", "[2.0]", "[0,8]"), 8, DG_ERROR_FORMAT, "shape entry 0" },
  { "shape-exponent", ONE ("\"F32\"", "[1e1]", "[0,40]"), 40, DG_ERROR_FORMAT, "shape entry 0" },
  { "shape-huge-float", ONE ("\"F32\"", "[1e300]", "[0,4]"), 4, DG_ERROR_FORMAT, "shape entry 0" },
  { "shape-string", ONE ("\"F32\"", "[\"2\"]", "[0,8]"), 8, DG_ERROR_FORMAT, "shape entry 0" },
  { "shape-bool", ONE ("\"F32\"", "[true]", "[0,4]"), 4, DG_ERROR_FORMAT, "shape entry 0" },
  { "shape-null", ONE ("\"F32\"", "[null]", "[0,4]"), 4, DG_ERROR_FORMAT, "shape entry 0" },
  { "shape-nested", ONE ("\"F32\"", "[[2]]", "[0,8]"), 8, DG_ERROR_FORMAT, "shape entry 0" },
  { "shape-beyond-int64", ONE ("\"F32\"", "[99999999999999999999]", "[0,4]"), 4, DG_ERROR_FORMAT, "shape entry 0" },
  { "shape-rank-9", ONE ("\"U8\"", "[1,1,1,1,1,1,1,1,1]", "[0,1]"), 1, DG_ERROR_UNSUPPORTED, "9 dimensions" },
  { "shape-product-overflow", ONE ("\"F32\"", "[4294967296,4294967296,4]", "[0,4]"), 4, DG_ERROR_FORMAT, "more bytes" },
  { "shape-bytes-overflow", ONE ("\"F32\"", "[4611686018427387904]", "[0,4]"), 4, DG_ERROR_FORMAT, "more bytes" },
  { "shape-int64-max", ONE ("\"U8\"", "[9223372036854775807]", "[0,4]"), 4, DG_ERROR_FORMAT, "data_offsets span" },
  { "shape-overflow-then-zero", ONE ("\"F32\"", "[4294967296,4294967296,4,0]", "[0,0]"), 0, DG_ERROR_FORMAT,
    "more bytes" },
  { "offsets-number", ONE ("\"F32\"", "[1]", "0"), 4, DG_ERROR_FORMAT, "pair of non-negative integers" },
  { "offsets-one", ONE ("\"F32\"", "[1]", "[4]"), 4, DG_ERROR_FORMAT, "pair of non-negative integers" },
  { "offsets-three", ONE ("\"F32\"", "[1]", "[0,4,8]"), 8, DG_ERROR_FORMAT, "pair of non-negative integers" },
  { "offsets-empty", ONE ("\"F32\"", "[1]", "[]"), 4, DG_ERROR_FORMAT, "pair of non-negative integers" },
  { "offsets-negative", ONE ("\"F32\"", "[1]", "[-4,0]"), 4, DG_ERROR_FORMAT, "pair of non-negative integers" },
  { "offsets-float", ONE ("\"F32\"", "[1]", "[0,4.0]"), 4, DG_ERROR_FORMAT, "pair of non-negative integers" },
  { "offsets-string", ONE ("\"F32\"", "[1]", "[\"0\",\"4\"]"), 4, DG_ERROR_FORMAT, "pair of non-negative integers" },
  { "offsets-beyond-int64", ONE ("\"F32\"", "[1]", "[0,18446744073709551615]"), 4, DG_ERROR_FORMAT,
    "pair of non-negative integers" },
  { "offsets-past-end", ONE ("\"F32\"", "[2]", "[0,8]"), 4, DG_ERROR_FORMAT, "run past the end" },
  { "offsets-begin-past-end", ONE ("\"F32\"", "[0]", "[100,100]"), 4, DG_ERROR_FORMAT, "run past the end" },
  { "offsets-huge", ONE ("\"F32\"", "[1]", "[9223372036854775800,9223372036854775804]"), 4, DG_ERROR_FORMAT,
    "run past the end" },
  { "offsets-reversed", ONE ("\"F32\"", "[1]", "[4,0]"), 4, DG_ERROR_FORMAT, "end before they begin" },
  { "size-mismatch-short", ONE ("\"F32\"", "[2]", "[0,4]"), 8, DG_ERROR_FORMAT, "span 4 bytes" },
  { "size-mismatch-long", ONE ("\"BF16\"", "[2]", "[0,8]"), 8, DG_ERROR_FORMAT, "span 8 bytes" },
  { "overlap", "{\"a\":" ENTRY ("\"F32\"", "[2]", "[0,8]") ",\"b\":" ENTRY ("\"F32\"", "[2]", "[4,12]") "}", 12,
    DG_ERROR_FORMAT, "overlap" },
  { "overlap-identical", "{\"a\":" ENTRY ("\"F32\"", "[1]", "[0,4]") ",\"b\":" ENTRY ("\"I32\"", "[1]", "[0,4]") "}", 4,
    DG_ERROR_FORMAT, "overlap" },
  { "overlap-contained",
    "{\"a\":" ENTRY ("\"U8\"", "[8]", "[0,8]") ",\"z\":" ENTRY ("\"U8\"", "[1]",
                                                                "[8,9]") ",\"b\":" ENTRY ("\"U8\"", "[2]", "[3,5]") "}",
    9, DG_ERROR_FORMAT, "overlap" },
  { "metadata-number", "{\"__metadata__\":5}", 0, DG_ERROR_FORMAT, "__metadata__" },
  { "metadata-array", "{\"__metadata__\":[\"a\"]}", 0, DG_ERROR_FORMAT, "__metadata__" },
  { "metadata-non-string", "{\"__metadata__\":{\"k\":1}}", 0, DG_ERROR_FORMAT, "__metadata__" },
  { "metadata-nested", "{\"__metadata__\":{\"k\":{}}}", 0, DG_ERROR_FORMAT, "__metadata__" },
};

static void
test_bad_header (gconstpointer p)
{
  const BadHeader *c = p;
  g_autofree guint8 *data = g_malloc0 (c->data_len + 1);
  g_autoptr (GBytes) img = st_image (c->header, data, c->data_len);
  expect_failure (img, c->code, c->needle);
}

static void
test_deep_nesting (void)
{
  /* json-glib recurses per level; the pre-scan must stop this long before the stack ends. */
  const guint depth = 200000;
  GString *h = g_string_new ("{\"t\":");
  for (guint i = 0; i < depth; i++) g_string_append_c (h, '[');
  for (guint i = 0; i < depth; i++) g_string_append_c (h, ']');
  g_string_append_c (h, '}');
  g_autoptr (GBytes) img = st_image (h->str, NULL, 0);
  g_string_free (h, TRUE);
  expect_failure (img, DG_ERROR_FORMAT, "nests deeper");
}

static void
test_nul_in_header (void)
{
  const char header[] = "{\"t\":\0}";
  g_autoptr (GBytes) img = st_image_raw (sizeof header - 1, header, sizeof header - 1, NULL, 0);
  expect_failure (img, DG_ERROR_FORMAT, "NUL");
}

typedef struct {
  const char *name;
  guint64 length_field;
  const char *header;
  gsize data_len;
  const char *needle;
} BadLength;

static const BadLength bad_lengths[] = {
  { "zero", 0, "", 16, "header length is 0" },
  { "one", 1, "{", 0, "header length is 1" },
  { "past-end", 100, "{}", 0, "runs past the end" },
  { "one-past-end", 3, "{}", 0, "runs past the end" },
  { "huge", 200000000, "{}", 0, "more than any real" },
  { "2^63", G_GUINT64_CONSTANT (1) << 63, "{}", 0, "more than any real" },
  { "all-ones", G_MAXUINT64, "{}", 0, "more than any real" },
  { "swallows-data", 16, "{}", 14, "NUL" }, /* the "header" runs into the zero-filled data */
};

static void
test_bad_length (gconstpointer p)
{
  const BadLength *c = p;
  g_autofree guint8 *data = g_malloc0 (c->data_len + 1);
  g_autoptr (GBytes) img = st_image_raw (c->length_field, c->header, strlen (c->header), data, c->data_len);
  expect_failure (img, DG_ERROR_FORMAT, c->needle);
}

static void
test_too_short (void)
{
  for (gsize n = 0; n < 8; n++) {
    g_autoptr (GBytes) img = g_bytes_new ("\x02\0\0\0\0\0\0", n);
    expect_failure (img, DG_ERROR_FORMAT, "too short");
  }
}

/* Every prefix of a valid file must fail cleanly: this is what an interrupted download is. */
static void
test_truncated (void)
{
  g_autoptr (GBytes) img = make_valid_image ();
  gsize len;
  const guint8 *p = g_bytes_get_data (img, &len);
  for (gsize cut = 0; cut < len; cut++) {
    g_autoptr (GError) error = NULL;
    /* A private copy of exactly the prefix, so ASan sees any read past the cut. */
    g_autofree guint8 *copy = g_malloc (cut + 1);
    memcpy (copy, p, cut);
    g_autoptr (DgSafetensors) st = dg_safetensors_open_data (copy, cut, "cut", &error);
    g_assert_null (st);
    g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
  }
  g_autoptr (GBytes) short_by_one = g_bytes_new_from_bytes (img, 0, len - 1);
  expect_failure (short_by_one, DG_ERROR_FORMAT, "past the end");
}

/* ---- sharded sets ------------------------------------------------------------------------- */

#define SHARD1 "model-00001-of-00002.safetensors"
#define SHARD2 "model-00002-of-00002.safetensors"

static GBytes *
shard_image (const char *const *names, guint n, float base)
{
  g_autoptr (StWriter) w = st_writer_new ();
  for (guint i = 0; i < n; i++) {
    float v[2] = { base + (float) i, -(base + (float) i) };
    st_writer_add (w, names[i], "F32", 1, DG_SHAPE (2), v, sizeof v);
  }
  return st_writer_finish (g_steal_pointer (&w));
}

/* A valid two-shard set: a1, a2 in shard 1; b1 in shard 2. Returns the folder. */
static char *
make_sharded (const char *index_name)
{
  char *dir = fresh_dir ();
  const char *s1[] = { "a1", "a2" }, *s2[] = { "b1" };
  g_autoptr (GBytes) i1 = shard_image (s1, 2, 10.0f);
  g_autoptr (GBytes) i2 = shard_image (s2, 1, 20.0f);
  g_free (st_write_file (dir, SHARD1, i1));
  g_free (st_write_file (dir, SHARD2, i2));
  g_free (st_write_text (dir, index_name,
                         "{\"metadata\":{\"total_size\":24},\"weight_map\":{\"b1\":\"" SHARD2 "\",\"a1\":\"" SHARD1
                         "\",\"a2\":\"" SHARD1 "\"}}"));
  return dir;
}

static void
check_sharded (const DgSafetensors *st)
{
  g_assert_cmpuint (dg_safetensors_n_tensors (st), ==, 3);
  const DgTensorInfo *a2 = dg_safetensors_find (st, "a2"), *b1 = dg_safetensors_find (st, "b1");
  g_assert_nonnull (a2);
  g_assert_nonnull (b1);
  g_assert_true (g_str_has_suffix (a2->file, SHARD1));
  g_assert_true (g_str_has_suffix (b1->file, SHARD2));
  float v[2];
  g_assert_true (dg_tensor_to_f32 (a2, v, NULL));
  g_assert_cmpfloat (v[0], ==, 11.0f);
  g_assert_true (dg_tensor_to_f32 (b1, v, NULL));
  g_assert_cmpfloat (v[1], ==, -20.0f);
  /* Storage order follows the shards in index order of first mention (b1's shard first). */
  g_assert_cmpstr (dg_safetensors_tensor (st, 0)->name, ==, "b1");
  g_assert_cmpstr (dg_safetensors_tensor (st, 1)->name, ==, "a1");
  g_assert_cmpuint (dg_safetensors_total_bytes (st), ==, 24);
}

static void
test_sharded (void)
{
  g_autofree char *dir = make_sharded ("model.safetensors.index.json");
  g_autofree char *index = g_build_filename (dir, "model.safetensors.index.json", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (DgSafetensors) by_index = dg_safetensors_open (index, &error);
  g_assert_no_error (error);
  check_sharded (by_index);
  g_assert_true (g_str_has_suffix (dg_safetensors_display_name (by_index), "/model.safetensors.index.json"));
  g_autoptr (DgSafetensors) by_folder = dg_safetensors_open (dir, &error);
  g_assert_no_error (error);
  check_sharded (by_folder);
}

static void
test_sharded_custom_index_name (void)
{
  g_autofree char *dir = make_sharded ("weights.safetensors.index.json");
  g_autoptr (GError) error = NULL;
  g_autoptr (DgSafetensors) st = dg_safetensors_open (dir, &error);
  g_assert_no_error (error);
  check_sharded (st);

  g_free (st_write_text (dir, "other.safetensors.index.json", "{}"));
  g_assert_null (dg_safetensors_open (dir, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "more than one shard index"));
}

/* A tensor in a shard that the index forgot is still data the file describes: accepted. */
static void
test_sharded_unlisted_tensor (void)
{
  g_autofree char *dir = make_sharded ("model.safetensors.index.json");
  g_free (st_write_text (dir, "model.safetensors.index.json",
                         "{\"weight_map\":{\"a1\":\"" SHARD1 "\",\"b1\":\"" SHARD2 "\"}}"));
  g_autoptr (GError) error = NULL;
  g_autoptr (DgSafetensors) st = dg_safetensors_open (dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (dg_safetensors_find (st, "a2"));
}

typedef struct {
  const char *name;
  const char *index; /* NULL: keep the valid index */
  int code;
  const char *needle;
} BadIndex;

static const BadIndex bad_indexes[] = {
  { "invalid-json", "{\"weight_map\":", DG_ERROR_FORMAT, "not valid JSON" },
  { "empty-file", "", DG_ERROR_FORMAT, "not a JSON object" },
  { "array", "[]", DG_ERROR_FORMAT, "not a JSON object" },
  { "no-weight-map", "{\"metadata\":{}}", DG_ERROR_FORMAT, "no \"weight_map\"" },
  { "weight-map-array", "{\"weight_map\":[]}", DG_ERROR_FORMAT, "no \"weight_map\"" },
  { "weight-map-empty", "{\"weight_map\":{}}", DG_ERROR_FORMAT, "lists no tensors" },
  { "shard-number", "{\"weight_map\":{\"a1\":1}}", DG_ERROR_FORMAT, "not a file name" },
  { "shard-empty-name", "{\"weight_map\":{\"a1\":\"\"}}", DG_ERROR_FORMAT, "not a plain file name" },
  { "shard-parent", "{\"weight_map\":{\"a1\":\"../" SHARD1 "\"}}", DG_ERROR_FORMAT, "not a plain file name" },
  { "shard-absolute", "{\"weight_map\":{\"a1\":\"/etc/passwd\"}}", DG_ERROR_FORMAT, "not a plain file name" },
  { "shard-dotdot", "{\"weight_map\":{\"a1\":\"..\"}}", DG_ERROR_FORMAT, "not a plain file name" },
  { "missing-shard", "{\"weight_map\":{\"a1\":\"" SHARD1 "\",\"c\":\"model-00003-of-00003.safetensors\"}}",
    DG_ERROR_MISSING, "model-00003-of-00003.safetensors" },
  { "tensor-absent", "{\"weight_map\":{\"a1\":\"" SHARD1 "\",\"ghost\":\"" SHARD1 "\"}}", DG_ERROR_MISSING, "'ghost'" },
  { "wrong-shard", "{\"weight_map\":{\"a1\":\"" SHARD2 "\",\"b1\":\"" SHARD2 "\",\"a2\":\"" SHARD1 "\"}}",
    DG_ERROR_FORMAT, "but it is in" },
  { "duplicate-key", "{\"weight_map\":{\"a1\":\"" SHARD1 "\"},\"weight_map\":{\"b1\":\"" SHARD2 "\"}}", DG_ERROR_FORMAT,
    "appears twice" },
};

static void
test_bad_index (gconstpointer p)
{
  const BadIndex *c = p;
  g_autofree char *dir = make_sharded ("model.safetensors.index.json");
  g_free (st_write_text (dir, "model.safetensors.index.json", c->index));
  g_autoptr (GError) error = NULL;
  g_assert_null (dg_safetensors_open (dir, &error));
  g_assert_error (error, DG_ERROR, c->code);
  g_assert_nonnull (strstr (error->message, c->needle));
  g_test_message ("%s", error->message);
}

static void
test_sharded_missing_file (void)
{
  g_autofree char *dir = make_sharded ("model.safetensors.index.json");
  g_autofree char *shard = g_build_filename (dir, SHARD2, NULL);
  g_assert_cmpint (g_unlink (shard), ==, 0);
  g_autoptr (GError) error = NULL;
  g_assert_null (dg_safetensors_open (dir, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, SHARD2));
  g_assert_nonnull (strstr (error->message, "incomplete"));
}

static void
test_sharded_duplicate_tensor (void)
{
  g_autofree char *dir = make_sharded ("model.safetensors.index.json");
  const char *s2[] = { "b1", "a1" };
  g_autoptr (GBytes) i2 = shard_image (s2, 2, 30.0f);
  g_free (st_write_file (dir, SHARD2, i2));
  g_autoptr (GError) error = NULL;
  g_assert_null (dg_safetensors_open (dir, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "'a1' is stored in both"));
}

static void
test_sharded_corrupt_shard (void)
{
  g_autofree char *dir = make_sharded ("model.safetensors.index.json");
  g_autoptr (GBytes) bad = st_image ("{\"b1\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "", 0);
  g_free (st_write_file (dir, SHARD2, bad));
  g_autoptr (GError) error = NULL;
  g_assert_null (dg_safetensors_open (dir, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, SHARD2));
}

/* ---- the tiny model written by PyTorch (tests/data, when present) ------------------------- */

static char *
data_dir (const char *sub)
{
  const char *root = g_getenv ("DEEPGEN_TEST_DATA");
  char *dir = g_build_filename (root ? root : DEEPGEN_TEST_DATA_DIR, sub, NULL);
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_free (dir);
    return NULL;
  }
  return dir;
}

static void
test_tiny_model (void)
{
  g_autofree char *tiny = data_dir ("tiny-deepgen");
  if (tiny == NULL) {
    g_test_skip ("tests/data/tiny-deepgen is not there yet");
    return;
  }
  g_autoptr (GError) error = NULL;
  g_autofree char *vlm_dir = g_build_filename (tiny, "vlm", NULL);
  g_autoptr (DgSafetensors) vlm = dg_safetensors_open (vlm_dir, &error);
  g_assert_no_error (error);
  const DgTensorInfo *emb = dg_safetensors_find (vlm, "model.embed_tokens.weight");
  if (emb == NULL)
    emb = dg_safetensors_find (vlm, "model.language_model.embed_tokens.weight");
  g_assert_nonnull (emb);
  g_assert_true (dg_tensor_info_check (emb, DG_DTYPES_FLOAT, 2, DG_SHAPE (1024, 32), &error));
  g_assert_no_error (error);

  g_autofree char *dit_dir = g_build_filename (tiny, "transformer", NULL);
  g_autoptr (DgSafetensors) dit = dg_safetensors_open (dit_dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (dg_safetensors_expect_shape (dit, "proj_out.weight", DG_DTYPES_FLOAT, &error, 64, 32));
  g_assert_nonnull (dg_safetensors_expect_shape (dit, "pos_embed.pos_embed", DG_DTYPES_FLOAT, &error, 1, 2304, 32));
  g_assert_no_error (error);
  /* The message a user sees when pointing the full model at the tiny files. */
  g_assert_null (dg_safetensors_expect_shape (dit, "proj_out.weight", DG_DTYPES_FLOAT, &error, 64, 1536));
  g_assert_error (error, DG_ERROR, DG_ERROR_SHAPE);
  g_assert_cmpstr (error->message, ==,
                   "transformer/diffusion_pytorch_model.safetensors: tensor 'proj_out.weight' has shape [64,32], "
                   "expected [64,1536] — is this the right model folder?");
  g_clear_error (&error);

  const char *others[] = { "connector", "vae" };
  for (guint i = 0; i < G_N_ELEMENTS (others); i++) {
    g_autofree char *d = g_build_filename (tiny, others[i], NULL);
    g_autoptr (DgSafetensors) st = dg_safetensors_open (d, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (dg_safetensors_n_tensors (st), >, 0);
    /* Every tensor converts, wherever it sits in the file. */
    for (guint t = 0; t < dg_safetensors_n_tensors (st); t++) {
      const DgTensorInfo *info = dg_safetensors_tensor (st, t);
      g_autofree float *buf = g_new (float, info->n_elements + 1);
      g_assert_true (dg_tensor_to_f32 (info, buf, &error));
    }
  }
  g_autofree char *c = g_build_filename (tiny, "connector", NULL);
  g_autoptr (DgSafetensors) conn = dg_safetensors_open (c, &error);
  g_assert_nonnull (dg_safetensors_expect_shape (conn, "meta_queries", DG_DTYPES_FLOAT, &error, 8, 32));
  g_assert_no_error (error);
}

/* A file cut short after it was mapped: reading a tensor whose pages are now past the end of the
 * file raises SIGBUS, which the read guard turns into DG_ERROR_IO naming the file; the same
 * tensor set stays usable for what is still in the file, and the process lives on. */
static void
test_truncated_after_mapping (void)
{
  g_autofree char *dir = st_tmpdir ();
  const gsize n = 256 * 1024; /* 1 MiB of f32: many pages */
  g_autofree float *values = g_new (float, n);
  for (gsize i = 0; i < n; i++) values[i] = (float) i;
  g_autoptr (StWriter) w = st_writer_new ();
  st_writer_add (w, "small", "F32", 1, (const gint64[]) { 4 }, values, 4 * sizeof (float));
  st_writer_add (w, "big", "F32", 1, (const gint64[]) { (gint64) n }, values, n * sizeof (float));
  g_autoptr (GBytes) img = st_writer_finish (g_steal_pointer (&w));
  g_autofree char *path = st_write_file (dir, "model.safetensors", img);
  g_autoptr (GError) error = NULL;
  g_autoptr (DgSafetensors) st = dg_safetensors_open (path, &error);
  g_assert_no_error (error);
  const DgTensorInfo *big = dg_safetensors_find (st, "big"), *small = dg_safetensors_find (st, "small");
  g_assert_nonnull (big);
  /* cut the file where "big" begins, in place (same inode, as a truncating writer would) */
  gsize keep = g_bytes_get_size (img) - n * sizeof (float); /* "big" is the last tensor */
  g_assert_cmpint (truncate (path, (off_t) keep), ==, 0);
  g_autofree float *out = g_new (float, n);
  g_assert_false (dg_tensor_to_f32 (big, out, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "model.safetensors"));
  g_clear_error (&error);
  /* what is still there reads fine, and a second fault is caught the same way */
  g_assert_true (dg_tensor_to_f32 (small, out, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (out[3], ==, 3.0f);
  g_assert_false (dg_tensor_to_bf16 (big, (guint16 *) out, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_IO);
  g_clear_pointer (&st, dg_safetensors_free);
  st_rmtree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmp_root = st_tmpdir ();

  g_test_add_func ("/safetensors/single-file", test_single_file);
  g_test_add_func ("/safetensors/truncated-after-mapping", test_truncated_after_mapping);
  g_test_add_func ("/safetensors/open-folder", test_open_folder);
  g_test_add_func ("/safetensors/folder-without-weights", test_folder_without_weights);
  g_test_add_func ("/safetensors/missing-path", test_missing_path);
  g_test_add_func ("/safetensors/not-regular-file", test_not_regular);
  g_test_add_func ("/safetensors/unaligned", test_unaligned);
  g_test_add_func ("/safetensors/empty-header", test_empty_header);
  g_test_add_func ("/safetensors/gap-allowed", test_gap_allowed);
  g_test_add_func ("/safetensors/expect", test_expect);
  g_test_add_func ("/safetensors/to-bf16", test_to_bf16);
  for (guint i = 0; i < G_N_ELEMENTS (bad_headers); i++) {
    g_autofree char *path = g_strdup_printf ("/safetensors/bad-header/%s", bad_headers[i].name);
    g_test_add_data_func (path, &bad_headers[i], test_bad_header);
  }
  g_test_add_func ("/safetensors/bad-header/deep-nesting", test_deep_nesting);
  g_test_add_func ("/safetensors/bad-header/nul", test_nul_in_header);
  for (guint i = 0; i < G_N_ELEMENTS (bad_lengths); i++) {
    g_autofree char *path = g_strdup_printf ("/safetensors/bad-length/%s", bad_lengths[i].name);
    g_test_add_data_func (path, &bad_lengths[i], test_bad_length);
  }
  g_test_add_func ("/safetensors/bad-length/too-short", test_too_short);
  g_test_add_func ("/safetensors/truncated", test_truncated);
  g_test_add_func ("/safetensors/sharded/valid", test_sharded);
  g_test_add_func ("/safetensors/sharded/custom-index-name", test_sharded_custom_index_name);
  g_test_add_func ("/safetensors/sharded/unlisted-tensor", test_sharded_unlisted_tensor);
  for (guint i = 0; i < G_N_ELEMENTS (bad_indexes); i++) {
    g_autofree char *path = g_strdup_printf ("/safetensors/sharded/bad-index/%s", bad_indexes[i].name);
    g_test_add_data_func (path, &bad_indexes[i], test_bad_index);
  }
  g_test_add_func ("/safetensors/sharded/missing-file", test_sharded_missing_file);
  g_test_add_func ("/safetensors/sharded/duplicate-tensor", test_sharded_duplicate_tensor);
  g_test_add_func ("/safetensors/sharded/corrupt-shard", test_sharded_corrupt_shard);
  g_test_add_func ("/safetensors/tiny-model", test_tiny_model);

  int ret = g_test_run ();
  st_rmtree (tmp_root);
  g_free (tmp_root);
  return ret;
}
