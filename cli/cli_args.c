/* Values of the command line (cli_args.h). */
#include "cli_args.h"

#include <math.h>
#include <string.h>

#include "cli_i18n.h"

static gboolean bad_value (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static gboolean
bad_value (GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error_literal (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, msg);
  return FALSE;
}

/* A positive decimal side; *end is left after the digits. */
static gboolean
parse_side (const char *s, const char **end, int *out)
{
  if (!g_ascii_isdigit (*s))
    return FALSE;
  guint64 v = 0;
  while (g_ascii_isdigit (*s)) {
    v = v * 10 + (guint64) (*s - '0');
    if (v > G_MAXINT)
      return FALSE;
    s++;
  }
  *end = s;
  *out = (int) v;
  return TRUE;
}

gboolean
cli_parse_size (const char *text, int *width, int *height, GError **error)
{
  const char *p = text ? text : "", *q;
  int w = 0, h = 0;
  gboolean ok = parse_side (p, &q, &w);
  if (ok && *q == '\0') {
    h = w;
  } else if (ok) {
    /* x, X, * or the multiplication sign U+00D7 (two bytes in UTF-8). */
    if (*q == 'x' || *q == 'X' || *q == '*')
      q++;
    else if (g_str_has_prefix (q, "×"))
      q += strlen ("×");
    else
      ok = FALSE;
    ok = ok && parse_side (q, &q, &h) && *q == '\0';
  }
  if (!ok)
    return bad_value (error, _ ("--size: '%s' is not a size; write WIDTHxHEIGHT in pixels, e.g. 512x512 or 768x512"),
                      text ? text : "");
  if (w < 1 || h < 1 || w > DG_MAX_SIDE || h > DG_MAX_SIDE)
    return bad_value (error,
                      _ ("--size: %d×%d is out of range: each side must be between 1 and %d pixels "
                         "(DeepGen works best between 512 and 1024)"),
                      w, h, DG_MAX_SIDE);
  *width = w;
  *height = h;
  return TRUE;
}

gboolean
cli_parse_rng (const char *text, DgRng *out, GError **error)
{
  if (g_strcmp0 (text, "philox") == 0) {
    *out = DG_RNG_PHILOX;
    return TRUE;
  }
  if (g_strcmp0 (text, "torch") == 0 || g_strcmp0 (text, "torch-cpu") == 0) {
    *out = DG_RNG_TORCH_CPU;
    return TRUE;
  }
  return bad_value (error, _ ("--rng: '%s' is not a generator; use philox (the default) or torch"), text ? text : "");
}

gboolean
cli_parse_precision (const char *text, DgPrecision *out, GError **error)
{
  const char *bf16[] = { "bf16", "bfloat16" }, *f32[] = { "f32", "fp32", "float32" };
  for (guint i = 0; i < G_N_ELEMENTS (bf16); i++)
    if (g_strcmp0 (text, bf16[i]) == 0) {
      *out = DG_PRECISION_BF16;
      return TRUE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (f32); i++)
    if (g_strcmp0 (text, f32[i]) == 0) {
      *out = DG_PRECISION_F32;
      return TRUE;
    }
  return bad_value (error, _ ("--precision: '%s' is not a precision; use bf16 (the default) or f32"), text ? text : "");
}

gboolean
cli_parse_weights (const char *text, DgWeightFormat *out, GError **error)
{
  static const struct {
    const char *name;
    DgWeightFormat weights;
  } names[] = {
    { "released", DG_WEIGHTS_RELEASED }, { "bf16", DG_WEIGHTS_RELEASED }, { "q8", DG_WEIGHTS_Q8_0 },
    { "q8_0", DG_WEIGHTS_Q8_0 },         { "q4", DG_WEIGHTS_Q4_0 },       { "q4_0", DG_WEIGHTS_Q4_0 },
    { "auto", DG_WEIGHTS_AUTO },
  };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_strcmp0 (text, names[i].name) == 0) {
      *out = names[i].weights;
      return TRUE;
    }
  return bad_value (error, _ ("--weights: '%s' is not a weight format; use auto (the default), released, q8 or q4"),
                    text ? text : "");
}

