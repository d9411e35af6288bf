/* One DeepGen run as the front-ends see it (dg_task.h). */
#include "dg_task.h"

#include <string.h>

#include "dg_gettext.h"
#include "dg_service.h"

/* ---- names ---------------------------------------------------------------------------- */

static const char *const policy_nicks[] = { "fit", "region" };
static const char *const job_nicks[] = { "generate", "edit", "inpaint" };

const char *
dg_size_policy_to_string (DgSizePolicy policy)
{
  return (guint) policy < G_N_ELEMENTS (policy_nicks) ? policy_nicks[policy] : "fit";
}

gboolean
dg_size_policy_from_string (const char *nick, DgSizePolicy *policy)
{
  for (guint i = 0; nick && i < G_N_ELEMENTS (policy_nicks); i++)
    if (g_ascii_strcasecmp (nick, policy_nicks[i]) == 0) {
      *policy = (DgSizePolicy) i;
      return TRUE;
    }
  return FALSE;
}

const char *
dg_job_to_string (DgJob job)
{
  return (guint) job < G_N_ELEMENTS (job_nicks) ? job_nicks[job] : "edit";
}

gboolean
dg_job_from_string (const char *nick, DgJob *job)
{
  for (guint i = 0; nick && i < G_N_ELEMENTS (job_nicks); i++)
    if (g_ascii_strcasecmp (nick, job_nicks[i]) == 0) {
      *job = (DgJob) i;
      return TRUE;
    }
  return FALSE;
}

void
dg_task_result_free (DgTaskResult *result)
{
  if (!result)
    return;
  dg_image_free (result->image);
  dg_image_free (result->mask);
  g_free (result->params);
  if (result->variations)
    g_ptr_array_unref (result->variations);
  g_free (result);
}

/* ---- checks and the region ------------------------------------------------------------ */

/* Bounding box of mask > 0; FALSE when the mask is all zero. */
static gboolean
mask_box (const DgMask *mask, int *x, int *y, int *width, int *height)
{
  int x0 = mask->width, y0 = mask->height, x1 = -1, y1 = -1;
  for (int j = 0; j < mask->height; j++) {
    const guint8 *r = mask->pixels + (gsize) j * mask->rowstride;
    int first = -1, last = -1;
    for (int i = 0; i < mask->width; i++)
      if (r[i]) {
        if (first < 0)
          first = i;
        last = i;
      }
    if (first < 0)
      continue;
    x0 = MIN (x0, first), x1 = MAX (x1, last);
    y0 = MIN (y0, j), y1 = j;
  }
  if (x1 < 0)
    return FALSE;
  *x = x0, *y = y0, *width = x1 - x0 + 1, *height = y1 - y0 + 1;
  return TRUE;
}

static gboolean
blank (const char *s)
{
  if (!s)
    return TRUE;
  for (; *s; s = g_utf8_next_char (s))
    if (!g_unichar_isspace (g_utf8_get_char (s)))
      return FALSE;
  return TRUE;
}

/* ---- expand (outpaint): an inpaint of the grown canvas, the new area as the mask -------- */

gboolean
dg_task_expand_sides (const DgExpandSides *sides, const char *aspect, int width, int height, DgExpandSides *out,
                      GError **error)
{
  *out = *sides;
  if (blank (aspect))
    return TRUE;
  if (sides->left || sides->top || sides->right || sides->bottom)
    return g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                                _ ("Give either an aspect ratio or the pixels to add on each side, not both.")),
           FALSE;
  int aw, ah;
  return dg_expand_parse_aspect (aspect, &aw, &ah, error) &&
         dg_expand_sides_for_aspect (width, height, aw, ah, out, error);
}

/* The expand's plan; FALSE with the geometry's message for sides it refuses. */
static gboolean
expand_check (const DgTaskSpec *spec, DgExpandPlan *plan, GError **error)
{
  DgExpandPlan p;
  return dg_expand_plan (spec->source->width, spec->source->height, spec->expand, plan ? plan : &p, error);
}

/* The region is the new canvas, in source coordinates: it starts left of and above the source. */
static gboolean
expand_region (const DgTaskSpec *spec, int *x, int *y, int *width, int *height)
{
  DgExpandPlan p;
  if (!expand_check (spec, &p, NULL))
    return FALSE;
  *x = -p.image_x, *y = -p.image_y, *width = p.canvas_width, *height = p.canvas_height;
  return TRUE;
}

/* What the expand runs: the inpaint spec of the grown canvas (source and selection replaced by
 * the canvas and its new area, the prompt by the expand instruction), owning them. */
typedef struct {
  DgTaskSpec spec;
  DgExpandPlan plan;
  DgImage *canvas;
  DgMask *mask;
  char *instruction;
} ExpandInner;

static void
expand_inner_clear (ExpandInner *in)
{
  dg_image_free (in->canvas);
  dg_image_free (in->mask);
  g_free (in->instruction);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ExpandInner, expand_inner_clear)

