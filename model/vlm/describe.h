/* Describe (MODEL.md §13): the VLM writes a caption of an image — greedy autoregressive decoding
 * with the language model's output head, as transformers'
 * Qwen2_5_VLForConditionalGeneration.generate(do_sample=False) does.
 *
 * The prompt is Qwen2.5-VL's chat template for one user turn holding the image and an
 * instruction (with the template's default system turn and the assistant header); the image
 * goes through the same vision path as DeepGen's reference images (dg_vlm_preprocess, the ViT).
 * The prompt is run once into a KV cache, then each new token is one decoder step that attends
 * to the cache (dg_llm_decode); positions follow get_rope_index: M-RoPE (t, h, w) over the
 * image run, and every token after it at max + 1, max + 2, … on all three axes. The plain path
 * (no cache: the whole sequence again for every token) stays for tests. */
#pragma once

#include "tokenizer.h"
#include "vlm.h"

G_BEGIN_DECLS

#define DG_DESCRIBE_DEFAULT_INSTRUCTION "Describe this image in one sentence."
#define DG_DESCRIBE_DEFAULT_MAX_TOKENS 77
#define DG_DESCRIBE_MAX_TOKENS 4096

/* Called after each token with its logits (host, [vocab]), before the stop check. */
typedef void (*DgDescribeTokenFunc) (guint index, gint32 id, const float *logits, guint vocab, gpointer user_data);

typedef struct {
  const char *instruction; /* NULL or blank = DG_DESCRIBE_DEFAULT_INSTRUCTION */
  guint max_new_tokens;    /* 0 = DG_DESCRIBE_DEFAULT_MAX_TOKENS; at most DG_DESCRIBE_MAX_TOKENS */
  gboolean plain;          /* no KV cache: recompute the whole sequence for every token (tests) */
  /* What the activation arena will hand out at most (the memory plan's encode_arena, which covers
   * the ViT and the prompt's pass), so that it reserves that instead of default-sized blocks;
   * 0 = default blocks. */
  guint64 arena_bytes;
  GCancellable *cancellable;
  /* Progress after the image and after each token: @done tokens of at most @max. */
  void (*progress) (guint done, guint max, gpointer user_data);
  DgDescribeTokenFunc on_token; /* tests */
  gpointer user_data;
} DgDescribeOptions;

#define DG_DESCRIBE_OPTIONS_INIT { NULL, 0, FALSE, 0, NULL, NULL, NULL, NULL }

/* The prompt string: Qwen2.5-VL's chat template with @n_image_tokens <|image_pad|> tokens and
 * @instruction after the image. g_free. */
char *dg_describe_prompt (const char *instruction, guint n_image_tokens);

/* get_rope_index for one row of @n tokens whose image run of @grid starts at @image_start:
 * @positions [3, n] (t, h, w). Tokens after the image continue at its largest position + 1. */
void dg_describe_positions (guint n, guint image_start, const DgVitGrid *grid, gint64 *positions);

/* Captions @image (a VLM loaded with its vision tower). Returns the generated ids (a GArray of
 * gint32), the stop token (the config's eos_token_id or <|im_end|>) not included; the text is
 * dg_tokenizer_decode of them. Errors: DG_ERROR_INVALID_ARGUMENT (no vision tower, an image size
 * the ViT cannot take, an instruction holding a vision token's text), DG_ERROR_CANCELLED, those of
 * the output head (dg_llm_load_head) and of the device. */
GArray *dg_vlm_describe (DgVlm *vlm, DgTokenizer *tok, const DgVlmImage *image, const DgDescribeOptions *options,
                         GError **error);

G_END_DECLS
