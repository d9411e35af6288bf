#!/bin/sh
# Runs an op test inside the Debian 13 root of scripts/make-gimp3-root.sh, whose Mesa 26 lavapipe
# has VK_KHR_cooperative_matrix and whose validation layer knows it (Debian 12's has neither).
# Binaries built on Debian 12 run there unchanged; the source and build trees are bind-mounted at
# the same paths in a private mount namespace that vanishes with the command.
#
#   tests/ops/run-in-root.sh ROOT SRC BUILD PROBE CMD [ARG...]
#
# PROBE (coopmat_probe) runs first, inside the root: when the device there has no usable
# cooperative matrices (no AVX2, an old Mesa) the test reports skipped (77) instead of failing.
# Also 77 without a root or without the privileges to enter it. The environment passes through
# (ctest sets DEEPGEN_VK_VALIDATION=1, DEEPGEN_VK_FORCE_COOPMAT=1, XDG_CACHE_HOME).
set -eu
root=${1:?ROOT}
src=${2:?SRC}
build=${3:?BUILD}
probe=${4:?PROBE}
shift 4

if [ -z "$root" ] || [ ! -f "$root/.deepgen-gimp3-root" ]; then
  echo "SKIP: no Debian 13 root at '$root' (sudo scripts/make-gimp3-root.sh ROOT, then configure with" \
       "-DDEEPGEN_GIMP3_ROOT=ROOT)" >&2
  exit 77
fi
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: entering the root needs root (mount, chroot)" >&2
  exit 77
fi
src=$(cd "$src" && pwd)
build=$(cd "$build" && pwd)

# shellcheck disable=SC2016
exec unshare --mount --propagation private sh -eu -c '
  root=$1 src=$2 build=$3 probe=$4; shift 4
  mkdir -p "$root$src" "$root$build"
  mount --bind "$src" "$root$src"
  mount --bind "$build" "$root$build"
  mount -t proc proc "$root/proc"
  mount --bind /dev "$root/dev"
  mkdir -p "$root/tmp" && chmod 1777 "$root/tmp"
  rc=0
  chroot "$root" env PATH=/usr/local/bin:/usr/bin:/bin "$probe" || rc=$?
  if [ "$rc" != 0 ]; then exit "$rc"; fi
  exec chroot "$root" env PATH=/usr/local/bin:/usr/bin:/bin "$@"
' sh "$root" "$src" "$build" "$probe" "$@"
