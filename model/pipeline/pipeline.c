/* The DeepGen pipeline behind model/deepgen.h: prompt (+ references) → VLM → SCB connector →
 * DiT denoising loop → VAE → image (MODEL.md §1).
 *
 * Residency (DESIGN.md §5): each component's weights are uploaded when its stage starts and
 * released when it ends — the VLM (its vision tower only when there are references; the
 * connector's meta queries are read from its file alone), then the connector, then the VAE
 * encoder (edit), then the DiT for all steps, then the VAE decoder — so the peak is the largest
 * stage, not the sum. Stage outputs that cross a release (the connector's sequence and pooled
 * vector, reference latents, the latents) are small and go through host memory.
 *
 * Memory plan (model/plan/plan.h): once the requests are resolved and the prompts tokenised, the
 * run's plan is computed from the configs and checked against the device's memory, so that a
 * job that cannot fit is refused before anything is uploaded. The plan also decides whole or
 * tiled VAE passes, and sizes every pool: loaders size their weights' pools themselves, the
 * arenas here are told the plan's figures (dg_arena_expect), so what runs is what was planned.
 *
 * The latents live on the host between DiT steps: the Euler update and classifier-free
 * guidance are a few hundred thousand values (MODEL.md §1.9 does them in fp32 / bf16 on the
 * host-side tensors too), so the round trip costs microseconds against a DiT step. */
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "connector.h"
#include "deepgen.h"
#include "dg_i18n.h"
#include "dit.h"
#include "gguf.h"
#include "image.h"
#include "inpaint.h"
#include "deepgen_hooks.h"
#include "plan.h"
#include "resident.h"
#include "preview.h"
#include "prompt.h"
#include "rng.h"
#include "scheduler.h"
#include "synthetic.h"
#include "tokenizer.h"
#include "vae.h"
#include "vkc_half.h"
#include "vkc_ops_conv.h"
#include "vkc_ops_linear.h"
#include "vkc_paths.h"
#include "vlm.h"
#include "weights.h"

/* MODEL.md §1.1: the edit negative prompt the official examples pass; text-to-image uses ''. */
static const char EDIT_NEGATIVE[] =
    "blurry, low quality, low resolution, distorted, deformed, broken content, missing parts, damaged details, "
    "artifacts, glitch, noise, pixelated, grainy, compression artifacts, bad composition, wrong proportion, "
    "incomplete editing, unfinished, unedited areas.";
#define DEFAULT_STEPS DG_DEFAULT_STEPS
#define DEFAULT_GUIDANCE DG_DEFAULT_GUIDANCE
#define MAX_STEPS 1000

struct _DgEngine {
  VkcDevice *dev;
  char *name;
};

struct _DgModel {
  DgEngine *engine;
  char *path;
  DgPrecision precision;
  DgWeightFormat weights; /* as opened (AUTO: decided per run) */
  DgWeightFormat last_run_weights;
  DgTokenizer *tok;
  DgQwenVLConfig vlm_config;
  DgDitConfig dit_config;
  DgVaeConfig vae_config;
  DgSchedulerConfig sched_config;
  DgPlanModel plan_model; /* the architecture for memory plans (plan.h) */
  GMutex lock;            /* one dg_run at a time per model */
  /* Components kept on the device between runs (resident.h); NULL when not kept. */
  struct {
    gboolean enabled;
    DgWeightFormat weights; /* what the kept components were loaded with */
    gboolean vlm_text_only;
    DgVlm *vlm;
    DgConnector *conn;
    DgVae *vae_encoder, *vae_decoder;
    DgDit *dit;
    /* Per DgPlanStage (the component that stage loads, deepgen.h DgResidentHeld): the weight bytes
     * of the kept ones (the plan's figure of the run that kept them) and when each was last used. */
    DgResidentHeld held;
    guint64 jobs;        /* runs so far: the clock of held.last_used */
    guint64 bytes;       /* the device memory they hold */
    guint64 last_upload; /* weight bytes the last run uploaded */
  } resident;
  /* The last run's conditioning (VLM + connector outputs), reused when the next run asks for the
   * same (resident.h): key = what they depend on, see conditioning_key. */
  struct {
    GBytes *key;
    float *seq, *pooled;
    gsize seq_n, pooled_n;
    guint seq_len;
  } cond;
  DgPreviewFunc preview; /* resident.h */
  gpointer preview_data;
  gint64 preview_us, step_us; /* the last run's */
  /* DgFileStamp of every weight file as dg_model_open read its header: each stage maps its
   * files anew, so a file rewritten since would give a model other than the one opened (or,
   * mid-run, a mix of two); dg_model_check_files refuses that. */
  GArray *stamps;
};

static void
resident_clear (DgModel *m)
{
  g_clear_pointer (&m->resident.vlm, dg_vlm_free);
  g_clear_pointer (&m->resident.conn, dg_connector_free);
  g_clear_pointer (&m->resident.vae_encoder, dg_vae_free);
  g_clear_pointer (&m->resident.vae_decoder, dg_vae_free);
  g_clear_pointer (&m->resident.dit, dg_dit_free);
  memset (&m->resident.held.weights, 0, sizeof m->resident.held.weights);
  m->resident.bytes = 0;
}

/* Where the component of @stage is kept, and how it is released. */
static gpointer *
resident_slot (DgModel *m, DgPlanStage stage, GDestroyNotify *release)
{
  switch (stage) {
  case DG_PLAN_ENCODE: *release = (GDestroyNotify) dg_vlm_free; return (gpointer *) &m->resident.vlm;
  case DG_PLAN_BRIDGE: *release = (GDestroyNotify) dg_connector_free; return (gpointer *) &m->resident.conn;
  case DG_PLAN_VAE_ENCODE: *release = (GDestroyNotify) dg_vae_free; return (gpointer *) &m->resident.vae_encoder;
  case DG_PLAN_DENOISE: *release = (GDestroyNotify) dg_dit_free; return (gpointer *) &m->resident.dit;
  case DG_PLAN_DECODE: *release = (GDestroyNotify) dg_vae_free; return (gpointer *) &m->resident.vae_decoder;
  case DG_PLAN_N_STAGES: break;
  }
  g_return_val_if_reached (NULL);
}

/* ---- engine ------------------------------------------------------------------------- */

DgEngine *
dg_engine_new (const DgEngineOptions *options, GError **error)
{
  VkcDeviceOptions vo = VKC_DEVICE_OPTIONS_DEFAULT;
  if (options)
    vo.device = options->device;
  VkcDevice *dev = vkc_device_new (&vo, error);
  if (!dev) {
    dg_error_from_vkc (error);
    return NULL;
  }
  DgEngine *e = g_new0 (DgEngine, 1);
  e->dev = dev;
  const VkcDeviceInfo *i = vkc_device_info (dev);
  e->name = g_strdup_printf ("%s (%.1f GiB), Vulkan %u.%u", i->name, i->device_local_bytes / 1073741824.0,
                             VK_API_VERSION_MAJOR (i->api_version), VK_API_VERSION_MINOR (i->api_version));
  return e;
}

void
dg_engine_free (DgEngine *engine)
{
  if (!engine)
    return;
  vkc_device_free (engine->dev);
  g_free (engine->name);
  g_free (engine);
}

const char *
dg_engine_device_name (DgEngine *engine)
{
  return engine->name;
}
VkcDevice *
dg_engine_device (DgEngine *engine)
{
  return engine->dev;
}

char *
dg_engine_describe (DgEngine *engine)
{
  g_autofree char *device = vkc_device_describe (engine->dev);
  g_autofree char *paths = vkc_paths_describe (engine->dev);
  return g_strdup_printf ("%s\n%s", device, paths);
}

guint64
dg_engine_device_bytes (DgEngine *engine)
{
  return vkc_device_info (engine->dev)->device_local_bytes;
}

const char *
dg_stage_name (DgStage stage)
{
  switch (stage) {
  case DG_STAGE_LOAD: return _ ("Loading weights");
  case DG_STAGE_ENCODE: return _ ("Reading the prompt");
  case DG_STAGE_BRIDGE: return _ ("Bridging");
  case DG_STAGE_DENOISE: return _ ("Denoising");
  case DG_STAGE_DECODE: return _ ("Decoding");
  default: return "?";
  }
}

/* ---- model folder ------------------------------------------------------------------- */

char *
dg_model_default_path (void)
{
  const char *env = g_getenv ("DEEPGEN_MODEL");
  if (env && *env)
    return g_strdup (env);
  return g_build_filename (g_get_user_data_dir (), "deepgen", "DeepGen-1.0-diffusers", NULL);
}

static void
need_file (GString *missing, const char *root, const char *rel)
{
  g_autofree char *p = g_build_filename (root, rel, NULL);
  if (!g_file_test (p, G_FILE_TEST_IS_REGULAR))
    g_string_append_printf (missing, "%s\n", rel);
}

/* A component's weights: one file, or an index whose shards must all be there, or the single
 * model.gguf of a folder that `deepgen convert` wrote. */
