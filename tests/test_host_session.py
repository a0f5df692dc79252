"""The host session against the reference virtual card, in process.

These tests may build the virtual card (the suite's own tests are allowed to); the host package
itself must not import it, which the last tests check.
"""

from __future__ import annotations

import ast
import dataclasses
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance import crypto
from conformance.apdu import ApduError, CommandAPDU
from conformance.host import HealthCardSession, HostError, KeyProvider, TestKeyProvider
from conformance.model import (
    DEFAULT_PERSONALIZATION,
    DEFAULT_TEST_KEYS,
    CardProfile,
    KeySet,
    Personalization,
    Structure,
    load_key_set,
    load_personalization,
    load_profile,
)
from conformance.transport.base import BenchError
from conformance.transport.inprocess import InProcessTransport

HOST_DIR = Path(__file__).resolve().parents[1] / "conformance" / "host"
SIGNER_PRIVATE = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def profile() -> CardProfile:
    return load_profile()


@pytest.fixture(scope="module")
def personalization(profile: CardProfile) -> Personalization:
    return load_personalization(DEFAULT_PERSONALIZATION, profile)


@pytest.fixture(scope="module")
def key_set(profile: CardProfile) -> KeySet:
    return load_key_set(DEFAULT_TEST_KEYS, profile)


class Recorder:
    """An ApduResponder wrapper that records every command (and can tamper with answers)."""

    def __init__(self, inner: object, tamper: Callable[[bytes, bytes], bytes] | None = None):
        self.inner = inner
        self.tamper = tamper
        self.commands: list[bytes] = []

    def reset(self) -> bytes:
        return self.inner.reset()  # type: ignore[attr-defined]

    def process(self, apdu: bytes) -> bytes:
        self.commands.append(bytes(apdu))
        response = self.inner.process(apdu)  # type: ignore[attr-defined]
        return self.tamper(apdu, response) if self.tamper else response

    def count(self, cla: int, ins: int) -> int:
        return sum(1 for c in self.commands if c[0] == cla and c[1] == ins)


@pytest.fixture
def card(profile: CardProfile, personalization: Personalization, key_set: KeySet) -> Recorder:
    from conformance.card import VirtualCard

    return Recorder(VirtualCard.personalize(profile, personalization, key_set))


@pytest.fixture
def transport(card: Recorder) -> InProcessTransport:
    return InProcessTransport(card)


@pytest.fixture
def session(
    transport: InProcessTransport, profile: CardProfile, key_set: KeySet
) -> HealthCardSession:
    return HealthCardSession(transport, profile, TestKeyProvider(key_set))


@pytest.fixture
def make_session(
    profile: CardProfile, personalization: Personalization, key_set: KeySet
) -> Callable[..., HealthCardSession]:
    """A session on a fresh card with the given ICS features and catalogue faults."""

    def make(
        features: frozenset[str] = frozenset(), faults: frozenset[str] = frozenset()
    ) -> HealthCardSession:
        from conformance.card import VirtualCard

        card = VirtualCard.personalize(
            profile, personalization, key_set, features=features, faults=faults
        )
        return HealthCardSession(InProcessTransport(card), profile, TestKeyProvider(key_set))

    return make


def wrong_keys(key_set: KeySet, family: str) -> KeySet:
    """The same key set with one master key changed (its first byte flipped)."""
    masters = dict(key_set.master_keys)
    masters[family] = bytes([masters[family][0] ^ 0xFF]) + masters[family][1:]
    return dataclasses.replace(key_set, master_keys=masters, source=None)


# ------------------------------------------------------------------------------- identity


def test_factors_come_from_the_atr_and_item_57(
    session: HealthCardSession, personalization: Personalization
) -> None:
    assert session.card_number_factor == personalization.card_number_factor
    assert session.city_code_factor == bytes.fromhex("4101") + b"000000"


