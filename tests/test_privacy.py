"""Secrets stay checkable, people stay private: the sealed salt, `rhc report reveal`, privacy."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from conformance.cli import main
from conformance.config import ConfigError, build_config
from conformance.defaults import EXIT_NOT_CERTIFICATION
from conformance.model import load_profile
from conformance.report.seal import (
    SEALED_NAME,
    SealError,
    load_certificate,
    load_private_key,
    open_sealed,
    read_sealed,
    seal,
)
from conformance.resources import DEMO_CA, DEMO_CERT, DEMO_KEY
from conformance.transport.redact import Redactor

NAME = "王测试"  # the default personalization's cardholder (item 11, AN: GBK)
ID_NUMBER = "11010519491231002X"  # item 15 (and item 8, the card number)


def _self_signed(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test lab")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def _forms(text: str) -> list[str]:
    """Every way a value could stand in a file: text, GBK and UTF-8 hex in both cases."""
    forms = [text]
    for raw in (text.encode("gbk"), text.encode("utf-8")):
        forms += [raw.hex().upper(), raw.hex()]
    return forms


def _run_files(run_dir: Path) -> dict[str, str]:
    """Every file of a run as text (the PDF as its extracted text when pdftotext is there)."""
    files = {}
    for path in run_dir.rglob("*"):
        if path.is_file():
            files[str(path.relative_to(run_dir))] = path.read_bytes().decode("utf-8", "replace")
    if (run_dir / "report.pdf").is_file() and shutil.which("pdftotext"):
        out = subprocess.run(["pdftotext", str(run_dir / "report.pdf"), "-"],
                             capture_output=True, check=True)
        files["report.pdf (text)"] = out.stdout.decode("utf-8", "replace")
    return files


def _where(files: dict[str, str], needles: list[str]) -> list[tuple[str, str]]:
    return [(name, n) for name, text in files.items() for n in needles if n in text]


def _rhc(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture(scope="module")
def private_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole signed run of the virtual card with privacy on."""
    out = tmp_path_factory.mktemp("private") / "run"
    code = main(["run", "--card", "virtual", "--privacy", "on", "--out", str(out), "--quiet"])
    assert code == EXIT_NOT_CERTIFICATION, (out / "summary.json").read_text("utf-8")  # self-test
    return out


# -- the sealed salt ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_the_sealed_salt_opens_with_the_lab_key_and_no_other(kind: str) -> None:
    def new_key() -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
        if kind == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP256R1())

    lab, other = new_key(), new_key()
    salt = bytes(range(16))
    sealed = seal(salt, _self_signed(lab))
    assert salt not in sealed.ciphertext
    assert open_sealed(sealed, lab) == salt
    with pytest.raises(SealError, match="does not open the salt"):
        open_sealed(sealed, other)


def test_a_run_seals_its_salt_to_the_demo_lab_and_writes_it_nowhere_in_clear(
    private_run: Path,
) -> None:
    sealed = read_sealed(private_run)
    assert sealed.recipient_fingerprint == load_certificate(DEMO_CERT).fingerprint(
        hashes.SHA256()).hex()
    salt = open_sealed(sealed, load_private_key(DEMO_KEY))
    with pytest.raises(SealError):
        open_sealed(sealed, load_private_key(DEMO_CA.with_name("demo-ca-key.pem")))
    needles = [salt.hex(), salt.hex().upper(), base64.b64encode(salt).decode()]
    assert _where(_run_files(private_run), needles) == []
    raw = [p for p in private_run.rglob("*") if p.is_file() and salt in p.read_bytes()]
    assert raw == []


# -- privacy -----------------------------------------------------------------------------


def test_with_privacy_on_name_and_id_number_appear_nowhere(private_run: Path) -> None:
    files = _run_files(private_run)
    assert "report.pdf" in files and "evidence/DATA-COD-011.jsonl" in files
    assert _where(files, _forms(NAME) + _forms(ID_NUMBER)) == []
    assert "<personal:11:sha256-salted:" in files["evidence/DATA-COD-011.jsonl"]


def test_summary_and_report_state_the_privacy_setting(private_run: Path) -> None:
    summary = json.loads((private_run / "summary.json").read_text("utf-8"))
    assert summary["privacy"]["setting"] == "on"
    assert summary["privacy"]["sealed_salt"] == SEALED_NAME
    html = (private_run / "report.html").read_text("utf-8")
    assert "个人信息保护 Privacy</th><td>开 on" in html


