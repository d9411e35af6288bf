/* The service's wire format (DESIGN.md §9): length-prefixed frames on a UNIX stream socket, each
 * a 16-byte header and a GVariant payload in normal form, file descriptors (sealed memfds holding
 * pixels) attached to the frame's first byte as SCM_RIGHTS. Parsing validates everything a peer
 * can send; a frame that fails closes that connection only. Internal to model/. */
#pragma once

#include <gio/gio.h>
#include <glib.h>

#include "deepgen.h"
#include "dg_service.h"

#define DG_SVC_MAGIC 0x31534744u               /* "DGS1" little-endian */
#define DG_SVC_HEADER_SIZE 16                  /* a multiple of 8: the payload after it stays aligned for GVariant */
#define DG_SVC_MAX_PAYLOAD (1u << 20)          /* prompts are short; a frame larger than this is malformed */
#define DG_SVC_MAX_IMAGES 16                   /* references per job (one fd each, plus the mask's) */
#define DG_SVC_MAX_FDS (DG_SVC_MAX_IMAGES + 1) /* also ≥ DG_SERVICE_MAX_RESULTS: a DONE's results */
#define DG_SVC_MAX_IMAGE_SIDE 65535

typedef enum {
  /* client → service */
  DG_SVC_SUBMIT = 1, /* a job; fds: its images, then the mask. Its model: a folder, or the synthetic
                      * one (b synthetic, u layers; folder empty); u n_results: variations */
  DG_SVC_CANCEL = 2, /* (u job) */
  /* service → client */
  DG_SVC_ACCEPTED = 16, /* (u job, u jobs ahead of it) */
  DG_SVC_PROGRESS = 17, /* (u job, u stage, i step, i n_steps) */
  DG_SVC_DONE = 18,     /* (u job, a(iiii) images, s device, u weights, b model was open, t weight bytes
                         * uploaded, d preview seconds, d step seconds); fds: pixels, one per image */
  DG_SVC_FAILED = 19,   /* (u job, u DG_ERROR code, s message); job 0: the connection is refused */
  DG_SVC_PREVIEW = 20,  /* (u job, i step, i n_steps, (iiii) image); fd: RGB pixels at latent size */
} DgSvcType;

/* GVariant types of the payloads (one place; protocol.c checks every frame against them). */
#define DG_SVC_SUBMIT_TYPE "(ussuuusbsiiidtuida(iiii)b(iiii)bbuu)"
#define DG_SVC_CANCEL_TYPE "(u)"
#define DG_SVC_ACCEPTED_TYPE "(uu)"
#define DG_SVC_PROGRESS_TYPE "(uuii)"
#define DG_SVC_DONE_TYPE "(ua(iiii)subtdd)"
#define DG_SVC_FAILED_TYPE "(uus)"
#define DG_SVC_PREVIEW_TYPE "(uii(iiii))"

typedef struct {
  int width, height, channels, rowstride;
} DgSvcImageDesc;

/* A parsed, validated frame. Strings point into @payload. */
typedef struct {
  DgSvcType type;
  guint32 job_id;
  GVariant *payload;
  int *fds; /* owned: closed by dg_svc_message_clear unless taken (set to -1) */
  guint n_fds;
  /* SUBMIT */
  const char *folder, *device, *prompt, *negative; /* folder NULL = synthetic, device NULL = default,
                                                    * negative NULL = default */
  gboolean synthetic;
  guint layers;    /* with synthetic: ≤ DG_CONFIG_MAX_LAYERS (0 = full depth); else 0 */
  guint n_results; /* 1 … DG_SERVICE_MAX_RESULTS: seeds seed … seed + n_results − 1 in one batch */
  DgPrecision precision;
  DgWeightFormat weights;
  DgRequest request; /* prompt, sizes, steps, guidance, seed, rng, feather, strength (no images) */
  DgSvcImageDesc images[DG_SVC_MAX_IMAGES];
  guint n_images;
  gboolean has_mask;
  DgSvcImageDesc mask;
  gboolean previews; /* the client wants PREVIEW frames */
  /* ACCEPTED */
  guint32 ahead;
  /* PROGRESS */
  DgStage stage;
  int step, n_steps;
  /* DONE (results[0 … n_results − 1]), PREVIEW (results[0], and step, n_steps) */
  DgSvcImageDesc results[DG_SERVICE_MAX_RESULTS];
  const char *device_name;
  gboolean model_was_open;
  guint64 uploaded;
  double preview_seconds, step_seconds;
  /* FAILED */
  guint32 code;
  const char *message;
} DgSvcMessage;

void dg_svc_message_clear (DgSvcMessage *m);

/* Checks a header: magic, a known type, the payload length and fd count within bounds.
 * DG_ERROR_FORMAT on failure. */
/* Raised when a payload changes its meaning but keeps its GVariant type (the types are hashed in
 * by themselves, see dg_svc_protocol_id). */
#define DG_SVC_REVISION 1

/* The wire format's identity: a hash of DG_SVC_MAGIC, DG_SVC_REVISION and every payload type. The
 * socket's name carries it (dg_service_socket_name), so a client never meets a service that speaks
 * another format: after an upgrade, a service of the old build still running idles out on its own
 * socket while the new client starts a new one. */
guint32 dg_svc_protocol_id (void);

gboolean dg_svc_header_parse (const guint8 header[DG_SVC_HEADER_SIZE], DgSvcType *type, guint *n_fds, guint32 *length,
                              GError **error);

/* Parses a payload of @type received with @n_fds descriptors into @out (which takes a reference to
 * @payload; @out->fds is left empty: the caller attaches them). DG_ERROR_FORMAT with the reason on
 * anything malformed: wrong GVariant type or non-normal form, values out of range, an fd count
 * that does not match. */
gboolean dg_svc_message_parse (DgSvcType type, GBytes *payload, guint n_fds, DgSvcMessage *out, GError **error);

/* Sends one frame (blocking up to a timeout: a peer that stops reading is an error), @fds
 * attached. @payload is consumed if floating. */
gboolean dg_svc_send (GSocket *socket, DgSvcType type, GVariant *payload, const int *fds, guint n_fds, GError **error);

/* Receives one frame into @out. FALSE with G_IO_ERROR_CLOSED at a clean end of stream before a
 * frame, G_IO_ERROR_CANCELLED when @cancellable fires, DG_ERROR_FORMAT on a malformed frame,
 * other G_IO_ERRORs from the socket. */
gboolean dg_svc_receive (GSocket *socket, DgSvcMessage *out, GCancellable *cancellable, GError **error);

/* ---- pixels through shared memory (shm.c) ---- */

/* A sealed memfd (no write, grow or shrink) holding @img's rows; -1 with DG_ERROR_OOM / _IO. */
int dg_svc_memfd_from_image (const DgImage *img, const char *name, GError **error);

/* Maps @fd read-only as an image described by @desc (@mask: one channel) after checking that it is
 * sealed against writing and shrinking and large enough. The DgImage's pixels point into the map:
 * free it with dg_svc_image_unmap. DG_ERROR_FORMAT when the fd or the description is wrong. */
DgImage *dg_svc_image_map (int fd, const DgSvcImageDesc *desc, gboolean mask, GError **error);
void dg_svc_image_unmap (DgImage *img);
