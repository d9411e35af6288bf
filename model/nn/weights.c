/* Uploading a component's weights under the precision policy of weights.h. */
#include "weights.h"

#include <string.h>

#include "dg_i18n.h"
#include "dtype.h"
#include "mapped_guard.h"
#include "plan.h"
#include "vkc_half.h"
#include "vkc_ops_conv.h"
#include "vkc_quant.h"

DgWeights *
dg_weights_new (VkcDevice *dev, const DgSafetensors *st, DgPrecision precision, const char *label)
{
  DgWeights *w = g_new0 (DgWeights, 1);
  w->dev = dev;
  w->st = st;
  w->precision = precision;
  w->prefix = g_strdup ("");
  w->pool = vkc_pool_new (dev, VKC_POOL_DEVICE, 0, label);
  return w;
}

void
dg_weights_free (DgWeights *w)
{
  if (!w)
    return;
  vkc_pool_free (w->pool);
  g_free (w->prefix);
  g_free (w);
}

void
dg_weights_set_prefix (DgWeights *w, const char *prefix)
{
  g_free (w->prefix);
  w->prefix = g_strdup (prefix ? prefix : "");
}

void
dg_weights_expect (DgWeights *w, guint64 bytes)
{
  vkc_pool_expect (w->pool, bytes);
}

VkcDType
dg_weights_matrix_dtype (const DgWeights *w)
{
  return w->precision == DG_PRECISION_BF16 ? VKC_BF16 : VKC_F32;
}

void
dg_error_from_vkc (GError **error)
{
  if (!error || !*error || (*error)->domain == DG_ERROR)
    return;
  int code = DG_ERROR_DEVICE;
  if ((*error)->domain == VKC_ERROR &&
      ((*error)->code == VKC_ERROR_OUT_OF_MEMORY || (*error)->code == VKC_ERROR_TOO_LARGE))
    code = DG_ERROR_OOM;
  (*error)->domain = DG_ERROR;
  (*error)->code = code;
}

static char *
full_name (DgWeights *w, const char *fmt, va_list ap)
{
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  return g_strconcat (w->prefix, name, NULL);
}

/* A weight stored as q8_0 (a converted folder, gguf.h) is dequantized by every use but
 * dg_weights_linear (dg_tensor_to_f32). */
#define WEIGHT_DTYPES DG_DTYPES_WEIGHT

/* Finds a float tensor whose first dim is shape[0] and whose remaining dims multiply to the
 * product of shape[1..ndim). */
static const DgTensorInfo *
find_flat (DgWeights *w, const char *name, guint ndim, const gint64 *shape, GError **error)
{
  const DgTensorInfo *t = dg_safetensors_find (w->st, name);
  if (!t) {
    g_set_error (error, DG_ERROR, DG_ERROR_MISSING,
                 _ ("%s: tensor '%s' is missing — the model folder is incomplete or not a DeepGen-1.0 model"),
                 dg_safetensors_display_name (w->st), name);
    return NULL;
  }
  if (!(WEIGHT_DTYPES & DG_DTYPE_BIT (t->dtype))) {
    g_set_error (error, DG_ERROR, DG_ERROR_SHAPE, _ ("%s: tensor '%s' has dtype %s, expected a float type"), t->file,
                 name, dg_dtype_name (t->dtype));
    return NULL;
  }
  gint64 want = 1, have = 1;
  for (guint d = 1; d < ndim; d++) want *= shape[d];
  for (guint d = 1; d < t->ndim; d++) have *= t->shape[d];
  gboolean ok = t->ndim >= 1 && t->shape[0] == shape[0] && want == have;
  if (ndim == 1)
    ok = t->n_elements == shape[0];
  if (!ok) {
    g_autofree char *got = dg_shape_to_string (t->ndim, t->shape);
    g_autofree char *exp = dg_shape_to_string (ndim, shape);
    g_set_error (error, DG_ERROR, DG_ERROR_SHAPE,
                 _ ("%s: tensor '%s' has shape %s, expected %s — is this the right model folder?"), t->file, name, got,
                 exp);
    return NULL;
  }
  return t;
}

