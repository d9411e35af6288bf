#!/bin/sh
# Expand Canvas's own dialog in the real GIMP 2.10 user interface under Xvfb: GIMP opens a test
# image, displays it and calls Expand Canvas with RUN-INTERACTIVE from Script-Fu; the dialog's
# test autopilot (plugin/common/dg_plugin.c, DEEPGEN_AUTOPILOT) fills in 48, 0, 48, 24 pixels to add
# and a prompt, saves a screenshot of the dialog and presses Expand, which runs the tiny model.
# Checks that the form showed the new size, that the image grew to 496×324 with the new layer
# over it at (0, 0) and the source layer moved to (48, 0) (a file the Script-Fu writes), that the
# screenshot exists and that the Vulkan validation layer stayed silent.
#   gimp2-expand-dialog-test.sh CHECKER PLUGIN MODEL OUTDIR
# Exit 77 = skipped (no gimp-2.10 or xvfb-run).
set -eu
checker=$1 plugin=$2 model=$3 out=$4
for tool in gimp-2.10 xvfb-run; do
  command -v $tool >/dev/null 2>&1 || { echo "SKIP: $tool is not installed" >&2; exit 77; }
done
rm -rf "$out" && mkdir -p "$out/home/.config/GIMP/2.10/plug-ins/deepgen-gimp2"
out=$(cd "$out" && pwd)
cp -r "$(dirname "$plugin")/." "$out/home/.config/GIMP/2.10/plug-ins/deepgen-gimp2/"
"$checker" input "$out/in.png" 400 300
prompt="a sandy beach"
# positional: the common arguments, then left top right bottom aspect (an interactive run starts
# from the last interactive run's values, so the autopilot sets the sides, prompt, steps and model)
cat > "$out/dialog.scm" <<SCM
(let* ((img (car (gimp-file-load RUN-NONINTERACTIVE "$out/in.png" "$out/in.png")))
       (layer (aref (cadr (gimp-image-get-layers img)) 0)))
  (gimp-display-new img)
  (gimp-displays-flush)
  (plug-in-deepgen-expand RUN-INTERACTIVE img layer "" "" 2 4.0 -1 "fit" 512 "$model" 1.0 1 0 0 0 0 "")
  ; "LAYERS W H X Y NX NY": layers, the image's size, the source layer's and the new layer's offsets
  (let ((port (open-output-file "$out/layers.txt"))
        (top (aref (cadr (gimp-image-get-layers img)) 0)))
    (display (car (gimp-image-get-layers img)) port) (display " " port)
    (display (car (gimp-image-width img)) port) (display " " port)
    (display (car (gimp-image-height img)) port) (display " " port)
    (display (car (gimp-drawable-offsets layer)) port) (display " " port)
    (display (cadr (gimp-drawable-offsets layer)) port) (display " " port)
    (display (car (gimp-drawable-offsets top)) port) (display " " port)
    (display (cadr (gimp-drawable-offsets top)) port)
    (close-output-port port)))
SCM
rc=0
HOME="$out/home" G_SLICE=always-malloc DEEPGEN_VK_VALIDATION=1 \
  DEEPGEN_AUTOPILOT="expand=48,0,48,24;prompt=$prompt;steps=2;max-size=128;model=$model;shot=$out/gimp2-expand-dialog.png" \
  timeout 400 xvfb-run -a -n $((100 + $$ % 400)) -s "-screen 0 1280x900x24" gimp-2.10 -n -d -f \
  -b "(load \"$out/dialog.scm\")" -b '(gimp-quit 1)' > "$out/gimp.log" 2>&1 || rc=$?
grep "autopilot" "$out/gimp.log" || true
fail() { grep -v -e 'theme engine' -e '^$' "$out/gimp.log" | tail -n 30 >&2; echo "FAIL: $1" >&2; exit 1; }
[ $rc != 124 ] || fail "GIMP did not quit within 400 s"
[ $rc = 0 ] || echo "note: gimp-2.10 exited with $rc" >&2
grep -q "autopilot: expand 400×300 → 496×324 (sensitive 1)" "$out/gimp.log" || fail "the dialog did not show the new size"
layers=$(cat "$out/layers.txt" 2>/dev/null || echo "none")
[ "$layers" = "2 496 324 48 0 0 0" ] ||
  fail "expected 2 layers, a 496×324 image, the source at (48, 0) and the new layer at (0, 0); got: $layers"
[ -s "$out/gimp2-expand-dialog.png" ] || fail "no screenshot"
! grep -q "vkc: validation" "$out/gimp.log" || fail "the Vulkan validation layer reported problems"
echo "screenshot: $out/gimp2-expand-dialog.png"
