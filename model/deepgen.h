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
  int channels;  /* 3 (RGB) or 4 (RGBA); alpha is carried through, never generated */
  int rowstride; /* bytes per row, >= width * channels */
  guint8 *pixels;
} DgImage;

/* NULL when the pixels cannot be allocated (layer-sized images can be huge). */
DgImage *dg_image_new (int width, int height, int channels);
DgImage *dg_image_copy (const DgImage *img);
void dg_image_free (DgImage *img);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgImage, dg_image_free)

/* A soft mask: one 8-bit channel, 255 = change fully, 0 = keep exactly. */
typedef DgImage DgMask; /* channels == 1 */
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgMask, dg_image_free)

/* ---- engine and model ---------------------------------------------------------------- */

typedef struct _DgEngine DgEngine;
typedef struct _DgModel DgModel;

typedef struct {
  const char *device; /* Vulkan device index or name fragment; NULL = DEEPGEN_VK_DEVICE or best */
} DgEngineOptions;

DgEngine *dg_engine_new (const DgEngineOptions *options, GError **error);
void dg_engine_free (DgEngine *engine);
/* "NVIDIA GeForce RTX 4060 (8.0 GiB), Vulkan 1.3" */
const char *dg_engine_device_name (DgEngine *engine);
/* What the device is and supports, several lines (`deepgen info`). */
char *dg_engine_describe (DgEngine *engine);
/* The device-local memory in bytes (what the memory plan is checked against). */
guint64 dg_engine_device_bytes (DgEngine *engine);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgEngine, dg_engine_free)

typedef enum {
  DG_PRECISION_BF16, /* the reference precision policy (MODEL.md §10); default */
  DG_PRECISION_F32,  /* fp32 everywhere: for parity tests and debugging */
} DgPrecision;

