/* A result's parameters as one line of JSON (deepgen.h, DgJobParams): written by every front-end
 * the same way (PNG text chunk, GIMP parasite) and read back for a re-run. The text comes from
 * files and layers, so it goes through the strict JSON gate (json_strict.h) and every value is
 * range-checked. */
#include <math.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "deepgen.h"
#include "dg_i18n.h"
#include "json_strict.h"

#define FORMAT_VERSION 1
#define MAX_TEXT (256 * 1024) /* a prompt is at most a few KB; anything larger is not ours */

static const char *const job_names[] = { "generate", "edit", "inpaint" };
static const char *const rng_names[] = { "philox", "torch" };
static const char *const precision_names[] = { "bf16", "f32" };
/* indexed by DgWeightFormat */
static const char *const weight_names[] = { "released", "q8", "auto", "q4" };

DgJobParams *
dg_job_params_new (const DgRequest *r, DgPrecision precision, DgWeightFormat weights)
{
  DgJobParams *p = g_new0 (DgJobParams, 1);
  p->job = r->job;
  p->prompt = g_strdup (r->prompt ? r->prompt : "");
  p->negative_prompt = g_strdup (r->negative_prompt);
  p->seed = r->seed;
  p->rng = r->rng;
  p->steps = r->steps > 0 ? r->steps : DG_DEFAULT_STEPS;
  p->guidance = r->guidance < 0 ? DG_DEFAULT_GUIDANCE : r->guidance;
  p->strength = r->strength;
  p->width = r->width;
  p->height = r->height;
  p->precision = precision;
  p->weights = weights;
  return p;
}

void
dg_job_params_free (DgJobParams *p)
{
  if (!p)
    return;
  g_free (p->prompt);
  g_free (p->negative_prompt);
  g_free (p->model_revision);
  g_free (p);
}

static const char *
name_of (const char *const *names, guint n, guint i)
{
  return i < n ? names[i] : names[0];
}

char *
dg_job_params_to_string (const DgJobParams *p)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, DG_JOB_PARAMS_KEY);
  json_builder_add_int_value (b, FORMAT_VERSION);
  json_builder_set_member_name (b, "job");
  json_builder_add_string_value (b, name_of (job_names, G_N_ELEMENTS (job_names), p->job));
  json_builder_set_member_name (b, "prompt");
  json_builder_add_string_value (b, p->prompt ? p->prompt : "");
  if (p->negative_prompt) {
    json_builder_set_member_name (b, "negative-prompt");
    json_builder_add_string_value (b, p->negative_prompt);
  }
  /* a string: a JSON number is a double, which cannot hold every 64-bit seed */
  g_autofree char *seed = g_strdup_printf ("%" G_GUINT64_FORMAT, p->seed);
  json_builder_set_member_name (b, "seed");
  json_builder_add_string_value (b, seed);
  json_builder_set_member_name (b, "rng");
  json_builder_add_string_value (b, name_of (rng_names, G_N_ELEMENTS (rng_names), p->rng));
  json_builder_set_member_name (b, "steps");
  json_builder_add_int_value (b, p->steps);
  json_builder_set_member_name (b, "guidance");
  json_builder_add_double_value (b, p->guidance);
  json_builder_set_member_name (b, "strength");
  json_builder_add_double_value (b, p->strength);
  json_builder_set_member_name (b, "width");
  json_builder_add_int_value (b, p->width);
  json_builder_set_member_name (b, "height");
  json_builder_add_int_value (b, p->height);
  json_builder_set_member_name (b, "precision");
  json_builder_add_string_value (b, name_of (precision_names, G_N_ELEMENTS (precision_names), p->precision));
  json_builder_set_member_name (b, "weights");
  json_builder_add_string_value (b, name_of (weight_names, G_N_ELEMENTS (weight_names), p->weights));
  if (p->model_revision) {
    json_builder_set_member_name (b, "model-revision");
    json_builder_add_string_value (b, p->model_revision);
  }
  json_builder_end_object (b);
  g_autoptr (JsonGenerator) g = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (g, root);
  return json_generator_to_data (g, NULL);
}

static gboolean
bad (GError **error, const char *key)
{
  g_set_error (error, DG_ERROR, DG_ERROR_FORMAT,
               _ ("The DeepGen parameters stored with this image are damaged or from an unknown version (“%s”)."), key);
  return FALSE;
}

