#include "vkc_ops_eltwise.h"
#include "vkc_ops_common.h"
#include <string.h>

/* Shader OP numbers: the order of _eltwise_ops in shaders/eltwise.cmake, the first index of
 * vkc_shaders_eltwise. */
enum {
  OP_COPY,
  OP_SILU,
  OP_GELU_ERF,
  OP_GELU_TANH,
  OP_ERF,
  OP_SCALE,
  OP_ADD,
  OP_MUL,
  OP_SWIGLU,
  OP_MODULATE,
  OP_GATED_ADD,
};

static VkDeviceSize binding_limit_override;

void
vkc_eltwise_set_binding_limit (VkDeviceSize bytes)
{
  binding_limit_override = bytes;
}

VkDeviceSize
vkc_eltwise_usable_range (VkcDevice *dev)
{
  const VkcDeviceInfo *info = vkc_device_info (dev);
  VkDeviceSize lim = info->max_storage_buffer_range;
  if (binding_limit_override && binding_limit_override < lim)
    lim = binding_limit_override;
  /* vkc_tensor_binding starts the range up to one alignment early and rounds it to words. */
  VkDeviceSize slack = info->min_storage_offset_alignment + 4;
  return lim > slack ? lim - slack : 0;
}

/* ---------------------------------------------------------------------------------------
 * Row plans
 * ------------------------------------------------------------------------------------- */

/* Stride of operand `t` along output dim `d` (of `nd` dims), 0 where t is broadcast. */
static int64_t
operand_stride (const VkcTensor *t, const VkcTensor *out, int d)
{
  int nd = out->ndim;
  int k; /* t's dim that corresponds to output dim d, or -1 */
  if (t->ndim == nd)
    k = d;
  else if (d < t->ndim - 1)
    k = d; /* leading dims match from the left */
  else
    k = -1; /* missing dims before the last: broadcast */
  if (k < 0)
    return 0;
  if (t->shape[k] == out->shape[d])
    return out->shape[d] == 1 ? 0 : t->stride[k];
  if (t->shape[k] == 1)
    return 0;
  g_error ("vkc eltwise: operand %s does not broadcast to %s", vkc_tensor_shape_str (t), vkc_tensor_shape_str (out));
  return 0;
}

void
vkc_row_plan_init (VkcRowPlan *plan, int n_ops, const VkcTensor *const *ops, bool keep_dim0)
{
  g_assert (n_ops >= 1 && n_ops <= VKC_ROW_MAX_OPS);
  memset (plan, 0, sizeof *plan);
  plan->n_ops = n_ops;
  const VkcTensor *out = ops[0];
  int nd = out->ndim;
  g_assert (nd >= 1 && nd <= VKC_MAX_DIMS);
  plan->cols = out->shape[nd - 1];
  for (int k = 0; k < n_ops; k++) {
    const VkcTensor *t = ops[k];
    plan->t[k] = *t;
    g_assert (t->ndim >= 1 && t->ndim <= nd);
    g_assert_cmpint (t->shape[t->ndim - 1], ==, plan->cols);
    g_assert (t->stride[t->ndim - 1] == 1 || plan->cols <= 1);
  }

  /* Leading dims: sizes and per-operand strides. */
  int64_t n[VKC_MAX_DIMS], s[VKC_ROW_MAX_OPS][VKC_MAX_DIMS];
  int m = 0, first = 0;
  for (int d = 0; d < nd - 1; d++) {
    bool keep = keep_dim0 && d == 0;
    if (out->shape[d] == 1 && !keep)
      continue;
    n[m] = out->shape[d];
    for (int k = 0; k < n_ops; k++) {
      s[k][m] = operand_stride (ops[k], out, d);
      g_assert_cmpint (s[k][m], >=, 0);
    }
    m++;
    if (keep)
      first = 1;
  }
  /* Merge dim j into j+1 wherever every operand is contiguous across them. */
  for (int j = m - 2; j >= first; j--) {
    bool ok = true;
    for (int k = 0; k < n_ops; k++) ok = ok && s[k][j] == n[j + 1] * s[k][j + 1];
    if (!ok)
      continue;
    n[j + 1] *= n[j];
    for (int i = j; i < m - 1; i++) {
      n[i] = n[i + 1];
      for (int k = 0; k < n_ops; k++) s[k][i] = s[k][i + 1];
    }
    m--;
  }
  g_assert (m <= 3);
  g_assert (!keep_dim0 || m >= 1);
  /* Pad to three levels: after dim 0 when it is kept, else in front. */
  int pad = 3 - m, at = keep_dim0 ? 1 : 0;
  for (int l = 0, j = 0; l < 3; l++) {
    bool padded = l >= at && l < at + pad;
    plan->n[l] = padded ? 1 : n[j];
    for (int k = 0; k < n_ops; k++) plan->stride[k][l] = padded ? 0 : s[k][j];
    if (!padded)
      j++;
  }
  /* The output must not write one element from two rows. */
  for (int l = 0; l < 3; l++) g_assert (plan->n[l] == 1 || plan->stride[0][l] > 0);
}

