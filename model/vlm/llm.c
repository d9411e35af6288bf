/* The Qwen2.5-VL language model (llm.h, MODEL.md §1.5–§1.7, §2.1). */
#include "llm.h"

#include <math.h>
#include <string.h>

#include "dg_i18n.h"
#include "mapped_guard.h"
#include "plan.h"
#include "dtype.h"
#include "vkc_half.h"
#include "vkc_ops_attention.h"
#include "vkc_ops_convert.h"
#include "vkc_ops_eltwise.h"
#include "vkc_ops_linear.h"
#include "vkc_ops_norm.h"

/* DeepGen stacks every sixth hidden state from the deepest down:
 * range(num_layers − 1, 0, −6) (MODEL.md §1.7, §10 item 3). */

typedef struct {
  VkcTensor in_norm, post_norm; /* [H] */
  VkcTensor q_w, q_b, k_w, k_b, v_w, v_b;
  VkcTensor o_w;                  /* no bias (MODEL.md §2.1) */
  VkcTensor gate_w, up_w, down_w; /* no biases */
} LlmLayer;

struct _DgLlm {
  VkcDevice *dev;
  DgQwenTextConfig cfg;
  DgPrecision precision;
  DgWeights *w;
  const DgTensorInfo *embed;  /* [vocab, H] in the borrowed mapping */
  DgLoraEmbedding embed_lora; /* rank 0 when none */
  LlmLayer *layers;
  VkcTensor norm;
  DgWeightFormat weights; /* the Linear format it was loaded with (the output head follows it) */
  DgWeights *head_w;      /* the output head's pool (dg_llm_load_head), NULL before */
  VkcTensor head;         /* [vocab, hidden] */
  guint n_selected;
  guint selected[DG_CONFIG_MAX_LAYERS];
};

/* An f32 activation of the layout's shape from the arena. */
static gboolean
take (DgArena *arena, VkcTensor *out, const DgLayoutAct *a)
{
  return dg_arena_tensor (arena, out, VKC_F32, (int) a->ndim, a->shape);
}

/* ---- loading --------------------------------------------------------------------------- */

typedef struct {
  DgLlm *llm;
  DgWeights *w;
  DgLora *lora;
} Loader;

static gboolean
load_embedding (DgLlm *llm, DgLora *lora, GError **error)
{
  const DgQwenTextConfig *c = &llm->cfg;
  g_autofree char *name = g_strconcat (llm->w->prefix, "embed_tokens.weight", NULL);
  llm->embed = dg_safetensors_expect (llm->w->st, name, DG_DTYPES_FLOAT, 2,
                                      (const gint64[]) { c->vocab_size, c->hidden }, error);
  if (!llm->embed)
    return FALSE;
  gboolean found;
  return !lora || dg_lora_take_embedding (lora, DG_LORA_TEXT, "embed_tokens", c->vocab_size, c->hidden,
                                          &llm->embed_lora, &found, error);
}

/* Uploads one tensor of the layout (llm_layout.h), merging the LoRA into the Linear weights. */
static gboolean
load_tensor (const DgLayoutTensor *t, gpointer data, GError **error)
{
  Loader *l = data;
  DgLlm *llm = l->llm;
  if (t->slot == LLM_EMBED)
    return load_embedding (llm, l->lora, error);
  LlmLayer *y = t->layer >= 0 ? &llm->layers[t->layer] : NULL;
  VkcTensor *dst = NULL;
  switch ((DgLlmSlot) t->slot) {
  case LLM_EMBED: g_assert_not_reached ();
  case LLM_IN_NORM: dst = &y->in_norm; break;
  case LLM_POST_NORM: dst = &y->post_norm; break;
  case LLM_Q: dst = t->sub ? &y->q_b : &y->q_w; break;
  case LLM_K: dst = t->sub ? &y->k_b : &y->k_w; break;
  case LLM_V: dst = t->sub ? &y->v_b : &y->v_w; break;
  case LLM_O: dst = &y->o_w; break;
  case LLM_GATE: dst = &y->gate_w; break;
  case LLM_UP: dst = &y->up_w; break;
  case LLM_DOWN: dst = &y->down_w; break;
  case LLM_NORM: dst = &llm->norm; break;
  }
  if (t->kind == DG_LAYOUT_LINEAR) {
    g_autofree char *module = g_strndup (t->name, strlen (t->name) - strlen (".weight"));
    return dg_lora_weights_matrix (l->w, l->lora, DG_LORA_TEXT, module, t->shape[0], t->shape[1], dst, error);
  }
  return dg_weights_vector (l->w, dst, t->shape[0], error, "%s", t->name);
}

