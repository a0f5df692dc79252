"""Masking of secrets (PINs, cryptograms, cryptogram inputs, SAM data) before anything is logged.

Traces and reports are evidence that leaves the lab, so no PIN, cryptogram or challenge may
appear in them in clear. A secret field is replaced by ``<secret:sha256-salted:XXXXXXXXXXXXXXXX>``
(the first 16 hex digits of SHA-256(salt ‖ field)): whoever holds the run's salt can still check
that a trace shows the value they expect; nobody else learns anything. Header bytes, Lc, Le and
the status word stay visible, because they are what a verdict rests on.

Which fields are secret is the profile's data (``secret:`` beside each command and SAM command
in the YAML), so a lab that changes a command's CLA keeps its masking. This module works on raw
bytes on purpose: it must mask even malformed APDUs, which a conformance case sends
deliberately (wrong Lc, wrong class) and an APDU parser would refuse.

With privacy on (an issued card: the data of a real cardholder), the data items a read returns
or a write carries are masked too, with the same salted digest: a TLV record of an item marked
``personal: true`` keeps its tag and length visible and shows
``<personal:NN:sha256-salted:XXXXXXXXXXXXXXXX>`` (NN the item number) for its value; data that
is not a TLV record of a known item (a cyclic or transparent file, a partial record) cannot be
told apart from personal data and is masked whole (``<personal:sha256-salted:…>``). Which
commands carry items is the profile's ``personal:`` beside them.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conformance.apdu import split_command

if TYPE_CHECKING:
    from conformance.model.profile import CardProfile
    from conformance.model.schema import Secret

__all__ = [
    "MASK_DIGITS",
    "MASK_PATTERN",
    "MASK_PREFIX",
    "PERSONAL_PREFIX",
    "PrivacyRules",
    "RedactionRules",
    "Redactor",
    "SecretRule",
    "salted_digest",
]

MASK_PREFIX = "<secret:sha256-salted:"
PERSONAL_PREFIX = "<personal:"
MASK_DIGITS = 16
MASK_PATTERN = re.compile(
    r"<(?P<kind>secret|personal)(?::(?P<item>\d+))?:sha256-salted:(?P<digest>[0-9a-f]{16})>"
)
"""Every mask token this module writes: kind, item number (personal TLV values), digest."""


_PART = 8  # shortest quoted part of a personal value scrub() masks (a date: 8 digits)
_RUN = re.compile(rf"[0-9A-Za-z]{{{_PART},}}")


def _split_tokens(text: str) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, is a mask token)."""
    pieces, end = [], 0
    for match in MASK_PATTERN.finditer(text):
        pieces += [(text[end:match.start()], False), (match.group(), True)]
        end = match.end()
    return [*pieces, (text[end:], False)]


def salted_digest(salt: bytes, field: bytes) -> str:
    """First 16 hex digits of SHA-256(salt ‖ field): what every mask token shows."""
    return hashlib.sha256(bytes(salt) + bytes(field)).hexdigest()[:MASK_DIGITS]


@dataclass(frozen=True)
class SecretRule:
    """Which parts of one command's exchange are secret.

    ``keep_tail`` trailing bytes of the command data stay visible, but only when the data has
    exactly ``keep_tail_if_length`` bytes: EXTERNAL AUTHENTICATE's trailing ``01`` is evidence
    (a case checks that another value gets 6A80), while in a data field of the wrong length no
    byte can be trusted not to belong to the cryptogram.
    """

    name: str
    command_data: bool = False
    response_data: bool = False
    keep_tail: int = 0
    keep_tail_if_length: int | None = None

    @classmethod
    def of(cls, name: str, secret: Secret) -> SecretRule:
        return cls(
            name,
            command_data=secret.data,
            response_data=secret.response,
            keep_tail=secret.keep_tail,
            keep_tail_if_length=secret.keep_tail_if_length,
        )


# A GET RESPONSE whose originating command is unknown: its data could be anything, so it is
# masked (over-masking loses evidence; under-masking leaks a secret for good).
_UNKNOWN_ORIGIN = SecretRule("GET RESPONSE (origin unknown)", response_data=True)


