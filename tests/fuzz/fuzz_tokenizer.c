/* libFuzzer target: the Qwen2 tokenizer (model/text/tokenizer.c). The first byte picks what the
 * rest is:
 *  - even: a prompt, encoded with the tiny model's tokenizer. Valid UTF-8 must encode to ids below
 *    dg_tokenizer_n_ids and decode back to its NFC form (byte-level BPE loses nothing); invalid
 *    UTF-8 must fail with DG_ERROR_INVALID_ARGUMENT and leave the id array as it was.
 *  - odd: a tokenizer.json. Loading either fails with a DG_ERROR or gives a tokenizer that encodes
 *    a fixed sample to ids below its n_ids. */
#include <string.h>

#include "dg_error.h"
#include "fuzz_input_file.h"
#include "tokenizer.h"

#ifndef DEEPGEN_FUZZ_TOKENIZER
#error "DEEPGEN_FUZZ_TOKENIZER: the tiny model's tokenizer folder"
#endif

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_ids (const DgTokenizer *tok, const GArray *ids)
{
  for (guint i = 0; i < ids->len; i++) {
    gint32 id = g_array_index (ids, gint32, i);
    FUZZ_CHECK (id >= 0 && (guint) id < dg_tokenizer_n_ids (tok));
  }
}

static void
fuzz_prompt (const uint8_t *data, size_t size)
{
  static DgTokenizer *tok;
  if (!tok) {
    g_autoptr (GError) error = NULL;
    tok = dg_tokenizer_load (DEEPGEN_FUZZ_TOKENIZER, &error);
    FUZZ_CHECK (tok != NULL);
  }
  g_autofree char *text = g_strndup ((const char *) data, size); /* up to the first NUL */
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  gint32 sentinel = 7;
  g_array_append_val (ids, sentinel);
  GError *error = NULL;
  gboolean ok = dg_tokenizer_encode (tok, text, ids, &error);
  if (!g_utf8_validate (text, -1, NULL)) {
    FUZZ_CHECK (!ok && g_error_matches (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT));
    FUZZ_CHECK (ids->len == 1);
    g_error_free (error);
    return;
  }
  FUZZ_CHECK (ok && error == NULL);
  check_ids (tok, ids);
  g_autofree char *back = dg_tokenizer_decode (tok, (const gint32 *) ids->data + 1, ids->len - 1);
  g_autofree char *nfc = g_utf8_normalize (text, -1, G_NORMALIZE_NFC);
  FUZZ_CHECK (back && nfc && strcmp (back, nfc) == 0);
}

static void
fuzz_tokenizer_json (const uint8_t *data, size_t size)
{
  g_autofree char *path = fuzz_write_file ("tokenizer.json", data, size);
  GError *error = NULL;
  g_autoptr (DgTokenizer) tok = dg_tokenizer_load (path, &error);
  if (!tok) {
    FUZZ_CHECK (error && error->domain == DG_ERROR && error->message[0]);
    g_error_free (error);
    return;
  }
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  if (dg_tokenizer_encode (tok, "A lighthouse, <|image_pad|> at dusk; 12 ü 漢字 🙂", ids, &error))
    check_ids (tok, ids);
  else
    g_clear_error (&error);
  g_free (dg_tokenizer_decode (tok, (const gint32 *) ids->data, ids->len));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size == 0)
    return 0;
  if (data[0] % 2 == 0)
    fuzz_prompt (data + 1, size - 1);
  else
    fuzz_tokenizer_json (data + 1, size - 1);
  return 0;
}