/* Largest count along `level` (other levels at sizes k) whose span fits in `usable` bytes
 * for every operand; 0 when not even one fits. */
static int64_t
max_count (const VkcRowPlan *plan, int level, const int64_t k[3], VkDeviceSize usable)
{
  int64_t best = plan->n[level];
  for (int o = 0; o < plan->n_ops; o++) {
    int64_t budget = (int64_t) (usable / vkc_dtype_size (plan->t[o].dtype)) - plan->cols;
    for (int l = 0; l < 3; l++)
      if (l != level)
        budget -= (k[l] - 1) * plan->stride[o][l];
    if (budget < 0)
      return 0;
    if (plan->stride[o][level] > 0)
      best = MIN (best, budget / plan->stride[o][level] + 1);
  }
  return best;
}

static void
emit_piece (const VkcRowPlan *plan, const int64_t start[3], const int64_t cnt[3], VkcRowPieceFunc func, void *user)
{
  VkcRowPiece piece;
  memset (&piece, 0, sizeof piece);
  for (int l = 0; l < 3; l++) {
    piece.start[l] = start[l];
    piece.n[l] = cnt[l];
  }
  for (int o = 0; o < plan->n_ops; o++) {
    const VkcTensor *t = &plan->t[o];
    VkcTensor v = *t;
    memset (&v.alloc, 0, sizeof v.alloc);
    int64_t off = 0;
    for (int l = 0; l < 3; l++) off += start[l] * plan->stride[o][l];
    v.offset += (VkDeviceSize) off * vkc_dtype_size (t->dtype);
    v.ndim = 4;
    for (int l = 0; l < 3; l++) {
      v.shape[l] = cnt[l];
      v.stride[l] = cnt[l] > 1 ? plan->stride[o][l] : 0;
    }
    v.shape[3] = plan->cols;
    v.stride[3] = 1;
    piece.view[o] = v;
  }
  func (plan, &piece, user);
}

void
vkc_row_plan_split (VkcDevice *dev, const VkcRowPlan *plan, VkcRowPieceFunc func, void *user)
{
  const int64_t *n = plan->n;
  if (n[0] * n[1] * n[2] == 0 || plan->cols == 0)
    return;
  VkDeviceSize usable = vkc_eltwise_usable_range (dev);
  int64_t k[3] = { n[0], n[1], n[2] };
  int64_t zero[3] = { 0, 0, 0 };
  if (max_count (plan, 0, k, usable) >= n[0]) {
    emit_piece (plan, zero, n, func, user);
    return;
  }
  /* Whole level-0 blocks if one fits, else level-1 blocks of one level-0 index, else runs
   * of rows within one (i0, i1). */
  int64_t k0 = max_count (plan, 0, k, usable);
  if (k0 > 0) {
    for (int64_t i0 = 0; i0 < n[0]; i0 += k0) {
      int64_t st[3] = { i0, 0, 0 }, c[3] = { MIN (k0, n[0] - i0), n[1], n[2] };
      emit_piece (plan, st, c, func, user);
    }
    return;
  }
  k[0] = 1;
  int64_t k1 = max_count (plan, 1, k, usable);
  if (k1 > 0) {
    for (int64_t i0 = 0; i0 < n[0]; i0++)
      for (int64_t i1 = 0; i1 < n[1]; i1 += k1) {
        int64_t st[3] = { i0, i1, 0 }, c[3] = { 1, MIN (k1, n[1] - i1), n[2] };
        emit_piece (plan, st, c, func, user);
      }
    return;
  }
  k[1] = 1;
  int64_t k2 = max_count (plan, 2, k, usable);
  if (k2 <= 0)
    g_error ("vkc: one row of %" G_GINT64_FORMAT " elements exceeds the storage buffer range", plan->cols);
  for (int64_t i0 = 0; i0 < n[0]; i0++)
    for (int64_t i1 = 0; i1 < n[1]; i1++)
      for (int64_t i2 = 0; i2 < n[2]; i2 += k2) {
        int64_t st[3] = { i0, i1, i2 }, c[3] = { 1, 1, MIN (k2, n[2] - i2) };
        emit_piece (plan, st, c, func, user);
      }
}