/* How the big Linear layers (VLM, connector and DiT; not the VAE) are stored on the GPU. */
typedef enum {
  DG_WEIGHTS_RELEASED, /* as the precision says (bf16 or f32): the reference numerics; default */
  DG_WEIGHTS_Q8_0,     /* quantized to 8 bits at load (ggml's q8_0: blocks of 32 weights with
                             * an f16 scale, 1.125 bytes a weight): about half the GPU memory of bf16
                             * for a small change in the images; layers whose input width is not a
                             * multiple of 32 stay as released */
  DG_WEIGHTS_AUTO,     /* released when the run fits the device, else q8_0, else q4_0 (dg_run
                             * decides per run from the memory plan) */
  DG_WEIGHTS_Q4_0,     /* smaller still, for 4 GB cards: the VLM's Linear layers in 4 bits
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
/* The synthetic DeepGen 1.0: the released architecture with deterministic random weights made
 * in memory from @seed (no files, no download), for benchmarks and checks at the real widths
 * (`deepgen bench --synthetic`). Everything else is as dg_model_open: the same loaders, memory
 * plan and pipeline. @layers 0 is the full depth; N > 0 keeps the real widths with N layers
 * (blocks) per component (the LLM at least 2, the VAE whole). Its images are noise. */
DgModel *dg_model_open_synthetic (DgEngine *engine, guint layers, guint64 seed, const DgLoadOptions *options,
                                  GError **error);
void dg_model_free (DgModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgModel, dg_model_free)
/* Whether every weight file is still the one dg_model_open read (same file, size, modification
 * and status-change times): FALSE with DG_ERROR_IO naming the first that was rewritten, replaced
 * or removed since. Every run checks this before it starts and before it returns its images;
 * a program that keeps a model open checks it to reopen the model instead of failing a run. */
gboolean dg_model_check_files (DgModel *model, GError **error);
/* The weight format the last dg_run / dg_run_batch used (RELEASED or Q8_0; what AUTO chose),
 * RELEASED before the first run. For messages such as "used 8-bit weights to fit the GPU". */
DgWeightFormat dg_model_last_run_weights (DgModel *model);

/* ---- requests ----------------------------------------------------------------------- */

typedef enum {
  DG_JOB_GENERATE, /* prompt → image of width × height */
  DG_JOB_EDIT,     /* instruction + 1..n reference images → image */
  DG_JOB_INPAINT,  /* instruction + image + mask → image equal to the input outside the mask */
} DgJob;

typedef enum {
  DG_RNG_PHILOX,    /* built-in counter-based generator: same noise on every machine */
  DG_RNG_TORCH_CPU, /* reproduces torch.randn on the CPU for a seed (matches reference seeds) */
} DgRng;

typedef struct {
  DgJob job;
  const char *prompt;           /* UTF-8; required */
  const char *negative_prompt;  /* NULL = the model's default for the job (MODEL.md §1.1) */
  const DgImage *const *images; /* edit: references; inpaint: images[0] is the source */
  guint n_images;
  const DgMask *mask; /* inpaint only: same size as images[0] */
  int width, height;  /* 0 = default: 512×512 for generate; edit/inpaint follow the input */
  int steps;          /* 0 = 50 */
  double guidance;    /* < 0 = 4.0; <= 1 disables classifier-free guidance */
  guint64 seed;
  DgRng rng;
  int feather; /* inpaint: edge blend radius in pixels; < 0 = default */
  /* Change strength, edit and inpaint (DESIGN.md §6): 1 (the default) starts from pure noise
   * and follows the instruction freely; below 1 the sampler starts later in its schedule, from
   * the source's latent noised to that point, as diffusers' SD3 img2img does (small values keep
   * the composition). The source is images[0], whose prepared size must be the output size.
   * In (0, 1]; generate takes 1 only. Batches: request 0's applies. */
  double strength;
} DgRequest;

/* What steps 0 and guidance < 0 mean (the official defaults). */
#define DG_DEFAULT_STEPS 50
#define DG_DEFAULT_GUIDANCE 4.0

#define DG_REQUEST_INIT { DG_JOB_GENERATE, NULL, NULL, NULL, 0, NULL, 0, 0, 0, -1.0, 42, DG_RNG_PHILOX, -1, 1.0 }

typedef enum {
  DG_STAGE_LOAD,    /* uploading a component's weights */
  DG_STAGE_ENCODE,  /* tokenizer + vision tower + language model */
  DG_STAGE_BRIDGE,  /* stacked channel bridging connector */
  DG_STAGE_DENOISE, /* DiT steps */
  DG_STAGE_DECODE,  /* VAE */
} DgStage;

const char *dg_stage_name (DgStage stage); /* translated, for progress text */

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
 * have the same job and resolve to the same output size; guidance, steps, strength and rng of the
 * first request apply to the batch. When all requests have the same seed the initial noise is
 * drawn for the whole batch at once, as torch.randn([B, C, h, w]) would; requests with different
 * seeds (variations: seed, seed + 1, …) each get the noise of their own seed, as dg_run of that
 * request alone would draw it. Note that, as in the reference, prompts of different
 * token lengths are left-padded together, so a request's result depends (slightly) on the
 * others in its batch. The memory check covers the whole batch (2B prompt rows, 2B DiT rows).
 * Returns a GPtrArray of DgImage* in request order. */
GPtrArray *dg_run_batch (DgModel *model, const DgRequest *const *requests, guint n_requests, DgProgressFunc progress,
                         gpointer user_data, GCancellable *cancellable, GError **error);

/* ---- describing an image (model/pipeline/describe_api.c, MODEL.md §13) ------------------ */

/* The VLM writes a caption of @image (RGB or RGBA; alpha dropped): the image is prepared like
 * an edit reference with a longest side of DG_DESCRIBE_SIDE (dg_reference_size, PIL bicubic),
 * the prompt is Qwen2.5-VL's chat template with @instruction (NULL or blank: "Describe this
 * image in one sentence."), and greedy decoding writes at most @max_tokens tokens (<= 0: 77),
 * stopping at the end-of-turn token. Returns the caption, newly allocated (g_free); an empty
 * string when the model ended its turn at once. Progress: DG_STAGE_LOAD while the VLM uploads,
 * then DG_STAGE_ENCODE with step = tokens written of n_steps = @max_tokens. Cancellation is
 * checked between tokens (DG_ERROR_CANCELLED); a job whose memory plan exceeds the device is
 * refused before anything is uploaded (DG_ERROR_OOM). One run at a time per model, like dg_run. */
#define DG_DESCRIBE_SIDE 512
char *dg_describe (DgModel *model, const DgImage *image, const char *instruction, int max_tokens,
                   DgProgressFunc progress, gpointer user_data, GCancellable *cancellable, GError **error);

/* ---- reproducible results (model/io/job_params.c) ----------------------------------- */

/* What made a result, carried with it so that it can be run again (DESIGN.md §6): a PNG text
 * chunk of this keyword (CLI, deepgen-studio) and a GIMP parasite of this name on the result
 * layer, both holding dg_job_params_to_string. The source images are not part of it. */
#define DG_JOB_PARAMS_KEY "deepgen-parameters"

typedef struct {
  DgJob job;
  char *prompt;
  char *negative_prompt; /* NULL = the model's default for the job */
  guint64 seed;
  DgRng rng;
  int steps;       /* as run: 50 for a request's 0 */
  double guidance; /* as run: 4.0 for a request's < 0 */
  double strength;
  int width, height; /* the request's size (0 = the default); what to pass again */
  DgPrecision precision;
  DgWeightFormat weights; /* the format the run used (RELEASED, Q8_0 or Q4_0) */
  char *model_revision;   /* the model's commit when known, else NULL */
} DgJobParams;

/* A new DgJobParams from @request (strings copied; steps and guidance resolved to what runs). */
DgJobParams *dg_job_params_new (const DgRequest *request, DgPrecision precision, DgWeightFormat weights);
void dg_job_params_free (DgJobParams *params);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgJobParams, dg_job_params_free)
/* One line of JSON: {"deepgen-parameters":1,"job":"generate","prompt":…,"seed":…}. */
char *dg_job_params_to_string (const DgJobParams *params);
/* Parses dg_job_params_to_string's text (untrusted: a file's chunk, a parasite). Unknown keys are
 * ignored (later versions may add some); a missing required key, a wrong type or a value out of
 * range is DG_ERROR_FORMAT naming it. */
