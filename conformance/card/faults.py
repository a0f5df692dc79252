"""The defect catalogue: named, small deviations from REFERENCE.md the virtual card can carry.

A conformance suite is only as good as the defects it catches. Each fault is one explicit
departure from the reference profile, aimed at the cases written to catch it (``aim``:
case-ID patterns), so the kill matrix (:mod:`conformance.matrix`) can check that every case
catches some fault by its own expectation and every fault is caught where it is aimed.

Most faults are *data*: a declared :data:`Deviation` the card applies at one of a few points
(:mod:`conformance.card.deviations`), the way gematik's card images or emv-card-simulator's
``Fault`` rows describe a bad card:

- :class:`SwSubstitution` — a command answers a deviant status word where the reference
  answers a named one (applied to every answer of the card OS);
- :class:`Refusal` — a command with a given P2 is refused outright (a parameter the card
  does not support);
- :class:`RecordPatch` — bytes of a personalised record overwritten, or the record cut short
  (TLV tag/length faults, coding faults);
- :class:`AccessOverride` — a file's access rule for one right names another key or ``free``;
- :class:`ExtraKey` — another key also grants a right on some files;
- :class:`LayoutChange` — a file's record count, record length, size or structure differs, or
  the file is missing;
- :class:`ItemValue` — the personalization writes another value for an item (value-rule
  faults); the card keys still come from the true personalization.

Behaviour that no table can express (a constant challenge, rights surviving a reset, …) is a
named *hook*: a fault without a deviation, asked about at one visible place in the card's code
(``faults.active("constant_challenge")``).

This module is the model (deviations, :class:`Fault`, :class:`FaultSet`) and the assembled
catalogue (:func:`fault_catalogue`): the hand-written rows of :mod:`conformance.card.defects`
and the faults :mod:`conformance.card.generated` makes from the profile where the rule is
generic, as the cases are generated (one TLV-length and one coding fault per TLV item, one
value fault per item with value rules, one record-count and one structure fault per EF, one
fault per access right).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from conformance.model.schema import Structure

if TYPE_CHECKING:
    from conformance.model.profile import CardProfile

__all__ = [
        "GROUPS",
    "AccessOverride",
    "Deviation",
    "ExtraKey",
    "Fault",
    "FaultSet",
    "ItemValue",
    "LayoutChange",
    "RecordPatch",
    "Refusal",
    "SwSubstitution",
    "check_fault_names",
    "fault_catalogue",
]

GROUPS = ("ATR", "CMD", "FS", "DATA", "SEC", "CYC", "IDX", "REC", "PIN", "COB", "PERF")
"""Fault groups, in the order of the conformance case groups that should catch them."""


# --------------------------------------------------------------------------- deviations


@dataclass(frozen=True)
class SwSubstitution:
    """Answer ``deviant`` where the reference answers status word ``reference`` (a profile
    status-word name; a one-byte entry such as ``wrong_le`` matches SW1) to ``commands``
    (profile command names; every answer when empty)."""

    reference: str
    deviant: str
    commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refusal:
    """``command`` with this P2 is refused with status word ``answer`` (a profile name)
    before the card looks at anything else."""

    command: str
    p2: int
    answer: str


@dataclass(frozen=True)
class RecordPatch:
    """After personalization, record ``record`` of ``file`` holds ``data`` (hex) at ``offset``
    and loses its last ``cut`` bytes."""

    file: str
    record: int
    offset: int = 0
    data: str = ""
    cut: int = 0


@dataclass(frozen=True)
class AccessOverride:
    """The access rule for ``right`` (read, update, mark, erase) of the files matching
    ``file`` (a path or an fnmatch pattern) is ``key`` (a key family or ``free``) instead of
    the profile's."""

    file: str
    right: str
    key: str


@dataclass(frozen=True)
class ExtraKey:
    """``key`` also grants ``right`` (read, update, mark, erase) on the files matching
    ``files`` (an fnmatch pattern of paths), besides the key of their access rule."""

    files: str
    right: str
    key: str


@dataclass(frozen=True)
class LayoutChange:
    """``file`` is missing, or has another record count, record length, size or structure."""

    file: str
    records: int | None = None
    record_length: int | None = None
    size: int | None = None
    structure: Structure | None = None
    missing: bool = False


@dataclass(frozen=True)
class ItemValue:
    """The personalization writes ``value`` for item ``item`` (the keys keep the true one)."""

    item: int
    value: str


Deviation = (SwSubstitution | Refusal | RecordPatch | AccessOverride | ExtraKey | LayoutChange
             | ItemValue)
KINDS: dict[type, str] = {SwSubstitution: "status_word", Refusal: "refusal",
                          RecordPatch: "record", ExtraKey: "extra_key",
                          AccessOverride: "access", LayoutChange: "layout", ItemValue: "item"}


