#include "tokenizer.h"

#include <string.h>

#include "dg_error.h"
#include "dg_i18n.h"
#include "json_strict.h"
#include "vfolder.h"

/* The real tokenizer.json is 11 MB; vocab.json 2.7 MB; merges.txt 1.6 MB. The caps only stop a
 * hostile file from exhausting memory. */
#define MAX_TOKENIZER_BYTES (256u * 1024u * 1024u)
#define MAX_TOKENIZER_DEPTH 32
#define MAX_CONFIG_BYTES (16u * 1024u * 1024u)
/* Ids index a table (id → text), so a bound keeps a hostile id from allocating gigabytes. */
#define MAX_TOKEN_ID ((1 << 24) - 1)
/* Words up to this many bytes are cached (Hugging Face caches the same range); the cache is
 * dropped when it reaches MAX_CACHE_WORDS so that memory stays bounded on any input. */
#define MAX_CACHED_WORD_BYTES 256
#define MAX_CACHE_WORDS 65536

/* MODEL.md §1.3; used for vocab.json + merges.txt, which carry no pre-tokenizer of their own
 * (it is what transformers' Qwen2Tokenizer hard-codes). */
static const char QWEN2_SPLIT_REGEX[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* The split of a ByteLevel pre-tokenizer with use_regex = true (GPT-2's pattern, as tokenizers has it). */
static const char GPT2_SPLIT_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct {
  char *content;
  gsize len;
  gint32 id;
  gboolean normalized; /* matched after NFC (true) or on the raw text (false) */
} AddedToken;

/* Added tokens of one matching pass, sorted by first byte and, within it, longest first, so the
 * first hit at a position is the leftmost-longest match that tokenizers' Aho-Corasick finds. */
typedef struct {
  AddedToken **tokens;
  guint n;
  guint first[257]; /* tokens[first[b] .. first[b+1]) start with byte b */
} AddedMatcher;

/* Pair (left id, right id) → (rank, merged id), open addressing, for the BPE inner loop. */
typedef struct {
  guint64 key; /* left << 32 | right; EMPTY_KEY when free */
  guint32 rank;
  gint32 new_id;
} MergeSlot;
#define EMPTY_KEY G_MAXUINT64

struct _DgTokenizer {
  char *display;
  GHashTable *vocab;     /* byte-level spelling → id (regular tokens) */
  GHashTable *added_ids; /* content → id (added tokens) */
  char **id_to_token;    /* [n_ids]: spelling of each id, NULL for holes; points into the hashes */
  gboolean *id_is_added;
  guint n_ids;
  gint32 byte_id[256]; /* id of the one-byte token of each byte, -1 when the vocab lacks it */
  gint32 unk_id;       /* -1: unknown bytes are dropped (what tokenizers does without unk) */
  gboolean fuse_unk;
  gboolean ignore_merges;
  MergeSlot *merges;
  gsize merge_mask; /* table size − 1 (a power of two) */
  AddedToken *added;
  guint n_added;
  AddedMatcher raw_matcher, normalized_matcher;
  gboolean nfc;
  GRegex *split;
  gint32 pad_id;
  GMutex cache_lock;
  GHashTable *cache; /* word bytes → gint32[1 + n]: n, then the ids */
};

/* ---- GPT-2 byte ↔ unicode ------------------------------------------------------------------ */

/* GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100.. in byte order, so that every byte has a visible, non-space spelling in the vocab. */
static gunichar
byte_to_unicode (guint b)
{
  if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff))
    return b;
  guint n = 0;
  for (guint c = 0; c < b; c++)
    if (!((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff)))
      n++;
  return 0x100 + n;
}

/* Inverse of the above: the byte a code point stands for, or -1. */
static int
unicode_to_byte (gunichar u)
{
  static gint16 table[0x144];
  static gsize init = 0;
  if (g_once_init_enter (&init)) {
    for (guint i = 0; i < G_N_ELEMENTS (table); i++) table[i] = -1;
    for (guint b = 0; b < 256; b++) table[byte_to_unicode (b)] = (gint16) b;
    g_once_init_leave (&init, 1);
  }
  return u < G_N_ELEMENTS (table) ? table[u] : -1;
}

/* ---- merge table ------------------------------------------------------------------------------ */

static inline gsize
merge_hash (guint64 key)
{
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdULL;
  key ^= key >> 33;
  key *= 0xc4ceb9fe1a85ec53ULL;
  key ^= key >> 33;
  return (gsize) key;
}

static inline guint64
pair_key (gint32 a, gint32 b)
{
  return ((guint64) (guint32) a << 32) | (guint32) b;
}

static const MergeSlot *
merge_find (const DgTokenizer *tok, gint32 a, gint32 b)
{
  if (tok->merges == NULL)
    return NULL;
  guint64 key = pair_key (a, b);
  for (gsize i = merge_hash (key) & tok->merge_mask;; i = (i + 1) & tok->merge_mask) {
    if (tok->merges[i].key == key)
      return &tok->merges[i];
    if (tok->merges[i].key == EMPTY_KEY)
      return NULL;
  }
}

/* A later duplicate of a pair replaces the earlier one, as in tokenizers' HashMap collect. */
static void
merge_insert (DgTokenizer *tok, gint32 a, gint32 b, guint32 rank, gint32 new_id)
{
  guint64 key = pair_key (a, b);
  gsize i = merge_hash (key) & tok->merge_mask;
  while (tok->merges[i].key != EMPTY_KEY && tok->merges[i].key != key) i = (i + 1) & tok->merge_mask;
  tok->merges[i] = (MergeSlot) { key, rank, new_id };
}

static void
merges_alloc (DgTokenizer *tok, gsize n)
{
  gsize size = 16;
  while (size < 2 * n + 16) size <<= 1;
  tok->merges = g_new (MergeSlot, size);
  for (gsize i = 0; i < size; i++) tok->merges[i].key = EMPTY_KEY;
  tok->merge_mask = size - 1;
}

/* Registers merge number @rank of the spellings @a and @b. The merged spelling must be in the
 * vocabulary, as tokenizers requires when it loads the file. */
static gboolean
add_merge (DgTokenizer *tok, const char *a, gsize a_len, const char *b, gsize b_len, guint32 rank, const char *where,
           GError **error)
{
  g_autofree char *sa = g_strndup (a, a_len);
  g_autofree char *sb = g_strndup (b, b_len);
  g_autofree char *ab = g_strconcat (sa, sb, NULL);
  gpointer ia, ib, iab;
  const char *missing = NULL;
  if (!g_hash_table_lookup_extended (tok->vocab, sa, NULL, &ia))
    missing = sa;
  else if (!g_hash_table_lookup_extended (tok->vocab, sb, NULL, &ib))
    missing = sb;
  else if (!g_hash_table_lookup_extended (tok->vocab, ab, NULL, &iab))
    missing = ab;
  if (missing != NULL) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: merge %u of %s (“%s %s”) uses the token “%s”, which is not in the vocabulary; the "
                    "tokenizer files are damaged or do not belong together"),
                 tok->display, rank, where, sa, sb, missing);
    return FALSE;
  }
  merge_insert (tok, GPOINTER_TO_INT (ia), GPOINTER_TO_INT (ib), rank, GPOINTER_TO_INT (iab));
  return TRUE;
}

/* ---- loading: vocabulary, merges, added tokens -------------------------------------------- */

