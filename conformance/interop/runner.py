"""Running a matrix: every (card variant, terminal) pair, each pair a terminal run.

A pair serves the card variant to the terminal through the terminal suite's own machinery
(:class:`~conformance.terminal.run.TerminalRun`: ServedCard in a reader, the transaction
program, the trace judge and the result checks) for each typical transaction the terminal
declares, on a fresh copy of the card each time. Its run directory (results.jsonl, evidence,
summary.json) is the pair's evidence. One card variant is one row: rows run side by side, each
in its own vpcd reader (its own port), the terminals of a row one after the other.
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from conformance.interop.evidence import excerpt
from conformance.interop.matrix import (
    CardEntry,
    CaseOutcome,
    Pair,
    TerminalEntry,
)
from conformance.interop.transactions import Transaction
from conformance.messages import msg
from conformance.model.profile import CardProfile
from conformance.results import CaseResult
from conformance.terminal.bench import Bench
from conformance.terminal.cards import Exchange, TestCard
from conformance.terminal.cases import TerminalCase
from conformance.terminal.judge import Finding
from conformance.terminal.run import TerminalRun
from conformance.terminal.transaction import Outcome

__all__ = ["PairRun", "pair_dir", "run_matrix", "run_pair"]


class PairRun(TerminalRun):
    """A terminal run whose test card is one card variant; it keeps, per case, the check that
    fired and the evidence lines that show it, for the matrix report."""

    def __init__(self, *args: Any, test_card: TestCard, **kwargs: Any) -> None:
        super().__init__(*args, numbered=False, **kwargs)
        self.variant = test_card
        self.fired: dict[str, tuple[str, list[str]]] = {}

    def test_card(self, case: TerminalCase) -> TestCard:
        return self.variant

    def write_evidence(self, result: CaseResult, case: TerminalCase, outcome: Outcome,
                       card: list[Exchange], sam: list[Exchange],
                       findings: list[Finding]) -> None:
        super().write_evidence(result, case, outcome, card, sam, findings)
        if findings:
            own = [f for f in findings if f.rule in case.own]
            first = (own or findings)[0]
            self.fired[case.id] = (first.rule, excerpt(case, outcome, card, findings))


def run_pair(card: CardEntry, terminal: TerminalEntry, transactions: list[Transaction],
             profile: CardProfile, bench: Bench, out_dir: Path | None,
             lab_path: Path | None = None) -> Pair:
    """One pair: the terminal's typical transactions on the card variant, judged."""
    start = time.monotonic()
    before = card.test_card.build(profile).content
    cases: list[TerminalCase] = []
    skipped: list[CaseOutcome] = []
    for t in transactions:
        case = t.case(card.name, profile, copy.deepcopy(before))
        if case is None:
            skipped.append(CaseOutcome.not_applicable(t, msg("interop.case.nothing_to_read")))
        elif not case.applies(terminal.profile):
            skipped.append(CaseOutcome.not_applicable(
                t, msg("interop.case.not_declared", operation=t.operation)))
        else:
            cases.append(case)
    run = PairRun(terminal.profile, profile, cases, bench, out_dir, test_card=card.test_card,
                  lab_path=lab_path)
    run.run()
    outcomes = [CaseOutcome.of(r, *run.fired.get(r.id, ("", []))) for r in run.results]
    by_id = {o.id: o for o in [*outcomes, *skipped]}
    ordered = [by_id[t.id] for t in transactions if t.id in by_id]
    return Pair.judge(card.name, terminal.name, ordered, time.monotonic() - start,
                      out_dir.name if out_dir is not None else "")


def run_matrix(cards: list[CardEntry], terminals: list[TerminalEntry],
               transactions: list[Transaction], profile: CardProfile,
               benches: list[Bench], out_dir: Path | None, *,
               lab_path: Path | None = None,
               progress: Callable[[Pair], None] | None = None) -> list[Pair]:
    """Every pair, rows side by side (one bench each: ``len(benches)`` rows at a time);
    the pairs in matrix order. A pair whose bench breaks is CANNOT_RUN, never the end."""
    free: queue.Queue[Bench] = queue.Queue()
    for bench in benches:
        free.put(bench)
    lock = threading.Lock()
    pairs: dict[tuple[str, str], Pair] = {}

    def row(card: CardEntry) -> None:
        bench = free.get()
        try:
            for terminal in terminals:
                where = out_dir / "pairs" / pair_dir(card.name, terminal.name) \
                    if out_dir is not None else None
                try:
                    pair = run_pair(card, terminal, transactions, profile, bench, where,
                                    lab_path)
                except Exception as exc:  # a broken pair is reported, the matrix goes on
                    pair = Pair.broken(card.name, terminal.name, msg(
                        "interop.pair.bench_error", error=f"{type(exc).__name__}: {exc}"))
                with lock:
                    pairs[(card.name, terminal.name)] = pair
                    if progress is not None:
                        progress(pair)
        finally:
            free.put(bench)

    with ThreadPoolExecutor(max_workers=max(1, len(benches))) as pool:
        for future in [pool.submit(row, card) for card in cards]:
            future.result()
    return [pairs[(c.name, t.name)] for c in cards for t in terminals]


def pair_dir(card: str, terminal: str) -> str:
    """The pair's run directory name under pairs/."""
    return f"{card}__{terminal}"

