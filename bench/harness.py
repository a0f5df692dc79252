#!/usr/bin/env python3
"""What the harness costs on the wire, and how fast the suite runs: `name: value` lines.

Side by side in one process (this machine is noisy, so ratios come from interleaved blocks):

  pcsc_bare_us_per_apdu      a READ RECORD (and its T=0 GET RESPONSE) with bare pyscard
  pcsc_harness_us_per_apdu   the same through the stack the cases use: PcscTransport
                             (deadline), T0Layer, TraceLayer (what lies between the case and
                             the card while it runs: the noise on a latency measurement)
  pcsc_overhead_ratio        harness / bare (median of the per-block ratios; both over one
                             connection, in alternating blocks)
  pcsc_harness_with_evidence_us_per_apdu, pcsc_overhead_ratio_with_evidence
                             the same, plus the work done between cases: every CASE_APDUS
                             exchanges, the redaction and JSONL of that case's evidence
  inprocess_apdus_per_s      the full stack against the in-process virtual card
  certification_inprocess_s  `rhc run` of the plan on the in-process virtual card
  certification_pcsc_s       the same run through pcscd + vpcd (`rhc card serve`)

The card is served by a separate process (`rhc card serve`), so its work does not share this
process's interpreter. The PC/SC figures need pcscd (scripts/with-pcscd.sh) and are skipped,
saying so, without it. Nothing here asserts a time: CI runs `--small` as a smoke test.

Usage: python bench/harness.py [--small] [--n N] [--plan NAME]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conformance.model.profile import CardProfile
    from conformance.transport.base import Transport
    from conformance.transport.layers import TraceLayer
    from conformance.transport.pcsc import PcscTransport
    from conformance.transport.redact import Redactor

ROOT = Path(__file__).resolve().parents[1]
READER = "Virtual PCD 00 00"
VPCD_PORT = 35963
PARALLEL_PORTS = (35963, 35964, 35965, 35966)
"""Four vpcd readers: the package's two and the two of scripts/setup.sh's extra entry."""
PARALLEL_LATENCY_MS = 5
CASE_APDUS = 20
"""READ RECORDs per timed block, and per evidence slice (a case of the catalogue sends
~10-40)."""
WARM_UP = 20
"""Untimed READ RECORDs each way before the timed blocks."""
SELECT = ("00A4000002DDF1", "00A4000002EF05")
READ_RECORD = bytes.fromhex("00B2010400")


def emit(name: str, value: object) -> None:
    if isinstance(value, float):
        value = f"{value:.3f}" if value < 100 else f"{value:.1f}"
    print(f"{name}: {value}", flush=True)


def rhc(*args: str) -> list[str]:
    return [sys.executable, "-m", "conformance.cli", *args]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@contextmanager
def served_card(*extra: str, ports: tuple[int, ...] = (VPCD_PORT,)) -> Iterator[None]:
    """The reference virtual card in the vpcd reader of each port, each served by its own
    process."""
    from conformance.bench import wait_for_card
    from conformance.card.vpcd import vpcd_reader_name

    readers = [vpcd_reader_name(port) for port in ports]
    for reader in readers:
        wait_for_card(reader, present=False, timeout_s=10)
    procs = [subprocess.Popen(rhc("card", "serve", "--vpcd-port", str(port), *extra), cwd=ROOT,
                              env=environment(), stderr=subprocess.DEVNULL) for port in ports]
    try:
        for reader in readers:
            wait_for_card(reader, present=True, timeout_s=15)
        yield
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        for reader in readers:
            wait_for_card(reader, present=False, timeout_s=10)


# -- per-APDU loops -------------------------------------------------------------------------

Block = Callable[[int], float]
"""Seconds for ``count`` READ RECORDs, one way of sending them."""


def bare_block(transport: PcscTransport) -> Block:
    """READ RECORDs with pyscard alone, on the transport's own connection, with the same wire
    exchanges as the stack (T=0)."""
    from smartcard import scard as sc

    card, protocol = transport.pyscard_handle
    command = list(READ_RECORD)

    def block(count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            _, response = sc.SCardTransmit(card, protocol, command)
            if response[-2] == 0x61:
                sc.SCardTransmit(card, protocol, [0x00, 0xC0, 0x00, 0x00, response[-1]])
        return time.perf_counter() - start

    return block


def stack_block(stack: TraceLayer, *, evidence: bool) -> Block:
    """READ RECORDs through the full stack as one case sends them; with ``evidence``, the
    case's slice is redacted and serialised too (the work done between cases)."""

    def block(count: int) -> float:
        start = time.perf_counter()
        mark = stack.mark()
        for _ in range(count):
            stack.transmit(READ_RECORD)
        if evidence:
            stack.evidence(mark).encode("utf-8")
        stack.release()
        return time.perf_counter() - start

    return block


def selected_stack(transport: Transport) -> TraceLayer:
    """The stack the cases use over ``transport``, EF05 selected."""
    from conformance.transport.layers import build_stack

    stack = build_stack(transport, profile=_profile(), redactor=_redactor())
    for apdu in SELECT:
        stack.transmit(bytes.fromhex(apdu))
    return stack


