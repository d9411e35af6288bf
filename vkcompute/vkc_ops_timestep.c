#include "vkc_ops_timestep.h"
#include "vkc_ops_common.h"
#include <math.h>

/* Must match shaders/timestep.comp. */
typedef struct {
  uint32_t t_off, t_stride;
  uint32_t y_off, y_stride;
  uint32_t B, dim;
  uint32_t flip;
  float neg_log_period;
  float denom;
} TimestepPush;
G_STATIC_ASSERT (sizeof (TimestepPush) <= VKC_PUSH_CONSTANT_BYTES);

void
vkc_op_timestep_embedding (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *t, int dim, bool flip_sin_to_cos,
                           double downscale_freq_shift, double max_period)
{
  VkcDevice *dev = vkc_cmd_device (cmd);
  g_assert (y->dtype == VKC_F32 && t->dtype == VKC_F32);
  g_assert_cmpint (t->ndim, ==, 1);
  g_assert_cmpint (y->ndim, ==, 2);
  g_assert_cmpint (y->shape[0], ==, t->shape[0]);
  g_assert_cmpint (y->shape[1], ==, dim);
  g_assert (dim > 0 && (y->stride[1] == 1 || dim == 1));
  g_assert (max_period > 0);
  int half = dim / 2;
  /* As diffusers: the Python doubles −ln(max_period) and (half − shift) become fp32 scalars
   * of the fp32 tensor arithmetic. */
  TimestepPush pc = {
    .t_stride = (uint32_t) t->stride[0],
    .y_stride = (uint32_t) y->stride[0],
    .B = (uint32_t) y->shape[0],
    .dim = (uint32_t) dim,
    .flip = flip_sin_to_cos,
    .neg_log_period = (float) -log (max_period),
    .denom = (float) (half - downscale_freq_shift),
  };
  if (pc.B == 0)
    return;
  VkcBinding b[2] = {
    vkc_tensor_binding (dev, t, false, &pc.t_off),
    vkc_tensor_binding (dev, y, true, &pc.y_off),
  };
  uint32_t gx, gy;
  vkc_grid_1d ((uint64_t) pc.B * pc.dim, 256, &gx, &gy);
  VkcPipeline *p = vkc_pipeline_get (dev, VKC_SHADER_TIMESTEP_EMBEDDING, NULL, 0, 2);
  vkc_cmd_dispatch (cmd, p, b, 2, &pc, sizeof pc, gx, gy, 1);
}
