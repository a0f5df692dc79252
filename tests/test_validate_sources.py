"""Where cards come from: CSV encodings and damage, dump files, streaming; the DuckDB path."""

from __future__ import annotations

import csv
import json
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.validate import synthetic
from conformance.validate.check import Context, Unreadable, check_card
from conformance.validate.sources import (
    GBK,
    detect_encoding,
    expand_inputs,
    read_csv,
    read_dump,
    read_inputs,
)

HEADER = "item_8,item_11,item_57\n"
ROW = "11010519491231002X,王测试,410100\n"


@pytest.fixture(scope="module")
def context() -> Context:
    return Context.load(validated_on=synthetic.VALID_ON)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("encoding", "prefix", "detected"), [
    ("utf-8", b"", "utf-8"), ("utf-8", b"\xef\xbb\xbf", "utf-8"), ("gbk", b"", GBK),
    ("gb18030", b"", GBK),
])
def test_csv_encodings(tmp_path, encoding, prefix, detected) -> None:
    path = write(tmp_path / "x.csv", prefix + (HEADER + ROW).encode(encoding))
    assert detect_encoding(path) == detected
    assert list(read_csv(path)) == [
        ("11010519491231002X", {"8": "11010519491231002X", "11": "王测试", "57": "410100"})]


def test_one_damaged_row_neither_flips_the_encoding_nor_hides(tmp_path) -> None:
    lines = [HEADER.encode("gbk")] + [ROW.encode("gbk")] * 5 + [b"\xff\xfe,x,y\n"]
    path = write(tmp_path / "export.csv", b"".join(lines))
    assert detect_encoding(path) == GBK
    cards = list(read_csv(path))
    assert [c[1]["11"] for c in cards[:5]] == ["王测试"] * 5
    assert cards[5][0] == "export row 7"
    assert cards[5][1] == Unreadable("undecodable", {"line": 7, "encoding": "GBK/GB 18030"})
    # the same in a UTF-8 file: the damaged row is named, the others read right
    lines = [HEADER.encode()] + [ROW.encode()] * 5 + [b"\xff\xfe,x,y\n"]
    path = write(tmp_path / "export.csv", b"".join(lines))
    cards = list(read_csv(path))
    assert detect_encoding(path) == "utf-8" and cards[0][1]["11"] == "王测试"
    assert isinstance(cards[5][1], Unreadable)


def test_csv_rows_columns_quotes_and_card_names(tmp_path) -> None:
    text = (HEADER + ',"张,三",410100\r\n' + '110105194912310021,"李\n四",410100\n'
            + "1,2\n" + "\n" + "1,2,3,4\n")
    path = write(tmp_path / "e.csv", text.encode())
    cards = list(read_csv(path))
    assert cards[0] == ("e row 2", {"8": "", "11": "张,三", "57": "410100"})
    assert cards[1] == ("110105194912310021", {"8": "110105194912310021", "11": "李\n四",
                                               "57": "410100"})
    assert cards[2][1] == Unreadable("columns", {"line": 5, "count": 2, "expected": 3})
    assert cards[3][1] == Unreadable("columns", {"line": 7, "count": 4, "expected": 3})
    assert len(cards) == 4  # the blank line is no card


def test_csv_header_problems_are_one_finding_of_the_file(tmp_path, context) -> None:
    path = write(tmp_path / "h.csv", ("item_8,name,item_99,item_57\n"
                                      "11010519491231002X,王,x,410100\n").encode())
    cards = list(read_csv(path, known=set(context.profile.items)))
    assert [c[1].reason for c in cards[:2]] == ["bad_header", "unknown_item"]
    assert not cards[0][1].is_card
    assert cards[2] == ("11010519491231002X", {"8": "11010519491231002X", "57": "410100"})
    empty = write(tmp_path / "empty.csv", b"")
    assert [c[1].reason for c in read_csv(empty)] == ["empty_file"]


