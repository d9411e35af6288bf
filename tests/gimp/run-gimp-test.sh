#!/bin/sh
# One GIMP headless test: installs the plug-in into a fresh GIMP profile, calls one DeepGen
# procedure from Script-Fu on a generated test image (a rectangular and a feathered elliptical
# selection, and no selection for edit), and checks the results with dg-gimp-check.
#
#   run-gimp-test.sh 2.10|3.0 JOB CHECKER PLUGIN MODEL OUTDIR [GIMP3-ROOT SRC BUILD]
#
# JOB: edit, generate, inpaint, badfolder (a wrong model folder must fail with a clear message
# and leave the image untouched), gray (edit on a grayscale image) or indexed (edit on an indexed
# image must be refused with a message, the image untouched) or strength (edit with a change
# strength of 0.5, recorded on the result layer) or variations (edit with 3 results: 3 new layers,
# seeds 7, 8, 9), expand (Expand Canvas by odd sides, one of them 0, to 16:9, and a grayscale
# image with alpha: the canvas, the layers' offsets, every old pixel bit-identical, the new area
# painted), references (GIMP 3 only: edit with two selected layers, the second a hidden copy of the
# first below it: one new layer) or service (edit of a rectangle through the resident service,
# which the plug-in starts: $DEEPGEN_TEST_SERVICE_PROGRAM is the deepgen program; the other jobs
# run in-process, DEEPGEN_NO_SERVICE=1). GIMP 3 runs inside GIMP3-ROOT (tests/gimp/gimp3-root.sh)
# unless gimp-console-3.0 is installed here. Exit 77 = skipped.
set -eu

version=$1 job=$2 checker=$3 plugin=$4 model=$5 out=$6
here=$(cd "$(dirname "$0")" && pwd)

if [ "$version" = 3.0 ] && ! command -v gimp-console-3.0 >/dev/null 2>&1; then
  root=${7:-}
  if [ -z "$root" ] || [ ! -f "$root/.deepgen-gimp3-root" ]; then
    echo "SKIP: GIMP 3 is not installed here and there is no GIMP 3 root (${root:-none}). Create one with" \
         "sudo scripts/make-gimp3-root.sh DIR (about 4 minutes, 1.6 GB) and configure with -DDEEPGEN_GIMP3_ROOT=DIR" >&2
    exit 77
  fi
fi

rm -rf "$out"
mkdir -p "$out/home"
out=$(cd "$out" && pwd)
name=$(basename "$plugin")
plugdir="$out/home/.config/GIMP/$version/plug-ins/$name"
mkdir -p "$plugdir"
# the plug-in's folder as the build tree has it: the binary and locale/ beside it
cp -r "$(dirname "$plugin")/." "$plugdir/"
"$checker" input "$out/in.png" 160 120

prompt="make the sky green"
case $job in
  edit) cases="rect ellipse none" ;;
  generate|inpaint) cases="rect ellipse" ;;
  badfolder) cases="rect" ;;
  gray|indexed) cases=$job ;;
  strength|variations|service|references) cases="rect" ;;   # the image converted to that mode, then a rectangle selected
  expand) cases="sides aspect" ;;
  *) echo "unknown job $job" >&2; exit 2 ;;
esac
proc=plug-in-deepgen-$job
folder=$model
fn=dg-case
# a failing job: what GIMP's log must say
expect=
case $job in
  badfolder) proc=plug-in-deepgen-edit folder="$out/no-such-model" fn=dg-fail-case expect="does not exist" ;;
  indexed) proc=plug-in-deepgen-edit fn=dg-fail-case expect="Convert this indexed image first" ;;
  gray) proc=plug-in-deepgen-edit ;;
  strength|variations|service|references) proc=plug-in-deepgen-edit ;;
esac

{
  cat "$here/prelude-$version.scm" "$here/cases.scm"
  [ "$job" = strength ] && echo "(set! dg-strength 0.5)"
  [ "$job" = variations ] && echo "(set! dg-n-results 3)"
  [ "$job" = references ] && echo "(set! dg-reference-layer #t)"
  if [ "$job" = expand ]; then
    # 160×120 grown by 10, 0, 23, 7; and to 16:9: 120 · 16 / 9 = 213.3 → 213, 53 more: 26 left, 27 right
    # and a grayscale image with alpha by 5 on the left and 3 at the top
    printf '(dg-expand-case %s "expand-sides" "rgb" "%s/in.png" "%s" "%s" "%s" 10 0 23 7 "")\n' \
      "$proc" "$out" "$out" "$prompt" "$folder"
    printf '(dg-expand-case %s "expand-aspect" "rgb" "%s/in.png" "%s" "%s" "%s" 0 0 0 0 "16:9")\n' \
      "$proc" "$out" "$out" "$prompt" "$folder"
    printf '(dg-expand-case %s "expand-gray" "gray" "%s/in.png" "%s" "%s" "%s" 5 3 0 0 "")\n' \
      "$proc" "$out" "$out" "$prompt" "$folder"
  else
    for c in $cases; do
      printf '(%s %s "%s-%s" "%s" "%s/in.png" "%s" "%s" "%s")\n' \
        "$fn" "$proc" "$job" "$c" "$c" "$out" "$out" "$prompt" "$folder"
    done
  fi
} > "$out/test.scm"

