/* The resident service (DESIGN.md §9) on the tiny model: `deepgen serve` runs in a private runtime
 * folder; clients use the public client API (dg_service.h), raw frames (protocol.h) or are real
 * `deepgen generate` processes. Every result is compared byte for byte with dg_run in this
 * process. The service's stderr is kept and must hold no validation message.
 *
 *   /service/queue          three clients at once: FIFO order, results identical to in-process
 *   /service/cancel         one job cancelled while another waits; the other is unaffected
 *   /service/client-killed  a client process SIGKILLed mid-job; the service and others go on
 *   /service/service-killed the service SIGKILLed mid-job: a clear error; a new one starts cleanly
 *   /service/idle-exit      the service leaves after --idle-exit seconds without clients
 *   /service/malformed      bad frames close only their own connection
 *   /service/foreign-uid    another user (nobody) cannot connect, nor be served if it could
 *   /service/large-image    an 8192×8192 RGBA inpaint through shared memory both ways
 *   /service/regenerate     same prompt, new seed: the VLM and connector are skipped, same image
 *   /service/previews       a preview per DiT step at latent size, the image unchanged; --preview
 *   /service/variations     N results in one job equal in-process dg_run_batch; the CLI's
 *                           --n-results through the service equal single in-process runs; a
 *                           cancel mid-batch
 *   /service/model-switch   folder → synthetic model (layers 1, then 2: different needs) → folder:
 *                           each switch reopens (a size the plan refuses keeps the synthetic
 *                           jobs cheap)
 *   /service/bench          `deepgen bench --service`: the warm jobs upload nothing, Regenerate
 *                           skips the VLM and connector
 *   /service/warm-latency   figures: client call to first DiT step, cold and warm; preview cost */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixfdmessage.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

#include "deepgen.h"
#include "dg_service.h"
#include "protocol.h"
#include "resident.h"

static char *tiny;
static DgModel *ref_model; /* in-process, for the byte-for-byte references */
static DgEngine *ref_engine;

/* ---- the service under test ---- */

typedef struct {
  char *dir, *sock, *log;
  GSubprocess *proc;
} Svc;

static gboolean
can_connect (const char *path)
{
  g_autoptr (DgServiceClient) c = dg_service_client_connect (path, NULL, NULL);
  return c != NULL;
}

static void
svc_start (Svc *s, int idle_exit)
{
  if (!s->dir) {
    s->dir = g_dir_make_tmp ("dg-service-XXXXXX", NULL);
    g_assert_nonnull (s->dir);
    g_autofree char *name = dg_service_socket_name ();
    s->sock = g_build_filename (s->dir, "deepgen", name, NULL);
    s->log = g_build_filename (s->dir, "serve.log", NULL);
  }
  g_autoptr (GSubprocessLauncher) l = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_subprocess_launcher_setenv (l, "XDG_RUNTIME_DIR", s->dir, TRUE);
  g_subprocess_launcher_set_stderr_file_path (l, s->log);
  g_autofree char *idle = g_strdup_printf ("%d", idle_exit);
  g_autoptr (GError) error = NULL;
  s->proc = g_subprocess_launcher_spawn (l, &error, DEEPGEN_CLI, "serve", "--idle-exit", idle, NULL);
  g_assert_no_error (error);
  for (int i = 0; i < 400 && !can_connect (s->sock); i++) g_usleep (50 * 1000);
  g_assert_true (can_connect (s->sock));
}

static void
check_log (Svc *s)
{
  g_autofree char *log = NULL;
  g_assert_true (g_file_get_contents (s->log, &log, NULL, NULL));
  if (strstr (log, "vkc: validation"))
    g_error ("validation messages in the service's log:\n%s", log);
}

static void
svc_stop (Svc *s)
{
  if (s->proc) {
    g_subprocess_send_signal (s->proc, SIGTERM);
    g_subprocess_wait (s->proc, NULL, NULL);
    g_assert_true (g_subprocess_get_if_exited (s->proc));
    g_assert_cmpint (g_subprocess_get_exit_status (s->proc), ==, 0);
    g_clear_object (&s->proc);
  }
  check_log (s);
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", s->dir);
  g_assert_cmpint (system (cmd), ==, 0);
  g_free (s->dir);
  g_free (s->sock);
  g_free (s->log);
  memset (s, 0, sizeof *s);
}

/* ---- jobs ---- */

static DgRequest
generate (guint64 seed, int steps)
{
  DgRequest r = DG_REQUEST_INIT;
  r.job = DG_JOB_GENERATE;
  r.prompt = "a red fox in the snow";
  r.width = r.height = 64;
  r.steps = steps;
  r.seed = seed;
  return r;
}

