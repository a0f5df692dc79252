"""Tests for conformance.crypto: published SM4/SM3/SM2 vectors and the §4 card-profile crypto."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl.sm2 import CryptSM2
from hypothesis import given
from hypothesis import strategies as st

from conformance.apdu import CommandAPDU
from conformance.crypto import (
    BLOCK,
    DEFAULT_USER_ID,
    MAX_SM_TLV,
    MacError,
    PlaintextError,
    SecureMessagingError,
    _sign_digest,
    auth_cryptogram,
    card_key,
    cbc_mac,
    city_code_factor,
    diversify,
    pad_m2,
    session_key,
    sm2_keypair_from_private,
    sm2_sign,
    sm2_verify,
    sm2_z,
    sm3,
    sm4_cbc_decrypt,
    sm4_cbc_encrypt,
    sm4_ecb_decrypt,
    sm4_ecb_encrypt,
    sm_unwrap_update,
    sm_wrap_update,
    unpad_m2,
)

SM = (0x04, 0xDC)  # update_record_sm of the reference profile
H = bytes.fromhex

# ------------------------------------------------------------ SM4 (GB/T 32907 A.1, A.2)

SM4_KEY = H("0123456789ABCDEFFEDCBA9876543210")


def test_sm4_published_vector() -> None:
    assert sm4_ecb_encrypt(SM4_KEY, SM4_KEY) == H("681EDF34D206965E86B3E94F536E4246")
    assert sm4_ecb_decrypt(SM4_KEY, H("681EDF34D206965E86B3E94F536E4246")) == SM4_KEY


def test_sm4_million_iterations() -> None:
    """GB/T 32907 example 2. One encryptor context is reused: about 1 s instead of minutes.

    The first iteration goes through sm4_ecb_encrypt so the vector also pins our wrapper.
    """
    block = sm4_ecb_encrypt(SM4_KEY, SM4_KEY)
    update = Cipher(algorithms.SM4(SM4_KEY), modes.ECB()).encryptor().update
    for _ in range(999_999):
        block = update(block)
    assert block == H("595298C7C6FD271F0402F804C33D3F66")


def test_sm4_cbc_matches_ecb_chaining() -> None:
    iv = bytes(range(16))
    data = bytes(range(48))
    expected = b""
    prev = iv
    for i in range(0, len(data), BLOCK):
        prev = sm4_ecb_encrypt(
            SM4_KEY, bytes(a ^ b for a, b in zip(data[i : i + 16], prev, strict=True))
        )
        expected += prev
    assert sm4_cbc_encrypt(SM4_KEY, data, iv) == expected
    assert sm4_cbc_decrypt(SM4_KEY, expected, iv) == data
    assert sm4_cbc_encrypt(SM4_KEY, data) == sm4_cbc_encrypt(SM4_KEY, data, bytes(16))


@pytest.mark.parametrize("fn", [sm4_ecb_encrypt, sm4_ecb_decrypt, sm4_cbc_encrypt, sm4_cbc_decrypt])
def test_sm4_rejects_partial_blocks_and_bad_keys(fn) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        fn(SM4_KEY, bytes(15))
    with pytest.raises(ValueError):
        fn(bytes(8), bytes(16))
    assert fn(SM4_KEY, b"") == b""


def test_sm4_cbc_rejects_bad_iv() -> None:
    with pytest.raises(ValueError):
        sm4_cbc_encrypt(SM4_KEY, bytes(16), bytes(8))


# ------------------------------------------------------------ SM3 (GB/T 32905 A.1, A.2)


def test_sm3_published_vectors() -> None:
    assert sm3(b"abc") == H("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
    assert sm3(b"abcd" * 16) == H(
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    )


# ------------------------------------------------ SM2 (GM/T 0003.5 / GB/T 32918.2 annex A)

SM2_D = H("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
SM2_PUB = H(
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
SM2_ZA = H("B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3")
SM2_E = H("F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640")
SM2_K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
SM2_SIG = H(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)
SM2_MSG = b"message digest"


def test_sm2_published_vector() -> None:
    """Z_A, e = SM3(Z_A ‖ M) and (r, s) for k fixed, all with the default ID 1234567812345678."""
    assert sm2_keypair_from_private(SM2_D) == SM2_PUB
    assert sm2_z(SM2_PUB) == SM2_ZA
    assert sm3(SM2_ZA + SM2_MSG) == SM2_E
    assert _sign_digest(SM2_D, SM2_E, SM2_K) == SM2_SIG
    assert sm2_verify(SM2_PUB, SM2_MSG, SM2_SIG)
    assert sm2_verify(SM2_PUB, SM2_MSG, SM2_SIG, user_id=b"1234567812345678")
    assert not sm2_verify(SM2_PUB, SM2_MSG, SM2_SIG, user_id=b"ALICE123@YAHOO.COM")


def test_our_z_equals_gmssl_default_id() -> None:
    """gmssl hard-codes the default ID in its Z_A; ours must agree with it for that ID."""
    c = CryptSM2(private_key=SM2_D.hex(), public_key="")
    c.public_key = SM2_PUB.hex()
    assert bytes.fromhex(c._sm3_z(SM2_MSG)) == sm3(sm2_z(SM2_PUB, DEFAULT_USER_ID) + SM2_MSG)
    sig = sm2_sign(SM2_D, b"hello")
    assert c.verify_with_sm3(sig.hex(), b"hello")


def test_sm2_round_trip_and_tamper() -> None:
    d = bytes(range(1, 33))
    pub = sm2_keypair_from_private(d)
    msg = b"EE01 record bytes" * 10
    sig = sm2_sign(d, msg)
    assert len(sig) == 64
    assert sm2_verify(pub, msg, sig)
    assert sm2_sign(d, msg) != sig  # fresh k each time
    assert not sm2_verify(pub, msg + b"\x00", sig)
    assert not sm2_verify(pub, b"X" + msg[1:], sig)
    bad = bytearray(sig)
    bad[63] ^= 1
    assert not sm2_verify(pub, msg, bytes(bad))
    assert not sm2_verify(SM2_PUB, msg, sig)  # someone else's key


def test_sm2_other_user_id() -> None:
    sig = sm2_sign(SM2_D, SM2_MSG, user_id=b"ALICE123@YAHOO.COM")
    assert sm2_verify(SM2_PUB, SM2_MSG, sig, user_id=b"ALICE123@YAHOO.COM")
    assert not sm2_verify(SM2_PUB, SM2_MSG, sig)


@pytest.mark.parametrize(
    ("pub", "sig"),
    [
        (SM2_PUB, SM2_SIG[:63]),  # short signature
        (SM2_PUB, bytes(64)),  # r = s = 0
        (SM2_PUB, b"\xff" * 64),  # r, s ≥ n
        (SM2_PUB[:63], SM2_SIG),  # short key
        (SM2_PUB[:32] + bytes(32), SM2_SIG),  # point not on the curve
        (bytes(64), SM2_SIG),
    ],
)
def test_sm2_verify_malformed_is_false(pub: bytes, sig: bytes) -> None:
    assert sm2_verify(pub, SM2_MSG, sig) is False


@pytest.mark.parametrize("d", [b"", bytes(32), b"\xff" * 32, bytes(31) + b"\x01" + b"\x00"])
def test_sm2_bad_private_key(d: bytes) -> None:
    with pytest.raises(ValueError):
        sm2_keypair_from_private(d)


# --------------------------------------------------------------------------- padding, MAC


@given(st.binary(max_size=200), st.sampled_from([8, 16]))
def test_property_pad_unpad(data: bytes, block: int) -> None:
    padded = pad_m2(data, block)
    assert len(padded) % block == 0
    assert len(data) < len(padded) <= len(data) + block
    assert padded[len(data)] == 0x80
    assert not any(padded[len(data) + 1 :])
    assert unpad_m2(padded, block) == data


@given(st.binary(max_size=64))
def test_property_unpad_accepts_only_what_pad_makes(raw: bytes) -> None:
    try:
        data = unpad_m2(raw)
    except ValueError:
        return
    assert pad_m2(data) == raw


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        bytes(16),  # no marker
        b"\x01" * 15,  # not a whole block
        b"\x01" * 15 + b"\x81",  # last non-zero byte is not 80
        b"\x80" + bytes(31),  # 31 bytes of padding: more than one block
    ],
)
def test_unpad_rejects(raw: bytes) -> None:
    with pytest.raises(ValueError):
        unpad_m2(raw)


def test_pad_examples() -> None:
    assert pad_m2(b"") == b"\x80" + bytes(15)
    assert pad_m2(bytes(16)) == bytes(16) + b"\x80" + bytes(15)  # always at least one byte
    assert pad_m2(bytes(15)) == bytes(15) + b"\x80"


def test_cbc_mac_definition() -> None:
    data = bytes(range(20))
    assert cbc_mac(SM4_KEY, data) == sm4_cbc_encrypt(SM4_KEY, pad_m2(data))[-16:]
    assert len(cbc_mac(SM4_KEY, b"")) == 16
    # One block of data means two blocks of MAC input: the pad block is always there.
    one = bytes(16)
    assert cbc_mac(SM4_KEY, one) != sm4_ecb_encrypt(SM4_KEY, one)


# --------------------------------------------------------------------------- key hierarchy (§4)

MK = H("00112233445566778899AABBCCDDEEFF")
CARD_NO8 = H("1122334455667788")
CITY8 = city_code_factor(H("4101FFFF"))


def test_diversify_definition() -> None:
    d8 = H("0102030405060708")
    assert diversify(MK, d8) == sm4_ecb_encrypt(MK, d8 + H("FEFDFCFBFAF9F8F7"))
    with pytest.raises(ValueError):
        diversify(MK, bytes(7))


def test_city_code_factor() -> None:
    assert city_code_factor(H("4101FFFF")) == H("4101303030303030")
    assert city_code_factor(H("4101")) == CITY8
    with pytest.raises(ValueError):
        city_code_factor(b"\x41")


def test_card_key_levels() -> None:
    level1 = card_key(MK, 1, CARD_NO8, CITY8)
    assert level1 == diversify(MK, CARD_NO8)
    assert card_key(MK, 2, CARD_NO8, CITY8) == diversify(level1, CITY8)
    for level in (0, 3):
        with pytest.raises(ValueError):
            card_key(MK, level, CARD_NO8, CITY8)


def test_session_key_and_cryptogram() -> None:
    kc = card_key(MK, 2, CARD_NO8, CITY8)
    r = H("A1A2A3A4A5A6A7A8")
    sk = session_key(kc, r)
    assert sk == diversify(kc, r)
    x = H("0011223344556677")
    c = sm4_ecb_encrypt(sk, x + bytes(8))
    cp = auth_cryptogram(sk, x)
    assert cp == bytes(a ^ b for a, b in zip(c[:8], c[8:], strict=True))
    assert len(cp) == 8
    with pytest.raises(ValueError):
        auth_cryptogram(sk, x[:7])


# --------------------------------------------------------------------------- secure messaging (§4)

SK = session_key(card_key(MK, 1, CARD_NO8, CITY8), H("0102030405060708"))


def _split(apdu: bytes) -> tuple[bytes, bytes]:
    return apdu[:5], apdu[5:]


@pytest.mark.parametrize("n", range(MAX_SM_TLV + 1))
def test_sm_wrap_unwrap_round_trip(n: int) -> None:
    tlv = bytes((i * 7 + 1) & 0xFF for i in range(n))  # every length, 0 included
    apdu = sm_wrap_update(SK, 0x02, tlv, command=SM)
    header, body = _split(apdu)
    assert header[:4] == H("04DC0204")
    lc = 16 * ((n + 1) // 16) + 16 + 4  # the Lc rule of the evidence (§4.4)
    assert header[4] == lc == len(body)
    assert sm_unwrap_update(SK, header, body) == tlv
    parsed = CommandAPDU.parse(apdu)
    assert (parsed.cla, parsed.ins, parsed.p1, parsed.p2, parsed.case) == (4, 0xDC, 2, 4, 3)


@pytest.mark.parametrize(
    ("n", "lc"),
    [
        (3, 0x14),
        (14, 0x14),
        (15, 0x24),
        (20, 0x24),
        (22, 0x24),
        (32, 0x34),
        (102, 0x74),
        (182, 0xC4),
    ],
)
def test_sm_lc_examples_from_evidence(n: int, lc: int) -> None:
    assert sm_wrap_update(SK, 1, bytes(n), command=SM)[4] == lc


def test_sm_wrap_structure() -> None:
    tlv = H("0A14") + b"A" * 20
    apdu = sm_wrap_update(SK, 0x03, tlv, command=SM)
    header, body = _split(apdu)
    enc, mac = body[:-4], body[-4:]
    assert sm4_ecb_decrypt(SK, enc) == pad_m2(bytes([len(tlv)]) + tlv)
    assert mac == cbc_mac(SK, header + enc)[:4]


def test_sm_wrap_limits() -> None:
    assert len(sm_wrap_update(SK, 1, bytes(MAX_SM_TLV), command=SM)) <= 5 + 255
    with pytest.raises(ValueError):
        sm_wrap_update(SK, 1, bytes(MAX_SM_TLV + 1), command=SM)
    with pytest.raises(ValueError):
        sm_wrap_update(SK, 256, b"", command=SM)


def test_sm_wrong_mac() -> None:
    header, body = _split(sm_wrap_update(SK, 0x02, H("0B03414243"), command=SM))
    bad = body[:-1] + bytes([body[-1] ^ 1])
    with pytest.raises(MacError):
        sm_unwrap_update(SK, header, bad)
    # The header is under the MAC too: another record number fails.
    with pytest.raises(MacError):
        sm_unwrap_update(SK, H("04DC0304") + header[4:], body)
    # So does a ciphertext bit flip, and another session key.
    with pytest.raises(MacError):
        sm_unwrap_update(SK, header, bytes([body[0] ^ 0x80]) + body[1:])
    with pytest.raises(MacError):
        sm_unwrap_update(diversify(SK, bytes(8)), header, body)
    with pytest.raises(MacError):
        sm_unwrap_update(SK, H("04DC020403"), body[-3:])  # no room for a MAC


def _forge(plain_padded: bytes, p1: int = 2) -> tuple[bytes, bytes]:
    """A body with a good MAC over an arbitrary (possibly malformed) plaintext."""
    enc = sm4_ecb_encrypt(SK, plain_padded) if len(plain_padded) % 16 == 0 else plain_padded
    header = bytes([0x04, 0xDC, p1, 0x04, len(enc) + 4])
    return header, enc + cbc_mac(SK, header + enc)[:4]


@pytest.mark.parametrize(
    "plain",
    [
        bytes(16),  # no 80 marker
        b"\x03ABC" + bytes(12),  # marker missing after the TLV
        b"\x05ABC\x80" + bytes(11),  # length byte says 5, 3 bytes follow
        b"\x01ABC\x80" + bytes(11),  # length byte says 1, 3 bytes follow
        b"\x80" + bytes(15),  # empty: not even a length byte
        b"\x02AB\x80" + bytes(28),  # padding longer than a block
        b"\x02AB\x80" + bytes(11),  # 15 bytes: not whole blocks (sent unencrypted)
    ],
)
def test_sm_good_mac_bad_plaintext(plain: bytes) -> None:
    header, body = _forge(plain)
    with pytest.raises(PlaintextError):
        sm_unwrap_update(SK, header, body)


def test_sm_forge_helper_accepts_good_plaintext() -> None:
    header, body = _forge(pad_m2(b"\x03\x0b\x01\x41"))
    assert sm_unwrap_update(SK, header, body) == b"\x0b\x01\x41"


def test_sm_header_checks() -> None:
    header, body = _split(sm_wrap_update(SK, 0x02, H("0B03414243"), command=SM))
    with pytest.raises(SecureMessagingError):
        sm_unwrap_update(SK, header[:4] + bytes([header[4] + 1]), body)
    with pytest.raises(ValueError):
        sm_unwrap_update(SK, header[:4], body)


def test_error_hierarchy() -> None:
    assert issubclass(MacError, SecureMessagingError)
    assert issubclass(PlaintextError, SecureMessagingError)
    assert issubclass(SecureMessagingError, ValueError)
