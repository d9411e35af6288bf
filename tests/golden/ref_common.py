"""Shared helpers: loading the tiny model folder with the canonical classes, FA2-style attention for the LLM,
saving golden tensors."""
import json
import os

import torch
import torch.nn.functional as F

FA2_EMUL = "sdpa_fa2pad"
PAD_ROW_STATS = {"calls": 0, "padded_calls": 0, "pad_rows": 0, "sdpa_nonzero_pad_rows": 0}


def _fa2_emul_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None,
                        **kwargs):
    """transformers' SDPA attention, then force the output of query rows that see no key to exactly 0
    (flash-attention-2 varlen semantics for left-padded rows, MODEL.md §1.7, §10 item 4).

    Also counts how many such rows SDPA itself did not already return as exact zeros."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    out, w = sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                    is_causal=is_causal, **kwargs)
    PAD_ROW_STATS["calls"] += 1
    if attention_mask is not None and attention_mask.dtype == torch.bool and attention_mask.ndim == 4:
        m = attention_mask[:, :, :, : key.shape[-2]]
        dead = ~m.any(dim=-1)  # [B, 1 or H, Q]
        if dead.any():
            PAD_ROW_STATS["padded_calls"] += 1
            dead_bq = dead.any(dim=1)  # [B, Q]
            PAD_ROW_STATS["pad_rows"] += int(dead_bq.sum())
            # out: [B, Q, H, D]
            nz = out[dead_bq].abs().amax().item() if dead_bq.any() else 0.0
            if nz != 0.0:
                PAD_ROW_STATS["sdpa_nonzero_pad_rows"] += int(dead_bq.sum())
            out = out.masked_fill(dead_bq[:, :, None, None], 0.0)
    return out, w


def register_attention():
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask
    AttentionInterface.register(FA2_EMUL, _fa2_emul_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(FA2_EMUL, sdpa_mask)


class Models:
    """The tiny DeepGen components loaded from a DeepGen-1.0-diffusers-style folder."""

    def __init__(self, model_dir, dtype=torch.float32, real=False):
        import tiny_models
        from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
        from safetensors.torch import load_file
        from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

        import dit_ref
        register_attention()
        self.dtype = dtype
        self.tokenizer = AutoTokenizer.from_pretrained(os.path.join(model_dir, "tokenizer"))
        self.vlm = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            os.path.join(model_dir, "vlm"), torch_dtype=dtype if real else torch.float32,
            attn_implementation=FA2_EMUL).eval()
        csd = load_file(os.path.join(model_dir, "connector", "model.safetensors"))
        if real:
            # full-size connector: sizes from the tensors, heads from its config.json (MODEL.md §4 default 32)
            ccfg_path = os.path.join(model_dir, "connector", "config.json")
            ccfg = json.load(open(ccfg_path)) if os.path.exists(ccfg_path) else {}
            d = csd["projector_1.weight"].shape[0]
            n_layers = 1 + max(int(k.split(".")[2]) for k in csd if k.startswith("connector.layers."))
            enc = dict(hidden_size=d, intermediate_size=csd["connector.layers.0.mlp.fc1.weight"].shape[0],
                       num_hidden_layers=n_layers, num_attention_heads=ccfg.get("num_attention_heads", 32),
                       hidden_act=ccfg.get("hidden_act", "gelu_pytorch_tanh"),
                       layer_norm_eps=ccfg.get("layer_norm_eps", 1e-6), attention_dropout=0.0)
            llm_h = csd["meta_queries"].shape[1]
            self.connector = tiny_models.ConnectorPackage(
                llm_hidden=llm_h, num_llm_layers_selected=csd["projector_1.weight"].shape[1] // llm_h,
                pooled_dim=csd["projector_2.weight"].shape[0], joint_dim=csd["projector_3.weight"].shape[0],
                num_queries=csd["meta_queries"].shape[0], attn_implementation="sdpa", enc_config=enc).eval()
        else:
            self.connector = tiny_models.ConnectorPackage().eval()
        self.connector.load_state_dict(csd, strict=True)
        load_dtype = dtype if real else torch.float32
        self.dit = SD3Transformer2DModel.from_pretrained(os.path.join(model_dir, "transformer"),
                                                         torch_dtype=load_dtype).eval()
        dit_ref.install_processors(self.dit)
        self.vae = AutoencoderKL.from_pretrained(os.path.join(model_dir, "vae"), torch_dtype=load_dtype).eval()
        self.scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(os.path.join(model_dir, "scheduler"))
        pt = os.path.join(model_dir, "prompt_template.json")
        if os.path.exists(pt):
            with open(pt) as f:
                self.prompt_template = json.load(f)
        else:
            self.prompt_template = dict(tiny_models.PROMPT_TEMPLATE)
        # DeepGen registers the CLIP mean/std as non-persistent buffers of the model; model.bfloat16()
        # casts them (MODEL.md §1.4), so they are kept in the model dtype here as well.
        self.vit_mean = torch.tensor((0.48145466, 0.4578275, 0.40821073))
        self.vit_std = torch.tensor((0.26862954, 0.26130258, 0.27577711))
        if dtype != torch.float32:
            # the reference does model.cuda().bfloat16(): every floating parameter AND buffer is cast
            for m in (self.vlm, self.connector, self.dit, self.vae):
                m.to(dtype)
            self.vit_mean = self.vit_mean.to(dtype)
            self.vit_std = self.vit_std.to(dtype)
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(self.prompt_template["IMG_CONTEXT_TOKEN"])

    @property
    def llm(self):
        return self.vlm.model.language_model

    @property
    def visual(self):
        return self.vlm.model.visual


def to_saveable(t):
    t = t.detach().cpu()
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.contiguous()


def save_tensors(path, tensors):
    from safetensors.torch import save_file
    out = {k: to_saveable(v) for k, v in tensors.items()}
    save_file(out, path, metadata={"format": "pt"})
    return {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in out.items()}


def seeded_randn(seed, shape, dtype=torch.float32, std=1.0):
    """fp32 torch.randn from a CPU generator seeded with `seed`, scaled, then cast to dtype."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g) * std).to(dtype)
