/* The test Hub (hub_server.h). Faulty bodies (cut, slow) are written by hand on a connection
 * taken from the SoupServer, in a thread of their own, so that the server's loop keeps
 * answering other requests meanwhile. */
#include "hub_server.h"

#include <string.h>

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

typedef struct {
  char *path;
  GBytes *data;
  char *sha256;  /* LFS files (*.safetensors) */
  char *git_oid; /* the others */
} File;

typedef struct {
  char *path;
  char *range;
} Body;

struct _HubServer {
  char *repo;
  gsize slow_chunk;
  GPtrArray *files;             /* File* */
  GHashTable *by_path, *by_sha; /* -> File* */
  char *endpoint;
  int port;
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  SoupServer *server;
  GMutex lock;
  GCond ready;
  guint faults;
  char *fault_path, *token;
  gboolean cut_done, bad_done;
  guint flaky_left;
  GPtrArray *bodies;        /* Body* */
  GHashTable *resolve_revs; /* the revisions resolve requests named */
  gboolean storage_saw_token;
};

static void
file_free (File *f)
{
  g_free (f->path);
  g_bytes_unref (f->data);
  g_free (f->sha256);
  g_free (f->git_oid);
  g_free (f);
}

static void
body_free (Body *b)
{
  g_free (b->path);
  g_free (b->range);
  g_free (b);
}

static void
add_files (HubServer *s, const char *root, const char *rel)
{
  g_autofree char *dir = rel ? g_build_filename (root, rel, NULL) : g_strdup (root);
  GDir *d = g_dir_open (dir, 0, NULL);
  g_assert_nonnull (d);
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL) {
    g_autofree char *r = rel ? g_strconcat (rel, "/", name, NULL) : g_strdup (name);
    g_autofree char *full = g_build_filename (root, r, NULL);
    if (g_file_test (full, G_FILE_TEST_IS_DIR)) {
      add_files (s, root, r);
      continue;
    }
    File *f = g_new0 (File, 1);
    f->path = g_strdup (r);
    char *text;
    gsize len;
    g_assert_true (g_file_get_contents (full, &text, &len, NULL));
    f->data = g_bytes_new_take (text, len);
    if (g_str_has_suffix (name, ".safetensors")) {
      f->sha256 = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, f->data);
      g_hash_table_insert (s->by_sha, f->sha256, f);
    } else {
      GChecksum *c = g_checksum_new (G_CHECKSUM_SHA1);
      g_autofree char *head = g_strdup_printf ("blob %" G_GSIZE_FORMAT, len);
      g_checksum_update (c, (const guchar *) head, (gssize) strlen (head) + 1);
      g_checksum_update (c, (const guchar *) text, (gssize) len);
      f->git_oid = g_strdup (g_checksum_get_string (c));
      g_checksum_free (c);
    }
    g_hash_table_insert (s->by_path, f->path, f);
    g_ptr_array_add (s->files, f);
  }
  g_dir_close (d);
}

/* ---- responses ---------------------------------------------------------------------------- */

static void
error_response (SoupServerMessage *msg, guint status, const char *code)
{
  soup_server_message_set_status (msg, status, NULL);
  if (code)
    soup_message_headers_replace (soup_server_message_get_response_headers (msg), "X-Error-Code", code);
  const char *body = "{\"error\":\"test hub\"}";
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC, body, strlen (body));
}

static gboolean
authorized (HubServer *s, SoupServerMessage *msg)
{
  if (!(s->faults & HUB_NEED_TOKEN))
    return TRUE;
  const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization");
  g_autofree char *want = g_strdup_printf ("Bearer %s", s->token ? s->token : "");
  return auth && g_str_equal (auth, want);
}

