#include "dtype.h"

#include <string.h>

#include "vkc_half.h"

static const struct {
  const char *name;
  gsize size, block;
} dtype_table[DG_DTYPE_COUNT] = {
  [DG_DTYPE_F32] = { "F32", 4, 1 },   [DG_DTYPE_F16] = { "F16", 2, 1 },     [DG_DTYPE_BF16] = { "BF16", 2, 1 },
  [DG_DTYPE_F64] = { "F64", 8, 1 },   [DG_DTYPE_I64] = { "I64", 8, 1 },     [DG_DTYPE_I32] = { "I32", 4, 1 },
  [DG_DTYPE_I16] = { "I16", 2, 1 },   [DG_DTYPE_I8] = { "I8", 1, 1 },       [DG_DTYPE_U8] = { "U8", 1, 1 },
  [DG_DTYPE_BOOL] = { "BOOL", 1, 1 }, [DG_DTYPE_Q8_0] = { "Q8_0", 34, 32 },
};

gsize
dg_dtype_size (DgDType t)
{
  g_return_val_if_fail ((guint) t < DG_DTYPE_COUNT, 0);
  return dtype_table[t].size;
}

gsize
dg_dtype_block (DgDType t)
{
  g_return_val_if_fail ((guint) t < DG_DTYPE_COUNT, 1);
  return dtype_table[t].block;
}

const char *
dg_dtype_name (DgDType t)
{
  g_return_val_if_fail ((guint) t < DG_DTYPE_COUNT, "?");
  return dtype_table[t].name;
}

gboolean
dg_dtype_from_name (const char *name, DgDType *out)
{
  for (guint i = 0; i < DG_DTYPE_COUNT; i++)
    if (name && dtype_table[i].block == 1 && strcmp (name, dtype_table[i].name) == 0) {
      *out = (DgDType) i;
      return TRUE;
    }
  return FALSE;
}

/* The scalar conversions are the runtime's (vkcompute/vkc_half.h, header-only), so that the
 * host and the GPU upload path round identically. */
float
dg_f16_to_f32 (guint16 h)
{
  return vkc_f16_to_f32 (h);
}
guint16
dg_f32_to_bf16 (float f)
{
  return vkc_f32_to_bf16 (f);
}
guint16
dg_f32_to_f16 (float f)
{
  return vkc_f32_to_f16 (f);
}

static inline guint16
load_u16 (const guint8 *p)
{
  return (guint16) (p[0] | (p[1] << 8)); /* safetensors is little-endian by definition */
}

void
dg_bf16_to_f32_array (const void *src, float *dst, gsize n)
{
  const guint8 *s = src;
  for (gsize i = 0; i < n; i++) dst[i] = dg_bf16_to_f32 (load_u16 (s + 2 * i));
}

void
dg_f16_to_f32_array (const void *src, float *dst, gsize n)
{
  const guint8 *s = src;
  for (gsize i = 0; i < n; i++) dst[i] = dg_f16_to_f32 (load_u16 (s + 2 * i));
}

void
dg_f32_to_bf16_array (const void *src, guint16 *dst, gsize n)
{
  const guint8 *s = src;
  for (gsize i = 0; i < n; i++) {
    float f;
    memcpy (&f, s + 4 * i, 4);
    dst[i] = dg_f32_to_bf16 (f);
  }
}

void
dg_f32_to_f16_array (const void *src, guint16 *dst, gsize n)
{
  const guint8 *s = src;
  for (gsize i = 0; i < n; i++) {
    float f;
    memcpy (&f, s + 4 * i, 4);
    dst[i] = dg_f32_to_f16 (f);
  }
}

void
dg_q8_0_to_f32_array (const void *src, float *dst, gsize n)
{
  const guint8 *s = src;
  for (gsize b = 0; b < n / 32; b++, s += 34) {
    const float d = dg_f16_to_f32 (load_u16 (s));
    for (gsize i = 0; i < 32; i++) dst[b * 32 + i] = d * (float) (gint8) s[2 + i];
  }
}
