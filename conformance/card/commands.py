"""The card operating system: command dispatch and handlers, in the check order of §5.

Each handler checks, in this order, and answers the first failure (REFERENCE.md §5):
CLA → INS → P1/P2 → Lc/Le syntax → current EF → file structure → security (rights, challenge,
MAC) → record or offset range → data content. Dispatch does the first two; every handler
is written top to bottom in the same order so a reader can check it against the reference.

This class is the reference card and nothing else: it never asks about a fault. The declared
faults reach it as data at four points (:mod:`conformance.card.deviations`: the file tree,
the personalization, commands refused outright, status words on the way out); the behavioural
ones are overrides of its small decision methods (``_may_read``, ``_new_challenge``,
``_auth_failed``, …) in :class:`conformance.card.hooks.FaultyCardOS`.

Everything wire-visible comes from the profile: classes and instructions
(``profile.command``), status words (``profile.sw``), files and their access rules, key
references, retry limits. The only constants here are ISO/IEC 7816-4 encodings the profile
does not model (the MF's FID, P2 values, the SIMPLE-TLV layout).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conformance import crypto
from conformance.card.content import CardContent, EFile, index_flags
from conformance.card.deviations import StatusWordBend, extra_keys, refusals
from conformance.card.faults import FaultSet
from conformance.card.security import SecurityState
from conformance.model.profile import CardProfile
from conformance.model.schema import Structure, UpdateMode

if TYPE_CHECKING:
    from conformance.card.pboc import PbocApplication
    from conformance.model.application import OtherApplication

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


@dataclass(frozen=True)
class _Tree:
    """The DF/EF tree as SELECT sees it: FIDs, parents and children of every DF."""

    fid: dict[str, bytes]
    parent: dict[str, str | None]
    child_dfs: dict[str, list[str]]
    child_efs: dict[str, list[EFile]]


class CardOS:
    """The reference card OS: answers APDUs from a card's content, security state and
    features, with the declared faults' refusals and status words applied on the way."""

    def __init__(
        self,
        profile: CardProfile,
        content: CardContent,
        features: frozenset[str],
        faults: FaultSet,
        other_application: OtherApplication | None = None,
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
        self._sm_challenge: bytes | None = None
        self._t0 = "t0_get_response" in features
        self._bend = StatusWordBend(profile, faults)  # the declared status-word faults
        self._refusals = refusals(profile, faults)  # (command, P2) → SW, declared faults
        self._extra_keys = extra_keys(faults)  # keys that also grant a right, declared faults
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
        self._other = self._init_other(other_application)

    def _init_other(self, app: OtherApplication | None) -> PbocApplication | None:
        """Feature co_branded: the other application beside DDF1 (conformance/card/pboc.py)."""
        if app is None or self.content.other is None:
            return None
        from conformance.card.pboc import PbocApplication

        return PbocApplication(app, self.content.other, self)

    def leave_for_other_application(self) -> None:
        """The other application was selected: the health DF is left (its rights cleared,
        as for any other DF, §3) and the health side stands at the MF with no EF."""
        self.state.leave_df(self.cur_df)
        self.cur_df = MF_NAME
        self.cur_ef = None

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
        tree = _Tree(fid, parent, child_dfs, child_efs)
        self._lookup = {cur: self._select_table(tree, cur) for cur in fid}
        self._index_flags = {
            path: index_flags(self.profile, self.profile.file(path).items)
            for path, ef in self.content.files.items()
            if ef.access.mark is not None or ef.access.erase is not None
        }

    def _select_table(self, tree: _Tree, cur: str) -> dict[bytes, str | EFile]:
        """FID → target with ``cur`` current: the MF, the children (DFs, then EFs), the
        current DF itself, its parent and the parent's children (§5 SELECT lookup order)."""
        table: dict[bytes, str | EFile] = {MF_FID: MF_NAME}
        for name in tree.child_dfs[cur]:
            table.setdefault(tree.fid[name], name)
        for ef in tree.child_efs[cur]:
            table.setdefault(ef.fid, ef)
        table.setdefault(tree.fid[cur], cur)
        up = tree.parent[cur]
        if up is not None:
            table.setdefault(tree.fid[up], up)
            for name in tree.child_dfs[up]:
                table.setdefault(tree.fid[name], name)
        return table

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
        self._reset_state()
        self.cur_df = MF_NAME
        self.cur_ef = None
        self._pending = None
        if self._other is not None:
            self._other.reset()

    def _reset_state(self) -> None:
        self.state.reset()

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
        c = self._parse(raw)
        cla, ins = c.cla, c.ins
        if (cla, ins) != self._get_response_cmd:
            self._pending = None
        if self._other is not None:  # feature co_branded: the other application's commands
            answer = self._other.process(c)
            if answer is not None:
                return answer
        if cla == self._sm_cla:  # any CLA-04 command uses the challenge up, whatever its fate
            self._sm_challenge = self._take_challenge()
        entry = self._route(cla, ins)
        if isinstance(entry, bytes):
            return self._bend("", entry)
        name, handler = entry
        refused = self._refusals.get((name, c.p2))
        return self._bend(name, refused if refused is not None else handler(c))

    def _parse(self, raw: bytes) -> Command:
        return Command(raw)

    def _take_challenge(self) -> bytes | None:
        """The challenge for this command, used up (§3: a challenge serves once)."""
        return self.state.take_challenge()

    def _route(self, cla: int, ins: int) -> tuple[str, Handler] | bytes:
        """The (command name, handler) for CLA/INS, or the status word refusing them (§5:
        CLA is checked first, then INS, then that the INS belongs to that CLA)."""
        if cla not in self._classes:
            return self.CLA_NOT_SUPPORTED
        table = self._by_ins.get(ins)
        if table is None:
            return self.INS_NOT_SUPPORTED
        return table.get(cla) or self.CLA_NOT_SUPPORTED

    # ------------------------------------------------------------------ answers
    def _data(self, data: bytes) -> bytes:
        """Response data with 9000, or (feature t0_get_response) 61xx and data held back."""
        if self._t0 and data:
            self._pending = data
            return bytes([self._sw1_available, len(data) & 0xFF])
        return data + self.OK

    def _wrong_le(self, right: int) -> bytes:
        return bytes([self._sw1_wrong_le, right & 0xFF])

    def _wrong_lc(self) -> bytes:
        """A data field of the wrong length (SELECT, EXTERNAL AUTHENTICATE)."""
        return self.WRONG_LENGTH

    def _cryptogram_sw(self, tries_left: int) -> bytes:
        return (self._sw_cryptogram | tries_left).to_bytes(2, "big")

    # ------------------------------------------------------------------ rights
    def _has(self, key: str | None) -> bool:
        """Whether the right named ``key`` (a key family or ``free``) holds in the current DF."""
        return key is not None and (key == FREE or key in self.state.rights_in(self.cur_df))

    def _may(self, ef: EFile, right: str) -> bool:
        """Whether ``right`` on the EF holds: its access rule's key (or, with a declared
        fault, another key that also grants it)."""
        keys = (getattr(ef.access, right), *self._extra_keys(ef.path, right))
        return any(self._has(k) for k in keys)

    def _may_read(self, ef: EFile) -> bool:
        return self._may(ef, "read")

    def _may_update(self, ef: EFile) -> bool:
        return self._may(ef, "update")

    def _may_update_plain(self, ef: EFile) -> bool:
        """Plain UPDATE RECORD: TLV files change only under SM, index files only by mark and
        erase (6982), other record files with their update right."""
        if ef.structure is Structure.TLV_RECORDS:
            return False
        return ef.access.update_mode is UpdateMode.PLAIN and self._may_update(ef)

    def _may_sm_update(self, ef: EFile) -> bool:
        return self._may_update(ef)

    def _may_index(self, ef: EFile, *, mark: bool) -> bool:
        return self._may(ef, "mark" if mark else "erase")

    def _card_key(self, family: str) -> bytes:
        """The card key of a family: fixed at personalization (§3)."""
        return self.content.card_keys[family]

    # ------------------------------------------------------------------ SELECT
    def _select(self, c: Command) -> bytes:
        if c.p1 != 0 or c.p2 not in SELECT_P2:
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
        """Selecting another DF clears the rights of the one left; the same DF keeps them."""
        if name != self.cur_df:
            self.state.leave_df(self.cur_df)
            self.cur_df = name
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
        return self._data(bytes(data[offset : offset + n]))

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
        offset = self._binary_offset(c)
        if offset >= len(data):
            return self.OFFSET_BEYOND_END
        return self._write_binary(ef, offset, c.data)

    def _binary_offset(self, c: Command) -> int:
        return (c.p1 << 8) | c.p2

    def _write_binary(self, ef: EFile, offset: int, chunk: bytes) -> bytes:
        """Write ``chunk`` at ``offset``: all of it, or nothing if it runs past the end."""
        assert ef.data is not None
        end = offset + len(chunk)
        if end > len(ef.data):
            return self.WRONG_LENGTH
        ef.data[offset:end] = chunk
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
        if not self._may_update_plain(ef):
            return self.SECURITY
        if new_cyclic:
            length = ef.record_length
        elif 1 <= c.p1 <= len(records):
            length = len(records[c.p1 - 1])
        else:
            return self.RECORD_NOT_FOUND
        if len(c.data) != length:
            return self.WRONG_LENGTH
        if new_cyclic:
            self._append_cyclic(records, c.data)
        else:
            self._write_record(ef, c.p1, c.data)
        return self.OK

    def _write_record(self, ef: EFile, n: int, data: bytes) -> None:
        assert ef.records is not None
        ef.records[n - 1] = data

    def _append_cyclic(self, records: list[bytes], data: bytes) -> None:
        """A new record 1: the others move down one, the oldest (the last) drops out."""
        records.insert(0, data)
        del records[-1]

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
        if not self._may_sm_update(ef):
            return self.SECURITY
        if challenge is None:
            return self.NO_CHALLENGE
        sk = crypto.session_key(self._card_key(self._sm_key[ef.df]), challenge)
        try:
            tlv = self._sm_unwrap(sk, c.raw[:5], c.data)
        except crypto.MacError:
            return self.WRONG_MAC
        if not 1 <= c.p1 <= len(records):
            return self.RECORD_NOT_FOUND
        if tlv is None:
            return self.WRONG_DATA
        if not self._tlv_fits(ef, c.p1, tlv):
            return self.WRONG_DATA
        self._write_record(ef, c.p1, tlv)
        return self.OK

    def _sm_unwrap(self, sk: bytes, header: bytes, body: bytes) -> bytes | None:
        """The TLV of an SM update, None when it is malformed; MacError when its MAC is
        wrong (§4)."""
        try:
            return crypto.sm_unwrap_update(sk, header, body)
        except crypto.MacError:
            raise
        except crypto.SecureMessagingError:
            return None

    def _tlv_fits(self, ef: EFile, n: int, tlv: bytes) -> bool:
        """The TLV is record n's item: its tag and its fixed length."""
        tag = ef.tags[n - 1]
        length = self.profile.item(tag).length
        return len(tlv) == length + 2 and tlv[0] == tag and tlv[1] == length

    # ------------------------------------------------------------------ index mark / erase
    def _mark_record(self, c: Command) -> bytes:
        return self._index_record(c, mark=True)

    def _erase_record(self, c: Command) -> bytes:
        return self._index_record(c, mark=False)

    def _index_record(self, c: Command, *, mark: bool) -> bytes:
        if c.p2 != P2_RECORD_NUMBER:
            return self.WRONG_P1P2
        le_wrong = c.le is not None and c.le != self._max_le
        if c.malformed or self._index_data_refused(c) or le_wrong:
            return self.WRONG_LENGTH
        ef = self.cur_ef
        if ef is None:
            return self.NO_CURRENT_EF
        key = ef.access.mark if mark else ef.access.erase
        records = ef.records
        if key is None or records is None:
            return self.INCOMPATIBLE
        if not self._may_index(ef, mark=mark):
            return self.SECURITY
        if not 1 <= c.p1 <= len(records):
            return self.RECORD_NOT_FOUND
        self._set_flag(ef, c.p1, mark=mark)
        return self.OK

    def _index_data_refused(self, c: Command) -> bool:
        """Mark and erase carry no data field (§5: 6700)."""
        return bool(c.data)

    def _set_flag(self, ef: EFile, n: int, *, mark: bool) -> None:
        """Record n holds the used flag (mark) or the free flag (erase) of its code table."""
        assert ef.records is not None
        used, free = self._index_flags[ef.path]
        ef.records[n - 1] = (used if mark else free) * ef.record_length

    # ------------------------------------------------------------------ challenge, auth
    def _get_challenge(self, c: Command) -> bytes:
        if c.p1 or c.p2:
            return self.WRONG_P1P2
        n = self._challenge_size(c)
        if n is None:
            return self.WRONG_LENGTH
        challenge = self._new_challenge(n)
        self.state.challenge = challenge
        return self._data(challenge)

    def _challenge_size(self, c: Command) -> int | None:
        """The challenge length asked for: exactly the profile's (else 6700, None here)."""
        n = self._challenge_len
        return n if not c.malformed and not c.data and c.le == n else None

    def _new_challenge(self, n: int) -> bytes:
        return secrets.token_bytes(n)

    def _external_authenticate(self, c: Command) -> bytes:
        challenge = self._take_challenge()
        if c.p1 != 0:
            return self.WRONG_P1P2
        if c.malformed:
            return self.WRONG_LENGTH
        if len(c.data) != self._auth_len:
            return self._wrong_lc()
        family = self._find_key(c.p2)
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
            return self._cryptogram_sw(self._auth_failed(family))
        if not self._trailer_ok(trailer):
            return self.WRONG_DATA
        self._auth_succeeded(family)
        return self.OK

    def _find_key(self, kid: int) -> str | None:
        """The key family of KID ``kid`` among the current DF's keys (§3)."""
        return self._kids.get((self.cur_df, kid))

    def _auth_failed(self, family: str) -> int:
        """A wrong cryptogram: one try less (down to 0); the tries left."""
        left = max(0, self.content.retry[family] - 1)
        self.content.retry[family] = left
        return left

    def _trailer_ok(self, trailer: bytes) -> bool:
        return trailer == self._auth_trailer

    def _auth_succeeded(self, family: str) -> None:
        """The counter is full again and the family's right holds in the current DF."""
        self.content.retry[family] = self._retry_limit
        self.state.grant(self.cur_df, family)

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
        return self._collected(pending) + self.OK

    def _collected(self, pending: bytes) -> bytes:
        """The data GET RESPONSE returns: all that was held back."""
        return pending

    # ------------------------------------------------------------------ PIN (feature pin)
    def _pin_bcd(self) -> bytes:
        return bytes.fromhex(self.content.pin or "")

    def _wrong_pin(self) -> bytes:
        self.content.pin_tries = max(0, self.content.pin_tries - 1)
        self.state.pin_verified = False
        return self._cryptogram_sw(self.content.pin_tries)

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
        if not self._old_pin_ok(old):
            return self._wrong_pin()
        digits = new.hex()
        if separator != CHANGE_PIN_SEPARATOR or not digits.isdigit():
            return self.WRONG_DATA
        self.content.pin_tries = self._pin_limit
        self._store_pin(digits)
        return self.OK

    def _old_pin_ok(self, old: bytes) -> bool:
        return hmac.compare_digest(old, self._pin_bcd())

    def _store_pin(self, digits: str) -> None:
        self.content.pin = digits
