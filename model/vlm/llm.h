/* The Qwen2.5-VL language model as DeepGen uses it (MODEL.md §1.5–§1.7, §2.1): token
 * embeddings with image embeddings and meta queries spliced in, the decoder stack (GQA with
 * q/k/v biases, M-RoPE from 3-D positions, causal attention with the left-padding rule of
 * §1.7: a pad query sees no key and its attention output is exactly 0), and the hidden states
 * h[k], k = n−1, n−7, … (range(n−1, 0, −6)) concatenated deepest first for every position —
 * the connector's input. For Describe (describe.h) also the final norm, the output head
 * (lm_head) on the last position and a KV cache for token-by-token decoding.
 *
 * Precision (weights.h): bf16 mode rounds every tensor the reference materialises in bf16
 * (q/k/v, the rotated q/k, the attention output, each projection and residual sum, the SiLU
 * output and the gated product, the RMSNorm rule) and uses bf16 cos/sin tables built from the
 * bf16-cast inv_freq buffer, as the reference's model.to(bfloat16) does. The one difference
 * left: the reference rotates q/k in bf16 arithmetic (two rounded products and a rounded sum),
 * this code in fp32 with one rounding; and torch's bf16 attention rounds its probabilities to
 * bf16 before multiplying V. Both are within one bf16 ulp per element. */
#pragma once

#include "config.h"
#include "llm_layout.h"
#include "lora.h"
#include "weights.h"

G_BEGIN_DECLS

typedef struct _DgLlm DgLlm;

/* Test/debug hook, called while recording: "llm.h<k>" (k = 0..n_layers, the
 * output_hidden_states convention of MODEL.md §0: h0 = inputs, h<n> after the final norm).
 * @t holds the value at that point of the command stream only; record a copy to keep it. The
 * final norm is computed only when a tap is given (DeepGen does not use it). */
typedef struct {
  DgTapFunc func;
  gpointer user_data;
} DgLlmTap;

/* Uploads the decoder of @st (keys "<prefix>layers.N.…", "<prefix>embed_tokens.weight",
 * "<prefix>norm.weight"; prefix "model." or "model.language_model.") with @lora's text adapters
 * merged when @lora is not NULL. The embedding table stays in @st's mapping and rows are
 * gathered on the host when a batch is embedded (it is 151,936 × 2048: 622 MB of bf16 that
 * would otherwise sit in GPU memory), so @st must outlive the DgLlm. */
DgLlm *dg_llm_load (VkcDevice *dev, const DgQwenTextConfig *cfg, const DgSafetensors *st, const char *prefix,
                    DgPrecision precision, DgWeightFormat weights, DgLora *lora, GError **error);
void dg_llm_free (DgLlm *llm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgLlm, dg_llm_free)

const DgQwenTextConfig *dg_llm_config (const DgLlm *llm);

/* The stacked hidden states, deepest first: [35, 29, 23, 17, 11, 5] for 36 layers. */
guint dg_llm_selected (const DgLlm *llm, const guint **layers);

/* A batch of rows: the per-token masks and positions the decoder needs. */
typedef struct {
  guint n_rows, seq_len;
  const guint8 *attention_mask; /* [n_rows, seq_len]: 0 = (left) padding */
  const gint64 *position_ids;   /* [3, n_rows, seq_len]: temporal, height, width (MODEL.md §1.6) */
} DgLlmBatch;

/* The M-RoPE tables the decoder uses: cos, sin [n_rows, seq_len, head_dim] (bf16 values in
 * bf16 mode). For tests. */
void dg_llm_rotary_tables (const DgLlm *llm, const DgLlmBatch *batch, float *cos_t, float *sin_t);

/* One <|image_pad|> run of a row, filled with consecutive rows of @embeds. */
typedef struct {
  guint row, start, n_tokens;
  const VkcTensor *embeds; /* [n_tokens, hidden] (or more rows: the first n_tokens) */
} DgLlmImageRun;