static DgImage *
reference (const DgRequest *r)
{
  g_autoptr (GError) error = NULL;
  if (!ref_model) {
    ref_engine = dg_engine_new (NULL, &error);
    g_assert_no_error (error);
    ref_model = dg_model_open (ref_engine, tiny, NULL, &error);
    g_assert_no_error (error);
  }
  DgImage *img = dg_run (ref_model, r, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  return img;
}

static void
assert_same_image (const DgImage *a, const DgImage *b)
{
  g_assert_nonnull (a);
  g_assert_nonnull (b);
  g_assert_cmpint (a->width, ==, b->width);
  g_assert_cmpint (a->height, ==, b->height);
  g_assert_cmpint (a->channels, ==, b->channels);
  for (int y = 0; y < a->height; y++)
    g_assert_cmpmem (a->pixels + (gsize) y * a->rowstride, (gsize) a->width * a->channels,
                     b->pixels + (gsize) y * b->rowstride, (gsize) b->width * b->channels);
}

typedef struct {
  const char *sock;
  DgRequest req;
  GCancellable *cancel;
  gint denoising; /* a DiT step has started */
  int encoding;   /* ENCODE and BRIDGE progress events */
  gint done;
  int order;
  gint *counter;
  DgImage *out;
  GError *error;
  DgServiceRunInfo info;
  GThread *thread;
} Run;

static void
on_progress (DgStage stage, int step, int n_steps, gpointer data)
{
  (void) step;
  (void) n_steps;
  Run *r = data;
  if (stage == DG_STAGE_DENOISE)
    g_atomic_int_set (&r->denoising, 1);
  if (stage == DG_STAGE_ENCODE || stage == DG_STAGE_BRIDGE)
    r->encoding++;
}

static gpointer
run_thread (gpointer data)
{
  Run *r = data;
  g_autoptr (DgServiceClient) c = dg_service_client_connect (r->sock, NULL, &r->error);
  if (c) {
    DgServiceModel m = DG_SERVICE_MODEL_INIT;
    m.folder = tiny;
    r->out = dg_service_client_run (c, &m, &r->req, on_progress, r, &r->info, r->cancel, &r->error);
  }
  if (r->counter)
    r->order = g_atomic_int_add (r->counter, 1);
  g_atomic_int_set (&r->done, 1);
  return NULL;
}

static void
run_start (Run *r, const char *sock, DgRequest req, gint *counter)
{
  memset (r, 0, sizeof *r);
  r->sock = sock;
  r->req = req;
  r->counter = counter;
  r->cancel = g_cancellable_new ();
  r->thread = g_thread_new ("client", run_thread, r);
}

static void
run_join (Run *r)
{
  g_thread_join (r->thread);
  g_object_unref (r->cancel);
  dg_service_run_info_clear (&r->info);
}

static void
wait_for (gint *flag, const char *what)
{
  for (int i = 0; i < 6000 && !g_atomic_int_get (flag); i++) g_usleep (10 * 1000);
  if (!g_atomic_int_get (flag))
    g_error ("timed out waiting for %s", what);
}

/* ---- tests ---- */

static void
test_queue (void)
{
  Svc s = { 0 };
  svc_start (&s, 60);
  gint counter = 0;
  Run a, b, c;
  run_start (&a, s.sock, generate (1, 12), &counter);
  wait_for (&a.denoising, "the first job's DiT");
  run_start (&b, s.sock, generate (2, 2), &counter);
  g_usleep (300 * 1000); /* b is queued before c */
  run_start (&c, s.sock, generate (3, 2), &counter);
  run_join (&a);
  run_join (&b);
  run_join (&c);
  g_assert_no_error (a.error);
  g_assert_no_error (b.error);
  g_assert_no_error (c.error);
  g_assert_cmpint (a.order, ==, 0);
  g_assert_cmpint (b.order, ==, 1);
  g_assert_cmpint (c.order, ==, 2);
  Run *runs[] = { &a, &b, &c };
  for (guint i = 0; i < 3; i++) {
    g_autoptr (DgImage) want = reference (&runs[i]->req);
    assert_same_image (runs[i]->out, want);
    dg_image_free (runs[i]->out);
  }
  svc_stop (&s);
}

static void
test_cancel (void)
{
  Svc s = { 0 };
  svc_start (&s, 60);
  Run a, b;
  run_start (&a, s.sock, generate (1, 400), NULL);
  wait_for (&a.denoising, "the long job's DiT");
  run_start (&b, s.sock, generate (5, 2), NULL);
  g_usleep (300 * 1000);
  const gint64 t = g_get_monotonic_time ();
  g_cancellable_cancel (a.cancel);
  run_join (&a);
  g_test_message ("cancel answered in %.3f s", (double) (g_get_monotonic_time () - t) / 1e6);
  g_assert_error (a.error, DG_ERROR, DG_ERROR_CANCELLED);
  g_assert_null (a.out);
  g_clear_error (&a.error);
  run_join (&b);
  g_assert_no_error (b.error);
  g_autoptr (DgImage) want = reference (&b.req);
  assert_same_image (b.out, want);
  dg_image_free (b.out);
  svc_stop (&s);
}

static void
test_client_killed (void)
{
  Svc s = { 0 };
  svc_start (&s, 60);
  /* A real client: `deepgen generate` through the service, killed once its DiT runs. */
  g_autoptr (GSubprocessLauncher) l =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_subprocess_launcher_setenv (l, "XDG_RUNTIME_DIR", s.dir, TRUE);
  g_subprocess_launcher_setenv (l, "LANGUAGE", "C", TRUE);
  g_subprocess_launcher_unsetenv (l, "DEEPGEN_NO_SERVICE");
  g_autofree char *out = g_build_filename (s.dir, "killed.png", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) cli = g_subprocess_launcher_spawn (l, &error, DEEPGEN_CLI, "generate", "-m", tiny, "-p", "x",
                                                             "--size", "64x64", "--steps", "400", "-o", out, NULL);
  g_assert_no_error (error);
  g_autoptr (GDataInputStream) err = g_data_input_stream_new (g_subprocess_get_stderr_pipe (cli));
  for (;;) {
    g_autofree char *line = g_data_input_stream_read_line_utf8 (err, NULL, NULL, &error);
    g_assert_no_error (error);
    g_assert_nonnull (line);
    g_assert_null (strstr (line, "in this process")); /* it must be the service's job */
    if (strstr (line, "Denoising"))
      break;
  }
  Run b;
  run_start (&b, s.sock, generate (6, 2), NULL);
  g_usleep (200 * 1000);
  g_subprocess_force_exit (cli);
  g_subprocess_wait (cli, NULL, NULL);
  run_join (&b);
  g_assert_no_error (b.error);
  g_autoptr (DgImage) want = reference (&b.req);
  assert_same_image (b.out, want);
  dg_image_free (b.out);
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
  /* The service is still there for the next one. */
  Run c;
  run_start (&c, s.sock, generate (6, 2), NULL);
  run_join (&c);
  g_assert_no_error (c.error);
  g_assert_true (c.info.model_was_open); /* the model stayed open */
  assert_same_image (c.out, want);
  dg_image_free (c.out);
  svc_stop (&s);
}

static void
test_service_killed (void)
{
  Svc s = { 0 };
  svc_start (&s, 60);
  Run a;
  run_start (&a, s.sock, generate (1, 400), NULL);
  wait_for (&a.denoising, "the job's DiT");
  g_subprocess_force_exit (s.proc); /* SIGKILL */
  g_subprocess_wait (s.proc, NULL, NULL);
  g_clear_object (&s.proc);
  run_join (&a);
  g_assert_error (a.error, DG_ERROR, DG_ERROR_IO);
  g_test_message ("the client says: %s", a.error->message);
  g_assert_nonnull (strstr (a.error->message, "stopped before the job finished"));
  g_assert_null (a.out);
  g_clear_error (&a.error);
  /* Restart after the crash: the stale socket and lock do not stand in the way. */
  g_assert_true (g_file_test (s.sock, G_FILE_TEST_EXISTS));
  svc_start (&s, 60);
  Run b;
  run_start (&b, s.sock, generate (7, 2), NULL);
  run_join (&b);
  g_assert_no_error (b.error);
  g_autoptr (DgImage) want = reference (&b.req);
  assert_same_image (b.out, want);
  dg_image_free (b.out);
  svc_stop (&s);
}

static void
test_idle_exit (void)
{
  Svc s = { 0 };
  svc_start (&s, 1);
  Run a;
  run_start (&a, s.sock, generate (1, 1), NULL);
  run_join (&a);
  g_assert_no_error (a.error);
  dg_image_free (a.out);
  const gint64 t = g_get_monotonic_time ();
  for (int i = 0; i < 1000 && g_subprocess_get_identifier (s.proc); i++) g_usleep (10 * 1000);
  g_assert_null (g_subprocess_get_identifier (s.proc));
  g_test_message ("exited %.2f s after its last client", (double) (g_get_monotonic_time () - t) / 1e6);
  g_subprocess_wait (s.proc, NULL, NULL);
  g_assert_true (g_subprocess_get_if_exited (s.proc));
  g_assert_cmpint (g_subprocess_get_exit_status (s.proc), ==, 0);
  g_assert_false (g_file_test (s.sock, G_FILE_TEST_EXISTS));
  g_clear_object (&s.proc);
  svc_stop (&s);
}

/* A raw connection that sends @len bytes (and @fd when >= 0), then stops writing when @hang_up,
 * and must then be closed by the service. */
static void
expect_closed_after (const char *sock, const void *bytes, gsize len, int fd, gboolean hang_up)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketClient) sc = g_socket_client_new ();
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (sock);
  g_autoptr (GSocketConnection) conn = g_socket_client_connect (sc, G_SOCKET_CONNECTABLE (addr), NULL, &error);
  g_assert_no_error (error);
  GSocket *so = g_socket_connection_get_socket (conn);
  g_autoptr (GSocketControlMessage) fdmsg = NULL;
  if (fd >= 0) {
    fdmsg = g_unix_fd_message_new ();
    g_assert_true (g_unix_fd_message_append_fd (G_UNIX_FD_MESSAGE (fdmsg), fd, NULL));
  }
  GOutputVector v = { bytes, len };
  GSocketControlMessage *msgs[1] = { fdmsg };
  g_assert_cmpint (g_socket_send_message (so, NULL, &v, 1, fdmsg ? msgs : NULL, fdmsg ? 1 : 0, 0, NULL, &error), ==,
                   (gssize) len);
  if (hang_up)
    g_assert_true (g_socket_shutdown (so, FALSE, TRUE, NULL));
  g_socket_set_timeout (so, 10);
  char buf[64];
  gssize n = g_socket_receive (so, buf, sizeof buf, NULL, &error);
  /* Closed: end of stream, or a reset when unread bytes were left behind. */
  if (n < 0)
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  else
    g_assert_cmpint (n, ==, 0);
}

