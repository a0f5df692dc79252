"""The card operating system: command dispatch and handlers, in the check order of §5.

Each handler checks, in this order, and answers the first failure (REFERENCE.md §5):
CLA → INS → P1/P2 → Lc/Le syntax → current EF → file structure → security (rights, challenge,
MAC) → record or offset range → data content. Dispatch does the first two; every handler
is written top to bottom in the same order so a reader can check it against the reference.

Everything wire-visible comes from the profile: classes and instructions
(``profile.command``), status words (``profile.sw``), files and their access rules, key
references, retry limits. The only constants here are ISO/IEC 7816-4 encodings the profile
does not model (the MF's FID, P2 values, the SIMPLE-TLV layout).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable

from conformance import crypto
from conformance.card.content import CardContent, EFile, index_flags
from conformance.card.deviations import StatusWordBend, refusals
from conformance.card.faults import FaultSet
from conformance.card.security import SecurityState
from conformance.model.profile import CardProfile
from conformance.model.schema import Structure, UpdateMode

__all__ = ["MF_FID", "MF_NAME", "CardOS", "Command"]

MF_NAME = "MF"
"""The profile's name for the root DF (the ``parent`` of top-level DFs)."""
MF_FID = bytes.fromhex("3F00")
"""ISO/IEC 7816-4 reserves FID 3F00 for the MF; the profile does not repeat it."""
FREE = "free"
"""The profile's access keyword for a file anyone may read."""

# ISO/IEC 7816-4 parameter encodings used by the reference profile (§5).
P2_RECORD_NUMBER = 0x04  # READ/UPDATE RECORD: P1 is a record number
P2_RECORD_ID = 0x00  # READ RECORD: P1 is a record identifier (tag)
P2_CYCLIC_NEW = 0x03  # UPDATE RECORD on a cyclic file: write a new record 1
SELECT_P2 = (0x00, 0x0C)  # SELECT: FCI requested / no response data
NO_SFI_BIT = 0x80  # READ/UPDATE BINARY: P1 bit 8 set would mean an SFI
CHANGE_PIN_P1 = 0x01
CHANGE_PIN_SEPARATOR = 0xFF

ERROR_SW = b"\x6f\x00"
"""ISO 'no precise diagnosis': only ever answered if a handler itself fails (a card bug)."""


