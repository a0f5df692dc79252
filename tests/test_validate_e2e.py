"""`rhc validate cards --reader`: a card in a real PC/SC reader (pcscd + vpcd), read as
`rhc card dump` reads it, and judged like a dump file."""

from __future__ import annotations

import json

import pytest
from conftest import VPCD_READER

from conformance.cli import main
from conformance.model import DEFAULT_PERSONALIZATION, DEFAULT_TEST_KEYS

pytestmark = pytest.mark.e2e


def test_a_card_in_a_reader_is_validated(vpcd_card, tmp_path, capsys) -> None:
    from conformance.card import VirtualCard
    from conformance.model import load_key_set, load_personalization, load_profile

    text = DEFAULT_PERSONALIZATION.read_text(encoding="utf-8")
    assert '12: "01"' in text
    personalization = tmp_path / "sex-03.yaml"
    personalization.write_text(text.replace('12: "01"', '12: "03"'), encoding="utf-8")
    profile = load_profile(None)
    card = VirtualCard.personalize(profile, load_personalization(personalization, profile),
                                   load_key_set(DEFAULT_TEST_KEYS, profile))
    vpcd_card(card)
    out = tmp_path / "out"
    code = main(["validate", "cards", "--reader", VPCD_READER, "--out", str(out),
                 "--date", "2025-01-01"])
    _, err = capsys.readouterr()
    assert code == 1, err
    validation = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    assert validation["cards"] == 1 and validation["inputs"] == [f"reader {VPCD_READER}"]
    assert [(f["card"], f["rule"], f["item"], f["value"]) for f in validation["findings"]] == [
        ("11010519491231002X", "SEX_CODE", 12, "03")]


def test_a_pattern_matching_no_reader(pcsc_bench, tmp_path, capsys) -> None:
    code = main(["validate", "cards", "--reader", "^no such reader$", "--out",
                 str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert code == 2 and "matches no PC/SC reader" in err
