#!/bin/sh
# Every citation of a project document ("MODEL.md §1.4", "DESIGN.md §5, §6", "TESTING.md §2–§4")
# must name a heading that exists in docs/<FILE>, and nothing may cite a document that is not in
# the repository (docs/TESTING.md §13).
#
#   tests/docs/check-citations.sh [REPO_ROOT]
#
# A citation is FILE.md followed by § numbers; a bare "§N" right after it ("§1.5, §1.6",
# "§1.5-§1.7") belongs to the same file. FILE.md may carry a "docs/" prefix. A section N exists
# when docs/FILE.md has a Markdown heading "N. …" or "N …" (any level).
set -eu

root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"

skip='^$'   # nothing is exempt

# Documents that live outside the repository (the team's shared notes): never cite them.
outside='(ENV|TINY_MODELS|STYLE)\.md|shared/docs'

# The tracked files; outside a git checkout (a source tarball), every file but build output.
list=$(git ls-files 2>/dev/null || find . -type f ! -path './build*' ! -path './.git/*' | sed 's#^\./##')
files=$(printf '%s\n' "$list" | grep -Ev "$skip" | grep -Ev '^tests/data/.*\.(safetensors|gguf|png|bin|txt)$' || true)
[ -n "$files" ] || { echo "check-citations: no files (not a git checkout?)"; exit 1; }

fail=0
n_cites=0

# Anything that names an outside document.
bad=$(printf '%s\n' "$files" | tr '\n' '\0' | xargs -0 grep -InE "$outside" -- 2>/dev/null \
      | grep -v '^tests/docs/check-citations.sh:' || true)
if [ -n "$bad" ]; then
  printf '%s\n' "$bad" | sed 's/^/cites a document outside the repository: /'
  fail=1
fi

# FILE.md § citations.
cites=$(printf '%s\n' "$files" | tr '\n' '\0' | xargs -0 grep -IonE \
        '([A-Za-z_/]+)\.md ?§ ?[0-9]+(\.[0-9]+)*([a-z])?(( ?[,/–-] ?| and | or )§ ?[0-9]+(\.[0-9]+)*)*' -- 2>/dev/null \
        | grep -v '^tests/docs/check-citations.sh:' || true)

tab=$(printf '\t')
printf '%s\n' "$cites" | grep -v '^$' | while IFS= read -r line; do
  where=${line%%:*}; rest=${line#*:}; lineno=${rest%%:*}; cite=${rest#*:}
  doc=$(printf '%s' "$cite" | sed -E 's/^([A-Za-z_/]+\.md).*/\1/')
  base=${doc##*/}
  case "$doc" in
    docs/*) path=$doc ;;
    */*) path=$doc ;;
    *) path=docs/$base ;;
  esac
  if [ ! -f "$path" ]; then
    echo "$where:$lineno: '$cite': $path does not exist in the repository"
    echo FAIL
    continue
  fi
  for sec in $(printf '%s' "${cite#*.md}" | grep -oE '[0-9]+(\.[0-9]+)*'); do
    re=$(printf '%s' "$sec" | sed 's/\./\\./g')
    if ! grep -qE "^#{1,6} $re([. ]|\$)" "$path"; then
      echo "$where:$lineno: '$cite': $path has no section $sec"
      echo FAIL
    fi
  done
  echo OK
done > /tmp/check-citations.$$ || true

n_cites=$(grep -c '^OK$' /tmp/check-citations.$$ || true)
if grep -q '^FAIL$' /tmp/check-citations.$$; then
  grep -v '^OK$' /tmp/check-citations.$$ | grep -v '^FAIL$'
  fail=1
fi
rm -f /tmp/check-citations.$$

if [ "$fail" != 0 ]; then
  echo "check-citations: FAILED"
  exit 1
fi
echo "check-citations: $n_cites citations resolve, none outside the repository"
