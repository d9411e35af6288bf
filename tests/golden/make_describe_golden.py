#!/usr/bin/env python3
"""Golden token ids for Describe (model/vlm/describe.c, MODEL.md §13): greedy captioning by
transformers' Qwen2_5_VLForConditionalGeneration.generate on the tiny model.

One command (from the repository root, in the venv of tests/golden/README.md):

    python tests/golden/make_describe_golden.py tests/data/describe

Reads tests/data/tiny-deepgen/{vlm,tokenizer} and the reference image tests/data/golden/ref_128x128.png
(written by make_golden.py), and writes OUT_DIR/describe_fp32.json (deterministic):
  instruction, prompt     the user instruction and the chat-template string (Qwen2.5-VL's template
                          with its default system turn, one image, add_generation_prompt=True)
  prompt_ids              the tokenizer's ids of the prompt (image pads included)
  image_grid_thw          the ViT grid of the image after DeepGen's 28/32 rescale
  position_ids            [3][prompt + generated]: get_rope_index over the whole final sequence
  generated               generate(do_sample=False, max_new_tokens) ids, without the prompt
  steps                   per generated token: the argmax id and logit and the runner-up id and logit
                          (output_logits=True: the raw lm_head outputs), so that the test knows the
                          top-2 margin of every step
  min_margin              the smallest top-1 − top-2 logit gap over the steps

The image goes through DeepGen's own vision preprocessing (deepgen_ref.vit_features' steps: bilinear
28/32 rescale, CLIP normalisation, 2×2-grouped patches), which is what the C code feeds the ViT, and the
patch rows are passed to generate() as pixel_values. fp32 throughout: the test compares ids and logits
in DG_PRECISION_F32.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import deepgen_ref  # noqa: E402

ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
TINY = os.path.join(ROOT, "tests", "data", "tiny-deepgen")
IMAGE = os.path.join(ROOT, "tests", "data", "golden", "ref_128x128.png")
INSTRUCTION = "Describe this image in one sentence."  # describe.h DG_DESCRIBE_DEFAULT_INSTRUCTION
MAX_NEW_TOKENS = 12
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def chat_prompt(n_image_tokens, instruction):
    """Qwen2.5-VL's chat template for [{"role": "user", "content": [image, text]}] with
    add_generation_prompt=True: the default system turn comes first when the conversation has none."""
    return ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\n<|vision_start|>" + "<|image_pad|>" * n_image_tokens + "<|vision_end|>"
            + instruction + "<|im_end|>\n<|im_start|>assistant\n")


def pixel_values(vcfg):
    from PIL import Image
    arr = np.array(Image.open(IMAGE).convert("RGB"))
    x = torch.from_numpy(arr).float() / 255
    x = (2 * x - 1).permute(2, 0, 1).contiguous()[None]
    x = F.interpolate(x, scale_factor=28 / 32, mode="bilinear")
    x = (x + 1.0) / 2
    x = x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    x = x / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return deepgen_ref.patchify(x, vcfg.patch_size, vcfg.spatial_merge_size, vcfg.temporal_patch_size)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    import transformers
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(os.path.join(TINY, "tokenizer"))
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        os.path.join(TINY, "vlm"), dtype=torch.float32, attn_implementation="eager").eval()
    vcfg = model.config.vision_config
    patches, grid = pixel_values(vcfg)
    n_image = int(grid[0].prod()) // vcfg.spatial_merge_size ** 2
    prompt = chat_prompt(n_image, INSTRUCTION)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    assert int((ids == model.config.image_token_id).sum()) == n_image
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=patches,
                             image_grid_thw=grid, do_sample=False, max_new_tokens=MAX_NEW_TOKENS,
                             output_logits=True, return_dict_in_generate=True)
        full = out.sequences
        positions, _ = model.model.get_rope_index(full, grid, None, torch.ones_like(full))
    generated = full[0, ids.shape[1]:].tolist()
    steps = []
    for i, logits in enumerate(out.logits):
        top = torch.topk(logits[0].double(), 2)
        assert int(top.indices[0]) == generated[i]
        steps.append(dict(id=int(top.indices[0]), logit=float(top.values[0]), runner_up=int(top.indices[1]),
                          runner_up_logit=float(top.values[1])))
    margins = [s["logit"] - s["runner_up_logit"] for s in steps]
    doc = dict(
        generator=dict(command="python tests/golden/make_describe_golden.py tests/data/describe",
                       torch=torch.__version__, transformers=transformers.__version__,
                       model="tests/data/tiny-deepgen/vlm (fp32)", image="tests/data/golden/ref_128x128.png",
                       call="generate(do_sample=False, max_new_tokens=%d, output_logits=True)" % MAX_NEW_TOKENS),
        instruction=INSTRUCTION, max_new_tokens=MAX_NEW_TOKENS, prompt=prompt, prompt_ids=ids[0].tolist(),
        image_grid_thw=grid[0].tolist(), position_ids=positions[:, 0].tolist(), generated=generated,
        steps=steps, min_margin=min(margins))
    path = os.path.join(out_dir, "describe_fp32.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote", path, "ids", generated, "min margin %.3g" % min(margins))


if __name__ == "__main__":
    main()
