#include "prompt.h"

#include <string.h>

#include "dg_error.h"
#include "dg_i18n.h"

/* The template pieces of DeepGen's code (MODEL.md §1.2; the tiny model's prompt_template.json).
 * Only their text is fixed here: their ids always come from the tokenizer. */
#define IM_START "<|im_start|>"
#define IM_END "<|im_end|>"
#define VISION_START "<|vision_start|>"
#define VISION_END "<|vision_end|>"
#define IMAGE_PAD "<|image_pad|>"
#define VIDEO_PAD "<|video_pad|>"
#define T2I_PREFIX IM_START "user\nGenerate an image: "
#define EDIT_PREFIX IM_START "user\n"
#define SUFFIX IM_END "\n" IM_START "assistant\n"

/* Qwen2.5-VL's vision tower when no config is given (MODEL.md §2.2). */
#define DEFAULT_PATCH_SIZE 14
#define DEFAULT_MERGE_SIZE 2
/* Far above any size the model can run; keeps every count inside 32 bits. */
#define MAX_REFERENCE_SIDE 16384

gboolean
dg_vit_grid (guint height, guint width, const DgQwenVisionConfig *vision, DgVitGrid *out, GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  guint patch = vision ? vision->patch_size : DEFAULT_PATCH_SIZE;
  guint merge = vision ? vision->spatial_merge_size : DEFAULT_MERGE_SIZE;
  g_return_val_if_fail (patch > 0 && merge > 0, FALSE);

  guint sides[2] = { height, width };
  guint resized[2];
  for (guint i = 0; i < 2; i++) {
    /* The reference code resizes with scale_factor 28/32; exact only on multiples of 32. */
    resized[i] = sides[i] / DG_REFERENCE_MULTIPLE * 28;
    if (sides[i] == 0 || sides[i] % DG_REFERENCE_MULTIPLE != 0 || sides[i] > MAX_REFERENCE_SIDE ||
        resized[i] % (patch * merge) != 0) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                   _ ("A reference image of %u×%u pixels cannot be used: both sides must be multiples of %u "
                      "from %u to %u. Resize the image first."),
                   width, height, DG_REFERENCE_MULTIPLE, DG_REFERENCE_MULTIPLE, MAX_REFERENCE_SIDE);
      return FALSE;
    }
  }
  *out = (DgVitGrid) {
    .resized_h = resized[0],
    .resized_w = resized[1],
    .grid_t = 1, /* a still image: the two identical temporal frames form one temporal patch */
    .grid_h = resized[0] / patch,
    .grid_w = resized[1] / patch,
    .merged_h = resized[0] / patch / merge,
    .merged_w = resized[1] / patch / merge,
  };
  out->n_tokens = out->merged_h * out->merged_w;
  return TRUE;
}

char *
dg_prompt_row_string (const char *text, guint n_images, const guint *n_tokens)
{
  g_return_val_if_fail (text != NULL, NULL);
  g_return_val_if_fail (n_images == 0 || n_tokens != NULL, NULL);
  if (n_images == 0)
    return g_strconcat (T2I_PREFIX, text, SUFFIX, NULL);
  GString *s = g_string_new (EDIT_PREFIX);
  for (guint i = 0; i < n_images; i++) {
    g_string_append (s, VISION_START);
    for (guint k = 0; k < n_tokens[i]; k++) g_string_append (s, IMAGE_PAD);
    g_string_append (s, VISION_END);
  }
  g_string_append_c (s, '\n');
  g_string_append (s, text);
  g_string_append (s, SUFFIX);
  return g_string_free (s, FALSE);
}

/* Python's str.isspace(): general category Zs, or bidirectional class WS, B or S. GLib has no
 * bidi classes; the characters of those classes outside Zs are these twelve. */
static gboolean
py_isspace (gunichar c)
{
  switch (c) {
  case 0x09:
  case 0x0a:
  case 0x0b:
  case 0x0c:
  case 0x0d:
  case 0x1c:
  case 0x1d:
  case 0x1e:
  case 0x1f:
  case 0x85:
  case 0x2028:
  case 0x2029: return TRUE;
  default: return g_unichar_type (c) == G_UNICODE_SPACE_SEPARATOR;
  }
}