static gboolean
node_to_id (JsonNode *n, gint32 *out)
{
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  gint64 v = json_node_get_int (n);
  if (v < 0 || v > MAX_TOKEN_ID)
    return FALSE;
  *out = (gint32) v;
  return TRUE;
}

static gboolean
load_vocab (DgTokenizer *tok, JsonObject *vocab, const char *where, GError **error)
{
  JsonObjectIter it;
  const char *key;
  JsonNode *value;
  json_object_iter_init (&it, vocab);
  while (json_object_iter_next (&it, &key, &value)) {
    gint32 id;
    if (!node_to_id (value, &id)) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: the id of “%s” in %s is not an integer from 0 to %d"),
                   tok->display, key, where, MAX_TOKEN_ID);
      return FALSE;
    }
    if (key[0] == '\0') {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: %s has an empty token"), tok->display, where);
      return FALSE;
    }
    g_hash_table_insert (tok->vocab, g_strdup (key), GINT_TO_POINTER (id));
  }
  if (g_hash_table_size (tok->vocab) == 0) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: the vocabulary (%s) is empty"), tok->display, where);
    return FALSE;
  }
  return TRUE;
}

static gboolean
load_merges_json (DgTokenizer *tok, JsonArray *merges, GError **error)
{
  guint n = json_array_get_length (merges);
  merges_alloc (tok, n);
  for (guint i = 0; i < n; i++) {
    JsonNode *m = json_array_get_element (merges, i);
    if (JSON_NODE_HOLDS_VALUE (m) && json_node_get_value_type (m) == G_TYPE_STRING) {
      /* The older "a b" form: split at the first space (spellings never hold a raw space). */
      const char *s = json_node_get_string (m);
      const char *sp = strchr (s, ' ');
      if (sp != NULL && sp != s && sp[1] != '\0' && strchr (sp + 1, ' ') == NULL) {
        if (!add_merge (tok, s, (gsize) (sp - s), sp + 1, strlen (sp + 1), i, "model.merges", error))
          return FALSE;
        continue;
      }
    } else if (JSON_NODE_HOLDS_ARRAY (m)) {
      JsonArray *pair = json_node_get_array (m);
      const char *a = NULL, *b = NULL;
      if (json_array_get_length (pair) == 2) {
        JsonNode *na = json_array_get_element (pair, 0), *nb = json_array_get_element (pair, 1);
        if (JSON_NODE_HOLDS_VALUE (na) && json_node_get_value_type (na) == G_TYPE_STRING &&
            JSON_NODE_HOLDS_VALUE (nb) && json_node_get_value_type (nb) == G_TYPE_STRING)
          a = json_node_get_string (na), b = json_node_get_string (nb);
      }
      if (a != NULL && b != NULL && a[0] != '\0' && b[0] != '\0') {
        if (!add_merge (tok, a, strlen (a), b, strlen (b), i, "model.merges", error))
          return FALSE;
        continue;
      }
    }
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: model.merges[%u] is neither a string “a b” nor a pair [“a”, “b”] of tokens"), tok->display, i);
    return FALSE;
  }
  return TRUE;
}

static gboolean
load_merges_txt (DgTokenizer *tok, const char *path, GError **error)
{
  g_autofree char *display = dg_display_name (path);
  g_autoptr (GError) local = NULL;
  g_autoptr (GMappedFile) map = g_mapped_file_new (path, FALSE, &local);
  if (map == NULL) {
    gboolean missing = g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_set_error (error, DG_ERROR, missing ? DG_ERROR_MISSING : DG_ERROR_IO, _ ("%s: cannot read the file: %s"), display,
                 local->message);
    return FALSE;
  }
  gsize len = g_mapped_file_get_length (map);
  const char *text = g_mapped_file_get_contents (map);
  if (len > MAX_TOKENIZER_BYTES || (len > 0 && !g_utf8_validate_len (text, len, NULL))) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: the file is not UTF-8 text of a sane size"), display);
    return FALSE;
  }
  /* Like transformers' Qwen2Tokenizer: a first line "#version: ..." and blank lines are skipped;
   * every other line is "a b". */
  guint n_lines = 1;
  for (gsize i = 0; i < len; i++) n_lines += text[i] == '\n';
  merges_alloc (tok, n_lines);
  guint rank = 0, line_no = 0;
  for (gsize pos = 0; pos < len; line_no++) {
    const char *line = text + pos;
    const char *nl = memchr (line, '\n', len - pos);
    gsize line_len = nl ? (gsize) (nl - line) : len - pos;
    pos += line_len + (nl ? 1 : 0);
    g_autofree char *s = g_strstrip (g_strndup (line, line_len));
    if (s[0] == '\0' || (line_no == 0 && g_str_has_prefix (s, "#version")))
      continue;
    char *sp = strchr (s, ' ');
    if (sp == NULL || sp == s || sp[1] == '\0' || strchr (sp + 1, ' ') != NULL) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: line %u is not a merge “a b”"), display, line_no + 1);
      return FALSE;
    }
    if (!add_merge (tok, s, (gsize) (sp - s), sp + 1, strlen (sp + 1), rank, display, error))
      return FALSE;
    rank++;
  }
  return TRUE;
}

static gboolean
json_bool_member (JsonObject *o, const char *key)
{
  JsonNode *n = json_object_get_member (o, key);
  return n != NULL && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_BOOLEAN &&
         json_node_get_boolean (n);
}

/* One added token from its JSON object (tokenizer.json "added_tokens" entry or a value of
 * tokenizer_config.json "added_tokens_decoder"). */
static gboolean
parse_added_token (DgTokenizer *tok, JsonNode *node, gint32 id, gboolean have_id, const char *where, AddedToken *out,
                   GError **error)
{
  JsonObject *o = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  JsonNode *content = o ? json_object_get_member (o, "content") : NULL;
  if (!have_id && o != NULL && !node_to_id (json_object_get_member (o, "id"), &id))
    o = NULL;
  if (o == NULL || content == NULL || !JSON_NODE_HOLDS_VALUE (content) ||
      json_node_get_value_type (content) != G_TYPE_STRING || json_node_get_string (content)[0] == '\0') {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: an entry of %s lacks a non-empty “content” or a valid “id”"),
                 tok->display, where);
    return FALSE;
  }
  const char *text = json_node_get_string (content);
  /* Qwen's added tokens set none of these; implementing them without a file to test against
   * would be guesswork, so a file that needs them is refused rather than mis-tokenised. */
  static const char *const unsupported[] = { "lstrip", "rstrip", "single_word" };
  for (guint i = 0; i < G_N_ELEMENTS (unsupported); i++)
    if (json_bool_member (o, unsupported[i])) {
      g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                   _ ("%s: the added token “%s” sets “%s”, which this tokenizer does not support"), tok->display, text,
                   unsupported[i]);
      return FALSE;
    }
  out->content = g_strdup (text);
  out->len = strlen (text);
  out->id = id;
  out->normalized = json_bool_member (o, "normalized");
  return TRUE;
}

static int
compare_added (gconstpointer pa, gconstpointer pb)
{
  const AddedToken *a = *(AddedToken *const *) pa, *b = *(AddedToken *const *) pb;
  guint8 fa = (guint8) a->content[0], fb = (guint8) b->content[0];
  if (fa != fb)
    return fa < fb ? -1 : 1;
  if (a->len != b->len)
    return a->len > b->len ? -1 : 1;
  return strcmp (a->content, b->content);
}

