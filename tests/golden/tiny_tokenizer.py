"""Tiny byte-level BPE tokenizer in the Qwen2 / Qwen2.5-VL file format.

Trained with Hugging Face `tokenizers` on a small fixed corpus (written below, deterministic).
Layout of ids (MODEL.md §1.3, shrunk):
  0 .. N_REGULAR-1          regular byte-level BPE vocabulary (256 byte symbols + merges)
  N_REGULAR .. +21          the 22 Qwen2.5-VL added tokens, in Qwen order
                            (<|endoftext|> first = pad/bos, <|im_start|>, <|im_end|>, ...)
Embedding rows in the tiny VLM: 1024 (> N_REGULAR + 22, like 151936 > 151665 in the real model).
"""
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

QWEN2_SPLIT_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                     r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

N_REGULAR = 1000
VOCAB_ROWS = 1024

# (content, special) in Qwen2.5-VL order; ids 151643.. in the real tokenizer.
QWEN_ADDED_TOKENS = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True),
    ("<|box_start|>", True), ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True),
    ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
    ("<|repo_name|>", False), ("<|file_sep|>", False),
]

EDIT_NEGATIVE = ("blurry, low quality, low resolution, distorted, deformed, broken content, missing parts, "
                 "damaged details, artifacts, glitch, noise, pixelated, grainy, compression artifacts, "
                 "bad composition, wrong proportion, incomplete editing, unfinished, unedited areas.")

# Qwen2.5-VL chat template (as shipped in its tokenizer_config.json), kept for format fidelity.
QWEN25VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def corpus():
    """A small fixed training corpus (English prompts, DeepGen templates, some digits/punctuation/CJK)."""
    subjects = ["a red fox", "a small cat", "an old man", "a young woman", "a blue car", "a wooden house",
                "a tall tree", "a white horse", "a golden retriever", "a glass of water", "a city street",
                "a mountain lake", "a bowl of fruit", "a black dog", "a green bird", "a steam train",
                "a sailing boat", "a robot", "a castle", "a lighthouse", "a bicycle", "a teapot", "a dragon",
                "an astronaut", "a violin", "a pair of shoes", "a bookshelf", "a garden", "a snowman",
                "a coffee cup", "a sunflower", "a butterfly", "a penguin", "an elephant", "a waterfall"]
    places = ["on the beach", "in the forest", "at night", "in the rain", "under a bright sun",
              "on a wooden table", "in a busy market", "on top of a hill", "next to a river", "in the snow",
              "inside a museum", "in a quiet library", "at sunset", "in the desert", "on the moon",
              "in front of a red door", "behind a glass window", "in a field of flowers"]
    styles = ["photorealistic", "oil painting", "watercolor", "pixel art", "studio lighting", "high detail",
              "cinematic", "soft shadows", "8k", "sharp focus", "vintage photo", "minimalist",
              "black and white", "wide angle", "close-up portrait", "isometric view", "digital art"]
    edits = ["Replace the background with a beach", "Make it snow", "Change the color of the car to red",
             "Remove the person on the left", "Add a hat to the cat", "Turn the photo into a painting",
             "Make the sky darker", "Put a dog next to the man", "Change the season to autumn",
             "Add text that says \"HELLO 2024\"", "Make the image brighter and more colorful",
             "Swap the two objects", "Combine the two images into one scene"]
    lines = []
    for i, s in enumerate(subjects):
        for j in range(3):
            p = places[(i * 7 + j * 5) % len(places)]
            st = styles[(i * 3 + j * 11) % len(styles)]
            lines.append(f"{s} {p}, {st}")
    for e in edits:
        lines.append(e + ".")
    lines.append(EDIT_NEGATIVE)
    lines += [
        "Generate an image: ", "Generate an image.", "user\n", "assistant\n", "\n", " ",
        "The quick brown fox jumps over the lazy dog. It's 12:30, isn't it? We'll see; they'd've known.",
        "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 3.14159 2025-01-01 512x512 1024*1024",
        "Punctuation: !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ... -- () [] {}",
        "def main():\n    print('hello world')\n    return 0\n",
        "    indented  text\twith\ttabs\n\nand  multiple   spaces",
        "一只可爱的猫坐在窗台上", "夕阳下的海滩", "猫と犬が公園で遊んでいる", "아름다운 산과 호수",
        "Café naïve résumé façade", "emoji 😀 🐱 👍🏽 👨‍👩‍👧",
    ]
    # repeat the most frequent DeepGen template fragments so their merges are learnt early
    lines += ["<|im_start|>user\nGenerate an image: a cat<|im_end|>\n<|im_start|>assistant\n"] * 3
    return lines


def build_tokenizer():
    tok = Tokenizer(models.BPE(dropout=None, unk_token=None, continuing_subword_prefix="",
                               end_of_word_suffix="", fuse_unk=False, byte_fallback=False, ignore_merges=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=N_REGULAR, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    # the special-token strings are not part of the training text
    lines = []
    for line in corpus():
        for content, _ in QWEN_ADDED_TOKENS:
            line = line.replace(content, "\n")
        lines.append(line)
    tok.train_from_iterator(lines, trainer=trainer)
    n = tok.get_vocab_size()
    if n != N_REGULAR:
        raise RuntimeError(f"tiny tokenizer trained to {n} regular ids, expected {N_REGULAR}: enlarge the corpus")
    return tok


def save_tokenizer(out_dir):
    """Write tokenizer.json / vocab.json / merges.txt / tokenizer_config.json (+special_tokens_map.json).

    Returns a dict with the special-token ids."""
    os.makedirs(out_dir, exist_ok=True)
    tok = build_tokenizer()
    # vocab.json + merges.txt from the BPE model (same files as Qwen's slow tokenizer reads)
    tok.model.save(out_dir)
    # tokenizer.json: add the Qwen added tokens, then rewrite in the Qwen2.5-VL release style
    # (merges written as "a b" strings, as in the released Qwen2.5-VL tokenizer.json).
    data = json.loads(tok.to_str())
    added = []
    for i, (content, special) in enumerate(QWEN_ADDED_TOKENS):
        added.append({"id": N_REGULAR + i, "content": content, "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": special})
    data["added_tokens"] = added
    merges = data["model"]["merges"]
    data["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in merges]
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=2)
        f.write("\n")
    ids = {content: N_REGULAR + i for i, (content, _) in enumerate(QWEN_ADDED_TOKENS)}
    cfg = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(N_REGULAR + i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False,
                                  "single_word": False, "special": s}
            for i, (c, s) in enumerate(QWEN_ADDED_TOKENS)},
        "additional_special_tokens": [c for c, s in QWEN_ADDED_TOKENS[1:14]],
        "bos_token": None,
        "chat_template": QWEN25VL_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "extra_special_tokens": {},
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)
        f.write("\n")
    stm = {"additional_special_tokens": cfg["additional_special_tokens"],
           "eos_token": {"content": "<|im_end|>", "lstrip": False, "normalized": False, "rstrip": False,
                         "single_word": False},
           "pad_token": {"content": "<|endoftext|>", "lstrip": False, "normalized": False, "rstrip": False,
                         "single_word": False}}
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump(stm, f, ensure_ascii=False, indent=2)
        f.write("\n")
    return ids


def load_tokenizer(tok_dir):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tok_dir)