DgJobParams *dg_job_params_from_string (const char *text, GError **error);
/* The request that runs @params again (strings borrowed from @params; images, mask and feather
 * left as DG_REQUEST_INIT has them: the caller adds the sources of edit and inpaint). */
void dg_job_params_to_request (const DgJobParams *params, DgRequest *request);

/* Output size rules (MODEL.md §1.4, §7): sides multiples of 16, area near the request. */
void dg_output_size (const DgRequest *request, int *width, int *height);

/* ---- image operations (model/image/image.c) ------------------------------------------ */

/* The DiT's latent token grid is at most 384 × 384 (MODEL.md §7): 384 tokens × 2 (patch) × 8 (VAE). */
#define DG_MAX_SIDE 6144

/* The size a reference image of @width × @height is resized to before the model sees it: the
 * aspect-keeping rule of the reference model's resize_image (MODEL.md §1.4). @target is the
 * longest side allowed, max(H_out, W_out); it is first rounded to the nearest multiple of 32
 * (the official code takes it as given; any other value would break the 2×2 patches).
 *  - longest side ≥ target: the longest side becomes target, the other side is
 *    ceil(other · (target / longest) / 32) · 32 computed in IEEE double exactly as the official
 *    Python does it — so sometimes 32 px more than the exact quotient, and for targets that are
 *    not powers of two a short side of target + 32 is possible (1092² at 768 → 768×800);
 *  - otherwise both sides are rounded UP to multiples of 32 (1×1 → 32×32).
 * Every side is a multiple of 32, at least 32 and at most DG_MAX_SIDE. */
void dg_reference_size (int width, int height, int target, int *out_width, int *out_height);

/* The size dg_run produces for @request (MODEL.md §1.4, §7), and the checks on it:
 *  - generate: width × height (0 = 512), each rounded to the nearest multiple of 16;
 *  - edit, one reference: the reference's prepared size, dg_reference_size with target =
 *    max(width, height) of the request (both 0 = 512);
 *  - edit, several references: as generate (each reference is prepared with that target);
 *  - inpaint: the source image's size (the model works on a crop, see inpaint.h).
 * Requested sides must be 0 or 1 … DG_MAX_SIDE; edit and inpaint need their images. On failure
 * DG_ERROR_INVALID_ARGUMENT with a message that says what to change, and *width = *height = 0.
 * dg_output_size (deepgen.h) is this without the error. */
