/* Downloading the model from the Hugging Face Hub (dg_download.h).
 *
 * One listing request, then a few worker threads, each with its own SoupSession (libsoup's
 * blocking API, one session per thread: no sharing to reason about), take files from a shared
 * queue, largest first. The calling thread only waits and reports progress, so the progress
 * function runs where the caller expects it. Every file goes through the same path:
 *   present under its name with the listed size → hashed; a match is done;
 *   else DIR/.cache/deepgen-download/PATH.part (+ PATH.part.hash naming the hash it belongs to)
 *   is hashed as far as it goes and the rest is asked for with Range, redirects followed by
 *   hand so that the token goes only to the endpoint's own host (the storage host gets a
 *   presigned URL and must not see it); the whole content hashed → fsync → rename into place. */
#include "dg_download.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "dg_error.h"
#include "dg_i18n.h"

G_DEFINE_QUARK (dg - download - error - quark, dg_download_error)

#define CACHE_DIR ".cache/deepgen-download"
#define MAX_LISTING_BYTES (32u << 20)
#define MAX_FILES 100000
#define MAX_REDIRECTS 10
#define CHUNK (256u << 10)

void
dg_download_result_clear (DgDownloadResult *r)
{
  if (!r)
    return;
  g_free (r->commit);
  memset (r, 0, sizeof *r);
}

/* ---- token ------------------------------------------------------------------------------ */

static char *
read_token_file (const char *path)
{
  g_autofree char *text = NULL;
  if (!path || !g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  g_strstrip (text);
  return *text ? g_steal_pointer (&text) : NULL;
}

char *
dg_download_find_token (void)
{
  const char *env = g_getenv ("HF_TOKEN");
  if (env && *env) {
    g_autofree char *t = g_strstrip (g_strdup (env));
    if (*t)
      return g_steal_pointer (&t);
  }
  char *t = read_token_file (g_getenv ("HF_TOKEN_PATH"));
  if (t)
    return t;
  const char *home = g_getenv ("HF_HOME");
  g_autofree char *path = NULL;
  if (home && *home)
    path = g_build_filename (home, "token", NULL);
  else if (g_getenv ("XDG_CACHE_HOME") && *g_getenv ("XDG_CACHE_HOME"))
    path = g_build_filename (g_getenv ("XDG_CACHE_HOME"), "huggingface", "token", NULL);
  else
    path = g_build_filename (g_get_home_dir (), ".cache", "huggingface", "token", NULL);
  return read_token_file (path);
}

/* ---- the file list ---------------------------------------------------------------------- */

typedef struct {
  char *path; /* repository path, '/'-separated, checked (no "..", no leading '/') */
  guint64 size;
  char *sha256;  /* lowercase hex: large (LFS) files */
  char *git_oid; /* lowercase hex sha1 of "blob SIZE\0" + content: small files */
} HubFile;

static void
hub_file_free (HubFile *f)
{
  g_free (f->path);
  g_free (f->sha256);
  g_free (f->git_oid);
  g_free (f);
}

static gboolean
is_hex (const char *s, gsize len)
{
  if (!s || strlen (s) != len)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isxdigit (s[i]))
      return FALSE;
  return TRUE;
}

/* A path the Hub may list and we may create under the model folder: relative, no empty, "."
 * or ".." segments, no backslashes or control characters. */
static gboolean
safe_repo_path (const char *p)
{
  if (!p || !*p || *p == '/' || strlen (p) > 1024 || !g_utf8_validate (p, -1, NULL))
    return FALSE;
  for (const char *c = p; *c; c++)
    if ((guchar) *c < 0x20 || *c == '\\' || *c == 0x7f)
      return FALSE;
  g_auto (GStrv) parts = g_strsplit (p, "/", -1);
  for (guint i = 0; parts[i]; i++)
    if (!*parts[i] || g_str_equal (parts[i], ".") || g_str_equal (parts[i], ".."))
      return FALSE;
  return TRUE;
}

/* Files in hidden folders or with hidden names (.gitattributes) are not part of the model,
 * and .cache is where the partial files live. */
static gboolean
hidden_repo_path (const char *p)
{
  if (*p == '.')
    return TRUE;
  return strstr (p, "/.") != NULL;
}

/* ---- state shared by the workers -------------------------------------------------------- */

typedef struct {
  /* set up before the workers start, read-only after */
  char *endpoint; /* no trailing '/' */
  GUri *endpoint_uri;
  char *repo, *revision, *commit, *token;
  char *dir, *cache;
  guint attempts, timeout_s, backoff_ms;
  GProxyResolver *proxy; /* NULL: GIO's default */
  GPtrArray *files;      /* HubFile*, largest first */

  GMutex lock;
  GCond cond;
  guint next;         /* next file to take */
  guint running;      /* workers still running */
  GError *error;      /* the first failure that stops the download */
  GCancellable *stop; /* cancelled by the user's cancellable or by a failure */
  guint files_done, files_present, files_fetched;
  char *current; /* the last file a worker started */

  GMutex count_lock;  /* for the two byte counters */
  gint64 done_bytes;  /* verified, or in .part files */
  gint64 transferred; /* over the network by this run */
} Dl;

static void
count (Dl *dl, gint64 *counter, gint64 n)
{
  g_mutex_lock (&dl->count_lock);
  *counter += n;
  g_mutex_unlock (&dl->count_lock);
}

static gint64
counted (Dl *dl, gint64 *counter)
{
  g_mutex_lock (&dl->count_lock);
  gint64 v = *counter;
  g_mutex_unlock (&dl->count_lock);
  return v;
}

static void
dl_fail (Dl *dl, GError *error)
{
  g_mutex_lock (&dl->lock);
  if (!dl->error)
    dl->error = error;
  else
    g_error_free (error);
  g_cond_broadcast (&dl->cond);
  g_mutex_unlock (&dl->lock);
  g_cancellable_cancel (dl->stop);
}

/* "host" or "host:port" when the port is not the scheme's own */
static char *
display_host (GUri *u)
{
  const int port = g_uri_get_port (u);
  const gboolean usual = port <= 0 || (port == 80 && g_ascii_strcasecmp (g_uri_get_scheme (u), "http") == 0) ||
                         (port == 443 && g_ascii_strcasecmp (g_uri_get_scheme (u), "https") == 0);
  return usual ? g_strdup (g_uri_get_host (u)) : g_strdup_printf ("%s:%d", g_uri_get_host (u), port);
}

/* The token only goes to the endpoint's own scheme, host and port. */
static gboolean
same_origin (GUri *a, GUri *b)
{
  return g_ascii_strcasecmp (g_uri_get_scheme (a), g_uri_get_scheme (b)) == 0 &&
         g_ascii_strcasecmp (g_uri_get_host (a), g_uri_get_host (b)) == 0 && g_uri_get_port (a) == g_uri_get_port (b);
}

static SoupSession *
new_session (Dl *dl)
{
  /* libsoup takes the proxy from GIO's default resolver (environment or desktop settings). */
  SoupSession *s = soup_session_new_with_options ("timeout", dl->timeout_s, "idle-timeout", dl->timeout_s, "user-agent",
                                                  "deepgen/" DG_DOWNLOAD_VERSION " (libsoup)", NULL);
  /* the hashes cover the bytes as stored: no transparent decompression */
  soup_session_remove_feature_by_type (s, SOUP_TYPE_CONTENT_DECODER);
  if (dl->proxy)
    g_object_set (s, "proxy-resolver", dl->proxy, NULL);
  return s;
}

