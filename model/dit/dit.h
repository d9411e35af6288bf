/* The DeepGen DiT: SD3.5-Medium MMDiT-X with reference-image (Kontext) tokens (MODEL.md §5).
 *
 *   g_autoptr (DgDit) dit = dg_dit_load (dev, "model/transformer", DG_PRECISION_BF16, DG_WEIGHTS_RELEASED, &error);
 *   DgDitInput in = { .latents = &x, .timestep = &t, .context = &seq, .pooled = &pooled,
 *                     .n_refs = n_refs, .refs = refs };
 *   dg_dit_forward (dit, cmd, arena, &in, &v, &error);   records; the caller submits
 *
 * Layouts: latents and references NHWC [B, h, w, C] (h, w in latent pixels, even); tokens
 * [B, N, D]; everything f32 on the GPU. Batch rows are independent: classifier-free guidance
 * puts its uncond and cond rows side by side (MODEL.md §1.9), and rows may carry different
 * reference lists — rows of different token counts are right-padded and masked (§5.3).
 *
 * Recording: every function here only records dispatches into a VkcCmd and takes its
 * activations from a DgArena, so a whole forward pass is one submission that can be submitted
 * again for the next step after the caller rewrote the latents and timestep tensors in place.
 * The only host work at record time is cropping the position table for a new image size
 * (uploaded once, cached in the DgDit).
 *
 * Precision (DgPrecision): DG_PRECISION_F32 computes in fp32 from fp32-widened weights (the
 * parity mode). DG_PRECISION_BF16 keeps matrices bf16 and rounds activations to bf16 where the
 * reference materialises a bf16 tensor (every Linear/conv output, norm output, attention
 * output, activation, each step of the AdaLN modulation and gated residuals; the position
 * table): the reference runs the whole DiT in bf16 (§10.1). Not reproduced: torch's CPU
 * attention rounds the softmax probabilities to bf16 before P·V; ours keeps them fp32. */
#pragma once

#include <glib.h>

#include "config.h"
#include "deepgen.h"
#include "dit_layout.h"
#include "vkc.h"
#include "weights.h"

G_BEGIN_DECLS

typedef struct _DgDit DgDit;

/* Loads transformer/ (config.json + diffusion_pytorch_model.safetensors, or a folder holding
 * them): every weight is shape-checked against the config. The position table
 * `pos_embed.pos_embed` stays in the mapped file and is cropped per image size on demand; when a
 * file lacks it, it is recomputed like diffusers' get_2d_sincos_pos_embed.
 * Errors: DG_ERROR_MISSING / _SHAPE / _FORMAT / _CONFIG (bad files), _UNSUPPORTED (a config we do
 * not implement: patch size ≠ 2, LayerNorm q/k norm, no pos_embed_max_size), _OOM, _DEVICE. */
DgDit *dg_dit_load (VkcDevice *dev, const char *path, DgPrecision precision, DgWeightFormat weights, GError **error);
void dg_dit_free (DgDit *dit);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgDit, dg_dit_free)

const DgDitConfig *dg_dit_config (const DgDit *dit);
/* Bytes of weights on the GPU (the position crops made so far included). */
guint64 dg_dit_weight_bytes (const DgDit *dit);
/* Device memory its weights' pool reserves (the position crops made so far included). */
guint64 dg_dit_weight_reserved (const DgDit *dit);

/* Called at record time with intermediate tensors; it may record commands (e.g. a vkc_op_copy of
 * `t` into a buffer of its own — the tensors are reused by later blocks, so read them only
 * through such a copy). Names: "temb", "img_in", "ctx_in", "block{i}.img", "block{i}.ctx"
 * (every block but the last), "time.sinusoid", "time.timestep_emb". img tensors hold all image
 * tokens of a row (target, then references, then padding). NULL func = no observer. */
void dg_dit_set_observer (DgDit *dit, DgTapFunc func, gpointer user_data);

typedef struct {
  const VkcTensor *latents;  /* [B, h, w, in_channels] noisy latents */
  const VkcTensor *timestep; /* [B] f32: 1000·σ */
  const VkcTensor *context;  /* [B, S, joint_attention_dim]: the SCB sequence */
  const VkcTensor *pooled;   /* [B, pooled_projection_dim]: the SCB pooled vector */
  /* Reference latents (§5.3): n_refs[b] per row (NULL = none anywhere), and refs the rows'
   * lists one after another, each [h_j, w_j, in_channels] or [1, h_j, w_j, in_channels]. */
  const guint *n_refs;
  const VkcTensor *const *refs;
} DgDitInput;

/* Records the whole DiT: out [B, h, w, out_channels] (NHWC velocity) for the target tokens.
 * Errors: shapes that do not fit the config or the position table (DG_ERROR_INVALID_ARGUMENT),
 * activation memory (DG_ERROR_OOM, from the arena), a position crop upload (DG_ERROR_OOM/_DEVICE). */
gboolean dg_dit_forward (DgDit *dit, VkcCmd *cmd, DgArena *arena, const DgDitInput *in, const VkcTensor *out,
                         GError **error);

/* dg_dit_activation_bytes: dit_layout.h. */

/* ---- the stages, for tests and for callers that drive the blocks themselves ------------- */

/* temb [B, D] = timestep_embedder(sinusoid(t)) + text_embedder(pooled). */
gboolean dg_dit_time_embed (DgDit *dit, VkcCmd *cmd, DgArena *arena, const VkcTensor *timestep, const VkcTensor *pooled,
                            const VkcTensor *temb, GError **error);
/* tokens [B, (h/2)(w/2), D] = patch conv of latents [B, h, w, C] + the centre-cropped position
 * table of that size. tokens may be a token-range view of a larger tensor. */
gboolean dg_dit_patch_embed (DgDit *dit, VkcCmd *cmd, DgArena *arena, const VkcTensor *latents, const VkcTensor *tokens,
                             GError **error);
/* One transformer block, in place on img [B, L, D] and ctx [B, S, D] (ctx is left unchanged by
 * the last, context_pre_only block). key_valid: U32 [B, L + S] (image tokens then context; 1 =
 * valid) when some rows are padded, else NULL (§5.3: pad tokens attend only to themselves). */
gboolean dg_dit_block (DgDit *dit, VkcCmd *cmd, DgArena *arena, guint layer, const VkcTensor *img, const VkcTensor *ctx,
                       const VkcTensor *temb, const VkcTensor *key_valid, GError **error);

/* Row gy, columns left .. left+n−1 of the full M×M position table, [n, D] into dst, computed
 * like diffusers' get_2d_sincos_pos_embed (float32 coordinates index/(M/base), float64 sin/cos,
 * float32 result). Used when a file lacks `pos_embed.pos_embed`; exposed for its test. */
void dg_dit_pos_embed_row (const DgDitConfig *config, gint64 gy, gint64 left, gint64 n, float *dst);

G_END_DECLS
