"""The signed report: write → verify, tampering (named precisely), PKI, XSD, PDF, Allure.

Run directories are synthetic (tests/report_support.py) and written exactly as the pytest
plugin writes them. The demo PKI in fixtures/pki is the trust anchor unless a test makes its own.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from report_support import make_run

from conformance.report import (
    AllureUnavailable,
    ReportError,
    build_allure,
    build_model,
    verify_report,
    write_report,
)
from conformance.report.manifest import Manifest, collect
from conformance.report.model import load_untested
from conformance.report.xml import build_xml, check_schema
from conformance.resources import DEMO_CA, DEMO_CERT, DEMO_KEY, DEMO_P12
from conformance.results import Verdict

REPO_ROOT = Path(__file__).resolve().parents[1]

N_CASES = 24
# optional cases are 6, 13, 20 (make_run: mandatory = i % 7 != 6): still CONFORMANT
CONFORMANT_MIX = {3: Verdict.NOT_APPLICABLE, 6: Verdict.INCONCLUSIVE, 13: Verdict.NOT_APPLICABLE}


def _load_pki_script():
    spec = importlib.util.spec_from_file_location(
        "make_demo_pki", REPO_ROOT / "scripts" / "make-demo-pki.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/setup.sh installs it)", pytrace=False)
    return path


@pytest.fixture(scope="module")
def signed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CONFORMANT run, written with the demo key and a PDF; tests must not modify it."""
    run = tmp_path_factory.mktemp("signed") / "run"
    make_run(run, N_CASES, verdicts=CONFORMANT_MIX)
    paths = write_report(run)
    assert paths.conclusion == "CONFORMANT"
    assert paths.pdf is not None and paths.pdf.is_file()
    return run


