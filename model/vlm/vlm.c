/* The VLM glue (vlm.h): loading, preprocessing, input assembly, the two stages. */
#include "vlm.h"

#include <math.h>
#include <string.h>

#include "dg_i18n.h"
#include "vkc_half.h"

struct _DgVlm {
  VkcDevice *dev;
  DgQwenVLConfig cfg;
  DgSafetensors *st; /* kept open: the LLM gathers embedding rows from it */
  gboolean nested;
  gboolean lora;
  DgVit *vit;
  DgLlm *llm;
};

/* The two key layouts of MODEL.md §2.3, told apart by where the embedding table is. */
static gboolean
detect_layout (DgVlm *vlm, GError **error)
{
  if (dg_safetensors_find (vlm->st, "model.language_model.embed_tokens.weight"))
    vlm->nested = TRUE;
  else if (dg_safetensors_find (vlm->st, "model.embed_tokens.weight"))
    vlm->nested = FALSE;
  else {
    g_set_error (error, DG_ERROR, DG_ERROR_MISSING,
                 _ ("%s has neither 'model.embed_tokens.weight' nor 'model.language_model.embed_tokens.weight' — "
                    "is this the vlm folder of DeepGen-1.0-diffusers (a Qwen2.5-VL)?"),
                 dg_safetensors_display_name (vlm->st));
    return FALSE;
  }
  return TRUE;
}

/* A checkpoint saved with PEFT wrappers still in place has "<module>.base_layer.weight" and
 * "<module>.lora_A.<adapter>.weight"; loading only the base would silently drop the adapter. */
