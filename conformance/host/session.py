"""HealthCardSession: the terminal side of the resident health card, over any transport.

Everything it sends is derived from the profile (file paths, FIDs, CLA/INS, KIDs, key
families, item codings, layouts), so a lab that corrects the profile corrects the host too.
It judges nothing: a status word other than 9000 raises :class:`~conformance.apdu.ApduError`
carrying the command, and a 9000 answer whose content breaks the profile raises
:class:`HostError`. Bench faults (:class:`~conformance.transport.base.BenchError`) pass
through untouched, so a case can tell "the card said no" from "the bench failed".

The session tracks the card's security state as REFERENCE.md §3 describes it — the current
DF and the key families granted there — so that it authenticates once per DF and never drops
rights by selecting a DF that is already current. Raw commands sent with :meth:`transmit`
that select files make it forget that state (it re-selects from the top next time).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping
from typing import Literal

from conformance import crypto
from conformance.apdu import ApduError, ApduFormatError, CommandAPDU, ResponseAPDU, sw_hex
from conformance.host.keys import KeyProvider
from conformance.iso7816 import (
    EXT_AUTH_P1,
    GET_CHALLENGE_P1P2,
    LC_MAX_SHORT,
    MAX_BINARY_OFFSET,
    RECORD_P1_CYCLIC_NEW,
    RECORD_P2_BY_ID,
    RECORD_P2_BY_NUMBER,
    RECORD_P2_CYCLIC_NEW,
    SELECT_P1_BY_FID,
    SELECT_P2_FCI,
)
from conformance.messages import Bilingual, Msg, as_msg, msg, msg_of
from conformance.model import (
    CardProfile,
    Coding,
    CodingError,
    EFSpec,
    KeyUse,
    Structure,
    UpdateMode,
)
from conformance.model import codecs as _codecs
from conformance.model.schema import LayoutField
from conformance.model.tree import MF
from conformance.transport.base import Transport

__all__ = [
    "AuthenticationWithheld",
    "HealthCardSession",
    "HostError",
    "HostUsageError",
]

log = logging.getLogger(__name__)

RightKind = Literal["read", "update", "mark", "erase"]
"""A field of the profile's Access: which key a file operation needs."""


class HostError(Bilingual):
    """The card answered 9000 but with content the profile does not allow (wrong TLV tag or
    length, a value that does not decode, a short read), or the host was asked for something
    the profile makes impossible. Carries the command and response when there are any."""

    def __init__(
        self,
        message: str | Msg,
        *,
        command: CommandAPDU | None = None,
        response: ResponseAPDU | None = None,
        expected: str = "",
        measured: str = "",
    ) -> None:
        self.command = command
        self.response = response
        if command is not None and response is not None:
            message = msg("host.exchange", message=as_msg(message), command=command.hex(),
                          response=response.hex())
        elif command is not None:
            message = msg("host.command", message=as_msg(message), command=command.hex())
        super().__init__(message, expected=expected, measured=measured)


class HostUsageError(Exception):
    """The host was asked for something the profile makes impossible (a harness or profile
    error, never the card's): a verdict on the card cannot rest on it."""


class AuthenticationWithheld(Bilingual):
    """A key family already refused a cryptogram the host believes correct, so the host does
    not try it again: every further try would spend the sample's retry counter towards a
    lock, and the cause (a wrong key set, or a faulty card) needs a person."""


