"""End to end through pcscd + vpcd: the co-branded virtual card in a reader, the COB cases
run by `rhc run --reader` (a selection, so never a certification: a few seconds of CI)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from casekit import new_card, profile
from conftest import ROOT, VPCD_READER

from conformance.defaults import EXIT_NOT_CERTIFICATION, EXIT_NOT_CONFORMANT
from conformance.model.products import load_product

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("fault", ["", "cobrand_health_keys_open_pboc"])
def test_cob_cases_through_pcsc(vpcd_card, tmp_path, fault: str) -> None:
    product = load_product("co-branded", profile())
    vpcd_card(new_card((fault,) if fault else (), product))
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", "--reader", VPCD_READER,
         "--product", "co-branded", "-k", "COB-", "--no-report", "--quiet", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    verdicts = {c["id"]: c["verdict"] for c in summary["cases"]}
    assert len(verdicts) == 7 and all(i.startswith("COB-") for i in verdicts), verdicts
    if not fault:
        assert done.returncode == EXIT_NOT_CERTIFICATION, done.stderr  # a selection
        assert set(verdicts.values()) == {"PASS"}, verdicts
    else:
        assert done.returncode == EXIT_NOT_CONFORMANT, done.stderr
        assert {i for i, v in verdicts.items() if v == "FAIL"} == {
            "COB-KEY-001", "COB-KEY-002", "COB-KEY-003"}, verdicts
