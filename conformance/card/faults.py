"""The defect catalogue: named, small deviations from REFERENCE.md the virtual card can carry.

A conformance suite is only as good as the defects it catches. Each fault is one explicit
departure from the reference profile, aimed at the cases written to catch it (``aim``:
case-ID patterns), so the kill matrix (:mod:`conformance.matrix`) can check that every case
catches some fault by its own expectation and every fault is caught where it is aimed.

Most faults are *data*: a declared :data:`Deviation` the card applies at one of a few points
(:mod:`conformance.card.deviations`), the way gematik's card images or emv-card-simulator's
``Fault`` rows describe a bad card:

- :class:`SwSubstitution` — a command answers a deviant status word where the reference
  answers a named one (applied to every answer of the card OS);
- :class:`Refusal` — a command with a given P2 is refused outright (a parameter the card
  does not support);
- :class:`RecordPatch` — bytes of a personalised record overwritten, or the record cut short
  (TLV tag/length faults, coding faults);
- :class:`AccessOverride` — a file's access rule for one right names another key or ``free``;
- :class:`LayoutChange` — a file's record count, record length, size or structure differs, or
  the file is missing;
- :class:`ItemValue` — the personalization writes another value for an item (value-rule
  faults); the card keys still come from the true personalization.

Behaviour that no table can express (a constant challenge, rights surviving a reset, …) is a
named *hook*: a fault without a deviation, asked about at one visible place in the card's code
(``faults.active("constant_challenge")``).

Besides the hand-written rows, :func:`fault_catalogue` generates faults from the profile where
the rule is generic, as the cases are generated: one TLV-length and one coding fault per TLV
item, one value fault per item with value rules, one record-count and one structure fault per
EF, one read-right and one update-right fault per protected EF.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, Any

from conformance.model.schema import Structure

if TYPE_CHECKING:
    from conformance.model.profile import CardProfile

__all__ = [
    "ALSO_BREAKS",
    "GROUPS",
    "AccessOverride",
    "Deviation",
    "Fault",
    "FaultSet",
    "ItemValue",
    "LayoutChange",
    "RecordPatch",
    "Refusal",
    "SwSubstitution",
    "check_fault_names",
    "fault_catalogue",
]

GROUPS = ("ATR", "CMD", "FS", "DATA", "SEC", "CYC", "IDX", "REC", "PIN")
"""Fault groups, in the order of the conformance case groups that should catch them."""


# --------------------------------------------------------------------------- deviations


@dataclass(frozen=True)
class SwSubstitution:
    """Answer ``deviant`` where the reference answers status word ``reference`` (a profile
    status-word name; a one-byte entry such as ``wrong_le`` matches SW1) to ``commands``
    (profile command names; every answer when empty)."""

    reference: str
    deviant: str
    commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refusal:
    """``command`` with this P2 is refused with status word ``answer`` (a profile name)
    before the card looks at anything else."""

    command: str
    p2: int
    answer: str


@dataclass(frozen=True)
class RecordPatch:
    """After personalization, record ``record`` of ``file`` holds ``data`` (hex) at ``offset``
    and loses its last ``cut`` bytes."""

    file: str
    record: int
    offset: int = 0
    data: str = ""
    cut: int = 0


@dataclass(frozen=True)
class AccessOverride:
    """The access rule of ``file`` for ``right`` (read, update, mark, erase) is ``key`` (a key
    family or ``free``) instead of the profile's."""

    file: str
    right: str
    key: str


@dataclass(frozen=True)
class LayoutChange:
    """``file`` is missing, or has another record count, record length, size or structure."""

    file: str
    records: int | None = None
    record_length: int | None = None
    size: int | None = None
    structure: Structure | None = None
    missing: bool = False


@dataclass(frozen=True)
class ItemValue:
    """The personalization writes ``value`` for item ``item`` (the keys keep the true one)."""

    item: int
    value: str


Deviation = SwSubstitution | Refusal | RecordPatch | AccessOverride | LayoutChange | ItemValue
KINDS: dict[type, str] = {SwSubstitution: "status_word", Refusal: "refusal",
                          RecordPatch: "record",
                          AccessOverride: "access", LayoutChange: "layout", ItemValue: "item"}


@dataclass(frozen=True)
class Fault:
    """One named deviation from the reference profile.

    ``reference`` names the clause of REFERENCE.md it breaks; ``aim`` the case-ID patterns
    (fnmatch) of the cases written to catch it; ``also_breaks`` the other groups whose cases it
    may make FAIL; ``deviation`` the declared data the card applies (None: a named hook, with
    ``target``/``value`` the numbers the hook uses); ``requires`` the ICS feature a product must
    declare for the deviation to be observable (e.g. ``pin``).
    """

    name: str
    group: str
    description_en: str
    description_zh: str
    reference: str
    target: str = ""
    value: str = ""
    requires: str | None = None
    aim: tuple[str, ...] = ()
    deviation: Deviation | None = None
    also_breaks: tuple[str, ...] = ()
    generated: bool = False
    """Made from the profile by :func:`fault_catalogue` (not a hand-written row)."""

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"fault {self.name}: unknown group {self.group!r} (one of {GROUPS})")
        if not self.aim:
            raise ValueError(f"fault {self.name}: declares no aim (case-ID patterns)")
        unknown = sorted(set(self.also_breaks) - set(GROUPS))
        if unknown:
            raise ValueError(f"fault {self.name}: unknown also_breaks group(s) {unknown}")

    @property
    def kind(self) -> str:
        """``hook`` or the kind of its deviation (status_word, record, access, layout, item)."""
        return "hook" if self.deviation is None else KINDS[type(self.deviation)]

    def aims_at(self, case_id: str) -> bool:
        return any(fnmatch.fnmatchcase(case_id, pattern) for pattern in self.aim)

    @property
    def allowed_groups(self) -> frozenset[str]:
        """The groups whose cases may FAIL under this fault: its own and ``also_breaks``."""
        return frozenset({self.group, *self.also_breaks})