static gboolean
expand_inner (const DgTaskSpec *spec, ExpandInner *in, GError **error)
{
  memset (in, 0, sizeof *in);
  if (!expand_check (spec, &in->plan, error))
    return FALSE;
  in->canvas = dg_expand_canvas (spec->source, &in->plan);
  in->mask = dg_expand_mask (&in->plan);
  if (!in->canvas || !in->mask)
    return g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("Not enough memory for the %d×%d canvas."),
                        in->plan.canvas_width, in->plan.canvas_height),
           FALSE;
  in->instruction = dg_expand_instruction (spec->prompt);
  in->spec = *spec;
  in->spec.expand = NULL;
  in->spec.source = in->canvas;
  in->spec.selection = in->mask;
  in->spec.prompt = in->instruction;
  return TRUE;
}

static gboolean inpaint_plan (const DgTaskSpec *spec, const DgMask *mask, DgInpaintPlan *plan, GError **error);

/* The inpaint plan an expand runs (for the fit indicator). */
static gboolean
expand_inpaint_plan (const DgTaskSpec *spec, DgInpaintPlan *plan, GError **error)
{
  g_auto (ExpandInner) in = { 0 };
  return expand_inner (spec, &in, error) && inpaint_plan (&in.spec, in.mask, plan, error);
}

/* An inpaint result (the new area's box on the canvas) widened to the whole canvas: the canvas's
 * old pixels around it, no mask (the new layer is the whole result), placed at (−left, −top).
 * FALSE with DG_ERROR_OOM when the canvas-sized copy cannot be had. */
static gboolean
expand_widen (DgTaskResult *res, const ExpandInner *in, GError **error)
{
  g_autoptr (DgImage) full = dg_image_copy (in->canvas);
  if (!full)
    return g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("Not enough memory for the %d×%d canvas."),
                        in->plan.canvas_width, in->plan.canvas_height),
           FALSE;
  const DgImage *box = res->image;
  const int nc = full->channels;
  g_assert (box->channels == nc);
  for (int y = 0; y < box->height; y++)
    memcpy (full->pixels + (gsize) (res->y + y) * full->rowstride + (gsize) res->x * nc,
            box->pixels + (gsize) y * box->rowstride, (gsize) box->width * nc);
  dg_image_free (res->image);
  res->image = g_steal_pointer (&full);
  g_clear_pointer (&res->mask, dg_image_free);
  res->x = -in->plan.image_x, res->y = -in->plan.image_y;
  return TRUE;
}

gboolean
dg_task_check (const DgTaskSpec *spec, GError **error)
{
  g_return_val_if_fail (spec != NULL, FALSE);
  if (spec->job != DG_JOB_GENERATE && spec->job != DG_JOB_EDIT && spec->job != DG_JOB_INPAINT)
    return g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("Unknown job %d."), (int) spec->job), FALSE;
  if (spec->expand && spec->job != DG_JOB_INPAINT)
    return g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                                _ ("Expanding the canvas needs the inpaint job.")),
           FALSE;
  if (spec->expand ? spec->prompt && !g_utf8_validate (spec->prompt, -1, NULL)
                   : blank (spec->prompt) || !g_utf8_validate (spec->prompt, -1, NULL)) {
    g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                         spec->job == DG_JOB_GENERATE ? _ ("Describe the image to generate: the prompt is empty.")
                                                      : _ ("Say what to change: the instruction is empty."));
    return FALSE;
  }
  if (spec->negative_prompt && !g_utf8_validate (spec->negative_prompt, -1, NULL))
    return g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                                _ ("The negative prompt is not valid UTF-8 text.")),
           FALSE;
  if (spec->steps < 1 || spec->steps > DG_TASK_MAX_STEPS)
    return g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("Steps must be between 1 and %d, not %d."),
                        DG_TASK_MAX_STEPS, spec->steps),
           FALSE;
  if (!(spec->guidance >= 0.0 && spec->guidance <= DG_TASK_MAX_GUIDANCE))
    return g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("Guidance must be between 0 and %g, not %g."),
                        DG_TASK_MAX_GUIDANCE, spec->guidance),
           FALSE;
  if (spec->job != DG_JOB_GENERATE && !(spec->strength > 0.0 && spec->strength <= 1.0))
    return g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                        _ ("The change strength must be above 0 and at most 1, not %g."), spec->strength),
           FALSE;
  if (spec->n_results < 1 || spec->n_results > DG_TASK_MAX_RESULTS)
    return g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                        _ ("The number of results must be between 1 and %d, not %d."), DG_TASK_MAX_RESULTS,
                        spec->n_results),
           FALSE;
  if (spec->seed != DG_TASK_RANDOM_SEED && (spec->seed < 0 || spec->seed > G_MAXINT32))
    return g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                        _ ("The seed must be between 0 and %d, or -1 for a random one."), G_MAXINT32),
           FALSE;
  if (spec->size_policy != DG_SIZE_POLICY_FIT && spec->size_policy != DG_SIZE_POLICY_REGION)
    return g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("Unknown size policy %d."),
                        (int) spec->size_policy),
           FALSE;
  if (spec->max_size < DG_TASK_MIN_SIZE || spec->max_size > DG_TASK_MAX_SIZE)
    return g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                        _ ("The working size must be between %d and %d pixels, not %d."), DG_TASK_MIN_SIZE,
                        DG_TASK_MAX_SIZE, spec->max_size),
           FALSE;

  if (spec->job != DG_JOB_GENERATE && !spec->source)
    return g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                                _ ("Editing and inpainting need an image: open one first.")),
           FALSE;
  if (spec->source && !dg_image_check (spec->source, FALSE, _ ("The layer"), error))
    return FALSE;
  if (spec->n_references > 0 && spec->job == DG_JOB_GENERATE)
    return g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                                _ ("Generating takes no reference layers: use Edit to work from several layers.")),
           FALSE;
  if (spec->n_references > 0 && !spec->references)
    return g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("The reference layers are missing.")),
           FALSE;
  for (guint i = 0; i < spec->n_references; i++)
    if (!dg_image_check (spec->references[i], FALSE, _ ("A reference layer"), error))
      return FALSE;
  if (!spec->source && (spec->canvas_width < 1 || spec->canvas_height < 1))
    return g_set_error_literal (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                                _ ("Generating needs a canvas size or an image.")),
           FALSE;
  if (spec->expand)
    return expand_check (spec, NULL, error);
  if (spec->selection) {
    const int w = spec->source ? spec->source->width : spec->canvas_width;
    const int h = spec->source ? spec->source->height : spec->canvas_height;
    if (!dg_image_check (spec->selection, TRUE, _ ("The selection"), error))
      return FALSE;
    if (spec->selection->channels != 1 || spec->selection->width != w || spec->selection->height != h)
      return g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                          _ ("The selection is %d×%d, but the image is %d×%d."), spec->selection->width,
                          spec->selection->height, w, h),
             FALSE;
  }
  return TRUE;
}