def test_city_code_is_read_once_and_cleared_by_reset(
    session: HealthCardSession, card: Recorder, profile: CardProfile
) -> None:
    cla, ins = profile.command("read_record")
    assert session.city_code_factor == session.city_code_factor
    assert card.count(cla, ins) == 1
    by_tag = [c for c in card.commands if c[:2] == bytes([cla, ins])]
    assert by_tag[0][2:4] == bytes([57, 0x00])  # READ RECORD by record identifier (tag 57)
    session.reset()
    assert session.city_code_factor
    assert card.count(cla, ins) == 2


# ------------------------------------------------------------------------------- reading


def test_read_items_equals_the_default_personalization(
    session: HealthCardSession, profile: CardProfile, personalization: Personalization
) -> None:
    values = session.read_items()
    assert sorted(values) == sorted(profile.tlv_items())
    assert list(range(1, 58)) == sorted(values)
    for n, value in values.items():
        assert value == profile.canonical(n, personalization.items.get(n, "")), n
    # items left out of the personalization read back as their empty coding
    assert values[28] == ""  # AN
    assert values[43] == "00"  # B 1
    assert values[29] == ""  # CN


def test_read_items_authenticates_once_per_df(
    session: HealthCardSession, card: Recorder, profile: CardProfile
) -> None:
    session.read_items()
    auth = bytes(profile.command("external_authenticate"))
    ext_auth = [c for c in card.commands if c[:2] == auth]
    tlv_files = [ef for ef in profile.files.values() if ef.structure is Structure.TLV_RECORDS]
    families = {ef.access.read for ef in tlv_files} - {"free"}
    assert len(ext_auth) == len(families)  # one per DF that holds protected TLV items
    assert sorted(c[3] for c in ext_auth) == sorted(profile.key(f).kid for f in families)
    records = card.count(*profile.command("read_record"))
    assert records == len(profile.tlv_items()) + 1  # + the city code, read once


def test_read_item_and_read_record_by_tag(
    session: HealthCardSession, profile: CardProfile, personalization: Personalization
) -> None:
    assert session.read_item(11) == personalization.items[11]
    raw = session.read_record_by_tag("DDF1/EF05", 8)
    assert raw == profile.tlv(8, personalization.items[8])


def test_read_file_shapes(session: HealthCardSession, profile: CardProfile) -> None:
    records = session.read_file("DF01/EF06")
    assert isinstance(records, list)
    assert [len(r) for r in records] == [
        profile.record_length("DF01/EF06", n) for n in range(1, 10)
    ]
    photo = session.read_file("DDF1/EF07")
    assert photo == bytes(profile.file("DDF1/EF07").size or 0)
    assert session.read_file("DF03/EF06") == [b"\xff"] * 5


def test_free_file_needs_no_authentication(
    session: HealthCardSession, card: Recorder, profile: CardProfile
) -> None:
    session.read_record("DDF1/EF05", 1)
    assert card.count(*profile.command("external_authenticate")) == 0
    assert session.granted == frozenset()


# ------------------------------------------------------------------------------- selection


def test_select_keeps_rights_within_a_df(
    session: HealthCardSession, card: Recorder, profile: CardProfile
) -> None:
    session.read_item(21)  # DF01/EF05, RK_DF01
    assert session.current_df == "DF01"
    assert session.granted == {"RK_DF01"}
    card.commands.clear()
    session.select("DF01")
    assert card.commands == []  # already current: nothing to send
    session.read_item(34)  # DF01/EF07: no new authentication, only the EF is selected
    sel = bytes(profile.command("select"))
    assert [c[5:] for c in card.commands if c[:2] == sel] == [bytes.fromhex("EF07")]
    assert card.count(*profile.command("external_authenticate")) == 0


def test_selecting_another_df_clears_rights(session: HealthCardSession) -> None:
    session.read_item(21)
    session.select("DF02")
    assert session.current_df == "DF02"
    assert session.granted == frozenset()
    session.read_item(41)  # authenticates RK_DF02
    assert session.granted == {"RK_DF02"}


def test_forced_select_goes_from_the_top(
    session: HealthCardSession, card: Recorder, profile: CardProfile
) -> None:
    session.select("DF02/EF05")
    card.commands.clear()
    session.select("DF02/EF05", force=True)
    sel = bytes(profile.command("select"))
    fids = [c[5:].hex().upper() for c in card.commands if c[:2] == sel]
    assert fids == [*profile.select_path("DF02/EF05")]


