#!/usr/bin/env python3
"""A resident health card terminal written from TERMINAL.md and REFERENCE.md alone.

    RHC_READER=... RHC_KEYS=test-keys.yaml plain_terminal.py OPERATION [ARGUMENT...]

One transaction per run: pyscard to the reader, SM4 from `cryptography`, the key file read with
PyYAML. Nothing of the rhc suite is imported: this program exists to show that a terminal
written by someone else from the contract is certified without any change to the suite.
"""

import contextlib
import json
import os
import sys
import threading

import yaml
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from smartcard.System import readers

# ---------------------------------------------------------------- the card (REFERENCE.md §1, §3)

# file -> (items in record order); every item is one TLV record "tag len value"
TLV_FILES = {
    ("DDF1", "EF05"): [1, 2, 3, 4, 5, 6, 8, 9, 10, 57],
    ("DDF1", "EF06"): [11, 12, 13, 14, 15],
    ("DDF1", "EF08"): [7, 16, 17, 18, 19, 20],
    ("DF01", "EF05"): [21, 22, 23, 24],
    ("DF01", "EF06"): [25, 26, 27, 28, 29, 30, 31, 32, 33],
    ("DF01", "EF07"): [34, 35, 36],
    ("DF01", "EF08"): [37, 38, 39, 40],
    ("DF02", "EF05"): list(range(41, 56)),
    ("DF02", "EF06"): [56],
}

# item -> coding and length (evidence §3.1), written as "number coding length" triples
ITEM_TABLE = """
1 AN 1   2 AN 4   3 AN 30  4 CN 11  5 B 180  6 CN 4   7 CN 4   8 AN 18  9 AN 3   10 AN 10
11 AN 30 12 B 1   13 CN 1  14 CN 4  15 AN 18 16 AN 20 17 AN 20 18 CN 1  19 CN 1  20 CN 1
21 CN 1  22 AN 100 23 CN 1 24 AN 100 25 AN 30 26 CN 1 27 AN 20 28 AN 30 29 CN 1 30 AN 20
31 AN 30 32 CN 1 33 AN 20 34 CN 1  35 CN 1  36 AN 3  37 CN 1  38 AN 18 39 AN 17 40 AN 18
41 B 1   42 CN 1  43 B 1   44 B 1   45 B 1   46 B 1   47 B 1   48 B 1   49 B 1   50 B 1
51 B 1   52 B 1   53 B 1   54 B 1   55 AN 40 56 B 1   57 CN 3
58 AN 20 59 AN 100 60 AN 20 61 CN 4
"""
_words = ITEM_TABLE.split()
ITEMS = {int(_words[i]): (_words[i + 1], int(_words[i + 2])) for i in range(0, len(_words), 3)}


def _layout(first_item, groups):
    """[(item, offset, coding, length)] from runs such as "70AN 10AN 4CN" (evidence §3.4)."""
    fields, item, offset = [], first_item, 0
    for spec, times in groups:
        for _ in range(times):
            for word in spec.split():
                length = int(word.rstrip("ANCB"))
                coding = word[len(str(length)):]
                fields.append((item, offset, coding, length))
                item += 1
                offset += length
    return fields


_G16 = "50AN 7AN 4CN 20AN 1CN 20AN 1CN 1CN 80AN 5AN 4CN 50AN 1CN 1CN 1CN 1CN"
INPATIENT = _layout(64, [
    ("70AN 10AN 4CN 2CN 18AN 50AN 1CN 50AN 7AN 1CN 1CN", 1),
    (_G16, 2), (" ".join(_G16.split()[:15]), 1),
    ("2CN 10AN 1CN", 3), ("2CN 10AN", 1), ("2CN 2CN 4CN 50AN 3CN 1B 1B 1CN", 1),
    ("20AN 1AN 5CN", 20), ("5CN", 10), ("64B 190B", 1),
])
OUTPATIENT = _layout(213, [
    ("70AN 10AN 7CN 18AN 50AN 1CN", 1),
    ("50AN 5AN 4CN 50AN 7AN 7CN 2CN", 5),
    ("80AN 1CN 5CN 20AN 20AN", 10),
    ("50AN 1CN 3CN 20AN 6AN 3CN 6CN 2CN", 5),
    ("80AN 5AN 4CN", 3),
    ("20AN 1CN 4CN", 10),
    ("64B 190B", 1),
])
ALLERGY = [(58, 0, "AN", 20), (59, 20, "AN", 100)]
IMMUNIZATION = [(60, 0, "AN", 20), (61, 20, "CN", 4)]

