"""DATA: the data items of the personalized card (REFERENCE.md §1, §5; evidence §2.2, §3).

Generated from the profile:

- DATA-TLV-NNN: every TLV item 1..57 sits in its record as ``tag ‖ len ‖ value`` with the tag
  equal to the item number and the length byte equal to the item's fixed length;
- DATA-COD-NNN: its value is a valid instance of its coding (CN, AN, B), an item never
  personalised being AN all 00, CN all FF, B all 00;
- DATA-VAL-NNN: items with value rules in the profile satisfy them (dates, GB 11643 ID
  numbers, digits, telephone numbers, code tables); empty values pass;
- DATA-CON-<id>: the consistency rules of the profile (card number = ID number, …);
- DATA-RID-…: READ RECORD by record identifier (P2 = 00) returns the same record as by
  number, in the files the profile reads by tag;
- DATA-CYC-…, DATA-IDX-…: records of cyclic files decode by their layouts, index flags are
  used or free;
- DATA-CITY-001: the application city code, from which CityCode8 comes, is personalised.

The rule checkers are pure functions in :mod:`conformance.cases.rules`.
"""

from __future__ import annotations

from conformance.cases.common import grant, make, read_record, read_records, slug
from conformance.cases.framework import Case, CaseContext
from conformance.cases.rules import check_coding, check_rule, parse_date
from conformance.iso7816 import RECORD_P2_BY_ID
from conformance.messages import Msg, msg
from conformance.model import codecs
from conformance.model.codecs import Coding
from conformance.model.profile import CardProfile
from conformance.model.schema import Consistency, Structure

CLAUSE_TLV = "REFERENCE.md §1 (TLV records); WS/T 543.3 (evidence §2.2, §3.1)"
CLAUSE_COD = "REFERENCE.md §1 (codings AN, CN, B), §5 (initial contents); WS/T 543.3 " \
    "(evidence §2.2, §3.1)"
CLAUSE_VAL = "profile items.<n>.rules and code_tables; WS/T 543.3 (evidence §3.1)"
CHOICE_SPACES = (
    "An AN value that fills its whole field and ends in spaces is taken as space padding, "
    "which REFERENCE.md §1 does not allow (AN is right-padded with 00)."
)
CHOICE_PHONE = (
    "The rule 'phone' (digits, an optional leading + and - between digit groups, at least 3 "
    "digits) is a [choice]: the evidence gives no format."
)
CHOICE_EMPTY_RULE = (
    "A consistency rule is taken as not applicable when one of its items is not personalised "
    "(e.g. a card number that follows the document number of a holder without an ID number, "
    "as evidence §3.1 item 8 allows)."
)
EMPTY_NOTE = "An item that was never personalised (empty value) satisfies every value rule."
EMPTY_NOTE_ZH = "从未个人化的数据项（空值）满足所有取值规则。"


# --------------------------------------------------------------------------- reading


def read_item_record(ctx: CaseContext, number: int) -> bytes:
    """The record that holds TLV item `number`, read by record number after its read right."""
    place = ctx.profile.place(number)
    assert place.record is not None
    grant(ctx, place.path)
    what = f"READ RECORD {place.record} of {place.path} (item {number})"
    with ctx.step(what):
        return ctx.expect_sw(read_record(ctx, place.record), "ok", what=what).data


def tlv_problem(profile: CardProfile, number: int, record: bytes) -> Msg | None:
    """Why a record is not the SIMPLE-TLV record of item `number`, or None."""
    length = profile.item(number).length
    if len(record) < 2:
        return msg("tlv.no_header", length=len(record))
    problems = []
    if record[0] != number:
        problems.append(msg("tlv.tag", tag=f"{record[0]:02X}", expected=f"{number:02X}"))
    if record[1] != length:
        problems.append(msg("tlv.length_byte", got=f"{record[1]:02X}", expected=f"{length:02X}"))
    if len(record) != 2 + length:
        problems.append(msg("tlv.record_length", length=len(record), expected=2 + length))
    return msg("list.semicolon", items=problems) if problems else None


def item_value(ctx: CaseContext, number: int) -> str:
    """Item `number` decoded from the card; FAIL when its record or coding is broken (the
    card then does not hold a valid value of the item: see DATA-TLV / DATA-COD)."""
    item = ctx.profile.item(number)
    record = read_item_record(ctx, number)
    with ctx.step(msg("act.decode_item", number=number)):
        problem = tlv_problem(ctx.profile, number, record)
        if problem is not None:
            ctx.fail(msg("data.unreadable", number=number,
                         name_zh=item.zh, name_en=item.en, problem=problem,
                         see=f"DATA-TLV-{number:03d}"), measured=record[:2].hex(" ").upper())
        value = record[2:]
        problem = check_coding(item.coding, value, item.length)
        if problem is not None:
            ctx.fail(msg("data.unreadable", number=number,
                         name_zh=item.zh, name_en=item.en, problem=problem,
                         see=f"DATA-COD-{number:03d}"), measured=value.hex().upper())
        return codecs.decode(Coding(item.coding), value)


