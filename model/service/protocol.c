/* The service's frames (protocol.h, DESIGN.md §9): header checks, GVariant payloads validated
 * field by field, and blocking send/receive on non-blocking GSockets with the fds attached. */
#include "protocol.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gunixfdmessage.h>

#include "config.h"
#include "dg_service.h"


#define SEND_TIMEOUT_US (30 * G_USEC_PER_SEC)

void
dg_svc_message_clear (DgSvcMessage *m)
{
  for (guint i = 0; i < m->n_fds; i++)
    if (m->fds[i] >= 0)
      close (m->fds[i]);
  g_free (m->fds);
  g_clear_pointer (&m->payload, g_variant_unref);
  memset (m, 0, sizeof *m);
}

static gboolean
malformed (GError **error, const char *what)
{
  g_set_error (error, DG_ERROR, DG_ERROR_FORMAT, "malformed service message: %s", what);
  return FALSE;
}

static guint32
le32 (const guint8 *p)
{
  return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

static guint
le16 (const guint8 *p)
{
  return (guint) p[0] | (guint) p[1] << 8;
}

static const char *
type_string (DgSvcType type)
{
  switch (type) {
  case DG_SVC_SUBMIT: return DG_SVC_SUBMIT_TYPE;
  case DG_SVC_CANCEL: return DG_SVC_CANCEL_TYPE;
  case DG_SVC_ACCEPTED: return DG_SVC_ACCEPTED_TYPE;
  case DG_SVC_PROGRESS: return DG_SVC_PROGRESS_TYPE;
  case DG_SVC_DONE: return DG_SVC_DONE_TYPE;
  case DG_SVC_FAILED: return DG_SVC_FAILED_TYPE;
  case DG_SVC_PREVIEW: return DG_SVC_PREVIEW_TYPE;
  }
  return NULL;
}

guint32
dg_svc_protocol_id (void)
{
  static const DgSvcType types[] = { DG_SVC_SUBMIT, DG_SVC_CANCEL, DG_SVC_ACCEPTED, DG_SVC_PROGRESS,
                                     DG_SVC_DONE,   DG_SVC_FAILED, DG_SVC_PREVIEW };
  g_autoptr (GString) format = g_string_new (NULL);
  g_string_append_printf (format, "%08x/%d", DG_SVC_MAGIC, DG_SVC_REVISION);
  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    g_string_append_printf (format, "/%d=%s", types[i], type_string (types[i]));
  /* FNV-1a: stable across builds and machines (g_str_hash makes no such promise) */
  guint32 h = 2166136261u;
  for (const char *c = format->str; *c; c++) h = (h ^ (guint8) *c) * 16777619u;
  return h;
}

/* The socket is named after the wire format (dg_svc_protocol_id). */
char *
dg_service_socket_name (void)
{
  return g_strdup_printf ("service-%08x.sock", dg_svc_protocol_id ());
}

char *
dg_service_socket_path (void)
{
  g_autofree char *name = dg_service_socket_name ();
  return g_build_filename (g_get_user_runtime_dir (), "deepgen", name, NULL);
}

gboolean
dg_svc_header_parse (const guint8 header[DG_SVC_HEADER_SIZE], DgSvcType *type, guint *n_fds, guint32 *length,
                     GError **error)
{
  if (le32 (header) != DG_SVC_MAGIC)
    return malformed (error, "bad magic");
  *type = (DgSvcType) le16 (header + 4);
  *n_fds = le16 (header + 6);
  *length = le32 (header + 8);
  if (le32 (header + 12) != 0)
    return malformed (error, "reserved header bytes not zero");
  if (!type_string (*type))
    return malformed (error, "unknown type");
  if (*length > DG_SVC_MAX_PAYLOAD)
    return malformed (error, "payload too large");
  if (*n_fds > DG_SVC_MAX_FDS)
    return malformed (error, "too many file descriptors");
  return TRUE;
}

static gboolean
desc_get (GVariant *v, gboolean mask, DgSvcImageDesc *d, GError **error)
{
  g_variant_get (v, "(iiii)", &d->width, &d->height, &d->channels, &d->rowstride);
  if (d->width < 1 || d->height < 1 || d->width > DG_SVC_MAX_IMAGE_SIDE || d->height > DG_SVC_MAX_IMAGE_SIDE)
    return malformed (error, "image size out of range");
  if (mask ? d->channels != 1 : d->channels != 3 && d->channels != 4)
    return malformed (error, "bad channel count");
  if ((gint64) d->rowstride < (gint64) d->width * d->channels)
    return malformed (error, "row stride too small");
  return TRUE;
}

static gboolean
parse_submit (GVariant *v, guint n_fds, DgSvcMessage *m, GError **error)
{
  guint32 precision, weights, job, rng;
  gboolean has_negative;
  g_autoptr (GVariant) images = NULL, mask = NULL;
  DgRequest *r = &m->request;
  *r = (DgRequest) DG_REQUEST_INIT;
  int feather;
  guint32 layers, n_results;
  g_variant_get (v, "(u&s&suuu&sb&siiidtuid@a(iiii)b@(iiii)bbuu)", &m->job_id, &m->folder, &m->device, &precision,
                 &weights, &job, &m->prompt, &has_negative, &m->negative, &r->width, &r->height, &r->steps,
                 &r->guidance, &r->seed, &rng, &feather, &r->strength, &images, &m->has_mask, &mask, &m->previews,
                 &m->synthetic, &layers, &n_results);
  /* the model: a folder, or the synthetic one (of a layer count) and no folder */
  if (m->synthetic ? *m->folder != '\0' : !*m->folder)
    return malformed (error, m->synthetic ? "a model folder with the synthetic model" : "no model folder");
  if (m->synthetic ? layers > DG_CONFIG_MAX_LAYERS : layers != 0)
    return malformed (error, "layer count out of range");
  if (m->synthetic)
    m->folder = NULL;
  m->layers = layers;
  if (n_results < 1 || n_results > DG_SERVICE_MAX_RESULTS)
    return malformed (error, "result count out of range");
  m->n_results = n_results;
  if (!*m->device)
    m->device = NULL;
  if (!has_negative)
    m->negative = NULL;
  if (precision > DG_PRECISION_F32)
    return malformed (error, "bad precision");
  if (weights > DG_WEIGHTS_Q4_0)
    return malformed (error, "bad weight format");
  if (job > DG_JOB_INPAINT)
    return malformed (error, "bad job");
  if (rng > DG_RNG_TORCH_CPU)
    return malformed (error, "bad noise generator");
  if (r->width < 0 || r->height < 0 || r->steps < 0 || r->width > DG_SVC_MAX_IMAGE_SIDE ||
      r->height > DG_SVC_MAX_IMAGE_SIDE || r->steps > 100000)
    return malformed (error, "size or steps out of range");
  if (!(r->guidance >= -1.0 && r->guidance <= 1000.0)) /* NaN fails too */
    return malformed (error, "guidance out of range");
  if (feather < -1 || feather > DG_INPAINT_MAX_FEATHER)
    return malformed (error, "feather out of range");
  /* the range itself is dg_run's to refuse, with its message; only a non-number is malformed */
  if (!isfinite (r->strength))
    return malformed (error, "strength is not a number");
  m->precision = precision;
  m->weights = weights;
  r->job = job;
  r->rng = rng;
  r->feather = feather;
  r->prompt = m->prompt;
  r->negative_prompt = m->negative;
  m->n_images = (guint) g_variant_n_children (images);
  if (m->n_images > DG_SVC_MAX_IMAGES)
    return malformed (error, "too many images");
  for (guint i = 0; i < m->n_images; i++) {
    g_autoptr (GVariant) c = g_variant_get_child_value (images, i);
    if (!desc_get (c, FALSE, &m->images[i], error))
      return FALSE;
  }
  if (m->has_mask && !desc_get (mask, TRUE, &m->mask, error))
    return FALSE;
  if (n_fds != m->n_images + (m->has_mask ? 1 : 0))
    return malformed (error, "file descriptor count does not match the images");
  return TRUE;
}

gboolean
dg_svc_message_parse (DgSvcType type, GBytes *payload, guint n_fds, DgSvcMessage *out, GError **error)
{
  memset (out, 0, sizeof *out);
  const char *ts = type_string (type);
  if (!ts)
    return malformed (error, "unknown type");
  g_autoptr (GVariant) v = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (ts), payload, FALSE));
  /* Untrusted data: only the normal form is accepted (valid UTF-8 strings, exact sizes, no
   * trailing bytes), so every value read below is what the sender meant. */
  if (!g_variant_is_normal_form (v))
    return malformed (error, "payload is not a well-formed value of its type");
  out->type = type;
  gboolean ok = TRUE;
  guint32 stage = 0, weights = 0;
  switch (type) {
  case DG_SVC_SUBMIT: ok = parse_submit (v, n_fds, out, error); break;
  case DG_SVC_CANCEL: g_variant_get (v, "(u)", &out->job_id); break;
  case DG_SVC_ACCEPTED: g_variant_get (v, "(uu)", &out->job_id, &out->ahead); break;
  case DG_SVC_PROGRESS:
    g_variant_get (v, "(uuii)", &out->job_id, &stage, &out->step, &out->n_steps);
    if (stage > DG_STAGE_DECODE)
      ok = malformed (error, "bad stage");
    out->stage = stage;
    break;
  case DG_SVC_DONE: {
    g_autoptr (GVariant) d = NULL;
    g_variant_get (v, "(u@a(iiii)&subtdd)", &out->job_id, &d, &out->device_name, &weights, &out->model_was_open,
                   &out->uploaded, &out->preview_seconds, &out->step_seconds);
    out->n_results = (guint) g_variant_n_children (d);
    if (out->n_results < 1 || out->n_results > DG_SERVICE_MAX_RESULTS)
      ok = malformed (error, "result count out of range");
    for (guint i = 0; ok && i < out->n_results; i++) {
      g_autoptr (GVariant) c = g_variant_get_child_value (d, i);
      ok = desc_get (c, FALSE, &out->results[i], error);
    }
    if (ok && weights > DG_WEIGHTS_Q4_0)
      ok = malformed (error, "bad weight format");
    out->weights = weights;
    if (ok && !(out->preview_seconds >= 0 && out->preview_seconds < 1e9 && out->step_seconds >= 0 &&
                out->step_seconds < 1e9)) /* NaN fails too */
      ok = malformed (error, "seconds out of range");
    if (ok && n_fds != out->n_results)
      ok = malformed (error, "a result needs exactly one file descriptor per image");
    break;
  }
  case DG_SVC_PREVIEW: {
    g_autoptr (GVariant) d = NULL;
    g_variant_get (v, "(uii@(iiii))", &out->job_id, &out->step, &out->n_steps, &d);
    ok = desc_get (d, FALSE, &out->results[0], error);
    if (ok && (out->results[0].channels != 3 || out->step < 0 || out->n_steps < out->step))
      ok = malformed (error, "bad preview");
    if (ok && n_fds != 1)
      ok = malformed (error, "a preview needs exactly one file descriptor");
    break;
  }
  case DG_SVC_FAILED:
    g_variant_get (v, "(uu&s)", &out->job_id, &out->code, &out->message);
    if (out->code > DG_ERROR_CANCELLED)
      ok = malformed (error, "bad error code");
    break;
  }
  if (ok && type != DG_SVC_SUBMIT && type != DG_SVC_DONE && type != DG_SVC_PREVIEW && n_fds != 0)
    ok = malformed (error, "unexpected file descriptors");
  if (!ok) {
    memset (out, 0, sizeof *out);
    return FALSE;
  }
  out->payload = g_steal_pointer (&v);
  return TRUE;
}

