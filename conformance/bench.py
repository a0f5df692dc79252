"""The PC/SC bench on this machine: is pcscd running, start/stop one, wait for a card.

There is one pcscd per machine (fixed socket path /run/pcscd/pcscd.comm). These helpers never
fight an existing daemon: ``start_pcscd`` returns None when one already answers, and only a
process it started is ever stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from conformance.defaults import VPCD_PORT
from conformance.transport.base import ApduResponder, BenchError
from conformance.transport.pcsc import _establish, _release
from conformance.transport.pcsc import wait_for_card as _wait_for_card

__all__ = [
    "PCSCD_SOCKET",
    "find_pcscd",
    "insert_vpcd_card",
    "pcscd_running",
    "remove_vpcd_card",
    "start_pcscd",
    "stop_pcscd",
    "wait_for_card",
]

if TYPE_CHECKING:  # the card package (virtual card and all) loads only when a card is served
    from conformance.card.vpcd import VpcdBridge

log = logging.getLogger(__name__)


PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")

_INSTALL_HINT = (
    "install it with `apt-get install pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools` "
    "(or run scripts/setup.sh as root)"
)


def find_pcscd() -> str | None:
    """The path of the pcscd executable, or None (it lives in /usr/sbin, often not on PATH)."""
    found = shutil.which("pcscd")
    if found:
        return found
    for candidate in ("/usr/sbin/pcscd", "/usr/local/sbin/pcscd", "/sbin/pcscd"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def pcscd_running() -> bool:
    """True when pcscd's socket exists and a PC/SC context can be established through it."""
    if not PCSCD_SOCKET.exists():
        return False
    try:
        context = _establish()
    except BenchError:
        return False
    _release(context)
    return True


def start_pcscd(timeout_s: float = 10.0) -> subprocess.Popen[bytes] | None:
    """Start ``pcscd --foreground`` in the background unless one is running already.

    Returns the process started (give it to stop_pcscd), or None when a pcscd was already
    running (leave it alone). BenchError when pcscd is not installed or does not come up.
    """
    if pcscd_running():
        return None
    exe = find_pcscd()
    if exe is None:
        raise BenchError(f"pcscd is not installed; {_INSTALL_HINT}")
    try:
        return _start(exe, timeout_s)
    except _Refused:
        # a pcscd killed a moment ago leaves its pid file; try once more after a pause
        time.sleep(1.0)
    try:
        return _start(exe, timeout_s)
    except _Refused as exc:
        raise BenchError(str(exc)) from None


class _Refused(BenchError):
    """pcscd exited right after starting."""


