/* `deepgen convert` (convert.h): the released folder → a folder whose Linear weights are q8_0
 * GGUF tensors. */
#include "convert.h"

#include <errno.h>
#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "dg_error.h"
#include "dg_i18n.h"
#include "gguf.h"
#include "plan.h"
#include "safetensors.h"
#include "vkc_half.h"
#include "vkc_quant.h"

/* The component folders whose weights are converted; the VAE is copied as it is. */
static const char *const converted_folders[] = { "vlm", "connector", "transformer" };

/* Values quantized per slice: bounds the host memory whatever the matrix (the LLM's MLP
 * matrices are 68 M weights). */
#define SLICE_VALUES (1u << 22)
/* Bytes copied from the mapping per write, so that progress moves on big tensors. */
#define COPY_SLICE (16u << 20)

static void
report (const DgConvertOptions *o, const char *what, guint64 done, guint64 total)
{
  if (o->progress)
    o->progress (what, done, total, o->user_data);
}

/* ---- writing one GGUF file ------------------------------------------------------------------ */

typedef struct {
  GOutputStream *out;
  const char *path; /* for messages */
  const char *what; /* for progress */
  const DgConvertOptions *options;
  guint64 written, total;
} Out;

static gboolean
io_error (GError **error, GError *local, const char *fmt, const char *path)
{
  g_set_error (error, DG_ERROR, DG_ERROR_IO, fmt, path, local ? local->message : g_strerror (errno));
  return FALSE;
}

static gboolean
out_write (Out *o, const void *data, gsize n, GError **error)
{
  g_autoptr (GError) local = NULL;
  const guint8 *p = data;
  while (n > 0) {
    gsize k = MIN (n, COPY_SLICE), done;
    if (!g_output_stream_write_all (o->out, p, k, &done, NULL, &local))
      return io_error (error, local, _ ("cannot write %s: %s"), o->path);
    p += k;
    n -= k;
    o->written += k;
    report (o->options, o->what, o->written, o->total);
  }
  return TRUE;
}

static gboolean
out_zeros (Out *o, guint64 n, GError **error)
{
  static const guint8 zeros[256];
  while (n > 0) {
    gsize k = (gsize) MIN (n, sizeof zeros);
    if (!out_write (o, zeros, k, error))
      return FALSE;
    n -= k;
  }
  return TRUE;
}

/* A Linear weight [rows, cols] as q8_0: widened to f32, rounded to bf16 and quantized exactly
 * as dg_weights_linear does in bf16 mode (weights.c), a slice of rows at a time, then each
 * 36-byte GPU block (vkc_quant.h) written as ggml's 34-byte one: the f16 scale, the 32 quants. */
