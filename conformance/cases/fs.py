"""FS: the file tree of the model, file by file (REFERENCE.md §1; evidence §2).

Generated from the profile: every DF is selectable; every EF is selectable, has the declared
structure, and the declared record count and lengths or size. The cyclic behaviour of cyclic
files is the CYC group's; that writing one needs its update right is SEC-UPD-*-001 (no case
here sends an append a faulty card might accept, which would drop its oldest record).
"""

from __future__ import annotations

from conformance.cases.common import grant, make, read_binary, read_record, read_records, slug
from conformance.cases.framework import Case, CaseContext
from conformance.iso7816 import LE_WHOLE
from conformance.messages import msg
from conformance.model.profile import CardProfile
from conformance.model.schema import Structure

CLAUSE = "REFERENCE.md §1; WS/T 543.3 (evidence §2.1)"
SW_CHOICE = "The status words expected here are the REFERENCE.md §5 [choice]."


def _df_cases(profile: CardProfile, out: list[Case]) -> None:
    for name in profile.dfs:

        @make(
            out,
            f"FS-{name}-001",
            "FS",
            f"{name} 可选择",
            f"{name} is selectable",
            CLAUSE + "; REFERENCE.md §5 SELECT",
            f"SELECT by FID along the path {' → '.join(profile.select_path(name))} answers "
            "<sw:ok> at every step.",
            purpose_zh=f"沿路径 {' → '.join(profile.select_path(name))} 按 FID 选择，每一步应答 <sw"
                       ":ok>。",
            expected_sw=("ok",),
            severity="blocker",
        )
        def select_df(ctx: CaseContext, name: str = name) -> None:
            with ctx.expecting(msg("what.fs.select_along_the_path_of_2", name=name)):
                ctx.session.select(name, force=True)


def _ef_cases(profile: CardProfile, path: str, out: list[Case]) -> None:
    ef = profile.file(path)
    sid = f"FS-{slug(path)}"

    @make(
        out,
        f"{sid}-001",
        "FS",
        f"{path} 可选择",
        f"{path} is selectable",
        CLAUSE + "; REFERENCE.md §5 SELECT",
        f"SELECT by FID along the path {' → '.join(profile.select_path(path))} answers "
        "<sw:ok> at every step.",
        purpose_zh=f"沿路径 {' → '.join(profile.select_path(path))} 按 FID 选择，每一步应答 <sw:ok>"
                   "。",
        expected_sw=("ok",),
        severity="critical",
    )
    def selectable(ctx: CaseContext, path: str = path) -> None:
        with ctx.expecting(msg("what.fs.select_along_the_path_of", path=path)):
            ctx.session.select(path, force=True)

    if ef.structure is not Structure.TRANSPARENT:
        count = profile.record_count(path)

        @make(
            out,
            f"{sid}-002",
            "FS",
            f"{path} 为记录文件",
            f"{path} is a record file",
            CLAUSE + "; REFERENCE.md §5 (<sw:incompatible_file_structure>)",
            "READ RECORD 1 answers <sw:ok> and READ BINARY answers "
            f"<sw:incompatible_file_structure> ({ef.structure}).",
            purpose_zh="读记录 1 应答 <sw:ok>，读二进制应答 <sw:incompatible_file_structure>（"
                       f"{ef.structure}"
                       "）。",
            expected_sw=("ok", "incompatible_file_structure"),
            reference_choice=SW_CHOICE,
        )
        def record_structure(ctx: CaseContext, path: str = path) -> None:
            grant(ctx, path)
            ctx.expect_sw(read_record(ctx, 1), "ok", what=msg("what.fs.read_record_1"))
            ctx.expect_sw(
                read_binary(ctx, 0),
                "incompatible_file_structure",
                what=msg("what.fs.read_binary_on_a_record"),
            )

        @make(
            out,
            f"{sid}-003",
            "FS",
            f"{path} 记录数与记录长度",
            f"{path} record count and lengths",
            CLAUSE,
            f"Records 1..{count} exist with the declared lengths; record {count + 1} "
            "does not (<sw:record_not_found>).",
            purpose_zh=f"记录 1..{count} 存在且长度为规定值；记录 {count + 1} 不存在（<sw:record_n"
                       "ot_foun"
                       "d>）。",
            expected_sw=("ok", "record_not_found"),
            reference_choice=SW_CHOICE,
            severity="critical",
        )
        def records(ctx: CaseContext, path: str = path, count: int = count) -> None:
            grant(ctx, path)
            read_records(ctx, path, count, own=True)
            ctx.expect_sw(
                read_record(ctx, count + 1),
                "record_not_found",
                what=msg("what.fs.read_record_one_past_the", record=count + 1),
            )

    else:
        size = ef.size or 0

        @make(
            out,
            f"{sid}-002",
            "FS",
            f"{path} 为透明文件",
            f"{path} is transparent",
            CLAUSE + "; REFERENCE.md §5 (<sw:incompatible_file_structure>)",
            "READ BINARY at offset 0 answers <sw:ok> and READ RECORD answers "
            "<sw:incompatible_file_structure>.",
            purpose_zh="在偏移 0 读二进制应答 <sw:ok>，读记录应答 <sw:incompatible_file_structure"
                       ">。",
            expected_sw=("ok", "incompatible_file_structure"),
            reference_choice=SW_CHOICE,
        )
        def transparent(ctx: CaseContext, path: str = path) -> None:
            grant(ctx, path)
            ctx.expect_sw(read_binary(ctx, 0, 16), "ok", what=msg("what.fs.read_binary_at_0"))
            ctx.expect_sw(
                read_record(ctx, 1),
                "incompatible_file_structure",
                what=msg("what.fs.read_record_on_a_transparent"),
            )

        @make(
            out,
            f"{sid}-003",
            "FS",
            f"{path} 文件大小",
            f"{path} size",
            CLAUSE,
            f"The file is exactly {size} bytes: the last byte reads, the next offset answers "
            "<sw:offset_beyond_end>.",
            purpose_zh=f"文件恰为 {size} 字节：最后一个字节可读，下一个偏移应答 <sw:offset_beyond_"
                       "end>。",
            expected_sw=("ok", "offset_beyond_end"),
            reference_choice=SW_CHOICE,
            severity="critical",
        )
        def file_size(ctx: CaseContext, path: str = path, size: int = size) -> None:
            grant(ctx, path)
            last = ctx.expect_sw(
                read_binary(ctx, size - 1, LE_WHOLE),
                "ok",
                what=msg("what.fs.read_binary_of_the_last", offset=size - 1),
            )
            ctx.check(
                len(last.data) == 1,
                msg("len.last_byte", at=size - 1, length=len(last.data)),
                expected="1 byte", measured=f"{len(last.data)} bytes",
            )
            ctx.expect_sw(
                read_binary(ctx, size, LE_WHOLE),
                "offset_beyond_end",
                what=msg("what.fs.read_binary_at_offset_the", size=size),
            )


def cases(profile: CardProfile) -> list[Case]:
    out: list[Case] = []
    _df_cases(profile, out)
    for path in profile.files:
        _ef_cases(profile, path, out)
    return out
