#!/bin/sh
# deepgen-studio's reference images in a real window: the same edit (same seed) of one image on the
# tiny model, first without a reference, then with one reference file added (the test autopilot's
# reference=, as "Add reference image…" does) and ticked; the result must keep the source's size
# and differ from the run without it. Then a reference file that is missing must stop the run with
# its message.
#   test-studio-references.sh STUDIO MODEL OUTDIR
set -eu
studio=$1 model=$2 out=$3
for tool in convert compare identify; do
  command -v $tool >/dev/null 2>&1 || { echo "SKIP: $tool (ImageMagick) is not installed" >&2; exit 77; }
done
rm -rf "$out" && mkdir -p "$out"
convert -size 160x120 gradient:orange-navy -depth 8 -type TrueColor "PNG24:$out/in.png"
convert -size 96x96 radial-gradient:white-green -depth 8 -type TrueColor "PNG24:$out/ref.png"
fail() { echo "FAIL: $1" >&2; exit 1; }
# run NAME [AUTOPILOT SETTINGS]: an edit of in.png, applied and saved as NAME.png
run() {
  name=$1 extra=${2:-}
  DEEPGEN_AUTOPILOT="prompt=make it look like the second image;steps=2;seed=7;model=$model;apply=1;save=$out/$name.png;timeout=300$extra" \
    "$(dirname "$0")/run-xvfb.sh" "$studio" --job edit "$out/in.png" 2> "$out/$name.log" || {
    rc=$?; cat "$out/$name.log" >&2; exit $rc; }
  cat "$out/$name.log"
  if grep -q "not built yet" "$out/$name.log"; then
    echo "SKIP: the DeepGen pipeline is not built yet" >&2; exit 77
  fi
}
run plain
grep -q "autopilot: references 0" "$out/plain.log" || fail "the plain run took references"
grep -q "autopilot: result: 160x120 at (0, 0)" "$out/plain.log" || fail "no 160x120 result without references"
run with-ref ";reference=$out/ref.png;shot=$out/studio-references.png"
grep -q "autopilot: references 1" "$out/with-ref.log" || fail "the reference file was not listed ticked"
grep -q "autopilot: result: 160x120 at (0, 0)" "$out/with-ref.log" || fail "no 160x120 result with the reference"
for f in plain with-ref; do
  [ "$(identify -format %wx%h "$out/$f.png")" = 160x120 ] || fail "the saved $f.png is not the source's size"
done
diff=$(compare -metric AE "$out/plain.png" "$out/with-ref.png" null: 2>&1) || true
[ "$diff" != 0 ] || fail "the reference changed nothing in the result"
run missing ";reference=$out/missing.png"
grep -q "autopilot: references 1" "$out/missing.log" || fail "the missing file was not listed ticked"
grep -q "autopilot: error: The reference image .*missing.png could not be read: " "$out/missing.log" ||
  fail "a missing reference file did not stop the run with its message"
! grep -q "autopilot: result:" "$out/missing.log" || fail "a run went on without its missing reference"
echo "with the reference, $diff pixels differ; screenshot: $out/studio-references.png"
