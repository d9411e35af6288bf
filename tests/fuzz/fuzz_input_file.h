/* libFuzzer helpers for readers that take a path: the input bytes written to a file in a
 * private temporary folder (made once per process, removed at exit), and criticals made fatal so
 * that a g_return_if_fail hit by malformed input counts as a crash. */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static char *fuzz_dir;

static void
fuzz_dir_remove (void)
{
  if (!fuzz_dir)
    return;
  GDir *d = g_dir_open (fuzz_dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d))) {
    g_autofree char *p = g_build_filename (fuzz_dir, name, NULL);
    g_unlink (p);
  }
  if (d)
    g_dir_close (d);
  g_rmdir (fuzz_dir);
}

/* Writes @data to <private folder>/@name and returns its path (owned by the caller). */
static char *
fuzz_write_file (const char *name, const void *data, size_t size)
{
  if (!fuzz_dir) {
    fuzz_dir = g_dir_make_tmp ("deepgen-fuzz-XXXXXX", NULL);
    if (!fuzz_dir)
      abort ();
    atexit (fuzz_dir_remove);
    g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_LEVEL_ERROR);
  }
  char *path = g_build_filename (fuzz_dir, name, NULL);
  if (!g_file_set_contents (path, data, (gssize) size, NULL))
    abort ();
  return path;
}

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf (stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      abort ();                                                                     \
    }                                                                               \
  } while (0)
