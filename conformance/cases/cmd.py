"""CMD: ISO/IEC 7816-4 command behaviour of the card (REFERENCE.md §5; evidence §4.1-4.2).

Status words, the order in which the checks run, SELECT lookup, READ RECORD / READ BINARY
addressing, GET CHALLENGE and GET RESPONSE. Generated from the profile where the rule is
generic (every instruction, every class, every DF, every file); written by hand where it is
specific (the check order). Commands whose wrong Le must be seen as ``6Cxx`` are sent raw,
so that the bench's T=0 layer does not resend them with the right length.

Commands sent only to provoke an error are shaped so that a card which wrongly accepted them
still could not change anything (no data for VERIFY, no rights for updates, no challenge for
EXTERNAL AUTHENTICATE): a case must leave the card as it found it, even a faulty one.

Plan parameters (``ctx.parameters``, set in profiles/plans/*.yaml; a case whose parameter is
missing or malformed ends in ERROR, a plan mistake, never in a card verdict):
``challenge_samples`` (GET CHALLENGE answers collected, at least 2), ``unknown_classes`` and
``unknown_ins`` (hex bytes tried as classes / instructions the card must not support; values
the profile uses are skipped, and at least one must be left), ``missing_fids`` (FIDs tried as
files the card must not have; FIDs of the profile are skipped).
"""

from __future__ import annotations

from conformance.apdu import CommandAPDU, ResponseAPDU, sw_hex
from conformance.cases.common import (
    grant,
    make,
    plan_count,
    plan_hex_bytes,
    plan_hex_strings,
    read_binary,
    read_record,
    slug,
)
from conformance.cases.framework import Case, CaseContext
from conformance.iso7816 import (
    LE_WHOLE,
    MAX_BINARY_OFFSET,
    MF_FID,
    RECORD_P2_BY_NUMBER,
    SELECT_P1_BY_FID,
    SELECT_P1_BY_NAME,
    SELECT_P2_FCI,
    SELECT_P2_NO_DATA,
)
from conformance.messages import Msg, msg
from conformance.model.profile import CardProfile
from conformance.model.schema import Structure
from conformance.model.tree import (
    MF,
    all_fids,
    df_names,
    df_of,
    fid_of,
    files_of,
    foreign_ef_fids,
    free_read_ef,
    parent_of,
    reachable_fids,
    record_files,
    transparent_files,
)

CLAUSE = "REFERENCE.md §5; WS/T 543.4 (evidence §4.1-4.2)"

T0_BINARY_LE = 0x20  # READ BINARY length CMD-T0-003 asks for


# --------------------------------------------------------------------------- helpers


def short_apdu(cla: int, ins: int, p1: int, p2: int, data: bytes = b"",
               le: int | None = None) -> bytes:
    """A short APDU as bytes (Le 256 is sent as 00)."""
    return CommandAPDU(cla, ins, p1, p2, data, le).to_bytes()


def extended_apdu(cla: int, ins: int, p1: int, p2: int, data: bytes = b"",
                  le: int | None = None) -> bytes:
    """The same command in extended-length encoding (00 ‖ Lc(2) ‖ data ‖ Le(2))."""
    return CommandAPDU(cla, ins, p1, p2, data, le, extended=True).to_bytes()


def send(ctx: CaseContext, apdu: bytes, *, raw: bool = True) -> ResponseAPDU:
    return ctx.send(apdu, raw=raw)


def expect_sw_of(ctx: CaseContext, apdu: bytes, expected: str) -> None:
    """Send ``apdu`` and expect status word ``expected``; on a co-branded card a SELECT by
    name (P1 = 04) selects the other application, so there a file not found is accepted
    beside wrong P1/P2 and recorded (situation select_by_name_co_branded)."""
    what = apdu.hex(" ").upper()
    by_name = (apdu[:2] == bytes(ctx.profile.command("select"))
               and apdu[2] == SELECT_P1_BY_NAME and ctx.product.has("co_branded"))
    if expected == "wrong_p1p2" and by_name:
        ctx.expect_situation(send(ctx, apdu), "select_by_name_co_branded", what=what)
    else:
        ctx.expect_sw(send(ctx, apdu), expected, what=what)


def select_fid(ctx: CaseContext, fid: str, p2: int = SELECT_P2_FCI,
               p1: int = SELECT_P1_BY_FID) -> ResponseAPDU:
    """SELECT by FID through the session, so that it forgets what it believed current."""
    cla, ins = ctx.profile.command("select")
    return ctx.session.transmit(short_apdu(cla, ins, p1, p2, bytes.fromhex(fid)))


def expect_select(ctx: CaseContext, fid: str, what: str | Msg, *names: str,
                  p2: int = SELECT_P2_FCI) -> ResponseAPDU:
    return ctx.expect_sw(select_fid(ctx, fid, p2), *(names or ("ok",)), what=what)


def expect_wrong_le(ctx: CaseContext, response: ResponseAPDU, right: int, what: str | Msg) -> None:
    """6Cxx with xx the right length (00 for 256)."""
    ctx.expect_sw(response, "wrong_le", what=what, choice="wrong_le")
    if not sw_hex(response.sw).startswith(ctx.profile.sw_prefix("wrong_le")):
        return  # a [choice] deviation the plan observes: already recorded
    want = ctx.profile.sw_text(f"wrong_le:{right & 0xFF:02X}")
    ctx.check(response.sw2 == right & 0xFF,
              msg("sw.wrong_length_announced", what=what, sw=sw_hex(response.sw),
                  length=right, expected=want),
              expected=want, measured=sw_hex(response.sw))


def enter(ctx: CaseContext, df: str) -> None:
    """Make `df` current (a precondition). The MF is current after the reset of every case."""
    if df != MF:
        ctx.select(df)


def probe(profile: CardProfile, name: str) -> tuple[int, int, bytes, int | None]:
    """(P1, P2, data, Le) of a harmless instance of command `name`: even a card that ran it
    could change nothing (no data where data would act, no rights, no challenge)."""
    first_df = next(iter(profile.dfs.values())).fid
    challenge = profile.spec.security.challenge_length
    table: dict[str, tuple[int, int, bytes, int | None]] = {
        "select": (SELECT_P1_BY_FID, SELECT_P2_FCI, bytes.fromhex(first_df), None),
        "read_binary": (0x00, 0x00, b"", LE_WHOLE),
        "update_binary": (0x00, 0x00, b"\x00", None),
        "read_record": (0x01, RECORD_P2_BY_NUMBER, b"", LE_WHOLE),
        "update_record": (0x01, RECORD_P2_BY_NUMBER, b"\x00", None),
        "update_record_sm": (0x01, RECORD_P2_BY_NUMBER, bytes(20), None),
        "mark_record": (0x01, RECORD_P2_BY_NUMBER, b"", None),
        "erase_record": (0x01, RECORD_P2_BY_NUMBER, b"", None),
        "get_challenge": (0x00, 0x00, b"", challenge),
        "external_authenticate": (0x00, 0x00, b"", None),
        "get_response": (0x00, 0x00, b"", None),
        "verify_pin": (0x00, 0x00, b"", None),
        "change_pin": (0x01, 0x00, b"", None),
    }
    return table.get(name, (0x00, 0x00, b"", None))


def unknown_classes(ctx: CaseContext) -> list[int]:
    """Plan parameter ``unknown_classes`` without the profile's classes (ValueError, a plan
    error, if none is left)."""
    unknown = [c for c in plan_hex_bytes(ctx, "unknown_classes") if c not in ctx.profile.classes()]
    if not unknown:
        raise ValueError("plan parameter unknown_classes leaves no class the profile does not use")
    return unknown


