#!/bin/sh
# The DeepGen panel inside its GIMP 3 dialog, in the real GIMP 3 user interface under Xvfb:
# GIMP opens a test image, selects an ellipse and calls "Inpaint selection" interactively (the
# dialog starts from the call's arguments); the panel's test autopilot (ui/dg_autopilot.h)
# types another prompt, runs the tiny model, waits for the preview, saves a screenshot of the
# screen and presses Apply. Checks that the layer came back, named after the typed prompt, that
# the screenshot exists, and that GIMP saved the typed prompt as the last values (the panel's
# fields are bound to the procedure config). With DEEPGEN (the deepgen program built in the root)
# the run goes through the resident service, which the plug-in starts in a private runtime folder,
# with 24 steps, and a second screenshot shows the live preview mid-run.
#   gimp3-dialog-test.sh PLUGIN MODEL OUTDIR ROOT SRC BUILD [DEEPGEN]
set -eu
plugin=$1 model=$2 out=$3 root=$4 src=$5 build=$6 deepgen=${7:-}
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
cat > "$out/dialog.scm" <<SCM
(let* ((img (car (gimp-file-load RUN-NONINTERACTIVE "$out/in.png")))
       (layer (vector-ref (car (gimp-image-get-layers img)) 0)))
  (gimp-display-new img)
  (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 150 10 130 100)
  (gimp-displays-flush)
  (plug-in-deepgen-inpaint #:run-mode RUN-INTERACTIVE #:image img #:drawables (vector layer)
     #:prompt "a hat" #:steps 2 #:max-size 128 #:model-folder "$model")
  ; a file, not gimp-message: the message is delivered asynchronously and can be lost at --quit
  (let ((port (open-output-file "$out/layers.txt")))
    (display (vector-length (car (gimp-image-get-layers img))) port)
    (newline port)
    (display (car (gimp-item-get-name (vector-ref (car (gimp-image-get-layers img)) 0))) port)
    (close-output-port port)))
SCM
pilot="prompt=$prompt;shot=$out/gimp3-dialog.png;root=1;move=730,60;apply=1;timeout=300"
if [ -n "$deepgen" ]; then
  unset DEEPGEN_NO_SERVICE
  export XDG_RUNTIME_DIR="$out/run"
  mkdir -m 700 "$XDG_RUNTIME_DIR"
  printf '#!/bin/sh\nexec "%s" "$@" --idle-exit 3\n' "$deepgen" > "$out/deepgen-idle"
  chmod 755 "$out/deepgen-idle"
  export DEEPGEN_PROGRAM="$out/deepgen-idle"
  pilot="$pilot;steps=24;liveshot=$out/gimp3-dialog-live.png;livestep=4"
else
  export DEEPGEN_NO_SERVICE=1
fi
rc=0
"$here/gimp3-root.sh" "$root" "$src" "$build" run env HOME="$out/home" \
  DEEPGEN_AUTOPILOT="$pilot" \
  timeout 600 xvfb-run -a -s "-screen 0 1280x900x24" gimp-3.0 -n -d -f \
  --batch-interpreter=plug-in-script-fu-eval -b "(load \"$out/dialog.scm\")" --quit > "$out/gimp.log" 2>&1 || rc=$?
[ $rc = 77 ] && exit 77
grep "autopilot" "$out/gimp.log" || true
grep -q "autopilot: result" "$out/gimp.log" || { tail -n 30 "$out/gimp.log" >&2; echo "FAIL: no preview in the dialog" >&2; exit 1; }
layers=$(head -n 1 "$out/layers.txt" 2>/dev/null || echo "none")
[ "$layers" = 2 ] || { tail -n 30 "$out/gimp.log" >&2; echo "FAIL: Apply did not add the layer (layers after the call: $layers)" >&2; exit 1; }
name=$(sed -n 2p "$out/layers.txt")
[ "$name" = "$prompt" ] || { echo "FAIL: the new layer is named '$name', not after the prompt typed in the dialog" >&2; exit 1; }
last="$out/home/.config/GIMP/3.0/plug-in-settings/GimpProcedureConfigRun-plug-in-deepgen-inpaint.last"
grep -qF "(prompt \"$prompt\")" "$last" 2>/dev/null \
  || { cat "$last" >&2 || true; echo "FAIL: the prompt typed in the dialog did not reach the procedure config" >&2; exit 1; }
[ -s "$out/gimp3-dialog.png" ] || { echo "FAIL: no screenshot" >&2; exit 1; }
if [ -n "$deepgen" ]; then
  grep -q "autopilot: ran in the resident service" "$out/gimp.log" ||
    { echo "FAIL: the run did not go through the service" >&2; exit 1; }
  grep -q "autopilot: live preview at step" "$out/gimp.log" && [ -s "$out/gimp3-dialog-live.png" ] ||
    { echo "FAIL: no screenshot of the live preview" >&2; exit 1; }
  for i in $(seq 50); do [ -e "$out/run/deepgen/service.sock" ] || break; sleep 0.2; done
  [ ! -e "$out/run/deepgen/service.sock" ] || { echo "FAIL: the service did not leave after its idle time" >&2; exit 1; }
  echo "live preview: $out/gimp3-dialog-live.png"
fi
echo "screenshot: $out/gimp3-dialog.png"