char *
dg_prompt_strip (const char *text)
{
  g_return_val_if_fail (text != NULL && g_utf8_validate (text, -1, NULL), NULL);
  const char *start = text;
  while (*start && py_isspace (g_utf8_get_char (start))) start = g_utf8_next_char (start);
  const char *end = start + strlen (start);
  while (end > start) {
    const char *prev = g_utf8_prev_char (end);
    if (!py_isspace (g_utf8_get_char (prev)))
      break;
    end = prev;
  }
  return g_strndup (start, (gsize) (end - start));
}

void
dg_prompt_batch_free (DgPromptBatch *b)
{
  if (b == NULL)
    return;
  /* Not g_strfreev: after a failure the vector may have holes before its end. */
  for (guint r = 0; b->strings != NULL && r < b->n_rows; r++) g_free (b->strings[r]);
  g_free (b->strings);
  g_free (b->row_len);
  g_free (b->input_ids);
  g_free (b->attention_mask);
  g_free (b->position_ids);
  g_free (b->images);
  g_free (b->row_first_image);
  g_free (b);
}

/* Ids the templates need, from the tokenizer. */
typedef struct {
  gint32 image_pad, vision_start;
} VisionIds;

static gboolean
need_token (DgTokenizer *tok, const char *text, gint32 *id, GError **error)
{
  *id = dg_tokenizer_token_id (tok, text);
  if (*id < 0) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: the tokenizer has no token “%s”, which DeepGen's prompts need — is this the Qwen2.5-VL "
                    "tokenizer?"),
                 dg_tokenizer_display_name (tok), text);
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_text (const char *text, guint request, gboolean negative, gboolean edit, GError **error)
{
  const char *bad = NULL;
  if (!g_utf8_validate (text, -1, &bad)) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 negative ? _ ("The negative prompt of request %u is not valid UTF-8 text: the byte at offset %zu"
                               " (0x%02x) is not part of a valid character.")
                          : _ ("The prompt of request %u is not valid UTF-8 text: the byte at offset %zu"
                               " (0x%02x) is not part of a valid character."),
                 request + 1, (gsize) (bad - text), (guint) (guint8) *bad);
    return FALSE;
  }
  /* In an edit row these would add or split image runs, and the image embeddings would no longer
   * line up with the <|image_pad|> positions (the reference fails there too). */
  static const char *const reserved[] = { VISION_START, IMAGE_PAD, VIDEO_PAD };
  for (guint i = 0; edit && i < G_N_ELEMENTS (reserved); i++)
    if (strstr (text, reserved[i]) != NULL) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                   negative ? _ ("The negative prompt of request %u contains “%s”, which is reserved for reference "
                                 "images. Remove it from the text.")
                            : _ ("The prompt of request %u contains “%s”, which is reserved for reference images. "
                                 "Remove it from the text."),
                   request + 1, reserved[i]);
      return FALSE;
    }
  return TRUE;
}

/* Finds the image runs of one tokenised edit row (<|vision_start|> followed by <|image_pad|>s) and
 * checks them against the expected grids. */
static gboolean
locate_images (const gint32 *ids, guint n, const VisionIds *v, guint offset, guint row, guint request,
               const DgVitGrid *grids, guint n_grids, DgPromptImage *out, GError **error)
{
  guint found = 0;
  for (guint i = 0; i + 1 < n; i++) {
    if (ids[i] != v->vision_start || ids[i + 1] != v->image_pad)
      continue;
    guint len = 0;
    while (i + 1 + len < n && ids[i + 1 + len] == v->image_pad) len++;
    if (found < n_grids && len == grids[found].n_tokens)
      out[found] = (DgPromptImage) { row, request, found, offset + i + 1, grids[found] };
    else
      found = n_grids; /* mismatch: report below */
    found++;
    i += len;
  }
  guint expected_pads = 0, pads = 0;
  for (guint k = 0; k < n_grids; k++) expected_pads += grids[k].n_tokens;
  for (guint i = 0; i < n; i++) pads += ids[i] == v->image_pad;
  if (found != n_grids || pads != expected_pads) {
    g_set_error (error, DG_ERROR, DG_ERROR_FAILED,
                 _ ("Row %u of the prompt batch does not tokenise into its %u image runs; the tokenizer does not "
                    "treat the vision tokens as single tokens"),
                 row, n_grids);
    return FALSE;
  }
  return TRUE;
}

