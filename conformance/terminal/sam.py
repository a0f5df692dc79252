"""The test SAM of REFERENCE.md §7 (data: ``fixtures/terminal/sam.yaml``) and the judge of the
SAM commands a terminal sends.

80 DE P1 P2 derives the session key of key P2 from its factors (P1 0x2_: one, 0x4_: two) and
the card's challenge; 80 FA 00 00 encrypts (ECB), 80 FA 05 00 MACs (IV16 ‖ data, CBC, the last
block) with the last derived key; results wait for GET RESPONSE after 61xx. Files: MF/0015,
MF/0016 (terminal number), DF01/001A, 001B, 001C. No right is needed to use the keys: the PIN
(00 20) is checked when sent [choice: §7 does not say what the PIN protects].
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance import crypto
from conformance.card.content import CardContent
from conformance.model import load_key_set
from conformance.model.profile import CardProfile
from conformance.model.source import load_yaml
from conformance.resources import DEFAULT_TEST_KEYS
from conformance.terminal.cards import TERMINAL_DIR, Exchange
from conformance.terminal.judge import Finding

__all__ = ["VirtualSam", "judge_sam"]

SAM_FILE = TERMINAL_DIR / "sam.yaml"
SIZES = {"MF/0015": 14, "MF/0016": 6, "DF01/001A": 25, "DF01/001B": 180, "DF01/001C": 190}
OK, WRONG_LENGTH, NOT_FOUND, WRONG_P1P2 = b"\x90\x00", b"\x67\x00", b"\x6a\x82", b"\x6a\x86"
NO_EF, NO_KEY, BAD_DATA, NO_INS = b"\x69\x86", b"\x6a\x88", b"\x6a\x80", b"\x6d\x00"
NOT_SATISFIED = b"\x69\x85"


@dataclass
class VirtualSam:
    """The SAM as an ApduResponder."""

    keys: dict[int, tuple[str, bytes]]
    files: dict[str, bytes]
    pin: str
    atr_bytes: bytes
    df: str = "MF"
    ef: str | None = None
    key: bytes | None = None
    pending: bytes | None = None
    tries: int = 3
    log: list[str] = field(default_factory=list)

    @classmethod
    def load(cls) -> VirtualSam:
        from conformance.model import load_profile

        data = load_yaml(SAM_FILE).data
        master = load_key_set(DEFAULT_TEST_KEYS, load_profile()).master_keys
        files = {p: bytes(n) for p, n in SIZES.items()}
        files["MF/0016"] = bytes.fromhex(data["terminal_number"])
        for path, value in data.get("files", {}).items():
            files[path] = bytes.fromhex(value).ljust(SIZES[path], b"\x00")
        keys = {int(n): (fam, master[fam]) for n, fam in data["keys"].items()}
        return cls(keys, files, str(data["pin"]), bytes.fromhex(data["atr"]))

    @property
    def atr(self) -> bytes:
        return self.atr_bytes

    @property
    def current_df(self) -> str:
        return self.df

    @property
    def current_ef(self) -> str | None:
        return self.ef

    def reset(self) -> bytes:
        self.df, self.ef, self.key, self.pending = "MF", None, None, None
        return self.atr_bytes

    def process(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return WRONG_LENGTH
        cla, ins, p1, p2 = apdu[:4]
        data = apdu[5:5 + apdu[4]] if len(apdu) > 5 else b""
        if (cla, ins) == (0x00, 0xC0):
            return self._get_response(apdu)
        self.pending = None
        if (cla, ins) == (0x00, 0xA4):
            return self._select(data)
        if (cla, ins) == (0x00, 0xB0):
            return self._read(p1 << 8 | p2, apdu[4] if len(apdu) == 5 else 0)
        if (cla, ins) == (0x00, 0x20):
            return self._verify(data)
        if (cla, ins) == (0x80, 0xDE):
            return self._derive(p1, p2, data)
        if (cla, ins) == (0x80, 0xFA):
            return self._cipher(p1, data)
        return NO_INS

    def _select(self, fid: bytes) -> bytes:
        name = fid.hex().upper()
        if name == "3F00":
            self.df, self.ef = "MF", None
        elif name == "DF01":
            self.df, self.ef = "DF01", None
        elif f"{self.df}/{name}" in self.files:
            self.ef = f"{self.df}/{name}"
        else:
            return NOT_FOUND
        return OK

    def _read(self, offset: int, le: int) -> bytes:
        if self.ef is None:
            return NO_EF
        body = self.files[self.ef][offset:]
        if not body:
            return b"\x6b\x00"
        n = min(le or 256, len(body))
        if le and le > len(body):
            return bytes([0x6C, len(body)])
        return body[:n] + OK

    def _verify(self, digits: bytes) -> bytes:
        if self.tries == 0:
            return b"\x69\x83"
        if digits.hex().upper().rstrip("F") == self.pin:
            self.tries = 3
            return OK
        self.tries -= 1
        return bytes([0x63, 0xC0 | self.tries])

    def _derive(self, p1: int, p2: int, data: bytes) -> bytes:
        factors = {0x20: 1, 0x40: 2}.get(p1 & 0xF0)
        if factors is None:
            return WRONG_P1P2
        if p2 not in self.keys:
            return NO_KEY
        if len(data) not in (8 * factors, 8 * factors + 8):
            return WRONG_LENGTH
        key = self.keys[p2][1]
        for i in range(0, len(data), 8):
            key = crypto.diversify(key, data[i:i + 8])
        self.key = key
        return OK

    def _cipher(self, p1: int, data: bytes) -> bytes:
        if self.key is None:
            return NOT_SATISFIED
        if p1 == 0x00 and data and len(data) % 16 == 0:
            out = crypto.sm4_ecb_encrypt(self.key, data)
        elif p1 == 0x05 and len(data) > 16 and (len(data) - 16) % 16 == 0:
            out = crypto.sm4_cbc_encrypt(self.key, data[16:], data[:16])[-16:]
        else:
            return BAD_DATA if p1 in (0x00, 0x05) else WRONG_P1P2
        self.pending = out
        return bytes([0x61, len(out) & 0xFF])

    def _get_response(self, apdu: bytes) -> bytes:
        pending, self.pending = self.pending, None
        if pending is None:
            return NOT_SATISFIED
        le = apdu[4] if len(apdu) == 5 else 0
        if le and le != len(pending):
            self.pending = pending
            return bytes([0x6C, len(pending)])
        return pending + OK


def judge_sam(profile: CardProfile, content: CardContent, card: list[Exchange],
              sam: list[Exchange]) -> list[Finding]:
    """The SAM commands against the card they served: each 80 DE uses a key of the family and
    level the card's next command needs, CardNo8 (and CityCode8 for a level-2 key) as factors,
    and the card's latest challenge; a 61xx of the SAM is collected with GET RESPONSE."""
    table = VirtualSam.load().keys
    factor = content.card_number_factor
    city_place = profile.place(profile.spec.item_roles.city_code)
    city_ef = content.files[city_place.path]
    assert city_ef.records is not None and city_place.record is not None
    city8 = crypto.city_code_factor(city_ef.records[city_place.record - 1][2:])
    out: list[Finding] = []
    for i, ex in enumerate(sam):
        c = ex.command
        if ex.reset or len(c) < 5:
            continue
        if i + 1 < len(sam) and ex.response[-2] == 0x61 and sam[i + 1].command[:2] != b"\x00\xc0":
            out.append(Finding("sam", "the SAM's 61xx was not collected with GET RESPONSE",
                               "SAM 的 61xx 之后未发送 GET RESPONSE", i))
        if c[:2] != b"\x80\xde":
            continue
        family = table.get(c[3], ("?", b""))[0]
        level = profile.keys[family].level if family in profile.keys else 0
        data = c[5:5 + c[4]]
        n = {0x20: 1, 0x40: 2}.get(c[2] & 0xF0, 0)
        want = [factor] + ([city8] if level == 2 else [])
        got = [data[k:k + 8] for k in range(0, 8 * n, 8)]
        if family == "?" or n != level or got != want:
            out.append(Finding("sam", f"80 DE key {c[3]:02X} ({family}) with {n} factor(s) "
                               f"{' '.join(g.hex().upper() for g in got)}: the card needs "
                               f"level {level} factors {' '.join(w.hex().upper() for w in want)}",
                               f"80 DE 密钥 {c[3]:02X}（{family}）的分散因子不对："
                               f"卡片需要 {level} 级因子", i))
        challenge = data[8 * n:]
        latest = [r for t, r in _challenges(card) if t <= ex.at_s]
        if challenge and (not latest or challenge != latest[-1]):
            out.append(Finding("sam", "80 DE used a challenge that is not the card's latest",
                               "80 DE 使用的随机数不是卡片最新的随机数", i))
    return out


def _challenges(card: list[Exchange]) -> list[tuple[float, bytes]]:
    """(time, value) of every challenge the card issued, also through GET RESPONSE (T=0)."""
    out: list[tuple[float, bytes]] = []
    asked = False
    for x in card:
        if x.reset:
            asked = False
            continue
        if x.command[:4] == b"\x00\x84\x00\x00":
            asked = True
        elif x.command[:2] != b"\x00\xc0":
            asked = False
        if asked and x.response[-2:] == OK:
            out.append((x.at_s, x.response[:-2]))
            asked = False
    return out
