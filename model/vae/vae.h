/* The SD3 VAE (diffusers AutoencoderKL, MODEL.md §6): encoder (pixels → posterior → model
 * latents) and decoder (model latents → pixels), whole or in overlapping tiles.
 *
 * Layouts: pixels are NHWC f32 [B, H, W, 3] in [−1, 1]; latents NHWC f32 [B, H/8, W/8, 16].
 * "Model latents" are what the DiT sees, z_model = (z_vae − shift_factor) · scaling_factor
 * (vae/config.json); the *_raw functions work on z_vae, like diffusers' vae.encode/decode.
 *
 * Forward functions RECORD into a VkcCmd and take their activations from a DgArena; they
 * return nothing: the caller checks dg_arena_check () once before submitting. Between the
 * layers they reuse three arena buffers sized by a dry run of the same code (a whole decode
 * of a 1024² image takes 2.5 GiB with the real VAE, which is why large images go through the
 * tiled functions, whose memory is bounded by the tile size).
 *
 * Precision (weights.h): DG_PRECISION_F32 runs everything in f32; DG_PRECISION_BF16 keeps the
 * weights bf16 and rounds the activations to bf16 where the reference (`vae.to(bfloat16)`)
 * materialises a bf16 tensor: after every conv, GroupNorm, SiLU, linear, the attention and
 * every residual add. */
#pragma once

#include "config.h"
#include "vae_layout.h"
#include "deepgen.h"
#include "weights.h"
#include "vkc.h"

G_BEGIN_DECLS

typedef struct _DgVae DgVae;

typedef enum {
  DG_VAE_ENCODER = 1 << 0,
  DG_VAE_DECODER = 1 << 1,
  DG_VAE_BOTH = DG_VAE_ENCODER | DG_VAE_DECODER,
} DgVaeParts;

/* Loads vae/config.json and vae/diffusion_pytorch_model.safetensors from @dir (the component
 * folder) for the parts asked for; the other part's weights are not uploaded. */
DgVae *dg_vae_load (VkcDevice *dev, const char *dir, DgVaeParts parts, DgPrecision precision, GError **error);
void dg_vae_free (DgVae *vae);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgVae, dg_vae_free)

const DgVaeConfig *dg_vae_config (const DgVae *vae);
/* Pixels per latent along each side: 2^(number of downsamplers) = 8. */
guint dg_vae_downscale (const DgVae *vae);
/* Bytes of device memory the weights take. */
guint64 dg_vae_weight_bytes (const DgVae *vae);

/* Observing intermediate tensors (tests, debugging): called while recording, with the live
 * tensor, which later layers overwrite — a tap that wants the values records a copy into a
 * tensor of its own (vkc_op_copy) on @cmd. Names: "encoder.conv_in", "encoder.down_blocks.N",
 * "encoder.mid_block", "encoder.moments", "decoder.in" (z_vae), "decoder.conv_in",
 * "decoder.mid_block", "decoder.up_blocks.N". NULL removes the tap. */
void dg_vae_set_tap (DgVae *vae, DgTapFunc func, gpointer user_data);

/* ---- whole images --------------------------------------------------------------------- */

/* Decoder: z [B, h, w, latent] model latents → *out [B, 8h, 8w, 3] (allocated in @arena),
 * not clamped. z may be a strided view (channels contiguous). */
void dg_vae_decode (DgVae *vae, VkcCmd *cmd, DgArena *arena, const VkcTensor *z, VkcTensor *out);
/* The same from z_vae (diffusers `vae.decode(z).sample`). */
void dg_vae_decode_raw (DgVae *vae, VkcCmd *cmd, DgArena *arena, const VkcTensor *z, VkcTensor *out);

/* Encoder: pixels [B, H, W, 3] → *moments [B, ⌊H/8⌋, ⌊W/8⌋, 2·latent] (allocated in @arena):
 * posterior mean in channels 0..latent−1, log-variance (not yet clamped) after it. Any H, W ≥ 8
 * (the downsamplers pad right/bottom, MODEL.md §6). Conversions between 8-bit images and
 * [−1, 1] pixels are in image.h. */
void dg_vae_encode_moments (DgVae *vae, VkcCmd *cmd, DgArena *arena, const VkcTensor *pixels, VkcTensor *moments);
/* Moments → model latents *z [B, h, w, latent] (in @arena): the posterior mean, or with @eps
 * ([B, h, w, latent], contiguous) the sample mean + exp(½·clamp(logvar, −30, 20))·ε of the
 * reference (MODEL.md §10 item 16), then (z − shift)·scale. */
void dg_vae_latents_from_moments (DgVae *vae, VkcCmd *cmd, DgArena *arena, const VkcTensor *moments,
                                  const VkcTensor *eps, VkcTensor *z);
/* Both steps. */
void dg_vae_encode (DgVae *vae, VkcCmd *cmd, DgArena *arena, const VkcTensor *pixels, const VkcTensor *eps,
                    VkcTensor *z);

