"""Where the terminal's card-key cryptography comes from: a KeyProvider.

A production terminal never holds card keys: a SAM (PSAM) in a second reader derives the
session key inside itself and only hands back results (REFERENCE.md §7). The provider interface
is therefore shaped around what a SAM can answer — a cryptogram, a wrapped APDU — and never
returns a key. :class:`TestKeyProvider` computes the same answers in software from the public
test master keys, so the suite runs without a SAM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from conformance import crypto
from conformance.model import DEFAULT_TEST_KEYS, CardProfile, KeySet, load_key_set

__all__ = ["KeyProvider", "TestKeyProvider"]


@runtime_checkable
class KeyProvider(Protocol):
    """Computes what the terminal sends, for a key family, without revealing any key.

    ``card_no8`` and ``city8`` are the diversification factors the session read from the card
    (ATR and item 57); ``challenge`` is the card's last 8-byte challenge. A provider picks the
    diversification depth of ``family`` itself (the profile's ``level``).
    """

    def auth_cryptogram(
        self, family: str, card_no8: bytes, city8: bytes, challenge: bytes, x8: bytes
    ) -> bytes:
        """C' (8 bytes) of EXTERNAL AUTHENTICATE for X = ``x8`` under the session key of R."""
        ...

    def sm_update_apdu(
        self,
        family: str,
        card_no8: bytes,
        city8: bytes,
        challenge: bytes,
        p1: int,
        tlv: bytes,
        *,
        command: tuple[int, int],
    ) -> bytes:
        """The whole secure-messaging ``CLA INS p1 04 Lc E‖MAC`` APDU that writes ``tlv``;
        ``command`` is the profile's (CLA, INS) of update_record_sm."""
        ...


class TestKeyProvider:
    """Software key provider over a :class:`KeySet` of test master keys.

    Card key = div(MK, CardNo8) (then div(·, CityCode8) at level 2), session key = div(Kc, R),
    exactly as REFERENCE.md §4. The keys stay private: the repr names the key file and the
    families, never a key byte, so the provider can appear in logs and test ids.
    """

    __test__ = False  # not a pytest test class despite its name
    __slots__ = ("__keys",)

    def __init__(self, key_set: KeySet) -> None:
        self.__keys = key_set

    @classmethod
    def from_file(cls, path: Path | str, profile: CardProfile) -> TestKeyProvider:
        """Load a master-key YAML checked against the profile (every family, right levels)."""
        return cls(load_key_set(path, profile))

    @classmethod
    def default(cls, profile: CardProfile) -> TestKeyProvider:
        """The public test keys shipped in fixtures/ (never valid on a production card)."""
        return cls.from_file(DEFAULT_TEST_KEYS, profile)

    @property
    def families(self) -> frozenset[str]:
        """Key families this provider can compute for."""
        return frozenset(self.__keys.master_keys)

    @property
    def source(self) -> Path | None:
        """The key file this provider was loaded from, if any (for reports)."""
        return self.__keys.source

    def __repr__(self) -> str:
        source = self.__keys.source.name if self.__keys.source else "in-memory"
        return f"TestKeyProvider({source}, {len(self.__keys.master_keys)} families)"

    __str__ = __repr__

    def __reduce__(self) -> object:  # keep keys out of pickles/copies made by accident
        raise TypeError("a key provider is not picklable")

    def _session_key(
        self, family: str, card_no8: bytes, city8: bytes, challenge: bytes
    ) -> bytes:
        try:
            master = self.__keys.master_keys[family]
            level = self.__keys.levels[family]
        except KeyError:
            raise KeyError(f"the key set has no key family {family!r}") from None
        kc = crypto.card_key(master, level, bytes(card_no8), bytes(city8))
        return crypto.session_key(kc, bytes(challenge))

    def auth_cryptogram(
        self, family: str, card_no8: bytes, city8: bytes, challenge: bytes, x8: bytes
    ) -> bytes:
        sk = self._session_key(family, card_no8, city8, challenge)
        return crypto.auth_cryptogram(sk, bytes(x8))

    def sm_update_apdu(
        self,
        family: str,
        card_no8: bytes,
        city8: bytes,
        challenge: bytes,
        p1: int,
        tlv: bytes,
        *,
        command: tuple[int, int],
    ) -> bytes:
        sk = self._session_key(family, card_no8, city8, challenge)
        return crypto.sm_wrap_update(sk, p1, bytes(tlv), command=command)
