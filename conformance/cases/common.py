"""Small building blocks shared by the case groups: raw reads with rights, case factories."""

from __future__ import annotations

from collections.abc import Callable

from conformance.apdu import ResponseAPDU
from conformance.cases.framework import Case, CaseContext

P2_RECORD_NUMBER = 0x04
P2_RECORD_ID = 0x00
LE_WHOLE = 256  # Le = 00 on the wire: the whole record / up to 256 bytes


def df_of(path: str) -> str:
    return path.partition("/")[0]


def slug(path: str) -> str:
    """'DF02/EF07' → 'DF02-EF07', for case IDs."""
    return path.replace("/", "-")


def grant(ctx: CaseContext, path: str, right: str = "read") -> None:
    """Authenticate the key the file needs for `right` (a precondition), then select it."""
    grant_families(ctx, path, [getattr(ctx.profile.file(path).access, right)])


def grant_families(ctx: CaseContext, path: str, families: list[str | None]) -> None:
    """Precondition: the rights of these key families in the file's DF, then the file
    selected (None and "free" need nothing; rights already granted are not asked again)."""
    wanted = [f for f in dict.fromkeys(families) if f not in (None, "free")]
    with ctx.precondition(f"rights {', '.join(wanted) or 'none'} for {path}"):
        for family in wanted:
            if family not in ctx.session.granted:
                ctx.session.authenticate(family)
        ctx.session.select(path)


def read_record(
    ctx: CaseContext, n: int, p2: int = P2_RECORD_NUMBER, le: int = LE_WHOLE, *, raw: bool = False
) -> ResponseAPDU:
    """READ RECORD on the current EF, as raw as the case wants it."""
    return ctx.send(ctx.apdu("read_record", n, p2, le=le), raw=raw)


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
