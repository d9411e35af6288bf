/* What the weight-file fuzz targets (fuzz_safetensors.c, fuzz_gguf.c) check on every input: the
 * invariants of an opened tensor set, whatever format it came from.
 *
 * An input must either be refused with a DG_ERROR or yield tensors whose every byte lies inside
 * the input: the check reads all of them (so ASan sees any out-of-bounds claim), converts the
 * small float and q8_0 ones, and aborts on a violated invariant so that libFuzzer records it as
 * a crash. */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "dg_error.h"
#include "safetensors.h"

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf (stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      abort ();                                                                     \
    }                                                                               \
  } while (0)

/* @st and @error: what the reader returned for @data; @header_min: the smallest offset of tensor
 * data in the format (8 for safetensors' length prefix, 24 for GGUF's fixed header). */
static inline void
check_tensor_set (const DgSafetensors *st, const GError *error, const uint8_t *data, size_t size, size_t header_min)
{
  if (st == NULL) {
    CHECK (error != NULL && error->domain == DG_ERROR && error->message[0] != '\0');
    return;
  }
  CHECK (error == NULL);

  const uint8_t *end = data + size;
  const uint8_t *prev_end = NULL;
  for (guint i = 0; i < dg_safetensors_n_tensors (st); i++) {
    const DgTensorInfo *t = dg_safetensors_tensor (st, i);
    CHECK (dg_safetensors_find (st, t->name) == t);
    CHECK (t->ndim <= DG_TENSOR_MAX_DIMS);
    gint64 n = 1;
    for (guint d = 0; d < t->ndim; d++) {
      CHECK (t->shape[d] >= 0);
      n *= t->shape[d]; /* cannot overflow: the reader refused such shapes */
    }
    CHECK (n == t->n_elements);
    const guint64 block = dg_dtype_block (t->dtype); /* 1 for the plain types */
    CHECK ((guint64) n % block == 0);
    CHECK ((guint64) t->nbytes == (guint64) n / block * dg_dtype_size (t->dtype));
    const uint8_t *p = t->data;
    CHECK (p >= data + header_min && p <= end && t->nbytes <= (size_t) (end - p));
    /* Storage order is by offset, and non-empty tensors do not overlap. */
    if (t->nbytes > 0) {
      CHECK (prev_end == NULL || p >= prev_end);
      prev_end = p + t->nbytes;
    }

    volatile uint8_t sink = 0;
    for (size_t b = 0; b < t->nbytes; b++) sink ^= p[b];
    (void) sink;

    if ((DG_DTYPES_WEIGHT & DG_DTYPE_BIT (t->dtype)) && t->n_elements <= 4096) {
      float f[4096];
      guint16 h[4096];
      CHECK (dg_tensor_to_f32 (t, f, NULL));
      CHECK (dg_tensor_to_bf16 (t, h, NULL));
    }
  }
}