DgLlm *
dg_llm_load (VkcDevice *dev, const DgQwenTextConfig *cfg, const DgSafetensors *st, const char *prefix,
             DgPrecision precision, DgWeightFormat weights, DgLora *lora, GError **error)
{
  if (cfg->act != DG_ACT_SILU) {
    g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED,
                 _ ("vlm/config.json: the language model uses %s; DeepGen's Qwen2.5-VL uses silu"),
                 dg_activation_name (cfg->act));
    return NULL;
  }
  g_autoptr (DgLlm) llm = g_new0 (DgLlm, 1);
  llm->dev = dev;
  llm->cfg = *cfg;
  llm->precision = precision;
  llm->weights = weights;
  llm->w = dg_weights_new (dev, st, precision, "llm weights");
  dg_weights_set_prefix (llm->w, prefix);
  dg_weights_set_linear_format (llm->w, weights, DG_COMPONENT_LLM);
  DgPlanModel shape = { .vlm.text = *cfg }; /* the pool sized to the weights (plan.h) */
  dg_weights_expect (llm->w, dg_plan_weight_pool_bytes (&shape, DG_COMPONENT_LLM, precision, weights));
  llm->layers = g_new0 (LlmLayer, cfg->n_layers);
  llm->n_selected = dg_llm_layout_selected (cfg, llm->selected);
  Loader l = { llm, llm->w, lora };
  if (!dg_llm_layout_weights (cfg, load_tensor, &l, error))
    return NULL;
  if (lora && !dg_lora_check_all_used (lora, DG_LORA_TEXT, error))
    return NULL;
  return g_steal_pointer (&llm);
}

void
dg_llm_free (DgLlm *llm)
{
  if (!llm)
    return;
  dg_weights_free (llm->w);
  dg_weights_free (llm->head_w);
  dg_lora_embedding_clear (&llm->embed_lora);
  g_free (llm->layers);
  g_free (llm);
}

const DgQwenTextConfig *
dg_llm_config (const DgLlm *llm)
{
  return &llm->cfg;
}

guint
dg_llm_selected (const DgLlm *llm, const guint **layers)
{
  if (layers)
    *layers = llm->selected;
  return llm->n_selected;
}

/* ---- M-RoPE tables (host) -------------------------------------------------------------- */

/* inv_freq[j] = 1 / theta^(2j/head_dim) in fp32 like transformers' default rope init, cast to
 * bf16 in bf16 mode: model.to(bfloat16) casts the buffer too (tests/golden/README.md), the
 * angles are then computed from it in fp32. */
static float
llm_inv_freq (const DgLlm *llm, guint j)
{
  float e = (float) (2 * j) / (float) llm->cfg.head_dim;
  float inv = 1.0f / (float) pow ((float) llm->cfg.rope_theta, e);
  return llm->precision == DG_PRECISION_BF16 ? vkc_round_bf16 (inv) : inv;
}

