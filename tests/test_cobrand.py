"""The co-branded card (REFERENCE.md §6 co_branded): the PBOC PSE and ADF beside DDF1 on the
virtual card, the COB cases on it and their faults, and the product that declares it."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from functools import cache

import pytest
from casekit import group_cases, new_card, profile, runner_for
from conftest import ROOT

from conformance import crypto
from conformance.card import VirtualCard
from conformance.card.faults import fault_catalogue
from conformance.matrix import build_matrix, run_catalogue
from conformance.model import (
    DEFAULT_PERSONALIZATION,
    DEFAULT_TEST_KEYS,
    ProfileError,
    load_key_set,
    load_personalization,
)
from conformance.model.application import (
    load_application,
    load_application_keys,
    sfi_p2,
    tlv_items,
)
from conformance.model.products import load_product
from conformance.results import Verdict

APP = "pboc-pse"


@cache
def product():
    return load_product("co-branded", profile())


@cache
def app():
    return load_application(APP)


def cob_faults() -> list[str]:
    return sorted(n for n, f in fault_catalogue().items() if f.group == "COB")


def card(faults: tuple[str, ...] = ()) -> VirtualCard:
    c = new_card(faults, product())
    c.reset()
    return c


def tx(c: VirtualCard, hexstr: str) -> bytes:
    """One APDU; a 61xx answer is collected with GET RESPONSE (the product has T=0)."""
    answer = c.process(bytes.fromhex(hexstr.replace(" ", "")))
    if answer[-2] == 0x61:
        answer = c.process(bytes([0x00, 0xC0, 0x00, 0x00, answer[-1]]))
    return answer


def select_name(c: VirtualCard, name: bytes) -> bytes:
    return tx(c, "00A40400" + f"{len(name):02X}" + name.hex() + "00")


def card_key() -> bytes:
    master = load_application_keys(app())["UK_PBOC"]
    return crypto.emv_option_a(master, "6228480000000000018")


# --------------------------------------------------------------------------- the card


def test_pse_fci_directory_and_adf_by_aid() -> None:
    c = card()
    a = app()
    answer = select_name(c, a.pse_name)
    assert answer[-2:] == b"\x90\x00"
    assert answer[:-2] == a.pse_fci()
    (tag, fci), = tlv_items(answer[:-2])
    assert tag == "6F" and dict(tlv_items(fci))["84"] == b"1PAY.SYS.DDF01"
    directory = tx(c, f"00B201{sfi_p2(a.pse.directory_sfi):02X}00")
    assert directory[-2:] == b"\x90\x00" and a.aid in directory
    assert tx(c, f"00B202{sfi_p2(a.pse.directory_sfi):02X}00") == bytes.fromhex("6A83")
    answer = select_name(c, a.aid)
    assert answer[:-2] == a.adf_fci() and answer[-2:] == b"\x90\x00"
    assert tx(c, "80CA9F3600") == bytes.fromhex("9F3602" + "0005" + "9000")
    assert tx(c, "80CA9F1300") == bytes.fromhex("6A88")
    record = tx(c, f"00B201{sfi_p2(1):02X}00")
    assert record[:-2] == a.file(1).encoded()[0]
    assert select_name(c, b"NO.SUCH.APP") == bytes.fromhex("6A82")


def test_the_health_application_answers_by_fid_after_the_other() -> None:
    c = card()
    select_name(c, app().aid)
    assert tx(c, "00A4000002DDF1") == bytes.fromhex("9000")
    assert c.current_df == "DDF1"
    assert tx(c, "80CA9F3600") == bytes.fromhex("6D00")  # no GET DATA in the health DF
    select_name(c, app().aid)
    assert tx(c, "00A40000023F00") == bytes.fromhex("9000") and c.current_df == "MF"


def test_only_its_own_key_updates_the_protected_file() -> None:
    c = card()
    a = app()
    sfi = a.protected_files[0].sfi
    select_name(c, a.aid)
    record = tx(c, f"00B201{sfi_p2(sfi):02X}00")[:-2]
    new = record[:-1] + bytes([record[-1] ^ 0xFF])
    update = f"00DC01{sfi_p2(sfi):02X}{len(new):02X}{new.hex()}"
    assert tx(c, update) == bytes.fromhex("6982")
    challenge = tx(c, "0084000008")[:-2]
    wrong = crypto.des3_auth_cryptogram(bytes(16), challenge)
    assert tx(c, f"0082000108{wrong.hex()}") == bytes.fromhex("63C2")
    challenge = tx(c, "0084000008")[:-2]
    good = crypto.des3_auth_cryptogram(card_key(), challenge)
    assert tx(c, f"0082000108{good.hex()}") == bytes.fromhex("9000")
    assert c.content.other.retry["UK_PBOC"] == 3
    assert tx(c, update) == bytes.fromhex("9000")
    assert tx(c, f"00B201{sfi_p2(sfi):02X}00")[:-2] == new
    # 04 DC with the application's MAC over R ‖ header ‖ data
    challenge = tx(c, "0084000008")[:-2]
    header = bytes([0x04, 0xDC, 0x01, sfi_p2(sfi), len(record) + 4])
    mac = crypto.des3_mac(card_key(), challenge + header + record)[:4]
    assert tx(c, (header + record + mac).hex()) == bytes.fromhex("9000")
    assert tx(c, f"00B201{sfi_p2(sfi):02X}00")[:-2] == record
    challenge = tx(c, "0084000008")[:-2]
    assert tx(c, (header + record + bytes(4)).hex()) == bytes.fromhex("6988")


def test_a_card_without_the_feature_has_no_other_application() -> None:
    c = new_card()
    c.reset()
    assert c.process(bytes.fromhex("00A404000E315041592E5359532E4444463031")) == \
        bytes.fromhex("6A86")
    assert "other_application" not in c.image()


def test_the_image_keeps_the_other_application(tmp_path) -> None:
    c = card()
    c.content.other.data_objects["9F36"] = b"\x01\x23"
    path = tmp_path / "card.json"
    c.save_image(path)
    doc = json.loads(path.read_text())
    assert doc["other_application"]["data_objects"]["9F36"] == "0123"
    again = VirtualCard.from_image(path, profile(), features=frozenset(product().features))
    assert again.content.other.data_objects["9F36"] == b"\x01\x23"
    doc["other_application"]["records"]["1"] = ["00"]
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="other_application"):
        VirtualCard.from_image(path, profile(), features=frozenset(product().features))


def test_a_cobrand_fault_needs_the_feature() -> None:
    prof = profile()
    with pytest.raises(ValueError, match="needs feature co_branded"):
        VirtualCard.personalize(prof, load_personalization(DEFAULT_PERSONALIZATION, prof),
                                load_key_set(DEFAULT_TEST_KEYS, prof),
                                faults=frozenset({"cobrand_health_keys_open_pboc"}))


# --------------------------------------------------------------------------- crypto


def test_3des_helpers_agree_with_pyemv() -> None:
    import pyemv.kd
    import pyemv.mac

    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    data = b"co-branded card, 27 bytes.."
    with warnings.catch_warnings():  # pyemv uses cryptography's deprecated TripleDES path
        warnings.simplefilter("ignore")
        mac = pyemv.mac.mac_iso9797_3(key[:8], key[8:], data, 2)
        icc = pyemv.kd.derive_icc_mk_a(key, "6228480000000000018")
    assert crypto.des3_mac(key, data) == mac
    parity = bytes(b & 0xFE for b in icc)  # pyemv sets odd parity; DES ignores that bit
    assert bytes(b & 0xFE for b in crypto.emv_option_a(key, "6228480000000000018")) == parity


# --------------------------------------------------------------------------- product, profile


def test_the_product_names_its_other_application(tmp_path) -> None:
    assert product().has("co_branded") and product().other_application == APP
    assert not load_product(None, profile()).has("co_branded")
    bad = tmp_path / "p.yaml"
    bad.write_text("name: x\nvendor: v\nmodel: m\nversion: '1'\nfeatures: [co_branded]\n")
    with pytest.raises(ProfileError, match="other_application"):
        load_product(bad, profile())
    bad.write_text("name: x\nvendor: v\nmodel: m\nversion: '1'\nfeatures: [co_branded]\n"
                   "other_application: no-such-app\n")
    with pytest.raises(ProfileError, match="no application profile named 'no-such-app'"):
        load_product(bad, profile())


def test_a_bad_application_profile_names_file_and_key(tmp_path) -> None:
    text = (ROOT / "profiles/applications/pboc-pse.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("aid: A000000333010101", "aid: XYZ"), encoding="utf-8")
    with pytest.raises(ProfileError, match=r"bad.yaml:\d+: key adf.aid"):
        load_application(bad)


def test_tlv_items_keep_duplicates_and_refuse_garbage() -> None:
    assert tlv_items(bytes.fromhex("61034F01A1 61034F01B2")) == [
        ("61", bytes.fromhex("4F01A1")), ("61", bytes.fromhex("4F01B2"))]
    assert tlv_items(bytes.fromhex("9F360200 05")) == [("9F36", b"\x00\x05")]
    with pytest.raises(ValueError):
        tlv_items(bytes.fromhex("6F05840301"))


# --------------------------------------------------------------------------- the COB cases


def test_cob_cases_pass_on_the_co_branded_card_and_leave_it_as_found(tmp_path) -> None:
    c = new_card((), product())
    runner = runner_for(c, product())
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    for case in group_cases("COB"):
        c.save_image(before)
        result = runner.run(case)
        c.save_image(after)
        assert result.verdict is Verdict.PASS, (case.id, result.reason)
        assert before.read_bytes() == after.read_bytes(), case.id
    hlt = runner.run(next(c for c in group_cases("COB") if c.id == "COB-HLT-001"))
    assert any("directly" in o for o in hlt.observations), hlt.observations


def test_cob_cases_are_not_applicable_without_the_feature() -> None:
    results = run_catalogue((), group_cases("COB"))
    assert {r.verdict for r in results.values()} == {Verdict.NOT_APPLICABLE}


def test_the_whole_catalogue_passes_on_the_co_branded_card() -> None:
    """The other application must not disturb a single health case (SELECT by name, P1 = 04,
    now finds applications: CMD-P12-001 and CMD-ORD-005 accept 6A82 there and record it)."""
    results = run_catalogue(product=product())
    bad = {i: f"{r.verdict}: {r.reason}" for i, r in results.items()
           if r.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE)}
    assert not bad, bad
    assert results["COB-KEY-001"].verdict is Verdict.PASS
    assert any("6A82" in o for o in results["CMD-P12-001"].observations)


def test_every_cob_case_is_killed_by_its_own_fault() -> None:
    m = build_matrix(cob_faults(), cases=group_cases("COB"))
    assert not m.problems(), m.problems()
    assert all(m.killers()[c.id] for c in group_cases("COB"))
    assert m.kills("cobrand_health_keys_open_pboc") == ["COB-KEY-001", "COB-KEY-002",
                                                       "COB-KEY-003"]


def test_deleting_a_cob_check_turns_the_matrix_red(monkeypatch) -> None:
    from conformance.cases import cob

    monkeypatch.setattr(cob, "expect_refused", lambda *_args: None)
    monkeypatch.setattr(cob, "expect_unchanged", lambda *_args: None)
    cases = [c for c in group_cases("COB") if c.id.startswith("COB-KEY")]
    m = build_matrix(["cobrand_health_keys_open_pboc"], cases=cases)
    assert not m.kills("cobrand_health_keys_open_pboc")
    assert any("COB-KEY-001" in p for p in m.problems())


# --------------------------------------------------------------------------- the CLI


def rhc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_lists_the_cob_cases_and_dumps_the_co_branded_card() -> None:
    listed = rhc("cases", "list", "--group", "COB", "--json")
    assert listed.returncode == 0, listed.stderr
    ids = [c["id"] for c in json.loads(listed.stdout)]
    assert ids == [c.id for c in group_cases("COB")] and len(ids) == 7
    dumped = rhc("card", "dump", "--card", "virtual", "--product", "co-branded")
    plain = rhc("card", "dump", "--card", "virtual")
    assert dumped.returncode == 0, dumped.stderr
    assert json.loads(dumped.stdout) == json.loads(plain.stdout)
    wrong = rhc("card", "dump", "--card", "virtual", "--fault", "cobrand_health_kid_in_pboc")
    assert wrong.returncode == 2 and "needs feature co_branded" in wrong.stderr
    assert "Traceback" not in wrong.stderr
