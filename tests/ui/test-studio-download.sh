#!/bin/sh
# deepgen-studio with no model: the panel offers the download; the autopilot presses it, the
# model comes from the test Hub on 127.0.0.1 (tests/download/hub_main.c, slow bodies so that
# the progress shows), then a run on it. Screenshots of the download and of the result.
#   test-studio-download.sh STUDIO TEST-HUB MODEL OUTDIR
set -eu
studio=$1 hub=$2 model=$3 out=$4
rm -rf "$out" && mkdir -p "$out"
mkfifo "$out/hub.in"
"$hub" "$model" deepgenteam/DeepGen-1.0-diffusers slow < "$out/hub.in" > "$out/hub.out" &
hubpid=$!
exec 3> "$out/hub.in"            # the Hub serves until this closes
stop_hub() { exec 3>&-; wait "$hubpid" 2>/dev/null || true; }
trap stop_hub EXIT
i=0
while [ ! -s "$out/hub.out" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
endpoint=$(head -n 1 "$out/hub.out")
case "$endpoint" in http://127.0.0.1:*) ;; *) echo "FAIL: the test Hub did not start" >&2; exit 1 ;; esac
export HF_ENDPOINT="$endpoint" HF_HOME="$out" no_proxy=127.0.0.1,localhost
unset HF_TOKEN
export DEEPGEN_AUTOPILOT="download=1;model=$out/DeepGen-1.0-diffusers;prompt=a lighthouse at dusk;steps=2;max-size=64;dlshot=$out/studio-download.png;shot=$out/studio-downloaded.png;timeout=300"
"$(dirname "$0")/run-xvfb.sh" "$studio" --job generate 2> "$out/studio.log" || {
  rc=$?; cat "$out/studio.log" >&2; exit $rc; }
cat "$out/studio.log"
for line in "autopilot: download offered" "autopilot: downloaded" "autopilot: result"; do
  grep -q "$line" "$out/studio.log" || { echo "FAIL: no '$line'" >&2; exit 1; }
done
for f in studio-download.png studio-downloaded.png; do
  [ -s "$out/$f" ] || { echo "FAIL: no screenshot $f" >&2; exit 1; }
done
[ ! -d "$out/DeepGen-1.0-diffusers/.cache" ] || { echo "FAIL: partial files left after the download" >&2; exit 1; }
echo "screenshots: $out/studio-download.png $out/studio-downloaded.png"
