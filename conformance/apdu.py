"""Command and response APDUs (ISO/IEC 7816-3/-4): the one encoder and parser of the suite.

A conformance suite must be able to say exactly which bytes crossed the wire. So: APDUs are
immutable values that encode and parse every ISO case (1, 2S/3S/4S, 2E/3E/4E) and refuse
anything ambiguous; :func:`split_command` locates the data field of raw bytes for the layers
that must also carry malformed commands (the redactor). What a status word means is ISO's
(:mod:`conformance.iso7816`) or the profile's, never this module's.

This module knows nothing of transports, files or keys.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from conformance.iso7816 import LC_MAX_SHORT, LE_WHOLE, SW_SUCCESS, describe_sw
from conformance.messages import Msg, msg

__all__ = [
    "ApduError",
    "ApduFormatError",
    "CommandAPDU",
    "ResponseAPDU",
    "split_command",
    "sw_hex",
]

SHORT_MAX_LC = LC_MAX_SHORT
SHORT_MAX_LE = LE_WHOLE
EXTENDED_MAX_LC = 0xFFFF
EXTENDED_MAX_LE = 0x10000


class ApduFormatError(ValueError):
    """Bytes (or field values) that do not form a valid APDU; the message says why."""


def _spaced_hex(raw: bytes) -> str:
    return " ".join(f"{b:02X}" for b in raw)


def _check_byte(name: str, value: int) -> None:
    if not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise ApduFormatError(f"{name} must be a byte 0..255, got {value!r}")


# --------------------------------------------------------------------------- command APDU


@dataclass(frozen=True)
class CommandAPDU:
    """A command APDU.

    ``le`` is the number of bytes expected, not its encoding: ``None`` means no Le field,
    1..256 for a short APDU (256 is sent as ``00``), 1..65536 for an extended one (65536 is
    sent as ``00 00``). ``extended`` picks the extended length encoding; it has no meaning for
    case 1 (no Lc, no Le) and is then stored as False, so parse(to_bytes(x)) == x always holds.
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            _check_byte(name.upper(), getattr(self, name))
        if not isinstance(self.data, bytes | bytearray | memoryview):
            raise ApduFormatError(f"data must be bytes, got {type(self.data).__name__}")
        object.__setattr__(self, "data", bytes(self.data))
        object.__setattr__(self, "extended", bool(self.extended))
        if not self.data and self.le is None:
            object.__setattr__(self, "extended", False)
        max_lc = EXTENDED_MAX_LC if self.extended else SHORT_MAX_LC
        max_le = EXTENDED_MAX_LE if self.extended else SHORT_MAX_LE
        kind = "an extended" if self.extended else "a short"
        if len(self.data) > max_lc:
            raise ApduFormatError(
                f"{len(self.data)} data bytes do not fit {kind} APDU (at most {max_lc})"
            )
        if self.le is not None and (
            not isinstance(self.le, int) or isinstance(self.le, bool) or not 1 <= self.le <= max_le
        ):
            raise ApduFormatError(
                f"Le must be None or 1..{max_le} for {kind} APDU, got {self.le!r}"
                " (Le = 00 on the wire is written le=256, or 65536 extended)"
            )

    @property
    def case(self) -> int:
        """ISO/IEC 7816-3 case: 1 no data no Le, 2 Le only, 3 data only, 4 both."""
        if self.data:
            return 4 if self.le is not None else 3
        return 2 if self.le is not None else 1

    def header(self) -> bytes:
        """CLA INS P1 P2."""
        return bytes([self.cla, self.ins, self.p1, self.p2])

    def to_bytes(self) -> bytes:
        """The APDU as sent on the wire."""
        out = bytearray(self.header())
        if self.extended:
            if self.data:
                out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
                if self.le is not None:
                    out += (self.le % EXTENDED_MAX_LE).to_bytes(2, "big")
            elif self.le is not None:
                out += b"\x00" + (self.le % EXTENDED_MAX_LE).to_bytes(2, "big")
        else:
            if self.data:
                out += bytes([len(self.data)]) + self.data
            if self.le is not None:
                out.append(self.le % SHORT_MAX_LE)
        return bytes(out)

    __bytes__ = to_bytes

    def hex(self) -> str:
        """Upper-case hex, one space between bytes: ``00 A4 00 00 02 DD F1``."""
        return _spaced_hex(self.to_bytes())

    def __str__(self) -> str:
        return self.hex()

    def with_le(self, le: int | None) -> CommandAPDU:
        """The same command with another Le (e.g. resending after ``6Cxx``)."""
        return replace(self, le=le)

    @classmethod
    def parse(cls, raw: bytes) -> CommandAPDU:
        """Decode any of cases 1, 2S, 3S, 4S, 2E, 3E, 4E; ApduFormatError when inconsistent."""
        raw = bytes(raw)
        n = len(raw)
        if n < 4:
            raise ApduFormatError(f"a command APDU has at least 4 bytes, got {n}")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:  # case 1
            return cls(cla, ins, p1, p2)
        if len(body) == 1:  # case 2S
            return cls(cla, ins, p1, p2, le=body[0] or SHORT_MAX_LE)
        if body[0] != 0:  # case 3S / 4S
            lc = body[0]
            if len(body) == 1 + lc:
                return cls(cla, ins, p1, p2, data=body[1:])
            if len(body) == 2 + lc:
                return cls(cla, ins, p1, p2, data=body[1:-1], le=body[-1] or SHORT_MAX_LE)
            raise ApduFormatError(
                f"Lc = {lc} (0x{lc:02X}) but {len(body) - 1} bytes follow it"
                f" (expected {lc} without Le or {lc + 1} with Le)"
            )
        # The first body byte is 00 and more follow: extended length.
        if len(body) < 3:
            raise ApduFormatError(
                f"truncated extended length: 00 then {len(body) - 1} byte(s), expected 2"
            )
        value = int.from_bytes(body[1:3], "big")
        if len(body) == 3:  # case 2E
            return cls(cla, ins, p1, p2, le=value or EXTENDED_MAX_LE, extended=True)
        lc = value
        if lc == 0:
            raise ApduFormatError("extended Lc = 0000 followed by bytes: Lc must be 1..65535")
        rest = len(body) - 3
        if rest == lc:  # case 3E
            return cls(cla, ins, p1, p2, data=body[3:], extended=True)
        if rest == lc + 2:  # case 4E
            le = int.from_bytes(body[-2:], "big") or EXTENDED_MAX_LE
            return cls(cla, ins, p1, p2, data=body[3:-2], le=le, extended=True)
        if rest == lc + 1:
            raise ApduFormatError(
                f"extended Lc = {lc} followed by a 1-byte (short) Le: an extended APDU's Le"
                " is 2 bytes"
            )
        raise ApduFormatError(
            f"extended Lc = {lc} (0x{lc:04X}) but {rest} bytes follow it"
            f" (expected {lc} without Le or {lc + 2} with Le)"
        )


