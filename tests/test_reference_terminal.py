"""The reference terminal (`rhc terminal reference`) against the virtual card, in process.

Each transaction runs :func:`conformance.terminal_ref.cli.transact` over an in-process
transport, as the program does over PC/SC, and the card's recorder shows every APDU it sent:
the JSON of each operation, the value rules (bad values refused before any APDU), the slot
rule, the T=0 handling, and that each fault changes exactly the behaviour it names.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conformance.host import HealthCardSession, TestKeyProvider
from conformance.model import (
    DEFAULT_PERSONALIZATION,
    DEFAULT_TEST_KEYS,
    CardProfile,
    KeySet,
    load_key_set,
    load_personalization,
    load_profile,
)
from conformance.resources import FIXTURES_DIR
from conformance.terminal_ref.cli import transact
from conformance.terminal_ref.faults import FAULTS
from conformance.transport.inprocess import InProcessTransport
from conformance.transport.layers import T0Layer, T0Rules

ROOT = Path(__file__).resolve().parents[1]
LONG_NAME = FIXTURES_DIR / "personalizations" / "long-name.yaml"

SELECT, READ_RECORD, READ_BINARY, GET_RESPONSE = 0xA4, 0xB2, 0xB0, 0xC0
GET_CHALLENGE, EXT_AUTH, UPDATE_RECORD, UPDATE_BINARY = 0x84, 0x82, 0xDC, 0xD6
MARK = (0x84, 0xD2)


@pytest.fixture(scope="module")
def profile() -> CardProfile:
    return load_profile()


@pytest.fixture(scope="module")
def key_set(profile: CardProfile) -> KeySet:
    return load_key_set(DEFAULT_TEST_KEYS, profile)


class Recorder:
    """An ApduResponder around the card that records commands and can bend answers."""

    def __init__(self, inner: Any, bend: Callable[[bytes, bytes], bytes] | None = None):
        self.inner = inner
        self.bend = bend
        self.commands: list[bytes] = []
        self.responses: list[bytes] = []

    def reset(self) -> bytes:
        return self.inner.reset()

    def process(self, apdu: bytes) -> bytes:
        response = self.inner.process(apdu)
        if self.bend is not None:
            response = self.bend(apdu, response)
        self.commands.append(bytes(apdu))
        self.responses.append(response)
        return response

    def clear(self) -> None:
        self.commands.clear()
        self.responses.clear()

    def ins(self) -> list[int]:
        return [c[1] for c in self.commands]

    def headers(self) -> list[tuple[int, int, int, int]]:
        return [(c[0], c[1], c[2], c[3]) for c in self.commands]

    def count(self, ins: int, cla: int | None = None) -> int:
        return sum(1 for c in self.commands if c[1] == ins and (cla is None or c[0] == cla))


@dataclasses.dataclass
class Bench:
    """A card, its recorder, and the terminal's transactions on it."""

    profile: CardProfile
    keys: KeySet
    card: Recorder
    opened: int = 0

    def run(self, operation: str, *args: str, items: dict[str, str] | None = None,
            faults: frozenset[str] = frozenset(), keys: KeySet | None = None,
            stdin: str | None = None) -> tuple[int, dict[str, Any]]:
        if stdin is None and items is not None:
            stdin = json.dumps({"items": items}, ensure_ascii=False)

        def transport() -> InProcessTransport:
            self.opened += 1
            return InProcessTransport(self.card)  # powers the card, as the suite does

        provider = TestKeyProvider(keys or self.keys)
        return transact(operation, list(args), io.StringIO(stdin) if stdin is not None else None,
                        profile=self.profile, keys=lambda: provider, transport=transport,
                        faults=faults)

    def host(self) -> HealthCardSession:
        """The suite's host session on the same card (to prepare or check content)."""
        rules = T0Rules.from_profile(self.profile)
        link = T0Layer(InProcessTransport(self.card.inner), rules=rules)
        return HealthCardSession(link, self.profile, TestKeyProvider(self.keys))


@pytest.fixture
def make_bench(profile: CardProfile, key_set: KeySet) -> Callable[..., Bench]:
    from conformance.card import VirtualCard

    def make(features: frozenset[str] = frozenset(),
             personalization: Path = DEFAULT_PERSONALIZATION,
             bend: Callable[[bytes, bytes], bytes] | None = None) -> Bench:
        card = VirtualCard.personalize(profile, load_personalization(personalization, profile),
                                       key_set, features=features)
        return Bench(profile, key_set, Recorder(card, bend))

    return make


