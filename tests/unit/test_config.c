/* unit_config: typed reading of every JSON config of a DeepGen-1.0-diffusers folder, in both
 * Qwen2.5-VL layouts, and a clear error for every broken config. */
#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "config.h"
#include "dg_error.h"
#include "st_writer.h"

static char *tmp_root;

/* ---- reference configs -------------------------------------------------------------------- */

/* Qwen/Qwen2.5-VL-3B-Instruct as released: text keys at the top level (transformers 4.41 era). */
static const char qwen_flat[] =
    "{\"architectures\":[\"Qwen2_5_VLForConditionalGeneration\"],\"attention_dropout\":0.0,"
    "\"bos_token_id\":151643,\"eos_token_id\":151645,\"vision_start_token_id\":151652,"
    "\"vision_end_token_id\":151653,\"vision_token_id\":151654,\"image_token_id\":151655,"
    "\"video_token_id\":151656,\"hidden_act\":\"silu\",\"hidden_size\":2048,\"initializer_range\":0.02,"
    "\"intermediate_size\":11008,\"max_position_embeddings\":128000,\"max_window_layers\":70,"
    "\"model_type\":\"qwen2_5_vl\",\"num_attention_heads\":16,\"num_hidden_layers\":36,"
    "\"num_key_value_heads\":2,\"rms_norm_eps\":1e-06,\"rope_theta\":1000000.0,\"sliding_window\":32768,"
    "\"tie_word_embeddings\":true,\"torch_dtype\":\"bfloat16\",\"transformers_version\":\"4.41.2\","
    "\"use_cache\":true,\"use_sliding_window\":false,"
    "\"vision_config\":{\"depth\":32,\"hidden_act\":\"silu\",\"hidden_size\":1280,\"intermediate_size\":3420,"
    "\"num_heads\":16,\"in_chans\":3,\"out_hidden_size\":2048,\"patch_size\":14,\"spatial_merge_size\":2,"
    "\"spatial_patch_size\":14,\"window_size\":112,\"fullatt_block_indexes\":[7,15,23,31],"
    "\"tokens_per_second\":2,\"temporal_patch_size\":2},"
    "\"rope_scaling\":{\"type\":\"mrope\",\"mrope_section\":[16,24,24]},\"vocab_size\":151936}";

/* The same model as transformers 4.56 save_pretrained writes it: nested text_config, null ids
 * inside text_config, ids at the top level. */
static const char qwen_nested[] =
    "{\"architectures\":[\"Qwen2_5_VLForConditionalGeneration\"],\"dtype\":\"bfloat16\",\"eos_token_id\":151645,"
    "\"image_token_id\":151655,\"model_type\":\"qwen2_5_vl\",\"pad_token_id\":151643,"
    "\"text_config\":{\"attention_dropout\":0.0,\"bos_token_id\":151643,\"eos_token_id\":151645,"
    "\"hidden_act\":\"silu\",\"hidden_size\":2048,\"image_token_id\":null,\"intermediate_size\":11008,"
    "\"max_position_embeddings\":128000,\"max_window_layers\":70,\"model_type\":\"qwen2_5_vl_text\","
    "\"num_attention_heads\":16,\"num_hidden_layers\":36,\"num_key_value_heads\":2,\"rms_norm_eps\":1e-06,"
    "\"rope_scaling\":{\"mrope_section\":[16,24,24],\"rope_type\":\"default\",\"type\":\"default\"},"
    "\"rope_theta\":1000000.0,\"sliding_window\":null,\"tie_word_embeddings\":true,\"use_cache\":true,"
    "\"use_sliding_window\":false,\"video_token_id\":null,\"vocab_size\":151936},"
    "\"transformers_version\":\"4.56.1\",\"video_token_id\":151656,"
    "\"vision_config\":{\"depth\":32,\"fullatt_block_indexes\":[7,15,23,31],\"hidden_act\":\"silu\","
    "\"hidden_size\":1280,\"in_channels\":3,\"intermediate_size\":3420,\"model_type\":\"qwen2_5_vl\","
    "\"num_heads\":16,\"out_hidden_size\":2048,\"patch_size\":14,\"spatial_merge_size\":2,"
    "\"temporal_patch_size\":2,\"tokens_per_second\":2,\"window_size\":112},"
    "\"vision_end_token_id\":151653,\"vision_start_token_id\":151652,\"vision_token_id\":151654}";

/* Newer transformers: rope_parameters with rope_theta inside. */
static const char qwen_rope_parameters[] =
    "{\"model_type\":\"qwen2_5_vl\",\"text_config\":{\"hidden_size\":2048,\"intermediate_size\":11008,"
    "\"num_attention_heads\":16,\"num_hidden_layers\":36,\"num_key_value_heads\":2,\"rms_norm_eps\":1e-06,"
    "\"vocab_size\":151936,\"rope_parameters\":{\"rope_type\":\"default\",\"mrope_section\":[16,24,24],"
    "\"rope_theta\":500000.0}},\"vision_config\":{\"hidden_size\":1280,\"out_hidden_size\":2048}}";

static const char connector_real[] =
    "{\"hidden_size\":2048,\"intermediate_size\":11946,\"num_hidden_layers\":6,\"num_attention_heads\":32,"
    "\"hidden_act\":\"gelu_pytorch_tanh\",\"layer_norm_eps\":1e-06,\"attention_dropout\":0.0}";