/* ---- sockets ---- */

gboolean
dg_svc_send (GSocket *socket, DgSvcType type, GVariant *payload, const int *fds, guint n_fds, GError **error)
{
  g_autoptr (GVariant) v = g_variant_ref_sink (payload);
  g_return_val_if_fail (g_variant_is_of_type (v, G_VARIANT_TYPE (type_string (type))), FALSE);
  const gsize size = g_variant_get_size (v);
  g_autofree guint8 *buf = g_malloc (DG_SVC_HEADER_SIZE + size);
  const guint32 h[4] = { GUINT32_TO_LE (DG_SVC_MAGIC), GUINT32_TO_LE ((guint32) type | (guint32) n_fds << 16),
                         GUINT32_TO_LE ((guint32) size), 0 };
  memcpy (buf, h, sizeof h);
  g_variant_store (v, buf + DG_SVC_HEADER_SIZE);
  g_autoptr (GSocketControlMessage) fdmsg = NULL;
  if (n_fds) {
    fdmsg = g_unix_fd_message_new ();
    for (guint i = 0; i < n_fds; i++)
      if (!g_unix_fd_message_append_fd (G_UNIX_FD_MESSAGE (fdmsg), fds[i], error))
        return FALSE;
  }
  gsize sent = 0, total = DG_SVC_HEADER_SIZE + size;
  const gint64 deadline = g_get_monotonic_time () + SEND_TIMEOUT_US;
  while (sent < total) {
    GOutputVector vec = { buf + sent, total - sent };
    GSocketControlMessage *msgs[1] = { fdmsg };
    g_autoptr (GError) e = NULL;
    gssize n = g_socket_send_message (socket, NULL, &vec, 1, sent == 0 && fdmsg ? msgs : NULL,
                                      sent == 0 && fdmsg ? 1 : 0, G_SOCKET_MSG_NONE, NULL, &e);
    if (n < 0 && g_error_matches (e, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
      gint64 left = deadline - g_get_monotonic_time ();
      if (left <= 0 || !g_socket_condition_timed_wait (socket, G_IO_OUT, left, NULL, error)) {
        if (error && !*error)
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "the peer stopped reading");
        return FALSE;
      }
      continue;
    }
    if (n < 0) {
      g_propagate_error (error, g_steal_pointer (&e));
      return FALSE;
    }
    sent += (gsize) n;
  }
  return TRUE;
}