def unknown_instructions(ctx: CaseContext) -> list[int]:
    """Plan parameter ``unknown_ins`` without the profile's instructions (ValueError, a plan
    error, if none is left)."""
    used = set(ctx.profile.instructions())
    unknown = [i for i in plan_hex_bytes(ctx, "unknown_ins") if i not in used]
    if not unknown:
        raise ValueError("plan parameter unknown_ins leaves no INS the profile does not use")
    return unknown


# --------------------------------------------------------------------------- CLA / INS


def _class_cases(profile: CardProfile, out: list[Case]) -> None:
    known = profile.classes()
    for number, (ins, names) in enumerate(sorted(profile.instructions().items()), start=1):
        own = {profile.spec.commands[n].cla for n in names}
        others = sorted(known - own)
        label_zh = "/".join(profile.command_name(n, "zh") for n in names)
        label_en = "/".join(profile.command_name(n, "en") for n in names)

        @make(
            out, f"CMD-CLA-{number:03d}", "CMD",
            f"INS {ins:02X}（{label_zh} {label_en}）的类别字节检查",
            f"Class byte check for INS {ins:02X} ({label_en})",
            CLAUSE + " (CLA check, <sw:cla_not_supported>)",
            f"INS {ins:02X} sent with an unknown class, or with another of the card's classes "
            f"({', '.join(f'{c:02X}' for c in others) or 'none'}), is refused with "
            "<sw:cla_not_supported>.",
            purpose_zh=f"INS {ins:02X} 以未知类别或卡片的其他类别"
            f"（{', '.join(f'{c:02X}' for c in others) or '无'}）发送时，以 "
            "<sw:cla_not_supported> 拒绝。",
            applicability=profile.commands_feature(names),
            expected_sw=("cla_not_supported",),
            choices=("status_words",), interpretations=("known_classes",),
        )
        def class_check(ctx: CaseContext, ins: int = ins, name: str = names[0],
                        others: list[int] = others) -> None:
            p1, p2, data, le = probe(ctx.profile, name)
            unknown = unknown_classes(ctx)
            for cla in unknown + others:
                ctx.expect_sw(send(ctx, short_apdu(cla, ins, p1, p2, data, le)),
                              "cla_not_supported",
                              what=msg("act.cla_ins", cla=f"{cla:02X}", ins=f"{ins:02X}"))


def _ins_cases(profile: CardProfile, out: list[Case]) -> None:
    by_class: dict[int, list[str]] = {}
    for name, c in profile.spec.commands.items():
        by_class.setdefault(c.cla, []).append(name)
    for number, (cla, names) in enumerate(sorted(by_class.items()), start=1):

        @make(
            out, f"CMD-INS-{number:03d}", "CMD",
            f"类别 {cla:02X} 下不支持的指令",
            f"Unsupported instructions in class {cla:02X}",
            CLAUSE + " (INS check, <sw:ins_not_supported>)",
            f"Instructions the profile does not define, sent with class {cla:02X}, are "
            "refused with <sw:ins_not_supported>.",
            purpose_zh=f"配置未定义的指令以类别 {cla:02X} 发送时，以 <sw:ins_not_supported> 拒绝。",
            applicability=profile.commands_feature(names),
            expected_sw=("ins_not_supported",),
            choices=("status_words",),
        )
        def ins_check(ctx: CaseContext, cla: int = cla) -> None:
            for ins in unknown_instructions(ctx):
                ctx.expect_sw(send(ctx, short_apdu(cla, ins, 0x00, 0x00)),
                              "ins_not_supported",
                              what=msg("act.cla_ins", cla=f"{cla:02X}", ins=f"{ins:02X}"))


# --------------------------------------------------------------------------- P1/P2, Lc, Le


def _p1p2_cases(profile: CardProfile, out: list[Case]) -> None:
    rf = record_files(profile)
    first_free = next((p for p in rf if profile.file(p).access.read == "free"), None)
    first_df = next(iter(profile.dfs))
    challenge = profile.spec.security.challenge_length
    first_kid = next(k.kid for k in profile.keys.values() if k.kid is not None)

    def wrong_p1p2(number: int, name: str, title_zh: str, title_en: str, purpose: str,
                   purpose_zh: str, variants: list[tuple[int, int, bytes, int | None]],
                   setup: str | None = None, notes: tuple[str, ...] = ()) -> None:
        cla, ins = profile.command(name)

        @make(
            out, f"CMD-P12-{number:03d}", "CMD", title_zh, title_en,
            CLAUSE + " (P1/P2 check, <sw:wrong_p1p2>)", purpose, purpose_zh=purpose_zh,
            applicability=profile.commands_feature([name]),
            expected_sw=("wrong_p1p2",),
            choices=("status_words",), interpretations=notes,
        )
        def body(ctx: CaseContext) -> None:
            if setup is not None:
                ctx.select(setup)
            for p1, p2, data, le in variants:
                expect_sw_of(ctx, short_apdu(cla, ins, p1, p2, data, le), "wrong_p1p2")

    df_fid = bytes.fromhex(profile.df(first_df).fid)
    wrong_p1p2(1, "select", "SELECT 的 P1 错误", "SELECT with a wrong P1",
               "SELECT with P1 other than 00 (by name, by path, …) is refused with "
               "<sw:wrong_p1p2>.",
               "P1 不是 00（按名称、按路径……）的 SELECT 以 <sw:wrong_p1p2> 拒绝。",
               [(p1, SELECT_P2_FCI, df_fid, None) for p1 in (0x01, 0x02, 0x04, 0x08, 0x09)],
               notes=("select_by_fid_only", "select_by_name_co_branded"))
    wrong_p1p2(2, "select", "SELECT 的 P2 错误", "SELECT with a wrong P2",
               "SELECT with P2 other than 00 or 0C is refused with <sw:wrong_p1p2>.",
               "P2 不是 00 或 0C 的 SELECT 以 <sw:wrong_p1p2> 拒绝。",
               [(SELECT_P1_BY_FID, p2, df_fid, None) for p2 in (0x01, 0x02, 0x04, 0x08)])
    wrong_p1p2(3, "read_record", "READ RECORD 的 P2 错误", "READ RECORD with a wrong P2",
               "READ RECORD with P2 other than 04 (record number) or 00 (record identifier) "
               "is refused with <sw:wrong_p1p2>.",
               "P2 不是 04（记录号）或 00（记录标识）的读记录以 <sw:wrong_p1p2> 拒绝。",
               [(0x01, p2, b"", LE_WHOLE) for p2 in (0x01, 0x02, 0x03, 0x05, 0x06, 0x0C, 0x14)],
               setup=first_free)
    wrong_p1p2(4, "read_binary", "READ BINARY 的 P1 含 SFI", "READ BINARY with an SFI in P1",
               "READ BINARY with bit 8 of P1 set (short file identifier) is refused with "
               "<sw:wrong_p1p2>.",
               "P1 第 8 位置位（短文件标识）的读二进制以 <sw:wrong_p1p2> 拒绝。",
               [(p1, 0x00, b"", LE_WHOLE) for p1 in (0x80, 0x81, 0x85, 0x9F)])
    wrong_p1p2(5, "update_record", "UPDATE RECORD 的 P2 错误", "UPDATE RECORD with a wrong P2",
               "A plain UPDATE RECORD with P2 other than 04 (record n) or 03 (new cyclic "
               "record) is refused with <sw:wrong_p1p2>.",
               "P2 不是 04（记录 n）或 03（新循环记录）的明文更新记录以 <sw:wrong_p1p2> 拒绝。",
               [(0x01, p2, b"\x00", None) for p2 in (0x00, 0x01, 0x02, 0x05)],
               notes=("update_record_p2",))
    wrong_p1p2(6, "update_record_sm", "安全报文 UPDATE RECORD 的 P2 错误",
               "Secure-messaging UPDATE RECORD with a wrong P2",
               "<cmd:update_record_sm> with P2 other than 04 is refused with <sw:wrong_p1p2> "
               "(before any MAC check).",
               "P2 不是 04 的 <cmd:update_record_sm> 以 <sw:wrong_p1p2> 拒绝（先于 MAC 检查）。",
               [(0x01, p2, bytes(20), None) for p2 in (0x00, 0x03, 0x05)])
    wrong_p1p2(7, "mark_record", "标记索引记录的 P2 错误", "Index mark with a wrong P2",
               "<cmd:mark_record> with P2 other than 04 is refused with <sw:wrong_p1p2>.",
               "P2 不是 04 的 <cmd:mark_record> 以 <sw:wrong_p1p2> 拒绝。",
               [(0x01, p2, b"", None) for p2 in (0x00, 0x03, 0x05)])
    wrong_p1p2(8, "erase_record", "擦除索引记录的 P2 错误", "Index erase with a wrong P2",
               "<cmd:erase_record> with P2 other than 04 is refused with <sw:wrong_p1p2>.",
               "P2 不是 04 的 <cmd:erase_record> 以 <sw:wrong_p1p2> 拒绝。",
               [(0x01, p2, b"", None) for p2 in (0x00, 0x03, 0x05)])
    wrong_p1p2(9, "external_authenticate", "外部认证的 P1 错误",
               "EXTERNAL AUTHENTICATE with a wrong P1",
               "EXTERNAL AUTHENTICATE with P1 other than 00 is refused with <sw:wrong_p1p2> (no "
               "challenge "
               "is taken first, so no retry counter is at stake).",
               "P1 不是 00 的外部认证以 <sw:wrong_p1p2> 拒绝（事先未取随机数，不涉及重试计数）。",
               [(p1, first_kid, bytes(2 * challenge) + b"\x01", None) for p1 in (0x01, 0x80)],
               setup=first_df)


