/* Stacked Channel Bridging (MODEL.md §1.8, §4): the projectors and the SigLIP-style connector
 * between the VLM's stacked hidden states and the DiT's conditioning, plus the meta queries the
 * VLM input ends with.
 *
 *   merged [rows, S, 6·hidden_llm] → projector_1 → N pre-LN encoder layers (full bidirectional
 *   attention, no mask, no positions, tanh GELU) → pooled = projector_2(mean over all S tokens),
 *   seq = projector_3(all tokens).
 *
 * Loaded from connector/ (config.json + model.safetensors). Sizes that the checkpoint fixes
 * (number of meta queries, LLM width, projector widths) come from the tensor shapes; the
 * encoder's from config.json, checked against the tensors.
 *
 * Forward functions RECORD into a VkcCmd with activations from a DgArena and return nothing:
 * check dg_arena_check () once before submitting. Precision (weights.h): bf16 mode keeps the
 * matrices bf16 and rounds every activation the reference (`model.to(bfloat16)`) stores in
 * bf16 — each linear output, LayerNorm, GELU, attention output, residual add and the mean. */
#pragma once

#include "config.h"
#include "connector_layout.h"
#include "deepgen.h"
#include "weights.h"
#include "vkc.h"

G_BEGIN_DECLS

typedef struct _DgConnector DgConnector;

DgConnector *dg_connector_load (VkcDevice *dev, const char *dir, DgPrecision precision, DgWeightFormat weights,
                                GError **error);
void dg_connector_free (DgConnector *conn);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgConnector, dg_connector_free)

const DgConnectorConfig *dg_connector_config (const DgConnector *conn);
guint dg_connector_n_queries (const DgConnector *conn);  /* meta queries (128 real, 8 tiny) */
guint dg_connector_llm_hidden (const DgConnector *conn); /* their width = the LLM's hidden size */
guint dg_connector_in_dim (const DgConnector *conn);     /* projector_1 input: stacked channels */
guint dg_connector_pooled_dim (const DgConnector *conn); /* projector_2 output (DiT pooled_projection_dim) */
guint dg_connector_seq_dim (const DgConnector *conn);    /* projector_3 output (DiT joint_attention_dim) */
guint64 dg_connector_weight_bytes (const DgConnector *conn);

/* The meta queries [n_queries, llm_hidden] appended to every LLM row (MODEL.md §1.5), as the
 * model sees them (bf16-rounded in bf16 mode): on the host (owned by conn) and on the GPU (f32). */
const float *dg_connector_meta_queries_host (const DgConnector *conn);
const VkcTensor *dg_connector_meta_queries (const DgConnector *conn);

/* The meta queries alone, read from @dir's weights without loading the connector (the VLM
 * stage needs only them, and the connector loads after the VLM is released): a host copy
 * [*n_queries, *width] in f32 (g_free), bf16-rounded in bf16 mode exactly as dg_connector_load
 * keeps them. Errors as dg_connector_load's for that tensor (DG_ERROR_MISSING, _FORMAT, _SHAPE). */
float *dg_connector_read_meta_queries (const char *dir, DgPrecision precision, guint *n_queries, guint *width,
                                       GError **error);

/* Observing intermediates (tests): called while recording with the live tensor — "p1"
 * (projector_1 output), "layer0" … (each encoder layer's output, [rows, S, hidden]), "mean".
 * The tensor is overwritten later in the same command buffer; copy it (vkc_op_copy) to keep it. */
void dg_connector_set_tap (DgConnector *conn, DgTapFunc func, gpointer user_data);

/* merged [rows, S, in_dim] (f32, last dim contiguous, rows/tokens may be strided) →
 * *pooled [rows, pooled_dim] and *seq [rows, S, seq_dim], both allocated in @arena. Rows are
 * independent; the mean runs over all S tokens, pads included (MODEL.md §10 item 4). */
void dg_connector_forward (DgConnector *conn, VkcCmd *cmd, DgArena *arena, const VkcTensor *merged, VkcTensor *pooled,
                           VkcTensor *seq);

/* One encoder layer (tests): x [rows, S, hidden] → *y (allocated in @arena). */
void dg_connector_forward_layer (DgConnector *conn, VkcCmd *cmd, DgArena *arena, guint layer, const VkcTensor *x,
                                 VkcTensor *y);

G_END_DECLS