/* ---------------------------------------------------------------------------------------
 * Element-wise dispatch
 * ------------------------------------------------------------------------------------- */

typedef struct {
  uint32_t total, cols, rows, n1, n2;
  float alpha;
  uint32_t pad0, pad1;
  uint32_t off[4], s0[4], s1[4], s2[4];
} EltwisePush;

typedef struct {
  VkcCmd *cmd;
  int op;
  float alpha;
} EltwiseJob;

static void
eltwise_piece (const VkcRowPlan *plan, const VkcRowPiece *piece, void *user)
{
  const EltwiseJob *job = user;
  VkcCmd *cmd = job->cmd;
  VkcDevice *dev = vkc_cmd_device (cmd);
  int n_ops = plan->n_ops;
  EltwisePush pc;
  memset (&pc, 0, sizeof pc);
  VkcBinding b[VKC_ROW_MAX_OPS];
  int64_t cnt[3] = { piece->n[0], piece->n[1], piece->n[2] };
  int64_t cols = plan->cols;
  int64_t st[VKC_ROW_MAX_OPS][3];
  for (int o = 0; o < n_ops; o++) {
    b[o] = vkc_tensor_binding (dev, &piece->view[o], o == 0, &pc.off[o]);
    for (int l = 0; l < 3; l++) st[o][l] = piece->view[o].stride[l];
  }
  /* Rows that follow each other in memory in every operand become one long row. */
  bool fold = cnt[2] > 1;
  for (int o = 0; o < n_ops; o++) fold = fold && st[o][2] == cols;
  if (fold) {
    cols *= cnt[2];
    cnt[2] = 1;
    for (int o = 0; o < n_ops; o++) st[o][2] = 0;
  }
  /* vec4 when the width, every offset and every stride are multiples of 4. */
  int vec = cols % 4 == 0 ? 4 : 1;
  for (int o = 0; o < n_ops && vec == 4; o++) {
    if (pc.off[o] % 4)
      vec = 1;
    for (int l = 0; l < 3; l++)
      if (st[o][l] % 4)
        vec = 1;
  }
  int64_t rows = cnt[0] * cnt[1] * cnt[2];
  uint64_t total = (uint64_t) rows * (uint64_t) (cols / vec);
  g_assert (total <= UINT32_MAX);
  pc.total = (uint32_t) total;
  pc.cols = (uint32_t) (cols / vec);
  pc.rows = (uint32_t) rows;
  pc.n1 = (uint32_t) cnt[1];
  pc.n2 = (uint32_t) cnt[2];
  pc.alpha = job->alpha;
  for (int o = 0; o < n_ops; o++) {
    pc.off[o] /= vec;
    pc.s0[o] = (uint32_t) (st[o][0] / vec);
    pc.s1[o] = (uint32_t) (st[o][1] / vec);
    pc.s2[o] = (uint32_t) (st[o][2] / vec);
  }
  VkcPipeline *p = vkc_pipeline_get (dev, vkc_shaders_eltwise[job->op][vec == 4], NULL, 0, (guint) n_ops);
  uint32_t gx, gy;
  vkc_grid_1d (total, 256, &gx, &gy);
  vkc_cmd_dispatch (cmd, p, b, (guint) n_ops, &pc, sizeof pc, gx, gy, 1);
}

