"""The matrix as data: its card variants and terminals, the outcome of each pair, interop.json.

A pair WORKS when every transaction the terminal declares passed on the card; it FAILS when
one failed (the failing transactions, the check that fired and the bilingual reason are
kept); it CANNOT_RUN when none could be judged (the terminal declares none of them, or the
bench broke). A transaction's outcome is the terminal suite's verdict, unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conformance.messages import Msg, msg
from conformance.results import CaseResult, Verdict
from conformance.terminal.cards import TestCard
from conformance.terminal.cases import CHECKS
from conformance.terminal.profile import TerminalProfile

__all__ = ["CANNOT_RUN", "FAILS", "FORMAT", "STATUSES", "WORKS", "CardEntry", "CaseOutcome",
           "Pair", "TerminalEntry", "matrix_document"]

FORMAT = "rhc-interop/1"
WORKS, FAILS, CANNOT_RUN = "works", "fails", "cannot_run"
STATUSES = (WORKS, FAILS, CANNOT_RUN)


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else ""


@dataclass
class CardEntry:
    """A row: one card variant, resolved to the test card it is served as."""

    name: str
    title_zh: str
    title_en: str
    product: str
    product_name: str
    test_card: TestCard
    source: str = ""
    reader: str = ""
    """A card sample's reader (``--cards reader:NAME``): the row serves the data read there."""
    note_zh: str = ""
    note_en: str = ""
    """What a sample's row means (its data, served by the suite's card OS, not its chip)."""

    def describe(self) -> dict[str, Any]:
        c = self.test_card
        return {"name": self.name, "title_zh": self.title_zh, "title_en": self.title_en,
                "product": self.product, "product_name": self.product_name,
                "personalization": c.personalization, "features": list(c.features),
                "faults": list(c.faults), "source": self.source,
                "sha256": _sha256(self.source), "reader": self.reader,
                "note_zh": self.note_zh, "note_en": self.note_en}


@dataclass
class TerminalEntry:
    """A column: one terminal profile (``name``: its file's stem)."""

    name: str
    profile: TerminalProfile

    def describe(self) -> dict[str, Any]:
        t = self.profile
        return {"name": self.name, "title": t.name, "vendor": t.vendor, "model": t.model,
                "version": t.version, "operations": list(t.operations), "source": t.source,
                "sha256": _sha256(t.source)}


@dataclass
class CaseOutcome:
    """One transaction of a pair: the terminal suite's verdict and, for a FAIL, why."""

    id: str
    title_zh: str
    title_en: str
    verdict: str
    reason_en: str = ""
    reason_zh: str = ""
    check: str = ""
    """The trace rule or result check that fired (judge.RULES / cases.CHECKS)."""
    check_zh: str = ""
    check_en: str = ""
    failed_at: str = ""
    duration_s: float = 0.0
    evidence: str = ""
    """The pair's evidence file of this transaction, relative to the pair directory."""
    excerpt: list[str] = field(default_factory=list)
    """The evidence lines that show the failure (terminal output, findings, APDUs)."""

    @classmethod
    def of(cls, r: CaseResult, check: str, lines: list[str]) -> CaseOutcome:
        zh, en = CHECKS.get(check, ("", ""))
        return cls(r.id, r.title_zh, r.title_en, r.verdict.value, r.reason, r.reason_zh,
                   check, zh, en, r.failed_at, r.duration_s, r.evidence or "", lines)

    @classmethod
    def not_applicable(cls, t: Any, why: Msg) -> CaseOutcome:
        return cls(t.id, t.title_zh, t.title_en, Verdict.NOT_APPLICABLE.value, why.en, why.zh)


@dataclass
class Pair:
    """One cell of the matrix."""

    card: str
    terminal: str
    status: str
    reason_zh: str
    reason_en: str
    cases: list[CaseOutcome]
    duration_s: float = 0.0
    dir: str = ""
    """The pair's run directory under pairs/ (results.jsonl, evidence/, summary.json)."""
    report: str = ""
    """With --sign: the pair's signed report.xml (relative to the matrix) and its digest."""
    report_sha256: str = ""

    @property
    def failing(self) -> list[CaseOutcome]:
        return [c for c in self.cases if c.verdict == Verdict.FAIL.value]

    @classmethod
    def judge(cls, card: str, terminal: str, cases: list[CaseOutcome], duration_s: float,
              where: str) -> Pair:
        """The cell from its transactions: fails on a FAIL, else works if one passed and
        nothing was left undecided, else cannot run."""
        failing = [c for c in cases if c.verdict == Verdict.FAIL.value]
        passed = [c for c in cases if c.verdict == Verdict.PASS.value]
        undecided = [c for c in cases if c.verdict in (Verdict.ERROR.value,
                                                       Verdict.INCONCLUSIVE.value)]
        if failing:
            first = failing[0]
            why = msg("interop.pair.fails", title_zh=first.title_zh, title_en=first.title_en,
                      id=first.id, reason_zh=first.reason_zh or first.reason_en,
                      reason_en=first.reason_en, more=len(failing) - 1)
            status = FAILS
        elif undecided:
            first = undecided[0]
            why = msg("interop.pair.undecided", title_zh=first.title_zh,
                      title_en=first.title_en, id=first.id,
                      reason_zh=first.reason_zh or first.reason_en, reason_en=first.reason_en)
            status = CANNOT_RUN
        elif not passed:
            why, status = msg("interop.pair.nothing_declared"), CANNOT_RUN
        else:
            why, status = msg("interop.pair.works", n=len(passed)), WORKS
        return cls(card, terminal, status, why.zh, why.en, cases, round(duration_s, 3), where)

    @classmethod
    def broken(cls, card: str, terminal: str, why: Msg) -> Pair:
        return cls(card, terminal, CANNOT_RUN, why.zh, why.en, [])

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "failing": [c.id for c in self.failing]}


def matrix_document(cards: list[CardEntry], terminals: list[TerminalEntry],
                    transactions: list[dict[str, str]], pairs: list[Pair],
                    meta: dict[str, Any]) -> dict[str, Any]:
    """interop.json: who was paired with whom, each cell, and counts per status."""
    counts = {s: sum(1 for p in pairs if p.status == s) for s in STATUSES}
    return {"format": FORMAT, "signature": None, **meta,
            "notes": [{"zh": c.note_zh, "en": c.note_en} for c in cards if c.note_en],
            "cards": [c.describe() for c in cards],
            "terminals": [t.describe() for t in terminals],
            "transactions": transactions,
            "counts": counts,
            "pairs": [p.to_json() for p in pairs]}
