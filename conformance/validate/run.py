"""A validation run: cards in, findings out to validation.json and findings.csv, streamed.

Memory stays flat in the number of cards: each card is checked and forgotten; its findings
go straight to findings.csv and to a spool file that validation.json is assembled from at the
end (with the counts, per rule and per issuing city, that only the end knows). What grows is
the number of distinct cities, bounded by the GB/T 2260 table, and nothing per card.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from conformance.validate.check import Context, Unreadable, check_card
from conformance.validate.sources import Card

__all__ = ["FINDING_FIELDS", "Outcome", "validate_cards", "write_outputs"]

FINDING_FIELDS = ("card", "rule", "item", "value", "message_zh", "message_en", "city")


@dataclass
class _City:
    cards: int = 0
    cards_with_findings: int = 0
    findings: int = 0


@dataclass
class Outcome:
    """What a run counted; `findings` is how many were written (they are on disk, not here)."""

    cards: int = 0
    findings: int = 0
    cards_with_findings: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    by_city: dict[str, _City] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)


def validate_cards(cards: Iterable[Card], context: Context, out_dir: Path,
                   inputs: list[str], zone: ZoneInfo | None = None) -> Outcome:
    """Check every card, writing DIR/findings.csv and DIR/validation.json as it goes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    outcome = Outcome(by_rule={r.name: 0 for r in context.rules.rules})
    csv_path, json_path = out_dir / "findings.csv", out_dir / "validation.json"
    with (csv_path.open("w", encoding="utf-8-sig", newline="") as csv_file,
          tempfile.TemporaryFile("w+", encoding="utf-8", dir=out_dir) as spool):
        writer = csv.writer(csv_file)
        writer.writerow(FINDING_FIELDS)
        for card_id, items in cards:
            findings = check_card(card_id, items, context)
            is_card = not (isinstance(items, Unreadable) and not items.is_card)
            city = findings[0].city if findings else _city_of(items, context)
            if is_card:
                outcome.cards += 1
                tally = outcome.by_city.get(city)
                if tally is None:
                    tally = outcome.by_city[city] = _City()
                tally.cards += 1
                if findings:
                    tally.cards_with_findings += 1
                    outcome.cards_with_findings += 1
                tally.findings += len(findings)
            for finding in findings:
                outcome.by_rule[finding.rule] += 1
                writer.writerow(["" if v is None else v for v in finding])
                spool.write(json.dumps(finding.as_dict(), ensure_ascii=False))
                spool.write("\n")
            outcome.findings += len(findings)
        spool.seek(0)
        _write_json(json_path, _summary(outcome, context, inputs, zone), spool)
    outcome.paths = {"validation.json": json_path, "findings.csv": csv_path}
    return outcome


def _city_of(items: Any, context: Context) -> str:
    """The card's item 57 as check_card reads it (only needed for a card without findings)."""
    if not isinstance(items, dict):
        return ""
    value = items.get(str(context.city_item), items.get(context.city_item))
    return value.strip() if isinstance(value, str) else ""


def _summary(outcome: Outcome, context: Context, inputs: list[str],
             zone: ZoneInfo | None) -> dict[str, Any]:
    rules = context.rules
    return {
        "cards": outcome.cards,
        "cards_with_findings": outcome.cards_with_findings,
        "validated_on": context.validated_on.isoformat(),
        "generated_at": dt.datetime.now(zone).astimezone(zone).isoformat(timespec="seconds"),
        "inputs": inputs,
        "profile": context.profile.spec.profile.name,
        "rules": [{"name": r.name, "message_zh": r.zh, "message_en": r.en,
                   "title_zh": r.title.zh, "title_en": r.title.en, "ref": r.ref,
                   "count": outcome.by_rule[r.name]} for r in rules.rules],
        "by_city": [{"code": code, "name_zh": context.city_name(code), "cards": t.cards,
                     "cards_with_findings": t.cards_with_findings, "findings": t.findings}
                    for code, t in sorted(outcome.by_city.items())],
        "rules_source": rules.source_digests(),
        "personal_items": context.personal_items,
    }


def _write_json(path: Path, summary: dict[str, Any], spool: Any) -> None:
    """validation.json: the summary's keys, then "findings" copied line by line from the
    spool (one finding a line, so a reader can also stream it)."""
    with path.open("w", encoding="utf-8") as out:
        out.write("{\n")
        for key, value in summary.items():
            out.write(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},\n")
        out.write('  "findings": [')
        first = True
        for line in spool:
            out.write("\n    " if first else ",\n    ")
            out.write(line.rstrip("\n"))
            first = False
        out.write("\n  ]\n}\n" if not first else "]\n}\n")


def write_outputs(outcome: Outcome, out_dir: Path, *, show_personal: bool) -> list[Path]:
    """The HTML/PDF quality report from validation.json (conformance/validate/report.py);
    [] when that module is not installed here."""
    try:
        from conformance.validate.report import write_quality_report  # type: ignore[import-not-found]
    except ImportError:
        return []
    validation = json.loads(outcome.paths["validation.json"].read_text(encoding="utf-8"))
    return list(write_quality_report(validation, out_dir, show_personal=show_personal))
