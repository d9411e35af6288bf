/* GGUF, ggml's weight container (version 3, little-endian), for the model folders that
 * `deepgen convert` writes (model/io/convert.h): one `model.gguf` per component, the diffusers tensor
 * names kept, the Linear weights stored as q8_0.
 *
 * Layout: "GGUF", version (u32), tensor count (u64), key-value count (u64), the key-value pairs
 * (key: u64 length + bytes; type: u32; value), the tensor infos (name, n_dims (u32), dims (u64,
 * ggml order: dims[0] is the innermost, fastest-varying one, so a PyTorch [out, in] weight has
 * dims {in, out}), type (u32), offset (u64) into the data section), zero padding to
 * `general.alignment` (u32, default 32), then the data section. Every offset is a multiple of
 * the alignment.
 *
 * There is no second reader API: dg_safetensors_open () finds `model.gguf` in a component
 * folder (when no safetensors file is there) and presents its tensors as DgTensorInfo in
 * PyTorch shape order (the ggml dims reversed), its string metadata through
 * dg_safetensors_metadata (). Tensor types read: F32, F16, BF16, Q8_0 (DG_DTYPE_Q8_0: n_elements
 * counts the weights, nbytes the 34-byte blocks), and the plain integer and F64 types; any
 * other type is refused with DG_ERROR_UNSUPPORTED naming it. Every field is validated before it
 * is used (counts, string lengths, dims, element counts and byte sizes, offsets in range and
 * aligned, overlaps, duplicate names): a damaged or hostile file ends in a DG_ERROR naming the
 * file, never in a read outside the mapping. */
#pragma once

#include <glib.h>

#include "safetensors.h"

G_BEGIN_DECLS

#define DG_GGUF_FILE_NAME "model.gguf"
#define DG_GGUF_DEFAULT_ALIGNMENT 32
/* Metadata `deepgen convert` writes (besides general.architecture = "deepgen" and
 * general.alignment): the component folder ("vlm", "connector", "transformer") and the weight
 * format of its Linear layers. */
#define DG_GGUF_KEY_COMPONENT "deepgen.component"
#define DG_GGUF_KEY_WEIGHTS "deepgen.weights"
#define DG_GGUF_WEIGHTS_Q8_0 "q8_0"

/* A parsed GGUF image: what dg_safetensors_open builds its tensor set from. */
typedef struct _DgGguf DgGguf;

/* Parses a whole GGUF image in memory. Tensor data and names point into @data or into the
 * result, so @data must stay alive and unchanged while the result (or anything copied from
 * it) is used. @display names the file in messages. */
DgGguf *dg_gguf_parse (const guint8 *data, gsize len, const char *display, GError **error);
void dg_gguf_free (DgGguf *g);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgGguf, dg_gguf_free)

guint dg_gguf_n_tensors (const DgGguf *g);
/* In the order of the tensor infos; data points into the image. */
const DgTensorInfo *dg_gguf_tensor (const DgGguf *g, guint i);
/* Offset of tensor @i's data from the start of the image. */
guint64 dg_gguf_tensor_begin (const DgGguf *g, guint i);
guint32 dg_gguf_alignment (const DgGguf *g);
/* The string-valued metadata, in file order (other value types are validated and skipped). */
guint dg_gguf_n_strings (const DgGguf *g);
void dg_gguf_string (const DgGguf *g, guint i, const char **key, const char **value);

/* The GGUF counterpart of dg_safetensors_open_data: a whole image in memory as a tensor set
 * (the fuzz target's entry point). */
DgSafetensors *dg_gguf_open_data (const guint8 *data, gsize len, const char *display, GError **error);

/* ---- writing ------------------------------------------------------------------------------ */

/* Lays out a GGUF file: metadata and tensor infos are added first, then dg_gguf_writer_header ()
 * gives everything before the data section, and the caller writes tensor i's nbytes at
 * dg_gguf_writer_tensor_offset (i) of the data section (zero bytes in the gaps), in order. */
typedef struct _DgGgufWriter DgGgufWriter;

DgGgufWriter *dg_gguf_writer_new (void);
void dg_gguf_writer_free (DgGgufWriter *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgGgufWriter, dg_gguf_writer_free)

void dg_gguf_writer_set_string (DgGgufWriter *w, const char *key, const char *value);
void dg_gguf_writer_set_u32 (DgGgufWriter *w, const char *key, guint32 value);
/* A tensor of @dtype and PyTorch shape @shape[0..ndim). Fails (DG_ERROR_UNSUPPORTED) for a dtype
 * GGUF has no type for (U8, BOOL), a Q8_0 shape whose innermost size is not a multiple of 32,
 * or a duplicate name. */
gboolean dg_gguf_writer_add_tensor (DgGgufWriter *w, const char *name, DgDType dtype, guint ndim, const gint64 *shape,
                                    GError **error);
guint dg_gguf_writer_n_tensors (const DgGgufWriter *w);
guint64 dg_gguf_writer_tensor_offset (const DgGgufWriter *w, guint i);
guint64 dg_gguf_writer_tensor_nbytes (const DgGgufWriter *w, guint i);
/* The size of the data section (the end of the last tensor). */
guint64 dg_gguf_writer_data_bytes (const DgGgufWriter *w);
/* Magic to the end of the padding after the tensor infos. */
GBytes *dg_gguf_writer_header (const DgGgufWriter *w);

/* Whether a component's weights are 8-bit already (a folder written by `deepgen convert`): the
 * metadata says so (DG_GGUF_KEY_WEIGHTS = DG_GGUF_WEIGHTS_Q8_0), or it holds q8_0 tensors (a GGUF
 * written by another tool). A scan of the tensor list, which is in memory once opened. */
gboolean dg_gguf_holds_q8_0 (const DgSafetensors *st);

G_END_DECLS
