"""The CYC, IDX, REC and PIN case groups against the reference virtual card.

- every applicable case PASSes on the reference card and leaves it exactly as it found it
  (none is destructive: the PIN is never blocked);
- with the minimal product, the PIN and record-signature cases are NOT_APPLICABLE;
- each fault of these groups makes at least one of their cases FAIL, and only cases of the
  fault's own group;
- every case family is made to FAIL by the faults named in CATCHERS (which doubles as the
  record of which fault catches which family).
"""

from __future__ import annotations

import json
import re
from functools import cache

import pytest
from casekit import group_cases, new_card, profile, reference_product, run_cases, runner_for

from conformance.card.faults import FAULTS
from conformance.cases import rec
from conformance.cases.framework import Case
from conformance.model.products import load_product
from conformance.model.tree import index_files, indexed_files
from conformance.resources import PROFILES_DIR
from conformance.results import CaseResult, Verdict
from conformance.transport.redact import MASK_PREFIX

GROUPS = ("CYC", "IDX", "REC", "PIN")

# Case-ID pattern (regex, full match) → faults that must make every matching case FAIL.
CATCHERS: dict[str, tuple[str, ...]] = {
    r"CYC-DF\d\d-EF\d\d-00[12]": ("cyc_no_rotate", "cyc_newest_last"),
    r"CYC-DF\d\d-EF\d\d-003": ("cyc_rewrite_appends",),
    r"CYC-NONCYCLIC-.*-001": ("wrong_structure_6986",),
    r"IDX-.*-R\d+-001": ("idx_mark_writes_01", "idx_erase_noop"),
    r"IDX-DF\d\d-EF\d\d-001": ("idx_data_field_accepted",),
    r"IDX-DF\d\d-EF\d\d-002": ("wrong_p1p2_6b00",),
    r"IDX-DF\d\d-EF\d\d-003": ("missing_record_6a82",),
    r"IDX-DF\d\d-EF\d\d-004": ("sec_uk_df03_2_marks",),
    r"IDX-DF\d\d-EF\d\d-005": ("sec_uk_df03_1_erases",),
    r"IDX-DF\d\d-EF\d\d-006": ("idx_plain_update_accepted",),
    r"REC-.*-001": ("rec_update_past_end_truncates", "read_binary_past_end_6a82"),
    r"REC-.*-00[236]": ("rec_truncate_1024", "rec_offset_ignored", "rec_signature_readonly"),
    r"REC-.*-004": ("sec_update_grants_read",),
    r"REC-.*-005": ("rec_read_key_writes",),
    r"PIN-VERIFY-001": ("pin_wrong_not_decremented",),
    r"PIN-CHANGE-001": ("pin_change_ignored",),
    r"PIN-CHANGE-002": ("pin_change_no_old_check",),
}


@cache
def my_cases() -> tuple[Case, ...]:
    return group_cases(*GROUPS)


def _bad(results: dict[str, CaseResult], allowed: tuple[Verdict, ...]) -> dict[str, str]:
    return {i: f"{r.verdict.value}: {r.reason}" for i, r in results.items()
            if r.verdict not in allowed}


@cache
def fault_results(fault: str) -> dict[str, CaseResult]:
    return run_cases(my_cases(), faults=[fault])


# --------------------------------------------------------------------------- the catalogue


def test_cases_are_generated_from_the_model() -> None:
    prof = profile()
    by_group = {g: [c for c in my_cases() if c.group == g] for g in GROUPS}
    cyclic = [p for p, ef in prof.files.items() if ef.structure == "cyclic"]
    indexes = index_files(prof)
    records = indexed_files(prof)
    assert len(cyclic) == 2 and len(indexes) == 2 and len(records) == 8
    assert len(by_group["CYC"]) == 3 * len(cyclic) + 2
    index_records = sum(prof.file(p).records or 0 for p in indexes)
    assert len(by_group["IDX"]) == index_records + 6 * len(indexes)
    assert len(by_group["REC"]) == 6 * len(records)
    assert len(by_group["PIN"]) == 3
    ids = [c.id for c in my_cases()]
    assert len(ids) == len(set(ids))
    for case in my_cases():
        assert re.fullmatch(rf"{case.group}-[A-Z0-9-]+-\d{{3}}", case.id), case.id
        assert case.title_zh and case.title_en and case.clause and case.purpose, case.id
        assert case.expected_sw, case.id
        assert case.severity in ("blocker", "critical", "normal", "minor"), case.id
    assert all(c.applicability == "pin" for c in by_group["PIN"])
    signed = [c for c in by_group["REC"] if c.id.endswith("-006")]
    assert len(signed) == 8 and all(c.applicability == "record_signatures" for c in signed)
    assert not [c.id for c in my_cases() if c.destructive]
    for case in my_cases():  # verdicts that rest on a [choice] say so
        rests_on_choice = (
            set(case.expected_sw) - {"9000"}  # §5 status words are choices
            or case.group == "PIN"  # §6 pin is a choice
            or case.applicability == "record_signatures"  # §4 signature layout
            or re.fullmatch(r"(CYC-.*-003|IDX-.*-R\d+-001)", case.id)  # P2=04 rewrite, forms
        )
        assert bool(case.reference_choice) == bool(rests_on_choice), case.id


