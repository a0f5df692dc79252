"""Synthetic run directories for the report tests, built from conformance.results dataclasses.

make_run(path, n_cases) writes summary.json, results.jsonl and evidence/<ID>.jsonl exactly as
the pytest plugin would, with a mix of verdicts chosen by `verdicts`.
"""

from __future__ import annotations

import json
from pathlib import Path

from conformance.results import (
    CaseResult,
    RunSummary,
    Verdict,
    conclude,
    count,
    run_scope,
    scope_of,
    sha256_file,
)

GROUPS = ["ATR", "FS-DDF1", "FS-DF01", "FS-DF02", "FS-DF03", "SEC-RD", "SEC-WR", "SM-UPD", "PERF"]


def make_case(index: int, verdict: Verdict, *, mandatory: bool = True) -> CaseResult:
    group = GROUPS[index % len(GROUPS)]
    return CaseResult(
        id=f"{group}-{index:03d}",
        group=group,
        title_zh=f"读取记录文件并检查状态字 第{index}项",
        title_en=f"Read the record file and check the status word, case {index}",
        clause="REFERENCE.md §5; evidence §4.1",  # the trace note, for the lab only
        purpose="The card answers READ RECORD as the profile says.",
        applicability="ics.contact",
        expected_sw=["9000"] if index % 3 else ["6982", "61xx"],
        mandatory=mandatory,
        verdict=verdict,
        reason="" if verdict is Verdict.PASS else f"SW 6A82 instead of 9000 (case {index})",
        duration_s=0.0123 + index / 1000,
        source="WS/T 543.4-2017 §6.3",
        **({} if index % 5 else CHOICE),
    )


CHOICE = {
    "reference_choice": "Rests on reference profile p 1.0 §5 status words [choice].",
    "reference_choice_zh": "依据参考配置 p 1.0 第 5 节：状态字 [choice]。",
    "choice_notes": ["Rests on reference profile p 1.0 §5 status words [choice]."],
    "choice_notes_zh": ["依据参考配置 p 1.0 第 5 节：状态字 [choice]。"],
}
"""The [choice] every fifth synthetic case rests on."""


def make_run(
    run_dir: Path,
    n_cases: int = 20,
    *,
    verdicts: dict[int, Verdict] | None = None,
    card_samples: int = 1,
    card: str = "pcsc",
    plan_kind: str = "certification",
) -> list[CaseResult]:
    """Write a complete synthetic run into run_dir; all PASS unless `verdicts` says otherwise.

    By default a certification of a sample in a PC/SC reader whose catalogue is these cases;
    `card="virtual"` or `plan_kind="subset"` make it a bench self-test or a partial run."""
    run_dir.mkdir(parents=True, exist_ok=True)
    evidence = run_dir / "evidence"
    evidence.mkdir(exist_ok=True)
    verdicts = verdicts or {}
    results: list[CaseResult] = []
    for i in range(n_cases):
        case = make_case(i, verdicts.get(i, Verdict.PASS), mandatory=i % 7 != 6)
        path = evidence / f"{case.id}.jsonl"
        lines = [
            {"t": 0.001 * k, "dir": ">", "apdu": f"00B2{k:02X}0400", "case": case.id}
            for k in range(1, 4)
        ] + [{"t": 0.004, "dir": "<", "apdu": "6F0A 9000", "pin": "sha256:ab12…(masked)"}]
        path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
        case.evidence = f"evidence/{case.id}.jsonl"
        case.evidence_sha256 = sha256_file(path)
        results.append(case)
    (run_dir / "results.jsonl").write_text(
        "".join(r.to_json() + "\n" for r in results), encoding="utf-8"
    )
    samples = [
        {
            "atr": f"3B6D0000{i:02X}1234567890ABCD48432017 01".replace(" ", ""),
            "chip_serial": f"CSN-{i:08d}",
            "card_number_factor": f"{i:02X}1234567890ABCD",
            "reader": "Virtual PCD 00 00",
        }
        for i in range(card_samples)
    ]
    scope = run_scope(card=card, plan_kind=plan_kind, catalogue=n_cases,
                      mandatory_ids=[r.id for r in results if r.mandatory], results=results)
    summary = RunSummary(
        verdict=conclude(results, complete=True, scope=scope_of(scope)),
        scope=scope,
        counts=count(results),
        cases=[{"id": r.id, "verdict": r.verdict.value} for r in results],
        card=samples[0] if card_samples == 1 else {"samples": samples},
        product={
            "vendor": "示例卡商 Example Card Co.",
            "name": "HC-COS 健康卡",
            "version": "2.1",
            "ics": {"contact": True, "contactless": False, "pin": True, "magstripe": False},
            "ics_path": "profiles/products/example.yaml",
        },
        plan={
            "name": "full",
            "version": "1",
            "path": "profiles/plans/full.yaml",
            "sha256": "1" * 64,
        },
        profile={
            "name": "wst543-reference",
            "version": "1.0",
            "path": "profiles/standard/wst543.yaml",
        },
        bench={
            "readers": ["Virtual PCD 00 00"],
            "pcsc_lite": "2.0.3",
            "driver": "vsmartcard-vpcd 0.9",
            "os": "Debian GNU/Linux 12",
            "python": "3.11.7",
            "transport": "pcsc",
        },
        suite_version="0.1.0",
        started="2025-06-01T09:00:00+08:00",
        finished="2025-06-01T09:12:34+08:00",
    )
    (run_dir / "summary.json").write_text(summary.to_json(), encoding="utf-8")
    return results
