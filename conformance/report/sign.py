"""Signing report.xml: the lab's key and certificate (PEM or PKCS#12) → enveloped XAdES-BES.

The leaf policy (leaf_policy_problems) is the same for signing and verifying: KeyUsage with
digitalSignature or nonRepudiation, not a CA, RSA ≥ 2048 or EC ≥ 256 bits, valid at the signing
time. DEMO means "chains to the shipped demo CA", whoever minted the certificate: its private
key is public, so anyone can issue a certificate under it.

signxml's XAdESSigner with its default C14N 1.1: with exclusive C14N, signxml 5.2 cannot verify
its own XAdES signatures (measured, DESIGN.md); with C14N 1.1 both signxml and `xmlsec1 --verify`
accept them. The signature carries three references: URI="" (the whole report, enveloped
transform), the XAdES SignedProperties (signing time, signing-certificate digest) and KeyInfo.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12 as p12
from lxml import etree
from signxml import SignatureMethod
from signxml.exceptions import SignXMLException
from signxml.xades import XAdESDataObjectFormat, XAdESSigner

from conformance.report.model import ReportError
from conformance.report.xml import DS_NS, XADES_NS
from conformance.resources import DEMO_CA, DEMO_CERT, DEMO_KEY

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256


@dataclass
class SigningMaterial:
    """A private key and its certificate chain (leaf first, self-signed roots left out)."""

    key: SigningKey
    chain: list[x509.Certificate]
    demo: bool
    source: str


@dataclass
class SignatureInfo:
    """What the cover page and the verifier say about a signature."""

    format: str
    algorithm: str
    digest: str
    c14n: str
    subject: str
    issuer: str
    serial: str
    not_before: str
    not_after: str
    fingerprint_sha256: str
    signing_time: str
    demo: bool


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ReportError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def _public_der(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _is_self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _demo_ca() -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(DEMO_CA.read_bytes())
    except (OSError, ValueError):
        return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def chains_to_demo(chain: list[x509.Certificate]) -> bool:
    """True when the leaf (chain[0]) is the demo CA or leads to it through the given chain."""
    demo = _demo_ca()
    if demo is None or not chain:
        return False
    current, rest = chain[0], list(chain[1:])
    for _ in range(len(chain) + 1):
        if current == demo or _issued_by(current, demo):
            return True
        parent = next((c for c in rest if _issued_by(current, c)), None)
        if parent is None:
            return False
        rest.remove(parent)
        current = parent
    return False


def leaf_policy_problems(leaf: x509.Certificate, at: dt.datetime) -> list[str]:
    """Why this certificate may not sign a report at time `at` (empty: it may)."""
    who = f"the signing certificate {leaf.subject.rfc4514_string()}"
    problems = []
    if at < leaf.not_valid_before_utc:
        problems.append(
            f"{who} is not yet valid at the signing time {at.isoformat()} "
            f"(valid from {leaf.not_valid_before_utc.isoformat()})"
        )
    elif at > leaf.not_valid_after_utc:
        problems.append(
            f"{who} expired on {leaf.not_valid_after_utc.isoformat()}: not valid at the "
            f"signing time {at.isoformat()}"
        )
    try:
        usage: x509.KeyUsage | None = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None:
        problems.append(
            f"{who} has no KeyUsage extension (digitalSignature or nonRepudiation required)"
        )
    elif not (usage.digital_signature or usage.content_commitment):
        problems.append(
            f"{who} has a KeyUsage that allows neither digitalSignature nor nonRepudiation"
        )
    try:
        basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None  # RFC 5280: no basicConstraints is not a CA
    if basic is not None and basic.ca:
        problems.append(f"{who} is a CA certificate (basicConstraints CA:TRUE), not a signer's")
    key = leaf.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            problems.append(f"{who} has an RSA-{key.key_size} key: at least {MIN_RSA_BITS} bits")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size < MIN_EC_BITS:
            problems.append(
                f"{who} has a {key.curve.key_size}-bit EC key ({key.curve.name}): "
                f"at least {MIN_EC_BITS} bits"
            )
    else:
        problems.append(f"{who} has a {type(key).__name__}: only RSA and EC keys sign reports")
    return problems


def _load_pem_key(path: Path, passphrase: str | None) -> object:
    data = _read(path, "private key")
    password = passphrase.encode() if passphrase is not None else None
    try:
        return serialization.load_pem_private_key(data, password=password)
    except TypeError:
        if password is None:
            raise ReportError(f"the private key {path} is encrypted: give its passphrase") from None
        raise ReportError(f"the private key {path} is not encrypted: drop the passphrase") from None
    except ValueError:
        if password is not None:
            raise ReportError(
                f"cannot decrypt the private key {path}: wrong passphrase (or not a PEM key)"
            ) from None
        raise ReportError(f"{path} is not a PEM private key") from None


def _load_pem_chain(path: Path) -> list[x509.Certificate]:
    data = _read(path, "certificate")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ReportError(f"{path} holds no PEM X.509 certificate") from None
    return certs


def load_signing_material(
    *,
    key: Path | None = None,
    cert: Path | None = None,
    pkcs12: Path | None = None,
    passphrase: str | None = None,
) -> SigningMaterial:
    """The lab's key + certificate; the DEMO key and certificate when none is given."""
    if pkcs12 is not None:
        if key is not None or cert is not None:
            raise ReportError("give either a PKCS#12 file or a PEM key and certificate, not both")
        data = _read(pkcs12, "PKCS#12 file")
        password = passphrase.encode() if passphrase else None
        try:
            private, leaf, extra = p12.load_key_and_certificates(data, password)
        except ValueError:
            hint = "no passphrase given" if password is None else "wrong passphrase"
            raise ReportError(
                f"cannot open the PKCS#12 file {pkcs12}: {hint}, or the file is damaged"
            ) from None
        if private is None or leaf is None:
            raise ReportError(f"the PKCS#12 file {pkcs12} lacks a private key or certificate")
        chain, source = [leaf, *extra], str(pkcs12)
    elif key is not None or cert is not None:
        if key is None or cert is None:
            raise ReportError("a PEM signing key needs its certificate too (key= and cert=)")
        private = _load_pem_key(key, passphrase)
        chain, source = _load_pem_chain(cert), f"{key} + {cert}"
    else:
        private = _load_pem_key(DEMO_KEY, None)
        chain, source = _load_pem_chain(DEMO_CERT), f"{DEMO_KEY} + {DEMO_CERT} (DEMO)"

    if not isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ReportError(
            f"the signing key ({source}) is a {type(private).__name__}: XAdES signing here "
            "supports RSA and ECDSA keys only"
        )
    leaf = chain[0]
    mine = _public_der(private.public_key())
    if mine != _public_der(leaf.public_key()):
        matching = [c for c in chain if _public_der(c.public_key()) == mine]
        if not matching:
            raise ReportError(
                f"the private key does not match the certificate "
                f"{leaf.subject.rfc4514_string()} ({source})"
            )
        leaf = matching[0]
    problems = leaf_policy_problems(leaf, dt.datetime.now(dt.UTC))
    if problems:
        raise ReportError(f"refused ({source}): " + "; ".join(problems))
    rest = [c for c in chain if c is not leaf and not _is_self_signed(c)]
    full = [leaf, *rest]
    return SigningMaterial(key=private, chain=full, demo=chains_to_demo(full), source=source)


