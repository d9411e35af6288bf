/* Reader for safetensors weight files: one file, or a sharded set described by an
 * `*.safetensors.index.json` (MODEL.md §8).
 *
 * Files are mapped, not read, so opening the 7.5 GB VLM costs no copy and no memory until the
 * weights are uploaded. Every header field is validated before anything is computed from it
 * (header length, JSON, dtype, shape, offsets, overlaps, shard membership): a damaged or hostile
 * file ends in a DG_ERROR, never in a read outside the mapping.
 *
 * Tensor data pointers point into the mapping: they are valid until dg_safetensors_free() and are
 * only as aligned as the writer made them (Hugging Face pads the header to 8 bytes, other writers
 * may not), so read them with memcpy or the dtype.h array helpers. The format is little-endian.
 *
 * An opened set is immutable, so any number of threads may read it at once. A file that another
 * process truncates while it is open makes later reads of its data fault (SIGBUS): mapping cannot
 * guard against that, so weights are best read once, right after opening, into device memory. */
#pragma once

#include <glib.h>

#include "dtype.h"

G_BEGIN_DECLS

#define DG_TENSOR_MAX_DIMS 8

typedef struct {
  const char *name;
  DgDType dtype;
  guint ndim;
  gint64 shape[DG_TENSOR_MAX_DIMS]; /* entries past ndim are 0 */
  gint64 n_elements;                /* 1 for a scalar (ndim 0) */
  const void *data;
  gsize nbytes;
  const char *file; /* "parent/file.safetensors" that holds it, for messages */
  /* A generated tensor (dg_safetensors_add_generated) has no data: dg_tensor_to_f32 / _bf16 draw
   * its values on demand, value i from (gen_seed, i) alone. */
  gboolean generated;
  float gen_mean, gen_std;
  guint64 gen_seed;
} DgTensorInfo;

typedef struct _DgSafetensors DgSafetensors;

/* Opens @path, which is one of:
 *  - a `.safetensors` file;
 *  - a `.gguf` file (gguf.h: what `deepgen convert` writes; shapes in PyTorch order);
 *  - a `*.index.json` shard index (its `weight_map` names the shards, beside it);
 *  - a component folder, searched for `model.safetensors`, `diffusion_pytorch_model.safetensors`,
 *    their `.index.json`, `model.gguf`, then a single `*.safetensors.index.json` (the order
 *    transformers and diffusers use, a converted folder's file where no safetensors file is). */
DgSafetensors *dg_safetensors_open (const char *path, GError **error);

/* Parses a whole safetensors image already in memory (8-byte header length, JSON header, data).
 * Tensor data points into @data, which the caller keeps alive and unchanged until the result is
 * freed. @display names the image in messages. This is the entry point of the fuzz target. */
DgSafetensors *dg_safetensors_open_data (const guint8 *data, gsize len, const char *display, GError **error);

/* An empty set for generated weights (the synthetic model, model/nn/synthetic.c). */
DgSafetensors *dg_safetensors_new_generated (const char *display);

/* Adds @name, of @dtype (F32 or BF16) and PyTorch shape @shape[0..ndim), whose values are
 * @mean + @std · z with z a deterministic function of (@seed, index): approximately standard
 * normal (the Irwin–Hall sum of four uniforms, so |z| < 3.5), @std 0 gives @mean exactly. With
 * @materialize the values are made now and held as the tensor's data (for what readers take from
 * data directly: an embedding table, a position table); else they are made on demand by each
 * conversion (dg_tensor_to_f32 / _bf16), which costs no memory until a loader reads them. FALSE
 * with DG_ERROR_OOM when @materialize cannot get the memory. */
gboolean dg_safetensors_add_generated (DgSafetensors *st, const char *name, DgDType dtype, guint ndim,
                                       const gint64 *shape, float mean, float std, guint64 seed, gboolean materialize,
                                       GError **error);

void dg_safetensors_free (DgSafetensors *st);

/* What tells whether a file's contents are still those that were read, without reading it: a
 * rewrite in place changes its modification and status-change times (and perhaps its size), a
 * replacement (rename over it) its inode, a removal its existence. */