/* Host copy of a tensor in the target GPU dtype (f32, or bf16 bits). */
static gpointer
host_copy (const DgTensorInfo *t, VkcDType dtype, GError **error)
{
  gsize n = (gsize) t->n_elements;
  if (dtype == VKC_BF16) {
    guint16 *h = g_try_new (guint16, MAX (n, 1));
    if (!h || !dg_tensor_to_bf16 (t, h, error)) {
      if (!h)
        g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("out of memory reading '%s'"), t->name);
      g_free (h);
      return NULL;
    }
    return h;
  }
  float *f = g_try_new (float, MAX (n, 1));
  if (!f || !dg_tensor_to_f32 (t, f, error)) {
    if (!f)
      g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("out of memory reading '%s'"), t->name);
    g_free (f);
    return NULL;
  }
  return f;
}

static gboolean
upload (DgWeights *w, VkcTensor *out, VkcDType dtype, int ndim, const int64_t *shape, gconstpointer data,
        GError **error)
{
  if (!vkc_tensor_alloc (out, w->pool, false, dtype, ndim, shape, error) ||
      !vkc_tensor_upload (w->dev, out, data, error)) {
    dg_error_from_vkc (error);
    return FALSE;
  }
  w->uploaded_bytes += (guint64) vkc_dtype_bytes (dtype, vkc_tensor_numel (out));
  return TRUE;
}

gboolean
dg_weights_matrix (DgWeights *w, VkcTensor *out, gint64 rows, gint64 cols, GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = full_name (w, fmt, ap);
  va_end (ap);
  const gint64 shape[2] = { rows, cols };
  const DgTensorInfo *t = find_flat (w, name, 2, shape, error);
  if (!t)
    return FALSE;
  VkcDType dtype = dg_weights_matrix_dtype (w);
  g_autofree gpointer h = host_copy (t, dtype, error);
  return h && upload (w, out, dtype, 2, (const int64_t[]) { rows, cols }, h, error);
}

void
dg_weights_set_linear_format (DgWeights *w, DgWeightFormat format, DgComponent c)
{
  g_return_if_fail (format != DG_WEIGHTS_AUTO); /* the pipeline decides AUTO before loading */
  w->linear_storage = dg_plan_linear_storage (format, c);
}

VkcDType
dg_weights_linear_dtype (const DgWeights *w, gint64 in_features)
{
  if (w->linear_storage == DG_LINEAR_AS_RELEASED || !dg_plan_linear_quantizable (in_features))
    return dg_weights_matrix_dtype (w);
  return w->linear_storage == DG_LINEAR_Q4_0 ? VKC_Q4_0 : VKC_Q8_0;
}

static void round_bf16_inplace (float *x, gsize n);

static gboolean
is_block_type (VkcDType t)
{
  return vkc_dtype_block (t) > 1;
}

/* Block quantization (q8_0 or q4_0) of [rows, cols] f32 (cols a multiple of the block). Rows
 * are independent, so big matrices are split over the cores: the LLM alone has about 3 G
 * weights, several seconds on one core. */
typedef struct {
  VkcDType dtype;
  const float *src;
  guint32 *dst;
  gint64 cols, first, end; /* rows [first, end) */
} QuantSlice;

static gpointer
quantize_slice (gpointer data)
{
  const QuantSlice *q = data;
  const gint64 words = (gint64) vkc_dtype_bytes (q->dtype, q->cols) / 4;
  for (gint64 r = q->first; r < q->end; r++) vkc_quantize (q->dtype, q->src + r * q->cols, q->cols, q->dst + r * words);
  return NULL;
}