@pytest.fixture(params=["T=1", "T=0"])
def bench(request: pytest.FixtureRequest, make_bench: Callable[..., Bench]) -> Bench:
    """The normal card, answering data directly or (T=0) with 61xx and GET RESPONSE."""
    features = frozenset({"t0_get_response"}) if request.param == "T=0" else frozenset()
    return make_bench(features)


def other_keys(key_set: KeySet) -> KeySet:
    flipped = {f: bytes(b ^ 0x5A for b in k) for f, k in key_set.master_keys.items()}
    return dataclasses.replace(key_set, master_keys=flipped)


# ------------------------------------------------------------------------- operations


def test_get_reports_every_coding(bench: Bench) -> None:
    status, doc = bench.run("get", "11", "12", "5", "57", "17", "11")
    assert status == 0
    assert list(doc) == ["items"] and list(doc["items"]) == ["5", "11", "12", "17", "57"]
    items = doc["items"]
    assert items["11"] == "王测试" and items["12"] == "01" and items["57"] == "410100"
    assert items["17"] == ""  # unpersonalized AN
    assert len(items["5"]) == 360 and items["5"] == items["5"].upper()  # B: the whole item


def test_get_of_every_item_authenticates_once_per_df(bench: Bench) -> None:
    status, doc = bench.run("get", *map(str, range(1, 58)))
    assert status == 0 and len(doc["items"]) == 57
    assert bench.card.count(EXT_AUTH) == 3  # RK of DDF1, DF01 and DF02: one each
    first = bench.card.commands[0]
    assert first[1] == SELECT and first[5:7] == b"\xdd\xf1"  # from DDF1 down


def test_get_without_items_sends_nothing(bench: Bench) -> None:
    assert bench.run("get") == (0, {"items": {}})
    assert bench.opened == 0


def test_put_changes_only_the_named_items(bench: Bench) -> None:
    before = bench.run("get", *map(str, range(1, 58)))[1]["items"]
    status, doc = bench.run("put", items={"16": "13912345678", "17": "", "7": "20351231",
                                          "56": "01", "25": "李四"})
    assert (status, doc) == (0, {"status": "ok"})
    after = bench.run("get", *map(str, range(1, 58)))[1]["items"]
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {"16", "7", "56", "25"}
    assert after["16"] == "13912345678" and after["25"] == "李四" and after["17"] == ""


def test_put_uses_secure_messaging_with_a_fresh_challenge(bench: Bench) -> None:
    bench.card.clear()
    assert bench.run("put", items={"16": "1", "21": "2"})[0] == 0
    ins = bench.card.ins()
    sm = [i for i, c in enumerate(bench.card.commands) if c[:2] == b"\x04\xdc"]
    assert len(sm) == 2
    for i in sm:  # the command right before each SM write (GET RESPONSEs aside) is GET CHALLENGE
        before = [x for x in ins[:i] if x != GET_RESPONSE]
        assert before[-1] == GET_CHALLENGE
    assert bench.card.count(UPDATE_RECORD, cla=0x00) == 0


def test_append_and_read_allergies_newest_first(bench: Bench) -> None:
    assert bench.run("read-allergies") == (0, {"records": []})
    ok = (0, {"status": "ok"})
    assert bench.run("append-allergy", items={"58": "青霉素", "59": "皮疹"}) == ok
    assert bench.run("append-allergy", items={"58": "花粉"})[0] == 0
    assert bench.run("read-allergies") == (0, {"records": [{"58": "花粉", "59": ""},
                                                           {"58": "青霉素", "59": "皮疹"}]})
    appends = [c for c in bench.card.commands if c[:4] == b"\x00\xdc\x00\x03"]
    assert len(appends) == 2 and all(c[4] == 120 for c in appends)


def test_immunizations(bench: Bench) -> None:
    assert bench.run("append-immunization", items={"60": "乙肝疫苗", "61": "20240301"})[0] == 0
    records = [{"60": "乙肝疫苗", "61": "20240301"}]
    assert bench.run("read-immunizations") == (0, {"records": records})


