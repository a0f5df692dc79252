#!/usr/bin/env python3
"""Generate the DEMO test-center PKI under fixtures/pki/ (DEMO ONLY — never for certification).

The repository ships a demo CA and a demo lab certificate so that the demo run and the suite's
own tests can sign and verify reports without a real lab key. Everything written here is public
and therefore worthless as a trust anchor; every subject name says DEMO ONLY.

Outputs (committed):
  demo-ca.pem            the demo test-center CA certificate (trust anchor for --trust)
  demo-ca-key.pem        its private key (unencrypted: it is public anyway; lets tests and labs
                         issue more demo certificates)
  demo-lab.pem           the demo lab's report-signing certificate, issued by the demo CA
  demo-lab-key.pem       the demo lab's private key (PEM, unencrypted)
  demo-lab.p12           the same key + certificate (+ CA) as PKCS#12, passphrase "demo-only"

Run: .venv/bin/python scripts/make-demo-pki.py [--out fixtures/pki]
Rerunning replaces the keys (new fingerprints): commit the outputs together.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

P12_PASSPHRASE = b"demo-only"
NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2045, 1, 1, tzinfo=dt.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DEMO ONLY - rhc-conformance"),
            x509.NameAttribute(
                NameOID.ORGANIZATIONAL_UNIT_NAME, "DEMO ONLY - not for certification"
            ),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(common_name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A self-signed CA shaped as cryptography's (and signxml's) webpki CA policy expects."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = _name(common_name)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_signer(
    common_name: str, ca_key: rsa.RSAPrivateKey, ca_cert: x509.Certificate
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A report-signing (digitalSignature + nonRepudiation) end-entity certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).resolve().parent.parent / "conformance" / "fixtures" / "pki"
    parser.add_argument("--out", type=Path, default=default_out)
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    ca_key, ca_cert = make_ca("DEMO ONLY rhc-conformance Test Center CA")
    lab_key, lab_cert = make_signer("DEMO ONLY Resident Health Card Test Lab", ca_key, ca_cert)

    pem = serialization.Encoding.PEM
    (out / "demo-ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (out / "demo-ca-key.pem").write_bytes(_key_pem(ca_key))
    (out / "demo-lab.pem").write_bytes(lab_cert.public_bytes(pem))
    (out / "demo-lab-key.pem").write_bytes(_key_pem(lab_key))
    p12 = pkcs12.serialize_key_and_certificates(
        name=b"demo-lab",
        key=lab_key,
        cert=lab_cert,
        cas=[ca_cert],
        encryption_algorithm=serialization.BestAvailableEncryption(P12_PASSPHRASE),
    )
    (out / "demo-lab.p12").write_bytes(p12)
    fingerprint = lab_cert.fingerprint(hashes.SHA256()).hex()
    print(f"wrote demo PKI to {out} (lab certificate SHA-256 {fingerprint})")


if __name__ == "__main__":
    main()
