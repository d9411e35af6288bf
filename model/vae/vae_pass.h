/* One VAE pass as a walk over its layers (MODEL.md §6), host-only: which of three activation
 * buffers ("slabs") each layer takes and drops, at what shape, and which operation it records.
 * vae.c records a pass by running this walk with its GPU operations; run without operations it
 * is the dry run that sizes the slabs, the GroupNorm scratch and the outputs — for vae.c's arena
 * and for the memory plan (plan.c) alike, from a small limits struct rather than a device
 * (DESIGN.md §5). */
#pragma once

#include <glib.h>

#include "config.h"
#include "vae_layout.h"

G_BEGIN_DECLS

#define DG_VAE_N_SLABS 3

/* What the device allows, for the dry run. */
typedef struct {
  guint64 max_binding; /* maxStorageBufferRange in bytes; 0 = no limit */
  /* Elements of GroupNorm scratch for y, x [B, H, W, C] on the device (vkc_group_norm_scratch_elems);
   * NULL: the estimate of vkc_ops_norm.h for one binding, B·groups·(3·H·W·C/32768 + 5). */
  gint64 (*group_norm_scratch) (gpointer user_data, gint64 B, gint64 H, gint64 W, gint64 C, int groups);
  gpointer user_data;
} DgVaeLimits;

/* An activation: slab @slot (0..2) viewed as [B, H, W, C], or the pass's input (DG_VAE_IN) or
 * output (DG_VAE_OUT). */
#define DG_VAE_IN (-1)
#define DG_VAE_OUT (-2)
typedef struct {
  int slot;
  gint64 B, H, W, C;
} DgVaeAct;

/* A parameter of the loaded VAE, as vae_layout.h names it: @slot (VAE_CONV_IN, VAE_RES_NORM1, …)
 * | VAE_IN_DECODER, @layer the block (−1: the mid block or outside the blocks), @j the resnet. */
typedef struct {
  int slot, layer, j;
} DgVaeParam;

typedef enum { DG_VAE_CONV_3X3, DG_VAE_CONV_3X3_S2, DG_VAE_CONV_3X3_UP2, DG_VAE_CONV_1X1 } DgVaeConvKind;

/* The operations a recording pass performs, in walk order. */
typedef struct {
  void (*conv) (gpointer u, DgVaeConvKind kind, const DgVaeAct *y, const DgVaeAct *x, const DgVaeParam *p);
  void (*group_norm) (gpointer u, const DgVaeAct *y, const DgVaeAct *x, const DgVaeParam *p, gboolean silu);
  void (*add) (gpointer u, const DgVaeAct *y, const DgVaeAct *a, const DgVaeAct *b);
  /* Mid-block attention, first half: q/k/v of @n into @qkv [.., 3C], attention output over @n. */
  void (*attention) (gpointer u, const DgVaeAct *n, const DgVaeAct *qkv, const DgVaeParam *attn);
  /* Second half: to_out.0 of @n into @proj (the qkv slab, now [.., C]). */
  void (*attention_out) (gpointer u, const DgVaeAct *proj, const DgVaeAct *n, const DgVaeParam *attn);
  /* The decoder's input: z_vae = z_model / scaling + shift into @z. */
  void (*unscale) (gpointer u, const DgVaeAct *z, const DgVaeAct *in);
  /* The pass's result tensor (allocated once its shape is known), and a copy into it. */
  void (*output) (gpointer u, const DgVaeAct *out);
  void (*copy) (gpointer u, const DgVaeAct *y, const DgVaeAct *x);
  void (*tap) (gpointer u, const char *name, const DgVaeAct *t);
} DgVaeOps;

typedef struct {
  const DgVaeConfig *cfg;
  const DgVaeLimits *limits; /* dry run only; NULL = no limits */
  const DgVaeOps *ops;       /* NULL: a dry run */
  gpointer user_data;
  gboolean busy[DG_VAE_N_SLABS];
  gint64 need[DG_VAE_N_SLABS]; /* elements: the dry run's result / the recording's capacity */
  gint64 scratch;              /* GroupNorm scratch elements (dry run) */
  guint64 out_bytes;           /* tensors allocated outside the slabs */
  guint64 attn_binding;        /* bytes the mid-block attention binds at once */
  gboolean too_large;          /* attn_binding exceeds limits->max_binding */
} DgVaePass;

/* The passes: @in is the input's shape ([B, H, W, 3] pixels, or [B, h, w, latent] latents). */
void dg_vae_pass_encode (DgVaePass *p, const DgVaeAct *in);
void dg_vae_pass_decode (DgVaePass *p, const DgVaeAct *in);     /* from model latents */
void dg_vae_pass_decode_raw (DgVaePass *p, const DgVaeAct *in); /* from z_vae */
/* One module (dg_vae_forward_module): a resnet (@j ≥ 0), the mid attention (VAE_ATTN_NORM), a
 * down- or upsampler (VAE_SAMPLER) of @part (0 or VAE_IN_DECODER), block @layer (−1: mid). */
void dg_vae_pass_module (DgVaePass *p, int part, int kind, int layer, int j, const DgVaeAct *in);

/* The arena one pass takes: the slabs, the scratch and the outputs (dry run results); 0 when
 * too large. */
guint64 dg_vae_pass_bytes (const DgVaePass *p);

/* Tile placement along one axis of @len latents: *n tiles of *size (vae.c spreads them evenly). */
void dg_vae_axis_tiles (guint len, guint tile, guint overlap, guint *n, guint *size);

G_END_DECLS
