"""The card data quality report of `rhc validate cards`: quality.html and quality.pdf.

A province reads it to decide what to fix in its card-management system: counts per rule and
per issuing city, a chart of each, and the findings themselves. It is rendered from
validation.json alone (never from the cards), with the certification report's jinja2
environment, stylesheet, page furniture (第 X 页 共 Y 页), SVG chart and PDF printer
(conformance/report/render.py), so both reports look and print alike.

The report leaves the office that validated the batch, so personal data is masked unless it is
asked for: the value of an item marked ``personal: true`` in the profile, the card column (a CSV
row is named by its card number, item 8) and any number quoted in a message or an input path.
A mask keeps just enough to find the card again (110105********002X); the shapes are data in
profiles/reports/quality.yaml. The findings table is capped (same file) so a batch with 20,000
findings still prints in seconds; findings.csv holds them all.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from conformance.messages import Msg, msg
from conformance.model.profile import CardProfile, load_profile
from conformance.model.source import ProfileError, load_yaml, pydantic_errors
from conformance.report.model import ReportError
from conformance.report.render import (
    TAB_EM,
    bars_svg,
    column_stop,
    load_template,
    local,
    tab_row,
    text_width,
    write_pdf,
)
from conformance.resources import PROFILES_DIR

MASKS_PATH = PROFILES_DIR / "reports" / "quality.yaml"
TEMPLATE = "quality.html.j2"
STYLESHEETS = ("report.css", "quality.css")  # the certification report's, then this one's
FINDING_COLOUR = "#c62828"
CLEAN_COLOUR = "#2e7d32"

__all__ = ["MASKS_PATH", "Masker", "cap_per_rule", "load_masks", "write_quality_report"]


# ---------------------------------------------------------------------------------------------
# profiles/reports/quality.yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Shape(_Strict):
    """What a mask keeps of a value: its first and last characters; `stars` fixes how many
    fill characters stand for the rest (so that a name's length is not told)."""

    keep_head: int = Field(0, ge=0)
    keep_tail: int = Field(0, ge=0)
    stars: int | None = Field(None, ge=1)


class FreeText(_Strict):
    min_digits: int = Field(ge=2)
    shape: str


class MaskTable(_Strict):
    fill: str = Field(min_length=1, max_length=1)
    min_hidden: int = Field(ge=1)
    shapes: dict[str, Shape]
    items: dict[int, str]
    default: str
    unknown: str
    free_text: list[FreeText]
    non_personal: list[FreeText]


class ReportLimits(_Strict):
    max_findings: int = Field(ge=1)
    chart_cities: int = Field(ge=1)
    max_inputs: int = Field(ge=1)


class MasksFile(_Strict):
    masks: MaskTable
    report: ReportLimits
    _path: Path = PrivateAttr(default=MASKS_PATH)

    @property
    def path(self) -> Path:
        return self._path

    def shape_names(self) -> list[tuple[tuple[str | int, ...], str]]:
        m = self.masks
        return [
            *((("masks", "items", n), s) for n, s in m.items.items()),
            (("masks", "default"), m.default),
            (("masks", "unknown"), m.unknown),
            *((("masks", "free_text", i, "shape"), f.shape) for i, f in enumerate(m.free_text)),
            *((("masks", "non_personal", i, "shape"), f.shape)
              for i, f in enumerate(m.non_personal)),
        ]


@cache
def load_masks(path: Path = MASKS_PATH) -> MasksFile:
    """The quality report file (masks, limits), checked: a malformed file or an unknown
    shape name is a ProfileError naming the file, key and line."""
    doc = load_yaml(path)
    try:
        table = MasksFile.model_validate(doc.data)
    except ValidationError as exc:
        raise pydantic_errors(doc, exc) from None
    for where, name in table.shape_names():
        if name not in table.masks.shapes:
            raise ProfileError(f"{doc.where(where)}: no mask shape {name!r} in masks.shapes")
    table._path = doc.path
    return table


# ---------------------------------------------------------------------------------------------
# masking

_RUN = re.compile(r"\d+(?:[-/.]\d+)+(?![0-9A-Za-z])|[0-9A-Za-z]+")
"""A run of letters and digits in free text, with the separators a date or number is written
with (1985-12-21, 138-1234-5678): the unit the free-text masks judge by its digits."""
_SEPARATORS = re.compile(r"[-/.]")


def _bare(run: str) -> str:
    """A run without its separators: 1985-12-21 and 19851221 are the same value."""
    return _SEPARATORS.sub("", run)


class Masker:
    """Masks what the report prints (or passes it through when personal data is shown)."""

    def __init__(self, masks: MasksFile, profile: CardProfile, *, show_personal: bool):
        table = masks.masks
        for number in table.items:
            if number not in profile.items or not profile.items[number].personal:
                raise ProfileError(
                    f"{masks.path}: masks.items names item {number}, which profile "
                    f"{profile.source.name} does not mark personal"
                )
        self.table = table
        self.show = show_personal
        self.personal = {n for n, item in profile.items.items() if item.personal}
        self._free = sorted(table.free_text, key=lambda f: f.min_digits, reverse=True)
        self._other = sorted(table.non_personal, key=lambda f: f.min_digits, reverse=True)

    def apply(self, value: str, shape_name: str) -> str:
        """The value with all but the shape's head and tail replaced by the fill character."""
        if not value:
            return value
        shape = self.table.shapes[shape_name]
        head, tail = shape.keep_head, shape.keep_tail
        hidden = len(value) - head - tail
        if hidden < self.table.min_hidden and not (shape.stars and hidden > 0):
            head = tail = 0
            hidden = len(value)
        stars = self.table.fill * (shape.stars or hidden)
        return value[:head] + stars + (value[len(value) - tail:] if tail else "")

    def is_personal(self, item: int | None) -> bool:
        return item is None or item in self.personal

    def value(self, item: int | None, value: str) -> str:
        """A finding's value as printed: masked if its item is personal or unknown; the value
        of any other item only where it holds what looks like an ID number (a shifted CSV
        column puts the holder's data under another item's name)."""
        if self.show or not value:
            return value
        if not self.is_personal(item):
            return self._runs(value, self._other, ())
        if item is None:
            return self.apply(value, self.table.unknown)
        return self.apply(value, self.table.items.get(item, self.table.default))

    def text(self, text: str, keep: Iterable[str] = ()) -> str:
        """Free text with every number long enough to identify someone masked (an ID or card
        number, a phone number, a birth date); a run that is one of `keep` (a non-personal value
        the text is about, the validation date) stays."""
        if self.show or not text:
            return text
        return self._runs(text, self._free, keep)

    def _runs(self, text: str, rules: Sequence[FreeText], keep: Iterable[str]) -> str:
        """`text` with each run of letters and digits masked by the first of `rules` (highest
        `min_digits` first) whose digit count it reaches, unless it is one of `keep`."""
        kept = {_bare(k) for k in keep}

        def mask(match: re.Match[str]) -> str:
            run = match.group()
            if _bare(run) in kept:
                return run
            digits = sum(ch.isdigit() for ch in run)
            for rule in rules:
                if digits >= rule.min_digits:
                    return self.apply(run, rule.shape)
            return run

        return _RUN.sub(mask, text)

    def message(self, text: str, item: int | None, value: str, keep: Iterable[str]) -> str:
        """A finding's message: its own value replaced by the value as printed, then free text
        (the finding's value, where it is shown, stays as it is shown)."""
        if self.show:
            return text
        keep = [*keep]
        if value:
            printed = self.value(item, value)
            if printed != value:
                quoted = re.compile(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])")
                text = quoted.sub(lambda _: printed, text)
            else:
                keep += [value, *_RUN.findall(value)]
        return self.text(text, keep)


