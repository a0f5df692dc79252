"""The console an engineer reads: whole names in any width, the cases to look at with their
reasons, why a run is INCOMPLETE, report steps, --json, help with defaults, junit.xml names and
wall-clock times in the evidence."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import pty
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ROOT
from rich.console import Console

from conformance.cases.catalogue import build_catalogue
from conformance.cases.framework import GROUPS
from conformance.cli import build_parser, main
from conformance.clock import WallClock
from conformance.console import print_table
from conformance.junit import relabel
from conformance.lab import load_lab
from conformance.model import load_profile
from conformance.progress import bilingual_reason, why_incomplete
from conformance.resources import DEMO_LAB
from conformance.results import CaseResult, RunSummary, Verdict

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, **extra}


def in_terminal(*argv: str, columns: int) -> str:
    """What `rhc ARGV` shows on a real (pseudo) terminal COLUMNS wide, colours stripped."""
    master, slave = pty.openpty()
    env = _env(COLUMNS=str(columns), LINES="50", TERM="xterm")
    env.pop("NO_COLOR", None)
    process = subprocess.Popen([sys.executable, "-m", "conformance.cli", *argv], stdout=slave,
                               stderr=slave, env=env, cwd=ROOT)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert process.wait(timeout=120) == 0
    return ANSI.sub("", b"".join(chunks).decode("utf-8", "replace").replace("\r", ""))


CATALOGUE = build_catalogue(load_profile(None))


# --------------------------------------------------------------------------- whole names


def test_cases_list_piped_shows_every_id_and_title_whole(capsys) -> None:
    code, out, _ = run(capsys, "cases", "list")
    lines = out.splitlines()
    assert code == 0 and lines[1].split("\t")[0] == "ID"
    rows = {line.split("\t")[0]: line for line in lines[2:]}
    from conformance.terminal.cases import terminal_cases

    assert set(rows) == {c.id for c in CATALOGUE} | {c.id for c in terminal_cases()}
    for case in CATALOGUE[::37]:
        assert case.title_zh in rows[case.id] and case.title_en in rows[case.id]


def test_faults_and_cases_keep_names_whole_in_a_narrow_terminal() -> None:
    from conformance.card.faults import FAULTS

    faults = in_terminal("card", "faults", columns=60)
    lines = [line.strip() for line in faults.splitlines()]
    assert all(name in lines for name in FAULTS), "a fault name is cut or folded"
    cases = in_terminal("cases", "list", "--group", "SEC,REC", columns=60)
    words = set(cases.split())
    assert {c.id for c in CATALOGUE if c.group in ("SEC", "REC")} <= words
    assert all(len(line) <= 60 for line in cases.splitlines())


def test_a_wide_terminal_gets_a_table_with_whole_ids() -> None:
    out = in_terminal("cases", "list", "--group", "PIN", columns=140)
    assert "┏" in out
    assert all(f"│ {c.id}" in out for c in CATALOGUE if c.group == "PIN")


def test_a_table_folds_text_but_never_a_name() -> None:
    buffer = io.StringIO()
    out = Console(file=buffer, force_terminal=True, width=90, color_system=None)
    name = "a_rather_long_fault_name_that_must_stay_whole"
    print_table(out, "t", ("name", "text"), [(name, "word " * 60)])
    text = buffer.getvalue()
    assert f"│ {name} │" in text and "…" not in text


# --------------------------------------------------------------------------- rhc cases


def test_cases_list_filters_by_group(capsys) -> None:
    code, out, _ = run(capsys, "cases", "list", "--json", "--group", "SEC", "--group", "pin")
    listed = json.loads(out)
    assert code == 0 and {c["group"] for c in listed} == {"SEC", "PIN"}
    assert len(listed) == sum(c.group in ("SEC", "PIN") for c in CATALOGUE)
    code, out, _ = run(capsys, "cases", "list", "--json", "--group", "ATR,CYC")
    assert {c["group"] for c in json.loads(out)} == {"ATR", "CYC"}


def test_an_unknown_group_is_one_line_and_exit_2(capsys) -> None:
    code, out, err = run(capsys, "cases", "list", "--group", "SEC,XYZ")
    assert code == 2 and not out and len(err.strip().splitlines()) == 1
    assert "XYZ" in err and all(group in err for group in GROUPS)


def test_cases_show_prints_the_whole_specification(capsys) -> None:
    case = next(c for c in CATALOGUE if c.id == "SEC-RD-DF02-EF07-005")
    code, out, _ = run(capsys, "cases", "show", case.id)
    assert code == 0
    for text in (case.id, case.group, case.title_zh, case.title_en, case.purpose,
                 case.preconditions, case.applicability, "6982", case.reference_choice,
                 case.severity, "steps", "mandatory"):
        assert text in out, text
    code, out, _ = run(capsys, "cases", "show", case.id.lower(), "--json")
    spec = json.loads(out)
    assert code == 0 and spec["id"] == case.id and spec["expected_sw"] == ["6982"]
    assert {"steps", "purpose", "preconditions", "mandatory", "reference_choice",
            "severity"} <= set(spec)


def test_cases_show_of_an_unknown_id_suggests_close_ones(capsys) -> None:
    code, out, err = run(capsys, "cases", "show", "SEC-RD-DF02-EF07-05")
    assert code == 2 and not out and len(err.strip().splitlines()) == 1
    assert "SEC-RD-DF02-EF07-005" in err
    code, _, err = run(capsys, "cases", "show", "NOTHING")
    assert code == 2 and "rhc cases list" in err


# --------------------------------------------------------------------------- help


def _parsers(parser: argparse.ArgumentParser, name: str = "rhc"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_option_of_every_command_has_help_with_its_default() -> None:
    commands = list(_parsers(build_parser()))
    assert len(commands) >= 14
    for name, parser in commands:
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            flag = action.option_strings[0] if action.option_strings else action.dest
            assert action.help and action.help.strip(), f"{name} {flag}: no help"
            if action.option_strings and not isinstance(action, argparse._StoreTrueAction):
                text = formatter._expand_help(action)  # type: ignore[attr-defined]
                assert "default" in text, f"{name} {flag}: help names no default: {text}"
                if action.default not in (None, [], False):
                    assert str(action.default) in text or "(default" in action.help, flag


# --------------------------------------------------------------------------- rhc run


def test_a_failing_run_names_its_cases_with_reasons_json_junit_and_steps(capsys,
                                                                          tmp_path) -> None:
    out = tmp_path / "run"
    code, stdout, stderr = run(capsys, "run", "--fault", "constant_challenge", "-k",
                               "CMD-CHAL or CMD-T0", "--out", str(out), "--json")
    assert code == 1
    summary = json.loads(stdout)  # stdout is the JSON alone: the human text is on stderr
    assert summary["conclusion"] == "NOT_CONFORMANT" and summary["exit_code"] == 1
    assert summary["errors"] == [] and summary["statement"]["zh"]
    failing = {c["id"]: c for c in summary["cases"]}
    assert "CMD-CHAL-001" in failing and failing["CMD-CHAL-001"]["verdict"] == "FAIL"
    reason = failing["CMD-CHAL-001"]["reason"]
    assert reason and "reason_zh" in failing["CMD-CHAL-001"]
    assert summary["counts"]["FAIL"] == len(failing)
    assert Path(summary["paths"]["report_pdf"]).is_file()
    assert Path(summary["paths"]["junit"]).is_file()
    # the human text: the table of the cases to look at, whole IDs, and the report's steps
    assert "cases to look at" in stderr
    assert any(line.startswith("CMD-CHAL-001\tFAIL\t") for line in stderr.splitlines())
    for step in ("rendering report.pdf", "signing report.xml", "verifying"):
        assert step in stderr
    # junit.xml: classname = group, name = ID + title, the reason in the failure message
    cases = {c.get("name"): c for c in ET.parse(out / "junit.xml").iter("testcase")}
    title = next(c.title_en for c in CATALOGUE if c.id == "CMD-CHAL-001")
    testcase = cases[f"CMD-CHAL-001 {title}"]
    assert testcase.get("classname") == "CMD"
    failure = testcase.find("failure")
    assert failure is not None and reason in failure.get("message", "")
    assert testcase.find("properties") is None  # the labels were used up, xunit2 stays valid
    assert not any(name.startswith("test_case[") for name in cases)
    # Allure: the reason in its status message and in the description
    results = (out / "allure-results").glob("*-result.json")
    allure = [json.loads(f.read_text("utf-8")) for f in results]
    chal = next(r for r in allure if r.get("name", "").startswith("CMD-CHAL-001"))
    assert reason in chal["statusDetails"]["message"] and reason in chal["description"]


def test_junit_names_also_under_xdist(tmp_path) -> None:
    """The pytest door with workers: the names travel with the reports to the controller."""
    junit = tmp_path / "junit.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "xdist", "-n",
         "2", "--pyargs", "conformance.pytest_catalogue", "--rhc-plan", "selftest", "-k",
         "ATR or CMD-CHAL", "--rhc-fault", "constant_challenge",
         "--rhc-out", str(tmp_path / "run"), f"--junitxml={junit}"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    cases = list(ET.parse(junit).iter("testcase"))
    assert result.returncode == 1 and len(cases) >= 7, result.stdout[-2000:]
    assert {c.get("classname") for c in cases} == {"ATR", "CMD"}
    assert any(c.get("name", "").startswith("CMD-CHAL-001 GET CHALLENGE") for c in cases)


def test_json_of_a_run_that_ran_nothing_names_the_error(capsys, tmp_path) -> None:
    code, stdout, stderr = run(capsys, "run", "-k", "NOTHING-MATCHES", "--out",
                               str(tmp_path / "run"), "--json")
    summary = json.loads(stdout)
    assert code == 2 and summary["conclusion"] is None and summary["exit_code"] == 2
    assert "keeps none" in summary["errors"][0] and "keeps none" in stderr


def test_the_evidence_carries_wall_clock_times_in_the_lab_zone(capsys, tmp_path) -> None:
    out = tmp_path / "run"
    before = dt.datetime.now(dt.UTC)
    code, _, _ = run(capsys, "run", "-k", "ATR", "--out", str(out), "--quiet", "--no-report")
    after = dt.datetime.now(dt.UTC)
    assert code == 3
    entries = [json.loads(line) for path in sorted((out / "evidence").glob("*.jsonl"))
               for line in path.read_text("utf-8").splitlines()]
    assert entries
    for entry in entries:
        start = dt.datetime.fromisoformat(entry["wall_start"])
        end = dt.datetime.fromisoformat(entry["wall_end"])
        assert entry["wall_start"].endswith("+08:00")  # the demo lab: Asia/Shanghai
        assert before - dt.timedelta(seconds=1) <= start <= end <= after + dt.timedelta(1)
        spent = (end - start).total_seconds() - (entry["t_end"] - entry["t_start"])
        assert abs(spent) < 0.002  # the same interval as the monotonic offsets
    assert list(entries[0])[:5] == ["seq", "t_start", "t_end", "wall_start", "wall_end"]


def test_wall_clock_maps_monotonic_readings() -> None:
    zone = load_lab().tz
    clock = WallClock(zone=zone, wall=dt.datetime(2026, 12, 1, 16, 30, tzinfo=dt.UTC),
                      mono=100.0)
    assert clock.at(100.0) == "2026-12-02T00:30:00.000+08:00"  # Beijing: the next day
    assert clock.at(101.25) == "2026-12-02T00:30:01.250+08:00"


def test_a_bad_lab_time_zone_stops_the_run_before_it_starts(capsys, tmp_path) -> None:
    lab = tmp_path / "lab.yaml"
    lab.write_text(re.sub(r"(?m)^timezone:.*$", "timezone: Mars/Olympus",
                          DEMO_LAB.read_text("utf-8")), "utf-8")
    code, _, err = run(capsys, "run", "-k", "ATR", "--lab", str(lab), "--out",
                       str(tmp_path / "run"), "--quiet")
    assert code == 2 and "Mars/Olympus" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "summary.json").exists()


# --------------------------------------------------------------------------- INCOMPLETE


def _result(case_id: str, verdict: Verdict, mandatory: bool = True, **extra: str) -> CaseResult:
    return CaseResult(id=case_id, group="SEC", title_zh="", title_en="", clause="", purpose="",
                      applicability="True", expected_sw=[], mandatory=mandatory,
                      verdict=verdict, reason=f"reason of {case_id}", **extra)


def _summary(missing: int = 0) -> RunSummary:
    return RunSummary.from_dict({
        "verdict": "INCOMPLETE", "counts": {}, "cases": [], "card": {}, "product": {},
        "plan": {}, "profile": {}, "bench": {}, "suite_version": "", "started": "",
        "finished": "", "scope": {"scope": "partial", "mandatory_missing": missing}})


def test_why_incomplete_names_the_unjudged_mandatory_cases() -> None:
    results = [_result("SEC-1", Verdict.PASS), _result("SEC-2", Verdict.INCONCLUSIVE),
               _result("SEC-3", Verdict.ERROR), _result("SEC-4", Verdict.INCONCLUSIVE, False)]
    reasons = why_incomplete(_summary(), results)
    assert reasons == ["2 mandatory cases could not be judged: SEC-2 (INCONCLUSIVE), "
                       "SEC-3 (ERROR)"]


def test_why_incomplete_says_the_run_stopped_or_was_a_selection() -> None:
    stopped = ["the run was interrupted (Ctrl-C, or pytest failed internally)"]
    assert why_incomplete(_summary(missing=5), [_result("SEC-1", Verdict.PASS)],
                          stopped) == stopped  # what it did not reach is not a selection
    reasons = why_incomplete(_summary(missing=5), [_result("SEC-2", Verdict.ERROR)])
    assert "5 mandatory cases of the catalogue were not in the run" in reasons[-1]
    assert why_incomplete(_summary(), []) == ["no case was recorded"]


def test_an_interrupted_run_says_why_it_is_incomplete(tmp_path) -> None:
    import signal
    import time

    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "conformance.cli", "run", "--out", str(out), "--no-report",
         "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=tmp_path,
        text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list((out / "evidence").glob("*"))) < 20:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr
    summary = json.loads(stdout)
    assert summary["conclusion"] == "INCOMPLETE"
    assert any("interrupted" in reason for reason in summary["incomplete"])
    assert any(re.match(r"only \d+ of the \d+ selected cases ran", r)
               for r in summary["incomplete"])
    assert "INCOMPLETE because the run was interrupted" in stderr


def test_the_reason_shows_both_languages_and_the_measured_value() -> None:
    result = _result("SEC-2", Verdict.FAIL)
    assert bilingual_reason(result) == "reason of SEC-2"
    result.reason_zh = "原因"  # type: ignore[attr-defined]
    result.expected, result.measured = "9000", "6982"  # type: ignore[attr-defined]
    assert bilingual_reason(result).splitlines() == [
        "原因", "reason of SEC-2", "期望 expected: 9000; 实测 measured: 6982"]


# --------------------------------------------------------------------------- junit.xml


def test_relabel_names_cases_by_group_and_title_and_keeps_the_rest(tmp_path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="rhc">'
        '<testcase classname="test_catalogue" name="test_case[SEC-1]"><properties>'
        '<property name="rhc.group" value="SEC"/><property name="rhc.id" value="SEC-1"/>'
        '<property name="rhc.title" value="UK does not grant reading"/>'
        '<property name="other" value="kept"/></properties>'
        '<failure message="FAIL: 原因 / reason"/></testcase>'
        '<testcase classname="tests.test_x" name="test_y"/></testsuite></testsuites>',
        encoding="utf-8")
    assert relabel(path) == 1
    first, second = ET.parse(path).iter("testcase")
    assert first.get("classname") == "SEC" and first.get("name") == "SEC-1 UK does not grant "\
        "reading"
    assert [p.get("name") for p in first.iter("property")] == ["other"]
    assert first.find("failure").get("message") == "FAIL: 原因 / reason"  # type: ignore[union-attr]
    assert second.get("classname") == "tests.test_x"
    assert relabel(tmp_path / "missing.xml") == 0


def test_cases_that_do_not_pass_are_named_while_the_run_goes(tmp_path) -> None:
    """pytest captures stderr while cases run; the progress lines go around the capture."""
    result = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", "--fault", "constant_challenge", "-k",
         "CMD-CHAL", "--out", str(tmp_path / "run"), "--no-report"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    lines = result.stderr.splitlines()
    live = next(i for i, line in enumerate(lines) if line.startswith("FAIL ")
                and "CMD-CHAL-001" in line)
    table = next(i for i, line in enumerate(lines) if "rhc bench self-test" in line)
    assert result.returncode == 1 and live < table, result.stderr