void
dg_llm_rotary_tables (const DgLlm *llm, const DgLlmBatch *batch, float *cos_t, float *sin_t)
{
  const guint D = llm->cfg.head_dim, half = D / 2;
  const gsize tokens = (gsize) batch->n_rows * batch->seq_len;
  const gboolean bf16 = llm->precision == DG_PRECISION_BF16;
  /* Frequency slot j rotates with the position of section axis[j]: mrope_section = (t, h, w)
   * slots, the same split in both halves of the head (apply_multimodal_rotary_pos_emb). */
  g_autofree float *inv = g_new (float, half);
  g_autofree guint *axis = g_new (guint, half);
  for (guint j = 0, a = 0, end = llm->cfg.mrope_section[0]; j < half; j++) {
    while (j >= end && a < 2) end += llm->cfg.mrope_section[++a];
    axis[j] = a;
    inv[j] = llm_inv_freq (llm, j);
  }
  for (gsize t = 0; t < tokens; t++)
    for (guint j = 0; j < half; j++) {
      float a = (float) batch->position_ids[axis[j] * tokens + t] * inv[j];
      float c = cosf (a), s = sinf (a);
      if (bf16) {
        c = vkc_round_bf16 (c);
        s = vkc_round_bf16 (s);
      }
      cos_t[t * D + j] = cos_t[t * D + half + j] = c;
      sin_t[t * D + j] = sin_t[t * D + half + j] = s;
    }
}

/* ---- input assembly ---------------------------------------------------------------------- */

/* Row @id of the table as f32, adapter delta added, in the run's precision. */
static void
embed_row (const DgLlm *llm, gint32 id, float *row)
{
  const gsize H = llm->cfg.hidden;
  const guint8 *src = (const guint8 *) llm->embed->data + (gsize) id * H * dg_dtype_size (llm->embed->dtype);
  switch (llm->embed->dtype) {
  case DG_DTYPE_BF16: dg_bf16_to_f32_array (src, row, H); break;
  case DG_DTYPE_F16: dg_f16_to_f32_array (src, row, H); break;
  default: memcpy (row, src, H * sizeof (float)); break;
  }
  if (llm->embed_lora.rank)
    dg_lora_embedding_add_row (&llm->embed_lora, id, row);
  if (llm->precision == DG_PRECISION_BF16)
    for (gsize c = 0; c < H; c++) row[c] = vkc_round_bf16 (row[c]);
}

static gboolean
check_embed_args (const DgLlm *llm, const gint32 *ids, guint n_rows, guint seq_len, guint n_text,
                  const DgLlmImageRun *runs, guint n_runs, GError **error)
{
  for (gsize i = 0; i < (gsize) n_rows * seq_len; i++)
    if ((i % seq_len) < n_text && (ids[i] < 0 || (guint) ids[i] >= llm->cfg.vocab_size)) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                   _ ("token id %d is outside the embedding table (%u rows) — does the tokenizer belong to this "
                      "model?"),
                   ids[i], llm->cfg.vocab_size);
      return FALSE;
    }
  for (guint i = 0; i < n_runs; i++)
    if (runs[i].row >= n_rows || runs[i].start + runs[i].n_tokens > n_text ||
        runs[i].embeds->shape[0] < runs[i].n_tokens || runs[i].embeds->shape[1] != llm->cfg.hidden) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                   _ ("image run %u (row %u, columns %u…%u) does not fit the prompt or its embeddings"), i, runs[i].row,
                   runs[i].start, runs[i].start + runs[i].n_tokens);
      return FALSE;
    }
  return TRUE;
}

