/* The memory plan and FLOP counts (plan.h). Layout: the built-in DeepGen 1.0 configs →
 * tensors of each component (counts and the weight pools) → pool packing → activations of each
 * stage's code → the stages → FLOPs.
 *
 * The components are not described here: their weights come from each one's layout walk
 * (vit_layout.c, llm_layout.c, connector_layout.c, dit_layout.c, vae_layout.c, the same walks
 * the loaders upload from), their activations from the layouts' arena lists (the same lists the
 * forwards allocate from) and, for the VAE, from the dry run of vae_pass.c (the walk vae.c
 * records through). What remains here is the pipeline's own arrangement: which component is
 * resident in which stage, pipeline.c's tensors around each stage (the arenas' inputs, the
 * moments and latents of an encode, the tiles' accumulators of vae.c run_tiles), and the pool
 * packing of vkc_memory.c. Pools are sized as the code sizes them (vkc_pool_expect: the loaders
 * with dg_plan_weight_pool_bytes, pipeline.c with this plan's arena figures, vae.c with its dry
 * run); tests/model/test_pipeline_memory.c checks every stage of real runs against the plan. */
#include "plan.h"

#include <math.h>
#include <string.h>

#include "dg_i18n.h"
#include "connector_layout.h"
#include "dit_layout.h"
#include "json_strict.h"
#include "llm_layout.h"
#include "prompt.h"
#include "vae_layout.h"
#include "vae_pass.h"
#include "vit_layout.h"
#include "vkc_quant.h"
#include "safetensors.h"

/* vkc_memory.c: pool blocks and allocation alignment. */
#define POOL_BLOCK (256ull << 20)
#define POOL_ALIGN 256ull
/* weights.c / vkcompute: activations are f32, integer tables u32. */
#define F32 4ull
#define U32 4ull


/* ======================================================================================== *
 * The architecture
 * ======================================================================================== */

/* tests/data/deepgen-1.0-configs, reduced to the keys that differ from the class defaults. */
static const char VLM_JSON[] =
    "{\"bos_token_id\":151643,\"eos_token_id\":151645,\"image_token_id\":151655,\"video_token_id\":151656,"
    "\"vision_start_token_id\":151652,\"vision_end_token_id\":151653,"
    "\"text_config\":{\"hidden_act\":\"silu\",\"hidden_size\":2048,\"intermediate_size\":11008,"
    "\"max_position_embeddings\":128000,\"num_attention_heads\":16,\"num_hidden_layers\":36,"
    "\"num_key_value_heads\":2,\"rms_norm_eps\":1e-06,\"rope_scaling\":{\"mrope_section\":[16,24,24],"
    "\"rope_type\":\"default\",\"type\":\"default\"},\"rope_theta\":1000000.0,\"tie_word_embeddings\":true,"
    "\"use_sliding_window\":false,\"vocab_size\":151936},"
    "\"vision_config\":{\"depth\":32,\"fullatt_block_indexes\":[7,15,23,31],\"hidden_act\":\"silu\","
    "\"hidden_size\":1280,\"in_channels\":3,\"intermediate_size\":3420,\"num_heads\":16,\"out_hidden_size\":2048,"
    "\"patch_size\":14,\"spatial_merge_size\":2,\"temporal_patch_size\":2,\"tokens_per_second\":2,"
    "\"window_size\":112}}";
static const char CONNECTOR_JSON[] =
    "{\"hidden_act\":\"gelu_pytorch_tanh\",\"hidden_size\":2048,\"intermediate_size\":11946,"
    "\"layer_norm_eps\":1e-06,\"num_attention_heads\":32,\"num_hidden_layers\":6}";
static const char DIT_JSON[] =
    "{\"attention_head_dim\":64,\"caption_projection_dim\":1536,\"dual_attention_layers\":[0,1,2,3,4,5,6,7,8,9,10,"
    "11,12],\"in_channels\":16,\"joint_attention_dim\":4096,\"num_attention_heads\":24,\"num_layers\":24,"
    "\"out_channels\":16,\"patch_size\":2,\"pooled_projection_dim\":2048,\"pos_embed_max_size\":384,"
    "\"qk_norm\":\"rms_norm\",\"sample_size\":128}";
static const char VAE_JSON[] =
    "{\"act_fn\":\"silu\",\"block_out_channels\":[128,256,512,512],\"in_channels\":3,\"latent_channels\":16,"
    "\"down_block_types\":[\"DownEncoderBlock2D\",\"DownEncoderBlock2D\",\"DownEncoderBlock2D\",\"DownEncoderBlock2D\"]"
    ","
    "\"up_block_types\":[\"UpDecoderBlock2D\",\"UpDecoderBlock2D\",\"UpDecoderBlock2D\",\"UpDecoderBlock2D\"],"
    "\"layers_per_block\":2,\"mid_block_add_attention\":true,\"norm_num_groups\":32,\"out_channels\":3,"
    "\"scaling_factor\":1.5305,\"shift_factor\":0.0609,\"use_post_quant_conv\":false,\"use_quant_conv\":false}";

/* scheduler/scheduler_config.json: the keys that differ from FlowMatchEulerDiscreteScheduler's defaults. */
static const char SCHEDULER_JSON[] = "{\"shift\":3.0,\"use_dynamic_shifting\":false,\"base_image_seq_len\":256,"
                                     "\"max_image_seq_len\":4096,\"base_shift\":0.5,\"max_shift\":1.15}";

const char *
dg_plan_deepgen_1_0_config (const char *component)
{
  static const struct {
    const char *component, *json;
  } configs[] = {
    { "vlm", VLM_JSON }, { "connector", CONNECTOR_JSON }, { "transformer", DIT_JSON },
    { "vae", VAE_JSON }, { "scheduler", SCHEDULER_JSON },
  };
  for (guint i = 0; i < G_N_ELEMENTS (configs); i++)
    if (g_strcmp0 (component, configs[i].component) == 0)
      return configs[i].json;
  return NULL;
}

void
dg_plan_model_deepgen_1_0 (DgPlanModel *m)
{
  memset (m, 0, sizeof *m);
  GError *error = NULL;
  /* Constant text known to parse: a failure is a programming error. */
  if (!dg_qwen_vl_config_parse (VLM_JSON, -1, "deepgen-1.0 vlm", &m->vlm, &error) ||
      !dg_connector_config_parse (CONNECTOR_JSON, -1, "deepgen-1.0 connector", &m->connector, &error) ||
      !dg_dit_config_parse (DIT_JSON, -1, "deepgen-1.0 transformer", &m->dit, &error) ||
      !dg_vae_config_parse (VAE_JSON, -1, "deepgen-1.0 vae", &m->vae, &error))
    g_error ("built-in DeepGen 1.0 config: %s", error->message);
  m->n_queries = CONN_DEFAULT_QUERIES;
  m->n_selected = dg_llm_layout_selected (&m->vlm.text, NULL);
}

/* meta_queries' rows from the weights, else the config key, else the default. */
static guint
load_n_queries (const char *folder)
{
  g_autofree char *dir = g_build_filename (folder, "connector", NULL);
  g_autofree char *weights = g_build_filename (dir, "model.safetensors", NULL);
  g_autofree char *converted = g_build_filename (dir, "model.gguf", NULL); /* deepgen convert */
  if (g_file_test (weights, G_FILE_TEST_EXISTS) || g_file_test (converted, G_FILE_TEST_EXISTS)) {
    g_autoptr (DgSafetensors) st = dg_safetensors_open (dir, NULL);
    const DgTensorInfo *t = st ? dg_safetensors_find (st, "meta_queries") : NULL;
    if (t && t->ndim >= 2 && t->shape[t->ndim - 2] > 0 && t->shape[t->ndim - 2] < (1 << 20))
      return (guint) t->shape[t->ndim - 2];
  }
  g_autofree char *config = g_build_filename (dir, "config.json", NULL);
  g_autoptr (JsonObject) obj = dg_json_load_object (config, "connector/config.json", 1u << 24, 32, NULL);
  if (obj && json_object_has_member (obj, "num_queries")) {
    JsonNode *n = json_object_get_member (obj, "num_queries");
    if (JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_INT64) {
      gint64 q = json_node_get_int (n);
      if (q > 0 && q < (1 << 20))
        return (guint) q;
    }
  }
  return CONN_DEFAULT_QUERIES;
}

