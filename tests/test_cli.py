"""The command line: clear one-line errors for bad input, catalogue listings, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.model import DEFAULT_PERSONALIZATION, DEFAULT_PROFILE


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def bad_copy(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text(encoding="utf-8")
    assert old in text
    target = tmp_path / source.name
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


def test_profile_with_an_unknown_key(capsys, tmp_path) -> None:
    bad = bad_copy(tmp_path, DEFAULT_PROFILE, "  challenge_length: 8", "  challenge_lenght: 8")
    code, _, err = run(capsys, "--profile", str(bad), "card", "dump")
    assert code == 2
    assert str(bad) in err and "security.challenge_lenght" in err and "Traceback" not in err


def test_personalization_value_too_long(capsys, tmp_path) -> None:
    bad = bad_copy(tmp_path, DEFAULT_PERSONALIZATION, '11: "王测试"', '11: "' + "王" * 20 + '"')
    code, _, err = run(capsys, "card", "dump", "--personalization", str(bad))
    assert code == 2
    assert "items.11" in err and "longer than 30" in err


def test_card_image_from_another_profile(capsys, tmp_path) -> None:
    from conformance.card import VirtualCard
    from conformance.model import load_key_set, load_personalization, load_profile
    from conformance.model.personalization import DEFAULT_TEST_KEYS

    other = bad_copy(tmp_path, DEFAULT_PROFILE, "name: wst543-reference", "name: other-profile")
    profile = load_profile(other)
    card = VirtualCard.personalize(
        profile, load_personalization(DEFAULT_PERSONALIZATION, profile),
        load_key_set(DEFAULT_TEST_KEYS, profile),
    )
    image = tmp_path / "card.json"
    card.save_image(image)
    code, _, err = run(capsys, "card", "dump", "--image", str(image))
    assert code == 2
    assert "other-profile" in err and "Traceback" not in err


def test_unknown_fault_and_plan(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "card", "dump", "--fault", "no_such_fault")
    assert code == 2 and "no_such_fault" in err and "constant_challenge" in err
    code, _, err = run(capsys, "run", "--plan", "nightly", "--out", str(tmp_path / "r"))
    assert code == 2 and "nightly" in err and "certification" in err


def test_pcsc_run_needs_a_reader(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "run", "--card", "pcsc", "--out", str(tmp_path / "r"))
    assert code == 2 and "--reader" in err


def test_dump_of_the_virtual_card(capsys) -> None:
    code, out, _ = run(capsys, "card", "dump")
    assert code == 0
    items = json.loads(out)
    assert items["11"] == "王测试" and items["57"] == "410100" and len(items) == 57


def test_cases_list_json_names_every_case(capsys) -> None:
    code, out, _ = run(capsys, "cases", "list", "--json")
    cases = json.loads(out)
    assert code == 0 and len(cases) >= 300
    assert {"id", "title_zh", "title_en", "clause", "applicability"} <= set(cases[0])
    code, out, _ = run(capsys, "cases", "list", "--json", "--plan", "selftest")
    selftest = json.loads(out)
    assert 0 < len(selftest) < len(cases)


def test_faults_json(capsys) -> None:
    code, out, _ = run(capsys, "card", "faults", "--json")
    faults = json.loads(out)
    assert code == 0 and len(faults) >= 35
    assert {f["group"] for f in faults} >= {"ATR", "CMD", "FS", "DATA", "SEC", "CYC", "IDX",
                                            "REC", "PIN"}


def test_minimal_product_shows_not_applicable(capsys, tmp_path) -> None:
    out = tmp_path / "run"
    code, _, _ = run(capsys, "run", "--product", "profiles/products/minimal.yaml", "--out",
                     str(out), "--quiet", "--no-report")
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert code == 0, summary
    assert summary["verdict"] == "CONFORMANT"
    assert summary["counts"]["NOT_APPLICABLE"] > 0
    na = [c for c in summary["cases"] if c["verdict"] == "NOT_APPLICABLE"]
    assert all("ICS" in c["reason"] for c in na)


def test_a_fault_makes_the_run_not_conformant(capsys, tmp_path) -> None:
    out = tmp_path / "run"
    code, _, _ = run(capsys, "run", "--fault", "constant_challenge", "--out", str(out),
                     "--quiet", "--no-report", "-k", "CMD")
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert code == 1 and summary["verdict"] == "NOT_CONFORMANT"
    failing = [c["id"] for c in summary["cases"] if c["verdict"] == "FAIL"]
    assert failing and all(c.startswith("CMD-") for c in failing)


def test_a_partial_run_gives_no_certification_verdict(capsys, tmp_path) -> None:
    out = tmp_path / "run"
    code, _, _ = run(capsys, "run", "--out", str(out), "--quiet", "--no-report", "-k", "ATR")
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert code == 2 and summary["verdict"] == "INCOMPLETE"
    assert summary["counts"]["PASS"] == len(summary["cases"]) > 0
    assert any("-k" in note for note in summary["notes"])
