#include "gguf.h"

#include <string.h>

#include "dg_error.h"
#include "dg_i18n.h"

/* Tensors are used in place from the mapping, and the format (version 3 as written by ggml on
 * the machines DeepGen runs on) is little-endian. */
G_STATIC_ASSERT (G_BYTE_ORDER == G_LITTLE_ENDIAN);

#define GGUF_MAGIC "GGUF"
/* Names longer than this are not tensor names (ggml itself allows 63 bytes). */
#define MAX_NAME_BYTES 4096
/* A key names a setting ("general.alignment"); longer is garbage. */
#define MAX_KEY_BYTES 65535
/* The VLM, the largest component, has about 730 tensors; a count far beyond that is garbage
 * and would only make us allocate for it. */
#define MAX_TENSORS (1u << 20)

/* Metadata value types (gguf.md). */
enum {
  V_UINT8,
  V_INT8,
  V_UINT16,
  V_INT16,
  V_UINT32,
  V_INT32,
  V_FLOAT32,
  V_BOOL,
  V_STRING,
  V_ARRAY,
  V_UINT64,
  V_INT64,
  V_FLOAT64,
  V_COUNT
};

/* ggml tensor types this reader maps (ggml.h's numbering). */
static const struct {
  guint32 ggml;
  DgDType dtype;
} type_map[] = {
  { 0, DG_DTYPE_F32 },  { 1, DG_DTYPE_F16 },  { 8, DG_DTYPE_Q8_0 }, { 24, DG_DTYPE_I8 },   { 25, DG_DTYPE_I16 },
  { 26, DG_DTYPE_I32 }, { 27, DG_DTYPE_I64 }, { 28, DG_DTYPE_F64 }, { 30, DG_DTYPE_BF16 },
};

/* Names of the other ggml types, for the refusal message. */
static const char *
ggml_type_name (guint32 t)
{
  static const char *const names[] = {
    [2] = "Q4_0",    [3] = "Q4_1",     [6] = "Q5_0",   [7] = "Q5_1",    [9] = "Q8_1",   [10] = "Q2_K",
    [11] = "Q3_K",   [12] = "Q4_K",    [13] = "Q5_K",  [14] = "Q6_K",   [15] = "Q8_K",  [16] = "IQ2_XXS",
    [17] = "IQ2_XS", [18] = "IQ3_XXS", [19] = "IQ1_S", [20] = "IQ4_NL", [21] = "IQ3_S", [22] = "IQ2_S",
    [23] = "IQ4_XS", [29] = "IQ1_M",   [34] = "TQ1_0", [35] = "TQ2_0",  [39] = "MXFP4",
  };
  return t < G_N_ELEMENTS (names) && names[t] ? names[t] : NULL;
}

static gboolean
dtype_from_ggml (guint32 t, DgDType *out)
{
  for (guint i = 0; i < G_N_ELEMENTS (type_map); i++)
    if (type_map[i].ggml == t) {
      *out = type_map[i].dtype;
      return TRUE;
    }
  return FALSE;
}

static gboolean
ggml_from_dtype (DgDType d, guint32 *out)
{
  for (guint i = 0; i < G_N_ELEMENTS (type_map); i++)
    if (type_map[i].dtype == d) {
      *out = type_map[i].ggml;
      return TRUE;
    }
  return FALSE;
}

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct {
  DgTensorInfo info;
  guint64 begin; /* from the start of the image */
} GgufTensor;

struct _DgGguf {
  GArray *tensors;     /* GgufTensor, info order */
  GPtrArray *strings;  /* key, value, key, value, ... (owned) */
  GStringChunk *chunk; /* tensor names */
  guint32 alignment;
};

void
dg_gguf_free (DgGguf *g)
{
  if (g == NULL)
    return;
  g_array_unref (g->tensors);
  g_ptr_array_unref (g->strings);
  g_string_chunk_free (g->chunk);
  g_free (g);
}