@dataclass(frozen=True)
class RedactionRules:
    """The secrecy rules of one profile, looked up by a command's CLA and INS.

    ``exact`` rows are keyed by (CLA, INS) and take precedence over ``any_class`` rows, keyed
    by INS alone. ``get_response_ins`` identifies GET RESPONSE, whose data belongs to the
    command that answered ``bytes_available_sw1`` (61) before it.
    """

    exact: Mapping[tuple[int, int], SecretRule]
    any_class: Mapping[int, SecretRule]
    get_response_ins: int
    bytes_available_sw1: int

    @classmethod
    def from_profile(cls, profile: CardProfile) -> RedactionRules:
        exact: dict[tuple[int, int], SecretRule] = {}
        any_class: dict[int, SecretRule] = {}
        spec = profile.spec
        commands = [*spec.commands.items(), *spec.sam_commands.items()]
        for name, command in commands:
            if command.secret is None:
                continue
            rule = SecretRule.of(name, command.secret)
            exact[(command.cla, command.ins)] = rule
            if command.secret.any_class:
                any_class[command.ins] = rule
        _cla, get_response = profile.command("get_response")
        sw1 = int(profile.sw_prefix("bytes_available")[:2], 16)
        return cls(exact, any_class, get_response, sw1)

    def rule_for(self, command: bytes) -> SecretRule | None:
        """The rule for a command (by its CLA and INS), or None if nothing in it is secret."""
        if len(command) < 2:
            return None
        cla, ins = command[0], command[1]
        return self.exact.get((cla, ins)) or self.any_class.get(ins)

    def is_get_response(self, command: bytes) -> bool:
        """Whether a command is a GET RESPONSE (any class): its data belongs to another."""
        return len(command) >= 2 and command[1] == self.get_response_ins

    def announces_more(self, response: bytes | None) -> bool:
        """Whether a response is 61xx: a GET RESPONSE will collect the rest of its data."""
        return response is not None and len(response) >= 2 and (
            response[-2] == self.bytes_available_sw1
        )


@dataclass(frozen=True)
class PrivacyRules:
    """Where a profile's data items travel, and which of them are personal.

    ``data_ins`` / ``response_ins``: INS (any class) whose command data / response data carry
    data items. ``items`` maps the tag of every TLV item to (its length, its coding, whether
    it is personal); TLV tags are the item numbers.
    """

    data_ins: frozenset[int]
    response_ins: frozenset[int]
    items: Mapping[int, tuple[int, str, bool]]

    @classmethod
    def from_profile(cls, profile: CardProfile) -> PrivacyRules:
        commands = profile.spec.commands.values()
        return cls(
            data_ins=frozenset(c.ins for c in commands if c.personal == "data"),
            response_ins=frozenset(c.ins for c in commands if c.personal == "response"),
            items={
                number: (item.length, str(item.coding), item.personal)
                for number, item in profile.spec.items.items()
                if 0 < number < 256
            },
        )

    def fields(self, data: bytes) -> tuple[str, bytes, int | None]:
        """(visible hex, personal bytes, item number or None) of data carrying items.

        A TLV record of a non-personal item is all visible; of a personal item, its tag and
        length stay visible; anything else is personal as a whole.
        """
        if not data:
            return "", b"", None
        if len(data) >= 2 and data[0] in self.items and data[1] == len(data) - 2:
            length, _coding, personal = self.items[data[0]]
            if data[1] == length:
                if not personal:
                    return data.hex().upper(), b"", None
                return data[:2].hex().upper(), data[2:], data[0]
        return "", data, None

    def text_forms(self, item: int | None, value: bytes) -> list[str]:
        """How a personal value may be quoted as text (an AN name as GBK text, CN digits)."""
        if item is None or item not in self.items:
            return []
        _length, coding, _personal = self.items[item]
        from conformance.model.codecs import Coding, CodingError, decode

        try:
            text = decode(Coding(coding), value)
        except (CodingError, ValueError):
            return []
        text = text.strip()
        return [text] if len(text) >= 2 and coding != "B" else []


