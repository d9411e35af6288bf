/* Typed views of the JSON configs in a DeepGen-1.0-diffusers folder (MODEL.md §2, §4–§8):
 * vlm/config.json, connector/config.json, transformer/config.json, vae/config.json,
 * scheduler/scheduler_config.json and model_index.json.
 *
 * A key that is absent (or null) takes the default of the canonical Python class, so that a
 * config means here exactly what it means to transformers/diffusers; keys without such a default
 * are required. Values are checked for type and range, and each struct for consistency (heads
 * divide the width, section sizes add up, indexes are in range), so that model code can trust
 * them. Options we do not implement are refused with DG_ERROR_UNSUPPORTED rather than ignored.
 * Every error names the file and the key ("vlm/config.json: 'text_config.num_attention_heads' ...").
 *
 * Each loader takes a file or its component folder; each parser takes JSON text, for tests. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Upper bounds that no real model reaches; they keep the structs fixed-size. */
#define DG_CONFIG_MAX_LAYERS 256
#define DG_CONFIG_MAX_BLOCKS 8

typedef enum {
  DG_ACT_SILU,      /* "silu", "swish" */
  DG_ACT_GELU,      /* "gelu": exact erf form */
  DG_ACT_GELU_TANH, /* "gelu_pytorch_tanh", "gelu_new": tanh approximation */
} DgActivation;

const char *dg_activation_name (DgActivation act);

/* ---- Qwen2.5-VL (vlm/config.json) ---- */

typedef struct {
  guint n_layers;     /* num_hidden_layers */
  guint hidden;       /* hidden_size */
  guint n_heads;      /* num_attention_heads */
  guint n_kv_heads;   /* num_key_value_heads */
  guint head_dim;     /* head_dim, else hidden / n_heads */
  guint intermediate; /* intermediate_size */
  double rms_eps;     /* rms_norm_eps */
  double rope_theta;
  guint mrope_section[3]; /* rope_scaling.mrope_section: t, h, w; sums to head_dim / 2 */
  guint vocab_size;       /* rows of embed_tokens */
  guint max_position_embeddings;
  gboolean tie_word_embeddings;
  DgActivation act; /* hidden_act */
} DgQwenTextConfig;

typedef struct {
  guint depth;
  guint hidden;       /* hidden_size */
  guint n_heads;      /* num_heads */
  guint head_dim;     /* hidden / n_heads */
  guint intermediate; /* intermediate_size */
  guint out_hidden;   /* out_hidden_size: merger output = text hidden */
  guint patch_size;
  guint temporal_patch_size;
  guint spatial_merge_size;
  guint window_size; /* pixels */
  guint in_channels; /* in_channels (older files: in_chans) */
  guint tokens_per_second;
  DgActivation act; /* hidden_act */
  guint n_fullatt;
  guint fullatt_block_indexes[DG_CONFIG_MAX_LAYERS];
} DgQwenVisionConfig;

typedef enum {
  DG_QWEN_LAYOUT_FLAT,   /* text keys at the top level (Qwen's own release, transformers < 4.52) */
  DG_QWEN_LAYOUT_NESTED, /* "text_config" / "vision_config" (transformers ≥ 4.52 save_pretrained) */
} DgQwenConfigLayout;

typedef struct {
  DgQwenTextConfig text;
  DgQwenVisionConfig vision;
  gint image_token_id;
  gint video_token_id;
  gint vision_start_token_id;
  gint vision_end_token_id;
  gint bos_token_id; /* -1 when the config has none */
  gint eos_token_id; /* -1 when the config has none; first entry of a list */
  DgQwenConfigLayout layout;
} DgQwenVLConfig;

gboolean dg_qwen_vl_config_load (const char *path, DgQwenVLConfig *out, GError **error);
gboolean dg_qwen_vl_config_parse (const char *json, gssize len, const char *display, DgQwenVLConfig *out,
                                  GError **error);

/* ---- Connector (connector/config.json, DeepGen ConnectorConfig) ---- */

typedef struct {
  guint hidden;       /* hidden_size */
  guint intermediate; /* intermediate_size */
  guint n_layers;     /* num_hidden_layers */
  guint n_heads;      /* num_attention_heads */
  guint head_dim;     /* hidden / n_heads */
  double eps;         /* layer_norm_eps */
  DgActivation act;   /* hidden_act */
} DgConnectorConfig;

