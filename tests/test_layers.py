"""Tests of the transport layers (T=0 handling, trace) and of secret redaction.

Everything runs over scripted fake transports, so each test states exactly which bytes the
card saw and what it answered: the T=0 layer is audited by what crossed the wire.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.model import load_profile
from conformance.transport.base import BenchError, CardUnresponsive, Transport
from conformance.transport.layers import (
    T0Layer,
    T0Rules,
    TraceEntry,
    TraceLayer,
    Wire,
    build_stack,
    from_jsonl,
    to_jsonl,
)
from conformance.transport.redact import MASK_PREFIX, RedactionRules, Redactor, SecretRule

ATR = bytes.fromhex("3B6D0000") + bytes(range(1, 9)) + bytes.fromhex("4843201701")
SALT = bytes(range(16))
PROFILE = load_profile()
T0 = T0Rules.from_profile(PROFILE)


def redactor(salt: bytes | None = SALT) -> Redactor:
    return Redactor.from_profile(PROFILE, salt)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


class Scripted:
    """A fake card that expects exact commands, in order, and answers from a script."""

    def __init__(self, script: list[tuple[str, str | Exception]], atr: bytes = ATR) -> None:
        self.script = [
            (h(cmd), ans if isinstance(ans, Exception) else h(ans)) for cmd, ans in script
        ]
        self.sent: list[bytes] = []
        self._atr = atr
        self.reset_error: Exception | None = None
        self.resets = 0
        self.closed = False

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def name(self) -> str:
        return "scripted"

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        assert self.script, f"unexpected command {apdu.hex().upper()}"
        expected, answer = self.script.pop(0)
        assert apdu == expected, (
            f"sent {apdu.hex().upper()}, script expected {expected.hex().upper()}"
        )
        if isinstance(answer, Exception):
            raise answer
        return answer

    def reset(self) -> bytes:
        self.resets += 1
        if self.reset_error is not None:
            raise self.reset_error
        return self._atr

    def close(self) -> None:
        self.closed = True

    def done(self) -> bool:
        return not self.script


class Answering:
    """A fake card whose answers come from a function (for property tests)."""

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self.answer = answer

    @property
    def atr(self) -> bytes:
        return ATR

    @property
    def name(self) -> str:
        return "answering"

    def transmit(self, apdu: bytes) -> bytes:
        return self.answer(apdu)

    def reset(self) -> bytes:
        return ATR

    def close(self) -> None:
        pass


class StepClock:
    """A monotonic clock that advances one second per reading (integral: no stray digits)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def sent_on_wire(wires: list[Wire]) -> list[tuple[bytes, bytes]]:
    """The (command, response) pairs a T0Layer noted, without their end times."""
    return [(command, response) for command, response, _ in wires]


# --------------------------------------------------------------------------- T0Layer


def test_layers_are_transports_and_delegate() -> None:
    card = Scripted([])
    t0 = T0Layer(card, rules=T0)
    trace = TraceLayer(t0, redactor=redactor())
    for layer in (t0, trace):
        assert isinstance(layer, Transport)
        assert layer.atr == ATR
        assert layer.name == "scripted"
    assert trace.reset() == ATR and card.resets == 1
    trace.close()
    assert card.closed


def test_61xx_chaining_over_several_rounds() -> None:
    data = bytes(range(0x20))
    card = Scripted(
        [
            ("80FA0000 10" + "11" * 16, "6110"),
            ("00C0000010", data[:16].hex() + "6110"),
            ("00C0000010", data[16:24].hex() + "6108"),
            ("00C0000008", data[24:].hex() + "9000"),
        ]
    )
    wires: list[Wire] = []
    t0 = T0Layer(card, rules=T0)
    assert t0.transmit(h("80FA0000 10" + "11" * 16), wires) == data + h("9000")
    assert card.done()
    assert [c for c, _ in sent_on_wire(wires)] == card.sent  # every exchange was noted
    assert [r[-2:] for _, r in sent_on_wire(wires)] == [h("6110"), h("6110"), h("6108"), h("9000")]


