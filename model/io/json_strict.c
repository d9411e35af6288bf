#include "json_strict.h"

#include <string.h>

#include "dg_error.h"
#include "dg_i18n.h"
#include "vfolder.h"

/* Walks the text once, tracking only string state and nesting depth; json-glib checks the grammar
 * afterwards. Returns the number of members of the top-level object (the colons at depth 1), so
 * the caller can compare it with what json-glib kept and detect duplicate keys. */
static gboolean
prescan (const char *text, gsize len, const char *display, const char *what, guint max_depth, gsize *n_top_members,
         GError **error)
{
  if (!g_utf8_validate_len (text, len, NULL)) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: the %s is not valid UTF-8 text (or contains a NUL byte); the file is damaged or not "
                    "what its name says"),
                 display, what);
    return FALSE;
  }

  gboolean in_string = FALSE, escaped = FALSE, ended = FALSE;
  guint depth = 0;
  gsize colons = 0;
  for (gsize i = 0; i < len; i++) {
    char c = text[i];
    /* json-glib stops after the first complete value and ignores the rest ("{}{}" parses). */
    if (ended && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: the %s has more text after its JSON object (at byte %zu)"),
                   display, what, i);
      return FALSE;
    }
    if (in_string) {
      if (escaped)
        escaped = FALSE;
      else if (c == '\\')
        escaped = TRUE;
      else if (c == '"')
        in_string = FALSE;
      continue;
    }
    switch (c) {
    case '"': in_string = TRUE; break;
    case '{':
    case '[':
      if (++depth > max_depth) {
        g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                     _ ("%s: the %s nests deeper than %u levels, which no valid file does"), display, what, max_depth);
        return FALSE;
      }
      break;
    case '}':
    case ']':
      if (depth > 0 && --depth == 0)
        ended = TRUE;
      break;
    case ':':
      if (depth == 1)
        colons++;
      break;
    case '/':
    case '\'':
      g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                   _ ("%s: the %s is not plain JSON (comment or single quote at byte %zu)"), display, what, i);
      return FALSE;
    default: break;
    }
  }
  *n_top_members = colons;
  return TRUE;
}

JsonObject *
dg_json_parse_object (const char *text, gsize len, const char *display, const char *what, guint max_depth,
                      GError **error)
{
  gsize n_members = 0;
  if (!prescan (text, len, display, what, max_depth, &n_members, error))
    return NULL;
  if (len > G_MAXSSIZE) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: the %s is too large"), display, what);
    return NULL;
  }

  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) local = NULL;
  if (!json_parser_load_from_data (parser, text, (gssize) len, &local)) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: the %s is not valid JSON: %s"), display, what,
                 local->message);
    return NULL;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, _ ("%s: the %s is not a JSON object but %s"), display, what,
                 root == NULL                   ? _ ("empty")
                 : JSON_NODE_HOLDS_ARRAY (root) ? _ ("a list")
                 : JSON_NODE_HOLDS_NULL (root)  ? "null"
                                                : _ ("a single value"));
    return NULL;
  }
  JsonObject *obj = json_node_get_object (root);
  if (json_object_get_size (obj) != n_members) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s: the %s has a key that appears twice, so it is ambiguous which value is meant"), display, what);
    return NULL;
  }
  return json_object_ref (obj);
}

JsonObject *
dg_json_load_object (const char *path, const char *display, gsize max_bytes, guint max_depth, GError **error)
{
  g_autoptr (GMappedFile) map = NULL;
  g_autoptr (GError) local = NULL;

  if (dg_vfolder_is_virtual (path)) { /* a synthetic model's config or tokenizer */
    g_autofree char *text = dg_vfolder_read_text (path, error);
    return text ? dg_json_parse_object (text, strlen (text), display, "file", max_depth, error) : NULL;
  }
  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_set_error (error, DG_ERROR, DG_ERROR_MISSING, _ ("%s does not exist; is the model folder complete?"), path);
    return NULL;
  }
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, DG_ERROR, DG_ERROR_IO, _ ("%s is not a regular file"), path);
    return NULL;
  }
  map = g_mapped_file_new (path, FALSE, &local);
  if (map == NULL) {
    g_set_error (error, DG_ERROR, DG_ERROR_IO, _ ("cannot read %s: %s"), path, local->message);
    return NULL;
  }
  gsize len = g_mapped_file_get_length (map);
  if (len > max_bytes) {
    g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
                 _ ("%s is %zu bytes, more than any valid file of its kind (%zu"
                    "); is it the right file?"),
                 display, len, max_bytes);
    return NULL;
  }
  /* An empty file maps to NULL contents; give the parser a valid pointer all the same. */
  const char *text = len ? g_mapped_file_get_contents (map) : "";
  return dg_json_parse_object (text, len, display, _ ("file"), max_depth, error);
}

char *
dg_display_name (const char *path)
{
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *parent = g_path_get_basename (dir);
  if (g_strcmp0 (parent, ".") == 0 || g_strcmp0 (parent, G_DIR_SEPARATOR_S) == 0)
    return g_steal_pointer (&base);
  return g_build_filename (parent, base, NULL);
}
