/* unit_tokenizer: the Qwen2 byte-level BPE (model/text/tokenizer.c).
 *
 *  - Parity with Hugging Face `tokenizers` on the real Qwen2.5 vocabulary: every string of
 *    tests/data/tokenizer/corpus.json must give exactly the ids of expected_ids.json (100%), and the
 *    batches there must pad the same. The vocabulary (11 MB) is not in git: CI fetches it with
 *    scripts/fetch-qwen-tokenizer.sh and names it in DEEPGEN_QWEN_TOKENIZER; without it these
 *    cases are reported as skipped, never as passed.
 *  - The tiny model's tokenizer in all the file forms the loader accepts.
 *  - BPE rules and added-token matching on hand-made vocabularies.
 *  - Bad input: invalid UTF-8, huge prompts, broken files. */
#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "config.h"
#include "dg_error.h"
#include "st_writer.h"
#include "tokenizer.h"

static char *tmp_root;

/* ---- helpers ------------------------------------------------------------------------------ */

static char *
data_path (const char *sub)
{
  const char *root = g_getenv ("DEEPGEN_TEST_DATA");
  return g_build_filename (root ? root : DEEPGEN_TEST_DATA_DIR, sub, NULL);
}

static DgTokenizer *
load_ok (const char *path)
{
  g_autoptr (GError) error = NULL;
  DgTokenizer *tok = dg_tokenizer_load (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (tok);
  return tok;
}

static DgTokenizer *
load_tiny (void)
{
  g_autofree char *dir = data_path ("tiny-deepgen/tokenizer");
  return load_ok (dir);
}

/* The real vocabulary, or NULL after g_test_skip when CI has not provided it. */
static DgTokenizer *
load_qwen (void)
{
  const char *path = g_getenv ("DEEPGEN_QWEN_TOKENIZER");
  if (path == NULL || path[0] == '\0') {
    g_test_skip ("DEEPGEN_QWEN_TOKENIZER is not set: run scripts/fetch-qwen-tokenizer.sh DIR and set "
                 "DEEPGEN_QWEN_TOKENIZER=DIR to test parity with the real Qwen2.5 vocabulary");
    return NULL;
  }
  return load_ok (path);
}

static GArray *
encode_ok (DgTokenizer *tok, const char *text)
{
  g_autoptr (GError) error = NULL;
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_assert_true (dg_tokenizer_encode (tok, text, ids, &error));
  g_assert_no_error (error);
  return ids;
}

static void
assert_ids (DgTokenizer *tok, const char *text, const gint32 *want, guint n_want)
{
  g_autoptr (GArray) ids = encode_ok (tok, text);
  gboolean same = ids->len == n_want && memcmp (ids->data, want, n_want * sizeof (gint32)) == 0;
  if (!same) {
    GString *s = g_string_new (NULL);
    for (guint i = 0; i < ids->len; i++) g_string_append_printf (s, " %d", g_array_index (ids, gint32, i));
    g_test_message ("'%s' gave%s", text, s->str);
    g_string_free (s, TRUE);
  }
  g_assert_true (same);
}
#define ASSERT_IDS(tok, text, ...)                             \
  assert_ids ((tok), (text), (const gint32[]) { __VA_ARGS__ }, \
              (guint) (sizeof ((const gint32[]) { __VA_ARGS__ }) / sizeof (gint32)))
#define ASSERT_NO_IDS(tok, text) assert_ids ((tok), (text), NULL, 0)

static JsonNode *
load_json (const char *path)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_file (parser, path, &error));
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

static void
assert_roundtrip (DgTokenizer *tok, const char *text)
{
  g_autoptr (GArray) ids = encode_ok (tok, text);
  g_autofree char *back = dg_tokenizer_decode (tok, (const gint32 *) (const void *) ids->data, ids->len);
  g_autofree char *nfc = g_utf8_normalize (text, -1, G_NORMALIZE_NFC);
  g_assert_cmpstr (back, ==, nfc);
}

/* A tokenizer.json from its parts, in a fresh folder; returns the folder. */
static char *
write_tokenizer_json (const char *name, const char *model, const char *added, const char *normalizer,
                      const char *pre_tokenizer)
{
  g_autofree char *dir = g_build_filename (tmp_root, name, NULL);
  g_mkdir_with_parents (dir, 0700);
  g_autofree char *text = g_strdup_printf (
      "{\"version\":\"1.0\",\"added_tokens\":%s,\"normalizer\":%s,\"pre_tokenizer\":%s,"
      "\"post_processor\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false},"
      "\"decoder\":null,\"model\":%s}",
      added ? added : "[]", normalizer ? normalizer : "{\"type\":\"NFC\"}",
      pre_tokenizer ? pre_tokenizer
                    : "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
                      "\"\\\\s+|[^\\\\s]+\"},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\","
                      "\"add_prefix_space\":false,\"use_regex\":false}]}",
      model);
  g_free (st_write_text (dir, "tokenizer.json", text));
  return g_steal_pointer (&dir);
}

/* A BPE model whose vocabulary is the 256 byte spellings (ids 0..255 in byte order) plus @extra
 * entries "tok":id, and the given merges. */