static GBytes *
frame (DgSvcType type, guint n_fds, const void *payload, guint32 len)
{
  guint32 h[4] = { GUINT32_TO_LE (DG_SVC_MAGIC), GUINT32_TO_LE ((guint32) type | n_fds << 16), GUINT32_TO_LE (len), 0 };
  GByteArray *b = g_byte_array_new ();
  g_byte_array_append (b, (const guint8 *) h, sizeof h);
  g_byte_array_append (b, payload, len);
  return g_byte_array_free_to_bytes (b);
}

static void
test_malformed (void)
{
  Svc s = { 0 };
  svc_start (&s, 60);
  g_autoptr (GError) error = NULL;
  /* A well-behaved client, connected before and used after. */
  g_autoptr (DgServiceClient) good = dg_service_client_connect (s.sock, NULL, &error);
  g_assert_no_error (error);

  expect_closed_after (s.sock, "GET / HTTP/1.1\r\n\r\n", 18, -1, FALSE);
  guint8 junk[24] = { 0 };
  g_autoptr (GBytes) not_normal = frame (DG_SVC_SUBMIT, 0, junk, sizeof junk);
  expect_closed_after (s.sock, g_bytes_get_data (not_normal, NULL), g_bytes_get_size (not_normal), -1, FALSE);
  g_autoptr (GBytes) huge = frame (DG_SVC_SUBMIT, 0, NULL, 0);
  guint8 *hb = g_memdup2 (g_bytes_get_data (huge, NULL), 16);
  hb[8] = 0xff, hb[9] = 0xff, hb[10] = 0xff, hb[11] = 0x7f; /* 2 GB payload claimed */
  expect_closed_after (s.sock, hb, 16, -1, FALSE);
  g_free (hb);
  guint32 id = GUINT32_TO_LE (1);
  g_autoptr (GBytes) cancel_fd = frame (DG_SVC_CANCEL, 1, &id, 4); /* a descriptor where none belongs */
  expect_closed_after (s.sock, g_bytes_get_data (cancel_fd, NULL), g_bytes_get_size (cancel_fd), STDIN_FILENO, FALSE);
  g_autoptr (GBytes) service_side = frame (DG_SVC_PROGRESS, 0, (guint8[16]) { 1 }, 16);
  expect_closed_after (s.sock, g_bytes_get_data (service_side, NULL), g_bytes_get_size (service_side), -1, FALSE);
  g_autoptr (GBytes) truncated = frame (DG_SVC_CANCEL, 0, &id, 4);
  expect_closed_after (s.sock, g_bytes_get_data (truncated, NULL), g_bytes_get_size (truncated) - 2, -1, TRUE);
  /* A well-typed SUBMIT whose image is not a sealed memfd (an ordinary file). */
  GVariantBuilder images;
  g_variant_builder_init (&images, G_VARIANT_TYPE ("a(iiii)"));
  g_variant_builder_add (&images, "(iiii)", 4, 4, 3, 12);
  g_autoptr (GVariant) v = g_variant_ref_sink (
      g_variant_new (DG_SVC_SUBMIT_TYPE, 1, tiny, "", 0, 0, (guint32) DG_JOB_EDIT, "x", FALSE, "", 0, 0, 1, 4.0,
                     (guint64) 1, 0, -1, 1.0, &images, FALSE, 0, 0, 0, 0, FALSE, 0, 1));
  g_autoptr (GBytes) payload = g_variant_get_data_as_bytes (v);
  g_autoptr (GBytes) unsealed =
      frame (DG_SVC_SUBMIT, 1, g_bytes_get_data (payload, NULL), (guint32) g_bytes_get_size (payload));
  g_autofree char *plain = g_build_filename (s.dir, "plain", NULL);
  g_assert_true (g_file_set_contents (plain, "0123456789abcdef0123456789abcdef0123456789abcdef", 48, NULL));
  int pfd = g_open (plain, O_RDONLY, 0);
  expect_closed_after (s.sock, g_bytes_get_data (unsealed, NULL), g_bytes_get_size (unsealed), pfd, FALSE);
  close (pfd);

  DgRequest r = generate (9, 2);
  DgServiceModel m = DG_SERVICE_MODEL_INIT;
  m.folder = tiny;
  g_autoptr (DgImage) got = dg_service_client_run (good, &m, &r, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (DgImage) want = reference (&r);
  assert_same_image (got, want);
  g_autofree char *log = NULL;
  g_assert_true (g_file_get_contents (s.log, &log, NULL, NULL));
  g_assert_nonnull (strstr (log, "closing a connection: malformed"));
  svc_stop (&s);
}

/* In a child as @uid: connect to @path; 0 when the outcome is @want_refused (connected and told
 * "another user" then closed) or, when FALSE, connect() failing with EACCES. */
static int
foreign_child (const char *path, uid_t uid, gid_t gid, gboolean want_refused)
{
  if (setgroups (0, NULL) != 0 || setgid (gid) != 0 || setuid (uid) != 0)
    return 10;
  int fd = socket (AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  strncpy (a.sun_path, path, sizeof a.sun_path - 1);
  if (connect (fd, (struct sockaddr *) &a, sizeof a) != 0)
    return !want_refused && errno == EACCES ? 0 : 11;
  if (!want_refused)
    return 12;
  guint8 h[DG_SVC_HEADER_SIZE];
  gsize got = 0;
  while (got < sizeof h) {
    ssize_t n = recv (fd, h + got, sizeof h - got, 0);
    if (n <= 0)
      return 13;
    got += (gsize) n;
  }
  if ((h[4] | h[5] << 8) != DG_SVC_FAILED)
    return 14;
  guint8 rest[4096];
  ssize_t n;
  while ((n = recv (fd, rest, sizeof rest, 0)) > 0);
  return n == 0 ? 0 : 15;
}

static void
test_foreign_uid (void)
{
  if (getuid () != 0) {
    g_test_skip ("needs root to run a client as another user (nobody)");
    return;
  }
  struct passwd *pw = getpwnam ("nobody");
  if (!pw) {
    g_test_skip ("no user 'nobody'");
    return;
  }
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  Svc s = { 0 };
  svc_start (&s, 60);
  g_autofree char *sub = g_path_get_dirname (s.sock);
  for (int phase = 0; phase < 2; phase++) {
    if (phase == 1) {
      /* Permissions opened by hand (a misconfiguration): the uid check must still refuse. */
      g_assert_cmpint (chmod (s.dir, 0755), ==, 0);
      g_assert_cmpint (chmod (sub, 0755), ==, 0);
      g_assert_cmpint (chmod (s.sock, 0666), ==, 0);
    } else {
      /* The socket is the user's alone: 0600 in a 0700 folder. */
      struct stat st;
      g_assert_cmpint (stat (s.sock, &st), ==, 0);
      g_assert_cmpint (st.st_mode & 0777, ==, 0600);
      g_assert_cmpint (stat (sub, &st), ==, 0);
      g_assert_cmpint (st.st_mode & 0777, ==, 0700);
      g_assert_cmpint (chmod (s.dir, 0755), ==, 0); /* only the service's own folder stays closed */
    }
    pid_t pid = fork ();
    if (pid == 0)
      _exit (foreign_child (s.sock, uid, gid, phase == 1));
    int status = 0;
    g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
    g_assert_true (WIFEXITED (status));
    g_assert_cmpint (WEXITSTATUS (status), ==, 0);
  }
  g_autofree char *log = NULL;
  g_assert_true (g_file_get_contents (s.log, &log, NULL, NULL));
  g_assert_nonnull (strstr (log, "refused a connection from another user"));
  /* Still serving its own user. */
  Run a;
  run_start (&a, s.sock, generate (1, 1), NULL);
  run_join (&a);
  g_assert_no_error (a.error);
  dg_image_free (a.out);
  svc_stop (&s);
}

static void
test_large_image (void)
{
  const int side = 8192;
  g_autoptr (DgImage) src = dg_image_new (side, side, 4);
  g_autoptr (DgMask) mask = dg_image_new (side, side, 1);
  g_assert_nonnull (src);
  g_assert_nonnull (mask);
  for (int y = 0; y < side; y++) {
    guint8 *p = src->pixels + (gsize) y * src->rowstride;
    for (int x = 0; x < side; x++, p += 4) p[0] = (guint8) x, p[1] = (guint8) y, p[2] = (guint8) (x ^ y), p[3] = 200;
  }
  for (int y = 4000; y < 4200; y++) memset (mask->pixels + (gsize) y * mask->rowstride + 4000, 255, 200);
  DgRequest r = DG_REQUEST_INIT;
  r.job = DG_JOB_INPAINT;
  r.prompt = "a cat";
  const DgImage *imgs[] = { src };
  r.images = imgs;
  r.n_images = 1;
  r.mask = mask;
  r.steps = 1;
  Svc s = { 0 };
  svc_start (&s, 60);
  Run a;
  run_start (&a, s.sock, r, NULL);
  run_join (&a);
  g_assert_no_error (a.error);
  g_autoptr (DgImage) want = reference (&r);
  assert_same_image (a.out, want);
  dg_image_free (a.out);
  svc_stop (&s);
}

static void
test_regenerate (void)
{
  Svc s = { 0 };
  svc_start (&s, 60);
  const DgRequest reqs[] = { generate (1, 2), generate (2, 2), generate (2, 3), generate (3, 2) };
  for (guint i = 0; i < G_N_ELEMENTS (reqs); i++) {
    DgRequest r = reqs[i];
    if (i == 3)
      r.prompt = "a lighthouse at dusk"; /* another prompt: encoded again */
    Run a;
    run_start (&a, s.sock, r, NULL);
    run_join (&a);
    g_assert_no_error (a.error);
    g_test_message ("job %u: %d encode/bridge progress events", i + 1, a.encoding);
    if (i == 1 || i == 2)
      g_assert_cmpint (a.encoding, ==, 0); /* seed or steps changed only: straight to the DiT */
    else
      g_assert_cmpint (a.encoding, >, 0);
    g_autoptr (DgImage) want = reference (&r);
    assert_same_image (a.out, want);
    dg_image_free (a.out);
  }
  svc_stop (&s);
}

typedef struct {
  int count, last_step, width, height;
} Previews;

static void
count_preview (const DgImage *rgb, int step, int n_steps, gpointer data)
{
  Previews *p = data;
  g_assert_cmpint (step, ==, p->last_step + 1);
  g_assert_cmpint (step, <=, n_steps);
  g_assert_cmpint (rgb->channels, ==, 3);
  p->count++;
  p->last_step = step;
  p->width = rgb->width;
  p->height = rgb->height;
}

static void
test_previews (void)
{
  Svc s = { 0 };
  svc_start (&s, 60);
  g_autoptr (GError) error = NULL;
  g_autoptr (DgServiceClient) c = dg_service_client_connect (s.sock, NULL, &error);
  g_assert_no_error (error);
  Previews p = { 0 };
  dg_service_client_set_preview (c, count_preview, &p);
  DgRequest r = generate (4, 3);
  r.width = 96; /* latents 12 × 8 */
  DgServiceModel m = DG_SERVICE_MODEL_INIT;
  m.folder = tiny;
  g_autoptr (DgImage) got = dg_service_client_run (c, &m, &r, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (p.count, ==, 3);
  g_assert_cmpint (p.width, ==, 12);
  g_assert_cmpint (p.height, ==, 8);
  g_autoptr (DgImage) want = reference (&r);
  assert_same_image (got, want); /* previews do not touch the result */

  /* `deepgen generate --preview FILE` through the service. */
  g_autoptr (GSubprocessLauncher) l = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_subprocess_launcher_setenv (l, "XDG_RUNTIME_DIR", s.dir, TRUE);
  g_subprocess_launcher_unsetenv (l, "DEEPGEN_NO_SERVICE");
  g_autofree char *out = g_build_filename (s.dir, "out.png", NULL);
  g_autofree char *preview = g_build_filename (s.dir, "preview.png", NULL);
  g_autoptr (GSubprocess) cli =
      g_subprocess_launcher_spawn (l, &error, DEEPGEN_CLI, "generate", "-m", tiny, "-p", "x", "--size", "64x48",
                                   "--steps", "2", "-q", "--preview", preview, "-o", out, NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_wait_check (cli, NULL, &error));
  g_assert_no_error (error);
  g_autofree char *png = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (preview, &png, &len, NULL));
  /* PNG signature, then IHDR's width and height (big-endian) at bytes 16 and 20: 8 × 6. */
  g_assert_cmpuint (len, >, 24);
  g_assert_cmpmem (png, 8, "\x89PNG\r\n\x1a\n", 8);
  g_assert_cmpuint (GUINT32_FROM_BE (*(guint32 *) (png + 16)), ==, 8);
  g_assert_cmpuint (GUINT32_FROM_BE (*(guint32 *) (png + 20)), ==, 6);
  svc_stop (&s);
}

/* CLI `deepgen ARGS…` with the service in @s (not DEEPGEN_NO_SERVICE); its stdout in @out. */
static void
cli_through (Svc *s, char **out, const char *const *args)
{
  g_autoptr (GSubprocessLauncher) l =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (l, "XDG_RUNTIME_DIR", s->dir, TRUE);
  g_subprocess_launcher_setenv (l, "LANGUAGE", "C", TRUE);
  g_subprocess_launcher_unsetenv (l, "DEEPGEN_NO_SERVICE");
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) DEEPGEN_CLI);
  for (guint i = 0; args[i]; i++) g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) p = g_subprocess_launcher_spawnv (l, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_autofree char *err = NULL;
  g_assert_true (g_subprocess_communicate_utf8 (p, NULL, NULL, out, &err, &error));
  g_assert_no_error (error);
  g_test_message ("deepgen %s:\n%s%s", args[0], *out, err);
  g_assert_null (strstr (err, "vkc: validation"));
  g_assert_null (strstr (err, "in this process")); /* a job meant for the service ran there */
  g_assert_true (g_subprocess_get_if_exited (p));
  g_assert_cmpint (g_subprocess_get_exit_status (p), ==, 0);
}

