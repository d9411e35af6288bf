#!/usr/bin/env python3
"""Reference-image sizes as the official DeepGen code computes them, for dg_reference_size.

The official inference script (deepgenteam/deepgen,
src/models/sd3_kontext/qwen2_5_vl_sd3_hf_dynamic_fusion.py, `resize_image`, called from its
`__main__` with image_size = max(width, height) and unit 32) scales the longer side to the
target and computes the other side in floating point:

    target_h = h * (target_w / w);  target_h = math.ceil(target_h / 32) * 32

Where the double product lands a hair above a multiple of 32 the result is 32 px larger than
the exact rational rule would give (728x546 at 512 -> 512x416, not 512x384). The C code must
reproduce the float rule, so this table holds, for targets 512, 768 and 1024 and both
orientations:
  - every (width, height) with sides up to 2048 where the float rule and the exact rule
    disagree (the cases that matter; counted in the header),
  - a deterministic sample of the pairs where they agree (every 4099th pair in scan order),
  - samples of the edges: longer side equal to the target, squares, a side of 1, both sides
    below the target.

Pure Python (no torch): `python3 tests/golden/make_reference_sizes.py OUT_DIR`
(regenerate.sh runs it into tests/data/reference-sizes/). Output: OUT_DIR/reference_sizes.tsv
with columns target, width, height, out_width, out_height, disagrees (1 where the exact rule
differs).
"""
import math
import os
import sys

UNIT = 32
TARGETS = (512, 768, 1024)
MAX_SIDE = 2048
SAMPLE_STRIDE = 4099


def official(w, h, image_size, unit=UNIT):
    """The official resize_image's size arithmetic, operation for operation."""
    if w >= h and w >= image_size:
        target_w = image_size
        target_h = h * (target_w / w)
        target_h = math.ceil(target_h / unit) * unit
    elif h >= w and h >= image_size:
        target_h = image_size
        target_w = w * (target_h / h)
        target_w = math.ceil(target_w / unit) * unit
    else:
        target_h = math.ceil(h / unit) * unit
        target_w = math.ceil(w / unit) * unit
    return target_w, target_h


def exact(w, h, target, unit=UNIT):
    """The exact rational rule (ceil(other * target / longer) to the unit), for comparison."""
    longer = max(w, h)
    if longer > target:
        side = -(-(min(w, h) * target) // (longer * unit)) * unit
        return (target, side) if w >= h else (side, target)
    return -(-w // unit) * unit, -(-h // unit) * unit


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/data/reference-sizes"
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    counts = {}
    for target in TARGETS:
        scanned = disagree = 0
        for longer in range(1, MAX_SIDE + 1):
            for other in range(1, longer + 1):
                for w, h in ((longer, other), (other, longer)) if other != longer else ((longer, other),):
                    scanned += 1
                    o = official(w, h, target)
                    differs = o != exact(w, h, target)
                    disagree += differs
                    edge = ((longer == target and other % 7 == 0) or (w == h and w % 17 == 0)
                            or (other == 1 and longer % 61 == 0) or (longer < target and longer % 97 == 0 and other % 13 == 0))
                    if differs or edge or scanned % SAMPLE_STRIDE == 0:
                        rows.append((target, w, h, o[0], o[1], int(differs)))
        counts[target] = (scanned, disagree)
    path = os.path.join(out_dir, "reference_sizes.tsv")
    with open(path, "w") as f:
        f.write("# made by tests/golden/make_reference_sizes.py: the official DeepGen resize_image size rule\n")
        for target, (scanned, disagree) in counts.items():
            f.write(f"# target {target}: {scanned} pairs with sides 1..{MAX_SIDE} scanned, "
                    f"{disagree} where the float rule differs from the exact one (all listed)\n")
        f.write("# target\twidth\theight\tout_width\tout_height\tdisagrees\n")
        for r in rows:
            f.write("\t".join(str(v) for v in r) + "\n")
    print(f"{path}: {len(rows)} rows; " +
          ", ".join(f"target {t}: {d} disagreeing of {s}" for t, (s, d) in counts.items()))


if __name__ == "__main__":
    main()
