"""One certification run: the cases of the plan run on the card under test, the result set.

Built from a validated `RunConfig`; knows nothing of pytest, so the plugin is only the way a
pytest session drives it. The run directory receives results.jsonl, summary.json,
evidence/ (conformance/results.py is the contract the report reads) and salt.sealed.json: the
salt of the evidence's masks, sealed to the lab certificate of the configuration, so it is
never on disk in clear. Each result is appended to results.jsonl as its case ends, so a run
that stops (a crash, a full disk, Ctrl-C) keeps every case it recorded.
"""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from typing import Any

from conformance import __version__
from conformance.cases.framework import Case
from conformance.clock import WallClock
from conformance.config import RunConfig, card_under_test
from conformance.lab import LabFileError, load_lab, now_in, record
from conformance.model import ProfileError
from conformance.resources import DEMO_LAB
from conformance.results import (
    CaseResult,
    RunSummary,
    Verdict,
    conclude,
    count,
    run_scope,
    scope_of,
)
from conformance.runner import CaseRunner
from conformance.transport.base import BenchError
from conformance.transport.redact import Redactor


class CertificationRun:
    """The cases of one run, the runner that owns the card connection, and the results."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.lab = config.lab or load_lab()
        self.out_dir = config.out_dir
        self.cases: list[Case] = list(config.cases)
        self.runner = CaseRunner(
            connect=card_under_test(config),
            profile=config.profile,
            keys=config.keys,
            product=config.product,
            plan=config.plan,
            out_dir=config.out_dir,
            redactor=Redactor.from_profile(config.profile, privacy=config.privacy),
            case_timeout_s=config.case_timeout_s,
            wall_clock=WallClock(zone=self.lab.tz),
        )
        self.results: list[CaseResult] = []
        self.card: dict[str, Any] = {}
        self.started_at = now_in(self.lab.tz)
        self.write_error: str | None = None  # the first failure to record a result
        self.selected: int | None = None  # cases left after a selection such as -k
        self.refused = False  # the selection kept no case: nothing ran, nothing is written

    def begin(self) -> None:
        """Read what identifies the sample; a bench failure here loses the bench for the run."""
        if self.card:
            return
        try:
            self.card = self.runner.card_info()
        except BenchError as exc:
            self.runner.bench_lost = str(exc)
            self.card = {"error": str(exc)}

    def run(self, case: Case) -> CaseResult:
        """Run one case and record its result at once; a crash of the harness around the case
        is that case's ERROR, never the end of the run."""
        try:
            result = self.runner.run(case)
        except Exception as exc:  # e.g. its evidence could not be written (a full disk)
            result = _harness_error(case, exc)
        self.results.append(result)
        self._append(result)
        return result

    def _append(self, result: CaseResult) -> None:
        if self.out_dir is None:
            return
        try:
            with (self.out_dir / "results.jsonl").open("a", encoding="utf-8") as handle:
                handle.write(result.to_json() + "\n")
        except OSError as exc:
            self.write_error = self.write_error or f"results.jsonl: {exc}"

    def summary(self, interrupted: bool) -> RunSummary:
        config = self.config
        selected = len(self.cases) if self.selected is None else self.selected
        complete = (
            not interrupted
            and len(self.results) == selected
            and self.runner.bench_lost is None
        )
        notes = []
        if self.write_error:
            notes.append(f"results could not be written: {self.write_error}")
        if self.runner.bench_lost:
            notes.append(f"bench lost during the run: {self.runner.bench_lost}")
        if len(self.results) != selected:
            notes.append(f"{len(self.results)} of the {selected} selected cases ran "
                         "(the run was interrupted)")
        if selected != len(self.cases):
            notes.append(f"a selection (-k) kept {selected} of the {len(self.cases)} cases "
                         f"of plan {config.plan.name}: not a certification")
        finished_at = now_in(self.lab.tz)
        try:
            report_number = self.report_number()
        except LabFileError as exc:  # the results still count; the report takes one later
            report_number = ""
            notes.append(f"no report number taken: {exc}")
        bench = self.bench_sample()
        if bench:
            notes.append(f"the sample in the reader is the bench's own reference card ({bench}, "
                         "e.g. `rhc card serve`): a bench self-test, not a product")
        scope = run_scope(
            bench_sample=bool(bench),
            card=config.card,
            plan_kind=config.plan.kind,
            catalogue=len(config.catalogue),
            mandatory_ids=[c.id for c in config.catalogue if c.mandatory],
            results=self.results,
        )
        return RunSummary(
            verdict=conclude(self.results, complete=complete, scope=scope_of(scope)),
            counts=count(self.results),
            cases=[
                {
                    "id": r.id,
                    "verdict": r.verdict.value,
                    "reason": r.reason,
                    "reason_zh": r.reason_zh,
                    "duration_s": r.duration_s,
                }
                for r in self.results
            ],
            card={**self.card, "kind": config.card, "faults": list(config.faults)},
            product={
                **config.product.model_dump(),
                "feature_names": {name: [f.zh, f.en]
                                  for name, f in config.profile.spec.features.items()},
            },
            plan={
                "name": config.plan.name,
                "file": config.plan.source,
                "sha256": config.plan.sha256,
                "parameters": config.plan.parameters,
            },
            profile={
                "name": config.profile.spec.profile.name,
                "version": config.profile.spec.profile.version,
                "title_zh": config.profile.spec.profile.title_zh,
                "title_en": config.profile.spec.profile.title_en,
                "file": str(config.profile.source),
                "sha256": config.profile.sha256,
                "standard": config.profile.spec.profile.standard,
            },
            bench=bench_info(config.card, self.card.get("reader")),
            suite_version=__version__,
            started=_utc(self.started_at),
            finished=_utc(finished_at),
            notes=notes,
            privacy=self.privacy(),
            scope=scope,
            timezone=self.lab.timezone,
            started_at=self.started_at.isoformat(),
            finished_at=finished_at.isoformat(),
            report_number=report_number,
            **self.lab_records(),
        )

    def stopped(self, interrupted: bool) -> list[str]:
        """Why the run did not complete, one sentence a cause (empty for a complete run)."""
        selected = len(self.cases) if self.selected is None else self.selected
        reasons = []
        if interrupted:
            reasons.append("the run was interrupted (Ctrl-C, or pytest failed internally)")
        if len(self.results) != selected:
            reasons.append(f"only {len(self.results)} of the {selected} selected cases ran")
        if self.runner.bench_lost:
            reasons.append(f"the bench was lost: {self.runner.bench_lost}")
        if self.write_error:
            reasons.append(f"results could not be written: {self.write_error}")
        return reasons

    def report_number(self) -> str:
        """The run's report number, taken from the lab's sequence once the run has a
        directory to record it in (a run that writes nothing takes none)."""
        if self.out_dir is None:
            return ""
        from conformance.sequence import next_report_number

        return next_report_number(self.lab, self.started_at, lab_path=self.config.lab_path,
                                  run=str(self.out_dir))

    def lab_records(self) -> dict[str, dict[str, Any]]:
        """summary.json's copies of the lab, submission and bench files (the report reads
        these, so `rhc report build` needs the files no more)."""
        config = self.config
        return {
            "lab": record(self.lab, config.lab_path or DEMO_LAB),
            "submission": record(config.submission, config.submission_path)
            if config.submission is not None and config.submission_path else {},
            "bench_file": record(config.bench, config.bench_path)
            if config.bench is not None and config.bench_path else {},
        }

    def privacy(self) -> dict[str, Any]:
        """What summary.json says of the privacy setting and of the sealed salt."""
        from conformance.report.seal import SEALED_NAME, fingerprint

        info: dict[str, Any] = {
            "setting": "on" if self.config.privacy else "off",
            "basis": self.config.privacy_basis,
        }
        cert = self.config.seal_cert
        if cert is not None:
            info["sealed_salt"] = SEALED_NAME
            info["sealed_to"] = {
                "subject": cert.subject.rfc4514_string(),
                "fingerprint_sha256": fingerprint(cert),
            }
        return info

    def bench_sample(self) -> str:
        """Which shipped personalization the sample in the reader carries (chip serial and
        card-number factor), if any: then it is the bench's virtual card, not a product."""
        if self.config.card == "virtual" or "chip_serial" not in self.card:
            return ""
        from conformance.model import load_personalization
        from conformance.resources import PERSONALIZATIONS_DIR, shipped_name

        serial_item = self.config.profile.role_item("chip_serial")
        for path in sorted(PERSONALIZATIONS_DIR.glob("*.yaml")):
            try:
                known = load_personalization(path, self.config.profile)
            except (ProfileError, ValueError, OSError):
                continue  # a shipped file of another profile: not this card
            if (str(known.items.get(serial_item)) == str(self.card["chip_serial"])
                    and known.card_number_factor.hex().upper()
                    == str(self.card.get("card_number_factor", "")).upper()):
                return f"chip serial {self.card['chip_serial']} of {shipped_name(path)}"
        return ""

    def write(self, summary: RunSummary) -> None:
        """Write summary.json (results.jsonl is written case by case). Raises OSError."""
        if self.out_dir is None:
            return
        if self.config.seal_cert is not None:
            from conformance.report.seal import write_sealed

            write_sealed(self.out_dir, self.runner.redactor.salt, self.config.seal_cert)
        if not self.results:  # a report reads results.jsonl: it exists, even empty
            (self.out_dir / "results.jsonl").touch()
        (self.out_dir / "summary.json").write_text(summary.to_json() + "\n", encoding="utf-8")

    def close(self) -> None:
        self.runner.close()


def _harness_error(case: Case, exc: Exception) -> CaseResult:
    return CaseResult.for_case(
        case, Verdict.ERROR, f"harness error around the case: {type(exc).__name__}: {exc}"
    )


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


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
        info["driver"] = reader_driver(reader or "")
    return info


def reader_driver(reader: str) -> str:
    """The PC/SC driver behind a reader and its package version: vpcd for the virtual
    reader vsmartcard offers, the CCID driver for any other (USB) reader."""
    if reader.startswith("Virtual PCD"):
        return f"vsmartcard-vpcd {_package_version('vsmartcard-vpcd')}"
    return f"libccid {_package_version('libccid')}"


__all__ = ["CertificationRun", "bench_info"]