gboolean
dg_plan_model_load (DgPlanModel *m, const char *folder, GError **error)
{
  memset (m, 0, sizeof *m);
  g_autofree char *vlm = g_build_filename (folder, "vlm", NULL);
  g_autofree char *connector = g_build_filename (folder, "connector", NULL);
  g_autofree char *dit = g_build_filename (folder, "transformer", NULL);
  g_autofree char *vae = g_build_filename (folder, "vae", NULL);
  if (!dg_qwen_vl_config_load (vlm, &m->vlm, error) || !dg_connector_config_load (connector, &m->connector, error) ||
      !dg_dit_config_load (dit, &m->dit, error) || !dg_vae_config_load (vae, &m->vae, error))
    return FALSE;
  m->n_queries = load_n_queries (folder);
  m->n_selected = dg_llm_layout_selected (&m->vlm.text, NULL);
  return TRUE;
}

/* ======================================================================================== *
 * Pool packing (vkc_memory.c): 256-byte aligned pieces, first block with room; a new block is
 * sized to what the pool was told to expect and has not handed out yet (vkc_pool_expect), at
 * most the device's allocation limit, else 256 MiB — and never smaller than the piece.
 * ======================================================================================== */

typedef struct {
  GArray *blocks;     /* Block */
  guint64 used;       /* aligned bytes handed out */
  guint64 expect_end; /* vkc_pool_expect: blocks cover the use up to this */
  guint64 cap;        /* largest block (maxMemoryAllocationSize); G_MAXUINT64 = none */
} Pool;

typedef struct {
  guint64 size, top;
} PoolBlock;

