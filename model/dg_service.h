/* The resident DeepGen service (DESIGN.md §9): one process per user owns the Vulkan device and the
 * open model; the CLI (and, the same way, the GIMP plug-ins and deepgen-studio) hand it jobs over a
 * UNIX socket and get progress events and the result back. Public: the front-ends include it.
 *
 *   g_autoptr (DgServiceClient) c = dg_service_client_connect (NULL, serve_argv, &error);
 *   DgServiceModel m = DG_SERVICE_MODEL_INIT;  m.folder = dir;
 *   g_autoptr (DgImage) img = dg_service_client_run (c, &m, &request, on_progress, ui, cancellable, &error);
 *
 * dg_service_client_run takes the same DgRequest and progress callback as dg_run and gives the same
 * image, byte for byte (dg_service_client_run_batch: variations, as dg_run_batch); images travel
 * through sealed memfds, never through the socket. */
#pragma once

#include <gio/gio.h>
#include <glib.h>

#include "deepgen.h"

G_BEGIN_DECLS

/* The socket's file name, "service-XXXXXXXX.sock": the hex digits identify the wire format, so
 * clients and a service of different builds never meet (an old service idles out on its own
 * socket). Newly allocated. */
char *dg_service_socket_name (void);

/* The socket: $XDG_RUNTIME_DIR/deepgen/ and dg_service_socket_name () (the folder 0700, the socket
 * 0600); newly allocated. */
char *dg_service_socket_path (void);

/* ---- the server (`deepgen serve`) ------------------------------------------------------ */

#define DG_SERVICE_DEFAULT_IDLE_EXIT 600 /* seconds without clients or jobs before it exits */

typedef struct {
  const char *socket_path; /* NULL = dg_service_socket_path () */
  guint idle_exit;         /* seconds; 0 = never */
  /* Called once the socket listens (e.g. to let a detaching parent go); may be NULL. */
  void (*ready) (gpointer user_data);
  gpointer user_data;
} DgServeOptions;

#define DG_SERVE_OPTIONS_INIT { NULL, DG_SERVICE_DEFAULT_IDLE_EXIT, NULL, NULL }

/* Listens and runs jobs until idle for idle_exit seconds or SIGTERM/SIGINT (TRUE), or fails to
 * start (FALSE): G_IO_ERROR_ADDRESS_IN_USE when another service runs on the socket, DG_ERROR_IO
 * or a G_IO_ERROR with the reason when the socket or its folder cannot be made. Blocks. */
gboolean dg_service_serve (const DgServeOptions *options, GError **error);

/* ---- the client ------------------------------------------------------------------------ */

typedef struct _DgServiceClient DgServiceClient;

/* Connects to the service at @socket_path (NULL = the default). When none answers and @serve_argv
 * is not NULL, runs @serve_argv (e.g. { "/usr/bin/deepgen", "serve", "--detach", NULL }: it must
 * return once the service listens, leaving it running) and connects again. Errors: DG_ERROR_IO
 * with the reason (no service and none could be started). */
DgServiceClient *dg_service_client_connect (const char *socket_path, const char *const *serve_argv, GError **error);
void dg_service_client_free (DgServiceClient *client);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgServiceClient, dg_service_client_free)

/* Which model the service runs a job on (what dg_engine_new and dg_model_open, or
 * dg_model_open_synthetic, take in-process). The service keeps the last model open between jobs
 * and reopens it when any of these change. */
typedef struct {
  const char *folder; /* the model folder; required unless synthetic, NULL with it */
  const char *device; /* NULL = the service's default device */
  DgPrecision precision;
  DgWeightFormat weights;
  gboolean synthetic; /* the synthetic DeepGen 1.0 (dg_model_open_synthetic, seed 0) instead of a folder */
  guint layers;       /* with synthetic: layers per component, 0 = the full depth; else 0 */
} DgServiceModel;

#define DG_SERVICE_MODEL_INIT { NULL, NULL, DG_PRECISION_BF16, DG_WEIGHTS_RELEASED, FALSE, 0 }

/* Variations per job (dg_service_client_run_batch); as many as the front-ends offer. */
#define DG_SERVICE_MAX_RESULTS 8

/* Live previews (DESIGN.md §9): after each DiT step, the sampler's estimate of the clean image as a
 * small RGB image at latent resolution (1/8 of the output's sides; upscale it for display), valid
 * during the call, step n of N. Called from the thread that runs dg_service_client_run. */
typedef void (*DgServicePreviewFunc) (const DgImage *rgb, int step, int n_steps, gpointer user_data);
/* Asks for previews in this client's next runs (NULL: none, the default: they cost a little). */
void dg_service_client_set_preview (DgServiceClient *client, DgServicePreviewFunc func, gpointer user_data);

/* What the service reports besides the image (NULL-able out-parameter of run). */
typedef struct {
  char *device_name;         /* the service's device, as dg_engine_device_name; g_free */
  DgWeightFormat weights;    /* the format the job ran with (dg_model_last_run_weights) */
  gboolean model_was_open;   /* the model was already open in the service (no reload) */
  guint64 uploaded_bytes;    /* weight bytes the job uploaded to the device (0: all were resident) */
  double first_step_seconds; /* from this call to the start of the first DiT step */
  double preview_seconds;    /* the service's time making previews in this job (0 without previews) */
  double step_seconds;       /* the service's time in DiT steps, previews excluded */
} DgServiceRunInfo;

void dg_service_run_info_clear (DgServiceRunInfo *info);

/* Runs @request in the service, like dg_run: @progress is called from the calling thread; a
 * cancelled @cancellable cancels the job there and ends in DG_ERROR_CANCELLED. One run at a time
 * per client (one connection); several clients queue in the service (FIFO). Errors: the job's
 * own (DG_ERROR codes as in-process), DG_ERROR_IO when the service stops or the connection
 * breaks mid-job (the message says so), G_IO_ERROR_CONNECTION_CLOSED when the service closed the
 * connection before taking the job (it was exiting, idle): nothing ran, so connect again (which
 * starts a new one) and resubmit. */
DgImage *dg_service_client_run (DgServiceClient *client, const DgServiceModel *model, const DgRequest *request,
                                DgProgressFunc progress, gpointer user_data, DgServiceRunInfo *info,
                                GCancellable *cancellable, GError **error);

/* Variations in the service, as in-process (ui/dg_task.c, `deepgen --n-results`): @n_results
 * (1 … DG_SERVICE_MAX_RESULTS) copies of @request with the seeds seed, seed + 1, … in one batch
 * (dg_run_batch), so each image is byte for byte the one in-process gives. Returns a GPtrArray of
 * DgImage* in seed order; progress, previews (of the first), cancel and errors as
 * dg_service_client_run. */
GPtrArray *dg_service_client_run_batch (DgServiceClient *client, const DgServiceModel *model, const DgRequest *request,
                                        guint n_results, DgProgressFunc progress, gpointer user_data,
                                        DgServiceRunInfo *info, GCancellable *cancellable, GError **error);

G_END_DECLS
