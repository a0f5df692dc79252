"""Where the virtual card applies the declared faults: the few points a deviation can act.

The card's reference logic (:mod:`~conformance.card.commands`, :mod:`~conformance.card.content`)
never looks at these rows itself; it asks this module at four points:

- :func:`file_spec` — the file tree as the card builds it (LayoutChange, AccessOverride);
- :func:`written_items` — the item values personalization writes (ItemValue);
- :func:`patch_records` — the personalised records (RecordPatch);
- :func:`refusals` — commands refused before their handler runs (Refusal);
- :func:`extra_keys` — keys that also grant a right on some files (ExtraKey);
- :class:`StatusWordBend` — every answer of the card OS (SwSubstitution).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from conformance.card.faults import (
    AccessOverride,
    ExtraKey,
    FaultSet,
    ItemValue,
    LayoutChange,
    RecordPatch,
    Refusal,
    SwSubstitution,
)
from conformance.model.profile import CardProfile
from conformance.model.schema import EFSpec, Structure

__all__ = [
    "StatusWordBend",
    "extra_keys",
    "file_spec",
    "patch_records",
    "refusals",
    "written_items",
]

SW_LEN = 2
RECORD_CHUNK = 128
"""Record length of a transparent file that a LayoutChange turns into a record file."""


def file_spec(profile: CardProfile, path: str, faults: FaultSet) -> EFSpec | None:
    """The EF as the card builds it: the profile's, bent by the layout and access faults the
    card carries (None: the file is missing)."""
    ef = profile.file(path)
    for change in faults.deviations(LayoutChange):
        if change.file != path:
            continue
        if change.missing:
            return None
        update: dict[str, object] = {}
        if change.records is not None:
            if ef.structure is Structure.TLV_RECORDS:
                update["items"] = list(ef.items)[: change.records]
            else:
                update["records"] = change.records
        if change.record_length is not None:
            update["record_length"] = change.record_length
        if change.size is not None:
            update["size"] = change.size
        if change.structure is not None:
            update |= _restructured(profile, path, change.structure)
        ef = ef.model_copy(update=update)
    for override in faults.deviations(AccessOverride):
        if fnmatch.fnmatchcase(path, override.file):
            access = ef.access.model_copy(update={override.right: override.key})
            ef = ef.model_copy(update={"access": access})
    return ef


def _restructured(profile: CardProfile, path: str, structure: Structure) -> dict[str, object]:
    """The fields of an EF given another structure, keeping its total size."""
    size = profile.file_size(path)
    if structure is Structure.TRANSPARENT:
        return {"structure": structure, "size": size, "items": [], "layout": None}
    length = min(RECORD_CHUNK, size)
    return {"structure": structure, "record_length": length, "records": size // length,
            "items": [], "layout": None, "size": None}


def written_items(items: dict[int, str], faults: FaultSet) -> dict[int, str]:
    """The item values personalization writes to the card: an empty value is not written."""
    out = dict(items)
    for change in faults.deviations(ItemValue):
        if change.value:
            out[change.item] = change.value
        else:
            out.pop(change.item, None)
    return out


def patch_records(files: dict[str, object], faults: FaultSet) -> None:
    """Overwrite or cut the personalised records the record patches name."""
    for patch in faults.deviations(RecordPatch):
        ef = files.get(patch.file)
        records = getattr(ef, "records", None)
        if records is None or not 1 <= patch.record <= len(records):
            raise ValueError(f"record patch: {patch.file} has no record {patch.record}")
        record = bytearray(records[patch.record - 1])
        data = bytes.fromhex(patch.data)
        record[patch.offset : patch.offset + len(data)] = data
        if patch.cut:
            del record[-patch.cut :]
        records[patch.record - 1] = bytes(record)


def refusals(profile: CardProfile, faults: FaultSet) -> dict[tuple[str, int], bytes]:
    """(command name, P2) → the status word the card refuses it with."""
    return {(r.command, r.p2): profile.sw(r.answer).to_bytes(SW_LEN, "big")
            for r in faults.deviations(Refusal)}


def extra_keys(faults: FaultSet) -> Callable[[str, str], tuple[str, ...]]:
    """(file path, right) → the keys that grant the right besides the access rule's."""
    rows = faults.deviations(ExtraKey)

    def keys(path: str, right: str) -> tuple[str, ...]:
        return tuple(r.key for r in rows if r.right == right and fnmatch.fnmatchcase(path, r.files))

    return keys


class StatusWordBend:
    """Replaces reference status words by the deviant ones of the card's SwSubstitutions."""

    __slots__ = ("_rules",)

    def __init__(self, profile: CardProfile, faults: FaultSet) -> None:
        self._rules = [
            (frozenset(d.commands), profile.spec.status_words[d.reference],
             bytes.fromhex(d.deviant))
            for d in faults.deviations(SwSubstitution)
        ]

    def __call__(self, command: str, answer: bytes) -> bytes:
        """The answer to ``command`` (a profile command name, "" when dispatch answered)."""
        if not self._rules or len(answer) < SW_LEN:
            return answer
        sw = answer[-SW_LEN:].hex().upper()
        for commands, reference, deviant in self._rules:
            if (not commands or command in commands) and sw.startswith(reference):
                return answer[:-SW_LEN] + deviant
        return answer