static guint64
align_up (guint64 x)
{
  return (MAX (x, 1) + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
}

static void
pool_init (Pool *p, guint64 cap)
{
  p->blocks = g_array_new (FALSE, FALSE, sizeof (PoolBlock));
  p->used = 0;
  p->expect_end = 0;
  p->cap = cap ? cap : G_MAXUINT64;
}

static void
pool_clear (Pool *p)
{
  g_clear_pointer (&p->blocks, g_array_unref);
}

static void
pool_expect (Pool *p, guint64 bytes)
{
  p->expect_end = p->used + bytes;
}

static void
pool_alloc (Pool *p, guint64 bytes)
{
  guint64 want = align_up (bytes);
  for (guint i = 0; i < p->blocks->len; i++) {
    PoolBlock *b = &g_array_index (p->blocks, PoolBlock, i);
    if (b->size - b->top >= want) {
      b->top += want;
      p->used += want;
      return;
    }
  }
  guint64 size = p->expect_end > p->used ? MAX (want, MIN (p->expect_end - p->used, p->cap))
                                         : MAX (MIN (POOL_BLOCK, p->cap), want);
  PoolBlock b = { size, want };
  g_array_append_val (p->blocks, b);
  p->used += want;
}

static guint64
pool_reserved (const Pool *p)
{
  guint64 s = 0;
  for (guint i = 0; i < p->blocks->len; i++) s += g_array_index (p->blocks, PoolBlock, i).size;
  return s;
}

/* f32 tensor of n elements. */
static void
act (Pool *p, guint64 n)
{
  pool_alloc (p, n * F32);
}

/* The f32 pieces of a component's activation layout, in order. */
static void
acts_take (Pool *p, const DgLayoutAct *a, guint n)
{
  for (guint i = 0; i < n; i++)
    if (a[i].ndim)
      act (p, (guint64) dg_layout_act_numel (&a[i]));
}

/* ======================================================================================== *
 * Weights: every tensor of a component, in load order
 * ======================================================================================== */

typedef enum {
  T_DEVICE,     /* stored and uploaded: matrices in the matrix dtype, vectors in f32 */
  T_LINEAR,     /* a Linear weight: the matrix dtype, or q8_0 (weights.h dg_weights_linear) */
  T_DEVICE_F32, /* stored and uploaded in f32 whatever its shape (the meta queries) */
  T_HOST,       /* stored, kept off the GPU */
  T_COMPUTED,   /* not stored, uploaded in f32 (computed at load) */
} TensorKind;

typedef struct {
  DgComponentSize size;
  Pool *pool; /* NULL: counting only */
  DgPrecision precision;
  guint64 pieces;          /* aligned bytes of the uploaded tensors */
  DgWeightFormat format;   /* RELEASED, Q8_0 or Q4_0 (AUTO counts as RELEASED) */
  DgLinearStorage storage; /* this component's quantizable Linears under format */
  gboolean quantizable;    /* this component's Linear layers may be quantized (not the VAE's) */
} Weights;

/* q8_0 takes 36 bytes per block of 32 weights along a row, q4_0 20 (vkc_quant.h, header only). */
#define Q8_0_BLOCK VKC_Q8_0_BLOCK
#define Q8_0_BLOCK_BYTES VKC_Q8_0_BLOCK_BYTES
#define Q4_0_BLOCK_BYTES VKC_Q4_0_BLOCK_BYTES

DgLinearStorage
dg_plan_linear_storage (DgWeightFormat weights, DgComponent c)
{
  const gboolean vlm = c == DG_COMPONENT_LLM || c == DG_COMPONENT_VIT;
  if (c == DG_COMPONENT_VAE_ENCODER || c == DG_COMPONENT_VAE_DECODER)
    return DG_LINEAR_AS_RELEASED;
  switch (weights) {
  case DG_WEIGHTS_Q8_0: return DG_LINEAR_Q8_0;
  case DG_WEIGHTS_Q4_0: return vlm ? DG_LINEAR_Q4_0 : DG_LINEAR_Q8_0;
  default: return DG_LINEAR_AS_RELEASED;
  }
}

const DgWeightFormat *
dg_plan_auto_fallbacks (guint *n)
{
  static const DgWeightFormat order[] = { DG_WEIGHTS_Q8_0, DG_WEIGHTS_Q4_0 };
  *n = G_N_ELEMENTS (order);
  return order;
}

gboolean
dg_plan_auto (const DgPlanModel *m, DgPlanRequest *r, guint64 device_bytes, DgPlan *plan, gboolean *fits,
              GError **error)
{
  guint n_smaller;
  const DgWeightFormat *smaller = dg_plan_auto_fallbacks (&n_smaller);
  r->weights = DG_WEIGHTS_RELEASED;
  if (!dg_plan_compute (m, r, plan, error))
    return FALSE;
  for (guint i = 0; i < n_smaller && !dg_plan_check (plan, device_bytes, NULL); i++) {
    r->weights = smaller[i];
    if (!dg_plan_compute (m, r, plan, error))
      return FALSE;
  }
  *fits = dg_plan_check (plan, device_bytes, NULL);
  return TRUE;
}

guint64
dg_plan_linear_block_bytes (DgLinearStorage storage, guint64 n)
{
  return n / Q8_0_BLOCK * (storage == DG_LINEAR_Q4_0 ? Q4_0_BLOCK_BYTES : Q8_0_BLOCK_BYTES);
}

gboolean
dg_plan_linear_quantizable (gint64 in_features)
{
  return in_features > 0 && in_features % Q8_0_BLOCK == 0;
}

gboolean
dg_plan_tensor_quantizable (const char *folder, const char *name, guint ndim, const gint64 *shape)
{
  if (ndim != 2 || !g_str_has_suffix (name, ".weight") || !dg_plan_linear_quantizable (shape[1]))
    return FALSE;
  if (strcmp (folder, "connector") == 0 || strcmp (folder, "transformer") == 0)
    return TRUE; /* every 2-D weight there is a Linear layer's (connector.c, dit.c) */
  if (strcmp (folder, "vlm") != 0)
    return FALSE;
  /* vlm.c: the language model under "model." or "model.language_model.", the vision tower under
   * "visual." or "model.visual."; the embedding table stays on the host (llm.c). */
  return (g_str_has_prefix (name, "model.") || g_str_has_prefix (name, "visual.")) &&
         !g_str_has_suffix (name, "embed_tokens.weight");
}

/* A tensor of rows × cols elements (cols 0: a vector of rows). */
static void
tensor (Weights *w, TensorKind kind, guint64 rows, guint64 cols)
{
  guint64 n = cols ? rows * cols : rows;
  if (kind != T_COMPUTED) {
    w->size.n_tensors++;
    w->size.stored += n;
  }
  if (kind == T_HOST) {
    w->size.host += n;
    return;
  }
  guint64 bytes = n * F32;
  if (cols && (kind == T_DEVICE || kind == T_LINEAR)) {
    w->size.matrices += n;
    bytes = n * (w->precision == DG_PRECISION_BF16 ? 2 : 4);
    if (kind == T_LINEAR && w->quantizable && dg_plan_linear_quantizable ((gint64) cols)) {
      w->size.quantizable += n;
      if (w->storage != DG_LINEAR_AS_RELEASED)
        bytes = dg_plan_linear_block_bytes (w->storage, n);
    }
  } else {
    w->size.f32 += n;
  }
  w->pieces += align_up (bytes);
  if (w->pool)
    pool_alloc (w->pool, bytes);
}

/* A tensor of a component's layout (layout.h), counted as its loader uploads it. */
static gboolean
count_tensor (const DgLayoutTensor *t, gpointer data, GError **error)
{
  static const TensorKind kinds[] = {
    [DG_LAYOUT_LINEAR] = T_LINEAR,  [DG_LAYOUT_MATRIX] = T_DEVICE, [DG_LAYOUT_VECTOR] = T_DEVICE,
    [DG_LAYOUT_F32] = T_DEVICE_F32, [DG_LAYOUT_HOST] = T_HOST,     [DG_LAYOUT_COMPUTED] = T_COMPUTED,
  };
  const guint64 n = (guint64) dg_layout_numel (t);
  const guint64 rows = t->ndim ? (guint64) t->shape[0] : 1;
  tensor (data, kinds[t->kind], rows, t->ndim > 1 ? n / rows : 0);
  return TRUE;
}

static void
weights_vit (const DgPlanModel *m, Weights *w)
{
  dg_vit_layout_weights (&m->vlm.vision, count_tensor, w, NULL);
}

static void
weights_llm (const DgPlanModel *m, Weights *w)
{
  dg_llm_layout_weights (&m->vlm.text, count_tensor, w, NULL);
}

static void
weights_dit (const DgPlanModel *m, Weights *w)
{
  dg_dit_layout_weights (&m->dit, count_tensor, w, NULL);
}

/* The connector's sizes as the plan knows them (its checkpoint fixes the same ones). */
DgConnectorShape
dg_plan_connector_shape (const DgPlanModel *m)
{
  return (DgConnectorShape) { .cfg = m->connector,
                              .n_queries = m->n_queries,
                              .llm_hidden = m->vlm.text.hidden,
                              .in_dim = m->n_selected * m->vlm.text.hidden,
                              .pooled_dim = m->dit.pooled_projection_dim,
                              .seq_dim = m->dit.joint_attention_dim };
}

static void
weights_connector (const DgPlanModel *m, Weights *w)
{
  const DgConnectorShape s = dg_plan_connector_shape (m);
  dg_connector_layout_weights (&s, count_tensor, w, NULL);
}

static void
weights_vae (const DgPlanModel *m, int parts, Weights *w)
{
  dg_vae_layout_weights (&m->vae, parts, count_tensor, w, NULL);
}

static void
weights_visit (const DgPlanModel *m, DgComponent c, Weights *w)
{
  w->quantizable = c != DG_COMPONENT_VAE_ENCODER && c != DG_COMPONENT_VAE_DECODER;
  w->storage = dg_plan_linear_storage (w->format, c);
  switch (c) {
  case DG_COMPONENT_LLM: weights_llm (m, w); break;
  case DG_COMPONENT_VIT: weights_vit (m, w); break;
  case DG_COMPONENT_CONNECTOR: weights_connector (m, w); break;
  case DG_COMPONENT_DIT: weights_dit (m, w); break;
  case DG_COMPONENT_VAE_ENCODER: weights_vae (m, DG_VAE_LAYOUT_ENCODER, w); break;
  case DG_COMPONENT_VAE_DECODER: weights_vae (m, DG_VAE_LAYOUT_DECODER, w); break;
  default: g_return_if_reached ();
  }
}

const char *
dg_component_name (DgComponent c)
{
  static const char *names[DG_N_COMPONENTS] = { "llm", "vit", "connector", "dit", "vae-encoder", "vae-decoder" };
  return c < DG_N_COMPONENTS ? names[c] : "?";
}

void
dg_plan_component_size (const DgPlanModel *m, DgComponent c, DgComponentSize *out)
{
  Weights w = { .precision = DG_PRECISION_BF16 };
  weights_visit (m, c, &w);
  *out = w.size;
}

guint64
dg_plan_weight_pool_bytes (const DgPlanModel *m, DgComponent c, DgPrecision precision, DgWeightFormat weights)
{
  Weights w = { .precision = precision, .format = weights };
  weights_visit (m, c, &w);
  return w.pieces;
}

guint64
dg_plan_weight_bytes (const DgPlanModel *m, DgComponent c, DgPrecision precision, DgWeightFormat weights)
{
  DgComponentSize s;
  dg_plan_component_size (m, c, &s);
  const guint64 es = precision == DG_PRECISION_BF16 ? 2 : 4;
  const DgLinearStorage storage = dg_plan_linear_storage (weights, c);
  if (storage != DG_LINEAR_AS_RELEASED)
    return (s.matrices - s.quantizable) * es + dg_plan_linear_block_bytes (storage, s.quantizable) + s.f32 * F32;
  return s.matrices * es + s.f32 * F32;
}

guint64
dg_plan_file_bytes (const DgPlanModel *m, DgComponent c)
{
  DgComponentSize s;
  dg_plan_component_size (m, c, &s);
  /* MODEL.md §8: everything bf16 except connector/model.safetensors (fp32). The VAE decoder's
   * computed vectors are not stored (stored counts only what the files hold). */
  return s.stored * (c == DG_COMPONENT_CONNECTOR ? 4 : 2);
}

/* Packs a component's weights into a fresh pool, sized as the loader sizes it
 * (dg_weights_expect of dg_plan_weight_pool_bytes), and returns what the pool reserves. */
static guint64
weights_reserved (const DgPlanModel *m, DgComponent c, DgPrecision precision, DgWeightFormat weights, Pool *pool)
{
  pool_expect (pool, dg_plan_weight_pool_bytes (m, c, precision, weights));
  Weights w = { .pool = pool, .precision = precision, .format = weights };
  weights_visit (m, c, &w);
  return pool_reserved (pool);
}

/* ======================================================================================== *
 * Activations, tensor by tensor in allocation order
 * ======================================================================================== */

/* The ViT grid of a reference of width × height (multiples of 32: the 28/32 rescale of
 * MODEL.md §1.4, prompt.c dg_vit_grid); 0 × 0 for a size the ViT does not take. */
static void
vit_grid (const DgQwenVisionConfig *c, int width, int height, guint64 *grid_h, guint64 *grid_w)
{
  DgVitGrid g;
  if (width <= 0 || height <= 0 || !dg_vit_grid ((guint) height, (guint) width, c, &g, NULL)) {
    *grid_h = *grid_w = 0;
    return;
  }
  *grid_h = g.grid_h;
  *grid_w = g.grid_w;
}

/* One reference through dg_vlm_encode's first stage (vlm.c encode_images, vit.c). */
static void
acts_vit (const DgQwenVisionConfig *c, int width, int height, Pool *p)
{
  guint64 gh, gw;
  vit_grid (c, width, height, &gh, &gw);
  DgLayoutAct a[VIT_N_ACTS];
  dg_vit_layout_acts (c, (gint64) (gh * gw), a);
  for (int i = 0; i < VIT_N_ACTS; i++)
    pool_alloc (p, (guint64) dg_layout_act_numel (&a[i]) * (dg_vit_layout_act_u32 (i) ? U32 : F32));
}

/* The prompt rows through dg_vlm_encode's second stage (llm.c). */
static void
acts_llm (const DgPlanModel *m, guint64 R, guint64 S, Pool *p)
{
  DgLayoutAct a[LLM_N_ACTS];
  dg_llm_layout_acts (&m->vlm.text, (gint64) R, (gint64) S, a);
  for (int i = 0; i < LLM_N_ACTS; i++)
    pool_alloc (p, (guint64) dg_layout_act_numel (&a[i]) * (i == LLM_ACT_VALID ? U32 : F32));
}

/* dg_connector_forward (connector.c): outputs first, then the per-layer buffers. */
static void
acts_connector (const DgPlanModel *m, DgPrecision precision, guint64 R, guint64 S, Pool *p)
{
  const DgConnectorShape s = dg_plan_connector_shape (m);
  DgLayoutAct a[CONN_N_ACTS];
  dg_connector_layout_acts (&s, (gint64) R, (gint64) S, precision == DG_PRECISION_BF16, a);
  acts_take (p, a, CONN_N_ACTS);
}

/* dg_dit_forward (dit.c) for B rows, the longest row L image tokens, S context tokens. */
static void
acts_dit (const DgDitConfig *c, guint64 B, guint64 L, guint64 S, gboolean padded, Pool *p)
{
  DgLayoutAct a[DIT_N_ACTS];
  dg_dit_layout_acts (c, (gint64) B, (gint64) L, (gint64) S, padded, a);
  for (int i = 0; i < DIT_N_ACTS; i++)
    if (a[i].ndim)
      pool_alloc (p, (guint64) dg_layout_act_numel (&a[i]) * (i == DIT_ACT_KEY_VALID ? U32 : F32));
}

static guint64 down (const DgVaeConfig *c);

/* ---- VAE: vae.c's dry run (vae_pass.c) ------------------------------------------------------ */

/* One whole pass of one image, without a device: the scratch estimated, no binding limit. */
static DgVaePass
walk (const DgVaeConfig *c, gboolean encode, guint64 H, guint64 W)
{
  DgVaePass p = { .cfg = c };
  const DgVaeAct in = { DG_VAE_IN, 1, (gint64) H, (gint64) W, encode ? c->in_channels : c->latent_channels };
  if (encode)
    dg_vae_pass_encode (&p, &in);
  else
    dg_vae_pass_decode (&p, &in);
  return p;
}

/* The arena of one whole forward (vae.c run): three slabs, the scratch, then the outputs,
 * expected first (vae.c sizes the arena from its dry run). */
static void
acts_vae_forward (const DgVaeConfig *c, gboolean encode, guint64 H, guint64 W, Pool *p)
{
  const DgVaePass w = walk (c, encode, H, W);
  guint64 pieces = align_up ((guint64) MAX (w.scratch, 1) * F32) + align_up (w.out_bytes);
  for (int i = 0; i < DG_VAE_N_SLABS; i++)
    if (w.need[i])
      pieces += align_up ((guint64) w.need[i] * F32);
  pool_expect (p, pieces);
  for (int i = 0; i < DG_VAE_N_SLABS; i++)
    if (w.need[i])
      act (p, (guint64) w.need[i]);
  act (p, (guint64) MAX (w.scratch, 1));
  pool_alloc (p, w.out_bytes);
}

/* Whether vae.c can run a whole pass on a device that binds at most @max_binding bytes (0 =
 * no limit): its mid-block attention binds the keys and values of the whole image. */
static gboolean
vae_whole_possible (const DgVaeConfig *c, gboolean encode, guint64 H, guint64 W, guint64 max_binding)
{
  return !max_binding || walk (c, encode, H, W).attn_binding <= max_binding;
}

/* A tensor of @n f32 values that its caller expects alone (dg_arena_expect of its piece). */
static void
act_expected (Pool *p, guint64 n)
{
  pool_expect (p, align_up (n * F32));
  act (p, n);
}

/* What vae.c's dry_run returns (dg_vae_decode_bytes / dg_vae_encode_bytes). */
static guint64
vae_dry_run_bytes (const DgVaeConfig *c, gboolean encode, guint64 H, guint64 W)
{
  const DgVaePass w = walk (c, encode, H, W);
  return dg_vae_pass_bytes (&w);
}

guint64
dg_plan_vae_decode_bytes (const DgVaeConfig *c, int latent_h, int latent_w)
{
  return vae_dry_run_bytes (c, FALSE, (guint64) latent_h, (guint64) latent_w);
}

guint64
dg_plan_vae_encode_bytes (const DgVaeConfig *c, int height, int width)
{
  const guint64 f = down (c);
  return vae_dry_run_bytes (c, TRUE, (guint64) height, (guint64) width) +
         ((guint64) height / f) * ((guint64) width / f) * c->latent_channels * F32; /* the sampled latents */
}

guint64
dg_plan_dit_activation_bytes (const DgDitConfig *c, gint64 B, gint64 L, gint64 S)
{
  Pool p;
  pool_init (&p, 0);
  acts_dit (c, (guint64) B, (guint64) L, (guint64) S, FALSE, &p);
  guint64 used = p.used;
  pool_clear (&p);
  return used;
}


static guint64
down (const DgVaeConfig *c)
{
  return (guint64) 1 << (c->n_blocks - 1);
}

/* ======================================================================================== *
 * The plan
 * ======================================================================================== */

const char *
dg_plan_stage_name (DgPlanStage s)
{
  static const char *names[DG_PLAN_N_STAGES] = { "encode", "bridge", "vae-encode", "denoise", "decode" };
  return s < DG_PLAN_N_STAGES ? names[s] : "?";
}

static gboolean
bad_size (GError **error, const char *what, int w, int h, int multiple)
{
  g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
               _ ("%s of %d×%d: the sides must be positive multiples of %d"), what, w, h, multiple);
  return FALSE;
}

