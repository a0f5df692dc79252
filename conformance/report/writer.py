"""write_report: run directory → report.html, report.pdf (rendered) → report.xml binding their
digests and every file of the run (signed) → report.pdf signed (PAdES) → verified.

Order matters: the HTML and the PDF are rendered first (the signing certificate and time are
known before signing), so the signed XML can list their digests; the PDF's own signature is an
incremental update that leaves the rendered bytes as its prefix (report/manifest.py).
Nothing is written into the run directory before the XML is signed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from conformance.report.manifest import (
    REPORT_HTML,
    REPORT_PDF,
    REPORT_XML,
    FileEntry,
    Manifest,
    collect,
)
from conformance.report.model import ReportError, build_model
from conformance.report.pades import sign_pdf
from conformance.report.render import render_html, write_pdf
from conformance.report.sign import (
    load_signing_material,
    sign_document,
    signature_info,
    signing_now,
)
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


def _render_pdf(html: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="rhc-pdf-") as tmp:
        path = Path(tmp) / REPORT_PDF
        write_pdf(html, path)
        return path.read_bytes()


def write_report(
    run_dir: Path | str,
    *,
    lab: Path | str | None = None,
    submission: Path | str | None = None,
    bench: Path | str | None = None,
    key: Path | str | None = None,
    cert: Path | str | None = None,
    pkcs12: Path | str | None = None,
    passphrase: str | None = None,
    pdf: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ReportPaths:
    """Write run_dir/report.xml (XAdES-signed), report.html and report.pdf (PAdES-signed).

    Without key/cert/pkcs12 it signs with the DEMO key (fixtures/pki) and the first page says so;
    lab, submission and bench replace the files the run recorded in summary.json (no lab at
    all: fixtures/lab-demo.yaml). A run without a report number takes the lab's next one.
    Every failure is a ReportError with a message.
    Call it after the run has finished writing its files: every file then in run_dir is listed
    by digest in the signed report, and `verify` flags any later change, addition or removal.
    `progress` is called with the name of each step as it begins (the console shows them).
    """
    step = progress or (lambda name: None)
    run_dir = Path(run_dir)
    key, cert, pkcs12 = (Path(p) if p else None for p in (key, cert, pkcs12))
    material = load_signing_material(key=key, cert=cert, pkcs12=pkcs12, passphrase=passphrase)
    step("reading the results and evidence")
    model = build_model(run_dir, lab=lab, submission=submission, bench=bench,
                        demo_key=material.demo, number=True)
    signing_time = signing_now()
    sig = signature_info(material, signing_time)
    step("rendering report.html")
    html = render_html(model, sig).encode("utf-8")
    if pdf:
        step("rendering report.pdf")
    rendered = _render_pdf(render_html(model, sig, pdf=True)) if pdf else None
    step("hashing the files of the run")
    manifest = Manifest(
        files=sorted(
            [*collect(run_dir), FileEntry.of_bytes(REPORT_HTML, html)], key=lambda e: e.path
        ),
        pdf=FileEntry.of_bytes(REPORT_PDF, rendered) if rendered is not None else None,
    )
    step("signing report.xml (XAdES)")
    doc = build_xml(model, manifest)
    check_schema(doc)
    signed = sign_document(doc, material, signing_time)
    data = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    if rendered is not None:
        step("signing report.pdf (PAdES)")
    signed_pdf = (
        sign_pdf(rendered, material, reason=f"Conformance report {model.report_id}")
        if rendered is not None
        else None
    )

    xml_path, html_path, pdf_path = (run_dir / n for n in (REPORT_XML, REPORT_HTML, REPORT_PDF))
    step("writing report.xml, report.html" + (", report.pdf" if signed_pdf else ""))
    try:
        _atomic_write(xml_path, data)
        _atomic_write(html_path, html)
        if signed_pdf is not None:
            _atomic_write(pdf_path, signed_pdf)
        else:
            pdf_path.unlink(missing_ok=True)  # a PDF of an earlier report must not sit beside
    except OSError as exc:
        raise ReportError(f"cannot write the report into {run_dir}: {exc}") from None
    step("verifying the written report")
    check = verify_report(run_dir)  # never hand out a report our own verifier rejects
    if not check.intact:
        raise ReportError("the report just written does not verify: " + "; ".join(check.problems))
    return ReportPaths(
        xml=xml_path,
        html=html_path,
        pdf=pdf_path if signed_pdf is not None else None,
        conclusion=model.conclusion,
        demo_key=material.demo,
    )
