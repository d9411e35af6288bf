#!/usr/bin/env python3
"""Golden files for model/image/image.c: PIL resizing and the [-1,1] conversions (DESIGN.md §1, MODEL.md §1.4).

One command (from the repository root; any venv with Pillow, NumPy and safetensors):

    python tests/golden/make_image_golden.py tests/data/image

Writes (deterministic: re-running gives byte-identical files):
  OUT_DIR/resize.safetensors  U8 tensors, layout [H, W, C] (row-major, top row first):
      input.<rgb|rgba|l>.<W>x<H>                     synthetic input images (NumPy, fixed seed; l = one channel)
      <filter>.<rgb|rgba|l>.<W>x<H>.<W2>x<H2>        PIL Image.resize(input, (W2, H2), filter)
      <filter>_hfirst.<...>                          the same in the pass order of Pillow 7-12
    and F32 tensors:
      to_f32                                         [256]: 2*(u8/255) - 1 in float32 (golden_scenarios.load_image)
      quant.in / quant.out (U8)                      x and clamp(127.5*x + 128, 0, 255).astype(uint8) in float32
    __metadata__ "generator": JSON with the Pillow and NumPy versions and the command line.

Why PIL: the reference resizes reference images with PIL `Image.resize` (default BICUBIC, antialiased
when downscaling; MODEL.md §1.4), so dg_image_resize must reproduce it bit for bit. For RGBA, PIL resizes
premultiplied ("RGBa") except with NEAREST; the cases below cover both paths.
"""
import json
import os
import sys

import numpy as np
import PIL
from PIL import Image
from safetensors.numpy import save_file

FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def synthetic(w, h, channels, seed):
    """Gradients, a hard-edged disc and a checker patch (to drive the negative lobes of bicubic and
    Lanczos into clipping), plus noise; alpha has fully transparent, opaque and partial regions."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255.0 * x / max(w - 1, 1)
    g = 255.0 * y / max(h - 1, 1)
    b = 127.5 + 127.5 * np.sin((x + 2 * y) / 3.0)
    img = np.stack([r, g, b], axis=-1)
    disc = (x - 0.6 * w) ** 2 + (y - 0.4 * h) ** 2 < (0.25 * min(w, h)) ** 2
    img[disc] = [255.0, 0.0, 255.0]
    checker = ((x.astype(int) + y.astype(int)) % 2 == 0) & (x < w / 3) & (y > h / 2)
    img[checker] = 0.0
    img += rng.normal(0.0, 12.0, img.shape)
    img = np.clip(np.floor(img), 0, 255).astype(np.uint8)
    if channels == 4:
        a = np.clip(np.floor(255.0 * (x + y) / max(w + h - 2, 1)), 0, 255)
        a[: h // 3, : w // 3] = 0        # fully transparent corner (premultiplied colour 0)
        a[-(h // 4):, -(w // 4):] = 255  # opaque corner
        a = a + (rng.integers(0, 3, a.shape) if w > 4 else 0)
        img = np.concatenate([img, np.clip(a, 0, 255).astype(np.uint8)[..., None]], axis=-1)
    return img


# (mode, w, h, seed) -> list of (filter, w2, h2)
ALL = ("nearest", "bilinear", "bicubic", "lanczos")
CASES = {
    ("rgb", 37, 29, 1): [(f, w, h) for f in ALL for (w, h) in
                         [(16, 12), (9, 20), (80, 61), (37, 13), (100, 29), (1, 1), (37, 29)]],
    ("rgb", 64, 48, 2): [("bicubic", 32, 32), ("bicubic", 27, 19), ("bicubic", 21, 16), ("bicubic", 64, 20),
                         ("bilinear", 27, 19), ("lanczos", 27, 19), ("nearest", 27, 19), ("bicubic", 56, 42)],
    ("rgb", 160, 120, 3): [("bicubic", 64, 48), ("bicubic", 47, 35), ("lanczos", 64, 48)],
    ("rgb", 40, 30, 4): [("bicubic", 130, 97), ("bilinear", 130, 97), ("lanczos", 130, 97), ("nearest", 130, 97)],
    ("rgb", 1, 1, 5): [("bicubic", 5, 3), ("bilinear", 5, 3), ("lanczos", 5, 3), ("nearest", 5, 3)],
    ("rgb", 3, 2, 6): [("bicubic", 1, 1), ("bicubic", 7, 5), ("lanczos", 2, 9)],
    ("rgba", 23, 31, 7): [(f, w, h) for f in ALL for (w, h) in [(50, 40), (11, 9), (23, 17), (7, 31)]],
    ("rgba", 96, 64, 8): [("bicubic", 32, 32), ("bicubic", 41, 27), ("lanczos", 41, 27), ("bicubic", 128, 96)],
    ("l", 29, 19, 9): [(f, 13, 40) for f in ALL] + [("bicubic", 64, 8)],  # masks and alpha planes
    # tall images downscaled: Pillow 13 resizes these vertically first
    ("rgb", 60, 200, 10): [("bicubic", 32, 112), ("bicubic", 75, 48), ("lanczos", 32, 112), ("bilinear", 32, 112)],
    ("rgba", 30, 90, 11): [("bicubic", 20, 32), ("lanczos", 40, 50)],
}

# Pillow 7-12 always resized horizontally first. The same cases in that order ("<filter>_hfirst"),
# made here by two single-axis resizes (each exactly one pass in every version); RGBA chained in
# the premultiplied mode, as one resize call would.
LEGACY = [("rgb", 60, 200, 10, "bicubic", 32, 112), ("rgb", 60, 200, 10, "lanczos", 75, 48),
          ("l", 29, 19, 9, "bicubic", 64, 8), ("rgba", 30, 90, 11, "bicubic", 20, 32)]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_image_golden.py OUT_DIR")
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    tensors = {}
    for (mode, w, h, seed), outs in CASES.items():
        arr = synthetic(w, h, 4 if mode == "rgba" else 3, seed)
        if mode == "l":
            arr = np.ascontiguousarray(arr[..., 1:2])
        tensors[f"input.{mode}.{w}x{h}"] = arr
        im = Image.fromarray(arr[..., 0] if mode == "l" else arr, mode.upper())
        for fname, w2, h2 in outs:
            res = np.asarray(im.resize((w2, h2), FILTERS[fname])).reshape(h2, w2, arr.shape[2])
            assert res.shape == (h2, w2, arr.shape[2]), res.shape
            tensors[f"{fname}.{mode}.{w}x{h}.{w2}x{h2}"] = np.ascontiguousarray(res)

    for mode, w, h, seed, fname, w2, h2 in LEGACY:
        arr = tensors[f"input.{mode}.{w}x{h}"]
        im = Image.fromarray(arr[..., 0] if mode == "l" else arr, mode.upper())
        if mode == "rgba":
            im = im.convert("RGBa")
        im = im.resize((w2, h), FILTERS[fname]).resize((w2, h2), FILTERS[fname])
        if mode == "rgba":
            im = im.convert("RGBA")
        tensors[f"{fname}_hfirst.{mode}.{w}x{h}.{w2}x{h2}"] = np.asarray(im).reshape(h2, w2, arr.shape[2]).copy()

    u = np.arange(256, dtype=np.uint8)
    x = torch_like_to_f32(u)
    tensors["to_f32"] = x
    q_in = np.concatenate([
        x,                                                        # every value the forward map produces
        np.linspace(-1.2, 1.2, 4801, dtype=np.float32),          # a dense sweep including clamping
        np.nextafter(x, np.float32(2)), np.nextafter(x, np.float32(-2)),  # just around every level
        np.array([-np.inf, np.inf, -0.0, 0.0, -1.0039216, 0.9960785], dtype=np.float32),
    ]).astype(np.float32)
    tensors["quant.in"] = q_in
    with np.errstate(invalid="ignore"):
        q = np.clip(np.float32(127.5) * q_in + np.float32(128.0), np.float32(0), np.float32(255))
    assert q.dtype == np.float32
    tensors["quant.out"] = q.astype(np.uint8)

    meta = {"pillow": PIL.__version__, "numpy": np.__version__,
            "command": "python tests/golden/make_image_golden.py tests/data/image"}
    # One metadata key: safetensors writes a map's keys in hash order, which would make the file differ
    # from run to run.
    save_file(tensors, os.path.join(out_dir, "resize.safetensors"), metadata={"generator": json.dumps(meta)})
    # The README is written here too, so that a --check regeneration compares the whole folder.
    with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(README_MD)
    total = sum(t.nbytes for t in tensors.values())
    print(f"wrote {len(tensors)} tensors, {total} bytes of data, to {out_dir}/resize.safetensors "
          f"(Pillow {PIL.__version__})")


def torch_like_to_f32(u):
    """x = 2*(u8/255) - 1 in float32, step by step as golden_scenarios.load_image does in torch."""
    t = u.astype(np.float32) / np.float32(255)
    return (np.float32(2) * t - np.float32(1)).astype(np.float32)


README_MD = r"""# Image goldens (`resize.safetensors`)

Pillow outputs that `tests/unit/test_image.c` compares `dg_image_resize` (model/image/image.c) with, bit for
bit, plus the reference's `[-1, 1]` conversion and uint8 quantisation evaluated in NumPy float32.

Regenerate (deterministic; any venv with Pillow 13, NumPy and safetensors):

```sh
python tests/golden/make_image_golden.py tests/data/image
```

Tensor names (U8, `[H, W, C]`):

| name | what |
|---|---|
| `input.<rgb\|rgba\|l>.<W>x<H>` | synthetic inputs: gradients, a hard disc, a checker patch, noise; RGBA has transparent, opaque and partial alpha |
| `<filter>.<mode>.<W>x<H>.<W2>x<H2>` | `Image.resize(input, (W2, H2), filter)`, filter = nearest, bilinear, bicubic, lanczos |
| `<filter>_hfirst.<...>` | the same in the pass order of Pillow 7–12 (always horizontal first), made by two single-axis resizes |
| `to_f32` (F32 [256]) | `2 * (u8 / 255) - 1` in float32 |
| `quant.in` (F32) / `quant.out` (U8) | `clip(127.5 * x + 128, 0, 255).astype(uint8)` in float32 |

The `__metadata__` key `generator` records the Pillow and NumPy versions (Pillow 13.0.0 here). Pillow 13
changed the pass order for images whose height shrinks more than twice as much as their width
(python-pillow/Pillow#9549); the `_hfirst` cases pin the older order, which `dg_image_resize_pil (…, TRUE)`
reproduces.
"""


if __name__ == "__main__":
    main()