def test_61xx_with_le_00_asks_for_256_bytes() -> None:
    card = Scripted([("00B0000000", "6100"), ("00C0000000", "AA" * 256 + "9000")])
    assert T0Layer(card, rules=T0).transmit(h("00B0000000")) == h("AA" * 256 + "9000")


def test_t0_rules_come_from_the_profile_and_are_data() -> None:
    assert T0Rules(0x00, 0xC0, 0x61, 0x6C) == T0
    lab = T0Rules(get_response_cla=0x80, get_response_ins=0xC0, bytes_available=0x61,
                  wrong_le=0x6C)
    card = Scripted([("00B2010400", "6103"), ("80C0000003", "010203 9000")])
    assert T0Layer(card, rules=lab).transmit(h("00B2010400")) == h("010203 9000")


def test_get_response_ending_in_error_returns_collected_data_and_last_sw() -> None:
    card = Scripted([("00B0000000", "6104"), ("00C0000004", "0102 6110"), ("00C0000010", "6F00")])
    assert T0Layer(card, rules=T0).transmit(h("00B0000000")) == h("0102 6F00")


def test_endless_61xx_is_a_bench_error_after_the_bound() -> None:
    card = Answering(lambda apdu: h("6101"))
    wires: list[Wire] = []
    t0 = T0Layer(card, rules=T0, max_rounds=32)
    with pytest.raises(BenchError, match="32 GET RESPONSE rounds"):
        t0.transmit(h("00B0000001"), wires)
    assert len(wires) == 33  # the command and 32 GET RESPONSEs, then the layer gave up


def test_6cxx_resends_a_case2_command_with_the_right_le() -> None:
    card = Scripted([("00B2010420", "6C10"), ("00B2010410", "AB" * 16 + "9000")])
    wires: list[Wire] = []
    t0 = T0Layer(card, rules=T0)
    assert t0.transmit(h("00B2010420"), wires) == h("AB" * 16 + "9000")
    assert [c for c, _ in sent_on_wire(wires)] == [h("00B2010420"), h("00B2010410")]


def test_a_second_6cxx_is_returned_as_is() -> None:
    card = Scripted([("00B2010420", "6C10"), ("00B2010410", "6C08")])
    assert T0Layer(card, rules=T0).transmit(h("00B2010420")) == h("6C08")
    assert card.done()


def test_6cxx_resend_then_61xx_chaining() -> None:
    card = Scripted(
        [("00B0000000", "6C04"), ("00B0000004", "6104"), ("00C0000004", "01020304 9000")]
    )
    assert T0Layer(card, rules=T0).transmit(h("00B0000000")) == h("01020304 9000")


@pytest.mark.parametrize(
    "command",
    [
        "00B20104",  # case 1: no Le to correct
        "00A4000002DF01",  # case 3
        "00A4000002DF0100",  # case 4
        "00B00000000020",  # case 2 extended: not supported by the profile, left alone
    ],
)
def test_6cxx_to_other_cases_is_returned_as_is(command: str) -> None:
    card = Scripted([(command, "6C10")])
    assert T0Layer(card, rules=T0).transmit(h(command)) == h("6C10")


def test_auto_6c_off_returns_6cxx_but_still_chains_61xx() -> None:
    card = Scripted([("00B2010420", "6C10"), ("00B2010410", "6102"), ("00C0000002", "AABB9000")])
    t0 = T0Layer(card, rules=T0, auto_6c=False)
    assert t0.transmit(h("00B2010420")) == h("6C10")
    assert t0.transmit(h("00B2010410")) == h("AABB9000")


def test_raw_bypasses_all_handling_and_still_notes_the_wire() -> None:
    card = Scripted([("00B2010420", "6C10"), ("0084000008", "6108")])
    wires: list[Wire] = []
    t0 = T0Layer(card, rules=T0)
    assert t0.raw(h("00B2010420"), wires) == h("6C10")
    assert t0.raw(h("0084000008"), wires) == h("6108")
    assert sent_on_wire(wires) == [(h("00B2010420"), h("6C10")), (h("0084000008"), h("6108"))]
    assert card.done()