# cyclic files and record families: (DF, EF, layout, records)
CYCLIC = {"allergy": ("DF02", "EF07", ALLERGY, 3),
          "immunization": ("DF02", "EF08", IMMUNIZATION, 10)}
RECORDS = {
    # kind: (index EF, file prefix, slots, layout, size, items ordering a full index)
    "inpatient": ("EF05", "EE", 3, INPATIENT, 1893, [66, 135]),
    "outpatient": ("EF06", "ED", 5, OUTPATIENT, 3267, [215]),
}

# key references (REFERENCE.md §3): DF -> read KID; (DF, EF) -> update KID and family
READ_KEY = {"DDF1": (0x04, "RK_DDF1"), "DF01": (0x84, "RK_DF01"), "DF02": (0x84, "RK_DF02"),
            "DF03": (0x84, "RK_DF03")}
FREE_FILES = {("DDF1", "EF05")}
UPDATE_KEY = {"DDF1": (0x05, "UK_DDF1"), "DF01": (0x85, "UK_DF01"), "DF03": (0x85, "UK_DF03_1"),
              ("DF02", "EF05"): (0x85, "UK_DF02_1"), ("DF02", "EF06"): (0x86, "UK_DF02_2"),
              ("DF02", "EF07"): (0x87, "UK_DF02_3"), ("DF02", "EF08"): (0x87, "UK_DF02_3")}


ANSWER_WAIT_S = 10.0  # one answer; the whole run must end within the profile's timeout_s


class Stop(Exception):
    """The transaction ends with {"status": "error"}; sw when a status word caused it."""

    def __init__(self, message, sw=None):
        super().__init__(message)
        self.sw = sw


# ---------------------------------------------------------------- values (TERMINAL.md Values)

def to_text(coding, raw):
    if coding == "B":
        return raw.hex().upper()
    if coding == "AN":
        return raw.split(b"\x00")[0].decode("gbk")
    digits = ""
    for nibble in raw.hex().upper():
        if nibble == "F":
            break
        digits += nibble
    return digits


def to_bytes(item, coding, length, value):
    if not isinstance(value, str):
        raise Stop(f"item {item}: value must be a string")
    if coding == "B":
        if len(value) != 2 * length or any(c not in "0123456789abcdefABCDEF" for c in value):
            raise Stop(f"item {item}: a B value is exactly {2 * length} hex digits")
        return bytes.fromhex(value)
    if coding == "AN":
        try:
            raw = value.encode("gbk")
        except UnicodeEncodeError:
            raise Stop(f"item {item}: {value!r} is not GBK") from None
        if len(raw) > length or b"\x00" in raw:
            raise Stop(f"item {item}: {value!r} does not fit {length} bytes")
        return raw.ljust(length, b"\x00")
    if any(c not in "0123456789" for c in value) or len(value) > 2 * length:
        raise Stop(f"item {item}: {value!r} is not up to {2 * length} digits")
    return bytes.fromhex(value + "F" * (2 * length - len(value)))


def blank(coding, length):
    return (b"\xff" if coding == "CN" else b"\x00") * length


# ---------------------------------------------------------------- SM4 (REFERENCE.md §4)

def ecb(key, data):
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def pad(data):
    data = data + b"\x80"
    return data + b"\x00" * (-len(data) % 16)


def div(key, factor):
    return ecb(key, factor + bytes(b ^ 0xFF for b in factor))