# ---------------------------------------------------------------------------------------------
# validation.json


class _Loose(BaseModel):
    """validation.json is read leniently (keys the report does not print are ignored; a card
    number or value written as a JSON number is read as text), but what it prints must be
    there and well-typed."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class FindingIn(_Loose):
    card: str
    rule: str
    item: int | None = None
    value: str | None = None
    message_zh: str = ""
    message_en: str = ""
    city: str | None = None

    _no_null_text = field_validator("message_zh", "message_en", mode="before")(
        lambda v: "" if v is None else v)


class RuleIn(_Loose):
    name: str
    message_zh: str = ""
    message_en: str = ""
    title_zh: str = ""
    """The rule's short title (a table's description); its message is the template of one
    finding, with {placeholders}."""
    title_en: str = ""
    count: int = Field(0, ge=0)

    _no_null_text = field_validator("message_zh", "message_en", "title_zh", "title_en",
                                    mode="before")(
        lambda v: "" if v is None else v)


class CityIn(_Loose):
    code: str
    name_zh: str = ""
    cards: int = Field(0, ge=0)
    cards_with_findings: int = Field(0, ge=0)
    findings: int = Field(0, ge=0)


class SourceIn(_Loose):
    file: str
    sha256: str = ""


class ValidationIn(_Loose):
    cards: int = Field(ge=0)
    findings: list[FindingIn]
    validated_on: str = ""
    generated_at: str = ""
    inputs: list[str] = []
    rules: list[RuleIn] = []
    by_city: list[CityIn] = []
    cards_with_findings: int | None = None
    rules_source: list[SourceIn] = []


def parse_validation(validation: Mapping[str, Any]) -> ValidationIn:
    """validation.json as the report reads it; a malformed one is a ReportError naming the key."""
    try:
        return ValidationIn.model_validate(validation)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ReportError(f"validation.json: {where}: {first['msg']}") from None


# ---------------------------------------------------------------------------------------------
# what the report shows


def cap_per_rule(counts: Mapping[str, int], cap: int) -> dict[str, int]:
    """How many findings of each rule the table lists: at most `cap` in all, shared fairly so a
    rule with few findings is listed whole and the rule with most does not crowd out the rest."""
    taken = {rule: 0 for rule in counts}
    pending = [rule for rule, n in counts.items() if n > 0]
    left = cap
    while pending and left > 0:
        share = max(1, left // len(pending))
        for rule in list(pending):
            take = min(share, counts[rule] - taken[rule], left)
            taken[rule] += take
            left -= take
            if taken[rule] == counts[rule]:
                pending.remove(rule)
            if left == 0:
                break
    return taken


def printed_time(value: str) -> str:
    """generated_at as the certification report prints a time: 2026-12-01 20:05:03+08:00, in
    the offset it was written with."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value or "—"
    return local(value, moment.tzinfo or dt.UTC)


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


