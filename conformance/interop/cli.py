"""`rhc interop …`: the interoperability matrix of card variants × terminals."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from conformance import __version__
from conformance.config import ConfigError
from conformance.defaults import (
    DEFAULT_OUT_ROOT,
    EXIT_NO_VERDICT,
    EXIT_NOT_CONFORMANT,
    EXIT_OK,
    VPCD_PORT,
    VPCD_READERS,
)

__all__ = ["add_interop_commands"]

JSON_NAME = "interop.json"


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_interop_commands(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Register `rhc interop` with `run`, `cards` and `transactions`; its subcommand table."""
    interop = sub.add_parser("interop", help="the interoperability matrix: card variants × "
                             "terminals")
    commands = interop.add_subparsers(dest="interop_command", required=True)
    run = commands.add_parser("run", help="run every (card variant, terminal) pair and write "
                              "interop.json, interop.html and interop.pdf")
    run.add_argument("--matrix", metavar="NAME|FILE",
                     help="a matrix file (cards, terminals, transactions), or a name in "
                     "profiles/interop/matrices/ (default: none; then --cards and --terminals)")
    run.add_argument("--cards", metavar="A,B,…",
                     help="card variants, comma-separated: names in profiles/interop/cards/ or "
                     "files, or reader:NAME (a card sample in a PC/SC reader, exact name or "
                     "regular expression: its data, read with the test keys, served by the "
                     "reference card OS) (default: the matrix file's)")
    run.add_argument("--terminals", metavar="X,Y,…",
                     help="terminal profiles, comma-separated: names in profiles/terminals/ or "
                     "files (default: the matrix file's)")
    run.add_argument("--transaction", action="append", default=[], metavar="PATTERN",
                     help="only the transactions whose ID matches (repeatable; default: the "
                     "matrix file's, else every transaction marked matrix: true)")
    run.add_argument("--out", help="matrix directory; new or empty, see --replace (default: "
                     "reports/out/interop-<UTC time>)")
    run.add_argument("--replace", action="store_true",
                     help="remove the earlier matrix in --out before this one starts")
    run.add_argument("--readers", type=int, default=VPCD_READERS, metavar="N",
                     help=f"vpcd readers to run rows on side by side, one per row (two where "
                     f"a terminal uses a SAM), from port {VPCD_PORT}, less any a reader: card "
                     f"sample sits in (default: {VPCD_READERS})")
    run.add_argument("--no-pdf", action="store_true", help="write interop.html only "
                     "(default: also interop.pdf)")
    run.add_argument("--json", action="store_true", help="print interop.json on stdout "
                     "(default: the grid as text)")
    run.add_argument("--sign", action="store_true",
                     help="sign each pair's run directory as a terminal report (rhc report "
                     "verify checks it) and interop.pdf (PAdES), with the --sign-* key "
                     "(default: unsigned)")
    from conformance.cli import _run_options, _signing_options

    _run_options(run, ["lab"])
    _signing_options(run)
    run.set_defaults(func=cmd_interop_run)
    cards = commands.add_parser("cards", help="list the shipped card variants")
    cards.set_defaults(func=cmd_interop_cards)
    tx = commands.add_parser("transactions", help="list the typical transactions a pair runs")
    tx.set_defaults(func=cmd_interop_transactions)
    return commands


