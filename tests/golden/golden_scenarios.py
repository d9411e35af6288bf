"""End-to-end golden scenarios (TESTING.md §5) for the tiny DeepGen, fp32 and bf16."""
import os

import numpy as np
import torch

import deepgen_ref
import ref_common
import tiny_tokenizer

EDIT_NEG = tiny_tokenizer.EDIT_NEGATIVE

# Input images (deterministic synthetic RGB, saved as PNG): name -> (height, width, seed)
IMAGES = {
    "ref_160x192": (160, 192, 11),
    "ref_256x256": (256, 256, 12),
    "ref_224x224": (224, 224, 13),
    "ref_128x128": (128, 128, 14),
    "ref_160x128": (160, 128, 15),
    "ref_128x96": (128, 96, 16),
}

SCENARIOS = [
    dict(id=1, what="T2I, B=1, prompt and negative of equal token length (no padding)",
         prompts=["a red fox in the snow"], negatives=["low quality, blurry"],
         height=128, width=128, steps=4, guidance=4.0, refs=None),
    dict(id=2, what="T2I, B=2 prompts of different lengths + empty negatives (left padding in the LLM batch)",
         prompts=["a small cat", "an old man with a hat on the beach at sunset, oil painting"],
         negatives=["", ""], height=128, width=160, steps=3, guidance=4.0, refs=None),
    dict(id=3, what="Edit, 1 reference 160x192 (ViT 10x12 patches, 5x6 merged, partial windows), "
                    "output 160x192, long negative prompt",
         prompts=["Make the sky darker"], negatives=[EDIT_NEG], height=160, width=192, steps=2, guidance=4.0,
         refs=[["ref_160x192"]]),
    dict(id=4, what="Edit, 1 reference 256x256 (8x8 merged grid: window-padding edge case), output 256x256",
         prompts=["Turn the photo into a painting"], negatives=[""], height=256, width=256, steps=2,
         guidance=4.0, refs=[["ref_256x256"]]),
    dict(id=5, what="Edit, 2 references of different sizes (160x192, 224x224) for one row, output 192x192",
         prompts=["Combine the two images into one scene"], negatives=[EDIT_NEG], height=192, width=192,
         steps=2, guidance=4.0, refs=[["ref_160x192", "ref_224x224"]]),
    dict(id=6, what="Edit, B=2 rows with different reference counts/sizes (DiT right padding + mask)",
         prompts=["Add a hat to the cat", "Swap the two objects"], negatives=["", ""], height=128, width=128,
         steps=2, guidance=4.0, refs=[["ref_128x128"], ["ref_160x128", "ref_128x96"]]),
]

SEED_NOISE_BASE = 1000   # dit.noise0 of scenario k: seeded_randn(1000 + k, [B,16,H/8,W/8])
SEED_VAE_EPS_BASE = 2000  # VAE posterior eps of reference j (flat order) of scenario k: seed 2000 + 10k + j