/* An input that shares memory with the output must be the very same view (in-place). */
static void
check_alias (const VkcRowPlan *plan)
{
  const VkcTensor *y = &plan->t[0];
  VkDeviceSize y0 = y->offset, y1 = y->offset + vkc_tensor_span_bytes (y);
  for (int o = 1; o < plan->n_ops; o++) {
    const VkcTensor *t = &plan->t[o];
    if (t->buffer != y->buffer)
      continue;
    VkDeviceSize t0 = t->offset, t1 = t->offset + vkc_tensor_span_bytes (t);
    if (t1 <= y0 || y1 <= t0)
      continue;
    bool same = t->offset == y->offset;
    for (int l = 0; l < 3; l++) same = same && plan->stride[o][l] == plan->stride[0][l];
    if (!same)
      g_error ("vkc eltwise: input %d overlaps the output without being the same view", o);
  }
}

static void
eltwise (VkcCmd *cmd, int op, float alpha, int n_ops, const VkcTensor *const *ops)
{
  for (int o = 0; o < n_ops; o++) g_assert (ops[o]->dtype == VKC_F32);
  VkcRowPlan plan;
  vkc_row_plan_init (&plan, n_ops, ops, false);
  check_alias (&plan);
  EltwiseJob job = { cmd, op, alpha };
  vkc_row_plan_split (vkc_cmd_device (cmd), &plan, eltwise_piece, &job);
}

void
vkc_op_unary (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, VkcUnaryOp op)
{
  static const int ops[] = { OP_COPY, OP_SILU, OP_GELU_ERF, OP_GELU_TANH, OP_ERF };
  g_assert ((unsigned) op < G_N_ELEMENTS (ops));
  VKC_CHECK_SAME_SHAPE (y, x);
  const VkcTensor *t[] = { y, x };
  eltwise (cmd, ops[op], 0.0f, 2, t);
}

void
vkc_op_copy (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x)
{
  vkc_op_unary (cmd, y, x, VKC_UNARY_COPY);
}

void
vkc_op_scale (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, float alpha)
{
  VKC_CHECK_SAME_SHAPE (y, x);
  const VkcTensor *t[] = { y, x };
  eltwise (cmd, OP_SCALE, alpha, 2, t);
}

void
vkc_op_binary (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *a, const VkcTensor *b, VkcBinaryOp op)
{
  static const int ops[] = { OP_ADD, OP_MUL, OP_SWIGLU };
  g_assert ((unsigned) op < G_N_ELEMENTS (ops));
  VKC_CHECK_SAME_SHAPE (y, a);
  const VkcTensor *t[] = { y, a, b };
  eltwise (cmd, ops[op], 0.0f, 3, t);
}

void
vkc_op_modulate (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *scale, const VkcTensor *shift)
{
  VKC_CHECK_SAME_SHAPE (y, x);
  const VkcTensor *t[] = { y, x, scale, shift };
  eltwise (cmd, OP_MODULATE, 0.0f, 4, t);
}

void
vkc_op_gated_add (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *gate, const VkcTensor *v)
{
  VKC_CHECK_SAME_SHAPE (y, x);
  VKC_CHECK_SAME_SHAPE (y, v);
  const VkcTensor *t[] = { y, x, gate, v };
  eltwise (cmd, OP_GATED_ADD, 0.0f, 4, t);
}

/* ---------------------------------------------------------------------------------------
 * Mean over tokens
 * ------------------------------------------------------------------------------------- */

typedef struct {
  uint32_t cols, n, x_off, x_sb, x_sn, y_off, y_sb, accumulate;
  float inv_total;
} MeanPush;