static void
matcher_build (AddedMatcher *m, AddedToken *added, guint n_added, gboolean normalized)
{
  m->tokens = g_new (AddedToken *, n_added + 1);
  m->n = 0;
  for (guint i = 0; i < n_added; i++)
    if (added[i].normalized == normalized)
      m->tokens[m->n++] = &added[i];
  qsort (m->tokens, m->n, sizeof *m->tokens, compare_added);
  guint k = 0;
  for (guint b = 0; b <= 256; b++) {
    while (k < m->n && (guint8) m->tokens[k]->content[0] < b) k++;
    m->first[b] = k;
  }
}

/* Sets the added tokens, checking that ids and texts are unique. */
static gboolean
finish_added (DgTokenizer *tok, GArray *added, GError **error)
{
  tok->n_added = added->len;
  tok->added = (AddedToken *) (void *) g_array_free (added, FALSE);
  for (guint i = 0; i < tok->n_added; i++) {
    AddedToken *t = &tok->added[i];
    if (g_hash_table_contains (tok->added_ids, t->content)) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: the added token “%s” is listed twice"), tok->display,
                   t->content);
      return FALSE;
    }
    g_hash_table_insert (tok->added_ids, t->content, GINT_TO_POINTER (t->id));
  }
  matcher_build (&tok->raw_matcher, tok->added, tok->n_added, FALSE);
  matcher_build (&tok->normalized_matcher, tok->added, tok->n_added, TRUE);
  return TRUE;
}

static void
added_token_clear (gpointer p)
{
  g_free (((AddedToken *) p)->content);
}

/* ---- the split regex ----------------------------------------------------------------------- */

/* tokenizers runs its split patterns with Oniguruma, we run them with PCRE2 (GRegex). The syntax
 * the Qwen2 pattern uses means the same in both, but three escapes depend on Unicode data that the
 * two libraries do not share:
 *  - \p{L} and \p{N}: each library has its own Unicode version (Debian 12's PCRE2 knows Unicode 14,
 *    the Oniguruma inside tokenizers 0.22.1 Unicode 16), so letters added since differ;
 *  - \s: PCRE2 counts U+180E MONGOLIAN VOWEL SEPARATOR as a space, Oniguruma follows the Unicode
 *    White_Space property, which dropped it in Unicode 6.3.
 * A hex-code-point class for each, built once from GLib's tables (Unicode 15.0 in GLib 2.74, newer
 * in newer GLib) and from the White_Space property, replaces them, so that the split no longer
 * depends on the PCRE2 build. In a differential run of 20,000 random strings against tokenizers
 * 0.22.1, the only differences left involve characters assigned in Unicode 14 or later, where
 * tokenizers' own parts disagree (its normaliser has older tables than its regex engine). */

/* Unicode White_Space (PropList.txt), unchanged since Unicode 6.3. */
static const char WHITE_SPACE_BODY[] =
    "\\x{9}-\\x{d}\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}";

static gboolean
is_letter (gunichar c)
{
  switch (g_unichar_type (c)) {
  case G_UNICODE_UPPERCASE_LETTER:
  case G_UNICODE_LOWERCASE_LETTER:
  case G_UNICODE_TITLECASE_LETTER:
  case G_UNICODE_MODIFIER_LETTER:
  case G_UNICODE_OTHER_LETTER: return TRUE;
  default: return FALSE;
  }
}

static gboolean
is_number (gunichar c)
{
  switch (g_unichar_type (c)) {
  case G_UNICODE_DECIMAL_NUMBER:
  case G_UNICODE_LETTER_NUMBER:
  case G_UNICODE_OTHER_NUMBER: return TRUE;
  default: return FALSE;
  }
}

/* "\x{41}-\x{5a}\x{61}-\x{7a}...": the body of a character class of all code points in @in. */
static char *
class_body (gboolean (*in) (gunichar))
{
  GString *s = g_string_new (NULL);
  for (gunichar c = 0; c <= 0x10ffff; c++) {
    if (!in (c))
      continue;
    gunichar end = c;
    while (end < 0x10ffff && in (end + 1)) end++;
    g_string_append_printf (s, "\\x{%x}", c);
    if (end > c)
      g_string_append_printf (s, "-\\x{%x}", end);
    c = end;
  }
  return g_string_free (s, FALSE);
}

static const char *letter_body, *number_body;

static gpointer
init_bodies (gpointer unused)
{
  letter_body = class_body (is_letter);
  number_body = class_body (is_number);
  return NULL;
}

/* Copies @pattern with \p{L}, \p{N}, \s (and \P{L}, \P{N}, \S outside classes) replaced as
 * described above; everything else is copied as it is. */
static char *
rewrite_unicode_escapes (const char *pattern)
{
  static GOnce once = G_ONCE_INIT;
  g_once (&once, init_bodies, NULL);
  GString *out = g_string_new (NULL);
  gboolean in_class = FALSE;
  for (const char *p = pattern; *p;) {
    if (p[0] == '\\' && p[1] != '\0') {
      const char *body = NULL;
      gboolean negated = FALSE;
      gsize skip = 2;
      if (p[1] == 's' || p[1] == 'S')
        body = WHITE_SPACE_BODY, negated = p[1] == 'S';
      else if ((p[1] == 'p' || p[1] == 'P') && (g_str_has_prefix (p + 2, "{L}") || g_str_has_prefix (p + 2, "{N}")))
        body = p[3] == 'L' ? letter_body : number_body, negated = p[1] == 'P', skip = 5;
      if (body != NULL && !in_class)
        g_string_append_printf (out, "[%s%s]", negated ? "^" : "", body);
      else if (body != NULL && !negated)
        g_string_append (out, body);
      else
        g_string_append_len (out, p, (gssize) skip); /* a negation inside a class: leave to PCRE2 */
      p += skip;
      continue;
    }
    if (!in_class && p[0] == '[') {
      /* A ']' right after '[' or '[^' is a literal member, not the end. */
      in_class = TRUE;
      g_string_append_c (out, *p++);
      if (*p == '^')
        g_string_append_c (out, *p++);
      if (*p == ']')
        g_string_append_c (out, *p++);
      continue;
    }
    if (in_class && p[0] == '[' && p[1] == ':') {
      const char *end = strstr (p + 2, ":]");
      gsize n = end ? (gsize) (end + 2 - p) : strlen (p);
      g_string_append_len (out, p, (gssize) n);
      p += n;
      continue;
    }
    if (in_class && p[0] == ']')
      in_class = FALSE;
    g_string_append_c (out, *p++);
  }
  return g_string_free (out, FALSE);
}

static gboolean
compile_split (DgTokenizer *tok, const char *regex, GError **error)
{
  g_autofree char *pattern = rewrite_unicode_escapes (regex);
  g_autoptr (GError) local = NULL;
  tok->split = g_regex_new (pattern, G_REGEX_OPTIMIZE, 0, &local);
  if (tok->split == NULL) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: the pre-tokenizer regex does not compile: %s"), tok->display,
                 local->message);
    return FALSE;
  }
  return TRUE;
}

/* ---- loading: tokenizer.json ------------------------------------------------------------- */

