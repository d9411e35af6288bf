/* unit_prompt: DeepGen's prompt rows, left padding, meta-query slots and 3-D positions
 * (model/text/prompt.c; MODEL.md §1.2, §1.5, §1.6).
 *
 * Positions are checked against a literal port of transformers' Qwen2.5-VL get_rope_index (below,
 * independent of the implementation), against the worked example of MODEL.md §1.6, and, when the
 * golden scenario files of the tiny model exist, against the reference run's tok.ids,
 * tok.attention_mask and llm.position_ids. With DEEPGEN_QWEN_TOKENIZER set, the padded batches of
 * tests/data/tokenizer/expected_ids.json are rebuilt from their prompts and must match exactly. */
#include <string.h>

#include <json-glib/json-glib.h>

#include "config.h"
#include "dg_error.h"
#include "prompt.h"
#include "safetensors.h"
#include "st_writer.h"
#include "tokenizer.h"

static char *tmp_root;

static char *
data_path (const char *sub)
{
  const char *root = g_getenv ("DEEPGEN_TEST_DATA");
  return g_build_filename (root ? root : DEEPGEN_TEST_DATA_DIR, sub, NULL);
}

static DgTokenizer *
load_tiny (void)
{
  g_autofree char *dir = data_path ("tiny-deepgen/tokenizer");
  g_autoptr (GError) error = NULL;
  DgTokenizer *tok = dg_tokenizer_load (dir, &error);
  g_assert_no_error (error);
  return tok;
}

