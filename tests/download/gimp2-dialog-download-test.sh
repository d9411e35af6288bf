#!/bin/sh
# The model download from inside GIMP: GIMP 2.10 opens a test image and calls "Inpaint
# selection" interactively with an EMPTY model folder; the plug-in's dialog (the shared panel)
# offers "Download the model (14.4 GB)"; the panel's test autopilot presses it, the tiny model
# comes from the test Hub on 127.0.0.1 (test-hub, under the released repository's name, slow
# enough that the progress shows), the model opens, the run makes its preview and Apply adds
# the layer. Screenshots of the download in progress and of the result.
#   gimp2-dialog-download-test.sh PLUGIN TEST-HUB MODEL OUTDIR
# Exit 77 = skipped (no gimp-2.10, xvfb-run or ImageMagick).
set -eu
plugin=$1 hub=$2 model=$3 out=$4
for tool in gimp-2.10 xvfb-run convert; do
  command -v $tool >/dev/null 2>&1 || { echo "SKIP: $tool is not installed" >&2; exit 77; }
done
rm -rf "$out" && mkdir -p "$out/home/.config/GIMP/2.10/plug-ins/deepgen-gimp2"
out=$(cd "$out" && pwd)
cp -r "$(dirname "$plugin")/." "$out/home/.config/GIMP/2.10/plug-ins/deepgen-gimp2/"
convert -size 400x300 gradient:orange-navy "$out/in.png"
# a short path (it shows in the screenshot); the folder does not exist: the dialog must offer it
models=$(mktemp -d "${TMPDIR:-/tmp}/deepgen-XXXXXX")
folder="$models/DeepGen-1.0-diffusers"

mkfifo "$out/hub.in"
"$hub" "$model" deepgenteam/DeepGen-1.0-diffusers slow < "$out/hub.in" > "$out/hub.out" &
hubpid=$!
exec 3> "$out/hub.in"            # the Hub serves until this closes
stop_hub() { exec 3>&-; wait "$hubpid" 2>/dev/null || true; rm -rf "$models"; }
trap stop_hub EXIT
i=0
while [ ! -s "$out/hub.out" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
endpoint=$(head -n 1 "$out/hub.out")
case "$endpoint" in http://127.0.0.1:*) ;; *) echo "FAIL: the test Hub did not start" >&2; exit 1 ;; esac

prompt="give the image a red balloon"
cat > "$out/dialog.scm" <<SCM
(let* ((img (car (gimp-file-load RUN-NONINTERACTIVE "$out/in.png" "$out/in.png")))
       (layer (aref (cadr (gimp-image-get-layers img)) 0)))
  (gimp-display-new img)
  (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 150 10 130 100)
  (gimp-displays-flush)
  (plug-in-deepgen-inpaint RUN-INTERACTIVE img layer "$prompt" "" 2 4.0 -1 "fit" 128 "$folder" 1.0 1)
  (let ((port (open-output-file "$out/layers.txt"))
        (top (aref (cadr (gimp-image-get-layers img)) 0)))
    (display (car (gimp-image-get-layers img)) port)
    (display (if (= -1 (car (gimp-layer-get-mask top))) " nomask" " mask") port)
    (close-output-port port)))
SCM
rc=0
HOME="$out/home" G_SLICE=always-malloc DEEPGEN_VK_VALIDATION=1 \
  HF_ENDPOINT="$endpoint" HF_HOME="$out/home/hf" no_proxy=127.0.0.1,localhost HF_TOKEN= \
  DEEPGEN_AUTOPILOT="download=1;prompt=$prompt;steps=2;max-size=128;model=$folder;dlshot=$out/gimp2-download.png;shot=$out/gimp2-downloaded.png;root=1;move=815,60;apply=1;timeout=300" \
  timeout 400 xvfb-run -a -n $((100 + $$ % 400)) -s "-screen 0 1280x900x24" gimp-2.10 -n -d -f \
  -b "(load \"$out/dialog.scm\")" -b '(gimp-quit 1)' > "$out/gimp.log" 2>&1 || rc=$?
grep "autopilot" "$out/gimp.log" || true
fail() { grep -v -e 'theme engine' -e '^$' "$out/gimp.log" | tail -n 30 >&2; echo "FAIL: $1" >&2; exit 1; }
[ $rc != 124 ] || fail "GIMP did not quit within 400 s"
grep -q "autopilot: download offered" "$out/gimp.log" || fail "the dialog did not offer the download"
grep -q "autopilot: downloaded" "$out/gimp.log" || fail "the download did not finish"
grep -q "autopilot: result" "$out/gimp.log" || fail "no preview after the download"
layers=$(cat "$out/layers.txt" 2>/dev/null || echo "none")
[ "${layers% *}" = 2 ] || fail "Apply did not add the layer (layers after the call: $layers)"
[ -s "$out/gimp2-download.png" ] || fail "no screenshot of the download"
[ ! -d "$folder/.cache" ] || fail "partial files left after the download"
! grep -q "vkc: validation" "$out/gimp.log" || fail "the Vulkan validation layer reported problems"
echo "screenshots: $out/gimp2-download.png $out/gimp2-downloaded.png"
