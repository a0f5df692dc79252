"""The faulty variants of the reference terminal, as data.

Each fault bends exactly one behaviour that TERMINAL.md requires, so that the terminal suite
can show it catches that behaviour: `rhc terminal reference --fault NAME` runs the reference
terminal with the fault, and the profile `profiles/terminals/faulty-NAME.yaml` certifies it.
``check`` names the trace rule or result check of the terminal suite the fault breaks, and
``case`` the TERM case whose own check it is (the case that must be NOT_CONFORMANT).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAULTS", "Fault", "check_faults"]


@dataclass(frozen=True)
class Fault:
    """One deliberate deviation of the reference terminal from TERMINAL.md."""

    name: str
    check: str
    """The suite's trace rule or result check the fault breaks (e.g. get_response)."""
    case: str
    """The TERM case that owns that check for this fault."""
    zh: str
    en: str
    params: tuple[tuple[str, object], ...] = ()

    def param(self, key: str) -> object:
        return dict(self.params)[key]


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault(
            "skip_get_response", "get_response", "TERM-T0-001",
            "收到61xx后不发送取响应(GET RESPONSE),以该状态字结束交易",
            "takes 61xx as the card's last word: sends no GET RESPONSE and stops with that "
            "status word",
        ),
        Fault(
            "reuse_challenge", "fresh_challenge", "TERM-PUT-002",
            "整个交易只取一次随机数,后续认证和安全报文命令重复使用它",
            "takes one challenge per transaction and uses it again for every later "
            "authentication and secure-messaging command",
        ),
        Fault(
            "retry_refused_auth", "no_retry", "TERM-KEY-002",
            "外部认证被拒绝后用同一密钥再试一次",
            "tries a refused EXTERNAL AUTHENTICATE once more with the same key",
        ),
        Fault(
            "tlv_write_without_sm", "sm_per_spec", "TERM-PUT-001",
            "写TLV记录时不用安全报文,发送明文UPDATE RECORD(00 DC)",
            "writes TLV records with a plain UPDATE RECORD (00 DC) instead of secure messaging",
        ),
        Fault(
            "truncate_gbk_names", "values", "TERM-GET-003",
            "读取姓名类数据项时只保留前20字节(GBK)",
            "keeps only the first 20 GBK bytes of the name items it reads",
            (("items", (11, 25, 28, 31)), ("bytes", 20)),
        ),
        Fault(
            "ignore_index_slot", "slot", "TERM-REC-002",
            "写住院/门诊记录时不读索引,总是写第1个槽位",
            "writes inpatient and outpatient records always to slot 1, without reading the "
            "index",
        ),
        Fault(
            "mislabel_items", "values", "TERM-GET-001",
            "输出时把每个数据项的值标成下一个数据项号",
            "reports every item's value under the number of the item after it",
        ),
        Fault(
            "no_select_before_read", "select_before_read", "TERM-SEL-001",
            "读文件前不选择该文件(READ RECORD/READ BINARY前无SELECT)",
            "reads records and binary files without selecting them first",
        ),
    )
}


def check_faults(names: list[str]) -> frozenset[str]:
    """The fault names as a set; ValueError naming the known ones if one is unknown."""
    unknown = sorted(set(names) - FAULTS.keys())
    if unknown:
        raise ValueError(f"unknown terminal fault(s) {', '.join(unknown)}; known: "
                         f"{', '.join(FAULTS)}")
    return frozenset(names)
