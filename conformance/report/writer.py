"""write_report: run directory → report.xml (validated, signed) → report.html → report.pdf."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from conformance.report.model import ReportError, build_model, sha256_path
from conformance.report.render import render_html, write_pdf
from conformance.report.sign import load_signing_material, sign_document, signature_info
from conformance.report.verify import verify_report
from conformance.report.xml import build_xml, check_schema


@dataclass
class ReportPaths:
    xml: Path
    html: Path
    pdf: Path | None
    conclusion: str
    demo_key: bool


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file + rename so a crash never leaves half a signed report."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(
    run_dir: Path | str,
    *,
    lab: Path | str | None = None,
    key: Path | str | None = None,
    cert: Path | str | None = None,
    pkcs12: Path | str | None = None,
    passphrase: str | None = None,
    pdf: bool = True,
) -> ReportPaths:
    """Write run_dir/report.xml (XAdES-signed), report.html and report.pdf.

    Without key/cert/pkcs12 it signs with the DEMO key (fixtures/pki) and the first page says so;
    without lab it uses fixtures/lab-demo.yaml. Every failure is a ReportError with a message.
    Call it after the run has finished writing summary.json, results.jsonl and evidence/: their
    digests are signed into the report, and `verify` flags any later change to them.
    """
    run_dir = Path(run_dir)
    key, cert, pkcs12 = (Path(p) if p else None for p in (key, cert, pkcs12))
    material = load_signing_material(key=key, cert=cert, pkcs12=pkcs12, passphrase=passphrase)
    model = build_model(run_dir, lab=lab, demo_key=material.demo)
    doc = build_xml(model)
    check_schema(doc)
    signed = sign_document(doc, material)
    data = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")

    xml_path = run_dir / "report.xml"
    try:
        _atomic_write(xml_path, data)
        check = verify_report(run_dir)  # never hand out a report our own verifier rejects
        if not check.ok:
            raise ReportError(
                "the report just written does not verify: " + "; ".join(check.problems)
            )
        html = render_html(model, signature_info(signed), sha256_path(xml_path))
        html_path = run_dir / "report.html"
        _atomic_write(html_path, html.encode("utf-8"))
    except OSError as exc:
        raise ReportError(f"cannot write the report into {run_dir}: {exc}") from None
    pdf_path = run_dir / "report.pdf"
    pdf_path.unlink(missing_ok=True)  # a PDF of an earlier report must not sit beside this one
    if pdf:
        write_pdf(html, pdf_path)
    return ReportPaths(
        xml=xml_path,
        html=html_path,
        pdf=pdf_path,
        conclusion=model.conclusion,
        demo_key=material.demo,
    )
