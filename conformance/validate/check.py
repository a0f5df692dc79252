"""One card's data against the rules: `check_card`, a pure function of the card and a context.

The same function serves the streaming validator (`rhc validate cards`) and an engine over a
card table (conformance/validate/duck.py): nothing in it depends on where the card came from
or on the cards before it. A card is a mapping of item number ("8", 8 or "item_8") to its text
value; rules apply to the items present (an absent or empty item breaks none but
REQUIRED_MISSING). Input that is no such mapping, or holds keys or values that are not item
numbers and text, gives MALFORMED findings, never an exception.

The value tests reuse the card profile's (conformance/cases/rules.py): the GB 11643 check of
an ID number, what a real YYYYMMDD date is, the code tables.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from conformance.cases.rules import check_id_number
from conformance.cases.rules import parse_date as _parse_date
from conformance.model import CardProfile, load_profile
from conformance.validate.gb2260 import Division, load_divisions
from conformance.validate.ruleset import RULES_DIR, Rule, RuleSet, load_rules

__all__ = ["Context", "Finding", "Unreadable", "check_card", "item_number"]


class Finding(NamedTuple):
    """One broken rule on one card. `item` is None for a file that is no card data at all;
    `city` is the card's item 57 as written ("" when absent)."""

    card: str
    rule: str
    item: int | None
    value: str
    message_zh: str
    message_en: str
    city: str

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


@dataclass(frozen=True)
class Unreadable:
    """What a source yields in place of a card's items when it could not read them: the
    MALFORMED reason (a key of the rule's `reasons`) and its parameters. `is_card` is False
    for a problem of a whole file that holds no card of its own (a CSV without header)."""

    reason: str
    params: Mapping[str, Any] = field(default_factory=dict)
    value: str = ""
    item: int | None = None
    is_card: bool = True


_ITEM_KEY = re.compile(r"^(?:item_)?([0-9]{1,3})$")


def item_number(key: object) -> int | None:
    """The item number a key names ("8", 8, "item_8"), or None."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str):
        match = _ITEM_KEY.match(key.strip())
        if match:
            return int(match.group(1))
    return None


Check = Callable[[str, dict[int, str], str], Iterator[Finding]]

parse_date = lru_cache(maxsize=64)(_parse_date)
"""The profile's date rule, remembered for the card at hand: each date is read by several rules
(DATE_INVALID, DATE_ORDER, EXPIRED, the birth date in the ID). Small, so memory stays flat."""


@dataclass
class Context:
    """Everything a card is judged against: profile, rules, tables and the validation date."""

    profile: CardProfile
    rules: RuleSet
    validated_on: dt.date
    divisions: dict[str, Division]
    checks: list[Check] = field(default_factory=list)
    city_item: int = 57
    keys: dict[str, int] = field(default_factory=dict)
    """Every spelling of a known item's key ("8", "item_8"): the hot path's lookup."""

    @classmethod
    def load(cls, profile: CardProfile | Path | str | None = None, *,
             rules_dir: Path = RULES_DIR, validated_on: dt.date | None = None) -> Context:
        if not isinstance(profile, CardProfile):
            profile = load_profile(profile)
        rules = load_rules(profile, rules_dir)
        city_rule = next(iter(rules.by_check("city")), None)
        table = (rules_dir / city_rule.table_file if city_rule and city_rule.table_file
                 else None)
        context = cls(profile, rules, validated_on or dt.date.today(),
                      load_divisions(table) if table else {},
                      city_item=profile.spec.item_roles.city_code)
        context.keys = {form: n for n in profile.items for form in (str(n), f"item_{n}")}
        context.checks = [_COMPILERS[r.check](r, rules.items[r.name], context)
                          for r in rules.rules if r.check not in ("malformed",)]
        return context

    # -- findings --------------------------------------------------------------------------

    def finding(self, rule: Rule, card: str, item: int | None, value: str, city: str,
                **params: Any) -> Finding:
        """A finding with its message rendered in both languages from the rule's templates."""
        names = self.profile.items.get(item) if item is not None else None
        fill = {"card": card, "item": item if item is not None else "—", "value": value,
                "name_zh": names.zh if names else "", "name_en": names.en if names else "",
                **params}
        return Finding(card, rule.name, item, value, rule.zh.format_map(_Missing(fill)),
                       rule.en.format_map(_Missing(fill)), city)

    def malformed(self, card: str, reason: str, params: Mapping[str, Any], *,
                  item: int | None = None, value: str = "", city: str = "") -> Finding:
        rule = self.rules.by_check("malformed")[0]
        assert rule.reasons is not None  # the schema requires them
        template = rule.reasons[reason]
        return self.finding(rule, card, item, value, city,
                            reason_zh=template.zh.format_map(_Missing(params)),
                            reason_en=template.en.format_map(_Missing(params)))

    @property
    def personal_items(self) -> list[int]:
        return sorted(n for n, item in self.profile.items.items() if item.personal)

    def city_name(self, code: str) -> str:
        division = self.divisions.get(code)
        return division.full_name_zh if division else ""


