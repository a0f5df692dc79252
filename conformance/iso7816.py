"""ISO/IEC 7816-3/-4 facts that no card profile changes: parameter-byte conventions, length
encodings and the generic meaning of status words.

Everything specific to the resident health card (classes, instructions, which status word a
card answers in which situation) lives in the profile YAML; this module holds only what ISO
fixes for every card, under one name each, so that the host, the cases and the virtual card
speak of SELECT's P2 or READ RECORD's addressing in the same words.
"""

from __future__ import annotations

__all__ = [
    "BINARY_SFI_BIT",
    "EXT_AUTH_P1",
    "GET_CHALLENGE_P1P2",
    "LC_MAX_SHORT",
    "LE_WHOLE",
    "MAX_BINARY_OFFSET",
    "MF_FID",
    "RECORD_P1_CYCLIC_NEW",
    "RECORD_P2_BY_ID",
    "RECORD_P2_BY_NUMBER",
    "RECORD_P2_CYCLIC_NEW",
    "SELECT_P1_BY_FID",
    "SELECT_P1_BY_NAME",
    "SELECT_P2_FCI",
    "SELECT_P2_NO_DATA",
    "SW_MEANINGS",
    "SW_SUCCESS",
    "describe_sw",
]

# -- files -------------------------------------------------------------------------------
MF_FID = "3F00"
"""ISO/IEC 7816-4 reserves FID 3F00 for the master file."""

# -- SELECT ------------------------------------------------------------------------------
SELECT_P1_BY_FID = 0x00
"""SELECT P1: select by file identifier (MF, DF or EF)."""
SELECT_P1_BY_NAME = 0x04
"""SELECT P1: select by DF name (an application's AID); on a co-branded card only."""
SELECT_P2_FCI = 0x00
"""SELECT P2: first or only occurrence, return the FCI (a card may answer with none)."""
SELECT_P2_NO_DATA = 0x0C
"""SELECT P2: first or only occurrence, no response data."""

# -- READ / UPDATE RECORD ------------------------------------------------------------------
RECORD_P2_BY_NUMBER = 0x04
"""READ/UPDATE RECORD P2: P1 is the record number."""
RECORD_P2_BY_ID = 0x00
"""READ RECORD P2: P1 is a record identifier (the SIMPLE-TLV tag), first occurrence."""
RECORD_P2_CYCLIC_NEW = 0x03
"""UPDATE RECORD P2 on a cyclic file: write a new record, which becomes record 1."""
RECORD_P1_CYCLIC_NEW = 0x00
"""UPDATE RECORD P1 with P2 = 03: no record number."""

# -- READ / UPDATE BINARY ------------------------------------------------------------------
BINARY_SFI_BIT = 0x80
"""READ/UPDATE BINARY: P1 bit 8 set means P1 carries a short file identifier."""
MAX_BINARY_OFFSET = 0x7FFF
"""The largest offset P1P2 can address when bit 8 of P1 is clear."""

# -- EXTERNAL AUTHENTICATE / GET CHALLENGE ----------------------------------------------------
EXT_AUTH_P1 = 0x00
"""EXTERNAL AUTHENTICATE P1: no algorithm information given (P2 is the key reference)."""
GET_CHALLENGE_P1P2 = (0x00, 0x00)
"""GET CHALLENGE P1, P2: no information given."""

# -- lengths -----------------------------------------------------------------------------
LC_MAX_SHORT = 0xFF
"""The most data bytes a short command carries."""
LE_WHOLE = 256
"""The largest short Le, sent as the byte 00: "up to 256 bytes", the whole record."""


# -- status words --------------------------------------------------------------------------
SW_SUCCESS = 0x9000
"""Normal processing (every ISO/IEC 7816-4 card)."""

SW_MEANINGS: dict[int, tuple[str, str]] = {
    0x9000: ("success", "成功"),
    0x6200: ("warning: non-volatile memory unchanged", "警告：非易失存储器未改变"),
    0x6281: ("warning: part of returned data may be corrupted", "警告：返回数据可能有误"),
    0x6282: (
        "warning: end of file or record reached before Le bytes",
        "警告：未读够 Le 字节即到达文件尾",
    ),
    0x6283: ("warning: selected file invalidated", "警告：所选文件已失效"),
    0x6300: ("warning: verification failed", "警告：验证失败"),
    0x6400: ("execution error: non-volatile memory unchanged", "执行错误：非易失存储器未改变"),
    0x6581: ("memory failure", "存储器故障"),
    0x6700: ("wrong length (Lc or Le)", "长度错误（Lc 或 Le）"),
    0x6800: ("functions in CLA not supported", "CLA 中的功能不支持"),
    0x6881: ("logical channel not supported", "逻辑通道不支持"),
    0x6882: ("secure messaging not supported", "不支持安全报文"),
    0x6981: ("command incompatible with file structure", "命令与文件结构不相容"),
    0x6982: ("security status not satisfied", "安全状态不满足"),
    0x6983: ("key locked", "密钥已锁定"),
    0x6984: ("referenced data invalidated", "引用数据已失效"),
    0x6985: (
        "no challenge (conditions of use not satisfied)",
        "未取随机数（使用条件不满足）",
    ),
    0x6986: ("no current EF", "无当前 EF"),
    0x6987: ("expected secure messaging data objects missing", "缺少安全报文数据对象"),
    0x6988: ("wrong MAC (secure messaging data object incorrect)", "MAC 错误"),
    0x6A80: ("wrong data", "数据错误"),
    0x6A81: ("function not supported", "功能不支持"),
    0x6A82: ("file not found", "文件未找到"),
    0x6A83: ("record not found", "记录未找到"),
    0x6A84: ("not enough memory space in the file", "文件存储空间不足"),
    0x6A86: ("wrong P1/P2", "P1/P2 参数错误"),
    0x6A87: ("Lc inconsistent with P1/P2", "Lc 与 P1/P2 不一致"),
    0x6A88: ("key reference not found", "密钥未找到"),
    0x6B00: ("offset beyond end of file", "偏移量超出文件末尾"),
    0x6D00: ("INS not supported", "指令不支持"),
    0x6E00: ("CLA not supported", "CLA 不支持"),
    0x6F00: ("no precise diagnosis", "无精确诊断"),
}
"""ISO/IEC 7816-4 meaning (English, 中文) of each fixed status word: what an error message
can say about any answer; which one a case expects is the profile's business."""

UNKNOWN_SW = ("unknown status word", "未知状态字")


def describe_sw(sw: int) -> tuple[str, str]:
    """(English, 中文) ISO meaning of a status word, with the 61xx, 6Cxx and 63Cx patterns."""
    sw = int(sw)
    if sw in SW_MEANINGS:
        return SW_MEANINGS[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        if sw2 == 0:
            return ("256 (or more) bytes available", "还有 256 或更多字节可取")
        return (f"{sw2} bytes available", f"还有 {sw2} 字节可取")
    if sw1 == 0x6C:
        n = sw2 or 256
        return (f"wrong Le, exact length {n}", f"Le 错误，正确长度为 {n}")
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        x = sw2 & 0x0F
        tries = "try" if x == 1 else "tries"
        return (f"wrong cryptogram, {x} {tries} left", f"认证失败，还可尝试 {x} 次")
    return UNKNOWN_SW
