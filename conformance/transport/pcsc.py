"""The PC/SC transport: a real (or vpcd-virtual) reader through pcscd, via pyscard.

What this module guarantees to the rest of the suite:

- the reader is chosen by exact name, else by regular expression (``re.fullmatch``, then
  ``re.search``); an absent or ambiguous choice is a BenchError listing the readers that exist;
- the connection is exclusive by default (one process per reader) and lets PC/SC negotiate
  T=0 or T=1; the protocol chosen is exposed as ``.protocol`` ("T=0" / "T=1");
- before connecting it waits (bounded) for the reader to show a card: pcscd polls presence
  only every ~400 ms, so a card that was just inserted is not yet usable;
- every PC/SC call on the card handle runs under a deadline: vpcd has no timeout, so a card
  that stops answering would otherwise block ``transmit()`` for ever. The call runs in the
  caller's thread (no hand-off per APDU, so the harness adds next to nothing to the wire
  time); one long-lived watchdog thread for all transports ends a call past its deadline by
  shutting down the context's socket to pcscd, which makes the blocked call return. A missed
  deadline raises CardUnresponsive and leaves the transport *broken* until the exchange still
  pending in pcscd returns and ``reset()`` succeeds on a fresh context;
- every exchange is timed around ``SCardTransmit`` itself (``wire_s``, ``last_wire``): the
  least disturbed clock a latency measurement can have;
- every PC/SC error becomes a BenchError with a readable message; no pyscard exception or
  traceback escapes.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from conformance.defaults import APDU_TIMEOUT_S
from conformance.transport.base import BenchError, CardUnresponsive

try:  # pyscard needs libpcsclite at import time; report its absence as a bench fault
    from smartcard import scard as _scard
except Exception as _exc:  # pragma: no cover - depends on the machine
    _scard = None
    _IMPORT_ERROR: Exception | None = _exc
else:
    _IMPORT_ERROR = None

__all__ = ["PcscTransport", "describe_error", "list_readers", "resolve_reader", "wait_for_card"]

_monotonic = time.monotonic  # one lookup less per exchange

# PC/SC return codes (pcsc-lite values; pyscard may hand them back signed or unsigned).
SCARD_S_SUCCESS = 0x00000000
SCARD_E_INVALID_HANDLE = 0x80100003
SCARD_E_INSUFFICIENT_BUFFER = 0x80100008
SCARD_E_UNKNOWN_READER = 0x80100009
SCARD_E_TIMEOUT = 0x8010000A
SCARD_E_SHARING_VIOLATION = 0x8010000B
SCARD_E_NO_SMARTCARD = 0x8010000C
SCARD_E_PROTO_MISMATCH = 0x8010000F
SCARD_E_NOT_READY = 0x80100010
SCARD_F_COMM_ERROR = 0x80100013
SCARD_E_NOT_TRANSACTED = 0x80100016
SCARD_E_READER_UNAVAILABLE = 0x80100017
SCARD_E_NO_SERVICE = 0x8010001D
SCARD_E_SERVICE_STOPPED = 0x8010001E
SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
SCARD_W_UNSUPPORTED_CARD = 0x80100065
SCARD_W_UNRESPONSIVE_CARD = 0x80100066
SCARD_W_UNPOWERED_CARD = 0x80100067
SCARD_W_RESET_CARD = 0x80100068
SCARD_W_REMOVED_CARD = 0x80100069

_MESSAGES: dict[int, str] = {
    SCARD_E_INVALID_HANDLE: "invalid card handle (the connection was lost)",
    SCARD_E_INSUFFICIENT_BUFFER: "response longer than the receive buffer",
    SCARD_E_UNKNOWN_READER: "unknown reader",
    SCARD_E_TIMEOUT: "timed out",
    SCARD_E_SHARING_VIOLATION: "sharing violation: another connection holds the reader",
    SCARD_E_NO_SMARTCARD: "no smart card in the reader",
    SCARD_E_PROTO_MISMATCH: "neither T=0 nor T=1 could be negotiated with the card",
    SCARD_E_NOT_READY: "reader or card not ready",
    SCARD_F_COMM_ERROR: "communication error with pcscd",
    SCARD_E_NOT_TRANSACTED: "transaction failed (the card or reader dropped the exchange)",
    SCARD_E_READER_UNAVAILABLE: "reader unavailable (unplugged or its driver failed)",
    SCARD_E_NO_SERVICE: "no PC/SC service: pcscd is not running",
    SCARD_E_SERVICE_STOPPED: "pcscd stopped",
    SCARD_E_NO_READERS_AVAILABLE: "no readers available",
    SCARD_W_UNSUPPORTED_CARD: "the card's ATR is not supported by the reader",
    SCARD_W_UNRESPONSIVE_CARD: "the card does not respond to reset (mute card)",
    SCARD_W_UNPOWERED_CARD: "the card is unpowered",
    SCARD_W_RESET_CARD: "the card was reset by another application",
    SCARD_W_REMOVED_CARD: "the card was removed",
}

_PCSCD_HINT = (
    "start pcscd (`scripts/with-pcscd.sh CMD…`, or `pcscd --foreground &` as root) and check "
    "/run/pcscd/pcscd.comm"
)

_CARD_GONE = frozenset(
    {
        SCARD_W_REMOVED_CARD,
        SCARD_E_NO_SMARTCARD,
        SCARD_E_NOT_TRANSACTED,
        SCARD_W_UNPOWERED_CARD,
        SCARD_W_UNRESPONSIVE_CARD,
        SCARD_E_NOT_READY,
    }
)
_HANDLE_DEAD = frozenset(
    {
        SCARD_E_INVALID_HANDLE,
        SCARD_E_READER_UNAVAILABLE,
        SCARD_E_NO_SERVICE,
        SCARD_E_SERVICE_STOPPED,
        SCARD_F_COMM_ERROR,
    }
)

_PROTOCOL_NAMES = {0x0001: "T=0", 0x0002: "T=1"}  # SCARD_PROTOCOL_T0 / _T1


def _code(hresult: int) -> int:
    return int(hresult) & 0xFFFFFFFF


def describe_error(hresult: int) -> str:
    """A short English description of a PC/SC return code, with the code in hex."""
    code = _code(hresult)
    text = _MESSAGES.get(code)
    if text is None and _scard is not None:
        try:
            text = _scard.SCardGetErrorMessage(hresult)
        except Exception:
            text = None
    return f"{text or 'PC/SC error'} (0x{code:08X})"


def _pyscard() -> Any:
    if _scard is None:
        raise BenchError(
            f"pyscard is not usable ({_IMPORT_ERROR}); install libpcsclite and pyscard "
            "(scripts/setup.sh)"
        )
    return _scard


def _establish() -> int:
    with _ESTABLISH_LOCK:
        return _establish_unlocked()


def _release(context: int) -> None:
    with contextlib.suppress(Exception):
        _pyscard().SCardReleaseContext(context)


def _list(context: int) -> list[str]:
    sc = _pyscard()
    try:
        hresult, readers = sc.SCardListReaders(context, [])
    except Exception as exc:
        raise BenchError(f"cannot list PC/SC readers: {exc}") from exc
    code = _code(hresult)
    if code == SCARD_E_NO_READERS_AVAILABLE:
        return []
    if code != SCARD_S_SUCCESS:
        raise BenchError(f"cannot list PC/SC readers: {describe_error(code)}")
    return list(readers or [])


def list_readers() -> list[str]:
    """The names of the PC/SC readers pcscd knows now (BenchError when pcscd is not running)."""
    context = _establish()
    try:
        return _list(context)
    finally:
        _release(context)


def _quote_all(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def resolve_reader(spec: str, readers: list[str]) -> str:
    """Pick one reader from ``readers``: exact name, else regex (fullmatch, then search)."""
    if not readers:
        raise BenchError(
            f"no PC/SC readers at all (pcscd is running but lists none), so {spec!r} cannot "
            "be opened; is a reader plugged in, or vsmartcard-vpcd installed "
            "(/etc/reader.conf.d/vpcd)?"
        )
    if spec in readers:
        return spec
    try:
        pattern = re.compile(spec)
    except re.error:
        pattern = None
    if pattern is not None:
        for how, matcher in (("fully matches", pattern.fullmatch), ("matches", pattern.search)):
            found = [r for r in readers if matcher(r)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise BenchError(
                    f"reader {spec!r} is ambiguous: it {how} {len(found)} readers "
                    f"({_quote_all(found)}); give the exact name. Readers present: "
                    f"{_quote_all(readers)}"
                )
    raise BenchError(
        f"no reader named or matching {spec!r}. Readers present: {_quote_all(readers)}"
    )


def _wait_state(context: int, reader: str, present: bool, timeout_s: float) -> bytes:
    """Block until ``reader`` shows a usable card (present) or no card; return the ATR seen."""
    sc = _pyscard()
    deadline = time.monotonic() + max(0.0, timeout_s)
    current = sc.SCARD_STATE_UNAWARE
    event = 0
    while True:
        remaining = deadline - time.monotonic()
        # short slices keep Ctrl-C responsive (the GIL is released, signals are not)
        slice_ms = int(min(max(remaining, 0.0), 0.5) * 1000)
        try:
            hresult, states = sc.SCardGetStatusChange(context, slice_ms, [(reader, current)])
        except Exception as exc:
            raise BenchError(f"cannot read the state of reader {reader!r}: {exc}") from exc
        code = _code(hresult)
        if code == SCARD_S_SUCCESS:
            _, event, atr = states[0]
            if event & sc.SCARD_STATE_UNKNOWN:
                raise BenchError(f"reader {reader!r} is unknown to pcscd (was it removed?)")
            usable = (
                bool(event & sc.SCARD_STATE_PRESENT) and not event & sc.SCARD_STATE_MUTE
                if present
                else bool(event & sc.SCARD_STATE_EMPTY)
            )
            if usable:
                return bytes(atr) if present else b""
            current = event & ~sc.SCARD_STATE_CHANGED
        elif code != SCARD_E_TIMEOUT:
            raise BenchError(f"cannot read the state of reader {reader!r}: {describe_error(code)}")
        if time.monotonic() >= deadline:
            break
    if present:
        if event & sc.SCARD_STATE_MUTE:
            why = "a card is present but mute (it gave no ATR)"
        elif event & sc.SCARD_STATE_UNAVAILABLE:
            why = "the reader is unavailable"
        else:
            why = "no card is present"
        raise BenchError(
            f"no usable card in reader {reader!r} after {timeout_s:g} s: {why} "
            "(pcscd polls card presence about every 400 ms)"
        )
    raise BenchError(f"the card in reader {reader!r} was not removed within {timeout_s:g} s")


def wait_for_card(reader: str, present: bool = True, timeout_s: float = 5.0) -> bytes:
    """Wait until ``reader`` (name or pattern) shows a usable card, or none when present=False.

    Returns the ATR pcscd reports (b"" when waiting for removal); BenchError on timeout.
    """
    context = _establish()
    try:
        name = resolve_reader(reader, _list(context))
        return _wait_state(context, name, present, timeout_s)
    finally:
        _release(context)


# -- deadlines: one watchdog thread, the calls in the caller's thread ---------------------

_ESTABLISH_LOCK = threading.Lock()  # one context at a time, so its socket can be told apart


def _pcscd_sockets() -> set[int]:
    """The file descriptors of this process's sockets connected to pcscd."""
    found: set[int] = set()
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            with socket.socket(fileno=os.dup(fd)) as sock:
                if sock.family == socket.AF_UNIX and sock.getpeername() == _PCSCD_PATH:
                    found.add(fd)
        except OSError:
            continue
    return found