static gboolean
unsupported (DgTokenizer *tok, const char *what, JsonNode *n, GError **error)
{
  g_autofree char *repr = n ? json_to_string (n, FALSE) : g_strdup ("?");
  if (g_utf8_strlen (repr, -1) > 120) {
    g_autofree char *head = g_utf8_substring (repr, 0, 117);
    g_free (repr);
    repr = g_strconcat (head, "...", NULL);
  }
  g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
               _ ("%s: %s %s is not supported (this tokenizer implements the byte-level BPE of Qwen2)"), tok->display,
               what, repr);
  return FALSE;
}

static const char *
object_type (JsonNode *n)
{
  if (n == NULL || !JSON_NODE_HOLDS_OBJECT (n))
    return NULL;
  JsonNode *t = json_object_get_member (json_node_get_object (n), "type");
  if (t == NULL || !JSON_NODE_HOLDS_VALUE (t) || json_node_get_value_type (t) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (t);
}

static gboolean
is_null (JsonNode *n)
{
  return n == NULL || JSON_NODE_HOLDS_NULL (n);
}

/* A string member that may be absent, null or ""; anything else is unsupported. */
static gboolean
empty_string_member (JsonObject *o, const char *key)
{
  JsonNode *n = json_object_get_member (o, key);
  if (is_null (n))
    return TRUE;
  return JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING &&
         json_node_get_string (n)[0] == '\0';
}

static gboolean
parse_normalizer (DgTokenizer *tok, JsonNode *n, GError **error)
{
  const char *type = object_type (n);
  if (is_null (n))
    return TRUE;
  if (g_strcmp0 (type, "NFC") == 0) {
    tok->nfc = TRUE;
    return TRUE;
  }
  if (g_strcmp0 (type, "Sequence") == 0) {
    JsonNode *list = json_object_get_member (json_node_get_object (n), "normalizers");
    if (list != NULL && JSON_NODE_HOLDS_ARRAY (list)) {
      JsonArray *a = json_node_get_array (list);
      for (guint i = 0; i < json_array_get_length (a); i++)
        if (!parse_normalizer (tok, json_array_get_element (a, i), error))
          return FALSE;
      return TRUE;
    }
  }
  return unsupported (tok, _ ("the normalizer"), n, error);
}

/* ByteLevel without a prefix space; sets *@regex to GPT-2's split when it asks for its own. */
static gboolean
parse_byte_level (DgTokenizer *tok, JsonNode *n, const char **regex, GError **error)
{
  JsonObject *o = json_node_get_object (n);
  if (json_bool_member (o, "add_prefix_space"))
    return unsupported (tok, _ ("the pre-tokenizer"), n, error);
  JsonNode *use_regex = json_object_get_member (o, "use_regex");
  /* tokenizers' default for use_regex is true. */
  if (use_regex == NULL || json_bool_member (o, "use_regex")) {
    if (*regex != NULL)
      return unsupported (tok, _ ("the pre-tokenizer (two splits)"), n, error);
    *regex = GPT2_SPLIT_REGEX;
  }
  return TRUE;
}

static gboolean
parse_pre_tokenizer (DgTokenizer *tok, JsonNode *n, GError **error)
{
  const char *type = object_type (n);
  const char *regex = NULL;
  g_autofree char *escaped = NULL;
  gboolean byte_level = FALSE;
  if (g_strcmp0 (type, "ByteLevel") == 0) {
    if (!parse_byte_level (tok, n, &regex, error))
      return FALSE;
    byte_level = TRUE;
  } else if (g_strcmp0 (type, "Sequence") == 0) {
    JsonNode *list = json_object_get_member (json_node_get_object (n), "pretokenizers");
    JsonArray *a = list && JSON_NODE_HOLDS_ARRAY (list) ? json_node_get_array (list) : NULL;
    guint len = a ? json_array_get_length (a) : 0;
    /* Exactly the Qwen2 shape: [Split(regex, Isolated), ByteLevel(no regex)]. */
    JsonNode *split = len == 2 ? json_array_get_element (a, 0) : NULL;
    JsonNode *bl = len == 2 ? json_array_get_element (a, 1) : NULL;
    if (g_strcmp0 (object_type (split), "Split") != 0 || g_strcmp0 (object_type (bl), "ByteLevel") != 0)
      return unsupported (tok, _ ("the pre-tokenizer"), n, error);
    JsonObject *so = json_node_get_object (split);
    JsonNode *behavior = json_object_get_member (so, "behavior");
    JsonNode *pattern = json_object_get_member (so, "pattern");
    JsonObject *po = pattern && JSON_NODE_HOLDS_OBJECT (pattern) ? json_node_get_object (pattern) : NULL;
    JsonNode *re = po ? json_object_get_member (po, "Regex") : NULL;
    JsonNode *str = po ? json_object_get_member (po, "String") : NULL;
    if (behavior == NULL || !JSON_NODE_HOLDS_VALUE (behavior) ||
        g_strcmp0 (json_node_get_string (behavior), "Isolated") != 0 || json_bool_member (so, "invert"))
      return unsupported (tok, _ ("the split"), split, error);
    if (re != NULL && JSON_NODE_HOLDS_VALUE (re) && json_node_get_value_type (re) == G_TYPE_STRING)
      regex = json_node_get_string (re);
    else if (str != NULL && JSON_NODE_HOLDS_VALUE (str) && json_node_get_value_type (str) == G_TYPE_STRING)
      regex = escaped = g_regex_escape_string (json_node_get_string (str), -1);
    else
      return unsupported (tok, _ ("the split pattern"), pattern, error);
    if (!parse_byte_level (tok, bl, &regex, error))
      return FALSE;
    byte_level = TRUE;
  }
  if (!byte_level)
    return unsupported (tok, _ ("the pre-tokenizer"), n, error);
  return compile_split (tok, regex, error);
  return TRUE;
}

static gboolean
parse_model (DgTokenizer *tok, JsonNode *n, GError **error)
{
  if (g_strcmp0 (object_type (n), "BPE") != 0) {
    /* Older files omit "type" but are recognisable by their BPE members. */
    if (n == NULL || !JSON_NODE_HOLDS_OBJECT (n) || object_type (n) != NULL ||
        !json_object_has_member (json_node_get_object (n), "merges"))
      return unsupported (tok, _ ("the model"), n, error);
  }
  JsonObject *m = json_node_get_object (n);
  JsonNode *dropout = json_object_get_member (m, "dropout");
  if (!is_null (dropout) && !(JSON_NODE_HOLDS_VALUE (dropout) && json_node_get_double (dropout) == 0.0))
    return unsupported (tok, "BPE dropout", dropout, error);
  if (json_bool_member (m, "byte_fallback"))
    return unsupported (tok, "BPE byte_fallback", json_object_get_member (m, "byte_fallback"), error);
  if (!empty_string_member (m, "continuing_subword_prefix"))
    return unsupported (tok, "continuing_subword_prefix", json_object_get_member (m, "continuing_subword_prefix"),
                        error);
  if (!empty_string_member (m, "end_of_word_suffix"))
    return unsupported (tok, "end_of_word_suffix", json_object_get_member (m, "end_of_word_suffix"), error);
  tok->fuse_unk = json_bool_member (m, "fuse_unk");
  tok->ignore_merges = json_bool_member (m, "ignore_merges");

  JsonNode *vocab = json_object_get_member (m, "vocab");
  JsonNode *merges = json_object_get_member (m, "merges");
  if (vocab == NULL || !JSON_NODE_HOLDS_OBJECT (vocab) || merges == NULL || !JSON_NODE_HOLDS_ARRAY (merges)) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: model.vocab (an object) or model.merges (a list) is missing"), tok->display);
    return FALSE;
  }
  if (!load_vocab (tok, json_node_get_object (vocab), "model.vocab", error))
    return FALSE;
  if (!load_merges_json (tok, json_node_get_array (merges), error))
    return FALSE;

  JsonNode *unk = json_object_get_member (m, "unk_token");
  if (!is_null (unk)) {
    gpointer id;
    if (!JSON_NODE_HOLDS_VALUE (unk) || json_node_get_value_type (unk) != G_TYPE_STRING ||
        !g_hash_table_lookup_extended (tok->vocab, json_node_get_string (unk), NULL, &id)) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: model.unk_token is not a token of the vocabulary"),
                   tok->display);
      return FALSE;
    }
    tok->unk_id = GPOINTER_TO_INT (id);
  }
  return TRUE;
}