/* A bounded read position. Every read checks the bytes left first. */
typedef struct {
  const guint8 *base;
  gsize pos, len;
  const char *display;
  const char *section; /* for "truncated in ..." */
} Cursor;

static gboolean
truncated (Cursor *c, GError **error)
{
  g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
               _ ("%s is truncated (it ends inside %s at byte %zu); the file is damaged or the "
                  "conversion did not finish — convert the model again"),
               c->display, c->section, c->pos);
  return FALSE;
}

static gboolean
need (Cursor *c, guint64 n, GError **error)
{
  return n <= c->len - c->pos ? TRUE : truncated (c, error);
}

static gboolean
rd_u32 (Cursor *c, guint32 *v, GError **error)
{
  if (!need (c, 4, error))
    return FALSE;
  const guint8 *p = c->base + c->pos;
  *v = (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
  c->pos += 4;
  return TRUE;
}

static gboolean
rd_u64 (Cursor *c, guint64 *v, GError **error)
{
  guint32 lo, hi;
  if (!need (c, 8, error) || !rd_u32 (c, &lo, error) || !rd_u32 (c, &hi, error))
    return FALSE;
  *v = (guint64) hi << 32 | lo;
  return TRUE;
}

/* A gguf_string: u64 length, then that many bytes (no terminator). */
static gboolean
rd_string (Cursor *c, const char **s, gsize *len, GError **error)
{
  guint64 n;
  if (!rd_u64 (c, &n, error) || !need (c, n, error))
    return FALSE;
  *s = (const char *) c->base + c->pos;
  *len = (gsize) n;
  c->pos += (gsize) n;
  return TRUE;
}

/* Text that becomes a C string must be UTF-8 without NUL bytes, or two different names could
 * read the same. */
static gboolean
text_ok (const char *s, gsize len)
{
  return memchr (s, '\0', len) == NULL && g_utf8_validate_len (s, len, NULL);
}

static gsize
value_size (guint32 type)
{
  switch (type) {
  case V_UINT8:
  case V_INT8:
  case V_BOOL: return 1;
  case V_UINT16:
  case V_INT16: return 2;
  case V_UINT32:
  case V_INT32:
  case V_FLOAT32: return 4;
  case V_UINT64:
  case V_INT64:
  case V_FLOAT64: return 8;
  default: return 0;
  }
}

static gboolean
bad_value (Cursor *c, const char *key, const char *what, GError **error)
{
  g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: metadata '%s' %s; the file is damaged"), c->display, key,
               what);
  return FALSE;
}

/* Skips (validating) one value of @type; strings are returned through @str when not NULL. */
static gboolean
skip_value (Cursor *c, const char *key, guint32 type, gboolean in_array, const char **str, gsize *str_len,
            GError **error)
{
  if (type == V_STRING) {
    const char *s;
    gsize n;
    if (!rd_string (c, &s, &n, error))
      return FALSE;
    if (str)
      *str = s, *str_len = n;
    return TRUE;
  }
  if (type == V_ARRAY) {
    guint32 et;
    guint64 count;
    if (in_array) {
      g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                   _ ("%s: metadata '%s' is an array of arrays, which DeepGen does not read"), c->display, key);
      return FALSE;
    }
    if (!rd_u32 (c, &et, error) || !rd_u64 (c, &count, error))
      return FALSE;
    if (et >= V_COUNT)
      return bad_value (c, key, _ ("is an array of an unknown value type"), error);
    if (et == V_ARRAY)
      return skip_value (c, key, et, TRUE, NULL, NULL, error);
    if (et == V_STRING) {
      /* each string is at least its 8-byte length: a count beyond that cannot be honest */
      if (count > (c->len - c->pos) / 8)
        return truncated (c, error);
      for (guint64 i = 0; i < count; i++)
        if (!skip_value (c, key, V_STRING, TRUE, NULL, NULL, error))
          return FALSE;
      return TRUE;
    }
    const gsize es = value_size (et);
    if (count > (c->len - c->pos) / es)
      return truncated (c, error);
    if (et == V_BOOL)
      for (guint64 i = 0; i < count; i++)
        if (c->base[c->pos + i] > 1)
          return bad_value (c, key, _ ("holds a boolean that is neither 0 nor 1"), error);
    c->pos += (gsize) (count * es);
    return TRUE;
  }
  const gsize es = value_size (type);
  if (es == 0)
    return bad_value (c, key, _ ("has an unknown value type"), error);
  if (!need (c, es, error))
    return FALSE;
  if (type == V_BOOL && c->base[c->pos] > 1)
    return bad_value (c, key, _ ("is a boolean that is neither 0 nor 1"), error);
  c->pos += es;
  return TRUE;
}