_HAND_WRITTEN = [
    # ---------------------------------------------------------------- ATR
    Fault("atr_wrong_card_number", "ATR",
          "The ATR carries a card-number factor other than the one the card keys are "
          "diversified with (its last byte inverted).",
          "复位应答中的卡号分散因子与密钥分散所用的不一致（末字节取反）。",
          "§2, §4 CardNo8",
          aim=("ATR-005",)),
    Fault("atr_wrong_t0_count", "ATR",
          "T0 announces one historical byte fewer than the ATR carries.",
          "T0 声明的历史字节数比实际少一个。",
          "§2",
          aim=("ATR-002", "ATR-003")),
    Fault("atr_inverse_ts", "ATR",
          "TS is 3F (inverse convention) instead of 3B.",
          "TS 为 3F（反向约定）而非 3B。",
          "§2", value="3F",
          aim=("ATR-001",)),
    Fault("atr_wrong_spec_year", "ATR",
          "The historical bytes carry the specification year 2012 instead of 2017.",
          "历史字节中的规范年份为 2012 而非 2017。",
          "§2", target="spec_year", value="2012",
          aim=("ATR-004",)),
    Fault("atr_unstable", "ATR",
          "The last historical byte changes at every reset, so the ATR is not stable.",
          "每次复位后历史字节末字节变化，复位应答不稳定。",
          "§2",
          aim=("ATR-004", "ATR-006")),
    # ---------------------------------------------------------------- CMD
    Fault("select_missing_6a87", "CMD",
          "SELECT of a missing file answers 6A87 instead of 6A82.",
          "选择不存在的文件返回 6A87 而非 6A82。",
          "§5 SELECT, 6A82",
          aim=("CMD-SEL-*",),
          deviation=SwSubstitution("file_not_found", "6A87", ("select",))),
    Fault("unknown_ins_6e00", "CMD",
          "An unknown INS is answered 6E00 instead of 6D00.",
          "不支持的 INS 返回 6E00 而非 6D00。",
          "§5 check order, 6D00",
          aim=("CMD-INS-*", "CMD-ORD-*"),
          deviation=SwSubstitution("ins_not_supported", "6E00")),
    Fault("unknown_cla_accepted", "CMD",
          "An unknown CLA is not checked: the command runs as if sent with its own class.",
          "不检查 CLA：未知 CLA 的命令按其正确类别执行。",
          "§5 check order, 6E00",
          aim=("CMD-CLA-*", "CMD-ORD-*")),
    Fault("wrong_p1p2_6b00", "CMD",
          "Wrong P1/P2 is answered 6B00 instead of 6A86.",
          "P1/P2 错误返回 6B00 而非 6A86。",
          "§5 check order, 6A86",
          aim=("CMD-P12-*", "CMD-ORD-*", "IDX-*-002"),
          deviation=SwSubstitution("wrong_p1p2", "6B00")),
    Fault("wrong_le_6700", "CMD",
          "A wrong Le is answered 6700 instead of 6Cxx with the right length.",
          "Le 错误返回 6700 而非 6Cxx。",
          "§5 READ RECORD / READ BINARY, 6Cxx",
          aim=("CMD-LE-*", "CMD-RB-*"),
          deviation=SwSubstitution("wrong_le", "6700")),
    Fault("read_binary_past_end_6a82", "CMD",
          "READ BINARY at or past the end of the file answers 6A82 instead of 6B00.",
          "READ BINARY 偏移量超出文件末尾返回 6A82 而非 6B00。",
          "§5 READ BINARY, 6B00",
          aim=("CMD-RB-*",),
          deviation=SwSubstitution("offset_beyond_end", "6A82", ("read_binary",))),
    Fault("missing_record_6a82", "CMD",
          "A record that does not exist is answered 6A82 instead of 6A83.",
          "记录不存在返回 6A82 而非 6A83。",
          "§5 READ RECORD, 6A83",
          aim=("CMD-REC-*", "IDX-*-003"),
          deviation=SwSubstitution("record_not_found", "6A82")),
    Fault("wrong_structure_6986", "CMD",
          "A command incompatible with the file structure is answered 6986 instead of 6981.",
          "命令与文件结构不相容返回 6986 而非 6981。",
          "§5 check order, 6981",
          aim=("CMD-STR-*", "CYC-NONCYCLIC-*", "SEC-UPD-*-004"),
          deviation=SwSubstitution("incompatible_file_structure", "6986")),
    Fault("no_current_ef_6a82", "CMD",
          "A file command with no current EF is answered 6A82 instead of 6986.",
          "无当前 EF 时返回 6A82 而非 6986。",
          "§5 check order, 6986",
          aim=("CMD-NOEF-*", "CMD-SEL-LKP-*"),
          deviation=SwSubstitution("no_current_ef", "6A82")),
    Fault("select_p2_0c_rejected", "CMD",
          "SELECT with P2 = 0C (no FCI) is answered 6A86.",
          "P2 = 0C 的 SELECT 返回 6A86。",
          "§5 SELECT",
          aim=("CMD-SEL-*-003",),
          deviation=Refusal("select", 0x0C, "wrong_p1p2")),
    Fault("select_any_ef", "CMD",
          "SELECT finds an EF of any DF, not only among the current DF's children.",
          "SELECT 可选中任意 DF 下的 EF，而不仅限于当前 DF 的子文件。",
          "§5 SELECT lookup order",
          aim=("CMD-SEL-*",)),
    Fault("get_challenge_any_le", "CMD",
          "GET CHALLENGE with Le other than 08 returns Le random bytes instead of 6700.",
          "GET CHALLENGE 的 Le 不为 08 时仍返回 Le 字节随机数，而非 6700。",
          "§5 GET CHALLENGE",
          aim=("CMD-CHAL-002",)),
    Fault("constant_challenge", "CMD",
          "GET CHALLENGE always returns the same 8 bytes.",
          "取随机数总是返回相同的 8 字节。",
          "§3 challenge, §4", value="1122334455667788",
          aim=("CMD-CHAL-001",)),
    Fault("challenge_small_pool", "CMD",
          "GET CHALLENGE cycles through a pool of 4 values, so challenges repeat.",
          "取随机数在 4 个值中循环，随机数重复出现。",
          "§3 challenge, §4", value="4",
          aim=("CMD-CHAL-001",)),
    Fault("get_response_broken", "CMD",
          "Under T=0, GET RESPONSE returns the pending data without its last byte.",
          "T=0 下 GET RESPONSE 返回的数据少最后一个字节。",
          "§5 61xx / GET RESPONSE, §6 t0_get_response", requires="t0_get_response",
          aim=("CMD-T0-*",)),
    # ---------------------------------------------------------------- FS
    Fault("select_p2_00_rejected", "FS",
          "SELECT with P2 = 00 is answered 6A86: files can be selected only with P2 = 0C.",
          "P2 = 00 的 SELECT 返回 6A86，只能以 P2 = 0C 选择文件。",
          "§5 SELECT; §1 files selectable by FID",
          aim=("FS-*-001",),
          deviation=Refusal("select", 0x00, "wrong_p1p2")),
    Fault("fs_df01_ef06_8_records", "FS",
          "DF01/EF06 has 8 records instead of 9 (the last item is missing).",
          "DF01/EF06 只有 8 条记录而非 9 条（缺最后一个数据项）。",
          "§1 DF01/EF06",
          aim=("FS-DF01-EF06-003",),
          deviation=LayoutChange("DF01/EF06", records=8)),
    Fault("fs_photo_3000", "FS",
          "The photo file DDF1/EF07 is 3000 bytes instead of 3072.",
          "照片文件 DDF1/EF07 为 3000 字节而非 3072 字节。",
          "§1 DDF1/EF07",
          aim=("FS-DDF1-EF07-003",),
          deviation=LayoutChange("DDF1/EF07", size=3000)),
    Fault("fs_ee02_missing", "FS",
          "The inpatient record file DF03/EE02 does not exist.",
          "住院信息文件 DF03/EE02 不存在。",
          "§1 DF03/EE01–EE03",
          aim=("FS-DF03-EE02-001",),
          deviation=LayoutChange("DF03/EE02", missing=True)),
    Fault("fs_df02_ef08_reclen_23", "FS",
          "DF02/EF08 has 23-byte records instead of 24.",
          "DF02/EF08 记录长度为 23 字节而非 24 字节。",
          "§1 DF02/EF08",
          aim=("FS-DF02-EF08-003",),
          deviation=LayoutChange("DF02/EF08", record_length=23)),
    Fault("fs_df03_ef06_transparent", "FS",
          "DF03/EF06 (outpatient index) is a transparent file instead of linear fixed.",
          "DF03/EF06（门诊索引）为透明文件而非定长记录文件。",
          "§1 DF03/EF06",
          aim=("FS-DF03-EF06-002", "FS-DF03-EF06-003"),
          deviation=LayoutChange("DF03/EF06", structure=Structure.TRANSPARENT)),
    # ---------------------------------------------------------------- DATA
    Fault("data_cn_pad_zero", "DATA",
          "CN items are padded with 0 nibbles instead of F.",
          "CN 数据项以 0 而非 F 填充。",
          "§1 codings (CN)",
          aim=("DATA-CYC-*", "DATA-VAL-*")),
    Fault("data_an_pad_space", "DATA",
          "AN items are padded with spaces (20) instead of 00.",
          "AN 数据项以空格（20）而非 00 填充。",
          "§1 codings (AN)",
          aim=("DATA-COD-*", "DATA-CYC-*")),
    Fault("data_an_utf8", "DATA",
          "AN items are written in UTF-8 instead of GBK (cut to fit).",
          "AN 数据项以 UTF-8 而非 GBK 编码写入（截断以适配长度）。",
          "§1 codings (AN)",
          aim=("DATA-COD-*",)),
    Fault("data_tlv_len_item11", "DATA",
          "The TLV length byte of item 11 (name) is one less than the item's length.",
          "数据项 11（姓名）的 TLV 长度字节比规定长度少 1。",
          "§1 TLV records",
          aim=("DATA-TLV-011",),
          deviation=RecordPatch("DDF1/EF06", 1, offset=1, data="1D")),
    Fault("data_tag_ddf1_ef05_rec10", "DATA",
          "Record 10 of DDF1/EF05 (item 57) carries tag 57 (the decimal number as hex) "
          "instead of 39.",
          "DDF1/EF05 第 10 条记录（数据项 57）的标签为 57（十进制数当作十六进制）而非 39。",
          "§1 record addressing",
          aim=("DATA-RID-DDF1-EF05-010", "DATA-TLV-057"),
          deviation=RecordPatch("DDF1/EF05", 10, offset=0, data="57")),
    Fault("data_no_read_by_tag", "DATA",
          "READ RECORD by record identifier (P2 = 00) is not supported (6A86).",
          "不支持按记录标识读记录（P2 = 00），返回 6A86。",
          "§1 record addressing, §5 READ RECORD",
          aim=("DATA-RID-*", "DATA-RIDX-*"),
          deviation=Refusal("read_record", 0x00, "wrong_p1p2")),
    Fault("data_card_number_altered", "DATA",
          "Item 8 (card number) is personalized differently from item 15 (ID number).",
          "数据项 8（卡号）个人化为与数据项 15（身份证号）不同的值。",
          "evidence §3.1 item 8 (consistency card-number-is-id)", target="8",
          aim=("DATA-CON-CARD-NUMBER-IS-ID", "DATA-VAL-008")),
    Fault("data_city_code_missing", "DATA",
          "Item 57 (city code) is left unpersonalized on the card (the keys still use it).",
          "数据项 57（应用城市代码）未个人化（但密钥仍以其分散）。",
          "§4 CityCode8",
          aim=("DATA-CITY-001",),
          deviation=ItemValue(57, "")),
    # ---------------------------------------------------------------- SEC
    Fault("sec_ddf1_ef06_free_read", "SEC",
          "DDF1/EF06 can be read without authentication.",
          "DDF1/EF06 无需认证即可读取。",
          "§1 read rights",
          aim=("SEC-RD-DDF1-EF06-*", "CMD-ORD-009"),
          deviation=AccessOverride("DDF1/EF06", "read", "free")),
    Fault("sec_wrong_mac_accepted", "SEC",
          "A secure-messaging update with a wrong MAC is accepted.",
          "MAC 错误的安全报文更新被接受。",
          "§4 secure messaging, 6988",
          aim=("SEC-UPD-*-003",)),
    Fault("sec_rights_survive_reset", "SEC",
          "Granted rights survive a reset.",
          "复位后已获得的权限仍保留。",
          "§3 security state",
          aim=("SEC-ST-*-002", "SEC-RD-*", "SEC-EA-*", "SEC-SEP-*", "SEC-UPD-*")),
    Fault("sec_rights_survive_df_change", "SEC",
          "Granted rights survive selecting another DF.",
          "选择其他 DF 后已获得的权限仍保留。",
          "§3 security state",
          aim=("SEC-CH-RK-*-001", "SEC-CH-UK-*-001", "SEC-ST-*-001")),
    Fault("sec_ddf1_read_opens_df01", "SEC",
          "The DDF1 read right (RK_DDF1) also opens the files of DF01.",
          "DDF1 的读权限（RK_DDF1）也可读取 DF01 下的文件。",
          "§1 read rights, §3", target="DF01", value="RK_DDF1",
          aim=("SEC-RD-DF01-*-002",)),
    Fault("sec_retry_not_decremented", "SEC",
          "A wrong cryptogram does not decrement the key's retry counter.",
          "认证失败不减少密钥的重试计数器。",
          "§3 retry counters",
          aim=("SEC-DIV-001", "SEC-DIV-002", "SEC-KEY-*")),
    Fault("sec_retry_not_restored", "SEC",
          "A successful authentication does not restore the retry counter.",
          "认证成功后不恢复重试计数器。",
          "§3 retry counters",
          aim=("SEC-DIV-001", "SEC-DIV-002", "SEC-KEY-*")),
    Fault("sec_failed_auth_revokes", "SEC",
          "A failed authentication clears the rights already granted.",
          "认证失败会清除已获得的权限。",
          "§3 security state",
          aim=("SEC-KEY-*-003",)),
    Fault("sec_challenge_reusable", "SEC",
          "A challenge is not consumed: it can be used again.",
          "随机数使用后不失效，可重复使用。",
          "§3 challenge single use",
          aim=("SEC-CH-*", "SEC-EA-*-005")),
    Fault("sec_challenge_survives_reset", "SEC",
          "A reset does not clear the challenge.",
          "复位不清除随机数。",
          "§3 challenge single use",
          aim=("SEC-CH-*-003",)),
    Fault("sec_ext_auth_trailer_ignored", "SEC",
          "EXTERNAL AUTHENTICATE accepts a trailing byte other than 01.",
          "外部认证接受非 01 的结尾字节。",
          "§5 EXTERNAL AUTHENTICATE, 6A80",
          aim=("SEC-EA-*-002",)),
    Fault("sec_plain_update_tlv", "SEC",
          "A plain UPDATE RECORD of a TLV file (which needs SM) is accepted with the update "
          "right.",
          "具有更新权限时接受对 TLV 文件的明文 UPDATE RECORD（应使用安全报文）。",
          "§5 UPDATE RECORD (plain), 6982",
          aim=("SEC-UPD-*-002",)),
    Fault("sec_update_grants_read", "SEC",
          "An update right also grants reading.",
          "更新权限同时授予读权限。",
          "§3 an update right does not grant reading",
          aim=("SEC-RD-*-005",)),
    Fault("sec_uk_df02_1_opens_ef06", "SEC",
          "UK_DF02_1 also grants the update of DF02/EF06 (which needs UK_DF02_2).",
          "UK_DF02_1 也可更新 DF02/EF06（应需 UK_DF02_2）。",
          "§1 DF02/EF06 update key", target="DF02/EF06", value="UK_DF02_1",
          aim=("SEC-SEP-DF02-EF06-001",)),
    Fault("sec_uk_df03_1_erases", "SEC",
          "UK_DF03_1 can also erase index records (which needs UK_DF03_2).",
          "UK_DF03_1 也可擦除索引记录（应需 UK_DF03_2）。",
          "§1 DF03 index erase key", value="UK_DF03_1",
          aim=("SEC-SEP-DF03-*-001",)),
    Fault("sec_uk_df03_2_marks", "SEC",
          "UK_DF03_2 can also mark index records (which needs UK_DF03_1).",
          "UK_DF03_2 也可标记索引记录（应需 UK_DF03_1）。",
          "§1 DF03 index mark key", value="UK_DF03_2",
          aim=("SEC-SEP-DF03-*-002", "IDX-*-004")),
    Fault("sec_sm_without_update_right", "SEC",
          "A secure-messaging update with a good MAC is accepted without the update right.",
          "无更新权限时，MAC 正确的安全报文更新仍被接受。",
          "§4 secure messaging, 6982",
          aim=("SEC-CH-UK-*", "SEC-SEP-*", "SEC-ST-UK-*", "SEC-UPD-*-001")),
    Fault("sec_keys_follow_item57", "SEC",
          "Updating item 57 (city code) re-derives the card keys.",
          "更新数据项 57（应用城市代码）后卡片密钥被重新分散。",
          "§3 card keys are derived once", target="57",
          aim=("SEC-DIV-003",)),
    # ---------------------------------------------------------------- CYC
    Fault("cyc_no_rotate", "CYC",
          "UPDATE RECORD P2 = 03 on a cyclic file overwrites record 1 without shifting "
          "the older records.",
          "循环文件 P2 = 03 的更新直接覆盖第 1 条记录，旧记录不后移。",
          "§1 cyclic files, §5 UPDATE RECORD",
          aim=("CYC-*-001", "CYC-*-002")),
    Fault("cyc_newest_last", "CYC",
          "UPDATE RECORD P2 = 03 on a cyclic file drops record 1 and appends the new record "
          "as the last one (oldest first).",
          "循环文件 P2 = 03 的更新丢弃第 1 条记录，新记录写为最后一条（顺序颠倒）。",
          "§1 cyclic files, §5 UPDATE RECORD",
          aim=("CYC-*-001", "CYC-*-002")),
    # ---------------------------------------------------------------- IDX
    Fault("idx_mark_writes_01", "IDX",
          "Marking an index record writes 01 instead of 00.",
          "标记索引记录写入 01 而非 00。",
          "§1 DF03 index files", value="01",
          aim=("IDX-*-005", "IDX-*-R*-001")),
    Fault("idx_erase_noop", "IDX",
          "Erasing an index record answers 9000 but leaves the flag unchanged.",
          "擦除索引记录返回 9000 但标志不变。",
          "§1 DF03 index files",
          aim=("IDX-*-R*-001",)),
    Fault("idx_data_field_accepted", "IDX",
          "Mark/erase with a data field is accepted instead of 6700.",
          "带数据域的标记/擦除命令被接受，而非返回 6700。",
          "§5 mark/erase",
          aim=("IDX-*-001",)),
    # ---------------------------------------------------------------- REC
    Fault("rec_truncate_1024", "REC",
          "UPDATE BINARY of EE/ED files silently drops the bytes at offsets 1024 and beyond.",
          "对 EE/ED 文件的 UPDATE BINARY 静默丢弃偏移 1024 及以后的字节。",
          "§1 DF03 EE/ED, §5 UPDATE BINARY", target="DF03", value="1024",
          aim=("REC-*",)),
    Fault("rec_signature_readonly", "REC",
          "The signature area of EE/ED files cannot be written (6982).",
          "EE/ED 文件的签名区不可写（返回 6982）。",
          "§4 record signatures", value="6982",
          aim=("REC-*",)),
    Fault("rec_offset_ignored", "REC",
          "UPDATE BINARY ignores its offset and writes at offset 0.",
          "UPDATE BINARY 忽略偏移量，总是从偏移 0 写入。",
          "§5 UPDATE BINARY",
          aim=("REC-*",)),
    # ---------------------------------------------------------------- PIN
    Fault("pin_wrong_not_decremented", "PIN",
          "A wrong PIN does not decrement the PIN try counter.",
          "PIN 错误不减少 PIN 重试计数器。",
          "§6 pin", requires="pin",
          aim=("PIN-CHANGE-001", "PIN-VERIFY-001")),
    Fault("pin_change_ignored", "PIN",
          "CHANGE PIN answers 9000 but keeps the old PIN.",
          "修改 PIN 返回 9000 但仍保留旧 PIN。",
          "§6 pin", requires="pin",
          aim=("PIN-CHANGE-001",)),
    Fault("pin_change_no_old_check", "PIN",
          "CHANGE PIN does not check the old PIN.",
          "修改 PIN 时不校验旧 PIN。",
          "§6 pin", requires="pin",
          aim=("PIN-CHANGE-002",)),
    # ---------------------------------------------------------------- added with the
    # CYC / IDX / REC cases (faults the existing catalogue did not cover)
    Fault("cyc_rewrite_appends", "CYC",
          "UPDATE RECORD P2 = 04 on a cyclic file writes a new record 1 (as P2 = 03) instead "
          "of rewriting record n in place.",
          "循环文件 P2 = 04 的更新按 P2 = 03 写入新的第 1 条记录，而非原位改写第 n 条。",
          "§5 UPDATE RECORD (plain)",
          aim=("CYC-*-003",)),
    Fault("idx_plain_update_accepted", "IDX",
          "A plain UPDATE RECORD of an index file is accepted when its mark key is granted.",
          "具有标记密钥权限时，索引文件接受明文 UPDATE RECORD（应只能标记/擦除）。",
          "§5 UPDATE RECORD (plain): index files change only by mark/erase, 6982",
          aim=("IDX-*-006",)),
    Fault("rec_update_past_end_truncates", "REC",
          "UPDATE BINARY of an EE/ED file whose data runs past the end writes the bytes that "
          "fit and answers 9000 instead of 6700.",
          "对 EE/ED 文件的 UPDATE BINARY 数据超出文件末尾时写入能容纳的部分并返回 9000，"
          "而非 6700。",
          "§5 UPDATE BINARY, 6700", target="DF03",
          aim=("REC-*-001",)),
    Fault("rec_read_key_writes", "REC",
          "The read right RK_DF03 also grants UPDATE BINARY of the EE/ED files.",
          "读权限 RK_DF03 也可对 EE/ED 文件执行 UPDATE BINARY。",
          "§1 DF03 EE/ED update key", target="DF03", value="RK_DF03",
          aim=("REC-*-005",)),
    # ---------------------------------------------------------------- added with the
    # CMD / DATA cases (faults the existing catalogue did not cover)
    Fault("known_ins_wrong_class_accepted", "CMD",
          "A known INS sent with another of the card's classes (e.g. 84 B2) runs as if sent "
          "with its own class instead of being refused with 6E00.",
          "已知 INS 以卡片支持的其他类别发送（如 84 B2）时按其正确类别执行，而非返回 6E00。",
          "§5 check order, 6E00 (a known INS with the wrong class)",
          aim=("CMD-CLA-*", "CMD-ORD-*")),
    Fault("select_children_only", "CMD",
          "SELECT looks only among the current DF's children: 3F00, the current DF itself, "
          "its parent and its sibling DFs answer 6A82.",
          "SELECT 只在当前 DF 的子文件中查找：3F00、当前 DF 自身、父 DF 与兄弟 DF 均返回 6A82。",
          "§5 SELECT lookup order",
          aim=("CMD-SEL-*",)),
    Fault("wrong_lc_6a87", "CMD",
          "A SELECT or EXTERNAL AUTHENTICATE data field of the wrong length is answered 6A87 "
          "instead of 6700.",
          "SELECT 或外部认证的数据域长度错误时返回 6A87 而非 6700。",
          "§5 SELECT Lc = 2, EXTERNAL AUTHENTICATE Lc = 11, 6700", value="6A87",
          aim=("CMD-LC-*", "CMD-ORD-*")),
    Fault("extended_length_accepted", "CMD",
          "An extended-length APDU is processed with its 2-byte Lc/Le instead of being "
          "refused with 6700.",
          "扩展长度的 APDU 按其 2 字节 Lc/Le 执行，而非返回 6700。",
          "§5 Lc/Le syntax: extended length is not supported",
          aim=("CMD-EXT-*", "CMD-ORD-*")),
    Fault("data_tlv_value_short", "DATA",
          "Every TLV record is one byte short: the value's last byte is missing and the "
          "length byte says so (the item's length minus one).",
          "每条 TLV 记录少一个字节：值缺最后一个字节，长度字节为数据项长度减 1。",
          "§1 TLV records (len = the item's fixed length)",
          aim=("DATA-TLV-*",)),
    Fault("data_dates_ddmmyyyy", "DATA",
          "Date items (rule date) are personalised as DDMMYYYY instead of YYYYMMDD.",
          "日期类数据项按 DDMMYYYY 而非 YYYYMMDD 个人化。",
          "evidence §3.1 items 6, 7, 14 (YYYYMMDD)",
          aim=("DATA-CON-*", "DATA-VAL-*")),
    Fault("data_index_flags_01", "DATA",
          "Index records start as 01 (neither 00 used nor FF free) instead of FF.",
          "索引记录初始值为 01（既非 00 已用也非 FF 空闲），而非 FF。",
          "§5 initial contents (index flags FF); evidence §3.3", value="01",
          aim=("DATA-IDX-*",)),
    # ---------------------------------------------------------------- added with the
    # SEC cases (faults the existing catalogue did not cover)
    Fault("sec_read_unchecked", "SEC",
          "No read right is checked: every EF reads without authentication.",
          "不检查读权限：所有 EF 无需认证即可读取。",
          "§1 read rights, §3, 6982",
          aim=("SEC-RD-*", "SEC-EA-*", "SEC-CH-RK-*", "SEC-ST-RK-*", "REC-*-004")),
    Fault("sec_read_key_grants_nothing", "SEC",
          "EXTERNAL AUTHENTICATE with a read key (RK) answers 9000 but grants no right.",
          "读密钥（RK）外部认证返回 9000，但不授予任何权限。",
          "§3 rights granted by EXTERNAL AUTHENTICATE",
          aim=("SEC-KEY-RK-*-001", "SEC-RD-*-003")),
    Fault("sec_kid_any_df", "SEC",
          "EXTERNAL AUTHENTICATE looks a KID up among the keys of every DF, not only the "
          "current DF's, instead of answering 6A88.",
          "外部认证在所有 DF 的密钥中查找 KID，而非仅在当前 DF 中查找（应返回 6A88）。",
          "§3 key references, §5 EXTERNAL AUTHENTICATE, 6A88",
          aim=("SEC-EA-*-001",)),
    Fault("sec_reselect_df_clears", "SEC",
          "Selecting the current DF again clears the rights granted in it.",
          "重新选择当前 DF 会清除其中已获得的权限。",
          "§3 selecting the same DF again keeps the rights",
          aim=("SEC-ST-*-003",)),
    Fault("sec_challenge_cleared_by_select", "SEC",
          "SELECT clears the challenge (other commands must leave it).",
          "SELECT 命令清除随机数（其他命令不应影响随机数）。",
          "§3 challenge: other commands in between leave it",
          aim=("SEC-CH-*-004",)),
    Fault("sec_sm_update_ignored", "SEC",
          "A correct secure-messaging UPDATE RECORD answers 9000 but does not write the record.",
          "正确的安全报文 UPDATE RECORD 返回 9000 但未写入记录。",
          "§4 secure messaging, §5 UPDATE RECORD",
          aim=("SEC-CH-*-005", "SEC-UPD-*-004")),
    Fault("sec_sm_tlv_unchecked", "SEC",
          "A secure-messaging update writes a TLV whose tag or length does not fit the record "
          "instead of answering 6A80.",
          "安全报文更新写入标签或长度与记录不符的 TLV，而非返回 6A80。",
          "§4 secure messaging, 6A80",
          aim=("SEC-UPD-*-005", "SEC-UPD-*-006")),
    Fault("sec_update_any_key", "SEC",
          "Updates (UPDATE BINARY / RECORD, SM updates, mark, erase) only check that some key "
          "was authenticated since the reset, not the file's own update key.",
          "更新类命令（UPDATE BINARY / RECORD、安全报文更新、标记、擦除）只检查复位后是否有"
          "任一密钥认证成功，而不检查文件规定的更新密钥。",
          "§1 update keys, §3 an update right belongs to its key and DF",
          aim=("SEC-CH-UK-*", "SEC-SEP-*", "SEC-ST-UK-*", "SEC-UPD-*")),
    # ---------------------------------------------------------------- added with the
    # kill matrix (cases no aimed fault killed by its own expectation)
    Fault("get_response_binary_short", "CMD",
          "Under T=0, GET RESPONSE returns READ BINARY data without its last byte (records "
          "come whole).",
          "T=0 下 GET RESPONSE 返回的 READ BINARY 数据少最后一个字节（记录数据完整）。",
          "§5 61xx / GET RESPONSE, §6 t0_get_response", requires="t0_get_response",
          aim=("CMD-T0-003",)),
    Fault("data_document_not_id", "DATA",
          "The document number (item 38) of a holder whose document is the resident ID card "
          "(item 37 = 1) is personalised differently from the ID number (item 15).",
          "证件类别为居民身份证（数据项 37 = 1）时，证件号码（数据项 38）个人化为与身份证号"
          "（数据项 15）不同的值。",
          "evidence §3.1 items 37, 38 (consistency document-is-id)",
          aim=("DATA-CON-DOCUMENT-IS-ID",),
          deviation=ItemValue(38, "110101199003074514")),
]