static void
need_weights (GString *missing, const char *root, const char *dir, const char *single, const char *index)
{
  g_autofree char *s = g_build_filename (root, dir, single, NULL);
  g_autofree char *converted = g_build_filename (root, dir, DG_GGUF_FILE_NAME, NULL);
  if (g_file_test (s, G_FILE_TEST_IS_REGULAR) || g_file_test (converted, G_FILE_TEST_IS_REGULAR))
    return;
  g_autofree char *ip = g_build_filename (root, dir, index, NULL);
  g_autofree char *text = NULL;
  if (!g_file_get_contents (ip, &text, NULL, NULL)) {
    g_string_append_printf (missing, "%s/%s\n", dir, single);
    return;
  }
  /* Shard names appear as values of "weight_map"; a plain scan is enough for a presence
   * check (the loader validates the index properly). */
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (const char *p = text; (p = strstr (p, ".safetensors\"")) != NULL; p++) {
    const char *q = p;
    while (q > text && q[-1] != '"') q--;
    g_autofree char *name = g_strndup (q, (gsize) (p - q) + strlen (".safetensors"));
    if (g_str_has_suffix (name, ".index.json") || g_hash_table_contains (seen, name))
      continue;
    g_hash_table_add (seen, g_strdup (name));
    g_autofree char *rel = g_build_filename (dir, name, NULL);
    need_file (missing, root, rel);
  }
}

char *
dg_model_folder_missing (const char *path)
{
  GString *m = g_string_new (NULL);
  if (!g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_string_append_printf (m, "%s/\n", path);
    return g_string_free (m, FALSE);
  }
  need_file (m, path, "model_index.json");
  need_file (m, path, "scheduler/scheduler_config.json");
  g_autofree char *tj = g_build_filename (path, "tokenizer", "tokenizer.json", NULL);
  g_autofree char *vj = g_build_filename (path, "tokenizer", "vocab.json", NULL);
  if (!g_file_test (tj, G_FILE_TEST_IS_REGULAR) && !g_file_test (vj, G_FILE_TEST_IS_REGULAR))
    g_string_append (m, "tokenizer/tokenizer.json\n");
  need_file (m, path, "vlm/config.json");
  need_weights (m, path, "vlm", "model.safetensors", "model.safetensors.index.json");
  need_weights (m, path, "connector", "model.safetensors", "model.safetensors.index.json");
  need_file (m, path, "transformer/config.json");
  need_weights (m, path, "transformer", "diffusion_pytorch_model.safetensors",
                "diffusion_pytorch_model.safetensors.index.json");
  need_file (m, path, "vae/config.json");
  need_weights (m, path, "vae", "diffusion_pytorch_model.safetensors",
                "diffusion_pytorch_model.safetensors.index.json");
  if (m->len == 0) {
    g_string_free (m, TRUE);
    return NULL;
  }
  return g_string_free (m, FALSE);
}

DgWeightFormat
dg_model_folder_weights (const char *path)
{
  static const char *const parts[] = { "vlm", "connector", "transformer" };
  for (guint i = 0; i < G_N_ELEMENTS (parts); i++) {
    g_autofree char *p = g_build_filename (path, parts[i], NULL);
    g_autoptr (DgSafetensors) st = dg_safetensors_open (p, NULL);
    if (st && dg_gguf_holds_q8_0 (st))
      return DG_WEIGHTS_Q8_0;
  }
  return DG_WEIGHTS_RELEASED;
}

/* Validates every weight header of a component now, so that a truncated download fails at
 * open time with the file's name instead of minutes into a run; sets *q8 when the component's
 * weights are 8-bit already. */
static gboolean
check_weights (const char *root, const char *dir, gboolean *q8, GArray *stamps, GError **error)
{
  g_autofree char *p = g_build_filename (root, dir, NULL);
  g_autoptr (DgSafetensors) st = dg_safetensors_open (p, error);
  if (st && dg_gguf_holds_q8_0 (st))
    *q8 = TRUE;
  if (st)
    dg_safetensors_file_stamps (st, stamps);
  return st != NULL;
}

gboolean
dg_model_check_files (DgModel *model, GError **error)
{
  g_return_val_if_fail (model, FALSE);
  for (guint i = 0; i < model->stamps->len; i++) {
    const DgFileStamp *s = &g_array_index (model->stamps, DgFileStamp, i);
    gboolean missing = FALSE;
    if (dg_file_stamp_unchanged (s, &missing))
      continue;
    g_autofree char *name = g_filename_display_name (s->path);
    if (missing)
      g_set_error (error, DG_ERROR, DG_ERROR_IO,
                   _ ("The model file %s is gone since the model was opened. Open the model again."), name);
    else
      g_set_error (error, DG_ERROR, DG_ERROR_IO,
                   _ ("The model file %s changed on disk since the model was opened (it was rewritten or "
                      "replaced). Open the model again."),
                   name);
    return FALSE;
  }
  return TRUE;
}

static void
stamp_clear (gpointer p)
{
  dg_file_stamp_clear (p);
}

static char *
sub (const char *root, const char *dir)
{
  return g_build_filename (root, dir, NULL);
}

DgModel *
dg_model_open (DgEngine *engine, const char *path, const DgLoadOptions *options, GError **error)
{
  const gboolean synthetic = g_str_has_prefix (path, DG_SYNTHETIC_PREFIX); /* no files to check */
  if (synthetic)
    dg_synthetic_register ();
  g_autofree char *missing = synthetic ? NULL : dg_model_folder_missing (path);
  if (missing) {
    g_autofree char *list = g_strdelimit (g_strchomp (g_strdup (missing)), "\n", ',');
    g_set_error (error, DG_ERROR, DG_ERROR_MISSING,
                 _ ("The model folder %s is incomplete; missing: %s. Download the DeepGen-1.0 model "
                    "(Hugging Face: deepgenteam/DeepGen-1.0-diffusers, about 14.4 GB) into that folder."),
                 path, list);
    return NULL;
  }
  g_autoptr (DgModel) m = g_new0 (DgModel, 1);
  g_mutex_init (&m->lock);
  m->engine = engine;
  m->path = g_strdup (path);
  m->stamps = g_array_new (FALSE, TRUE, sizeof (DgFileStamp));
  g_array_set_clear_func (m->stamps, stamp_clear);
  m->precision = options ? options->precision : DG_PRECISION_BF16;
  m->weights = options ? options->weights : DG_WEIGHTS_RELEASED;
  if ((guint) m->weights > DG_WEIGHTS_Q4_0) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("unknown weight format %d"), (int) m->weights);
    return NULL;
  }
  g_autofree char *vlm = sub (path, "vlm"), *dit = sub (path, "transformer"), *vae = sub (path, "vae");
  g_autofree char *sched = sub (path, "scheduler"), *tok = sub (path, "tokenizer");
  if (!dg_qwen_vl_config_load (vlm, &m->vlm_config, error) || !dg_dit_config_load (dit, &m->dit_config, error) ||
      !dg_vae_config_load (vae, &m->vae_config, error) || !dg_scheduler_config_load (sched, &m->sched_config, error) ||
      !dg_plan_model_load (&m->plan_model, path, error))
    return NULL;
  m->tok = dg_tokenizer_load (tok, error);
  if (!m->tok)
    return NULL;
  const char *parts[] = { "vlm", "connector", "transformer", "vae" };
  gboolean q8 = FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (parts) && !synthetic; i++)
    if (!check_weights (path, parts[i], &q8, m->stamps, error))
      return NULL;
  /* A converted folder has no released weights to give: its runs (plan and loaders) use q8_0
   * whatever was asked, which is what its files hold (dg_weights_linear uploads them as they are). */
  if (q8)
    m->weights = DG_WEIGHTS_Q8_0;
  return g_steal_pointer (&m);
}

DgModel *
dg_model_open_synthetic (DgEngine *engine, guint layers, guint64 seed, const DgLoadOptions *options, GError **error)
{
  if (layers > DG_CONFIG_MAX_LAYERS) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("%u layers is too many (at most %u)"), layers,
                 DG_CONFIG_MAX_LAYERS);
    return NULL;
  }
  g_autofree char *path = dg_synthetic_path (layers, seed);
  return dg_model_open (engine, path, options, error);
}

DgPlanModel *
dg_model_architecture (DgModel *model)
{
  return g_memdup2 (&model->plan_model, sizeof model->plan_model);
}

void
dg_model_free (DgModel *model)
{
  if (!model)
    return;
  resident_clear (model);
  g_clear_pointer (&model->cond.key, g_bytes_unref);
  g_free (model->cond.seq);
  g_free (model->cond.pooled);
  g_mutex_clear (&model->lock);
  if (model->stamps)
    g_array_unref (model->stamps);
  if (model->tok)
    dg_tokenizer_free (model->tok);
  g_free (model->path);
  g_free (model);
}