static DgPromptBatch *
build_ok (DgTokenizer *tok, const DgPromptRequest *req, guint n, guint n_queries)
{
  g_autoptr (GError) error = NULL;
  DgPromptBatch *b = dg_prompt_batch_new (tok, req, n, n_queries, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (b);
  return b;
}

static gint64
pos_at (const DgPromptBatch *b, guint plane, guint row, guint col)
{
  return b->position_ids[((gsize) plane * b->n_rows + row) * b->seq_len + col];
}

/* ---- an independent reference: transformers' get_rope_index, ported line by line ------------ */

/* @grids: (t, h, w) of every image of the batch in row-major order, as image_grid_thw.
 * Writes [3, rows, len] into @out. */
static void
reference_rope_index (const gint32 *ids, const guint8 *mask, guint rows, guint len, const guint *grids, guint n_grids,
                      gint32 image_token, gint32 vision_start, guint merge, gint64 *out)
{
  for (gsize i = 0; i < 3 * (gsize) rows * len; i++) out[i] = 1;
  if (n_grids == 0) {
    /* position_ids = attention_mask.cumsum(-1) - 1, masked_fill(mask == 0, 1) */
    for (guint r = 0; r < rows; r++) {
      gint64 sum = 0;
      for (guint c = 0; c < len; c++) {
        sum += mask[r * len + c];
        for (guint p = 0; p < 3; p++) out[((gsize) p * rows + r) * len + c] = mask[r * len + c] ? sum - 1 : 1;
      }
    }
    return;
  }
  guint image_index = 0;
  for (guint r = 0; r < rows; r++) {
    /* input_ids = input_ids[attention_mask[i] == 1] */
    g_autofree gint32 *tok = g_new (gint32, len);
    g_autofree guint *cols = g_new (guint, len);
    guint n = 0;
    for (guint c = 0; c < len; c++)
      if (mask[r * len + c])
        tok[n] = ids[r * len + c], cols[n++] = c;
    guint image_nums = 0;
    for (guint i = 0; i + 1 < n; i++) image_nums += tok[i] == vision_start && tok[i + 1] == image_token;
    g_autofree gint64 *pos = g_new (gint64, 3 * (gsize) n);
    guint filled = 0, st = 0;
    gint64 max = -1;
    for (guint k = 0; k < image_nums; k++) {
      guint ed = st;
      while (ed < n && tok[ed] != image_token) ed++;
      g_assert_cmpuint (ed, <, n);
      guint t = grids[3 * image_index], h = grids[3 * image_index + 1], w = grids[3 * image_index + 2];
      image_index++;
      guint gh = h / merge, gw = w / merge, text_len = ed - st;
      gint64 st_idx = max + 1;
      for (guint i = 0; i < text_len; i++, filled++)
        for (guint p = 0; p < 3; p++) pos[p * n + filled] = st_idx + i, max = MAX (max, st_idx + (gint64) i);
      for (guint tt = 0; tt < t; tt++)
        for (guint y = 0; y < gh; y++)
          for (guint x = 0; x < gw; x++, filled++) {
            gint64 v[3] = { 0 /* second_per_grid_t = 0 for images */, y, x };
            for (guint p = 0; p < 3; p++) {
              pos[p * n + filled] = v[p] + text_len + st_idx;
              max = MAX (max, pos[p * n + filled]);
            }
          }
      st = ed + t * gh * gw;
    }
    if (st < n) {
      gint64 st_idx = max + 1;
      for (guint i = 0; st + i < n; i++, filled++)
        for (guint p = 0; p < 3; p++) pos[p * n + filled] = st_idx + i;
    }
    g_assert_cmpuint (filled, ==, n);
    for (guint i = 0; i < n; i++)
      for (guint p = 0; p < 3; p++) out[((gsize) p * rows + r) * len + cols[i]] = pos[p * n + i];
  }
  g_assert_cmpuint (image_index, ==, n_grids);
}

/* Checks a batch against the reference port. */
static void
assert_positions_match_reference (DgTokenizer *tok, const DgPromptBatch *b)
{
  g_autofree guint *grids = g_new (guint, 3 * (gsize) b->n_images + 3);
  for (guint i = 0; i < b->n_images; i++) {
    grids[3 * i] = b->images[i].grid.grid_t;
    grids[3 * i + 1] = b->images[i].grid.grid_h;
    grids[3 * i + 2] = b->images[i].grid.grid_w;
  }
  g_autofree gint64 *want = g_new (gint64, 3 * (gsize) b->n_rows * b->seq_len);
  reference_rope_index (b->input_ids, b->attention_mask, b->n_rows, b->seq_len, grids, b->n_images,
                        dg_tokenizer_token_id (tok, "<|image_pad|>"), dg_tokenizer_token_id (tok, "<|vision_start|>"),
                        2, want);
  g_assert_cmpmem (b->position_ids, 3 * (gsize) b->n_rows * b->seq_len * sizeof (gint64), want,
                   3 * (gsize) b->n_rows * b->seq_len * sizeof (gint64));
}

/* Structure every batch must have, whatever its content. */
static void
assert_batch_shape (DgTokenizer *tok, const DgPromptBatch *b, const DgPromptRequest *req)
{
  g_assert_cmpuint (b->n_rows, ==, 2 * b->n_requests);
  g_assert_cmpuint (b->seq_len, ==, b->text_len + b->n_queries);
  gint32 image_pad = dg_tokenizer_token_id (tok, "<|image_pad|>");
  gint32 vision_start = dg_tokenizer_token_id (tok, "<|vision_start|>");
  guint max_len = 0;
  for (guint r = 0; r < b->n_rows; r++) {
    const gint32 *ids = b->input_ids + (gsize) r * b->seq_len;
    const guint8 *mask = b->attention_mask + (gsize) r * b->seq_len;
    guint pad = b->text_len - b->row_len[r];
    max_len = MAX (max_len, b->row_len[r]);
    /* The row is its string tokenised alone, left-padded; queries: id 0, mask 1. */
    g_autoptr (GArray) alone = g_array_new (FALSE, FALSE, sizeof (gint32));
    g_assert_true (dg_tokenizer_encode (tok, b->strings[r], alone, NULL));
    g_assert_cmpuint (alone->len, ==, b->row_len[r]);
    g_assert_cmpmem (ids + pad, b->row_len[r] * sizeof (gint32), alone->data, alone->len * sizeof (gint32));
    for (guint c = 0; c < b->seq_len; c++) {
      g_assert_cmpuint (mask[c], ==, c < pad ? 0 : 1);
      if (c < pad) {
        g_assert_cmpint (ids[c], ==, b->pad_id);
        for (guint p = 0; p < 3; p++) g_assert_cmpint (pos_at (b, p, r, c), ==, 1);
      }
      if (c >= b->text_len)
        g_assert_cmpint (ids[c], ==, 0);
    }
    /* Image runs: where the ids say, in prompt order, same in the negative row. */
    guint q = r % b->n_requests;
    g_assert_cmpuint (b->row_first_image[r + 1] - b->row_first_image[r], ==, req[q].n_images);
    for (guint k = b->row_first_image[r]; k < b->row_first_image[r + 1]; k++) {
      const DgPromptImage *im = &b->images[k];
      g_assert_cmpuint (im->row, ==, r);
      g_assert_cmpuint (im->request, ==, q);
      g_assert_cmpuint (im->reference, ==, k - b->row_first_image[r]);
      g_assert_cmpint (ids[im->start - 1], ==, vision_start);
      for (guint i = 0; i < im->grid.n_tokens; i++) g_assert_cmpint (ids[im->start + i], ==, image_pad);
      g_assert_cmpint (ids[im->start + im->grid.n_tokens], !=, image_pad);
      g_assert_cmpuint (im->grid.merged_h, ==, req[q].image_sizes[2 * im->reference] / 32);
      g_assert_cmpuint (im->grid.merged_w, ==, req[q].image_sizes[2 * im->reference + 1] / 32);
    }
  }
  g_assert_cmpuint (max_len, ==, b->text_len);
  assert_positions_match_reference (tok, b);
}

/* ---- grids and strings ------------------------------------------------------------------------ */

static void
test_vit_grid (void)
{
  DgVitGrid g;
  g_assert_true (dg_vit_grid (512, 512, NULL, &g, NULL));
  g_assert_cmpuint (g.resized_h, ==, 448);
  g_assert_cmpuint (g.grid_t, ==, 1);
  g_assert_cmpuint (g.grid_h, ==, 32);
  g_assert_cmpuint (g.merged_h, ==, 16);
  g_assert_cmpuint (g.n_tokens, ==, 256); /* MODEL.md §1.2 */
  g_assert_true (dg_vit_grid (1024, 1024, NULL, &g, NULL));
  g_assert_cmpuint (g.n_tokens, ==, 1024);
  /* TESTING.md scenario 3: 160×192 → ViT 10×12 patches, 5×6 merged */
  g_assert_true (dg_vit_grid (160, 192, NULL, &g, NULL));
  g_assert_cmpuint (g.resized_h, ==, 140);
  g_assert_cmpuint (g.resized_w, ==, 168);
  g_assert_cmpuint (g.grid_h, ==, 10);
  g_assert_cmpuint (g.grid_w, ==, 12);
  g_assert_cmpuint (g.merged_h, ==, 5);
  g_assert_cmpuint (g.merged_w, ==, 6);
  g_assert_cmpuint (g.n_tokens, ==, 30);
  /* (7H/8/28)·(7W/8/28) for every multiple of 32 */
  for (guint h = 32; h <= 2048; h += 32) {
    g_assert_true (dg_vit_grid (h, 2080 - h, NULL, &g, NULL));
    g_assert_cmpuint (g.n_tokens, ==, (7 * h / 8 / 28) * (7 * (2080 - h) / 8 / 28));
  }
  DgQwenVisionConfig vc = { .patch_size = 14, .spatial_merge_size = 2 };
  g_assert_true (dg_vit_grid (96, 128, &vc, &g, NULL));
  g_assert_cmpuint (g.n_tokens, ==, 12);

  static const guint bad[][2] = { { 0, 512 }, { 512, 0 }, { 500, 512 }, { 512, 33 }, { 16, 16 }, { 16416, 32 } };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) error = NULL;
    g_assert_false (dg_vit_grid (bad[i][0], bad[i][1], NULL, &g, &error));
    g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "multiples of 32"));
  }
}