def synth_image(h, w, seed):
    """Deterministic RGB uint8 [h,w,3]: gradients + a disc + a rectangle + a stripe (pure numpy math)."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255.0 * x / max(w - 1, 1)
    g = 255.0 * y / max(h - 1, 1)
    b = 127.5 + 127.5 * np.sin((x + 2 * y) / (6.0 + seed % 5))
    img = np.stack([r, g, b], -1)
    cy, cx, rad = rng.randint(h // 4, 3 * h // 4), rng.randint(w // 4, 3 * w // 4), rng.randint(h // 8, h // 4)
    disc = (y - cy) ** 2 + (x - cx) ** 2 <= rad ** 2
    img[disc] = rng.randint(0, 256, size=3)
    y0, x0 = rng.randint(0, h // 2), rng.randint(0, w // 2)
    img[y0:y0 + h // 4, x0:x0 + w // 3] = rng.randint(0, 256, size=3)
    img[:, (w * 3) // 4:(w * 3) // 4 + 3] = 255.0
    return np.clip(np.floor(img), 0, 255).astype(np.uint8)


def write_images(out_dir):
    from PIL import Image
    info = {}
    for name, (h, w, seed) in IMAGES.items():
        arr = synth_image(h, w, seed)
        path = os.path.join(out_dir, name + ".png")
        Image.fromarray(arr, "RGB").save(path, optimize=False, compress_level=6)
        info[name] = dict(file=name + ".png", height=h, width=w, seed=seed)
    return info


def load_image(out_dir, name, dtype):
    """PNG -> [3,H,W] in [-1,1]: x = 2*(u8/255) - 1 in fp32, then cast to the model dtype."""
    from PIL import Image
    arr = np.array(Image.open(os.path.join(out_dir, name + ".png")).convert("RGB"))
    x = torch.from_numpy(arr).float() / 255
    x = 2 * x - 1
    return x.permute(2, 0, 1).contiguous().to(dtype)


def run_one(models, sc, img_dir, dtype):
    b = len(sc["prompts"])
    h8, w8 = sc["height"] // 8, sc["width"] // 8
    noise0 = ref_common.seeded_randn(SEED_NOISE_BASE + sc["id"], (b, 16, h8, w8), dtype)
    ref_images = ref_eps = None
    eps_seeds = []
    if sc["refs"]:
        ref_images, ref_eps, j = [], [], 0
        for row in sc["refs"]:
            ri, re = [], []
            for name in row:
                img = load_image(img_dir, name, dtype)
                ri.append(img)
                seed = SEED_VAE_EPS_BASE + 10 * sc["id"] + j
                eps_seeds.append(seed)
                re.append(ref_common.seeded_randn(seed, (1, 16, img.shape[1] // 8, img.shape[2] // 8), dtype))
                j += 1
            ref_images.append(ri)
            ref_eps.append(re)
    dump = {}
    prompts = [p.strip() for p in sc["prompts"]]
    u8, info = deepgen_ref.generate(models, prompts, sc["negatives"], sc["height"], sc["width"], sc["steps"],
                                    sc["guidance"], noise0, ref_images, ref_eps, dump=dump)
    if sc["id"] == 1 and not bool(dump["tok.attention_mask"].all()):
        raise RuntimeError("scenario 1 must have prompt and negative of equal token length")
    if sc["id"] == 2 and bool(dump["tok.attention_mask"].all()):
        raise RuntimeError("scenario 2 must have left padding")
    info["vae_eps_seeds"] = eps_seeds
    info["noise_seed"] = SEED_NOISE_BASE + sc["id"]
    return dump, info


# What each file keeps (the 25 MB budget of committed data): see DUMP_POLICY.
BLOCK_STEPS = {1: (0, 3), 3: (0,), 6: (0,)}       # fp32 per-block DiT dumps: scenario -> steps
VIT_PATCHES = set()                               # vit.patches.* (2x the size of in_resized): modules file has them
VIT_IN_RESIZED = {3}                              # fp32 vit.in_resized.* only here
SCB_MERGED = {1}                                  # scb.merged == cat(llm.h35, h29, ..., h5) elsewhere
FULL_ONLY = {1}                                   # llm.h36 (final norm, unused downstream), vae.dec.in only here
DEC_OUT = {1, 2, 3}                               # fp32 vae.dec.out only here (out.u8 everywhere)
BF16_DROP = ("vit.patches.", "vit.in_resized.", "vit.block", "scb.merged", "scb.conn.", "scb.p1", "vae.enc.logvar",
             "vae.dec.out")
DUMP_POLICY = {
    "fp32": "all tensors, except: dit.step{s}.block{b}.* only for scenario:steps "
            + ", ".join(f"{k}:{list(v)}" for k, v in BLOCK_STEPS.items())
            + f"; vit.patches.* only in scenarios {sorted(VIT_PATCHES)}; vit.in_resized.* only in "
            f"{sorted(VIT_IN_RESIZED)}; scb.merged only in {sorted(SCB_MERGED)} (elsewhere it is "
            "cat(llm.h35, llm.h29, llm.h23, llm.h17, llm.h11, llm.h5) on the last axis); llm.h36 and vae.dec.in "
            f"(= last latents / 1.5305 + 0.0609) only in {sorted(FULL_ONLY)}; vae.dec.out only in {sorted(DEC_OUT)} "
            "(out.u8 in all)",
    "bf16": "no per-block DiT tensors (dit.step{s}.block*, img_in, ctx_in), no vit.patches/in_resized/block*, "
            "no scb.merged/p1/conn.*, no vae.enc.logvar, no vae.dec.out (out.u8 carries it at bf16 precision); everything else as fp32",
    "both": "dit.step{s}.v (raw DiT output) only for step 0; v_cfg and latents for every step",
}


def keep_key(sc, tag, k):
    sid = sc["id"]
    if k.startswith("dit.step") and (".block" in k or k.endswith(("img_in", "ctx_in", "img_valid"))):
        step = int(k[len("dit.step"):].split(".")[0])
        if tag == "bf16":
            return False
        if ".block" in k:
            return step in BLOCK_STEPS.get(sid, ())
        return step == 0
    if k.startswith("dit.step") and k.endswith(".v") and not k.startswith("dit.step0."):
        return False
    if tag == "bf16" and k.startswith(BF16_DROP):
        return False
    if k.startswith("vit.patches.") and sid not in VIT_PATCHES:
        return False
    if k.startswith("vit.in_resized.") and sid not in VIT_IN_RESIZED:
        return False
    if k in ("llm.h36", "vae.dec.in") and sid not in FULL_ONLY:
        return False
    if k == "vae.dec.out" and sid not in DEC_OUT:
        return False
    if k == "scb.merged" and sid not in SCB_MERGED:
        return False
    return True


def run(out_dir, model_dir):
    os.makedirs(out_dir, exist_ok=True)
    images = write_images(out_dir)
    result = {"images": images, "list": [], "notes": NOTES, "dump_policy": DUMP_POLICY,
              "noise": "dit.noise0 = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) (fp32, CPU "
                       "generator), cast to the run dtype; VAE eps likewise with its own seed"}
    ref_common.PAD_ROW_STATS.update(calls=0, padded_calls=0, pad_rows=0, sdpa_nonzero_pad_rows=0)
    for dtype, tag in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        models = ref_common.Models(model_dir, dtype)
        for sc in SCENARIOS:
            dump, info = run_one(models, sc, out_dir, dtype)
            fname = f"scenario{sc['id']}_{tag}.safetensors"
            dump = {k: v for k, v in dump.items() if keep_key(sc, tag, k)}
            keys = ref_common.save_tensors(os.path.join(out_dir, fname), dump)
            if tag == "fp32":
                entry = {k: v for k, v in sc.items()}
                entry["refs"] = sc["refs"]
                entry["batch"] = len(sc["prompts"])
                entry["llm_strings"] = info["llm_strings"]
                entry["ref_lens"] = info.get("ref_lens")
                entry["noise_seed"] = info["noise_seed"]
                entry["vae_eps_seeds"] = info["vae_eps_seeds"]
                entry["selected_hidden_states"] = info["selected_hidden_states"]
                entry["files"] = {}
                result["list"].append(entry)
            entry = result["list"][sc["id"] - 1]
            entry["files"][tag] = {"file": fname, "tensors": keys}
    result["llm_pad_rows"] = dict(ref_common.PAD_ROW_STATS)
    result["llm_pad_rows"]["note"] = ("LLM attention calls with left-padded rows; sdpa_nonzero_pad_rows counts pad "
                                      "query rows where torch SDPA itself did not return exact zeros (they are "
                                      "zeroed in any case, FA2 semantics)")
    result["self_checks"] = self_check_padding(model_dir)
    return result


@torch.no_grad()
def self_check_padding(model_dir):
    """A left-padded row's real tokens give the same LLM hidden states as that row alone (FA2 semantics)."""
    models = ref_common.Models(model_dir, torch.float32)
    tpl = models.prompt_template
    strings = deepgen_ref.t2i_prompt_strings(tpl, ["a small cat", "an old man with a hat on the beach at sunset"])
    ids, mask = deepgen_ref.tokenize(models.tokenizer, strings)
    q = models.connector.meta_queries[None].expand(2, -1, -1)
    hs_b = models.llm(**deepgen_ref.prepare_forward_input(models, q, ids, mask), output_hidden_states=True
                      ).hidden_states
    ids1, mask1 = deepgen_ref.tokenize(models.tokenizer, strings[:1])
    hs_1 = models.llm(**deepgen_ref.prepare_forward_input(models, q[:1], ids1, mask1), output_hidden_states=True
                      ).hidden_states
    npad = int((mask[0] == 0).sum())
    if npad == 0:
        raise RuntimeError("padding self-check needs a padded row")
    err = max((hs_b[k][0, npad:] - hs_1[k][0]).abs().max().item() for k in range(len(hs_b)))
    if err > 1e-4:
        raise RuntimeError(f"padded LLM row differs from the unpadded row: {err}")
    return {"llm_left_padded_row_vs_alone_maxabs_fp32": err, "pad_tokens": npad}