def test_reset_clears_session_state(session: HealthCardSession) -> None:
    session.read_item(41)
    atr = session.reset()
    assert atr == session.atr
    assert session.current_df is None
    assert session.granted == frozenset()
    assert session.read_item(42) == "1"  # and the session works again from scratch


def test_raw_select_makes_the_session_forget(
    session: HealthCardSession, profile: CardProfile
) -> None:
    session.read_item(41)
    cla, ins = profile.command("select")
    response = session.transmit(CommandAPDU(cla, ins, 0, 0, bytes.fromhex("DF01")))
    assert response.sw == 0x9000
    assert session.current_df is None and session.granted == frozenset()
    assert session.read_item(42) == "1"


# ------------------------------------------------------------------------------- updates


@pytest.mark.parametrize(
    ("number", "value"),
    [
        (11, "李测试"),  # DDF1/EF06
        (16, "13912345678"),  # DDF1/EF08
        (3, "另一发卡机构"),  # DDF1/EF05 (free to read, UK_DDF1 to update)
        (22, "北京市东城区测试街2号"),  # DF01/EF05
        (36, "X"),  # DF01/EF07
        (41, "02"),  # DF02/EF05 (UK_DF02_1)
        (55, "青霉素过敏"),  # DF02/EF05
        (56, "01"),  # DF02/EF06 (UK_DF02_2)
    ],
)
def test_update_item_and_read_back(
    session: HealthCardSession, profile: CardProfile, number: int, value: str
) -> None:
    session.update_item(number, value)
    assert session.read_item(number) == profile.canonical(number, value)
    session.reset()  # it is on the card, not in a cache
    assert session.read_item(number) == profile.canonical(number, value)


def test_update_items_in_every_df(
    session: HealthCardSession, card: Recorder, profile: CardProfile
) -> None:
    values = {12: "02", 17: "010-12345678", 24: "上海市", 40: "NCMS0001", 43: "01", 56: "01"}
    session.update_items(values)
    got = session.read_items(values)
    assert got == {n: profile.canonical(n, v) for n, v in values.items()}
    sm = card.count(*profile.command("update_record_sm"))
    assert sm == len(values)


def test_update_item_uses_secure_messaging(
    session: HealthCardSession, card: Recorder, profile: CardProfile
) -> None:
    session.update_item(22, "测试")
    sm = [c for c in card.commands if c[:2] == bytes(profile.command("update_record_sm"))]
    assert len(sm) == 1
    assert sm[0][2:4] == bytes([profile.place(22).record or 0, 0x04])  # record 2, P2 = 04
    tlv = profile.tlv(22, "测试")
    assert tlv[2:6] not in sm[0]  # encrypted, not in clear
    # the update key family: X = an earlier challenge, two challenges before EXTERNAL AUTH
    ins = [bytes(c[:2]) for c in card.commands]
    i = ins.index(bytes(profile.command("external_authenticate")))
    assert ins[i - 2 : i] == [bytes(profile.command("get_challenge"))] * 2


def test_update_binary_photo_in_chunks(
    transport: InProcessTransport, card: Recorder, profile: CardProfile, key_set: KeySet
) -> None:
    session = HealthCardSession(transport, profile, TestKeyProvider(key_set), chunk_size=0x80)
    photo = bytes(range(256)) * 12  # 3072 bytes
    session.update_binary("DDF1/EF07", 0, photo)
    assert session.read_binary("DDF1/EF07") == photo
    assert session.read_binary("DDF1/EF07", 1000, 300) == photo[1000:1300]
    ub = [c for c in card.commands if c[:2] == bytes(profile.command("update_binary"))]
    assert len(ub) == 3072 // 0x80
    assert all(c[4] <= 0x80 for c in ub)


