/* dg_download_model against the test Hub (hub_server.h) on 127.0.0.1: the tiny model into an
 * empty folder, resume after a cut, wrong hashes, Range ignored, 404, tokens, a slow server
 * and cancel, a full disk (RLIMIT_FSIZE in a child), retries, no network, a second run.
 * After every case, whatever stands under a real name in the folder is byte-identical to the
 * source: nothing corrupt is ever left in place. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "dg_download.h"
#include "dg_error.h"
#include "hub_server.h"

static HubServer *hub;
static const char *tiny; /* the source folder */
static const char *self_exe;

#define BIG "vlm_lora/merged/model.safetensors" /* the largest file: 2 MB */
#define SMALL "tokenizer/tokenizer.json"        /* a small (git blob id) file */

/* ---- helpers ---------------------------------------------------------------------------------- */

static void
rm_rf (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK)) {
    GDir *d = g_dir_open (path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d)) != NULL) {
      g_autofree char *sub = g_build_filename (path, name, NULL);
      rm_rf (sub);
    }
    if (d)
      g_dir_close (d);
    g_rmdir (path);
  } else {
    g_unlink (path);
  }
}

static char *
new_dir (void)
{
  char *d = g_dir_make_tmp ("dg-download-XXXXXX", NULL);
  g_assert_nonnull (d);
  /* a folder inside it: the download creates it */
  char *m = g_build_filename (d, "DeepGen-1.0-diffusers", NULL);
  g_free (d);
  return m;
}

static void
drop_dir (char *dir)
{
  g_autofree char *parent = g_path_get_dirname (dir);
  rm_rf (parent);
  g_free (dir);
}

typedef struct {
  gint calls;
  DgDownloadPhase last_phase;
  guint64 last_done, last_total;
  gint64 transferred;         /* atomic-ish: read by the test thread while it runs */
  GCancellable *cancel_after; /* cancelled once this many bytes are transferred: */
  guint64 cancel_at;
} Seen;

static void
on_progress (const DgDownloadProgress *p, gpointer data)
{
  Seen *s = data;
  s->calls++;
  s->last_phase = p->phase;
  s->last_done = p->done_bytes;
  s->last_total = p->total_bytes;
  g_assert_cmpuint (p->done_bytes, <=, p->total_bytes ? p->total_bytes : p->done_bytes);
  g_autofree char *text = dg_download_progress_text (p);
  g_assert_nonnull (text);
  if (s->cancel_after && p->transferred_bytes >= s->cancel_at)
    g_cancellable_cancel (s->cancel_after);
}

static DgDownloadOptions
options (Seen *seen)
{
  DgDownloadOptions o = DG_DOWNLOAD_OPTIONS_INIT;
  o.endpoint = hub_server_endpoint (hub);
  o.repo = HUB_REPO;
  o.attempts = 3;
  o.timeout_s = 10;
  o.backoff_ms = 5;
  o.progress = seen ? on_progress : NULL;
  o.user_data = seen;
  return o;
}

static gboolean
download (const char *dir, const DgDownloadOptions *o, DgDownloadResult *r, GError **error)
{
  return dg_download_model (dir, o, NULL, r, error);
}

/* Every file under a real name in @dir (.cache aside) equals the source; returns how many. */
static guint
check_in_place (const char *dir, const char *rel)
{
  g_autofree char *path = rel ? g_build_filename (dir, rel, NULL) : g_strdup (dir);
  GDir *d = g_dir_open (path, 0, NULL);
  if (!d)
    return 0;
  guint n = 0;
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL) {
    if (!rel && g_str_equal (name, ".cache"))
      continue;
    g_autofree char *r = rel ? g_build_filename (rel, name, NULL) : g_strdup (name);
    g_autofree char *full = g_build_filename (dir, r, NULL);
    if (g_file_test (full, G_FILE_TEST_IS_DIR)) {
      n += check_in_place (dir, r);
      continue;
    }
    g_autofree char *src = g_build_filename (tiny, r, NULL);
    g_autofree char *a = NULL, *b = NULL;
    gsize la = 0, lb = 0;
    g_assert_true (g_file_get_contents (full, &a, &la, NULL));
    if (!g_file_get_contents (src, &b, &lb, NULL))
      g_error ("%s is in the download but not in the source", r);
    if (la != lb || memcmp (a, b, la) != 0)
      g_error ("%s differs from the source (%zu bytes, source %zu)", r, la, lb);
    n++;
  }
  g_dir_close (d);
  return n;
}