class _Missing(dict):  # type: ignore[type-arg]
    """Template parameters where one a rules file names but no check gives reads as empty
    (a message never fails to render)."""

    def __missing__(self, key: str) -> str:
        return ""


def check_card(card_id: str, items: object, context: Context) -> list[Finding]:
    """Every finding of one card (in rule order); pure: the same input, the same findings."""
    if isinstance(items, Unreadable):
        return [context.malformed(card_id, items.reason, items.params, item=items.item,
                                  value=items.value)]
    if not isinstance(items, Mapping):
        return [context.malformed(card_id, "not_object", {"kind": type(items).__name__})]
    findings: list[Finding] = []
    values: dict[int, str] = {}
    keys = context.keys
    for key, value in items.items():
        number = keys.get(key) if isinstance(key, str) else None
        if number is None:
            number = item_number(key)
            if number is None or number not in context.profile.items:
                findings.append(context.malformed(card_id, "unknown_item", {"key": key},
                                                  value=value if isinstance(value, str) else ""))
                continue
        if isinstance(value, str):
            value = value.strip()
            if value:
                values[number] = value
        elif value is not None:
            findings.append(context.malformed(card_id, "not_text", {"key": number,
                                              "kind": type(value).__name__}, item=number))
    city = values.get(context.city_item, "")
    if findings:
        findings = [f._replace(city=city) for f in findings]
    for check in context.checks:
        findings.extend(check(card_id, values, city))
    return findings


# -- the checks: one compiler per `check` kind, each returning a closure over its data --------


def _id_number(rule: Rule, items: tuple[int, ...], ctx: Context) -> Check:
    def check(card: str, values: dict[int, str], city: str) -> Iterator[Finding]:
        for n in items:
            value = values.get(n)
            if value is not None:
                reason = check_id_number(value)
                if reason is not None:
                    yield ctx.finding(rule, card, n, value, city, reason_zh=reason.zh,
                                      reason_en=reason.en)
    return check


def _birth_in_id(value: str) -> str | None:
    """The birth date YYYYMMDD an ID number carries (18 digits, or 15 of GB 11643-1989)."""
    if len(value) == 18 and value[:17].isascii() and value[:17].isdigit():
        return value[6:14]
    if len(value) == 15 and value.isascii() and value.isdigit():
        return "19" + value[6:12]
    return None


def _birth_date_in_id(rule: Rule, items: tuple[int, ...], ctx: Context) -> Check:
    id_item, birth_item = items

    def check(card: str, values: dict[int, str], city: str) -> Iterator[Finding]:
        number, birth = values.get(id_item), values.get(birth_item)
        if number is None or birth is None:
            return
        inside = _birth_in_id(number)
        # an unreal date on either side is ID_CHECKSUM's or DATE_INVALID's, not a mismatch
        if (inside is not None and inside != birth and parse_date(inside) is not None
                and parse_date(birth) is not None):
            yield ctx.finding(rule, card, id_item, number, city, birth=inside,
                              other=birth_item, other_value=birth)
    return check


def _equal(rule: Rule, items: tuple[int, ...], ctx: Context) -> Check:
    first, second = items

    def check(card: str, values: dict[int, str], city: str) -> Iterator[Finding]:
        a, b = values.get(first), values.get(second)
        if a is not None and b is not None and a != b:
            yield ctx.finding(rule, card, first, a, city, other=second, other_value=b)
    return check


