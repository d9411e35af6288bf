#include "safetensors.h"

#include <string.h>

#include <glib/gstdio.h>

#include "dg_error.h"
#include "dg_i18n.h"
#include "gguf.h"
#include "json_strict.h"
#include "mapped_guard.h"
#include "vfolder.h"

/* The largest real header (the 628-tensor VLM shard) is about 80 KB; 100 MB leaves room for any
 * honest file while refusing to parse a length field that is really garbage. */
#define MAX_HEADER_BYTES (100u * 1000u * 1000u)
/* root object → tensor entry → shape array; anything deeper is not a safetensors header. */
#define MAX_HEADER_DEPTH 16
#define MAX_INDEX_BYTES (64u * 1024u * 1024u)
#define MAX_INDEX_DEPTH 16

/* Tensors are used in place from the mapping, and the format is little-endian. */
G_STATIC_ASSERT (G_BYTE_ORDER == G_LITTLE_ENDIAN);

typedef struct {
  char *display;    /* "parent/name.safetensors" */
  GMappedFile *map; /* NULL for an in-memory image */
  const guint8 *base;
  gsize size;
  gboolean gguf;     /* a GGUF file (gguf.h) rather than safetensors */
  DgFileStamp stamp; /* of the file when it was mapped (path NULL for an in-memory image) */
} StFile;

/* The public info first, so that a pointer to an entry is a pointer to its info. */
typedef struct {
  DgTensorInfo info;
  guint file_index;
  guint64 begin;
} Entry;

struct _DgSafetensors {
  char *display;
  GPtrArray *files;      /* StFile* */
  GArray *entries;       /* Entry */
  GStringChunk *strings; /* tensor names, metadata */
  GHashTable *by_name;   /* name → GUINT_TO_POINTER (index + 1) into entries */
  GHashTable *metadata;  /* key → value */
  GPtrArray *owned;      /* the data of materialized generated tensors */
};

static void
st_file_free (gpointer p)
{
  StFile *f = p;
  g_free (f->display);
  dg_file_stamp_clear (&f->stamp);
  if (f->map)
    g_mapped_file_unref (f->map);
  g_free (f);
}

static DgSafetensors *
st_new (const char *display)
{
  DgSafetensors *st = g_new0 (DgSafetensors, 1);
  st->display = g_strdup (display);
  st->files = g_ptr_array_new_with_free_func (st_file_free);
  st->entries = g_array_new (FALSE, TRUE, sizeof (Entry));
  st->strings = g_string_chunk_new (4096);
  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  st->metadata = g_hash_table_new (g_str_hash, g_str_equal);
  st->owned = g_ptr_array_new_with_free_func (g_free);
  return st;
}

void
dg_safetensors_free (DgSafetensors *st)
{
  if (st == NULL)
    return;
  g_hash_table_unref (st->metadata);
  g_hash_table_unref (st->by_name);
  g_string_chunk_free (st->strings);
  g_array_unref (st->entries);
  g_ptr_array_unref (st->files);
  g_ptr_array_unref (st->owned);
  g_free (st->display);
  g_free (st);
}

/* ---- header validation ------------------------------------------------------------------- */

/* A JSON integer ≥ 0, as json-glib reports it. json-glib turns integers too large for gint64
 * into negative values, so they fail here too. */
static gboolean
json_uint (JsonNode *node, guint64 *out)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  gint64 v = json_node_get_int (node);
  if (v < 0)
    return FALSE;
  *out = (guint64) v;
  return TRUE;
}

static gboolean
parse_shape (const char *display, const char *name, JsonNode *node, DgTensorInfo *info, GError **error)
{
  if (node == NULL) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: tensor '%s' has no \"shape\" in the header"), display, name);
    return FALSE;
  }
  if (!JSON_NODE_HOLDS_ARRAY (node)) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: tensor '%s': \"shape\" is not a list of integers"), display,
                 name);
    return FALSE;
  }
  JsonArray *arr = json_node_get_array (node);
  guint ndim = json_array_get_length (arr);
  if (ndim > DG_TENSOR_MAX_DIMS) {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 _ ("%s: tensor '%s' has %u dimensions; DeepGen reads at most %u"), display, name, ndim,
                 DG_TENSOR_MAX_DIMS);
    return FALSE;
  }
  guint64 count = 1;
  gboolean overflow = FALSE;
  for (guint d = 0; d < ndim; d++) {
    guint64 v;
    if (!json_uint (json_array_get_element (arr, d), &v)) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                   _ ("%s: tensor '%s': shape entry %u is not a non-negative integer"), display, name, d);
      return FALSE;
    }
    info->shape[d] = (gint64) v;
    /* Keep multiplying after an overflow only to validate the remaining entries; a zero
       * dimension later does not make an unaddressable shape valid. */
    if (!overflow && !g_uint64_checked_mul (&count, count, v))
      overflow = TRUE;
  }
  /* Sizes must fit both the gint64 of the public struct and the gsize of this machine. */
  guint64 limit = MIN ((guint64) G_MAXINT64, (guint64) G_MAXSIZE) / dg_dtype_size (info->dtype);
  if (overflow || count > limit) {
    g_autofree char *s = dg_shape_to_string (ndim, info->shape);
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: tensor '%s' has shape %s, more bytes than any file can hold; the header is damaged"), display,
                 name, s);
    return FALSE;
  }
  info->ndim = ndim;
  info->n_elements = (gint64) count;
  info->nbytes = (gsize) (count * dg_dtype_size (info->dtype));
  return TRUE;
}

