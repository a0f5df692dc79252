"""What a masked field of a run held, proven by the lab: `rhc report reveal`.

Every mask token in the evidence (and in the case reasons of results.jsonl) is a salted digest
of the field it replaced (transport/redact.py). The lab opens the run's sealed salt with its
private key (report/seal.py) and checks a candidate value against the digests: a match proves
the field held exactly that value, a mismatch that it did not. The salt itself is never shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from conformance.model.codecs import Coding, CodingError, encode
from conformance.report.seal import PrivateKey, open_sealed, read_sealed
from conformance.transport.redact import MASK_PATTERN, salted_digest

TRACE_FIELDS = ("command", "response", "note", "error")


class RevealError(Exception):
    """The run directory cannot be read as one; the message says why."""


@dataclass(frozen=True)
class MaskedField:
    """One mask token: where it stands and what it shows."""

    file: str
    case: str
    seq: int | None
    field: str
    kind: str  # secret | personal
    item: int | None
    digest: str

    def where(self) -> str:
        seq = f" seq {self.seq}" if self.seq is not None else ""
        item = f" item {self.item}" if self.item is not None else ""
        return f"{self.case}{seq} {self.field}: {self.kind}{item}"


def _tokens(text: object) -> Iterator[tuple[str, int | None, str]]:
    if not isinstance(text, str):
        return
    for match in MASK_PATTERN.finditer(text):
        item = match.group("item")
        yield match.group("kind"), int(item) if item else None, match.group("digest")


def _json_lines(path: Path) -> Iterator[dict[str, object]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RevealError(f"cannot read {path}: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise RevealError(f"{path}:{number}: not a JSON line") from None
        if isinstance(record, dict):
            yield record


def masked_fields(run_dir: Path, case: str | None = None) -> list[MaskedField]:
    """Every mask token of the run's evidence and case reasons (of one case, if given)."""
    run_dir = Path(run_dir)
    if not (run_dir / "results.jsonl").is_file():
        raise RevealError(f"{run_dir}: results.jsonl is missing — is this a run directory?")
    found: list[MaskedField] = []
    for path in sorted((run_dir / "evidence").glob("*.jsonl")):
        if case is not None and path.stem != case:
            continue
        relative = path.relative_to(run_dir).as_posix()
        for entry in _json_lines(path):
            seq = entry.get("seq")
            for name in TRACE_FIELDS:
                for kind, item, digest in _tokens(entry.get(name)):
                    found.append(MaskedField(relative, path.stem, seq if isinstance(seq, int)
                                             else None, name, kind, item, digest))
    for result in _json_lines(run_dir / "results.jsonl"):
        case_id = str(result.get("id", ""))
        if case is not None and case_id != case:
            continue
        for kind, item, digest in _tokens(result.get("reason")):
            found.append(MaskedField("results.jsonl", case_id, None, "reason", kind, item, digest))
    return found


def open_salt(run_dir: Path, key: PrivateKey) -> bytes:
    """The run's salt, opened with the lab's key (SealError if it is not the recipient's)."""
    return open_sealed(read_sealed(Path(run_dir)), key)


def candidate_values(
    fields: list[MaskedField],
    *,
    value: bytes | None = None,
    text: str | None = None,
    items: dict[int, tuple[Coding, int]] | None = None,
) -> dict[MaskedField, bytes]:
    """For each masked field, the bytes the candidate stands for in it.

    A hex value is itself. A text value is its encoding as the field's data item (the item's
    coding and length in the profile: an AN name is GBK, 00-padded), or for a field of no known
    item its GBK bytes.
    """
    out: dict[MaskedField, bytes] = {}
    for masked in fields:
        if value is not None:
            out[masked] = value
            continue
        assert text is not None
        spec = (items or {}).get(masked.item) if masked.item is not None else None
        try:
            out[masked] = encode(spec[0], text, spec[1]) if spec else text.encode("gbk")
        except (CodingError, ValueError, UnicodeEncodeError):
            continue  # the text cannot be a value of this item
    return out


def matches(salt: bytes, candidates: dict[MaskedField, bytes]) -> list[MaskedField]:
    """The masked fields whose digest the candidate reproduces."""
    return [f for f, data in candidates.items() if salted_digest(salt, data) == f.digest]


__all__ = [
    "MaskedField",
    "RevealError",
    "candidate_values",
    "masked_fields",
    "matches",
    "open_salt",
]
