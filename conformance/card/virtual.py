"""The reference virtual card: an ApduResponder built only from the profile, a
personalization and a key set.

It is the suite's yardstick: it behaves byte for byte as REFERENCE.md says, so every
conformance case can be shown to PASS against it, and, carrying faults from the defect
catalogue (``conformance.card.faults``), to FAIL where a real card would go wrong.

    card = VirtualCard.personalize(profile, personalization, keys)
    atr = card.reset()
    card.process(bytes.fromhex("00A4000002DDF1"))   # → 9000
    card.save_image("card.json"); VirtualCard.from_image("card.json", profile)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conformance.card.commands import CardOS
from conformance.card.content import (
    CardContent,
    build_content,
    content_from_image,
    content_to_image,
    read_image,
)
from conformance.card.faults import FaultSet, fault_catalogue
from conformance.card.hooks import FaultyCardOS
from conformance.model.application import OtherApplication, load_application
from conformance.model.personalization import KeySet, Personalization
from conformance.model.profile import CardProfile

__all__ = ["CO_BRANDED", "DEFAULT_OTHER_APPLICATION", "VirtualCard", "check_features"]

CO_BRANDED = "co_branded"
"""The feature (REFERENCE.md §6) under which the card carries another application."""
DEFAULT_OTHER_APPLICATION = "pboc-pse"
"""The application profile the co-branded virtual card carries unless told another."""
OTHER_IMAGE_KEY = "other_application"
"""Where a card image keeps the other application's content."""


def check_features(profile: CardProfile, features: Iterable[str]) -> frozenset[str]:
    """The features as a frozenset; ValueError naming the profile's features if one is unknown."""
    chosen = frozenset(features)
    unknown = sorted(chosen - profile.spec.features.keys())
    if unknown:
        known = ", ".join(sorted(profile.spec.features))
        raise ValueError(f"unknown feature(s) {', '.join(unknown)}; "
                         f"profile {profile.spec.profile.name} declares: {known}")
    return chosen


def _build_atr(profile: CardProfile, factor: bytes, faults: FaultSet) -> bytes:
    """profile.atr(factor), bent by the ATR faults the card carries."""
    if faults.active("atr_wrong_card_number"):
        factor = factor[:-1] + bytes([factor[-1] ^ 0xFF])
    atr = bytearray(profile.atr(factor))
    spec = profile.spec.atr
    if faults.active("atr_inverse_ts"):
        atr[0] = int(faults.fault("atr_inverse_ts").value, 16)
    if faults.active("atr_wrong_t0_count"):
        atr[1] = (atr[1] & 0xF0) | ((atr[1] - 1) & 0x0F)
    f = faults.fault("atr_wrong_spec_year")
    if faults.active(f.name):
        offset = 2 + len(bytes.fromhex(spec.interface_bytes))
        for hist in spec.historical:
            if hist.name == f.target:
                atr[offset : offset + hist.length] = bytes.fromhex(f.value)[: hist.length]
            offset += hist.length
    return bytes(atr)


