#!/bin/sh
# Creates (or completes) a minimal Debian 12 "bookworm" root that stands in for a bare GPU
# machine when the GPU bundle (scripts/gpu-bundle.sh) is tested here: debootstrap minbase plus
# only mesa-vulkan-drivers (lavapipe = the "vendor driver" with its ICD json). No Vulkan loader
# (libvulkan1, which mesa-vulkan-drivers pulls in, is purged again), no GLib, no GTK, no compiler: everything else must come from the bundle.
#
#   scripts/bundle/make-bare-root.sh /var/tmp/deepgen-bundle-root     (needs root)
#
# Idempotent: a finished root carries a stamp holding the package list and is left as it is.
# A user "gpucheck" (uid 4242) is created so the bundle can run as a non-root user.
set -eu

root=${1:?usage: make-bare-root.sh ROOT-DIRECTORY}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages="mesa-vulkan-drivers"
stamp="$root/.deepgen-bundle-root"

if [ "$(id -u)" != 0 ]; then
  echo "make-bare-root: needs root (debootstrap and chroot); try: sudo $0 $root" >&2
  exit 1
fi
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$packages" ]; then
  echo "make-bare-root: $root is ready"
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || {
  echo "make-bare-root: debootstrap is missing (apt-get install debootstrap)" >&2
  exit 1
}

start=$(date +%s)
mkdir -p "$root"
if [ ! -x "$root/usr/bin/apt-get" ] || [ ! -f "$root/etc/debian_version" ]; then
  echo "== debootstrap bookworm into $root =="
  debootstrap --variant=minbase bookworm "$root" "$mirror"
fi
printf 'deb %s bookworm main\n' "$mirror" > "$root/etc/apt/sources.list"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"

echo "== packages: $packages =="
unshare --mount --propagation private sh -eu -c '
  root=$1; shift
  mount -t proc proc "$root/proc"
  mount -t sysfs sys "$root/sys"
  mount --bind /dev "$root/dev"
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  chroot "$root" apt-get update -q
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
  # mesa-vulkan-drivers depends on libvulkan1, but a bare GPU machine may have a driver and
  # no loader: remove the loader (the bundle must bring its own).
  chroot "$root" dpkg --purge --force-depends libvulkan1
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/*
  chroot "$root" sh -c "getent passwd gpucheck >/dev/null || useradd -u 4242 -m -s /bin/sh gpucheck"
' sh "$root" $packages

# A bare machine: the loader and the build libraries must not be there.
for f in libvulkan.so.1 libglib-2.0.so.0 libgdk_pixbuf-2.0.so.0 libjson-glib-1.0.so.0; do
  if find "$root/usr/lib" "$root/lib" -name "$f" 2>/dev/null | grep -q .; then
    echo "make-bare-root: $f is in the root; it should not be (a package pulled it in)" >&2
    exit 1
  fi
done

echo "$packages" > "$stamp"
echo "make-bare-root: $root ready in $(( $(date +%s) - start )) s ($(du -sh "$root" 2>/dev/null | cut -f1))"
