/* The VAE's weights (MODEL.md §6), host-only, in the order vae.c loads them: the decoder's
 * latent scale and shift (computed at load), then the encoder and/or the decoder. vae.c builds
 * its structure and uploads from it, the memory plan counts from it (DESIGN.md §5). The
 * activations of a pass: vae_pass.h. */
#pragma once

#include <glib.h>

#include "config.h"
#include "layout.h"

G_BEGIN_DECLS

/* Which part: DG_VAE_LAYOUT_ENCODER and/or _DECODER (the values of vae.h's DgVaeParts). */
#define DG_VAE_LAYOUT_ENCODER (1 << 0)
#define DG_VAE_LAYOUT_DECODER (1 << 1)

/* DgLayoutTensor.slot: the parameter, | VAE_IN_DECODER for the decoder's. .layer: the block
 * (−1: the mid block or outside the blocks); .sub: 2·resnet + (0 weight, 1 bias). */
typedef enum {
  VAE_SCALE,
  VAE_SHIFT, /* computed: z/scaling_factor + shift_factor as z·(1 + scale) + shift */
  VAE_CONV_IN,
  VAE_RES_NORM1,
  VAE_RES_CONV1,
  VAE_RES_NORM2,
  VAE_RES_CONV2,
  VAE_RES_SHORTCUT,
  VAE_SAMPLER, /* the down- (encoder) or upsampler (decoder) after a block */
  VAE_ATTN_NORM,
  VAE_ATTN_Q,
  VAE_ATTN_K,
  VAE_ATTN_V,
  VAE_ATTN_OUT,
  VAE_NORM_OUT,
  VAE_CONV_OUT,
  VAE_QUANT_CONV, /* use_quant_conv / use_post_quant_conv (not implemented by vae.c) */
} DgVaeSlot;
#define VAE_IN_DECODER 0x100

gboolean dg_vae_layout_weights (const DgVaeConfig *c, int parts, DgLayoutVisit visit, gpointer user_data,
                                GError **error);

G_END_DECLS
