"""The card model: the profile loads, codecs keep their vectors, bad data is named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.model import (
    DEFAULT_PERSONALIZATION,
    DEFAULT_TEST_KEYS,
    FIXTURES_DIR,
    Coding,
    CodingError,
    ProfileError,
    Structure,
    codecs,
    load_key_set,
    load_personalization,
    load_profile,
)
from conformance.model.profile import DEFAULT_PROFILE


@pytest.fixture(scope="module")
def profile():
    return load_profile()


@pytest.mark.parametrize(("coding", "length", "value", "encoded"), codecs.TEST_VECTORS)
def test_codec_vectors(coding: Coding, length: int, value: str, encoded: str) -> None:
    assert codecs.encode(coding, value, length).hex().upper() == encoded
    assert codecs.decode(coding, bytes.fromhex(encoded)) == value.upper()


@pytest.mark.parametrize(("coding", "raw"), codecs.INVALID_ENCODINGS)
def test_codec_rejects_invalid_bytes(coding: Coding, raw: str) -> None:
    with pytest.raises(CodingError):
        codecs.decode(coding, bytes.fromhex(raw))


@given(st.text(alphabet=st.characters(codec="gbk", exclude_characters="\x00"), max_size=15))
def test_an_round_trip(text: str) -> None:
    raw = codecs.encode_an(text, 30)
    assert len(raw) == 30
    assert codecs.decode_an(raw) == text


@given(st.text(alphabet="0123456789", max_size=22))
def test_cn_round_trip(digits: str) -> None:
    raw = codecs.encode_cn(digits, 11)
    assert codecs.decode_cn(raw) == digits


@pytest.mark.parametrize(
    ("coding", "value", "length"),
    [(Coding.AN, "王" * 16, 30), (Coding.CN, "123", 1), (Coding.CN, "12a", 4), (Coding.B, "zz", 1)],
)
def test_codec_rejects_bad_values(coding: Coding, value: str, length: int) -> None:
    with pytest.raises(CodingError):
        codecs.encode(coding, value, length)


def test_profile_tree(profile) -> None:
    assert len(profile.files) == 22
    assert profile.select_path("DF02/EF07") == ["DDF1", "DF02", "EF07"]
    assert profile.record_count("DDF1/EF05") == 10
    assert profile.file("DF02/EF08").records == 10
    assert profile.file_size("DF03/EE02") == 1893
    assert profile.file_size("DF03/ED05") == 3267
    assert profile.file("DDF1/EF07").structure is Structure.TRANSPARENT


def test_every_item_has_exactly_one_home(profile) -> None:
    for number in range(1, 64):
        assert len(profile.places[number]) == 1, number
    assert profile.place(57).record == 10
    assert len(profile.places[64]) == 3  # EE01..EE03
    assert len(profile.places[213]) == 5  # ED01..ED05


def test_atr_layout(profile) -> None:
    atr = profile.atr(bytes.fromhex("4101000012345678"))
    assert atr.hex().upper() == "3B6D0000" + "4101000012345678" + "48432017" + "01"
    assert profile.card_number_factor(atr) == bytes.fromhex("4101000012345678")


def test_status_words(profile) -> None:
    assert profile.sw("file_not_found") == 0x6A82
    assert profile.sw_prefix("wrong_le") == "6C"
    with pytest.raises(KeyError):
        profile.sw("wrong_le")


def _bad_profile(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_PROFILE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  retry_limit: 15", "  retry_limt: 15", "security.retry_limt"),
        ("read: RK_DF01,", "read: RK_DF09,", "unknown key family RK_DF09"),
        ("items: [21, 22, 23, 24]", "items: [21, 22, 23, 99]", "item 99 is not defined"),
        ("size: 1893", "size: 1900", "ends at 1893, not 1900"),
        ("coding: AN, length: 1,", "coding: XX, length: 1,", "items.1.coding"),
        ("  t0: 0x6D", "  t0: 0x6C", "historical bytes"),
        ("DDF1: {fid: DDF1, parent: MF,", "DDF1: {fid: DDF1, parent: DF01,", "cycle"),
        ("{fid: EF05, structure: tlv_records, items: [21", "{fid: EFX5, structure: tlv_records, "
         "items: [21", "String should match pattern"),
        ("  ts: 0x3B", "  ts: !!python/object 1", "atr.ts"),
        ("  city_code: 57 ", "  city_code: 58 ", "item 58 is not a TLV record item"),
        ("  chip_serial: 10 ", "  chip_serial: 99 ", "item 99 is not defined"),
        ("secret: {data: true}}", "secret: {}}", "a secret names data, response or both"),
        ("keep_tail: 1, keep_tail_if_length: 17", "keep_tail: 1", "keep_tail needs"),
        ("  get_response:         {zh: 取响应, en: \"GET RESPONSE\", cla: 0x00, ins: 0xC0}\n", "",
         "missing get_response"),
    ],
)
def test_malformed_profile_names_file_key_and_line(tmp_path, old, new, expected) -> None:
    path = _bad_profile(tmp_path, old, new)
    with pytest.raises(ProfileError) as exc:
        load_profile(path)
    message = str(exc.value)
    assert str(path) in message and expected in message
    assert f"{path}:" in message and ": key " in message


def test_duplicate_key_is_named(tmp_path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("profile: 1\nprofile: 2\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"dup\.yaml:2: duplicate key 'profile'"):
        load_profile(path)


def test_invalid_yaml_is_named(tmp_path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("files: [unclosed\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(path)


@pytest.mark.parametrize("name", ["default", "long-name", "max-length"])
def test_fixture_personalizations_load(profile, name) -> None:
    pers = load_personalization(FIXTURES_DIR / "personalizations" / f"{name}.yaml", profile)
    assert len(pers.card_number_factor) == 8
    assert pers.items[8] == pers.items[15]


def test_long_name_fills_item_11(profile) -> None:
    pers = load_personalization(FIXTURES_DIR / "personalizations" / "long-name.yaml", profile)
    assert len(pers.items[11]) == 15
    assert len(profile.encode_item(11, pers.items[11]).rstrip(b"\0")) == 30


def test_personalization_value_too_long(tmp_path, profile) -> None:
    text = DEFAULT_PERSONALIZATION.read_text(encoding="utf-8")
    path = tmp_path / "p.yaml"
    path.write_text(text.replace('11: "王测试"', '11: "' + "王" * 16 + '"'), encoding="utf-8")
    with pytest.raises(ProfileError) as exc:
        load_personalization(path, profile)
    assert "items.11" in str(exc.value) and "longer than 30" in str(exc.value)


def test_personalization_unknown_item(tmp_path, profile) -> None:
    path = tmp_path / "p.yaml"
    path.write_text('card_number_factor: "0102030405060708"\nitems:\n  70: "x"\n', "utf-8")
    with pytest.raises(ProfileError, match=r"items\.70"):
        load_personalization(path, profile)


def test_key_set(profile, tmp_path) -> None:
    keys = load_key_set(DEFAULT_TEST_KEYS, profile)
    assert set(keys.master_keys) == set(profile.keys)
    text = DEFAULT_TEST_KEYS.read_text(encoding="utf-8").replace("UK_DF03_2: 1", "UK_DF03_2: 2")
    bad = tmp_path / "keys.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match=r"levels\.UK_DF03_2"):
        load_key_set(bad, profile)


def test_b_values_are_zero_padded() -> None:
    assert codecs.encode_b("00", 4) == bytes(4)
    assert codecs.encode_b("AB", 3) == b"\xab\0\0"


def test_wire_facts_by_meaning(profile) -> None:
    assert profile.sw_text("security_not_satisfied") == "6982"
    assert profile.sw_text("wrong_le") == "6Cxx" and profile.sw_text("wrong_le:08") == "6C08"
    assert profile.sw_text("wrong_cryptogram:E") == "63CE"
    assert profile.command_text("update_record_sm") == "04 DC"
    assert profile.role_item("city_code") == 57 and profile.role_item("chip_serial") == 10
    with pytest.raises(KeyError, match="no status word 'nonsense'"):
        profile.sw_text("nonsense")
    with pytest.raises(KeyError, match="four hex digits"):
        profile.sw_text("ok:00")
    with pytest.raises(KeyError, match="no item role"):
        profile.role_item("birth_date")


def test_tree_queries_answer_from_the_profile(profile) -> None:
    from conformance.model import tree

    assert tree.df_names(profile) == ["MF", "DDF1", "DF01", "DF02", "DF03"]
    assert tree.files_of(profile, "DF01") == ["DF01/EF05", "DF01/EF06", "DF01/EF07", "DF01/EF08"]
    # from DF01: MF, itself, its EFs, its parent DDF1 and the parent's other children
    assert tree.reachable_fids(profile, "DF01") == {
        "3F00", "DDF1", "DF01", "DF02", "DF03", "EF05", "EF06", "EF07", "EF08"
    }
    assert "EE01" in tree.foreign_ef_fids(profile, "DF01")
    assert tree.free_read_ef(profile, "DDF1") == "DDF1/EF05"
    assert tree.index_files(profile) == ["DF03/EF05", "DF03/EF06"]
    assert tree.indexed_files(profile)[:3] == ["DF03/EE01", "DF03/EE02", "DF03/EE03"]
    assert tree.index_flags(profile, "DF03/EF05") == (b"\x00", b"\xff")
    assert tree.read_key(profile, "DF02") == "RK_DF02"
    assert tree.neighbour_df(profile, "DF01") == "DF02"
    assert ("DF03/EF05", "mark") in tree.rights_of(profile, "UK_DF03_1")
    assert tree.other_keys(profile, "DF03/EE01", "RK_DF03") == ["UK_DF03_1", "UK_DF03_2"]
