"""`rhc interop run --sign`: the lab's signature on the matrix, with the report machinery.

Each pair's directory is a terminal run, so the report writer signs it as a terminal report
(report.xml with the manifest of every file of the pair, XAdES; report.html) and
`rhc report verify DIR/pairs/CARD__TERMINAL` checks it. interop.json records each pair's
report.xml digest, and interop.pdf carries a PAdES signature with the same key (poppler's
`pdfsig` and every PDF reader show it). Without --sign nothing is signed: a matrix is an
overview, the pairs' evidence is what a lab signs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from conformance.report.manifest import REPORT_XML
from conformance.report.model import sha256_path
from conformance.report.pades import sign_pdf
from conformance.report.sign import SigningMaterial, load_signing_material
from conformance.report.writer import write_report

__all__ = ["material", "sign_pair", "sign_pdf_file"]


def material(args: argparse.Namespace) -> SigningMaterial:
    """The lab's key and certificate from the signing options (the DEMO key without them)."""
    paths = (Path(p) if p else None for p in (args.sign_key, args.sign_cert, args.sign_p12))
    key, cert, p12 = paths
    return load_signing_material(key=key, cert=cert, pkcs12=p12,
                                 passphrase=os.environ.get("RHC_SIGN_PASSPHRASE"))


def sign_pair(pair_dir: Path, args: argparse.Namespace) -> dict[str, str]:
    """Sign one pair's run directory as a terminal report (no PDF: the matrix has one);
    where its report.xml is (relative to the matrix) and its SHA-256."""
    write_report(pair_dir, lab=args.lab, key=args.sign_key, cert=args.sign_cert,
                 pkcs12=args.sign_p12, passphrase=os.environ.get("RHC_SIGN_PASSPHRASE"),
                 pdf=False)
    xml = pair_dir / REPORT_XML
    return {"report": f"pairs/{pair_dir.name}/{REPORT_XML}", "report_sha256": sha256_path(xml)}


def sign_pdf_file(path: Path, signing: SigningMaterial) -> None:
    """Append the lab's PAdES signature to interop.pdf."""
    signed = sign_pdf(path.read_bytes(), signing, reason=f"Interoperability matrix {path.name}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(signed)
    tmp.replace(path)
