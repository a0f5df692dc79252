"""Small building blocks shared by the case groups: raw reads with rights, case factories."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from conformance.apdu import ResponseAPDU
from conformance.cases.framework import Case, CaseContext
from conformance.iso7816 import LE_WHOLE, RECORD_P2_BY_NUMBER
from conformance.messages import Msg, msg


def sw_choice(*names: str) -> str:
    """The reference_choice sentence for a verdict that rests on §5 status words, named by
    meaning (the catalogue shows the profile's hex)."""
    return (
        f"Expects {', '.join(f'<sw:{n}>' for n in names)}: the evidence shows no "
        "status-word table, so these are the REFERENCE.md §5 [choice]."
    )


def slug(path: str) -> str:
    """'DF02/EF07' → 'DF02-EF07', for case IDs."""
    return path.replace("/", "-")


def plan_parameter(ctx: CaseContext, name: str, default: object = None) -> object:
    """A plan parameter (``ctx.parameters``); missing, when there is no default, is a plan
    error: ValueError, which the runner reports as ERROR (the harness, not the card)."""
    value = ctx.parameters.get(name, default)
    if value is None:
        raise ValueError(f"plan parameter {name} is missing")
    return value


def plan_count(ctx: CaseContext, name: str, default: int | None = None) -> int:
    """A whole-number plan parameter (see plan_parameter)."""
    value = plan_parameter(ctx, name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"plan parameter {name} must be a whole number, not {value!r}")
    return value


def plan_hex_bytes(ctx: CaseContext, name: str) -> list[int]:
    """A plan parameter listing single bytes in hex ("A0", "CA", …) (see plan_hex_strings)."""
    return [int(item, 16) for item in plan_hex_strings(ctx, name, 1)]


def plan_hex_strings(ctx: CaseContext, name: str, size: int) -> list[str]:
    """A plan parameter listing hex strings of ``size`` bytes each ("A0", "DF09", …), quoted
    in the YAML so that none is read as a number (see plan_parameter); upper case."""
    value = plan_parameter(ctx, name)
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"plan parameter {name} must be a list of hex strings, not {value!r}")
    for item in value:
        ok = isinstance(item, str) and len(item) == 2 * size
        if ok:
            try:
                bytes.fromhex(item)
            except ValueError:
                ok = False
        if not ok:
            raise ValueError(
                f"plan parameter {name}: {item!r} is not {size} byte(s) of hex in quotes"
            )
    return [item.upper() for item in value]


def grant(ctx: CaseContext, path: str, right: str = "read") -> None:
    """Authenticate the key the file needs for `right` (a precondition), then select it."""
    grant_families(ctx, path, [getattr(ctx.profile.file(path).access, right)])


def grant_families(ctx: CaseContext, path: str, families: list[str | None]) -> None:
    """Precondition: the rights of these key families in the file's DF, then the file
    selected (None and "free" need nothing; rights already granted are not asked again)."""
    wanted = [f for f in dict.fromkeys(families) if f not in (None, "free")]
    with ctx.precondition(msg("what.common.rights_for",
                              rights=', '.join(wanted) or 'none', path=path)):
        for family in wanted:
            if family not in ctx.session.granted:
                ctx.session.authenticate(family)
        ctx.session.select(path)


def read_record(
    ctx: CaseContext,
    n: int,
    p2: int = RECORD_P2_BY_NUMBER,
    le: int = LE_WHOLE,
    *,
    raw: bool = False,
) -> ResponseAPDU:
    """READ RECORD on the current EF, as raw as the case wants it."""
    return ctx.send(ctx.apdu("read_record", n, p2, le=le), raw=raw)


def read_records(
    ctx: CaseContext, path: str, count: int | None = None, *, own: bool = False,
    note: str | Msg = "",
) -> list[bytes]:
    """Records 1..count (default: all) of the current EF ``path``: FAIL unless each answers
    9000 with the length the profile declares for it.

    A shared step (see ``CaseContext.step``) unless ``own``: the case whose expectation *is*
    that the records read whole (record count and lengths, free reads) passes ``own=True``;
    a case that only needs the bytes to judge something else leaves it a step. ``note`` is
    added to each record's description (e.g. ", no rights").
    """
    last = ctx.profile.record_count(path) if count is None else count
    scope = contextlib.nullcontext() if own else ctx.step(
        msg("act.read_records", last=last, path=path))
    records: list[bytes] = []
    with scope:
        for n in range(1, last + 1):
            what = msg("act.read_record_note" if note else "act.read_record", n=n, path=path,
                       note=note)
            data = ctx.expect_sw(read_record(ctx, n), "ok", what=what).data
            expected = ctx.profile.record_length(path, n)
            ctx.check(len(data) == expected,
                      msg("len.record", what=what, n=n, length=len(data), expected=expected),
                      expected=f"{expected} bytes", measured=f"{len(data)} bytes")
            records.append(data)
    return records


def read_binary(
    ctx: CaseContext, offset: int, le: int = LE_WHOLE, *, raw: bool = False
) -> ResponseAPDU:
    return ctx.send(ctx.apdu("read_binary", offset >> 8, offset & 0xFF, le=le), raw=raw)


def make(
    cases: list[Case],
    id: str,
    group: str,
    title_zh: str,
    title_en: str,
    clause: str,
    purpose: str,
    **meta: object,
) -> Callable[[Callable[[CaseContext], None]], Callable[[CaseContext], None]]:
    """Decorator that appends a Case with this metadata and the decorated body to `cases`."""

    def wrap(body: Callable[[CaseContext], None]) -> Callable[[CaseContext], None]:
        cases.append(
            Case(
                id=id,
                group=group,
                title_zh=title_zh,
                title_en=title_en,
                clause=clause,
                purpose=purpose,
                body=body,
                **meta,
            )
        )  # type: ignore[arg-type]
        return body

    return wrap