def test_a_6a83_ends_the_record_list(make_bench: Callable[..., Bench]) -> None:
    def no_second(apdu: bytes, response: bytes) -> bytes:
        return b"\x6a\x83" if apdu[1] == READ_RECORD and apdu[2:4] == b"\x02\x04" else response

    bench = make_bench(bend=no_second)
    bench.run("append-allergy", items={"58": "一"})
    bench.run("append-allergy", items={"58": "二"})
    status, doc = bench.run("read-allergies")
    assert (status, doc) == (0, {"records": [{"58": "二", "59": ""}]})


def test_write_and_read_outpatient(bench: Bench, profile: CardProfile) -> None:
    status, doc = bench.run("write-outpatient", items={"213": "测试医院", "215": "20240301083000",
                                                       "383": "AB" * 64})
    assert (status, doc) == (0, {"status": "ok", "slot": 1})
    status, doc = bench.run("read-outpatient", "1")
    assert status == 0
    items = doc["items"]
    assert list(items) == [str(n) for n in range(213, 385)]
    assert items["213"] == "测试医院" and items["215"] == "20240301083000"
    assert items["383"] == "AB" * 64 and items["384"] == "00" * 190 and items["214"] == ""


def test_write_and_read_inpatient(bench: Bench) -> None:
    assert bench.run("write-inpatient", items={"64": "医院", "66": "20240301"}) == (
        0, {"status": "ok", "slot": 1})
    status, doc = bench.run("read-inpatient", "1")
    assert status == 0 and list(doc["items"]) == [str(n) for n in range(64, 213)]
    assert doc["items"]["66"] == "20240301"


def test_reading_a_free_slot_is_an_error(bench: Bench) -> None:
    status, doc = bench.run("read-outpatient", "2")
    assert status == 1 and doc["status"] == "error" and doc["message"].endswith("slot 2 is free")
    assert "sw" not in doc


def test_a_whole_record_replaces_the_old_one(bench: Bench) -> None:
    host = bench.host()
    for n in range(1, 6):
        host.mark_index("DF03/EF06", n)
    host.write_layout("DF03/ED01", {217: "旧内容", 215: "20200101000000"})
    for n in range(2, 6):
        host.write_layout(f"DF03/ED0{n}", {215: "20230101000000"})
    assert bench.run("write-outpatient", items={"213": "新"}) == (0, {"status": "ok", "slot": 1})
    items = bench.run("read-outpatient", "1")[1]["items"]
    assert items["213"] == "新" and items["217"] == "" and items["215"] == ""


# ------------------------------------------------------------------------- slot rule


def _mark(bench: Bench, index: str, slots: list[int]) -> None:
    host = bench.host()
    for n in slots:
        host.mark_index(index, n)


@pytest.mark.parametrize(("used", "slot"), [([], 1), ([1, 2], 3), ([1, 3, 4], 2)])
def test_the_first_free_slot(make_bench: Callable[..., Bench], used: list[int], slot: int) -> None:
    bench = make_bench()
    _mark(bench, "DF03/EF06", used)
    assert bench.run("write-outpatient", items={"213": "x"}) == (0, {"status": "ok", "slot": slot})


@pytest.mark.parametrize(("dates", "slot"), [
    (["20240301083000", "20240301082959", "20250101000000", "20240401000000", "20240302000000"], 2),
    (["20240301083000", "20240301083000", "20240301083000", "20240301083000", "20240301083000"], 1),
    (["20240301083000", "20240301083000", "", "20200101000000", "20240301083000"], 3),
])
def test_a_full_outpatient_index_takes_the_earliest_visit(
    make_bench: Callable[..., Bench], dates: list[str], slot: int
) -> None:
    bench = make_bench()
    _mark(bench, "DF03/EF06", [1, 2, 3, 4, 5])
    host = bench.host()
    for n, date in enumerate(dates, start=1):
        if date:
            host.write_layout(f"DF03/ED0{n}", {215: date})
    assert bench.run("write-outpatient", items={"213": "x"}) == (0, {"status": "ok", "slot": slot})