@dataclass
class Row:
    """One printed line of the findings table (already masked)."""

    card: str
    item: str
    value: str
    message_zh: str
    message_en: str


@dataclass
class RuleGroup:
    name: str
    description_zh: str
    description_en: str
    total: int
    rows: list[Row]


@dataclass
class RuleCount:
    name: str
    description_zh: str
    description_en: str
    findings: int
    cards: int


def _rule_counts(data: ValidationIn) -> list[RuleCount]:
    """Every rule of the run in the rules file's order (rules that did not fire too: the report
    shows what was checked), then any rule a finding names that the list lacks."""
    per_rule = Counter(f.rule for f in data.findings)
    cards: dict[str, set[str]] = defaultdict(set)
    for f in data.findings:
        cards[f.rule].add(f.card)
    rows = [
        RuleCount(r.name, r.title_zh or r.message_zh, r.title_en or r.message_en,
                  r.count or per_rule[r.name],
                  len(cards[r.name]))
        for r in data.rules
    ]
    listed = {r.name for r in data.rules}
    rows += [RuleCount(name, "", "", n, len(cards[name]))
             for name, n in per_rule.items() if name not in listed]
    return rows


def _groups(data: ValidationIn, rules: list[RuleCount], masker: Masker, profile: CardProfile,
            cap: int) -> list[RuleGroup]:
    by_rule: dict[str, list[FindingIn]] = defaultdict(list)
    for f in data.findings:
        by_rule[f.rule].append(f)
    shown = cap_per_rule({r.name: len(by_rule[r.name]) for r in rules}, cap)
    keep = [data.validated_on]  # also as 20261201: runs are compared without separators
    groups = []
    for rule in rules:
        findings = by_rule[rule.name]
        if not findings:
            continue
        rows = []
        for f in findings[: shown[rule.name]]:
            value = f.value or ""
            if f.item is None:
                item = msg("quality.whole_card").zh
            elif f.item in profile.items:
                item = f"{f.item} {profile.items[f.item].zh}"
            else:
                item = str(f.item)
            rows.append(Row(
                card=masker.text(f.card),
                item=item,
                value=masker.value(f.item, value),
                message_zh=masker.message(f.message_zh, f.item, value, keep),
                message_en=masker.message(f.message_en, f.item, value, keep),
            ))
        groups.append(RuleGroup(rule.name, rule.description_zh, rule.description_en,
                                len(findings), rows))
    return groups


