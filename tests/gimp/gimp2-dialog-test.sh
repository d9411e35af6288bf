#!/bin/sh
# The DeepGen panel inside its GIMP 2.10 dialog, in the real GIMP 2.10 user interface under Xvfb
# (the GIMP 2.10 twin of gimp3-dialog-test.sh): GIMP opens a test image, selects an ellipse,
# displays it and calls "Inpaint selection" with RUN-INTERACTIVE from Script-Fu, so the plug-in
# opens its GTK 3 dialog; the panel's test autopilot (ui/dg_autopilot.h) fills in the prompt,
# the steps and the model folder, runs the tiny model, waits for the preview, saves a screenshot
# of the screen and presses Apply. Checks that the autopilot got a result, that the image has
# the new layer, with a mask, afterwards (a file the Script-Fu writes, not gimp-message), that
# the screenshot exists and that the Vulkan validation layer stayed silent.
# With "variations" as the fifth argument the autopilot asks for three results and unticks the
# first before Apply: the two ticked ones become layers (three layers in all), not the first.
# With "rerun", a script call first makes a layer (prompt "a red kite", seed 1234), then the
# dialog opens on that layer and the autopilot presses "Load its settings" and types no prompt:
# the new layer is named after the stored prompt and made with the stored seed.
# With "references", the image gets a second layer (a hidden copy below the first) and the
# autopilot ticks it in the dialog's reference list: the run takes it (one ticked reference) and
# one new layer comes back.
# With DEEPGEN (the deepgen program) the run goes through the resident service, which the plug-in
# starts in a private runtime folder, with 24 steps, and a second screenshot shows the live preview
# mid-run; without it the run stays in the plug-in's process (DEEPGEN_NO_SERVICE=1).
#   gimp2-dialog-test.sh CHECKER PLUGIN MODEL OUTDIR [variations|rerun|references|""] [DEEPGEN]
# Exit 77 = skipped (no gimp-2.10 or xvfb-run).
set -eu
checker=$1 plugin=$2 model=$3 out=$4 mode=${5:-} deepgen=${6:-}
pilot="" expect=2 shot=gimp2-dialog.png
prompt="give the image a red balloon"
if [ "$mode" = variations ]; then
  pilot="n-results=3;unpick=0;prompt=$prompt;" expect=3 shot=gimp2-dialog-variations.png
fi
stored="a red kite"
prepare=""
if [ "$mode" = references ]; then
  pilot="tick=0;prompt=$prompt;" expect=3 shot=gimp2-dialog-references.png
  prepare="(let ((ref (car (gimp-layer-new-from-drawable layer img))))
    (gimp-image-insert-layer img ref 0 1)
    (gimp-item-set-visible ref FALSE))"
fi
for tool in gimp-2.10 xvfb-run; do
  command -v $tool >/dev/null 2>&1 || { echo "SKIP: $tool is not installed" >&2; exit 77; }
