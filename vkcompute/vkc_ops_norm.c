#include "vkc_ops_norm.h"
#include "vkc_ops_common.h"
#include "vkc_ops_eltwise.h"
#include <string.h>

/* Flag bits of shaders/norm_common.glsl. */
enum {
  NF_HAS_W = 1,
  NF_HAS_B = 2,
  NF_ROUND_NORMED = 4,
  NF_ROUND_OUT = 8,
  NF_SILU = 16,
};

/* Pixels per workgroup of the GroupNorm statistics pass: enough values per workgroup
 * (~32 K) to amortise its merge, and never more than 65535 workgroups per image. */
#define GN_VALUES_PER_GROUP 32768

static void
check_param (const VkcTensor *p, int64_t n)
{
  if (!p)
    return;
  g_assert (p->dtype == VKC_F32 || p->dtype == VKC_F16 || p->dtype == VKC_BF16);
  g_assert (p->ndim == 1 && p->shape[0] == n && (p->stride[0] == 1 || n == 1));
}

static VkcDType
param_dtype (const VkcTensor *w, const VkcTensor *b)
{
  if (w && b)
    g_assert (w->dtype == b->dtype);
  return w ? w->dtype : b ? b->dtype : VKC_F32;
}

static bool
env_flag (const char *name)
{
  const char *v = g_getenv (name);
  return v && *v && strcmp (v, "0") != 0;
}

/* The subgroup reduction of norm_row.comp keeps one shared slot per subgroup, 64 slots for
 * up to 256 threads: it needs subgroups of at least 4 lanes (whatever size the driver picks
 * within min..max), else the shared-memory variant runs. */
static VkcNormReduction
row_reduction (VkcDevice *dev, const VkcNormOptions *opt)
{
  const VkcDeviceInfo *info = vkc_device_info (dev);
  uint32_t min_sg = info->min_subgroup_size ? info->min_subgroup_size : info->subgroup_size;
  bool sg =
      info->subgroup_arith && min_sg >= 4 && !(opt && opt->no_subgroup) && !env_flag ("DEEPGEN_VK_DISABLE_SUBGROUP");
  return sg ? VKC_NORM_REDUCE_SUBGROUP : VKC_NORM_REDUCE_SHARED;
}

/* Bind weight/bias, or a placeholder (another read-only binding of the op) when absent. */
static VkcBinding
param_binding (VkcDevice *dev, const VkcTensor *p, const VkcTensor *placeholder, uint32_t *off)
{
  if (p)
    return vkc_tensor_binding (dev, p, false, off);
  *off = 0;
  return vkc_tensor_binding (dev, placeholder, false, NULL);
}

static bool
all_multiple_of_4 (const uint32_t *v, int n)
{
  for (int i = 0; i < n; i++)
    if (v[i] % 4)
      return false;
  return true;
}

/* ---------------------------------------------------------------------------------------
 * LayerNorm / RMSNorm, one workgroup per row
 * ------------------------------------------------------------------------------------- */

typedef struct {
  uint32_t rows, cols, n1, n2;
  uint32_t y_off, y_s0, y_s1, y_s2;
  uint32_t x_off, x_s0, x_s1, x_s2;
  uint32_t w_off, b_off, flags;
  float eps, inv_n;
} RowNormPush;

/* The shader's NORM numbers (shaders/norm.cmake), the first index of vkc_shaders_norm_row. */
typedef enum { ROW_NORM_LAYER = 0, ROW_NORM_RMS = 1 } RowNormKind;

typedef struct {
  VkcCmd *cmd;
  RowNormKind kind;
  const VkcTensor *w, *b;
  uint32_t flags;
  float eps;
  VkcNormReduction reduction;
} RowNormJob;