def _charts(data: ValidationIn, rules: list[RuleCount], most: int) -> tuple[Markup, Markup, int]:
    """The per-rule chart, the per-city chart and how many cities the latter shows."""
    by_rule = bars_svg(
        [(r.name, {"findings": r.findings}) for r in rules],
        [("findings", _both("quality.legend_findings"), FINDING_COLOUR)],
        "findings per rule",
    )
    cities = sorted(data.by_city, key=lambda c: (-c.cards_with_findings, c.code))[:most]
    cities.sort(key=lambda c: c.code)
    by_city = bars_svg(
        [(f"{c.code} {c.name_zh}".strip(),
          {"flagged": c.cards_with_findings, "clean": max(c.cards - c.cards_with_findings, 0)})
         for c in cities],
        [("flagged", _both("quality.legend_flagged"), FINDING_COLOUR),
         ("clean", _both("quality.legend_clean"), CLEAN_COLOUR)],
        "cards per city",
    )
    return by_rule, by_city, len(cities)


def _both(key: str, **params: Any) -> str:
    message = msg(key, **params)
    return f"{message.zh} {message.en}"


def _label(key: str, **params: Any) -> Markup:
    """A bilingual label as the certification report prints one: 中文 <span>English</span>."""
    message: Msg = msg(key, **params)
    return Markup('{} <span class="en">{}</span>').format(message.zh, message.en)


def _lines(key: str, **params: Any) -> Markup:
    """A bilingual sentence: Chinese, then English on its own line."""
    message: Msg = msg(key, **params)
    return Markup('{}<br><span class="en">{}</span>').format(message.zh, message.en)


@dataclass
class TabRows:
    """The findings table as printed to quality.pdf: tab-aligned paragraphs (WeasyPrint lays
    them out several times faster than table rows; render.case_rows explains the grid)."""

    header: str
    rows: list[tuple[str, str]]  # (css class: "group" or "", text)
    indent: float  # em: where the message column starts, and its continuation lines


PDF_CAP_EM = {"card": 22.0, "item": 14.0, "value": 14.0}
"""The widest a column of the PDF's findings list grows (em); a longer card name pushes its
row's next cells a stop further, a longer value moves to the message column."""


