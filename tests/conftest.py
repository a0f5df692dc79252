"""Shared fixtures for the suite's own tests.

Sections are owned by different parts of the suite; append a new section rather than
reshaping an existing one.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# ---------------------------------------------------------------------------------------------
# PC/SC bench: pcscd + vpcd (end-to-end tests, marked e2e)
#
#   pcsc_bench      session: makes sure pcscd runs (starts one if needed, never skips); stops
#                   only a pcscd it started. Yields the reader names.
#   vpcd_card       factory: vpcd_card(responder, port=35963) serves any ApduResponder in the
#                   vpcd reader on that port, waits until pcscd shows the card, and takes the
#                   card out again (waiting until the reader is empty) at teardown.
#   pcsc_transport  factory: pcsc_transport(reader, **kw) opens a PcscTransport closed at
#                   teardown (request it after vpcd_card so it closes before the card leaves).
# ---------------------------------------------------------------------------------------------

VPCD_READER = "Virtual PCD 00 00"


@pytest.fixture(scope="session")
def pcsc_bench() -> Iterator[list[str]]:
    from conformance.bench import start_pcscd, stop_pcscd
    from conformance.transport.base import BenchError
    from conformance.transport.pcsc import list_readers

    try:
        proc = start_pcscd()
        readers = list_readers()
    except BenchError as exc:
        pytest.fail(f"the PC/SC bench is not available: {exc}", pytrace=False)
    if VPCD_READER not in readers:
        stop_pcscd(proc)
        pytest.fail(
            f"pcscd runs but has no {VPCD_READER!r} (is vsmartcard-vpcd installed?); "
            f"readers: {readers}",
            pytrace=False,
        )
    try:
        yield readers
    finally:
        stop_pcscd(proc)


@pytest.fixture
def vpcd_card(pcsc_bench: list[str]) -> Iterator[Callable[..., object]]:
    from conformance.bench import insert_vpcd_card, remove_vpcd_card
    from conformance.card.vpcd import VPCD_PORT, VpcdBridge
    from conformance.transport.base import BenchError

    bridges: list[VpcdBridge] = []

    def serve(responder: object, port: int = VPCD_PORT, timeout_s: float = 5.0) -> VpcdBridge:
        bridge = insert_vpcd_card(responder, port=port, timeout_s=timeout_s)  # type: ignore[arg-type]
        bridges.append(bridge)
        return bridge

    yield serve
    for bridge in reversed(bridges):
        # if the card does not leave, the next insert_vpcd_card reports it with the reason
        with contextlib.suppress(BenchError):
            remove_vpcd_card(bridge)


@pytest.fixture
def pcsc_transport(pcsc_bench: list[str]) -> Iterator[Callable[..., object]]:
    from conformance.transport.pcsc import PcscTransport

    opened: list[PcscTransport] = []

    def open_transport(reader: str = VPCD_READER, **kwargs: object) -> PcscTransport:
        transport = PcscTransport(reader, **kwargs)  # type: ignore[arg-type]
        opened.append(transport)
        return transport

    yield open_transport
    for transport in reversed(opened):
        transport.close()


# ---------------------------------------------------------------------------------------------
# `rhc card serve` as a separate process (end-to-end tests of the CLI through PC/SC)
#
#   served_card     the reference card served by `rhc card serve` in Virtual PCD 00 00
# ---------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def wait_for_reader_card(present: bool, timeout_s: float = 10.0) -> None:
    from conformance.bench import wait_for_card

    wait_for_card(VPCD_READER, present=present, timeout_s=timeout_s)


@pytest.fixture
def served_card(pcsc_bench: list[str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`rhc card serve` as a separate process, with the card in Virtual PCD 00 00."""
    wait_for_reader_card(False)
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conformance.cli", "card", "serve"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=sink,
        )
    try:
        wait_for_reader_card(True)
    except Exception:
        proc.kill()
        proc.wait()
        pytest.fail(f"rhc card serve did not insert the card: {log.read_text()}")
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    wait_for_reader_card(False)


# ---------------------------------------------------------------------------------------------
# Report numbers: the suite's runs take them from a lab state directory of their own, never
# from the user's (~/.local/state/rhc).
# ---------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="session")
def _report_number_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    import os

    from conformance.sequence import STATE_ENV

    saved = os.environ.get(STATE_ENV)
    os.environ[STATE_ENV] = str(tmp_path_factory.mktemp("rhc-state"))
    yield
    if saved is None:
        os.environ.pop(STATE_ENV, None)
    else:
        os.environ[STATE_ENV] = saved