def mac4(key, data):
    block = bytes(16)
    padded = pad(data)
    for i in range(0, len(padded), 16):
        block = ecb(key, bytes(a ^ b for a, b in zip(block, padded[i:i + 16], strict=True)))
    return block[:4]


# ---------------------------------------------------------------- the card session

class Card:
    def __init__(self, reader_name, key_file):
        found = [r for r in readers() if str(r) == reader_name]
        if not found:
            raise Stop(f"no reader named {reader_name!r}")
        self.connection = found[0].createConnection()
        self.connection.connect()
        atr = bytes(self.connection.getATR())
        self.card_no = atr[4:12]
        with open(key_file, encoding="utf-8") as f:
            keys = yaml.safe_load(f)
        self.masters = {k: bytes.fromhex(str(v)) for k, v in keys["master_keys"].items()}
        self.levels = keys["levels"]
        self.df = None
        self.ef = None
        self.rights = set()
        self.city = None
        self.last_sw = None
        self.stuck = False

    def close(self):
        if self.stuck:  # the reader still holds the unanswered command: leave it to exit
            return
        with contextlib.suppress(Exception):
            self.connection.disconnect()

    def transmit(self, apdu):
        """pyscard has no timeout: wait for the card in a side thread, at most ANSWER_WAIT_S."""
        box = []
        worker = threading.Thread(target=lambda: box.append(self.connection.transmit(apdu)),
                                  daemon=True)
        worker.start()
        worker.join(ANSWER_WAIT_S)
        if not box:
            self.stuck = True
            raise Stop(f"the card did not answer {bytes(apdu[:4]).hex().upper()} within "
                       f"{ANSWER_WAIT_S:g} s")
        return box[0]

    def send(self, apdu, ok=(0x9000,)):
        """One command with T=0 handling; returns the data, Stop on any other status word."""
        apdu = list(apdu)
        data = b""
        for _ in range(20):
            body, sw1, sw2 = self.transmit(apdu)
            if sw1 == 0x6C and len(apdu) > 4 and (len(apdu) == 5 or len(apdu) > 5 + apdu[4]):
                apdu = [*apdu[:-1], sw2]  # the same command with the Le the card asked for
                continue
            if sw1 == 0x61:
                data += bytes(body)
                apdu = [0x00, 0xC0, 0x00, 0x00, sw2]
                continue
            sw = sw1 << 8 | sw2
            self.last_sw = sw
            if sw not in ok:
                raise Stop(f"card answered {sw:04X} to {bytes(apdu[:4]).hex().upper()}",
                           f"{sw:04X}")
            return data + bytes(body), sw
        raise Stop("card keeps answering 61xx/6Cxx")

    def select(self, df, ef=None):
        if self.df != df:
            self.send([0x00, 0xA4, 0x00, 0x00, 0x02, 0xDD, 0xF1])  # always from DDF1 down
            if df != "DDF1":
                self.send([0x00, 0xA4, 0x00, 0x00, 0x02, *bytes.fromhex(df)])
            self.df, self.ef, self.rights = df, None, set()
        if ef is not None and self.ef != ef:
            self.send([0x00, 0xA4, 0x00, 0x00, 0x02, *bytes.fromhex(ef)])
            self.ef = ef

    def card_key(self, family):
        key = div(self.masters[family], self.card_no)
        if self.levels[family] == 2:
            key = div(key, self.city_code())
        return key

    def city_code(self):
        if self.city is None:
            raw = self.record("DDF1", "EF05", 10)  # item 57, the tenth record
            self.city = raw[2:4] + b"000000"
        return self.city

    def challenge(self):
        return self.send([0x00, 0x84, 0x00, 0x00, 0x08])[0]

    def authenticate(self, df, kid, family, update):
        key = self.card_key(family)
        self.select(df)
        if (kid, family) in self.rights:
            return
        if update:
            x = self.challenge()
            r = self.challenge()
        else:
            x = os.urandom(8)
            r = self.challenge()
        c = ecb(div(key, r), x + bytes(8))
        cryptogram = bytes(a ^ b for a, b in zip(c[:8], c[8:], strict=True))
        self.send([0x00, 0x82, 0x00, kid, 0x11, *cryptogram, *x, 0x01])
        self.rights.add((kid, family))

    def may_read(self, df, ef):
        if (df, ef) not in FREE_FILES:
            self.authenticate(df, *READ_KEY[df], update=False)
        self.select(df, ef)

    def may_update(self, df, ef):
        kid, family = UPDATE_KEY.get((df, ef)) or UPDATE_KEY[df]
        self.authenticate(df, kid, family, update=True)
        self.select(df, ef)

    def record(self, df, ef, n, ok=(0x9000,)):
        self.may_read(df, ef)
        return self.send([0x00, 0xB2, n, 0x04, 0x00], ok)[0]

    def binary(self, df, ef, offset, length):
        self.may_read(df, ef)
        out = b""
        while len(out) < length:
            at = offset + len(out)
            n = min(0x80, length - len(out))
            out += self.send([0x00, 0xB0, at >> 8, at & 0xFF, n])[0]
        return out[:length]

    def write_binary(self, df, ef, data):
        self.may_update(df, ef)
        for at in range(0, len(data), 0x80):
            chunk = data[at:at + 0x80]
            self.send([0x00, 0xD6, at >> 8, at & 0xFF, len(chunk), *chunk])

    def write_tlv(self, df, ef, n, tlv):
        self.may_update(df, ef)
        family = {"DDF1": "STK_DDF1", "DF01": "STK_DF01", "DF02": "STK_DF02"}[df]
        sk = div(self.card_key(family), self.challenge())
        e = ecb(sk, pad(bytes([len(tlv)]) + tlv))
        header = bytes([0x04, 0xDC, n, 0x04, len(e) + 4])
        self.send(list(header + e + mac4(sk, header + e)))


