#!/bin/sh
# Runs a command on a fresh virtual X display (Xvfb), for the window tests; exit 77 (skipped)
# when Xvfb is not installed. Display numbers: xvfb-run -a takes the first free one from -n on,
# judged by lock files in /tmp, which two tests started at once can both see free; each test
# starts from a number of its own (its PID), and those inside the GIMP 3 root (whose /tmp is
# another, while the X sockets' abstract names are shared) from 500 on, the host's from 100.
set -eu
command -v xvfb-run >/dev/null 2>&1 || { echo "SKIP: xvfb-run is not installed (apt-get install xvfb xauth)" >&2; exit 77; }
exec xvfb-run -a -n $((100 + $$ % 400)) -s "-screen 0 1280x900x24" "$@"
