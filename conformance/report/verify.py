"""Verifying a signed report: signature, signer, seals, XSD, counts and every file of the run.

Three answers (VerifyResult.status): VALID — intact, and the signer chains to a trusted CA
(`trust`, a PEM file of CA certificates) at the signing time; UNTRUSTED — intact, but no trust
anchor was given or the signer does not chain to it (anyone can make a certificate: an intact
signature alone says nothing about who signed); INVALID — anything wrong, each problem named:
the XML element (by its seal), the signature reference, the leaf policy the certificate breaks,
the file whose digest differs, the file added to or missing from the run directory, report.pdf's
PAdES signature, or the group whose signed counts its case verdicts contradict.

DEMO (a certificate that chains to the shipped demo CA, whose key is public) is said in a note
whatever the status. Nothing here raises for a damaged report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.x509 import verification as xv
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.exceptions import (
    InvalidCertificate,
    InvalidDigest,
    InvalidSignature,
    SignXMLException,
)
from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

from conformance.report.manifest import DASHBOARD_DIR, REPORT_PDF, run_files
from conformance.report.model import VERDICTS, sha256_path
from conformance.report.pades import check_pdf
from conformance.report.sign import (
    chains_to_demo,
    leaf_policy_problems,
    name_part,
    signing_certificate,
    signing_time_of,
)
from conformance.report.xml import (
    DS_NS,
    NS,
    SCHEMA_VERSION,
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

VALID, UNTRUSTED, INVALID = "VALID", "UNTRUSTED", "INVALID"


@dataclass
class VerifyResult:
    """ok: VALID (intact and trusted). intact: no problem found. untrusted: why the signer is
    not trusted (empty when chain_checked). notes: what a reader must know (DEMO, unsigned)."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    report: Path | None = None
    chain_checked: bool = False
    untrusted: str = ""
    demo: bool = False
    signer: str = ""
    signer_cn: str = ""
    signer_org: str = ""
    signing_time: str = ""
    conclusion: str = ""
    evidence_checked: int = 0
    files_checked: int = 0
    pdf_checked: bool = False

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def status(self) -> str:
        if self.problems:
            return INVALID
        return VALID if self.chain_checked else UNTRUSTED


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


def _xades_verify(data: bytes, cert: x509.Certificate, at: dt.datetime | None) -> list:
    """signxml's check at the claimed signing time (it is a signed property, so a verified
    signature confirms it). A certificate not valid then is the leaf policy's finding
    ("expired …"): the integrity is still checked, at a time the certificate was valid."""
    try:
        return XAdESVerifier().verify(
            data, x509_cert=cert, expect_config=XAdESSignatureConfiguration(
                location="./", verification_time=at
            )
        )
    except InvalidCertificate:
        inside = XAdESSignatureConfiguration(
            location="./", verification_time=cert.not_valid_before_utc
        )
        return XAdESVerifier().verify(data, x509_cert=cert, expect_config=inside)


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
        refs = _xades_verify(data, certs[0], signing_time_of(root))
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


