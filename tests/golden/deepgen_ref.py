"""DeepGen 1.0 inference glue re-typed from MODEL.md §1 (Qwen2p5VLStableDiffusion3HF.generate + the dynamic
SD3 pipeline), driving the canonical transformers/diffusers modules held by ref_common.Models.

Every function takes an optional `dump` dict that receives the intermediate tensors named in
TESTING.md §5.
"""
import torch
import torch.nn.functional as F

import dit_ref

SELECTED_STRIDE = 6


# ---------------------------------------------------------------------------------------------- prompts
def t2i_prompt_strings(tpl, texts):
    texts = [tpl["GENERATION"].format(input=t) for t in texts]
    return [tpl["INSTRUCTION"].format(input=t) for t in texts]


def edit_prompt_strings(tpl, texts, num_refs, ref_lens):
    out, cnt = [], 0
    for text, n in zip(texts, num_refs):
        image_tokens = ""
        for _ in range(n):
            image_tokens += tpl["IMG_START_TOKEN"] + tpl["IMG_CONTEXT_TOKEN"] * ref_lens[cnt] + tpl["IMG_END_TOKEN"]
            cnt += 1
        out.append(tpl["INSTRUCTION"].format(input=f"{image_tokens}\n{text}"))
    return out


def tokenize(tokenizer, strings):
    enc = tokenizer(strings, add_special_tokens=True, return_tensors="pt", padding=True, padding_side="left")
    return enc["input_ids"], enc["attention_mask"]


# ---------------------------------------------------------------------------------------------- ViT path
def patchify(pixel_values, patch, merge, temporal):
    """[b,c,h,w] -> ([b*gh*gw, c*temporal*patch*patch], grid_thw [b,3]); rows grouped 2x2 (MODEL.md §1.4)."""
    b, c, h, w = pixel_values.shape
    gh, gw = h // patch, w // patch
    x = pixel_values[:, None].expand(b, temporal, c, h, w)
    x = x.reshape(b, 1, temporal, c, gh // merge, merge, patch, gw // merge, merge, patch)
    # (b t tp c H m p W n q) -> (b t H W m n) (c tp p q)
    x = x.permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9).reshape(b * gh * gw, c * temporal * patch * patch)
    grid = torch.tensor([[1, gh, gw]] * b, dtype=torch.long)
    return x, grid