static char *
byte_model (const char *extra, const char *merges, const char *options)
{
  GString *s = g_string_new ("{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"fuse_unk\":false,");
  if (options)
    g_string_append_printf (s, "%s,", options);
  g_string_append (s, "\"vocab\":{");
  /* GPT-2's byte → unicode map, computed independently of the implementation. */
  guint n = 0;
  for (guint b = 0; b < 256; b++) {
    gboolean printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    gunichar u = printable ? b : 0x100 + n++;
    char buf[8];
    buf[g_unichar_to_utf8 (u, buf)] = '\0';
    g_autofree char *esc = u < 0x80 ? g_strescape (buf, NULL) : g_strdup (buf);
    g_string_append_printf (s, "%s\"%s\":%u", b ? "," : "", esc, b);
  }
  if (extra && extra[0])
    g_string_append_printf (s, ",%s", extra);
  g_string_append_printf (s, "},\"merges\":[%s]}", merges);
  return g_string_free (s, FALSE);
}

/* ---- the real Qwen2.5 vocabulary ---------------------------------------------------------- */

static void
test_qwen_parity (void)
{
  g_autoptr (DgTokenizer) tok = load_qwen ();
  if (tok == NULL)
    return;
  g_autofree char *corpus_path = data_path ("tokenizer/corpus.json");
  g_autofree char *expected_path = data_path ("tokenizer/expected_ids.json");
  g_autoptr (JsonNode) corpus_node = load_json (corpus_path);
  g_autoptr (JsonNode) expected_node = load_json (expected_path);
  JsonArray *corpus = json_node_get_array (corpus_node);
  JsonObject *expected = json_node_get_object (expected_node);
  JsonArray *want = json_object_get_array_member (expected, "ids");
  guint n = json_array_get_length (corpus);
  g_assert_cmpuint (n, ==, json_array_get_length (want));
  g_assert_cmpuint (n, >, 100);

  /* The ids were made from one exact file; another one would make failures meaningless. */
  const char *path = g_getenv ("DEEPGEN_QWEN_TOKENIZER");
  g_autofree char *file =
      g_file_test (path, G_FILE_TEST_IS_DIR) ? g_build_filename (path, "tokenizer.json", NULL) : g_strdup (path);
  g_autofree char *contents = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (file, &contents, &len, NULL));
  g_autofree char *sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) contents, len);
  g_assert_cmpstr (sha, ==, json_object_get_string_member (expected, "tokenizer_sha256"));

  guint same = 0;
  gint64 total_us = 0, slowest_us = 0;
  guint slowest = 0;
  for (guint i = 0; i < n; i++) {
    const char *text = json_array_get_string_element (corpus, i);
    JsonArray *w = json_array_get_array_element (want, i);
    gint64 t0 = g_get_monotonic_time ();
    g_autoptr (GArray) ids = encode_ok (tok, text);
    gint64 dt = g_get_monotonic_time () - t0;
    total_us += dt;
    if (dt > slowest_us)
      slowest_us = dt, slowest = i;
    gboolean ok = ids->len == json_array_get_length (w);
    for (guint k = 0; ok && k < ids->len; k++) ok = g_array_index (ids, gint32, k) == json_array_get_int_element (w, k);
    if (ok) {
      same++;
      continue;
    }
    g_autofree char *esc = g_strescape (text, NULL);
    GString *got = g_string_new (NULL), *exp = g_string_new (NULL);
    for (guint k = 0; k < MIN (ids->len, 40u); k++) g_string_append_printf (got, " %d", g_array_index (ids, gint32, k));
    for (guint k = 0; k < MIN (json_array_get_length (w), 40u); k++)
      g_string_append_printf (exp, " %" G_GINT64_FORMAT, json_array_get_int_element (w, k));
    g_test_message ("corpus[%u] '%.200s'\n  got     %s\n  expected%s", i, esc, got->str, exp->str);
    g_string_free (got, TRUE);
    g_string_free (exp, TRUE);
  }
  g_test_message ("parity: %u of %u strings identical (%.2f%%); corpus encoded in %.1f ms, slowest: "
                  "corpus[%u] (%zu bytes) in %.1f ms",
                  same, n, 100.0 * same / n, total_us / 1000.0, slowest,
                  strlen (json_array_get_string_element (corpus, slowest)), slowest_us / 1000.0);
  g_assert_cmpuint (same, ==, n);

  /* A second pass hits the word cache and must give the same ids. */
  for (guint i = 0; i < n; i++) {
    g_autoptr (GArray) ids = encode_ok (tok, json_array_get_string_element (corpus, i));
    g_assert_cmpuint (ids->len, ==, json_array_get_length (json_array_get_array_element (want, i)));
  }
}

/* The batches of expected_ids.json: rows tokenised one by one, left-padded with the pad id. (The
 * same batches through the prompt builder are in unit_prompt.) */