def _lc_cases(profile: CardProfile, out: list[Case]) -> None:
    first_df = next(iter(profile.dfs))
    df_fid = bytes.fromhex(profile.df(first_df).fid)
    challenge = profile.spec.security.challenge_length
    auth_len = 2 * challenge + 1
    first_kid = next(k.kid for k in profile.keys.values() if k.kid is not None)

    @make(
        out, "CMD-LC-001", "CMD", "SELECT 的 Lc 错误", "SELECT with a wrong Lc",
        CLAUSE + " (SELECT: Lc = 2; <sw:wrong_length>)",
        "SELECT with no data, or with 1 or 3 data bytes, is refused with <sw:wrong_length>.",
        purpose_zh="不带数据或带 1 或 3 字节数据的 SELECT 以 <sw:wrong_length> 拒绝。",
        expected_sw=("wrong_length",), choices=("status_words",),
    )
    def select_lc(ctx: CaseContext) -> None:
        cla, ins = ctx.profile.command("select")
        for data in (b"", df_fid[:1], df_fid + b"\x00"):
            apdu = short_apdu(cla, ins, SELECT_P1_BY_FID, SELECT_P2_FCI, data)
            ctx.expect_situation(send(ctx, apdu), "select_wrong_lc",
                                 what=apdu.hex(" ").upper(), choice="status_words")

    @make(
        out, "CMD-LC-002", "CMD", "外部认证的 Lc 错误", "EXTERNAL AUTHENTICATE with a wrong Lc",
        CLAUSE + f" (EXTERNAL AUTHENTICATE: Lc = {auth_len:02X}; <sw:wrong_length>)",
        f"EXTERNAL AUTHENTICATE with a data field of other than {auth_len} bytes is refused "
        "with <sw:wrong_length>, before the challenge is looked at (none is taken, so no retry "
        "counter is "
        "at stake).",
        purpose_zh=f"数据域不是 {auth_len} 字节的外部认证在查看随机数之前即以 <sw:wrong_length> 拒"
                   "绝（未取随机数，不涉及重"
                   "试计数）。",
        expected_sw=("wrong_length",), choices=("status_words",),
    )
    def ext_auth_lc(ctx: CaseContext) -> None:
        enter(ctx, first_df)
        cla, ins = ctx.profile.command("external_authenticate")
        for n in (0, auth_len - 1, auth_len + 1):
            apdu = short_apdu(cla, ins, 0x00, first_kid, bytes(n)[:-1] + b"\x01" if n else b"")
            ctx.expect_sw(send(ctx, apdu), "wrong_length", what=apdu.hex(" ").upper())


def _extended_cases(profile: CardProfile, out: list[Case]) -> None:
    first_df = next(iter(profile.dfs))
    df_fid = bytes.fromhex(profile.df(first_df).fid)
    free = next((p for p in record_files(profile) if profile.file(p).access.read == "free"),
                None)
    photo = next(iter(transparent_files(profile)), None)
    challenge = profile.spec.security.challenge_length

    def extended(number: int, name: str, title_zh: str, title_en: str, purpose: str,
                 purpose_zh: str, p1: int, p2: int, data: bytes, le: int | None, setup: str | None,
                 right: bool) -> None:
        @make(
            out, f"CMD-EXT-{number:03d}", "CMD", title_zh, title_en,
            CLAUSE + " (extended length is not supported; <sw:wrong_length>)", purpose,
            purpose_zh=purpose_zh,
            expected_sw=("wrong_length",), choices=("status_words",),
            interpretations=("no_extended_length",),
            preconditions="card reset; " + (f"{setup} selected" if setup else "MF current")
            + ("; read right granted" if right else ""),
        )
        def body(ctx: CaseContext) -> None:
            if setup is not None:
                if right:
                    grant(ctx, setup)
                else:
                    ctx.select(setup)
            cla, ins = ctx.profile.command(name)
            apdu = extended_apdu(cla, ins, p1, p2, data, le)
            ctx.expect_sw(send(ctx, apdu), "wrong_length",
                          what=msg("what.cmd.extended", name=name, apdu=apdu.hex(' ').upper()))

    extended(1, "select", "扩展长度的 SELECT", "SELECT in extended length",
             "SELECT with an extended-length Lc is refused with <sw:wrong_length>.",
             "以扩展长度 Lc 发送的 SELECT 以 <sw:wrong_length> 拒绝。",
             SELECT_P1_BY_FID, SELECT_P2_FCI, df_fid, None, None, False)
    if free is not None:
        length = profile.record_length(free, 1)
        extended(2, "read_record", "扩展长度的 READ RECORD", "READ RECORD in extended length",
                 f"READ RECORD 1 of {free} with an extended-length Le is refused with "
                 "<sw:wrong_length>.",
                 f"以扩展长度 Le 读 {free} 的记录 1 以 <sw:wrong_length> 拒绝。",
                 0x01, RECORD_P2_BY_NUMBER, b"", length, free, False)
    if photo is not None:
        extended(3, "read_binary", "扩展长度的 READ BINARY", "READ BINARY in extended length",
                 f"READ BINARY of {photo} with an extended Le of 512, with the read right, "
                 "is refused with <sw:wrong_length>.",
                 f"已获读权限时，以扩展长度 Le 512 读二进制 {photo} 以 <sw:wrong_length> 拒绝。",
                 0x00, 0x00, b"", 512, photo, True)
    extended(4, "get_challenge", "扩展长度的 GET CHALLENGE", "GET CHALLENGE in extended length",
             f"GET CHALLENGE with an extended Le of {challenge} is refused with <sw:wrong_length>.",
             f"以扩展长度 Le {challenge} 取随机数以 <sw:wrong_length> 拒绝。",
             0x00, 0x00, b"", challenge, None, False)