static void
tree (HubServer *s, SoupServerMessage *msg)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_array (b);
  g_autoptr (GHashTable) dirs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < s->files->len; i++) {
    File *f = s->files->pdata[i];
    /* folders are listed too, as the Hub does */
    g_autofree char *parent = g_path_get_dirname (f->path);
    if (!g_str_equal (parent, ".") && !g_hash_table_contains (dirs, parent)) {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "type");
      json_builder_add_string_value (b, "directory");
      json_builder_set_member_name (b, "oid");
      json_builder_add_string_value (b, "1111111111111111111111111111111111111111");
      json_builder_set_member_name (b, "size");
      json_builder_add_int_value (b, 0);
      json_builder_set_member_name (b, "path");
      json_builder_add_string_value (b, parent);
      json_builder_end_object (b);
      g_hash_table_add (dirs, g_strdup (parent));
    }
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "type");
    json_builder_add_string_value (b, "file");
    json_builder_set_member_name (b, "path");
    json_builder_add_string_value (b, f->path);
    json_builder_set_member_name (b, "size");
    json_builder_add_int_value (b, (gint64) g_bytes_get_size (f->data));
    json_builder_set_member_name (b, "oid");
    json_builder_add_string_value (b, f->git_oid ? f->git_oid : "2222222222222222222222222222222222222222");
    if (f->sha256) {
      json_builder_set_member_name (b, "lfs");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "oid");
      json_builder_add_string_value (b, f->sha256);
      json_builder_set_member_name (b, "size");
      json_builder_add_int_value (b, (gint64) g_bytes_get_size (f->data));
      json_builder_set_member_name (b, "pointerSize");
      json_builder_add_int_value (b, 134);
      json_builder_end_object (b);
    }
    json_builder_end_object (b);
  }
  if (s->faults & HUB_HUGE) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "type");
    json_builder_add_string_value (b, "file");
    json_builder_set_member_name (b, "path");
    json_builder_add_string_value (b, "huge.bin");
    json_builder_set_member_name (b, "size");
    json_builder_add_int_value (b, G_GINT64_CONSTANT (1) << 50);
    json_builder_set_member_name (b, "oid");
    json_builder_add_string_value (b, "4444444444444444444444444444444444444444");
    json_builder_set_member_name (b, "lfs");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "oid");
    json_builder_add_string_value (b, "5555555555555555555555555555555555555555555555555555555555555555");
    json_builder_set_member_name (b, "size");
    json_builder_add_int_value (b, G_GINT64_CONSTANT (1) << 50);
    json_builder_end_object (b);
    json_builder_end_object (b);
  }
  /* a hidden file, which the client leaves out */
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "file");
  json_builder_set_member_name (b, "path");
  json_builder_add_string_value (b, ".gitattributes");
  json_builder_set_member_name (b, "size");
  json_builder_add_int_value (b, 10);
  json_builder_set_member_name (b, "oid");
  json_builder_add_string_value (b, "3333333333333333333333333333333333333333");
  json_builder_end_object (b);
  json_builder_end_array (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  gsize len;
  char *text = json_generator_to_data (gen, &len);
  if (!(s->faults & HUB_NO_COMMIT))
    soup_message_headers_replace (soup_server_message_get_response_headers (msg), "X-Repo-Commit", HUB_COMMIT);
  soup_server_message_set_status (msg, 200, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, text, len);
}

typedef struct {
  GIOStream *conn;
  char *head;
  GBytes *data;
  gsize offset, len, stop_at; /* send data[offset, offset + len), but only up to stop_at bytes */
  gboolean slow, stall;
  gsize slow_chunk;
} Raw;

static gpointer
raw_thread (gpointer data)
{
  Raw *r = data;
  GOutputStream *out = g_io_stream_get_output_stream (r->conn);
  gsize dlen;
  const guint8 *d = g_bytes_get_data (r->data, &dlen);
  gboolean ok = g_output_stream_write_all (out, r->head, strlen (r->head), NULL, NULL, NULL);
  gsize sent = 0;
  const gsize step = r->slow ? r->slow_chunk : 65536;
  while (ok && sent < r->stop_at) {
    const gsize n = MIN (step, r->stop_at - sent);
    ok = g_output_stream_write_all (out, d + r->offset + sent, n, NULL, NULL, NULL);
    sent += n;
    if (r->slow)
      g_usleep (20000);
  }
  g_output_stream_flush (out, NULL, NULL);
  if (r->stall)
    g_usleep (20 * G_USEC_PER_SEC); /* silent, the connection open: the client's timeout must act */
  g_io_stream_close (r->conn, NULL, NULL);
  g_object_unref (r->conn);
  g_free (r->head);
  g_bytes_unref (r->data);
  g_free (r);
  return NULL;
}