DgWeightFormat
dg_model_last_run_weights (DgModel *model)
{
  g_return_val_if_fail (model, DG_WEIGHTS_RELEASED);
  g_mutex_lock (&model->lock); /* written by the run, which holds the lock */
  DgWeightFormat w = model->last_run_weights;
  g_mutex_unlock (&model->lock);
  return w;
}

void
dg_model_set_resident (DgModel *model, gboolean resident)
{
  g_mutex_lock (&model->lock);
  model->resident.enabled = resident;
  if (!resident) {
    resident_clear (model);
    g_clear_pointer (&model->cond.key, g_bytes_unref);
  }
  g_mutex_unlock (&model->lock);
}

guint64
dg_model_last_run_uploaded (DgModel *model)
{
  g_mutex_lock (&model->lock);
  guint64 n = model->resident.last_upload;
  g_mutex_unlock (&model->lock);
  return n;
}

guint
dg_model_resident_components (DgModel *model)
{
  g_mutex_lock (&model->lock);
  guint set = 0;
  for (int s = 0; s < DG_PLAN_N_STAGES; s++) {
    GDestroyNotify release;
    if (*resident_slot (model, (DgPlanStage) s, &release))
      set |= 1u << s;
  }
  g_mutex_unlock (&model->lock);
  return set;
}

guint64
dg_model_resident_bytes (DgModel *model)
{
  g_mutex_lock (&model->lock);
  guint64 n = model->resident.bytes;
  g_mutex_unlock (&model->lock);
  return n;
}

void
dg_model_set_preview (DgModel *model, DgPreviewFunc func, gpointer user_data)
{
  g_mutex_lock (&model->lock);
  model->preview = func;
  model->preview_data = user_data;
  g_mutex_unlock (&model->lock);
}

void
dg_model_last_run_preview_cost (DgModel *model, double *preview_seconds, double *step_seconds)
{
  g_mutex_lock (&model->lock);
  *preview_seconds = (double) model->preview_us / 1e6;
  *step_seconds = (double) model->step_us / 1e6;
  g_mutex_unlock (&model->lock);
}

/* ---- one run ------------------------------------------------------------------------ */

typedef struct {
  DgModel *m;
  VkcDevice *dev;
  const DgRequest *const *reqs; /* B requests */
  guint B;
  const DgRunHooks *hooks;
  DgRunMemory *memory; /* NULL unless measured */
  DgProgressFunc progress;
  gpointer user;
  GCancellable *cancel;
  /* resolved requests */
  const char **negative; /* [B] */
  int steps;
  double guidance;
  double strength;      /* change strength (edit/inpaint); 1 = from pure noise */
  guint first_step;     /* the schedule step the sampler starts at (dg_schedule_first_step) */
  int width, height;    /* output of the model (the working size for inpaint) */
  GPtrArray *refs;      /* DgImage*: prepared references, request 0's first */
  guint *n_refs;        /* [B] references per request */
  DgInpaintPlan *plans; /* [B] (inpaint) */
  /* the prompt rows and the memory plan, before anything is uploaded */
  DgPromptBatch *batch;
  float *meta_queries; /* [n_queries, hidden] host copy (connector/model.safetensors) */
  guint n_queries, meta_width;
  DgPlan plan;
  DgWeightFormat weights; /* RELEASED or Q8_0: the model's, or what AUTO chose for this run */
  /* stage outputs on the host */
  guint rows; /* 2B with classifier-free guidance, else B */
  guint seq_len;
  float *seq, *pooled;    /* [rows, S, joint], [rows, pooled] in DiT order: [uncond…, cond…] */
  gsize seq_n, pooled_n;  /* their lengths */
  GPtrArray *ref_latents; /* float* [h_j, w_j, latent] per reference */
  float *latents;         /* [B, h/8, w/8, latent] NHWC */
  guint keep;             /* bit 1 << DgPlanStage: that stage's component stays on the device after
                           * it (resident.h, dg_plan_resident_set) */
} Run;

static void
run_clear (Run *r)
{
  if (r->refs)
    g_ptr_array_unref (r->refs);
  if (r->ref_latents)
    g_ptr_array_unref (r->ref_latents);
  g_free (r->negative);
  g_free (r->n_refs);
  g_free (r->plans);
  if (r->batch)
    dg_prompt_batch_free (r->batch);
  g_free (r->meta_queries);
  g_free (r->seq);
  g_free (r->pooled);
  g_free (r->latents);
}

/* Checked between GPU submissions: a cancelled run stops at the next one. */
static gboolean
cancelled (Run *r, GError **error)
{
  if (!g_cancellable_is_cancelled (r->cancel))
    return FALSE;
  g_set_error (error, DG_ERROR, DG_ERROR_CANCELLED, _ ("Cancelled."));
  return TRUE;
}

static void
report (Run *r, DgStage stage, int step, int of)
{
  if (r->progress)
    r->progress (stage, step, of, r->user);
}

static gboolean
fail_oom (GError **error)
{
  g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("Not enough memory to prepare the input image."));
  return FALSE;
}

/* One request's text, references and size. */
static gboolean
resolve_one (Run *r, guint b, int *width, int *height, GError **error)
{
  const DgRequest *q = r->reqs[b];
  if (!q->prompt || !*q->prompt) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("The prompt is empty: describe the image or the edit."));
    return FALSE;
  }
  if (!g_utf8_validate (q->prompt, -1, NULL) ||
      (q->negative_prompt && !g_utf8_validate (q->negative_prompt, -1, NULL))) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("The prompt is not valid UTF-8 text; re-type it or save it as UTF-8."));
    return FALSE;
  }
  r->negative[b] = q->negative_prompt ? q->negative_prompt : q->job == DG_JOB_GENERATE ? "" : EDIT_NEGATIVE;

  switch (q->job) {
  case DG_JOB_GENERATE: return dg_output_size_checked (q, width, height, error);
  case DG_JOB_EDIT: {
    if (q->n_images == 0 || !q->images) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("Editing needs at least one input image."));
      return FALSE;
    }
    int target = q->width > 0 || q->height > 0 ? MAX (q->width, q->height) : 512;
    for (guint i = 0; i < q->n_images; i++) {
      if (!dg_image_check (q->images[i], FALSE, _ ("input image"), error))
        return FALSE;
      DgImage *p = r->hooks && r->hooks->references_as_given ? dg_image_to_rgb (q->images[i])
                                                             : dg_reference_prepare (q->images[i], target);
      if (!p)
        return fail_oom (error);
      g_ptr_array_add (r->refs, p);
    }
    r->n_refs[b] = q->n_images;
    if (q->n_images == 1 && q->width <= 0 && q->height <= 0) { /* output follows the reference */
      DgImage *p = g_ptr_array_index (r->refs, r->refs->len - 1);
      *width = p->width;
      *height = p->height;
      return TRUE;
    }
    return dg_output_size_checked (q, width, height, error);
  }
  case DG_JOB_INPAINT: {
    if (q->n_images != 1 || !q->images || !q->mask) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("Inpainting needs one image and one mask."));
      return FALSE;
    }
    DgInpaintOptions o = DG_INPAINT_OPTIONS_INIT;
    o.feather = q->feather;
    if (!dg_inpaint_plan (q->images[0], q->mask, &o, &r->plans[b], error))
      return FALSE;
    DgImage *work = dg_inpaint_prepare (q->images[0], &r->plans[b]);
    if (!work)
      return fail_oom (error);
    g_ptr_array_add (r->refs, work);
    r->n_refs[b] = 1;
    *width = r->plans[b].work_width;
    *height = r->plans[b].work_height;
    return TRUE;
  }
  }
  g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, "unknown job %d", q->job);
  return FALSE;
}

/* The change strength of the batch (request 0's) and the step it starts the sampler at; below 1
 * each request's first reference is the source, so it must have the output's size. */
static gboolean
resolve_strength (Run *r, GError **error)
{
  r->strength = r->reqs[0]->strength;
  if (!(r->strength > 0.0 && r->strength <= 1.0)) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("The change strength must be above 0 and at most 1, not %g."), r->strength);
    return FALSE;
  }
  if (r->strength >= 1.0)
    return TRUE;
  if (r->reqs[0]->job == DG_JOB_GENERATE) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("A change strength below 1 needs an image to change: use it with edit or inpaint."));
    return FALSE;
  }
  r->first_step = dg_schedule_first_step ((guint) r->steps, r->strength);
  if (r->first_step >= (guint) r->steps) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("A change strength of %g is too small: none of the %d steps would run. Raise it."), r->strength,
                 r->steps);
    return FALSE;
  }
  for (guint b = 0, first = 0; b < r->B; first += r->n_refs[b], b++) {
    const DgImage *src = g_ptr_array_index (r->refs, first);
    if (src->width != r->width || src->height != r->height) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                   _ ("A change strength below 1 starts from the first image, prepared at %d×%d, but the result is "
                      "%d×%d: leave the output size to the image or set the strength to 1."),
                   src->width, src->height, r->width, r->height);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
