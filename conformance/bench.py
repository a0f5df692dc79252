"""The PC/SC bench on this machine: is pcscd running, start/stop one, wait for a card.

There is one pcscd per machine (fixed socket path /run/pcscd/pcscd.comm). These helpers never
fight an existing daemon: ``start_pcscd`` returns None when one already answers, and only a
process it started is ever stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from conformance.transport.base import BenchError
from conformance.transport.pcsc import _establish, _release
from conformance.transport.pcsc import wait_for_card as _wait_for_card

__all__ = [
    "PCSCD_SOCKET",
    "find_pcscd",
    "pcscd_running",
    "start_pcscd",
    "stop_pcscd",
    "wait_for_card",
]

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
            raise BenchError(
                f"pcscd exited with status {proc.returncode} right after starting"
                f"{_why_not_root()}: {_tail(log.name)}"
            )
        if pcscd_running():
            return proc
        time.sleep(0.05)
    stop_pcscd(proc)
    raise BenchError(
        f"pcscd started but {PCSCD_SOCKET} did not answer within {timeout_s:g} s"
        f"{_why_not_root()}: {_tail(log.name)}"
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