def test_cyclic_append_and_read_order(session: HealthCardSession, profile: CardProfile) -> None:
    path = "DF02/EF07"
    records = profile.file(path).records or 0
    assert records == 3
    empty = {58: "", 59: ""}
    assert session.read_cyclic(path) == [empty] * records
    entries = [{58: "花粉", 59: "皮疹"}, {58: "青霉素", 59: "休克"}, {58: "海鲜"},
               {58: "尘螨", 59: "哮喘"}]
    session.append_cyclic(path, entries[0])
    session.append_cyclic(path, entries[1])
    assert session.read_cyclic(path) == [entries[1], entries[0], empty]
    session.append_cyclic(path, entries[2])
    session.append_cyclic(path, entries[3])  # the oldest record drops out
    assert session.read_cyclic(path) == [entries[3], {58: "海鲜", 59: ""}, entries[1]]


def test_cyclic_immunisation(session: HealthCardSession) -> None:
    session.append_cyclic("DF02/EF08", {60: "乙肝疫苗", 61: "20240301"})
    newest = session.read_cyclic("DF02/EF08")[0]
    assert newest == {60: "乙肝疫苗", 61: "20240301"}


def test_index_mark_and_erase(session: HealthCardSession) -> None:
    path = "DF03/EF05"
    assert session.read_file(path) == [b"\xff"] * 3
    session.mark_index(path, 2)
    assert session.read_file(path) == [b"\xff", b"\x00", b"\xff"]
    assert session.granted >= {"UK_DF03_1", "RK_DF03"}
    session.erase_index(path, 2)
    assert session.read_file(path) == [b"\xff"] * 3
    assert "UK_DF03_2" in session.granted
    session.mark_index("DF03/EF06", 5)
    assert session.read_file("DF03/EF06")[4] == b"\x00"


@pytest.mark.parametrize("path", ["DF03/EE02", "DF03/ED04"])
def test_layout_write_and_read(
    session: HealthCardSession, card: Recorder, profile: CardProfile, path: str
) -> None:
    layout = profile.layout(profile.file(path).layout or "")
    first, second = layout[0], layout[1]
    far = next(f for f in layout[3:] if f.coding == "AN")  # not adjacent to the first two
    assert first.item and second.item and far.item
    values = {first.item: "郑州市测试医院", second.item: "ZY001", far.item: "张医生"}
    before = session.read_layout(path)
    card.commands.clear()
    session.write_layout(path, values)
    ub = [c for c in card.commands if c[:2] == bytes(profile.command("update_binary"))]
    # only the touched bytes, in two runs: the first two fields are adjacent, the third is not
    assert [((c[2] << 8) | c[3], c[4]) for c in ub] == [
        (first.offset, first.length + second.length),
        (far.offset, far.length),
    ]
    after = session.read_layout(path)
    assert after == {**before, **values}


def test_record_signature_written_and_verified(
    make_session: Callable[..., HealthCardSession], profile: CardProfile
) -> None:
    session = make_session(features=frozenset({"record_signatures"}))
    path = "DF03/EE01"
    layout = profile.layout(profile.file(path).layout or "")
    sig_field = next(f for f in layout if f.role == "signature")
    key_field = next(f for f in layout if f.role == "signer_key")
    session.write_layout(path, {64: "郑州市测试医院", 66: "20240101"})
    signed = session.read_binary(path, 0, sig_field.offset)
    signature = crypto.sm2_sign(SIGNER_PRIVATE, signed)
    public = crypto.sm2_keypair_from_private(SIGNER_PRIVATE)
    session.write_layout(path, {sig_field.item: signature.hex()})  # type: ignore[dict-item]
    session.update_binary(path, key_field.offset, public)
    got_signed, got_sig, got_key = session.record_signature(path)
    assert (got_signed, got_sig, got_key) == (signed, signature, public)
    assert session.verify_record_signature(path)
    session.write_layout(path, {66: "20240102"})  # a signed byte changes
    assert not session.verify_record_signature(path)


def test_sign_record_helper(make_session: Callable[..., HealthCardSession]) -> None:
    session = make_session(features=frozenset({"record_signatures"}))
    path = "DF03/ED02"
    session.write_layout(path, {next(iter(session.read_layout(path))): "门诊测试"})
    session.sign_record(path, SIGNER_PRIVATE)
    assert session.verify_record_signature(path)