/* References of request @b of a batch of @B: [*first, *first + *count). */
static void
request_range (const DgPlanRequest *r, guint B, guint n_refs, guint b, guint *first, guint *count)
{
  if (n_refs == 0) {
    *first = *count = 0;
  } else if (r->request_refs) {
    guint at = 0;
    for (guint i = 0; i < b; i++) at += r->request_refs[i];
    *first = at;
    *count = r->request_refs[b];
  } else {
    *count = n_refs / B;
    *first = b * *count;
  }
}

static gboolean
check_request (const DgPlanModel *m, const DgPlanRequest *r, GError **error)
{
  const int out_mult = (int) (down (&m->vae) * m->dit.patch_size);
  const int max_side = (int) (m->dit.pos_embed_max_size ? m->dit.pos_embed_max_size * out_mult : 1 << 16);
  const guint B = r->batch ? r->batch : 1;
  if (r->width <= 0 || r->height <= 0 || r->width % out_mult || r->height % out_mult)
    return bad_size (error, _ ("An output size"), r->width, r->height, out_mult);
  if (r->job == DG_JOB_EDIT || r->job == DG_JOB_INPAINT) {
    guint total = 0, fewest = G_MAXUINT;
    for (guint b = 0; b < B; b++) {
      guint n = r->request_refs ? r->request_refs[b] : r->n_refs / B;
      total += n;
      fewest = MIN (fewest, n);
    }
    if (fewest == 0) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("Editing needs at least one reference image."));
      return FALSE;
    }
    if (total != r->n_refs) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                   _ ("The references of the %u requests (%u) do not add up to the %u given."), B, total, r->n_refs);
      return FALSE;
    }
    if (r->n_refs > DG_PLAN_MAX_REFS) {
      g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("%u reference images are too many (at most %d)."),
                   r->n_refs, DG_PLAN_MAX_REFS);
      return FALSE;
    }
  }
  for (guint i = 0; i < r->n_refs; i++) {
    int w = r->ref_sizes ? r->ref_sizes[2 * i] : r->width, h = r->ref_sizes ? r->ref_sizes[2 * i + 1] : r->height;
    if (w <= 0 || h <= 0 || w % 32 || h % 32)
      return bad_size (error, _ ("A reference size"), w, h, 32);
    if (w > max_side || h > max_side)
      return bad_size (error, _ ("A reference size"), w, h, out_mult);
  }
  if (r->width > max_side || r->height > max_side) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT,
                 _ ("%d×%d is larger than the model can produce (%d pixels per side)."), r->width, r->height, max_side);
    return FALSE;
  }
  return TRUE;
}

