#!/bin/sh
# Expand Canvas's own dialog in the real GIMP 3 user interface under Xvfb (the GIMP 3 twin of
# gimp2-expand-dialog-test.sh): GIMP opens a test image and calls Expand Canvas interactively;
# the dialog's test autopilot (ui/dg_autopilot.h, expand=…) fills in 48, 0, 48, 24 pixels to add
# and a prompt, saves a screenshot of the dialog and presses Expand, which runs the tiny model.
# Checks the new size the dialog showed, the image's size and the layers' offsets afterwards (a
# file the Script-Fu writes), and that GIMP kept the dialog's values as the procedure's last ones.
#   gimp3-expand-dialog-test.sh PLUGIN MODEL OUTDIR ROOT SRC BUILD
set -eu
plugin=$1 model=$2 out=$3 root=$4 src=$5 build=$6
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$root/.deepgen-gimp3-root" ]; then
  echo "SKIP: no GIMP 3 root at '$root' (scripts/make-gimp3-root.sh)" >&2
  exit 77
fi
rm -rf "$out" && mkdir -p "$out/home/.config/GIMP/3.0/plug-ins/deepgen-gimp"
out=$(cd "$out" && pwd)
cp -r "$(dirname "$plugin")/." "$out/home/.config/GIMP/3.0/plug-ins/deepgen-gimp/"
convert -size 400x300 gradient:orange-navy -depth 8 "$out/in.png"
prompt="a sandy beach"
cat > "$out/dialog.scm" <<SCM
(let* ((img (car (gimp-file-load RUN-NONINTERACTIVE "$out/in.png")))
       (layer (vector-ref (car (gimp-image-get-layers img)) 0)))
  (gimp-display-new img)
  (gimp-displays-flush)
  (plug-in-deepgen-expand #:run-mode RUN-INTERACTIVE #:image img #:drawables (vector layer)
     #:steps 2 #:max-size 128 #:model-folder "$model")
  ; "LAYERS W H X Y NX NY": layers, the image's size, the source layer's and the new layer's offsets
  (let ((port (open-output-file "$out/layers.txt"))
        (top (vector-ref (car (gimp-image-get-layers img)) 0)))
    (display (vector-length (car (gimp-image-get-layers img))) port) (display " " port)
    (display (car (gimp-image-get-width img)) port) (display " " port)
    (display (car (gimp-image-get-height img)) port) (display " " port)
    (display (car (gimp-drawable-get-offsets layer)) port) (display " " port)
    (display (cadr (gimp-drawable-get-offsets layer)) port) (display " " port)
    (display (car (gimp-drawable-get-offsets top)) port) (display " " port)
    (display (cadr (gimp-drawable-get-offsets top)) port)
    (close-output-port port)))
SCM
rc=0
"$here/gimp3-root.sh" "$root" "$src" "$build" run env HOME="$out/home" DEEPGEN_VK_VALIDATION=1 \
  DEEPGEN_AUTOPILOT="expand=48,0,48,24;prompt=$prompt;shot=$out/gimp3-expand-dialog.png;timeout=300" \
  timeout 600 xvfb-run -a -n $((500 + $$ % 400)) -s "-screen 0 1280x900x24" gimp-3.0 -n -d -f \
  --batch-interpreter=plug-in-script-fu-eval -b "(load \"$out/dialog.scm\")" --quit > "$out/gimp.log" 2>&1 || rc=$?
[ $rc = 77 ] && exit 77
grep "autopilot" "$out/gimp.log" || true
fail() { tail -n 30 "$out/gimp.log" >&2; echo "FAIL: $1" >&2; exit 1; }
grep -q "autopilot: expand 400×300 → 496×324 (sensitive 1)" "$out/gimp.log" || fail "the dialog did not show the new size"
layers=$(cat "$out/layers.txt" 2>/dev/null || echo "none")
[ "$layers" = "2 496 324 48 0 0 0" ] ||
  fail "expected 2 layers, a 496×324 image, the source at (48, 0) and the new layer at (0, 0); got: $layers"
last="$out/home/.config/GIMP/3.0/plug-in-settings/GimpProcedureConfigRun-plug-in-deepgen-expand.last"
grep -qF "(prompt \"$prompt\")" "$last" 2>/dev/null && grep -qF "(left 48)" "$last" && grep -qF "(bottom 24)" "$last" ||
  { cat "$last" >&2 || true; fail "the dialog's values did not reach the procedure config"; }
! grep -q "vkc: validation" "$out/gimp.log" || fail "the Vulkan validation layer reported problems"
[ -s "$out/gimp3-expand-dialog.png" ] || fail "no screenshot"
echo "screenshot: $out/gimp3-expand-dialog.png"