/* ---- errors ----------------------------------------------------------------------------- */

typedef enum { ATTEMPT_OK, ATTEMPT_RETRY, ATTEMPT_FATAL } Attempt;

static gboolean
is_cancel (const GError *e)
{
  return g_error_matches (e, G_IO_ERROR, G_IO_ERROR_CANCELLED) || g_error_matches (e, DG_ERROR, DG_ERROR_CANCELLED);
}

/* A transport error (no HTTP status): what to tell the user, and whether to try again. */
static Attempt
network_error (Dl *dl, GUri *uri, GError *e, GError **error)
{
  if (is_cancel (e)) {
    g_set_error (error, DG_ERROR, DG_ERROR_CANCELLED, _ ("Cancelled."));
    g_error_free (e);
    return ATTEMPT_FATAL;
  }
  g_autofree char *host = display_host (uri);
  if (e->domain == G_IO_ERROR && (e->code == G_IO_ERROR_PROXY_FAILED || e->code == G_IO_ERROR_PROXY_AUTH_FAILED ||
                                  e->code == G_IO_ERROR_PROXY_NEED_AUTH || e->code == G_IO_ERROR_PROXY_NOT_ALLOWED)) {
    g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_PROXY,
                 _ ("The proxy did not let the connection to %s through: %s. Check the proxy settings "
                    "(http_proxy / https_proxy, or the desktop's network settings)."),
                 host, e->message);
    g_error_free (e);
    return ATTEMPT_FATAL;
  }
  if (e->domain == G_TLS_ERROR) {
    g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_NETWORK,
                 _ ("The secure connection to %s failed: %s. Check the system's date and certificates."), host,
                 e->message);
    g_error_free (e);
    return ATTEMPT_FATAL;
  }
  /* Everything else (DNS, refused, reset, timed out, cut) may be passing: try again. */
  g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_NETWORK,
               _ ("Cannot reach %s: %s. Check the network connection; run the download again to continue "
                  "where it stopped."),
               host, e->message);
  g_error_free (e);
  return ATTEMPT_RETRY;
}

/* An HTTP status that is not the one we wanted. @what names the file or "the file list". */
static Attempt
http_error (Dl *dl, SoupMessage *msg, const char *what, GError **error)
{
  const guint status = soup_message_get_status (msg);
  const char *code = soup_message_headers_get_one (soup_message_get_response_headers (msg), "X-Error-Code");
  g_autofree char *repo_url = g_strdup_printf ("%s/%s", dl->endpoint, dl->repo);
  if ((status == 401 || status == 404) && g_strcmp0 (code, "RepoNotFound") == 0) {
    /* the Hub answers 401 for a repository it does not show to anonymous users */
    if (dl->token)
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_NOT_FOUND,
                   _ ("The repository %s was not found at %s (or the token has no access to it)."), dl->repo,
                   dl->endpoint);
    else
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_NOT_FOUND,
                   _ ("The repository %s was not found at %s. If it is private or gated, set HF_TOKEN (or log in "
                      "with huggingface-cli, which writes ~/.cache/huggingface/token)."),
                   dl->repo, dl->endpoint);
    return ATTEMPT_FATAL;
  }
  switch (status) {
  case 401:
    if (dl->token)
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_AUTH,
                   _ ("%s refused the Hugging Face token (401) for %s: it is wrong or expired. Set a valid HF_TOKEN "
                      "or log in again."),
                   dl->endpoint, what);
    else
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_AUTH,
                   _ ("%s needs a Hugging Face token (401) for %s: the repository is gated or private. Accept its "
                      "terms at %s, then set HF_TOKEN (or log in with huggingface-cli)."),
                   dl->endpoint, what, repo_url);
    return ATTEMPT_FATAL;
  case 403:
    if (dl->token)
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_AUTH,
                   _ ("Access to %s was denied (403). Accept the repository's terms at %s with the account of the "
                      "token, or use a token with read access."),
                   what, repo_url);
    else
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_AUTH,
                   _ ("Access to %s was denied (403) without a token. Accept the repository's terms at %s, then "
                      "set HF_TOKEN (or log in with huggingface-cli)."),
                   what, repo_url);
    return ATTEMPT_FATAL;
  case 404:
    if (g_strcmp0 (code, "RevisionNotFound") == 0)
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_NOT_FOUND,
                   _ ("The revision '%s' does not exist in %s (404)."), dl->revision, dl->repo);
    else if (g_strcmp0 (code, "EntryNotFound") == 0)
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_NOT_FOUND, _ ("%s is not in %s at revision '%s' (404)."),
                   what, dl->repo, dl->revision);
    else
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_NOT_FOUND,
                   _ ("%s was not found (404): check the repository %s and the revision '%s' at %s."), what, dl->repo,
                   dl->revision, dl->endpoint);
    return ATTEMPT_FATAL;
  case 407:
    g_set_error (
        error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_PROXY,
        _ ("The proxy asks for credentials (407). Put them in the proxy setting (http://user:password@host:port)."));
    return ATTEMPT_FATAL;
  case 408:
  case 429:
  case 500:
  case 502:
  case 503:
  case 504:
    g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_SERVER,
                 _ ("The server answered %u (%s) for %s; it may be busy. Run the download again later to continue."),
                 status, soup_message_get_reason_phrase (msg) ? soup_message_get_reason_phrase (msg) : "", what);
    return ATTEMPT_RETRY;
  default:
    g_set_error (error, DG_DOWNLOAD_ERROR, status >= 500 ? DG_DOWNLOAD_ERROR_SERVER : DG_DOWNLOAD_ERROR_PROTOCOL,
                 _ ("The server answered %u (%s) for %s."), status,
                 soup_message_get_reason_phrase (msg) ? soup_message_get_reason_phrase (msg) : "", what);
    return status >= 500 ? ATTEMPT_RETRY : ATTEMPT_FATAL;
  }
}

/* Waits before retry @n (1, 2, ...); FALSE when the download is stopped meanwhile. */
static gboolean
backoff (Dl *dl, guint n)
{
  guint64 ms = dl->backoff_ms;
  for (guint i = 1; i < n && ms < 30000; i++) ms *= 2;
  ms = MIN (ms, 30000);
  const gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;
  g_mutex_lock (&dl->lock);
  while (!g_cancellable_is_cancelled (dl->stop) && g_get_monotonic_time () < end)
    g_cond_wait_until (&dl->cond, &dl->lock, MIN (end, g_get_monotonic_time () + 50000));
  g_mutex_unlock (&dl->lock);
  return !g_cancellable_is_cancelled (dl->stop);
}

/* ---- the listing ------------------------------------------------------------------------ */

/* Sends a GET with the token (when the URL is the endpoint's) and returns the response body
 * (at most MAX_LISTING_BYTES), following no redirects. */