static void
quantize_rows (VkcDType dtype, const float *src, gint64 rows, gint64 cols, guint32 *dst)
{
  /* below ~1 M weights a thread costs more than it saves */
  const gint64 n_threads = CLAMP (rows * cols / (1 << 20), 1, MIN ((gint64) g_get_num_processors (), 16));
  QuantSlice slices[16];
  GThread *threads[16] = { NULL };
  for (gint64 t = 0; t < n_threads; t++) {
    slices[t] = (QuantSlice) { dtype, src, dst, cols, rows * t / n_threads, rows * (t + 1) / n_threads };
    if (t > 0)
      threads[t] = g_thread_try_new ("dg-quantize", quantize_slice, &slices[t], NULL);
    if (t > 0 && !threads[t]) /* no thread: do it here */
      quantize_slice (&slices[t]);
  }
  quantize_slice (&slices[0]);
  for (gint64 t = 1; t < n_threads; t++)
    if (threads[t])
      g_thread_join (threads[t]);
}

static gboolean
upload_linear_f32 (DgWeights *w, VkcTensor *out, gint64 rows, gint64 cols, const float *h, const char *name,
                   GError **error)
{
  VkcDType dtype = dg_weights_linear_dtype (w, cols);
  if (!is_block_type (dtype))
    return dg_weights_upload_f32 (w, out, dtype, 2, (const int64_t[]) { rows, cols }, h, error);
  guint32 *q = g_try_malloc ((gsize) vkc_dtype_bytes (dtype, rows * cols));
  if (!q) {
    g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("out of memory quantizing '%s'"), name);
    return FALSE;
  }
  quantize_rows (dtype, h, rows, cols, q);
  gboolean ok = upload (w, out, dtype, 2, (const int64_t[]) { rows, cols }, q, error);
  g_free (q);
  return ok;
}

gboolean
dg_weights_upload_linear (DgWeights *w, VkcTensor *out, gint64 out_features, gint64 in_features, const float *data,
                          GError **error)
{
  if (!is_block_type (dg_weights_linear_dtype (w, in_features)) || w->precision != DG_PRECISION_BF16)
    return upload_linear_f32 (w, out, out_features, in_features, data, "linear", error);
  /* bf16 mode: quantize the bf16 values, as dg_weights_linear does */
  const gsize n = (gsize) (out_features * in_features);
  g_autofree float *rounded = g_try_new (float, MAX (n, 1));
  if (!rounded) {
    g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("out of memory quantizing a %lld × %lld matrix"),
                 (long long) out_features, (long long) in_features);
    return FALSE;
  }
  memcpy (rounded, data, n * sizeof (float));
  round_bf16_inplace (rounded, n);
  return upload_linear_f32 (w, out, out_features, in_features, rounded, "linear", error);
}

/* A Linear weight stored as q8_0 (a converted folder): the file's 34-byte blocks (f16 d, 32 int8)
 * become the GPU's 36-byte ones (vkc_quant.h: d in the low half of word 0, then the quants in
 * order) as they are, whatever the format the loader was asked for: the file holds no other
 * values, and requantizing would only lose more. */
static gboolean
upload_stored_q8_0 (DgWeights *w, VkcTensor *out, const DgTensorInfo *t, gint64 rows, gint64 cols, GError **error)
{
  if (!dg_tensor_info_check (t, DG_DTYPE_BIT (DG_DTYPE_Q8_0), 2, (const gint64[]) { rows, cols }, error))
    return FALSE;
  const gsize n_blocks = (gsize) (rows * cols / VKC_Q8_0_BLOCK);
  guint32 *q = g_try_malloc (MAX (n_blocks, 1) * VKC_Q8_0_BLOCK_BYTES);
  if (!q) {
    g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("out of memory reading '%s'"), t->name);
    return FALSE;
  }
  DgMappedGuard g; /* the blocks are read from the mapped file */
  if (!DG_MAPPED_TRY (&g)) {
    g_free (q);
    return dg_mapped_guard_fail (&g, t->file, error);
  }
  const guint8 *src = t->data;
  for (gsize b = 0; b < n_blocks; b++, src += 2 + VKC_Q8_0_BLOCK) {
    guint32 *dst = q + b * VKC_Q8_0_BLOCK_WORDS;
    dst[0] = (guint32) src[0] | (guint32) src[1] << 8;
    memcpy (dst + 1, src + 2, VKC_Q8_0_BLOCK); /* q[4i+j] → byte j of word 1+i (little-endian) */
  }
  dg_mapped_guard_end (&g);
  gboolean ok = upload (w, out, VKC_Q8_0, 2, (const int64_t[]) { rows, cols }, q, error);
  g_free (q);
  return ok;
}

