"""`rhc`: the command line of the conformance suite.

rhc run            a certification run (pytest with the rhc plugin) ending with a signed report
rhc cases list     the case catalogue (--group SEC,PIN: only these groups)
rhc cases show     the full specification of one case
rhc card serve     the reference virtual card in a vpcd reader (the real PC/SC bench)
rhc card dump      every data item of a card, decoded, as JSON
rhc card faults    the defect catalogue of the virtual card
rhc report verify  check a signed report and its evidence
rhc report reveal  the lab proves what a masked field of the evidence held
rhc report build   re-issue the signed report of a finished run from its results and evidence
rhc report allure  build the Allure dashboard of a run
rhc terminal reference  the reference terminal: one transaction of TERMINAL.md
rhc validate cards the data of issued cards against the rules of profiles/rules/
rhc paths          where the shipped profiles, plans, fixtures and demo CA are

`rhc run` is a thin front door over pytest with the rhc plugin: its run options are the
plugin's (`--NAME` here, `--rhc-NAME` in pytest, one table in conformance/config.py), and both
build the same validated run configuration before the first APDU.

Exit codes of `rhc run`: 0 CONFORMANT, 1 NOT_CONFORMANT, 2 no verdict possible (usage error,
bench failure, incomplete run), 3 NO_FAILURES: no case failed, but the run is no certification
(a subset plan such as selftest, a -k selection, a plan leaving mandatory cases out, or the
built-in virtual card: a bench self-test). Only a certification plan run on a card in a PC/SC
reader, covering every mandatory case, can exit 0. `rhc report verify`: 0 VALID (every file
intact and the signer chains to --trust), 1 INVALID (each problem named), 2 usage error (e.g.
no such --trust file), 3 UNTRUSTED (intact, but no --trust given or the signer does not chain
to it).

Nothing recorded is lost: `rhc run` refuses an --out that is not empty (exit 2, nothing
touched) unless --replace asks to remove the earlier run, and checks every input, the lab
file and the signing material included, before the first APDU.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rich.markup import escape

from conformance.config import (
    OPTIONS_BY_NAME,
    RUN_OPTIONS,
    ConfigError,
    RunConfig,
    build_config,
    card_under_test,
    claim_out_dir,
    lab_files,
)
from conformance.defaults import (
    DEFAULT_OUT_ROOT,
    EXIT_NO_VERDICT,
    EXIT_NOT_CERTIFICATION,
    EXIT_NOT_CONFORMANT,
    EXIT_OK,
    VPCD_HOST,
    VPCD_PORT,
)
from conformance.model import ProfileError, load_profile
from conformance.transport.base import BenchError


class CliError(Exception):
    """A usage or input problem reported as one line, exit 2."""


# -- helpers -----------------------------------------------------------------------------


def _values(args: argparse.Namespace, **overrides: Any) -> dict[str, Any]:
    """The run options this command was given, keyed as build_config wants them."""
    values = {o.key: getattr(args, o.key) for o in RUN_OPTIONS if hasattr(args, o.key)}
    return {**values, **overrides}


def _config(args: argparse.Namespace, **overrides: Any) -> RunConfig:
    """The validated run configuration from the run options this command was given."""
    return build_config(_values(args, **overrides))


def _plugin_args(values: dict[str, Any]) -> list[str]:
    """The run options as the plugin's --rhc-NAME arguments (what xdist workers parse);
    --replace stays with the controller, which already prepared the run directory."""
    out: list[str] = []
    for option in RUN_OPTIONS:
        value = values.get(option.key)
        if value is None or value is False or value == [] or option.name == "replace":
            continue
        if option.flag:
            out.append(f"--rhc-{option.name}")
        else:
            for item in value if option.repeat else [value]:
                out += [f"--rhc-{option.name}", str(item)]
    return out


def _parallel_args(args: argparse.Namespace, config: RunConfig,
                   values: dict[str, Any]) -> list[str]:
    """pytest-xdist arguments for --workers / --tx: one worker per reader (checked here
    when every worker runs on this machine)."""
    if args.workers < 1:
        raise CliError(f"--workers: {args.workers} is not a number of workers ≥ 1")
    tx = list(args.tx or [])
    workers = len(tx) if tx else args.workers
    if workers <= 1 and not tx:
        return []
    local = all(spec.partition("//")[0].split("*")[-1].startswith("popen") for spec in tx)
    if config.card == "pcsc" and local and config.reader is not None:
        from conformance.plugin import readers_for
        from conformance.transport.pcsc import list_readers

        found = readers_for(config.reader, list_readers())
        if len(found) < workers:
            raise CliError(f"--reader {config.reader!r} matches {len(found)} reader(s) "
                           f"({', '.join(found) or 'none'}); {workers} workers need one each")
    parallel = ["-p", "xdist.plugin"] if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") else []
    for spec in tx:
        parallel += ["--tx", spec]
    if not tx:
        parallel += ["-n", str(workers)]
    parallel += ["--dist", "worksteal"]  # cases differ in length: idle workers take over
    return parallel + _plugin_args(values)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


# -- rhc card ----------------------------------------------------------------------------


def cmd_card_serve(args: argparse.Namespace) -> int:
    from conformance.card.vpcd import VpcdBridge

    card = _config(args, card="virtual").virtual_card
    assert card is not None  # a virtual configuration always holds its card
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


def read_card_sample(config: RunConfig) -> tuple[str, bytes, dict[int, str]]:
    """The reader's name, the card number factor its ATR carries, and every data item of the
    card a configuration names, decoded (`rhc interop run --cards reader:NAME`)."""
    from conformance.host.session import HealthCardSession
    from conformance.transport.layers import T0Layer, T0Rules

    transport = card_under_test(config)()
    try:
        t0 = T0Layer(transport, rules=T0Rules.from_profile(config.profile))
        session = HealthCardSession(t0, config.profile, config.keys)
        items = session.read_items()
        return transport.name, session.card_number_factor, items
    finally:
        transport.close()


def read_card_items(config: RunConfig) -> dict[int, str]:
    """Every data item of the card a configuration names, decoded (`rhc card dump`, and
    `rhc validate cards --reader`)."""
    return read_card_sample(config)[2]


def cmd_card_dump(args: argparse.Namespace) -> int:
    items = read_card_items(_config(args))
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
    from conformance.console import console, print_table

    print_table(
        console(),
        f"defect catalogue of the virtual card ({len(FAULTS)} faults)",
        ("fault", "group", "deviation", "偏差", "reference"),
        [(f.name, f.group, f.description_en, f.description_zh, f.reference)
         for f in FAULTS.values()],
    )
    return EXIT_OK


# -- rhc cases ---------------------------------------------------------------------------


def _groups(values: list[str]) -> list[str]:
    """The groups --group names (repeatable, or a comma list), each checked."""
    from conformance.cases.framework import GROUPS

    names = [n.strip().upper() for value in values for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in GROUPS and n != "TERM"]  # TERM: terminal cases
    if unknown:
        raise CliError(f"--group: no group {', '.join(unknown)} "
                       f"(groups: {', '.join(GROUPS)}, TERM)")
    return names


def cmd_cases_list(args: argparse.Namespace) -> int:
    from conformance.cases.catalogue import build_catalogue, check_selection, select
    from conformance.model.products import load_plan

    groups = _groups(args.group)
    profile = load_profile(args.profile)
    cases: list[Any] = build_catalogue(profile)
    if not args.plan:  # the terminal cases (group TERM) are in no card plan
        from conformance.terminal.cases import terminal_cases

        cases += terminal_cases()
    if args.plan:
        plan = load_plan(args.plan)
        check_selection(cases, plan)
        cases = select(cases, plan)
    if groups:
        cases = [c for c in cases if c.group in groups]
    if args.json:
        _print_json([c.describe() for c in cases])
        return EXIT_OK
    from conformance.console import console, print_table

    rows = [
        (c.id, f"{c.title_zh}\n{c.title_en}{' (destructive)' if c.destructive else ''}",
         c.clause, c.applicability)
        for c in cases
    ]
    print_table(console(), f"rhc case catalogue ({len(cases)} cases)",
                ("ID", "标题 / title", "reference", "applicability"), rows)
    return EXIT_OK


def cmd_cases_show(args: argparse.Namespace) -> int:
    """The full specification of one case, as the catalogue builds it from the profile."""
    import difflib

    from conformance.cases.catalogue import build_catalogue
    from conformance.terminal.cases import terminal_cases

    cases = {c.id: c for c in [*build_catalogue(load_profile(args.profile)), *terminal_cases()]}
    case = cases.get(args.id) or cases.get(args.id.upper())
    if case is None:
        close = difflib.get_close_matches(args.id.upper(), list(cases), n=5, cutoff=0.6)
        hint = f"; close: {', '.join(close)}" if close else " (`rhc cases list` lists them)"
        raise CliError(f"no case {args.id}{hint}")
    spec = case_spec(case)
    if args.json:
        _print_json(spec)
        return EXIT_OK
    from conformance.console import console, print_spec

    print_spec(console(), spec)
    return EXIT_OK


def case_spec(case: Any) -> dict[str, Any]:
    """describe() of a case with its steps: the explicit list, else its body's docstring."""
    import inspect

    spec = case.describe()
    if not spec.get("steps"):
        doc = inspect.getdoc(case.body)
        spec["steps"] = [line for line in doc.splitlines() if line.strip()] if doc else []
    return spec


