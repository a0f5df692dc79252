"""The typical transactions a matrix pair runs (``profiles/interop/transactions.yaml``), as
terminal cases: the terminal suite serves, runs and judges them unchanged."""

from __future__ import annotations

import fnmatch
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conformance.card.content import CardContent
from conformance.model.profile import CardProfile
from conformance.model.source import ProfileError, load_yaml
from conformance.resources import PROFILES_DIR
from conformance.terminal.cases import CHECKS, TerminalCase
from conformance.terminal.profile import OPERATIONS
from conformance.terminal.values import SLOT_FILES, free_slots

__all__ = ["TRANSACTIONS_FILE", "Transaction", "load_transactions", "select"]

TRANSACTIONS_FILE = PROFILES_DIR / "interop" / "transactions.yaml"
GROUP = "IOP"
SOURCE = "profiles/interop/transactions.yaml; TERMINAL.md Operations"


class Transaction(BaseModel):
    """One typical transaction; :meth:`case` makes it the terminal case of one card."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^IOP-[A-Z]+-\d{3}$")
    title_zh: str
    title_en: str
    purpose: str
    purpose_zh: str
    operation: Literal[OPERATIONS]  # type: ignore[valid-type]
    args: tuple[str, ...] | Literal["all", "used"] = ()
    input: dict[str, Any] | None = None
    own: tuple[str, ...] = Field(min_length=1)
    matrix: bool = True

    def case(self, card: str, profile: CardProfile, before: CardContent) -> TerminalCase | None:
        """The terminal case on ``card`` (whose content is ``before``); None when the card
        holds nothing it could run on (``args: used`` and every slot free)."""
        args: tuple[str, ...]
        if self.args == "all":
            args = tuple(str(n) for n in range(1, 58))
        elif self.args == "used":
            kind = self.operation.removeprefix("read-")
            free = free_slots(profile, before, kind) if kind in SLOT_FILES else []
            if False not in free:
                return None
            args = (str(free.index(False) + 1),)
        else:
            args = tuple(self.args)
        return TerminalCase(
            id=self.id, title_zh=self.title_zh, title_en=self.title_en, purpose=self.purpose,
            purpose_zh=self.purpose_zh, requirement=f"interop.{self.operation}",
            requirement_zh=self.purpose_zh, requirement_en=self.purpose, source=SOURCE,
            operation=self.operation, card=card, args=args, input=self.input, expect="ok",
            sw="", own=self.own, group=GROUP, clause=SOURCE)

    def titled(self) -> dict[str, str]:
        return {"id": self.id, "title_zh": self.title_zh, "title_en": self.title_en,
                "operation": self.operation}


def load_transactions() -> list[Transaction]:
    """Every transaction of the file, checked (ProfileError naming file, key and line)."""
    doc = load_yaml(TRANSACTIONS_FILE)
    if not isinstance(doc.data, list):
        raise ProfileError(f"{doc.path}: the interop transactions are a list")
    out: list[Transaction] = []
    for i, entry in enumerate(doc.data):
        try:
            transaction = Transaction(**entry)
        except (ValidationError, TypeError) as exc:
            errs = exc.errors() if isinstance(exc, ValidationError) else [
                {"loc": (), "msg": str(exc)}]
            raise ProfileError(f"{doc.where((i, *errs[0]['loc']))}: {errs[0]['msg']}") from None
        unknown = [c for c in transaction.own if c not in CHECKS]
        if unknown or transaction.id in {t.id for t in out}:
            what = f"unknown check(s) {', '.join(unknown)}" if unknown else \
                f"duplicate ID {transaction.id}"
            raise ProfileError(f"{doc.where((i,))}: {what}")
        out.append(transaction)
    return out


def select(transactions: list[Transaction], patterns: list[str]) -> list[Transaction]:
    """The matrix's transactions: those matching an ID pattern, or by default every one
    marked ``matrix: true``; ProfileError when a pattern matches none."""
    if not patterns:
        return [t for t in transactions if t.matrix]
    chosen = []
    for pattern in patterns:
        hits = [t for t in transactions if fnmatch.fnmatchcase(t.id, pattern.upper())]
        if not hits:
            raise ProfileError(f"transaction {pattern!r} matches none of "
                               f"{', '.join(t.id for t in transactions)}")
        chosen += [t for t in hits if t not in chosen]
    return [t for t in transactions if t in chosen]