def _record_cases(profile: CardProfile, out: list[Case]) -> None:
    for path in record_files(profile):
        length = profile.record_length(path, 1)
        sid = slug(path)

        @make(
            out, f"CMD-LE-{sid}-001", "CMD",
            f"{path} READ RECORD 的 Le 错误",
            f"{path}: READ RECORD with a wrong Le",
            CLAUSE + " (READ RECORD: Le absent or 00 is the whole record, another Le "
            "that differs from the record length is <sw:wrong_le>)",
            f"READ RECORD 1 (record of {length} bytes) with Le {length + 1}"
            + (f" and {length - 1}" if length > 1 else "")
            + f" answers <sw:wrong_le:{length:02X}> (sent raw, past the T=0 layer); Le 00 and Le "
            f"{length} return the {length}-byte record.",
            purpose_zh=f"以 Le {length + 1}" + (f" 和 {length - 1}" if length > 1 else "")
            + f" 读记录 1（记录长 {length} 字节）应答 <sw:wrong_le:{length:02X}>"
            f"（直接发送，绕过 T=0 层）；Le 00 与 Le {length} 返回 {length} 字节的记录。",
            expected_sw=(f"wrong_le:{length:02X}", "ok"),
            preconditions="card reset; read right of the file granted",
            choices=("wrong_le",),
        )
        def wrong_le(ctx: CaseContext, path: str = path, length: int = length) -> None:
            grant(ctx, path)
            for le in (length + 1, length - 1):
                if le < 1:
                    continue
                expect_wrong_le(ctx, read_record(ctx, 1, le=le, raw=True), length,
                                msg("what.cmd.read_record_1_with_le_2", le=f"{le:02X}"))
            whole = ctx.expect_sw(read_record(ctx, 1, le=LE_WHOLE), "ok",
                                  what=msg("what.cmd.read_record_1_with_le"))
            ctx.check(len(whole.data) == length,
                      msg("len.le00_record", length=len(whole.data), expected=length),
                      expected=f"{length} bytes", measured=f"{len(whole.data)} bytes")
            exact = ctx.expect_sw(read_record(ctx, 1, le=length), "ok",
                                  what=msg("what.cmd.read_record_1_with_le_2", le=f"{length:02X}"))
            ctx.check(exact.data == whole.data,
                      msg("value.exact_le_differs", length=len(exact.data)),
                      expected=whole.data.hex().upper(), measured=exact.data.hex().upper())

    for df in profile.dfs:
        files = record_files(profile, df)
        if not files:
            continue

        @make(
            out, f"CMD-REC-{df}-001", "CMD",
            f"{df} 下读不存在的记录",
            f"{df}: READ RECORD of a record that does not exist",
            CLAUSE + " (READ RECORD: record 0 or > n is <sw:record_not_found>)",
            f"In every record file of {df} ({', '.join(files)}), READ RECORD 0 and READ "
            "RECORD n+1 answer <sw:record_not_found>.",
            purpose_zh=f"在 {df} 的每个记录文件（{', '.join(files)}）中，读记录 0 和记录 n+1 应答 "
                       "<sw:recor"
                       "d_not_found>。",
            expected_sw=("record_not_found",),
            preconditions="card reset; read right of each file granted",
            choices=("status_words",),
        )
        def missing_record(ctx: CaseContext, files: list[str] = files) -> None:
            for path in files:
                grant(ctx, path)
                count = ctx.profile.record_count(path)
                for n in (0, count + 1):
                    ctx.expect_sw(read_record(ctx, n), "record_not_found",
                                  what=msg("what.cmd.read_record_records_1",
                                           path=path, n=n, count=count))


def _binary_cases(profile: CardProfile, out: list[Case]) -> None:
    for path in transparent_files(profile):
        size = profile.file(path).size or 0
        left = min(16, size)
        offset = size - left

        @make(
            out, f"CMD-RB-{slug(path)}-001", "CMD",
            f"{path} READ BINARY 越界与 Le 错误",
            f"{path}: READ BINARY past the end and with a wrong Le",
            CLAUSE + " (READ BINARY: offset at or past the end <sw:offset_beyond_end>; Le larger "
                     "than the "
            "bytes left <sw:wrong_le>; Le 00 returns min(256, left))",
            f"On the {size}-byte file: offset {size} and {MAX_BINARY_OFFSET:04X} answer "
            "<sw:offset_beyond_end>; at "
            f"offset {offset}, Le {left + 4} answers <sw:wrong_le:{left:02X}> (raw) and Le 00 "
            "returns "
            f"the {left} bytes left with <sw:ok>.",
            purpose_zh=f"对 {size} 字节的文件：偏移 {size} 和 {MAX_BINARY_OFFSET:04X} 应答 <sw:offs"
                       f"et_beyond_end>；在偏移 {offset}，Le {left + 4} 应答 <sw:wrong_le:"
                       f"{left:02X}"
                       f">（直接发送），Le 00 以 <sw:ok> 返回剩余的 {left} 字节。",
            expected_sw=("offset_beyond_end", f"wrong_le:{left:02X}", "ok"),
            preconditions="card reset; read right of the file granted",
            choices=("status_words",),
        )
        def binary(ctx: CaseContext, path: str = path, size: int = size, left: int = left,
                   offset: int = offset) -> None:
            grant(ctx, path)
            for at in (size, MAX_BINARY_OFFSET):
                ctx.expect_sw(read_binary(ctx, at), "offset_beyond_end",
                              what=msg("what.cmd.read_binary_at_offset_of", at=at, size=size))
            expect_wrong_le(ctx, read_binary(ctx, offset, le=left + 4, raw=True), left,
                            msg("what.cmd.read_binary_at_offset_with", offset=offset, le=left + 4))
            tail = ctx.expect_sw(read_binary(ctx, offset, le=LE_WHOLE), "ok",
                                 what=msg("what.cmd.read_binary_at_offset_with_2", offset=offset))
            ctx.check(len(tail.data) == left,
                      msg("len.le00_binary", offset=offset, length=len(tail.data),
                          expected=left),
                      expected=f"{left} bytes", measured=f"{len(tail.data)} bytes")


# --------------------------------------------------------------------------- SELECT