/* Planning from a config alone (no weights; @dev may be NULL, the GroupNorm scratch is then
 * estimated): device bytes of the weights of @parts under @precision, and of the arena a
 * dg_vae_decode (latent size) or dg_vae_encode (pixel size) of one batch needs — from the same
 * dry run the forward uses, so they are exact for this code. For the memory plan and for
 * choosing between whole and tiled processing (a tile of the tiled functions needs
 * dg_vae_plan_decode_bytes (dev, cfg, B, tile, tile)). G_MAXUINT64 when @dev cannot run it
 * whole at all: the mid-block attention binds the keys of a whole image (~12·C bytes per
 * latent pixel, 96 MiB for a 1024² image with the real VAE), which must fit the device's
 * maxStorageBufferRange (128 MiB on lavapipe: whole up to about 1180² pixels). The whole
 * functions assert that their plan is finite; the tiled ones always are (for tiles below it). */
guint64 dg_vae_plan_weight_bytes (const DgVaeConfig *cfg, DgVaeParts parts, DgPrecision precision);
guint64 dg_vae_plan_decode_bytes (VkcDevice *dev, const DgVaeConfig *cfg, int batch, int latent_h, int latent_w);
guint64 dg_vae_plan_encode_bytes (VkcDevice *dev, const DgVaeConfig *cfg, int batch, int height, int width);

/* ---- tiles ---------------------------------------------------------------------------- */

/* Overlapping tiles, sizes in latent pixels (×8 in image pixels). Tiles are spread evenly so
 * that neighbours overlap by at least @overlap; across the middle @overlap latents of each
 * overlap the two tiles are blended with complementary linear ramps (weights sum to 1).
 *
 * Why 64 and 16: each tile is decoded as if it were the whole image, so it differs from a
 * whole decode near its border — the 3×3 convolutions see zero padding instead of neighbours
 * (the decoder's receptive field reaches about 17 latents: 11 convs at latent resolution,
 * then 7 at 2×, 7 at 4× and 8 at 8×, each reaching half as far) — and everywhere a little,
 * because GroupNorm and the mid-block attention see the tile, not the image. Tiles overlap by
 * at least 16 latents (128 px), so a blend-zone centre lies ≥ 8 latents inside both tiles,
 * and the linear ramp hands over gradually; a 64-latent (512 px) tile keeps the real
 * decoder's activations at 644 MiB (dg_vae_plan_decode_bytes) where a whole 1024² decode
 * needs 2.5 GiB. Measured on the tiny model (same depth, tests/model/test_vae.c): a 512×768
 * decode in two default tiles differs from the whole decode by NMSE 1.5e-3 (PSNR 40 dB),
 * spread over the tiles rather than at the seam. Constraint: 3·overlap + 3 ≤ tile, so that
 * no pixel lies in more than two tiles along an axis. */
typedef struct {
  guint tile;
  guint overlap;
} DgVaeTiling;

#define DG_VAE_TILING_DEFAULT { 64, 16 }

/* Called after each tile; return FALSE to stop (the function then fails with
 * DG_ERROR_CANCELLED). */
typedef gboolean (*DgVaeTileFunc) (guint done, guint total, gpointer user_data);

/* Decodes model latents z [B, h, w, latent] into @out [B, 8h, 8w, 3] (a tensor the caller
 * owns, not overwritten by anything else meanwhile) tile by tile, one submission per tile,
 * with the tiles' activations in a private arena freed at the end. One tile covering the
 * whole latent equals dg_vae_decode exactly. */
gboolean dg_vae_decode_tiled (DgVae *vae, const VkcTensor *z, const VkcTensor *out, const DgVaeTiling *tiling,
                              DgVaeTileFunc progress, gpointer user_data, GError **error);
/* Encodes pixels [B, H, W, 3] (H, W multiples of 8) into model latents @z [B, H/8, W/8,
 * latent] tile by tile: the moments of the tiles are blended, then sampled as in
 * dg_vae_latents_from_moments (eps may be NULL). */
gboolean dg_vae_encode_tiled (DgVae *vae, const VkcTensor *pixels, const VkcTensor *eps, const VkcTensor *z,
                              const DgVaeTiling *tiling, DgVaeTileFunc progress, gpointer user_data, GError **error);

/* ---- single modules (tests) ------------------------------------------------------------ */

/* Runs one module named as in the checkpoint — "encoder.down_blocks.1.resnets.0",
 * "encoder.down_blocks.0.downsamplers.0", "decoder.up_blocks.0.upsamplers.0",
 * "decoder.mid_block.attentions.0", "decoder.mid_block.resnets.1", ... — on x (NHWC) into
 * *y (allocated in @arena). FALSE (nothing recorded) when the module does not exist. */
gboolean dg_vae_forward_module (DgVae *vae, VkcCmd *cmd, DgArena *arena, const char *module, const VkcTensor *x,
                                VkcTensor *y);

G_END_DECLS