def rules_choice(profile: CardProfile, rules: list[str]) -> str:
    """The [choice] notes of the value rules an item uses."""
    notes = []
    for rule in rules:
        kind, _, table = rule.partition(":")
        if kind == "code":
            ref = profile.spec.code_tables[table].ref
            if "[choice]" in ref:
                notes.append(f"code table {table} ({ref}) is a [choice] of the profile")
        elif rule == "phone":
            notes.append(CHOICE_PHONE)
    return "; ".join(notes)


# --------------------------------------------------------------------------- per item


def _item_cases(profile: CardProfile, out: list[Case]) -> None:
    for number in sorted(profile.tlv_items()):
        item = profile.item(number)
        place = profile.place(number)
        where = f"{place.path} record {place.record}"
        label = f"{number}（{item.zh}）"

        @make(
            out, f"DATA-TLV-{number:03d}", "DATA",
            f"数据项 {label} 的 TLV 标签与长度",
            f"Item {number} ({item.en}): TLV tag and length",
            CLAUSE_TLV,
            f"{where} is {number:02X} ‖ {item.length:02X} ‖ {item.length} value bytes "
            "(tag = item number, length = the item's fixed length).",
            purpose_zh=f"{where} 为 {number:02X} ‖ {item.length:02X} ‖ {item.length} 字节取"
                       "值（标签 = 数据项编号，长度 = 数据项的固定长度）。",
            expected_sw=("ok",),
            preconditions=f"card reset; read right of {place.path} granted",
            severity="critical",
        )
        def tlv(ctx: CaseContext, number: int = number) -> None:
            record = read_item_record(ctx, number)
            problem = tlv_problem(ctx.profile, number, record)
            length = ctx.profile.item(number).length
            ctx.check(problem is None, msg("data.item_problem", number=number, problem=problem),
                      expected=f"{number:02X} {length:02X}", measured=record[:2].hex(" ").upper())

        coding = Coding(item.coding)
        rule_text = {
            Coding.CN: "BCD digits, left-aligned, nothing but F nibbles after the first F "
                       "(all FF when not personalised)",
            Coding.AN: "GBK text, nothing but 00 after the first 00, not padded with spaces "
                       "(all 00 when not personalised)",
            Coding.B: f"{item.length} bytes (all 00 when not personalised)",
        }[coding]
        rule_text_zh = {
            Coding.CN: "BCD 数字，左对齐，第一个 F 之后只有 F 半字节（未个人化时全 FF）",
            Coding.AN: "GBK 文本，第一个 00 之后只有 00，不以空格填充（未个人化时全 00）",
            Coding.B: f"{item.length} 字节（未个人化时全 00）",
        }[coding]

        @make(
            out, f"DATA-COD-{number:03d}", "DATA",
            f"数据项 {label} 的编码（{coding}）",
            f"Item {number} ({item.en}): {coding} coding",
            CLAUSE_COD,
            f"The {item.length}-byte value in {where} is valid {coding}: {rule_text}.",
            purpose_zh=f"{where} 中 {item.length} 字节的取值是有效的 {coding}：{rule_text_zh}。",
            expected_sw=("ok",),
            preconditions=f"card reset; read right of {place.path} granted",
            reference_choice=CHOICE_SPACES if coding is Coding.AN else "",
        )
        def coding_case(ctx: CaseContext, number: int = number) -> None:
            item = ctx.profile.item(number)
            record = read_item_record(ctx, number)
            problem = check_coding(item.coding, record[2:], item.length)
            ctx.check(problem is None,
                      msg("data.item_named_problem", number=number,
                          name_zh=item.zh, name_en=item.en, problem=problem),
                      expected=item.coding, measured=record[2:].hex().upper())

        if not item.rules:
            continue

        @make(
            out, f"DATA-VAL-{number:03d}", "DATA",
            f"数据项 {label} 的取值规则",
            f"Item {number} ({item.en}): value rules",
            CLAUSE_VAL + "; " + ", ".join(_rule_refs(profile, item.rules)),
            f"The value of item {number} satisfies {', '.join(item.rules)}. " + EMPTY_NOTE,
            purpose_zh=f"数据项 {number} 的取值满足 {', '.join(item.rules)}。" + EMPTY_NOTE_ZH,
            expected_sw=("ok",),
            preconditions=f"card reset; read right of {place.path} granted",
            reference_choice=rules_choice(profile, item.rules),
        )
        def value_case(ctx: CaseContext, number: int = number) -> None:
            item = ctx.profile.item(number)
            value = item_value(ctx, number)
            for rule in item.rules:
                problem = check_rule(rule, value, ctx.profile.spec.code_tables)
                choice = "value_rules" if rules_choice(ctx.profile, [rule]) else ""
                ctx.check(problem is None,
                          msg("data.rule", number=number,
                              name_zh=item.zh, name_en=item.en, rule=rule,
                              problem=problem),
                          choice=choice, expected=rule, measured=value)