# ---------------------------------------------------------------- operations

def where(item):
    for (df, ef), items in TLV_FILES.items():
        if item in items:
            return df, ef, items.index(item) + 1
    raise Stop(f"item {item} is not one of items 1-57")


def item_number(text, low, high):
    if not text.isdigit() or not low <= int(text) <= high:
        raise Stop(f"{text!r} is not an item or slot number {low}-{high}")
    return int(text)


def values_in(doc, allowed):
    """{item: bytes} of the input document, every value checked before any APDU."""
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), dict):
        raise Stop('expected {"items": {...}} on standard input')
    out = {}
    for key, value in doc["items"].items():
        item = item_number(key, 1, 384)
        if item not in allowed:
            raise Stop(f"item {item} cannot be written by this operation")
        coding, length = allowed[item]
        out[item] = to_bytes(item, coding, length, value)
    return out


def op_get(card, args, doc):
    wanted = sorted({item_number(a, 1, 57) for a in args})
    found = {}
    for item in wanted:
        df, ef, n = where(item)
        raw = card().record(df, ef, n)
        coding, length = ITEMS[item]
        if raw[:2] != bytes([item, length]) or len(raw) != length + 2:
            raise Stop(f"record of item {item} is malformed: {raw.hex().upper()}")
        found[str(item)] = to_text(coding, raw[2:])
    return {"items": found}


def op_put(card, args, doc):
    allowed = {i: ITEMS[i] for i in [7, *range(16, 57)]}
    new = values_in(doc, allowed)
    for item, raw in new.items():
        df, ef, n = where(item)
        card().write_tlv(df, ef, n, bytes([item, len(raw)]) + raw)
    return {"status": "ok"}


def op_append(kind):
    def run(card, args, doc):
        df, ef, layout, _count = CYCLIC[kind]
        new = values_in(doc, {i: (c, n) for i, _o, c, n in layout})
        record = b"".join(new.get(i, blank(c, n)) for i, _o, c, n in layout)
        c = card()
        c.may_update(df, ef)
        c.send([0x00, 0xDC, 0x00, 0x03, len(record), *record])
        return {"status": "ok"}
    return run


