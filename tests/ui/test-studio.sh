#!/bin/sh
# deepgen-studio in a real window: open an image, mark a rectangle, type an instruction, run
# on the tiny model, wait for the preview, apply (a new history entry), with screenshots; then save
# as PNG, which must carry the parameters (the deepgen-parameters text chunk). With DEEPGEN (the
# deepgen program), the run goes through the resident service, which the studio starts in a
# private runtime folder (it leaves 3 s after the run).
#   test-studio.sh STUDIO MODEL OUTDIR [DEEPGEN]
set -eu
studio=$1 model=$2 out=$3 deepgen=${4:-}
rm -rf "$out" && mkdir -p "$out"
if [ -n "$deepgen" ]; then
  unset DEEPGEN_NO_SERVICE
  export XDG_RUNTIME_DIR="$out/run"
  mkdir -m 700 "$XDG_RUNTIME_DIR"
  printf '#!/bin/sh\nexec "%s" "$@" --idle-exit 3\n' "$deepgen" > "$out/deepgen-idle"
  chmod 700 "$out/deepgen-idle"
  export DEEPGEN_PROGRAM="$out/deepgen-idle"
fi
# a test image: ImageMagick's built-in logo when available, else a gradient
convert logo: -resize 400x300 "$out/in.png" 2>/dev/null || convert -size 400x300 gradient:orange-navy "$out/in.png"
export DEEPGEN_AUTOPILOT="prompt=give the wizard a red hat;steps=2;model=$model;shot=$out/studio-preview.png;apply=1;shot2=$out/studio-history.png;save=$out/saved.png;timeout=300"
"$(dirname "$0")/run-xvfb.sh" "$studio" --job inpaint --select 150,20,120,90 "$out/in.png" 2> "$out/studio.log" || {
  rc=$?; cat "$out/studio.log" >&2; exit $rc; }
cat "$out/studio.log"
if grep -q "not built yet" "$out/studio.log"; then
  echo "SKIP: the DeepGen pipeline is not built yet" >&2; exit 77
fi
grep -q "autopilot: result: 120x90 at (150, 20)" "$out/studio.log" || { echo "FAIL: no result for the marked rectangle" >&2; exit 1; }
if [ -n "$deepgen" ]; then
  grep -q "autopilot: ran in the resident service" "$out/studio.log" ||
    { echo "FAIL: the run did not go through the resident service" >&2; cat "$out/run/deepgen/service.log" >&2 || true; exit 1; }
  for i in $(seq 50); do ls "$out"/run/deepgen/service-*.sock >/dev/null 2>&1 || break; sleep 0.2; done
  ! ls "$out"/run/deepgen/service-*.sock >/dev/null 2>&1 || { echo "FAIL: the service did not leave after its idle time" >&2; exit 1; }
  ! grep -q "vkc: validation" "$out/run/deepgen/service.log" ||
    { echo "FAIL: validation messages in the service's log" >&2; cat "$out/run/deepgen/service.log" >&2; exit 1; }
fi
grep -q "autopilot: apply" "$out/studio.log" || { echo "FAIL: the result was not applied" >&2; exit 1; }
for f in studio-preview.png studio-history.png; do
  [ -s "$out/$f" ] || { echo "FAIL: no screenshot $f" >&2; exit 1; }
done
grep -q "autopilot: saved" "$out/studio.log" || { echo "FAIL: the image was not saved" >&2; exit 1; }
# the chunk is plain tEXt (the prompt is Latin-1): its keyword and the job can be found as bytes
grep -aq 'deepgen-parameters' "$out/saved.png" && grep -aq '"job":"inpaint"' "$out/saved.png" &&
  grep -aq '"prompt":"give the wizard a red hat"' "$out/saved.png" ||
  { echo "FAIL: the saved PNG has no deepgen-parameters chunk for the inpaint" >&2; exit 1; }
echo "screenshots: $out/studio-preview.png $out/studio-history.png"
echo "saved with its parameters: $out/saved.png"
