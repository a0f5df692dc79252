"""Value rules of data items, as named in the profile (`items.N.rules`, `consistency`).

Pure functions over decoded values (strings as the codecs return them): each checker returns
``None`` when the value satisfies the rule and a short English reason when it does not. An
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


def check_date(value: str) -> str | None:
    if not value:
        return None
    if parse_date(value) is None:
        return f"{value!r} is not a real date YYYYMMDD"
    return None


def check_digits(value: str) -> str | None:
    if value and not (value.isascii() and value.isdigit()):
        return f"{value!r} is not made of decimal digits only"
    return None


def check_phone(value: str) -> str | None:
    if not value:
        return None
    if not _PHONE.match(value) or sum(c.isdigit() for c in value) < MIN_PHONE_DIGITS:
        return f"{value!r} is not a telephone number (digits, optional leading + and - groups)"
    return None


def id_check_char(first17: str) -> str:
    """The GB 11643-1999 check character of 17 digits."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError(f"{first17!r} is not 17 digits")
    total = sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def check_id_number(value: str) -> str | None:
    if not value:
        return None
    if len(value) != 18:
        return f"{value!r} has {len(value)} characters, a GB 11643 ID number has 18"
    body, check = value[:17], value[17]
    if not (body.isascii() and body.isdigit()):
        return f"{value!r}: the first 17 characters must be digits"
    if parse_date(body[6:14]) is None:
        return f"{value!r}: characters 7-14 ({body[6:14]}) are not a real birth date"
    expected = id_check_char(body)
    if check != expected:
        return f"{value!r}: check character is {check!r}, GB 11643-1999 gives {expected!r}"
    return None


def check_code(value: str, table_name: str, table: CodeTable) -> str | None:
    if not value:
        return None
    if table.values is not None:
        if value not in table.values:
            return f"{value!r} is not in code table {table_name} ({table.ref})"
        return None
    if table.pattern is not None and not re.search(table.pattern, value):
        return f"{value!r} does not match code table {table_name} ({table.ref})"
    return None


_SIMPLE: dict[str, Callable[[str], str | None]] = {
    "date": check_date,
    "id_number": check_id_number,
    "digits": check_digits,
    "phone": check_phone,
}


def check_rule(rule: str, value: str, code_tables: dict[str, CodeTable]) -> str | None:
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


def check_coding(coding: Coding | str, raw: bytes, length: int) -> str | None:
    """Whether raw bytes are a valid instance of a coding and length (None) or why not."""
    coding = Coding(coding)
    if len(raw) != length:
        return f"the value is {len(raw)} bytes, the item has {length}"
    if coding is Coding.CN:
        nibbles = raw.hex().upper()
        digits, _, padding = nibbles.partition("F")
        bad = next((i for i, c in enumerate(digits) if not c.isdigit()), None)
        if bad is not None:
            return f"CN value {nibbles}: nibble {bad + 1} ({digits[bad]}) is not a digit"
        if padding.strip("F"):
            return f"CN value {nibbles} has digits after its first F (padding is F only)"
        return None
    if coding is Coding.AN:
        text, nul, padding = raw.partition(b"\x00")
        if padding.strip(b"\x00"):
            return f"AN value {raw.hex().upper()} has bytes other than 00 after its first 00"
        try:
            text.decode("gbk")
        except UnicodeDecodeError as exc:
            return (f"AN value {raw.hex().upper()} is not GBK text "
                    f"(byte {exc.start + 1}: {exc.reason})")
        if not nul and text.endswith(b" "):
            return (f"AN value {raw.hex().upper()} fills its field and ends in spaces: "
                    "padded with 20 instead of 00")
        return None
    return None
