"""The test basis: the profile's requirement table, and what every case carries from it; and
that a FAIL reads in Chinese and English with what was expected and measured."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from casekit import catalogue, new_card, profile, runner_for
from conftest import ROOT  # noqa: F401 - the suite's root on sys.path for casekit

from conformance.cases.catalogue import build_catalogue
from conformance.cli import main
from conformance.model import DEFAULT_PROFILE, load_profile
from conformance.model.source import ProfileError
from conformance.results import CaseResult, Verdict

SNAKE = re.compile(r"(?<![A-Za-z0-9])[a-z][a-z0-9]*_[a-z0-9_]+")


def _copy(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_PROFILE.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    target = tmp_path / "wst543.yaml"
    target.write_text(text.replace(old, new), encoding="utf-8")
    return target


def test_every_case_carries_a_requirement_with_its_sentence_and_source() -> None:
    prof = profile()
    choice = f"profile [choice] {prof.spec.profile.name} {prof.spec.profile.version}"
    for case in catalogue():
        assert case.requirement in prof.spec.requirements, case.id
        assert case.requirement_zh and case.requirement_en, case.id
        assert "<sw:" not in case.requirement_zh + case.requirement_en, case.id
        assert case.source == (prof.spec.requirements[case.requirement].clause or choice)
        assert case.purpose_zh, case.id
        described = case.describe()
        assert described["requirement_zh"] == case.requirement_zh
        assert described["source"] == case.source and described["purpose_zh"]
    assert next(c.source for c in catalogue() if c.id == "ATR-001") == "WS/T 543.4 §4"
    assert next(c.source for c in catalogue() if c.id == "ATR-006") == choice


def test_requirements_are_few_and_each_is_tested() -> None:
    used = {c.requirement for c in catalogue()}
    assert used == set(profile().spec.requirements)
    assert 30 <= len(used) < len(catalogue()) / 5


def test_chinese_titles_name_commands_by_their_display_names() -> None:
    prof = profile()
    for name, command in prof.spec.commands.items():
        assert command.zh and command.en, name
    for case in catalogue():
        assert not SNAKE.search(case.title_zh), (case.id, case.title_zh)
    title = next(c.title_zh for c in catalogue() if c.id == "CMD-CLA-001")
    assert "擦除记录 ERASE RECORD" in title


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("    clause: WS/T 543.4 §4\n    cases: [ATR-001, ATR-002]",
         "    clause: WS/T 543.4 §4\n    cause: x\n    cases: [ATR-001, ATR-002]",
         r"wst543\.yaml:\d+: key requirements\.atr\.ts_t0\.cause: Extra inputs"),
        ("    zh: 卡片以 <sw:ins_not_supported> 拒绝其不支持的指令字节。\n", "",
         r"wst543\.yaml:\d+: key requirements\.cmd\.ins\.zh: Field required"),
    ],
)
def test_a_malformed_requirement_is_a_one_line_load_error(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    bad = _copy(tmp_path, old, new)
    with pytest.raises(ProfileError, match=expected) as caught:
        load_profile(bad)
    assert "\n" not in str(caught.value)


def test_a_requirement_no_case_tests_is_an_error(capsys, tmp_path) -> None:
    bad = _copy(tmp_path, 'cases: ["CMD-INS-*"]', 'cases: ["CMD-INX-*"]')
    code = main(["--profile", str(bad), "cases", "list"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cmd.ins (CMD-INX-*)" in err and "\n" not in err
    shadowed = _copy(tmp_path, 'cases: ["CMD-T0-*"]', 'cases: ["CMD-CHAL-001"]')
    assert main(["--profile", str(shadowed), "cases", "list"]) == 2
    assert "cmd.t0_get_response (CMD-CHAL-001)" in capsys.readouterr().err


def test_a_case_naming_an_unknown_requirement_is_an_error(monkeypatch) -> None:
    from conformance.cases import atr

    shipped = atr.cases

    def renamed(prof):  # one case names a requirement the table lacks
        first, *rest = shipped(prof)
        return [dataclasses.replace(first, requirement="atr.no_such"), *rest]

    monkeypatch.setattr(atr, "cases", renamed)
    with pytest.raises(ValueError, match=r"case ATR-001: unknown requirement 'atr\.no_such'"):
        build_catalogue(profile())


def test_a_fail_reads_in_both_languages_with_expected_and_measured() -> None:
    case = next(c for c in catalogue() if c.id == "CMD-CHAL-001")
    runner = runner_for(new_card(["constant_challenge"]))
    try:
        result = runner.run(case)
    finally:
        runner.close()
    assert result.verdict is Verdict.FAIL
    assert result.reason.startswith("GET CHALLENGE #2 repeats #1 (")
    assert "8 bytes" in result.reason and "8 字节" in result.reason_zh
    assert result.reason_zh.startswith("第 2 次取随机数与第 1 次相同")
    # the challenge itself is masked; its length and position still show
    assert "<secret:" in result.reason and "<secret:" in result.reason_zh
    assert result.expected and result.measured == "#2 = #1 (8 bytes) after 1 distinct"
    assert result.requirement == "cmd.challenge_fresh" and result.requirement_zh
    again = CaseResult.from_dict(json.loads(result.to_json()))
    assert again.reason_zh == result.reason_zh and again.measured == result.measured


def test_a_status_word_fail_shows_the_status_words() -> None:
    case = next(c for c in catalogue() if c.id == "CMD-CLA-001")
    runner = runner_for(new_card(["unknown_cla_accepted"]))
    try:
        result = runner.run(case)
    finally:
        runner.close()
    assert result.verdict is Verdict.FAIL
    assert result.expected.startswith("6E00") and result.measured
    assert "应为 6E00" in result.reason_zh and "expected 6E00" in result.reason
