"""Verifying a signed report: signature, certificate chain, seals, XSD and the evidence files.

Trust: the signature is always checked with the certificate it carries, so any change to the
report fails verification with or without a trust anchor. Whether that certificate belongs to a
lab you trust is a separate question: with `trust` (a PEM file of CA certificates) the chain is
checked against it; without it the result says "certificate chain NOT checked" in its notes and
can still be ok — the report is intact, but nothing says who signed it.

Every problem names what is wrong: the XML element (by its seal), the signature reference, the
certificate, or the evidence file with both digests. Nothing here raises for a damaged report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.x509 import verification as xv
from lxml import etree
from signxml.exceptions import InvalidDigest, InvalidSignature, SignXMLException
from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

from conformance.report.model import ReportError, safe_relative, sha256_path
from conformance.report.sign import is_demo_cert, signing_certificate
from conformance.report.xml import (
    DS_NS,
    NS,
    SEAL,
    XADES_NS,
    describe,
    parser,
    q,
    schema_problems,
    seal_of,
    sealed_elements,
)
from conformance.results import CaseResult, Verdict, conclude, scope_of


@dataclass
class VerifyResult:
    """ok is True when nothing is wrong; notes carry what was not checked (e.g. the chain)."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    report: Path | None = None
    chain_checked: bool = False
    signer: str = ""
    conclusion: str = ""
    evidence_checked: int = 0


