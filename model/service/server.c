/* `deepgen serve` (dg_service.h, DESIGN.md §9): a GThreadedSocketService gives each client
 * connection a thread that reads its frames; one worker thread owns the engine and the open
 * model and runs the queued jobs in order. A malformed frame, a foreign uid or a vanished client
 * ends that connection only (its jobs are cancelled); the main loop only watches for idleness. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>
#include <glib-unix.h>

#include "dg_i18n.h"
#include "dg_service.h"
#include "protocol.h"
#include "resident.h"

typedef struct {
  gint ref;
  GSocketConnection *connection;
  GSocket *socket;
  GMutex send_lock;
} Conn;

typedef struct {
  Conn *conn;
  DgSvcMessage msg;
  DgImage *images[DG_SVC_MAX_IMAGES];
  DgImage *mask;
  GCancellable *cancel;
} Job;

typedef struct {
  GMutex lock;
  GCond cond;
  GQueue queue; /* Job*, FIFO */
  Job *running;
  guint n_conns;
  gint64 idle_since;
  gboolean quitting;
  guint idle_exit;
  GMainLoop *loop;
  /* the worker's: the engine and the open model, kept between jobs */
  DgEngine *engine;
  char *engine_device;
  DgModel *model;
  char *model_key;
} Server;

static Conn *
conn_ref (Conn *c)
{
  g_atomic_int_inc (&c->ref);
  return c;
}

static void
conn_unref (Conn *c)
{
  if (!g_atomic_int_dec_and_test (&c->ref))
    return;
  g_mutex_clear (&c->send_lock);
  g_object_unref (c->connection);
  g_free (c);
}

/* Sends to a client; a client that is gone or stuck only loses its own messages. */
static void
conn_send (Conn *c, DgSvcType type, GVariant *payload, const int *fds, guint n_fds)
{
  g_autoptr (GError) error = NULL;
  g_mutex_lock (&c->send_lock);
  if (!dg_svc_send (c->socket, type, payload, fds, n_fds, &error))
    g_debug ("service: a send to a client failed: %s", error->message);
  g_mutex_unlock (&c->send_lock);
}

