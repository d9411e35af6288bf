#!/bin/sh
# Makes the GPU bundle: a relocatable folder that measures DeepGen on a bare GPU machine (no
# network, no packages, a vendor Vulkan driver, perhaps no Vulkan loader) with one command,
# gpu-check.sh (scripts/bundle/gpu-check.sh; README "Running on a GPU machine").
#
#   scripts/gpu-bundle.sh [-B BUILD_DIR] [--no-layer] OUT_DIR
#
# -B BUILD_DIR  use this configured build tree (tests on); the targets the bundle needs are
#               built in it first. Without -B the script configures build/gpu-bundle-build in the
#               source tree (tests on, UI and GIMP plug-ins off) and builds those targets there.
# --no-layer    leave the Khronos validation layer out (the tests then run without validation
#               unless the GPU machine has the layer itself).
# JOBS          parallel build jobs (default 2).
#
# OUT_DIR (created; an earlier bundle there is replaced) holds:
#   gpu-check.sh            the one command to run on the GPU machine
#   bin/                    deepgen, deepgen-bench
#   bin/xz                  the xz of Debian's xz-utils, to unpack the two archives below where
#                           the host has no xz
#   tests/                  binaries.tar.xz: the op and model test executables (~37 files of
#                           ~1.2 MB that are mostly the same embedded shaders: 45 MB as they
#                           are, 1.5 MB packed with xz, whose window spans the files, where
#                           gzip's 32 KB window left 15 MB; gpu-check.sh unpacks them into a
#                           temporary folder); tests.sh: their ctest commands, environment and
#                           timeouts (from `ctest --show-only=json-v1`)
#   lib/                    every shared library they need except the C library, from the
#                           binaries' actual dependencies (ldd, transitive), found through
#                           RUNPATH $ORIGIN/../lib (binaries) and $ORIGIN (libraries)
#   lib/vulkan/             the Vulkan loader (libvulkan.so.1 of Debian's libvulkan1), outside
#                           RUNPATH: gpu-check.sh adds it only when the host has no loader
#   lib/layer.tar.xz        the Khronos validation layer and its C++ runtime (22 MB as they are,
#                           ~5 MB packed), unpacked at run time when the host has no layer
#   data/                   tests/data: the tiny model, goldens, images, noise, tokenizer
#   bundle-info.txt         commit, build, minimum glibc, libraries and their Debian packages
# Needs: python3, patchelf, ldd, readelf, strip, xz (Debian: patchelf binutils xz-utils).
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=""
layer=1
while [ $# -gt 1 ]; do
  case $1 in
    -B) build=$2; shift 2 ;;
    --no-layer) layer=0; shift ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || { echo "usage: $0 [-B BUILD_DIR] [--no-layer] OUT_DIR" >&2; exit 2; }
out=$1
jobs=${JOBS:-2}
limit_mb=60

for tool in python3 patchelf ldd readelf strip xz cmake ctest; do
  command -v $tool >/dev/null 2>&1 || { echo "gpu-bundle: $tool is missing (Debian: apt-get install patchelf binutils xz-utils python3 cmake)" >&2; exit 1; }
done

# ---- build -----------------------------------------------------------------------------------
if [ -z "$build" ]; then
  build=$src/build/gpu-bundle-build
  if [ ! -f "$build/CMakeCache.txt" ]; then
    echo "== configure $build =="
    cmake -S "$src" -B "$build" -DDEEPGEN_TESTS=ON -DDEEPGEN_UI=OFF -DDEEPGEN_GIMP2=OFF -DDEEPGEN_GIMP3=OFF >/dev/null
  fi
fi
[ -f "$build/CMakeCache.txt" ] || { echo "gpu-bundle: $build is not a configured build tree" >&2; exit 1; }
build=$(cd "$build" && pwd)
# The tree the build was configured from (its tests/data and the paths ctest names); the bundle
# scripts themselves come from this checkout.
proj=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
[ -d "$proj/tests/data" ] || { echo "gpu-bundle: $build: its source tree '$proj' has no tests/data" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gpu-bundle.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The targets: deepgen, deepgen-bench and the executables of the tests labelled op or model.
# ctest names no command for a test whose executable is not built yet: build the targets named
# like those tests (op_NAME, model_NAME) that the build system knows, then ask ctest again.
# ctest's list without touching the build tree (a ctest run there, even --show-only, rewrites
# Testing/Temporary/LastTest.log, which a ctest that runs this script is writing): the
# CTestTestfile.cmake files, which name everything by absolute path, copied into a mirror.
ctest_json() {
  rm -rf "$tmp/ctest-mirror"
  ( cd "$build" && find . -name CTestTestfile.cmake ) | while read -r f; do
    mkdir -p "$tmp/ctest-mirror/$(dirname "$f")"
    cp "$build/$f" "$tmp/ctest-mirror/$f"
  done
  # A test's default working folder is its CTestTestfile's folder: the mirror's, mapped back.
  ( cd "$tmp/ctest-mirror" && ctest --show-only=json-v1 ) | sed "s|$tmp/ctest-mirror|$build|g" > "$tmp/ctest.json"
}
ctest_json
wanted=$(python3 -c '
import json, sys
for t in json.load(open(sys.argv[1]))["tests"]:
    labels = next((p["value"] for p in t.get("properties", []) if p["name"] == "LABELS"), [])
    if "op" in labels or "model" in labels:
        print(t["name"])' "$tmp/ctest.json")
cmake --build "$build" --target help > "$tmp/targets.txt"
targets="deepgen deepgen-bench"
for t in $wanted; do
  # a test may run one case of a larger executable: model_realwidth_edit_512 → model_realwidth
  c=$t
  while [ -n "$c" ]; do
    if grep -Eq "^(\.\.\. )?$c(:| |\$)" "$tmp/targets.txt"; then targets="$targets $c"; break; fi
    case $c in *_*) c=${c%_*} ;; *) c= ;; esac
  done
