"""The CMD and DATA case groups: they pass on the reference card, catch their faults, and the
value-rule checkers behind DATA are right."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from casekit import group_cases, new_card, profile, run_cases, runner_for
from hypothesis import given
from hypothesis import strategies as st

from conformance.card.faults import FAULTS
from conformance.cases.framework import Case
from conformance.cases.rules import (
    check_code,
    check_coding,
    check_date,
    check_digits,
    check_id_number,
    check_phone,
    check_rule,
    id_check_char,
)
from conformance.host.keys import TestKeyProvider
from conformance.matrix import feature_product
from conformance.model import DEFAULT_TEST_KEYS, load_key_set
from conformance.model.codecs import Coding
from conformance.model.products import PRODUCTS_DIR, Plan, load_plan, load_product
from conformance.model.schema import CodeTable, Structure
from conformance.results import CaseResult, Verdict
from conformance.runner import CaseRunner
from conformance.transport.base import ApduResponder
from conformance.transport.inprocess import InProcessTransport

MY_GROUPS = ("CMD", "DATA")
MY_FAULTS = sorted(name for name, f in FAULTS.items() if f.group in MY_GROUPS and not f.generated)


@cache
def my_cases() -> dict[str, tuple[Case, ...]]:
    return {"CMD": group_cases("CMD"), "DATA": group_cases("DATA")}


def all_mine() -> list[Case]:
    return [c for group in MY_GROUPS for c in my_cases()[group]]


# --------------------------------------------------------------------------- the catalogue


def test_ids_metadata_and_groups() -> None:
    cases = all_mine()
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids))
    for case in cases:
        assert case.id.startswith(f"{case.group}-"), case.id
        assert case.group in MY_GROUPS
        assert case.title_zh and case.title_en and case.clause and case.purpose, case.id
        assert case.expected_sw, case.id
        assert case.severity in ("blocker", "critical", "normal", "minor"), case.id
        assert not case.destructive, case.id
    assert 60 <= len(my_cases()["CMD"]) <= 120


def test_data_cases_are_generated_from_the_model() -> None:
    prof = profile()
    ids = {c.id for c in my_cases()["DATA"]}
    for n in prof.tlv_items():
        assert f"DATA-TLV-{n:03d}" in ids and f"DATA-COD-{n:03d}" in ids
        assert (f"DATA-VAL-{n:03d}" in ids) == bool(prof.item(n).rules)
    for rule in prof.spec.consistency:
        assert f"DATA-CON-{rule.id.upper()}" in ids
    for path, ef in prof.files.items():
        if ef.read_by_tag:
            for record in range(1, len(ef.items) + 1):
                assert f"DATA-RID-{path.replace('/', '-')}-{record:03d}" in ids
        if ef.structure is Structure.CYCLIC:
            assert f"DATA-CYC-{path.replace('/', '-')}-001" in ids


def test_cases_do_not_import_the_card() -> None:
    code = ("import sys, conformance.cases.cmd, conformance.cases.data, "
            "conformance.cases.rules; "
            "bad = [m for m in sys.modules if m.startswith('conformance.card')]; "
            "assert not bad, bad")
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


# --------------------------------------------------------------------------- verdicts


def test_all_pass_on_the_reference_card() -> None:
    results = run_cases(all_mine())
    bad = {i: f"{r.verdict}: {r.reason}" for i, r in results.items()
           if r.verdict is not Verdict.PASS}
    assert not bad, bad


def test_minimal_product() -> None:
    product = load_product(PRODUCTS_DIR / "minimal.yaml", profile())
    results = run_cases(all_mine(), product=product)
    for case in all_mine():
        result = results[case.id]
        if case.applicability == "True":
            assert result.verdict is Verdict.PASS, (case.id, result.reason)
        else:
            assert result.verdict is Verdict.NOT_APPLICABLE, case.id
    assert any(r.verdict is Verdict.NOT_APPLICABLE for r in results.values())


def test_cases_leave_the_card_as_they_found_it(tmp_path: Path) -> None:
    card = new_card()
    runner = runner_for(card)
    before = card.image()
    changed = []
    for case in all_mine():
        runner.run(case)
        now = card.image()
        if now != before:
            changed.append(case.id)
            before = now
    assert not changed


@cache
def group_results(fault: str) -> dict[str, CaseResult]:
    """The fault's group's cases run on a card carrying the fault (cached: reused below)."""
    return run_cases(my_cases()[FAULTS[fault].group], faults=[fault])


@pytest.mark.parametrize("fault", MY_FAULTS)
def test_fault_is_caught_by_its_group(fault: str) -> None:
    group = FAULTS[fault].group
    results = group_results(fault)
    failing = [i for i, r in results.items() if r.verdict is Verdict.FAIL]
    assert failing, f"no {group} case catches {fault}"
    assert all(i.startswith(f"{group}-") for i in failing)
    assert not [i for i, r in results.items() if r.verdict is Verdict.ERROR]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("unknown_cla_accepted", {"CMD-CLA-001", "CMD-ORD-001"}),
        ("known_ins_wrong_class_accepted", {"CMD-CLA-001", "CMD-ORD-002"}),
        ("wrong_le_6700", {"CMD-LE-DDF1-EF05-001", "CMD-RB-DDF1-EF07-001"}),
        ("select_children_only", {"CMD-SEL-LKP-001", "CMD-SEL-LKP-002", "CMD-SEL-LKP-003",
                                  "CMD-SEL-LKP-004"}),
        ("select_any_ef", {"CMD-SEL-DF03-002", "CMD-SEL-DDF1-002"}),
        ("extended_length_accepted", {"CMD-EXT-001", "CMD-EXT-004", "CMD-ORD-007"}),
        ("wrong_lc_6a87", {"CMD-LC-001", "CMD-LC-002", "CMD-ORD-008"}),
        ("data_tlv_len_item11", {"DATA-TLV-011"}),
        ("data_tag_ddf1_ef05_rec10", {"DATA-TLV-057", "DATA-RID-DDF1-EF05-010"}),
        ("data_card_number_altered", {"DATA-VAL-008", "DATA-CON-CARD-NUMBER-IS-ID"}),
        ("data_dates_ddmmyyyy", {"DATA-VAL-006", "DATA-VAL-014", "DATA-CON-BIRTH-DATE-IN-ID"}),
        ("data_index_flags_01", {"DATA-IDX-DF03-EF05-001", "DATA-IDX-DF03-EF06-001"}),
        ("data_city_code_missing", {"DATA-CITY-001"}),
        ("data_an_utf8", {"DATA-COD-011"}),
    ],
)
def test_named_cases_catch_their_fault(fault: str, expected: set[str]) -> None:
    cases = [c for c in all_mine() if c.id in expected]
    assert len(cases) == len(expected)
    results = run_cases(cases, faults=[fault])
    assert {i for i, r in results.items() if r.verdict is Verdict.FAIL} == expected


def test_every_case_is_caught_by_some_fault_of_the_catalogue() -> None:
    caught: set[str] = set()
    for fault in MY_FAULTS:
        caught |= {i for i, r in group_results(fault).items() if r.verdict is Verdict.FAIL}
    rest = [c for c in all_mine() if c.id not in caught]  # e.g. CMD-ORD-009: SEC faults
    for fault in sorted(set(FAULTS) - set(MY_FAULTS)):
        if not rest:
            break
        # a fault that needs a feature runs on the shipped product declaring it
        results = run_cases(rest, faults=[fault],
                            product=feature_product(FAULTS[fault].requires))
        rest = [c for c in rest if results[c.id].verdict is not Verdict.FAIL]
    assert not rest, [c.id for c in rest]


# --------------------------------------------------------------------------- plan parameters

CMD_PARAMETERS = ("challenge_samples", "unknown_classes", "unknown_ins", "missing_fids")


def _run_with(case_ids: list[str], parameters: dict[str, object] | None = None,
              drop: tuple[str, ...] = (),
              responder: ApduResponder | None = None) -> dict[str, CaseResult]:
    """Run cases with the certification plan's parameters changed (or dropped), on a fresh
    reference card or on ``responder``."""
    prof = profile()
    base = load_plan("certification")
    merged = {k: v for k, v in {**base.parameters, **(parameters or {})}.items()
              if k not in drop}
    plan = Plan(name="cmd-test", title_zh=base.title_zh, title_en=base.title_en,
                parameters=merged)
    card = responder or new_card()
    runner = CaseRunner(
        connect=lambda: InProcessTransport(card, name="virtual"),
        profile=prof,
        keys=TestKeyProvider(load_key_set(DEFAULT_TEST_KEYS, prof)),
        product=load_product(None, prof),
        plan=plan,
    )
    cases = {c.id: c for c in all_mine()}
    return {i: runner.run(cases[i]) for i in case_ids}


def test_plans_carry_the_cmd_parameters() -> None:
    for name in ("certification", "selftest"):
        parameters = load_plan(name).parameters
        assert set(CMD_PARAMETERS) <= parameters.keys(), name
        assert parameters["challenge_samples"] >= 2
        assert all(isinstance(v, str) for k in CMD_PARAMETERS[1:] for v in parameters[k])


@pytest.mark.parametrize(
    ("case_ids", "parameters", "drop", "named"),
    [
        (["CMD-CHAL-001"], {"challenge_samples": 1}, (), "challenge_samples"),
        (["CMD-CHAL-001"], {"challenge_samples": 0}, (), "challenge_samples"),
        (["CMD-CHAL-001"], {}, ("challenge_samples",), "challenge_samples"),
        (["CMD-CHAL-001"], {"challenge_samples": "300"}, (), "challenge_samples"),
        # every INS listed is one the profile uses: nothing is left to try
        (["CMD-INS-001", "CMD-ORD-003", "CMD-ORD-004"], {"unknown_ins": ["B2", "A4"]}, (),
         "unknown_ins"),
        (["CMD-INS-001"], {}, ("unknown_ins",), "unknown_ins"),
        (["CMD-CLA-001", "CMD-ORD-001"], {"unknown_classes": ["00", "84"]}, (),
         "unknown_classes"),
        (["CMD-CLA-001"], {"unknown_classes": [160]}, (), "unknown_classes"),  # unquoted
        (["CMD-SEL-MF-001"], {"missing_fids": ["DF09", 1]}, (), "missing_fids"),
        (["CMD-SEL-MF-001"], {}, ("missing_fids",), "missing_fids"),
    ],
)
def test_plan_mistakes_are_errors_not_verdicts(case_ids, parameters, drop, named) -> None:
    results = _run_with(case_ids, parameters, drop)
    for case_id, result in results.items():
        assert result.verdict is Verdict.ERROR, (case_id, result.verdict, result.reason)
        assert named in result.reason, (case_id, result.reason)


def test_unknown_ins_and_class_come_from_the_plan() -> None:
    results = _run_with(["CMD-INS-001", "CMD-ORD-003", "CMD-ORD-004", "CMD-CLA-001"],
                        {"unknown_ins": ["B2", "E2"], "unknown_classes": ["00", "C0"]})
    assert all(r.verdict is Verdict.PASS for r in results.values()), results


# --------------------------------------------------------------------------- T=0


class _GetResponseFlipsFirstByte:
    """A double of a card whose GET RESPONSE corrupts the first byte of what it returns."""

    def __init__(self) -> None:
        self.card = new_card()

    def reset(self) -> bytes:
        return self.card.reset()

    def process(self, apdu: bytes) -> bytes:
        answer = self.card.process(apdu)
        if apdu[1] == 0xC0 and len(answer) > 2:
            return bytes([answer[0] ^ 0xFF]) + answer[1:]
        return answer


def test_t0_record_is_judged_against_the_profile_not_the_card() -> None:
    """CMD-T0-002 checks the TLV framing the profile gives (tag = item number, length = item
    length): a card that corrupts GET RESPONSE everywhere cannot agree with itself into a
    PASS."""
    result = _run_with(["CMD-T0-002"], responder=_GetResponseFlipsFirstByte())["CMD-T0-002"]
    assert result.verdict is Verdict.FAIL, (result.verdict, result.reason)
    assert "tag and length" in result.reason


def test_t0_cases_fail_on_a_short_get_response() -> None:
    results = run_cases([c for c in all_mine() if c.id in ("CMD-T0-001", "CMD-T0-002")],
                        faults=["get_response_broken"])
    assert all(r.verdict is Verdict.FAIL for r in results.values()), results


# --------------------------------------------------------------------------- rules


def _iso7064(first17: str) -> str:
    """MOD 11-2 written independently: check = (12 - Σ a_i·2^(i-1) mod 11) mod 11, i from
    the right with the check character at i = 1."""
    total = sum(int(c) * pow(2, 17 - k, 11) for k, c in enumerate(first17))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_id_check_char_matches_iso7064(body: str) -> None:
    assert id_check_char(body) == _iso7064(body)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("11010519491231002X", True),  # GB 11643-1999 worked example
        ("", True),
        ("110105194912310021", False),  # wrong check character
        ("11010519491231002x", False),  # X must be upper case
        ("11010519491331002X", False),  # month 13
        ("1101051949123100", False),  # too short
        ("1101051949A231002X", False),  # not digits
    ],
)
def test_check_id_number(value: str, ok: bool) -> None:
    assert (check_id_number(value) is None) is ok


def test_id_number_of_a_leap_day() -> None:
    body = "11010520000229123"
    assert check_id_number(body + id_check_char(body)) is None
    body = "11010519000229123"  # 1900 was no leap year
    assert check_id_number(body + id_check_char(body)) is not None


@pytest.mark.parametrize(
    ("value", "ok"),
    [("20240229", True), ("19491231", True), ("", True), ("20230229", False),
     ("20241301", False), ("20240100", False), ("2024010", False), ("2024010A", False),
     ("01012024", False)],
)
def test_check_date(value: str, ok: bool) -> None:
    assert (check_date(value) is None) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [("13800000000", True), ("0371-12345678", True), ("+86-13800000000", True), ("", True),
     ("13800000000   ", False), ("12", False), ("abc", False), ("138--0000", False),
     ("-12345", False)],
)
def test_check_phone(value: str, ok: bool) -> None:
    assert (check_phone(value) is None) is ok


def test_check_digits_and_codes() -> None:
    assert check_digits("2017") is None and check_digits("") is None
    assert check_digits("20 7") is not None
    sex = CodeTable(ref="t", values=["01", "02"])
    city = CodeTable(ref="t", pattern="^4[0-9]{5}$")
    assert check_code("01", "sex", sex) is None and check_code("", "sex", sex) is None
    assert check_code("03", "sex", sex) is not None
    assert check_code("410100", "city", city) is None
    assert check_code("510100", "city", city) is not None
    tables = profile().spec.code_tables
    assert check_rule("code:flag", "01", tables) is None
    assert check_rule("code:flag", "FF", tables) is not None
    assert check_rule("date", "20240101", tables) is None
    with pytest.raises(KeyError):
        check_rule("code:nope", "1", tables)
    with pytest.raises(KeyError):
        check_rule("colour", "1", tables)


@pytest.mark.parametrize(
    ("coding", "raw", "ok"),
    [
        (Coding.CN, "1F", True), (Coding.CN, "FFFF", True), (Coding.CN, "20240101", True),
        (Coding.CN, "F1", False), (Coding.CN, "1A", False), (Coding.CN, "1F2F", False),
        (Coding.AN, "310000", True), (Coding.AN, "000000", True),
        (Coding.AN, "CDF5B2E2CAD40000", True), (Coding.AN, "32303137", True),
        (Coding.AN, "310031", False),  # data after the 00 padding
        (Coding.AN, "312020", False),  # padded with spaces
        (Coding.AN, "202020", False),  # an empty value of spaces
        (Coding.AN, "E78E8BE6B58BE8AF9500", False),  # 王测试 in UTF-8
        (Coding.AN, "FFFF00", False),
        (Coding.B, "00", True), (Coding.B, "FF", True),
    ],
)
def test_check_coding(coding: Coding, raw: str, ok: bool) -> None:
    value = bytes.fromhex(raw)
    assert (check_coding(coding, value, len(value)) is None) is ok


def test_check_coding_length() -> None:
    assert check_coding(Coding.B, b"\x00", 2) is not None
    assert check_coding("CN", b"\xff" * 3, 3) is None