/* A body with Range, perhaps cut short, slow or damaged. */
static void
content (HubServer *s, SoupServerMessage *msg, File *f, gboolean storage)
{
  SoupMessageHeaders *rq = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *rs = soup_server_message_get_response_headers (msg);
  const gboolean head = g_str_equal (soup_server_message_get_method (msg), "HEAD");
  const gboolean fault = s->fault_path && g_str_equal (f->path, s->fault_path);
  const char *range = soup_message_headers_get_one (rq, "Range");
  if (!head) {
    Body *b = g_new0 (Body, 1);
    b->path = g_strdup (f->path);
    b->range = g_strdup (range ? range : "-");
    g_ptr_array_add (s->bodies, b);
  }
  if (!head && fault && (s->faults & HUB_FLAKY) && s->flaky_left > 0) {
    s->flaky_left--;
    error_response (msg, 503, NULL);
    return;
  }
  GBytes *data = g_bytes_ref (f->data);
  if (fault && ((s->faults & HUB_BAD_HASH) || ((s->faults & HUB_BAD_HASH_ONCE) && !s->bad_done))) {
    gsize len = 0;
    const guint8 *orig = g_bytes_get_data (f->data, &len);
    guint8 *copy = g_memdup2 (orig, len);
    copy[len / 3] ^= 0x5a;
    g_bytes_unref (data);
    data = g_bytes_new_take (copy, len);
    if (!head)
      s->bad_done = TRUE;
  }
  const gsize total = g_bytes_get_size (data);
  gsize start = 0;
  if (range && !(s->faults & HUB_IGNORE_RANGE)) {
    if (!g_str_has_prefix (range, "bytes=") || !g_ascii_isdigit (range[6]) ||
        g_ascii_strtoull (range + 6, NULL, 10) >= total) {
      soup_message_headers_set_content_range (rs, 0, -1, (goffset) total);
      error_response (msg, 416, NULL);
      g_bytes_unref (data);
      return;
    }
    start = (gsize) g_ascii_strtoull (range + 6, NULL, 10);
  }
  if (range && (s->faults & HUB_IGNORE_RANGE))
    soup_message_headers_remove (rq, "Range"); /* so that nothing answers it for us */
  const gboolean partial = range && !(s->faults & HUB_IGNORE_RANGE);
  const gboolean cut = !head && fault && (s->faults & (HUB_CUT | HUB_STALL)) && !s->cut_done;
  if (!head && (cut || (s->faults & HUB_SLOW))) {
    if (cut)
      s->cut_done = TRUE;
    Raw *r = g_new0 (Raw, 1);
    r->data = data;
    r->offset = start;
    r->len = total - start;
    r->stop_at = cut ? r->len / 2 : r->len;
    r->slow = (s->faults & HUB_SLOW) != 0;
    r->stall = cut && (s->faults & HUB_STALL);
    r->slow_chunk = s->slow_chunk;
    r->head = partial ? g_strdup_printf ("HTTP/1.1 206 Partial Content\r\nContent-Type: application/octet-stream\r\n"
                                         "Content-Length: %zu\r\nContent-Range: bytes %zu-%zu/%zu\r\n"
                                         "Connection: close\r\n\r\n",
                                         r->len, start, total - 1, total)
                      : g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                         "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                                         r->len);
    r->conn = soup_server_message_steal_connection (msg);
    g_thread_unref (g_thread_new ("hub-raw", raw_thread, r));
    return;
  }
  if (!storage)
    soup_message_headers_replace (rs, "X-Repo-Commit", HUB_COMMIT);
  soup_message_headers_replace (rs, "Accept-Ranges", "bytes");
  if (partial) {
    soup_message_headers_set_content_range (rs, (goffset) start, (goffset) total - 1, (goffset) total);
    soup_server_message_set_status (msg, 206, NULL);
  } else {
    soup_server_message_set_status (msg, 200, NULL);
  }
  gsize len;
  const guint8 *d = g_bytes_get_data (data, &len);
  soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY, (const char *) d + start,
                                    len - start);
  g_bytes_unref (data);
}

