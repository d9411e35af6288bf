#!/bin/sh
# Copies the screenshots that the window tests made (BUILD/screenshots) to docs/images, where
# the README shows them. Run the tests first: ctest --test-dir BUILD -L 'ui|gimp|download'.
#   tests/ui/update-screenshots.sh BUILD
set -eu
build=${1:?BUILD}
src=$(cd "$(dirname "$0")/../.." && pwd)
shots=$build/screenshots
mkdir -p "$src/docs/images"
copy() { [ -s "$shots/$1" ] && cp "$shots/$1" "$src/docs/images/$2" && echo "docs/images/$2" || echo "missing: $shots/$1" >&2; }
copy gimp3/gimp3-dialog.png gimp3-dialog.png
copy gimp2/gimp2-dialog.png gimp2-dialog.png
copy gimp2-expand/gimp2-expand-dialog.png gimp2-expand-dialog.png
copy gimp3/gimp3-dialog-live.png gimp3-dialog-live.png
copy panel.png panel.png
copy panel-de.png panel-de.png
copy panel-describe.png panel-describe.png
copy panel-variations.png panel-variations.png
copy panel-rerun.png panel-rerun.png
copy panel-references.png panel-references.png
copy studio/studio-preview.png studio.png
copy studio/studio-history.png studio-history.png
copy panel-download.png panel-download.png
copy gimp2-download/gimp2-download.png gimp2-download.png
