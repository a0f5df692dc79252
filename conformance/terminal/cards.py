"""Test cards: the reference virtual card, personalized and bent as a YAML file says.

A test card (``fixtures/terminal/cards/NAME.yaml``) names a personalization, a master-key set,
card features and faults of the defect catalogue, and states no personalization reaches: retry
counters (a blocked key), index flags and EE/ED records (the slot rule), and a behaviour of
the reader (slow answers, a card pulled out, 6Cxx to Le 00). :class:`ServedCard` puts it in a
reader and records every APDU it receives, with the card's current DF and EF around each.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conformance.card.content import _Encoder, _layout_record, index_flags
from conformance.card.faults import FaultSet
from conformance.card.virtual import VirtualCard
from conformance.model import load_key_set, load_personalization
from conformance.model.profile import CardProfile
from conformance.model.source import ProfileError, load_yaml
from conformance.resources import DEFAULT_TEST_KEYS, FIXTURES_DIR, PERSONALIZATIONS_DIR

__all__ = ["CARDS_DIR", "TERMINAL_DIR", "Exchange", "ServedCard", "TestCard", "load_test_card"]

TERMINAL_DIR = FIXTURES_DIR / "terminal"
CARDS_DIR = TERMINAL_DIR / "cards"


class Behaviour(BaseModel):
    """How the card in the reader answers, beyond what the card OS decides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delay_each_s: float = Field(default=0, ge=0)
    """Every answer comes this much later (a slow card inside the terminal's timeout)."""
    stall_at: int = Field(default=0, ge=0)
    """The n-th APDU (1-based) is answered only after the terminal's timeout_s plus
    ``stall_beyond_s`` (a slow card outside the timeout); 0: never."""
    stall_beyond_s: float = Field(default=2, ge=0)
    remove_at: int = Field(default=0, ge=0)
    """The card leaves the reader instead of answering the n-th APDU; 0: never."""
    le_00_answers_6c: bool = False
    """T=0: READ RECORD / READ BINARY with Le 00 answer 6C<length> (P3 = 00 means 256)."""