static gboolean
read_metadata (Cursor *c, DgGguf *g, guint64 n_kv, GError **error)
{
  g_autoptr (GHashTable) keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  c->section = _ ("the metadata");
  for (guint64 i = 0; i < n_kv; i++) {
    const char *k;
    gsize klen;
    guint32 type;
    if (!rd_string (c, &k, &klen, error))
      return FALSE;
    if (klen == 0 || klen > MAX_KEY_BYTES || !text_ok (k, klen)) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                   _ ("%s: metadata entry %" PRIu64 " has an empty, overlong or non-UTF-8 key; the file "
                      "is damaged"),
                   c->display, i);
      return FALSE;
    }
    g_autofree char *key = g_strndup (k, klen);
    if (g_hash_table_contains (keys, key)) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: metadata '%s' appears twice; the file is damaged"),
                   c->display, key);
      return FALSE;
    }
    if (!rd_u32 (c, &type, error))
      return FALSE;
    if (strcmp (key, "general.alignment") == 0) {
      guint32 a;
      if (type != V_UINT32)
        return bad_value (c, key, _ ("is not a 32-bit unsigned integer"), error);
      if (!rd_u32 (c, &a, error))
        return FALSE;
      if (a == 0 || (a & (a - 1)) != 0) {
        g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                     _ ("%s: general.alignment is %u, not a power of two; the file is damaged"), c->display, a);
        return FALSE;
      }
      g->alignment = a;
    } else {
      const char *s = NULL;
      gsize slen = 0;
      if (!skip_value (c, key, type, FALSE, &s, &slen, error))
        return FALSE;
      if (type == V_STRING) {
        if (!text_ok (s, slen))
          return bad_value (c, key, _ ("is not UTF-8 text"), error);
        g_ptr_array_add (g->strings, g_strdup (key));
        g_ptr_array_add (g->strings, g_strndup (s, slen));
      }
    }
    g_hash_table_add (keys, g_steal_pointer (&key));
  }
  return TRUE;
}