static void
stage_set (DgPlanStageBytes *s, guint64 weights, guint64 activations, guint64 carried, double flop)
{
  s->weights = weights;
  s->activations = activations;
  s->carried = carried;
  s->total = weights + activations + carried;
  s->flop = flop;
}

static guint64
margin_of (guint64 peak)
{
  return DG_PLAN_MARGIN_FIXED + peak / 100 * DG_PLAN_MARGIN_PERCENT;
}

/* pipeline.c encode_reference, one reference of W × H pixels: its arena (pixels and latents,
 * expected together, then dg_vae_encode: the forward, sized by vae.c's dry run, and the sampled
 * latents) or, tiled, the arena plus dg_vae_encode_tiled's two (the blended moments and the
 * latents; one tile's forward). Returns the bytes reserved; adds the FLOPs to @flop. */
static guint64
vae_encode_ref (const DgVaeConfig *c, guint64 W, guint64 H, gboolean tiled, guint64 cap, double *flop)
{
  const guint64 f = down (c), h = H / f, w = W / f, lc = c->latent_channels;
  Pool a, moments, tiles;
  pool_init (&a, cap);
  pool_init (&moments, cap);
  pool_init (&tiles, cap);
  pool_expect (&a, align_up (H * W * c->in_channels * F32) + align_up (h * w * lc * F32));
  act (&a, H * W * c->in_channels);
  act (&a, h * w * lc);
  if (!tiled) {
    acts_vae_forward (c, TRUE, H, W, &a);
    act_expected (&a, h * w * lc); /* dg_vae_latents_from_moments */
    *flop += dg_flops_vae_encode (c, (int) W, (int) H);
  } else {
    guint ny, nx, sy, sx;
    dg_vae_axis_tiles ((guint) h, DG_PLAN_VAE_TILE, DG_PLAN_VAE_OVERLAP, &ny, &sy);
    dg_vae_axis_tiles ((guint) w, DG_PLAN_VAE_TILE, DG_PLAN_VAE_OVERLAP, &nx, &sx);
    act_expected (&moments, h * w * 2 * lc);
    acts_vae_forward (c, TRUE, f * sy, f * sx, &tiles);
    act_expected (&moments, h * w * lc);
    *flop += dg_flops_vae_encode_tiled (c, (int) W, (int) H, DG_PLAN_VAE_TILE, DG_PLAN_VAE_OVERLAP);
  }
  guint64 bytes = pool_reserved (&a) + pool_reserved (&moments) + pool_reserved (&tiles);
  pool_clear (&a);
  pool_clear (&moments);
  pool_clear (&tiles);
  return bytes;
}

/* pipeline.c decode_one: its arena (latents and image, expected together, then dg_vae_decode)
 * or, tiled, the arena plus the tiles' arena of dg_vae_decode_tiled. */
static guint64
vae_decode_image (const DgVaeConfig *c, guint64 W, guint64 H, gboolean tiled, guint64 cap, double *flop)
{
  const guint64 f = down (c), h = H / f, w = W / f;
  Pool a, tiles;
  pool_init (&a, cap);
  pool_init (&tiles, cap);
  pool_expect (&a, align_up (h * w * c->latent_channels * F32) + align_up (H * W * c->out_channels * F32));
  act (&a, h * w * c->latent_channels);
  act (&a, H * W * c->out_channels);
  if (!tiled) {
    acts_vae_forward (c, FALSE, h, w, &a);
    *flop = dg_flops_vae_decode (c, (int) W, (int) H);
  } else {
    guint ny, nx, sy, sx;
    dg_vae_axis_tiles ((guint) h, DG_PLAN_VAE_TILE, DG_PLAN_VAE_OVERLAP, &ny, &sy);
    dg_vae_axis_tiles ((guint) w, DG_PLAN_VAE_TILE, DG_PLAN_VAE_OVERLAP, &nx, &sx);
    acts_vae_forward (c, FALSE, sy, sx, &tiles);
    *flop = dg_flops_vae_decode_tiled (c, (int) W, (int) H, DG_PLAN_VAE_TILE, DG_PLAN_VAE_OVERLAP);
  }
  guint64 bytes = pool_reserved (&a) + pool_reserved (&tiles);
  pool_clear (&a);
  pool_clear (&tiles);
  return bytes;
}

/* Width and height of image i of the request: 0 = the output, 1.. = the references. */
static void
image_size (const DgPlanRequest *r, guint i, guint64 *w, guint64 *h)
{
  if (i == 0 || !r->ref_sizes) {
    *w = (guint64) r->width;
    *h = (guint64) r->height;
  } else {
    *w = (guint64) r->ref_sizes[2 * (i - 1)];
    *h = (guint64) r->ref_sizes[2 * (i - 1) + 1];
  }
}

/* Whether the VAE runs a pass whole (pipeline.c follows this): not when vae.c cannot bind its
 * attention at once; yes when the whole pass does not raise the peak of the other stages, or
 * when the device (if known) still fits the raised peak with its margin. Tiles bound the
 * memory but cost FLOPs (2.2 × at 1024²), so the plan tiles only to fit. */
static gboolean
vae_whole (const DgPlanRequest *r, gboolean possible, guint64 whole_total, guint64 other_peak)
{
  if (!possible)
    return FALSE;
  if (whole_total <= other_peak)
    return TRUE;
  return r->device_bytes && whole_total + margin_of (whole_total) <= r->device_bytes;
}

/* The encode stage's arena (pipeline.c encode_prompt): the meta queries, every reference
 * through the ViT (vlm.c encode_images), the prompt rows through the LLM. Returns the FLOPs. */
static double
acts_encode (const DgPlanModel *m, const DgPlanRequest *r, guint n_refs, guint64 R, guint64 S, Pool *p)
{
  double flop = 0;
  act (p, (guint64) m->n_queries * m->vlm.text.hidden);
  for (guint i = 1; i <= n_refs; i++) {
    guint64 rw, rh;
    image_size (r, i, &rw, &rh);
    acts_vit (&m->vlm.vision, (int) rw, (int) rh, p);
    flop += dg_flops_vit (&m->vlm.vision, (int) rw, (int) rh);
  }
  acts_llm (m, R, S, p);
  return flop + (double) R * dg_flops_llm (&m->vlm.text, (gint64) S);
}

/* One denoising step's arena (pipeline.c dit_step): latents, timesteps, velocity, the forward
 * of @B rows, the longest @L image tokens, @S context tokens. */
static void
acts_step (const DgPlanModel *m, guint64 B, guint64 h, guint64 w, guint64 L, guint64 S, gboolean padded, Pool *p)
{
  act (p, B * h * w * m->dit.in_channels);
  act (p, B);
  act (p, B * h * w * m->dit.out_channels);
  acts_dit (&m->dit, B, L, S, padded, p);
}

