"""The behavioural faults: a card OS that overrides the reference card's decision methods.

:class:`~conformance.card.commands.CardOS` is the reference card and never asks about a fault.
The faults no data row can express (a constant challenge, rights that survive a reset, …) are
*hooks*: each override below asks ``self.faults.active(name)`` for the hooks that concern its
decision, and otherwise answers as the reference does (``super()``). The virtual card uses
this class only when it carries a hook fault.
"""

from __future__ import annotations

import secrets

from conformance import crypto
from conformance.card.commands import CardOS, Command, Handler, _Tree
from conformance.card.content import CardContent, EFile
from conformance.card.faults import FaultSet
from conformance.card.pboc import ADF, PSE, PbocApplication
from conformance.model.application import OtherApplication
from conformance.model.profile import CardProfile
from conformance.model.schema import Structure

__all__ = ["FaultyCardOS", "FaultyPboc"]


def _read_extended(c: Command) -> None:
    """Read an extended-length APDU (00 ‖ Lc(2) ‖ data ‖ Le(2), or 00 ‖ Le(2))."""
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


class FaultyCardOS(CardOS):
    """The reference card OS bent by the hook faults it carries."""

    def __init__(self, profile: CardProfile, content: CardContent, features: frozenset[str],
                 faults: FaultSet, other_application: OtherApplication | None = None) -> None:
        super().__init__(profile, content, features, faults, other_application)
        sec = profile.spec.security
        pool = int(faults.fault("challenge_small_pool").value)
        self._pool = [secrets.token_bytes(sec.challenge_length) for _ in range(pool)]
        self._pool_next = 0
        self._pending_binary = False

    def _on(self, name: str) -> bool:
        return self.faults.active(name)

    # ------------------------------------------------------------------ co-branded card
    def _init_other(self, app: OtherApplication | None) -> PbocApplication | None:
        if app is None or self.content.other is None:
            return None
        return FaultyPboc(app, self.content.other, self)

    def _bump_other_atc(self, fault: str) -> None:
        """cobrand_select_counts_atc / cobrand_health_auth_counts_atc: a health action
        counts in the other application's transaction counter (the fault's target tag)."""
        other = self._other
        if other is None:
            return
        tag = self.faults.fault(fault).target
        atc = other.content.data_objects.get(tag)
        if atc is not None:
            value = int.from_bytes(atc, "big") + 1
            other.content.data_objects[tag] = (value & 0xFFFF).to_bytes(len(atc), "big")

    # ------------------------------------------------------------------ syntax, dispatch
    def _parse(self, raw: bytes) -> Command:
        c = super()._parse(raw)
        if c.malformed and self._on("extended_length_accepted"):
            _read_extended(c)
        return c

    def _route(self, cla: int, ins: int) -> tuple[str, Handler] | bytes:
        """unknown_cla_accepted / known_ins_wrong_class_accepted: a known INS runs as if
        sent with its own class."""
        known = cla in self._classes
        if not (self._on("unknown_cla_accepted") if not known
                else self._on("known_ins_wrong_class_accepted")):
            return super()._route(cla, ins)
        table = self._by_ins.get(ins)
        if table is None:
            return self.INS_NOT_SUPPORTED
        return table.get(cla) or next(iter(table.values()))

    def _wrong_lc(self) -> bytes:
        if self._on("wrong_lc_6a87"):
            return bytes.fromhex(self.faults.fault("wrong_lc_6a87").value)
        return super()._wrong_lc()

    # ------------------------------------------------------------------ security state
    def _reset_state(self) -> None:
        self.state.reset(keep_rights=self._on("sec_rights_survive_reset"),
                         keep_challenge=self._on("sec_challenge_survives_reset"))

    def _take_challenge(self) -> bytes | None:
        return self.state.take_challenge(keep=self._on("sec_challenge_reusable"))

    def _enter_df(self, name: str) -> None:
        if self._on("cobrand_select_counts_atc"):
            self._bump_other_atc("cobrand_select_counts_atc")
        if name != self.cur_df and self._on("sec_rights_survive_df_change"):
            self.cur_df = name
            self.cur_ef = None
            return
        if name == self.cur_df and self._on("sec_reselect_df_clears"):
            self.state.leave_df(name)
        super()._enter_df(name)

    def _select(self, c: Command) -> bytes:
        if self._on("sec_challenge_cleared_by_select"):
            self.state.challenge = None
        return super()._select(c)

    def _select_table(self, tree: _Tree, cur: str) -> dict[bytes, str | EFile]:
        if self._on("select_children_only"):
            table: dict[bytes, str | EFile] = {}
            for name in tree.child_dfs[cur]:
                table.setdefault(tree.fid[name], name)
            for ef in tree.child_efs[cur]:
                table.setdefault(ef.fid, ef)
        else:
            table = super()._select_table(tree, cur)
        if self._on("select_any_ef"):
            for efs in tree.child_efs.values():
                for ef in efs:
                    table.setdefault(ef.fid, ef)
        return table

    # ------------------------------------------------------------------ rights
    def _may_read(self, ef: EFile) -> bool:
        if super()._may_read(ef):
            return True
        if self._on("sec_update_grants_read") and self._has(ef.access.update):
            return True
        opens = self.faults.fault("sec_ddf1_read_opens_df01")
        return (self._on(opens.name) and ef.df == opens.target
                and opens.value in self.state.granted_since_reset)

    def _may_update(self, ef: EFile) -> bool:
        if super()._may_update(ef):
            return True
        return self._on("sec_update_any_key") and bool(self.state.granted_since_reset)

    def _may_update_plain(self, ef: EFile) -> bool:
        if ef.structure is Structure.TLV_RECORDS:
            return self._on("sec_plain_update_tlv") and self._may_update(ef)
        return super()._may_update_plain(ef) or (
            self._on("idx_plain_update_accepted") and self._has(ef.access.mark))

    def _may_sm_update(self, ef: EFile) -> bool:
        return super()._may_sm_update(ef) or self._on("sec_sm_without_update_right")

    def _may_index(self, ef: EFile, *, mark: bool) -> bool:
        return super()._may_index(ef, mark=mark) or (
            self._on("sec_update_any_key") and bool(self.state.granted_since_reset))

    def _card_key(self, family: str) -> bytes:
        """sec_keys_follow_item57: the level-2 key re-derived from the city code on the card."""
        place = self._city_place
        if self._on("sec_keys_follow_item57") and place is not None:
            first = self.content.card_number_keys.get(family)
            ef = self.content.files.get(place.path)
            if first is not None and ef is not None and ef.records and place.record:
                city = ef.records[place.record - 1][2:]
                return crypto.diversify(first, crypto.city_code_factor(city))
        return super()._card_key(family)

    # ------------------------------------------------------------------ writing
    def _binary_offset(self, c: Command) -> int:
        return 0 if self._on("rec_offset_ignored") else super()._binary_offset(c)

    def _write_binary(self, ef: EFile, offset: int, chunk: bytes) -> bytes:
        assert ef.data is not None
        end = offset + len(chunk)
        past = self.faults.fault("rec_update_past_end_truncates")
        if end > len(ef.data) and self._on(past.name) and ef.df == past.target:
            chunk = chunk[: len(ef.data) - offset]
            end = len(ef.data)
        sig = ef.signature
        if (sig is not None and self._on("rec_signature_readonly")
                and offset < sig[0] + sig[1] and end > sig[0]):
            return bytes.fromhex(self.faults.fault("rec_signature_readonly").value)
        cut = self.faults.fault("rec_truncate_1024")
        if self._on(cut.name) and ef.df == cut.target and end <= len(ef.data):
            chunk = chunk[: max(0, int(cut.value) - offset)]
        return super()._write_binary(ef, offset, chunk)

    def _write_record(self, ef: EFile, n: int, data: bytes) -> None:
        if ef.structure is Structure.CYCLIC and self._on("cyc_rewrite_appends"):
            assert ef.records is not None
            self._append_cyclic(ef.records, data)
        elif ef.structure is Structure.TLV_RECORDS and self._on("sec_sm_update_ignored"):
            return
        else:
            super()._write_record(ef, n, data)
        if ef.structure is Structure.TLV_RECORDS and self._on("cobrand_health_write_lands_in_pboc"):
            self._land_in_other(data)

    def _land_in_other(self, data: bytes) -> None:
        """The health record's bytes also overwrite the tail of the other application's
        first protected record (one EEPROM area shared by mistake)."""
        other = self._other
        if other is None or not other.app.protected_files:
            return
        records = other.content.records[other.app.protected_files[0].sfi]
        first = bytearray(records[0])
        k = min(len(data), len(first) - 2)
        first[-k:] = data[:k]
        records[0] = bytes(first)

    def _append_cyclic(self, records: list[bytes], data: bytes) -> None:
        if self._on("cyc_no_rotate"):
            records[0] = data
        elif self._on("cyc_newest_last"):
            del records[0]
            records.append(data)
        else:
            super()._append_cyclic(records, data)

    def _sm_unwrap(self, sk: bytes, header: bytes, body: bytes) -> bytes | None:
        try:
            return super()._sm_unwrap(sk, header, body)
        except crypto.MacError:
            if not self._on("sec_wrong_mac_accepted"):
                raise
        enc = body[: -crypto.MAC_LEN]
        return super()._sm_unwrap(sk, header,
                                  enc + crypto.cbc_mac(sk, header + enc)[: crypto.MAC_LEN])

    def _tlv_fits(self, ef: EFile, n: int, tlv: bytes) -> bool:
        return self._on("sec_sm_tlv_unchecked") or super()._tlv_fits(ef, n, tlv)

    def _index_data_refused(self, c: Command) -> bool:
        return not self._on("idx_data_field_accepted") and super()._index_data_refused(c)

    def _set_flag(self, ef: EFile, n: int, *, mark: bool) -> None:
        if not mark and self._on("idx_erase_noop"):
            return
        if mark and self._on("idx_mark_writes_01"):
            assert ef.records is not None
            flag = bytes.fromhex(self.faults.fault("idx_mark_writes_01").value)
            ef.records[n - 1] = flag * ef.record_length
            return
        super()._set_flag(ef, n, mark=mark)

    # ------------------------------------------------------------------ challenge, auth
    def _challenge_size(self, c: Command) -> int | None:
        size = super()._challenge_size(c)
        if size is None and self._on("get_challenge_any_le") and not c.malformed \
                and not c.data and c.le is not None:
            return c.le
        return size

    def _new_challenge(self, n: int) -> bytes:
        if self._on("constant_challenge"):
            return bytes.fromhex(self.faults.fault("constant_challenge").value)[:n].ljust(
                n, b"\x00")
        if self._on("challenge_small_pool"):
            value = self._pool[self._pool_next][:n].ljust(n, b"\x00")
            self._pool_next = (self._pool_next + 1) % len(self._pool)
            return value
        return super()._new_challenge(n)

    def _find_key(self, kid: int) -> str | None:
        family = super()._find_key(kid)
        if family is None and self._on("sec_kid_any_df"):
            family = next((n for (_df, k), n in self._kids.items() if k == kid), None)
        return family

    def _auth_failed(self, family: str) -> int:
        left = (self.content.retry[family] if self._on("sec_retry_not_decremented")
                else super()._auth_failed(family))
        if self._on("sec_failed_auth_revokes"):
            self.state.revoke_all_in(self.cur_df)
        return left

    def _trailer_ok(self, trailer: bytes) -> bool:
        return self._on("sec_ext_auth_trailer_ignored") or super()._trailer_ok(trailer)

    def _auth_succeeded(self, family: str) -> None:
        if self._on("cobrand_health_auth_counts_atc"):
            self._bump_other_atc("cobrand_health_auth_counts_atc")
        if not self._on("sec_retry_not_restored"):
            self.content.retry[family] = self._retry_limit
        if not (self._on("sec_read_key_grants_nothing")
                and self.profile.key(family).use == "read"):
            self.state.grant(self.cur_df, family)

    # ------------------------------------------------------------------ T=0, PIN
    def _data(self, data: bytes) -> bytes:
        self._pending_binary = False
        return super()._data(data)

    def _read_binary(self, c: Command) -> bytes:
        answer = super()._read_binary(c)
        self._pending_binary = self._pending is not None  # what GET RESPONSE would collect
        return answer

    def _collected(self, pending: bytes) -> bytes:
        if self._on("get_response_broken") or (
            self._pending_binary and self._on("get_response_binary_short")
        ):
            return pending[:-1]
        return super()._collected(pending)

    def _wrong_pin(self) -> bytes:
        if self._on("pin_wrong_not_decremented"):
            self.state.pin_verified = False
            return self._cryptogram_sw(self.content.pin_tries)
        return super()._wrong_pin()

    def _old_pin_ok(self, old: bytes) -> bool:
        return self._on("pin_change_no_old_check") or super()._old_pin_ok(old)

    def _store_pin(self, digits: str) -> None:
        if not self._on("pin_change_ignored"):
            super()._store_pin(digits)



