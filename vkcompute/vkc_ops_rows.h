/* Row helpers shared by op launchers that treat a tensor as [rows, cols] with a row stride
 * (linear, embedding). Not part of the public API; candidates for vkc_ops_common.h. */
#pragma once
#include "vkc.h"
#include <string.h>

/* Leading dims of t flattened into rows: t is viewed as [rows, cols] with row stride *ld.
 * The last dim must be contiguous and the leading dims must flatten (each non-trivial dim's
 * stride = the next inner non-trivial dim's stride × its size); asserts otherwise. */
static inline void
vkc_rows_of (const VkcTensor *t, int64_t *rows, int64_t *cols, int64_t *ld)
{
  g_assert (t->ndim >= 1 && t->ndim <= VKC_MAX_DIMS);
  int nd = t->ndim;
  *cols = t->shape[nd - 1];
  g_assert (*cols <= 1 || t->stride[nd - 1] == 1);
  *rows = 1;
  *ld = *cols;
  int64_t expect = -1; /* stride the next outer non-trivial dim must have */
  for (int d = nd - 2; d >= 0; d--) {
    *rows *= t->shape[d];
    if (t->shape[d] == 1)
      continue;
    if (expect < 0)
      *ld = t->stride[d];
    else
      g_assert_cmpint (t->stride[d], ==, expect);
    expect = t->stride[d] * t->shape[d];
  }
  g_assert (*ld >= *cols || *rows <= 1);
}

/* A [rows, cols] view with row stride ld over t's memory (no ownership). */
static inline VkcTensor
vkc_rows_view (const VkcTensor *t, int64_t rows, int64_t cols, int64_t ld)
{
  VkcTensor v = *t;
  memset (&v.alloc, 0, sizeof v.alloc);
  v.ndim = 2;
  v.shape[0] = rows;
  v.shape[1] = cols;
  v.shape[2] = v.shape[3] = 0; /* unused dims as vkc_tensor_view leaves them */
  v.stride[0] = ld;
  v.stride[1] = 1;
  v.stride[2] = v.stride[3] = 0;
  return v;
}

/* How many rows of `row_bytes` bytes at a row stride of `ld_bytes` bytes fit in one binding of
 * `limit` bytes. The binding may start up to one offset alignment before the first element
 * and 16-bit data is read in whole 32-bit words, hence the slack. 0 when not one row fits.
 * In bytes for block types whose elements have no whole size (vkc_dtype_bytes). */
static inline int64_t
vkc_rows_fitting_bytes (VkDeviceSize limit, VkDeviceSize align, int64_t ld_bytes, VkDeviceSize row_bytes)
{
  VkDeviceSize one = row_bytes + align + 4;
  if (one > limit)
    return 0;
  if (ld_bytes <= 0)
    return INT64_MAX;
  return 1 + (int64_t) ((limit - one) / (VkDeviceSize) ld_bytes);
}

/* The same for rows of `cols` elements of `esize` bytes at row stride `ld` elements. */
static inline int64_t
vkc_rows_fitting (VkDeviceSize limit, VkDeviceSize align, int64_t ld, int64_t cols, size_t esize)
{
  return vkc_rows_fitting_bytes (limit, align, ld * (int64_t) esize, (VkDeviceSize) cols * esize);
}

/* The binding limit an op should split at: the device's, or a lower one for tests. */
static inline VkDeviceSize
vkc_binding_limit (VkcDevice *dev, VkDeviceSize override)
{
  VkDeviceSize limit = vkc_device_info (dev)->max_storage_buffer_range;
  return override && override < limit ? override : limit;
}
