"""The value rules of TERMINAL.md: how a terminal reports and accepts item values.

They differ from the card model's strict codecs on purpose: a terminal reports AN as the GBK
bytes up to the first 00 and CN as the digits up to the first F nibble (whatever follows), B
as the whole item in upper-case hex; on input a value that does not fit its item is refused
before any APDU (:class:`ValueRefused`).
"""

from __future__ import annotations

from conformance.model import Coding

__all__ = ["UnreadableValue", "ValueRefused", "decode", "empty", "encode", "is_empty"]


class ValueRefused(ValueError):
    """A value the terminal was asked to write does not fit its item (refused, exit 1)."""


class UnreadableValue(ValueError):
    """The card holds bytes that are no instance of the item's coding (an AN that is not GBK,
    a CN with a nibble A–E before its padding)."""


def decode(coding: Coding, raw: bytes, what: str) -> str:
    """The reported value of ``raw`` (the item's bytes on the card)."""
    if coding is Coding.B:
        return raw.hex().upper()
    if coding is Coding.AN:
        text = raw.partition(b"\x00")[0]
        try:
            return text.decode("gbk")
        except UnicodeDecodeError:
            raise UnreadableValue(f"{what} holds {text.hex().upper()}, which is not GBK") from None
    digits = raw.hex().upper().partition("F")[0]
    if not digits.isdigit() and digits:
        raise UnreadableValue(f"{what} holds {raw.hex().upper()}: a CN nibble is not a digit")
    return digits


def encode(coding: Coding, value: object, length: int, what: str) -> bytes:
    """The item's ``length`` bytes for ``value``; ValueRefused naming the problem."""
    if not isinstance(value, str):
        raise ValueRefused(f"{what}: the value must be a JSON string, got {value!r}")
    if coding is Coding.B:
        if len(value) != 2 * length:
            raise ValueRefused(f"{what} is B {length}: give exactly {2 * length} hex digits, "
                               f"got {len(value)}")
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise ValueRefused(f"{what}: {value!r} is not hexadecimal") from None
    if coding is Coding.AN:
        try:
            raw = value.encode("gbk")
        except UnicodeEncodeError:
            raise ValueRefused(f"{what}: {value!r} has characters outside GBK") from None
        if b"\x00" in raw:
            raise ValueRefused(f"{what}: {value!r} contains a NUL character")
        if len(raw) > length:
            raise ValueRefused(f"{what}: {value!r} is {len(raw)} bytes in GBK, longer than "
                               f"its {length}")
        return raw + bytes(length - len(raw))
    if value and not (value.isascii() and value.isdigit()):
        raise ValueRefused(f"{what}: {value!r} is not a string of decimal digits")
    if len(value) > 2 * length:
        raise ValueRefused(f"{what}: {value!r} has {len(value)} digits, more than its "
                           f"{2 * length}")
    return bytes.fromhex(value.ljust(2 * length, "F"))


def empty(coding: Coding, length: int) -> bytes:
    """An unpersonalized item: AN 00…, CN F…, B 00… (TERMINAL.md, Writes)."""
    return (b"\xff" if coding is Coding.CN else b"\x00") * length


def is_empty(coding: Coding, value: str) -> bool:
    """True for a reported value that stands for an unpersonalized item."""
    if coding is Coding.B:
        return not value.strip("0")
    return value == ""