/* Post-processors that add tokens (BOS/EOS templates) would change the ids. */
static gboolean
check_post_processor (DgTokenizer *tok, JsonNode *n, GError **error)
{
  const char *type = object_type (n);
  if (is_null (n) || g_strcmp0 (type, "ByteLevel") == 0)
    return TRUE;
  if (g_strcmp0 (type, "Sequence") == 0) {
    JsonNode *list = json_object_get_member (json_node_get_object (n), "processors");
    if (list != NULL && JSON_NODE_HOLDS_ARRAY (list)) {
      JsonArray *a = json_node_get_array (list);
      for (guint i = 0; i < json_array_get_length (a); i++)
        if (!check_post_processor (tok, json_array_get_element (a, i), error))
          return FALSE;
      return TRUE;
    }
  }
  return unsupported (tok, _ ("the post-processor"), n, error);
}

static gboolean
load_tokenizer_json (DgTokenizer *tok, const char *path, GError **error)
{
  g_autoptr (JsonObject) root =
      dg_json_load_object (path, tok->display, MAX_TOKENIZER_BYTES, MAX_TOKENIZER_DEPTH, error);
  if (root == NULL)
    return FALSE;
  if (!parse_model (tok, json_object_get_member (root, "model"), error) ||
      !parse_normalizer (tok, json_object_get_member (root, "normalizer"), error) ||
      !parse_pre_tokenizer (tok, json_object_get_member (root, "pre_tokenizer"), error) ||
      !check_post_processor (tok, json_object_get_member (root, "post_processor"), error))
    return FALSE;

  g_autoptr (GArray) added = g_array_new (FALSE, TRUE, sizeof (AddedToken));
  g_array_set_clear_func (added, added_token_clear);
  JsonNode *list = json_object_get_member (root, "added_tokens");
  if (!is_null (list)) {
    if (!JSON_NODE_HOLDS_ARRAY (list)) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: “added_tokens” is not a list"), tok->display);
      return FALSE;
    }
    JsonArray *a = json_node_get_array (list);
    for (guint i = 0; i < json_array_get_length (a); i++) {
      AddedToken t;
      if (!parse_added_token (tok, json_array_get_element (a, i), 0, FALSE, "added_tokens", &t, error))
        return FALSE;
      g_array_append_val (added, t);
    }
  }
  g_array_set_clear_func (added, NULL);
  if (!finish_added (tok, g_steal_pointer (&added), error))
    return FALSE;

  /* The pad token of a "padding" block, for files without tokenizer_config.json. */
  JsonNode *padding = json_object_get_member (root, "padding");
  if (padding != NULL && JSON_NODE_HOLDS_OBJECT (padding)) {
    gint32 id;
    if (node_to_id (json_object_get_member (json_node_get_object (padding), "pad_id"), &id))
      tok->pad_id = id;
  }
  return TRUE;
}

/* ---- loading: vocab.json + merges.txt ---------------------------------------------------- */

static gboolean
load_added_from_config (DgTokenizer *tok, JsonObject *config, const char *display, GError **error)
{
  g_autoptr (GArray) added = g_array_new (FALSE, TRUE, sizeof (AddedToken));
  g_array_set_clear_func (added, added_token_clear);
  JsonNode *dec = config ? json_object_get_member (config, "added_tokens_decoder") : NULL;
  if (!is_null (dec)) {
    if (!JSON_NODE_HOLDS_OBJECT (dec)) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: “added_tokens_decoder” is not an object"), display);
      return FALSE;
    }
    JsonObjectIter it;
    const char *key;
    JsonNode *value;
    json_object_iter_init (&it, json_node_get_object (dec));
    while (json_object_iter_next (&it, &key, &value)) {
      char *end = NULL;
      gint64 id = g_ascii_strtoll (key, &end, 10);
      if (end == key || *end != '\0' || id < 0 || id > MAX_TOKEN_ID) {
        g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                     _ ("%s: “added_tokens_decoder” has the key “%s”, which is not a token id"), display, key);
        return FALSE;
      }
      AddedToken t;
      if (!parse_added_token (tok, value, (gint32) id, TRUE, "added_tokens_decoder", &t, error))
        return FALSE;
      g_array_append_val (added, t);
    }
  }
  g_array_set_clear_func (added, NULL);
  return finish_added (tok, g_steal_pointer (&added), error);
}

static gboolean
load_vocab_merges (DgTokenizer *tok, const char *vocab_path, const char *merges_path, JsonObject *config,
                   const char *config_display, GError **error)
{
  g_autoptr (JsonObject) vocab = dg_json_load_object (vocab_path, tok->display, MAX_TOKENIZER_BYTES, 4, error);
  if (vocab == NULL || !load_vocab (tok, vocab, tok->display, error))
    return FALSE;
  if (!load_merges_txt (tok, merges_path, error))
    return FALSE;
  /* What transformers' Qwen2Tokenizer does in code: NFC, the Qwen2 split, byte-level. */
  tok->nfc = TRUE;
  if (!compile_split (tok, QWEN2_SPLIT_REGEX, error))
    return FALSE;
  return load_added_from_config (tok, config, config_display, error);
}

/* ---- loading: entry point ---------------------------------------------------------------- */

/* pad_token of tokenizer_config.json: a string, or an object with "content" (older files). */
static const char *
config_pad_token (JsonObject *config)
{
  JsonNode *n = config ? json_object_get_member (config, "pad_token") : NULL;
  if (n != NULL && JSON_NODE_HOLDS_OBJECT (n))
    n = json_object_get_member (json_node_get_object (n), "content");
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static gboolean
build_id_table (DgTokenizer *tok, GError **error)
{
  guint n = 0;
  GHashTableIter it;
  gpointer key, value;
  GHashTable *tables[2] = { tok->vocab, tok->added_ids };
  for (guint t = 0; t < 2; t++) {
    g_hash_table_iter_init (&it, tables[t]);
    while (g_hash_table_iter_next (&it, &key, &value)) n = MAX (n, (guint) GPOINTER_TO_INT (value) + 1);
  }
  tok->n_ids = n;
  tok->id_to_token = g_new0 (char *, n);
  tok->id_is_added = g_new0 (gboolean, n);
  /* Added tokens win for decoding when an id is in both. */
  for (guint t = 0; t < 2; t++) {
    g_hash_table_iter_init (&it, tables[t]);
    while (g_hash_table_iter_next (&it, &key, &value)) {
      guint id = (guint) GPOINTER_TO_INT (value);
      if (t == 0 && tok->id_to_token[id] != NULL && strcmp (tok->id_to_token[id], key) != 0) {
        g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: the tokens “%s” and “%s” have the same id %u"),
                     tok->display, tok->id_to_token[id], (char *) key, id);
        return FALSE;
      }
      tok->id_to_token[id] = key;
      tok->id_is_added[id] = t == 1;
    }
  }
  for (guint b = 0; b < 256; b++) {
    char s[8];
    s[g_unichar_to_utf8 (byte_to_unicode (b), s)] = '\0';
    gpointer id;
    tok->byte_id[b] = g_hash_table_lookup_extended (tok->vocab, s, NULL, &id) ? GPOINTER_TO_INT (id) : -1;
  }
  return TRUE;
}