static const char dit_real[] =
    "{\"_class_name\":\"SD3Transformer2DModel\",\"_diffusers_version\":\"0.35.2\",\"attention_head_dim\":64,"
    "\"caption_projection_dim\":1536,\"dual_attention_layers\":[0,1,2,3,4,5,6,7,8,9,10,11,12],\"in_channels\":16,"
    "\"joint_attention_dim\":4096,\"num_attention_heads\":24,\"num_layers\":24,\"out_channels\":16,"
    "\"patch_size\":2,\"pooled_projection_dim\":2048,\"pos_embed_max_size\":384,\"qk_norm\":\"rms_norm\","
    "\"sample_size\":128}";

static const char vae_real[] =
    "{\"_class_name\":\"AutoencoderKL\",\"_diffusers_version\":\"0.31.0.dev0\",\"act_fn\":\"silu\","
    "\"block_out_channels\":[128,256,512,512],\"down_block_types\":[\"DownEncoderBlock2D\",\"DownEncoderBlock2D\","
    "\"DownEncoderBlock2D\",\"DownEncoderBlock2D\"],\"force_upcast\":true,\"in_channels\":3,\"latent_channels\":16,"
    "\"latents_mean\":null,\"latents_std\":null,\"layers_per_block\":2,\"mid_block_add_attention\":true,"
    "\"norm_num_groups\":32,\"out_channels\":3,\"sample_size\":1024,\"scaling_factor\":1.5305,"
    "\"shift_factor\":0.0609,\"up_block_types\":[\"UpDecoderBlock2D\",\"UpDecoderBlock2D\",\"UpDecoderBlock2D\","
    "\"UpDecoderBlock2D\"],\"use_post_quant_conv\":false,\"use_quant_conv\":false}";

static const char scheduler_real[] =
    "{\"_class_name\":\"FlowMatchEulerDiscreteScheduler\",\"_diffusers_version\":\"0.31.0.dev0\","
    "\"num_train_timesteps\":1000,\"shift\":3.0}";

static const char model_index_real[] =
    "{\"_class_name\":[\"deepgen_pipeline\",\"DeepGenPipeline\"],\"_diffusers_version\":\"0.35.2\","
    "\"scheduler\":[\"diffusers\",\"FlowMatchEulerDiscreteScheduler\"],"
    "\"transformer\":[\"diffusers\",\"SD3Transformer2DModel\"],\"vae\":[\"diffusers\",\"AutoencoderKL\"]}";

/* ---- checks of the real values (MODEL.md §2, §4–§7) ---------------------------------------- */

static void
check_qwen_3b (const DgQwenVLConfig *c)
{
  g_assert_cmpuint (c->text.n_layers, ==, 36);
  g_assert_cmpuint (c->text.hidden, ==, 2048);
  g_assert_cmpuint (c->text.n_heads, ==, 16);
  g_assert_cmpuint (c->text.n_kv_heads, ==, 2);
  g_assert_cmpuint (c->text.head_dim, ==, 128);
  g_assert_cmpuint (c->text.intermediate, ==, 11008);
  g_assert_cmpfloat (c->text.rms_eps, ==, 1e-6);
  g_assert_cmpuint (c->text.mrope_section[0], ==, 16);
  g_assert_cmpuint (c->text.mrope_section[1], ==, 24);
  g_assert_cmpuint (c->text.mrope_section[2], ==, 24);
  g_assert_cmpuint (c->text.vocab_size, ==, 151936);
  g_assert_true (c->text.tie_word_embeddings);
  g_assert_cmpint (c->text.act, ==, DG_ACT_SILU);
  g_assert_cmpuint (c->vision.depth, ==, 32);
  g_assert_cmpuint (c->vision.hidden, ==, 1280);
  g_assert_cmpuint (c->vision.n_heads, ==, 16);
  g_assert_cmpuint (c->vision.head_dim, ==, 80);
  g_assert_cmpuint (c->vision.intermediate, ==, 3420);
  g_assert_cmpuint (c->vision.out_hidden, ==, 2048);
  g_assert_cmpuint (c->vision.patch_size, ==, 14);
  g_assert_cmpuint (c->vision.temporal_patch_size, ==, 2);
  g_assert_cmpuint (c->vision.spatial_merge_size, ==, 2);
  g_assert_cmpuint (c->vision.window_size, ==, 112);
  g_assert_cmpuint (c->vision.in_channels, ==, 3);
  g_assert_cmpuint (c->vision.tokens_per_second, ==, 2);
  g_assert_cmpuint (c->vision.n_fullatt, ==, 4);
  g_assert_cmpuint (c->vision.fullatt_block_indexes[3], ==, 31);
  g_assert_cmpint (c->image_token_id, ==, 151655);
  g_assert_cmpint (c->video_token_id, ==, 151656);
  g_assert_cmpint (c->vision_start_token_id, ==, 151652);
  g_assert_cmpint (c->vision_end_token_id, ==, 151653);
  g_assert_cmpint (c->eos_token_id, ==, 151645);
}

static void
check_dit_real (const DgDitConfig *c)
{
  g_assert_cmpuint (c->n_layers, ==, 24);
  g_assert_cmpuint (c->n_heads, ==, 24);
  g_assert_cmpuint (c->head_dim, ==, 64);
  g_assert_cmpuint (c->inner_dim, ==, 1536);
  g_assert_cmpuint (c->caption_projection_dim, ==, 1536);
  g_assert_cmpuint (c->joint_attention_dim, ==, 4096);
  g_assert_cmpuint (c->pooled_projection_dim, ==, 2048);
  g_assert_cmpuint (c->in_channels, ==, 16);
  g_assert_cmpuint (c->out_channels, ==, 16);
  g_assert_cmpuint (c->patch_size, ==, 2);
  g_assert_cmpuint (c->sample_size, ==, 128);
  g_assert_cmpuint (c->pos_embed_max_size, ==, 384);
  g_assert_cmpint (c->qk_norm, ==, DG_QK_NORM_RMS);
  g_assert_cmpuint (c->n_dual, ==, 13);
  g_assert_true (dg_dit_config_is_dual (c, 12));
  g_assert_false (dg_dit_config_is_dual (c, 13));
}