static void
test_row_strings (void)
{
  g_autofree char *t2i = dg_prompt_row_string ("a cat", 0, NULL);
  g_assert_cmpstr (t2i, ==, "<|im_start|>user\nGenerate an image: a cat<|im_end|>\n<|im_start|>assistant\n");
  /* The empty negative keeps the space after the colon (MODEL.md §1.2, §10 item 18). */
  g_autofree char *neg = dg_prompt_row_string ("", 0, NULL);
  g_assert_cmpstr (neg, ==, "<|im_start|>user\nGenerate an image: <|im_end|>\n<|im_start|>assistant\n");
  const guint lens[] = { 2, 1 };
  g_autofree char *edit = dg_prompt_row_string ("Swap them", 2, lens);
  g_assert_cmpstr (edit, ==,
                   "<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|><|vision_end|>"
                   "<|vision_start|><|image_pad|><|vision_end|>\nSwap them<|im_end|>\n<|im_start|>assistant\n");
}

static void
test_strip (void)
{
  static const char *const cases[][2] = {
    { "  a cat \n", "a cat" },
    { "\t\r\n\x0b\x0c", "" },
    { "", "" },
    { "\xe3\x80\x80x\xc2\xa0", "x" },             /* ideographic space, no-break space */
    { "\xc2\x85x\xe2\x80\xa8\xe2\x80\xa9", "x" }, /* NEL, line and paragraph separators */
    { "\x1cx\x1f", "x" },                         /* information separators (bidi B/S) */
    { "\xe2\x80\x8bx", "\xe2\x80\x8bx" },         /* zero-width space is not a space */
    { "\xe1\xa0\x8ex", "\xe1\xa0\x8ex" },         /* U+180E is not a space since Unicode 6.3 */
    { " inner  spaces  stay ", "inner  spaces  stay" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *s = dg_prompt_strip (cases[i][0]);
    g_assert_cmpstr (s, ==, cases[i][1]);
  }
}

/* ---- batches on the tiny tokenizer -------------------------------------------------------------- */

static void
test_t2i_batch (void)
{
  g_autoptr (DgTokenizer) tok = load_tiny ();
  const DgPromptRequest req[] = {
    { .prompt = "a small cat", .negative = "" },
    { .prompt = "  an old man with a hat on the beach at sunset, oil painting\n", .negative = NULL },
  };
  g_autoptr (DgPromptBatch) b = build_ok (tok, req, 2, 8);
  assert_batch_shape (tok, b, req);
  g_assert_cmpuint (b->n_images, ==, 0);
  g_assert_cmpstr (b->strings[0], ==,
                   "<|im_start|>user\nGenerate an image: a small cat<|im_end|>\n<|im_start|>assistant\n");
  g_assert_cmpstr (b->strings[1], ==,
                   "<|im_start|>user\nGenerate an image: an old man with a hat on the beach at sunset, oil "
                   "painting<|im_end|>\n<|im_start|>assistant\n");
  g_assert_cmpstr (b->strings[2], ==, b->strings[3]);
  g_assert_cmpstr (b->strings[2], ==, "<|im_start|>user\nGenerate an image: <|im_end|>\n<|im_start|>assistant\n");
  g_assert_null (b->strings[4]);
  g_assert_cmpint (b->pad_id, ==, dg_tokenizer_token_id (tok, "<|endoftext|>"));
  /* The long prompt has no padding; the others do. */
  g_assert_cmpuint (b->row_len[1], ==, b->text_len);
  g_assert_cmpuint (b->row_len[0], <, b->text_len);
  /* Text-only rows: 0..n−1 on real tokens, queries continue, all three planes equal. */
  for (guint r = 0; r < b->n_rows; r++) {
    guint pad = b->text_len - b->row_len[r];
    for (guint c = pad; c < b->seq_len; c++)
      for (guint p = 0; p < 3; p++) g_assert_cmpint (pos_at (b, p, r, c), ==, c - pad);
  }
  /* Every row starts <|im_start|> after its pads and ends with the 8 query slots. */
  for (guint r = 0; r < b->n_rows; r++)
    g_assert_cmpint (b->input_ids[r * b->seq_len + b->text_len - b->row_len[r]], ==,
                     dg_tokenizer_token_id (tok, "<|im_start|>"));
}

/* MODEL.md §1.6's worked example: one 512×512 reference, no padding. */
static void
test_edit_worked_example (void)
{
  g_autoptr (DgTokenizer) tok = load_tiny ();
  const guint size[] = { 512, 512 };
  const DgPromptRequest req[] = {
    { .prompt = "Make it blue", .negative = "Make it blue", .n_images = 1, .image_sizes = size }
  };
  g_autoptr (DgPromptBatch) b = build_ok (tok, req, 1, 128);
  assert_batch_shape (tok, b, req);
  g_assert_cmpuint (b->text_len, ==, b->row_len[0]); /* equal rows: no padding */
  g_assert_cmpuint (b->n_images, ==, 2);             /* the negative row keeps the image block */
  const DgPromptImage *im = &b->images[0];
  guint vs = im->start - 1;
  /* <|im_start|>, "user", "\n" (however the tokenizer splits them) then <|vision_start|> */
  for (guint c = 0; c <= vs; c++) g_assert_cmpint (pos_at (b, 0, 0, c), ==, c);
  gint64 s = vs + 1;
  for (guint r = 0; r < 16; r++)
    for (guint k = 0; k < 16; k++) {
      guint c = im->start + r * 16 + k;
      g_assert_cmpint (pos_at (b, 0, 0, c), ==, s);
      g_assert_cmpint (pos_at (b, 1, 0, c), ==, s + r);
      g_assert_cmpint (pos_at (b, 2, 0, c), ==, s + k);
    }
  guint ve = im->start + 256; /* <|vision_end|> */
  g_assert_cmpint (b->input_ids[ve], ==, dg_tokenizer_token_id (tok, "<|vision_end|>"));
  for (guint p = 0; p < 3; p++) {
    g_assert_cmpint (pos_at (b, p, 0, ve), ==, s + 16);
    g_assert_cmpint (pos_at (b, p, 0, ve + 1), ==, s + 17);
    /* the 128 queries are the final text run */
    g_assert_cmpint (pos_at (b, p, 0, b->seq_len - 1), ==, s + 16 + (b->seq_len - 1 - ve));
  }
  g_assert_cmpint (b->input_ids[b->seq_len - 1], ==, 0);
}

/* Scenario 6's shape (rows with different reference counts and sizes) and a mixed batch. */
static void
test_multi_image_batch (void)
{
  g_autoptr (DgTokenizer) tok = load_tiny ();
  const guint one[] = { 128, 128 };
  const guint two[] = { 160, 128, 128, 96 };
  const guint three[] = { 224, 224, 32, 64, 96, 32 };
  const DgPromptRequest req[] = {
    { .prompt = "Add a hat to the cat", .negative = "", .n_images = 1, .image_sizes = one },
    { .prompt = "Swap the two objects", .negative = "blurry, low quality", .n_images = 2, .image_sizes = two },
    { .prompt = "a text-only request in the same batch", .negative = "" },
    { .prompt = "Combine", .negative = "", .n_images = 3, .image_sizes = three },
  };
  g_autoptr (DgPromptBatch) b = build_ok (tok, req, 4, 8);
  assert_batch_shape (tok, b, req);
  g_assert_cmpuint (b->n_images, ==, 12);
  g_assert_true (g_str_has_prefix (b->strings[2], "<|im_start|>user\nGenerate an image: "));
  g_assert_true (g_str_has_prefix (b->strings[4 + 1], "<|im_start|>user\n<|vision_start|>"));
  g_assert_true (g_str_has_suffix (b->strings[4 + 1], "\nblurry, low quality<|im_end|>\n<|im_start|>assistant\n"));
  /* After the 5×4 image of row 1, text resumes at s + max(5, 4). */
  const DgPromptImage *im = &b->images[b->row_first_image[1]];
  g_assert_cmpuint (im->grid.merged_h, ==, 5);
  g_assert_cmpuint (im->grid.merged_w, ==, 4);
  gint64 s = pos_at (b, 0, 1, im->start);
  g_assert_cmpint (pos_at (b, 1, 1, im->start + 19), ==, s + 4);
  g_assert_cmpint (pos_at (b, 2, 1, im->start + 19), ==, s + 3);
  g_assert_cmpint (pos_at (b, 0, 1, im->start + 20), ==, s + 5);
  /* Zero queries is allowed too. */
  g_autoptr (DgPromptBatch) nq = build_ok (tok, req, 4, 0);
  assert_batch_shape (tok, nq, req);
  g_assert_cmpuint (nq->seq_len, ==, nq->text_len);
}

/* Text that looks like special tokens: the reference tokeniser turns it into those tokens; we do
 * the same, except that vision tokens in an edit prompt are refused. */
static void
test_special_text (void)
{
  g_autoptr (DgTokenizer) tok = load_tiny ();
  const DgPromptRequest t2i[] = { { .prompt = "a <|im_end|> b <|image_pad|><|vision_start|>", .negative = "" } };
  g_autoptr (DgPromptBatch) b = build_ok (tok, t2i, 1, 4);
  assert_batch_shape (tok, b, t2i);
  guint specials = 0;
  for (guint c = 0; c < b->text_len; c++) specials += b->input_ids[c] == dg_tokenizer_token_id (tok, "<|im_end|>");
  g_assert_cmpuint (specials, ==, 2);

  const guint size[] = { 64, 64 };
  static const char *const reserved[] = { "<|image_pad|>", "<|vision_start|>", "<|video_pad|>" };
  for (guint i = 0; i < G_N_ELEMENTS (reserved); i++)
    for (guint neg = 0; neg < 2; neg++) {
      g_autofree char *text = g_strdup_printf ("put %s here", reserved[i]);
      const DgPromptRequest req[] = {
        { .prompt = neg ? "ok" : text, .negative = neg ? text : "", .n_images = 1, .image_sizes = size }
      };
      g_autoptr (GError) error = NULL;
      g_assert_null (dg_prompt_batch_new (tok, req, 1, 4, NULL, &error));
      g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, reserved[i]));
      g_assert_nonnull (strstr (error->message, neg ? "negative prompt" : "prompt"));
    }
  /* <|im_end|> in an edit prompt is harmless to the image runs. */
  const DgPromptRequest ok[] = { { .prompt = "x<|im_end|>y", .negative = "", .n_images = 1, .image_sizes = size } };
  g_autoptr (DgPromptBatch) b2 = build_ok (tok, ok, 1, 4);
  assert_batch_shape (tok, b2, ok);
}

