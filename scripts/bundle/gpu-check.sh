#!/usr/bin/env bash
# DeepGen GPU check: run from the bundle that scripts/gpu-bundle.sh made, on a bare Linux x86-64
# machine with a GPU driver (no network, no packages, any user). It measures everything the
# first GPU session needs, each step under its own timeout, within about 8 minutes:
#   the Vulkan loader (the host's, else the bundled one) and the driver's ICD (the host's icd.d
#   folders; for NVIDIA with only libGLX_nvidia.so.0 and no ICD json, one is written), the
#   device (`deepgen info`), the op tests and the six golden scenarios with ctest's commands and
#   environment (validation layer on when one is available), the other model tests, `deepgen
#   bench ops`, `deepgen bench` on the tiny model, and `deepgen bench --synthetic` at 512² and
#   1024² when this deepgen has it.
#
#   ./gpu-check.sh [--quick | --info-only] [--no-validation] [--budget SECONDS] [REPORT_DIR]
#
# REPORT_DIR (default $OUT when set, else ./gpu-report) receives report.md (device, driver, each
# step with pass/fail/skip and its time, the bench tables, what could not be done),
# summary.tsv and logs/ with every step's full output.
# --quick          a short subset for CPU Vulkan (lavapipe): two op tests, golden scenario 1,
#                  small benches; a GPU run should run everything (the default).
# --info-only      only find the loader, the ICD and the device (`deepgen info`): seconds.
# --no-validation  run the tests without the Khronos validation layer (by default a test that
#                  fails with it is run once more without it).
# --budget S       total seconds for all steps (default 480); steps that would start later are
#                  reported as skipped.
# Exit status: 0 every step that ran passed, 1 a step failed, 2 nothing could run (no loader,
# no device, glibc too old).
# Environment: GPU_CHECK_LOADER=bundled uses the bundled Vulkan loader even when the host has
# one; GPU_CHECK_OP_TIMEOUT / GPU_CHECK_MODEL_TIMEOUT (default 90 / 120 s) limit each op / model
# test; GPU_CHECK_KEEP_WORK=1 keeps REPORT_DIR/work (the tests' scratch and pipeline cache);
# DEEPGEN_VK_DEVICE picks the device as for deepgen itself.
set -u
export LC_ALL=C