static GBytes *
get_small (Dl *dl, SoupSession *s, GUri *uri, SoupMessage **msg_out, GError **error)
{
  SoupMessage *msg = soup_message_new_from_uri ("GET", uri);
  soup_message_add_flags (msg, SOUP_MESSAGE_NO_REDIRECT);
  if (dl->token && same_origin (uri, dl->endpoint_uri)) {
    g_autofree char *auth = g_strdup_printf ("Bearer %s", dl->token);
    soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", auth);
  }
  *msg_out = msg;
  g_autoptr (GInputStream) in = soup_session_send (s, msg, dl->stop, error);
  if (!in)
    return NULL;
  GByteArray *buf = g_byte_array_new ();
  guint8 tmp[16384];
  for (;;) {
    gssize n = g_input_stream_read (in, tmp, sizeof tmp, dl->stop, error);
    if (n < 0) {
      g_byte_array_unref (buf);
      return NULL;
    }
    if (n == 0)
      break;
    if (buf->len + (gsize) n > MAX_LISTING_BYTES) {
      g_byte_array_unref (buf);
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_PROTOCOL, _ ("The file list is larger than %u MB."),
                   MAX_LISTING_BYTES >> 20);
      return NULL;
    }
    g_byte_array_append (buf, tmp, (guint) n);
  }
  g_input_stream_close (in, NULL, NULL);
  return g_byte_array_free_to_bytes (buf);
}

static const char *
obj_string (JsonObject *o, const char *key)
{
  JsonNode *n = json_object_get_member (o, key);
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING ? json_node_get_string (n)
                                                                                         : NULL;
}

static gboolean
obj_size (JsonObject *o, const char *key, guint64 *out)
{
  JsonNode *n = json_object_get_member (o, key);
  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64 || json_node_get_int (n) < 0)
    return FALSE;
  *out = (guint64) json_node_get_int (n);
  return TRUE;
}

/* Adds the files of one page of the tree listing. */
static gboolean
parse_tree (Dl *dl, GBytes *body, GHashTable *seen, GError **error)
{
  g_autoptr (JsonParser) p = json_parser_new ();
  gsize len;
  const char *text = g_bytes_get_data (body, &len);
  GError *local = NULL;
  if (!json_parser_load_from_data (p, text ? text : "", (gssize) len, &local)) {
    g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_PROTOCOL, _ ("The file list is not valid JSON: %s"),
                 local->message);
    g_error_free (local);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root (p);
  if (!root || !JSON_NODE_HOLDS_ARRAY (root)) {
    g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_PROTOCOL, _ ("The file list is not a JSON list."));
    return FALSE;
  }
  JsonArray *a = json_node_get_array (root);
  for (guint i = 0; i < json_array_get_length (a); i++) {
    JsonNode *n = json_array_get_element (a, i);
    if (!JSON_NODE_HOLDS_OBJECT (n))
      continue;
    JsonObject *o = json_node_get_object (n);
    if (g_strcmp0 (obj_string (o, "type"), "file") != 0)
      continue;
    const char *path = obj_string (o, "path");
    if (!safe_repo_path (path)) {
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_PROTOCOL,
                   _ ("The file list names a file with an unsafe path ('%s'); nothing was downloaded."),
                   path ? path : "");
      return FALSE;
    }
    if (hidden_repo_path (path) || g_hash_table_contains (seen, path))
      continue;
    HubFile *f = g_new0 (HubFile, 1);
    f->path = g_strdup (path);
    gboolean ok = obj_size (o, "size", &f->size);
    JsonNode *lfs = json_object_get_member (o, "lfs");
    if (lfs && JSON_NODE_HOLDS_OBJECT (lfs)) {
      JsonObject *l = json_node_get_object (lfs);
      const char *oid = obj_string (l, "oid");
      if (oid && g_str_has_prefix (oid, "sha256:"))
        oid += 7;
      ok = ok && is_hex (oid, 64) && (!json_object_has_member (l, "size") || obj_size (l, "size", &f->size));
      f->sha256 = ok ? g_ascii_strdown (oid, -1) : NULL;
    } else {
      const char *oid = obj_string (o, "oid");
      ok = ok && is_hex (oid, 40);
      f->git_oid = ok ? g_ascii_strdown (oid, -1) : NULL;
    }
    if (!ok) {
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_PROTOCOL,
                   _ ("The file list gives no valid size or hash for %s."), path);
      hub_file_free (f);
      return FALSE;
    }
    g_hash_table_add (seen, f->path);
    g_ptr_array_add (dl->files, f);
    if (dl->files->len > MAX_FILES) {
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_PROTOCOL, _ ("The file list is too long."));
      return FALSE;
    }
  }
  return TRUE;
}

/* The next page of a paginated listing: Link: <URL>; rel="next". */
static char *
next_link (SoupMessage *msg)
{
  const char *link = soup_message_headers_get_list (soup_message_get_response_headers (msg), "Link");
  if (!link)
    return NULL;
  g_auto (GStrv) items = g_strsplit (link, ",", -1);
  for (guint i = 0; items[i]; i++) {
    if (!strstr (items[i], "rel=\"next\""))
      continue;
    const char *a = strchr (items[i], '<'), *b = a ? strchr (a, '>') : NULL;
    if (a && b)
      return g_strndup (a + 1, (gsize) (b - a - 1));
  }
  return NULL;
}

static gint
larger_first (gconstpointer a, gconstpointer b)
{
  const HubFile *x = *(HubFile *const *) a, *y = *(HubFile *const *) b;
  if (x->size != y->size)
    return x->size > y->size ? -1 : 1;
  return strcmp (x->path, y->path);
}

/* A GET of a small JSON answer from the endpoint with retries; NULL with @error. */
static GBytes *
api_get (Dl *dl, SoupSession *s, const char *url, SoupMessage **msg_out, GError **error)
{
  g_autoptr (GUri) uri = g_uri_parse (url, SOUP_HTTP_URI_FLAGS, NULL);
  if (!uri) {
    g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_PROTOCOL, _ ("The server gave a malformed URL (%s)."),
                 url);
    return NULL;
  }
  for (guint attempt = 1;; attempt++) {
    g_autoptr (SoupMessage) msg = NULL;
    GError *local = NULL;
    GBytes *body = get_small (dl, s, uri, &msg, &local);
    Attempt r;
    if (!body)
      r = network_error (dl, uri, local, error);
    else if (soup_message_get_status (msg) == 200) {
      *msg_out = g_steal_pointer (&msg);
      return body;
    } else {
      g_bytes_unref (body);
      r = http_error (dl, msg, _ ("the file list"), error);
    }
    if (r == ATTEMPT_FATAL || attempt >= dl->attempts || !backoff (dl, attempt)) {
      if (r != ATTEMPT_FATAL && g_cancellable_is_cancelled (dl->stop)) {
        g_clear_error (error);
        g_set_error (error, DG_ERROR, DG_ERROR_CANCELLED, _ ("Cancelled."));
      }
      return NULL;
    }
    g_clear_error (error);
  }
}

/* The files at @rev (all pages); sets dl->commit from X-Repo-Commit when the server sends it. */
static gboolean
list_at (Dl *dl, SoupSession *s, const char *rev, GError **error)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_ptr_array_set_size (dl->files, 0);
  g_autofree char *erev = g_uri_escape_string (rev, NULL, FALSE);
  g_autofree char *url = g_strdup_printf ("%s/api/models/%s/tree/%s?recursive=true", dl->endpoint, dl->repo, erev);
  for (guint page = 0; url && page < 1000; page++) {
    g_autoptr (SoupMessage) msg = NULL;
    g_autoptr (GBytes) body = api_get (dl, s, url, &msg, error);
    if (!body)
      return FALSE;
    const char *commit = soup_message_headers_get_one (soup_message_get_response_headers (msg), "X-Repo-Commit");
    if (page == 0 && commit && is_hex (commit, 40)) {
      g_free (dl->commit);
      dl->commit = g_ascii_strdown (commit, -1);
    }
    if (!parse_tree (dl, body, seen, error))
      return FALSE;
    g_free (url);
    url = next_link (msg);
  }
  return TRUE;
}