# GIMP writes its own noise to stderr; keep it for the report and for the message check.
log="$out/gimp.log"
export DEEPGEN_VK_VALIDATION=1 G_SLICE=always-malloc
if [ "$job" = service ]; then
  # a private runtime folder, and a deepgen that leaves 3 s after its last job
  unset DEEPGEN_NO_SERVICE
  export XDG_RUNTIME_DIR="$out/run"
  mkdir -m 700 "$XDG_RUNTIME_DIR"
  printf '#!/bin/sh\nexec "%s" "$@" --idle-exit 3\n' "${DEEPGEN_TEST_SERVICE_PROGRAM:?the deepgen program}" \
    > "$out/deepgen-idle"
  chmod 700 "$out/deepgen-idle"
  export DEEPGEN_PROGRAM="$out/deepgen-idle"
else
  export DEEPGEN_NO_SERVICE=1
fi
if [ "$version" = 2.10 ]; then
  HOME="$out/home" timeout 600 gimp-console-2.10 -i -d -f \
    -b "(load \"$out/test.scm\")" -b '(gimp-quit 0)' > "$log" 2>&1 || true
elif command -v gimp-console-3.0 >/dev/null 2>&1; then
  HOME="$out/home" timeout 600 gimp-console-3.0 -i -d -f --batch-interpreter=plug-in-script-fu-eval \
    -b "(load \"$out/test.scm\")" --quit > "$log" 2>&1 || true
else
  root=${7:-} src=${8:-} build=${9:-}
  [ -n "$root" ] || { echo "SKIP: no GIMP 3 here and no GIMP 3 root configured (DEEPGEN_GIMP3_ROOT)" >&2; exit 77; }
  rc=0
  "$here/gimp3-root.sh" "$root" "$src" "$build" run env HOME="$out/home" DEEPGEN_VK_VALIDATION=1 \
    timeout 600 gimp-console-3.0 -i -d -f --batch-interpreter=plug-in-script-fu-eval \
    -b "(load \"$out/test.scm\")" --quit > "$log" 2>&1 || rc=$?
  [ $rc = 77 ] && { cat "$log" >&2; exit 77; }
fi
grep -v -e 'gimp_wire_read' -e 'Gimp-Core-CRITICAL' -e 'tag cache' -e '^$' "$log" | tail -n 40 || true

status=0
if [ "$job" = expand ]; then
  "$checker" expand "$out" expand-sides "$prompt" 10 0 23 7 || status=1
  "$checker" expand "$out" expand-aspect "$prompt" 26 0 27 0 || status=1
  "$checker" expand "$out" expand-gray "$prompt" 5 3 0 0 || status=1
  cases=
fi
if [ "$job" = service ]; then
  slog="$out/run/deepgen/service.log"
  if grep -q "in this process instead" "$log" || [ ! -e "$slog" ]; then
    echo "FAIL: the plug-in did not run the job in the resident service" >&2
    status=1
  fi
  for i in $(seq 50); do ls "$out"/run/deepgen/service-*.sock >/dev/null 2>&1 || break; sleep 0.2; done
  ! ls "$out"/run/deepgen/service-*.sock >/dev/null 2>&1 || { echo "FAIL: the service did not leave after its idle time" >&2; status=1; }
  ! grep -q "vkc: validation" "$slog" 2>/dev/null ||
    { echo "FAIL: validation messages in the service's log" >&2; cat "$slog" >&2; status=1; }
fi
for c in $cases; do
  if [ -n "$expect" ]; then
    "$checker" untouched "$out" "$job-$c" || status=1
    # the message says what is wrong and what to do
    if ! grep -q "$expect" "$log"; then
      echo "FAIL: GIMP did not report the refusal clearly (no \"$expect\" in its log)" >&2
      status=1
    fi
  else
    "$checker" result "$out" "$job-$c" "$job" "$prompt" || status=1
  fi
done
exit $status