static gboolean
refuse_wrapped_peft (DgVlm *vlm, GError **error)
{
  for (guint i = 0; i < dg_safetensors_n_tensors (vlm->st); i++) {
    const char *name = dg_safetensors_tensor (vlm->st, i)->name;
    if (strstr (name, ".base_layer.") || strstr (name, ".lora_A") || strstr (name, ".lora_embedding_A")) {
      g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                   _ ("%s holds unmerged PEFT LoRA tensors ('%s'); save the model with merge_and_unload(), or "
                      "save the adapter separately and pass its folder"),
                   dg_safetensors_display_name (vlm->st), name);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
open_lora (const char *path, const DgVlmOptions *opt, DgLora **lora, GError **error)
{
  *lora = NULL;
  if (opt->lora)
    *lora = dg_lora_open (opt->lora, error);
  else if (dg_lora_folder_has_adapter (path))
    *lora = dg_lora_open (path, error);
  else
    return TRUE;
  return *lora != NULL;
}

DgVlm *
dg_vlm_load (VkcDevice *dev, const char *path, const DgVlmOptions *options, GError **error)
{
  DgVlmOptions opt = DG_VLM_OPTIONS_INIT;
  if (options)
    opt = *options;
  g_autoptr (DgVlm) vlm = g_new0 (DgVlm, 1);
  vlm->dev = dev;
  g_autofree char *config = g_build_filename (path, "config.json", NULL);
  g_autoptr (DgLora) lora = NULL;
  if (!dg_qwen_vl_config_load (config, &vlm->cfg, error) || !(vlm->st = dg_safetensors_open (path, error)) ||
      !detect_layout (vlm, error) || !refuse_wrapped_peft (vlm, error) || !open_lora (path, &opt, &lora, error))
    return NULL;
  vlm->lora = lora != NULL;
  if (!opt.text_only) {
    vlm->vit = dg_vit_load (dev, &vlm->cfg.vision, vlm->st, vlm->nested ? "model.visual." : "visual.", opt.precision,
                            opt.weights, lora, error);
    if (!vlm->vit)
      return NULL;
  }
  vlm->llm = dg_llm_load (dev, &vlm->cfg.text, vlm->st, vlm->nested ? "model.language_model." : "model.", opt.precision,
                          opt.weights, lora, error);
  if (!vlm->llm)
    return NULL;
  return g_steal_pointer (&vlm);
}

void
dg_vlm_free (DgVlm *vlm)
{
  if (!vlm)
    return;
  dg_llm_free (vlm->llm);
  dg_vit_free (vlm->vit);
  dg_safetensors_free (vlm->st);
  g_free (vlm);
}

const DgQwenVLConfig *
dg_vlm_config (const DgVlm *vlm)
{
  return &vlm->cfg;
}
const DgQwenVisionConfig *
dg_vlm_vision_config (const DgVlm *vlm)
{
  return &vlm->cfg.vision;
}
DgVit *
dg_vlm_vit (DgVlm *vlm)
{
  return vlm->vit;
}
DgLlm *
dg_vlm_llm (DgVlm *vlm)
{
  return vlm->llm;
}
VkcDevice *
dg_vlm_device (DgVlm *vlm)
{
  return vlm->dev;
}
gboolean
dg_vlm_nested_layout (const DgVlm *vlm)
{
  return vlm->nested;
}
gboolean
dg_vlm_has_lora (const DgVlm *vlm)
{
  return vlm->lora;
}

void
dg_vlm_timings_clear (DgVlmTimings *t)
{
  g_clear_pointer (&t->vit_profile, g_hash_table_unref);
  g_clear_pointer (&t->llm_profile, g_hash_table_unref);
}

/* ---- preprocessing (host) ---------------------------------------------------------------- */

/* CLIP normalisation constants of DeepGen's ViT path (MODEL.md §1.4a step 2). */
static const float clip_mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
static const float clip_std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };

/* One output coordinate of torch's bilinear upsampling with a given scale factor
 * (align_corners=False): src = ratio·(dst + ½) − ½ in fp32, clamped at 0; the two taps and
 * the weight of the second one. ratio = 1/scale_factor, as torch uses it when the caller gives
 * the scale (F.interpolate(scale_factor=28/32)). The fused multiply-adds here and in rescale()
 * reproduce torch's compiled CPU kernel (upsample_linear_channels_last, which it takes for
 * 3-channel images): measured bit-identical on 99.996 % of the bf16 outputs and within one fp32
 * ulp everywhere. */
static void
bilinear_tap (float ratio, guint dst, guint in_size, guint *i0, guint *i1, float *l1)
{
  float src = fmaf (ratio, (float) dst + 0.5f, -0.5f);
  if (src < 0)
    src = 0;
  guint i = MIN ((guint) floorf (src), in_size - 1);
  *l1 = MIN (MAX (src - (float) i, 0.0f), 1.0f);
  *i0 = i;
  *i1 = i + (i < in_size - 1 ? 1 : 0);
}

/* Planar [3, oh, ow] bilinear rescale of a [-1, 1] image. In bf16 the input is bf16 and the
 * weights and the sum stay fp32 (torch's opmath), rounded once at the end. */
static void
rescale (const float *img, DgLayout layout, guint h, guint w, guint oh, guint ow, gboolean bf16, float *out)
{
  const float ratio_h = (float) (1.0 / ((double) oh / h)), ratio_w = (float) (1.0 / ((double) ow / w));
  for (guint oy = 0; oy < oh; oy++) {
    guint y0, y1;
    float ly;
    bilinear_tap (ratio_h, oy, h, &y0, &y1, &ly);
    for (guint ox = 0; ox < ow; ox++) {
      guint x0, x1;
      float lx;
      bilinear_tap (ratio_w, ox, w, &x0, &x1, &lx);
      const float w00 = (1.0f - ly) * (1.0f - lx), w01 = (1.0f - ly) * lx;
      const float w10 = ly * (1.0f - lx), w11 = ly * lx;
      for (guint c = 0; c < 3; c++) {
#define PIX(yy, xx) \
  (layout == DG_LAYOUT_CHW ? img[((gsize) c * h + (yy)) * w + (xx)] : img[((gsize) (yy) * w + (xx)) * 3 + c])
        float p00 = PIX (y0, x0), p01 = PIX (y0, x1), p10 = PIX (y1, x0), p11 = PIX (y1, x1);
#undef PIX
        if (bf16) {
          p00 = vkc_round_bf16 (p00);
          p01 = vkc_round_bf16 (p01);
          p10 = vkc_round_bf16 (p10);
          p11 = vkc_round_bf16 (p11);
        }
        float v = fmaf (p11, w11, fmaf (p10, w10, fmaf (p01, w01, p00 * w00)));
        out[((gsize) c * oh + oy) * ow + ox] = bf16 ? vkc_round_bf16 (v) : v;
      }
    }
  }
}

/* (x + 1)/2, then (x − mean)/std per channel; every step rounded in bf16 like torch's bf16
 * tensor arithmetic, with the bf16-cast constants of the reference's buffers. */
static void
normalise (float *x, guint plane, gboolean bf16)
{
  for (guint c = 0; c < 3; c++) {
    float mean = bf16 ? vkc_round_bf16 (clip_mean[c]) : clip_mean[c];
    float std = bf16 ? vkc_round_bf16 (clip_std[c]) : clip_std[c];
    float *p = x + (gsize) c * plane;
    for (guint i = 0; i < plane; i++) {
      float v = p[i] + 1.0f;
      if (bf16)
        v = vkc_round_bf16 (v);
      v = v / 2.0f;
      v = v - mean;
      if (bf16)
        v = vkc_round_bf16 (v);
      v = v / std;
      p[i] = bf16 ? vkc_round_bf16 (v) : v;
    }
  }
}

/* Patch rows in the 2×2-grouped order (merged row, merged col, inner row, inner col), each
 * (channel, frame, y, x) with the two temporal frames identical (MODEL.md §1.4a step 3). */
static void
patchify (const DgQwenVisionConfig *cfg, const float *x, const DgVitGrid *grid, float *out)
{
  const guint P = cfg->patch_size, T = cfg->temporal_patch_size, H = grid->resized_h, W = grid->resized_w;
  const guint row = 3 * T * P * P;
  gsize r = 0;
  for (guint by = 0; by < grid->merged_h; by++)
    for (guint bx = 0; bx < grid->merged_w; bx++)
      for (guint u = 0; u < 4; u++, r++) {
        const guint y0 = (by * 2 + u / 2) * P, x0 = (bx * 2 + u % 2) * P;
        float *o = out + r * row;
        for (guint c = 0; c < 3; c++)
          for (guint t = 0; t < T; t++)
            for (guint py = 0; py < P; py++, o += P)
              memcpy (o, x + ((gsize) c * H + y0 + py) * W + x0, P * sizeof (float));
      }
}

float *
dg_vlm_preprocess (const DgQwenVisionConfig *cfg, DgPrecision precision, const float *image, DgLayout layout,
                   guint height, guint width, DgVitGrid *grid, float **resized, GError **error)
{
  if (cfg->in_channels != 3 || cfg->spatial_merge_size != 2) {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 _ ("vlm/config.json: the vision tower does not take RGB "
                    "images in 2 × 2 merged patches"));
    return NULL;
  }
  if (!dg_vit_grid (height, width, cfg, grid, error))
    return NULL;
  const gboolean bf16 = precision == DG_PRECISION_BF16;
  const guint oh = grid->resized_h, ow = grid->resized_w;
  g_autofree float *x = g_new (float, (gsize) 3 * oh * ow);
  rescale (image, layout, height, width, oh, ow, bf16, x);
  if (resized)
    *resized = g_memdup2 (x, (gsize) 3 * oh * ow * sizeof (float));
  normalise (x, oh * ow, bf16);
  const gsize n = (gsize) grid->grid_h * grid->grid_w;
  float *patches = g_new (float, n * 3 * cfg->temporal_patch_size * cfg->patch_size * cfg->patch_size);
  patchify (cfg, x, grid, patches);
  return patches;
}

