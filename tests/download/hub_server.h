/* A Hugging Face Hub in miniature for the download tests: a SoupServer on 127.0.0.1 (random
 * port, its own thread) that serves a model folder in the Hub's shape and misbehaves on request.
 *
 *   GET /api/models/REPO/tree/REV?recursive=true   the file list (sizes, lfs.oid / oid computed
 *                                                  at start), X-Repo-Commit
 *   GET|HEAD /REPO/resolve/REV/PATH                small files: the content (git blob id as
 *                                                  ETag); *.safetensors: 302 to /storage/SHA256
 *                                                  with X-Linked-Etag / X-Linked-Size
 *   GET /storage/SHA256                            the content, with Range (206)
 *   GET /api/models/REPO/revision/REV              {"sha": the commit}
 * REPO is "test/tiny-deepgen", REV "main" or the commit (HUB_COMMIT). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HUB_REPO "test/tiny-deepgen"
#define HUB_COMMIT "0123456789abcdef0123456789abcdef01234567"

typedef enum {
  HUB_CUT = 1 << 0,           /* the first body of the fault file stops halfway (connection closed) */
  HUB_BAD_HASH = 1 << 1,      /* the fault file's content has one byte changed, every time */
  HUB_BAD_HASH_ONCE = 1 << 2, /* ... the first time only */
  HUB_IGNORE_RANGE = 1 << 3,  /* Range is ignored: 200 and the whole file */
  HUB_SLOW = 1 << 4,          /* bodies trickle: 4 KiB (hub_server_set_slow_chunk) every 20 ms */
  HUB_NEED_TOKEN = 1 << 5,    /* the API and resolve answer 401 without "Bearer <token>" */
  HUB_FLAKY = 1 << 6,         /* the first two requests for the fault file's body get 503 */
  HUB_CROSS_HOST = 1 << 7,    /* redirects go to http://localhost:PORT (another host than 127.0.0.1) */
  HUB_NO_COMMIT = 1 << 8,     /* the tree answer has no X-Repo-Commit (GET /api/models/REPO/revision/REV
                              * tells it: {"sha": ...}) */
  HUB_STALL = 1 << 9,         /* the first body of the fault file stops halfway and stays open, silent */
  HUB_HUGE = 1 << 10,         /* the list has one more file of 1 PiB ("huge.bin") */
  HUB_PROXY_407 = 1 << 11,    /* as an HTTP proxy: every request gets 407 Proxy Authentication Required */
} HubFault;

typedef struct _HubServer HubServer;

HubServer *hub_server_new (const char *model_dir);
/* The same under another repository name (the front-ends ask for DG_DOWNLOAD_DEFAULT_REPO). */
HubServer *hub_server_new_repo (const char *model_dir, const char *repo);
void hub_server_free (HubServer *s);
/* "http://127.0.0.1:PORT" */
const char *hub_server_endpoint (HubServer *s);
/* Faults (HubFault bits) from now on; @path is the repository path of the fault file. Also
 * clears the request log and the once-only state. */
void hub_server_set_faults (HubServer *s, guint faults, const char *path, const char *token);

void hub_server_set_slow_chunk (HubServer *s, gsize bytes);

/* The request log since the last set_faults: the number of body requests (GET with 200/206,
 * or the start of a faulty one) for @path, and their Range headers joined by ',' ("-" for none). */
guint hub_server_bodies (HubServer *s, const char *path);
char *hub_server_ranges (HubServer *s, const char *path);
/* The revisions that resolve requests named, sorted, joined by ','. */
char *hub_server_resolve_revisions (HubServer *s);
/* Whether a storage request carried an Authorization header (it must not when cross-host). */
gboolean hub_server_storage_saw_token (HubServer *s);

G_END_DECLS
