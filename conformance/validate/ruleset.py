"""The validation rules as data: `profiles/rules/*.yaml`, checked on load, joined to the profile.

A rules file names its rules, the items each looks at and its bilingual message; which items
are dates, ID numbers or phone numbers, the sex and ethnicity code tables and the consistency
pairs come from the card profile (one source), so a rule can name them (`profile_rule: date`,
`consistency: card-number-is-id`). A bad file is a ProfileError naming file, key and line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from conformance.messages import Template, placeholders
from conformance.model import CardProfile
from conformance.model.source import ProfileError, load_yaml, pydantic_errors
from conformance.resources import PROFILES_DIR, shipped_name

__all__ = ["RULES_DIR", "Rule", "RuleSet", "RulesFile", "load_rules"]

RULES_DIR = PROFILES_DIR / "rules"

COMMON_PARAMS = {"card", "item", "value", "name_zh", "name_en"}
CHECK_PARAMS: dict[str, set[str]] = {
    "id_number": {"reason_zh", "reason_en"},
    "birth_date_in_id": {"birth", "other", "other_value"},
    "equal": {"other", "other_value"},
    "code": {"codes"},
    "date": set(),
    "date_order": {"other", "other_value", "relation_zh", "relation_en"},
    "expired": {"date"},
    "city": set(),
    "phone": set(),
    "required": set(),
    "malformed": {"reason_zh", "reason_en"},
}
"""The message parameters each check kind fills (besides COMMON_PARAMS)."""
CHECKS = tuple(CHECK_PARAMS)
MALFORMED_REASONS = ("bad_json", "not_object", "unreadable", "undecodable", "bad_row",
                     "columns", "unknown_item", "not_text", "bad_header", "empty_file",
                     "read_failed")
"""The reasons sources and check_card give a MALFORMED finding: its `reasons` word them."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ItemSelector(_Strict):
    """Items named by a fact of the card profile instead of by number."""

    profile_rule: str | None = None
    consistency: str | None = None

    @model_validator(mode="after")
    def _one(self) -> ItemSelector:
        if (self.profile_rule is None) == (self.consistency is None):
            raise ValueError("name either profile_rule or consistency")
        return self


class OrderStep(_Strict):
    item: int
    after: Literal["or_same", "strictly"] | None = None


class Rule(_Strict):
    """One rule of a rules file; `zh` / `en` are its message templates."""

    name: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    check: Literal[CHECKS]  # type: ignore[valid-type]
    title: Template
    ref: str
    zh: str
    en: str
    items: list[int] | ItemSelector | None = None
    table: str | None = None
    pad_to: int | None = None
    table_file: str | None = None
    order: list[OrderStep] | None = None
    relations: dict[str, Template] | None = None
    patterns: dict[str, str] | None = None
    separators: str = ""
    reasons: dict[str, Template] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Rule:
        Template(zh=self.zh, en=self.en)  # the same placeholders in both languages
        unknown = (placeholders(self.zh) | placeholders(self.en)) - COMMON_PARAMS - CHECK_PARAMS[
            self.check]
        if unknown:
            raise ValueError(f"check {self.check} gives no {{{'}, {'.join(sorted(unknown))}}}")
        if self.check == "malformed":
            missing = [r for r in MALFORMED_REASONS if r not in (self.reasons or {})]
            if missing:
                raise ValueError(f"reasons lack {', '.join(missing)}")
        needs = {"code": ("table",), "city": ("table_file",), "date_order": ("order", "relations"),
                 "phone": ("patterns",), "malformed": ("reasons",)}
        missing = [key for key in needs.get(self.check, ()) if getattr(self, key) is None]
        if missing:
            raise ValueError(f"check {self.check} needs {', '.join(missing)}")
        if self.items is None and self.check not in ("date_order", "required", "malformed"):
            raise ValueError(f"check {self.check} needs items")
        return self


class Required(_Strict):
    items: list[int] = Field(min_length=1)
    ref: str


class RulesFile(_Strict):
    """The schema of one file in profiles/rules/."""

    required: Required | None = None
    rules: list[Rule]


@dataclass(frozen=True)
class RuleSet:
    """Every rule of the rules files, in order, with the items each resolved to."""

    rules: tuple[Rule, ...]
    items: dict[str, tuple[int, ...]]  # rule name → the item numbers it looks at
    required: tuple[int, ...]
    sources: tuple[Path, ...] = field(default=())

    def rule(self, name: str) -> Rule:
        return next(r for r in self.rules if r.name == name)

    def by_check(self, check: str) -> list[Rule]:
        return [r for r in self.rules if r.check == check]

    def source_digests(self) -> list[dict[str, str]]:
        """Each file the rules came from (table files included) with its SHA-256."""
        return [{"file": shipped_name(path),
                 "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
                for path in self.sources]


def _resolve(rule: Rule, profile: CardProfile, where: str) -> tuple[int, ...]:
    """The item numbers a rule looks at, checked against the profile."""
    items = rule.items
    if items is None:
        numbers = [step.item for step in rule.order or ()]
    elif isinstance(items, list):
        numbers = items
    elif items.profile_rule is not None:
        numbers = [n for n, item in profile.items.items() if items.profile_rule in item.rules]
    else:
        pair = next((c for c in profile.spec.consistency if c.id == items.consistency), None)
        if pair is None:
            raise ProfileError(f"{where}: rule {rule.name}: no consistency rule "
                               f"{items.consistency!r} in the profile")
        numbers = list(pair.items)
    unknown = [n for n in numbers if n not in profile.items]
    if unknown:
        raise ProfileError(f"{where}: rule {rule.name}: no data item {unknown} in the profile")
    if rule.items is not None and not numbers:
        raise ProfileError(f"{where}: rule {rule.name}: its items select no data item")
    if rule.table is not None and rule.table not in profile.spec.code_tables:
        raise ProfileError(f"{where}: rule {rule.name}: no code table {rule.table!r} in the "
                           "profile")
    return tuple(numbers)


def load_rules(profile: CardProfile, directory: Path = RULES_DIR) -> RuleSet:
    """Every *.yaml in the directory, in name order (a rule name may appear once)."""
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise ProfileError(f"{directory}: no rules file (*.yaml)")
    rules: list[Rule] = []
    items: dict[str, tuple[int, ...]] = {}
    required: list[int] = []
    sources: list[Path] = []
    for path in paths:
        doc = load_yaml(path)
        try:
            parsed = RulesFile.model_validate(doc.data)
        except ValidationError as exc:
            raise pydantic_errors(doc, exc) from None
        sources.append(path)
        if parsed.required is not None:
            required += [n for n in parsed.required.items if n not in required]
            _resolve(Rule(name="REQUIRED", check="required", ref="", zh="", en="",
                          title=Template(zh="", en=""),
                          items=list(parsed.required.items)), profile, str(path))
        for rule in parsed.rules:
            if rule.name in items:
                raise ProfileError(f"{path}: rule {rule.name} is defined twice")
            items[rule.name] = _resolve(rule, profile, str(path))
            rules.append(rule)
            if rule.table_file is not None:
                table = path.parent / rule.table_file
                if not table.is_file():
                    raise ProfileError(f"{path}: rule {rule.name}: no table file {table}")
                sources.append(table)
    for check in ("required", "malformed"):
        if not any(r.check == check for r in rules):
            raise ProfileError(f"{directory}: no rule with check {check}")
    return RuleSet(tuple(rules), items, tuple(required), tuple(dict.fromkeys(sources)))