def _check_chain(
    certs: list[x509.Certificate], trust: Path, at: dt.datetime, result: VerifyResult
) -> None:
    """Does the signer chain to a CA in `trust` at the signing time? (UNTRUSTED if not.)"""
    try:
        anchors = x509.load_pem_x509_certificates(Path(trust).read_bytes())
    except (OSError, ValueError) as exc:
        result.problems.append(f"trust anchors {trust} cannot be read: {exc}")
        return

    def key_usage(_policy: object, _cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
        if usage is not None and not (usage.digital_signature or usage.content_commitment):
            raise ValueError("KeyUsage lacks digitalSignature and nonRepudiation")

    ee_policy = xv.ExtensionPolicy.permit_all().may_be_present(
        x509.KeyUsage, xv.Criticality.AGNOSTIC, key_usage
    )
    builder = (
        xv.PolicyBuilder()
        .store(xv.Store(anchors))
        .time(at)
        .extension_policies(ee_policy=ee_policy, ca_policy=xv.ExtensionPolicy.webpki_defaults_ca())
    )
    try:
        builder.build_client_verifier().verify(certs[0], certs[1:])
    except xv.VerificationError as exc:
        result.untrusted = (
            f"certificate chain: the signer {certs[0].subject.rfc4514_string()} (issued by "
            f"{certs[0].issuer.rfc4514_string()}) does not chain to a CA in {trust} at the "
            f"signing time: {exc}"
        )
        return
    result.chain_checked = True


def _check_signer(
    root: etree._Element, certs: list[x509.Certificate], trust: Path | None, result: VerifyResult
) -> None:
    """Leaf policy at the signing time (INVALID), DEMO (a note), chain to `trust` (UNTRUSTED)."""
    leaf = certs[0]
    result.signer_cn = name_part(leaf, NameOID.COMMON_NAME)
    result.signer_org = name_part(leaf, NameOID.ORGANIZATION_NAME)
    at = signing_time_of(root)
    if at is None:
        result.problems.append("signature: no xades:SigningTime date-time in the signed properties")
        return
    result.signing_time = at.isoformat()
    result.demo = chains_to_demo(certs)
    if result.demo:
        result.notes.append(
            "DEMO: the signing certificate chains to the shipped demo CA (fixtures/pki), whose "
            "key is public — anyone can mint such a certificate: not a certified report"
        )
    policy = leaf_policy_problems(leaf, at)
    result.problems.extend(f"signer refused: {p}" for p in policy)
    if policy:
        return
    if trust is None:
        result.untrusted = (
            "no trust anchor given: the signature shows the report is intact, not who signed "
            "it — pass --trust CA.pem"
        )
        result.notes.append("certificate chain NOT checked (no trust anchor given)")
    else:
        _check_chain(certs, trust, at, result)


def _case_evidence(root: etree._Element) -> dict[str, tuple[str, str]]:
    """{evidence path: (case id, signed digest)} from the signed cases."""
    out: dict[str, tuple[str, str]] = {}
    for element in root.iterfind(f"{q('cases')}/{q('case')}/{q('evidence')}"):
        parent = element.getparent()
        case_id = (parent.get("id") if parent is not None else None) or "?"
        out[element.get("path") or ""] = (case_id, element.get("sha256") or "")
    return out


def _check_evidence_digest(
    element: etree._Element | None, evidence: dict[str, tuple[str, str]], result: VerifyResult
) -> None:
    """The one evidence digest report.pdf prints must be the digest of the signed list."""
    if element is None:
        return  # a report of an earlier schema: it printed the whole list
    lines = "".join(f"{digest}  {rel}\n" for rel, (_, digest) in sorted(evidence.items()))
    if element.get("sha256") != hashlib.sha256(lines.encode("utf-8")).hexdigest():
        result.problems.append(
            "manifest: the evidence digest printed in the report is not the SHA-256 of the "
            f"{len(evidence)} evidence digests of the signed cases — the report contradicts itself"
        )


def _check_files(
    root: etree._Element, run_dir: Path, signer: x509.Certificate | None, result: VerifyResult
) -> None:
    """Every file of the run against the signed manifest: changed, missing, added; the PDF."""
    manifest = root.find(q("manifest"))
    if manifest is None:
        result.problems.append("report.xml has no signed <manifest>: the run's files are unbound")
        return
    listed = {el.get("path") or "": el.get("sha256") or "" for el in manifest.iterfind(q("file"))}
    evidence = _case_evidence(root)
    for rel, (case_id, digest) in evidence.items():
        if listed.get(rel) != digest:
            result.problems.append(
                f"case {case_id}: its evidence {rel} is not in the signed manifest with the "
                "same digest — the report contradicts itself"
            )
    _check_evidence_digest(manifest.find(q("evidence")), evidence, result)

    def label(rel: str) -> str:
        return f"evidence file {rel} (case {evidence[rel][0]})" if rel in evidence else rel

    # Only what a walk of run_dir finds counts as present: regular files inside it, reached
    # without following a link (so a listed path cannot lead outside the run directory).
    present, odd = run_files(run_dir)
    on_disk = set(present)
    missing: list[str] = []
    for rel, recorded in listed.items():
        if rel not in on_disk:
            missing.append(rel)
            continue
        try:
            actual = sha256_path(run_dir / rel)
        except OSError as exc:
            result.problems.append(f"{label(rel)} cannot be read: {exc.strerror or exc}")
            continue
        if actual != recorded:
            result.problems.append(
                f"{label(rel)}: SHA-256 is {actual}, the signed manifest records {recorded} — "
                "the file was changed after signing"
            )
            continue
        result.files_checked += 1
        result.evidence_checked += rel in evidence
    if missing and len(missing) == len(listed) and len(missing) > 3:
        result.problems.append(
            f"none of the {len(missing)} files the signed manifest lists is in {run_dir} "
            "(verify the run directory the report was written in, not a copy of report.xml)"
        )
    else:
        result.problems.extend(
            f"{label(rel)} is missing" if rel in evidence
            else f"{rel} is missing (the signed manifest lists it)"
            for rel in missing
        )
    result.problems.extend(
        f"{rel} is in the run directory but not in the signed manifest — added after signing"
        for rel in present
        if rel not in listed
    )
    result.problems.extend(
        f"{rel} is not a regular file (a symbolic link?): not written by rhc" for rel in odd
    )
    if (run_dir / DASHBOARD_DIR).exists():
        result.notes.append(
            f"{DASHBOARD_DIR}/ is not signed (a view built later from the signed "
            "allure-results): rebuild it with `rhc report allure` rather than trust a copy"
        )
    _check_pdf(manifest.find(q("pdf")), run_dir, signer, result)


def _check_pdf(
    element: etree._Element | None,
    run_dir: Path,
    signer: x509.Certificate | None,
    result: VerifyResult,
) -> None:
    pdf_path = run_dir / REPORT_PDF
    if element is None:
        if pdf_path.exists():
            result.problems.append(
                f"{REPORT_PDF} is in the run directory but the signed report lists no PDF — "
                "added after signing"
            )
        return
    if not pdf_path.is_file():
        result.problems.append(f"{REPORT_PDF} is missing (the signed manifest lists it)")
        return
    if signer is None:
        return  # the XML signature problem is reported already
    try:
        size = int(element.get("renderedSize") or "0")
        data = pdf_path.read_bytes()
    except (OSError, ValueError) as exc:
        result.problems.append(f"{REPORT_PDF} cannot be checked: {exc}")
        return
    check = check_pdf(
        data, rendered_size=size, rendered_sha256=element.get("renderedSha256") or "", signer=signer
    )
    result.problems.extend(check.problems)
    result.pdf_checked = not check.problems


def _signed_counts(element: etree._Element) -> dict[str, int] | None:
    try:
        counts = {c.get("verdict") or "": int(c.text or "") for c in element.iterfind(q("count"))}
        counts["total"] = int(element.get("total") or "")
    except ValueError:
        return None  # the XSD problem is reported already
    return counts


def _check_counts(root: etree._Element, result: VerifyResult) -> None:
    """The signed counts (per group, overall, mandatory) recomputed from the case verdicts."""
    zero = dict.fromkeys(VERDICTS, 0)
    by_group: dict[str, dict[str, int]] = {}
    overall, mandatory = dict(zero), dict(zero)
    for case in root.iterfind(f"{q('cases')}/{q('case')}"):
        verdict = case.get("verdict") or ""
        if verdict not in zero:
            return  # the XSD problem is reported already
        by_group.setdefault(case.get("group") or "-", dict(zero))[verdict] += 1
        overall[verdict] += 1
        if case.get("mandatory") in ("true", "1"):
            mandatory[verdict] += 1

    def compare(element: etree._Element | None, expected: dict[str, int], what: str) -> None:
        if element is None:
            result.problems.append(f"{what}: no signed counts")
            return
        signed = _signed_counts(element)
        want = {**expected, "total": sum(expected.values())}
        if signed is not None and signed != want:
            shown = ", ".join(
                f"{k} {signed.get(k)}→{v}" for k, v in want.items() if signed.get(k) != v
            )
            result.problems.append(
                f"{what}: the signed counts differ from its case verdicts ({shown})"
            )

    seen: set[str] = set()
    for group in root.iterfind(f"{q('groups')}/{q('group')}"):
        name = group.get("name") or ""
        seen.add(name)
        compare(group, by_group.get(name, zero), f"group {name}")
    for name in by_group.keys() - seen:
        result.problems.append(f"group {name}: its cases have no signed counts in <groups>")
    conclusion = root.find(q("conclusion"))
    if conclusion is not None:
        compare(conclusion.find(q("counts")), overall, "the overall counts")
        compare(conclusion.find(q("mandatoryCounts")), mandatory, "the mandatory counts")


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
    result.ok = result.status == VALID
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

    version = root.get("schemaVersion")
    if version != SCHEMA_VERSION:
        result.problems.append(
            f"{xml_path.name} is of report schema version {version}; this rhc verifies version "
            f"{SCHEMA_VERSION} (re-issue it with `rhc report build`, or verify it with the rhc "
            "release that wrote it)"
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
        _check_signer(root, certs, trust, result)
    _check_files(root, run_dir, certs[0] if certs else None, result)
    _check_counts(root, result)
    _check_conclusion(root, result)
