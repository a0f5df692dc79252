"""Terminal cases (``TERM-…``): metadata as for card cases, the transaction and the checks as
data (``fixtures/terminal/cases.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conformance.model.source import ProfileError, load_yaml
from conformance.terminal.cards import CARDS_DIR, TERMINAL_DIR
from conformance.terminal.judge import RULES
from conformance.terminal.profile import OPERATIONS, TerminalProfile

__all__ = ["CASES_FILE", "CHECKS", "TerminalCase", "terminal_cases"]

CASES_FILE = TERMINAL_DIR / "cases.yaml"
GROUP = "TERM"
GROUP_TITLES = ("终端", "Terminals (the suite plays the card)")

CHECKS = {
    **RULES,
    "answered": ("按约定应答（退出码与 JSON）", "answers as the contract says (exit status, JSON)"),
    "values": ("输出与卡内数据逐项一致", "what it printed equals what the card holds"),
    "written": ("写入的正是要求写入的内容", "what it wrote is what it was asked"),
    "untouched": ("其余数据元不变", "every other item untouched"),
    "slot": ("按规则选择记录位置", "the slot chosen by the rule"),
    "no_apdu": ("输入无效时不发送任何 APDU", "bad input refused before any APDU"),
    "sam": ("SAM 命令正确", "the SAM commands are right"),
}
"""Every check a case can name as its own: the trace rules and the result checks."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^TERM-[A-Z0-9]+-\d{3}$")
    title_zh: str
    title_en: str
    purpose: str
    purpose_zh: str
    requirement: str
    requirement_zh: str
    requirement_en: str
    source: str
    operation: Literal[OPERATIONS]  # type: ignore[valid-type]
    card: str
    args: list[str] | Literal["all"] = []
    input: dict[str, Any] | None = None
    expect: Literal["ok", "error"] = "ok"
    sw: str = ""
    """For ``expect: error``: the status word the error must name (a prefix: ``63C``)."""
    own: list[str] = Field(min_length=1)
    sam: bool = False
    mandatory: bool = True


@dataclass(frozen=True)
class TerminalCase:
    """One terminal case: the card, the transaction, the checks that are its own."""

    id: str
    title_zh: str
    title_en: str
    purpose: str
    purpose_zh: str
    requirement: str
    requirement_zh: str
    requirement_en: str
    source: str
    operation: str
    card: str
    args: tuple[str, ...]
    input: dict[str, Any] | None
    expect: str
    sw: str
    own: tuple[str, ...]
    sam: bool = False
    mandatory: bool = True
    group: str = GROUP
    destructive: bool = False
    clause: str = field(default="")

    @property
    def applicability(self) -> str:
        return f"'{self.operation}' in operations" + (" and uses_sam" if self.sam else "")

    def applies(self, terminal: TerminalProfile) -> bool:
        return self.operation in terminal.operations and (terminal.uses_sam or not self.sam)

    def describe(self) -> dict[str, Any]:
        """The catalogue entry, with the fields of a card case's describe()."""
        return {
            "id": self.id, "group": self.group, "title_zh": self.title_zh,
            "title_en": self.title_en, "clause": self.clause or self.source,
            "purpose": self.purpose, "purpose_zh": self.purpose_zh,
            "requirement": self.requirement, "requirement_zh": self.requirement_zh,
            "requirement_en": self.requirement_en, "source": self.source,
            "applicability": self.applicability,
            "preconditions": f"test card {self.card}, powered; no file selected, no right granted",
            "expected_sw": [self.sw] if self.sw else [], "mandatory": self.mandatory,
            "destructive": False, "reference_choice": "", "severity": "normal",
            "operation": self.operation, "card": self.card, "own_checks": list(self.own),
            "steps": self.steps(),
        }

    def steps(self) -> list[str]:
        args = " ".join(self.args)
        steps = [f"serve test card {self.card}" + (" and the SAM" if self.sam else ""),
                 f"run the terminal: {self.operation} {args}".rstrip()]
        if self.input is not None:
            steps.append("standard input: the JSON items of the case")
        steps.append("judge every APDU against REFERENCE.md/TERMINAL.md; own checks: "
                     + ", ".join(self.own))
        return steps


def terminal_cases() -> list[TerminalCase]:
    """Every terminal case, checked: unique IDs, known cards and checks (ProfileError if not)."""
    doc = load_yaml(CASES_FILE)
    if not isinstance(doc.data, list):
        raise ProfileError(f"{doc.path}: the terminal cases are a list")
    out: list[TerminalCase] = []
    seen: set[str] = set()
    for i, entry in enumerate(doc.data):
        try:
            spec = _Spec(**entry)
        except (ValidationError, TypeError) as exc:
            errs = exc.errors() if isinstance(exc, ValidationError) else [
                {"loc": (), "msg": str(exc)}]
            raise ProfileError(f"{doc.where((i, *errs[0]['loc']))}: {errs[0]['msg']}") from None
        unknown = [c for c in spec.own if c not in CHECKS]
        if unknown or spec.id in seen or not (CARDS_DIR / f"{spec.card}.yaml").exists():
            what = (f"unknown check(s) {', '.join(unknown)}" if unknown else
                    f"duplicate ID {spec.id}" if spec.id in seen else f"no test card {spec.card}")
            raise ProfileError(f"{doc.where((i,))}: {what}")
        seen.add(spec.id)
        args = tuple(str(n) for n in range(1, 58)) if spec.args == "all" else tuple(spec.args)
        out.append(TerminalCase(**{**spec.model_dump(), "args": args, "own": tuple(spec.own),
                                   "clause": spec.source}))
    return out