def _start(exe: str, timeout_s: float) -> subprocess.Popen[bytes]:
    _clear_stale()
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - it outlives this function
        prefix="pcscd-", suffix=".log", delete=False
    )
    try:
        proc = subprocess.Popen(
            [exe, "--foreground"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal does not hit it mid-run
        )
    except OSError as exc:
        raise BenchError(f"cannot start {exe}: {exc}") from exc
    finally:
        log.close()
    proc.log_path = log.name  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            why = _tail(log.name)
            with contextlib.suppress(OSError):
                os.unlink(log.name)
            raise _Refused(
                f"pcscd exited with status {proc.returncode} right after starting"
                f"{_why_not_root()}: {why}"
            )
        if pcscd_running():
            return proc
        time.sleep(0.05)
    why = _tail(log.name)
    stop_pcscd(proc)
    raise BenchError(
        f"pcscd started but {PCSCD_SOCKET} did not answer within {timeout_s:g} s"
        f"{_why_not_root()}: {why}"
    )


def stop_pcscd(proc: subprocess.Popen[bytes] | None, timeout_s: float = 5.0) -> None:
    """Stop a pcscd that start_pcscd started (None: nothing to do); wait for it to exit."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout_s)
    # pcscd removes its socket on a clean exit; give it a moment so a restart does not race
    deadline = time.monotonic() + 1.0
    while PCSCD_SOCKET.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    log_path = getattr(proc, "log_path", None)
    if log_path:
        with contextlib.suppress(OSError):
            os.unlink(log_path)


def wait_for_card(reader: str, present: bool = True, timeout_s: float = 5.0) -> bytes:
    """Wait until ``reader`` (exact name or pattern) shows a usable card (or none).

    pcscd polls presence about every 400 ms, so a card just inserted (or a vpcd bridge just
    connected) needs this before connecting. Returns the ATR pcscd saw (b"" for absent).
    """
    return _wait_for_card(reader, present=present, timeout_s=timeout_s)


# pcscd polls card presence about every 400 ms; waiting a little longer than that guarantees
# one poll has seen the reader empty.
PRESENCE_POLL_S = 0.4
_SETTLE_S = PRESENCE_POLL_S + 0.2


def insert_vpcd_card(
    responder: ApduResponder, port: int = VPCD_PORT, timeout_s: float = 5.0
) -> VpcdBridge:
    """Put ``responder`` in the vpcd reader on ``port`` and wait until pcscd shows the card.

    Refuses a reader that already holds a card (an earlier bridge or vicc would answer in
    place of ours). If pcscd does not show the card, the card is taken out and put back once:
    when a previous card vanished mid-exchange and this one connected before pcscd's next
    presence poll, pcscd misses the swap and shows the reader empty until the card leaves.
    """
    from conformance.card.vpcd import VpcdBridge, vpcd_reader_name

    reader = vpcd_reader_name(port)
    try:
        _wait_for_card(reader, present=False, timeout_s=timeout_s)
    except BenchError as exc:
        raise BenchError(
            f"{reader!r} already holds a card (is an earlier bridge or vicc still connected "
            f"to port {port}?): {exc}"
        ) from exc
    deadline = time.monotonic() + timeout_s
    first_try = min(3 * PRESENCE_POLL_S + 0.3, timeout_s)
    bridge = VpcdBridge(responder, port=port)
    bridge.run_in_thread(connect_timeout_s=min(2.0, timeout_s))
    try:
        _wait_for_card(reader, present=True, timeout_s=first_try)
        return bridge
    except BenchError:
        bridge.stop()
    log.info("pcscd did not show the card in %r; taking it out and inserting it again", reader)
    time.sleep(_SETTLE_S)  # let pcscd see the reader empty, then insert again
    bridge = VpcdBridge(responder, port=port)
    bridge.run_in_thread(connect_timeout_s=min(2.0, timeout_s))
    try:
        _wait_for_card(reader, present=True, timeout_s=max(deadline - time.monotonic(), 1.0))
    except BenchError:
        bridge.stop()
        raise
    return bridge


def remove_vpcd_card(bridge: VpcdBridge, timeout_s: float = 5.0) -> None:
    """Take the bridge's card out and wait until pcscd shows its reader empty."""
    bridge.stop()
    _wait_for_card(bridge.reader_name, present=False, timeout_s=timeout_s)
    if bridge.dropped_exchange:
        time.sleep(_SETTLE_S)  # see insert_vpcd_card: make sure pcscd's poll saw it empty


def _pid_alive(pid: int) -> bool:
    """True for a running process; a zombie (killed, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _clear_stale() -> None:
    """Remove the socket and pid file of a pcscd that is gone (they make a new one refuse)."""
    pidfile = PCSCD_SOCKET.with_name("pcscd.pid")
    if not (pidfile.exists() or PCSCD_SOCKET.exists()):
        return
    try:
        digits = "".join(ch for ch in pidfile.read_text(errors="replace") if ch.isdigit())
    except OSError:
        digits = ""
    if digits and _pid_alive(int(digits)):
        return
    log.info("removing stale %s (pcscd %s is gone)", PCSCD_SOCKET, digits or "?")
    for path in (PCSCD_SOCKET, pidfile):
        with contextlib.suppress(OSError):
            path.unlink()


def _tail(path: str, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(pcscd printed nothing)"


def _why_not_root() -> str:
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return " (not running as root: pcscd needs to create /run/pcscd)"
    return ""
