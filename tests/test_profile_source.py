"""The profile is the only source of wire facts: a lab's copy with other status words and
classes changes the catalogue, the verdicts' basis and the masking of evidence together.

The copy renames no meaning; it only gives ``security_not_satisfied`` and ``wrong_mac`` other
values and moves the SM update, READ BINARY and GET RESPONSE to other classes. The catalogue
must show the new bytes and none of the old, the virtual card built from the copy must pass
every case (the bodies judge by the same names the card answers by), the T=0 layer must collect
with the copy's GET RESPONSE, and the SM data under the new class must be masked in the
evidence.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from casekit import new_card, runner_for

from conformance.cases.catalogue import build_catalogue, render_text
from conformance.model import (
    CardProfile,
    load_profile,
)
from conformance.model.profile import DEFAULT_PROFILE
from conformance.results import Verdict
from conformance.transport.redact import MASK_PREFIX, Redactor

STATUS_WORDS = {"security_not_satisfied": "6A81", "wrong_mac": "6987"}
CLASSES = {"update_record_sm": 0x0C, "read_binary": 0x80, "get_response": 0x80}
OLD_SW = ("6982", "6988")
NEW_SW = ("6A81", "6987")


def lab_profile(directory: Path) -> CardProfile:
    """A copy of the reference profile with other status words and classes, as a lab writes it."""
    data = yaml.safe_load(DEFAULT_PROFILE.read_text(encoding="utf-8"))
    data["status_words"].update(STATUS_WORDS)
    for name, cla in CLASSES.items():
        data["commands"][name]["cla"] = cla
    path = directory / "lab.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return load_profile(path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> CardProfile:
    return lab_profile(tmp_path_factory.mktemp("lab-profile"))


def _catalogue_text(profile: CardProfile) -> str:
    return json.dumps([c.describe() for c in build_catalogue(profile)], ensure_ascii=False)


def test_the_catalogue_shows_the_copy_s_status_words_and_classes(lab: CardProfile) -> None:
    reference = build_catalogue(load_profile())
    cases = build_catalogue(lab)
    assert [c.id for c in cases] == [c.id for c in reference]
    text = _catalogue_text(lab)
    for old, new in zip(OLD_SW, NEW_SW, strict=True):
        assert not re.search(rf"\b{old}\b", text), f"the catalogue still shows {old}"
        assert re.search(rf"\b{new}\b", text)
    expecting = [c for c in cases if "6A81" in c.expected_sw]
    assert len(expecting) == sum("6982" in c.expected_sw for c in reference) > 50
    assert "04 DC" not in text and "0C DC" in text
    assert "80, 84" in text or "84, 80" in text  # the CLA cases list the copy's classes


def test_expected_status_words_are_the_profile_s_hex() -> None:
    profile = load_profile()
    names = {v: k for k, v in profile.spec.status_words.items()}
    for case in build_catalogue(profile):
        for sw in case.expected_sw:
            assert len(sw) == 4 and (sw in names or sw[:2] in names or sw[:3] in names), (
                case.id,
                sw,
            )


def test_the_virtual_card_of_the_copy_passes_every_case(
    lab: CardProfile, tmp_path: Path
) -> None:
    runner = runner_for(new_card(prof=lab), prof=lab, out_dir=tmp_path)
    results = {case.id: runner.run(case) for case in build_catalogue(lab)}
    bad = {
        i: f"{r.verdict.value}: {r.reason}"
        for i, r in results.items()
        if r.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE)
    }
    assert not bad
    assert sum(r.verdict is Verdict.PASS for r in results.values()) > 700
    # the SM updates went out under the copy's class, their data masked in the evidence
    evidence = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "evidence").iterdir())
    entries = [json.loads(line) for line in evidence.splitlines()]
    commands = [entry["command"] for entry in entries]
    sm = [cmd for cmd in commands if cmd.startswith("0CDC") and len(cmd) > 10]
    assert sm and all(cmd[10:].startswith(MASK_PREFIX) for cmd in sm)
    assert not [cmd for cmd in commands if cmd.startswith("04DC")]
    # the T=0 layer collected 61xx answers with the copy's GET RESPONSE
    # (wire exchanges the T=0 layer added under another logical command)
    sent = {e["seq"]: e["command"] for e in entries if not e["wire"]}
    added = [
        e["command"][:4] for e in entries if e["wire"] and e["command"] != sent.get(e["parent"])
    ]
    assert "80C0" in added and "00C0" not in added


def test_redaction_follows_the_copy_s_classes(lab: CardProfile) -> None:
    salt = bytes(16)
    secret = bytes(range(20))
    lab_redactor = Redactor.from_profile(lab, salt)
    shown = lab_redactor.redact_command(bytes.fromhex("0CDC010414") + secret)
    assert shown == "0CDC010414" + lab_redactor.mask(secret)
    reference = Redactor.from_profile(load_profile(), salt)
    unmasked = reference.redact_command(bytes.fromhex("0CDC010414") + secret)
    assert unmasked.endswith(secret.hex().upper())  # 0C is no class of the reference
    assert MASK_PREFIX in reference.redact_command(bytes.fromhex("04DC010414") + secret)


def test_no_reference_byte_survives_when_the_copy_changes_them_all(tmp_path: Path) -> None:
    """Every status word, class and instruction moved: the catalogue names none of the old."""
    data = yaml.safe_load(DEFAULT_PROFILE.read_text(encoding="utf-8"))
    old_sw = dict(data["status_words"])
    for i, (name, value) in enumerate(old_sw.items()):
        data["status_words"][name] = {4: f"F{i:03X}", 3: "53C", 2: f"5{i % 10}"}[len(value)]
    old_commands = {n: (c["cla"], c["ins"]) for n, c in data["commands"].items()}
    for command in data["commands"].values():
        command["cla"] |= 0x10
        command["ins"] ^= 0x01
    path = tmp_path / "moved.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    text = _catalogue_text(load_profile(path))
    for value in old_sw.values():
        if len(value) == 4:
            assert not re.search(rf"\b{value}\b", text), value
    for pattern in ("6Cxx", "61xx", "63Cx"):
        assert pattern not in text
    for cla, ins in old_commands.values():
        assert f"{cla:02X} {ins:02X}" not in text


def test_wire_terms_render_from_the_profile_and_unknown_names_are_refused() -> None:
    profile = load_profile()
    text = "<cmd:update_record_sm> n 04 → <sw:wrong_le:08>; <cla:mark_record>/<ins:erase_record>"
    assert render_text(profile, text) == "04 DC n 04 → 6C08; 84/0C"
    with pytest.raises(KeyError, match="no command 'update_sm'"):
        render_text(profile, "<cmd:update_sm>")
    with pytest.raises(KeyError, match="no status word 'refused'"):
        render_text(profile, "<sw:refused>")