static void
row_norm_piece (const VkcRowPlan *plan, const VkcRowPiece *piece, void *user)
{
  const RowNormJob *job = user;
  VkcCmd *cmd = job->cmd;
  VkcDevice *dev = vkc_cmd_device (cmd);
  const VkcTensor *y = &piece->view[0], *x = &piece->view[1];
  RowNormPush pc;
  memset (&pc, 0, sizeof pc);
  VkcBinding b[4] = {
    vkc_tensor_binding (dev, y, true, &pc.y_off),
    vkc_tensor_binding (dev, x, false, &pc.x_off),
    param_binding (dev, job->w, x, &pc.w_off),
    param_binding (dev, job->b, job->w ? job->w : x, &pc.b_off),
  };
  int64_t rows = piece->n[0] * piece->n[1] * piece->n[2];
  g_assert (rows <= UINT32_MAX);
  uint32_t st[6] = { (uint32_t) y->stride[0], (uint32_t) y->stride[1], (uint32_t) y->stride[2],
                     (uint32_t) x->stride[0], (uint32_t) x->stride[1], (uint32_t) x->stride[2] };
  uint32_t offs[4] = { pc.y_off, pc.x_off, pc.w_off, pc.b_off };
  int vec = plan->cols % 4 == 0 && all_multiple_of_4 (st, 6) && all_multiple_of_4 (offs, 4) ? 4 : 1;
  pc.rows = (uint32_t) rows;
  pc.cols = (uint32_t) (plan->cols / vec);
  pc.n1 = (uint32_t) piece->n[1];
  pc.n2 = (uint32_t) piece->n[2];
  pc.y_off /= vec;
  pc.y_s0 = st[0] / vec;
  pc.y_s1 = st[1] / vec;
  pc.y_s2 = st[2] / vec;
  pc.x_off /= vec;
  pc.x_s0 = st[3] / vec;
  pc.x_s1 = st[4] / vec;
  pc.x_s2 = st[5] / vec;
  pc.w_off /= vec;
  pc.b_off /= vec;
  pc.flags = job->flags;
  pc.eps = job->eps;
  pc.inv_n = (float) (1.0 / (double) plan->cols);
  uint32_t wg = pc.cols <= 64 ? 64 : pc.cols <= 128 ? 128 : 256;
  VkcShader shader = vkc_shaders_norm_row[job->kind][job->reduction == VKC_NORM_REDUCE_SUBGROUP]
                                         [param_dtype (job->w, job->b)][vec == 4];
  VkcPipeline *p = vkc_pipeline_get (dev, shader, &wg, 1, 4);
  uint32_t gx, gy;
  vkc_grid_1d ((uint64_t) rows, 1, &gx, &gy);
  vkc_cmd_dispatch (cmd, p, b, 4, &pc, sizeof pc, gx, gy, 1);
}

static VkcNormReduction
row_norm (VkcCmd *cmd, RowNormKind kind, const VkcTensor *y, const VkcTensor *x, const VkcTensor *w,
          const VkcTensor *bias, float eps, uint32_t flags, const VkcNormOptions *opt)
{
  g_assert (x->dtype == VKC_F32 && y->dtype == VKC_F32);
  VKC_CHECK_SAME_SHAPE (y, x);
  int64_t C = x->shape[x->ndim - 1];
  check_param (w, C);
  check_param (bias, C);
  param_dtype (w, bias);
  if (w)
    flags |= NF_HAS_W;
  if (bias)
    flags |= NF_HAS_B;
  const VkcTensor *ops[2] = { y, x };
  VkcRowPlan plan;
  vkc_row_plan_init (&plan, 2, ops, false);
  /* In place only as the identical view: every thread rereads just its own columns. */
  if (y->buffer == x->buffer && y->offset != x->offset) {
    VkDeviceSize y1 = y->offset + vkc_tensor_span_bytes (y), x1 = x->offset + vkc_tensor_span_bytes (x);
    g_assert (y1 <= x->offset || x1 <= y->offset);
  }
  RowNormJob job = { cmd, kind, w, bias, flags, eps, row_reduction (vkc_cmd_device (cmd), opt) };
  vkc_row_plan_split (vkc_cmd_device (cmd), &plan, row_norm_piece, &job);
  return job.reduction;
}

VkcNormReduction
vkc_op_layer_norm_ex (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *weight,
                      const VkcTensor *bias, float eps, VkcNormFlags flags, const VkcNormOptions *opt)
{
  g_assert (!(flags & VKC_NORM_SILU));
  return row_norm (cmd, ROW_NORM_LAYER, y, x, weight, bias, eps, (flags & VKC_NORM_ROUND_BF16) ? NF_ROUND_OUT : 0, opt);
}

void
vkc_op_layer_norm (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *weight, const VkcTensor *bias,
                   float eps, VkcNormFlags flags)
{
  vkc_op_layer_norm_ex (cmd, y, x, weight, bias, eps, flags, NULL);
}