def test_unsigned_record_does_not_verify(session: HealthCardSession) -> None:
    assert not session.verify_record_signature("DF03/EE03")


# ------------------------------------------------------------------------------- refusals


def test_wrong_read_key_gives_63cx_then_right_provider_restores(
    transport: InProcessTransport, profile: CardProfile, key_set: KeySet
) -> None:
    bad = HealthCardSession(transport, profile, TestKeyProvider(wrong_keys(key_set, "RK_DF01")))
    with pytest.raises(ApduError) as info:
        bad.read_item(22)
    limit = profile.spec.security.retry_limit
    assert info.value.sw == 0x63C0 | (limit - 1)
    assert info.value.command is not None
    assert info.value.command.ins == profile.command("external_authenticate")[1]
    assert any("RK_DF01" in note for note in getattr(info.value, "__notes__", []))
    assert "RK_DF01" not in bad.granted
    # keys of other families still work through the bad provider
    assert bad.read_item(41) == "01"
    good = HealthCardSession(transport, profile, TestKeyProvider(key_set))
    good.authenticate("RK_DF01")  # restores the retry counter
    assert good.read_item(22) == "河南省郑州市金水区测试路1号"


def test_wrong_update_key_gives_63cx(
    transport: InProcessTransport, profile: CardProfile, key_set: KeySet
) -> None:
    bad = HealthCardSession(transport, profile, TestKeyProvider(wrong_keys(key_set, "UK_DF02_1")))
    with pytest.raises(ApduError) as info:
        bad.update_item(41, "02")
    assert info.value.sw >> 4 == 0x63C
    good = HealthCardSession(transport, profile, TestKeyProvider(key_set))
    good.update_item(41, "02")
    assert good.read_item(41) == "02"


def test_wrong_sm_key_gives_wrong_mac(
    transport: InProcessTransport, profile: CardProfile, key_set: KeySet
) -> None:
    bad = HealthCardSession(transport, profile, TestKeyProvider(wrong_keys(key_set, "STK_DF01")))
    with pytest.raises(ApduError) as info:
        bad.update_item(22, "x")
    assert info.value.sw == profile.sw("wrong_mac")
    assert info.value.command is not None and info.value.command.cla == 0x04


def test_card_refusal_is_an_apdu_error_with_the_command(session: HealthCardSession) -> None:
    with pytest.raises(ApduError) as info:
        session.read_record("DF01/EF05", 99)
    assert info.value.sw == 0x6A83
    assert info.value.command is not None and info.value.command.p1 == 99


def test_wrong_tlv_tag_is_a_host_error(
    profile: CardProfile, personalization: Personalization, key_set: KeySet
) -> None:
    from conformance.card import VirtualCard

    read_record = bytes(profile.command("read_record"))

    def tamper(apdu: bytes, response: bytes) -> bytes:
        if apdu[:2] == read_record and apdu[2] == 2 and response[-2:] == b"\x90\x00":
            return bytes([response[0] ^ 0x40]) + response[1:]
        return response

    card = Recorder(VirtualCard.personalize(profile, personalization, key_set), tamper)
    session = HealthCardSession(InProcessTransport(card), profile, TestKeyProvider(key_set))
    with pytest.raises(HostError, match="tag"):
        session.read_item(12)  # DDF1/EF06 record 2


def test_faulty_tlv_length_is_a_host_error(
    make_session: Callable[..., HealthCardSession],
) -> None:
    session = make_session(faults=frozenset({"data_tlv_len_item11"}))
    with pytest.raises(HostError, match="length"):
        session.read_item(11)
    assert session.read_item(14) == "19491231"  # the rest of the card still reads


def test_faulty_tlv_tag_is_a_host_error(make_session: Callable[..., HealthCardSession]) -> None:
    session = make_session(faults=frozenset({"data_tag_ddf1_ef05_rec10"}))
    with pytest.raises(HostError, match="tag"):
        session.read_item(57)  # record 10 of DDF1/EF05, read by record number