/* Reads exactly @len bytes, appending any descriptors that come with them to @fds. */
static gboolean
receive_exact (GSocket *socket, guint8 *buf, gsize len, GArray *fds, gboolean *eof_at_start, GCancellable *cancellable,
               GError **error)
{
  gsize got = 0;
  while (got < len) {
    GInputVector vec = { buf + got, len - got };
    GSocketControlMessage **msgs = NULL;
    int n_msgs = 0, flags = 0;
    g_autoptr (GError) e = NULL;
    gssize n = g_socket_receive_message (socket, NULL, &vec, 1, &msgs, &n_msgs, &flags, NULL, &e);
    for (int i = 0; i < n_msgs; i++) {
      if (G_IS_UNIX_FD_MESSAGE (msgs[i])) {
        int nf = 0;
        int *stolen = g_unix_fd_message_steal_fds (G_UNIX_FD_MESSAGE (msgs[i]), &nf);
        g_array_append_vals (fds, stolen, (guint) nf);
        g_free (stolen);
      }
      g_object_unref (msgs[i]);
    }
    g_free (msgs);
    if (n < 0 && g_error_matches (e, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
      /* Cancelling is only possible between frames: half a frame read would leave the stream out
       * of step. */
      if (!g_socket_condition_wait (socket, G_IO_IN, got == 0 ? cancellable : NULL, error))
        return FALSE;
      continue;
    }
    if (n < 0) {
      g_propagate_error (error, g_steal_pointer (&e));
      return FALSE;
    }
    if (flags & MSG_CTRUNC)
      return malformed (error, "too many file descriptors");
    if (n == 0) {
      if (eof_at_start)
        *eof_at_start = got == 0;
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, "connection closed");
      return FALSE;
    }
    got += (gsize) n;
  }
  return TRUE;
}