def _select_cases(profile: CardProfile, out: list[Case]) -> None:
    for df in df_names(profile):
        foreign = foreign_ef_fids(profile, df)

        @make(
            out, f"CMD-SEL-{df}-001", "CMD",
            f"在 {df} 下选择不存在或不可达的文件",
            f"SELECT of files missing or out of reach from {df}",
            CLAUSE + " (SELECT lookup order; <sw:file_not_found>)",
            f"While {df} is current, SELECT of FIDs the card does not have, of DFs outside "
            "the lookup order and of EFs of other DFs answers <sw:file_not_found>.",
            purpose_zh=f"{df} 为当前时，选择卡片没有的 FID、查找顺序之外的 DF 以及其他 DF 的 EF 应"
                       "答 <sw:file_not_"
                       "found>。",
            expected_sw=("file_not_found",),
            preconditions=f"card reset; {df} current",
            choices=("select_order",),
            severity="critical",
        )
        def missing(ctx: CaseContext, df: str = df) -> None:
            profile = ctx.profile
            known = all_fids(profile)
            fids = [f for f in plan_hex_strings(ctx, "missing_fids", 2) if f not in known]
            unreachable = sorted({d.fid for d in profile.dfs.values()}
                                 - reachable_fids(profile, df))
            enter(ctx, df)
            for fid in fids + unreachable + foreign_ef_fids(profile, df):
                ctx.expect_sw(select_fid(ctx, fid), "file_not_found",
                              what=msg("what.cmd.select_from", fid=fid, df=df))

        if foreign:

            @make(
                out, f"CMD-SEL-{df}-002", "CMD",
                f"在 {df} 下不能选择其他 DF 的 EF",
                f"EFs of other DFs are not selectable from {df}",
                CLAUSE + " (SELECT: EFs only among the current DF's children)",
                f"While {df} is current, SELECT of {', '.join(foreign)} (EFs that belong to "
                "other DFs) answers <sw:file_not_found>; whether the current DF stays is observed.",
                purpose_zh=f"{df} 为当前时，选择 {', '.join(foreign)}（属于其他 DF 的 EF）应答 <sw"
                           ":file"
                           "_not_found>；观察当前 DF 是否保持。",
                expected_sw=("file_not_found",),
                preconditions=f"card reset; {df} current",
                choices=("select_order",),
            interpretations=("df_kept_after_not_found",),
                severity="critical",
            )
            def foreign_ef(ctx: CaseContext, df: str = df, foreign: list[str] = foreign) -> None:
                enter(ctx, df)
                for fid in foreign:
                    ctx.expect_sw(select_fid(ctx, fid), "file_not_found",
                                  what=msg("what.cmd.select_not_a_child_of", fid=fid, df=df))
                # what a refused SELECT leaves current the text does not say: observed only
                for path in files_of(ctx.profile, df)[:1]:
                    fid = ctx.profile.file(path).fid
                    after = select_fid(ctx, fid)
                    if after.sw != ctx.sw("ok"):
                        ctx.observe(msg("obs.df_not_kept", fid=fid, df=df,
                                        sw=sw_hex(after.sw)))

        targets = [fid_of(profile, df)] + [profile.file(p).fid for p in files_of(profile, df)]

        @make(
            out, f"CMD-SEL-{df}-003", "CMD",
            f"{df} 及其 EF 的 SELECT（P2 = 00 / 0C）",
            f"SELECT of {df} and its EFs with P2 = 00 and 0C",
            CLAUSE + " (SELECT: P1 = 00, P2 = 00 or 0C, Lc = 2; <sw:ok> with no FCI)",
            f"{df} and each of its EFs are selected with P2 = 0C and with P2 = 00; every "
            "answer is <sw:ok> with no data.",
            purpose_zh=f"以 P2 = 0C 和 P2 = 00 选择 {df} 及其每个 EF；每次应答 <sw:ok> 且无数据。",
            expected_sw=("ok",),
            preconditions=f"card reset; the parent of {df} current",
            choices=("status_words",), interpretations=("select_no_fci",),
            severity="critical",
        )
        def select_p2(ctx: CaseContext, df: str = df, targets: list[str] = targets) -> None:
            up = parent_of(ctx.profile, df)
            for p2 in (SELECT_P2_NO_DATA, SELECT_P2_FCI):
                if up == MF:
                    with ctx.precondition(msg("what.cmd.reset_the_mf_current")):
                        ctx.session.reset()
                elif up is not None:
                    enter(ctx, up)
                for fid in targets:
                    response = expect_select(ctx, fid, msg("what.cmd.select_with_p2",
                                                           fid=fid, p2=f"{p2:02X}"), p2=p2)
                    ctx.check(not response.data,
                              msg("value.select_fci", fid=fid, p2=f"{p2:02X}",
                                  value=response.data.hex().upper(),
                                  length=len(response.data)),
                              expected="no data", measured=f"{len(response.data)} bytes")

    _lookup_cases(profile, out)


def _lookup_cases(profile: CardProfile, out: list[Case]) -> None:
    dfs = list(profile.dfs)
    below = [d for d in dfs if parent_of(profile, d) not in (None, MF)]
    proof_ef = {d: free_read_ef(profile, d) for d in dfs}

    @make(
        out, "CMD-SEL-LKP-001", "CMD", "从各级 DF 选择 MF", "SELECT of the MF from every DF",
        CLAUSE + " (SELECT lookup: MF 3F00 first)",
        "From every DF, SELECT 3F00 answers <sw:ok> and makes the MF current (an EF of the "
        "former DF is then no longer found: <sw:file_not_found>).",
        purpose_zh="在每个 DF 下，SELECT 3F00 应答 <sw:ok> 并使 MF 成为当前（原 DF 的 EF 随后找不"
                   "到：<sw:fil"
                   "e_not_found>）。",
        expected_sw=("ok", "file_not_found"), choices=("select_order",), severity="critical",
    )
    def mf_from_everywhere(ctx: CaseContext) -> None:
        for df in dfs:
            enter(ctx, df)
            expect_select(ctx, MF_FID, msg("what.cmd.select_3f00_from", df=df))
            efs = files_of(ctx.profile, df)
            if efs:
                fid = ctx.profile.file(efs[0]).fid
                ctx.expect_sw(select_fid(ctx, fid), "file_not_found",
                              what=msg("what.cmd.select_after_select_3f00_from", fid=fid, df=df))

    @make(
        out, "CMD-SEL-LKP-002", "CMD", "选择父 DF", "SELECT of the parent DF",
        CLAUSE + " (SELECT lookup: the parent of the current DF)",
        "From every DF below the top level, SELECT of its parent answers <sw:ok> and makes the "
        "parent current (shown by reading a free record file of the parent).",
        purpose_zh="在顶层以下的每个 DF 下，选择其父 DF 应答 <sw:ok> 并使父 DF 成为当前（以读取父"
                   " DF 的自由读记录文件证明）。",
        expected_sw=("ok",), choices=("select_order",), severity="critical",
    )
    def parent(ctx: CaseContext) -> None:
        for df in below:
            up = parent_of(ctx.profile, df)
            if up is None:
                continue
            enter(ctx, df)
            expect_select(ctx, fid_of(ctx.profile, up), msg("what.cmd.select_parent_from",
                                                            up=up, df=df))
            proof = proof_ef.get(up)
            if proof is not None:
                expect_select(ctx, ctx.profile.file(proof).fid, msg("what.cmd.select_afterwards",
                                                                    proof=proof))
                ctx.expect_sw(read_record(ctx, 1), "ok",
                              what=msg("what.cmd.read_record_1_of_free", proof=proof, up=up))

    @make(
        out, "CMD-SEL-LKP-003", "CMD", "选择兄弟 DF", "SELECT of a sibling DF",
        CLAUSE + " (SELECT lookup: a DF that is a child of the current DF's parent)",
        "From every DF below the top level, SELECT of each sibling DF answers <sw:ok>; where "
        "the sibling has an EF the former DF lacks, that EF is then found.",
        purpose_zh="在顶层以下的每个 DF 下，选择每个兄弟 DF 应答 <sw:ok>；兄弟 DF 有而原 DF 没有"
                   "的 EF 随后可以找到。",
        expected_sw=("ok",), choices=("select_order",), severity="critical",
    )
    def sibling(ctx: CaseContext) -> None:
        profile = ctx.profile
        for df in below:
            for other in [d for d in below if d != df
                          and parent_of(profile, d) == parent_of(profile, df)]:
                enter(ctx, df)
                expect_select(ctx, profile.df(other).fid, msg("what.cmd.select_sibling_from",
                                                              other=other, df=df))
                mine = {profile.file(p).fid for p in files_of(profile, df)}
                theirs = [profile.file(p).fid for p in files_of(profile, other)
                          if profile.file(p).fid not in mine]
                if theirs:
                    expect_select(ctx, theirs[0],
                                  msg("what.cmd.select_an_ef_of_only", fid=theirs[0], other=other))

    @make(
        out, "CMD-SEL-LKP-004", "CMD", "选择当前 DF 自身", "SELECT of the current DF itself",
        CLAUSE + " (SELECT lookup: the current DF)",
        "With an EF of a DF current, SELECT of the DF itself answers <sw:ok>, leaves no "
        "current EF (READ RECORD <sw:no_current_ef>) and keeps the DF (its EFs are still found).",
        purpose_zh="在某 DF 的 EF 为当前时，选择该 DF 自身应答 <sw:ok>，不再有当前 EF（读记录 <sw"
                   ":no_current_ef"
                   ">），该 DF 仍为当前（其 EF 仍可找到）。",
        expected_sw=("ok", "no_current_ef"), choices=("select_order",),
        interpretations=("no_ef_after_df",),
    )
    def itself(ctx: CaseContext) -> None:
        for df in dfs:
            efs = files_of(ctx.profile, df)
            if not efs:
                continue
            ctx.select(efs[0])
            expect_select(ctx, fid_of(ctx.profile, df), msg("what.cmd.select_while_is_current",
                                                            df=df))
            ctx.expect_sw(read_record(ctx, 1), "no_current_ef",
                          what=msg("what.cmd.read_record_right_after_re", df=df))
            expect_select(ctx, ctx.profile.file(efs[-1]).fid,
                          msg("what.cmd.select_after_re_selecting", fid=efs[-1], df=df))