static gboolean
read_tensor_info (Cursor *c, DgGguf *g, guint64 index, GgufTensor *t, guint64 *offset, GError **error)
{
  const char *s;
  gsize len;
  guint32 n_dims, type;
  if (!rd_string (c, &s, &len, error))
    return FALSE;
  if (len == 0 || len > MAX_NAME_BYTES || !text_ok (s, len)) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: tensor %" PRIu64 " has an empty, overlong or non-UTF-8 name; the file is damaged"), c->display,
                 index);
    return FALSE;
  }
  t->info.name = g_string_chunk_insert_len (g->chunk, s, (gssize) len);
  const char *name = t->info.name;
  if (!rd_u32 (c, &n_dims, error))
    return FALSE;
  if (n_dims > DG_TENSOR_MAX_DIMS) {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 _ ("%s: tensor '%s' has %u dimensions; DeepGen reads at most %u"), c->display, name, n_dims,
                 DG_TENSOR_MAX_DIMS);
    return FALSE;
  }
  /* The product of the non-zero dims must be addressable too: an empty tensor of [0, 2^40, 2^40]
   * is no honest shape, and code multiplying the dims in either order must not overflow. */
  guint64 ne[DG_TENSOR_MAX_DIMS] = { 0 };
  guint64 count = 1;
  gboolean overflow = FALSE, empty = FALSE;
  for (guint d = 0; d < n_dims; d++) {
    if (!rd_u64 (c, &ne[d], error))
      return FALSE;
    if (ne[d] > (guint64) G_MAXINT64)
      overflow = TRUE;
    else if (ne[d] == 0)
      empty = TRUE;
    else if (!overflow && !g_uint64_checked_mul (&count, count, ne[d]))
      overflow = TRUE;
  }
  if (!rd_u32 (c, &type, error) || !rd_u64 (c, offset, error))
    return FALSE;
  t->info.ndim = n_dims;
  for (guint d = 0; d < n_dims; d++) /* ggml order → PyTorch order */
    t->info.shape[d] = (gint64) MIN (ne[n_dims - 1 - d], (guint64) G_MAXINT64);
  if (!dtype_from_ggml (type, &t->info.dtype)) {
    const char *tn = ggml_type_name (type);
    if (tn)
      g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                   _ ("%s: tensor '%s' is stored as %s, which DeepGen does not read (it reads F32, F16, BF16 and "
                      "Q8_0); convert the model with `deepgen convert`"),
                   c->display, name, tn);
    else
      g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                   _ ("%s: tensor '%s' has the unknown type %u (DeepGen reads F32, F16, BF16 and Q8_0)"), c->display,
                   name, type);
    return FALSE;
  }
  const gsize block = dg_dtype_block (t->info.dtype), bs = dg_dtype_size (t->info.dtype);
  guint64 limit = MIN ((guint64) G_MAXINT64, (guint64) G_MAXSIZE) / bs * block;
  if (overflow || count > limit) {
    g_autofree char *sh = dg_shape_to_string (n_dims, t->info.shape);
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: tensor '%s' has shape %s, more bytes than any file can hold; the file is damaged"), c->display,
                 name, sh);
    return FALSE;
  }
  if (block > 1 && (n_dims == 0 || ne[0] % block != 0)) {
    g_autofree char *sh = dg_shape_to_string (n_dims, t->info.shape);
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: tensor '%s' is %s with shape %s, whose rows are not whole blocks of %zu"
                    "; the file is damaged"),
                 c->display, name, dg_dtype_name (t->info.dtype), sh, block);
    return FALSE;
  }
  if (empty)
    count = 0;
  t->info.n_elements = (gint64) count;
  t->info.nbytes = (gsize) (count / block * bs);
  t->info.file = c->display;
  return TRUE;
}

static int
cmp_begin (gconstpointer a, gconstpointer b)
{
  const GgufTensor *x = *(const GgufTensor *const *) a, *y = *(const GgufTensor *const *) b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  return (x->info.nbytes > 0) - (y->info.nbytes > 0); /* empty tensors first at a shared offset */
}

/* Non-empty tensors must not share bytes: an overlap means a damaged or crafted file, and a
 * loader writing through one would see the other change. */
static gboolean
check_overlaps (DgGguf *g, const char *display, GError **error)
{
  g_autoptr (GPtrArray) order = g_ptr_array_sized_new (g->tensors->len);
  for (guint i = 0; i < g->tensors->len; i++) g_ptr_array_add (order, &g_array_index (g->tensors, GgufTensor, i));
  g_ptr_array_sort (order, cmp_begin);
  const GgufTensor *prev = NULL;
  for (guint i = 0; i < order->len; i++) {
    const GgufTensor *t = order->pdata[i];
    if (t->info.nbytes == 0)
      continue;
    if (prev && t->begin < prev->begin + prev->info.nbytes) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                   _ ("%s: the data of tensors '%s' and '%s' overlap; the file is damaged"), display, prev->info.name,
                   t->info.name);
      return FALSE;
    }
    prev = t;
  }
  return TRUE;
}

