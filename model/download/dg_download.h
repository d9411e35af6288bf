/* Downloading the DeepGen model from the Hugging Face Hub (issue #12). A PUBLIC header of
 * model/, like deepgen.h and dg_error.h: the CLI (`deepgen download`), the panel and
 * deepgen-studio include it. Host-only: libsoup 3, GChecksum and json-glib, no Vulkan.
 *
 * The protocol is the Hub's own, so any mirror that speaks it works (HF_ENDPOINT):
 *   GET {endpoint}/api/models/{repo}/tree/{revision}?recursive=true
 *       the files with their sizes and hashes (lfs.oid = sha256 for large files, oid = the git
 *       blob sha1 for small ones); the X-Repo-Commit header pins the download to one commit;
 *   GET {endpoint}/{repo}/resolve/{commit}/{path}
 *       each file, redirected to the storage host (the redirect carries X-Linked-Etag and
 *       X-Linked-Size for large files), resumed with "Range: bytes=N-".
 *
 * What it guarantees:
 *   - a file appears under its name in the model folder only once its whole content matches
 *     the hash the Hub lists (it is streamed into DIR/.cache/deepgen-download/PATH.part, hashed
 *     while it arrives, fsync'ed and renamed into place); a mismatch is fetched again once,
 *     then reported with the file's name; nothing half-written is ever left under a real name;
 *   - an interrupted download (cut connection, cancel, a killed process, a full disk) resumes
 *     where it stopped: the next attempt or run asks for the missing bytes only; a server that
 *     ignores Range restarts that one file;
 *   - a second run over a complete folder transfers nothing (it re-hashes what is there);
 *   - the free disk space is checked against what is still needed before anything is fetched.
 * Validating the result as a model (dg_model_folder_missing, dg_model_open in deepgen.h) is the
 * caller's: it knows whether a GPU is there to open it with. */
#pragma once

#include <gio/gio.h>
#include <glib.h>

G_BEGIN_DECLS

#define DG_DOWNLOAD_ERROR (dg_download_error_quark ())

/* Cancellation is DG_ERROR_CANCELLED (dg_error.h), as everywhere in model/. */
typedef enum {
  DG_DOWNLOAD_ERROR_NETWORK,   /* the server cannot be reached (no network, DNS, timeouts, TLS) */
  DG_DOWNLOAD_ERROR_PROXY,     /* the proxy (GIO's proxy resolver) refused or needs credentials */
  DG_DOWNLOAD_ERROR_AUTH,      /* 401/403: a token is needed, or the token has no access */
  DG_DOWNLOAD_ERROR_NOT_FOUND, /* 404: no such repository, revision or file */
  DG_DOWNLOAD_ERROR_SERVER,    /* 5xx / 429 that persisted through the retries */
  DG_DOWNLOAD_ERROR_PROTOCOL,  /* an answer that is not what the Hub sends */
  DG_DOWNLOAD_ERROR_CHECKSUM,  /* a file's content does not match its hash, twice */
  DG_DOWNLOAD_ERROR_NO_SPACE,  /* not enough disk space (checked first; also a write that fails) */
  DG_DOWNLOAD_ERROR_IO,        /* a local file cannot be written or renamed */
} DgDownloadError;

GQuark dg_download_error_quark (void);

#define DG_DOWNLOAD_DEFAULT_ENDPOINT "https://huggingface.co"
#define DG_DOWNLOAD_DEFAULT_REPO "deepgenteam/DeepGen-1.0-diffusers"
#define DG_DOWNLOAD_DEFAULT_REVISION "main"
/* The released folder's size, for buttons and messages before the file list is known. */
#define DG_DOWNLOAD_MODEL_BYTES G_GUINT64_CONSTANT (14400000000)

typedef enum {
  DG_DOWNLOAD_PHASE_LISTING,  /* asking the Hub for the file list */
  DG_DOWNLOAD_PHASE_FETCHING, /* checking present files and fetching the others */
  DG_DOWNLOAD_PHASE_DONE,     /* every file is in place and verified */
} DgDownloadPhase;

typedef struct {
  DgDownloadPhase phase;
  guint64 done_bytes;        /* verified, or received into .part files (earlier runs included) */
  guint64 total_bytes;       /* of all files; 0 while listing */
  guint64 transferred_bytes; /* received over the network by this run */
  double bytes_per_second;   /* recent network speed; 0 = not known yet */
  double seconds_left;       /* at that speed; < 0 = not known */
  guint files_done, n_files;
  const char *file; /* a file being worked on (repository path), or NULL */
} DgDownloadProgress;

/* Called from the thread that runs dg_download_model, a few times a second and at the end. */
typedef void (*DgDownloadProgressFunc) (const DgDownloadProgress *progress, gpointer user_data);

typedef struct {
  const char *endpoint; /* NULL = $HF_ENDPOINT, else DG_DOWNLOAD_DEFAULT_ENDPOINT */
  const char *repo;     /* NULL = DG_DOWNLOAD_DEFAULT_REPO */
  const char *revision; /* branch, tag or commit; NULL = "main" */
  const char *token;    /* NULL = dg_download_find_token () */
  guint parallel;       /* files fetched at once; 0 = 4 */
  guint attempts;       /* tries per file that make no progress; 0 = 6 */
  guint timeout_s;      /* a connection or read that stalls this long fails; 0 = 60 */
  guint backoff_ms;     /* the first retry's delay, doubled each time, at most 30 s; 0 = 1000 */
  DgDownloadProgressFunc progress;
  gpointer user_data;
  GProxyResolver *proxy_resolver; /* NULL = GIO's default (http_proxy & co. or the desktop's settings) */
} DgDownloadOptions;

#define DG_DOWNLOAD_OPTIONS_INIT { NULL, NULL, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL }

typedef struct {
  char *commit; /* the commit every file came from */
  guint n_files;
  guint files_fetched; /* fetched (or completed) by this run */
  guint files_present; /* already in place and verified */
  guint64 total_bytes;
  guint64 transferred_bytes; /* over the network by this run */
} DgDownloadResult;

void dg_download_result_clear (DgDownloadResult *result);

/* Downloads the repository's files into @dir (created when missing), resuming what an earlier
 * run left. @result (may be NULL) is filled on success. Errors: DG_DOWNLOAD_ERROR (above),
 * DG_ERROR_CANCELLED (the .part files stay for the next run), DG_ERROR_INVALID_ARGUMENT (a
 * malformed endpoint, repository or revision). Blocking: run it off the GUI thread. */
gboolean dg_download_model (const char *dir, const DgDownloadOptions *options, GCancellable *cancellable,
                            DgDownloadResult *result, GError **error);

/* The Hub token: $HF_TOKEN, else the file $HF_TOKEN_PATH, else $HF_HOME/token, else
 * $XDG_CACHE_HOME/huggingface/token or ~/.cache/huggingface/token; NULL when there is none. */
char *dg_download_find_token (void);

/* The bytes a download into @dir still has in .part files (0 when none): lets a front-end say
 * "Resume" instead of "Download". */
guint64 dg_download_partial_bytes (const char *dir);

/* "1.2 GB of 14.4 GB, 25.3 MB/s, 9 min left" (translated), for progress bars and the CLI. */
char *dg_download_progress_text (const DgDownloadProgress *progress);

G_END_DECLS
