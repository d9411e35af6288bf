#!/bin/sh
# Runs a command on a fresh virtual X display (Xvfb), for the window tests; exit 77 (skipped)
# when Xvfb is not installed.
set -eu
command -v xvfb-run >/dev/null 2>&1 || { echo "SKIP: xvfb-run is not installed (apt-get install xvfb xauth)" >&2; exit 77; }
exec xvfb-run -a -s "-screen 0 1280x900x24" "$@"
