/* dg_describe (deepgen.h): the public face of Describe (model/vlm/describe.h, MODEL.md §13) —
 * the image prepared like an edit reference, the memory plan checked, the VLM loaded with its
 * vision tower, the caption decoded and the VLM released again (the residency rule of
 * pipeline.c: nothing stays on the device between jobs). */
#include "deepgen.h"
#include "describe.h"
#include "dg_i18n.h"
#include "image.h"
#include "model_parts.h"
#include "weights.h"

/* @image → an RGB image whose sides are multiples of 32 with the longest at most
 * DG_DESCRIBE_SIDE (dg_reference_size, PIL bicubic), as [-1, 1] floats (HWC). */
static float *
prepare (const DgImage *image, int *width, int *height, GError **error)
{
  if (!dg_image_check (image, FALSE, _ ("the image to describe"), error))
    return NULL;
  dg_reference_size (image->width, image->height, DG_DESCRIBE_SIDE, width, height);
  g_autoptr (DgImage) rgb = dg_image_to_rgb (image);
  g_autoptr (DgImage) sized = rgb && (*width != rgb->width || *height != rgb->height)
                                  ? dg_image_resize (rgb, *width, *height, DG_RESAMPLE_BICUBIC)
                                  : NULL;
  const DgImage *use = sized ? sized : rgb;
  float *pixels = use ? g_try_new (float, (gsize) *width **height * 3) : NULL;
  if (!pixels) {
    g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("Not enough memory to prepare the input image."));
    return NULL;
  }
  dg_image_to_f32 (use, DG_LAYOUT_HWC, pixels);
  return pixels;
}

/* The weight format and the check of the plan: AUTO takes the first that fits. */
static gboolean
plan_describe (const DgModelParts *p, int width, int height, guint max_new, DgWeightFormat *weights,
               guint64 *arena_bytes, GError **error)
{
  DgVitGrid grid;
  if (!dg_vit_grid ((guint) height, (guint) width, &p->plan_model->vlm.vision, &grid, error))
    return FALSE;
  g_autofree char *prompt = dg_describe_prompt (DG_DESCRIBE_DEFAULT_INSTRUCTION, grid.n_tokens);
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  if (!dg_tokenizer_encode (p->tok, prompt, ids, error))
    return FALSE;
  const VkcDeviceInfo *info = vkc_device_info (p->dev);
  DgPlanRequest q = DG_PLAN_REQUEST_INIT;
  q.precision = p->precision;
  q.device_bytes = info->device_local_bytes;
  q.max_allocation = MIN (info->max_memory_allocation_size, info->max_buffer_size);
  q.max_binding = info->max_storage_buffer_range;
  q.weights = p->weights == DG_WEIGHTS_AUTO ? DG_WEIGHTS_RELEASED : p->weights;
  /* The instruction's own tokens are not known here; the default's count stands in for them
   * (a long instruction adds a few kilobytes of activations). */
  DgPlan plan;
  if (!dg_plan_describe (p->plan_model, &q, width, height, ids->len, max_new, &plan, error))
    return FALSE;
  guint n_smaller;
  const DgWeightFormat *smaller = dg_plan_auto_fallbacks (&n_smaller);
  for (guint i = 0; p->weights == DG_WEIGHTS_AUTO && i < n_smaller && !dg_plan_check (&plan, q.device_bytes, NULL);
       i++) {
    q.weights = smaller[i];
    if (!dg_plan_describe (p->plan_model, &q, width, height, ids->len, max_new, &plan, error))
      return FALSE;
  }
  *weights = q.weights;
  *arena_bytes = plan.encode_arena;
  return dg_plan_check (&plan, q.device_bytes, error);
}

typedef struct {
  DgProgressFunc func;
  gpointer user_data;
} Progress;

static void
report_tokens (guint done, guint max, gpointer user_data)
{
  const Progress *p = user_data;
  if (p->func)
    p->func (DG_STAGE_ENCODE, (int) done, (int) max, p->user_data);
}

static char *
describe_locked (const DgModelParts *p, const DgImage *image, const char *instruction, int max_tokens,
                 DgProgressFunc progress, gpointer user_data, GCancellable *cancellable, GError **error)
{
  const guint max_new = max_tokens > 0 ? (guint) max_tokens : DG_DESCRIBE_DEFAULT_MAX_TOKENS;
  if (max_new > DG_DESCRIBE_MAX_TOKENS) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("At most %u new tokens can be asked for, not %u."),
                 DG_DESCRIBE_MAX_TOKENS, max_new);
    return NULL;
  }
  int width, height;
  g_autofree float *pixels = prepare (image, &width, &height, error);
  DgVlmOptions vo = DG_VLM_OPTIONS_INIT;
  vo.precision = p->precision;
  guint64 arena_bytes = 0;
  if (!pixels || !plan_describe (p, width, height, max_new, &vo.weights, &arena_bytes, error))
    return NULL;
  if (g_cancellable_set_error_if_cancelled (cancellable, error)) {
    g_clear_error (error);
    g_set_error (error, DG_ERROR, DG_ERROR_CANCELLED, _ ("Cancelled."));
    return NULL;
  }
  if (progress)
    progress (DG_STAGE_LOAD, 0, 1, user_data);
  g_autofree char *vdir = g_build_filename (p->path, "vlm", NULL);
  g_autoptr (DgVlm) vlm = dg_vlm_load (p->dev, vdir, &vo, error);
  if (!vlm)
    return NULL;
  Progress pr = { progress, user_data };
  DgDescribeOptions opt = DG_DESCRIBE_OPTIONS_INIT;
  opt.instruction = instruction;
  opt.max_new_tokens = max_new;
  opt.cancellable = cancellable;
  opt.arena_bytes = arena_bytes;
  opt.progress = report_tokens;
  opt.user_data = &pr;
  DgVlmImage img = { pixels, DG_LAYOUT_HWC, (guint) height, (guint) width };
  g_autoptr (GArray) ids = dg_vlm_describe (vlm, p->tok, &img, &opt, error);
  if (!ids)
    return NULL;
  return dg_tokenizer_decode (p->tok, (const gint32 *) ids->data, ids->len);
}

char *
dg_describe (DgModel *model, const DgImage *image, const char *instruction, int max_tokens, DgProgressFunc progress,
             gpointer user_data, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (model && image, NULL);
  DgModelParts p;
  dg_model_parts (model, &p);
  g_mutex_lock (p.lock);
  char *text = describe_locked (&p, image, instruction, max_tokens, progress, user_data, cancellable, error);
  g_mutex_unlock (p.lock);
  return text;
}