gboolean
dg_weights_linear (DgWeights *w, VkcTensor *out, gint64 out_features, gint64 in_features, GError **error,
                   const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = full_name (w, fmt, ap);
  va_end (ap);
  const DgTensorInfo *stored = dg_safetensors_find (w->st, name);
  if (stored && stored->dtype == DG_DTYPE_Q8_0)
    return upload_stored_q8_0 (w, out, stored, out_features, in_features, error);
  if (!is_block_type (dg_weights_linear_dtype (w, in_features)))
    return dg_weights_matrix (w, out, out_features, in_features, error, "%s", name + strlen (w->prefix));
  const gint64 shape[2] = { out_features, in_features };
  const DgTensorInfo *t = find_flat (w, name, 2, shape, error);
  if (!t)
    return FALSE;
  g_autofree float *h = host_copy (t, VKC_F32, error);
  if (!h)
    return FALSE;
  if (w->precision == DG_PRECISION_BF16) /* quantize what the reference would multiply with */
    round_bf16_inplace (h, (gsize) t->n_elements);
  return upload_linear_f32 (w, out, out_features, in_features, h, name, error);
}

static void
round_bf16_inplace (float *x, gsize n)
{
  for (gsize i = 0; i < n; i++) x[i] = vkc_round_bf16 (x[i]);
}

gboolean
dg_weights_vector (DgWeights *w, VkcTensor *out, gint64 n, GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = full_name (w, fmt, ap);
  va_end (ap);
  const DgTensorInfo *t = find_flat (w, name, 1, &n, error);
  if (!t)
    return FALSE;
  g_autofree float *h = host_copy (t, VKC_F32, error);
  if (!h)
    return FALSE;
  if (w->precision == DG_PRECISION_BF16)
    round_bf16_inplace (h, (gsize) n);
  return upload (w, out, VKC_F32, 1, (const int64_t[]) { n }, h, error);
}

gboolean
dg_weights_conv (DgWeights *w, VkcTensor *out, gint64 cout, gint64 cin, gint64 kh, gint64 kw, GError **error,
                 const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = full_name (w, fmt, ap);
  va_end (ap);
  const gint64 shape[4] = { cout, cin, kh, kw };
  const DgTensorInfo *t = dg_safetensors_expect (w->st, name, WEIGHT_DTYPES, 4, shape, error);
  if (!t)
    return FALSE;
  VkcDType dtype = dg_weights_matrix_dtype (w);
  g_autofree gpointer h = host_copy (t, dtype, error);
  if (!h)
    return FALSE;
  gsize es = vkc_dtype_size (dtype);
  g_autofree gpointer p = g_try_malloc ((gsize) t->n_elements * es);
  if (!p) {
    g_set_error (error, DG_ERROR, DG_ERROR_OOM, _ ("out of memory reading '%s'"), name);
    return FALSE;
  }
  vkc_conv_weight_from_torch (p, h, es, cout, cin, kh, kw);
  return upload (w, out, dtype, 4, (const int64_t[]) { cout, kh, kw, cin }, p, error);
}

float *
dg_weights_host (DgWeights *w, guint ndim, const gint64 *shape, GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = full_name (w, fmt, ap);
  va_end (ap);
  const DgTensorInfo *t = dg_safetensors_expect (w->st, name, WEIGHT_DTYPES, ndim, shape, error);
  if (!t)
    return NULL;
  float *h = host_copy (t, VKC_F32, error);
  if (h && w->precision == DG_PRECISION_BF16)
    round_bf16_inplace (h, (gsize) t->n_elements);
  return h;
}

gboolean
dg_weights_has (DgWeights *w, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = full_name (w, fmt, ap);
  va_end (ap);
  return dg_safetensors_find (w->st, name) != NULL;
}

