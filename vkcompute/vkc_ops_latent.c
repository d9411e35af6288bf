#include "vkc_ops_latent.h"
#include "vkc_ops_common.h"

static VkDeviceSize binding_limit_override;

void
vkc_latent_set_binding_limit (VkDeviceSize bytes)
{
  binding_limit_override = bytes;
}

static VkDeviceSize
binding_limit (VkcDevice *dev)
{
  VkDeviceSize limit = vkc_device_info (dev)->max_storage_buffer_range;
  return binding_limit_override && binding_limit_override < limit ? binding_limit_override : limit;
}

typedef struct {
  uint32_t n, C, m_off, e_off, y_off, has_eps, round_bf16;
  float lo, hi, shift, scale;
} LatentPush;

void
vkc_op_gaussian_latent (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *moments, const VkcTensor *eps,
                        const VkcGaussianLatentParams *p)
{
  VkcDevice *dev = vkc_cmd_device (cmd);
  g_assert (y->dtype == VKC_F32 && moments->dtype == VKC_F32);
  g_assert (vkc_tensor_is_contiguous (y) && vkc_tensor_is_contiguous (moments));
  int64_t C = y->shape[y->ndim - 1];
  g_assert_cmpint (moments->ndim, ==, y->ndim);
  for (int d = 0; d < y->ndim - 1; d++) g_assert_cmpint (moments->shape[d], ==, y->shape[d]);
  g_assert_cmpint (moments->shape[y->ndim - 1], ==, 2 * C);
  if (eps) {
    g_assert (eps->dtype == VKC_F32 && vkc_tensor_is_contiguous (eps));
    VKC_CHECK_SAME_SHAPE (eps, y);
  }
  int64_t n = vkc_tensor_numel (y);
  if (n == 0)
    return;
  g_assert (n <= UINT32_MAX);
  g_assert (vkc_tensor_span_bytes (moments) <= binding_limit (dev) && vkc_tensor_span_bytes (y) <= binding_limit (dev));
  LatentPush pc = { (uint32_t) n,  (uint32_t) C,  0,        0,       0, eps != NULL, p->round_bf16,
                    p->logvar_min, p->logvar_max, p->shift, p->scale };
  VkcBinding b[3] = {
    vkc_tensor_binding (dev, moments, false, &pc.m_off),
    vkc_tensor_binding (dev, eps ? eps : moments, false, &pc.e_off), /* unread without ε */
    vkc_tensor_binding (dev, y, true, &pc.y_off),
  };
  uint32_t gx, gy;
  vkc_grid_1d ((uint64_t) n, 256, &gx, &gy);
  VkcPipeline *pipe = vkc_pipeline_get (dev, VKC_SHADER_GAUSSIAN_LATENT, NULL, 0, 3);
  vkc_cmd_dispatch (cmd, pipe, b, 3, &pc, sizeof pc, gx, gy, 1);
}

typedef struct {
  uint32_t n, C, tw;
  uint32_t y_off, ys_h, ys_w;
  uint32_t t_off, ts_h, ts_w;
  uint32_t row0, pad0, pad1; /* the ivec4s start 16-byte aligned */
  int32_t ry[4], rx[4];
} BlendPush;

/* One image of a [B, H, W, C] view as the [H, W, C] view of rows r0..r0+nr. */
static VkcTensor
rows_view (const VkcTensor *t, int64_t b, int64_t r0, int64_t nr, int64_t c0, int64_t nc)
{
  int64_t shape[3] = { nr, nc, t->shape[3] };
  int64_t stride[3] = { t->stride[1], t->stride[2], 1 };
  return vkc_tensor_view (t, 3, shape, stride, b * t->stride[0] + r0 * t->stride[1] + c0 * t->stride[2]);
}

/* Tile rows per band so that both bindings fit (the binding may start up to one alignment
 * before the view). */
static int64_t
band_rows (VkcDevice *dev, const VkcTensor *y, const VkcTensor *t)
{
  VkDeviceSize limit = binding_limit (dev), align = vkc_device_info (dev)->min_storage_offset_alignment;
  int64_t tw = t->shape[2], C = t->shape[3];
  int64_t rows = t->shape[1];
  const VkcTensor *ops[2] = { y, t };
  for (int k = 0; k < 2; k++) {
    VkDeviceSize row_span = (VkDeviceSize) ((tw - 1) * ops[k]->stride[2] + C) * 4 + align;
    if (row_span > limit)
      g_error ("vkc: one tile row of %" G_GINT64_FORMAT " pixels exceeds the storage buffer range", tw);
    VkDeviceSize hs = (VkDeviceSize) ops[k]->stride[1] * 4;
    int64_t fit = hs ? 1 + (int64_t) ((limit - row_span) / hs) : rows;
    rows = MIN (rows, fit);
  }
  return MAX (rows, 1);
}

void
vkc_op_blend_tile (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *t, int64_t y0, int64_t x0, const VkcTileRamp *ry,
                   const VkcTileRamp *rx)
{
  VkcDevice *dev = vkc_cmd_device (cmd);
  g_assert (y->dtype == VKC_F32 && t->dtype == VKC_F32 && y->ndim == 4 && t->ndim == 4);
  g_assert (y->stride[3] == 1 && t->stride[3] == 1);
  g_assert (y->shape[0] == t->shape[0] && y->shape[3] == t->shape[3]);
  int64_t B = t->shape[0], th = t->shape[1], tw = t->shape[2], C = t->shape[3];
  g_assert (y0 >= 0 && x0 >= 0 && y0 + th <= y->shape[1] && x0 + tw <= y->shape[2]);
  if (B * th * tw * C == 0)
    return;
  int64_t band = band_rows (dev, y, t);
  VkcPipeline *pipe = vkc_pipeline_get (dev, VKC_SHADER_BLEND_TILE, NULL, 0, 2);
  for (int64_t b = 0; b < B; b++)
    for (int64_t r0 = 0; r0 < th; r0 += band) {
      int64_t nr = MIN (band, th - r0);
      VkcTensor yv = rows_view (y, b, y0 + r0, nr, x0, tw);
      VkcTensor tv = rows_view (t, b, r0, nr, 0, tw);
      uint64_t n = (uint64_t) (nr * tw * C);
      g_assert (n <= UINT32_MAX);
      BlendPush pc = { (uint32_t) n,
                       (uint32_t) C,
                       (uint32_t) tw,
                       0,
                       (uint32_t) y->stride[1],
                       (uint32_t) y->stride[2],
                       0,
                       (uint32_t) t->stride[1],
                       (uint32_t) t->stride[2],
                       (uint32_t) r0,
                       0,
                       0,
                       { ry->in_start, ry->in_len, ry->out_start, ry->out_len },
                       { rx->in_start, rx->in_len, rx->out_start, rx->out_len } };
      VkcBinding bind[2] = {
        vkc_tensor_binding (dev, &yv, true, &pc.y_off),
        vkc_tensor_binding (dev, &tv, false, &pc.t_off),
      };
      uint32_t gx, gy;
      vkc_grid_1d (n, 256, &gx, &gy);
      vkc_cmd_dispatch (cmd, pipe, bind, 2, &pc, sizeof pc, gx, gy, 1);
    }
}
