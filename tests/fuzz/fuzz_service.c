/* libFuzzer target: the service's frame parser (model/service/protocol.c, DESIGN.md §9) on arbitrary
 * bytes: a 16-byte header, then the payload. Every frame must parse into values within the
 * documented bounds or fail with a DG_ERROR; nothing a peer sends may crash the service. The fd
 * count is the header's (the descriptors themselves are the kernel's to deliver). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "dg_error.h"
#include "protocol.h"

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf (stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      abort ();                                                                     \
    }                                                                               \
  } while (0)

static void
check_desc (const DgSvcImageDesc *d, gboolean mask)
{
  CHECK (d->width >= 1 && d->height >= 1 && d->width <= DG_SVC_MAX_IMAGE_SIDE && d->height <= DG_SVC_MAX_IMAGE_SIDE);
  CHECK (mask ? d->channels == 1 : d->channels == 3 || d->channels == 4);
  CHECK ((gint64) d->rowstride >= (gint64) d->width * d->channels);
}

static void parse_checked (DgSvcType type, GBytes *payload, guint n_fds);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < DG_SVC_HEADER_SIZE)
    return 0;
  GError *error = NULL;
  DgSvcType type;
  guint n_fds;
  guint32 length;
  if (!dg_svc_header_parse (data, &type, &n_fds, &length, &error)) {
    CHECK (error && error->domain == DG_ERROR && error->code == DG_ERROR_FORMAT);
    g_error_free (error);
    return 0;
  }
  CHECK (length <= DG_SVC_MAX_PAYLOAD && n_fds <= DG_SVC_MAX_FDS);
  /* The payload is what follows the header, whatever the header claims (a short read is the
   * socket layer's concern, tested in tests/service). */
  GBytes *payload = g_bytes_new (data + DG_SVC_HEADER_SIZE, size - DG_SVC_HEADER_SIZE);
  parse_checked (type, payload, n_fds);
  /* Random bytes rarely make a value in normal form, so the field checks behind that gate would
   * see only the seeds: the same bytes read as a value and brought to normal form reach them. */
  const char *sig = type == DG_SVC_SUBMIT     ? DG_SVC_SUBMIT_TYPE
                    : type == DG_SVC_CANCEL   ? DG_SVC_CANCEL_TYPE
                    : type == DG_SVC_ACCEPTED ? DG_SVC_ACCEPTED_TYPE
                    : type == DG_SVC_PROGRESS ? DG_SVC_PROGRESS_TYPE
                    : type == DG_SVC_DONE     ? DG_SVC_DONE_TYPE
                    : type == DG_SVC_PREVIEW  ? DG_SVC_PREVIEW_TYPE
                                              : DG_SVC_FAILED_TYPE;
  GVariant *raw = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (sig), payload, FALSE));
  GVariant *normal = g_variant_get_normal_form (raw);
  GBytes *normal_bytes = g_variant_get_data_as_bytes (normal);
  parse_checked (type, normal_bytes, n_fds);
  g_bytes_unref (normal_bytes);
  g_variant_unref (normal);
  g_variant_unref (raw);
  g_bytes_unref (payload);
  return 0;
}

static void
parse_checked (DgSvcType type, GBytes *payload, guint n_fds)
{
  GError *error = NULL;
  DgSvcMessage m;
  gboolean ok = dg_svc_message_parse (type, payload, n_fds, &m, &error);
  if (!ok) {
    CHECK (error && error->domain == DG_ERROR && error->code == DG_ERROR_FORMAT && error->message[0]);
    g_error_free (error);
    return;
  }
  CHECK (error == NULL && m.type == type);
  if (type == DG_SVC_SUBMIT) {
    CHECK (m.synthetic ? m.folder == NULL && m.layers <= DG_CONFIG_MAX_LAYERS : m.folder && *m.folder && m.layers == 0);
    CHECK (m.n_results >= 1 && m.n_results <= DG_SERVICE_MAX_RESULTS);
    CHECK (m.prompt && g_utf8_validate (m.prompt, -1, NULL));
    CHECK (m.n_images <= DG_SVC_MAX_IMAGES && n_fds == m.n_images + (m.has_mask ? 1u : 0u));
    for (guint i = 0; i < m.n_images; i++) check_desc (&m.images[i], FALSE);
    if (m.has_mask)
      check_desc (&m.mask, TRUE);
    CHECK (m.request.job <= DG_JOB_INPAINT && m.request.rng <= DG_RNG_TORCH_CPU);
    CHECK (m.request.guidance >= -1.0 && m.request.guidance <= 1000.0);
  } else if (type == DG_SVC_DONE) {
    CHECK (m.n_results >= 1 && m.n_results <= DG_SERVICE_MAX_RESULTS && n_fds == m.n_results);
    for (guint i = 0; i < m.n_results; i++) check_desc (&m.results[i], FALSE);
    CHECK (m.preview_seconds >= 0 && m.step_seconds >= 0);
  } else if (type == DG_SVC_PROGRESS) {
    CHECK (m.stage <= DG_STAGE_DECODE);
  } else if (type == DG_SVC_FAILED) {
    CHECK (m.code <= DG_ERROR_CANCELLED && m.message && g_utf8_validate (m.message, -1, NULL));
  } else if (type == DG_SVC_PREVIEW) {
    check_desc (&m.results[0], FALSE);
    CHECK (m.results[0].channels == 3 && m.step >= 0 && m.step <= m.n_steps && n_fds == 1);
  }
  dg_svc_message_clear (&m);
}
