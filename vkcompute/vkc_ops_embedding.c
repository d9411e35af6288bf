#include "vkc_ops_embedding.h"
#include "vkc_ops_common.h"
#include "vkc_ops_rows.h"

/* Mirrors the push block of shaders/embedding.comp. */
typedef struct {
  uint32_t n, D, V, v0, vn, ldt, ldy, t_off, y_off, id_off;
} EmbeddingPush;

void
vkc_op_embedding_ex (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *table, const VkcTensor *ids,
                     VkDeviceSize max_binding)
{
  VkcDevice *dev = vkc_cmd_device (cmd);
  int64_t n, D, ldy;
  vkc_rows_of (y, &n, &D, &ldy);
  g_assert (y->dtype == VKC_F32);
  g_assert (table->dtype == VKC_F32 || table->dtype == VKC_F16 || table->dtype == VKC_BF16);
  g_assert (ids->dtype == VKC_U32 || ids->dtype == VKC_I32);
  g_assert (vkc_tensor_is_contiguous (ids));
  g_assert_cmpint (vkc_tensor_numel (ids), ==, n);
  g_assert_cmpint (table->ndim, ==, 2);
  g_assert_cmpint (table->shape[1], ==, D);
  g_assert (D <= 1 || table->stride[1] == 1);
  int64_t V = table->shape[0];
  g_assert_cmpint (V, >, 0);
  g_assert (V < ((int64_t) 1 << 32));
  int64_t ldt = V > 1 ? table->stride[0] : D;
  if (n == 0 || D == 0)
    return;

  VkcPipeline *pipe = vkc_pipeline_get (dev, vkc_shaders_embedding[table->dtype][ids->dtype == VKC_I32], NULL, 0, 3);

  /* Bind the table in row chunks and the output (with its ids) in row chunks; each dispatch
   * writes the outputs whose id falls into its table chunk. */
  VkDeviceSize limit = vkc_binding_limit (dev, max_binding);
  VkDeviceSize align = vkc_device_info (dev)->min_storage_offset_alignment;
  int64_t v_step = vkc_rows_fitting (limit, align, ldt, D, vkc_dtype_size (table->dtype));
  int64_t n_step = vkc_rows_fitting (limit, align, ldy, D, 4);
  g_assert (v_step > 0 && n_step > 0);

  VkcTensor t2 = vkc_rows_view (table, V, D, ldt);
  VkcTensor y2 = vkc_rows_view (y, n, D, ldy);
  VkcTensor id1 = vkc_tensor_reshape (ids, 1, &n);
  for (int64_t i0 = 0; i0 < n; i0 += n_step) {
    int64_t nc = MIN (n_step, n - i0);
    VkcTensor yc = vkc_tensor_narrow (&y2, 0, i0, nc);
    VkcTensor ic = vkc_tensor_narrow (&id1, 0, i0, nc);
    for (int64_t v0 = 0; v0 < V; v0 += v_step) {
      int64_t vc = MIN (v_step, V - v0);
      VkcTensor tc = vkc_tensor_narrow (&t2, 0, v0, vc);
      EmbeddingPush pc = {
        .n = (uint32_t) nc,
        .D = (uint32_t) D,
        .V = (uint32_t) V,
        .v0 = (uint32_t) v0,
        .vn = (uint32_t) vc,
        .ldt = (uint32_t) ldt,
        .ldy = (uint32_t) ldy,
      };
      VkcBinding b[3] = {
        vkc_tensor_binding (dev, &ic, false, &pc.id_off),
        vkc_tensor_binding (dev, &tc, false, &pc.t_off),
        vkc_tensor_binding (dev, &yc, true, &pc.y_off),
      };
      uint32_t gx, gy;
      vkc_grid_1d ((uint64_t) nc * (uint64_t) D, 256, &gx, &gy);
      vkc_cmd_dispatch (cmd, pipe, b, 3, &pc, sizeof pc, gx, gy, 1);
    }
  }
}

void
vkc_op_embedding (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *table, const VkcTensor *ids)
{
  vkc_op_embedding_ex (cmd, y, table, ids, 0);
}