/* Records the assembly of the decoder input (MODEL.md §1.5) into a new arena tensor
 * *inputs_embeds [n_rows, seq_len, hidden]: columns < @n_text are token embeddings of @ids
 * [n_rows, seq_len] (pads included: no padding_idx zeroing), then the @runs overwrite their
 * image-pad columns, and columns n_text… take @meta_queries [seq_len − n_text, hidden] on
 * every row. Errors (DG_ERROR_INVALID_ARGUMENT): an id outside the table, a run outside the
 * text; DG_ERROR_OOM / DEVICE from the arena or the upload. */
gboolean dg_llm_embed (DgLlm *llm, VkcCmd *cmd, DgArena *arena, const gint32 *ids, guint n_rows, guint seq_len,
                       guint n_text, const VkcTensor *meta_queries, const DgLlmImageRun *runs, guint n_runs,
                       VkcTensor *inputs_embeds, GError **error);

/* Records the decoder over @inputs_embeds [n_rows, seq_len, hidden] (not modified) into a new
 * arena tensor *merged [n_rows, seq_len, n_selected · hidden]. FALSE when the arena ran out. */
gboolean dg_llm_forward (DgLlm *llm, VkcCmd *cmd, DgArena *arena, const DgLlmBatch *batch,
                         const VkcTensor *inputs_embeds, VkcTensor *merged, const DgLlmTap *tap);

/* Decoder layers first..first+count−1 in place on the residual stream @h [n_rows, seq_len,
 * hidden] (module tests). */
gboolean dg_llm_forward_layers (DgLlm *llm, VkcCmd *cmd, DgArena *arena, const DgLlmBatch *batch, const VkcTensor *h,
                                guint first, guint count, const DgLlmTap *tap);

/* ---- decoding (describe.c, MODEL.md §13) ------------------------------------------------- */

/* Uploads the output head [vocab, hidden] for dg_llm_decode: embed_tokens when the config ties
 * the word embeddings (tie_word_embeddings, Qwen2.5-VL-3B), else the top-level lm_head.weight
 * (DG_ERROR_MISSING when absent), in the weight format the decoder was loaded with. The
 * embedding adapter of a LoRA, if any, is not applied to it (an unmerged PEFT embedding adapter
 * changes the lookup only). Once per DgLlm; later calls do nothing. */
gboolean dg_llm_load_head (DgLlm *llm, GError **error);

/* The keys and values of every layer for the tokens decoded so far, on the device: per layer
 * two f32 tensors [1, capacity, n_kv_heads · head_dim] holding the rotated keys and the values
 * exactly as the attention of those tokens used them. */
typedef struct _DgLlmCache DgLlmCache;

/* A cache for @capacity tokens (prompt + generated) in its own device pool. */
DgLlmCache *dg_llm_cache_new (DgLlm *llm, guint capacity, GError **error);
void dg_llm_cache_free (DgLlmCache *cache);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgLlmCache, dg_llm_cache_free)
/* Tokens cached (recorded so far). */
guint dg_llm_cache_length (const DgLlmCache *cache);

/* Records the decoder over one row @inputs_embeds [1, S, hidden] whose M-RoPE positions are
 * @position_ids [3, S] (t, h, w), then the final norm and the output head (dg_llm_load_head
 * first) on its last token into a new arena tensor *logits [1, 1, vocab].
 *  - @cache NULL: the plain path, one causal pass over the whole sequence (no cache).
 *  - @cache: the S tokens follow the dg_llm_cache_length tokens already cached; their keys and
 *    values are appended and they attend to the whole cache. Either S tokens into an empty cache
 *    (the prompt: causal) or one token (a decoding step). The length grows by S.
 * FALSE (with a g_critical) on a broken contract or when the cache is full; FALSE when the
 * arena ran out (dg_arena_check has the error). */
gboolean dg_llm_decode (DgLlm *llm, VkcCmd *cmd, DgArena *arena, DgLlmCache *cache, const gint64 *position_ids,
                        const VkcTensor *inputs_embeds, VkcTensor *logits);

G_END_DECLS