static char *
existing (const char *dir, const char *name)
{
  char *p = g_build_filename (dir, name, NULL);
  if (g_file_test (p, G_FILE_TEST_IS_REGULAR))
    return p;
  g_free (p);
  return NULL;
}


/* Finds the tokenizer files for @path (see tokenizer.h). Sets exactly one of *@tokenizer_json and
 * *@vocab_json (then also *@merges_txt) and the folder they are in. */
static gboolean
resolve_files (const char *path, char **dir, char **tokenizer_json, char **vocab_json, char **merges_txt,
               GError **error)
{
  g_autofree char *display = dg_display_name (path);
  if (dg_vfolder_is_virtual (path)) { /* a synthetic model's tokenizer: tokenizer.json in @path */
    *dir = g_strdup (path);
    *tokenizer_json = g_build_filename (path, "tokenizer.json", NULL);
    return TRUE;
  }
  if (g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_autofree char *base = g_path_get_basename (path);
    *dir = g_path_get_dirname (path);
    if (g_strcmp0 (base, "vocab.json") == 0) {
      *vocab_json = g_strdup (path);
      *merges_txt = g_build_filename (*dir, "merges.txt", NULL);
    } else
      *tokenizer_json = g_strdup (path);
    return TRUE;
  }
  if (!g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, DG_ERROR, DG_ERROR_MISSING, _ ("%s: no such file or folder (looking for the tokenizer)"),
                 display);
    return FALSE;
  }
  g_autofree char *sub = g_build_filename (path, "tokenizer", NULL);
  const char *dirs[2] = { path, sub };
  for (guint i = 0; i < 2; i++) {
    if ((*tokenizer_json = existing (dirs[i], "tokenizer.json")) != NULL ||
        (*vocab_json = existing (dirs[i], "vocab.json")) != NULL) {
      *dir = g_strdup (dirs[i]);
      if (*vocab_json != NULL)
        *merges_txt = g_build_filename (*dir, "merges.txt", NULL);
      return TRUE;
    }
  }
  g_set_error (error, DG_ERROR, DG_ERROR_MISSING,
               _ ("%s: no tokenizer here: expected tokenizer.json (or vocab.json and merges.txt), in the folder or "
                  "in its tokenizer/ subfolder — is the model download complete?"),
               display);
  return FALSE;
}

DgTokenizer *
dg_tokenizer_load (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autofree char *dir = NULL, *tokenizer_json = NULL, *vocab_json = NULL, *merges_txt = NULL;
  if (!resolve_files (path, &dir, &tokenizer_json, &vocab_json, &merges_txt, error))
    return NULL;

  g_autoptr (DgTokenizer) tok = g_new0 (DgTokenizer, 1);
  tok->display = dg_display_name (tokenizer_json ? tokenizer_json : vocab_json);
  tok->vocab = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  tok->added_ids = g_hash_table_new (g_str_hash, g_str_equal);
  tok->unk_id = -1;
  tok->pad_id = -1;
  g_mutex_init (&tok->cache_lock);
  tok->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  /* tokenizer_config.json is optional: the npm copy of the Qwen vocabulary ships without it. */
  g_autoptr (JsonObject) config = NULL;
  g_autofree char *config_path = existing (dir, "tokenizer_config.json");
  g_autofree char *config_display = config_path ? dg_display_name (config_path) : NULL;
  if (config_path != NULL && (config = dg_json_load_object (config_path, config_display, MAX_CONFIG_BYTES,
                                                            MAX_TOKENIZER_DEPTH, error)) == NULL)
    return NULL;

  if (tokenizer_json != NULL ? !load_tokenizer_json (tok, tokenizer_json, error)
                             : !load_vocab_merges (tok, vocab_json, merges_txt, config, config_display, error))
    return NULL;
  if (!build_id_table (tok, error))
    return NULL;

  const char *pad = config_pad_token (config);
  if (pad != NULL) {
    tok->pad_id = dg_tokenizer_token_id (tok, pad);
    if (tok->pad_id < 0) {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: the pad token “%s” is not a token of %s"), config_display,
                   pad, tok->display);
      return NULL;
    }
  } else if (tok->pad_id < 0)
    tok->pad_id = dg_tokenizer_token_id (tok, "<|endoftext|>");
  return g_steal_pointer (&tok);
}

void
dg_tokenizer_free (DgTokenizer *tok)
{
  if (tok == NULL)
    return;
  for (guint i = 0; i < tok->n_added; i++) g_free (tok->added[i].content);
  g_free (tok->added);
  g_free (tok->raw_matcher.tokens);
  g_free (tok->normalized_matcher.tokens);
  g_clear_pointer (&tok->vocab, g_hash_table_unref);
  g_clear_pointer (&tok->added_ids, g_hash_table_unref);
  g_clear_pointer (&tok->cache, g_hash_table_unref);
  g_clear_pointer (&tok->split, g_regex_unref);
  g_mutex_clear (&tok->cache_lock);
  g_free (tok->id_to_token);
  g_free (tok->id_is_added);
  g_free (tok->merges);
  g_free (tok->display);
  g_free (tok);
}

/* ---- encoding: BPE of one word -------------------------------------------------------------- */

typedef struct {
  gint32 id;
  gint32 prev, next; /* neighbours in the merged sequence, -1 at the ends */
  gint32 len;        /* bytes covered; 0 once merged into the left neighbour */
} Symbol;

typedef struct {
  guint32 rank;
  guint32 pos;
  gint32 new_id;
} Candidate;

