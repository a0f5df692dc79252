#!/usr/bin/env bash
# The whole test suite: set up this machine, then ruff and pytest with pcscd running for the
# end-to-end tests (started here when none runs, stopped afterwards; the rest runs on two
# pytest-xdist workers), then bench/harness.py and bench/validate.py --small as smoke runs (no
# times asserted), then the built wheel in a fresh venv (scripts/check-wheel.sh, about a
# minute; skipped when pytest arguments select tests). Any failure, pytest's "no tests collected" included, makes the exit status non-zero.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec bash scripts/with-pcscd.sh bash -c '
    rc=0
    .venv/bin/ruff check . || rc=1
    if [ $# -eq 0 ]; then
        # two workers for everything but the PC/SC bench; the e2e tests share one pcscd and
        # the vpcd ports, so they run in one process after
        .venv/bin/pytest -q -n "${RHC_TEST_WORKERS:-2}" -m "not e2e" || rc=1
        .venv/bin/pytest -q -m e2e || rc=1
        # the benchmarks as smoke tests: they must run through; they assert no times
        .venv/bin/python bench/harness.py --small || rc=1
        .venv/bin/python bench/validate.py --small || rc=1
        bash scripts/check-wheel.sh || rc=1
    else
        .venv/bin/pytest -q "$@" || rc=1
    fi
    exit $rc' test-suite "$@"