static guint
count_source_files (const char *rel)
{
  g_autofree char *path = rel ? g_build_filename (tiny, rel, NULL) : g_strdup (tiny);
  GDir *d = g_dir_open (path, 0, NULL);
  guint n = 0;
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL) {
    g_autofree char *r = rel ? g_build_filename (rel, name, NULL) : g_strdup (name);
    g_autofree char *full = g_build_filename (tiny, r, NULL);
    n += g_file_test (full, G_FILE_TEST_IS_DIR) ? count_source_files (r) : 1;
  }
  g_dir_close (d);
  return n;
}

static gboolean
exists_under (const char *dir, const char *rel)
{
  g_autofree char *p = g_build_filename (dir, rel, NULL);
  return g_file_test (p, G_FILE_TEST_EXISTS);
}

static guint64
file_size (const char *path)
{
  GStatBuf st;
  return g_stat (path, &st) == 0 ? (guint64) st.st_size : 0;
}

/* ---- cases ------------------------------------------------------------------------------------ */

static void
test_fresh_then_nothing (void)
{
  hub_server_set_faults (hub, 0, NULL, NULL);
  char *dir = new_dir ();
  Seen seen = { 0 };
  DgDownloadOptions o = options (&seen);
  DgDownloadResult r = { 0 };
  g_autoptr (GError) error = NULL;
  g_assert_true (download (dir, &o, &r, &error));
  g_assert_no_error (error);
  const guint n = count_source_files (NULL);
  g_assert_cmpuint (r.n_files, ==, n);
  g_assert_cmpuint (r.files_fetched, ==, n);
  g_assert_cmpstr (r.commit, ==, HUB_COMMIT);
  g_assert_cmpuint (r.transferred_bytes, ==, r.total_bytes);
  g_assert_cmpuint (check_in_place (dir, NULL), ==, n);
  g_assert_false (exists_under (dir, ".cache"));
  g_assert_false (exists_under (dir, ".gitattributes"));
  g_assert_cmpint (seen.last_phase, ==, DG_DOWNLOAD_PHASE_DONE);
  g_assert_cmpuint (seen.last_done, ==, seen.last_total);
  g_assert_cmpuint (dg_download_partial_bytes (dir), ==, 0);
  dg_download_result_clear (&r);

  /* a second run over the complete folder transfers nothing */
  hub_server_set_faults (hub, 0, NULL, NULL);
  g_assert_true (download (dir, &o, &r, &error));
  g_assert_cmpuint (r.transferred_bytes, ==, 0);
  g_assert_cmpuint (r.files_present, ==, n);
  g_assert_cmpuint (r.files_fetched, ==, 0);
  g_assert_cmpuint (hub_server_bodies (hub, BIG), ==, 0);
  dg_download_result_clear (&r);

  /* a file left short in place (an earlier tool's broken download) is fetched and replaced */
  g_autofree char *big = g_build_filename (dir, BIG, NULL);
  g_assert_cmpint (truncate (big, 1000), ==, 0);
  g_assert_true (download (dir, &o, &r, &error));
  g_assert_cmpuint (r.files_fetched, ==, 1);
  g_assert_cmpuint (check_in_place (dir, NULL), ==, n);
  dg_download_result_clear (&r);

  /* ... and one of the right size but damaged goes at once, even when its download fails */
  g_autofree char *text = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (big, &text, &len, NULL));
  text[len / 2] ^= 1;
  g_assert_true (g_file_set_contents (big, text, (gssize) len, NULL));
  hub_server_set_faults (hub, HUB_BAD_HASH, BIG, NULL);
  g_assert_false (download (dir, &o, &r, &error));
  g_assert_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_CHECKSUM);
  g_clear_error (&error);
  g_assert_false (exists_under (dir, BIG));
  g_assert_cmpuint (check_in_place (dir, NULL), ==, n - 1);
  hub_server_set_faults (hub, 0, NULL, NULL);
  g_assert_true (download (dir, &o, &r, &error));
  g_assert_cmpuint (check_in_place (dir, NULL), ==, n);
  dg_download_result_clear (&r);
  drop_dir (dir);
}