static inline gboolean
cand_before (const Candidate *a, const Candidate *b)
{
  return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void
heap_push (Candidate *heap, gsize *n, Candidate c)
{
  gsize i = (*n)++;
  while (i > 0) {
    gsize parent = (i - 1) / 2;
    if (!cand_before (&c, &heap[parent]))
      break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = c;
}

static Candidate
heap_pop (Candidate *heap, gsize *n)
{
  Candidate top = heap[0], last = heap[--(*n)];
  gsize i = 0;
  for (;;) {
    gsize child = 2 * i + 1;
    if (child >= *n)
      break;
    if (child + 1 < *n && cand_before (&heap[child + 1], &heap[child]))
      child++;
    if (!cand_before (&heap[child], &last))
      break;
    heap[i] = heap[child];
    i = child;
  }
  if (*n > 0)
    heap[i] = last;
  return top;
}

static void
push_pair (const DgTokenizer *tok, const Symbol *sym, gint32 pos, Candidate *heap, gsize *n_heap)
{
  const MergeSlot *m = merge_find (tok, sym[pos].id, sym[sym[pos].next].id);
  if (m != NULL)
    heap_push (heap, n_heap, (Candidate) { m->rank, (guint32) pos, m->new_id });
}

/* tokenizers' Word::merge_all, step for step (including how it recognises stale queue entries),
 * so that ties and overlapping pairs resolve as they do there. Every merge is O(log n): a word of
 * 10,000 letters takes milliseconds, not the quadratic time of the rescanning textbook loop. */
static void
bpe_word (const DgTokenizer *tok, const guint8 *w, gsize n, GArray *out)
{
  if (tok->ignore_merges) {
    GString *s = g_string_sized_new (2 * n);
    for (gsize i = 0; i < n; i++) g_string_append_unichar (s, byte_to_unicode (w[i]));
    gpointer id;
    gboolean whole = g_hash_table_lookup_extended (tok->vocab, s->str, NULL, &id);
    g_string_free (s, TRUE);
    if (whole) {
      gint32 v = GPOINTER_TO_INT (id);
      g_array_append_val (out, v);
      return;
    }
  }

  Symbol *sym = g_new (Symbol, n);
  gint32 n_sym = 0;
  gboolean last_unk = FALSE;
  for (gsize i = 0; i < n; i++) {
    gint32 id = tok->byte_id[w[i]];
    gboolean unk = id < 0;
    if (unk) {
      if (tok->unk_id < 0)
        continue; /* no unk token: tokenizers drops the byte */
      if (tok->fuse_unk && last_unk && n_sym > 0) {
        sym[n_sym - 1].len++;
        continue;
      }
      id = tok->unk_id;
    }
    sym[n_sym] = (Symbol) { id, n_sym - 1, n_sym + 1, 1 };
    n_sym++;
    last_unk = unk;
  }
  if (n_sym == 0) {
    g_free (sym);
    return;
  }
  sym[n_sym - 1].next = -1;

  /* Each merge pushes at most two candidates. */
  Candidate *heap = g_new (Candidate, 3 * (gsize) n_sym + 1);
  gsize n_heap = 0;
  for (gint32 i = 0; i + 1 < n_sym; i++) push_pair (tok, sym, i, heap, &n_heap);
  while (n_heap > 0) {
    Candidate top = heap_pop (heap, &n_heap);
    Symbol *cur = &sym[top.pos];
    if (cur->len == 0 || cur->next < 0)
      continue;
    gint32 next_pos = cur->next;
    Symbol right = sym[next_pos];
    const MergeSlot *m = merge_find (tok, cur->id, right.id);
    if (m == NULL || m->new_id != top.new_id)
      continue; /* stale: one side has merged since this entry was queued */
    cur->id = top.new_id;
    cur->len += right.len;
    cur->next = right.next;
    sym[next_pos].len = 0;
    if (right.next >= 0)
      sym[right.next].prev = (gint32) top.pos;
    if (cur->prev >= 0)
      push_pair (tok, sym, cur->prev, heap, &n_heap);
    if (cur->next >= 0)
      push_pair (tok, sym, (gint32) top.pos, heap, &n_heap);
  }
  for (gint32 i = 0; i < n_sym; i++)
    if (sym[i].len > 0)
      g_array_append_val (out, sym[i].id);
  g_free (heap);
  g_free (sym);
}

/* BPE through the word cache: prompts repeat the same few hundred words. */
static void
encode_word (DgTokenizer *tok, const char *w, gsize n, GArray *out)
{
  if (n > MAX_CACHED_WORD_BYTES) {
    bpe_word (tok, (const guint8 *) w, n, out);
    return;
  }
  char key[MAX_CACHED_WORD_BYTES + 1];
  memcpy (key, w, n);
  key[n] = '\0';
  g_mutex_lock (&tok->cache_lock);
  const gint32 *hit = g_hash_table_lookup (tok->cache, key);
  if (hit != NULL)
    g_array_append_vals (out, hit + 1, (guint) hit[0]);
  g_mutex_unlock (&tok->cache_lock);
  if (hit != NULL)
    return;

  guint start = out->len;
  bpe_word (tok, (const guint8 *) w, n, out);
  guint n_ids = out->len - start;
  gint32 *value = g_new (gint32, 1 + n_ids);
  value[0] = (gint32) n_ids;
  if (n_ids > 0) /* a word a crafted vocabulary cannot spell gives none, and out may hold no data yet */
    memcpy (value + 1, &g_array_index (out, gint32, start), n_ids * sizeof (gint32));
  g_mutex_lock (&tok->cache_lock);
  if (g_hash_table_size (tok->cache) >= MAX_CACHE_WORDS)
    g_hash_table_remove_all (tok->cache);
  g_hash_table_replace (tok->cache, g_strdup (key), value);
  g_mutex_unlock (&tok->cache_lock);
}

/* ---- encoding: the pipeline ------------------------------------------------------------------ */

/* Pre-tokenizer split ("Isolated": every match is a word, and so is any text between matches). */
static gboolean
encode_words (DgTokenizer *tok, const char *s, gsize n, GArray *out, GError **error)
{
  g_autoptr (GMatchInfo) mi = NULL;
  g_autoptr (GError) local = NULL;
  gsize prev = 0;
  g_regex_match_full (tok->split, s, (gssize) n, 0, 0, &mi, &local);
  while (local == NULL && g_match_info_matches (mi)) {
    gint a, b;
    g_match_info_fetch_pos (mi, 0, &a, &b);
    if ((gsize) a > prev)
      encode_word (tok, s + prev, (gsize) a - prev, out);
    if (b > a)
      encode_word (tok, s + a, (gsize) (b - a), out);
    prev = (gsize) b;
    g_match_info_next (mi, &local);
  }
  if (local != NULL) {
    g_set_error (error, DG_ERROR, DG_ERROR_FAILED, _ ("Could not split the prompt into words: %s"), local->message);
    return FALSE;
  }
  if (prev < n)
    encode_word (tok, s + prev, n - prev, out);
  return TRUE;
}

typedef gboolean (*SpanFunc) (DgTokenizer *tok, const char *s, gsize n, GArray *out, GError **error);

/* Cuts the added tokens of @m out of @s (leftmost-longest), appends their ids, and hands the text
 * between them to @gap. */
static gboolean
split_added (DgTokenizer *tok, const AddedMatcher *m, const char *s, gsize n, SpanFunc gap, GArray *out, GError **error)
{
  gsize start = 0;
  for (gsize i = 0; i < n && m->n > 0;) {
    guint8 c = (guint8) s[i];
    const AddedToken *hit = NULL;
    for (guint k = m->first[c]; k < m->first[c + 1]; k++) {
      const AddedToken *t = m->tokens[k];
      if (t->len <= n - i && memcmp (s + i, t->content, t->len) == 0) {
        hit = t;
        break;
      }
    }
    if (hit == NULL) {
      i++;
      continue;
    }
    if (i > start && !gap (tok, s + start, i - start, out, error))
      return FALSE;
    g_array_append_val (out, hit->id);
    i += hit->len;
    start = i;
  }
  if (start < n && !gap (tok, s + start, n - start, out, error))
    return FALSE;
  return TRUE;
}

static gboolean
encode_normalized (DgTokenizer *tok, const char *s, gsize n, GArray *out, GError **error)
{
  return split_added (tok, &tok->normalized_matcher, s, n, encode_words, out, error);
}

static gboolean
is_ascii (const char *s, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if ((guint8) s[i] >= 0x80)
      return FALSE;
  return TRUE;
}

/* NFC in linear time from GLib's Unicode data (decomposition, combining classes, composition).
 * g_utf8_normalize itself gives the same text but is quadratic on long inputs: it composes by
 * shifting the rest of its buffer for every composition (a megabyte of "é" took 20 s) and orders
 * combining marks with a bubble sort. */

/* Stable sort of a run of non-starters by combining class (UAX #15 canonical ordering). */
static void
canonical_order (gunichar *c, guint8 *cc, gsize n)
{
  if (n < 32) {
    for (gsize i = 1; i < n; i++)
      for (gsize j = i; j > 0 && cc[j - 1] > cc[j]; j--) {
        gunichar tc = c[j];
        c[j] = c[j - 1];
        c[j - 1] = tc;
        guint8 tk = cc[j];
        cc[j] = cc[j - 1];
        cc[j - 1] = tk;
      }
    return;
  }
  gsize start[257] = { 0 };
  for (gsize i = 0; i < n; i++) start[cc[i] + 1]++;
  for (guint k = 1; k < 257; k++) start[k] += start[k - 1];
  gunichar *tmp = g_new (gunichar, n);
  for (gsize i = 0; i < n; i++) tmp[start[cc[i]]++] = c[i];
  memcpy (c, tmp, n * sizeof (gunichar));
  for (gsize i = 0; i < n; i++) cc[i] = (guint8) g_unichar_combining_class (c[i]);
  g_free (tmp);
}

static char *
nfc_normalize (const char *s, gsize n)
{
  /* Canonical decomposition with canonical ordering of every run of non-starters. */
  GArray *chars = g_array_sized_new (FALSE, FALSE, sizeof (gunichar), (guint) n);
  GArray *classes = g_array_sized_new (FALSE, FALSE, sizeof (guint8), (guint) n);
  gsize run = 0; /* start of the current run of non-starters */
  for (const char *p = s; p < s + n; p = g_utf8_next_char (p)) {
    gunichar d[G_UNICHAR_MAX_DECOMPOSITION_LENGTH];
    gsize k = g_unichar_fully_decompose (g_utf8_get_char (p), FALSE, d, G_N_ELEMENTS (d));
    for (gsize i = 0; i < k; i++) {
      guint8 cc = (guint8) g_unichar_combining_class (d[i]);
      if (cc == 0) {
        gsize len = chars->len;
        if (len - run > 1)
          canonical_order (&g_array_index (chars, gunichar, run), &g_array_index (classes, guint8, run), len - run);
        run = len + 1;
      }
      g_array_append_val (chars, d[i]);
      g_array_append_val (classes, cc);
    }
  }
  if (chars->len - run > 1 && run < chars->len)
    canonical_order (&g_array_index (chars, gunichar, run), &g_array_index (classes, guint8, run), chars->len - run);

  /* Canonical composition: a character joins the last starter unless a character between them
   * has class 0 or a class not below its own (the run is ordered, so the last one decides). */
  gunichar *c = (gunichar *) (void *) chars->data;
  guint8 *cc = (guint8 *) classes->data;
  gsize out = 0;
  gssize starter = -1;
  guint last_cc = 0;
  for (gsize i = 0; i < chars->len; i++) {
    if (starter >= 0) {
      gboolean adjacent = (gsize) starter == out - 1;
      gunichar composed;
      if ((adjacent || (last_cc != 0 && last_cc < cc[i])) && g_unichar_compose (c[starter], c[i], &composed)) {
        c[starter] = composed;
        continue;
      }
    }
    if (cc[i] == 0)
      starter = (gssize) out;
    last_cc = cc[i];
    c[out++] = c[i];
  }
  char *utf8 = g_ucs4_to_utf8 (c, (glong) out, NULL, NULL, NULL);
  g_assert (utf8 != NULL);
  g_array_unref (chars);
  g_array_unref (classes);
  return utf8;
}

static gboolean
encode_raw (DgTokenizer *tok, const char *s, gsize n, GArray *out, GError **error)
{
  if (!tok->nfc || is_ascii (s, n)) /* ASCII is its own NFC */
    return encode_normalized (tok, s, n, out, error);
  g_autofree char *norm = nfc_normalize (s, n);
  return encode_normalized (tok, norm, strlen (norm), out, error);
}

gboolean
dg_tokenizer_encode (DgTokenizer *tok, const char *text, GArray *ids_out, GError **error)
{
  g_return_val_if_fail (tok != NULL, FALSE);
  g_return_val_if_fail (text != NULL, FALSE);
  g_return_val_if_fail (ids_out != NULL && g_array_get_element_size (ids_out) == sizeof (gint32), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  const char *bad = NULL;
  if (!g_utf8_validate (text, -1, &bad)) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("The prompt is not valid UTF-8 text: the byte at offset %zu"
                    " (0x%02x) is not part of a valid character. Re-type the text or paste it as plain text."),
                 (gsize) (bad - text), (guint) (guint8) *bad);
    return FALSE;
  }
  gsize n = strlen (text);
  if (n > G_MAXINT / 4) /* GRegex match offsets are ints, and NFC may triple the length */
  {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("The prompt is too long (%zu bytes)"), n);
    return FALSE;
  }
  guint old_len = ids_out->len;
  if (!split_added (tok, &tok->raw_matcher, text, n, encode_raw, ids_out, error)) {
    g_array_set_size (ids_out, old_len);
    return FALSE;
  }
  return TRUE;
}

