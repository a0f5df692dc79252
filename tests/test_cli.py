"""The command line: clear one-line errors for bad input, catalogue listings, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from conformance.cli import build_parser, main
from conformance.config import RUN_OPTIONS
from conformance.model import DEFAULT_PERSONALIZATION, DEFAULT_PROFILE, DEFAULT_TEST_KEYS


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def bad_copy(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text(encoding="utf-8")
    assert old in text
    target = tmp_path / source.name
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


def test_profile_with_an_unknown_key(capsys, tmp_path) -> None:
    bad = bad_copy(tmp_path, DEFAULT_PROFILE, "  challenge_length: 8", "  challenge_lenght: 8")
    code, _, err = run(capsys, "--profile", str(bad), "card", "dump")
    assert code == 2
    assert str(bad) in err and "security.challenge_lenght" in err and "Traceback" not in err


def test_personalization_value_too_long(capsys, tmp_path) -> None:
    bad = bad_copy(tmp_path, DEFAULT_PERSONALIZATION, '11: "王测试"', '11: "' + "王" * 20 + '"')
    code, _, err = run(capsys, "card", "dump", "--personalization", str(bad))
    assert code == 2
    assert "items.11" in err and "longer than 30" in err


def test_card_image_from_another_profile(capsys, tmp_path) -> None:
    from conformance.card import VirtualCard
    from conformance.model import load_key_set, load_personalization, load_profile

    other = bad_copy(tmp_path, DEFAULT_PROFILE, "name: wst543-reference", "name: other-profile")
    profile = load_profile(other)
    card = VirtualCard.personalize(
        profile, load_personalization(DEFAULT_PERSONALIZATION, profile),
        load_key_set(DEFAULT_TEST_KEYS, profile),
    )
    image = tmp_path / "card.json"
    card.save_image(image)
    code, _, err = run(capsys, "card", "dump", "--image", str(image))
    assert code == 2
    assert "other-profile" in err and "Traceback" not in err


def test_unknown_fault_and_plan(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "card", "dump", "--fault", "constant_chalenge")
    assert code == 2 and "did you mean constant_challenge" in err
    code, _, err = run(capsys, "run", "--plan", "nightly", "--out", str(tmp_path / "r"))
    assert code == 2 and "nightly" in err and "certification" in err


def test_pcsc_run_needs_a_reader(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "run", "--card", "pcsc", "--out", str(tmp_path / "r"))
    assert code == 2 and "--reader" in err


def test_dump_of_the_virtual_card(capsys) -> None:
    code, out, _ = run(capsys, "card", "dump")
    assert code == 0
    items = json.loads(out)
    assert items["11"] == "王测试" and items["57"] == "410100" and len(items) == 57


def test_cases_list_json_names_every_case(capsys) -> None:
    code, out, _ = run(capsys, "cases", "list", "--json")
    cases = json.loads(out)
    assert code == 0 and len(cases) >= 300
    assert {"id", "title_zh", "title_en", "clause", "applicability"} <= set(cases[0])
    code, out, _ = run(capsys, "cases", "list", "--json", "--plan", "selftest")
    selftest = json.loads(out)
    assert 0 < len(selftest) < len(cases)


def test_faults_json(capsys) -> None:
    code, out, _ = run(capsys, "card", "faults", "--json")
    faults = json.loads(out)
    assert code == 0 and len(faults) >= 35
    assert {f["group"] for f in faults} >= {"ATR", "CMD", "FS", "DATA", "SEC", "CYC", "IDX",
                                            "REC", "PIN"}


def test_minimal_product_shows_not_applicable(capsys, tmp_path) -> None:
    out = tmp_path / "run"
    code, _, _ = run(capsys, "run", "--product", "profiles/products/minimal.yaml", "--out",
                     str(out), "--quiet", "--no-report")
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert code == 3, summary  # the virtual card: a bench self-test, never CONFORMANT
    assert summary["verdict"] == "NO_FAILURES"
    assert summary["counts"]["NOT_APPLICABLE"] > 0
    na = [c for c in summary["cases"] if c["verdict"] == "NOT_APPLICABLE"]
    assert all("ICS" in c["reason"] for c in na)


def test_a_fault_makes_the_run_not_conformant(capsys, tmp_path) -> None:
    out = tmp_path / "run"
    code, _, _ = run(capsys, "run", "--fault", "constant_challenge", "--out", str(out),
                     "--quiet", "--no-report", "-k", "CMD")
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert code == 1 and summary["verdict"] == "NOT_CONFORMANT"
    failing = [c["id"] for c in summary["cases"] if c["verdict"] == "FAIL"]
    assert failing and all(c.startswith("CMD-") for c in failing)


def test_a_partial_run_gives_no_certification_verdict(capsys, tmp_path) -> None:
    out = tmp_path / "run"
    code, _, _ = run(capsys, "run", "--out", str(out), "--quiet", "--no-report", "-k", "ATR")
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert code == 3 and summary["verdict"] == "NO_FAILURES"
    assert summary["counts"]["PASS"] == len(summary["cases"]) > 0
    assert any("-k" in note for note in summary["notes"])


# --------------------------------------------------------------------------- the two doors
# `rhc run --NAME …` and `pytest --rhc-NAME …` build the same run configuration; a bad input is
# one line on stderr and exit 2 through either, before pytest collects or runs anything.


def _too_long_name(tmp_path: Path) -> Path:
    return bad_copy(tmp_path, DEFAULT_PERSONALIZATION, '11: "王测试"', '11: "' + "王" * 20 + '"')


BAD_RUNS = {
    "pcsc-with-personalization": (
        lambda tmp: ["card=pcsc", "reader=X", "personalization=F"],
        ["--personalization", "--card virtual"],
    ),
    "unknown-fault": (lambda tmp: ["fault=no_such_fault"], ["no_such_fault", "rhc card faults"]),
    "bad-personalization": (
        lambda tmp: [f"personalization={_too_long_name(tmp)}"], ["items.11", "longer than 30"]
    ),
    "missing-reader": (lambda tmp: ["card=pcsc"], ["--card pcsc needs --reader"]),
    "unknown-card": (lambda tmp: ["card=contactless"], ["--card: 'contactless' is not one of"]),
    "bad-timeout": (lambda tmp: ["reader=X", "apdu-timeout=soon"], ["--apdu-timeout: 'soon'"]),
    "bad-submission": (
        lambda tmp: [f"submission={_yaml(tmp, 'client: {name_zh: x}')}"],
        ["--submission: submission file", "key client.address: Field required"],
    ),
    "bad-bench": (lambda tmp: [f"bench={_yaml(tmp, '- a list')}"],
                  ["--bench: bench file", "expected a mapping"]),
}


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "input.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    """This checkout first on the path of a child process (the venv may hold another)."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def _door(door: str, options: list[str], out: Path) -> list[str]:
    pairs = [o.split("=", 1) for o in options]
    if door == "rhc":
        flags = [arg for name, value in pairs for arg in (f"--{name}", value)]
        return [sys.executable, "-m", "conformance.cli", "run", *flags, "--out", str(out)]
    flags = [arg for name, value in pairs for arg in (f"--rhc-{name}", value)]
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs",
            "conformance.pytest_catalogue", *flags, "--rhc-out", str(out)]