def test_dump_files(tmp_path) -> None:
    good = write(tmp_path / "card-1.json", json.dumps({"8": "x"}).encode())
    bom = write(tmp_path / "card-2.json", b"\xef\xbb\xbf" + json.dumps({"8": "y"}).encode())
    bad = write(tmp_path / "card-3.json", b'{"8": ')
    latin = write(tmp_path / "card-4.json", '{"11": "王"}'.encode("gbk"))
    assert list(read_dump(good)) == [("card-1", {"8": "x"})]
    assert list(read_dump(bom)) == [("card-2", {"8": "y"})]
    assert next(iter(read_dump(bad)))[1].reason == "bad_json"
    assert next(iter(read_dump(latin)))[1].reason == "undecodable"
    write(tmp_path / "findings.csv", b"card,rule\n")  # a directory means its dumps only
    assert [p.name for p in expand_inputs([tmp_path])] == [
        "card-1.json", "card-2.json", "card-3.json", "card-4.json"]
    with pytest.raises(FileNotFoundError, match="no such file"):
        expand_inputs([tmp_path / "none.json"])


def test_csv_is_streamed_not_loaded(tmp_path, context) -> None:
    """Memory while checking a CSV does not grow with its rows (the bench measures RSS)."""
    def peak(count: int) -> int:
        path = synthetic.write_csv(tmp_path / f"{count}.csv", count)
        tracemalloc.start()
        for card_id, items in read_inputs([path]):
            check_card(card_id, items, context)
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size

    small, large = peak(200), peak(4000)
    assert large < small * 2


def test_duckdb_gives_the_same_findings_as_the_stream(tmp_path, context) -> None:
    import duckdb

    from conformance.validate.duck import check_table

    rows = []
    for n in range(60):
        items = synthetic.card_items(n)
        defect = n % 6
        if defect == 1:
            items["15"] = items["15"][:-1] + ("0" if items["15"][-1] != "0" else "1")
        elif defect == 2:
            items["12"] = "7"
        elif defect == 3:
            items["57"], items["16"] = "419900", "12"
        elif defect == 4:
            items["6"], items["11"] = "20230229", ""
        elif defect == 5:
            items["7"] = "20200101"
        rows.append(items)
    columns = list(rows[0])
    path = tmp_path / "cards.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"item_{k}" for k in columns])
        for items in rows:
            writer.writerow([items[k] for k in columns])
    streamed = sorted(f for card, items in read_inputs([path])
                      for f in check_card(card, items, context))
    con = duckdb.connect()
    con.execute(f"CREATE TABLE cards AS SELECT item_8 AS card_id, * FROM read_csv('{path}', "
                "all_varchar = true, header = true)")
    in_duckdb = sorted(tuple(row) for row in check_table(con, "cards", context).fetchall())
    assert len(streamed) > 40
    assert in_duckdb == [tuple(f) for f in streamed]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), header=st.booleans())
def test_any_bytes_are_findings_never_a_crash(tmp_path, context, data, header) -> None:
    """Whatever a file holds, reading and checking it yields cards and findings."""
    prefix = HEADER.encode() if header else b""
    for name in ("x.csv", "x.json"):
        path = write(tmp_path / name, prefix + data)
        for card_id, items in read_inputs([path], known=set(context.profile.items)):
            assert isinstance(card_id, str)
            for finding in check_card(card_id, items, context):
                assert finding.message_zh and finding.message_en


@settings(max_examples=150, deadline=None)
@given(items=st.dictionaries(st.one_of(st.text(max_size=8), st.integers(-5, 100)),
                             st.one_of(st.text(max_size=20), st.integers(), st.none(),
                                       st.lists(st.integers(), max_size=2))))
def test_any_mapping_is_judged(context, items) -> None:
    for finding in check_card("c", items, context):
        assert finding.rule in {r.name for r in context.rules.rules}


def test_duckdb_on_a_table_of_its_own_shape(context) -> None:
    """A province's table: its own ID column, some items only, numbers stored as integers."""
    import duckdb

    from conformance.validate.duck import check_table

    con = duckdb.connect()
    con.execute("CREATE TABLE issued (serial VARCHAR, item_8 VARCHAR, item_13 INTEGER, "
                "item_57 INTEGER, remark VARCHAR)")
    con.execute("INSERT INTO issued VALUES ('a', '11010519491231002X', NULL, 410100, 'x'), "
                "('b', NULL, 1, 419900, NULL)")
    found = sorted((row[0], row[1], row[2]) for row in
                   check_table(con, "issued", context, card_column="serial").fetchall())
    missing = [(card, "REQUIRED_MISSING", n) for card, numbers in
               (("a", (11, 12, 14, 15)), ("b", (8, 11, 12, 14, 15))) for n in numbers]
    assert found == sorted([*missing, ("b", "CITY_CODE", 57), ("b", "ETHNIC_CODE", 13)])
