"""PERF: how long the card takes, measured against the plan's limits (OpenHTF measurements).

WS/T 543 and REFERENCE.md set no timing: the limits, the repetitions and the files each
measurement uses are the plan's (``parameters.performance`` in profiles/plans/*.yaml), so a
lab states its own. Each case measures one thing (a command's latency, a terminal's typical
transaction, the photo's read throughput, the time to an ATR) and records value, limit and
unit beside its verdict; the card's answers must be right for the time to count, so a wrong
answer leaves the case INCONCLUSIVE, never FAIL. The cases are optional: a certification
stands on the mandatory cases, and a timing FAIL says the card missed the lab's limit.
"""

from __future__ import annotations

from collections.abc import Callable

from conformance.cases.common import make
from conformance.cases.framework import Case, CaseContext
from conformance.cases.measure import THROUGHPUT_UNIT, Meter, number, setting
from conformance.iso7816 import RECORD_P2_BY_NUMBER
from conformance.messages import Msg, msg
from conformance.model.profile import CardProfile
from conformance.model.tree import index_flags

CLAUSE = "plan parameters.performance (WS/T 543 and REFERENCE.md set no timing)"


def _target(entry: dict[str, object], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"plan parameter performance.{where}.{key} must name a file")
    return value


def _count(entry: dict[str, object], key: str, where: str) -> int:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"plan parameter performance.{where}.{key} must be a whole number "
                         f"≥ 1, not {value!r}")
    return value


def _ok(ctx: CaseContext, what: Msg, send: Callable[[], object]) -> Callable[[], None]:
    """An operation whose answer must be right for its time to count (else INCONCLUSIVE)."""

    def op() -> None:
        with ctx.precondition(what):
            send()

    return op


def _timed_command(ctx: CaseContext, what: Msg, name: str, p1: int, p2: int, data: bytes = b"",
             le: int | None = None) -> Callable[[], None]:
    """One command of the profile, which must answer 9000."""
    apdu = ctx.apdu(name, p1, p2, data, le)

    def send() -> None:
        ctx.expect_sw(ctx.send(apdu), "ok", what=what)

    return _ok(ctx, what, send)


