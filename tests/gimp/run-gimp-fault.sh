#!/bin/sh
# One GIMP headless fault test (issue 15, docs/RELIABILITY.md): a DeepGen procedure called from
# Script-Fu (tests/gimp/faults.scm) meets a fault, and GIMP and the image must come through it.
#
#   run-gimp-fault.sh 2.10|3.0 JOB CHECKER PLUGIN MODEL OUTDIR [GIMP3-ROOT SRC BUILD]
#
# JOB:
#   kill    plug-in-deepgen-edit, 30 steps, is stopped at denoising step 10 by the test-only
#           DEEPGEN_TEST_PAUSE_AT_STEP (plugin/common/dg_plugin.c) and killed with SIGKILL by a
#           watcher here. Then: the call returned an error to Script-Fu, GIMP reported the crashed
#           plug-in, the image is unchanged (layer count, pixels), nothing is on its undo stack,
#           undo is enabled and an undo group opens and closes, no temporary file is left (TMPDIR,
#           the plug-in's cache folder), and a second call in the same GIMP adds its layer.
#   memory  the plug-in runs with its address space limited (ulimit -v, through a wrapper in its
#           place) on a layer too large for that: the call must fail with a clear message, not a
#           crash, and leave the image as it was (layer count, pixels, undo stack).
# GIMP 3 runs inside GIMP3-ROOT (tests/gimp/gimp3-root.sh) unless gimp-console-3.0 is installed
# here. Exit 77 = skipped. Figures go to OUTDIR/figures.txt and stdout.
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
elif [ "$version" = 2.10 ] && ! command -v gimp-console-2.10 >/dev/null 2>&1; then
  echo "SKIP: gimp-console-2.10 is not installed" >&2
  exit 77
fi

rm -rf "$out"
mkdir -p "$out/home" "$out/tmp"
out=$(cd "$out" && pwd)
name=$(basename "$plugin")
plugdir="$out/home/.config/GIMP/$version/plug-ins/$name"
mkdir -p "$plugdir"
cp -r "$(dirname "$plugin")/." "$plugdir/"
"$checker" input "$out/in.png" 160 120

prompt="make the sky green"
proc=plug-in-deepgen-edit
pause_step=10
# the memory job: a 16000×12000 RGB layer (576 MB as the plug-in reads it) for a plug-in limited
# to 1 GiB of address space (DEEPGEN_TEST_LIMIT_KB): enough to hold the layer once, not to work
# on it (docs/RELIABILITY.md)
big_w=16000 big_h=12000 limit_kb=${DEEPGEN_TEST_LIMIT_KB:-1048576}
extra=
case $job in
  kill)
    call="(dg-kill-case $proc \"kill\" \"$out/in.png\" \"$out\" \"$prompt\" \"$model\")"
    extra="DEEPGEN_TEST_PAUSE_AT_STEP=$pause_step" ;;
  memory)
    call="(dg-oom-case $proc \"memory\" \"$out/in.png\" \"$out\" \"$prompt\" \"$model\" $big_w $big_h)"
    # the plug-in's place taken by a wrapper that limits it, and only it, then runs it from a
    # folder of its own (GIMP would register an executable left beside the wrapper too)
    mkdir -p "$out/real"
    mv "$plugdir"/* "$out/real/"
    printf '#!/bin/sh\nulimit -v %s\ngrep "address space" /proc/self/limits >> "%s/limits.txt"\nexec "%s" "$@"\n' \
      "$limit_kb" "$out" "$out/real/$name" > "$plugdir/$name"
    chmod +x "$plugdir/$name"
    ;;
  *) echo "unknown job $job" >&2; exit 2 ;;
esac

{
  cat "$here/prelude-$version.scm" "$here/cases.scm" "$here/faults.scm"
  echo "$call"
} > "$out/test.scm"

log="$out/gimp.log"
: > "$log"

# The watcher (kill): waits for the plug-in to say that it reached the step, checks that the
# process is this test's plug-in (its command line names this test's profile), and kills it.
watch_and_kill() {
  i=0
  while [ $i -lt 6000 ]; do
    pid=$(sed -n 's/.*DEEPGEN_TEST_PAUSE_AT_STEP: pid \([0-9][0-9]*\) paused.*/\1/p' "$log" | head -n 1)
    if [ -n "$pid" ]; then
      if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$plugdir/$name"; then
        # how long the plug-in had run: now minus its start (/proc/PID/stat field 22, in ticks)
        ran=$(awk -v t="$(getconf CLK_TCK)" -v up="$(cut -d' ' -f1 /proc/uptime)" \
                  '{ sub(/.*\) /, ""); printf "%.1f", up - $20 / t }' "/proc/$pid/stat")
        kill -KILL "$pid"
        echo "plug-in pid $pid killed with SIGKILL at denoising step $pause_step of 30, after ${ran} s" > "$out/killed.txt"
      else
        echo "pid $pid is not this test's plug-in" > "$out/killed.txt"
      fi
      return 0
    fi
    sleep 0.1
    i=$((i + 1))
  done
}

