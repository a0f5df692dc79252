"""Terminal runs through the contract of TERMINAL.md, on the tests' socket reader.

The tiny terminal (tests/tiny_terminal.py) is certified CONFORMANT; each of its fault switches
is caught by the case that names the fault; a terminal that hangs, crashes, prints garbage or
exits without JSON gets a verdict with the reason and the run goes on.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from terminal_support import ROOT, SocketBench, tiny_profile

from conformance.model import load_profile
from conformance.results import Verdict, read_results
from conformance.terminal.cases import terminal_cases
from conformance.terminal.profile import load_terminal_profile
from conformance.terminal.run import Operator, TerminalRun

PROFILE = load_profile()


def run_cases(tmp: Path, fault: str = "", ids: tuple[str, ...] = (), out: bool = True,
              operator: Operator | None = None, **extra: object) -> TerminalRun:
    terminal = load_terminal_profile(tiny_profile(tmp, fault, **extra))
    cases = [c for c in terminal_cases() if not ids or c.id in ids]
    run = TerminalRun(terminal, PROFILE, cases, SocketBench(), tmp / "run" if out else None,
                      operator=operator)
    run.summary_ = run.run()  # type: ignore[attr-defined]
    return run


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> TerminalRun:
    return run_cases(tmp_path_factory.mktemp("full"), uses_sam=True)


def test_tiny_terminal_is_conformant(full_run: TerminalRun) -> None:
    summary = full_run.summary_  # type: ignore[attr-defined]
    assert summary.verdict.value == "CONFORMANT", [
        (r.id, r.reason) for r in full_run.results if r.verdict is not Verdict.PASS]
    assert summary.counts["PASS"] == len(terminal_cases())
    assert summary.product["kind"] == "terminal" and summary.product["vendor"] == "rhc tests"
    assert {s["test_card"] for s in summary.card["samples"]} >= {"normal", "t0", "index-full"}


def test_run_directory_holds_results_evidence_and_summary(full_run: TerminalRun) -> None:
    out = full_run.out_dir
    assert out is not None
    results = read_results(out)
    assert [r.id for r in results] == [c.id for c in terminal_cases()]
    first = results[0]
    assert first.requirement_zh and first.requirement_en and first.source and first.purpose_zh
    lines = [json.loads(x) for x in (out / first.evidence).read_text("utf-8").splitlines()]
    assert lines[0]["transaction"]["exit_code"] == 0
    assert any(x.get("reader") == "card" and x.get("c", "").startswith("00A4") for x in lines)
    assert any(x.get("reader") == "sam" for x in lines)  # a terminal with a SAM always has it
    assert json.loads((out / "summary.json").read_text("utf-8"))["verdict"] == "CONFORMANT"


def test_signed_report_of_a_terminal_run_verifies(full_run: TerminalRun) -> None:
    from conformance.report import verify_report, write_report

    assert full_run.out_dir is not None
    paths = write_report(full_run.out_dir, pdf=False)
    assert paths.conclusion == "CONFORMANT"
    assert not verify_report(full_run.out_dir).problems


FAULT_CASES = [
    ("skip_get_response", "TERM-T0-001"),
    ("reuse_challenge", "TERM-PUT-002"),
    ("retry_auth", "TERM-KEY-002"),
    ("plain_tlv", "TERM-PUT-001"),
    ("truncate_gbk", "TERM-GET-003"),
    ("ignore_index", "TERM-REC-002"),
    ("mislabel", "TERM-GET-001"),
    ("no_select", "TERM-SEL-001"),
    ("sam_one_factor", "TERM-SAM-001"),
]


@pytest.mark.parametrize(("fault", "case_id"), FAULT_CASES)
def test_each_terminal_fault_fails_its_own_case(tmp_path: Path, fault: str, case_id: str) -> None:
    run = run_cases(tmp_path, fault, (case_id,), out=False, uses_sam=fault.startswith("sam"))
    (result,) = run.results
    assert result.verdict is Verdict.FAIL and result.failed_at == "own", result.reason
    assert result.reason_zh


@pytest.mark.parametrize(("fault", "words"), [
    ("hang", "did not end within timeout_s = 2 s and was killed"),
    ("crash", "crashed (killed by signal SIGABRT)"),
    ("garbage", "not one JSON document"),
    ("exit_no_json", "exit status 3, standard output empty"),
])
def test_broken_terminal_gets_a_verdict_and_the_run_goes_on(tmp_path: Path, fault: str,
                                                            words: str) -> None:
    run = run_cases(tmp_path, fault, ("TERM-GET-005", "TERM-GET-006"), timeout_s=2)
    assert [r.verdict for r in run.results] == [Verdict.FAIL, Verdict.FAIL]
    assert all(words in r.reason for r in run.results), [r.reason for r in run.results]
    assert run.summary_.verdict.value == "NOT_CONFORMANT"  # type: ignore[attr-defined]


def test_operations_not_declared_are_not_applicable(tmp_path: Path) -> None:
    run = run_cases(tmp_path, ids=("TERM-GET-006", "TERM-PUT-001", "TERM-SAM-001"),
                    operations=["get"], out=False)
    assert [r.verdict for r in run.results] == [Verdict.PASS, Verdict.NOT_APPLICABLE,
                                                Verdict.NOT_APPLICABLE]


def test_manual_mode_with_an_operator(tmp_path: Path) -> None:
    typed = ('y\n{"items": {"11": "王"}}\n'                              # TERM-GET-001: wrong
             'y\n{"items": {"11": "王测试", "16": "13800000000"}}\n'  # TERM-GET-005, as shown
             "n\n6983\n")                                               # TERM-KEY-001: refused
    shown = io.StringIO()
    operator = Operator(read=io.StringIO(typed), write=shown)
    run = run_cases(tmp_path, ids=("TERM-GET-001", "TERM-GET-005", "TERM-KEY-001"),
                    operator=operator, out=False, mode="manual", command=[])
    by_id = {r.id: r for r in run.results}
    assert by_id["TERM-GET-005"].verdict is Verdict.PASS
    assert by_id["TERM-GET-005"].reason == "operator-confirmed"
    assert by_id["TERM-GET-001"].verdict is Verdict.FAIL
    assert by_id["TERM-KEY-001"].verdict is Verdict.PASS
    assert all(any("operator-confirmed" in o for o in r.observations) for r in run.results)
    assert "On the terminal, do: get 11 16 11" in shown.getvalue()


def rhc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_bad_terminal_profile_is_one_line_naming_the_key(tmp_path: Path) -> None:
    path = tiny_profile(tmp_path, colour="red")
    done = rhc("terminal", "run", "--terminal", str(path), "--out", str(tmp_path / "o"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "unknown key(s) colour" in done.stderr
    path = tiny_profile(tmp_path, operations=["get", "gte"])
    done = rhc("terminal", "run", "--terminal", str(path))
    assert done.returncode == 2 and "unknown operation(s) gte" in done.stderr


def test_command_as_one_string_is_split_like_a_shell(tmp_path: Path) -> None:
    path = tiny_profile(tmp_path, command="/opt/kiosk/bin/hc-adapter --quiet 'a b'")
    assert load_terminal_profile(path).command == ["/opt/kiosk/bin/hc-adapter", "--quiet", "a b"]


def test_terminal_cases_in_the_catalogue() -> None:
    done = rhc("cases", "list", "--group", "TERM", "--json")
    assert done.returncode == 0, done.stderr
    cases = json.loads(done.stdout)
    assert len(cases) == len(terminal_cases()) and all(c["id"].startswith("TERM-") for c in cases)
    for c in cases:
        assert c["title_zh"] and c["title_en"] and c["requirement_zh"] and c["requirement_en"]
        assert c["source"] and c["purpose_zh"] and "in operations" in c["applicability"]
    shown = rhc("cases", "show", "TERM-T0-001")
    assert shown.returncode == 0 and "get_response" in shown.stdout