def op_read_cyclic(kind):
    def run(card, args, doc):
        df, ef, layout, count = CYCLIC[kind]
        records = []
        c = card()
        for n in range(1, count + 1):
            raw = c.record(df, ef, n, ok=(0x9000, 0x6A83))
            if c.last_sw == 0x6A83:  # no such record: the list ends
                break
            rec = {str(i): to_text(cod, raw[o:o + ln]) for i, o, cod, ln in layout}
            if any(v for v in rec.values()):
                records.append(rec)
        return {"records": records}
    return run


def op_write_record(kind):
    def run(card, args, doc):
        index_ef, prefix, slots, layout, size, order = RECORDS[kind]
        new = values_in(doc, {i: (c, n) for i, _o, c, n in layout})
        record = bytearray(size)
        for i, o, cod, ln in layout:
            record[o:o + ln] = new.get(i, blank(cod, ln))
        c = card()
        flags = [c.record("DF03", index_ef, n) for n in range(1, slots + 1)]
        free = [n for n in range(1, slots + 1) if flags[n - 1] == b"\xff"]
        if free:
            slot = free[0]
        else:
            def when(n):
                return [to_text(cod, c.binary("DF03", f"{prefix}{n:02d}", o, ln))
                        for i, o, cod, ln in layout if i in order]
            slot = min(range(1, slots + 1), key=lambda n: (when(n), n))
        c.may_update("DF03", index_ef)
        c.send([0x84, 0xD2, slot, 0x04, 0x00])  # mark the slot used, then write it
        c.write_binary("DF03", f"{prefix}{slot:02d}", bytes(record))
        return {"status": "ok", "slot": slot}
    return run


def op_read_record(kind):
    def run(card, args, doc):
        index_ef, prefix, slots, layout, size, _order = RECORDS[kind]
        if len(args) != 1:
            raise Stop("give the slot number")
        slot = item_number(args[0], 1, slots)
        c = card()
        if c.record("DF03", index_ef, slot) == b"\xff":
            raise Stop(f"{kind} slot {slot} is free")
        raw = c.binary("DF03", f"{prefix}{slot:02d}", 0, size)
        return {"items": {str(i): to_text(cod, raw[o:o + ln]) for i, o, cod, ln in layout}}
    return run


OPERATIONS = {
    "get": (op_get, False),
    "put": (op_put, True),
    "append-allergy": (op_append("allergy"), True),
    "read-allergies": (op_read_cyclic("allergy"), False),
    "append-immunization": (op_append("immunization"), True),
    "read-immunizations": (op_read_cyclic("immunization"), False),
    "write-inpatient": (op_write_record("inpatient"), True),
    "read-inpatient": (op_read_record("inpatient"), False),
    "write-outpatient": (op_write_record("outpatient"), True),
    "read-outpatient": (op_read_record("outpatient"), False),
}


def main(argv):
    opened = []

    def card():
        """The card, connected on first use (so bad input never reaches it)."""
        if not opened:
            opened.append(Card(os.environ.get("RHC_READER", ""), os.environ.get("RHC_KEYS", "")))
        return opened[0]

    try:
        if not argv or argv[0] not in OPERATIONS:
            raise Stop(f"unknown operation; one of: {', '.join(OPERATIONS)}")
        run, reads_input = OPERATIONS[argv[0]]
        doc = None
        if reads_input:
            try:
                doc = json.loads(sys.stdin.read())
            except ValueError as exc:
                raise Stop(f"standard input is not JSON: {exc}") from None
        if argv[0] not in ("get", "read-inpatient", "read-outpatient") and argv[1:]:
            raise Stop(f"{argv[0]} takes no arguments")
        result, status = run(card, argv[1:], doc), 0
    except Stop as stop:
        result, status = {"status": "error", "message": str(stop)}, 1
        if stop.sw:
            result["sw"] = stop.sw
    except Exception as exc:  # the reader, the key file: still one JSON document
        result, status = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}, 1
    finally:
        for c in opened:
            c.close()
    print(json.dumps(result, ensure_ascii=False))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