/* The commit a branch or tag points at, from the revision API ("sha"); NULL when not told. */
static char *
revision_sha (Dl *dl, SoupSession *s, GError **error)
{
  g_autofree char *erev = g_uri_escape_string (dl->revision, NULL, FALSE);
  g_autofree char *url = g_strdup_printf ("%s/api/models/%s/revision/%s", dl->endpoint, dl->repo, erev);
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GBytes) body = api_get (dl, s, url, &msg, error);
  if (!body)
    return NULL;
  g_autoptr (JsonParser) p = json_parser_new ();
  gsize len;
  const char *text = g_bytes_get_data (body, &len);
  if (!json_parser_load_from_data (p, text ? text : "", (gssize) len, NULL) || !json_parser_get_root (p) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p)))
    return NULL;
  const char *sha = obj_string (json_node_get_object (json_parser_get_root (p)), "sha");
  return is_hex (sha, 40) ? g_ascii_strdown (sha, -1) : NULL;
}

static gboolean
list_files (Dl *dl, GError **error)
{
  g_autoptr (SoupSession) s = new_session (dl);
  if (!list_at (dl, s, dl->revision, error))
    return FALSE;
  if (!dl->commit) {
    /* No X-Repo-Commit with the listing: the revision API tells the commit, and the list is
     * taken again at that commit, so that the list and every file come from the same one. */
    if (is_hex (dl->revision, 40)) {
      dl->commit = g_ascii_strdown (dl->revision, -1);
    } else {
      GError *local = NULL;
      dl->commit = revision_sha (dl, s, &local);
      if (!dl->commit && local && is_cancel (local)) {
        g_propagate_error (error, local);
        return FALSE;
      }
      g_clear_error (&local);
      if (dl->commit && !list_at (dl, s, dl->commit, error))
        return FALSE;
      /* a server that tells neither: the files come from the branch, as huggingface-cli does */
      if (!dl->commit)
        dl->commit = g_strdup (dl->revision);
    }
  }
  if (dl->files->len == 0) {
    g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_NOT_FOUND, _ ("%s has no files at revision '%s'."),
                 dl->repo, dl->revision);
    return FALSE;
  }
  g_ptr_array_sort (dl->files, larger_first);
  return TRUE;
}

/* ---- one file --------------------------------------------------------------------------- */

static GChecksum *
new_checksum (const HubFile *f)
{
  if (f->sha256)
    return g_checksum_new (G_CHECKSUM_SHA256);
  /* git's blob id: sha1 of "blob <size>\0" followed by the content */
  GChecksum *c = g_checksum_new (G_CHECKSUM_SHA1);
  g_autofree char *head = g_strdup_printf ("blob %" G_GUINT64_FORMAT, f->size);
  g_checksum_update (c, (const guchar *) head, (gssize) strlen (head) + 1);
  return c;
}

static const char *
expected_hash (const HubFile *f)
{
  return f->sha256 ? f->sha256 : f->git_oid;
}

typedef enum { IO_READ, IO_WRITE, IO_CREATE, IO_RENAME } IoWhat;

static void
set_io_error (GError **error, int err, IoWhat what, const char *path)
{
  g_autofree char *display = g_filename_display_name (path);
  if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
    g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_NO_SPACE,
                 _ ("The disk is full (or a size limit was reached) while writing %s: %s. Free some space and run "
                    "the download again: it continues where it stopped."),
                 display, g_strerror (err));
    return;
  }
  const char *fmt = what == IO_READ     ? _ ("Cannot read %s: %s")
                    : what == IO_WRITE  ? _ ("Cannot write %s: %s")
                    : what == IO_CREATE ? _ ("Cannot create %s: %s")
                                        : _ ("Cannot rename %s into place: %s");
  g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_IO, fmt, display, g_strerror (err));
}

/* Feeds @len bytes of @fd from its start into @c; FALSE with errno on a read error. */
static gboolean
hash_fd (Dl *dl, int fd, guint64 len, GChecksum *c, gint64 *hashed, GError **error)
{
  g_autofree guchar *buf = g_malloc (CHUNK);
  guint64 done = 0;
  if (lseek (fd, 0, SEEK_SET) < 0)
    return FALSE;
  while (done < len) {
    if (g_cancellable_set_error_if_cancelled (dl->stop, error))
      return FALSE;
    ssize_t n = read (fd, buf, (size_t) MIN ((guint64) CHUNK, len - done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_IO, _ ("Cannot read a file of the download: %s"),
                   n < 0 ? g_strerror (errno) : _ ("it is shorter than expected"));
      return FALSE;
    }
    g_checksum_update (c, buf, n);
    done += (guint64) n;
    count (dl, &dl->done_bytes, n);
    if (hashed)
      *hashed += n;
  }
  return TRUE;
}

static gboolean
write_all (int fd, const guint8 *p, gsize n, int *err)
{
  while (n > 0) {
    ssize_t w = write (fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      *err = w < 0 ? errno : ENOSPC;
      return FALSE;
    }
    p += w;
    n -= (gsize) w;
  }
  return TRUE;
}

/* A file being fetched: its .part, what is in it and the running hash of that. */
typedef struct {
  HubFile *f;
  char *part;
  int fd;
  guint64 have;
  GChecksum *ck;
} Part;

static gboolean
part_reset (Dl *dl, Part *p, GError **error)
{
  if (ftruncate (p->fd, 0) < 0 || lseek (p->fd, 0, SEEK_SET) < 0) {
    set_io_error (error, errno, IO_WRITE, p->part);
    return FALSE;
  }
  count (dl, &dl->done_bytes, -(gint64) p->have);
  p->have = 0;
  g_checksum_free (p->ck);
  p->ck = new_checksum (p->f);
  return TRUE;
}

static guint64
header_u64 (SoupMessageHeaders *h, const char *name, gboolean *present)
{
  const char *v = soup_message_headers_get_one (h, name);
  *present = v != NULL;
  return v ? g_ascii_strtoull (v, NULL, 10) : 0;
}

/* The redirect response of the endpoint describes the linked (LFS) file: it must be the one
 * the listing promised, or the pin to one commit would be broken. */
static gboolean
check_linked (Dl *dl, Part *p, SoupMessage *msg, GError **error)
{
  SoupMessageHeaders *h = soup_message_get_response_headers (msg);
  gboolean has_size;
  const guint64 size = header_u64 (h, "X-Linked-Size", &has_size);
  const char *etag = soup_message_headers_get_one (h, "X-Linked-Etag");
  g_autofree char *tag = NULL;
  if (etag) {
    if (g_str_has_prefix (etag, "W/"))
      etag += 2;
    tag = g_ascii_strdown (etag, -1);
    g_strdelimit (tag, "\"", ' ');
    g_strstrip (tag);
  }
  if ((has_size && size != p->f->size) ||
      (tag && p->f->sha256 && is_hex (tag, 64) && strcmp (tag, p->f->sha256) != 0)) {
    g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_PROTOCOL,
                 _ ("%s: the server describes another file than its file list does (size %" PRIu64 ", hash %s); "
                    "the repository changed during the download? Run it again."),
                 p->f->path, has_size ? size : p->f->size, tag ? tag : "?");
    return FALSE;
  }
  return TRUE;
}

