"""The interoperability matrix on the tests' socket reader: card variants × the tiny terminal
and its faulty switches, every pair served and judged by the terminal suite; the variants,
the JSON, the report and the command's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from terminal_support import SocketBench, tiny_profile

from conformance.cli import main, read_card_sample
from conformance.interop.matrix import CANNOT_RUN, FAILS, WORKS, Pair, matrix_document
from conformance.interop.report import render_matrix, write_matrix_report
from conformance.interop.runner import run_matrix
from conformance.interop.spec import MatrixSpec, card_entry, load_matrix_spec, plan_matrix
from conformance.interop.transactions import load_transactions, select
from conformance.interop.variants import load_variant, variant_names
from conformance.model import ProfileError, load_profile

PROFILE = load_profile()
CARDS = ["reference", "t0", "long-name", "index-full", "select-no-fci"]
FAULTS = ["", "skip_get_response", "truncate_gbk", "ignore_index"]
FAST = ("IOP-READ-001", "IOP-OUT-*")
"""The transactions the shared matrix runs: a read, a slot write and a slot read."""


def _matrix(tmp: Path, cards: list[str], faults: list[str], out: Path | None = None,
            transactions: tuple[str, ...] = (), **extra: object) -> tuple[list[Pair], dict]:
    terminals = [str(tiny_profile(tmp, f, **extra)) for f in faults]
    plan = plan_matrix(MatrixSpec(cards=cards, terminals=terminals,
                                  transactions=list(transactions)), PROFILE)
    pairs = run_matrix(plan.cards, plan.terminals, plan.transactions, PROFILE,
                       [SocketBench() for _ in range(3)], out)
    doc = matrix_document(plan.cards, plan.terminals, [t.titled() for t in plan.transactions],
                          pairs, {"title_zh": "矩阵", "title_en": "matrix", "lab": "lab",
                                  "suite_version": "test", "started_at": "", "finished_at": "",
                                  "duration_s": 1.0, "profile": {"name": "p", "standard": "s"}})
    return pairs, doc


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[tuple[str, str], Pair],
                                                               dict, Path]:
    tmp = tmp_path_factory.mktemp("interop")
    pairs, doc = _matrix(tmp, CARDS, FAULTS, tmp / "out", FAST)
    return {(p.card, p.terminal): p for p in pairs}, doc, tmp / "out"


def _term(fault: str) -> str:
    return f"tiny-{fault or 'ok'}"


def test_the_cells_read_right(matrix) -> None:
    cells, _doc, _out = matrix
    assert [c for c in CARDS if cells[(c, _term(""))].status != WORKS] == ["select-no-fci"]
    t0 = cells[("t0", _term("skip_get_response"))]
    assert t0.status == FAILS and t0.failing[0].id == "IOP-READ-001"
    assert [c.id for c in t0.cases] == ["IOP-READ-001", "IOP-OUT-001", "IOP-OUT-002"]
    assert t0.failing[0].check == "get_response" and "61" in t0.reason_en and t0.reason_zh
    assert cells[("reference", _term("skip_get_response"))].status == WORKS
    name = cells[("long-name", _term("truncate_gbk"))]
    assert name.status == FAILS and name.failing[0].check == "values"
    assert "item 11" in name.failing[0].reason_en
    slot = cells[("index-full", _term("ignore_index"))]
    assert [c.id for c in slot.failing] == ["IOP-OUT-001"] and slot.failing[0].check == "slot"
    assert cells[("reference", _term("ignore_index"))].status == WORKS  # slot 1 is right there


def test_a_card_defect_fails_the_whole_row_and_the_report_says_so(matrix) -> None:
    cells, doc, _out = matrix
    row = [cells[("select-no-fci", _term(f))] for f in FAULTS]
    assert {p.status for p in row} == {FAILS}
    first = row[0].failing[0]
    assert first.check == "answered" and "6A86" in first.reason_en
    assert any("< 6A86" in line for line in first.excerpt)  # the APDU the card refused
    html = render_matrix(doc)
    assert "card select-no-fci fails with every terminal" in html
    assert "terminal tiny-truncate_gbk fails with every card" in html  # it cuts every AN item
    assert "terminal tiny-ok fails" not in html


def test_a_slot_read_needs_a_used_slot(matrix) -> None:
    cells, _doc, _out = matrix
    read = {c.id: c for c in cells[("reference", _term(""))].cases}["IOP-OUT-002"]
    assert read.verdict == "NOT_APPLICABLE" and "every slot is free" in read.reason_en
    full = {c.id: c for c in cells[("index-full", _term(""))].cases}["IOP-OUT-002"]
    assert full.verdict == "PASS"


def test_each_pair_keeps_its_evidence_as_a_terminal_run(matrix) -> None:
    cells, _doc, out = matrix
    pair = cells[("t0", _term("skip_get_response"))]
    where = out / "pairs" / pair.dir
    summary = json.loads((where / "summary.json").read_text("utf-8"))
    assert summary["report_number"] == ""  # a pair takes no report number of the lab
    lines = (where / pair.failing[0].evidence).read_text("utf-8").splitlines()
    assert any('"finding": "get_response"' in x for x in lines)
    assert any("finding get_response" in x for x in pair.failing[0].excerpt)
    assert any("< 61" in x or "< 6C" in x for x in pair.failing[0].excerpt)


def test_json_names_every_pair_with_status_cases_and_reasons(matrix) -> None:
    _cells, doc, _out = matrix
    doc = json.loads(json.dumps(doc, ensure_ascii=False))
    assert doc["format"] == "rhc-interop/1" and len(doc["pairs"]) == len(CARDS) * len(FAULTS)
    assert sum(doc["counts"].values()) == len(doc["pairs"])
    t0 = next(p for p in doc["pairs"] if (p["card"], p["terminal"]) ==
              ("t0", _term("skip_get_response")))
    assert t0["failing"][0] == "IOP-READ-001" and t0["reason_zh"] and t0["reason_en"]
    assert {"duration_s", "cases", "dir", "status"} <= set(t0)
    card = next(c for c in doc["cards"] if c["name"] == "t0")
    assert "t0_get_response" in card["features"] and card["product"] == "reference"


def test_the_report_shows_the_grid_and_each_failing_pair(matrix, tmp_path: Path) -> None:
    _cells, doc, _out = matrix
    html = render_matrix(doc)
    assert html.count('class="cell ') == len(CARDS) * len(FAULTS)
    assert "t0 × tiny-skip_get_response" in html and "可互通 works" in html
    assert "不可互通 fails" in html and "61xx 之后发送 GET RESPONSE" in html
    (tmp_path / "interop.json").write_text(json.dumps(doc), "utf-8")
    written = write_matrix_report(tmp_path, doc, pdf=True)
    assert [p.name for p in written] == ["interop.html", "interop.pdf"]
    assert (tmp_path / "interop.pdf").read_bytes()[:5] == b"%PDF-"


def test_a_signed_pair_verifies_and_the_pdf_carries_the_signature(matrix,
                                                                   tmp_path: Path) -> None:
    import argparse
    import shutil

    from conformance.interop.signing import material, sign_pair, sign_pdf_file
    from conformance.report import verify_report

    cells, doc, out = matrix
    pair = cells[("t0", _term("skip_get_response"))]
    copy = tmp_path / "pairs" / pair.dir
    shutil.copytree(out / "pairs" / pair.dir, copy)
    args = argparse.Namespace(lab=None, sign_key=None, sign_cert=None, sign_p12=None)
    signed = sign_pair(copy, args)
    assert signed["report"] == f"pairs/{pair.dir}/report.xml" and len(signed["report_sha256"]) == 64
    check = verify_report(copy)
    assert check.intact and check.conclusion == "NOT_CONFORMANT", check.problems
    write_matrix_report(tmp_path, {**doc, "signature": {"demo": True, "source": "demo"}})
    sign_pdf_file(tmp_path / "interop.pdf", material(args))
    assert b"/ByteRange" in (tmp_path / "interop.pdf").read_bytes()
    assert "DEMO key" in (tmp_path / "interop.html").read_text("utf-8")


def test_a_terminal_declaring_few_operations(tmp_path: Path) -> None:
    pairs, _doc = _matrix(tmp_path, ["reference"], [""], operations=["get"])
    (pair,) = pairs
    assert pair.status == WORKS
    assert [c.verdict for c in pair.cases].count("PASS") == 1
    pairs, _doc = _matrix(tmp_path, ["reference"], [""], operations=["read-inpatient"])
    assert pairs[0].status == CANNOT_RUN and "declares none" in pairs[0].reason_en


def test_every_shipped_variant_loads_and_builds() -> None:
    assert {"reference", "t0", "long-name", "index-full", "co-branded"} <= set(variant_names())
    for name in variant_names():
        variant = load_variant(name)
        try:
            entry = card_entry(name, PROFILE)
        except ProfileError as exc:  # a product of another part of the suite, not yet here
            assert "no product named" in str(exc), exc
            continue
        assert entry.test_card.build(PROFILE).atr and variant.title_zh and variant.title_en


def test_a_variant_cannot_switch_on_a_feature_its_ics_lacks(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(yaml.safe_dump({"title_zh": "怪", "title_en": "odd", "product": "minimal",
                                    "features": ["t0_get_response"]}), "utf-8")
    with pytest.raises(ProfileError, match="not declared by the ICS"):
        card_entry(str(path), PROFILE)
    path.write_text("title_zh: x\ntitle_en: x\ncolour: red\n", "utf-8")
    with pytest.raises(ProfileError, match="colour"):
        load_variant(str(path))


def test_matrix_files_and_transaction_selection() -> None:
    spec = load_matrix_spec("ci")
    assert len(spec.cards) == 3 and len(spec.terminals) == 3
    assert load_matrix_spec("example").cards
    everything = load_transactions()
    assert [t.id for t in select(everything, ["iop-out-*"])] == ["IOP-OUT-001", "IOP-OUT-002"]
    assert all(t.matrix for t in select(everything, []))
    with pytest.raises(ProfileError, match="matches none"):
        select(everything, ["IOP-NOPE-*"])


@pytest.mark.parametrize(("argv", "words"), [
    (["interop", "run"], "give --matrix, or --cards and --terminals"),
    (["interop", "run", "--cards", "nope", "--terminals", "reference"],
     "no card variant named 'nope'"),
    (["interop", "run", "--cards", "reference", "--terminals", "example-kiosk"],
     "manual-mode terminal cannot be paired"),
    (["interop", "run", "--cards", "reference,reference", "--terminals", "reference"],
     "given twice"),
    (["interop", "run", "--matrix", "nope"], "no matrix named 'nope'"),
    (["interop", "run", "--cards", "t0", "--terminals", "nope"], "nope.yaml: file not found"),
    (["interop", "run", "--matrix", "ci", "--readers", "0"], "at least one reader"),
    (["interop", "run", "--matrix", "ci", "--transaction", "IOP-X-*"], "matches none"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv: list[str], words: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rhc: error: ") and words in err and "Traceback" not in err


def test_a_full_directory_is_not_touched(capsys, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    assert main(["interop", "run", "--matrix", "ci", "--out", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["interop", "run", "--matrix", "ci", "--out", str(tmp_path), "--replace"]) == 2
    assert "holds no interop.json" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").exists()


# -- card samples in readers: --cards reader:NAME ---------------------------------------------

SAMPLE_READER = "Virtual PCD 2 00 01"


def _long_name_in_a_reader(config: object) -> tuple[str, bytes, dict[int, str]]:
    """What read_card_sample gives for the long-name card in SAMPLE_READER (read here off
    the virtual card, through the same session)."""
    from conformance.config import build_config

    virtual = build_config({"personalization": str(LONG_NAME)})
    _name, factor, items = read_card_sample(virtual)
    return SAMPLE_READER, factor, items


LONG_NAME = Path(__file__).parents[1] / "conformance/fixtures/personalizations/long-name.yaml"


def test_a_reader_sample_is_the_reference_card_with_its_data(tmp_path: Path,
                                                             monkeypatch) -> None:
    from conformance.interop.samples import read_sample, sample_entry, write_sample

    monkeypatch.setattr("conformance.cli.read_card_sample", _long_name_in_a_reader)
    value = f"reader:{SAMPLE_READER}"
    sample = read_sample(value, PROFILE)
    out = tmp_path / "out"
    entry = sample_entry(sample, out, PROFILE)
    written = write_sample(sample, out)
    assert yaml.safe_load(written.read_text("utf-8"))["card_number_factor"] == "4403000088110471"
    terminals = [str(tiny_profile(tmp_path, f)) for f in ("", "truncate_gbk")]
    plan = plan_matrix(MatrixSpec(cards=[value, "reference"], terminals=terminals,
                                  transactions=["IOP-READ-001"]), PROFILE, {value: entry})
    pairs = run_matrix(plan.cards, plan.terminals, plan.transactions, PROFILE,
                       [SocketBench() for _ in range(2)], out)
    cells = {(p.card, p.terminal): p for p in pairs}
    row = "reader-virtual-pcd-2-00-01"
    assert cells[(row, _term(""))].status == WORKS
    cut = cells[(row, _term("truncate_gbk"))]
    assert cut.status == FAILS and [c.id for c in cut.failing] == ["IOP-READ-001"]
    assert "item 11" in cut.failing[0].reason_en
    assert cells[("reference", _term(""))].status == WORKS
    doc = matrix_document(plan.cards, plan.terminals, [], pairs, {})
    card = doc["cards"][0]
    assert card["reader"] == SAMPLE_READER and "pin" not in card["features"]
    assert card["title_en"] == f"data of the card in reader {SAMPLE_READER}"
    assert "not the sample's own chip" in doc["notes"][0]["en"] and doc["notes"][0]["zh"]
    html = render_matrix({**doc, "title_zh": "矩阵", "title_en": "m", "lab": "lab",
                          "suite_version": "t", "started_at": "", "finished_at": "",
                          "duration_s": 1.0, "signature": None,
                          "profile": {"name": "p", "standard": "s"}})
    assert doc["notes"][0]["zh"] in html and f"读卡器 {SAMPLE_READER} 中卡片的数据" in html


def test_an_unreadable_reader_is_one_line_and_nothing_runs(capsys, tmp_path: Path,
                                                           monkeypatch) -> None:
    from conformance.transport.base import BenchError

    def missing(config: object) -> tuple[str, bytes, dict[int, str]]:
        raise BenchError("no reader named or matching 'Nope'. Readers present: 'A'")

    out = tmp_path / "m"
    assert main(["interop", "run", "--cards", "reader:,reference", "--terminals",
                 "reference", "--out", str(out)]) == 2
    assert "no reader named after reader:" in capsys.readouterr().err
    monkeypatch.setattr("conformance.cli.read_card_sample", missing)
    assert main(["interop", "run", "--cards", "reader:Nope,reference", "--terminals",
                 "reference", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rhc: error: --cards reader:Nope: the card in that reader cannot "
                          "be read; no pair has run: BenchError: no reader named")
    assert err.count("\n") == 1 and not out.exists()


def test_the_benches_leave_out_a_sample_s_vpcd_port() -> None:
    from conformance.card.vpcd import vpcd_port
    from conformance.config import ConfigError
    from conformance.interop.samples import ReaderSample, bench_ports

    assert [vpcd_port(r) for r in ("Virtual PCD 00 00", "Virtual PCD 00 01",
                                   "Virtual PCD 2 00 01", "ACS ACR39U 00 00")] == \
        [35963, 35964, 35966, None]
    sample = ReaderSample("x", "Virtual PCD 00 00", b"\0" * 8, {})
    assert bench_ports(4, 1, [sample]) == [35964, 35965, 35966]
    assert bench_ports(4, 2, [sample]) == [35965]
    with pytest.raises(ConfigError, match="every vpcd reader of ports 35963…35963"):
        bench_ports(1, 1, [sample])