gboolean dg_output_size_checked (const DgRequest *request, int *width, int *height, GError **error);

/* Checks an image handed in by a caller: pixels present, sides ≥ 1, rowstride large enough,
 * size not overflowing, channels 3 or 4 (or 1 when @mask). @what names it in the message
 * ("the source image"). DG_ERROR_INVALID_ARGUMENT on failure. */
gboolean dg_image_check (const DgImage *img, gboolean mask, const char *what, GError **error);

/* A new image holding the @width × @height rectangle at (@x, @y), which must lie inside @img. */
DgImage *dg_image_crop (const DgImage *img, int x, int y, int width, int height);

/* A new RGB image: the colour channels of @img, alpha dropped (not composited on anything:
 * the colour under a transparent pixel is what the model sees). */
DgImage *dg_image_to_rgb (const DgImage *img);

/* @rgb (3 or 4 channels) with the alpha of @src: a copy of @rgb when @src has none; @src's alpha
 * unchanged when the sizes match, else @src's alpha resized to @rgb's size (PIL bicubic). For
 * edit results, whose size can differ from the source. */
DgImage *dg_image_with_alpha_of (const DgImage *rgb, const DgImage *src);

typedef enum {
  DG_RESAMPLE_NEAREST,
  DG_RESAMPLE_BILINEAR,
  DG_RESAMPLE_BICUBIC, /* PIL's default for Image.resize, used for reference images */
  DG_RESAMPLE_LANCZOS,
} DgResample;

/* PIL's Image.resize (reducing_gap=None) as Pillow 13 computes it, bit for bit, for 1-, 3- and
 * 4-channel images: a separable two-pass convolution through an 8-bit intermediate whose kernel
 * support is widened by the downscale factor, so downscaling antialiases; weights in 22-bit fixed
 * point, sums rounded and clipped like libImaging/Resample.c. RGBA is resized premultiplied
 * (PIL's "RGBa" round trip) except with NEAREST; a same-size resize is a copy. NEAREST
 * reproduces PIL's affine scale (sample centres accumulated in double). Sides ≥ 1. */
DgImage *dg_image_resize (const DgImage *img, int width, int height, DgResample filter);

/* ---- inpainting (model/image/inpaint.c, DESIGN.md §6) --------------------------------- */

#define DG_INPAINT_DEFAULT_FEATHER 8
#define DG_INPAINT_MAX_FEATHER 255
#define DG_INPAINT_MAX_WORK_SIDE 2048

typedef struct {
  int target_area;         /* working area in pixels; <= 0 = 512 · 512 (MODEL.md §1.1) */
  double context;          /* padding per side as a fraction of the box's longer side; < 0 = 0.25 */
  int min_context;         /* padding per side at least this, in source pixels; < 0 = 32 */
  double max_upscale;      /* working side / crop side at most this; <= 0 = 2 */
  double max_aspect;       /* grow the crop to long/short <= this where possible; < 1 = 2 */
  int feather;             /* edge blend radius in source pixels, 0 = hard edge; < 0 = default (8) */
  gboolean empty_is_whole; /* an empty or NULL mask means the whole image instead of an error */
} DgInpaintOptions;

#define DG_INPAINT_OPTIONS_INIT { 0, -1.0, -1, 0.0, 0.0, -1, FALSE }

typedef struct {
  int image_width, image_height;
  int box_x, box_y, box_width, box_height;     /* bounding box of mask > 0 */
  int crop_x, crop_y, crop_width, crop_height; /* what the model sees, in the source */
  int work_width, work_height;                 /* the model's resolution, multiples of 32 */
  int feather;                                 /* effective ramp width, 3 · blur_half */
  int blur_half;                               /* k: half-width of each box pass */
  gboolean whole;                              /* empty mask taken as the whole image */
} DgInpaintPlan;

