"""The SEC group's toolkit: raw authentication, probes of one right, restoring what a case spent.

The host session authenticates correctly or not at all; a security case also needs the wrong
and the replayed: a cryptogram computed over another challenge, a flipped MAC, the same
EXTERNAL AUTHENTICATE sent twice. So the cases build those APDUs here from the key provider
(``ctx.session.keys``: cryptograms and SM APDUs, never a key) and send them raw with
``ctx.send``, while preconditions (a right granted, a record read) go through the session.

Selection and the session: a SELECT sent here goes through ``session.transmit``, which makes
the session forget the current DF and its rights, so the session never acts on a stale idea of
the card's state (it re-selects from the top next time).

A *probe* is the smallest operation that needs exactly one right of one key family: reading
record 1 (or the first bytes) of a file the key opens, or writing back to a file the bytes it
already holds, or erasing an index record that is already free. Run with the right it answers
9000 and changes nothing; without it, 6982.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from conformance.apdu import CommandAPDU, ResponseAPDU, sw_hex
from conformance.cases.framework import CaseContext, Inconclusive
from conformance.host.session import AuthenticationWithheld
from conformance.iso7816 import LE_WHOLE, RECORD_P2_BY_NUMBER, SELECT_P1_BY_FID, SELECT_P2_FCI
from conformance.messages import Msg, msg
from conformance.model.profile import CardProfile
from conformance.model.schema import KeyUse, Structure, UpdateMode
from conformance.model.tree import df_of, index_flags, neighbour_df, rights_of

GROUP = "SEC"

PROBE_BYTES = 16  # bytes of a transparent file a probe rewrites with themselves


# --------------------------------------------------------------------------- clauses, choices

CLAUSE_READ = "REFERENCE.md §1 (read rights), §3; WS/T 543 (evidence §4.3)"
CLAUSE_KEY = "REFERENCE.md §3 (retry counters), §4; WS/T 543 (evidence §4.3, §4.5)"
CLAUSE_EA = "REFERENCE.md §5 EXTERNAL AUTHENTICATE, §3; WS/T 543 (evidence §4.1, §4.3)"
CLAUSE_CHALLENGE = "REFERENCE.md §3 (challenge), §4; WS/T 543 (evidence §4.3, §4.4)"
CLAUSE_STATE = "REFERENCE.md §3 (security state); WS/T 543 (evidence §4.3)"
CLAUSE_UPDATE = (
    "REFERENCE.md §1 (update rights), §4 (secure messaging), §5 UPDATE RECORD / UPDATE BINARY; "
    "WS/T 543 (evidence §4.1, §4.4)"
)
CLAUSE_SEPARATION = "REFERENCE.md §1 (update keys), §3; WS/T 543 (evidence §4.3, §4.5 key table)"
CLAUSE_DIV = "REFERENCE.md §2, §3, §4 (diversification); WS/T 543 (evidence §4.5)"

CRYPTO_CHOICE = (
    "The cryptograms, key diversification (CardNo8 = ATR bytes 5–12, CityCode8 from item 57) "
    "and secure messaging are REFERENCE.md §2/§4 [choice, following evidence §4.3–4.5]."
)


def retry_choice(profile: CardProfile) -> str:
    limit = profile.spec.security.retry_limit
    return (
        f"The retry limit {limit} is a REFERENCE.md §3 [choice] (profile "
        f"security.retry_limit): one wrong cryptogram with a full counter answers "
        f"{profile.sw_prefix('wrong_cryptogram')}{limit - 1:X}."
    )


def choices(*parts: str) -> str:
    return " ".join(p for p in parts if p)


# --------------------------------------------------------------------------- the model


def key_slug(family: str) -> str:
    """'UK_DF02_1' → 'UK-DF02-1', for case IDs (so that 'SEC-*-DDF1-*' selects DDF1 keys)."""
    return family.replace("_", "-")


def changed_value(profile: CardProfile, item: int, current: bytes) -> bytes:
    """A value of the item's length and coding that differs from ``current``: the item's
    empty coding, or (if the record is empty) a short sample value."""
    empty = profile.empty_item(item)
    if bytes(current) != empty:
        return empty
    info = profile.item(item)
    sample = {"AN": "SEC", "CN": "1", "B": "5A"}[str(info.coding)]
    try:
        return profile.encode_item(item, sample[: info.length * 2])
    except ValueError:
        return bytes([empty[0] ^ 0x01]) + empty[1:]


# --------------------------------------------------------------------------- the toolkit


@dataclass
class Attempt:
    """One EXTERNAL AUTHENTICATE sent: the command (for replays), the answer, its inputs."""

    command: CommandAPDU
    response: ResponseAPDU
    challenge: bytes
    x8: bytes


@dataclass
class Probe:
    """An operation needing exactly one right; ``payload``/``record`` are prepared so that
    running it with the right changes nothing."""

    family: str
    path: str
    right: str
    record: int = 1
    payload: bytes = b""

    @property
    def df(self) -> str:
        return df_of(self.path)

    def describe(self) -> Msg:
        return msg(f"probe.{self.right}", path=self.path, family=self.family)


class Sec:
    """One case's security toolkit over its CaseContext."""

    def __init__(self, ctx: CaseContext) -> None:
        self.ctx = ctx
        self.profile = ctx.profile
        self.session = ctx.session
        security = ctx.profile.spec.security
        self.limit = security.retry_limit
        self.trailer = security.ext_auth_trailer
        self.challenge_length = security.challenge_length
        self._card_no8: bytes | None = None
        self._city8: bytes | None = None
        self.debt: set[str] = set()

    # -- preconditions -------------------------------------------------------------------
    def factors(self) -> tuple[bytes, bytes]:
        """(CardNo8, CityCode8) as a terminal reads them (ATR, item 57). Fetch before
        selecting the DF under test: reading item 57 selects DDF1."""
        if self._card_no8 is None or self._city8 is None:
            what = "diversification factors (ATR card number, item 57 city code)"
            with self.ctx.precondition(what):
                self._card_no8 = self.session.card_number_factor
                self._city8 = self.session.city_code_factor
        return self._card_no8, self._city8

    # -- selection -----------------------------------------------------------------------
    def go(self, path: str) -> None:
        """Select a DF or EF through the session (keeps the DF, and its rights, if current)."""
        with self.ctx.precondition(msg("what.sec_kit.select", path=path)):
            self.session.select(path)

    def raw_select(self, fid: str) -> ResponseAPDU:
        """SELECT one FID as is (the session forgets its state) and return the answer."""
        command = self.ctx.apdu("select", SELECT_P1_BY_FID, SELECT_P2_FCI, bytes.fromhex(fid))
        return self.session.transmit(command)

    def select_fid(self, fid: str, what: str | Msg) -> None:
        """SELECT one FID as is, as a precondition (9000 needed)."""
        response = self.raw_select(fid)
        if response.sw != self.profile.sw("ok"):
            raise Inconclusive(
                msg("precondition.select", what=what, fid=fid, sw=sw_hex(response.sw)),
                expected=sw_hex(self.profile.sw("ok")), measured=sw_hex(response.sw),
            )

    def select_ef_here(self, path: str) -> None:
        """Select the EF of ``path`` assuming its DF is current on the card (no DF change)."""
        if self.session.current_df == df_of(path):
            self.go(path)
        else:
            self.select_fid(self.profile.file(path).fid, msg("what.sec_kit.select_in_its_df",
                                                             path=path))

    def leave_and_return(self, df: str) -> str:
        """SELECT another DF, then ``df`` again, FID by FID (a DF change out and back)."""
        other = neighbour_df(self.profile, df)
        if other is None:
            raise Inconclusive(msg("precondition.no_other_df", df=df))
        self.select_fid(self.profile.df(other).fid, msg("act.select_from", path=other, df=df))
        self.select_fid(self.profile.df(df).fid, msg("act.select_again", df=df, other=other))
        return other

    def reset(self) -> None:
        with self.ctx.precondition(msg("what.sec_kit.reset_the_card")):
            self.session.reset()

    # -- challenge and EXTERNAL AUTHENTICATE ------------------------------------------------
    def challenge(self) -> bytes:
        """GET CHALLENGE as a precondition: 9000 and the profile's length."""
        command = self.ctx.apdu("get_challenge", 0, 0, le=self.challenge_length)
        response = self.ctx.send(command)
        if response.sw != self.profile.sw("ok") or len(response.data) != self.challenge_length:
            raise Inconclusive(
                msg("precondition.challenge", sw=sw_hex(response.sw),
                    length=len(response.data), expected=self.challenge_length,
                    response=response.hex()),
                expected=f"9000, {self.challenge_length} bytes",
                measured=f"{sw_hex(response.sw)}, {len(response.data)} bytes",
            )
        return response.data

    def cryptogram(
        self,
        family: str,
        challenge: bytes,
        x8: bytes,
        *,
        card_no8: bytes | None = None,
        city8: bytes | None = None,
    ) -> bytes:
        own_card, own_city = self.factors()
        return bytes(
            self.session.keys.auth_cryptogram(
                family, card_no8 or own_card, city8 or own_city, challenge, x8
            )
        )

    def auth_data(
        self, family: str, challenge: bytes, x8: bytes, *, wrong: bool = False,
        trailer: int | None = None, **factors: bytes,
    ) -> bytes:
        """C' ‖ X ‖ trailer; ``wrong`` flips one bit of C'."""
        c = bytearray(self.cryptogram(family, challenge, x8, **factors))
        if wrong:
            c[-1] ^= 0x01
        return bytes(c) + x8 + bytes([self.trailer if trailer is None else trailer])

    def ext_auth(self, kid: int, data: bytes, *, p1: int = 0) -> CommandAPDU:
        return self.ctx.apdu("external_authenticate", p1, kid, data)

    def kid(self, family: str) -> int:
        kid = self.profile.key(family).kid
        if kid is None:
            raise ValueError(f"{family} has no KID")
        return kid

    def x_and_challenge(self, family: str) -> tuple[bytes, bytes]:
        """X and the challenge R as the evidence takes them: a read key's X is chosen by the
        terminal; an update key's X is a first challenge R1, R the second (§4)."""
        if self.profile.key(family).use is KeyUse.UPDATE:
            x8 = self.challenge()
        else:
            x8 = secrets.token_bytes(self.challenge_length)
        return x8, self.challenge()

    def attempt(self, family: str, *, wrong: bool = False, **factors: bytes) -> Attempt:
        """Fresh challenge(s) and one EXTERNAL AUTHENTICATE in the current DF (the caller has
        selected the key's DF); returns whatever the card answered."""
        self.factors()
        x8, challenge = self.x_and_challenge(family)
        data = self.auth_data(family, challenge, x8, wrong=wrong, **factors)
        command = self.ext_auth(self.kid(family), data)
        response = self.send_auth(family, command)
        locked = response.sw == self.profile.sw("key_locked")
        if not wrong and not factors and (self.is_cryptogram_sw(response.sw) or locked):
            self.session.withheld[family] = msg("host.refused_cryptogram",
                                                sw=sw_hex(response.sw))
        return Attempt(command, response, challenge, x8)

    def enter_key_df(self, family: str) -> None:
        self.factors()
        self.go(self.profile.key(family).df)

    def probe_granted(self, family: str) -> Probe:
        """Precondition: ``family`` granted and its probe answered; returns the probe."""
        probe = self.probe(family)
        self.grant(family)
        with self.ctx.precondition(msg("what.sec_kit.with_granted",
                                       probe=probe.describe(), family=family)):
            self.run(probe).check()
        return probe

    def grant(self, family: str) -> None:
        """Precondition: the right of ``family`` in its DF, by the session."""
        self.factors()
        with self.ctx.precondition(msg("what.sec_kit.authenticate", family=family)):
            self.session.authenticate(family)
        self.debt.discard(family)

    def cryptogram_sw(self, tries_left: int) -> int:
        return int(self.profile.sw_prefix("wrong_cryptogram").ljust(4, "0"), 16) | tries_left

    def is_cryptogram_sw(self, sw: int) -> bool:
        return sw_hex(sw).startswith(self.profile.sw_prefix("wrong_cryptogram"))

    # -- judging -------------------------------------------------------------------------
    def expect_tries(self, response: ResponseAPDU, left: int, what: str | Msg) -> ResponseAPDU:
        """63Cx with x = ``left``: another x departs from the retry counter, a [choice]
        (REFERENCE.md §3); another error status word from §5's table, a [choice] too."""
        want = self.cryptogram_sw(left)
        if response.sw == want:
            return response
        family = sw_hex(response.sw).startswith(self.ctx.profile.sw_prefix("wrong_cryptogram"))
        choice = "retry_limit" if family else ("" if response.sw == 0x9000 else "status_words")
        self.ctx.check(
            False, msg("sw.expected", what=what, expected=sw_hex(want), sw=sw_hex(response.sw)),
            choice=choice, expected=sw_hex(want), measured=sw_hex(response.sw),
        )
        return response

    def expect_ok(self, response: ResponseAPDU, what: str | Msg) -> ResponseAPDU:
        return self.ctx.expect_sw(response, "ok", what=what)

    def expect_refused(self, response: ResponseAPDU, what: str | Msg) -> ResponseAPDU:
        return self.ctx.expect_sw(response, "security_not_satisfied", what=what)

    def restore_counter(self, family: str) -> None:
        """A correct authentication, which sets the key's retry counter back to full."""
        self.factors()
        self.session.authenticate(family)
        self.debt.discard(family)

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Wrong tries spent inside (keys whose last answer was 63Cx or anything but 9000)
        are paid back with a correct authentication after the block (REFERENCE.md §3)."""

        def pay() -> None:
            for family in sorted(self.debt):
                self.restore_counter(family)

        with self.ctx.restoring(msg("what.sec_kit.retry_counters"), pay):
            yield

    def send_auth(self, family: str, command: CommandAPDU) -> ResponseAPDU:
        """Send an EXTERNAL AUTHENTICATE meant for ``family``; a non-9000 answer puts the key
        in debt (its counter may have dropped) until a correct authentication. A family that
        refused a correct cryptogram earlier in the run is not tried again: its counter could
        not be paid back, so every try would drive the sample towards a lock."""
        if family in self.session.withheld:
            raise AuthenticationWithheld(
                msg("host.withheld", family=family, earlier=self.session.withheld[family])
            )
        response = self.ctx.send(command)
        if response.sw == self.profile.sw("ok"):
            self.debt.discard(family)
        else:
            self.debt.add(family)
        return response

    # -- records ---------------------------------------------------------------------------
    def read_record(self, n: int = 1) -> ResponseAPDU:
        return self.ctx.send(self.ctx.apdu("read_record", n, RECORD_P2_BY_NUMBER, le=LE_WHOLE))

    def read_binary(self, offset: int = 0, le: int = LE_WHOLE) -> ResponseAPDU:
        return self.ctx.send(self.ctx.apdu("read_binary", offset >> 8, offset & 0xFF, le=le))

    def read_first(self, path: str) -> ResponseAPDU:
        """READ RECORD 1 or READ BINARY at 0 of the current EF, by the file's structure."""
        if self.profile.file(path).structure is Structure.TRANSPARENT:
            return self.read_binary()
        return self.read_record(1)

    def current_record(self, path: str, n: int = 1) -> bytes:
        """Record n as the session reads it (authenticating the read key): a precondition."""
        with self.ctx.precondition(msg("what.sec_kit.read_record_of", n=n, path=path)):
            return self.session.read_record(path, n)

    def sm_command(self, path: str, n: int, tlv: bytes, challenge: bytes, *,
                   bad_mac: bool = False) -> CommandAPDU:
        """The profile's update_record_sm ``CLA INS n 04 Lc E‖MAC`` (04 DC in the reference)
        under the SM key of the file's DF and ``challenge``."""
        card_no8, city8 = self.factors()
        family = self.profile.df(df_of(path)).sm_key
        raw = bytearray(self.session.keys.sm_update_apdu(
            family, card_no8, city8, challenge, n, bytes(tlv),
            command=self.profile.command("update_record_sm")))
        if bad_mac:
            raw[-1] ^= 0x01
        return CommandAPDU.parse(bytes(raw))

    def sm_update(self, path: str, n: int, tlv: bytes, *, bad_mac: bool = False) -> ResponseAPDU:
        """A fresh challenge, then the SM update of record n of the current EF."""
        return self.ctx.send(self.sm_command(path, n, tlv, self.challenge(), bad_mac=bad_mac))

    def write_back_record(self, path: str, n: int, original: bytes) -> None:
        """Put record n of a TLV file back by SM (authenticating its update key if needed)."""
        self.factors()
        self.session.update_record_sm(path, n, original)

    def put_back_record(self, path: str, original: bytes, n: int = 1) -> None:
        """Write record n back by SM unless it already holds ``original`` (the read right
        of the current EF is held)."""
        if self.record_now(n) != original:
            self.write_back_record(path, n, original)

    def record_now(self, n: int = 1) -> bytes | None:
        """Record n of the current EF if it reads (9000), else None."""
        response = self.read_record(n)
        return response.data if response.sw == self.profile.sw("ok") else None

    # -- probes ----------------------------------------------------------------------------
    def probe(self, family: str, path: str | None = None, right: str | None = None) -> Probe:
        """The probe of ``family`` (its first file and right, or the ones given), prepared:
        the bytes it writes back or the free index record it erases are read first (with the
        file's read key, through the session)."""
        if path is None or right is None:
            opened = rights_of(self.profile, family)
            if not opened:
                raise ValueError(f"{family} opens no file of the profile")
            path, right = opened[0]
        probe = Probe(family, path, right)
        ef = self.profile.file(path)
        if right == "update":
            self.factors()
            if ef.structure is Structure.TRANSPARENT:
                with self.ctx.precondition(msg("what.sec_kit.read_the_first_bytes_of", path=path)):
                    probe.payload = self.session.read_binary(path, 0, PROBE_BYTES)
            else:
                probe.payload = self.current_record(path, 1)
        elif right in ("mark", "erase"):
            probe.record = self.free_index_record(path)
        return probe

    def free_index_record(self, path: str) -> int:
        """A free record of an index file (a precondition: one must be free)."""
        self.factors()
        _used, free = index_flags(self.profile, path)
        for n in range(1, self.profile.record_count(path) + 1):
            if self.current_record(path, n) == free:
                return n
        raise Inconclusive(msg("precondition.no_free_record", path=path))

    def run(self, probe: Probe, *, select: bool = True) -> ResponseAPDU:
        """Run the probe in its DF (which must be current on the card)."""
        if select:
            self.select_ef_here(probe.path)
        ef = self.profile.file(probe.path)
        if probe.right == "read":
            return self.read_first(probe.path)
        if probe.right == "update":
            if ef.access.update_mode is UpdateMode.SM:
                return self.sm_update(probe.path, probe.record, probe.payload)
            if ef.structure is Structure.TRANSPARENT:
                return self.ctx.send(self.ctx.apdu("update_binary", 0, 0, probe.payload))
            return self.ctx.send(
                self.ctx.apdu("update_record", probe.record, RECORD_P2_BY_NUMBER, probe.payload)
            )
        command = "mark_record" if probe.right == "mark" else "erase_record"
        return self.ctx.send(
            self.ctx.apdu(command, probe.record, RECORD_P2_BY_NUMBER, le=LE_WHOLE)
        )

    def undo_mark(self, path: str, n: int) -> None:
        """Erase index record n again if it is marked (after a mark that should not have
        happened); uses the file's erase key through the session."""
        self.factors()
        used, _free = index_flags(self.profile, path)
        if self.session.read_record(path, n) == used:
            self.session.erase_index(path, n)
