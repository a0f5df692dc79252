"""The result set of a run as it is written to disk: the contract between the pytest plugin
(which writes it) and the report (which reads, signs and renders it).

A run directory holds summary.json, results.jsonl (one CaseResult a line), evidence/<ID>.jsonl
(each case's slice of the APDU trace, secrets masked), junit.xml and allure-results/.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance.cases.framework import Case
    from conformance.messages import Msg


class Verdict(StrEnum):
    """ISO 9646-style verdicts (DESIGN.md, "Verdicts")."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    ERROR = "ERROR"
    NOT_APPLICABLE = "NOT_APPLICABLE"


class Conclusion(StrEnum):
    """What a run concludes; `conclude` is the one place that decides it."""

    CONFORMANT = "CONFORMANT"
    """A certification: a certification plan on a product sample, every applicable mandatory
    case of the catalogue covered, none failed, the run complete."""
    NOT_CONFORMANT = "NOT_CONFORMANT"
    """At least one case FAILed (in any scope: a FAIL is a finding)."""
    INCOMPLETE = "INCOMPLETE"
    """No verdict: the run stopped, lost its bench, or a mandatory case could not be judged."""
    NO_FAILURES = "NO_FAILURES"
    """The cases that ran found no failure, but the run is not a certification (see Scope)."""