/* One GET of the rest of @p (the resolve URL, its redirects, the body). */
static Attempt
get_once (Dl *dl, SoupSession *s, Part *p, GError **error)
{
  g_autofree char *path = g_uri_escape_string (p->f->path, "/", FALSE);
  g_autofree char *rev = g_uri_escape_string (dl->commit, NULL, FALSE);
  g_autofree char *url = g_strdup_printf ("%s/%s/resolve/%s/%s", dl->endpoint, dl->repo, rev, path);
  g_autoptr (GUri) uri = g_uri_parse (url, SOUP_HTTP_URI_FLAGS, NULL);
  if (!uri) {
    g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_PROTOCOL, _ ("The server gave a malformed URL (%s)."),
                 url);
    return ATTEMPT_FATAL;
  }
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GInputStream) in = NULL;
  for (guint hop = 0;; hop++) {
    g_clear_object (&msg);
    g_clear_object (&in);
    msg = soup_message_new_from_uri ("GET", uri);
    soup_message_add_flags (msg, SOUP_MESSAGE_NO_REDIRECT);
    SoupMessageHeaders *rq = soup_message_get_request_headers (msg);
    if (dl->token && same_origin (uri, dl->endpoint_uri)) {
      g_autofree char *auth = g_strdup_printf ("Bearer %s", dl->token);
      soup_message_headers_replace (rq, "Authorization", auth);
    }
    /* the hash covers the bytes as stored: no transparent decompression */
    soup_message_headers_replace (rq, "Accept-Encoding", "identity");
    if (p->have > 0)
      soup_message_headers_set_range (rq, (goffset) p->have, -1);
    GError *local = NULL;
    in = soup_session_send (s, msg, dl->stop, &local);
    if (!in)
      return network_error (dl, uri, local, error);
    const guint status = soup_message_get_status (msg);
    if (SOUP_STATUS_IS_REDIRECTION (status)) {
      const char *loc = soup_message_headers_get_one (soup_message_get_response_headers (msg), "Location");
      if (hop == 0 && !check_linked (dl, p, msg, error))
        return ATTEMPT_FATAL;
      GUri *next = loc ? g_uri_parse_relative (uri, loc, SOUP_HTTP_URI_FLAGS, NULL) : NULL;
      if (!next || hop >= MAX_REDIRECTS) {
        if (next)
          g_uri_unref (next);
        g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_PROTOCOL,
                     _ ("%s: the server's redirects lead nowhere (%s)."), p->f->path, loc ? loc : "no Location");
        return ATTEMPT_FATAL;
      }
      g_input_stream_close (in, NULL, NULL);
      g_uri_unref (uri);
      uri = next;
      continue;
    }
    if (status == 416) {
      /* the .part does not fit the file (it changed?): start it again */
      g_input_stream_close (in, NULL, NULL);
      if (!part_reset (dl, p, error))
        return ATTEMPT_FATAL;
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_PROTOCOL, _ ("%s: the server refused the range."),
                   p->f->path);
      return ATTEMPT_RETRY;
    }
    if (status == 200 && p->have > 0) {
      /* the server ignores Range: the whole file comes again */
      if (!part_reset (dl, p, error))
        return ATTEMPT_FATAL;
    } else if (status == 206) {
      goffset start = -1, end = -1, total = -1;
      if (!soup_message_headers_get_content_range (soup_message_get_response_headers (msg), &start, &end, &total) ||
          (guint64) start != p->have) {
        g_input_stream_close (in, NULL, NULL);
        if (!part_reset (dl, p, error))
          return ATTEMPT_FATAL;
        g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_PROTOCOL,
                     _ ("%s: the server sent another range than the one asked for."), p->f->path);
        return ATTEMPT_RETRY;
      }
    } else if (status != 200) {
      return http_error (dl, msg, p->f->path, error);
    }
    break;
  }

  /* the body */
  g_autofree guint8 *buf = g_malloc (CHUNK);
  for (;;) {
    GError *local = NULL;
    gssize n = g_input_stream_read (in, buf, CHUNK, dl->stop, &local);
    if (n < 0)
      return network_error (dl, uri, local, error);
    if (n == 0)
      break;
    int err = 0;
    if (!write_all (p->fd, buf, (gsize) n, &err)) {
      set_io_error (error, err, IO_WRITE, p->part);
      return ATTEMPT_FATAL;
    }
    g_checksum_update (p->ck, buf, n);
    p->have += (guint64) n;
    count (dl, &dl->done_bytes, n);
    count (dl, &dl->transferred, n);
    if (p->have > p->f->size)
      break; /* more than listed: the hash check below fails it */
  }
  g_input_stream_close (in, NULL, NULL);
  if (p->have < p->f->size) {
    g_autofree char *host = display_host (uri);
    g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_NETWORK,
                 _ ("The connection to %s closed early (%s: %" PRIu64 " of %" PRIu64 " bytes)."), host, p->f->path,
                 p->have, p->f->size);
    return ATTEMPT_RETRY;
  }
  return ATTEMPT_OK;
}

static char *
hash_note_path (const char *part)
{
  return g_strconcat (part, ".hash", NULL);
}

/* Opens the .part of @f, keeping what it holds when its note names the same hash. */
static gboolean
part_open (Dl *dl, Part *p, HubFile *f, GError **error)
{
  p->f = f;
  p->fd = -1;
  p->part = g_strconcat (dl->cache, G_DIR_SEPARATOR_S, f->path, ".part", NULL);
  g_autofree char *note = hash_note_path (p->part);
  g_autofree char *parent = g_path_get_dirname (p->part);
  if (g_mkdir_with_parents (parent, 0755) < 0) {
    set_io_error (error, errno, IO_CREATE, parent);
    return FALSE;
  }
  g_autofree char *noted = NULL;
  gboolean keep =
      g_file_get_contents (note, &noted, NULL, NULL) && g_strcmp0 (g_strstrip (noted), expected_hash (f)) == 0;
  p->fd = g_open (p->part, O_RDWR | O_CREAT | O_CLOEXEC | (keep ? 0 : O_TRUNC), 0644);
  if (p->fd < 0) {
    set_io_error (error, errno, IO_CREATE, p->part);
    return FALSE;
  }
  if (!keep) {
    GError *local = NULL;
    if (!g_file_set_contents (note, expected_hash (f), -1, &local)) {
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_IO, "%s", local->message);
      g_error_free (local);
      return FALSE;
    }
  }
  struct stat st;
  if (fstat (p->fd, &st) < 0) {
    set_io_error (error, errno, IO_READ, p->part);
    return FALSE;
  }
  p->ck = new_checksum (f);
  p->have = (guint64) st.st_size;
  if (p->have > f->size) {
    p->have = 0;
    if (ftruncate (p->fd, 0) < 0) {
      set_io_error (error, errno, IO_WRITE, p->part);
      return FALSE;
    }
  }
  /* what an earlier run fetched is hashed again (it counts as done) */
  if (!hash_fd (dl, p->fd, p->have, p->ck, NULL, error))
    return FALSE;
  if (lseek (p->fd, (off_t) p->have, SEEK_SET) < 0) {
    set_io_error (error, errno, IO_READ, p->part);
    return FALSE;
  }
  return TRUE;
}