/* Plans an inpaint of @src (RGB or RGBA) under @mask (one channel, the size of @src; NULL or
 * empty: see empty_is_whole). @options NULL = defaults. DG_ERROR_INVALID_ARGUMENT on bad input
 * or an empty mask (unless empty_is_whole). */
gboolean dg_inpaint_plan (const DgImage *src, const DgMask *mask, const DgInpaintOptions *options, DgInpaintPlan *plan,
                          GError **error);

/* The model's input: the crop, alpha dropped, PIL bicubic to work_width × work_height (RGB). */
DgImage *dg_inpaint_prepare (const DgImage *src, const DgInpaintPlan *plan);

/* The same composite as a new crop-sized image (the source's channels), for callers that place
 * it at (crop_x, crop_y) themselves, e.g. as a GIMP layer. */
DgImage *dg_inpaint_blend (const DgImage *src, const DgMask *mask, const DgInpaintPlan *plan, const DgImage *generated,
                           GError **error);

/* ---- expanding the canvas (outpainting; model/image/expand.c, DESIGN.md §6) ------------- */

/* Expand is an inpaint of a larger canvas: the old image at (left, top), the new area around it
 * as the mask. dg_expand_plan checks the sizes, dg_expand_canvas and dg_expand_mask make the
 * inpaint's image and mask, and the inpaint (dg_run's DG_JOB_INPAINT, or dg_inpaint_plan …
 * dg_inpaint_blend) keeps every old pixel bit for bit, since the mask is 0 there. */

/* The largest canvas side an expand makes. The model sees the whole new area at a working size
 * near 512², so a larger canvas only shrinks the old image to a speck in what it sees; and the
 * composite holds a few canvas-sized images (an RGBA 16384² canvas is 1 GiB). */
#define DG_EXPAND_MAX_SIDE 16384

typedef struct {
  int left, top, right, bottom; /* pixels added on each side, >= 0 */
} DgExpandSides;

typedef struct {
  int image_width, image_height;   /* the old image */
  int canvas_width, canvas_height; /* the new canvas: image + left + right, image + top + bottom */
  int image_x, image_y;            /* where the old image lies on it: (left, top) */
} DgExpandPlan;

/* The sides that bring @width × @height to the aspect ratio @aspect_width : @aspect_height by
 * growing one axis only, to the nearest pixel (halves up): the wider of the two needed canvases
 * is never made. The added pixels are split evenly, the odd one to the right or bottom.
 * DG_ERROR_INVALID_ARGUMENT for sizes or ratio terms below 1 or above DG_EXPAND_MAX_SIDE, and
 * when the image already has that aspect to the pixel (nothing to add). */
gboolean dg_expand_sides_for_aspect (int width, int height, int aspect_width, int aspect_height, DgExpandSides *sides,
                                     GError **error);
/* "W:H" (also "WxH" and "W/H"; positive integers) → the two terms; DG_ERROR_INVALID_ARGUMENT
 * with a message naming @text otherwise. */
gboolean dg_expand_parse_aspect (const char *text, int *aspect_width, int *aspect_height, GError **error);

/* The plan for growing @width × @height by @sides. DG_ERROR_INVALID_ARGUMENT for a negative
 * side, no side at all (nothing to add), an image side below 1, and a canvas side above
 * DG_EXPAND_MAX_SIDE, each with a message that says what to change. */
gboolean dg_expand_plan (int width, int height, const DgExpandSides *sides, DgExpandPlan *plan, GError **error);

/* The canvas the inpaint starts from (the source's channels): @src at (image_x, image_y), every
 * new pixel a copy of the nearest old one (the model continues the colours at the border instead
 * of reading a flat frame), alpha 255 there (the new area is opaque). NULL when the pixels
 * cannot be allocated. @src must be plan's image size. */
DgImage *dg_expand_canvas (const DgImage *src, const DgExpandPlan *plan);
/* The inpaint mask: 255 over the new area, 0 over the old image (canvas-sized). NULL when it
 * cannot be allocated. */
DgMask *dg_expand_mask (const DgExpandPlan *plan);
/* The instruction the model gets (English, as the model reads it): the fixed request to extend
 * the picture into its border, followed by @prompt when it is not blank (what should appear
 * there). Newly allocated. */