def _rule_refs(profile: CardProfile, rules: list[str]) -> list[str]:
    refs = []
    for rule in rules:
        kind, _, table = rule.partition(":")
        if kind == "code":
            refs.append(f"{table}: {profile.spec.code_tables[table].ref}")
        elif rule == "id_number":
            refs.append("GB 11643-1999")
        elif rule == "date":
            refs.append("date YYYYMMDD")
        else:
            refs.append(rule)
    return refs


# --------------------------------------------------------------------------- consistency


def _judge(ctx: CaseContext, rule: Consistency) -> None:
    first, second = rule.items
    if rule.kind == "equal_when":
        when = rule.when or {}
        cond_item, cond_value = int(when["item"]), str(when["value"])
        actual = item_value(ctx, cond_item)
        if actual != cond_value:
            ctx.note(f"item {cond_item} is {actual!r}, not {cond_value!r}: rule not applicable")
            return
    a, b = item_value(ctx, first), item_value(ctx, second)
    if not a or not b:
        ctx.note(f"item {first} = {a!r}, item {second} = {b!r}: an item is not personalised, "
                 "the rule does not apply")
        return
    choice = "value_rules" if "[choice]" in rule.ref else ""  # observed when the plan says so
    if rule.kind in ("equal", "equal_when"):
        ctx.check(a == b, msg("data.differs", first=first, a=a, second=second, b=b),
                  choice=choice, expected=b, measured=a)
    elif rule.kind == "birth_date_in_id":
        embedded = a[6:14]
        ctx.check(embedded == b,
                  msg("data.birth_in_id", a=a, first=first, embedded=embedded, second=second,
                      b=b), choice=choice, expected=b, measured=embedded)
    elif rule.kind == "not_before":
        da, db = parse_date(a), parse_date(b)
        if da is None or db is None:
            ctx.fail(msg("data.not_dates", first=first, a=a, second=second, b=b),
                     choice=choice, expected="YYYYMMDD", measured=f"{a} / {b}")
        elif da < db:
            ctx.fail(msg("data.before", first=first, a=a, second=second, b=b),
                     choice=choice, expected=f"≥ {b}", measured=a)
    else:  # pragma: no cover - the schema allows no other kind
        raise ValueError(f"unknown consistency kind {rule.kind}")


def _consistency_cases(profile: CardProfile, out: list[Case]) -> None:
    texts = {
        "equal": "item {0} equals item {1}",
        "equal_when": "item {0} equals item {1} when item {2} is {3}",
        "birth_date_in_id": "the birth date inside ID number item {0} equals item {1}",
        "not_before": "date item {0} is not before date item {1}",
    }
    texts_zh = {
        "equal": "数据项 {0} 等于数据项 {1}",
        "equal_when": "数据项 {2} 为 {3} 时，数据项 {0} 等于数据项 {1}",
        "birth_date_in_id": "身份证号数据项 {0} 中的出生日期等于数据项 {1}",
        "not_before": "日期数据项 {0} 不早于日期数据项 {1}",
    }
    for rule in profile.spec.consistency:
        when = rule.when or {}
        text = texts[rule.kind].format(*rule.items, when.get("item"), when.get("value"))
        text_zh = texts_zh[rule.kind].format(*rule.items, when.get("item"), when.get("value"))

        @make(
            out, f"DATA-CON-{rule.id.upper()}", "DATA",
            f"数据一致性：{rule.id}",
            f"Data consistency: {rule.id}",
            f"profile consistency {rule.id}; {rule.ref}",
            f"On the personalised card, {text}; a rule with an item not personalised does "
            "not apply.",
            purpose_zh=f"在已个人化的卡片上，{text_zh}；涉及未个人化数据项的规则不适用。",
            expected_sw=("ok",),
            preconditions="card reset; read rights of the items' files granted",
            reference_choice=(f"The rule rests on {rule.ref}. " if "[choice]" in rule.ref
                              else "") + CHOICE_EMPTY_RULE,
        )
        def consistency(ctx: CaseContext, rule: Consistency = rule) -> None:
            _judge(ctx, rule)


