"""The in-process transport over any ApduResponder."""

from __future__ import annotations

import pytest

from conformance.transport.base import ApduResponder, BenchError, Transport
from conformance.transport.inprocess import InProcessTransport


class Counter:
    """Answers every APDU with a running counter; each reset gives a new ATR."""

    def __init__(self) -> None:
        self.resets = 0
        self.seen: list[bytes] = []

    def reset(self) -> bytes:
        self.resets += 1
        return bytes([0x3B, 0x00 + self.resets])

    def process(self, apdu: bytes) -> bytes:
        self.seen.append(apdu)
        return bytearray([len(self.seen), 0x90, 0x00])


class Broken:
    def __init__(self, reset_result: object = b"\x3b\x00", process_result: object = None):
        self.reset_result = reset_result
        self.process_result = process_result

    def reset(self) -> bytes:
        if isinstance(self.reset_result, Exception):
            raise self.reset_result
        return self.reset_result  # type: ignore[return-value]

    def process(self, apdu: bytes) -> bytes:
        if isinstance(self.process_result, Exception):
            raise self.process_result
        return self.process_result  # type: ignore[return-value]


def test_is_a_transport_and_the_counter_a_responder() -> None:
    card = Counter()
    assert isinstance(card, ApduResponder)
    transport = InProcessTransport(card)
    assert isinstance(transport, Transport)
    assert transport.name == "virtual"
    assert InProcessTransport(Counter(), name="card-7").name == "card-7"


def test_atr_comes_from_reset_at_construction() -> None:
    card = Counter()
    transport = InProcessTransport(card)
    assert card.resets == 1
    assert transport.atr == b"\x3b\x01"


def test_transmit_passes_bytes_both_ways() -> None:
    card = Counter()
    transport = InProcessTransport(card)
    response = transport.transmit(bytearray.fromhex("00A4000C023F00"))
    assert response == bytes.fromhex("019000")
    assert type(response) is bytes
    assert card.seen == [bytes.fromhex("00A4000C023F00")]
    assert type(card.seen[0]) is bytes
    assert transport.transmit(memoryview(bytes.fromhex("00B0000000"))) == bytes.fromhex("029000")


def test_reset_calls_the_responder_and_updates_the_atr() -> None:
    card = Counter()
    transport = InProcessTransport(card)
    assert transport.reset() == b"\x3b\x02"
    assert transport.atr == b"\x3b\x02"
    assert card.resets == 2


def test_closed_transport_refuses() -> None:
    with InProcessTransport(Counter()) as transport:
        transport.transmit(b"\x00\x00\x00\x00")
    with pytest.raises(BenchError, match="closed"):
        transport.transmit(b"\x00\x00\x00\x00")
    with pytest.raises(BenchError, match="closed"):
        transport.reset()
    transport.close()  # idempotent


def test_responder_exceptions_become_bench_errors() -> None:
    with pytest.raises(BenchError, match="failed in reset\\(\\): ValueError: no power"):
        InProcessTransport(Broken(reset_result=ValueError("no power")))
    transport = InProcessTransport(Broken(process_result=KeyError("x")))
    with pytest.raises(BenchError, match="failed in process\\(\\): KeyError"):
        transport.transmit(b"\x00\xa4\x00\x00")


def test_bench_errors_from_the_responder_pass_unchanged() -> None:
    error = BenchError("reader gone")
    transport = InProcessTransport(Broken(process_result=error))
    with pytest.raises(BenchError) as info:
        transport.transmit(b"\x00\xa4\x00\x00")
    assert info.value is error


@pytest.mark.parametrize("bad", [None, "9000", b"\x90", b""])
def test_malformed_responses_are_bench_errors(bad: object) -> None:
    transport = InProcessTransport(Broken(process_result=bad))
    with pytest.raises(BenchError):
        transport.transmit(b"\x00\xa4\x00\x00")