static void
test_qwen_batches (void)
{
  g_autoptr (DgTokenizer) tok = load_qwen ();
  if (tok == NULL)
    return;
  g_autofree char *expected_path = data_path ("tokenizer/expected_ids.json");
  g_autoptr (JsonNode) root = load_json (expected_path);
  JsonArray *batches = json_object_get_array_member (json_node_get_object (root), "batches");
  g_assert_cmpuint (json_array_get_length (batches), >=, 1);
  for (guint bi = 0; bi < json_array_get_length (batches); bi++) {
    JsonObject *b = json_array_get_object_element (batches, bi);
    g_assert_cmpstr (json_object_get_string_member (b, "padding_side"), ==, "left");
    g_assert_cmpint (dg_tokenizer_pad_id (tok), ==, json_object_get_int_member (b, "pad_id"));
    JsonArray *strings = json_object_get_array_member (b, "strings");
    JsonArray *want_ids = json_object_get_array_member (b, "input_ids");
    JsonArray *want_mask = json_object_get_array_member (b, "attention_mask");
    guint rows = json_array_get_length (strings), width = 0;
    GArray *enc[16];
    g_assert_cmpuint (rows, <=, G_N_ELEMENTS (enc));
    for (guint r = 0; r < rows; r++) {
      enc[r] = encode_ok (tok, json_array_get_string_element (strings, r));
      width = MAX (width, enc[r]->len);
    }
    for (guint r = 0; r < rows; r++) {
      JsonArray *wi = json_array_get_array_element (want_ids, r);
      JsonArray *wm = json_array_get_array_element (want_mask, r);
      g_assert_cmpuint (json_array_get_length (wi), ==, width);
      guint pad = width - enc[r]->len;
      for (guint c = 0; c < width; c++) {
        gint64 id = c < pad ? dg_tokenizer_pad_id (tok) : g_array_index (enc[r], gint32, c - pad);
        g_assert_cmpint (json_array_get_int_element (wi, c), ==, id);
        g_assert_cmpint (json_array_get_int_element (wm, c), ==, c < pad ? 0 : 1);
      }
      g_array_unref (enc[r]);
    }
  }
}

static void
test_qwen_known_ids (void)
{
  g_autoptr (DgTokenizer) tok = load_qwen ();
  if (tok == NULL)
    return;
  /* MODEL.md §1.3 */
  g_assert_cmpint (dg_tokenizer_token_id (tok, "<|endoftext|>"), ==, 151643);
  g_assert_cmpint (dg_tokenizer_token_id (tok, "<|im_start|>"), ==, 151644);
  g_assert_cmpint (dg_tokenizer_token_id (tok, "<|vision_start|>"), ==, 151652);
  g_assert_cmpint (dg_tokenizer_token_id (tok, "<|image_pad|>"), ==, 151655);
  g_assert_cmpint (dg_tokenizer_token_id (tok, "<|file_sep|>"), ==, 151664);
  g_assert_cmpint (dg_tokenizer_pad_id (tok), ==, 151643);
  g_assert_cmpuint (dg_tokenizer_n_ids (tok), ==, 151665);
  ASSERT_IDS (tok, "user", 872);
  ASSERT_IDS (tok, "assistant", 77091);
  ASSERT_IDS (tok, "\n", 198);
  ASSERT_IDS (tok, " ", 220);
  ASSERT_IDS (tok, "<|im_start|>user\n", 151644, 872, 198);
  /* Single digits (MODEL.md §10 item 18). */
  ASSERT_IDS (tok, "2021", 17, 15, 17, 16);
}

/* A megabyte of prompt through the real vocabulary: no crash, linear time, exact round trip. */
static void
test_qwen_huge (void)
{
  g_autoptr (DgTokenizer) tok = load_qwen ();
  if (tok == NULL)
    return;
  static const char *const words[] = { "a ",   "photo ",     "of ",    "猫", "，", "naïve ",    "2024 ", "!!! ",
                                       "\n\n", "<|im_end|>", "don't ", "  ", "😀", "Ελληνικά ", "\t" };
  GString *s = g_string_new (NULL);
  guint32 x = 12345;
  while (s->len < (1u << 20)) {
    x = x * 1664525u + 1013904223u;
    g_string_append (s, words[(x >> 16) % G_N_ELEMENTS (words)]);
  }
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (GArray) ids = encode_ok (tok, s->str);
  gint64 dt = g_get_monotonic_time () - t0;
  g_test_message ("1 MiB mixed prompt: %u ids in %.1f ms", ids->len, dt / 1000.0);
  g_autofree char *back = dg_tokenizer_decode (tok, (const gint32 *) (const void *) ids->data, ids->len);
  g_autofree char *nfc = g_utf8_normalize (s->str, -1, G_NORMALIZE_NFC);
  g_assert_cmpstr (back, ==, nfc);
  g_string_free (s, TRUE);
}

/* ---- the tiny model's tokenizer ------------------------------------------------------------ */

static const char *const sample_texts[] = {
  "",
  "a red fox in the snow",
  "<|im_start|>user\nGenerate an image: a small cat<|im_end|>\n<|im_start|>assistant\n",
  "<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|><|vision_end|>\nMake the sky darker<|im_end|>\n",
  "It's 12:30, isn't it? We'll see; they'd've known.",
  "naïve façade — Zürich, 東京, Ελληνικά, русский, العربية 😀👍🏽",
  "nai\xcc\x88ve", /* decomposed ï: NFC composes it */
  "   leading and trailing   ",
  "\r\n\r\n\ttabs\tand\r\nnewlines\n\n\n",
  "<|im_end",
  "|>",
  "<|<|im_end|>|>",
  "1234567890 3.14159 1e-9 0x1F",
};