class FaultyPboc(PbocApplication):
    """The co-branded card's other application bent by the COB faults: health keys that open
    it, a directory naming another AID, the health application unreachable after it."""

    def _on(self, *names: str) -> bool:
        return any(self.card.faults.active(n) for n in names)

    def _leave(self, c: Command) -> bytes | None:
        if self._on("cobrand_ddf1_unreachable_after_pse"):
            return self.card.FILE_NOT_FOUND  # stays in the other application until a reset
        return super()._leave(c)

    def _records_of(self, p2: int) -> list[bytes] | None:
        records = super()._records_of(p2)
        if records is None or self.current != PSE or not self._on("cobrand_directory_wrong_aid"):
            return records
        aid = self.app.aid
        other = aid[:-1] + bytes([aid[-1] ^ int(self.card.faults.fault(
            "cobrand_directory_wrong_aid").value, 16)])
        return [r.replace(aid, other) for r in records]

    def _health_family(self, kid: int) -> str | None:
        return next((n for (_df, k), n in self.card._kids.items() if k == kid), None)

    def _external_authenticate(self, c: Command) -> bytes:
        """cobrand_health_kid_in_pboc: a health KID and cryptogram (the health format, under
        this application's challenge) are checked against the health keys and accepted."""
        card = self.card
        family = self._health_family(c.p2)
        if (self._on("cobrand_health_kid_in_pboc", "cobrand_health_keys_open_pboc")
                and family is not None and len(c.data) == card._auth_len
                and self.challenge is not None and self.current == ADF):
            challenge = self._take_challenge()
            assert challenge is not None
            n = card._challenge_len
            sk = crypto.session_key(card._card_key(family), challenge)
            if crypto.auth_cryptogram(sk, c.data[n : 2 * n]) == c.data[:n]:
                self.rights.update(f.update for f in self.app.protected_files if f.update)
                return card.OK
            return card._cryptogram_sw(card._auth_failed(family))
        return super()._external_authenticate(c)

    def _may_update(self, sfi: int) -> bool:
        """cobrand_health_right_opens_pboc: any health right granted since the reset opens
        the application's protected files."""
        return super()._may_update(sfi) or (
            self._on("cobrand_health_right_opens_pboc", "cobrand_health_keys_open_pboc")
            and bool(self.card.state.granted_since_reset))

    def _update_record_mac(self, c: Command) -> bytes:
        """cobrand_health_mac_in_pboc: a health secure-messaging update (SM4 under a health
        SM key's session key for this application's challenge) writes the protected file."""
        if (self._on("cobrand_health_mac_in_pboc", "cobrand_health_keys_open_pboc")
                and self.current == ADF and self.challenge is not None
                and self.app.protected_files):
            tlv = self._health_unwrap(self.challenge, c)
            if tlv is not None:
                self.challenge = None
                records = self.content.records[self.app.protected_files[0].sfi]
                return self._write(records, c.p1, tlv)
        return super()._update_record_mac(c)

    def _health_unwrap(self, challenge: bytes, c: Command) -> bytes | None:
        card = self.card
        for family in sorted(set(card._sm_key.values())):
            sk = crypto.session_key(card._card_key(family), challenge)
            try:
                return crypto.sm_unwrap_update(sk, c.raw[:5], c.data)
            except crypto.SecureMessagingError:
                continue
        return None