DgGguf *
dg_gguf_parse (const guint8 *data, gsize len, const char *display, GError **error)
{
  g_return_val_if_fail (data != NULL || len == 0, NULL);
  display = display ? display : "<memory>";
  Cursor c = { data, 0, len, display, _ ("the header") };
  if (len < 4 || memcmp (data, GGUF_MAGIC, 4) != 0) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s is not a GGUF file (it does not start with \"GGUF\"); the file is damaged or something "
                    "else was saved under that name"),
                 display);
    return NULL;
  }
  c.pos = 4;
  guint32 version;
  guint64 n_tensors, n_kv;
  if (!rd_u32 (&c, &version, error))
    return NULL;
  if (version != 2 && version != 3) {
    /* a big-endian file shows its version byte-swapped */
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 GUINT32_SWAP_LE_BE (version) == 3
                     ? _ ("%s is a big-endian GGUF file; DeepGen reads little-endian ones")
                     : _ ("%s is GGUF version %u; DeepGen reads version 3"),
                 display, version);
    return NULL;
  }
  if (!rd_u64 (&c, &n_tensors, error) || !rd_u64 (&c, &n_kv, error))
    return NULL;

  g_autoptr (DgGguf) g = g_new0 (DgGguf, 1);
  g->tensors = g_array_new (FALSE, TRUE, sizeof (GgufTensor));
  g->strings = g_ptr_array_new_with_free_func (g_free);
  g->chunk = g_string_chunk_new (4096);
  g->alignment = DG_GGUF_DEFAULT_ALIGNMENT;
  /* A key-value pair takes at least 12 bytes, a tensor info 24: counts beyond what the file can
   * hold are refused before anything is allocated for them. */
  if (n_kv > (len - c.pos) / 12) {
    c.section = _ ("the metadata");
    truncated (&c, error);
    return NULL;
  }
  if (!read_metadata (&c, g, n_kv, error))
    return NULL;
  c.section = _ ("the tensor list");
  if (n_tensors > MAX_TENSORS) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s claims %" PRIu64 " tensors (at most %u are plausible); the file is damaged"), display,
                 n_tensors, MAX_TENSORS);
    return NULL;
  }
  if (n_tensors > (len - c.pos) / 24) {
    truncated (&c, error);
    return NULL;
  }
  g_array_set_size (g->tensors, (guint) n_tensors);
  g_autofree guint64 *offsets = g_new0 (guint64, MAX (n_tensors, 1));
  g_autoptr (GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint64 i = 0; i < n_tensors; i++) {
    GgufTensor *t = &g_array_index (g->tensors, GgufTensor, i);
    if (!read_tensor_info (&c, g, i, t, &offsets[i], error))
      return NULL;
    if (!g_hash_table_add (names, (gpointer) t->info.name)) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                   _ ("%s: tensor '%s' appears twice, so it is ambiguous which is meant; the file is damaged"), display,
                   t->info.name);
      return NULL;
    }
  }

  /* The data section starts at the next multiple of the alignment. */
  const guint64 a = g->alignment;
  const guint64 data_start = ((guint64) c.pos + a - 1) / a * a;
  if (n_tensors > 0 && data_start > len) {
    c.section = _ ("the padding before the tensor data");
    truncated (&c, error);
    return NULL;
  }
  const guint64 data_len = len - MIN (data_start, (guint64) len);
  for (guint i = 0; i < g->tensors->len; i++) {
    GgufTensor *t = &g_array_index (g->tensors, GgufTensor, i);
    if (offsets[i] % a != 0) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                   _ ("%s: tensor '%s' starts at offset %" PRIu64 ", not a multiple of the alignment %u; "
                      "the file is damaged"),
                   display, t->info.name, offsets[i], g->alignment);
      return NULL;
    }
    if (offsets[i] > data_len || t->info.nbytes > data_len - offsets[i]) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                   _ ("%s: tensor '%s' (%zu bytes at offset %" PRIu64 ") lies beyond the "
                      "end of the file; the file is truncated — convert the model again"),
                   display, t->info.name, t->info.nbytes, offsets[i]);
      return NULL;
    }
    t->begin = data_start + offsets[i];
    t->info.data = data + t->begin;
  }
  if (!check_overlaps (g, display, error))
    return NULL;
  return g_steal_pointer (&g);
}