class TestCard(BaseModel):
    """One test card as data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title_zh: str
    title_en: str
    personalization: str = "default"
    keys: str = "test"
    features: list[str] = []
    faults: list[str] = []
    retry: dict[str, int] = {}
    index: dict[str, list[str]] = {}
    """Index file path → one flag per record, ``used`` or ``free``."""
    records: dict[str, dict[int, str]] = {}
    """EE/ED path → item values of the record the file holds."""
    behaviour: Behaviour = Behaviour()
    name: str = Field(default="", exclude=True)

    def build(self, profile: CardProfile) -> VirtualCard:
        """The virtual card this test card describes, freshly personalized."""
        card = VirtualCard.personalize(profile, load_personalization(self._path(), profile),
                                       load_key_set(self.keys_path(), profile),
                                       features=frozenset(self.features),
                                       faults=frozenset(self.faults))
        content = card.content
        for family, left in self.retry.items():
            if family not in content.retry:
                raise ValueError(f"test card {self.name}: retry: no key family {family}")
            content.retry[family] = left
        for path, flags in self.index.items():
            ef = content.files[path]
            used, free = index_flags(profile, profile.file(path).items)
            assert ef.records is not None
            for n, flag in enumerate(flags[: len(ef.records)]):
                ef.records[n] = (used if flag == "used" else free) * ef.record_length
        enc = _Encoder(FaultSet())
        for path, values in self.records.items():
            ef, spec = content.files[path], profile.file(path)
            assert ef.data is not None
            ef.data[:] = _layout_record(profile, spec.layout or "", values, len(ef.data), enc)
        return card

    def _path(self) -> Path:
        given = Path(self.personalization)
        if given.suffix in (".yaml", ".yml"):  # a file (a card sample's data, written out)
            return given
        named = PERSONALIZATIONS_DIR / f"{self.personalization}.yaml"
        local = TERMINAL_DIR / f"{self.personalization}.yaml"
        return named if named.exists() else local

    def keys_path(self) -> Path:
        """The master keys the card is personalized with (``test``: the suite's test keys)."""
        return DEFAULT_TEST_KEYS if self.keys == "test" else TERMINAL_DIR / f"{self.keys}.yaml"


def load_test_card(name: str) -> TestCard:
    """The test card ``fixtures/terminal/cards/NAME.yaml``; ProfileError (one line) if bad."""
    doc = load_yaml(CARDS_DIR / f"{name}.yaml")
    if not isinstance(doc.data, dict):
        raise ProfileError(f"{doc.path}: a test card is a mapping")
    try:
        return TestCard(**doc.data, name=name)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ProfileError(f"{doc.where(tuple(err['loc']))}: {err['msg']}") from None


@dataclass
class Exchange:
    """One APDU the served card (or SAM) received, its answer and the card's state around it."""

    command: bytes
    response: bytes
    df: str = ""
    ef: str | None = None
    df_after: str = ""
    ef_after: str | None = None
    at_s: float = 0.0
    reset: bool = False
    """A power-up (no command: the ATR is in ``response``)."""

    def sw(self) -> int:
        return int.from_bytes(self.response[-2:], "big") if len(self.response) >= 2 else 0

    def to_json(self) -> dict[str, Any]:
        if self.reset:
            return {"t_s": round(self.at_s, 4), "reset": True, "atr": self.response.hex().upper()}
        return {"t_s": round(self.at_s, 4), "c": self.command.hex().upper(),
                "r": self.response.hex().upper(), "df": self.df, "ef": self.ef}


@dataclass
class ServedCard:
    """An ApduResponder in front of a card: records, delays, stalls or leaves the reader."""

    card: Any
    behaviour: Behaviour = field(default_factory=Behaviour)
    timeout_s: float = 30.0
    trace: list[Exchange] = field(default_factory=list)
    remove: Callable[[], None] | None = None
    """Takes the card out of the reader (the bridge's stop); set by whoever serves it."""
    removed: bool = False
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def reset(self) -> bytes:
        atr = self.card.reset()
        with self._lock:
            self.trace.append(Exchange(b"", atr, at_s=self._now(), reset=True))
        return atr

    def cancel(self) -> None:
        """Ends a stall early (the transaction is over)."""
        self._cancel.set()

    def process(self, apdu: bytes) -> bytes:
        self._count += 1
        b = self.behaviour
        if b.remove_at and self._count >= b.remove_at:
            self.removed = True
            if self.remove is not None:
                self.remove()
            return b"\x6f\x00"
        if b.delay_each_s:
            self._cancel.wait(b.delay_each_s)
        if b.stall_at and self._count == b.stall_at:
            self._cancel.wait(self.timeout_s + b.stall_beyond_s)
        df, ef = getattr(self.card, "current_df", ""), getattr(self.card, "current_ef", None)
        answer = self.card.process(apdu)
        if b.le_00_answers_6c:
            answer = _bent_le(apdu, answer)
        with self._lock:
            self.trace.append(Exchange(bytes(apdu), bytes(answer), df, ef,
                                       getattr(self.card, "current_df", ""),
                                       getattr(self.card, "current_ef", None), self._now()))
        return answer

    @staticmethod
    def _now() -> float:
        return time.monotonic()  # one clock for card and SAM, so their traces interleave


def _bent_le(apdu: bytes, answer: bytes) -> bytes:
    """A READ RECORD / READ BINARY with P3 = 00 whose answer is not 256 bytes: 6C<length>."""
    if len(apdu) != 5 or apdu[0] != 0x00 or apdu[1] not in (0xB0, 0xB2) or apdu[4] != 0:
        return answer
    sw1, sw2 = answer[-2], answer[-1]
    length = (sw2 or 256) if sw1 == 0x61 else len(answer) - 2 if (sw1, sw2) == (0x90, 0) else 0
    return bytes([0x6C, length]) if 0 < length < 256 else answer