static void
test_tiny_forms (void)
{
  g_autofree char *dir = data_path ("tiny-deepgen/tokenizer");
  g_autofree char *root = data_path ("tiny-deepgen");
  g_autofree char *json = g_build_filename (dir, "tokenizer.json", NULL);
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autoptr (DgTokenizer) a = load_ok (dir);
  g_autoptr (DgTokenizer) b = load_ok (root);  /* model folder: finds tokenizer/ */
  g_autoptr (DgTokenizer) c = load_ok (json);  /* tokenizer.json itself */
  g_autoptr (DgTokenizer) d = load_ok (vocab); /* vocab.json + merges.txt + tokenizer_config.json */
  DgTokenizer *all[] = { a, b, c, d };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++) {
    g_assert_cmpint (dg_tokenizer_pad_id (all[i]), ==, dg_tokenizer_token_id (a, "<|endoftext|>"));
    g_assert_cmpint (dg_tokenizer_token_id (all[i], "<|image_pad|>"), ==, dg_tokenizer_token_id (a, "<|image_pad|>"));
    g_assert_cmpuint (dg_tokenizer_n_ids (all[i]), ==, dg_tokenizer_n_ids (a));
  }
  g_assert_cmpstr (dg_tokenizer_display_name (a), ==, "tokenizer/tokenizer.json");
  g_assert_cmpstr (dg_tokenizer_display_name (d), ==, "tokenizer/vocab.json");

  g_autofree char *corpus_path = data_path ("tokenizer/corpus.json");
  g_autoptr (JsonNode) corpus = load_json (corpus_path);
  JsonArray *ca = json_node_get_array (corpus);
  for (guint k = 0; k < G_N_ELEMENTS (sample_texts) + json_array_get_length (ca); k++) {
    const char *text = k < G_N_ELEMENTS (sample_texts)
                           ? sample_texts[k]
                           : json_array_get_string_element (ca, k - G_N_ELEMENTS (sample_texts));
    g_autoptr (GArray) ref = encode_ok (a, text);
    for (guint i = 1; i < G_N_ELEMENTS (all); i++) {
      g_autoptr (GArray) ids = encode_ok (all[i], text);
      g_assert_cmpmem (ids->data, ids->len * sizeof (gint32), ref->data, ref->len * sizeof (gint32));
    }
    assert_roundtrip (a, text);
  }
}

/* Special ids come from the files and agree with the tiny VLM config. */
static void
test_tiny_special_ids (void)
{
  g_autoptr (DgTokenizer) tok = load_tiny ();
  g_autofree char *config_path = data_path ("tiny-deepgen/vlm/config.json");
  DgQwenVLConfig cfg;
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_qwen_vl_config_load (config_path, &cfg, &error));
  g_assert_no_error (error);
  g_assert_cmpint (dg_tokenizer_token_id (tok, "<|image_pad|>"), ==, cfg.image_token_id);
  g_assert_cmpint (dg_tokenizer_token_id (tok, "<|vision_start|>"), ==, cfg.vision_start_token_id);
  g_assert_cmpint (dg_tokenizer_token_id (tok, "<|vision_end|>"), ==, cfg.vision_end_token_id);
  g_assert_cmpint (dg_tokenizer_token_id (tok, "<|video_pad|>"), ==, cfg.video_token_id);
  g_assert_cmpuint (dg_tokenizer_n_ids (tok), <=, cfg.text.vocab_size);
  g_assert_cmpint (dg_tokenizer_token_id (tok, "no such token"), ==, -1);

  gint32 im_start = dg_tokenizer_token_id (tok, "<|im_start|>"), im_end = dg_tokenizer_token_id (tok, "<|im_end|>");
  g_assert_cmpint (im_start, >=, 0);
  /* Added tokens are cut out of any text, also glued to words. */
  g_autoptr (GArray) ids = encode_ok (tok, "x<|im_end|><|im_start|>y");
  g_assert_cmpuint (ids->len, >=, 4);
  g_assert_cmpint (g_array_index (ids, gint32, 1), ==, im_end);
  g_assert_cmpint (g_array_index (ids, gint32, 2), ==, im_start);
  /* An incomplete one is ordinary text. */
  g_autoptr (GArray) partial = encode_ok (tok, "<|im_end");
  for (guint i = 0; i < partial->len; i++)
    g_assert_cmpint (g_array_index (partial, gint32, i), <, dg_tokenizer_token_id (tok, "<|endoftext|>"));
  g_autofree char *text = dg_tokenizer_decode (tok, (const gint32 *) (const void *) ids->data, ids->len);
  g_assert_cmpstr (text, ==, "x<|im_end|><|im_start|>y");
  const gint32 unknown[] = { 99999, -3 };
  g_autofree char *unk = dg_tokenizer_decode (tok, unknown, 2);
  g_assert_cmpstr (unk, ==, "<|unknown id 99999|><|unknown id -3|>");
}

