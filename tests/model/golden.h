/* Reading golden tensors (tests/data/golden, made by tests/golden/make_golden.py from the
 * canonical PyTorch code) and comparing GPU results with them. */
#pragma once
#include <glib.h>
#include "safetensors.h"
#include "vkc.h"

/* Path of a file under tests/data ($DEEPGEN_TEST_DATA, set by ctest). */
char *golden_data_path (const char *relative);

/* Opens tests/data/<relative> (a safetensors file or a component folder); fails the test on error. */
DgSafetensors *golden_open (const char *relative);

/* A golden float tensor (any float dtype) widened to f32; shape into shape[8]/ndim when not NULL.
 * Fails the test when absent. */
float *golden_f32 (DgSafetensors *st, const char *name, gint64 *shape, guint *ndim);
/* An integer tensor (I64/I32/U8/BOOL) as gint64. */
gint64 *golden_i64 (DgSafetensors *st, const char *name, gint64 *shape, guint *ndim);
gboolean golden_has (DgSafetensors *st, const char *name);

/* NMSE of got vs expected; fails the test with the worst element when above limit. */
double golden_compare (const char *what, const float *expected, const float *got, gsize n, double limit);

/* Layout helpers: NCHW (PyTorch) ⇄ NHWC (ours), per batch. */
float *golden_nchw_to_nhwc (const float *x, gint64 b, gint64 c, gint64 h, gint64 w);
float *golden_nhwc_to_nchw (const float *x, gint64 b, gint64 h, gint64 w, gint64 c);
