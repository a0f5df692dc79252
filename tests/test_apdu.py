"""Tests for conformance.apdu (encoding of every ISO case, strict parsing, the lenient split)
and the ISO status-word meanings of conformance.iso7816."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.apdu import (
    ApduError,
    ApduFormatError,
    CommandAPDU,
    ResponseAPDU,
    split_command,
    sw_hex,
)
from conformance.iso7816 import SW_MEANINGS, SW_SUCCESS, describe_sw
from conformance.model import load_profile

H = bytes.fromhex

# (apdu, wire encoding, case) for every case, short and extended, with the edge values of Lc/Le.
ROUND_TRIPS = [
    (CommandAPDU(0x00, 0xA4, 0x00, 0x00), "00A40000", 1),
    (CommandAPDU(0x00, 0x84, 0x00, 0x00, le=8), "0084000008", 2),
    (CommandAPDU(0x00, 0xB2, 0x01, 0x04, le=256), "00B2010400", 2),
    (CommandAPDU(0x00, 0xB2, 0x01, 0x04, le=1), "00B2010401", 2),
    (CommandAPDU(0x00, 0xA4, 0x00, 0x00, H("DDF1")), "00A4000002DDF1", 3),
    (CommandAPDU(0x00, 0xD6, 0x00, 0x00, bytes(255)), "00D60000FF" + "00" * 255, 3),
    (CommandAPDU(0x00, 0xA4, 0x04, 0x00, H("A0"), le=256), "00A4040001A000", 4),
    (CommandAPDU(0x00, 0xA4, 0x04, 0x00, bytes(255), le=255), "00A40400FF" + "00" * 255 + "FF", 4),
    (CommandAPDU(0x00, 0xB0, 0x00, 0x00, le=300, extended=True), "00B0000000012C", 2),
    (CommandAPDU(0x00, 0xB0, 0x00, 0x00, le=65536, extended=True), "00B00000000000", 2),
    (CommandAPDU(0x00, 0xB0, 0x00, 0x00, le=1, extended=True), "00B00000000001", 2),
    (
        CommandAPDU(0x00, 0xD6, 0x00, 0x00, bytes(256), extended=True),
        "00D60000000100" + "00" * 256,
        3,
    ),
    (
        CommandAPDU(0x00, 0xD6, 0x00, 0x00, H("01"), extended=True),
        "00D6000000000101",
        3,
    ),
    (
        CommandAPDU(0x00, 0x2A, 0x9E, 0x9A, H("0102"), le=65536, extended=True),
        "002A9E9A00000201020000",
        4,
    ),
    (
        CommandAPDU(0x00, 0x2A, 0x9E, 0x9A, bytes(65535), le=256, extended=True),
        "002A9E9A00FFFF" + "00" * 65535 + "0100",
        4,
    ),
]


@pytest.mark.parametrize(("apdu", "wire", "case"), ROUND_TRIPS)
def test_round_trip_every_case(apdu: CommandAPDU, wire: str, case: int) -> None:
    raw = H(wire)
    assert apdu.to_bytes() == raw
    assert bytes(apdu) == raw
    assert apdu.case == case
    assert CommandAPDU.parse(raw) == apdu


def test_header_hex_and_str() -> None:
    apdu = CommandAPDU(0x00, 0xA4, 0x00, 0x00, H("DDF1"))
    assert apdu.header() == H("00A40000")
    assert apdu.hex() == "00 A4 00 00 02 DD F1"
    assert str(apdu) == apdu.hex()


def test_with_le_changes_only_le() -> None:
    apdu = CommandAPDU(0x00, 0xB2, 0x01, 0x04, le=256)
    resent = apdu.with_le(0x24)
    assert resent.to_bytes() == H("00B2010424")
    assert apdu.le == 256  # frozen: the original is untouched
    assert resent.with_le(None).case == 1


def test_data_is_normalized_to_bytes() -> None:
    apdu = CommandAPDU(0x00, 0xA4, 0x00, 0x00, bytearray(b"\xdd\xf1"))  # type: ignore[arg-type]
    assert type(apdu.data) is bytes
    assert apdu == CommandAPDU(0x00, 0xA4, 0x00, 0x00, H("DDF1"))
    hash(apdu)


def test_case1_is_never_extended() -> None:
    assert CommandAPDU(0x00, 0xA4, 0x00, 0x00, extended=True).extended is False


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cla": 256, "ins": 0, "p1": 0, "p2": 0},
        {"cla": 0, "ins": -1, "p1": 0, "p2": 0},
        {"cla": 0, "ins": 0, "p1": 0, "p2": 0, "le": 0},
        {"cla": 0, "ins": 0, "p1": 0, "p2": 0, "le": 257},
        {"cla": 0, "ins": 0, "p1": 0, "p2": 0, "le": 65537, "extended": True},
        {"cla": 0, "ins": 0, "p1": 0, "p2": 0, "data": bytes(256)},
        {"cla": 0, "ins": 0, "p1": 0, "p2": 0, "data": bytes(65536), "extended": True},
        {"cla": 0, "ins": 0, "p1": 0, "p2": 0, "data": "text"},
    ],
)
def test_invalid_fields_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ApduFormatError):
        CommandAPDU(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        ("", "at least 4"),
        ("00A400", "at least 4"),
        ("00A4000002DD", "Lc = 2"),  # truncated data
        ("00A4000002DDF1EE01", "Lc = 2"),  # one byte too many even for Le
        ("00A40000000A", "truncated extended"),  # 00 then one byte
        ("00A40000000001DD05", "short"),  # extended Lc 1, data, then a 1-byte Le
        ("00A40000000002DDF1FF", "short"),  # extended Lc 2, data, then a 1-byte Le
        ("00A40000000000", None),  # 2E with Le 0000 = 65536 is valid: checked below
        ("00A4000000000001", "Lc must be"),  # extended Lc = 0000 with a byte after
        ("00A40000000003DDF1", "extended Lc = 3"),  # extended data truncated
    ],
)
def test_parse_errors(wire: str, why: str | None) -> None:
    if why is None:
        assert CommandAPDU.parse(H(wire)).le == 65536
        return
    with pytest.raises(ApduFormatError, match=why):
        CommandAPDU.parse(H(wire))


def test_apdu_format_error_is_a_value_error() -> None:
    assert issubclass(ApduFormatError, ValueError)


@st.composite
def command_apdus(draw: st.DrawFn) -> CommandAPDU:
    extended = draw(st.booleans())
    byte = st.integers(0, 255)
    max_lc, max_le = (600, 65536) if extended else (255, 256)  # 600 keeps examples small
    data = draw(st.binary(max_size=max_lc))
    le = draw(st.none() | st.integers(1, max_le))
    return CommandAPDU(draw(byte), draw(byte), draw(byte), draw(byte), data, le, extended)


@given(command_apdus())
def test_property_build_bytes_parse(apdu: CommandAPDU) -> None:
    raw = apdu.to_bytes()
    assert CommandAPDU.parse(raw) == apdu
    assert CommandAPDU.parse(raw).to_bytes() == raw
    assert len(apdu.hex()) == 3 * len(raw) - 1


@given(st.binary(min_size=4, max_size=300))
def test_property_parse_is_total(raw: bytes) -> None:
    """Any bytes either parse into an APDU that re-encodes to them, or raise ApduFormatError."""
    try:
        apdu = CommandAPDU.parse(raw)
    except ApduFormatError:
        return
    assert apdu.to_bytes() == raw


# --------------------------------------------------------------------------- responses


def test_response_parse_and_encode() -> None:
    r = ResponseAPDU.parse(H("0102039000"))
    assert r.data == H("010203")
    assert (r.sw1, r.sw2, r.sw) == (0x90, 0x00, 0x9000)
    assert r.to_bytes() == bytes(r) == H("0102039000")
    assert r.hex() == "01 02 03 90 00"
    assert ResponseAPDU.parse(H("6A82")) == ResponseAPDU.of(0x6A82) == ResponseAPDU(b"", 0x6A, 0x82)
    assert ResponseAPDU.of(SW_SUCCESS, b"\x01").to_bytes() == H("019000")


@pytest.mark.parametrize("wire", ["", "90"])
def test_response_too_short(wire: str) -> None:
    with pytest.raises(ApduFormatError):
        ResponseAPDU.parse(H(wire))


@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_property_response_round_trip(data: bytes, sw: int) -> None:
    r = ResponseAPDU.of(sw, data)
    assert ResponseAPDU.parse(r.to_bytes()) == r
    assert r.sw == sw


def test_check_passes_and_returns_self() -> None:
    ok = ResponseAPDU.of(0x9000, b"\x01")
    assert ok.check() is ok
    warn = ResponseAPDU.of(0x6C24)
    assert warn.check(SW_SUCCESS, 0x6C24) is warn


def test_check_raises_apdu_error() -> None:
    select = CommandAPDU(0x00, 0xA4, 0x00, 0x00, H("EF09"))
    r = ResponseAPDU.of(0x6A82)
    with pytest.raises(ApduError) as info:
        r.check(command=select)
    err = info.value
    assert err.sw == 0x6A82
    assert err.command is select
    assert err.response is r
    assert str(err) == "6A82 file not found (文件未找到) for 00 A4 00 00 02 EF 09"
    with pytest.raises(ApduError, match=r"^9000 success"):
        ResponseAPDU.of(0x9000).check(0x6982)


def test_apdu_error_without_command_and_pickle() -> None:
    err = ApduError(0x6982)
    assert str(err) == "6982 security status not satisfied (安全状态不满足)"
    assert err.command is None
    assert err.response == ResponseAPDU.of(0x6982)
    copy = pickle.loads(pickle.dumps(ApduError(0x63C2, CommandAPDU(0, 0x82, 0, 4, bytes(17)))))
    assert (copy.sw, str(copy)) == (0x63C2, str(ApduError(0x63C2, copy.command)))
    assert "wrong cryptogram, 2 tries left" in str(copy)


# --------------------------------------------------------------------------- status words


PROFILE_SWS = sorted(
    {int(v, 16) for v in load_profile().spec.status_words.values() if len(v) == 4}
)


@pytest.mark.parametrize("sw", PROFILE_SWS, ids=sw_hex)
def test_every_profile_sw_has_an_iso_meaning_in_both_languages(sw: int) -> None:
    en, zh = describe_sw(sw)
    assert en and zh and en != "unknown status word"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)
    assert SW_MEANINGS[sw] == (en, zh)


@pytest.mark.parametrize(
    ("wire", "parts"),
    [
        ("00A40000", ("00A40000", "", "")),
        ("0084000008", ("0084000008", "", "")),
        ("00A4000002DDF1", ("00A4000002", "DDF1", "")),
        ("00B20104020102FF", ("00B2010402", "0102", "FF")),
        ("00D600000000020102", ("00D6000000" "0002", "0102", "")),
        ("00B000000000020102" "0100", ("00B0000000" "0002", "0102", "0100")),
    ],
)
def test_split_command_locates_the_data_field(wire: str, parts: tuple[str, str, str]) -> None:
    assert split_command(H(wire)) == tuple(H(p) for p in parts)


@pytest.mark.parametrize("wire", ["00A4", "00A4000003DDF1", "00D600000000", "00D6000000"
                                  "00020102FF"])
def test_split_command_refuses_lengths_that_do_not_add_up(wire: str) -> None:
    assert split_command(H(wire)) is None


@pytest.mark.parametrize(
    ("sw", "en", "zh"),
    [
        (0x9000, "success", "成功"),
        (0x6A82, "file not found", "文件未找到"),
        (0x6110, "16 bytes available", "还有 16 字节可取"),
        (0x6100, "256 (or more) bytes available", "还有 256 或更多字节可取"),
        (0x6C24, "wrong Le, exact length 36", "Le 错误，正确长度为 36"),
        (0x63C2, "wrong cryptogram, 2 tries left", "认证失败，还可尝试 2 次"),
        (0x63C1, "wrong cryptogram, 1 try left", "认证失败，还可尝试 1 次"),
        (0x63C0, "wrong cryptogram, 0 tries left", "认证失败，还可尝试 0 次"),
        (0x1234, "unknown status word", "未知状态字"),
        (0x63D1, "unknown status word", "未知状态字"),
    ],
)
def test_describe_sw(sw: int, en: str, zh: str) -> None:
    assert describe_sw(sw) == (en, zh)


def test_sw_hex() -> None:
    assert sw_hex(0x6A82) == "6A82"
    assert sw_hex(SW_SUCCESS) == "9000"
    assert sw_hex(0x0001) == "0001"
