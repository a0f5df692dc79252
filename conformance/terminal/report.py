"""The signed report of a terminal run: the card runs' writer, on the same run directory."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TextIO

__all__ = ["issue_report"]


def issue_report(out: Path, args: argparse.Namespace, text: TextIO) -> bool:
    """Write report.xml/.html/.pdf signed with the lab's material; False (and why) if not."""
    from conformance.report import ReportError, write_report

    try:
        paths = write_report(out, lab=args.lab, submission=args.submission, bench=args.bench,
                             key=args.sign_key, cert=args.sign_cert,
                             pkcs12=args.sign_p12,
                             passphrase=os.environ.get("RHC_SIGN_PASSPHRASE"))
    except (ReportError, OSError, ValueError, KeyError) as exc:
        print(f"rhc: report not issued: {type(exc).__name__}: {exc}", file=text)
        return False
    print(f"rhc: signed report ({paths.conclusion}): {paths.xml}, {paths.html}, {paths.pdf}",
          file=text)
    return True