# -- rhc run -----------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    import pytest

    from conformance import pytest_catalogue
    from conformance.console import console
    from conformance.plugin import PreparedRun
    from conformance.progress import print_attention, summary_table, why_incomplete
    from conformance.results import Conclusion, read_results

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    seal_to = args.seal_to or args.sign_cert or args.sign_p12  # the salt goes to the signer
    values = _values(args, out=str(args.out or DEFAULT_OUT_ROOT / stamp), seal_to=seal_to)
    try:
        config = build_config(values)
    except ConfigError as exc:
        signer = "--sign-cert" if args.sign_cert else "--sign-p12"
        if args.seal_to or not seal_to or not str(exc).startswith("--seal-to:"):
            raise
        raise ConfigError(signer + str(exc).removeprefix("--seal-to")) from None
    if not args.no_report:
        _check_signing(args)  # a bad lab file or key stops the run here, not after it
    parallel = _parallel_args(args, config, values)
    claim_out_dir(config)  # every input is good: only now the run directory is touched
    out = config.out_dir
    assert out is not None  # given above
    module = Path(pytest_catalogue.__file__)
    pytest_args = [
        str(module),
        "-c",
        os.devnull,
        "--rootdir",
        str(module.parent),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:terminal",
        "-p",
        "no:warnings",
        f"--junitxml={out / 'junit.xml'}",
        "-o",
        "junit_suite_name=rhc",
        f"--alluredir={out / 'allure-results'}",
        "--clean-alluredir",
    ]
    if args.k:
        pytest_args += ["-k", args.k]
    pytest_args += parallel
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):  # else their entry points load them
        for plugin in ("conformance.plugin", "allure_pytest.plugin"):
            pytest_args += ["-p", plugin]
    prepared = PreparedRun(config, progress=not args.quiet)
    code = pytest.main(pytest_args, plugins=[prepared])
    summary = prepared.summary
    if summary is None:
        if not (out / "results.jsonl").exists():
            _release(out)  # nothing ran: leave no half-made run directory behind
        errors = prepared.errors or [f"the run did not complete (pytest exit code {int(code)})"]
        for error in errors:
            print(f"rhc: error: {error}", file=sys.stderr)
        if args.json:
            _print_json({"conclusion": None, "exit_code": EXIT_NO_VERDICT, "errors": errors})
        return EXIT_NO_VERDICT
    for error in prepared.errors:
        print(f"rhc: {error}", file=sys.stderr)
    human = console(stderr=True)
    results = read_results(out)
    human.print(summary_table(summary, results))
    print_attention(human, results)
    why = (why_incomplete(summary, results, prepared.stopped)
           if summary.verdict is Conclusion.INCOMPLETE else [])
    for reason in why:
        human.print(f"[bold yellow]INCOMPLETE because[/bold yellow] {escape(reason)}",
                    highlight=False)
    for note in summary.notes:
        human.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
    exit_code = {
        Conclusion.CONFORMANT: EXIT_OK,
        Conclusion.NOT_CONFORMANT: EXIT_NOT_CONFORMANT,
        Conclusion.INCOMPLETE: EXIT_NO_VERDICT,
        Conclusion.NO_FAILURES: EXIT_NOT_CERTIFICATION,
    }[summary.verdict]
    report, errors = None, []
    try:
        report = None if args.no_report else _write_report(out, args, human,
                                                           steps=not args.quiet)
    except CliError as exc:  # the results stand; the report could not be issued
        if not args.json:
            raise
        print(f"rhc: error: {exc}", file=sys.stderr)
        errors, exit_code = [str(exc)], EXIT_NO_VERDICT
    human.print(f"results in {out}", highlight=False)
    if args.json:
        _print_json(run_json(summary, results, out, report, why, exit_code) | {"errors": errors})
    return exit_code