static void
test_empty (void)
{
  g_autoptr (DgTokenizer) tok = load_tiny ();
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  gint32 keep = 7;
  g_array_append_val (ids, keep);
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_tokenizer_encode (tok, "", ids, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (ids->len, ==, 1); /* appends nothing, keeps what was there */
  g_array_unref (ids);
  g_autofree char *text = dg_tokenizer_decode (tok, NULL, 0);
  g_assert_cmpstr (text, ==, "");
}

static void
test_invalid_utf8 (void)
{
  g_autoptr (DgTokenizer) tok = load_tiny ();
  static const struct {
    const char *text;
    guint offset;
  } cases[] = {
    { "abc\xff", 3 },          /* never valid */
    { "\x80", 0 },             /* lone continuation byte */
    { "caf\xc3", 3 },          /* truncated 2-byte sequence at the end */
    { "\xe4\xb8 x", 0 },       /* truncated 3-byte sequence */
    { "ok \xc0\xaf", 3 },      /* overlong '/' */
    { "\xed\xa0\x80", 0 },     /* UTF-16 surrogate */
    { "\xf4\x90\x80\x80", 0 }, /* beyond U+10FFFF */
    { "<|im_end|>\xfe", 10 },  /* after an added token */
    { "naïve \xe9t\xe9", 7 },  /* Latin-1 pasted into UTF-8 */
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
    gint32 keep = 5;
    g_array_append_val (ids, keep);
    g_autoptr (GError) error = NULL;
    g_assert_false (dg_tokenizer_encode (tok, cases[i].text, ids, &error));
    g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
    g_autofree char *where = g_strdup_printf ("offset %u ", cases[i].offset);
    g_assert_nonnull (strstr (error->message, "not valid UTF-8"));
    g_assert_nonnull (strstr (error->message, where));
    g_assert_cmpuint (ids->len, ==, 1);
  }
}

static char *
repeat (const char *unit, gsize total)
{
  gsize n = strlen (unit);
  char *s = g_malloc (total + 1);
  for (gsize i = 0; i < total; i++) s[i] = unit[i % n];
  s[total] = '\0';
  return s;
}

/* 1 MiB inputs of the shapes that hurt regex engines and naive BPE: one giant word, one giant
 * run of spaces or newlines, digits, punctuation. Each must finish quickly and round-trip. */
static void
test_huge_inputs (void)
{
  g_autoptr (DgTokenizer) tok = load_tiny ();
  static const char *const units[] = {
    "a",
    " ",
    "\n",
    " \n",
    "7",
    "!?",
    "ab cd\t",
    "猫 ",
    "\xc3\xa9",                 /* é: one megabyte-long word */
    "e\xcc\x81",                /* e + combining acute: NFC composes every pair */
    "\xcc\x81\xcc\x96",         /* alternating combining classes: one long run to reorder */
    "\xe1\x84\x80\xe1\x85\xa1", /* conjoining Hangul L + V */
    "\xe0\xaf\x86\xe0\xae\xbe", /* Tamil vowel sign pair composed by NFC */
  };
  const gsize size = 1u << 20;
  for (guint i = 0; i < G_N_ELEMENTS (units); i++) {
    g_autofree char *text = repeat (units[i], size - size % strlen (units[i]));
    gint64 t0 = g_get_monotonic_time ();
    g_autoptr (GArray) ids = encode_ok (tok, text);
    gint64 dt = g_get_monotonic_time () - t0;
    g_autofree char *esc = g_strescape (units[i], NULL);
    g_test_message ("1 MiB of '%s': %u ids in %.1f ms", esc, ids->len, dt / 1000.0);
    g_assert_cmpuint (ids->len, >, 0);
    g_assert_cmpint (dt, <, 20 * G_USEC_PER_SEC); /* linear: ~0.1 s here, quadratic was minutes */
    g_autofree char *back = dg_tokenizer_decode (tok, (const gint32 *) (const void *) ids->data, ids->len);
    if (i < 8)
      g_assert_cmpstr (back, ==, text);
    else if (strcmp (units[i], "\xcc\x81\xcc\x96") == 0) {
      /* One run of marks: NFC puts all of class 220 (U+0316) before all of class 230 (U+0301). */
      gsize half = strlen (text) / 2;
      g_autofree char *low = repeat ("\xcc\x96", half);
      g_autofree char *high = repeat ("\xcc\x81", half);
      g_autofree char *want = g_strconcat (low, high, NULL);
      g_assert_cmpstr (back, ==, want);
    } else {
      /* Only compare a slice with GLib's own (quadratic) NFC. */
      g_autofree char *head = g_strndup (text, 4096 - 4096 % strlen (units[i]));
      g_autofree char *nfc = g_utf8_normalize (head, -1, G_NORMALIZE_NFC);
      g_assert_true (g_str_has_prefix (back, nfc));
    }
  }
}

/* Our linear-time NFC against g_utf8_normalize on random strings of the characters that exercise
 * it: combining marks of several classes, conjoining Hangul, Indic two-part vowels, singletons
 * and composition exclusions. */
static void
test_nfc_random (void)
{
  g_autoptr (DgTokenizer) tok = load_tiny ();
  static const gunichar pool[] = {
    'a',     'e',    'o',     'A',     ' ',     0x301,   0x300,   0x316,   0x323,   0x308,   0x344,   0x345,   0x327,
    0x328,   0x31b,  0x1dc0,  0x20d0,  0x302,   0x30c,   0x3099,  0x309a,  0x304b,  0x30cf,  0x1100,  0x1161,  0x11a8,
    0xac00,  0xac01, 0xd7a3,  0x1112,  0x1175,  0x11c2,  0xbc6,   0xbbe,   0xbd7,   0xb92,   0x9c7,   0x9be,   0x9d7,
    0xcbf,   0xcd5,  0xcc6,   0xcc2,   0xd46,   0xd3e,   0xd57,   0xdd9,   0xdcf,   0xddf,   0x1025,  0x102e,  0x1b05,
    0x1b35,  0x958,  0x915,   0x93c,   0x2126,  0x212b,  0xc5,    0x1e9b,  0x1ea1,  0x0f73,  0x0f71,  0x0f72,  0x0f80,
    0xf900,  0x2adc, 0x1d15e, 0x1d165, 0x1d16e, 0x110ba, 0x11099, 0x11127, 0x11131, 0x1133e, 0x11347, 0x114b9, 0x114ba,
    0x114b0, 0x5d0,  0x5b7,   0x5bc,   0x5c1,   0xfb2a,  0x3b1,   0x313,   0x342,   0x1f00,  0x1fb3,  0x325,   0x307,
  };
  guint32 x = 7;
  for (guint k = 0; k < 20000; k++) {
    gunichar buf[24];
    guint n = 1 + k % 24;
    for (guint i = 0; i < n; i++) {
      x = x * 1664525u + 1013904223u;
      buf[i] = pool[(x >> 8) % G_N_ELEMENTS (pool)];
    }
    g_autofree char *s = g_ucs4_to_utf8 (buf, n, NULL, NULL, NULL);
    assert_roundtrip (tok, s);
  }
}

/* The 10,000-letter word of the corpus shape: the priority-queue merge keeps it far from the
 * quadratic cost of a rescanning loop. The bound is loose enough for sanitizer builds. */
static void
test_long_word_speed (void)
{
  g_autoptr (DgTokenizer) tok = load_tiny ();
  char word[10001];
  guint32 x = 1;
  for (guint i = 0; i < 10000; i++) {
    x = x * 1103515245u + 12345u;
    word[i] = (char) ('a' + (x >> 16) % 26);
  }
  word[10000] = '\0';
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (GArray) ids = encode_ok (tok, word);
  gint64 dt = g_get_monotonic_time () - t0;
  g_test_message ("10,000-letter word: %u ids in %.2f ms", ids->len, dt / 1000.0);
  g_assert_cmpint (dt, <, G_USEC_PER_SEC);
  assert_roundtrip (tok, word);
}

/* One tokenizer shared by threads: the word cache is the only mutable state. */
static gpointer
thread_main (gpointer data)
{
  DgTokenizer *tok = data;
  for (guint round = 0; round < 50; round++)
    for (guint k = 0; k < G_N_ELEMENTS (sample_texts); k++) {
      g_autoptr (GArray) ids = encode_ok (tok, sample_texts[k]);
      g_autofree char *back = dg_tokenizer_decode (tok, (const gint32 *) (const void *) ids->data, ids->len);
      g_autofree char *nfc = g_utf8_normalize (sample_texts[k], -1, G_NORMALIZE_NFC);
      if (g_strcmp0 (back, nfc) != 0)
        return GINT_TO_POINTER (1);
    }
  return NULL;
}

static void
test_threads (void)
{
  g_autoptr (DgTokenizer) tok = load_tiny ();
  GThread *threads[4];
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++) threads[i] = g_thread_new ("encode", thread_main, tok);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++) g_assert_null (g_thread_join (threads[i]));
}

