"""The independent terminal (tests/terminals/plain_terminal.py) against the virtual card.

The program was written from TERMINAL.md and REFERENCE.md alone and imports nothing of the
suite; here its pyscard reader list is replaced by one reader that carries APDUs to the virtual
card in process, so its operations can be checked without PC/SC. Its PC/SC run through
`rhc card serve` is in tests/test_terminal_programs_e2e.py.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conformance.model import (
    DEFAULT_PERSONALIZATION,
    DEFAULT_TEST_KEYS,
    CardProfile,
    load_key_set,
    load_personalization,
    load_profile,
)

PLAIN = Path(__file__).resolve().parent / "terminals" / "plain_terminal.py"
READER = "Virtual PCD 00 00"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("plain_terminal", PLAIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plain = _load()


@pytest.fixture(scope="module")
def profile() -> CardProfile:
    return load_profile()


class Connection:
    """What pyscard's connection offers the program, over the virtual card."""

    def __init__(self, card: Any, log: list[bytes]) -> None:
        self.card, self.log = card, log

    def connect(self) -> None:
        self.atr = self.card.reset()

    def getATR(self) -> list[int]:
        return list(self.atr)

    def transmit(self, apdu: list[int]) -> tuple[list[int], int, int]:
        self.log.append(bytes(apdu))
        response = self.card.process(bytes(apdu))
        return list(response[:-2]), response[-2], response[-1]

    def disconnect(self) -> None:
        pass


class Reader:
    def __init__(self, card: Any, log: list[bytes]) -> None:
        self.card, self.log = card, log

    def __str__(self) -> str:
        return READER

    def createConnection(self) -> Connection:
        return Connection(self.card, self.log)


class Plain:
    """Runs the program's main() on one card, as the suite would run the program."""

    def __init__(self, card: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.card = card
        self.log: list[bytes] = []
        monkeypatch.setattr(plain, "readers", lambda: [Reader(card, self.log)])
        monkeypatch.setenv("RHC_READER", READER)
        monkeypatch.setenv("RHC_KEYS", str(DEFAULT_TEST_KEYS))
        self.monkeypatch = monkeypatch

    def run(self, *argv: str, items: dict[str, str] | None = None) -> tuple[int, Any]:
        stdin = json.dumps({"items": items}) if items is not None else ""
        self.monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        out = io.StringIO()
        self.monkeypatch.setattr("sys.stdout", out)
        status = plain.main(list(argv))
        return status, json.loads(out.getvalue())


@pytest.fixture(params=[frozenset(), frozenset({"t0_get_response"})], ids=["T=1", "T=0"])
def term(request: pytest.FixtureRequest, profile: CardProfile,
         monkeypatch: pytest.MonkeyPatch) -> Plain:
    from conformance.card import VirtualCard

    card = VirtualCard.personalize(profile, load_personalization(DEFAULT_PERSONALIZATION, profile),
                                   load_key_set(DEFAULT_TEST_KEYS, profile),
                                   features=request.param)
    return Plain(card, monkeypatch)


def test_it_imports_nothing_of_the_suite() -> None:
    tree = ast.parse(PLAIN.read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(name.startswith("conformance") for name in names)


@pytest.mark.parametrize(("layout", "name"), [("INPATIENT", "inpatient"),
                                               ("OUTPATIENT", "outpatient"),
                                               ("ALLERGY", "allergy"),
                                               ("IMMUNIZATION", "immunisation")])
def test_its_layouts_are_the_profiles(profile: CardProfile, layout: str, name: str) -> None:
    mine = getattr(plain, layout)
    theirs = [(f.item, f.offset, str(f.coding), f.length) for f in profile.layout(name)]
    assert mine == theirs


def test_its_items_are_the_profiles(profile: CardProfile) -> None:
    for n, (coding, length) in plain.ITEMS.items():
        assert (str(profile.item(n).coding), profile.item(n).length) == (coding, length)
    for (df, ef), items in plain.TLV_FILES.items():
        assert profile.file(f"{df}/{ef}").items == items


def test_get_and_put(term: Plain) -> None:
    status, doc = term.run("get", "11", "12", "5", "17")
    assert status == 0 and doc["items"]["11"] == "王测试" and doc["items"]["12"] == "01"
    assert doc["items"]["17"] == "" and len(doc["items"]["5"]) == 360
    assert term.run("put", items={"16": "13912345678", "25": "李四", "56": "01"}) == (
        0, {"status": "ok"})
    assert term.run("get", "16", "25", "56")[1] == {
        "items": {"16": "13912345678", "25": "李四", "56": "01"}}


def test_allergies(term: Plain) -> None:
    assert term.run("append-allergy", items={"58": "青霉素", "59": "皮疹"}) == (0, {"status": "ok"})
    assert term.run("read-allergies") == (0, {"records": [{"58": "青霉素", "59": "皮疹"}]})


def test_outpatient_and_inpatient(term: Plain) -> None:
    assert term.run("write-outpatient", items={"213": "医院", "215": "20240301083000"}) == (
        0, {"status": "ok", "slot": 1})
    status, doc = term.run("read-outpatient", "1")
    assert status == 0 and doc["items"]["215"] == "20240301083000" and len(doc["items"]) == 172
    assert term.run("read-outpatient", "2")[1]["message"].endswith("slot 2 is free")
    assert term.run("write-inpatient", items={"64": "医院"}) == (0, {"status": "ok", "slot": 1})
    assert len(term.run("read-inpatient", "1")[1]["items"]) == 149


def test_bad_values_are_refused_before_any_apdu(term: Plain) -> None:
    status, doc = term.run("put", items={"16": "1" * 21})
    assert status == 1 and doc["status"] == "error" and term.log == []
    assert term.run("get", "58")[0] == 1 and term.log == []


def test_6cxx_and_61xx(profile: CardProfile, monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance.card import VirtualCard

    card = VirtualCard.personalize(profile, load_personalization(DEFAULT_PERSONALIZATION, profile),
                                   load_key_set(DEFAULT_TEST_KEYS, profile),
                                   features=frozenset({"t0_get_response"}))

    class Fussy:
        """Le = 00 gets 6Cxx; every other 61xx announces one byte too few."""

        def reset(self) -> bytes:
            return card.reset()

        def process(self, apdu: bytes) -> bytes:
            response = card.process(apdu)
            whole = apdu[1] in (0xB0, 0xB2) and len(apdu) == 5 and apdu[4] == 0
            if response[-2] == 0x61:
                return bytes([0x6C, response[-1]]) if whole else bytes([0x61, response[-1] - 1])
            return response

    term = Plain(Fussy(), monkeypatch)
    assert term.run("get", "11", "16") == (0, {"items": {"11": "王测试", "16": "13800000000"}})
