"""Where cards come from: `rhc card dump` JSON files, card-management CSV exports, readers.

Each source is an iterator of ``(card_id, items)``: one card at a time, so memory stays flat
however many cards a file holds. ``items`` is the mapping of item number to value as the
source wrote it (check_card judges keys and values), or an :class:`Unreadable` naming why
there is none. Nothing here raises on bad content: a file that cannot be parsed is a card
with a MALFORMED finding. Only a path that does not exist is the caller's error.

CSV: one row per card, header ``item_1,item_2,…`` (any subset, any order). The encoding is
UTF-8 (with or without BOM) or GBK (read as GB 18030, its superset): a first pass over the
raw lines counts the lines each encoding cannot decode and takes the one with fewer, so one
damaged row neither flips the file's encoding nor hides; that row is MALFORMED. A row's card
is its item 8 (card number), else ``<file stem> row N`` with N the spreadsheet row number
(the header is row 1).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from conformance.validate.check import Unreadable, item_number

__all__ = ["CARD_NUMBER_ITEM", "Card", "detect_encoding", "expand_inputs", "read_csv",
           "read_dump", "read_inputs", "read_readers"]

Card = tuple[str, Any]
CARD_NUMBER_ITEM = "8"
BOM = b"\xef\xbb\xbf"
GBK = "gb18030"  # GBK's superset: a GBK export decodes the same, rarer characters too
ENCODING_NAMES = {"utf-8": "UTF-8", GBK: "GBK/GB 18030"}


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files to read: each path, a directory as its *.json files (dumps, in name order).
    FileNotFoundError for a path that does not exist (a usage error, not a finding)."""
    out: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix.lower() == ".json"
                          and p.is_file())
        elif path.exists():
            out.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return out


def read_inputs(paths: Iterable[Path], known: Collection[int] | None = None) -> Iterator[Card]:
    """The cards of every file, CSV by its suffix, anything else as one dump."""
    for path in paths:
        yield from (read_csv(path, known) if path.suffix.lower() == ".csv"
                    else read_dump(path))


def read_dump(path: Path) -> Iterator[Card]:
    """One `rhc card dump` file: its card is the file name without extension."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        yield path.stem, Unreadable("unreadable", {"error": exc.strerror or exc})
        return
    try:
        data = json.loads(raw.removeprefix(BOM).decode("utf-8"))
    except UnicodeDecodeError as exc:
        yield path.stem, Unreadable("undecodable", {"line": raw[:exc.start].count(b"\n") + 1,
                                                    "encoding": "UTF-8"})
        return
    except (ValueError, RecursionError) as exc:
        yield path.stem, Unreadable("bad_json", {"error": str(exc) or type(exc).__name__})
        return
    yield path.stem, data if isinstance(data, dict) else Unreadable(
        "not_object", {"kind": type(data).__name__})


def _records(handle: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Logical CSV records as raw bytes with their first line number: a quoted field may
    hold a line break, so lines join while their quotes are open."""
    pending: list[bytes] = []
    start = 0
    for number, line in enumerate(handle, 1):
        if not pending:
            start = number
        pending.append(line)
        if sum(part.count(b'"') for part in pending) % 2 == 0:
            yield start, b"".join(pending).rstrip(b"\r\n")
            pending = []
    if pending:
        yield start, b"".join(pending).rstrip(b"\r\n")


def detect_encoding(path: Path) -> str:
    """utf-8 or GBK (see the module text), by the lines each cannot decode."""
    bad = {"utf-8": 0, GBK: 0}
    with path.open("rb") as handle:
        head = handle.read(3)
        if head == BOM:
            return "utf-8"
        handle.seek(0)
        for line in handle:
            if line.isascii():
                continue
            for encoding in bad:
                try:
                    line.decode(encoding)
                except UnicodeDecodeError:
                    bad[encoding] += 1
    return "utf-8" if bad["utf-8"] <= bad[GBK] else GBK


def read_csv(path: Path, known: Collection[int] | None = None) -> Iterator[Card]:
    """The cards of a CSV export, one row at a time. A header column that is no item_N, or
    names an item not in `known`, is one MALFORMED finding of the file, and is left out."""
    try:
        encoding = detect_encoding(path)
        handle = path.open("rb")
    except OSError as exc:
        yield path.stem, Unreadable("unreadable", {"error": exc.strerror or exc}, is_card=False)
        return
    name = ENCODING_NAMES[encoding]
    with handle:
        records = _records(handle)
        header: list[str] | None = None
        keys: list[str | None] = []
        for line, raw in records:
            if line == 1:
                raw = raw.removeprefix(BOM)
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                if header is None:
                    yield path.stem, Unreadable("undecodable", {"line": line, "encoding": name},
                                                is_card=False)
                    return
                yield f"{path.stem} row {line}", Unreadable(
                    "undecodable", {"line": line, "encoding": name})
                continue
            if header is None:
                if not text.strip():
                    continue
                try:
                    header = next(csv.reader([text]))
                except csv.Error as exc:
                    yield path.stem, Unreadable("bad_row", {"line": line, "error": exc},
                                                is_card=False)
                    return
                for column in header:
                    number = item_number(column) if column.strip().startswith("item_") else None
                    if number is None:
                        yield path.stem, Unreadable("bad_header", {"key": column},
                                                    value=column, is_card=False)
                    elif known is not None and number not in known:
                        yield path.stem, Unreadable("unknown_item", {"key": column},
                                                    value=column, is_card=False)
                        number = None
                    keys.append(str(number) if number is not None else None)
                continue
            if not text.strip():
                continue  # a blank line is no card
            try:
                row = next(csv.reader([text]))
            except csv.Error as exc:
                yield f"{path.stem} row {line}", Unreadable("bad_row", {"line": line,
                                                                        "error": exc})
                continue
            items = dict(zip(keys, row, strict=False))
            card = (items.get(CARD_NUMBER_ITEM) or "").strip() or f"{path.stem} row {line}"
            if len(row) != len(header):
                yield card, Unreadable("columns", {"line": line, "count": len(row),
                                                   "expected": len(header)})
                continue
            yield card, {k: v for k, v in items.items() if k is not None}
        if header is None:
            yield path.stem, Unreadable("empty_file", {}, is_card=False)


def read_readers(readers: Iterable[str], read: Callable[[str], dict[int, str]]) -> Iterator[Card]:
    """Live cards: `read(reader)` gives a card's items (rhc card dump's reading); the card is
    its card number (item 8), else the reader's name. A failed read is MALFORMED."""
    for reader in readers:
        try:
            items = read(reader)
        except Exception as exc:  # a reader fault is this card's finding, not the batch's end
            yield reader, Unreadable("read_failed", {"error": f"{type(exc).__name__}: {exc}"})
            continue
        card = (items.get(8) or "").strip() or reader
        yield card, {str(n): v for n, v in items.items()}