static gboolean
write_q8_0 (Out *o, const DgTensorInfo *t, GError **error)
{
  const gint64 rows = t->shape[0], cols = t->shape[1];
  const gint64 slice_rows = MAX (1, (gint64) SLICE_VALUES / cols);
  const gsize es = dg_dtype_size (t->dtype);
  if (dg_dtype_block (t->dtype) != 1 || !(DG_DTYPES_FLOAT & DG_DTYPE_BIT (t->dtype))) {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED, _ ("%s: tensor '%s' is %s and cannot be quantized"), t->file,
                 t->name, dg_dtype_name (t->dtype));
    return FALSE;
  }
  const gsize max_values = (gsize) (MIN (slice_rows, rows) * cols);
  g_autofree float *f = g_try_new (float, MAX (max_values, 1));
  g_autofree guint32 *q = g_try_malloc (MAX (max_values / VKC_Q8_0_BLOCK, 1) * VKC_Q8_0_BLOCK_BYTES);
  g_autofree guint8 *blocks = g_try_malloc (MAX (max_values / VKC_Q8_0_BLOCK, 1) * 34);
  if (!f || !q || !blocks) {
    g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("out of memory quantizing '%s'"), t->name);
    return FALSE;
  }
  for (gint64 r = 0; r < rows; r += slice_rows) {
    const gint64 n_rows = MIN (slice_rows, rows - r);
    const gsize n = (gsize) (n_rows * cols);
    DgTensorInfo part = *t;
    part.data = (const guint8 *) t->data + (gsize) (r * cols) * es;
    part.n_elements = (gint64) n;
    part.nbytes = n * es;
    if (!dg_tensor_to_f32 (&part, f, error))
      return FALSE;
    for (gsize i = 0; i < n; i++) f[i] = vkc_round_bf16 (f[i]);
    vkc_quantize_q8_0 (f, (int64_t) n, q);
    for (gsize b = 0; b < n / VKC_Q8_0_BLOCK; b++) {
      const guint32 *src = q + b * VKC_Q8_0_BLOCK_WORDS;
      guint8 *dst = blocks + b * 34;
      dst[0] = (guint8) (src[0] & 255); /* the f16 scale, little-endian */
      dst[1] = (guint8) ((src[0] >> 8) & 255);
      memcpy (dst + 2, src + 1, VKC_Q8_0_BLOCK);
    }
    if (!out_write (o, blocks, n / VKC_Q8_0_BLOCK * 34, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
write_gguf (const DgSafetensors *st, const char *folder, Out *o, GError **error)
{
  g_autoptr (DgGgufWriter) w = dg_gguf_writer_new ();
  dg_gguf_writer_set_string (w, "general.architecture", "deepgen");
  dg_gguf_writer_set_u32 (w, "general.alignment", DG_GGUF_DEFAULT_ALIGNMENT);
  dg_gguf_writer_set_string (w, DG_GGUF_KEY_COMPONENT, folder);
  dg_gguf_writer_set_string (w, DG_GGUF_KEY_WEIGHTS, DG_GGUF_WEIGHTS_Q8_0);
  const guint n = dg_safetensors_n_tensors (st);
  g_autofree gboolean *quantize = g_new0 (gboolean, MAX (n, 1));
  for (guint i = 0; i < n; i++) {
    const DgTensorInfo *t = dg_safetensors_tensor (st, i);
    quantize[i] = t->dtype != DG_DTYPE_Q8_0 && dg_plan_tensor_quantizable (folder, t->name, t->ndim, t->shape);
    g_autoptr (GError) local = NULL;
    if (!dg_gguf_writer_add_tensor (w, t->name, quantize[i] ? DG_DTYPE_Q8_0 : t->dtype, t->ndim, t->shape, &local)) {
      g_set_error (error, DG_ERROR, local->code, "%s: %s", t->file, local->message);
      return FALSE;
    }
  }
  g_autoptr (GBytes) header = dg_gguf_writer_header (w);
  gsize header_len;
  const guint8 *header_data = g_bytes_get_data (header, &header_len);
  o->total = header_len + dg_gguf_writer_data_bytes (w);
  report (o->options, o->what, 0, o->total);
  if (!out_write (o, header_data, header_len, error))
    return FALSE;
  for (guint i = 0; i < n; i++) {
    const DgTensorInfo *t = dg_safetensors_tensor (st, i);
    if (!out_zeros (o, header_len + dg_gguf_writer_tensor_offset (w, i) - o->written, error))
      return FALSE;
    if (quantize[i] ? !write_q8_0 (o, t, error) : !out_write (o, t->data, t->nbytes, error))
      return FALSE;
  }
  return TRUE;
}

gboolean
dg_convert_component (const char *src_dir, const char *folder, const char *dst_path, const DgConvertOptions *options,
                      GError **error)
{
  DgConvertOptions opts = DG_CONVERT_OPTIONS_INIT;
  if (options)
    opts = *options;
  g_autoptr (DgSafetensors) st = dg_safetensors_open (src_dir, error);
  if (!st)
    return FALSE;
  /* Written beside the target and renamed at the end: a target that exists is complete. */
  g_autofree char *partial = g_strconcat (dst_path, ".partial", NULL);
  g_autoptr (GFile) file = g_file_new_for_path (partial);
  g_autoptr (GError) local = NULL;
  g_autoptr (GFileOutputStream) fout = g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL, &local);
  if (!fout)
    return io_error (error, local, _ ("cannot create %s: %s"), partial);
  g_autoptr (GOutputStream) out = g_buffered_output_stream_new_sized (G_OUTPUT_STREAM (fout), 1u << 20);
  g_autofree char *what = g_build_filename (folder, DG_GGUF_FILE_NAME, NULL);
  Out o = { out, partial, what, &opts, 0, 0 };
  gboolean ok = write_gguf (st, folder, &o, error);
  if (!g_output_stream_close (out, NULL, ok ? &local : NULL) && ok) {
    ok = FALSE;
    io_error (error, local, _ ("cannot write %s: %s"), partial);
  }
  if (ok && g_rename (partial, dst_path) != 0) {
    ok = FALSE;
    io_error (error, NULL, _ ("cannot rename the finished file to %s: %s"), dst_path);
  }
  if (!ok)
    g_unlink (partial);
  return ok;
}

/* ---- the folder ---------------------------------------------------------------------------- */

static gboolean
is_converted_folder (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (converted_folders); i++)
    if (strcmp (name, converted_folders[i]) == 0)
      return TRUE;
  return FALSE;
}

static int
cmp_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Names in a folder, sorted, without the hidden ones: copies happen in a stable order. */
static GPtrArray *
list_dir (const char *dir, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &local);
  if (!d) {
    io_error (error, local, _ ("cannot list %s: %s"), dir);
    return NULL;
  }
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    if (name[0] != '.')
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, cmp_names);
  return names;
}