def _locate(path: Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.is_dir():
        return path / "report.xml", path
    return path, path.parent


def _reference_name(uri: str) -> str:
    if uri == "":
        return 'the report content (ds:Reference URI="")'
    if "SignedProperties" in uri:
        return f"the XAdES SignedProperties (signing time, certificate digest; URI={uri})"
    if "Certificate" in uri:
        return f"ds:KeyInfo, the embedded certificate (URI={uri})"
    return f"ds:Reference URI={uri}"


def _check_signature(
    data: bytes, root: etree._Element, result: VerifyResult
) -> list[x509.Certificate]:
    """signxml XAdES verification with the embedded certificate; problems name the reference."""
    if root.find(f"{{{DS_NS}}}Signature") is None:
        result.problems.append("report.xml is not signed: no ds:Signature element under <report>")
        return []
    try:
        certs = signing_certificate(root)
    except Exception as exc:  # damaged base64 / DER from an untrusted file
        result.problems.append(f"ds:X509Certificate cannot be read: {exc}")
        return []
    result.signer = certs[0].subject.rfc4514_string()
    try:
        refs = XAdESVerifier().verify(
            data,
            x509_cert=certs[0],
            expect_config=XAdESSignatureConfiguration(location="./"),
        )
    except InvalidDigest as exc:
        message = str(exc)
        uri = None
        for ref in root.iterfind(
            f"{{{DS_NS}}}Signature/{{{DS_NS}}}SignedInfo/{{{DS_NS}}}Reference"
        ):
            if f"({ref.get('URI')})" in message:
                uri = ref.get("URI")
                break
        what = _reference_name(uri) if uri is not None else message
        result.problems.append(f"signature: digest mismatch for {what} — changed after signing")
    except InvalidSignature as exc:
        result.problems.append(
            "signature: ds:SignatureValue does not verify over ds:SignedInfo with the key of "
            f"the embedded certificate ({exc})"
        )
    except SignXMLException as exc:
        result.problems.append(f"signature: {exc}")
    except Exception as exc:  # signxml on malformed input (bad base64, missing nodes …)
        result.problems.append(f"signature cannot be checked: {type(exc).__name__}: {exc}")
    else:
        tags = [r.signed_xml.tag if r.signed_xml is not None else None for r in refs]
        if q("report") not in tags:
            result.problems.append('signature: no reference covers the whole report (URI="")')
    _check_target(root, result)
    return certs


def _check_target(root: etree._Element, result: VerifyResult) -> None:
    """XAdES: QualifyingProperties/@Target must name this signature. It lies outside every
    signed reference, so signxml does not look at it (found by the byte-flip property test)."""
    signature = root.find(f"{{{DS_NS}}}Signature")
    if signature is None:
        return
    qualifying = signature.find(f"{{{DS_NS}}}Object/{{{XADES_NS}}}QualifyingProperties")
    if qualifying is None:
        result.problems.append("signature: no xades:QualifyingProperties (not a XAdES signature)")
    elif not signature.get("Id") or qualifying.get("Target") != f"#{signature.get('Id')}":
        result.problems.append(
            f"signature: xades:QualifyingProperties Target={qualifying.get('Target')!r} does "
            f"not point to this ds:Signature (Id={signature.get('Id')!r})"
        )


def _check_unsigned_nodes(root: etree._Element, result: VerifyResult) -> None:
    """Refuse what the signature does not cover but a reader might see: a DOCTYPE, comments and
    processing instructions (an <?xml-stylesheet?> before <report> restyles it in a browser)."""
    if root.getroottree().docinfo.doctype:
        result.problems.append("report.xml has a DOCTYPE: not written by rhc and not signed")
    outside = [*root.itersiblings(preceding=True), *root.itersiblings()]
    inside = root.iter(etree.Comment, etree.ProcessingInstruction)
    for node in [*outside, *inside]:
        kind = "comment" if isinstance(node, etree._Comment) else "processing instruction"
        where = "outside <report>" if node in outside else "inside <report>"
        result.problems.append(
            f"unsigned {kind} {where} (line {node.sourceline}): {str(node)[:60]!r} — "
            "not written by rhc"
        )


def _check_seals(root: etree._Element, result: VerifyResult) -> int:
    bad = 0
    for element in sealed_elements(root):
        if seal_of(element) != element.get(SEAL):
            bad += 1
            extra = ""
            if element.tag == q("case"):
                extra = f" (it now reads verdict={element.get('verdict')})"
            result.problems.append(
                f"{describe(element)}: content does not match its signed seal — "
                f"this element was changed after signing{extra}"
            )
    return bad


def _check_chain(certs: list[x509.Certificate], trust: Path, result: VerifyResult) -> None:
    try:
        anchors = x509.load_pem_x509_certificates(Path(trust).read_bytes())
    except (OSError, ValueError) as exc:
        result.problems.append(f"trust anchors {trust} cannot be read: {exc}")
        return

    def key_usage(_policy: object, _cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
        if usage is not None and not usage.digital_signature:
            raise ValueError("KeyUsage lacks digitalSignature")

    ee_policy = xv.ExtensionPolicy.permit_all().may_be_present(
        x509.KeyUsage, xv.Criticality.AGNOSTIC, key_usage
    )
    builder = (
        xv.PolicyBuilder()
        .store(xv.Store(anchors))
        .time(dt.datetime.now(dt.UTC))
        .extension_policies(ee_policy=ee_policy, ca_policy=xv.ExtensionPolicy.webpki_defaults_ca())
    )
    try:
        builder.build_client_verifier().verify(certs[0], certs[1:])
    except xv.VerificationError as exc:
        result.problems.append(
            f"certificate chain: the signer {certs[0].subject.rfc4514_string()} (issued by "
            f"{certs[0].issuer.rfc4514_string()}) does not chain to a CA in {trust}: {exc}"
        )
        return
    result.chain_checked = True


def _check_evidence(root: etree._Element, run_dir: Path, result: VerifyResult) -> None:
    """Re-hash every evidence file the signed report names and compare with its digest."""
    missing: list[str] = []
    elements = list(root.iterfind(f"{q('cases')}/{q('case')}/{q('evidence')}"))
    for element in elements:
        parent = element.getparent()
        case_id = parent.get("id") if parent is not None else "?"
        rel, recorded = element.get("path") or "", element.get("sha256") or ""
        try:
            path = safe_relative(run_dir, rel)
        except ReportError as exc:
            result.problems.append(f"case {case_id}: {exc}")
            continue
        try:
            actual = sha256_path(path) if path.is_file() else None
        except (OSError, ValueError) as exc:
            result.problems.append(f"evidence file {rel} (case {case_id}) cannot be read: {exc}")
            continue
        if actual is None:
            missing.append(f"evidence file {rel} (case {case_id}) is missing")
            continue
        result.evidence_checked += 1
        if actual != recorded:
            result.problems.append(
                f"evidence file {rel} (case {case_id}): SHA-256 is {actual}, the signed report "
                f"records {recorded} — the file was changed"
            )
    if missing and len(missing) == len(elements) and len(missing) > 3:
        result.problems.append(
            f"none of the {len(missing)} evidence files is in {run_dir} (verify the run "
            "directory the report was written in, not a copy of report.xml alone)"
        )
    else:
        result.problems.extend(missing)


def _check_sources(root: etree._Element, run_dir: Path, result: VerifyResult) -> None:
    for art in root.iterfind(f"{q('provenance')}/{q('artifact')}[@role='run']"):
        rel, recorded = art.get("path") or "", art.get("sha256") or ""
        try:
            path = safe_relative(run_dir, rel)
        except ReportError as exc:
            result.problems.append(f"provenance: {exc}")
            continue
        if not path.is_file():
            result.notes.append(f"{rel} is not next to report.xml: not compared")
        elif sha256_path(path) != recorded:
            result.problems.append(
                f"{rel}: SHA-256 differs from the one recorded in the signed report — the run's "
                "result file was changed after the report was written"
            )


def _check_conclusion(root: etree._Element, result: VerifyResult) -> None:
    """The stated conclusion must follow from the stated verdicts (same rule as the writer)."""
    conclusion = root.find(q("conclusion"))
    if conclusion is None:
        return
    result.conclusion = conclusion.get("value") or ""
    cases = []
    for case in root.iterfind(f"{q('cases')}/{q('case')}"):
        try:
            verdict = Verdict(case.get("verdict"))
        except ValueError:
            return  # the XSD problem is reported already
        cases.append(
            CaseResult(
                id=case.get("id") or "",
                group="",
                title_zh="",
                title_en="",
                clause="",
                purpose="",
                applicability="",
                expected_sw=[],
                mandatory=case.get("mandatory") in ("true", "1"),
                verdict=verdict,
            )
        )
    complete = conclusion.get("recordedByRun") != "INCOMPLETE"
    scope = scope_of({"scope": conclusion.get("scope")})
    expected = conclude(cases, complete=complete, scope=scope).value
    if expected != result.conclusion:
        result.problems.append(
            f"{describe(conclusion)}: states {result.conclusion}, but the case verdicts give "
            f"{expected}"
        )


def verify_report(path: Path | str, trust: Path | str | None = None) -> VerifyResult:
    """Verify report.xml (or a run directory holding it); never raises for a damaged report."""
    xml_path, run_dir = _locate(Path(path))
    result = VerifyResult(ok=False, report=xml_path)
    try:
        _verify(xml_path, run_dir, Path(trust) if trust else None, result)
    except Exception as exc:  # last resort: a verifier must answer, not crash
        result.problems.append(f"verification stopped: {type(exc).__name__}: {exc}")
    result.ok = not result.problems
    return result


def _verify(xml_path: Path, run_dir: Path, trust: Path | None, result: VerifyResult) -> None:
    try:
        data = xml_path.read_bytes()
    except OSError as exc:
        result.problems.append(f"cannot read {xml_path}: {exc.strerror or exc}")
        return
    try:
        root = etree.fromstring(data, parser())
    except etree.XMLSyntaxError as exc:
        result.problems.append(f"{xml_path.name} is not well-formed XML: {exc}")
        return
    if root.tag != q("report"):
        result.problems.append(
            f"{xml_path.name}: the root element is {root.tag}, not {{{NS}}}report"
        )
        return

    _check_unsigned_nodes(root, result)
    result.problems.extend(f"XSD: {p}" for p in schema_problems(root))
    certs = _check_signature(data, root, result)
    if not _check_seals(root, result):
        for index, problem in enumerate(result.problems):
            if 'URI="")' in problem:
                result.problems[index] += (
                    " (no sealed section differs: the change is in <report>'s own attributes, "
                    "between sections, or in several places consistently)"
                )
    if certs:
        if trust is not None:
            _check_chain(certs, trust, result)
        else:
            result.notes.append(
                "certificate chain NOT checked (no trust anchor given): the signature shows "
                "the report is intact, not who signed it — pass --trust CA.pem"
            )
        if is_demo_cert(certs[0]):
            result.notes.append(
                "signed with the DEMO key from fixtures/pki: not a certified report"
            )
    _check_evidence(root, run_dir, result)
    _check_sources(root, run_dir, result)
    _check_conclusion(root, result)