def test_with_a_test_sample_privacy_is_off_and_the_data_shows(capsys, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _rhc(capsys, "run", "--out", str(out), "--quiet", "--no-report", "-k", "DDF1-EF06")
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["privacy"]["setting"] == "off" and "test sample" in summary["privacy"]["basis"]
    assert _where(_run_files(out), [NAME.encode("gbk").hex().upper()])
    assert (out / SEALED_NAME).is_file()  # secrets are masked either way: their salt is sealed


@pytest.mark.parametrize("fault", ["data_dates_ddmmyyyy", "data_card_number_altered",
                                   "data_an_utf8", "data_tlv_value_short"])
def test_failure_reasons_quote_no_personal_value(capsys, tmp_path: Path, fault: str) -> None:
    """A FAIL quotes what the card said: with privacy on, that is masked too (even the birth
    date an ID number carries)."""
    out = tmp_path / "run"
    _rhc(capsys, "run", "--fault", fault, "--privacy", "on", "--out", str(out), "--quiet",
         "--no-report", "-k", "DATA-CON or DATA-COD-011 or DATA-COD-015 or DATA-VAL-014")
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["counts"]["FAIL"] > 0
    assert _where(_run_files(out), _forms(NAME) + _forms(ID_NUMBER) + ["19491231"]) == []


def test_auto_privacy_follows_the_ics() -> None:
    assert build_config({}).privacy is False  # the reference ICS: sample: test
    assert build_config({"product": "minimal"}).privacy is True  # says nothing: issued
    assert build_config({"privacy": "off", "product": "minimal"}).privacy is False
    with pytest.raises(ConfigError, match="--privacy: 'maybe'"):
        build_config({"privacy": "maybe"})
    with pytest.raises(ConfigError, match=r"--seal-to: .*no PEM X\.509 certificate"):
        build_config({"seal_to": str(DEMO_KEY)})


def test_personal_tlv_values_are_masked_and_the_rest_stays_visible() -> None:
    profile = load_profile()
    r = Redactor.from_profile(profile, b"salt", privacy=True)
    name = NAME.encode("gbk").ljust(30, b"\0")
    record = bytes([11, 30]) + name
    shown = r.redact_response(bytes.fromhex("00B2010400"), record + b"\x90\x00")
    assert shown == "0B1E" + r.personal_mask(name, 11) + "9000"
    public = bytes([1, 1]) + b"1"  # item 1, card category: not personal
    assert r.redact_response(bytes.fromhex("00B2010400"), public + b"\x90\x00") == "0101319000"
    other = bytes(120)  # not a TLV record: cannot be told apart from personal data
    assert r.redact_command(bytes.fromhex("00DC000378") + other) == (
        "00DC000378" + r.personal_mask(other)
    )
    assert r.redact_command(bytes.fromhex("00A4000002EF06")) == "00A4000002EF06"
    fields = r.secret_fields(bytes.fromhex("00B2010400"), record + b"\x90\x00")
    reason = f"item 11 {NAME!r} ({record.hex()}) is wrong"
    scrubbed = r.scrub(reason, fields)
    assert NAME not in scrubbed and name.hex() not in scrubbed.lower()
    id_record = bytes([15, 18]) + ID_NUMBER.encode()
    fields = r.secret_fields(bytes.fromhex("00B2050400"), id_record + b"\x90\x00")
    scrubbed = r.scrub(f"{ID_NUMBER} carries birth date 19491231, not 20240101", fields)
    assert ID_NUMBER not in scrubbed and "19491231" not in scrubbed and "20240101" in scrubbed
    off = Redactor.from_profile(profile, b"salt")
    assert off.redact_response(bytes.fromhex("00B2010400"), record + b"\x90\x00") == (
        record.hex().upper() + "9000"
    )


# -- rhc report reveal -------------------------------------------------------------------


def test_reveal_confirms_a_correct_value_and_denies_a_wrong_one(capsys, private_run) -> None:
    run, key = str(private_run), str(DEMO_KEY)
    code, out = _rhc(capsys, "report", "reveal", run, "--case", "DATA-COD-011")
    assert code == 0 and "personal item 11" in out
    code, out = _rhc(capsys, "report", "reveal", run, "--key", key, "--text", NAME)
    assert code == 0 and "MATCH: DATA-COD-011" in out
    code, out = _rhc(capsys, "report", "reveal", run, "--key", key, "--text", "王测验")
    assert code == 1 and "NO MATCH" in out
    value = ID_NUMBER.encode().hex()
    code, out = _rhc(capsys, "report", "reveal", run, "--key", key, "--value", value,
                     "--case", "DATA-COD-015")
    assert code == 0 and "personal item 15" in out
    code, out = _rhc(capsys, "report", "reveal", run, "--key", key, "--value", "00" + value)
    assert code == 1
    code, out = _rhc(capsys, "report", "reveal", run, "--key",
                     str(DEMO_CA.with_name("demo-ca-key.pem")), "--text", NAME)
    assert code == 2 and "does not open the salt" in out


def test_reveal_opens_a_salt_sealed_to_a_pkcs12_lab(capsys, tmp_path, monkeypatch) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    lab = ec.generate_private_key(ec.SECP256R1())
    p12 = tmp_path / "lab.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"lab", lab, _self_signed(lab), None,
        serialization.BestAvailableEncryption(b"secret")))
    monkeypatch.setenv("RHC_SIGN_PASSPHRASE", "secret")
    out = tmp_path / "run"
    _rhc(capsys, "run", "--privacy", "on", "--seal-to", str(p12), "--out", str(out), "--quiet",
         "--no-report", "-k", "DATA-COD-011")
    code, text = _rhc(capsys, "report", "reveal", str(out), "--key", str(p12), "--text", NAME)
    assert code == 0 and "MATCH" in text, text