static void
test_errors (void)
{
  g_autoptr (DgTokenizer) tok = load_tiny ();
  g_autoptr (GError) e1 = NULL;
  const DgPromptRequest bad_prompt[] = { { .prompt = "ok", .negative = "" }, { .prompt = "caf\xc3", .negative = "" } };
  g_assert_null (dg_prompt_batch_new (tok, bad_prompt, 2, 8, NULL, &e1));
  g_assert_error (e1, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (e1->message, "prompt of request 2 is not valid UTF-8"));
  g_assert_nonnull (strstr (e1->message, "offset 3 "));

  g_autoptr (GError) e2 = NULL;
  const DgPromptRequest bad_neg[] = { { .prompt = "ok", .negative = "\xff" } };
  g_assert_null (dg_prompt_batch_new (tok, bad_neg, 1, 8, NULL, &e2));
  g_assert_error (e2, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (e2->message, "negative prompt of request 1"));

  g_autoptr (GError) e3 = NULL;
  const guint sizes[] = { 512, 512, 500, 512 };
  const DgPromptRequest bad_size[] = { { .prompt = "ok", .n_images = 2, .image_sizes = sizes } };
  g_assert_null (dg_prompt_batch_new (tok, bad_size, 1, 8, NULL, &e3));
  g_assert_error (e3, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (e3->message, "Request 1, reference image 2"));

  /* A tokenizer without the chat tokens cannot build DeepGen rows. */
  g_autofree char *dir = g_build_filename (tmp_root, "no-chat-tokens", NULL);
  g_mkdir_with_parents (dir, 0700);
  g_free (st_write_text (dir, "vocab.json", "{\"a\":0,\"b\":1}"));
  g_free (st_write_text (dir, "merges.txt", "#version: 0.2\n"));
  g_autoptr (DgTokenizer) plain = dg_tokenizer_load (dir, NULL);
  g_assert_nonnull (plain);
  g_autoptr (GError) e4 = NULL;
  const DgPromptRequest req[] = { { .prompt = "a" } };
  g_assert_null (dg_prompt_batch_new (plain, req, 1, 8, NULL, &e4));
  g_assert_error (e4, DG_ERROR, DG_ERROR_FORMAT);
  g_assert_nonnull (strstr (e4->message, "<|im_start|>"));
}