static gboolean
get_string (JsonObject *o, const char *key, gboolean required, const char **out, GError **error)
{
  JsonNode *n = json_object_get_member (o, key);
  if (!n) {
    *out = NULL;
    return required ? bad (error, key) : TRUE;
  }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return bad (error, key);
  *out = json_node_get_string (n);
  return g_utf8_validate (*out, -1, NULL) || bad (error, key);
}

static gboolean
get_number (JsonObject *o, const char *key, double min, double max, double *out, GError **error)
{
  JsonNode *n = json_object_get_member (o, key);
  if (!n || !JSON_NODE_HOLDS_VALUE (n))
    return bad (error, key);
  GType t = json_node_get_value_type (n);
  if (t == G_TYPE_INT64)
    *out = (double) json_node_get_int (n);
  else if (t == G_TYPE_DOUBLE)
    *out = json_node_get_double (n);
  else
    return bad (error, key);
  return (isfinite (*out) && *out >= min && *out <= max) || bad (error, key);
}

static gboolean
get_int (JsonObject *o, const char *key, int min, int max, int *out, GError **error)
{
  double v;
  if (!get_number (o, key, min, max, &v, error))
    return FALSE;
  if (v != floor (v))
    return bad (error, key);
  *out = (int) v;
  return TRUE;
}

static gboolean
get_name (JsonObject *o, const char *key, const char *const *names, guint n, int *out, GError **error)
{
  const char *s;
  if (!get_string (o, key, TRUE, &s, error))
    return FALSE;
  for (guint i = 0; i < n; i++)
    if (g_str_equal (s, names[i])) {
      *out = (int) i;
      return TRUE;
    }
  return bad (error, key);
}

DgJobParams *
dg_job_params_from_string (const char *text, GError **error)
{
  const gsize len = text ? strnlen (text, MAX_TEXT + 1) : 0;
  if (len == 0 || len > MAX_TEXT)
    return bad (error, DG_JOB_PARAMS_KEY), NULL;
  g_autoptr (JsonObject) o = dg_json_parse_object (text, len, DG_JOB_PARAMS_KEY, _ ("parameters"), 2, error);
  if (!o)
    return NULL;
  int version = 0, job = 0, rng = 0, precision = 0, weights = 0;
  const char *prompt, *negative, *seed_text, *revision;
  g_autoptr (DgJobParams) p = g_new0 (DgJobParams, 1);
  if (!get_int (o, DG_JOB_PARAMS_KEY, 1, FORMAT_VERSION, &version, error) ||
      !get_name (o, "job", job_names, G_N_ELEMENTS (job_names), &job, error) ||
      !get_string (o, "prompt", TRUE, &prompt, error) || !get_string (o, "negative-prompt", FALSE, &negative, error) ||
      !get_string (o, "seed", TRUE, &seed_text, error) ||
      !get_name (o, "rng", rng_names, G_N_ELEMENTS (rng_names), &rng, error) ||
      !get_int (o, "steps", 1, 1000, &p->steps, error) ||
      !get_number (o, "guidance", 0.0, 100.0, &p->guidance, error) ||
      !get_number (o, "strength", 0.0, 1.0, &p->strength, error) ||
      !get_int (o, "width", 0, DG_MAX_SIDE, &p->width, error) ||
      !get_int (o, "height", 0, DG_MAX_SIDE, &p->height, error) ||
      !get_name (o, "precision", precision_names, G_N_ELEMENTS (precision_names), &precision, error) ||
      !get_name (o, "weights", weight_names, G_N_ELEMENTS (weight_names), &weights, error) ||
      !get_string (o, "model-revision", FALSE, &revision, error))
    return NULL;
  if (!g_ascii_string_to_unsigned (seed_text, 10, 0, G_MAXUINT64, &p->seed, NULL))
    return bad (error, "seed"), NULL;
  p->job = (DgJob) job;
  p->rng = (DgRng) rng;
  p->precision = (DgPrecision) precision;
  p->weights = (DgWeightFormat) weights;
  p->prompt = g_strdup (prompt);
  p->negative_prompt = g_strdup (negative);
  p->model_revision = g_strdup (revision);
  return g_steal_pointer (&p);
}

void
dg_job_params_to_request (const DgJobParams *p, DgRequest *r)
{
  *r = (DgRequest) DG_REQUEST_INIT;
  r->job = p->job;
  r->prompt = p->prompt;
  r->negative_prompt = p->negative_prompt;
  r->seed = p->seed;
  r->rng = p->rng;
  r->steps = p->steps;
  r->guidance = p->guidance;
  r->strength = p->strength;
  r->width = p->width;
  r->height = p->height;
}