static void
part_close (Part *p, gboolean remove)
{
  if (p->fd >= 0)
    close (p->fd);
  p->fd = -1;
  if (remove && p->part) {
    g_unlink (p->part);
    g_autofree char *note = hash_note_path (p->part);
    g_unlink (note);
  }
  g_clear_pointer (&p->part, g_free);
  g_clear_pointer (&p->ck, g_checksum_free);
}

/* TRUE when @target holds @f already (same size and hash). FALSE with @error only when the
 * download is stopped meanwhile; an unreadable or different file is simply fetched again. */
static gboolean
present (Dl *dl, HubFile *f, const char *target, GError **error)
{
  GStatBuf st;
  if (g_stat (target, &st) < 0 || !S_ISREG (st.st_mode) || (guint64) st.st_size != f->size)
    return FALSE;
  int fd = g_open (target, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    return FALSE;
  g_autoptr (GChecksum) c = new_checksum (f);
  gint64 hashed = 0;
  GError *local = NULL;
  gboolean ok = hash_fd (dl, fd, f->size, c, &hashed, &local);
  close (fd);
  if (ok && g_strcmp0 (g_checksum_get_string (c), expected_hash (f)) == 0)
    return TRUE;
  /* not it (a broken earlier download): it is fetched again and replaced */
  count (dl, &dl->done_bytes, -hashed);
  if (local && is_cancel (local))
    g_propagate_error (error, local);
  else
    g_clear_error (&local);
  return FALSE;
}

static gboolean
fetch_file (Dl *dl, SoupSession *s, HubFile *f, gboolean *fetched, GError **error)
{
  g_autofree char *target = g_build_filename (dl->dir, f->path, NULL);
  *fetched = FALSE;
  GError *local = NULL;
  if (present (dl, f, target, &local))
    return TRUE;
  if (local) {
    g_propagate_error (error, local);
    return FALSE;
  }
  if (g_cancellable_set_error_if_cancelled (dl->stop, error))
    return FALSE;
  /* A file under the name that is not the repository's (short, damaged, another revision) goes
   * now: the folder must not look complete with it while the right one is on its way. */
  if (g_file_test (target, G_FILE_TEST_IS_REGULAR) && g_unlink (target) < 0) {
    set_io_error (error, errno, IO_WRITE, target);
    return FALSE;
  }
  for (guint round = 0; round < 2; round++) {
    Part p = { 0 };
    if (!part_open (dl, &p, f, error)) {
      part_close (&p, FALSE);
      return FALSE;
    }
    guint fails = 0;
    Attempt r = p.have == f->size ? ATTEMPT_OK : ATTEMPT_RETRY;
    while (r != ATTEMPT_OK) {
      const guint64 before = p.have;
      GError *attempt_error = NULL;
      r = get_once (dl, s, &p, &attempt_error);
      if (r == ATTEMPT_OK)
        break;
      if (r == ATTEMPT_FATAL) {
        part_close (&p, FALSE);
        g_propagate_error (error, attempt_error);
        return FALSE;
      }
      /* attempts that got somewhere do not count: a flaky line still finishes */
      fails = p.have > before ? 0 : fails + 1;
      if (fails >= dl->attempts || !backoff (dl, fails ? fails : 1)) {
        part_close (&p, FALSE);
        if (g_cancellable_is_cancelled (dl->stop)) {
          g_error_free (attempt_error);
          g_set_error (error, DG_ERROR, DG_ERROR_CANCELLED, _ ("Cancelled."));
        } else {
          g_propagate_error (error, attempt_error);
        }
        return FALSE;
      }
      g_debug ("%s: %s; trying again", f->path, attempt_error->message);
      g_error_free (attempt_error);
    }
    if (g_strcmp0 (g_checksum_get_string (p.ck), expected_hash (f)) == 0 && p.have == f->size) {
      /* durable before it gets its real name: a crash never leaves a short file there */
      if (fsync (p.fd) < 0) {
        set_io_error (error, errno, IO_WRITE, p.part);
        part_close (&p, FALSE);
        return FALSE;
      }
      g_autofree char *parent = g_path_get_dirname (target);
      if (g_mkdir_with_parents (parent, 0755) < 0) {
        set_io_error (error, errno, IO_CREATE, parent);
        part_close (&p, FALSE);
        return FALSE;
      }
      if (g_rename (p.part, target) < 0) {
        set_io_error (error, errno, IO_RENAME, target);
        part_close (&p, FALSE);
        return FALSE;
      }
      g_autofree char *note = hash_note_path (p.part);
      g_unlink (note);
      part_close (&p, FALSE);
      *fetched = TRUE;
      return TRUE;
    }
    /* a wrong hash: the data is dropped and fetched once more from the start */
    g_autofree char *got = g_strdup (g_checksum_get_string (p.ck));
    count (dl, &dl->done_bytes, -(gint64) p.have);
    part_close (&p, TRUE);
    if (round == 1) {
      g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_CHECKSUM,
                   _ ("%s: the downloaded data does not match the repository's hash (expected %s %s, got %s), "
                      "twice; it was not kept. The server or a proxy is damaging the transfer; try again later."),
                   f->path, f->sha256 ? "sha256" : "git-sha1", expected_hash (f), got);
      return FALSE;
    }
    g_debug ("%s: hash mismatch (expected %s, got %s); fetching it again", f->path, expected_hash (f), got);
  }
  return FALSE;
}

static gpointer
worker (gpointer data)
{
  Dl *dl = data;
  g_autoptr (SoupSession) s = new_session (dl);
  for (;;) {
    g_mutex_lock (&dl->lock);
    HubFile *f = NULL;
    if (!g_cancellable_is_cancelled (dl->stop) && dl->next < dl->files->len) {
      f = dl->files->pdata[dl->next++];
      g_free (dl->current);
      dl->current = g_strdup (f->path);
    }
    g_mutex_unlock (&dl->lock);
    if (!f)
      break;
    GError *error = NULL;
    gboolean fetched = FALSE;
    if (!fetch_file (dl, s, f, &fetched, &error)) {
      dl_fail (dl, error);
      break;
    }
    g_mutex_lock (&dl->lock);
    dl->files_done++;
    if (fetched)
      dl->files_fetched++;
    else
      dl->files_present++;
    g_cond_broadcast (&dl->cond);
    g_mutex_unlock (&dl->lock);
  }
  g_mutex_lock (&dl->lock);
  dl->running--;
  g_cond_broadcast (&dl->cond);
  g_mutex_unlock (&dl->lock);
  return NULL;
}

/* ---- the whole download ----------------------------------------------------------------- */

/* Removes the now empty folders of the partial files (and .cache when it is empty too). */
static void
remove_empty_dirs (const char *path)
{
  GDir *d = g_dir_open (path, 0, NULL);
  if (!d)
    return;
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL) {
    g_autofree char *sub = g_build_filename (path, name, NULL);
    if (g_file_test (sub, G_FILE_TEST_IS_DIR) && !g_file_test (sub, G_FILE_TEST_IS_SYMLINK))
      remove_empty_dirs (sub);
  }
  g_dir_close (d);
  g_rmdir (path);
}

