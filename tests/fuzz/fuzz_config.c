/* libFuzzer target: every config parser (model/io/config.c) on arbitrary text. Each must either
 * succeed or fail with a DG_ERROR; the shared strict JSON front end is exercised along the way. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "dg_error.h"

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf (stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      abort ();                                                                     \
    }                                                                               \
  } while (0)

static void
check_result (gboolean ok, GError *error)
{
  if (ok)
    CHECK (error == NULL);
  else
    CHECK (error != NULL && error->domain == DG_ERROR && error->message[0] != '\0');
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *text = (const char *) data;
  gssize len = (gssize) size;
  GError *error = NULL;

  DgQwenVLConfig q;
  gboolean ok = dg_qwen_vl_config_parse (text, len, "fuzz.json", &q, &error);
  check_result (ok, error);
  if (ok) {
    CHECK (q.text.head_dim > 0 && q.text.n_heads % q.text.n_kv_heads == 0);
    CHECK (2 * (q.text.mrope_section[0] + q.text.mrope_section[1] + q.text.mrope_section[2]) == q.text.head_dim);
    CHECK (q.vision.n_fullatt <= DG_CONFIG_MAX_LAYERS);
  }
  g_clear_error (&error);

  DgConnectorConfig c;
  check_result (dg_connector_config_parse (text, len, "fuzz.json", &c, &error), error);
  g_clear_error (&error);

  DgDitConfig d;
  ok = dg_dit_config_parse (text, len, "fuzz.json", &d, &error);
  check_result (ok, error);
  if (ok)
    CHECK (d.inner_dim == d.n_heads * d.head_dim && d.n_dual <= DG_CONFIG_MAX_LAYERS);
  g_clear_error (&error);

  DgVaeConfig v;
  ok = dg_vae_config_parse (text, len, "fuzz.json", &v, &error);
  check_result (ok, error);
  if (ok)
    CHECK (v.n_blocks >= 1 && v.n_blocks <= DG_CONFIG_MAX_BLOCKS);
  g_clear_error (&error);

  DgSchedulerConfig s;
  check_result (dg_scheduler_config_parse (text, len, "fuzz.json", &s, &error), error);
  g_clear_error (&error);

  DgModelIndex *idx = dg_model_index_parse (text, len, "fuzz.json", &error);
  check_result (idx != NULL, error);
  if (idx)
    for (guint i = 0; i < idx->n_components; i++) CHECK (dg_model_index_find (idx, idx->components[i].name) != NULL);
  dg_model_index_free (idx);
  g_clear_error (&error);
  return 0;
}