@dataclass(frozen=True)
class Fault:
    """One named deviation from the reference profile.

    ``reference`` names the clause of REFERENCE.md it breaks; ``aim`` the case-ID patterns
    (fnmatch) of the cases written to catch it; ``also_breaks`` the other groups whose cases it
    may make FAIL; ``deviation`` the declared data the card applies (None: a named hook, with
    ``target``/``value`` the numbers the hook uses); ``requires`` the ICS feature a product must
    declare for the deviation to be observable (e.g. ``pin``).
    """

    name: str
    group: str
    description_en: str
    description_zh: str
    reference: str
    target: str = ""
    value: str = ""
    requires: str | None = None
    aim: tuple[str, ...] = ()
    deviation: Deviation | None = None
    also_breaks: tuple[str, ...] = ()
    generated: bool = False
    """Made from the profile by :func:`fault_catalogue` (not a hand-written row)."""

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"fault {self.name}: unknown group {self.group!r} (one of {GROUPS})")
        if not self.aim:
            raise ValueError(f"fault {self.name}: declares no aim (case-ID patterns)")
        unknown = sorted(set(self.also_breaks) - set(GROUPS))
        if unknown:
            raise ValueError(f"fault {self.name}: unknown also_breaks group(s) {unknown}")

    @property
    def kind(self) -> str:
        """``hook`` or the kind of its deviation (status_word, record, access, layout, item)."""
        return "hook" if self.deviation is None else KINDS[type(self.deviation)]

    def aims_at(self, case_id: str) -> bool:
        return any(fnmatch.fnmatchcase(case_id, pattern) for pattern in self.aim)

    @property
    def allowed_groups(self) -> frozenset[str]:
        """The groups whose cases may FAIL under this fault: its own and ``also_breaks``."""
        return frozenset({self.group, *self.also_breaks})


_CATALOGUES: dict[str, Mapping[str, Fault]] = {}
"""Fault catalogues by profile sha256 (a catalogue is built once per profile)."""


def _build_catalogue(profile: CardProfile) -> Mapping[str, Fault]:
    from conformance.card.defects import hand_written  # the rows import this module
    from conformance.card.generated import generated

    hand = hand_written()
    rows = [*hand, *generated(profile, hand)]
    faults = {f.name: f for f in rows}
    if len(faults) != len(rows):
        raise RuntimeError("duplicate fault name in the catalogue")
    return faults


def fault_catalogue(profile: CardProfile | None = None) -> Mapping[str, Fault]:
    """Every fault the virtual card knows for a profile (the default profile when None): the
    hand-written rows and those generated from the profile, by name."""
    if profile is None:
        profile = _default_profile()
    found = _CATALOGUES.get(profile.sha256)
    if found is None:
        found = _CATALOGUES[profile.sha256] = _build_catalogue(profile)
    return found


@cache
def _default_profile() -> CardProfile:
    from conformance.model.profile import load_profile

    return load_profile()


def __getattr__(name: str) -> Any:
    """``FAULTS``: the catalogue of the default profile, built on first use."""
    if name == "FAULTS":
        return fault_catalogue()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_fault_names(names: Iterable[str], catalogue: Mapping[str, Fault] | None = None,
                      ) -> frozenset[str]:
    """The names as a frozenset; ValueError naming each unknown one and its nearest known
    names (the catalogue has hundreds: `rhc card faults` lists them all)."""
    known_faults = fault_catalogue() if catalogue is None else catalogue
    chosen = frozenset(names)
    unknown = sorted(chosen - known_faults.keys())
    if unknown:
        hints = []
        for name in unknown:
            near = difflib.get_close_matches(name, list(known_faults), n=3)
            hints.append(f"{name} (did you mean {', '.join(near)}?)" if near else name)
        raise ValueError(f"unknown fault(s) {'; '.join(hints)}: `rhc card faults` lists the "
                         f"{len(known_faults)} known faults")
    return chosen


class FaultSet:
    """The faults one card carries: ``active(name)`` is a hook's question, ``deviations(kind)``
    the declared data the card applies."""

    __slots__ = ("_active", "_catalogue")

    def __init__(self, names: Iterable[str] = (),
                 catalogue: Mapping[str, Fault] | None = None) -> None:
        self._catalogue = fault_catalogue() if catalogue is None else catalogue
        self._active = check_fault_names(names, self._catalogue)

    def active(self, name: str) -> bool:
        """Whether the card carries fault ``name`` (KeyError on a misspelt hook name)."""
        if name not in self._catalogue:
            raise KeyError(f"no fault {name!r} in the catalogue")
        return name in self._active

    def fault(self, name: str) -> Fault:
        return self._catalogue[name]

    def deviations(self, kind: type[Deviation]) -> list[Any]:
        """The deviations of this type that the active faults declare, in name order."""
        found = (self._catalogue[n].deviation for n in sorted(self._active))
        return [d for d in found if isinstance(d, kind)]

    @property
    def names(self) -> frozenset[str]:
        return self._active

    def __bool__(self) -> bool:
        return bool(self._active)

    def __repr__(self) -> str:
        return f"FaultSet({sorted(self._active)!r})"
