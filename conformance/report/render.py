"""report.html and report.pdf from the model (jinja2 templates in reports/templates, WeasyPrint).

Bilingual (中文 / English) in one document, as test-center reports usually are. No JavaScript:
the summary chart is an inline SVG generated here, so the HTML works offline and prints as is.
"""

from __future__ import annotations

import logging
from html import escape
from pathlib import Path

import jinja2
from markupsafe import Markup

from conformance.report.model import (
    CONCLUSION_RULE_EN,
    CONCLUSION_RULE_ZH,
    TEMPLATES_DIR,
    VERDICTS,
    GroupCount,
    ReportError,
    ReportModel,
)
from conformance.report.sign import SignatureInfo

VERDICT_ZH = {
    "PASS": "通过",
    "FAIL": "不通过",
    "INCONCLUSIVE": "无法判定",
    "ERROR": "测试错误",
    "NOT_APPLICABLE": "不适用",
}
VERDICT_COLOUR = {
    "PASS": "#2e7d32",
    "FAIL": "#c62828",
    "INCONCLUSIVE": "#f9a825",
    "ERROR": "#6a1b9a",
    "NOT_APPLICABLE": "#9e9e9e",
}
CONCLUSION_ZH = {"CONFORMANT": "符合", "NOT_CONFORMANT": "不符合", "INCOMPLETE": "检测未完成"}
METHOD_ZH = {"declaration": "声明", "inspection": "检查", "lab_apparatus": "实验室设备检测"}
METHOD_EN = {
    "declaration": "declaration",
    "inspection": "inspection",
    "lab_apparatus": "lab apparatus",
}
SUBJECT_ZH = {"card": "用户卡", "terminal": "终端"}
FONT = "WenQuanYi Micro Hei, sans-serif"


def chart_svg(groups: list[GroupCount]) -> Markup:
    """A stacked horizontal bar per group (verdict colours), with a legend — pure SVG."""
    label_w, bar_w, row_h, top = 150, 440, 18, 6
    width = label_w + bar_w + 50
    height = top + row_h * max(len(groups), 1) + 30
    most = max((g.total for g in groups), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="{FONT}" font-size="10" '
        'role="img" aria-label="verdicts per group">'
    ]
    for row, group in enumerate(groups):
        y = top + row * row_h
        name = group.name if len(group.name) <= 24 else group.name[:23] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{escape(name)}</text>'
        )
        x = float(label_w)
        for verdict in VERDICTS:
            n = group.counts.get(verdict, 0)
            if not n:
                continue
            w = bar_w * n / most
            parts.append(
                f'<rect x="{x:.2f}" y="{y + 2}" width="{w:.2f}" height="{row_h - 5}" '
                f'fill="{VERDICT_COLOUR[verdict]}"><title>{verdict} {n}</title></rect>'
            )
            x += w
        parts.append(f'<text x="{x + 4:.2f}" y="{y + 12}" fill="#333">{group.total}</text>')
    y = top + row_h * max(len(groups), 1) + 10
    x = 4.0
    for verdict in VERDICTS:
        parts.append(
            f'<rect x="{x:.0f}" y="{y}" width="10" height="10" fill="{VERDICT_COLOUR[verdict]}"/>'
            f'<text x="{x + 13:.0f}" y="{y + 9}">{VERDICT_ZH[verdict]} {verdict}</text>'
        )
        label = f"{VERDICT_ZH[verdict]} {verdict}"
        x += 22 + sum(10 if ord(ch) > 0x2E80 else 6 for ch in label)
    parts.append("</svg>")
    return Markup("".join(parts))


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(model: ReportModel, sig: SignatureInfo, report_sha256: str) -> str:
    """The bilingual HTML report (also the input of the PDF)."""
    env = _environment()
    try:
        template = env.get_template("report.html.j2")
        css = (TEMPLATES_DIR / "report.css").read_text(encoding="utf-8")
    except (OSError, jinja2.TemplateError) as exc:
        raise ReportError(f"report templates in {TEMPLATES_DIR} cannot be loaded: {exc}") from None
    return template.render(
        m=model,
        sig=sig,
        css=Markup(css),
        report_sha256=report_sha256,
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
        digest_lines="\n".join(
            f"{c.evidence_sha256}  {c.evidence_path}" for c in model.cases if c.evidence_path
        ),
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