gboolean
dg_plan_compute (const DgPlanModel *m, const DgPlanRequest *r, DgPlan *plan, GError **error)
{
  memset (plan, 0, sizeof *plan);
  if (!check_request (m, r, error))
    return FALSE;
  const DgVaeConfig *vc = &m->vae;
  const guint64 f = down (vc), ps = m->dit.patch_size, cap = r->max_allocation;
  const guint B = r->batch ? r->batch : 1;
  const guint n_refs = r->job == DG_JOB_GENERATE ? 0 : r->n_refs;
  const guint64 R = 2 * (guint64) B;               /* prompt rows: conditional and unconditional (prompt.h) */
  const guint64 BD = r->cfg ? 2 * (guint64) B : B; /* DiT rows */
  const guint64 h = (guint64) r->height / f, w = (guint64) r->width / f;
  const guint64 merge = (guint64) m->vlm.vision.spatial_merge_size * m->vlm.vision.spatial_merge_size;

  plan->job = r->job;
  plan->precision = r->precision;
  plan->weights = r->weights == DG_WEIGHTS_AUTO ? DG_WEIGHTS_RELEASED : r->weights;
  plan->width = r->width;
  plan->height = r->height;
  plan->batch = B;
  plan->vlm_rows = (guint) R;
  plan->dit_rows = (guint) BD;
  plan->steps = r->steps ? r->steps : 50;
  plan->vae_tile = DG_PLAN_VAE_TILE;
  plan->vae_overlap = DG_PLAN_VAE_OVERLAP;
  plan->image_tokens = (guint) ((h / ps) * (w / ps));

  /* Per request: the image pads of its prompt rows and the reference tokens of its DiT rows. */
  guint64 max_pads = 0, max_ref_tokens = 0, min_ref_tokens = G_MAXUINT64;
  for (guint b = 0; b < B; b++) {
    guint first, count;
    guint64 pads = 0, tokens = 0;
    request_range (r, B, n_refs, b, &first, &count);
    for (guint i = first + 1; i <= first + count; i++) {
      guint64 rw, rh, gh, gw;
      image_size (r, i, &rw, &rh);
      vit_grid (&m->vlm.vision, (int) rw, (int) rh, &gh, &gw);
      pads += gh * gw / merge;
      tokens += (rh / f / ps) * (rw / f / ps);
    }
    max_pads = MAX (max_pads, pads);
    max_ref_tokens = MAX (max_ref_tokens, tokens);
    min_ref_tokens = MIN (min_ref_tokens, tokens);
  }
  if (r->text_tokens)
    plan->text_tokens = r->text_tokens;
  else if (r->seq_len > max_pads + m->n_queries)
    plan->text_tokens = (guint) (r->seq_len - max_pads - m->n_queries);
  else
    plan->text_tokens = DG_PLAN_DEFAULT_TEXT_TOKENS;
  const guint64 S = r->seq_len ? r->seq_len : plan->text_tokens + max_pads + m->n_queries;
  const guint64 L = plan->image_tokens + max_ref_tokens; /* the longest DiT row */
  const gboolean padded = max_ref_tokens != min_ref_tokens;
  plan->seq_len = (guint) S;
  plan->ref_tokens = (guint) max_ref_tokens;

  /* encode (pipeline.c encode_prompt): the VLM — the LLM, and the ViT only when there are
   * references — and one arena told the stage's exact needs (encode_arena) before the meta
   * queries, the ViT and the LLM take it. bridge: the VLM released, the connector loaded, the
   * arena told the connector's needs (bridge_arena) on top. */
  {
    Pool wl, wv, wc, a;
    pool_init (&wl, cap);
    pool_init (&wv, cap);
    pool_init (&wc, cap);
    pool_init (&a, cap);
    guint64 vlm = weights_reserved (m, DG_COMPONENT_LLM, r->precision, r->weights, &wl);
    if (n_refs)
      vlm += weights_reserved (m, DG_COMPONENT_VIT, r->precision, r->weights, &wv);
    Pool count; /* the pieces, as the pipeline gets them from this plan */
    pool_init (&count, 0);
    acts_encode (m, r, n_refs, R, S, &count);
    plan->encode_arena = count.used;
    pool_clear (&count);
    pool_expect (&a, plan->encode_arena);
    const double flop = acts_encode (m, r, n_refs, R, S, &a);
    stage_set (&plan->stage[DG_PLAN_ENCODE], vlm, pool_reserved (&a), 0, flop);
    const guint64 conn = weights_reserved (m, DG_COMPONENT_CONNECTOR, r->precision, r->weights, &wc);
    pool_init (&count, 0);
    acts_connector (m, r->precision, R, S, &count);
    plan->bridge_arena = count.used;
    pool_clear (&count);
    pool_expect (&a, plan->bridge_arena);
    acts_connector (m, r->precision, R, S, &a);
    stage_set (&plan->stage[DG_PLAN_BRIDGE], conn, pool_reserved (&a), 0,
               (double) R * dg_flops_connector (m, (gint64) S));
    pool_clear (&wl);
    pool_clear (&wv);
    pool_clear (&wc);
    pool_clear (&a);
  }

  /* denoise (pipeline.c denoise): DiT weights + a position crop per distinct image size (each
   * expected when dit.c uploads it, at the first step); the inputs kept for all steps (context,
   * pooled, every reference latent), expected together; the step arena told its exact needs
   * (dit_arena) once: latents, timesteps, velocity, then the forward. */
  {
    Pool wd, in, a;
    pool_init (&wd, cap);
    pool_init (&in, cap);
    pool_init (&a, cap);
    weights_reserved (m, DG_COMPONENT_DIT, r->precision, r->weights, &wd);
    for (guint i = 0; i <= n_refs; i++) {
      guint64 iw, ih, jw, jh;
      gboolean seen = FALSE;
      image_size (r, i, &iw, &ih);
      for (guint j = 0; j < i && !seen; j++) {
        image_size (r, j, &jw, &jh);
        seen = iw == jw && ih == jh;
      }
      if (!seen) {
        const guint64 crop = (ih / f / ps) * (iw / f / ps) * m->dit.inner_dim * F32;
        pool_expect (&wd, align_up (crop));
        pool_alloc (&wd, crop);
      }
    }
    guint64 inputs =
        align_up (BD * S * m->dit.joint_attention_dim * F32) + align_up (BD * m->dit.pooled_projection_dim * F32);
    for (guint i = 1; i <= n_refs; i++) {
      guint64 rw, rh;
      image_size (r, i, &rw, &rh);
      inputs += align_up ((rh / f) * (rw / f) * m->dit.in_channels * F32);
    }
    pool_expect (&in, inputs);
    act (&in, BD * S * m->dit.joint_attention_dim);
    act (&in, BD * m->dit.pooled_projection_dim);
    for (guint i = 1; i <= n_refs; i++) {
      guint64 rw, rh;
      image_size (r, i, &rw, &rh);
      act (&in, (rh / f) * (rw / f) * m->dit.in_channels);
    }
    Pool count;
    pool_init (&count, 0);
    acts_step (m, BD, h, w, L, S, padded, &count);
    plan->dit_arena = count.used;
    pool_clear (&count);
    pool_expect (&a, plan->dit_arena);
    acts_step (m, BD, h, w, L, S, padded, &a);
    const double flop = (double) plan->steps * (double) BD * dg_flops_dit (&m->dit, (gint64) L, (gint64) S);
    stage_set (&plan->stage[DG_PLAN_DENOISE], pool_reserved (&wd), pool_reserved (&a), pool_reserved (&in), flop);
    pool_clear (&wd);
    pool_clear (&in);
    pool_clear (&a);
  }

  guint64 other_peak = 0;
  for (int s = 0; s < DG_PLAN_N_STAGES; s++) other_peak = MAX (other_peak, plan->stage[s].total);

  /* vae-encode (pipeline.c encode_references): one reference at a time, its arena freed after. */
  if (n_refs) {
    Pool we;
    pool_init (&we, cap);
    const guint64 weights = weights_reserved (m, DG_COMPONENT_VAE_ENCODER, r->precision, r->weights, &we);
    guint64 peak = 0;
    double flop = 0;
    for (guint i = 1; i <= n_refs; i++) {
      guint64 rw, rh;
      double unused = 0;
      image_size (r, i, &rw, &rh);
      const guint64 whole = vae_encode_ref (vc, rw, rh, FALSE, cap, &unused);
      const gboolean tiled =
          !vae_whole (r, vae_whole_possible (vc, TRUE, rh, rw, r->max_binding), weights + whole, other_peak);
      if (tiled)
        plan->vae_encode_tiled_refs |= (guint64) 1 << (i - 1);
      plan->vae_encode_tiled |= tiled;
      const guint64 bytes = vae_encode_ref (vc, rw, rh, tiled, cap, &flop);
      peak = MAX (peak, bytes);
    }
    stage_set (&plan->stage[DG_PLAN_VAE_ENCODE], weights, peak, 0, flop);
    pool_clear (&we);
  }

  /* decode (pipeline.c decode): one image at a time. */
  {
    Pool wv;
    pool_init (&wv, cap);
    const guint64 weights = weights_reserved (m, DG_COMPONENT_VAE_DECODER, r->precision, r->weights, &wv);
    double flop;
    const guint64 whole = vae_decode_image (vc, (guint64) r->width, (guint64) r->height, FALSE, cap, &flop);
    plan->vae_decode_tiled =
        !vae_whole (r, vae_whole_possible (vc, FALSE, h, w, r->max_binding), weights + whole, other_peak);
    const guint64 bytes = plan->vae_decode_tiled
                              ? vae_decode_image (vc, (guint64) r->width, (guint64) r->height, TRUE, cap, &flop)
                              : whole;
    stage_set (&plan->stage[DG_PLAN_DECODE], weights, bytes, 0, (double) B * flop);
    pool_clear (&wv);
  }

  for (int s = 0; s < DG_PLAN_N_STAGES; s++)
    if (plan->stage[s].total > plan->peak) {
      plan->peak = plan->stage[s].total;
      plan->peak_stage = (DgPlanStage) s;
    }
  plan->margin = margin_of (plan->peak);
  plan->required = plan->peak + plan->margin;
  return TRUE;
}