typedef struct {
  char *path;
  guint64 device, inode, size;
  gint64 mtime_ns, ctime_ns;
} DgFileStamp;
/* Stamps @path as it is now into @stamp (path copied); FALSE when it cannot be stat'ed. */
gboolean dg_file_stamp_take (DgFileStamp *stamp, const char *path);
/* Whether @path still has @stamp; FALSE (and *now_missing, when given, TRUE) if it is gone. */
gboolean dg_file_stamp_unchanged (const DgFileStamp *stamp, gboolean *now_missing);
void dg_file_stamp_clear (DgFileStamp *stamp);
/* Appends to @stamps (a GArray of DgFileStamp; clear each with dg_file_stamp_clear) the stamps of
 * the files @st mapped, taken when they were mapped. */
void dg_safetensors_file_stamps (const DgSafetensors *st, GArray *stamps);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgSafetensors, dg_safetensors_free)

/* What the set is called in messages: "vlm/model.safetensors.index.json", "vae/diffusion_...". */
const char *dg_safetensors_display_name (const DgSafetensors *st);

/* O(1) lookup; NULL when absent. */
const DgTensorInfo *dg_safetensors_find (const DgSafetensors *st, const char *name);

/* All tensors, in storage order (shard by shard, then by offset), which is the order that reads
 * the files sequentially. */
guint dg_safetensors_n_tensors (const DgSafetensors *st);
const DgTensorInfo *dg_safetensors_tensor (const DgSafetensors *st, guint i);

/* Sum of nbytes over all tensors. */
guint64 dg_safetensors_total_bytes (const DgSafetensors *st);

/* A value from a `__metadata__` string map, or a string-valued GGUF key (the first file that has
 * the key), or NULL. */
const char *dg_safetensors_metadata (const DgSafetensors *st, const char *key);

/* Finds @name and checks that its dtype is in @dtypes (a DG_DTYPE_BIT mask) and that its shape is
 * @shape[0..ndim) (an entry < 0 matches any size). On mismatch: NULL and an error that names the
 * file, the tensor, what was found and what was expected (DG_ERROR_MISSING when absent,
 * DG_ERROR_SHAPE for a wrong shape or dtype). */
const DgTensorInfo *dg_safetensors_expect (const DgSafetensors *st, const char *name, guint32 dtypes, guint ndim,
                                           const gint64 *shape, GError **error);

/* dg_safetensors_expect_shape (st, "proj_out.weight", DG_DTYPES_FLOAT, &error, 64, 1536) */
#define DG_SHAPE(...) ((const gint64[]) { __VA_ARGS__ })
#define dg_safetensors_expect_shape(st, name, dtypes, error, ...)                                             \
  dg_safetensors_expect ((st), (name), (dtypes), (guint) (sizeof (DG_SHAPE (__VA_ARGS__)) / sizeof (gint64)), \
                         DG_SHAPE (__VA_ARGS__), (error))

/* The same check for a tensor already in hand. */
gboolean dg_tensor_info_check (const DgTensorInfo *info, guint32 dtypes, guint ndim, const gint64 *shape,
                               GError **error);

/* Converts a F32, F16, BF16 or Q8_0 tensor to fp32 (exactly; Q8_0 dequantized, d·q) into @dst of
 * n_elements floats. Other dtypes: FALSE and DG_ERROR_UNSUPPORTED. */
gboolean dg_tensor_to_f32 (const DgTensorInfo *info, float *dst, GError **error);

/* Converts a F32, F16, BF16 or Q8_0 tensor to bf16 into @dst of n_elements values: BF16 is copied,
 * F32 rounded to nearest even, F16 and Q8_0 widened exactly then rounded. Other dtypes:
 * DG_ERROR_UNSUPPORTED. */
gboolean dg_tensor_to_bf16 (const DgTensorInfo *info, guint16 *dst, GError **error);

/* "[64,1536]" */
char *dg_shape_to_string (guint ndim, const gint64 *shape);

G_END_DECLS
