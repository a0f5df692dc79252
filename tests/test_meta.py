"""Meta-tests: the catalogue is honest.

Every case PASSes on the reference card and leaves it as it found it. The kill matrix
(:mod:`conformance.matrix`) runs the catalogue under every fault of the defect catalogue and
must be sound: every applicable case is killed — FAILs by its *own* expectation — under some
fault aimed at it; every fault kills some case it aims at; no fault makes a case outside its
group and declared ALSO_BREAKS groups FAIL. The last test shows the check has teeth: a case
whose own check is deleted is reported as not killed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from functools import cache

import pytest
from casekit import catalogue, new_card, profile, reference_product, runner_for

from conformance.card.faults import fault_catalogue
from conformance.cases import data as data_cases
from conformance.cases.framework import Case, CaseContext
from conformance.matrix import KillMatrix, build_matrix, run_catalogue
from conformance.model.products import applicable
from conformance.results import Verdict

pytestmark = pytest.mark.timeout(1200)  # the matrix runs the catalogue under every fault


@cache
def matrix() -> KillMatrix:
    """The whole matrix, built once for this module (the heavy part of the suite)."""
    return build_matrix(processes=min(2, os.cpu_count() or 1))


def test_catalogue_is_large_and_well_formed() -> None:
    cases = catalogue()
    assert len(cases) >= 300
    for case in cases:
        assert case.id.startswith(case.group + "-"), case.id
        assert case.title_zh and case.title_en and case.clause and case.purpose, case.id


def test_every_case_passes_on_the_reference_card() -> None:
    results = run_catalogue()
    product = reference_product()
    bad = {i: f"{r.verdict}: {r.reason}" for i, r in results.items()
           if r.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE)}
    assert not bad, json.dumps(bad, ensure_ascii=False, indent=1)
    known = list(profile().spec.features)
    for case in catalogue():
        expected = (Verdict.PASS if applicable(case.applicability, product, known)
                    else Verdict.NOT_APPLICABLE)
        assert results[case.id].verdict is expected, case.id


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


def test_the_matrix_product_makes_every_case_applicable() -> None:
    """Cases a product excludes cannot be killed on it: the matrix runs on the reference
    product, which declares every feature the catalogue's cases need."""
    m = matrix()
    assert m.applicable == set(m.cases), sorted(set(m.cases) - m.applicable)


def test_every_case_is_killed_by_its_own_expectation() -> None:
    uncaught = sorted(i for i, k in matrix().killers().items() if not k)
    assert not uncaught, f"{len(uncaught)} cases no aimed fault kills: {uncaught}"


@pytest.mark.parametrize("kind", ["kills", "strays", "errors"])
def test_every_fault_is_caught_where_it_is_aimed(kind: str) -> None:
    m = matrix()
    if kind == "kills":
        bad = {f: m.faults[f].aim for f in m.fault_names if not m.kills(f)}
    elif kind == "strays":
        bad = {f: m.strays(f) for f in m.fault_names if m.strays(f)}
    else:
        bad = {f: m.errors(f) for f in m.fault_names if m.errors(f)}
    assert not bad, f"faults with {kind}: {bad}"


def test_shared_reads_are_not_kills() -> None:
    """A FAIL in a shared read is still a FAIL but tagged as a step, not the case's kill:
    under a fault that refuses every protected read, DATA-COD cases FAIL at their read."""
    fault = "sec_read_key_grants_nothing"
    result = run_catalogue((fault,), [_case("DATA-COD-011")])["DATA-COD-011"]
    assert result.verdict is Verdict.FAIL
    assert result.failed_at.startswith("step: READ RECORD"), result.failed_at
    assert result.reason.startswith("READ RECORD 1 of DDF1/EF06"), result.reason
    assert not fault_catalogue()[fault].aims_at("DATA-COD-011")


# --------------------------------------------------------------------------- teeth

TARGET = "DATA-COD-011"


def _aimed_faults(case_id: str) -> list[str]:
    return sorted(n for n, f in fault_catalogue().items() if f.aims_at(case_id))


def _case(case_id: str) -> Case:
    return next(c for c in catalogue() if c.id == case_id)


def test_the_matrix_kills_the_target_case() -> None:
    small = build_matrix(_aimed_faults(TARGET), cases=[_case(TARGET)])
    assert small.killers()[TARGET], small.problems()
    assert not small.problems()


def test_deleting_a_cases_check_turns_the_matrix_red() -> None:
    """The case keeps its shared read but loses its own coding check: faults still make it
    FAIL (at the read, for some), yet no aimed fault kills it, and the matrix says so."""
    number = int(TARGET.rsplit("-", 1)[1])

    def read_only(ctx: CaseContext) -> None:
        data_cases.read_item_record(ctx, number)

    blind = dataclasses.replace(_case(TARGET), body=read_only)
    small = build_matrix(_aimed_faults(TARGET), cases=[blind])
    assert not small.killers()[TARGET]
    assert any(TARGET in p for p in small.problems()), small.problems()


def test_a_check_that_always_passes_turns_the_matrix_red(monkeypatch) -> None:
    """The same with the coding rule itself disabled for the DATA cases."""
    monkeypatch.setattr(data_cases, "check_coding", lambda *_args: None)
    small = build_matrix(_aimed_faults(TARGET), cases=[_case(TARGET)])
    assert not small.killers()[TARGET]
    assert any(TARGET in p for p in small.problems()), small.problems()
