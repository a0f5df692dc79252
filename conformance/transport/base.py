"""The Transport protocol every card connection implements, and the bench errors.

A bench error means the harness could not talk to the card (reader gone, card removed,
deadline passed); it is never a verdict on the card itself.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class BenchError(Exception):
    """The bench (reader, driver, connection) failed; no verdict on the card is possible."""


class CaseTimeout(BenchError):
    """A case ran past its --case-timeout: stopped before its next exchange (the card saw
    every command whole) or, as a last resort, wherever it was (`mid_exchange`)."""

    def __init__(self, seconds: float, *, mid_exchange: bool = False):
        where = "wherever it was" if mid_exchange else "before its next exchange"
        super().__init__(f"case timeout after {seconds:g} s (--case-timeout): stopped {where}")
        self.mid_exchange = mid_exchange


class CardUnresponsive(BenchError):
    """The card did not answer an exchange within its deadline."""


@runtime_checkable
class Transport(Protocol):
    """Sends raw command APDUs and returns raw response APDUs (data ‖ SW1 SW2)."""

    @property
    def atr(self) -> bytes:
        """The answer to reset of the current card session."""
        ...

    @property
    def name(self) -> str:
        """A human-readable name of the reader or card behind this transport."""
        ...

    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU and return the response (raises BenchError on bench faults)."""
        ...

    def reset(self) -> bytes:
        """Reset the card (cold or warm, as the transport can) and return the new ATR."""
        ...

    def close(self) -> None:
        """Release the reader or card."""
        ...


@runtime_checkable
class ApduResponder(Protocol):
    """Anything that answers APDUs like a card: the virtual card, or a test double."""

    def reset(self) -> bytes:
        """Power the card up (again), clear its volatile state, and return its ATR."""
        ...

    def process(self, apdu: bytes) -> bytes:
        """Answer one raw command APDU with a raw response APDU (data ‖ SW1 SW2)."""
        ...
