"""A card may answer what the text allows, not only what the reference profile answers.

An "alternative card" (the reference card with answers REFERENCE.md also admits) must PASS
with observations; a [choice] deviation FAILs under ``choices: enforce`` and PASSes with an
observation under ``choices: observe``.
"""

from __future__ import annotations

import casekit

from conformance.cases.framework import Case
from conformance.host.keys import TestKeyProvider
from conformance.model import DEFAULT_TEST_KEYS, load_key_set
from conformance.model.products import load_plan, load_product
from conformance.results import Verdict
from conformance.runner import CaseRunner
from conformance.transport.inprocess import InProcessTransport

SELECT_HEADER = bytes.fromhex("00A4")


class AlternativeAnswers:
    """The reference card, except that a SELECT whose data field is not a 2-byte FID is
    answered 6A80 (wrong data) where the reference answers 6700: §5 admits both."""

    def __init__(self, card: object) -> None:
        self._card = card

    def reset(self) -> bytes:
        return self._card.reset()  # type: ignore[attr-defined]

    def process(self, apdu: bytes) -> bytes:
        answer = self._card.process(apdu)  # type: ignore[attr-defined]
        lc = apdu[4] if len(apdu) > 4 else 0
        if apdu[:2] == SELECT_HEADER and lc != 2 and answer[-2:] == b"\x67\x00":
            return answer[:-2] + b"\x6a\x80"
        return answer


def _case(case_id: str) -> Case:
    return next(c for c in casekit.catalogue() if c.id == case_id)


def _runner(card: object, choices: str = "enforce") -> CaseRunner:
    """The certification plan with ``choices`` over ``card`` (any APDU responder)."""
    prof = casekit.profile()
    return CaseRunner(
        connect=lambda: InProcessTransport(card, name="virtual"),  # type: ignore[arg-type]
        profile=prof,
        keys=TestKeyProvider(load_key_set(DEFAULT_TEST_KEYS, prof)),
        product=load_product(None, prof),
        plan=load_plan("certification").model_copy(update={"choices": choices}),
    )


def test_reference_card_gives_no_observation() -> None:
    result = _runner(casekit.new_card()).run(_case("CMD-LC-001"))
    assert result.verdict is Verdict.PASS
    assert result.observations == []


def test_alternative_answer_passes_with_an_observation() -> None:
    result = _runner(AlternativeAnswers(casekit.new_card())).run(_case("CMD-LC-001"))
    assert result.verdict is Verdict.PASS, result.reason
    assert result.observations and all("6A80" in o for o in result.observations)
    assert "both allowed" in result.observations[0]


def test_choice_deviation_fails_under_enforce() -> None:
    card = casekit.new_card(["select_missing_6a87"])
    result = _runner(card).run(_case("CMD-SEL-DDF1-001"))
    assert result.verdict is Verdict.FAIL
    assert result.observations == []


def test_choice_deviation_passes_with_an_observation_under_observe() -> None:
    card = casekit.new_card(["select_missing_6a87"])
    result = _runner(card, "observe").run(_case("CMD-SEL-DDF1-001"))
    assert result.verdict is Verdict.PASS, result.reason
    assert any("[choice] status_words" in o and "6A87" in o for o in result.observations)


class MissingFilesFound(AlternativeAnswers):
    """SELECT of a missing file succeeds: a refusal turned into 9000, which no reading allows."""

    def process(self, apdu: bytes) -> bytes:
        answer = self._card.process(apdu)  # type: ignore[attr-defined]
        if apdu[:2] == SELECT_HEADER and answer[-2:] == b"\x6a\x82":
            return answer[:-2] + b"\x90\x00"
        return answer


def test_success_where_the_text_refuses_fails_even_under_observe() -> None:
    """observe relaxes a [choice] of error status word, never a refusal turned into success."""
    result = _runner(MissingFilesFound(casekit.new_card()), "observe").run(
        _case("CMD-SEL-DDF1-001"))
    assert result.verdict is Verdict.FAIL


def test_atr_choice_is_observed_or_enforced_as_the_plan_says() -> None:
    """The ATR is a [choice] (REFERENCE.md §2): TS 3F FAILs under enforce, is observed under
    observe."""
    enforced = _runner(casekit.new_card(["atr_inverse_ts"])).run(_case("ATR-001"))
    observed = _runner(casekit.new_card(["atr_inverse_ts"]), "observe").run(_case("ATR-001"))
    assert enforced.verdict is Verdict.FAIL
    assert observed.verdict is Verdict.PASS, observed.reason
    assert any("[choice] atr" in o and "TS is 3F" in o for o in observed.observations)


def test_every_situation_and_choice_named_by_a_case_is_in_the_profile() -> None:
    spec = casekit.profile().spec
    assert {"select_wrong_lc", "cyclic_append_on_noncyclic"} <= set(spec.situations)
    assert {"atr", "retry_limit", "status_words", "wrong_le"} <= set(spec.choices)


def test_a_choice_consistency_rule_is_observed_under_observe() -> None:
    """document-is-id rests on a [choice] of the evidence: enforce FAILs, observe records it."""
    card = casekit.new_card(["data_document_not_id"])
    case = _case("DATA-CON-DOCUMENT-IS-ID")
    assert _runner(card).run(case).verdict is Verdict.FAIL
    result = _runner(casekit.new_card(["data_document_not_id"]), "observe").run(case)
    assert result.verdict is Verdict.PASS, result.reason
    assert any("[choice] value_rules" in o for o in result.observations)