B=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# A copy that lost its modes (some transfers do): the two programs must be executable.
for f in "$B"/bin/*; do [ -x "$f" ] || chmod +x "$f" 2>/dev/null || true; done
quick=0
info_only=0
validation=1
budget=480
report=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --info-only) info_only=1 ;;
    --no-validation) validation=0 ;;
    --budget) budget=$2; shift ;;
    -h|--help) sed -n "2,31p" "$0"; exit 0 ;;
    -*) echo "gpu-check: unknown option $1" >&2; exit 2 ;;
    *) report=$1 ;;
  esac
  shift
done
report=${report:-${OUT:-./gpu-report}}
mkdir -p "$report/logs" || { echo "gpu-check: cannot create $report" >&2; exit 2; }
R=$(cd "$report" && pwd)
W=$R/work                        # scratch: the tests' working folders and pipeline cache
mkdir -p "$W"
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/deepgen-gpu-check.XXXXXX" 2>/dev/null) || { TMPD=$W/tmp; mkdir -p "$TMPD"; }
T=""                             # the unpacked test executables
cleanup() {   # the scratch goes: on the device machine everything under $OUT travels back
  rm -rf "$TMPD"
  [ "${GPU_CHECK_KEEP_WORK:-0}" = 1 ] || rm -rf "$W"
}
trap cleanup EXIT

start=$(date +%s)
have_timeout=0
command -v timeout >/dev/null 2>&1 && have_timeout=1
notes=()                          # what could not be done / what was worked around
steps=()                          # "status<TAB>seconds<TAB>name<TAB>log<TAB>note"
nstep=0
info() { echo "gpu-check: $*"; }
note() { notes+=("$*"); info "$*"; }
bundle_value() { sed -n "s/^$1=//p" "$B/bundle-info.txt" 2>/dev/null | head -n1; }

# step NAME TIMEOUT CMD...: runs CMD under TIMEOUT seconds, its output into logs/; records
# pass (exit 0), skip (exit 77), timeout, or fail. Within the budget only.
step() {
  local name=$1 limit=$2; shift 2
  nstep=$((nstep + 1))
  local log
  log=logs/$(printf '%02d' $nstep)-$(echo "$name" | tr -c 'A-Za-z0-9_.\n-' '_').log
  local now=$(( $(date +%s) - start ))
  if [ $now -ge "$budget" ]; then
    steps+=("skip	0	$name	-	time budget ($budget s) spent")
    info "skip  $name (budget)"
    return 0
  fi
  [ $((now + limit)) -gt "$budget" ] && limit=$((budget - now > 10 ? budget - now : 10))
  { echo "\$ $*"; echo "# timeout ${limit} s"; } > "$R/$log"
  local t0 rc
  t0=$(date +%s.%N)
  # In a subshell, so that the shell's own "Aborted" / "Killed" line goes to the log too.
  if [ $have_timeout = 1 ]; then
    ( timeout -k 10 "$limit" "$@" < /dev/null; exit $? ) >> "$R/$log" 2>&1; rc=$?
  else
    ( "$@" < /dev/null; exit $? ) >> "$R/$log" 2>&1; rc=$?
  fi
  local secs
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  local status=fail extra=""
  case $rc in
    0) status=pass ;;
    77) status=skip; extra="the test skipped itself" ;;
    124|137) status=fail; extra="timed out after ${limit} s" ;;
    *) extra="exit $rc" ;;
  esac
  echo "# exit $rc, ${secs} s" >> "$R/$log"
  steps+=("$status	$secs	$name	$log	$extra")
  printf 'gpu-check: %-5s %6s s  %s%s\n' "$status" "$secs" "$name" "${extra:+ ($extra)}"
  LAST_LOG=$R/$log
  return 0
}

# ---- host ------------------------------------------------------------------------------------
host_glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print $2 }')
[ -n "$host_glibc" ] || host_glibc=$(ldd --version 2>/dev/null | head -n1 | awk '{ print $NF }')
glibc_min=$(bundle_value glibc_min)
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "host: $(uname -srm), $( (. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-?}") || echo '?')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//'), $(getconf _NPROCESSORS_ONLN 2>/dev/null) cores"
  echo "memory: $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)"
  echo "user: $(id -un 2>/dev/null || id -u) (uid $(id -u))"
  echo "glibc: ${host_glibc:-unknown} (the bundle needs ${glibc_min:-?})"
  echo "bundle: $B, commit $(bundle_value commit), made $(bundle_value made)"
  ls /dev/nvidia* /dev/dri/* 2>/dev/null | tr '\n' ' ' | sed 's/^/device nodes: /; s/ $/\n/'
  # NVIDIA's Vulkan needs more than libcuda: libGLX_nvidia, libnvidia-glcore, -glvkspirv...
  for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /lib/x86_64-linux-gnu /lib64 /usr/local/nvidia/lib64 \
           ${LD_LIBRARY_PATH:+${LD_LIBRARY_PATH//:/ }}; do
    ls "$d" 2>/dev/null | grep -E '^(libGLX_nvidia|libnvidia-(glcore|glvkspirv|gpucomp|eglcore)|libcuda)\.so' |
      sed "s|^|$d/|"
  done | sort -u | tr '\n' ' ' | sed 's/^/nvidia libraries: /; s/ $/\n/'
} > "$R/host.txt"
cat "$R/host.txt"
if command -v nvidia-smi >/dev/null 2>&1; then
  to=""; [ $have_timeout = 1 ] && to="timeout -k 5 30"
  $to nvidia-smi > "$R/logs/nvidia-smi.log" 2>&1
  $to nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader \
    > "$R/nvidia-smi.txt" 2>/dev/null || rm -f "$R/nvidia-smi.txt"
fi

fatal=""
if [ -n "$host_glibc" ] && [ -n "$glibc_min" ] &&
   [ "$(printf '%s\n%s\n' "$glibc_min" "$host_glibc" | sort -V | head -n1)" != "$glibc_min" ]; then
  fatal="glibc too old: the host has $host_glibc, the bundle needs $glibc_min (rebuild the bundle on an older Debian)"
fi

# ---- Vulkan loader: the host's first, else the bundled one -------------------------------------
# The dynamic linker decides: LD_DEBUG=libs names the libvulkan.so.1 that deepgen really loads.
loader_probe() {
  LD_DEBUG=libs "$B/bin/deepgen" --version > "$TMPD/probe.log" 2>&1
}
loader=""; loader_from=""
if [ -z "$fatal" ]; then
  if [ "${GPU_CHECK_LOADER:-}" != bundled ] && loader_probe; then
    loader_from=host
  else
    if grep -q "GLIBC_[0-9.]*' not found" "$TMPD/probe.log" 2>/dev/null; then
      fatal="glibc too old: $(grep -m1 "not found" "$TMPD/probe.log")"
    else
      export LD_LIBRARY_PATH="$B/lib/vulkan${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      if loader_probe; then
        loader_from=bundled
        [ "${GPU_CHECK_LOADER:-}" = bundled ] && note "GPU_CHECK_LOADER=bundled: the host's loader (if any) is not used" \
                                              || note "no Vulkan loader on the host (libvulkan.so.1): using the bundled one (Debian $(bundle_value loader | awk '{ print $NF }'))"
      else
        fatal="deepgen does not start: $(grep -v '^ *[0-9]*:' "$TMPD/probe.log" | head -n3 | tr '\n' ' ')"
      fi
    fi
  fi
  loader=$(sed -n 's/.*calling init: \(.*libvulkan\.so[.0-9]*\)$/\1/p' "$TMPD/probe.log" | head -n1)
  [ -n "$loader" ] && loader=$(readlink -f "$loader" 2>/dev/null || echo "$loader")
fi

# ---- the driver's ICD --------------------------------------------------------------------------
icd_dirs=()
for d in "${XDG_CONFIG_HOME:-${HOME:-/nonexistent}/.config}" ${XDG_CONFIG_DIRS:-/etc/xdg} /etc /usr/local/etc \
         "${XDG_DATA_HOME:-${HOME:-/nonexistent}/.local/share}" ${XDG_DATA_DIRS:-/usr/local/share:/usr/share} /usr/local/share /usr/share; do
  for dd in ${d//:/ }; do
    [ -d "$dd/vulkan/icd.d" ] && case " ${icd_dirs[*]:-} " in *" $dd/vulkan/icd.d "*) ;; *) icd_dirs+=("$dd/vulkan/icd.d") ;; esac
  done
done
icds=""
for d in "${icd_dirs[@]:-}"; do
  [ -n "$d" ] || continue
  for j in "$d"/*.json; do
    [ -f "$j" ] || continue
    lib=$(sed -n 's/.*"library_path"[^"]*"\([^"]*\)".*/\1/p' "$j" | head -n1)
    icds="$icds$j -> $lib"$'\n'
  done