def _code(rule: Rule, items: tuple[int, ...], ctx: Context) -> Check:
    table = ctx.profile.spec.code_tables[rule.table or ""]
    accepted = set(table.values or ())
    pattern = re.compile(table.pattern) if table.pattern else None
    pad = rule.pad_to
    codes = ", ".join(table.values or ()) or (table.pattern or "")

    def ok(value: str) -> bool:
        if pad is not None and len(value) < pad and value.isdigit():
            value = value.zfill(pad)
        return value in accepted if pattern is None else bool(pattern.search(value))

    def check(card: str, values: dict[int, str], city: str) -> Iterator[Finding]:
        for n in items:
            value = values.get(n)
            if value is not None and not ok(value):
                yield ctx.finding(rule, card, n, value, city, codes=codes)
    return check


def _date(rule: Rule, items: tuple[int, ...], ctx: Context) -> Check:
    def check(card: str, values: dict[int, str], city: str) -> Iterator[Finding]:
        for n in items:
            value = values.get(n)
            if value is not None and parse_date(value) is None:
                yield ctx.finding(rule, card, n, value, city)
    return check


def _date_order(rule: Rule, items: tuple[int, ...], ctx: Context) -> Check:
    steps = rule.order or []
    relations = rule.relations or {}

    def check(card: str, values: dict[int, str], city: str) -> Iterator[Finding]:
        previous: tuple[int, str, dt.date] | None = None
        strict = False
        for step in steps:
            value = values.get(step.item)
            strict = strict or step.after == "strictly"
            date = parse_date(value) if value is not None else None
            if value is None or date is None:
                continue  # absent, or DATE_INVALID's
            if previous is not None:
                item, earlier, earlier_date = previous
                if date < earlier_date or (strict and date == earlier_date):
                    relation = relations["strictly" if strict else "or_same"]
                    yield ctx.finding(rule, card, step.item, value, city, other=item,
                                      other_value=earlier, relation_zh=relation.zh,
                                      relation_en=relation.en)
            previous, strict = (step.item, value, date), False
    return check


def _expired(rule: Rule, items: tuple[int, ...], ctx: Context) -> Check:
    on = ctx.validated_on

    def check(card: str, values: dict[int, str], city: str) -> Iterator[Finding]:
        for n in items:
            value = values.get(n)
            date = parse_date(value) if value is not None else None
            if value is not None and date is not None and date < on:
                yield ctx.finding(rule, card, n, value, city, date=on.isoformat())
    return check


def _city(rule: Rule, items: tuple[int, ...], ctx: Context) -> Check:
    known = ctx.divisions

    def check(card: str, values: dict[int, str], city: str) -> Iterator[Finding]:
        for n in items:
            value = values.get(n)
            if value is not None and value not in known:
                yield ctx.finding(rule, card, n, value, city)
    return check


def _phone(rule: Rule, items: tuple[int, ...], ctx: Context) -> Check:
    patterns = [re.compile(p) for p in (rule.patterns or {}).values()]
    separators = rule.separators
    strip_all = str.maketrans("", "", separators)
    strip_spaces = str.maketrans("", "", " ")

    def ok(value: str) -> bool:
        forms = {value.translate(strip_spaces), value.translate(strip_all)}
        return any(p.match(form) for p in patterns for form in forms)

    def check(card: str, values: dict[int, str], city: str) -> Iterator[Finding]:
        for n in items:
            value = values.get(n)
            if value is not None and not ok(value):
                yield ctx.finding(rule, card, n, value, city)
    return check


def _required(rule: Rule, items: tuple[int, ...], ctx: Context) -> Check:
    required = ctx.rules.required

    def check(card: str, values: dict[int, str], city: str) -> Iterator[Finding]:
        for n in required:
            if n not in values:
                yield ctx.finding(rule, card, n, "", city)
    return check


_COMPILERS: dict[str, Callable[[Rule, tuple[int, ...], Context], Check]] = {
    "id_number": _id_number,
    "birth_date_in_id": _birth_date_in_id,
    "equal": _equal,
    "code": _code,
    "date": _date,
    "date_order": _date_order,
    "expired": _expired,
    "city": _city,
    "phone": _phone,
    "required": _required,
}
