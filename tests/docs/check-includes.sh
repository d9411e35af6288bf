#!/bin/sh
# The front-ends (cli/, ui/, plugin/) include from model/ only its public headers: deepgen.h,
# dg_error.h, dg_i18n.h, download/dg_download.h (the model download, DESIGN.md §2) and dg_service.h (the service, §9). Their own headers are fine; vkcompute's only in the
# op benchmark (cli/bench_ops.c measures vkcompute itself, below model/). Everything else in
# model/ — including the test seams of model/pipeline/deepgen_hooks.h — is for model/ and the tests.
#
#   tests/docs/check-includes.sh [REPO_ROOT]
set -eu

root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"

public='deepgen.h dg_error.h dg_i18n.h dg_download.h dg_service.h'
own=$(find cli ui plugin -name '*.h' -exec basename {} \; | sort -u | tr '\n' ' ')

fail=0
n=0
for f in $(find cli ui plugin -name '*.[ch]' | sort); do
  for h in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
    n=$((n + 1))
    case " $public $own " in *" $h "*) continue ;; esac
    case "$f:$h" in cli/bench_ops.c:vkc*.h) continue ;; esac
    echo "$f includes \"$h\", which is not a public header of model/"
    fail=1
  done
done
if [ "$fail" != 0 ]; then
  echo "check-includes: FAILED"
  exit 1
fi
echo "check-includes: $n includes in cli/, ui/ and plugin/, all public or their own"
