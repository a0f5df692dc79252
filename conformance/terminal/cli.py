"""`rhc terminal …`: certify a terminal through TERMINAL.md's contract."""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import sys
from pathlib import Path

from conformance.config import ConfigError, _out_dir
from conformance.defaults import (
    DEFAULT_OUT_ROOT,
    EXIT_NO_VERDICT,
    EXIT_NOT_CERTIFICATION,
    EXIT_NOT_CONFORMANT,
    EXIT_OK,
)
from conformance.results import CaseResult, Conclusion

__all__ = ["add_terminal_commands"]

TERMINALS_DIR = Path(__file__).resolve().parents[1] / "profiles" / "terminals"
EXIT_BY_CONCLUSION = {Conclusion.CONFORMANT: EXIT_OK,
                      Conclusion.NOT_CONFORMANT: EXIT_NOT_CONFORMANT,
                      Conclusion.INCOMPLETE: EXIT_NO_VERDICT,
                      Conclusion.NO_FAILURES: EXIT_NOT_CERTIFICATION}


def terminal_profile_path(value: str) -> Path:
    """A profile file, or the name of a shipped one (``reference`` → profiles/terminals/…)."""
    path = Path(value)
    if path.exists() or path.suffix:
        return path
    return TERMINALS_DIR / f"{value}.yaml"


def add_terminal_commands(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Register `rhc terminal` and its `run`; the subcommand table, for more commands."""
    terminal = sub.add_parser("terminal", help="certify a terminal (TERMINAL.md)")
    commands = terminal.add_subparsers(dest="terminal_command", required=True)
    run = commands.add_parser("run", help="run every TERM case on a terminal, with its report")
    run.add_argument("--terminal", required=True, metavar="PROFILE",
                     help="terminal profile: a file, or a name in profiles/terminals/ "
                     "(required, no default)")
    run.add_argument("--out", help="run directory; new or empty, see --replace (default: "
                     "reports/out/terminal-<UTC time>)")
    run.add_argument("--replace", action="store_true",
                     help="remove the earlier run in --out before this one starts")
    run.add_argument("--case", action="append", default=[], metavar="PATTERN",
                     help="only the cases whose ID matches (repeatable; a selection is never a "
                     "certification; default: every TERM case)")
    run.add_argument("--json", action="store_true", help="print summary.json on stdout")
    run.add_argument("--no-report", action="store_true", help="skip the signed report")
    from conformance.cli import _run_options, _signing_options

    _run_options(run, ["lab", "submission", "bench"])
    _signing_options(run)
    run.set_defaults(func=cmd_terminal_run)
    return commands


def cmd_terminal_run(args: argparse.Namespace) -> int:
    from conformance.model import load_profile
    from conformance.terminal.bench import VpcdBench
    from conformance.terminal.cases import terminal_cases
    from conformance.terminal.profile import load_terminal_profile
    from conformance.terminal.run import TerminalRun

    terminal = load_terminal_profile(terminal_profile_path(args.terminal))
    cases = terminal_cases()
    if args.case:
        cases = [c for c in cases if any(fnmatch.fnmatchcase(c.id, p.upper()) for p in args.case)]
        if not cases:
            raise ConfigError(f"--case: {', '.join(args.case)} match no TERM case")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = _out_dir({"out": args.out or DEFAULT_OUT_ROOT / f"terminal-{stamp}",
                    "replace": args.replace})
    assert out is not None
    if args.replace and out.is_dir():
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    text = sys.stderr if args.json else sys.stdout

    def progress(r: CaseResult) -> None:
        reason = f" — {r.reason}" if r.reason else ""
        print(f"{r.id:<14} {r.verdict.value:<14}{reason}", file=text, flush=True)

    print(f"rhc: terminal {terminal.name} ({terminal.vendor} {terminal.model} "
          f"{terminal.version}), {len(cases)} cases, run directory {out}", file=text)
    run = TerminalRun(terminal, load_profile(args.profile), cases, VpcdBench(), out,
                      lab_path=Path(args.lab) if args.lab else None, progress=progress)
    summary = run.run()
    if not args.no_report:
        from conformance.terminal.report import issue_report

        issue_report(out, args, text)
    print(f"rhc: {summary.verdict.value} {json.dumps(summary.counts)}", file=text)
    if args.json:
        print(summary.to_json())
    return EXIT_BY_CONCLUSION[summary.verdict]