def test_bench_error_mid_chain_propagates() -> None:
    card = Scripted([("00B0000000", "6110"), ("00C0000010", CardUnresponsive("no answer in 5 s"))])
    with pytest.raises(CardUnresponsive):
        T0Layer(card, rules=T0).transmit(h("00B0000000"))


# --------------------------------------------------------------------------- TraceLayer


def test_trace_records_logical_exchange_with_wire_exchanges_beneath() -> None:
    card = Scripted(
        [
            ("00A4000002DF01", "9000"),
            ("00B2010420", "6C10"),
            ("00B2010410", "6110"),
            ("00C0000010", "AB" * 16 + "9000"),
        ]
    )
    trace = build_stack(card, profile=PROFILE, redactor=redactor(), clock=StepClock())
    trace.transmit(h("00A4000002DF01"))
    trace.transmit(h("00B2010420"), note="wrong Le on purpose")
    select, sel_wire, read, *read_wire = trace.entries
    assert (select.wire, select.parent, select.sw) == (False, None, "9000")
    assert (sel_wire.wire, sel_wire.parent) == (True, select.seq)
    assert read.command == "00B2010420"  # what the case sent
    assert read.response == "AB" * 16 + "9000"
    assert read.note == "wrong Le on purpose"
    assert [w.command for w in read_wire] == ["00B2010420", "00B2010410", "00C0000010"]
    assert [w.sw for w in read_wire] == ["6C10", "6110", "9000"]  # what crossed the wire
    assert all(w.wire and w.parent == read.seq for w in read_wire)
    assert [e.seq for e in trace.entries] == [1, 2, 3, 4, 5, 6]


def test_timestamps_are_monotonic_and_wire_nests_inside_its_exchange() -> None:
    card = Scripted([("00B0000000", "6102"), ("00C0000002", "0102 9000")])
    trace = build_stack(card, profile=PROFILE, redactor=redactor(), clock=StepClock())
    trace.transmit(h("00B0000000"))
    logical, w1, w2 = trace.entries
    for e in trace.entries:
        assert e.t_end >= e.t_start
        assert e.duration_ms == pytest.approx((e.t_end - e.t_start) * 1000)
    assert logical.t_start <= w1.t_start <= w1.t_end <= w2.t_start <= w2.t_end <= logical.t_end


def test_real_monotonic_clock_by_default() -> None:
    card = Answering(lambda apdu: h("9000"))
    trace = TraceLayer(card, redactor=redactor(None))
    before = time.monotonic()
    for _ in range(3):
        trace.transmit(h("00A4000002DF01"))
    after = time.monotonic()
    starts = [e.t_start for e in trace.entries]
    assert starts == sorted(starts)
    assert all(before <= e.t_start <= e.t_end <= after for e in trace.entries)


def test_trace_without_t0_below_records_only_logical_exchanges() -> None:
    card = Scripted([("00B2010420", "6C10")])
    trace = TraceLayer(card, redactor=redactor())
    assert trace.raw(h("00B2010420")) == h("6C10")  # no raw below: plain transmit
    (entry,) = trace.entries
    assert (entry.wire, entry.sw) == (False, "6C10")


def test_trace_raw_bypasses_the_t0_layer_below() -> None:
    card = Scripted([("00B2010420", "6C10")])
    trace = build_stack(card, profile=PROFILE, redactor=redactor())
    assert trace.raw(h("00B2010420"), note="expects 6C10") == h("6C10")
    logical, wire = trace.entries
    assert logical.sw == wire.sw == "6C10" and logical.note == "expects 6C10"


