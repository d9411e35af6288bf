/* Describe: greedy captioning with the VLM (describe.h, MODEL.md §13). */
#include "describe.h"

#include <string.h>

#include "dg_i18n.h"
#include "prompt.h"

char *
dg_describe_prompt (const char *instruction, guint n_image_tokens)
{
  GString *s = g_string_new ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                             "<|im_start|>user\n<|vision_start|>");
  for (guint i = 0; i < n_image_tokens; i++) g_string_append (s, "<|image_pad|>");
  g_string_append_printf (s, "<|vision_end|>%s<|im_end|>\n<|im_start|>assistant\n", instruction);
  return g_string_free (s, FALSE);
}

void
dg_describe_positions (guint n, guint image_start, const DgVitGrid *grid, gint64 *positions)
{
  gint64 *t = positions, *h = positions + n, *w = positions + 2 * (gsize) n;
  const guint image_end = image_start + grid->merged_h * grid->merged_w;
  gint64 next = 0;
  for (guint c = 0; c < n;) {
    if (c == image_start) {
      /* get_rope_index: the image's grid at the position after the text before it (the
       * temporal index is 0 for a still image), then text continues after its largest one. */
      for (guint r = 0; r < grid->merged_h; r++)
        for (guint k = 0; k < grid->merged_w && c < n; k++, c++) {
          t[c] = next;
          h[c] = next + r;
          w[c] = next + k;
        }
      next += MAX (MAX (grid->merged_h, grid->merged_w), 1u);
      continue;
    }
    g_assert (c < image_start || c >= image_end);
    t[c] = h[c] = w[c] = next++;
    c++;
  }
}

/* The positions of tokens first..first+count−1 of a row, as dg_llm_decode takes them. */
static gint64 *
positions_slice (const gint64 *all, guint n, guint first, guint count)
{
  gint64 *p = g_new (gint64, 3 * (gsize) count);
  for (guint a = 0; a < 3; a++) memcpy (p + (gsize) a * count, all + (gsize) a * n + first, count * sizeof (gint64));
  return p;
}

/* Vision tokens in the instruction would break the image run (the reference would see a second
 * image); the user has no reason to type them. */
static gboolean
check_instruction (const char *text, GError **error)
{
  static const char *const vision[] = { "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
                                        "<|video_pad|>" };
  if (!g_utf8_validate (text, -1, NULL)) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("The instruction is not valid UTF-8 text."));
    return FALSE;
  }
  for (guint i = 0; i < G_N_ELEMENTS (vision); i++)
    if (strstr (text, vision[i])) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                   _ ("The instruction contains the special token “%s”; remove it."), vision[i]);
      return FALSE;
    }
  return TRUE;
}

/* The prompt's ids and where the image run starts in them. */
static GArray *
prompt_ids (DgTokenizer *tok, const DgQwenVLConfig *cfg, const char *instruction, const DgVitGrid *grid,
            guint *image_start, GError **error)
{
  g_autofree char *text = dg_describe_prompt (instruction, grid->n_tokens);
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  if (!dg_tokenizer_encode (tok, text, ids, error))
    return NULL;
  for (guint i = 0; i < ids->len; i++)
    if (g_array_index (ids, gint32, i) == cfg->image_token_id) {
      *image_start = i;
      guint n = 0;
      while (i + n < ids->len && g_array_index (ids, gint32, i + n) == cfg->image_token_id) n++;
      if (n == grid->n_tokens)
        return g_steal_pointer (&ids);
      break;
    }
  g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
               _ ("%s does not spell the image token <|image_pad|> as id %d (vlm/config.json image_token_id) — "
                  "does the tokenizer belong to this model?"),
               dg_tokenizer_display_name (tok), cfg->image_token_id);
  return NULL;
}

static gboolean
cancelled (GCancellable *c, GError **error)
{
  if (!g_cancellable_is_cancelled (c))
    return FALSE;
  g_set_error (error, DG_ERROR, DG_ERROR_CANCELLED, _ ("Cancelled."));
  return TRUE;
}