def run_json(summary: Any, results: list[Any], out: Path, report: Any, why: list[str],
             exit_code: int) -> dict[str, Any]:
    """`rhc run --json`: the conclusion, the counts, the cases to look at and where all is."""
    from conformance.progress import attention
    from conformance.results import scope_of, statement

    zh, en = statement(summary.verdict, scope_of(summary.scope), results,
                       summary.scope.get("catalogue", 0))
    fields = ("id", "group", "title_zh", "title_en", "verdict", "reason_zh", "reason",
              "expected", "measured", "mandatory", "failed_at", "evidence")
    paths = {"out": out, "summary": out / "summary.json", "results": out / "results.jsonl",
             "evidence": out / "evidence", "junit": out / "junit.xml",
             "allure_results": out / "allure-results"}
    if report is not None:
        paths.update(report_xml=report.xml, report_html=report.html, report_pdf=report.pdf)
    return {
        "conclusion": summary.verdict.value,
        "statement": {"zh": zh, "en": en},
        "exit_code": exit_code,
        "scope": summary.scope,
        "counts": summary.counts,
        "cases": [{f: getattr(r, f, "") for f in fields} | {"verdict": r.verdict.value}
                  for r in attention(results)],
        "incomplete": why,
        "notes": summary.notes,
        "paths": {k: str(v) if v is not None else None for k, v in paths.items()},
    }


