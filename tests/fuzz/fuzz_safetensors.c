/* libFuzzer target: the safetensors header parser (model/io/safetensors.c) on arbitrary bytes; the
 * checks are fuzz_tensor_set.h's. */
#include "fuzz_tensor_set.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DgSafetensors) st = dg_safetensors_open_data (data, size, "fuzz.safetensors", &error);
  check_tensor_set (st, error, data, size, 8);
  return 0;
}
