"""The virtual card's persistent content (its EEPROM) and the JSON image that stores it.

Everything here is built from the profile: the file tree, the record lengths, the empty coding
of every item and the key families. Personalization writes the cardholder's items; the card
keys are derived once, here, from the master keys, the card-number factor and the city code
(REFERENCE.md §3–§4). The faults of the FS and DATA groups act at this point, because that is
where a real card's file system and personalization would go wrong: the declared ones through
:mod:`conformance.card.deviations`, a few coding hooks in :class:`_Encoder`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance import crypto
from conformance.card.deviations import file_spec, patch_records, written_items
from conformance.card.faults import FaultSet
from conformance.model import codecs
from conformance.model.codecs import Coding
from conformance.model.personalization import KeySet, Personalization
from conformance.model.profile import CardProfile
from conformance.model.schema import Access, Structure

__all__ = [
    "IMAGE_FORMAT",
    "CardContent",
    "EFile",
    "build_content",
    "content_from_image",
    "content_to_image",
]

IMAGE_FORMAT = "rhc-virtual-card-image/1"
"""The ``format`` field of a card image; bump it when the JSON shape changes."""


@dataclass
class EFile:
    """One elementary file: its place in the tree, its access rules and its bytes."""

    path: str
    df: str
    fid: bytes
    structure: Structure
    access: Access
    tags: tuple[int, ...] = ()
    """TLV files: the data item (= tag) each record holds, in record order."""
    record_length: int = 0
    """Fixed-length record files (cyclic, linear fixed): the length of every record."""
    records: list[bytes] | None = None
    data: bytearray | None = None
    signature: tuple[int, int] | None = None
    """Transparent files with a record signature: (offset, length) of the signature field."""


@dataclass
class CardContent:
    """The persistent state of one card: files, card keys, retry counters and PIN."""

    card_number_factor: bytes
    files: dict[str, EFile]
    card_keys: dict[str, bytes] = field(repr=False)
    """Key family → the card's key (derived once at personalization)."""
    card_number_keys: dict[str, bytes] = field(repr=False)
    """Level-2 families → the first-level key div(MK, CardNo8) (only a faulty card uses it)."""
    retry: dict[str, int]
    pin: str | None = field(default=None, repr=False)
    pin_tries: int = 0
    other: Any = None
    """Feature co_branded: the other application's content (card/pboc.py OtherContent)."""


# --------------------------------------------------------------------------- encoding


class _Encoder:
    """Item codings as this card writes them: the profile's codecs, bent by DATA faults."""

    def __init__(self, faults: FaultSet) -> None:
        self.cn_pad_zero = faults.active("data_cn_pad_zero")
        self.an_pad_space = faults.active("data_an_pad_space")
        self.an_utf8 = faults.active("data_an_utf8")

    def _an_pad(self) -> bytes:
        return b" " if self.an_pad_space else b"\x00"

    def empty(self, coding: Coding, length: int) -> bytes:
        if coding is Coding.CN and self.cn_pad_zero:
            return bytes(length)
        if coding is Coding.AN:
            return self._an_pad() * length
        return codecs.empty(coding, length)

    def encode(self, coding: Coding, value: str, length: int) -> bytes:
        raw = codecs.encode(coding, value, length)  # validates the value the reference way
        if coding is Coding.CN and self.cn_pad_zero:
            return bytes.fromhex(value.ljust(2 * length, "0"))
        if coding is Coding.AN:
            text = value.encode("gbk")
            if self.an_utf8:
                text = value.encode("utf-8")
                while len(text) > length:
                    value = value[:-1]
                    text = value.encode("utf-8")
            return text.ljust(length, self._an_pad())
        return raw


def _city_item(profile: CardProfile) -> int:
    """The item whose first 2 bytes make CityCode8: the one coded against the city table."""
    found = [n for n, item in profile.items.items() if "code:city" in item.rules]
    if len(found) != 1:
        raise ValueError(f"the profile must have exactly one item with rule code:city, has {found}")
    return found[0]