/* ---- lookups and decoding -------------------------------------------------------------------- */

gint32
dg_tokenizer_token_id (const DgTokenizer *tok, const char *token)
{
  g_return_val_if_fail (tok != NULL && token != NULL, -1);
  gpointer id;
  if (g_hash_table_lookup_extended (tok->added_ids, token, NULL, &id) ||
      g_hash_table_lookup_extended (tok->vocab, token, NULL, &id))
    return GPOINTER_TO_INT (id);
  return -1;
}

gint32
dg_tokenizer_pad_id (const DgTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, -1);
  return tok->pad_id;
}

guint
dg_tokenizer_n_ids (const DgTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, 0);
  return tok->n_ids;
}

const char *
dg_tokenizer_display_name (const DgTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, NULL);
  return tok->display;
}

char *
dg_tokenizer_decode (const DgTokenizer *tok, const gint32 *ids, gsize n_ids)
{
  g_return_val_if_fail (tok != NULL, NULL);
  g_return_val_if_fail (ids != NULL || n_ids == 0, NULL);
  GString *s = g_string_new (NULL);
  for (gsize i = 0; i < n_ids; i++) {
    gint32 id = ids[i];
    const char *t = id >= 0 && (guint) id < tok->n_ids ? tok->id_to_token[id] : NULL;
    if (t == NULL)
      g_string_append_printf (s, "<|unknown id %d|>", id);
    else if (tok->id_is_added[id])
      g_string_append (s, t);
    else
      for (const char *p = t; *p; p = g_utf8_next_char (p)) {
        int b = unicode_to_byte (g_utf8_get_char (p));
        if (b >= 0)
          g_string_append_c (s, (char) b);
        else
          g_string_append_len (s, p, g_utf8_next_char (p) - p);
      }
  }
  char *valid = g_utf8_make_valid (s->str, (gssize) s->len);
  g_string_free (s, TRUE);
  return valid;
}