guint64
dg_plan_llm_head_bytes (const DgQwenTextConfig *c, DgPrecision precision, DgWeightFormat weights)
{
  const guint64 n = (guint64) c->vocab_size * c->hidden;
  const DgLinearStorage storage = dg_plan_linear_storage (weights, DG_COMPONENT_LLM);
  return align_up (storage != DG_LINEAR_AS_RELEASED && dg_plan_linear_quantizable (c->hidden)
                       ? dg_plan_linear_block_bytes (storage, n)
                       : n * (precision == DG_PRECISION_F32 ? 4 : 2));
}

gboolean
dg_plan_describe (const DgPlanModel *m, const DgPlanRequest *limits, int width, int height, guint prompt_tokens,
                  guint max_new, DgPlan *plan, GError **error)
{
  DgPlanRequest q = *limits;
  const int ref_size[2] = { width, height };
  q.job = DG_JOB_EDIT;
  q.width = width;
  q.height = height;
  q.n_refs = 1;
  q.ref_sizes = ref_size;
  q.request_refs = NULL;
  q.batch = 1;
  q.cfg = FALSE;
  q.steps = 1;
  q.seq_len = prompt_tokens + max_new;
  if (!dg_plan_compute (m, &q, plan, error))
    return FALSE;
  const DgQwenTextConfig *c = &m->vlm.text;
  const guint64 n = (guint64) c->vocab_size * c->hidden;
  DgPlanStageBytes *e = &plan->stage[DG_PLAN_ENCODE];
  e->weights += dg_plan_llm_head_bytes (c, plan->precision, plan->weights);
  e->activations += dg_llm_layout_cache_bytes (c, prompt_tokens + max_new) + align_up ((guint64) c->vocab_size * 4);
  e->total = e->weights + e->activations + e->carried;
  /* New token j (0-based) attends to prompt_tokens + j + 1 cached keys: 4·context·Q per layer. */
  const double Q = (double) c->n_heads * c->head_dim, P = prompt_tokens, N = max_new;
  const double contexts = N * P + N * (N + 1) / 2;
  e->flop = dg_flops_vit (&m->vlm.vision, width, height) + dg_flops_llm (c, prompt_tokens) +
            N * (dg_flops_llm_per_token (c) + 2.0 * (double) n) + 4.0 * c->n_layers * Q * contexts;
  for (int s = 0; s < DG_PLAN_N_STAGES; s++)
    if (s != DG_PLAN_ENCODE)
      plan->stage[s] = (DgPlanStageBytes) { 0 };
  plan->peak_stage = DG_PLAN_ENCODE;
  plan->peak = e->total;
  plan->margin = margin_of (plan->peak);
  plan->required = plan->peak + plan->margin;
  return TRUE;
}

gboolean
dg_plan_check (const DgPlan *plan, guint64 device_bytes, GError **error)
{
  if (device_bytes == 0 || plan->required <= device_bytes)
    return TRUE;
  g_autofree char *need = g_format_size_full (plan->required, G_FORMAT_SIZE_IEC_UNITS);
  g_autofree char *have = g_format_size_full (device_bytes, G_FORMAT_SIZE_IEC_UNITS);
  const char *hint = plan->precision == DG_PRECISION_F32
                         ? _ ("use bf16 precision, choose a smaller size or close programs that use the GPU")
                     : plan->weights == DG_WEIGHTS_RELEASED
                         ? _ ("use 8-bit weights (--weights q8 or auto), choose a smaller size or close programs that "
                              "use the GPU")
                     : plan->weights == DG_WEIGHTS_Q8_0
                         ? _ ("use 4-bit weights (--weights q4 or auto), choose a smaller size or close programs that "
                              "use the GPU")
                         : _ ("choose a smaller size (DeepGen works best near 512×512) or close programs that use "
                              "the GPU");
  g_set_error (error, DG_ERROR, DG_ERROR_OOM,
               _ ("This job needs %s of GPU memory at %d×%d (most in the %s stage), but %s is available: %s."), need,
               plan->width, plan->height, dg_plan_stage_name (plan->peak_stage), have, hint);
  return FALSE;
}

/* ======================================================================================== *
 * FLOPs
 * ======================================================================================== */

double
dg_flops_llm_per_token (const DgQwenTextConfig *c)
{
  const double H = c->hidden, Q = (double) c->n_heads * c->head_dim, KV = (double) c->n_kv_heads * c->head_dim;
  return 2.0 * c->n_layers * (H * Q + 2.0 * H * KV + Q * H + 3.0 * H * c->intermediate);
}

double
dg_flops_llm (const DgQwenTextConfig *c, gint64 tokens)
{
  const double T = (double) tokens, Q = (double) c->n_heads * c->head_dim;
  return T * dg_flops_llm_per_token (c) + c->n_layers * 2.0 * T * T * Q; /* causal: half of 4·T²·Q */
}

double
dg_flops_vit (const DgQwenVisionConfig *c, int width, int height)
{
  guint64 gh, gw;
  vit_grid (c, width, height, &gh, &gw);
  const double N = (double) (gh * gw), C = c->hidden, I = c->intermediate;
  const double unit = (double) c->spatial_merge_size * c->spatial_merge_size, M = unit * C;
  double flop = 2.0 * N * dg_vit_layout_patch_values (c) * C; /* patch embedding */
  flop += 2.0 * (N / unit) * (M * M + M * c->out_hidden);     /* merger */
  /* Windows of window_size pixels: win merged tokens per side, partial at the bottom/right. */
  const guint64 win = c->window_size / (c->patch_size * c->spatial_merge_size);
  const guint64 mh = gh / c->spatial_merge_size, mw = gw / c->spatial_merge_size;
  double win_pairs = 0;
  for (guint64 y = 0; y < mh; y += win)
    for (guint64 x = 0; x < mw; x += win) {
      double n = (double) (MIN (win, mh - y) * MIN (win, mw - x)) * unit;
      win_pairs += n * n;
    }
  for (guint i = 0; i < c->depth; i++) {
    gboolean full = FALSE;
    for (guint k = 0; k < c->n_fullatt; k++) full |= c->fullatt_block_indexes[k] == i;
    flop += 2.0 * N * (3.0 * C * C + C * C + 3.0 * C * I); /* qkv, proj, SwiGLU */
    flop += 4.0 * (full ? N * N : win_pairs) * C;
  }
  return flop;
}

