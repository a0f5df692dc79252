"""SM4/SM3/SM2 primitives and the card-profile cryptography of REFERENCE.md §4.

SM4 and SM3 come from ``cryptography`` (OpenSSL), SM2 from ``gmssl``. Everything above the
primitives — ISO/IEC 9797-1 padding, the CBC-MAC, key diversification, the EXTERNAL
AUTHENTICATE cryptogram and the secure-messaging wrap of ``04 DC`` — is written here once so the
virtual card and the terminal side compute byte-identical values from the same code.

This module knows no transport and no card model: it takes and returns bytes.
"""

from __future__ import annotations

import hmac
import secrets

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl.sm2 import CryptSM2, default_ecc_table

__all__ = [
    "BLOCK",
    "DEFAULT_USER_ID",
    "MacError",
    "PlaintextError",
    "SecureMessagingError",
    "auth_cryptogram",
    "card_key",
    "cbc_mac",
    "city_code_factor",
    "des3_auth_cryptogram",
    "des3_ecb_encrypt",
    "des3_mac",
    "diversify",
    "emv_option_a",
    "pad_m2",
    "session_key",
    "sm2_keypair_from_private",
    "sm2_sign",
    "sm2_verify",
    "sm2_z",
    "sm3",
    "sm4_cbc_decrypt",
    "sm4_cbc_encrypt",
    "sm4_ecb_decrypt",
    "sm4_ecb_encrypt",
    "sm_unwrap_update",
    "sm_wrap_update",
    "unpad_m2",
]

BLOCK = 16
"""SM4 block size in bytes; also the padding block of the MAC and of secure messaging."""

DEFAULT_USER_ID = b"1234567812345678"
"""The default SM2 signer ID of GM/T 0009 (used when the profile names none)."""

MAC_LEN = 4
"""Secure messaging appends the first 4 bytes of the CBC-MAC (REFERENCE.md §4)."""


# --------------------------------------------------------------------------- SM4 / SM3


def _check_blocks(data: bytes) -> None:
    if len(data) % BLOCK:
        raise ValueError(f"SM4 data must be a multiple of {BLOCK} bytes, got {len(data)}")


def _sm4(key: bytes, mode: modes.Mode) -> Cipher:
    if len(key) != BLOCK:
        raise ValueError(f"an SM4 key is {BLOCK} bytes, got {len(key)}")
    return Cipher(algorithms.SM4(bytes(key)), mode)


def sm4_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """SM4-ECB encryption without padding (the card pads explicitly, see :func:`pad_m2`)."""
    _check_blocks(data)
    enc = _sm4(key, modes.ECB()).encryptor()
    return enc.update(bytes(data)) + enc.finalize()


def sm4_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    """SM4-ECB decryption without unpadding."""
    _check_blocks(data)
    dec = _sm4(key, modes.ECB()).decryptor()
    return dec.update(bytes(data)) + dec.finalize()


def _check_iv(iv: bytes) -> bytes:
    if len(iv) != BLOCK:
        raise ValueError(f"an SM4 IV is {BLOCK} bytes, got {len(iv)}")
    return bytes(iv)


def sm4_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(BLOCK)) -> bytes:
    """SM4-CBC encryption without padding; the IV defaults to zero, as the card profile uses."""
    _check_blocks(data)
    enc = _sm4(key, modes.CBC(_check_iv(iv))).encryptor()
    return enc.update(bytes(data)) + enc.finalize()


def sm4_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(BLOCK)) -> bytes:
    """SM4-CBC decryption without unpadding."""
    _check_blocks(data)
    dec = _sm4(key, modes.CBC(_check_iv(iv))).decryptor()
    return dec.update(bytes(data)) + dec.finalize()


def sm3(data: bytes) -> bytes:
    """SM3 digest (32 bytes)."""
    h = hashes.Hash(hashes.SM3())
    h.update(bytes(data))
    return h.finalize()


# --------------------------------------------------------------------------- SM2
#
# gmssl's CryptSM2 is used for the curve arithmetic and the sign/verify equations only:
# - its sign_with_sm3/verify_with_sm3 hard-code the ID 1234567812345678 in Z_A, so Z_A and
#   e = SM3(Z_A ‖ M) are computed here (sm2_z), which also allows another user ID;
# - its random k comes from the non-cryptographic `random` module, so k is drawn here with
#   `secrets`;
# - its constructor strips a "04" prefix with str.lstrip, which eats leading 0/4 digits of x,
#   so the public key is assigned after construction;
# - its verify does not range-check r and s and can raise on degenerate points, so that is
#   done here.

