"""Codecs for the three codings of data items: AN (GBK text), CN (BCD digits) and B (binary).

AN is GBK text right-padded with 00; CN is BCD digits, left-aligned, right-padded with F
nibbles; B is raw bytes, written from hex and right-padded with 00. Each codec has its test
vectors beside it (`TEST_VECTORS`), so a change of rule is a change of data checked in one place.
"""

from __future__ import annotations

from enum import StrEnum

from conformance.messages import Bilingual, msg


class Coding(StrEnum):
    AN = "AN"
    CN = "CN"
    B = "B"


class CodingError(Bilingual, ValueError):
    """A value cannot be encoded in, or raw bytes are not a valid instance of, a coding."""


def encode_an(value: str, length: int) -> bytes:
    """GBK text, right-padded with 00 to `length` bytes."""
    try:
        raw = value.encode("gbk")
    except UnicodeEncodeError as exc:
        raise CodingError(f"{value!r} has characters outside GBK") from exc
    if len(raw) > length:
        raise CodingError(f"{value!r} is {len(raw)} bytes in GBK, longer than {length}")
    if b"\x00" in raw:
        raise CodingError(f"{value!r} contains a NUL character")
    return raw + bytes(length - len(raw))


def decode_an(raw: bytes) -> str:
    """Text up to the 00 padding; bytes after the first 00 must all be 00."""
    text, _, padding = raw.partition(b"\x00")
    if padding.strip(b"\x00"):
        raise CodingError(msg("coding.an_after_padding", value=raw.hex().upper()))
    try:
        return text.decode("gbk")
    except UnicodeDecodeError as exc:
        raise CodingError(msg("coding.an_not_gbk", value=raw.hex().upper())) from exc


def encode_cn(value: str, length: int) -> bytes:
    """BCD digits, left-aligned, right-padded with F nibbles."""
    if value and not (value.isascii() and value.isdigit()):
        raise CodingError(f"{value!r} is not a string of decimal digits")
    if len(value) > 2 * length:
        raise CodingError(f"{value!r} has {len(value)} digits, more than {2 * length}")
    return bytes.fromhex(value.ljust(2 * length, "F"))


def decode_cn(raw: bytes) -> str:
    """Digits up to the first F nibble; every nibble after it must be F too."""
    nibbles = raw.hex().upper()
    digits, _, padding = nibbles.partition("F")
    if padding.strip("F"):
        raise CodingError(msg("coding.cn_after_padding", value=nibbles))
    if not digits.isdigit() and digits:
        raise CodingError(msg("coding.cn_not_digit", value=nibbles))
    return digits


def encode_b(value: str, length: int) -> bytes:
    """Hex text, right-padded with 00."""
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise CodingError(f"{value!r} is not hexadecimal") from exc
    if len(raw) > length:
        raise CodingError(f"{value!r} is {len(raw)} bytes, longer than {length}")
    return raw + bytes(length - len(raw))


def decode_b(raw: bytes) -> str:
    return raw.hex().upper()


_ENCODERS = {Coding.AN: encode_an, Coding.CN: encode_cn, Coding.B: encode_b}
_DECODERS = {Coding.AN: decode_an, Coding.CN: decode_cn, Coding.B: decode_b}


def encode(coding: Coding, value: str, length: int) -> bytes:
    return _ENCODERS[Coding(coding)](value, length)


def decode(coding: Coding, raw: bytes) -> str:
    return _DECODERS[Coding(coding)](raw)


def empty(coding: Coding, length: int) -> bytes:
    """The coding of a value that was never personalised: AN and B 00…, CN FF…."""
    return (b"\xff" if Coding(coding) is Coding.CN else b"\x00") * length


# (coding, length, value, encoded hex): encode(value) == encoded and decode(encoded) == value.
TEST_VECTORS: list[tuple[Coding, int, str, str]] = [
    (Coding.AN, 1, "1", "31"),
    (Coding.AN, 4, "2017", "32303137"),
    (Coding.AN, 6, "王测试", "CDF5B2E2CAD4"),
    (Coding.AN, 8, "王测试", "CDF5B2E2CAD40000"),
    (Coding.AN, 3, "", "000000"),
    (Coding.AN, 18, "11010519491231002X", "313130313035313934393132333130303258"),
    (Coding.CN, 4, "20240101", "20240101"),
    (Coding.CN, 1, "1", "1F"),
    (Coding.CN, 3, "410100", "410100"),
    (Coding.CN, 11, "4101000000000000000001", "4101000000000000000001"),
    (Coding.CN, 2, "123", "123F"),
    (Coding.CN, 2, "", "FFFF"),
    (Coding.B, 1, "01", "01"),
    (Coding.B, 4, "00000000", "00000000"),
    (Coding.B, 2, "ABCD", "ABCD"),
]

# (coding, raw hex): bytes that are not a valid instance of the coding.
INVALID_ENCODINGS: list[tuple[Coding, str]] = [
    (Coding.CN, "1F2F"),  # digits after the F padding
    (Coding.CN, "1A"),  # A is not a decimal digit
    (Coding.AN, "3100310000"),  # data after the 00 padding
    (Coding.AN, "FFFF00"),  # not GBK
]