gboolean
dg_task_region (const DgTaskSpec *spec, int *x, int *y, int *width, int *height, GError **error)
{
  if (!dg_task_check (spec, error))
    return FALSE;
  if (spec->expand)
    return expand_region (spec, x, y, width, height);
  if (spec->selection && mask_box (spec->selection, x, y, width, height))
    return TRUE;
  *x = *y = 0;
  *width = spec->source ? spec->source->width : spec->canvas_width;
  *height = spec->source ? spec->source->height : spec->canvas_height;
  return TRUE;
}

/* ---- working sizes -------------------------------------------------------------------- */

/* The size the model works at for a region of @w × @h: its aspect, the longer side at
 * max_size ("fit") or at the region's own (capped) size ("region"). */
static void
working_size (const DgTaskSpec *spec, int w, int h, int *ww, int *wh)
{
  const int longer = MAX (w, h);
  int target =
      spec->size_policy == DG_SIZE_POLICY_FIT ? spec->max_size : CLAMP (longer, DG_TASK_MIN_SIZE, DG_TASK_MAX_SIZE);
  const double s = (double) target / longer;
  *ww = MAX (1, (int) (w * s + 0.5));
  *wh = MAX (1, (int) (h * s + 0.5));
}

static gboolean
selection_is_empty (const DgTaskSpec *spec)
{
  int x, y, w, h;
  return !spec->selection || !mask_box (spec->selection, &x, &y, &w, &h);
}

static DgMask *
region_mask (const DgTaskSpec *spec, int x, int y, int w, int h)
{
  return selection_is_empty (spec) ? NULL : dg_image_crop (spec->selection, x, y, w, h);
}

static guint64
pick_seed (const DgTaskSpec *spec)
{
  return spec->seed == DG_TASK_RANDOM_SEED ? (guint64) g_random_int_range (0, G_MAXINT32) : (guint64) spec->seed;
}

static void
request_from_spec (const DgTaskSpec *spec, DgRequest *r, guint64 seed)
{
  *r = (DgRequest) DG_REQUEST_INIT;
  r->prompt = spec->prompt;
  r->negative_prompt = blank (spec->negative_prompt) ? NULL : spec->negative_prompt;
  r->steps = spec->steps;
  r->guidance = spec->guidance;
  r->seed = seed;
  if (spec->job != DG_JOB_GENERATE)
    r->strength = spec->strength;
}

/* @img resized to @w × @h with the colour channels bicubic and @alpha_src's alpha (if any)
 * carried through unchanged (image.h: alpha is never generated). */
static DgImage *
fit_back (const DgImage *img, int w, int h, const DgImage *alpha_src)
{
  g_autoptr (DgImage) rgb = img->channels == 4 ? dg_image_to_rgb (img) : NULL;
  g_autoptr (DgImage) back = dg_image_resize (rgb ? rgb : img, w, h, DG_RESAMPLE_BICUBIC);
  if (alpha_src && alpha_src->channels == 4)
    return dg_image_with_alpha_of (back, alpha_src);
  return g_steal_pointer (&back);
}

/* ---- the three jobs ------------------------------------------------------------------- */

/* Where a job's requests run: @model in this process, or the resident service (run_in_service). */
typedef struct {
  DgModel *model;                      /* in this process; NULL through the service */
  DgServiceClient *client;             /* the service's connection */
  const DgServiceModel *service_model; /* the model the service opens */
  DgWeightFormat service_weights;      /* what the service's last job used */
  const char *const *serve_argv;       /* to start a new service when this one was leaving */
  DgServicePreviewFunc preview;        /* asked of a new connection too */
  gpointer preview_data;
} Runner;

