"""Module-level goldens (TESTING.md §5, end): single blocks of the tiny DeepGen with random inputs.

Files: modules_fp32.safetensors, modules_bf16.safetensors (same keys; bf16 = module.to(bfloat16) and the
fp32 inputs cast to bf16), scheduler.safetensors (sigmas/timesteps tables). Inputs are stored next to the
outputs in each file. The weights are those of tests/data/tiny-deepgen (names in the manifest).
"""
import os

import torch

import dit_ref
import ref_common

SEED_INPUTS = 500


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def llm_layer(models, d, tag_inputs):
    """Decoder layer 0 with 3-D M-RoPE positions from get_rope_index and a left-padded second row."""
    cfg = models.vlm.config
    img = cfg.image_token_id
    vs, ve = cfg.vision_start_token_id, cfg.vision_end_token_id
    # row 0: 3 text, <vs>, 6 image pads (grid 1x4x6 -> 2x3 merged), <ve>, 4 text     (15 tokens)
    # row 1: 3 pads, 1 text, <vs>, 6 image pads, <ve>, 3 text                         (15 tokens)
    pad = models.tokenizer.pad_token_id
    r0 = [5, 6, 7, vs] + [img] * 6 + [ve, 8, 9, 10, 11]
    r1 = [pad] * 3 + [5, vs] + [img] * 6 + [ve, 8, 9, 10]
    ids = torch.tensor([r0, r1])
    mask = ids != pad
    grid = torch.tensor([[1, 4, 6], [1, 4, 6]])
    pos, _ = models.vlm.model.get_rope_index(input_ids=ids, image_grid_thw=grid, video_grid_thw=None,
                                             second_per_grid_ts=None, attention_mask=mask)
    x = tag_inputs("llm_layer.in", (2, ids.shape[1], cfg.text_config.hidden_size))
    cos, sin = models.llm.rotary_emb(x, pos)
    s = ids.shape[1]
    causal = torch.tril(torch.ones(s, s, dtype=torch.bool))
    mask4 = (causal[None] & mask[:, None, :])[:, None]  # [B,1,Q,K] True = attend (sdpa_mask layout)
    layer = models.llm.layers[0]
    y = _first(layer(x, attention_mask=mask4, position_ids=pos[0], position_embeddings=(cos, sin)))
    d.update({"llm_layer.position_ids": pos, "llm_layer.attention_mask": mask, "llm_layer.cos": cos,
              "llm_layer.sin": sin, "llm_layer.out": y})


