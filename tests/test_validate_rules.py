"""Each validation rule on its edge cases: check_card over one card at a time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from conformance.model.source import ProfileError
from conformance.validate import synthetic
from conformance.validate.check import Context, check_card
from conformance.validate.ruleset import RULES_DIR, load_rules

ON = dt.date(2025, 6, 1)


@pytest.fixture(scope="module")
def context() -> Context:
    return Context.load(validated_on=ON)


def card(**changes: str) -> dict[str, str]:
    """The default personalization's card (ID 11010519491231002X, X check character)."""
    items = synthetic.card_items(0)
    items.update({"8": "11010519491231002X", "15": "11010519491231002X",
                  "38": "11010519491231002X", "14": "19491231", "57": "410100",
                  "6": "20240101", "7": "20340101"})
    items.update({k.removeprefix("i"): v for k, v in changes.items()})
    return items


def rules(context: Context, items: object) -> list[tuple[str, int | None]]:
    return [(f.rule, f.item) for f in check_card("c", items, context)]


def test_the_default_card_is_valid(context) -> None:
    assert rules(context, card()) == []


def test_every_rule_has_a_message_in_both_languages(context) -> None:
    names = [r.name for r in context.rules.rules]
    assert names == ["ID_CHECKSUM", "ID_BIRTHDATE_MISMATCH", "CARDNO_MISMATCH", "SEX_CODE",
                     "ETHNIC_CODE", "DATE_INVALID", "DATE_ORDER", "EXPIRED", "CITY_CODE",
                     "PHONE_FORMAT", "REQUIRED_MISSING", "MALFORMED"]
    assert set(context.rules.required) >= {8, 11, 12, 14, 15, 57}
    finding = check_card("c", card(i12="7"), context)[0]
    assert "“7”" in finding.message_zh and "性别" in finding.message_zh
    assert "'7'" in finding.message_en and "sex code" in finding.message_en


def test_items_come_from_the_profile(context) -> None:
    assert context.rules.items["ID_CHECKSUM"] == (8, 15)
    assert context.rules.items["DATE_INVALID"] == (6, 7, 14, 61)
    assert context.rules.items["PHONE_FORMAT"] == (16, 17, 27, 30, 33)
    assert context.rules.items["CARDNO_MISMATCH"] == (8, 15)
    assert context.rules.items["ID_BIRTHDATE_MISMATCH"] == (15, 14)


# -- ID numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "ok"), [
    ("11010519491231002X", True),    # X check character (10)
    ("11010519491231002x", False),   # GB 11643 writes X upper case
    ("110105194912310021", False),   # wrong check character
    ("110105491231002", False),      # 15 digits: first generation, no check character
    ("1101051949123100", False),     # too short
    ("11010519491331002X", False),   # birth month 13
    ("1101051949123A002X", False),   # a letter in the body
])
def test_id_checksum(context, number, ok) -> None:
    found = rules(context, card(i8=number, i15=number))
    assert (("ID_CHECKSUM", 15) in found) is not ok
    assert (("ID_CHECKSUM", 8) in found) is not ok
    assert ("CARDNO_MISMATCH", 8) not in found


def test_id_reason_names_the_expected_check_character(context) -> None:
    finding = check_card("c", card(i15="110105194912310021", i8=""), context)
    message = next(f for f in finding if f.rule == "ID_CHECKSUM").message_en
    assert "'1'" in message and "'X'" in message


def test_a_15_digit_number_is_read_for_its_birth_date(context) -> None:
    found = rules(context, card(i8="", i15="110105491231002"))
    assert ("ID_BIRTHDATE_MISMATCH", 15) not in found  # 19 + 491231 = item 14
    found = rules(context, card(i8="", i15="110105491230002"))
    assert ("ID_BIRTHDATE_MISMATCH", 15) in found


def test_birth_date_mismatch_leaves_unreal_dates_to_their_rules(context) -> None:
    assert rules(context, card(i14="19491230")) == [("ID_BIRTHDATE_MISMATCH", 15)]
    found = rules(context, card(i14="19491232"))  # not a date: DATE_INVALID's
    assert ("ID_BIRTHDATE_MISMATCH", 15) not in found and ("DATE_INVALID", 14) in found


