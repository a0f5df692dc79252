"""Measurements with limits, after OpenHTF: a value, a limit, a unit, beside the verdict.

A measured operation runs ``warmup`` times untimed, then up to ``repetitions`` times timed by
the transport's own clock (its timestamps around ``SCardTransmit`` / the responder's call:
:meth:`~conformance.transport.layers.TraceLayer.wire_seconds`), so the harness's own Python
does not enter the figure. The value is the median, compared with the plan's limit; p95, max
and N are reported with it. Sampling stops as soon as more than half the repetitions missed
the limit (the median cannot come back), so a very slow card does not hold the run.

The bench's floor is measured beside it: the same wire exchanges replayed against a null card
(it answers 9000 at once) over an in-process transport, timed the same way. It tells card time
from the time the timing itself costs; for a PC/SC run, pcscd's own round trip comes on top
(bench/harness.py measures it: ``pcsc_bare_us_per_apdu``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conformance.cases.framework import CaseContext
from conformance.messages import Msg, as_msg, msg

LATENCY_UNIT = "ms"
THROUGHPUT_UNIT = "B/s"


@dataclass(frozen=True)
class Sampling:
    """How a plan asks for measurements: untimed warm-up runs, then timed repetitions."""

    warmup: int
    repetitions: int


def sampling(ctx: CaseContext) -> Sampling:
    """The plan's ``performance.warmup`` and ``performance.repetitions`` (ValueError: ERROR)."""
    perf = performance(ctx)
    warmup, repetitions = perf.get("warmup", 1), perf.get("repetitions")
    for name, value, least in (("warmup", warmup, 0), ("repetitions", repetitions, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"plan parameter performance.{name} must be a whole number "
                             f"≥ {least}, not {value!r}")
    return Sampling(warmup, repetitions)


def performance(ctx: CaseContext) -> dict[str, Any]:
    value = ctx.parameters.get("performance")
    if not isinstance(value, dict):
        raise ValueError("plan parameter performance is missing (warm-up, repetitions and "
                         "the limits of the PERF cases)")
    return value


def setting(ctx: CaseContext, name: str) -> dict[str, Any]:
    """``performance.<name>``: one measurement's limit and targets (ValueError if missing)."""
    value = performance(ctx).get(name)
    if not isinstance(value, dict):
        raise ValueError(f"plan parameter performance.{name} is missing")
    return value


def number(entry: dict[str, Any], key: str, where: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"plan parameter performance.{where}.{key} must be a number > 0, "
                         f"not {value!r}")
    return float(value)


def _percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[max(0, math.ceil(fraction * len(values)) - 1)]


class Meter:
    """Times operations with the transport's clock and records them on the case."""

    def __init__(self, ctx: CaseContext) -> None:
        self.ctx = ctx
        if ctx.trace.wire_seconds() is None:
            raise ValueError("the transport keeps no timestamps of its own (wire_s)")

    def wire_time(self, op: Callable[[], object]) -> tuple[float, list[bytes | str]]:
        """Seconds ``op`` spent on the wire, and the wire exchanges it made (for the floor)."""
        trace = self.ctx.trace
        position = trace.position
        before = trace.wire_seconds() or 0.0
        op()
        return (trace.wire_seconds() or 0.0) - before, trace.wire_log(position)

    def last_exchange(self, op: Callable[[], object]) -> tuple[float, list[bytes | str]]:
        """Seconds of the last wire exchange ``op`` made (one command of a sequence)."""
        trace = self.ctx.trace
        position = trace.position
        op()
        return trace.last_wire_seconds() or 0.0, trace.wire_log(position)[-1:]

    def measure(
        self,
        what: str | Msg,
        op: Callable[[], object],
        *,
        limit: float,
        unit: str = LATENCY_UNIT,
        size: int = 0,
        timed: Callable[[Callable[[], object]], tuple[float, list[bytes | str]]] | None = None,
        between: Callable[[], object] | None = None,
    ) -> dict[str, Any]:
        """Measure ``op`` (a latency in ms, or ``size`` bytes per second of it) against
        ``limit``, record it on the case and FAIL when its median misses the limit.

        ``timed`` replaces :meth:`wire_time` (e.g. to time one exchange of several);
        ``between`` runs untimed after each repetition (to restore what it changed)."""
        plan = sampling(self.ctx)
        name = as_msg(what).en  # the measurement's name in results and evidence
        timed = timed or self.wire_time
        higher = unit == THROUGHPUT_UNIT

        def value(seconds: float) -> float:
            if higher:
                return size / seconds if seconds > 0 else math.inf
            return seconds * 1000.0

        for _ in range(plan.warmup):
            op()
            if between is not None:
                between()
        samples: list[float] = []
        wires: list[bytes | str] = []
        missed = 0
        for _ in range(plan.repetitions):
            seconds, wires = timed(op)
            if between is not None:
                between()
            samples.append(value(seconds))
            missed += samples[-1] < limit if higher else samples[-1] > limit
            if missed > plan.repetitions // 2:
                break  # the median misses the limit whatever the other repetitions give
        ordered = sorted(samples, reverse=higher)  # worst last: p95 and max are the bad tail
        median = statistics.median(samples)
        record = {
            "name": name,
            "value": _round(median),
            "limit": limit,
            "comparison": ">=" if higher else "<=",
            "unit": unit,
            "median": _round(median),
            "p95": _round(_percentile(ordered, 0.95)),
            "max": _round(ordered[-1]),
            "n": len(samples),
            "floor": _round(value(_floor(wires))),
            "floor_basis": "null card, in-process",
        }
        self.ctx.measurements.append(record)
        self.ctx.trace.annotate(
            f"measurement {name}: median {record['value']} {unit} (limit {record['comparison']}"
            f" {limit:g} {unit}), p95 {record['p95']}, max {record['max']}, n {len(samples)}, "
            f"floor {record['floor']}")
        ok = median >= limit if higher else median <= limit
        self.ctx.check(ok, msg("perf.over_limit", name=what, value=record["value"], unit=unit,
                               n=len(samples), comparison=record["comparison"],
                               limit=f"{limit:g}", p95=record["p95"], max=record["max"]),
                       expected=f"{record['comparison']} {limit:g} {unit}",
                       measured=f"{record['value']} {unit}")
        return record


def _round(value: float) -> float:
    return float(f"{value:.4g}") if math.isfinite(value) else value


class _NullCard:
    """Answers every command 9000 at once: what is left is the bench's own time."""

    ATR = bytes.fromhex("3B00")

    def reset(self) -> bytes:
        return self.ATR

    def process(self, apdu: bytes) -> bytes:
        return b"\x90\x00"


def _floor(wires: list[bytes | str]) -> float:
    """Seconds the same wire exchanges take against a null card, timed as the card was."""
    from conformance.transport.inprocess import InProcessTransport

    transport = InProcessTransport(_NullCard(), name="null card")
    start = transport.wire_s
    for wire in wires:
        if wire == "RESET":
            transport.reset()
        elif isinstance(wire, bytes):
            transport.transmit(wire)
    return transport.wire_s - start
