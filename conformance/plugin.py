"""The pytest plugin: a pytest session that collects the catalogue module is a certification run.

Two ways in, one configuration (conformance/config.py). `rhc run` builds the RunConfig and
hands it over as a `PreparedRun`; a plain pytest session gives the same options as
`--rhc-NAME` and the plugin builds it in `pytest_cmdline_main`, before collection, so a bad
input ends the session with one line on stderr and exit 2, whichever door was used. The
catalogue module (conformance/pytest_catalogue.py) holds one test function; `rhc_case` is
parametrized with the plan's cases and `rhc_run` runs one and tells pytest how it ended.
The plugin is inert in sessions that give no `--rhc-` option and collect no case.

With pytest-xdist (`-n N`, or `--tx` gateways: `rhc run --workers N`) every worker takes one
reader, the N-th of those the reader pattern matches, with an exclusive connection and its own
sample; all workers share the controller's trace salt and append to one results.jsonl, and the
controller merges their parts into one summary (every case names its reader and sample).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from conformance.cases.framework import Case
from conformance.certification import CertificationRun
from conformance.config import (
    RUN_OPTIONS,
    ConfigError,
    RunConfig,
    build_config,
    claim_out_dir,
    given,
)
from conformance.defaults import EXIT_NO_VERDICT
from conformance.junit import JunitNames, junit_properties
from conformance.progress import bilingual_reason
from conformance.results import CaseResult, RunSummary, Verdict

CONFIG_KEY = pytest.StashKey[RunConfig]()
RUN_KEY = pytest.StashKey[CertificationRun]()
PROGRESS_KEY = pytest.StashKey[Any]()


class PreparedRun:
    """A run configured by its caller (`rhc run`): the configuration in, the summary out.

    Passed to `pytest.main(..., plugins=[prepared])`; it also keeps collection errors, which
    pytest would print only through the terminal reporter.
    """

    def __init__(self, config: RunConfig, *, progress: bool = False):
        self.config = config
        self.progress = progress
        self.summary: RunSummary | None = None
        self.errors: list[str] = []
        self.stopped: list[str] = []  # why the run did not complete, if it did not

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(str(report.longrepr))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rhc", "resident health card conformance (rhc)")
    for option in RUN_OPTIONS:
        group.addoption(f"--rhc-{option.name}", dest=f"rhc_{option.key}",
                        **option.argparse_kwargs())
    group.addoption("--rhc-progress", action="store_true", help="show a rich progress bar")


def pytest_configure(config: pytest.Config) -> None:
    """Where junit.xml is written (a plain session, or xdist's controller), name its cases
    by group and title once it is written."""
    xmlpath = getattr(config.option, "xmlpath", None)
    if xmlpath and not hasattr(config, "workerinput"):
        config.pluginmanager.register(JunitNames(xmlpath), "rhc-junit-names")


def _prepared(config: pytest.Config) -> PreparedRun | None:
    plugins = config.pluginmanager.get_plugins()
    return next((p for p in plugins if isinstance(p, PreparedRun)), None)


def _option_values(config: pytest.Config) -> dict[str, Any]:
    return {option.key: config.getoption(f"rhc_{option.key}") for option in RUN_OPTIONS}


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """Validate the run options before anything is collected; exit 2 with one line if bad."""
    if getattr(config.option, "help", False) or getattr(config.option, "version", 0):
        return None
    prepared = _prepared(config)
    if prepared is not None:
        config.stash[CONFIG_KEY] = prepared.config
        return None
    values = _option_values(config)
    if not any(given(values, option.name) for option in RUN_OPTIONS):
        return None  # not a certification run, unless the catalogue is collected
    try:
        if _worker_input(config) is not None:  # the controller checked and claimed --out
            out = values.get("out")
            run_config = build_config({**values, "out": None, "replace": False})
            run_config = dataclasses.replace(run_config, out_dir=Path(out) if out else None)
        else:
            run_config = build_config(values)
            claim_out_dir(run_config)
        config.stash[CONFIG_KEY] = run_config
    except ConfigError as exc:
        print(f"rhc: error: {exc}", file=sys.stderr)
        return EXIT_NO_VERDICT
    return None


def _run(config: pytest.Config) -> CertificationRun:
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        run_config = config.stash.get(CONFIG_KEY, None)
        if run_config is None:  # the catalogue collected without --rhc options: the defaults
            try:
                run_config = build_config({})
            except ConfigError as exc:
                pytest.exit(f"rhc: error: {exc}", returncode=EXIT_NO_VERDICT)
        salt = None
        worker = _worker_input(config)
        if worker is not None:
            try:
                run_config = _worker_config(run_config, str(worker.get("workerid", "gw0")))
            except ConfigError as exc:
                pytest.exit(f"rhc: error: {exc}", returncode=EXIT_NO_VERDICT)
            salt = bytes.fromhex(worker["rhc_salt"]) if "rhc_salt" in worker else None
        run = CertificationRun(run_config, salt=salt)
        config.stash[RUN_KEY] = run
    return run


# -- several readers: pytest-xdist workers ------------------------------------------------


def _worker_input(config: pytest.Config) -> dict[str, Any] | None:
    """What the xdist controller gave this worker, or None outside a worker."""
    return getattr(config, "workerinput", None)


def readers_for(pattern: str, readers: list[str]) -> list[str]:
    """The readers a run with several workers uses: the name itself, else every reader the
    pattern matches (re.search), sorted."""
    if pattern in readers:
        return [pattern]
    try:
        found = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"--reader: {pattern!r} is not a regular expression: {exc}") from None
    return sorted(r for r in readers if found.search(r))


def _worker_config(run_config: RunConfig, worker_id: str) -> RunConfig:
    """The configuration of one worker: the reader of its index among those matched."""
    if run_config.card != "pcsc" or run_config.reader is None:
        return run_config  # a virtual card: every worker builds its own
    from conformance.transport.base import BenchError
    from conformance.transport.pcsc import list_readers

    index = int(worker_id.removeprefix("gw") or 0)
    try:
        present = list_readers()
    except BenchError as exc:
        raise ConfigError(str(exc)) from None
    chosen = readers_for(run_config.reader, present)
    if index >= len(chosen):
        raise ConfigError(f"--reader {run_config.reader!r} matches {len(chosen)} reader(s) "
                          f"here ({', '.join(chosen) or 'none'}); worker {worker_id} needs "
                          f"{index + 1}: one reader per worker")
    return dataclasses.replace(run_config, reader=chosen[index])


class ParallelController:
    """In the xdist controller: gives every worker the run's trace salt and keeps what each
    reports of its part of the run when it goes down."""

    def __init__(self) -> None:
        self.salt = os.urandom(16)
        self.parts: list[dict[str, Any]] = []

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["rhc_salt"] = self.salt.hex()

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        part = getattr(node, "workeroutput", {}).get("rhc")
        if part is not None:
            self.parts.append(part)


CONTROLLER_KEY = pytest.StashKey[ParallelController]()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if CONFIG_KEY in config.stash and config.pluginmanager.hasplugin("dsession"):
        controller = ParallelController()
        config.stash[CONTROLLER_KEY] = controller
        config.pluginmanager.register(controller, "rhc-controller")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rhc_case" not in metafunc.fixturenames:
        return
    run = _run(metafunc.config)
    metafunc.parametrize("rhc_case", run.cases, ids=[c.id for c in run.cases])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """After -k and other deselection: count the cases left; none left is a usage error,
    found before any APDU."""
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    expected = 0
    for item in items:
        callspec = getattr(item, "callspec", None)
        case = callspec.params.get("rhc_case") if callspec is not None else None
        if isinstance(case, Case):
            expected += 1
            item.user_properties.extend(junit_properties(case))
    run.selected = expected
    if not expected:
        run.refused = True
        message = (f"rhc: error: the selection (-k) keeps none of the {len(run.cases)} cases "
                   f"of plan {run.config.plan.name}")
        prepared = _prepared(config)
        if prepared is not None:
            prepared.errors.append(message.removeprefix("rhc: error: "))
        pytest.exit(message, returncode=EXIT_NO_VERDICT)
    prepared = _prepared(config)
    if config.getoption("rhc_progress") or (prepared is not None and prepared.progress):
        from conformance.progress import RunProgress

        capture = config.pluginmanager.getplugin("capturemanager")  # the bar goes around it
        outside = capture.global_and_fixture_disabled if capture is not None else nullcontext
        config.stash[PROGRESS_KEY] = RunProgress(expected, outside_capture=outside)


@pytest.fixture(scope="session")
def rhc_run(request: pytest.FixtureRequest) -> Callable[[Case], None]:
    """Runs one case of the plan on the card under test and reports its verdict to pytest."""
    run = _run(request.config)
    run.begin()
    if run.runner.bench_lost:  # no card to talk to: no case can run, nothing is recorded
        run.refused = True
        message = f"bench: {run.runner.bench_lost}; no case ran, nothing was recorded"
        prepared = _prepared(request.config)
        if prepared is not None:
            prepared.errors.append(message)
        pytest.exit(f"rhc: error: {message}", returncode=EXIT_NO_VERDICT)
    progress = request.config.stash.get(PROGRESS_KEY, None)

    def run_case(case: Case) -> None:
        result = run.run(case)
        if progress is not None:
            progress.advance(result)
        allure_labels(case, result, run.out_dir)
        report_outcome(result)

    return run_case


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    controller = session.config.stash.get(CONTROLLER_KEY, None)
    if controller is not None:
        _finish_parallel(session, controller, exitstatus)
        return
    run = session.config.stash.get(RUN_KEY, None)
    if run is None:
        return
    if _worker_input(session.config) is not None:  # the controller writes the summary
        run.close()
        session.config.workeroutput["rhc"] = run.worker_output()  # type: ignore[attr-defined]
        return
    progress = session.config.stash.get(PROGRESS_KEY, None)
    if progress is not None:
        progress.stop()
    run.close()
    if run.refused:
        return
    interrupted = exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
    prepared = _prepared(session.config)
    if _write_summary(run, run.summary(interrupted), prepared) and prepared is not None:
        prepared.stopped = run.stopped(interrupted)


def _write_summary(run: CertificationRun, summary: RunSummary,
                   prepared: PreparedRun | None) -> bool:
    """Write summary.json and hand it to `rhc run`; a failure to write is its error (or one
    stderr line in a plain pytest session). True when written."""
    try:
        run.write(summary)
    except OSError as exc:
        message = f"cannot write summary.json into {run.out_dir}: {exc}"
        if prepared is None:
            print(f"rhc: error: {message}", file=sys.stderr)
        else:
            prepared.errors.append(message)
        return False
    if prepared is not None:
        prepared.summary = summary
    return True


def _finish_parallel(session: pytest.Session, controller: ParallelController,
                     exitstatus: int) -> None:
    """The controller's end of a run with several workers: one summary of all their parts."""
    config = session.config
    prepared = _prepared(config)
    run = CertificationRun(config.stash[CONFIG_KEY], salt=controller.salt)
    interrupted = exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
    if not controller.parts and prepared is not None:
        prepared.errors.append("no worker reported a part of the run")
        return
    _write_summary(run, run.merge(controller.parts, interrupted), prepared)


def report_outcome(result: CaseResult) -> None:
    """Tell pytest (and so junit.xml and Allure) how the case ended."""
    if result.verdict is Verdict.PASS:
        return
    if result.verdict is Verdict.NOT_APPLICABLE:
        pytest.skip(f"NOT_APPLICABLE: {result.reason}")
    pytest.fail(f"{result.verdict.value}: {bilingual(result)}", pytrace=False)


def bilingual(result: CaseResult) -> str:
    """The reason as junit.xml and Allure show it, on one line: Chinese / English, then
    what was expected and measured (the console's closing table shows the same)."""
    return bilingual_reason(result).replace("\n", " / ")


def allure_description(case: Case, result: CaseResult) -> str:
    """The case's purpose and requirement (where the profile gives one) and, for a case that
    did not pass, its reason in both languages: Allure's description of the result."""
    parts = [getattr(case, "purpose_zh", ""), case.purpose,
             getattr(case, "requirement_zh", ""), getattr(case, "requirement_en", ""),
             getattr(case, "source", "")]
    if result.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE):
        parts.append(f"{result.verdict.value}: {bilingual(result)}")
    return "\n\n".join(part for part in parts if part)


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
    allure.dynamic.description(allure_description(case, result))
    allure.dynamic.link(case.clause, name=case.clause)
    allure.dynamic.label("verdict", result.verdict.value)
    if out_dir is not None and result.evidence:
        allure.attach.file(
            str(out_dir / result.evidence),
            name=f"{case.id} APDU trace",
            attachment_type=allure.attachment_type.JSON,
            extension="jsonl",
        )


__all__ = ["CONFIG_KEY", "RUN_KEY", "ParallelController", "PreparedRun", "allure_labels",
           "readers_for", "report_outcome"]
