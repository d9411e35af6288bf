/* Reading golden tensors (tests/data/golden, made by tests/golden/make_golden.py from the
 * canonical PyTorch code) and comparing GPU results with them. */
#pragma once
#include <glib.h>
#include "safetensors.h"
#include "vkc.h"
#include "weights.h"

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

/* The fixture of the component tests: a device (validation from the environment, no pipeline
 * cache), an activation arena, and the tensors a tap kept. Declare it first in a test
 * (g_autoptr) so it is freed last — after every command buffer and weight pool — and then
 * fails the test if the validation layer reported anything. */
typedef struct {
  VkcDevice *dev;
  DgArena *arena;
  GHashTable *kept; /* name → VkcTensor* (arena copies made by golden_keep_tap) */
} GoldenFixture;

VkcDevice *golden_device_new (void);
GoldenFixture *golden_fixture_new (void);
void golden_fixture_free (GoldenFixture *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GoldenFixture, golden_fixture_free)
/* A tap (component observers have this signature): keeps an arena copy of every tensor shown. */
void golden_keep_tap (VkcCmd *cmd, const char *name, const VkcTensor *t, gpointer fixture);

/* Checks the arena's sticky error, submits and waits; *ms (may be NULL) gets the wall time. */
void golden_submit (VkcCmd *cmd, DgArena *arena, double *ms);
