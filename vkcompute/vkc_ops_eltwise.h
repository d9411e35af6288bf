/* Element-wise ops on f32 activations: activations (SiLU, GELU), SwiGLU, add/mul with
 * broadcasting, scale, AdaLN modulation, gated residuals, strided copies (concat/slice) and
 * the mean over tokens.
 *
 * Shapes. Every tensor is f32, 1- to 4-D, with a contiguous last dim ("columns") and any
 * non-negative strides on the leading dims ("rows"), so views with a row stride — a channel
 * slice of [B, N, k·C], a token range — are accepted everywhere. The output y defines the
 * shape. An input either has y's shape, or is broadcast:
 *   - same ndim with some leading dims of size 1 (stride ignored),
 *   - fewer dims: its leading dims match y's leading dims from the left and the missing ones
 *     before the last dim are broadcast — [B, C] against [B, N, C] broadcasts over tokens,
 *     [C] against anything broadcasts over all rows (a bias).
 * Broadcasting along columns is not supported. Inputs are never written.
 *
 * Aliasing: y may be the same memory as the first input (x or a) — identical view — for an
 * in-place op; y must not overlap any other input.
 *
 * Large tensors: launchers split the rows into several dispatches when a binding would exceed
 * maxStorageBufferRange (128 MiB on lavapipe); a single row must fit.
 */
#pragma once
#include "vkc.h"

G_BEGIN_DECLS

typedef enum {
  VKC_UNARY_COPY,      /* y = x (a strided copy: concat and slice along channels) */
  VKC_UNARY_SILU,      /* y = x·σ(x) */
  VKC_UNARY_GELU_ERF,  /* y = ½x(1 + erf(x/√2)), exact GELU (Qwen ViT merger) */
  VKC_UNARY_GELU_TANH, /* y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))), gelu_pytorch_tanh */
  VKC_UNARY_ERF,       /* y = erf(x) (max relative error ~3e-7) */
} VkcUnaryOp;

typedef enum {
  VKC_BINARY_ADD,    /* y = a + b */
  VKC_BINARY_MUL,    /* y = a · b */
  VKC_BINARY_SWIGLU, /* y = silu(a) · b (a = gate, b = up; may be two views of one tensor) */
} VkcBinaryOp;

void vkc_op_unary (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, VkcUnaryOp op);
/* y = x (same as vkc_op_unary with VKC_UNARY_COPY). To concatenate along channels copy each
 * part into a narrowed view of the destination; to slice, copy from a narrowed view. */
void vkc_op_copy (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x);
/* y = alpha · x */
void vkc_op_scale (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, float alpha);
/* b may be broadcast (bias [C], per-batch [B, C], ...); a has y's shape. */
void vkc_op_binary (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *a, const VkcTensor *b, VkcBinaryOp op);
/* y = x·(1 + scale) + shift; x, y [B, N, C], scale/shift [B, C] (typically column slices of
 * the chunked modulation tensor [B, k·C]) or any broadcastable shape. */
void vkc_op_modulate (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *scale,
                      const VkcTensor *shift);
/* y = x + gate ⊙ v; gate broadcastable (e.g. [B, C] over tokens), v has y's shape. In place:
 * pass the residual stream as both y and x. */
void vkc_op_gated_add (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *gate, const VkcTensor *v);
/* y[b, c] = mean over n of x[b, n, c], accumulated in fp32; x [B, N, C] or [N, C], y [B, C]
 * or [C] (views with row strides allowed). */
void vkc_op_mean_tokens (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x);

/* For tests: split bindings larger than `bytes` (0 = the device's maxStorageBufferRange),
 * here and in vkc_ops_norm. Process-wide. */
void vkc_eltwise_set_binding_limit (VkDeviceSize bytes);

/* ---------------------------------------------------------------------------------------
 * Row plans, shared with vkc_ops_norm.c (not meant for model code).
 *
 * The operands of a row op viewed as rows × cols with the row index split into three levels
 * (i0, i1, i2) of sizes n[0..2] and one stride per level and operand (0 = broadcast), after
 * dropping size-1 dims and merging dims that are contiguous in every operand. Operand 0 is
 * the output and defines the shape.
 * ------------------------------------------------------------------------------------- */

#define VKC_ROW_MAX_OPS 4

typedef struct {
  int n_ops;
  int64_t n[3];
  int64_t cols;
  int64_t stride[VKC_ROW_MAX_OPS][3];
  VkcTensor t[VKC_ROW_MAX_OPS];
} VkcRowPlan;

/* A box of rows: level l covers [start[l], start[l] + n[l]); view[k] is operand k's
 * [n0, n1, n2, cols] view of it (strides as in the plan, 0 for levels of size 1). */
typedef struct {
  int64_t start[3], n[3];
  VkcTensor view[VKC_ROW_MAX_OPS];
} VkcRowPiece;

typedef void (*VkcRowPieceFunc) (const VkcRowPlan *plan, const VkcRowPiece *piece, void *user);

/* keep_dim0: the operands' dim 0 stays level 0 (images of NHWC tensors), even of size 1. */
void vkc_row_plan_init (VkcRowPlan *plan, int n_ops, const VkcTensor *const *ops, bool keep_dim0);
/* Call `func` for pieces covering all rows, in row order, each binding within dev's limit. */
void vkc_row_plan_split (VkcDevice *dev, const VkcRowPlan *plan, VkcRowPieceFunc func, void *user);
/* The binding size launchers split at (device limit or the test override), minus the slack
 * of the binding's start alignment. */
VkDeviceSize vkc_eltwise_usable_range (VkcDevice *dev);

G_END_DECLS
