#!/bin/sh
# The DeepGen panel inside its GIMP 3 dialog, in the real GIMP 3 user interface under Xvfb:
# GIMP opens a test image, selects an ellipse and calls "Inpaint selection" interactively (the
# dialog starts from the call's arguments); the panel's test autopilot (ui/dg_autopilot.h)
# types another prompt, runs the tiny model, waits for the preview, saves a screenshot of the
# screen and presses Apply. Checks that the layer came back, named after the typed prompt, that
# the screenshot exists, and that GIMP saved the typed prompt as the last values (the panel's
# fields are bound to the procedure config).
# With "variations" as the seventh argument the autopilot asks for three results and unticks the
# first before Apply: the two ticked ones become layers (three layers in all), not the first.
# With "rerun", a script call first makes a layer (prompt "a red kite", seed 1234), then the
# dialog opens on that layer and the autopilot presses "Load its settings" and types no prompt:
# the new layer is named after the stored prompt and made with the stored seed.
# With "references", the call passes two layers (the second a hidden copy below the first): the
# dialog lists the second ticked, the run takes it (one reference) and one new layer comes back.
# With DEEPGEN (the deepgen program built in the root) the run goes through the resident service,
# which the plug-in starts in a private runtime folder, with 24 steps, and a second screenshot
# shows the live preview mid-run; without it the run stays in the plug-in (DEEPGEN_NO_SERVICE=1).
#   gimp3-dialog-test.sh PLUGIN MODEL OUTDIR ROOT SRC BUILD [variations|rerun|references|""] [DEEPGEN]
set -eu
plugin=$1 model=$2 out=$3 root=$4 src=$5 build=$6 mode=${7:-} deepgen=${8:-}
pilot="" expect=2 shot=gimp3-dialog.png
if [ "$mode" = variations ]; then
  expect=3 shot=gimp3-dialog-variations.png
fi
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$root/.deepgen-gimp3-root" ]; then
  echo "SKIP: no GIMP 3 root at '$root' (scripts/make-gimp3-root.sh)" >&2
  exit 77
fi
rm -rf "$out" && mkdir -p "$out/home/.config/GIMP/3.0/plug-ins/deepgen-gimp"
out=$(cd "$out" && pwd)
cp -r "$(dirname "$plugin")/." "$out/home/.config/GIMP/3.0/plug-ins/deepgen-gimp/"
convert logo: -resize 400x300 "$out/in.png" 2>/dev/null || convert -size 400x300 gradient:orange-navy "$out/in.png"
prompt="give the wizard a red hat"
stored="a red kite"
call="(plug-in-deepgen-inpaint #:run-mode RUN-INTERACTIVE #:image img #:drawables (vector layer)
     #:prompt \"a hat\" #:steps 2 #:max-size 128 #:model-folder \"$model\")"
if [ "$mode" = variations ]; then
  pilot="n-results=3;unpick=0;prompt=$prompt;"
