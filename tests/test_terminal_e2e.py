"""Terminal runs through the real PC/SC stack: test cards and the SAM in vpcd readers, the
terminal a separate program reaching them by reader name (pcscd + vpcd, marked e2e)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from terminal_support import ROOT, tiny_profile

from conformance.model import load_profile
from conformance.results import Verdict
from conformance.terminal.bench import VpcdBench
from conformance.terminal.cases import terminal_cases
from conformance.terminal.profile import load_terminal_profile
from conformance.terminal.run import TerminalRun

pytestmark = pytest.mark.e2e

TERMINALS = ROOT / "conformance" / "profiles" / "terminals"
SOME = ("TERM-GET-001", "TERM-GET-003", "TERM-T0-001", "TERM-T0-002", "TERM-KEY-002",
        "TERM-PUT-002", "TERM-RM-001", "TERM-CYC-001", "TERM-REC-003", "TERM-REC-008",
        "TERM-SAM-001", "TERM-SAM-002")


def _run(profile: Path, ids: tuple[str, ...], out: Path | None = None) -> TerminalRun:
    cases = [c for c in terminal_cases() if c.id in ids]
    run = TerminalRun(load_terminal_profile(profile), load_profile(), cases, VpcdBench(), out)
    run.run()
    return run


def test_tiny_terminal_through_pcsc(pcsc_bench: list[str], tmp_path: Path) -> None:
    run = _run(tiny_profile(tmp_path, uses_sam=True, timeout_s=20), SOME, tmp_path / "run")
    bad = [(r.id, r.reason) for r in run.results if r.verdict is not Verdict.PASS]
    assert not bad
    assert "Virtual PCD 00 00" in run.readers and "Virtual PCD 00 01" in run.readers


def test_rhc_terminal_run_issues_a_report_that_verifies(pcsc_bench: list[str],
                                                         tmp_path: Path) -> None:
    out = tmp_path / "run"
    rhc = [sys.executable, "-m", "conformance.cli"]
    done = subprocess.run([*rhc, "terminal", "run", "--terminal", str(tiny_profile(tmp_path)),
                           "--case", "TERM-GET-00*", "--out", str(out), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr  # a selection: no failures, not a certification
    assert json.loads(done.stdout)["verdict"] == "NO_FAILURES"
    verified = subprocess.run([*rhc, "report", "verify", str(out), "--trust", "demo"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout


def _faulty_profiles() -> list[Path]:
    return sorted(TERMINALS.glob("faulty-*.yaml"))


CERTIFIED = [p for p in (TERMINALS / "reference.yaml", ROOT / "tests" / "terminals" / "plain.yaml")
             if p.exists()]


@pytest.mark.parametrize("profile", CERTIFIED, ids=lambda p: p.stem)
def test_terminal_written_from_the_contract_passes_every_case(pcsc_bench: list[str],
                                                              profile: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """The reference terminal and the independent one: every applicable case PASSes."""
    monkeypatch.chdir(ROOT)  # their commands are relative to the checkout
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    run = _run(profile, tuple(c.id for c in terminal_cases()))
    bad = [(r.id, r.reason) for r in run.results
           if r.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE)]
    assert not bad


@pytest.mark.parametrize("profile", _faulty_profiles(), ids=lambda p: p.stem)
def test_each_faulty_reference_variant_fails_the_case_naming_its_fault(
        pcsc_bench: list[str], profile: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The case a faulty profile names (its header: "NOT_CONFORMANT, on TERM-…") FAILs on its
    own check; that meta-test keeps every shipped variant honest."""
    named = re.search(r"NOT_CONFORMANT, on (TERM-[A-Z0-9]+-\d{3})", profile.read_text("utf-8"))
    assert named, f"{profile.name} names no TERM case it must fail"
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    (result,) = _run(profile, (named.group(1),)).results
    assert result.verdict is Verdict.FAIL and result.failed_at == "own", result.reason