static gboolean
parse_offsets (const char *display, const char *name, JsonNode *node, guint64 data_len, DgTensorInfo *info,
               guint64 *begin_out, GError **error)
{
  guint64 begin, end;
  if (node == NULL) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: tensor '%s' has no \"data_offsets\" in the header"), display,
                 name);
    return FALSE;
  }
  if (!JSON_NODE_HOLDS_ARRAY (node) || json_array_get_length (json_node_get_array (node)) != 2 ||
      !json_uint (json_array_get_element (json_node_get_array (node), 0), &begin) ||
      !json_uint (json_array_get_element (json_node_get_array (node), 1), &end)) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: tensor '%s': \"data_offsets\" is not a pair of non-negative integers [begin, end]"), display,
                 name);
    return FALSE;
  }
  if (end < begin) {
    g_set_error (
        error, DG_ERROR, DG_ERROR_FORMAT,
        _ ("%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin; the header is damaged"),
        display, name, begin, end);
    return FALSE;
  }
  if (end > data_len) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] run past the end of the data (%" PRIu64
                    " bytes); the file is truncated — download it again"),
                 display, name, begin, end, data_len);
    return FALSE;
  }
  if (end - begin != info->nbytes) {
    g_autofree char *s = dg_shape_to_string (info->ndim, info->shape);
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: tensor '%s': data_offsets span %" PRIu64 " bytes, but %s %s needs %zu"
                    "; the header is damaged"),
                 display, name, end - begin, dg_dtype_name (info->dtype), s, info->nbytes);
    return FALSE;
  }
  *begin_out = begin;
  return TRUE;
}

static gboolean
parse_entry (const char *display, const char *name, JsonNode *node, guint64 data_len, DgTensorInfo *info,
             guint64 *begin, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: the header entry of tensor '%s' is not a JSON object"),
                 display, name);
    return FALSE;
  }
  JsonObject *obj = json_node_get_object (node);

  JsonNode *dt = json_object_get_member (obj, "dtype");
  if (dt == NULL) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: tensor '%s' has no \"dtype\" in the header"), display, name);
    return FALSE;
  }
  if (!JSON_NODE_HOLDS_VALUE (dt) || json_node_get_value_type (dt) != G_TYPE_STRING) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: tensor '%s': \"dtype\" is not a string"), display, name);
    return FALSE;
  }
  if (!dg_dtype_from_name (json_node_get_string (dt), &info->dtype)) {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 _ ("%s: tensor '%s' has dtype \"%s\", which DeepGen cannot read (it reads F32, F16, BF16, F64, "
                    "I64, I32, I16, I8, U8 and BOOL); convert the file or use the released DeepGen-1.0-diffusers "
                    "weights"),
                 display, name, json_node_get_string (dt));
    return FALSE;
  }
  return parse_shape (display, name, json_object_get_member (obj, "shape"), info, error) &&
         parse_offsets (display, name, json_object_get_member (obj, "data_offsets"), data_len, info, begin, error);
}

static gboolean
parse_metadata (DgSafetensors *st, const char *display, JsonNode *node, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node))
    goto bad;
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;
  json_object_iter_init_ordered (&iter, json_node_get_object (node));
  while (json_object_iter_next_ordered (&iter, &key, &value)) {
    if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING)
      goto bad;
    if (!g_hash_table_contains (st->metadata, key))
      g_hash_table_insert (st->metadata, g_string_chunk_insert (st->strings, key),
                           g_string_chunk_insert (st->strings, json_node_get_string (value)));
  }
  return TRUE;
bad:
  g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: \"__metadata__\" is not a map of strings to strings"),
               display);
  return FALSE;
}

