/* Binding the "deepgen" gettext domain for the command line (cli_i18n.h). The same lookup as
 * ui/dg_i18n.c, so that one catalogue serves the panel, the plug-ins and the CLI. */
#include "cli_i18n.h"

#include <locale.h>

#ifndef DEEPGEN_LOCALEDIR
#define DEEPGEN_LOCALEDIR "/usr/local/share/locale"
#endif

void
cli_i18n_init (void)
{
  setlocale (LC_ALL, "");
  g_autofree char *dir = NULL;
  const char *env = g_getenv ("DEEPGEN_LOCALEDIR");
  if (env && *env) {
    dir = g_strdup (env);
  } else {
    g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
    g_autofree char *exedir = exe ? g_path_get_dirname (exe) : NULL;
    g_autofree char *beside = exedir ? g_build_filename (exedir, "locale", NULL) : NULL;
    dir = beside && g_file_test (beside, G_FILE_TEST_IS_DIR) ? g_steal_pointer (&beside) : g_strdup (DEEPGEN_LOCALEDIR);
  }
  bindtextdomain (GETTEXT_PACKAGE, dir);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
}

glong
cli_text_width (const char *text)
{
  glong w = 0;
  for (const char *p = text; p && *p; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);
    w += g_unichar_iszerowidth (c) ? 0 : g_unichar_iswide (c) ? 2 : 1;
  }
  return w;
}

void
cli_append_padded (GString *s, const char *text, int width)
{
  g_string_append (s, text);
  for (glong n = cli_text_width (text); n < width; n++) g_string_append_c (s, ' ');
}

void
cli_append_right (GString *s, const char *text, int width)
{
  for (glong n = cli_text_width (text); n < width; n++) g_string_append_c (s, ' ');
  g_string_append (s, text);
}
