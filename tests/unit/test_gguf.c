/* unit_gguf: the GGUF reader (model/io/gguf.c, through dg_safetensors_open and dg_gguf_open_data)
 * on files from the writer and on hand-made broken ones. Every broken case must end in a
 * DG_ERROR naming the file — never a crash or a read outside the image (this suite also runs
 * under ASan + UBSan). */
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>

#include "dg_error.h"
#include "gguf.h"
#include "safetensors.h"
#include "st_writer.h"

static char *tmp_root;

/* ---- a byte builder for hand-made images -------------------------------------------------- */

static void
put_u32 (GByteArray *b, guint32 v)
{
  guint8 p[4] = { v & 255, (v >> 8) & 255, (v >> 16) & 255, v >> 24 };
  g_byte_array_append (b, p, 4);
}

static void
put_u64 (GByteArray *b, guint64 v)
{
  put_u32 (b, (guint32) v);
  put_u32 (b, (guint32) (v >> 32));
}

static void
put_str (GByteArray *b, const char *s)
{
  put_u64 (b, strlen (s));
  g_byte_array_append (b, (const guint8 *) s, (guint) strlen (s));
}

static void
put_kv_u32 (GByteArray *b, const char *key, guint32 type, guint32 v)
{
  put_str (b, key);
  put_u32 (b, type);
  put_u32 (b, v);
}

/* One tensor info; dims in ggml order. */
static void
put_info (GByteArray *b, const char *name, guint n_dims, const guint64 *ne, guint32 type, guint64 offset)
{
  put_str (b, name);
  put_u32 (b, n_dims);
  for (guint d = 0; d < n_dims; d++) put_u64 (b, ne[d]);
  put_u32 (b, type);
  put_u64 (b, offset);
}

/* "GGUF", version, counts, then @kv and @infos as given, padding to 32, then @data_len bytes
 * of data (a ramp). */
static GBytes *
image (guint32 version, guint64 n_tensors, guint64 n_kv, GByteArray *kv, GByteArray *infos, gsize data_len)
{
  GByteArray *b = g_byte_array_new ();
  g_byte_array_append (b, (const guint8 *) "GGUF", 4);
  put_u32 (b, version);
  put_u64 (b, n_tensors);
  put_u64 (b, n_kv);
  if (kv)
    g_byte_array_append (b, kv->data, kv->len);
  if (infos)
    g_byte_array_append (b, infos->data, infos->len);
  while (b->len % 32) g_byte_array_append (b, (const guint8 *) "", 1);
  for (gsize i = 0; i < data_len; i++) {
    guint8 v = (guint8) (i * 7 + 1);
    g_byte_array_append (b, &v, 1);
  }
  return g_byte_array_free_to_bytes (b);
}

/* ---- a valid file from the writer ---------------------------------------------------------- */

static const float f32_vals[6] = { 1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -65504.0f };
static const guint16 bf16_vals[4] = { 0x3f80, 0xc020, 0x0000, 0x7f80 };
static const guint16 f16_vals[4] = { 0x3c00, 0xc100, 0x0001, 0xfc00 };

/* Two rows of 64 q8_0 values: 4 blocks, block b has scale 2^-b and quants q[i] = i - 16 (b even)
 * or 127 - 8i (b odd). */
static void
q8_blocks (guint8 out[4 * 34], float expect[128])
{
  for (int b = 0; b < 4; b++) {
    const float d = ldexpf (1.0f, -b);
    const guint16 h = (guint16) (0x3c00 - (b << 10)); /* 1, 0.5, 0.25, 0.125 in f16 */
    out[b * 34] = h & 255;
    out[b * 34 + 1] = h >> 8;
    for (int i = 0; i < 32; i++) {
      gint8 q = (gint8) (b % 2 ? 127 - 8 * i : i - 16);
      out[b * 34 + 2 + i] = (guint8) q;
      expect[b * 32 + i] = d * q;
    }
  }
}

typedef struct {
  const char *name;
  DgDType dtype;
  guint ndim;
  gint64 shape[2];
  const void *data;
  gsize nbytes;
} Spec;