def test_mark_and_since_slice_one_case() -> None:
    card = Answering(lambda apdu: h("9000"))
    trace = build_stack(card, profile=PROFILE, redactor=redactor(), clock=StepClock())
    trace.transmit(h("00A40000023F00"))
    mark = trace.mark()
    trace.annotate("case SEC-RD-DF01-003 begins")
    trace.transmit(h("00A4000002DF01"))
    case_slice = trace.since(mark)
    assert [e.note for e in case_slice] == ["case SEC-RD-DF01-003 begins", None, None]
    assert case_slice[0].command == "" and case_slice[0].response is None
    assert [e.command for e in case_slice[1:]] == ["00A4000002DF01"] * 2
    assert trace.since(trace.mark()) == []
    assert trace.entries[:mark] + case_slice == trace.entries


def test_jsonl_round_trip_with_stable_keys_and_chinese_text() -> None:
    card = Scripted([("0084000008", "6108"), ("00C0000008", "0102030405060708 9000")])
    trace = build_stack(card, profile=PROFILE, redactor=redactor(), clock=StepClock())
    trace.annotate("用例 SEC-RD-DF01-003 开始")
    trace.transmit(h("0084000008"))
    trace.reset()
    text = trace.to_jsonl()
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == len(trace.entries) == 5
    keys = [f.name for f in TraceEntry.__dataclass_fields__.values()]
    for line, entry in zip(lines, trace.entries, strict=True):
        obj = json.loads(line)
        assert list(obj) == keys
        assert obj == entry.to_dict()
    assert "用例" in lines[0]  # ensure_ascii=False: readable, not \\u escapes
    assert from_jsonl(text) == trace.entries
    assert to_jsonl(trace.since(1)) == "".join(line + "\n" for line in lines[1:])


