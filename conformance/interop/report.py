"""interop.html and interop.pdf from interop.json, in the report's rendering environment
(conformance/report/render.py: jinja2 templates, the report's CSS and page furniture,
WeasyPrint with the CJK font), so the matrix reads like the suite's other reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markupsafe import Markup

from conformance.interop.matrix import FAILS, STATUSES
from conformance.messages import msg
from conformance.report.render import load_template, write_pdf

__all__ = ["INTEROP_HTML", "INTEROP_PDF", "render_matrix", "write_matrix_report"]

INTEROP_HTML, INTEROP_PDF = "interop.html", "interop.pdf"
STATUS_CLASS = {s: s.replace("_", "-") for s in STATUSES}


def status_label(status: str) -> str:
    """可互通 works: how every copy names a cell's status."""
    m = msg(f"interop.status.{status}")
    return f"{m.zh} {m.en}"


def render_matrix(doc: dict[str, Any], *, zone: Any = None) -> str:
    """The bilingual matrix report as HTML (the same document is printed to the PDF)."""
    template, css = load_template("interop.html.j2", ("report.css", "interop.css"),
                                  zone=zone, filters={"status": status_label})
    cells = {(p["card"], p["terminal"]): p for p in doc["pairs"]}
    notes: list[Any] = list(doc.get("notes", []))  # {zh, en}: a card sample's row, first
    notes += [msg("interop.note.card_fails_everywhere", card=c["name"]) for c in doc["cards"]
             if len(doc["terminals"]) > 1 and all(
                 cells[(c["name"], t["name"])]["status"] == FAILS for t in doc["terminals"])]
    notes += [msg("interop.note.terminal_fails_everywhere", terminal=t["name"])
              for t in doc["terminals"] if len(doc["cards"]) > 1 and all(
                  cells[(c["name"], t["name"])]["status"] == FAILS for c in doc["cards"])]
    failing = [p for p in doc["pairs"] if p["status"] == FAILS]
    others = [p for p in doc["pairs"] if p["status"] not in (FAILS, "works")]
    return template.render(m=doc, cells=cells, failing=failing, others=others, notes=notes,
                           status_class=STATUS_CLASS, css=Markup(css))


def write_matrix_report(out: Path, doc: dict[str, Any], *, pdf: bool = True,
                        zone: Any = None) -> list[Path]:
    """Write interop.html (and interop.pdf) beside interop.json; the paths written."""
    html = render_matrix(doc, zone=zone)
    written = [out / INTEROP_HTML]
    written[0].write_text(html, encoding="utf-8")
    if pdf:
        write_pdf(html, out / INTEROP_PDF)
        written.append(out / INTEROP_PDF)
    return written
