/* Reading mapped weight files without dying when they change underneath.
 *
 * Weights are used in place from a read-only mapping (safetensors.h). If the file is truncated or
 * rewritten in place after it was mapped — a second download into the same folder, a disk that
 * went away — touching a page past its new end raises SIGBUS, which would kill the process (in
 * GIMP, the plug-in). Every read of mapped tensor data runs inside a guard: a SIGBUS there jumps
 * back to the guard, which reports DG_ERROR_IO ("the model file … changed while it was being
 * read"), and the process lives on. A SIGBUS anywhere else is passed on as before (to a handler
 * that was installed before ours, or the default action).
 *
 *   DgMappedGuard g;
 *   if (DG_MAPPED_TRY (&g)) {
 *     … read info->data …
 *     dg_mapped_guard_end (&g);
 *   } else
 *     return dg_mapped_guard_fail (&g, info->file, error);
 *
 * Guards nest and are per thread. */
#pragma once

#include <glib.h>
#include <setjmp.h>

G_BEGIN_DECLS

typedef struct DgMappedGuard DgMappedGuard;
struct DgMappedGuard {
  sigjmp_buf jump;
  DgMappedGuard *outer;
};

void dg_mapped_guard_begin (DgMappedGuard *g);
/* Ends a guard that ran to its end. */
void dg_mapped_guard_end (DgMappedGuard *g);
/* Ends a guard whose reads faulted and sets the error naming @file; returns FALSE. */
gboolean dg_mapped_guard_fail (DgMappedGuard *g, const char *file, GError **error);

/* TRUE on entry; FALSE when a read inside faulted (sigsetjmp must run in the caller's frame). */
#define DG_MAPPED_TRY(g) (dg_mapped_guard_begin (g), sigsetjmp ((g)->jump, 1) == 0)

G_END_DECLS
