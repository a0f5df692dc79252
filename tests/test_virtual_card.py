"""The reference virtual card against REFERENCE.md, APDU by APDU.

Every expectation here is read off REFERENCE.md (§1 files, §2 ATR, §3 security state, §4
cryptography, §5 status words and check order, §6 features); the cryptograms are computed
with conformance.crypto from the test master keys, as a terminal would.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from card_terminal import Terminal, h
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import crypto
from conformance.card import VirtualCard
from conformance.model import (
    DEFAULT_PERSONALIZATION,
    DEFAULT_TEST_KEYS,
    FIXTURES_DIR,
    CardProfile,
    KeySet,
    Personalization,
    ProfileError,
    Structure,
    load_key_set,
    load_personalization,
    load_profile,
)
from conformance.model.profile import DEFAULT_PROFILE
from conformance.transport.base import ApduResponder

PERSONALIZATIONS = sorted((FIXTURES_DIR / "personalizations").glob("*.yaml"))


@pytest.fixture(scope="module")
def profile() -> CardProfile:
    return load_profile()


@pytest.fixture(scope="module")
def keys(profile: CardProfile) -> KeySet:
    return load_key_set(DEFAULT_TEST_KEYS, profile)


@pytest.fixture(scope="module")
def pers(profile: CardProfile) -> Personalization:
    return load_personalization(DEFAULT_PERSONALIZATION, profile)


@pytest.fixture
def card(profile: CardProfile, pers: Personalization, keys: KeySet) -> VirtualCard:
    return VirtualCard.personalize(profile, pers, keys)


@pytest.fixture
def term(card: VirtualCard, profile: CardProfile, keys: KeySet) -> Terminal:
    return Terminal(card, profile, keys)


def make(profile: CardProfile, pers: Personalization, keys: KeySet, **kw: frozenset[str]
         ) -> tuple[VirtualCard, Terminal]:
    card = VirtualCard.personalize(profile, pers, keys, **kw)
    return card, Terminal(card, profile, keys, get_response="t0_get_response" in
                          kw.get("features", frozenset()))


def tlv(profile: CardProfile, item: int, value: str) -> bytes:
    return profile.tlv(item, value)


# ============================================================================ ATR, protocol


def test_is_an_apdu_responder(card: VirtualCard) -> None:
    assert isinstance(card, ApduResponder)


def test_atr_follows_section_2(card: VirtualCard, pers: Personalization,
                               profile: CardProfile) -> None:
    atr = card.reset()
    assert atr == card.atr == profile.atr(pers.card_number_factor)
    assert atr == h("3B 6D 00 00") + pers.card_number_factor + h("48 43 20 17 01")
    assert atr[4:12] == pers.card_number_factor  # ATR bytes 5..12 (1-based)


@pytest.mark.parametrize("raw", ["", "00", "00A4", "00A400", "00A4000002DD", "00A4000002DDF10000",
                                 "00B2010400000005", "00B0000000000000"])
def test_malformed_apdus_answer_6700(term: Terminal, raw: str) -> None:
    assert term.sw(raw) == 0x6700


@functools.cache
def _fuzz_card() -> VirtualCard:
    profile = load_profile()
    return VirtualCard.personalize(profile, load_personalization(DEFAULT_PERSONALIZATION, profile),
                                   load_key_set(DEFAULT_TEST_KEYS, profile),
                                   features=frozenset({"pin", "t0_get_response"}))


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=0, max_size=300), st.sampled_from(["", "DDF1", "DDF1/EF05",
                                                             "DF03/EE01", "DF02/EF07"]))
def test_process_never_raises(raw: bytes, where: str) -> None:
    card = _fuzz_card()
    card.reset()
    for step in ("3F00", *([] if not where else load_profile_cached().select_path(where))):
        card.process(h("00A4000002") + h(step))
    response = card.process(raw)
    assert len(response) >= 2
    assert card.last_error is None


@functools.cache
def load_profile_cached() -> CardProfile:
    return load_profile()


# ============================================================================ every SW of §5


def _lock(term: Terminal, family: str) -> None:
    for _ in range(term.profile.spec.security.retry_limit):
        term.authenticate(family, wrong=True)


SW_CASES: list[tuple[str, int, Callable[[Terminal], int]]] = [
    ("select", 0x9000, lambda t: t.select_path("DDF1/EF05")),
    ("wrong_length", 0x6700, lambda t: t.sw("0084000004")),
    ("incompatible_file_structure", 0x6981,
     lambda t: (t.select_path("DDF1/EF05"), t.read_binary(0)[1])[1]),
    ("security_not_satisfied", 0x6982,
     lambda t: (t.select_path("DDF1/EF06"), t.read_record(1)[1])[1]),
    ("key_locked", 0x6983,
     lambda t: (t.select_path("DF03"), _lock(t, "UK_DF03_2"), t.authenticate("UK_DF03_2"))[2]),
    ("no_challenge", 0x6985,
     lambda t: (t.select_path("DDF1"), t.authenticate("RK_DDF1", challenge=b""))[1]),
    ("no_current_ef", 0x6986, lambda t: (t.select_path("DDF1"), t.read_record(1)[1])[1]),
    ("wrong_mac", 0x6988,
     lambda t: (t.select_path("DDF1/EF08"), t.authenticate("UK_DDF1"),
                t.sm_update("DDF1", 2, tlv(t.profile, 16, "1"), bad_mac=True))[2]),
    ("wrong_data", 0x6A80,
     lambda t: (t.select_path("DDF1"), t.authenticate("RK_DDF1", trailer=0x02))[1]),
    ("file_not_found", 0x6A82, lambda t: (t.select_path("DDF1"), t.select("EE01"))[1]),
    ("record_not_found", 0x6A83, lambda t: (t.select_path("DDF1/EF05"), t.read_record(11)[1])[1]),
    ("wrong_p1p2", 0x6A86, lambda t: t.sw("00A4040002DDF1")),
    ("key_not_found", 0x6A88,
     lambda t: (t.select_path("DF01"), t.sw("00820004" "11" + "00" * 16 + "01"))[1]),
    ("offset_beyond_end", 0x6B00,
     lambda t: (t.select_path("DDF1/EF07"), t.authenticate("RK_DDF1"),
                t.read_binary(3072, 1)[1])[2]),
    ("wrong_le", 0x6C03, lambda t: (t.select_path("DDF1/EF05"), t.read_record(1, 5)[1])[1]),
    ("ins_not_supported", 0x6D00, lambda t: t.sw("00FE0000")),
    ("cla_not_supported", 0x6E00, lambda t: t.sw("A0A4000002DDF1")),
    ("wrong_cryptogram", 0x63CE,
     lambda t: (t.select_path("DDF1"), t.authenticate("RK_DDF1", wrong=True))[1]),
]


@pytest.mark.parametrize(("name", "expected", "steps"), SW_CASES, ids=[c[0] for c in SW_CASES])
def test_status_word_reachable(term: Terminal, card: VirtualCard, name: str, expected: int,
                               steps: Callable[[Terminal], int]) -> None:
    assert steps(term) == expected
    assert card.last_error is None


def test_every_status_word_of_the_profile_is_covered(profile: CardProfile) -> None:
    """Each named SW of the profile has a case above (61xx: see the t0_get_response tests)."""
    covered = {c[0] for c in SW_CASES} | {"ok", "bytes_available"}
    assert set(profile.spec.status_words) <= covered
    assert profile.sw("ok") == SW_CASES[0][1]


# ============================================================================ check order


@pytest.mark.parametrize(
    ("setup", "apdu", "expected"),
    [
        ([], "A0FE0000", 0x6E00),                       # CLA before INS
        ([], "04B2010400", 0x6E00),                     # known INS, wrong class
        ([], "00B2010C05", 0x6A86),                     # P1/P2 before no current EF
        ([], "00B201040102", 0x6700),                   # data field before no current EF
        ([], "00B0800000", 0x6A86),                     # SFI bit before anything else
        (["00A4000002DDF1"], "00B2010400", 0x6986),     # no current EF before everything
        (["00A4000002DDF1", "00A4000002EF07"], "00B2010400", 0x6981),  # structure before rights
        (["00A4000002DDF1", "00A4000002EF06"], "00B20B0400", 0x6982),  # rights before range
        (["00A4000002DDF1", "00A4000002EF05"], "00B20B0405", 0x6A83),  # range before Le
        (["00A4000002DDF1", "00A4000002EF06"], "00B2010405", 0x6982),  # rights before Le
        (["00A4000002DDF1"], "04DC0104140000000000000000000000000000000000000000", 0x6986),
        (["00A4000002DDF1", "00A4000002EF07"],
         "04DC0104140000000000000000000000000000000000000000", 0x6981),
        (["00A4000002DDF1", "00A4000002EF08"],
         "04DC0204140000000000000000000000000000000000000000", 0x6982),
        (["00A4000002DDF1", "00A4000002EF06"], "00DC010403000000", 0x6982),  # plain TLV update
        (["00A4000002DDF1"], "0082000511" + "00" * 16 + "01", 0x6985),  # challenge after KID
        (["00A4000002DDF1"], "0082000510" + "00" * 16, 0x6700),
        (["00A4000002DDF1"], "0082010511" + "00" * 16 + "01", 0x6A86),
    ],
)
def test_check_order(term: Terminal, setup: list[str], apdu: str, expected: int) -> None:
    for s in setup:
        assert term.sw(s) == 0x9000
    assert term.sw(apdu) == expected


def test_sm_check_order_mac_then_range_then_data(term: Terminal, profile: CardProfile) -> None:
    term.select_path("DDF1/EF08")
    assert term.authenticate("UK_DDF1") == 0x9000
    assert term.sm_update("DDF1", 2, tlv(profile, 16, "1"), bad_mac=True) == 0x6988
    assert term.sm_update("DDF1", 99, tlv(profile, 16, "1"), bad_mac=True) == 0x6988
    assert term.sm_update("DDF1", 99, tlv(profile, 16, "1")) == 0x6A83
    assert term.sm_update("DDF1", 2, tlv(profile, 17, "1")) == 0x6A80  # tag of record 3
    assert term.sm_update("DDF1", 2, tlv(profile, 16, "1")[:-1]) == 0x6A80  # short TLV
    assert term.sm_update("DDF1", 2, tlv(profile, 16, "1")) == 0x9000


def test_sm_good_mac_over_bad_plaintext_is_6a80(term: Terminal, profile: CardProfile) -> None:
    term.select_path("DDF1/EF08")
    assert term.authenticate("UK_DDF1") == 0x9000
    r = term.challenge()
    sk = crypto.session_key(term.card_key("STK_DDF1"), r)
    for plain in (h("05") + tlv(profile, 16, "1") + h("80"),   # leading length wrong
                  bytes(16)):                                  # no 80 marker
        plain = plain.ljust(-(-len(plain) // 16) * 16, b"\x00")
        enc = crypto.sm4_ecb_encrypt(sk, plain)
        header = bytes([0x04, 0xDC, 2, 4, len(enc) + 4])
        apdu = header + enc + crypto.cbc_mac(sk, header + enc)[:4]
        assert term.sw(apdu) == 0x6A80
        r = term.challenge()
        sk = crypto.session_key(term.card_key("STK_DDF1"), r)


# ============================================================================ SELECT


def test_select_lookup_order(term: Terminal, card: VirtualCard) -> None:
    assert term.select("DDF1") == 0x9000 and card.current_df == "DDF1"
    assert term.select("DF01") == 0x9000 and card.current_df == "DF01"   # child
    assert term.select("DF02") == 0x9000 and card.current_df == "DF02"   # sibling
    assert term.select("DF02") == 0x9000 and card.current_df == "DF02"   # itself
    assert term.select("DDF1") == 0x9000 and card.current_df == "DDF1"   # parent
    assert term.select("EF05") == 0x9000 and card.current_ef == "DDF1/EF05"
    assert term.select("DF03") == 0x9000 and card.current_ef is None
    assert term.select("EF05") == 0x9000 and card.current_ef == "DF03/EF05"
    assert term.select("EE02") == 0x9000 and card.current_ef == "DF03/EE02"
    assert term.select("3F00") == 0x9000 and card.current_df == "MF"
    assert term.select("DF01") == 0x6A82                                  # not a child of MF
    assert term.select("EF05") == 0x6A82                                  # MF has no EFs
    term.select_path("DF01")
    assert term.select("EE01") == 0x6A82                                  # EF of another DF
    assert card.current_df == "DF01"


def test_select_forms(term: Terminal) -> None:
    assert term.sw("00A4000C02DDF1") == 0x9000
    assert term.send("00A4000002DDF100") == h("9000")   # with Le: still no FCI
    assert term.sw("00A4000102DDF1") == 0x6A86
    assert term.sw("00A4010002DDF1") == 0x6A86
    assert term.sw("00A4000001DD") == 0x6700
    assert term.sw("00A40000") == 0x6700


def test_failed_select_keeps_current_file(term: Terminal, card: VirtualCard) -> None:
    term.select_path("DDF1/EF05")
    assert term.select("ABCD") == 0x6A82
    assert card.current_ef == "DDF1/EF05"
    assert term.read_record(1)[1] == 0x9000


# ============================================================================ READ RECORD


def test_read_by_identifier_ddf1_ef05(term: Terminal, profile: CardProfile,
                                      pers: Personalization) -> None:
    term.select_path("DDF1/EF05")
    items = profile.file("DDF1/EF05").items
    for n, item in enumerate(items, start=1):
        by_number, sw1 = term.read_record(n)
        by_tag, sw2 = term.read_record(item, p2=0x00)
        assert sw1 == sw2 == 0x9000
        assert by_tag == by_number == tlv(profile, item, pers.items.get(item, ""))
    data, sw = term.read_record(0x39, p2=0x00)
    assert sw == 0x9000 and data == h("39 03 41 01 00")
    assert term.read_record(10)[0] == data        # tag 39 sits in record 10
    assert term.read_record(0x07, p2=0x00)[1] == 0x6A83   # item 7 lives in EF08
    assert term.read_record(0x39, le=5, p2=0x00) == (data, 0x9000)
    assert term.read_record(0x39, le=4, p2=0x00)[1] == 0x6C05


def test_read_by_identifier_in_any_tlv_file(term: Terminal, profile: CardProfile) -> None:
    term.select_path("DDF1/EF08")
    assert term.authenticate("RK_DDF1") == 0x9000
    data, sw = term.read_record(0x10, p2=0x00)
    assert sw == 0x9000 and data[:2] == h("10 14")
    term.select_path("DF02/EF07")
    assert term.authenticate("RK_DF02") == 0x9000
    assert term.read_record(0x3A, p2=0x00)[1] == 0x6981   # cyclic: no record identifiers


def test_read_record_le_handling(term: Terminal, profile: CardProfile,
                                 pers: Personalization) -> None:
    term.select_path("DDF1/EF05")
    record = tlv(profile, 3, pers.items[3])
    assert term.send("00B2030400") == record + h("9000")
    assert term.send("00B20304") == record + h("9000")               # no Le
    assert term.send(bytes([0, 0xB2, 3, 4, len(record)])) == record + h("9000")
    assert term.sw(bytes([0, 0xB2, 3, 4, len(record) - 1])) == 0x6C00 | len(record)
    assert term.sw(bytes([0, 0xB2, 3, 4, len(record) + 1])) == 0x6C00 | len(record)
    assert term.read_record(0)[1] == 0x6A83
    assert term.read_record(11)[1] == 0x6A83
    assert term.sw("00B2010300") == 0x6A86


# ============================================================================ READ / UPDATE BINARY


def test_read_binary(term: Terminal, profile: CardProfile) -> None:
    term.select_path("DDF1/EF07")
    assert term.read_binary(0)[1] == 0x6982
    assert term.authenticate("RK_DDF1") == 0x9000
    data, sw = term.read_binary(0)
    assert sw == 0x9000 and data == bytes(256)
    assert term.read_binary(3000) == (bytes(72), 0x9000)      # min(256, bytes left)
    assert term.read_binary(3000, 72) == (bytes(72), 0x9000)
    assert term.read_binary(3000, 0x80)[1] == 0x6C48
    assert term.read_binary(3071, 1) == (bytes(1), 0x9000)
    assert term.read_binary(3072, 1)[1] == 0x6B00
    assert term.sw("00B0810000") == 0x6A86


def test_update_binary_photo_and_records(term: Terminal, profile: CardProfile) -> None:
    term.select_path("DDF1/EF07")
    assert term.update_binary(0, b"\x12\x34") == 0x6982
    assert term.authenticate("UK_DDF1") == 0x9000
    assert term.update_binary(0, b"\x12\x34") == 0x9000
    assert term.update_binary(3070, b"\xAA\xBB") == 0x9000
    assert term.update_binary(3071, b"\xAA\xBB") == 0x6700    # data past the end
    assert term.update_binary(3072, b"\xAA") == 0x6B00         # offset at the end
    assert term.read_binary(0, 2)[1] == 0x6982                  # update right ≠ read right
    assert term.authenticate("RK_DDF1") == 0x9000               # rights accumulate
    assert term.read_binary(0, 2) == (h("1234"), 0x9000)
    assert term.read_binary(3070, 2) == (h("AABB"), 0x9000)
    term.select_path("DF03/ED05")
    assert term.authenticate("UK_DF03_1") == 0x9000
    assert term.authenticate("RK_DF03") == 0x9000
    payload = bytes(range(200))
    assert term.update_binary(3013, payload[:64]) == 0x9000     # signature area
    assert term.read_binary(3013, 64) == (payload[:64], 0x9000)
    assert term.update_binary(3200, payload[:67]) == 0x9000
    assert term.read_binary(3200) == (payload[:67], 0x9000)
    term.select_path("DF03/EF05")
    assert term.authenticate("UK_DF03_1") == 0x9000
    assert term.update_binary(0, b"\x00") == 0x6981


def test_initial_contents(term: Terminal, profile: CardProfile, pers: Personalization) -> None:
    # unpersonalized items are empty codings inside full TLV records
    term.select_path("DF02/EF05")
    assert term.authenticate("RK_DF02") == 0x9000
    for n, item in enumerate(profile.file("DF02/EF05").items, start=1):
        data, sw = term.read_record(n)
        assert sw == 0x9000
        assert data == tlv(profile, item, pers.items.get(item, ""))
    assert term.read_record(3)[0] == h("2B 01 00")   # B, not personalized
    assert term.read_record(15)[0] == h("37 28") + bytes(40)   # AN ''
    term.select_path("DDF1/EF08")
    assert term.authenticate("RK_DDF1") == 0x9000
    assert term.read_record(5)[0] == h("13 01 FF")   # CN ''
    term.select_path("DF02/EF07")
    assert term.authenticate("RK_DF02") == 0x9000
    for n in (1, 2, 3):
        assert term.read_record(n) == (bytes(120), 0x9000)
    term.select_path("DF02/EF08")
    assert term.authenticate("RK_DF02") == 0x9000
    assert term.read_record(10) == (bytes(20) + h("FFFFFFFF"), 0x9000)
    term.select_path("DF03/EF06")
    assert term.authenticate("RK_DF03") == 0x9000
    for n in range(1, 6):
        assert term.read_record(n) == (h("FF"), 0x9000)
    term.select_path("DF03/EE01")
    assert term.authenticate("RK_DF03") == 0x9000
    assert term.read_binary(80, 4) == (h("FFFFFFFF"), 0x9000)   # item 66, CN 4
    assert term.read_binary(0, 70) == (bytes(70), 0x9000)       # item 64, AN 70


# ============================================================================ authentication


def test_retry_counter(term: Terminal, card: VirtualCard) -> None:
    term.select_path("DDF1")
    assert term.authenticate("RK_DDF1", wrong=True) == 0x63CE
    assert term.authenticate("RK_DDF1", wrong=True) == 0x63CD
    assert term.authenticate("RK_DDF1") == 0x9000                 # restores 15
    assert term.authenticate("RK_DDF1", wrong=True) == 0x63CE
    assert term.authenticate("RK_DDF1") == 0x9000
    assert card.content.retry["RK_DDF1"] == 15


def test_lock_at_zero(term: Terminal, card: VirtualCard) -> None:
    term.select_path("DF03")
    answers = [term.authenticate("UK_DF03_2", wrong=True) for _ in range(15)]
    assert answers == [0x63C0 | x for x in range(14, -1, -1)]
    assert term.authenticate("UK_DF03_2") == 0x6983               # even a correct one
    assert term.authenticate("UK_DF03_2", wrong=True) == 0x6983
    term.reset()
    term.select_path("DF03")
    assert term.authenticate("UK_DF03_2") == 0x6983               # persistent
    assert term.authenticate("UK_DF03_1") == 0x9000               # other keys unaffected


def test_rights_rules(term: Terminal) -> None:
    term.select_path("DDF1/EF06")
    assert term.authenticate("RK_DDF1") == 0x9000
    assert term.read_record(1)[1] == 0x9000
    assert term.authenticate("RK_DDF1", wrong=True) == 0x63CE     # failed try keeps rights
    assert term.read_record(1)[1] == 0x9000
    assert term.select("EF08") == 0x9000                          # EF select keeps them
    assert term.read_record(1)[1] == 0x9000
    assert term.select("DDF1") == 0x9000                          # same DF keeps them
    assert term.select("EF06") == 0x9000
    assert term.read_record(1)[1] == 0x9000
    assert term.select("DF01") == 0x9000                          # another DF clears them
    assert term.select("DDF1") == 0x9000
    assert term.select("EF06") == 0x9000
    assert term.read_record(1)[1] == 0x6982
    assert term.authenticate("RK_DDF1") == 0x9000
    term.reset()                                                   # reset clears them
    term.select_path("DDF1/EF06")
    assert term.read_record(1)[1] == 0x6982


def test_authentication_key_references(term: Terminal) -> None:
    term.select_path("DF01")
    assert term.sw("0082000511" + "00" * 16 + "01") == 0x6A88     # UK_DDF1's KID in DF01
    term.select("3F00")
    assert term.sw("0082000411" + "00" * 16 + "01") == 0x6A88     # no keys in the MF
    term.select_path("DDF1")
    assert term.authenticate("RK_DDF1", trailer=0x00) == 0x6A80
    term.select_path("DF02")
    for family in ("RK_DF02", "UK_DF02_1", "UK_DF02_2", "UK_DF02_3"):
        assert term.authenticate(family) == 0x9000


def test_challenge_single_use(term: Terminal) -> None:
    term.select_path("DDF1")
    r = term.challenge()
    assert len(r) == 8
    assert term.select("EF05") == 0x9000               # other commands leave it
    assert term.read_record(1)[1] == 0x9000
    assert term.authenticate("RK_DDF1", challenge=r) == 0x9000
    assert term.authenticate("RK_DDF1", challenge=r) == 0x6985      # used up
    r1, r2 = term.challenge(), term.challenge()
    assert r1 != r2
    assert term.authenticate("RK_DDF1", challenge=r1) == 0x63CE     # replaced by r2
    assert term.authenticate("RK_DDF1", challenge=r2) == 0x6985     # and that try used r2
    r = term.challenge()
    term.reset()
    term.select_path("DDF1")
    assert term.authenticate("RK_DDF1", challenge=r) == 0x6985      # reset clears it
    r = term.challenge()
    assert term.authenticate("RK_DDF1", challenge=r, trailer=0x02) == 0x6A80
    assert term.authenticate("RK_DDF1", challenge=r) == 0x6985      # used whatever the outcome
    r = term.challenge()
    assert term.sw("04DC010314" + "00" * 20) == 0x6A86             # a CLA-04 command uses it
    assert term.authenticate("RK_DDF1", challenge=r) == 0x6985
    r = term.challenge()
    assert term.sw("04B0000000") == 0x6E00                          # any CLA-04 command
    assert term.authenticate("RK_DDF1", challenge=r) == 0x6985


def test_get_challenge_syntax(term: Terminal) -> None:
    assert term.sw("0084000004") == 0x6700
    assert term.sw("00840000") == 0x6700
    assert term.sw("00840000") == 0x6700
    assert term.sw("008400000100") == 0x6700
    assert term.sw("0084010008") == 0x6A86
    seen = {term.send("0084000008")[:-2] for _ in range(50)}
    assert len(seen) == 50


# ============================================================================ secure messaging


def test_sm_update_and_read_back(term: Terminal, profile: CardProfile) -> None:
    term.select_path("DDF1/EF08")
    record = tlv(profile, 16, "13912345678")
    assert term.sm_update("DDF1", 2, record) == 0x6982              # no update right
    assert term.authenticate("UK_DDF1") == 0x9000
    assert term.sm_update("DDF1", 2, record) == 0x9000
    assert term.sw(term.sm_apdu("DDF1", 2, record, challenge=b"")) == 0x6985  # no challenge
    assert term.sm_update("DDF1", 2, tlv(profile, 16, "1"), bad_mac=True) == 0x6988
    assert term.authenticate("RK_DDF1") == 0x9000
    assert term.read_record(2) == (record, 0x9000)                  # bad MAC wrote nothing
    # every TLV file in every DF takes an SM update under its own UK and STK
    for path, family in [("DF01/EF05", "UK_DF01"), ("DF02/EF05", "UK_DF02_1"),
                         ("DF02/EF06", "UK_DF02_2"), ("DDF1/EF06", "UK_DDF1")]:
        df = path.partition("/")[0]
        term.select_path(path)
        item = profile.file(path).items[0]
        value = profile.decode_item(item, profile.encode_item(item, "1" if
                                    profile.item(item).coding != "B" else "01"))
        assert term.authenticate(family) == 0x9000
        assert term.sm_update(df, 1, tlv(profile, item, value)) == 0x9000
        read_key = profile.file(path).access.read
        assert term.authenticate(read_key) == 0x9000
        assert term.read_record(1) == (tlv(profile, item, value), 0x9000)


def test_sm_wrong_mac_uses_up_the_challenge(term: Terminal, profile: CardProfile) -> None:
    term.select_path("DDF1/EF08")
    assert term.authenticate("UK_DDF1") == 0x9000
    r = term.challenge()
    bad = bytearray(term.sm_apdu("DDF1", 2, tlv(profile, 16, "1"), challenge=r))
    good = bytes(bad)
    bad[-1] ^= 1
    assert term.sw(bytes(bad)) == 0x6988
    assert term.sw(good) == 0x6985


def test_key_separation(term: Terminal, profile: CardProfile) -> None:
    term.select_path("DF02/EF05")
    assert term.authenticate("UK_DF02_2") == 0x9000
    assert term.sm_update("DF02", 1, tlv(profile, 41, "02")) == 0x6982  # EF05 needs UK_DF02_1
    term.select_path("DF02/EF06")
    record = tlv(profile, 56, "01")
    assert term.authenticate("UK_DF02_1") == 0x9000
    assert term.sm_update("DF02", 1, record) == 0x6982              # EF06 needs UK_DF02_2
    assert term.authenticate("UK_DF02_3") == 0x9000
    assert term.sm_update("DF02", 1, record) == 0x6982
    assert term.authenticate("UK_DF02_2") == 0x9000
    assert term.sm_update("DF02", 1, record) == 0x9000
    # a cryptogram under another DF's key is a wrong cryptogram
    term.select_path("DF01")
    kid = profile.key("UK_DF01").kid
    r = term.challenge()
    sk = crypto.session_key(term.card_key("UK_DDF1"), r)
    x = bytes(8)
    apdu = term.ext_auth_apdu(kid or 0, crypto.auth_cryptogram(sk, x), x)
    assert term.sw(apdu) == 0x63CE


def test_updating_item_57_keeps_the_card_keys(term: Terminal, card: VirtualCard,
                                               profile: CardProfile) -> None:
    keys_before = dict(card.content.card_keys)
    term.select_path("DDF1/EF05")
    assert term.authenticate("UK_DDF1") == 0x9000
    assert term.sm_update("DDF1", 10, tlv(profile, 57, "440300")) == 0x9000
    assert term.read_record(0x39, p2=0x00) == (tlv(profile, 57, "440300"), 0x9000)
    assert card.content.card_keys == keys_before
    term.select_path("DF02")
    assert term.authenticate("RK_DF02") == 0x9000   # CityCode8 of the original 410100


def test_plain_update_rules(term: Terminal, profile: CardProfile) -> None:
    term.select_path("DDF1/EF08")
    assert term.authenticate("UK_DDF1") == 0x9000
    assert term.update_record(2, tlv(profile, 16, "1")) == 0x6982   # TLV needs SM
    term.select_path("DF03/EF05")
    assert term.authenticate("UK_DF03_1") == 0x9000
    assert term.authenticate("UK_DF03_2") == 0x9000
    assert term.update_record(1, b"\x00") == 0x6982                   # index: mark/erase only
    term.select_path("DF03/EE01")
    assert term.update_record(1, b"\x00") == 0x6981


# ============================================================================ cyclic files


def test_cyclic_rotation(term: Terminal, profile: CardProfile) -> None:
    term.select_path("DF02/EF07")
    new = [profile.encode_item(58, f"过敏{i}") + profile.encode_item(59, f"反应{i}")
           for i in range(4)]
    assert term.update_record(0, new[0], p2=0x03) == 0x6982
    assert term.authenticate("UK_DF02_3") == 0x9000
    assert term.authenticate("RK_DF02") == 0x9000
    for rec in new:
        assert term.update_record(0, rec, p2=0x03) == 0x9000
    assert [term.read_record(n)[0] for n in (1, 2, 3)] == [new[3], new[2], new[1]]  # 0 dropped
    assert term.update_record(2, new[0]) == 0x9000                   # P2 = 04 rewrites one
    assert [term.read_record(n)[0] for n in (1, 2, 3)] == [new[3], new[0], new[1]]
    assert term.update_record(0, new[0][:-1], p2=0x03) == 0x6700
    assert term.update_record(1, new[0], p2=0x03) == 0x6A86
    assert term.update_record(4, new[0]) == 0x6A83
    term.select("EF05")
    assert term.authenticate("UK_DF02_1") == 0x9000
    assert term.update_record(0, bytes(3), p2=0x03) == 0x6981        # not a cyclic file


def test_cyclic_personalized_records(profile: CardProfile, keys: KeySet) -> None:
    pers = load_personalization(FIXTURES_DIR / "personalizations" / "long-name.yaml", profile)
    card = VirtualCard.personalize(profile, pers, keys)
    term = Terminal(card, profile, keys)
    term.select_path("DF02/EF08")
    assert term.authenticate("RK_DF02") == 0x9000
    first, _ = term.read_record(1)
    assert profile.decode_item(60, first[:20]) == "乙肝疫苗第三针"
    assert profile.decode_item(61, first[20:]) == "19890504"
    assert term.read_record(3) == (bytes(20) + h("FFFFFFFF"), 0x9000)


# ============================================================================ index files


def test_index_mark_erase(term: Terminal) -> None:
    term.select_path("DF03/EF05")
    assert term.mark(1) == 0x6982
    assert term.authenticate("UK_DF03_1") == 0x9000
    assert term.authenticate("RK_DF03") == 0x9000
    r = term.challenge()
    assert term.mark(1) == 0x9000                 # 84 D2 01 04 00
    assert term.mark(3, le=False) == 0x9000       # 84 D2 03 04
    assert term.read_record(1) == (h("00"), 0x9000)
    assert term.read_record(2) == (h("FF"), 0x9000)
    assert term.read_record(3) == (h("00"), 0x9000)
    assert term.mark(1, erase=True) == 0x6982     # erase needs UK_DF03_2
    assert term.authenticate("RK_DF03", challenge=r) == 0x9000   # mark used no challenge
    assert term.authenticate("UK_DF03_2") == 0x9000
    assert term.mark(1, erase=True) == 0x9000
    assert term.read_record(1) == (h("FF"), 0x9000)
    assert term.mark(4) == 0x6A83
    assert term.mark(0) == 0x6A83
    assert term.sw("84D2010301") == 0x6A86
    assert term.sw("84D201040100") == 0x6700      # a data field
    assert term.sw("84D2010401") == 0x6700        # Le other than 00
    term.select("EF06")
    assert term.mark(5) == 0x9000
    assert term.read_record(5) == (h("00"), 0x9000)
    term.select("EE01")
    assert term.mark(1) == 0x6981


# ============================================================================ T=0 GET RESPONSE


def test_t0_get_response(profile: CardProfile, pers: Personalization, keys: KeySet) -> None:
    card = VirtualCard.personalize(profile, pers, keys, features=frozenset({"t0_get_response"}))
    card.reset()
    assert card.process(h("00A4000002DDF1")) == h("9000")
    assert card.process(h("00A4000002EF05")) == h("9000")
    record = profile.tlv(3, pers.items[3])
    assert card.process(h("00B2030400")) == bytes([0x61, len(record)])
    assert card.process(h("00C0000005")) == bytes([0x6C, len(record)])   # Le mismatch
    assert card.process(bytes([0, 0xC0, 0, 0, len(record)])) == record + h("9000")
    assert card.process(bytes([0, 0xC0, 0, 0, len(record)])) == h("6985")  # nothing pending
    assert card.process(h("00B2030400")) == bytes([0x61, len(record)])
    assert card.process(h("00A4000002EF05")) == h("9000")                 # drops the data
    assert card.process(bytes([0, 0xC0, 0, 0, len(record)])) == h("6985")
    assert card.process(h("00B2030405")) == bytes([0x6C, len(record)])    # 6Cxx as usual
    assert card.process(h("0084000008")) == h("6108")
    challenge = card.process(h("00C0000000"))
    assert len(challenge) == 10 and challenge[-2:] == h("9000")
    assert card.process(h("00C0010008")) == h("6A86")


def test_t0_terminal_authenticates(profile: CardProfile, pers: Personalization,
                                   keys: KeySet) -> None:
    _, term = make(profile, pers, keys, features=frozenset({"t0_get_response"}))
    term.select_path("DDF1/EF06")
    assert term.authenticate("RK_DDF1") == 0x9000
    assert term.read_record(1) == (profile.tlv(11, pers.items[11]), 0x9000)


def test_get_response_without_the_feature(term: Terminal) -> None:
    assert term.sw("00C0000008") == 0x6985


# ============================================================================ PIN (feature pin)


def test_pin(profile: CardProfile, pers: Personalization, keys: KeySet) -> None:
    card, term = make(profile, pers, keys, features=frozenset({"pin"}))
    pin = pers.pin or ""
    assert term.sw("0020000003" + pin) == 0x9000
    assert term.sw("0020000003999999") == 0x63C2
    assert term.sw("0020000003" + pin) == 0x9000                   # restores 3
    assert term.sw("0020000003999999") == 0x63C2
    assert term.sw("0020000002" + pin[:4]) == 0x6700
    assert term.sw("0020000103" + pin) == 0x6A86
    assert term.sw("805E010007" + "999999" + "FF" + "111111") == 0x63C1  # wrong old PIN
    assert term.sw("805E010007" + pin + "EE" + "111111") == 0x6A80
    assert term.sw("805E010007" + pin + "FF" + "111111") == 0x9000
    assert term.sw("0020000003" + pin) == 0x63C2
    assert term.sw("0020000003111111") == 0x9000
    assert term.sw("805E020007" + "111111FF" + pin) == 0x6A86
    assert term.sw("805E010006" + "111111FF2222") == 0x6700
    for left in (2, 1, 0):
        assert term.sw("0020000003999999") == 0x63C0 | left
    assert term.sw("0020000003111111") == 0x6983                   # blocked
    assert term.sw("805E010007" + "111111FF" + pin) == 0x6983
    assert card.content.pin_tries == 0


def test_pin_commands_need_the_feature(term: Terminal, pers: Personalization) -> None:
    assert term.sw("0020000003" + (pers.pin or "")) == 0x6D00
    assert term.sw("805E010007" + (pers.pin or "") + "FF111111") == 0x6D00


def test_pin_feature_needs_a_pin(profile: CardProfile, pers: Personalization,
                                 keys: KeySet) -> None:
    no_pin = Personalization(pers.card_number_factor, pers.items, None, pers.cyclic)
    with pytest.raises(ValueError, match="PIN"):
        VirtualCard.personalize(profile, no_pin, keys, features=frozenset({"pin"}))


def test_unknown_feature_is_rejected(profile: CardProfile, pers: Personalization,
                                     keys: KeySet) -> None:
    with pytest.raises(ValueError, match="t0_get_response"):
        VirtualCard.personalize(profile, pers, keys, features=frozenset({"telepathy"}))


# ============================================================================ images


def _exercise(term: Terminal, profile: CardProfile) -> None:
    term.select_path("DDF1/EF08")
    assert term.authenticate("UK_DDF1") == 0x9000
    assert term.sm_update("DDF1", 2, tlv(profile, 16, "13999999999")) == 0x9000
    term.select_path("DF03/EE02")
    assert term.authenticate("UK_DF03_1") == 0x9000
    assert term.update_binary(100, b"\x01\x02\x03") == 0x9000
    assert term.authenticate("RK_DF03", wrong=True) == 0x63CE


def test_image_round_trip(tmp_path: Path, card: VirtualCard, term: Terminal,
                          profile: CardProfile, keys: KeySet) -> None:
    _exercise(term, profile)
    path = tmp_path / "card.json"
    card.save_image(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["profile"] == {"name": profile.spec.profile.name, "sha256": profile.sha256}
    assert doc["retry_counters"]["RK_DF03"] == 14
    assert doc["pin"] == "123456" and doc["pin_tries"] == 3
    assert set(doc["card_keys"]) == set(profile.keys)
    loaded = VirtualCard.from_image(path, profile)
    assert loaded.image() == card.image()
    assert loaded.atr == card.atr
    t2 = Terminal(loaded, profile, keys)
    t2.select_path("DF03/EE02")
    assert t2.authenticate("RK_DF03", wrong=True) == 0x63CD           # counter kept
    assert t2.authenticate("RK_DF03") == 0x9000
    assert t2.read_binary(100, 3) == (b"\x01\x02\x03", 0x9000)
    t2.select_path("DDF1/EF08")
    assert t2.authenticate("RK_DDF1") == 0x9000
    assert t2.read_record(2) == (tlv(profile, 16, "13999999999"), 0x9000)


def _saved(tmp_path: Path, card: VirtualCard) -> tuple[Path, dict]:
    path = tmp_path / "card.json"
    card.save_image(path)
    return path, json.loads(path.read_text(encoding="utf-8"))


def _card_of(profile_path: Path) -> VirtualCard:
    other = load_profile(profile_path)
    return VirtualCard.personalize(other, load_personalization(DEFAULT_PERSONALIZATION, other),
                                   load_key_set(DEFAULT_TEST_KEYS, other))


def test_image_of_another_profile_is_rejected(tmp_path: Path, profile: CardProfile) -> None:
    text = DEFAULT_PROFILE.read_text(encoding="utf-8")
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text(text.replace("name: wst543-reference", "name: wst543-other"),
                       encoding="utf-8")
    path, _ = _saved(tmp_path, _card_of(renamed))
    with pytest.raises(ValueError, match="belongs to profile 'wst543-other'"):
        VirtualCard.from_image(path, profile)


def test_image_of_another_profile_version_is_rejected(tmp_path: Path,
                                                      profile: CardProfile) -> None:
    text = DEFAULT_PROFILE.read_text(encoding="utf-8")
    edited = tmp_path / "edited.yaml"
    edited.write_text(text.replace("retry_limit: 15", "retry_limit: 14"), encoding="utf-8")
    path, _ = _saved(tmp_path, _card_of(edited))
    with pytest.raises(ValueError, match="another version"):
        VirtualCard.from_image(path, profile)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["files"].pop("DF03/EE02"), "file tree mismatch"),
        (lambda d: d["files"]["DF02/EF08"]["records"].pop(), "list of 10"),
        (lambda d: d["files"]["DDF1/EF07"].update(data="00" * 3000), "3072 bytes"),
        (lambda d: d["files"]["DDF1/EF05"]["records"].__setitem__(0, "zz"), "not hexadecimal"),
        (lambda d: d["files"]["DF03/EF06"].update(structure="transparent"), "structure"),
        (lambda d: d["retry_counters"].update(RK_DDF1=16), "0..15"),
        (lambda d: d.pop("card_keys"), "card_keys"),
        (lambda d: d.update(format="something else"), "format"),
        (lambda d: d.update(pin="12ab56"), "pin"),
    ],
)
def test_malformed_image_is_rejected(tmp_path: Path, card: VirtualCard, profile: CardProfile,
                                     edit: Callable[[dict], object], message: str) -> None:
    path, doc = _saved(tmp_path, card)
    edit(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        VirtualCard.from_image(path, profile)


def test_image_not_json(tmp_path: Path, profile: CardProfile) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="not a readable JSON"):
        VirtualCard.from_image(path, profile)
    with pytest.raises(ValueError, match="not found"):
        VirtualCard.from_image(tmp_path / "missing.json", profile)


def test_image_of_a_faulty_file_tree(tmp_path: Path, pers: Personalization, keys: KeySet,
                                     profile: CardProfile) -> None:
    faulty = VirtualCard.personalize(profile, pers, keys, faults=frozenset({"fs_ee02_missing"}))
    path, _ = _saved(tmp_path, faulty)
    with pytest.raises(ValueError, match="file tree mismatch"):
        VirtualCard.from_image(path, profile)
    again = VirtualCard.from_image(path, profile, faults=frozenset({"fs_ee02_missing"}))
    assert again.image() == faulty.image()


# ============================================================================ personalizations


def _read_all_items(term: Terminal, profile: CardProfile) -> dict[int, bytes]:
    """Every TLV record of the card, read over APDUs with the read keys, by item number."""
    out: dict[int, bytes] = {}
    for path, ef in profile.files.items():
        if ef.structure is not Structure.TLV_RECORDS:
            continue
        assert term.select_path(path) == 0x9000
        if ef.access.read != "free":
            assert term.authenticate(ef.access.read) == 0x9000
        for n, item in enumerate(ef.items, start=1):
            data, sw = term.read_record(n)
            assert sw == 0x9000
            out[item] = data
    return out


@pytest.mark.parametrize("path", PERSONALIZATIONS, ids=[p.stem for p in PERSONALIZATIONS])
def test_personalizations_decode_back(path: Path, profile: CardProfile, keys: KeySet) -> None:
    pers = load_personalization(path, profile)
    card = VirtualCard.personalize(profile, pers, keys)
    term = Terminal(card, profile, keys)
    assert term.card_no == pers.card_number_factor
    records = _read_all_items(term, profile)
    assert set(records) == set(profile.tlv_items())
    for item, raw in records.items():
        spec = profile.item(item)
        assert raw[0] == item and raw[1] == spec.length and len(raw) == spec.length + 2
        expected = profile.canonical(item, pers.items.get(item, ""))
        assert profile.decode_item(item, raw[2:]) == expected, f"item {item}"
    for cyc_path, recs in pers.cyclic.items():
        term.select_path(cyc_path)
        assert term.authenticate(profile.file(cyc_path).access.read) == 0x9000
        layout = profile.layout(profile.file(cyc_path).layout or "")
        for n, values in enumerate(recs, start=1):
            data, sw = term.read_record(n)
            assert sw == 0x9000
            for f in layout:
                got = profile.decode_item(f.item or 0, data[f.offset : f.offset + f.length])
                assert got == profile.canonical(f.item or 0, values.get(f.item or 0, ""))


def test_bad_personalization_is_a_profile_error(tmp_path: Path, profile: CardProfile) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('card_number_factor: "4101000012345678"\nitems: {11: "' + "王" * 16 + '"}\n',
                   encoding="utf-8")
    with pytest.raises(ProfileError):
        load_personalization(bad, profile)


# ============================================================================ speed