static void
test_empty_and_huge (void)
{
  g_autoptr (DgTokenizer) tok = load_tiny ();
  const DgPromptRequest empty[] = { { .prompt = "", .negative = "" } };
  g_autoptr (DgPromptBatch) b = build_ok (tok, empty, 1, 8);
  assert_batch_shape (tok, b, empty);
  g_assert_cmpmem (b->input_ids, b->seq_len * sizeof (gint32), b->input_ids + b->seq_len, b->seq_len * sizeof (gint32));

  GString *s = g_string_new (NULL);
  while (s->len < (1u << 20)) g_string_append (s, "a watercolour of a lighthouse, 1920s, “golden hour”; ");
  const guint size[] = { 64, 96 };
  const DgPromptRequest huge[] = { { .prompt = s->str, .negative = "", .n_images = 1, .image_sizes = size } };
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (DgPromptBatch) h = build_ok (tok, huge, 1, 8);
  g_test_message ("1 MiB edit prompt: %u tokens per row, built in %.1f ms", h->text_len,
                  (g_get_monotonic_time () - t0) / 1000.0);
  g_assert_cmpuint (h->row_len[1], <, h->row_len[0]);
  g_assert_cmpint (pos_at (h, 0, 1, 0), ==, 1); /* the short negative row is padded */
  g_assert_cmpint (pos_at (h, 0, 0, h->seq_len - 1), >, 100000);
  g_string_free (s, TRUE);
}

