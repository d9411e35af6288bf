/* The client side of the service (dg_service.h, DESIGN.md §9): connect (starting the service when
 * asked), submit a job with its images in sealed memfds, relay progress, map the result. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>

#include "dg_i18n.h"
#include "dg_service.h"
#include "protocol.h"

struct _DgServiceClient {
  GSocketConnection *connection;
  GSocket *socket;
  guint32 next_job;
  GMutex lock; /* one run at a time */
  DgServicePreviewFunc preview;
  gpointer preview_data;
};

static GSocketConnection *
try_connect (const char *path, GError **error)
{
  g_autoptr (GSocketClient) sc = g_socket_client_new ();
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (path);
  return g_socket_client_connect (sc, G_SOCKET_CONNECTABLE (addr), NULL, error);
}

DgServiceClient *
dg_service_client_connect (const char *socket_path, const char *const *serve_argv, GError **error)
{
  g_autofree char *path = socket_path ? g_strdup (socket_path) : dg_service_socket_path ();
  g_autoptr (GError) first = NULL;
  GSocketConnection *conn = try_connect (path, &first);
  if (!conn && serve_argv) {
    /* The service's own start returns once it listens (`deepgen serve --detach`), so one connect
     * after it is enough; a few retries cover a service that was just exiting when we came. */
    g_autofree char *err_out = NULL;
    int status = 0;
    g_autoptr (GError) spawn_error = NULL;
    if (!g_spawn_sync (NULL, (char **) serve_argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err_out,
                       &status, &spawn_error) ||
        !g_spawn_check_wait_status (status, &spawn_error)) {
      g_strstrip (err_out ? err_out : (err_out = g_strdup ("")));
      g_set_error (error, DG_ERROR, DG_ERROR_IO, _ ("The DeepGen service could not be started: %s"),
                   *err_out ? err_out : spawn_error->message);
      return NULL;
    }
    for (int i = 0; i < 50 && !conn; i++) {
      g_clear_error (&first);
      if (!(conn = try_connect (path, &first)))
        g_usleep (100 * 1000);
    }
  }
  if (!conn) {
    g_set_error (error, DG_ERROR, DG_ERROR_IO, _ ("No DeepGen service answers on %s: %s"), path, first->message);
    return NULL;
  }
  DgServiceClient *c = g_new0 (DgServiceClient, 1);
  c->connection = conn;
  c->socket = g_socket_connection_get_socket (conn);
  g_socket_set_blocking (c->socket, FALSE);
  g_mutex_init (&c->lock);
  return c;
}

void
dg_service_client_free (DgServiceClient *c)
{
  if (!c)
    return;
  g_io_stream_close (G_IO_STREAM (c->connection), NULL, NULL);
  g_object_unref (c->connection);
  g_mutex_clear (&c->lock);
  g_free (c);
}

void
dg_service_client_set_preview (DgServiceClient *c, DgServicePreviewFunc func, gpointer user_data)
{
  g_mutex_lock (&c->lock);
  c->preview = func;
  c->preview_data = user_data;
  g_mutex_unlock (&c->lock);
}

void
dg_service_run_info_clear (DgServiceRunInfo *info)
{
  g_clear_pointer (&info->device_name, g_free);
}

static GVariant *
desc_variant (const DgImage *img)
{
  return g_variant_new ("(iiii)", img->width, img->height, img->channels, img->width * img->channels);
}