@pytest.mark.parametrize(("dates", "slot"), [
    ([("20240301", "20240310"), ("20240201", "20240320"), ("20240401", "20240402")], 2),
    ([("20240301", "20240310"), ("20240301", "20240305"), ("20240301", "20240305")], 2),
    ([("20240301", "20240310"), ("20240301", ""), ("20240301", "20240305")], 2),
])
def test_a_full_inpatient_index_takes_the_earliest_admission_then_discharge(
    make_bench: Callable[..., Bench], dates: list[tuple[str, str]], slot: int
) -> None:
    bench = make_bench()
    _mark(bench, "DF03/EF05", [1, 2, 3])
    host = bench.host()
    for n, (admission, discharge) in enumerate(dates, start=1):
        values = {66: admission, **({135: discharge} if discharge else {})}
        host.write_layout(f"DF03/EE0{n}", values)
    assert bench.run("write-inpatient", items={"64": "x"}) == (0, {"status": "ok", "slot": slot})


@pytest.mark.parametrize("used", [[], [2], [1, 2, 3, 4, 5]])
def test_the_slot_is_marked_before_it_is_written(make_bench: Callable[..., Bench],
                                                 used: list[int]) -> None:
    bench = make_bench()
    _mark(bench, "DF03/EF06", used)
    bench.card.clear()
    slot = bench.run("write-outpatient", items={"213": "x"})[1]["slot"]
    headers = bench.card.headers()
    mark = headers.index((*MARK, slot, 0x04))
    writes = [i for i, h in enumerate(headers) if h[1] == UPDATE_BINARY]
    assert writes and mark < writes[0]
    assert bench.card.commands[mark] == bytes([*MARK, slot, 0x04, 0x00])
    assert sum(len(bench.card.commands[i]) - 5 for i in writes) == 3267


# ------------------------------------------------------------------------- value rules


@pytest.mark.parametrize(("operation", "items", "why"), [
    ("put", {"16": "1" * 21}, "longer than"),
    ("put", {"25": "王测试王测试王测试王测试王测试王"}, "longer than"),
    ("put", {"16": "😀"}, "outside GBK"),
    ("put", {"19": "1a"}, "digits"),
    ("put", {"7": "202401011"}, "more than"),
    ("put", {"41": "1"}, "exactly 2 hex"),
    ("put", {"41": "ZZ"}, "not hexadecimal"),
    ("put", {"41": 1}, "JSON string"),
    ("put", {"11": "王"}, "does not write item 11"),
    ("put", {"57": "410100"}, "does not write item 57"),
    ("put", {"x": "1"}, "not a number"),
    ("append-allergy", {"60": "x"}, "does not write item 60"),
    ("append-immunization", {"61": "2024010"}, None),
    ("append-immunization", {"61": "202401011"}, "more than"),
    ("write-outpatient", {"383": "AB"}, "exactly 128"),
    ("write-outpatient", {"64": "x"}, "does not write item 64"),
    ("write-inpatient", {"66": "2024-01-01"}, "digits"),
])
def test_bad_values_are_refused_before_any_apdu(
    make_bench: Callable[..., Bench], operation: str, items: dict[str, Any], why: str | None
) -> None:
    bench = make_bench()
    status, doc = bench.run(operation, items=items)
    if why is None:  # a short CN value fits: accepted
        assert status == 0
        return
    assert status == 1 and doc["status"] == "error" and why in doc["message"] and "sw" not in doc
    assert bench.opened == 0 and bench.card.commands == []


@pytest.mark.parametrize(("operation", "args", "stdin", "why"), [
    ("get", ["58"], None, "1–57"),
    ("get", ["0"], None, "1–57"),
    ("get", ["eleven"], None, "not a number"),
    ("read-outpatient", ["6"], None, "not 1–5"),
    ("read-inpatient", ["4"], None, "not 1–3"),
    ("read-inpatient", [], None, "one argument"),
    ("read-allergies", ["1"], None, "no arguments"),
    ("put", [], "not json", "not one JSON"),
    ("put", [], '{"16": "1"}', '{"items"'),
    ("frobnicate", [], None, "unknown operation"),
])
def test_bad_requests_are_refused_before_any_apdu(
    make_bench: Callable[..., Bench], operation: str, args: list[str], stdin: str | None,
    why: str
) -> None:
    bench = make_bench()
    status, doc = bench.run(operation, *args, stdin=stdin)
    assert status == 1 and why in doc["message"] and bench.opened == 0


def test_values_up_to_the_first_padding(make_bench: Callable[..., Bench]) -> None:
    def garbage_after_padding(apdu: bytes, response: bytes) -> bytes:
        if apdu[1] == READ_RECORD and apdu[2] == 2 and response[:2] == b"\x10\x14":
            value = b"139" + b"\x00" + b"\x31" * 16
            return response[:2] + value + response[-2:]
        return response

    bench = make_bench(bend=garbage_after_padding)
    assert bench.run("get", "16") == (0, {"items": {"16": "139"}})