static GPtrArray *run_in_service (Runner *runner, const DgRequest *request, guint n_results, DgProgressFunc progress,
                                  gpointer user_data, GCancellable *cancellable, GError **error);

static DgWeightFormat
runner_last_weights (Runner *runner)
{
  return runner->model ? dg_model_last_run_weights (runner->model) : runner->service_weights;
}

/* spec->n_results copies of @first with the seeds seed, seed + 1, … in one batch: the images in
 * order, and in @reqs the requests (the caller frees it). */
static GPtrArray *
run_variations (Runner *runner, const DgTaskSpec *spec, const DgRequest *first, DgRequest **reqs,
                DgProgressFunc progress, gpointer user_data, GCancellable *cancellable, GError **error)
{
  const guint n = (guint) spec->n_results;
  DgRequest *rs = g_new (DgRequest, n);
  g_autofree const DgRequest **ptrs = g_new (const DgRequest *, n);
  for (guint i = 0; i < n; i++) {
    rs[i] = *first;
    rs[i].seed = first->seed + i;
    ptrs[i] = &rs[i];
  }
  *reqs = rs;
  if (!runner->model) /* the service makes the same batch from the first request */
    return run_in_service (runner, &rs[0], n, progress, user_data, cancellable, error);
  return dg_run_batch (runner->model, ptrs, n, progress, user_data, cancellable, error);
}

/* The first result holds the others (DgTaskResult.variations). */
static DgTaskResult *
gather (GPtrArray *results)
{
  if (!results || results->len == 0)
    return NULL;
  DgTaskResult *res = g_ptr_array_steal_index (results, 0);
  if (results->len > 0)
    res->variations = g_ptr_array_ref (results);
  return res;
}

/* res->params from the request that ran: the job is the task's (inpaint runs as an edit of the
 * prepared crop); the shared model is opened in the default precision (bf16). */
static void
record_params (DgTaskResult *res, const DgTaskSpec *spec, const DgRequest *r, Runner *runner)
{
  g_autoptr (DgJobParams) p = dg_job_params_new (r, DG_PRECISION_BF16, runner_last_weights (runner));
  p->job = spec->job;
  res->params = dg_job_params_to_string (p);
}

static DgTaskResult *
run_generate (Runner *runner, const DgTaskSpec *spec, int x, int y, int w, int h, DgProgressFunc progress,
              gpointer user_data, GCancellable *cancellable, GError **error)
{
  DgRequest r;
  const guint64 seed = pick_seed (spec);
  request_from_spec (spec, &r, seed);
  r.job = DG_JOB_GENERATE;
  working_size (spec, w, h, &r.width, &r.height);
  g_autofree DgRequest *reqs = NULL;
  g_autoptr (GPtrArray) outs = run_variations (runner, spec, &r, &reqs, progress, user_data, cancellable, error);
  if (!outs)
    return NULL;
  g_autoptr (GPtrArray) results = g_ptr_array_new_with_free_func ((GDestroyNotify) dg_task_result_free);
  for (guint i = 0; i < outs->len; i++) {
    const DgImage *out = g_ptr_array_index (outs, i);
    DgTaskResult *res = g_new0 (DgTaskResult, 1);
    res->work_width = out->width, res->work_height = out->height;
    res->image = fit_back (out, w, h, NULL);
    res->mask = region_mask (spec, x, y, w, h);
    res->x = x, res->y = y, res->seed = reqs[i].seed;
    record_params (res, spec, &reqs[i], runner);
    g_ptr_array_add (results, res);
  }
  return gather (results);
}

/* The request's images: @first (the region the result replaces), then the spec's references. */
static const DgImage **
with_references (const DgTaskSpec *spec, const DgImage *first)
{
  const DgImage **refs = g_new (const DgImage *, 1 + spec->n_references);
  refs[0] = first;
  for (guint i = 0; i < spec->n_references; i++) refs[1 + i] = spec->references[i];
  return refs;
}

static DgTaskResult *
run_edit (Runner *runner, const DgTaskSpec *spec, int x, int y, int w, int h, DgProgressFunc progress,
          gpointer user_data, GCancellable *cancellable, GError **error)
{
  g_autoptr (DgImage) crop = dg_image_crop (spec->source, x, y, w, h);
  g_autofree const DgImage **refs = with_references (spec, crop);
  DgRequest r;
  const guint64 seed = pick_seed (spec);
  request_from_spec (spec, &r, seed);
  r.job = DG_JOB_EDIT;
  r.images = refs;
  r.n_images = 1 + spec->n_references;
  working_size (spec, w, h, &r.width, &r.height);
  g_autofree DgRequest *reqs = NULL;
  g_autoptr (GPtrArray) outs = run_variations (runner, spec, &r, &reqs, progress, user_data, cancellable, error);
  if (!outs)
    return NULL;
  g_autoptr (GPtrArray) results = g_ptr_array_new_with_free_func ((GDestroyNotify) dg_task_result_free);
  for (guint i = 0; i < outs->len; i++) {
    const DgImage *out = g_ptr_array_index (outs, i);
    DgTaskResult *res = g_new0 (DgTaskResult, 1);
    res->work_width = out->width, res->work_height = out->height;
    res->image = fit_back (out, w, h, crop);
    res->mask = region_mask (spec, x, y, w, h);
    res->x = x, res->y = y, res->seed = reqs[i].seed;
    record_params (res, spec, &reqs[i], runner);
    g_ptr_array_add (results, res);
  }
  return gather (results);
}