class Command:
    """A parsed short command APDU; ``malformed`` marks an Lc/Le that does not add up."""

    __slots__ = ("cla", "data", "ins", "le", "malformed", "p1", "p2", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.cla, self.ins, self.p1, self.p2 = raw[0], raw[1], raw[2], raw[3]
        self.data = b""
        self.le: int | None = None
        self.malformed = False
        n = len(raw)
        if n == 5:
            self.le = raw[4] or 256
        elif n > 5:
            lc = raw[4]
            if lc == 0:  # extended length, which the card does not support
                self.malformed = True
            elif n == 5 + lc:
                self.data = raw[5:]
            elif n == 6 + lc:
                self.data = raw[5:-1]
                self.le = raw[-1] or 256
            else:
                self.malformed = True


Handler = Callable[[Command], bytes]


def _read_extended(c: Command) -> None:
    """Fault extended_length_accepted: read an extended-length APDU (00 ‖ Lc(2) ‖ data ‖
    Le(2), or 00 ‖ Le(2)) instead of refusing it."""
    body = c.raw[5:]
    if len(body) == 2:
        c.le = int.from_bytes(body, "big") or 65536
    elif len(body) > 2:
        lc, rest = int.from_bytes(body[:2], "big"), body[2:]
        if len(rest) == lc:
            c.data = rest
        elif len(rest) == lc + 2:
            c.data, c.le = rest[:lc], int.from_bytes(rest[lc:], "big") or 65536
        else:
            return
    else:
        return
    c.malformed = False


class CardOS:
    """Answers APDUs from a card's content, security state, features and faults."""

    def __init__(
        self,
        profile: CardProfile,
        content: CardContent,
        features: frozenset[str],
        faults: FaultSet,
    ) -> None:
        self.profile = profile
        self.content = content
        self.features = features
        self.faults = faults
        self.state = SecurityState()
        self.cur_df = MF_NAME
        self.cur_ef: EFile | None = None
        self.last_error: BaseException | None = None
        self._pending: bytes | None = None
        self._pending_binary = False  # the pending data came from READ BINARY
        self._sm_challenge: bytes | None = None
        self._t0 = "t0_get_response" in features
        self._bend = StatusWordBend(profile, faults)  # the declared status-word faults
        self._refusals = refusals(profile, faults)  # (command, P2) → SW, declared faults
        self._init_status_words()
        self._init_tree()
        self._init_keys()
        self._init_dispatch()
        sec = profile.spec.security
        self._challenge_len = sec.challenge_length
        self._auth_len = 2 * sec.challenge_length + 1
        self._auth_trailer = bytes([sec.ext_auth_trailer])
        self._retry_limit = sec.retry_limit
        self._max_le = sec.max_short_le
        self._pin_len = sec.pin.length_bytes
        self._pin_limit = sec.pin.tries
        pool = int(faults.fault("challenge_small_pool").value)
        self._pool = [secrets.token_bytes(sec.challenge_length) for _ in range(pool)]
        self._pool_next = 0

    # ------------------------------------------------------------------ set-up from the model
    def _init_status_words(self) -> None:
        p = self.profile
        needed = [
            "ok",
            "wrong_length",
            "incompatible_file_structure",
            "security_not_satisfied",
            "key_locked",
            "no_challenge",
            "no_current_ef",
            "wrong_mac",
            "wrong_data",
            "file_not_found",
            "record_not_found",
            "wrong_p1p2",
            "key_not_found",
            "offset_beyond_end",
            "ins_not_supported",
            "cla_not_supported",
        ]
        missing = [n for n in needed if n not in p.spec.status_words]
        if missing:
            raise ValueError(f"profile {p.spec.profile.name} lacks status words {missing}")
        sw = {n: p.sw(n).to_bytes(2, "big") for n in needed}
        self.OK = sw["ok"]
        self.WRONG_LENGTH = sw["wrong_length"]
        self.INCOMPATIBLE = sw["incompatible_file_structure"]
        self.SECURITY = sw["security_not_satisfied"]
        self.KEY_LOCKED = sw["key_locked"]
        self.NO_CHALLENGE = sw["no_challenge"]
        self.NO_CURRENT_EF = sw["no_current_ef"]
        self.WRONG_MAC = sw["wrong_mac"]
        self.WRONG_DATA = sw["wrong_data"]
        self.FILE_NOT_FOUND = sw["file_not_found"]
        self.RECORD_NOT_FOUND = sw["record_not_found"]
        self.WRONG_P1P2 = sw["wrong_p1p2"]
        self.KEY_NOT_FOUND = sw["key_not_found"]
        self.OFFSET_BEYOND_END = sw["offset_beyond_end"]
        self.INS_NOT_SUPPORTED = sw["ins_not_supported"]
        self.CLA_NOT_SUPPORTED = sw["cla_not_supported"]
        self._sw1_wrong_le = int(p.sw_prefix("wrong_le"), 16)
        self._sw1_available = int(p.sw_prefix("bytes_available"), 16)
        cryptogram = p.sw_prefix("wrong_cryptogram")  # "63C": SW1 and the high nibble of SW2
        self._sw_cryptogram = int(cryptogram.ljust(4, "0"), 16)

    def _init_tree(self) -> None:
        """SELECT lookup tables: for each current DF, FID → target in the order of §5."""
        dfs = self.profile.dfs
        fid = {MF_NAME: MF_FID} | {name: bytes.fromhex(d.fid) for name, d in dfs.items()}
        parent: dict[str, str | None] = {MF_NAME: None} | {n: d.parent for n, d in dfs.items()}
        child_dfs: dict[str, list[str]] = {name: [] for name in fid}
        for name, d in dfs.items():
            child_dfs[d.parent].append(name)
        child_efs: dict[str, list[EFile]] = {name: [] for name in fid}
        for ef in self.content.files.values():
            child_efs[ef.df].append(ef)
        self._lookup: dict[str, dict[bytes, str | EFile]] = {}
        children_only = self.faults.active("select_children_only")
        for cur in fid:
            table: dict[bytes, str | EFile] = {}
            if not children_only:
                table.setdefault(MF_FID, MF_NAME)
            for name in child_dfs[cur]:
                table.setdefault(fid[name], name)
            for ef in child_efs[cur]:
                table.setdefault(ef.fid, ef)
            if not children_only:
                table.setdefault(fid[cur], cur)
            up = parent[cur]
            if up is not None and not children_only:
                table.setdefault(fid[up], up)
                for name in child_dfs[up]:
                    table.setdefault(fid[name], name)
            if self.faults.active("select_any_ef"):
                for ef in self.content.files.values():
                    table.setdefault(ef.fid, ef)
            self._lookup[cur] = table
        self._index_flags = {
            path: index_flags(self.profile, self.profile.file(path).items)
            for path, ef in self.content.files.items()
            if ef.access.mark is not None or ef.access.erase is not None
        }

    def _init_keys(self) -> None:
        self._kids = {
            (k.df, k.kid): name for name, k in self.profile.keys.items() if k.kid is not None
        }
        self._sm_key = {name: d.sm_key for name, d in self.profile.dfs.items()}
        city = [n for n, item in self.profile.items.items() if "code:city" in item.rules]
        self._city_place = self.profile.place(city[0]) if city else None

    def _init_dispatch(self) -> None:
        handlers: dict[str, Handler] = {
            "select": self._select,
            "read_binary": self._read_binary,
            "update_binary": self._update_binary,
            "read_record": self._read_record,
            "update_record": self._update_record,
            "update_record_sm": self._update_record_sm,
            "mark_record": self._mark_record,
            "erase_record": self._erase_record,
            "get_challenge": self._get_challenge,
            "external_authenticate": self._external_authenticate,
            "get_response": self._get_response,
            "verify_pin": self._verify_pin,
            "change_pin": self._change_pin,
        }
        commands = self.profile.spec.commands
        unknown = sorted(set(commands) - set(handlers))
        if unknown:
            raise ValueError(f"the virtual card does not implement profile command(s) {unknown}")
        self._classes = {c.cla for c in commands.values()}
        self._by_ins: dict[int, dict[int, tuple[str, Handler]]] = {}
        for name, c in commands.items():
            if c.feature is None or c.feature in self.features:
                self._by_ins.setdefault(c.ins, {})[c.cla] = (name, handlers[name])
        self._get_response_cmd = self.profile.command("get_response")
        self._sm_cla = self.profile.command("update_record_sm")[0]
        self._ext_auth_cmd = self.profile.command("external_authenticate")

    # ------------------------------------------------------------------ entry points
    def reset(self) -> None:
        """Power-up: MF current, no EF, no rights, no challenge, nothing pending."""
        self.state.reset(
            keep_rights=self.faults.active("sec_rights_survive_reset"),
            keep_challenge=self.faults.active("sec_challenge_survives_reset"),
        )
        self.cur_df = MF_NAME
        self.cur_ef = None
        self._pending = None

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU; never raises (a handler bug answers 6F00, kept in
        ``last_error`` for the suite's own tests)."""
        try:
            return self._process(bytes(apdu))
        except Exception as exc:  # the card must answer something, as a real one would
            self.last_error = exc
            return ERROR_SW

    def _process(self, raw: bytes) -> bytes:
        if len(raw) < 4:
            self._pending = None
            return self.WRONG_LENGTH
        c = Command(raw)
        if c.malformed and self.faults.active("extended_length_accepted"):
            _read_extended(c)
        cla, ins = c.cla, c.ins
        if (cla, ins) != self._get_response_cmd:
            self._pending = None
        if cla == self._sm_cla:  # any CLA-04 command uses the challenge up, whatever its fate
            self._sm_challenge = self.state.take_challenge(
                keep=self.faults.active("sec_challenge_reusable")
            )
        cla_known = cla in self._classes
        if not cla_known and not self.faults.active("unknown_cla_accepted"):
            return self.CLA_NOT_SUPPORTED
        table = self._by_ins.get(ins)
        if table is None:
            return self._bend("", self.INS_NOT_SUPPORTED)
        entry = table.get(cla)
        if entry is None:
            if cla_known and not self.faults.active("known_ins_wrong_class_accepted"):
                return self.CLA_NOT_SUPPORTED
            # faults unknown_cla_accepted / known_ins_wrong_class_accepted
            entry = next(iter(table.values()))
        name, handler = entry
        refused = self._refusals.get((name, c.p2))
        return self._bend(name, refused if refused is not None else handler(c))

    # ------------------------------------------------------------------ answers
    def _data(self, data: bytes, *, binary: bool = False) -> bytes:
        """Response data with 9000, or (feature t0_get_response) 61xx and data held back."""
        if self._t0 and data:
            self._pending = data
            self._pending_binary = binary
            return bytes([self._sw1_available, len(data) & 0xFF])
        return data + self.OK

    def _fault_sw(self, name: str) -> bytes:
        """The deviating status word a hook fault carries in its ``value``."""
        return bytes.fromhex(self.faults.fault(name).value)

    def _wrong_le(self, right: int) -> bytes:
        return bytes([self._sw1_wrong_le, right & 0xFF])

    def _wrong_lc(self) -> bytes:
        return self._fault_sw("wrong_lc_6a87") if self.faults.active("wrong_lc_6a87") \
            else self.WRONG_LENGTH

    def _cryptogram_sw(self, tries_left: int) -> bytes:
        return (self._sw_cryptogram | tries_left).to_bytes(2, "big")

    # ------------------------------------------------------------------ rights
    def _has(self, key: str | None) -> bool:
        """Whether the right named ``key`` (a key family or ``free``) holds in the current DF."""
        return key is not None and (key == FREE or key in self.state.rights_in(self.cur_df))

    def _may_read(self, ef: EFile) -> bool:
        if self._has(ef.access.read):
            return True
        f = self.faults
        if f.active("sec_read_unchecked"):
            return True
        if f.active("sec_update_grants_read") and self._has(ef.access.update):
            return True
        opens = f.fault("sec_ddf1_read_opens_df01")
        return (
            f.active(opens.name)
            and ef.df == opens.target
            and opens.value in self.state.granted_since_reset
        )

    def _may_update(self, ef: EFile) -> bool:
        if self._has(ef.access.update):
            return True
        rights = self.state.rights_in(self.cur_df)
        if self.faults.active("sec_update_any_key") and self.state.granted_since_reset:
            return True
        f = self.faults.fault("rec_read_key_writes")
        if self.faults.active(f.name) and ef.df == f.target and ef.data is not None:
            return f.value in rights
        f = self.faults.fault("sec_uk_df02_1_opens_ef06")
        return self.faults.active(f.name) and ef.path == f.target and f.value in rights

    def _card_key(self, family: str) -> bytes:
        """The card key of a family: fixed at personalization (unless a fault re-derives it)."""
        if self.faults.active("sec_keys_follow_item57") and self._city_place is not None:
            first = self.content.card_number_keys.get(family)
            place = self._city_place
            ef = self.content.files.get(place.path)
            if first is not None and ef is not None and ef.records and place.record:
                city = ef.records[place.record - 1][2:]
                return crypto.diversify(first, crypto.city_code_factor(city))
        return self.content.card_keys[family]

    # ------------------------------------------------------------------ SELECT
    def _select(self, c: Command) -> bytes:
        if self.faults.active("sec_challenge_cleared_by_select"):
            self.state.challenge = None
        if (
            c.p1 != 0
            or c.p2 not in SELECT_P2
        ):
            return self.WRONG_P1P2
        if c.malformed:
            return self.WRONG_LENGTH
        if len(c.data) != len(MF_FID):
            return self._wrong_lc()
        target = self._lookup[self.cur_df].get(c.data)
        if target is None:
            return self.FILE_NOT_FOUND
        if isinstance(target, str):
            self._enter_df(target)
        else:
            self.cur_ef = target
        return self.OK

    def _enter_df(self, name: str) -> None:
        if name != self.cur_df:
            if not self.faults.active("sec_rights_survive_df_change"):
                self.state.leave_df(self.cur_df)
            self.cur_df = name
        elif self.faults.active("sec_reselect_df_clears"):
            self.state.leave_df(name)
        self.cur_ef = None

    # ------------------------------------------------------------------ READ RECORD
    def _read_record(self, c: Command) -> bytes:
        if c.p2 == P2_RECORD_NUMBER:
            by_tag = False
        elif c.p2 == P2_RECORD_ID:
            by_tag = True
        else:
            return self.WRONG_P1P2
        if c.malformed or c.data:
            return self.WRONG_LENGTH
        ef = self.cur_ef
        if ef is None:
            return self.NO_CURRENT_EF
        records = ef.records
        if records is None or (by_tag and ef.structure is not Structure.TLV_RECORDS):
            return self.INCOMPATIBLE
        if not self._may_read(ef):
            return self.SECURITY
        record: bytes | None = None
        if by_tag:
            record = next((r for r in records if r[0] == c.p1), None)
        elif 1 <= c.p1 <= len(records):
            record = records[c.p1 - 1]
        if record is None:
            return self.RECORD_NOT_FOUND
        le = c.le
        if le is not None and le != self._max_le and le != len(record):
            return self._wrong_le(len(record))
        return self._data(record)

    # ------------------------------------------------------------------ READ / UPDATE BINARY
    def _read_binary(self, c: Command) -> bytes:
        if c.p1 & NO_SFI_BIT:
            return self.WRONG_P1P2
        if c.malformed or c.data:
            return self.WRONG_LENGTH
        ef = self.cur_ef
        if ef is None:
            return self.NO_CURRENT_EF
        data = ef.data
        if data is None:
            return self.INCOMPATIBLE
        if not self._may_read(ef):
            return self.SECURITY
        offset = (c.p1 << 8) | c.p2
        if offset >= len(data):
            return self.OFFSET_BEYOND_END
        left = len(data) - offset
        le = c.le
        if le is None or le == self._max_le:
            n = min(self._max_le, left)
        elif le > left:
            return self._wrong_le(left)
        else:
            n = le
        return self._data(bytes(data[offset : offset + n]), binary=True)

    def _update_binary(self, c: Command) -> bytes:
        if c.p1 & NO_SFI_BIT:
            return self.WRONG_P1P2
        if c.malformed or not c.data:
            return self.WRONG_LENGTH
        ef = self.cur_ef
        if ef is None:
            return self.NO_CURRENT_EF
        data = ef.data
        if data is None:
            return self.INCOMPATIBLE
        if ef.access.update_mode is not UpdateMode.PLAIN or not self._may_update(ef):
            return self.SECURITY
        offset = 0 if self.faults.active("rec_offset_ignored") else (c.p1 << 8) | c.p2
        if offset >= len(data):
            return self.OFFSET_BEYOND_END
        end = offset + len(c.data)
        if end > len(data):
            f = self.faults.fault("rec_update_past_end_truncates")
            if not (self.faults.active(f.name) and ef.df == f.target):
                return self.WRONG_LENGTH
            end = len(data)
        sig = ef.signature
        if (
            sig is not None
            and self.faults.active("rec_signature_readonly")
            and offset < sig[0] + sig[1]
            and end > sig[0]
        ):
            return self._fault_sw("rec_signature_readonly")
        f = self.faults.fault("rec_truncate_1024")
        if self.faults.active(f.name) and ef.df == f.target:
            end = min(end, max(offset, int(f.value)))
        data[offset:end] = c.data[: end - offset]
        return self.OK

    # ------------------------------------------------------------------ UPDATE RECORD (plain)
    def _update_record(self, c: Command) -> bytes:
        if c.p2 == P2_RECORD_NUMBER:
            new_cyclic = False
        elif c.p2 == P2_CYCLIC_NEW and c.p1 == 0:
            new_cyclic = True
        else:
            return self.WRONG_P1P2
        if c.malformed or not c.data:
            return self.WRONG_LENGTH
        ef = self.cur_ef
        if ef is None:
            return self.NO_CURRENT_EF
        records = ef.records
        if records is None or (new_cyclic and ef.structure is not Structure.CYCLIC):
            return self.INCOMPATIBLE
        if ef.structure is Structure.TLV_RECORDS:  # TLV files change only under SM
            if not (self.faults.active("sec_plain_update_tlv") and self._may_update(ef)):
                return self.SECURITY
        elif (ef.access.update_mode is not UpdateMode.PLAIN or not self._may_update(ef)) and not (
            self.faults.active("idx_plain_update_accepted")
            and ef.access.mark in self.state.rights_in(self.cur_df)
        ):
            return self.SECURITY  # index files change only by mark/erase
        if new_cyclic:
            length = ef.record_length
        elif 1 <= c.p1 <= len(records):
            length = len(records[c.p1 - 1])
        else:
            return self.RECORD_NOT_FOUND
        if len(c.data) != length:
            return self.WRONG_LENGTH
        if (
            not new_cyclic
            and ef.structure is Structure.CYCLIC
            and self.faults.active("cyc_rewrite_appends")
        ):
            new_cyclic = True
        if not new_cyclic:
            records[c.p1 - 1] = c.data
        elif self.faults.active("cyc_no_rotate"):
            records[0] = c.data
        elif self.faults.active("cyc_newest_last"):
            del records[0]
            records.append(c.data)
        else:
            records.insert(0, c.data)
            del records[-1]
        return self.OK

    # ------------------------------------------------------------------ UPDATE RECORD (SM)
    def _update_record_sm(self, c: Command) -> bytes:
        challenge, self._sm_challenge = self._sm_challenge, None
        if c.p2 != P2_RECORD_NUMBER:
            return self.WRONG_P1P2
        if c.malformed or not c.data:
            return self.WRONG_LENGTH
        ef = self.cur_ef
        if ef is None:
            return self.NO_CURRENT_EF
        records = ef.records
        if records is None or ef.structure is not Structure.TLV_RECORDS:
            return self.INCOMPATIBLE
        if not self._may_update(ef) and not self.faults.active("sec_sm_without_update_right"):
            return self.SECURITY
        if challenge is None:
            return self.NO_CHALLENGE
        sk = crypto.session_key(self._card_key(self._sm_key[ef.df]), challenge)
        header, body = c.raw[:5], c.data
        tlv: bytes | None = None
        try:
            tlv = crypto.sm_unwrap_update(sk, header, body)
        except crypto.MacError:
            if not self.faults.active("sec_wrong_mac_accepted"):
                return self.WRONG_MAC
            enc = body[: -crypto.MAC_LEN]
            body = enc + crypto.cbc_mac(sk, header + enc)[: crypto.MAC_LEN]
            try:
                tlv = crypto.sm_unwrap_update(sk, header, body)
            except crypto.SecureMessagingError:
                tlv = None
        except crypto.SecureMessagingError:
            tlv = None
        if not 1 <= c.p1 <= len(records):
            return self.RECORD_NOT_FOUND
        if tlv is None:
            return self.WRONG_DATA
        tag = ef.tags[c.p1 - 1]
        length = self.profile.item(tag).length
        if (len(tlv) != length + 2 or tlv[0] != tag or tlv[1] != length) and not (
            self.faults.active("sec_sm_tlv_unchecked")
        ):
            return self.WRONG_DATA
        if not self.faults.active("sec_sm_update_ignored"):
            records[c.p1 - 1] = tlv
        return self.OK

    # ------------------------------------------------------------------ index mark / erase
    def _mark_record(self, c: Command) -> bytes:
        return self._index_record(c, mark=True)

    def _erase_record(self, c: Command) -> bytes:
        return self._index_record(c, mark=False)

    def _index_record(self, c: Command, *, mark: bool) -> bytes:
        if c.p2 != P2_RECORD_NUMBER:
            return self.WRONG_P1P2
        if (
            c.malformed
            or (c.data and not self.faults.active("idx_data_field_accepted"))
            or (c.le is not None and c.le != self._max_le)
        ):
            return self.WRONG_LENGTH
        ef = self.cur_ef
        if ef is None:
            return self.NO_CURRENT_EF
        key = ef.access.mark if mark else ef.access.erase
        records = ef.records
        if key is None or records is None:
            return self.INCOMPATIBLE
        rights = self.state.rights_in(self.cur_df)
        other = self.faults.fault("sec_uk_df03_2_marks" if mark else "sec_uk_df03_1_erases")
        if (
            not self._has(key)
            and not (self.faults.active(other.name) and other.value in rights)
            and not (self.faults.active("sec_update_any_key") and self.state.granted_since_reset)
        ):
            return self.SECURITY
        if not 1 <= c.p1 <= len(records):
            return self.RECORD_NOT_FOUND
        used, free = self._index_flags[ef.path]
        if mark:
            flag = used
            if self.faults.active("idx_mark_writes_01"):
                flag = self._fault_sw("idx_mark_writes_01")
        else:
            if self.faults.active("idx_erase_noop"):
                return self.OK
            flag = free
        records[c.p1 - 1] = flag * ef.record_length
        return self.OK

    # ------------------------------------------------------------------ challenge, auth
    def _get_challenge(self, c: Command) -> bytes:
        if c.p1 or c.p2:
            return self.WRONG_P1P2
        n = self._challenge_len
        if c.malformed or c.data or c.le != n:
            if not (
                self.faults.active("get_challenge_any_le")
                and not c.malformed
                and not c.data
                and c.le is not None
            ):
                return self.WRONG_LENGTH
            n = c.le
        if self.faults.active("constant_challenge"):
            challenge = self._fault_sw("constant_challenge")[:n].ljust(n, b"\x00")
        elif self.faults.active("challenge_small_pool"):
            challenge = self._pool[self._pool_next][:n].ljust(n, b"\x00")
            self._pool_next = (self._pool_next + 1) % len(self._pool)
        else:
            challenge = secrets.token_bytes(n)
        self.state.challenge = challenge
        return self._data(challenge)

    def _external_authenticate(self, c: Command) -> bytes:
        faults = self.faults
        challenge = self.state.take_challenge(keep=faults.active("sec_challenge_reusable"))
        if c.p1 != 0:
            return self.WRONG_P1P2
        if c.malformed:
            return self.WRONG_LENGTH
        if len(c.data) != self._auth_len:
            return self._wrong_lc()
        family = self._kids.get((self.cur_df, c.p2))
        if family is None and faults.active("sec_kid_any_df"):
            family = next((n for (_df, kid), n in self._kids.items() if kid == c.p2), None)
        if family is None:
            return self.KEY_NOT_FOUND
        left = self.content.retry[family]
        if left == 0:
            return self.KEY_LOCKED
        if challenge is None:
            return self.NO_CHALLENGE
        n = self._challenge_len
        cryptogram, x, trailer = c.data[:n], c.data[n : 2 * n], c.data[2 * n :]
        sk = crypto.session_key(self._card_key(family), challenge)
        if not hmac.compare_digest(crypto.auth_cryptogram(sk, x), cryptogram):
            if left > 0 and not faults.active("sec_retry_not_decremented"):
                left -= 1
                self.content.retry[family] = left
            if faults.active("sec_failed_auth_revokes"):
                self.state.revoke_all_in(self.cur_df)
            return self._cryptogram_sw(left)
        if trailer != self._auth_trailer and not faults.active("sec_ext_auth_trailer_ignored"):
            return self.WRONG_DATA
        if not faults.active("sec_retry_not_restored"):
            self.content.retry[family] = self._retry_limit
        if not (
            faults.active("sec_read_key_grants_nothing") and self.profile.key(family).use == "read"
        ):
            self.state.grant(self.cur_df, family)
        return self.OK

    # ------------------------------------------------------------------ GET RESPONSE (T=0)
    def _get_response(self, c: Command) -> bytes:
        if c.p1 or c.p2:
            return self.WRONG_P1P2
        if c.malformed or c.data or c.le is None:
            return self.WRONG_LENGTH
        pending = self._pending
        if pending is None:
            return self.NO_CHALLENGE  # 6985: conditions of use not satisfied
        if c.le != self._max_le and c.le != len(pending):
            return self._wrong_le(len(pending))
        self._pending = None
        if self.faults.active("get_response_broken") or (
            self._pending_binary and self.faults.active("get_response_binary_short")
        ):
            pending = pending[:-1]
        return pending + self.OK

    # ------------------------------------------------------------------ PIN (feature pin)
    def _pin_bcd(self) -> bytes:
        return bytes.fromhex(self.content.pin or "")

    def _wrong_pin(self) -> bytes:
        tries = self.content.pin_tries
        if tries > 0 and not self.faults.active("pin_wrong_not_decremented"):
            tries -= 1
            self.content.pin_tries = tries
        self.state.pin_verified = False
        return self._cryptogram_sw(tries)

    def _verify_pin(self, c: Command) -> bytes:
        if c.p1 or c.p2:
            return self.WRONG_P1P2
        if c.malformed or len(c.data) != self._pin_len:
            return self.WRONG_LENGTH
        if self.content.pin_tries == 0:
            return self.KEY_LOCKED
        if not hmac.compare_digest(c.data, self._pin_bcd()):
            return self._wrong_pin()
        self.content.pin_tries = self._pin_limit
        self.state.pin_verified = True
        return self.OK

    def _change_pin(self, c: Command) -> bytes:
        if c.p1 != CHANGE_PIN_P1 or c.p2:
            return self.WRONG_P1P2
        n = self._pin_len
        if c.malformed or len(c.data) != 2 * n + 1:
            return self.WRONG_LENGTH
        if self.content.pin_tries == 0:
            return self.KEY_LOCKED
        old, separator, new = c.data[:n], c.data[n], c.data[n + 1 :]
        if not hmac.compare_digest(old, self._pin_bcd()) and not self.faults.active(
            "pin_change_no_old_check"
        ):
            return self._wrong_pin()
        digits = new.hex()
        if separator != CHANGE_PIN_SEPARATOR or not digits.isdigit():
            return self.WRONG_DATA
        self.content.pin_tries = self._pin_limit
        if not self.faults.active("pin_change_ignored"):
            self.content.pin = digits
        return self.OK