ALSO_BREAKS: dict[str, tuple[str, ...]] = {
    # A deviation often breaks requirements that several groups test: a wrong status word for
    # a missing record breaks the CMD rule and the FS record count alike. These are the groups
    # besides its own whose cases a hand-written fault may make FAIL (checked by the kill
    # matrix); generated faults declare theirs where they are made.
    "atr_wrong_card_number": ("SEC",),          # keys derived from the ATR factor fail
    "data_city_code_missing": ("ATR", "SEC"),   # level-2 keys cannot be derived
    "data_index_flags_01": ("IDX",),
    "data_tlv_len_item11": ("SEC",),            # SM updates of the name record misfit
    "data_tlv_value_short": GROUPS,          # every TLV record (item 57 too) is short
    "fs_df01_ef06_8_records": ("DATA",),
    "fs_df02_ef08_reclen_23": ("CMD", "CYC", "DATA", "SEC"),
    "fs_df03_ef06_transparent": ("CMD", "DATA", "SEC"),
    "fs_ee02_missing": ("CMD",),
    "fs_photo_3000": ("CMD",),
    "get_response_broken": GROUPS,           # every answer with data loses a byte
    "get_response_binary_short": ("FS", "REC", "SEC"),  # transparent reads lose a byte
    "idx_mark_writes_01": ("SEC",),
    "missing_record_6a82": ("DATA", "FS", "IDX"),
    "read_binary_past_end_6a82": ("FS", "REC"),
    "rec_read_key_writes": ("SEC",),
    "sec_ddf1_ef06_free_read": ("CMD",),
    "sec_read_key_grants_nothing": GROUPS,   # nothing protected can be read at all
    "sec_read_unchecked": ("CMD", "REC"),
    "sec_rights_survive_reset": ("IDX", "REC"),
    "sec_uk_df03_1_erases": ("IDX",),
    "sec_uk_df03_2_marks": ("IDX",),
    "sec_update_any_key": ("DATA", "FS", "IDX", "REC"),
    "sec_update_grants_read": ("REC",),
    "select_p2_00_rejected": ("CMD",),
    "wrong_lc_6a87": ("SEC",),
    "wrong_p1p2_6b00": ("IDX", "SEC"),
    "wrong_structure_6986": ("FS", "SEC", "CYC"),
}
"""Hand-written faults → the groups besides their own whose cases they may make FAIL."""