resolve_requests (Run *r, GError **error)
{
  const DgRequest *q0 = r->reqs[0];
  r->steps = q0->steps > 0 ? q0->steps : DEFAULT_STEPS;
  if (r->steps > MAX_STEPS) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("%d steps is too many (at most %d; 50 is the default)."), r->steps, MAX_STEPS);
    return FALSE;
  }
  r->guidance = q0->guidance < 0 ? DEFAULT_GUIDANCE : q0->guidance;
  r->rows = r->guidance > 1.0 ? 2 * r->B : r->B; /* diffusers guides only when g > 1 */
  r->negative = g_new0 (const char *, r->B);
  r->n_refs = g_new0 (guint, r->B);
  r->plans = g_new0 (DgInpaintPlan, r->B);
  r->refs = g_ptr_array_new_with_free_func ((GDestroyNotify) dg_image_free);
  for (guint b = 0; b < r->B; b++) {
    int w = 0, h = 0;
    if (r->reqs[b]->job != q0->job) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                   _ ("All requests of a batch must be the same kind of job."));
      return FALSE;
    }
    if (!resolve_one (r, b, &w, &h, error))
      return FALSE;
    if (b > 0 && (w != r->width || h != r->height)) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                   _ ("All requests of a batch must give the same output size (%d×%d and %d×%d)."), r->width, r->height,
                   w, h);
      return FALSE;
    }
    r->width = w;
    r->height = h;
  }
  return resolve_strength (r, error);
}

/* A stage's output on the host, for the tests' checks (DgRunHooks.stage_output). */
static void
observe (Run *r, DgPlanStage stage, const float *values, gsize n)
{
  if (r->hooks && r->hooks->stage_output)
    r->hooks->stage_output (r->hooks->stage_output_data, stage, values, n);
}

/* Memory accounting for tests (DgRunMemory): the most the pools held in a stage. */
static void
stage_begin (Run *r)
{
  vkc_device_reset_peak (r->dev);
}

static void
stage_end (Run *r, DgPlanStage stage)
{
  if (!r->memory)
    return;
  VkDeviceSize peak;
  vkc_device_reserved (r->dev, &peak);
  r->memory->stage_peaks[stage] = MAX (r->memory->stage_peaks[stage], peak);
}

/* Which components this run keeps on the device (resident.h): none unless the model asks for
 * it, else dg_plan_resident_set's choice from this run's plan, the device's size and what earlier
 * runs left. Kept components of another weight format, and those this run will not keep, are
 * released now, before anything is uploaded, so the plan's check stays true for every stage. */
static void
resident_decide (Run *r, guint64 device_bytes)
{
  DgModel *m = r->m;
  if (!m->resident.enabled || m->resident.weights != r->weights)
    resident_clear (m);
  m->resident.weights = r->weights;
  m->resident.last_upload = 0;
  for (int s = 0; s < DG_PLAN_N_STAGES; s++) { /* a run that failed mid-stage freed what it took */
    GDestroyNotify release;
    if (!*resident_slot (m, (DgPlanStage) s, &release))
      m->resident.held.weights[s] = 0;
  }
  r->keep = m->resident.enabled ? dg_plan_resident_set (&r->plan, device_bytes, &m->resident.held) : 0;
  m->resident.jobs++;
  for (int s = 0; s < DG_PLAN_N_STAGES; s++) {
    if (r->plan.stage[s].weights)
      m->resident.held.last_used[s] = m->resident.jobs;
    if (!(r->keep & (1u << s))) {
      GDestroyNotify release;
      gpointer *slot = resident_slot (m, (DgPlanStage) s, &release);
      g_clear_pointer (slot, release);
      m->resident.held.weights[s] = 0;
    }
  }
}

/* A component for this run: the kept one in *@slot (taken out of it), else NULL and the caller
 * loads it between upload_begin and upload_end (its weight pools counted as uploaded). After its
 * stage keep () puts it back, or releases it when the run does not keep. */
static gpointer
take (gpointer *slot)
{
  return g_steal_pointer (slot);
}

static VkDeviceSize
upload_begin (Run *r)
{
  return vkc_device_reserved (r->dev, NULL);
}

static void
upload_end (Run *r, VkDeviceSize before)
{
  VkDeviceSize after = vkc_device_reserved (r->dev, NULL);
  if (after > before)
    r->m->resident.last_upload += after - before;
}

static void
keep (Run *r, DgPlanStage stage, gpointer *component)
{
  GDestroyNotify release;
  gpointer *slot = resident_slot (r->m, stage, &release);
  gpointer c = g_steal_pointer (component);
  if ((r->keep & (1u << stage)) && c && !*slot) {
    *slot = c;
    r->m->resident.held.weights[stage] = r->plan.stage[stage].weights;
  } else if (c) {
    release (c);
  }
}

/* Before anything is uploaded: the meta queries (host), the prompt rows, the memory plan of this
 * run and its check against the device (DESIGN.md §5). A job that cannot fit fails here with
 * DG_ERROR_OOM, naming what it needs and what the device has. */
static gboolean
plan_run (Run *r, GError **error)
{
  DgModel *m = r->m;
  g_autofree char *cdir = sub (m->path, "connector");
  r->meta_queries = dg_connector_read_meta_queries (cdir, m->precision, &r->n_queries, &r->meta_width, error);
  if (!r->meta_queries)
    return FALSE;
  if (r->meta_width != m->vlm_config.text.hidden) {
    g_set_error (error, DG_ERROR, DG_ERROR_SHAPE,
                 _ ("%s: the meta queries are %u wide but the language model's hidden size is %u — are the "
                    "connector and vlm folders from the same DeepGen-1.0 model?"),
                 cdir, r->meta_width, m->vlm_config.text.hidden);
    return FALSE;
  }

  /* Prompt rows [cond_1..cond_B, uncond_1..uncond_B] (MODEL.md §1.3); the references' sizes
   * give the image-pad runs. */
  guint n_refs = r->refs->len;
  g_autofree guint *sizes = g_new0 (guint, 2 * MAX (n_refs, 1));
  g_autofree int *ref_sizes = g_new0 (int, 2 * MAX (n_refs, 1));
  for (guint i = 0; i < n_refs; i++) {
    DgImage *img = g_ptr_array_index (r->refs, i);
    sizes[2 * i] = (guint) img->height;
    sizes[2 * i + 1] = (guint) img->width;
    ref_sizes[2 * i] = img->width;
    ref_sizes[2 * i + 1] = img->height;
  }
  g_autofree DgPromptRequest *pr = g_new0 (DgPromptRequest, r->B);
  for (guint b = 0, first = 0; b < r->B; first += r->n_refs[b], b++)
    pr[b] = (DgPromptRequest) { r->reqs[b]->prompt, r->negative[b], r->n_refs[b], sizes + 2 * first };
  r->batch = dg_prompt_batch_new (m->tok, pr, r->B, r->n_queries, &m->vlm_config.vision, error);
  if (!r->batch)
    return FALSE;

  /* The plan of exactly this run: B requests (2B prompt rows), these references, the tokenised
   * context length, this device's limits. */
  const VkcDeviceInfo *info = vkc_device_info (r->dev);
  DgPlanRequest q = DG_PLAN_REQUEST_INIT;
  q.job = r->reqs[0]->job;
  q.precision = m->precision;
  q.width = r->width;
  q.height = r->height;
  q.n_refs = n_refs;
  q.ref_sizes = ref_sizes;
  q.cfg = r->rows == 2 * r->B;
  q.steps = (guint) r->steps - r->first_step; /* the steps that run */
  q.device_bytes = info->device_local_bytes;
  q.batch = r->B;
  q.request_refs = r->n_refs;
  q.seq_len = r->batch->seq_len;
  q.max_allocation = MIN (info->max_memory_allocation_size, info->max_buffer_size);
  q.max_binding = info->max_storage_buffer_range;
  DgPlanModel pm = m->plan_model;
  pm.n_queries = r->n_queries; /* as read (dg_plan_model_load may have fallen back to the config) */
  /* AUTO: the released weights when they fit, else 8-bit Linear weights (about half the VLM's
   * and the DiT's share), else a 4-bit VLM (dg_plan_auto). When none fits, the check below
   * reports the last plan's needs. */
  gboolean fits;
  q.weights = m->weights;
  if (m->weights == DG_WEIGHTS_AUTO ? !dg_plan_auto (&pm, &q, q.device_bytes, &r->plan, &fits, error)
                                    : !dg_plan_compute (&pm, &q, &r->plan, error))
    return FALSE;
  r->weights = q.weights;
  m->last_run_weights = r->weights;
  resident_decide (r, q.device_bytes);
  if (r->memory) {
    r->memory->planned = TRUE;
    r->memory->plan = r->plan;
  }
  if (!dg_plan_check (&r->plan, q.device_bytes, error))
    return FALSE;
  /* The fast kernels' first-use self-checks run now rather than inside a stage: their few small
   * buffers are freed before the first stage, so no stage ever holds more than its plan. */
  vkc_linear_selfcheck_all (r->dev);
  vkc_conv_selfcheck_all (r->dev);
  return TRUE;
}

