"""Personalization sets (what is written on a card) and key sets (the test master keys).

Both are YAML data checked against the profile when loaded: a value too long for its item,
an unknown item or a missing key family is a ProfileError naming file, key and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.model.codecs import CodingError
from conformance.model.profile import CardProfile
from conformance.model.schema import Structure
from conformance.model.source import ProfileError, YamlDocument, load_yaml


@dataclass
class Personalization:
    """The cardholder data and card-number factor of one card."""

    card_number_factor: bytes
    items: dict[int, str]
    pin: str | None = field(default=None, repr=False)
    cyclic: dict[str, list[dict[int, str]]] = field(default_factory=dict)
    source: Path | None = None


@dataclass(frozen=True)
class KeySet:
    """Master keys per key family and their diversification levels."""

    algorithm: str
    master_keys: dict[str, bytes] = field(repr=False)
    levels: dict[str, int]
    source: Path | None = None


def _hex_bytes(doc: YamlDocument, where: tuple[Any, ...], value: Any, length: int) -> bytes:
    try:
        raw = bytes.fromhex(str(value))
    except ValueError:
        raise ProfileError(f"{doc.where(where)}: {value!r} is not hexadecimal") from None
    if len(raw) != length:
        raise ProfileError(f"{doc.where(where)}: must be {length} bytes, is {len(raw)}")
    return raw


def _mapping(doc: YamlDocument, where: tuple[Any, ...], value: Any) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ProfileError(f"{doc.where(where)}: must be a mapping")
    return value


def _text(value: Any) -> str:
    """A personalization value as text: an empty (null) value is the empty string."""
    return "" if value is None else str(value)


def load_personalization(path: Path | str, profile: CardProfile) -> Personalization:
    doc = load_yaml(path)
    data = _mapping(doc, (), doc.data)
    unknown = set(data) - {"card_number_factor", "pin", "items", "cyclic"}
    if unknown:
        key = sorted(map(str, unknown))[0]
        raise ProfileError(
            f"{doc.where((key,))}: unknown key (allowed: card_number_factor, pin, items, cyclic)"
        )
    if "card_number_factor" not in data:
        raise ProfileError(f"{doc.path}: key card_number_factor is missing")
    factor_len = profile.spec.atr.card_number_factor.length
    factor = _hex_bytes(doc, ("card_number_factor",), data["card_number_factor"], factor_len)
    pin = data.get("pin")
    if pin is not None:
        pin = str(pin)
        digits = 2 * profile.spec.security.pin.length_bytes
        if not (pin.isdigit() and len(pin) == digits):
            raise ProfileError(f"{doc.where(('pin',))}: a PIN is {digits} decimal digits")
    tlv = set(profile.tlv_items())
    items: dict[int, str] = {}
    for number, value in _mapping(doc, ("items",), data.get("items", {})).items():
        if not isinstance(number, int) or number not in tlv:
            raise ProfileError(
                f"{doc.where(('items', number))}: {number!r} is not a TLV data item "
                "of the profile (1..57)"
            )
        text = _text(value)
        try:
            profile.encode_item(number, text)
        except CodingError as exc:
            raise ProfileError(f"{doc.where(('items', number))}: {exc}") from None
        items[number] = text
    cyclic: dict[str, list[dict[int, str]]] = {}
    for fpath, records in _mapping(doc, ("cyclic",), data.get("cyclic", {})).items():
        ef = profile.files.get(fpath)
        if ef is None or ef.structure is not Structure.CYCLIC:
            raise ProfileError(f"{doc.where(('cyclic', fpath))}: not a cyclic file")
        if not isinstance(records, list) or len(records) > (ef.records or 0):
            raise ProfileError(
                f"{doc.where(('cyclic', fpath))}: a list of at most {ef.records} records"
            )
        fields = {f.item for f in profile.layout(ef.layout or "")}
        parsed = []
        for i, record in enumerate(records):
            record = _mapping(doc, ("cyclic", fpath, i), record)
            for number, value in record.items():
                if number not in fields:
                    raise ProfileError(
                        f"{doc.where(('cyclic', fpath, i, number))}: "
                        f"item {number} is not a field of {fpath}"
                    )
                try:
                    profile.encode_item(number, _text(value))
                except CodingError as exc:
                    raise ProfileError(
                        f"{doc.where(('cyclic', fpath, i, number))}: {exc}"
                    ) from None
            parsed.append({int(k): _text(v) for k, v in record.items()})
        cyclic[fpath] = parsed
    return Personalization(factor, items, pin, cyclic, doc.path)


def load_key_set(path: Path | str, profile: CardProfile) -> KeySet:
    """Load a master-key file and check it covers every key family at the profile's levels."""
    doc = load_yaml(path)
    data = _mapping(doc, (), doc.data)
    masters = _mapping(doc, ("master_keys",), data.get("master_keys"))
    levels = _mapping(doc, ("levels",), data.get("levels", {}))
    keys: dict[str, bytes] = {}
    for name, family in profile.keys.items():
        if name not in masters:
            raise ProfileError(f"{doc.where(('master_keys',))}: key family {name} is missing")
        keys[name] = _hex_bytes(doc, ("master_keys", name), masters[name], 16)
        if name in levels and levels[name] != family.level:
            raise ProfileError(
                f"{doc.where(('levels', name))}: level {levels[name]} disagrees with the "
                f"profile's level {family.level} for {name}"
            )
    extra = set(masters) - set(profile.keys)
    if extra:
        name = sorted(extra)[0]
        raise ProfileError(f"{doc.where(('master_keys', name))}: not a key family of the profile")
    algorithm = str(data.get("algorithm", "SM4"))
    if algorithm != "SM4":
        raise ProfileError(f"{doc.where(('algorithm',))}: only SM4 is supported")
    return KeySet(algorithm, keys, {n: f.level for n, f in profile.keys.items()}, doc.path)