def _out(args: argparse.Namespace) -> Path:
    """The matrix directory, checked before anything runs: new, empty, or a matrix that
    --replace removes."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else DEFAULT_OUT_ROOT / f"interop-{stamp}"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not args.replace:
            raise ConfigError(f"--out: {out} is not empty; nothing was touched: give a new "
                              "directory, or --replace to remove the earlier matrix")
        if not (out / JSON_NAME).exists():
            raise ConfigError(f"--replace: {out} holds no {JSON_NAME}; not removing it")
    return out


def grid_text(doc: dict[str, Any]) -> str:
    """The matrix as a text grid (rows cards, columns terminals; a cell: status and the
    failing transactions)."""
    cells = {(p["card"], p["terminal"]): p for p in doc["pairs"]}
    terms = [t["name"] for t in doc["terminals"]]

    def cell(p: dict[str, Any]) -> str:
        failing = p["failing"]
        more = f" (+{len(failing) - 1})" if len(failing) > 1 else ""
        return p["status"] + (f" {failing[0]}{more}" if failing else "")

    rows = [["card \\ terminal", *terms]]
    rows += [[c["name"], *(cell(cells[(c["name"], t)]) for t in terms)] for c in doc["cards"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def cmd_interop_run(args: argparse.Namespace) -> int:
    from conformance.interop.matrix import FAILS, WORKS, Pair, matrix_document
    from conformance.interop.report import INTEROP_PDF, write_matrix_report
    from conformance.interop.runner import run_matrix
    from conformance.interop.samples import (
        bench_ports,
        is_reader,
        read_sample,
        sample_entry,
        write_sample,
    )
    from conformance.interop.spec import MatrixSpec, load_matrix_spec, plan_matrix
    from conformance.lab import load_lab, now_in
    from conformance.model import load_profile
    from conformance.report.model import ReportError
    from conformance.terminal.bench import VpcdBench

    base = load_matrix_spec(args.matrix) if args.matrix else None
    cards = _names(args.cards) if args.cards else (base.cards if base else [])
    terminals = _names(args.terminals) if args.terminals else (base.terminals if base else [])
    if not cards or not terminals:
        raise ConfigError("give --matrix, or --cards and --terminals (comma-separated names "
                          "or files)")
    if args.readers < 1:
        raise ConfigError(f"--readers {args.readers}: at least one reader")
    spec = MatrixSpec(
        title_zh=base.title_zh if base else MatrixSpec.model_fields["title_zh"].default,
        title_en=base.title_en if base else MatrixSpec.model_fields["title_en"].default,
        cards=cards, terminals=terminals,
        transactions=args.transaction or (base.transactions if base else []))
    profile = load_profile(getattr(args, "profile", None))
    out = _out(args)
    # card samples in readers are read first, before any bench takes a vpcd port
    samples = {c: read_sample(c, profile, getattr(args, "profile", None))
               for c in dict.fromkeys(cards) if is_reader(c)}
    plan = plan_matrix(spec, profile, {c: sample_entry(s, out, profile)
                                       for c, s in samples.items()})
    signing = None
    if args.sign:
        from conformance.interop.signing import material

        try:  # a bad key is an error before anything runs
            signing = material(args)
        except ReportError as exc:
            raise ConfigError(f"--sign: {exc}") from None
    lab_path = Path(args.lab) if args.lab else None
    lab = load_lab(lab_path)
    if out.exists() and args.replace:
        shutil.rmtree(out)
    sam = any(t.profile.uses_sam for t in plan.terminals)
    step = 2 if sam else 1
    ports = bench_ports(args.readers, step, list(samples.values()))
    out.mkdir(parents=True, exist_ok=True)
    for sample in samples.values():
        write_sample(sample, out)
    benches = [VpcdBench(port) for port in ports[:len(plan.cards)]]
    workers = len(benches)
    text = sys.stderr if args.json else sys.stdout
    print(f"rhc: interop matrix {len(plan.cards)} card variants × {len(plan.terminals)} "
          f"terminals, {len(plan.transactions)} transactions, {workers} row(s) at a time, "
          f"directory {out}", file=text, flush=True)
    started, start = now_in(lab.tz), time.monotonic()

    def progress(pair: Pair) -> None:
        # the whole reason, in both languages: a cut one names nothing
        print(f"{pair.card:<14} × {pair.terminal:<30} {pair.status:<10} {pair.reason_zh}\n"
              f"{'':<4}{pair.reason_en}", file=text, flush=True)

    pairs = run_matrix(plan.cards, plan.terminals, plan.transactions, profile, benches, out,
                       lab_path=lab_path, progress=progress)
    if signing is not None:
        from conformance.interop.signing import sign_pair

        for pair in pairs:
            if pair.dir:
                try:
                    signed = sign_pair(out / "pairs" / pair.dir, args)
                except ReportError as exc:  # that pair unsigned, said so; the matrix goes on
                    print(f"rhc: pair {pair.dir} not signed: {exc}", file=text)
                else:
                    pair.report, pair.report_sha256 = signed["report"], signed["report_sha256"]
    finished = now_in(lab.tz)
    doc = matrix_document(plan.cards, plan.terminals, [t.titled() for t in plan.transactions],
                          pairs, {
                              "title_zh": plan.title_zh, "title_en": plan.title_en,
                              "matrix": plan.source, "suite_version": __version__,
                              "lab": lab.name_zh,
                              "started_at": started.isoformat(),
                              "finished_at": finished.isoformat(),
                              "duration_s": round(time.monotonic() - start, 3),
                              "signature": None if signing is None else {
                                  "demo": signing.demo, "source": signing.source},
                              "profile": {"name": profile.spec.profile.name,
                                          "standard": profile.spec.profile.standard,
                                          "sha256": profile.sha256}})
    (out / JSON_NAME).write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", "utf-8")
    try:
        written = write_matrix_report(out, doc, pdf=not args.no_pdf, zone=lab.tz)
        if signing is not None and not args.no_pdf:
            from conformance.interop.signing import sign_pdf_file

            sign_pdf_file(out / INTEROP_PDF, signing)
    except ReportError as exc:  # interop.json and the pairs' evidence stay
        raise ConfigError(f"matrix report not written ({out / JSON_NAME} was): {exc}") \
            from None
    print(grid_text(doc), file=text)
    print(f"rhc: {json.dumps(doc['counts'])} in {doc['duration_s']:.1f} s: "
          f"{', '.join(str(p) for p in [out / JSON_NAME, *written])}", file=text)
    if args.json:
        print(json.dumps(doc, ensure_ascii=False))
    if all(p.status == WORKS for p in pairs):
        return EXIT_OK
    return EXIT_NOT_CONFORMANT if any(p.status == FAILS for p in pairs) else EXIT_NO_VERDICT


def cmd_interop_cards(args: argparse.Namespace) -> int:
    from conformance.interop.variants import load_variant, variant_names

    for name in variant_names():
        v = load_variant(name)
        print(f"{name}\t{v.product}\t{v.title_zh}\t{v.title_en}")
    return EXIT_OK


def cmd_interop_transactions(args: argparse.Namespace) -> int:
    from conformance.interop.transactions import load_transactions

    for t in load_transactions():
        mark = "" if t.matrix else "\t(only when asked)"
        print(f"{t.id}\t{t.operation}\t{t.title_zh}\t{t.title_en}{mark}")
    return EXIT_OK
