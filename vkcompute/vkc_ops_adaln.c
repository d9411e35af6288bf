/* AdaLN modulation and gated residual (vkc_ops_adaln.h). */
#include "vkc_ops_adaln.h"
#include "vkc_ops_common.h"
#include "vkc_ops_rows.h"

static VkDeviceSize binding_limit_override;

void
vkc_adaln_set_binding_limit (VkDeviceSize bytes)
{
  binding_limit_override = bytes;
}

typedef struct {
  uint32_t n, N, C;
  uint32_t x_off, x_sb, x_sn;
  uint32_t y_off, y_sb, y_sn;
  uint32_t a_off, a_sb;
  uint32_t b_off, b_sb, b_sn;
} AdalnPush;

/* The shader's OP numbers (shaders/adaln.cmake), the first index of vkc_shaders_adaln. */
enum { OP_MODULATE, OP_GATED_ADD };

static uint32_t
u32 (int64_t v)
{
  g_assert (v >= 0 && v <= (int64_t) UINT32_MAX);
  return (uint32_t) v;
}

/* [N, C] → [1, N, C]; [C] → [1, C]. */
static VkcTensor
with_batch (const VkcTensor *t, int want)
{
  if (t->ndim == want)
    return *t;
  g_assert_cmpint (t->ndim, ==, want - 1);
  int64_t shape[3], stride[3];
  shape[0] = 1;
  stride[0] = t->shape[0] * (t->ndim > 1 ? t->stride[0] : 1);
  for (int d = 0; d < t->ndim; d++) {
    shape[d + 1] = t->shape[d];
    stride[d + 1] = t->stride[d];
  }
  return vkc_tensor_view (t, want, shape, stride, 0);
}

static bool
fits (VkcDevice *dev, const VkcTensor *t)
{
  VkDeviceSize limit = vkc_binding_limit (dev, binding_limit_override);
  return vkc_tensor_span_bytes (t) + vkc_device_info (dev)->min_storage_offset_alignment + 4 <= limit;
}

static void
dispatch (VkcCmd *cmd, int op, VkcAdalnFlags flags, const VkcTensor *y, const VkcTensor *x, const VkcTensor *a,
          const VkcTensor *b)
{
  VkcDevice *dev = vkc_cmd_device (cmd);
  const bool b_tokens = b->ndim == 3;
  AdalnPush pc = {
    .n = u32 (vkc_tensor_numel (y)),
    .N = u32 (y->shape[1]),
    .C = u32 (y->shape[2]),
    .x_sb = u32 (x->stride[0]),
    .x_sn = u32 (x->stride[1]),
    .y_sb = u32 (y->stride[0]),
    .y_sn = u32 (y->stride[1]),
    .a_sb = u32 (a->stride[0]),
    .b_sb = u32 (b->stride[0]),
    .b_sn = b_tokens ? u32 (b->stride[1]) : 0,
  };
  if (pc.n == 0)
    return;
  VkcBinding bind[4] = {
    vkc_tensor_binding (dev, x, false, &pc.x_off),
    vkc_tensor_binding (dev, a, false, &pc.a_off),
    vkc_tensor_binding (dev, b, false, &pc.b_off),
    vkc_tensor_binding (dev, y, true, &pc.y_off),
  };
  uint32_t gx, gy;
  vkc_grid_1d (pc.n, 256, &gx, &gy);
  VkcPipeline *p = vkc_pipeline_get (dev, vkc_shaders_adaln[op][(flags & VKC_ADALN_ROUND_BF16) != 0], NULL, 0, 4);
  vkc_cmd_dispatch (cmd, p, bind, 4, &pc, sizeof pc, gx, gy, 1);
}

/* Halve the batch, then the tokens, until every binding fits. */
static void
run (VkcCmd *cmd, int op, VkcAdalnFlags flags, const VkcTensor *y, const VkcTensor *x, const VkcTensor *a,
     const VkcTensor *b)
{
  VkcDevice *dev = vkc_cmd_device (cmd);
  if (fits (dev, y) && fits (dev, x) && fits (dev, a) && fits (dev, b)) {
    dispatch (cmd, op, flags, y, x, a, b);
    return;
  }
  const bool b_tokens = b->ndim == 3;
  int dim = y->shape[0] > 1 ? 0 : 1;
  int64_t len = y->shape[dim];
  if (len <= 1)
    g_error ("vkc_op_adaln: one token row of %s exceeds a storage binding", vkc_tensor_shape_str (y));
  int64_t h = len / 2;
  for (int k = 0; k < 2; k++) {
    int64_t s = k ? h : 0, n = k ? len - h : h;
    VkcTensor ys = vkc_tensor_narrow (y, dim, s, n), xs = vkc_tensor_narrow (x, dim, s, n);
    VkcTensor as = dim == 0 ? vkc_tensor_narrow (a, 0, s, n) : *a;
    VkcTensor bs = (dim == 0 || b_tokens) ? vkc_tensor_narrow (b, dim, s, n) : *b;
    run (cmd, op, flags, &ys, &xs, &as, &bs);
  }
}

static void
check (const VkcTensor *y, const VkcTensor *x, const VkcTensor *a)
{
  g_assert (y->dtype == VKC_F32 && x->dtype == VKC_F32 && a->dtype == VKC_F32);
  g_assert_cmpint (y->ndim, ==, 3);
  for (int d = 0; d < 3; d++) g_assert_cmpint (x->shape[d], ==, y->shape[d]);
  g_assert (y->stride[2] == 1 && x->stride[2] == 1);
  g_assert (a->ndim == 2 && a->shape[0] == y->shape[0] && a->shape[1] == y->shape[2] && a->stride[1] == 1);
}

void
vkc_op_adaln_modulate (VkcCmd *cmd, const VkcTensor *y_in, const VkcTensor *x_in, const VkcTensor *scale_in,
                       const VkcTensor *shift_in, VkcAdalnFlags flags)
{
  VkcTensor y = with_batch (y_in, 3), x = with_batch (x_in, 3);
  VkcTensor scale = with_batch (scale_in, 2), shift = with_batch (shift_in, 2);
  check (&y, &x, &scale);
  check (&y, &x, &shift);
  run (cmd, OP_MODULATE, flags, &y, &x, &scale, &shift);
}

void
vkc_op_adaln_gated_add (VkcCmd *cmd, const VkcTensor *y_in, const VkcTensor *x_in, const VkcTensor *gate_in,
                        const VkcTensor *v_in, VkcAdalnFlags flags)
{
  VkcTensor y = with_batch (y_in, 3), x = with_batch (x_in, 3);
  VkcTensor gate = with_batch (gate_in, 2), v = with_batch (v_in, 3);
  check (&y, &x, &gate);
  check (&y, &v, &gate);
  run (cmd, OP_GATED_ADD, flags, &y, &x, &gate, &v);
}