done
echo "== build: $(echo $targets | wc -w) targets in $build =="
# shellcheck disable=SC2086
cmake --build "$build" -j"$jobs" --target $targets
ctest_json

# ---- the folder ------------------------------------------------------------------------------
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ] && [ ! -f "$out/.deepgen-gpu-bundle" ]; then
  echo "gpu-bundle: $out exists and is not a GPU bundle; refusing to replace it" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out/bin" "$out/tests" "$out/lib/vulkan" "$tmp/tests" "$tmp/layer"
out=$(cd "$out" && pwd)
touch "$out/.deepgen-gpu-bundle"

python3 "$src/scripts/bundle/tests-from-ctest.py" "$tmp/ctest.json" "$proj" "$build" \
        "$out/tests/tests.sh" "$tmp/binaries.txt"
[ -x "$build/cli/deepgen" ] || { echo "gpu-bundle: $build/cli/deepgen was not built (gdk-pixbuf missing?)" >&2; exit 1; }
cp "$build/cli/deepgen" "$build/cli/deepgen-bench" "$(command -v xz)" "$out/bin/"
while read -r exe; do
  cp "$exe" "$tmp/tests/"
done < "$tmp/binaries.txt"
strip "$out"/bin/* "$tmp"/tests/*

# Shared libraries: everything the binaries resolve to (ldd is transitive), then again for the
# copied libraries until nothing new appears. The C library stays the host's.
is_libc() {
  case $1 in
    libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|libutil.so.*|\
    ld-linux*|linux-vdso*|libmvec.so.*|libanl.so.*|libnsl.so.*|libcrypt.so.*) return 0 ;;
  esac
  return 1
}
: > "$tmp/libs.txt"
scan() {   # scan ELF...: copies unseen dependencies into lib/ (the loader into lib/vulkan/)
  : > "$tmp/deps.txt"
  for elf in "$@"; do
    ldd "$elf" > "$tmp/ldd.txt" 2>&1 || { echo "gpu-bundle: ldd $elf failed:" >&2; cat "$tmp/ldd.txt" >&2; exit 1; }
    if grep -q "not found" "$tmp/ldd.txt"; then
      echo "gpu-bundle: $elf: unresolved libraries:" >&2; grep "not found" "$tmp/ldd.txt" >&2; exit 1
    fi
    awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' "$tmp/ldd.txt" >> "$tmp/deps.txt"
  done
  sort -u "$tmp/deps.txt" > "$tmp/deps-sorted.txt"
  while read -r name path; do
    is_libc "$name" && continue
    grep -qx "$name" "$tmp/libs.txt" && continue
    echo "$name" >> "$tmp/libs.txt"
    if [ "$name" = libvulkan.so.1 ]; then dest=$out/lib/vulkan; else dest=$out/lib; fi
    cp -L "$path" "$dest/$name"
    chmod u+w "$dest/$name"
    pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n1 | cut -d: -f1)
    [ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | head -n1 | cut -d: -f1)
    echo "$name ${pkg:-?}" >> "$tmp/lib-packages.txt"
  done < "$tmp/deps-sorted.txt"
}
scan "$out"/bin/* "$tmp"/tests/*
while :; do
  n=$(wc -l < "$tmp/libs.txt")
  scan $(find "$out/lib" -name '*.so*' -type f)
  [ "$(wc -l < "$tmp/libs.txt")" = "$n" ] && break
done
[ -f "$out/lib/vulkan/libvulkan.so.1" ] || { echo "gpu-bundle: the binaries do not link libvulkan.so.1?" >&2; exit 1; }

for f in "$out"/bin/* "$tmp"/tests/*; do
  patchelf --set-rpath '$ORIGIN/../lib' "$f"
done
for f in "$out"/lib/*.so*; do
  strip --strip-unneeded "$f" 2>/dev/null || true
  patchelf --set-rpath '$ORIGIN' "$f"
done

# The Khronos validation layer (the tests run with DEEPGEN_VK_VALIDATION=1): 22 MB as it is,
# ~5 MB packed; gpu-check.sh unpacks it only when the host has no layer of its own. Its
# C++ runtime lies beside it (RUNPATH $ORIGIN), not in lib/, so that a host driver that needs
# a newer libstdc++ than Debian 12's never gets ours through the binaries' RUNPATH.
if [ $layer = 1 ]; then
  json=""
  for d in /usr/share/vulkan/explicit_layer.d /etc/vulkan/explicit_layer.d /usr/local/share/vulkan/explicit_layer.d; do
    [ -f "$d/VkLayer_khronos_validation.json" ] && { json=$d/VkLayer_khronos_validation.json; break; }
  done
  so=$(sed -n 's/.*"library_path": *"\([^"]*\)".*/\1/p' "${json:-/dev/null}" | head -n1)
  case $so in /*) ;; ?*) so=$( (ldconfig -p 2>/dev/null || /sbin/ldconfig -p) | awk -v n="$so" '$1 == n { print $NF; exit }') ;; esac
  if [ -n "$json" ] && [ -f "$so" ]; then
    cp -L "$so" "$tmp/layer/libVkLayer_khronos_validation.so"
    chmod u+w "$tmp/layer/libVkLayer_khronos_validation.so"
    patchelf --set-rpath '$ORIGIN' "$tmp/layer/libVkLayer_khronos_validation.so"
    sed 's|"library_path": *"[^"]*"|"library_path": "./libVkLayer_khronos_validation.so"|' "$json" \
      > "$tmp/layer/VkLayer_khronos_validation.json"
    ldd "$so" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' > "$tmp/layer-deps.txt"
    while read -r name path; do
      is_libc "$name" || { cp -L "$path" "$tmp/layer/$name"; chmod u+w "$tmp/layer/$name"; strip --strip-unneeded "$tmp/layer/$name"; }
    done < "$tmp/layer-deps.txt"
    tar -C "$tmp" -cf - layer | xz -6 > "$out/lib/layer.tar.xz"
    layer_version=$(sed -n 's/.*"api_version": *"\([^"]*\)".*/\1/p' "$json" | head -n1)
  else
    echo "gpu-bundle: no Khronos validation layer here (Debian: vulkan-validationlayers); bundling none" >&2
    layer=0
  fi
