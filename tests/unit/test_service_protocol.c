/* The service's frame parser (model/service/protocol.c, DESIGN.md §9) on payloads built here:
 * the model identity (a folder, or the synthetic model and its layers), the variations a job asks
 * for and the images a DONE carries, each accepted within its bounds and refused outside them as
 * DG_ERROR_FORMAT. No socket, no GPU (the frames on a real socket: tests/service; arbitrary bytes:
 * tests/fuzz/fuzz_service.c).
 *
 *   /service-protocol/submit-folder     a folder job: no synthetic flag, layers 0, one result
 *   /service-protocol/submit-synthetic  the synthetic model of N layers, no folder
 *   /service-protocol/submit-refused    a folder with synthetic, neither, layers out of range,
 *                                       0 or too many results
 *   /service-protocol/done              N results with N descriptors; counts and seconds checked
 *   /service-protocol/socket-name       the socket's name carries the wire format's identity */
#include <math.h>
#include <string.h>

#include "config.h"
#include "dg_error.h"
#include "dg_service.h"
#include "protocol.h"

/* A generate job's SUBMIT payload with the model identity and result count given. */
static GBytes *
submit (const char *folder, gboolean synthetic, guint32 layers, guint32 n_results)
{
  GVariantBuilder images;
  g_variant_builder_init (&images, G_VARIANT_TYPE ("a(iiii)"));
  g_autoptr (GVariant) v = g_variant_ref_sink (
      g_variant_new (DG_SVC_SUBMIT_TYPE, 3, folder, "", (guint32) DG_PRECISION_BF16, (guint32) DG_WEIGHTS_Q8_0,
                     (guint32) DG_JOB_GENERATE, "a fox", FALSE, "", 256, 256, 2, 4.0, (guint64) 11,
                     (guint32) DG_RNG_PHILOX, -1, 1.0, &images, FALSE, 0, 0, 0, 0, TRUE, synthetic, layers, n_results));
  return g_variant_get_data_as_bytes (v);
}

static gboolean
parse (DgSvcType type, GBytes *payload, guint n_fds, DgSvcMessage *m, GError **error)
{
  return dg_svc_message_parse (type, payload, n_fds, m, error);
}