# --------------------------------------------------------------------------- files


def _read_by_tag_cases(profile: CardProfile, out: list[Case]) -> None:
    for path, ef in profile.files.items():
        if not ef.read_by_tag or ef.structure is not Structure.TLV_RECORDS:
            continue
        sid = slug(path)
        for record, number in enumerate(ef.items, start=1):

            @make(
                out, f"DATA-RID-{sid}-{record:03d}", "DATA",
                f"{path} 按记录标识 {number:02X} 读记录",
                f"{path}: READ RECORD by identifier {number:02X}",
                "REFERENCE.md §1 (record addressing), §5 READ RECORD (P2 = 00); evidence "
                "§2.2",
                f"READ RECORD with P1 = {number:02X} (item {number}), P2 = 00 returns record "
                f"{record}, the same bytes as READ RECORD {record} by number.",
                purpose_zh=f"以 P1 = {number:02X}（数据项 {number}）、P2 = 00 读记录返回记录 "
                           f"{record}"
                           f"，与按记录号读记录 {record} 的字节相同。",
                expected_sw=("ok",),
                severity="critical",
            )
            def by_tag(ctx: CaseContext, path: str = path, record: int = record,
                       number: int = number) -> None:
                grant(ctx, path)
                by_number = ctx.expect_sw(read_record(ctx, record), "ok",
                                          what=msg("what.data.read_record_by_number",
                                                   record=record))
                tagged = ctx.expect_sw(read_record(ctx, number, RECORD_P2_BY_ID), "ok",
                                       what=msg("what.data.read_record_by_identifier",
                                                number=f"{number:02X}"))
                ctx.check(tagged.data == by_number.data,
                          msg("data.by_identifier", number=f"{number:02X}",
                              tagged=tagged.data.hex().upper(), record=record,
                              by_number=by_number.data.hex().upper()),
                          expected=by_number.data.hex().upper(),
                          measured=tagged.data.hex().upper())

        absent = sorted(set(profile.tlv_items()) - set(ef.items))[:3]

        @make(
            out, f"DATA-RIDX-{sid}-001", "DATA",
            f"{path} 按不存在的记录标识读记录",
            f"{path}: READ RECORD by an identifier the file lacks",
            "REFERENCE.md §5 READ RECORD (P2 = 00: none is <sw:record_not_found>)",
            f"READ RECORD by identifier {', '.join(f'{t:02X}' for t in absent)} (tags of "
            "items held in other files) answers <sw:record_not_found>.",
            purpose_zh=f"按记录标识 {', '.join(f'{t:02X}' for t in absent)}（其他文件中数据项的标"
                       "签）读记录应"
                       "答 <sw:record_not_found>。",
            expected_sw=("record_not_found",),
            reference_choice="Relies on the status words of REFERENCE.md §5, a [choice].",
        )
        def absent_tag(ctx: CaseContext, path: str = path, absent: list[int] = absent) -> None:
            grant(ctx, path)
            for tag in absent:
                ctx.expect_sw(read_record(ctx, tag, RECORD_P2_BY_ID), "record_not_found",
                              what=msg("what.data.read_record_by_identifier_in",
                                       tag=f"{tag:02X}", path=path))