char *dg_expand_instruction (const char *prompt);

/* ---- the memory plan and FLOP counts (model/plan/plan.c, DESIGN.md §5) ---------------- */

/* The architecture a plan is computed for, from configs only (opaque here). */
typedef struct _DgPlanModel DgPlanModel;

/* DeepGen 1.0 as released (the configs of tests/data/deepgen-1.0-configs). */
DgPlanModel *dg_plan_model_new (void);
/* The architecture of a model folder from its configs (and the connector's meta-query count).
 * Errors: those of the config loaders (DG_ERROR_MISSING, _FORMAT, _CONFIG, _UNSUPPORTED). */
DgPlanModel *dg_plan_model_new_from_folder (const char *folder, GError **error);
void dg_plan_model_free (DgPlanModel *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgPlanModel, dg_plan_model_free)
/* The architecture of an open model (its configs), for its plans and FLOP counts. */
DgPlanModel *dg_model_architecture (DgModel *model);
/* Whether @a and @b have the same architecture (layer counts and widths of every component). */
gboolean dg_plan_model_same_architecture (const DgPlanModel *a, const DgPlanModel *b);
/* Meta queries appended to every LLM row (128 for DeepGen 1.0). */
guint dg_plan_model_n_queries (const DgPlanModel *m);

/* What DG_WEIGHTS_AUTO tries after the released weights, smallest last: Q8_0, then Q4_0. */
const DgWeightFormat *dg_plan_auto_fallbacks (guint *n);

typedef enum {
  DG_PLAN_ENCODE,
  DG_PLAN_BRIDGE,
  DG_PLAN_VAE_ENCODE,
  DG_PLAN_DENOISE,
  DG_PLAN_DECODE,
  DG_PLAN_N_STAGES
} DgPlanStage;

/* Tokens of the longest prompt row without image pads or queries when the caller does not know
 * them yet: the template takes 14 (MODEL.md §1.2), which leaves ~100 for the prompt. */
#define DG_PLAN_DEFAULT_TEXT_TOKENS 114
/* VAE tiles (vae.h DG_VAE_TILING_DEFAULT): images with a side above tile · 8 pixels are
 * encoded and decoded in tiles of tile latents overlapping by overlap. */
#define DG_PLAN_VAE_TILE 64
#define DG_PLAN_VAE_OVERLAP 16
#define DG_PLAN_MARGIN_FIXED (256ull << 20)
#define DG_PLAN_MARGIN_PERCENT 5

/* At most this many references per batch (a bit each in DgPlan.vae_encode_tiled_refs). */
#define DG_PLAN_MAX_REFS 64

typedef struct {
  DgJob job;
  DgPrecision precision;
  int width, height;    /* the output size (dg_output_size); inpaint: the working size */
  guint n_refs;         /* reference images of the whole batch, request 0's first (edit:
                               * ≥ 1 per request; inpaint: 1 per request; generate: 0) */
  const int *ref_sizes; /* [n_refs][2] width, height of each prepared reference (multiples
                               * of 32); NULL = every reference is width × height */
  guint text_tokens;    /* longest prompt row without image pads; 0 = the default above */
  gboolean cfg;         /* classifier-free guidance (guidance > 1): two DiT rows per request */
  guint steps;          /* for the FLOP totals; 0 = 50 */
  guint64 device_bytes; /* the memory the job may use (pipeline.c: the device-local heap),
                               * for the VAE's whole-or-tiles choice: whole when that does not
                               * raise the peak, or when the raised peak still fits; 0 = unknown:
                               * whole as long as that does not raise the peak */
  /* Batches (dg_run_batch: B requests in one pass, rows 2B) and what pipeline.c knows once it
   * has tokenised the prompts: */
  guint batch;               /* requests; 0 = 1 */
  const guint *request_refs; /* [batch] references of each request, summing to n_refs; NULL =
                               * n_refs / batch each */
  guint seq_len;             /* context tokens of every row (DgPromptBatch.seq_len: the longest
                               * row, image pads included, + the meta queries); 0 = text_tokens +
                               * the image pads of the request with most + the meta queries */
  /* Device limits (vkc_device_info), 0 = none: */
  guint64 max_allocation; /* the largest block a pool may allocate: larger needs are split */
  guint64 max_binding;    /* maxStorageBufferRange: a whole VAE pass whose mid-block attention
                               * would bind more runs in tiles (vae.c) */
  DgWeightFormat weights; /* RELEASED, Q8_0 or Q4_0 (AUTO counts as RELEASED: the caller decides) */
} DgPlanRequest;