static GBytes *
write_valid (void)
{
  static guint8 q8[4 * 34];
  float expect[128];
  q8_blocks (q8, expect);
  static const float scalar = 42.0f;
  const Spec specs[] = {
    { "w.f32", DG_DTYPE_F32, 2, { 2, 3 }, f32_vals, sizeof f32_vals },
    { "w.bf16", DG_DTYPE_BF16, 1, { 4 }, bf16_vals, sizeof bf16_vals },
    { "empty", DG_DTYPE_BF16, 2, { 0, 5 }, NULL, 0 },
    { "scalar", DG_DTYPE_F32, 0, { 0 }, &scalar, sizeof scalar },
    { "w.f16", DG_DTYPE_F16, 2, { 2, 2 }, f16_vals, sizeof f16_vals },
    { "layer.weight", DG_DTYPE_Q8_0, 2, { 2, 64 }, q8, sizeof q8 },
  };
  g_autoptr (DgGgufWriter) w = dg_gguf_writer_new ();
  dg_gguf_writer_set_string (w, "general.architecture", "deepgen");
  dg_gguf_writer_set_u32 (w, "general.alignment", 32);
  dg_gguf_writer_set_string (w, DG_GGUF_KEY_WEIGHTS, DG_GGUF_WEIGHTS_Q8_0);
  for (guint i = 0; i < G_N_ELEMENTS (specs); i++)
    g_assert_true (dg_gguf_writer_add_tensor (w, specs[i].name, specs[i].dtype, specs[i].ndim, specs[i].shape, NULL));
  g_assert_cmpuint (dg_gguf_writer_n_tensors (w), ==, G_N_ELEMENTS (specs));
  g_autoptr (GBytes) header = dg_gguf_writer_header (w);
  g_assert_cmpuint (g_bytes_get_size (header) % 32, ==, 0);
  GByteArray *b = g_byte_array_new ();
  g_byte_array_append (b, g_bytes_get_data (header, NULL), (guint) g_bytes_get_size (header));
  const gsize base = b->len;
  for (guint i = 0; i < G_N_ELEMENTS (specs); i++) {
    g_assert_cmpuint (dg_gguf_writer_tensor_offset (w, i) % 32, ==, 0);
    g_assert_cmpuint (dg_gguf_writer_tensor_nbytes (w, i), ==, specs[i].nbytes);
    while (b->len < base + dg_gguf_writer_tensor_offset (w, i)) g_byte_array_append (b, (const guint8 *) "", 1);
    if (specs[i].nbytes)
      g_byte_array_append (b, specs[i].data, (guint) specs[i].nbytes);
  }
  g_assert_cmpuint (b->len, ==, base + dg_gguf_writer_data_bytes (w));
  return g_byte_array_free_to_bytes (b);
}

