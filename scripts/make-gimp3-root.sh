#!/bin/sh
# Creates (or completes) a Debian 13 "trixie" root in which the GIMP 3 plug-in is built and
# tested: GIMP 3.0, libgimp-3.0-dev, the build dependencies of this project, lavapipe and the
# Khronos validation layers (TESTING.md §10). Debian 12 has no GIMP 3, so CI on bookworm runs
# GIMP 3 here; on a machine that has GIMP 3 itself the tests use it directly and need no root.
#
# The root also serves the cooperative-matrix kernels (issue #9): lavapipe implements
# VK_KHR_cooperative_matrix from Mesa 26, which trixie has only in trixie-backports, and the
# root's glslc (shaderc 2025) compiles GL_KHR_cooperative_matrix where Debian 12's cannot. So
# mesa-vulkan-drivers (with the Mesa/LLVM libraries it needs) comes from trixie-backports, and
# the coopmat op tests (ctest -L coopmat) run inside the root under its validation layer.
#
#   scripts/make-gimp3-root.sh /var/tmp/deepgen-gimp3-root      (needs root: debootstrap, chroot)
#
# Idempotent: a finished root is recognised by a stamp file holding the package list and left
# as it is; an interrupted run is completed. Measured on 2 cores with a fast mirror: ~25 s for
# debootstrap, ~2-3 min for the packages, ~1.6 GB on disk.
#
# The tests (tests/gimp) find the root through DEEPGEN_GIMP3_ROOT (environment or CMake cache)
# and build the plug-in inside it from the same source tree, bind-mounted in a private mount
# namespace, so nothing stays mounted after a test.
set -eu

root=${1:?usage: make-gimp3-root.sh ROOT-DIRECTORY}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

packages="gimp libgimp-3.0-dev
  gcc libc6-dev make cmake pkg-config gettext
  libglib2.0-dev libjson-glib-dev libgtk-3-dev libsoup-3.0-dev
  libvulkan-dev glslc mesa-vulkan-drivers vulkan-validationlayers
  xvfb xauth imagemagick"
packages=$(echo $packages)            # one line, for the stamp
# Taken from trixie-backports (Mesa 26.1: lavapipe with cooperative matrix); apt's -t pulls the
# libraries they need from there too.
backports="mesa-vulkan-drivers"
# The stamp names both lists: a root made before the backports were added has another stamp and
# is completed (upgraded) by the next run.
want_stamp="$packages | trixie-backports: $backports"
stamp="$root/.deepgen-gimp3-root"

if [ "$(id -u)" != 0 ]; then
  echo "make-gimp3-root: needs root (debootstrap and chroot); try: sudo $0 $root" >&2
  exit 1
fi
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
  echo "make-gimp3-root: $root is ready"
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || {
  echo "make-gimp3-root: debootstrap is missing (apt-get install debootstrap)" >&2
  exit 1
}

start=$(date +%s)
mkdir -p "$root"
if [ ! -x "$root/usr/bin/apt-get" ] || [ ! -f "$root/etc/debian_version" ]; then
  echo "== debootstrap trixie into $root =="
  debootstrap --variant=minbase trixie "$root" "$mirror"
fi

printf 'deb %s trixie main\ndeb %s trixie-updates main\ndeb http://deb.debian.org/debian-security trixie-security main\ndeb %s trixie-backports main\n' \
  "$mirror" "$mirror" "$mirror" > "$root/etc/apt/sources.list"
# No service may start inside the root while packages install.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"

# proc/sys/dev only for the package install, in a private mount namespace: they disappear with
# it, even if the install fails half way.
echo "== packages: $packages; from trixie-backports: $backports =="
unshare --mount --propagation private sh -eu -c '
  root=$1; shift
  mount -t proc proc "$root/proc"
  mount -t sysfs sys "$root/sys"
  mount --bind /dev "$root/dev"
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  chroot "$root" apt-get update -q
  backports=$1; shift
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -t trixie-backports $backports
  chroot "$root" apt-get clean
' sh "$root" "$backports" $packages

echo "$want_stamp" > "$stamp"
echo "make-gimp3-root: $root ready in $(( $(date +%s) - start )) s ($(du -sh "$root" 2>/dev/null | cut -f1))"
