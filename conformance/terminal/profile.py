"""The terminal profile of TERMINAL.md: who the terminal is and how to start one transaction."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conformance.model.source import ProfileError, load_yaml

__all__ = ["OPERATIONS", "TerminalProfile", "load_terminal_profile"]

OPERATIONS = (
    "get", "put", "append-allergy", "read-allergies", "append-immunization",
    "read-immunizations", "write-inpatient", "read-inpatient", "write-outpatient",
    "read-outpatient",
)
"""The operations TERMINAL.md defines, in its table's order."""


class TerminalProfile(BaseModel):
    """One terminal under test; `operations` is its ICS (other operations' cases do not apply)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    vendor: str
    model: str
    version: str
    kind: Literal["terminal"]
    mode: Literal["command", "manual"] = "command"
    command: list[str] = []
    operations: list[str] = Field(min_length=1)
    uses_sam: bool = False
    timeout_s: float = Field(default=30, gt=0)
    source: str = Field(default="", exclude=True)

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """A command given as one string is split like a shell would."""
        return shlex.split(value) if isinstance(value, str) else value

    @field_validator("version", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) else value

    @field_validator("operations")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [op for op in value if op not in OPERATIONS]
        if unknown:
            raise ValueError(f"unknown operation(s) {', '.join(unknown)} "
                             f"(TERMINAL.md defines: {', '.join(OPERATIONS)})")
        return list(dict.fromkeys(value))


def load_terminal_profile(path: Path | str) -> TerminalProfile:
    """A validated terminal profile; ProfileError (one line naming file, key and line) if not."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ProfileError(f"{doc.path}: a terminal profile is a mapping of keys")
    unknown = sorted(str(k) for k in doc.data if k not in TerminalProfile.model_fields
                     or k == "source")
    if unknown:
        raise ProfileError(f"{doc.where((unknown[0],))}: unknown key(s) {', '.join(unknown)} "
                           "in terminal profile")
    try:
        profile = TerminalProfile(**doc.data, source=str(doc.path))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not isinstance(p, int)) or err["loc"]
        raise ProfileError(f"{doc.where(loc)}: {err['msg']}") from None
    if profile.mode == "command" and not profile.command:
        raise ProfileError(f"{doc.where(('command',))}: mode command needs a command")
    return profile
