"""The report lists the observations the cases recorded (answers the text also allows)."""

from __future__ import annotations

import json
from pathlib import Path

from report_support import make_run

from conformance.report import build_model, write_report

NOTE = "SELECT A4: card answered 6A80 (wrong_data) where the reference answers 6700; both allowed"


def test_observations_reach_the_model_and_the_html(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_run(run, 6)
    results = run / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    rows[0]["observations"] = [NOTE]
    results.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                       encoding="utf-8")
    assert build_model(run).observations == [(rows[0]["id"], NOTE)]
    paths = write_report(run, pdf=False)
    html = paths.html.read_text(encoding="utf-8")
    assert "Observations" in html and "both allowed" in html


def test_a_run_without_observations_has_no_section(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_run(run, 6)
    assert "观察记录 Observations" not in write_report(run, pdf=False).html.read_text("utf-8")