/* Batches [b0, b0 + nb), tokens [n0, n0 + nn) of x [B, N, C] into y [B, C]. */
static void
mean_piece (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, int64_t b0, int64_t nb, int64_t n0, int64_t nn,
            float inv_total)
{
  VkcDevice *dev = vkc_cmd_device (cmd);
  int64_t C = x->shape[2];
  int64_t xs[3] = { nb > 1 ? x->stride[0] : 0, nn > 1 ? x->stride[1] : 0, 1 };
  int64_t xsh[3] = { nb, nn, C };
  VkcTensor xv = vkc_tensor_view (x, 3, xsh, xs, b0 * x->stride[0] + n0 * x->stride[1]);
  int64_t ys[2] = { nb > 1 ? y->stride[0] : 0, 1 };
  int64_t ysh[2] = { nb, C };
  VkcTensor yv = vkc_tensor_view (y, 2, ysh, ys, b0 * y->stride[0]);
  MeanPush pc = { (uint32_t) C,     (uint32_t) nn, 0,        (uint32_t) xs[0], (uint32_t) xs[1], 0,
                  (uint32_t) ys[0], n0 > 0,        inv_total };
  VkcBinding b[2] = {
    vkc_tensor_binding (dev, &yv, true, &pc.y_off),
    vkc_tensor_binding (dev, &xv, false, &pc.x_off),
  };
  g_assert (nb <= 65535);
  VkcPipeline *p = vkc_pipeline_get (dev, VKC_SHADER_ELTWISE_MEAN_TOKENS, NULL, 0, 2);
  vkc_cmd_dispatch (cmd, p, b, 2, &pc, sizeof pc, vkc_div_up ((uint64_t) C, 32), (uint32_t) nb, 1);
}

void
vkc_op_mean_tokens (VkcCmd *cmd, const VkcTensor *y_in, const VkcTensor *x_in)
{
  g_assert (x_in->dtype == VKC_F32 && y_in->dtype == VKC_F32);
  g_assert (x_in->ndim == 2 || x_in->ndim == 3);
  g_assert_cmpint (y_in->ndim, ==, x_in->ndim - 1);
  VkcTensor x = *x_in, y = *y_in;
  if (x.ndim == 2) {
    int64_t sh[3] = { 1, x.shape[0], x.shape[1] }, st[3] = { 0, x.stride[0], x.stride[1] };
    x = vkc_tensor_view (x_in, 3, sh, st, 0);
    int64_t ysh[2] = { 1, y.shape[0] }, yst[2] = { 0, y.stride[0] };
    y = vkc_tensor_view (y_in, 2, ysh, yst, 0);
  }
  int64_t B = x.shape[0], N = x.shape[1], C = x.shape[2];
  g_assert_cmpint (y.shape[0], ==, B);
  g_assert_cmpint (y.shape[1], ==, C);
  g_assert (x.stride[2] == 1 || C <= 1);
  g_assert (y.stride[1] == 1 || C <= 1);
  if (B == 0 || C == 0)
    return;
  g_assert (N > 0);
  float inv = (float) (1.0 / (double) N);
  VkDeviceSize usable = vkc_eltwise_usable_range (vkc_cmd_device (cmd)) / sizeof (float);
  g_assert ((VkDeviceSize) C <= usable);
  /* Batches per piece (whole token ranges), else token runs of one batch row. */
  int64_t per_b = (N - 1) * x.stride[1] + C;
  int64_t kb = x.stride[0] > 0 ? 1 + ((int64_t) usable - per_b) / x.stride[0] : B;
  if ((VkDeviceSize) per_b <= usable) {
    kb = MIN (MAX (kb, 1), MIN (B, 65535));
    for (int64_t b0 = 0; b0 < B; b0 += kb) mean_piece (cmd, &y, &x, b0, MIN (kb, B - b0), 0, N, inv);
    return;
  }
  int64_t kn = 1 + ((int64_t) usable - C) / MAX (x.stride[1], 1);
  for (int64_t b0 = 0; b0 < B; b0++)
    for (int64_t n0 = 0; n0 < N; n0 += kn) mean_piece (cmd, &y, &x, b0, 1, n0, MIN (kn, N - n0), inv);
}
