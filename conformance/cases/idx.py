"""IDX: index files (REFERENCE.md §1 DF03, §5 mark/erase; evidence §2.4, §3.3).

Generated from the model for every index file (a linear fixed file with mark and erase keys):
for each record, MARK (84 D2 n 04 [00]) with the mark key writes the "used" flag and ERASE
(84 0C n 04 [00]) with the erase key writes the "free" flag, in both forms; and per file the
refusals: a data field (6700), P2 ≠ 04 (6A86), a record out of range (6A83), the wrong key
(6982), a plain UPDATE RECORD (6982). The flag values are the first two values of the flag
item's code table (used, free). Every case puts back the flags it found.
"""

from __future__ import annotations

from conformance.apdu import CommandAPDU, ResponseAPDU
from conformance.cases.common import grant_families, make, read_records, slug, sw_choice
from conformance.cases.framework import Case, CaseContext
from conformance.iso7816 import LE_WHOLE, RECORD_P2_BY_NUMBER
from conformance.messages import Msg, msg
from conformance.model.profile import CardProfile
from conformance.model.tree import df_of, index_files, index_flags

CLAUSE = "REFERENCE.md §1 (DF03/EF05, EF06), §5 mark/erase; WS/T 543 (evidence §2.4, §3.3)"

WRONG_P2 = (0x00, 0x03, 0x05)

FORMS_CHOICE = (
    "REFERENCE.md §5 accepts both <cmd:mark_record> n 04 and <cmd:mark_record> n 04 00; this case "
    "reads the trailing "
    "00 as Le = 00 (ISO/IEC 7816-3 case 2); the evidence (§4.1) shows only the form with 00."
)


# --------------------------------------------------------------------------- helpers


def _start(ctx: CaseContext, path: str, families: list[str | None]) -> list[bytes]:
    """Grant the read right and ``families``, select the file, read its flags (preconditions)."""
    grant_families(ctx, path, [ctx.profile.file(path).access.read, *families])
    with ctx.precondition(msg("what.idx.read_the_flags_of", path=path)):
        return read_records(ctx, path)


def _command(
    ctx: CaseContext,
    name: str,
    n: int,
    p2: int = RECORD_P2_BY_NUMBER,
    *,
    le: int | None = None,
    data: bytes = b"",
) -> tuple[CommandAPDU, ResponseAPDU]:
    command = ctx.apdu(name, n, p2, data, le)
    return command, ctx.send(command)


def _restore(ctx: CaseContext, path: str, original: list[bytes]) -> None:
    """Mark or erase the records whose flag changed, authenticating the key it needs."""
    ef = ctx.profile.file(path)
    used, free = index_flags(ctx.profile, path)
    current = read_records(ctx, path)
    for n, (now, was) in enumerate(zip(current, original, strict=True), start=1):
        if now == was:
            continue
        if was not in (used, free):
            ctx.note(f"{path} record {n} held {was.hex().upper()}: it cannot be written back")
            continue
        name, family = (
            ("mark_record", ef.access.mark) if was == used else ("erase_record", ef.access.erase)
        )
        if family not in ctx.session.granted:
            grant_families(ctx, path, [family])
        _, response = _command(ctx, name, n, le=LE_WHOLE)
        ctx.expect_sw(response, "ok", what=msg("what.idx.restoring_record_of", n=n, path=path))
    ctx.check(read_records(ctx, path) == original, msg("state.flags_not_restored", path=path))


def _unchanged(ctx: CaseContext, path: str, original: list[bytes], after: Msg) -> None:
    now = read_records(ctx, path)
    for n, (a, b) in enumerate(zip(now, original, strict=True), start=1):
        ctx.check(
            a == b,
            msg("state.record_changed", path=path, n=n, before=b.hex().upper(),
                after=a.hex().upper(), by=after),
            expected=b.hex().upper(), measured=a.hex().upper(),
        )


# --------------------------------------------------------------------------- cases


