/* Test seams of the pipeline: parity with the golden runs of the canonical code, which sample
 * the VAE posterior with injected noise and feed reference images as they are. Not part of the
 * public API (model/deepgen.h). */
#pragma once
#include "deepgen.h"
#include "vkc.h"

G_BEGIN_DECLS

typedef struct {
  /* Sample the reference latents as mean + std·ε with ε = torch.randn (CPU generator) of this
   * seed per reference (flat order over the batch), instead of the posterior mean. */
  const guint64 *vae_eps_seeds;
  /* Use the edit references as given (sides already multiples of 32), without the size rule. */
  gboolean references_as_given;
} DgRunHooks;

GPtrArray *dg_run_batch_hooked (DgModel *model, const DgRequest *const *requests, guint n_requests,
                                const DgRunHooks *hooks, DgProgressFunc progress, gpointer user_data,
                                GCancellable *cancellable, GError **error);

/* The engine's Vulkan device (tests check its validation-message count). */
VkcDevice *dg_engine_device (DgEngine *engine);

G_END_DECLS
