#!/bin/sh
# The README's second command: install the dependencies, build `deepgen`, and make an image.
#
#   scripts/run-main.sh                 the sample prompt
#   scripts/run-main.sh "a prompt"      your prompt
#
# With the DeepGen-1.0-diffusers model in place ($DEEPGEN_MODEL, else
# ~/.local/share/deepgen/DeepGen-1.0-diffusers) it generates a 512×512 image from the prompt.
# Without it, it says what is missing and the one command that downloads it (`deepgen download`),
# then runs the tiny random-weight test model (tests/data/tiny-deepgen) through the same
# pipeline — tokenizer, VLM, connector, DiT, VAE — so you see every stage work; that model's
# picture is noise by design.
# The image goes to out/ (or $DEEPGEN_OUT) and its path is printed at the end.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/install-deps.sh

build=${DEEPGEN_BUILD:-build/main}
echo "== build ($build) =="
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target deepgen
deepgen="$root/$build/cli/deepgen"
case "$build" in /*) deepgen="$build/cli/deepgen" ;; esac

prompt=${1:-"a red fox in the snow at sunrise, photograph"}
out=${DEEPGEN_OUT:-$root/out}
mkdir -p "$out"

if "$deepgen" info --check >/dev/null 2>&1; then
  echo "== deepgen generate (DeepGen 1.0) =="
  image="$out/deepgen-sample.png"
  "$deepgen" generate --prompt "$prompt" --seed 42 -o "$image"
else
  echo "== the DeepGen 1.0 model is not installed =="
  "$deepgen" info --check || true
  echo
  echo "To get it, run this one command (about 14.4 GB; an interrupted download continues where it"
  echo "stopped, and every file is verified):"
  echo
  echo "  $deepgen download"
  echo
  echo "== meanwhile: the tiny random-weight test model, end to end =="
  image="$out/deepgen-tiny-sample.png"
  "$deepgen" generate --model "$root/tests/data/tiny-deepgen" --prompt "$prompt" --size 256x256 --steps 8 \
    -o "$image"
  echo "(The tiny model has random weights: its image is noise. With the real model the same command"
  echo " makes a picture; run this script again once the model is downloaded.)"
fi
echo "Image: $image"