static guint64
part_size (const char *cache, const HubFile *f)
{
  g_autofree char *part = g_strconcat (cache, G_DIR_SEPARATOR_S, f->path, ".part", NULL);
  GStatBuf st;
  return g_stat (part, &st) == 0 && S_ISREG (st.st_mode) ? (guint64) st.st_size : 0;
}

static gboolean
check_space (Dl *dl, GError **error)
{
  guint64 need = 0;
  for (guint i = 0; i < dl->files->len; i++) {
    const HubFile *f = dl->files->pdata[i];
    g_autofree char *target = g_build_filename (dl->dir, f->path, NULL);
    GStatBuf st;
    if (g_stat (target, &st) == 0 && (guint64) st.st_size == f->size)
      continue;
    const guint64 have = part_size (dl->cache, f);
    need += f->size > have ? f->size - have : 0;
  }
  g_autoptr (GFile) dir = g_file_new_for_path (dl->dir);
  g_autoptr (GFileInfo) info = g_file_query_filesystem_info (dir, G_FILE_ATTRIBUTE_FILESYSTEM_FREE, NULL, NULL);
  if (!info || !g_file_info_has_attribute (info, G_FILE_ATTRIBUTE_FILESYSTEM_FREE))
    return TRUE; /* unknown: the writes will tell */
  const guint64 free_bytes = g_file_info_get_attribute_uint64 (info, G_FILE_ATTRIBUTE_FILESYSTEM_FREE);
  if (need > free_bytes) {
    g_autofree char *n = g_format_size (need), *fr = g_format_size (free_bytes);
    g_autofree char *display = g_filename_display_name (dl->dir);
    g_set_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_NO_SPACE,
                 _ ("Not enough disk space for the model in %s: %s more are needed, %s are free. Free some space "
                    "or choose another folder."),
                 display, n, fr);
    return FALSE;
  }
  return TRUE;
}

/* Keeps a few seconds of (time, bytes) samples for the speed. */
typedef struct {
  gint64 t[32];
  gint64 b[32];
  guint n, head;
} Speed;

static double
speed_update (Speed *s, gint64 now, gint64 bytes)
{
  s->t[s->head] = now;
  s->b[s->head] = bytes;
  s->head = (s->head + 1) % G_N_ELEMENTS (s->t);
  if (s->n < G_N_ELEMENTS (s->t))
    s->n++;
  /* the oldest sample within the last 8 s */
  guint oldest = (s->head + G_N_ELEMENTS (s->t) - s->n) % G_N_ELEMENTS (s->t);
  for (guint k = 0; k < s->n; k++) {
    guint i = (oldest + k) % G_N_ELEMENTS (s->t);
    if (now - s->t[i] <= 8 * G_USEC_PER_SEC) {
      oldest = i;
      break;
    }
  }
  const double dt = (double) (now - s->t[oldest]) / G_USEC_PER_SEC;
  return dt >= 0.5 ? (double) (bytes - s->b[oldest]) / dt : 0.0;
}

static void
report (Dl *dl, DgDownloadOptions *o, DgDownloadPhase phase, Speed *speed, guint64 total)
{
  if (!o->progress)
    return;
  DgDownloadProgress p = { 0 };
  p.phase = phase;
  p.total_bytes = total;
  p.done_bytes = (guint64) MAX (0, (gint64) counted (dl, &dl->done_bytes));
  p.transferred_bytes = (guint64) counted (dl, &dl->transferred);
  p.bytes_per_second = speed ? speed_update (speed, g_get_monotonic_time (), (gint64) p.transferred_bytes) : 0.0;
  p.seconds_left =
      p.bytes_per_second > 0 && total >= p.done_bytes ? (double) (total - p.done_bytes) / p.bytes_per_second : -1.0;
  g_mutex_lock (&dl->lock);
  p.files_done = dl->files_done;
  p.n_files = dl->files ? dl->files->len : 0;
  g_autofree char *file = g_strdup (dl->current);
  g_mutex_unlock (&dl->lock);
  p.file = file;
  o->progress (&p, o->user_data);
}

static gboolean
valid_repo (const char *r)
{
  if (!r)
    return FALSE;
  const char *slash = strchr (r, '/');
  if (!slash || slash == r || !slash[1] || strchr (slash + 1, '/'))
    return FALSE;
  for (const char *c = r; *c; c++)
    if (!(g_ascii_isalnum (*c) || *c == '-' || *c == '_' || *c == '.' || *c == '/'))
      return FALSE;
  return strstr (r, "..") == NULL;
}

static gboolean
valid_token (const char *t)
{
  for (const char *c = t; *c; c++)
    if ((guchar) *c <= 0x20 || (guchar) *c == 0x7f)
      return FALSE;
  return TRUE;
}

static void
dl_free (Dl *dl)
{
  g_free (dl->endpoint);
  if (dl->endpoint_uri)
    g_uri_unref (dl->endpoint_uri);
  g_free (dl->repo);
  g_free (dl->revision);
  g_free (dl->commit);
  g_free (dl->token);
  g_free (dl->dir);
  g_free (dl->cache);
  if (dl->files)
    g_ptr_array_unref (dl->files);
  g_mutex_clear (&dl->lock);
  g_mutex_clear (&dl->count_lock);
  g_cond_clear (&dl->cond);
  g_clear_error (&dl->error);
  g_clear_object (&dl->stop);
  g_clear_object (&dl->proxy);
  g_free (dl->current);
  g_free (dl);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Dl, dl_free)

static void
on_user_cancel (GCancellable *c, gpointer stop)
{
  g_cancellable_cancel (stop);
}

static gboolean
download (Dl *dl, DgDownloadOptions *o, guint parallel, GCancellable *cancellable, DgDownloadResult *result,
          GError **error)
{
  report (dl, o, DG_DOWNLOAD_PHASE_LISTING, NULL, 0);
  /* the folder is made once the repository answered: a wrong name or token leaves nothing */
  if (!list_files (dl, error))
    return FALSE;
  if (g_mkdir_with_parents (dl->dir, 0755) < 0) {
    set_io_error (error, errno, IO_CREATE, dl->dir);
    return FALSE;
  }
  if (!check_space (dl, error))
    return FALSE;
  guint64 total = 0;
  for (guint i = 0; i < dl->files->len; i++) total += ((HubFile *) dl->files->pdata[i])->size;

  Speed speed = { 0 };
  report (dl, o, DG_DOWNLOAD_PHASE_FETCHING, &speed, total);
  const guint n_workers = MIN (parallel, dl->files->len);
  GThread **threads = g_new0 (GThread *, n_workers);
  dl->running = n_workers;
  for (guint i = 0; i < n_workers; i++) threads[i] = g_thread_new ("deepgen-download", worker, dl);
  g_mutex_lock (&dl->lock);
  while (dl->running > 0) {
    g_cond_wait_until (&dl->cond, &dl->lock, g_get_monotonic_time () + 250 * G_TIME_SPAN_MILLISECOND);
    g_mutex_unlock (&dl->lock);
    report (dl, o, DG_DOWNLOAD_PHASE_FETCHING, &speed, total);
    g_mutex_lock (&dl->lock);
  }
  g_mutex_unlock (&dl->lock);
  for (guint i = 0; i < n_workers; i++) g_thread_join (threads[i]);
  g_free (threads);

  if (cancellable && g_cancellable_is_cancelled (cancellable)) {
    g_autofree char *d = g_format_size ((guint64) counted (dl, &dl->done_bytes));
    g_autofree char *t = g_format_size (total);
    g_set_error (error, DG_ERROR, DG_ERROR_CANCELLED,
                 _ ("The download was stopped with %s of %s in place; run it again to continue where it stopped."), d,
                 t);
    return FALSE;
  }
  if (dl->error) {
    g_propagate_error (error, g_steal_pointer (&dl->error));
    return FALSE;
  }
  if (dl->files_done != dl->files->len) {
    g_set_error (error, DG_ERROR, DG_ERROR_FAILED, _ ("The download stopped before every file was in place."));
    return FALSE;
  }
  remove_empty_dirs (dl->cache);
  g_autofree char *dotcache = g_build_filename (dl->dir, ".cache", NULL);
  g_rmdir (dotcache);
  report (dl, o, DG_DOWNLOAD_PHASE_DONE, NULL, total);
  if (result) {
    memset (result, 0, sizeof *result);
    result->commit = g_strdup (dl->commit);
    result->n_files = dl->files->len;
    result->files_fetched = dl->files_fetched;
    result->files_present = dl->files_present;
    result->total_bytes = total;
    result->transferred_bytes = (guint64) counted (dl, &dl->transferred);
  }
  return TRUE;
}