# --------------------------------------------------------------------------- generated


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
        label_en, label_zh = f"item {number} ({item.en})", f"数据项 {number}（{item.zh}）"
        breaks = _item_breaks(profile, number)
        # CMD-T0 judges a record's tag and length against the profile
        tlv_breaks = _item_breaks(profile, number, "CMD")
        out.append(Fault(
            f"data_tlv_len_{number:03d}", "DATA",
            f"The TLV length byte of {label_en} in {where} is {length - 1:02X} instead of "
            f"{length:02X}.",
            f"{where} 中{label_zh}的 TLV 长度字节为 {length - 1:02X} 而非 {length:02X}。",
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
            f"{where} 中{label_zh}的 {coding} 值{zh}。",
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
        # A file of another shape breaks every case that uses the file, in any group.
        if structure is Structure.TRANSPARENT:
            size = ef.size or 0
            out.append(Fault(
                f"fs_size_{name}", "FS",
                f"{path} is {size - 1} bytes instead of {size}.",
                f"{path} 为 {size - 1} 字节而非 {size} 字节。",
                f"§1 {path}", aim=(f"FS-{sid}-003",), also_breaks=GROUPS,
                deviation=LayoutChange(path, size=size - 1),
            ))
            other = Structure.LINEAR_FIXED
        else:
            count = profile.record_count(path)
            out.append(Fault(
                f"fs_records_{name}", "FS",
                f"{path} has {count - 1} records instead of {count} (the last is missing).",
                f"{path} 只有 {count - 1} 条记录而非 {count} 条（缺最后一条）。",
                f"§1 {path}", aim=(f"FS-{sid}-003",), also_breaks=GROUPS,
                deviation=LayoutChange(path, records=count - 1),
            ))
            other = Structure.TRANSPARENT
        out.append(Fault(
            f"fs_structure_{name}", "FS",
            f"{path} is a {other} file instead of {structure}.",
            f"{path} 的文件结构为 {other} 而非 {structure}。",
            f"§1 {path}", aim=(f"FS-{sid}-002",), also_breaks=GROUPS,
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
                also_breaks=("CMD", "REC", "IDX", "CYC", "DATA", "FS"),
                deviation=AccessOverride(path, right, "free"),
            ))
    return out


def _read_key_of(profile: CardProfile, df: str) -> str | None:
    """The first read key (use ``read``) of a DF, or None."""
    return next((n for n, k in profile.keys.items() if k.df == df and k.use == "read"), None)


def _generated(profile: CardProfile, hand: list[Fault]) -> list[Fault]:
    """The profile's generic faults, less those a hand-written row already declares."""
    declared = {f.deviation for f in hand if f.deviation is not None}
    return [replace(f, generated=True) for f in (*_data_faults(profile), *_file_faults(profile))
            if f.deviation not in declared]


def _hand_written() -> list[Fault]:
    return [replace(f, also_breaks=ALSO_BREAKS.get(f.name, ())) for f in _HAND_WRITTEN]


_CATALOGUES: dict[str, Mapping[str, Fault]] = {}
"""Fault catalogues by profile sha256 (a catalogue is built once per profile)."""


def _build_catalogue(profile: CardProfile) -> Mapping[str, Fault]:
    hand = _hand_written()
    rows = [*hand, *_generated(profile, hand)]
    faults = {f.name: f for f in rows}
    if len(faults) != len(rows):
        raise RuntimeError("duplicate fault name in the catalogue")
    return faults


def fault_catalogue(profile: CardProfile | None = None) -> Mapping[str, Fault]:
    """Every fault the virtual card knows for a profile (the default profile when None): the
    hand-written rows and those generated from the profile, by name."""
    if profile is None:
        profile = _default_profile()
    found = _CATALOGUES.get(profile.sha256)
    if found is None:
        found = _CATALOGUES[profile.sha256] = _build_catalogue(profile)
    return found


@cache
def _default_profile() -> CardProfile:
    from conformance.model.profile import load_profile

    return load_profile()


def __getattr__(name: str) -> Any:
    """``FAULTS``: the catalogue of the default profile, built on first use."""
    if name == "FAULTS":
        return fault_catalogue()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_fault_names(names: Iterable[str], catalogue: Mapping[str, Fault] | None = None,
                      ) -> frozenset[str]:
    """The names as a frozenset; ValueError naming every known fault if one is unknown."""
    known_faults = fault_catalogue() if catalogue is None else catalogue
    chosen = frozenset(names)
    unknown = sorted(chosen - known_faults.keys())
    if unknown:
        known = ", ".join(sorted(known_faults))
        raise ValueError(f"unknown fault(s) {', '.join(unknown)}; known faults: {known}")
    return chosen


class FaultSet:
    """The faults one card carries: ``active(name)`` is a hook's question, ``deviations(kind)``
    the declared data the card applies."""

    __slots__ = ("_active", "_catalogue")

    def __init__(self, names: Iterable[str] = (),
                 catalogue: Mapping[str, Fault] | None = None) -> None:
        self._catalogue = fault_catalogue() if catalogue is None else catalogue
        self._active = check_fault_names(names, self._catalogue)

    def active(self, name: str) -> bool:
        """Whether the card carries fault ``name`` (KeyError on a misspelt hook name)."""
        if name not in self._catalogue:
            raise KeyError(f"no fault {name!r} in the catalogue")
        return name in self._active

    def fault(self, name: str) -> Fault:
        return self._catalogue[name]

    def deviations(self, kind: type[Deviation]) -> list[Any]:
        """The deviations of this type that the active faults declare, in name order."""
        found = (self._catalogue[n].deviation for n in sorted(self._active))
        return [d for d in found if isinstance(d, kind)]

    @property
    def names(self) -> frozenset[str]:
        return self._active

    def __bool__(self) -> bool:
        return bool(self._active)

    def __repr__(self) -> str:
        return f"FaultSet({sorted(self._active)!r})"
