#!/bin/sh
# Runs a command inside the GIMP 3 root (scripts/make-gimp3-root.sh) with the source tree and
# the build tree visible at the same paths as outside, so that paths mean the same on both
# sides. The mounts live in a private mount namespace and vanish with the command.
#
#   tests/gimp/gimp3-root.sh ROOT SRC BUILD build [-DX=Y…] configure (with those options) + build
#                                                           deepgen-gimp (and deepgen, for the
#                                                           service) in BUILD/gimp3-build with
#                                                           the root's tools
#   tests/gimp/gimp3-root.sh ROOT SRC BUILD run CMD ARG... run CMD inside the root
#
# Needs root (mount, chroot). Exit 77 (ctest: skipped) when ROOT is not a finished GIMP 3 root.
set -eu

root=${1:?ROOT}
src=${2:?SRC}
build=${3:?BUILD}
what=${4:?build|run}
shift 4

if [ ! -f "$root/.deepgen-gimp3-root" ] || [ ! -x "$root/usr/bin/gimp-console-3.0" ]; then
  echo "SKIP: no GIMP 3 root at '$root'. Create one with: sudo scripts/make-gimp3-root.sh $root" \
       "(about 4 minutes, 1.6 GB), then configure with -DDEEPGEN_GIMP3_ROOT=$root" >&2
  exit 77
fi
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: the GIMP 3 root needs root to enter (mount, chroot)" >&2
  exit 77
fi

src=$(cd "$src" && pwd)
mkdir -p "$build"
build=$(cd "$build" && pwd)

# shellcheck disable=SC2016
exec unshare --mount --propagation private sh -eu -c '
  root=$1 src=$2 build=$3 what=$4; shift 4
  mkdir -p "$root$src" "$root$build"
  mount --bind "$src" "$root$src"
  mount --bind "$build" "$root$build"
  mount -t proc proc "$root/proc"
  mount --bind /dev "$root/dev"
  mkdir -p "$root/tmp" && chmod 1777 "$root/tmp"
  case $what in
    build)
      chroot "$root" sh -euc "
        cmake -S \"$src\" -B \"$build/gimp3-build\" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
              -DDEEPGEN_GIMP3=ON -DDEEPGEN_GIMP2=OFF -DDEEPGEN_UI=OFF -DDEEPGEN_TESTS=OFF $* >/dev/null
        cmake --build \"$build/gimp3-build\" -j\$(nproc) --target deepgen-gimp deepgen deepgen-translations"
      ;;
    run)
      chroot "$root" env PATH=/usr/local/bin:/usr/bin:/bin "$@"
      ;;
    *)
      echo "unknown action $what" >&2; exit 2 ;;
  esac
' sh "$root" "$src" "$build" "$what" "$@"