static void
check_vae_real (const DgVaeConfig *c)
{
  g_assert_cmpuint (c->latent_channels, ==, 16);
  g_assert_cmpuint (c->n_blocks, ==, 4);
  g_assert_cmpuint (c->block_out_channels[0], ==, 128);
  g_assert_cmpuint (c->block_out_channels[3], ==, 512);
  g_assert_cmpuint (c->layers_per_block, ==, 2);
  g_assert_cmpuint (c->norm_num_groups, ==, 32);
  g_assert_cmpfloat (c->scaling_factor, ==, 1.5305);
  g_assert_cmpfloat (c->shift_factor, ==, 0.0609);
  g_assert_true (c->mid_block_add_attention);
  g_assert_false (c->use_quant_conv);
  g_assert_false (c->use_post_quant_conv);
  g_assert_cmpint (c->act, ==, DG_ACT_SILU);
}

static void
test_qwen_flat (void)
{
  DgQwenVLConfig c;
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_qwen_vl_config_parse (qwen_flat, -1, "vlm/config.json", &c, &error));
  g_assert_no_error (error);
  check_qwen_3b (&c);
  g_assert_cmpint (c.layout, ==, DG_QWEN_LAYOUT_FLAT);
  g_assert_cmpint (c.bos_token_id, ==, 151643);
  g_assert_cmpfloat (c.text.rope_theta, ==, 1e6);
}

static void
test_qwen_nested (void)
{
  DgQwenVLConfig c;
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_qwen_vl_config_parse (qwen_nested, -1, "vlm/config.json", &c, &error));
  g_assert_no_error (error);
  check_qwen_3b (&c);
  g_assert_cmpint (c.layout, ==, DG_QWEN_LAYOUT_NESTED);
  g_assert_cmpint (c.bos_token_id, ==, 151643); /* only in text_config */
}

