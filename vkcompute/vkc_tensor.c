/* Tensors: shape/stride views over GPU buffer ranges, and how they are bound. */
#include "vkc_internal.h"
#include "vkc_quant.h"
#include <string.h>

size_t
vkc_dtype_size (VkcDType t)
{
  g_return_val_if_fail (t != VKC_Q8_0, 0);   /* 1.125 bytes: callers use vkc_dtype_bytes */
  switch (t) {
  case VKC_F16:
  case VKC_BF16: return 2;
  default: return 4;
  }
}

int64_t
vkc_dtype_block (VkcDType t)
{
  return t == VKC_Q8_0 ? VKC_Q8_0_BLOCK : 1;
}

VkDeviceSize
vkc_dtype_bytes (VkcDType t, int64_t elements)
{
  g_assert (elements >= 0);
  if (t == VKC_Q8_0) {
    g_assert (elements % VKC_Q8_0_BLOCK == 0);
    return (VkDeviceSize) (elements / VKC_Q8_0_BLOCK) * VKC_Q8_0_BLOCK_BYTES;
  }
  return (VkDeviceSize) elements * vkc_dtype_size (t);
}

const char *
vkc_dtype_name (VkcDType t)
{
  switch (t) {
  case VKC_F32: return "f32";
  case VKC_F16: return "f16";
  case VKC_BF16: return "bf16";
  case VKC_U32: return "u32";
  case VKC_I32: return "i32";
  case VKC_Q8_0: return "q8_0";
  default: return "?";
  }
}

/* The only layout a Q8_0 tensor may have: a [N, K] matrix of whole blocks, rows contiguous and
 * back to back, so that every row starts on a block and the shaders can find block (n, k/32)
 * from the row index alone. */
static bool
q8_layout_ok (int ndim, const int64_t *shape, const int64_t *stride)
{
  return ndim == 2 && shape[1] % VKC_Q8_0_BLOCK == 0 && stride[1] == 1 && stride[0] == shape[1];
}

static void
q8_check_view (const VkcTensor *v, const char *what)
{
  if (v->dtype == VKC_Q8_0 && !q8_layout_ok (v->ndim, v->shape, v->stride))
    g_error ("vkc: %s of a q8_0 tensor gives %s with strides {%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
             "}; a q8_0 tensor must be a matrix [N, K] with K %% %d == 0 and strides {K, 1}",
             what, vkc_tensor_shape_str (v), v->stride[0], v->ndim > 1 ? v->stride[1] : 0, VKC_Q8_0_BLOCK);
}

static void
set_contiguous_strides (VkcTensor *t)
{
  int64_t s = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    t->stride[d] = s;
    s *= t->shape[d];
  }
}

bool
vkc_tensor_alloc (VkcTensor *t, VkcPool *pool, bool arena, VkcDType dtype, int ndim, const int64_t *shape,
                  GError **error)
{
  g_assert (ndim >= 1 && ndim <= VKC_MAX_DIMS);
  memset (t, 0, sizeof *t);
  t->dtype = dtype;
  t->ndim = ndim;
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    g_assert (shape[d] >= 0);
    t->shape[d] = shape[d];
    if (shape[d] && n > G_MAXINT64 / shape[d]) {
      g_set_error (error, VKC_ERROR, VKC_ERROR_TOO_LARGE, "tensor shape overflows");
      return false;
    }
    n *= shape[d];
  }
  set_contiguous_strides (t);
  if (dtype == VKC_Q8_0 && !q8_layout_ok (ndim, t->shape, t->stride)) {
    g_set_error (error, VKC_ERROR, VKC_ERROR_FAILED,
                 "a q8_0 tensor must be a matrix [N, K] with K a multiple of %d, not %s", VKC_Q8_0_BLOCK,
                 vkc_tensor_shape_str (t));
    memset (t, 0, sizeof *t);
    return false;
  }
  VkDeviceSize bytes = vkc_dtype_bytes (dtype, n);
  bytes = (bytes + 3) & ~(VkDeviceSize) 3;   /* whole 32-bit words: 16-bit tensors are accessed by word */
  bool ok = arena ? vkc_pool_arena_alloc (pool, bytes, &t->alloc, error) : vkc_pool_alloc (pool, bytes, &t->alloc, error);
  if (!ok)
    return false;
  t->buffer = t->alloc.buffer;
  t->offset = t->alloc.offset;
  return true;
}

void
vkc_tensor_release (VkcTensor *t)
{
  if (t->alloc.pool)
    vkc_pool_release (&t->alloc);
  memset (t, 0, sizeof *t);
}

int64_t
vkc_tensor_numel (const VkcTensor *t)
{
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++)
    n *= t->shape[d];
  return n;
}

bool
vkc_tensor_is_contiguous (const VkcTensor *t)
{
  int64_t s = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != s)
      return false;
    s *= t->shape[d];
  }
  return true;
}

VkDeviceSize
vkc_tensor_span_bytes (const VkcTensor *t)
{
  int64_t last = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] == 0)
      return 0;
    last += (t->shape[d] - 1) * t->stride[d];
  }
  return vkc_dtype_bytes (t->dtype, last + 1);
}

static VkcTensor
borrowed (const VkcTensor *t)
{
  VkcTensor v = *t;
  memset (&v.alloc, 0, sizeof v.alloc);
  return v;
}

