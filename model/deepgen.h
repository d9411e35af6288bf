/* DeepGen public API: the one header the CLI, the GTK panel, deepgen-studio and the GIMP
 * plug-ins use (DESIGN.md §2). Small and stable on purpose; everything else in model/ is
 * internal.
 *
 *   g_autoptr (DgEngine) e = dg_engine_new (NULL, &error);         picks a Vulkan device
 *   g_autoptr (DgModel)  m = dg_model_open (e, dir, NULL, &error);  validates the folder
 *   DgRequest r = DG_REQUEST_INIT;  r.job = DG_JOB_GENERATE;  r.prompt = "a red fox";
 *   g_autoptr (DgImage) img = dg_run (m, &r, on_progress, ui, cancellable, &error);
 *
 * Errors are GErrors in the DG_ERROR domain (dg_error.h) with messages a user can act on.
 * Images are 8-bit sRGB, RGB or RGBA, row-major, top row first. */
#pragma once

#include <gio/gio.h>
#include <glib.h>

#include "dg_error.h"

G_BEGIN_DECLS

/* ---- images ------------------------------------------------------------------------- */

typedef struct {
  int width, height;
  int channels;        /* 3 (RGB) or 4 (RGBA); alpha is carried through, never generated */
  int rowstride;       /* bytes per row, >= width * channels */
  guint8 *pixels;
} DgImage;

/* NULL when the pixels cannot be allocated (layer-sized images can be huge). */
DgImage *dg_image_new (int width, int height, int channels);
DgImage *dg_image_copy (const DgImage *img);
void dg_image_free (DgImage *img);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgImage, dg_image_free)

/* A soft mask: one 8-bit channel, 255 = change fully, 0 = keep exactly. */
typedef DgImage DgMask;   /* channels == 1 */
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgMask, dg_image_free)

/* ---- engine and model ---------------------------------------------------------------- */

typedef struct _DgEngine DgEngine;
typedef struct _DgModel DgModel;

typedef struct {
  const char *device;       /* Vulkan device index or name fragment; NULL = DEEPGEN_VK_DEVICE or best */
} DgEngineOptions;

DgEngine *dg_engine_new (const DgEngineOptions *options, GError **error);
void dg_engine_free (DgEngine *engine);
/* "NVIDIA GeForce RTX 4060 (8.0 GiB), Vulkan 1.3" */
const char *dg_engine_device_name (DgEngine *engine);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgEngine, dg_engine_free)

typedef enum {
  DG_PRECISION_BF16,        /* the reference precision policy (MODEL.md §10); default */
  DG_PRECISION_F32,         /* fp32 everywhere: for parity tests and debugging */
} DgPrecision;

/* How the big Linear layers (VLM, connector and DiT; not the VAE) are stored on the GPU. */
typedef enum {
  DG_WEIGHTS_RELEASED,      /* as the precision says (bf16 or f32): the reference numerics; default */
  DG_WEIGHTS_Q8_0,          /* quantized to 8 bits at load (ggml's q8_0: blocks of 32 weights with
                             * an f16 scale, 1.125 bytes a weight): about half the GPU memory of bf16
                             * for a small change in the images; layers whose input width is not a
                             * multiple of 32 stay as released */
  DG_WEIGHTS_AUTO,          /* released when the run fits the device, else q8_0, else q4_0 (dg_run
                             * decides per run from the memory plan) */
  DG_WEIGHTS_Q4_0,          /* smaller still, for 4 GB cards: the VLM's Linear layers in 4 bits
                             * (ggml's q4_0, 0.625 bytes a weight), the connector's and the DiT's in
                             * 8 (q8_0) — the text encoder tolerates 4 bits, the image model keeps 8 */
} DgWeightFormat;

typedef struct {
  DgPrecision precision;
  DgWeightFormat weights;
} DgLoadOptions;

#define DG_LOAD_OPTIONS_INIT { DG_PRECISION_BF16, DG_WEIGHTS_RELEASED }

/* Checks a model folder without loading weights: NULL when complete, else a newline-separated
 * list of what is missing, for messages ("vlm/model-00002-of-00002.safetensors"). */
char *dg_model_folder_missing (const char *path);
/* DG_WEIGHTS_Q8_0 for a folder whose weights are 8-bit already (written by `deepgen convert`),
 * else DG_WEIGHTS_RELEASED (also for a folder that cannot be read). Reads the weight headers. */
DgWeightFormat dg_model_folder_weights (const char *path);
/* The default model folder: $DEEPGEN_MODEL, else <user data dir>/deepgen/DeepGen-1.0-diffusers. */
char *dg_model_default_path (void);

