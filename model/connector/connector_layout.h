/* The connector's layout (MODEL.md §1.8, §4), host-only: its weights in load order and the
 * activations dg_connector_forward takes from its arena. connector.c loads and runs from it, the
 * memory plan counts from it (DESIGN.md §5). */
#pragma once

#include <glib.h>

#include "config.h"
#include "layout.h"

G_BEGIN_DECLS

/* Meta queries when neither the weights nor the config say (DeepGen's num_queries,
 * configs/models/deepgen_scb.py). */
#define CONN_DEFAULT_QUERIES 128

/* The sizes that fix the connector's tensors: its config, and what the checkpoint fixes around
 * it (the meta queries, the stacked LLM width, the DiT's pooled and context widths). */
typedef struct {
  DgConnectorConfig cfg;
  guint n_queries;  /* meta_queries rows */
  guint llm_hidden; /* meta_queries columns: the LLM's width */
  guint in_dim;     /* projector_1 input: the stacked hidden states, n_selected · llm_hidden */
  guint pooled_dim; /* projector_2 output: the DiT's pooled_projection_dim */
  guint seq_dim;    /* projector_3 output: the DiT's joint_attention_dim */
} DgConnectorShape;

/* Where a tensor goes (DgLayoutTensor.slot; sub 0 weight, 1 bias). */
typedef enum {
  CONN_META, /* meta_queries: kept on the host too, uploaded in f32 */
  CONN_P1,
  CONN_P2,
  CONN_P3, /* projector_1/2/3 */
  CONN_LN1,
  CONN_Q,
  CONN_K,
  CONN_V,
  CONN_OUT,
  CONN_LN2,
  CONN_FC1,
  CONN_FC2, /* per layer */
} DgConnectorSlot;

gboolean dg_connector_layout_weights (const DgConnectorShape *s, DgLayoutVisit visit, gpointer user_data,
                                      GError **error);

/* dg_connector_forward's arena for R rows of S tokens, in order: the residual stream, the mean,
 * the outputs, then one layer's buffers (reused by every layer); the bf16 rounding scratch only
 * in bf16 mode. */
typedef enum {
  CONN_ACT_X,
  CONN_ACT_MEAN,
  CONN_ACT_POOLED,
  CONN_ACT_SEQ,
  CONN_ACT_H,
  CONN_ACT_QKV,
  CONN_ACT_O,
  CONN_ACT_F,
  CONN_ACT_TMP,
  CONN_N_ACTS
} DgConnectorAct;

void dg_connector_layout_acts (const DgConnectorShape *s, gint64 R, gint64 S, gboolean bf16,
                               DgLayoutAct acts[CONN_N_ACTS]);

G_END_DECLS