static void
handle (HubServer *s, SoupServerMessage *msg, const char *path)
{
  if (s->faults & HUB_PROXY_407) {
    soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Proxy-Authenticate",
                                  "Basic realm=\"test proxy\"");
    error_response (msg, 407, NULL);
    return;
  }
  const char *method = soup_server_message_get_method (msg);
  if (!g_str_equal (method, "GET") && !g_str_equal (method, "HEAD")) {
    error_response (msg, 405, NULL);
    return;
  }
  const char *api = "/api/models/";
  if (g_str_has_prefix (path, api)) {
    const char *rest = path + strlen (api);
    const char *t = strstr (rest, "/tree/");
    const char *r = strstr (rest, "/revision/");
    if (!t && r) {
      /* the revision API: the commit a branch points at */
      g_autofree char *repo = g_strndup (rest, (gsize) (r - rest));
      if (!authorized (s, msg))
        error_response (msg, 401, NULL);
      else if (!g_str_equal (repo, s->repo))
        error_response (msg, 404, "RepoNotFound");
      else if (!g_str_equal (r + 10, "main") && !g_str_equal (r + 10, HUB_COMMIT))
        error_response (msg, 404, "RevisionNotFound");
      else {
        const char *body = "{\"id\":\"x\",\"sha\":\"" HUB_COMMIT "\"}";
        soup_server_message_set_status (msg, 200, NULL);
        soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC, body, strlen (body));
      }
      return;
    }
    g_autofree char *repo = t ? g_strndup (rest, (gsize) (t - rest)) : NULL;
    if (!authorized (s, msg))
      error_response (msg, 401, NULL);
    else if (!repo || !g_str_equal (repo, s->repo))
      error_response (msg, 404, "RepoNotFound");
    else if (!g_str_equal (t + 6, "main") && !g_str_equal (t + 6, HUB_COMMIT))
      error_response (msg, 404, "RevisionNotFound");
    else
      tree (s, msg);
    return;
  }
  if (g_str_has_prefix (path, "/storage/")) {
    if (soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization"))
      s->storage_saw_token = TRUE;
    File *f = g_hash_table_lookup (s->by_sha, path + strlen ("/storage/"));
    if (f)
      content (s, msg, f, TRUE);
    else
      error_response (msg, 404, NULL);
    return;
  }
  g_autofree char *prefix = g_strdup_printf ("/%s/resolve/", s->repo);
  if (g_str_has_prefix (path, prefix)) {
    const char *rest = path + strlen (prefix);
    const char *slash = strchr (rest, '/');
    g_autofree char *rev = slash ? g_strndup (rest, (gsize) (slash - rest)) : NULL;
    File *f = slash ? g_hash_table_lookup (s->by_path, slash + 1) : NULL;
    if (rev)
      g_hash_table_add (s->resolve_revs, g_strdup (rev));
    if (!authorized (s, msg))
      error_response (msg, 401, NULL);
    else if (!rev || (!g_str_equal (rev, "main") && !g_str_equal (rev, HUB_COMMIT)))
      error_response (msg, 404, "RevisionNotFound");
    else if (!f)
      error_response (msg, 404, "EntryNotFound");
    else if (f->sha256) {
      SoupMessageHeaders *rs = soup_server_message_get_response_headers (msg);
      /* relative, as the Hub's own redirects for same-host files; or to another host name */
      g_autofree char *loc = (s->faults & HUB_CROSS_HOST)
                                 ? g_strdup_printf ("http://localhost:%d/storage/%s?expires=1", s->port, f->sha256)
                                 : g_strdup_printf ("/storage/%s?expires=1", f->sha256);
      g_autofree char *etag = g_strdup_printf ("\"%s\"", f->sha256);
      g_autofree char *size = g_strdup_printf ("%" G_GSIZE_FORMAT, g_bytes_get_size (f->data));
      soup_message_headers_replace (rs, "Location", loc);
      soup_message_headers_replace (rs, "X-Linked-Etag", etag);
      soup_message_headers_replace (rs, "X-Linked-Size", size);
      soup_message_headers_replace (rs, "ETag", etag);
      soup_message_headers_replace (rs, "X-Repo-Commit", HUB_COMMIT);
      soup_server_message_set_status (msg, 302, NULL);
    } else
      content (s, msg, f, FALSE);
    return;
  }
  error_response (msg, 404, NULL);
}

static void
handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  HubServer *s = user_data;
  g_mutex_lock (&s->lock);
  handle (s, msg, path);
  g_mutex_unlock (&s->lock);
}

/* ---- the server thread -------------------------------------------------------------------- */

static gpointer
server_thread (gpointer data)
{
  HubServer *s = data;
  g_main_context_push_thread_default (s->context);
  s->server = soup_server_new ("server-header", "test-hub", NULL);
  soup_server_add_handler (s->server, NULL, handler, s, NULL);
  GError *error = NULL;
  if (!soup_server_listen_local (s->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error))
    g_error ("test hub: %s", error->message);
  GSList *uris = soup_server_get_uris (s->server);
  g_mutex_lock (&s->lock);
  s->port = g_uri_get_port (uris->data);
  s->endpoint = g_strdup_printf ("http://127.0.0.1:%d", s->port);
  g_cond_broadcast (&s->ready);
  g_mutex_unlock (&s->lock);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  g_main_loop_run (s->loop);
  /* let the connections close and go before the server does (no leaks under ASan) */
  soup_server_disconnect (s->server);
  g_object_unref (s->server);
  for (int i = 0; i < 20; i++) {
    while (g_main_context_iteration (s->context, FALSE));
    g_usleep (5000);
  }
  g_main_context_pop_thread_default (s->context);
  return NULL;
}

