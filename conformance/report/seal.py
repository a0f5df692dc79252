"""The run's trace salt, sealed so that only the lab can open it: salt.sealed.json.

Masked fields in the evidence are salted digests (transport/redact.py). Without the salt nobody
can check one; with it, whoever holds it could test guesses (a 6-digit PIN, a name) against
every digest. So the salt never leaves memory in clear: the run encrypts it to the lab's
certificate and writes only that, and `rhc report reveal` opens it with the lab's private key.

- RSA certificate: RSA-OAEP (SHA-256, MGF1-SHA-256) of the salt.
- EC certificate: ECIES — an ephemeral key on the certificate's curve, ECDH, HKDF-SHA-256
  (info names this format and the recipient's fingerprint), AES-256-GCM of the salt.

The file names the recipient by its SHA-256 certificate fingerprint, so a wrong key is named
as such rather than failing obscurely.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import pkcs12

SEALED_NAME = "salt.sealed.json"
FORMAT = "rhc-sealed-salt/1"
RSA_OAEP = "RSA-OAEP-SHA256"
ECIES = "ECDH-ES+HKDF-SHA256+A256GCM"
MASK_FUNCTION = "first 16 hex digits of SHA-256(salt || field)"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class SealError(Exception):
    """The salt cannot be sealed or opened; the message says why, in one line."""


@dataclass(frozen=True)
class Sealed:
    """What salt.sealed.json holds."""

    algorithm: str
    recipient_fingerprint: str
    recipient_subject: str
    ciphertext: bytes
    ephemeral_public: bytes = b""
    nonce: bytes = b""

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "format": FORMAT,
            "purpose": "the salt of the masked fields of this run's evidence, sealed to the lab",
            "mask": MASK_FUNCTION,
            "algorithm": self.algorithm,
            "recipient": {
                "subject": self.recipient_subject,
                "fingerprint_sha256": self.recipient_fingerprint,
            },
            "ciphertext": _b64(self.ciphertext),
        }
        if self.algorithm == ECIES:
            data["ephemeral_public"] = _b64(self.ephemeral_public)
            data["nonce"] = _b64(self.nonce)
        return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Sealed:
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise SealError(f"not a sealed salt of format {FORMAT}")
            return cls(
                algorithm=data["algorithm"],
                recipient_fingerprint=data["recipient"]["fingerprint_sha256"],
                recipient_subject=data["recipient"].get("subject", ""),
                ciphertext=base64.b64decode(data["ciphertext"], validate=True),
                ephemeral_public=base64.b64decode(data.get("ephemeral_public", "")),
                nonce=base64.b64decode(data.get("nonce", "")),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SealError(f"damaged sealed salt: {exc}") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _ecies_key(shared: bytes, recipient: str) -> bytes:
    info = f"{FORMAT} {recipient}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def seal(salt: bytes, cert: x509.Certificate) -> Sealed:
    """The salt encrypted to the certificate's public key (RSA-OAEP or ECIES)."""
    public = cert.public_key()
    recipient = fingerprint(cert)
    subject = cert.subject.rfc4514_string()
    if isinstance(public, rsa.RSAPublicKey):
        ciphertext = public.encrypt(salt, _oaep())
        return Sealed(RSA_OAEP, recipient, subject, ciphertext)
    if isinstance(public, ec.EllipticCurvePublicKey):
        ephemeral = ec.generate_private_key(public.curve)
        key = _ecies_key(ephemeral.exchange(ec.ECDH(), public), recipient)
        nonce = os.urandom(12)
        ciphertext = AESGCM(key).encrypt(nonce, salt, recipient.encode())
        ephemeral_public = ephemeral.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return Sealed(ECIES, recipient, subject, ciphertext, ephemeral_public, nonce)
    raise SealError(f"cannot seal to a {type(public).__name__} key: an RSA or EC certificate is "
                    "needed")


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def open_sealed(sealed: Sealed, key: PrivateKey) -> bytes:
    """The salt; SealError if the key is not the one it was sealed to."""
    try:
        if sealed.algorithm == RSA_OAEP and isinstance(key, rsa.RSAPrivateKey):
            return key.decrypt(sealed.ciphertext, _oaep())
        if sealed.algorithm == ECIES and isinstance(key, ec.EllipticCurvePrivateKey):
            ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(
                key.curve, sealed.ephemeral_public
            )
            shared = _ecies_key(key.exchange(ec.ECDH(), ephemeral), sealed.recipient_fingerprint)
            recipient = sealed.recipient_fingerprint.encode()
            return AESGCM(shared).decrypt(sealed.nonce, sealed.ciphertext, recipient)
    except (ValueError, InvalidTag):
        pass
    raise SealError(
        f"this key does not open the salt: it was sealed ({sealed.algorithm}) to the "
        f"certificate {sealed.recipient_subject or '?'} (SHA-256 "
        f"{sealed.recipient_fingerprint[:16]}…)"
    )


def write_sealed(run_dir: Path, salt: bytes, cert: x509.Certificate) -> Path:
    """Seal the salt to the certificate into run_dir/salt.sealed.json."""
    path = Path(run_dir) / SEALED_NAME
    path.write_text(seal(salt, cert).to_json() + "\n", encoding="utf-8")
    return path


def read_sealed(run_dir: Path) -> Sealed:
    path = Path(run_dir) / SEALED_NAME
    try:
        return Sealed.from_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SealError(f"cannot read {path}: {exc.strerror or exc}") from None


def load_certificate(path: Path | str, passphrase: str | None = None) -> x509.Certificate:
    """The lab's certificate: the first of a PEM file, or the one of a PKCS#12 file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SealError(f"cannot read the certificate {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN" in data:
        try:
            return x509.load_pem_x509_certificates(data)[0]
        except (ValueError, IndexError):
            raise SealError(f"{path} holds no PEM X.509 certificate") from None
    password = passphrase.encode() if passphrase else None
    try:
        cert = pkcs12.load_key_and_certificates(data, password)[1]
    except ValueError:
        raise SealError(f"{path} is neither a PEM certificate nor a PKCS#12 file it can open "
                        "(passphrase in RHC_SIGN_PASSPHRASE?)") from None
    if cert is None:
        raise SealError(f"the PKCS#12 file {path} holds no certificate")
    return cert


def load_private_key(path: Path | str, passphrase: str | None = None) -> PrivateKey:
    """The lab's private key from a PEM file or a PKCS#12 file (by content, not by name)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SealError(f"cannot read the key {path}: {exc.strerror or exc}") from None
    password = passphrase.encode() if passphrase else None
    key: object
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except TypeError:
            raise SealError(f"the key {path} is encrypted: give its passphrase") from None
        except ValueError:
            raise SealError(f"cannot read the PEM key {path} (wrong passphrase?)") from None
    else:
        try:
            key = pkcs12.load_key_and_certificates(data, password)[0]
        except ValueError:
            raise SealError(f"cannot open the PKCS#12 file {path}: wrong or missing passphrase, "
                            "or not a key file") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SealError(f"{path} holds no RSA or EC private key")
    return key


__all__ = [
    "SEALED_NAME",
    "SealError",
    "Sealed",
    "load_certificate",
    "load_private_key",
    "open_sealed",
    "read_sealed",
    "seal",
    "write_sealed",
]