def cases(profile: CardProfile) -> list[Case]:
    out: list[Case] = []
    meta = {"mandatory": False, "severity": "minor", "interpretations": ("plan_time_limits",)}
    security = profile.spec.security

    def case(id: str, zh: str, en: str, purpose: str, purpose_zh: str) -> Callable[..., object]:
        return make(out, id, "PERF", zh, en, CLAUSE, purpose, purpose_zh=purpose_zh, **meta)

    @case("PERF-CMD-001", "SELECT 命令响应时间", "SELECT latency",
          "The median time SELECT of an EF in the current DF takes, from the transport's "
          "timestamps around each exchange, is within the plan's limit (performance.select).",
          "以传输层在每次交换前后的时间戳计，选择当前 DF 下 EF 的 SELECT 所用时间的中位数在计划"
          "限值之内（performance.select）。")
    def select(ctx: CaseContext) -> None:
        entry = setting(ctx, "select")
        path = _target(entry, "target", "select")
        ctx.select(path.partition("/")[0])
        fid = bytes.fromhex(ctx.profile.file(path).fid)
        what = msg("perf.select", path=path)
        op = _timed_command(ctx, what, "select", 0x00, 0x00, fid)
        Meter(ctx).measure(what, op, limit=number(entry, "limit_ms", "select"))

    @case("PERF-CMD-002", "READ RECORD 命令响应时间", "READ RECORD latency",
          "The median time of READ RECORD of one record (T=0 GET RESPONSE included) is within "
          "the plan's limit (performance.read_record).",
          "读一条记录的 READ RECORD（含 T=0 的 GET RESPONSE）所用时间的中位数在计划限值之内（per"
          "formance.read_record）。")
    def read_record(ctx: CaseContext) -> None:
        entry = setting(ctx, "read_record")
        path = _target(entry, "target", "read_record")
        n = _count(entry, "record", "read_record")
        with ctx.precondition(msg("perf.read_right", path=path)):
            ctx.session.read_record(path, n)
        what = msg("perf.read_record", n=n, path=path)
        op = _timed_command(ctx, what, "read_record", n, RECORD_P2_BY_NUMBER,
                      le=security.max_short_le)
        Meter(ctx).measure(what, op,
                           limit=number(entry, "limit_ms", "read_record"))

    @case("PERF-CMD-003", "READ BINARY（255 字节）响应时间", "READ BINARY latency (255 bytes)",
          "The median time of READ BINARY of 255 bytes (T=0 GET RESPONSE included) is within "
          "the plan's limit (performance.read_binary).",
          "读 255 字节的 READ BINARY（含 T=0 的 GET RESPONSE）所用时间的中位数在计划限值之内（pe"
          "rformance.read_binary）。")
    def read_binary(ctx: CaseContext) -> None:
        entry = setting(ctx, "read_binary")
        path = _target(entry, "target", "read_binary")
        length = _count(entry, "length", "read_binary")
        with ctx.precondition(msg("perf.read_right", path=path)):
            ctx.session.read_binary(path, 0, 1)
        what = msg("perf.read_binary", length=length, path=path)
        op = _timed_command(ctx, what, "read_binary", 0, 0, le=length)
        Meter(ctx).measure(what, op,
                           limit=number(entry, "limit_ms", "read_binary"))

    @case("PERF-CMD-004", "GET CHALLENGE 命令响应时间", "GET CHALLENGE latency",
          "The median time of GET CHALLENGE is within the plan's limit "
          "(performance.get_challenge).",
          "GET CHALLENGE 所用时间的中位数在计划限值之内（performance.get_challenge）。")
    def get_challenge(ctx: CaseContext) -> None:
        entry = setting(ctx, "get_challenge")
        what = msg("perf.get_challenge")
        op = _ok(ctx, what, ctx.session.get_challenge)
        Meter(ctx).measure(what, op,
                           limit=number(entry, "limit_ms", "get_challenge"))

    @case("PERF-CMD-005", "EXTERNAL AUTHENTICATE 命令响应时间", "EXTERNAL AUTHENTICATE latency",
          "The median time of the EXTERNAL AUTHENTICATE exchange alone (its GET CHALLENGE "
          "untimed) with a key of the plan is within its limit "
          "(performance.external_authenticate).",
          "以计划规定的密钥进行的 EXTERNAL AUTHENTICATE 交换本身（其 GET CHALLENGE"
          " 不计时）所用时间的中位数在限值之内（performance.external_authenticate）。")
    def external_authenticate(ctx: CaseContext) -> None:
        entry = setting(ctx, "external_authenticate")
        family = _target(entry, "key", "external_authenticate")
        meter = Meter(ctx)
        what = msg("perf.authenticate", family=family)
        op = _ok(ctx, what, lambda: ctx.session.authenticate(family))
        meter.measure(what, op, timed=meter.last_exchange,
                      limit=number(entry, "limit_ms", "external_authenticate"))

    @case("PERF-CMD-006", "安全报文 UPDATE RECORD 响应时间", "SM UPDATE RECORD latency",
          "The median time of the secure-messaging UPDATE RECORD exchange alone (its GET "
          "CHALLENGE untimed), writing back the record it read, is within the plan's limit "
          "(performance.update_record_sm); the card keeps its content.",
          "安全报文 UPDATE RECORD 交换本身（其 GET CHALLENGE 不计时，写回读出的记录）"
          "所用时间的中位数在计划限值之内（performance.update_record_sm）；卡片内容不变。")
    def update_record_sm(ctx: CaseContext) -> None:
        entry = setting(ctx, "update_record_sm")
        path = _target(entry, "target", "update_record_sm")
        n = _count(entry, "record", "update_record_sm")
        with ctx.precondition(msg("perf.read_record_first", n=n, path=path)):
            record = ctx.session.read_record(path, n)
        if len(record) < 2 or len(record) < 2 + record[1]:
            ctx.inconclusive(msg("perf.no_tlv", n=n, path=path, data=record.hex().upper()))
        tlv = record[: 2 + record[1]]
        meter = Meter(ctx)
        what = msg("perf.update_record_sm", n=n, path=path)
        op = _ok(ctx, what, lambda: ctx.session.update_record_sm(path, n, tlv))
        meter.measure(what, op, timed=meter.last_exchange,
                      limit=number(entry, "limit_ms", "update_record_sm"))

    @case("PERF-TX-001", "读基本信息交易时间", "Transaction: read basic information",
          "A terminal's reading of the basic information — reset, the plan's first file "
          "(issuer data, free), authentication, the second file (cardholder data) — takes a "
          "median time within the plan's limit (performance.read_basic_information).",
          "终端读基本信息（复位、计划的第一个文件（发卡机构数据，自由读）、认证、第二个文件（持卡人数据））所用"
          "时间的中位数在计划限值之内（performance.read_basic_information）。")
    def read_basic_information(ctx: CaseContext) -> None:
        entry = setting(ctx, "read_basic_information")
        files = entry.get("files")
        if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
            raise ValueError("plan parameter performance.read_basic_information.files must "
                             "list files")

        def transaction() -> None:
            ctx.session.reset()
            for path in files:
                ctx.session.read_file(path)

        what = msg("perf.read_basic_information")
        op = _ok(ctx, what, transaction)
        Meter(ctx).measure(what, op,
                           limit=number(entry, "limit_ms", "read_basic_information"))

    @case("PERF-TX-002", "写门诊记录交易时间", "Transaction: write an outpatient record",
          "A terminal's writing of an outpatient record — authentication, the index mark, the "
          "record written — takes a median time within the plan's limit "
          "(performance.write_outpatient_record); index and record are restored after each "
          "repetition, untimed.",
          "终端写一条门诊记录（认证、标记索引、写记录）所用时间的中位数在计划限值之内（performa"
          "nce.write_outpatient_record）；每次重复后恢复索引与记录，不计时。")
    def write_outpatient_record(ctx: CaseContext) -> None:
        where = "write_outpatient_record"
        entry = setting(ctx, where)
        index = _target(entry, "index", where)
        n = _count(entry, "index_record", where)
        record = _target(entry, "record", where)
        size = _count(entry, "bytes", where)
        with ctx.precondition(msg("perf.read_originals", record=record, n=n, index=index)):
            original = ctx.session.read_binary(record, 0, size)
            flag = ctx.session.read_record(index, n)
        _used, free = index_flags(ctx.profile, index)
        written = bytes(reversed(original))  # other bytes, same length

        def transaction() -> None:
            ctx.session.reset()
            ctx.session.mark_index(index, n)
            ctx.session.update_binary(record, 0, written)

        def restore() -> None:
            with ctx.precondition(msg("perf.restore", record=record, n=n, index=index)):
                ctx.session.reset()
                if flag == free:
                    ctx.session.erase_index(index, n)
                ctx.session.update_binary(record, 0, original)

        what = msg("perf.write_outpatient_record")
        op = _ok(ctx, what, transaction)
        Meter(ctx).measure(what, op, between=restore,
                           limit=number(entry, "limit_ms", where))

    @case("PERF-PHOTO-001", "照片读取吞吐率", "Photo read throughput",
          "Reading the whole photo file in READ BINARY chunks runs at a median throughput of "
          "at least the plan's limit (performance.photo_read, bytes per second).",
          "以 READ BINARY 分块读取整个照片文件，吞吐率的中位数不低于计划限值（performance.photo_"
          "read，字节/秒）。")
    def photo_read(ctx: CaseContext) -> None:
        entry = setting(ctx, "photo_read")
        path = _target(entry, "target", "photo_read")
        size = ctx.profile.file(path).size or 0
        with ctx.precondition(msg("perf.read_right", path=path)):
            ctx.session.read_binary(path, 0, 1)
        what = msg("perf.read_file", path=path, size=size)
        op = _ok(ctx, what, lambda: ctx.session.read_binary(path))
        Meter(ctx).measure(what, op, unit=THROUGHPUT_UNIT, size=size,
                           limit=number(entry, "min_bytes_per_s", "photo_read"))

    @case("PERF-RST-001", "热复位至复位应答时间", "Warm reset to ATR",
          "A warm reset returns the ATR within the plan's limit, as a median "
          "(performance.warm_reset).",
          "热复位返回复位应答所用时间的中位数在计划限值之内（performance.warm_reset）。")
    def warm_reset(ctx: CaseContext) -> None:
        entry = setting(ctx, "warm_reset")
        what = msg("perf.warm_reset")
        op = _ok(ctx, what, ctx.session.reset)
        Meter(ctx).measure(what, op, limit=number(entry, "limit_ms", "warm_reset"))

    @case("PERF-RST-002", "冷复位至复位应答时间", "Cold reset to ATR",
          "A cold reset (power off and on, where the reader can) returns the ATR within the "
          "plan's limit, as a median (performance.cold_reset).",
          "冷复位（读卡器支持时断电再上电）返回复位应答所用时间的中位数在计划限值之内（performan"
          "ce.cold_reset）。")
    def cold_reset(ctx: CaseContext) -> None:
        entry = setting(ctx, "cold_reset")
        what = msg("perf.cold_reset")
        op = _ok(ctx, what, lambda: ctx.session.reset(cold=True))
        Meter(ctx).measure(what, op, limit=number(entry, "limit_ms", "cold_reset"))

    return out
