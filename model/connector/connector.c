/* Stacked Channel Bridging (MODEL.md §1.8, §4) on vkcompute. */
#include "connector.h"

#include <math.h>
#include <string.h>

#include "dg_i18n.h"
#include "plan.h"
#include "safetensors.h"
#include "vkc_half.h"
#include "vkc_ops_attention.h"
#include "vkc_ops_convert.h"
#include "vkc_ops_eltwise.h"
#include "vkc_ops_linear.h"
#include "vkc_ops_norm.h"

typedef struct {
  VkcTensor w, b;
} Param;

/* transformers SiglipEncoderLayer: pre-LN attention and MLP blocks. */
typedef struct {
  Param ln1, q, k, v, out, ln2, fc1, fc2;
} Layer;

struct _DgConnector {
  VkcDevice *dev;
  DgConnectorConfig cfg;
  DgPrecision precision;
  DgWeights *weights; /* owns every GPU tensor */
  guint n_queries, llm_hidden, in_dim, pooled_dim, seq_dim;
  float *meta_host;
  VkcTensor meta;
  Param p1, p2, p3;
  Layer *layers;
  VkcUnaryOp act;
  DgTapFunc tap;
  gpointer tap_data;
};

/* ---- loading ------------------------------------------------------------------------------ */

/* A 2-D float (or q8_0: a converted folder) tensor's shape, with an error naming the file when it is absent or not 2-D. */
static gboolean
shape2 (const DgSafetensors *st, const char *name, guint *rows, guint *cols, GError **error)
{
  const gint64 any[2] = { -1, -1 };
  const DgTensorInfo *t = dg_safetensors_expect (st, name, DG_DTYPES_WEIGHT, 2, any, error);
  if (!t)
    return FALSE;
  *rows = (guint) t->shape[0];
  *cols = (guint) t->shape[1];
  return TRUE;
}

static gboolean
fail_shape (GError **error, const DgSafetensors *st, const char *what)
{
  g_set_error (error, DG_ERROR, DG_ERROR_SHAPE, _ ("%s: %s — is this the connector of a DeepGen-1.0 model?"),
               dg_safetensors_display_name (st), what);
  return FALSE;
}

/* The sizes the checkpoint fixes, checked against each other and against config.json. */
static gboolean
read_sizes (DgConnector *c, const DgSafetensors *st, GError **error)
{
  guint d1, k2, k3;
  if (!shape2 (st, "meta_queries", &c->n_queries, &c->llm_hidden, error) ||
      !shape2 (st, "projector_1.weight", &d1, &c->in_dim, error) ||
      !shape2 (st, "projector_2.weight", &c->pooled_dim, &k2, error) ||
      !shape2 (st, "projector_3.weight", &c->seq_dim, &k3, error))
    return FALSE;
  g_autofree char *msg = NULL;
  if (d1 != c->cfg.hidden)
    msg =
        g_strdup_printf (_ ("projector_1 outputs %u channels but config.json's hidden_size is %u"), d1, c->cfg.hidden);
  else if (k2 != d1 || k3 != d1)
    msg = g_strdup_printf (_ ("projector_2/3 take %u/%u channels, projector_1 gives %u"), k2, k3, d1);
  else if (c->in_dim % c->llm_hidden != 0)
    msg = g_strdup_printf (_ ("projector_1 takes %u channels, not a multiple of the meta queries' width %u"), c->in_dim,
                           c->llm_hidden);
  if (msg)
    return fail_shape (error, st, msg);
  /* The config's layer count must be the checkpoint's: more is caught as a missing tensor. */
  g_autofree char *extra = g_strdup_printf ("connector.layers.%u.layer_norm1.weight", c->cfg.n_layers);
  if (dg_safetensors_find (st, extra)) {
    g_autofree char *m2 =
        g_strdup_printf (_ ("it has more encoder layers than config.json's num_hidden_layers (%u)"), c->cfg.n_layers);
    return fail_shape (error, st, m2);
  }
  return TRUE;
}

static gboolean
pick_activation (DgConnector *c, GError **error)
{
  switch (c->cfg.act) {
  case DG_ACT_GELU_TANH: c->act = VKC_UNARY_GELU_TANH; return TRUE;
  case DG_ACT_GELU: c->act = VKC_UNARY_GELU_ERF; return TRUE;
  case DG_ACT_SILU: c->act = VKC_UNARY_SILU; return TRUE;
  }
  g_set_error (error, DG_ERROR, DG_ERROR_UNSUPPORTED, _ ("connector/config.json: unsupported hidden_act"));
  return FALSE;
}

