"""Compare a freshly regenerated tree with the committed one (make_golden.py --check).

Rules:
  * safetensors: same keys, dtypes, shapes; values bit-exact, else within the tolerance below (reported);
  * PNG: same decoded pixels;
  * JSON: equal after dropping volatile fields ("versions", per-file sha256/bytes of safetensors files);
  * anything else: byte-identical.
Tolerance (used only when not bit-exact; see README.md "Reproducibility"):
  fp32:  |a-b| <= 1e-4 * (1 + |b|)      bf16:  |a-b| <= 2**-6 * (1 + |b|)      uint8: |a-b| <= 2
  integer tensors (ids, masks, positions): exact.
bf16 end-to-end scenario files amplify rounding-order differences (see README.md): on the reference machine
kind they are bit-exact; elsewhere use --lenient-bf16 to report them without failing.
"""
import json
import os

import numpy as np
import torch

TOL = {torch.float32: 1e-4, torch.bfloat16: 2.0 ** -6, torch.float16: 2.0 ** -9}
U8_TOL = 2

DIRS = {"model": ["tiny-deepgen"], "modules": ["golden"], "scenarios": ["golden"]}


def _files(root):
    out = set()
    for dp, dn, fn in os.walk(root):
        for f in fn:
            out.add(os.path.relpath(os.path.join(dp, f), root))
    return out


def _strip_json(obj):
    if isinstance(obj, dict):
        return {k: _strip_json(v) for k, v in obj.items() if k not in ("versions", "sha256", "bytes")}
    if isinstance(obj, list):
        return [_strip_json(v) for v in obj]
    return obj


def compare_safetensors(a_path, b_path, report):
    from safetensors.torch import load_file
    a, b = load_file(a_path), load_file(b_path)
    ok = True
    if set(a) != set(b):
        report.append(f"  keys differ: only committed {sorted(set(a) - set(b))[:5]}, only new {sorted(set(b) - set(a))[:5]}")
        return False
    n_exact = n_tol = 0
    worst = (0.0, None)
    for k in sorted(a):
        x, y = a[k], b[k]
        if x.dtype != y.dtype or x.shape != y.shape:
            report.append(f"  {k}: dtype/shape {x.dtype}{tuple(x.shape)} vs {y.dtype}{tuple(y.shape)}")
            ok = False
            continue
        if torch.equal(x, y):
            n_exact += 1
            continue
        if x.dtype in TOL:
            xf, yf = x.float(), y.float()
            err = ((xf - yf).abs() / (1 + xf.abs())).max().item()
            if err <= TOL[x.dtype]:
                n_tol += 1
                if err > worst[0]:
                    worst = (err, k)
                continue
            report.append(f"  {k}: relative error {err:.3g} > {TOL[x.dtype]:.3g}")
            ok = False
        elif x.dtype == torch.uint8 and x.numel() > 0 and k.startswith("out."):
            err = (x.int() - y.int()).abs().max().item()
            if err <= U8_TOL:
                n_tol += 1
                continue
            report.append(f"  {k}: uint8 max difference {err} > {U8_TOL}")
            ok = False
        else:
            report.append(f"  {k}: integer tensor differs")
            ok = False
    if n_tol:
        report.append(f"  {n_tol} tensors within tolerance, not bit-exact (worst {worst[1]}: {worst[0]:.3g}); "
                      f"{n_exact} bit-exact")
    return ok


def compare_file(a, b, rel, report):
    if rel.endswith(".safetensors"):
        return compare_safetensors(a, b, report)
    if rel.endswith(".png"):
        from PIL import Image
        return np.array_equal(np.array(Image.open(a)), np.array(Image.open(b)))
    if rel.endswith(".json"):
        with open(a, encoding="utf-8") as f:
            ja = json.load(f)
        with open(b, encoding="utf-8") as f:
            jb = json.load(f)
        return _strip_json(ja) == _strip_json(jb)
    with open(a, "rb") as f:
        da = f.read()
    with open(b, "rb") as f:
        db = f.read()
    return da == db


def compare_trees(committed_root, new_root, stages, lenient_bf16=False):
    dirs = sorted({d for s in stages for d in DIRS[s]})
    all_ok = True
    n_files = n_identical = 0
    for d in dirs:
        ca, na = os.path.join(committed_root, d), os.path.join(new_root, d)
        fa, fb = _files(ca) if os.path.isdir(ca) else set(), _files(na)
        if d == "golden" and set(stages) != {"model", "modules", "scenarios"}:
            fa = {f for f in fa if f in fb or f == "manifest.json"}
        for rel in sorted(fa | fb):
            if rel not in fa or rel not in fb:
                print(f"{d}/{rel}: {'missing in committed tree' if rel not in fa else 'not regenerated'}")
                all_ok = False
                continue
            pa, pb = os.path.join(ca, rel), os.path.join(na, rel)
            n_files += 1
            with open(pa, "rb") as f1, open(pb, "rb") as f2:
                if f1.read() == f2.read():
                    n_identical += 1
                    continue
            report = []
            if rel == "manifest.json" and d == "golden" and set(stages) != {"model", "modules", "scenarios"}:
                continue  # partial regeneration: the manifest cannot be compared
            ok = compare_file(pa, pb, rel, report)
            if not ok and lenient_bf16 and rel.startswith("scenario") and rel.endswith("_bf16.safetensors"):
                print(f"{d}/{rel}: DIFFERS (bf16 end-to-end chain; tolerated with --lenient-bf16)")
                for line in report:
                    print(line)
                continue
            print(f"{d}/{rel}: {'OK (not byte-identical)' if ok else 'MISMATCH'}")
            for line in report:
                print(line)
            all_ok = all_ok and ok
    print(f"check: {n_files} files compared, {n_identical} byte-identical; result: {'PASS' if all_ok else 'FAIL'}")
    return all_ok
