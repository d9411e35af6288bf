/* GPU copies of one component's weights, and the activation arena of a forward pass.
 *
 * Precision policy (DESIGN.md §3, MODEL.md §10):
 *  - DG_PRECISION_BF16: matrices (Linear / conv / embedding weights) live on the GPU as bf16 —
 *    the released bf16 files are uploaded as they are, fp32 files (the connector) are rounded
 *    to nearest even exactly like `.to(torch.bfloat16)`; vectors (biases, norm weights, small
 *    parameters) are stored in f32 holding the bf16-rounded values, so shaders need no 16-bit
 *    path for them and the values equal the reference's.
 *  - DG_PRECISION_F32: everything is f32 (bf16 files are widened exactly) — the parity mode.
 * Every load checks the tensor's presence, dtype and shape against what the config implies and
 * fails with an actionable DG_ERROR naming the file and tensor. */
#pragma once

#include "deepgen.h"
#include "plan.h"
#include "safetensors.h"
#include "vkc.h"

G_BEGIN_DECLS

/* Observing intermediate tensors (tests, debugging), the one callback type of every component
 * (vit, llm, connector, dit, vae): called while recording with @name and the live tensor @t,
 * which later layers overwrite in the same command buffer — a tap that wants the values records
 * a copy (vkc_op_copy) on @cmd. Each component's header lists its names. */
typedef void (*DgTapFunc) (VkcCmd *cmd, const char *name, const VkcTensor *t, gpointer user_data);

typedef struct {
  VkcDevice *dev;
  VkcPool *pool;           /* owns every tensor loaded through this object */
  const DgSafetensors *st; /* borrowed; must outlive uploads (not the tensors) */
  DgPrecision precision;
  char *prefix;                   /* prepended to every name ("" by default) */
  DgLinearStorage linear_storage; /* how dg_weights_linear stores quantizable matrices */
  guint64 uploaded_bytes;
} DgWeights;

DgWeights *dg_weights_new (VkcDevice *dev, const DgSafetensors *st, DgPrecision precision, const char *label);
void dg_weights_free (DgWeights *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgWeights, dg_weights_free)

void dg_weights_set_prefix (DgWeights *w, const char *prefix);

/* Sizes the pool for what the loader is about to upload: @bytes, the sum of the tensors'
 * vkc_pool_piece_size (for a component, dg_plan_weight_pool_bytes), so the pool reserves
 * exactly that instead of 256 MiB blocks (vkc_pool_expect). */
void dg_weights_expect (DgWeights *w, guint64 bytes);

/* The GPU dtype matrices get under this precision. */
VkcDType dg_weights_matrix_dtype (const DgWeights *w);

/* A matrix [rows, cols] (Linear weight, embedding table). A stored tensor of more dims whose
 * first dim is `rows` and whose other dims multiply to `cols` is accepted as its row-major
 * flattening (the ViT's Conv3d patch kernel [1280, 3, 2, 14, 14] is the matrix [1280, 1176]).
 * Name is printf-style. */
gboolean dg_weights_matrix (DgWeights *w, VkcTensor *out, gint64 rows, gint64 cols, GError **error, const char *fmt,
                            ...) G_GNUC_PRINTF (6, 7);
/* The weight [out, in] of a Linear layer, which only vkc_op_linear reads: like
 * dg_weights_matrix, except that under a q8_0 or q4_0 storage (dg_weights_set_linear_format) a
 * matrix whose `in` is a multiple of 32 is quantized to VKC_Q8_0 / VKC_Q4_0 from the values the
 * precision policy gives (bf16-rounded in bf16 mode). Other matrices stay in the matrix dtype (see
 * dg_weights_linear_dtype; plan.c sizes them the same way, dg_plan_linear_quantizable).
 * A weight stored as Q8_0 (a folder written by `deepgen convert`) is uploaded as VKC_Q8_0 as
 * it is, whatever the format and precision; every other use of a Q8_0 tensor (matrices,
 * vectors, host copies) dequantizes it. */
gboolean dg_weights_linear (DgWeights *w, VkcTensor *out, gint64 out_features, gint64 in_features, GError **error,
                            const char *fmt, ...) G_GNUC_PRINTF (6, 7);
/* The same from host f32 values (e.g. after a LoRA merge). */
gboolean dg_weights_upload_linear (DgWeights *w, VkcTensor *out, gint64 out_features, gint64 in_features,
                                   const float *data, GError **error);