static guint64
tree_size (const char *path)
{
  GStatBuf sb;
  if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return g_stat (path, &sb) == 0 ? (guint64) sb.st_size : 0;
  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    return 0;
  g_autoptr (GPtrArray) names = list_dir (path, NULL);
  guint64 total = 0;
  for (guint i = 0; names && i < names->len; i++) {
    g_autofree char *p = g_build_filename (path, names->pdata[i], NULL);
    total += tree_size (p);
  }
  return total;
}

typedef struct {
  const DgConvertOptions *options;
  const char *what;
  guint64 done, total;
} Copy;

static gboolean
copy_file (Copy *c, const char *src, const char *dst, GError **error)
{
  g_autoptr (GFile) from = g_file_new_for_path (src);
  g_autoptr (GFile) to = g_file_new_for_path (dst);
  g_autoptr (GError) local = NULL;
  if (!g_file_copy (from, to, G_FILE_COPY_NONE, NULL, NULL, NULL, &local)) {
    g_set_error (error, DG_ERROR, DG_ERROR_IO, _ ("cannot copy %s to %s: %s"), src, dst, local->message);
    return FALSE;
  }
  c->done += tree_size (src);
  if (c->total > 0) /* a component folder's other files are reported with its model.gguf */
    report (c->options, c->what, c->done, c->total);
  return TRUE;
}

static gboolean
make_dir (const char *path, GError **error)
{
  if (g_mkdir (path, 0755) != 0)
    return io_error (error, NULL, _ ("cannot create the folder %s: %s"), path);
  return TRUE;
}

/* Copies @src (a file, or a folder recursively, symlinks followed) to @dst. Entries that are
 * neither (sockets, FIFOs) are left out. */
static gboolean
copy_tree (Copy *c, const char *src, const char *dst, GError **error)
{
  if (g_file_test (src, G_FILE_TEST_IS_REGULAR))
    return copy_file (c, src, dst, error);
  if (!g_file_test (src, G_FILE_TEST_IS_DIR))
    return TRUE;
  g_autoptr (GPtrArray) names = list_dir (src, error);
  if (!names || !make_dir (dst, error))
    return FALSE;
  for (guint i = 0; i < names->len; i++) {
    g_autofree char *s = g_build_filename (src, names->pdata[i], NULL);
    g_autofree char *d = g_build_filename (dst, names->pdata[i], NULL);
    if (!copy_tree (c, s, d, error))
      return FALSE;
  }
  return TRUE;
}

static void
remove_tree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK)) {
    g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d)) != NULL) {
      g_autofree char *p = g_build_filename (path, name, NULL);
      remove_tree (p);
    }
    g_rmdir (path);
  } else {
    g_unlink (path);
  }
}

/* The files of a component folder that hold its weights (and so are replaced by model.gguf):
 * the shards the reader opened, their index, and the names the reader looks for. */
static GHashTable *
weight_files (const DgSafetensors *st)
{
  GHashTable *set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  static const char *const known[] = { "model.safetensors", "diffusion_pytorch_model.safetensors", DG_GGUF_FILE_NAME };
  for (guint i = 0; i < G_N_ELEMENTS (known); i++) g_hash_table_add (set, g_strdup (known[i]));
  for (guint i = 0; i < dg_safetensors_n_tensors (st); i++) {
    const char *file = dg_safetensors_tensor (st, i)->file; /* "parent/name" */
    const char *slash = strrchr (file, '/');
    g_hash_table_add (set, g_strdup (slash ? slash + 1 : file));
  }
  return set;
}

/* One converted component folder: its other files copied, its weights as model.gguf. */
static gboolean
convert_folder (const DgConvertOptions *o, const char *src, const char *dst, const char *folder, GError **error)
{
  g_autoptr (DgSafetensors) st = dg_safetensors_open (src, error);
  if (!st)
    return FALSE;
  g_autoptr (GHashTable) skip = weight_files (st);
  g_autoptr (GPtrArray) names = list_dir (src, error);
  if (!names || !make_dir (dst, error))
    return FALSE;
  Copy c = { o, folder, 0, 0 };
  for (guint i = 0; i < names->len; i++) {
    const char *name = names->pdata[i];
    if (g_hash_table_contains (skip, name) || g_str_has_suffix (name, ".safetensors.index.json"))
      continue;
    g_autofree char *s = g_build_filename (src, name, NULL);
    g_autofree char *d = g_build_filename (dst, name, NULL);
    if (!copy_tree (&c, s, d, error))
      return FALSE;
  }
  g_autofree char *gguf = g_build_filename (dst, DG_GGUF_FILE_NAME, NULL);
  return dg_convert_component (src, folder, gguf, o, error);
}

