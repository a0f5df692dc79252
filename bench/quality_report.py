#!/usr/bin/env python3
"""How long the card data quality report takes for a big batch: `name: value` lines.

A synthetic validation.json (the shape `rhc validate cards` writes) with FINDINGS findings over
CARDS cards, spread over every rule (most of them EXPIRED and PHONE_FORMAT, as in a real
export), goes through `write_quality_report`:

  quality_findings            findings in the batch
  quality_html_s              validation.json → quality.html and the HTML for the PDF
                              (masking, counts, table, tab-aligned list)
  quality_pdf_s               the latter printed to quality.pdf (WeasyPrint)
  quality_pdf_pages           pages of quality.pdf (the findings table is capped)
  quality_html_bytes          size of quality.html

Nothing here asserts a time. Usage: python bench/quality_report.py [--findings N] [--cards N]
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.report.render import write_pdf  # noqa: E402
from conformance.validate.report import render_quality_html  # noqa: E402

RULES = {  # rule: (item, weight)
    "ID_CHECKSUM": (15, 2), "ID_BIRTHDATE_MISMATCH": (15, 1), "CARDNO_MISMATCH": (8, 1),
    "SEX_CODE": (12, 1), "ETHNIC_CODE": (13, 1), "DATE_INVALID": (14, 1),
    "DATE_ORDER": (6, 1), "EXPIRED": (7, 40), "CITY_CODE": (57, 2), "PHONE_FORMAT": (16, 30),
    "REQUIRED_MISSING": (11, 5), "MALFORMED": (None, 1),
}
CITIES = [("110100", "北京市"), ("310100", "上海市"), ("440100", "广州市"), ("440300", "深圳市"),
          ("510100", "成都市"), ("420100", "武汉市")]


def batch(findings: int, cards: int, seed: int = 7) -> dict:
    rng = random.Random(seed)
    names, weights = list(RULES), [w for _, w in RULES.values()]
    rows = []
    for _ in range(findings):
        rule = rng.choices(names, weights)[0]
        item = RULES[rule][0]
        region, year = rng.randrange(110000, 659999), rng.randrange(1950, 2020)
        card = f"{region}{year}0101{rng.randrange(1000, 9999)}"
        value = {16: "1381234567", 7: "20241231", 57: "999999", 11: ""}.get(item, card)
        city = rng.choice(CITIES)[0]
        rows.append({"card": card, "rule": rule, "item": item, "value": value,
                     "message_zh": f"{rule}：数据项 {item} 的值 {value} 不符合规则",
                     "message_en": f"{rule}: item {item} value {value} breaks the rule",
                     "city": city})
    per_city = {code: [0, 0] for code, _ in CITIES}
    for row in rows:
        per_city[row["city"]][1] += 1
    flagged = len({r["card"] for r in rows})
    return {
        "cards": cards, "findings": rows, "validated_on": "2026-12-01",
        "generated_at": "2026-12-01T20:05:03+08:00", "inputs": ["export.csv"],
        "rules": [{"name": n, "message_zh": n, "message_en": n,
                   "count": sum(r["rule"] == n for r in rows)} for n in RULES],
        "by_city": [{"code": code, "name_zh": name, "cards": cards // len(CITIES),
                     "cards_with_findings": min(per_city[code][1], cards // len(CITIES)),
                     "findings": per_city[code][1]} for code, name in CITIES],
        "cards_with_findings": flagged,
        "rules_source": [{"file": "profiles/rules/cards.yaml", "sha256": "0" * 64}],
    }


def pdf_pages(path: Path) -> int | str:
    """Pages of a PDF by pdfinfo (poppler-utils), "unknown" without it."""
    try:
        info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    found = re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE)
    return int(found.group(1)) if found else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--findings", type=int, default=20_000,
                        help="findings in the synthetic batch (default: 20000)")
    parser.add_argument("--cards", type=int, default=100_000,
                        help="cards in the synthetic batch (default: 100000)")
    args = parser.parse_args()
    data = batch(args.findings, args.cards)
    start = time.perf_counter()
    html, printed = render_quality_html(data)
    html_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "quality.pdf"
        start = time.perf_counter()
        write_pdf(printed, pdf)
        pdf_s = time.perf_counter() - start
        pages = pdf_pages(pdf)
    print(f"quality_findings: {args.findings}")
    print(f"quality_html_s: {html_s:.2f}")
    print(f"quality_pdf_s: {pdf_s:.2f}")
    print(f"quality_pdf_pages: {pages}")
    print(f"quality_html_bytes: {len(html.encode())}")


if __name__ == "__main__":
    main()
