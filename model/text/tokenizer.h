/* The Qwen2 byte-level BPE tokenizer (MODEL.md §1.3), bit-exact with Hugging Face `tokenizers`.
 *
 * It reads the files a Qwen2.5-VL model ships:
 *  - `tokenizer.json` (the `tokenizers` serialisation: model.vocab, model.merges in either the
 *    "a b" string form or the [a, b] pair form, added_tokens, normalizer, pre_tokenizer), or
 *  - `vocab.json` + `merges.txt` with the added tokens of `tokenizer_config.json`
 *    (`added_tokens_decoder`) and the Qwen2 normaliser and split regex,
 * plus `tokenizer_config.json` beside them, when present, for the pad token.
 *
 * Encoding follows `tokenizers` step for step: added tokens are cut out first (exact string match,
 * leftmost-longest), each remaining span is NFC-normalised, split by the pre-tokenizer regex
 * ("Isolated": matches and the gaps between them are pieces), mapped through GPT-2's
 * byte-to-unicode table and merged by rank. No BOS/EOS is added (Qwen2 adds none).
 *
 * Special ids are never hard-coded: ask dg_tokenizer_token_id() for "<|image_pad|>" and friends
 * and dg_tokenizer_pad_id() for the padding id.
 *
 * A DgTokenizer is immutable after loading except for an internal word cache, which is locked:
 * one tokenizer may be used from several threads. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _DgTokenizer DgTokenizer;

/* @path is one of:
 *  - a `tokenizer.json` file;
 *  - a `vocab.json` file (its `merges.txt` and `tokenizer_config.json` are read from beside it);
 *  - a folder holding `tokenizer.json`, or `vocab.json` + `merges.txt`;
 *  - a model folder with such a folder named `tokenizer/` (the DeepGen-1.0-diffusers layout).
 * Errors: DG_ERROR_MISSING (no tokenizer files), DG_ERROR_IO, DG_ERROR_FORMAT (malformed file,
 * merge of unknown tokens, bad regex), DG_ERROR_UNSUPPORTED (a tokenizer.json feature this
 * byte-level BPE does not implement: another model type, normaliser or pre-tokenizer). */
DgTokenizer *dg_tokenizer_load (const char *path, GError **error);

void dg_tokenizer_free (DgTokenizer *tok);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgTokenizer, dg_tokenizer_free)

/* Appends the ids of @text (NUL-terminated UTF-8) to @ids_out, a GArray of gint32.
 * Text that is not valid UTF-8 gives DG_ERROR_INVALID_ARGUMENT with the byte offset of the first
 * bad byte; @ids_out is then left as it was. */
gboolean dg_tokenizer_encode (DgTokenizer *tok, const char *text, GArray *ids_out, GError **error);

/* The text of @ids, for debugging and tests: tokens are concatenated, the byte-level mapping is
 * undone and bytes that do not form valid UTF-8 become U+FFFD (as `errors="replace"`). Added
 * tokens appear as their text; unknown ids as "<|unknown id N|>". Free with g_free. */
char *dg_tokenizer_decode (const DgTokenizer *tok, const gint32 *ids, gsize n_ids);

/* The id of the token whose text is exactly @token (an added/special token such as
 * "<|image_pad|>", or a regular vocabulary entry in its byte-level spelling such as "Ġthe"),
 * or -1 when there is none. */
gint32 dg_tokenizer_token_id (const DgTokenizer *tok, const char *token);

/* The padding id: `pad_token` of tokenizer_config.json, else the pad token of tokenizer.json's
 * "padding" block, else "<|endoftext|>"; -1 when none of these exists. */
gint32 dg_tokenizer_pad_id (const DgTokenizer *tok);

/* One past the largest id (regular or added): the embedding table needs at least this many rows. */
guint dg_tokenizer_n_ids (const DgTokenizer *tok);

/* The file the tokenizer was read from, "tokenizer/tokenizer.json" style, for messages. */
const char *dg_tokenizer_display_name (const DgTokenizer *tok);

G_END_DECLS