static void
cancel_at_denoise (DgStage stage, int step, int n_steps, gpointer data)
{
  (void) step;
  (void) n_steps;
  if (stage == DG_STAGE_DENOISE)
    g_cancellable_cancel (data);
}

static void
test_variations (void)
{
  Svc s = { 0 };
  svc_start (&s, 60);
  g_autoptr (GError) error = NULL;
  g_autoptr (DgServiceClient) c = dg_service_client_connect (s.sock, NULL, &error);
  g_assert_no_error (error);
  DgServiceModel m = DG_SERVICE_MODEL_INIT;
  m.folder = tiny;
  /* the client API: the seeds 7, 8, 9 in one job, as dg_run_batch here */
  DgRequest r = generate (7, 2);
  g_autoptr (GPtrArray) got = dg_service_client_run_batch (c, &m, &r, 3, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (got->len, ==, 3);
  DgRequest reqs[3];
  const DgRequest *ptrs[3];
  for (guint i = 0; i < 3; i++) {
    reqs[i] = generate (7 + i, 2);
    ptrs[i] = &reqs[i];
  }
  dg_image_free (reference (&r)); /* opens the reference model */
  g_autoptr (GPtrArray) want = dg_run_batch (ref_model, ptrs, 3, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 3; i++) assert_same_image (g_ptr_array_index (got, i), g_ptr_array_index (want, i));

  /* the CLI's --n-results through the service: each file the one a single in-process run with its
   * seed writes, byte for byte (pixels and stored parameters) */
  g_autofree char *var = g_build_filename (s.dir, "var.png", NULL);
  g_autofree char *out = NULL;
  cli_through (&s, &out,
               (const char *const[]) { "generate", "-m", tiny, "-p", "a fox", "--size", "64x48", "--steps", "2",
                                       "--seed", "5", "-q", "--n-results", "2", "-o", var, NULL });
  g_free (g_steal_pointer (&out));
  for (guint i = 0; i < 2; i++) {
    g_autofree char *seed = g_strdup_printf ("%u", 5 + i);
    g_autofree char *variation = g_strdup_printf ("%s/var-%u.png", s.dir, i + 1);
    g_autofree char *single = g_strdup_printf ("%s/single-%u.png", s.dir, i + 1);
    cli_through (&s, &out,
                 (const char *const[]) { "generate", "-m", tiny, "-p", "a fox", "--size", "64x48", "--steps", "2",
                                         "--seed", seed, "-q", "--no-service", "-o", single, NULL });
    g_free (g_steal_pointer (&out));
    g_autofree char *a = NULL, *b = NULL;
    gsize la = 0, lb = 0;
    g_assert_true (g_file_get_contents (variation, &a, &la, NULL));
    g_assert_true (g_file_get_contents (single, &b, &lb, NULL));
    g_assert_cmpmem (a, la, b, lb);
  }

  /* cancelled mid-batch: nothing comes back; the next job is served */
  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  DgRequest longer = generate (3, 400);
  g_autoptr (GPtrArray) none = dg_service_client_run_batch (c, &m, &longer, DG_SERVICE_MAX_RESULTS, cancel_at_denoise,
                                                            cancel, NULL, cancel, &error);
  g_assert_null (none);
  g_assert_error (error, DG_ERROR, DG_ERROR_CANCELLED);
  g_clear_error (&error);
  g_autoptr (GPtrArray) after = dg_service_client_run_batch (c, &m, &r, 3, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 3; i++) assert_same_image (g_ptr_array_index (after, i), g_ptr_array_index (want, i));
  /* out of range: refused before anything is sent */
  g_assert_null (dg_service_client_run_batch (c, &m, &r, DG_SERVICE_MAX_RESULTS + 1, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  svc_stop (&s);
}

/* The model identity switches the open model: a folder job, then the synthetic model of one and of
 * two layers (at a size whose plan the 2 GiB lavapipe refuses before anything is generated or
 * uploaded, so these jobs cost nothing), then the folder again, which must be opened anew and give
 * the in-process image. */
static void
test_model_switch (void)
{
  Svc s = { 0 };
  svc_start (&s, 60);
  g_autoptr (GError) error = NULL;
  g_autoptr (DgServiceClient) c = dg_service_client_connect (s.sock, NULL, &error);
  g_assert_no_error (error);
  DgServiceModel folder = DG_SERVICE_MODEL_INIT;
  folder.folder = tiny;
  DgRequest r = generate (4, 2);
  g_autoptr (DgImage) want = reference (&r);
  DgServiceRunInfo info = { 0 };
  g_autoptr (DgImage) a = dg_service_client_run (c, &folder, &r, NULL, NULL, &info, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (info.model_was_open);
  assert_same_image (a, want);
  g_autofree char *one_layer = NULL;
  for (guint layers = 1; layers <= 2; layers++) {
    DgServiceModel synthetic = DG_SERVICE_MODEL_INIT;
    synthetic.synthetic = TRUE;
    synthetic.layers = layers;
    DgRequest huge = generate (1, 1);
    huge.width = huge.height = 4096;
    g_assert_null (dg_service_client_run (c, &synthetic, &huge, NULL, NULL, NULL, NULL, &error));
    g_test_message ("synthetic, %u layers: %s", layers, error->message);
    g_assert_error (error, DG_ERROR, DG_ERROR_OOM); /* the synthetic model's plan, refused */
    g_assert_nonnull (strstr (error->message, "4096×4096"));
    /* the second layer's weights make the need larger: the layer count reached the service */
    if (layers == 1)
      one_layer = g_strdup (error->message);
    else
      g_assert_cmpstr (error->message, !=, one_layer);
    g_clear_error (&error);
  }
  g_autoptr (DgImage) b = dg_service_client_run (c, &folder, &r, NULL, NULL, &info, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (info.model_was_open); /* the synthetic model had replaced it */
  g_assert_cmpuint (info.uploaded_bytes, >, 0);
  assert_same_image (b, want);
  g_autoptr (DgImage) c2 = dg_service_client_run (c, &folder, &r, NULL, NULL, &info, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (info.model_was_open);
  g_assert_cmpuint (info.uploaded_bytes, ==, 0);
  assert_same_image (c2, want);
  dg_service_run_info_clear (&info);
  svc_stop (&s);
}

/* One row of `deepgen bench --service`'s table (generate: no VAE encode column). */
typedef struct {
  char model[16], uploaded[32];
  double first_step, load, vlm, connector, dit, decode, total, preview;
} BenchRow;

static void
bench_row (const char *out, const char *label, BenchRow *row)
{
  const char *line = strstr (out, label);
  g_assert_nonnull (line);
  g_assert_cmpint (sscanf (line + strlen (label), "%15s %lf %31s %lf %lf %lf %lf %lf %lf %lf", row->model,
                           &row->first_step, row->uploaded, &row->load, &row->vlm, &row->connector, &row->dit,
                           &row->decode, &row->total, &row->preview),
                   ==, 10);
}

static void
test_bench (void)
{
  Svc s = { 0 };
  svc_start (&s, 60);
  g_autofree char *out = NULL;
  cli_through (&s, &out,
               (const char *const[]) { "bench", "-m", tiny, "--service", "--size", "64x64", "--steps", "2", NULL });
  g_assert_nonnull (strstr (out, "Through the service on"));
  BenchRow first, again, fresh;
  bench_row (out, "\nfirst job", &first);
  bench_row (out, "\nRegenerate (new seed)", &again);
  bench_row (out, "\nnew prompt", &fresh);
  /* the first job opens the model and uploads its weights; the tiny model fits the device, so the
   * others upload nothing */
  g_assert_cmpstr (first.model, ==, "opened");
  g_assert_cmpstr (first.uploaded, !=, "0");
  g_assert_cmpstr (again.model, ==, "open");
  g_assert_cmpstr (again.uploaded, ==, "0");
  g_assert_cmpstr (fresh.model, ==, "open");
  g_assert_cmpstr (fresh.uploaded, ==, "0");
  /* Regenerate goes straight to the DiT; a new prompt runs the VLM and the connector again */
  g_assert_cmpfloat (first.vlm, >, 0);
  g_assert_cmpfloat (first.connector, >, 0);
  g_assert_cmpfloat (again.vlm, ==, 0);
  g_assert_cmpfloat (again.connector, ==, 0);
  g_assert_cmpfloat (fresh.vlm, >, 0);
  g_assert_cmpfloat (fresh.connector, >, 0);
  g_assert_cmpfloat (again.dit, >, 0);
  g_assert_cmpfloat (again.preview, >, 0); /* previews asked for, as the panels do */
  g_assert_nonnull (strstr (out, "Previews:"));
  svc_stop (&s);
}

/* Figures for docs/PERF.md: from the client's call to the first DiT step, with the model not yet
 * open (cold) and open (warm). Not a pass/fail test. */
typedef struct {
  gint64 t0;
  double first_step;
} FirstStep;

static void
on_first_step (DgStage stage, int step, int n_steps, gpointer data)
{
  (void) step;
  (void) n_steps;
  FirstStep *f = data;
  if (stage == DG_STAGE_DENOISE && f->first_step < 0)
    f->first_step = (double) (g_get_monotonic_time () - f->t0) / 1e6;
}

static void
test_warm_latency (void)
{
  /* What a plug-in call pays today: a new process opens the device and the model, then runs. */
  {
    FirstStep f = { g_get_monotonic_time (), -1 };
    g_autoptr (GError) error = NULL;
    g_autoptr (DgEngine) e = dg_engine_new (NULL, &error);
    g_assert_no_error (error);
    g_autoptr (DgModel) m = dg_model_open (e, tiny, NULL, &error);
    g_assert_no_error (error);
    DgRequest r = generate (1, 2);
    g_autoptr (DgImage) img = dg_run (m, &r, on_first_step, &f, NULL, &error);
    g_assert_no_error (error);
    g_printerr ("# in-process (new engine and model): call to first DiT step %.3f s\n", f.first_step);
    /* The preview's cost per step, as the service pays it (projection, then a sealed memfd). */
    Previews p = { 0 };
    dg_model_set_preview (m, count_preview, &p);
    DgRequest big = generate (1, 3);
    big.width = big.height = 256;
    g_autoptr (DgImage) img2 = dg_run (m, &big, NULL, NULL, NULL, &error);
    g_assert_no_error (error);
    double preview_s, step_s;
    dg_model_last_run_preview_cost (m, &preview_s, &step_s);
    const gint64 t = g_get_monotonic_time ();
    g_autoptr (DgImage) rgb = dg_image_new (32, 32, 3);
    int fd = dg_svc_memfd_from_image (rgb, "x", NULL);
    close (fd);
    const double memfd_s = (double) (g_get_monotonic_time () - t) / 1e6;
    g_printerr ("# previews at 256x256 (32x32 latents): %.3f ms a step for the projection + %.3f ms for the memfd; "
                "a DiT step %.1f ms (%.3f %%)\n",
                1e3 * preview_s / 3, 1e3 * memfd_s, 1e3 * step_s / 3, 100.0 * (preview_s / 3 + memfd_s) / (step_s / 3));
  }
  Svc s = { 0 };
  svc_start (&s, 60);
  /* Jobs 2 and 3 repeat job 1 (Regenerate: the conditioning is reused), 4 and 5 bring new prompts
   * (the VLM and connector run, on resident weights). */
  static const char *const prompts[] = { "a red fox", "a red fox", "a red fox", "a blue bird", "a green tree" };
  for (int i = 0; i < 5; i++) {
    Run a;
    DgRequest r = generate (1, 2);
    r.prompt = prompts[i];
    run_start (&a, s.sock, r, NULL);
    run_join (&a);
    g_assert_no_error (a.error);
    g_printerr ("# service job %d (%s, %s): client call to first DiT step %.3f s, %" G_GUINT64_FORMAT
                " weight bytes uploaded\n",
                i + 1, a.info.model_was_open ? "warm" : "cold", a.encoding ? "encoded" : "conditioning reused",
                a.info.first_step_seconds, a.info.uploaded_bytes);
    /* The tiny model fits the device many times over: after the first job nothing is uploaded. */
    if (i == 0)
      g_assert_cmpuint (a.info.uploaded_bytes, >, 0);
    else
      g_assert_cmpuint (a.info.uploaded_bytes, ==, 0);
    dg_image_free (a.out);
  }
  svc_stop (&s);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  signal (SIGPIPE, SIG_IGN);
  tiny = g_build_filename (DEEPGEN_TEST_DATA_DIR, "tiny-deepgen", NULL);
  g_test_add_func ("/service/queue", test_queue);
  g_test_add_func ("/service/cancel", test_cancel);
  g_test_add_func ("/service/client-killed", test_client_killed);
  g_test_add_func ("/service/service-killed", test_service_killed);
  g_test_add_func ("/service/idle-exit", test_idle_exit);
  g_test_add_func ("/service/malformed", test_malformed);
  g_test_add_func ("/service/foreign-uid", test_foreign_uid);
  g_test_add_func ("/service/large-image", test_large_image);
  g_test_add_func ("/service/regenerate", test_regenerate);
  g_test_add_func ("/service/previews", test_previews);
  g_test_add_func ("/service/variations", test_variations);
  g_test_add_func ("/service/model-switch", test_model_switch);
  g_test_add_func ("/service/bench", test_bench);
  g_test_add_func ("/service/warm-latency", test_warm_latency);
  int rc = g_test_run ();
  g_clear_pointer (&ref_model, dg_model_free);
  g_clear_pointer (&ref_engine, dg_engine_free);
  return rc;
}