static gboolean
submit (DgServiceClient *c, guint32 id, const DgServiceModel *m, const DgRequest *r, guint n_results, GError **error)
{
  if (r->n_images > DG_SVC_MAX_IMAGES) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("At most %d images per job"), DG_SVC_MAX_IMAGES);
    return FALSE;
  }
  int fds[DG_SVC_MAX_FDS];
  guint n_fds = 0;
  gboolean ok = TRUE;
  GVariantBuilder images;
  g_variant_builder_init (&images, G_VARIANT_TYPE ("a(iiii)"));
  for (guint i = 0; ok && i < r->n_images; i++) {
    if (!dg_image_check (r->images[i], FALSE, "an input image", error) ||
        (fds[n_fds] = dg_svc_memfd_from_image (r->images[i], "deepgen-image", error)) < 0)
      ok = FALSE;
    else {
      n_fds++;
      g_variant_builder_add_value (&images, desc_variant (r->images[i]));
    }
  }
  if (ok && r->mask) {
    if (!dg_image_check (r->mask, TRUE, "the mask", error) ||
        (fds[n_fds] = dg_svc_memfd_from_image (r->mask, "deepgen-mask", error)) < 0)
      ok = FALSE;
    else
      n_fds++;
  }
  GVariant *mask = r->mask ? desc_variant (r->mask) : g_variant_new ("(iiii)", 0, 0, 0, 0);
  GVariant *v = g_variant_new (
      "(ussuuusbsiiidtuida(iiii)b@(iiii)bbuu)", id, m->synthetic ? "" : m->folder, m->device ? m->device : "",
      (guint32) m->precision, (guint32) m->weights, (guint32) r->job, r->prompt ? r->prompt : "",
      r->negative_prompt != NULL, r->negative_prompt ? r->negative_prompt : "", r->width, r->height, r->steps,
      r->guidance, r->seed, (guint32) r->rng, r->feather, r->strength, &images, r->mask != NULL, mask,
      c->preview != NULL, m->synthetic, (guint32) (m->synthetic ? m->layers : 0), (guint32) n_results);
  g_variant_ref_sink (v);
  if (ok && !dg_svc_send (c->socket, DG_SVC_SUBMIT, v, fds, n_fds, error))
    ok = FALSE;
  g_variant_unref (v);
  for (guint i = 0; i < n_fds; i++) close (fds[i]);
  return ok;
}

static void
set_lost (GError **error, const GError *why)
{
  g_set_error (error, DG_ERROR, DG_ERROR_IO,
               _ ("The DeepGen service stopped before the job finished (it may have crashed; %s). Nothing was "
                  "written: run the job again (a new service starts), or use --no-service."),
               why->message);
}

/* The service closed the connection before it took the job: it was exiting (idle) as we came. */
static void
set_not_taken (GError **error)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                       _ ("The DeepGen service closed the connection before taking the job."));
}

/* A copy of a mapped image in memory of our own (the service's memfd is unmapped after). */
static DgImage *
image_copy (const DgImage *mapped, GError **error)
{
  DgImage *out = dg_image_new (mapped->width, mapped->height, mapped->channels);
  if (!out) {
    g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("Not enough memory for the %d×%d result"), mapped->width,
                 mapped->height);
    return NULL;
  }
  for (int y = 0; y < mapped->height; y++)
    memcpy (out->pixels + (gsize) y * (gsize) out->rowstride, mapped->pixels + (gsize) y * (gsize) mapped->rowstride,
            (gsize) mapped->width * (gsize) mapped->channels);
  return out;
}

DgImage *
dg_service_client_run (DgServiceClient *c, const DgServiceModel *m, const DgRequest *r, DgProgressFunc progress,
                       gpointer user_data, DgServiceRunInfo *info, GCancellable *cancellable, GError **error)
{
  g_autoptr (GPtrArray) out = dg_service_client_run_batch (c, m, r, 1, progress, user_data, info, cancellable, error);
  return out ? g_ptr_array_steal_index (out, 0) : NULL;
}

