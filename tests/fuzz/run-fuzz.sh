#!/bin/sh
# Builds the libFuzzer targets with clang in a build folder of their own and runs each for a
# bounded time. CI calls it; it needs clang and libclang-rt (libFuzzer) besides the usual deps.
#
#   tests/fuzz/run-fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS: run time of each target (default 60). TARGET: safetensors, gguf, config, tokenizer,
# lora, image, service (default: all).
# Environment: DEEPGEN_FUZZ_BUILD_DIR (default <repo>/build-fuzz), DEEPGEN_FUZZ_JOBS (libFuzzer
# worker processes per target, default 1).
# New interesting inputs go to $BUILD/fuzz-corpus/<target>/ (the seeds in tests/fuzz/corpus stay
# untouched); a crashing input is written to $BUILD/fuzz-artifacts/ and the script exits non-zero.
set -eu

secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-safetensors gguf config tokenizer lora image service}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${DEEPGEN_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${DEEPGEN_FUZZ_JOBS:-1}

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDEEPGEN_FUZZ=ON -DDEEPGEN_TESTS=ON -DDEEPGEN_GIMP3=OFF -DDEEPGEN_GIMP2=OFF -DDEEPGEN_UI=OFF >/dev/null
for t in $targets; do
  cmake --build "$build" --target "fuzz_$t" -j "$(nproc 2>/dev/null || echo 2)"
done
build=$(cd "$build" && pwd)

mkdir -p "$build/fuzz-artifacts"
# With several jobs libFuzzer writes one fuzz-N.log per worker into the current folder.
cd "$build"
parallel=""
[ "$jobs" -gt 1 ] && parallel="-jobs=$jobs -workers=$jobs"
status=0
for t in $targets; do
  work="$build/fuzz-corpus/$t"
  mkdir -p "$work"
  echo "== fuzz_$t for ${secs}s"
  # -max_len: real headers are KBs; 16 KB leaves room for long names and deep nesting.
  # shellcheck disable=SC2086 # $parallel is deliberately split
  dict=""
  [ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
  # gdk-pixbuf's BMP loader reserves what a crafted header claims (4 GB seen) before it finds the
  # file short, then fails cleanly: the allocation is the library's, untouched, so the image
  # target lets single allocations reach 8 GB; resident memory is still capped at 2 GB.
  [ "$t" = image ] && dict="$dict -malloc_limit_mb=8192"
  # shellcheck disable=SC2086 # $dict and $parallel are deliberately split
  if ! "$build/tests/fuzz/fuzz_$t" "$work" "$here/corpus/$t" \
      $dict -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
      $parallel -artifact_prefix="$build/fuzz-artifacts/$t-" -print_final_stats=1; then
    echo "fuzz_$t found a crash: see $build/fuzz-artifacts/" >&2
    status=1
  fi
done
exit $status