VkcNormReduction
vkc_op_rms_norm_ex (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *weight, float eps,
                    VkcNormFlags flags, const VkcNormOptions *opt)
{
  g_assert (!(flags & VKC_NORM_SILU));
  return row_norm (cmd, ROW_NORM_RMS, y, x, weight, NULL, eps,
                   (flags & VKC_NORM_ROUND_BF16) ? NF_ROUND_NORMED | NF_ROUND_OUT : 0, opt);
}

void
vkc_op_rms_norm (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *weight, float eps,
                 VkcNormFlags flags)
{
  vkc_op_rms_norm_ex (cmd, y, x, weight, eps, flags, NULL);
}

/* [..., H·D] → [..., H, D] with the same memory. */
static VkcTensor
split_heads (const VkcTensor *t, int64_t d)
{
  g_assert (t->ndim >= 1 && t->ndim <= VKC_MAX_DIMS - 1);
  int nd = t->ndim;
  int64_t hd = t->shape[nd - 1];
  g_assert (d > 0 && hd % d == 0);
  g_assert (t->stride[nd - 1] == 1 || hd <= 1);
  int64_t shape[VKC_MAX_DIMS], stride[VKC_MAX_DIMS];
  for (int i = 0; i < nd - 1; i++) {
    shape[i] = t->shape[i];
    stride[i] = t->stride[i];
  }
  shape[nd - 1] = hd / d;
  stride[nd - 1] = d;
  shape[nd] = d;
  stride[nd] = 1;
  return vkc_tensor_view (t, nd + 1, shape, stride, 0);
}

VkcNormReduction
vkc_op_head_rms_norm_ex (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *weight, int64_t head_dim,
                         float eps, VkcNormFlags flags, const VkcNormOptions *opt)
{
  VKC_CHECK_SAME_SHAPE (y, x);
  VkcTensor yh = split_heads (y, head_dim), xh = split_heads (x, head_dim);
  return vkc_op_rms_norm_ex (cmd, &yh, &xh, weight, eps, flags, opt);
}

void
vkc_op_head_rms_norm (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *weight, int64_t head_dim,
                      float eps, VkcNormFlags flags)
{
  vkc_op_head_rms_norm_ex (cmd, y, x, weight, head_dim, eps, flags, NULL);
}

/* ---------------------------------------------------------------------------------------
 * GroupNorm: per-chunk statistics → merged per (image, group) → apply
 * ------------------------------------------------------------------------------------- */

typedef struct {
  uint32_t n1, n2, px, chunk_px, G, cpg;
  uint32_t x_off, x_s0, x_s1, x_s2;
  uint32_t part_off, chunks, chunk_base, img_base;
} GnStatsPush;

typedef struct {
  uint32_t chunks, G, part_off, stats_off;
  float eps;
} GnMergePush;

typedef struct {
  uint32_t total, cols, rows, n1, n2;
  uint32_t y_off, y_s0, y_s1, y_s2;
  uint32_t x_off, x_s0, x_s1, x_s2;
  uint32_t w_off, b_off, flags, cpg, G, img_base, stats_off;
} GnApplyPush;

typedef struct {
  VkcCmd *cmd;
  int64_t G, C, chunk_px;
  int64_t chunks;     /* per image, over all pieces */
  int64_t next_chunk; /* running chunk index within the current image */
  const VkcTensor *w, *b;
  VkcTensor part, stats; /* scratch views */
  uint32_t flags;
} GnJob;

static VkcTensor
nhwc (const VkcTensor *t)
{
  g_assert (t->dtype == VKC_F32);
  if (t->ndim == 4)
    return *t;
  g_assert_cmpint (t->ndim, ==, 3);
  int64_t shape[4] = { 1, t->shape[0], t->shape[1], t->shape[2] };
  int64_t stride[4] = { 0, t->stride[0], t->stride[1], t->stride[2] };
  return vkc_tensor_view (t, 4, shape, stride, 0);
}

static int64_t
gn_chunk_px (int64_t C, int64_t hw)
{
  int64_t p = MAX ((GN_VALUES_PER_GROUP + C - 1) / C, 1);
  return MAX (p, (hw + 65534) / 65535);
}

static void
gn_count_piece (const VkcRowPlan *plan, const VkcRowPiece *piece, void *user)
{
  GnJob *job = user;
  if (piece->start[0] == 0)
    job->chunks += (piece->n[1] * piece->n[2] + job->chunk_px - 1) / job->chunk_px;
}