# ------------------------------------------------------------------------- T=0 and status words


def test_get_response_after_every_61xx(make_bench: Callable[..., Bench]) -> None:
    bench = make_bench(frozenset({"t0_get_response"}))
    assert bench.run("read-outpatient", "1")[0] == 1  # free, but the index was read
    assert bench.run("get", *map(str, range(1, 58)))[0] == 0
    for i, response in enumerate(bench.card.responses):
        if response[-2] == 0x61:
            assert bench.card.commands[i + 1] == bytes([0, GET_RESPONSE, 0, 0, response[-1]])


def test_6cxx_is_resent_with_the_corrected_le_also_on_get_response(
    make_bench: Callable[..., Bench]
) -> None:
    def fussy(apdu: bytes, response: bytes) -> bytes:
        """Le = 00 on READ RECORD gets 6Cxx; every other 61xx announces one byte too few,
        so the GET RESPONSE that follows gets 6Cxx from the card."""
        whole = apdu[1] == READ_RECORD and len(apdu) == 5 and apdu[4] == 0
        if response[-2] == 0x61:
            return bytes([0x6C, response[-1]]) if whole else bytes([0x61, response[-1] - 1])
        return response

    bench = make_bench(frozenset({"t0_get_response"}), bend=fussy)
    status, doc = bench.run("get", "11", "16")
    assert (status, doc) == (0, {"items": {"11": "王测试", "16": "13800000000"}})
    cmds, resps = bench.card.commands, bench.card.responses
    sixc = [i for i, r in enumerate(resps) if r[-2] == 0x6C]
    assert any(cmds[i][1] == GET_RESPONSE for i in sixc)
    assert any(cmds[i][1] == READ_RECORD for i in sixc)
    for i in sixc:  # the same command again, with Le = the SW2 of the 6Cxx
        assert cmds[i + 1][:4] == cmds[i][:4] and cmds[i + 1][-1] == resps[i][-1]


def test_a_refused_authentication_stops_the_transaction(
    make_bench: Callable[..., Bench], key_set: KeySet
) -> None:
    bench = make_bench()
    status, doc = bench.run("get", "11", "25", keys=other_keys(key_set))
    assert status == 1 and doc["sw"] == "63CE" and doc["status"] == "error"
    assert bench.card.count(EXT_AUTH) == 1
    assert bench.card.ins()[-1] == EXT_AUTH  # nothing after the refusal


def test_a_blocked_key_stops_the_transaction(make_bench: Callable[..., Bench]) -> None:
    def blocked(apdu: bytes, response: bytes) -> bytes:
        return b"\x69\x83" if apdu[1] == EXT_AUTH else response

    bench = make_bench(bend=blocked)
    status, doc = bench.run("read-allergies")
    assert status == 1 and doc["sw"] == "6983" and bench.card.count(EXT_AUTH) == 1


def test_an_unexpected_status_word_stops_it(make_bench: Callable[..., Bench]) -> None:
    def refuse_records(apdu: bytes, response: bytes) -> bytes:
        return b"\x6a\x82" if apdu[1] == SELECT and apdu[5:7] == b"\xdf\x01" else response

    bench = make_bench(bend=refuse_records)
    status, doc = bench.run("get", "11", "25", "41")
    assert status == 1 and doc["sw"] == "6A82"
    assert bench.card.commands[-1][5:7] == b"\xdf\x01"


# ------------------------------------------------------------------------- faults


def _shape(commands: list[bytes]) -> list[tuple[int, int, int, int]]:
    return [(c[0], c[1], c[2], c[3]) for c in commands]


def test_every_fault_has_a_case_and_both_titles() -> None:
    assert set(FAULTS) == {
        "skip_get_response", "reuse_challenge", "retry_refused_auth", "tlv_write_without_sm",
        "truncate_gbk_names", "ignore_index_slot", "mislabel_items", "no_select_before_read"}
    for fault in FAULTS.values():
        assert re.fullmatch(r"TERM-[A-Z0-9]+-\d{3}", fault.case) and fault.check
        assert fault.zh and fault.en