PYTEST_OUTPUT = ("junit.xml", "allure-results")
"""What pytest itself writes into the run directory, even when no case runs."""


def _release(out: Path) -> None:
    """Remove what pytest wrote into a run directory in which no case ran."""
    import shutil

    for name in PYTEST_OUTPUT:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        out.rmdir()  # only if empty


def _signing(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "key": args.sign_key,
        "cert": args.sign_cert,
        "pkcs12": args.sign_p12,
        "passphrase": os.environ.get("RHC_SIGN_PASSPHRASE"),
    }


def _check_signing(args: argparse.Namespace) -> None:
    """Load the signing material now; write nothing (exit 2 if bad). The lab, submission
    and bench files are checked with the other run options (config.build_config)."""
    from conformance.report import ReportError
    from conformance.report.sign import load_signing_material

    paths = {k: Path(v) if isinstance(v, str) and k != "passphrase" else v
             for k, v in _signing(args).items()}
    try:
        load_signing_material(**paths)
    except ReportError as exc:
        raise CliError(f"signing material (--sign-key/--sign-cert/--sign-p12): {exc}") from None


def _write_report(
    out: Path, args: argparse.Namespace, console: Any, files: dict[str, Any] | None = None,
    steps: bool = True,
) -> Any:
    """Sign the run's report, naming each step on the console; `files` (lab, submission,
    bench) replace what the run recorded. Its paths."""
    from conformance.progress import ReportSteps
    from conformance.report import ReportError, write_report

    progress = ReportSteps(console) if steps else None
    try:
        paths = write_report(out, **_signing(args), **(files or {}), progress=progress)
    except ReportError as exc:
        raise CliError(f"report: {exc}") from None
    if progress is not None:
        progress.done()
    console.print(f"signed report ({paths.conclusion}): {paths.xml}, {paths.html}, {paths.pdf}",
                  highlight=False)
    return paths


