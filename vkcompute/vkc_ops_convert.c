#include "vkc_ops_convert.h"
#include "vkc_ops_common.h"

typedef struct {
  uint32_t n, src_off, dst_off;
} ConvertPush;

static void dispatch_piece (VkcCmd *cmd, VkcShader shader, const VkcTensor *dst, const VkcTensor *src);

/* Largest binding in bytes; tests lower it to exercise the split. */
static VkDeviceSize binding_limit;

void
vkc_convert_set_binding_limit (VkDeviceSize bytes)
{
  binding_limit = bytes;
}

/* Converts contiguous tensors in pieces that each fit one storage binding (a 1024² VAE
 * activation is 512 MiB; lavapipe binds 128 MiB). */
static void
dispatch_convert (VkcCmd *cmd, VkcShader shader, const VkcTensor *dst, const VkcTensor *src)
{
  g_assert (vkc_tensor_is_contiguous (dst) && vkc_tensor_is_contiguous (src));
  int64_t n = vkc_tensor_numel (dst);
  g_assert_cmpint (n, ==, vkc_tensor_numel (src));
  VkcDevice *dev = vkc_cmd_device (cmd);
  const VkcDeviceInfo *info = vkc_device_info (dev);
  VkDeviceSize limit = binding_limit ? binding_limit : info->max_storage_buffer_range;
  /* Room for the alignment slack of a binding's start and the rounding to whole words. */
  VkDeviceSize usable = limit - MIN (limit / 2, info->min_storage_offset_alignment + 4);
  int64_t piece = (int64_t) (usable / 4) & ~(int64_t) 1;
  if (n <= piece) {
    dispatch_piece (cmd, shader, dst, src);
    return;
  }
  VkcTensor d = vkc_tensor_reshape (dst, 1, &n), s = vkc_tensor_reshape (src, 1, &n);
  for (int64_t at = 0; at < n; at += piece) {
    int64_t len = MIN (piece, n - at);
    VkcTensor dp = vkc_tensor_narrow (&d, 0, at, len), sp = vkc_tensor_narrow (&s, 0, at, len);
    dispatch_piece (cmd, shader, &dp, &sp);
  }
}

static void
dispatch_piece (VkcCmd *cmd, VkcShader shader, const VkcTensor *dst, const VkcTensor *src)
{
  VkcDevice *dev = vkc_cmd_device (cmd);
  ConvertPush pc = { (uint32_t) vkc_tensor_numel (dst), 0, 0 };
  VkcBinding b[2] = {
    vkc_tensor_binding (dev, src, false, &pc.src_off),
    vkc_tensor_binding (dev, dst, true, &pc.dst_off),
  };
  /* 16-bit destinations are written one 32-bit word per invocation. */
  uint64_t work = dst->dtype == VKC_F32 ? pc.n : (pc.dst_off % 2 + pc.n + 1) / 2;
  uint32_t gx, gy;
  vkc_grid_1d (work, 256, &gx, &gy);
  VkcPipeline *p = vkc_pipeline_get (dev, shader, NULL, 0, 2);
  vkc_cmd_dispatch (cmd, p, b, 2, &pc, sizeof pc, gx, gy, 1);
}

void
vkc_op_convert (VkcCmd *cmd, const VkcTensor *dst, const VkcTensor *src)
{
  g_assert (dst->dtype != src->dtype);
  g_assert (dst->dtype <= VKC_BF16 && src->dtype <= VKC_BF16);
  dispatch_convert (cmd, vkc_shaders_convert[src->dtype][dst->dtype], dst, src);
}

void
vkc_op_round_bf16 (VkcCmd *cmd, const VkcTensor *dst, const VkcTensor *src)
{
  g_assert (dst->dtype == VKC_F32 && src->dtype == VKC_F32);
  dispatch_convert (cmd, VKC_SHADER_ROUND_BF16_F32, dst, src);
}
