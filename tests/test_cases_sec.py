"""The SEC case group against the reference virtual card and the defect catalogue.

Every SEC case passes on the reference card (and on the minimal product) and leaves the card as
it found it; each fault of the SEC group, and each other fault a SEC case family relies on, makes
every case of the families listed for it FAIL; and every SEC case belongs to at least one such
family, so no SEC case is one that cannot fail.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from functools import cache
from pathlib import Path

import pytest
from casekit import group_cases, new_card, profile, run_cases, runner_for

from conformance.card.faults import FAULTS
from conformance.cases.framework import Case
from conformance.host.keys import TestKeyProvider
from conformance.model import DEFAULT_TEST_KEYS, load_key_set
from conformance.model.products import PRODUCTS_DIR, Plan, load_plan, load_product
from conformance.results import Verdict
from conformance.runner import CaseRunner
from conformance.transport.inprocess import InProcessTransport

CASES_DIR = Path(__file__).resolve().parents[1] / "conformance" / "cases"
SEC_MODULES = sorted(CASES_DIR.glob("sec*.py"))

# Fault → the case families (fnmatch patterns; "!" excludes) that must FAIL under it. This is
# also the record of which fault catches which family.
CATCHES: dict[str, list[str]] = {
    # read rights
    "sec_read_unchecked": ["SEC-RD-*-001", "SEC-RD-*-002", "SEC-RD-*-004", "SEC-RD-*-005",
                           "SEC-RD-*-006", "!SEC-RD-DDF1-EF05-001"],
    "sec_ddf1_ef06_free_read": ["SEC-RD-DDF1-EF06-001"],
    "sec_ddf1_read_opens_df01": ["SEC-RD-DF01-*-002"],
    "sec_read_key_grants_nothing": ["SEC-RD-*-003", "SEC-KEY-RK-*-001"],
    "sec_update_grants_read": ["SEC-RD-*-005", "!SEC-RD-DF03-EF0[56]-005"],
    "get_response_broken": ["SEC-RD-DDF1-EF05-001"],  # the free read checks record lengths
    # keys and EXTERNAL AUTHENTICATE
    "sec_retry_not_decremented": ["SEC-KEY-*-001", "SEC-KEY-*-002", "SEC-KEY-*-003",
                                  "SEC-DIV-001", "SEC-DIV-002"],
    "sec_retry_not_restored": ["SEC-KEY-*-002"],
    "sec_failed_auth_revokes": ["SEC-KEY-*-003"],
    "sec_kid_any_df": ["SEC-EA-*-001"],
    "sec_ext_auth_trailer_ignored": ["SEC-EA-*-002"],
    "wrong_p1p2_6b00": ["SEC-EA-*-003"],
    "wrong_lc_6a87": ["SEC-EA-*-004"],
    "sec_keys_follow_item57": ["SEC-DIV-003"],
    # security state and challenge
    "sec_rights_survive_df_change": ["SEC-ST-*-001", "SEC-CH-*-*-001"],
    "sec_rights_survive_reset": ["SEC-ST-*-002"],
    "sec_reselect_df_clears": ["SEC-ST-*-003"],
    "sec_challenge_reusable": ["SEC-EA-*-005", "SEC-CH-*-*-001", "SEC-CH-*-002",
                               "SEC-CH-*-005"],
    "sec_challenge_survives_reset": ["SEC-CH-*-003"],
    "sec_challenge_cleared_by_select": ["SEC-CH-*-004"],
    # updates, secure messaging, key separation
    "sec_sm_without_update_right": ["SEC-UPD-DDF1-EF0[568]-001", "SEC-UPD-DF01-*-001",
                                    "SEC-UPD-DF02-EF0[56]-001"],
    "sec_update_any_key": ["SEC-SEP-*", "SEC-UPD-*-001", "SEC-UPD-DF03-EF0[56]-00[23]",
                           "!SEC-UPD-DDF1-EF05-001"],
    "sec_plain_update_tlv": ["SEC-UPD-*-002", "!SEC-UPD-DF03-EF0[56]-002"],
    "sec_wrong_mac_accepted": ["SEC-UPD-*-003", "!SEC-UPD-DF03-EF0[56]-003"],
    "sec_sm_update_ignored": ["SEC-UPD-DDF1-EF0[568]-004", "SEC-UPD-DF01-*-004",
                              "SEC-UPD-DF02-EF0[56]-004", "SEC-CH-*-005"],
    "sec_sm_tlv_unchecked": ["SEC-UPD-*-005", "SEC-UPD-*-006"],
    "wrong_structure_6986": ["SEC-UPD-DDF1-EF07-004", "SEC-UPD-DF02-EF0[78]-004",
                             "SEC-UPD-DF03-*-004"],
    "sec_uk_df02_1_opens_ef06": ["SEC-SEP-DF02-EF06-001"],
    "sec_uk_df03_1_erases": ["SEC-SEP-DF03-EF0[56]-001"],
    "sec_uk_df03_2_marks": ["SEC-SEP-DF03-EF0[56]-002"],
}


def matches(case_id: str, patterns: list[str]) -> bool:
    keep = [p for p in patterns if not p.startswith("!")]
    drop = [p[1:] for p in patterns if p.startswith("!")]
    return any(fnmatch.fnmatchcase(case_id, p) for p in keep) and not any(
        fnmatch.fnmatchcase(case_id, p) for p in drop
    )


@cache
def sec_cases() -> tuple[Case, ...]:
    return group_cases("SEC")


def by_id() -> dict[str, Case]:
    return {c.id: c for c in sec_cases()}


def default_plan() -> list[Case]:
    return [c for c in sec_cases() if not c.destructive]


# ------------------------------------------------------------------------------- the catalogue


def test_group_is_thorough_and_well_formed() -> None:
    cases = sec_cases()
    assert len(cases) >= 300
    assert len({c.id for c in cases}) == len(cases)
    for case in cases:
        assert case.group == "SEC" and re.fullmatch(r"SEC-[A-Z0-9-]+-\d{3}", case.id), case.id
        assert case.title_zh and case.title_en and case.purpose, case.id
        assert "REFERENCE.md §" in case.clause and "evidence" in case.clause, case.id
        assert case.severity in ("blocker", "critical", "normal", "minor"), case.id
        assert case.expected_sw and all(re.fullmatch(r"[0-9A-Fx]{2,4}", sw)
                                        for sw in case.expected_sw), case.id
        assert case.applicability == "True", case.id
    # cases relying on [choice] values say so; only the free read relies on none
    without_choice = [c.id for c in cases if not c.reference_choice]
    assert without_choice == ["SEC-RD-DDF1-EF05-001"]
    assert not [c.id for c in cases if c.destructive]  # no case locks a key (§3)
    retry_cases = [c for c in cases if c.id.startswith(("SEC-KEY-", "SEC-DIV-00"))]
    assert all("retry_limit" in c.choices or c.id == "SEC-DIV-003"
               for c in retry_cases)


def test_per_file_and_per_key_generation() -> None:
    prof = profile()
    ids = set(by_id())
    for path, ef in prof.files.items():
        slug = path.replace("/", "-")
        assert f"SEC-RD-{slug}-001" in ids
        if ef.access.read != "free":
            assert {f"SEC-RD-{slug}-002", f"SEC-RD-{slug}-003"} <= ids
        if ef.access.update_mode == "sm":
            assert {f"SEC-UPD-{slug}-{n:03d}" for n in range(1, 7)} <= ids
    for family, key in prof.keys.items():
        if key.kid is not None:
            k = family.replace("_", "-")
            assert {f"SEC-KEY-{k}-001", f"SEC-KEY-{k}-002", f"SEC-KEY-{k}-003",
                    f"SEC-ST-{k}-001", f"SEC-ST-{k}-002", f"SEC-ST-{k}-003",
                    f"SEC-CH-{k}-001"} <= ids
    # the selftest plan's "SEC-*-DDF1-*" selects the DDF1 keys' cases too
    assert fnmatch.fnmatchcase("SEC-KEY-RK-DDF1-001", "SEC-*-DDF1-*")


def test_cases_never_import_the_card() -> None:
    for module in SEC_MODULES:
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.startswith("conformance.card") for n in names), module.name


# ------------------------------------------------------------------------------- reference card


def test_every_case_passes_on_the_reference_card_and_leaves_it_as_found(tmp_path) -> None:
    card = new_card()
    runner = runner_for(card)
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    bad, changed = {}, []
    for case in default_plan():
        card.save_image(before)
        result = runner.run(case)
        card.save_image(after)
        if result.verdict is not Verdict.PASS:
            bad[case.id] = f"{result.verdict}: {result.reason}"
        if before.read_bytes() != after.read_bytes():
            changed.append(case.id)
    assert not bad, bad
    assert not changed, f"cases that changed the card: {changed}"


def test_every_case_passes_on_the_minimal_product() -> None:
    minimal = load_product(PRODUCTS_DIR / "minimal.yaml", profile())
    results = run_cases(default_plan(), product=minimal)
    bad = {i: f"{r.verdict}: {r.reason}" for i, r in results.items()
           if r.verdict is not Verdict.PASS}
    assert not bad, bad


def _runner(parameters: dict[str, object], out_dir: Path | None = None,
            drop: tuple[str, ...] = ()) -> CaseRunner:
    prof = profile()
    base = load_plan("certification")
    merged = {k: v for k, v in {**base.parameters, **parameters}.items() if k not in drop}
    plan = Plan(name="sec-test", title_zh=base.title_zh, title_en=base.title_en,
                parameters=merged, include_destructive=True)
    card = new_card()
    return CaseRunner(
        connect=lambda: InProcessTransport(card, name="virtual"),
        profile=prof,
        keys=TestKeyProvider(load_key_set(DEFAULT_TEST_KEYS, prof)),
        product=load_product(None, prof),
        plan=plan,
        out_dir=out_dir,
    )


@pytest.mark.parametrize(("tries", "last"), [(1, "63CE"), (2, "63CD")])
def test_wrong_tries_follow_the_plan(tmp_path, tries, last) -> None:
    cases = [c for c in sec_cases() if fnmatch.fnmatchcase(c.id, "SEC-KEY-*-001")]
    runner = _runner({"wrong_cryptogram_tries": tries}, tmp_path)
    for case in cases:
        result = runner.run(case)
        assert result.verdict is Verdict.PASS, result.reason
        evidence = (tmp_path / (result.evidence or "")).read_text(encoding="utf-8")
        assert last in evidence
        assert "63CC" not in evidence and (tries > 1 or "63CD" not in evidence)


def test_plans_carry_the_try_budget_within_the_reference_cap() -> None:
    for name in ("certification", "selftest"):
        parameters = load_plan(name).parameters
        assert 1 <= parameters["wrong_cryptogram_tries"] <= parameters["max_wrong_tries"] <= 2


@pytest.mark.parametrize(
    ("parameters", "drop", "named"),
    [
        ({"wrong_cryptogram_tries": 9}, (), "wrong_cryptogram_tries"),
        ({"wrong_cryptogram_tries": 0}, (), "wrong_cryptogram_tries"),
        ({"wrong_cryptogram_tries": "2"}, (), "wrong_cryptogram_tries"),
        ({"wrong_cryptogram_tries": True}, (), "wrong_cryptogram_tries"),
        ({"wrong_cryptogram_tries": 2, "max_wrong_tries": 1}, (), "wrong_cryptogram_tries"),
        ({"max_wrong_tries": 3}, (), "max_wrong_tries"),  # beyond REFERENCE.md §3's cap
        ({"max_wrong_tries": 0}, (), "max_wrong_tries"),
        ({}, ("max_wrong_tries",), "max_wrong_tries"),
    ],
)
def test_a_bad_try_budget_is_a_plan_error_not_clamped(tmp_path, parameters, drop,
                                                       named) -> None:
    case = next(c for c in sec_cases() if fnmatch.fnmatchcase(c.id, "SEC-KEY-*-001"))
    result = _runner(parameters, tmp_path, drop).run(case)
    assert result.verdict is Verdict.ERROR, (result.verdict, result.reason)
    assert named in result.reason
    evidence = (tmp_path / (result.evidence or "")).read_text(encoding="utf-8")
    assert "63C" not in evidence  # no wrong try was spent


def test_wrong_tries_default_to_one_when_the_plan_leaves_them_out(tmp_path) -> None:
    case = next(c for c in sec_cases() if fnmatch.fnmatchcase(c.id, "SEC-KEY-*-001"))
    result = _runner({}, tmp_path, ("wrong_cryptogram_tries",)).run(case)
    assert result.verdict is Verdict.PASS, result.reason
    evidence = (tmp_path / (result.evidence or "")).read_text(encoding="utf-8")
    assert "63CE" in evidence and "63CD" not in evidence


class _KeepsAChallenge:
    """A double of a card that, without a fresh challenge, answers as if it still held some
    other one: a wrong cryptogram (63CE) to EXTERNAL AUTHENTICATE, a wrong MAC (6988) to an
    SM update, where REFERENCE.md §3 requires 6985."""

    def __init__(self) -> None:
        self.card = new_card()

    def reset(self) -> bytes:
        return self.card.reset()

    def process(self, apdu: bytes) -> bytes:
        answer = self.card.process(apdu)
        if answer[-2:] == bytes.fromhex("6985"):
            if apdu[1] == 0x82:
                return bytes.fromhex("63CE")
            if apdu[:2] == bytes.fromhex("04DC"):
                return bytes.fromhex("6988")
        return answer


@pytest.mark.parametrize("case_id", ["SEC-CH-RK-DDF1-001", "SEC-CH-DDF1-EF05-005"])
def test_a_replay_must_answer_no_challenge(case_id: str) -> None:
    """REFERENCE.md §3: a consumed challenge is gone, so a replay answers 6985; 63Cx or 6988
    (a card that kept a challenge) is a FAIL, not an accepted refusal."""
    case = by_id()[case_id]
    assert "6985" in case.expected_sw
    double = _KeepsAChallenge()
    runner = CaseRunner(
        connect=lambda: InProcessTransport(double, name="keeps-a-challenge"),
        profile=profile(),
        keys=TestKeyProvider(load_key_set(DEFAULT_TEST_KEYS, profile())),
        product=load_product(None, profile()),
        plan=load_plan("certification"),
    )
    result = runner.run(case)
    assert result.verdict is Verdict.FAIL, (result.verdict, result.reason)
    assert "6985" in result.reason


# ------------------------------------------------------------------------------- faults


def test_every_sec_fault_has_case_families_and_every_case_one_fault() -> None:
    sec_faults = {name for name, f in FAULTS.items() if f.group == "SEC" and not f.generated}
    assert sec_faults <= CATCHES.keys(), sorted(sec_faults - CATCHES.keys())
    assert CATCHES.keys() <= FAULTS.keys(), sorted(CATCHES.keys() - FAULTS.keys())
    uncaught = [c.id for c in sec_cases()
                if not any(matches(c.id, patterns) for patterns in CATCHES.values())]
    assert not uncaught, f"SEC cases no listed fault catches: {uncaught}"


@pytest.mark.parametrize("fault", sorted(CATCHES))
def test_fault_fails_every_case_of_its_families(fault: str) -> None:
    family = [c for c in sec_cases() if matches(c.id, CATCHES[fault])]
    assert family, f"{fault}: its patterns match no case"
    results = run_cases(family, faults=[fault])
    not_failing = {i: f"{r.verdict}: {r.reason}" for i, r in results.items()
                   if r.verdict is not Verdict.FAIL}
    assert not not_failing, f"{fault} ({FAULTS[fault].group}) should fail: {not_failing}"
    assert all(r.group == "SEC" for r in results.values())