# -- rhc report --------------------------------------------------------------------------


EXIT_UNTRUSTED = 3  # rhc report verify: intact, but nothing says who signed it


def cmd_report_verify(args: argparse.Namespace) -> int:
    from conformance.report import verify_report
    from conformance.report.verify import VALID
    from conformance.resources import DEMO_CA

    trust = DEMO_CA if args.trust == "demo" else Path(args.trust) if args.trust else None
    if trust is not None and not trust.is_file():
        raise CliError(f"--trust {trust}: no such file (a PEM file of CA certificates)")
    if not Path(args.path).exists():
        raise CliError(f"{args.path}: no such run directory or report.xml")
    result = verify_report(Path(args.path), trust=trust)
    for problem in result.problems:
        print(f"INVALID: {problem}")
    for note in result.notes:
        print(f"note: {note}")
    if result.problems:
        return EXIT_NOT_CONFORMANT
    demo = " [DEMO]" if result.demo else ""
    print(f"signer: {result.signer_cn or '?'} ({result.signer_org or 'no organisation'}){demo}")
    print(f"signed at: {result.signing_time}")
    print(f"conclusion: {result.conclusion}")
    pdf = ", report.pdf (PAdES signature intact)" if result.pdf_checked else ""
    print(f"checked: {result.files_checked} files against the signed manifest{pdf}")
    if result.status != VALID:
        print(f"UNTRUSTED: {result.untrusted}")
        return EXIT_UNTRUSTED
    print(f"VALID: {args.path}{' — DEMO: not a certified report' if demo else ''}")
    return EXIT_OK


def cmd_report_reveal(args: argparse.Namespace) -> int:
    """List the masked fields of a run, or check a candidate value against their digests."""
    from conformance.config import PASSPHRASE_ENV
    from conformance.report.reveal import (
        RevealError,
        candidate_values,
        masked_fields,
        matches,
        open_salt,
    )
    from conformance.report.seal import SealError, load_private_key

    run_dir = Path(args.dir)
    if args.value is not None and args.text is not None:
        raise CliError("give --value or --text, not both")
    value = None
    if args.value is not None:
        try:
            value = bytes.fromhex(args.value)
        except ValueError:
            raise CliError(f"--value: {args.value!r} is not hex") from None
    try:
        fields = masked_fields(run_dir, args.case)
        if value is None and args.text is None:
            for masked in fields:
                print(f"{masked.digest}  {masked.where()}")
            print(f"{len(fields)} masked fields in {run_dir}")
            if args.key:  # prove the key opens the salt, without showing it
                open_salt(run_dir, load_private_key(args.key, os.environ.get(PASSPHRASE_ENV)))
                print(f"the key {args.key} opens the sealed salt of {run_dir}")
            return EXIT_OK
        if not args.key:
            raise CliError("checking a value needs the lab's private key: --key FILE")
        salt = open_salt(run_dir, load_private_key(args.key, os.environ.get(PASSPHRASE_ENV)))
        items = _profile_items(run_dir) if args.text is not None else None
        found = matches(salt, candidate_values(fields, value=value, text=args.text, items=items))
    except (RevealError, SealError) as exc:
        raise CliError(str(exc)) from None
    for masked in found:
        print(f"MATCH: {masked.where()} ({masked.file}) holds the value")
    if not found:
        scope = f"case {args.case}" if args.case else str(run_dir)
        print(f"NO MATCH: none of the {len(fields)} masked fields of {scope} holds the value")
        return EXIT_NOT_CONFORMANT
    return EXIT_OK


def _profile_items(run_dir: Path) -> dict[int, Any]:
    """Coding and length of each data item, from the profile the run used (else the shipped)."""
    try:
        recorded = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        source = recorded["profile"]["file"]
        profile = load_profile(source if Path(source).is_file() else None)
    except (OSError, ValueError, KeyError, TypeError, ProfileError):
        profile = load_profile(None)
    return {n: (item.coding, item.length) for n, item in profile.spec.items.items()}


