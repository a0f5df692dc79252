"""The result set of a run as it is written to disk: the contract between the pytest plugin
(which writes it) and the report (which reads, signs and renders it).

A run directory holds summary.json, results.jsonl (one CaseResult a line), evidence/<ID>.jsonl
(each case's slice of the APDU trace, secrets masked), junit.xml and allure-results/.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class Verdict(StrEnum):
    """ISO 9646-style verdicts (DESIGN.md, "Verdicts")."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    ERROR = "ERROR"
    NOT_APPLICABLE = "NOT_APPLICABLE"


class Conclusion(StrEnum):
    CONFORMANT = "CONFORMANT"
    NOT_CONFORMANT = "NOT_CONFORMANT"
    INCOMPLETE = "INCOMPLETE"


@dataclass
class CaseResult:
    """One case's outcome with the metadata the report needs to stand on its own."""

    id: str
    group: str
    title_zh: str
    title_en: str
    clause: str
    purpose: str
    applicability: str
    expected_sw: list[str]
    mandatory: bool
    verdict: Verdict
    reason: str = ""
    duration_s: float = 0.0
    evidence: str | None = None  # path relative to the run directory
    evidence_sha256: str | None = None
    reference_choice: str = ""  # a behaviour of the reference profile the case relies on
    severity: str = "normal"
    failed_at: str = ""
    """For a FAIL: ``own`` (the case's own expectation), ``step: …`` (a shared step such as a
    read before the check) or ``error: …`` (a raw protocol error escaped the body)."""
    observations: list[str] = field(default_factory=list)
    """Answers the text allows but the reference profile does not give, and [choice]
    deviations a plan with ``choices: observe`` let pass."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        data = dict(data)
        data["verdict"] = Verdict(data["verdict"])
        return cls(**data)


@dataclass
class RunSummary:
    """summary.json: the conclusion, the counts and where everything came from."""

    verdict: Conclusion
    counts: dict[str, int]
    cases: list[dict[str, Any]]
    card: dict[str, Any]
    product: dict[str, Any]
    plan: dict[str, Any]
    profile: dict[str, Any]
    bench: dict[str, Any]
    suite_version: str
    started: str
    finished: str
    notes: list[str] = field(default_factory=list)
    privacy: dict[str, Any] = field(default_factory=dict)
    """The privacy setting of the evidence (on/off and why) and where the sealed salt is."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        data = dict(data)
        data["verdict"] = Conclusion(data["verdict"])
        return cls(**data)


def conclude(results: list[CaseResult], *, complete: bool) -> Conclusion:
    """CONFORMANT only if every applicable mandatory case PASSes, no case FAILs and the run
    completed."""
    if any(r.verdict is Verdict.FAIL for r in results):  # optional or not, a FAIL is a FAIL
        return Conclusion.NOT_CONFORMANT
    if not complete or any(
        r.verdict in (Verdict.ERROR, Verdict.INCONCLUSIVE) for r in results if r.mandatory
    ):
        return Conclusion.INCOMPLETE
    return Conclusion.CONFORMANT


def count(results: list[CaseResult]) -> dict[str, int]:
    counts = {v.value: 0 for v in Verdict}
    for r in results:
        counts[r.verdict.value] += 1
    return counts


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_results(run_dir: Path) -> list[CaseResult]:
    lines = (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [CaseResult.from_dict(json.loads(line)) for line in lines if line.strip()]


def read_summary(run_dir: Path) -> RunSummary:
    return RunSummary.from_dict(json.loads((run_dir / "summary.json").read_text("utf-8")))