static gboolean
submit (VkcCmd *cmd, DgArena *arena, gboolean recorded, GError **error)
{
  if (!dg_arena_check (arena, error))
    return FALSE;
  if (!recorded) {
    g_set_error (error, DG_ERROR, DG_ERROR_FAILED, _ ("internal error: the VLM could not record its work"));
    return FALSE;
  }
  if (!vkc_cmd_submit_wait (cmd, error)) {
    dg_error_from_vkc (error);
    return FALSE;
  }
  return TRUE;
}

static VkcCmd *
begin (VkcDevice *dev, GError **error)
{
  VkcCmd *cmd = vkc_cmd_begin (dev, error);
  if (!cmd)
    dg_error_from_vkc (error);
  return cmd;
}

/* The image through the ViT into *embeds [n_tokens, hidden] of @arena (kept: the plain path
 * embeds the whole sequence again for every token). */
static gboolean
encode_image (DgVlm *vlm, DgArena *arena, const DgVlmImage *image, DgVitGrid *grid, VkcTensor *embeds, GError **error)
{
  DgVit *vit = dg_vlm_vit (vlm);
  g_autofree float *patches = dg_vlm_preprocess (dg_vlm_vision_config (vlm), dg_vit_precision (vit), image->pixels,
                                                 image->layout, image->height, image->width, grid, NULL, error);
  if (!patches)
    return FALSE;
  DgLayoutAct a[VIT_N_ACTS];
  dg_vit_layout_acts (dg_vlm_vision_config (vlm), (gint64) grid->grid_h * grid->grid_w, a);
  VkcTensor p;
  if (!dg_arena_upload (arena, &p, VKC_F32, (int) a[VIT_ACT_PATCHES].ndim, a[VIT_ACT_PATCHES].shape, patches) ||
      !dg_arena_check (arena, error))
    return FALSE;
  g_autoptr (VkcCmd) cmd = begin (dg_vlm_device (vlm), error);
  return cmd && submit (cmd, arena, dg_vit_forward (vit, cmd, arena, &p, grid, embeds, NULL), error);
}

/* Index of the largest logit, the first one on ties (torch.argmax). */
static gint32
argmax (const float *x, guint n)
{
  guint best = 0;
  for (guint i = 1; i < n; i++)
    if (x[i] > x[best])
      best = i;
  return (gint32) best;
}

typedef struct {
  DgVlm *vlm;
  DgLlm *llm;
  const DgDescribeOptions *opt;
  GArray *ids; /* prompt, then the generated tokens */
  guint n_prompt, image_start, n_image, capacity;
  gint64 *positions; /* [3, capacity] */
  const VkcTensor *image_embeds;
  DgLlmCache *cache; /* NULL on the plain path */
} Decoder;

/* One token: the prompt into the cache (first step) or the newest token through the cache, or on
 * the plain path the whole sequence so far; returns its logits [vocab] (g_free). */
static float *
step (Decoder *d, DgArena *arena, GError **error)
{
  const guint n = d->ids->len;
  const gboolean whole = !d->cache || dg_llm_cache_length (d->cache) == 0;
  const guint first = whole ? 0 : n - 1, count = n - first;
  g_autofree gint64 *pos = positions_slice (d->positions, d->capacity, first, count);
  DgLlmImageRun run = { 0, d->image_start, d->n_image, d->image_embeds };
  g_autoptr (VkcCmd) cmd = begin (dg_vlm_device (d->vlm), error);
  VkcTensor embeds, logits;
  if (!cmd || !dg_llm_embed (d->llm, cmd, arena, &g_array_index (d->ids, gint32, first), 1, count, count, NULL,
                             whole ? &run : NULL, whole ? 1 : 0, &embeds, error))
    return NULL;
  if (!submit (cmd, arena, dg_llm_decode (d->llm, cmd, arena, d->cache, pos, &embeds, &logits), error))
    return NULL;
  float *host = dg_tensor_download_f32 (dg_vlm_device (d->vlm), &logits, error);
  if (!host)
    dg_error_from_vkc (error);
  return host;
}