def index_flags(profile: CardProfile, ef_items: list[int]) -> tuple[bytes, bytes]:
    """(used, free) flag bytes of an index file: its item's code table, listed in that order."""
    if not ef_items:
        raise ValueError("an index file must name its flag item")
    for rule in profile.item(ef_items[0]).rules:
        kind, _, table = rule.partition(":")
        if kind == "code":
            values = profile.spec.code_tables[table].values or []
            if len(values) != 2:
                raise ValueError(f"code table {table} must list exactly (used, free)")
            return bytes.fromhex(values[0]), bytes.fromhex(values[1])
    raise ValueError(f"item {ef_items[0]} has no code table of index flags")


def _layout_record(
    profile: CardProfile, layout: str, values: dict[int, str], size: int, enc: _Encoder
) -> bytes:
    """A cyclic record or transparent file: each layout field encoded or empty, cut to size."""
    out = bytearray()
    for f in sorted(profile.layout(layout), key=lambda f: f.offset):
        coding = Coding(f.coding)
        if f.item is not None and f.item in values:
            out += enc.encode(coding, values[f.item], f.length)
        else:
            out += enc.empty(coding, f.length)
    return bytes(out[:size]).ljust(size, b"\x00")


# --------------------------------------------------------------------------- the file tree


def _tlv_record(number: int, value: bytes, faults: FaultSet) -> bytes:
    """tag ‖ len ‖ value (the tag is the item number), bent by the hook data_tlv_value_short."""
    if faults.active("data_tlv_value_short"):
        value = value[:-1]
    return bytes([number, len(value)]) + value


def blank_files(profile: CardProfile, faults: FaultSet) -> dict[str, EFile]:
    """Every EF of the card's file tree (the profile's, as bent by the layout and access
    faults) in its initial, unpersonalized state."""
    enc = _Encoder(faults)
    files: dict[str, EFile] = {}
    for path in profile.files:
        ef = file_spec(profile, path, faults)
        if ef is None:  # a missing file
            continue
        df = path.partition("/")[0]
        base = EFile(path, df, bytes.fromhex(ef.fid), ef.structure, ef.access)
        if ef.structure is Structure.TLV_RECORDS:
            base.tags = tuple(ef.items)
            base.records = [
                _tlv_record(n, enc.empty(profile.item(n).coding, profile.item(n).length), faults)
                for n in ef.items
            ]
        elif ef.structure is Structure.CYCLIC:
            length = ef.record_length or 0
            base.record_length = length
            empty = _layout_record(profile, ef.layout or "", {}, length, enc)
            base.records = [empty] * (ef.records or 0)
        elif ef.structure is Structure.LINEAR_FIXED:
            free = index_flags(profile, ef.items)[1] if ef.items else b"\x00"
            if faults.active("data_index_flags_01"):
                free = bytes.fromhex(faults.fault("data_index_flags_01").value)
            base.record_length = ef.record_length or 0
            base.records = [free * base.record_length] * (ef.records or 0)
        else:
            size = ef.size or 0
            if ef.layout is None:
                base.data = bytearray(size)
            else:
                base.data = bytearray(_layout_record(profile, ef.layout, {}, size, enc))
                for field_ in profile.layout(ef.layout):
                    if field_.role == "signature":
                        base.signature = (field_.offset, field_.length)
        files[path] = base
    return files


# --------------------------------------------------------------------------- personalization


