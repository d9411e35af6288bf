/* Self-check results of the fast paths (vkc.h, "Fast-path self-checks"): in memory per device,
 * and in a small text file per device and driver version in the user's cache folder, so that a
 * driver that miscomputes a fast kernel costs one check and one warning, not one per run. */
#include "vkc_internal.h"
#include <string.h>

const char *
vkc_fastpath_cache_file (VkcDevice *dev)
{
  if (!dev->fastpath_path) {
    const VkcDeviceInfo *i = &dev->info;
    g_autofree char *name =
        g_strdup_printf ("selfcheck-%04x-%04x-%08x.txt", i->vendor_id, i->device_id, i->driver_version);
    dev->fastpath_path = g_build_filename (g_get_user_cache_dir (), "deepgen", name, NULL);
  }
  return dev->fastpath_path;
}

static void
load (VkcDevice *dev)
{
  if (dev->fastpaths_loaded)
    return;
  dev->fastpaths_loaded = true;
  if (!dev->fastpaths)
    dev->fastpaths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *text = NULL;
  if (!g_file_get_contents (vkc_fastpath_cache_file (dev), &text, NULL, NULL))
    return;
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (int i = 0; lines[i]; i++) {
    g_auto (GStrv) f = g_strsplit (g_strstrip (lines[i]), " ", 2);
    if (!f[0] || !f[1] || !*f[0])
      continue;
    VkcFastpathState st = strcmp (f[1], "ok") == 0    ? VKC_FASTPATH_OK
                          : strcmp (f[1], "bad") == 0 ? VKC_FASTPATH_BAD
                                                      : VKC_FASTPATH_UNKNOWN;
    if (st != VKC_FASTPATH_UNKNOWN)
      g_hash_table_insert (dev->fastpaths, g_strdup (f[0]), GINT_TO_POINTER (st));
  }
}

VkcFastpathState
vkc_fastpath_state (VkcDevice *dev, const char *kernel)
{
  load (dev);
  return (VkcFastpathState) GPOINTER_TO_INT (g_hash_table_lookup (dev->fastpaths, kernel));
}

bool
vkc_fastpath_passed (VkcDevice *dev, const char *name, const char **why)
{
  const VkcFastpathState st = vkc_fastpath_state (dev, name);
  if (st != VKC_FASTPATH_OK)
    *why = st == VKC_FASTPATH_BAD ? "it failed its self-check on this driver" : "its self-check could not run";
  return st == VKC_FASTPATH_OK;
}

void
vkc_fastpath_record (VkcDevice *dev, const char *name, bool ok, const char *detail)
{
  load (dev);
  g_hash_table_insert (dev->fastpaths, g_strdup (name), GINT_TO_POINTER (ok ? VKC_FASTPATH_OK : VKC_FASTPATH_BAD));
  const char *path = vkc_fastpath_cache_file (dev);
  GString *s = g_string_new (NULL);
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, dev->fastpaths);
  while (g_hash_table_iter_next (&it, &k, &v))
    if (GPOINTER_TO_INT (v) == VKC_FASTPATH_OK || GPOINTER_TO_INT (v) == VKC_FASTPATH_BAD)
      g_string_append_printf (s, "%s %s\n", (const char *) k, GPOINTER_TO_INT (v) == VKC_FASTPATH_OK ? "ok" : "bad");
  g_autofree char *dir = g_path_get_dirname (path);
  g_mkdir_with_parents (dir, 0700);
  /* Not being able to save only means the check runs again next time. */
  g_file_set_contents (path, s->str, (gssize) s->len, NULL);
  g_string_free (s, TRUE);
  if (!ok)
    g_warning ("vkc: the fast kernel %s computes wrong results on %s (%s %s): %s. It is switched off "
               "for this device and driver version (remembered in %s; delete that file to test again).",
               name, dev->info.name, dev->info.driver_name, dev->info.driver_info, detail, path);
}

void
vkc_fastpath_not_run (VkcDevice *dev, const char *name)
{
  load (dev);
  g_hash_table_insert (dev->fastpaths, g_strdup (name), GINT_TO_POINTER (VKC_FASTPATH_NOT_RUN));
}

void
vkc_fastpaths_free (VkcDevice *dev)
{
  if (dev->fastpaths)
    g_hash_table_unref (dev->fastpaths);
  g_free (dev->fastpath_path);
}