gboolean
dg_download_model (const char *dir, const DgDownloadOptions *options, GCancellable *cancellable,
                   DgDownloadResult *result, GError **error)
{
  DgDownloadOptions o = DG_DOWNLOAD_OPTIONS_INIT;
  if (options)
    o = *options;
  g_return_val_if_fail (dir != NULL, FALSE);
  g_autoptr (Dl) dl = g_new0 (Dl, 1);
  g_mutex_init (&dl->lock);
  g_mutex_init (&dl->count_lock);
  g_cond_init (&dl->cond);
  dl->stop = g_cancellable_new ();
  dl->files = g_ptr_array_new_with_free_func ((GDestroyNotify) hub_file_free);
  const char *endpoint = o.endpoint ? o.endpoint : g_getenv ("HF_ENDPOINT");
  if (!endpoint || !*endpoint)
    endpoint = DG_DOWNLOAD_DEFAULT_ENDPOINT;
  dl->endpoint = g_strdup (endpoint);
  while (*dl->endpoint && g_str_has_suffix (dl->endpoint, "/")) dl->endpoint[strlen (dl->endpoint) - 1] = '\0';
  dl->endpoint_uri = g_uri_parse (dl->endpoint, SOUP_HTTP_URI_FLAGS, NULL);
  if (!dl->endpoint_uri || !g_uri_get_host (dl->endpoint_uri) ||
      (g_strcmp0 (g_uri_get_scheme (dl->endpoint_uri), "https") != 0 &&
       g_strcmp0 (g_uri_get_scheme (dl->endpoint_uri), "http") != 0)) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("'%s' is not an http(s) address for the Hub (HF_ENDPOINT)."), endpoint);
    return FALSE;
  }
  dl->repo = g_strdup (o.repo ? o.repo : DG_DOWNLOAD_DEFAULT_REPO);
  if (!valid_repo (dl->repo)) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("'%s' is not a repository name (OWNER/NAME)."),
                 dl->repo);
    return FALSE;
  }
  dl->revision = g_strdup (o.revision && *o.revision ? o.revision : DG_DOWNLOAD_DEFAULT_REVISION);
  if (!g_utf8_validate (dl->revision, -1, NULL) || strstr (dl->revision, "..") || strlen (dl->revision) > 256) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("'%s' is not a revision name."), dl->revision);
    return FALSE;
  }
  dl->token = o.token ? g_strdup (o.token) : dg_download_find_token ();
  if (dl->token && (!*dl->token || !valid_token (dl->token))) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("The Hugging Face token contains spaces or control characters; check HF_TOKEN or the token file."));
    return FALSE;
  }
  dl->proxy = o.proxy_resolver ? g_object_ref (o.proxy_resolver) : NULL;
  dl->attempts = o.attempts ? o.attempts : 6;
  dl->timeout_s = o.timeout_s ? o.timeout_s : 60;
  dl->backoff_ms = o.backoff_ms ? o.backoff_ms : 1000;
  const guint parallel = CLAMP (o.parallel ? o.parallel : 4, 1, 16);
  dl->dir = g_strdup (dir);
  dl->cache = g_build_filename (dir, CACHE_DIR, NULL);
  gulong handler = cancellable ? g_cancellable_connect (cancellable, G_CALLBACK (on_user_cancel), dl->stop, NULL) : 0;
  const gboolean ok = download (dl, &o, parallel, cancellable, result, error);
  if (handler)
    g_cancellable_disconnect (cancellable, handler);
  return ok;
}

/* ---- helpers for front-ends ------------------------------------------------------------- */

static void
add_parts (const char *path, guint64 *sum, guint depth)
{
  if (depth > 32)
    return;
  GDir *d = g_dir_open (path, 0, NULL);
  if (!d)
    return;
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL) {
    g_autofree char *sub = g_build_filename (path, name, NULL);
    GStatBuf st;
    if (g_lstat (sub, &st) < 0)
      continue;
    if (S_ISDIR (st.st_mode))
      add_parts (sub, sum, depth + 1);
    else if (S_ISREG (st.st_mode) && g_str_has_suffix (name, ".part"))
      *sum += (guint64) st.st_size;
  }
  g_dir_close (d);
}

guint64
dg_download_partial_bytes (const char *dir)
{
  g_autofree char *cache = g_build_filename (dir, CACHE_DIR, NULL);
  guint64 sum = 0;
  add_parts (cache, &sum, 0);
  return sum;
}

static char *
format_duration (double s)
{
  if (s < 60)
    return g_strdup_printf (_ ("%d s"), MAX (1, (int) (s + 0.5)));
  if (s < 3600)
    return g_strdup_printf (_ ("%d min"), (int) (s / 60 + 0.5));
  const int m = (int) (s / 60 + 0.5);
  return g_strdup_printf (_ ("%d h %02d min"), m / 60, m % 60);
}

char *
dg_download_progress_text (const DgDownloadProgress *p)
{
  if (p->phase == DG_DOWNLOAD_PHASE_LISTING)
    return g_strdup (_ ("Asking the server for the file list…"));
  g_autofree char *done = g_format_size (p->done_bytes), *total = g_format_size (p->total_bytes);
  /* TRANSLATORS: bytes in place of all, e.g. "1.2 GB of 14.4 GB" */
  GString *s = g_string_new (NULL);
  g_string_append_printf (s, _ ("%s of %s"), done, total);
  if (p->phase == DG_DOWNLOAD_PHASE_FETCHING && p->bytes_per_second > 0) {
    g_autofree char *rate = g_format_size ((guint64) p->bytes_per_second);
    /* TRANSLATORS: the download speed, e.g. "25.3 MB/s" */
    g_string_append (s, ", ");
    g_string_append_printf (s, _ ("%s/s"), rate);
    if (p->seconds_left >= 0) {
      g_autofree char *left = format_duration (p->seconds_left);
      /* TRANSLATORS: the time the download still needs, e.g. "9 min left" */
      g_string_append (s, ", ");
      g_string_append_printf (s, _ ("%s left"), left);
    }
  }
  return g_string_free (s, FALSE);
}
