"""report.pdf signed with the lab's key (PAdES baseline B, pyHanko), and checked back.

The signature is an invisible signature field appended by incremental update, so every PDF
reader lists the lab's signature and poppler's `pdfsig` reports it; the rendered PDF stays a
byte-for-byte prefix of the signed file, which is how report.xml binds it (report/manifest.py).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conformance.report.model import ReportError, sha256_bytes
from conformance.report.sign import SigningMaterial

FIELD_NAME = "LabSignature"


def _asn1_cert(cert: x509.Certificate):  # type: ignore[no-untyped-def]
    from asn1crypto import x509 as asn1_x509

    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def sign_pdf(rendered: bytes, material: SigningMaterial, *, reason: str) -> bytes:
    """The rendered PDF with a PAdES signature appended (an incremental update)."""
    from asn1crypto import keys as asn1_keys
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    logging.getLogger("pyhanko").setLevel(logging.ERROR)
    key_der = material.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    chain = [_asn1_cert(c) for c in material.chain]
    signer = signers.SimpleSigner(
        signing_cert=chain[0],
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs(chain),
    )
    common_name = material.chain[0].subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        subfilter=SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        name=str(common_name[0].value) if common_name else None,
    )
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(rendered))
        signed = signers.sign_pdf(writer, meta, signer=signer).getvalue()
    except Exception as exc:  # pyHanko failures of any kind become one clear line
        raise ReportError(f"cannot sign report.pdf: {type(exc).__name__}: {exc}") from None
    if signed[: len(rendered)] != rendered:
        raise ReportError("cannot sign report.pdf: the signed file does not extend the rendered")
    return signed


@dataclass
class PdfCheck:
    problems: list[str] = field(default_factory=list)


def check_pdf(
    data: bytes, *, rendered_size: int, rendered_sha256: str, signer: x509.Certificate
) -> PdfCheck:
    """Is this the PDF report.xml was issued with, signed intact by report.xml's signer?"""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    check = PdfCheck()
    prefix = data[:rendered_size]
    if len(prefix) != rendered_size or sha256_bytes(prefix) != rendered_sha256:
        check.problems.append(
            "report.pdf is not the PDF this report was issued with: its rendered content "
            f"(first {rendered_size} bytes) does not have the SHA-256 {rendered_sha256} the "
            "signed manifest records — replaced or re-rendered"
        )
        return check
    try:
        signatures = PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures
    except Exception as exc:
        check.problems.append(f"report.pdf cannot be read as a PDF: {type(exc).__name__}: {exc}")
        return check
    if len(signatures) != 1:
        check.problems.append(
            f"report.pdf carries {len(signatures)} signatures: exactly one (the lab's) expected"
        )
        return check
    embedded = signatures[0]
    try:
        anchor = _asn1_cert(signer)
        status = validate_pdf_signature(
            embedded, ValidationContext(trust_roots=[anchor], allow_fetching=False)
        )
    except Exception as exc:
        check.problems.append(
            f"report.pdf: its signature cannot be checked: {type(exc).__name__}: {exc}"
        )
        return check
    if not status.intact:
        check.problems.append("report.pdf: the signed bytes changed after the PDF was signed")
    elif not status.valid:
        check.problems.append("report.pdf: the PDF signature value does not verify")
    if status.signing_cert.dump() != anchor.dump():
        check.problems.append(
            f"report.pdf is signed by {status.signing_cert.subject.human_friendly}, not by "
            f"report.xml's signer {signer.subject.rfc4514_string()}"
        )
    if status.coverage is not SignatureCoverageLevel.ENTIRE_FILE:
        check.problems.append(
            "report.pdf: bytes were appended after its signature (an unsigned incremental update)"
        )
    return check