VkcTensor
vkc_tensor_narrow (const VkcTensor *t, int dim, int64_t start, int64_t length)
{
  g_assert (dim >= 0 && dim < t->ndim);
  g_assert (start >= 0 && length >= 0 && start + length <= t->shape[dim]);
  if (t->dtype == VKC_Q8_0 && dim != 0)
    g_error ("vkc: a q8_0 tensor %s can only be narrowed along its rows (dim 0), not dim %d",
             vkc_tensor_shape_str (t), dim);
  VkcTensor v = borrowed (t);
  v.offset += vkc_dtype_bytes (t->dtype, start * t->stride[dim]);
  v.shape[dim] = length;
  return v;
}

VkcTensor
vkc_tensor_reshape (const VkcTensor *t, int ndim, const int64_t *shape)
{
  g_assert (vkc_tensor_is_contiguous (t));
  g_assert (ndim >= 1 && ndim <= VKC_MAX_DIMS);
  VkcTensor v = borrowed (t);
  v.ndim = ndim;
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    v.shape[d] = shape[d];
    n *= shape[d];
  }
  g_assert (n == vkc_tensor_numel (t));
  for (int d = ndim; d < VKC_MAX_DIMS; d++) {
    v.shape[d] = 0;
    v.stride[d] = 0;
  }
  set_contiguous_strides (&v);
  q8_check_view (&v, "a reshape");
  return v;
}

VkcTensor
vkc_tensor_view (const VkcTensor *t, int ndim, const int64_t *shape, const int64_t *stride, int64_t elem_offset)
{
  g_assert (ndim >= 1 && ndim <= VKC_MAX_DIMS && elem_offset >= 0);
  VkcTensor v = borrowed (t);
  v.ndim = ndim;
  for (int d = 0; d < VKC_MAX_DIMS; d++) {
    v.shape[d] = d < ndim ? shape[d] : 0;
    v.stride[d] = d < ndim ? stride[d] : 0;
  }
  q8_check_view (&v, "a view");
  if (t->dtype == VKC_Q8_0 && elem_offset % VKC_Q8_0_BLOCK != 0)
    g_error ("vkc: a view of a q8_0 tensor must start on a block (offset %" G_GINT64_FORMAT
             " is no multiple of %d)", elem_offset, VKC_Q8_0_BLOCK);
  v.offset += vkc_dtype_bytes (t->dtype, elem_offset);
  return v;
}

static VkDeviceSize
tensor_bytes (const VkcTensor *t)
{
  return vkc_dtype_bytes (t->dtype, vkc_tensor_numel (t));
}

bool
vkc_tensor_upload (VkcDevice *dev, const VkcTensor *t, const void *data, GError **error)
{
  g_assert (vkc_tensor_is_contiguous (t));
  return vkc_upload (dev, t->buffer, t->offset, data, tensor_bytes (t), error);
}

bool
vkc_tensor_download (VkcDevice *dev, const VkcTensor *t, void *data, GError **error)
{
  g_assert (vkc_tensor_is_contiguous (t));
  return vkc_download (dev, data, t->buffer, t->offset, tensor_bytes (t), error);
}

const char *
vkc_tensor_shape_str (const VkcTensor *t)
{
  static GPrivate key = G_PRIVATE_INIT (g_free);
  char *buf = g_private_get (&key);
  if (!buf) {
    buf = g_malloc (128);
    g_private_set (&key, buf);
  }
  GString *s = g_string_new ("[");
  for (int d = 0; d < t->ndim; d++)
    g_string_append_printf (s, d ? ", %" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, t->shape[d]);
  g_string_append_c (s, ']');
  g_strlcpy (buf, s->str, 128);
  g_string_free (s, TRUE);
  return buf;
}

/* ---- binding ------------------------------------------------------------------------ */

static VkDeviceSize
binding_start (VkcDevice *dev, const VkcTensor *t)
{
  VkDeviceSize align = MAX (dev->info.min_storage_offset_alignment, 4);
  return t->offset / align * align;
}

bool
vkc_binding_fits (VkcDevice *dev, const VkcTensor *t)
{
  VkDeviceSize start = binding_start (dev, t);
  VkDeviceSize end = t->offset + vkc_tensor_span_bytes (t);
  return ((end - start + 3) & ~(VkDeviceSize) 3) <= dev->info.max_storage_buffer_range;
}

VkcBinding
vkc_tensor_binding (VkcDevice *dev, const VkcTensor *t, bool write, uint32_t *elem_offset)
{
  VkDeviceSize start = binding_start (dev, t);
  /* The unit of *elem_offset: an element, or a 32-bit word for Q8_0, whose 36-byte blocks need
   * not start a whole number of blocks after an aligned offset. */
  VkDeviceSize size = t->dtype == VKC_Q8_0 ? 4 : vkc_dtype_size (t->dtype);
  g_assert ((t->offset - start) % size == 0);
  VkDeviceSize end = t->offset + MAX (vkc_tensor_span_bytes (t), size);
  /* Round to whole words: 16-bit data is read and written as 32-bit words. Allocations are
   * word-padded (vkc_tensor_alloc), so the extra bytes exist. */
  VkDeviceSize range = (end - start + 3) & ~(VkDeviceSize) 3;
  if (range > dev->info.max_storage_buffer_range)
    g_error ("vkc: tensor %s (%s) spans %.1f MiB, more than maxStorageBufferRange (%.1f MiB); "
             "the op launcher must split it", vkc_tensor_shape_str (t), vkc_dtype_name (t->dtype),
             range / 1048576.0, dev->info.max_storage_buffer_range / 1048576.0);
  if (elem_offset)
    *elem_offset = (uint32_t) ((t->offset - start) / size);
  return (VkcBinding) { t->buffer, start, range, write };
}
