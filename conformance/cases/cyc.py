"""CYC: cyclic record files (REFERENCE.md §1, §5 UPDATE RECORD; evidence §3.2).

Generated from the model: for every cyclic file, UPDATE RECORD P2 = 03 puts the new record
first and shifts the older ones; after records + 1 appends the oldest is gone; every record
keeps the declared length and holds exactly the bytes appended; a plain UPDATE RECORD P2 = 04
rewrites record n in place. P2 = 03 on a record file that is not cyclic
is refused with 6981.

Appends cannot be undone, so each case that appends re-appends the file's previous records,
oldest first, which leaves the file byte for byte as it was: the cases are non-destructive.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from conformance.apdu import ResponseAPDU, sw_hex
from conformance.cases.common import grant_families, make, read_record, read_records, slug
from conformance.cases.framework import Case, CaseContext
from conformance.iso7816 import RECORD_P1_CYCLIC_NEW, RECORD_P2_BY_NUMBER, RECORD_P2_CYCLIC_NEW
from conformance.messages import msg
from conformance.model import codecs
from conformance.model.codecs import Coding
from conformance.model.profile import CardProfile
from conformance.model.schema import LayoutField, Structure
from conformance.model.tree import df_of

CLAUSE = "REFERENCE.md §1 (DF02/EF07, EF08), §5 UPDATE RECORD; WS/T 543 (evidence §3.2)"


NONCYCLIC_CHOICE = (
    "REFERENCE.md §5 names no status word for UPDATE RECORD P2 = 03 on a file that is not "
    'cyclic. P2 = 03 is a valid P2 of UPDATE RECORD ("P2 = 03 on a cyclic file writes a new '
    'record 1"), so the P1/P2 check (<sw:wrong_p1p2>) cannot reject it before the file is '
    "known; the file-structure check comes next in the §5 order, before security, so this "
    "case expects "
    "<sw:incompatible_file_structure> (command incompatible with file structure); since the "
    "text names none, <sw:wrong_p1p2> and <sw:security_not_satisfied> are accepted too and "
    "recorded as an observation (profile situations.cyclic_append_on_noncyclic)."
)
REWRITE_CHOICE = (
    "The evidence (§3.2) shows cyclic files written only with P2 = 03; that a plain UPDATE "
    "RECORD P2 = 04 rewrites record n of a cyclic file in place is REFERENCE.md §5 [choice]."
)


# --------------------------------------------------------------------------- helpers


def _read_before(ctx: CaseContext, path: str, count: int) -> list[bytes]:
    with ctx.precondition(msg("what.cyc.read_the_current_records_of", path=path)):
        return read_records(ctx, path, count)


def _sample(profile: CardProfile, field: LayoutField, seed: int) -> str:
    """A distinct, valid value of a layout field for test record ``seed``."""
    coding = Coding(field.coding)
    if coding is Coding.CN:
        rules = profile.item(field.item).rules if field.item is not None else []
        if "date" in rules and field.length == 4:
            return f"20{seed % 100:02d}{seed % 12 + 1:02d}{seed % 28 + 1:02d}"
        return (str(seed) * (2 * field.length))[: 2 * field.length]
    if coding is Coding.AN:
        for text in (f"测试{seed}号", f"T{seed}", str(seed % 10)):
            if len(text.encode("gbk")) <= field.length:
                return text
        return ""
    return bytes((seed * 37 + i) & 0xFF for i in range(field.length)).hex().upper()


def _record(profile: CardProfile, path: str, seed: int) -> bytes:
    """A test record of a cyclic file built from its layout: valid values, one per field."""
    ef = profile.file(path)
    raw = bytearray()
    for field in sorted(profile.layout(ef.layout or ""), key=lambda f: f.offset):
        raw += codecs.encode(Coding(field.coding), _sample(profile, field, seed), field.length)
    return bytes(raw)


def _describe(raw: bytes) -> str:
    return raw.hex().upper() if len(raw) <= 24 else f"{raw[:24].hex().upper()}… ({len(raw)} B)"


def _append(ctx: CaseContext, record: bytes) -> ResponseAPDU:
    return ctx.send(ctx.apdu("update_record", RECORD_P1_CYCLIC_NEW, RECORD_P2_CYCLIC_NEW, record))


@contextlib.contextmanager
def _appended(ctx: CaseContext, path: str, before: list[bytes], new: list[bytes]) -> Iterator[None]:
    """Append `new` (each answered 9000, or FAIL), run the block, then put `before` back."""
    appended = False

    def undo() -> None:
        if appended:
            _restore_by_appending(ctx, path, before)

    with ctx.restoring(path, undo):
        for i, raw in enumerate(new, start=1):
            response = _append(ctx, raw)
            appended = appended or response.sw == ctx.sw("ok")
            ctx.expect_sw(response, "ok", what=msg("what.cyc.update_record_p2_03_append",
                                                   i=i, path=path))
        yield


def _restore_by_appending(ctx: CaseContext, path: str, before: list[bytes]) -> None:
    """Re-append the previous records oldest first, then check the file is as it was."""
    for n in range(len(before), 0, -1):
        ctx.expect_sw(
            _append(ctx, before[n - 1]),
            "ok",
            what=msg("what.cyc.re_appending_previous_record_of", n=n, path=path),
        )
    after = read_records(ctx, path, len(before))
    ctx.check(after == before, msg("state.not_restored_appending", path=path))


def _compare(
    ctx: CaseContext, path: str, after: list[bytes], expected: list[tuple[bytes, str]]
) -> None:
    """FAIL at the first record that is not the expected one (named by where it came from)."""
    for n, (raw, (want, label)) in enumerate(zip(after, expected, strict=True), start=1):
        ctx.check(
            raw == want,
            msg("state.record_is", path=path, n=n, got=_describe(raw), label=label,
                expected=_describe(want)),
            expected=_describe(want), measured=_describe(raw),
        )


# --------------------------------------------------------------------------- cases


def _cyclic_cases(profile: CardProfile, path: str, out: list[Case]) -> None:
    ef = profile.file(path)
    count = ef.records or 0
    length = ef.record_length or 0
    sid = f"CYC-{slug(path)}"
    rights = [ef.access.read, ef.access.update]
    pre = (
        f"card reset; {ef.access.read} and {ef.access.update} granted in "
        f"{df_of(path)}; the file's records are read first and re-appended "
        "oldest first at the end"
    )

    @make(
        out,
        f"{sid}-001",
        "CYC",
        f"{path} 循环写入：最新记录为第 1 条",
        f"{path}: a cyclic append becomes record 1, older records shift",
        CLAUSE,
        f"UPDATE RECORD <cmd:update_record> 00 03 with {ef.access.update} writes a new record 1 "
        "and shifts "
        f"the older records down; every record stays {length} bytes and holds exactly the "
        "bytes appended (values valid for the file's layout) or shifted.",
        purpose_zh=f"以 {ef.access.update} 执行 UPDATE RECORD <cmd:update_record> 00 03 写入"
                   f"新的记录 1，原有记录依次后移；每条记录保持 {length} 字节，内容恰为追加（符合"
                   "文件布局的取值）或后移的字节。",
        preconditions=pre,
        expected_sw=("ok",),
        severity="critical",
    )
    def newest_first(ctx: CaseContext, path: str = path) -> None:
        n = ctx.profile.record_count(path)
        grant_families(ctx, path, rights)
        before = _read_before(ctx, path, n)
        new = [_record(ctx.profile, path, seed) for seed in (1, 2)[: min(2, n)]]
        with _appended(ctx, path, before, new):
            after = read_records(ctx, path, n)  # each of the declared length
            expected = [(raw, msg("label.append", i=i)) for i, raw in enumerate(new, start=1)][::-1]
            expected += [
                (raw, f"previous record {k}")
                for k, raw in enumerate(before[: n - len(new)], start=1)
            ]
            _compare(ctx, path, after, expected)

    @make(
        out,
        f"{sid}-002",
        "CYC",
        f"{path} 循环写入 {count + 1} 次后最早记录被覆盖",
        f"{path}: after {count + 1} appends the oldest record is dropped",
        CLAUSE,
        f"{count + 1} appends to a {count}-record cyclic file leave the last {count} appended "
        "records, newest first; the first appended record is gone.",
        purpose_zh=f"对 {count} 条记录的循环文件追加 {count + 1} 次后，保留最后追加的 {count} 条记"
                   "录，最新的在前；第一次追"
                   "加的记录被覆盖。",
        preconditions=pre,
        expected_sw=("ok",),
        severity="critical",
    )
    def oldest_dropped(ctx: CaseContext, path: str = path) -> None:
        n = ctx.profile.record_count(path)
        grant_families(ctx, path, rights)
        before = _read_before(ctx, path, n)
        new = [_record(ctx.profile, path, seed) for seed in range(11, 11 + n + 1)]
        with _appended(ctx, path, before, new):
            after = read_records(ctx, path, n)
            expected = [(new[i - 1], msg("label.append", i=i)) for i in range(n + 1, 1, -1)]
            _compare(ctx, path, after, expected)
            ctx.check(new[0] not in after,
                      msg("state.oldest_kept", path=path, count=n + 1),
                      expected="overwritten", measured="still held")

    @make(
        out,
        f"{sid}-003",
        "CYC",
        f"{path} 按记录号改写（P2=04）",
        f"{path}: UPDATE RECORD P2=04 rewrites record n in place",
        CLAUSE,
        f"A plain UPDATE RECORD <cmd:update_record> n 04 with {ef.access.update} rewrites record n "
        "of the "
        "cyclic file in place, without shifting the other records.",
        purpose_zh=f"以 {ef.access.update} 执行明文 UPDATE RECORD <cmd:update_record> n 04 原"
                   "地改写循环文件的记录 n，其他记录不移动。",
        preconditions=(
            f"card reset; {ef.access.read} and {ef.access.update} granted; every "
            "record is written back afterwards"
        ),
        expected_sw=("ok",),
        reference_choice=REWRITE_CHOICE,
    )
    def rewrite(ctx: CaseContext, path: str = path) -> None:
        n = ctx.profile.record_count(path)
        grant_families(ctx, path, rights)
        before = _read_before(ctx, path, n)
        new = [_record(ctx.profile, path, seed) for seed in range(31, 31 + n)]
        written = False

        def undo() -> None:
            if not written:
                return
            for k, raw in enumerate(before, start=1):
                response = ctx.send(ctx.apdu("update_record", k, RECORD_P2_BY_NUMBER, raw))
                ctx.expect_sw(response, "ok", what=msg("what.cyc.rewriting_record_of_restoring",
                                                       k=k, path=path))
            ctx.check(read_records(ctx, path, n) == before, msg("state.not_restored", path=path))

        with ctx.restoring(path, undo):
            for k, raw in enumerate(new, start=1):
                response = ctx.send(ctx.apdu("update_record", k, RECORD_P2_BY_NUMBER, raw))
                written = written or response.sw == ctx.sw("ok")
                ctx.expect_sw(response, "ok", what=msg("what.cyc.update_record_04_on",
                                                       record=f"{k:02X}", path=path))
            after = read_records(ctx, path, n)
            _compare(
                ctx,
                path,
                after,
                [(raw, f"the record written to {k}") for k, raw in enumerate(new, start=1)],
            )


def _noncyclic_targets(profile: CardProfile) -> list[str]:
    """One record file per non-cyclic record structure, preferring the DFs of cyclic files."""
    cyclic_dfs = {df_of(p) for p, ef in profile.files.items() if ef.structure is Structure.CYCLIC}
    targets = []
    for structure in (Structure.TLV_RECORDS, Structure.LINEAR_FIXED):
        paths = [p for p, ef in profile.files.items() if ef.structure is structure]
        if paths:
            near = [p for p in paths if df_of(p) in cyclic_dfs]
            targets.append((near or paths)[0])
    return targets


def _noncyclic_case(profile: CardProfile, path: str, out: list[Case]) -> None:
    ef = profile.file(path)
    writer = ef.access.update or ef.access.mark
    rights = [ef.access.read, writer]

    @make(
        out,
        f"CYC-NONCYCLIC-{slug(path)}-001",
        "CYC",
        f"对非循环文件 {path} 的 P2=03 更新被拒绝",
        f"UPDATE RECORD P2=03 on the non-cyclic file {path} is refused",
        "REFERENCE.md §5 UPDATE RECORD, check order (<sw:incompatible_file_structure>); WS/T 543 "
        "(evidence §3.2)",
        f"UPDATE RECORD <cmd:update_record> 00 03 (new cyclic record) on {path} ({ef.structure}) "
        "answers "
        "<sw:incompatible_file_structure> even with "
        f"{', '.join(r for r in rights if r not in (None, 'free'))} granted, "
        "and record 1 is unchanged.",
        purpose_zh=f"对 {path}（{ef.structure}）执行 UPDATE RECORD <cmd:update_record> 00 03"
                   "（新循环记录），即使已获 "
                   f"{', '.join(r for r in rights if r not in (None, 'free'))}"
                   " 也应答 <sw:incompatible_file_structure>，记录 1 不变。",
        preconditions=f"card reset; the read and write rights of {path} granted",
        expected_sw=("incompatible_file_structure",),
        reference_choice=NONCYCLIC_CHOICE,
    )
    def refused(ctx: CaseContext, path: str = path) -> None:
        grant_families(ctx, path, rights)
        with ctx.precondition(msg("what.cmd.read_record_1_of", path=path)):
            first = ctx.expect_sw(read_record(ctx, 1), "ok", what=msg("what.cmd.read_record_1_of",
                                                                      path=path)).data
        response = _append(ctx, first)  # record 1's own bytes: harmless if wrongly accepted
        structure = ctx.profile.file(path).structure
        ctx.expect_situation(
            response,
            "cyclic_append_on_noncyclic",
            choice="status_words",
            what=msg("what.cyc.update_record_00_03_on",
                     command=ctx.profile.command_text("update_record"), path=path,
                     structure=structure),
        )
        again = ctx.expect_sw(read_record(ctx, 1), "ok", what=msg("what.cmd.read_record_1_of",
                                                                  path=path)).data
        ctx.check(
            again == first,
            msg("state.changed_after", path=path, n=1, before=_describe(first),
                after=_describe(again), sw=sw_hex(response.sw)),
            expected=_describe(first), measured=_describe(again),
        )


def cases(profile: CardProfile) -> list[Case]:
    out: list[Case] = []
    for path, ef in profile.files.items():
        if ef.structure is Structure.CYCLIC:
            _cyclic_cases(profile, path, out)
    for path in _noncyclic_targets(profile):
        _noncyclic_case(profile, path, out)
    return out