static void
test_pinned_commit (void)
{
  /* every file is fetched at the commit the listing reported, not at the branch */
  hub_server_set_faults (hub, 0, NULL, NULL);
  char *dir = new_dir ();
  DgDownloadOptions o = options (NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (download (dir, &o, NULL, &error));
  g_autofree char *revs = hub_server_resolve_revisions (hub);
  g_assert_cmpstr (revs, ==, HUB_COMMIT);
  drop_dir (dir);

  /* a listing without X-Repo-Commit: the revision API tells the commit */
  hub_server_set_faults (hub, HUB_NO_COMMIT, NULL, NULL);
  dir = new_dir ();
  DgDownloadResult r = { 0 };
  g_assert_true (download (dir, &o, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (r.commit, ==, HUB_COMMIT);
  g_free (revs);
  revs = hub_server_resolve_revisions (hub);
  g_assert_cmpstr (revs, ==, HUB_COMMIT);
  g_assert_cmpuint (check_in_place (dir, NULL), ==, count_source_files (NULL));
  dg_download_result_clear (&r);
  drop_dir (dir);
}

static void
test_resume_after_cut (void)
{
  hub_server_set_faults (hub, HUB_CUT, BIG, NULL);
  char *dir = new_dir ();
  DgDownloadOptions o = options (NULL);
  DgDownloadResult r = { 0 };
  g_autoptr (GError) error = NULL;
  g_assert_true (download (dir, &o, &r, &error));
  g_assert_no_error (error);
  g_autofree char *src = g_build_filename (tiny, BIG, NULL);
  g_autofree char *want = g_strdup_printf ("-,bytes=%" G_GUINT64_FORMAT "-", file_size (src) / 2);
  g_autofree char *ranges = hub_server_ranges (hub, BIG);
  /* the second request asks for exactly the bytes the first one did not deliver */
  g_assert_cmpstr (ranges, ==, want);
  g_assert_cmpuint (r.transferred_bytes, ==, r.total_bytes);
  g_assert_cmpuint (check_in_place (dir, NULL), ==, count_source_files (NULL));
  dg_download_result_clear (&r);
  drop_dir (dir);
}

static void
test_range_ignored (void)
{
  /* cut, then the next request's Range is ignored (200): that file starts again */
  hub_server_set_faults (hub, HUB_CUT | HUB_IGNORE_RANGE, BIG, NULL);
  char *dir = new_dir ();
  DgDownloadOptions o = options (NULL);
  DgDownloadResult r = { 0 };
  g_autoptr (GError) error = NULL;
  g_assert_true (download (dir, &o, &r, &error));
  g_assert_no_error (error);
  g_autofree char *src = g_build_filename (tiny, BIG, NULL);
  g_autofree char *ranges = hub_server_ranges (hub, BIG);
  g_autofree char *want = g_strdup_printf ("-,bytes=%" G_GUINT64_FORMAT "-", file_size (src) / 2);
  g_assert_cmpstr (ranges, ==, want);
  /* the half that came first, then the whole file again */
  g_assert_cmpuint (r.transferred_bytes, ==, r.total_bytes + file_size (src) / 2);
  g_assert_cmpuint (check_in_place (dir, NULL), ==, count_source_files (NULL));
  dg_download_result_clear (&r);
  drop_dir (dir);
}

static void
test_bad_hash (void)
{
  char *dir = new_dir ();
  DgDownloadOptions o = options (NULL);
  DgDownloadResult r = { 0 };
  g_autoptr (GError) error = NULL;

  /* wrong once: fetched again, and then right */
  hub_server_set_faults (hub, HUB_BAD_HASH_ONCE, BIG, NULL);
  g_assert_true (download (dir, &o, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (hub_server_bodies (hub, BIG), ==, 2);
  g_assert_cmpuint (check_in_place (dir, NULL), ==, count_source_files (NULL));
  dg_download_result_clear (&r);
  drop_dir (dir);

  /* wrong every time (a LFS file and a small one): fetched once more, then a clear error,
   * and nothing under the file's name */
  const char *cases[] = { BIG, SMALL };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    dir = new_dir ();
    hub_server_set_faults (hub, HUB_BAD_HASH, cases[i], NULL);
    g_assert_false (download (dir, &o, &r, &error));
    g_assert_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_CHECKSUM);
    g_test_message ("%s", error->message);
    g_assert_nonnull (strstr (error->message, cases[i]));
    g_assert_nonnull (strstr (error->message, i == 0 ? "expected sha256 " : "expected git-sha1 "));
    g_assert_cmpuint (hub_server_bodies (hub, cases[i]), ==, 2);
    g_assert_false (exists_under (dir, cases[i]));
    g_autofree char *part = g_strconcat (".cache/deepgen-download/", cases[i], ".part", NULL);
    g_assert_false (exists_under (dir, part));
    check_in_place (dir, NULL);
    g_clear_error (&error);
    drop_dir (dir);
  }
}

static void
test_not_found (void)
{
  hub_server_set_faults (hub, 0, NULL, NULL);
  char *dir = new_dir ();
  DgDownloadOptions o = options (NULL);
  g_autoptr (GError) error = NULL;
  o.revision = "v9";
  g_assert_false (download (dir, &o, NULL, &error));
  g_assert_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_NOT_FOUND);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "'v9'"));
  g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS)); /* nothing made for a failed request */
  g_clear_error (&error);
  o.revision = NULL;
  o.repo = "test/no-such-model";
  g_assert_false (download (dir, &o, NULL, &error));
  g_assert_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_NOT_FOUND);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "test/no-such-model"));
  g_clear_error (&error);
  o.repo = "../etc";
  g_assert_false (download (dir, &o, NULL, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  drop_dir (dir);
}

static void
test_token (void)
{
  char *dir = new_dir ();
  g_autofree char *home = g_path_get_dirname (dir);
  g_setenv ("HF_HOME", home, TRUE);
  g_unsetenv ("HF_TOKEN");
  g_unsetenv ("HF_TOKEN_PATH");
  DgDownloadOptions o = options (NULL);
  g_autoptr (GError) error = NULL;
  DgDownloadResult r = { 0 };

  hub_server_set_faults (hub, HUB_NEED_TOKEN, NULL, "hf_test_secret");
  g_assert_false (download (dir, &o, NULL, &error));
  g_assert_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_AUTH);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "401"));
  g_assert_nonnull (strstr (error->message, "HF_TOKEN"));
  g_clear_error (&error);

  o.token = "hf_wrong";
  g_assert_false (download (dir, &o, NULL, &error));
  g_assert_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_AUTH);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "refused"));
  g_clear_error (&error);

  /* the user's token file ($HF_HOME/token); the storage host (another host name) never
   * sees the token */
  o.token = NULL;
  g_autofree char *token_file = g_build_filename (home, "token", NULL);
  g_assert_true (g_file_set_contents (token_file, "hf_test_secret\n", -1, NULL));
  g_autofree char *found = dg_download_find_token ();
  g_assert_cmpstr (found, ==, "hf_test_secret");
  hub_server_set_faults (hub, HUB_NEED_TOKEN | HUB_CROSS_HOST, NULL, "hf_test_secret");
  g_assert_true (download (dir, &o, &r, &error));
  g_assert_no_error (error);
  g_assert_false (hub_server_storage_saw_token (hub));
  g_assert_cmpuint (check_in_place (dir, NULL), ==, count_source_files (NULL));
  dg_download_result_clear (&r);

  g_setenv ("HF_TOKEN", " hf_from_env ", TRUE);
  g_free (found);
  found = dg_download_find_token ();
  g_assert_cmpstr (found, ==, "hf_from_env");
  g_unsetenv ("HF_TOKEN");
  g_unsetenv ("HF_HOME");
  drop_dir (dir);
}

