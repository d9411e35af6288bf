/* The Qwen2.5-VL vision tower (MODEL.md §2.2): patch embedding, blocks of RMSNorm + window or
 * full attention with 2-D rotary + SwiGLU MLP, and the 2×2 patch merger. One reference image
 * at a time (no attention across images).
 *
 * Token order. Inputs and outputs use the reference's order: patch rows in the 2×2-grouped
 * order of MODEL.md §1.4, merged tokens in raster order. Inside, the tokens are permuted into
 * window order in groups of four patches, as the reference does, so that each window is a
 * contiguous key range for the attention op (kv_range); the permutation is undone on the way
 * out. The merger takes four consecutive patches, which window order keeps together.
 *
 * Precision (weights.h): in bf16 mode every tensor the reference materialises in bf16 is
 * rounded to bf16 at the same point (linear outputs, the rotated q/k, the attention output,
 * residual sums, SiLU and GELU outputs, the RMSNorm rule), and the rotary tables are built
 * from the bf16 angles the reference computes (its inv_freq buffer is cast to bf16). */
#pragma once

#include "config.h"
#include "vit_layout.h"
#include "lora.h"
#include "prompt.h"
#include "weights.h"

G_BEGIN_DECLS

typedef struct _DgVit DgVit;

/* Test/debug hook, called while recording: @name ("vit.patch_embed.out", "vit.block3.out") is
 * the value at that point of the command stream, in patch order; record a copy to keep it. */
typedef struct {
  DgTapFunc func;
  gpointer user_data;
} DgVitTap;

/* Uploads the vision tower of @st (keys "<prefix>patch_embed.proj.weight", "<prefix>blocks.N.…",
 * "<prefix>merger.…"; prefix "visual." or "model.visual."), checking every shape against @cfg,
 * with @lora's vision adapters merged when @lora is not NULL. @st is only read during the call. */
DgVit *dg_vit_load (VkcDevice *dev, const DgQwenVisionConfig *cfg, const DgSafetensors *st, const char *prefix,
                    DgPrecision precision, DgWeightFormat weights, DgLora *lora, GError **error);
void dg_vit_free (DgVit *vit);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgVit, dg_vit_free)

const DgQwenVisionConfig *dg_vit_config (const DgVit *vit);
DgPrecision dg_vit_precision (const DgVit *vit);
/* Values per patch row: in_channels · temporal_patch · patch² (1176). */
guint dg_vit_patch_values (const DgVit *vit);

/* Records the tower for one image: @patches [N, 1176] (N = grid_h · grid_w, patch order) →
 * *embeds, a new arena tensor [N/4, out_hidden] in merged raster order. Host tables (window
 * index, rotary, key ranges) are uploaded into fresh arena tensors while recording. FALSE when
 * the arena ran out (dg_arena_check has the error). */
gboolean dg_vit_forward (DgVit *vit, VkcCmd *cmd, DgArena *arena, const VkcTensor *patches, const DgVitGrid *grid,
                         VkcTensor *embeds, const DgVitTap *tap);

/* Pieces of the same, for module tests fed with reference tensors:
 * hidden states @x [N, hidden] (patch order) at the input of block @first → *out after
 * @count blocks (patch order); */
gboolean dg_vit_forward_blocks (DgVit *vit, VkcCmd *cmd, DgArena *arena, const VkcTensor *x, const DgVitGrid *grid,
                                guint first, guint count, VkcTensor *out, const DgVitTap *tap);
/* the merger: @x [N, hidden] (patch order) → *out [N/4, out_hidden] (merged raster order). */
gboolean dg_vit_forward_merger (DgVit *vit, VkcCmd *cmd, DgArena *arena, const VkcTensor *x, VkcTensor *out);

/* The reference's window permutation (get_window_index) for a grid: index[i] = the merged token
 * (raster order) at window-order position i; cu[w] = first patch of window w (n_windows + 1
 * entries, empty windows dropped). g_free both. */
void dg_vit_window_index (const DgQwenVisionConfig *cfg, const DgVitGrid *grid, guint32 **index, guint32 **cu,
                          guint *n_windows);

G_END_DECLS