def test_leap_day_birth_in_an_id(context) -> None:
    from conformance.cases.rules import id_check_char

    body = "11010520000229001"
    number = body + id_check_char(body)
    assert rules(context, card(i8=number, i15=number, i14="20000229")) == []


def test_card_number_mismatch(context) -> None:
    assert rules(context, card(i8="110105194912310037")) == [
        ("ID_CHECKSUM", 8), ("CARDNO_MISMATCH", 8)]
    assert ("CARDNO_MISMATCH", 8) not in rules(context, {"8": "11010519491231002X"})


# -- codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "ok"), [("01", True), ("02", True), ("00", True),
                                           ("09", True), ("1", True), ("2", True),
                                           ("9", True), ("03", False), ("3", False),
                                           ("男", False), ("001", False)])
def test_sex_code_accepts_the_byte_and_the_one_digit_code(context, value, ok) -> None:
    assert (("SEX_CODE", 12) in rules(context, card(i12=value))) is not ok


@pytest.mark.parametrize(("value", "ok"), [("01", True), ("56", True), ("57", False),
                                           ("97", True), ("98", True), ("99", False),
                                           ("00", False), ("1", False), ("汉", False)])
def test_ethnic_code(context, value, ok) -> None:
    assert (("ETHNIC_CODE", 13) in rules(context, card(i13=value))) is not ok


@pytest.mark.parametrize(("value", "ok"), [
    ("410100", True),     # 郑州市
    ("110000", True),     # 北京市 (province level)
    ("110100", True),     # 北京市 市辖区
    ("371200", True),     # 莱芜市: withdrawn in 2019, still on cards issued before
    ("410105", True),     # 金水区 (county level)
    ("419900", False), ("41010", False), ("4101000", False), ("990000", False),
])
def test_city_code(context, value, ok) -> None:
    assert (("CITY_CODE", 57) in rules(context, card(i57=value))) is not ok


def test_city_names(context) -> None:
    assert context.city_name("410100") == "河南省郑州市"
    assert context.city_name("110100") == "北京市"
    assert context.city_name("410105") == "河南省郑州市金水区"
    assert context.city_name("999999") == ""


# -- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "ok"), [
    ("20240229", True), ("20230229", False), ("20000229", True), ("19000229", False),
    ("20240431", False), ("2024011", False), ("2024-01-01", False), ("00000000", False),
])
def test_date_invalid(context, value, ok) -> None:
    assert (("DATE_INVALID", 61) in rules(context, card(i61=value))) is not ok


def test_date_order(context) -> None:
    assert rules(context, card(i6="19491231")) == []               # birth = issue: allowed
    assert rules(context, card(i7="20240101")) == [("DATE_ORDER", 7), ("EXPIRED", 7)]
    assert rules(context, card(i6="19491230")) == [("DATE_ORDER", 6)]
    assert rules(context, card(i6="", i7="19491231")) == [("DATE_ORDER", 7), ("EXPIRED", 7)]
    # an invalid issue date is DATE_INVALID's; birth < expiry still holds
    assert rules(context, card(i6="20241301")) == [("DATE_INVALID", 6)]


def test_date_order_message_names_both_items(context) -> None:
    finding = check_card("c", card(i6="19491230"), context)[0]
    assert "19491231" in finding.message_en and "on or after" in finding.message_en
    assert "不早于" in finding.message_zh


def test_expired_is_strictly_before_the_validation_date(context) -> None:
    assert rules(context, card(i7=ON.strftime("%Y%m%d"))) == []
    day_before = (ON - dt.timedelta(days=1)).strftime("%Y%m%d")
    assert rules(context, card(i7=day_before)) == [("EXPIRED", 7)]
    assert ("EXPIRED", 7) not in rules(context, card(i7="20251341"))  # not a date


# -- phones, required items, partial dumps -------------------------------------------------