gboolean
dg_llm_embed (DgLlm *llm, VkcCmd *cmd, DgArena *arena, const gint32 *ids, guint n_rows, guint seq_len, guint n_text,
              const VkcTensor *meta_queries, const DgLlmImageRun *runs, guint n_runs, VkcTensor *inputs_embeds,
              GError **error)
{
  const gsize H = llm->cfg.hidden;
  g_return_val_if_fail (n_text <= seq_len, FALSE);
  g_return_val_if_fail (n_text == seq_len || (meta_queries && meta_queries->shape[0] == seq_len - n_text &&
                                              meta_queries->shape[1] == (int64_t) H),
                        FALSE);
  if (!check_embed_args (llm, ids, n_rows, seq_len, n_text, runs, n_runs, error))
    return FALSE;
  /* Token rows are gathered here and uploaded once; the image runs and the queries are GPU
   * tensors already and are copied over their columns by the GPU. */
  g_autofree float *host = g_new0 (float, (gsize) n_rows *seq_len *H);
  DgMappedGuard g; /* the embedding table is read from the mapped file */
  if (!DG_MAPPED_TRY (&g))
    return dg_mapped_guard_fail (&g, llm->embed->file, error);
  for (gsize r = 0; r < n_rows; r++)
    for (gsize s = 0; s < n_text; s++) embed_row (llm, ids[r * seq_len + s], host + (r * seq_len + s) * H);
  dg_mapped_guard_end (&g);
  DgLayoutAct a[LLM_N_ACTS];
  dg_llm_layout_acts (&llm->cfg, n_rows, seq_len, a);
  take (arena, inputs_embeds, &a[LLM_ACT_EMBEDS]);
  if (!dg_arena_check (arena, error)) /* a failed take left its error in the arena */
    return FALSE;
  if (!vkc_tensor_upload (llm->dev, inputs_embeds, host, error)) {
    dg_error_from_vkc (error);
    return FALSE;
  }
  for (guint i = 0; i < n_runs; i++) {
    VkcTensor dst = vkc_tensor_narrow (inputs_embeds, 0, runs[i].row, 1);
    dst = vkc_tensor_narrow (&dst, 1, runs[i].start, runs[i].n_tokens);
    VkcTensor src = vkc_tensor_narrow (runs[i].embeds, 0, 0, runs[i].n_tokens);
    src = vkc_tensor_reshape (&src, 3, (int64_t[]) { 1, runs[i].n_tokens, H });
    vkc_op_copy (cmd, &dst, &src);
  }
  for (guint r = 0; n_text < seq_len && r < n_rows; r++) {
    VkcTensor dst = vkc_tensor_narrow (inputs_embeds, 0, r, 1);
    dst = vkc_tensor_narrow (&dst, 1, n_text, seq_len - n_text);
    VkcTensor src = vkc_tensor_reshape (meta_queries, 3, (int64_t[]) { 1, seq_len - n_text, H });
    vkc_op_copy (cmd, &dst, &src);
  }
  return TRUE;
}

/* ---- decoder ------------------------------------------------------------------------------ */

/* One batch's tables and the scratch tensors all layers reuse. */
typedef struct {
  DgLlm *llm;
  VkcCmd *cmd;
  DgArena *arena;
  const DgLlmTap *tap;
  gboolean bf16;
  DgLlmCache *cache;  /* NULL: one causal pass over the batch, nothing kept */
  guint past;         /* tokens cached before this pass */
  VkcTensor cos, sin; /* [B, S, head_dim] */
  VkcTensor valid;    /* U32 [B, S] */
  VkcTensor xn, q, k, v, attn, tmp, gate, up;
} LlmRun;

static void
rnd (const LlmRun *r, const VkcTensor *t)
{
  if (r->bf16)
    vkc_op_round_bf16 (r->cmd, t, t);
}

