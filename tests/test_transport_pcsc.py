"""End to end through the real PC/SC stack: pyscard → pcscd → vpcd → VpcdBridge → responder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from conformance.bench import insert_vpcd_card, pcscd_running, remove_vpcd_card, wait_for_card
from conformance.card.vpcd import VpcdBridge, vpcd_reader_name
from conformance.transport.base import BenchError, CardUnresponsive, Transport
from conformance.transport.pcsc import PcscTransport, describe_error, resolve_reader

READER = "Virtual PCD 00 00"
ATR = bytes.fromhex("3B6D0000") + bytes.fromhex("80 31 80 65 B0 87 27 01 BC 83 08 90 00")
ATR2 = bytes.fromhex("3B6D0000") + bytes(range(1, 14))

INS_HANG = 0xEE  # the scripted card never answers this instruction (until released)
INS_CRASH = 0xCC  # the scripted card raises on this one


class ScriptedCard:
    """A tiny ApduResponder: echoes the data field (or Le) with 90 00; counts resets."""

    def __init__(self, atr: bytes = ATR) -> None:
        self._atr = atr
        self.resets = 0
        self.commands: list[bytes] = []
        self.release = threading.Event()

    def reset(self) -> bytes:
        self.resets += 1
        return self._atr

    def process(self, apdu: bytes) -> bytes:
        self.commands.append(apdu)
        ins = apdu[1]
        if ins == INS_HANG:
            self.release.wait(60)
            return b"\x90\x00"
        if ins == INS_CRASH:
            raise RuntimeError("scripted card crashed")
        body = apdu[5 : 5 + apdu[4]] if len(apdu) > 5 else apdu[4:]
        return body + b"\x90\x00"  # echo the data field (or Le)


# -- reader selection (no pcscd needed) ----------------------------------------------------


READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01", "ACS ACR39U ICC Reader 00 00"]


def test_resolve_reader_exact_then_fullmatch_then_search() -> None:
    assert resolve_reader("Virtual PCD 00 01", READERS) == "Virtual PCD 00 01"
    assert resolve_reader(r"Virtual PCD 00 0[1]", READERS) == "Virtual PCD 00 01"
    assert resolve_reader("ACR39U", READERS) == "ACS ACR39U ICC Reader 00 00"
    assert resolve_reader("(?i)acs", READERS) == "ACS ACR39U ICC Reader 00 00"


def test_resolve_reader_ambiguous_lists_candidates() -> None:
    with pytest.raises(BenchError, match="ambiguous") as info:
        resolve_reader("Virtual PCD", READERS)
    assert "'Virtual PCD 00 00'" in str(info.value)
    assert "'Virtual PCD 00 01'" in str(info.value)


def test_resolve_reader_absent_and_invalid_regex_list_readers() -> None:
    for spec in ("Gemalto", "Virtual PCD (("):
        with pytest.raises(BenchError, match="Readers present") as info:
            resolve_reader(spec, READERS)
        for name in READERS:
            assert repr(name) in str(info.value)


def test_resolve_reader_without_any_reader() -> None:
    with pytest.raises(BenchError, match="no PC/SC readers at all"):
        resolve_reader("Virtual PCD 00 00", [])


def test_describe_error_names_the_code() -> None:
    assert describe_error(0x80100069) == "the card was removed (0x80100069)"
    assert "0x80100016" in describe_error(0x80100016)
    assert "0x80100016" in describe_error(0x80100016 - (1 << 32))  # signed form


def test_vpcd_reader_names() -> None:
    assert vpcd_reader_name(35963) == "Virtual PCD 00 00"
    assert vpcd_reader_name(35964) == "Virtual PCD 00 01"
    assert vpcd_reader_name(35965) == "Virtual PCD 2 00 00"  # scripts/setup.sh's entries
    assert vpcd_reader_name(35966) == "Virtual PCD 2 00 01"


def test_no_pcscd_is_a_clear_bench_error() -> None:
    # the pcsc-lite client honours PCSCLITE_CSOCK_NAME: point it at a socket nobody serves
    code = (
        "from conformance.transport.pcsc import list_readers\n"
        "from conformance.transport.base import BenchError\n"
        "try:\n    list_readers()\nexcept BenchError as e:\n    print(e)\n"
    )
    env = dict(os.environ, PCSCLITE_CSOCK_NAME="/nonexistent/pcscd.comm")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert "no pcscd running" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_vpcd_bridge_without_vpcd_is_a_clear_bench_error() -> None:
    bridge = VpcdBridge(ScriptedCard(), port=35999)
    started = time.monotonic()
    with pytest.raises(BenchError, match=r"no vpcd listening on 127\.0\.0\.1:35999 — is pcscd"):
        bridge.connect(timeout_s=0.3)
    assert time.monotonic() - started < 3
    assert not bridge.connected


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(2, "big") + payload


def _read_frame(conn: socket.socket) -> bytes:
    def exact(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            assert chunk, "bridge closed the connection"
            buf += chunk
        return buf

    return exact(int.from_bytes(exact(2), "big"))


def test_vpcd_bridge_speaks_the_vpcd_protocol() -> None:
    # play vpcd's side on a private port: control codes, APDUs, a crashing responder, close
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    card = ScriptedCard()
    bridge = VpcdBridge(card, port=port)
    thread = bridge.run_in_thread(connect_timeout_s=2)
    conn, _ = server.accept()
    try:
        conn.settimeout(5)
        assert bridge._sock is not None
        assert bridge._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        conn.sendall(_frame(b"\x04"))
        assert _read_frame(conn) == ATR
        resets = card.resets
        conn.sendall(_frame(b"\x01") + _frame(b"\x02") + _frame(b"\x00"))  # on, reset, off
        conn.sendall(_frame(bytes.fromhex("00A4040002A0A1")))  # pipelined
        assert _read_frame(conn) == bytes.fromhex("A0A19000")
        assert card.resets == resets + 2
        assert not bridge.powered
        conn.sendall(_frame(bytes([0x00, INS_CRASH, 0x00, 0x00])))
        assert _read_frame(conn) == b"\x6f\x00"
        assert len(bridge.errors) == 1
        big = bytes([0x00, 0xD6, 0x00, 0x00, 0xFF]) + bytes(255)
        conn.sendall(_frame(big)[:100])
        time.sleep(0.05)
        conn.sendall(_frame(big)[100:])  # an APDU arriving in pieces
        assert _read_frame(conn) == bytes(255) + b"\x90\x00"
        assert bridge.apdu_count == 3
    finally:
        conn.close()
        server.close()
    thread.join(5)
    assert not thread.is_alive(), "serve_forever must return when vpcd closes"
    assert not bridge.connected


def test_vpcd_bridge_stop_from_another_thread() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    bridge = VpcdBridge(ScriptedCard(), port=server.getsockname()[1])
    thread = bridge.run_in_thread()
    conn, _ = server.accept()
    try:
        bridge.stop(join_timeout_s=5)
        assert not thread.is_alive()
        conn.settimeout(5)
        assert conn.recv(1) == b""  # the card left: vpcd sees the connection close
        assert not bridge.dropped_exchange
    finally:
        conn.close()
        server.close()


# -- through pcscd and vpcd ----------------------------------------------------------------


@pytest.mark.e2e
def test_bench_is_up(pcsc_bench: list[str]) -> None:
    assert pcscd_running()
    assert READER in pcsc_bench


@pytest.mark.e2e
def test_transmit_round_trip_and_atr(vpcd_card, pcsc_transport) -> None:
    card = ScriptedCard()
    vpcd_card(card)
    transport = pcsc_transport(READER)
    assert isinstance(transport, Transport)
    assert transport.atr == ATR
    assert transport.name == READER
    assert transport.protocol in ("T=0", "T=1")
    assert transport.transmit(bytes.fromhex("00A4040005A000000001")) == bytes.fromhex(
        "A0000000019000"
    )
    assert card.commands[-1] == bytes.fromhex("00A4040005A000000001")
    resets = card.resets
    assert transport.reset() == ATR
    assert card.resets > resets
    assert transport.transmit(bytes.fromhex("0084000008")) == bytes.fromhex("089000")


@pytest.mark.e2e
def test_pyscard_handle_is_the_transports_own_connection(vpcd_card, pcsc_transport) -> None:
    from smartcard import scard

    vpcd_card(ScriptedCard())
    transport = pcsc_transport(READER)
    card, protocol = transport.pyscard_handle  # what bench/harness.py's bare loop sends on
    hresult, response = scard.SCardTransmit(card, protocol, list(bytes.fromhex("00CA000001")))
    assert (hresult, bytes(response)) == (0, bytes.fromhex("019000"))
    transport.close()
    with pytest.raises(BenchError, match="not connected"):
        transport.pyscard_handle  # noqa: B018


@pytest.mark.e2e
def test_reader_by_regex(vpcd_card, pcsc_transport) -> None:
    vpcd_card(ScriptedCard())
    transport = pcsc_transport(r"Virtual PCD \d+ 00")
    assert transport.name == READER
    assert transport.transmit(bytes.fromhex("00CA000001")) == bytes.fromhex("019000")


@pytest.mark.e2e
def test_unknown_and_ambiguous_reader(pcsc_bench: list[str]) -> None:
    with pytest.raises(BenchError) as info:
        PcscTransport("Gemalto PC Twin")
    assert "'Virtual PCD 00 00'" in str(info.value)
    assert "'Virtual PCD 00 01'" in str(info.value)
    with pytest.raises(BenchError, match="ambiguous"):
        PcscTransport("Virtual PCD")


@pytest.mark.e2e
def test_no_card_in_reader(pcsc_bench: list[str]) -> None:
    wait_for_card(READER, present=False, timeout_s=5)
    started = time.monotonic()
    with pytest.raises(BenchError, match="no card is present"):
        PcscTransport(READER, card_wait_s=0.5)
    assert time.monotonic() - started < 3


@pytest.mark.e2e
def test_exclusive_connection(vpcd_card, pcsc_transport) -> None:
    vpcd_card(ScriptedCard())
    first = pcsc_transport(READER)
    with pytest.raises(BenchError, match="in use by another connection"):
        pcsc_transport(READER)
    assert first.transmit(bytes.fromhex("0000000001")) == bytes.fromhex("019000")
    first.close()
    second = pcsc_transport(READER)
    assert second.transmit(bytes.fromhex("0000000001")) == bytes.fromhex("019000")
    with pytest.raises(BenchError, match="closed"):
        first.transmit(bytes.fromhex("0000000001"))


@pytest.mark.e2e
def test_shared_connections_coexist(vpcd_card, pcsc_transport) -> None:
    vpcd_card(ScriptedCard())
    a = pcsc_transport(READER, exclusive=False)
    b = pcsc_transport(READER, exclusive=False)
    assert a.transmit(bytes.fromhex("0000000001")) == b.transmit(bytes.fromhex("0000000001"))


@pytest.mark.e2e
def test_unresponsive_card_hits_the_deadline_and_recovers(vpcd_card, pcsc_transport) -> None:
    card = ScriptedCard()
    bridge = vpcd_card(card)
    transport = pcsc_transport(READER, timeout_s=1.5)
    assert transport.transmit(bytes.fromhex("0000000001")) == bytes.fromhex("019000")
    started = time.monotonic()
    try:
        with pytest.raises(CardUnresponsive, match=r"did not answer within 1\.5 s"):
            transport.transmit(bytes([0x00, INS_HANG, 0x00, 0x00, 0x00]))
        elapsed = time.monotonic() - started
        assert 1.4 <= elapsed < 6, elapsed  # the deadline fired, not the card
        assert transport.broken
        with pytest.raises(BenchError, match="unusable"):
            transport.transmit(bytes.fromhex("0000000001"))
        with pytest.raises(BenchError, match="still blocked"):
            transport.reset()
        # the card leaves the reader: vpcd's pending read ends, so does the stuck transmit
        bridge.stop(join_timeout_s=0)
    finally:
        card.release.set()
    wait_for_card(READER, present=False, timeout_s=5)
    # a card comes back: reset() reconnects and the transport is usable again
    vpcd_card(ScriptedCard(ATR2))
    assert transport.reset() == ATR2
    assert not transport.broken
    assert transport.transmit(bytes.fromhex("0000000002")) == bytes.fromhex("029000")


@pytest.mark.e2e
def test_card_removed_then_back(vpcd_card, pcsc_transport) -> None:
    bridge = vpcd_card(ScriptedCard())
    transport = pcsc_transport(READER)
    assert transport.transmit(bytes.fromhex("0000000001")) == bytes.fromhex("019000")
    bridge.stop()
    wait_for_card(READER, present=False, timeout_s=5)
    with pytest.raises(BenchError, match="removed") as info:
        transport.transmit(bytes.fromhex("0000000001"))
    assert not isinstance(info.value, CardUnresponsive)
    vpcd_card(ScriptedCard(ATR2))
    assert transport.reset() == ATR2
    assert transport.atr == ATR2
    assert transport.transmit(bytes.fromhex("0000000001")) == bytes.fromhex("019000")


@pytest.mark.e2e
def test_card_closing_mid_exchange(vpcd_card, pcsc_transport) -> None:
    card = ScriptedCard()
    bridge = vpcd_card(card)
    transport = pcsc_transport(READER, timeout_s=5)
    stopper = threading.Timer(0.3, bridge.stop, kwargs={"join_timeout_s": 0})
    stopper.start()
    try:
        with pytest.raises(BenchError) as info:
            transport.transmit(bytes([0x00, INS_HANG, 0x00, 0x00, 0x00]))
    finally:
        stopper.join()
        card.release.set()
    assert not isinstance(info.value, CardUnresponsive)
    # vpcd reports a card that vanished mid-exchange as an empty answer (or 0x80100016)
    assert "card left" in str(info.value) or "0x80100016" in str(info.value)


@pytest.mark.e2e
def test_insert_recovers_when_pcscd_missed_the_swap(pcsc_bench) -> None:
    # A card vanishing mid-exchange, then a new card before pcscd's next presence poll: pcscd
    # misses the swap. insert_vpcd_card must still deliver a usable card.
    card = ScriptedCard()
    bridge = insert_vpcd_card(card)
    try:
        with PcscTransport(READER, timeout_s=5) as transport:
            threading.Timer(0.2, bridge.stop, kwargs={"join_timeout_s": 0}).start()
            with pytest.raises(BenchError):
                transport.transmit(bytes([0x00, INS_HANG, 0x00, 0x00, 0x00]))
    finally:
        card.release.set()
    second = insert_vpcd_card(ScriptedCard(ATR2))  # no settling time on purpose
    try:
        with PcscTransport(READER) as transport:
            assert transport.atr == ATR2
            assert transport.transmit(bytes.fromhex("0000000001")) == bytes.fromhex("019000")
    finally:
        remove_vpcd_card(second)


@pytest.mark.e2e
def test_responder_that_raises_answers_6f00(vpcd_card, pcsc_transport) -> None:
    bridge = vpcd_card(ScriptedCard())
    transport = pcsc_transport(READER)
    assert transport.transmit(bytes([0x00, INS_CRASH, 0x00, 0x00])) == b"\x6f\x00"
    assert transport.transmit(bytes.fromhex("0000000001")) == bytes.fromhex("019000")
    assert len(bridge.errors) == 1


def test_start_pcscd_when_not_installed(monkeypatch) -> None:
    from conformance import bench

    monkeypatch.setattr(bench, "pcscd_running", lambda: False)
    monkeypatch.setattr(bench, "find_pcscd", lambda: None)
    with pytest.raises(BenchError, match="pcscd is not installed; install it with `apt-get"):
        bench.start_pcscd()