/* Stage 1+2: the VLM (the LLM, + the ViT when there are references), released; then the
 * connector. Leaves r->seq / r->pooled in DiT row order. */
static gboolean
encode_prompt (Run *r, GError **error)
{
  DgModel *m = r->m;
  report (r, DG_STAGE_LOAD, 0, 1);
  stage_begin (r);
  g_autofree char *cdir = sub (m->path, "connector"), *vdir = sub (m->path, "vlm");
  guint n_refs = r->refs->len;
  DgVlmOptions vo = DG_VLM_OPTIONS_INIT;
  vo.precision = m->precision;
  vo.weights = r->weights;
  vo.text_only = n_refs == 0; /* text-to-image: the vision tower stays in the file */
  if (m->resident.vlm && m->resident.vlm_text_only != vo.text_only)
    g_clear_pointer (&m->resident.vlm, dg_vlm_free);
  g_autoptr (DgVlm) vlm = take ((gpointer *) &m->resident.vlm);
  if (!vlm) {
    VkDeviceSize before = upload_begin (r);
    vlm = dg_vlm_load (r->dev, vdir, &vo, error);
    upload_end (r, before);
  }
  m->resident.vlm_text_only = vo.text_only;
  if (!vlm || cancelled (r, error))
    return FALSE;

  g_autofree float **pixels = g_new0 (float *, MAX (n_refs, 1));
  g_autofree DgVlmImage *images = g_new0 (DgVlmImage, MAX (n_refs, 1));
  for (guint i = 0; i < n_refs; i++) {
    DgImage *img = g_ptr_array_index (r->refs, i);
    pixels[i] = g_new (float, (gsize) img->width * img->height * 3);
    dg_image_to_f32 (img, DG_LAYOUT_HWC, pixels[i]);
    images[i] = (DgVlmImage) { pixels[i], DG_LAYOUT_HWC, (guint) img->height, (guint) img->width };
  }
  /* One arena for the VLM and the connector, told each stage's needs from the plan. The meta
   * queries come first: every LLM row ends with them. */
  g_autoptr (DgArena) arena = dg_arena_new (r->dev, "vlm activations");
  dg_arena_expect (arena, r->plan.encode_arena);
  VkcTensor queries, merged;
  dg_arena_upload (arena, &queries, VKC_F32, 2, (const int64_t[]) { r->n_queries, r->meta_width }, r->meta_queries);
  report (r, DG_STAGE_ENCODE, 0, 1);
  gboolean ok = dg_arena_check (arena, error) && dg_vlm_encode (vlm, arena, r->batch, images, n_refs, &queries, &merged,
                                                                r->hooks ? r->hooks->vlm_timings : NULL, NULL, error);
  for (guint i = 0; i < n_refs; i++) g_free (pixels[i]);
  stage_end (r, DG_PLAN_ENCODE);
  if (!ok || cancelled (r, error))
    return FALSE;
  /* release the VLM before the connector loads (unless it is kept: its choice left the connector room) */
  keep (r, DG_PLAN_ENCODE, (gpointer *) &vlm);

  report (r, DG_STAGE_LOAD, 0, 1);
  stage_begin (r);
  g_autoptr (DgConnector) conn = take ((gpointer *) &m->resident.conn);
  if (!conn) {
    VkDeviceSize before = upload_begin (r);
    conn = dg_connector_load (r->dev, cdir, m->precision, r->weights, error);
    upload_end (r, before);
  }
  if (!conn || cancelled (r, error))
    return FALSE;
  report (r, DG_STAGE_BRIDGE, 0, 1);
  dg_arena_expect (arena, r->plan.bridge_arena);
  VkcTensor seq, pooled;
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (r->dev, error);
  if (cmd)
    dg_connector_forward (conn, cmd, arena, &merged, &pooled, &seq);
  if (!cmd || !dg_arena_check (arena, error) || !vkc_cmd_submit_wait (cmd, error)) {
    dg_error_from_vkc (error);
    return FALSE;
  }
  stage_end (r, DG_PLAN_BRIDGE);
  keep (r, DG_PLAN_BRIDGE, (gpointer *) &conn);
  g_autofree float *seq_h = dg_tensor_download_f32 (r->dev, &seq, error);
  g_autofree float *pooled_h = seq_h ? dg_tensor_download_f32 (r->dev, &pooled, error) : NULL;
  if (!pooled_h)
    return FALSE;
  observe (r, DG_PLAN_BRIDGE, seq_h, (gsize) vkc_tensor_numel (&seq));
  observe (r, DG_PLAN_BRIDGE, pooled_h, (gsize) vkc_tensor_numel (&pooled));

  /* The LLM batch is [cond…, uncond…]; the DiT's is [uncond…, cond…] (MODEL.md §10 item 14).
   * Without guidance only the conditional rows are used. */
  r->seq_len = (guint) seq.shape[1];
  gsize srow = (gsize) seq.shape[1] * seq.shape[2], prow = (gsize) pooled.shape[1];
  r->seq = g_new (float, srow * r->rows);
  r->pooled = g_new (float, prow * r->rows);
  r->seq_n = srow * r->rows;
  r->pooled_n = prow * r->rows;
  for (guint i = 0; i < r->rows; i++) {
    guint from = r->rows == 2 * r->B ? (i + r->B) % (2 * r->B) : i;
    memcpy (r->seq + i * srow, seq_h + from * srow, srow * sizeof (float));
    memcpy (r->pooled + i * prow, pooled_h + from * prow, prow * sizeof (float));
  }
  return TRUE;
}

/* Everything the VLM and connector outputs of a run depend on besides the open model: the weight
 * format, the rows (B, guidance on or off), each request's prompt, negative and reference count,
 * and every prepared reference's size and pixels. Length-prefixed, so no two differ and compare
 * equal. */
static GBytes *
conditioning_key (Run *r)
{
  GByteArray *k = g_byte_array_new ();
#define PUT(ptr, len)                                            \
  do {                                                           \
    guint64 n_ = (len);                                          \
    g_byte_array_append (k, (const guint8 *) &n_, sizeof n_);    \
    g_byte_array_append (k, (const guint8 *) (ptr), (guint) n_); \
  } while (0)
  const guint32 head[4] = { (guint32) r->weights, r->B, r->rows, r->refs->len };
  PUT (head, sizeof head);
  for (guint b = 0; b < r->B; b++) {
    PUT (r->reqs[b]->prompt, strlen (r->reqs[b]->prompt));
    PUT (r->negative[b], strlen (r->negative[b]));
    PUT (&r->n_refs[b], sizeof r->n_refs[b]);
  }
  for (guint i = 0; i < r->refs->len; i++) {
    const DgImage *img = g_ptr_array_index (r->refs, i);
    const int dims[3] = { img->width, img->height, img->channels };
    PUT (dims, sizeof dims);
    for (int y = 0; y < img->height; y++)
      PUT (img->pixels + (gsize) y * img->rowstride, (gsize) img->width * img->channels);
  }
#undef PUT
  return g_byte_array_free_to_bytes (k);
}

/* Regenerate (resident.h): when the conditioning of the last run fits this one, the VLM and the
 * connector are skipped and their outputs are this run's. Only for resident models and unhooked
 * runs (the hooks measure the VLM). */
static gboolean
reuse_conditioning (Run *r)
{
  DgModel *m = r->m;
  if (!m->resident.enabled || r->hooks || !m->cond.key)
    return FALSE;
  g_autoptr (GBytes) key = conditioning_key (r);
  if (!g_bytes_equal (key, m->cond.key))
    return FALSE;
  r->seq = g_memdup2 (m->cond.seq, m->cond.seq_n * sizeof (float));
  r->pooled = g_memdup2 (m->cond.pooled, m->cond.pooled_n * sizeof (float));
  r->seq_len = m->cond.seq_len;
  r->seq_n = m->cond.seq_n;
  r->pooled_n = m->cond.pooled_n;
  return TRUE;
}

static void
keep_conditioning (Run *r)
{
  DgModel *m = r->m;
  g_clear_pointer (&m->cond.key, g_bytes_unref);
  if (!m->resident.enabled || r->hooks)
    return;
  m->cond.seq_n = r->seq_n;
  m->cond.pooled_n = r->pooled_n;
  g_free (m->cond.seq);
  g_free (m->cond.pooled);
  m->cond.seq = g_memdup2 (r->seq, m->cond.seq_n * sizeof (float));
  m->cond.pooled = g_memdup2 (r->pooled, m->cond.pooled_n * sizeof (float));
  m->cond.seq_len = r->seq_len;
  m->cond.key = conditioning_key (r);
}

/* The bytes a pool takes for a tensor of @n f32 values. */
static guint64
piece (gint64 n)
{
  return vkc_pool_piece_size ((VkDeviceSize) n * sizeof (float));
}

