"""Synthetic issued cards for benchmarks and tests: the default personalization, varied per card.

Card n is a deterministic function of n: a real county code of GB/T 2260 (item 57 its
prefecture), a birth date, a valid GB 11643 ID number built from them (items 8 and 15), sex
and ethnicity codes, an issue date after the birth and an expiry ten years on, a mobile
number. Every such card satisfies every rule on a validation date before 2026-01-01
(`VALID_ON`); a test plants its own defects on top.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import yaml

from conformance.cases.rules import id_check_char
from conformance.resources import DEFAULT_PERSONALIZATION
from conformance.validate.gb2260 import load_divisions

__all__ = ["VALID_ON", "card_items", "cards", "write_csv", "write_dumps"]

VALID_ON = dt.date(2025, 12, 31)
"""A validation date on which no synthetic card has expired (issued 2016–2024, ten years)."""
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"


@cache
def _base() -> dict[str, str]:
    data = yaml.safe_load(DEFAULT_PERSONALIZATION.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data["items"].items() if k != 5}  # 5: the certificate


@cache
def _counties() -> list[tuple[str, str]]:
    """(county code, its prefecture's code) of every current county with a current prefecture."""
    divisions = load_divisions()
    return [(code, code[:4] + "00") for code, d in sorted(divisions.items())
            if code[4:] != "00" and not d.until and code[:4] + "00" in divisions
            and not divisions[code[:4] + "00"].until]


def card_items(n: int) -> dict[str, str]:
    """The items of synthetic card n (all valid)."""
    rng = random.Random(n)
    county, prefecture = rng.choice(_counties())
    birth = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(365 * 85))
    sequence = rng.randrange(1000)
    body = f"{county}{birth:%Y%m%d}{sequence:03d}"
    number = body + id_check_char(body)
    issued = max(dt.date(2016, 1, 1) + dt.timedelta(days=rng.randrange(365 * 9)), birth)
    expiry = issued.replace(year=issued.year + 10, day=min(issued.day, 28))
    items = dict(_base())
    items.update({
        "6": f"{issued:%Y%m%d}", "7": f"{expiry:%Y%m%d}", "8": number, "15": number,
        "38": number, "10": f"HC{n:08d}", "11": rng.choice(SURNAMES) + rng.choice(GIVEN)
        + rng.choice(GIVEN), "12": "01" if sequence % 2 else "02",
        "13": f"{rng.randint(1, 56):02d}", "14": f"{birth:%Y%m%d}",
        "16": f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}", "57": prefecture,
    })
    return items


def cards(count: int, start: int = 0) -> Iterator[dict[str, str]]:
    for n in range(start, start + count):
        yield card_items(n)


def write_csv(path: Path, count: int, *, encoding: str = "utf-8") -> Path:
    """A card-management export of `count` cards (header item_1,…), one row at a time."""
    columns = list(_base())
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"item_{k}" for k in columns])
        for items in cards(count):
            writer.writerow([items.get(k, "") for k in columns])
    return path


def write_dumps(directory: Path, count: int) -> Path:
    """`count` dump files, card-<n>.json, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for n, items in enumerate(cards(count)):
        (directory / f"card-{n:07d}.json").write_text(
            json.dumps(items, ensure_ascii=False, indent=2), encoding="utf-8")
    return directory