/* The inpaint plan of @spec: the working area from the size policy. */
static gboolean
inpaint_plan (const DgTaskSpec *spec, const DgMask *mask, DgInpaintPlan *plan, GError **error)
{
  DgInpaintOptions opt = DG_INPAINT_OPTIONS_INIT;
  opt.empty_is_whole = TRUE;
  if (spec->size_policy == DG_SIZE_POLICY_FIT)
    opt.target_area = spec->max_size * spec->max_size;
  else {
    /* the crop's own area: plan once to learn it */
    if (!dg_inpaint_plan (spec->source, mask, &opt, plan, error))
      return FALSE;
    const gint64 area = (gint64) plan->crop_width * plan->crop_height;
    opt.target_area =
        (int) CLAMP (area, (gint64) DG_TASK_MIN_SIZE * DG_TASK_MIN_SIZE, (gint64) DG_TASK_MAX_SIZE * DG_TASK_MAX_SIZE);
  }
  return dg_inpaint_plan (spec->source, mask, &opt, plan, error);
}

/* inpaint.h: plan → prepare → an edit of the crop at the working size → blend. The result is
 * cut to the selection's box; inside it, unselected pixels are the source's, bit for bit. */
static DgTaskResult *
run_inpaint (Runner *runner, const DgTaskSpec *spec, DgProgressFunc progress, gpointer user_data,
             GCancellable *cancellable, GError **error)
{
  const DgMask *mask = selection_is_empty (spec) ? NULL : spec->selection;
  DgInpaintPlan plan;
  if (!inpaint_plan (spec, mask, &plan, error))
    return NULL;

  g_autoptr (DgImage) prepared = dg_inpaint_prepare (spec->source, &plan);
  g_autofree const DgImage **refs = with_references (spec, prepared);
  DgRequest r;
  const guint64 seed = pick_seed (spec);
  request_from_spec (spec, &r, seed);
  r.job = DG_JOB_EDIT;
  r.images = refs;
  r.n_images = 1 + spec->n_references;
  r.width = plan.work_width;
  r.height = plan.work_height;
  g_autofree DgRequest *reqs = NULL;
  g_autoptr (GPtrArray) outs = run_variations (runner, spec, &r, &reqs, progress, user_data, cancellable, error);
  if (!outs)
    return NULL;
  g_autoptr (GPtrArray) results = g_ptr_array_new_with_free_func ((GDestroyNotify) dg_task_result_free);
  for (guint i = 0; i < outs->len; i++) {
    const DgImage *out = g_ptr_array_index (outs, i);
    if (out->width != plan.work_width || out->height != plan.work_height) {
      /* dg_reference_size keeps a working size (multiples of 32, within the target), so the
       * edit comes back at it; anything else is a pipeline bug worth a clear message. */
      g_set_error (error, DG_ERROR, DG_ERROR_FAILED, _ ("The model returned %d×%d instead of %d×%d."), out->width,
                   out->height, plan.work_width, plan.work_height);
      return NULL;
    }
    g_autoptr (DgImage) blended = dg_inpaint_blend (spec->source, mask, &plan, out, error);
    if (!blended)
      return NULL;
    DgTaskResult *res = g_new0 (DgTaskResult, 1);
    res->work_width = out->width, res->work_height = out->height;
    res->image =
        dg_image_crop (blended, plan.box_x - plan.crop_x, plan.box_y - plan.crop_y, plan.box_width, plan.box_height);
    res->mask = mask ? dg_image_crop (mask, plan.box_x, plan.box_y, plan.box_width, plan.box_height) : NULL;
    res->x = plan.box_x, res->y = plan.box_y, res->seed = reqs[i].seed;
    record_params (res, spec, &reqs[i], runner);
    g_ptr_array_add (results, res);
  }
  return gather (results);
}

static DgTaskResult *
run_expand (Runner *runner, const DgTaskSpec *spec, DgProgressFunc progress, gpointer user_data,
            GCancellable *cancellable, GError **error)
{
  g_auto (ExpandInner) in = { 0 };
  if (!expand_inner (spec, &in, error))
    return NULL;
  g_autoptr (DgTaskResult) res = run_inpaint (runner, &in.spec, progress, user_data, cancellable, error);
  if (!res || !expand_widen (res, &in, error))
    return NULL;
  for (guint i = 0; res->variations && i < res->variations->len; i++)
    if (!expand_widen (g_ptr_array_index (res->variations, i), &in, error))
      return NULL;
  return g_steal_pointer (&res);
}

