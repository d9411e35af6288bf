"""Tiny random-weight DeepGen 1.0 components built with the canonical classes (TESTING.md §2-§4).

Every component is constructed from a config (never from a hub id) and every parameter and persistent
buffer except the DiT `pos_embed.pos_embed` table is overwritten from torch.manual_seed(0) (§3).
"""
import json
import math
import os

import torch
import torch.nn as nn

import tiny_tokenizer

SEED_WEIGHTS = 0

# ----------------------------------------------------------------------------------------------
# configs
# ----------------------------------------------------------------------------------------------


def vlm_config_dict(special_ids):
    sp = special_ids
    text = dict(
        vocab_size=tiny_tokenizer.VOCAB_ROWS, hidden_size=32, intermediate_size=64, num_hidden_layers=36,
        num_attention_heads=2, num_key_value_heads=1, hidden_act="silu", max_position_embeddings=128000,
        rms_norm_eps=1e-6, rope_theta=1000000.0, use_sliding_window=False, sliding_window=32768,
        max_window_layers=36, attention_dropout=0.0, tie_word_embeddings=True,
        rope_scaling={"type": "default", "mrope_section": [2, 3, 3]},
        bos_token_id=sp["<|endoftext|>"], eos_token_id=sp["<|im_end|>"], pad_token_id=sp["<|endoftext|>"],
    )
    vision = dict(
        depth=4, hidden_size=32, hidden_act="silu", intermediate_size=48, num_heads=2, in_channels=3,
        patch_size=14, spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2, window_size=112,
        out_hidden_size=32, fullatt_block_indexes=[1, 3],
    )
    return dict(
        text_config=text, vision_config=vision,
        image_token_id=sp["<|image_pad|>"], video_token_id=sp["<|video_pad|>"],
        vision_start_token_id=sp["<|vision_start|>"], vision_end_token_id=sp["<|vision_end|>"],
        vision_token_id=sp["<|vision_pad|>"],
        bos_token_id=sp["<|endoftext|>"], eos_token_id=sp["<|im_end|>"], pad_token_id=sp["<|endoftext|>"],
        tie_word_embeddings=True,
    )


CONNECTOR_CONFIG = dict(hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=2,
                        hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, attention_dropout=0.0)
NUM_QUERIES = 8

DIT_CONFIG = dict(sample_size=32, patch_size=2, in_channels=16, out_channels=16, num_layers=4,
                  attention_head_dim=16, num_attention_heads=2, joint_attention_dim=48,
                  caption_projection_dim=32, pooled_projection_dim=24, pos_embed_max_size=48,
                  dual_attention_layers=(0, 1), qk_norm="rms_norm")

VAE_CONFIG = dict(in_channels=3, out_channels=3, latent_channels=16,
                  down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                  block_out_channels=(8, 16, 32, 32), layers_per_block=2, norm_num_groups=4, act_fn="silu",
                  mid_block_add_attention=True, use_quant_conv=False, use_post_quant_conv=False,
                  scaling_factor=1.5305, shift_factor=0.0609, sample_size=64, force_upcast=True)

SCHEDULER_CONFIG = dict(num_train_timesteps=1000, shift=3.0)

PROMPT_TEMPLATE = dict(
    IMG_START_TOKEN="<|vision_start|>", IMG_END_TOKEN="<|vision_end|>", IMG_CONTEXT_TOKEN="<|image_pad|>",
    IMG_START_TOKEN_FOR_GENERATION=False, SYSTEM="<|im_start|>system\n{system}<|im_end|>\n",
    INSTRUCTION="<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n", SUFFIX="<|im_end|>",
    SUFFIX_AS_EOS=True, SEP="\n", STOP_WORDS=["<|im_end|>", "<|endoftext|>"],
    GENERATION="Generate an image: {input}", CFG="Generate an image.")

# ----------------------------------------------------------------------------------------------
# connector (SigLIP-style encoder + projectors + meta queries), DeepGen key names
# ----------------------------------------------------------------------------------------------