class VirtualCard:
    """The reference resident health card in software (REFERENCE.md §1, §3, §5, §6).

    ``features`` are the optional features the simulated product declares (``pin``,
    ``t0_get_response``, …); ``faults`` are names from the profile's fault catalogue
    (:func:`conformance.card.faults.fault_catalogue`).
    """

    def __init__(
        self,
        profile: CardProfile,
        content: CardContent,
        *,
        features: Iterable[str] = frozenset(),
        faults: Iterable[str] = frozenset(),
        other_application: OtherApplication | str | None = None,
        other_image: Any = None,
    ) -> None:
        self.profile = profile
        self.features = check_features(profile, features)
        self.faults = FaultSet(faults, fault_catalogue(profile))
        required = {name: self.faults.fault(name).requires for name in self.faults.names}
        missing = sorted(
            f"{name} (needs feature {feature})"
            for name, feature in required.items()
            if feature and feature not in self.features
        )
        if missing:
            raise ValueError(f"fault(s) {', '.join(missing)} cannot show without the feature")
        if "pin" in self.features and content.pin is None:
            raise ValueError("feature 'pin' needs a card with a PIN (none personalized)")
        self.content = content
        self.other_application = self._other_application(other_application, other_image)
        hooked = any(self.faults.fault(n).kind == "hook" for n in self.faults.names)
        card_os = FaultyCardOS if hooked else CardOS  # the reference card asks no fault
        self._os = card_os(profile, content, self.features, self.faults,
                           self.other_application)
        self._atr = _build_atr(profile, content.card_number_factor, self.faults)
        self.latency_s = 0.0
        """Time the card takes for every answer (reset included), as a real card would."""
        self.byte_s = 0.0
        """Time per byte that crosses the interface (command, response or ATR)."""
        slow = self.faults.fault("slow_card") if self.faults.active("slow_card") else None
        self._slow_s = float(slow.value) / 1000.0 if slow is not None else 0.0

    def _other_application(self, app: OtherApplication | str | None,
                           image: Any) -> OtherApplication | None:
        """Feature co_branded: the application profile the card carries beside DDF1, its
        content issued fresh or taken from the card image (``other_image``)."""
        if CO_BRANDED not in self.features:
            return None
        from conformance.card.pboc import build_other_content, other_from_image

        if not isinstance(app, OtherApplication):
            app = load_application(app or DEFAULT_OTHER_APPLICATION)
        if self.content.other is None:
            self.content.other = (build_other_content(app) if image is None
                                  else other_from_image(image, app, "card image"))
        return app

    def shape_timing(self, latency_ms: float = 0.0, byte_us: float = 0.0) -> None:
        """Make the card take ``latency_ms`` per answer and ``byte_us`` per byte on the wire
        (``--card-latency-ms``, ``--card-byte-us``), so that timing limits are exercised."""
        self.latency_s = latency_ms / 1000.0
        self.byte_s = byte_us / 1e6

    def _take_time(self, nbytes: int) -> None:
        """Spend the answer's time (a real sleep: through vpcd the reader waits too)."""
        delay = self.latency_s + self._slow_s + self.byte_s * nbytes
        if delay > 0:
            time.sleep(delay)

    # ------------------------------------------------------------------ factories
    @classmethod
    def personalize(
        cls,
        profile: CardProfile,
        personalization: Personalization,
        keys: KeySet,
        *,
        features: frozenset[str] = frozenset(),
        faults: frozenset[str] = frozenset(),
        other_application: OtherApplication | str | None = None,
    ) -> VirtualCard:
        """A freshly personalized card: items written, card keys derived, counters full
        (with feature co_branded, the other application issued too)."""
        fault_set = FaultSet(faults, fault_catalogue(profile))
        feature_set = check_features(profile, features)
        content = build_content(profile, personalization, keys, fault_set,
                                 with_pin="pin" in feature_set)
        return cls(profile, content, features=feature_set, faults=fault_set.names,
                   other_application=other_application)

    @classmethod
    def from_image(
        cls,
        path: Path | str,
        profile: CardProfile,
        *,
        features: frozenset[str] = frozenset(),
        faults: frozenset[str] = frozenset(),
        other_application: OtherApplication | str | None = None,
    ) -> VirtualCard:
        """A card from a saved JSON image; ValueError if it belongs to another profile
        (name, sha256 or file tree) or is malformed. With feature co_branded, the other
        application's content comes from the image too when the image holds it."""
        fault_set = FaultSet(faults, fault_catalogue(profile))
        doc = read_image(path)
        content = content_from_image(doc, profile, fault_set, str(path))
        other = doc.get(OTHER_IMAGE_KEY) if isinstance(doc, dict) else None
        return cls(profile, content, features=features, faults=fault_set.names,
                   other_application=other_application, other_image=other)

    # ------------------------------------------------------------------ persistence
    def image(self) -> dict[str, Any]:
        """The card's persistent content as a JSON-ready dict (see :meth:`save_image`)."""
        image = content_to_image(self.content, self.profile)
        if self.other_application is not None and self.content.other is not None:
            from conformance.card.pboc import other_to_image

            image[OTHER_IMAGE_KEY] = other_to_image(self.content.other, self.other_application)
        return image

    def save_image(self, path: Path | str) -> None:
        """Write the persistent content (files, keys, counters, PIN) as JSON, atomically."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.image(), indent=1, ensure_ascii=False) + "\n",
                       encoding="utf-8")
        os.replace(tmp, path)

    # ------------------------------------------------------------------ ApduResponder
    @property
    def atr(self) -> bytes:
        return self._atr

    def reset(self) -> bytes:
        """Power up: clear the volatile state and return the ATR."""
        self._os.reset()
        if self.faults.active("atr_unstable"):  # the last historical byte counts resets
            self._atr = self._atr[:-1] + bytes([(self._atr[-1] + 1) & 0xFF])
        self._take_time(len(self._atr))
        return self._atr

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU with data ‖ SW1 SW2; never raises."""
        response = self._os.process(apdu)
        self._take_time(len(apdu) + len(response))
        return response

    # ------------------------------------------------------------------ for the suite's tests
    @property
    def current_df(self) -> str:
        return self._os.cur_df

    @property
    def current_ef(self) -> str | None:
        ef = self._os.cur_ef
        return None if ef is None else ef.path

    @property
    def last_error(self) -> BaseException | None:
        """The exception behind a 6F00 answer, if a handler ever failed (a card bug)."""
        return self._os.last_error

    def __repr__(self) -> str:
        extra = ""
        if self.features:
            extra += f", features={sorted(self.features)}"
        if self.faults:
            extra += f", faults={sorted(self.faults.names)}"
        factor = self.content.card_number_factor.hex().upper()
        return f"VirtualCard({self.profile.spec.profile.name}, card {factor}{extra})"
