"""A terminal run: every TERM case on the terminal of a profile, results as for card runs.

The run directory receives results.jsonl (one CaseResult a line, written as each case ends),
evidence/<ID>.jsonl (the transaction, every APDU card and SAM received, the findings) and
summary.json, the files a card run writes (conformance/results.py), so the report reads both.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from conformance import __version__
from conformance.certification import bench_info
from conformance.clock import WallClock
from conformance.lab import load_lab, now_in, record
from conformance.model.profile import CardProfile
from conformance.resources import DEFAULT_TEST_KEYS, DEMO_LAB
from conformance.results import (
    CaseResult,
    RunSummary,
    Verdict,
    conclude,
    count,
    run_scope,
    scope_of,
    sha256_file,
)
from conformance.sequence import next_report_number
from conformance.terminal.bench import CARD, SAM, Bench
from conformance.terminal.cards import Exchange, ServedCard, TestCard, load_test_card
from conformance.terminal.cases import CHECKS, TerminalCase, terminal_cases
from conformance.terminal.checks import check_result
from conformance.terminal.judge import Finding, judge_trace
from conformance.terminal.profile import TerminalProfile
from conformance.terminal.sam import VirtualSam, judge_sam
from conformance.terminal.transaction import Outcome, run_transaction
from conformance.terminal.values import SLOT_FILES, expected_slot

__all__ = ["Operator", "TerminalRun"]

OPERATOR_CONFIRMED = "operator-confirmed"


class Operator:
    """Manual mode: tells the operator what to do on the terminal and reads what it showed."""

    def __init__(self, read: IO[str] | None = None, write: IO[str] | None = None) -> None:
        self.read = read or sys.stdin
        self.write = write or sys.stderr

    def ask(self, text: str) -> str:
        self.write.write(text)
        self.write.flush()
        return self.read.readline().strip()

    def transaction(self, case: TerminalCase, reader: str) -> Outcome:
        """What the terminal did, as the operator reports it (an Outcome like a program's)."""
        start = time.monotonic()
        items = (case.input or {}).get("items")
        what = f"{case.operation} {' '.join(case.args)}".strip()
        self.write.write(f"\n[{case.id}] test card {case.card} is in reader {reader!r}.\n"
                         f"On the terminal, do: {what}"
                         + (f" with {json.dumps(items, ensure_ascii=False)}" if items else "")
                         + "\n")
        answer = self.ask("Did the terminal complete it? [y/n] ").lower()
        if answer.startswith("y"):
            if case.operation == "get" or case.operation.startswith("read-"):
                text = self.ask("Type what it showed, as TERMINAL.md's JSON on one line: ")
            elif case.operation.startswith("write-"):
                text = json.dumps({"status": "ok", "slot": int(self.ask("Slot it reported: ")
                                                                 or 0)})
            else:
                text = '{"status": "ok"}'
            code = 0
        else:
            sw = self.ask("Status word it showed (empty: none): ").upper()
            text = json.dumps({"status": "error", "message": "operator: the terminal refused",
                               **({"sw": sw} if sw else {})})
            code = 1
        outcome = Outcome(["(manual)", case.operation, *case.args], code, text, "",
                          time.monotonic() - start, stdin=case.input)
        try:
            outcome.document = json.loads(text)
        except json.JSONDecodeError:
            outcome.problem = f"the operator's answer is not JSON: {text[:60]!r}"
            outcome.problem_zh = "操作员输入的不是 JSON"
        return outcome


class TerminalRun:
    """The TERM cases on one terminal; ``bench`` serves the test cards."""

    def __init__(self, terminal: TerminalProfile, profile: CardProfile, cases: list[TerminalCase],
                 bench: Bench, out_dir: Path | None, *, operator: Operator | None = None,
                 keys_file: Path = DEFAULT_TEST_KEYS, lab_path: Path | None = None,
                 progress: Callable[[CaseResult], None] | None = None,
                 numbered: bool = True) -> None:
        self.terminal = terminal
        self.profile = profile
        self.cases = cases
        self.bench = bench
        self.out_dir = out_dir
        self.operator = operator or (Operator() if terminal.mode == "manual" else None)
        self.keys_file = keys_file
        self.progress = progress
        self.numbered = numbered
        """Whether summary.json takes the lab's next report number (a part of a larger run,
        such as one pair of an interoperability matrix, does not)."""
        self.results: list[CaseResult] = []
        self.samples: dict[str, dict[str, Any]] = {}
        self.readers: list[str] = []
        self.lab_path = lab_path
        self.lab = load_lab(lab_path)
        self.clock = WallClock(zone=self.lab.tz)
        self.started_at = now_in(self.lab.tz)
        if out_dir is not None:
            (out_dir / "evidence").mkdir(parents=True, exist_ok=True)
            (out_dir / "results.jsonl").write_text("", encoding="utf-8")

    # -- running ---------------------------------------------------------------------------
    def run(self) -> RunSummary:
        for case in self.cases:
            try:
                result = self.run_case(case) if case.applies(self.terminal) else _result(
                    case, Verdict.NOT_APPLICABLE,
                    f"the terminal does not declare {case.operation!r}"
                    + (" with a SAM" if case.sam else ""),
                    f"终端未声明 {case.operation}" + ("（使用 SAM）" if case.sam else ""))
            except Exception as exc:  # a bench failure is this case's ERROR, not the run's end
                result = _result(case, Verdict.ERROR, f"bench error: {type(exc).__name__}: {exc}",
                                 f"测试台错误：{type(exc).__name__}：{exc}")
            self.results.append(result)
            if self.out_dir is not None:
                with (self.out_dir / "results.jsonl").open("a", encoding="utf-8") as fh:
                    fh.write(result.to_json() + "\n")
            if self.progress is not None:
                self.progress(result)
        summary = self.summary()
        if self.out_dir is not None:
            (self.out_dir / "summary.json").write_text(summary.to_json() + "\n", "utf-8")
        return summary

    def run_case(self, case: TerminalCase) -> CaseResult:
        start = time.monotonic()
        test_card = self.test_card(case)
        card = test_card.build(self.profile)
        before = copy.deepcopy(card.content)
        kind = case.operation.removeprefix("write-")
        slot = expected_slot(self.profile, before, kind) if kind in SLOT_FILES else None
        served = ServedCard(card, test_card.behaviour, self.terminal.timeout_s)
        sam = ServedCard(VirtualSam.load(), timeout_s=self.terminal.timeout_s) \
            if self.terminal.uses_sam else None  # a terminal with a SAM always has it
        env = {"RHC_KEYS": str(self.keys_file)}
        try:
            env["RHC_READER"] = self.bench.insert(served, CARD)
            self.samples.setdefault(case.card, {
                "test_card": case.card, "title_zh": test_card.title_zh,
                "title_en": test_card.title_en, "atr": card.atr.hex().upper(),
                "card_number_factor": card.content.card_number_factor.hex().upper(),
                "reader": env["RHC_READER"]})
            served.remove = lambda: self.bench.pull(CARD)
            if sam is not None:
                env["RHC_SAM_READER"] = self.bench.insert(sam, SAM)
            self.readers = sorted({*self.readers, *(v for k, v in env.items()
                                                    if k.endswith("READER"))})
            if self.operator is not None:
                outcome = self.operator.transaction(case, env["RHC_READER"])
            else:
                outcome = run_transaction(self.terminal.command, case.operation,
                                          list(case.args), env=env, stdin=case.input,
                                          timeout_s=self.terminal.timeout_s)
        finally:
            served.cancel()
            self.bench.remove(CARD)
            if sam is not None:
                sam.cancel()
                self.bench.remove(SAM)
        findings = judge_trace(self.profile, before, served.trace)
        if sam is not None:
            findings += judge_sam(self.profile, before, served.trace, sam.trace)
        sent = sum(1 for ex in served.trace if not ex.reset)
        findings += check_result(case, self.profile, before, card.content, outcome, slot, sent)
        result = self.verdict(case, findings, outcome)
        result.duration_s = round(time.monotonic() - start, 3)
        self.write_evidence(result, case, outcome, served.trace, sam.trace if sam else [],
                            findings)
        return result

    def test_card(self, case: TerminalCase) -> TestCard:
        """The test card a case is served on (the suite's own, by the case's name)."""
        return load_test_card(case.card)

    def verdict(self, case: TerminalCase, findings: list[Finding], o: Outcome) -> CaseResult:
        manual = self.operator is not None
        if not findings:
            result = _result(case, Verdict.PASS, OPERATOR_CONFIRMED if manual else "",
                             "操作员确认" if manual else "")
        else:
            own = [f for f in findings if f.rule in case.own]
            first = (own or findings)[0]
            rest = [f for f in findings if f is not first]
            title_zh, title_en = CHECKS[first.rule]
            result = _result(case, Verdict.FAIL, f"{title_en}: {first.en}",
                             f"{title_zh}：{first.zh}")
            result.failed_at = "own" if own else f"step: {first.rule}"
            result.observations = [f"{f.rule}: {f.en}" for f in rest[:8]]
            _set(result, observations_zh=[f"{f.rule}：{f.zh}" for f in rest[:8]])
        if manual:
            result.observations.append(f"{OPERATOR_CONFIRMED}: the terminal's answer was typed "
                                       "or confirmed by the operator")
        _set(result, measured=(f"exit {o.exit_code}" if o.exit_code is not None else "killed"),
             expected="exit 0" if case.expect == "ok" else "error" + (
                 f" sw {case.sw}…" if case.sw else ""))
        return result

    def write_evidence(self, result: CaseResult, case: TerminalCase, outcome: Outcome,
                       card: list[Exchange], sam: list[Exchange], findings: list[Finding]) -> None:
        if self.out_dir is None:
            return
        lines: list[dict[str, Any]] = [{"case": case.id, "test_card": case.card,
                                        "terminal": self.terminal.name,
                                        "transaction": outcome.to_json()}]
        for reader, trace in (("card", card), ("sam", sam)):
            for ex in trace:
                lines.append({"reader": reader, "wall": self.clock.at(ex.at_s), **ex.to_json()})
        lines += [{"finding": f.rule, "at": f.at, "en": f.en, "zh": f.zh} for f in findings]
        path = self.out_dir / "evidence" / f"{case.id}.jsonl"
        path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines),
                        encoding="utf-8")
        result.evidence = f"evidence/{case.id}.jsonl"
        result.evidence_sha256 = sha256_file(path)

    # -- summary ---------------------------------------------------------------------------
    def summary(self) -> RunSummary:
        complete = len(self.results) == len(self.cases)
        catalogue = terminal_cases()  # a run of fewer cases is partial, never a certification
        scope = run_scope(card="terminal", plan_kind="certification", catalogue=len(catalogue),
                          mandatory_ids=[c.id for c in catalogue if c.mandatory],
                          results=self.results)
        t = self.terminal
        finished_at = now_in(self.lab.tz)
        number = "" if self.out_dir is None or not self.numbered else next_report_number(
            self.lab, self.started_at, lab_path=self.lab_path, run=str(self.out_dir))
        return RunSummary(
            verdict=conclude(self.results, complete=complete, scope=scope_of(scope)),
            counts=count(self.results),
            cases=[{"id": r.id, "verdict": r.verdict.value, "reason": r.reason,
                    "duration_s": r.duration_s} for r in self.results],
            card={"kind": "test cards", "samples": [self.samples[k] for k in sorted(self.samples)]},
            product={"kind": "terminal", "name": t.name, "vendor": t.vendor, "model": t.model,
                     "version": t.version,
                     "ics": {"mode": t.mode, "operations": ", ".join(t.operations),
                             "uses_sam": str(t.uses_sam).lower(), "timeout_s": f"{t.timeout_s:g}"},
                     "ics_path": t.source,
                     "ics_sha256": sha256_file(Path(t.source)) if t.source else ""},
            plan={"name": "terminal", "file": "fixtures/terminal/cases.yaml",
                  "sha256": "", "parameters": {}},
            profile={"name": self.profile.spec.profile.name, "file": str(self.profile.source),
                     "sha256": self.profile.sha256,
                     "standard": self.profile.spec.profile.standard},
            bench={**bench_info("pcsc", None), "readers": self.readers},
            suite_version=__version__,
            started=_utc(self.started_at),
            finished=_utc(finished_at),
            notes=([] if complete else [f"{len(self.results)} of {len(self.cases)} cases ran"])
            + ([] if len(self.cases) == len(catalogue) else
               [f"a selection kept {len(self.cases)} of the {len(catalogue)} TERM cases: "
                "not a certification"]),
            privacy={"setting": "off", "basis": "synthetic test cards: no personal data"},
            scope=scope,
            timezone=self.lab.timezone,
            started_at=self.started_at.isoformat(),
            finished_at=finished_at.isoformat(),
            report_number=number,
            lab=record(self.lab, self.lab_path or DEMO_LAB),
        )


def _set(result: CaseResult, **fields: Any) -> None:
    """Set the CaseResult fields this version of the result set has (reason_zh, …)."""
    names = {f.name for f in dataclasses.fields(CaseResult)}
    for name, value in fields.items():
        if name in names:
            setattr(result, name, value)


def _result(case: TerminalCase, verdict: Verdict, reason: str, reason_zh: str) -> CaseResult:
    result = CaseResult(id=case.id, group=case.group, title_zh=case.title_zh,
                        title_en=case.title_en, clause=case.source, purpose=case.purpose,
                        applicability=case.applicability,
                        expected_sw=[case.sw] if case.sw else [], mandatory=case.mandatory,
                        verdict=verdict, reason=reason)
    _set(result, reason_zh=reason_zh, requirement=case.requirement,
         requirement_zh=case.requirement_zh, requirement_en=case.requirement_en,
         source=case.source, purpose_zh=case.purpose_zh)
    return result


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")