NOTES = [
    "Batch order: LLM/connector rows are [cond_1..cond_B, uncond_1..uncond_B]; DiT rows (dit.step*) are "
    "[uncond_1..uncond_B, cond_1..cond_B] (pipeline order).",
    "tok.ids / tok.attention_mask: the 2B prompt strings (llm_strings) tokenised together with left padding "
    "(pad id = <|endoftext|>); llm.* add the meta queries (token id 0 for get_rope_index).",
    "llm.h{k} is the transformers output_hidden_states tuple entry k (h0 = inputs_embeds, h36 = after the final "
    "norm); pad query rows get exactly zero attention output (FA2 semantics, enforced and counted).",
    "scb.merged = cat(h35,h29,h23,h17,h11,h5); scb.p1 = projector_1; scb.conn.layer{l} = connector layer outputs; "
    "scb.pooled = projector_2(mean over all tokens); scb.seq = projector_3.",
    "vit.in_resized.{i}: F.interpolate(x, scale_factor=28/32, bilinear) of reference i (flat order over rows) "
    "in [-1,1]; vit.patches.{i}: normalised patch rows [N,1176] (2x2-grouped order); vit.block{j}.out.{i}: "
    "block j output in the same patch order (window permutation undone); vit.embeds.{i}: merger output [N/4, D].",
    "vae.enc.mean/logvar/eps.{i}: encoder posterior of reference i; vae.ref_latent.{i} = "
    "((mean + exp(0.5*clamp(logvar,-30,20))*eps) - 0.0609) * 1.5305.",
    "dit.step{s}.img_in / block{b}.img: all image tokens [2B, Lmax, D] incl. reference tokens and right padding "
    "(img_valid marks real tokens; values at padded positions are irrelevant); block{b}.ctx: context stream "
    "(absent for the last, context_pre_only block). Per-block tensors are dumped for the first and last step "
    "only; other steps have temb, v, v_cfg, latents.",
    "dit.step{s}.v = DiT output for the [uncond, cond] batch; v_cfg = v_u + g*(v_c - v_u) in the run dtype; "
    "latents = scheduler.step (fp32 Euler update, cast back to the run dtype).",
    "out.u8 = clamp(127.5*x + 128, 0, 255).to(uint8) computed in the run dtype on vae.dec.out, layout [B,H,W,3] "
    "(in bf16 the products are rounded to bf16 before truncation, as in the official scripts).",
    "bf16 files: every module (VLM, connector, DiT, VAE) and the CLIP mean/std buffers cast with .to(bfloat16), "
    "like the reference's model.bfloat16(); this also casts the rotary inv_freq buffers of the LLM and ViT.",
]


def run_real(real_dir, out_dir):
    """512x512 T2I, 4 steps, with the real DeepGen-1.0-diffusers folder (needs lots of RAM; not run in CI)."""
    os.makedirs(out_dir, exist_ok=True)
    models = ref_common.Models(real_dir, torch.bfloat16, real=True)
    sc = dict(id=0, prompts=["a red fox in the snow"], negatives=[""], height=512, width=512, steps=4,
              guidance=4.0, refs=None)
    dump, info = run_one(models, sc, out_dir, torch.bfloat16)
    keys = ref_common.save_tensors(os.path.join(out_dir, "real_t2i_512_bf16.safetensors"), dump)
    import json
    with open(os.path.join(out_dir, "real_t2i_512_bf16.json"), "w") as f:
        json.dump({"scenario": sc, "info": info, "tensors": keys}, f, indent=2)
    return {"keys": keys, "info": info}