double
dg_flops_connector (const DgPlanModel *m, gint64 tokens)
{
  const DgConnectorConfig *c = &m->connector;
  const double T = (double) tokens, D = c->hidden;
  double flop = 2.0 * T * D * (double) m->n_selected * m->vlm.text.hidden; /* projector_1 */
  flop += c->n_layers * (2.0 * T * (4.0 * D * D + 2.0 * D * c->intermediate) + 4.0 * T * T * D);
  flop += 2.0 * D * m->dit.pooled_projection_dim;   /* projector_2 on the mean */
  flop += 2.0 * T * D * m->dit.joint_attention_dim; /* projector_3 */
  return flop;
}

double
dg_flops_dit (const DgDitConfig *c, gint64 image_tokens, gint64 ctx_tokens)
{
  const double N = (double) image_tokens, S = (double) ctx_tokens, D = c->inner_dim, F = DIT_FF_MULT * D;
  double flop = 2.0 * N * (c->in_channels * c->patch_size * c->patch_size) * D             /* patch embedding */
                + 2.0 * S * c->joint_attention_dim * D                                     /* context embedder */
                + 2.0 * (DIT_FREQ_DIM * D + D * D + c->pooled_projection_dim * D + D * D); /* temb */
  for (guint i = 0; i < c->n_layers; i++) {
    const gboolean dual = dg_dit_config_is_dual (c, i), last = i + 1 == c->n_layers;
    flop += 2.0 * D * D * ((dual ? N_CHUNKS_DUAL : N_CHUNKS_PLAIN) + (last ? N_CHUNKS_CONT : N_CHUNKS_PLAIN));
    flop += 2.0 * N * (4.0 * D * D + 2.0 * D * F); /* image q, k, v, out, MLP */
    flop += last ? 2.0 * S * 3.0 * D * D           /* context q, k, v only */
                 : 2.0 * S * (4.0 * D * D + 2.0 * D * F);
    flop += 4.0 * (N + S) * (N + S) * D; /* joint attention */
    if (dual)
      flop += 2.0 * N * 4.0 * D * D + 4.0 * N * N * D; /* attn2 over image tokens */
  }
  flop += 2.0 * D * N_CHUNKS_CONT * D + 2.0 * N * D * (c->patch_size * c->patch_size * c->out_channels);
  return flop;
}

/* ---- VAE: convolutions 2·H·W·cin·cout·k², mid attention 4 linears + 4·(HW)²·C ------------- */

static double
conv_flop (double H, double W, double cin, double cout, double k)
{
  return 2.0 * H * W * cin * cout * k * k;
}

static double
resnet_flop (double H, double W, double cin, double cout)
{
  double f = conv_flop (H, W, cin, cout, 3) + conv_flop (H, W, cout, cout, 3);
  return cin != cout ? f + conv_flop (H, W, cin, cout, 1) : f;
}

static double
mid_flop (const DgVaeConfig *c, double H, double W, double C)
{
  double f = 2.0 * resnet_flop (H, W, C, C);
  if (c->mid_block_add_attention)
    f += 4.0 * 2.0 * H * W * C * C + 4.0 * (H * W) * (H * W) * C;
  return f;
}

double
dg_flops_vae_encode (const DgVaeConfig *c, int width, int height)
{
  double H = height, W = width, prev = c->block_out_channels[0];
  double f = conv_flop (H, W, c->in_channels, prev, 3);
  for (guint i = 0; i < c->n_blocks; i++) {
    const double out = c->block_out_channels[i];
    for (guint j = 0; j < c->layers_per_block; j++) {
      f += resnet_flop (H, W, prev, out);
      prev = out;
    }
    if (i + 1 < c->n_blocks) {
      H = floor ((H - 2) / 2) + 1;
      W = floor ((W - 2) / 2) + 1;
      f += conv_flop (H, W, out, out, 3);
    }
  }
  f += mid_flop (c, H, W, prev);
  return f + conv_flop (H, W, prev, 2.0 * c->latent_channels, 3);
}

double
dg_flops_vae_decode (const DgVaeConfig *c, int width, int height)
{
  double H = (double) (height / (int) down (c)), W = (double) (width / (int) down (c));
  double prev = c->block_out_channels[c->n_blocks - 1];
  double f = conv_flop (H, W, c->latent_channels, prev, 3) + mid_flop (c, H, W, prev);
  for (guint i = 0; i < c->n_blocks; i++) {
    const double out = c->block_out_channels[c->n_blocks - 1 - i];
    for (guint j = 0; j < c->layers_per_block + 1; j++) {
      f += resnet_flop (H, W, prev, out);
      prev = out;
    }
    if (i + 1 < c->n_blocks) {
      H *= 2;
      W *= 2;
      f += conv_flop (H, W, out, out, 3);
    }
  }
  return f + conv_flop (H, W, prev, c->out_channels, 3);
}

static double
tiled (const DgVaeConfig *c, int width, int height, guint tile, guint overlap,
       double (*whole) (const DgVaeConfig *, int, int))
{
  const guint f = (guint) down (c);
  guint ny, nx, sy, sx;
  dg_vae_axis_tiles ((guint) height / f, tile, overlap, &ny, &sy);
  dg_vae_axis_tiles ((guint) width / f, tile, overlap, &nx, &sx);
  return (double) ny * nx * whole (c, (int) (sx * f), (int) (sy * f));
}

double
dg_flops_vae_decode_tiled (const DgVaeConfig *c, int width, int height, guint tile, guint overlap)
{
  return tiled (c, width, height, tile, overlap, dg_flops_vae_decode);
}

double
dg_flops_vae_encode_tiled (const DgVaeConfig *c, int width, int height, guint tile, guint overlap)
{
  return tiled (c, width, height, tile, overlap, dg_flops_vae_encode);
}

/* ---- the public face of the plan (deepgen.h) ------------------------------------------- */

DgPlanModel *
dg_plan_model_new (void)
{
  DgPlanModel *m = g_new0 (DgPlanModel, 1);
  dg_plan_model_deepgen_1_0 (m);
  return m;
}

DgPlanModel *
dg_plan_model_new_from_folder (const char *folder, GError **error)
{
  g_autofree DgPlanModel *m = g_new0 (DgPlanModel, 1);
  if (!dg_plan_model_load (m, folder, error))
    return NULL;
  return g_steal_pointer (&m);
}

void
dg_plan_model_free (DgPlanModel *m)
{
  g_free (m);
}

gboolean
dg_plan_model_same_architecture (const DgPlanModel *a, const DgPlanModel *b)
{
  return a->vlm.text.n_layers == b->vlm.text.n_layers && a->vlm.text.hidden == b->vlm.text.hidden &&
         a->vlm.vision.depth == b->vlm.vision.depth && a->vlm.vision.hidden == b->vlm.vision.hidden &&
         a->connector.hidden == b->connector.hidden && a->connector.n_layers == b->connector.n_layers &&
         a->dit.n_layers == b->dit.n_layers && a->dit.inner_dim == b->dit.inner_dim &&
         a->vae.block_out_channels[0] == b->vae.block_out_channels[0] && a->n_queries == b->n_queries;
}

guint
dg_plan_model_n_queries (const DgPlanModel *m)
{
  return m->n_queries;
}

double
dg_plan_flops_llm_per_token (const DgPlanModel *m)
{
  return dg_flops_llm_per_token (&m->vlm.text);
}

double
dg_plan_flops_llm (const DgPlanModel *m, gint64 tokens)
{
  return dg_flops_llm (&m->vlm.text, tokens);
}

double
dg_plan_flops_vit (const DgPlanModel *m, int width, int height)
{
  return dg_flops_vit (&m->vlm.vision, width, height);
}

double
dg_plan_flops_dit (const DgPlanModel *m, gint64 image_tokens, gint64 ctx_tokens)
{
  return dg_flops_dit (&m->dit, image_tokens, ctx_tokens);
}