class Scope(StrEnum):
    """What a run can stand for, decided from the plan, the selection and the subject."""

    CERTIFICATION = "certification"
    """A certification plan covering every mandatory case of the catalogue, on a product."""
    PARTIAL = "partial"
    """Another plan, or a selection (-k, excluded groups) that leaves mandatory cases out."""
    BENCH_SELF_TEST = "bench_self_test"
    """The built-in virtual card: a test of the bench, never of a product."""


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
    observations_zh: list[str] = field(default_factory=list)
    """The same observations in Chinese (same templates, same values), in the same order."""
    requirement: str = ""
    """Key of the profile's requirement table the case tests."""
    requirement_zh: str = ""
    """The sentence the profile requires, in Chinese."""
    requirement_en: str = ""
    """The same sentence in English."""
    source: str = ""
    """Where the requirement comes from: "WS/T 543.x §y" (or another standard's clause) where
    the evidence names one, else "profile [choice] <profile name> <version>"."""
    purpose_zh: str = ""
    """The case's purpose in Chinese (``purpose`` is the English one)."""
    reason_zh: str = ""
    """``reason`` in Chinese: the same message template with the same parameters."""
    expected: str = ""
    """What the case expected, short (e.g. "9000 (ok)", "22 bytes"); "" if not applicable."""
    measured: str = ""
    """What the card gave, short (a SW, a length, a value; a secret value only masked, and then
    beside a property of it that is not secret, such as its length)."""

    def set_reason(self, message: Msg) -> None:
        """Fill ``reason`` (English) and ``reason_zh`` from one message."""
        self.reason, self.reason_zh = message.en, message.zh

    def scrub(self, scrub: Callable[[str], str]) -> None:
        """Mask, in every text that quotes the card, what the trace masks."""
        self.reason, self.reason_zh = scrub(self.reason), scrub(self.reason_zh)
        self.expected, self.measured = scrub(self.expected), scrub(self.measured)
        self.observations = [scrub(o) for o in self.observations]
        self.observations_zh = [scrub(o) for o in self.observations_zh]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        data = dict(data)
        data["verdict"] = Verdict(data["verdict"])
        return cls(**data)

    @classmethod
    def for_case(cls, case: Case, verdict: Verdict, reason: str = "") -> CaseResult:
        """A result carrying the case's metadata, so the report needs nothing else."""
        return cls(
            id=case.id,
            group=case.group,
            title_zh=case.title_zh,
            title_en=case.title_en,
            clause=case.clause,
            purpose=case.purpose,
            applicability=case.applicability,
            expected_sw=list(case.expected_sw),
            mandatory=case.mandatory,
            verdict=verdict,
            reason=reason,
            reference_choice=case.reference_choice,
            severity=case.severity,
            requirement=case.requirement,
            requirement_zh=case.requirement_zh,
            requirement_en=case.requirement_en,
            source=case.source,
            purpose_zh=case.purpose_zh,
        )


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
    scope: dict[str, Any] = field(default_factory=dict)
    """What the run stands for (`run_scope`): scope, plan kind, card, cases in the catalogue."""
    timezone: str = ""
    """The lab's IANA time zone; started_at/finished_at are in it, with their UTC offset."""
    started_at: str = ""
    finished_at: str = ""
    report_number: str = ""
    """From the lab's never-repeating sequence (conformance/sequence.py); "" if none taken."""
    lab: dict[str, Any] = field(default_factory=dict)
    """The lab file as checked (conformance/lab.py LabFile) with its source and sha256."""
    submission: dict[str, Any] = field(default_factory=dict)
    """The submission file as checked (SubmissionFile), or {} when none was given."""
    bench_file: dict[str, Any] = field(default_factory=dict)
    """The bench file as checked (BenchFile: environment, equipment), or {}."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        data = dict(data)
        data["verdict"] = Conclusion(data["verdict"])
        return cls(**data)


def run_scope(
    *, card: str, plan_kind: str, catalogue: int, mandatory_ids: Iterable[str],
    results: Iterable[CaseResult], bench_sample: bool = False,
) -> dict[str, Any]:
    """summary.json's `scope`: what a run stands for, from its subject, plan and coverage.

    Only a certification plan whose results cover every mandatory case of the catalogue (an
    excluded case is NOT_APPLICABLE, so still covered) on a card other than the built-in
    virtual one (in process, or served into a reader: `bench_sample`) is a certification.
    """
    ran = {r.id for r in results}
    missing = sorted(set(mandatory_ids) - ran)
    if card == "virtual" or bench_sample:
        scope = Scope.BENCH_SELF_TEST
    elif plan_kind != "certification" or missing:
        scope = Scope.PARTIAL
    else:
        scope = Scope.CERTIFICATION
    return {
        "scope": scope.value,
        "card": card,
        "bench_sample": bench_sample,
        "plan_kind": plan_kind,
        "catalogue": catalogue,
        "ran": len(ran),
        "mandatory_missing": len(missing),
    }


def scope_of(scope: Mapping[str, Any] | None) -> Scope:
    """The Scope a summary records; a summary that records none is no certification."""
    try:
        return Scope((scope or {}).get("scope", Scope.PARTIAL))
    except ValueError:
        return Scope.PARTIAL


def conclude(
    results: list[CaseResult], *, complete: bool, scope: Scope = Scope.CERTIFICATION
) -> Conclusion:
    """The run's conclusion: the one function console, summary.json and every report use.

    NOT_CONFORMANT on any FAIL; INCOMPLETE if the run did not complete or a mandatory case
    could not be judged; otherwise CONFORMANT for a certification and NO_FAILURES for any
    other scope.
    """
    if any(r.verdict is Verdict.FAIL for r in results):  # optional or not, a FAIL is a FAIL
        return Conclusion.NOT_CONFORMANT
    if not results or not complete or any(
        r.verdict in (Verdict.ERROR, Verdict.INCONCLUSIVE) for r in results if r.mandatory
    ):
        return Conclusion.INCOMPLETE
    if scope is not Scope.CERTIFICATION:
        return Conclusion.NO_FAILURES
    return Conclusion.CONFORMANT


CONCLUSION_ZH = {
    Conclusion.CONFORMANT: "符合",
    Conclusion.NOT_CONFORMANT: "不符合",
    Conclusion.INCOMPLETE: "检测未完成",
    Conclusion.NO_FAILURES: "未发现不通过项（非认证）",
}
"""How the Chinese text of every report copy names each conclusion."""


def statement(
    conclusion: Conclusion, scope: Scope, results: list[CaseResult], catalogue: int
) -> tuple[str, str]:
    """The conclusion as one sentence (zh, en) that says what the run was and what it found."""
    ran, failed = len(results), sum(r.verdict is Verdict.FAIL for r in results)
    of = f"{ran} of {catalogue}" if catalogue else f"{ran}"
    of_zh = f"已检 {ran} 项（目录共 {catalogue} 项）" if catalogue else f"已检 {ran} 项"
    if scope is Scope.BENCH_SELF_TEST:
        what_zh = "测试台自检（虚拟卡），非产品认证"
        what_en = "bench self-test (virtual card) — not a product certification"
    elif scope is Scope.PARTIAL:
        what_zh, what_en = "非认证", "not a certification"
    else:
        what_zh, what_en = "认证检测", "certification run"
    if conclusion is Conclusion.NOT_CONFORMANT:
        zh, en = f"{of_zh}，{failed} 项不通过", f"{failed} failures in {of} cases"
    elif conclusion is Conclusion.INCOMPLETE:
        zh, en = f"检测未完成：{of_zh}有记录", f"incomplete: {of} cases recorded"
    elif conclusion is Conclusion.NO_FAILURES:
        zh, en = f"{of_zh}，未发现不通过", f"no failures in {of} cases"
    else:
        zh = f"{of_zh}，全部适用的必测项目均通过"
        en = f"every applicable mandatory case of {of} cases passed"
    return f"{zh} — {what_zh}", f"{en} — {what_en}"


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
