"""End to end through pcscd + vpcd: `rhc card serve` and clients of the real PC/SC stack.

The raw client below is written from REFERENCE.md alone: pyscard for the reader, the SM4 of
`cryptography` for the keys, and APDUs as bytes. It shares no code with the host session, so
it checks that the served card and the profile agree, not that our code agrees with itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import yaml
from conftest import ROOT, wait_for_reader_card
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from conformance.model import DEFAULT_PERSONALIZATION, load_personalization, load_profile

pytestmark = pytest.mark.e2e

RHC = [sys.executable, "-m", "conformance.cli"]
READER = "Virtual PCD 00 00"


def rhc(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RHC, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


# -- rhc card dump: virtual and through PC/SC agree with the personalization ----------------


def test_dump_through_pcsc_equals_virtual_and_personalization(served_card) -> None:
    via_reader = rhc("card", "dump", "--reader", READER)
    assert via_reader.returncode == 0, via_reader.stderr
    virtual = rhc("card", "dump", "--card", "virtual")
    assert virtual.returncode == 0, virtual.stderr
    assert json.loads(via_reader.stdout) == json.loads(virtual.stdout)
    profile = load_profile()
    pers = load_personalization(DEFAULT_PERSONALIZATION, profile)
    expected = {
        str(n): profile.canonical(n, pers.items.get(n, "")) for n in profile.tlv_items()
    }
    assert json.loads(via_reader.stdout) == expected


# -- a raw PC/SC client written from REFERENCE.md alone -----------------------------------


def sm4(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def div(key: bytes, d8: bytes) -> bytes:
    return sm4(key, d8 + bytes(b ^ 0xFF for b in d8))


def pad(data: bytes) -> bytes:
    data += b"\x80"
    return data + bytes(-len(data) % 16)


class RawClient:
    def __init__(self) -> None:
        from smartcard.scard import SCARD_SHARE_EXCLUSIVE
        from smartcard.System import readers

        reader = next(r for r in readers() if str(r) == READER)
        self.connection = reader.createConnection()
        self.connection.connect(mode=SCARD_SHARE_EXCLUSIVE)
        self.atr = bytes(self.connection.getATR())

    def send(self, hexapdu: str | bytes) -> tuple[bytes, int]:
        apdu = bytes.fromhex(hexapdu) if isinstance(hexapdu, str) else hexapdu
        data, sw1, sw2 = self.connection.transmit(list(apdu))
        while sw1 == 0x61:  # T=0: GET RESPONSE
            more, sw1, sw2 = self.connection.transmit([0x00, 0xC0, 0x00, 0x00, sw2])
            data += more
        if sw1 == 0x6C:  # wrong Le: resend with the right one
            data, sw1, sw2 = self.connection.transmit([*apdu[:4], sw2])
        return bytes(data), (sw1 << 8) | sw2

    def ok(self, hexapdu: str | bytes) -> bytes:
        data, sw = self.send(hexapdu)
        assert sw == 0x9000, f"{hexapdu!r} answered {sw:04X}"
        return data

    def close(self) -> None:
        self.connection.disconnect()


def test_raw_client_from_the_reference(served_card) -> None:
    keys = yaml.safe_load((ROOT / "fixtures" / "test-keys.yaml").read_text("utf-8"))
    master = {k: bytes.fromhex(v) for k, v in keys["master_keys"].items()}
    client = RawClient()
    try:
        card_no = client.atr[4:12]                        # ATR bytes 5..12
        client.ok("00A4000002DDF1")
        client.ok("00A4000002EF05")
        record = client.ok("00B2390000")                  # by record identifier: tag 39
        assert record[:2] == b"\x39\x03"
        city8 = record[2:4] + b"000000"
        # read right RK_DDF1 (level 2), KID 04
        k_rk = div(div(master["RK_DDF1"], card_no), city8)
        client.ok("00A4000002EF06")
        r = client.ok("0084000008")
        x = bytes(range(1, 9))
        c = sm4(div(k_rk, r), x + bytes(8))
        client.ok(b"\x00\x82\x00\x04\x11" + bytes(a ^ b for a, b in zip(c[:8], c[8:], strict=True))
                  + x + b"\x01")
        name = client.ok("00B2010400")
        assert name[:2] == b"\x0b\x1e"
        assert name[2:].rstrip(b"\0").decode("gbk") == "王测试"
        # update right UK_DDF1 (level 1, KID 05): X = R1, session key from R2
        k_uk = div(master["UK_DDF1"], card_no)
        client.ok("00A4000002EF08")
        r1 = client.ok("0084000008")
        r2 = client.ok("0084000008")
        c = sm4(div(k_uk, r2), r1 + bytes(8))
        client.ok(b"\x00\x82\x00\x05\x11" + bytes(a ^ b for a, b in zip(c[:8], c[8:], strict=True))
                  + r1 + b"\x01")
        k_stk = div(master["STK_DDF1"], card_no)      # STK_DDF1, level 1

        def sm_update(record_no: int, tlv: bytes, *, break_mac: bool = False) -> int:
            r = client.ok("0084000008")
            sk = div(k_stk, r)
            e = b"".join(sm4(sk, blk) for blk in _blocks(pad(bytes([len(tlv)]) + tlv)))
            header = bytes([0x04, 0xDC, record_no, 0x04, len(e) + 4])
            mac = bytes(16)
            for blk in _blocks(pad(header + e)):
                mac = sm4(sk, bytes(a ^ b for a, b in zip(mac, blk, strict=True)))
            tag = mac[:4] if not break_mac else bytes(b ^ 0xFF for b in mac[:4])
            return client.send(header + e + tag)[1]

        original = client.ok("00B2020400")             # item 16 phone, record 2
        phone = b"\x10\x14" + b"13912345678".ljust(20, b"\0")
        assert sm_update(2, phone) == 0x9000
        assert client.ok("00B2020400") == phone
        assert sm_update(2, original, break_mac=True) == 0x6988   # wrong MAC refused
        assert client.ok("00B2020400") == phone
        assert sm_update(2, original) == 0x9000
        assert client.ok("00B2020400") == original
    finally:
        client.close()


def _blocks(data: bytes) -> list[bytes]:
    return [data[i : i + 16] for i in range(0, len(data), 16)]


# -- bad input is answered clearly, without a traceback -----------------------------------


def _clear_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_reader_that_does_not_exist(pcsc_bench) -> None:
    _clear_error(rhc("card", "dump", "--reader", "No Such Reader 42"),
                 "No Such Reader 42", "Virtual PCD 00 00")


def test_vpcd_port_nobody_listens_on(pcsc_bench) -> None:
    _clear_error(rhc("card", "serve", "--vpcd-port", "35999", timeout=30), "35999")


def test_card_stops_answering_mid_exchange(pcsc_bench, vpcd_card) -> None:
    from conformance.transport.base import CardUnresponsive
    from conformance.transport.pcsc import PcscTransport

    class Mute:
        def reset(self) -> bytes:
            return bytes.fromhex("3B6D0000") + bytes(13)

        def process(self, apdu: bytes) -> bytes:
            if apdu[1] == 0xB2:
                time.sleep(3600)
            return b"\x90\x00"

    vpcd_card(Mute())
    transport = PcscTransport(READER, timeout_s=1.5)
    try:
        assert transport.transmit(bytes.fromhex("00A4000002DDF1")) == b"\x90\x00"
        started = time.monotonic()
        with pytest.raises(CardUnresponsive, match="did not answer"):
            transport.transmit(bytes.fromhex("00B2010400"))
        assert time.monotonic() - started < 5
    finally:
        transport.close()


def test_dump_of_a_card_that_stops_answering_is_a_clear_error(pcsc_bench, tmp_path) -> None:
    """The CLI path: a bench error, exit 2, no traceback."""
    env = dict(os.environ)
    script = tmp_path / "mute.py"
    script.write_text(
        "import time\n"
        "from conformance.card.vpcd import VpcdBridge\n"
        "class Mute:\n"
        "    def reset(self): return bytes.fromhex('3B6D0000') + bytes(13)\n"
        "    def process(self, apdu):\n"
        "        time.sleep(3600)\n"
        "b = VpcdBridge(Mute()); b.connect(); b.serve_forever()\n",
        encoding="utf-8",
    )
    wait_for_reader_card(False)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env)
    try:
        wait_for_reader_card(True)
        result = subprocess.run(
            [*RHC, "card", "dump", "--reader", READER, "--apdu-timeout", "2"], cwd=ROOT,
            capture_output=True, text=True, timeout=120, check=False, env=env,
        )
        _clear_error(result, "did not answer")
    finally:
        proc.kill()
        proc.wait()
        wait_for_reader_card(False)