class Redactor:
    """Turns APDUs into hex strings with their secret fields replaced by salted digests.

    The salt is random per run unless given; it is never part of any output of this class (a
    run seals it for the lab, conformance/report/seal.py). With ``privacy`` rules, personal
    data items are masked as well (module docstring).
    """

    def __init__(
        self,
        rules: RedactionRules,
        salt: bytes | None = None,
        privacy: PrivacyRules | None = None,
    ) -> None:
        self.rules = rules
        self.privacy = privacy
        if salt is None:
            salt = os.urandom(16)
        if not isinstance(salt, bytes | bytearray) or not salt:
            raise ValueError("the salt must be non-empty bytes")
        self._salt = bytes(salt)
        # personal values seen, with their item: scrub() masks them as personal, text included
        self._personal: dict[bytes, int | None] = {}

    @classmethod
    def from_profile(
        cls, profile: CardProfile, salt: bytes | None = None, *, privacy: bool = False
    ) -> Redactor:
        """A redactor masking what the profile's ``secret:`` entries name, and with privacy
        on its personal items too."""
        rules = PrivacyRules.from_profile(profile) if privacy else None
        return cls(RedactionRules.from_profile(profile), salt, rules)

    @property
    def salt(self) -> bytes:
        """The salt, for whoever must verify masks later; never write it into a trace."""
        return self._salt

    def __repr__(self) -> str:
        return "Redactor(salt=<hidden>)"

    # -- digests ------------------------------------------------------------------------

    def digest(self, field: bytes) -> str:
        """First 16 hex digits of SHA-256(salt ‖ field): the checkable fingerprint of a secret."""
        return salted_digest(self._salt, field)

    def mask(self, field: bytes) -> str:
        """The token that stands for a secret field in every trace."""
        return f"{MASK_PREFIX}{self.digest(field)}>"

    def personal_mask(self, field: bytes, item: int | None = None) -> str:
        """The token that stands for a personal value (of data item ``item``, if known)."""
        label = f"{item}:" if item is not None else ""
        return f"{PERSONAL_PREFIX}{label}sha256-salted:{self.digest(field)}>"

    def _masked(self, field: bytes) -> str:
        return self.mask(field) if field else ""

    def _personal_field(self, data: bytes) -> tuple[str, bytes]:
        """(visible hex ‖ personal token, personal bytes) of data that carries items."""
        assert self.privacy is not None
        visible, personal, item = self.privacy.fields(data)
        if not personal:
            return visible, b""
        self._personal.setdefault(personal, item)
        return visible + self.personal_mask(personal, item), personal

    def _command_items(self, apdu: bytes) -> tuple[str, bytes, str] | None:
        """(prefix hex, item data, suffix hex) of a command that carries items, with privacy."""
        if self.privacy is None or len(apdu) < 2 or apdu[1] not in self.privacy.data_ins:
            return None
        parts = split_command(apdu)
        if parts is None:  # malformed: only the header and P3 can be trusted to be public
            return apdu[:5].hex().upper(), apdu[5:], ""
        head, data, le = parts
        return head.hex().upper(), data, le.hex().upper()

    def _response_items(
        self, command: bytes, response: bytes, origin: bytes | None
    ) -> bytes | None:
        """The data of a response that carries items, with privacy (None: it carries none)."""
        if self.privacy is None or len(response) < 2:
            return None
        source = origin if self.rules.is_get_response(command) else command
        if source is None or len(source) < 2 or source[1] not in self.privacy.response_ins:
            return None
        return response[:-2]

    # -- what is secret -----------------------------------------------------------------

    def command_secret(self, apdu: bytes) -> tuple[str, bytes, str]:
        """(visible prefix hex, secret bytes, visible suffix hex) of a command.

        The secret part is empty when nothing in the command is secret.
        """
        apdu = bytes(apdu)
        rule = self.rules.rule_for(apdu)
        if rule is None or not rule.command_data:
            return apdu.hex().upper(), b"", ""
        parts = split_command(apdu)
        if parts is None:  # malformed: only the header and P3 can be trusted to be public
            return apdu[:5].hex().upper(), apdu[5:], ""
        head, data, le = parts
        tail = b""
        if rule.keep_tail and len(data) == rule.keep_tail_if_length:
            data, tail = data[: -rule.keep_tail], data[-rule.keep_tail :]
        return head.hex().upper(), data, (tail + le).hex().upper()

    def response_secret(
        self, command: bytes, response: bytes, *, origin: bytes | None = None
    ) -> tuple[bytes, str]:
        """(secret data bytes, visible SW hex) of a response to ``command``.

        For a GET RESPONSE, ``origin`` is the command whose 61xx it collects: its rule decides.
        A GET RESPONSE of unknown origin has its data masked.
        """
        command, response = bytes(command), bytes(response)
        if len(response) < 2:
            return b"", response.hex().upper()  # not a response APDU; nothing fits in it
        if self.rules.is_get_response(command):
            rule = self.rules.rule_for(origin) if origin is not None else _UNKNOWN_ORIGIN
        else:
            rule = self.rules.rule_for(command)
        data, sw = response[:-2], response[-2:].hex().upper()
        if rule is None or not rule.response_data:
            return b"", data.hex().upper() + sw
        return data, sw

    def secret_fields(
        self, command: bytes, response: bytes | None = None, *, origin: bytes | None = None
    ) -> list[bytes]:
        """The raw secret fields of an exchange (to scrub them from free text, e.g. errors)."""
        command = bytes(command)
        fields = [self.command_secret(command)[1]]
        if not fields[0] and (items := self._command_items(command)) is not None:
            fields.append(self._personal_field(items[1])[1])
        if response is not None:
            response = bytes(response)
            secret = self.response_secret(command, response, origin=origin)[0]
            fields.append(secret)
            data = None if secret else self._response_items(command, response, origin)
            if data is not None:
                fields.append(self._personal_field(data)[1])
        return [f for f in fields if f]

    # -- rendering ----------------------------------------------------------------------

    def redact_command(self, apdu: bytes) -> str:
        """The command as hex, secret data replaced by its mask."""
        apdu = bytes(apdu)
        head, secret, tail = self.command_secret(apdu)
        if not secret and (items := self._command_items(apdu)) is not None:
            head, data, tail = items
            return head + self._personal_field(data)[0] + tail
        return head + self._masked(secret) + tail

    def redact_response(
        self, command: bytes, response: bytes, *, origin: bytes | None = None
    ) -> str:
        """The response (data ‖ SW) as hex, secret data replaced by its mask."""
        command, response = bytes(command), bytes(response)
        secret, visible = self.response_secret(command, response, origin=origin)
        data = None if secret else self._response_items(command, response, origin)
        if data is not None:
            return self._personal_field(data)[0] + response[-2:].hex().upper()
        return self._masked(secret) + visible

    def render_exchange(
        self, command: bytes, response: bytes | None, origin: bytes | None = None
    ) -> tuple[str, str | None, str | None]:
        """(command, response, SW) of one exchange as the trace shows them: the two
        renderings above, and the SW in clear. A command no rule or privacy touches (most of
        them) takes a short path with the same result."""
        rules = self.rules
        if (
            self.privacy is None
            and rules.rule_for(command) is None
            and (
                not rules.is_get_response(command)
                or (origin is not None and rules.rule_for(origin) is None)
            )
        ):
            shown = command.hex().upper()
            if response is None:
                return shown, None, None
            answer = response.hex().upper()
            return shown, answer, answer[-4:] if len(response) >= 2 else None
        shown = self.redact_command(command)
        if response is None:
            return shown, None, None
        sw = response[-2:].hex().upper() if len(response) >= 2 else None
        return shown, self.redact_response(command, response, origin=origin), sw

    def scrub(self, text: str, fields: Iterable[bytes]) -> str:
        """Replace any hex rendering of the given secret fields in free text by their masks.

        Error messages from drivers sometimes quote the APDU; this keeps them safe to log.
        Both cases, contiguous or byte-separated by spaces or colons, are recognised. Fields
        shorter than 2 bytes are left alone: they reveal nothing, and replacing every
        occurrence of one hex byte would garble the message. A personal value is masked as
        personal, and also where it is quoted as text (a name, an ID number).
        """
        wanted = {bytes(f) for f in fields if len(f) >= 2}
        for field in sorted(wanted, key=len, reverse=True):
            pattern = r"[ :]?".join(f"{b:02x}" for b in field)
            if field in self._personal:
                token = self.personal_mask(field, self._personal[field])
            else:
                token = self.mask(field)
            text = re.sub(pattern, token, text, flags=re.IGNORECASE)
        if self.privacy is not None:
            quoted = {
                form: self.personal_mask(value, item)
                for value, item in self._personal.items()
                for form in self.privacy.text_forms(item, value)
            }
            for form in sorted(quoted, key=len, reverse=True):
                text = text.replace(form, quoted[form])
            text = self._scrub_parts(text, [f for f in quoted if len(f) >= _PART])
        return text

    def _scrub_parts(self, text: str, forms: list[str]) -> str:
        """Mask quoted parts of personal values too (the birth date an ID number carries).

        Any run of at least ``_PART`` letters or digits outside a mask token that is part of a
        personal value's text becomes a personal mask of the run's own bytes."""
        if not forms:
            return text

        def mask(match: re.Match[str]) -> str:
            run = match.group()
            return self.personal_mask(run.encode()) if any(run in f for f in forms) else run

        pieces = _split_tokens(text)
        return "".join(p if token else _RUN.sub(mask, p) for p, token in pieces)
