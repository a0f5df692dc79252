"""The operations of TERMINAL.md: their input checks (before any APDU) and what each does on
the card through a :class:`~conformance.terminal_ref.session.TerminalSession`.

The contract's facts live in the tables at the top (which items `put` may carry, the cyclic
files, the slot files and the items that order their slots); files, layouts, codings and
keys come from the card profile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from conformance.apdu import ApduError
from conformance.model import CardProfile, Coding
from conformance.model.schema import LayoutField
from conformance.terminal_ref import values
from conformance.terminal_ref.faults import FAULTS
from conformance.terminal_ref.session import TerminalSession

__all__ = ["OPERATIONS", "Operation", "Refusal", "Request", "parse_request", "run_request"]

GET_ITEMS = range(1, 58)
"""`get ITEM…`: the TLV items 1–57."""
PUT_ITEMS = frozenset({7, *range(16, 57)})
"""`put`: the items a terminal may change in the field (TERMINAL.md, Writes)."""


@dataclass(frozen=True)
class SlotFiles:
    """An index file and the items that pick the slot to overwrite when every one is used."""

    index: str
    order: tuple[int, ...]


APPEND = {"append-allergy": "DF02/EF07", "append-immunization": "DF02/EF08"}
READ_RECORDS = {"read-allergies": "DF02/EF07", "read-immunizations": "DF02/EF08"}
SLOTS = {
    "inpatient": SlotFiles("DF03/EF05", (66, 135)),  # admission, then discharge date
    "outpatient": SlotFiles("DF03/EF06", (215,)),  # visit date and time, as a whole
}
FREE = 0xFF
"""Index flag of a free slot (REFERENCE.md §1: 00 used, FF free)."""


class Refusal(Exception):
    """The terminal refuses or aborts the transaction: exit 1 with this message (and the
    status word that caused it, if one did)."""

    def __init__(self, message: str, sw: str | None = None) -> None:
        super().__init__(message)
        self.sw = sw


@dataclass(frozen=True)
class Request:
    """A checked request: the operation, its item numbers or values, its slot."""

    operation: str
    numbers: tuple[int, ...] = ()
    items: Mapping[int, str] | None = None
    slot: int | None = None


# ------------------------------------------------------------------------------ parsing


def _number(text: object, what: str) -> int:
    if isinstance(text, str) and text.isascii() and text.isdigit():
        return int(text)
    raise Refusal(f"{what} {text!r} is not a number")


def _layout(profile: CardProfile, path: str) -> dict[int, LayoutField]:
    ef = profile.file(path)
    assert ef.layout is not None, f"{path} has no layout"
    return {f.item: f for f in profile.layout(ef.layout) if f.item is not None}


def _slot_paths(profile: CardProfile, kind: str) -> list[str]:
    index = SLOTS[kind].index
    df = index.partition("/")[0]
    return [f"{df}/{fid}" for fid in profile.file(index).index_of]


def _fields(profile: CardProfile, operation: str) -> dict[int, tuple[Coding, int]]:
    """Item number → (coding, length) of the items a writing operation may carry."""
    if operation == "put":
        return {n: (profile.item(n).coding, profile.item(n).length) for n in sorted(PUT_ITEMS)}
    path = APPEND.get(operation) or _slot_paths(profile, operation.partition("-")[2])[0]
    return {n: (f.coding, f.length) for n, f in _layout(profile, path).items()}


def _items(profile: CardProfile, operation: str, doc: object) -> dict[int, str]:
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), dict):
        raise Refusal(f'{operation} reads {{"items": {{…}}}} on standard input')
    fields = _fields(profile, operation)
    out: dict[int, str] = {}
    for key, value in doc["items"].items():
        n = _number(key, "item")
        if n not in fields:
            low, high = min(fields), max(fields)
            allowed = "7 and 16–56" if operation == "put" else f"{low}–{high}"
            raise Refusal(f"{operation} does not write item {n} (it carries items {allowed})")
        coding, length = fields[n]
        values.encode(coding, value, length, f"item {n}")
        out[n] = value
    return dict(sorted(out.items()))


def _no_args(operation: str, args: list[str]) -> None:
    if args:
        raise Refusal(f"{operation} takes no arguments, got {' '.join(args)}")


def parse_request(
    profile: CardProfile, operation: str, args: list[str], doc: object = None
) -> Request:
    """Check a request completely, before any APDU; Refusal or ValueRefused if it is bad."""
    if operation not in OPERATIONS:
        raise Refusal(f"unknown operation {operation!r}; known: {', '.join(OPERATIONS)}")
    op = OPERATIONS[operation]
    if operation == "get":
        numbers = {_number(a, "item") for a in args}
        bad = sorted(n for n in numbers if n not in GET_ITEMS)
        if bad:
            raise Refusal(f"get reads items 1–57, not {', '.join(map(str, bad))}")
        return Request(operation, numbers=tuple(sorted(numbers)))
    if op.reads_input:
        _no_args(operation, args)
        return Request(operation, items=_items(profile, operation, doc))
    kind = operation.partition("-")[2]
    if kind in SLOTS:
        if len(args) != 1:
            raise Refusal(f"{operation} takes one argument, the slot")
        count = len(_slot_paths(profile, kind))
        slot = _number(args[0], "slot")
        if not 1 <= slot <= count:
            raise Refusal(f"{operation}: slot {slot} is not 1–{count}")
        return Request(operation, slot=slot)
    _no_args(operation, args)
    return Request(operation)


# ------------------------------------------------------------------------------ running


class ReferenceTerminal:
    """What each operation does on the card, and the JSON it reports."""

    def __init__(self, session: TerminalSession) -> None:
        self.session = session
        self.profile = session.profile
        self.faults = session.faults

    # -- reporting ---------------------------------------------------------------------
    def label(self, number: int) -> str:
        """The key an item is reported under (``mislabel_items``: the next number)."""
        return str(number + 1 if "mislabel_items" in self.faults else number)

    def _decode(self, number: int, coding: Coding, raw: bytes) -> str:
        if "truncate_gbk_names" in self.faults and coding is Coding.AN:
            fault = FAULTS["truncate_gbk_names"]
            if number in fault.param("items"):  # type: ignore[operator]
                limit = int(fault.param("bytes"))  # type: ignore[call-overload]
                return raw.partition(b"\x00")[0][:limit].decode("gbk", errors="ignore")
        return values.decode(coding, raw, f"item {number}")

    def _tlv(self, number: int, raw: bytes) -> bytes:
        length = self.profile.item(number).length
        if len(raw) != 2 + length or raw[0] != number or raw[1] != length:
            raise Refusal(f"the card's record of item {number} is {raw.hex().upper() or 'empty'}"
                          f", not tag {number:02X} length {length:02X} and {length} bytes")
        return raw[2:]

    # -- TLV items -----------------------------------------------------------------------
    def get(self, request: Request) -> dict[str, Any]:
        wanted = set(request.numbers)
        out: dict[str, str] = {}
        for n in self.profile.tlv_items():  # file order: one authentication per DF
            if n in wanted:
                place = self.profile.place(n)
                assert place.record is not None
                raw = self._tlv(n, self.session.read_record(place.path, place.record))
                out[self.label(n)] = self._decode(n, self.profile.item(n).coding, raw)
        return {"items": dict(sorted(out.items(), key=lambda kv: int(kv[0])))}

    def put(self, request: Request) -> dict[str, Any]:
        assert request.items is not None
        order = self.profile.tlv_items()
        for n in sorted(request.items, key=order.index):
            item = self.profile.item(n)
            raw = values.encode(item.coding, request.items[n], item.length, f"item {n}")
            place = self.profile.place(n)
            assert place.record is not None
            self.session.update_record_sm(place.path, place.record, bytes([n, len(raw)]) + raw)
        return {"status": "ok"}

    # -- cyclic files --------------------------------------------------------------------
    def append(self, request: Request) -> dict[str, Any]:
        assert request.items is not None
        path = APPEND[request.operation]
        self.session.append_cyclic(path, dict(request.items))
        return {"status": "ok"}

    def read_records(self, request: Request) -> dict[str, Any]:
        path = READ_RECORDS[request.operation]
        fields = sorted(_layout(self.profile, path).values(), key=lambda f: f.offset)
        records = []
        for n in range(1, self.profile.record_count(path) + 1):
            try:
                raw = self.session.read_record(path, n)
            except ApduError as exc:
                if exc.sw == self.profile.sw("record_not_found"):
                    break  # a 6A83 ends the list
                raise
            record = self._fields(fields, raw)
            if not all(values.is_empty(f.coding, record[f.item]) for f in fields):  # type: ignore[index]
                records.append({self.label(k): v for k, v in record.items()})
        return {"records": records}

    def _fields(self, fields: list[LayoutField], raw: bytes) -> dict[int, str]:
        out: dict[int, str] = {}
        for f in fields:
            assert f.item is not None
            chunk = raw[f.offset : f.offset + f.length]
            if len(chunk) != f.length:
                raise Refusal(f"the card returned {len(raw)} bytes, too short for item {f.item}")
            out[f.item] = self._decode(f.item, f.coding, chunk)
        return out

    # -- EE/ED slots ---------------------------------------------------------------------
    def choose_slot(self, kind: str) -> int:
        """The first free slot; when all are used, the earliest by the kind's order items
        (an unpersonalized date first), a final tie to the lowest slot."""
        if "ignore_index_slot" in self.faults:
            return 1
        files = SLOTS[kind]
        paths = _slot_paths(self.profile, kind)
        for slot in range(1, len(paths) + 1):
            if self.session.read_record(files.index, slot)[:1] == bytes([FREE]):
                return slot
        layout = _layout(self.profile, paths[0])
        keys = []
        for slot, path in enumerate(paths, start=1):
            key = []
            for n in files.order:
                f = layout[n]
                raw = self.session.read_binary(path, f.offset, f.length)
                key.append(values.decode(f.coding, raw, f"item {n} of slot {slot}"))
            keys.append((tuple(key), slot))
        return min(keys)[1]

    def write_slot(self, request: Request) -> dict[str, Any]:
        assert request.items is not None
        kind = request.operation.partition("-")[2]
        slot = self.choose_slot(kind)
        path = _slot_paths(self.profile, kind)[slot - 1]
        ef = self.profile.file(path)
        record = bytearray(ef.size or 0)
        for n, f in _layout(self.profile, path).items():
            given = request.items.get(n)
            raw = (values.encode(f.coding, given, f.length, f"item {n}") if given is not None
                   else values.empty(f.coding, f.length))
            record[f.offset : f.offset + f.length] = raw
        self.session.mark_index(SLOTS[kind].index, slot)  # marked before it is written
        self.session.update_binary(path, 0, bytes(record))
        return {"status": "ok", "slot": slot}

    def read_slot(self, request: Request) -> dict[str, Any]:
        assert request.slot is not None
        kind = request.operation.partition("-")[2]
        slot = request.slot
        if self.session.read_record(SLOTS[kind].index, slot)[:1] == bytes([FREE]):
            raise Refusal(f"{kind} slot {slot} is free")
        path = _slot_paths(self.profile, kind)[slot - 1]
        fields = sorted(_layout(self.profile, path).values(), key=lambda f: f.offset)
        record = self._fields(fields, self.session.read_binary(path))
        return {"items": {self.label(n): v for n, v in record.items()}}


@dataclass(frozen=True)
class Operation:
    """One operation of the contract: whether it reads JSON on stdin, and what runs it."""

    reads_input: bool
    run: Callable[[ReferenceTerminal, Request], dict[str, Any]]


OPERATIONS: dict[str, Operation] = {
    "get": Operation(False, ReferenceTerminal.get),
    "put": Operation(True, ReferenceTerminal.put),
    "append-allergy": Operation(True, ReferenceTerminal.append),
    "read-allergies": Operation(False, ReferenceTerminal.read_records),
    "append-immunization": Operation(True, ReferenceTerminal.append),
    "read-immunizations": Operation(False, ReferenceTerminal.read_records),
    "write-inpatient": Operation(True, ReferenceTerminal.write_slot),
    "read-inpatient": Operation(False, ReferenceTerminal.read_slot),
    "write-outpatient": Operation(True, ReferenceTerminal.write_slot),
    "read-outpatient": Operation(False, ReferenceTerminal.read_slot),
}


def needs_card(request: Request) -> bool:
    """False for a request that sends no APDU (`get` of no item, `put` of no item)."""
    if request.operation == "get":
        return bool(request.numbers)
    if request.operation == "put":
        return bool(request.items)
    return True


def run_request(session: TerminalSession, request: Request) -> dict[str, Any]:
    """Carry out a checked request on the card; the JSON document to print."""
    return OPERATIONS[request.operation].run(ReferenceTerminal(session), request)