/* MODEL.md §1.6 for one row: text runs count up from `next`; an image run starting at s gets
 * (t, h, w) = (s, s + r, s + c) over its merged grid and moves `next` to s + max(rows, cols).
 * Pads keep 1. A row without images gets 0..n−1, the cumsum rule of the text-only path. */
static void
row_positions (DgPromptBatch *b, guint row, guint first_col)
{
  gsize plane = (gsize) b->n_rows * b->seq_len;
  gint64 *t = b->position_ids + (gsize) row * b->seq_len;
  gint64 *h = t + plane, *w = t + 2 * plane;
  for (guint c = 0; c < first_col; c++) t[c] = h[c] = w[c] = 1;
  gint64 next = 0;
  guint img = b->row_first_image[row], img_end = b->row_first_image[row + 1];
  for (guint c = first_col; c < b->seq_len;) {
    if (img < img_end && c == b->images[img].start) {
      const DgVitGrid *g = &b->images[img].grid;
      gint64 s = next;
      for (guint r = 0; r < g->merged_h; r++)
        for (guint k = 0; k < g->merged_w; k++, c++) {
          t[c] = s;
          h[c] = s + r;
          w[c] = s + k;
        }
      next = s + MAX (MAX (g->merged_h, g->merged_w), 1u);
      img++;
      continue;
    }
    t[c] = h[c] = w[c] = next++;
    c++;
  }
}

/* Tokenises the 2B rows and collects their image grids. */
static gboolean
tokenise_rows (DgTokenizer *tok, const DgPromptRequest *req, guint n_req, const DgQwenVisionConfig *vision,
               DgPromptBatch *b, GArray **rows, DgVitGrid **grids, GError **error)
{
  for (guint q = 0; q < n_req; q++) {
    const char *neg = req[q].negative ? req[q].negative : "";
    gboolean edit = req[q].n_images > 0;
    if (!check_text (req[q].prompt, q, FALSE, edit, error) || !check_text (neg, q, TRUE, edit, error))
      return FALSE;
    grids[q] = g_new0 (DgVitGrid, req[q].n_images + 1);
    g_autofree guint *n_tokens = g_new0 (guint, req[q].n_images + 1);
    for (guint i = 0; i < req[q].n_images; i++) {
      if (!dg_vit_grid (req[q].image_sizes[2 * i], req[q].image_sizes[2 * i + 1], vision, &grids[q][i], error)) {
        g_prefix_error (error, _ ("Request %u, reference image %u: "), q + 1, i + 1);
        return FALSE;
      }
      n_tokens[i] = grids[q][i].n_tokens;
    }
    g_autofree char *stripped = dg_prompt_strip (req[q].prompt);
    b->strings[q] = dg_prompt_row_string (stripped, req[q].n_images, n_tokens);
    b->strings[n_req + q] = dg_prompt_row_string (neg, req[q].n_images, n_tokens);
  }
  for (guint r = 0; r < b->n_rows; r++) {
    rows[r] = g_array_new (FALSE, FALSE, sizeof (gint32));
    if (!dg_tokenizer_encode (tok, b->strings[r], rows[r], error))
      return FALSE;
    b->row_len[r] = rows[r]->len;
    b->text_len = MAX (b->text_len, rows[r]->len);
  }
  return TRUE;
}

