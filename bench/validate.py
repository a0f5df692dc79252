#!/usr/bin/env python3
"""How fast `rhc validate cards` checks issued cards, and that its memory stays flat.

Synthetic batches (conformance/validate/synthetic.py: the default personalization varied per
card, valid ID numbers, real city codes; every 100th card carries a wrong ID check character
so findings are written too) are validated by `rhc validate cards` in a fresh process each, so
the peak RSS is that run's alone:

  validate_100k_s, validate_cards_per_s, validate_peak_rss_mb   a CSV export of 100,000 cards
  validate_10k_s, validate_10k_peak_rss_mb                      the same at 10,000 (flat memory)
  validate_dumps_10k_s, validate_dumps_peak_rss_mb              a directory of 10,000 dumps
  duckdb_1m_rows_s, duckdb_1m_findings, duckdb_peak_rss_mb      with --duckdb N: check_card
                      as a DuckDB function over an N-row card table (the 100k export loaded
                      with read_csv, repeated with new card IDs up to N rows; the RSS is this
                      process's, the table included)

Nothing here asserts a time. `--small` (CI smoke): 2,000 and 200 cards, DuckDB 5,000 rows.

Usage: python bench/validate.py [--small] [--n N] [--duckdb ROWS] [--profile-run]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.validate import synthetic  # noqa: E402

PLANT_EVERY = 100


def emit(name: str, value: object) -> None:
    if isinstance(value, float):
        value = f"{value:.3f}" if value < 100 else f"{value:.1f}"
    print(f"{name}: {value}", flush=True)


def _plant(items: dict[str, str], n: int) -> dict[str, str]:
    """Every PLANT_EVERY-th card: a wrong ID check character (items 8 and 15)."""
    if n % PLANT_EVERY == PLANT_EVERY - 1:
        wrong = "0" if items["15"][-1] != "0" else "1"
        items["8"] = items["15"] = items["15"][:-1] + wrong
    return items


def write_batch_csv(path: Path, count: int) -> Path:
    import csv

    columns = list(synthetic.card_items(0))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"item_{k}" for k in columns])
        for n, items in enumerate(synthetic.cards(count)):
            planted = _plant(items, n)
            writer.writerow([planted.get(k, "") for k in columns])
    return path


def write_batch_dumps(directory: Path, count: int) -> Path:
    import json

    directory.mkdir(parents=True, exist_ok=True)
    for n, items in enumerate(synthetic.cards(count)):
        (directory / f"card-{n:07d}.json").write_text(
            json.dumps(_plant(items, n), ensure_ascii=False, indent=2), encoding="utf-8")
    return directory


def run_validate(inputs: list[Path], out: Path, *,
                 profile_run: bool = False) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one `rhc validate cards` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    prefix = [sys.executable]
    if profile_run:
        prefix += ["-m", "cProfile", "-o", str(out.with_suffix(".prof"))]
    argv = [*prefix, "-m", "conformance.cli", "validate", "cards", *map(str, inputs),
            "--out", str(out), "--date", synthetic.VALID_ON.isoformat()]
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"rhc validate cards exited {code}: "
                         f"{process.stderr.read().decode() if process.stderr else ''}")
    return elapsed, usage.ru_maxrss / 1024


def bench_duckdb(csv_path: Path, rows: int) -> None:
    import duckdb

    from conformance.validate.check import Context
    from conformance.validate.duck import check_table

    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"CREATE TABLE export AS SELECT * FROM read_csv('{csv_path}', all_varchar = true,"
                " header = true)")
    base = con.sql("SELECT count(*) FROM export").fetchall()[0][0]
    copies = -(-rows // base)
    con.execute(f"""CREATE TABLE cards AS SELECT item_8 || '-' || copy AS card_id, export.*
                    FROM export, range({copies}) AS r(copy) LIMIT {rows}""")
    context = Context.load(validated_on=synthetic.VALID_ON)
    start = time.perf_counter()
    findings = check_table(con, "cards", context)
    counted = con.sql("SELECT count(*) FROM findings").fetchall()[0][0]
    elapsed = time.perf_counter() - start
    label = "1m" if rows == 1_000_000 else str(rows)
    emit(f"duckdb_{label}_rows_s", elapsed)
    emit(f"duckdb_{label}_rows_per_s", rows / elapsed)
    emit(f"duckdb_{label}_findings", counted)
    emit("duckdb_peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    del findings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="CI smoke: small batches")
    parser.add_argument("--n", type=int, default=None,
                        help="cards in the large CSV batch (default 100000; --small 2000)")
    parser.add_argument("--duckdb", type=int, default=None, metavar="ROWS",
                        help="also run check_card in DuckDB over a table of ROWS cards "
                        "(default: not run; --small 5000)")
    parser.add_argument("--profile-run", action="store_true",
                        help="run the large batch under cProfile and print its top functions")
    args = parser.parse_args()
    large = args.n or (2_000 if args.small else 100_000)
    small = max(large // 10, 1)
    rows = args.duckdb if args.duckdb is not None else (5_000 if args.small else None)
    with tempfile.TemporaryDirectory(prefix="rhc-validate-bench-") as tmp:
        root = Path(tmp)
        big = write_batch_csv(root / "cards-large.csv", large)
        little = write_batch_csv(root / "cards-small.csv", small)
        dumps = write_batch_dumps(root / "dumps", small)
        seconds, rss = run_validate([big], root / "out-large", profile_run=args.profile_run)
        label = "100k" if large == 100_000 else str(large)
        emit(f"validate_{label}_s", seconds)
        emit("validate_cards_per_s", large / seconds)
        emit("validate_peak_rss_mb", rss)
        seconds, rss = run_validate([little], root / "out-small")
        label_small = "10k" if small == 10_000 else str(small)
        emit(f"validate_{label_small}_s", seconds)
        emit(f"validate_{label_small}_peak_rss_mb", rss)
        seconds, rss = run_validate([dumps], root / "out-dumps")
        emit(f"validate_dumps_{label_small}_s", seconds)
        emit("validate_dumps_peak_rss_mb", rss)
        if args.profile_run:
            import pstats

            pstats.Stats(str((root / "out-large").with_suffix(".prof"))).sort_stats(
                "cumulative").print_stats(25)
        if rows:
            bench_duckdb(big, rows)


if __name__ == "__main__":
    main()
