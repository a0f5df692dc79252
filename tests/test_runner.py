"""The runner protects the sample and the secrets when the bench's keys do not fit the card."""

from __future__ import annotations

import re
from dataclasses import replace

from casekit import catalogue, new_card, profile, reference_product

from conformance.host.keys import TestKeyProvider
from conformance.model import DEFAULT_TEST_KEYS, load_key_set
from conformance.model.products import load_plan
from conformance.results import Verdict
from conformance.runner import CaseRunner
from conformance.transport.inprocess import InProcessTransport


def runner_with_wrong_key(card, family: str) -> CaseRunner:
    keys = load_key_set(DEFAULT_TEST_KEYS, profile())
    wrong = dict(keys.master_keys)
    wrong[family] = bytes(b ^ 0x5A for b in wrong[family])
    return CaseRunner(
        connect=lambda: InProcessTransport(card),
        profile=profile(),
        keys=TestKeyProvider(replace(keys, master_keys=wrong)),
        product=reference_product(),
        plan=load_plan("certification"),
    )


def test_a_wrong_key_set_spends_one_try_and_leaks_no_cryptogram() -> None:
    card = new_card()
    runner = runner_with_wrong_key(card, "RK_DF01")
    results = [runner.run(case) for case in catalogue()]
    # one refused try, then the family is withheld: the sample is not driven towards a lock
    assert card.image()["retry_counters"]["RK_DF01"] == profile().spec.security.retry_limit - 1
    assert "RK_DF01" in runner.withheld
    withheld = [r for r in results if "withheld" in r.reason]
    assert withheld and all(r.verdict is Verdict.INCONCLUSIVE for r in withheld)
    # failure reasons quote EXTERNAL AUTHENTICATE commands: their data field is masked
    for r in results:
        for quoted in re.findall(r"00 82 00 [0-9A-F]{2} 11 ([0-9A-F <]{8})", r.reason):
            assert quoted.startswith("<"), r.reason
    assert any("00 82 00" in r.reason for r in results)


def _ended_with(body) -> tuple[Verdict, str, str]:
    """Verdict, failed_at and reason of a one-off case with ``body`` on the reference card."""
    from conformance.cases.framework import Case

    case = Case(id="FS-X-001", group="FS", title_zh="试", title_en="probe", clause="§1",
                purpose="how a case ends", body=body)
    card = new_card()
    runner = CaseRunner(
        connect=lambda: InProcessTransport(card),
        profile=profile(),
        keys=TestKeyProvider(load_key_set(DEFAULT_TEST_KEYS, profile())),
        product=reference_product(),
        plan=load_plan("certification"),
    )
    result = runner.run(case)
    return result.verdict, result.failed_at, result.reason


def test_a_fail_says_where_it_fired() -> None:
    """Own expectation, shared step or raw protocol error: FAIL alike, tagged apart."""
    from conformance.apdu import ApduError

    def own(ctx) -> None:
        ctx.check(False, "the case's own check")

    def step(ctx) -> None:
        with ctx.step("READ RECORD 1 of DDF1/EF05"):
            ctx.fail("refused")

    def raw(ctx) -> None:
        raise ApduError(0x6A82)

    def passes(ctx) -> None:
        ctx.note("nothing to judge")

    assert _ended_with(own) == (Verdict.FAIL, "own", "the case's own check")
    assert _ended_with(step) == (Verdict.FAIL, "step: READ RECORD 1 of DDF1/EF05", "refused")
    verdict, where, _ = _ended_with(raw)
    assert (verdict, where) == (Verdict.FAIL, "error: ApduError")
    assert _ended_with(passes)[:2] == (Verdict.PASS, "")
