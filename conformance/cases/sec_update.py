"""SEC-UPD and SEC-SEP: update rights, secure messaging and key separation (REFERENCE.md §1,
§3, §4, §5), generated for every updatable file of the profile.

Files updated by secure messaging (TLV files): without the update key, even a good SM update
is refused (6982); with it, a plain UPDATE RECORD is refused (6982: SM is required), a wrong
MAC is refused (6988), a TLV whose tag or length does not fit the record is refused (6A80),
and a correct SM update writes (read back, then the record is restored).

Files updated in plain (photo, EE/ED, cyclic files) and index files: without their key,
with only the read right, the update (or mark / erase) is refused (6982); an SM update of a
file that is not a TLV file is refused as incompatible with its structure (6981).

Key separation: every other update key of the same DF, and the update key of another DF, does
not open the file's update (6982), while its declared key does; the two DF03 keys split mark
and erase between them.

Every write a case makes writes back bytes the file already holds, or is undone afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

from conformance.apdu import sw_hex
from conformance.cases.common import make, slug, sw_choice
from conformance.cases.framework import Case, CaseContext, Inconclusive
from conformance.cases.sec_kit import (
    CLAUSE_SEPARATION,
    CLAUSE_UPDATE,
    CRYPTO_CHOICE,
    GROUP,
    PROBE_BYTES,
    Probe,
    Sec,
    changed_value,
    choices,
)
from conformance.iso7816 import RECORD_P2_BY_NUMBER
from conformance.messages import msg
from conformance.model.profile import CardProfile
from conformance.model.schema import KeyUse, Structure, UpdateMode
from conformance.model.tree import df_of, index_flags

Body = Callable[[CaseContext], None]


OPERATION_ZH = {"mark": "标记", "erase": "擦除"}

def _sm_state(sec: Sec, path: str) -> bytes:
    """Read record 1 (read key), then take the update key: the state of the SM cases."""
    original = sec.current_record(path, 1)
    sec.grant(sec.profile.file(path).access.update or "")
    sec.go(path)
    return original


# --------------------------------------------------------------------------- SM (TLV) files


def _sm_without_update_key(path: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        original = sec.current_record(path, 1)  # with the read key only
        sec.go(path)
        sec.expect_refused(sec.sm_update(path, 1, original),
                           msg("what.sec_update.sm_update_of_good_mac",
                               path=path, update=ctx.profile.file(path).access.update))

    return body


def _plain_update_of_tlv(path: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        original = _sm_state(sec, path)
        command = ctx.apdu("update_record", 1, RECORD_P2_BY_NUMBER, original)
        sec.expect_refused(ctx.send(command),
                           msg("what.sec_update.plain_update_record_of_with",
                               path=path, update=ctx.profile.file(path).access.update))

    return body


def _sm_refused(path: str, variant: str) -> Body:
    """An SM update the card must refuse without writing: wrong MAC, or a good MAC over a TLV
    whose tag or length does not fit the record."""

    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        profile = ctx.profile
        item = profile.file(path).items[0]
        length = profile.item(item).length  # the TLV is built from the profile, not the card
        original = _sm_state(sec, path)
        value = original[2:].ljust(length, b"\x00")[:length]
        with ctx.restoring(msg("what.sec_state.record_1_of",
                               path=path), lambda: sec.put_back_record(path, original)):
            if variant == "mac":
                tlv = bytes([item, length]) + changed_value(profile, item, value)
                response = sec.sm_update(path, 1, tlv, bad_mac=True)
                ctx.expect_sw(response, "wrong_mac", what=msg("what.sec_update.sm_update_of_with_a",
                                                              path=path))
            elif variant == "tag":
                items = profile.file(path).items
                other = next((n for n in items if n != item), item - 1 if item > 1 else item + 1)
                tlv = bytes([other, length]) + value
                response = sec.sm_update(path, 1, tlv)
                ctx.expect_sw(response, "wrong_data",
                              what=msg("what.sec_update.sm_update_of_record_1_2",
                                       path=path, item=item, tag=f"{other:02X}"))
            else:
                tlv = bytes([item, length - 1]) + value[:-1]
                response = sec.sm_update(path, 1, tlv)
                ctx.expect_sw(response, "wrong_data",
                              what=msg("what.sec_update.sm_update_of_record_1_3",
                                       path=path, length=f"{length - 1:02X}",
                                       expected=f"{length:02X}"))
            now = sec.record_now(1)
            ctx.check(now == original,
                      msg("state.refused_sm_changed", path=path,
                          got=now.hex().upper() if now else msg("value.unreadable")),
                      expected=original.hex().upper(),
                      measured=now.hex().upper() if now else "unreadable")

    return body


def _sm_writes(path: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        profile = ctx.profile
        item = profile.file(path).items[0]
        length = profile.item(item).length
        original = _sm_state(sec, path)
        value = original[2:].ljust(length, b"\x00")[:length]
        changed = bytes([item, length]) + changed_value(profile, item, value)
        with ctx.restoring(msg("what.sec_state.record_1_of",
                               path=path), lambda: sec.put_back_record(path, original)):
            sec.expect_ok(sec.sm_update(path, 1, changed),
                          msg("what.sec_update.sm_update_of_record_1",
                              path=path, update=profile.file(path).access.update))
            now = sec.record_now(1)
            ctx.check(now == changed,
                      msg("state.sm_not_written", path=path,
                          got=now.hex().upper() if now else msg("value.unreadable"),
                          expected=changed.hex().upper()),
                      expected=changed.hex().upper(),
                      measured=now.hex().upper() if now else "unreadable")

    return body


# --------------------------------------------------------------------------- plain and index files


def _plain_with_read_key_only(path: str, right: str) -> Body:
    """The file's update (or mark / erase) operation with only its read key: 6982."""

    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        family = getattr(ctx.profile.file(path).access, right)
        probe = sec.probe(family, path, right)  # reads with the read key
        sec.go(path)
        undo = (lambda: sec.undo_mark(path, probe.record)) if right == "mark" else _noop
        with ctx.restoring(msg("what.sec_update.index_record_of",
                               record=probe.record, path=path), undo):
            sec.expect_refused(sec.run(probe, select=False),
                               msg("what.sec_update.with_only_granted",
                                   probe=probe.describe(), read=ctx.profile.file(path).access.read))

    return body


