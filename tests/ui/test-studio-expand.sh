#!/bin/sh
# deepgen-studio's Expand Canvas in a real window: open an image, press Expand Canvas…, fill in
# the sides (16, 0, 24, 8) and a prompt in its dialog, run on the tiny model (the test autopilot,
# ui/dg_autopilot.h, with expand=…), and save the new history entry. Checks the dialog's new size,
# the saved image's size, and that the old image is in it bit for bit at (16, 0) (ImageMagick).
#   test-studio-expand.sh STUDIO MODEL OUTDIR
set -eu
studio=$1 model=$2 out=$3
for tool in convert compare identify; do
  command -v $tool >/dev/null 2>&1 || { echo "SKIP: $tool (ImageMagick) is not installed" >&2; exit 77; }
done
rm -rf "$out" && mkdir -p "$out"
convert -size 160x120 gradient:orange-navy -depth 8 -type TrueColor "PNG24:$out/in.png"
export DEEPGEN_AUTOPILOT="expand=16,0,24,8;prompt=a sandy beach;steps=2;model=$model;shot=$out/studio-expand-dialog.png;save=$out/expanded.png;timeout=300"
"$(dirname "$0")/run-xvfb.sh" "$studio" "$out/in.png" 2> "$out/studio.log" || {
  rc=$?; cat "$out/studio.log" >&2; exit $rc; }
cat "$out/studio.log"
fail() { echo "FAIL: $1" >&2; exit 1; }
grep -q "autopilot: expand 160×120 → 200×128 (sensitive 1)" "$out/studio.log" || fail "the dialog did not show the new size"
grep -q "autopilot: expanded to 200x128" "$out/studio.log" || fail "no expanded image in the history"
grep -q "autopilot: saved" "$out/studio.log" || fail "the image was not saved"
[ "$(identify -format %wx%h "$out/expanded.png")" = 200x128 ] || fail "the saved image is not 200x128"
convert "$out/expanded.png" -crop 160x120+16+0 +repage -alpha off "PNG24:$out/old.png"
diff=$(compare -metric AE "$out/in.png" "$out/old.png" null: 2>&1) || true
[ "$diff" = 0 ] || fail "$diff old pixels changed"
[ -s "$out/studio-expand-dialog.png" ] || fail "no screenshot of the dialog"
grep -aq '"job":"inpaint"' "$out/expanded.png" || fail "the saved PNG has no deepgen-parameters chunk"
echo "expanded: $out/expanded.png (every old pixel unchanged); dialog: $out/studio-expand-dialog.png"