static int
cmp_by_begin (gconstpointer a, gconstpointer b)
{
  const Entry *x = *(const Entry *const *) a, *y = *(const Entry *const *) b;
  return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Two tensors sharing bytes would alias each other's weights: either a corrupt header or a crafted
 * one. Empty tensors occupy nothing and are skipped. */
static gboolean
check_overlaps (DgSafetensors *st, guint first, const char *display, GError **error)
{
  g_autoptr (GPtrArray) sorted = g_ptr_array_new ();
  for (guint i = first; i < st->entries->len; i++) {
    Entry *e = &g_array_index (st->entries, Entry, i);
    if (e->info.nbytes > 0)
      g_ptr_array_add (sorted, e);
  }
  g_ptr_array_sort (sorted, cmp_by_begin);
  for (guint i = 1; i < sorted->len; i++) {
    const Entry *a = sorted->pdata[i - 1], *b = sorted->pdata[i];
    if (a->begin + a->info.nbytes > b->begin) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                   _ ("%s: tensors '%s' and '%s' overlap in the file; the header is damaged"), display, a->info.name,
                   b->info.name);
      return FALSE;
    }
  }
  return TRUE;
}

/* A GGUF file: its tensors and string metadata join the set as a safetensors file's would. The
 * names are copied, so the parsed image is not kept; the data stays in the mapping. */
static gboolean
parse_gguf (DgSafetensors *st, guint file_index, GError **error)
{
  const StFile *f = st->files->pdata[file_index];
  g_autoptr (DgGguf) g = dg_gguf_parse (f->base, f->size, f->display, error);
  if (g == NULL)
    return FALSE;
  for (guint i = 0; i < dg_gguf_n_strings (g); i++) {
    const char *key, *value;
    dg_gguf_string (g, i, &key, &value);
    if (!g_hash_table_contains (st->metadata, key))
      g_hash_table_insert (st->metadata, g_string_chunk_insert (st->strings, key),
                           g_string_chunk_insert (st->strings, value));
  }
  for (guint i = 0; i < dg_gguf_n_tensors (g); i++) {
    Entry e = { .info = *dg_gguf_tensor (g, i), .file_index = file_index, .begin = dg_gguf_tensor_begin (g, i) };
    if (g_hash_table_contains (st->by_name, e.info.name)) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: tensor '%s' appears twice"), f->display, e.info.name);
      return FALSE;
    }
    e.info.name = g_string_chunk_insert (st->strings, e.info.name);
    e.info.file = f->display;
    g_array_append_val (st->entries, e);
    g_hash_table_insert (st->by_name, (gpointer) e.info.name, GUINT_TO_POINTER (st->entries->len));
  }
  return TRUE;
}

static gboolean
parse_file (DgSafetensors *st, guint file_index, GError **error)
{
  const StFile *f = st->files->pdata[file_index];
  const char *display = f->display;
  if (f->gguf)
    return parse_gguf (st, file_index, error);

  if (f->size < 8) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s is too short for a safetensors file (%zu bytes); it is truncated or "
                    "empty — download it again"),
                 display, f->size);
    return FALSE;
  }
  guint64 header_len = 0;
  for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | f->base[i];
  if (header_len < 2) /* the shortest JSON object is "{}" */
  {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: the header length is %" PRIu64 "; this is not a safetensors file"), display, header_len);
    return FALSE;
  }
  if (header_len > MAX_HEADER_BYTES) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: the header length is %" PRIu64 " bytes, more than any real weight file has "
                    "(at most %u); this is not a safetensors file, or it is damaged"),
                 display, header_len, MAX_HEADER_BYTES);
    return FALSE;
  }
  if (header_len > f->size - 8) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: the header length (%" PRIu64 " bytes) runs past the end of the file (%zu"
                    " bytes); the file is truncated — download it again"),
                 display, header_len, f->size);
    return FALSE;
  }

  g_autoptr (JsonObject) root = dg_json_parse_object ((const char *) f->base + 8, (gsize) header_len, display,
                                                      _ ("header"), MAX_HEADER_DEPTH, error);
  if (root == NULL)
    return FALSE;

  const guint8 *data = f->base + 8 + header_len;
  guint64 data_len = f->size - 8 - header_len;
  guint first = st->entries->len;

  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  json_object_iter_init_ordered (&iter, root);
  while (json_object_iter_next_ordered (&iter, &name, &node)) {
    if (strcmp (name, "__metadata__") == 0) {
      if (!parse_metadata (st, display, node, error))
        return FALSE;
      continue;
    }
    if (name[0] == '\0') {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: the header has a tensor with an empty name"), display);
      return FALSE;
    }
    Entry e = { 0 };
    if (!parse_entry (display, name, node, data_len, &e.info, &e.begin, error))
      return FALSE;
    gpointer prev = g_hash_table_lookup (st->by_name, name);
    if (prev != NULL) {
      /* Within one file json_strict already refused duplicate keys, so this is another shard. */
      const Entry *other = &g_array_index (st->entries, Entry, GPOINTER_TO_UINT (prev) - 1);
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                   _ ("tensor '%s' is stored in both %s and %s, so it is ambiguous which is meant; the shards "
                      "come from different downloads"),
                   name, other->info.file, display);
      return FALSE;
    }
    e.info.name = g_string_chunk_insert (st->strings, name);
    e.info.data = data + e.begin;
    e.info.file = f->display;
    e.file_index = file_index;
    g_array_append_val (st->entries, e);
    g_hash_table_insert (st->by_name, (gpointer) e.info.name, GUINT_TO_POINTER (st->entries->len));
  }
  return check_overlaps (st, first, display, error);
}