/* ---- encoding ------------------------------------------------------------------------------ */

/* The flat image index of batch image @i: images are listed per row, cond rows first, and an
 * uncond row repeats the references of its request. */
static guint
flat_image (const DgPromptBatch *b, guint i)
{
  const DgPromptImage *im = &b->images[i];
  return b->row_first_image[im->request] + im->reference;
}

static gboolean
check_images (const DgVlm *vlm, const DgPromptBatch *b, const DgVlmImage *images, guint n_images, GError **error)
{
  const guint n_refs = b->row_first_image[b->n_requests];
  if ((n_refs > 0 || n_images > 0) && !vlm->vit) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("the VLM was loaded without its vision tower (text_only) and cannot encode the %u reference "
                    "images; load it with the vision tower for prompts with images"),
                 MAX (n_refs, n_images));
    return FALSE;
  }
  if (n_images != n_refs) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("the prompt batch was built for %u reference images, but %u were given"), n_refs, n_images);
    return FALSE;
  }
  for (guint i = 0; i < b->n_images; i++) {
    const DgPromptImage *im = &b->images[i];
    const DgVlmImage *img = &images[flat_image (b, i)];
    if (img->height != im->grid.resized_h * 8 / 7 || img->width != im->grid.resized_w * 8 / 7 ||
        b->input_ids[(gsize) im->row * b->seq_len + im->start] != vlm->cfg.image_token_id) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                   _ ("reference image %u is %u × %u, but the prompt batch was built for another size or layout"),
                   flat_image (b, i), img->width, img->height);
      return FALSE;
    }
  }
  return TRUE;
}

/* A forward function returned FALSE: the arena's error, or (a caller contract broken, already
 * reported by g_return_val_if_fail) a generic one, so that FALSE always comes with an error. */
static gboolean
forward_failed (DgArena *arena, GError **error)
{
  if (dg_arena_check (arena, error))
    g_set_error (error, DG_ERROR, DG_ERROR_FAILED, _ ("internal error: the VLM could not record its work"));
  return FALSE;
}

static gboolean
submit (VkcCmd *cmd, DgArena *arena, double *gpu_ms, double *wall_ms, GHashTable **profile, gint64 t0, GError **error)
{
  if (!dg_arena_check (arena, error))
    return FALSE;
  if (!vkc_cmd_submit_wait (cmd, error)) {
    dg_error_from_vkc (error);
    return FALSE;
  }
  *wall_ms = (double) (g_get_monotonic_time () - t0) / 1000.0;
  *profile = vkc_cmd_profile (cmd);
  *gpu_ms = *profile ? vkc_cmd_gpu_ms (cmd) : -1.0;
  return TRUE;
}