HubServer *
hub_server_new (const char *model_dir)
{
  return hub_server_new_repo (model_dir, HUB_REPO);
}

HubServer *
hub_server_new_repo (const char *model_dir, const char *repo)
{
  HubServer *s = g_new0 (HubServer, 1);
  s->repo = g_strdup (repo);
  s->slow_chunk = 4096;
  s->files = g_ptr_array_new_with_free_func ((GDestroyNotify) file_free);
  s->by_path = g_hash_table_new (g_str_hash, g_str_equal);
  s->by_sha = g_hash_table_new (g_str_hash, g_str_equal);
  s->bodies = g_ptr_array_new_with_free_func ((GDestroyNotify) body_free);
  s->resolve_revs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  add_files (s, model_dir, NULL);
  g_mutex_init (&s->lock);
  g_cond_init (&s->ready);
  s->context = g_main_context_new ();
  s->loop = g_main_loop_new (s->context, FALSE);
  s->thread = g_thread_new ("test-hub", server_thread, s);
  g_mutex_lock (&s->lock);
  while (!s->endpoint) g_cond_wait (&s->ready, &s->lock);
  g_mutex_unlock (&s->lock);
  return s;
}

static gboolean
quit (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

void
hub_server_free (HubServer *s)
{
  g_main_context_invoke (s->context, quit, s->loop);
  g_thread_join (s->thread);
  g_main_loop_unref (s->loop);
  g_main_context_unref (s->context);
  g_ptr_array_unref (s->bodies);
  g_hash_table_unref (s->resolve_revs);
  g_hash_table_unref (s->by_path);
  g_hash_table_unref (s->by_sha);
  g_ptr_array_unref (s->files);
  g_free (s->endpoint);
  g_free (s->fault_path);
  g_free (s->token);
  g_free (s->repo);
  g_mutex_clear (&s->lock);
  g_cond_clear (&s->ready);
  g_free (s);
}

const char *
hub_server_endpoint (HubServer *s)
{
  return s->endpoint;
}

void
hub_server_set_faults (HubServer *s, guint faults, const char *path, const char *token)
{
  g_mutex_lock (&s->lock);
  s->faults = faults;
  g_free (s->fault_path);
  s->fault_path = g_strdup (path);
  g_free (s->token);
  s->token = g_strdup (token);
  s->cut_done = s->bad_done = FALSE;
  s->flaky_left = 2;
  s->storage_saw_token = FALSE;
  g_ptr_array_set_size (s->bodies, 0);
  g_hash_table_remove_all (s->resolve_revs);
  g_mutex_unlock (&s->lock);
}

guint
hub_server_bodies (HubServer *s, const char *path)
{
  guint n = 0;
  g_mutex_lock (&s->lock);
  for (guint i = 0; i < s->bodies->len; i++) n += g_str_equal (((Body *) s->bodies->pdata[i])->path, path);
  g_mutex_unlock (&s->lock);
  return n;
}

char *
hub_server_ranges (HubServer *s, const char *path)
{
  GString *r = g_string_new (NULL);
  g_mutex_lock (&s->lock);
  for (guint i = 0; i < s->bodies->len; i++) {
    Body *b = s->bodies->pdata[i];
    if (g_str_equal (b->path, path))
      g_string_append_printf (r, "%s%s", r->len ? "," : "", b->range);
  }
  g_mutex_unlock (&s->lock);
  return g_string_free (r, FALSE);
}

gboolean
hub_server_storage_saw_token (HubServer *s)
{
  g_mutex_lock (&s->lock);
  gboolean saw = s->storage_saw_token;
  g_mutex_unlock (&s->lock);
  return saw;
}

void
hub_server_set_slow_chunk (HubServer *s, gsize bytes)
{
  g_mutex_lock (&s->lock);
  s->slow_chunk = MAX (bytes, 1);
  g_mutex_unlock (&s->lock);
}

char *
hub_server_resolve_revisions (HubServer *s)
{
  g_mutex_lock (&s->lock);
  g_autoptr (GList) keys = g_hash_table_get_keys (s->resolve_revs);
  keys = g_list_sort (keys, (GCompareFunc) strcmp);
  GString *r = g_string_new (NULL);
  for (GList *l = keys; l; l = l->next) g_string_append_printf (r, "%s%s", r->len ? "," : "", (const char *) l->data);
  g_mutex_unlock (&s->lock);
  return g_string_free (r, FALSE);
}