static DgTaskResult *
task_run (Runner *runner, const DgTaskSpec *spec, DgProgressFunc progress, gpointer user_data,
          GCancellable *cancellable, GError **error)
{
  int x, y, w, h;
  if (!dg_task_region (spec, &x, &y, &w, &h, error))
    return NULL;
  DgTaskResult *res = NULL;
  switch (spec->job) {
  case DG_JOB_GENERATE: res = run_generate (runner, spec, x, y, w, h, progress, user_data, cancellable, error); break;
  case DG_JOB_EDIT: res = run_edit (runner, spec, x, y, w, h, progress, user_data, cancellable, error); break;
  case DG_JOB_INPAINT:
    res = spec->expand ? run_expand (runner, spec, progress, user_data, cancellable, error)
                       : run_inpaint (runner, spec, progress, user_data, cancellable, error);
    break;
  default: g_return_val_if_reached (NULL);
  }
  if (res)
    res->weights = runner_last_weights (runner);
  for (guint i = 0; res && res->variations && i < res->variations->len; i++)
    ((DgTaskResult *) g_ptr_array_index (res->variations, i))->weights = res->weights;
  return res;
}

DgTaskResult *
dg_task_run (DgModel *model, const DgTaskSpec *spec, DgProgressFunc progress, gpointer user_data,
             GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (model != NULL, NULL);
  Runner runner = { .model = model };
  return task_run (&runner, spec, progress, user_data, cancellable, error);
}

gboolean
dg_task_fit (const DgTaskSpec *spec, const DgPlanModel *m, guint64 device_bytes, DgTaskFit *fit, GError **error)
{
  int x, y, w, h;
  if (!dg_task_region (spec, &x, &y, &w, &h, error))
    return FALSE;
  /* the model's sizes as dg_task_run's jobs give them */
  DgPlanRequest q = DG_PLAN_REQUEST_INIT;
  q.cfg = spec->guidance > 1.0;
  q.batch = (guint) spec->n_results; /* variations run as one batch */
  if (spec->job == DG_JOB_GENERATE) {
    DgRequest r = DG_REQUEST_INIT;
    working_size (spec, w, h, &r.width, &r.height);
    dg_output_size (&r, &q.width, &q.height);
  } else {
    int rw, rh;
    if (spec->job == DG_JOB_EDIT) { /* one reference, prepared at the longer working side */
      working_size (spec, w, h, &rw, &rh);
      dg_reference_size (w, h, MAX (rw, rh), &q.width, &q.height);
    } else { /* inpaint runs as an edit of the crop at the working size */
      DgInpaintPlan plan;
      if (spec->expand ? !expand_inpaint_plan (spec, &plan, error)
                       : !inpaint_plan (spec, selection_is_empty (spec) ? NULL : spec->selection, &plan, error))
        return FALSE;
      q.width = plan.work_width, q.height = plan.work_height;
    }
    q.job = DG_JOB_EDIT;
    q.n_refs = q.batch * (1 + spec->n_references); /* per request, each counted at the output's size */
  }
  DgPlan plan;
  *fit = (DgTaskFit) { 0 };
  if (!dg_plan_auto (m, &q, device_bytes, &plan, &fit->fits, error))
    return FALSE;
  fit->weights = q.weights;
  fit->required = plan.required;
  fit->device_bytes = device_bytes;
  fit->work_width = q.width, fit->work_height = q.height;
  return TRUE;
}

double
dg_task_progress_fraction (DgStage stage, int step, int n)
{
  const double f = n > 0 ? CLAMP ((double) step / n, 0.0, 1.0) : 0.0;
  switch (stage) {
  case DG_STAGE_LOAD: return 0.02 + 0.03 * f;
  case DG_STAGE_ENCODE: return 0.05 + 0.05 * f;
  case DG_STAGE_BRIDGE: return 0.10;
  case DG_STAGE_DENOISE: return 0.10 + 0.85 * f;
  case DG_STAGE_DECODE: return 0.95 + 0.05 * f;
  }
  return 0.0;
}

char *
dg_task_progress_text (DgStage stage, int step, int n)
{
  if (n > 0)
    /* TRANSLATORS: progress: "<stage name>: <step> of <steps>", e.g. "Denoising: 12 of 50" */
    return g_strdup_printf (_ ("%s: %d of %d"), dg_stage_name (stage), step, n);
  return g_strdup (dg_stage_name (stage));
}

char *
dg_task_layer_name (const char *prompt)
{
  enum { MAX_CHARS = 60 };
  g_autofree char *flat = g_strdup (prompt ? prompt : "");
  g_strdelimit (flat, "\r\n\t", ' ');
  g_strstrip (flat);
  if (!*flat)
    return g_strdup ("DeepGen");
  if (g_utf8_strlen (flat, -1) <= MAX_CHARS)
    return g_steal_pointer (&flat);
  g_autofree char *cut = g_utf8_substring (flat, 0, MAX_CHARS - 1);
  return g_strconcat (g_strchomp (cut), "…", NULL);
}