static void
check_valid (const DgSafetensors *st, const guint8 *base, const char *file)
{
  g_assert_cmpuint (dg_safetensors_n_tensors (st), ==, 6);
  g_assert_cmpstr (dg_safetensors_metadata (st, "general.architecture"), ==, "deepgen");
  g_assert_cmpstr (dg_safetensors_metadata (st, DG_GGUF_KEY_WEIGHTS), ==, "q8_0");
  g_assert_null (dg_safetensors_metadata (st, "general.alignment")); /* not a string */

  const DgTensorInfo *t = dg_safetensors_find (st, "w.f32");
  g_assert_cmpint (t->dtype, ==, DG_DTYPE_F32);
  g_assert_cmpuint (t->ndim, ==, 2);
  g_assert_cmpint (t->shape[0], ==, 2); /* PyTorch order: ggml's {3, 2} reversed */
  g_assert_cmpint (t->shape[1], ==, 3);
  g_assert_cmpstr (t->file, ==, file);
  if (base) /* the data section and every offset are aligned */
    g_assert_cmpuint (((const guint8 *) t->data - base) % 32, ==, 0);
  float f[128];
  g_assert_true (dg_tensor_to_f32 (t, f, NULL));
  g_assert_cmpmem (f, sizeof f32_vals, f32_vals, sizeof f32_vals);

  t = dg_safetensors_find (st, "scalar");
  g_assert_cmpuint (t->ndim, ==, 0);
  g_assert_cmpint (t->n_elements, ==, 1);
  t = dg_safetensors_find (st, "empty");
  g_assert_cmpint (t->n_elements, ==, 0);
  g_assert_cmpint (t->shape[0], ==, 0);
  g_assert_cmpint (t->shape[1], ==, 5);

  t = dg_safetensors_find (st, "w.f16");
  g_assert_true (dg_tensor_to_f32 (t, f, NULL));
  g_assert_cmpfloat (f[0], ==, 1.0f);
  g_assert_cmpfloat (f[3], ==, -INFINITY);

  t = dg_safetensors_find (st, "layer.weight");
  g_assert_cmpint (t->dtype, ==, DG_DTYPE_Q8_0);
  g_assert_cmpuint (t->ndim, ==, 2);
  g_assert_cmpint (t->shape[0], ==, 2);
  g_assert_cmpint (t->shape[1], ==, 64);
  g_assert_cmpint (t->n_elements, ==, 128);
  g_assert_cmpuint (t->nbytes, ==, 4 * 34);
  guint8 q8[4 * 34];
  float expect[128];
  q8_blocks (q8, expect);
  g_assert_cmpmem (t->data, t->nbytes, q8, sizeof q8);
  g_assert_true (dg_tensor_to_f32 (t, f, NULL));
  for (int i = 0; i < 128; i++) g_assert_cmpfloat (f[i], ==, expect[i]);
  guint16 h[128];
  g_assert_true (dg_tensor_to_bf16 (t, h, NULL));
  for (int i = 0; i < 128; i++) g_assert_cmpuint (h[i], ==, dg_f32_to_bf16 (expect[i]));
  /* a Q8_0 tensor is not a plain float type for the expect checks */
  g_autoptr (GError) error = NULL;
  g_assert_null (dg_safetensors_expect_shape (st, "layer.weight", DG_DTYPES_FLOAT, &error, 2, 64));
  g_assert_error (error, DG_ERROR, DG_ERROR_SHAPE);
  g_assert_nonnull (strstr (error->message, "Q8_0"));
}

static void
test_valid_memory (void)
{
  g_autoptr (GBytes) img = write_valid ();
  gsize len;
  const guint8 *data = g_bytes_get_data (img, &len);
  g_autoptr (GError) error = NULL;
  g_autoptr (DgSafetensors) st = dg_gguf_open_data (data, len, "mem.gguf", &error);
  g_assert_no_error (error);
  check_valid (st, data, "mem.gguf");
  /* storage order is by offset */
  const guint8 *prev = NULL;
  for (guint i = 0; i < dg_safetensors_n_tensors (st); i++) {
    const DgTensorInfo *t = dg_safetensors_tensor (st, i);
    g_assert_true (prev == NULL || (const guint8 *) t->data >= prev);
    prev = t->data;
  }
}

static void
test_open_folder (void)
{
  g_autofree char *dir = g_build_filename (tmp_root, "folder", NULL);
  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  g_autoptr (GBytes) img = write_valid ();
  g_autofree char *path = st_write_file (dir, "model.gguf", img);
  g_autoptr (GError) error = NULL;
  g_autoptr (DgSafetensors) st = dg_safetensors_open (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dg_safetensors_display_name (st), ==, "folder/model.gguf");
  check_valid (st, NULL, "folder/model.gguf");
  /* the file itself */
  g_autoptr (DgSafetensors) st2 = dg_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dg_safetensors_n_tensors (st2), ==, 6);

  /* a safetensors file beside it wins: model.gguf is only for converted folders */
  g_autoptr (StWriter) w = st_writer_new ();
  st_writer_add (w, "other", "F32", 1, DG_SHAPE (1), f32_vals, 4);
  g_autoptr (GBytes) st_img = st_writer_finish (g_steal_pointer (&w));
  g_autofree char *sp = st_write_file (dir, "model.safetensors", st_img);
  g_clear_error (&error);
  g_autoptr (DgSafetensors) st3 = dg_safetensors_open (dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (dg_safetensors_find (st3, "other"));
}