static void
decoder_clear (Decoder *d)
{
  if (d->ids)
    g_array_unref (d->ids);
  g_free (d->positions);
  dg_llm_cache_free (d->cache);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Decoder, decoder_clear)

GArray *
dg_vlm_describe (DgVlm *vlm, DgTokenizer *tok, const DgVlmImage *image, const DgDescribeOptions *options,
                 GError **error)
{
  DgDescribeOptions opt = DG_DESCRIBE_OPTIONS_INIT;
  if (options)
    opt = *options;
  const guint max_new = opt.max_new_tokens ? opt.max_new_tokens : DG_DESCRIBE_DEFAULT_MAX_TOKENS;
  g_autofree char *stripped = opt.instruction ? dg_prompt_strip (opt.instruction) : NULL;
  const char *instruction = stripped && *stripped ? opt.instruction : DG_DESCRIBE_DEFAULT_INSTRUCTION;
  if (max_new > DG_DESCRIBE_MAX_TOKENS) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("At most %u new tokens can be asked for, not %u."),
                 DG_DESCRIBE_MAX_TOKENS, max_new);
    return NULL;
  }
  if (!dg_vlm_vit (vlm)) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("the VLM was loaded without its vision tower (text_only) and cannot describe an image"));
    return NULL;
  }
  const DgQwenVLConfig *cfg = dg_vlm_config (vlm);
  DgLlm *llm = dg_vlm_llm (vlm);
  if (!check_instruction (instruction, error) || !dg_llm_load_head (llm, error))
    return NULL;

  /* One arena holds the image's tensors and the prompt's pass, then each token's step (reset
   * between them: a step needs far less than the prompt). The plain path embeds the image again
   * for every token, so there the image keeps an arena of its own. */
  g_autoptr (DgArena) arena = dg_arena_new (dg_vlm_device (vlm), "describe activations");
  if (opt.arena_bytes)
    dg_arena_expect (arena, opt.arena_bytes);
  g_autoptr (DgArena) plain_image = opt.plain ? dg_arena_new (dg_vlm_device (vlm), "describe image") : NULL;
  DgArena *image_arena = opt.plain ? plain_image : arena;
  DgVitGrid grid;
  VkcTensor image_embeds;
  if (!encode_image (vlm, image_arena, image, &grid, &image_embeds, error) || cancelled (opt.cancellable, error))
    return NULL;
  g_auto (Decoder) d = { .vlm = vlm, .llm = llm, .opt = &opt };
  d.ids = prompt_ids (tok, cfg, instruction, &grid, &d.image_start, error);
  if (!d.ids)
    return NULL;
  d.n_prompt = d.ids->len;
  d.n_image = grid.n_tokens;
  d.capacity = d.n_prompt + max_new;
  d.positions = g_new (gint64, 3 * (gsize) d.capacity);
  dg_describe_positions (d.capacity, d.image_start, &grid, d.positions);
  d.image_embeds = &image_embeds;
  if (!opt.plain && !(d.cache = dg_llm_cache_new (llm, d.capacity, error)))
    return NULL;
  const gint32 im_end = dg_tokenizer_token_id (tok, "<|im_end|>");
  if (opt.progress)
    opt.progress (0, max_new, opt.user_data);

  for (guint k = 0; k < max_new; k++) {
    g_autofree float *logits = step (&d, arena, error);
    if (!logits)
      return NULL;
    dg_arena_reset (arena); /* on the cached path the image's tensors go too: the cache has the prompt */
    d.image_embeds = opt.plain ? d.image_embeds : NULL;
    const gint32 id = argmax (logits, cfg->text.vocab_size);
    if (opt.on_token)
      opt.on_token (k, id, logits, cfg->text.vocab_size, opt.user_data);
    if (id == cfg->eos_token_id || id == im_end)
      break;
    g_array_append_val (d.ids, id);
    if (opt.progress)
      opt.progress (k + 1, max_new, opt.user_data);
    if (cancelled (opt.cancellable, error))
      return NULL;
  }
  GArray *out = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_array_append_vals (out, &g_array_index (d.ids, gint32, d.n_prompt), d.ids->len - d.n_prompt);
  return out;
}
