"""report.html and report.pdf from the model (jinja2 templates in report/templates, WeasyPrint).

Bilingual (中文 / English) in one document, as test-center reports usually are. No JavaScript:
the summary chart is an inline SVG generated here, so the HTML works offline and prints as is.
One template renders both: report.html lists the cases in a real table (a browser lays out
780 rows at once and aligns them), the HTML printed to report.pdf as tab-aligned paragraphs
(WeasyPrint is 3–5 times faster on those; see `case_rows`). Every time is printed in the lab's
time zone with its UTC offset.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from conformance.lab import QUANTITIES, local_time
from conformance.report.model import (
    CONCLUSION_RULE_EN,
    CONCLUSION_RULE_ZH,
    VERDICTS,
    CaseEntry,
    GroupCount,
    ReportError,
    ReportModel,
)
from conformance.report.sign import SignatureInfo
from conformance.resources import TEMPLATES_DIR
from conformance.results import CONCLUSION_ZH

VERDICT_ZH = {
    "PASS": "通过",
    "FAIL": "不通过",
    "INCONCLUSIVE": "无法判定",
    "ERROR": "测试系统错误",
    "NOT_APPLICABLE": "不适用",
}
VERDICT_COLOUR = {
    "PASS": "#2e7d32",
    "FAIL": "#c62828",
    "INCONCLUSIVE": "#f9a825",
    "ERROR": "#6a1b9a",
    "NOT_APPLICABLE": "#9e9e9e",
}
METHOD_ZH = {"declaration": "声明", "inspection": "检查", "lab_apparatus": "实验室设备检测"}
METHOD_EN = {
    "declaration": "declaration",
    "inspection": "inspection",
    "lab_apparatus": "lab apparatus",
}
VERDICT_EN = {"ERROR": "ERROR (harness)"}
"""An ERROR is the harness failing (bench, exception), not a finding on the card."""
SUBJECT_ZH = {"card": "用户卡", "terminal": "终端"}
EXTRA_LABELS = {
    "faults": "注入故障 injected faults",
    "kind": "卡 card",
    "host": "主机名 Host name",
    "error": "错误 error",
}
FONT = "WenQuanYi Micro Hei, sans-serif"


def verdict_label(verdict: str) -> str:
    """通过 PASS, 测试系统错误 ERROR (harness): how every copy names a verdict."""
    return f"{VERDICT_ZH.get(verdict, verdict)} {VERDICT_EN.get(verdict, verdict)}"


def local(value: str, zone: Any) -> str:
    """An ISO time as the report prints it: lab-local, with its offset
    (2026-12-01 20:05:03+08:00); "—" when unknown."""
    if not value:
        return "—"
    try:
        moment = local_time(value, zone)
    except ValueError:
        return value
    return moment.replace(microsecond=0).isoformat(sep=" ")


_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def zh_title(title: str) -> str:
    """A Chinese title as printed: a program name such as erase_record inside it reads as
    the command it names, ERASE RECORD (the English title keeps what the case says)."""
    return _SNAKE.sub(lambda m: m.group().replace("_", " ").upper(), title)


def css_string(value: str) -> str:
    """A value inside a CSS string literal (the @page boxes print the report number)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def chart_svg(groups: list[GroupCount]) -> Markup:
    """A stacked horizontal bar per group (verdict colours), with a legend — pure SVG."""
    series = [(v, verdict_label(v), VERDICT_COLOUR[v]) for v in VERDICTS]
    return bars_svg([(g.name, g.counts) for g in groups], series, "verdicts per group")