fi

tar -C "$tmp" -cf - tests | xz -6 > "$out/tests/binaries.tar.xz"

echo "== data =="
cp -r "$proj/tests/data" "$out/data"
cp "$src/scripts/bundle/gpu-check.sh" "$out/gpu-check.sh"
chmod +x "$out/gpu-check.sh"

# ---- minimum glibc: the highest GLIBC_x.y symbol version the bundled ELF files need ------------
# Kept apart for the layer's C++ runtime (Debian 12's libstdc++ needs a newer glibc than the rest):
# gpu-check.sh uses the host's libstdc++ for the layer when the host's glibc is older.
glibc_needs() {
  for f in "$@"; do
    [ -f "$f" ] || continue
    readelf -V --wide "$f" 2>/dev/null | awk '/Version needs section/ { on = 1 } /Version definition section/ { on = 0 }
      on && match($0, /Name: GLIBC_[0-9.]+/) { print substr($0, RSTART + 12, RLENGTH - 12) }'
  done | sort -u -V | tail -n1
}
glibc_min=$(glibc_needs "$out"/bin/* "$tmp"/tests/* $(find "$out/lib" -name '*.so*' -type f))
layer_glibc_min=$(glibc_needs "$tmp"/layer/*.so*)
commit=$(git -C "$proj" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$proj" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo "+changes" || true)
{
  echo "# DeepGen GPU bundle (scripts/gpu-bundle.sh)"
  echo "commit=$commit$dirty"
  echo "made=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"
  echo "built_on=$(. /etc/os-release && echo "$PRETTY_NAME"), glibc $(getconf GNU_LIBC_VERSION | cut -d' ' -f2)"
  echo "glibc_min=$glibc_min"
  echo "loader=libvulkan.so.1 $(sed -n 's/^libvulkan.so.1 //p' "$tmp/lib-packages.txt") $(dpkg-query -W -f='${Version}' libvulkan1 2>/dev/null)"
  if [ $layer = 1 ]; then
    echo "validation_layer=$layer_version"
    echo "layer_glibc_min=$layer_glibc_min"
  else
    echo "validation_layer=none"
  fi
  echo "tests=$(grep -c '^dg_test' "$out/tests/tests.sh")"
  echo "# libraries (Debian package)"
  sort "$tmp/lib-packages.txt"
} > "$out/bundle-info.txt"

size_kb=$(du -sk "$out" | cut -f1)
echo "gpu-bundle: $out: $((size_kb / 1024)) MB, $(grep -c '^dg_test' "$out/tests/tests.sh") test steps, $(wc -l < "$tmp/libs.txt") libraries, minimum glibc $glibc_min${layer_glibc_min:+ (the bundled validation layer's C++ runtime: $layer_glibc_min)}"
if [ $((size_kb / 1024)) -ge $limit_mb ]; then
  echo "gpu-bundle: the bundle is over $limit_mb MB" >&2
  exit 1
fi