/* ---- BPE and added-token rules on hand-made vocabularies ----------------------------------- */

/* Merge order is by rank, ties go to the leftmost pair, and a merged pair is not re-split. */
static void
test_bpe_rules (void)
{
  /* Extra ids: 256 "aa", 257 "ab", 258 "bc", 259 "abc", 260 "aaa" */
  const char *extra = "\"aa\":256,\"ab\":257,\"bc\":258,\"abc\":259,\"aaa\":260";
  g_autofree char *m1 = byte_model (extra, "\"b c\",\"a b\",\"a a\",\"a bc\",\"aa a\"", NULL);
  g_autofree char *m2 =
      byte_model (extra, "[\"b\",\"c\"],[\"a\",\"b\"],[\"a\",\"a\"],[\"a\",\"bc\"],[\"aa\",\"a\"]", NULL);
  g_autofree char *d1 = write_tokenizer_json ("bpe-strings", m1, NULL, NULL, NULL);
  g_autofree char *d2 = write_tokenizer_json ("bpe-pairs", m2, NULL, NULL, NULL);
  DgTokenizer *toks[2] = { load_ok (d1), load_ok (d2) };
  for (guint i = 0; i < 2; i++) {
    DgTokenizer *tok = toks[i];
    ASSERT_IDS (tok, "abc", 259);       /* b c (rank 0) first, then a bc */
    ASSERT_IDS (tok, "aaa", 260);       /* a a (leftmost) then aa a */
    ASSERT_IDS (tok, "aaaa", 256, 256); /* aa aa: "aa a" needs a lone a on the right */
    ASSERT_IDS (tok, "aaaaa", 256, 260);
    ASSERT_IDS (tok, "cab", 'c', 257);
    ASSERT_IDS (tok, "a b", 'a', ' ', 'b'); /* byte-model ids are the byte values */
    dg_tokenizer_free (tok);
  }
}

/* ignore_merges: a word that is a vocabulary entry is taken whole, whatever the merges say. */
static void
test_ignore_merges (void)
{
  g_autofree char *model = byte_model ("\"ab\":256,\"abc\":257", "\"a b\"", "\"ignore_merges\":true");
  g_autofree char *dir = write_tokenizer_json ("ignore-merges", model, NULL, NULL, NULL);
  g_autoptr (DgTokenizer) tok = load_ok (dir);
  ASSERT_IDS (tok, "abc", 257);
  ASSERT_IDS (tok, "abd", 256, 'd');
}