def bars_svg(
    rows: Sequence[tuple[str, Mapping[str, int]]],
    series: Sequence[tuple[str, str, str]],
    label: str,
) -> Markup:
    """Stacked horizontal bars, one per (name, {series key: count}) row, each series in its
    colour ((key, legend text, colour)), the row's total at its end and a legend — pure SVG,
    so a report needs no script and prints as it shows. Every chart of a report draws here."""
    label_w, bar_w, row_h, top = 150, 440, 18, 6
    width = label_w + bar_w + 50
    height = top + row_h * max(len(rows), 1) + 30
    most = max((sum(counts.values()) for _, counts in rows), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="{FONT}" font-size="10" '
        f'role="img" aria-label="{escape(label)}">'
    ]
    for row, (full_name, counts) in enumerate(rows):
        y = top + row * row_h
        name = full_name if len(full_name) <= 24 else full_name[:23] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{escape(name)}</text>'
        )
        x = float(label_w)
        for key, _text, colour in series:
            n = counts.get(key, 0)
            if not n:
                continue
            w = bar_w * n / most
            parts.append(
                f'<rect x="{x:.2f}" y="{y + 2}" width="{w:.2f}" height="{row_h - 5}" '
                f'fill="{colour}"><title>{escape(key)} {n}</title></rect>'
            )
            x += w
        total = sum(counts.values())
        parts.append(f'<text x="{x + 4:.2f}" y="{y + 12}" fill="#333">{total}</text>')
    y = top + row_h * max(len(rows), 1) + 10
    x = 4.0
    for _key, text, colour in series:
        parts.append(
            f'<rect x="{x:.0f}" y="{y}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 13:.0f}" y="{y + 9}">{escape(text)}</text>'
        )
        x += 22 + sum(10 if ord(ch) > 0x2E80 else 6 for ch in text)
    parts.append("</svg>")
    return Markup("".join(parts))


# ---------------------------------------------------------------------------------------------
# The per-case list: one paragraph per case, columns made with tab stops.
#
# Measured with WeasyPrint 70 on 782 cases: a <table> or rows of inline blocks cost 5-9 ms a
# case (15 s for the PDF); a plain paragraph with tabs costs under 2 ms. Tab stops sit every
# TAB_EM from the start of the line, so the number of tabs each cell needs is worked out here
# from the font's advance widths. WeasyPrint rounds the tab size to whole CSS pixels: the list's
# 7.5pt is 10 px, so a 1em stop is exact (a size in spaces, 4 × 0.26 em, would be rounded and
# the error would add up along the line). Spans would restart the tab grid: rows carry no
# markup, a verdict's colour comes from the paragraph's class.

TAB_EM = 1.0
FONT_FAMILY = "WenQuanYi Micro Hei"