@pytest.fixture
def run_copy(signed_run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(signed_run, target)
    return target


# ---------------------------------------------------------------------------------------------
# write + verify


def test_write_and_verify_with_trust(signed_run: Path) -> None:
    result = verify_report(signed_run, DEMO_CA)
    assert result.ok, result.problems
    assert result.chain_checked
    assert result.evidence_checked == N_CASES
    assert result.conclusion == "CONFORMANT"
    assert "DEMO ONLY" in result.signer
    assert result.demo and any(note.startswith("DEMO:") for note in result.notes)


def test_verify_accepts_the_xml_path_too(signed_run: Path) -> None:
    assert verify_report(signed_run / "report.xml", DEMO_CA).ok


def test_without_trust_the_chain_is_reported_unchecked(signed_run: Path) -> None:
    result = verify_report(signed_run)
    assert result.intact, result.problems
    assert not result.ok and result.status == "UNTRUSTED" and not result.chain_checked
    assert any("chain NOT checked" in note for note in result.notes)


def test_xmlsec1_verifies_independently(signed_run: Path) -> None:
    """No --id-attr needed: signxml's XAdES references (URI="", #SignedProperties, #KeyInfo)
    resolve in xmlsec1 1.2.37 as they are."""
    done = subprocess.run(
        [
            _tool("xmlsec1"),
            "--verify",
            "--trusted-pem",
            str(DEMO_CA),
            str(signed_run / "report.xml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "SignedInfo References (ok/all): 3/3" in done.stderr + done.stdout


def test_xmlsec1_rejects_a_changed_report(run_copy: Path) -> None:
    _set_verdict(run_copy / "report.xml", "ATR-000", "FAIL")
    done = subprocess.run(
        [_tool("xmlsec1"), "--verify", "--trusted-pem", str(DEMO_CA), str(run_copy / "report.xml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0


def test_report_xml_has_every_required_part(signed_run: Path) -> None:
    root = etree.parse(str(signed_run / "report.xml")).getroot()
    ns = {"r": "urn:rhc-conformance:report:1", "ds": "http://www.w3.org/2000/09/xmldsig#"}
    assert root.findtext("r:lab/r:accreditation", namespaces=ns)
    assert root.findtext("r:lab/r:tester/r:name", namespaces=ns)
    assert root.findtext("r:lab/r:approver/r:name", namespaces=ns)
    assert root.findtext("r:product/r:vendor", namespaces=ns)
    assert root.findtext("r:samples/r:sample/r:atr", namespaces=ns)
    assert root.findtext("r:samples/r:sample/r:chipSerial", namespaces=ns)
    assert root.findtext("r:bench/r:pcscLite", namespaces=ns) == "2.0.3"
    roles = [a.get("role") for a in root.iterfind("r:provenance/r:artifact", ns)]
    assert roles[:2] == ["profile", "plan"] and roles.count("run") == 2
    assert root.find("r:conclusion", ns).get("value") == "CONFORMANT"
    assert len(root.findall("r:groups/r:group", ns)) == 9
    cases = root.findall("r:cases/r:case", ns)
    assert len(cases) == N_CASES
    assert all(c.find("r:evidence", ns).get("sha256") for c in cases)
    assert len(root.findall("r:untested/r:requirement", ns)) >= 10
    refs = root.findall("ds:Signature/ds:SignedInfo/ds:Reference", ns)
    assert refs[0].get("URI") == ""
    c14n = root.find("ds:Signature/ds:SignedInfo/ds:CanonicalizationMethod", ns)
    assert c14n.get("Algorithm") == "http://www.w3.org/2006/12/xml-c14n11"


# ---------------------------------------------------------------------------------------------
# tampering


def _set_verdict(xml: Path, case_id: str, new: str) -> str:
    data = xml.read_text(encoding="utf-8")
    match = re.search(rf'<case id="{re.escape(case_id)}"[^>]*?verdict="([A-Z_]+)"', data)
    assert match, case_id
    old = match.group(1)
    xml.write_text(data[: match.start(1)] + new + data[match.end(1) :], encoding="utf-8")
    return old


@pytest.mark.parametrize("index", [0, 6, 13, N_CASES - 1])
def test_a_changed_verdict_is_named(run_copy: Path, index: int) -> None:
    case_id = build_model(run_copy).cases[index].result.id
    old = _set_verdict(run_copy / "report.xml", case_id, "FAIL")
    assert old != "FAIL"
    result = verify_report(run_copy, DEMO_CA)
    assert not result.ok
    assert any(f'<case id="{case_id}">' in p and "verdict=FAIL" in p for p in result.problems)
    assert any('Reference URI=""' in p for p in result.problems)
    # the conclusion no longer follows from the verdicts either
    assert any("<conclusion>" in p for p in result.problems)


def test_a_changed_evidence_byte_is_named(run_copy: Path) -> None:
    path = run_copy / "evidence" / "ATR-009.jsonl"
    data = bytearray(path.read_bytes())
    data[5] ^= 0x01
    path.write_bytes(bytes(data))
    result = verify_report(run_copy, DEMO_CA)
    assert not result.ok
    assert [p for p in result.problems if "evidence/ATR-009.jsonl" in p]
    assert len(result.problems) == 1, result.problems


def test_a_missing_evidence_file_is_named(run_copy: Path) -> None:
    (run_copy / "evidence" / "PERF-008.jsonl").unlink()
    result = verify_report(run_copy, DEMO_CA)
    assert result.problems == ["evidence file evidence/PERF-008.jsonl (case PERF-008) is missing"]


def test_a_changed_results_file_is_named(run_copy: Path) -> None:
    with (run_copy / "results.jsonl").open("a", encoding="utf-8") as handle:
        handle.write("\n")
    result = verify_report(run_copy, DEMO_CA)
    assert any(p.startswith("results.jsonl:") for p in result.problems)


def test_an_unsigned_or_foreign_file_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "report.xml").write_text("<other/>", encoding="utf-8")
    assert "root element" in verify_report(tmp_path).problems[0]
    (tmp_path / "report.xml").write_text("not xml at all", encoding="utf-8")
    assert "not well-formed" in verify_report(tmp_path).problems[0]
    assert "cannot read" in verify_report(tmp_path / "nothing.xml").problems[0]


def _c14n(data: bytes) -> bytes | None:
    try:
        return etree.tostring(etree.fromstring(data), method="c14n")
    except etree.XMLSyntaxError:
        return None


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    where=st.floats(0, 1, exclude_max=True),
    new=st.one_of(st.integers(0x20, 0x7E), st.integers(0, 255)),  # printable: still well-formed
)
def test_property_any_single_byte_change_of_the_xml_fails_cleanly(
    signed_run: Path, tmp_path: Path, where: float, new: int
) -> None:
    """A changed byte fails verification with a message (never a traceback), unless the change
    is invisible to canonical XML (e.g. a tab for a space between attributes)."""
    original = (signed_run / "report.xml").read_bytes()
    position = int(where * len(original))
    if original[position] == new:
        new ^= 0x20
    mutated = bytearray(original)
    mutated[position] = new
    run = tmp_path / "run"
    if not run.exists():
        shutil.copytree(signed_run, run)
    (run / "report.xml").write_bytes(bytes(mutated))
    result = verify_report(run, DEMO_CA)
    if result.ok:
        assert _c14n(bytes(mutated)) == _c14n(original), (position, new)
    else:
        assert result.problems and all(isinstance(p, str) and p for p in result.problems)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_property_any_single_byte_change_of_evidence_names_the_file(
    signed_run: Path, tmp_path: Path, data: st.DataObject
) -> None:
    run = tmp_path / "run"
    if not run.exists():
        shutil.copytree(signed_run, run)
    files = sorted((run / "evidence").iterdir())
    path = data.draw(st.sampled_from(files))
    original = path.read_bytes()
    position = data.draw(st.integers(0, len(original) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != original[position]))
    mutated = bytearray(original)
    mutated[position] = new
    path.write_bytes(bytes(mutated))
    try:
        result = verify_report(run, DEMO_CA)
    finally:
        path.write_bytes(original)
    assert not result.ok
    assert result.problems == [p for p in result.problems if f"evidence/{path.name}" in p]


# ---------------------------------------------------------------------------------------------
# keys and certificates


def test_a_certificate_from_another_ca_fails_the_chain(tmp_path: Path) -> None:
    pki = _load_pki_script()
    other_ca_key, other_ca = pki.make_ca("Some Other CA")
    key, cert = pki.make_signer("Impostor Lab", other_ca_key, other_ca)
    key_path, cert_path, ca_path = tmp_path / "k.pem", tmp_path / "c.pem", tmp_path / "ca.pem"
    key_path.write_bytes(pki._key_pem(key))
    cert_path.write_bytes(cert.public_bytes(pki.serialization.Encoding.PEM))
    ca_path.write_bytes(other_ca.public_bytes(pki.serialization.Encoding.PEM))
    run = tmp_path / "run"
    make_run(run, 5)
    paths = write_report(run, key=key_path, cert=cert_path, pdf=False)
    assert not paths.demo_key

    result = verify_report(run, DEMO_CA)
    assert not result.ok and result.intact and result.status == "UNTRUSTED"
    assert result.untrusted.startswith("certificate chain:") and "Impostor Lab" in result.untrusted
    assert verify_report(run, ca_path).ok  # the signature itself is fine
    done = subprocess.run(
        [_tool("xmlsec1"), "--verify", "--trusted-pem", str(DEMO_CA), str(run / "report.xml")],
        capture_output=True,
        check=False,
    )
    assert done.returncode != 0


def test_pkcs12_with_passphrase_signs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_run(run, 4)
    paths = write_report(run, pkcs12=DEMO_P12, passphrase="demo-only", pdf=False)
    assert paths.demo_key  # it is the demo certificate, whatever file it came from
    assert verify_report(run, DEMO_CA).ok


@pytest.mark.parametrize("passphrase", ["wrong", None])
def test_pkcs12_without_the_right_passphrase_is_a_report_error(
    tmp_path: Path, passphrase: str | None
) -> None:
    run = tmp_path / "run"
    make_run(run, 2)
    with pytest.raises(ReportError, match=r"PKCS#12.*passphrase"):
        write_report(run, pkcs12=DEMO_P12, passphrase=passphrase, pdf=False)
    assert not (run / "report.xml").exists()


def test_a_key_that_does_not_match_the_certificate_is_refused(tmp_path: Path) -> None:
    pki = _load_pki_script()
    ca_key, ca = pki.make_ca("x")
    _, other_cert = pki.make_signer("other", ca_key, ca)
    cert_path = tmp_path / "other.pem"
    cert_path.write_bytes(other_cert.public_bytes(pki.serialization.Encoding.PEM))
    run = tmp_path / "run"
    make_run(run, 2)
    with pytest.raises(ReportError, match="does not match the certificate"):
        write_report(run, key=DEMO_KEY, cert=cert_path, pdf=False)
    with pytest.raises(ReportError, match="needs its certificate"):
        write_report(run, key=DEMO_KEY, pdf=False)
    with pytest.raises(ReportError, match="either a PKCS#12"):
        write_report(run, key=DEMO_KEY, cert=DEMO_CERT, pkcs12=DEMO_P12, pdf=False)


# ---------------------------------------------------------------------------------------------
# model, schema and input errors


def test_missing_results_are_a_report_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="does not exist"):
        write_report(tmp_path / "nowhere")
    (tmp_path / "summary.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ReportError, match=r"results\.jsonl is missing"):
        write_report(tmp_path)


def test_evidence_changed_since_the_run_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_run(run, 3)
    (run / "evidence" / "ATR-000.jsonl").write_text("changed\n", encoding="utf-8")
    with pytest.raises(ReportError, match=r"ATR-000\.jsonl.*changed after the run"):
        write_report(run, pdf=False)


def test_evidence_outside_the_run_directory_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_run(run, 2)
    lines = (run / "results.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["evidence"] = "../../etc/passwd"
    lines[0] = json.dumps(first)
    (run / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ReportError, match="inside the run directory"):
        write_report(run, pdf=False)


def test_xsd_rejects_a_malformed_model(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_run(run, 3)
    model, manifest = build_model(run), Manifest(files=collect(run))
    check_schema(build_xml(model, manifest))  # the real model is valid
    model.cases[1].result.verdict = "MAYBE"  # type: ignore[assignment]
    with pytest.raises(ReportError, match=r"report\.xsd.*verdict"):
        check_schema(build_xml(model, manifest))
    model = build_model(run)
    model.cases[0].evidence_sha256 = "not-a-digest"
    with pytest.raises(ReportError, match=r"report\.xsd.*sha256"):
        check_schema(build_xml(model, manifest))


def test_duplicate_case_ids_are_rejected_by_the_schema(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_run(run, 3)
    lines = (run / "results.jsonl").read_text(encoding="utf-8").splitlines()
    (run / "results.jsonl").write_text("\n".join([*lines, lines[0]]) + "\n", encoding="utf-8")
    with pytest.raises(ReportError, match=r"report\.xsd.*[Dd]uplicate"):
        write_report(run, pdf=False)


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ({}, "CONFORMANT"),
        (CONFORMANT_MIX, "CONFORMANT"),
        ({2: Verdict.FAIL}, "NOT_CONFORMANT"),
        ({6: Verdict.FAIL}, "NOT_CONFORMANT"),  # optional, but a FAIL is a FAIL
        ({2: Verdict.ERROR}, "INCOMPLETE"),
        ({2: Verdict.INCONCLUSIVE}, "INCOMPLETE"),
    ],
)
def test_conclusion(tmp_path: Path, verdicts: dict[int, Verdict], expected: str) -> None:
    make_run(tmp_path, 10, verdicts=verdicts)
    assert build_model(tmp_path).conclusion == expected


def test_the_report_recomputes_a_wrong_summary_verdict(tmp_path: Path) -> None:
    make_run(tmp_path, 5, verdicts={1: Verdict.FAIL})
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    summary["verdict"] = "CONFORMANT"
    (tmp_path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    model = build_model(tmp_path)
    assert model.conclusion == "NOT_CONFORMANT"
    assert any("recomputed" in note for note in model.notes)


def test_several_samples_and_unknown_summary_keys_reach_the_report(tmp_path: Path) -> None:
    make_run(tmp_path, 2, card_samples=3)
    model = build_model(tmp_path)
    assert [s.chip_serial for s in model.samples] == [
        "CSN-00000000",
        "CSN-00000001",
        "CSN-00000002",
    ]
    assert ("transport", "pcsc") in model.bench.extra


def test_untested_catalogue_covers_what_pcsc_cannot_test() -> None:
    items = load_untested()
    text = " ".join(f"{u.title_en} {u.reference}" for u in items).lower()
    for topic in (
        "electrical",
        "temperature",
        "bending",
        "electrostatic",
        "packaging",
        "magnetic stripe",
        "rf",
        "emc",
        "safety",
    ):
        assert topic in text, topic
    assert {u.method for u in items} == {"declaration", "inspection", "lab_apparatus"}
    assert {u.subject for u in items} == {"card", "terminal"}


# ---------------------------------------------------------------------------------------------
# HTML and PDF


def test_html_is_bilingual_self_contained_and_complete(signed_run: Path) -> None:
    html = (signed_run / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html and "<svg" in html
    assert "居民健康卡用户卡符合性检测报告" in html and "Conformance Test Report" in html
    assert "演示密钥签名" in html
    assert "UNT-CARD-CLIM-001" in html and "工作温度" in html
    model = build_model(signed_run)
    assert model.evidence_manifest in html  # one digest over the evidence digests, not a list
    assert model.cases[0].evidence_sha256 not in html
    for case in model.cases:
        assert case.result.id in html


def test_pdf_first_page_has_conclusion_chinese_and_demo_notice(signed_run: Path) -> None:
    done = subprocess.run(
        [_tool("pdftotext"), "-f", "1", "-l", "2", "-layout", str(signed_run / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    page, second = done.stdout.split("\f")[:2]
    assert "居民健康卡用户卡符合性检测报告" in page
    assert "符合" in page and "CONFORMANT" in page and "NOT_CONFORMANT" not in page
    assert "演示密钥签名" in page and "DEMO key" in page
    assert "XAdES-BES" in second  # the signature's details: page 2


def test_pdf_first_page_renders_to_png(signed_run: Path, tmp_path: Path) -> None:
    subprocess.run(
        [
            _tool("pdftoppm"),
            "-png",
            "-r",
            "60",
            "-f",
            "1",
            "-l",
            "1",
            str(signed_run / "report.pdf"),
            str(tmp_path / "page"),
        ],
        check=True,
        capture_output=True,
    )
    pngs = list(tmp_path.glob("page*.png"))
    assert len(pngs) == 1 and pngs[0].stat().st_size > 10_000


# ---------------------------------------------------------------------------------------------
# Allure


def test_allure_needs_results(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no Allure results"):
        build_allure(tmp_path)


def _allure_results(run: Path) -> None:
    results = run / "allure-results"
    results.mkdir(parents=True)
    for i, status in enumerate(["passed", "failed", "skipped"]):
        uuid = f"00000000-0000-0000-0000-00000000000{i}"
        (results / f"{uuid}-result.json").write_text(
            json.dumps(
                {
                    "uuid": uuid,
                    "historyId": f"h{i}",
                    "name": f"ATR-00{i}",
                    "fullName": f"atr.ATR-00{i}",
                    "status": status,
                    "stage": "finished",
                    "start": 1_700_000_000_000 + i,
                    "stop": 1_700_000_000_100 + i,
                    "labels": [
                        {"name": "suite", "value": "ATR"},
                        {"name": "framework", "value": "pytest"},
                    ],
                }
            ),
            encoding="utf-8",
        )


def test_allure_says_what_is_missing_without_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _allure_results(tmp_path)
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(AllureUnavailable, match="node and npx not found"):
        build_allure(tmp_path)


def test_allure_builds_a_single_file_dashboard(tmp_path: Path) -> None:
    if shutil.which("node") is None or shutil.which("npx") is None:
        pytest.skip("Node.js (node, npx) is not installed")
    _allure_results(tmp_path)
    try:
        index = build_allure(tmp_path)
    except AllureUnavailable as exc:
        pytest.skip(f"allure@3 unavailable here: {exc}")
    assert index == tmp_path / "allure-report" / "index.html"
    html = index.read_text(encoding="utf-8")
    assert len(html) > 100_000  # scripts, styles and data inlined: opens from disk, no server
    assert "data/test-results/" in html  # the results travel inside index.html (base64)
    assert "ATR-001" in (index.parent / "test-results.json").read_text(encoding="utf-8")


def test_allure_says_when_the_package_cannot_be_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("node") is None or shutil.which("npx") is None:
        pytest.skip("Node.js (node, npx) is not installed")
    import conformance.report.allure as allure_module

    _allure_results(tmp_path)
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")  # nothing listens there
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    monkeypatch.setattr(allure_module, "ALLURE_PACKAGE", "allure@2.99.99")  # never cached
    with pytest.raises(AllureUnavailable, match=r"could not be fetched[\s\S]*ECONNREFUSED"):
        build_allure(tmp_path, timeout_s=120)


def test_control_characters_in_results_do_not_break_the_xml(tmp_path: Path) -> None:
    make_run(tmp_path, 2)
    lines = (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["reason"] = "card answered \x00\x01\x1b[31m raw"
    lines[0] = json.dumps(first)
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_report(tmp_path, pdf=False)
    assert verify_report(tmp_path, DEMO_CA).ok
    assert "card answered \\x00\\x01\\x1b[31m raw" in (tmp_path / "report.xml").read_text("utf-8")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda x: x.replace(b"<report ", b'<?xml-stylesheet href="x.xsl"?><report ', 1),
            "processing instruction outside <report>",
        ),
        (
            lambda x: x.replace(b"<cases ", b"<!-- looks fine --><cases ", 1),
            "comment inside <report>",
        ),
    ],
)
def test_unsigned_comments_and_instructions_are_refused(run_copy: Path, edit, expected) -> None:
    xml = run_copy / "report.xml"
    xml.write_bytes(edit(xml.read_bytes()))
    problems = verify_report(run_copy, DEMO_CA).problems
    assert [p for p in problems if expected in p], problems


def test_an_encrypted_pem_key_needs_its_passphrase(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(DEMO_KEY.read_bytes(), None)
    encrypted = tmp_path / "key.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    run = tmp_path / "run"
    make_run(run, 2)
    with pytest.raises(ReportError, match="encrypted: give its passphrase"):
        write_report(run, key=encrypted, cert=DEMO_CERT, pdf=False)
    with pytest.raises(ReportError, match="wrong passphrase"):
        write_report(run, key=encrypted, cert=DEMO_CERT, passphrase="nope", pdf=False)
    write_report(run, key=encrypted, cert=DEMO_CERT, passphrase="s3cret", pdf=False)
    assert verify_report(run, DEMO_CA).ok


def test_a_real_lab_file_replaces_the_demo_lab(tmp_path: Path) -> None:
    lab = tmp_path / "lab.yaml"
    lab.write_text(
        "code: STC\nname_zh: 某检测中心\nname_en: Some Test Center\naccreditation: CNAS L12345\n"
        "address: 北京\nplace_of_testing: 本中心\npeople:\n  tester: {name: 李工}\n"
        "  reviewer: {name: 王工}\n  approver: {name: 赵工}\n",
        encoding="utf-8",
    )
    run = tmp_path / "run"
    make_run(run, 2)
    write_report(run, lab=lab)
    xml = (run / "report.xml").read_text(encoding="utf-8")
    assert "CNAS L12345" in xml and 'demo="false"' in xml
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "某检测中心" in html and "demo laboratory data" not in html
    assert "演示密钥签名" in html  # still the demo key
    lab.write_text("name_zh: x\n", encoding="utf-8")
    with pytest.raises(ReportError, match="key code: Field required"):
        write_report(run, lab=lab, pdf=False)


def test_case_rows_align_the_title_column(tmp_path: Path) -> None:
    from conformance.report.render import TAB_EM, case_rows, text_width

    make_run(tmp_path, 30, verdicts={2: Verdict.INCONCLUSIVE, 5: Verdict.NOT_APPLICABLE})
    model = build_model(tmp_path)
    codes = {c.result.clause: "C1" for c in model.cases}
    choices = {c.result.reference_choice: "R1" for c in model.cases}
    rows, header, indent = case_rows(model, codes, choices)
    headings = [row for row in rows if row.verdict == "req"]  # a requirement above its cases
    assert all("\t" not in row.text for row in headings)
    rows = [row for row in rows if row.verdict != "req"]
    for row in [header, *rows]:
        x = 0.0
        cells = row.text.split("\t")
        for cell in cells[:-1]:
            x += text_width(cell) if cell else 0.0
            gap = min(x % TAB_EM, TAB_EM - x % TAB_EM)
            assert not cell or gap >= 0.2 or x >= indent, (row.text, cell)  # clear of a stop
            x = (x // TAB_EM + 1) * TAB_EM  # one tab: to the next stop
        assert x == pytest.approx(indent), row.text
    inconclusive = [row for row in rows if row.verdict == "INCONCLUSIVE"]
    assert len(inconclusive) == 1 and "\n" in inconclusive[0].text  # the reason below