static void
test_added_matching (void)
{
  g_autofree char *model = byte_model ("", "", NULL);
  /* "é" with normalized = true is matched after NFC; "<a>" and "<a>b" overlap: longest wins. */
  const char *added = "[{\"id\":300,\"content\":\"<a>\",\"special\":true,\"normalized\":false},"
                      "{\"id\":301,\"content\":\"<a>b\",\"special\":false,\"normalized\":false},"
                      "{\"id\":302,\"content\":\"\xc3\xa9\",\"special\":false,\"normalized\":true},"
                      "{\"id\":303,\"content\":\"b<a\",\"special\":false,\"normalized\":false}]";
  g_autofree char *dir = write_tokenizer_json ("added", model, added, NULL, NULL);
  g_autoptr (DgTokenizer) tok = load_ok (dir);
  ASSERT_IDS (tok, "x<a>by", 'x', 301, 'y');
  ASSERT_IDS (tok, "<a><a>", 300, 300);
  ASSERT_IDS (tok, "b<a>", 303, '>'); /* leftmost match first, even if shorter */
  ASSERT_IDS (tok, "e\xcc\x81", 302); /* e + combining acute → NFC é → added token */
  ASSERT_IDS (tok, "\xc3\xa9", 302);
  g_assert_cmpint (dg_tokenizer_token_id (tok, "<a>b"), ==, 301);
  g_assert_cmpint (dg_tokenizer_pad_id (tok), ==, -1); /* no pad token, no <|endoftext|> */

  /* The same token with normalized = false only matches the raw, precomposed text. */
  const char *raw = "[{\"id\":302,\"content\":\"\xc3\xa9\",\"special\":false,\"normalized\":false}]";
  g_autofree char *dir2 = write_tokenizer_json ("added-raw", model, raw, NULL, NULL);
  g_autoptr (DgTokenizer) tok2 = load_ok (dir2);
  ASSERT_IDS (tok2, "\xc3\xa9", 302);
  ASSERT_IDS (tok2, "e\xcc\x81", 0xc3, 0xa9); /* NFC é as its two bytes */
}

/* The pad id: tokenizer_config.json's pad_token (string or object), else <|endoftext|>. */
static void
test_pad_token (void)
{
  g_autofree char *model = byte_model ("", "", NULL);
  const char *added = "[{\"id\":300,\"content\":\"<|endoftext|>\",\"special\":true},"
                      "{\"id\":301,\"content\":\"<pad>\",\"special\":true}]";
  g_autofree char *dir = write_tokenizer_json ("pad", model, added, NULL, NULL);
  g_autoptr (DgTokenizer) a = load_ok (dir);
  g_assert_cmpint (dg_tokenizer_pad_id (a), ==, 300);
  g_free (st_write_text (dir, "tokenizer_config.json", "{\"pad_token\":\"<pad>\"}"));
  g_autoptr (DgTokenizer) b = load_ok (dir);
  g_assert_cmpint (dg_tokenizer_pad_id (b), ==, 301);
  g_free (st_write_text (dir, "tokenizer_config.json", "{\"pad_token\":{\"content\":\"<pad>\",\"lstrip\":false}}"));
  g_autoptr (DgTokenizer) c = load_ok (dir);
  g_assert_cmpint (dg_tokenizer_pad_id (c), ==, 301);
  g_free (st_write_text (dir, "tokenizer_config.json", "{\"pad_token\":\"<nope>\"}"));
  g_autoptr (GError) error = NULL;
  g_assert_null (dg_tokenizer_load (dir, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "<nope>"));
}

/* ---- broken files ---------------------------------------------------------------------------- */

static void
expect_load_error (const char *path, gint code, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  DgTokenizer *tok = dg_tokenizer_load (path, &error);
  g_assert_null (tok);
  g_assert_error (error, DG_ERROR, code);
  if (fragment != NULL && strstr (error->message, fragment) == NULL)
    g_error ("message '%s' lacks '%s'", error->message, fragment);
}

