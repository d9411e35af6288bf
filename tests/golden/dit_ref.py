"""DeepGen "dynamic" DiT: diffusers SD3Transformer2DModel + reference-image (Kontext) tokens.

Written from MODEL.md §5.3 (not copied from DeepGen/UniPic code); every learned operation is a call into
the canonical diffusers modules of the wrapped model (PatchEmbed, CombinedTimestepTextProjEmbeddings,
context_embedder, JointTransformerBlock, AdaLayerNormContinuous, proj_out). The only new pieces are the
per-row token concatenation, right padding, the boolean attention mask and an attention processor that
applies that mask (identical to diffusers' JointAttnProcessor2_0 except for `attn_mask`).

Semantics (§5.3):
  * per row r: tokens = [PatchEmbed(target_r), PatchEmbed(ref_r1), PatchEmbed(ref_r2), ...], each image with
    its own centre-cropped position embedding (the PatchEmbed crop rule applied to that image's size);
  * rows of different total length are right-padded with zeros; valid[r, i] marks real tokens;
  * attention mask M[q, k] = (valid[q] and valid[k]) or q == k, context tokens always valid; the same rule
    (restricted to image tokens) for attn2 of the dual blocks; with no padding anywhere no mask is used;
  * all image tokens go through every block with the same temb; after norm_out/proj_out only the first
    N_t = (h/2)(w/2) tokens of each row are kept and unpatchified.
"""
import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import JointAttnProcessor2_0


class MaskedJointAttnProcessor:
    """JointAttnProcessor2_0 with an optional boolean image-token validity mask (MODEL.md §5.3 rule)."""

    def __init__(self):
        self.stock = JointAttnProcessor2_0()

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 image_token_valid=None, *args, **kwargs):
        if image_token_valid is None:
            return self.stock(attn, hidden_states, encoder_hidden_states, attention_mask)
        residual = hidden_states
        b = hidden_states.shape[0]
        query = attn.to_q(hidden_states)
        key = attn.to_k(hidden_states)
        value = attn.to_v(hidden_states)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(b, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(b, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(b, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        valid = image_token_valid
        if encoder_hidden_states is not None:
            cq = attn.add_q_proj(encoder_hidden_states).view(b, -1, attn.heads, head_dim).transpose(1, 2)
            ck = attn.add_k_proj(encoder_hidden_states).view(b, -1, attn.heads, head_dim).transpose(1, 2)
            cv = attn.add_v_proj(encoder_hidden_states).view(b, -1, attn.heads, head_dim).transpose(1, 2)
            if attn.norm_added_q is not None:
                cq = attn.norm_added_q(cq)
            if attn.norm_added_k is not None:
                ck = attn.norm_added_k(ck)
            query = torch.cat([query, cq], dim=2)
            key = torch.cat([key, ck], dim=2)
            value = torch.cat([value, cv], dim=2)
            valid = torch.cat([valid, valid.new_ones(b, encoder_hidden_states.shape[1])], dim=1)
        n = valid.shape[1]
        mask = (valid[:, :, None] & valid[:, None, :]) | torch.eye(n, dtype=torch.bool, device=valid.device)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask[:, None], dropout_p=0.0,
                                             is_causal=False)
        out = out.transpose(1, 2).reshape(b, -1, attn.heads * head_dim).to(query.dtype)
        if encoder_hidden_states is not None:
            out, ctx = out[:, : residual.shape[1]], out[:, residual.shape[1]:]
            if not attn.context_pre_only:
                ctx = attn.to_add_out(ctx)
        out = attn.to_out[0](out)
        out = attn.to_out[1](out)
        if encoder_hidden_states is not None:
            return out, ctx
        return out


def install_processors(dit):
    for blk in dit.transformer_blocks:
        blk.attn.set_processor(MaskedJointAttnProcessor())
        if getattr(blk, "attn2", None) is not None:
            blk.attn2.set_processor(MaskedJointAttnProcessor())


def build_image_tokens(dit, hidden_states, cond_hidden_states):
    """Returns (tokens [B, Lmax, D], valid [B, Lmax] bool or None, N_t, per-row lengths)."""
    x_t = dit.pos_embed(hidden_states)  # [B, N_t, D] incl. centre-cropped pos-emb
    b, n_t, d = x_t.shape
    if cond_hidden_states is None or all(len(r) == 0 for r in cond_hidden_states):
        return x_t, None, n_t, [n_t] * b
    if len(cond_hidden_states) != b:
        raise ValueError("cond_hidden_states needs one list of reference latents per batch row")
    rows = []
    for r in range(b):
        parts = [x_t[r]]
        for ref in cond_hidden_states[r]:
            parts.append(dit.pos_embed(ref[None].to(hidden_states.dtype))[0])
        rows.append(torch.cat(parts, dim=0))
    lens = [t.shape[0] for t in rows]
    lmax = max(lens)
    tokens = x_t.new_zeros(b, lmax, d)
    valid = torch.zeros(b, lmax, dtype=torch.bool, device=x_t.device)
    for r, t in enumerate(rows):
        tokens[r, : t.shape[0]] = t
        valid[r, : t.shape[0]] = True
    if all(n == lmax for n in lens):
        valid = None  # equal lengths everywhere: no mask (= all true)
    return tokens, valid, n_t, lens


@torch.no_grad()
def deepgen_dit_forward(dit, hidden_states, encoder_hidden_states, pooled_projections, timestep,
                        cond_hidden_states=None, dump=None, prefix=""):
    """DeepGen DiT forward. `dit` must have had install_processors() applied (only needed with padding).

    dump: optional dict filled with '<prefix>temb', '<prefix>img_in', '<prefix>ctx_in',
    '<prefix>block{b}.img' (all image tokens, padded), '<prefix>block{b}.ctx', '<prefix>img_valid'.
    """
    height, width = hidden_states.shape[-2:]
    tokens, valid, n_t, lens = build_image_tokens(dit, hidden_states, cond_hidden_states)
    temb = dit.time_text_embed(timestep, pooled_projections)
    ctx = dit.context_embedder(encoder_hidden_states)
    if dump is not None:
        dump[prefix + "temb"] = temb
        dump[prefix + "img_in"] = tokens
        dump[prefix + "ctx_in"] = ctx
        dump[prefix + "img_valid"] = (valid if valid is not None else
                                      torch.ones(tokens.shape[:2], dtype=torch.bool)).to(torch.uint8)
    kwargs = {"image_token_valid": valid} if valid is not None else None
    x = tokens
    for i, blk in enumerate(dit.transformer_blocks):
        ctx, x = blk(hidden_states=x, encoder_hidden_states=ctx, temb=temb, joint_attention_kwargs=kwargs)
        if dump is not None:
            dump[prefix + f"block{i}.img"] = x
            if ctx is not None:
                dump[prefix + f"block{i}.ctx"] = ctx
    x = dit.norm_out(x, temb)
    x = dit.proj_out(x)
    x = x[:, :n_t]
    p = dit.config.patch_size
    h, w = height // p, width // p
    x = x.reshape(x.shape[0], h, w, p, p, dit.out_channels)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(x.shape[0], dit.out_channels, h * p, w * p)