/* ---- opening ------------------------------------------------------------------------------ */

static int
cmp_storage_order (gconstpointer a, gconstpointer b)
{
  const Entry *x = a, *y = b;
  if (x->file_index != y->file_index)
    return x->file_index < y->file_index ? -1 : 1;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  return strcmp (x->info.name, y->info.name); /* empty tensors may share an offset */
}

static void
finish (DgSafetensors *st)
{
  g_array_sort (st->entries, cmp_storage_order);
  g_hash_table_remove_all (st->by_name);
  for (guint i = 0; i < st->entries->len; i++) {
    Entry *e = &g_array_index (st->entries, Entry, i);
    g_hash_table_insert (st->by_name, (gpointer) e->info.name, GUINT_TO_POINTER (i + 1));
  }
}

static gboolean
add_mapped_file (DgSafetensors *st, const char *path, gboolean gguf, GError **error)
{
  g_autoptr (GError) local = NULL;
  /* Opening a FIFO or device would block or map nothing useful. */
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, DG_ERROR, DG_ERROR_IO, _ ("%s is not a regular file"), path);
    return FALSE;
  }
  GMappedFile *map = g_mapped_file_new (path, FALSE, &local);
  if (map == NULL) {
    g_set_error (error, DG_ERROR, DG_ERROR_IO, _ ("cannot read %s: %s"), path, local->message);
    return FALSE;
  }
  StFile *f = g_new0 (StFile, 1);
  f->display = dg_display_name (path);
  f->map = map;
  dg_file_stamp_take (&f->stamp, path);
  f->base = (const guint8 *) g_mapped_file_get_contents (map);
  f->size = g_mapped_file_get_length (map);
  f->gguf = gguf;
  g_ptr_array_add (st->files, f);
  return parse_file (st, st->files->len - 1, error);
}

static DgSafetensors *
open_data (const guint8 *data, gsize len, const char *display, gboolean gguf, GError **error)
{
  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_autoptr (DgSafetensors) st = st_new (display ? display : "<memory>");
  StFile *f = g_new0 (StFile, 1);
  f->display = g_strdup (st->display);
  f->base = data;
  f->size = len;
  f->gguf = gguf;
  g_ptr_array_add (st->files, f);
  if (!parse_file (st, 0, error))
    return NULL;
  finish (st);
  return g_steal_pointer (&st);
}

DgSafetensors *
dg_safetensors_open_data (const guint8 *data, gsize len, const char *display, GError **error)
{
  return open_data (data, len, display, FALSE, error);
}

DgSafetensors *
dg_gguf_open_data (const guint8 *data, gsize len, const char *display, GError **error)
{
  return open_data (data, len, display, TRUE, error);
}

static DgSafetensors *
open_single (const char *path, GError **error)
{
  g_autofree char *display = dg_display_name (path);
  g_autoptr (DgSafetensors) st = st_new (display);
  if (!add_mapped_file (st, path, g_str_has_suffix (path, ".gguf"), error))
    return NULL;
  finish (st);
  return g_steal_pointer (&st);
}

/* A shard must sit beside its index: a name with a directory part could point anywhere. */
static gboolean
is_plain_file_name (const char *s)
{
  return s[0] != '\0' && strcmp (s, ".") != 0 && strcmp (s, "..") != 0 && strchr (s, '/') == NULL &&
         strchr (s, '\\') == NULL;
}

