"""Value rules of data items, as named in the profile (`items.N.rules`, `consistency`).

Pure functions over decoded values (strings as the codecs return them): each checker returns
``None`` when the value satisfies the rule and a short reason (a bilingual Msg) when it
does not. An
empty value (an item never personalised) satisfies every rule: whether an item must be
personalised is not a value rule.

The rules (REFERENCE.md §1; evidence §3.1):

- ``date``: ``YYYYMMDD``, a real calendar date.
- ``id_number``: a resident ID number of GB 11643-1999: 17 digits (6-digit address code,
  8-digit birth date that is a real date, 3-digit sequence) and a check character computed
  with the ISO 7064 MOD 11-2 weights (``X`` stands for 10).
- ``digits``: decimal digits only.
- ``phone``: digits, optionally a leading ``+`` and single ``-`` separators between digit
  groups, at least 3 digits [choice: the evidence gives no format].
- ``code:<table>``: one of the table's values, or a match of its pattern.

:func:`check_coding` checks raw bytes against an item's coding (REFERENCE.md §1): CN is BCD
digits, left-aligned, with nothing but F nibbles after the first F; AN is GBK text with
nothing but 00 after the first 00, and a value that fills its field and ends in spaces is
taken as space padding, which §1 does not allow [choice]; B has only its length. An item never
personalised is AN all 00, CN all FF, B all 00 (REFERENCE.md §5), which these rules accept.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

from conformance.messages import Msg, msg
from conformance.model.codecs import Coding
from conformance.model.schema import CodeTable

__all__ = [
    "ID_CHECK_CHARS",
    "ID_WEIGHTS",
    "check_code",
    "check_coding",
    "check_date",
    "check_digits",
    "check_id_number",
    "check_phone",
    "check_rule",
    "id_check_char",
    "parse_date",
]

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
"""GB 11643-1999 §5.4: weights W_i = 2^(i-1) mod 11 of the first 17 characters (left first)."""

ID_CHECK_CHARS = "10X98765432"
"""GB 11643-1999 §5.4: the check character for (Σ a_i·W_i) mod 11 = 0, 1, … 10."""

_PHONE = re.compile(r"^\+?[0-9]+(-[0-9]+)*$")
MIN_PHONE_DIGITS = 3


def parse_date(value: str) -> datetime.date | None:
    """The date of a ``YYYYMMDD`` string, or None when it is not a real date."""
    if len(value) != 8 or not (value.isascii() and value.isdigit()):
        return None
    try:
        return datetime.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def check_date(value: str) -> Msg | None:
    if not value:
        return None
    if parse_date(value) is None:
        return msg("rule.date", value=repr(value))
    return None


def check_digits(value: str) -> Msg | None:
    if value and not (value.isascii() and value.isdigit()):
        return msg("rule.digits", value=repr(value))
    return None


def check_phone(value: str) -> Msg | None:
    if not value:
        return None
    if not _PHONE.match(value) or sum(c.isdigit() for c in value) < MIN_PHONE_DIGITS:
        return msg("rule.phone", value=repr(value))
    return None


def id_check_char(first17: str) -> str:
    """The GB 11643-1999 check character of 17 digits."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError(f"{first17!r} is not 17 digits")
    total = sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def check_id_number(value: str) -> Msg | None:
    if not value:
        return None
    if len(value) != 18:
        return msg("rule.id_length", value=repr(value), length=len(value))
    body, check = value[:17], value[17]
    if not (body.isascii() and body.isdigit()):
        return msg("rule.id_digits", value=repr(value))
    if parse_date(body[6:14]) is None:
        return msg("rule.id_birth", value=repr(value), birth=body[6:14])
    expected = id_check_char(body)
    if check != expected:
        return msg("rule.id_check", value=repr(value), check=repr(check), expected=repr(expected))
    return None


def check_code(value: str, table_name: str, table: CodeTable) -> Msg | None:
    if not value:
        return None
    if table.values is not None:
        if value not in table.values:
            return msg("rule.code_values", value=repr(value), table=table_name, ref=table.ref)
        return None
    if table.pattern is not None and not re.search(table.pattern, value):
        return msg("rule.code_pattern", value=repr(value), table=table_name, ref=table.ref)
    return None


_SIMPLE: dict[str, Callable[[str], str | None]] = {
    "date": check_date,
    "id_number": check_id_number,
    "digits": check_digits,
    "phone": check_phone,
}


def check_rule(rule: str, value: str, code_tables: dict[str, CodeTable]) -> Msg | None:
    """Check one rule of the profile (``date``, ``code:sex`` …) against a decoded value."""
    kind, _, arg = rule.partition(":")
    if kind == "code":
        if arg not in code_tables:
            raise KeyError(f"no code table {arg!r} in the profile")
        return check_code(value, arg, code_tables[arg])
    try:
        checker = _SIMPLE[rule]
    except KeyError:
        raise KeyError(f"unknown value rule {rule!r}") from None
    return checker(value)


def check_coding(coding: Coding | str, raw: bytes, length: int) -> Msg | None:
    """Whether raw bytes are a valid instance of a coding and length (None) or why not."""
    coding = Coding(coding)
    if len(raw) != length:
        return msg("coding.length", length=len(raw), expected=length)
    if coding is Coding.CN:
        nibbles = raw.hex().upper()
        digits, _, padding = nibbles.partition("F")
        bad = next((i for i, c in enumerate(digits) if not c.isdigit()), None)
        if bad is not None:
            return msg("coding.cn_nibble", value=nibbles, n=bad + 1, nibble=digits[bad])
        if padding.strip("F"):
            return msg("coding.cn_after_f", value=nibbles)
        return None
    if coding is Coding.AN:
        text, nul, padding = raw.partition(b"\x00")
        if padding.strip(b"\x00"):
            return msg("coding.an_after_00", value=raw.hex().upper())
        try:
            text.decode("gbk")
        except UnicodeDecodeError as exc:
            return msg("coding.an_not_gbk_at", value=raw.hex().upper(), at=exc.start + 1,
                       why=exc.reason)
        if not nul and text.endswith(b" "):
            return msg("coding.an_spaces", value=raw.hex().upper())
        return None
    return None