@pytest.mark.parametrize("door", ["rhc", "pytest"])
@pytest.mark.parametrize("bad", sorted(BAD_RUNS))
def test_a_bad_run_input_is_one_line_and_exit_2(door: str, bad: str, tmp_path: Path) -> None:
    options, expected = BAD_RUNS[bad]
    env = _env()
    result = subprocess.run(_door(door, options(tmp_path), tmp_path / "run"), cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith("rhc: error: "), result.stderr
    assert all(text in lines[0] for text in expected), lines[0]
    for frame in ("Traceback", "pluggy", "_pytest", "File \""):
        assert frame not in result.stderr + result.stdout
    assert not (tmp_path / "run" / "summary.json").exists()  # no APDU was sent


def test_the_pytest_door_runs_the_plan(tmp_path: Path) -> None:
    """`pytest --rhc-…` alone is a run: the catalogue module and the plugin, no `rhc`."""
    env = _env()
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--pyargs",
         "conformance.pytest_catalogue", "--rhc-plan", "selftest", "--rhc-product", "minimal",
         "--rhc-out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["verdict"] == "NO_FAILURES" and summary["plan"]["name"] == "selftest"
    assert summary["counts"]["NOT_APPLICABLE"] > 0  # the minimal ICS, found by its name


def test_run_options_are_declared_once() -> None:
    """`rhc run` offers every option of the one table, under the same name."""
    run = build_parser()._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    flags = {flag for action in run._actions for flag in action.option_strings}
    assert {f"--{o.name}" for o in RUN_OPTIONS if o.name != "profile"} <= flags


def test_cases_import_neither_the_plugin_nor_the_catalogue_module() -> None:
    code = ("import sys, pkgutil, importlib, conformance.cases as c; "
            "[importlib.import_module(f'conformance.cases.{m.name}') "
            " for m in pkgutil.iter_modules(c.__path__)]; "
            "bad = [m for m in sys.modules if m in ('conformance.plugin', "
            "'conformance.pytest_catalogue', 'conformance.cli', 'pytest')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_paths_name_the_shipped_demo_ca(capsys) -> None:
    code, out, _ = run(capsys, "paths", "--json")
    places = json.loads(out)
    assert code == 0 and Path(places["demo-ca"]).is_file()
    assert Path(places["profile"]).read_text("utf-8") == DEFAULT_PROFILE.read_text("utf-8")


def test_verify_trusts_the_shipped_demo_ca_by_name(capsys, tmp_path) -> None:
    from report_support import make_run

    from conformance.report import write_report

    make_run(tmp_path / "run", 6)
    write_report(tmp_path / "run", pdf=False)
    code, out, _ = run(capsys, "report", "verify", str(tmp_path / "run"), "--trust", "demo")
    assert code == 0 and "VALID" in out and "chain NOT checked" not in out


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"card": "virtual", "reader": "X"}, "--reader names a PC/SC reader"),
        ({"personalization": "a.yaml", "image": "b.json"}, "give one"),
        ({"reader": "X", "apdu_timeout": "0"}, "--apdu-timeout: '0' is not a positive"),
        ({"reader": "X", "fault": ["constant_challenge"]}, "--fault: for --card virtual only"),
        ({"plan": "nightly"}, "known: certification, performance, selftest"),
        ({"product": "no-such-ics"}, "known: co-branded, minimal, reference"),
        ({"keys": "/nonexistent/keys.yaml"}, "--keys: /nonexistent/keys.yaml: file not found"),
        ({"colour": "red"}, "not run options: colour"),
    ],
)
def test_build_config_names_the_bad_input(values: dict, expected: str) -> None:
    from conformance.config import ConfigError, build_config

    with pytest.raises(ConfigError) as caught:
        build_config(values)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_a_reader_alone_means_pcsc() -> None:
    from conformance.config import build_config

    config = build_config({"reader": "Virtual PCD 00 00"})
    assert config.card == "pcsc" and config.virtual_card is None
    assert config.apdu_timeout_s == 10.0


def test_run_without_plugin_autoload(capsys, tmp_path, monkeypatch) -> None:
    """With entry points disabled, `rhc run` names the plugins it needs itself."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    out = tmp_path / "run"
    code, _, err = run(capsys, "run", "--plan", "selftest", "--out", str(out), "--quiet",
                       "--no-report")
    assert code == 3, err  # selftest on the virtual card: NO_FAILURES
    assert (out / "junit.xml").is_file() and (out / "allure-results").is_dir()


def test_fault_names_stay_whole_when_piped(capsys) -> None:
    """`rhc card faults | cat` must show each name exactly as --fault takes it."""
    code, out, _ = run(capsys, "card", "faults")
    assert code == 0 and "atr_wrong_card_number" in out and "atr_wrong_card…" not in out


def test_verify_of_a_missing_run_is_a_usage_error(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "report", "verify", str(tmp_path / "none"))
    assert code == 2 and "no such run directory" in err
