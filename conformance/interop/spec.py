"""What a matrix pairs: card variants × terminal profiles × transactions, from a matrix file
(``profiles/interop/matrices/NAME.yaml``) or the command line, checked before any pair runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from conformance.interop.matrix import CardEntry, TerminalEntry
from conformance.interop.transactions import Transaction, load_transactions, select
from conformance.interop.variants import load_named, load_variant
from conformance.model.profile import CardProfile
from conformance.model.source import ProfileError
from conformance.resources import PROFILES_DIR
from conformance.terminal.cli import terminal_profile_path
from conformance.terminal.profile import load_terminal_profile

__all__ = ["MATRICES_DIR", "MatrixPlan", "MatrixSpec", "card_entry", "load_matrix_spec",
           "plan_matrix", "terminal_entry"]

MATRICES_DIR = PROFILES_DIR / "interop" / "matrices"


class MatrixSpec(BaseModel):
    """A matrix file: titles, the rows, the columns, and (optionally) the transactions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title_zh: str = "互操作性矩阵"
    title_en: str = "Interoperability matrix"
    cards: list[str] = Field(min_length=1)
    terminals: list[str] = Field(min_length=1)
    transactions: list[str] = []
    """ID patterns (IOP-OUT-*); empty: every transaction marked ``matrix: true``."""
    source: str = Field(default="", exclude=True)


def load_matrix_spec(value: str) -> MatrixSpec:
    """A matrix file by shipped name or path; ProfileError (one line) if bad."""
    return load_named(MATRICES_DIR, value, "matrix",
                      lambda data, path: MatrixSpec(**data, source=str(path)))


def card_entry(value: str, profile: CardProfile) -> CardEntry:
    """A row from a card variant's name or file, its ICS and features checked."""
    variant = load_variant(value)
    product = variant.ics(profile)
    return CardEntry(variant.name, variant.title_zh, variant.title_en, variant.product,
                     product.name, variant.test_card(profile), variant.source)


def terminal_entry(value: str) -> TerminalEntry:
    """A column from a terminal profile's name (profiles/terminals/) or file. Only a
    command-mode terminal: a matrix runs unattended, rows side by side."""
    path = terminal_profile_path(value)
    profile = load_terminal_profile(path)
    if profile.mode != "command":
        raise ProfileError(f"{path}: a {profile.mode}-mode terminal cannot be paired "
                           "unattended; certify it with `rhc terminal run`")
    return TerminalEntry(Path(path).stem, profile)


@dataclass
class MatrixPlan:
    """Everything a matrix run needs, checked."""

    title_zh: str
    title_en: str
    cards: list[CardEntry]
    terminals: list[TerminalEntry]
    transactions: list[Transaction]
    source: str = ""


def plan_matrix(spec: MatrixSpec, profile: CardProfile,
                samples: dict[str, CardEntry] | None = None) -> MatrixPlan:
    """Resolve every name of the spec (ProfileError on the first bad one, and on a name
    given twice: each row and column is one sample). ``samples``: the rows already made of
    the ``reader:NAME`` entries (conformance/interop/samples.py), by entry."""
    for what, names in (("card", spec.cards), ("terminal", spec.terminals)):
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ProfileError(f"{what} {', '.join(twice)} given twice")
    made = samples or {}
    cards = [made[v] if v in made else card_entry(v, profile) for v in spec.cards]
    terminals = [terminal_entry(v) for v in spec.terminals]
    for what, entries in (("card variants", cards), ("terminals", terminals)):
        stems = [e.name for e in entries]
        clash = sorted({s for s in stems if stems.count(s) > 1})
        if clash:
            raise ProfileError(f"two {what} named {', '.join(clash)} (their files' names)")
    return MatrixPlan(spec.title_zh, spec.title_en, cards, terminals,
                      select(load_transactions(), spec.transactions), spec.source)