def cmd_report_build(args: argparse.Namespace) -> int:
    """Re-issue the report of a finished run: its results and evidence, signed anew."""
    from conformance.console import console

    run_dir = Path(args.dir)
    for name in ("summary.json", "results.jsonl"):
        if not (run_dir / name).is_file():
            raise CliError(f"{run_dir}: no {name}, not a finished run directory")
    files = {name: getattr(args, name) for name in LAB_FILES}
    lab_files(files)  # a bad file: exit 2 before anything is written
    _check_signing(args)
    _write_report(run_dir, args, console(stderr=True), files)
    return EXIT_OK


def cmd_report_allure(args: argparse.Namespace) -> int:
    from conformance.report import ReportError, build_allure

    try:
        path = build_allure(Path(args.dir))
    except ReportError as exc:
        raise CliError(str(exc)) from None
    print(f"Allure dashboard: {path}")
    return EXIT_OK


# -- rhc paths ---------------------------------------------------------------------------


def cmd_paths(args: argparse.Namespace) -> int:
    from conformance.resources import locations

    places = {name: str(path) for name, path in locations().items()}
    if args.json:
        _print_json(places)
    else:
        width = max(map(len, places))
        for name, path in places.items():
            print(f"{name:<{width}}  {path}")
    return EXIT_OK


# -- parser ------------------------------------------------------------------------------