export DEEPGEN_VK_VALIDATION=1 G_SLICE=always-malloc DEEPGEN_NO_SERVICE=1 # in-process: the fault is the plug-in's
t0=$(date +%s)
watcher=
if [ "$job" = kill ]; then
  watch_and_kill &
  watcher=$!
fi
if [ "$version" = 2.10 ]; then
  env HOME="$out/home" TMPDIR="$out/tmp" $extra timeout 600 gimp-console-2.10 -i -d -f \
    -b "(load \"$out/test.scm\")" -b '(gimp-quit 0)' >> "$log" 2>&1 || true
elif command -v gimp-console-3.0 >/dev/null 2>&1; then
  env HOME="$out/home" TMPDIR="$out/tmp" $extra timeout 600 gimp-console-3.0 -i -d -f \
    --batch-interpreter=plug-in-script-fu-eval -b "(load \"$out/test.scm\")" --quit >> "$log" 2>&1 || true
else
  root=${7:-} src=${8:-} build=${9:-}
  rc=0
  "$here/gimp3-root.sh" "$root" "$src" "$build" run env HOME="$out/home" TMPDIR="$out/tmp" \
    DEEPGEN_VK_VALIDATION=1 $extra timeout 600 gimp-console-3.0 -i -d -f \
    --batch-interpreter=plug-in-script-fu-eval -b "(load \"$out/test.scm\")" --quit >> "$log" 2>&1 || rc=$?
  [ $rc = 77 ] && { cat "$log" >&2; exit 77; }
fi
t1=$(date +%s)
if [ -n "$watcher" ]; then
  kill "$watcher" 2>/dev/null || true
  wait "$watcher" 2>/dev/null || true
fi
grep -v -e 'gimp_wire_read' -e 'Gimp-Core-CRITICAL' -e 'tag cache' -e '^$' "$log" | tail -n 40 || true

status=0
fail() { echo "FAIL: $*" >&2; status=1; }
info() { sed -n "s/^$1 //p" "$out/$job-info.txt" 2>/dev/null | head -n 1; }
"$checker" untouched "$out" "$job" || status=1
[ "$(info dirty)" = 0 ] || fail "the failed call left a change on the image's undo stack (dirty: $(info dirty))"
[ "$(info undo_enabled)" = 1 ] || fail "undo is not enabled on the image after the failed call"
[ "$(info undo_balanced)" = 1 ] || fail "an undo group could not be opened and closed after the failed call"
if grep -q "inconsistent state" "$log"; then
  fail "GIMP had to close an undo group the plug-in left open"
fi

case $job in
  kill)
    if ! grep -q "killed with SIGKILL" "$out/killed.txt" 2>/dev/null; then
      fail "the plug-in was never killed mid-run: $(cat "$out/killed.txt" 2>/dev/null || echo 'it never reached the step')"
    fi
    grep -qi "crashed" "$log" || fail "GIMP did not report the crashed plug-in"
    n0=$(info layers_before)
    [ "$(info layers_next)" = $((n0 + 1)) ] \
      || fail "the next call after the crash did not add its layer (layers $n0 -> $(info layers_next))"
    # no temporary file: TMPDIR empty, and in the plug-in's cache folder only finished files
    left=$(find "$out/tmp" -mindepth 1 ! -type d | head -n 5)
    [ -z "$left" ] || fail "files left in TMPDIR: $left"
    if [ -d "$out/home/.cache/deepgen" ]; then
      left=$(find "$out/home/.cache/deepgen" -type f ! -name '*.bin' ! -name '*.txt' | head -n 5)
      [ -z "$left" ] || fail "temporary files left in the plug-in's cache folder: $left"
    fi
    # the Vulkan driver's own caches are not ours: only reported
    left=$(find "$out/home/.cache" -type f -name '*.tmp*' | head -n 5)
    [ -z "$left" ] || echo "NOTE: the driver left temporary files in its cache: $left"
    ;;
  memory)
    [ "$(info width)" = $big_w ] || fail "the layer is not ${big_w} wide ($(info width)): the fault was not tried"
    # a clear message, not a crash
    grep -q "Not enough memory" "$log" || fail "GIMP did not report a clear out-of-memory message"
    if grep -qi "crashed" "$log"; then
      fail "the plug-in crashed instead of failing cleanly"
    fi
    ;;
esac

{
  [ "$job" = kill ] && cat "$out/killed.txt" 2>/dev/null
  echo "GIMP $version $job: whole GIMP session $((t1 - t0)) s"
  grep -o "Not enough memory[^\"]*" "$log" | head -n 1 || true
} | tee "$out/figures.txt"
[ $status = 0 ] && echo "PASS: GIMP $version $job"
exit $status
