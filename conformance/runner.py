"""Runs conformance cases against a card and turns each into a verdict with its evidence.

This is the one place where the way a case ended becomes a verdict (DESIGN.md, "Verdicts"):
PASS, FAIL (the card broke a requirement), INCONCLUSIVE (a precondition or the bench failed),
ERROR (the harness failed), NOT_APPLICABLE (the ICS excludes the case). The pytest plugin and
the suite's own meta-tests both go through `CaseRunner.run`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from conformance.apdu import ApduError, ApduFormatError
from conformance.cases.framework import (
    Case,
    CaseContext,
    CaseFailure,
    Inconclusive,
    failed_at,
    shown,
)
from conformance.clock import WallClock
from conformance.defaults import CASE_TIMEOUT_S
from conformance.host.keys import KeyProvider
from conformance.host.session import AuthenticationWithheld, HealthCardSession, HostError
from conformance.messages import Msg, msg, msg_of
from conformance.model.codecs import CodingError
from conformance.model.products import Plan, Product, applicable
from conformance.model.profile import CardProfile
from conformance.results import CaseResult, Verdict
from conformance.transport.base import BenchError, CaseTimeout, Transport
from conformance.transport.layers import TraceEntry, TraceLayer, build_stack
from conformance.transport.redact import Redactor


def judge(exc: BaseException | None) -> tuple[Verdict, str]:
    """The verdict for the way a case body ended, with the English reason."""
    verdict, message, _, _ = judgement(exc)
    return verdict, message.en if message is not None else ""


def judgement(exc: BaseException | None) -> tuple[Verdict, Msg | None, str, str]:
    """The verdict for the way a case body ended: (verdict, reason as a Msg or None for a
    PASS, expected, measured)."""
    if exc is None:
        return Verdict.PASS, None, "", ""
    expected, measured = shown(exc)
    if isinstance(exc, Inconclusive):
        return Verdict.INCONCLUSIVE, exc.msg, expected, measured
    if isinstance(exc, BenchError):
        return Verdict.INCONCLUSIVE, msg("run.bench", error=msg_of(exc)), expected, measured
    if isinstance(exc, AuthenticationWithheld):
        return Verdict.INCONCLUSIVE, msg("run.withheld", error=exc.msg), expected, measured
    if isinstance(exc, CaseFailure):
        return Verdict.FAIL, exc.msg, expected, measured
    if isinstance(exc, ApduError):
        return Verdict.FAIL, msg("run.unexpected_sw", error=exc.msg), expected, measured
    if isinstance(exc, (HostError, CodingError, ApduFormatError)):
        return Verdict.FAIL, msg("run.malformed", error=msg_of(exc)), expected, measured
    return (Verdict.ERROR, msg("run.harness", kind=type(exc).__name__, error=str(exc)),
            expected, measured)


class CaseRunner:
    """Owns the connection to one card and runs cases on it, one fresh reset per case."""

    def __init__(
        self,
        *,
        connect: Callable[[], Transport],
        profile: CardProfile,
        keys: KeyProvider,
        product: Product,
        plan: Plan,
        out_dir: Path | None = None,
        redactor: Redactor | None = None,
        case_timeout_s: float = CASE_TIMEOUT_S,
        wall_clock: WallClock | None = None,
    ):
        self.connect = connect
        self.wall_clock = wall_clock or WallClock()
        self.profile = profile
        self.keys = keys
        self.product = product
        self.plan = plan
        self.out_dir = out_dir
        self.case_timeout_s = case_timeout_s
        self.redactor = redactor or Redactor.from_profile(profile)
        self.bench_lost: str | None = None
        self._stack: TraceLayer | None = None
        self.features = list(profile.spec.features)
        self.withheld: dict[str, Msg] = {}  # key families refused a correct cryptogram

    # -- connection --------------------------------------------------------------------
    def _open(self) -> TraceLayer:
        if self._stack is None:
            self._stack = build_stack(
                self.connect(), profile=self.profile, redactor=self.redactor
            )
        return self._stack

    def _drop(self) -> None:
        if self._stack is not None:
            with contextlib.suppress(BenchError):
                self._stack.close()
            self._stack = None

    def close(self) -> None:
        self._drop()

    def card_info(self) -> dict[str, Any]:
        """ATR, card-number factor and chip serial of the sample (read freely from DDF1/EF05)."""
        stack = self._open()
        stack.reset()
        session = HealthCardSession(stack, self.profile, self.keys)
        info: dict[str, Any] = {
            "atr": stack.atr.hex().upper(),
            "card_number_factor": session.card_number_factor.hex().upper(),
            "reader": stack.name,
        }
        try:
            info["chip_serial"] = session.read_item(self.profile.role_item("chip_serial"))
        except (ApduError, HostError, CodingError) as exc:
            info["chip_serial"] = f"unreadable: {exc}"
        return info

    # -- cases -------------------------------------------------------------------------
    def run(self, case: Case) -> CaseResult:
        result = CaseResult.for_case(case, Verdict.ERROR)
        if not applicable(case.applicability, self.product, self.features):
            result.verdict = Verdict.NOT_APPLICABLE
            result.set_reason(msg("run.not_applicable", product=self.product.name,
                                  applicability=case.applicability))
            return result
        if self.bench_lost:
            result.verdict = Verdict.INCONCLUSIVE
            result.set_reason(msg("run.bench_lost", why=self.bench_lost))
            return result
        started = time.perf_counter()
        stack: TraceLayer | None = None
        mark = 0
        exc: BaseException | None = None
        context: CaseContext | None = None
        try:
            stack = self._open()
            mark = stack.mark()
            stack.annotate(f"case {case.id} begins")
            stack.deadline = (time.monotonic() + self.case_timeout_s, self.case_timeout_s)
            with _backstop(self.case_timeout_s):
                stack.reset()
                session = HealthCardSession(stack, self.profile, self.keys,
                                            withheld=self.withheld)
                context = CaseContext(
                    session=session,
                    trace=stack,
                    profile=self.profile,
                    product=self.product,
                    parameters=self.plan.parameters,
                    choices=self.plan.choices,
                )
                case.body(context)
        except Exception as caught:  # every way a case can end becomes a verdict
            exc = caught
        finally:
            if stack is not None:
                stack.deadline = None
        result.verdict, reason, result.expected, result.measured = judgement(exc)
        if reason is not None:
            result.set_reason(reason)
        if context is not None:
            result.observations = list(context.observations)
            result.observations_zh = list(context.observations_zh)
        if result.verdict is Verdict.FAIL and exc is not None:
            result.failed_at = failed_at(exc)
        if stack is not None:  # failure messages quote APDUs: mask what the trace masks
            result.scrub(stack.scrub)
        result.duration_s = round(time.perf_counter() - started, 6)
        if stack is not None:
            self._write_evidence(result, stack, mark)
        if isinstance(exc, BenchError) and not (
            isinstance(exc, CaseTimeout) and not exc.mid_exchange
        ):  # a case stopped between exchanges left the connection as it was
            self._recover(exc)
        return result

    def _write_evidence(self, result: CaseResult, stack: TraceLayer, mark: int) -> None:
        text = evidence_jsonl(stack.since(mark), self.wall_clock)
        data = text.encode("utf-8")
        result.evidence_sha256 = hashlib.sha256(data).hexdigest()
        if self.out_dir is not None:
            relative = Path("evidence") / f"{result.id}.jsonl"
            target = self.out_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            result.evidence = relative.as_posix()

    def _recover(self, exc: BenchError) -> None:
        """After a bench fault, reconnect once; if that fails, the bench is lost for the run."""
        self._drop()
        try:
            self._open().reset()
        except BenchError as again:
            self.bench_lost = f"{exc}; reconnect failed: {again}"
            self._drop()


def evidence_jsonl(entries: Iterable[TraceEntry], clock: WallClock) -> str:
    """A case's evidence file: one trace entry a line, its monotonic times followed by the
    wall-clock times they stand for (`wall_start`/`wall_end`, ISO 8601 with the lab's offset).

    The wall-clock times are computed here, once per case, not as each APDU is exchanged.
    """
    lines = []
    for entry in entries:
        data = entry.to_dict()
        head = {"seq": data["seq"], "t_start": data["t_start"], "t_end": data["t_end"],
                "wall_start": clock.at(entry.t_start), "wall_end": clock.at(entry.t_end)}
        lines.append(json.dumps(head | data, ensure_ascii=False, separators=(",", ":")))
    return "".join(line + "\n" for line in lines)


@contextlib.contextmanager
def _backstop(seconds: float) -> Iterator[None]:
    """Last resort for a case that stops exchanging (a harness loop): SIGALRM raises
    CaseTimeout wherever the case is, a grace period after its deadline. Only in the main
    thread and when no other timer is armed (a test session's own timeout keeps its alarm)."""
    if threading.current_thread() is not threading.main_thread() or signal.getitimer(
        signal.ITIMER_REAL
    )[0]:
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise CaseTimeout(seconds, mid_exchange=True)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds + max(seconds, BACKSTOP_GRACE_S))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


BACKSTOP_GRACE_S = 5.0
"""How long past its deadline a case that sends nothing may run before SIGALRM stops it."""
