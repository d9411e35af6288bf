/* Tensors: shape/stride views over GPU buffer ranges, and how they are bound. */
#include "vkc_internal.h"
#include "vkc_quant.h"
#include <string.h>

/* Every dtype's storage: `block` consecutive elements take `bytes` bytes. Plain types have
 * block 1 (bytes = the element size); block types (vkc_quant.h) are [N, K] matrices of whole
 * blocks, and everything below that differs for them asks this table, not the dtype. */
typedef struct {
  const char *name;
  int64_t block;
  uint32_t bytes;
} DTypeInfo;

static const DTypeInfo dtypes[] = {
  [VKC_F32] = { "f32", 1, 4 },
  [VKC_F16] = { "f16", 1, 2 },
  [VKC_BF16] = { "bf16", 1, 2 },
  [VKC_U32] = { "u32", 1, 4 },
  [VKC_I32] = { "i32", 1, 4 },
  [VKC_Q8_0] = { "q8_0", VKC_Q8_0_BLOCK, VKC_Q8_0_BLOCK_BYTES },
  [VKC_Q4_0] = { "q4_0", VKC_Q4_0_BLOCK, VKC_Q4_0_BLOCK_BYTES },
};

static const DTypeInfo *
dtype_info (VkcDType t)
{
  if ((unsigned) t >= G_N_ELEMENTS (dtypes))
    g_error ("vkc: invalid dtype %d", (int) t);
  return &dtypes[t];
}

static bool
is_block_type (VkcDType t)
{
  return dtype_info (t)->block > 1;
}

size_t
vkc_dtype_size (VkcDType t)
{
  const DTypeInfo *d = dtype_info (t);
  if (d->block > 1) { /* 1.125 or 0.625 bytes: callers use vkc_dtype_bytes */
    g_critical ("vkc_dtype_size: %s is a block type, whose elements have no whole size", d->name);
    return 0;
  }
  return d->bytes;
}

int64_t
vkc_dtype_block (VkcDType t)
{
  return dtype_info (t)->block;
}

VkDeviceSize
vkc_dtype_bytes (VkcDType t, int64_t elements)
{
  const DTypeInfo *d = dtype_info (t);
  g_assert (elements >= 0 && elements % d->block == 0);
  return (VkDeviceSize) (elements / d->block) * d->bytes;
}

const char *
vkc_dtype_name (VkcDType t)
{
  return (unsigned) t < G_N_ELEMENTS (dtypes) ? dtypes[t].name : "?";
}

/* The only layout a block-type tensor may have: a [N, K] matrix of whole blocks, rows
 * contiguous and back to back, so that every row starts on a block and the shaders can find
 * block (n, k/32) from the row index alone. */
static bool
block_layout_ok (VkcDType t, int ndim, const int64_t *shape, const int64_t *stride)
{
  return ndim == 2 && shape[1] % vkc_dtype_block (t) == 0 && stride[1] == 1 && stride[0] == shape[1];
}

static void
block_check_view (const VkcTensor *v, const char *what)
{
  if (is_block_type (v->dtype) && !block_layout_ok (v->dtype, v->ndim, v->shape, v->stride))
    g_error ("vkc: %s of a %s tensor gives %s with strides {%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
             "}; a %s tensor must be a matrix [N, K] with K %% %" G_GINT64_FORMAT " == 0 and strides {K, 1}",
             what, vkc_dtype_name (v->dtype), vkc_tensor_shape_str (v), v->stride[0], v->ndim > 1 ? v->stride[1] : 0,
             vkc_dtype_name (v->dtype), vkc_dtype_block (v->dtype));
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
  if (is_block_type (dtype) && !block_layout_ok (dtype, ndim, t->shape, t->stride)) {
    g_set_error (error, VKC_ERROR, VKC_ERROR_FAILED,
                 "a %s tensor must be a matrix [N, K] with K a multiple of %" G_GINT64_FORMAT ", not %s",
                 vkc_dtype_name (dtype), vkc_dtype_block (dtype), vkc_tensor_shape_str (t));
    memset (t, 0, sizeof *t);
    return false;
  }
  VkDeviceSize bytes = vkc_dtype_bytes (dtype, n);
  bytes = (bytes + 3) & ~(VkDeviceSize) 3; /* whole 32-bit words: 16-bit tensors are accessed by word */
  bool ok =
      arena ? vkc_pool_arena_alloc (pool, bytes, &t->alloc, error) : vkc_pool_alloc (pool, bytes, &t->alloc, error);
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
  for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
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
  if (is_block_type (t->dtype) && dim != 0)
    g_error ("vkc: a %s tensor %s can only be narrowed along its rows (dim 0), not dim %d", vkc_dtype_name (t->dtype),
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
  block_check_view (&v, "a reshape");
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
  block_check_view (&v, "a view");
  if (elem_offset % vkc_dtype_block (t->dtype) != 0)
    g_error ("vkc: a view of a %s tensor must start on a block (offset %" G_GINT64_FORMAT
             " is no multiple of %" G_GINT64_FORMAT ")",
             vkc_dtype_name (t->dtype), elem_offset, vkc_dtype_block (t->dtype));
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
  /* The unit of *elem_offset: an element, or a 32-bit word for a block type, whose 36- or
   * 20-byte blocks need not start a whole number of blocks after an aligned offset. */
  VkDeviceSize size = is_block_type (t->dtype) ? 4 : vkc_dtype_size (t->dtype);
  g_assert ((t->offset - start) % size == 0);
  VkDeviceSize end = t->offset + MAX (vkc_tensor_span_bytes (t), size);
  /* Round to whole words: 16-bit data is read and written as 32-bit words. Allocations are
   * word-padded (vkc_tensor_alloc), so the extra bytes exist. */
  VkDeviceSize range = (end - start + 3) & ~(VkDeviceSize) 3;
  if (range > dev->info.max_storage_buffer_range)
    g_error ("vkc: tensor %s (%s) spans %.1f MiB, more than maxStorageBufferRange (%.1f MiB); "
             "the op launcher must split it",
             vkc_tensor_shape_str (t), vkc_dtype_name (t->dtype), range / 1048576.0,
             dev->info.max_storage_buffer_range / 1048576.0);
  if (elem_offset)
    *elem_offset = (uint32_t) ((t->offset - start) / size);
  return (VkcBinding) { t->buffer, start, range, write };
}