gboolean
dg_task_result_apply (DgImage *image, const DgTaskResult *result, GError **error)
{
  g_return_val_if_fail (image != NULL && result != NULL && result->image != NULL, FALSE);
  const int w = result->image->width, h = result->image->height;
  if (result->x < 0 || result->y < 0 || result->x + w > image->width || result->y + h > image->height)
    return g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                        _ ("The result (%d×%d at %d, %d) does not fit the %d×%d image."), w, h, result->x, result->y,
                        image->width, image->height),
           FALSE;
  /* The region as its own image, composited by inpaint.h with a plan that covers all of it
   * at its own size: no context, no resize (same size is a copy), no feather, so the weights
   * are the mask itself (or 255 everywhere without one). */
  g_autoptr (DgImage) region = dg_image_crop (image, result->x, result->y, w, h);
  DgInpaintPlan plan = { 0 };
  plan.image_width = plan.box_width = plan.crop_width = plan.work_width = w;
  plan.image_height = plan.box_height = plan.crop_height = plan.work_height = h;
  plan.whole = result->mask == NULL;
  g_autoptr (DgImage) blended = dg_inpaint_blend (region, result->mask, &plan, result->image, error);
  if (!blended)
    return FALSE;
  const gsize row = (gsize) w * image->channels;
  for (int y = 0; y < h; y++)
    memcpy (image->pixels + (gsize) (result->y + y) * image->rowstride + (gsize) result->x * image->channels,
            blended->pixels + (gsize) y * blended->rowstride, row);
  return TRUE;
}

/* ---- the shared model ----------------------------------------------------------------- */

static GMutex model_lock; /* held from acquire to release: one run at a time */
static GMutex cache_lock; /* guards the fields below */
static DgEngine *cache_engine;
static DgModel *cache_model;
static char *cache_path;
static gboolean cache_busy;

static gboolean
check_folder (const char *path, GError **error)
{
  if (!g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, DG_ERROR, DG_ERROR_MISSING,
                 _ ("The model folder “%s” does not exist. Download DeepGen-1.0-diffusers (see the README) "
                    "and choose its folder in the settings, or set DEEPGEN_MODEL."),
                 path);
    return FALSE;
  }
  g_autofree char *missing = dg_model_folder_missing (path);
  if (missing) {
    g_set_error (error, DG_ERROR, DG_ERROR_MISSING,
                 _ ("The model folder “%s” is not a complete DeepGen-1.0-diffusers folder. Missing:\n%s"), path,
                 missing);
    return FALSE;
  }
  return TRUE;
}

guint64
dg_task_device_bytes (char **device_name, GError **error)
{
  g_mutex_lock (&cache_lock);
  if (!cache_engine)
    cache_engine = dg_engine_new (NULL, error);
  const guint64 bytes = cache_engine ? dg_engine_device_bytes (cache_engine) : 0;
  if (cache_engine && device_name)
    *device_name = g_strdup (dg_engine_device_name (cache_engine));
  g_mutex_unlock (&cache_lock);
  return bytes;
}

DgModel *
dg_task_model_acquire (const char *path, GError **error)
{
  g_autofree char *resolved = (path && *path) ? g_canonicalize_filename (path, NULL) : dg_model_default_path ();
  g_mutex_lock (&model_lock);
  g_mutex_lock (&cache_lock);
  cache_busy = TRUE;
  gboolean ok = TRUE;
  /* Another folder, or weight files rewritten or replaced since the model was opened (an update,
   * a new download): the model is opened anew rather than the run failing. */
  if (cache_model && (g_strcmp0 (cache_path, resolved) != 0 || !dg_model_check_files (cache_model, NULL))) {
    g_clear_pointer (&cache_model, dg_model_free);
    g_clear_pointer (&cache_path, g_free);
  }
  if (!cache_model) {
    ok = check_folder (resolved, error);
    if (ok && !cache_engine)
      ok = (cache_engine = dg_engine_new (NULL, error)) != NULL;
    if (ok) {
      /* 8-bit weights only when the job would not fit the GPU otherwise */
      DgLoadOptions lo = DG_LOAD_OPTIONS_INIT;
      lo.weights = DG_WEIGHTS_AUTO;
      ok = (cache_model = dg_model_open (cache_engine, resolved, &lo, error)) != NULL;
    }
    if (ok)
      cache_path = g_steal_pointer (&resolved);
  }
  DgModel *m = ok ? cache_model : NULL;
  if (!ok)
    cache_busy = FALSE;
  g_mutex_unlock (&cache_lock);
  if (!ok)
    g_mutex_unlock (&model_lock);
  return m;
}

void
dg_task_model_release (DgModel *model)
{
  g_return_if_fail (model != NULL);
  g_mutex_lock (&cache_lock);
  cache_busy = FALSE;
  g_mutex_unlock (&cache_lock);
  g_mutex_unlock (&model_lock);
}

void
dg_task_model_unload (void)
{
  g_mutex_lock (&cache_lock);
  if (!cache_busy) {
    g_clear_pointer (&cache_model, dg_model_free);
    g_clear_pointer (&cache_engine, dg_engine_free);
    g_clear_pointer (&cache_path, g_free);
  }
  g_mutex_unlock (&cache_lock);
}

