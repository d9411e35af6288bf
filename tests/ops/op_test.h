/* Shared scaffolding for the op tests: a validated device, random inputs, host⇄device
 * tensors in any dtype, and the NMSE check against a plain C reference.
 *
 * Every op test creates its device through op_test_new(), which turns the Khronos validation
 * layer (with synchronization validation) on; op_test_free() fails the test if the layer
 * reported anything. References are computed on the host in double precision from the SAME
 * (dtype-rounded) inputs the GPU sees, so the NMSE limit only has to cover the GPU's fp32
 * arithmetic and, where the op stores 16-bit outputs, that rounding. */
#pragma once
#include <glib.h>
#include "vkc.h"
#include "vkc_half.h"
#include "vkc_quant.h"

typedef struct {
  VkcDevice *dev;
  VkcPool *pool; /* device memory; tensors from op_tensor_* live in its arena */
} OpTest;

OpTest *op_test_new (void);
void op_test_free (OpTest *t);

/* n values ~ N(0, scale²) from a seeded generator (deterministic across runs). */
float *op_randn (size_t n, guint32 seed, float scale);
/* n values uniform in [lo, hi). */
float *op_randu (size_t n, guint32 seed, float lo, float hi);
/* Round host values in place to what `dtype` can hold (identity for f32; for a block type,
 * q8_0 or q4_0, the values after quantizing and dequantizing each block of 32, so
 * n % 32 == 0). */
void op_round_to (float *x, size_t n, VkcDType dtype);

/* A contiguous device tensor in the test arena, filled from f32 host data converted to
 * `dtype` (quantized for a block type; data may be NULL: contents undefined). */
VkcTensor op_tensor (OpTest *t, VkcDType dtype, int ndim, const int64_t *shape, const float *data);
/* Download any contiguous f32/f16/bf16/q8_0/q4_0 tensor as f32 (g_free the result). */
float *op_download (OpTest *t, const VkcTensor *x);

VkcCmd *op_cmd (OpTest *t);
/* Submit, wait, free. */
void op_run (OpTest *t, VkcCmd *cmd);

/* Normalised mean squared error Σ(ref−got)² / Σref² (ref all zero: Σ(ref−got)²). */
double op_nmse (const double *ref, const float *got, size_t n);
/* Fails the test with a message naming `what` when nmse > limit or any value is not finite. */
void op_check (const char *what, const double *ref, const float *got, size_t n, double limit);

/* ---- fast-path self-check tests (test_*_selfcheck.c) ---- */

/* Makes a temporary folder and points XDG_CACHE_HOME at it, so that self-check verdicts start
 * unknown and stay out of the user's cache; call before anything asks GLib for the cache folder
 * (it keeps the first answer). Returns the folder; op_temp_cache_remove deletes it. */
const char *op_temp_cache_begin (const char *name_template);
void op_temp_cache_remove (void);
/* y = x·Wᵀ through AUTO with f16 W (M 64, K 100, N 40), checked against the fp32 bound
 * 30·u²·K: a kernel that drops a K slice, or that rounds x to fp16, fails it. */
void op_run_linear_f16_fp32_bound (OpTest *t, const char *what);