/* Every prefix of a valid file is refused, with the file named. */
static void
test_truncated_everywhere (void)
{
  g_autoptr (GBytes) img = write_valid ();
  gsize len;
  const guint8 *data = g_bytes_get_data (img, &len);
  for (gsize n = 0; n < len; n++) {
    guint8 *copy = g_memdup2 (data, MAX (n, 1)); /* exactly n bytes for ASan */
    g_autoptr (GError) error = NULL;
    g_autoptr (DgSafetensors) st = dg_gguf_open_data (copy, n, "cut.gguf", &error);
    g_assert_null (st);
    g_assert_nonnull (error);
    g_assert_true (error->domain == DG_ERROR);
    g_assert_nonnull (strstr (error->message, "cut.gguf"));
    g_free (copy);
  }
}

/* Every metadata value type, arrays included, is read past correctly. */
static void
test_all_value_types (void)
{
  g_autoptr (GByteArray) kv = g_byte_array_new ();
  guint n = 0;
  static const struct {
    guint32 type;
    gsize size;
  } scalars[] = {
    { 0, 1 }, { 1, 1 }, { 2, 2 }, { 3, 2 }, { 4, 4 }, { 5, 4 }, { 6, 4 }, { 7, 1 }, { 10, 8 }, { 11, 8 }, { 12, 8 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (scalars); i++, n++) {
    g_autofree char *key = g_strdup_printf ("k.scalar%u", i);
    put_str (kv, key);
    put_u32 (kv, scalars[i].type);
    guint8 one[8] = { 1 };
    g_byte_array_append (kv, one, (guint) scalars[i].size);
  }
  put_str (kv, "k.string"), put_u32 (kv, 8), put_str (kv, "héllo"), n++;
  put_str (kv, "k.empty"), put_u32 (kv, 8), put_str (kv, ""), n++;
  put_str (kv, "k.u32s"), put_u32 (kv, 9), put_u32 (kv, 4), put_u64 (kv, 3);
  put_u32 (kv, 1), put_u32 (kv, 2), put_u32 (kv, 3), n++;
  put_str (kv, "k.strings"), put_u32 (kv, 9), put_u32 (kv, 8), put_u64 (kv, 2);
  put_str (kv, "a"), put_str (kv, "bc"), n++;
  put_str (kv, "k.bools"), put_u32 (kv, 9), put_u32 (kv, 7), put_u64 (kv, 2);
  g_byte_array_append (kv, (const guint8 *) "\1\0", 2), n++;
  put_str (kv, "k.none"), put_u32 (kv, 9), put_u32 (kv, 12), put_u64 (kv, 0), n++;
  put_kv_u32 (kv, "general.alignment", 4, 64), n++;
  g_autoptr (GByteArray) infos = g_byte_array_new ();
  put_info (infos, "t", 1, (const guint64[]) { 4 }, 0, 0);
  /* alignment 64: pad the header to 64 by hand */
  GByteArray *b = g_byte_array_new ();
  g_byte_array_append (b, (const guint8 *) "GGUF", 4);
  put_u32 (b, 3), put_u64 (b, 1), put_u64 (b, n);
  g_byte_array_append (b, kv->data, kv->len);
  g_byte_array_append (b, infos->data, infos->len);
  while (b->len % 64) g_byte_array_append (b, (const guint8 *) "", 1);
  const guint data_start = b->len;
  g_byte_array_append (b, (const guint8 *) f32_vals, 16);
  g_autoptr (GBytes) img = g_byte_array_free_to_bytes (b);
  gsize len;
  const guint8 *data = g_bytes_get_data (img, &len);
  g_autoptr (GError) error = NULL;
  g_autoptr (DgSafetensors) st = dg_gguf_open_data (data, len, "types.gguf", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dg_safetensors_metadata (st, "k.string"), ==, "héllo");
  g_assert_cmpstr (dg_safetensors_metadata (st, "k.empty"), ==, "");
  const DgTensorInfo *t = dg_safetensors_find (st, "t");
  g_assert_true ((const guint8 *) t->data == data + data_start);
  g_assert_cmpmem (t->data, 16, f32_vals, 16);
  g_autoptr (DgGguf) g = dg_gguf_parse (data, len, "types.gguf", NULL);
  g_assert_cmpuint (dg_gguf_alignment (g), ==, 64);
}

/* ---- broken files --------------------------------------------------------------------------- */

typedef struct {
  const char *name;
  int code;
  const char *needle; /* in the message, besides the file name; NULL: none */
  GBytes *(*build) (void);
} Bad;

static GBytes *
one_tensor (guint n_dims, const guint64 *ne, guint32 type, guint64 offset, gsize data_len)
{
  g_autoptr (GByteArray) infos = g_byte_array_new ();
  put_info (infos, "t", n_dims, ne, type, offset);
  return image (3, 1, 0, NULL, infos, data_len);
}

static GBytes *
b_magic (void)
{
  GBytes *ok = one_tensor (1, (const guint64[]) { 4 }, 0, 0, 16);
  gsize n;
  guint8 *d = g_memdup2 (g_bytes_get_data (ok, &n), g_bytes_get_size (ok));
  d[0] = 'g';
  g_bytes_unref (ok);
  return g_bytes_new_take (d, n);
}
static GBytes *
b_version1 (void)
{
  return image (1, 0, 0, NULL, NULL, 0);
}
static GBytes *
b_version4 (void)
{
  return image (4, 0, 0, NULL, NULL, 0);
}
static GBytes *
b_big_endian (void)
{
  return image (0x03000000u, 0, 0, NULL, NULL, 0);
}
static GBytes *
b_huge_tensors (void)
{
  return image (3, G_MAXUINT64, 0, NULL, NULL, 64);
}
static GBytes *
b_many_tensors (void)
{
  return image (3, 100, 0, NULL, NULL, 64);
}
static GBytes *
b_huge_kv (void)
{
  return image (3, 0, G_MAXUINT64 / 2, NULL, NULL, 64);
}
static GBytes *
b_huge_string (void)
{
  g_autoptr (GByteArray) kv = g_byte_array_new ();
  put_str (kv, "k"), put_u32 (kv, 8), put_u64 (kv, G_MAXUINT64 - 3);
  return image (3, 0, 1, kv, NULL, 0);
}
static GBytes *
b_huge_key (void)
{
  g_autoptr (GByteArray) kv = g_byte_array_new ();
  put_u64 (kv, G_MAXUINT64);
  return image (3, 0, 1, kv, NULL, 64);
}
static GBytes *
b_huge_array (void)
{
  g_autoptr (GByteArray) kv = g_byte_array_new ();
  put_str (kv, "k"), put_u32 (kv, 9), put_u32 (kv, 10), put_u64 (kv, G_MAXUINT64 / 4);
  return image (3, 0, 1, kv, NULL, 64);
}
static GBytes *
b_huge_string_array (void)
{
  g_autoptr (GByteArray) kv = g_byte_array_new ();
  put_str (kv, "k"), put_u32 (kv, 9), put_u32 (kv, 8), put_u64 (kv, 1u << 30);
  return image (3, 0, 1, kv, NULL, 64);
}
static GBytes *
b_nested_array (void)
{
  g_autoptr (GByteArray) kv = g_byte_array_new ();
  put_str (kv, "k"), put_u32 (kv, 9), put_u32 (kv, 9), put_u64 (kv, 1);
  put_u32 (kv, 4), put_u64 (kv, 1), put_u32 (kv, 5);
  return image (3, 0, 1, kv, NULL, 0);
}
static GBytes *
b_kv_type (void)
{
  g_autoptr (GByteArray) kv = g_byte_array_new ();
  put_kv_u32 (kv, "k", 13, 0);
  return image (3, 0, 1, kv, NULL, 0);
}
static GBytes *
b_bad_bool (void)
{
  g_autoptr (GByteArray) kv = g_byte_array_new ();
  put_str (kv, "k"), put_u32 (kv, 7);
  g_byte_array_append (kv, (const guint8 *) "\2", 1);
  return image (3, 0, 1, kv, NULL, 0);
}
static GBytes *
b_dup_key (void)
{
  g_autoptr (GByteArray) kv = g_byte_array_new ();
  put_kv_u32 (kv, "k", 4, 1);
  put_kv_u32 (kv, "k", 4, 2);
  return image (3, 0, 2, kv, NULL, 0);
}
static GBytes *
b_empty_key (void)
{
  g_autoptr (GByteArray) kv = g_byte_array_new ();
  put_kv_u32 (kv, "", 4, 1);
  return image (3, 0, 1, kv, NULL, 0);
}
static GBytes *
b_bad_utf8 (void)
{
  g_autoptr (GByteArray) kv = g_byte_array_new ();
  put_str (kv, "k"), put_u32 (kv, 8), put_str (kv, "\xff\xfe");
  return image (3, 0, 1, kv, NULL, 0);
}
static GBytes *
b_align_zero (void)
{
  g_autoptr (GByteArray) kv = g_byte_array_new ();
  put_kv_u32 (kv, "general.alignment", 4, 0);
  return image (3, 0, 1, kv, NULL, 0);
}
static GBytes *
b_align_three (void)
{
  g_autoptr (GByteArray) kv = g_byte_array_new ();
  put_kv_u32 (kv, "general.alignment", 4, 3);
  return image (3, 0, 1, kv, NULL, 0);
}
static GBytes *
b_align_type (void)
{
  g_autoptr (GByteArray) kv = g_byte_array_new ();
  put_kv_u32 (kv, "general.alignment", 5, 32);
  return image (3, 0, 1, kv, NULL, 0);
}
static GBytes *
b_too_many_dims (void)
{
  static const guint64 ne[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
  return one_tensor (9, ne, 0, 0, 4);
}
static GBytes *
b_dims_overflow (void)
{
  return one_tensor (2, (const guint64[]) { 1ull << 40, 1ull << 40 }, 0, 0, 64);
}
static GBytes *
b_dims_overflow_empty (void)
{
  return one_tensor (3, (const guint64[]) { 0, 1ull << 40, 1ull << 40 }, 0, 0, 64);
}
static GBytes *
b_dim_negative (void)
{
  return one_tensor (1, (const guint64[]) { G_MAXUINT64 }, 0, 0, 64);
}
static GBytes *
b_bytes_overflow (void)
{
  return one_tensor (1, (const guint64[]) { 1ull << 62 }, 0, 0, 64);
}
static GBytes *
b_unknown_type (void)
{
  return one_tensor (1, (const guint64[]) { 4 }, 99, 0, 64);
}
static GBytes *
b_q4_type (void)
{
  return one_tensor (1, (const guint64[]) { 32 }, 2, 0, 64);
}
static GBytes *
b_q8_partial_block (void)
{
  return one_tensor (2, (const guint64[]) { 33, 2 }, 8, 0, 256);
}
static GBytes *
b_q8_scalar (void)
{
  return one_tensor (0, NULL, 8, 0, 64);
}
static GBytes *
b_misaligned (void)
{
  return one_tensor (1, (const guint64[]) { 4 }, 0, 4, 64);
}
static GBytes *
b_beyond_end (void)
{
  return one_tensor (1, (const guint64[]) { 4 }, 0, 32, 40);
}
static GBytes *
b_offset_huge (void)
{
  return one_tensor (1, (const guint64[]) { 4 }, 0, G_MAXUINT64 - 31, 64);
}
static GBytes *
b_q8_beyond_end (void)
{
  return one_tensor (2, (const guint64[]) { 32, 2 }, 8, 0, 67);
}
static GBytes *
b_overlap (void)
{
  g_autoptr (GByteArray) infos = g_byte_array_new ();
  put_info (infos, "a", 1, (const guint64[]) { 16 }, 0, 0);
  put_info (infos, "b", 1, (const guint64[]) { 4 }, 0, 32);
  return image (3, 2, 0, NULL, infos, 64);
}
static GBytes *
b_duplicate (void)
{
  g_autoptr (GByteArray) infos = g_byte_array_new ();
  put_info (infos, "a", 1, (const guint64[]) { 4 }, 0, 0);
  put_info (infos, "a", 1, (const guint64[]) { 4 }, 0, 32);
  return image (3, 2, 0, NULL, infos, 64);
}
static GBytes *
b_empty_name (void)
{
  g_autoptr (GByteArray) infos = g_byte_array_new ();
  put_info (infos, "", 1, (const guint64[]) { 4 }, 0, 0);
  return image (3, 1, 0, NULL, infos, 64);
}
static GBytes *
b_nul_name (void)
{
  g_autoptr (GByteArray) infos = g_byte_array_new ();
  put_u64 (infos, 3);
  g_byte_array_append (infos, (const guint8 *) "a\0b", 3);
  put_u32 (infos, 1), put_u64 (infos, 4), put_u32 (infos, 0), put_u64 (infos, 0);
  return image (3, 1, 0, NULL, infos, 64);
}
static GBytes *
b_no_padding (void)
{
  /* the tensor infos end the file: no room for the data section */
  GByteArray *b = g_byte_array_new ();
  g_byte_array_append (b, (const guint8 *) "GGUF", 4);
  put_u32 (b, 3), put_u64 (b, 1), put_u64 (b, 0);
  put_info (b, "abc", 1, (const guint64[]) { 0 }, 0, 0);
  return g_byte_array_free_to_bytes (b);
}

static const Bad bad_cases[] = {
  { "magic", DG_ERROR_FORMAT, "GGUF", b_magic },
  { "version-1", DG_ERROR_UNSUPPORTED, "version 1", b_version1 },
  { "version-4", DG_ERROR_UNSUPPORTED, "version 4", b_version4 },
  { "big-endian", DG_ERROR_UNSUPPORTED, "big-endian", b_big_endian },
  { "huge-tensor-count", DG_ERROR_FORMAT, NULL, b_huge_tensors },
  { "tensor-count-beyond-file", DG_ERROR_FORMAT, "truncated", b_many_tensors },
  { "huge-kv-count", DG_ERROR_FORMAT, "truncated", b_huge_kv },
  { "huge-string", DG_ERROR_FORMAT, "truncated", b_huge_string },
  { "huge-key", DG_ERROR_FORMAT, "truncated", b_huge_key },
  { "huge-array", DG_ERROR_FORMAT, "truncated", b_huge_array },
  { "huge-string-array", DG_ERROR_FORMAT, "truncated", b_huge_string_array },
  { "nested-array", DG_ERROR_UNSUPPORTED, "array of arrays", b_nested_array },
  { "unknown-value-type", DG_ERROR_FORMAT, "'k'", b_kv_type },
  { "bad-bool", DG_ERROR_FORMAT, "boolean", b_bad_bool },
  { "duplicate-key", DG_ERROR_FORMAT, "twice", b_dup_key },
  { "empty-key", DG_ERROR_FORMAT, "key", b_empty_key },
  { "non-utf8-string", DG_ERROR_FORMAT, "UTF-8", b_bad_utf8 },
  { "alignment-zero", DG_ERROR_FORMAT, "power of two", b_align_zero },
  { "alignment-three", DG_ERROR_FORMAT, "power of two", b_align_three },
  { "alignment-type", DG_ERROR_FORMAT, "general.alignment", b_align_type },
  { "too-many-dims", DG_ERROR_UNSUPPORTED, "9 dimensions", b_too_many_dims },
  { "dims-overflow", DG_ERROR_FORMAT, "more bytes", b_dims_overflow },
  { "dims-overflow-empty", DG_ERROR_FORMAT, "more bytes", b_dims_overflow_empty },
  { "dim-negative", DG_ERROR_FORMAT, "more bytes", b_dim_negative },
  { "bytes-overflow", DG_ERROR_FORMAT, "more bytes", b_bytes_overflow },
  { "unknown-type", DG_ERROR_UNSUPPORTED, "unknown type 99", b_unknown_type },
  { "q4_0", DG_ERROR_UNSUPPORTED, "Q4_0", b_q4_type },
  { "q8-partial-block", DG_ERROR_FORMAT, "blocks of 32", b_q8_partial_block },
  { "q8-scalar", DG_ERROR_FORMAT, "blocks of 32", b_q8_scalar },
  { "misaligned-offset", DG_ERROR_FORMAT, "alignment", b_misaligned },
  { "beyond-end", DG_ERROR_FORMAT, "beyond the end", b_beyond_end },
  { "offset-huge", DG_ERROR_FORMAT, "beyond the end", b_offset_huge },
  { "q8-beyond-end", DG_ERROR_FORMAT, "beyond the end", b_q8_beyond_end },
  { "overlap", DG_ERROR_FORMAT, "overlap", b_overlap },
  { "duplicate-name", DG_ERROR_FORMAT, "twice", b_duplicate },
  { "empty-name", DG_ERROR_FORMAT, "name", b_empty_name },
  { "nul-in-name", DG_ERROR_FORMAT, "name", b_nul_name },
  { "no-data-section", DG_ERROR_FORMAT, "truncated", b_no_padding },
};

static void
test_bad (gconstpointer data)
{
  const Bad *c = data;
  g_autoptr (GBytes) img = c->build ();
  gsize len;
  guint8 *copy = g_memdup2 (g_bytes_get_data (img, &len), MAX (g_bytes_get_size (img), 1));
  g_autoptr (GError) error = NULL;
  g_autoptr (DgSafetensors) st = dg_gguf_open_data (copy, len, "bad.gguf", &error);
  g_assert_null (st);
  g_assert_error (error, DG_ERROR, c->code);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "bad.gguf"));
  if (c->needle)
    g_assert_nonnull (strstr (error->message, c->needle));
  /* and the same through a file */
  g_autofree char *dir = g_build_filename (tmp_root, c->name, NULL);
  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  g_autofree char *path = st_write_file (dir, "model.gguf", img);
  g_autoptr (GError) error2 = NULL;
  g_autoptr (DgSafetensors) st2 = dg_safetensors_open (dir, &error2);
  g_assert_null (st2);
  g_assert_error (error2, DG_ERROR, c->code);
  g_free (copy);
}

