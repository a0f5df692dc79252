"""A minimal terminal for the suite's own card tests: raw APDUs and the crypto of §4.

It talks to any ApduResponder only through reset()/process(), derives the card keys the way
a terminal does (CardNo8 from the ATR, CityCode8 from item 57 read off the card), and keeps
a transcript. Deliberately independent of conformance.host, so the card is checked against
REFERENCE.md and not against another part of the suite.
"""

from __future__ import annotations

from conformance import crypto
from conformance.apdu import CommandAPDU
from conformance.iso7816 import EXT_AUTH_P1
from conformance.model import CardProfile, KeySet
from conformance.transport.base import ApduResponder


def h(text: str) -> bytes:
    """Hex with optional spaces → bytes."""
    return bytes.fromhex(text.replace(" ", ""))


def sw_of(response: bytes) -> int:
    return int.from_bytes(response[-2:], "big")


def _eight(challenge: bytes) -> bytes:
    """A challenge as 8 bytes even when a faulty card returned none or a wrong length."""
    return challenge.ljust(8, b"\x00")[:8]


class Terminal:
    """Sends APDUs, authenticates and writes under SM like a health-card terminal."""

    def __init__(self, card: ApduResponder, profile: CardProfile, keys: KeySet,
                 *, get_response: bool = False) -> None:
        self.card = card
        self.profile = profile
        self.keys = keys
        self.get_response = get_response
        self.log: list[tuple[bytes, bytes]] = []
        self.atr = card.reset()
        self.card_no = profile.card_number_factor(self.atr)
        self.city8 = crypto.city_code_factor(self._read_city() or b"\xff\xff")
        self.reset()

    # ------------------------------------------------------------------ exchange
    def send(self, apdu: bytes | str) -> bytes:
        """One APDU; with get_response, a 61xx is followed by GET RESPONSE (both logged)."""
        raw = h(apdu) if isinstance(apdu, str) else bytes(apdu)
        response = self.card.process(raw)
        self.log.append((raw, response))
        if self.get_response and len(response) == 2 and response[0] == 0x61:
            cla, ins = self.profile.command("get_response")
            follow = bytes([cla, ins, 0, 0, response[1]])
            response = self.card.process(follow)
            self.log.append((follow, response))
        return response

    def sw(self, apdu: bytes | str) -> int:
        return sw_of(self.send(apdu))

    def reset(self) -> bytes:
        self.atr = self.card.reset()
        self.log.append((b"RESET", self.atr))
        return self.atr

    # ------------------------------------------------------------------ files
    def select(self, fid: str) -> int:
        cla, ins = self.profile.command("select")
        return self.sw(bytes([cla, ins, 0, 0, 2]) + h(fid))

    def select_path(self, path: str) -> int:
        """Select a DF or DF/EF from wherever the card is (MF first, then down)."""
        sw = self.select("3F00")
        for fid in self.profile.select_path(path):
            sw = self.select(fid)
            if sw != 0x9000:
                return sw
        return sw

    def read_record(self, n: int, le: int = 0, *, p2: int = 0x04) -> tuple[bytes, int]:
        cla, ins = self.profile.command("read_record")
        r = self.send(bytes([cla, ins, n, p2, le]))
        return r[:-2], sw_of(r)

    def read_binary(self, offset: int, le: int = 0) -> tuple[bytes, int]:
        cla, ins = self.profile.command("read_binary")
        r = self.send(bytes([cla, ins, offset >> 8, offset & 0xFF, le]))
        return r[:-2], sw_of(r)

    def update_binary(self, offset: int, data: bytes) -> int:
        cla, ins = self.profile.command("update_binary")
        return self.sw(bytes([cla, ins, offset >> 8, offset & 0xFF, len(data)]) + data)

    def update_record(self, n: int, data: bytes, p2: int = 0x04) -> int:
        cla, ins = self.profile.command("update_record")
        return self.sw(bytes([cla, ins, n, p2, len(data)]) + data)

    def _read_city(self) -> bytes | None:
        city = next(n for n, item in self.profile.items.items() if "code:city" in item.rules)
        place = self.profile.place(city)
        self.select_path(place.path)
        data, sw = self.read_record(city, p2=0x00)
        return data[2:4] if sw == 0x9000 and len(data) >= 4 else None

    # ------------------------------------------------------------------ security
    def card_key(self, family: str) -> bytes:
        level = self.keys.levels[family]
        return crypto.card_key(self.keys.master_keys[family], level, self.card_no, self.city8)

    def challenge(self) -> bytes:
        cla, ins = self.profile.command("get_challenge")
        r = self.send(bytes([cla, ins, 0, 0, self.profile.spec.security.challenge_length]))
        return r[:-2] if sw_of(r) == 0x9000 else b""

    def authenticate(self, family: str, *, wrong: bool = False, trailer: int | None = None,
                     challenge: bytes | None = None) -> int:
        """GET CHALLENGE (unless given) and EXTERNAL AUTHENTICATE with key ``family``."""
        if challenge is None:
            challenge = self.challenge()
        kid = self.profile.key(family).kid
        assert kid is not None
        x = bytes(range(1, 9))
        key = self.card_key(family)
        if wrong:
            key = bytes(b ^ 0x5A for b in key)
        c = crypto.auth_cryptogram(crypto.session_key(key, _eight(challenge)), x)
        return self.sw(self.ext_auth_apdu(kid, c, x, trailer=trailer))

    def ext_auth_apdu(self, kid: int, cryptogram8: bytes, x8: bytes, *,
                      trailer: int | None = None) -> bytes:
        """EXTERNAL AUTHENTICATE C' ‖ X ‖ trailer (the profile's, unless given) for KID."""
        cla, ins = self.profile.command("external_authenticate")
        end = self.profile.spec.security.ext_auth_trailer if trailer is None else trailer
        data = bytes(cryptogram8) + bytes(x8) + bytes([end])
        return CommandAPDU(cla, ins, EXT_AUTH_P1, kid, data).to_bytes()

    def sm_apdu(self, df: str, record: int, tlv: bytes, *, bad_mac: bool = False,
                challenge: bytes | None = None) -> bytes:
        """The update_record_sm APDU for ``tlv`` under the STK of ``df`` (takes a challenge
        unless given)."""
        if challenge is None:
            challenge = self.challenge()
        sk = crypto.session_key(self.card_key(self.profile.df(df).sm_key), _eight(challenge))
        command = self.profile.command("update_record_sm")
        apdu = bytearray(crypto.sm_wrap_update(sk, record, tlv, command=command))
        if bad_mac:
            apdu[-1] ^= 0x01
        return bytes(apdu)

    def sm_update(self, df: str, record: int, tlv: bytes, *, bad_mac: bool = False) -> int:
        return self.sw(self.sm_apdu(df, record, tlv, bad_mac=bad_mac))

    def mark(self, n: int, *, erase: bool = False, le: bool = True) -> int:
        cla, ins = self.profile.command("erase_record" if erase else "mark_record")
        return self.sw(bytes([cla, ins, n, 0x04]) + (b"\x00" if le else b""))