/* Whether a VAE pass runs whole: as the plan decided (whole unless that would not fit, plan.h),
 * and only if vae.c can run it whole on this device at all (its dry run is finite), which the
 * plan checks too (max_binding). */
static gboolean
vae_whole (gboolean plan_tiled, guint64 dry_run_bytes)
{
  return !plan_tiled && dry_run_bytes != G_MAXUINT64;
}

/* Encodes one prepared reference; the posterior mean unless a hook injects ε (MODEL.md §1.4 (b)). */
static float *
encode_reference (Run *r, DgVae *vae, const DgImage *img, guint index, GError **error)
{
  guint down = dg_vae_downscale (vae);
  gint64 lc = dg_vae_config (vae)->latent_channels;
  int64_t lh = img->height / (int64_t) down, lw = img->width / (int64_t) down;
  g_autoptr (DgArena) arena = dg_arena_new (r->dev, "vae encode");
  const gboolean with_eps = r->hooks && r->hooks->vae_eps_seeds;
  dg_arena_expect (arena, piece ((gint64) img->height * img->width * 3) + piece (lh * lw * lc) +
                              (with_eps ? piece (lh * lw * lc) : 0));
  const gsize n_px = (gsize) img->width * img->height * 3;
  g_autofree float *px = g_new (float, n_px);
  dg_image_to_f32 (img, DG_LAYOUT_HWC, px);
  /* The reference casts the pixel tensor to the model dtype before vae.encode (MODEL.md §1.4 (b)):
   * in bf16 mode the encoder sees bf16 pixels, as the ViT path does. */
  if (r->m->precision == DG_PRECISION_BF16)
    for (gsize i = 0; i < n_px; i++) px[i] = vkc_round_bf16 (px[i]);
  if (r->hooks && r->hooks->vae_input)
    r->hooks->vae_input (r->hooks->vae_input_data, index, px, img->height, img->width);
  VkcTensor pixels, z, eps, *epsp = NULL;
  if (!DG_ACT (arena, &pixels, 1, img->height, img->width, 3) || !DG_ACT (arena, &z, 1, lh, lw, lc))
    return dg_arena_check (arena, error), NULL;
  if (with_eps) {
    /* torch draws ε as [1, C, h, w]; our latents are NHWC. */
    gsize n = (gsize) (lh * lw * lc);
    g_autofree float *nchw = g_new (float, n), *nhwc = g_new (float, n);
    dg_randn (DG_RNG_TORCH_CPU, r->hooks->vae_eps_seeds[index], DG_DTYPE_F32, nchw, n);
    for (gint64 c = 0; c < lc; c++)
      for (gint64 i = 0; i < lh * lw; i++)
        nhwc[i * lc + c] =
            r->m->precision == DG_PRECISION_BF16 ? vkc_round_bf16 (nchw[c * lh * lw + i]) : nchw[c * lh * lw + i];
    if (!DG_ACT (arena, &eps, 1, lh, lw, lc) || !vkc_tensor_upload (r->dev, &eps, nhwc, error))
      return dg_arena_check (arena, error), dg_error_from_vkc (error), NULL;
    epsp = &eps;
  }
  if (!dg_arena_check (arena, error) || !vkc_tensor_upload (r->dev, &pixels, px, error))
    return dg_error_from_vkc (error), NULL;
  gboolean ok;
  const gboolean plan_tiled = index < DG_PLAN_MAX_REFS && (r->plan.vae_encode_tiled_refs >> index & 1);
  if (vae_whole (plan_tiled, dg_vae_plan_encode_bytes (r->dev, dg_vae_config (vae), 1, img->height, img->width))) {
    g_autoptr (VkcCmd) cmd = vkc_cmd_begin (r->dev, error);
    ok = cmd != NULL;
    if (ok) {
      dg_vae_encode (vae, cmd, arena, &pixels, epsp, &z);
      ok = dg_arena_check (arena, error) && vkc_cmd_submit_wait (cmd, error);
    }
  } else {
    DgVaeTiling t = DG_VAE_TILING_DEFAULT;
    ok = dg_vae_encode_tiled (vae, &pixels, epsp, &z, &t, NULL, NULL, error);
  }
  float *lat = ok ? dg_tensor_download_f32 (r->dev, &z, error) : NULL;
  if (!lat)
    dg_error_from_vkc (error);
  else
    observe (r, DG_PLAN_VAE_ENCODE, lat, (gsize) vkc_tensor_numel (&z));
  return lat;
}

/* Stage 3 (edit/inpaint): reference latents from the VAE encoder. */
static gboolean
encode_references (Run *r, GError **error)
{
  r->ref_latents = g_ptr_array_new_with_free_func (g_free);
  if (r->refs->len == 0)
    return TRUE;
  report (r, DG_STAGE_LOAD, 0, 1);
  stage_begin (r);
  g_autofree char *dir = sub (r->m->path, "vae");
  g_autoptr (DgVae) vae = take ((gpointer *) &r->m->resident.vae_encoder);
  if (!vae) {
    VkDeviceSize before = upload_begin (r);
    vae = dg_vae_load (r->dev, dir, DG_VAE_ENCODER, r->m->precision, error);
    upload_end (r, before);
  }
  if (!vae)
    return FALSE;
  for (guint i = 0; i < r->refs->len; i++) {
    report (r, DG_STAGE_ENCODE, (int) i, (int) r->refs->len);
    float *lat = encode_reference (r, vae, g_ptr_array_index (r->refs, i), i, error);
    if (!lat)
      return FALSE;
    g_ptr_array_add (r->ref_latents, lat);
    if (cancelled (r, error))
      return FALSE;
  }
  stage_end (r, DG_PLAN_VAE_ENCODE);
  keep (r, DG_PLAN_VAE_ENCODE, (gpointer *) &vae);
  return TRUE;
}

/* The initial noise for the whole batch, drawn in PyTorch's NCHW order (so DG_RNG_TORCH_CPU
 * reproduces torch.randn([B, C, h, w]) in float32 for the seed, then the cast to the run's
 * dtype) and stored NHWC. One stream for the batch when all requests have the same seed (as the
 * reference batches it); requests with seeds of their own (variations) each get the noise of
 * their own seed, the noise a single run of that request draws. */
static void
initial_noise (Run *r, gint64 lh, gint64 lw, gint64 lc)
{
  gsize per = (gsize) (lh * lw * lc), n = per * r->B;
  g_autofree float *nchw = g_new (float, n);
  gboolean one_seed = TRUE;
  for (guint b = 1; b < r->B; b++) one_seed = one_seed && r->reqs[b]->seed == r->reqs[0]->seed;
  if (one_seed)
    dg_randn (r->reqs[0]->rng, r->reqs[0]->seed, DG_DTYPE_F32, nchw, n);
  else
    for (guint b = 0; b < r->B; b++) dg_randn (r->reqs[0]->rng, r->reqs[b]->seed, DG_DTYPE_F32, nchw + b * per, per);
  r->latents = g_new (float, n);
  for (guint b = 0; b < r->B; b++)
    for (gint64 c = 0; c < lc; c++)
      for (gint64 i = 0; i < lh * lw; i++) {
        float v = nchw[b * per + c * lh * lw + i];
        /* drawn in fp32, then cast to the run dtype (as the golden runs do) */
        r->latents[b * per + i * lc + c] = r->m->precision == DG_PRECISION_BF16 ? vkc_round_bf16 (v) : v;
      }
}

/* Change strength below 1 (DESIGN.md §6): each request's latent becomes its source's (the first
 * reference's VAE latent, the posterior mean) noised to the first kept step, as diffusers'
 * StableDiffusion3Img2ImgPipeline.prepare_latents does with scheduler.scale_noise — the noise is
 * the batch's initial noise, drawn as for strength 1. (diffusers samples the posterior there; the
 * mean keeps the source's latent the one the DiT sees as reference.) */
static void
noise_sources (Run *r, const DgSchedule *sched, gsize per)
{
  g_autofree float *x0 = g_new (float, per);
  for (guint b = 0, first = 0; b < r->B; first += r->n_refs[b], b++) {
    const float *src = g_ptr_array_index (r->ref_latents, first);
    for (gsize i = 0; i < per; i++) x0[i] = r->m->precision == DG_PRECISION_BF16 ? vkc_round_bf16 (src[i]) : src[i];
    dg_scale_noise (sched, r->first_step, x0, r->latents + b * per, per, r->m->precision);
    memcpy (r->latents + b * per, x0, per * sizeof (float));
  }
}

/* Uploads what stays for all steps: context, pooled and the reference latents, and builds the
 * per-row reference lists (both CFG halves see the same references, MODEL.md §1.4). */
typedef struct {
  VkcTensor ctx, pooled;
  VkcTensor *refs;
  const VkcTensor **ref_ptrs;
  guint *n_refs;
} DitInputs;