def derive_card_keys(
    profile: CardProfile, keys: KeySet, factor: bytes, city_bcd: bytes
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(card keys, first-level keys of level-2 families) for a card number and city code."""
    city8 = crypto.city_code_factor(city_bcd)
    card: dict[str, bytes] = {}
    first: dict[str, bytes] = {}
    for name, family in profile.keys.items():
        level = keys.levels.get(name, family.level)
        card[name] = crypto.card_key(keys.master_keys[name], level, factor, city8)
        if level == 2:
            first[name] = crypto.diversify(keys.master_keys[name], factor)
    return card, first


def _altered_card_number(value: str) -> str:
    """The card number with one digit changed, so it no longer equals the ID number."""
    for i in range(len(value) - 2, -1, -1):
        if value[i].isdigit():
            return value[:i] + str((int(value[i]) + 1) % 10) + value[i + 1 :]
    return "9" + value[1:] if value else "1"


def build_content(
    profile: CardProfile, personalization: Personalization, keys: KeySet, faults: FaultSet,
    *, with_pin: bool,
) -> CardContent:
    """A personalized card: blank files, the cardholder's items, card keys, full counters."""
    files = blank_files(profile, faults)
    enc = _Encoder(faults)
    items = dict(personalization.items)
    city = _city_item(profile)
    city_bcd = profile.encode_item(city, items.get(city, ""))
    items = written_items(items, faults)  # the keys keep the true city code
    f = faults.fault("data_card_number_altered")
    if faults.active(f.name):
        items[int(f.target)] = _altered_card_number(items.get(int(f.target), ""))
    if faults.active("data_dates_ddmmyyyy"):
        for n, v in items.items():
            if "date" in profile.item(n).rules and len(v) == 8:
                items[n] = v[6:] + v[4:6] + v[:4]
    for ef in files.values():
        if ef.structure is Structure.TLV_RECORDS and ef.records is not None:
            for r, n in enumerate(ef.tags, start=1):
                if n in items:
                    item = profile.item(n)
                    value = enc.encode(Coding(item.coding), items[n], item.length)
                    ef.records[r - 1] = _tlv_record(n, value, faults)
    for path, records in personalization.cyclic.items():
        ef = files.get(path)
        spec = profile.file(path)
        if ef is None or ef.records is None or ef.structure is not spec.structure:
            continue
        for i, values in enumerate(records[: len(ef.records)]):
            ef.records[i] = _layout_record(profile, spec.layout or "", values, ef.record_length,
                                           enc)
    patch_records(files, faults)
    card_keys, first = derive_card_keys(profile, keys, personalization.card_number_factor,
                                        city_bcd)
    pin = personalization.pin
    if with_pin and pin is None:
        raise ValueError("feature 'pin' needs a PIN in the personalization")
    limit = profile.spec.security.retry_limit
    return CardContent(
        card_number_factor=personalization.card_number_factor,
        files=files,
        card_keys=card_keys,
        card_number_keys=first,
        retry={name: limit for name in profile.keys},
        pin=pin,
        pin_tries=profile.spec.security.pin.tries,
    )


# --------------------------------------------------------------------------- JSON image


def content_to_image(content: CardContent, profile: CardProfile) -> dict[str, Any]:
    """The JSON-ready image of a card: everything persistent, nothing volatile."""
    files: dict[str, Any] = {}
    for path, ef in content.files.items():
        entry: dict[str, Any] = {"structure": str(ef.structure)}
        if ef.records is not None:
            entry["records"] = [r.hex().upper() for r in ef.records]
        else:
            entry["data"] = bytes(ef.data or b"").hex().upper()
        files[path] = entry
    return {
        "format": IMAGE_FORMAT,
        "profile": {"name": profile.spec.profile.name, "sha256": profile.sha256},
        "card_number_factor": content.card_number_factor.hex().upper(),
        "files": files,
        "card_keys": {k: v.hex().upper() for k, v in content.card_keys.items()},
        "card_number_keys": {k: v.hex().upper() for k, v in content.card_number_keys.items()},
        "retry_counters": dict(content.retry),
        "pin": content.pin,
        "pin_tries": content.pin_tries,
    }


class _ImageReader:
    """Field access on a parsed image with errors that name the image and the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ValueError:
        return ValueError(f"{self.source}: {where}: {message}")

    def hex(self, where: str, value: Any, length: int | None = None) -> bytes:
        if not isinstance(value, str):
            raise self.fail(where, "must be a hex string")
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise self.fail(where, f"{value[:40]!r} is not hexadecimal") from None
        if length is not None and len(raw) != length:
            raise self.fail(where, f"must be {length} bytes, is {len(raw)}")
        return raw

    def mapping(self, where: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "must be a JSON object")
        return value

    def counter(self, where: str, value: Any, limit: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
            raise self.fail(where, f"must be an integer 0..{limit}")
        return value


def content_from_image(
    data: Any, profile: CardProfile, faults: FaultSet, source: str = "card image"
) -> CardContent:
    """Check an image against the profile (and the card's FS faults) and load it."""
    rd = _ImageReader(source)
    doc = rd.mapping("(top level)", data)
    if doc.get("format") != IMAGE_FORMAT:
        raise rd.fail("format", f"is {doc.get('format')!r}, expected {IMAGE_FORMAT!r}")
    prof = rd.mapping("profile", doc.get("profile"))
    name, sha = prof.get("name"), prof.get("sha256")
    if name != profile.spec.profile.name:
        raise rd.fail("profile.name", f"the image belongs to profile {name!r}, "
                      f"not {profile.spec.profile.name!r}")
    if sha != profile.sha256:
        raise rd.fail("profile.sha256", f"the image was made with another version of profile "
                      f"{name!r} ({str(sha)[:12]}… ≠ {profile.sha256[:12]}…)")
    factor_len = profile.spec.atr.card_number_factor.length
    factor = rd.hex("card_number_factor", doc.get("card_number_factor"), factor_len)
    files = blank_files(profile, faults)
    stored = rd.mapping("files", doc.get("files"))
    if set(stored) != set(files):
        missing = sorted(set(files) - set(stored))
        extra = sorted(set(stored) - set(files))
        raise rd.fail("files", f"file tree mismatch: missing {missing}, unexpected {extra}")
    for path, ef in files.items():
        entry = rd.mapping(f"files.{path}", stored[path])
        if entry.get("structure") != str(ef.structure):
            raise rd.fail(f"files.{path}.structure",
                          f"is {entry.get('structure')!r}, the profile says {ef.structure}")
        if ef.records is not None:
            recs = entry.get("records")
            if not isinstance(recs, list) or len(recs) != len(ef.records):
                raise rd.fail(f"files.{path}.records", f"must be a list of {len(ef.records)}")
            ef.records = [
                rd.hex(f"files.{path}.records[{i}]", v, len(ef.records[i]))
                for i, v in enumerate(recs)
            ]
        else:
            size = len(ef.data or b"")
            ef.data = bytearray(rd.hex(f"files.{path}.data", entry.get("data"), size))
    card_keys = rd.mapping("card_keys", doc.get("card_keys"))
    first = rd.mapping("card_number_keys", doc.get("card_number_keys", {}))
    if set(card_keys) != set(profile.keys):
        raise rd.fail("card_keys", f"must hold exactly the key families {sorted(profile.keys)}")
    limit = profile.spec.security.retry_limit
    retry = rd.mapping("retry_counters", doc.get("retry_counters"))
    if set(retry) != set(profile.keys):
        raise rd.fail("retry_counters", "must hold one counter per key family")
    pin = doc.get("pin")
    digits = 2 * profile.spec.security.pin.length_bytes
    if pin is not None and not (isinstance(pin, str) and pin.isdigit() and len(pin) == digits):
        raise rd.fail("pin", f"must be null or {digits} decimal digits")
    return CardContent(
        card_number_factor=factor,
        files=files,
        card_keys={k: rd.hex(f"card_keys.{k}", v, crypto.BLOCK) for k, v in card_keys.items()},
        card_number_keys={
            k: rd.hex(f"card_number_keys.{k}", v, crypto.BLOCK) for k, v in first.items()
        },
        retry={k: rd.counter(f"retry_counters.{k}", v, limit) for k, v in retry.items()},
        pin=pin,
        pin_tries=rd.counter("pin_tries", doc.get("pin_tries"), profile.spec.security.pin.tries),
    )


def read_image(path: Path | str) -> Any:
    """Parse an image file; ValueError naming the file when it is not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: card image not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON card image: {exc}") from None