done
icd_note=""
if [ -n "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  icd_note="given by the environment: VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-}"
elif ! grep -qi nvidia <<< "$icds"; then
  # NVIDIA in a container often has the driver library and no ICD json: write one.
  nv=""
  for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /lib/x86_64-linux-gnu /lib64 /usr/local/nvidia/lib64 \
           /usr/local/nvidia/lib /usr/lib/nvidia ${LD_LIBRARY_PATH:+${LD_LIBRARY_PATH//:/ }}; do
    [ -e "$d/libGLX_nvidia.so.0" ] && { nv=$d/libGLX_nvidia.so.0; break; }
  done
  [ -n "$nv" ] || nv=$( (ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null) | awk '$1 == "libGLX_nvidia.so.0" { print $NF; exit }')
  if [ -n "$nv" ]; then
    mkdir -p "$TMPD/icd.d"
    printf '{\n  "file_format_version": "1.0.0",\n  "ICD": { "library_path": "%s", "api_version": "1.3.0" }\n}\n' "$nv" \
      > "$TMPD/icd.d/nvidia_icd.json"
    cp "$TMPD/icd.d/nvidia_icd.json" "$R/nvidia_icd.json"
    export VK_DRIVER_FILES=$TMPD/icd.d/nvidia_icd.json VK_ICD_FILENAMES=$TMPD/icd.d/nvidia_icd.json
    icd_note="no NVIDIA ICD json on the host but $nv exists: wrote $R/nvidia_icd.json and set VK_DRIVER_FILES / VK_ICD_FILENAMES to it"
    note "$icd_note"
  fi
fi
if [ -z "$icds" ] && [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  note "no Vulkan ICD: no json in ${icd_dirs[*]:-any icd.d folder} and no libGLX_nvidia.so.0 (is the driver's Vulkan part installed? containers need NVIDIA_DRIVER_CAPABILITIES to include graphics)"
fi

# unpack ARCHIVE.tar.xz DIR: with the bundle's own xz (its libraries through RUNPATH), else the
# host's: a bare machine may have none.
unpack() {
  local x
  for x in "$B/bin/xz" xz; do
    if "$x" --version > /dev/null 2>&1; then
      "$x" -dc "$1" | tar -C "$2" -xf -
      return
    fi
  done
  echo "no working xz (the bundled one does not start and the host has none)" >&2
  return 1
}

# ---- validation layer: the host's, else the bundled one ----------------------------------------
layer=""
if [ $validation = 1 ]; then
  for d in "${XDG_DATA_HOME:-${HOME:-/nonexistent}/.local/share}" /etc /usr/local/etc ${XDG_DATA_DIRS:-/usr/local/share:/usr/share} /usr/local/share /usr/share; do
    for dd in ${d//:/ }; do
      [ -f "$dd/vulkan/explicit_layer.d/VkLayer_khronos_validation.json" ] && { layer="host: $dd/vulkan/explicit_layer.d"; break 2; }
    done
  done
  if [ -z "$layer" ] && [ -f "$B/lib/layer.tar.xz" ]; then
    if unpack "$B/lib/layer.tar.xz" "$TMPD" 2>"$TMPD/layer.err"; then
      export VK_LAYER_PATH=$TMPD/layer${VK_LAYER_PATH:+:$VK_LAYER_PATH}
      layer="bundled: $(bundle_value validation_layer), unpacked into $TMPD/layer"
      lg=$(bundle_value layer_glibc_min)
      if [ -n "$host_glibc" ] && [ -n "$lg" ] &&
         [ "$(printf '%s\n%s\n' "$lg" "$host_glibc" | sort -V | head -n1)" != "$lg" ]; then
        # Debian 12's libstdc++ needs glibc $lg: let the layer take the host's C++ runtime.
        rm -f "$TMPD"/layer/libstdc++.so.* "$TMPD"/layer/libgcc_s.so.*
        layer="$layer, with the host's libstdc++ (glibc $host_glibc < $lg)"
      fi
    else
      note "could not unpack the bundled validation layer: $(head -c 300 "$TMPD/layer.err")"
    fi
  fi
  [ -n "$layer" ] || { validation=0; note "no Khronos validation layer: the tests run without validation"; }
fi

# ---- test executables --------------------------------------------------------------------------
unpack_tests() {   # unpack_tests DIR: DIR/tests/* with DIR/lib -> the bundle's lib (their RUNPATH)
  mkdir -p "$1" && unpack "$B/tests/binaries.tar.xz" "$1" && ln -sfn "$B/lib" "$1/lib" || return 1
  # 126/127: cannot execute (a noexec folder) or a library is missing; anything else is fine.
  ( "$1/tests/$(ls "$1/tests" | head -n1)" --help > /dev/null 2>&1 ); [ $? -lt 126 ]
}
if [ -z "$fatal" ] && [ $info_only = 0 ]; then
  if unpack_tests "$TMPD/t"; then
    T=$TMPD/t/tests
  elif unpack_tests "$W/t"; then     # a noexec /tmp
    T=$W/t/tests
  else
    note "could not unpack or start the test executables (tests/binaries.tar.xz)"
  fi
fi

# ---- the device --------------------------------------------------------------------------------
dg=$B/bin/deepgen
tiny=$B/data/tiny-deepgen
if [ -n "$fatal" ]; then
  note "$fatal"
else
  step "deepgen info" 60 "$dg" info --model "$tiny"
  info_log=$LAST_LOG
  sed '1,2d; /^# exit/d' "$info_log"
  if grep -q "no usable device" "$info_log"; then
    fatal="no usable Vulkan device: $(sed -n 's/.*no usable device (\(.*\))$/\1/p' "$info_log")"
    note "$fatal"
  elif [ $validation = 1 ]; then
    # The tests need the layer to load; if it does not, they run without it rather than all fail.
    DEEPGEN_VK_VALIDATION=1 "$dg" info --model "$tiny" > "$R/logs/validation-probe.log" 2>&1
    if grep -q "no usable device" "$R/logs/validation-probe.log"; then
      validation=0
      note "the validation layer does not load ($(sed -n 's/.*no usable device (\(.*\))$/\1/p' "$R/logs/validation-probe.log" | head -c 300)): the tests run without validation"
    fi
  fi
fi

# ---- the tests (ctest's commands and environment, from tests/tests.sh) -------------------------
tests=()
declare -A spec group tlimit
dg_test() {   # dg_test NAME GROUP TIMEOUT WORKDIR [VAR=VALUE...] -- COMMAND [ARG...]
  local name=$1
  tests+=("$name"); group[$name]=$2; tlimit[$name]=$3
  shift 3
  spec[$name]=$(printf '%q ' "$@")
}
run_test() {   # run_test NAME LIMIT: in its working folder with its environment (no env -C: old coreutils)
  local name=$1 limit=$2
  eval "set -- ${spec[$name]}"
  local wd=$1; shift
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    case $1 in
      DEEPGEN_VK_VALIDATION=*) if [ $validation = 1 ]; then envs+=("$1"); else envs+=(DEEPGEN_VK_VALIDATION=0); fi ;;
      *) envs+=("$1") ;;
    esac
    shift
  done
  shift
  mkdir -p "$wd"
  step "$name" "$limit" sh -c 'cd "$1" && shift && exec env "$@"' sh "$wd" "${envs[@]}" "$@"
  # A failure under the validation layer is run again without it: a layer message (perhaps of a
  # layer older than the driver) and a wrong result are different news.
  local last=${steps[${#steps[@]}-1]}
  if [ $validation = 1 ] && [ "${last%%	*}" = fail ] && [[ $last != *"timed out"* ]]; then
    local i
    for i in "${!envs[@]}"; do
      [[ ${envs[$i]} == DEEPGEN_VK_VALIDATION=* ]] && envs[$i]=DEEPGEN_VK_VALIDATION=0
    done
    step "$name without validation" "$limit" sh -c 'cd "$1" && shift && exec env "$@"' sh "$wd" "${envs[@]}" "$@"
  fi
}

if [ -z "$fatal" ] && [ -n "$T" ] && [ $info_only = 0 ]; then
  # shellcheck disable=SC1091
  . "$B/tests/tests.sh"
  # Per-step limits on a GPU: the op tests' C references take seconds, a golden scenario a few.
  if [ $quick = 1 ]; then
    pick=" op_runtime op_softmax model_pipeline:/pipeline/scenario1 "
    lim_op=300; lim_model=300
  else
    pick=""
    lim_op=${GPU_CHECK_OP_TIMEOUT:-90}; lim_model=${GPU_CHECK_MODEL_TIMEOUT:-120}
  fi
  for phase in op golden; do
    for n in ${tests[@]+"${tests[@]}"}; do
      [ "${group[$n]}" = $phase ] || continue
      if [ -n "$pick" ] && [[ $pick != *" $n "* ]]; then continue; fi
      l=$lim_model; [ $phase = op ] && l=$lim_op
      [ "${tlimit[$n]}" -lt "$l" ] && l=${tlimit[$n]}
      run_test "$n" "$l"
    done
  done
fi

# ---- benches (no validation) -------------------------------------------------------------------
bench_logs=()
if [ -z "$fatal" ] && [ $info_only = 0 ]; then
  if [ $quick = 1 ]; then
    step "deepgen bench ops (quick)" 120 env -u DEEPGEN_VK_VALIDATION "$dg" bench ops --quick --reps 1 --filter gemv
    bench_logs+=("$LAST_LOG")
    step "deepgen bench tiny generate 128x128" 180 env -u DEEPGEN_VK_VALIDATION "$dg" bench --model "$tiny" --size 128x128 --steps 2 --runs 1
    bench_logs+=("$LAST_LOG")
  else
    step "deepgen bench ops" 150 env -u DEEPGEN_VK_VALIDATION "$dg" bench ops
    bench_logs+=("$LAST_LOG")
    for job in generate edit; do
      step "deepgen bench tiny $job 512x512" 60 env -u DEEPGEN_VK_VALIDATION "$dg" bench --model "$tiny" --job $job --size 512x512
      bench_logs+=("$LAST_LOG")
    done
  fi
  if "$dg" bench --help 2>/dev/null | grep -q -- --synthetic; then
    if [ $quick = 1 ]; then
      note "deepgen bench --synthetic: not run with --quick (the real model's size is for a GPU)"
    else
      for size in 512x512 1024x1024; do
        for job in generate edit; do
          step "deepgen bench --synthetic $job $size" 120 env -u DEEPGEN_VK_VALIDATION "$dg" bench --synthetic --job $job --size $size --steps 3 --runs 2
          bench_logs+=("$LAST_LOG")
        done
      done
    fi
  else
    note "deepgen bench --synthetic: this deepgen has no such option (not yet implemented), skipped"
  fi
fi

# ---- the other model tests ---------------------------------------------------------------------
if [ -z "$fatal" ] && [ -n "$T" ] && [ $info_only = 0 ]; then
  for n in ${tests[@]+"${tests[@]}"}; do
    [ "${group[$n]}" = model ] || continue
    if [ $quick = 1 ]; then
      steps+=("skip	0	$n	-	--quick")
      continue
    fi
    l=$lim_model; [ "${tlimit[$n]}" -lt "$l" ] && l=${tlimit[$n]}
    run_test "$n" "$l"
  done
fi

# ---- report ------------------------------------------------------------------------------------
total=$(( $(date +%s) - start ))
npass=0; nfail=0; nskip=0
: > "$R/summary.tsv"
for s in ${steps[@]+"${steps[@]}"}; do
  printf '%s\n' "$s" >> "$R/summary.tsv"
  case ${s%%	*} in pass) npass=$((npass + 1)) ;; fail) nfail=$((nfail + 1)) ;; skip) nskip=$((nskip + 1)) ;; esac
done
code() { echo '```text'; cat "$@"; echo '```'; }
{
  echo "# DeepGen GPU check"
  echo
  if [ -n "$fatal" ]; then
    echo "**Could not run: $fatal**"
  else
    echo "**$npass passed, $nfail failed, $nskip skipped** of ${#steps[@]} steps in $total s" \
         "($([ $info_only = 1 ] && echo 'device only' || { [ $quick = 1 ] && echo 'quick subset'; } || echo 'full run'); validation layer $([ $validation = 1 ] && echo on || echo off))."
    failed=$(for s in ${steps[@]+"${steps[@]}"}; do IFS=$'\t' read -r st _ name _ extra <<< "$s"
             [ "$st" = fail ] && printf '`%s` (%s), ' "$name" "$extra"; done)
    [ -n "$failed" ] && { echo; echo "Failed: ${failed%, }."; }
  fi
  echo
  if [ ${#notes[@]} -gt 0 ]; then
    echo "## Could not do / worked around"
    echo
    for n in "${notes[@]}"; do echo "- $n"; done
    echo
  fi
  echo "## Host"
  echo
  code "$R/host.txt"
  [ -f "$R/nvidia-smi.txt" ] && { echo; echo "nvidia-smi: $(cat "$R/nvidia-smi.txt")"; }
  echo
  echo "## Vulkan"
  echo
  echo "- loader: ${loader:-not found} (${loader_from:-none})"
  echo "- ICD files on the host:"
  if [ -n "$icds" ]; then printf '%s' "$icds" | sed 's/^/  - `/; s/$/`/'; else echo "  - none"; fi
  [ -n "$icd_note" ] && echo "- ICD: $icd_note"
  echo "- validation layer: $([ $validation = 1 ] && echo "$layer" || echo off)"
  echo
  if [ -n "${info_log:-}" ]; then
    echo "## Device (\`deepgen info\`)"
    echo
    code <(sed '1,2d; /^# exit/d' "$info_log")
    echo
    echo "Kernel paths chosen on this device (kill switches in the environment:" \
         "$(env | grep -E '^DEEPGEN_VK_(DISABLE|FORCE)_' | tr '\n' ' ' | grep . || echo none)):"
    echo
    if grep -q '^kernel paths:' "$info_log"; then   # deepgen info says it itself
      echo '```text'
      awk '/^kernel paths:/ { on = 1 } on && /^$/ { exit } on' "$info_log"
      echo '```'
    else awk '/cooperative matrix:/ { sub(/.*cooperative matrix: /, ""); print "- cooperative-matrix GEMM: " ($0 ~ /^yes/ ? "available" : "not available (tiled GEMM)") }
         /^subgroup:/ { print "- subgroup reductions (GEMV, norms, attention): " ($0 ~ /arithmetic yes/ ? "yes" : "no") " (" $0 ")" }
         /integer dot product:/ { sub(/,.*/, ""); print "- " $0 }
         /kernel|path/ { print "- " $0 }' "$info_log"
    fi
    echo
  fi
  echo "## Steps"
  echo
  echo "| # | step | result | seconds | note | log |"
  echo "|---|---|---|---|---|---|"
  i=0
  for s in ${steps[@]+"${steps[@]}"}; do
    i=$((i + 1))
    IFS=$'\t' read -r st secs name log extra <<< "$s"
    echo "| $i | \`$name\` | $st | $secs | $extra | $([ "$log" = - ] && echo - || echo "[$log]($log)") |"
  done
  echo
  if [ ${#bench_logs[@]} -gt 0 ]; then
    echo "## Benchmarks"
    for l in "${bench_logs[@]}"; do
      echo
      echo "### \`$(head -n1 "$l" | sed 's/^\$ //; s|'"$B"'/||g; s/^env -u DEEPGEN_VK_VALIDATION //')\`"
      echo
      code <(sed '1,2d; /^# exit/d; /^device:\|^driver:\|^device-local\|^fp16\|^integer dot\|^subgroup:\|^shared memory\|^maxStorage\|^timestamps/d' "$l" | grep -v -e '^\s*$' -e $'\r' -e '^\[[0-9]*:[0-9]*\] ')
    done
    echo
  fi
  echo "Raw logs: \`logs/\`; one line per step: \`summary.tsv\`. Bundle: $(bundle_value commit), made $(bundle_value made)."
} > "$R/report.md"
info "report: $R/report.md ($npass passed, $nfail failed, $nskip skipped, $total s)"
[ -n "$fatal" ] && exit 2
[ $nfail -gt 0 ] && exit 1
exit 0
