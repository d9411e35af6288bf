#!/bin/sh
# deepgen writing its result where it cannot (docs/RELIABILITY.md): a read-only folder, a full
# disk (a new file, and over an existing one), and a destination that is not a regular file.
# Each must end with a clear error naming the cause, exit status 1, no partial or temporary file
# left, and an existing file untouched. The folders are small tmpfs mounts in a private mount
# namespace (root, or a user namespace); where neither can be had the test is skipped (77).
#   run-output-faults.sh DEEPGEN TINY_MODEL
set -eu
deepgen=$1 model=$2

if [ -z "${DG_OUTPUT_FAULTS_NS:-}" ]; then
  export DG_OUTPUT_FAULTS_NS=1
  if unshare --mount --propagation private true 2>/dev/null; then
    exec unshare --mount --propagation private sh "$0" "$@"
  elif unshare --map-root-user --mount --propagation private true 2>/dev/null; then
    exec unshare --map-root-user --mount --propagation private sh "$0" "$@"
  fi
  echo "SKIP: no private mount namespace here (needs root or user namespaces) to mount a full or read-only tmpfs" >&2
  exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/deepgen-output-faults.XXXXXX")
cleanup () {
  for d in ro full full2 ok; do umount "$work/$d" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/ro" "$work/full" "$work/full2" "$work/ok" "$work/plain"
if ! mount -t tmpfs -o size=1m,ro tmpfs "$work/ro" 2>/dev/null; then
  echo "SKIP: cannot mount a tmpfs here" >&2
  exit 77
fi
mount -t tmpfs -o size=256k tmpfs "$work/full"
mount -t tmpfs -o size=256k tmpfs "$work/full2"
mount -t tmpfs -o size=4m tmpfs "$work/ok"

fail () { echo "FAIL: $*" >&2; exit 1; }
# run NAME OUTPUT: deepgen generate on the tiny model; its status in $rc, its stderr in $work/NAME.err
run () {
  rc=0
  "$deepgen" generate --model "$model" --prompt "a red fox" --steps 2 --size 64x64 --seed 7 -o "$2" \
    2> "$work/$1.err" > /dev/null || rc=$?
  echo "--- $1: exit status $rc; last line: $(tail -n 1 "$work/$1.err")"
}
# only NAMES... (sorted) in folder DIR (no partial result, no temporary file)
only () {
  dir=$1; shift
  left=$(cd "$dir" && ls -A | sort | tr '\n' ' ' | sed 's/ $//')
  [ "$left" = "$*" ] || fail "$dir holds '$left', expected '$*'"
}
fill () { dd if=/dev/zero of="$1/fill" bs=4k 2>/dev/null || true; }

# The control: the same run where there is room gives an image.
run ok "$work/ok/out.png"
[ $rc -eq 0 ] && [ -s "$work/ok/out.png" ] || { cat "$work/ok.err" >&2; fail "the control run did not write its image"; }
only "$work/ok" out.png

# A read-only folder: refused before the run, saying why.
run ro "$work/ro/out.png"
[ $rc -eq 1 ] || fail "read-only folder: exit status $rc, expected 1"
grep -q "Read-only file system" "$work/ro.err" || fail "read-only folder: the error does not say why"
only "$work/ro"

# A full disk, a new file: the run happens, the write fails, nothing is left behind.
fill "$work/full"
run full "$work/full/out.png"
[ $rc -eq 1 ] || fail "full disk: exit status $rc, expected 1"
grep -q "No space left on device" "$work/full.err" || fail "full disk: the error does not say why"
grep -q "out.png" "$work/full.err" || fail "full disk: the error does not name the file"
only "$work/full" fill

# A full disk over an existing result: the old file stays whole.
printf 'the previous result\n' > "$work/full2/out.png"
fill "$work/full2"
run full2 "$work/full2/out.png"
[ $rc -eq 1 ] || fail "full disk over a file: exit status $rc, expected 1"
grep -q "No space left on device" "$work/full2.err" || fail "full disk over a file: the error does not say why"
[ "$(cat "$work/full2/out.png")" = "the previous result" ] || fail "full disk over a file: the old file was changed"
only "$work/full2" fill out.png

# Not a regular file (a FIFO; /dev/null alike): refused, not replaced by a file.
mkfifo "$work/plain/out.png"
run fifo "$work/plain/out.png"
[ $rc -eq 1 ] || fail "FIFO: exit status $rc, expected 1"
grep -q "not a regular file" "$work/fifo.err" || fail "FIFO: the error does not say why"
[ -p "$work/plain/out.png" ] || fail "FIFO: it was replaced"
only "$work/plain" out.png

echo "PASS: read-only folder, full disk (new file and over an existing one), FIFO"