DgPromptBatch *
dg_prompt_batch_new (DgTokenizer *tok, const DgPromptRequest *requests, guint n_requests, guint n_queries,
                     const DgQwenVisionConfig *vision, GError **error)
{
  g_return_val_if_fail (tok != NULL, NULL);
  g_return_val_if_fail (requests != NULL && n_requests > 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  gboolean any_edit = FALSE;
  for (guint q = 0; q < n_requests; q++) {
    g_return_val_if_fail (requests[q].prompt != NULL, NULL);
    g_return_val_if_fail (requests[q].n_images == 0 || requests[q].image_sizes != NULL, NULL);
    any_edit |= requests[q].n_images > 0;
  }

  gint32 id;
  VisionIds v = { -1, -1 };
  if (!need_token (tok, IM_START, &id, error) || !need_token (tok, IM_END, &id, error))
    return NULL;
  if (any_edit && (!need_token (tok, VISION_START, &v.vision_start, error) ||
                   !need_token (tok, VISION_END, &id, error) || !need_token (tok, IMAGE_PAD, &v.image_pad, error)))
    return NULL;
  if (dg_tokenizer_pad_id (tok) < 0) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: the tokenizer names no pad token and has no “<|endoftext|>” to pad with"),
                 dg_tokenizer_display_name (tok));
    return NULL;
  }

  g_autoptr (DgPromptBatch) b = g_new0 (DgPromptBatch, 1);
  b->n_requests = n_requests;
  b->n_rows = 2 * n_requests;
  b->n_queries = n_queries;
  b->pad_id = dg_tokenizer_pad_id (tok);
  b->strings = g_new0 (char *, b->n_rows + 1);
  b->row_len = g_new0 (guint, b->n_rows);

  GArray **rows = g_new0 (GArray *, b->n_rows);
  DgVitGrid **grids = g_new0 (DgVitGrid *, n_requests);
  gboolean ok = tokenise_rows (tok, requests, n_requests, vision, b, rows, grids, error);
  if (ok && (guint64) b->text_len + n_queries > G_MAXINT32) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("The prompt is too long (%u tokens)"), b->text_len);
    ok = FALSE;
  }

  if (ok) {
    b->seq_len = b->text_len + n_queries;
    gsize cells = (gsize) b->n_rows * b->seq_len;
    b->input_ids = g_new (gint32, cells);
    b->attention_mask = g_new (guint8, cells);
    b->position_ids = g_new (gint64, 3 * cells);
    b->row_first_image = g_new0 (guint, b->n_rows + 1);
    for (guint r = 0; r < b->n_rows; r++) b->n_images += requests[r % n_requests].n_images;
    b->images = g_new0 (DgPromptImage, b->n_images + 1);
  }
  for (guint r = 0; ok && r < b->n_rows; r++) {
    guint q = r % n_requests, len = rows[r]->len, pad = b->text_len - len;
    gint32 *ids = b->input_ids + (gsize) r * b->seq_len;
    guint8 *mask = b->attention_mask + (gsize) r * b->seq_len;
    for (guint c = 0; c < pad; c++) ids[c] = b->pad_id, mask[c] = 0;
    memcpy (ids + pad, rows[r]->data, len * sizeof (gint32));
    memset (mask + pad, 1, len);
    for (guint c = b->text_len; c < b->seq_len; c++) ids[c] = 0, mask[c] = 1;
    guint first = b->row_first_image[r];
    b->row_first_image[r + 1] = first + requests[q].n_images;
    if (requests[q].n_images > 0)
      ok = locate_images ((const gint32 *) (const void *) rows[r]->data, len, &v, pad, r, q, grids[q],
                          requests[q].n_images, b->images + first, error);
    if (ok)
      row_positions (b, r, pad);
  }

  for (guint r = 0; r < b->n_rows; r++)
    if (rows[r] != NULL)
      g_array_unref (rows[r]);
  g_free (rows);
  for (guint q = 0; q < n_requests; q++) g_free (grids[q]);
  g_free (grids);
  return ok ? g_steal_pointer (&b) : NULL;
}