@functools.cache
def _advance() -> Callable[[str], float]:
    """Advance width in em of one character in the report font (heuristic without the font)."""

    def guess(ch: str) -> float:
        if ord(ch) >= 0x2E80:
            return 1.0
        return 0.26 if ch == " " else 0.45 if ch.islower() else 0.62

    try:
        from fontTools.ttLib import TTFont

        fc_match = shutil.which("fc-match")
        if fc_match is None:
            return guess
        found = subprocess.run(
            [fc_match, "-f", "%{file}\n%{index}", FONT_FAMILY],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split("\n")
        font = TTFont(found[0], fontNumber=int(found[1] or 0), lazy=True)
        cmap, hmtx, upm = font.getBestCmap(), font["hmtx"], font["head"].unitsPerEm
    except Exception:  # any font trouble: fall back to the estimate, never fail a report
        return guess

    @functools.cache
    def width(ch: str) -> float:
        glyph = cmap.get(ord(ch))
        return hmtx[glyph][0] / upm if glyph is not None else guess(ch)

    return width


def text_width(text: str) -> float:
    advance = _advance()
    return sum(advance(ch) for ch in text)


@dataclass
class CaseRow:
    verdict: str
    text: str


TAB_MARGIN = 0.22
"""How close (em) to a tab stop a cell may end: the estimate of its width and the laid-out
width differ by a little, and a cell ending that near a stop would take one stop more or
less than counted. Such a cell gets two no-break spaces, clear of the stop."""
PAD = "\u00a0\u00a0"


def _tabs(x: float, column: float) -> tuple[str, float]:
    """Tabs that move the pen from x to the column (one tab if the cell overflows it)."""
    tab = TAB_EM
    pad = ""
    if min(x % tab, tab - x % tab) < TAB_MARGIN:
        pad, x = PAD, x + text_width(PAD)
    start = math.floor(x / tab)
    count = max(1, round(column / tab) - start) if x + 0.3 < column else 1
    return pad + "\t" * count, (start + count) * tab


def tab_row(cells: Sequence[str], columns: Sequence[float]) -> str:
    """One tab-aligned line: the first cell at the margin, each next one at its column (em
    from the margin; a cell that overflows its column pushes the next one a stop further)."""
    text, x = cells[0], text_width(cells[0])
    for cell, column in zip(cells[1:], columns, strict=True):
        tabs, x = _tabs(x, column)
        text += tabs + cell
        x += text_width(cell)
    return text


def column_stop(x: float, widest: float) -> float:
    """The tab stop (em) after a column starting at x whose widest cell is `widest` em."""
    return x + math.ceil((widest + 1.0) / TAB_EM) * TAB_EM


def case_rows(
    model: ReportModel, clause_code: dict[str, str], choice_code: dict[str, str]
) -> tuple[list[CaseRow], CaseRow, float]:
    """The tab-aligned rows, the header row and the hanging indent (em) of the title column."""

    header = ("编号 ID", "判定 Verdict", "M/O",
              "项目 · 要求 · 预期 / 实测 Title · requirement · expected / measured")
    ids = [text_width(c.result.id) for c in model.cases] + [text_width(header[0])]
    verdicts = [text_width(verdict_label(c.verdict)) for c in model.cases]
    col1 = column_stop(0.0, min(max(ids), 22.0))
    col2 = column_stop(col1, max([*verdicts, text_width(header[1])]))
    col3 = column_stop(col2, text_width(header[2]))

    def row(cells: tuple[str, str, str, str], verdict: str) -> CaseRow:
        return CaseRow(verdict=verdict, text=tab_row(cells, (col1, col2, col3)))

    rows = []
    stated = ""  # the requirement of the rows above: the cases of one requirement follow it
    first: dict[tuple[str, str], int] = {}
    for n, case in enumerate(model.cases):
        first.setdefault((case.result.group, requirement_text(case)), n)
    by_requirement = sorted(
        model.cases, key=lambda c: first[(c.result.group, requirement_text(c))]
    )  # stable: catalogue order within a requirement, requirements in order of first case
    for case in by_requirement:
        r = case.result
        requirement = requirement_text(case)
        if requirement and requirement != stated:
            rows.append(CaseRow(verdict="req", text=f"要求 Requirement: {requirement}"))
        stated = requirement
        ref = clause_code[case.source]
        if case.choice_notes:
            ref += "·" + ",".join(choice_code[en] for _, en in case.choice_notes)
        title = f"{zh_title(r.title_zh)} / {r.title_en}  [{ref}]"
        if measures(case):
            title += " · " + measures(case)
        detail = case_detail(case)
        if detail:
            title += "\n" + detail
        mark = "M" if r.mandatory else "O"
        rows.append(row((r.id, verdict_label(case.verdict), mark, title), case.verdict))
    return rows, row(header, "head"), col3


def requirement_text(case: CaseEntry) -> str:
    zh, en = case.requirement_zh, case.requirement_en
    return f"{zh} / {en}" if zh and en and zh != en else zh or en


def measures(case: CaseEntry) -> str:
    """预期 9000 · 实测 6A82: what the case expected and what the card gave (what is known)."""
    parts = [f"预期 {case.expected}" if case.expected else "",
             f"实测 {case.measured}" if case.measured else ""]
    return " · ".join(p for p in parts if p)


def case_detail(case: CaseEntry) -> str:
    """The line under a case's title in report.pdf: the reason (zh / en). The requirement
    heads the run of cases that share it (`case_rows`), so the PDF stays short and fast."""
    r = case.result
    return " / ".join(x for x in (case.reason_zh, r.reason) if x)


def _index(values: list[str], prefix: str) -> tuple[dict[str, str], list[tuple[str, str, int]]]:
    """Codes for repeated texts in order of first use: {text: "C1"}, [(text, "C1", count)]."""
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    codes = {text: f"{prefix}{n}" for n, text in enumerate(counts, start=1)}
    return codes, [(text, codes[text], counts[text]) for text in counts]


def _choice_index(
    model: ReportModel,
) -> tuple[dict[str, str], list[tuple[str, str, str, int]]]:
    """Codes for the choices and interpretations the cases rest on, in order of first use:
    {en: "R1"}, [(zh, en, "R1", count of cases)]."""
    notes = [note for c in model.cases for note in c.choice_notes]
    codes, index = _index([en for _, en in notes], "R")
    zh = {en: zh for zh, en in reversed(notes)}  # the first case's Chinese text
    return codes, [(zh[en], en, code, n) for en, code, n in index]


def load_template(name: str, stylesheets: tuple[str, ...], *, zone: Any = None,
                  filters: dict[str, Any] | None = None) -> tuple[jinja2.Template, str]:
    """A report template of templates/ with the filters every report uses (``local`` times
    in the lab's ``zone``, ``verdict`` labels, ``css`` strings) plus ``filters``, and its
    stylesheets joined; ReportError (one line) when they cannot be loaded."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(local=lambda value: local(value, zone), verdict=verdict_label,
                       css=css_string, **(filters or {}))
    try:
        template = env.get_template(name)
        css = "\n".join((TEMPLATES_DIR / sheet).read_text(encoding="utf-8")
                        for sheet in stylesheets)
    except (OSError, jinja2.TemplateError) as exc:
        raise ReportError(f"report templates in {TEMPLATES_DIR} cannot be loaded: {exc}") \
            from None
    return template, css


def render_html(model: ReportModel, sig: SignatureInfo, *, pdf: bool = False) -> str:
    """The bilingual HTML report; with `pdf`, the same report as printed to report.pdf (cases
    as paragraphs). Both are rendered before report.xml is signed, which lists their digests."""
    template, css = load_template("report.html.j2", ("report.css",), zone=model.lab.tz,
                                  filters={"zh_title": zh_title})
    clause_code, clauses = _index([c.source for c in model.cases], "C")
    choice_code, choices = _choice_index(model)
    rows, header, indent = case_rows(model, clause_code, choice_code) if pdf else ([], None, 0)
    return template.render(
        m=model,
        pdf=pdf,
        clause_code=clause_code,
        choice_code=choice_code,
        requirement_text=requirement_text,
        quantities=QUANTITIES,
        extra_labels=EXTRA_LABELS,
        case_rows=rows,
        case_header=header,
        case_indent=indent,
        tab_em=TAB_EM,
        clauses=clauses,
        choices=choices,
        sig=sig,
        css=Markup(css),
        chart=chart_svg(model.groups),
        verdicts=VERDICTS,
        verdict_zh=VERDICT_ZH,
        conclusion_zh=CONCLUSION_ZH,
        method_zh=METHOD_ZH,
        method_en=METHOD_EN,
        subject_zh=SUBJECT_ZH,
        rule_zh=CONCLUSION_RULE_ZH,
        rule_en=CONCLUSION_RULE_EN,
        mandatory_total=sum(model.mandatory_counts.values()),
        artifacts=[model.profile, model.plan, *model.sources],
    )


def write_pdf(html: str, path: Path) -> None:
    """Print the HTML to PDF with WeasyPrint (fonts through fontconfig/Pango)."""
    import weasyprint  # imported late: it is slow to import and only the PDF needs it

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    try:
        weasyprint.HTML(string=html, base_url=str(TEMPLATES_DIR)).write_pdf(str(path))
    except Exception as exc:  # WeasyPrint/Pango failures of any kind become a clear message
        raise ReportError(f"cannot write the PDF {path}: {type(exc).__name__}: {exc}") from None