static DgSafetensors *
open_index (const char *index_path, GError **error)
{
  g_autofree char *display = dg_display_name (index_path);
  g_autofree char *dir = g_path_get_dirname (index_path);
  g_autoptr (JsonObject) index = dg_json_load_object (index_path, display, MAX_INDEX_BYTES, MAX_INDEX_DEPTH, error);
  if (index == NULL)
    return NULL;

  JsonNode *wm = json_object_get_member (index, "weight_map");
  if (wm == NULL || !JSON_NODE_HOLDS_OBJECT (wm)) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s has no \"weight_map\" object, so it does not say which shard holds which tensor"), display);
    return NULL;
  }
  JsonObject *map = json_node_get_object (wm);
  if (json_object_get_size (map) == 0) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: \"weight_map\" lists no tensors"), display);
    return NULL;
  }

  /* Shards in order of first mention, which for Hugging Face indexes is file order. */
  g_autoptr (GPtrArray) shards = g_ptr_array_new ();
  g_autoptr (GHashTable) shard_index = g_hash_table_new (g_str_hash, g_str_equal);
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  json_object_iter_init_ordered (&iter, map);
  while (json_object_iter_next_ordered (&iter, &name, &node)) {
    if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: the shard of tensor '%s' is not a file name"), display,
                   name);
      return NULL;
    }
    const char *shard = json_node_get_string (node);
    if (!is_plain_file_name (shard)) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                   _ ("%s: shard \"%s\" is not a plain file name beside the index; refusing to look elsewhere"),
                   display, shard);
      return NULL;
    }
    if (!g_hash_table_contains (shard_index, shard)) {
      g_hash_table_insert (shard_index, (gpointer) shard, GUINT_TO_POINTER (shards->len));
      g_ptr_array_add (shards, (gpointer) shard);
    }
  }

  g_autoptr (DgSafetensors) st = st_new (display);
  for (guint i = 0; i < shards->len; i++) {
    g_autofree char *path = g_build_filename (dir, shards->pdata[i], NULL);
    if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
      g_set_error (error, DG_ERROR, DG_ERROR_MISSING,
                   _ ("%s lists the shard %s, which is not in %s; the download is incomplete — fetch the "
                      "missing file"),
                   display, (const char *) shards->pdata[i], dir);
      return NULL;
    }
    if (!add_mapped_file (st, path, FALSE, error))
      return NULL;
  }

  /* The index and the shards must agree, or a loader trusting either would be misled. */
  json_object_iter_init_ordered (&iter, map);
  while (json_object_iter_next_ordered (&iter, &name, &node)) {
    guint want = GPOINTER_TO_UINT (g_hash_table_lookup (shard_index, json_node_get_string (node)));
    gpointer found = g_hash_table_lookup (st->by_name, name);
    const StFile *want_file = st->files->pdata[want];
    if (found == NULL) {
      g_set_error (error, DG_ERROR, DG_ERROR_MISSING,
                   _ ("%s says tensor '%s' is in %s, but that shard does not contain it; the shards and the "
                      "index come from different downloads"),
                   display, name, want_file->display);
      return NULL;
    }
    const Entry *e = &g_array_index (st->entries, Entry, GPOINTER_TO_UINT (found) - 1);
    if (e->file_index != want) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                   _ ("%s says tensor '%s' is in %s, but it is in %s; the shards and the index come from "
                      "different downloads"),
                   display, name, want_file->display, e->info.file);
      return NULL;
    }
  }
  finish (st);
  return g_steal_pointer (&st);
}

static DgSafetensors *
open_folder (const char *dir, GError **error)
{
  /* model.gguf (what `deepgen convert` writes) only where no safetensors file is. */
  static const char *const known[] = {
    "model.safetensors",
    "diffusion_pytorch_model.safetensors",
    "model.safetensors.index.json",
    "diffusion_pytorch_model.safetensors.index.json",
    DG_GGUF_FILE_NAME,
  };
  for (guint i = 0; i < G_N_ELEMENTS (known); i++) {
    g_autofree char *path = g_build_filename (dir, known[i], NULL);
    if (g_file_test (path, G_FILE_TEST_EXISTS))
      return g_str_has_suffix (path, ".json") ? open_index (path, error) : open_single (path, error);
  }

  g_autoptr (GError) local = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &local);
  if (d == NULL) {
    g_set_error (error, DG_ERROR, DG_ERROR_IO, _ ("cannot list %s: %s"), dir, local->message);
    return NULL;
  }
  g_autofree char *found = NULL;
  const char *entry;
  while ((entry = g_dir_read_name (d)) != NULL) {
    if (!g_str_has_suffix (entry, ".safetensors.index.json"))
      continue;
    if (found != NULL) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                   _ ("%s holds more than one shard index (%s, %s); open the one you mean directly"), dir, found,
                   entry);
      return NULL;
    }
    found = g_strdup (entry);
  }
  if (found == NULL) {
    g_set_error (error, DG_ERROR, DG_ERROR_MISSING,
                 _ ("%s has no model.safetensors, diffusion_pytorch_model.safetensors, *.safetensors.index.json or "
                    "model.gguf; is this a component folder of the model (vlm/, connector/, transformer/, vae/)?"),
                 dir);
    return NULL;
  }
  g_autofree char *path = g_build_filename (dir, found, NULL);
  return open_index (path, error);
}