static gboolean
convert_into (const DgConvertOptions *o, const char *src, const char *dst, GError **error)
{
  g_autoptr (GPtrArray) names = list_dir (src, error);
  if (!names)
    return FALSE;
  for (guint i = 0; i < names->len; i++) {
    const char *name = names->pdata[i];
    g_autofree char *s = g_build_filename (src, name, NULL);
    g_autofree char *d = g_build_filename (dst, name, NULL);
    if (is_converted_folder (name) && g_file_test (s, G_FILE_TEST_IS_DIR)) {
      if (!convert_folder (o, s, d, name, error))
        return FALSE;
      continue;
    }
    Copy c = { o, name, 0, tree_size (s) };
    report (o, name, 0, c.total);
    if (!copy_tree (&c, s, d, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
dir_is_empty (const char *path)
{
  g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
  return d && g_dir_read_name (d) == NULL;
}

gboolean
dg_convert_model (const char *src, const char *dst, const DgConvertOptions *options, GError **error)
{
  g_return_val_if_fail (src && dst, FALSE);
  DgConvertOptions opts = DG_CONVERT_OPTIONS_INIT;
  if (options)
    opts = *options;
  if (opts.weights != DG_WEIGHTS_Q8_0) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("deepgen convert writes 8-bit (q8_0) weights only; other formats are not implemented"));
    return FALSE;
  }
  g_autofree char *missing = dg_model_folder_missing (src);
  if (missing) {
    g_autofree char *list = g_strdelimit (g_strchomp (g_strdup (missing)), "\n", ',');
    g_set_error (error, DG_ERROR, DG_ERROR_MISSING,
                 _ ("The model folder %s is incomplete; missing: %s. Convert a complete DeepGen-1.0-diffusers "
                    "download."),
                 src, list);
    return FALSE;
  }
  for (guint i = 0; i < G_N_ELEMENTS (converted_folders); i++) {
    g_autofree char *dir = g_build_filename (src, converted_folders[i], NULL);
    g_autoptr (DgSafetensors) st = dg_safetensors_open (dir, error);
    if (!st)
      return FALSE;
    if (dg_gguf_holds_q8_0 (st)) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                   _ ("%s holds 8-bit weights already (it was converted); convert the released "
                      "DeepGen-1.0-diffusers folder instead"),
                   src);
      return FALSE;
    }
  }
  if (g_file_test (dst, G_FILE_TEST_EXISTS) && (!g_file_test (dst, G_FILE_TEST_IS_DIR) || !dir_is_empty (dst))) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("%s exists and is not an empty folder; choose a new folder for the converted model (nothing "
                    "is overwritten)"),
                 dst);
    return FALSE;
  }
  /* A destination inside the source would be copied into itself. */
  g_autofree char *csrc = g_canonicalize_filename (src, NULL);
  g_autofree char *cdst = g_canonicalize_filename (dst, NULL);
  g_autofree char *csrc_slash = g_strconcat (csrc, G_DIR_SEPARATOR_S, NULL);
  if (strcmp (csrc, cdst) == 0 || g_str_has_prefix (cdst, csrc_slash)) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("%s is inside the model folder %s; choose a folder outside it"), dst, src);
    return FALSE;
  }

  /* Built beside the destination, renamed at the end. */
  g_autofree char *parent = g_path_get_dirname (cdst);
  g_autofree char *base = g_path_get_basename (cdst);
  g_autofree char *tmpl = g_strdup_printf (".%s.partial-XXXXXX", base);
  g_autofree char *tmp = g_build_filename (parent, tmpl, NULL);
  if (!g_mkdtemp_full (tmp, 0755))
    return io_error (error, NULL, _ ("cannot create a folder beside %s: %s"), cdst);
  gboolean ok = convert_into (&opts, src, tmp, error);
  if (ok && g_file_test (cdst, G_FILE_TEST_IS_DIR) && g_rmdir (cdst) != 0) {
    ok = FALSE;
    io_error (error, NULL, _ ("cannot replace the empty folder %s: %s"), cdst);
  }
  if (ok && g_rename (tmp, cdst) != 0) {
    ok = FALSE;
    io_error (error, NULL, _ ("cannot rename the converted folder to %s: %s"), cdst);
  }
  if (!ok)
    remove_tree (tmp);
  return ok;
}
