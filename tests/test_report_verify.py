"""`rhc report verify` on a signed run: every copy and every file is bound, the signer is judged.

Attacks as a forger would try them (an edited HTML, a swapped or re-signed PDF, an added or
deleted file, a certificate minted with the public demo CA key) and leaf certificates the policy
refuses, each named for what it is. Runs are synthetic (tests/report_support.py).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from report_support import make_run

from conformance.cli import main
from conformance.report import verify_report, write_report
from conformance.report.manifest import Manifest, collect
from conformance.report.model import ReportError, build_model
from conformance.report.pades import sign_pdf
from conformance.report.render import write_pdf
from conformance.report.sign import (
    SigningKey,
    SigningMaterial,
    load_signing_material,
    sign_document,
)
from conformance.report.xml import SEAL, build_xml, q, seal_of
from conformance.resources import DEMO_CA, PKI_DIR
from conformance.results import Verdict

N_CASES = 12
PEM = serialization.Encoding.PEM


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["report", "verify", *args])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture(scope="module")
def signed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CONFORMANT run signed with the demo key, with its PDF; tests must not modify it."""
    run = tmp_path_factory.mktemp("verify") / "run"
    make_run(run, N_CASES)
    write_report(run)
    return run


@pytest.fixture(scope="module")
def other_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another run, signed with the same demo key: its PDF is genuine, but of another report."""
    run = tmp_path_factory.mktemp("other") / "run"
    make_run(run, N_CASES, verdicts={2: Verdict.FAIL})
    write_report(run)
    return run


@pytest.fixture
def run_copy(signed_run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(signed_run, target)
    return target


# ---------------------------------------------------------------------------------------------
# the intact run


def test_an_intact_trusted_run_is_valid_and_says_signer_time_and_conclusion(
    signed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(capsys, str(signed_run), "--trust", str(DEMO_CA))
    assert code == 0, out
    assert "signer: DEMO ONLY Resident Health Card Test Lab (DEMO ONLY - rhc-conformance)" in out
    assert "signed at: 20" in out and "conclusion: CONFORMANT" in out
    assert "report.pdf (PAdES signature intact)" in out
    assert "VALID:" in out and "DEMO" in out


def test_without_trust_an_intact_run_is_untrusted_not_0(
    signed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(capsys, str(signed_run))
    assert code == 3 and "UNTRUSTED" in out and "VALID:" not in out


def test_a_trust_anchor_that_does_not_exist_is_a_usage_error(
    signed_run: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = cli(capsys, str(signed_run), "--trust", str(tmp_path / "none.pem"))
    assert code == 2 and "no such file" in out


def test_pdfsig_says_the_pdf_signature_is_valid(signed_run: Path) -> None:
    pdfsig = shutil.which("pdfsig")
    if pdfsig is None:
        pytest.skip("pdfsig (poppler-utils) is not installed")
    done = subprocess.run(
        [pdfsig, str(signed_run / "report.pdf")], capture_output=True, text=True, check=False
    )
    assert "Signature Validation: Signature is Valid." in done.stdout, done.stdout + done.stderr
    assert "DEMO ONLY Resident Health Card Test Lab" in done.stdout
    assert "Total document signed" in done.stdout


# ---------------------------------------------------------------------------------------------
# a forger's edits


def _invalid(capsys: pytest.CaptureFixture[str], run: Path, name: str) -> str:
    code, out = cli(capsys, str(run), "--trust", str(DEMO_CA))
    assert code == 1, out
    assert any(name in line for line in out.splitlines() if line.startswith("INVALID:")), out
    return out


def test_one_word_of_report_html_edited_is_named(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html = run_copy / "report.html"
    text = html.read_text(encoding="utf-8")
    assert '<div class="value-en">CONFORMANT</div>' in text
    html.write_text(text.replace(">CONFORMANT<", ">NOT_CONFORMANT<", 1), encoding="utf-8")
    _invalid(capsys, run_copy, "report.html")


def test_an_edited_html_printed_and_signed_again_with_the_demo_key_is_refused(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html = (run_copy / "report.html").read_text(encoding="utf-8").replace("通过", "不通过", 1)
    (run_copy / "report.html").write_text(html, encoding="utf-8")
    write_pdf(html, run_copy / "report.pdf")
    forged = sign_pdf((run_copy / "report.pdf").read_bytes(), load_signing_material(), reason="x")
    (run_copy / "report.pdf").write_bytes(forged)
    out = _invalid(capsys, run_copy, "report.pdf is not the PDF this report was issued with")
    assert "report.html" in out


def test_report_pdf_swapped_from_another_run_is_refused(
    run_copy: Path, other_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(other_run / "report.pdf", run_copy / "report.pdf")
    _invalid(capsys, run_copy, "report.pdf is not the PDF this report was issued with")


def test_the_rendered_pdf_signed_by_another_key_is_refused(
    run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = etree.parse(str(run_copy / "report.xml")).getroot()
    size = int(root.find(f"{q('manifest')}/{q('pdf')}").get("renderedSize"))
    rendered = (run_copy / "report.pdf").read_bytes()[:size]
    ca_key, ca = _ca(tmp_path)
    key, cert = _leaf(ca_key, ca, "Forger Lab")
    forged = sign_pdf(rendered, SigningMaterial(key, [cert], False, "test"), reason="x")
    (run_copy / "report.pdf").write_bytes(forged)
    _invalid(capsys, run_copy, "not by report.xml's signer")


def test_bytes_appended_to_report_pdf_are_refused(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (run_copy / "report.pdf").open("ab") as handle:
        handle.write(b"\n9 0 obj\n<< >>\nendobj\n%%EOF\n")
    _invalid(capsys, run_copy, "report.pdf")


def test_a_file_added_to_evidence_is_named(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (run_copy / "evidence" / "ATR-999.jsonl").write_text('{"apdu": "9000"}\n', encoding="utf-8")
    out = _invalid(capsys, run_copy, "evidence/ATR-999.jsonl")
    assert "not in the signed manifest" in out


@pytest.mark.parametrize("name", ["summary.json", "results.jsonl", "report.html", "report.pdf"])
def test_a_deleted_file_of_the_run_is_named(
    run_copy: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (run_copy / name).unlink()
    out = _invalid(capsys, run_copy, name)
    assert "is missing" in out


def test_a_symbolic_link_in_the_run_is_refused(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (run_copy / "evidence" / "link.jsonl").symlink_to(run_copy / "summary.json")
    _invalid(capsys, run_copy, "evidence/link.jsonl is not a regular file")


def test_an_allure_dashboard_built_later_is_a_note_not_a_failure(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (run_copy / "allure-report").mkdir()
    (run_copy / "allure-report" / "index.html").write_text("<html></html>", encoding="utf-8")
    code, out = cli(capsys, str(run_copy), "--trust", str(DEMO_CA))
    assert code == 0 and "allure-report/ is not signed" in out


def test_files_the_run_wrote_are_all_bound(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_run(run, 3)
    (run / "junit.xml").write_text("<testsuites/>", encoding="utf-8")
    (run / "allure-results").mkdir()
    (run / "allure-results" / "a-result.json").write_text("{}", encoding="utf-8")
    write_report(run, pdf=False)
    assert verify_report(run, DEMO_CA).files_checked == 3 + 5  # evidence, html, json, xml
    for name in ("junit.xml", "allure-results/a-result.json"):
        (run / name).write_text("changed", encoding="utf-8")
        problems = verify_report(run, DEMO_CA).problems
        assert [p for p in problems if p.startswith(f"{name}: SHA-256")], problems
        (run / name).write_text("{}" if name.endswith("json") else "<testsuites/>", "utf-8")


# ---------------------------------------------------------------------------------------------
# signers: DEMO whoever minted it, and the leaf policy


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Org"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = _name("Test CA")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2045, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "ca.pem").write_bytes(cert.public_bytes(PEM))
    return key, cert


def _usage(*, signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signature,
        content_commitment=False,
        key_encipherment=not signature and not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf(
    ca_key: rsa.RSAPrivateKey,
    ca: x509.Certificate,
    common_name: str = "Test Lab",
    *,
    usage: x509.KeyUsage | None = None,
    with_usage: bool = True,
    is_ca: bool = False,
    bits: int = 2048,
    curve: ec.EllipticCurve | None = None,
    valid: tuple[int, int] = (2025, 2045),
) -> tuple[SigningKey, x509.Certificate]:
    key: SigningKey = (
        ec.generate_private_key(curve)
        if curve is not None
        else rsa.generate_private_key(public_exponent=65537, key_size=bits)
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(valid[0], 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(valid[1], 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if with_usage:
        builder = builder.add_extension(usage or _usage(signature=True), critical=True)
    return key, builder.sign(ca_key, hashes.SHA256())


def _write_pem(tmp_path: Path, key: SigningKey, cert: x509.Certificate) -> tuple[Path, Path]:
    key_path, cert_path = tmp_path / "lab-key.pem", tmp_path / "lab.pem"
    key_path.write_bytes(
        key.private_bytes(
            PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path.write_bytes(cert.public_bytes(PEM))
    return key_path, cert_path


def _sign_by_hand(
    run: Path, key: SigningKey, cert: x509.Certificate, at: dt.datetime | None = None
) -> None:
    """A report.xml signed as the writer would, without the writer's refusal of bad leaves."""
    model = build_model(run, demo_key=False)
    doc = build_xml(model, Manifest(files=collect(run)))
    material = SigningMaterial(key=key, chain=[cert], demo=False, source="test")
    signed = sign_document(doc, material, at or dt.datetime.now(dt.UTC).replace(microsecond=0))
    (run / "report.xml").write_bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))


