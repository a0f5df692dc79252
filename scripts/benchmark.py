#!/usr/bin/env python3
"""Speed figures of the suite, printed (never asserted in unit tests).

  in-process APDU rate of the virtual card (READ RECORD, SELECT, read by tag, GET CHALLENGE)
  the whole certification catalogue in-process (cases, seconds)
  the signed report of a real run (XML, XAdES signature, HTML, PDF)
  PC/SC round trip through pcscd + vpcd (only when pcscd runs: scripts/with-pcscd.sh)

Usage: .venv/bin/python scripts/benchmark.py [--no-pcsc]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from casekit import catalogue, new_card, runner_for

APDUS = {
    "READ RECORD": "00B2010400",
    "SELECT EF": "00A4000002EF05",
    "READ RECORD by tag": "00B2390000",
    "GET CHALLENGE": "0084000008",
}


def card_rate(n: int = 20000) -> None:
    card = new_card()
    card.reset()
    for apdu in ("00A4000002DDF1", "00A4000002EF05"):
        card.process(bytes.fromhex(apdu))
    for name, hexapdu in APDUS.items():
        apdu = bytes.fromhex(hexapdu)
        start = time.perf_counter()
        for _ in range(n):
            card.process(apdu)
        each = (time.perf_counter() - start) / n
        print(f"virtual card  {name:<20} {each * 1e6:7.1f} µs/APDU  {1 / each:>9,.0f} APDU/s")


def catalogue_run() -> None:
    card = new_card()
    runner = runner_for(card)
    cases = [c for c in catalogue() if not c.destructive]
    runner.run(cases[0])  # warm up imports and the connection
    start = time.perf_counter()
    for case in cases:
        runner.run(case)
    elapsed = time.perf_counter() - start
    print(f"catalogue     {len(cases)} cases in-process in {elapsed:.2f} s "
          f"({elapsed / len(cases) * 1e3:.2f} ms/case)")


def report_write(tmp: Path) -> None:
    """write_report of a real run of the catalogue (XML, signature, HTML and PDF)."""
    from conformance.report import write_report

    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", "--quiet", "--no-report",
         "--out", str(tmp)], capture_output=True, text=True, check=False,
    )
    if proc.returncode not in (0, 3):  # 3: NO_FAILURES, the virtual card's bench self-test
        print(f"report        skipped: the run failed ({proc.returncode})")
        return
    start = time.perf_counter()
    paths = write_report(tmp)
    elapsed = time.perf_counter() - start
    cases = len((tmp / "results.jsonl").read_text("utf-8").splitlines())
    print(f"report        {cases} cases: report.xml + signature + HTML + PDF in {elapsed:.2f} s "
          f"(PDF {paths.pdf.stat().st_size // 1024} KiB)")


def pcsc_round_trip(n: int = 300) -> None:
    from conformance.bench import insert_vpcd_card, pcscd_running, remove_vpcd_card
    from conformance.transport.pcsc import PcscTransport

    if not pcscd_running():
        print("pcsc          skipped: pcscd is not running (use scripts/with-pcscd.sh)")
        return
    bridge = insert_vpcd_card(new_card())
    transport = PcscTransport(bridge.reader_name)
    try:
        for apdu in ("00A4000002DDF1", "00A4000002EF05"):
            transport.transmit(bytes.fromhex(apdu))
        apdu = bytes.fromhex("00B2390000")
        start = time.perf_counter()
        for _ in range(n):
            transport.transmit(apdu)
        each = (time.perf_counter() - start) / n
        print(f"pcsc          {bridge.reader_name}: {each * 1e3:.3f} ms per APDU round trip "
              f"over {n} APDUs (pcscd + vpcd + TCP)")
    finally:
        transport.close()
        remove_vpcd_card(bridge)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-pcsc", action="store_true")
    args = parser.parse_args()
    card_rate()
    catalogue_run()
    with tempfile.TemporaryDirectory() as tmp:
        report_write(Path(tmp))
    if not args.no_pcsc:
        pcsc_round_trip()


if __name__ == "__main__":
    main()