/* Stage 1: every reference through the ViT. embeds[f] of flat image f. */
static gboolean
encode_images (DgVlm *vlm, DgArena *arena, const DgVlmImage *images, guint n_images, VkcTensor *embeds,
               DgVlmTimings *tm, const DgVlmTaps *taps, GError **error)
{
  if (n_images == 0)
    return TRUE;
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (vlm->dev, error);
  if (!cmd) {
    dg_error_from_vkc (error);
    return FALSE;
  }
  for (guint f = 0; f < n_images; f++) {
    DgVitGrid grid;
    g_autofree float *patches =
        dg_vlm_preprocess (&vlm->cfg.vision, dg_vit_precision (vlm->vit), images[f].pixels, images[f].layout,
                           images[f].height, images[f].width, &grid, NULL, error);
    VkcTensor p;
    DgLayoutAct a[VIT_N_ACTS];
    dg_vit_layout_acts (&vlm->cfg.vision, (gint64) grid.grid_h * grid.grid_w, a);
    if (!patches || !dg_arena_tensor (arena, &p, VKC_F32, (int) a[VIT_ACT_PATCHES].ndim, a[VIT_ACT_PATCHES].shape) ||
        !dg_arena_check (arena, error))
      return FALSE;
    if (!vkc_tensor_upload (vlm->dev, &p, patches, error)) {
      dg_error_from_vkc (error);
      return FALSE;
    }
    if (!dg_vit_forward (vlm->vit, cmd, arena, &p, &grid, &embeds[f], taps ? &taps->vit : NULL))
      return forward_failed (arena, error);
  }
  return submit (cmd, arena, &tm->vit_gpu_ms, &tm->vit_wall_ms, &tm->vit_profile, t0, error);
}

/* Stage 2: prompt rows + image embeddings + meta queries through the decoder. */
static gboolean
encode_text (DgVlm *vlm, DgArena *arena, const DgPromptBatch *b, const VkcTensor *embeds, const VkcTensor *meta_queries,
             VkcTensor *merged, DgVlmTimings *tm, const DgVlmTaps *taps, GError **error)
{
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (vlm->dev, error);
  if (!cmd) {
    dg_error_from_vkc (error);
    return FALSE;
  }
  g_autofree DgLlmImageRun *runs = g_new0 (DgLlmImageRun, MAX (b->n_images, 1));
  for (guint i = 0; i < b->n_images; i++)
    runs[i] = (DgLlmImageRun) { b->images[i].row, b->images[i].start, b->images[i].grid.n_tokens,
                                &embeds[flat_image (b, i)] };
  VkcTensor inputs;
  if (!dg_llm_embed (vlm->llm, cmd, arena, b->input_ids, b->n_rows, b->seq_len, b->text_len, meta_queries, runs,
                     b->n_images, &inputs, error))
    return FALSE;
  DgLlmBatch lb = { b->n_rows, b->seq_len, b->attention_mask, b->position_ids };
  if (!dg_llm_forward (vlm->llm, cmd, arena, &lb, &inputs, merged, taps ? &taps->llm : NULL))
    return forward_failed (arena, error);
  return submit (cmd, arena, &tm->llm_gpu_ms, &tm->llm_wall_ms, &tm->llm_profile, t0, error);
}

gboolean
dg_vlm_encode (DgVlm *vlm, DgArena *arena, const DgPromptBatch *batch, const DgVlmImage *images, guint n_images,
               const VkcTensor *meta_queries, VkcTensor *merged, DgVlmTimings *timings, const DgVlmTaps *taps,
               GError **error)
{
  DgVlmTimings local = { -1, -1, 0, 0, NULL, NULL };
  DgVlmTimings *tm = timings ? timings : &local;
  *tm = local;
  if (!check_images (vlm, batch, images, n_images, error))
    return FALSE;
  if (batch->n_queries && (!meta_queries || meta_queries->shape[0] != batch->n_queries)) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("the prompt batch has %u meta-query slots, but the meta queries have %" PRId64 " rows"),
                 batch->n_queries, meta_queries ? meta_queries->shape[0] : 0);
    return FALSE;
  }
  g_autofree VkcTensor *embeds = g_new0 (VkcTensor, MAX (n_images, 1));
  gboolean ok = encode_images (vlm, arena, images, n_images, embeds, tm, taps, error) &&
                encode_text (vlm, arena, batch, embeds, meta_queries, merged, tm, taps, error);
  dg_vlm_timings_clear (&local);
  return ok;
}