def test_a_leaf_minted_with_the_demo_ca_key_is_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo_ca = x509.load_pem_x509_certificate(DEMO_CA.read_bytes())
    demo_ca_key = serialization.load_pem_private_key(
        (PKI_DIR / "demo-ca-key.pem").read_bytes(), None
    )
    key, cert = _leaf(demo_ca_key, demo_ca, "Anyone's Own Lab")  # type: ignore[arg-type]
    run = tmp_path / "run"
    make_run(run, 4)
    key_path, cert_path = _write_pem(tmp_path, key, cert)
    paths = write_report(run, key=key_path, cert=cert_path, pdf=False)
    assert paths.demo_key
    assert "演示密钥签名" in (run / "report.html").read_text(encoding="utf-8")
    result = verify_report(run, DEMO_CA)
    assert result.ok and result.demo and result.signer_cn == "Anyone's Own Lab"
    code, out = cli(capsys, str(run), "--trust", "demo")
    assert code == 0 and "[DEMO]" in out and "note: DEMO:" in out


@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        ({"with_usage": False}, "has no KeyUsage extension"),
        ({"usage": _usage()}, "has a KeyUsage that allows neither digitalSignature nor"),
        ({"is_ca": True}, "is a CA certificate (basicConstraints CA:TRUE)"),
        ({"bits": 1024}, "has an RSA-1024 key: at least 2048 bits"),
        ({"curve": ec.SECP192R1()}, "has a 192-bit EC key (secp192r1): at least 256 bits"),
        ({"valid": (2020, 2021)}, "expired on 2021-01-01T00:00:00+00:00: not valid at the signing"),
    ],
    ids=["no-keyusage", "keyencipherment-only", "ca-true", "rsa-1024", "ec-192", "expired"],
)
def test_the_leaf_policy_refuses_each_for_its_own_reason(
    tmp_path: Path, variant: dict, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ca_key, ca = _ca(tmp_path)
    key, cert = _leaf(ca_key, ca, **variant)
    run = tmp_path / "run"
    make_run(run, 3)
    key_path, cert_path = _write_pem(tmp_path, key, cert)
    with pytest.raises(ReportError, match=f"refused.*{reason[:20]}"):
        write_report(run, key=key_path, cert=cert_path, pdf=False)

    _sign_by_hand(run, key, cert)
    code, out = cli(capsys, str(run), "--trust", str(tmp_path / "ca.pem"))
    assert code == 1
    who = "the signing certificate CN=Test Lab,O=Test Org"
    assert f"INVALID: signer refused: {who} {reason}" in out
    assert "SignatureValue" not in out and "digest mismatch" not in out


def test_a_certificate_expired_since_but_valid_at_signing_time_is_valid(tmp_path: Path) -> None:
    ca_key, ca = _ca(tmp_path)
    key, cert = _leaf(ca_key, ca, valid=(2020, 2022))
    run = tmp_path / "run"
    make_run(run, 3)
    _sign_by_hand(run, key, cert, at=dt.datetime(2021, 6, 1, tzinfo=dt.UTC))
    result = verify_report(run, tmp_path / "ca.pem")
    assert result.ok, (result.problems, result.untrusted)
    assert result.signing_time.startswith("2021-06-01")


def test_signed_counts_of_a_group_are_recomputed_from_its_cases(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_run(run, 9)
    model = build_model(run, demo_key=True)
    doc = build_xml(model, Manifest(files=collect(run)))
    groups = doc.find(q("groups"))
    group = groups.find(q("group"))
    pass_count = group.find(f"{q('count')}[@verdict='PASS']")
    fail_count = group.find(f"{q('count')}[@verdict='FAIL']")
    pass_count.text, fail_count.text = str(int(pass_count.text) - 1), "1"
    groups.set(SEAL, seal_of(groups))  # a consistent, signed lie
    signed = sign_document(doc, load_signing_material(), dt.datetime.now(dt.UTC))
    (run / "report.xml").write_bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))
    problems = verify_report(run, DEMO_CA).problems
    assert problems == [
        f"group {group.get('name')}: the signed counts differ from its case verdicts "
        "(PASS 0→1, FAIL 1→0)"
    ], problems


def test_an_ec_p256_leaf_signs_and_verifies(tmp_path: Path) -> None:
    ca_key, ca = _ca(tmp_path)
    key, cert = _leaf(ca_key, ca, curve=ec.SECP256R1())
    run = tmp_path / "run"
    make_run(run, 3)
    key_path, cert_path = _write_pem(tmp_path, key, cert)
    write_report(run, key=key_path, cert=cert_path)
    result = verify_report(run, tmp_path / "ca.pem")
    assert result.ok and result.pdf_checked and not result.demo, result.problems