/* The sizes of the layout (connector_layout.h): the config and what read_sizes found. */
static DgConnectorShape
shape_of (const DgConnector *c)
{
  return (DgConnectorShape) { .cfg = c->cfg,
                              .n_queries = c->n_queries,
                              .llm_hidden = c->llm_hidden,
                              .in_dim = c->in_dim,
                              .pooled_dim = c->pooled_dim,
                              .seq_dim = c->seq_dim };
}

/* Uploads one tensor of the layout; the meta queries are also kept on the host. */
static gboolean
load_tensor (const DgLayoutTensor *t, gpointer data, GError **error)
{
  DgConnector *c = data;
  DgWeights *w = c->weights;
  if (t->slot == CONN_META) {
    c->meta_host = dg_weights_host (w, 2, t->shape, error, "%s", t->name);
    return c->meta_host && dg_weights_upload_f32 (w, &c->meta, VKC_F32, 2, t->shape, c->meta_host, error);
  }
  Layer *l = t->layer >= 0 ? &c->layers[t->layer] : NULL;
  Param *p = NULL;
  switch ((DgConnectorSlot) t->slot) {
  case CONN_META: g_assert_not_reached ();
  case CONN_P1: p = &c->p1; break;
  case CONN_P2: p = &c->p2; break;
  case CONN_P3: p = &c->p3; break;
  case CONN_LN1: p = &l->ln1; break;
  case CONN_Q: p = &l->q; break;
  case CONN_K: p = &l->k; break;
  case CONN_V: p = &l->v; break;
  case CONN_OUT: p = &l->out; break;
  case CONN_LN2: p = &l->ln2; break;
  case CONN_FC1: p = &l->fc1; break;
  case CONN_FC2: p = &l->fc2; break;
  }
  VkcTensor *dst = t->sub ? &p->b : &p->w;
  if (t->kind == DG_LAYOUT_LINEAR)
    return dg_weights_linear (w, dst, t->shape[0], t->shape[1], error, "%s", t->name);
  return dg_weights_vector (w, dst, t->shape[0], error, "%s", t->name);
}

DgConnector *
dg_connector_load (VkcDevice *dev, const char *dir, DgPrecision precision, DgWeightFormat weights, GError **error)
{
  g_return_val_if_fail (dev && dir, NULL);
  g_autoptr (DgConnector) c = g_new0 (DgConnector, 1);
  c->dev = dev;
  c->precision = precision;
  if (!dg_connector_config_load (dir, &c->cfg, error) || !pick_activation (c, error))
    return NULL;
  g_autoptr (DgSafetensors) st = dg_safetensors_open (dir, error);
  if (!st || !read_sizes (c, st, error))
    return NULL;
  c->weights = dg_weights_new (dev, st, precision, "connector");
  dg_weights_set_linear_format (c->weights, weights, DG_COMPONENT_CONNECTOR);
  /* The pool sized to the weights (plan.h), from the sizes the checkpoint fixes. */
  DgPlanModel shape = { .connector = c->cfg, .n_queries = c->n_queries, .n_selected = c->in_dim / c->llm_hidden };
  shape.vlm.text.hidden = c->llm_hidden;
  shape.dit.pooled_projection_dim = c->pooled_dim;
  shape.dit.joint_attention_dim = c->seq_dim;
  dg_weights_expect (c->weights, dg_plan_weight_pool_bytes (&shape, DG_COMPONENT_CONNECTOR, precision, weights));
  c->layers = g_new0 (Layer, c->cfg.n_layers);
  const DgConnectorShape shape_ = shape_of (c);
  gboolean ok = dg_connector_layout_weights (&shape_, load_tensor, c, error);
  c->weights->st = NULL; /* borrowed from st, which closes here */
  return ok ? g_steal_pointer (&c) : NULL;
}

void
dg_connector_free (DgConnector *conn)
{
  if (!conn)
    return;
  dg_weights_free (conn->weights);
  g_free (conn->layers);
  g_free (conn->meta_host);
  g_free (conn);
}

const DgConnectorConfig *
dg_connector_config (const DgConnector *conn)
{
  return &conn->cfg;
}
guint
dg_connector_n_queries (const DgConnector *conn)
{
  return conn->n_queries;
}
guint
dg_connector_llm_hidden (const DgConnector *conn)
{
  return conn->llm_hidden;
}
guint
dg_connector_in_dim (const DgConnector *conn)
{
  return conn->in_dim;
}
guint
dg_connector_pooled_dim (const DgConnector *conn)
{
  return conn->pooled_dim;
}
guint
dg_connector_seq_dim (const DgConnector *conn)
{
  return conn->seq_dim;
}
guint64
dg_connector_weight_bytes (const DgConnector *conn)
{
  return conn->weights->uploaded_bytes;
}
const float *
dg_connector_meta_queries_host (const DgConnector *conn)
{
  return conn->meta_host;
}
const VkcTensor *
dg_connector_meta_queries (const DgConnector *conn)
{
  return &conn->meta;
}

