#!/bin/sh
# The GPU bundle on a bare machine: makes the bundle from this build (scripts/gpu-bundle.sh),
# copies it into an empty folder inside a minimal Debian 12 root that has nothing but
# mesa-vulkan-drivers (scripts/bundle/make-bare-root.sh: no Vulkan loader, no GLib, no
# compiler), and runs gpu-check.sh there as an ordinary user on lavapipe with --quick. Checks
# that the report exists, that every step that ran passed, that the bundled Vulkan loader is the
# one used, the two early exits (glibc too old, no ICD) with their messages, and the ICD json
# written for an NVIDIA driver library that has none.
#
#   tests/bundle/bundle-test.sh SRC BUILD ROOT
#
# Needs root (unshare, mount, chroot). Exit 77 (ctest: skipped) without root or without a
# finished root at ROOT. The report stays in BUILD/bundle-test/report.
set -eu

src=${1:?SRC}
build=${2:?BUILD}
root=${3:?ROOT}

if [ ! -f "$root/.deepgen-bundle-root" ]; then
  echo "SKIP: no bare root at '$root'. Create one with: sudo scripts/bundle/make-bare-root.sh $root" \
       "(about 1 minute, 390 MB)" >&2
  exit 77
fi
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: entering the bare root needs root (mount, chroot)" >&2
  exit 77
fi

out=$build/bundle-test
rm -rf "$out"
mkdir -p "$out"
"$src/scripts/gpu-bundle.sh" -B "$build" "$out/bundle" > "$out/gpu-bundle.log" 2>&1 || {
  cat "$out/gpu-bundle.log" >&2; exit 1; }
tail -n1 "$out/gpu-bundle.log"

# A copy in an empty folder inside the root, owned by the unprivileged user.
uid=$(awk -F: '$1 == "gpucheck" { print $3 }' "$root/etc/passwd")
[ -n "$uid" ] || { echo "FAIL: no user gpucheck in $root" >&2; exit 1; }
work=$(mktemp -d "$root/tmp/bundle-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$out/bundle" "$work/bundle"
chown -R "$uid:$uid" "$work"
w=${work#"$root"}

# inroot CMD...: CMD inside the root as gpucheck, with a bare environment.
# With HIDE_ICDS=1 the root's icd.d folder is empty for that command.
inroot() {
  unshare --mount --propagation private sh -eu -c '
    root=$1 uid=$2 hide=$3; shift 3
    mount -t proc proc "$root/proc"
    mount --bind /dev "$root/dev"
    [ "$hide" = 1 ] && mount -t tmpfs tmpfs "$root/usr/share/vulkan/icd.d"
    chmod 1777 "$root/tmp"
    exec chroot --userspec="$uid:$uid" "$root" env -i HOME=/home/gpucheck PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"
  ' sh "$root" "$uid" "${HIDE_ICDS:-0}" "$@"
}

fail=0
check() {   # check FILE PATTERN WHAT
  if grep -q -- "$2" "$1"; then echo "ok: $3"; else echo "FAIL: $3 (no '$2' in $1)" >&2; fail=1; fi
}

echo "== gpu-check.sh --quick in the bare root as gpucheck =="
rc=0
inroot "$w/bundle/gpu-check.sh" --quick "$w/report" || rc=$?
rm -rf "$out/report"
cp -r "$root$w/report" "$out/report"
rm -rf "$out/report/work"
r=$out/report/report.md
[ -f "$r" ] || { echo "FAIL: no report" >&2; exit 1; }
cat "$r"
[ $rc = 0 ] || { echo "FAIL: gpu-check.sh exited $rc" >&2; fail=1; }
check "$r" "loader: $w/bundle/lib/vulkan/libvulkan.so.1.* (bundled)" "the bundled Vulkan loader is used"
check "$r" "no Vulkan loader on the host" "the report says the host has no loader"
check "$r" "device: llvmpipe" "the device is lavapipe"
check "$r" "validation layer: bundled" "the bundled validation layer is used"
check "$r" "| pass | .* | \`model_pipeline:/pipeline/scenario1\`\|\`model_pipeline:/pipeline/scenario1\` | pass" "golden scenario 1 passed"
check "$r" "user: gpucheck" "it ran as an ordinary user"
check "$r" "\*\*[1-9][0-9]* passed, 0 failed" "no step failed"
check "$r" "### .bin/deepgen bench ops" "the op benchmark table is in the report"
check "$r" "DiT, one step" "the pipeline stage table is in the report"

echo "== early exits =="
sed -i 's/^glibc_min=.*/glibc_min=9.99/' "$work/bundle/bundle-info.txt"
rc=0
inroot "$w/bundle/gpu-check.sh" --quick "$w/report-glibc" > /dev/null || rc=$?
[ $rc = 2 ] || { echo "FAIL: glibc too old: exit $rc, not 2" >&2; fail=1; }
check "$root$w/report-glibc/report.md" "Could not run: glibc too old" "glibc too old is reported"
cp "$out/bundle/bundle-info.txt" "$work/bundle/bundle-info.txt"
rc=0
inroot VK_DRIVER_FILES=/nonexistent.json VK_ICD_FILENAMES=/nonexistent.json \
  "$w/bundle/gpu-check.sh" --quick "$w/report-noicd" > /dev/null || rc=$?
[ $rc = 2 ] || { echo "FAIL: no ICD: exit $rc, not 2" >&2; fail=1; }
check "$root$w/report-noicd/report.md" "Could not run: no usable Vulkan device" "no device is reported"

# NVIDIA in a container: the driver library and no ICD json. Simulated with no json at all and
# lavapipe's library under NVIDIA's name on LD_LIBRARY_PATH: gpu-check.sh must write the json.
mkdir -p "$work/fake-nvidia"
ln -s /usr/lib/x86_64-linux-gnu/libvulkan_lvp.so "$work/fake-nvidia/libGLX_nvidia.so.0"
rc=0
HIDE_ICDS=1 inroot LD_LIBRARY_PATH="$w/fake-nvidia" "$w/bundle/gpu-check.sh" --info-only "$w/report-nvidia" > /dev/null || rc=$?
[ $rc = 0 ] || { echo "FAIL: NVIDIA without ICD json: exit $rc" >&2; fail=1; }
check "$root$w/report-nvidia/report.md" "wrote .*nvidia_icd.json and set VK_DRIVER_FILES" "an ICD json is written for libGLX_nvidia.so.0"
check "$root$w/report-nvidia/report.md" "device: llvmpipe" "the device opens through the written json"
check "$root$w/report-nvidia/report.md" "nvidia libraries: .*fake-nvidia/libGLX_nvidia.so.0" "the NVIDIA libraries are listed"

[ $fail = 0 ] && echo "bundle test passed; report: $out/report/report.md"
exit $fail