guint
dg_gguf_n_tensors (const DgGguf *g)
{
  return g->tensors->len;
}
guint32
dg_gguf_alignment (const DgGguf *g)
{
  return g->alignment;
}
guint
dg_gguf_n_strings (const DgGguf *g)
{
  return g->strings->len / 2;
}

const DgTensorInfo *
dg_gguf_tensor (const DgGguf *g, guint i)
{
  g_return_val_if_fail (i < g->tensors->len, NULL);
  return &g_array_index (g->tensors, GgufTensor, i).info;
}

guint64
dg_gguf_tensor_begin (const DgGguf *g, guint i)
{
  g_return_val_if_fail (i < g->tensors->len, 0);
  return g_array_index (g->tensors, GgufTensor, i).begin;
}

void
dg_gguf_string (const DgGguf *g, guint i, const char **key, const char **value)
{
  g_return_if_fail (i < g->strings->len / 2);
  *key = g->strings->pdata[2 * i];
  *value = g->strings->pdata[2 * i + 1];
}

/* ---- writing ------------------------------------------------------------------------------ */

typedef struct {
  char *name;
  guint32 type;
  guint ndim;
  guint64 ne[DG_TENSOR_MAX_DIMS];
  guint64 offset, nbytes;
} WTensor;

struct _DgGgufWriter {
  GByteArray *kv; /* the encoded pairs */
  guint64 n_kv;
  guint32 alignment;
  GArray *tensors; /* WTensor */
  GHashTable *names;
  guint64 data_bytes;
};

static void
wtensor_clear (gpointer p)
{
  g_free (((WTensor *) p)->name);
}

DgGgufWriter *
dg_gguf_writer_new (void)
{
  DgGgufWriter *w = g_new0 (DgGgufWriter, 1);
  w->kv = g_byte_array_new ();
  w->alignment = DG_GGUF_DEFAULT_ALIGNMENT;
  w->tensors = g_array_new (FALSE, TRUE, sizeof (WTensor));
  g_array_set_clear_func (w->tensors, wtensor_clear);
  w->names = g_hash_table_new (g_str_hash, g_str_equal);
  return w;
}

void
dg_gguf_writer_free (DgGgufWriter *w)
{
  if (w == NULL)
    return;
  g_byte_array_unref (w->kv);
  g_hash_table_unref (w->names);
  g_array_unref (w->tensors);
  g_free (w);
}

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
put_string (GByteArray *b, const char *s)
{
  gsize n = strlen (s);
  put_u64 (b, n);
  g_byte_array_append (b, (const guint8 *) s, (guint) n);
}

void
dg_gguf_writer_set_string (DgGgufWriter *w, const char *key, const char *value)
{
  put_string (w->kv, key);
  put_u32 (w->kv, V_STRING);
  put_string (w->kv, value);
  w->n_kv++;
}

void
dg_gguf_writer_set_u32 (DgGgufWriter *w, const char *key, guint32 value)
{
  if (strcmp (key, "general.alignment") == 0) {
    g_return_if_fail (value != 0 && (value & (value - 1)) == 0 && w->tensors->len == 0);
    w->alignment = value;
  }
  put_string (w->kv, key);
  put_u32 (w->kv, V_UINT32);
  put_u32 (w->kv, value);
  w->n_kv++;
}