static void
test_bad_files (void)
{
  g_autofree char *none = g_build_filename (tmp_root, "does-not-exist", NULL);
  expect_load_error (none, DG_ERROR_MISSING, "does-not-exist");
  g_autofree char *empty = g_build_filename (tmp_root, "empty-dir", NULL);
  g_mkdir_with_parents (empty, 0700);
  expect_load_error (empty, DG_ERROR_MISSING, "tokenizer.json");

  g_autofree char *bad_json = g_build_filename (tmp_root, "bad-json", NULL);
  g_mkdir_with_parents (bad_json, 0700);
  g_free (st_write_text (bad_json, "tokenizer.json", "{\"model\": {\"vocab\": {\"a\": 0}, "));
  expect_load_error (bad_json, DG_ERROR_FORMAT, "tokenizer.json");
  g_free (st_write_text (bad_json, "tokenizer.json", ""));
  expect_load_error (bad_json, DG_ERROR_FORMAT, NULL);
  g_free (st_write_text (bad_json, "tokenizer.json", "[1,2,3]"));
  expect_load_error (bad_json, DG_ERROR_FORMAT, NULL);

  g_autofree char *good = byte_model ("\"ab\":256", "\"a b\"", NULL);
  struct {
    const char *name, *model, *added, *normalizer, *pre;
    gint code;
    const char *fragment;
  } cases[] = {
    { "wordpiece", "{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}", NULL, NULL, NULL, DG_ERROR_UNSUPPORTED,
      "WordPiece" },
    { "no-merges", "{\"type\":\"BPE\",\"vocab\":{\"a\":0}}", NULL, NULL, NULL, DG_ERROR_FORMAT, "merges" },
    { "bad-merge", NULL, NULL, NULL, NULL, DG_ERROR_FORMAT, "not in the vocabulary" },
    { "merge-shape", NULL, NULL, NULL, NULL, DG_ERROR_FORMAT, "merges[0]" },
    { "vocab-id", "{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}", NULL, NULL, NULL, DG_ERROR_FORMAT, "“a”" },
    { "vocab-dup", "{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}", NULL, NULL, NULL, DG_ERROR_FORMAT,
      "same id" },
    { "lstrip", good, "[{\"id\":300,\"content\":\"<x>\",\"lstrip\":true}]", NULL, NULL, DG_ERROR_UNSUPPORTED,
      "lstrip" },
    { "added-dup", good, "[{\"id\":300,\"content\":\"<x>\"},{\"id\":301,\"content\":\"<x>\"}]", NULL, NULL,
      DG_ERROR_FORMAT, "twice" },
    { "added-empty", good, "[{\"id\":300,\"content\":\"\"}]", NULL, NULL, DG_ERROR_FORMAT, "content" },
    { "nfkc", good, NULL, "{\"type\":\"NFKC\"}", NULL, DG_ERROR_UNSUPPORTED, "NFKC" },
    { "whitespace", good, NULL, NULL, "{\"type\":\"Whitespace\"}", DG_ERROR_UNSUPPORTED, "pre-tokenizer" },
    { "prefix-space", good, NULL, NULL, "{\"type\":\"ByteLevel\",\"add_prefix_space\":true}", DG_ERROR_UNSUPPORTED,
      "pre-tokenizer" },
    { "bad-regex", good, NULL, NULL,
      "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(unclosed\"},"
      "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"use_regex\":false}]}",
      DG_ERROR_FORMAT, "regex" },
    { "removed-split", good, NULL, NULL,
      "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"x\"},"
      "\"behavior\":\"Removed\",\"invert\":false},{\"type\":\"ByteLevel\",\"use_regex\":false}]}",
      DG_ERROR_UNSUPPORTED, "split" },
  };
  g_autofree char *bad_merge = byte_model ("", "\"a q\",\"a zz\"", NULL);
  g_autofree char *merge_shape = byte_model ("", "\"abc\"", NULL);
  cases[2].model = bad_merge;
  cases[3].model = merge_shape;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *dir =
        write_tokenizer_json (cases[i].name, cases[i].model, cases[i].added, cases[i].normalizer, cases[i].pre);
    expect_load_error (dir, cases[i].code, cases[i].fragment);
  }

  /* vocab.json + merges.txt */
  g_autofree char *vm = g_build_filename (tmp_root, "vocab-merges", NULL);
  g_mkdir_with_parents (vm, 0700);
  g_free (st_write_text (vm, "vocab.json", "{\"a\":0,\"b\":1,\"ab\":2}"));
  expect_load_error (vm, DG_ERROR_MISSING, "merges.txt");
  g_free (st_write_text (vm, "merges.txt", "#version: 0.2\na b c\n"));
  expect_load_error (vm, DG_ERROR_FORMAT, "line 2");
  g_free (st_write_text (vm, "merges.txt", "#version: 0.2\na b\n\n"));
  g_autoptr (DgTokenizer) ok = load_ok (vm);
  g_assert_cmpint (dg_tokenizer_token_id (ok, "ab"), ==, 2);
  ASSERT_IDS (ok, "ab", 2);
  g_free (st_write_text (vm, "tokenizer_config.json", "{\"added_tokens_decoder\":{\"x\":{\"content\":\"<y>\"}}}"));
  expect_load_error (vm, DG_ERROR_FORMAT, "added_tokens_decoder");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmp_root = st_tmpdir ();
  g_test_add_func ("/tokenizer/qwen/parity", test_qwen_parity);
  g_test_add_func ("/tokenizer/qwen/batches", test_qwen_batches);
  g_test_add_func ("/tokenizer/qwen/known-ids", test_qwen_known_ids);
  g_test_add_func ("/tokenizer/qwen/huge", test_qwen_huge);
  g_test_add_func ("/tokenizer/tiny/forms", test_tiny_forms);
  g_test_add_func ("/tokenizer/tiny/special-ids", test_tiny_special_ids);
  g_test_add_func ("/tokenizer/empty", test_empty);
  g_test_add_func ("/tokenizer/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/tokenizer/huge-inputs", test_huge_inputs);
  g_test_add_func ("/tokenizer/long-word-speed", test_long_word_speed);
  g_test_add_func ("/tokenizer/nfc-random", test_nfc_random);
  g_test_add_func ("/tokenizer/threads", test_threads);
  g_test_add_func ("/tokenizer/bpe-rules", test_bpe_rules);
  g_test_add_func ("/tokenizer/ignore-merges", test_ignore_merges);
  g_test_add_func ("/tokenizer/added-matching", test_added_matching);
  g_test_add_func ("/tokenizer/pad-token", test_pad_token);
  g_test_add_func ("/tokenizer/bad-files", test_bad_files);
  int rc = g_test_run ();
  st_rmtree (tmp_root);
  g_free (tmp_root);
  return rc;
}