def test_skip_get_response(make_bench: Callable[..., Bench]) -> None:
    t0 = make_bench(frozenset({"t0_get_response"}))
    status, doc = t0.run("get", "11", faults=frozenset({"skip_get_response"}))
    assert status == 1 and doc["sw"].startswith("61")
    assert t0.card.count(GET_RESPONSE) == 0 and t0.card.responses[-1][-2] == 0x61
    plain, faulty = make_bench(), make_bench()  # without 61xx it behaves as the reference
    assert plain.run("get", "11", "16") == faulty.run("get", "11", "16",
                                                      faults=frozenset({"skip_get_response"}))
    assert _shape(plain.card.commands) == _shape(faulty.card.commands)


def test_reuse_challenge(make_bench: Callable[..., Bench]) -> None:
    bench = make_bench()
    status, doc = bench.run("put", items={"16": "1"}, faults=frozenset({"reuse_challenge"}))
    assert status == 1 and doc["sw"] == "6985"
    assert bench.card.count(GET_CHALLENGE) == 1
    reference = make_bench()
    assert reference.run("put", items={"16": "1"}) == (0, {"status": "ok"})
    assert reference.card.count(GET_CHALLENGE) == 3  # X = R1, R2, then R for the SM write
    single, faulty = make_bench(), make_bench()  # one challenge in all: nothing to reuse
    assert single.run("get", "11") == faulty.run("get", "11", faults=frozenset({"reuse_challenge"}))


def test_retry_refused_auth(make_bench: Callable[..., Bench], key_set: KeySet) -> None:
    bench = make_bench()
    status, doc = bench.run("get", "11", keys=other_keys(key_set),
                            faults=frozenset({"retry_refused_auth"}))
    assert status == 1 and doc["sw"] == "63CD" and bench.card.count(EXT_AUTH) == 2
    plain, faulty = make_bench(), make_bench()
    assert plain.run("get", "11", "25") == faulty.run("get", "11", "25",
                                                      faults=frozenset({"retry_refused_auth"}))
    assert _shape(plain.card.commands) == _shape(faulty.card.commands)


def test_tlv_write_without_sm(make_bench: Callable[..., Bench]) -> None:
    bench = make_bench()
    status, doc = bench.run("put", items={"16": "1"}, faults=frozenset({"tlv_write_without_sm"}))
    assert status == 1 and doc["sw"] == "6982"
    write = bench.card.commands[-1]
    assert write[:4] == b"\x00\xdc\x02\x04" and write[5:7] == b"\x10\x14"
    assert bench.card.count(UPDATE_RECORD, cla=0x04) == 0
    plain, faulty = make_bench(), make_bench()  # reading and cyclic appends are unchanged
    for b, f in ((plain, frozenset()), (faulty, frozenset({"tlv_write_without_sm"}))):
        b.run("append-allergy", items={"58": "x"}, faults=f)
        b.run("get", "16", faults=f)
    assert _shape(plain.card.commands) == _shape(faulty.card.commands)


def test_truncate_gbk_names(make_bench: Callable[..., Bench]) -> None:
    bench = make_bench(personalization=LONG_NAME)
    full = bench.run("get", *map(str, range(1, 58)))[1]["items"]
    cut = bench.run("get", *map(str, range(1, 58)),
                    faults=frozenset({"truncate_gbk_names"}))[1]["items"]
    assert full["11"] == "欧阳司马诸葛上官东方皇甫尉迟公" and cut["11"] == "欧阳司马诸葛上官东方"
    assert {k for k in full if full[k] != cut[k]} <= {"11", "25", "28", "31"}
    assert {k: v for k, v in full.items() if len(v.encode("gbk")) <= 20 or k not in (
        "11", "25", "28", "31")} == {k: v for k, v in cut.items() if len(
        full[k].encode("gbk")) <= 20 or k not in ("11", "25", "28", "31")}
    short = make_bench()  # a name within 20 bytes is read whole
    assert short.run("get", "11", faults=frozenset({"truncate_gbk_names"}))[1] == {
        "items": {"11": "王测试"}}


def test_ignore_index_slot(make_bench: Callable[..., Bench]) -> None:
    bench = make_bench()
    _mark(bench, "DF03/EF06", [1, 2])
    bench.card.clear()
    doc = bench.run("write-outpatient", items={"213": "x"}, faults=frozenset({"ignore_index_slot"}))
    assert doc == (0, {"status": "ok", "slot": 1})
    assert bench.card.count(READ_RECORD) == 1  # the city code only: no index record read
    assert (*MARK, 1, 0x04) in bench.card.headers()  # still marked before writing
    empty = make_bench()  # with an empty index slot 1 is right anyway
    assert empty.run("write-outpatient", items={"213": "x"},
                     faults=frozenset({"ignore_index_slot"}))[1]["slot"] == 1