gboolean
dg_gguf_writer_add_tensor (DgGgufWriter *w, const char *name, DgDType dtype, guint ndim, const gint64 *shape,
                           GError **error)
{
  WTensor t = { 0 };
  if (!ggml_from_dtype (dtype, &t.type)) {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED, _ ("tensor '%s' is %s, which GGUF has no type for"), name,
                 dg_dtype_name (dtype));
    return FALSE;
  }
  g_return_val_if_fail (ndim <= DG_TENSOR_MAX_DIMS, FALSE);
  if (g_hash_table_contains (w->names, name)) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("tensor '%s' is added twice"), name);
    return FALSE;
  }
  guint64 n = 1;
  for (guint d = 0; d < ndim; d++) {
    g_return_val_if_fail (shape[d] >= 0, FALSE);
    t.ne[d] = (guint64) shape[ndim - 1 - d];
    n *= t.ne[d];
  }
  const gsize block = dg_dtype_block (dtype);
  if (block > 1 && (ndim == 0 || t.ne[0] % block != 0)) {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 _ ("tensor '%s' cannot be stored as %s: its rows are not whole blocks of %zu"), name,
                 dg_dtype_name (dtype), block);
    return FALSE;
  }
  t.name = g_strdup (name);
  t.ndim = ndim;
  t.nbytes = n / block * dg_dtype_size (dtype);
  t.offset = (w->data_bytes + w->alignment - 1) / w->alignment * w->alignment;
  w->data_bytes = t.offset + t.nbytes;
  g_array_append_val (w->tensors, t);
  g_hash_table_add (w->names, g_array_index (w->tensors, WTensor, w->tensors->len - 1).name);
  return TRUE;
}

guint
dg_gguf_writer_n_tensors (const DgGgufWriter *w)
{
  return w->tensors->len;
}
guint64
dg_gguf_writer_data_bytes (const DgGgufWriter *w)
{
  return w->data_bytes;
}

guint64
dg_gguf_writer_tensor_offset (const DgGgufWriter *w, guint i)
{
  g_return_val_if_fail (i < w->tensors->len, 0);
  return g_array_index (w->tensors, WTensor, i).offset;
}

guint64
dg_gguf_writer_tensor_nbytes (const DgGgufWriter *w, guint i)
{
  g_return_val_if_fail (i < w->tensors->len, 0);
  return g_array_index (w->tensors, WTensor, i).nbytes;
}

GBytes *
dg_gguf_writer_header (const DgGgufWriter *w)
{
  GByteArray *b = g_byte_array_new ();
  g_byte_array_append (b, (const guint8 *) GGUF_MAGIC, 4);
  put_u32 (b, 3);
  put_u64 (b, w->tensors->len);
  put_u64 (b, w->n_kv);
  g_byte_array_append (b, w->kv->data, w->kv->len);
  for (guint i = 0; i < w->tensors->len; i++) {
    const WTensor *t = &g_array_index (w->tensors, WTensor, i);
    put_string (b, t->name);
    put_u32 (b, t->ndim);
    for (guint d = 0; d < t->ndim; d++) put_u64 (b, t->ne[d]);
    put_u32 (b, t->type);
    put_u64 (b, t->offset);
  }
  static const guint8 zeros[256];
  gsize pad = (w->alignment - b->len % w->alignment) % w->alignment;
  while (pad > 0) {
    gsize k = MIN (pad, sizeof zeros);
    g_byte_array_append (b, zeros, (guint) k);
    pad -= k;
  }
  return g_byte_array_free_to_bytes (b);
}

gboolean
dg_gguf_holds_q8_0 (const DgSafetensors *st)
{
  const char *w = dg_safetensors_metadata (st, DG_GGUF_KEY_WEIGHTS);
  if (w && strcmp (w, DG_GGUF_WEIGHTS_Q8_0) == 0)
    return TRUE;
  for (guint i = 0; i < dg_safetensors_n_tensors (st); i++)
    if (dg_safetensors_tensor (st, i)->dtype == DG_DTYPE_Q8_0)
      return TRUE;
  return FALSE;
}
