/* Small self-contained jobs on the tiny model for the reliability tests (test_faults.c,
 * test_soak.c): a synthetic source image and disc mask, a request of each kind. */
#pragma once

#include "deepgen.h"

typedef struct {
  DgImage *source; /* a gradient, RGB */
  DgMask *mask;    /* a disc in the middle */
  const DgImage *images[1];
  DgRequest request; /* 2 steps, seed 7; generate at the source's size */
} TinyJob;

void tiny_job_init (TinyJob *job, DgJob kind, int width, int height);
void tiny_job_clear (TinyJob *job);
/* tests/data/tiny-deepgen opened with these options; asserts on failure. */
DgModel *tiny_jobs_open_model (DgEngine *engine, DgPrecision precision, DgWeightFormat weights);
/* Same size, channels and bytes. */
void tiny_jobs_assert_same (const DgImage *a, const DgImage *b);