static gboolean
llm_run_init (LlmRun *r, DgLlm *llm, VkcCmd *cmd, DgArena *arena, const DgLlmBatch *b, const DgLlmTap *taps)
{
  const DgQwenTextConfig *c = &llm->cfg;
  const int64_t B = b->n_rows, S = b->seq_len, D = c->head_dim, n = B * S;
  *r = (LlmRun) { .llm = llm, .cmd = cmd, .arena = arena, .tap = taps, .bf16 = llm->precision == DG_PRECISION_BF16 };
  g_autofree float *cos_t = g_new (float, n *D), *sin_t = g_new (float, n *D);
  dg_llm_rotary_tables (llm, b, cos_t, sin_t);
  g_autofree guint32 *valid = g_new (guint32, n);
  for (int64_t i = 0; i < n; i++) valid[i] = b->attention_mask[i] != 0;
  DgLayoutAct a[LLM_N_ACTS];
  dg_llm_layout_acts (c, B, S, a);
  if (!dg_arena_upload (arena, &r->cos, VKC_F32, 3, a[LLM_ACT_COS].shape, cos_t) ||
      !dg_arena_upload (arena, &r->sin, VKC_F32, 3, a[LLM_ACT_SIN].shape, sin_t) ||
      !dg_arena_upload (arena, &r->valid, VKC_U32, 2, a[LLM_ACT_VALID].shape, valid))
    return FALSE;
  take (arena, &r->xn, &a[LLM_ACT_XN]);
  take (arena, &r->q, &a[LLM_ACT_Q]);
  take (arena, &r->k, &a[LLM_ACT_K]);
  take (arena, &r->v, &a[LLM_ACT_V]);
  take (arena, &r->attn, &a[LLM_ACT_ATTN]);
  take (arena, &r->tmp, &a[LLM_ACT_TMP]);
  take (arena, &r->gate, &a[LLM_ACT_GATE]);
  take (arena, &r->up, &a[LLM_ACT_UP]);
  return !dg_arena_failed (arena);
}

/* h += x·Wᵀ: in bf16 the projection and the sum are rounded separately, as the reference
 * stores both; in fp32 the linear op accumulates into h. */
static void
residual_linear (LlmRun *r, const VkcTensor *h, const VkcTensor *x, const VkcTensor *w)
{
  if (!r->bf16) {
    VkcLinearOptions opt = VKC_LINEAR_OPTIONS_DEFAULT;
    opt.accumulate = true;
    vkc_op_linear_ex (r->cmd, h, x, w, NULL, &opt);
    return;
  }
  vkc_op_linear (r->cmd, &r->tmp, x, w, NULL);
  rnd (r, &r->tmp);
  vkc_op_binary (r->cmd, h, h, &r->tmp, VKC_BINARY_ADD);
  rnd (r, h);
}

struct _DgLlmCache {
  DgArena *arena;
  guint capacity, length;
  VkcTensor *k, *v; /* [n_layers] of [1, capacity, n_kv_heads · head_dim] */
};

static void attend_cached (LlmRun *r, guint layer, VkcAttnParams *p);

/* h += o_proj(Attn(input_layernorm(h))): GQA, M-RoPE, causal + key padding. */
static void
llm_attention (LlmRun *r, guint layer, const LlmLayer *y, const VkcTensor *h)
{
  const DgQwenTextConfig *c = &r->llm->cfg;
  vkc_op_rms_norm (r->cmd, &r->xn, h, &y->in_norm, (float) c->rms_eps,
                   r->bf16 ? VKC_NORM_ROUND_BF16 : VKC_NORM_DEFAULT);
  vkc_op_linear (r->cmd, &r->q, &r->xn, &y->q_w, &y->q_b);
  vkc_op_linear (r->cmd, &r->k, &r->xn, &y->k_w, &y->k_b);
  vkc_op_linear (r->cmd, &r->v, &r->xn, &y->v_w, &y->v_b);
  rnd (r, &r->q);
  rnd (r, &r->k);
  rnd (r, &r->v);
  vkc_op_rotary (r->cmd, &r->q, &r->q, &r->cos, &r->sin, (int) c->n_heads, (int) c->head_dim);
  vkc_op_rotary (r->cmd, &r->k, &r->k, &r->cos, &r->sin, (int) c->n_kv_heads, (int) c->head_dim);
  rnd (r, &r->q);
  rnd (r, &r->k);
  VkcAttnParams p = { 0 };
  p.heads_q = (int) c->n_heads;
  p.heads_kv = (int) c->n_kv_heads;
  p.head_dim = (int) c->head_dim;
  p.scale = (float) (1.0 / sqrt ((double) c->head_dim));
  p.causal = true;
  /* Left pads are invalid keys; a pad query then has no key at all and outputs 0 (FA2). */
  p.key_valid = &r->valid;
  if (r->cache)
    attend_cached (r, layer, &p);
  else
    vkc_op_attention (r->cmd, &r->attn, &r->q, &r->k, &r->v, &p);
  rnd (r, &r->attn);
  residual_linear (r, h, &r->attn, &y->o_w);
}

