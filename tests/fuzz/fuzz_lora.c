/* libFuzzer target: the PEFT LoRA adapter reader (model/nn/lora.c). The first byte picks which
 * file of the adapter folder the rest is — even: adapter_config.json (beside the tiny model's
 * valid adapter_model.safetensors), odd: adapter_model.safetensors (beside its valid config).
 * Opening must either fail with a DG_ERROR that has a message or give an adapter whose rank,
 * scale and module counts make sense. */
#include <string.h>

#include "dg_error.h"
#include "fuzz_input_file.h"
#include "lora.h"

#ifndef DEEPGEN_FUZZ_LORA
#error "DEEPGEN_FUZZ_LORA: the tiny model's vlm_lora folder"
#endif

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
copy_valid (const char *name)
{
  g_autofree char *src = g_build_filename (DEEPGEN_FUZZ_LORA, name, NULL);
  g_autofree char *bytes = NULL;
  gsize n = 0;
  if (!g_file_get_contents (src, &bytes, &n, NULL))
    abort ();
  g_free (fuzz_write_file (name, bytes, n));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const char *const names[] = { "adapter_config.json", "adapter_model.safetensors" };
  if (size == 0)
    return 0;
  int fuzzed = data[0] % 2;
  copy_valid (names[!fuzzed]);
  g_autofree char *path = fuzz_write_file (names[fuzzed], data + 1, size - 1);
  g_autofree char *dir = g_path_get_dirname (path);
  GError *error = NULL;
  g_autoptr (DgLora) lora = dg_lora_open (dir, &error);
  if (!lora) {
    FUZZ_CHECK (error && error->domain == DG_ERROR && error->message[0]);
    g_error_free (error);
    return 0;
  }
  FUZZ_CHECK (error == NULL);
  double scale = dg_lora_scale (lora);
  FUZZ_CHECK (scale == scale && scale > -1e30 && scale < 1e30); /* finite */
  (void) dg_lora_n_modules (lora, 0);
  return 0;
}