DgSafetensors *
dg_safetensors_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  if (dg_vfolder_is_virtual (path))
    return dg_vfolder_open_weights (path, error);
  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_set_error (error, DG_ERROR, DG_ERROR_MISSING, _ ("%s does not exist; check the model path"), path);
    return NULL;
  }
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    return open_folder (path, error);
  if (g_str_has_suffix (path, ".json"))
    return open_index (path, error);
  return open_single (path, error);
}

/* ---- queries ------------------------------------------------------------------------------ */

const char *
dg_safetensors_display_name (const DgSafetensors *st)
{
  return st->display;
}

const DgTensorInfo *
dg_safetensors_find (const DgSafetensors *st, const char *name)
{
  gpointer v = g_hash_table_lookup (st->by_name, name);
  return v ? &g_array_index (st->entries, Entry, GPOINTER_TO_UINT (v) - 1).info : NULL;
}

guint
dg_safetensors_n_tensors (const DgSafetensors *st)
{
  return st->entries->len;
}

const DgTensorInfo *
dg_safetensors_tensor (const DgSafetensors *st, guint i)
{
  g_return_val_if_fail (i < st->entries->len, NULL);
  return &g_array_index (st->entries, Entry, i).info;
}

guint64
dg_safetensors_total_bytes (const DgSafetensors *st)
{
  guint64 total = 0;
  for (guint i = 0; i < st->entries->len; i++) total += g_array_index (st->entries, Entry, i).info.nbytes;
  return total;
}

const char *
dg_safetensors_metadata (const DgSafetensors *st, const char *key)
{
  return g_hash_table_lookup (st->metadata, key);
}

char *
dg_shape_to_string (guint ndim, const gint64 *shape)
{
  GString *s = g_string_new ("[");
  for (guint i = 0; i < ndim; i++) {
    if (i)
      g_string_append_c (s, ',');
    if (shape[i] < 0)
      g_string_append_c (s, '?');
    else
      g_string_append_printf (s, "%" G_GINT64_FORMAT, shape[i]);
  }
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

static char *
dtype_set_to_string (guint32 dtypes)
{
  GString *s = g_string_new (NULL);
  guint n = 0, total = (guint) __builtin_popcount (dtypes);
  for (guint t = 0; t < DG_DTYPE_COUNT; t++)
    if (dtypes & DG_DTYPE_BIT (t)) {
      if (n > 0)
        g_string_append (s, n + 1 == total ? _ (" or ") : ", ");
      g_string_append (s, dg_dtype_name ((DgDType) t));
      n++;
    }
  return g_string_free (s, FALSE);
}

gboolean
dg_tensor_info_check (const DgTensorInfo *info, guint32 dtypes, guint ndim, const gint64 *shape, GError **error)
{
  gboolean same = info->ndim == ndim;
  for (guint i = 0; same && i < ndim; i++) same = shape[i] < 0 || shape[i] == info->shape[i];
  if (!same) {
    g_autofree char *have = dg_shape_to_string (info->ndim, info->shape);
    g_autofree char *want = dg_shape_to_string (ndim, shape);
    g_set_error (error, DG_ERROR, DG_ERROR_SHAPE,
                 _ ("%s: tensor '%s' has shape %s, expected %s — is this the right model folder?"), info->file,
                 info->name, have, want);
    return FALSE;
  }
  if (!(dtypes & DG_DTYPE_BIT (info->dtype))) {
    g_autofree char *want = dtype_set_to_string (dtypes);
    g_set_error (error, DG_ERROR, DG_ERROR_SHAPE,
                 _ ("%s: tensor '%s' is stored as %s, expected %s — is this the right model folder?"), info->file,
                 info->name, dg_dtype_name (info->dtype), want);
    return FALSE;
  }
  return TRUE;
}

const DgTensorInfo *
dg_safetensors_expect (const DgSafetensors *st, const char *name, guint32 dtypes, guint ndim, const gint64 *shape,
                       GError **error)
{
  const DgTensorInfo *info = dg_safetensors_find (st, name);
  if (info == NULL) {
    g_set_error (error, DG_ERROR, DG_ERROR_MISSING,
                 _ ("%s: tensor '%s' is missing — is this the right model folder, and is the download complete?"),
                 st->display, name);
    return NULL;
  }
  return dg_tensor_info_check (info, dtypes, ndim, shape, error) ? info : NULL;
}

/* ---- conversion --------------------------------------------------------------------------- */

static gboolean
unsupported_conversion (const DgTensorInfo *info, const char *to, GError **error)
{
  g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED, _ ("%s: tensor '%s' is %s and cannot be converted to %s"),
               info->file, info->name, dg_dtype_name (info->dtype), to);
  return FALSE;
}