/* ---- the real vocabulary: the padded batches of expected_ids.json ------------------------------ */

/* Reads one row string of the MODEL.md §1.2 templates back into (text, image pad counts). */
static gboolean
parse_row (const char *s, char **text, GArray *lens)
{
  const char *t2i = "<|im_start|>user\nGenerate an image: ", *edit = "<|im_start|>user\n";
  const char *suffix = "<|im_end|>\n<|im_start|>assistant\n";
  if (!g_str_has_suffix (s, suffix))
    return FALSE;
  const char *end = s + strlen (s) - strlen (suffix);
  const char *p;
  if (g_str_has_prefix (s, t2i))
    p = s + strlen (t2i);
  else if (g_str_has_prefix (s, edit)) {
    p = s + strlen (edit);
    while (g_str_has_prefix (p, "<|vision_start|>")) {
      p += strlen ("<|vision_start|>");
      guint n = 0;
      for (; g_str_has_prefix (p, "<|image_pad|>"); p += strlen ("<|image_pad|>")) n++;
      if (!g_str_has_prefix (p, "<|vision_end|>"))
        return FALSE;
      p += strlen ("<|vision_end|>");
      g_array_append_val (lens, n);
    }
    if (lens->len == 0 || *p++ != '\n')
      return FALSE;
  } else
    return FALSE;
  *text = g_strndup (p, (gsize) (end - p));
  return TRUE;
}

