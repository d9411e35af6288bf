/* Virtual model folders (vfolder.h). */
#include "vfolder.h"

#include "dg_error.h"

static const DgVirtualFolders *provider; /* set once, read without a lock after */
G_LOCK_DEFINE_STATIC (provider);

void
dg_vfolder_register (const DgVirtualFolders *p)
{
  g_return_if_fail (p && p->prefix && p->read_text && p->open_weights);
  G_LOCK (provider);
  g_warn_if_fail (!provider || provider == p);
  provider = p;
  G_UNLOCK (provider);
}

static const DgVirtualFolders *
current (void)
{
  G_LOCK (provider);
  const DgVirtualFolders *p = provider;
  G_UNLOCK (provider);
  return p;
}

gboolean
dg_vfolder_is_virtual (const char *path)
{
  const DgVirtualFolders *p = current ();
  return p && path && g_str_has_prefix (path, p->prefix);
}

char *
dg_vfolder_read_text (const char *path, GError **error)
{
  g_return_val_if_fail (dg_vfolder_is_virtual (path), NULL);
  return current ()->read_text (path, error);
}

DgSafetensors *
dg_vfolder_open_weights (const char *path, GError **error)
{
  g_return_val_if_fail (dg_vfolder_is_virtual (path), NULL);
  return current ()->open_weights (path, error);
}
