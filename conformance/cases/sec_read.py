"""SEC-RD: read rights, generated for every EF of the profile (REFERENCE.md §1, §3).

For each EF: without its read right READ RECORD / READ BINARY is refused with 6982 (a file
whose read right is ``free`` reads without any authentication); the read right of another
DF does not open it (rights belong to the DF they were granted in and a DF change clears
them); the read key of the file's own DF opens it; and no update, mark or erase key grants
reading ("an update right does not grant reading", §3).
"""

from __future__ import annotations

from collections.abc import Callable

from conformance.apdu import sw_hex
from conformance.cases.common import make, read_records, slug, sw_choice
from conformance.cases.framework import Case, CaseContext
from conformance.cases.sec_kit import (
    CLAUSE_READ,
    CRYPTO_CHOICE,
    GROUP,
    Sec,
    choices,
)
from conformance.messages import Msg, msg
from conformance.model.profile import CardProfile
from conformance.model.schema import Structure
from conformance.model.tree import RIGHTS, df_of, read_key

Body = Callable[[CaseContext], None]


def _expected_length(profile: CardProfile, path: str) -> int:
    ef = profile.file(path)
    if ef.structure is Structure.TRANSPARENT:
        return min(profile.spec.security.max_short_le, ef.size or 0)
    return profile.record_length(path, 1)


def _read_refused(path: str, setup: Callable[[Sec], None], why: Msg) -> Body:
    """Set up a state (rights of other keys, or none), select the EF, read: 6982."""

    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        setup(sec)
        sec.go(path)
        sec.expect_refused(sec.read_first(path), msg("what.sec_read.read", path=path, why=why))

    return body


def _free_read(path: str) -> Body:
    """A file whose read right is free: every record reads with no authentication at all."""

    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        sec.go(path)
        read_records(ctx, path, own=True, note=msg("note.no_rights"))

    return body