static void
gn_stats_piece (const VkcRowPlan *plan, const VkcRowPiece *piece, void *user)
{
  GnJob *job = user;
  VkcCmd *cmd = job->cmd;
  VkcDevice *dev = vkc_cmd_device (cmd);
  const VkcTensor *x = &piece->view[1];
  if (piece->start[1] == 0 && piece->start[2] == 0)
    job->next_chunk = 0;
  int64_t px = piece->n[1] * piece->n[2];
  int64_t nchunks = (px + job->chunk_px - 1) / job->chunk_px;
  GnStatsPush pc;
  memset (&pc, 0, sizeof pc);
  VkcBinding b[2] = {
    vkc_tensor_binding (dev, x, false, &pc.x_off),
    vkc_tensor_binding (dev, &job->part, true, &pc.part_off),
  };
  uint32_t xs[4] = { (uint32_t) x->stride[0], (uint32_t) x->stride[1], (uint32_t) x->stride[2], pc.x_off };
  int64_t cpg = job->C / job->G;
  int vec = cpg % 4 == 0 && all_multiple_of_4 (xs, 4) ? 4 : 1;
  pc.n1 = (uint32_t) piece->n[1];
  pc.n2 = (uint32_t) piece->n[2];
  pc.px = (uint32_t) px;
  pc.chunk_px = (uint32_t) job->chunk_px;
  pc.G = (uint32_t) job->G;
  pc.cpg = (uint32_t) (cpg / vec);
  pc.x_off /= vec;
  pc.x_s0 = xs[0] / vec;
  pc.x_s1 = xs[1] / vec;
  pc.x_s2 = xs[2] / vec;
  pc.chunks = (uint32_t) job->chunks;
  pc.chunk_base = (uint32_t) job->next_chunk;
  pc.img_base = (uint32_t) piece->start[0];
  job->next_chunk += nchunks;
  g_assert (nchunks <= 65535 && piece->n[0] <= 65535);
  VkcPipeline *p = vkc_pipeline_get (dev, vkc_shaders_norm_group_stats[vec == 4], NULL, 0, 2);
  vkc_cmd_dispatch (cmd, p, b, 2, &pc, sizeof pc, (uint32_t) nchunks, (uint32_t) piece->n[0], 1);
}

static void
gn_apply_piece (const VkcRowPlan *plan, const VkcRowPiece *piece, void *user)
{
  GnJob *job = user;
  VkcCmd *cmd = job->cmd;
  VkcDevice *dev = vkc_cmd_device (cmd);
  const VkcTensor *y = &piece->view[0], *x = &piece->view[1];
  GnApplyPush pc;
  memset (&pc, 0, sizeof pc);
  VkcBinding b[5] = {
    vkc_tensor_binding (dev, y, true, &pc.y_off),
    vkc_tensor_binding (dev, x, false, &pc.x_off),
    vkc_tensor_binding (dev, &job->stats, false, &pc.stats_off),
    param_binding (dev, job->w, x, &pc.w_off),
    param_binding (dev, job->b, job->w ? job->w : x, &pc.b_off),
  };
  uint32_t st[6] = { (uint32_t) y->stride[0], (uint32_t) y->stride[1], (uint32_t) y->stride[2],
                     (uint32_t) x->stride[0], (uint32_t) x->stride[1], (uint32_t) x->stride[2] };
  uint32_t offs[4] = { pc.y_off, pc.x_off, pc.w_off, pc.b_off };
  int64_t cpg = job->C / job->G;
  int vec = cpg % 4 == 0 && all_multiple_of_4 (st, 6) && all_multiple_of_4 (offs, 4) ? 4 : 1;
  int64_t rows = piece->n[0] * piece->n[1] * piece->n[2];
  uint64_t total = (uint64_t) rows * (uint64_t) (job->C / vec);
  g_assert (total <= UINT32_MAX);
  pc.total = (uint32_t) total;
  pc.cols = (uint32_t) (job->C / vec);
  pc.rows = (uint32_t) rows;
  pc.n1 = (uint32_t) piece->n[1];
  pc.n2 = (uint32_t) piece->n[2];
  pc.y_off /= vec;
  pc.y_s0 = st[0] / vec;
  pc.y_s1 = st[1] / vec;
  pc.y_s2 = st[2] / vec;
  pc.x_off /= vec;
  pc.x_s0 = st[3] / vec;
  pc.x_s1 = st[4] / vec;
  pc.x_s2 = st[5] / vec;
  pc.w_off /= vec;
  pc.b_off /= vec;
  pc.flags = job->flags;
  pc.cpg = (uint32_t) cpg;
  pc.G = (uint32_t) job->G;
  pc.img_base = (uint32_t) piece->start[0];
  VkcShader shader = vkc_shaders_norm_group_apply[param_dtype (job->w, job->b)][vec == 4];
  VkcPipeline *p = vkc_pipeline_get (dev, shader, NULL, 0, 5);
  uint32_t gx, gy;
  vkc_grid_1d (total, 256, &gx, &gy);
  vkc_cmd_dispatch (cmd, p, b, 5, &pc, sizeof pc, gx, gy, 1);
}

