#!/usr/bin/env python3
"""Turns `ctest --show-only=json-v1` of a build into the GPU bundle's test list.

    tests-from-ctest.py CTEST_JSON SRC_DIR BUILD_DIR TESTS_OUT BINARIES_OUT

Keeps the tests labelled `op` or `model` (the op tests and the model/golden tests; not those
also labelled `slow` — but the `realwidth` ones, slow only on a CPU — or `coopmat`, nor wrapper scripts outside the build tree), with the
command, arguments, working directory, environment and timeout ctest would use, and rewrites
every path for the bundle: the source tree's tests/data becomes "$B/data", a test executable
"$T/NAME" (the folder gpu-check.sh unpacks them into), anything else in the build tree "$W/..."
(a scratch folder of the report).
model_pipeline is split into one step per golden scenario (its GLib test paths, from `-l`) and
one step for its other cases, so the report shows each scenario with its own result and time.

TESTS_OUT is a bash fragment that gpu-check.sh sources with B, T and W set, one line per step:
    dg_test NAME GROUP TIMEOUT WORKDIR [VAR=VALUE...] -- COMMAND [ARG...]
BINARIES_OUT lists the test executables to put into the bundle, one per line.
"""
import json
import os
import shlex
import subprocess
import sys

# labels whose tests stay out: long sweeps (`slow`), runs inside a Debian 13 root (`coopmat`)
SKIP_LABELS = {"slow", "coopmat"}
# ... except these, slow only on a CPU device: the real widths take seconds on a GPU
GPU_LABELS = {"realwidth"}
# test name -> GLib test-path prefix whose cases become steps of their own (group "golden")
SPLIT = {"model_pipeline": "/pipeline/scenario"}


def main():
    ctest_json, src, build, tests_out, bins_out = sys.argv[1:6]
    src = os.path.realpath(src)
    build = os.path.realpath(build)
    data = os.path.join(src, "tests", "data")
    with open(ctest_json) as f:
        tests = json.load(f)["tests"]

    binaries = {}   # build path -> bundle name
    lines = []
    problems = []

    def rewrite(s):
        """One string (argument or environment value) with its paths moved into the bundle."""
        real = s
        if s == "":
            return "''"
        if s.startswith(data):
            return '"$B/data"' + q(s[len(data):])
        if s in binaries:
            return '"$T/"' + q(binaries[s])
        if s.startswith(build + "/") or s == build:
            return '"$W"' + q(s[len(build):])
        if s.startswith(src + "/") or s == src:
            raise ValueError("path in the source tree outside tests/data: " + real)
        return q(s)

    for t in tests:
        props = {p["name"]: p["value"] for p in t.get("properties", [])}
        labels = props.get("LABELS", [])
        if "op" not in labels and "model" not in labels:
            continue
        if any(l in SKIP_LABELS for l in labels) and not any(l in GPU_LABELS for l in labels):
            continue
        name = t["name"]
        cmd = t.get("command")
        if not cmd:
            problems.append(f"{name}: ctest knows no command (not built?)")
            continue
        exe = os.path.realpath(cmd[0])
        if not exe.startswith(build + "/"):
            # a wrapper script (a test run inside another root, say): not for a bare machine
            print(f"tests-from-ctest: {name} left out: its command {cmd[0]} is not a program of the build",
                  file=sys.stderr)
            continue
        binaries.setdefault(exe, os.path.basename(exe))
        group = "op" if "op" in labels else "model"
        timeout = int(props.get("TIMEOUT", 1500))
        try:
            env = []
            for kv in props.get("ENVIRONMENT", []):
                k, _, v = kv.partition("=")
                env.append(q(k + "=") + rewrite(v))
            workdir = rewrite(props.get("WORKING_DIRECTORY", build))
            argv = [rewrite(exe)] + [rewrite(a) for a in cmd[1:]]
        except ValueError as e:
            problems.append(f"{name}: {e}")
            continue

        def emit(step, grp, extra):
            lines.append(" ".join(["dg_test", q(step), grp, str(timeout), workdir] + env + ["--"] + argv
                                  + [q(a) for a in extra]))

        prefix = SPLIT.get(name)
        if prefix and len(cmd) == 1:
            listed = subprocess.run([exe, "-l"], capture_output=True, text=True, check=True).stdout.split()
            paths = [p for p in listed if p.startswith("/")]
            split = [p for p in paths if p.startswith(prefix)]
            for p in split:
                emit(f"{name}:{p}", "golden", ["-p", p])
            if len(split) < len(paths):
                emit(f"{name}:rest", group, [a for p in split for a in ("-s", p)])
        else:
            emit(name, group, [])

    if problems:
        for p in problems:
            print("tests-from-ctest: " + p, file=sys.stderr)
        sys.exit(1)
    if not lines:
        print("tests-from-ctest: no op/model tests in the ctest list", file=sys.stderr)
        sys.exit(1)
    with open(tests_out, "w") as f:
        f.write("# Generated by scripts/gpu-bundle.sh from `ctest --show-only=json-v1`: the op and model\n"
                "# tests with ctest's commands, environment and timeouts; sourced by gpu-check.sh.\n")
        f.write("\n".join(lines) + "\n")
    with open(bins_out, "w") as f:
        f.write("\n".join(sorted(binaries)) + "\n")


def q(s):
    return shlex.quote(s) if s else ""


if __name__ == "__main__":
    main()