def _record_case(profile: CardProfile, path: str, n: int, out: list[Case]) -> None:
    ef = profile.file(path)
    used, free = index_flags(profile, path)

    @make(
        out,
        f"IDX-{slug(path)}-R{n}-001",
        "IDX",
        f"{path} 第 {n} 条索引标记与擦除",
        f"{path} record {n}: mark sets {used.hex().upper()}, erase sets {free.hex().upper()}",
        CLAUSE,
        f"<cmd:mark_record> {n:02X} 04 with {ef.access.mark} sets record {n} to "
        f"{used.hex().upper()} and "
        f"<cmd:erase_record> {n:02X} 04 with {ef.access.erase} sets it back to "
        f"{free.hex().upper()}, in "
        "both forms (with and without the trailing 00); the other records do not change.",
        purpose_zh=f"以 {ef.access.mark} 执行 <cmd:mark_record> {n:02X} 04 把记录 {n} 置为 "
                   f"{used.hex().upper()}"
                   f"，以 {ef.access.erase} 执行 <cmd:erase_record> {n:02X} 04 把它恢复为 "
                   f"{free.hex().upper()}"
                   "，两种形式（带与不带末尾 00）皆然；其他记录不变。",
        preconditions=(
            f"card reset; {ef.access.read}, {ef.access.mark} and {ef.access.erase} "
            f"granted in {df_of(path)}; the flags are put back afterwards"
        ),
        expected_sw=("ok",),
        severity="critical",
        reference_choice=FORMS_CHOICE,
    )
    def mark_erase(ctx: CaseContext, path: str = path, n: int = n) -> None:
        acc = ctx.profile.file(path).access
        original = _start(ctx, path, [acc.mark, acc.erase])
        with ctx.restoring(path, lambda: _restore(ctx, path, original)):
            for le in (None, LE_WHOLE):
                for name, flag in (("mark_record", used), ("erase_record", free)):
                    command, response = _command(ctx, name, n, le=le)
                    ctx.expect_sw(response, "ok", what=command.hex())
                    now = read_records(ctx, path)
                    ctx.check(
                        now[n - 1] == flag,
                        msg("state.flag_after", command=command.hex(), n=n, path=path,
                            got=now[n - 1].hex().upper(), expected=flag.hex().upper()),
                        expected=flag.hex().upper(), measured=now[n - 1].hex().upper(),
                    )
                    others = [
                        k
                        for k in range(1, len(now) + 1)
                        if k != n and now[k - 1] != original[k - 1]
                    ]
                    ctx.check(
                        not others,
                        msg("state.others_changed", command=command.hex(), records=others,
                            path=path),
                        expected="—", measured=f"{others}",
                    )


