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
  DG_DTYPE_Q8_0, /* ggml's q8_0 (GGUF files only): blocks of 32 values, an f16 scale d then 32 int8 q,
                  * value = d·q; 34 bytes a block, the blocks along the innermost dimension */
  DG_DTYPE_COUNT
} DgDType;

/* A set of dtypes, for "any of these is acceptable" checks. */
#define DG_DTYPE_BIT(t) (1u << (t))
#define DG_DTYPES_FLOAT (DG_DTYPE_BIT (DG_DTYPE_F32) | DG_DTYPE_BIT (DG_DTYPE_F16) | DG_DTYPE_BIT (DG_DTYPE_BF16))
/* What a weight may be stored as: a float type, or Q8_0 (a folder written by `deepgen convert`);
 * dg_tensor_to_f32 / dg_tensor_to_bf16 read all of them. Code that reads the raw data itself
 * (an embedding row, a table crop) accepts DG_DTYPES_FLOAT only. */
#define DG_DTYPES_WEIGHT (DG_DTYPES_FLOAT | DG_DTYPE_BIT (DG_DTYPE_Q8_0))

/* Bytes per element (BOOL is one byte, as in safetensors); for a block type (Q8_0), bytes per
 * block of dg_dtype_block elements. */
gsize dg_dtype_size (DgDType t);
/* Elements per block: 32 for Q8_0, 1 for the others. */
gsize dg_dtype_block (DgDType t);
/* The safetensors spelling ("F32", "BF16", ...; "Q8_0", which no safetensors file has). */
const char *dg_dtype_name (DgDType t);
/* Parses the safetensors spelling; FALSE for anything else (including lower case and Q8_0, which
 * is not a safetensors dtype). */
gboolean dg_dtype_from_name (const char *name, DgDType *out);

/* Exact widenings. f16: subnormals, ±inf and NaN (payload and sign kept) are handled. */
static inline float
dg_bf16_to_f32 (guint16 h)
{
  union {
    guint32 u;
    float f;
  } v = { .u = (guint32) h << 16 };
  return v.f;
}
float dg_f16_to_f32 (guint16 h);

/* Narrowings, round to nearest even; overflow gives ±inf, NaN stays a (quiet) NaN of the same sign. */
guint16 dg_f32_to_bf16 (float f);
guint16 dg_f32_to_f16 (float f);

/* Array versions. Sources may be unaligned (weights inside a mapped file are only as aligned
 * as the writer made them), so they are read byte-wise; n is an element count. */
void dg_bf16_to_f32_array (const void *src, float *dst, gsize n);
void dg_f16_to_f32_array (const void *src, float *dst, gsize n);
void dg_f32_to_bf16_array (const void *src, guint16 *dst, gsize n);
void dg_f32_to_f16_array (const void *src, guint16 *dst, gsize n);
/* n values (n % 32 == 0) from n/32 q8_0 blocks of 34 bytes: d·q, exact in fp32 (the values
 * vkc_dequantize_q8_0 gives for the same blocks). */
void dg_q8_0_to_f32_array (const void *src, float *dst, gsize n);

G_END_DECLS
