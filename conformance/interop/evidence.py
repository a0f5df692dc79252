"""The few evidence lines that show why a pair failed: what the terminal answered, what the
judge found, and the APDUs at the place it found it (the whole trace stays in the pair's
evidence file)."""

from __future__ import annotations

import json
import re

from conformance.terminal.cards import Exchange
from conformance.terminal.cases import TerminalCase
from conformance.terminal.judge import RULES, Finding
from conformance.terminal.transaction import Outcome

__all__ = ["excerpt"]

SHOWN_FINDINGS = 3
AROUND = 2
"""APDUs shown before a finding's exchange (and one after it)."""
HEX = 44
"""Hex digits of a command or answer shown before it is cut with …"""
OUTPUT = 160
ANSWERED = "answered"
"""The check of how the terminal ended: its last APDUs show the status word that stopped it."""


def _hex(data: bytes) -> str:
    text = data.hex().upper()
    return text if len(text) <= HEX else text[:HEX] + "…"


def _exchange(i: int, ex: Exchange) -> str:
    if ex.reset:
        return f"#{i:<3} power-up, ATR {_hex(ex.response)}"
    return f"#{i:<3} {ex.ef or ex.df or '-':<10} > {_hex(ex.command)}  < {_hex(ex.response)}"


def _command(case: TerminalCase, argv: list[str]) -> str:
    """The transaction as started: the program's name, the operation, its arguments (a long
    list cut in the middle)."""
    program = argv[0].rsplit("/", 1)[-1] if argv else "?"
    args = list(case.args)
    if len(args) > 6:
        args = [*args[:3], "…", *args[-2:]]
    return " ".join([program, "…", case.operation, *args])


def _last_command(trace: list[Exchange]) -> int:
    """The last APDU of the trace (a terminal powers the card down as it leaves)."""
    return max((i for i, ex in enumerate(trace) if not ex.reset), default=-1)


def _output(outcome: Outcome, findings: list[Finding]) -> str:
    """What the terminal printed; for a values finding only the items it names."""
    doc = outcome.document if isinstance(outcome.document, dict) else None
    named = {n for f in findings if f.rule == "values" for n in re.findall(r"item (\d+)", f.en)}
    items = doc.get("items") if doc is not None else None
    if not named or not isinstance(items, dict):
        return outcome.stdout
    picked = {n: items[n] for n in sorted(named, key=int) if n in items}
    return json.dumps({"items": picked}, ensure_ascii=False) + " (only the items found wrong)"


def excerpt(case: TerminalCase, outcome: Outcome, trace: list[Exchange],
            findings: list[Finding]) -> list[str]:
    """Lines for the report: the transaction, its answer, each finding with its APDUs (a
    trace rule found at the end of the transaction, or a refused transaction: the last APDUs;
    another result check: none, the terminal's output shows it)."""
    shown = _command(case, outcome.argv)
    code = "killed" if outcome.exit_code is None else f"exit {outcome.exit_code}"
    text = " ".join(_output(outcome, findings).split())
    lines = [f"$ {shown}  → {code}",
             "stdout: " + (text if len(text) <= OUTPUT else text[:OUTPUT] + "…")]
    picked: set[int] = set()
    for f in findings[:SHOWN_FINDINGS]:
        lines.append(f"finding {f.rule}" + (f" at #{f.at}" if f.at >= 0 else "") + f": {f.en}")
        if f.at < 0 and f.rule not in RULES and f.rule != ANSWERED:
            continue  # a result check: the output above shows it
        at = f.at if f.at >= 0 else _last_command(trace)
        for i in range(max(0, at - AROUND), min(len(trace), at + 2)):
            if i not in picked:
                picked.add(i)
                lines.append("  " + _exchange(i, trace[i]))
    if len(findings) > SHOWN_FINDINGS:
        lines.append(f"(+{len(findings) - SHOWN_FINDINGS} more findings in the evidence file)")
    return lines
