"""The defect catalogue: named, small deviations from REFERENCE.md the virtual card can carry.

A conformance suite is only as good as the defects it catches. Each fault here is one explicit
departure from the reference profile, applied by the card at a named decision point
(``if self.faults.active("constant_challenge"): …``), so the suite's own tests can check that
some conformance case notices it. A fault carries its deviating value (a status word, a file,
a length) in ``target``/``value`` so the numbers live beside the description, not in the card.

Faults are not a framework: the card's code reads like the reference behaviour with a few
visible ``if`` branches, and this module is the catalogue of those branches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ALSO_BREAKS", "FAULTS", "GROUPS", "Fault", "FaultSet", "check_fault_names"]

GROUPS = ("ATR", "CMD", "FS", "DATA", "SEC", "CYC", "IDX", "REC", "PIN")
"""Fault groups, in the order of the conformance case groups that should catch them."""


@dataclass(frozen=True)
class Fault:
    """One named deviation from the reference profile.

    ``reference`` names the clause of REFERENCE.md it breaks; ``target`` and ``value`` are the
    file, key, item or status word the card's hook uses; ``requires`` is the ICS feature a
    product must declare for the deviation to be observable (e.g. ``pin``).
    """

    name: str
    group: str
    description_en: str
    description_zh: str
    reference: str
    target: str = ""
    value: str = ""
    requires: str | None = None

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"fault {self.name}: unknown group {self.group!r} (one of {GROUPS})")


_CATALOGUE = [
    # ---------------------------------------------------------------- ATR
    Fault("atr_wrong_card_number", "ATR",
          "The ATR carries a card-number factor other than the one the card keys are "
          "diversified with (its last byte inverted).",
          "复位应答中的卡号分散因子与密钥分散所用的不一致（末字节取反）。",
          "§2, §4 CardNo8"),
    Fault("atr_wrong_t0_count", "ATR",
          "T0 announces one historical byte fewer than the ATR carries.",
          "T0 声明的历史字节数比实际少一个。",
          "§2"),
    Fault("atr_inverse_ts", "ATR",
          "TS is 3F (inverse convention) instead of 3B.",
          "TS 为 3F（反向约定）而非 3B。",
          "§2", value="3F"),
    Fault("atr_wrong_spec_year", "ATR",
          "The historical bytes carry the specification year 2012 instead of 2017.",
          "历史字节中的规范年份为 2012 而非 2017。",
          "§2", target="spec_year", value="2012"),
    Fault("atr_unstable", "ATR",
          "The last historical byte changes at every reset, so the ATR is not stable.",
          "每次复位后历史字节末字节变化，复位应答不稳定。",
          "§2"),
    # ---------------------------------------------------------------- CMD
    Fault("select_missing_6a87", "CMD",
          "SELECT of a missing file answers 6A87 instead of 6A82.",
          "选择不存在的文件返回 6A87 而非 6A82。",
          "§5 SELECT, 6A82", value="6A87"),
    Fault("unknown_ins_6e00", "CMD",
          "An unknown INS is answered 6E00 instead of 6D00.",
          "不支持的 INS 返回 6E00 而非 6D00。",
          "§5 check order, 6D00", value="6E00"),
    Fault("unknown_cla_accepted", "CMD",
          "An unknown CLA is not checked: the command runs as if sent with its own class.",
          "不检查 CLA：未知 CLA 的命令按其正确类别执行。",
          "§5 check order, 6E00"),
    Fault("wrong_p1p2_6b00", "CMD",
          "Wrong P1/P2 is answered 6B00 instead of 6A86.",
          "P1/P2 错误返回 6B00 而非 6A86。",
          "§5 check order, 6A86", value="6B00"),
    Fault("wrong_le_6700", "CMD",
          "A wrong Le is answered 6700 instead of 6Cxx with the right length.",
          "Le 错误返回 6700 而非 6Cxx。",
          "§5 READ RECORD / READ BINARY, 6Cxx", value="6700"),
    Fault("read_binary_past_end_6a82", "CMD",
          "READ BINARY at or past the end of the file answers 6A82 instead of 6B00.",
          "READ BINARY 偏移量超出文件末尾返回 6A82 而非 6B00。",
          "§5 READ BINARY, 6B00", value="6A82"),
    Fault("missing_record_6a82", "CMD",
          "A record that does not exist is answered 6A82 instead of 6A83.",
          "记录不存在返回 6A82 而非 6A83。",
          "§5 READ RECORD, 6A83", value="6A82"),
    Fault("wrong_structure_6986", "CMD",
          "A command incompatible with the file structure is answered 6986 instead of 6981.",
          "命令与文件结构不相容返回 6986 而非 6981。",
          "§5 check order, 6981", value="6986"),
    Fault("no_current_ef_6a82", "CMD",
          "A file command with no current EF is answered 6A82 instead of 6986.",
          "无当前 EF 时返回 6A82 而非 6986。",
          "§5 check order, 6986", value="6A82"),
    Fault("select_p2_0c_rejected", "CMD",
          "SELECT with P2 = 0C (no FCI) is answered 6A86.",
          "P2 = 0C 的 SELECT 返回 6A86。",
          "§5 SELECT"),
    Fault("select_any_ef", "CMD",
          "SELECT finds an EF of any DF, not only among the current DF's children.",
          "SELECT 可选中任意 DF 下的 EF，而不仅限于当前 DF 的子文件。",
          "§5 SELECT lookup order"),
    Fault("get_challenge_any_le", "CMD",
          "GET CHALLENGE with Le other than 08 returns Le random bytes instead of 6700.",
          "GET CHALLENGE 的 Le 不为 08 时仍返回 Le 字节随机数，而非 6700。",
          "§5 GET CHALLENGE"),
    Fault("constant_challenge", "CMD",
          "GET CHALLENGE always returns the same 8 bytes.",
          "取随机数总是返回相同的 8 字节。",
          "§3 challenge, §4", value="1122334455667788"),
    Fault("challenge_small_pool", "CMD",
          "GET CHALLENGE cycles through a pool of 4 values, so challenges repeat.",
          "取随机数在 4 个值中循环，随机数重复出现。",
          "§3 challenge, §4", value="4"),
    Fault("get_response_broken", "CMD",
          "Under T=0, GET RESPONSE returns the pending data without its last byte.",
          "T=0 下 GET RESPONSE 返回的数据少最后一个字节。",
          "§5 61xx / GET RESPONSE, §6 t0_get_response", requires="t0_get_response"),
    # ---------------------------------------------------------------- FS
    Fault("select_p2_00_rejected", "FS",
          "SELECT with P2 = 00 is answered 6A86: files can be selected only with P2 = 0C.",
          "P2 = 00 的 SELECT 返回 6A86，只能以 P2 = 0C 选择文件。",
          "§5 SELECT; §1 files selectable by FID"),
    Fault("fs_df01_ef06_8_records", "FS",
          "DF01/EF06 has 8 records instead of 9 (the last item is missing).",
          "DF01/EF06 只有 8 条记录而非 9 条（缺最后一个数据项）。",
          "§1 DF01/EF06", target="DF01/EF06"),
    Fault("fs_photo_3000", "FS",
          "The photo file DDF1/EF07 is 3000 bytes instead of 3072.",
          "照片文件 DDF1/EF07 为 3000 字节而非 3072 字节。",
          "§1 DDF1/EF07", target="DDF1/EF07", value="3000"),
    Fault("fs_ee02_missing", "FS",
          "The inpatient record file DF03/EE02 does not exist.",
          "住院信息文件 DF03/EE02 不存在。",
          "§1 DF03/EE01–EE03", target="DF03/EE02"),
    Fault("fs_df02_ef08_reclen_23", "FS",
          "DF02/EF08 has 23-byte records instead of 24.",
          "DF02/EF08 记录长度为 23 字节而非 24 字节。",
          "§1 DF02/EF08", target="DF02/EF08", value="23"),
    Fault("fs_df03_ef06_transparent", "FS",
          "DF03/EF06 (outpatient index) is a transparent file instead of linear fixed.",
          "DF03/EF06（门诊索引）为透明文件而非定长记录文件。",
          "§1 DF03/EF06", target="DF03/EF06"),
    # ---------------------------------------------------------------- DATA
    Fault("data_cn_pad_zero", "DATA",
          "CN items are padded with 0 nibbles instead of F.",
          "CN 数据项以 0 而非 F 填充。",
          "§1 codings (CN)"),
    Fault("data_an_pad_space", "DATA",
          "AN items are padded with spaces (20) instead of 00.",
          "AN 数据项以空格（20）而非 00 填充。",
          "§1 codings (AN)"),
    Fault("data_an_utf8", "DATA",
          "AN items are written in UTF-8 instead of GBK (cut to fit).",
          "AN 数据项以 UTF-8 而非 GBK 编码写入（截断以适配长度）。",
          "§1 codings (AN)"),
    Fault("data_tlv_len_item11", "DATA",
          "The TLV length byte of item 11 (name) is one less than the item's length.",
          "数据项 11（姓名）的 TLV 长度字节比规定长度少 1。",
          "§1 TLV records", target="11"),
    Fault("data_tag_ddf1_ef05_rec10", "DATA",
          "Record 10 of DDF1/EF05 (item 57) carries tag 57 (the decimal number as hex) "
          "instead of 39.",
          "DDF1/EF05 第 10 条记录（数据项 57）的标签为 57（十进制数当作十六进制）而非 39。",
          "§1 record addressing", target="DDF1/EF05", value="10"),
    Fault("data_no_read_by_tag", "DATA",
          "READ RECORD by record identifier (P2 = 00) is not supported (6A86).",
          "不支持按记录标识读记录（P2 = 00），返回 6A86。",
          "§1 record addressing, §5 READ RECORD"),
    Fault("data_card_number_altered", "DATA",
          "Item 8 (card number) is personalized differently from item 15 (ID number).",
          "数据项 8（卡号）个人化为与数据项 15（身份证号）不同的值。",
          "evidence §3.1 item 8 (consistency card-number-is-id)", target="8"),
    Fault("data_city_code_missing", "DATA",
          "Item 57 (city code) is left unpersonalized on the card (the keys still use it).",
          "数据项 57（应用城市代码）未个人化（但密钥仍以其分散）。",
          "§4 CityCode8", target="57"),
    # ---------------------------------------------------------------- SEC
    Fault("sec_ddf1_ef06_free_read", "SEC",
          "DDF1/EF06 can be read without authentication.",
          "DDF1/EF06 无需认证即可读取。",
          "§1 read rights", target="DDF1/EF06"),
    Fault("sec_wrong_mac_accepted", "SEC",
          "A secure-messaging update with a wrong MAC is accepted.",
          "MAC 错误的安全报文更新被接受。",
          "§4 secure messaging, 6988"),
    Fault("sec_rights_survive_reset", "SEC",
          "Granted rights survive a reset.",
          "复位后已获得的权限仍保留。",
          "§3 security state"),
    Fault("sec_rights_survive_df_change", "SEC",
          "Granted rights survive selecting another DF.",
          "选择其他 DF 后已获得的权限仍保留。",
          "§3 security state"),
    Fault("sec_ddf1_read_opens_df01", "SEC",
          "The DDF1 read right (RK_DDF1) also opens the files of DF01.",
          "DDF1 的读权限（RK_DDF1）也可读取 DF01 下的文件。",
          "§1 read rights, §3", target="DF01", value="RK_DDF1"),
    Fault("sec_retry_not_decremented", "SEC",
          "A wrong cryptogram does not decrement the key's retry counter.",
          "认证失败不减少密钥的重试计数器。",
          "§3 retry counters"),
    Fault("sec_retry_not_restored", "SEC",
          "A successful authentication does not restore the retry counter.",
          "认证成功后不恢复重试计数器。",
          "§3 retry counters"),
    Fault("sec_failed_auth_revokes", "SEC",
          "A failed authentication clears the rights already granted.",
          "认证失败会清除已获得的权限。",
          "§3 security state"),
    Fault("sec_challenge_reusable", "SEC",
          "A challenge is not consumed: it can be used again.",
          "随机数使用后不失效，可重复使用。",
          "§3 challenge single use"),
    Fault("sec_challenge_survives_reset", "SEC",
          "A reset does not clear the challenge.",
          "复位不清除随机数。",
          "§3 challenge single use"),
    Fault("sec_ext_auth_trailer_ignored", "SEC",
          "EXTERNAL AUTHENTICATE accepts a trailing byte other than 01.",
          "外部认证接受非 01 的结尾字节。",
          "§5 EXTERNAL AUTHENTICATE, 6A80"),
    Fault("sec_plain_update_tlv", "SEC",
          "A plain UPDATE RECORD of a TLV file (which needs SM) is accepted with the update "
          "right.",
          "具有更新权限时接受对 TLV 文件的明文 UPDATE RECORD（应使用安全报文）。",
          "§5 UPDATE RECORD (plain), 6982"),
    Fault("sec_update_grants_read", "SEC",
          "An update right also grants reading.",
          "更新权限同时授予读权限。",
          "§3 an update right does not grant reading"),
    Fault("sec_uk_df02_1_opens_ef06", "SEC",
          "UK_DF02_1 also grants the update of DF02/EF06 (which needs UK_DF02_2).",
          "UK_DF02_1 也可更新 DF02/EF06（应需 UK_DF02_2）。",
          "§1 DF02/EF06 update key", target="DF02/EF06", value="UK_DF02_1"),
    Fault("sec_uk_df03_1_erases", "SEC",
          "UK_DF03_1 can also erase index records (which needs UK_DF03_2).",
          "UK_DF03_1 也可擦除索引记录（应需 UK_DF03_2）。",
          "§1 DF03 index erase key", value="UK_DF03_1"),
    Fault("sec_uk_df03_2_marks", "SEC",
          "UK_DF03_2 can also mark index records (which needs UK_DF03_1).",
          "UK_DF03_2 也可标记索引记录（应需 UK_DF03_1）。",
          "§1 DF03 index mark key", value="UK_DF03_2"),
    Fault("sec_sm_without_update_right", "SEC",
          "A secure-messaging update with a good MAC is accepted without the update right.",
          "无更新权限时，MAC 正确的安全报文更新仍被接受。",
          "§4 secure messaging, 6982"),
    Fault("sec_keys_follow_item57", "SEC",
          "Updating item 57 (city code) re-derives the card keys.",
          "更新数据项 57（应用城市代码）后卡片密钥被重新分散。",
          "§3 card keys are derived once", target="57"),
    # ---------------------------------------------------------------- CYC
    Fault("cyc_no_rotate", "CYC",
          "UPDATE RECORD P2 = 03 on a cyclic file overwrites record 1 without shifting "
          "the older records.",
          "循环文件 P2 = 03 的更新直接覆盖第 1 条记录，旧记录不后移。",
          "§1 cyclic files, §5 UPDATE RECORD"),
    Fault("cyc_newest_last", "CYC",
          "UPDATE RECORD P2 = 03 on a cyclic file drops record 1 and appends the new record "
          "as the last one (oldest first).",
          "循环文件 P2 = 03 的更新丢弃第 1 条记录，新记录写为最后一条（顺序颠倒）。",
          "§1 cyclic files, §5 UPDATE RECORD"),
    # ---------------------------------------------------------------- IDX
    Fault("idx_mark_writes_01", "IDX",
          "Marking an index record writes 01 instead of 00.",
          "标记索引记录写入 01 而非 00。",
          "§1 DF03 index files", value="01"),
    Fault("idx_erase_noop", "IDX",
          "Erasing an index record answers 9000 but leaves the flag unchanged.",
          "擦除索引记录返回 9000 但标志不变。",
          "§1 DF03 index files"),
    Fault("idx_data_field_accepted", "IDX",
          "Mark/erase with a data field is accepted instead of 6700.",
          "带数据域的标记/擦除命令被接受，而非返回 6700。",
          "§5 mark/erase"),
    # ---------------------------------------------------------------- REC
    Fault("rec_truncate_1024", "REC",
          "UPDATE BINARY of EE/ED files silently drops the bytes at offsets 1024 and beyond.",
          "对 EE/ED 文件的 UPDATE BINARY 静默丢弃偏移 1024 及以后的字节。",
          "§1 DF03 EE/ED, §5 UPDATE BINARY", target="DF03", value="1024"),
    Fault("rec_signature_readonly", "REC",
          "The signature area of EE/ED files cannot be written (6982).",
          "EE/ED 文件的签名区不可写（返回 6982）。",
          "§4 record signatures", value="6982"),
    Fault("rec_offset_ignored", "REC",
          "UPDATE BINARY ignores its offset and writes at offset 0.",
          "UPDATE BINARY 忽略偏移量，总是从偏移 0 写入。",
          "§5 UPDATE BINARY"),
    # ---------------------------------------------------------------- PIN
    Fault("pin_wrong_not_decremented", "PIN",
          "A wrong PIN does not decrement the PIN try counter.",
          "PIN 错误不减少 PIN 重试计数器。",
          "§6 pin", requires="pin"),
    Fault("pin_change_ignored", "PIN",
          "CHANGE PIN answers 9000 but keeps the old PIN.",
          "修改 PIN 返回 9000 但仍保留旧 PIN。",
          "§6 pin", requires="pin"),
    Fault("pin_change_no_old_check", "PIN",
          "CHANGE PIN does not check the old PIN.",
          "修改 PIN 时不校验旧 PIN。",
          "§6 pin", requires="pin"),
    # ---------------------------------------------------------------- added with the
    # CYC / IDX / REC cases (faults the existing catalogue did not cover)
    Fault("cyc_rewrite_appends", "CYC",
          "UPDATE RECORD P2 = 04 on a cyclic file writes a new record 1 (as P2 = 03) instead "
          "of rewriting record n in place.",
          "循环文件 P2 = 04 的更新按 P2 = 03 写入新的第 1 条记录，而非原位改写第 n 条。",
          "§5 UPDATE RECORD (plain)"),
    Fault("idx_plain_update_accepted", "IDX",
          "A plain UPDATE RECORD of an index file is accepted when its mark key is granted.",
          "具有标记密钥权限时，索引文件接受明文 UPDATE RECORD（应只能标记/擦除）。",
          "§5 UPDATE RECORD (plain): index files change only by mark/erase, 6982"),
    Fault("rec_update_past_end_truncates", "REC",
          "UPDATE BINARY of an EE/ED file whose data runs past the end writes the bytes that "
          "fit and answers 9000 instead of 6700.",
          "对 EE/ED 文件的 UPDATE BINARY 数据超出文件末尾时写入能容纳的部分并返回 9000，"
          "而非 6700。",
          "§5 UPDATE BINARY, 6700", target="DF03"),
    Fault("rec_read_key_writes", "REC",
          "The read right RK_DF03 also grants UPDATE BINARY of the EE/ED files.",
          "读权限 RK_DF03 也可对 EE/ED 文件执行 UPDATE BINARY。",
          "§1 DF03 EE/ED update key", target="DF03", value="RK_DF03"),
    # ---------------------------------------------------------------- added with the
    # CMD / DATA cases (faults the existing catalogue did not cover)
    Fault("known_ins_wrong_class_accepted", "CMD",
          "A known INS sent with another of the card's classes (e.g. 84 B2) runs as if sent "
          "with its own class instead of being refused with 6E00.",
          "已知 INS 以卡片支持的其他类别发送（如 84 B2）时按其正确类别执行，而非返回 6E00。",
          "§5 check order, 6E00 (a known INS with the wrong class)"),
    Fault("select_children_only", "CMD",
          "SELECT looks only among the current DF's children: 3F00, the current DF itself, "
          "its parent and its sibling DFs answer 6A82.",
          "SELECT 只在当前 DF 的子文件中查找：3F00、当前 DF 自身、父 DF 与兄弟 DF 均返回 6A82。",
          "§5 SELECT lookup order"),
    Fault("wrong_lc_6a87", "CMD",
          "A SELECT or EXTERNAL AUTHENTICATE data field of the wrong length is answered 6A87 "
          "instead of 6700.",
          "SELECT 或外部认证的数据域长度错误时返回 6A87 而非 6700。",
          "§5 SELECT Lc = 2, EXTERNAL AUTHENTICATE Lc = 11, 6700", value="6A87"),
    Fault("extended_length_accepted", "CMD",
          "An extended-length APDU is processed with its 2-byte Lc/Le instead of being "
          "refused with 6700.",
          "扩展长度的 APDU 按其 2 字节 Lc/Le 执行，而非返回 6700。",
          "§5 Lc/Le syntax: extended length is not supported"),
    Fault("data_tlv_value_short", "DATA",
          "Every TLV record is one byte short: the value's last byte is missing and the "
          "length byte says so (the item's length minus one).",
          "每条 TLV 记录少一个字节：值缺最后一个字节，长度字节为数据项长度减 1。",
          "§1 TLV records (len = the item's fixed length)"),
    Fault("data_dates_ddmmyyyy", "DATA",
          "Date items (rule date) are personalised as DDMMYYYY instead of YYYYMMDD.",
          "日期类数据项按 DDMMYYYY 而非 YYYYMMDD 个人化。",
          "evidence §3.1 items 6, 7, 14 (YYYYMMDD)"),
    Fault("data_index_flags_01", "DATA",
          "Index records start as 01 (neither 00 used nor FF free) instead of FF.",
          "索引记录初始值为 01（既非 00 已用也非 FF 空闲），而非 FF。",
          "§5 initial contents (index flags FF); evidence §3.3", value="01"),
    # ---------------------------------------------------------------- added with the
    # SEC cases (faults the existing catalogue did not cover)
    Fault("sec_read_unchecked", "SEC",
          "No read right is checked: every EF reads without authentication.",
          "不检查读权限：所有 EF 无需认证即可读取。",
          "§1 read rights, §3, 6982"),
    Fault("sec_read_key_grants_nothing", "SEC",
          "EXTERNAL AUTHENTICATE with a read key (RK) answers 9000 but grants no right.",
          "读密钥（RK）外部认证返回 9000，但不授予任何权限。",
          "§3 rights granted by EXTERNAL AUTHENTICATE"),
    Fault("sec_kid_any_df", "SEC",
          "EXTERNAL AUTHENTICATE looks a KID up among the keys of every DF, not only the "
          "current DF's, instead of answering 6A88.",
          "外部认证在所有 DF 的密钥中查找 KID，而非仅在当前 DF 中查找（应返回 6A88）。",
          "§3 key references, §5 EXTERNAL AUTHENTICATE, 6A88"),
    Fault("sec_reselect_df_clears", "SEC",
          "Selecting the current DF again clears the rights granted in it.",
          "重新选择当前 DF 会清除其中已获得的权限。",
          "§3 selecting the same DF again keeps the rights"),
    Fault("sec_challenge_cleared_by_select", "SEC",
          "SELECT clears the challenge (other commands must leave it).",
          "SELECT 命令清除随机数（其他命令不应影响随机数）。",
          "§3 challenge: other commands in between leave it"),
    Fault("sec_sm_update_ignored", "SEC",
          "A correct secure-messaging UPDATE RECORD answers 9000 but does not write the record.",
          "正确的安全报文 UPDATE RECORD 返回 9000 但未写入记录。",
          "§4 secure messaging, §5 UPDATE RECORD"),
    Fault("sec_sm_tlv_unchecked", "SEC",
          "A secure-messaging update writes a TLV whose tag or length does not fit the record "
          "instead of answering 6A80.",
          "安全报文更新写入标签或长度与记录不符的 TLV，而非返回 6A80。",
          "§4 secure messaging, 6A80"),
    Fault("sec_update_any_key", "SEC",
          "Updates (UPDATE BINARY / RECORD, SM updates, mark, erase) only check that some key "
          "was authenticated since the reset, not the file's own update key.",
          "更新类命令（UPDATE BINARY / RECORD、安全报文更新、标记、擦除）只检查复位后是否有"
          "任一密钥认证成功，而不检查文件规定的更新密钥。",
          "§1 update keys, §3 an update right belongs to its key and DF"),
]

FAULTS: dict[str, Fault] = {f.name: f for f in _CATALOGUE}

ALSO_BREAKS: dict[str, tuple[str, ...]] = {
    # A deviation often breaks requirements that several groups test: a wrong status word for
    # a missing record breaks the CMD rule and the FS record count alike. These are the groups
    # besides its own whose cases a fault may make FAIL (checked by tests/test_meta.py).
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
"""Every fault the virtual card knows, by name."""

if len(FAULTS) != len(_CATALOGUE):  # pragma: no cover - a duplicate name is a catalogue bug
    raise RuntimeError("duplicate fault name in the catalogue")


def check_fault_names(names: Iterable[str]) -> frozenset[str]:
    """The names as a frozenset; ValueError naming every known fault if one is unknown."""
    chosen = frozenset(names)
    unknown = sorted(chosen - FAULTS.keys())
    if unknown:
        known = ", ".join(sorted(FAULTS))
        raise ValueError(f"unknown fault(s) {', '.join(unknown)}; known faults: {known}")
    return chosen


class FaultSet:
    """The faults one card carries; ``active(name)`` is the card's decision-point question."""

    __slots__ = ("_active",)

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._active = check_fault_names(names)

    def active(self, name: str) -> bool:
        """Whether the card carries fault ``name`` (KeyError on a misspelt hook name)."""
        if name not in FAULTS:
            raise KeyError(f"no fault {name!r} in the catalogue")
        return name in self._active

    def fault(self, name: str) -> Fault:
        return FAULTS[name]

    @property
    def names(self) -> frozenset[str]:
        return self._active

    def __bool__(self) -> bool:
        return bool(self._active)

    def __repr__(self) -> str:
        return f"FaultSet({sorted(self._active)!r})"
