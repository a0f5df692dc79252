"""Tables on the console that never cut a name: rich tables on a terminal, plain lines otherwise.

A name the user has to type back (a case ID, a fault name) is never truncated or folded: its
column is as wide as its longest value and the other columns wrap around it. Piped or
redirected (`| cat`, a CI log), rich would lay the table out for 80 columns; there the same
rows are written as tab-separated lines instead, whole, one row a line, for grep and cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

PIPE_WIDTH = 200
"""The width of a console that is not a terminal: lines are not wrapped, tables laid out wide."""


def console(stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr) as it is now (capsys and redirections included).

    Not a terminal (piped, redirected, a CI log), it does not wrap lines, so a path or an ID
    stays on one line, and lays tables out PIPE_WIDTH wide instead of rich's 80 columns.
    """
    out = Console(stderr=stderr)
    return out if out.is_terminal else Console(stderr=stderr, width=PIPE_WIDTH, soft_wrap=True)


def print_table(
    out: Console,
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    keys: int = 1,
    styles: Sequence[str | None] = (),
    caption: str | None = None,
) -> None:
    """Print rows under headers; the first `keys` columns hold names that must stay whole.

    On a terminal: a rich table that wraps every other column (overflow fold), or, where the
    terminal is too narrow for that, one block a row (names on a line of their own). Otherwise:
    `# title`, a tab-separated header line and one tab-separated line per row (newlines in a
    cell become " / ").
    """
    if not out.is_terminal:
        _plain(out.file, title, headers, rows, caption)
        return
    widths = [max([len(row[i]) for row in rows] + [len(headers[i])]) for i in range(keys)]
    if sum(widths) + 3 * len(headers) + 1 + MIN_TEXT * (len(headers) - keys) > out.width:
        _stacked(out, title, headers, rows, keys, caption)
        return
    table = Table(title=escape(title), caption=escape(caption) if caption else None)
    for index, header in enumerate(headers):
        if index < keys:
            table.add_column(header, no_wrap=True, min_width=widths[index])
        else:
            style = styles[index] if index < len(styles) else None
            table.add_column(header, overflow="fold", no_wrap=False, style=style)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    out.print(table)


MIN_TEXT = 16
"""Below this many columns for each wrapped column, a table turns into one block a row."""


def _stacked(
    out: Console,
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    keys: int,
    caption: str | None,
) -> None:
    """A terminal too narrow for the table: each row a block, its names whole on the first
    line, then one indented, wrapped line per other column."""
    out.print(f"[bold]{escape(title)}[/bold]", highlight=False)
    for row in rows:
        out.print("[bold]" + escape("  ".join(row[:keys])) + "[/bold]", highlight=False,
                  overflow="ignore", crop=False, soft_wrap=True)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column(overflow="fold")
        for header, cell in zip(headers[keys:], row[keys:], strict=True):
            grid.add_row(escape(header), escape(cell))
        out.print(Padding(grid, (0, 0, 0, 2)))
    if caption:
        out.print(escape(caption), highlight=False)


def _plain(
    file: TextIO,
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    caption: str | None,
) -> None:
    def line(cells: Sequence[str]) -> str:
        return "\t".join(c.replace("\t", " ").replace("\n", " / ") for c in cells)

    print(f"# {title}", file=file)
    print(line(headers), file=file)
    for row in rows:
        print(line(row), file=file)
    if caption:
        print(f"# {caption}", file=file)


SPEC_LABELS = {
    "id": "ID",
    "group": "group 组",
    "title_zh": "标题",
    "title_en": "title",
    "requirement": "requirement key",
    "requirement_zh": "要求",
    "requirement_en": "requirement",
    "source": "source 依据",
    "clause": "trace (lab)",
    "purpose_zh": "目的",
    "purpose": "purpose",
    "preconditions": "preconditions",
    "applicability": "applicability",
    "expected_sw": "expected SW",
    "mandatory": "mandatory",
    "destructive": "destructive",
    "severity": "severity",
    "choices": "[choice] keys",
    "interpretations": "interpretations",
    "reference_choice_zh": "参考配置选择",
    "reference_choice": "reference choice",
    "steps": "steps",
}
"""The fields of a case specification in the order `rhc cases show` prints them."""


def _value(key: str, value: object) -> str:
    if key == "steps":
        steps = list(value) if isinstance(value, (list, tuple)) else []
        return "\n".join(f"{n}. {step}" for n, step in enumerate(steps, 1)) or (
            "no explicit steps: the purpose above is the procedure")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "—"
    return str(value) if value not in (None, "") else "—"


def print_spec(out: Console, spec: dict[str, object]) -> None:
    """One case's specification, a field a row; fields a profile leaves empty are left out
    unless every case has them."""
    keys = [k for k in SPEC_LABELS if k in spec] + [k for k in spec if k not in SPEC_LABELS]
    optional = {"requirement", "requirement_zh", "requirement_en", "source", "purpose_zh",
                "reference_choice", "reference_choice_zh", "choices", "interpretations"}
    rows = [(SPEC_LABELS.get(k, k), _value(k, spec[k])) for k in keys
            if not (k in optional and not spec[k])]
    if not out.is_terminal:
        width = max(cell_len(label) for label, _ in rows)
        indent = "\n" + " " * (width + 2)
        for label, text in rows:
            pad = " " * (width - cell_len(label) + 2)
            print(f"{label}{pad}{text.replace(chr(10), indent)}", file=out.file)
        return
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, text in rows:
        table.add_row(escape(label), escape(text))
    out.print(table)


__all__ = ["console", "print_spec", "print_table"]