static void
send_failed (Conn *c, guint32 job_id, const GError *e)
{
  guint32 code = e->domain == DG_ERROR ? (guint32) e->code : DG_ERROR_FAILED;
  if (g_error_matches (e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    code = DG_ERROR_CANCELLED;
  conn_send (c, DG_SVC_FAILED, g_variant_new (DG_SVC_FAILED_TYPE, job_id, code, e->message), NULL, 0);
}

static void
job_free (Job *j)
{
  for (guint i = 0; i < DG_SVC_MAX_IMAGES; i++) dg_svc_image_unmap (j->images[i]);
  dg_svc_image_unmap (j->mask);
  dg_svc_message_clear (&j->msg);
  g_clear_object (&j->cancel);
  conn_unref (j->conn);
  g_free (j);
}

/* ---- the worker ---- */

static void
on_progress (DgStage stage, int step, int n_steps, gpointer data)
{
  Job *j = data;
  conn_send (j->conn, DG_SVC_PROGRESS,
             g_variant_new (DG_SVC_PROGRESS_TYPE, j->msg.job_id, (guint32) stage, step, n_steps), NULL, 0);
}

/* The open model for @m's folder (or synthetic model and layers), device, precision and weights:
 * the one already open when they are the same (*was_open), else a fresh one (the old is closed
 * first, so two never share the device's memory). */
static DgModel *
server_model (Server *s, const DgSvcMessage *m, gboolean *was_open, GError **error)
{
  /* a folder's key is its path, the synthetic model's its layers (no path can start with a newline) */
  g_autofree char *model_id = m->synthetic ? g_strdup_printf ("\nsynthetic %u", m->layers) : g_strdup (m->folder);
  g_autofree char *key =
      g_strdup_printf ("%s\n%s\n%u\n%u", model_id, m->device ? m->device : "", m->precision, m->weights);
  *was_open = s->model && g_strcmp0 (key, s->model_key) == 0;
  if (*was_open)
    return s->model;
  g_clear_pointer (&s->model, dg_model_free);
  g_clear_pointer (&s->model_key, g_free);
  if (s->engine && g_strcmp0 (s->engine_device, m->device) != 0) {
    g_clear_pointer (&s->engine, dg_engine_free);
    g_clear_pointer (&s->engine_device, g_free);
  }
  if (!s->engine) {
    DgEngineOptions eo = { m->device };
    if (!(s->engine = dg_engine_new (&eo, error)))
      return NULL;
    s->engine_device = g_strdup (m->device);
  }
  DgLoadOptions lo = { m->precision, m->weights };
  if (!(s->model = m->synthetic ? dg_model_open_synthetic (s->engine, m->layers, 0, &lo, error)
                                : dg_model_open (s->engine, m->folder, &lo, error)))
    return NULL;
  dg_model_set_resident (s->model, TRUE); /* the point of the service: weights stay when they fit */
  s->model_key = g_steal_pointer (&key);
  return s->model;
}

/* A preview to the job's client, in a sealed memfd like the result. */
static void
on_preview (const DgImage *rgb, int step, int n_steps, gpointer data)
{
  Job *j = data;
  int fd = dg_svc_memfd_from_image (rgb, "deepgen-preview", NULL);
  if (fd < 0)
    return;
  conn_send (
      j->conn, DG_SVC_PREVIEW,
      g_variant_new (DG_SVC_PREVIEW_TYPE, j->msg.job_id, step, n_steps, rgb->width, rgb->height, 3, rgb->width * 3),
      &fd, 1);
  close (fd);
}

static void
run_job (Server *s, Job *j)
{
  g_autoptr (GError) error = NULL;
  gboolean was_open = FALSE;
  DgModel *model =
      g_cancellable_set_error_if_cancelled (j->cancel, &error) ? NULL : server_model (s, &j->msg, &was_open, &error);
  g_autoptr (GPtrArray) results = NULL;
  if (model) {
    /* variations as in-process (ui/dg_task.c, the CLI): one batch, the seeds seed, seed + 1, … */
    const guint n = j->msg.n_results;
    DgRequest reqs[DG_SERVICE_MAX_RESULTS];
    const DgRequest *ptrs[DG_SERVICE_MAX_RESULTS];
    for (guint i = 0; i < n; i++) {
      reqs[i] = j->msg.request;
      reqs[i].images = (const DgImage *const *) j->images;
      reqs[i].n_images = j->msg.n_images;
      reqs[i].mask = j->mask;
      reqs[i].seed = j->msg.request.seed + i;
      ptrs[i] = &reqs[i];
    }
    dg_model_set_preview (model, j->msg.previews ? on_preview : NULL, j);
    results = dg_run_batch (model, ptrs, n, on_progress, j, j->cancel, &error);
    dg_model_set_preview (model, NULL, NULL);
  }
  if (results && g_cancellable_is_cancelled (j->cancel)) {
    g_clear_pointer (&results, g_ptr_array_unref);
    g_set_error_literal (&error, DG_ERROR, DG_ERROR_CANCELLED, _ ("Cancelled."));
  }
  int fds[DG_SERVICE_MAX_RESULTS];
  guint n_fds = 0;
  GVariantBuilder descs;
  g_variant_builder_init (&descs, G_VARIANT_TYPE ("a(iiii)"));
  for (guint i = 0; results && i < results->len; i++) {
    const DgImage *img = g_ptr_array_index (results, i);
    if ((fds[n_fds] = dg_svc_memfd_from_image (img, "deepgen-result", &error)) < 0)
      g_clear_pointer (&results, g_ptr_array_unref);
    else {
      n_fds++;
      g_variant_builder_add (&descs, "(iiii)", img->width, img->height, img->channels, img->width * img->channels);
    }
  }
  if (!results) {
    g_variant_builder_clear (&descs);
    for (guint i = 0; i < n_fds; i++) close (fds[i]);
    send_failed (j->conn, j->msg.job_id, error);
    return;
  }
  double preview_s = 0, step_s = 0;
  dg_model_last_run_preview_cost (model, &preview_s, &step_s);
  conn_send (j->conn, DG_SVC_DONE,
             g_variant_new (DG_SVC_DONE_TYPE, j->msg.job_id, &descs, dg_engine_device_name (s->engine),
                            (guint32) dg_model_last_run_weights (model), was_open,
                            (guint64) dg_model_last_run_uploaded (model), preview_s, step_s),
             fds, n_fds);
  for (guint i = 0; i < n_fds; i++) close (fds[i]);
}

static gpointer
worker (gpointer data)
{
  Server *s = data;
  g_mutex_lock (&s->lock);
  for (;;) {
    while (!s->quitting && g_queue_is_empty (&s->queue)) g_cond_wait (&s->cond, &s->lock);
    if (s->quitting)
      break;
    Job *j = s->running = g_queue_pop_head (&s->queue);
    g_mutex_unlock (&s->lock);
    run_job (s, j);
    g_mutex_lock (&s->lock);
    s->running = NULL;
    s->idle_since = g_get_monotonic_time ();
    g_mutex_unlock (&s->lock);
    job_free (j);
    g_mutex_lock (&s->lock);
  }
  g_mutex_unlock (&s->lock);
  g_clear_pointer (&s->model, dg_model_free);
  g_clear_pointer (&s->engine, dg_engine_free);
  return NULL;
}

/* ---- connections ---- */

/* A job from a SUBMIT frame: its images mapped from their memfds. */
static Job *
job_new (Conn *c, DgSvcMessage *msg, GError **error)
{
  Job *j = g_new0 (Job, 1);
  j->conn = conn_ref (c);
  j->msg = *msg;
  memset (msg, 0, sizeof *msg);
  j->cancel = g_cancellable_new ();
  for (guint i = 0; i < j->msg.n_images; i++)
    if (!(j->images[i] = dg_svc_image_map (j->msg.fds[i], &j->msg.images[i], FALSE, error))) {
      job_free (j);
      return NULL;
    }
  if (j->msg.has_mask && !(j->mask = dg_svc_image_map (j->msg.fds[j->msg.n_images], &j->msg.mask, TRUE, error))) {
    job_free (j);
    return NULL;
  }
  return j;
}

static gboolean
job_active (Server *s, Conn *c, guint32 id, gboolean cancel)
{
  gboolean found = FALSE;
  if (s->running && s->running->conn == c && s->running->msg.job_id == id) {
    found = TRUE;
    if (cancel)
      g_cancellable_cancel (s->running->cancel);
  }
  for (GList *l = s->queue.head; l; l = l->next) {
    Job *j = l->data;
    if (j->conn == c && j->msg.job_id == id) {
      found = TRUE;
      if (cancel)
        g_cancellable_cancel (j->cancel);
    }
  }
  return found;
}

/* The peer's uid from the kernel (SO_PEERCRED): only the user who runs the service may use it. */
static gboolean
peer_is_us (GSocket *socket)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GCredentials) cred = g_socket_get_credentials (socket, &error);
  if (!cred)
    return FALSE;
  uid_t uid = g_credentials_get_unix_user (cred, &error);
  return uid != (uid_t) -1 && uid == getuid ();
}

