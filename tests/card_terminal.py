"""A minimal terminal for the suite's own card tests: raw APDUs and the crypto of §4.

It talks to any ApduResponder only through reset()/process(), derives the card keys the way
a terminal does (CardNo8 from the ATR, CityCode8 from item 57 read off the card), and keeps
a transcript. Deliberately independent of conformance.host, so the card is checked against
REFERENCE.md and not against another part of the suite.
"""

from __future__ import annotations

from conformance import crypto
from conformance.apdu import CommandAPDU
from conformance.iso7816 import (
    EXT_AUTH_P1,
    GET_CHALLENGE_P1P2,
    LE_WHOLE,
    MF_FID,
    RECORD_P2_BY_ID,
    RECORD_P2_BY_NUMBER,
    SELECT_P1_BY_FID,
    SELECT_P2_FCI,
)
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
            follow = self._apdu("get_response", 0, 0, le=response[1] or LE_WHOLE)
            response = self.card.process(follow)
            self.log.append((follow, response))
        return response

    def sw(self, apdu: bytes | str) -> int:
        return sw_of(self.send(apdu))

    def _apdu(self, name: str, p1: int, p2: int, data: bytes = b"",
              le: int | None = None) -> bytes:
        """The profile's command ``name`` with these parameters, encoded by CommandAPDU."""
        cla, ins = self.profile.command(name)
        return CommandAPDU(cla, ins, p1, p2, data, le).to_bytes()

    def reset(self) -> bytes:
        self.atr = self.card.reset()
        self.log.append((b"RESET", self.atr))
        return self.atr

    # ------------------------------------------------------------------ files
    def select(self, fid: str) -> int:
        return self.sw(self._apdu("select", SELECT_P1_BY_FID, SELECT_P2_FCI, h(fid)))

    def select_path(self, path: str) -> int:
        """Select a DF or DF/EF from wherever the card is (MF first, then down)."""
        sw = self.select(MF_FID)
        for fid in self.profile.select_path(path):
            sw = self.select(fid)
            if sw != 0x9000:
                return sw
        return sw

    def read_record(self, n: int, le: int = 0, *, p2: int = RECORD_P2_BY_NUMBER
                    ) -> tuple[bytes, int]:
        """READ RECORD with the Le byte ``le`` (00: the whole record)."""
        r = self.send(self._apdu("read_record", n, p2, le=le or LE_WHOLE))
        return r[:-2], sw_of(r)

    def read_binary(self, offset: int, le: int = 0) -> tuple[bytes, int]:
        r = self.send(self._apdu("read_binary", offset >> 8, offset & 0xFF, le=le or LE_WHOLE))
        return r[:-2], sw_of(r)

    def update_binary(self, offset: int, data: bytes) -> int:
        return self.sw(self._apdu("update_binary", offset >> 8, offset & 0xFF, data))

    def update_record(self, n: int, data: bytes, p2: int = RECORD_P2_BY_NUMBER) -> int:
        return self.sw(self._apdu("update_record", n, p2, data))

    def _read_city(self) -> bytes | None:
        city = self.profile.role_item("city_code")
        place = self.profile.place(city)
        self.select_path(place.path)
        data, sw = self.read_record(city, p2=RECORD_P2_BY_ID)
        return data[2:4] if sw == 0x9000 and len(data) >= 4 else None

    # ------------------------------------------------------------------ security
    def card_key(self, family: str) -> bytes:
        level = self.keys.levels[family]
        return crypto.card_key(self.keys.master_keys[family], level, self.card_no, self.city8)

    def challenge(self) -> bytes:
        p1, p2 = GET_CHALLENGE_P1P2
        r = self.send(self._apdu("get_challenge", p1, p2,
                                 le=self.profile.spec.security.challenge_length))
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
        end = self.profile.spec.security.ext_auth_trailer if trailer is None else trailer
        data = bytes(cryptogram8) + bytes(x8) + bytes([end])
        return self._apdu("external_authenticate", EXT_AUTH_P1, kid, data)

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
        name = "erase_record" if erase else "mark_record"
        return self.sw(self._apdu(name, n, RECORD_P2_BY_NUMBER, le=LE_WHOLE if le else None))
