"""The other application of the co-branded virtual card: a PBOC PSE and one ADF beside DDF1.

With feature ``co_branded`` the card OS (:class:`~conformance.card.commands.CardOS`) hands
this application every command while the PSE or the ADF is current, and every SELECT by
name (P1 = 04). SELECT by FID leaves it: the health application answers from the MF, so
DDF1 is selected by FID as REFERENCE.md §1 says (the PSE and the ADF sit beside DDF1, under
the MF). Everything wire-visible comes from the application profile
(``profiles/applications/*.yaml``, :class:`~conformance.model.application.OtherApplication`)
and the health profile's status words.

Its persistent state (:class:`OtherContent`: records, data objects such as the ATC, its key
and retry counter) is its own: no health command reads or writes it, and no health key opens
it. The faults that break that separation are overrides in
:class:`conformance.card.hooks.FaultyPboc`; this class is the reference and asks no fault.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyemv.tlv

from conformance import crypto
from conformance.model.application import OtherApplication, load_application_keys

if TYPE_CHECKING:
    from conformance.card.commands import CardOS, Command

__all__ = ["OtherContent", "PbocApplication", "build_other_content", "other_from_image",
           "other_to_image"]

PSE, ADF = "PSE", "ADF"
"""What is current in the other application (None: the health application is)."""
PAN_TAG = "5A"
SFI_SHIFT = 3


@dataclass
class OtherContent:
    """The other application's EEPROM: records by SFI, data objects, card keys, counters."""

    records: dict[int, list[bytes]]
    data_objects: dict[str, bytes]
    card_keys: dict[str, bytes] = field(repr=False)
    retry: dict[str, int]


def _pan(app: OtherApplication) -> str:
    for f in app.adf.files:
        for record in f.records:
            if PAN_TAG in record:
                return record[PAN_TAG].rstrip("F")
    raise ValueError(f"application {app.name}: no PAN (tag {PAN_TAG}) to derive its keys")


def build_other_content(app: OtherApplication) -> OtherContent:
    """The application as issued: its records, data objects, keys from its test master keys
    (EMV option A over the PAN), full counters."""
    masters = load_application_keys(app)
    pan = _pan(app)
    return OtherContent(
        records={f.sfi: f.encoded() for f in app.adf.files},
        data_objects={t: bytes.fromhex(v) for t, v in app.adf.data_objects.items()},
        card_keys={k: crypto.emv_option_a(masters[k], pan) for k in app.adf.keys},
        retry={k: spec.retry_limit for k, spec in app.adf.keys.items()},
    )


def other_to_image(content: OtherContent, app: OtherApplication) -> dict[str, Any]:
    """The JSON-ready image of the other application (beside the health card's)."""
    return {
        "application": {"name": app.name, "sha256": app.sha256},
        "records": {str(s): [r.hex().upper() for r in rs] for s, rs in content.records.items()},
        "data_objects": {t: v.hex().upper() for t, v in content.data_objects.items()},
        "card_keys": {k: v.hex().upper() for k, v in content.card_keys.items()},
        "retry_counters": dict(content.retry),
    }


def other_from_image(doc: Any, app: OtherApplication, source: str) -> OtherContent:
    """The other application's content from an image; ValueError naming the problem."""
    def fail(what: str) -> ValueError:
        return ValueError(f"{source}: other_application: {what}")

    if not isinstance(doc, dict) or doc.get("application", {}).get("name") != app.name:
        raise fail(f"the image does not hold application {app.name}")
    fresh = build_other_content(app)
    try:
        records = {int(s): [bytes.fromhex(r) for r in rs] for s, rs in doc["records"].items()}
        objects = {t: bytes.fromhex(v) for t, v in doc["data_objects"].items()}
        keys = {k: bytes.fromhex(v) for k, v in doc["card_keys"].items()}
        retry = {k: int(v) for k, v in doc["retry_counters"].items()}
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise fail(f"malformed ({exc})") from None
    if ({s: len(r) for s, r in records.items()} != {s: len(r) for s, r in fresh.records.items()}
            or set(objects) != set(fresh.data_objects) or set(keys) != set(fresh.card_keys)
            or set(retry) != set(fresh.retry)):
        raise fail("files, data objects or keys differ from the application profile")
    return OtherContent(records, objects, keys, retry)


