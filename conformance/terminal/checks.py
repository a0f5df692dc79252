"""The result checks of a terminal case: what the terminal answered against what the card
holds, and the card after a write against the card before it plus the write asked."""

from __future__ import annotations

import re
from typing import Any

from conformance.card.content import CardContent
from conformance.model.profile import CardProfile
from conformance.terminal.cases import TerminalCase
from conformance.terminal.judge import Finding
from conformance.terminal.transaction import Outcome
from conformance.terminal.values import (
    apply_write,
    card_items,
    changed_items,
    cyclic_records,
    slot_items,
)

__all__ = ["check_result"]

SHOWN = 4  # differences named in one finding


def _f(rule: str, en: str, zh: str) -> Finding:
    return Finding(rule, en, zh)


def _answered(case: TerminalCase, o: Outcome) -> list[Finding]:
    doc = o.document if isinstance(o.document, dict) else {}
    if case.expect == "ok":
        if o.problem:
            return [_f("answered", o.problem, o.problem_zh)]
        if o.exit_code != 0:
            sw = f" (sw {doc['sw']})" if doc.get("sw") else ""
            msg = str(doc.get("message", ""))[:120]
            return [_f("answered", f"the terminal refused the transaction, exit status "
                       f"{o.exit_code}{sw}: {msg}",
                       f"终端拒绝了交易，退出码 {o.exit_code}{sw}：{msg}")]
        return _shape(case, doc)
    if o.exit_code is None or (o.exit_code or 0) < 0 or (o.problem and o.exit_code == 0):
        return [_f("answered", o.problem, o.problem_zh)]
    if o.exit_code == 0:
        return [_f("answered", "the terminal reported success (exit 0) where the card or the "
                   "input could not allow it",
                   "卡片或输入不允许完成交易，终端却报告成功（退出码 0）")]
    if o.problem:
        return [_f("answered", o.problem, o.problem_zh)]
    sw = str(doc.get("sw", "")).upper()
    if case.sw and not sw.startswith(case.sw.upper()):
        return [_f("answered", f"the error names sw {sw or '(none)'}, the card answered "
                   f"{case.sw}…", f"错误报告的 sw 为 {sw or '（无）'}，卡片应答为 {case.sw}…")]
    return []


def _shape(case: TerminalCase, doc: dict[str, Any]) -> list[Finding]:
    op = case.operation
    key = "records" if op.startswith("read-") and op.endswith("s") else (
        "items" if op == "get" or op.startswith("read-") else "status")
    value = doc.get(key)
    good = (isinstance(value, list) if key == "records" else isinstance(value, dict)
            if key == "items" else value == "ok")
    if op.startswith("write-") and good:
        good = isinstance(doc.get("slot"), int)
    if good:
        return []
    return [_f("answered", f"{op} answered {str(doc)[:80]}, not the document TERMINAL.md gives",
               f"{op} 的输出 {str(doc)[:80]} 不是 TERMINAL.md 规定的文档")]


def _diff(want: dict[str, str], got: Any, where: str = "") -> tuple[str, str] | None:
    if not isinstance(got, dict):
        return (f"{where}printed {got!r:.60} instead of an item map",
                f"{where}输出的不是数据元映射")
    shown, shown_zh = [], []
    for n in sorted(set(want) | {str(k) for k in got}, key=lambda k: (len(k), k)):
        w, g = want.get(n), got.get(n)
        if w == g:
            continue
        if w is None:
            shown.append(f"item {n} printed but not asked")
            shown_zh.append(f"数据元 {n} 未要求却输出")
        elif g is None:
            shown.append(f"item {n} missing")
            shown_zh.append(f"缺少数据元 {n}")
        else:
            shown.append(f"item {n}: printed {g!r}, the card holds {w!r}")
            shown_zh.append(f"数据元 {n}：输出 {g!r}，卡内为 {w!r}")
    if not shown:
        return None
    more = f" (+{len(shown) - SHOWN} more)" if len(shown) > SHOWN else ""
    return (where + "; ".join(shown[:SHOWN]) + more, where + "；".join(shown_zh[:SHOWN]) + more)