static void
test_submit_folder (void)
{
  g_autoptr (GBytes) b = submit ("/models/DeepGen-1.0-diffusers", FALSE, 0, 1);
  DgSvcMessage m;
  g_autoptr (GError) error = NULL;
  g_assert_true (parse (DG_SVC_SUBMIT, b, 0, &m, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (m.folder, ==, "/models/DeepGen-1.0-diffusers");
  g_assert_false (m.synthetic);
  g_assert_cmpuint (m.layers, ==, 0);
  g_assert_cmpuint (m.n_results, ==, 1);
  g_assert_cmpint (m.weights, ==, DG_WEIGHTS_Q8_0);
  g_assert_cmpuint (m.request.seed, ==, 11);
  dg_svc_message_clear (&m);
}

static void
test_submit_synthetic (void)
{
  const guint32 layers[] = { 0, 1, DG_CONFIG_MAX_LAYERS };
  for (guint i = 0; i < G_N_ELEMENTS (layers); i++) {
    g_autoptr (GBytes) b = submit ("", TRUE, layers[i], DG_SERVICE_MAX_RESULTS);
    DgSvcMessage m;
    g_autoptr (GError) error = NULL;
    g_assert_true (parse (DG_SVC_SUBMIT, b, 0, &m, &error));
    g_assert_no_error (error);
    g_assert_null (m.folder);
    g_assert_true (m.synthetic);
    g_assert_cmpuint (m.layers, ==, layers[i]);
    g_assert_cmpuint (m.n_results, ==, DG_SERVICE_MAX_RESULTS);
    dg_svc_message_clear (&m);
  }
}

static void
test_submit_refused (void)
{
  const struct {
    const char *folder;
    gboolean synthetic;
    guint32 layers, n_results;
    const char *why;
  } bad[] = {
    { "/models/x", TRUE, 1, 1, "a model folder with the synthetic model" },
    { "", FALSE, 0, 1, "no model folder" },
    { "/models/x", FALSE, 2, 1, "layer count out of range" },
    { "", TRUE, DG_CONFIG_MAX_LAYERS + 1, 1, "layer count out of range" },
    { "", TRUE, G_MAXUINT32, 1, "layer count out of range" },
    { "/models/x", FALSE, 0, 0, "result count out of range" },
    { "/models/x", FALSE, 0, DG_SERVICE_MAX_RESULTS + 1, "result count out of range" },
    { "", TRUE, 1, G_MAXUINT32, "result count out of range" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GBytes) b = submit (bad[i].folder, bad[i].synthetic, bad[i].layers, bad[i].n_results);
    DgSvcMessage m;
    g_autoptr (GError) error = NULL;
    g_assert_false (parse (DG_SVC_SUBMIT, b, 0, &m, &error));
    g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
    g_assert_nonnull (strstr (error->message, bad[i].why));
    g_assert_null (m.payload); /* nothing kept */
  }
}

static GBytes *
done (guint n, double preview_s, double step_s)
{
  GVariantBuilder descs;
  g_variant_builder_init (&descs, G_VARIANT_TYPE ("a(iiii)"));
  for (guint i = 0; i < n; i++) g_variant_builder_add (&descs, "(iiii)", 64 + (int) i, 48, 3, 3 * (64 + (int) i));
  g_autoptr (GVariant) v = g_variant_ref_sink (g_variant_new (
      DG_SVC_DONE_TYPE, 3, &descs, "llvmpipe", (guint32) DG_WEIGHTS_RELEASED, TRUE, (guint64) 0, preview_s, step_s));
  return g_variant_get_data_as_bytes (v);
}

static void
test_done (void)
{
  for (guint n = 1; n <= DG_SERVICE_MAX_RESULTS; n++) {
    g_autoptr (GBytes) b = done (n, 0.002, 1.5);
    DgSvcMessage m;
    g_autoptr (GError) error = NULL;
    g_assert_true (parse (DG_SVC_DONE, b, n, &m, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (m.n_results, ==, n);
    for (guint i = 0; i < n; i++) g_assert_cmpint (m.results[i].width, ==, 64 + (int) i);
    g_assert_cmpfloat (m.preview_seconds, ==, 0.002);
    g_assert_cmpfloat (m.step_seconds, ==, 1.5);
    dg_svc_message_clear (&m);
    /* one descriptor per image, no more, no fewer */
    g_autoptr (GError) e2 = NULL;
    g_assert_false (parse (DG_SVC_DONE, b, n - 1, &m, &e2));
    g_assert_error (e2, DG_ERROR, DG_ERROR_FORMAT);
  }
  const struct {
    guint n;
    double preview_s, step_s;
  } bad[] = {
    { 0, 0, 0 }, { DG_SERVICE_MAX_RESULTS + 1, 0, 0 }, { 1, NAN, 0 }, { 1, 0, -1 }, { 1, INFINITY, 0 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GBytes) b = done (bad[i].n, bad[i].preview_s, bad[i].step_s);
    DgSvcMessage m;
    g_autoptr (GError) error = NULL;
    g_assert_false (parse (DG_SVC_DONE, b, bad[i].n, &m, &error));
    g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
  }
}

/* An old service still running after an upgrade must not be met: the name changes with the format.
 * The identity is a pure function of the format (the same in every process and build of it). */
static void
test_socket_name (void)
{
  const guint32 id = dg_svc_protocol_id ();
  g_assert_cmpuint (id, ==, dg_svc_protocol_id ());
  g_autofree char *want = g_strdup_printf ("service-%08x.sock", id);
  g_autofree char *name = dg_service_socket_name ();
  g_assert_cmpstr (name, ==, want);
  g_autofree char *path = dg_service_socket_path ();
  g_assert_true (g_str_has_suffix (path, want));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/service-protocol/submit-folder", test_submit_folder);
  g_test_add_func ("/service-protocol/submit-synthetic", test_submit_synthetic);
  g_test_add_func ("/service-protocol/submit-refused", test_submit_refused);
  g_test_add_func ("/service-protocol/done", test_done);
  g_test_add_func ("/service-protocol/socket-name", test_socket_name);
  return g_test_run ();
}
