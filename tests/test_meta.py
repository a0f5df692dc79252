"""Meta-tests: the catalogue is honest.

Every case PASSes on the reference card and leaves it as it found it; every fault of the
defect catalogue makes at least one case of its group FAIL; every case is made to FAIL by at
least one fault (a case that cannot fail is a defect).
"""

from __future__ import annotations

import json
from collections import defaultdict
from functools import cache

import pytest
from casekit import catalogue, new_card, reference_product, run_cases, runner_for

from conformance.card.faults import ALSO_BREAKS, FAULTS
from conformance.results import CaseResult, Verdict

NO_VERDICT = (Verdict.ERROR, Verdict.INCONCLUSIVE)


def run_catalogue(faults: tuple[str, ...] = ()) -> dict[str, CaseResult]:
    """Non-destructive cases on one card (as a lab runs them); each destructive case on a
    card of its own, so what it destroys cannot spill into other verdicts."""
    cases = catalogue()
    results = run_cases([c for c in cases if not c.destructive], faults=faults)
    for case in cases:
        if case.destructive:
            results.update(run_cases([case], faults=faults))
    return results


@cache
def fault_results(fault: str) -> dict[str, CaseResult]:
    return run_catalogue((fault,))


def test_catalogue_is_large_and_well_formed() -> None:
    cases = catalogue()
    assert len(cases) >= 300
    for case in cases:
        assert case.id.startswith(case.group + "-"), case.id
        assert case.title_zh and case.title_en and case.clause and case.purpose, case.id


def test_every_case_passes_on_the_reference_card() -> None:
    results = run_catalogue()
    bad = {i: f"{r.verdict}: {r.reason}" for i, r in results.items()
           if r.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE)}
    assert not bad, json.dumps(bad, ensure_ascii=False, indent=1)
    assert all(
        r.verdict is Verdict.PASS for r in results.values() if r.applicability == "True"
    )


def test_every_case_leaves_the_card_as_it_found_it(tmp_path) -> None:
    card = new_card()
    runner = runner_for(card)
    before = tmp_path / "before.json"
    after = tmp_path / "after.json"
    changed = []
    for case in (c for c in catalogue() if not c.destructive):
        card.save_image(before)
        runner.run(case)
        card.save_image(after)
        if before.read_bytes() != after.read_bytes():
            changed.append(case.id)
    assert not changed, f"cases that changed the card: {changed}"


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_is_caught_by_its_group(fault: str) -> None:
    results = fault_results(fault)
    failing = [r for r in results.values() if r.verdict is Verdict.FAIL]
    group = FAULTS[fault].group
    assert any(r.group == group for r in failing), (
        f"fault {fault} ({group}) makes no {group} case FAIL; failing: "
        f"{[r.id for r in failing]}"
    )
    allowed = {group, *ALSO_BREAKS.get(fault, ())}
    strays = [r.id for r in failing if r.group not in allowed]
    assert not strays, f"fault {fault} makes cases outside {sorted(allowed)} FAIL: {strays}"
    assert not [r for r in results.values() if r.verdict is Verdict.ERROR], "harness errors"


def test_every_case_is_caught_by_some_fault() -> None:
    caught: dict[str, list[str]] = defaultdict(list)
    for fault in FAULTS:
        for case_id, result in fault_results(fault).items():
            if result.verdict is Verdict.FAIL:
                caught[case_id].append(fault)
    product = reference_product()
    uncaught = [
        c.id for c in catalogue()
        if not caught[c.id] and (c.applicability == "True" or product.features)
    ]
    assert not uncaught, f"cases no fault makes FAIL: {uncaught}"
