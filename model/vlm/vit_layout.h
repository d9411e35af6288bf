/* The vision tower's layout (MODEL.md §1.4, §2.2), host-only: its weights in load order and the
 * activations one reference takes from the arena (vlm.c's patch rows, then vit.c). vit.c loads
 * and runs from it, the memory plan counts from it (DESIGN.md §5). */
#pragma once

#include <glib.h>

#include "config.h"
#include "layout.h"

G_BEGIN_DECLS

/* Values of one patch row: in_channels · temporal_patch_size · patch_size² (1176). */
guint dg_vit_layout_patch_values (const DgQwenVisionConfig *c);
/* Patches per merged token: spatial_merge_size² (4). */
guint dg_vit_layout_merge_unit (const DgQwenVisionConfig *c);

/* Where a tensor goes (DgLayoutTensor.slot; sub 0 weight, 1 bias). Names are relative to the
 * vision tower's prefix ("visual." or "model.visual."). */
typedef enum {
  VIT_PATCH, /* patch_embed.proj: the Conv3d kernel as [C, patch values] */
  VIT_NORM1,
  VIT_NORM2,
  VIT_QKV,
  VIT_PROJ,
  VIT_GATE,
  VIT_UP,
  VIT_DOWN, /* per block */
  VIT_LN_Q,
  VIT_MLP0,
  VIT_MLP2, /* the merger */
} DgVitSlot;

gboolean dg_vit_layout_weights (const DgQwenVisionConfig *c, DgLayoutVisit visit, gpointer user_data, GError **error);

/* The arena of one reference of N patches, in order (f32 except the u32 index tables). */
typedef enum {
  VIT_ACT_PATCHES, /* the patch rows (vlm.c) */
  VIT_ACT_TO_WINDOW,
  VIT_ACT_TO_RASTER,
  VIT_ACT_RANGE, /* u32 */
  VIT_ACT_COS,
  VIT_ACT_SIN,
  VIT_ACT_XN,
  VIT_ACT_QKV,
  VIT_ACT_ATTN,
  VIT_ACT_TMP,
  VIT_ACT_GATE,
  VIT_ACT_UP,
  VIT_ACT_WINDOWED, /* the patch rows in window order */
  VIT_ACT_X,        /* the residual stream */
  VIT_ACT_MERGER_XN,
  VIT_ACT_MERGER_H,
  VIT_ACT_MERGER_OUT,
  VIT_ACT_EMBEDS, /* back in raster order */
  VIT_N_ACTS
} DgVitAct;

void dg_vit_layout_acts (const DgQwenVisionConfig *c, gint64 N, DgLayoutAct acts[VIT_N_ACTS]);
/* Whether piece @i is u32 (the index tables) rather than f32. */
gboolean dg_vit_layout_act_u32 (DgVitAct i);

G_END_DECLS