# --------------------------------------------------------------------------- structure, EF


def _structure_cases(profile: CardProfile, out: list[Case]) -> None:
    for df in profile.dfs:
        records = record_files(profile, df)
        binaries = transparent_files(profile, df)
        non_tlv = [p for p in profile.files if df_of(p) == df
                   and profile.file(p).structure is not Structure.TLV_RECORDS]
        if not (records or binaries):
            continue
        parts = []
        if records:
            parts.append(f"READ/UPDATE BINARY on its record files ({', '.join(records)})")
        if binaries:
            parts.append(f"READ/UPDATE RECORD on its transparent files ({', '.join(binaries)})")
        if non_tlv:
            parts.append(f"a secure-messaging UPDATE RECORD on its non-TLV files "
                         f"({', '.join(non_tlv)})")

        @make(
            out, f"CMD-STR-{df}-001", "CMD",
            f"{df} 下命令与文件结构不相容",
            f"{df}: commands incompatible with the file structure",
            CLAUSE + " (file structure, <sw:incompatible_file_structure>, is checked before "
                     "security)",
            f"Without any right: {'; '.join(parts)} answer <sw:incompatible_file_structure>.",
            purpose_zh=f"未获任何权限时：{'; '.join(parts)} 应答 <sw:incompatible_file_structure>"
                       "。",
            expected_sw=("incompatible_file_structure",),
            choices=("status_words",), interpretations=("sm_update_non_tlv",),
        )
        def structure(ctx: CaseContext, records: list[str] = records,
                      binaries: list[str] = binaries, non_tlv: list[str] = non_tlv) -> None:
            p = ctx.profile
            rb, ub = p.command("read_binary"), p.command("update_binary")
            rr, ur = p.command("read_record"), p.command("update_record")
            sm = p.command("update_record_sm")
            tries: list[tuple[str, bytes]] = []
            for path in records:
                tries += [(path, short_apdu(*rb, 0, 0, le=LE_WHOLE)),
                          (path, short_apdu(*ub, 0, 0, b"\x00"))]
            for path in binaries:
                tries += [(path, short_apdu(*rr, 1, RECORD_P2_BY_NUMBER, le=LE_WHOLE)),
                          (path, short_apdu(*ur, 1, RECORD_P2_BY_NUMBER, b"\x00"))]
            for path in non_tlv:
                tries.append((path, short_apdu(*sm, 1, RECORD_P2_BY_NUMBER, bytes(20))))
            for path, apdu in tries:
                ctx.select(path)
                ctx.expect_sw(send(ctx, apdu), "incompatible_file_structure",
                              what=msg("what.cmd.command_on_file",
                                       apdu=apdu[:4].hex(' ').upper(), path=path,
                                       structure=p.file(path).structure))


def _no_ef_cases(profile: CardProfile, out: list[Case]) -> None:
    for df in df_names(profile):
        up = parent_of(profile, df)
        before = next(iter(files_of(profile, up)), None) if up is not None else None

        @make(
            out, f"CMD-NOEF-{df}-001", "CMD",
            f"{df} 下无当前 EF",
            f"{df}: no current EF",
            CLAUSE + " (current EF, <sw:no_current_ef>, is checked before structure and security)",
            f"Right after selecting {df}"
            + (f" (coming from {before})" if before else "")
            + ", READ RECORD, READ BINARY, UPDATE RECORD, UPDATE BINARY, mark and erase "
            "answer <sw:no_current_ef>.",
            purpose_zh=f"刚选择 {df}" + (f"（从 {before} 来）" if before else "")
            + " 之后，读记录、读二进制、更新记录、更新二进制、标记与擦除应答 "
            "<sw:no_current_ef>。",
            expected_sw=("no_current_ef",),
            choices=("status_words",), interpretations=("no_ef_after_df",),
        )
        def no_ef(ctx: CaseContext, df: str = df, before: str | None = before) -> None:
            p = ctx.profile
            if before is not None:
                ctx.select(before)  # an EF of the parent is current …
            if df == MF:
                with ctx.precondition(msg("what.cmd.select_3f00")):
                    select_fid(ctx, MF_FID).check()
            else:
                with ctx.precondition(msg("what.cmd.select", df=df)):
                    select_fid(ctx, fid_of(p, df)).check()  # … and selecting the DF drops it
            tries = [
                short_apdu(*p.command("read_record"), 1, RECORD_P2_BY_NUMBER, le=LE_WHOLE),
                short_apdu(*p.command("read_binary"), 0, 0, le=LE_WHOLE),
                short_apdu(*p.command("update_record"), 1, RECORD_P2_BY_NUMBER, b"\x00"),
                short_apdu(*p.command("update_binary"), 0, 0, b"\x00"),
                short_apdu(*p.command("mark_record"), 1, RECORD_P2_BY_NUMBER),
                short_apdu(*p.command("erase_record"), 1, RECORD_P2_BY_NUMBER),
            ]
            for apdu in tries:
                ctx.expect_sw(send(ctx, apdu), "no_current_ef",
                              what=msg("what.cmd.right_after_selecting",
                                       apdu=apdu.hex(' ').upper(), df=df))


# --------------------------------------------------------------------------- check order