def test_bench_error_propagates_untouched(profile: CardProfile, key_set: KeySet) -> None:
    failure = BenchError("reader gone")

    class Broken:
        atr = profile.atr(bytes(8))
        name = "broken"

        def transmit(self, apdu: bytes) -> bytes:
            raise failure

        def reset(self) -> bytes:
            raise failure

        def close(self) -> None:
            pass

    session = HealthCardSession(Broken(), profile, TestKeyProvider(key_set))
    with pytest.raises(BenchError) as info:
        session.read_item(11)
    assert info.value is failure


def test_item_outside_tlv_files_is_refused(session: HealthCardSession) -> None:
    with pytest.raises(ValueError, match="not a TLV"):
        session.read_item(58)


def test_session_over_the_t0_and_trace_layers(
    profile: CardProfile, personalization: Personalization, key_set: KeySet
) -> None:
    from conformance.card import VirtualCard
    from conformance.transport.layers import build_stack

    card = VirtualCard.personalize(
        profile, personalization, key_set, features=frozenset({"t0_get_response"})
    )
    stack = build_stack(InProcessTransport(card), profile=profile)
    session = HealthCardSession(stack, profile, TestKeyProvider(key_set))
    assert session.read_item(11) == personalization.items[11]
    session.update_item(22, "测试")
    assert session.read_item(22) == "测试"
    text = stack.to_jsonl().lower()
    assert not any(k.hex() in text for k in key_set.master_keys.values())


# ------------------------------------------------------------------------------- keys


def test_key_provider_protocol_and_secrecy(
    session: HealthCardSession,
    key_set: KeySet,
    profile: CardProfile,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = TestKeyProvider.from_file(DEFAULT_TEST_KEYS, profile)
    assert isinstance(provider, KeyProvider)
    assert provider.families == set(profile.keys)
    secrets_hex = [k.hex() for k in key_set.master_keys.values()]
    for text in (repr(provider), str(provider), repr(session)):
        assert not any(s in text.lower() for s in secrets_hex)
    with caplog.at_level(logging.DEBUG, logger="conformance"):
        session.read_items()
        session.update_item(22, "x")
    logged = caplog.text.lower()
    assert not any(s in logged for s in secrets_hex)


def test_provider_computes_what_crypto_does(
    profile: CardProfile, key_set: KeySet, personalization: Personalization
) -> None:
    provider = TestKeyProvider(key_set)
    card_no8 = personalization.card_number_factor
    city8 = crypto.city_code_factor(bytes.fromhex("410100"))
    challenge, x8 = bytes(range(8)), bytes(range(8, 16))
    kc = crypto.card_key(key_set.master_keys["RK_DF02"], 2, card_no8, city8)
    expected = crypto.auth_cryptogram(crypto.session_key(kc, challenge), x8)
    assert provider.auth_cryptogram("RK_DF02", card_no8, city8, challenge, x8) == expected
    kc1 = crypto.card_key(key_set.master_keys["STK_DDF1"], 1, card_no8, city8)
    tlv = bytes([11, 30]) + bytes(30)
    sm = profile.command("update_record_sm")
    expected_sm = crypto.sm_wrap_update(crypto.session_key(kc1, challenge), 2, tlv, command=sm)
    got = provider.sm_update_apdu("STK_DDF1", card_no8, city8, challenge, 2, tlv, command=sm)
    assert got == expected_sm


# ------------------------------------------------------------------------------- boundary


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = "conformance.host"
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against conformance.host
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.append(module)
            names += [f"{module}.{a.name}" for a in node.names]
    return names


def test_host_never_imports_card_in_source() -> None:
    files = sorted(HOST_DIR.rglob("*.py"))
    assert files
    for path in files:
        for name in _imports(path):
            assert not (name == "conformance.card" or name.startswith("conformance.card.")), (
                f"{path.name} imports {name}"
            )
        text = path.read_text(encoding="utf-8")
        assert "importlib" not in text and "__import__" not in text, path.name


def test_host_never_imports_card_at_runtime() -> None:
    code = (
        "import sys, conformance.host, conformance.host.session, conformance.host.keys\n"
        "bad = sorted(m for m in sys.modules if m == 'conformance.card' "
        "or m.startswith('conformance.card.'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