def test_jsonl_lines_are_what_json_dumps_writes() -> None:
    entries = [
        TraceEntry(1, 0.1, 0.30000000000000004, "00B2010400", "6103", "6103", 200.0, True, 7),
        TraceEntry(2, 1e-7, 3.0, "", None, None, 0.0, note='quote " back\\slash\n用例\x01'),
        TraceEntry(3, 5, 6, "RESET", None, None, 1000.0, error="BenchError: 卡 \"gone\""),
    ]
    expected = "".join(
        json.dumps(e.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
        for e in entries
    )
    assert to_jsonl(entries) == expected
    assert from_jsonl(expected) == entries


def test_evidence_is_the_jsonl_of_the_case_slice() -> None:
    card = Scripted([("0084000008", "6108"), ("00C0000008", "1122334455667788 9000"),
                     ("00B2010400", "6103"), ("00C0000003", "AABBCC 9000")])
    trace = build_stack(card, profile=PROFILE, redactor=redactor(), clock=StepClock())
    trace.transmit(h("0084000008"))
    mark = trace.mark()
    trace.annotate("用例 begins")
    trace.transmit(h("00B2010400"))
    trace.reset()
    assert trace.evidence(mark) == to_jsonl(trace.since(mark))
    assert trace.evidence(0) == trace.to_jsonl()
    assert "1122334455667788" not in trace.evidence(0)  # the challenge stays masked


def test_release_keeps_one_case_in_memory() -> None:
    card = Answering(lambda apdu: h("9000"))
    trace = build_stack(card, profile=PROFILE, redactor=redactor(), clock=StepClock())
    for _ in range(1000):
        mark = trace.mark()
        trace.transmit(h("00A40000023F00"))
        assert len(trace.since(mark)) == 2
        trace.release()
    assert trace.entries == [] and trace.mark() == 0
    trace.transmit(h("00A40000023F00"))
    assert [e.seq for e in trace.entries] == [2001, 2002]  # numbering goes on


def test_bench_error_is_recorded_and_reraised() -> None:
    card = Scripted(
        [
            ("00B0000000", "6110"),
            ("00C0000010", BenchError("Card was removed (0x80100069)")),
        ]
    )
    trace = build_stack(card, profile=PROFILE, redactor=redactor(), clock=StepClock())
    with pytest.raises(BenchError, match="Card was removed"):
        trace.transmit(h("00B0000000"))
    logical, wire = trace.entries
    assert logical.error == "BenchError: Card was removed (0x80100069)"
    assert logical.response is None and logical.sw is None
    assert wire.sw == "6110" and wire.parent == logical.seq  # the exchange that did happen
    # the layer is usable again afterwards (a reconnect is the caller's business)
    card.script.append((h("00A40000023F00"), h("9000")))
    trace.transmit(h("00A40000023F00"))
    assert trace.entries[-1].sw == "9000"


def test_error_messages_are_scrubbed_of_secrets() -> None:
    cryptogram = h("0011223344556677 8899AABBCCDDEEFF")
    command = h("0082008511") + cryptogram + h("01")
    spaced = " ".join(f"{b:02X}" for b in command)
    card = Scripted([(command.hex(), BenchError(f"Transaction failed sending {spaced}"))])
    masker = redactor()
    trace = TraceLayer(card, redactor=masker)
    with pytest.raises(BenchError):
        trace.transmit(command)
    (entry,) = trace.entries
    assert "00 11 22 33" not in entry.error and "0011223344" not in trace.to_jsonl()
    assert masker.mask(cryptogram) in entry.error


def test_reset_is_recorded_with_the_atr() -> None:
    card = Scripted([])
    trace = TraceLayer(T0Layer(card, rules=T0), redactor=redactor(), clock=StepClock())
    assert trace.reset() == ATR
    (entry,) = trace.entries
    assert (entry.command, entry.response, entry.sw, entry.error) == (
        "RESET",
        ATR.hex().upper(),
        None,
        None,
    )
    assert entry.t_end > entry.t_start


def test_failed_reset_is_recorded_and_reraised() -> None:
    card = Scripted([])
    card.reset_error = BenchError("reader gone")
    trace = TraceLayer(card, redactor=redactor())
    with pytest.raises(BenchError):
        trace.reset()
    (entry,) = trace.entries
    assert (entry.command, entry.response, entry.error) == (
        "RESET",
        None,
        "BenchError: reader gone",
    )


def test_wire_reported_outside_a_traced_exchange_is_kept() -> None:
    card = Scripted([("00A40000023F00", "9000")])
    trace = build_stack(card, profile=PROFILE, redactor=redactor())
    trace.inner.transmit(h("00A40000023F00"))  # type: ignore[attr-defined]
    (entry,) = trace.entries
    assert entry.wire and entry.parent is None and "outside" in (entry.note or "")


# --------------------------------------------------------------------------- Redactor


def test_digest_is_salted_sha256_prefix() -> None:
    secret = h("0102030405060708")
    masker = redactor()
    assert masker.digest(secret) == hashlib.sha256(SALT + secret).hexdigest()[:16]
    assert masker.mask(secret) == f"<secret:sha256-salted:{masker.digest(secret)}>"
    assert redactor(b"other salt").digest(secret) != masker.digest(secret)
    assert len(redactor(None).salt) == 16 and redactor(None).salt != redactor(None).salt
    assert SALT.hex() not in repr(masker) and "hidden" in repr(masker)


def test_external_authenticate_masks_cryptogram_and_x_keeps_header_and_trailer() -> None:
    r = redactor()
    secret = h("1111111111111111 2222222222222222")
    assert r.redact_command(h("0082008511") + secret + h("01")) == (
        "0082008511" + r.mask(secret) + "01"
    )
    # a trailer other than 01 stays visible too: it is what a 6A80 case is about
    assert r.redact_command(h("0082008511") + secret + h("02")).endswith(">02")
    # wrong class (a CLA-handling case) still carries a real cryptogram
    assert r.redact_command(h("8082008511") + secret + h("01")).startswith("8082008511<secret")


def test_malformed_secret_command_masks_everything_after_p3() -> None:
    r = redactor()
    body = h("1111111111111111 2222222222222222 01")
    assert r.redact_command(h("0082008512") + body) == "0082008512" + r.mask(body)


def test_get_challenge_response_masked_sw_visible() -> None:
    r = redactor()
    challenge = h("A1A2A3A4A5A6A7A8")
    assert r.redact_command(h("0084000008")) == "0084000008"
    assert r.redact_response(h("0084000008"), challenge + h("9000")) == r.mask(challenge) + "9000"
    assert r.redact_response(h("0084000004"), h("6700")) == "6700"


@pytest.mark.parametrize(
    ("head", "data", "tail"),
    [
        ("04DC0A0414", "EE" * 16 + "0A0B0C0D", ""),  # SM update E‖MAC
        ("0020000003", "123456", ""),  # VERIFY
        ("805E010007", "123456FF654321", ""),  # CHANGE PIN
        ("80DE210110", "0102030405060708A1A2A3A4A5A6A7A8", ""),  # SAM derivation data
        ("80FA000010", "00" * 16, "10"),  # SAM encrypt, case 4: Le stays visible
    ],
)
def test_secret_command_data_masked(head: str, data: str, tail: str) -> None:
    r = redactor()
    assert r.redact_command(h(head + data + tail)) == head + r.mask(h(data)) + tail


def test_public_commands_and_responses_are_left_alone() -> None:
    r = redactor()
    assert r.redact_command(h("00A4000002DF01")) == "00A4000002DF01"
    assert r.redact_command(h("00DC010406" + "0102030405FF")) == "00DC010406" + "0102030405FF"
    assert r.redact_response(h("00B2010400"), h("0102039000")) == "0102039000"
    assert r.redact_response(h("00A4000002DF01"), h("90")) == "90"  # malformed, nothing hides


def test_get_response_is_judged_by_the_command_it_collects_for() -> None:
    r = redactor()
    gr, result = h("00C0000010"), h("99" * 16 + "9000")
    assert r.redact_response(gr, result, origin=h("00B0000000")) == result.hex().upper()
    assert r.redact_response(gr, result, origin=h("80FA000008" + "00" * 8)) == (
        r.mask(h("99" * 16)) + "9000"
    )
    # origin unknown: masked, because it might be anything
    assert r.redact_response(gr, result) == r.mask(h("99" * 16)) + "9000"


def test_trace_masks_sam_result_collected_by_get_response() -> None:
    result = h("5A" * 16)
    card = Scripted([("80FA000010" + "00" * 16, "6110"), ("00C0000010", result.hex() + "9000")])
    r = redactor()
    trace = build_stack(card, profile=PROFILE, redactor=r)
    assert trace.transmit(h("80FA000010" + "00" * 16)) == result + h("9000")
    logical, cmd_wire, gr_wire = trace.entries
    assert logical.response == gr_wire.response == r.mask(result) + "9000"
    assert cmd_wire.command == logical.command == "80FA000010" + r.mask(bytes(16))
    assert gr_wire.command == "00C0000010"


def test_trace_masks_manual_get_response_after_a_secret_command() -> None:
    challenge = h("C1C2C3C4C5C6C7C8")
    card = Scripted([("0084000008", "6108"), ("00C0000008", challenge.hex() + "9000")])
    r = redactor()
    trace = TraceLayer(card, redactor=r)  # no T0Layer: the case collects the 61xx itself
    trace.transmit(h("0084000008"))
    trace.transmit(h("00C0000008"))
    assert trace.entries[-1].response == r.mask(challenge) + "9000"


def test_rules_come_from_the_profile_and_are_data() -> None:
    rules = RedactionRules.from_profile(PROFILE)
    assert rules.rule_for(h("04DC0104")) == SecretRule("update_record_sm", command_data=True)
    assert rules.rule_for(h("00DC0104")) is None  # plain UPDATE RECORD carries no secret
    assert rules.rule_for(h("80820085")) is not None  # any class: a CLA probe keeps its mask
    assert rules.rule_for(h("80DE2101")) is not None  # a SAM command of the profile
    write_key = SecretRule("write_key", command_data=True)
    own = RedactionRules({(0x80, 0xD4): write_key}, {}, rules.get_response_ins, 0x61)
    key = h("00112233445566778899AABBCCDDEEFF")
    r = Redactor(own, SALT)
    assert r.redact_command(h("80D4010010") + key) == "80D4010010" + r.mask(key)


# --------------------------------------------------------------------------- property

secret8 = st.binary(min_size=8, max_size=8)


def _fake_card(
    t0_style: bool, results: dict[int, bytes], fail_on: int | None
) -> Callable[[bytes], bytes]:
    """Answers like a card, 61xx-style if asked; may fail quoting the APDU in its message."""
    pending: list[bytes] = []
    count = [0]

    def answer(apdu: bytes) -> bytes:
        count[0] += 1
        if count[0] == fail_on:
            spaced = " ".join(f"{b:02x}" for b in apdu)
            raise BenchError(f"Transaction failed: {spaced} / {apdu.hex().upper()}")
        ins = apdu[1]
        if ins == 0xC0:
            return pending.pop() if pending else h("6985")
        if ins in results:
            full = results[ins] + h("9000")
            if t0_style:
                pending.append(full)
                return bytes([0x61, len(results[ins])])
            return full
        return h("9000")

    return answer


@settings(max_examples=150, deadline=None)
@given(
    challenge=secret8,
    cryptogram=secret8,
    x_input=secret8,
    auth_cla=st.sampled_from([0x00, 0x80, 0x84]),
    auth_lc=st.sampled_from([0x11, 0x10, 0x12, 0x08]),
    auth_extra=st.binary(max_size=2),
    sm_data=st.binary(min_size=20, max_size=68),
    pin=st.binary(min_size=8, max_size=16),
    new_pin=st.binary(min_size=8, max_size=16),
    derivation=st.binary(min_size=8, max_size=24),
    sam_input=st.binary(min_size=8, max_size=32),
    sam_result=st.binary(min_size=8, max_size=32),
    t0_style=st.booleans(),
    use_raw=st.booleans(),
    fail_on=st.one_of(st.none(), st.integers(min_value=1, max_value=14)),
)
def test_no_secret_field_ever_appears_in_the_jsonl(
    challenge: bytes,
    cryptogram: bytes,
    x_input: bytes,
    auth_cla: int,
    auth_lc: int,
    auth_extra: bytes,
    sm_data: bytes,
    pin: bytes,
    new_pin: bytes,
    derivation: bytes,
    sam_input: bytes,
    sam_result: bytes,
    t0_style: bool,
    use_raw: bool,
    fail_on: int | None,
) -> None:
    masker = redactor(None)
    card = Answering(_fake_card(t0_style, {0x84: challenge, 0xFA: sam_result}, fail_on))
    trace = build_stack(card, profile=PROFILE, redactor=masker, clock=StepClock())
    commands = [
        h("0084000008"),
        bytes([auth_cla])
        + h("820085")
        + bytes([auth_lc])
        + cryptogram
        + x_input
        + h("01")
        + auth_extra,
        h("0084000008"),
        h("04DC0104") + bytes([len(sm_data)]) + sm_data,
        h("00200000") + bytes([len(pin)]) + pin,
        h("805E0100") + bytes([len(pin) + 1 + len(new_pin)]) + pin + h("FF") + new_pin,
        h("80DE2101") + bytes([len(derivation)]) + derivation,
        h("80FA0000") + bytes([len(sam_input)]) + sam_input,
    ]
    for command in commands:
        try:
            (trace.raw if use_raw else trace.transmit)(command)
            if use_raw and command[1] in (0x84, 0xFA) and t0_style:
                trace.raw(
                    bytes(
                        [
                            0x00,
                            0xC0,
                            0x00,
                            0x00,
                            len(challenge if command[1] == 0x84 else sam_result),
                        ]
                    )
                )
        except BenchError:
            pass
    text = trace.to_jsonl().lower()
    secrets = [challenge, cryptogram, x_input, sm_data, pin, new_pin, derivation, sam_input]
    secrets.append(sam_result)
    for secret in secrets:
        assert secret.hex() not in text
        assert " ".join(f"{b:02x}" for b in secret) not in text
    assert masker.salt.hex() not in text
    assert all(json.loads(line) for line in text.splitlines())
    assert MASK_PREFIX in text