static gboolean to_f32 (const DgTensorInfo *info, float *dst, GError **error);
static gboolean to_bf16 (const DgTensorInfo *info, guint16 *dst, GError **error);

/* ---- generated tensors -------------------------------------------------------------------- */

DgSafetensors *
dg_safetensors_new_generated (const char *display)
{
  return st_new (display);
}

/* splitmix64: a counter-based generator, so value i needs nothing but (seed, i) and any range of
 * a tensor can be made by any thread. */
static inline guint64
mix64 (guint64 x)
{
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Irwin–Hall: four 16-bit uniforms from one draw, centred and scaled to unit variance. */
static inline float
gen_value (const DgTensorInfo *t, guint64 i)
{
  guint64 r = mix64 (t->gen_seed ^ mix64 (i));
  float u = (float) ((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48)) + 2.0f;
  const float scale = 1.7320508f / 65536.0f; /* sqrt(3) / 2^16: var(sum of 4 U(0,1)) = 1/3 */
  return t->gen_mean + t->gen_std * ((u - 2.0f * 65536.0f) * scale);
}

typedef struct {
  const DgTensorInfo *t;
  gpointer dst;
  gboolean bf16;
  guint64 first, end;
} GenSlice;

static gpointer
gen_slice (gpointer data)
{
  const GenSlice *s = data;
  if (s->bf16) {
    guint16 *d = s->dst;
    for (guint64 i = s->first; i < s->end; i++) d[i] = dg_f32_to_bf16 (gen_value (s->t, i));
  } else {
    float *d = s->dst;
    for (guint64 i = s->first; i < s->end; i++) d[i] = gen_value (s->t, i);
  }
  return NULL;
}

/* All values of @t into @dst (f32 or bf16), over the cores for big tensors: the LLM has 3 G. */
static void
gen_fill (const DgTensorInfo *t, gpointer dst, gboolean bf16)
{
  const guint64 n = (guint64) t->n_elements;
  const guint n_threads = (guint) CLAMP (n / (1u << 20), 1, MIN (g_get_num_processors (), 16));
  GenSlice slices[16];
  GThread *threads[16] = { NULL };
  for (guint k = 0; k < n_threads; k++) {
    slices[k] = (GenSlice) { t, dst, bf16, n * k / n_threads, n * (k + 1) / n_threads };
    if (k > 0 && !(threads[k] = g_thread_try_new ("dg-generate", gen_slice, &slices[k], NULL)))
      gen_slice (&slices[k]); /* no thread: do it here */
  }
  gen_slice (&slices[0]);
  for (guint k = 1; k < n_threads; k++)
    if (threads[k])
      g_thread_join (threads[k]);
}

gboolean
dg_safetensors_add_generated (DgSafetensors *st, const char *name, DgDType dtype, guint ndim, const gint64 *shape,
                              float mean, float std, guint64 seed, gboolean materialize, GError **error)
{
  g_return_val_if_fail (st && name && ndim <= DG_TENSOR_MAX_DIMS, FALSE);
  g_return_val_if_fail (dtype == DG_DTYPE_F32 || dtype == DG_DTYPE_BF16, FALSE);
  g_return_val_if_fail (!g_hash_table_contains (st->by_name, name), FALSE);
  Entry e = { 0 };
  e.info.name = g_string_chunk_insert (st->strings, name);
  e.info.dtype = dtype;
  e.info.ndim = ndim;
  e.info.n_elements = 1;
  for (guint i = 0; i < ndim; i++) {
    e.info.shape[i] = shape[i];
    e.info.n_elements *= shape[i];
  }
  e.info.nbytes = (gsize) e.info.n_elements * dg_dtype_size (dtype);
  e.info.file = st->display;
  e.info.gen_mean = mean;
  e.info.gen_std = std;
  e.info.gen_seed = seed;
  e.info.generated = TRUE;
  if (materialize) {
    gpointer data = g_try_malloc (MAX (e.info.nbytes, 1));
    if (!data) {
      g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("out of memory making the synthetic tensor '%s' (%zu bytes)"),
                   name, e.info.nbytes);
      return FALSE;
    }
    gen_fill (&e.info, data, dtype == DG_DTYPE_BF16);
    g_ptr_array_add (st->owned, data);
    e.info.data = data;
    e.info.generated = FALSE; /* from now on an ordinary tensor in memory */
  }
  g_array_append_val (st->entries, e);
  g_hash_table_insert (st->by_name, (gpointer) e.info.name, GUINT_TO_POINTER (st->entries->len));
  return TRUE;
}

/* ---- conversions ------------------------------------------------------------------------ */