GPtrArray *
dg_service_client_run_batch (DgServiceClient *c, const DgServiceModel *m, const DgRequest *r, guint n_results,
                             DgProgressFunc progress, gpointer user_data, DgServiceRunInfo *info,
                             GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (c && m && (m->synthetic || m->folder) && r, NULL);
  if (n_results < 1 || n_results > DG_SERVICE_MAX_RESULTS) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("From 1 to %d results per job"),
                 DG_SERVICE_MAX_RESULTS);
    return NULL;
  }
  const gint64 t0 = g_get_monotonic_time ();
  g_mutex_lock (&c->lock);
  const guint32 id = ++c->next_job;
  GPtrArray *out = NULL;
  g_autoptr (GError) e = NULL;
  gboolean cancel_sent = FALSE, accepted = FALSE;
  if (!submit (c, id, m, r, n_results, &e)) {
    if (e->domain == G_IO_ERROR)
      set_not_taken (error);
    else
      g_propagate_error (error, g_steal_pointer (&e));
    g_mutex_unlock (&c->lock);
    return NULL;
  }
  if (info)
    info->first_step_seconds = -1;
  for (;;) {
    DgSvcMessage msg;
    g_clear_error (&e);
    if (!dg_svc_receive (c->socket, &msg, cancel_sent ? NULL : cancellable, &e)) {
      if (g_error_matches (e, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        /* Cancel in the service, then wait for its answer, so the connection stays in step. */
        g_autoptr (GError) se = NULL;
        if (!dg_svc_send (c->socket, DG_SVC_CANCEL, g_variant_new (DG_SVC_CANCEL_TYPE, id), NULL, 0, &se)) {
          g_set_error_literal (error, DG_ERROR, DG_ERROR_CANCELLED, _ ("Cancelled."));
          break;
        }
        cancel_sent = TRUE;
        continue;
      }
      if (accepted)
        set_lost (error, e);
      else
        set_not_taken (error);
      break;
    }
    if (msg.type == DG_SVC_ACCEPTED && msg.job_id == id)
      accepted = TRUE;
    if (msg.type == DG_SVC_FAILED && msg.job_id == 0) { /* refused */
      g_set_error_literal (error, DG_ERROR, msg.code, msg.message);
      dg_svc_message_clear (&msg);
      break;
    }
    if (msg.job_id != id || msg.type == DG_SVC_ACCEPTED || msg.type == DG_SVC_SUBMIT || msg.type == DG_SVC_CANCEL) {
      dg_svc_message_clear (&msg);
      continue;
    }
    if (msg.type == DG_SVC_PROGRESS) {
      if (info && msg.stage == DG_STAGE_DENOISE && info->first_step_seconds < 0)
        info->first_step_seconds = (double) (g_get_monotonic_time () - t0) / 1e6;
      if (progress)
        progress (msg.stage, msg.step, msg.n_steps, user_data);
      dg_svc_message_clear (&msg);
      continue;
    }
    if (msg.type == DG_SVC_PREVIEW) {
      DgImage *rgb = c->preview ? dg_svc_image_map (msg.fds[0], &msg.results[0], FALSE, NULL) : NULL;
      if (rgb)
        c->preview (rgb, msg.step, msg.n_steps, c->preview_data);
      dg_svc_image_unmap (rgb);
      dg_svc_message_clear (&msg);
      continue;
    }
    if (msg.type == DG_SVC_FAILED) {
      g_set_error_literal (error, DG_ERROR, msg.code, msg.code == DG_ERROR_CANCELLED ? _ ("Cancelled.") : msg.message);
      dg_svc_message_clear (&msg);
      break;
    }
    /* DONE: the pixels from the service's memfds into images of our own. */
    if (msg.n_results != n_results) {
      g_autoptr (GError) me =
          g_error_new (DG_ERROR, DG_ERROR_FORMAT, "%u results where %u were asked", msg.n_results, n_results);
      set_lost (error, me);
      dg_svc_message_clear (&msg);
      break;
    }
    out = g_ptr_array_new_with_free_func ((GDestroyNotify) dg_image_free);
    for (guint i = 0; out && i < msg.n_results; i++) {
      g_autoptr (GError) me = NULL;
      DgImage *mapped = dg_svc_image_map (msg.fds[i], &msg.results[i], FALSE, &me);
      DgImage *img = mapped ? image_copy (mapped, error) : NULL;
      if (!mapped)
        set_lost (error, me);
      dg_svc_image_unmap (mapped);
      if (img)
        g_ptr_array_add (out, img);
      else
        g_clear_pointer (&out, g_ptr_array_unref);
    }
    if (out && info) {
      g_free (info->device_name);
      info->device_name = g_strdup (msg.device_name);
      info->weights = msg.weights;
      info->model_was_open = msg.model_was_open;
      info->uploaded_bytes = msg.uploaded;
      info->preview_seconds = msg.preview_seconds;
      info->step_seconds = msg.step_seconds;
    }
    dg_svc_message_clear (&msg);
    break;
  }
  g_mutex_unlock (&c->lock);
  return out;
}