float *
dg_connector_read_meta_queries (const char *dir, DgPrecision precision, guint *n_queries, guint *width, GError **error)
{
  g_return_val_if_fail (dir && n_queries && width, NULL);
  g_autoptr (DgSafetensors) st = dg_safetensors_open (dir, error);
  guint rows, cols;
  if (!st || !shape2 (st, "meta_queries", &rows, &cols, error))
    return NULL;
  /* As dg_weights_host does it for the loader: widened to f32, then rounded in bf16 mode. */
  const gsize n = (gsize) rows * cols;
  g_autofree float *q = g_try_new (float, MAX (n, 1));
  if (!q) {
    g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("out of memory reading '%s'"), "meta_queries");
    return NULL;
  }
  if (!dg_tensor_to_f32 (dg_safetensors_find (st, "meta_queries"), q, error))
    return NULL;
  if (precision == DG_PRECISION_BF16)
    for (gsize i = 0; i < n; i++) q[i] = vkc_round_bf16 (q[i]);
  *n_queries = rows;
  *width = cols;
  return g_steal_pointer (&q);
}

void
dg_connector_set_tap (DgConnector *conn, DgTapFunc func, gpointer user_data)
{
  conn->tap = func;
  conn->tap_data = user_data;
}

/* ---- forward ------------------------------------------------------------------------------- */

/* Buffers of one layer, reused by every layer (the automatic barriers order the reuse). */
typedef struct {
  DgConnector *conn;
  VkcCmd *cmd;
  DgArena *arena;
  gboolean bf16;
  VkcTensor h, qkv, o, f, tmp; /* [R, S, hidden], [R, S, 3·hidden], ..., [R, S, intermediate] */
} Ctx;

/* Rounds a contiguous tensor to bf16 in place (vkc_op_round_bf16 splits what exceeds a binding). */
static void
round_bf16 (Ctx *c, const VkcTensor *t)
{
  if (!c->bf16)
    return;
  vkc_op_round_bf16 (c->cmd, t, t);
}

static void
tap (Ctx *c, const char *name, const VkcTensor *t)
{
  if (c->conn->tap)
    c->conn->tap (c->cmd, name, t, c->conn->tap_data);
}

/* y = linear(x), rounded like a bf16 nn.Linear (fp32 accumulation, one rounding). */
static void
linear (Ctx *c, const VkcTensor *y, const VkcTensor *x, const Param *p)
{
  vkc_op_linear (c->cmd, y, x, &p->w, &p->b);
  round_bf16 (c, y);
}

/* x = x + linear(in): in bf16 the projection and the sum are each rounded (two bf16 ops);
 * in f32 the linear accumulates into x directly. */
static void
residual (Ctx *c, const VkcTensor *x, const VkcTensor *in, const Param *p)
{
  if (!c->bf16) {
    VkcLinearOptions opt = VKC_LINEAR_OPTIONS_DEFAULT;
    opt.accumulate = true;
    vkc_op_linear_ex (c->cmd, x, in, &p->w, &p->b, &opt);
    return;
  }
  linear (c, &c->tmp, in, p);
  vkc_op_binary (c->cmd, x, x, &c->tmp, VKC_BINARY_ADD);
  round_bf16 (c, x);
}

static void
layer_norm (Ctx *c, const VkcTensor *y, const VkcTensor *x, const Param *p)
{
  vkc_op_layer_norm (c->cmd, y, x, &p->w, &p->b, (float) c->conn->cfg.eps, c->bf16 ? VKC_NORM_ROUND_BF16 : 0);
}

/* x += out_proj(softmax(q kᵀ/√d) v), full bidirectional attention over all S tokens of a row,
 * no mask, no positions (MODEL.md §4). */
static void
attention_block (Ctx *c, const Layer *l, const VkcTensor *x)
{
  const DgConnectorConfig *cfg = &c->conn->cfg;
  int64_t D = cfg->hidden;
  layer_norm (c, &c->h, x, &l->ln1);
  VkcTensor q = vkc_tensor_narrow (&c->qkv, 2, 0, D), k = vkc_tensor_narrow (&c->qkv, 2, D, D);
  VkcTensor v = vkc_tensor_narrow (&c->qkv, 2, 2 * D, D);
  vkc_op_linear (c->cmd, &q, &c->h, &l->q.w, &l->q.b);
  vkc_op_linear (c->cmd, &k, &c->h, &l->k.w, &l->k.b);
  vkc_op_linear (c->cmd, &v, &c->h, &l->v.w, &l->v.b);
  round_bf16 (c, &c->qkv);
  VkcAttnParams ap = { (int) cfg->n_heads,
                       (int) cfg->n_heads,
                       (int) cfg->head_dim,
                       (float) (1.0 / sqrt ((double) cfg->head_dim)),
                       false,
                       NULL,
                       false,
                       NULL };
  vkc_op_attention (c->cmd, &c->o, &q, &k, &v, &ap);
  round_bf16 (c, &c->o);
  residual (c, x, &c->o, &l->out);
}

