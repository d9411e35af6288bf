/* Element types of weight files and exact conversions between the float formats.
 *
 * The model keeps bf16 weights as bf16 (DESIGN.md §3) and widens them only where a test or a CPU
 * reference needs fp32; the fp32 connector is narrowed to bf16 with the same rounding PyTorch
 * uses (round to nearest, ties to even), so that our bf16 mode sees the very bits the reference
 * sees after `.to(torch.bfloat16)`. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  DG_DTYPE_F32,
  DG_DTYPE_F16,
  DG_DTYPE_BF16,
  DG_DTYPE_F64,
  DG_DTYPE_I64,
  DG_DTYPE_I32,
  DG_DTYPE_I16,
  DG_DTYPE_I8,
  DG_DTYPE_U8,
  DG_DTYPE_BOOL,
  DG_DTYPE_COUNT
} DgDType;

/* A set of dtypes, for "any of these is acceptable" checks. */
#define DG_DTYPE_BIT(t) (1u << (t))
#define DG_DTYPES_FLOAT (DG_DTYPE_BIT (DG_DTYPE_F32) | DG_DTYPE_BIT (DG_DTYPE_F16) | DG_DTYPE_BIT (DG_DTYPE_BF16))

/* Bytes per element (BOOL is one byte, as in safetensors). */
gsize       dg_dtype_size      (DgDType t);
/* The safetensors spelling ("F32", "BF16", ...). */
const char *dg_dtype_name      (DgDType t);
/* Parses the safetensors spelling; FALSE for anything else (including lower case). */
gboolean    dg_dtype_from_name (const char *name, DgDType *out);

/* Exact widenings. f16: subnormals, ±inf and NaN (payload and sign kept) are handled. */
static inline float
dg_bf16_to_f32 (guint16 h)
{
  union { guint32 u; float f; } v = { .u = (guint32) h << 16 };
  return v.f;
}
float   dg_f16_to_f32 (guint16 h);

/* Narrowings, round to nearest even; overflow gives ±inf, NaN stays a (quiet) NaN of the same sign. */
guint16 dg_f32_to_bf16 (float f);
guint16 dg_f32_to_f16  (float f);

/* Array versions. Sources may be unaligned (weights inside a mapped file are only as aligned
 * as the writer made them), so they are read byte-wise; n is an element count. */
void dg_bf16_to_f32_array (const void *src, float *dst, gsize n);
void dg_f16_to_f32_array  (const void *src, float *dst, gsize n);
void dg_f32_to_bf16_array (const void *src, guint16 *dst, gsize n);
void dg_f32_to_f16_array  (const void *src, guint16 *dst, gsize n);

G_END_DECLS