/* Opens and validates a DeepGen-1.0-diffusers folder (configs, tokenizer, every weight header).
 * Weights are mapped, not read; each stage uploads its component when it runs. */
DgModel *dg_model_open (DgEngine *engine, const char *path, const DgLoadOptions *options, GError **error);
void dg_model_free (DgModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgModel, dg_model_free)
/* The weight format the last dg_run / dg_run_batch used (RELEASED or Q8_0; what AUTO chose),
 * RELEASED before the first run. For messages such as "used 8-bit weights to fit the GPU". */
DgWeightFormat dg_model_last_run_weights (DgModel *model);

/* ---- requests ----------------------------------------------------------------------- */

typedef enum {
  DG_JOB_GENERATE,          /* prompt → image of width × height */
  DG_JOB_EDIT,              /* instruction + 1..n reference images → image */
  DG_JOB_INPAINT,           /* instruction + image + mask → image equal to the input outside the mask */
} DgJob;

typedef enum {
  DG_RNG_PHILOX,            /* built-in counter-based generator: same noise on every machine */
  DG_RNG_TORCH_CPU,         /* reproduces torch.randn on the CPU for a seed (matches reference seeds) */
} DgRng;

typedef struct {
  DgJob job;
  const char *prompt;               /* UTF-8; required */
  const char *negative_prompt;      /* NULL = the model's default for the job (MODEL.md §1.1) */
  const DgImage *const *images;     /* edit: references; inpaint: images[0] is the source */
  guint n_images;
  const DgMask *mask;               /* inpaint only: same size as images[0] */
  int width, height;                /* 0 = default: 512×512 for generate; edit/inpaint follow the input */
  int steps;                        /* 0 = 50 */
  double guidance;                  /* < 0 = 4.0; <= 1 disables classifier-free guidance */
  guint64 seed;
  DgRng rng;
  int feather;                      /* inpaint: edge blend radius in pixels; < 0 = default */
} DgRequest;

#define DG_REQUEST_INIT { DG_JOB_GENERATE, NULL, NULL, NULL, 0, NULL, 0, 0, 0, -1.0, 42, DG_RNG_PHILOX, -1 }

typedef enum {
  DG_STAGE_LOAD,            /* uploading a component's weights */
  DG_STAGE_ENCODE,          /* tokenizer + vision tower + language model */
  DG_STAGE_BRIDGE,          /* stacked channel bridging connector */
  DG_STAGE_DENOISE,         /* DiT steps */
  DG_STAGE_DECODE,          /* VAE */
} DgStage;

const char *dg_stage_name (DgStage stage);   /* translated, for progress text */

/* Called from the thread that runs dg_run, between GPU submissions. */
typedef void (*DgProgressFunc) (DgStage stage, int step, int n_steps, gpointer user_data);

/* Runs one request. Cancellation is checked between GPU submissions and ends in
 * DG_ERROR_CANCELLED. A job whose memory plan (DESIGN.md §5: the peak device memory of its
 * stages, computed from the configs) exceeds the device's memory is refused before anything
 * is uploaded, with DG_ERROR_OOM and a message naming the needed and available sizes. The
 * result has the input's channel count for edit/inpaint, RGB for generate. Thread-safe per
 * model: one dg_run at a time per DgModel. */
DgImage *dg_run (DgModel *model, const DgRequest *request, DgProgressFunc progress, gpointer user_data,
                 GCancellable *cancellable, GError **error);

/* Several requests in one batch (e.g. variations of a prompt): they run through every stage
 * together, which is faster than one by one on a GPU with room to spare. All requests must
 * have the same job and resolve to the same output size; guidance, steps, seed and rng of the
 * first request apply to the batch (the initial noise is drawn for the whole batch at once,
 * as torch.randn([B, C, h, w]) would). Note that, as in the reference, prompts of different
 * token lengths are left-padded together, so a request's result depends (slightly) on the
 * others in its batch. The memory check covers the whole batch (2B prompt rows, 2B DiT rows).
 * Returns a GPtrArray of DgImage* in request order. */
GPtrArray *dg_run_batch (DgModel *model, const DgRequest *const *requests, guint n_requests,
                         DgProgressFunc progress, gpointer user_data, GCancellable *cancellable, GError **error);

/* Output size rules (MODEL.md §1.4, §7): sides multiples of 16, area near the request. */
void dg_output_size (const DgRequest *request, int *width, int *height);

G_END_DECLS
