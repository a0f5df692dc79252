"""Trace judging: what a terminal sent to the served card, against REFERENCE.md and TERMINAL.md.

The judge reads the recorded exchanges (command, answer, the card's current DF and EF before
and after) and the card's keys, so it recomputes secure messaging with the test keys. Each
rule has a name; a case names the rules that are its own (a finding of another rule is still
a FAIL, reported as a step). Findings carry English and Chinese text.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance import crypto
from conformance.card.content import CardContent
from conformance.model.profile import CardProfile
from conformance.model.schema import Structure
from conformance.terminal.cards import Exchange

__all__ = ["RULES", "Finding", "judge_trace"]

RULES = {
    "select_before_read": ("先选择后读写（从 DDF1 起）", "select before reading or writing"),
    "right_key": ("受保护读写前用正确 DF 的正确 KID 认证", "the right KID in the right DF first"),
    "fresh_challenge": ("每次认证与安全报文命令前取新随机数", "a fresh challenge each time"),
    "sm_per_spec": ("安全报文按 §4 构造", "secure messaging built per §4"),
    "get_response": ("61xx 之后发送 GET RESPONSE", "GET RESPONSE after 61xx"),
    "corrected_le": ("6Cxx 之后以正确 Le 重发", "resend with the corrected Le after 6Cxx"),
    "inside_layout": ("只在文件结构之内写", "writes only inside a file's layout"),
    "index_before_write": ("写 EE/ED 之前先标记索引", "index marked before an EE/ED write"),
    "no_retry": ("不重复被拒绝的认证", "no repeat of a refused authentication"),
    "stop_on_error": ("遇到意外状态字即停止", "stop on an unexpected status word"),
}


@dataclass(frozen=True)
class Finding:
    """One broken rule at one exchange."""

    rule: str
    en: str
    zh: str
    at: int = -1
    """Index of the exchange in the trace (-1: the transaction as a whole)."""


def _parts(c: bytes) -> tuple[bytes, int | None]:
    """(data, Le) of a short APDU (Le None when absent)."""
    if len(c) <= 4:
        return b"", None
    if len(c) == 5:
        return b"", c[4]
    lc = c[4]
    data = c[5:5 + lc]
    return data, (c[5 + lc] if len(c) > 5 + lc else None)


def _sw(sw: int) -> str:
    return f"{sw:04X}"


class _Judge:
    def __init__(self, profile: CardProfile, content: CardContent) -> None:
        self.profile = profile
        self.content = content
        self.findings: list[Finding] = []
        self.start()

    def start(self) -> None:
        """A power-up: nothing selected, no challenge, nothing marked."""
        self.selected = False
        self.challenge: bytes | None = None
        self.refused: set[tuple[str, int]] = set()
        self.marked: set[tuple[str, int]] = set()
        self.pending61: int | None = None
        self.pending6c: tuple[bytes, int] | None = None
        self.origin: bytes = b""
        """The command whose answer a GET RESPONSE or a resend with corrected Le collects."""
        self.stopped: int | None = None

    def add(self, rule: str, at: int, en: str, zh: str) -> None:
        self.findings.append(Finding(rule, en, zh, at))

    def follow_up(self, i: int, c: bytes) -> None:
        """The procedure a 61xx or 6Cxx answer called for, checked on the next command."""
        if self.pending61 is not None:
            want = self.pending61
            if not (c[:4] == b"\x00\xc0\x00\x00" and len(c) == 5 and c[4] == want):
                self.add("get_response", i, f"after 61{want:02X} the terminal sent "
                         f"{c[:4].hex().upper()} instead of GET RESPONSE 00C00000{want:02X}",
                         f"收到 61{want:02X} 后终端发送了 {c[:4].hex().upper()}，"
                         f"而不是 GET RESPONSE 00C00000{want:02X}")
            self.pending61 = None
        if self.pending6c is not None:
            prev, want = self.pending6c
            data, le = _parts(c)
            if c[:4] != prev[:4] or data != _parts(prev)[0] or le != want:
                self.add("corrected_le", i, f"after 6C{want:02X} the terminal did not resend "
                         f"{prev[:4].hex().upper()} with Le {want:02X}",
                         f"收到 6C{want:02X} 后终端未以 Le={want:02X} 重发 "
                         f"{prev[:4].hex().upper()}")
            self.pending6c = None

    def command(self, i: int, ex: Exchange) -> None:
        c, sw = ex.command, ex.sw()
        cla, ins = c[0], c[1]
        if self.stopped is not None:
            self.add("stop_on_error", i, f"the terminal went on ({c[:4].hex().upper()}) after "
                     f"the card answered {_sw(self.stopped)}",
                     f"卡片应答 {_sw(self.stopped)} 后终端仍继续发送 {c[:4].hex().upper()}")
            self.stopped = None
        collecting = self.pending61 is not None or self.pending6c is not None
        self.follow_up(i, c)
        self.origin = self.origin if collecting else c
        if ins == 0xC0 and self.origin[:4] == b"\x00\x84\x00\x00" and sw == 0x9000:
            self.challenge = ex.response[:-2]  # T=0: the challenge comes with GET RESPONSE
        elif ins == 0xA4:
            self.selected = self.selected or sw == 0x9000
        elif ins in (0xB0, 0xB2, 0xD6, 0xDC, 0xD2, 0x0C):
            self.file_command(i, ex)
        elif ins == 0x84 and cla == 0x00:
            if sw == 0x9000:
                self.challenge = ex.response[:-2]
        elif ins == 0x82:
            self.authenticate(i, ex)
        self.after(i, ex)

    def take_challenge(self, i: int, what: str) -> bytes | None:
        challenge, self.challenge = self.challenge, None
        if challenge is None:
            self.add("fresh_challenge", i, f"{what} without a fresh GET CHALLENGE before it",
                     f"{what} 之前未重新取随机数（GET CHALLENGE）")
        return challenge

    def authenticate(self, i: int, ex: Exchange) -> None:
        kid = ex.command[3]
        self.take_challenge(i, f"EXTERNAL AUTHENTICATE KID {kid:02X}")
        key = (ex.df, kid)
        if self.profile.key_by_kid(ex.df, kid) is None:
            self.add("right_key", i, f"KID {kid:02X} is no key of the current DF {ex.df}",
                     f"KID {kid:02X} 不是当前 DF {ex.df} 的密钥")
        if key in self.refused:
            self.add("no_retry", i, f"authentication with KID {kid:02X} in {ex.df} repeated "
                     "after the card refused it", f"{ex.df} 中 KID {kid:02X} 的认证被拒绝后又重试")
        if ex.sw() != 0x9000:
            self.refused.add(key)

    def file_command(self, i: int, ex: Exchange) -> None:
        c, sw = ex.command, ex.sw()
        name = c[:4].hex().upper()
        if not self.selected or ex.ef is None:
            self.add("select_before_read", i, f"{name} sent with no file selected in this "
                     "transaction", f"本次交易未选择文件即发送 {name}")
            return
        if sw == 0x6982:
            self.add("right_key", i, f"{name} on {ex.ef} before the right key granted it (6982)",
                     f"对 {ex.ef} 发送 {name} 之前未用正确密钥认证（6982）")
        spec = self.profile.file(ex.ef)
        data, _le = _parts(c)
        ins = c[1]
        if ins == 0xDC and c[0] == 0x04:
            self.secure_update(i, ex, spec.structure)
        elif ins == 0xDC and spec.structure is Structure.TLV_RECORDS:
            self.add("sm_per_spec", i, f"TLV record of {ex.ef} written without secure messaging",
                     f"{ex.ef} 的 TLV 记录未用安全报文写入")
        elif ins == 0xDC and spec.record_length and len(data) != spec.record_length:
            self.add("inside_layout", i, f"record of {len(data)} bytes written to {ex.ef} "
                     f"(records are {spec.record_length})",
                     f"向 {ex.ef} 写入 {len(data)} 字节记录（记录长 {spec.record_length}）")
        elif ins == 0xD6:
            self.binary_update(i, ex, data)
        elif ins == 0xD2 and c[0] == 0x84 and sw == 0x9000:
            self.marked.add((ex.ef, c[2]))

    def secure_update(self, i: int, ex: Exchange, structure: Structure) -> None:
        c = ex.command
        challenge = self.take_challenge(i, f"secure-messaging UPDATE RECORD {c[2]} of {ex.ef}")
        if structure is not Structure.TLV_RECORDS:
            self.add("sm_per_spec", i, f"secure messaging on {ex.ef}, which holds no TLV records",
                     f"对非 TLV 文件 {ex.ef} 使用安全报文")
            return
        if challenge is None:
            return
        family = self.profile.df(ex.df).sm_key
        sk = crypto.session_key(self.content.card_keys[family], challenge)
        try:
            tlv = crypto.sm_unwrap_update(sk, c[:5], c[5:5 + c[4]])
        except (crypto.SecureMessagingError, ValueError) as exc:
            self.add("sm_per_spec", i, f"secure-messaging UPDATE RECORD of {ex.ef} is not built "
                     f"per §4 (recomputed with the test keys): {exc}",
                     f"{ex.ef} 的安全报文更新未按 §4 构造（按测试密钥重算）：{exc}")
            return
        spec = self.profile.file(ex.ef)
        n = c[2]
        if not 1 <= n <= len(spec.items) or tlv[:1] != bytes([spec.items[n - 1]]) or \
                len(tlv) != self.profile.item(spec.items[n - 1]).length + 2:
            self.add("inside_layout", i, f"TLV {tlv[:2].hex().upper()}… does not fit record {n} "
                     f"of {ex.ef}", f"TLV {tlv[:2].hex().upper()}… 不符合 {ex.ef} 第 {n} 条记录")

    def binary_update(self, i: int, ex: Exchange, data: bytes) -> None:
        c = ex.command
        spec = self.profile.file(ex.ef or "")
        offset = int.from_bytes(c[2:4], "big")
        if offset + len(data) > (spec.size or 0):
            self.add("inside_layout", i, f"UPDATE BINARY of {ex.ef} at {offset} + {len(data)} "
                     f"bytes passes its end ({spec.size})",
                     f"对 {ex.ef} 的 UPDATE BINARY（偏移 {offset}，{len(data)} 字节）超出文件末尾")
        fid = (ex.ef or "").split("/")[-1]
        for path, index in self.profile.files.items():
            if fid in index.index_of:
                slot = index.index_of.index(fid) + 1
                if (path, slot) not in self.marked:
                    self.add("index_before_write", i, f"{ex.ef} written before slot {slot} was "
                             f"marked in {path} (84 D2 {slot:02X} 04)",
                             f"写 {ex.ef} 之前未在 {path} 中标记第 {slot} 条（84 D2）")
                    self.marked.add((path, slot))  # once per slot

    def after(self, i: int, ex: Exchange) -> None:
        """What the answer asks of the next command."""
        sw1, sw2 = ex.response[-2], ex.response[-1]
        if sw1 == 0x61:
            self.pending61 = sw2
        elif sw1 == 0x6C:
            self.pending6c = (ex.command, sw2)
        elif (sw1, sw2) != (0x90, 0x00) and not (
                ex.command[1] == 0xB2 and (sw1, sw2) == (0x6A, 0x83)):  # 6A83 ends a list
            self.stopped = ex.sw()

    def end(self) -> None:
        n = -1
        if self.pending61 is not None:
            self.add("get_response", n, f"the transaction ended after 61{self.pending61:02X} "
                     "without GET RESPONSE", f"收到 61{self.pending61:02X} 后未发送 GET RESPONSE")
        if self.pending6c is not None:
            self.add("corrected_le", n, f"the transaction ended after 6C{self.pending6c[1]:02X} "
                     "without resending", f"收到 6C{self.pending6c[1]:02X} 后未重发命令")


def judge_trace(profile: CardProfile, content: CardContent, trace: list[Exchange]) -> list[Finding]:
    """Every rule the terminal broke in one transaction on the card (a reset starts afresh)."""
    judge = _Judge(profile, content)
    for i, ex in enumerate(trace):
        if ex.reset:  # a power-up ends what came before (a terminal resets as it leaves)
            judge.end()
            judge.start()
        elif len(ex.command) >= 4:
            judge.command(i, ex)
    judge.end()
    return judge.findings
