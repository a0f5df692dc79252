"""`rhc terminal reference [--fault NAME…] OPERATION [ARGUMENT…]`: the reference terminal as
a program speaking TERMINAL.md.

Environment: RHC_READER (the PC/SC reader of the test card), RHC_KEYS (the test master keys);
RHC_SAM_READER is not used (the reference terminal computes with the key file, uses_sam
false). Standard input: one JSON document for writing operations. Standard output: exactly
one JSON document; exit 0 when the transaction completed, 1 when it was refused or aborted
(``{"status": "error", "sw": …, "message": …}``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import IO, Any

from conformance.apdu import ApduError, sw_hex
from conformance.host.keys import KeyProvider, TestKeyProvider
from conformance.host.session import AuthenticationWithheld, HostError, HostUsageError
from conformance.model import CardProfile, ProfileError, load_profile
from conformance.terminal_ref.faults import FAULTS, check_faults
from conformance.terminal_ref.link import TerminalLink
from conformance.terminal_ref.operations import (
    OPERATIONS,
    Refusal,
    needs_card,
    parse_request,
    run_request,
)
from conformance.terminal_ref.session import TerminalSession
from conformance.transport.base import BenchError, Transport
from conformance.transport.layers import T0Rules

__all__ = ["add_parser", "main", "transact"]

EXIT_DONE = 0
EXIT_REFUSED = 1
APDU_TIMEOUT_S = 10.0
"""How long the terminal waits for one answer before it gives up with an error: well inside
the profiles' timeout_s (30 s), since a program that outlives timeout_s is killed and FAILs."""

TransportFactory = Callable[[], Transport]


def error_document(exc: BaseException) -> dict[str, Any]:
    """The contract's error document for why a transaction stopped."""
    doc: dict[str, Any] = {"status": "error"}
    if isinstance(exc, ApduError):
        doc["sw"] = sw_hex(exc.sw)
        notes = "; ".join(getattr(exc, "__notes__", []))
        doc["message"] = f"{exc}{' (' + notes + ')' if notes else ''}"
    elif isinstance(exc, Refusal):
        if exc.sw:
            doc["sw"] = exc.sw
        doc["message"] = str(exc)
    elif isinstance(exc, (BenchError, HostError, HostUsageError, AuthenticationWithheld,
                          ValueError, OSError, ProfileError)):
        doc["message"] = str(exc)
    else:
        doc["message"] = f"unexpected {type(exc).__name__}: {exc}"
    doc["message"] = " ".join(doc["message"].split())  # one line
    return doc


def transact(
    operation: str,
    args: list[str],
    stdin: IO[str] | None,
    *,
    profile: CardProfile,
    keys: Callable[[], KeyProvider],
    transport: TransportFactory,
    faults: frozenset[str] = frozenset(),
) -> tuple[int, dict[str, Any]]:
    """One transaction: (exit status, the JSON document to print). The request is checked
    completely before the keys are loaded or the reader is opened."""
    try:
        spec = OPERATIONS.get(operation)
        doc: object = None
        if spec is not None and spec.reads_input:
            text = stdin.read() if stdin is not None else ""
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as exc:
                raise Refusal(f"standard input is not one JSON document: {exc}") from None
        request = parse_request(profile, operation, args, doc)
        if not needs_card(request):
            return EXIT_DONE, {"items": {}} if operation == "get" else {"status": "ok"}
        provider = keys()
        link_inner = transport()
        try:
            link = TerminalLink(link_inner, T0Rules.from_profile(profile),
                                skip_get_response="skip_get_response" in faults)
            session = TerminalSession(link, profile, provider, faults=faults)
            return EXIT_DONE, run_request(session, request)
        finally:
            link_inner.close()
    except Exception as exc:  # every way a transaction stops is a JSON document, exit 1
        return EXIT_REFUSED, error_document(exc)


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise Refusal(f"environment variable {name} is not set")
    return value


def _pcsc(timeout_s: float) -> TransportFactory:
    def open_reader() -> Transport:
        from conformance.transport.pcsc import PcscTransport

        return PcscTransport(_env("RHC_READER"), timeout_s=timeout_s, exclusive=False)

    return open_reader


def main(
    words: list[str],
    faults: list[str] | tuple[str, ...] = (),
    apdu_timeout: str | None = None,
    profile_path: str | None = None,
) -> int:
    """Run one transaction (``words``: the operation and its arguments); prints one JSON
    document and returns the exit status."""
    try:
        fault_set = check_faults(list(faults))
        timeout = APDU_TIMEOUT_S if apdu_timeout is None else _seconds(apdu_timeout)
        profile = load_profile(profile_path)
        if not words:
            raise Refusal(f"no operation given; operations: {', '.join(OPERATIONS)}")
    except Exception as exc:
        status, doc = EXIT_REFUSED, error_document(exc)
    else:
        status, doc = transact(
            words[0], words[1:], sys.stdin,
            profile=profile,
            keys=lambda: TestKeyProvider.from_file(_env("RHC_KEYS"), profile),
            transport=_pcsc(timeout),
            faults=fault_set,
        )
    sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return status


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise Refusal(f"--apdu-timeout {text!r} is not a positive number of seconds")
    return value


def add_parser(terminal: Any) -> None:
    """Register `reference` under `rhc terminal` (``terminal``: its subparsers)."""
    faults = ", ".join(FAULTS)
    ref = terminal.add_parser(
        "reference",
        help="the reference terminal: one transaction of TERMINAL.md on $RHC_READER",
        description=__doc__.split("\n\n")[0] + f" Faults: {faults}. Operations: "
        + ", ".join(OPERATIONS) + ".",
    )
    ref.add_argument("--fault", action="append", default=[], metavar="NAME",
                     help=f"behave as the faulty terminal NAME (repeatable; default: none, "
                          f"the reference behaviour): {faults}")
    ref.add_argument("--apdu-timeout", metavar="SECONDS",
                     help=f"wait this long for one answer of the card (default {APDU_TIMEOUT_S:g})")
    ref.add_argument("words", nargs=argparse.REMAINDER, metavar="OPERATION [ARGUMENT…]",
                     help="the operation and its arguments")
    ref.set_defaults(func=lambda args: main(args.words, args.fault, args.apdu_timeout,
                                            getattr(args, "profile", None)))