static void
test_qwen_batches (void)
{
  const char *path = g_getenv ("DEEPGEN_QWEN_TOKENIZER");
  if (path == NULL || path[0] == '\0') {
    g_test_skip ("DEEPGEN_QWEN_TOKENIZER is not set: run scripts/fetch-qwen-tokenizer.sh DIR and set "
                 "DEEPGEN_QWEN_TOKENIZER=DIR to test the padded batches on the real Qwen2.5 vocabulary");
    return;
  }
  g_autoptr (GError) error = NULL;
  g_autoptr (DgTokenizer) tok = dg_tokenizer_load (path, &error);
  g_assert_no_error (error);
  g_autofree char *expected_path = data_path ("tokenizer/expected_ids.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_file (parser, expected_path, NULL));
  JsonArray *batches = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "batches");
  for (guint bi = 0; bi < json_array_get_length (batches); bi++) {
    JsonObject *jb = json_array_get_object_element (batches, bi);
    JsonArray *strings = json_object_get_array_member (jb, "strings");
    guint rows = json_array_get_length (strings), n_req = rows / 2;
    g_assert_cmpuint (rows % 2, ==, 0);
    DgPromptRequest *req = g_new0 (DgPromptRequest, n_req);
    char **texts = g_new0 (char *, rows + 1);
    GArray **lens = g_new0 (GArray *, rows);
    GArray **sizes = g_new0 (GArray *, n_req);
    for (guint r = 0; r < rows; r++) {
      lens[r] = g_array_new (FALSE, FALSE, sizeof (guint));
      g_assert_true (parse_row (json_array_get_string_element (strings, r), &texts[r], lens[r]));
    }
    for (guint q = 0; q < n_req; q++) {
      /* Image pad counts L become L×1 merged grids (32L × 32 pixels): only L matters to the ids. */
      g_assert_cmpuint (lens[q]->len, ==, lens[n_req + q]->len);
      sizes[q] = g_array_new (FALSE, FALSE, sizeof (guint));
      for (guint i = 0; i < lens[q]->len; i++) {
        guint hw[2] = { 32 * g_array_index (lens[q], guint, i), 32 };
        g_array_append_vals (sizes[q], hw, 2);
      }
      req[q] = (DgPromptRequest) { texts[q], texts[n_req + q], lens[q]->len, (const guint *) (void *) sizes[q]->data };
    }
    g_autoptr (DgPromptBatch) b = build_ok (tok, req, n_req, 0);
    g_assert_cmpint (b->pad_id, ==, json_object_get_int_member (jb, "pad_id"));
    JsonArray *want_ids = json_object_get_array_member (jb, "input_ids");
    JsonArray *want_mask = json_object_get_array_member (jb, "attention_mask");
    for (guint r = 0; r < rows; r++) {
      g_assert_cmpstr (b->strings[r], ==, json_array_get_string_element (strings, r));
      JsonArray *wi = json_array_get_array_element (want_ids, r), *wm = json_array_get_array_element (want_mask, r);
      g_assert_cmpuint (json_array_get_length (wi), ==, b->text_len);
      for (guint c = 0; c < b->text_len; c++) {
        g_assert_cmpint (b->input_ids[r * b->seq_len + c], ==, json_array_get_int_element (wi, c));
        g_assert_cmpint (b->attention_mask[r * b->seq_len + c], ==, json_array_get_int_element (wm, c));
      }
      g_array_unref (lens[r]);
    }
    assert_batch_shape (tok, b, req);
    for (guint q = 0; q < n_req; q++) g_array_unref (sizes[q]);
    g_strfreev (texts);
    g_free (lens);
    g_free (sizes);
    g_free (req);
  }
}

/* ---- the tiny model's golden scenarios ------------------------------------------------------------ */

/* Any integer or bool tensor as gint64. */
static gint64 *
read_int_tensor (const DgSafetensors *st, const char *name, guint ndim, const gint64 *shape)
{
  g_autoptr (GError) error = NULL;
  const guint32 ints = DG_DTYPE_BIT (DG_DTYPE_I64) | DG_DTYPE_BIT (DG_DTYPE_I32) | DG_DTYPE_BIT (DG_DTYPE_U8) |
                       DG_DTYPE_BIT (DG_DTYPE_BOOL);
  const DgTensorInfo *t = dg_safetensors_expect (st, name, ints, ndim, shape, &error);
  g_assert_no_error (error);
  gint64 *out = g_new (gint64, t->n_elements);
  const guint8 *p = t->data;
  for (gint64 i = 0; i < t->n_elements; i++) switch (t->dtype) {
    case DG_DTYPE_I64: memcpy (&out[i], p + 8 * i, 8); break;
    case DG_DTYPE_I32: {
      gint32 v;
      memcpy (&v, p + 4 * i, 4);
      out[i] = v;
      break;
    }
    default: out[i] = p[i]; break;
    }
  return out;
}