static void
gn_plan (VkcRowPlan *plan, GnJob *job, VkcDevice *dev, const VkcTensor *y, const VkcTensor *x, int groups)
{
  VkcTensor xv = nhwc (x), yv = nhwc (y);
  VKC_CHECK_SAME_SHAPE (&yv, &xv);
  int64_t C = xv.shape[3];
  g_assert (groups > 0 && groups <= 256 && C % groups == 0);
  const VkcTensor *ops[2] = { &yv, &xv };
  vkc_row_plan_init (plan, 2, ops, true);
  memset (job, 0, sizeof *job);
  job->G = groups;
  job->C = C;
  job->chunk_px = gn_chunk_px (C, plan->n[1] * plan->n[2]);
  /* Count the chunks of one image over the pieces the split will make. */
  vkc_row_plan_split (dev, plan, gn_count_piece, job);
}

int64_t
vkc_group_norm_scratch_elems (VkcDevice *dev, const VkcTensor *y, const VkcTensor *x, int groups)
{
  VkcRowPlan plan;
  GnJob job;
  gn_plan (&plan, &job, dev, y, x, groups);
  return plan.n[0] * groups * (3 * job.chunks + 2);
}

void
vkc_op_group_norm (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *x, const VkcTensor *weight, const VkcTensor *bias,
                   int groups, float eps, VkcNormFlags flags, const VkcTensor *scratch)
{
  VkcDevice *dev = vkc_cmd_device (cmd);
  VkcRowPlan plan;
  GnJob job;
  gn_plan (&plan, &job, dev, y, x, groups);
  job.cmd = cmd;
  int64_t B = plan.n[0], G = groups;
  if (B * plan.n[1] * plan.n[2] == 0 || job.C == 0)
    return;
  check_param (weight, job.C);
  check_param (bias, job.C);
  param_dtype (weight, bias);
  g_assert (scratch && scratch->dtype == VKC_F32 && vkc_tensor_is_contiguous (scratch));
  int64_t n_part = B * job.chunks * G * 3, n_stats = B * G * 2;
  g_assert_cmpint (vkc_tensor_numel (scratch), >=, n_part + n_stats);
  VkcTensor flat = vkc_tensor_reshape (scratch, 1, (int64_t[]) { vkc_tensor_numel (scratch) });
  job.part = vkc_tensor_narrow (&flat, 0, 0, n_part);
  job.stats = vkc_tensor_narrow (&flat, 0, n_part, n_stats);
  job.w = weight;
  job.b = bias;
  job.flags = (weight ? NF_HAS_W : 0) | (bias ? NF_HAS_B : 0) | ((flags & VKC_NORM_ROUND_BF16) ? NF_ROUND_OUT : 0) |
              ((flags & VKC_NORM_SILU) ? NF_SILU : 0);

  vkc_row_plan_split (dev, &plan, gn_stats_piece, &job);

  GnMergePush mp = { (uint32_t) job.chunks, (uint32_t) G, 0, 0, eps };
  VkcBinding mb[2] = {
    vkc_tensor_binding (dev, &job.part, false, &mp.part_off),
    vkc_tensor_binding (dev, &job.stats, true, &mp.stats_off),
  };
  g_assert (B <= 65535);
  VkcPipeline *mpipe = vkc_pipeline_get (dev, VKC_SHADER_NORM_GROUP_MERGE, NULL, 0, 2);
  vkc_cmd_dispatch (cmd, mpipe, mb, 2, &mp, sizeof mp, (uint32_t) G, (uint32_t) B, 1);

  vkc_row_plan_split (dev, &plan, gn_apply_piece, &job);
}