def _noop() -> None:
    return None


def _sm_on_non_tlv(path: str, right: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        profile = ctx.profile
        ef = profile.file(path)
        family = getattr(ef.access, right)
        if ef.structure is Structure.TRANSPARENT:
            with ctx.precondition(msg("what.sec_kit.read_the_first_bytes_of", path=path)):
                payload = ctx.session.read_binary(path, 0, PROBE_BYTES)
        else:
            payload = sec.current_record(path, 1)
        sec.grant(family)
        sec.go(path)
        response = sec.sm_update(path, 1, payload)
        ctx.expect_sw(response, "incompatible_file_structure",
                      what=msg("what.sec_update.sm_update_record_of_file",
                               command=ctx.profile.command_text('update_record_sm'),
                               structure=ef.structure, path=path, family=family))

    return body


# --------------------------------------------------------------------------- separation


def _other_key_refused(path: str, other: str) -> Body:
    """Another update key does not open the file's update; its declared key does."""

    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        declared = ctx.profile.file(path).access.update or ""
        probe = sec.probe(declared, path, "update")
        sec.grant(other)
        sec.go(path)
        sec.expect_refused(sec.run(probe, select=False),
                           msg("what.sec_update.with_granted_instead_in",
                               probe=probe.describe(), other=other, df=ctx.profile.key(other).df))
        sec.grant(declared)
        sec.expect_ok(sec.run(probe), msg("what.sec_update.with_granted",
                                          probe=probe.describe(), declared=declared))

    return body


def _index_split(path: str, family: str) -> Body:
    """``family`` does its own index operation and not the other one."""

    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        access = ctx.profile.file(path).access
        own = "mark" if family == access.mark else "erase"
        other_right = "erase" if own == "mark" else "mark"
        n = sec.free_index_record(path)
        used, free = index_flags(ctx.profile, path)
        sec.grant(family)
        sec.go(path)
        mark = Probe(family, path, "mark", record=n)
        erase = Probe(family, path, "erase", record=n)
        with ctx.restoring(msg("what.sec_update.index_record_of_2",
                               n=n, path=path), lambda: sec.undo_mark(path, n)):
            if own == "mark":
                sec.expect_ok(sec.run(mark, select=False),
                              msg("what.sec_update.mark_record_of_with", n=n, path=path,
                                  family=family))
                sec.expect_refused(sec.run(erase, select=False),
                                   msg("what.sec_update.erase_record_of_with_needs",
                                       n=n, path=path, family=family, erase=access.erase))
            else:
                sec.expect_refused(sec.run(mark, select=False),
                                   msg("what.sec_update.mark_record_of_with_needs",
                                       n=n, path=path, family=family, mark=access.mark))
                sec.expect_ok(sec.run(erase, select=False),
                              msg("what.sec_update.erase_free_record_of_with",
                                  n=n, path=path, family=family))
            now = sec.record_now(n)
            if now is None:
                raise Inconclusive(msg("precondition.unreadable_after", n=n, path=path,
                                       operation=msg(f"op.{other_right}")))
            expected = used if own == "mark" else free
            ctx.check(now == expected,
                      msg("state.separation", n=n, path=path, got=now.hex().upper(),
                          own=msg(f"op.{own}"), family=family, other=msg(f"op.{other_right}"),
                          expected=expected.hex().upper()),
                      expected=expected.hex().upper(), measured=now.hex().upper())

    return body


def _cross_df_update_key(profile: CardProfile, df: str) -> str | None:
    """The update key of a neighbouring DF (a child first, else the parent)."""
    spec = profile.df(df)
    order = [n for n, d in profile.dfs.items() if d.parent == df] + [spec.parent]
    for other in order:
        for name, key in profile.keys.items():
            if key.df == other and key.use is KeyUse.UPDATE and key.kid is not None:
                return name
    return None


# --------------------------------------------------------------------------- catalogue


def cases(profile: CardProfile) -> list[Case]:
    out: list[Case] = []
    ok = sw_hex(profile.sw("ok"))
    refused = sw_hex(profile.sw("security_not_satisfied"))
    wrong_mac = sw_hex(profile.sw("wrong_mac"))
    wrong_data = sw_hex(profile.sw("wrong_data"))
    incompatible = sw_hex(profile.sw("incompatible_file_structure"))
    for path, ef in profile.files.items():
        s = slug(path)
        df = df_of(path)
        access = ef.access
        read = access.read
        if access.update_mode is UpdateMode.SM and access.update is not None:
            uk = access.update
            item = ef.items[0]
            make(out, f"SEC-UPD-{s}-001", GROUP,
                 f"无 {uk} 时 {path} 的安全报文更新被拒绝",
                 f"An SM update of {path} without {uk} is refused",
                 CLAUSE_UPDATE,
                 f"With only the read right ({read}), an SM update of record 1 of {path} with "
                 f"a good MAC answers {refused}.",
                 purpose_zh=f"仅有读权限（{read}）时，以正确 MAC 安全报文更新 {path} 的记录 1 应答"
                            f" {refused}。",
                 expected_sw=("security_not_satisfied",), severity="blocker",
                 preconditions=f"{read} authenticated in {df} (or free read)",
                 reference_choice=choices(sw_choice("security_not_satisfied"), CRYPTO_CHOICE),
            )(_sm_without_update_key(path))
            make(out, f"SEC-UPD-{s}-002", GROUP,
                 f"{path} 明文 UPDATE RECORD 被拒绝（须安全报文）",
                 f"A plain UPDATE RECORD of {path} is refused (SM required)",
                 CLAUSE_UPDATE,
                 f"With {uk} granted, a plain UPDATE RECORD (<cmd:update_record> 01 04) of {path} "
                 "answers "
                 f"{refused}: TLV files change only under secure messaging.",
                 purpose_zh=f"已获 {uk} 时，明文 UPDATE RECORD（<cmd:update_record> 01 04）{path}"
                            f" 应答 {refused}：TLV 文件只能以安全报文修改。",
                 expected_sw=("security_not_satisfied",), severity="blocker",
                 preconditions=f"{read} and {uk} authenticated in {df}",
                 reference_choice=choices(sw_choice("security_not_satisfied"), CRYPTO_CHOICE),
            )(_plain_update_of_tlv(path))
            make(out, f"SEC-UPD-{s}-003", GROUP,
                 f"{path} MAC 错误的安全报文更新被拒绝",
                 f"An SM update of {path} with a wrong MAC is refused",
                 CLAUSE_UPDATE,
                 f"With {uk} granted, an SM update of record 1 of {path} whose MAC is wrong "
                 f"answers {wrong_mac} and leaves the record unchanged.",
                 purpose_zh=f"已获 {uk} 时，MAC 错误的 {path} 记录 1 安全报文更新应答 {wrong_mac}"
                            "，记录不变。",
                 expected_sw=("wrong_mac",), severity="blocker",
                 preconditions=f"{read} and {uk} authenticated in {df}",
                 reference_choice=choices(sw_choice("wrong_mac"), CRYPTO_CHOICE),
            )(_sm_refused(path, "mac"))
            make(out, f"SEC-UPD-{s}-004", GROUP,
                 f"{path} 正确的安全报文更新成功",
                 f"A correct SM update of {path} writes",
                 CLAUSE_UPDATE,
                 f"With {uk} granted, a correct SM update of record 1 (item {item}) of {path} "
                 f"answers {ok} and the record reads back as written; it is restored after.",
                 purpose_zh=f"已获 {uk} 时，正确的 {path} 记录 1（数据项 {item}）安全报文更新应答 "
                            f"{ok}，记录读回与写"
                            "入一致；之后被恢复。",
                 expected_sw=("ok",), severity="critical",
                 preconditions=f"{read} and {uk} authenticated in {df}",
                 reference_choice=CRYPTO_CHOICE,
            )(_sm_writes(path))
            make(out, f"SEC-UPD-{s}-005", GROUP,
                 f"{path} 标签不符的安全报文更新返回 {wrong_data}",
                 f"An SM update of {path} with a tag that does not fit answers {wrong_data}",
                 CLAUSE_UPDATE,
                 f"A good MAC over a TLV whose tag is not item {item} (record 1 of {path}) "
                 f"answers {wrong_data} and does not write.",
                 purpose_zh=f"标签不是数据项 {item} 的 TLV（{path} 的记录 1）即使 MAC 正确也应答 "
                            f"{wrong_data}"
                            "，且不写入。",
                 expected_sw=("wrong_data",), severity="critical",
                 preconditions=f"{read} and {uk} authenticated in {df}",
                 reference_choice=choices(sw_choice("wrong_data"), CRYPTO_CHOICE),
            )(_sm_refused(path, "tag"))
            make(out, f"SEC-UPD-{s}-006", GROUP,
                 f"{path} 长度不符的安全报文更新返回 {wrong_data}",
                 f"An SM update of {path} with a length that does not fit answers {wrong_data}",
                 CLAUSE_UPDATE,
                 f"A good MAC over a TLV of item {item} one byte shorter than the item "
                 f"(record 1 of {path}) answers {wrong_data} and does not write.",
                 purpose_zh=f"比数据项 {item} 短 1 字节的 TLV（{path} 的记录 1）即使 MAC 正确也应"
                            f"答 {wrong_data}"
                            "，且不写入。",
                 expected_sw=("wrong_data",), severity="critical",
                 preconditions=f"{read} and {uk} authenticated in {df}",
                 reference_choice=choices(sw_choice("wrong_data"), CRYPTO_CHOICE),
            )(_sm_refused(path, "length"))
        else:
            # plain updates, and index files' mark / erase
            for number, right in enumerate(("update", "mark", "erase"), start=1):
                family = getattr(access, right)
                if family is None:
                    continue
                operation = {
                    "update": "UPDATE BINARY" if ef.structure is Structure.TRANSPARENT
                    else "UPDATE RECORD",
                    "mark": "mark (<cmd:mark_record>)",
                    "erase": "erase (<cmd:erase_record>)",
                }[right]
                verb = {"update": "更新", "mark": "标记", "erase": "擦除"}[right]
                make(out, f"SEC-UPD-{s}-{number:03d}", GROUP,
                     f"仅有读权限时 {path} 的{verb}被拒绝",
                     f"{operation} of {path} with only its read right is refused",
                     CLAUSE_UPDATE,
                     f"With only {read} granted, {operation} of {path} (writing back what it "
                     f"holds, or on a free index record) answers {refused}: it needs {family}.",
                     purpose_zh=f"仅获 {read} 时，对 {path} 执行{verb}（写回其现有内容，或针"
                                "对空闲索引记录"
                                f"）应答 {refused}：需要 {family}。",
                     expected_sw=("security_not_satisfied",), severity="blocker",
                     preconditions=f"{read} authenticated in {df}",
                     reference_choice=choices(sw_choice("security_not_satisfied"), CRYPTO_CHOICE),
                )(_plain_with_read_key_only(path, right))
            key_right = "update" if access.update is not None else "mark"
            make(out, f"SEC-UPD-{s}-004", GROUP,
                 f"{path} 非 TLV 文件的安全报文更新返回 {incompatible}",
                 f"An SM update of non-TLV file {path} answers {incompatible}",
                 CLAUSE_UPDATE,
                 f"With {getattr(access, key_right)} granted, SM UPDATE RECORD "
                 "(<cmd:update_record_sm>) of "
                 f"{path} ({ef.structure}) answers {incompatible}: secure messaging is for TLV "
                 "files only.",
                 purpose_zh=f"已获 {getattr(access, key_right)} 时，对 {path}（{ef.structure}"
                            "）执行安全报文 UPDATE RECORD（<cmd:update_record_sm>）应答 "
                            f"{incompatible}"
                            "：安全报文只用于 TLV 文件。",
                 expected_sw=("incompatible_file_structure",), severity="normal",
                 preconditions=f"{getattr(access, key_right)} authenticated in {df}",
                 reference_choice=choices(sw_choice("incompatible_file_structure"), CRYPTO_CHOICE),
            )(_sm_on_non_tlv(path, key_right))
        # key separation
        number = 0
        if access.update is not None:
            others = [
                name for name, key in profile.keys.items()
                if key.df == df and key.use is KeyUse.UPDATE and key.kid is not None
                and name != access.update
            ]
            cross = _cross_df_update_key(profile, df)
            for other in [*others, *([cross] if cross else [])]:
                number += 1
                where = profile.key(other).df
                make(out, f"SEC-SEP-{s}-{number:03d}", GROUP,
                     f"{other} 不能更新 {path}",
                     f"{other} does not open the update of {path}",
                     CLAUSE_SEPARATION,
                     f"With {other} granted (in {where}), updating {path} answers {refused}; "
                     f"with its declared key {access.update} it answers {ok}. The write puts "
                     "back what the file holds.",
                     purpose_zh=f"已获 {other}（在 {where} 中）时更新 {path} 应答 {refused}；以其"
                                "规定密钥"
                                f" {access.update} 更新应答 {ok}。写入的是文件现有的内容。",
                     expected_sw=("security_not_satisfied", "ok"), severity="blocker",
                     preconditions=f"{read} authenticated in {df} to read what to write back",
                     reference_choice=choices(sw_choice("security_not_satisfied"), CRYPTO_CHOICE),
                )(_other_key_refused(path, other))
        for family in dict.fromkeys(f for f in (access.mark, access.erase) if f):
            number += 1
            own = "mark" if family == access.mark else "erase"
            other_right = "erase" if own == "mark" else "mark"
            make(out, f"SEC-SEP-{s}-{number:03d}", GROUP,
                 f"{family} 只能{'标记' if own == 'mark' else '擦除'} {path} 的索引记录",
                 f"{family} can {own} but not {other_right} index records of {path}",
                 CLAUSE_SEPARATION,
                 f"With {family} granted, {own} of a free record of {path} answers {ok} and "
                 f"{other_right} of it answers {refused}; the record is left free afterwards.",
                 purpose_zh=f"已获 {family} 时，对 {path} 的空闲记录执行{OPERATION_ZH[own]}应答 "
                            f"{ok}，执行{OPERATION_ZH[other_right]}应答 {refused}；之后记录恢复为"
                            "空闲。",
                 expected_sw=("ok", "security_not_satisfied"), severity="blocker",
                 preconditions=f"{read} authenticated in {df}; a free index record",
                 reference_choice=choices(sw_choice("security_not_satisfied"), CRYPTO_CHOICE),
            )(_index_split(path, family))
    return out