class HealthCardSession:
    """A terminal's session with one card: select, authenticate, read, update.

    ``keys`` computes cryptograms and SM APDUs (test keys or a SAM); ``chunk_size`` caps the
    bytes per READ/UPDATE BINARY (0x80 suits fussy readers; 0xFF is the short-APDU limit).
    """

    def __init__(
        self,
        transport: Transport,
        profile: CardProfile,
        keys: KeyProvider,
        *,
        chunk_size: int = 0xFF,
        withheld: dict[str, Msg] | None = None,
    ) -> None:
        limit = min(LC_MAX_SHORT, profile.spec.security.max_short_le)
        if not 1 <= chunk_size <= limit:
            raise ValueError(f"chunk_size must be 1..{limit}, got {chunk_size}")
        self.transport = transport
        self.profile = profile
        self.keys = keys
        self.chunk_size = chunk_size
        self._atr = bytes(transport.atr)
        self._city8: bytes | None = None
        self._current_df: str | None = None
        self._current_ef: str | None = None
        self._granted: set[str] = set()
        # key families refused with a correct cryptogram: shared across the sessions of a run
        self.withheld: dict[str, Msg] = {} if withheld is None else withheld

    def __repr__(self) -> str:
        return (
            f"HealthCardSession({self.transport.name!r}, {self.profile.spec.profile.name}, "
            f"df={self._current_df}, granted={sorted(self._granted)})"
        )

    # -- card identity -------------------------------------------------------------------
    @property
    def atr(self) -> bytes:
        """The ATR of the current card session (as the transport reported it)."""
        return self._atr

    @property
    def card_number_factor(self) -> bytes:
        """CardNo8: the first historical bytes of the ATR, located by the profile."""
        factor = self.profile.card_number_factor(self._atr)
        wanted = self.profile.spec.atr.card_number_factor.length
        if len(factor) != wanted:
            raise HostError(
                msg("host.atr_short", atr=self._atr.hex().upper(), wanted=wanted,
                    length=len(self._atr)),
                expected=f"≥ {wanted + 4} bytes", measured=f"{len(self._atr)} bytes",
            )
        return factor

    @property
    def city_code_factor(self) -> bytes:
        """CityCode8 from the city-code item (profile item_roles; read once, by record
        identifier, then cached).

        Reading it selects its DF, so callers that need it fetch it before selecting their DF.
        """
        if self._city8 is None:
            city = self.profile.role_item("city_code")
            place = self.profile.place(city)
            read_key = self.profile.file(place.path).access.read
            if read_key != "free" and self.profile.key(read_key).level > 1:
                raise HostUsageError(
                    f"item {city} (city code) is behind {read_key}, whose keys "
                    "need the city code itself"
                )
            raw = self.read_record_by_tag(place.path, city)
            value = self._tlv_value(city, raw)
            self._city8 = crypto.city_code_factor(value)
        return self._city8

    @property
    def current_df(self) -> str | None:
        """The DF the session believes current (None: unknown, e.g. after reset)."""
        return self._current_df

    @property
    def granted(self) -> frozenset[str]:
        """Key families granted in the current DF during this session."""
        return frozenset(self._granted)

    # -- raw exchange and reset ----------------------------------------------------------
    def transmit(self, apdu: CommandAPDU | bytes) -> ResponseAPDU:
        """Send one APDU as is and return the response, whatever its SW (no checks).

        A raw SELECT makes the session forget the current DF and its rights.
        """
        raw = bytes(apdu)
        if raw[:2] == bytes(self.profile.command("select")):
            self._forget_selection()
        return self._send_raw(raw)

    def reset(self) -> bytes:
        """Reset the card; clears the cached city code, the current DF and granted rights."""
        self._forget_selection()
        self._city8 = None
        self._atr = bytes(self.transport.reset())
        return self._atr

    def _send_raw(self, raw: bytes) -> ResponseAPDU:
        response = bytes(self.transport.transmit(raw))
        try:
            return ResponseAPDU.parse(response)
        except ApduFormatError as exc:
            raise HostError(msg("host.malformed", response=response.hex().upper(),
                                error=str(exc)), measured=response.hex().upper()) from None

    def _send(self, command: CommandAPDU) -> ResponseAPDU:
        """Send and require 9000 (ApduError with the command otherwise)."""
        return self._send_raw(command.to_bytes()).check(self.profile.sw("ok"), command=command)

    def _command(
        self, name: str, p1: int, p2: int, data: bytes = b"", le: int | None = None
    ) -> CommandAPDU:
        cla, ins = self.profile.command(name)
        return CommandAPDU(cla, ins, p1, p2, data, le)

    # -- selection -----------------------------------------------------------------------
    def _forget_selection(self) -> None:
        self._current_df = None
        self._current_ef = None
        self._granted.clear()

    def _df_chain(self, name: str) -> list[str]:
        """DF names from the top down to ``name`` (parallel to profile.df_path)."""
        chain: list[str] = []
        while name != MF:
            chain.insert(0, name)
            name = self.profile.df(name).parent
        return chain

    def _select_fid(self, fid: str) -> None:
        self._send(self._command("select", SELECT_P1_BY_FID, SELECT_P2_FCI, bytes.fromhex(fid)))

    def select(self, path: str, *, force: bool = False) -> None:
        """Select a DF ("DF02") or an EF ("DF02/EF07").

        When the DF is already current only the EF is selected (re-selecting the DF is
        harmless on a conforming card but needless); a DF below the current one is reached
        from it; anything else from the top. ``force`` selects every FID from the top, as a
        terminal that trusts no state would (rights survive only if the DF does not change).
        """
        df_name, _, ef_fid = path.partition("/")
        if df_name not in self.profile.dfs:
            raise KeyError(f"no DF {df_name} in profile {self.profile.spec.profile.name}")
        if ef_fid:
            ef_fid = self.profile.file(path).fid  # a clear KeyError for an EF it lacks
        chain = self._df_chain(df_name)
        if force or self._current_df is None:
            todo = chain
        elif self._current_df == df_name:
            todo = []
        elif self._current_df in chain:
            todo = chain[chain.index(self._current_df) + 1 :]
        else:
            todo = chain
        for name in todo:
            try:
                self._select_fid(self.profile.df(name).fid)
            except ApduError:
                self._forget_selection()
                raise
            if name != self._current_df:
                self._granted.clear()
                log.debug("selected DF %s; rights cleared", name)
            self._current_df = name
            self._current_ef = None
        if not ef_fid:
            return
        if self._current_ef == path and not force:
            return
        try:
            self._select_fid(ef_fid)
        except ApduError:
            self._current_ef = None
            raise
        self._current_ef = path

    # -- security ------------------------------------------------------------------------
    def get_challenge(self) -> bytes:
        """GET CHALLENGE: the card's next single-use random number."""
        p1, p2 = GET_CHALLENGE_P1P2
        length = self.profile.spec.security.challenge_length
        command = self._command("get_challenge", p1, p2, le=length)
        response = self._send(command)
        if len(response.data) != length:
            raise HostError(
                msg("host.challenge_length", length=len(response.data), expected=length),
                command=command,
                response=response,
                expected=f"{length} bytes", measured=f"{len(response.data)} bytes",
            )
        return response.data

    def authenticate(self, family: str) -> None:
        """Obtain the right of key ``family`` in its DF by EXTERNAL AUTHENTICATE.

        For a read key X is 8 terminal-chosen bytes; for an update key X is an earlier
        challenge R1 and the session key comes from the challenge R2 issued after it, as in
        the evidence (REFERENCE.md §4). A refusal (63Cx, 6983 …) raises ApduError; rights
        already granted stay, as on the card.
        """
        key = self.profile.key(family)
        if key.kid is None:
            raise ValueError(f"{family} is a {key.use} key: it cannot be authenticated")
        if family in self.withheld:
            raise AuthenticationWithheld(
                msg("host.withheld", family=family, earlier=self.withheld[family])
            )
        card_no8 = self.card_number_factor
        city8 = self.city_code_factor  # may select DDF1: fetch before selecting our DF
        self.select(key.df)
        if key.use is KeyUse.UPDATE:
            x8 = self.get_challenge()
            challenge = self.get_challenge()
        else:
            x8 = secrets.token_bytes(self.profile.spec.security.challenge_length)
            challenge = self.get_challenge()
        cryptogram = self.keys.auth_cryptogram(family, card_no8, city8, challenge, x8)
        trailer = bytes([self.profile.spec.security.ext_auth_trailer])
        command = self._command(
            "external_authenticate", EXT_AUTH_P1, key.kid, bytes(cryptogram) + x8 + trailer
        )
        try:
            self._send(command)
        except ApduError as exc:
            exc.add_note(f"authenticating with key family {family} in {key.df}")
            refused = sw_hex(exc.sw).startswith(self.profile.sw_prefix("wrong_cryptogram"))
            if refused or exc.sw == self.profile.sw("key_locked"):
                self.withheld[family] = msg("host.refused_cryptogram", sw=f"{exc.sw:04X}")
            raise
        self._granted.add(family)
        log.debug("granted %s in %s", family, key.df)

    def _ensure_right(self, path: str, right: RightKind) -> EFSpec:
        """Authenticate the key ``path`` needs for ``right`` unless already granted, then
        select the EF (in that order: fetching the city code may select another DF)."""
        ef = self.profile.file(path)
        family = getattr(ef.access, right)
        if family is None:
            raise HostUsageError(f"{path} has no {right} access in the profile")
        df_name = path.partition("/")[0]
        if family != "free" and not (self._current_df == df_name and family in self._granted):
            self.authenticate(family)
        self.select(path)
        return ef

    # -- reading -------------------------------------------------------------------------
    def _read_record_apdu(self, path: str, p1: int, p2: int) -> bytes:
        self._ensure_right(path, "read")
        le = self.profile.spec.security.max_short_le  # Le = 00: the whole record
        return self._send(self._command("read_record", p1, p2, le=le)).data

    def read_record(self, path: str, n: int) -> bytes:
        """Record ``n`` (1-based) of a record file, authenticating its read key if needed."""
        return self._read_record_apdu(path, n, RECORD_P2_BY_NUMBER)

    def read_record_by_tag(self, path: str, tag: int) -> bytes:
        """The first record of a TLV file whose tag is ``tag`` (READ RECORD P2 = 00)."""
        return self._read_record_apdu(path, tag, RECORD_P2_BY_ID)

    def read_binary(self, path: str, offset: int = 0, length: int | None = None) -> bytes:
        """``length`` bytes (default: to the end) of a transparent file, in chunks."""
        ef = self._ensure_right(path, "read")
        size = ef.size or 0
        if length is None:
            length = size - offset
        self._check_range(path, size, offset, length)
        out = bytearray()
        while len(out) < length:
            at = offset + len(out)
            n = min(self.chunk_size, length - len(out))
            command = self._command("read_binary", at >> 8, at & 0xFF, le=n)
            response = self._send(command)
            if len(response.data) != n:
                raise HostError(
                    msg("host.binary_short", path=path, at=at, length=len(response.data),
                        expected=n),
                    command=command,
                    response=response,
                    expected=f"{n} bytes", measured=f"{len(response.data)} bytes",
                )
            out += response.data
        return bytes(out)

    def read_file(self, path: str) -> list[bytes] | bytes:
        """Every record of a record file (list), or the whole of a transparent file."""
        ef = self.profile.file(path)
        if ef.structure is Structure.TRANSPARENT:
            return self.read_binary(path)
        records = []
        for n in range(1, self.profile.record_count(path) + 1):
            raw = self.read_record(path, n)
            expected = self.profile.record_length(path, n)
            if len(raw) != expected:
                raise HostError(
                    msg("host.record_length", n=n, path=path, length=len(raw),
                        expected=expected),
                    expected=f"{expected} bytes", measured=f"{len(raw)} bytes",
                )
            records.append(raw)
        return records

    def _tlv_value(self, number: int, raw: bytes) -> bytes:
        """The value of item ``number``'s SIMPLE-TLV record, checking tag and length."""
        item = self.profile.item(number)
        if len(raw) < 2 or raw[0] != number or raw[1] != item.length:
            head = raw[:2].hex().upper() or "nothing"
            raise HostError(
                msg("host.tlv_head", number=number, name_zh=item.zh, name_en=item.en, head=head,
                    tag=f"{number:02X}", length=f"{item.length:02X}"),
                expected=f"{number:02X} {item.length:02X}", measured=head,
            )
        if len(raw) != 2 + item.length:
            raise HostError(
                msg("host.tlv_length", number=number,
                    name_zh=item.zh, name_en=item.en, length=len(raw),
                    expected=2 + item.length),
                expected=f"{2 + item.length} bytes", measured=f"{len(raw)} bytes",
            )
        return raw[2:]

    def _decode_item(self, number: int, value: bytes) -> str:
        try:
            return self.profile.decode_item(number, value)
        except CodingError as exc:
            item = self.profile.item(number)
            raise HostError(msg("host.item_coding", number=number, name_zh=item.zh, name_en=item.en,
                                error=msg_of(exc))) from None

    def _tlv_place(self, number: int) -> tuple[str, int]:
        place = self.profile.place(number)
        if place.record is None:
            raise ValueError(
                f"item {number} is not a TLV record item (it lives in {place.path}: use "
                "read_cyclic / read_layout / write_layout / append_cyclic)"
            )
        return place.path, place.record

    def read_item(self, number: int) -> str:
        """A TLV data item (1..57), decoded with its coding; HostError if the record is off."""
        path, record = self._tlv_place(number)
        return self._decode_item(number, self._tlv_value(number, self.read_record(path, record)))

    def read_items(self, numbers: Iterable[int] | None = None) -> dict[int, str]:
        """TLV items (default all), one read per record and one authentication per DF."""
        wanted = set(self.profile.tlv_items() if numbers is None else numbers)
        by_file: dict[str, list[tuple[int, int]]] = {}
        for n in self.profile.tlv_items():  # profile file order: DFs stay grouped
            if n in wanted:
                path, record = self._tlv_place(n)
                by_file.setdefault(path, []).append((n, record))
        unknown = wanted - {n for items in by_file.values() for n, _ in items}
        if unknown:
            raise ValueError(f"not TLV data items of the profile: {sorted(unknown)}")
        values: dict[int, str] = {}
        for path, items in by_file.items():
            for n, record in items:
                values[n] = self._decode_item(n, self._tlv_value(n, self.read_record(path, record)))
        return dict(sorted(values.items()))

    # -- TLV updates (secure messaging) ----------------------------------------------------
    def update_record_sm(self, path: str, n: int, tlv: bytes) -> None:
        """Write ``tlv`` to record ``n`` under SM: update right, fresh challenge, then the
        profile's update_record_sm (04 DC in the reference profile)."""
        ef = self.profile.file(path)
        if ef.access.update_mode is not UpdateMode.SM:
            raise HostUsageError(f"{path} is not updated with secure messaging in the profile")
        card_no8 = self.card_number_factor
        city8 = self.city_code_factor
        self._ensure_right(path, "update")
        df_name = path.partition("/")[0]
        family = self.profile.df(df_name).sm_key
        challenge = self.get_challenge()
        expected = self.profile.command("update_record_sm")
        raw = self.keys.sm_update_apdu(
            family, card_no8, city8, challenge, n, bytes(tlv), command=expected
        )
        try:
            command = CommandAPDU.parse(raw)
        except ApduFormatError as exc:
            raise HostUsageError(f"the key provider built a malformed SM APDU: {exc}") from None
        wanted = (*expected, n, RECORD_P2_BY_NUMBER)
        if (command.cla, command.ins, command.p1, command.p2) != wanted:
            raise HostUsageError(
                f"the key provider built {command.header().hex().upper()}, not the profile's "
                f"update_record_sm {expected[0]:02X} {expected[1]:02X} for record {n}"
            )
        self._send(command)

    def update_item(self, number: int, value: str) -> None:
        """Write TLV item ``number`` (encoded with its coding) to its record under SM."""
        path, record = self._tlv_place(number)
        self.update_record_sm(path, record, self.profile.tlv(number, value))

    def update_items(self, values: Mapping[int, str]) -> None:
        """Several TLV items, grouped so each DF is authenticated once."""
        order = {n: i for i, n in enumerate(self.profile.tlv_items())}
        for number in sorted(values, key=lambda n: order.get(n, -1)):
            self.update_item(number, values[number])

    # -- plain updates -------------------------------------------------------------------
    def update_binary(self, path: str, offset: int, data: bytes) -> None:
        """Plain UPDATE BINARY of a transparent file after its update right, in chunks."""
        ef = self.profile.file(path)
        plain = ef.access.update_mode is UpdateMode.PLAIN
        if ef.structure is not Structure.TRANSPARENT or not plain:
            raise HostUsageError(f"{path} is not a plainly updated transparent file in the profile")
        data = bytes(data)
        self._check_range(path, ef.size or 0, offset, len(data))
        self._ensure_right(path, "update")
        for start in range(0, len(data), self.chunk_size):
            at = offset + start
            chunk = data[start : start + self.chunk_size]
            self._send(self._command("update_binary", at >> 8, at & 0xFF, chunk))

    @staticmethod
    def _check_range(path: str, size: int, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > size:
            raise ValueError(f"{path}: bytes {offset}..{offset + length} outside its {size} bytes")
        if length and offset + length - 1 > MAX_BINARY_OFFSET:
            raise ValueError(f"{path}: offset beyond what P1P2 can address")

    # -- layouts: cyclic records and EE/ED files -------------------------------------------
    def _layout(self, path: str) -> list[LayoutField]:
        ef = self.profile.file(path)
        if ef.layout is None:
            raise ValueError(f"{path} has no layout in the profile")
        return self.profile.layout(ef.layout)

    @staticmethod
    def _field_key(field: LayoutField) -> int | str:
        return field.item if field.item is not None else (field.name or str(field.offset))

    def _decode_layout(self, path: str, raw: bytes, base: int = 0) -> dict[int | str, str]:
        out: dict[int | str, str] = {}
        for field in self._layout(path):
            chunk = raw[field.offset - base : field.offset - base + field.length]
            try:
                out[self._field_key(field)] = _codecs.decode(Coding(field.coding), chunk)
            except CodingError as exc:
                raise HostError(msg("host.field_coding", path=path,
                                    field=self._field_key(field), offset=field.offset,
                                    error=msg_of(exc))) from None
        return out

    def _encode_fields(
        self, path: str, values: Mapping[int | str, str]
    ) -> list[tuple[LayoutField, bytes]]:
        fields = {self._field_key(f): f for f in self._layout(path)}
        unknown = set(values) - set(fields)
        if unknown:
            raise ValueError(f"{path} has no fields {sorted(map(str, unknown))}")
        encoded = []
        for key, value in values.items():
            field = fields[key]
            try:
                raw = _codecs.encode(Coding(field.coding), value, field.length)
            except CodingError as exc:
                raise ValueError(f"{path} field {key}: {exc}") from None
            encoded.append((field, raw))
        return sorted(encoded, key=lambda fe: fe[0].offset)

    def append_cyclic(self, path: str, values: Mapping[int | str, str]) -> None:
        """Write a new newest record (UPDATE RECORD P2 = 03) built from the file's layout;
        fields not given are written as their empty coding."""
        ef = self.profile.file(path)
        if ef.structure is not Structure.CYCLIC:
            raise HostUsageError(f"{path} is not a cyclic file in the profile")
        record = bytearray()
        for field in sorted(self._layout(path), key=lambda f: f.offset):
            record += _codecs.empty(Coding(field.coding), field.length)
        for field, raw in self._encode_fields(path, values):
            record[field.offset : field.offset + field.length] = raw
        self._ensure_right(path, "update")
        p1, p2 = RECORD_P1_CYCLIC_NEW, RECORD_P2_CYCLIC_NEW
        self._send(self._command("update_record", p1, p2, bytes(record)))

    def read_cyclic(self, path: str) -> list[dict[int | str, str]]:
        """Every record of a cyclic file, newest first, decoded by its layout."""
        if self.profile.file(path).structure is not Structure.CYCLIC:
            raise HostUsageError(f"{path} is not a cyclic file in the profile")
        records = self.read_file(path)
        assert isinstance(records, list)
        return [self._decode_layout(path, raw) for raw in records]

    def read_layout(self, path: str) -> dict[int | str, str]:
        """A transparent file decoded field by field (item number, or name for item-less
        fields such as the photo)."""
        if self.profile.file(path).structure is not Structure.TRANSPARENT:
            raise HostUsageError(f"{path} is not a transparent file in the profile")
        return self._decode_layout(path, self.read_binary(path))

    def write_layout(self, path: str, values: Mapping[int | str, str]) -> None:
        """Write only the touched fields' bytes; adjacent fields go in one UPDATE BINARY."""
        if self.profile.file(path).structure is not Structure.TRANSPARENT:
            raise HostUsageError(f"{path} is not a transparent file in the profile")
        runs: list[tuple[int, bytearray]] = []
        for field, raw in self._encode_fields(path, values):
            if runs and runs[-1][0] + len(runs[-1][1]) == field.offset:
                runs[-1][1].extend(raw)
            else:
                runs.append((field.offset, bytearray(raw)))
        for offset, data in runs:
            self.update_binary(path, offset, bytes(data))

    # -- index files ---------------------------------------------------------------------
    def _index_command(self, path: str, n: int, right: RightKind, command: str) -> None:
        ef = self.profile.file(path)
        if ef.structure is not Structure.LINEAR_FIXED or getattr(ef.access, right) is None:
            raise HostUsageError(f"{path} is not an index file with a {right} key in the profile")
        if not 1 <= n <= (ef.records or 0):
            raise ValueError(f"{path} has records 1..{ef.records}, not {n}")
        self._ensure_right(path, right)
        le = self.profile.spec.security.max_short_le  # the evidence's form ends in 00
        self._send(self._command(command, n, RECORD_P2_BY_NUMBER, le=le))

    def mark_index(self, path: str, n: int) -> None:
        """Mark index record ``n`` used (the profile's mark_record) with the file's mark key."""
        self._index_command(path, n, "mark", "mark_record")

    def erase_index(self, path: str, n: int) -> None:
        """Mark index record ``n`` free again (the profile's erase_record) with its erase key."""
        self._index_command(path, n, "erase", "erase_record")

    # -- record signatures (EE/ED, feature record_signatures) -----------------------------
    def _role(self, path: str, role: str) -> LayoutField:
        for field in self._layout(path):
            if field.role == role:
                return field
        raise HostUsageError(f"{path}'s layout has no field with role {role}")

    def record_signature(self, path: str) -> tuple[bytes, bytes, bytes]:
        """(signed bytes, signature r‖s, signer public key x‖y) of an EE/ED record: the
        signature covers every byte before its field; the key is the first 64 bytes of the
        signer_key field (REFERENCE.md §4)."""
        sig = self._role(path, "signature")
        key = self._role(path, "signer_key")
        data = self.read_binary(path)
        signed = data[: sig.offset]
        signature = data[sig.offset : sig.offset + sig.length]
        public = data[key.offset : key.offset + 64]
        return signed, signature, public

    def verify_record_signature(self, path: str) -> bool:
        """True when the record's SM2 signature verifies under the key stored beside it."""
        signed, signature, public = self.record_signature(path)
        return crypto.sm2_verify(public, signed, signature)

    def sign_record(self, path: str, private_key: bytes) -> bytes:
        """Sign the record as written (SM2 over the bytes before the signature field) and
        store the signature and the signer's public key; returns the signature."""
        sig = self._role(path, "signature")
        key = self._role(path, "signer_key")
        signed = self.read_binary(path, 0, sig.offset)
        signature = crypto.sm2_sign(private_key, signed)
        public = crypto.sm2_keypair_from_private(private_key)
        self.write_layout(
            path, {self._field_key(sig): signature.hex(), self._field_key(key): public.hex()}
        )
        return signature
