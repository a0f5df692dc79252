"""What a card holds, in the terminal's words (TERMINAL.md "Values"), and what a write should
leave on it.

The suite reads the served card's content directly, so what a terminal printed is compared
with what the card holds, and the card after a write with the card before it plus exactly the
write that was asked.
"""

from __future__ import annotations

import copy

from conformance.card.content import CardContent, _Encoder, _layout_record, index_flags
from conformance.card.faults import FaultSet
from conformance.model.codecs import Coding
from conformance.model.profile import CardProfile
from conformance.model.schema import Structure

__all__ = [
    "SLOT_FILES",
    "apply_write",
    "card_items",
    "changed_items",
    "cyclic_records",
    "expected_slot",
    "slot_items",
    "snapshot",
]

SLOT_FILES = {
    "inpatient": ("DF03/EF05", 66, 135),
    "outpatient": ("DF03/EF06", 215, None),
}
"""Record kind → (index file, first date item, tie-break date item) of the slot rule."""

CYCLIC_FILES = {"allergy": "DF02/EF07", "immunization": "DF02/EF08"}


def value_of(coding: Coding, raw: bytes) -> str:
    """An item as the contract prints it: AN up to the first 00 (GBK), CN up to the first F
    nibble, B the whole item in upper-case hex."""
    if coding is Coding.AN:
        return raw.split(b"\x00", 1)[0].decode("gbk", errors="replace")
    if coding is Coding.CN:
        return raw.hex().upper().split("F", 1)[0]
    return raw.hex().upper()


def _tlv_raw(content: CardContent, path: str, record: int) -> bytes:
    ef = content.files[path]
    assert ef.records is not None
    return ef.records[record - 1][2:]


def card_items(profile: CardProfile, content: CardContent) -> dict[str, str]:
    """Items stored as TLV records (1–57 in the reference profile) by number, as text."""
    out: dict[str, str] = {}
    for n in profile.tlv_items():
        place = profile.place(n)
        assert place.record is not None
        out[str(n)] = value_of(profile.item(n).coding, _tlv_raw(content, place.path, place.record))
    return out


def _fields(profile: CardProfile, path: str, raw: bytes) -> dict[str, str]:
    spec = profile.file(path)
    return {str(f.item): value_of(Coding(f.coding), raw[f.offset:f.offset + f.length])
            for f in profile.layout(spec.layout or "") if f.item is not None}


def cyclic_records(profile: CardProfile, content: CardContent, kind: str) -> list[dict[str, str]]:
    """The records of a cyclic file, newest first, leaving out the all-unpersonalized ones."""
    path = CYCLIC_FILES[kind]
    ef = content.files[path]
    records = [_fields(profile, path, r) for r in ef.records or []]
    return [r for r in records if any(v for v in r.values())]


def slot_path(profile: CardProfile, kind: str, slot: int) -> str:
    index = profile.file(SLOT_FILES[kind][0])
    return f"DF03/{index.index_of[slot - 1]}"


def slot_items(profile: CardProfile, content: CardContent, kind: str, slot: int) -> dict[str, str]:
    """Every item of the layout of one EE/ED record."""
    path = slot_path(profile, kind, slot)
    return _fields(profile, path, bytes(content.files[path].data or b""))


def free_slots(profile: CardProfile, content: CardContent, kind: str) -> list[bool]:
    path = SLOT_FILES[kind][0]
    _used, free = index_flags(profile, profile.file(path).items)
    return [r == free * len(r) for r in content.files[path].records or []]


def expected_slot(profile: CardProfile, content: CardContent, kind: str) -> int:
    """The slot TERMINAL.md's rule picks: the first free one; else the earliest date (an
    unpersonalized date counts as earliest), tie broken by the second date, then lowest slot."""
    free = free_slots(profile, content, kind)
    if True in free:
        return free.index(True) + 1
    _index, first, second = SLOT_FILES[kind]

    def key(slot: int) -> tuple[str, str, int]:
        items = slot_items(profile, content, kind, slot)
        return (items.get(str(first), ""), items.get(str(second), "") if second else "", slot)

    return min(range(1, len(free) + 1), key=key)


def snapshot(content: CardContent) -> dict[str, bytes]:
    """Every file's bytes (records concatenated), to compare a card before and after."""
    return {path: b"".join(ef.records) if ef.records is not None else bytes(ef.data or b"")
            for path, ef in content.files.items()}


def apply_write(profile: CardProfile, content: CardContent, operation: str,
                items: dict[str, str], slot: int | None = None) -> CardContent:
    """A copy of ``content`` with the write ``operation`` applied as TERMINAL.md says."""
    out = copy.deepcopy(content)
    enc = _Encoder(FaultSet())
    values = {int(k): v for k, v in items.items()}
    if operation == "put":
        for n, v in values.items():
            place = profile.place(n)
            ef = out.files[place.path]
            assert ef.records is not None and place.record is not None
            ef.records[place.record - 1] = profile.tlv(n, v)
    elif operation.startswith("append-"):
        kind = operation.removeprefix("append-")
        path = CYCLIC_FILES[kind]
        ef, spec = out.files[path], profile.file(path)
        assert ef.records is not None
        new = _layout_record(profile, spec.layout or "", values, ef.record_length, enc)
        ef.records[:] = [new, *ef.records[:-1]]
    elif operation.startswith("write-") and slot is not None:
        kind = operation.removeprefix("write-")
        path = slot_path(profile, kind, slot)
        ef, spec = out.files[path], profile.file(path)
        assert ef.data is not None
        ef.data[:] = _layout_record(profile, spec.layout or "", values, len(ef.data), enc)
        index = out.files[SLOT_FILES[kind][0]]
        used, _free = index_flags(profile, profile.file(SLOT_FILES[kind][0]).items)
        assert index.records is not None
        index.records[slot - 1] = used * index.record_length
    return out


def changed_items(profile: CardProfile, want: CardContent, got: CardContent) -> list[str]:
    """Where two cards differ, named by item (``item 16``) or file (``DF03/EE01``)."""
    a, b = snapshot(want), snapshot(got)
    out: list[str] = []
    for path in a:
        if a[path] == b.get(path):
            continue
        spec = profile.file(path)
        named = False
        if spec.structure is Structure.TLV_RECORDS:
            for r, n in enumerate(spec.items, start=1):
                if _tlv_raw(want, path, r) != _tlv_raw(got, path, r) or \
                        want.files[path].records[r - 1][:2] != got.files[path].records[r - 1][:2]:  # type: ignore[index]
                    out.append(f"item {n}")
                    named = True
        elif spec.layout and spec.structure is Structure.TRANSPARENT:
            for f in profile.layout(spec.layout):
                span = slice(f.offset, f.offset + f.length)
                if f.item is not None and a[path][span] != b[path][span]:
                    out.append(f"item {f.item} in {path}")
                    named = True
        if not named:
            out.append(path)
    return out