#define DG_PLAN_REQUEST_INIT \
  { DG_JOB_GENERATE, DG_PRECISION_BF16, 512, 512, 0, NULL, 0, TRUE, 0, 0, 0, NULL, 0, 0, 0, DG_WEIGHTS_RELEASED }

typedef struct {
  guint64 weights;     /* resident weight pools, as reserved (block-packed) */
  guint64 activations; /* the stage's arena(s), as reserved */
  guint64 carried;     /* inputs the pipeline keeps on the device for the whole stage */
  guint64 total;       /* weights + activations + carried */
  double flop;         /* floating-point operations of the stage for this request */
} DgPlanStageBytes;

typedef struct {
  DgPlanStageBytes stage[DG_PLAN_N_STAGES];
  DgPlanStage peak_stage;
  guint64 peak; /* the largest stage total */
  guint64 margin;
  guint64 required; /* peak + margin: what dg_plan_check compares */
  /* What the numbers were computed for. */
  DgJob job;
  DgPrecision precision;
  DgWeightFormat weights; /* RELEASED, Q8_0 or Q4_0 */
  int width, height;
  guint batch; /* requests */
  guint vlm_rows, dit_rows, steps;
  guint text_tokens;  /* as assumed (the request's or the default) */
  guint seq_len;      /* LLM/connector/DiT context tokens: text + image pads + queries */
  guint image_tokens; /* DiT target tokens */
  guint ref_tokens;   /* DiT reference tokens (all references of the longest row) */
  gboolean vae_encode_tiled, vae_decode_tiled;
  guint64 vae_encode_tiled_refs; /* bit i: reference i is encoded in tiles */
  guint vae_tile, vae_overlap;   /* latents */
  /* What pipeline.c's arenas hand out (sums of 256-byte pieces), so that it sizes them exactly
   * (dg_arena_expect): */
  guint64 encode_arena; /* meta queries, the ViT of every reference, the LLM rows */
  guint64 bridge_arena; /* the connector's activations, on top of encode_arena */
  guint64 dit_arena;    /* one denoising step: latents, timesteps, velocity, the forward */
} DgPlan;

/* Computes the plan. Errors (DG_ERROR_INVALID_ARGUMENT): sizes that are not positive multiples of
 * 16 (references: 32) or beyond the DiT's position table, edit without references, more than
 * DG_PLAN_MAX_REFS references, request_refs that do not add up. */
gboolean dg_plan_compute (const DgPlanModel *m, const DgPlanRequest *r, DgPlan *plan, GError **error);

/* FALSE with DG_ERROR_OOM and an actionable message when plan->required > @device_bytes (the
 * memory the device can give this job: its heap budget when known, else its device-local heap).
 * @device_bytes 0 = unknown: always TRUE. */
gboolean dg_plan_check (const DgPlan *plan, guint64 device_bytes, GError **error);

/* Residency between jobs (DESIGN.md §9): each stage loads one component (encode the VLM, bridge
 * the connector, vae-encode the VAE encoder, denoise the DiT, decode the VAE decoder), named by
 * its DgPlanStage. What earlier jobs left on the device: */
typedef struct {
  guint64 weights[DG_PLAN_N_STAGES];   /* device bytes of each kept component's weights; 0 = not kept */
  guint64 last_used[DG_PLAN_N_STAGES]; /* when each was last used (any increasing count of jobs) */
} DgResidentHeld;

