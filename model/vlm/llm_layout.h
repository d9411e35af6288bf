/* The language model's layout (MODEL.md §1.7, §2.1), host-only: which hidden states are stacked,
 * its weights in load order, and the activations the embedding and the forward take from the
 * arena. llm.c loads and runs from it, the memory plan counts from it (DESIGN.md §5). */
#pragma once

#include <glib.h>

#include "config.h"
#include "layout.h"

G_BEGIN_DECLS

/* The hidden states stacked for the connector, deepest first: range(n_layers − 1, 0, −6)
 * (MODEL.md §1.7). Returns how many; @layers (DG_CONFIG_MAX_LAYERS entries, or NULL) gets them. */
guint dg_llm_layout_selected (const DgQwenTextConfig *c, guint *layers);

/* Where a tensor goes (DgLayoutTensor.slot; sub 0 weight, 1 bias). Names are relative to the
 * language model's prefix ("model." or "model.language_model."). */
typedef enum {
  LLM_EMBED, /* embed_tokens: stays in the mapped file, rows gathered on the host */
  LLM_IN_NORM,
  LLM_POST_NORM, /* per layer */
  LLM_Q,
  LLM_K,
  LLM_V,
  LLM_O,
  LLM_GATE,
  LLM_UP,
  LLM_DOWN,
  LLM_NORM, /* the final norm */
} DgLlmSlot;

gboolean dg_llm_layout_weights (const DgQwenTextConfig *c, DgLayoutVisit visit, gpointer user_data, GError **error);

/* The arena of dg_llm_embed then dg_llm_forward for R rows of S tokens, in order (f32 except the
 * u32 key mask). */
typedef enum {
  LLM_ACT_EMBEDS, /* inputs_embeds (dg_llm_embed) */
  LLM_ACT_COS,
  LLM_ACT_SIN,
  LLM_ACT_VALID,
  LLM_ACT_XN,
  LLM_ACT_Q,
  LLM_ACT_K,
  LLM_ACT_V,
  LLM_ACT_ATTN,
  LLM_ACT_TMP,
  LLM_ACT_GATE,
  LLM_ACT_UP,
  LLM_ACT_H,
  LLM_ACT_MERGED, /* the residual stream, the stacked hidden states */
  LLM_N_ACTS
} DgLlmAct;

void dg_llm_layout_acts (const DgQwenTextConfig *c, gint64 R, gint64 S, DgLayoutAct acts[LLM_N_ACTS]);

/* Device bytes of a KV cache (llm.h DgLlmCache) for @capacity tokens: per layer a key and a value
 * tensor [1, capacity, n_kv_heads · head_dim] in f32, each a 256-byte aligned pool piece. */
guint64 dg_llm_layout_cache_bytes (const DgQwenTextConfig *c, guint capacity);

G_END_DECLS