@pytest.mark.parametrize(("value", "ok"), [
    ("13800000000", True), ("19912345678", True), ("+8613800000000", True),
    ("138 0000 0000", True), ("010-62345678", True), ("0371-66123456", True),
    ("037166123456", True), ("0371 6612 3456", True), ("010-62345678-123", True),
    ("66123456", True),   # a fixed line written without its area code
    ("12345", False), ("12800000000", False), ("1380000000", False), ("23800000000", False),
    ("010-1234", False), ("phone", False), ("+1 415 555 0100", False),
])
def test_phone_format(context, value, ok) -> None:
    assert (("PHONE_FORMAT", 16) in rules(context, card(i16=value))) is not ok


def test_required_items_absent_or_empty(context) -> None:
    assert rules(context, card(i11="")) == [("REQUIRED_MISSING", 11)]
    assert rules(context, card(i11="   ")) == [("REQUIRED_MISSING", 11)]
    items = card()
    del items["57"]
    assert rules(context, items) == [("REQUIRED_MISSING", 57)]


def test_a_partial_dump_is_judged_on_its_items(context) -> None:
    items = {k: card()[k] for k in ("8", "11", "12", "14", "15", "57")}
    assert rules(context, items) == []
    assert rules(context, {**items, "16": "12"}) == [("PHONE_FORMAT", 16)]
    assert rules(context, {"8": "11010519491231002X"}) == [
        ("REQUIRED_MISSING", n) for n in (11, 12, 14, 15, 57)]


# -- malformed input -----------------------------------------------------------------------


@pytest.mark.parametrize("items", [["8"], "text", 7, None])
def test_not_an_object(context, items) -> None:
    assert rules(context, items) == [("MALFORMED", None)]


def test_unknown_items_and_values_that_are_not_text(context) -> None:
    found = rules(context, {**card(), "99": "x", "name": "王", "13": 1})
    assert sorted(found, key=str) == [("MALFORMED", 13), ("MALFORMED", None),
                                      ("MALFORMED", None)]
    assert rules(context, {**card(), "item_13": "01", 8: "11010519491231002X"}) == []


def test_findings_name_card_city_and_value(context) -> None:
    finding = check_card("card-7", card(i12="7"), context)[0]
    assert (finding.card, finding.rule, finding.item, finding.value, finding.city) == (
        "card-7", "SEX_CODE", 12, "7", "410100")


# -- the rules file ------------------------------------------------------------------------


def test_a_bad_rules_file_names_file_and_key(tmp_path: Path, context) -> None:
    text = (RULES_DIR / "cards.yaml").read_text(encoding="utf-8")
    (tmp_path / "gb2260.csv").write_text("code,name_zh,until\n", encoding="utf-8")
    (tmp_path / "cards.yaml").write_text(text.replace("check: phone", "check: fone"),
                                         encoding="utf-8")
    with pytest.raises(ProfileError, match=r"cards.yaml:\d+: key rules\.9\.check"):
        load_rules(context.profile, tmp_path)
    (tmp_path / "cards.yaml").write_text(
        text.replace("profile_rule: phone", "profile_rule: fone"), encoding="utf-8")
    with pytest.raises(ProfileError, match="PHONE_FORMAT: its items select no data item"):
        load_rules(context.profile, tmp_path)
    (tmp_path / "cards.yaml").write_text(
        text.replace('en: "item {item} ({name_en}) \'{value}\' is not a mainland', 'en: "{x} '),
        encoding="utf-8")
    with pytest.raises(ProfileError, match="different placeholders"):
        load_rules(context.profile, tmp_path)
    (tmp_path / "cards.yaml").write_text(text.replace("{codes}", "{code}"), encoding="utf-8")
    with pytest.raises(ProfileError, match=r"check code gives no \{code\}"):
        load_rules(context.profile, tmp_path)
    (tmp_path / "cards.yaml").write_text(text.replace("      bad_json:", "      bad_jsn:"),
                                         encoding="utf-8")
    with pytest.raises(ProfileError, match="reasons lack bad_json"):
        load_rules(context.profile, tmp_path)