def test_mislabel_items(make_bench: Callable[..., Bench]) -> None:
    bench = make_bench()
    assert bench.run("get", "11", "16", faults=frozenset({"mislabel_items"})) == (
        0, {"items": {"12": "王测试", "17": "13800000000"}})
    bench.run("append-allergy", items={"58": "青霉素", "59": "皮疹"})
    assert bench.run("read-allergies", faults=frozenset({"mislabel_items"}))[1] == {
        "records": [{"59": "青霉素", "60": "皮疹"}]}
    plain = make_bench()
    plain.card.clear()
    bench.card.clear()
    plain.run("get", "11", "16")
    bench.run("get", "11", "16", faults=frozenset({"mislabel_items"}))
    assert _shape(plain.card.commands) == _shape(bench.card.commands)  # same APDUs


def test_no_select_before_read(make_bench: Callable[..., Bench]) -> None:
    bench = make_bench()
    status, doc = bench.run("get", "11", faults=frozenset({"no_select_before_read"}))
    assert status == 1 and doc["sw"] == "6986"
    assert bench.card.count(SELECT) == 0 and bench.card.ins() == [READ_RECORD]


# ------------------------------------------------------------------------- the program


def _program(*words: str, stdin: str = "", env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "conformance.cli", "terminal", "reference",
                           *words], input=stdin, capture_output=True, text=True, timeout=60,
                          env=environment, check=False)


def test_the_program_prints_one_json_document_on_refusal() -> None:
    done = _program("put", stdin='{"items": {"16": "1234567890123456789012"}}',
                    env={"RHC_READER": "no such reader", "RHC_KEYS": str(DEFAULT_TEST_KEYS)})
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    assert doc["status"] == "error" and "longer than" in doc["message"]
    done = _program("--fault", "no_such_fault", "get", "11")
    assert done.returncode == 1 and "unknown terminal fault" in json.loads(done.stdout)["message"]
    done = _program("get")
    assert done.returncode == 0 and json.loads(done.stdout) == {"items": {}}


def test_the_program_without_a_reader_reports_the_bench(tmp_path: Path) -> None:
    done = _program("get", "11", env={"RHC_READER": "", "RHC_KEYS": str(DEFAULT_TEST_KEYS)})
    doc = json.loads(done.stdout)
    assert done.returncode == 1 and "RHC_READER" in doc["message"]


# ------------------------------------------------------------------------- profiles

TERMINALS = ROOT / "conformance" / "profiles" / "terminals"
PROFILE_KEYS = {"name", "vendor", "model", "version", "kind", "mode", "command", "operations",
                "uses_sam", "timeout_s"}


def _terminal_profile(name: str) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((TERMINALS / name).read_text(encoding="utf-8"))


def test_the_reference_profile_declares_every_operation() -> None:
    from conformance.terminal_ref.operations import OPERATIONS

    doc = _terminal_profile("reference.yaml")
    assert set(doc) == PROFILE_KEYS and doc["kind"] == "terminal" and doc["mode"] == "command"
    assert doc["command"] == ["rhc", "terminal", "reference"] and doc["uses_sam"] is False
    assert doc["operations"] == list(OPERATIONS)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_one_faulty_profile_per_fault(fault: str) -> None:
    doc = _terminal_profile(f"faulty-{fault.replace('_', '-')}.yaml")
    reference = _terminal_profile("reference.yaml")
    assert doc["command"] == [*reference["command"], "--fault", fault]
    assert {k: v for k, v in doc.items() if k not in ("name", "model", "command")} == {
        k: v for k, v in reference.items() if k not in ("name", "model", "command")}


def test_the_terminal_never_imports_the_card() -> None:
    """Like the host, the reference terminal knows the card only through a transport."""
    code = (
        "import sys, conformance.terminal_ref.cli\n"
        "bad = sorted(m for m in sys.modules if m == 'conformance.card' "
        "or m.startswith('conformance.card.'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={
        **os.environ, "PYTHONPATH": str(ROOT)})