/* How component @c's quantizable Linears are stored under @format (dg_plan_linear_storage). */
void dg_weights_set_linear_format (DgWeights *w, DgWeightFormat format, DgComponent c);
/* The GPU dtype of a Linear weight with @in_features inputs under the current format. */
VkcDType dg_weights_linear_dtype (const DgWeights *w, gint64 in_features);
/* A 1-D vector [n] in f32 (values bf16-rounded in bf16 mode). */
gboolean dg_weights_vector (DgWeights *w, VkcTensor *out, gint64 n, GError **error, const char *fmt, ...)
    G_GNUC_PRINTF (5, 6);
/* A conv kernel stored [Cout, Cin, kh, kw] (PyTorch), uploaded as [Cout, kh, kw, Cin] for the
 * NHWC conv shaders. */
gboolean dg_weights_conv (DgWeights *w, VkcTensor *out, gint64 cout, gint64 cin, gint64 kh, gint64 kw, GError **error,
                          const char *fmt, ...) G_GNUC_PRINTF (8, 9);
/* Any float tensor of the given shape, widened to f32 on the host (caller g_free()s). In bf16
 * mode the values are rounded to bf16 first, as the reference sees them. */
float *dg_weights_host (DgWeights *w, guint ndim, const gint64 *shape, GError **error, const char *fmt, ...)
    G_GNUC_PRINTF (5, 6);
/* Whether a tensor exists (after the prefix). */
gboolean dg_weights_has (DgWeights *w, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

/* Upload host f32 data as a GPU tensor in this component's pool (dtype f32 or matrix dtype). */
gboolean dg_weights_upload_f32 (DgWeights *w, VkcTensor *out, VkcDType dtype, int ndim, const int64_t *shape,
                                const float *data, GError **error);

/* ---- activations ---------------------------------------------------------------------- */

/* A bump allocator for one forward pass. Allocation failures are sticky: the first error is
 * kept, later allocations return FALSE at once, and callers check dg_arena_failed () before
 * submitting, so a forward function needs one error check, not one per tensor. */
typedef struct {
  VkcDevice *dev;
  VkcPool *pool;
  GError *error;
} DgArena;

DgArena *dg_arena_new (VkcDevice *dev, const char *label);
void dg_arena_free (DgArena *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgArena, dg_arena_free)
void dg_arena_reset (DgArena *a);
/* The arena is about to hand out @bytes more (a sum of vkc_pool_piece_size): its next block is
 * sized to that instead of 256 MiB (vkc_pool_expect). Callers that know a pass's exact needs
 * (the memory plan, vae.c's dry run) say so before allocating. */
void dg_arena_expect (DgArena *a, guint64 bytes);
/* A contiguous f32 (or other dtype) tensor; shape given as up to 4 sizes (trailing -1 ends). */
gboolean dg_arena_tensor (DgArena *a, VkcTensor *out, VkcDType dtype, int ndim, const int64_t *shape);
#define DG_ACT(arena, out, ...)                                                                                    \
  dg_arena_tensor ((arena), (out), VKC_F32, (int) (sizeof ((const int64_t[]) { __VA_ARGS__ }) / sizeof (int64_t)), \
                   (const int64_t[]) { __VA_ARGS__ })
/* A fresh arena tensor filled from host data now (a synchronous upload). Fresh, because
 * dispatches recorded earlier may still have to read an older tensor when they run: reusing
 * one would overwrite it before that. Errors are sticky like allocation errors. */
gboolean dg_arena_upload (DgArena *a, VkcTensor *out, VkcDType dtype, int ndim, const int64_t *shape, const void *data);
/* Moves the sticky error (if any) into *error; TRUE when there was none. */
gboolean dg_arena_check (DgArena *a, GError **error);
gboolean dg_arena_failed (const DgArena *a);

/* Download a GPU tensor (contiguous or not, f32/f16/bf16; q8_0/q4_0 dequantized) as contiguous f32 host data. */
float *dg_tensor_download_f32 (VkcDevice *dev, const VkcTensor *t, GError **error);

/* Turn a vkc error into a DG_ERROR (DG_ERROR_OOM / DG_ERROR_DEVICE). */
void dg_error_from_vkc (GError **error);

G_END_DECLS
