/* Which kernel each op family takes on this device, and why (`deepgen info`). */
#include "vkc_ops_attention.h"
#include "vkc_ops_conv.h"
#include "vkc_ops_linear.h"
#include "vkc_paths.h"

char *
vkc_paths_describe (VkcDevice *dev)
{
  GString *s = g_string_new ("kernel paths:\n");
  /* DeepGen's shapes: the DiT's FF at 1024² (4096 image tokens, 1536 → 6144), the language model's
   * MLP on a prompt (~120 tokens, 2048 → 11008), a single row (GEMV), all with bf16 weights. */
  static const struct {
    const char *what;
    int64_t M, N, K;
  } lin[] = {
    { "DiT FF, 4096 tokens, 1536->6144", 4096, 6144, 1536 },
    { "LLM MLP, 120 tokens, 2048->11008", 120, 11008, 2048 },
    { "LLM, 1 row, 2048->2048", 1, 2048, 2048 },
  };
  for (guint k = 0; k < G_N_ELEMENTS (lin); k++) {
    g_autofree char *d = vkc_linear_describe (dev, lin[k].M, lin[k].N, lin[k].K, VKC_BF16);
    g_string_append_printf (s, "  linear (%s): %s\n", lin[k].what, d);
  }
  static const struct {
    const char *what;
    int d;
  } att[] = {
    { "DiT, head dim 64", 64 },
    { "ViT, head dim 80", 80 },
    { "LLM, head dim 128", 128 },
  };
  for (guint k = 0; k < G_N_ELEMENTS (att); k++) {
    g_autofree char *d = vkc_attention_describe (dev, att[k].d);
    g_string_append_printf (s, "  attention (%s): %s\n", att[k].what, d);
  }
  g_autofree char *c16 = vkc_conv_describe (dev, VKC_BF16);
  g_autofree char *c32 = vkc_conv_describe (dev, VKC_F32);
  g_string_append_printf (s, "  conv (bf16 weights): %s\n", c16);
  g_string_append_printf (s, "  conv (f32 weights, the VAE in fp32): %s", c32);
  return g_string_free (s, FALSE);
}
