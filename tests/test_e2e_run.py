"""End to end: certification runs through pcscd + vpcd, compared with the in-process run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, VPCD_READER

pytestmark = pytest.mark.e2e

RUN = [sys.executable, "-m", "conformance.cli", "run", "--no-report", "--quiet"]


def verdicts(out: Path) -> dict[str, str]:
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    return {case["id"]: case["verdict"] for case in summary["cases"]}


def test_pcsc_run_gives_the_same_verdicts_as_the_virtual_run(served_card, tmp_path) -> None:
    pcsc = subprocess.run(
        [*RUN, "--card", "pcsc", "--reader", VPCD_READER, "--out", str(tmp_path / "pcsc")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert pcsc.returncode == 3, pcsc.stderr[-3000:]  # the bench's own card, served by vpcd
    virtual = subprocess.run(
        [*RUN, "--card", "virtual", "--out", str(tmp_path / "virtual")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert virtual.returncode == 3, virtual.stderr[-3000:]  # a bench self-test: NO_FAILURES
    through_pcsc = verdicts(tmp_path / "pcsc")
    assert len(through_pcsc) >= 300
    assert through_pcsc == verdicts(tmp_path / "virtual")
    summary = json.loads((tmp_path / "pcsc" / "summary.json").read_text("utf-8"))
    assert summary["verdict"] == "NO_FAILURES"  # never a product's certification
    assert summary["scope"]["scope"] == "bench_self_test" and summary["scope"]["bench_sample"]
    assert summary["bench"]["readers"] == [VPCD_READER]
    assert summary["bench"]["pcsc_lite"] not in ("unknown", "not installed")


def test_a_card_that_vanishes_mid_run_gives_no_verdict(served_card, tmp_path) -> None:
    out = tmp_path / "run"
    run = subprocess.Popen(
        [*RUN, "--card", "pcsc", "--reader", VPCD_READER, "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while len(list((out / "evidence").glob("*.jsonl"))) < 60:
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.1)
    served_card.send_signal(signal.SIGKILL)  # the card vanishes from the reader
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr + stdout
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["verdict"] == "INCOMPLETE"
    assert summary["counts"]["INCONCLUSIVE"] + summary["counts"]["ERROR"] > 0
    assert any("bench lost" in note for note in summary["notes"])
    cases = summary["cases"]
    first_lost = next(i for i, c in enumerate(cases) if c["verdict"] == "INCONCLUSIVE")
    # a case the ICS excludes (COB on the reference product) never touches the card
    assert all(c["verdict"] in ("INCONCLUSIVE", "ERROR", "NOT_APPLICABLE")
               for c in cases[first_lost:])
    assert first_lost >= 50


def test_pcsc_run_without_a_reader_is_a_clear_bench_failure(pcsc_bench, tmp_path) -> None:
    """Never a CONFORMANT report for a card that was not there: exit 2, nothing written."""
    result = subprocess.run(
        [*RUN, "--reader", "No Such Reader", "--product", "profiles/products/minimal.yaml",
         "--out", str(tmp_path / "r")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "No Such Reader" in lines[0] and "no case ran" in lines[0]
    assert not (tmp_path / "r").exists()