/* h += down(silu(gate(x)) ⊙ up(x)), x = post_attention_layernorm(h). */
static void
llm_mlp (LlmRun *r, const LlmLayer *y, const VkcTensor *h)
{
  vkc_op_rms_norm (r->cmd, &r->xn, h, &y->post_norm, (float) r->llm->cfg.rms_eps,
                   r->bf16 ? VKC_NORM_ROUND_BF16 : VKC_NORM_DEFAULT);
  vkc_op_linear (r->cmd, &r->gate, &r->xn, &y->gate_w, NULL);
  vkc_op_linear (r->cmd, &r->up, &r->xn, &y->up_w, NULL);
  if (r->bf16) {
    rnd (r, &r->gate);
    rnd (r, &r->up);
    vkc_op_unary (r->cmd, &r->gate, &r->gate, VKC_UNARY_SILU);
    rnd (r, &r->gate);
    vkc_op_binary (r->cmd, &r->gate, &r->gate, &r->up, VKC_BINARY_MUL);
    rnd (r, &r->gate);
  } else {
    vkc_op_binary (r->cmd, &r->gate, &r->gate, &r->up, VKC_BINARY_SWIGLU);
  }
  residual_linear (r, h, &r->gate, &y->down_w);
}

static void
tap (LlmRun *r, guint k, const VkcTensor *h)
{
  if (!r->tap || !r->tap->func)
    return;
  g_autofree char *name = g_strdup_printf ("llm.h%u", k);
  r->tap->func (r->cmd, name, h, r->tap->user_data);
}

/* Layers first..first+count−1 in place on h; after layer i, h is h[i+1], copied into its
 * slot of @merged when selected. */
static void
llm_layers (LlmRun *r, const VkcTensor *h, guint first, guint count, const VkcTensor *merged)
{
  const DgLlm *llm = r->llm;
  for (guint i = first; i < first + count; i++) {
    llm_attention (r, i, &llm->layers[i], h);
    llm_mlp (r, &llm->layers[i], h);
    for (guint j = 0; merged && j < llm->n_selected; j++)
      if (llm->selected[j] == i + 1) {
        VkcTensor slot = vkc_tensor_narrow (merged, 2, (int64_t) j * llm->cfg.hidden, llm->cfg.hidden);
        vkc_op_copy (r->cmd, &slot, h);
      }
    tap (r, i + 1, h);
  }
}

/* h[n]: the final norm, for taps only. */
static void
llm_final_norm (LlmRun *r, const VkcTensor *h)
{
  VkcTensor y;
  if (!r->tap || !r->tap->func || !DG_ACT (r->arena, &y, h->shape[0], h->shape[1], h->shape[2]))
    return;
  vkc_op_rms_norm (r->cmd, &y, h, &r->llm->norm, (float) r->llm->cfg.rms_eps,
                   r->bf16 ? VKC_NORM_ROUND_BF16 : VKC_NORM_DEFAULT);
  tap (r, r->llm->cfg.n_layers, &y);
}

static gboolean
check_batch (const DgLlm *llm, const DgLlmBatch *b, const VkcTensor *h)
{
  if (h->ndim == 3 && h->shape[0] == b->n_rows && h->shape[1] == b->seq_len && h->shape[2] == llm->cfg.hidden)
    return TRUE;
  g_critical ("dg_llm: hidden states %s do not match a batch of %u × %u", vkc_tensor_shape_str (h), b->n_rows,
              b->seq_len);
  return FALSE;
}