def _values(case: TerminalCase, profile: CardProfile, before: CardContent,
            doc: dict[str, Any]) -> list[Finding]:
    op = case.operation
    if op == "get":
        held = card_items(profile, before)
        want = {n: held[n] for n in dict.fromkeys(case.args)}
        found = _diff(want, doc.get("items"))
    elif op in ("read-allergies", "read-immunizations"):
        kind = "allergy" if op == "read-allergies" else "immunization"
        wants = cyclic_records(profile, before, kind)
        got = doc.get("records")
        if not isinstance(got, list) or len(got) != len(wants):
            n = len(got) if isinstance(got, list) else "no"
            found = (f"{n} records printed, the card holds {len(wants)} (newest first)",
                     f"输出 {n} 条记录，卡内有 {len(wants)} 条（最新在前）")
        else:
            found = next((d for i, (w, g) in enumerate(zip(wants, got, strict=True))
                          if (d := _diff(w, g, f"record {i + 1}: "))), None)
    else:
        kind = op.removeprefix("read-")
        found = _diff(slot_items(profile, before, kind, int(case.args[0])), doc.get("items"))
    return [_f("values", *found)] if found else []


def _writes(case: TerminalCase, profile: CardProfile, before: CardContent, after: CardContent,
            doc: dict[str, Any], slot: int | None) -> list[Finding]:
    items = {str(k): v for k, v in (case.input or {}).get("items", {}).items()}
    out: list[Finding] = []
    if slot is not None and doc.get("slot") != slot:
        out.append(_f("slot", f"the terminal chose slot {doc.get('slot')}, the rule gives slot "
                      f"{slot}", f"终端选择了第 {doc.get('slot')} 个位置，按规则应为第 {slot} 个"))
    expected = apply_write(profile, before, case.operation, items, slot)
    differ = changed_items(profile, expected, after)
    asked = [d for d in differ if (m := re.match(r"item (\d+)", d)) and m.group(1) in items
             and (slot is None or d.endswith(_slot_file(profile, case, slot)))]
    other = [d for d in differ if d not in asked]
    if asked:
        out.append(_f("written", "not written as asked: " + ", ".join(asked[:SHOWN]),
                      "未按要求写入：" + "，".join(asked[:SHOWN])))
    if other:
        out.append(_f("untouched", "changed without being asked: " + ", ".join(other[:SHOWN]),
                      "未要求却被改变：" + "，".join(other[:SHOWN])))
    return out


def _slot_file(profile: CardProfile, case: TerminalCase, slot: int) -> str:
    from conformance.terminal.values import slot_path

    return slot_path(profile, case.operation.removeprefix("write-"), slot)


def check_result(case: TerminalCase, profile: CardProfile, before: CardContent,
                 after: CardContent, outcome: Outcome, slot: int | None,
                 commands_sent: int) -> list[Finding]:
    """Every result check the transaction broke."""
    out = _answered(case, outcome)
    if "no_apdu" in case.own and commands_sent:
        out.append(_f("no_apdu", f"{commands_sent} APDU(s) reached the card before the bad "
                      "value was refused", f"拒绝无效值之前已向卡发送 {commands_sent} 条 APDU"))
    doc = outcome.document if isinstance(outcome.document, dict) else {}
    if case.expect != "ok" or out:
        if case.expect != "ok" and case.operation != "get" and not case.operation.startswith(
                "read-") and after is not None:
            changed = changed_items(profile, before, after)
            if changed:
                out.append(_f("untouched", "the card changed although the transaction failed: "
                              + ", ".join(changed[:SHOWN]),
                              "交易失败但卡内数据被改变：" + "，".join(changed[:SHOWN])))
        return out
    if case.operation == "get" or case.operation.startswith("read-"):
        return out + _values(case, profile, before, doc)
    return out + _writes(case, profile, before, after, doc, slot)