def _free_transparent(path: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        sec.go(path)
        sec.expect_ok(sec.read_binary(), msg("what.sec_read.read_binary_of_no_rights", path=path))

    return body


def _read_with_own_key(path: str, family: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        sec.grant(family)
        sec.go(path)
        response = sec.expect_ok(sec.read_first(path), msg("what.sec_read.read_after",
                                                           path=path, family=family))
        expected = _expected_length(ctx.profile, path)
        ctx.check(len(response.data) == expected,
                  msg("len.read", path=path, length=len(response.data), expected=expected),
                  expected=f"{expected} bytes", measured=f"{len(response.data)} bytes")

    return body


def _grant_all(*families: str) -> Callable[[Sec], None]:
    def setup(sec: Sec) -> None:
        for family in families:
            sec.grant(family)

    return setup


def _nothing(sec: Sec) -> None:
    return None


def cases(profile: CardProfile) -> list[Case]:
    out: list[Case] = []
    refused = sw_hex(profile.sw("security_not_satisfied"))
    ok = sw_hex(profile.sw("ok"))
    for path, ef in profile.files.items():
        s = slug(path)
        df = df_of(path)
        own = ef.access.read
        structure = "READ BINARY" if ef.structure is Structure.TRANSPARENT else "READ RECORD"
        # 001: no right at all
        if own == "free":
            body = (_free_transparent(path) if ef.structure is Structure.TRANSPARENT
                    else _free_read(path))
            make(out, f"SEC-RD-{s}-001", GROUP,
                 f"{path} 读权限为自由：无需认证即可读取",
                 f"{path} (read right free) reads without authentication",
                 CLAUSE_READ,
                 f"Every record of {path} reads with <sw:ok> and its declared length while no key "
                 "has been authenticated, as its read right is free.",
                 purpose_zh=f"未认证任何密钥时，{path} 的每条记录以 <sw:ok> 和规定长度读出，因其读"
                            "权限为自由。",
                 expected_sw=("ok",), severity="critical",
                 preconditions="card reset; no rights granted",
                 reference_choice="",
            )(body)
            continue
        make(out, f"SEC-RD-{s}-001", GROUP,
             f"未认证读取 {path} 被拒绝",
             f"Reading {path} without its read right is refused",
             CLAUSE_READ,
             f"{structure} of {path} with no key authenticated answers {refused}: its read "
             f"right is {own}.",
             purpose_zh=f"未认证任何密钥时 {structure} {path} 应答 {refused}：其读权限为 {own}。",
             expected_sw=("security_not_satisfied",), severity="blocker",
             reference_choice=sw_choice("security_not_satisfied"),
        )(_read_refused(path, _nothing, msg("why.no_rights")))
        # 002: the read key of a DF above or below does not open it
        others = [d for d in profile.dfs if d != df
                  and (profile.df(d).parent == df or profile.df(df).parent == d)]
        other_rk = next((read_key(profile, d) for d in others if read_key(profile, d)), None)
        if other_rk is not None:
            make(out, f"SEC-RD-{s}-002", GROUP,
                 f"{other_rk} 不能打开 {path} 的读权限",
                 f"The read right of {other_rk} (another DF) does not open {path}",
                 CLAUSE_READ,
                 f"After {other_rk} is granted in {profile.key(other_rk).df}, selecting {path} "
                 f"and reading it answers {refused}: rights belong to the DF they were "
                 "granted in.",
                 purpose_zh=f"在 {profile.key(other_rk).df} 中获得 {other_rk} 后，选择并读取 {path}"
                            f" 应答 {refused}：权限属于获得它的 DF。",
                 expected_sw=("security_not_satisfied",), severity="blocker",
                 preconditions=f"{other_rk} authenticated in {profile.key(other_rk).df}",
                 reference_choice=choices(sw_choice("security_not_satisfied"), CRYPTO_CHOICE),
            )(_read_refused(path, _grant_all(other_rk),
                             msg("why.only_granted", family=other_rk)))
        # 003: the file's own read key opens it
        make(out, f"SEC-RD-{s}-003", GROUP,
             f"{own} 认证后可读取 {path}",
             f"After {own}, {path} reads",
             CLAUSE_READ,
             f"A correct EXTERNAL AUTHENTICATE with {own} grants the read right of {path}: "
             f"{structure} answers {ok} with the declared length.",
             purpose_zh=f"以 {own} 正确外部认证后获得 {path} 的读权限：{structure} 以 {ok} 返回规"
                        "定长度。",
             expected_sw=("ok",), severity="critical",
             preconditions=f"{own} authenticated in {df}",
             reference_choice=CRYPTO_CHOICE,
        )(_read_with_own_key(path, own))
        # 004: the read key of a sibling DF (same KID in the profile) does not open it
        parent = profile.df(df).parent
        siblings = [d for d, spec in profile.dfs.items() if spec.parent == parent and d != df]
        sibling_rk = next((read_key(profile, d) for d in siblings if read_key(profile, d)), None)
        if parent in profile.dfs and sibling_rk is not None:
            make(out, f"SEC-RD-{s}-004", GROUP,
                 f"同级 DF 的 {sibling_rk} 不能打开 {path} 的读权限",
                 f"The read right of sibling DF key {sibling_rk} does not open {path}",
                 CLAUSE_READ,
                 f"After {sibling_rk} (KID {profile.key(sibling_rk).kid:02X}, as the "
                 f"file's own key) is granted in {profile.key(sibling_rk).df}, selecting "
                 f"{path} and reading it answers {refused}.",
                 purpose_zh=f"在 {profile.key(sibling_rk).df} 中获得 {sibling_rk}（KID "
                            f"{profile.key(sibling_rk).kid:02X}"
                            f"，与该文件自身密钥相同）后，选择并读取 {path} 应答 {refused}。",
                 expected_sw=("security_not_satisfied",), severity="blocker",
                 preconditions=f"{sibling_rk} authenticated in {profile.key(sibling_rk).df}",
                 reference_choice=choices(sw_choice("security_not_satisfied"), CRYPTO_CHOICE),
            )(_read_refused(path, _grant_all(sibling_rk),
                             msg("why.only_granted", family=sibling_rk)))
        # 005…: update, mark and erase keys of the file do not grant reading
        non_read = list(dict.fromkeys(
            getattr(ef.access, r) for r in RIGHTS[1:] if getattr(ef.access, r) is not None
        ))
        for number, family in enumerate(non_read, start=5):
            make(out, f"SEC-RD-{s}-{number:03d}", GROUP,
                 f"{family} 不授予 {path} 的读权限",
                 f"{family} (an update right) does not grant reading {path}",
                 CLAUSE_READ,
                 f"With only {family} granted in {df}, {structure} of {path} answers "
                 f"{refused}: an update right does not grant reading (§3).",
                 purpose_zh=f"在 {df} 中仅获 {family} 时，{structure} {path} 应答 {refused}：更新权"
                            "限不授予读权限（§3）。",
                 expected_sw=("security_not_satisfied",), severity="blocker",
                 preconditions=f"{family} authenticated in {df}",
                 reference_choice=choices(sw_choice("security_not_satisfied"), CRYPTO_CHOICE),
            )(_read_refused(path, _grant_all(family), msg("why.only_granted", family=family)))
    return out