def signing_now() -> dt.datetime:
    """The signing time written into report.xml (whole seconds, UTC)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class _TimedXAdESSigner(XAdESSigner):
    """signxml's XAdES signer with the signing time given by the caller: the HTML and PDF,
    rendered before the XML is signed, state the same time as xades:SigningTime."""

    def __init__(self, signing_time: dt.datetime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._signing_time = signing_time

    def add_signing_time(self, signed_signature_properties, sig_root, signing_settings):  # type: ignore[no-untyped-def]
        element = etree.SubElement(
            signed_signature_properties, f"{{{XADES_NS}}}SigningTime", nsmap=self.namespaces
        )
        element.text = self._signing_time.isoformat(timespec="seconds")


def sign_document(
    doc: etree._Element, material: SigningMaterial, signing_time: dt.datetime
) -> etree._Element:
    """Append an enveloped XAdES-BES ds:Signature to doc and return the signed root."""
    method = (
        SignatureMethod.RSA_SHA256
        if isinstance(material.key, rsa.RSAPrivateKey)
        else SignatureMethod.ECDSA_SHA256
    )
    signer = _TimedXAdESSigner(
        signing_time,
        signature_algorithm=method,
        digest_algorithm="sha256",
        data_object_format=XAdESDataObjectFormat(
            Description="Resident health card conformance report (rhc-conformance)",
            MimeType="text/xml",
        ),
    )
    try:
        # No ds:KeyValue next to the certificate: xmlsec1 would trust a bare KeyValue and skip
        # the chain check against --trusted-pem (measured: an impostor CA's report verified).
        return signer.sign(doc, key=material.key, cert=material.chain, always_add_key_value=False)
    except SignXMLException as exc:
        raise ReportError(f"signing failed: {exc}") from None


def _find(root: etree._Element, path: str) -> etree._Element | None:
    return root.find(path, {"ds": DS_NS, "xades": XADES_NS})


def signing_certificate(root: etree._Element) -> list[x509.Certificate]:
    """The X509Data certificates of the report's signature (leaf first); ValueError if none."""
    texts = [
        el.text or ""
        for el in root.iterfind(
            "ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate", {"ds": DS_NS}
        )
    ]
    if not texts:
        raise ValueError("the signature carries no ds:X509Certificate")
    certs = []
    for body in texts:
        pem = (
            "-----BEGIN CERTIFICATE-----\n"
            + "".join(body.split())
            + "\n-----END CERTIFICATE-----\n"
        )
        certs.append(x509.load_pem_x509_certificate(pem.encode()))
    return certs


def signature_info(material: SigningMaterial, signing_time: dt.datetime) -> SignatureInfo:
    """What the cover page says about the signature (known before signing: HTML and PDF are
    rendered first, so that report.xml can bind their digests)."""
    leaf = material.chain[0]
    ecdsa = isinstance(material.key, ec.EllipticCurvePrivateKey)
    return SignatureInfo(
        format="XAdES-BES enveloped (report.xml) · PAdES (report.pdf)",
        algorithm="ecdsa-sha256" if ecdsa else "rsa-sha256",
        digest="sha256",
        c14n="C14N 1.1",
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        serial=format(leaf.serial_number, "X"),
        not_before=leaf.not_valid_before_utc.isoformat(),
        not_after=leaf.not_valid_after_utc.isoformat(),
        fingerprint_sha256=leaf.fingerprint(hashes.SHA256()).hex(),
        signing_time=signing_time.isoformat(timespec="seconds"),
        demo=material.demo,
    )


def signing_time_of(root: etree._Element) -> dt.datetime | None:
    """xades:SigningTime of a signed report (None when absent or not a date-time)."""
    when = _find(root, "ds:Signature/ds:Object/xades:QualifyingProperties//xades:SigningTime")
    try:
        parsed = dt.datetime.fromisoformat((when.text or "").strip()) if when is not None else None
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def name_part(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    return ", ".join(str(a.value) for a in cert.subject.get_attributes_for_oid(oid))