static gboolean
on_run (GThreadedSocketService *service, GSocketConnection *connection, GObject *source, gpointer data)
{
  (void) service;
  (void) source;
  Server *s = data;
  Conn *c = g_new0 (Conn, 1);
  c->ref = 1;
  c->connection = g_object_ref (connection);
  c->socket = g_socket_connection_get_socket (connection);
  g_mutex_init (&c->send_lock);
  g_socket_set_blocking (c->socket, FALSE);

  if (!peer_is_us (c->socket)) {
    g_autoptr (GError) e = g_error_new_literal (DG_ERROR, DG_ERROR_IO,
                                                _ ("This DeepGen service belongs to another user; the connection was "
                                                   "refused."));
    g_message ("service: refused a connection from another user");
    send_failed (c, 0, e);
    g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
    conn_unref (c);
    return TRUE;
  }
  g_mutex_lock (&s->lock);
  s->n_conns++;
  g_mutex_unlock (&s->lock);

  for (;;) {
    DgSvcMessage msg;
    g_autoptr (GError) error = NULL;
    if (!dg_svc_receive (c->socket, &msg, NULL, &error)) {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED))
        g_message ("service: closing a connection: %s", error->message);
      break;
    }
    if (msg.type == DG_SVC_CANCEL) {
      g_mutex_lock (&s->lock);
      job_active (s, c, msg.job_id, TRUE);
      g_mutex_unlock (&s->lock);
      dg_svc_message_clear (&msg);
      continue;
    }
    if (msg.type != DG_SVC_SUBMIT) {
      g_message ("service: closing a connection: a client sent a service-side message");
      dg_svc_message_clear (&msg);
      break;
    }
    const guint32 id = msg.job_id;
    Job *j = job_new (c, &msg, &error);
    if (!j) {
      g_message ("service: closing a connection: %s", error->message);
      break;
    }
    g_mutex_lock (&s->lock);
    if (id == 0 || job_active (s, c, id, FALSE)) {
      g_mutex_unlock (&s->lock);
      g_message ("service: closing a connection: a job id that is 0 or already in use");
      job_free (j);
      break;
    }
    guint32 ahead = g_queue_get_length (&s->queue) + (s->running ? 1 : 0);
    g_queue_push_tail (&s->queue, j);
    g_cond_signal (&s->cond);
    g_mutex_unlock (&s->lock);
    conn_send (c, DG_SVC_ACCEPTED, g_variant_new (DG_SVC_ACCEPTED_TYPE, id, ahead), NULL, 0);
  }

  /* The client is gone (or misbehaved): its queued jobs leave the queue, its running job stops at
   * its next GPU submission. */
  g_mutex_lock (&s->lock);
  GList *mine = NULL;
  for (GList *l = s->queue.head, *next; l; l = next) {
    next = l->next;
    Job *j = l->data;
    if (j->conn == c) {
      g_queue_unlink (&s->queue, l);
      mine = g_list_concat (mine, l);
    }
  }
  if (s->running && s->running->conn == c)
    g_cancellable_cancel (s->running->cancel);
  s->n_conns--;
  s->idle_since = g_get_monotonic_time ();
  g_mutex_unlock (&s->lock);
  g_list_free_full (mine, (GDestroyNotify) job_free);
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  conn_unref (c);
  return TRUE;
}

