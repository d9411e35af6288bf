#include "mapped_guard.h"

#include <signal.h>
#include <string.h>

#include "dg_error.h"
#include "dg_i18n.h"

static __thread DgMappedGuard *innermost;
static struct sigaction previous; /* the SIGBUS action before ours */

static void
on_sigbus (int sig, siginfo_t *info, void *context)
{
  DgMappedGuard *g = innermost;
  if (g)
    siglongjmp (g->jump, 1);
  /* Not a guarded read: what would have happened without us. */
  if (previous.sa_flags & SA_SIGINFO && previous.sa_sigaction)
    previous.sa_sigaction (sig, info, context);
  else if (previous.sa_handler != SIG_IGN && previous.sa_handler != SIG_DFL && previous.sa_handler)
    previous.sa_handler (sig);
  else {
    signal (sig, SIG_DFL);
    raise (sig);
  }
}

static gpointer
install_handler (gpointer unused)
{
  (void) unused;
  struct sigaction sa;
  memset (&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGBUS, &sa, &previous);
  return NULL;
}

void
dg_mapped_guard_begin (DgMappedGuard *g)
{
  static GOnce once = G_ONCE_INIT;
  g_once (&once, install_handler, NULL);
  g->outer = innermost;
  innermost = g;
}

void
dg_mapped_guard_end (DgMappedGuard *g)
{
  g_assert (innermost == g);
  innermost = g->outer;
}

gboolean
dg_mapped_guard_fail (DgMappedGuard *g, const char *file, GError **error)
{
  dg_mapped_guard_end (g);
  g_set_error (error, DG_ERROR, DG_ERROR_IO,
               _ ("The model file %s changed or was cut short while DeepGen was reading it (another "
                  "download or copy into the model folder?). Let that finish, then run again."),
               file ? file : "?");
  return FALSE;
}