def vit_features(models, images, dump=None, block_dumps=(0, 1, 3)):
    """images: list of [3,H,W] tensors in [-1,1] (model dtype). Returns (list of [L_i, D], grid_thw [n,3])."""
    vcfg = models.vlm.config.vision_config
    visual = models.visual
    embeds, grids = [], []
    for i, img in enumerate(images):
        x = F.interpolate(img[None], scale_factor=28 / 32, mode="bilinear")
        if dump is not None:
            dump[f"vit.in_resized.{i}"] = x
        x = (x + 1.0) / 2
        x = x - models.vit_mean.view(1, 3, 1, 1)
        x = x / models.vit_std.view(1, 3, 1, 1)
        patches, grid = patchify(x, vcfg.patch_size, vcfg.spatial_merge_size, vcfg.temporal_patch_size)
        if dump is not None:
            dump[f"vit.patches.{i}"] = patches
            dump[f"vit.grid_thw.{i}"] = grid
        hooks = []
        if dump is not None:
            window_index, _ = visual.get_window_index(grid)
            inv = torch.argsort(window_index)
            unit = vcfg.spatial_merge_size ** 2

            def make_hook(j):
                def hook(mod, args, out):
                    n, d = out.shape
                    # undo the window permutation: dump in patch order (MODEL.md §1.4 order)
                    dump[f"vit.block{j}.out.{i}"] = out.reshape(n // unit, unit, d)[inv].reshape(n, d)
                return hook

            for j in block_dumps:
                hooks.append(visual.blocks[j].register_forward_hook(make_hook(j)))
        try:
            e = visual(patches, grid_thw=grid)
        finally:
            for h in hooks:
                h.remove()
        if dump is not None:
            dump[f"vit.embeds.{i}"] = e
        embeds.append(e)
        grids.append(grid)
    return embeds, torch.cat(grids, 0)


# ---------------------------------------------------------------------------------------------- VAE path
def vae_encode_refs(models, images, eps_list, dump=None):
    vae = models.vae
    out = []
    for i, (img, eps) in enumerate(zip(images, eps_list)):
        post = vae.encode(img[None]).latent_dist
        if dump is not None:
            dump[f"vae.enc.mean.{i}"] = post.mean
            dump[f"vae.enc.logvar.{i}"] = post.logvar
            dump[f"vae.enc.eps.{i}"] = eps
        # DiagonalGaussianDistribution.sample() with the injected epsilon
        z = post.mean + post.std * eps.to(post.mean.dtype)
        z = (z - vae.config.shift_factor) * vae.config.scaling_factor
        if dump is not None:
            dump[f"vae.ref_latent.{i}"] = z
        out.append(z[0])
    return out


# ---------------------------------------------------------------------------------------------- LLM
def prepare_forward_input(models, query_embeds, input_ids, attention_mask, image_embeds=None, image_grid_thw=None):
    b, q, _ = query_embeds.shape
    attention_mask = attention_mask.to(torch.bool)
    ids_q = torch.cat([input_ids, input_ids.new_zeros(b, q)], dim=1)
    mask_q = torch.cat([attention_mask, attention_mask.new_ones(b, q)], dim=1)
    position_ids, _ = models.vlm.model.get_rope_index(input_ids=ids_q, image_grid_thw=image_grid_thw,
                                                      video_grid_thw=None, second_per_grid_ts=None,
                                                      attention_mask=mask_q)
    emb = models.llm.get_input_embeddings()
    if image_embeds is None:
        inputs_embeds = emb(input_ids)
    else:
        d = models.llm.config.hidden_size
        inputs_embeds = torch.zeros(*input_ids.shape, d, dtype=models.dtype)
        is_img = input_ids == models.image_token_id
        n_img = int(is_img.sum())
        if n_img != image_embeds.shape[0]:
            raise RuntimeError(f"{n_img} image-pad tokens but {image_embeds.shape[0]} image embeddings")
        inputs_embeds[is_img] = image_embeds.contiguous().view(-1, d)
        inputs_embeds[~is_img] = emb(input_ids[~is_img])
    inputs_embeds = torch.cat([inputs_embeds, query_embeds], dim=1)
    return dict(inputs_embeds=inputs_embeds, attention_mask=mask_q, position_ids=position_ids)


def llm_semantic_features(models, inputs, dump=None, layers_to_dump=(5, 11, 17, 23, 29, 35, 36)):
    out = models.llm(inputs_embeds=inputs["inputs_embeds"], attention_mask=inputs["attention_mask"],
                     position_ids=inputs["position_ids"], output_hidden_states=True, return_dict=True)
    hs = out.hidden_states
    num_layers = len(hs) - 1
    selected = list(range(num_layers - 1, 0, -SELECTED_STRIDE))
    if dump is not None:
        for k in layers_to_dump:
            dump[f"llm.h{k}"] = hs[k]
    merged = torch.cat([hs[i] for i in selected], dim=-1)
    return merged, selected, len(hs)


# ---------------------------------------------------------------------------------------------- full run
@torch.no_grad()
def generate(models, prompts, negatives, height, width, steps, guidance, noise0, ref_images=None, ref_eps=None,
             dump=None, block_dump_steps=None):
    """ref_images: None or list (per row) of lists of [3,H,W] tensors in [-1,1] (model dtype).
    ref_eps: matching list of lists of VAE posterior epsilons [1,16,H/8,W/8].
    Returns (u8 [B,H,W,3], info dict)."""
    tpl = models.prompt_template
    b = len(prompts)
    assert len(negatives) == b
    info = {}
    texts = list(prompts) + list(negatives)
    if ref_images is not None:
        num_refs = [len(r) for r in ref_images]
        flat = [img for row in ref_images for img in row]
        flat_eps = [e for row in ref_eps for e in row]
        embeds, grid = vit_features(models, flat, dump)
        ref_lens = [e.shape[0] for e in embeds]
        strings = edit_prompt_strings(tpl, texts, num_refs * 2, ref_lens * 2)
        ids, mask = tokenize(models.tokenizer, strings)
        image_embeds = torch.cat(embeds * 2)
        image_grid_thw = torch.cat([grid] * 2)
        lat = vae_encode_refs(models, flat, flat_eps, dump)
        cond_rows, k = [], 0
        for n in num_refs:
            cond_rows.append(lat[k:k + n])
            k += n
        cond_latents = cond_rows * 2
        info["ref_lens"] = ref_lens
    else:
        strings = t2i_prompt_strings(tpl, texts)
        ids, mask = tokenize(models.tokenizer, strings)
        image_embeds = image_grid_thw = None
        cond_latents = None
    info["llm_strings"] = strings
    if dump is not None:
        dump["tok.ids"] = ids
        dump["tok.attention_mask"] = mask
    q = models.connector.meta_queries[None].expand(2 * b, -1, -1)
    inputs = prepare_forward_input(models, q, ids, mask, image_embeds, image_grid_thw)
    if dump is not None:
        dump["llm.position_ids"] = inputs["position_ids"]
        dump["llm.attention_mask"] = inputs["attention_mask"]
        dump["llm.inputs_embeds"] = inputs["inputs_embeds"]
    merged, selected, n_hs = llm_semantic_features(models, inputs, dump)
    info["selected_hidden_states"] = selected
    info["num_hidden_states"] = n_hs
    if dump is not None:
        dump["scb.merged"] = merged
    pooled, seq = models.connector.llm2dit(merged, dump)
    if dump is not None:
        dump["scb.pooled"] = pooled
        dump["scb.seq"] = seq

    # ---- denoising (pipeline order [uncond, cond])
    ctx = torch.cat([seq[b:], seq[:b]])
    pooled_c = torch.cat([pooled[b:], pooled[:b]])
    sched = type(models.scheduler).from_config(models.scheduler.config)
    sched.set_timesteps(steps)
    if dump is not None:
        dump["sched.sigmas"] = sched.sigmas
        dump["sched.timesteps"] = sched.timesteps
        dump["dit.noise0"] = noise0
    latents = noise0.to(models.dtype)
    if block_dump_steps is None:
        block_dump_steps = {0, steps - 1}
    for i, t in enumerate(sched.timesteps):
        x_in = torch.cat([latents] * 2)
        tt = t.expand(x_in.shape[0])
        sub = {} if (dump is not None and i in block_dump_steps) else None
        v = dit_ref.deepgen_dit_forward(models.dit, x_in, ctx, pooled_c, tt, cond_hidden_states=cond_latents,
                                        dump=sub)
        v_u, v_c = v.chunk(2)
        v_cfg = v_u + guidance * (v_c - v_u)
        latents = sched.step(v_cfg, t, latents, return_dict=False)[0]
        if latents.dtype != models.dtype:
            latents = latents.to(models.dtype)
        if dump is not None:
            if sub is not None:
                for k2, v2 in sub.items():
                    dump[f"dit.step{i}.{k2}"] = v2
            else:
                dump[f"dit.step{i}.temb"] = models.dit.time_text_embed(tt, pooled_c)
            dump[f"dit.step{i}.v"] = v
            dump[f"dit.step{i}.v_cfg"] = v_cfg
            dump[f"dit.step{i}.latents"] = latents

    # ---- VAE decode + uint8 (computed in the model dtype, as the official scripts do)
    vae = models.vae
    z = latents / vae.config.scaling_factor + vae.config.shift_factor
    img = vae.decode(z).sample
    if dump is not None:
        dump["vae.dec.in"] = z
        dump["vae.dec.out"] = img
    u8 = torch.clamp(127.5 * img.permute(0, 2, 3, 1) + 128.0, 0, 255).to(torch.uint8)
    if dump is not None:
        dump["out.u8"] = u8
    return u8, info