static gboolean
upload_dit_inputs (Run *r, const DgDitConfig *cfg, guint down, DgArena *arena, DitInputs *in, GError **error)
{
  guint nref = r->ref_latents->len;
  in->refs = g_new0 (VkcTensor, MAX (nref, 1));
  in->ref_ptrs = g_new0 (const VkcTensor *, MAX (nref, 1) * (r->rows / r->B));
  in->n_refs = g_new0 (guint, r->rows);
  guint64 pieces = piece ((gint64) r->rows * r->seq_len * cfg->joint_attention_dim) +
                   piece ((gint64) r->rows * cfg->pooled_projection_dim);
  for (guint j = 0; j < nref; j++) {
    DgImage *img = g_ptr_array_index (r->refs, j);
    pieces += piece ((gint64) (img->height / down) * (img->width / down) * cfg->in_channels);
  }
  dg_arena_expect (arena, pieces); /* one block of exactly these */
  if (!DG_ACT (arena, &in->ctx, r->rows, r->seq_len, cfg->joint_attention_dim) ||
      !DG_ACT (arena, &in->pooled, r->rows, cfg->pooled_projection_dim))
    return dg_arena_check (arena, error);
  for (guint j = 0; j < nref; j++) {
    DgImage *img = g_ptr_array_index (r->refs, j);
    if (!DG_ACT (arena, &in->refs[j], img->height / down, img->width / down, cfg->in_channels))
      return dg_arena_check (arena, error);
  }
  if (!dg_arena_check (arena, error) || !vkc_tensor_upload (r->dev, &in->ctx, r->seq, error) ||
      !vkc_tensor_upload (r->dev, &in->pooled, r->pooled, error))
    return dg_error_from_vkc (error), FALSE;
  for (guint j = 0; j < nref; j++)
    if (!vkc_tensor_upload (r->dev, &in->refs[j], g_ptr_array_index (r->ref_latents, j), error))
      return dg_error_from_vkc (error), FALSE;
  guint k = 0;
  for (guint row = 0; row < r->rows; row++) {
    guint b = row % r->B, first = 0;
    for (guint i = 0; i < b; i++) first += r->n_refs[i];
    in->n_refs[row] = r->n_refs[b];
    for (guint j = 0; j < r->n_refs[b]; j++) in->ref_ptrs[k++] = &in->refs[first + j];
  }
  return TRUE;
}

static void
dit_inputs_clear (DitInputs *in)
{
  g_free (in->refs);
  g_free (in->ref_ptrs);
  g_free (in->n_refs);
}

/* One DiT evaluation of all rows; returns the guided velocity [B, h, w, c] on the host. */
static float *
dit_step (Run *r, DgDit *dit, DgArena *arena, const DitInputs *in, float t, gint64 lh, gint64 lw, GError **error)
{
  const DgDitConfig *cfg = dg_dit_config (dit);
  gsize per = (gsize) (lh * lw * cfg->in_channels);
  VkcTensor x, ts, v;
  dg_arena_reset (arena);
  /* A failed DG_ACT leaves its error in the arena (and the later ones then fail too): one check. */
  DG_ACT (arena, &x, r->rows, lh, lw, cfg->in_channels);
  DG_ACT (arena, &ts, r->rows);
  DG_ACT (arena, &v, r->rows, lh, lw, cfg->out_channels);
  if (!dg_arena_check (arena, error))
    return NULL;
  g_autofree float *x_rows = g_new (float, per * r->rows);
  g_autofree float *t_rows = g_new (float, r->rows);
  for (guint row = 0; row < r->rows; row++) { /* both halves start from the same latents */
    memcpy (x_rows + row * per, r->latents + (row % r->B) * per, per * sizeof (float));
    t_rows[row] = t;
  }
  if (!vkc_tensor_upload (r->dev, &x, x_rows, error) || !vkc_tensor_upload (r->dev, &ts, t_rows, error))
    return dg_error_from_vkc (error), NULL;
  gboolean any_refs = r->ref_latents->len > 0;
  DgDitInput di = { &x, &ts, &in->ctx, &in->pooled, any_refs ? in->n_refs : NULL, any_refs ? in->ref_ptrs : NULL };
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (r->dev, error);
  if (!cmd || !dg_dit_forward (dit, cmd, arena, &di, &v, error) || !dg_arena_check (arena, error) ||
      !vkc_cmd_submit_wait (cmd, error))
    return dg_error_from_vkc (error), NULL;
  float *vh = dg_tensor_download_f32 (r->dev, &v, error);
  if (vh && r->rows == 2 * r->B) /* rows: [uncond…, cond…] */
    dg_cfg_combine (vh, vh, vh + per * r->B, per * r->B, r->guidance, r->m->precision);
  return vh;
}

/* Stage 4: the denoising loop (MODEL.md §1.9). */
static gboolean
denoise (Run *r, GError **error)
{
  DgModel *m = r->m;
  report (r, DG_STAGE_LOAD, 0, 1);
  stage_begin (r);
  g_autofree char *dir = sub (m->path, "transformer");
  g_autoptr (DgDit) dit = take ((gpointer *) &m->resident.dit);
  /* Uploaded: the weights when loaded now, and the position crops of sizes the DiT has not seen
   * (made during the steps, kept with its weights): its pool's growth over the stage. */
  const guint64 had = dit ? dg_dit_weight_reserved (dit) : 0;
  if (!dit)
    dit = dg_dit_load (r->dev, dir, m->precision, r->weights, error);
  if (!dit)
    return FALSE;
  const DgDitConfig *cfg = dg_dit_config (dit);
  guint down = 1u << (m->vae_config.n_blocks - 1);
  gint64 lh = r->height / down, lw = r->width / down;
  g_autoptr (DgSchedule) sched = dg_schedule_new (&m->sched_config, (guint) r->steps,
                                                  (guint) ((lh / cfg->patch_size) * (lw / cfg->patch_size)), error);
  if (!sched)
    return FALSE;
  initial_noise (r, lh, lw, cfg->in_channels);
  if (r->strength < 1.0)
    noise_sources (r, sched, (gsize) (lh * lw * cfg->in_channels));

  g_autoptr (DgArena) inputs_arena = dg_arena_new (r->dev, "dit inputs");
  DitInputs in = { 0 };
  gboolean ok = upload_dit_inputs (r, cfg, down, inputs_arena, &in, error);
  g_autoptr (DgArena) arena = dg_arena_new (r->dev, "dit activations");
  dg_arena_expect (arena, r->plan.dit_arena); /* one step, reused by every step */
  gsize n = (gsize) (lh * lw * cfg->in_channels) * r->B;
  m->preview_us = m->step_us = 0;
  const int first = (int) r->first_step, run_steps = r->steps - first;
  for (int i = first; ok && i < r->steps; i++) {
    report (r, DG_STAGE_DENOISE, i - first, run_steps);
    const gint64 t0 = g_get_monotonic_time ();
    g_autofree float *v = dit_step (r, dit, arena, &in, sched->timesteps[i], lh, lw, error);
    ok = v != NULL;
    const gint64 t1 = g_get_monotonic_time ();
    m->step_us += t1 - t0;
    if (ok && m->preview) {
      /* Before the update: x̂0 from this step's x_t and v (request 0 of the batch). */
      g_autoptr (DgImage) rgb = dg_preview_rgb (r->latents, v, sched->sigmas[i], (int) lh, (int) lw, cfg->in_channels);
      if (rgb)
        m->preview (rgb, i - first + 1, run_steps, m->preview_data);
      m->preview_us += g_get_monotonic_time () - t1;
    }
    if (ok) {
      dg_euler_step (sched, (guint) i, r->latents, v, n, m->precision);
      observe (r, DG_PLAN_DENOISE, r->latents, n);
    }
    ok = ok && !cancelled (r, error);
  }
  dit_inputs_clear (&in);
  stage_end (r, DG_PLAN_DENOISE);
  g_clear_pointer (&arena, dg_arena_free);
  g_clear_pointer (&inputs_arena, dg_arena_free);
  m->resident.last_upload += dg_dit_weight_reserved (dit) - had;
  if (ok)
    keep (r, DG_PLAN_DENOISE, (gpointer *) &dit);
  if (ok)
    report (r, DG_STAGE_DENOISE, run_steps, run_steps);
  return ok;
}