_N = int(default_ecc_table["n"], 16)
_P = int(default_ecc_table["p"], 16)
_A = int(default_ecc_table["a"], 16)
_B = int(default_ecc_table["b"], 16)
_G_HEX = default_ecc_table["g"]


def _curve(private_hex: str = "00" * 32, public_hex: str = "") -> CryptSM2:
    c = CryptSM2(private_key=private_hex, public_key="")
    c.public_key = public_hex
    return c


def _check_private(private_key: bytes) -> int:
    if len(private_key) != 32:
        raise ValueError(f"an SM2 private key is 32 bytes, got {len(private_key)}")
    d = int.from_bytes(private_key, "big")
    if not 1 <= d <= _N - 2:
        raise ValueError("SM2 private key out of range [1, n-2]")
    return d


def _on_curve(public_key: bytes) -> bool:
    if len(public_key) != 64:
        return False
    x = int.from_bytes(public_key[:32], "big")
    y = int.from_bytes(public_key[32:], "big")
    if x >= _P or y >= _P:
        return False
    return (y * y - (x * x * x + _A * x + _B)) % _P == 0


def sm2_keypair_from_private(private_key: bytes) -> bytes:
    """The public key d·G of a 32-byte private key, as 64 bytes x ‖ y (no 04 prefix)."""
    d = _check_private(private_key)
    return bytes.fromhex(_curve()._kg(d, _G_HEX))


def sm2_z(public_key: bytes, user_id: bytes = DEFAULT_USER_ID) -> bytes:
    """Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A) of GB/T 32918.2 §5.5."""
    if len(public_key) != 64:
        raise ValueError(f"an SM2 public key is 64 bytes x ‖ y, got {len(public_key)}")
    bits = len(user_id) * 8
    if bits > 0xFFFF:
        raise ValueError("SM2 user ID too long")
    curve = bytes.fromhex(default_ecc_table["a"] + default_ecc_table["b"] + _G_HEX)
    return sm3(bits.to_bytes(2, "big") + bytes(user_id) + curve + bytes(public_key))


def _digest_e(public_key: bytes, message: bytes, user_id: bytes) -> bytes:
    return sm3(sm2_z(public_key, user_id) + bytes(message))


def _sign_digest(private_key: bytes, e: bytes, k: int) -> bytes | None:
    """One signing attempt with nonce k over the 32-byte e; None when k must be redrawn."""
    d = _check_private(private_key)
    sig = _curve(f"{d:064x}").sign(e, f"{k:064x}")
    return bytes.fromhex(sig) if sig else None


def sm2_sign(private_key: bytes, message: bytes, user_id: bytes = DEFAULT_USER_ID) -> bytes:
    """SM2 signature over SM3(Z_A ‖ M) (SM3withSM2), as raw 64 bytes r ‖ s.

    Z_A is computed with ``user_id`` (default 1234567812345678) and the signer's public key,
    so a verifier needs the same ID; the record signatures of REFERENCE.md §4 use the default.
    """
    public = sm2_keypair_from_private(private_key)
    e = _digest_e(public, message, user_id)
    while True:
        k = secrets.randbelow(_N - 1) + 1
        sig = _sign_digest(private_key, e, k)
        if sig is not None:
            return sig


def sm2_verify(
    public_key: bytes, message: bytes, signature: bytes, user_id: bytes = DEFAULT_USER_ID
) -> bool:
    """Check a raw r ‖ s SM2 signature over SM3(Z_A ‖ M); False for anything malformed."""
    if len(signature) != 64 or not _on_curve(public_key):
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (1 <= r < _N and 1 <= s < _N) or (r + s) % _N == 0:
        return False
    e = _digest_e(public_key, message, user_id)
    try:
        return bool(_curve(public_hex=public_key.hex()).verify(signature.hex(), e))
    except (TypeError, ValueError):  # gmssl on a point at infinity
        return False


# --------------------------------------------------------------------------- padding, MAC


def pad_m2(data: bytes, block: int = BLOCK) -> bytes:
    """ISO/IEC 9797-1 padding method 2: append 80, then 00 up to a multiple of ``block``.

    A pad byte is always added, even on a block boundary, as the card evidence shows.
    """
    data = bytes(data)
    return data + b"\x80" + bytes(-(len(data) + 1) % block)