_PCSCD_PATH = "/run/pcscd/pcscd.comm"


def _establish_tracked() -> tuple[int, int]:
    """A new PC/SC context and the socket pcsc-lite opened for it (the watchdog's lever)."""
    with _ESTABLISH_LOCK:
        before = _pcscd_sockets()
        context = _establish_unlocked()
        new = _pcscd_sockets() - before
    if len(new) != 1:
        _release(context)
        raise BenchError(
            f"cannot tell which connection to pcscd ({_PCSCD_PATH}) the new PC/SC context "
            f"uses ({len(new)} new sockets); the APDU deadline needs it (Linux /proc/self/fd)"
        )
    return context, new.pop()


def _establish_unlocked() -> int:
    sc = _pyscard()
    try:
        hresult, context = sc.SCardEstablishContext(sc.SCARD_SCOPE_USER)
    except Exception as exc:
        raise BenchError(f"cannot reach pcscd: {exc}; {_PCSCD_HINT}") from exc
    code = _code(hresult)
    if code != SCARD_S_SUCCESS:
        if code in (SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED, SCARD_F_COMM_ERROR):
            raise BenchError(f"no pcscd running ({describe_error(code)}); {_PCSCD_HINT}")
        raise BenchError(f"cannot open a PC/SC context: {describe_error(code)}")
    return context


