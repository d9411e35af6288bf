/* Binding the "deepgen" gettext domain (dg_task.h). */
#include "dg_task.h"

#include <locale.h>

#include "dg_gettext.h"

#ifndef DEEPGEN_LOCALEDIR
#define DEEPGEN_LOCALEDIR "/usr/local/share/locale"
#endif

/* Where the catalogues are, first match wins:
 *  1. $DEEPGEN_LOCALEDIR (tests run from the build tree);
 *  2. locale/ beside the program: GIMP 3 plug-ins carry their catalogues in their own folder
 *     (plug-ins/deepgen-gimp/locale, the layout GimpPlugIn.set_i18n expects), and a per-user
 *     install copies that folder as it is;
 *  3. the configured <prefix>/share/locale. */
const char *
dg_i18n_localedir (void)
{
  static char *dir;
  static gsize done;
  if (g_once_init_enter (&done)) {
    const char *env = g_getenv ("DEEPGEN_LOCALEDIR");
    if (env && *env)
      dir = g_strdup (env);
    else {
      g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
      g_autofree char *exedir = exe ? g_path_get_dirname (exe) : NULL;
      g_autofree char *beside = exedir ? g_build_filename (exedir, "locale", NULL) : NULL;
      dir =
          beside && g_file_test (beside, G_FILE_TEST_IS_DIR) ? g_steal_pointer (&beside) : g_strdup (DEEPGEN_LOCALEDIR);
    }
    g_once_init_leave (&done, 1);
  }
  return dir;
}

void
dg_i18n_init (void)
{
  static gsize done;
  if (g_once_init_enter (&done)) {
    bindtextdomain (GETTEXT_PACKAGE, dg_i18n_localedir ());
    bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
    g_once_init_leave (&done, 1);
  }
}