const char *
cli_weights_name (DgWeightFormat weights)
{
  switch (weights) {
  case DG_WEIGHTS_Q8_0: return "q8_0";
  case DG_WEIGHTS_Q4_0: return "q4_0";
  case DG_WEIGHTS_AUTO: return "auto";
  default: return "released";
  }
}

gboolean
cli_parse_job (const char *text, DgJob *out, GError **error)
{
  const struct {
    const char *name;
    DgJob job;
  } jobs[] = {
    { "generate", DG_JOB_GENERATE },
    { "edit", DG_JOB_EDIT },
    { "inpaint", DG_JOB_INPAINT },
  };
  for (guint i = 0; i < G_N_ELEMENTS (jobs); i++)
    if (g_strcmp0 (text, jobs[i].name) == 0) {
      *out = jobs[i].job;
      return TRUE;
    }
  return bad_value (error, _ ("--job: '%s' is not a job; use generate, edit or inpaint"), text ? text : "");
}

gboolean
cli_parse_seed (const char *text, guint64 *out, GError **error)
{
  guint64 v;
  g_autoptr (GError) e = NULL;
  if (!text || !g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT64, &v, &e))
    return bad_value (error, _ ("--seed: '%s' is not a seed; use a whole number from 0 to %" PRIu64), text ? text : "",
                      G_MAXUINT64);
  *out = v;
  return TRUE;
}

char *
cli_text_to_utf8 (const char *raw, const char *option, GError **error)
{
  const char *bad = NULL;
  if (g_utf8_validate (raw, -1, &bad))
    return g_strdup (raw);
  const char *charset;
  if (!g_get_charset (&charset)) {
    char *converted = g_locale_to_utf8 (raw, -1, NULL, NULL, NULL);
    if (converted)
      return converted;
  }
  bad_value (error,
             _ ("%s is not valid UTF-8 text (byte 0x%02X at position %d). Write it in a UTF-8 terminal "
                "or editor, or convert it (iconv -t UTF-8)."),
             option, (guint) (guchar) *bad, (int) (bad - raw) + 1);
  return NULL;
}

gboolean
cli_output_type (const char *path, const char **type, GError **error)
{
  g_autofree char *base = g_path_get_basename (path);
  const char *dot = strrchr (base, '.');
  g_autofree char *ext = dot ? g_ascii_strdown (dot + 1, -1) : NULL;
  if (ext && strcmp (ext, "png") == 0) {
    *type = "png";
    return TRUE;
  }
  if (ext && (strcmp (ext, "jpg") == 0 || strcmp (ext, "jpeg") == 0)) {
    *type = "jpeg";
    return TRUE;
  }
  return bad_value (error, _ ("-o: '%s' has no known image extension; end the name in .png, .jpg or .jpeg"), path);
}

char *
cli_variation_path (const char *output, guint index)
{
  const char *slash = strrchr (output, G_DIR_SEPARATOR);
  const char *base = slash ? slash + 1 : output;
  const char *dot = strrchr (base, '.');
  if (!dot)
    return g_strdup_printf ("%s-%u", output, index);
  return g_strdup_printf ("%.*s-%u%s", (int) (dot - output), output, index, dot);
}

gboolean
cli_check_int (int value, int min, int max, const char *option, GError **error)
{
  if (value >= min && value <= max)
    return TRUE;
  return bad_value (error, _ ("%s: %d is out of range (%d to %d)"), option, value, min, max);
}

gboolean
cli_check_double (double value, double min, double max, const char *option, GError **error)
{
  if (isfinite (value) && value >= min && value <= max)
    return TRUE;
  return bad_value (error, _ ("%s: %g is out of range (%g to %g)"), option, value, min, max);
}

char *
cli_format_duration (double seconds)
{
  gint64 s = (gint64) MAX (0.0, floor (seconds + 0.5));
  if (s >= 3600)
    return g_strdup_printf ("%" G_GINT64_FORMAT ":%02d:%02d", s / 3600, (int) (s / 60 % 60), (int) (s % 60));
  return g_strdup_printf ("%d:%02d", (int) (s / 60), (int) (s % 60));
}