/* The writer refuses what GGUF cannot hold. */
static void
test_writer_refuses (void)
{
  g_autoptr (DgGgufWriter) w = dg_gguf_writer_new ();
  g_autoptr (GError) error = NULL;
  g_assert_false (dg_gguf_writer_add_tensor (w, "b", DG_DTYPE_BOOL, 1, DG_SHAPE (3), &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  g_assert_false (dg_gguf_writer_add_tensor (w, "q", DG_DTYPE_Q8_0, 2, DG_SHAPE (4, 48), &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  g_assert_true (dg_gguf_writer_add_tensor (w, "q", DG_DTYPE_Q8_0, 2, DG_SHAPE (4, 64), &error));
  g_assert_cmpuint (dg_gguf_writer_tensor_nbytes (w, 0), ==, 8 * 34);
  g_assert_false (dg_gguf_writer_add_tensor (w, "q", DG_DTYPE_F32, 1, DG_SHAPE (1), &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmp_root = st_tmpdir ();
  g_test_add_func ("/gguf/valid-memory", test_valid_memory);
  g_test_add_func ("/gguf/open-folder", test_open_folder);
  g_test_add_func ("/gguf/truncated-everywhere", test_truncated_everywhere);
  g_test_add_func ("/gguf/all-value-types", test_all_value_types);
  g_test_add_func ("/gguf/writer-refuses", test_writer_refuses);
  for (guint i = 0; i < G_N_ELEMENTS (bad_cases); i++) {
    g_autofree char *path = g_strdup_printf ("/gguf/bad/%s", bad_cases[i].name);
    g_test_add_data_func (path, &bad_cases[i], test_bad);
  }
  int rc = g_test_run ();
  st_rmtree (tmp_root);
  g_free (tmp_root);
  return rc;
}