typedef struct {
  const char *dir;
  DgDownloadOptions o;
  GCancellable *cancel;
  GError *error;
  gboolean ok;
} Bg;

static gpointer
bg_download (gpointer data)
{
  Bg *b = data;
  b->ok = dg_download_model (b->dir, &b->o, b->cancel, NULL, &b->error);
  return NULL;
}

static void
test_slow_cancel_resume (void)
{
  hub_server_set_faults (hub, HUB_SLOW, NULL, NULL);
  char *dir = new_dir ();
  Seen seen = { 0 };
  Bg b = { dir, options (&seen), g_cancellable_new (), NULL, FALSE };
  seen.cancel_after = b.cancel;
  seen.cancel_at = 200 * 1024;
  GThread *t = g_thread_new ("bg", bg_download, &b);
  g_thread_join (t);
  g_assert_false (b.ok);
  g_assert_error (b.error, DG_ERROR, DG_ERROR_CANCELLED);
  g_test_message ("%s", b.error->message);
  g_assert_nonnull (strstr (b.error->message, "again"));
  g_clear_error (&b.error);
  /* the partial files stay; nothing partial stands under a real name */
  const guint64 partial = dg_download_partial_bytes (dir);
  g_assert_cmpuint (partial, >, 0);
  check_in_place (dir, NULL);

  /* a later run resumes them */
  hub_server_set_faults (hub, 0, NULL, NULL);
  DgDownloadOptions o = options (NULL);
  DgDownloadResult r = { 0 };
  g_autoptr (GError) error = NULL;
  g_assert_true (download (dir, &o, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (r.transferred_bytes, <=, r.total_bytes - partial);
  g_assert_cmpuint (check_in_place (dir, NULL), ==, count_source_files (NULL));
  g_assert_cmpuint (dg_download_partial_bytes (dir), ==, 0);
  dg_download_result_clear (&r);
  g_object_unref (b.cancel);
  drop_dir (dir);
}

static void
test_retry_5xx (void)
{
  hub_server_set_faults (hub, HUB_FLAKY, BIG, NULL);
  char *dir = new_dir ();
  DgDownloadOptions o = options (NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (download (dir, &o, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (hub_server_bodies (hub, BIG), ==, 3);
  check_in_place (dir, NULL);
  drop_dir (dir);

  /* more failures than attempts: the server's answer, with the advice to run again */
  dir = new_dir ();
  hub_server_set_faults (hub, HUB_FLAKY, BIG, NULL);
  o.attempts = 2;
  g_assert_false (download (dir, &o, NULL, &error));
  g_assert_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_SERVER);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "503"));
  check_in_place (dir, NULL);
  drop_dir (dir);
}

static void
test_no_network (void)
{
  /* a port where nothing listens */
  GSocket *sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_assert_true (g_socket_bind (sock, any, FALSE, NULL));
  g_autoptr (GSocketAddress) bound = g_socket_get_local_address (sock, NULL);
  const guint port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_object_unref (sock); /* closed: connections are refused */
  g_autofree char *endpoint = g_strdup_printf ("http://127.0.0.1:%u", port);
  char *dir = new_dir ();
  DgDownloadOptions o = options (NULL);
  o.endpoint = endpoint;
  o.attempts = 2;
  g_autoptr (GError) error = NULL;
  g_assert_false (download (dir, &o, NULL, &error));
  g_assert_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_NETWORK);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "Cannot reach 127.0.0.1"));
  g_clear_error (&error);

  o.endpoint = "ftp://example.org";
  g_assert_false (download (dir, &o, NULL, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  drop_dir (dir);
}

static void
test_timeout (void)
{
  /* half a file, then silence with the connection open: the read times out, the next attempt
   * asks for the rest */
  hub_server_set_faults (hub, HUB_STALL, BIG, NULL);
  char *dir = new_dir ();
  DgDownloadOptions o = options (NULL);
  o.timeout_s = 1;
  g_autoptr (GError) error = NULL;
  const gint64 t0 = g_get_monotonic_time ();
  g_assert_true (download (dir, &o, NULL, &error));
  g_assert_no_error (error);
  /* the server would stay silent for 20 s: the 1 s timeout cut it short */
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 15 * G_USEC_PER_SEC);
  g_autofree char *src = g_build_filename (tiny, BIG, NULL);
  g_autofree char *want = g_strdup_printf ("-,bytes=%" G_GUINT64_FORMAT "-", file_size (src) / 2);
  g_autofree char *ranges = hub_server_ranges (hub, BIG);
  g_assert_cmpstr (ranges, ==, want);
  g_assert_cmpuint (check_in_place (dir, NULL), ==, count_source_files (NULL));
  drop_dir (dir);
}

