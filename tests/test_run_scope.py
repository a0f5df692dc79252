"""What a run stands for and that nothing it recorded is lost.

The subject is explicit (--reader means a PC/SC card; the virtual card is a bench self-test on
page 1 of every copy); only a certification plan covering every mandatory case on a product
sample is CONFORMANT, whatever copy one reads; a plan or selection that selects nothing is a
usage error; --out never overwrites a run unless --replace; every input is checked before the
first APDU; a case timeout, a full disk or a crash of one case leaves every result recorded.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from casekit import catalogue, new_card, runner_for
from report_support import make_run

from conformance.cli import main
from conformance.config import ConfigError, build_config
from conformance.report import build_model, verify_report, write_report
from conformance.resources import DEMO_P12
from conformance.results import (
    CaseResult,
    Conclusion,
    Scope,
    Verdict,
    conclude,
    read_results,
    run_scope,
    statement,
)
from conformance.runner import CaseRunner


def rhc(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root by its bytes: to prove a directory was not touched."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def result(case_id: str, verdict: Verdict, *, mandatory: bool = True) -> CaseResult:
    return CaseResult(id=case_id, group="G", title_zh="", title_en="", clause="", purpose="",
                      applicability="True", expected_sw=[], mandatory=mandatory,
                      verdict=verdict)


# -- 1. the subject of a run is explicit --------------------------------------------------


def test_virtual_card_with_a_reader_is_a_usage_error(capsys, tmp_path) -> None:
    code, _, err = rhc(capsys, "run", "--card", "virtual", "--reader", "X", "--out",
                       str(tmp_path / "r"))
    assert code == 2 and "--reader" in one_line(err)
    assert not (tmp_path / "r").exists()


def test_reader_alone_means_a_pcsc_card() -> None:
    assert build_config({"reader": "Some Reader 00 00"}).card == "pcsc"


def test_no_such_reader_is_a_bench_error_and_no_report(capsys, tmp_path) -> None:
    out = tmp_path / "r"
    code, _, err = rhc(capsys, "run", "--reader", "No Such Reader", "--product",
                       "profiles/products/minimal.yaml", "--out", str(out), "--quiet")
    assert code == 2 and "bench" in one_line(err) and "no case ran" in err
    assert not out.exists()  # no summary, no report: nothing that could read CONFORMANT


def test_the_bench_card_in_a_reader_is_a_bench_self_test() -> None:
    """`rhc card serve` puts the virtual card into a reader: still no product."""
    from conformance.certification import CertificationRun

    run = CertificationRun(build_config({"reader": "Virtual PCD 00 00"}))
    run.card = {"chip_serial": "HC00000001", "card_number_factor": "4101000012345678"}
    assert "default.yaml" in run.bench_sample()
    run.results = [result("ATR-001", Verdict.PASS)]
    assert run.summary(False).scope["scope"] == "bench_self_test"
    run.card = {"chip_serial": "VENDOR0001", "card_number_factor": "4101000012345678"}
    assert run.bench_sample() == ""


def test_virtual_card_report_says_bench_self_test_on_page_one(tmp_path) -> None:
    run = tmp_path / "run"
    make_run(run, 8, card="virtual")
    paths = write_report(run)
    assert paths.conclusion == "NO_FAILURES"
    xml = paths.xml.read_text("utf-8")
    assert 'scope="bench_self_test"' in xml and "Bench self-test report (virtual card)" in xml
    html = paths.html.read_text("utf-8")
    cover = html[: html.index('<section class="page">')]
    assert "测试台自检报告（虚拟卡）" in cover and "not a product certification" in cover
    assert "CSN-00000000" in cover and "ATR 3B6D" in cover  # the sample that was in the reader
    page1 = subprocess.run(["pdftotext", "-l", "1", str(paths.pdf), "-"], capture_output=True,
                           text=True, check=True).stdout
    assert "Bench self-test report (virtual card)" in page1 and "NO_FAILURES" in page1
    assert "测试台自检" in page1


# -- 2. conclusions by scope ---------------------------------------------------------------


def test_one_function_decides_by_scope() -> None:
    passed = [result("A-1", Verdict.PASS), result("A-2", Verdict.NOT_APPLICABLE)]
    failed = [*passed, result("A-3", Verdict.FAIL)]
    assert conclude(passed, complete=True, scope=Scope.CERTIFICATION) is Conclusion.CONFORMANT
    for scope in (Scope.PARTIAL, Scope.BENCH_SELF_TEST):
        assert conclude(passed, complete=True, scope=scope) is Conclusion.NO_FAILURES
        assert conclude(failed, complete=True, scope=scope) is Conclusion.NOT_CONFORMANT
        assert conclude(passed, complete=False, scope=scope) is Conclusion.INCOMPLETE
    assert conclude([], complete=True) is Conclusion.INCOMPLETE  # nothing tested
    zh, en = statement(Conclusion.NO_FAILURES, Scope.PARTIAL, passed * 147, 780)
    assert en == "no failures in 294 of 780 cases — not a certification"
    assert "已检 294 项（目录共 780 项），未发现不通过" in zh and "非认证" in zh


def test_scope_needs_a_certification_plan_every_mandatory_case_and_a_product() -> None:
    results = [result("A-1", Verdict.PASS), result("A-2", Verdict.NOT_APPLICABLE)]

    def scope(**kw: object) -> str:
        args = {"card": "pcsc", "plan_kind": "certification", "catalogue": 3,
                "mandatory_ids": ["A-1", "A-2"], "results": results, **kw}
        return run_scope(**args)["scope"]  # type: ignore[arg-type]

    assert scope() == "certification"
    assert scope(plan_kind="subset") == "partial"
    assert scope(mandatory_ids=["A-1", "A-2", "A-3"]) == "partial"  # a group left out
    assert scope(card="virtual") == "bench_self_test"


def test_selftest_is_not_conformant_anywhere(capsys, tmp_path) -> None:
    out = tmp_path / "run"
    code, _, err = rhc(capsys, "run", "--plan", "selftest", "--out", str(out), "--quiet")
    assert code == 3, err
    assert f"NO_FAILURES: no failures in 294 of {len(catalogue())}" in " ".join(err.split())
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["verdict"] == "NO_FAILURES" and summary["scope"]["ran"] == 294
    xml = (out / "report.xml").read_text("utf-8")
    assert '<conclusion value="NO_FAILURES"' in xml and 'value="CONFORMANT"' not in xml
    html = (out / "report.html").read_text("utf-8")
    assert 'class="conclusion conclusion-no_failures"' in html
    assert '<div class="value-en">NO_FAILURES</div>' in html and "符合</div>" not in html
    page1 = subprocess.run(["pdftotext", "-l", "1", str(out / "report.pdf"), "-"],
                           capture_output=True, text=True, check=True).stdout
    assert "NO_FAILURES" in page1 and "\nCONFORMANT\n" not in page1
    assert verify_report(out).conclusion == "NO_FAILURES"


def test_a_subset_plan_on_a_product_is_not_conformant_either(tmp_path) -> None:
    run = tmp_path / "run"
    make_run(run, 8, plan_kind="subset")
    model = build_model(run)
    assert model.conclusion == "NO_FAILURES" and model.scope == "partial"
    assert "not a certification" in model.title_en and "not a certification" in model.statement_en
    make_run(tmp_path / "cert", 8)
    assert build_model(tmp_path / "cert").conclusion == "CONFORMANT"


@pytest.mark.parametrize(
    ("selection", "named"),
    [
        ("include: {groups: [ATR, NOPE]}", "no group NOPE"),
        ('include: {ids: ["ATR-*", "ZZZ-*"]}', "ZZZ-* match no case"),
        ('include: {groups: [ATR]}\nexclude: {groups: [ATR]}', "selects no case"),
    ],
)
def test_a_plan_selecting_wrongly_is_a_usage_error(capsys, tmp_path, selection, named) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"name: p\ntitle_zh: p\ntitle_en: p\n{selection}\n", encoding="utf-8")
    code, _, err = rhc(capsys, "run", "--plan", str(plan), "--out", str(tmp_path / "r"))
    assert code == 2 and named in one_line(err)
    assert not (tmp_path / "r").exists()  # before any APDU: nothing written
    with pytest.raises(ConfigError, match="--plan"):
        build_config({"plan": str(plan)})


def test_a_k_selecting_nothing_is_a_usage_error(capsys, tmp_path) -> None:
    out = tmp_path / "r"
    code, _, err = rhc(capsys, "run", "-k", "NO-SUCH-CASE", "--out", str(out), "--quiet")
    assert code == 2 and "keeps none" in one_line(err)
    assert not out.exists()


# -- 6. nothing recorded is lost -----------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["run", "-k", "ATR", "--out", str(out), "--quiet", "--no-report"]) == 3
    return out


def test_out_holding_a_run_is_refused_and_untouched(capsys, finished_run) -> None:
    before = tree_digest(finished_run)
    code, _, err = rhc(capsys, "run", "-k", "CMD", "--out", str(finished_run), "--quiet")
    assert code == 2 and "--replace" in one_line(err)
    assert tree_digest(finished_run) == before


def test_replace_removes_the_earlier_run_first(capsys, tmp_path) -> None:
    out = tmp_path / "run"
    assert rhc(capsys, "run", "-k", "ATR", "--out", str(out), "--quiet", "--no-report")[0] == 3
    stale = out / "evidence" / "STALE-001.jsonl"
    stale.write_text("{}\n", encoding="utf-8")
    code, _, err = rhc(capsys, "run", "-k", "ATR-001", "--out", str(out), "--quiet",
                       "--no-report", "--replace")
    assert code == 3, err
    assert not stale.exists() and [r.id for r in read_results(out)] == ["ATR-001"]


def test_replace_never_removes_what_is_not_a_run(capsys, tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    code, _, err = rhc(capsys, "run", "--out", str(tmp_path), "--replace")
    assert code == 2 and "not removing" in one_line(err)
    assert (tmp_path / "notes.txt").read_text("utf-8") == "keep me"


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--lab", "no-such-lab.yaml"], "--lab"),
        (["--sign-key", "no-such.pem", "--sign-cert", "no-such.pem"], "no-such.pem"),
        (["--sign-p12", str(DEMO_P12)], "passphrase"),  # RHC_SIGN_PASSPHRASE not set
    ],
)
def test_bad_signing_inputs_stop_the_run_before_any_case(
    capsys, tmp_path, monkeypatch, flags, named
) -> None:
    monkeypatch.delenv("RHC_SIGN_PASSPHRASE", raising=False)
    out = tmp_path / "r"
    code, _, err = rhc(capsys, "run", *flags, "--out", str(out), "--quiet")
    assert code == 2 and named in one_line(err)
    assert not out.exists()


def test_report_build_reissues_the_report_of_a_finished_run(capsys, tmp_path, finished_run):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    code, _, err = rhc(capsys, "report", "build", str(run))
    assert code == 0, err
    assert verify_report(run).conclusion == "NO_FAILURES"
    assert rhc(capsys, "report", "build", str(tmp_path))[0] == 2  # not a run directory


def test_case_timeout_records_every_case(capsys, tmp_path) -> None:
    out = tmp_path / "run"
    code, _, err = rhc(capsys, "run", "-k", "CMD-CHAL or ATR", "--case-timeout", "0.005",
                       "--out", str(out), "--quiet", "--no-report")
    assert "INTERNALERROR" not in err and code == 2, err  # timed out cases: INCOMPLETE
    results = read_results(out)
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert len(results) == summary["scope"]["ran"] == len(summary["cases"]) > 6
    timed_out = [r for r in results if "case timeout after 0.005 s" in r.reason]
    assert timed_out and all(r.verdict is Verdict.INCONCLUSIVE for r in timed_out)


def test_a_full_disk_in_one_case_keeps_every_other_result(capsys, tmp_path, monkeypatch):
    original = CaseRunner._write_evidence

    def full_disk(self, result, stack, mark):  # type: ignore[no-untyped-def]
        if result.id == "ATR-002":
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, result, stack, mark)

    monkeypatch.setattr(CaseRunner, "_write_evidence", full_disk)
    out = tmp_path / "run"
    code, _, err = rhc(capsys, "run", "-k", "ATR", "--out", str(out), "--quiet", "--no-report")
    assert code == 2 and "Traceback" not in err
    results = {r.id: r for r in read_results(out)}
    assert len(results) == 6 and results["ATR-002"].verdict is Verdict.ERROR
    assert "No space left on device" in results["ATR-002"].reason
    assert all(r.verdict is Verdict.PASS for i, r in results.items() if i != "ATR-002")


def test_a_case_that_stops_exchanging_is_stopped_by_the_backstop(monkeypatch) -> None:
    import conformance.runner as runner_module

    def spin(context: object) -> None:
        while True:
            time.sleep(0.001)

    case = dataclasses.replace(catalogue()[0], body=spin)
    runner = runner_for(new_card())
    runner.case_timeout_s = 0.05
    monkeypatch.setattr(runner_module, "BACKSTOP_GRACE_S", 0.05)
    armed = signal.getitimer(signal.ITIMER_REAL)  # this session's own timeout, if any
    signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        started = time.monotonic()
        outcome = runner.run(case)
    finally:
        signal.setitimer(signal.ITIMER_REAL, *armed)
    assert time.monotonic() - started < 1.0
    assert outcome.verdict is Verdict.INCONCLUSIVE and "wherever it was" in outcome.reason
    assert runner.run(catalogue()[0]).verdict is Verdict.PASS  # the runner goes on