def connector_encoder_config(attn_implementation="eager", enc_config=None):
    from transformers import SiglipVisionConfig
    cfg = SiglipVisionConfig(**(enc_config or CONNECTOR_CONFIG))
    cfg._attn_implementation = attn_implementation
    return cfg


class ConnectorPackage(nn.Module):
    """Keys: meta_queries, projector_{1,2,3}.*, connector.layers.{i}.* (transformers SiglipEncoder)."""

    def __init__(self, llm_hidden=32, num_llm_layers_selected=6, pooled_dim=24, joint_dim=48,
                 num_queries=NUM_QUERIES, attn_implementation="eager", enc_config=None):
        super().__init__()
        from transformers.models.siglip.modeling_siglip import SiglipEncoder
        cfg = connector_encoder_config(attn_implementation, enc_config)
        self.connector = SiglipEncoder(cfg)
        d = cfg.hidden_size
        self.projector_1 = nn.Linear(llm_hidden * num_llm_layers_selected, d)
        self.projector_2 = nn.Linear(d, pooled_dim)
        self.projector_3 = nn.Linear(d, joint_dim)
        self.meta_queries = nn.Parameter(torch.zeros(num_queries, llm_hidden))

    def llm2dit(self, x, dump=None):
        x = self.projector_1(x)
        if dump is not None:
            dump["scb.p1"] = x
        for i, layer in enumerate(self.connector.layers):
            out = layer(x, attention_mask=None)
            x = out[0] if isinstance(out, tuple) else out
            if dump is not None:
                dump[f"scb.conn.layer{i}"] = x
        pooled = self.projector_2(x.mean(1))
        seq = self.projector_3(x)
        return pooled, seq


# ----------------------------------------------------------------------------------------------
# initialisation (§3)
# ----------------------------------------------------------------------------------------------

INIT_RULES = {
    "linear_conv_weight": "normal(0, std=1/sqrt(fan_in)), fan_in = prod(shape[1:])",
    "linear_conv_bias": "normal(0, std=0.02)",
    "norm_weight": "1 + uniform(-0.2, 0.2)  (RMSNorm/LayerNorm/GroupNorm/qk-norm)",
    "norm_bias": "normal(0, std=0.05)",
    "embed_tokens": "normal(0, std=1)",
    "meta_queries": "normal(0, std=1/sqrt(32))",
    "order": "torch.manual_seed(0) once per component, then named_modules() order, "
             "direct parameters of each module in registration order",
    "kept": "DiT pos_embed.pos_embed as computed by diffusers",
}


def _is_norm(mod):
    name = type(mod).__name__
    return isinstance(mod, (nn.LayerNorm, nn.GroupNorm)) or "Norm" in name


@torch.no_grad()
def randomize_(model, keep=("pos_embed.pos_embed",)):
    done = set()
    for mname, mod in model.named_modules():
        for pname, p in list(mod.named_parameters(recurse=False)) + list(mod.named_buffers(recurse=False)):
            full = f"{mname}.{pname}" if mname else pname
            if full in keep or id(p) in done:
                continue
            if pname in mod._buffers and pname in mod._non_persistent_buffers_set:
                continue
            if not p.is_floating_point():
                continue
            done.add(id(p))
            if isinstance(mod, nn.Embedding):
                p.normal_(0.0, 1.0)
            elif full.endswith("meta_queries"):
                p.normal_(0.0, 1.0 / math.sqrt(p.shape[-1]))
            elif _is_norm(mod):
                if pname == "weight":
                    p.copy_(1.0 + torch.empty_like(p).uniform_(-0.2, 0.2))
                elif pname == "bias":
                    p.normal_(0.0, 0.05)
                else:
                    raise RuntimeError(f"unhandled norm tensor {full}")
            elif pname == "weight" and p.ndim >= 2:
                fan_in = int(math.prod(p.shape[1:]))
                p.normal_(0.0, 1.0 / math.sqrt(fan_in))
            elif pname == "bias" and p.ndim == 1:
                p.normal_(0.0, 0.02)
            else:
                raise RuntimeError(f"unhandled tensor {full} {tuple(p.shape)} in {type(mod).__name__}")
    return model