def _file_cases(profile: CardProfile, path: str, out: list[Case]) -> None:
    ef = profile.file(path)
    count = ef.records or 0
    used, free = index_flags(profile, path)
    sid = f"IDX-{slug(path)}"
    mark, erase, read = ef.access.mark, ef.access.erase, ef.access.read
    both = (
        f"card reset; {read}, {mark} and {erase} granted in {df_of(path)}; flags put back "
        "afterwards"
    )

    @make(
        out,
        f"{sid}-001",
        "IDX",
        f"{path} 带数据域的标记/擦除返回 <sw:wrong_length>",
        f"{path}: mark/erase with a data field answer <sw:wrong_length>",
        CLAUSE + " (<sw:wrong_length>)",
        "<cmd:mark_record> 01 04 01 00 and <cmd:erase_record> 01 04 01 00 (a one-byte data field) "
        "answer <sw:wrong_length> with "
        "both keys granted, and no flag changes.",
        purpose_zh="<cmd:mark_record> 01 04 01 00 与 <cmd:erase_record> 01 04 01 00（1 字"
                   "节数据域）在两个密钥均已获得时应答 <sw:wrong_length>，标志不变。",
        preconditions=both,
        expected_sw=("wrong_length",),
        reference_choice=sw_choice("wrong_length"),
    )
    def data_field(ctx: CaseContext, path: str = path) -> None:
        original = _start(ctx, path, [mark, erase])
        with ctx.restoring(path, lambda: _restore(ctx, path, original)):
            for name in ("mark_record", "erase_record"):
                command, response = _command(ctx, name, 1, data=b"\x00")
                ctx.expect_sw(response, "wrong_length", what=command.hex())
            _unchanged(ctx, path, original, msg("after.data_field"))

    @make(
        out,
        f"{sid}-002",
        "IDX",
        f"{path} 标记/擦除 P2≠04 返回 <sw:wrong_p1p2>",
        f"{path}: mark/erase with P2 other than 04 answer <sw:wrong_p1p2>",
        CLAUSE + " (<sw:wrong_p1p2>)",
        "Mark and erase with P2 = "
        + ", ".join(f"{p:02X}" for p in WRONG_P2)
        + " answer <sw:wrong_p1p2> with both keys granted, and no flag changes.",
        purpose_zh="P2 = " + ", ".join(f"{p:02X}" for p in WRONG_P2)
        + " 的标记与擦除在两个密钥均已获得时应答 <sw:wrong_p1p2>，标志不变。",
        preconditions=both,
        expected_sw=("wrong_p1p2",),
        reference_choice=sw_choice("wrong_p1p2"),
    )
    def wrong_p2(ctx: CaseContext, path: str = path) -> None:
        original = _start(ctx, path, [mark, erase])
        with ctx.restoring(path, lambda: _restore(ctx, path, original)):
            for p2 in WRONG_P2:
                for name in ("mark_record", "erase_record"):
                    command, response = _command(ctx, name, 1, p2, le=LE_WHOLE)
                    ctx.expect_sw(response, "wrong_p1p2", what=command.hex())
            _unchanged(ctx, path, original, msg("after.wrong_p2"))

    @make(
        out,
        f"{sid}-003",
        "IDX",
        f"{path} 标记/擦除记录 0 与 {count + 1} 返回 <sw:record_not_found>",
        f"{path}: mark/erase of record 0 and {count + 1} answer <sw:record_not_found>",
        CLAUSE + " (<sw:record_not_found>)",
        f"Mark and erase of record 0 and of record {count + 1} (the file has {count}) answer "
        "<sw:record_not_found> with both keys granted.",
        purpose_zh=f"标记与擦除记录 0 和记录 {count + 1}（文件有 {count} 条）在两个密钥均已获得时"
                   "应答 <sw:record_no"
                   "t_found>。",
        preconditions=both,
        expected_sw=("record_not_found",),
        reference_choice=sw_choice("record_not_found"),
    )
    def out_of_range(ctx: CaseContext, path: str = path) -> None:
        original = _start(ctx, path, [mark, erase])
        last = ctx.profile.record_count(path)
        with ctx.restoring(path, lambda: _restore(ctx, path, original)):
            for n in (0, last + 1):
                for name in ("mark_record", "erase_record"):
                    command, response = _command(ctx, name, n, le=LE_WHOLE)
                    ctx.expect_sw(response, "record_not_found", what=command.hex())
            _unchanged(ctx, path, original, msg("after.out_of_range"))

    @make(
        out,
        f"{sid}-004",
        "IDX",
        f"{path} 无 {mark} 不能标记",
        f"{path}: marking needs {mark}",
        CLAUSE + "; REFERENCE.md §3 (<sw:security_not_satisfied>)",
        f"<cmd:mark_record> 01 04 00 answers <sw:security_not_satisfied> with only {read}, and "
        f"still <sw:security_not_satisfied> with {erase} granted "
        "as well; the flag does not change.",
        purpose_zh=f"仅获 {read} 时 <cmd:mark_record> 01 04 00 应答 <sw:security_not_satisfi"
                   f"ed>，再获 {erase} 后仍应答 <sw:security_not_satisfied>；标志不变。",
        preconditions=f"card reset; {read}, then {erase} granted in {df_of(path)}",
        expected_sw=("security_not_satisfied",),
        severity="critical",
        reference_choice=sw_choice("security_not_satisfied"),
    )
    def mark_needs_key(ctx: CaseContext, path: str = path) -> None:
        original = _start(ctx, path, [])
        with ctx.restoring(path, lambda: _restore(ctx, path, original)):
            command, response = _command(ctx, "mark_record", 1, le=LE_WHOLE)
            ctx.expect_sw(response, "security_not_satisfied",
                          what=msg("what.idx.command_with", command=command.hex(), read=read))
            grant_families(ctx, path, [erase])
            command, response = _command(ctx, "mark_record", 1, le=LE_WHOLE)
            ctx.expect_sw(
                response, "security_not_satisfied", what=msg("what.idx.command_with_two",
                                                             command=command.hex(), read=read,
                                                             erase=erase)
            )
            _unchanged(ctx, path, original, msg("after.refused_mark"))

    @make(
        out,
        f"{sid}-005",
        "IDX",
        f"{path} 仅有 {mark} 不能擦除",
        f"{path}: {mark} alone does not erase",
        CLAUSE + "; REFERENCE.md §3 (<sw:security_not_satisfied>)",
        f"With {read} and {mark} granted and record 1 marked, <cmd:erase_record> 01 04 00 answers "
        "<sw:security_not_satisfied> "
        "and record 1 stays marked.",
        purpose_zh=f"已获 {read} 与 {mark} 且记录 1 已标记时，<cmd:erase_record> 01 04 00 应答 <sw"
                   ":s"
                   "ecurity_not_satisfied>，记录 1 保持已标记。",
        preconditions=f"card reset; {read} and {mark} granted; record 1 marked; "
        f"{erase} granted at the end to put the flag back",
        expected_sw=("security_not_satisfied",),
        severity="critical",
        reference_choice=sw_choice("security_not_satisfied"),
    )
    def erase_needs_key(ctx: CaseContext, path: str = path) -> None:
        original = _start(ctx, path, [mark])
        with ctx.restoring(path, lambda: _restore(ctx, path, original)):
            if original[0] != used:
                with ctx.precondition(msg("what.idx.mark_record_1_of", path=path)):
                    command, response = _command(ctx, "mark_record", 1, le=LE_WHOLE)
                    ctx.expect_sw(response, "ok", what=command.hex())
            command, response = _command(ctx, "erase_record", 1, le=LE_WHOLE)
            ctx.expect_sw(response, "security_not_satisfied",
                          what=msg("what.idx.command_with_mark", command=command.hex(), mark=mark))
            now = read_records(ctx, path)[0]
            ctx.check(
                now == used,
                msg("state.after_refused", n=1, path=path, got=now.hex().upper(),
                    operation=msg("op.erase"), expected=used.hex().upper()),
                expected=used.hex().upper(), measured=now.hex().upper(),
            )

    @make(
        out,
        f"{sid}-006",
        "IDX",
        f"{path} 不能用明文 UPDATE RECORD 修改",
        f"{path}: a plain UPDATE RECORD is refused",
        CLAUSE + "; REFERENCE.md §5 UPDATE RECORD (<sw:security_not_satisfied>)",
        "<cmd:update_record> 01 04 with a flag value answers <sw:security_not_satisfied> even with "
        "both index keys granted: index "
        "files change only by mark/erase; the flag does not change.",
        purpose_zh="<cmd:update_record> 01 04 写入标志值，即使两个索引密钥均已获得也应答 <sw:secu"
                   "rity_not_s"
                   "atisfied>：索引文件只能通过标记/擦除改变；标志不变。",
        preconditions=both,
        expected_sw=("security_not_satisfied",),
        reference_choice=sw_choice("security_not_satisfied"),
    )
    def plain_update(ctx: CaseContext, path: str = path) -> None:
        original = _start(ctx, path, [mark, erase])
        flag = used if original[0] != used else free
        with ctx.restoring(path, lambda: _restore(ctx, path, original)):
            command = ctx.apdu("update_record", 1, RECORD_P2_BY_NUMBER, flag)
            response = ctx.send(command)
            ctx.expect_sw(response, "security_not_satisfied", what=command.hex())
            _unchanged(ctx, path, original, msg("after.refused_update"))


def cases(profile: CardProfile) -> list[Case]:
    out: list[Case] = []
    for path in index_files(profile):
        for n in range(1, (profile.file(path).records or 0) + 1):
            _record_case(profile, path, n, out)
        _file_cases(profile, path, out)
    return out