gboolean
dg_llm_forward (DgLlm *llm, VkcCmd *cmd, DgArena *arena, const DgLlmBatch *batch, const VkcTensor *inputs_embeds,
                VkcTensor *merged, const DgLlmTap *taps)
{
  g_return_val_if_fail (check_batch (llm, batch, inputs_embeds), FALSE);
  DgLayoutAct a[LLM_N_ACTS];
  dg_llm_layout_acts (&llm->cfg, batch->n_rows, batch->seq_len, a);
  LlmRun r;
  VkcTensor h;
  if (!llm_run_init (&r, llm, cmd, arena, batch, taps) || !take (arena, &h, &a[LLM_ACT_H]) ||
      !take (arena, merged, &a[LLM_ACT_MERGED]))
    return FALSE;
  vkc_op_copy (cmd, &h, inputs_embeds);
  tap (&r, 0, &h);
  llm_layers (&r, &h, 0, llm->cfg.n_layers, merged);
  llm_final_norm (&r, &h);
  return TRUE;
}

gboolean
dg_llm_forward_layers (DgLlm *llm, VkcCmd *cmd, DgArena *arena, const DgLlmBatch *batch, const VkcTensor *h,
                       guint first, guint count, const DgLlmTap *taps)
{
  g_return_val_if_fail (check_batch (llm, batch, h) && first + count <= llm->cfg.n_layers, FALSE);
  LlmRun r;
  if (!llm_run_init (&r, llm, cmd, arena, batch, taps))
    return FALSE;
  llm_layers (&r, h, first, count, NULL);
  if (first + count == llm->cfg.n_layers)
    llm_final_norm (&r, h);
  return TRUE;
}

/* ---- decoding: output head, KV cache (describe.c, MODEL.md §13) --------------------------- */

gboolean
dg_llm_load_head (DgLlm *llm, GError **error)
{
  if (llm->head_w)
    return TRUE;
  const DgQwenTextConfig *c = &llm->cfg;
  g_autoptr (DgWeights) w = dg_weights_new (llm->dev, llm->w->st, llm->precision, "llm output head");
  dg_weights_set_linear_format (w, llm->weights, DG_COMPONENT_LLM);
  dg_weights_expect (w, dg_plan_llm_head_bytes (c, llm->precision, llm->weights));
  /* Tied: the embedding table under the decoder's prefix; untied: lm_head.weight at the top
   * level of either key layout (Qwen2_5_VLForConditionalGeneration.lm_head). */
  const char *name = c->tie_word_embeddings ? "embed_tokens.weight" : "lm_head.weight";
  dg_weights_set_prefix (w, c->tie_word_embeddings ? llm->w->prefix : "");
  if (!c->tie_word_embeddings && !dg_weights_has (w, "%s", name)) {
    g_set_error (error, DG_ERROR, DG_ERROR_MISSING,
                 _ ("%s has no 'lm_head.weight' and vlm/config.json does not tie the word embeddings "
                    "(tie_word_embeddings): the language model cannot write text without its output head"),
                 dg_safetensors_display_name (llm->w->st));
    return FALSE;
  }
  if (!dg_weights_linear (w, &llm->head, c->vocab_size, c->hidden, error, "%s", name))
    return FALSE;
  llm->head_w = g_steal_pointer (&w);
  return TRUE;
}

DgLlmCache *
dg_llm_cache_new (DgLlm *llm, guint capacity, GError **error)
{
  const DgQwenTextConfig *c = &llm->cfg;
  g_autoptr (DgLlmCache) cache = g_new0 (DgLlmCache, 1);
  cache->capacity = capacity;
  cache->arena = dg_arena_new (llm->dev, "llm kv cache");
  dg_arena_expect (cache->arena, dg_llm_layout_cache_bytes (c, capacity));
  cache->k = g_new0 (VkcTensor, c->n_layers);
  cache->v = g_new0 (VkcTensor, c->n_layers);
  for (guint i = 0; i < c->n_layers; i++) {
    DG_ACT (cache->arena, &cache->k[i], 1, capacity, (int64_t) c->n_kv_heads * c->head_dim);
    DG_ACT (cache->arena, &cache->v[i], 1, capacity, (int64_t) c->n_kv_heads * c->head_dim);
  }
  if (!dg_arena_check (cache->arena, error))
    return NULL;
  return g_steal_pointer (&cache);
}