def _cyclic_cases(profile: CardProfile, out: list[Case]) -> None:
    for path, ef in profile.files.items():
        if ef.structure is not Structure.CYCLIC or ef.layout is None:
            continue
        fields = profile.layout(ef.layout)
        names = ", ".join(f"item {f.item} {f.coding} {f.length}" for f in fields)
        rules = sorted({r for f in fields if f.item is not None and f.item in profile.items
                        for r in profile.item(f.item).rules})

        @make(
            out, f"DATA-CYC-{slug(path)}-001", "DATA",
            f"{path} 循环记录的编码",
            f"{path}: cyclic records decode by their layout",
            "REFERENCE.md §1 (DF02 cyclic files, codings), §5 (initial contents); evidence "
            "§3.2",
            f"Each of the {ef.records} records is {ef.record_length} bytes and its fields "
            f"({names}) are valid in their codings"
            + (f" and satisfy their rules ({', '.join(rules)})" if rules else "") + ".",
            purpose_zh=f"{ef.records} 条记录每条 {ef.record_length} 字节，其字段（{names}）"
            "符合各自编码"
            + (f"并满足各自规则（{', '.join(rules)}）" if rules else "") + "。",
            expected_sw=("ok",),
            preconditions=f"card reset; read right of {path} granted",
            reference_choice=CHOICE_SPACES,
        )
        def cyclic(ctx: CaseContext, path: str = path) -> None:
            p = ctx.profile
            ef = p.file(path)
            grant(ctx, path)
            for n, raw in enumerate(read_records(ctx, path, own=True), start=1):
                for f in p.layout(ef.layout or ""):
                    chunk = raw[f.offset : f.offset + f.length]
                    what = f"record {n}, item {f.item} at {f.offset}"
                    problem = check_coding(f.coding, chunk, f.length)
                    ctx.check(problem is None, msg("data.field_problem", what=what,
                                                   problem=problem),
                              expected=f.coding, measured=chunk.hex().upper())
                    if f.item is None or f.item not in p.items:
                        continue
                    value = codecs.decode(Coding(f.coding), chunk)
                    for rule in p.item(f.item).rules:
                        problem = check_rule(rule, value, p.spec.code_tables)
                        ctx.check(problem is None, msg("data.field_rule", what=what,
                                                       rule=rule, problem=problem),
                                  expected=rule, measured=value)


def _index_cases(profile: CardProfile, out: list[Case]) -> None:
    for path, ef in profile.files.items():
        if ef.structure is not Structure.LINEAR_FIXED or not ef.items:
            continue
        number = ef.items[0]
        item = profile.item(number)
        if not item.rules:
            continue

        @make(
            out, f"DATA-IDX-{slug(path)}-001", "DATA",
            f"{path} 索引标志取值",
            f"{path}: index flags",
            "REFERENCE.md §1 (DF03 index files), §5 (initial contents); evidence §3.3",
            f"Each of the {ef.records} records is {ef.record_length} byte(s) holding item "
            f"{number} ({item.en}) that satisfies {', '.join(item.rules)} (used or free).",
            purpose_zh=f"{ef.records} 条记录每条 {ef.record_length} 字节，含数据项 {number}（"
                       f"{item.zh}"
                       f"），满足 {', '.join(item.rules)}（已用或空闲）。",
            expected_sw=("ok",),
            preconditions=f"card reset; read right of {path} granted",
        )
        def index(ctx: CaseContext, path: str = path, number: int = number) -> None:
            p = ctx.profile
            grant(ctx, path)
            for n, raw in enumerate(read_records(ctx, path, own=True), start=1):
                value = codecs.decode(Coding(p.item(number).coding), raw)
                for rule in p.item(number).rules:
                    problem = check_rule(rule, value, p.spec.code_tables)
                    ctx.check(problem is None, msg("data.record_problem", n=n,
                                                   problem=problem))


def _city_cases(profile: CardProfile, out: list[Case]) -> None:
    number = profile.role_item("city_code")
    item = profile.item(number)

    @make(
        out, "DATA-CITY-001", "DATA",
        f"应用城市代码（数据项 {number}）已个人化",
        f"The application city code (item {number}) is personalised",
        f"REFERENCE.md §4 (CityCode8 = first 2 bytes of item {number}), §3 (keys derived at "
        f"personalization); evidence §3.1 item {number}, §4.5",
        f"Item {number} ({item.en}) holds a city code (not the empty FF…): the level-2 card "
        "keys are diversified with it, so a terminal needs it to authenticate.",
        purpose_zh=f"数据项 {number}（{item.zh}）含城市代码（不是空的 FF…）：二级卡片密钥以其分散"
                   "，终端认证需要它。",
        expected_sw=("ok",),
        severity="critical",
    )
    def city_code(ctx: CaseContext, number: int = number) -> None:
        value = item_value(ctx, number)
        ctx.check(bool(value), msg("data.city_not_personalised", number=number),
                  expected="personalised", measured="all FF")
        for rule in ctx.profile.item(number).rules:
            problem = check_rule(rule, value, ctx.profile.spec.code_tables)
            ctx.check(problem is None, msg("data.item_problem", number=number, problem=problem),
                      expected=rule, measured=value)


# --------------------------------------------------------------------------- catalogue


def cases(profile: CardProfile) -> list[Case]:
    out: list[Case] = []
    _item_cases(profile, out)
    _consistency_cases(profile, out)
    _read_by_tag_cases(profile, out)
    _cyclic_cases(profile, out)
    _index_cases(profile, out)
    _city_cases(profile, out)
    return out
