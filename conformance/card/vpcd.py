"""The vpcd bridge: puts any ApduResponder (the virtual card, a test double) in a PC/SC reader.

vsmartcard's vpcd driver (loaded by pcscd) shows the readers ``Virtual PCD 00 00`` and
``Virtual PCD 00 01`` and listens on TCP 35963 / 35964. The card side connects to that port;
while it stays connected the reader has a card. The wire format, both ways:
2-byte big-endian length, then the payload. A 1-byte payload from vpcd is a control code
(0 power off, 1 power on, 2 reset, 4 get ATR — only get ATR is answered, with the ATR); any
longer payload is a command APDU, answered with the response APDU.

Measured on this bench: vpcd writes each APDU in two pieces, so without TCP_NODELAY and a
TCP_QUICKACK before every read each APDU costs ~44 ms (delayed ACK) instead of ~0.2 ms.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

from conformance.defaults import VPCD_HOST, VPCD_PORT
from conformance.transport.base import ApduResponder, BenchError

__all__ = ["VPCD_HOST", "VPCD_PORT", "VpcdBridge", "vpcd_port", "vpcd_reader_name"]

log = logging.getLogger(__name__)


CTRL_POWER_OFF = 0
CTRL_POWER_ON = 1
CTRL_RESET = 2
CTRL_GET_ATR = 4

SW_NO_PRECISE_DIAGNOSIS = b"\x6f\x00"

# A conservative ATR for the moment before the responder has given one (T=1, no historicals).
_FALLBACK_ATR = bytes.fromhex("3B80800101")


def vpcd_reader_name(port: int = VPCD_PORT, slot_base: int = VPCD_PORT) -> str:
    """The reader name vpcd gives the card on ``port`` (35963 → "Virtual PCD 00 00").

    Each vpcd entry of /etc/reader.conf.d serves two ports (two slots) from its CHANNELID;
    the package's entry is named "Virtual PCD", the further ones scripts/setup.sh writes
    "Virtual PCD <offset>" (35965 → "Virtual PCD 2 00 00", 35966 → "Virtual PCD 2 00 01")."""
    offset = port - slot_base
    entry, slot = offset - offset % 2, offset % 2
    return f"Virtual PCD {f'{entry} ' if entry else ''}00 {slot:02d}"


def vpcd_port(reader: str, slot_base: int = VPCD_PORT, ports: int = 64) -> int | None:
    """The port whose card vpcd names ``reader`` (the inverse of :func:`vpcd_reader_name`,
    over the first ``ports`` ports), or None for a reader vpcd does not serve."""
    for port in range(slot_base, slot_base + ports):
        if vpcd_reader_name(port, slot_base) == reader:
            return port
    return None


class _Closed(Exception):
    """The vpcd connection ended (vpcd closed it, or stop() was called)."""


class VpcdBridge:
    """Serves one ApduResponder to vpcd over TCP; one bridge is one card in one reader.

    Typical use::

        bridge = VpcdBridge(card)          # port 35963 → reader "Virtual PCD 00 00"
        thread = bridge.run_in_thread()    # connects (BenchError if no vpcd), then serves
        ...
        bridge.stop()                      # the card leaves the reader

    A responder that raises is logged and answered with 6F00; the bridge keeps serving.
    """

    def __init__(
        self, responder: ApduResponder, host: str = VPCD_HOST, port: int = VPCD_PORT
    ) -> None:
        self.responder = responder
        self.host = host
        self.port = port
        self.apdu_count = 0
        self.errors: list[BaseException] = []
        self.powered = False
        # True when stop() cut vpcd off in the middle of an exchange. vpcd then drops the card
        # inside that exchange, and if a new card connects before pcscd's next presence poll
        # (~400 ms), pcscd never notices the swap and keeps showing the reader empty.
        self.dropped_exchange = False
        self._in_exchange = False
        self._atr: bytes | None = None
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def reader_name(self) -> str:
        """The PC/SC reader name this bridge's port shows up as (for the default ports)."""
        return vpcd_reader_name(self.port)

    @property
    def connected(self) -> bool:
        return self._sock is not None

    @property
    def atr(self) -> bytes:
        """The ATR vpcd gets on request: the responder's last reset() answer."""
        if self._atr is None:
            self._atr = self._reset_responder() or _FALLBACK_ATR
        return self._atr

    # -- connection -----------------------------------------------------------------------

    def connect(self, timeout_s: float = 2.0) -> None:
        """Connect to vpcd (retrying refusals until ``timeout_s``); BenchError if nobody listens."""
        if self._sock is not None:
            return
        self._stop.clear()
        self.dropped_exchange = False
        deadline = time.monotonic() + max(0.0, timeout_s)
        last: OSError | None = None
        while True:
            remaining = deadline - time.monotonic()
            try:
                sock = socket.create_connection((self.host, self.port), timeout=max(remaining, 0.2))
                break
            except OSError as exc:  # refused (nobody listens), unreachable, timed out
                last = exc
            if time.monotonic() >= deadline or self._stop.is_set():
                raise BenchError(
                    f"no vpcd listening on {self.address} — is pcscd running with "
                    f"vsmartcard-vpcd installed? ({type(last).__name__}: {last})"
                )
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _quickack(sock)
        with self._lock:
            self._sock = sock
        # have an ATR ready before vpcd's first presence poll asks for it
        self._atr = self._reset_responder() or self._atr or _FALLBACK_ATR
        log.debug("vpcd bridge connected to %s", self.address)

    # -- serving --------------------------------------------------------------------------

    def serve_once(self) -> bool:
        """Handle one message from vpcd; False when the connection has ended."""
        sock = self._sock
        if sock is None or self._stop.is_set():
            return False
        try:
            header = _recv_exact(sock, 2)
            self._in_exchange = True
            length = int.from_bytes(header, "big")
            payload = _recv_exact(sock, length) if length else b""
            if not payload:
                return True
            answer = self._control(payload[0]) if len(payload) == 1 else self._apdu(payload)
            if answer is None:
                return True
            sock.sendall(len(answer).to_bytes(2, "big") + answer)
        except (_Closed, OSError):
            return False
        finally:
            if not self._stop.is_set():
                self._in_exchange = False
        return True

    def serve_forever(self) -> None:
        """Serve until vpcd closes the connection or stop() is called; then close the socket."""
        with self._lock:
            served = self._sock  # close this connection only, never a later one
        try:
            while self.serve_once():
                pass
        finally:
            with self._lock:
                if self._sock is served:
                    self._sock = None
            if served is not None:
                with contextlib.suppress(OSError):
                    served.close()
            log.debug("vpcd bridge on %s stopped after %d APDUs", self.address, self.apdu_count)

    def run_in_thread(self, connect_timeout_s: float = 2.0) -> threading.Thread:
        """Connect (in the caller's thread, so errors raise here) and serve in a daemon thread."""
        self.connect(connect_timeout_s)
        thread = threading.Thread(
            target=self.serve_forever, name=f"vpcd-bridge:{self.port}", daemon=True
        )
        self._thread = thread
        thread.start()
        return thread

    def stop(self, join_timeout_s: float = 2.0) -> None:
        """Take the card out of the reader: end serving (from any thread) and close the socket.

        Joins the serving thread for up to ``join_timeout_s`` unless it is stuck inside the
        responder (then it ends by itself when the responder returns).
        """
        self._stop.set()
        with self._lock:
            sock = self._sock
        if sock is not None and self._in_exchange:
            self.dropped_exchange = True
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a recv() blocked in serve_once
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(join_timeout_s)
        if thread is None or not thread.is_alive():
            self._close_socket()

    def __enter__(self) -> VpcdBridge:
        self.run_in_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "connected" if self._sock is not None else "disconnected"
        return f"VpcdBridge({self.address}, {state}, {self.apdu_count} APDUs)"

    # -- message handling -----------------------------------------------------------------

    def _control(self, code: int) -> bytes | None:
        if code == CTRL_GET_ATR:
            return self.atr
        if code in (CTRL_POWER_ON, CTRL_RESET):
            self.powered = True
            atr = self._reset_responder()
            if atr:
                self._atr = atr
        elif code == CTRL_POWER_OFF:
            self.powered = False
        else:
            log.warning("vpcd sent unknown control code %d; ignored", code)
        return None

    def _apdu(self, command: bytes) -> bytes:
        self.apdu_count += 1
        try:
            response = self.responder.process(command)
            response = bytes(response)
            if not 2 <= len(response) <= 0xFFFF:
                raise ValueError(f"response of {len(response)} bytes cannot be a response APDU")
        except Exception as exc:
            self.errors.append(exc)
            log.error(
                "responder failed on APDU %s…: %s: %s; answered 6F00",
                command[:4].hex().upper(),
                type(exc).__name__,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return SW_NO_PRECISE_DIAGNOSIS
        return response

    def _reset_responder(self) -> bytes | None:
        try:
            atr = bytes(self.responder.reset())
            if not 2 <= len(atr) <= 33:
                raise ValueError(f"ATR of {len(atr)} bytes")
            return atr
        except Exception as exc:
            self.errors.append(exc)
            log.error("responder failed to reset: %s: %s", type(exc).__name__, exc)
            return None

    def _close_socket(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


def _quickack(sock: socket.socket) -> None:
    # Linux clears TCP_QUICKACK after a while, so it is set again before every read.
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        _quickack(sock)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise _Closed
        buf += chunk
    return bytes(buf)