def unpad_m2(data: bytes, block: int = BLOCK) -> bytes:
    """Strip method-2 padding; ValueError unless it is exactly what :func:`pad_m2` makes."""
    data = bytes(data)
    if not data or len(data) % block:
        raise ValueError(f"padded data must be a non-empty multiple of {block} bytes")
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        raise ValueError("method-2 padding: no 80 marker")
    if len(data) - len(stripped) >= block:
        raise ValueError("method-2 padding longer than one block")
    return stripped[:-1]


def cbc_mac(key: bytes, data: bytes) -> bytes:
    """SM4 CBC-MAC with IV 0 over ``pad_m2(data)``: the 16-byte last cipher block."""
    return sm4_cbc_encrypt(key, pad_m2(data))[-BLOCK:]


# --------------------------------------------------------------------------- key hierarchy


def _check_len(name: str, value: bytes, n: int) -> bytes:
    if len(value) != n:
        raise ValueError(f"{name} must be {n} bytes, got {len(value)}")
    return bytes(value)


def diversify(key: bytes, factor8: bytes) -> bytes:
    """div(K, d8) = SM4-ECB_K(d8 ‖ ¬d8): one level of the card's key diversification."""
    d = _check_len("diversification factor", factor8, 8)
    return sm4_ecb_encrypt(key, d + bytes(b ^ 0xFF for b in d))


def city_code_factor(city_code_bcd: bytes) -> bytes:
    """CityCode8: the first 2 bytes of item 57 (BCD) followed by six ASCII "0" (30)."""
    if len(city_code_bcd) < 2:
        raise ValueError("the city code (item 57) needs at least 2 bytes")
    return bytes(city_code_bcd[:2]) + b"0" * 6


def card_key(master_key: bytes, level: int, card_no8: bytes, city8: bytes) -> bytes:
    """The card's key of one family: level 1 div(MK, CardNo8), level 2 then also by CityCode8."""
    if level == 1:
        return diversify(master_key, card_no8)
    if level == 2:
        return diversify(diversify(master_key, card_no8), city8)
    raise ValueError(f"key diversification level must be 1 or 2, got {level!r}")


def session_key(card_key: bytes, challenge: bytes) -> bytes:
    """SK = div(Kc, R) for the 8-byte challenge R the card issued last."""
    return diversify(card_key, challenge)


def auth_cryptogram(session_key: bytes, x8: bytes) -> bytes:
    """C' of EXTERNAL AUTHENTICATE: C = SM4-ECB_SK(X ‖ 00×8), C' = C[0:8] ⊕ C[8:16]."""
    x = _check_len("X", x8, 8)
    c = sm4_ecb_encrypt(session_key, x + bytes(8))
    return bytes(a ^ b for a, b in zip(c[:8], c[8:], strict=True))


# --------------------------------------------------------------------------- secure messaging


class SecureMessagingError(ValueError):
    """A secure-messaging body the card must refuse."""


class MacError(SecureMessagingError):
    """The MAC does not match (the card answers 6988)."""


class PlaintextError(SecureMessagingError):
    """The MAC is good but the decrypted plaintext is badly padded or sized (6A80)."""


SM_P2 = 0x04  # UPDATE RECORD P2: P1 is the record number (ISO/IEC 7816-4)
MAX_SM_TLV = 238
"""Longest TLV that fits a short APDU: 16·floor((238+1)/16) + 16 + 4 = 244 ≤ 255."""


def _sm_mac(session_key: bytes, header5: bytes, enc: bytes) -> bytes:
    return cbc_mac(session_key, header5 + enc)[:MAC_LEN]


def sm_wrap_update(
    session_key: bytes, p1: int, tlv: bytes, *, command: tuple[int, int]
) -> bytes:
    """The whole ``CLA INS p1 04 Lc E ‖ MAC4`` APDU that writes TLV to record p1 under SM;
    ``command`` is the profile's (CLA, INS) of update_record_sm (04 DC in the reference).

    P = len(TLV) ‖ TLV padded by :func:`pad_m2`; E = SM4-ECB_SK(P); Lc = len(E) + 4;
    MAC = first 4 bytes of :func:`cbc_mac` under SK over ``CLA INS p1 04 Lc ‖ E``.
    """
    if not 0 <= p1 <= 0xFF:
        raise ValueError(f"P1 must be one byte, got {p1!r}")
    tlv = bytes(tlv)
    if len(tlv) > MAX_SM_TLV:
        raise ValueError(f"a TLV of {len(tlv)} bytes does not fit a short SM APDU")
    enc = sm4_ecb_encrypt(session_key, pad_m2(bytes([len(tlv)]) + tlv))
    cla, ins = command
    header = bytes([cla, ins, p1, SM_P2, len(enc) + MAC_LEN])
    return header + enc + _sm_mac(session_key, header, enc)