/* ---- the socket's folder (its name: protocol.c) ---- */

static gboolean
on_idle_check (gpointer data)
{
  Server *s = data;
  g_mutex_lock (&s->lock);
  gboolean idle = s->n_conns == 0 && !s->running && g_queue_is_empty (&s->queue) &&
                  g_get_monotonic_time () - s->idle_since >= (gint64) s->idle_exit * G_USEC_PER_SEC;
  g_mutex_unlock (&s->lock);
  if (idle)
    g_main_loop_quit (s->loop);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_terminate (gpointer data)
{
  Server *s = data;
  g_main_loop_quit (s->loop);
  return G_SOURCE_CONTINUE;
}

gboolean
dg_service_serve (const DgServeOptions *options, GError **error)
{
  DgServeOptions o = DG_SERVE_OPTIONS_INIT;
  if (options)
    o = *options;
  g_autofree char *path = o.socket_path ? g_strdup (o.socket_path) : dg_service_socket_path ();
  g_autofree char *dir = g_path_get_dirname (path);
  /* The folder is the user's alone: made 0700, and an existing one must be ours and 0700. */
  struct stat st;
  if (g_mkdir_with_parents (dir, 0700) != 0 || stat (dir, &st) != 0) {
    g_set_error (error, DG_ERROR, DG_ERROR_IO, _ ("Cannot create the service folder %s: %s"), dir, g_strerror (errno));
    return FALSE;
  }
  if (st.st_uid != getuid () || (st.st_mode & 0077) != 0) {
    g_set_error (error, DG_ERROR, DG_ERROR_IO,
                 _ ("The service folder %s must belong to you with mode 0700 (chmod 700 it, or remove it)"), dir);
    return FALSE;
  }
  /* One service per socket: the lock is held for the life of the process and dies with it, so a
   * crashed service leaves nothing that blocks the next. */
  g_autofree char *lock_path = g_strconcat (path, ".lock", NULL);
  int lock_fd = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || flock (lock_fd, LOCK_EX | LOCK_NB) != 0) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE, _ ("Another DeepGen service is already running on %s"),
                 path);
    if (lock_fd >= 0)
      close (lock_fd);
    return FALSE;
  }
  unlink (path); /* a socket left by a service that crashed */

  signal (SIGPIPE, SIG_IGN);
  /* Never freed: connection threads still blocked on their clients at exit may read it. */
  Server *s = g_new0 (Server, 1);
  g_mutex_init (&s->lock);
  g_cond_init (&s->cond);
  g_queue_init (&s->queue);
  s->idle_exit = o.idle_exit;
  s->idle_since = g_get_monotonic_time ();
  g_autoptr (GMainContext) ctx = g_main_context_new ();
  g_main_context_push_thread_default (ctx);
  s->loop = g_main_loop_new (ctx, FALSE);

  GSocketService *service = g_threaded_socket_service_new (-1);
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (path);
  /* The socket is created 0600 (umask) so that no other user can even connect. */
  mode_t old_mask = umask (0177);
  gboolean ok = g_socket_listener_add_address (G_SOCKET_LISTENER (service), addr, G_SOCKET_TYPE_STREAM,
                                               G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL, error);
  umask (old_mask);
  if (!ok) {
    g_object_unref (service);
    g_main_loop_unref (s->loop);
    g_main_context_pop_thread_default (ctx);
    close (lock_fd);
    return FALSE;
  }
  chmod (path, 0600);
  g_signal_connect (service, "run", G_CALLBACK (on_run), s);
  GThread *w = g_thread_new ("deepgen-service-worker", worker, s);
  g_socket_service_start (service);

  GSource *sources[3] = { NULL, g_unix_signal_source_new (SIGTERM), g_unix_signal_source_new (SIGINT) };
  if (o.idle_exit) {
    sources[0] = g_timeout_source_new (MIN (1000u, o.idle_exit * 1000u / 4 + 1));
    g_source_set_callback (sources[0], on_idle_check, s, NULL);
  }
  g_source_set_callback (sources[1], on_terminate, s, NULL);
  g_source_set_callback (sources[2], on_terminate, s, NULL);
  for (guint i = 0; i < 3; i++)
    if (sources[i])
      g_source_attach (sources[i], ctx);
  if (o.ready)
    o.ready (o.user_data);
  g_main_loop_run (s->loop);

  /* Stop taking clients first, then the worker (a running job is cancelled). */
  unlink (path);
  g_socket_service_stop (service);
  g_socket_listener_close (G_SOCKET_LISTENER (service));
  g_mutex_lock (&s->lock);
  s->quitting = TRUE;
  if (s->running)
    g_cancellable_cancel (s->running->cancel);
  g_cond_signal (&s->cond);
  g_mutex_unlock (&s->lock);
  g_thread_join (w);
  for (guint i = 0; i < 3; i++)
    if (sources[i]) {
      g_source_destroy (sources[i]);
      g_source_unref (sources[i]);
    }
  /* Connection threads may still be blocked on their clients; the process is about to end, so
   * they are left to it rather than joined. */
  g_main_loop_unref (s->loop);
  g_main_context_pop_thread_default (ctx);
  close (lock_fd);
  return TRUE;
}
