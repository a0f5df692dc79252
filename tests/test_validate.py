"""`rhc validate cards`: a batch with planted defects yields exactly those findings; the CLI.

The done-when test builds valid synthetic cards (conformance/validate/synthetic.py), then
cards that each carry one planted defect, spread over dump files, a UTF-8 CSV with BOM and a
GBK CSV, malformed ones included, and requires the findings to be exactly the planted ones.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main
from conformance.validate import synthetic
from conformance.validate.check import Context
from conformance.validate.run import FINDING_FIELDS

VALID_ON = synthetic.VALID_ON
RULE_NAMES = ["ID_CHECKSUM", "ID_BIRTHDATE_MISMATCH", "CARDNO_MISMATCH", "SEX_CODE",
              "ETHNIC_CODE", "DATE_INVALID", "DATE_ORDER", "EXPIRED", "CITY_CODE",
              "PHONE_FORMAT", "REQUIRED_MISSING", "MALFORMED"]


def _day_before(value: str) -> str:
    return (dt.datetime.strptime(value, "%Y%m%d").date() - dt.timedelta(days=1)).strftime(
        "%Y%m%d")


def _wrong_check(number: str) -> str:
    return number[:-1] + ("0" if number[-1] != "0" else "1")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(path: Path, rows: list[dict[str, str]], *, encoding: str,
              extra: list[bytes] = ()) -> Path:
    """Rows under the header item_1,…; `extra` raw lines appended (damaged rows)."""
    columns = list(synthetic.card_items(0))
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"item_{k}" for k in columns])
        for row in rows:
            writer.writerow([row.get(k, "") for k in columns])
    with path.open("ab") as handle:
        for line in extra:
            handle.write(line + b"\r\n")
    return path


def planted_batch(root: Path) -> tuple[list[Path], set[tuple[str, str, int | None]], int]:
    """Inputs, the exact findings planted (card, rule, item), and the number of cards."""
    dumps = root / "dumps"
    dumps.mkdir()
    expected: set[tuple[str, str, int | None]] = set()
    cards = 0

    def dump(name: str, items: Any, *, raw: str | None = None) -> None:
        nonlocal cards
        text = raw if raw is not None else json.dumps(items, ensure_ascii=False)
        (dumps / f"{name}.json").write_text(text, encoding="utf-8")
        cards += 1

    for n in range(20):  # valid dumps, whole and partial
        items = synthetic.card_items(n)
        if n % 4 == 0:  # a card-management export of only some items: rules apply to those
            items = {k: items[k] for k in ("8", "11", "12", "14", "15", "57")}
        dump(f"valid-{n:02d}", items)

    def defect(name: str, n: int, rule: str, items_changed: dict[str, str],
               planted: list[int | None]) -> None:
        items = synthetic.card_items(n)
        items.update(items_changed)
        dump(name, {k: v for k, v in items.items() if v is not None})
        expected.update((name, rule, item) for item in planted)

    base = {n: synthetic.card_items(n) for n in range(100, 120)}
    bad_id = _wrong_check(base[100]["15"])
    defect("id-checksum", 100, "ID_CHECKSUM", {"8": bad_id, "15": bad_id, "38": bad_id},
           [8, 15])
    defect("id-birth", 101, "ID_BIRTHDATE_MISMATCH", {"14": _day_before(base[101]["14"])},
           [15])
    defect("cardno", 102, "CARDNO_MISMATCH", {"8": base[103]["8"]}, [8])
    defect("sex", 104, "SEX_CODE", {"12": "03"}, [12])
    defect("ethnic", 105, "ETHNIC_CODE", {"13": "57"}, [13])
    defect("date-order", 106, "DATE_ORDER", {"6": _day_before(base[106]["14"])}, [6])
    defect("expired", 107, "EXPIRED", {"7": _day_before(VALID_ON.strftime("%Y%m%d"))}, [7])
    defect("phone", 108, "PHONE_FORMAT", {"16": "12345"}, [16])
    defect("required", 109, "REQUIRED_MISSING", {"11": ""}, [11])
    partial = {k: base[110][k] for k in ("8", "11", "12", "14", "15")}  # no item 57
    dump("required-partial", partial)
    expected.add(("required-partial", "REQUIRED_MISSING", 57))
    dump("bad-json", None, raw='{"8": "1101')
    expected.add(("bad-json", "MALFORMED", None))
    dump("not-object", ["8", "11"])
    expected.add(("not-object", "MALFORMED", None))
    unknown = dict(base[111])
    unknown["99"] = "x"
    dump("unknown-item", unknown)
    expected.add(("unknown-item", "MALFORMED", None))

    # UTF-8 CSV with BOM: valid rows, a date that is no date, a row missing a column
    rows = [synthetic.card_items(n) for n in range(200, 210)]
    invalid_date = dict(synthetic.card_items(210), **{"6": "20230229"})  # no leap day in 2023
    rows.append(invalid_date)
    expected.add((invalid_date["8"], "DATE_INVALID", 6))
    short = synthetic.card_items(211)
    columns = list(short)
    short_line = ",".join(short[k] for k in columns[:-1]).encode("utf-8")
    expected.add((short["8"], "MALFORMED", None))
    utf8 = write_csv(root / "export-utf8.csv", rows, encoding="utf-8-sig", extra=[short_line])
    cards += len(rows) + 1

    # GBK CSV: valid rows (Chinese names), a city code that does not exist, a damaged row
    rows = [synthetic.card_items(n) for n in range(300, 310)]
    city = dict(synthetic.card_items(310), **{"57": "419900"})
    rows.append(city)
    expected.add((city["8"], "CITY_CODE", 57))
    gbk = write_csv(root / "export-gbk.csv", rows, encoding="gbk",
                    extra=[b"\xff\xfe\xfd," * 3])
    expected.add(("export-gbk row 13", "MALFORMED", None))  # header row 1, 11 rows, then 13
    cards += len(rows) + 1
    return [dumps, utf8, gbk], expected, cards


def test_planted_defects_give_exactly_the_planted_findings(tmp_path, capsys) -> None:
    inputs, expected, cards = planted_batch(tmp_path)
    out = tmp_path / "out"
    code, _stdout, err = run_cli(capsys, "validate", "cards", *map(str, inputs), "--out",
                                str(out), "--date", VALID_ON.isoformat())
    assert code == 1, err
    validation = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    found = {(f["card"], f["rule"], f["item"]) for f in validation["findings"]}
    assert found == expected
    assert {rule for _, rule, _ in expected} == set(RULE_NAMES)  # every rule planted once
    assert validation["cards"] == cards
    assert validation["cards_with_findings"] == len({card for card, _, _ in expected})
    counts = {r["name"]: r["count"] for r in validation["rules"]}
    assert [r["name"] for r in validation["rules"]] == RULE_NAMES
    assert sum(counts.values()) == len(validation["findings"]) == len(expected)
    assert "Traceback" not in err


def test_outputs_carry_the_keys_the_report_reads(tmp_path, capsys) -> None:
    inputs, _, _ = planted_batch(tmp_path)
    out = tmp_path / "out"
    run_cli(capsys, "validate", "cards", *map(str, inputs), "--out", str(out), "--date",
            VALID_ON.isoformat())
    validation = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    for key in ("cards", "findings", "validated_on", "generated_at", "inputs", "rules",
                "by_city", "cards_with_findings", "rules_source"):
        assert key in validation
    assert validation["validated_on"] == VALID_ON.isoformat()
    # in the lab file's zone (the demo lab: Asia/Shanghai), as every other output
    assert dt.datetime.fromisoformat(validation["generated_at"]).utcoffset() == \
        dt.timedelta(hours=8)
    finding = validation["findings"][0]
    assert tuple(finding) == FINDING_FIELDS
    city = next(c for c in validation["by_city"] if c["code"] == "419900")
    assert city == {"code": "419900", "name_zh": "", "cards": 1, "cards_with_findings": 1,
                    "findings": 1}
    named = [c for c in validation["by_city"] if c["name_zh"]]
    assert named and all(c["cards"] >= 1 for c in named)
    assert sum(c["cards"] for c in validation["by_city"]) == validation["cards"]
    assert {s["file"] for s in validation["rules_source"]} == {
        "profiles/rules/cards.yaml", "profiles/rules/gb2260.csv"}
    raw = (out / "findings.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel opens the Chinese right
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert tuple(rows[0]) == FINDING_FIELDS
    assert len(rows) - 1 == len(validation["findings"])
    assert any("不是" in row[4] for row in rows[1:])


def test_no_findings_exits_0_and_prints_a_summary(tmp_path, capsys) -> None:
    dumps = synthetic.write_dumps(tmp_path / "dumps", 5)
    code, out, err = run_cli(capsys, "validate", "cards", str(dumps), "--out",
                             str(tmp_path / "out"), "--date", VALID_ON.isoformat())
    assert code == 0, err
    assert "5 cards, 0 findings" in out and "validation.json" in out
    assert "ID_CHECKSUM\t0\t身份证号校验码错误 / ID number check digit wrong" in out  # piped
    # a directory is one input as given, however many dumps it holds (the report lists them)
    validation = json.loads((tmp_path / "out" / "validation.json").read_text("utf-8"))
    assert validation["inputs"] == [str(dumps)]


def test_expired_follows_the_date_option(tmp_path, capsys) -> None:
    dumps = synthetic.write_dumps(tmp_path / "dumps", 3)
    code, _, _ = run_cli(capsys, "validate", "cards", str(dumps), "--out",
                         str(tmp_path / "out"), "--date", "2040-01-01")
    validation = json.loads((tmp_path / "out" / "validation.json").read_text("utf-8"))
    assert code == 1
    assert {f["rule"] for f in validation["findings"]} == {"EXPIRED"}


def test_the_virtual_card_read_live(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "validate", "cards", "--card", "virtual", "--out", str(out))
    assert code == 0, err
    validation = json.loads((out / "validation.json").read_text("utf-8"))
    assert validation["cards"] == 1 and validation["inputs"] == ["virtual card"]
    code, _, err = run_cli(capsys, "validate", "cards", "--card", "virtual", "--out", str(out),
                           "--replace", "--date", "2040-01-01")  # --out is the validation's
    assert code == 1, err
    validation = json.loads((out / "validation.json").read_text("utf-8"))
    assert [(f["card"], f["rule"]) for f in validation["findings"]] == [
        ("11010519491231002X", "EXPIRED")]


def test_live_readers_each_give_a_card(monkeypatch) -> None:
    from conformance.validate.check import check_card
    from conformance.validate.sources import read_readers

    default = synthetic.card_items(0)

    def read(reader: str) -> dict[int, str]:
        if reader == "broken":
            raise OSError("Card was removed")
        return {int(k): v for k, v in default.items()}

    got = list(read_readers(["Virtual PCD 00 00", "broken"], read))
    assert got[0][0] == default["8"]
    context = Context.load(validated_on=VALID_ON)
    assert check_card(*got[0], context) == []
    findings = check_card(*got[1], context)
    assert [f.rule for f in findings] == ["MALFORMED"] and "Card was removed" in \
        findings[0].message_en


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["validate", "cards", "/no/such/file.json"], "/no/such/file.json: no such file"),
        (["validate", "cards", "{dumps}", "--date", "2025-13-01"], "--date: '2025-13-01'"),
        (["validate", "cards", "{dumps}", "--date", "20250101"], "--date: '20250101'"),
        (["validate", "cards"], "nothing to validate"),
        (["validate", "cards", "{dumps}", "--out", "{full}"], "is not empty"),
        (["validate", "cards", "{dumps}", "--out", "{full}", "--replace"],
         "does not hold a validation"),
        (["validate", "cards", "{dumps}", "--rules", "/no/rules"], "--rules: /no/rules"),
        (["validate", "cards", "{empty}"], "no *.json file"),
    ],
)
def test_bad_command_lines_are_one_line_errors(tmp_path, capsys, argv, needle) -> None:
    dumps = synthetic.write_dumps(tmp_path / "dumps", 1)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("earlier work", encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [a.format(dumps=dumps, full=full, empty=empty) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.startswith("rhc: error:") and needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert (full / "keep.txt").read_text(encoding="utf-8") == "earlier work"
    assert not (tmp_path / "out").exists()


def test_replace_removes_an_earlier_validation(tmp_path, capsys) -> None:
    dumps = synthetic.write_dumps(tmp_path / "dumps", 1)
    out = tmp_path / "out"
    assert run_cli(capsys, "validate", "cards", str(dumps), "--out", str(out))[0] == 0
    assert run_cli(capsys, "validate", "cards", str(dumps), "--out", str(out))[0] == 2
    assert run_cli(capsys, "validate", "cards", str(dumps), "--out", str(out),
                   "--replace")[0] == 0


def test_the_quality_report_gets_validation_json(tmp_path, capsys, monkeypatch) -> None:
    import sys
    import types

    calls: list[tuple[dict[str, Any], Path, bool]] = []

    def write_quality_report(validation: dict[str, Any], out_dir: Path, *,
                             show_personal: bool) -> list[Path]:
        calls.append((validation, out_dir, show_personal))
        (out_dir / "quality.html").write_text("<html></html>", encoding="utf-8")
        return [out_dir / "quality.html"]

    fake = types.ModuleType("conformance.validate.report")
    fake.write_quality_report = write_quality_report  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "conformance.validate.report", fake)
    dumps = synthetic.write_dumps(tmp_path / "dumps", 2)
    out = tmp_path / "out"
    code, stdout, _ = run_cli(capsys, "validate", "cards", str(dumps), "--out", str(out),
                              "--show-personal-data")
    assert code == 0
    (validation, out_dir, show_personal), = calls
    assert out_dir == out and show_personal is True
    assert validation == json.loads((out / "validation.json").read_text(encoding="utf-8"))
    assert "quality.html" in stdout


def test_without_the_report_module_a_note_says_so(tmp_path, capsys, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "conformance.validate.report", None)
    dumps = synthetic.write_dumps(tmp_path / "dumps", 1)
    code, _, err = run_cli(capsys, "validate", "cards", str(dumps), "--out",
                           str(tmp_path / "out"))
    assert code == 0 and "quality report is not available" in err
