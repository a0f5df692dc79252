#!/usr/bin/env bash
# The main job: set up this machine, then a certification run against the built-in virtual
# card, ending with a signed report in reports/out/demo (report.xml, report.html, report.pdf).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/rhc run --card virtual --out reports/out/demo "$@"