/* The components to keep on the device (bit 1 << DgPlanStage each) across the job of @plan and
 * after it, on a device of @device_bytes: every component the job loads and every one in @held
 * (NULL: none) when they all fit together, that is when each stage of the job fits beside all the
 * others' weights (its total + theirs + the plan's margin on both ≤ @device_bytes); else,
 * greedily, the components this job loads by weight bytes (the cost of reloading), most first,
 * then those only earlier jobs used, most recently used first; each kept only when every stage
 * still fits beside it. 0 when @device_bytes is 0 (unknown). */
guint dg_plan_resident_set (const DgPlan *plan, guint64 device_bytes, const DgResidentHeld *held);

/* DG_WEIGHTS_AUTO's choice, as dg_run makes it: the plan of @r with the released weights when it
 * fits @device_bytes (dg_plan_check), else with each of dg_plan_auto_fallbacks in turn; when none
 * fits, the last (smallest) one's. r->weights and @plan are the format chosen; *fits says whether
 * it fits. FALSE only for dg_plan_compute's errors. For the dialogs' fit indicator and dg_run. */
gboolean dg_plan_auto (const DgPlanModel *m, DgPlanRequest *r, guint64 device_bytes, DgPlan *plan, gboolean *fits,
                       GError **error);

const char *dg_plan_stage_name (DgPlanStage s); /* "encode", "bridge", … (not translated: table keys) */

/* FLOPs (a multiply-add is 2 FLOPs; MODEL.md §9) of one row or one image through a component:
 * the LLM's linear layers per token, the LLM over @tokens (causal attention included), one
 * reference of @width × @height pixels through the vision tower, the connector over @tokens, one
 * DiT forward with @image_tokens (target + references) and @ctx_tokens. */
double dg_plan_flops_llm_per_token (const DgPlanModel *m);
double dg_plan_flops_llm (const DgPlanModel *m, gint64 tokens);
double dg_plan_flops_vit (const DgPlanModel *m, int width, int height);
double dg_flops_connector (const DgPlanModel *m, gint64 tokens);
double dg_plan_flops_dit (const DgPlanModel *m, gint64 image_tokens, gint64 ctx_tokens);

/* ---- benchmarks ------------------------------------------------------------------------ */

/* GPU times of a run's VLM stages from the device's timestamps; < 0 when the device has none. */
typedef struct {
  double vit_gpu_ms, llm_gpu_ms;
  /* Per DgPlanStage: the most device memory the pools held during the stage, and the memory
   * plan's figure for it (DgPlanStageBytes.total); 0 for a stage the run did not have. */
  guint64 held[DG_PLAN_N_STAGES], planned[DG_PLAN_N_STAGES];
} DgStageTimes;

/* dg_run_batch that also measures the VLM's stages and each stage's memory into @times (`deepgen bench`). */
GPtrArray *dg_run_batch_timed (DgModel *model, const DgRequest *const *requests, guint n_requests, DgStageTimes *times,
                               DgProgressFunc progress, gpointer user_data, GCancellable *cancellable, GError **error);

/* ---- conversion (`deepgen convert`, model/io/convert.c, DESIGN.md §3) ----------------- */

/* Progress of one output file: @what is "vlm/model.gguf", "vae" (a copied folder) ...; @done
 * and @total count bytes of that file or folder. Called at its start (done 0), as it is
 * written, and at its end (done == total). */
typedef void (*DgConvertProgress) (const char *what, guint64 done, guint64 total, gpointer user_data);

typedef struct {
  DgWeightFormat weights;     /* DG_WEIGHTS_Q8_0 (the only converted format so far) */
  DgConvertProgress progress; /* NULL: none */
  gpointer user_data;
} DgConvertOptions;

#define DG_CONVERT_OPTIONS_INIT { DG_WEIGHTS_Q8_0, NULL, NULL }

/* Converts the model folder @src into @dst, which must not exist or be an empty folder (it is
 * never overwritten). Errors: DG_ERROR_MISSING (an incomplete @src, with the list of what is
 * missing), DG_ERROR_INVALID_ARGUMENT (@dst not empty, @src already converted, an unknown
 * format), DG_ERROR_IO (a file that cannot be read or written, with its path), and the
 * reader's errors for a damaged weight file. */
gboolean dg_convert_model (const char *src, const char *dst, const DgConvertOptions *options, GError **error);

G_END_DECLS