def tab_rows(groups: Sequence[RuleGroup]) -> TabRows:
    """The tab-aligned findings list of quality.pdf, from the rows quality.html shows."""
    header = [_both(key) for key in ("quality.card", "quality.item", "quality.value",
                                     "quality.message")]
    rows = [r for g in groups for r in g.rows]

    def widest(cells: Iterable[str], title: str, cap: float) -> float:
        return min(max((text_width(c) for c in [*cells, title]), default=0.0), cap)

    col1 = column_stop(0.0, widest((r.card for r in rows), header[0], PDF_CAP_EM["card"]))
    col2 = column_stop(col1, widest((r.item for r in rows), header[1], PDF_CAP_EM["item"]))
    room = PDF_CAP_EM["value"]
    col3 = column_stop(col2, widest((r.value for r in rows if text_width(r.value) <= room),
                                    header[2], room))
    lines: list[tuple[str, str]] = []
    for group in groups:
        shown = msg("quality.group_shown", shown=f"{len(group.rows):,}", total=f"{group.total:,}")
        title = " ".join(x for x in (group.name, group.description_zh, group.description_en) if x)
        lines.append(("group", f"{title} · {shown.zh} {shown.en}"))
        for r in group.rows:
            value, message = r.value, f"{r.message_zh}\n{r.message_en}"
            if text_width(value) > col3 - col2 - 1.0:
                value, message = "", f"{_both('quality.value')}: {value}\n{message}"
            lines.append(("", tab_row((r.card, r.item, value, message), (col1, col2, col3))))
    return TabRows(tab_row(header, (col1, col2, col3)), lines, col3)


def render_quality_html(validation: Mapping[str, Any], *, show_personal: bool = False,
                        profile: CardProfile | None = None) -> tuple[str, str]:
    """quality.html and the HTML printed to quality.pdf, from validation.json. They differ
    only in the findings list: a table on screen, tab-aligned paragraphs in the PDF."""
    data = parse_validation(validation)
    profile = profile or load_profile()
    limits = load_masks()
    masker = Masker(limits, profile, show_personal=show_personal)
    rules = _rule_counts(data)
    groups = _groups(data, rules, masker, profile, limits.report.max_findings)
    chart_rules, chart_cities, cities_shown = _charts(data, rules, limits.report.chart_cities)
    flagged = (data.cards_with_findings if data.cards_with_findings is not None
               else len({f.card for f in data.findings}))
    template, css = load_template(TEMPLATE, STYLESHEETS)
    context = dict(
        d=data,
        css=Markup(css),
        label=_label,
        lines=_lines,
        m=lambda key, **p: msg(key, **p),
        show_personal=show_personal,
        flagged=flagged,
        percent=percent,
        generated_at=printed_time(data.generated_at),
        inputs=[masker.text(i) for i in data.inputs[:limits.report.max_inputs]],
        more_inputs=max(0, len(data.inputs) - limits.report.max_inputs),
        profile=profile,
        rules=rules,
        cities=data.by_city,
        city_totals=_city_totals(data.by_city),
        groups=groups,
        total=len(data.findings),
        shown=sum(len(g.rows) for g in groups),
        chart_rules=chart_rules,
        chart_cities=chart_cities,
        cities_shown=cities_shown,
        tab_em=TAB_EM,
    )
    html = template.render(pdf=False, tab=None, **context)
    printed = template.render(pdf=True, tab=tab_rows(groups), **context)
    return html, printed


def _city_totals(cities: Sequence[CityIn]) -> dict[str, int]:
    return {
        "cards": sum(c.cards for c in cities),
        "cards_with_findings": sum(c.cards_with_findings for c in cities),
        "findings": sum(c.findings for c in cities),
    }


def write_quality_report(validation: dict, out_dir: Path, *, show_personal: bool = False,
                         profile: CardProfile | None = None) -> list[Path]:
    """Write out_dir/quality.html and out_dir/quality.pdf; return their paths."""
    out_dir = Path(out_dir)
    html_path, pdf_path = out_dir / "quality.html", out_dir / "quality.pdf"
    html, printed = render_quality_html(validation, show_personal=show_personal,
                                        profile=profile)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        html_path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write {html_path}: {exc}") from None
    write_pdf(printed, pdf_path)
    return [html_path, pdf_path]