fi
if [ "$mode" = references ]; then
  expect=3 shot=gimp3-dialog-references.png
  call="(let ((ref (car (gimp-layer-new-from-drawable layer img))))
    (gimp-image-insert-layer img ref -1 1)
    (gimp-item-set-visible ref FALSE)
    (plug-in-deepgen-inpaint #:run-mode RUN-INTERACTIVE #:image img #:drawables (vector layer ref)
       #:prompt \"a hat\" #:steps 2 #:max-size 128 #:model-folder \"$model\"))"
fi
if [ "$mode" = rerun ]; then
  pilot="rerun=1;" expect=3 shot=gimp3-dialog-rerun.png prompt=$stored
  call="(plug-in-deepgen-inpaint #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector layer)
     #:prompt \"$stored\" #:steps 2 #:seed 1234 #:max-size 128 #:model-folder \"$model\")
  (plug-in-deepgen-inpaint #:run-mode RUN-INTERACTIVE #:image img
     #:drawables (vector (vector-ref (car (gimp-image-get-layers img)) 0))
     #:prompt \"\" #:steps 2 #:max-size 128 #:model-folder \"$model\")"
fi
cat > "$out/dialog.scm" <<SCM
(let* ((img (car (gimp-file-load RUN-NONINTERACTIVE "$out/in.png")))
       (layer (vector-ref (car (gimp-image-get-layers img)) 0)))
  (gimp-display-new img)
  (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 150 10 130 100)
  (gimp-displays-flush)
  $call
  ; a file, not gimp-message: the message is delivered asynchronously and can be lost at --quit
  (let ((port (open-output-file "$out/layers.txt")))
    (display (vector-length (car (gimp-image-get-layers img))) port)
    (newline port)
    (display (car (gimp-item-get-name (vector-ref (car (gimp-image-get-layers img)) 0))) port)
    (close-output-port port)))
SCM
autopilot="${pilot:-prompt=$prompt;}shot=$out/$shot;root=1;move=730,60;apply=1;timeout=300"
if [ -n "$deepgen" ]; then
  unset DEEPGEN_NO_SERVICE
  export XDG_RUNTIME_DIR="$out/run"
  mkdir -m 700 "$XDG_RUNTIME_DIR"
  printf '#!/bin/sh\nexec "%s" "$@" --idle-exit 3\n' "$deepgen" > "$out/deepgen-idle"
  chmod 755 "$out/deepgen-idle"
  export DEEPGEN_PROGRAM="$out/deepgen-idle"
  autopilot="$autopilot;steps=24;liveshot=$out/gimp3-dialog-live.png;livestep=4"
else
  export DEEPGEN_NO_SERVICE=1
fi
rc=0
"$here/gimp3-root.sh" "$root" "$src" "$build" run env HOME="$out/home" \
  DEEPGEN_AUTOPILOT="$autopilot" \
  timeout 600 xvfb-run -a -n $((500 + $$ % 400)) -s "-screen 0 1280x900x24" gimp-3.0 -n -d -f \
  --batch-interpreter=plug-in-script-fu-eval -b "(load \"$out/dialog.scm\")" --quit > "$out/gimp.log" 2>&1 || rc=$?
[ $rc = 77 ] && exit 77
grep "autopilot" "$out/gimp.log" || true
grep -q "autopilot: result" "$out/gimp.log" || { tail -n 30 "$out/gimp.log" >&2; echo "FAIL: no preview in the dialog" >&2; exit 1; }
layers=$(head -n 1 "$out/layers.txt" 2>/dev/null || echo "none")
[ "$layers" = $expect ] || { tail -n 30 "$out/gimp.log" >&2; echo "FAIL: Apply did not add $((expect - 1)) layer(s) (layers after the call: $layers)" >&2; exit 1; }
name=$(sed -n 2p "$out/layers.txt")
# GIMP numbers a second layer of the same name (rerun): "a red kite #1"
case "$name" in "$prompt" | "$prompt #"*) ;; *) echo "FAIL: the new layer is named '$name', not after the prompt '$prompt' of the dialog" >&2; exit 1 ;; esac
if [ "$mode" = references ]; then
  grep -q "autopilot: references 1" "$out/gimp.log" || { echo "FAIL: the dialog did not take the second selected layer as a reference" >&2; exit 1; }
fi
if [ "$mode" = rerun ]; then
  grep -q "autopilot: layer settings offered" "$out/gimp.log" || { echo "FAIL: the dialog did not offer the layer's settings" >&2; exit 1; }
  grep -q "autopilot: result: .* seed 1234\$" "$out/gimp.log" || { echo "FAIL: the run did not take the stored seed 1234" >&2; exit 1; }
fi
last="$out/home/.config/GIMP/3.0/plug-in-settings/GimpProcedureConfigRun-plug-in-deepgen-inpaint.last"
grep -qF "(prompt \"$prompt\")" "$last" 2>/dev/null \
  || { cat "$last" >&2 || true; echo "FAIL: the prompt typed in the dialog did not reach the procedure config" >&2; exit 1; }
[ -s "$out/$shot" ] || { echo "FAIL: no screenshot" >&2; exit 1; }
if [ -n "$deepgen" ]; then
  grep -q "autopilot: ran in the resident service" "$out/gimp.log" ||
    { echo "FAIL: the run did not go through the service" >&2; exit 1; }
  grep -q "autopilot: live preview at step" "$out/gimp.log" && [ -s "$out/gimp3-dialog-live.png" ] ||
    { echo "FAIL: no screenshot of the live preview" >&2; exit 1; }
  for i in $(seq 50); do ls "$out"/run/deepgen/service-*.sock >/dev/null 2>&1 || break; sleep 0.2; done
  ! ls "$out"/run/deepgen/service-*.sock >/dev/null 2>&1 || { echo "FAIL: the service did not leave after its idle time" >&2; exit 1; }
  echo "live preview: $out/gimp3-dialog-live.png"
fi
echo "screenshot: $out/$shot"
