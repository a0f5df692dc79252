"""The pytest plugin that turns a pytest session into a certification run.

Options choose the card (the built-in virtual card or a PC/SC reader), the product's ICS, the
plan and, for the virtual card only, faults from the defect catalogue. Each case is one test
item (`test_case[CASE-ID]`) run by `CaseRunner`; the run directory receives results.jsonl,
summary.json and evidence/. The plugin is inert in pytest sessions that collect no case.
"""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conformance import __version__
from conformance.cases.catalogue import build_catalogue, select
from conformance.cases.framework import Case
from conformance.host.keys import TestKeyProvider
from conformance.model import (
    DEFAULT_PERSONALIZATION,
    DEFAULT_TEST_KEYS,
    ProfileError,
    load_key_set,
    load_personalization,
    load_profile,
)
from conformance.model.products import load_plan, load_product
from conformance.results import (
    CaseResult,
    RunSummary,
    Verdict,
    conclude,
    count,
)
from conformance.runner import CaseRunner
from conformance.transport.base import BenchError, Transport

RUN_KEY = pytest.StashKey["RunState"]()
SUMMARY_KEY = pytest.StashKey[RunSummary]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rhc", "resident health card conformance (rhc)")
    group.addoption(
        "--card",
        choices=["virtual", "pcsc"],
        default=None,
        help="card under test: the built-in virtual card or a PC/SC reader",
    )
    group.addoption("--reader", default=None, help="PC/SC reader: exact name or regex")
    group.addoption("--product", default=None, help="the product's ICS (YAML)")
    group.addoption("--plan", default=None, help="plan name or file (default: certification)")
    group.addoption(
        "--fault",
        action="append",
        default=[],
        help="virtual card only: a fault of the defect catalogue (repeatable)",
    )
    group.addoption("--out", default=None, help="run directory for results and evidence")
    group.addoption("--profile", default=None, help="card profile YAML (default: WS/T 543)")
    group.addoption("--keys", default=None, help="test master keys (default: fixtures)")
    group.addoption(
        "--personalization",
        default=None,
        help="virtual card: personalization YAML (default: fixtures)",
    )
    group.addoption("--card-image", default=None, help="virtual card: load a JSON card image")
    group.addoption(
        "--apdu-timeout", type=float, default=10.0, help="PC/SC: seconds per APDU exchange"
    )
    group.addoption("--rhc-progress", action="store_true", help="show a rich progress bar")


class RunState:
    """Everything one certification run holds: configuration, runner and results."""

    def __init__(self, config: pytest.Config):
        opt = config.getoption
        self.profile = load_profile(opt("profile"))
        self.product = load_product(opt("product"), self.profile)
        self.plan = load_plan(opt("plan"))
        self.card_kind = opt("card") or "virtual"
        self.reader = opt("reader")
        self.apdu_timeout = opt("apdu_timeout")
        self.faults = list(opt("fault"))
        key_set = load_key_set(opt("keys") or DEFAULT_TEST_KEYS, self.profile)
        self.keys = TestKeyProvider(key_set)
        if self.card_kind == "pcsc":
            if not self.reader:
                raise pytest.UsageError("--card pcsc needs --reader NAME")
            if self.faults or opt("personalization") or opt("card_image"):
                raise pytest.UsageError(
                    "--fault, --personalization and --card-image apply to --card virtual only"
                )
            connect = self._pcsc_connect
        else:
            connect = self._virtual_connect(key_set, opt("personalization"), opt("card_image"))
        out = opt("out")
        self.out_dir = Path(out) if out else None
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.cases = select(build_catalogue(self.profile), self.plan)
        self.runner = CaseRunner(
            connect=connect,
            profile=self.profile,
            keys=self.keys,
            product=self.product,
            plan=self.plan,
            out_dir=self.out_dir,
        )
        self.results: list[CaseResult] = []
        self.expected = 0
        self.card: dict[str, Any] = {}
        self.started = _now()
        self.progress: Any = None

    def _virtual_connect(self, key_set: Any, personalization: str | None, image: str | None):
        # Only the plugin and the CLI build the virtual card (DESIGN.md, boundaries).
        from conformance.card import VirtualCard
        from conformance.transport.inprocess import InProcessTransport

        features = frozenset(self.product.features)
        faults = frozenset(self.faults)
        if image:
            card = VirtualCard.from_image(image, self.profile, features=features, faults=faults)
        else:
            pers = load_personalization(personalization or DEFAULT_PERSONALIZATION, self.profile)
            card = VirtualCard.personalize(
                self.profile, pers, key_set, features=features, faults=faults
            )
        return lambda: InProcessTransport(card, name="rhc virtual card")

    def _pcsc_connect(self) -> Transport:
        from conformance.transport.pcsc import PcscTransport

        return PcscTransport(self.reader, timeout_s=self.apdu_timeout)

    def begin(self) -> None:
        try:
            self.card = self.runner.card_info()
        except BenchError as exc:
            self.runner.bench_lost = str(exc)
            self.card = {"error": str(exc)}

    def run(self, case: Case) -> CaseResult:
        result = self.runner.run(case)
        self.results.append(result)
        if self.progress is not None:
            self.progress.advance(result)
        return result

    def summary(self, interrupted: bool) -> RunSummary:
        complete = (
            not interrupted
            and len(self.results) == len(self.cases)
            and self.runner.bench_lost is None
        )
        verdict = conclude(self.results, complete=complete)
        notes = []
        if self.runner.bench_lost:
            notes.append(f"bench lost during the run: {self.runner.bench_lost}")
        if len(self.results) != len(self.cases):
            notes.append(
                f"{len(self.results)} of the {len(self.cases)} cases of plan {self.plan.name} "
                "ran (a selection such as -k, or an interruption): no certification verdict"
            )
        return RunSummary(
            verdict=verdict,
            counts=count(self.results),
            cases=[
                {
                    "id": r.id,
                    "verdict": r.verdict.value,
                    "reason": r.reason,
                    "duration_s": r.duration_s,
                }
                for r in self.results
            ],
            card={**self.card, "kind": self.card_kind, "faults": self.faults},
            product=self.product.model_dump(),
            plan={
                "name": self.plan.name,
                "file": self.plan.source,
                "sha256": self.plan.sha256,
                "parameters": self.plan.parameters,
            },
            profile={
                "name": self.profile.spec.profile.name,
                "file": str(self.profile.source),
                "sha256": self.profile.sha256,
                "standard": self.profile.spec.profile.standard,
            },
            bench=bench_info(self.card_kind, self.card.get("reader")),
            suite_version=__version__,
            started=self.started,
            finished=_now(),
            notes=notes,
        )

    def write(self, summary: RunSummary) -> None:
        if self.out_dir is None:
            return
        lines = "".join(r.to_json() + "\n" for r in self.results)
        (self.out_dir / "results.jsonl").write_text(lines, encoding="utf-8")
        (self.out_dir / "summary.json").write_text(summary.to_json() + "\n", encoding="utf-8")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _package_version(name: str) -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", name],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "not installed"