def sm_unwrap_update(session_key: bytes, apdu_header: bytes, body: bytes) -> bytes:
    """Card side of :func:`sm_wrap_update`: check the MAC, decrypt, return the TLV.

    ``apdu_header`` is CLA INS P1 P2 Lc as received (all five bytes are under the MAC);
    ``body`` is E ‖ MAC4. The MAC is checked first (:class:`MacError`), so nothing about the
    plaintext leaks to a sender without the key; then padding, block size and the leading
    length byte are checked (:class:`PlaintextError`).
    """
    header = bytes(apdu_header)
    body = bytes(body)
    if len(header) != 5:
        raise ValueError(f"the APDU header is CLA INS P1 P2 Lc (5 bytes), got {len(header)}")
    if header[4] != len(body):
        raise SecureMessagingError(f"Lc = {header[4]} but the body has {len(body)} bytes")
    if len(body) < MAC_LEN:
        raise MacError("no room for a 4-byte MAC")
    enc, mac = body[:-MAC_LEN], body[-MAC_LEN:]
    if not hmac.compare_digest(_sm_mac(session_key, header, enc), mac):
        raise MacError("wrong MAC")
    if not enc or len(enc) % BLOCK:
        raise PlaintextError(f"ciphertext of {len(enc)} bytes is not whole SM4 blocks")
    try:
        plain = unpad_m2(sm4_ecb_decrypt(session_key, enc))
    except ValueError as exc:
        raise PlaintextError(str(exc)) from exc
    if not plain or plain[0] != len(plain) - 1:
        raise PlaintextError("the leading length byte does not match the TLV that follows")
    return plain[1:]


# --------------------------------------------------------------------------- 3DES (co-branded)
# The other application of a co-branded card (profiles/applications/) keeps 3DES keys of its
# own: two-key (16-byte) keys, expanded to K1 ‖ K2 ‖ K1 for ``cryptography``.

DES_BLOCK = 8


def _des3(key16: bytes) -> Cipher:
    key = _check_len("3DES key", key16, 16)
    return Cipher(TripleDES(key + key[:8]), modes.ECB())


def des3_ecb_encrypt(key16: bytes, data: bytes) -> bytes:
    """Two-key 3DES in ECB mode over whole 8-byte blocks."""
    if len(data) % DES_BLOCK:
        raise ValueError(f"3DES data must be a multiple of {DES_BLOCK} bytes, got {len(data)}")
    enc = _des3(key16).encryptor()
    return enc.update(bytes(data)) + enc.finalize()


def emv_option_a(master_key: bytes, pan: str, psn: str = "00") -> bytes:
    """The ICC key of EMV 4.3 Book 2 A1.4.1 option A: Y = the rightmost 16 digits of
    PAN ‖ PSN; Kc = 3DES_MK(Y) ‖ 3DES_MK(Y ⊕ FF…)."""
    digits = (pan + psn)[-16:].rjust(16, "0")
    y = bytes.fromhex(digits)
    return des3_ecb_encrypt(master_key, y + bytes(b ^ 0xFF for b in y))


def des3_auth_cryptogram(card_key: bytes, challenge: bytes) -> bytes:
    """The other application's EXTERNAL AUTHENTICATE cryptogram: 3DES-ECB_Kc(R)."""
    return des3_ecb_encrypt(card_key, _check_len("challenge", challenge, DES_BLOCK))


def des3_mac(card_key: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 (the retail MAC) with method-2 padding: single DES
    with K1 over the blocks, the last block through 3DES (full 8 bytes)."""
    key = _check_len("3DES key", card_key, 16)
    padded = pad_m2(bytes(data), DES_BLOCK)
    single = Cipher(TripleDES(key[:8] * 3), modes.CBC(bytes(DES_BLOCK))).encryptor()
    chained = single.update(padded[:-DES_BLOCK]) + single.finalize()
    last = chained[-DES_BLOCK:] if chained else bytes(DES_BLOCK)
    block = bytes(a ^ b for a, b in zip(last, padded[-DES_BLOCK:], strict=True))
    return des3_ecb_encrypt(key, block)
