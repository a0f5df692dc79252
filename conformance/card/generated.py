"""Faults generated from the profile, where the rule they break is generic (as the cases are).

For every TLV item: its length byte one short (DATA-TLV), its value mis-coded (DATA-COD) and,
when it has value rules, a value that breaks the first (DATA-VAL). For every EF: one record
fewer or one byte smaller (FS-…-003), another structure (FS-…-002), and for each protected
right that right made free (SEC-RD / SEC-UPD), or a free read made protected. All are data
(:mod:`conformance.card.faults` deviations); none needs a line of card code.
"""

from __future__ import annotations

import dataclasses
import re

from conformance.card.faults import (
    GROUPS,
    AccessOverride,
    Fault,
    ItemValue,
    LayoutChange,
    RecordPatch,
)
from conformance.model.profile import CardProfile
from conformance.model.schema import Structure

__all__ = ["generated"]

SIZE_BREAKS = ("CMD", "REC")
"""A transparent file a byte short: READ BINARY ranges (CMD) and the EE/ED records (REC)."""
RECORDS_BREAKS = ("CMD", "CYC", "DATA", "IDX", "SEC")
"""A record file a record short: its readers (CMD, DATA) and writers (SEC, CYC, IDX)."""
STRUCTURE_BREAKS = ("CMD", "CYC", "DATA", "IDX", "REC", "SEC")
"""A file of another structure: every command on it."""
RIGHT_BREAKS = ("CMD", "REC")
"""A right made free: the check-order cases (CMD) and the EE/ED rights cases (REC)."""

def _slug(path: str) -> str:
    return path.replace("/", "-")


def _item_breaks(profile: CardProfile, number: int, *extra: str) -> tuple[str, ...]:
    """Groups besides DATA a broken item record can fail: the city-code item feeds every
    level-2 key (so every group that authenticates); the others the SM updates of SEC that
    rewrite their record, and ``extra`` groups."""
    if "code:city" in profile.item(number).rules:
        return GROUPS
    return ("SEC", *extra)


def _bad_code(profile: CardProfile, table_name: str, width: int, digits: bool) -> str | None:
    """A value of ``width`` characters (or fewer) that code table ``table_name`` rejects."""
    table = profile.spec.code_tables[table_name]
    alphabet = "9876543210" if digits else "ZYXWVUTSRQ9876543210"
    for size in range(width, 0, -1):
        for ch in alphabet:
            candidate = ch * size
            if table.values is not None and candidate not in table.values:
                return candidate
            if table.pattern is not None and not re.search(table.pattern, candidate):
                return candidate
    return None


def _bad_value(profile: CardProfile, number: int) -> tuple[str, str] | None:
    """(rule, a value the item's coding can hold but its first value rule rejects)."""
    item = profile.item(number)
    rule = item.rules[0]
    kind, _, table = rule.partition(":")
    coding = str(item.coding)
    width = 2 * item.length if coding == "CN" else item.length
    if coding == "B":
        width = 2 * item.length
    bad: str | None
    if rule == "date":
        bad = "20230231"  # 31 February
    elif rule == "digits":
        bad = None if coding == "CN" else ("1A" * width)[:width]
    elif rule == "id_number":
        bad = "0" * 18  # address code 000000 and birth date 00000000: no resident ID number
    elif rule == "phone":
        bad = None if coding == "CN" else "tel"[:width]
    elif kind == "code":
        bad = _bad_code(profile, table, width, digits=coding in ("CN", "B"))
    else:
        bad = None
    return None if bad is None else (rule, bad)


def _data_faults(profile: CardProfile) -> list[Fault]:
    out: list[Fault] = []
    for number in profile.tlv_items():
        item = profile.item(number)
        place = profile.place(number)
        assert place.record is not None
        length = item.length
        where = f"{place.path} record {place.record}"
        where_zh = f"{place.path} 第 {place.record} 条记录"
        label_en, label_zh = f"item {number} ({item.en})", f"数据项 {number}（{item.zh}）"
        breaks = _item_breaks(profile, number)
        # CMD-T0 judges a record's tag and length against the profile
        tlv_breaks = _item_breaks(profile, number, "CMD")
        out.append(Fault(
            f"data_tlv_len_{number:03d}", "DATA",
            f"The TLV length byte of {label_en} in {where} is {length - 1:02X} instead of "
            f"{length:02X}.",
            f"{where_zh}中{label_zh}的 TLV 长度字节为 {length - 1:02X} 而非 {length:02X}。",
            "§1 TLV records (len = the item's fixed length)",
            aim=(f"DATA-TLV-{number:03d}",), also_breaks=tlv_breaks,
            deviation=RecordPatch(place.path, place.record, offset=1, data=f"{length - 1:02X}"),
        ))
        coding = str(item.coding)
        coding_breaks = breaks
        if coding == "CN":
            patch = RecordPatch(place.path, place.record, offset=2, data="F1")
            en, zh = "has a digit after its F padding (F1…)", "在 F 填充之后仍有数字（F1…）"
        elif coding == "AN":
            patch = RecordPatch(place.path, place.record, offset=2, data="FF")
            en, zh = "starts with byte FF, which is not GBK text", "以非 GBK 字节 FF 开头"
        else:
            patch = RecordPatch(place.path, place.record, cut=1)
            en, zh = "is one byte short (the record ends early)", "少一个字节（记录提前结束）"
            coding_breaks = _item_breaks(profile, number, "CMD", "FS")  # record lengths
        out.append(Fault(
            f"data_coding_{number:03d}", "DATA",
            f"The {coding} value of {label_en} in {where} {en}.",
            f"{where_zh}中{label_zh}的 {coding} 值{zh}。",
            f"§1 codings ({coding})",
            aim=(f"DATA-COD-{number:03d}",), also_breaks=coding_breaks, deviation=patch,
        ))
        bad = _bad_value(profile, number) if item.rules else None
        if bad is not None:
            rule, value = bad
            out.append(Fault(
                f"data_value_{number:03d}", "DATA",
                f"{label_en.capitalize()} is personalised as {value!r}, which breaks its rule "
                f"{rule}.",
                f"{label_zh}个人化为 {value!r}，不符合取值规则 {rule}。",
                f"profile items.{number}.rules ({rule}); evidence §3.1",
                aim=(f"DATA-VAL-{number:03d}",), also_breaks=breaks,
                deviation=ItemValue(number, value),
            ))
    return out