/* x += fc2(act(fc1(LN2(x)))) */
static void
mlp_block (Ctx *c, const Layer *l, const VkcTensor *x)
{
  layer_norm (c, &c->h, x, &l->ln2);
  linear (c, &c->f, &c->h, &l->fc1);
  vkc_op_unary (c->cmd, &c->f, &c->f, c->conn->act);
  round_bf16 (c, &c->f);
  residual (c, x, &c->f, &l->fc2);
}

/* Allocates the per-layer buffers for x's rows and tokens; FALSE when the arena failed. */
/* An f32 activation of the layout's shape from the arena. */
static void
take (DgArena *arena, VkcTensor *out, const DgLayoutAct *a)
{
  dg_arena_tensor (arena, out, VKC_F32, (int) a->ndim, a->shape);
}

static gboolean
ctx_init (Ctx *c, DgConnector *conn, VkcCmd *cmd, DgArena *arena, int64_t R, int64_t S)
{
  memset (c, 0, sizeof *c);
  c->conn = conn;
  c->cmd = cmd;
  c->arena = arena;
  c->bf16 = conn->precision == DG_PRECISION_BF16;
  const DgConnectorShape shape = shape_of (conn);
  DgLayoutAct a[CONN_N_ACTS];
  dg_connector_layout_acts (&shape, R, S, c->bf16, a);
  take (arena, &c->h, &a[CONN_ACT_H]);
  take (arena, &c->qkv, &a[CONN_ACT_QKV]);
  take (arena, &c->o, &a[CONN_ACT_O]);
  take (arena, &c->f, &a[CONN_ACT_F]);
  if (c->bf16)
    take (arena, &c->tmp, &a[CONN_ACT_TMP]);
  return !dg_arena_failed (arena);
}

void
dg_connector_forward_layer (DgConnector *conn, VkcCmd *cmd, DgArena *arena, guint layer, const VkcTensor *x,
                            VkcTensor *y)
{
  g_assert (layer < conn->cfg.n_layers && x->ndim == 3 && x->shape[2] == conn->cfg.hidden);
  Ctx c;
  if (!DG_ACT (arena, y, x->shape[0], x->shape[1], x->shape[2]) ||
      !ctx_init (&c, conn, cmd, arena, x->shape[0], x->shape[1]))
    return;
  vkc_op_copy (cmd, y, x);
  attention_block (&c, &conn->layers[layer], y);
  mlp_block (&c, &conn->layers[layer], y);
}

void
dg_connector_forward (DgConnector *conn, VkcCmd *cmd, DgArena *arena, const VkcTensor *merged, VkcTensor *pooled,
                      VkcTensor *seq)
{
  g_assert (merged->ndim == 3 && merged->shape[2] == conn->in_dim);
  const int64_t R = merged->shape[0], S = merged->shape[1];
  const DgConnectorShape shape = shape_of (conn);
  DgLayoutAct a[CONN_N_ACTS];
  dg_connector_layout_acts (&shape, R, S, conn->precision == DG_PRECISION_BF16, a);
  VkcTensor x, mean;
  Ctx c;
  take (arena, &x, &a[CONN_ACT_X]);
  take (arena, &mean, &a[CONN_ACT_MEAN]);
  take (arena, pooled, &a[CONN_ACT_POOLED]);
  take (arena, seq, &a[CONN_ACT_SEQ]);
  if (dg_arena_failed (arena) || !ctx_init (&c, conn, cmd, arena, R, S))
    return;
  linear (&c, &x, merged, &conn->p1);
  tap (&c, "p1", &x);
  for (guint i = 0; i < conn->cfg.n_layers; i++) {
    attention_block (&c, &conn->layers[i], &x);
    mlp_block (&c, &conn->layers[i], &x);
    char name[32];
    g_snprintf (name, sizeof name, "layer%u", i);
    tap (&c, name, &x);
  }
  /* No final LayerNorm (MODEL.md §4). The mean covers every token, pads included (§1.8). */
  vkc_op_mean_tokens (cmd, &mean, &x);
  round_bf16 (&c, &mean);
  tap (&c, "mean", &mean);
  linear (&c, pooled, &mean, &conn->p2);
  linear (&c, seq, &x, &conn->p3);
}
