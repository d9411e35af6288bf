/* A component's weights, declared once (DESIGN.md §5). Each component's host-only layout
 * (dit/dit_layout.c, …) walks its tensors in load order and hands each to a visitor: the loader
 * uploads it, the memory plan counts it, so the two cannot disagree about a name, a shape or
 * how a tensor is stored. Header only, no GPU. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  DG_LAYOUT_LINEAR,   /* a Linear weight [out, in]: the matrix dtype, or q8_0 / q4_0 where the
                        * weight format quantizes it (dg_plan_linear_storage) */
  DG_LAYOUT_MATRIX,   /* another weight of ≥ 2 dims (convolution, patch embedding): matrix dtype */
  DG_LAYOUT_VECTOR,   /* a bias or norm weight: f32 */
  DG_LAYOUT_F32,      /* ≥ 2 dims, uploaded in f32 whatever the precision (meta queries) */
  DG_LAYOUT_HOST,     /* stored in the file, never uploaded (an embedding table, a position table) */
  DG_LAYOUT_COMPUTED, /* not stored, uploaded in f32 (values computed at load) */
} DgLayoutKind;

typedef struct {
  char name[160]; /* the tensor's name in the weight file */
  DgLayoutKind kind;
  guint ndim;
  gint64 shape[5]; /* PyTorch order */
  int slot;        /* the component's own enum: which field receives the tensor */
  int layer;       /* the layer (block) it belongs to; -1 outside the layers */
  int sub;         /* a position within the slot (a projection of an attention), else 0 */
} DgLayoutTensor;

/* Called once per tensor, in load order. FALSE (with @error set) stops the walk. */
typedef gboolean (*DgLayoutVisit) (const DgLayoutTensor *t, gpointer user_data, GError **error);

static inline gint64
dg_layout_numel (const DgLayoutTensor *t)
{
  gint64 n = 1;
  for (guint i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

/* One piece of a forward pass's arena: its shape (f32 unless the component says otherwise), in
 * the order the pass takes the pieces. ndim 0: the piece is not taken for this request. */
typedef struct {
  guint ndim;
  gint64 shape[4];
} DgLayoutAct;

#define DG_LAYOUT_ACT(a, ...)                                                 \
  do {                                                                        \
    const gint64 s_[] = { __VA_ARGS__ };                                      \
    (a)->ndim = G_N_ELEMENTS (s_);                                            \
    for (guint i_ = 0; i_ < G_N_ELEMENTS (s_); i_++) (a)->shape[i_] = s_[i_]; \
  } while (0)

static inline gint64
dg_layout_act_numel (const DgLayoutAct *a)
{
  if (!a->ndim)
    return 0;
  gint64 n = 1;
  for (guint i = 0; i < a->ndim; i++) n *= a->shape[i];
  return n;
}

G_END_DECLS
