"""Run progress, the closing summary and the steps of the report, drawn with rich on stderr."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

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


REDRAW_S = 0.1
"""The progress bar is redrawn at most this often."""


class RunProgress:
    """A progress bar that also prints every case that does not PASS as it happens.

    `outside_capture` is a context in which the real stderr is reachable: the pytest plugin
    passes the capture manager's, since pytest captures stderr while cases run. The bar is
    drawn only inside it (no refresh thread), so nothing of it lands in the capture.
    """

    def __init__(self, total: int, console: Console | None = None,
                 outside_capture: Callable[[], AbstractContextManager[object]] = nullcontext):
        from conformance.console import console as stderr_console

        self.outside_capture = outside_capture
        self.drawn = 0.0  # when the bar was last drawn (monotonic seconds)
        with outside_capture():
            self.console = console or stderr_console(stderr=True)
            self.progress = Progress(
                TextColumn("[bold]rhc[/bold] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.task = self.progress.add_task("running cases", total=total)
            self.progress.start()

    def advance(self, result: CaseResult) -> None:
        """Count the case; print it if it did not pass; redraw the bar at most 10 times a
        second (a run may end hundreds of cases a second)."""
        self.progress.update(self.task, advance=1, description=result.id)
        notable = result.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE)
        now = time.monotonic()
        if not notable and now - self.drawn < REDRAW_S:
            return
        self.drawn = now
        with self.outside_capture():
            if notable:
                style = STYLE[result.verdict]
                self.progress.console.print(
                    f"[{style}]{result.verdict.value:<13}[/{style}] {result.id}  "
                    f"{escape(bilingual_reason(result).replace(chr(10), ' / '))}",
                    markup=True,
                    highlight=False,
                )
            self.progress.refresh()

    def stop(self) -> None:
        with self.outside_capture():
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
        table.add_column(v.value, justify="right", style=STYLE[v], overflow="fold")
    for group, row in groups.items():
        table.add_row(group, *(str(row[v.value]) for v in Verdict))
    table.add_row("total", *(str(summary.counts[v.value]) for v in Verdict), style="bold")
    return table


ATTENTION = (Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.ERROR)
"""The verdicts an engineer has to look at, in the order the closing table lists them."""


def bilingual_reason(result: CaseResult) -> str:
    """The reason in Chinese and English (one language when the result has only one), and
    what was expected and measured when the result records it."""
    zh, en = getattr(result, "reason_zh", "") or "", result.reason or ""
    lines = [zh, en] if zh and zh != en else [en or zh]
    expected, measured = getattr(result, "expected", ""), getattr(result, "measured", "")
    if expected or measured:
        lines.append(f"期望 expected: {expected or '—'}; 实测 measured: {measured or '—'}")
    return "\n".join(line for line in lines if line)


def attention(results: list[CaseResult]) -> list[CaseResult]:
    """The FAIL, INCONCLUSIVE and ERROR results, in that order, each in catalogue order."""
    return sorted((r for r in results if r.verdict in ATTENTION),
                  key=lambda r: ATTENTION.index(r.verdict))


def print_attention(console: Console, results: list[CaseResult]) -> None:
    """The closing table of the cases that did not pass, with their reasons; IDs whole."""
    from conformance.console import print_table

    rows = [(r.id, r.verdict.value, bilingual_reason(r)) for r in attention(results)]
    if rows:
        print_table(console, f"cases to look at ({len(rows)}): FAIL, INCONCLUSIVE, ERROR",
                    ("ID", "verdict", "原因 / reason"), rows)


def why_incomplete(summary: RunSummary, results: list[CaseResult],
                   stopped: Sequence[str] = ()) -> list[str]:
    """Why a run concluded INCOMPLETE, one sentence a cause (`conclude` decides; this says).

    `stopped` holds what the run knows of its own end (interrupted, bench lost, cases that
    did not run); the results say which mandatory cases could not be judged.
    """
    reasons = list(stopped)
    if not results:
        reasons.append("no case was recorded")
    unjudged = [r for r in results if r.mandatory
                and r.verdict in (Verdict.ERROR, Verdict.INCONCLUSIVE)]
    if unjudged:
        shown = ", ".join(f"{r.id} ({r.verdict.value})" for r in unjudged[:12])
        more = f" and {len(unjudged) - 12} more" if len(unjudged) > 12 else ""
        reasons.append(f"{len(unjudged)} mandatory cases could not be judged: {shown}{more}")
    missing = summary.scope.get("mandatory_missing", 0)
    if missing and not stopped:  # a run that stopped misses what it did not reach
        reasons.append(f"{missing} mandatory cases of the catalogue were not in the run "
                       "(plan or -k selection): no certification in any case")
    return reasons


class ReportSteps:
    """Says on the console which step of writing the signed report is under way, and how
    long the whole took: the callback `write_report(progress=…)` calls at each step."""

    def __init__(self, console: Console):
        self.console = console
        self.started = time.perf_counter()

    def __call__(self, step: str) -> None:
        elapsed = time.perf_counter() - self.started
        self.console.print(f"[dim]report {elapsed:5.1f} s[/dim] {escape(step)} …",
                           highlight=False)

    def done(self) -> None:
        elapsed = time.perf_counter() - self.started
        self.console.print(f"[dim]report {elapsed:5.1f} s[/dim] written and verified",
                           highlight=False)
