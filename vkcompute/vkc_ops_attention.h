/* Attention (tiled, online softmax), softmax over the last dim, rotate-half rotary embedding. */
#pragma once
#include "vkc.h"

G_BEGIN_DECLS

typedef struct {
  int heads_q, heads_kv, head_dim; /* heads_q a multiple of heads_kv (grouped-query) */
  float scale;                     /* logits = scale · q·k (usually 1/√head_dim) */
  bool causal;                     /* query i sees keys ≤ i; needs Nq == Nk */
  /* U32 [B, Nk], 1 = valid key, or NULL (all valid). Invalid keys are never attended. */
  const VkcTensor *key_valid;
  /* With key_valid (and Nq == Nk): a query whose own key is invalid attends only to itself
   * (the DiT padding rule, MODEL.md §5.3 item 4); otherwise such a query follows the normal
   * rules (and, with no valid key left, outputs 0). */
  bool pad_self;
  /* U32 [B, Nq, 2] (last two dims contiguous): query i attends only to keys in
   * [begin, end) — window masks after grouping tokens by window — or NULL. */
  const VkcTensor *kv_range;
} VkcAttnParams;

/* o = softmax(scale·q·kᵀ + mask)·v per head (scalar fp32, or cooperative matrices: see
 * vkc_attention_describe).
 *  q [B, Nq, Hq·D], k and v [B, Nk, Hkv·D], o [B, Nq, Hq·D]: f32, channel stride 1, batch and
 *  token strides free (q, k, v may be channel slices of one fused qkv tensor); query head h
 *  uses kv head h / (Hq/Hkv). o must not overlap q, k or v.
 *  Masks combine: key_valid, causal and kv_range all restrict the allowed keys (pad_self
 *  replaces them by the diagonal for pad queries). A query with no allowed key outputs exactly
 *  0 (flash-attention-2 varlen semantics, MODEL.md §1.7). D may be anything up to 512.
 *  Tensors larger than one storage binding are split by batch, then by query rows (the keys
 *  and values of one batch row must fit one binding). */
void vkc_op_attention (VkcCmd *cmd, const VkcTensor *o, const VkcTensor *q, const VkcTensor *k, const VkcTensor *v,
                       const VkcAttnParams *p);

/* y = softmax(x) over the last dim in fp32 (max-subtracted). x, y f32 up to 4-D with the
 * same shape, last dim contiguous, other strides free; y may be x. A row that is all −∞
 * gives 0. */
void vkc_op_softmax (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x);

/* Rotate-half rotary embedding on the first rot_dim channels of each head:
 * y = x·cos + rotate_half(x)·sin, rotate_half([a, b]) = [−b, a] with halves of rot_dim/2;
 * channels rot_dim..D−1 are copied.
 *  x, y [B, N, heads·D] f32, channel stride 1, batch/token strides free, y may be x (in place);
 *  cos, sin [B or 1, N, rot_dim] f32 per-token tables (shape[0] == 1 broadcasts over batch),
 *  last dim contiguous. rot_dim even, ≤ D. */
void vkc_op_rotary (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *cos, const VkcTensor *sin,
                    int heads, int rot_dim);

/* Knobs for tests and benchmarks (process-wide; NULL restores the defaults). The environment
 * variable DEEPGEN_VK_DISABLE_SUBGROUP=1 also turns the subgroup paths off. */
typedef struct {
  int block_q, block_k;     /* attention tile: query rows, keys (powers of two); 0 = auto */
  int kv_alias;             /* attention: V reuses K's shared memory; -1 = auto, 0 / 1 */
  bool no_subgroup;         /* shared-memory reductions even where subgroup ops exist */
  VkDeviceSize max_binding; /* split bindings above this many bytes; 0 = maxStorageBufferRange */
  /* Attention path: 0 = auto, 1 = the scalar kernel, 2 = the coopmat kernel where it applies. */
  int path;
} VkcAttnTuning;

#define VKC_ATTN_TUNING_DEFAULT { 0, 0, -1, false, 0, 0 }

/* Whether vkc_op_attention takes the cooperative-matrix kernel (attention_coopmat.comp) for this
 * head dim on this device, and why in one line (for `deepgen info` and tests). AUTO takes it on
 * GPUs with usable cooperative matrices for head dims that are a multiple of the coopmat shape
 * (64, 80, 128), not on CPU devices unless DEEPGEN_VK_FORCE_COOPMAT=1. fp16 Q·scale, K, V, P
 * with fp32 softmax and accumulation; the inputs must lie within fp16's range (they are outputs
 * of normalised projections in DeepGen; qk-norm in the DiT). */
char *vkc_attention_describe (VkcDevice *dev, int head_dim);

void vkc_attention_set_tuning (const VkcAttnTuning *tuning);

G_END_DECLS
