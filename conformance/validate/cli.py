"""`rhc validate cards …`: the data of issued cards against the rules of profiles/rules/.

Exit codes: 0 every card satisfies every rule, 1 at least one finding (the files say which),
2 usage error (no such input, a bad --date, an --out holding something else), nothing
written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from conformance.config import lab_files
from conformance.defaults import DEFAULT_OUT_ROOT, EXIT_NOT_CONFORMANT, EXIT_OK
from conformance.lab import now_in
from conformance.validate.ruleset import RULES_DIR, Rule
from conformance.validate.run import Outcome, validate_cards, write_outputs
from conformance.validate.sources import Card, expand_inputs, read_inputs, read_readers

__all__ = ["add_validate_commands", "cmd_validate_cards"]

OUT_FILES = ("validation.json", "findings.csv")
"""What a validation leaves in its directory: --replace only removes a directory holding them."""


def add_validate_commands(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Register `rhc validate` and its `cards`; the subcommand table, for more commands."""
    from conformance.cli import VIRTUAL_CARD_OPTIONS, _run_options

    validate = sub.add_parser("validate", help="validate deployed cards (issued-card data)")
    commands = validate.add_subparsers(dest="validate_command", required=True)
    cards = commands.add_parser(
        "cards", help="check card data (dumps, CSV exports, readers) against profiles/rules/",
        description="Check issued-card data against the rules of profiles/rules/*.yaml. "
        "Exit 0: no finding; 1: findings (see DIR/validation.json, findings.csv and the "
        "quality report); 2: usage error, nothing written.")
    cards.add_argument("inputs", nargs="*", metavar="INPUT",
                       help="`rhc card dump` JSON files (one card each; a directory: its "
                       "*.json files) or CSV exports (header item_1,item_2,…; UTF-8 or GBK) "
                       "(default: none; then --reader or --card)")
    cards.add_argument("--out", metavar="DIR", help="output directory, new or empty (see "
                       "--replace; default: reports/out/validate-<UTC time>)")
    cards.add_argument("--replace", action="store_true",
                       help="remove the earlier validation in --out first")
    cards.add_argument("--date", metavar="YYYY-MM-DD",
                       help="validation date for EXPIRED (default: today in the time zone "
                       "of --lab)")
    cards.add_argument("--show-personal-data", action="store_true",
                       help="show the cardholders' personal data in the HTML/PDF report "
                       "(default: masked; validation.json and findings.csv always hold it)")
    cards.add_argument("--rules", metavar="DIR",
                       help="directory of rules files (*.yaml and the tables they name; "
                       "default: the shipped profiles/rules/)")
    cards.add_argument("--reader", metavar="PATTERN",
                       help="also read the card in every PC/SC reader whose name matches "
                       "(exact name or regular expression), as `rhc card dump` reads it "
                       "(default: none)")
    cards.add_argument("--card", choices=("virtual", "pcsc"),
                       help="also read a card live: virtual = the built-in virtual card (its "
                       "options below), pcsc = the readers of --reader (default: none; "
                       "--reader implies pcsc)")
    _run_options(cards, ["lab", "apdu-timeout", *VIRTUAL_CARD_OPTIONS])
    cards.set_defaults(func=cmd_validate_cards)
    return commands


def _date(value: str | None, zone: ZoneInfo) -> dt.date:
    from conformance.cli import CliError

    if value is None:
        return now_in(zone).date()  # today where the lab is
    try:
        if len(value) != 10:
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CliError(f"--date: {value!r} is not a date YYYY-MM-DD") from None


def _out(args: argparse.Namespace) -> Path:
    """The output directory, checked (not yet touched)."""
    from conformance.cli import CliError

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out or DEFAULT_OUT_ROOT / f"validate-{stamp}")
    if out.exists() and not out.is_dir():
        raise CliError(f"--out: {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not args.replace:
            raise CliError(f"--out: {out} is not empty (an earlier validation?); nothing was "
                           "touched: give a new directory, or --replace")
        if not any((out / name).exists() for name in OUT_FILES):
            raise CliError(f"--replace: {out} does not hold a validation "
                           f"({', '.join(OUT_FILES)}); not removing it")
    return out


def _live(args: argparse.Namespace) -> Iterator[Card] | None:
    """Cards read from readers (--reader PATTERN: each matching reader) or the built-in
    virtual card (--card virtual), through `rhc card dump`'s reading."""
    from conformance.cli import CliError, _config, read_card_items

    if not args.reader and args.card is None:
        return None
    if not args.reader:
        # checked now: a bad option stops before anything is written; --out is ours, not a run's
        config = _config(args, out=None, replace=False)
        return read_readers(["virtual card"], lambda _: read_card_items(config))
    if args.card == "virtual":
        raise CliError("--reader names PC/SC readers, but --card virtual reads the built-in "
                       "virtual card: drop one of them")
    from conformance.plugin import readers_for
    from conformance.transport.pcsc import list_readers

    found = readers_for(args.reader, list_readers())
    if not found:
        raise CliError(f"--reader {args.reader!r} matches no PC/SC reader")
    configs = {name: _config(args, reader=name, card="pcsc", out=None, replace=False)
               for name in found}
    return read_readers(found, lambda name: read_card_items(configs[name]))


def cmd_validate_cards(args: argparse.Namespace) -> int:
    from conformance.cli import CliError
    from conformance.validate.check import Context

    zone = lab_files({"lab": args.lab})["lab"].tz  # the lab file: the one source of time zone
    validated_on = _date(args.date, zone)
    paths = expand_inputs(args.inputs)
    if args.inputs and not paths:
        raise CliError(f"{', '.join(args.inputs)}: no *.json file")
    rules_dir = Path(args.rules) if args.rules else RULES_DIR
    if not rules_dir.is_dir():
        raise CliError(f"--rules: {rules_dir}: no such directory")
    context = Context.load(args.profile, rules_dir=rules_dir, validated_on=validated_on)
    live = _live(args)
    if not paths and live is None:
        raise CliError("nothing to validate: give INPUT files or directories, --reader "
                       "PATTERN or --card virtual")
    out = _out(args)
    if args.replace and out.is_dir():
        shutil.rmtree(out)

    def cards() -> Iterator[Card]:
        yield from read_inputs(paths, known=set(context.profile.items))
        if live is not None:
            yield from live

    # the inputs as given (a directory stays one input, however many dumps it holds)
    inputs = list(args.inputs) + ([f"reader {args.reader}" if args.reader
                                   else "virtual card"] if live is not None else [])
    outcome = validate_cards(cards(), context, out, inputs, zone)
    reports = write_outputs(outcome, out, show_personal=args.show_personal_data)
    _print_summary(outcome, list(context.rules.rules), reports)
    return EXIT_NOT_CONFORMANT if outcome.findings else EXIT_OK


def _print_summary(outcome: Outcome, rules: list[Rule], reports: list[Path]) -> None:
    from rich.markup import escape

    from conformance.console import console, print_table

    out = console()
    rows = [(rule.name, str(outcome.by_rule[rule.name]), f"{rule.title.zh} / {rule.title.en}")
            for rule in rules]
    print_table(out, f"{outcome.cards} cards, {outcome.findings} findings on "
                f"{outcome.cards_with_findings} cards", ("rule", "findings", "规则 / rule"),
                rows)
    for path in [*outcome.paths.values(), *reports]:
        out.print(escape(f"{path.name}: {path}"), highlight=False, soft_wrap=True)
    if not reports:
        print("rhc: note: the HTML/PDF quality report is not available in this installation "
              "(conformance.validate.report); validation.json and findings.csv are complete",
              file=sys.stderr)
