#!/usr/bin/env bash
# The installable package, checked as a user gets it: build the wheel from this checkout's
# files (tracked and new, not ignored), install it with its dependencies into a fresh virtual
# environment, then from an empty directory run the virtual card (a bench self-test: NO_FAILURES,
# exit 3) and verify the signed report with the demo CA the wheel ships (`rhc paths`).
#
#   scripts/check-wheel.sh          (PYTHON=... to choose the interpreter; default .venv's)
#
# Needs pip to reach a package index (or its cache) for the dependencies.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rhc-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
unset PYTHONPATH  # the installed wheel, not this checkout, must answer

step() { printf 'check-wheel: %s (%ss)\n' "$1" "$SECONDS" >&2; }

step "copying the checkout"
mkdir -p "$WORK/src" "$WORK/dist" "$WORK/run"
git ls-files -z --cached --others --exclude-standard \
    | tar --null -T - -cf - | tar -C "$WORK/src" -xf -

step "building the wheel"
"$PY" -m pip wheel -q --no-deps -w "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK"/dist/*.whl)

step "installing $(basename "$WHEEL") into a fresh venv"
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check "$WHEEL"
RHC="$WORK/venv/bin/rhc"

cd "$WORK/run"
CA=$("$RHC" paths --json | "$WORK/venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["demo-ca"])')
case "$CA" in
    "$WORK/venv/"*) ;;
    *) echo "check-wheel: the demo CA is not the wheel's: $CA" >&2; exit 1 ;;
esac

step "rhc run --card virtual from $PWD"
rc=0
"$RHC" run --card virtual --out D --quiet || rc=$?
[ "$rc" -eq 3 ] || { echo "check-wheel: rhc run exited $rc, not 3 (NO_FAILURES)" >&2; exit 1; }
"$WORK/venv/bin/python" -c 'import json; v = json.load(open("D/summary.json"))["verdict"]; assert v == "NO_FAILURES", v'

step "rhc report verify D --trust $CA"
"$RHC" report verify D --trust "$CA"
step "the wheel works outside the checkout"