gboolean dg_connector_config_load (const char *path, DgConnectorConfig *out, GError **error);
gboolean dg_connector_config_parse (const char *json, gssize len, const char *display, DgConnectorConfig *out,
                                    GError **error);

/* ---- DiT (transformer/config.json, diffusers SD3Transformer2DModel) ---- */

typedef enum {
  DG_QK_NORM_NONE,
  DG_QK_NORM_RMS,   /* "rms_norm" (SD3.5) */
  DG_QK_NORM_LAYER, /* "layer_norm" */
} DgQkNorm;

typedef struct {
  guint sample_size; /* latent size the sincos grid is scaled for */
  guint patch_size;
  guint in_channels;
  guint out_channels; /* null → in_channels */
  guint n_layers;     /* num_layers */
  guint n_heads;      /* num_attention_heads */
  guint head_dim;     /* attention_head_dim */
  guint inner_dim;    /* n_heads · head_dim */
  guint joint_attention_dim;
  guint caption_projection_dim; /* = inner_dim */
  guint pooled_projection_dim;
  guint pos_embed_max_size; /* 0 when null (no cropped table) */
  DgQkNorm qk_norm;
  guint n_dual;
  guint dual_attention_layers[DG_CONFIG_MAX_LAYERS];
} DgDitConfig;

gboolean dg_dit_config_load (const char *path, DgDitConfig *out, GError **error);
gboolean dg_dit_config_parse (const char *json, gssize len, const char *display, DgDitConfig *out, GError **error);
/* Whether block @layer has the second self-attention (SD3.5 "MMDiT-X"). */
gboolean dg_dit_config_is_dual (const DgDitConfig *c, guint layer);

/* ---- VAE (vae/config.json, diffusers AutoencoderKL) ---- */

typedef struct {
  guint in_channels;
  guint out_channels;
  guint latent_channels;
  guint n_blocks; /* len(block_out_channels) */
  guint block_out_channels[DG_CONFIG_MAX_BLOCKS];
  guint layers_per_block;
  guint norm_num_groups;
  DgActivation act; /* act_fn */
  double scaling_factor;
  double shift_factor; /* 0 when null */
  gboolean mid_block_add_attention;
  gboolean use_quant_conv;
  gboolean use_post_quant_conv;
  gboolean force_upcast;
} DgVaeConfig;

gboolean dg_vae_config_load (const char *path, DgVaeConfig *out, GError **error);
gboolean dg_vae_config_parse (const char *json, gssize len, const char *display, DgVaeConfig *out, GError **error);

/* ---- Scheduler (scheduler/scheduler_config.json, FlowMatchEulerDiscreteScheduler) ---- */

typedef enum {
  DG_TIME_SHIFT_EXPONENTIAL,
  DG_TIME_SHIFT_LINEAR,
} DgTimeShiftType;

typedef struct {
  guint num_train_timesteps;
  double shift;
  gboolean use_dynamic_shifting;
  double base_shift;
  double max_shift;
  guint base_image_seq_len;
  guint max_image_seq_len;
  DgTimeShiftType time_shift_type;
} DgSchedulerConfig;

gboolean dg_scheduler_config_load (const char *path, DgSchedulerConfig *out, GError **error);
gboolean dg_scheduler_config_parse (const char *json, gssize len, const char *display, DgSchedulerConfig *out,
                                    GError **error);

/* ---- model_index.json ---- */

typedef struct {
  char *name;       /* "transformer" */
  char *library;    /* "diffusers"; NULL when the file has null */
  char *class_name; /* "SD3Transformer2DModel"; NULL when the file has null */
} DgModelComponent;

typedef struct {
  char *class_name;        /* "DeepGenPipeline" */
  char *module;            /* "deepgen_pipeline" when _class_name is [module, class], else NULL */
  char *diffusers_version; /* NULL when absent */
  guint n_components;
  DgModelComponent *components; /* in file order */
} DgModelIndex;

DgModelIndex *dg_model_index_load (const char *path, GError **error);
DgModelIndex *dg_model_index_parse (const char *json, gssize len, const char *display, GError **error);
void dg_model_index_free (DgModelIndex *idx);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgModelIndex, dg_model_index_free)
/* NULL when the index has no such component. */
const DgModelComponent *dg_model_index_find (const DgModelIndex *idx, const char *name);

G_END_DECLS