/* The conversions read the mapping: under a guard (mapped_guard.h). */
gboolean
dg_tensor_to_f32 (const DgTensorInfo *info, float *dst, GError **error)
{
  if (info->generated) {
    gen_fill (info, dst, FALSE);
    return TRUE;
  }
  DgMappedGuard g;
  if (!DG_MAPPED_TRY (&g))
    return dg_mapped_guard_fail (&g, info->file, error);
  gboolean ok = to_f32 (info, dst, error);
  dg_mapped_guard_end (&g);
  return ok;
}

gboolean
dg_tensor_to_bf16 (const DgTensorInfo *info, guint16 *dst, GError **error)
{
  if (info->generated) {
    gen_fill (info, dst, TRUE);
    return TRUE;
  }
  DgMappedGuard g;
  if (!DG_MAPPED_TRY (&g))
    return dg_mapped_guard_fail (&g, info->file, error);
  gboolean ok = to_bf16 (info, dst, error);
  dg_mapped_guard_end (&g);
  return ok;
}

static gboolean
to_f32 (const DgTensorInfo *info, float *dst, GError **error)
{
  gsize n = (gsize) info->n_elements;
  switch (info->dtype) {
  case DG_DTYPE_F32:
    if (n)
      memcpy (dst, info->data, n * sizeof (float));
    return TRUE;
  case DG_DTYPE_F16: dg_f16_to_f32_array (info->data, dst, n); return TRUE;
  case DG_DTYPE_BF16: dg_bf16_to_f32_array (info->data, dst, n); return TRUE;
  case DG_DTYPE_Q8_0: dg_q8_0_to_f32_array (info->data, dst, n); return TRUE;
  default: return unsupported_conversion (info, "F32", error);
  }
}

static gboolean
to_bf16 (const DgTensorInfo *info, guint16 *dst, GError **error)
{
  gsize n = (gsize) info->n_elements;
  const guint8 *src = info->data;
  switch (info->dtype) {
  case DG_DTYPE_BF16:
    if (n)
      memcpy (dst, src, n * 2);
    return TRUE;
  case DG_DTYPE_F32: dg_f32_to_bf16_array (src, dst, n); return TRUE;
  case DG_DTYPE_F16:
    for (gsize i = 0; i < n; i++)
      dst[i] = dg_f32_to_bf16 (dg_f16_to_f32 ((guint16) (src[2 * i] | (src[2 * i + 1] << 8))));
    return TRUE;
  case DG_DTYPE_Q8_0: {
    /* a block at a time: the caller's buffer holds bf16, not the f32 values */
    float block[32];
    for (gsize b = 0; b < n / 32; b++) {
      dg_q8_0_to_f32_array (src + b * 34, block, 32);
      for (gsize i = 0; i < 32; i++) dst[b * 32 + i] = dg_f32_to_bf16 (block[i]);
    }
    return TRUE;
  }
  default: return unsupported_conversion (info, "BF16", error);
  }
}

/* ---- file stamps ------------------------------------------------------------------------- */

gboolean
dg_file_stamp_take (DgFileStamp *stamp, const char *path)
{
  memset (stamp, 0, sizeof *stamp);
  GStatBuf sb;
  if (g_stat (path, &sb) != 0)
    return FALSE;
  stamp->path = g_strdup (path);
  stamp->device = (guint64) sb.st_dev;
  stamp->inode = (guint64) sb.st_ino;
  stamp->size = (guint64) sb.st_size;
  stamp->mtime_ns = (gint64) sb.st_mtim.tv_sec * G_GINT64_CONSTANT (1000000000) + sb.st_mtim.tv_nsec;
  stamp->ctime_ns = (gint64) sb.st_ctim.tv_sec * G_GINT64_CONSTANT (1000000000) + sb.st_ctim.tv_nsec;
  return TRUE;
}

gboolean
dg_file_stamp_unchanged (const DgFileStamp *stamp, gboolean *now_missing)
{
  DgFileStamp now;
  gboolean exists = dg_file_stamp_take (&now, stamp->path);
  if (now_missing)
    *now_missing = !exists;
  gboolean same = exists && now.device == stamp->device && now.inode == stamp->inode && now.size == stamp->size &&
                  now.mtime_ns == stamp->mtime_ns && now.ctime_ns == stamp->ctime_ns;
  dg_file_stamp_clear (&now);
  return same;
}

void
dg_file_stamp_clear (DgFileStamp *stamp)
{
  g_clear_pointer (&stamp->path, g_free);
}

void
dg_safetensors_file_stamps (const DgSafetensors *st, GArray *stamps)
{
  for (guint i = 0; i < st->files->len; i++) {
    const StFile *f = g_ptr_array_index (st->files, i);
    if (!f->stamp.path)
      continue;
    DgFileStamp copy = f->stamp;
    copy.path = g_strdup (f->stamp.path);
    g_array_append_val (stamps, copy);
  }
}
