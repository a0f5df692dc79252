"""Signing report.xml: the lab's key and certificate (PEM or PKCS#12) → enveloped XAdES-BES.

signxml's XAdESSigner with its default C14N 1.1: with exclusive C14N, signxml 5.2 cannot verify
its own XAdES signatures (measured, DESIGN.md); with C14N 1.1 both signxml and `xmlsec1 --verify`
accept them. The signature carries three references: URI="" (the whole report, enveloped
transform), the XAdES SignedProperties (signing time, signing-certificate digest) and KeyInfo.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12 as p12
from lxml import etree
from signxml import SignatureMethod
from signxml.exceptions import SignXMLException
from signxml.xades import XAdESDataObjectFormat, XAdESSigner

from conformance.report.model import ReportError
from conformance.report.xml import DS_NS, XADES_NS
from conformance.resources import DEMO_CERT, DEMO_KEY

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
C14N_ALG = "http://www.w3.org/2006/12/xml-c14n11"


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


def demo_fingerprint() -> str:
    try:
        demo = x509.load_pem_x509_certificate(DEMO_CERT.read_bytes())
    except (OSError, ValueError):
        return ""
    return demo.fingerprint(hashes.SHA256()).hex()


def is_demo_cert(cert: x509.Certificate) -> bool:
    return cert.fingerprint(hashes.SHA256()).hex() == demo_fingerprint()


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
    now = dt.datetime.now(dt.UTC)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise ReportError(
            f"the signing certificate {leaf.subject.rfc4514_string()} is not valid now "
            f"(valid {leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d})"
        )
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.digital_signature:
        raise ReportError(
            f"the certificate {leaf.subject.rfc4514_string()} does not allow digitalSignature"
        )
    rest = [c for c in chain if c is not leaf and not _is_self_signed(c)]
    return SigningMaterial(key=private, chain=[leaf, *rest], demo=is_demo_cert(leaf), source=source)


def sign_document(doc: etree._Element, material: SigningMaterial) -> etree._Element:
    """Append an enveloped XAdES-BES ds:Signature to doc and return the signed root."""
    method = (
        SignatureMethod.RSA_SHA256
        if isinstance(material.key, rsa.RSAPrivateKey)
        else SignatureMethod.ECDSA_SHA256
    )
    signer = XAdESSigner(
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


def signature_info(root: etree._Element) -> SignatureInfo:
    """Read the signature details back from a signed report (for the cover page)."""
    leaf = signing_certificate(root)[0]
    method = _find(root, "ds:Signature/ds:SignedInfo/ds:SignatureMethod")
    digest = _find(root, "ds:Signature/ds:SignedInfo/ds:Reference/ds:DigestMethod")
    c14n = _find(root, "ds:Signature/ds:SignedInfo/ds:CanonicalizationMethod")
    when = _find(root, ".//xades:SigningTime")

    def frag(el: etree._Element | None) -> str:
        alg = el.get("Algorithm", "") if el is not None else ""
        return alg.rsplit("#", 1)[-1] if "#" in alg else alg.rsplit("/", 1)[-1]

    return SignatureInfo(
        format="XAdES-BES, enveloped (ETSI EN 319 132-1)",
        algorithm=frag(method),
        digest=frag(digest),
        c14n="C14N 1.1" if c14n is not None and c14n.get("Algorithm") == C14N_ALG else frag(c14n),
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        serial=format(leaf.serial_number, "X"),
        not_before=leaf.not_valid_before_utc.isoformat(),
        not_after=leaf.not_valid_after_utc.isoformat(),
        fingerprint_sha256=leaf.fingerprint(hashes.SHA256()).hex(),
        signing_time=(when.text or "") if when is not None else "",
        demo=is_demo_cert(leaf),
    )
