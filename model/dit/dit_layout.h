/* The DiT's layout (MODEL.md §5), host-only: its numbers, its weights in load order, and the
 * activations dg_dit_forward takes from its arena. dit.c loads and runs from it, the memory plan
 * (plan.c) counts from it (DESIGN.md §5). */
#pragma once

#include <glib.h>

#include "config.h"
#include "layout.h"

G_BEGIN_DECLS

/* ---- model numbers (MODEL.md §5, diffusers SD3Transformer2DModel) ---------------------- */

#define DIT_FREQ_DIM 256 /* Timesteps(256, flip_sin_to_cos=True, shift 0) (MODEL.md §5.2) */
#define DIT_FF_MULT 4    /* FeedForward inner width = 4·D (1536 → 6144) */
#define DIT_PATCH 2      /* the only patch size the patch-conv op implements */

/* AdaLayerNormZero chunks (MODEL.md §5.4, §10 item 9): (shift, scale, gate) for attention, then
 * for the MLP, then (dual blocks, SD35AdaLayerNormZeroX) for attn2. */
enum {
  SHIFT_MSA,
  SCALE_MSA,
  GATE_MSA,
  SHIFT_MLP,
  SCALE_MLP,
  GATE_MLP,
  SHIFT_MSA2,
  SCALE_MSA2,
  GATE_MSA2,
  N_CHUNKS_DUAL
};
#define N_CHUNKS_PLAIN 6
/* AdaLayerNormContinuous (last block's context norm, norm_out): (scale, shift) (MODEL.md §5.5, §5.6). */
enum { CONT_SCALE, CONT_SHIFT, N_CHUNKS_CONT };

/* ---- weights ------------------------------------------------------------------------------ */

/* Where a tensor goes (DgLayoutTensor.slot). Linear layers come as weight (sub 0) then bias
 * (sub 1); the projections of an attention stream (DIT_IMG, DIT_CTX, DIT_IMG2) as sub = 2·p + k
 * for p = q, k, v, out (k 0 weight, 1 bias), then sub 8 norm_q and 9 norm_k. */
typedef enum {
  DIT_PATCH_W,
  DIT_PATCH_B, /* pos_embed.proj */
  DIT_T1,
  DIT_T2,
  DIT_P1,
  DIT_P2, /* time_text_embed */
  DIT_CTX_EMB,
  DIT_NORM_OUT,
  DIT_PROJ_OUT,
  DIT_POS_TABLE, /* pos_embed.pos_embed: host, cropped per image size */
  DIT_NORM1,
  DIT_NORM1_CTX, /* per block (layer ≥ 0) */
  DIT_IMG,
  DIT_CTX,
  DIT_IMG2,
  DIT_FF1,
  DIT_FF2,
  DIT_FFC1,
  DIT_FFC2,
} DgDitSlot;

#define DIT_SUB_NORM_Q 8
#define DIT_SUB_NORM_K 9

/* The last block only feeds the context into keys and values (context_pre_only). */
gboolean dg_dit_layout_pre_only (const DgDitConfig *c, guint layer);

/* Walks transformer/'s tensors in the order dit.c loads them: the embeddings and heads, the
 * position table (when the config has one), then each block. */
gboolean dg_dit_layout_weights (const DgDitConfig *c, DgLayoutVisit visit, gpointer user_data, GError **error);

/* ---- activations -------------------------------------------------------------------------- */

/* What one dg_dit_forward of B rows takes from its arena, in order: each piece's shape (f32,
 * except the u32 key mask of padded batches). L image tokens of the longest row (target +
 * references), S context tokens. */
typedef enum {
  DIT_ACT_TEMB,
  DIT_ACT_TOKENS,
  DIT_ACT_CTX,
  DIT_ACT_KEY_VALID, /* dg_dit_forward */
  DIT_ACT_SINUS,
  DIT_ACT_TIME_H,
  DIT_ACT_TIME_E,
  DIT_ACT_POOLED_E, /* dg_dit_time_embed */
  DIT_ACT_SILU,
  DIT_ACT_MOD,
  DIT_ACT_CMOD, /* a block pass */
  DIT_ACT_XN,
  DIT_ACT_XA,
  DIT_ACT_XB,
  DIT_ACT_CN,
  DIT_ACT_CA,
  DIT_ACT_SCRATCH, /* q, k, v and the attention output, then the MLP hidden */
  DIT_N_ACTS
} DgDitAct;

void dg_dit_layout_acts (const DgDitConfig *c, gint64 B, gint64 L, gint64 S, gboolean padded,
                         DgLayoutAct acts[DIT_N_ACTS]);

/* Bytes of activations dg_dit_forward takes from its arena for B rows of L image tokens (target
 * + references, the longest row) and S context tokens — for memory plans; no weights needed
 * (add per-allocation alignment slack). The position crops go to the weights pool:
 * 4·(h/2)(w/2)·D bytes per distinct image size. */
/* (the key mask of a padded batch included) */
guint64 dg_dit_activation_bytes (const DgDitConfig *config, gint64 B, gint64 L, gint64 S);


G_END_DECLS
