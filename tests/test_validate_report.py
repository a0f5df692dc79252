"""The card data quality report (quality.html / quality.pdf) of `rhc validate cards`.

Rendered from a hand-written validation.json: every rule, GBK names (and one beyond GBK), ID
numbers, phones and dates in values and quoted in messages, so the masking is tested on what a
card-management export really holds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conformance.model.profile import load_profile
from conformance.model.source import ProfileError
from conformance.report.model import ReportError
from conformance.validate.report import (
    MASKS_PATH,
    Masker,
    cap_per_rule,
    load_masks,
    render_quality_html,
    write_quality_report,
)

RULES = {
    "ID_CHECKSUM": ("身份证号校验位错误", "the GB 11643 check digit is wrong"),
    "ID_BIRTHDATE_MISMATCH": ("身份证号中的出生日期与出生日期不符",
                              "the birth date in the ID number differs from the birth date"),
    "CARDNO_MISMATCH": ("卡号与身份证号不一致", "the card number differs from the ID number"),
    "SEX_CODE": ("性别代码不是 GB/T 2261.1 代码", "the sex is not a GB/T 2261.1 code"),
    "ETHNIC_CODE": ("民族代码不是 GB 3304 代码", "the ethnicity is not a GB 3304 code"),
    "DATE_INVALID": ("日期不是有效的日历日期", "a date is not a calendar date"),
    "DATE_ORDER": ("日期顺序不对", "birth, issue and expiry dates are out of order"),
    "EXPIRED": ("卡已过有效期", "the card has expired"),
    "CITY_CODE": ("应用城市代码不是 GB/T 2260 代码", "the city code is not a GB/T 2260 code"),
    "PHONE_FORMAT": ("电话号码格式错误", "a phone number is neither mobile nor fixed-line"),
    "REQUIRED_MISSING": ("必填数据项缺失", "a required item is empty or absent"),
    "MALFORMED": ("行或文件格式错误", "a row or file is malformed"),
}

ID_A = "110105199003071235"   # a CSV row's card number (item 8) and ID number (item 15)
ID_B = "440305198512120018"   # a dump's ID number
CARD_B = "440305198512120019"  # that dump's card number, which differs
BIRTH = "19851221"            # item 14 of that dump
ROW_ID = "32010219770505443X"  # inside a malformed row
PHONE = "1381234567"          # one digit short
CONTACT_PHONE = "+86 139 1234 5678"
NAMES = ("欧阳𠮷", "诸葛亮亮", "张三丰")  # 𠮷 is beyond GBK: the reason it is MALFORMED


def finding(card, rule, item, value, zh, en, city="110100"):
    return {"card": card, "rule": rule, "item": item, "value": value,
            "message_zh": zh, "message_en": en, "city": city}


FINDINGS = [
    finding(ID_A, "ID_CHECKSUM", 15, ID_A, f"居民身份证号 {ID_A} 的校验位应为 4",
            f"resident ID number {ID_A}: the check digit should be 4"),
    finding(ID_A, "ID_CHECKSUM", 8, ID_A, f"卡号 {ID_A} 的校验位应为 4",
            f"card number {ID_A}: the check digit should be 4"),
    finding("card-0002", "ID_BIRTHDATE_MISMATCH", 15, ID_B,
            f"居民身份证号 {ID_B} 中的出生日期 19851212 与出生日期 {BIRTH} 不符",
            f"the ID number {ID_B} holds birth date 19851212, item 14 is {BIRTH}", "440300"),
    finding("card-0002", "CARDNO_MISMATCH", 8, CARD_B,
            f"卡号 {CARD_B} 与居民身份证号 {ID_B} 不一致",
            f"card number {CARD_B} differs from ID number {ID_B}", "440300"),
    finding("row 4", "SEX_CODE", 12, "3", "性别代码 3 不是 GB/T 2261.1 代码",
            "sex 3 is not a GB/T 2261.1 code"),
    finding("row 4", "ETHNIC_CODE", 13, "57", "民族代码 57 不在 GB 3304 的 01–56 之中",
            "ethnicity 57 is not a GB 3304 code (01-56)"),
    finding("row 5", "DATE_INVALID", 14, "19900230", "出生日期 19900230 不是有效日期",
            "birth date 19900230 is not a calendar date"),
    finding("row 5", "DATE_ORDER", 6, "20250101",
            "发卡时间 20250101 应在出生日期 19900101 之后、卡有效期 20240101 之前",
            "issue date 20250101 must follow birth date 19900101 and precede expiry 20240101"),
    finding("card-0003", "EXPIRED", 7, "20241231", "卡有效期 20241231 早于校验日期 20261201",
            "expiry date 20241231 is before the validation date 2026-12-01", "440300"),
    finding("card-0003", "CITY_CODE", 57, "999999", "应用城市代码 999999 不是 GB/T 2260 代码",
            "city code 999999 is not a GB/T 2260 code", "999999"),
    finding("card-0003", "PHONE_FORMAT", 16, PHONE, f"本人电话1 {PHONE} 不是手机或固定电话号码",
            f"own phone 1 {PHONE} is neither a mobile nor a fixed-line number", "440300"),
    finding("card-0003", "PHONE_FORMAT", 27, CONTACT_PHONE,
            f"联系人电话1 {CONTACT_PHONE} 不是手机或固定电话号码",
            f"contact phone 1 {CONTACT_PHONE} is neither a mobile nor a fixed-line number",
            "440300"),
    finding("row 6", "REQUIRED_MISSING", 11, "", "必填数据项 11 姓名为空",
            "required item 11 (name) is empty"),
    finding("row 7", "MALFORMED", None, f"{ROW_ID},{NAMES[2]},1",
            "第 7 行有 3 个字段，表头有 63 个", "row 7 has 3 fields, the header 63", None),
    finding("row 8", "MALFORMED", 11, NAMES[0], f"姓名 {NAMES[0]} 不能以 GBK 编码",
            f"name {NAMES[0]} cannot be encoded in GBK"),
    finding("row 9", "MALFORMED", 25, NAMES[1], f"联系人姓名1 {NAMES[1]} 超过 8 个字节",
            f"contact name 1 {NAMES[1]} is longer than 8 bytes"),
]
PERSONAL = [ID_A, ID_B, CARD_B, BIRTH, "19851212", ROW_ID, PHONE, CONTACT_PHONE, "19900230",
            "19900101", *NAMES]


def validation(findings=FINDINGS, cards=9):
    counts = {rule: sum(f["rule"] == rule for f in findings) for rule in RULES}
    return {
        "cards": cards,
        "findings": findings,
        "validated_on": "2026-12-01",
        "generated_at": "2026-12-01T20:05:03+08:00",
        "inputs": ["exports/北京-2026-11.csv", f"dumps/{ID_A}.json"],
        "rules": [{"name": n, "message_zh": zh, "message_en": en, "count": counts[n]}
                  for n, (zh, en) in RULES.items()],
        "by_city": [
            {"code": "110100", "name_zh": "北京市", "cards": 6, "cards_with_findings": 6,
             "findings": 10},
            {"code": "440300", "name_zh": "深圳市", "cards": 2, "cards_with_findings": 2,
             "findings": 5},
            {"code": "999999", "name_zh": "", "cards": 1, "cards_with_findings": 1,
             "findings": 1},
        ] if findings else [],
        "cards_with_findings": len({f["card"] for f in findings}),
        "rules_source": [{"file": "profiles/rules/cards.yaml", "sha256": "ab" * 32}],
    }


def pdf_text(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                         text=True, check=True).stdout
    return out


@pytest.fixture(scope="module")
def masked(tmp_path_factory) -> tuple[str, str]:
    out = tmp_path_factory.mktemp("masked")
    paths = write_quality_report(validation(), out)
    assert paths == [out / "quality.html", out / "quality.pdf"]
    return paths[0].read_text("utf-8"), pdf_text(paths[1])


@pytest.fixture(scope="module")
def shown(tmp_path_factory) -> tuple[str, str]:
    out = tmp_path_factory.mktemp("shown")
    html, pdf = write_quality_report(validation(), out, show_personal=True)
    return html.read_text("utf-8"), pdf_text(pdf)


def has_glyph(char: str) -> bool:
    """Whether an installed font draws the character (fontconfig)."""
    if shutil.which("fc-list") is None:
        return False
    found = subprocess.run(["fc-list", f":charset={ord(char):x}", "family"],
                           capture_output=True, text=True, check=False).stdout
    return bool(found.strip())


def squeeze(text: str) -> str:
    """PDF text without the spaces and line breaks pdftotext puts into a wrapped cell."""
    return re.sub(r"\s+", "", text)


def test_masked_report_shows_no_personal_value(masked) -> None:
    html, pdf = masked
    for text in (html, pdf, squeeze(pdf)):
        for value in PERSONAL:
            assert value not in text
    for text in (html, squeeze(pdf)):  # no ID-like number anywhere but the digests
        assert not re.findall(r"\d{15,}", re.sub(r"sha256[0-9a-f ]{64,65}", "", text))
    assert "110105********1235" in html and "440305********0018" in html
    assert "440305********0019" in squeeze(pdf)
    assert "欧*" in html and "诸*" in html
    assert "+86*" in html  # a contact phone keeps its first 3 and last 4 characters
    assert "个人信息已遮蔽" in html and "personal data masked" in html
    assert "个人信息已遮蔽" in pdf  # in the page header of every page too
    assert "dumps/110105********1235.json" in html


def test_masked_report_keeps_what_is_not_personal(masked) -> None:
    html, _ = masked
    for value in ("20250101", "20241231", "999999", "card-0002", "row 7", "20261201"):
        assert value in html
    assert "民族代码 ** 不在 GB 3304 的 01–56 之中" in html  # the code is masked, not the GB number


def test_shown_report_shows_personal_values(shown) -> None:
    html, pdf = shown
    for value in PERSONAL:
        assert value in html
    assert ID_A in pdf and NAMES[1] in squeeze(pdf)
    if has_glyph(NAMES[0][-1]):  # 𠮷 (CJK Ext-B) needs fonts-babelstone-han (scripts/setup.sh)
        assert NAMES[0] in squeeze(pdf)
    assert "未遮蔽" in html and "NOT masked" in html
    assert "含未遮蔽个人信息" in pdf


def test_counts_per_rule_and_city(masked) -> None:
    html, pdf = masked
    for name, (zh, en) in RULES.items():
        assert name in html and zh in html and en in html
        assert name in squeeze(pdf)
    rows = re.findall(r'<td class="rule-name">(\w+)</td>.*?<td class="num">([\d,]+)</td>', html)
    assert dict(rows) == {n: str(sum(f["rule"] == n for f in FINDINGS)) for n in RULES}
    assert "北京市" in html and "深圳市" in html and "100.0%" in html
    assert "居民健康卡发卡数据质量报告" in pdf and "Card data quality report" in pdf
    assert "15 居民身份证号" in html and "16 本人电话1" in html and "整卡" in html
    assert "sha256 " + "ab" * 32 in html and "2026-12-01 20:05:03+08:00" in html
    assert html.count("<svg") == 2 and "<script" not in html


def test_every_page_is_numbered(masked) -> None:
    _, pdf = masked
    pages = pdf.count("\f") + (not pdf.endswith("\f"))
    numbers = re.findall(r"第 (\d+) 页 共 (\d+) 页", pdf)
    assert len(numbers) == pages >= 2
    assert {total for _, total in numbers} == {str(pages)}


def test_a_big_batch_lists_a_capped_table_with_every_rule() -> None:
    cap = load_masks().report.max_findings
    many = [finding(f"row {n}", "EXPIRED", 7, "20201231", "卡已过期", "expired")
            for n in range(5 * cap)]
    few = [f for f in FINDINGS if f["rule"] != "EXPIRED"]
    html, printed = render_quality_html(validation(many + few, cards=50_000))
    assert html.count('<tr class="group">') == len(RULES)
    listed = len(re.findall(r'<td class="mono card">', html))
    assert listed == cap
    assert f"{cap:,} of {len(many) + len(few):,}" in html and "findings.csv" in html
    assert f"{cap - len(few):,} of {len(many):,} listed" in html  # what the others leave
    assert printed.count('<p class="case">') == cap  # the PDF's list: one paragraph a finding
    assert printed.count('<p class="case r-req">') == len(RULES)


def test_a_long_input_list_is_cut_to_the_limit() -> None:
    cap = load_masks().report.max_inputs
    data = validation()
    data["inputs"] = [f"dumps/card-{n:05d}.json" for n in range(cap + 7)]
    html, _ = render_quality_html(data)
    assert html.count("dumps/card-") == cap
    assert "另有 7 个输入" in html and "and 7 more inputs" in html


def test_no_findings(tmp_path: Path) -> None:
    html, pdf = write_quality_report(validation([], cards=3), tmp_path)
    text = html.read_text("utf-8")
    assert "未发现问题" in text and "No findings" in text
    assert "未发现问题" in pdf_text(pdf)


def test_cap_is_shared_fairly() -> None:
    assert cap_per_rule({"A": 5000, "B": 3, "C": 0, "D": 400}, 1000) == {
        "A": 597, "B": 3, "C": 0, "D": 400}
    assert cap_per_rule({"A": 2, "B": 2}, 10) == {"A": 2, "B": 2}
    assert sum(cap_per_rule({"A": 7, "B": 7, "C": 7}, 10).values()) == 10


def test_mask_shapes_come_from_the_masks_file() -> None:
    masker = Masker(load_masks(), load_profile(), show_personal=False)
    assert masker.value(15, "11010519900101002X") == "110105********002X"
    assert masker.value(8, "11010519900101002X") == "110105********002X"
    assert masker.value(11, "张三") == "张*" and masker.value(11, "欧阳娜娜") == "欧*"
    assert masker.value(11, "张") == "*"
    assert masker.value(16, "13812345678") == "138****5678"
    assert masker.value(16, "12345") == "*****"  # too short to keep anything
    assert masker.value(14, "19900101") == "********"
    assert masker.value(57, "110100") == "110100"  # not personal
    assert masker.value(6, ID_A) == "110105********1235"  # a shifted column: still an ID
    assert masker.value(None, "a,b") == "******"  # not even its length
    assert masker.text("row 12") == "row 12" and masker.text("card-0001") == "card-0001"
    assert masker.text("生于 1985-12-21。") == "生于 **********。"  # a date as people write it
    assert masker.text("exports/2026-11.csv") == "exports/2026-11.csv"
    assert masker.text("到期 2024-12-31", keep=["20241231"]) == "到期 2024-12-31"
    assert Masker(load_masks(), load_profile(), show_personal=True).value(15, ID_A) == ID_A


def test_a_mask_for_an_item_that_is_not_personal_is_a_load_error(tmp_path: Path) -> None:
    text = MASKS_PATH.read_text("utf-8").replace("    8: id_number", "    57: id_number")
    bad = tmp_path / "masks.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match="item 57"):
        Masker(load_masks(bad), load_profile(), show_personal=False)
    unknown = tmp_path / "unknown-shape.yaml"
    unknown.write_text(text.replace("default: whole", "default: hidden"), encoding="utf-8")
    with pytest.raises(ProfileError, match=r"shape.yaml:\d+: key masks.default: no mask shape"):
        load_masks(unknown)


def test_a_malformed_validation_is_a_report_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"validation\.json: findings"):
        write_quality_report({"cards": 1}, tmp_path)
    with pytest.raises(ReportError, match=r"validation\.json: findings\.0\.card"):
        write_quality_report({"cards": 1, "findings": [{"rule": "EXPIRED"}]}, tmp_path)
    assert not (tmp_path / "quality.html").exists()
    data = validation()
    data["rules"][0]["message_en"] = data["findings"][0]["message_en"] = None
    assert "ID_CHECKSUM" in render_quality_html(data)[0]  # a null message is an empty one


def test_numbers_written_as_json_numbers_are_read_as_text_and_masked() -> None:
    number = int(ID_A[:-1] + "7")
    row = finding(number, "ID_CHECKSUM", 8, number, "校验位错误", "check digit wrong")
    html, printed = render_quality_html(validation([row], cards=1))
    assert str(number) not in html and str(number) not in printed
    assert "110105********1237" in html


def test_the_city_chart_shows_the_cities_with_most_findings() -> None:
    most = load_masks().report.chart_cities
    data = validation()
    data["by_city"] = [{"code": f"{110100 + 100 * n}", "name_zh": f"市{n}", "cards": 100,
                        "cards_with_findings": n, "findings": n} for n in range(most + 10)]
    html, _ = render_quality_html(data)
    chart = html.split("<svg")[2]
    assert f"{110100 + 100 * (most + 9)} 市{most + 9}" in chart  # the most findings: charted
    assert "110100 市0" not in chart and "110100" in html  # the fewest: only in the table
    assert f"{most} cities with most cards with findings (of {most + 10}" in html
