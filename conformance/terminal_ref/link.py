"""The terminal's T=0 handling (TERMINAL.md: GET RESPONSE after 61xx, the corrected Le after
6Cxx, also when 6Cxx answers a GET RESPONSE), as a Transport over the reader.

The suite's :class:`~conformance.transport.layers.T0Layer` resends only short case-2
commands and hands back a 6Cxx that answers GET RESPONSE; a terminal must go on in both, so
the terminal has its own loop. It builds GET RESPONSE from the profile (:class:`T0Rules`).
"""

from __future__ import annotations

from conformance.apdu import ApduFormatError, CommandAPDU
from conformance.iso7816 import LE_WHOLE
from conformance.transport.base import BenchError, Transport
from conformance.transport.layers import T0Rules

__all__ = ["TerminalLink"]

MAX_ROUNDS = 32
"""GET RESPONSE / resend rounds for one command before the terminal gives up on the card."""


class TerminalLink:
    """A Transport that turns 61xx and 6Cxx into one logical answer per command.

    ``skip_get_response`` (the fault of that name) returns a 61xx as the final answer.
    """

    def __init__(self, inner: Transport, rules: T0Rules, *, skip_get_response: bool = False):
        self.inner = inner
        self.rules = rules
        self.skip_get_response = skip_get_response

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    @property
    def name(self) -> str:
        return self.inner.name

    def reset(self) -> bytes:
        return self.inner.reset()

    def close(self) -> None:
        self.inner.close()

    def transmit(self, apdu: bytes) -> bytes:
        command = bytes(apdu)
        data = b""
        for _ in range(MAX_ROUNDS):
            response = bytes(self.inner.transmit(command))
            sw1, sw2 = response[-2], response[-1]
            if sw1 == self.rules.wrong_le and len(response) == 2:
                resend = _with_le(command, sw2 or LE_WHOLE)
                if resend is None:  # no Le to correct: the status word is the answer
                    return data + response
                command = resend
                continue
            if sw1 == self.rules.bytes_available and not self.skip_get_response:
                data += response[:-2]
                command = self.rules.get_response(sw2)
                continue
            return data + response
        raise BenchError(f"the card still answers {response[-2:].hex().upper()} after "
                         f"{MAX_ROUNDS} GET RESPONSE or resend rounds")


def _with_le(command: bytes, le: int) -> bytes | None:
    """The command again with Le = ``le``, or None when it carries no Le (case 1 or 3)."""
    try:
        parsed = CommandAPDU.parse(command)
    except ApduFormatError:
        return None
    if parsed.le is None:
        return None
    return parsed.with_le(le).to_bytes()