def _order_cases(profile: CardProfile, out: list[Case]) -> None:
    first_df = next(iter(profile.dfs))
    df_fid = bytes.fromhex(profile.df(first_df).fid)
    known = profile.classes()
    sel = profile.command("select")
    rr = profile.command("read_record")
    ea = profile.command("external_authenticate")
    challenge = profile.spec.security.challenge_length
    first_kid = next(k.kid for k in profile.keys.values() if k.kid is not None)
    protected = next((p for p in record_files(profile)
                      if profile.file(p).access.read != "free"), None)
    wrong_class = sorted(known - {sel[0]})[0]

    def order(number: int, title_zh: str, title_en: str, purpose: str, purpose_zh: str,
              expected: str, setup: str | None, apdus: list[bytes],
              params: tuple[str, ...] = ()) -> None:
        @make(
            out, f"CMD-ORD-{number:03d}", "CMD", title_zh, title_en,
            CLAUSE + " (the check order: CLA, INS, P1/P2, Lc/Le, current EF, structure, "
            "security, range, data)",
            purpose, purpose_zh=purpose_zh,
            expected_sw=(expected,),
            choices=("status_words",),
        )
        def body(ctx: CaseContext) -> None:
            # the plan's unknown class / INS replace the placeholders (plan errors first)
            cla = unknown_classes(ctx)[0] if "unknown_cla" in params else None
            ins = unknown_instructions(ctx)[0] if "unknown_ins" in params else None
            if setup is not None:
                ctx.select(setup)
            for apdu in apdus:
                if cla is not None:
                    apdu = bytes([cla]) + apdu[1:]
                if ins is not None:
                    apdu = apdu[:1] + bytes([ins]) + apdu[2:]
                expect_sw_of(ctx, apdu, expected)

    any_ins = 0x00  # placeholder for the first INS of plan parameter unknown_ins
    order(1, "CLA 先于 P1/P2 检查", "CLA is checked before P1/P2",
          "An unknown class with a SELECT of wrong P1 answers <sw:cla_not_supported>, not "
          "<sw:wrong_p1p2>.",
          "未知类别且 P1 错误的 SELECT 应答 <sw:cla_not_supported>，而不是 <sw:wrong_p1p2>。",
          "cla_not_supported", None,
          [short_apdu(0x00, sel[1], 0x04, SELECT_P2_FCI, df_fid)], ("unknown_cla",))
    order(2, "已知指令的错误类别先于 P1/P2 检查", "A known INS in a wrong class is checked "
          "before P1/P2",
          f"SELECT (INS {sel[1]:02X}) with class {wrong_class:02X} and a wrong P1 answers "
          "<sw:cla_not_supported>, not <sw:wrong_p1p2>.",
          f"类别 {wrong_class:02X} 且 P1 错误的 SELECT（INS {sel[1]:02X}）应答 "
          "<sw:cla_not_supported>，而不是 <sw:wrong_p1p2>。",
          "cla_not_supported", None,
          [short_apdu(wrong_class, sel[1], 0x04, SELECT_P2_FCI, df_fid)])
    order(3, "CLA 先于 INS 检查", "CLA is checked before INS",
          "An unknown class with an unknown INS (the first ones of plan parameters "
          "unknown_classes and unknown_ins the profile does not use) answers "
          "<sw:cla_not_supported>, not <sw:ins_not_supported>.",
          "未知类别配未知指令（计划参数 unknown_classes 与 unknown_ins 中配置未用的第一个）应答 "
          "<sw:cla_not_supported>，而不是 <sw:ins_not_supported>。",
          "cla_not_supported", None, [short_apdu(0x00, any_ins, 0x00, 0x00)],
          ("unknown_cla", "unknown_ins"))
    order(4, "INS 先于 P1/P2 检查", "INS is checked before P1/P2",
          "An unknown INS (the first of plan parameter unknown_ins the profile does not use) "
          "in class 00 with P1P2 FFFF answers <sw:ins_not_supported>, not <sw:wrong_p1p2>.",
          "类别 00 下 P1P2 为 FFFF 的未知指令（计划参数 unknown_ins 中配置未用的第一个）应答 "
          "<sw:ins_not_supported>，而不是 <sw:wrong_p1p2>。",
          "ins_not_supported", None, [short_apdu(0x00, any_ins, 0xFF, 0xFF)],
          ("unknown_ins",))
    order(5, "P1/P2 先于 Lc 检查", "P1/P2 are checked before Lc",
          "SELECT with P1 = 04 and a 1-byte data field answers <sw:wrong_p1p2>, not "
          "<sw:wrong_length>; EXTERNAL "
          "AUTHENTICATE with P1 = 01 and a short data field answers <sw:wrong_p1p2>.",
          "P1 = 04 且数据域 1 字节的 SELECT 应答 <sw:wrong_p1p2>，而不是 <sw:wrong_length>；"
          "P1 = 01 且数据域过短的外部认证应答 <sw:wrong_p1p2>。",
          "wrong_p1p2", first_df,
          [short_apdu(*sel, 0x04, SELECT_P2_FCI, df_fid[:1]),
           short_apdu(*ea, 0x01, first_kid, bytes(4))])
    order(6, "P1/P2 先于当前 EF 检查", "P1/P2 are checked before the current EF",
          "Right after selecting a DF, READ RECORD with P2 = 05 answers <sw:wrong_p1p2>, not "
          "<sw:no_current_ef>.",
          "刚选择 DF 后，P2 = 05 的读记录应答 <sw:wrong_p1p2>，而不是 <sw:no_current_ef>。",
          "wrong_p1p2", first_df, [short_apdu(*rr, 0x01, 0x05, le=LE_WHOLE)])
    order(7, "Lc/Le 先于当前 EF 检查", "Lc/Le are checked before the current EF",
          "Right after selecting a DF, READ RECORD with an extended Le answers <sw:wrong_length>, "
          "not <sw:no_current_ef>.",
          "刚选择 DF 后，扩展长度 Le 的读记录应答 <sw:wrong_length>，而不是 <sw:no_current_ef>。",
          "wrong_length", first_df,
          [extended_apdu(*rr, 0x01, RECORD_P2_BY_NUMBER, le=LE_WHOLE)])
    order(8, "Lc 先于随机数检查", "Lc is checked before the challenge",
          "With no challenge taken, EXTERNAL AUTHENTICATE with a data field one byte short "
          "answers <sw:wrong_length>, not <sw:no_challenge>.",
          "未取随机数时，数据域短 1 字节的外部认证应答 <sw:wrong_length>，而不是 <sw:no_challenge"
          ">。",
          "wrong_length", first_df,
          [short_apdu(*ea, 0x00, first_kid, bytes(2 * challenge))])
    if protected is not None:
        count = profile.record_count(protected)
        order(9, "安全状态先于记录范围检查", "Security is checked before the record range",
              f"Without the read right of {protected}, READ RECORD {count + 1} (one past the "
              "last) answers <sw:security_not_satisfied>, not <sw:record_not_found>.",
              f"未获 {protected} 的读权限时，读记录 {count + 1}（最后一条之后）应答 "
              "<sw:security_not_satisfied>，而不是 <sw:record_not_found>。",
              "security_not_satisfied", protected,
              [short_apdu(*rr, count + 1, RECORD_P2_BY_NUMBER, le=LE_WHOLE)])


# --------------------------------------------------------------------------- challenge, T=0


def _challenge_cases(profile: CardProfile, out: list[Case]) -> None:
    n = profile.spec.security.challenge_length

    @make(
        out, "CMD-CHAL-001", "CMD", "随机数不重复", "GET CHALLENGE freshness",
        "REFERENCE.md §3 (single-use challenge), §4 (session keys from the challenge), §5 "
        "GET CHALLENGE; evidence §4.3",
        f"Many GET CHALLENGE answers (plan parameter challenge_samples, at least 2) are "
        f"each {n} bytes with <sw:ok>, and no two are equal.",
        purpose_zh=f"多次取随机数（计划参数 challenge_samples，至少 2 次）每次以 <sw:ok> 返回 {n} "
                   "字节，且任意两次互不"
                   "相同。",
        expected_sw=("ok",),
        severity="critical",
    )
    def freshness(ctx: CaseContext) -> None:
        samples = plan_count(ctx, "challenge_samples")
        if samples < 2:
            raise ValueError(
                f"plan parameter challenge_samples is {samples}: freshness needs at least 2"
            )
        cla, ins = ctx.profile.command("get_challenge")
        apdu = short_apdu(cla, ins, 0x00, 0x00, le=n)
        seen: dict[bytes, int] = {}
        for i in range(1, samples + 1):
            r = ctx.expect_sw(send(ctx, apdu, raw=False), "ok",
                              what=msg("act.get_challenge_n", i=i))
            ctx.check(len(r.data) == n,
                      msg("len.challenge", i=i, length=len(r.data), expected=n),
                      expected=f"{n} bytes", measured=f"{len(r.data)} bytes")
            if r.data in seen:
                ctx.fail(msg("value.challenge_repeats", i=i, first=seen[r.data],
                             value=r.data.hex().upper(), length=len(r.data), distinct=i - 1),
                         expected=f"{samples} distinct challenges",
                         measured=f"#{i} = #{seen[r.data]} ({len(r.data)} bytes) "
                         f"after {i - 1} distinct")
            seen[r.data] = i
        ctx.note(f"{samples} challenges, all distinct")

    @make(
        out, "CMD-CHAL-002", "CMD", "GET CHALLENGE 的长度错误",
        "GET CHALLENGE with a wrong length",
        CLAUSE + f" (GET CHALLENGE: no data and Le = {n:02X}, else <sw:wrong_length>)",
        f"GET CHALLENGE with Le other than {n:02X} (01, {n - 1:02X}, {n + 1:02X}, 10, 00), "
        "with no Le, or with a data field, is refused with <sw:wrong_length>.",
        purpose_zh=f"Le 不是 {n:02X}（01、{n - 1:02X}、{n + 1:02X}、10、00）、没有 Le 或带数据域的"
                   "取随机数以 "
                   "<sw:wrong_length> 拒绝。",
        expected_sw=("wrong_length",),
        choices=("status_words",),
    )
    def wrong_length(ctx: CaseContext) -> None:
        cla, ins = ctx.profile.command("get_challenge")
        tries = [short_apdu(cla, ins, 0, 0, le=le) for le in (1, n - 1, n + 1, 0x10, LE_WHOLE)]
        tries += [short_apdu(cla, ins, 0, 0), short_apdu(cla, ins, 0, 0, bytes(n), n)]
        for apdu in tries:
            ctx.expect_sw(send(ctx, apdu, raw=False), "wrong_length",
                          what=apdu.hex(" ").upper())