done
rm -rf "$out" && mkdir -p "$out/home/.config/GIMP/2.10/plug-ins/deepgen-gimp2"
out=$(cd "$out" && pwd)
# the plug-in's folder as the build tree has it: the binary and locale/ beside it
cp -r "$(dirname "$plugin")/." "$out/home/.config/GIMP/2.10/plug-ins/deepgen-gimp2/"
"$checker" input "$out/in.png" 400 300
# GIMP 2.10 Script-Fu: positional arguments (run-mode image drawable prompt negative-prompt steps
# guidance seed size-policy max-size model-folder). An interactive run of a GIMP 2.10 plug-in
# starts from the values of the last interactive run (gimp_get_data), as GIMP 2.10 plug-ins do,
# not from the arguments, so the autopilot sets prompt, steps and model below.
call="(plug-in-deepgen-inpaint RUN-INTERACTIVE img layer \"$prompt\" \"\" 2 4.0 -1 \"fit\" 512 \"$model\" 1.0 1)"
if [ "$mode" = rerun ]; then
  pilot="rerun=1;" expect=3 shot=gimp2-dialog-rerun.png
  call="(plug-in-deepgen-inpaint RUN-NONINTERACTIVE img layer \"$stored\" \"\" 2 4.0 1234 \"fit\" 128 \"$model\" 1.0 1)
  (plug-in-deepgen-inpaint RUN-INTERACTIVE img (aref (cadr (gimp-image-get-layers img)) 0) \"\" \"\" 2 4.0 -1 \"fit\" 512 \"$model\" 1.0 1)"
fi
cat > "$out/dialog.scm" <<SCM
(let* ((img (car (gimp-file-load RUN-NONINTERACTIVE "$out/in.png" "$out/in.png")))
       (layer (aref (cadr (gimp-image-get-layers img)) 0)))
  (gimp-display-new img)
  (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 150 10 130 100)
  (gimp-displays-flush)
  $prepare
  $call
  ; a file, not gimp-message: the message is delivered asynchronously and can be lost at quit
  ; "LAYERS MASK": the layer count and whether the top layer (the new one) has a layer mask
  (let ((port (open-output-file "$out/layers.txt"))
        (top (aref (cadr (gimp-image-get-layers img)) 0)))
    (display (car (gimp-image-get-layers img)) port)
    (display (if (= -1 (car (gimp-layer-get-mask top))) " nomask" " mask") port)
    (newline port)
    (display (car (gimp-item-get-name top)) port)
    (close-output-port port)))
SCM
# (gimp-quit 1): with the image changed, (gimp-quit 0) opens GIMP's "quit without saving?"
# dialog and waits for a click that never comes.
autopilot="${pilot:-prompt=$prompt;}steps=2;max-size=128;model=$model;shot=$out/$shot;root=1;move=815,60;apply=1;timeout=300"
if [ -n "$deepgen" ]; then
  unset DEEPGEN_NO_SERVICE
  export XDG_RUNTIME_DIR="$out/run"
  mkdir -m 700 "$XDG_RUNTIME_DIR"
  printf '#!/bin/sh\nexec "%s" "$@" --idle-exit 3\n' "$deepgen" > "$out/deepgen-idle"
  chmod 700 "$out/deepgen-idle"
  export DEEPGEN_PROGRAM="$out/deepgen-idle"
  autopilot="$autopilot;steps=24;liveshot=$out/gimp2-dialog-live.png;livestep=4"
else
  export DEEPGEN_NO_SERVICE=1
fi
rc=0
HOME="$out/home" G_SLICE=always-malloc DEEPGEN_VK_VALIDATION=1 \
  DEEPGEN_AUTOPILOT="$autopilot" \
  timeout 400 xvfb-run -a -n $((100 + $$ % 400)) -s "-screen 0 1280x900x24" gimp-2.10 -n -d -f \
  -b "(load \"$out/dialog.scm\")" -b '(gimp-quit 1)' > "$out/gimp.log" 2>&1 || rc=$?
grep "autopilot" "$out/gimp.log" || true
fail() { grep -v -e 'theme engine' -e '^$' "$out/gimp.log" | tail -n 30 >&2; echo "FAIL: $1" >&2; exit 1; }
[ $rc != 124 ] || fail "GIMP did not quit within 400 s"
[ $rc = 0 ] || echo "note: gimp-2.10 exited with $rc" >&2
grep -q "autopilot: result" "$out/gimp.log" || fail "no preview in the dialog"
layers=$(head -n 1 "$out/layers.txt" 2>/dev/null || echo "none")
[ "${layers% *}" = $expect ] || fail "Apply did not add $((expect - 1)) layer(s) (layers after the call: $layers)"
[ "${layers#* }" = mask ] || fail "the new layer has no mask from the selection ($layers)"
[ -s "$out/$shot" ] || fail "no screenshot"
if [ "$mode" = references ]; then
  grep -q "autopilot: references 1" "$out/gimp.log" || fail "the dialog did not take the ticked reference layer"
fi
if [ "$mode" = rerun ]; then
  grep -q "autopilot: layer settings offered" "$out/gimp.log" || fail "the dialog did not offer the layer's settings"
  name=$(sed -n 2p "$out/layers.txt")
  # GIMP numbers a second layer of the same name: "a red kite #1"
  case "$name" in "$stored" | "$stored #"*) ;; *) fail "the new layer is named '$name', not after the stored prompt '$stored'" ;; esac
  grep -q "autopilot: result: .* seed 1234\$" "$out/gimp.log" || fail "the run did not take the stored seed 1234"
fi
! grep -q "vkc: validation" "$out/gimp.log" || fail "the Vulkan validation layer reported problems"
if [ -n "$deepgen" ]; then
  grep -q "autopilot: ran in the resident service" "$out/gimp.log" || fail "the run did not go through the service"
  grep -q "autopilot: live preview at step" "$out/gimp.log" && [ -s "$out/gimp2-dialog-live.png" ] ||
    fail "no screenshot of the live preview"
  for i in $(seq 50); do ls "$out"/run/deepgen/service-*.sock >/dev/null 2>&1 || break; sleep 0.2; done
  ! ls "$out"/run/deepgen/service-*.sock >/dev/null 2>&1 || fail "the service did not leave after its idle time"
  ! grep -q "vkc: validation" "$out/run/deepgen/service.log" || fail "validation messages in the service's log"
  echo "live preview: $out/gimp2-dialog-live.png"
fi
echo "screenshot: $out/$shot"
