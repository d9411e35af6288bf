/* DeepGen's LLM input: prompt rows, left padding, meta-query slots and 3-D M-RoPE positions
 * (MODEL.md §1.2, §1.3, §1.5, §1.6), as plain arrays for the VLM.
 *
 * For B requests the batch has 2B rows, [cond_1..cond_B, uncond_1..uncond_B]; each row is its
 * template string tokenised as a whole, rows are left-padded with the pad id to the longest one,
 * and n_queries meta-query slots follow on every row. Everything is computed on the host from the
 * tokenizer, the reference image sizes and the vision config; no weights are needed. */
#pragma once

#include <glib.h>

#include "config.h"
#include "tokenizer.h"

G_BEGIN_DECLS

/* DeepGen resizes every reference image by 28/32 before the ViT (MODEL.md §1.4), so reference
 * sides must be multiples of this. */
#define DG_REFERENCE_MULTIPLE 32

/* The ViT grid of one reference image of the given size (MODEL.md §1.4). */
typedef struct {
  guint resized_h, resized_w;   /* after the 28/32 rescale: 7·H/8, 7·W/8 */
  guint grid_t, grid_h, grid_w; /* image_grid_thw: 1, resized/patch_size */
  guint merged_h, merged_w;     /* grid / spatial_merge_size */
  guint n_tokens;               /* merged_h · merged_w = number of <|image_pad|> tokens */
} DgVitGrid;

/* Fills @out for a reference of @height × @width pixels. @vision gives patch_size and
 * spatial_merge_size (NULL: Qwen2.5-VL's 14 and 2). Sizes that are not positive multiples of
 * DG_REFERENCE_MULTIPLE (or too large) give DG_ERROR_INVALID_ARGUMENT. */
gboolean dg_vit_grid (guint height, guint width, const DgQwenVisionConfig *vision, DgVitGrid *out, GError **error);

/* One generation or edit request. */
typedef struct {
  const char *prompt;       /* user prompt P; surrounding whitespace is stripped as the reference
                             * scripts do (Python str.strip()) */
  const char *negative;     /* negative prompt NP, used exactly as given; NULL = "" */
  guint n_images;           /* 0: text-to-image; ≥ 1: edit with that many reference images */
  const guint *image_sizes; /* [n_images][2]: height, width of each reference in pixels */
} DgPromptRequest;

/* One <|image_pad|> run: where the VLM scatters the ViT embeddings of one reference image. */
typedef struct {
  guint row;       /* batch row (cond rows 0..B−1, uncond rows B..2B−1) */
  guint request;   /* request index (row mod B) */
  guint reference; /* which of the request's reference images */
  guint start;     /* column of the first <|image_pad|> token */
  DgVitGrid grid;  /* grid.n_tokens consecutive columns from start */
} DgPromptImage;

typedef struct {
  guint n_requests; /* B */
  guint n_rows;     /* 2B */
  guint text_len;   /* L: longest tokenised row; shorter rows are left-padded */
  guint n_queries;  /* meta-query slots after the text */
  guint seq_len;    /* L + n_queries */
  gint32 pad_id;
  char **strings;         /* [n_rows] the template strings (NULL-terminated vector), for debugging */
  guint *row_len;         /* [n_rows] unpadded token count of each row (without queries) */
  gint32 *input_ids;      /* [n_rows, seq_len]: pads = pad_id, query slots = 0 (the id the reference
                           * uses for them in get_rope_index; their embeddings are the meta queries) */
  guint8 *attention_mask; /* [n_rows, seq_len]: 0 on pads, 1 elsewhere (queries included) */
  gint64 *position_ids;   /* [3, n_rows, seq_len]: temporal, height, width; 1 on pads */
  /* Scatter image embeddings by this list, not by searching input_ids for <|image_pad|>: a
   * text-to-image prompt may contain that token's text, which the reference tokenises (and
   * embeds) as the plain token. */
  guint n_images;         /* all image runs of the batch (twice the references: cond + uncond) */
  DgPromptImage *images;  /* row-major, then in prompt order: the order of the reference's
                             * image-embedding concatenation */
  guint *row_first_image; /* [n_rows + 1]: images of row r are [row_first_image[r], row_first_image[r+1]) */
} DgPromptBatch;

/* Builds the batch for @n_requests requests with @n_queries meta queries per row (the row count
 * of the connector's meta_queries tensor: 128 in the release). @vision: see dg_vit_grid.
 *
 * A request with images uses the edit template, one without the text-to-image template; each row's
 * positions follow MODEL.md §1.6 (for a row without images that is the plain cumsum rule).
 * Errors (DG_ERROR_INVALID_ARGUMENT): text that is not valid UTF-8; a reference size the ViT cannot
 * take; in an edit request, a prompt that contains the text of a vision token (“<|vision_start|>”,
 * “<|image_pad|>”, ...), which would break the image runs. DG_ERROR_FORMAT: the tokenizer lacks a
 * token the template needs. */
DgPromptBatch *dg_prompt_batch_new (DgTokenizer *tok, const DgPromptRequest *requests, guint n_requests,
                                    guint n_queries, const DgQwenVisionConfig *vision, GError **error);
void dg_prompt_batch_free (DgPromptBatch *batch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgPromptBatch, dg_prompt_batch_free)

/* The template string of one row (MODEL.md §1.2): @text is P or NP, @n_tokens[i] the pad count of
 * reference i (n_images = 0: text-to-image). Free with g_free. */
char *dg_prompt_row_string (const char *text, guint n_images, const guint *n_tokens);

/* Python's str.strip(): removes leading and trailing characters for which str.isspace() is true. */
char *dg_prompt_strip (const char *text);

G_END_DECLS