# ----------------------------------------------------------------------------------------------
# builders
# ----------------------------------------------------------------------------------------------


def build_vlm(special_ids, attn_implementation="sdpa"):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    cfg = Qwen2_5_VLConfig(**vlm_config_dict(special_ids))
    cfg._attn_implementation = attn_implementation
    torch.manual_seed(SEED_WEIGHTS)
    model = Qwen2_5_VLForConditionalGeneration(cfg).eval()
    torch.manual_seed(SEED_WEIGHTS)
    randomize_(model)
    model.tie_weights()
    return model


def build_connector():
    torch.manual_seed(SEED_WEIGHTS)
    m = ConnectorPackage().eval()
    torch.manual_seed(SEED_WEIGHTS)
    return randomize_(m)


def build_dit():
    from diffusers import SD3Transformer2DModel
    torch.manual_seed(SEED_WEIGHTS)
    m = SD3Transformer2DModel(**DIT_CONFIG).eval()
    torch.manual_seed(SEED_WEIGHTS)
    return randomize_(m)


def build_vae():
    from diffusers import AutoencoderKL
    torch.manual_seed(SEED_WEIGHTS)
    m = AutoencoderKL(**VAE_CONFIG).eval()
    torch.manual_seed(SEED_WEIGHTS)
    return randomize_(m)


def build_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler
    return FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG)


def count_params(m):
    seen, n = set(), 0
    for p in m.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n


def _dump_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, sort_keys=False)
        f.write("\n")