def bench_info(kind: str, reader: str | None) -> dict[str, Any]:
    """What the bench was: OS, Python, PC/SC stack and reader (for the report)."""
    info: dict[str, Any] = {
        "os": platform.platform(),
        "python": platform.python_version(),
        "host": platform.node(),
        "readers": [reader] if reader else [],
    }
    if kind == "pcsc":
        info["pcsc_lite"] = _package_version("pcscd")
        info["driver"] = f"vsmartcard-vpcd {_package_version('vsmartcard-vpcd')}"
    return info


# -- pytest hooks ------------------------------------------------------------------------


def _state(config: pytest.Config) -> RunState:
    state = config.stash.get(RUN_KEY, None)
    if state is None:
        try:
            state = RunState(config)
        except (ProfileError, ValueError, BenchError) as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[RUN_KEY] = state
    return state


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rhc_case" not in metafunc.fixturenames:
        return
    state = _state(metafunc.config)
    metafunc.parametrize("rhc_case", state.cases, ids=[c.id for c in state.cases])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash.get(RUN_KEY, None)
    if state is None:
        return
    state.expected = sum(1 for item in items if "rhc_case" in getattr(item, "fixturenames", ()))
    if config.getoption("rhc_progress"):
        from conformance.progress import RunProgress

        state.progress = RunProgress(state.expected)


@pytest.fixture(scope="session")
def rhc_run(request: pytest.FixtureRequest) -> RunState:
    state = _state(request.config)
    if not state.card:
        state.begin()
    return state


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(RUN_KEY, None)
    if state is None:
        return
    if state.progress is not None:
        state.progress.stop()
    interrupted = exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
    summary = state.summary(interrupted)
    state.write(summary)
    state.runner.close()
    session.config.stash[SUMMARY_KEY] = summary


def report_outcome(result: CaseResult) -> None:
    """Tell pytest (and so junit.xml and Allure) how the case ended."""
    if result.verdict is Verdict.PASS:
        return
    if result.verdict is Verdict.NOT_APPLICABLE:
        pytest.skip(f"NOT_APPLICABLE: {result.reason}")
    pytest.fail(f"{result.verdict.value}: {result.reason}", pytrace=False)


def allure_labels(case: Case, result: CaseResult, out_dir: Path | None) -> None:
    """Label the Allure result with ID, group, severity, clause and the evidence."""
    try:
        import allure
    except ImportError:  # allure-pytest is a dependency; keep running without it anyway
        return
    allure.dynamic.id(case.id)
    allure.dynamic.title(f"{case.id} {case.title_zh} / {case.title_en}")
    allure.dynamic.epic(case.group)
    allure.dynamic.feature(case.group)
    allure.dynamic.story(case.id.rsplit("-", 1)[0])
    allure.dynamic.severity(case.severity)
    allure.dynamic.description(case.purpose)
    allure.dynamic.link(case.clause, name=case.clause)
    allure.dynamic.label("verdict", result.verdict.value)
    if out_dir is not None and result.evidence:
        allure.attach.file(
            str(out_dir / result.evidence),
            name=f"{case.id} APDU trace",
            attachment_type=allure.attachment_type.JSON,
            extension="jsonl",
        )


__all__ = ["RUN_KEY", "SUMMARY_KEY", "RunState", "allure_labels", "report_outcome"]