class _Watchdog:
    """One daemon thread for every transport of the process: it ends a PC/SC call that runs
    past its deadline by shutting down its context's socket (the call then returns an error).

    Arming costs the caller two attribute stores and no wake-up: the watchdog looks every
    ``PERIOD_S``, so a deadline fires at most that late.
    """

    PERIOD_S = 0.05

    def __init__(self) -> None:
        self._watched: weakref.WeakSet[PcscTransport] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, transport: PcscTransport) -> None:
        with self._lock:
            self._watched.add(transport)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pcsc-watchdog",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.PERIOD_S)
            now = time.monotonic()
            with self._lock:
                watched = list(self._watched)
            for transport in watched:
                deadline = transport._armed
                if deadline is not None and now > deadline:
                    transport._expire(deadline)


_WATCHDOG = _Watchdog()


class PcscTransport:
    """A Transport over one PC/SC reader, chosen by name or regular expression.

    ``timeout_s`` bounds every exchange with the card (transmit, reset, connect);
    ``card_wait_s`` bounds the wait for a card to show up before connecting or resetting.
    ``wire_s`` sums the time spent inside ``SCardTransmit`` / ``SCardReconnect`` and
    ``last_wire`` holds the (start, end) monotonic times of the latest one.

    A transport belongs to the one thread that drives its reader (one worker per reader):
    it takes no lock of its own, which would cost every exchange; pcsc-lite itself
    serializes the calls made on one context.
    """

    def __init__(
        self,
        reader: str,
        *,
        timeout_s: float = APDU_TIMEOUT_S,
        exclusive: bool = True,
        card_wait_s: float = 5.0,
    ) -> None:
        sc = _pyscard()
        self._timeout_s = float(timeout_s)
        self._card_wait_s = float(card_wait_s)
        self._exclusive = exclusive
        self._share = sc.SCARD_SHARE_EXCLUSIVE if exclusive else sc.SCARD_SHARE_SHARED
        self._hcard: int | None = None
        self._protocol_id = 0
        self._atr = b""
        self._closed = False
        self._broken: str | None = None
        self._stuck: str | None = None  # the call a deadline abandoned, still in pcscd
        self._armed: float | None = None  # the deadline of the call in progress
        self._expired: float | None = None  # the deadline the watchdog acted on
        self._fd: int | None = None
        self.wire_s = 0.0
        self.last_wire = (0.0, 0.0)

        self._context, self._fd = _establish_tracked()
        try:
            self._reader = resolve_reader(reader, _list(self._context))
        except BaseException:
            self._closed = True
            self._release_context()
            raise
        _WATCHDOG.watch(self)
        try:
            self._guarded("connect", self._card_wait_s + self._timeout_s, self._connect_blocking)
        except BaseException:
            self.close()
            raise

    # -- Transport -------------------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def name(self) -> str:
        return self._reader

    @property
    def reader(self) -> str:
        return self._reader

    @property
    def protocol(self) -> str:
        """The protocol PC/SC negotiated with the card: "T=0" or "T=1"."""
        return _PROTOCOL_NAMES.get(self._protocol_id, f"0x{self._protocol_id:X}")

    @property
    def pyscard_handle(self) -> tuple[int, int]:
        """(card handle, protocol) of this connection as pyscard takes them: for a bare
        pyscard loop over the very same connection (bench/harness.py), nothing else."""
        if self._hcard is None:
            raise BenchError(f"transport on reader {self._reader!r} is not connected")
        return self._hcard, self._protocol_id

    @property
    def exclusive(self) -> bool:
        return self._exclusive

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    @property
    def broken(self) -> bool:
        """True after a missed deadline, until a reset() succeeds."""
        return self._broken is not None

    def transmit(self, apdu: bytes) -> bytes:
        """Send one APDU: the hot path, kept to the PC/SC call and a deadline around it.

        Every test on the way is one branch taken only when something is wrong: the time
        the caller spends between two exchanges is time the PC/SC stack waits."""
        if self._hcard is None or self._broken is not None:  # closed: no handle either
            self._check_usable()
        t0 = _monotonic()
        self._armed = t0 + self._timeout_s
        try:
            hresult, response = _scard.SCardTransmit(self._hcard, self._protocol_id, list(apdu))
        finally:
            self._armed = None
            t1 = _monotonic()
            self.last_wire = (t0, t1)
            self.wire_s += t1 - t0
        if hresult or self._expired is not None or len(response) < 2:
            raise self._transmit_failure(hresult, apdu, response)
        return bytes(response)

    def _transmit_failure(self, hresult: int, apdu: bytes, response: list[int]) -> BenchError:
        """What went wrong with an exchange, as the error to raise (a missed deadline first)."""
        if self._expired is not None:
            return self._missed("transmit", self._timeout_s)
        if hresult != SCARD_S_SUCCESS:
            return self._error("transmit", _code(hresult))
        return self._short_response(bytes(apdu), bytes(response))

    def reset(self) -> bytes:
        """Reset the card (SCardReconnect with SCARD_RESET_CARD) and return the new ATR.

        Also the way back after a card was removed and inserted again, or after a missed
        deadline once the stuck exchange has returned in pcscd (on a fresh context).
        """
        if self._closed:
            raise BenchError(f"transport on reader {self._reader!r} is closed")
        if self._broken is not None:
            self._renew_context()
        return self._guarded("reset", self._card_wait_s + self._timeout_s,
                             self._reset_blocking)

    def cold_reset(self) -> bytes:
        """Power the card off and on (SCardReconnect with SCARD_UNPOWER_CARD); the new ATR."""
        if self._closed or self._broken is not None or self._hcard is None:
            return self.reset()
        return self._guarded("reset", self._card_wait_s + self._timeout_s,
                             lambda: self._reset_blocking(cold=True))

    def close(self) -> None:
        """Disconnect and release the context; never blocks for long, even when broken."""
        if self._closed:
            return
        self._closed = True
        if self._broken is None:
            with contextlib.suppress(BenchError):
                self._guarded("close", min(self._timeout_s, 5.0), self._disconnect_quietly)
        self._hcard = None
        self._release_context()

    def __del__(self) -> None:
        # a forgotten transport must not keep an exclusive hold on the reader
        with contextlib.suppress(Exception):
            if not self._closed:
                self.close()

    def __enter__(self) -> PcscTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("broken" if self._broken else "open")
        return f"PcscTransport({self._reader!r}, {self.protocol}, {state})"

    # -- deadline machinery ----------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise BenchError(f"transport on reader {self._reader!r} is closed")
        if self._broken is not None:
            raise BenchError(
                f"transport on reader {self._reader!r} is unusable: {self._broken}; "
                "reset() once the card is back, or close and reopen it"
            )
        if self._hcard is None:
            raise BenchError(f"no card connected in reader {self._reader!r}; reset() first")

    def _expire(self, deadline: float) -> None:
        """Watchdog thread: the call armed with ``deadline`` is late; make it return."""
        if self._armed != deadline or self._fd is None:
            return  # it returned meanwhile
        self._expired = deadline
        with contextlib.suppress(OSError), socket.socket(fileno=os.dup(self._fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)

    def _missed(self, what: str, timeout_s: float) -> CardUnresponsive:
        """The transport after a deadline fired: broken, its context dead."""
        self._broken = f"the card did not answer a {what} within {timeout_s:g} s"
        self._stuck = what
        return CardUnresponsive(
            f"card did not answer within {timeout_s:g} s ({what} on reader "
            f"{self._reader!r}); the transport is now unusable until the exchange returns"
        )

    def _guarded(self, what: str, timeout_s: float, fn: Callable[[], Any]) -> Any:
        """Run one PC/SC call (or a few) in this thread under the watchdog's deadline."""
        self._armed = time.monotonic() + timeout_s
        try:
            result = fn()
        except BenchError as exc:
            if self._expired is not None:
                raise self._missed(what, timeout_s) from exc
            raise
        except Exception as exc:
            if self._expired is not None:
                raise self._missed(what, timeout_s) from exc
            raise BenchError(
                f"PC/SC {what} on reader {self._reader!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            self._armed = None
        if self._expired is not None:
            raise self._missed(what, timeout_s)
        return result

    def _release_context(self) -> None:
        _release(self._context)
        self._fd = None

    def _renew_context(self) -> None:
        """After a missed deadline: a fresh context (the old one's socket was shut down)."""
        self._hcard = None
        self._release_context()
        self._context, self._fd = _establish_tracked()
        self._expired = None

    # -- blocking PC/SC calls (under _guarded) ------------------------------------------------

    def _short_response(self, command: bytes, data: bytes) -> BenchError:
        if not data:
            # what vpcd reports when the card's connection closes mid-exchange
            return BenchError(
                f"reader {self._reader!r} returned an empty response to "
                f"{command[:4].hex().upper()}…: the card left or dropped the exchange; "
                "reset() once a card is back"
            )
        return BenchError(
            f"reader {self._reader!r} returned {data.hex().upper()} to "
            f"{command[:4].hex().upper()}…: a response APDU needs at least SW1 SW2"
        )

    def _error(self, what: str, code: int) -> BenchError:
        reader = self._reader
        text = describe_error(code)
        if code == SCARD_W_REMOVED_CARD:
            msg = (
                f"card was removed from reader {reader!r} during {what} ({text}); "
                "reset() reconnects once a card is back"
            )
        elif code == SCARD_E_NOT_TRANSACTED:
            msg = (
                f"transaction failed on reader {reader!r} during {what} ({text}): the card "
                "or reader dropped the exchange; reset() to recover"
            )
        elif code == SCARD_E_NO_SMARTCARD:
            msg = f"no smart card in reader {reader!r} ({text})"
        elif code == SCARD_E_SHARING_VIOLATION and self._stuck is not None:
            msg = (
                f"cannot reset reader {reader!r}: an earlier {self._stuck} is still blocked "
                f"in pcscd ({self._broken}); remove the card or restart the reader driver"
            )
        elif code == SCARD_E_SHARING_VIOLATION:
            msg = (
                f"reader {reader!r} is in use by another connection ({text}); the suite "
                "needs exclusive access, one process per reader"
            )
        elif code in (SCARD_E_READER_UNAVAILABLE, SCARD_E_UNKNOWN_READER):
            msg = f"reader {reader!r} is unavailable during {what} ({text})"
        elif code in (SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED, SCARD_F_COMM_ERROR):
            msg = f"lost pcscd during {what} on reader {reader!r} ({text}); {_PCSCD_HINT}"
        elif code == SCARD_W_RESET_CARD:
            msg = (
                f"the card in reader {reader!r} was reset by another application ({text}); "
                "reset() to resynchronise"
            )
        else:
            msg = f"PC/SC {what} on reader {reader!r} failed: {text}"
        return BenchError(msg)

    def _connect_blocking(self) -> None:
        sc = _pyscard()
        _wait_state(self._context, self._reader, True, self._card_wait_s)
        hresult, hcard, protocol = sc.SCardConnect(
            self._context, self._reader, self._share, sc.SCARD_PROTOCOL_T0 | sc.SCARD_PROTOCOL_T1
        )
        code = _code(hresult)
        if code != SCARD_S_SUCCESS:
            raise self._error("connect", code)
        self._hcard = hcard
        self._protocol_id = int(protocol)
        self._atr = self._status_atr()
        self._broken = self._stuck = None

    def _status_atr(self) -> bytes:
        sc = _pyscard()
        hresult, _name, _state, _protocol, atr = sc.SCardStatus(self._hcard)
        code = _code(hresult)
        if code != SCARD_S_SUCCESS:
            raise self._error("status", code)
        return bytes(atr)

    def _reset_blocking(self, cold: bool = False) -> bytes:
        sc = _pyscard()
        if self._hcard is None:
            self._connect_blocking()
            return self._atr
        how = sc.SCARD_UNPOWER_CARD if cold else sc.SCARD_RESET_CARD

        def reconnect() -> tuple[int, int]:
            t0 = time.monotonic()
            hresult, protocol = sc.SCardReconnect(
                self._hcard,
                self._share,
                sc.SCARD_PROTOCOL_T0 | sc.SCARD_PROTOCOL_T1,
                how,
            )
            t1 = time.monotonic()
            self.last_wire = (t0, t1)
            self.wire_s += t1 - t0
            return _code(hresult), int(protocol or 0)

        code, protocol = reconnect()
        if code in _CARD_GONE:
            # the card was removed (or dropped an exchange): wait for one to be back, retry
            _wait_state(self._context, self._reader, True, self._card_wait_s)
            code, protocol = reconnect()
        if code in _HANDLE_DEAD:
            # the handle (or pcscd itself) died: start over with a fresh context and connection
            self._disconnect_quietly()
            self._release_context()
            self._context, self._fd = _establish_tracked()
            self._connect_blocking()
            return self._atr
        if code != SCARD_S_SUCCESS:
            raise self._error("reset", code)
        self._protocol_id = protocol
        self._atr = self._status_atr()
        return self._atr

    def _disconnect_quietly(self) -> None:
        if self._hcard is not None:
            # reset on the way out, so the next session finds a freshly powered card
            with contextlib.suppress(Exception):
                _pyscard().SCardDisconnect(self._hcard, _pyscard().SCARD_RESET_CARD)
            self._hcard = None