static void
test_golden_scenarios (void)
{
  g_autofree char *manifest_path = data_path ("golden/manifest.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *scenarios = NULL;
  if (json_parser_load_from_file (parser, manifest_path, NULL) &&
      JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    JsonObject *root = json_node_get_object (json_parser_get_root (parser));
    if (json_object_has_member (root, "scenarios"))
      scenarios = json_object_get_object_member (root, "scenarios");
  }
  if (scenarios == NULL || !json_object_has_member (scenarios, "list")) {
    g_test_skip ("tests/data/golden/manifest.json has no \"scenarios\" yet (tests/golden/make_golden.py "
                 "--stages scenarios writes them): prompt rows not compared with the reference run");
    return;
  }
  g_autoptr (DgTokenizer) tok = load_tiny ();
  g_autofree char *vlm_config = data_path ("tiny-deepgen/vlm/config.json");
  DgQwenVLConfig cfg;
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_qwen_vl_config_load (vlm_config, &cfg, &error));
  g_assert_no_error (error);
  /* The query count comes from the connector weights, as in the pipeline. */
  g_autofree char *connector = data_path ("tiny-deepgen/connector");
  g_autoptr (DgSafetensors) cst = dg_safetensors_open (connector, &error);
  g_assert_no_error (error);
  const DgTensorInfo *mq = dg_safetensors_find (cst, "meta_queries");
  g_assert_nonnull (mq);
  guint n_queries = (guint) mq->shape[0];

  JsonObject *images = json_object_get_object_member (scenarios, "images");
  JsonArray *list = json_object_get_array_member (scenarios, "list");
  guint checked = 0;
  for (guint si = 0; si < json_array_get_length (list); si++) {
    JsonObject *sc = json_array_get_object_element (list, si);
    JsonObject *files = json_object_get_object_member (sc, "files");
    JsonObject *fp32 = json_object_get_object_member (files, "fp32");
    g_autofree char *sub = g_build_filename ("golden", json_object_get_string_member (fp32, "file"), NULL);
    g_autofree char *file = data_path (sub);
    if (!g_file_test (file, G_FILE_TEST_EXISTS)) {
      g_test_message ("%s is missing: scenario %u not checked", sub, si + 1);
      continue;
    }
    JsonArray *prompts = json_object_get_array_member (sc, "prompts");
    JsonArray *negatives = json_object_get_array_member (sc, "negatives");
    JsonNode *refs_node = json_object_get_member (sc, "refs");
    guint n_req = json_array_get_length (prompts);
    DgPromptRequest *req = g_new0 (DgPromptRequest, n_req);
    guint *sizes = g_new0 (guint, 64);
    guint used = 0;
    for (guint q = 0; q < n_req; q++) {
      req[q].prompt = json_array_get_string_element (prompts, q);
      req[q].negative = json_array_get_string_element (negatives, q);
      if (refs_node == NULL || JSON_NODE_HOLDS_NULL (refs_node))
        continue;
      JsonArray *row = json_array_get_array_element (json_node_get_array (refs_node), q);
      req[q].n_images = json_array_get_length (row);
      req[q].image_sizes = sizes + used;
      for (guint i = 0; i < req[q].n_images; i++) {
        JsonObject *img = json_object_get_object_member (images, json_array_get_string_element (row, i));
        g_assert_cmpuint (used + 2, <=, 64);
        sizes[used++] = (guint) json_object_get_int_member (img, "height");
        sizes[used++] = (guint) json_object_get_int_member (img, "width");
      }
    }
    g_autoptr (DgPromptBatch) b = NULL;
    b = dg_prompt_batch_new (tok, req, n_req, n_queries, &cfg.vision, &error);
    g_assert_no_error (error);
    assert_batch_shape (tok, b, req);

    JsonArray *strings = json_object_get_array_member (sc, "llm_strings");
    for (guint r = 0; r < b->n_rows; r++)
      g_assert_cmpstr (b->strings[r], ==, json_array_get_string_element (strings, r));

    g_autoptr (DgSafetensors) st = dg_safetensors_open (file, &error);
    g_assert_no_error (error);
    const gint64 rows = b->n_rows, L = b->text_len, S = b->seq_len;
    g_autofree gint64 *ids = read_int_tensor (st, "tok.ids", 2, (gint64[]) { rows, L });
    g_autofree gint64 *mask = read_int_tensor (st, "tok.attention_mask", 2, (gint64[]) { rows, L });
    g_autofree gint64 *pos = read_int_tensor (st, "llm.position_ids", 3, (gint64[]) { 3, rows, S });
    for (gint64 r = 0; r < rows; r++)
      for (gint64 c = 0; c < L; c++) {
        g_assert_cmpint (b->input_ids[r * S + c], ==, ids[r * L + c]);
        g_assert_cmpint (b->attention_mask[r * S + c], ==, mask[r * L + c]);
      }
    g_assert_cmpmem (b->position_ids, 3 * rows * S * sizeof (gint64), pos, 3 * rows * S * sizeof (gint64));
    if (dg_safetensors_find (st, "llm.attention_mask") != NULL) {
      g_autofree gint64 *m2 = read_int_tensor (st, "llm.attention_mask", 2, (gint64[]) { rows, S });
      for (gint64 i = 0; i < rows * S; i++) g_assert_cmpint (b->attention_mask[i], ==, m2[i]);
    }
    checked++;
    g_free (sizes);
    g_free (req);
  }
  if (checked == 0)
    g_test_skip ("no golden scenario file present: prompt rows not compared with the reference run");
  else
    g_test_message ("%u golden scenarios: ids, attention masks and position ids identical", checked);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmp_root = st_tmpdir ();
  g_test_add_func ("/prompt/vit-grid", test_vit_grid);
  g_test_add_func ("/prompt/row-strings", test_row_strings);
  g_test_add_func ("/prompt/strip", test_strip);
  g_test_add_func ("/prompt/t2i-batch", test_t2i_batch);
  g_test_add_func ("/prompt/edit-worked-example", test_edit_worked_example);
  g_test_add_func ("/prompt/multi-image-batch", test_multi_image_batch);
  g_test_add_func ("/prompt/special-text", test_special_text);
  g_test_add_func ("/prompt/errors", test_errors);
  g_test_add_func ("/prompt/empty-and-huge", test_empty_and_huge);
  g_test_add_func ("/prompt/qwen-batches", test_qwen_batches);
  g_test_add_func ("/prompt/golden-scenarios", test_golden_scenarios);
  int rc = g_test_run ();
  st_rmtree (tmp_root);
  g_free (tmp_root);
  return rc;
}
