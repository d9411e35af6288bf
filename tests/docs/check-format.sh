#!/bin/sh
# Every C source and header that git tracks is formatted as .clang-format says. The output of
# clang-format changes between major versions, so the check uses the one version the style was
# written for (19); scripts/install-deps.sh installs it.
#
#   tests/docs/check-format.sh [REPO_ROOT]        check (the test suite runs this)
#   tests/docs/check-format.sh --fix [REPO_ROOT]  reformat in place
set -eu

fix=0
[ "${1:-}" = --fix ] && { fix=1; shift; }
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"
cf=${CLANG_FORMAT:-clang-format-19}
if ! command -v "$cf" >/dev/null 2>&1; then
  echo "check-format: $cf not found (apt install clang-format-19, or set CLANG_FORMAT)"
  exit 1
fi

# The file list comes from git when this is a checkout, else from the tree (a source tarball).
if git rev-parse --git-dir >/dev/null 2>&1; then
  files=$(git ls-files '*.c' '*.h')
else
  files=$(find . -name '*.[ch]' -not -path './build*' | sort)
fi

if [ "$fix" = 1 ]; then
  # shellcheck disable=SC2086 # one word per file, names have no spaces
  "$cf" -i --style=file $files
  exit 0
fi
# shellcheck disable=SC2086
log=$(mktemp)
if ! "$cf" --dry-run --Werror --style=file $files 2>"$log"; then
  grep -E '^[^ ].*: error:' "$log" | sed 's/: error:.*//' | sort -u | head -n 40
  rm -f "$log"
  echo "check-format: FAILED — run tests/docs/check-format.sh --fix"
  exit 1
fi
rm -f "$log"
echo "check-format: $(echo "$files" | wc -l) files formatted as .clang-format says"
