/* The parts of the block-type tests (test_linear_q8.c, test_linear_q4.c) that do not depend on
 * the format, run once per format from a table of what does: the quantizer against a plain
 * transcription of ggml's rule on random data and its round-trip bound, its speed, the tensor
 * rules of a block type, and linear / matmul y = x·Wᵀ + b with such W against a
 * double-precision C reference (the same case matrix for every format).
 *
 * Each test file describes its format in a QuantFormat, adds its hand-computed blocks (the
 * cases that only make sense for one format) and calls quant_test_add. */
#pragma once
#include "op_test.h"

typedef struct {
  VkcDType dtype;
  const char *path; /* test path prefix, e.g. "/linear_q8" */
  int block_bytes;  /* bytes and 32-bit words per block of 32 values, as the format */
  int block_words;  /* defines them (literals: the tests check vkc_dtype_bytes with them) */
  /* The quant of value j of a block as stored (q8_0: −127..127, q4_0: 0..15). */
  int (*quant_of) (const uint32_t *blk, int j);
  /* The value quant q stands for at stored scale dh: what the dequantizer must give. */
  float (*value) (float dh, int q);
  /* ggml's quantizer for one block of finite values, written out from its rule: the scale's
   * half bits and the 32 quants. */
  void (*reference) (const float *x, uint16_t *d_bits, int *q);
  /* The largest |x[j] − deq| the format allows for value j of block x with stored scale dh. */
  double (*bound) (const float *x, int j, double dh);
} QuantFormat;

/* Adds the shared tests under f->path (roundtrip, speed, tensor, tensor/refusals, gemv,
 * tiled, split); f must outlive g_test_run. */
void quant_test_add (const QuantFormat *f);