class PbocApplication:
    """The PSE and the ADF of the other application, answering through the card OS."""

    def __init__(self, app: OtherApplication, content: OtherContent, card: CardOS) -> None:
        self.app = app
        self.content = content
        self.card = card
        self.current: str | None = None
        self.rights: set[str] = set()
        self.challenge: bytes | None = None
        self._select = app.command("select")
        self._by_name = app.select_by_name_p1
        self._classes = {c.cla for c in app.commands.values()}
        self._handlers = {
            app.command("read_record"): self._read_record,
            app.command("get_data"): self._get_data,
            app.command("get_challenge"): self._get_challenge,
            app.command("external_authenticate"): self._external_authenticate,
            app.command("update_record"): self._update_record,
            app.command("update_record_mac"): self._update_record_mac,
        }
        self._get_response = app.command("get_response")
        self._kids = {spec.kid: name for name, spec in app.adf.keys.items()}

    # ------------------------------------------------------------------ routing
    def reset(self) -> None:
        """Power-up: the health application's MF is current; no right, no challenge."""
        self.current = None
        self.rights.clear()
        self.challenge = None

    def process(self, c: Command) -> bytes | None:
        """The answer when this application takes the command, else None (the health
        application answers): SELECT by name always, anything but SELECT by FID and GET
        RESPONSE while the PSE or the ADF is current."""
        if (c.cla, c.ins) == self._get_response:
            return None
        if (c.cla, c.ins) == self._select:
            if c.p1 == self._by_name:
                return self._select_by_name(c)
            if self.current is None:
                return None
            return self._leave(c)
        if self.current is None:
            return None
        if c.cla not in self._classes:
            return self.card.CLA_NOT_SUPPORTED
        handler = self._handlers.get((c.cla, c.ins))
        if handler is None:
            known_ins = {ins for _cla, ins in self._handlers}
            return self.card.CLA_NOT_SUPPORTED if c.ins in known_ins \
                else self.card.INS_NOT_SUPPORTED
        return handler(c)

    def _leave(self, c: Command) -> bytes | None:
        """SELECT by FID from the other application: the health application takes over
        from its MF (no right of the other application survives)."""
        self.reset()
        return None

    # ------------------------------------------------------------------ SELECT by name
    def _select_by_name(self, c: Command) -> bytes:
        card = self.card
        if c.p2 not in (0x00,):
            return card.WRONG_P1P2
        if c.malformed or not 1 <= len(c.data) <= 16:
            return card.WRONG_LENGTH
        if c.data == self.app.pse_name:
            target, fci = PSE, self.app.pse_fci()
        elif c.data == self.app.aid:
            target, fci = ADF, self.app.adf_fci()
        else:
            return card.FILE_NOT_FOUND
        self._enter(target)
        return card._data(fci)

    def _enter(self, target: str) -> None:
        """The PSE or the ADF becomes current: the health DF is left (its rights go, as
        selecting another DF clears them, REFERENCE.md §3), the other's rights too."""
        self.card.leave_for_other_application()
        self.current = target
        self.rights.clear()
        self.challenge = None

    # ------------------------------------------------------------------ reading
    def _records_of(self, p2: int) -> list[bytes] | None:
        if p2 & 0x07 != 0x04:
            return None
        sfi = p2 >> SFI_SHIFT
        if self.current == PSE:
            return (self.app.directory_records() if sfi == self.app.pse.directory_sfi
                    else None)
        return self.content.records.get(sfi)

    def _read_record(self, c: Command) -> bytes:
        card = self.card
        if c.p2 & 0x07 != 0x04:
            return card.WRONG_P1P2
        if c.malformed or c.data:
            return card.WRONG_LENGTH
        records = self._records_of(c.p2)
        if records is None:
            return card.FILE_NOT_FOUND
        if not 1 <= c.p1 <= len(records):
            return card.RECORD_NOT_FOUND
        return card._data(records[c.p1 - 1])

    def _get_data(self, c: Command) -> bytes:
        card = self.card
        if c.malformed or c.data:
            return card.WRONG_LENGTH
        tag = f"{c.p1:02X}{c.p2:02X}" if c.p1 else f"{c.p2:02X}"
        value = self.content.data_objects.get(tag) if self.current == ADF else None
        if value is None:
            return card.KEY_NOT_FOUND  # 6A88: referenced data not found (ISO/IEC 7816-4)
        return card._data(pyemv.tlv.encode({tag: value}))

    # ------------------------------------------------------------------ security
    def _get_challenge(self, c: Command) -> bytes:
        card = self.card
        if c.p1 or c.p2:
            return card.WRONG_P1P2
        n = self.app.challenge_length
        if c.malformed or c.data or c.le != n:
            return card.WRONG_LENGTH
        self.challenge = secrets.token_bytes(n)
        return card._data(self.challenge)

    def _take_challenge(self) -> bytes | None:
        challenge, self.challenge = self.challenge, None
        return challenge

    def _external_authenticate(self, c: Command) -> bytes:
        card = self.card
        challenge = self._take_challenge()
        if c.p1 != 0:
            return card.WRONG_P1P2
        if c.malformed or len(c.data) != self.app.challenge_length:
            return card.WRONG_LENGTH
        family = self._find_key(c.p2)
        if family is None or self.current != ADF:
            return card.KEY_NOT_FOUND
        if self.content.retry[family] == 0:
            return card.KEY_LOCKED
        if challenge is None:
            return card.NO_CHALLENGE
        expected = crypto.des3_auth_cryptogram(self.content.card_keys[family], challenge)
        if not hmac.compare_digest(expected, c.data):
            left = max(0, self.content.retry[family] - 1)
            self.content.retry[family] = left
            return card._cryptogram_sw(left)
        self.content.retry[family] = self.app.adf.keys[family].retry_limit
        self.rights.add(family)
        return card.OK

    def _find_key(self, kid: int) -> str | None:
        return self._kids.get(kid)

    def _may_update(self, sfi: int) -> bool:
        """A plain update: the file's key was authenticated in the ADF."""
        key = self.app.file(sfi).update
        return key is not None and key in self.rights

    # ------------------------------------------------------------------ updating
    def _update_target(self, c: Command) -> tuple[int, list[bytes]] | bytes:
        """(SFI, records) of an UPDATE RECORD, or the status word refusing it."""
        card = self.card
        if c.p2 & 0x07 != 0x04:
            return card.WRONG_P1P2
        if c.malformed or not c.data:
            return card.WRONG_LENGTH
        records = self.content.records.get(c.p2 >> SFI_SHIFT) if self.current == ADF else None
        if records is None:
            return card.FILE_NOT_FOUND
        return c.p2 >> SFI_SHIFT, records

    def _write(self, records: list[bytes], n: int, data: bytes) -> bytes:
        card = self.card
        if not 1 <= n <= len(records):
            return card.RECORD_NOT_FOUND
        if len(data) != len(records[n - 1]):
            return card.WRONG_LENGTH
        records[n - 1] = bytes(data)
        return card.OK

    def _update_record(self, c: Command) -> bytes:
        target = self._update_target(c)
        if isinstance(target, bytes):
            return target
        sfi, records = target
        if not self._may_update(sfi):
            return self.card.SECURITY
        return self._write(records, c.p1, c.data)

    def _update_record_mac(self, c: Command) -> bytes:
        """04 DC: data ‖ MAC, the MAC under the file's own key over R ‖ header ‖ data."""
        card = self.card
        challenge = self._take_challenge()
        target = self._update_target(c)
        if isinstance(target, bytes):
            return target
        sfi, records = target
        key = self.app.file(sfi).update
        if key is None:
            return card.SECURITY
        if challenge is None:
            return card.NO_CHALLENGE
        n = self.app.mac_length
        if len(c.data) <= n:
            return card.WRONG_LENGTH
        data, mac = c.data[:-n], c.data[-n:]
        if not self._mac_ok(key, challenge, c.raw[:5], data, mac):
            return card.WRONG_MAC
        return self._write(records, c.p1, data)

    def _mac_ok(self, key: str, challenge: bytes, header: bytes, data: bytes,
                mac: bytes) -> bool:
        good = crypto.des3_mac(self.content.card_keys[key], challenge + header + data)
        return hmac.compare_digest(good[: len(mac)], mac)