static void
test_no_space_first (void)
{
  /* what is needed is checked against the free space before anything is fetched */
  hub_server_set_faults (hub, HUB_HUGE, NULL, NULL);
  char *dir = new_dir ();
  DgDownloadOptions o = options (NULL);
  g_autoptr (GError) error = NULL;
  g_assert_false (download (dir, &o, NULL, &error));
  g_assert_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_NO_SPACE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "Not enough disk space"));
  g_assert_cmpuint (hub_server_bodies (hub, BIG), ==, 0);
  g_assert_cmpuint (check_in_place (dir, NULL), ==, 0);
  drop_dir (dir);
}

static void
test_proxy (void)
{
  /* a proxy that wants credentials (the test Hub playing one) */
  hub_server_set_faults (hub, HUB_PROXY_407, NULL, NULL);
  char *dir = new_dir ();
  DgDownloadOptions o = options (NULL);
  o.endpoint = "http://hub.invalid";
  g_autoptr (GProxyResolver) proxy = g_simple_proxy_resolver_new (hub_server_endpoint (hub), NULL);
  o.proxy_resolver = proxy;
  g_autoptr (GError) error = NULL;
  g_assert_false (download (dir, &o, NULL, &error));
  g_assert_error (error, DG_DOWNLOAD_ERROR, DG_DOWNLOAD_ERROR_PROXY);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "407"));
  g_clear_error (&error);
  hub_server_set_faults (hub, 0, NULL, NULL);

  /* a proxy that is not there: the message says it is the proxy */
  g_autoptr (GProxyResolver) gone = g_simple_proxy_resolver_new ("http://127.0.0.1:9", NULL);
  o.proxy_resolver = gone;
  o.attempts = 1;
  g_assert_false (download (dir, &o, NULL, &error));
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "proxy"));
  g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
  drop_dir (dir);
}

