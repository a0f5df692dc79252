"""`rhc`: the command line of the conformance suite.

rhc run            a certification run (pytest with the rhc plugin) ending with a signed report
rhc cases list     the case catalogue
rhc card serve     the reference virtual card in a vpcd reader (the real PC/SC bench)
rhc card dump      every data item of a card, decoded, as JSON
rhc card faults    the defect catalogue of the virtual card
rhc report verify  check a signed report and its evidence
rhc report allure  build the Allure dashboard of a run

Exit codes: 0 success / CONFORMANT, 1 NOT_CONFORMANT or invalid report, 2 no verdict possible
(usage error, bench failure, incomplete run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conformance.model import (
    DEFAULT_PERSONALIZATION,
    DEFAULT_TEST_KEYS,
    CardProfile,
    ProfileError,
    load_key_set,
    load_personalization,
    load_profile,
)
from conformance.transport.base import BenchError

EXIT_OK, EXIT_NOT_CONFORMANT, EXIT_NO_VERDICT = 0, 1, 2
CASES_MODULE = Path(__file__).resolve().parent / "cases" / "test_catalogue.py"
DEFAULT_OUT_ROOT = Path("reports") / "out"


class CliError(Exception):
    """A usage or input problem reported as one line, exit 2."""


# -- helpers -----------------------------------------------------------------------------


def _virtual_card(args: argparse.Namespace, profile: CardProfile) -> Any:
    from conformance.card import VirtualCard
    from conformance.model.products import load_product

    features = frozenset(load_product(getattr(args, "product", None), profile).features)
    faults = frozenset(getattr(args, "fault", None) or [])
    if getattr(args, "image", None):
        return VirtualCard.from_image(args.image, profile, features=features, faults=faults)
    pers = load_personalization(args.personalization or DEFAULT_PERSONALIZATION, profile)
    keys = load_key_set(args.keys or DEFAULT_TEST_KEYS, profile)
    return VirtualCard.personalize(profile, pers, keys, features=features, faults=faults)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


# -- rhc card ----------------------------------------------------------------------------


def cmd_card_serve(args: argparse.Namespace) -> int:
    from conformance.card.vpcd import VpcdBridge

    profile = load_profile(args.profile)
    card = _virtual_card(args, profile)
    bridge = VpcdBridge(card, host=args.vpcd_host, port=args.vpcd_port)
    bridge.connect()

    def stop(signum: int, frame: Any) -> None:
        bridge.stop(join_timeout_s=0)

    signal.signal(signal.SIGTERM, stop)
    print(
        f"rhc: reference card (ATR {card.atr.hex().upper()}) in reader "
        f"{bridge.reader_name!r} via vpcd {bridge.address}; Ctrl-C to remove it",
        file=sys.stderr,
        flush=True,
    )
    try:
        bridge.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        bridge.stop(join_timeout_s=0)
        if args.save_image:
            card.save_image(args.save_image)
            print(f"rhc: card image saved to {args.save_image}", file=sys.stderr)
    return EXIT_OK


def cmd_card_dump(args: argparse.Namespace) -> int:
    from conformance.host.keys import TestKeyProvider
    from conformance.host.session import HealthCardSession

    profile = load_profile(args.profile)
    keys = TestKeyProvider(load_key_set(args.keys or DEFAULT_TEST_KEYS, profile))
    if args.reader:
        from conformance.transport.pcsc import PcscTransport

        transport = PcscTransport(args.reader, timeout_s=args.apdu_timeout)
    else:
        from conformance.transport.inprocess import InProcessTransport

        transport = InProcessTransport(_virtual_card(args, profile))
    from conformance.transport.layers import T0Layer

    try:
        session = HealthCardSession(T0Layer(transport), profile, keys)
        items = session.read_items()
    finally:
        transport.close()
    _print_json({str(n): v for n, v in sorted(items.items())})
    return EXIT_OK


def cmd_card_faults(args: argparse.Namespace) -> int:
    from conformance.card.faults import FAULTS

    if args.matrix:
        from conformance.matrix import build_matrix, describe_figures

        matrix = build_matrix(processes=args.processes, complete=args.complete)
        if args.out:
            Path(args.out).write_text(matrix.to_json(), encoding="utf-8")
        print(describe_figures(matrix))
        return EXIT_OK if not matrix.problems() else EXIT_NOT_CONFORMANT
    if args.json:
        _print_json(
            [
                {
                    "name": f.name,
                    "group": f.group,
                    "en": f.description_en,
                    "zh": f.description_zh,
                    "reference": f.reference,
                    "kind": f.kind,
                    "aim": list(f.aim),
                }
                for f in FAULTS.values()
            ]
        )
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"defect catalogue of the virtual card ({len(FAULTS)} faults)")
    for column in ("fault", "group", "deviation", "偏差", "reference"):
        table.add_column(column)
    for f in FAULTS.values():
        table.add_row(f.name, f.group, f.description_en, f.description_zh, f.reference)
    Console().print(table)
    return EXIT_OK


# -- rhc cases ---------------------------------------------------------------------------


def cmd_cases_list(args: argparse.Namespace) -> int:
    from conformance.cases.catalogue import build_catalogue, select
    from conformance.model.products import load_plan

    profile = load_profile(args.profile)
    cases = build_catalogue(profile)
    if args.plan:
        cases = select(cases, load_plan(args.plan))
    if args.json:
        _print_json([c.describe() for c in cases])
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"rhc case catalogue ({len(cases)} cases)")
    for column in ("ID", "标题", "title", "reference", "applicability"):
        table.add_column(column)
    for c in cases:
        flags = " (destructive)" if c.destructive else ""
        table.add_row(c.id, c.title_zh, c.title_en + flags, c.clause, c.applicability)
    Console().print(table)
    return EXIT_OK


# -- rhc run -----------------------------------------------------------------------------


class _RunHooks:
    """Captures the run summary and surfaces collection errors pytest would print."""

    def __init__(self) -> None:
        self.summary: Any = None
        self.errors: list[str] = []

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.errors.append(str(report.longrepr))

    def pytest_sessionfinish(self, session: Any) -> None:
        from conformance.plugin import SUMMARY_KEY

        self.summary = session.config.stash.get(SUMMARY_KEY, None)


def cmd_run(args: argparse.Namespace) -> int:
    import pytest

    from conformance.model.products import load_plan, load_product
    from conformance.progress import summary_table
    from conformance.results import Conclusion, read_results

    profile = load_profile(args.profile)  # fail early and clearly on bad input
    load_product(args.product, profile)
    load_plan(args.plan)
    if args.card == "pcsc" and not args.reader:
        raise CliError("--card pcsc needs --reader NAME")
    if args.card == "pcsc" and args.fault:
        raise CliError("--fault applies to --card virtual only")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else DEFAULT_OUT_ROOT / stamp
    out.mkdir(parents=True, exist_ok=True)
    pytest_args = [
        str(CASES_MODULE),
        "-c",
        os.devnull,
        "--rootdir",
        str(CASES_MODULE.parent),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:terminal",
        "-p",
        "no:warnings",
        f"--card={args.card}",
        f"--out={out}",
        f"--junitxml={out / 'junit.xml'}",
        "-o",
        "junit_suite_name=rhc",
        f"--alluredir={out / 'allure-results'}",
        "--clean-alluredir",
        "--timeout",
        str(args.case_timeout),
    ]
    for option in ("reader", "product", "plan", "profile", "keys", "personalization"):
        value = getattr(args, option)
        if value:
            pytest_args.append(f"--{option}={value}")
    if args.image:
        pytest_args.append(f"--card-image={args.image}")
    if args.card == "pcsc":
        pytest_args.append(f"--apdu-timeout={args.apdu_timeout}")
    for fault in args.fault:
        pytest_args.append(f"--fault={fault}")
    if args.k:
        pytest_args += ["-k", args.k]
    if not args.quiet:
        pytest_args.append("--rhc-progress")
    hooks = _RunHooks()
    code = pytest.main(pytest_args, plugins=[hooks])
    for error in hooks.errors:
        print(f"rhc: {error}", file=sys.stderr)
    summary = hooks.summary
    if summary is None:
        print(f"rhc: the run did not complete (pytest exit code {int(code)})", file=sys.stderr)
        return EXIT_NO_VERDICT
    from rich.console import Console

    console = Console(stderr=True)
    console.print(summary_table(summary, read_results(out)))
    for note in summary.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    if not args.no_report:
        _write_report(out, args, console)
    console.print(f"results in {out}")
    return {
        Conclusion.CONFORMANT: EXIT_OK,
        Conclusion.NOT_CONFORMANT: EXIT_NOT_CONFORMANT,
        Conclusion.INCOMPLETE: EXIT_NO_VERDICT,
    }[summary.verdict]


def _write_report(out: Path, args: argparse.Namespace, console: Any) -> None:
    from conformance.report import ReportError, write_report

    try:
        paths = write_report(
            out,
            lab=args.lab,
            key=args.sign_key,
            cert=args.sign_cert,
            pkcs12=args.sign_p12,
            passphrase=os.environ.get("RHC_SIGN_PASSPHRASE"),
        )
    except ReportError as exc:
        raise CliError(f"report: {exc}") from None
    console.print(f"signed report: {paths.xml}, {paths.html}, {paths.pdf}")


# -- rhc report --------------------------------------------------------------------------


def cmd_report_verify(args: argparse.Namespace) -> int:
    from conformance.report import verify_report

    result = verify_report(Path(args.path), trust=Path(args.trust) if args.trust else None)
    for problem in result.problems:
        print(f"INVALID: {problem}")
    for note in getattr(result, "notes", []):
        print(f"note: {note}")
    if result.ok:
        print(f"VALID: {args.path}")
        return EXIT_OK
    return EXIT_NOT_CONFORMANT


def cmd_report_allure(args: argparse.Namespace) -> int:
    from conformance.report import ReportError, build_allure

    try:
        path = build_allure(Path(args.dir))
    except ReportError as exc:
        raise CliError(str(exc)) from None
    print(f"Allure dashboard: {path}")
    return EXIT_OK


# -- parser ------------------------------------------------------------------------------


def _virtual_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--personalization", help="personalization YAML (default: fixtures)")
    p.add_argument("--image", help="load the virtual card from a JSON card image")
    p.add_argument("--keys", help="test master keys YAML (default: fixtures/test-keys.yaml)")
    p.add_argument("--product", help="ICS whose features the virtual card implements")
    p.add_argument("--fault", action="append", default=[], help="a fault of the catalogue")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rhc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", help="card profile YAML (default: WS/T 543 reference)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="a certification run ending with a signed report")
    run.add_argument("--card", choices=["virtual", "pcsc"], default="virtual")
    run.add_argument("--reader", help="PC/SC reader name or regular expression")
    run.add_argument("--out", help="run directory (default: reports/out/<time>)")
    run.add_argument("--plan", help="plan name or file (default: certification)")
    run.add_argument("-k", help="pytest -k expression over case IDs")
    run.add_argument("--case-timeout", type=float, default=120.0, help="seconds per case")
    run.add_argument("--apdu-timeout", type=float, default=10.0,
                     help="seconds the card may take to answer one APDU (PC/SC)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--no-report", action="store_true", help="skip the signed report")
    run.add_argument("--lab", help="lab description YAML (default: demo lab)")
    run.add_argument("--sign-key", help="lab signing key (PEM)")
    run.add_argument("--sign-cert", help="lab certificate (PEM)")
    run.add_argument(
        "--sign-p12", help="lab key and certificate as PKCS#12 (passphrase in RHC_SIGN_PASSPHRASE)"
    )
    _virtual_options(run)
    run.set_defaults(func=cmd_run)

    cases = sub.add_parser("cases", help="the case catalogue").add_subparsers(
        dest="cases_command", required=True
    )
    lst = cases.add_parser("list", help="list the cases")
    lst.add_argument("--json", action="store_true")
    lst.add_argument("--plan", help="only the cases of this plan")
    lst.set_defaults(func=cmd_cases_list)

    card = sub.add_parser("card", help="the reference virtual card").add_subparsers(
        dest="card_command", required=True
    )
    serve = card.add_parser("serve", help="put the virtual card into a vpcd reader")
    serve.add_argument("--vpcd-port", type=int, default=35963)
    serve.add_argument("--vpcd-host", default="127.0.0.1")
    serve.add_argument("--save-image", help="write the card image here when the card leaves")
    _virtual_options(serve)
    serve.set_defaults(func=cmd_card_serve)
    dump = card.add_parser("dump", help="read every data item and print JSON")
    dump.add_argument("--card", choices=["virtual"], default="virtual")
    dump.add_argument("--reader", help="read a card in this PC/SC reader instead")
    dump.add_argument("--apdu-timeout", type=float, default=10.0,
                      help="seconds the card may take to answer one APDU")
    _virtual_options(dump)
    dump.set_defaults(func=cmd_card_dump)
    faults = card.add_parser("faults", help="list the defect catalogue")
    faults.add_argument("--json", action="store_true")
    faults.add_argument("--matrix", action="store_true",
                        help="run the catalogue under every fault and print the kill matrix")
    faults.add_argument("--out", help="with --matrix: write the matrix as JSON to this file")
    faults.add_argument("--complete", action="store_true",
                        help="with --matrix: run every case under every fault (slower)")
    faults.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="with --matrix: worker processes (default: the CPU count)")
    faults.set_defaults(func=cmd_card_faults)

    report = sub.add_parser("report", help="signed reports").add_subparsers(
        dest="report_command", required=True
    )
    verify = report.add_parser("verify", help="verify a signed report and its evidence")
    verify.add_argument("path", help="run directory or report.xml")
    verify.add_argument("--trust", help="CA certificate (PEM) the lab certificate must chain to")
    verify.set_defaults(func=cmd_report_verify)
    allure = report.add_parser("allure", help="build the Allure dashboard of a run")
    allure.add_argument("dir", help="run directory")
    allure.set_defaults(func=cmd_report_allure)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (CliError, ProfileError, BenchError, ValueError, OSError) as exc:
        print(f"rhc: error: {exc}", file=sys.stderr)
        return EXIT_NO_VERDICT
    except KeyboardInterrupt:
        print("rhc: interrupted", file=sys.stderr)
        return EXIT_NO_VERDICT


if __name__ == "__main__":
    sys.exit(main())
