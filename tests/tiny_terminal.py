"""A tiny terminal for the suite's own tests, written from TERMINAL.md and REFERENCE.md.

    python tests/tiny_terminal.py [--fault NAME] OPERATION [ARG…]

RHC_READER is a PC/SC reader name, or ``tcp:HOST:PORT`` for the tests' socket reader (each
connection is a power-up; then 2-byte length ‖ APDU each way). ``--fault`` makes it misbehave
the way the suite must catch (see FAULTS), or hang, crash, print garbage.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import yaml

from conformance import crypto

FAULTS = {"skip_get_response", "reuse_challenge", "retry_auth", "plain_tlv", "truncate_gbk",
          "ignore_index", "mislabel", "no_select", "hang", "crash", "garbage", "exit_no_json",
          "sam_one_factor"}

# Where items live (REFERENCE.md §1): DF, EF, record tags, read KID, update KID, key families.
TLV = [("DDF1", "EF05", [1, 2, 3, 4, 5, 6, 8, 9, 10, 57], None, 0x05),
       ("DDF1", "EF06", [11, 12, 13, 14, 15], 0x04, 0x05),
       ("DDF1", "EF08", [7, 16, 17, 18, 19, 20], 0x04, 0x05),
       ("DF01", "EF05", [21, 22, 23, 24], 0x84, 0x85),
       ("DF01", "EF06", [25, 26, 27, 28, 29, 30, 31, 32, 33], 0x84, 0x85),
       ("DF01", "EF07", [34, 35, 36], 0x84, 0x85),
       ("DF01", "EF08", [37, 38, 39, 40], 0x84, 0x85),
       ("DF02", "EF05", list(range(41, 56)), 0x84, 0x85),
       ("DF02", "EF06", [56], 0x84, 0x86)]
FAMILY = {("DDF1", 0x04): "RK_DDF1", ("DDF1", 0x05): "UK_DDF1", ("DF01", 0x84): "RK_DF01",
          ("DF01", 0x85): "UK_DF01", ("DF02", 0x84): "RK_DF02", ("DF02", 0x85): "UK_DF02_1",
          ("DF02", 0x86): "UK_DF02_2", ("DF02", 0x87): "UK_DF02_3", ("DF03", 0x84): "RK_DF03",
          ("DF03", 0x85): "UK_DF03_1"}
STK = {"DDF1": "STK_DDF1", "DF01": "STK_DF01", "DF02": "STK_DF02", "DF03": "STK_DF03"}
PATH = {"DDF1": ["DDF1"], "DF01": ["DDF1", "DF01"], "DF02": ["DDF1", "DF02"],
        "DF03": ["DDF1", "DF03"]}


class Refused(Exception):
    def __init__(self, message: str, sw: int | None = None) -> None:
        super().__init__(message)
        self.sw = sw


def _profile():  # item codings and layouts from the shipped profile YAML (data, not code)
    here = os.path.join(os.path.dirname(__file__), "..", "conformance", "profiles", "standard",
                        "wst543.yaml")
    with open(here, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


class Reader:
    def __init__(self, name: str) -> None:
        if name.startswith("tcp:"):
            _, host, port = name.split(":")
            self.sock = socket.create_connection((host, int(port)))
            self.sock.settimeout(4)  # an APDU that takes longer aborts the transaction
            self.pcsc = None
            self.atr = self._exchange(b"")
        else:
            from smartcard.System import readers

            reader = next(r for r in readers() if str(r) == name)
            self.pcsc = reader.createConnection()
            self.pcsc.connect()
            self.atr = bytes(self.pcsc.getATR())

    def _exchange(self, apdu: bytes) -> bytes:
        self.sock.sendall(len(apdu).to_bytes(2, "big") + apdu)
        n = int.from_bytes(self._recv(2), "big")
        return self._recv(n)

    def _recv(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise Refused("the card left the reader")
            buf += chunk
        return buf

    def raw(self, apdu: bytes) -> bytes:
        if self.pcsc is None:
            return self._exchange(apdu)
        try:
            data, sw1, sw2 = self.pcsc.transmit(list(apdu))
        except Exception as exc:  # pyscard: the card left, the reader went away
            raise Refused(f"reader: {exc}") from None
        return bytes(data) + bytes([sw1, sw2])


SAM_KEYS = ["RK_DDF1", "RK_DF01", "RK_DF02", "RK_DF03", "UK_DDF1", "UK_DF01", "UK_DF02_1",
            "UK_DF02_2", "UK_DF02_3", "UK_DF03_1", "UK_DF03_2", "STK_DDF1", "STK_DF01",
            "STK_DF02", "STK_DF03"]  # the SAM's key numbers 01.. (fixtures/terminal/sam.yaml)


class Sam:
    """Keys in a PSAM (REFERENCE.md §7): derive, then encrypt or MAC with the derived key."""

    def __init__(self, reader: Reader, levels: dict, card_no: bytes, fault: str) -> None:
        self.r, self.levels, self.card_no, self.fault = reader, levels, card_no, fault

    def _collect(self, apdu: bytes) -> bytes:
        answer = self.r.raw(apdu)
        if answer[-2] == 0x61:
            answer = self.r.raw(bytes([0, 0xC0, 0, 0, answer[-1]]))
        if answer[-2:] != b"\x90\x00":
            raise Refused(f"SAM answered {answer[-2:].hex().upper()}")
        return answer[:-2]

    def derive(self, family: str, city8: bytes, challenge: bytes) -> None:
        two = self.levels[family] == 2 and self.fault != "sam_one_factor"
        data = self.card_no + (city8 if two else b"") + challenge
        self._collect(bytes([0x80, 0xDE, 0x40 if two else 0x20, SAM_KEYS.index(family) + 1,
                             len(data)]) + data)

    def ecb(self, data: bytes) -> bytes:
        return self._collect(bytes([0x80, 0xFA, 0, 0, len(data)]) + data)

    def mac(self, data: bytes) -> bytes:
        body = bytes(16) + crypto.pad_m2(data)
        return self._collect(bytes([0x80, 0xFA, 5, 0, len(body)]) + body)[:4]


class Terminal:
    def __init__(self, reader: Reader, keys: dict, fault: str, sam: Reader | None = None) -> None:
        self.r = reader
        self.fault = fault
        self.mk = {k: bytes.fromhex(v) for k, v in keys["master_keys"].items()}
        self.levels = keys["levels"]
        self.card_no = reader.atr[4:12]
        self.city8: bytes | None = None
        self.df = ""
        self.last_challenge: bytes | None = None
        self.refused: set = set()
        self.sam = Sam(sam, self.levels, self.card_no, fault) if sam is not None else None

    def send(self, apdu: bytes) -> bytes:
        answer = self.r.raw(apdu)
        while True:
            sw1, sw2 = answer[-2], answer[-1]
            if sw1 == 0x61 and self.fault != "skip_get_response":
                answer = self.r.raw(bytes([0, 0xC0, 0, 0, sw2]))
            elif sw1 == 0x6C:
                apdu = apdu[:-1] + bytes([sw2])
                answer = self.r.raw(apdu)
            else:
                return answer

    def ok(self, apdu: bytes, allow: tuple = ()) -> bytes:
        answer = self.send(apdu)
        sw = int.from_bytes(answer[-2:], "big")
        if sw != 0x9000 and sw not in allow:
            raise Refused(f"card answered {sw:04X} to {apdu[:4].hex().upper()}", sw)
        return answer[:-2]

    def select_df(self, df: str) -> None:
        if self.fault == "no_select":
            return
        if self.df != df:
            for fid in PATH[df]:
                self.ok(bytes.fromhex(f"00A4000002{fid}"))
            self.df = df

    def select_ef(self, df: str, ef: str) -> None:
        self.select_df(df)
        if self.fault != "no_select":
            self.ok(bytes.fromhex(f"00A4000002{ef}"))

    def challenge(self) -> bytes:
        if self.fault == "reuse_challenge" and self.last_challenge:
            return self.last_challenge
        self.last_challenge = self.ok(bytes.fromhex("0084000008"))
        return self.last_challenge

    def card_key(self, family: str) -> bytes:
        key = crypto.diversify(self.mk[family], self.card_no)
        if self.levels[family] == 2:
            if self.city8 is None:
                raise Refused("no city code")
            key = crypto.diversify(key, self.city8)
        return key

    def authenticate(self, df: str, kid: int) -> None:
        family = FAMILY[(df, kid)]
        tries = 2 if self.fault == "retry_auth" else 1
        for _ in range(tries):
            r = self.challenge()
            if self.sam is not None:
                self.sam.derive(family, self.city8 or b"", r)
                e = self.sam.ecb(r + bytes(8))
                c = bytes(a ^ b for a, b in zip(e[:8], e[8:], strict=True))
            else:
                c = crypto.auth_cryptogram(crypto.session_key(self.card_key(family), r), r)
            answer = self.r.raw(bytes([0, 0x82, 0, kid, 0x11]) + c + r + b"\x01")
            sw = int.from_bytes(answer[-2:], "big")
            if sw == 0x9000:
                return
        raise Refused(f"card answered {sw:04X} to EXTERNAL AUTHENTICATE", sw)

    def read_city(self) -> None:
        self.select_ef("DDF1", "EF05")
        rec = self.ok(bytes([0, 0xB2, 10, 4, 0]))
        self.city8 = crypto.city_code_factor(rec[2:])

    def read_tlv(self, wanted: list[int]) -> dict[int, bytes]:
        self.read_city()
        out: dict[int, bytes] = {}
        for df, ef, tags, rk, _uk in TLV:
            need = [t for t in tags if t in wanted]
            if not need:
                continue
            self.select_df(df)
            if rk is not None and (df, "r") not in self.refused:
                self.authenticate(df, rk)
                self.refused.add((df, "r"))
            self.select_ef(df, ef)
            for t in need:
                rec = self.ok(bytes([0, 0xB2, tags.index(t) + 1, 4, 0]))
                out[t] = rec[2:]
        return out

    def write_tlv(self, df: str, ef: str, record: int, tlv: bytes) -> None:
        if self.fault == "plain_tlv":
            self.ok(bytes([0, 0xDC, record, 4, len(tlv)]) + tlv)
            return
        r = self.challenge()
        if self.sam is not None:
            self.sam.derive(STK[df], self.city8 or b"", r)
            e = self.sam.ecb(crypto.pad_m2(bytes([len(tlv)]) + tlv))
            header = bytes([0x04, 0xDC, record, 4, len(e) + 4])
            self.ok(header + e + self.sam.mac(header + e))
            return
        sk = crypto.session_key(self.card_key(STK[df]), r)
        self.ok(crypto.sm_wrap_update(sk, record, tlv, command=(0x04, 0xDC)))


def decode(coding: str, raw: bytes) -> str:
    if coding == "AN":
        text = raw.split(b"\x00", 1)[0]
        return text.decode("gbk", errors="replace")
    if coding == "CN":
        return raw.hex().upper().split("F", 1)[0]
    return raw.hex().upper()


def encode(coding: str, value: str, length: int) -> bytes:
    if coding == "AN":
        raw = value.encode("gbk")
        pad = b"\x00"
    elif coding == "CN":
        if value and not value.isdigit():
            raise Refused(f"{value!r} is not digits")
        if len(value) > 2 * length:
            raise Refused(f"{value!r} has too many digits")
        raw = bytes.fromhex(value.ljust(2 * length, "F"))
        pad = b"\xff"
    else:
        raw = bytes.fromhex(value)
        pad = b"\x00"
    if len(raw) > length:
        raise Refused(f"value {value!r} does not fit {length} bytes")
    return raw.ljust(length, pad)


def main(argv: list[str]) -> int:
    fault = ""
    if argv[:1] == ["--fault"]:
        fault, argv = argv[1], argv[2:]
    op, args = argv[0], argv[1:]
    if fault == "hang":
        time.sleep(3600)
    if fault == "crash":
        os.abort()
    if fault == "garbage":
        print("\x01 not json at all")
        return 0
    if fault == "exit_no_json":
        return 3
    prof = _profile()
    items = {**{f["item"]: f for lay in prof["layouts"].values() for f in lay if f["item"]},
             **prof["items"]}
    with open(os.environ["RHC_KEYS"], encoding="utf-8") as fh:
        keys = yaml.safe_load(fh)
    data = json.load(sys.stdin) if op in ("put", "append-allergy", "append-immunization",
                                          "write-inpatient", "write-outpatient") else None
    try:
        if data is not None:
            for n, v in data["items"].items():
                it = items[int(n)]
                if it["coding"] == "B" and len(v) != 2 * it["length"]:
                    raise Refused(f"item {n}: wrong B length")
                encode(it["coding"], v, it["length"])
        sam = os.environ.get("RHC_SAM_READER")
        t = Terminal(Reader(os.environ["RHC_READER"]), keys, fault,
                     Reader(sam) if sam else None)
        out = run(t, prof, op, args, data)
    except (TimeoutError, OSError) as exc:
        print(json.dumps({"status": "error", "message": f"reader: {exc}"}))
        return 1
    except Refused as exc:
        doc = {"status": "error", "message": str(exc)}
        if exc.sw is not None:
            doc["sw"] = f"{exc.sw:04X}"
        print(json.dumps(doc))
        return 1
    print(json.dumps(out, ensure_ascii=False))
    return 0


def _layout(prof: dict, name: str) -> list[dict]:
    return prof["layouts"][name]


def run(t: Terminal, prof: dict, op: str, args: list[str], data: dict | None) -> dict:
    items = prof["items"]
    if op == "get":
        wanted = list(dict.fromkeys(int(a) for a in args))
        if not wanted:
            return {"items": {}}
        raw = t.read_tlv(wanted)
        out = {}
        for n in wanted:
            value = decode(items[n]["coding"], raw[n])
            if t.fault == "truncate_gbk" and items[n]["coding"] == "AN":
                value = value[:10]
            out[str(n)] = value
        if t.fault == "mislabel" and "11" in out and "16" in out:
            out["11"], out["16"] = out["16"], out["11"]
        return {"items": out}
    if op == "put":
        t.read_city()
        groups: dict = {}
        for n, v in data["items"].items():
            for df, ef, tags, _rk, uk in TLV:
                if int(n) in tags:
                    groups.setdefault((df, ef, uk, tuple(tags)), []).append((int(n), v))
        for (df, ef, uk, tags), values in groups.items():
            t.select_df(df)
            t.authenticate(df, uk)
            t.select_ef(df, ef)
            for n, v in values:
                it = items[n]
                t.write_tlv(df, ef, tags.index(n) + 1,
                            bytes([n, it["length"]]) + encode(it["coding"], v, it["length"]))
        return {"status": "ok"}
    if op in ("append-allergy", "append-immunization", "read-allergies", "read-immunizations"):
        ef, layout = ("EF07", "allergy") if "allerg" in op else ("EF08", "immunisation")
        t.read_city()
        t.select_df("DF02")
        if op.startswith("append"):
            t.authenticate("DF02", 0x87)
            t.select_ef("DF02", ef)
            rec = b"".join(encode(f["coding"], data["items"].get(str(f["item"]), ""), f["length"])
                           for f in _layout(prof, layout))
            t.ok(bytes([0, 0xDC, 0, 3, len(rec)]) + rec)
            return {"status": "ok"}
        t.authenticate("DF02", 0x84)
        t.select_ef("DF02", ef)
        records = []
        for n in range(1, 256):
            answer = t.send(bytes([0, 0xB2, n, 4, 0]))
            if answer[-2:] == b"\x6a\x83":
                break
            if answer[-2:] != b"\x90\x00":
                raise Refused(f"card answered {answer[-2:].hex().upper()}",
                              int.from_bytes(answer[-2:], "big"))
            rec = {str(f["item"]): decode(f["coding"],
                                          answer[f["offset"]:f["offset"] + f["length"]])
                   for f in _layout(prof, layout)}
            if any(rec.values()):
                records.append(rec)
        return {"records": records}
    kind = op.split("-")[1]
    index_ef, prefix, count, size, layout = (("EF05", "EE", 3, 1893, "inpatient") if kind ==
                                             "inpatient" else ("EF06", "ED", 5, 3267, "outpatient"))
    t.read_city()
    t.select_df("DF03")
    t.authenticate("DF03", 0x84)
    t.select_ef("DF03", index_ef)
    flags = [t.ok(bytes([0, 0xB2, n, 4, 0]))[0] for n in range(1, count + 1)]

    def body(slot: int) -> bytes:
        t.select_ef("DF03", f"{prefix}{slot:02d}")
        out = b""
        while len(out) < size:
            le = min(256, size - len(out)) & 0xFF
            out += t.ok(bytes([0, 0xB0, len(out) >> 8, len(out) & 0xFF, le]))
        return out

    def fields(raw: bytes) -> dict:
        return {str(f["item"]): decode(f["coding"], raw[f["offset"]:f["offset"] + f["length"]])
                for f in _layout(prof, layout) if f["item"] is not None}

    if op.startswith("read-"):
        slot = int(args[0])
        if flags[slot - 1] == 0xFF:
            raise Refused(f"slot {slot} is free")
        return {"items": fields(body(slot))}
    if 0xFF in flags and t.fault != "ignore_index":
        slot = flags.index(0xFF) + 1
    elif t.fault == "ignore_index":
        slot = 1
    else:
        date, tie = ("66", "135") if kind == "inpatient" else ("215", None)
        keyed = []
        for s in range(1, count + 1):
            f = fields(body(s))
            keyed.append((f[date], f[tie] if tie else "", s))
        slot = min(keyed)[2]
    t.select_df("DF03")
    t.authenticate("DF03", 0x85)
    t.select_ef("DF03", index_ef)
    t.ok(bytes([0x84, 0xD2, slot, 4, 0]))
    rec = b"".join(encode(f["coding"], data["items"].get(str(f["item"]), ""), f["length"])
                   if f["item"] is not None else bytes(f["length"]) for f in _layout(prof, layout))
    rec = rec.ljust(size, b"\x00")
    t.select_ef("DF03", f"{prefix}{slot:02d}")
    for off in range(0, size, 250):
        chunk = rec[off:off + 250]
        t.ok(bytes([0, 0xD6, off >> 8, off & 0xFF, len(chunk)]) + chunk)
    return {"status": "ok", "slot": slot}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