/* The child of test_disk_full: a download under a file size limit. */
static int
child_fsize (const char *dir, const char *endpoint, const char *limit)
{
  signal (SIGXFSZ, SIG_IGN); /* the write fails with EFBIG instead of killing the process */
  struct rlimit rl = { g_ascii_strtoull (limit, NULL, 10), g_ascii_strtoull (limit, NULL, 10) };
  if (setrlimit (RLIMIT_FSIZE, &rl) < 0)
    return 2;
  DgDownloadOptions o = DG_DOWNLOAD_OPTIONS_INIT;
  o.endpoint = endpoint;
  o.repo = HUB_REPO;
  o.backoff_ms = 5;
  GError *error = NULL;
  if (dg_download_model (dir, &o, NULL, NULL, &error))
    return 0;
  printf ("%d %s\n", error->code == DG_DOWNLOAD_ERROR_NO_SPACE && error->domain == DG_DOWNLOAD_ERROR, error->message);
  g_error_free (error);
  return 3;
}

static void
test_disk_full (void)
{
  hub_server_set_faults (hub, 0, NULL, NULL);
  char *dir = new_dir ();
  const char *argv[] = { self_exe, "--child-fsize", dir, hub_server_endpoint (hub), "300000", NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error));
  g_test_message ("child: %s%s", out, err);
  g_assert_true (g_spawn_check_wait_status (status, NULL) == FALSE);
  g_assert_true (g_str_has_prefix (out, "1 "));
  g_assert_nonnull (strstr (out, "disk is full"));
  /* what is in place is whole; the rest resumes once there is room */
  check_in_place (dir, NULL);
  const guint64 partial = dg_download_partial_bytes (dir);
  g_assert_cmpuint (partial, >, 0);
  DgDownloadOptions o = options (NULL);
  DgDownloadResult r = { 0 };
  g_assert_true (download (dir, &o, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (r.transferred_bytes, <=, r.total_bytes - partial);
  g_assert_cmpuint (check_in_place (dir, NULL), ==, count_source_files (NULL));
  dg_download_result_clear (&r);
  drop_dir (dir);
}

static void
test_progress_text (void)
{
  DgDownloadProgress p = { 0 };
  p.phase = DG_DOWNLOAD_PHASE_FETCHING;
  p.done_bytes = 1200000000;
  p.total_bytes = 14400000000;
  p.bytes_per_second = 25300000;
  p.seconds_left = 540;
  g_autofree char *t = dg_download_progress_text (&p);
  /* g_format_size puts a no-break space between number and unit */
  g_assert_cmpstr (t, ==, "1.2\u00a0GB of 14.4\u00a0GB, 25.3\u00a0MB/s, 9 min left");
}

int
main (int argc, char **argv)
{
  if (argc == 5 && g_str_equal (argv[1], "--child-fsize"))
    return child_fsize (argv[2], argv[3], argv[4]);
  g_test_init (&argc, &argv, NULL);
  g_unsetenv ("HF_TOKEN");
  g_unsetenv ("HF_ENDPOINT");
  g_setenv ("no_proxy", "127.0.0.1,localhost", TRUE);
  self_exe = g_file_read_link ("/proc/self/exe", NULL);
  tiny = DEEPGEN_TEST_DATA_DIR "/tiny-deepgen";
  hub = hub_server_new (tiny);
  g_test_add_func ("/download/fresh-then-nothing", test_fresh_then_nothing);
  g_test_add_func ("/download/pinned-commit", test_pinned_commit);
  g_test_add_func ("/download/resume-after-cut", test_resume_after_cut);
  g_test_add_func ("/download/range-ignored", test_range_ignored);
  g_test_add_func ("/download/bad-hash", test_bad_hash);
  g_test_add_func ("/download/not-found", test_not_found);
  g_test_add_func ("/download/token", test_token);
  g_test_add_func ("/download/slow-cancel-resume", test_slow_cancel_resume);
  g_test_add_func ("/download/retry-5xx", test_retry_5xx);
  g_test_add_func ("/download/no-network", test_no_network);
  g_test_add_func ("/download/timeout", test_timeout);
  g_test_add_func ("/download/proxy", test_proxy);
  g_test_add_func ("/download/no-space-first", test_no_space_first);
  g_test_add_func ("/download/disk-full", test_disk_full);
  g_test_add_func ("/download/progress-text", test_progress_text);
  int rc = g_test_run ();
  hub_server_free (hub);
  return rc;
}