/* ---- through the resident service (dg_task_run_default, DESIGN.md §9) -------------------- */

/* A request and its variations as a job of the service: the service makes the batch
 * dg_run_batch would take here (the seeds seed, seed + 1, …), so the same images. A service that
 * was leaving (idle) as we came took nothing: once more with a new one, as the CLI does. */
G_STATIC_ASSERT (DG_TASK_MAX_RESULTS <= DG_SERVICE_MAX_RESULTS); /* variations are one job of the service */

static GPtrArray *
run_in_service (Runner *runner, const DgRequest *request, guint n_results, DgProgressFunc progress, gpointer user_data,
                GCancellable *cancellable, GError **error)
{
  DgServiceRunInfo info = { 0 };
  GError *local = NULL;
  GPtrArray *out = dg_service_client_run_batch (runner->client, runner->service_model, request, n_results, progress,
                                                user_data, &info, cancellable, &local);
  if (!out && g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED)) {
    g_clear_error (&local);
    DgServiceClient *again = dg_service_client_connect (NULL, runner->serve_argv, &local);
    if (again) {
      dg_service_client_set_preview (again, runner->preview, runner->preview_data);
      dg_service_client_free (runner->client);
      runner->client = again;
      out = dg_service_client_run_batch (runner->client, runner->service_model, request, n_results, progress, user_data,
                                         &info, cancellable, &local);
    }
  }
  runner->service_weights = info.weights;
  dg_service_run_info_clear (&info);
  if (!out)
    g_propagate_error (error, local);
  return out;
}

char *
dg_task_serve_program (void)
{
  const char *named = g_getenv ("DEEPGEN_PROGRAM");
  if (named && *named)
    return g_strdup (named);
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *self_dir = self ? g_path_get_dirname (self) : NULL;
  const char *dirs[] = { self_dir, DEEPGEN_BINDIR };
  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++) {
    if (!dirs[i])
      continue;
    g_autofree char *program = g_build_filename (dirs[i], "deepgen", NULL);
    if (g_file_test (program, G_FILE_TEST_IS_REGULAR) && g_file_test (program, G_FILE_TEST_IS_EXECUTABLE))
      return g_steal_pointer (&program);
  }
  return NULL;
}

/* The first time in this process that the service cannot be had, @o->notice says why. */
static void
notice_once (DgTaskRunOptions *o, const GError *why)
{
  static gsize said = 0;
  if (g_once_init_enter (&said)) {
    /* TRANSLATORS: %s is why the resident DeepGen service could not be used */
    o->notice = g_strdup_printf (_ ("%s Running the job in this process instead."), why->message);
    g_once_init_leave (&said, 1);
  }
}

/* FALSE when no service can be had (the caller runs the job here); TRUE when the job was settled
 * here: a result in *@res, or @error (the job's own error, the service failing mid-job, a
 * wrong folder or spec, found before anything is started). */
static gboolean
run_default_in_service (DgTaskRunOptions *o, const DgTaskSpec *spec, GCancellable *cancellable, DgTaskResult **res,
                        GError **error)
{
  g_autofree char *folder = (o->model_folder && *o->model_folder) ? g_canonicalize_filename (o->model_folder, NULL)
                                                                  : dg_model_default_path ();
  /* the same messages as in this process, before a service is started for nothing */
  if (!dg_task_check (spec, error) || !check_folder (folder, error))
    return TRUE;
  g_autofree char *program = dg_task_serve_program ();
  const char *serve_argv[] = { program, "serve", "--detach", NULL };
  g_autoptr (GError) why = NULL;
  DgServiceClient *client = dg_service_client_connect (NULL, program ? serve_argv : NULL, &why);
  if (!client) {
    notice_once (o, why);
    return FALSE;
  }
  dg_service_client_set_preview (client, o->preview, o->user_data);
  /* what dg_task_model_acquire opens: the default device, bf16, 8-bit weights only when needed */
  const DgServiceModel m = { folder, NULL, DG_PRECISION_BF16, DG_WEIGHTS_AUTO, FALSE, 0 };
  Runner runner = { .client = client,
                    .service_model = &m,
                    .serve_argv = program ? serve_argv : NULL,
                    .preview = o->preview,
                    .preview_data = o->user_data };
  *res = task_run (&runner, spec, o->progress, o->user_data, cancellable, error);
  if (*res)
    (*res)->via_service = TRUE;
  dg_service_client_free (runner.client);
  return TRUE;
}

DgTaskResult *
dg_task_run_default (DgTaskRunOptions *o, const DgTaskSpec *spec, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (o != NULL && spec != NULL, NULL);
  if (!o->in_process && !g_getenv ("DEEPGEN_NO_SERVICE")) {
    DgTaskResult *res = NULL;
    if (run_default_in_service (o, spec, cancellable, &res, error))
      return res;
  }
  DgModel *model = dg_task_model_acquire (o->model_folder, error);
  if (!model)
    return NULL;
  DgTaskResult *res = dg_task_run (model, spec, o->progress, o->user_data, cancellable, error);
  dg_task_model_release (model);
  return res;
}