def _run_options(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """Register run options of the one table (conformance/config.py) as `--NAME`."""
    for name in names:
        option = OPTIONS_BY_NAME[name]
        parser.add_argument(f"--{name}", dest=option.key, **option.argparse_kwargs())


LAB_FILES = ("lab", "submission", "bench")
"""Run options `rhc report build` takes too: they replace what the run recorded."""


def _signing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sign-key", help="lab signing key (PEM; default: the DEMO key, and "
                        "the report says DEMO)")
    parser.add_argument("--sign-cert", help="lab certificate (PEM; default: the DEMO "
                        "certificate)")
    parser.add_argument("--sign-p12", help="lab key and certificate as PKCS#12, passphrase in "
                        "RHC_SIGN_PASSPHRASE (default: --sign-key/--sign-cert)")


VIRTUAL_CARD_OPTIONS = ("product", "keys", "personalization", "image", "fault", "card-latency-ms",
                        "card-byte-us")


class _HelpFormatter(argparse.HelpFormatter):
    """Help that ends with the default of every option that has one, unless it names it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or "(default" in text or "%(default)" in text
                or default in (None, False, [], argparse.SUPPRESS)):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose subcommands' help shows defaults too."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rhc", description=__doc__.split("\n\n")[0])
    _run_options(parser, ["profile"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="a certification run ending with a signed report")
    _run_options(run, [o.name for o in RUN_OPTIONS if o.name != "profile"])
    run.add_argument("-k", help="pytest -k expression over case IDs (a selection: never a "
                     "certification; default: every case of the plan)")
    run.add_argument("--quiet", action="store_true",
                     help="no progress bar and no report steps (the closing tables stay)")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="run on N readers at once, one pytest-xdist worker each: --reader is "
                     "then a pattern matching at least N readers (default 1)")
    run.add_argument("--tx", action="append", metavar="SPEC",
                     help="xdist/execnet gateway of one worker (repeatable; e.g. popen, "
                     "ssh=lab-host//python=python3): one worker per --tx, instead of "
                     "--workers; default: none, local workers)")
    run.add_argument("--no-report", action="store_true", help="skip the signed report")
    run.add_argument("--json", action="store_true",
                     help="print a machine-readable summary on stdout (conclusion, counts, the "
                     "cases to look at with their reasons, paths); the human text is on stderr")
    _signing_options(run)
    run.set_defaults(func=cmd_run)

    cases = sub.add_parser("cases", help="the case catalogue").add_subparsers(
        dest="cases_command", required=True
    )
    lst = cases.add_parser("list", help="list the cases")
    lst.add_argument("--json", action="store_true", help="print the list as JSON")
    lst.add_argument("--plan", help="only the cases of this plan (a file, or a shipped name "
                     "such as selftest; default: every case of the catalogue)")
    lst.add_argument("--group", action="append", default=[], metavar="GROUP",
                     help="only the cases of this group (repeatable, or a comma list such as "
                     "SEC,PIN; default: every group)")
    lst.set_defaults(func=cmd_cases_list)
    show = cases.add_parser("show", help="the full specification of one case")
    show.add_argument("id", help="case ID, e.g. SEC-RD-DF02-EF07-005")
    show.add_argument("--json", action="store_true", help="print the specification as JSON")
    show.set_defaults(func=cmd_cases_show)

    card = sub.add_parser("card", help="the reference virtual card").add_subparsers(
        dest="card_command", required=True
    )
    serve = card.add_parser("serve", help="put the virtual card into a vpcd reader")
    serve.add_argument("--vpcd-port", type=int, default=VPCD_PORT,
                       help="TCP port of the vpcd reader driver")
    serve.add_argument("--vpcd-host", default=VPCD_HOST, help="host of the vpcd reader driver")
    serve.add_argument("--save-image", help="write the card image here when the card leaves "
                       "(default: not saved)")
    _run_options(serve, VIRTUAL_CARD_OPTIONS)
    serve.set_defaults(func=cmd_card_serve)
    dump = card.add_parser("dump", help="read every data item and print JSON")
    _run_options(dump, ["card", "reader", "apdu-timeout", *VIRTUAL_CARD_OPTIONS])
    dump.set_defaults(func=cmd_card_dump)
    faults = card.add_parser("faults", help="list the defect catalogue")
    faults.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    faults.add_argument("--matrix", action="store_true",
                        help="run the catalogue under every fault and print the kill matrix")
    faults.add_argument("--out", help="with --matrix: write the matrix as JSON to this file "
                        "(default: not written)")
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
    verify.add_argument("--trust", help="CA certificate (PEM) the lab certificate must chain "
                        "to; `demo`: the shipped demo CA (see `rhc paths`; default: none, so "
                        "at best UNTRUSTED)")
    verify.set_defaults(func=cmd_report_verify)
    reveal = report.add_parser("reveal", help="list the masked fields of a run, or prove with "
                               "the lab's key what one held")
    reveal.add_argument("dir", help="run directory")
    reveal.add_argument("--key", help="the lab's private key (PEM or PKCS#12; passphrase in "
                        "RHC_SIGN_PASSPHRASE) the salt was sealed to (default: none: only "
                        "list the fields)")
    reveal.add_argument("--value", help="candidate value of a masked field, as hex "
                        "(default: none: list the fields)")
    reveal.add_argument("--text", help="candidate value as text, encoded as each masked item "
                        "is (e.g. a name: GBK, 00-padded; default: none)")
    reveal.add_argument("--case", help="only the fields of this case (default: every case)")
    reveal.set_defaults(func=cmd_report_reveal)
    build = report.add_parser("build", help="re-issue the signed report of a finished run")
    build.add_argument("dir", help="run directory")
    _run_options(build, LAB_FILES)
    _signing_options(build)
    build.set_defaults(func=cmd_report_build)
    allure = report.add_parser("allure", help="build the Allure dashboard of a run")
    allure.add_argument("dir", help="run directory")
    allure.set_defaults(func=cmd_report_allure)

    from conformance.terminal.cli import add_terminal_commands
    from conformance.terminal_ref.cli import add_parser as add_reference_terminal

    add_reference_terminal(add_terminal_commands(sub))
    from conformance.interop.cli import add_interop_commands

    add_interop_commands(sub)

    from conformance.validate.cli import add_validate_commands

    add_validate_commands(sub)

    paths = sub.add_parser("paths", help="where the shipped profiles, fixtures and demo CA are")
    paths.add_argument("--json", action="store_true", help="print the places as JSON")
    paths.set_defaults(func=cmd_paths)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except BrokenPipeError:  # `rhc cases list | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (CliError, ConfigError, ProfileError, BenchError, ValueError, OSError) as exc:
        print(f"rhc: error: {exc}", file=sys.stderr)
        return EXIT_NO_VERDICT
    except KeyboardInterrupt:
        print("rhc: interrupted", file=sys.stderr)
        return EXIT_NO_VERDICT


if __name__ == "__main__":
    sys.exit(main())
