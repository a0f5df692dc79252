"""Run progress and the closing summary table, drawn with rich on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from conformance.results import CaseResult, RunSummary, Scope, Verdict, scope_of, statement

STYLE = {
    Verdict.PASS: "green",
    Verdict.FAIL: "bold red",
    Verdict.INCONCLUSIVE: "yellow",
    Verdict.ERROR: "bold magenta",
    Verdict.NOT_APPLICABLE: "dim",
}
CONCLUSION_STYLE = {
    "CONFORMANT": "bold green",
    "NOT_CONFORMANT": "bold red",
    "INCOMPLETE": "bold yellow",
    "NO_FAILURES": "bold blue",
}
TITLE = {
    Scope.CERTIFICATION: "rhc certification run",
    Scope.PARTIAL: "rhc partial run — not a certification",
    Scope.BENCH_SELF_TEST: "rhc bench self-test (virtual card) — not a product certification",
}


class RunProgress:
    """A progress bar that also prints every case that does not PASS as it happens."""

    def __init__(self, total: int, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]rhc[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.task = self.progress.add_task("running cases", total=total)
        self.progress.start()

    def advance(self, result: CaseResult) -> None:
        if result.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE):
            style = STYLE[result.verdict]
            self.progress.console.print(
                f"[{style}]{result.verdict.value:<13}[/{style}] {result.id}  "
                f"{escape(result.reason)}",
                markup=True,
                highlight=False,
            )
        self.progress.update(self.task, advance=1, description=result.id)

    def stop(self) -> None:
        self.progress.stop()


def summary_table(summary: RunSummary, results: list[CaseResult]) -> Table:
    """Verdict counts per group, and the conclusion as the caption."""
    groups: dict[str, dict[str, int]] = {}
    for r in results:
        row = groups.setdefault(r.group, {v.value: 0 for v in Verdict})
        row[r.verdict.value] += 1
    style = CONCLUSION_STYLE[summary.verdict.value]
    scope = scope_of(summary.scope)
    _, sentence = statement(summary.verdict, scope, results, summary.scope.get("catalogue", 0))
    table = Table(title=TITLE[scope],
                  caption=f"[{style}]{summary.verdict.value}: {escape(sentence)}")
    table.add_column("group")
    for v in Verdict:
        table.add_column(v.value, justify="right", style=STYLE[v])
    for group, row in groups.items():
        table.add_row(group, *(str(row[v.value]) for v in Verdict))
    table.add_row("total", *(str(summary.counts[v.value]) for v in Verdict), style="bold")
    return table
