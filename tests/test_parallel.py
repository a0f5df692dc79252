"""Runs on several readers at once: one pytest-xdist worker per reader, one merged run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import ROOT

from conformance.plugin import readers_for

RUN = [sys.executable, "-m", "conformance.cli", "run", "--quiet"]
READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01", "Virtual PCD 2 00 00"]


def results(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text("utf-8").splitlines()]


def test_readers_for_a_pattern_or_a_name() -> None:
    assert readers_for("Virtual PCD 00 0[01]", READERS) == READERS[:2]
    assert readers_for("Virtual PCD 00 01", READERS) == ["Virtual PCD 00 01"]
    assert readers_for("Virtual PCD", list(reversed(READERS))) == sorted(READERS)


def _verify(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance.cli", "report", "verify", str(out),
                           "--trust", "demo"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.parametrize("how", [["--workers", "2"], ["--tx", "popen", "--tx", "popen"]])
def test_workers_merge_into_one_signed_run(tmp_path, how) -> None:
    out = tmp_path / "run"
    run = subprocess.run([*RUN, "--card", "virtual", "-k", "ATR or CMD-SEL", *how, "--out",
                          str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         check=False)
    assert run.returncode == 3, run.stderr[-3000:]  # the virtual card: a bench self-test
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    rows = results(out)
    assert len(rows) == len(summary["cases"]) == summary["counts"]["PASS"] > 20
    assert len({r["id"] for r in rows}) == len(rows)  # each case once, from one worker
    assert all(r["verdict"] == "PASS" and r["reader"] and r["sample"] for r in rows)
    assert len(summary["card"]["samples"]) == 2  # one part per worker
    assert _verify(out).returncode == 0


@pytest.mark.e2e
def test_more_workers_than_readers_is_a_usage_error(pcsc_bench, tmp_path) -> None:
    run = subprocess.run([*RUN, "--reader", "Virtual PCD 00 0[01]", "--workers", "3",
                          "--out", str(tmp_path / "run")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 2 and "3 workers need one each" in run.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.e2e
def test_two_readers_two_samples_one_report(pcsc_bench, tmp_path) -> None:
    from conformance.bench import wait_for_card

    cards = [subprocess.Popen([sys.executable, "-m", "conformance.cli", "card", "serve",
                               "--vpcd-port", str(port)], cwd=ROOT, stderr=subprocess.DEVNULL)
             for port in (35963, 35964)]
    try:
        for reader in READERS[:2]:
            wait_for_card(reader, present=True, timeout_s=15)
        out = tmp_path / "run"
        run = subprocess.run([*RUN, "--reader", "Virtual PCD 00 0[01]", "--workers", "2",
                              "--plan", "performance", "--out", str(out)], cwd=ROOT,
                             capture_output=True, text=True, timeout=600, check=False)
        assert run.returncode == 3, run.stderr[-3000:]
        rows = results(out)
        assert set(Counter(r["reader"] for r in rows)) == set(READERS[:2])
        assert all(r["verdict"] == "PASS" and r["sample"] for r in rows)
        summary = json.loads((out / "summary.json").read_text("utf-8"))
        assert sorted(summary["bench"]["readers"]) == READERS[:2]
        assert _verify(out).returncode == 0
    finally:
        for card in cards:
            card.send_signal(signal.SIGTERM)
            card.wait(10)
        for reader in READERS[:2]:
            wait_for_card(reader, present=False, timeout_s=10)