def vit(models, d, tag_inputs, gh, gw, name):
    """Full ViT on random patch rows for one grid; dumps patch_embed, blocks 0 (window) / 1 (full), merger."""
    visual = models.visual
    vcfg = models.vlm.config.vision_config
    n = gh * gw
    patches = tag_inputs(f"{name}.patches", (n, 3 * vcfg.temporal_patch_size * vcfg.patch_size ** 2))
    grid = torch.tensor([[1, gh, gw]])
    window_index, cu = visual.get_window_index(grid)
    inv = torch.argsort(window_index)
    unit = vcfg.spatial_merge_size ** 2
    cap = {}

    def unperm(t):
        return t.reshape(t.shape[0] // unit, unit, -1)[inv].reshape(t.shape[0], -1)

    def capture(key):
        def hook(mod, args, out):  # returns None: output unchanged
            cap[key + ".in"] = args[0]
            cap[key + ".out"] = out
        return hook

    hooks = [visual.patch_embed.register_forward_hook(capture("patch_embed"))]
    for j in range(len(visual.blocks)):
        hooks.append(visual.blocks[j].register_forward_hook(capture(f"block{j}")))
    try:
        emb = visual(patches, grid_thw=grid)
    finally:
        for h in hooks:
            h.remove()
    d[f"{name}.grid_thw"] = grid
    d[f"{name}.patch_embed.out"] = cap["patch_embed.out"]
    for j in range(len(visual.blocks)):
        d[f"{name}.block{j}.in"] = unperm(cap[f"block{j}.in"])
        d[f"{name}.block{j}.out"] = unperm(cap[f"block{j}.out"])
    d[f"{name}.merger.out"] = emb  # input = last block out; merged raster order (window permutation undone)
    d[f"{name}.window_index"] = window_index
    d[f"{name}.cu_window_seqlens"] = torch.unique_consecutive(torch.tensor(cu, dtype=torch.int32))


def connector_layer(models, d, tag_inputs):
    x = tag_inputs("connector_layer.in", (2, 10, models.connector.connector.config.hidden_size))
    d["connector_layer.out"] = _first(models.connector.connector.layers[0](x, attention_mask=None))
    x = tag_inputs("connector_full.in", (2, 10, models.connector.projector_1.in_features))
    pooled, seq = models.connector.llm2dit(x)
    d["connector_full.pooled"] = pooled
    d["connector_full.seq"] = seq


def dit_blocks(models, d, tag_inputs):
    dit = models.dit
    D = dit.inner_dim
    ctx = tag_inputs("dit_block.ctx", (2, 7, D))
    temb = tag_inputs("dit_block.temb", (2, D))
    x_plain = tag_inputs("dit_block.img", (2, 20, D))
    x_ref = tag_inputs("dit_block_ref.img", (2, 36, D))
    valid = torch.ones(2, 36, dtype=torch.bool)
    valid[1, 28:] = False  # row 1: 20 target + 8 reference tokens, then 8 padding tokens
    d["dit_block_ref.img_valid"] = valid
    for b, name in ((0, "dual"), (2, "plain"), (3, "last")):
        blk = dit.transformer_blocks[b]
        c, x = blk(hidden_states=x_plain, encoder_hidden_states=ctx, temb=temb)
        d[f"dit_block.{name}.img"] = x
        if c is not None:
            d[f"dit_block.{name}.ctx"] = c
        c, x = blk(hidden_states=x_ref, encoder_hidden_states=ctx, temb=temb,
                   joint_attention_kwargs={"image_token_valid": valid})
        d[f"dit_block_ref.{name}.img"] = x
        if c is not None:
            d[f"dit_block_ref.{name}.ctx"] = c


def dit_embeddings(models, d, tag_inputs):
    dit = models.dit
    for (h, w) in ((16, 16), (20, 24), (26, 14)):
        lat = tag_inputs(f"patch_embed.{h}x{w}.in", (1, 16, h, w))
        d[f"patch_embed.{h}x{w}.out"] = dit.pos_embed(lat)
    t = torch.tensor([1000.0, 993.1244, 8.9286], dtype=torch.float32)
    pooled = tag_inputs("timestep_embed.pooled", (3, dit.config.pooled_projection_dim))
    d["timestep_embed.t"] = t
    tte = dit.time_text_embed
    proj = tte.time_proj(t)
    d["timestep_embed.sinusoid"] = proj
    d["timestep_embed.timestep_emb"] = tte.timestep_embedder(proj.to(pooled.dtype))
    d["timestep_embed.out"] = tte(t, pooled)
    # whole DiT forward, with and without reference tokens (deepgen wrapper)
    x = tag_inputs("dit_full.latent", (2, 16, 16, 20))
    ctx = tag_inputs("dit_full.ctx", (2, 9, dit.config.joint_attention_dim))
    pooled2 = tag_inputs("dit_full.pooled", (2, dit.config.pooled_projection_dim))
    tt = torch.tensor([993.1244, 993.1244])
    d["dit_full.timestep"] = tt
    d["dit_full.out"] = dit_ref.deepgen_dit_forward(dit, x, ctx, pooled2, tt)
    r0 = tag_inputs("dit_full_ref.ref0", (16, 16, 20))
    r1 = tag_inputs("dit_full_ref.ref1", (16, 8, 12))
    r2 = tag_inputs("dit_full_ref.ref2", (16, 12, 8))
    d["dit_full_ref.out"] = dit_ref.deepgen_dit_forward(dit, x, ctx, pooled2, tt, cond_hidden_states=[[r0], [r1, r2]])


def vae_modules(models, d, tag_inputs):
    enc, dec = models.vae.encoder, models.vae.decoder
    x = tag_inputs("vae.resnet_shortcut.in", (1, 8, 12, 10))
    d["vae.resnet_shortcut.out"] = enc.down_blocks[1].resnets[0](x, None)   # 8 -> 16, conv_shortcut
    x = tag_inputs("vae.resnet.in", (1, 16, 12, 10))
    d["vae.resnet.out"] = enc.down_blocks[1].resnets[1](x, None)            # 16 -> 16
    x = tag_inputs("vae.downsample.in", (1, 8, 13, 10))
    d["vae.downsample.out"] = enc.down_blocks[0].downsamplers[0](x)
    x = tag_inputs("vae.upsample.in", (1, 32, 6, 5))
    d["vae.upsample.out"] = dec.up_blocks[0].upsamplers[0](x)
    x = tag_inputs("vae.mid_attn.in", (1, 32, 6, 5))
    d["vae.mid_attn.out"] = dec.mid_block.attentions[0](x)
    z = tag_inputs("vae.decode.in", (1, 16, 8, 6))
    d["vae.decode.out"] = models.vae.decode(z).sample
    img = tag_inputs("vae.encode.in", (1, 3, 64, 48), std=0.5)
    post = models.vae.encode(img).latent_dist
    d["vae.encode.mean"] = post.mean
    d["vae.encode.logvar"] = post.logvar


MODULE_WEIGHTS = {
    "llm_layer": "vlm: model.layers.0.* (+ rotary from config: theta 1e6, mrope_section [2,3,3])",
    "vit_10x12": "vlm: visual.* (all 4 blocks; blocks 1 and 3 full attention, 0 and 2 windowed)",
    "connector_layer": "connector: connector.layers.0.*",
    "connector_full": "connector: projector_1, connector.layers.*, projector_2, projector_3",
    "dit_block.{dual,plain,last}": "transformer: transformer_blocks.{0,2,3}.*",
    "dit_block_ref.*": "same blocks with 36 image tokens, row 1 has 8 padding tokens (img_valid), mask rule §5.3",
    "patch_embed.HxW": "transformer: pos_embed.proj.* + pos_embed.pos_embed (centre crop)",
    "timestep_embed": "transformer: time_text_embed.* (t = 1000, 993.1244, 8.9286)",
    "dit_full / dit_full_ref": "whole DiT; _ref: row 0 one 16x20 reference, row 1 two references 8x12 and 12x8",
    "vae.resnet_shortcut": "vae: encoder.down_blocks.1.resnets.0 (8->16 channels, conv_shortcut)",
    "vae.resnet": "vae: encoder.down_blocks.1.resnets.1",
    "vae.downsample": "vae: encoder.down_blocks.0.downsamplers.0 (odd height 13 on input)",
    "vae.upsample": "vae: decoder.up_blocks.0.upsamplers.0",
    "vae.mid_attn": "vae: decoder.mid_block.attentions.0",
    "vae.decode / vae.encode": "whole decoder / encoder (posterior mean and clamped logvar)",
}


@torch.no_grad()
def run_dtype(models, dtype):
    d = {}
    counter = [0]

    def tag_inputs(name, shape, std=1.0):
        counter[0] += 1
        t = ref_common.seeded_randn(SEED_INPUTS + counter[0], shape, torch.float32, std).to(dtype)
        d[name] = t
        return t

    llm_layer(models, d, tag_inputs)
    vit(models, d, tag_inputs, 10, 12, "vit_10x12")
    connector_layer(models, d, tag_inputs)
    dit_blocks(models, d, tag_inputs)
    dit_embeddings(models, d, tag_inputs)
    vae_modules(models, d, tag_inputs)
    return d


def scheduler_tables(models):
    d = {}
    for n in (1, 2, 4, 28, 50):
        s = type(models.scheduler).from_config(models.scheduler.config)
        s.set_timesteps(n)
        d[f"sched.N{n}.sigmas"] = s.sigmas
        d[f"sched.N{n}.timesteps"] = s.timesteps
    return d


def self_checks(model_dir):
    """The reference-token wrapper with no references equals the plain diffusers transformer (bit-exact)."""
    from diffusers import SD3Transformer2DModel
    res = {}
    plain = SD3Transformer2DModel.from_pretrained(os.path.join(model_dir, "transformer")).eval()
    wrapped = SD3Transformer2DModel.from_pretrained(os.path.join(model_dir, "transformer")).eval()
    dit_ref.install_processors(wrapped)
    for dtype, tag in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        plain.to(dtype)
        wrapped.to(dtype)
        x = ref_common.seeded_randn(900, (2, 16, 16, 20), dtype)
        ctx = ref_common.seeded_randn(901, (2, 9, 48), dtype)
        pooled = ref_common.seeded_randn(902, (2, 24), dtype)
        t = torch.tensor([993.1244, 8.9286])
        with torch.no_grad():
            a = plain(hidden_states=x, encoder_hidden_states=ctx, pooled_projections=pooled, timestep=t).sample
            b = dit_ref.deepgen_dit_forward(wrapped, x, ctx, pooled, t)
            c = dit_ref.deepgen_dit_forward(wrapped, x, ctx, pooled, t, cond_hidden_states=[[], []])
            # padded batch == rows run separately (mask rule makes padding invisible to real tokens)
            r0 = [ref_common.seeded_randn(903, (16, 16, 20), dtype)]
            r1 = [ref_common.seeded_randn(904, (16, 8, 12), dtype)]
            pb = dit_ref.deepgen_dit_forward(wrapped, x, ctx, pooled, t, cond_hidden_states=[r0, r1])
            p0 = dit_ref.deepgen_dit_forward(wrapped, x[:1], ctx[:1], pooled[:1], t[:1], cond_hidden_states=[r0])
            p1 = dit_ref.deepgen_dit_forward(wrapped, x[1:], ctx[1:], pooled[1:], t[1:], cond_hidden_states=[r1])
        ok = torch.equal(a, b) and torch.equal(a, c)
        if not ok:
            raise RuntimeError(f"DiT wrapper without references differs from diffusers ({tag})")
        res[f"wrapper_no_refs_equals_diffusers_{tag}"] = "bit-exact"
        res[f"padded_batch_vs_separate_rows_maxabs_{tag}"] = max(
            (pb[0:1].float() - p0.float()).abs().max().item(), (pb[1:2].float() - p1.float()).abs().max().item())
    return res


def run(out_dir, model_dir):
    os.makedirs(out_dir, exist_ok=True)
    result = {"weights": MODULE_WEIGHTS, "files": {}}
    for dtype, tag in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        models = ref_common.Models(model_dir, dtype)
        d = run_dtype(models, dtype)
        fname = f"modules_{tag}.safetensors"
        result["files"][tag] = {"file": fname, "tensors": ref_common.save_tensors(os.path.join(out_dir, fname), d)}
        if tag == "fp32":
            s = scheduler_tables(models)
            result["files"]["scheduler"] = {"file": "scheduler.safetensors",
                                            "tensors": ref_common.save_tensors(
                                                os.path.join(out_dir, "scheduler.safetensors"), s)}
        if tag == "bf16":
            result["bf16_buffers"] = {
                "llm_rotary_inv_freq_dtype": str(models.llm.rotary_emb.inv_freq.dtype),
                "vit_rotary_inv_freq_dtype": str(models.visual.rotary_pos_emb.inv_freq.dtype),
                "dit_pos_embed_dtype": str(models.dit.pos_embed.pos_embed.dtype),
            }
    result["self_checks"] = self_checks(model_dir)
    result["inputs"] = ("each '<name>.in'-style input is torch.randn from CPU generator seed 500+k (k = call order), "
                        "fp32, cast to the file dtype")
    return result