def save_tiny_deepgen(out_dir, lora=True):
    """Build every component and write the DeepGen-1.0-diffusers layout. Returns an info dict."""
    from safetensors.torch import save_file
    os.makedirs(out_dir, exist_ok=True)
    info = {}
    special_ids = tiny_tokenizer.save_tokenizer(os.path.join(out_dir, "tokenizer"))
    info["special_token_ids"] = special_ids

    # ---- VLM (save_pretrained, two shards + index like the release)
    vlm = build_vlm(special_ids)
    vlm.save_pretrained(os.path.join(out_dir, "vlm"), safe_serialization=True, max_shard_size="1200KB")
    with open(os.path.join(out_dir, "vlm", "model.safetensors.index.json")) as f:
        idx = json.load(f)
    keys = sorted(idx["weight_map"])
    layout = "legacy (model.layers.* / visual.*)" if any(k.startswith("visual.") for k in keys) else \
        "new (model.language_model.* / model.visual.*)"
    shards = sorted(set(idx["weight_map"].values()))
    if len(shards) != 2:
        raise RuntimeError(f"expected 2 VLM shards, got {shards}")
    info["vlm"] = dict(params=count_params(vlm), text_params=count_params(vlm.model.language_model),
                       vision_params=count_params(vlm.model.visual), tensors=len(keys),
                       save_pretrained_key_layout=layout, shards=shards)
    # copy in the other key layout (in-memory transformers >= 4.52 names), single file
    sd = {k: v.contiguous() for k, v in vlm.state_dict().items() if k != "lm_head.weight"}
    alt = os.path.join(out_dir, "vlm_language_model_layout")
    os.makedirs(alt, exist_ok=True)
    save_file(sd, os.path.join(alt, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "vlm", "config.json")) as f:
        vcfg = f.read()
    with open(os.path.join(alt, "config.json"), "w") as f:
        f.write(vcfg)
    info["vlm_other_layout"] = dict(dir="vlm_language_model_layout", key_layout="model.language_model.* / model.visual.*",
                                    tensors=len(sd))

    # ---- connector
    conn = build_connector()
    os.makedirs(os.path.join(out_dir, "connector"), exist_ok=True)
    csd = {k: v.contiguous() for k, v in conn.state_dict().items()}
    save_file(csd, os.path.join(out_dir, "connector", "model.safetensors"), metadata={"format": "pt"})
    ccfg = dict(CONNECTOR_CONFIG)
    ccfg.update(num_queries=NUM_QUERIES, llm_hidden_size=32, num_selected_layers=6,
                projector_1=[32, 6 * 32], projector_2=[24, 32], projector_3=[48, 32],
                _note="tiny DeepGen connector package; encoder = transformers SiglipEncoder layers "
                      "(pre-LN, no embeddings, no final norm, no mask)")
    _dump_json(os.path.join(out_dir, "connector", "config.json"), ccfg)
    info["connector"] = dict(params=count_params(conn), tensors=len(csd))

    # ---- DiT
    dit = build_dit()
    dit.save_pretrained(os.path.join(out_dir, "transformer"), safe_serialization=True)
    info["transformer"] = dict(params=count_params(dit), pos_embed_shape=list(dit.pos_embed.pos_embed.shape))

    # ---- VAE
    vae = build_vae()
    vae.save_pretrained(os.path.join(out_dir, "vae"), safe_serialization=True)
    info["vae"] = dict(params=count_params(vae), encoder_params=count_params(vae.encoder),
                       decoder_params=count_params(vae.decoder))

    # ---- scheduler, model_index, prompt template
    sch = build_scheduler()
    sch.save_pretrained(os.path.join(out_dir, "scheduler"))
    import diffusers
    _dump_json(os.path.join(out_dir, "model_index.json"), {
        "_class_name": ["deepgen_pipeline", "DeepGenPipeline"], "_diffusers_version": diffusers.__version__,
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "transformer": ["diffusers", "SD3Transformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]})
    _dump_json(os.path.join(out_dir, "prompt_template.json"), PROMPT_TEMPLATE)

    # (the native checkpoint layout, "transformer." + DiT keys plus the connector keys in one file, is not
    #  stored: it is the concatenation of transformer/ and connector/ and would cost 1.1 MB of the budget)

    # bf16-rounded copy of the position table (the release stores the DiT in bf16)
    save_file({"pos_embed.pos_embed": dit.pos_embed.pos_embed.to(torch.bfloat16).contiguous()},
              os.path.join(out_dir, "transformer", "pos_embed_bf16.safetensors"), metadata={"format": "pt"})

    if lora:
        info["vlm_lora"] = save_lora_variant(vlm, os.path.join(out_dir, "vlm_lora"))
    return info


LORA_R, LORA_ALPHA = 4, 8


@torch.no_grad()
def save_lora_variant(vlm_base, out_dir):
    """PEFT LoRA on every Linear + Embedding of the VLM (like DeepGen's lora_modules='auto').

    Files: adapter_model.safetensors + adapter_config.json (PEFT save format, no '.default'),
    merged/model.safetensors (+config.json): base + (alpha/r)·B·A, legacy key layout like vlm/.
    """
    import copy
    from peft import LoraConfig
    from safetensors.torch import save_file
    os.makedirs(out_dir, exist_ok=True)
    m = copy.deepcopy(vlm_base)
    targets = [n for n, mod in m.named_modules() if isinstance(mod, (nn.Linear, nn.Embedding))]
    m.config.tie_word_embeddings = False  # as DeepGen does before add_adapter
    torch.manual_seed(1)
    m.add_adapter(LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, init_lora_weights="gaussian",
                             target_modules=targets, lora_dropout=0.0))
    torch.manual_seed(2)
    for n, p in m.named_parameters():
        if ".lora_B." in n or n.endswith("lora_B.default.weight"):
            p.normal_(0.0, 0.1)
        elif "lora_embedding_A" in n:
            p.normal_(0.0, 0.1)
    lora_sd = {k: v.contiguous() for k, v in m.state_dict().items() if "lora_" in k}
    # (in-model names '<module>.lora_A.default.weight' are not stored separately, to save space: they are the
    #  adapter_model.safetensors names without 'base_model.model.' and with '.default' before '.weight', and
    #  'lora_embedding_{A,B}' + '.default' for the embedding)
    # PEFT adapter files (what PeftModel.save_pretrained writes; transformers' save_pretrained refuses
    # the tied embed/lm_head base weights once both carry adapters)
    from peft.utils import get_peft_model_state_dict
    ad = get_peft_model_state_dict(m, adapter_name="default", save_embedding_layers=False)
    ad = {("base_model.model." + k): v.contiguous() for k, v in ad.items()}
    save_file(ad, os.path.join(out_dir, "adapter_model.safetensors"), metadata={"format": "pt"})
    m.peft_config["default"].save_pretrained(out_dir)
    acp = os.path.join(out_dir, "adapter_config.json")
    with open(acp) as f:
        ac = json.load(f)
    ac["target_modules"] = sorted(ac["target_modules"])  # PEFT stores a set: make the file reproducible
    _dump_json(acp, ac)
    # merged reference: explicit fp32 formula, checked against peft's own merge
    base_sd = vlm_base.state_dict()
    merged = {k: v.clone() for k, v in base_sd.items()}
    scale = LORA_ALPHA / LORA_R
    nmerged = 0
    for name in targets:
        mod = m.get_submodule(name)
        if isinstance(mod, nn.Module) and hasattr(mod, "lora_A") and "default" in mod.lora_A:
            A, B = mod.lora_A["default"].weight, mod.lora_B["default"].weight
            merged[name + ".weight"] = base_sd[name + ".weight"] + scale * (B @ A)
            nmerged += 1
        elif hasattr(mod, "lora_embedding_A") and "default" in mod.lora_embedding_A:
            A, B = mod.lora_embedding_A["default"], mod.lora_embedding_B["default"]
            merged[name + ".weight"] = base_sd[name + ".weight"] + scale * (B @ A).T
            nmerged += 1
    # peft merge for cross-check
    from peft.tuners.lora import LoraLayer
    maxdiff = 0.0
    for name in targets:
        mod = m.get_submodule(name)
        if isinstance(mod, LoraLayer):
            w = mod.get_base_layer().weight.detach().clone()
            delta = mod.get_delta_weight("default")
            ref = merged[name + ".weight"]
            maxdiff = max(maxdiff, (w + delta - ref).abs().max().item())
    if maxdiff > 1e-5:
        raise RuntimeError(f"LoRA merge mismatch vs peft: {maxdiff}")
    # lm_head is a separate (untied) module in the LoRA model; store it too in merged
    merged_out = {}
    for k, v in merged.items():
        if k.startswith("model.language_model."):
            k2 = "model." + k[len("model.language_model."):]
        elif k.startswith("model.visual."):
            k2 = "visual." + k[len("model.visual."):]
        else:
            k2 = k
        merged_out[k2] = v.contiguous()
    os.makedirs(os.path.join(out_dir, "merged"), exist_ok=True)
    save_file(merged_out, os.path.join(out_dir, "merged", "model.safetensors"), metadata={"format": "pt"})
    cfgd = json.loads(vlm_base.config.to_json_string())
    cfgd["tie_word_embeddings"] = False
    if "text_config" in cfgd:
        cfgd["text_config"]["tie_word_embeddings"] = False
    _dump_json(os.path.join(out_dir, "merged", "config.json"), cfgd)
    return dict(r=LORA_R, alpha=LORA_ALPHA, scale=scale, target_modules=len(targets), merged_modules=nmerged,
                lora_tensors=len(lora_sd), peft_merge_maxdiff=maxdiff,
                init="PEFT gaussian (torch.manual_seed(1)), then lora_B and lora_embedding_A ~ N(0, std 0.1) "
                     "(torch.manual_seed(2))",
                note="lm_head gets its own LoRA (tie_word_embeddings=False as in DeepGen), so merged/ has an "
                     "lm_head.weight different from model.embed_tokens.weight")