def _file_faults(profile: CardProfile) -> list[Fault]:
    out: list[Fault] = []
    for path, ef in profile.files.items():
        sid = _slug(path)
        name = sid.lower().replace("-", "_")
        structure = ef.structure
        # A file of another shape fails the cases that read it whole (CMD, DATA), write it (SEC,
        # CYC, IDX) or hold records in it (REC); declared per kind below.
        if structure is Structure.TRANSPARENT:
            size = ef.size or 0
            out.append(Fault(
                f"fs_size_{name}", "FS",
                f"{path} is {size - 1} bytes instead of {size}.",
                f"{path} 为 {size - 1} 字节而非 {size} 字节。",
                f"§1 {path}", aim=(f"FS-{sid}-003",), also_breaks=SIZE_BREAKS,
                deviation=LayoutChange(path, size=size - 1),
            ))
            other = Structure.LINEAR_FIXED
        else:
            count = profile.record_count(path)
            out.append(Fault(
                f"fs_records_{name}", "FS",
                f"{path} has {count - 1} records instead of {count} (the last is missing).",
                f"{path} 只有 {count - 1} 条记录而非 {count} 条（缺最后一条）。",
                f"§1 {path}", aim=(f"FS-{sid}-003",), also_breaks=RECORDS_BREAKS,
                deviation=LayoutChange(path, records=count - 1),
            ))
            other = Structure.TRANSPARENT
        out.append(Fault(
            f"fs_structure_{name}", "FS",
            f"{path} is a {other} file instead of {structure}.",
            f"{path} 的文件结构为 {other} 而非 {structure}。",
            f"§1 {path}", aim=(f"FS-{sid}-002",), also_breaks=STRUCTURE_BREAKS,
            deviation=LayoutChange(path, structure=other),
        ))
        if ef.access.read == "free":
            key = _read_key_of(profile, path.partition("/")[0])
            if key is not None:
                out.append(Fault(
                    f"sec_read_protected_{name}", "SEC",
                    f"{path} (read right free) can be read only with {key}.",
                    f"{path}（读权限为自由）只有在 {key} 认证后才能读取。",
                    "§1 read rights", aim=(f"SEC-RD-{sid}-*",),
                    also_breaks=GROUPS,  # every case reading the file freely (card number, …)
                    deviation=AccessOverride(path, "read", key),
                ))
        for right in ("read", "update"):
            key = getattr(ef.access, right)
            if key in (None, "free"):
                continue
            verb_en, verb_zh = ("read", "读取") if right == "read" else ("updated", "更新")
            family = "RD" if right == "read" else "UPD"
            out.append(Fault(
                f"sec_{right}_free_{name}", "SEC",
                f"{path} can be {verb_en} without {key} (its {right} right is free).",
                f"{path} 无需 {key} 即可{verb_zh}（{right} 权限为自由）。",
                f"§1 {right} rights, §3", aim=(f"SEC-{family}-{sid}-*",),
                also_breaks=RIGHT_BREAKS,
                deviation=AccessOverride(path, right, "free"),
            ))
    return out


def _read_key_of(profile: CardProfile, df: str) -> str | None:
    """The first read key (use ``read``) of a DF, or None."""
    return next((n for n, k in profile.keys.items() if k.df == df and k.use == "read"), None)


def generated(profile: CardProfile, hand: list[Fault]) -> list[Fault]:
    """The profile's generic faults, less those a hand-written row already declares."""
    declared = {f.deviation for f in hand if f.deviation is not None}
    made = (*_data_faults(profile), *_file_faults(profile))
    return [dataclasses.replace(f, generated=True) for f in made if f.deviation not in declared]