gboolean
dg_weights_upload_f32 (DgWeights *w, VkcTensor *out, VkcDType dtype, int ndim, const int64_t *shape, const float *data,
                       GError **error)
{
  gsize n = 1;
  for (int d = 0; d < ndim; d++) n *= (gsize) shape[d];
  if (dtype == VKC_F32)
    return upload (w, out, dtype, ndim, shape, data, error);
  g_autofree guint16 *h = g_new (guint16, MAX (n, 1));
  for (gsize i = 0; i < n; i++) h[i] = dtype == VKC_BF16 ? vkc_f32_to_bf16 (data[i]) : vkc_f32_to_f16 (data[i]);
  return upload (w, out, dtype, ndim, shape, h, error);
}

/* ---- activations ---------------------------------------------------------------------- */

DgArena *
dg_arena_new (VkcDevice *dev, const char *label)
{
  DgArena *a = g_new0 (DgArena, 1);
  a->dev = dev;
  a->pool = vkc_pool_new (dev, VKC_POOL_DEVICE, 0, label);
  return a;
}

void
dg_arena_free (DgArena *a)
{
  if (!a)
    return;
  vkc_pool_free (a->pool);
  g_clear_error (&a->error);
  g_free (a);
}

void
dg_arena_reset (DgArena *a)
{
  vkc_pool_arena_reset (a->pool);
}

void
dg_arena_expect (DgArena *a, guint64 bytes)
{
  vkc_pool_expect (a->pool, bytes);
}

gboolean
dg_arena_tensor (DgArena *a, VkcTensor *out, VkcDType dtype, int ndim, const int64_t *shape)
{
  if (a->error) {
    memset (out, 0, sizeof *out);
    return FALSE;
  }
  if (!vkc_tensor_alloc (out, a->pool, true, dtype, ndim, shape, &a->error)) {
    dg_error_from_vkc (&a->error);
    return FALSE;
  }
  return TRUE;
}

gboolean
dg_arena_upload (DgArena *a, VkcTensor *out, VkcDType dtype, int ndim, const int64_t *shape, const void *data)
{
  if (!dg_arena_tensor (a, out, dtype, ndim, shape))
    return FALSE;
  if (!vkc_tensor_upload (a->dev, out, data, &a->error)) {
    dg_error_from_vkc (&a->error);
    return FALSE;
  }
  return TRUE;
}

gboolean
dg_arena_check (DgArena *a, GError **error)
{
  if (!a->error)
    return TRUE;
  g_propagate_error (error, a->error);
  a->error = NULL;
  return FALSE;
}

gboolean
dg_arena_failed (const DgArena *a)
{
  return a->error != NULL;
}

float *
dg_tensor_download_f32 (VkcDevice *dev, const VkcTensor *t, GError **error)
{
  gsize n = (gsize) vkc_tensor_numel (t);
  VkDeviceSize span = vkc_tensor_span_bytes (t);
  g_autofree guint8 *raw = g_malloc (MAX (span, 4));
  if (span && !vkc_download (dev, raw, t->buffer, t->offset, span, error)) {
    dg_error_from_vkc (error);
    return NULL;
  }
  if (is_block_type (t->dtype)) { /* always contiguous rows of whole blocks (vkc.h) */
    float *out = g_new (float, MAX (n, 1));
    vkc_dequantize (t->dtype, (const guint32 *) raw, (int64_t) n, out);
    return out;
  }
  gsize es = vkc_dtype_size (t->dtype);
  float *out = g_new (float, MAX (n, 1));
  int64_t idx[VKC_MAX_DIMS] = { 0 };
  for (gsize i = 0; i < n; i++) {
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
    const guint8 *p = raw + (gsize) off * es;
    if (t->dtype == VKC_F32) {
      memcpy (&out[i], p, 4);
    } else {
      guint16 h;
      memcpy (&h, p, 2);
      out[i] = t->dtype == VKC_BF16 ? vkc_bf16_to_f32 (h) : vkc_f16_to_f32 (h);
    }
    for (int d = t->ndim - 1; d >= 0; d--) {
      if (++idx[d] < t->shape[d])
        break;
      idx[d] = 0;
    }
  }
  return out;
}