void
dg_llm_cache_free (DgLlmCache *cache)
{
  if (!cache)
    return;
  g_free (cache->k);
  g_free (cache->v);
  dg_arena_free (cache->arena);
  g_free (cache);
}

guint
dg_llm_cache_length (const DgLlmCache *cache)
{
  return cache->length;
}

/* The new tokens' rotated keys and values go into their cache rows; the queries attend to
 * every cached row up to and including their own. For the prompt (empty cache) that is the
 * causal pass over the cache's first S rows; a single decoding token sees all rows, which
 * needs no mask. There is no padding in a decoded row. */
static void
attend_cached (LlmRun *r, guint layer, VkcAttnParams *p)
{
  const int64_t S = r->q.shape[1], n = r->past + S;
  VkcTensor kd = vkc_tensor_narrow (&r->cache->k[layer], 1, r->past, S);
  VkcTensor vd = vkc_tensor_narrow (&r->cache->v[layer], 1, r->past, S);
  vkc_op_copy (r->cmd, &kd, &r->k);
  vkc_op_copy (r->cmd, &vd, &r->v);
  VkcTensor k = vkc_tensor_narrow (&r->cache->k[layer], 1, 0, n);
  VkcTensor v = vkc_tensor_narrow (&r->cache->v[layer], 1, 0, n);
  p->key_valid = NULL;
  p->causal = r->past == 0;
  vkc_op_attention (r->cmd, &r->attn, &r->q, &k, &v, p);
}

gboolean
dg_llm_decode (DgLlm *llm, VkcCmd *cmd, DgArena *arena, DgLlmCache *cache, const gint64 *position_ids,
               const VkcTensor *inputs_embeds, VkcTensor *logits)
{
  const DgQwenTextConfig *c = &llm->cfg;
  g_return_val_if_fail (llm->head_w && inputs_embeds->ndim == 3 && inputs_embeds->shape[0] == 1 &&
                            inputs_embeds->shape[2] == c->hidden,
                        FALSE);
  const guint S = (guint) inputs_embeds->shape[1];
  if (cache && ((cache->length > 0 && S != 1) || cache->length + S > cache->capacity)) {
    g_critical ("dg_llm_decode: %u tokens do not follow a cache of %u/%u tokens", S, cache->length, cache->capacity);
    return FALSE;
  }
  g_autofree guint8 *mask = g_malloc (S);
  memset (mask, 1, S);
  DgLlmBatch batch = { 1, S, mask, position_ids };
  DgLayoutAct a[LLM_N_ACTS];
  dg_llm_layout_acts (c, 1, S, a);
  LlmRun r;
  VkcTensor h, last;
  if (!llm_run_init (&r, llm, cmd, arena, &batch, NULL) || !take (arena, &h, &a[LLM_ACT_H]) ||
      !DG_ACT (arena, &last, 1, 1, c->hidden) || !DG_ACT (arena, logits, 1, 1, c->vocab_size))
    return FALSE;
  r.cache = cache;
  r.past = cache ? cache->length : 0;
  vkc_op_copy (cmd, &h, inputs_embeds);
  llm_layers (&r, &h, 0, c->n_layers, NULL);
  /* Only the last position's logits choose the next token: the norm and the head see that row. */
  VkcTensor h_last = vkc_tensor_narrow (&h, 1, S - 1, 1);
  vkc_op_rms_norm (cmd, &last, &h_last, &llm->norm, (float) c->rms_eps,
                   r.bf16 ? VKC_NORM_ROUND_BF16 : VKC_NORM_DEFAULT);
  vkc_op_linear (cmd, logits, &last, &llm->head, NULL);
  rnd (&r, logits);
  if (cache)
    cache->length += S;
  return TRUE;
}