@functools.cache
def _profile() -> CardProfile:
    from conformance.model import load_profile

    return load_profile()


def _redactor() -> Redactor:
    from conformance.transport.redact import Redactor

    return Redactor.from_profile(_profile())


def pcsc_figures(n: int) -> None:
    """Bare pyscard and the stack in alternating blocks of CASE_APDUS over one connection:
    the same pcscd context, card process and moment for both, so that what differs is what
    the stack adds (separate connections each drew their own pcscd thread and differed by
    more than the stack costs)."""
    from conformance.transport.pcsc import PcscTransport

    with served_card():
        transport = PcscTransport(READER)
        stack = selected_stack(transport)
        try:
            sides = {
                "bare": bare_block(transport),
                "hot": stack_block(stack, evidence=False),
                "full": stack_block(stack, evidence=True),
            }
            for block in sides.values():
                block(WARM_UP)
            times: dict[str, list[float]] = {name: [] for name in sides}
            names = list(sides)
            for i in range(max(1, n // CASE_APDUS)):
                for name in names[i % 3:] + names[: i % 3]:  # rotate: drift hits all alike
                    times[name].append(sides[name](CASE_APDUS))
        finally:
            stack.close()
    bare, hot, full = times["bare"], times["hot"], times["full"]
    emit("pcsc_bare_us_per_apdu", statistics.median(bare) / CASE_APDUS * 1e6)
    emit("pcsc_harness_us_per_apdu", statistics.median(hot) / CASE_APDUS * 1e6)
    emit("pcsc_overhead_ratio", statistics.median(h / b for h, b in zip(hot, bare, strict=True)))
    emit("pcsc_harness_with_evidence_us_per_apdu", statistics.median(full) / CASE_APDUS * 1e6)
    emit("pcsc_overhead_ratio_with_evidence",
         statistics.median(f / b for f, b in zip(full, bare, strict=True)))


def inprocess_rate(n: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from casekit import new_card

    from conformance.transport.inprocess import InProcessTransport

    stack = selected_stack(InProcessTransport(new_card()))
    block = stack_block(stack, evidence=True)
    block(WARM_UP)
    blocks = max(1, n // CASE_APDUS)
    emit("inprocess_apdus_per_s", blocks * CASE_APDUS / sum(block(CASE_APDUS)
                                                            for _ in range(blocks)))


# -- whole runs ----------------------------------------------------------------------------


def timed_run(name: str, *args: str) -> float | None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run(rhc("run", "--quiet", "--no-report", "--out", f"{tmp}/run", *args),
                              cwd=ROOT, env=environment(), capture_output=True, text=True,
                              check=False)
        elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 3):  # 3: NO_FAILURES, what a bench self-test ends with
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        print(f"{name}: failed (exit {proc.returncode}: {last})", flush=True)
        return None
    emit(name, elapsed)
    return elapsed


def parallel_figures(plan: str) -> None:
    """The plan on one reader, then on four at once (--workers 4), every card taking
    PARALLEL_LATENCY_MS per answer as a real card would."""
    from conformance.card.vpcd import vpcd_reader_name
    from conformance.plugin import readers_for
    from conformance.transport.pcsc import list_readers

    readers = [vpcd_reader_name(port) for port in PARALLEL_PORTS]
    present = readers_for("Virtual PCD", list_readers())
    if not set(readers) <= set(present):
        print(f"parallel: skipped (needs the readers {readers}; scripts/setup.sh adds them; "
              f"present: {present})", flush=True)
        return
    with served_card("--card-latency-ms", str(PARALLEL_LATENCY_MS), ports=PARALLEL_PORTS):
        one = timed_run("parallel_1_reader_s", "--reader", READER, "--plan", plan)
        four = timed_run("parallel_4_readers_s", "--reader", "Virtual PCD", "--workers", "4",
                         "--plan", plan)
    if one and four:
        emit("parallel_speedup_4_readers", one / four)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true",
                        help="a smoke run: few APDUs, one round, the selftest plan")
    parser.add_argument("--n", type=int, help="APDUs per side (default 9000; --small 200)")
    parser.add_argument("--plan", help="plan of the whole runs (default certification; "
                        "--small selftest)")
    args = parser.parse_args()
    n = args.n or (200 if args.small else 9000)
    plan = args.plan or ("selftest" if args.small else "certification")
    sys.path.insert(0, str(ROOT))
    from conformance.bench import pcscd_running

    pcsc = pcscd_running()
    emit("apdus_per_loop", n)
    if pcsc:
        pcsc_figures(n)
    else:
        print("pcsc: skipped (pcscd is not running; use scripts/with-pcscd.sh)", flush=True)
    inprocess_rate(n)
    emit("plan", plan)
    timed_run("certification_inprocess_s", "--card", "virtual", "--plan", plan)
    if pcsc:
        with served_card():
            timed_run("certification_pcsc_s", "--reader", READER, "--plan", plan)
        parallel_figures(plan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
