/* libFuzzer target: the GGUF reader (model/io/gguf.c, as dg_safetensors_open uses it for the
 * model.gguf of a converted folder) on arbitrary bytes; the checks are fuzz_tensor_set.h's. */
#include "fuzz_tensor_set.h"
#include "gguf.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DgSafetensors) st = dg_gguf_open_data (data, size, "fuzz.gguf", &error);
  check_tensor_set (st, error, data, size, 24);
  return 0;
}