def split_command(raw: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(header with its length fields, data, Le bytes) of a command, or None when its lengths
    do not add up: for layers that carry deliberately malformed commands as they are."""
    raw = bytes(raw)
    try:
        command = CommandAPDU.parse(raw)
    except ApduFormatError:
        return None
    if not command.data:
        return raw, b"", b""
    start = 7 if command.extended else 5
    end = start + len(command.data)
    return raw[:start], raw[start:end], raw[end:]


# --------------------------------------------------------------------------- response APDU


@dataclass(frozen=True)
class ResponseAPDU:
    """A response APDU: data field and the status word SW1 SW2."""

    data: bytes
    sw1: int
    sw2: int

    def __post_init__(self) -> None:
        _check_byte("SW1", self.sw1)
        _check_byte("SW2", self.sw2)
        object.__setattr__(self, "data", bytes(self.data))

    @property
    def sw(self) -> int:
        """SW1 SW2 as one integer, e.g. 0x9000."""
        return (self.sw1 << 8) | self.sw2

    @classmethod
    def of(cls, sw: int, data: bytes = b"") -> ResponseAPDU:
        """Build from a 16-bit status word."""
        if not 0 <= int(sw) <= 0xFFFF:
            raise ApduFormatError(f"a status word is 16 bits, got {sw!r}")
        return cls(bytes(data), int(sw) >> 8, int(sw) & 0xFF)

    @classmethod
    def parse(cls, raw: bytes) -> ResponseAPDU:
        """Split the last two bytes off as SW1 SW2."""
        raw = bytes(raw)
        if len(raw) < 2:
            raise ApduFormatError(f"a response APDU has at least 2 bytes (SW1 SW2), got {len(raw)}")
        return cls(raw[:-2], raw[-2], raw[-1])

    def to_bytes(self) -> bytes:
        """data ‖ SW1 ‖ SW2."""
        return self.data + bytes([self.sw1, self.sw2])

    __bytes__ = to_bytes

    def hex(self) -> str:
        """Upper-case spaced hex of the whole response, like :meth:`CommandAPDU.hex`."""
        return _spaced_hex(self.to_bytes())

    def __str__(self) -> str:
        return self.hex()

    def check(self, *expected: int, command: CommandAPDU | None = None) -> ResponseAPDU:
        """Return self if the SW is one of ``expected`` (default 9000), else raise ApduError.

        ``command``, when given, is named in the error message.
        """
        allowed = expected or (SW_SUCCESS,)
        if self.sw not in {int(x) for x in allowed}:
            raise ApduError(self.sw, command=command, response=self)
        return self


def sw_hex(sw: int) -> str:
    """Four upper-case hex digits, e.g. ``6A82``."""
    return f"{int(sw):04X}"


class ApduError(Exception):
    """A card answered a status word the caller did not accept.

    Carries ``sw`` (int), ``command`` (the CommandAPDU, when known) and ``response``.
    """

    def __init__(
        self,
        sw: int,
        command: CommandAPDU | None = None,
        response: ResponseAPDU | None = None,
    ) -> None:
        self.sw = int(sw)
        self.command = command
        self.response = response if response is not None else ResponseAPDU.of(self.sw)
        en, zh = describe_sw(self.sw)
        message = f"{sw_hex(self.sw)} {en} ({zh})"
        if command is not None:
            message += f" for {command.hex()}"
        super().__init__(message)

    @property
    def msg(self) -> Msg:
        """The refusal as a bilingual message (the SW with its meaning, and the command)."""
        en, zh = describe_sw(self.sw)
        if self.command is None:
            return msg("apdu.error", sw=sw_hex(self.sw), meaning_en=en, meaning_zh=zh)
        return msg("apdu.error_for", sw=sw_hex(self.sw), meaning_en=en, meaning_zh=zh,
                   command=self.command.hex())

    def __reduce__(self) -> tuple[type[ApduError], tuple[int, CommandAPDU | None, ResponseAPDU]]:
        # Keep the exception picklable (e.g. across pytest-xdist workers).
        return (type(self), (self.sw, self.command, self.response))