def _get_response(ctx: CaseContext, first: ResponseAPDU, what: str | Msg, expected: int) -> bytes:
    """Check a 61xx answer announcing ``expected`` bytes (the length the profile gives) and
    collect its data with one raw GET RESPONSE."""
    ctx.expect_sw(first, "bytes_available", what=what)
    want = ctx.profile.sw_text(f"bytes_available:{expected & 0xFF:02X}")
    ctx.check(first.sw2 == expected & 0xFF,
              msg("sw.wrong_length_announced", what=what, sw=sw_hex(first.sw),
                  length=expected, expected=want),
              expected=want, measured=sw_hex(first.sw))
    cla, ins = ctx.profile.command("get_response")
    n = first.sw2 or 256
    second = ctx.expect_sw(send(ctx, short_apdu(cla, ins, 0x00, 0x00, le=n)), "ok",
                           what=msg("what.cmd.get_response_after",
                                    le=f"{first.sw2:02X}", what=what))
    ctx.check(len(second.data) == n,
              msg("len.get_response", le=f"{first.sw2:02X}", length=len(second.data),
                  sw=sw_hex(first.sw), expected=n),
              expected=f"{n} bytes", measured=f"{len(second.data)} bytes")
    return second.data


def _tlv_framing(profile: CardProfile, path: str) -> bytes | None:
    """Tag and length of record 1 of a TLV file as the profile defines them (tag = item
    number, length = the item's length); None for other files."""
    ef = profile.file(path)
    if ef.structure is not Structure.TLV_RECORDS:
        return None
    item = ef.items[0]
    return bytes([item, profile.item(item).length])


def _t0_cases(profile: CardProfile, out: list[Case]) -> None:
    n = profile.spec.security.challenge_length
    free = next((p for p in record_files(profile) if profile.file(p).access.read == "free"),
                None)
    photo = next(iter(transparent_files(profile)), None)
    clause = (
        "REFERENCE.md §5 (<sw:bytes_available>, GET RESPONSE <cmd:get_response> 00 00 xx), "
        "§6 t0_get_response"
    )

    @make(
        out, "CMD-T0-001", "CMD", "T=0 下 GET CHALLENGE 的取响应",
        "GET RESPONSE after GET CHALLENGE under T=0", clause,
        f"GET CHALLENGE sent raw answers <sw:bytes_available:{n:02X}>; GET RESPONSE {n:02X} "
        f"returns {n} bytes "
        "and <sw:ok>, and the challenge is fresh.",
        purpose_zh=f"直接发送的取随机数应答 <sw:bytes_available:{n:02X}>；GET RESPONSE {n:02X} 以 "
                   "<s"
                   f"w:ok> 返回 {n} 字节，且随机数是新的。",
        applicability="t0_get_response", expected_sw=(f"bytes_available:{n:02X}", "ok"),
    )
    def challenge(ctx: CaseContext) -> None:
        cla, ins = ctx.profile.command("get_challenge")
        apdu = short_apdu(cla, ins, 0x00, 0x00, le=n)
        got = [_get_response(ctx, send(ctx, apdu), msg("what.cmd.get_challenge",
                                                       i=i), n) for i in (1, 2)]
        ctx.check(got[0] != got[1], msg("value.challenges_equal", length=len(got[0])),
                  expected="2 distinct challenges",
                  measured=f"2 equal challenges of {len(got[0])} bytes")

    if free is not None:
        length = profile.record_length(free, 1)
        tlv = _tlv_framing(profile, free)

        @make(
            out, "CMD-T0-002", "CMD", "T=0 下 READ RECORD 的取响应",
            "GET RESPONSE after READ RECORD under T=0", clause,
            f"READ RECORD 1 of {free} sent raw with Le {length:02X} answers "
            f"<sw:bytes_available:{length:02X}>; "
            f"GET RESPONSE returns the {length}-byte record with <sw:ok>"
            + (f", framed as the profile's TLV record 1 (tag {tlv[0]:02X} = item {tlv[0]}, "
               f"length {tlv[1]:02X})." if tlv else "."),
            purpose_zh=f"以 Le {length:02X} 直接发送 {free} 的读记录 1 应答 "
            f"<sw:bytes_available:{length:02X}>；GET RESPONSE 以 <sw:ok> 返回 {length} "
            "字节的记录"
            + (f"，其格式为配置的 TLV 记录 1（标签 {tlv[0]:02X} = 数据项 {tlv[0]}，"
               f"长度 {tlv[1]:02X}）。" if tlv else "。"),
            applicability="t0_get_response", expected_sw=(f"bytes_available:{length:02X}", "ok"),
        )
        def record(ctx: CaseContext, path: str = free, length: int = length) -> None:
            ctx.select(path)
            data = _get_response(ctx, read_record(ctx, 1, le=length, raw=True),
                                 msg("what.cmd.read_record_1_of", path=path), length)
            framing = _tlv_framing(ctx.profile, path)
            if framing is not None:
                ctx.check(data[:2] == framing,
                          msg("value.get_response_tlv", got=data[:2].hex().upper(), path=path,
                              item=framing[0], expected=framing.hex().upper()),
                          expected=framing.hex().upper(), measured=data[:2].hex().upper())

    if photo is not None:
        want = min(T0_BINARY_LE, profile.file(photo).size or 0)

        @make(
            out, "CMD-T0-003", "CMD", "T=0 下 READ BINARY 的取响应",
            "GET RESPONSE after READ BINARY under T=0", clause,
            f"READ BINARY of {photo} at offset 0 sent raw with Le {T0_BINARY_LE:02X} answers "
            f"<sw:bytes_available:{want:02X}> (the file has {profile.file(photo).size} bytes); GET "
            "RESPONSE "
            f"{want:02X} returns {want} bytes and <sw:ok>.",
            purpose_zh=f"以 Le {T0_BINARY_LE:02X} 直接发送 {photo} 偏移 0 的读二进制应答 <sw:bytes"
                       "_av"
                       f"ailable:{want:02X}>（文件为 {profile.file(photo).size} 字节）；GET RES"
                       f"PONSE {want:02X} 以 <sw:ok> 返回 {want} 字节。",
            applicability="t0_get_response", expected_sw=(f"bytes_available:{want:02X}", "ok"),
            preconditions="card reset; read right of the file granted",
        )
        def binary(ctx: CaseContext, path: str = photo, want: int = want) -> None:
            grant(ctx, path)
            _get_response(ctx, read_binary(ctx, 0, le=T0_BINARY_LE, raw=True),
                          msg("what.cmd.read_binary_of_at_0",
                              path=path, le=f"{T0_BINARY_LE:02X}"), want)


# --------------------------------------------------------------------------- catalogue


def cases(profile: CardProfile) -> list[Case]:
    out: list[Case] = []
    _class_cases(profile, out)
    _ins_cases(profile, out)
    _p1p2_cases(profile, out)
    _lc_cases(profile, out)
    _extended_cases(profile, out)
    _record_cases(profile, out)
    _binary_cases(profile, out)
    _select_cases(profile, out)
    _structure_cases(profile, out)
    _no_ef_cases(profile, out)
    _order_cases(profile, out)
    _challenge_cases(profile, out)
    _t0_cases(profile, out)
    return out

