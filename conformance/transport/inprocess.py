"""The in-process transport: APDUs go straight to any ApduResponder (the virtual card, a double).

No reader, no driver, no wire: the fastest way to run the suite against the reference card.
It still behaves like a transport: it copies what crosses it, refuses use after close(), and
turns a responder that raises into a BenchError (the harness failed, not the card). Like the
PC/SC transport it times every exchange around the responder's own call (``wire_s``,
``last_wire``), for measurements.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from conformance.transport.base import ApduResponder, BenchError


class InProcessTransport:
    """A Transport over an ApduResponder in this process; the ATR comes from its reset()."""

    def __init__(self, responder: ApduResponder, name: str = "virtual") -> None:
        self._responder = responder
        self._name = name
        self._closed = False
        self.wire_s = 0.0
        self.last_wire = (0.0, 0.0)
        self._atr = self._call("reset", responder.reset)

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def name(self) -> str:
        return self._name

    @property
    def responder(self) -> ApduResponder:
        """The object answering the APDUs (for the suite's own tests; cases never need it)."""
        return self._responder

    def transmit(self, apdu: bytes) -> bytes:
        self._check_open()
        command = bytes(apdu)
        return self._call("process", lambda: self._responder.process(command))

    def reset(self) -> bytes:
        self._check_open()
        self._atr = self._call("reset", self._responder.reset)
        return self._atr

    def cold_reset(self) -> bytes:
        """Power the card off and on: for a responder the same as reset()."""
        return self.reset()

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> InProcessTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"InProcessTransport({self._name!r}, {state})"

    def _check_open(self) -> None:
        if self._closed:
            raise BenchError(f"transport {self._name!r} is closed")

    def _call(self, what: str, fn: Callable[[], object]) -> bytes:
        t0 = time.monotonic()
        try:
            result = fn()
        except BenchError:
            raise
        except Exception as exc:  # a crashing responder is a harness fault, not a verdict
            raise BenchError(
                f"in-process card {self._name!r} failed in {what}(): {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(result, bytes | bytearray | memoryview):
            raise BenchError(
                f"in-process card {self._name!r}: {what}() returned "
                f"{type(result).__name__}, expected bytes"
            )
        t1 = time.monotonic()
        self.last_wire = (t0, t1)
        self.wire_s += t1 - t0
        result = bytes(result)
        if what == "process" and len(result) < 2:
            raise BenchError(
                f"in-process card {self._name!r} answered {result.hex().upper() or 'nothing'}: "
                "a response APDU needs at least SW1 SW2"
            )
        return result