/* Stage 5: the VAE decoder → 8-bit RGB, one image at a time (bounded memory). */
static DgImage *
decode_one (Run *r, DgVae *vae, const float *latents, GError **error)
{
  guint down = dg_vae_downscale (vae);
  gint64 lh = r->height / down, lw = r->width / down, lc = dg_vae_config (vae)->latent_channels;
  g_autoptr (DgArena) arena = dg_arena_new (r->dev, "vae decode");
  dg_arena_expect (arena, piece (lh * lw * lc) + piece ((gint64) r->height * r->width * 3));
  VkcTensor z, out;
  DG_ACT (arena, &z, 1, lh, lw, lc);
  DG_ACT (arena, &out, 1, r->height, r->width, 3);
  if (!dg_arena_check (arena, error)) /* a failed DG_ACT left its error in the arena */
    return NULL;
  if (!vkc_tensor_upload (r->dev, &z, latents, error))
    return dg_error_from_vkc (error), NULL;
  gboolean ok;
  if (vae_whole (r->plan.vae_decode_tiled,
                 dg_vae_plan_decode_bytes (r->dev, dg_vae_config (vae), 1, (int) lh, (int) lw))) {
    g_autoptr (VkcCmd) cmd = vkc_cmd_begin (r->dev, error);
    ok = cmd != NULL;
    if (ok) {
      dg_vae_decode (vae, cmd, arena, &z, &out);
      ok = dg_arena_check (arena, error) && vkc_cmd_submit_wait (cmd, error);
    }
  } else {
    DgVaeTiling t = DG_VAE_TILING_DEFAULT;
    ok = dg_vae_decode_tiled (vae, &z, &out, &t, NULL, NULL, error);
  }
  g_autofree float *px = ok ? dg_tensor_download_f32 (r->dev, &out, error) : NULL;
  if (!px)
    return dg_error_from_vkc (error), NULL;
  observe (r, DG_PLAN_DECODE, px, (gsize) r->width * r->height * 3);
  if (r->m->precision == DG_PRECISION_BF16) {
    /* The reference quantises the bf16 image with bf16 arithmetic (image.h). */
    gsize n = (gsize) r->width * r->height * 3;
    g_autofree guint16 *h = g_new (guint16, n);
    for (gsize i = 0; i < n; i++) h[i] = vkc_f32_to_bf16 (px[i]);
    return dg_image_from_bf16 (h, DG_LAYOUT_HWC, r->width, r->height);
  }
  return dg_image_from_f32 (px, DG_LAYOUT_HWC, r->width, r->height);
}

/* Edit keeps the source's alpha; inpaint composites into a copy of the source so that pixels
 * outside the mask stay exactly as they were. */
static DgImage *
finish (Run *r, guint b, DgImage *generated, GError **error)
{
  const DgRequest *q = r->reqs[b];
  g_autoptr (DgImage) gen = generated;
  if (q->job == DG_JOB_GENERATE)
    return g_steal_pointer (&gen);
  if (q->job == DG_JOB_EDIT)
    return q->images[0]->channels == 4 ? dg_image_with_alpha_of (gen, q->images[0]) : g_steal_pointer (&gen);
  g_autoptr (DgImage) out = dg_image_copy (q->images[0]);
  if (!out) {
    g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("Not enough memory for the result image."));
    return NULL;
  }
  if (!dg_inpaint_apply (out, q->mask, &r->plans[b], gen, error))
    return NULL;
  return g_steal_pointer (&out);
}

static GPtrArray *
decode (Run *r, GError **error)
{
  report (r, DG_STAGE_LOAD, 0, 1);
  stage_begin (r);
  g_autofree char *dir = sub (r->m->path, "vae");
  g_autoptr (DgVae) vae = take ((gpointer *) &r->m->resident.vae_decoder);
  if (!vae) {
    VkDeviceSize before = upload_begin (r);
    vae = dg_vae_load (r->dev, dir, DG_VAE_DECODER, r->m->precision, error);
    upload_end (r, before);
  }
  if (!vae)
    return NULL;
  guint down = dg_vae_downscale (vae);
  gsize per = (gsize) (r->height / down) * (r->width / down) * dg_vae_config (vae)->latent_channels;
  g_autoptr (GPtrArray) images = g_ptr_array_new_with_free_func ((GDestroyNotify) dg_image_free);
  for (guint b = 0; b < r->B; b++) {
    report (r, DG_STAGE_DECODE, (int) b, (int) r->B);
    DgImage *img = decode_one (r, vae, r->latents + b * per, error);
    img = img ? finish (r, b, img, error) : NULL;
    if (!img || cancelled (r, error))
      return NULL;
    g_ptr_array_add (images, img);
  }
  stage_end (r, DG_PLAN_DECODE);
  keep (r, DG_PLAN_DECODE, (gpointer *) &vae);
  report (r, DG_STAGE_DECODE, (int) r->B, (int) r->B);
  return g_steal_pointer (&images);
}

/* A run's host buffers (weights converted for upload, staging copies, images, activations read
 * back) are transient: once freed, glibc keeps much of their memory in its arenas, resident and
 * scattered between live blocks, and a long-lived process (deepgen-studio, the GIMP plug-ins'
 * shared model) drifts upward run after run — the soak measured +3 MiB over 128 tiny jobs with
 * the live heap flat. Giving the free pages back at the end of each run keeps the resident size
 * to what is in use; it costs milliseconds beside a run's seconds. */
static void
give_back_free_heap (void)
{
#ifdef __GLIBC__
  malloc_trim (0);
#endif
}

GPtrArray *
dg_run_batch_measured (DgModel *model, const DgRequest *const *requests, guint n_requests, const DgRunHooks *hooks,
                       DgRunMemory *memory, DgProgressFunc progress, gpointer user_data, GCancellable *cancellable,
                       GError **error)
{
  g_return_val_if_fail (model && requests && n_requests > 0, NULL);
  if (memory)
    memset (memory, 0, sizeof *memory);
  Run r = { .m = model,
            .dev = model->engine->dev,
            .reqs = requests,
            .B = n_requests,
            .hooks = hooks,
            .memory = memory,
            .progress = progress,
            .user = user_data,
            .cancel = cancellable };
  g_mutex_lock (&model->lock);
  GPtrArray *result = NULL;
  if (dg_model_check_files (model, error) && resolve_requests (&r, error) && plan_run (&r, error) &&
      (reuse_conditioning (&r) || (encode_prompt (&r, error) && (keep_conditioning (&r), TRUE))) &&
      encode_references (&r, error) && denoise (&r, error))
    result = decode (&r, error);
  /* A weight file rewritten during the run: the stages may have read two versions of it. */
  if (result && !dg_model_check_files (model, error))
    g_clear_pointer (&result, g_ptr_array_unref);
  /* A cancel from the last progress call still wins: the caller asked for nothing. */
  if (result && cancelled (&r, error))
    g_clear_pointer (&result, g_ptr_array_unref);
  /* What stays on the device now is the kept components' (every arena of the run is gone). */
  model->resident.bytes = model->resident.enabled ? vkc_device_reserved (r.dev, NULL) : 0;
  run_clear (&r);
  give_back_free_heap ();
  g_mutex_unlock (&model->lock);
  return result;
}

GPtrArray *
dg_run_batch_hooked (DgModel *model, const DgRequest *const *requests, guint n_requests, const DgRunHooks *hooks,
                     DgProgressFunc progress, gpointer user_data, GCancellable *cancellable, GError **error)
{
  return dg_run_batch_measured (model, requests, n_requests, hooks, NULL, progress, user_data, cancellable, error);
}

GPtrArray *
dg_run_batch (DgModel *model, const DgRequest *const *requests, guint n_requests, DgProgressFunc progress,
              gpointer user_data, GCancellable *cancellable, GError **error)
{
  return dg_run_batch_hooked (model, requests, n_requests, NULL, progress, user_data, cancellable, error);
}

DgImage *
dg_run (DgModel *model, const DgRequest *request, DgProgressFunc progress, gpointer user_data,
        GCancellable *cancellable, GError **error)
{
  g_autoptr (GPtrArray) out = dg_run_batch (model, &request, 1, progress, user_data, cancellable, error);
  return out ? g_ptr_array_steal_index (out, 0) : NULL;
}

GPtrArray *
dg_run_batch_timed (DgModel *model, const DgRequest *const *requests, guint n_requests, DgStageTimes *times,
                    DgProgressFunc progress, gpointer user_data, GCancellable *cancellable, GError **error)
{
  DgVlmTimings vlm = { 0 };
  DgRunHooks hooks = { .vlm_timings = &vlm };
  DgRunMemory memory;
  GPtrArray *out =
      dg_run_batch_measured (model, requests, n_requests, &hooks, &memory, progress, user_data, cancellable, error);
  if (times) {
    *times = (DgStageTimes) { .vit_gpu_ms = vlm.vit_gpu_ms, .llm_gpu_ms = vlm.llm_gpu_ms };
    for (guint s = 0; s < DG_PLAN_N_STAGES; s++) {
      times->held[s] = memory.stage_peaks[s];
      times->planned[s] = memory.planned && memory.stage_peaks[s] ? memory.plan.stage[s].total : 0;
    }
  }
  dg_vlm_timings_clear (&vlm);
  return out;
}

/* ---- for describe_api.c (model_parts.h) ---------------------------------------------- */

#include "model_parts.h"

void
dg_model_parts (DgModel *model, DgModelParts *parts)
{
  *parts = (DgModelParts) { model->engine->dev, model->path,        model->tok,  model->precision,
                            model->weights,     &model->plan_model, &model->lock };
}
