"""The report as a lab issues it: lab, submission and bench files (schema-checked, one-line
errors, exit 2), report numbers from a per-lab sequence in the lab's time zone, and the PDF's
page furniture, statements and end mark."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from lxml import etree
from report_support import make_run

from conformance.cli import main
from conformance.lab import LabFileError, load_bench, load_lab, load_submission
from conformance.report import build_model, verify_report, write_report
from conformance.resources import DEMO_BENCH, DEMO_CA, DEMO_SUBMISSION, FIXTURES_DIR
from conformance.results import Verdict
from conformance.sequence import next_report_number

SUBMISSION = DEMO_SUBMISSION
BENCH = DEMO_BENCH
NS = {"r": "urn:rhc-conformance:report:1"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/setup.sh installs it)", pytrace=False)
    return path


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# schemas


def test_the_shipped_examples_pass_their_schemas() -> None:
    lab = load_lab()
    assert lab.timezone == "Asia/Shanghai" and lab.people.approver.name
    assert load_submission(SUBMISSION).samples[0].id
    assert load_bench(BENCH).environment.temperature.within


@pytest.mark.parametrize(
    ("option", "text", "named"),
    [
        ("lab", "code: X\nname_zh: a\n", "key name_en: Field required"),
        ("lab", (FIXTURES_DIR / "lab-demo.yaml").read_text("utf-8").replace(
            "Asia/Shanghai", "Mars/Olympus"), "key timezone: 'Mars/Olympus' is not an IANA"),
        ("submission", SUBMISSION.read_text("utf-8").replace("received: 2026-11-28",
                                                             "received: soon"),
         "key samples.0.received"),
        ("submission", SUBMISSION.read_text("utf-8") + "  - id: S2026-0001-01\n"
         "    description: d\n    condition: c\n    received: 2026-11-29\n",
         "sample id 'S2026-0001-01' is given twice"),
        ("bench", BENCH.read_text("utf-8").replace("min: 25", "min: 95"),
         "key environment.humidity: min 95 is above max 75"),
        ("bench", BENCH.read_text("utf-8").replace("    serial: TH-2025-017\n", ""),
         "key equipment.2.serial: Field required"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_key_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, text: str, named: str
) -> None:
    bad = _write(tmp_path / f"{option}.yaml", text)
    code = main(["run", "--out", str(tmp_path / "run"), f"--{option}", str(bad), "--no-report"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"rhc: error: --{option}: ") and named in err and str(bad) in err
    assert not (tmp_path / "run").exists()  # checked before anything was touched


def test_report_build_checks_the_files_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run(tmp_path / "run", 2)
    bad = _write(tmp_path / "bench.yaml", "environment: {}\n")
    assert main(["report", "build", str(tmp_path / "run"), "--bench", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--bench: bench file" in err
    assert not (tmp_path / "run" / "report.xml").exists()


# ---------------------------------------------------------------------------------------------
# report numbers


def _lab_in(tmp_path: Path) -> Path:
    text = (FIXTURES_DIR / "lab-demo.yaml").read_text("utf-8")
    return _write(tmp_path / "lab.yaml", text + f"state_dir: {tmp_path / 'state'}\n")


def test_report_numbers_never_repeat_and_carry_the_lab_local_date(tmp_path: Path) -> None:
    path = _lab_in(tmp_path)
    lab = load_lab(path)
    # 17:30 UTC on 1 December is 01:30 on 2 December in Beijing: the number's date is the 2nd
    late = dt.datetime(2026, 12, 1, 17, 30, tzinfo=dt.UTC)
    first = next_report_number(lab, late, lab_path=path)
    second = next_report_number(lab, late, lab_path=path)
    assert first == "RHC-DEMO-20261202-0001" and second == "RHC-DEMO-20261202-0002"
    log = (tmp_path / "state" / "issued.log").read_text("utf-8").splitlines()
    assert [line.split("\t")[0] for line in log] == [first, second]
    assert log[0].split("\t")[1] == "2026-12-02T01:30:00+08:00"


def _take(path: str) -> str:
    return next_report_number(load_lab(path), dt.datetime.now(dt.UTC), lab_path=path)


def test_concurrent_runs_get_different_numbers(tmp_path: Path) -> None:
    path = str(_lab_in(tmp_path))
    with ProcessPoolExecutor(max_workers=4) as pool:
        numbers = list(pool.map(_take, [path] * 24))
    assert len(set(numbers)) == 24
    assert (tmp_path / "state" / "report-sequence").read_text().strip() == "24"


def test_a_damaged_counter_is_an_error_not_a_repeat(tmp_path: Path) -> None:
    path = _lab_in(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "report-sequence").write_text("garbage\n")
    with pytest.raises(LabFileError, match=r"not a number: restore it from issued\.log"):
        next_report_number(load_lab(path), dt.datetime.now(dt.UTC), lab_path=path)


# ---------------------------------------------------------------------------------------------
# the issued report


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("issued") / "run"
    make_run(run, 12, verdicts={2: Verdict.FAIL, 5: Verdict.INCONCLUSIVE, 7: Verdict.ERROR})
    write_report(run, submission=SUBMISSION, bench=BENCH)
    return run


def _pages(pdf: Path) -> list[str]:
    out = subprocess.run([_tool("pdftotext"), "-layout", str(pdf), "-"], capture_output=True,
                         text=True, check=True).stdout
    return [page for page in out.split("\f") if page.strip()]


def test_every_page_carries_the_report_number_and_page_x_of_y(issued: Path) -> None:
    number = etree.parse(str(issued / "report.xml")).getroot().get("id")
    assert number and number.startswith("RHC-DEMO-")
    pages = _pages(issued / "report.pdf")
    assert len(pages) >= 3
    for index, page in enumerate(pages, start=1):
        assert number in page, f"page {index}"
        assert f"第 {index} 页 共 {len(pages)} 页" in page, f"page {index}"


def test_pages_one_and_two_and_the_last_page(issued: Path) -> None:
    pages = _pages(issued / "report.pdf")
    front = pages[0] + pages[1]
    for text in ("委托单位 Client", "演示智能卡有限公司", "S2026-0001-01",
                 "收样日期 received 2026-11-28", "检测日期 Date of testing",
                 "签发日期 Date of issue", "检测地点 Place of testing",
                 "检测依据 Test basis", "检测结论 Conclusion", "检测 Tested by", "审核 Reviewed by",
                 "批准 Approved by", "演示批准人", "温度 Temperature", "TH-2025-017", "2027-06-30"):
        assert text in front, text
    last = pages[-1]
    assert "本报告仅对所检样品负责" in last
    assert "The results relate only to the samples tested" in last
    assert "未经本实验室书面批准，不得部分复制本报告" in last
    assert "shall not be reproduced except in full" in last
    assert "以下空白" in last and "End of report" in last


def test_times_are_lab_local_with_their_offset(issued: Path) -> None:
    root = etree.parse(str(issued / "report.xml")).getroot()
    assert root.get("generated", "").endswith("+08:00")
    assert root.findtext("r:header/r:started", namespaces=NS).endswith("+08:00")
    assert root.findtext("r:header/r:timezone", namespaces=NS) == "Asia/Shanghai"
    front = "".join(_pages(issued / "report.pdf")[:2])
    assert front.count("+08:00") >= 3


def test_the_xml_carries_lab_submission_bench_and_case_facts(issued: Path) -> None:
    root = etree.parse(str(issued / "report.xml")).getroot()
    assert root.findtext("r:lab/r:placeOfTesting", namespaces=NS)
    assert root.find("r:submission/r:sample[@id='S2026-0001-01']", NS).get("received") == \
        "2026-11-28"
    reading = root.find("r:bench/r:environment/r:reading[@quantity='humidity']", NS)
    assert reading.get("within") == "true"
    assert root.find("r:bench/r:equipment[@id='EQ-03']", NS).get("calibrationDue") == "2027-03-31"
    case = root.find("r:cases/r:case", NS)
    for tag in ("requirement", "expected", "measured", "reasonZh"):
        assert case.find(f"r:{tag}", NS) is not None, tag
    assert len(root.find("r:manifest/r:evidence", NS).get("sha256")) == 64
    assert verify_report(issued, DEMO_CA).ok


def test_failures_have_their_own_section_with_the_evidence(issued: Path) -> None:
    text = "".join(_pages(issued / "report.pdf"))
    assert "Failures and inconclusive cases" in text
    assert "FS-DF01-002" in text and "SW 6A82 instead of 9000 (case 2)" in text
    assert "00B20104" in text  # the evidence excerpt of the failing case
    assert "测试系统错误 ERROR (harness)" in text and "测试错误 ERROR" not in text
    assert "card(s)" not in text
    # one digest in place of a list of every evidence file's
    assert text.count("evidence/") < 5


def test_a_changed_evidence_digest_is_named(issued: Path, tmp_path: Path) -> None:
    from conformance.report.verify import VerifyResult, _check_evidence_digest

    root = etree.parse(str(issued / "report.xml")).getroot()
    element = root.find("r:manifest/r:evidence", NS)
    element.set("sha256", "0" * 64)
    result = VerifyResult(ok=False, report=issued / "report.xml")
    _check_evidence_digest(element, {"evidence/A.jsonl": ("A", "1" * 64)}, result)
    assert any("evidence digest printed in the report" in p for p in result.problems)


def test_deviations_out_of_limits_and_calibration_past_due(tmp_path: Path) -> None:
    bench = _write(tmp_path / "bench.yaml", BENCH.read_text("utf-8")
                   .replace("value: 45", "value: 81")
                   .replace("calibration_due: 2027-03-31", "calibration_due: 2020-01-31"))
    make_run(tmp_path / "run", 2)
    model = build_model(tmp_path / "run", bench=bench)
    texts = [d.en for d in model.deviations]
    assert any("relative humidity 81 %RH (limits 25–75 %RH)" in t for t in texts), texts
    assert any("EQ-03" in t and "past due" in t for t in texts), texts
    reader = next(row for row in model.equipment if row.item.id == "EQ-01")
    assert reader.used and reader.pcsc_name == "Virtual PCD 00 00"  # joined with PC/SC
    assert reader.driver == "vsmartcard-vpcd 0.9" and reader.pcsc_lite == "2.0.3"


def test_summary_records_the_files_and_report_build_reuses_them(tmp_path: Path) -> None:
    make_run(tmp_path / "run", 2)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text("utf-8"))
    summary["submission"] = {**json.loads(json.dumps(
        load_submission(SUBMISSION).model_dump(mode="json"))), "source": str(SUBMISSION)}
    summary["report_number"] = "RHC-DEMO-20261201-0042"
    summary["lab"] = {**load_lab().model_dump(mode="json")}
    (tmp_path / "run" / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    model = build_model(tmp_path / "run")
    assert model.report_id == "RHC-DEMO-20261201-0042"
    assert model.submission is not None and model.submission.client.name_zh



def test_a_pcsc_reader_the_bench_file_does_not_list_is_a_deviation(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_run(run, 2)
    summary = json.loads((run / "summary.json").read_text("utf-8"))
    summary["card"]["kind"] = "pcsc"
    summary["bench"]["readers"] = ["ACS ACR39U ICC Reader 00 00"]
    (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    model = build_model(run, bench=BENCH)
    assert any("'ACS ACR39U ICC Reader 00 00' used in the run is not in the bench file"
               in d.en for d in model.deviations)
    assert not any(row.used for row in model.equipment if row.item.kind == "reader")


def test_a_sample_that_is_not_the_card_tested_is_a_deviation(tmp_path: Path) -> None:
    make_run(tmp_path / "run", 2)  # the synthetic card reports chip serial CSN-00000000
    model = build_model(tmp_path / "run", submission=SUBMISSION)
    assert any("registered with chip serial HC00000001" in d.en for d in model.deviations)


def test_the_interface_fields_reach_every_copy(tmp_path: Path) -> None:
    """requirement_zh/en, source, expected, measured and reason_zh of a CaseResult (the basis
    of issue 9) are printed in the per-case list and the findings, and signed in the XML."""
    from conformance.report.manifest import Manifest
    from conformance.report.render import render_html
    from conformance.report.sign import load_signing_material, signature_info, signing_now
    from conformance.report.xml import build_xml, check_schema

    make_run(tmp_path / "run", 3, verdicts={1: Verdict.FAIL})
    model = build_model(tmp_path / "run")
    failed = model.cases[1].result
    facts = {"requirement": "REQ-RECORD-SW", "requirement_zh": "读记录成功时返回 9000",
             "requirement_en": "A record read answers 9000", "source": "WS/T 543.4 §6.3",
             "expected": "9000", "measured": "6A82", "reason_zh": "状态字为 6A82，而非 9000"}
    for key, value in facts.items():
        setattr(failed, key, value)
    sig = signature_info(load_signing_material(), signing_now())
    for html in (render_html(model, sig), render_html(model, sig, pdf=True)):
        for value in facts.values():
            if value != "REQ-RECORD-SW":
                assert value in html, value
    doc = build_xml(model, Manifest(files=[], pdf=None))
    check_schema(doc)
    case = doc.find(f"r:cases/r:case[@id='{failed.id}']", NS)
    assert case.find("r:requirement", NS).get("key") == "REQ-RECORD-SW"
    text = case.findtext("r:requirement/r:text[@lang='zh']", namespaces=NS)
    assert text == facts["requirement_zh"]
    assert case.findtext("r:measured", namespaces=NS) == "6A82"
    assert case.findtext("r:reasonZh", namespaces=NS) == "状态字为 6A82，而非 9000"


def test_a_report_of_the_earlier_schema_is_named_as_such(issued: Path, tmp_path: Path) -> None:
    run = tmp_path / "old"
    shutil.copytree(issued, run)
    xml = run / "report.xml"
    xml.write_text(xml.read_text("utf-8").replace('schemaVersion="2"', 'schemaVersion="1"', 1),
                   encoding="utf-8")
    result = verify_report(run, DEMO_CA)
    assert not result.ok
    assert result.problems == [result.problems[0]] and "schema version 1" in result.problems[0]


def test_a_run_records_lab_local_times_its_number_and_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "UTC")  # the lab's zone decides, not the machine's
    lab = _write(tmp_path / "lab.yaml", (FIXTURES_DIR / "lab-demo.yaml").read_text("utf-8")
                 .replace("Asia/Shanghai", "Asia/Tokyo")
                 + f"state_dir: {tmp_path / 'state'}\n")
    out = tmp_path / "run"
    code = main(["run", "--out", str(out), "--plan", "selftest", "-k", "ATR-001", "--quiet",
                 "--no-report", "--lab", str(lab), "--submission", str(SUBMISSION),
                 "--bench", str(BENCH)])
    capsys.readouterr()
    assert code == 3  # NO_FAILURES: the virtual card
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["timezone"] == "Asia/Tokyo"
    assert summary["started_at"].endswith("+09:00") and summary["finished_at"].endswith("+09:00")
    local_day = dt.datetime.fromisoformat(summary["started_at"]).strftime("%Y%m%d")
    assert summary["report_number"] == f"RHC-DEMO-{local_day}-0001"
    assert summary["lab"]["sha256"] and summary["lab"]["timezone"] == "Asia/Tokyo"
    assert summary["submission"]["samples"][0]["id"] == "S2026-0001-01"
    assert summary["bench_file"]["equipment"][0]["id"] == "EQ-01"