static void
test_qwen_rope_parameters (void)
{
  DgQwenVLConfig c;
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_qwen_vl_config_parse (qwen_rope_parameters, -1, NULL, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (c.text.rope_theta, ==, 500000.0);
  g_assert_cmpuint (c.text.mrope_section[1], ==, 24);
  /* Vision keys left out take the class defaults. */
  g_assert_cmpuint (c.vision.depth, ==, 32);
  g_assert_cmpuint (c.vision.n_fullatt, ==, 4);
  g_assert_cmpuint (c.vision.tokens_per_second, ==, 4);
  g_assert_cmpint (c.image_token_id, ==, 151655);
  g_assert_cmpint (c.bos_token_id, ==, -1);
}

static void
test_connector (void)
{
  DgConnectorConfig c;
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_connector_config_parse (connector_real, -1, NULL, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (c.hidden, ==, 2048);
  g_assert_cmpuint (c.intermediate, ==, 11946);
  g_assert_cmpuint (c.n_layers, ==, 6);
  g_assert_cmpuint (c.n_heads, ==, 32);
  g_assert_cmpuint (c.head_dim, ==, 64);
  g_assert_cmpfloat (c.eps, ==, 1e-6);
  g_assert_cmpint (c.act, ==, DG_ACT_GELU_TANH);
  g_assert_cmpstr (dg_activation_name (c.act), ==, "gelu_pytorch_tanh");
  /* Defaults of ConnectorConfig. */
  g_assert_true (dg_connector_config_parse ("{}", -1, NULL, &c, &error));
  g_assert_cmpuint (c.hidden, ==, 768);
  g_assert_cmpuint (c.n_layers, ==, 12);
}

static void
test_dit (void)
{
  DgDitConfig c;
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_dit_config_parse (dit_real, -1, NULL, &c, &error));
  g_assert_no_error (error);
  check_dit_real (&c);
  /* Defaults of SD3Transformer2DModel (SD3-Medium). */
  g_assert_true (dg_dit_config_parse ("{}", -1, NULL, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (c.n_layers, ==, 18);
  g_assert_cmpuint (c.inner_dim, ==, 1152);
  g_assert_cmpuint (c.pos_embed_max_size, ==, 96);
  g_assert_cmpint (c.qk_norm, ==, DG_QK_NORM_NONE);
  g_assert_cmpuint (c.n_dual, ==, 0);
  /* null: no stored table; out_channels follows in_channels. */
  g_assert_true (dg_dit_config_parse ("{\"pos_embed_max_size\":null,\"out_channels\":null,\"in_channels\":8,"
                                      "\"qk_norm\":null}",
                                      -1, NULL, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (c.pos_embed_max_size, ==, 0);
  g_assert_cmpuint (c.out_channels, ==, 8);
}

static void
test_vae (void)
{
  DgVaeConfig c;
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_vae_config_parse (vae_real, -1, NULL, &c, &error));
  g_assert_no_error (error);
  check_vae_real (&c);
  g_assert_true (dg_vae_config_parse ("{}", -1, NULL, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (c.n_blocks, ==, 1);
  g_assert_cmpfloat (c.scaling_factor, ==, 0.18215);
  g_assert_cmpfloat (c.shift_factor, ==, 0.0);
  g_assert_true (c.use_quant_conv);
}

static void
test_scheduler (void)
{
  DgSchedulerConfig c;
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_scheduler_config_parse (scheduler_real, -1, NULL, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (c.num_train_timesteps, ==, 1000);
  g_assert_cmpfloat (c.shift, ==, 3.0);
  g_assert_false (c.use_dynamic_shifting);
  g_assert_cmpfloat (c.base_shift, ==, 0.5);
  g_assert_cmpfloat (c.max_shift, ==, 1.15);
  g_assert_cmpuint (c.base_image_seq_len, ==, 256);
  g_assert_cmpuint (c.max_image_seq_len, ==, 4096);
  g_assert_cmpint (c.time_shift_type, ==, DG_TIME_SHIFT_EXPONENTIAL);
  g_assert_true (dg_scheduler_config_parse ("{\"use_dynamic_shifting\":true,\"max_shift\":1.16,"
                                            "\"time_shift_type\":\"linear\",\"use_karras_sigmas\":false,"
                                            "\"shift_terminal\":null}",
                                            -1, NULL, &c, &error));
  g_assert_no_error (error);
  g_assert_true (c.use_dynamic_shifting);
  g_assert_cmpfloat (c.max_shift, ==, 1.16);
  g_assert_cmpint (c.time_shift_type, ==, DG_TIME_SHIFT_LINEAR);
}

static void
test_model_index (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DgModelIndex) idx = dg_model_index_parse (model_index_real, -1, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (idx->class_name, ==, "DeepGenPipeline");
  g_assert_cmpstr (idx->module, ==, "deepgen_pipeline");
  g_assert_cmpstr (idx->diffusers_version, ==, "0.35.2");
  g_assert_cmpuint (idx->n_components, ==, 3);
  const DgModelComponent *t = dg_model_index_find (idx, "transformer");
  g_assert_nonnull (t);
  g_assert_cmpstr (t->library, ==, "diffusers");
  g_assert_cmpstr (t->class_name, ==, "SD3Transformer2DModel");
  g_assert_null (dg_model_index_find (idx, "vlm"));

  g_autoptr (DgModelIndex) plain = dg_model_index_parse (
      "{\"_class_name\":\"StableDiffusion3Pipeline\",\"text_encoder\":[null,null],\"force_zeros\":true}", -1, NULL,
      &error);
  g_assert_no_error (error);
  g_assert_cmpstr (plain->class_name, ==, "StableDiffusion3Pipeline");
  g_assert_null (plain->module);
  g_assert_null (plain->diffusers_version);
  g_assert_cmpuint (plain->n_components, ==, 1);
  g_assert_null (plain->components[0].library);
}

/* ---- broken configs: a valid one with one key changed ------------------------------------- */

typedef enum { QWEN, CONNECTOR, DIT, VAE, SCHEDULER, INDEX } Kind;

typedef struct {
  const char *name;
  Kind kind;
  const char *key;   /* dotted path */
  const char *value; /* JSON text; NULL removes the key */
  int code;
  const char *needle;
} BadConfig;

static const BadConfig bad_configs[] = {
  { "qwen/heads-zero", QWEN, "text_config.num_attention_heads", "0", DG_ERROR_CONFIG,
    "'text_config.num_attention_heads' must be an integer from 1" },
  { "qwen/heads-string", QWEN, "text_config.num_attention_heads", "\"16\"", DG_ERROR_CONFIG, "but it is \"16\"" },
  { "qwen/hidden-float", QWEN, "text_config.hidden_size", "2048.5", DG_ERROR_CONFIG, "'text_config.hidden_size'" },
  { "qwen/hidden-negative", QWEN, "text_config.hidden_size", "-2048", DG_ERROR_CONFIG, "'text_config.hidden_size'" },
  { "qwen/hidden-huge", QWEN, "text_config.hidden_size", "99999999999999999999", DG_ERROR_CONFIG, "hidden_size" },
  { "qwen/hidden-not-divisible", QWEN, "text_config.num_attention_heads", "3", DG_ERROR_CONFIG, "not divisible" },
  { "qwen/kv-not-divisor", QWEN, "text_config.num_key_value_heads", "3", DG_ERROR_CONFIG,
    "not a multiple of 'num_key_value_heads'" },
  { "qwen/layers-too-many", QWEN, "text_config.num_hidden_layers", "100000", DG_ERROR_CONFIG, "num_hidden_layers" },
  { "qwen/eps-zero", QWEN, "text_config.rms_norm_eps", "0", DG_ERROR_CONFIG, "a positive number" },
  { "qwen/eps-string", QWEN, "text_config.rms_norm_eps", "\"1e-6\"", DG_ERROR_CONFIG, "rms_norm_eps" },
  { "qwen/tie-string", QWEN, "text_config.tie_word_embeddings", "\"yes\"", DG_ERROR_CONFIG, "true or false" },
  { "qwen/act-relu", QWEN, "text_config.hidden_act", "\"relu\"", DG_ERROR_UNSUPPORTED, "\"relu\"" },
  { "qwen/sliding-window", QWEN, "text_config.use_sliding_window", "true", DG_ERROR_UNSUPPORTED, "use_sliding_window" },
  { "qwen/rope-missing", QWEN, "text_config.rope_scaling", NULL, DG_ERROR_MISSING, "'text_config.rope_scaling'" },
  { "qwen/rope-not-object", QWEN, "text_config.rope_scaling", "[16,24,24]", DG_ERROR_CONFIG, "an object" },
  { "qwen/mrope-missing", QWEN, "text_config.rope_scaling.mrope_section", NULL, DG_ERROR_MISSING,
    "'text_config.rope_scaling.mrope_section'" },
  { "qwen/mrope-sum", QWEN, "text_config.rope_scaling.mrope_section", "[16,24,23]", DG_ERROR_CONFIG, "M-RoPE" },
  { "qwen/mrope-two", QWEN, "text_config.rope_scaling.mrope_section", "[32,32]", DG_ERROR_CONFIG, "3 entries" },
  { "qwen/mrope-four", QWEN, "text_config.rope_scaling.mrope_section", "[16,16,16,16]", DG_ERROR_CONFIG, "at most 3" },
  { "qwen/rope-yarn", QWEN, "text_config.rope_scaling.rope_type", "\"yarn\"", DG_ERROR_UNSUPPORTED, "\"yarn\"" },
  { "qwen/text-config-array", QWEN, "text_config", "[]", DG_ERROR_CONFIG, "'text_config' must be an object" },
  { "qwen/vision-config-string", QWEN, "vision_config", "\"x\"", DG_ERROR_CONFIG, "'vision_config'" },
  { "qwen/vision-heads-zero", QWEN, "vision_config.num_heads", "0", DG_ERROR_CONFIG, "'vision_config.num_heads'" },
  { "qwen/vision-not-divisible", QWEN, "vision_config.num_heads", "3", DG_ERROR_CONFIG, "not divisible" },
  { "qwen/vision-head-dim", QWEN, "vision_config.num_heads", "128", DG_ERROR_CONFIG, "multiple of 4" },
  { "qwen/fullatt-out-of-range", QWEN, "vision_config.fullatt_block_indexes", "[7,32]", DG_ERROR_CONFIG,
    "names block 32" },
  { "qwen/fullatt-negative", QWEN, "vision_config.fullatt_block_indexes", "[-1]", DG_ERROR_CONFIG,
    "fullatt_block_indexes" },
  { "qwen/fullatt-not-list", QWEN, "vision_config.fullatt_block_indexes", "7", DG_ERROR_CONFIG,
    "fullatt_block_indexes" },
  { "qwen/out-hidden-mismatch", QWEN, "vision_config.out_hidden_size", "1024", DG_ERROR_CONFIG, "merger output" },
  { "qwen/window-size", QWEN, "vision_config.window_size", "100", DG_ERROR_CONFIG, "window_size" },
  { "qwen/image-id-outside-vocab", QWEN, "image_token_id", "200000", DG_ERROR_CONFIG, "outside the vocabulary" },
  { "qwen/image-id-negative", QWEN, "image_token_id", "-5", DG_ERROR_CONFIG, "'image_token_id'" },
  { "qwen/eos-list", QWEN, "eos_token_id", "[\"a\"]", DG_ERROR_CONFIG, "'eos_token_id'" },
  { "qwen/model-type", QWEN, "model_type", "\"qwen2_vl\"", DG_ERROR_UNSUPPORTED, "\"qwen2_vl\"" },
  { "connector/heads", CONNECTOR, "num_attention_heads", "30", DG_ERROR_CONFIG, "not divisible" },
  { "connector/layers-zero", CONNECTOR, "num_hidden_layers", "0", DG_ERROR_CONFIG, "'num_hidden_layers'" },
  { "connector/act", CONNECTOR, "hidden_act", "\"quick_gelu\"", DG_ERROR_UNSUPPORTED, "\"quick_gelu\"" },
  { "connector/eps-negative", CONNECTOR, "layer_norm_eps", "-1e-6", DG_ERROR_CONFIG, "'layer_norm_eps'" },
  { "dit/class", DIT, "_class_name", "\"AutoencoderKL\"", DG_ERROR_CONFIG, "right component folder" },
  { "dit/class-number", DIT, "_class_name", "1", DG_ERROR_CONFIG, "'_class_name'" },
  { "dit/caption-mismatch", DIT, "caption_projection_dim", "1152", DG_ERROR_CONFIG, "caption_projection_dim" },
  { "dit/heads-zero", DIT, "num_attention_heads", "0", DG_ERROR_CONFIG, "'num_attention_heads'" },
  { "dit/too-wide", DIT, "attention_head_dim", "1048576", DG_ERROR_CONFIG, "too large" },
  { "dit/dual-out-of-range", DIT, "dual_attention_layers", "[0,24]", DG_ERROR_CONFIG, "names block 24" },
  { "dit/dual-not-list", DIT, "dual_attention_layers", "5", DG_ERROR_CONFIG, "'dual_attention_layers'" },
  { "dit/qk-norm", DIT, "qk_norm", "\"l2\"", DG_ERROR_UNSUPPORTED, "\"l2\"" },
  { "dit/patch-zero", DIT, "patch_size", "0", DG_ERROR_CONFIG, "'patch_size'" },
  { "vae/class", VAE, "_class_name", "\"AutoencoderTiny\"", DG_ERROR_CONFIG, "AutoencoderTiny" },
  { "vae/groups", VAE, "norm_num_groups", "48", DG_ERROR_CONFIG, "not divisible by 'norm_num_groups'" },
  { "vae/block-type", VAE, "down_block_types",
    "[\"DownEncoderBlock2D\",\"AttnDownEncoderBlock2D\",\"DownEncoderBlock2D\",\"DownEncoderBlock2D\"]",
    DG_ERROR_UNSUPPORTED, "AttnDownEncoderBlock2D" },
  { "vae/types-length", VAE, "up_block_types", "[\"UpDecoderBlock2D\"]", DG_ERROR_CONFIG, "'up_block_types'" },
  { "vae/types-missing", VAE, "down_block_types", NULL, DG_ERROR_MISSING, "'down_block_types'" },
  { "vae/blocks-empty", VAE, "block_out_channels", "[]", DG_ERROR_CONFIG, "empty" },
  { "vae/blocks-too-many", VAE, "block_out_channels", "[32,32,32,32,32,32,32,32,32]", DG_ERROR_CONFIG,
    "block_out_channels" },
  { "vae/scaling-zero", VAE, "scaling_factor", "0", DG_ERROR_CONFIG, "'scaling_factor'" },
  { "vae/shift-string", VAE, "shift_factor", "\"0.06\"", DG_ERROR_CONFIG, "'shift_factor'" },
  { "vae/quant-conv-string", VAE, "use_quant_conv", "\"no\"", DG_ERROR_CONFIG, "'use_quant_conv'" },
  { "vae/act", VAE, "act_fn", "\"mish\"", DG_ERROR_UNSUPPORTED, "\"mish\"" },
  { "scheduler/class", SCHEDULER, "_class_name", "\"EulerDiscreteScheduler\"", DG_ERROR_CONFIG,
    "EulerDiscreteScheduler" },
  { "scheduler/karras", SCHEDULER, "use_karras_sigmas", "true", DG_ERROR_UNSUPPORTED, "'use_karras_sigmas'" },
  { "scheduler/shift-terminal", SCHEDULER, "shift_terminal", "0.1", DG_ERROR_UNSUPPORTED, "'shift_terminal'" },
  { "scheduler/invert", SCHEDULER, "invert_sigmas", "true", DG_ERROR_UNSUPPORTED, "'invert_sigmas'" },
  { "scheduler/stochastic", SCHEDULER, "stochastic_sampling", "true", DG_ERROR_UNSUPPORTED, "stochastic" },
  { "scheduler/shift-zero", SCHEDULER, "shift", "0", DG_ERROR_CONFIG, "'shift' must be a positive number" },
  { "scheduler/shift-negative", SCHEDULER, "shift", "-3.0", DG_ERROR_CONFIG, "'shift'" },
  { "scheduler/timesteps-zero", SCHEDULER, "num_train_timesteps", "0", DG_ERROR_CONFIG, "'num_train_timesteps'" },
  { "scheduler/time-shift-type", SCHEDULER, "time_shift_type", "\"cosine\"", DG_ERROR_UNSUPPORTED, "\"cosine\"" },
  { "scheduler/dynamic-lengths", SCHEDULER, "max_image_seq_len", "128", DG_ERROR_CONFIG, "max_image_seq_len" },
  { "index/class-missing", INDEX, "_class_name", NULL, DG_ERROR_MISSING, "'_class_name'" },
  { "index/class-number", INDEX, "_class_name", "7", DG_ERROR_CONFIG, "'_class_name'" },
  { "index/class-triple", INDEX, "_class_name", "[\"a\",\"b\",\"c\"]", DG_ERROR_CONFIG, "'_class_name'" },
  { "index/component-single", INDEX, "vae", "[\"diffusers\"]", DG_ERROR_CONFIG, "'vae'" },
  { "index/component-numbers", INDEX, "vae", "[1,2]", DG_ERROR_CONFIG, "'vae'" },
  { "index/version-number", INDEX, "_diffusers_version", "35", DG_ERROR_CONFIG, "'_diffusers_version'" },
};

/* Sets (or with value NULL removes) the member at a dotted path of @root. */
static void
set_path (JsonObject *root, const char *path, const char *value)
{
  g_auto (GStrv) parts = g_strsplit (path, ".", -1);
  guint n = g_strv_length (parts);
  JsonObject *obj = root;
  for (guint i = 0; i + 1 < n; i++) obj = json_object_get_object_member (obj, parts[i]);
  g_assert_nonnull (obj);
  if (value == NULL) {
    g_assert_true (json_object_has_member (obj, parts[n - 1]));
    json_object_remove_member (obj, parts[n - 1]);
    return;
  }
  g_autoptr (GError) error = NULL;
  JsonNode *node = json_from_string (value, &error);
  g_assert_no_error (error);
  json_object_set_member (obj, parts[n - 1], node);
}

static void
test_bad_config (gconstpointer p)
{
  const BadConfig *c = p;
  static const char *const bases[] = {
    [QWEN] = qwen_nested, [CONNECTOR] = connector_real, [DIT] = dit_real,
    [VAE] = vae_real,     [SCHEDULER] = scheduler_real, [INDEX] = model_index_real,
  };
  const char *base = bases[c->kind];
  if (c->kind == SCHEDULER && strcmp (c->key, "max_image_seq_len") == 0)
    base = "{\"use_dynamic_shifting\":true,\"base_image_seq_len\":256,\"max_image_seq_len\":4096}";

  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = json_from_string (base, &error);
  g_assert_no_error (error);
  set_path (json_node_get_object (root), c->key, c->value);
  g_autofree char *text = json_to_string (root, FALSE);

  const char *display = "comp/config.json";
  gboolean ok = FALSE;
  union {
    DgQwenVLConfig q;
    DgConnectorConfig c;
    DgDitConfig d;
    DgVaeConfig v;
    DgSchedulerConfig s;
  } out;
  switch (c->kind) {
  case QWEN: ok = dg_qwen_vl_config_parse (text, -1, display, &out.q, &error); break;
  case CONNECTOR: ok = dg_connector_config_parse (text, -1, display, &out.c, &error); break;
  case DIT: ok = dg_dit_config_parse (text, -1, display, &out.d, &error); break;
  case VAE: ok = dg_vae_config_parse (text, -1, display, &out.v, &error); break;
  case SCHEDULER: ok = dg_scheduler_config_parse (text, -1, display, &out.s, &error); break;
  case INDEX: {
    DgModelIndex *idx = dg_model_index_parse (text, -1, display, &error);
    ok = idx != NULL;
    dg_model_index_free (idx);
  } break;
  }
  g_assert_false (ok);
  g_assert_error (error, DG_ERROR, c->code);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, display));
  if (!strstr (error->message, c->needle))
    g_error ("message \"%s\" lacks \"%s\"", error->message, c->needle);
}

/* Whatever the JSON, every parser fails cleanly on text that is not a config object. */
static void
test_not_json (void)
{
  const char *texts[] = { "", "   ", "[]", "1", "{", "{\"a\":1,\"a\":2}", "{\"a\":1}/**/", "\"x\"" };
  for (guint i = 0; i < G_N_ELEMENTS (texts); i++) {
    g_autoptr (GError) error = NULL;
    DgQwenVLConfig q;
    DgDitConfig d;
    DgSchedulerConfig s;
    g_assert_false (dg_qwen_vl_config_parse (texts[i], -1, "x.json", &q, &error));
    g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
    g_clear_error (&error);
    g_assert_false (dg_dit_config_parse (texts[i], -1, "x.json", &d, &error));
    g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
    g_clear_error (&error);
    g_assert_false (dg_scheduler_config_parse (texts[i], -1, "x.json", &s, &error));
    g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
    g_clear_error (&error);
    g_assert_null (dg_model_index_parse (texts[i], -1, "x.json", &error));
    g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
  }
}

/* A failed parse leaves the caller's struct untouched. */
static void
test_failure_keeps_output (void)
{
  DgDitConfig c;
  memset (&c, 0xab, sizeof c);
  g_assert_false (dg_dit_config_parse ("{\"num_layers\":0}", -1, NULL, &c, NULL));
  g_assert_cmphex (c.n_layers, ==, 0xabababab);
}

/* ---- files -------------------------------------------------------------------------------- */

static void
test_files (void)
{
  g_autofree char *dir = g_build_filename (tmp_root, "transformer", NULL);
  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  g_autoptr (GError) error = NULL;
  DgDitConfig d;

  /* Missing file, then a folder without config.json. */
  g_assert_false (dg_dit_config_load (dir, &d, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "config.json"));
  g_clear_error (&error);

  g_free (st_write_text (dir, "config.json", "{\"num_layers\": 24,"));
  g_assert_false (dg_dit_config_load (dir, &d, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
  g_assert_true (g_str_has_prefix (error->message, "transformer/config.json: "));
  g_clear_error (&error);

  g_free (st_write_text (dir, "config.json", ""));
  g_assert_false (dg_dit_config_load (dir, &d, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_FORMAT);
  g_clear_error (&error);

  g_autofree char *path = st_write_text (dir, "config.json", dit_real);
  g_assert_true (dg_dit_config_load (dir, &d, &error));
  g_assert_no_error (error);
  check_dit_real (&d);
  g_assert_true (dg_dit_config_load (path, &d, &error));
  g_assert_no_error (error);

  g_free (st_write_text (dir, "config.json", "{\"num_layers\":0}"));
  g_assert_false (dg_dit_config_load (path, &d, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_CONFIG);
  g_assert_cmpstr (error->message, ==,
                   "transformer/config.json: 'num_layers' must be an integer from 1 to 256, but it is 0");
  g_clear_error (&error);

  g_free (st_write_text (dir, "scheduler_config.json", scheduler_real));
  DgSchedulerConfig s;
  g_assert_true (dg_scheduler_config_load (dir, &s, &error));
  g_assert_no_error (error);
  g_free (st_write_text (dir, "model_index.json", model_index_real));
  g_autoptr (DgModelIndex) idx = dg_model_index_load (dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (idx);
}

/* ---- configs written by the canonical Python classes (tests/data, when present) ----------- */

static char *
data_path (const char *sub)
{
  const char *root = g_getenv ("DEEPGEN_TEST_DATA");
  return g_build_filename (root ? root : DEEPGEN_TEST_DATA_DIR, sub, NULL);
}

static void
test_tiny_configs (void)
{
  g_autofree char *tiny = data_path ("tiny-deepgen");
  if (!g_file_test (tiny, G_FILE_TEST_IS_DIR)) {
    g_test_skip ("tests/data/tiny-deepgen is not there yet");
    return;
  }
  g_autoptr (GError) error = NULL;
  g_autofree char *vlm = g_build_filename (tiny, "vlm", NULL);
  DgQwenVLConfig q;
  g_assert_true (dg_qwen_vl_config_load (vlm, &q, &error));
  g_assert_no_error (error);
  /* TESTING.md §2.1 */
  g_assert_cmpuint (q.text.n_layers, ==, 36);
  g_assert_cmpuint (q.text.hidden, ==, 32);
  g_assert_cmpuint (q.text.n_heads, ==, 2);
  g_assert_cmpuint (q.text.n_kv_heads, ==, 1);
  g_assert_cmpuint (q.text.head_dim, ==, 16);
  g_assert_cmpuint (q.text.mrope_section[0], ==, 2);
  g_assert_cmpuint (q.text.mrope_section[2], ==, 3);
  g_assert_cmpuint (q.text.vocab_size, ==, 1024);
  g_assert_cmpuint (q.vision.depth, ==, 4);
  g_assert_cmpuint (q.vision.n_fullatt, ==, 2);
  g_assert_cmpuint (q.vision.fullatt_block_indexes[1], ==, 3);
  g_assert_cmpuint (q.vision.head_dim, ==, 16);
  g_assert_cmpuint (q.vision.intermediate, ==, 48);
  g_assert_cmpint (q.image_token_id, <, 1024);
  g_assert_cmpint (q.vision_start_token_id, <, 1024);

  g_autofree char *conn = g_build_filename (tiny, "connector", NULL);
  DgConnectorConfig c;
  g_assert_true (dg_connector_config_load (conn, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (c.hidden, ==, 32);
  g_assert_cmpuint (c.intermediate, ==, 40);
  g_assert_cmpuint (c.n_layers, ==, 2);

  g_autofree char *dit = g_build_filename (tiny, "transformer", NULL);
  DgDitConfig d;
  g_assert_true (dg_dit_config_load (dit, &d, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (d.inner_dim, ==, 32);
  g_assert_cmpuint (d.n_layers, ==, 4);
  g_assert_cmpuint (d.n_dual, ==, 2);
  g_assert_cmpuint (d.pos_embed_max_size, ==, 48);
  g_assert_cmpuint (d.sample_size, ==, 32);

  g_autofree char *vae = g_build_filename (tiny, "vae", NULL);
  DgVaeConfig v;
  g_assert_true (dg_vae_config_load (vae, &v, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (v.norm_num_groups, ==, 4);
  g_assert_cmpuint (v.block_out_channels[0], ==, 8);

  g_autofree char *sch = g_build_filename (tiny, "scheduler", NULL);
  DgSchedulerConfig s;
  g_assert_true (dg_scheduler_config_load (sch, &s, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (s.shift, ==, 3.0);
}

/* The configs of the real release, when they are in tests/data: each one that is there must read
 * and carry MODEL.md's values. */
static void
test_release_configs (void)
{
  g_autofree char *root = data_path ("deepgen-1.0-configs");
  if (!g_file_test (root, G_FILE_TEST_IS_DIR)) {
    g_test_skip ("tests/data/deepgen-1.0-configs is not there yet");
    return;
  }
  g_autoptr (GError) error = NULL;
  guint found = 0;

  g_autofree char *vlm = g_build_filename (root, "vlm", "config.json", NULL);
  if (g_file_test (vlm, G_FILE_TEST_EXISTS)) {
    DgQwenVLConfig q;
    g_assert_true (dg_qwen_vl_config_load (vlm, &q, &error));
    g_assert_no_error (error);
    check_qwen_3b (&q);
    found++;
  }
  g_autofree char *conn = g_build_filename (root, "connector", "config.json", NULL);
  if (g_file_test (conn, G_FILE_TEST_EXISTS)) {
    DgConnectorConfig c;
    g_assert_true (dg_connector_config_load (conn, &c, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (c.hidden, ==, 2048);
    g_assert_cmpuint (c.intermediate, ==, 11946);
    g_assert_cmpuint (c.n_layers, ==, 6);
    g_assert_cmpuint (c.n_heads, ==, 32);
    found++;
  }
  g_autofree char *dit = g_build_filename (root, "transformer", "config.json", NULL);
  if (g_file_test (dit, G_FILE_TEST_EXISTS)) {
    DgDitConfig d;
    g_assert_true (dg_dit_config_load (dit, &d, &error));
    g_assert_no_error (error);
    check_dit_real (&d);
    found++;
  }
  g_autofree char *vae = g_build_filename (root, "vae", "config.json", NULL);
  if (g_file_test (vae, G_FILE_TEST_EXISTS)) {
    DgVaeConfig v;
    g_assert_true (dg_vae_config_load (vae, &v, &error));
    g_assert_no_error (error);
    check_vae_real (&v);
    found++;
  }
  g_autofree char *sch = g_build_filename (root, "scheduler", "scheduler_config.json", NULL);
  if (g_file_test (sch, G_FILE_TEST_EXISTS)) {
    DgSchedulerConfig s;
    g_assert_true (dg_scheduler_config_load (sch, &s, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (s.num_train_timesteps, ==, 1000);
    g_assert_cmpfloat (s.shift, ==, 3.0);
    g_assert_false (s.use_dynamic_shifting);
    found++;
  }
  g_autofree char *mi = g_build_filename (root, "model_index.json", NULL);
  if (g_file_test (mi, G_FILE_TEST_EXISTS)) {
    g_autoptr (DgModelIndex) idx = dg_model_index_load (mi, &error);
    g_assert_no_error (error);
    g_assert_nonnull (dg_model_index_find (idx, "transformer"));
    found++;
  }
  g_test_message ("%u release configs checked", found);
  g_assert_cmpuint (found, >, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmp_root = st_tmpdir ();

  g_test_add_func ("/config/qwen/flat", test_qwen_flat);
  g_test_add_func ("/config/qwen/nested", test_qwen_nested);
  g_test_add_func ("/config/qwen/rope-parameters", test_qwen_rope_parameters);
  g_test_add_func ("/config/connector", test_connector);
  g_test_add_func ("/config/dit", test_dit);
  g_test_add_func ("/config/vae", test_vae);
  g_test_add_func ("/config/scheduler", test_scheduler);
  g_test_add_func ("/config/model-index", test_model_index);
  for (guint i = 0; i < G_N_ELEMENTS (bad_configs); i++) {
    g_autofree char *path = g_strdup_printf ("/config/bad/%s", bad_configs[i].name);
    g_test_add_data_func (path, &bad_configs[i], test_bad_config);
  }
  g_test_add_func ("/config/not-json", test_not_json);
  g_test_add_func ("/config/failure-keeps-output", test_failure_keeps_output);
  g_test_add_func ("/config/files", test_files);
  g_test_add_func ("/config/tiny-model", test_tiny_configs);
  g_test_add_func ("/config/release", test_release_configs);

  int ret = g_test_run ();
  st_rmtree (tmp_root);
  g_free (tmp_root);
  return ret;
}