static void
close_fds (GArray *fds)
{
  for (guint i = 0; i < fds->len; i++) close (g_array_index (fds, int, i));
  g_array_set_size (fds, 0);
}

gboolean
dg_svc_receive (GSocket *socket, DgSvcMessage *out, GCancellable *cancellable, GError **error)
{
  memset (out, 0, sizeof *out);
  g_autoptr (GArray) fds = g_array_new (FALSE, FALSE, sizeof (int));
  guint8 header[DG_SVC_HEADER_SIZE];
  gboolean eof_at_start = FALSE;
  DgSvcType type;
  guint n_fds;
  guint32 length;
  g_autoptr (GError) e = NULL;
  if (!receive_exact (socket, header, sizeof header, fds, &eof_at_start, cancellable, &e) ||
      !dg_svc_header_parse (header, &type, &n_fds, &length, &e)) {
    close_fds (fds);
    /* The end of the stream in the middle of a frame is a malformed frame, not a goodbye. */
    if (g_error_matches (e, G_IO_ERROR, G_IO_ERROR_CLOSED) && !eof_at_start)
      return malformed (error, "truncated frame");
    g_propagate_error (error, g_steal_pointer (&e));
    return FALSE;
  }
  g_autofree guint8 *payload = g_malloc (length ? length : 1);
  if (length && !receive_exact (socket, payload, length, fds, NULL, NULL, &e)) {
    close_fds (fds);
    if (g_error_matches (e, G_IO_ERROR, G_IO_ERROR_CLOSED))
      return malformed (error, "truncated frame");
    g_propagate_error (error, g_steal_pointer (&e));
    return FALSE;
  }
  if (fds->len != n_fds) {
    close_fds (fds);
    return malformed (error, "file descriptors missing or extra");
  }
  g_autoptr (GBytes) bytes = g_bytes_new_take (g_steal_pointer (&payload), length);
  if (!dg_svc_message_parse (type, bytes, n_fds, out, error)) {
    close_fds (fds);
    return FALSE;
  }
  out->n_fds = fds->len;
  out->fds = (int *) g_array_free (g_steal_pointer (&fds), FALSE);
  return TRUE;
}
