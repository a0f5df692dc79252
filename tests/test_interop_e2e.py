"""The 3 × 3 interoperability matrix through the real PC/SC stack: each card variant in its own
vpcd reader, the reference terminal and two faulty ones as separate programs reaching it by
reader name (pcscd + vpcd, marked e2e)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from terminal_support import ROOT

pytestmark = pytest.mark.e2e


def test_the_3x3_matrix_through_pcsc_reads_right(pcsc_bench: list[str],
                                                  tmp_path: Path) -> None:
    out = tmp_path / "matrix"
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-m", "conformance.cli", "interop", "run",
                           "--matrix", "ci", "--out", str(out), "--json", "--readers", "3",
                           "--sign"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 1, done.stderr  # some pairs fail: that is what the matrix shows
    doc = json.loads(done.stdout)
    cells = {(p["card"], p["terminal"]): p for p in doc["pairs"]}
    assert len(cells) == 9
    works = {k for k, p in cells.items() if p["status"] == "works"}
    assert works == set(cells) - {("t0", "faulty-skip-get-response"),
                                  ("long-name", "faulty-truncate-gbk-names")}
    t0 = cells[("t0", "faulty-skip-get-response")]
    assert t0["status"] == "fails" and t0["failing"][0] == "IOP-READ-001"
    assert t0["cases"][0]["check"] == "get_response" and "GET RESPONSE" in t0["reason_en"]
    name = cells[("long-name", "faulty-truncate-gbk-names")]
    assert name["status"] == "fails" and name["failing"] == ["IOP-READ-001"]
    assert name["cases"][0]["check"] == "values" and "item 11" in name["reason_en"]
    readers = {r for p in cells.values() for r in json.loads(
        (out / "pairs" / p["dir"] / "summary.json").read_text("utf-8"))["bench"]["readers"]}
    assert {"Virtual PCD 00 00", "Virtual PCD 00 01", "Virtual PCD 2 00 00"} <= readers
    assert (out / "interop.html").is_file() and (out / "interop.pdf").is_file()
    assert t0["report"] == f"pairs/{t0['dir']}/report.xml" and t0["report_sha256"]
    verified = subprocess.run([sys.executable, "-m", "conformance.cli", "report", "verify",
                               str(out / "pairs" / t0["dir"]), "--trust", "demo"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout
    print(f"interop_3x3_s: {doc['duration_s']}")


def test_a_card_sample_in_a_reader_is_a_row_of_its_data(vpcd_card, tmp_path: Path) -> None:
    """The long-name card sits in the vpcd reader of port 35966; the matrix reads it through
    PC/SC, serves its data from its own benches (ports 35963, 35964) and judges every pair."""
    from conformance.card.vpcd import vpcd_reader_name
    from conformance.config import build_config

    port = 35966
    reader = vpcd_reader_name(port)
    long_name = ROOT / "conformance" / "fixtures" / "personalizations" / "long-name.yaml"
    vpcd_card(build_config({"personalization": str(long_name)}).virtual_card, port=port)
    out = tmp_path / "matrix"
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-m", "conformance.cli", "interop", "run",
                           "--cards", f"reader:{reader},reference", "--terminals",
                           "reference,faulty-truncate-gbk-names", "--readers", "2",
                           "--out", str(out), "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    row = "reader-" + reader.lower().replace(" ", "-")
    cells = {(p["card"], p["terminal"]): p for p in doc["pairs"]}
    assert cells[(row, "reference")]["status"] == "works"
    cut = cells[(row, "faulty-truncate-gbk-names")]
    assert cut["status"] == "fails" and cut["failing"][0] == "IOP-READ-001"
    assert cut["cases"][0]["check"] == "values" and "item 11" in cut["reason_en"]
    assert {p["status"] for k, p in cells.items() if k[0] == "reference"} == {"works"}
    card = doc["cards"][0]
    assert card["reader"] == reader and card["title_en"] == f"data of the card in reader {reader}"
    assert "card number factor 4403000088110471" in doc["notes"][0]["en"]
    assert "not the sample's own chip" in doc["notes"][0]["en"]
    assert (out / "samples" / f"{row}.yaml").is_file()
    assert doc["notes"][0]["zh"] in (out / "interop.html").read_text("utf-8")
    readers = {r for p in cells.values() for r in json.loads(
        (out / "pairs" / p["dir"] / "summary.json").read_text("utf-8"))["bench"]["readers"]}
    assert reader not in readers and readers <= {"Virtual PCD 00 00", "Virtual PCD 00 01"}
    print(f"interop_reader_sample_s: {doc['duration_s']}")