def test_indexed_files_and_probe_fields_follow_the_layout() -> None:
    prof = profile()
    assert indexed_files(prof)[:3] == ["DF03/EE01", "DF03/EE02", "DF03/EE03"]
    fields = rec.probe_fields(prof, "DF03/EE01")
    offsets = [f.offset for f in fields]
    assert offsets[0] == 0 and fields[-1].offset + fields[-1].length == 1893
    assert {211, 212} <= {f.item for f in fields}
    for boundary in range(0xFF, 1893, 0xFF):  # every chunk boundary is written across
        assert any(f.offset < boundary < f.offset + f.length or boundary in
                   (f.offset, f.offset + f.length) for f in fields), boundary
    assert {213, 383, 384} <= {f.item for f in rec.probe_fields(prof, "DF03/ED01")}


# --------------------------------------------------------------------------- reference card


def test_every_case_passes_on_the_reference_card() -> None:
    results = run_cases(my_cases())
    assert not _bad(results, (Verdict.PASS,)), _bad(results, (Verdict.PASS,))


def test_every_case_leaves_the_card_as_it_found_it() -> None:
    card = new_card()
    runner = runner_for(card)
    changed = []
    for case in my_cases():
        before = card.image()
        result = runner.run(case)
        assert result.verdict is Verdict.PASS, (case.id, result.reason)
        if card.image() != before:
            changed.append(case.id)
    assert not changed


def test_minimal_product_makes_pin_and_signature_cases_not_applicable() -> None:
    minimal = load_product(PROFILES_DIR / "products" / "minimal.yaml", profile())
    results = run_cases(my_cases(), product=minimal)
    for case in my_cases():
        verdict = results[case.id].verdict
        if case.applicability == "True":
            assert verdict is Verdict.PASS, (case.id, results[case.id].reason)
        else:
            assert verdict is Verdict.NOT_APPLICABLE, case.id


def test_signature_case_judges_the_stored_bytes_not_sm2(monkeypatch) -> None:
    """REC-*-006 judges the card (the signed bytes, signature and key come back as written);
    verifying SM2 over bytes equal to those signed would only test the harness."""

    def no_verify(*_: object) -> bool:
        raise AssertionError("REC-*-006 must not verify SM2 signatures")

    monkeypatch.setattr("conformance.crypto.sm2_verify", no_verify)
    signed = [c for c in my_cases() if c.id.startswith("REC-") and c.id.endswith("-006")][:1]
    results = run_cases(signed)
    assert all(r.verdict is Verdict.PASS for r in results.values()), results
    results = run_cases(signed, faults=["rec_signature_readonly"])
    assert all(r.verdict is Verdict.FAIL for r in results.values()), results


# --------------------------------------------------------------------------- the sample PIN


def test_pin_cases_are_inconclusive_without_a_sample_pin() -> None:
    product = reference_product().model_copy(update={"sample_pin": None})
    pin_cases = [c for c in my_cases() if c.group == "PIN"]
    results = run_cases(pin_cases, product=product)
    for case in pin_cases:
        assert results[case.id].verdict is Verdict.INCONCLUSIVE, case.id
        assert "sample_pin" in results[case.id].reason


def test_sample_pin_stays_out_of_dumps_reasons_and_traces(tmp_path) -> None:
    product = reference_product()
    secret = product.sample_pin.get_secret_value()
    assert secret == "123456"  # the default personalization's PIN
    assert "sample_pin" not in product.model_dump()
    assert secret not in repr(product)
    card = new_card(["pin_change_ignored"])  # a failing run: reasons are written
    runner = runner_for(card)
    runner.out_dir = tmp_path
    headers = ("".join(f"{b:02X}" for b in profile().command(name)) for name in
               ("verify_pin", "change_pin"))
    pin_headers = tuple(headers)
    for case in (c for c in my_cases() if c.group == "PIN"):
        result = runner.run(case)
        assert secret not in result.reason
        pin_commands = [e["command"] for e in map(json.loads, (
            tmp_path / result.evidence).read_text().splitlines())
            if e["command"].startswith(pin_headers)]
        assert pin_commands, case.id
        for command in pin_commands:  # the PIN (BCD: hex = the digits) is masked
            assert MASK_PREFIX in command and secret not in command, command


# --------------------------------------------------------------------------- faults


MY_FAULTS = sorted(f for f, fault in FAULTS.items() if fault.group in GROUPS)


@pytest.mark.parametrize("fault", MY_FAULTS)
def test_fault_is_caught_by_its_own_group(fault: str) -> None:
    results = fault_results(fault)
    failing = {i: r for i, r in results.items() if r.verdict is Verdict.FAIL}
    group = FAULTS[fault].group
    assert failing, f"no CYC/IDX/REC/PIN case catches {fault}"
    assert {r.group for r in failing.values()} == {group}, sorted(failing)
    assert not _bad(results, (Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE))


@pytest.mark.parametrize("pattern", sorted(CATCHERS))
def test_every_case_family_is_caught(pattern: str) -> None:
    matching = [c for c in my_cases() if re.fullmatch(pattern, c.id)]
    assert matching, pattern
    for fault in CATCHERS[pattern]:
        results = run_cases(matching, faults=[fault])
        missed = [i for i, r in results.items() if r.verdict is not Verdict.FAIL]
        assert not missed, f"{fault} does not make {missed} FAIL"


def test_every_case_has_a_catcher() -> None:
    uncovered = [c.id for c in my_cases()
                 if not any(re.fullmatch(p, c.id) for p in CATCHERS)]
    assert not uncovered
