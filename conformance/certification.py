"""One certification run: the cases of the plan run on the card under test, the result set.

Built from a validated `RunConfig`; knows nothing of pytest, so the plugin is only the way a
pytest session drives it. The run directory receives results.jsonl, summary.json,
evidence/ (conformance/results.py is the contract the report reads) and salt.sealed.json: the
salt of the evidence's masks, sealed to the lab certificate of the configuration, so it is
never on disk in clear.
"""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from typing import Any

from conformance import __version__
from conformance.cases.catalogue import build_catalogue, select
from conformance.cases.framework import Case
from conformance.config import RunConfig, card_under_test
from conformance.results import CaseResult, RunSummary, conclude, count
from conformance.runner import CaseRunner
from conformance.transport.base import BenchError
from conformance.transport.redact import Redactor


class CertificationRun:
    """The cases of one run, the runner that owns the card connection, and the results."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.out_dir = config.out_dir
        self.cases: list[Case] = select(build_catalogue(config.profile), config.plan)
        self.runner = CaseRunner(
            connect=card_under_test(config),
            profile=config.profile,
            keys=config.keys,
            product=config.product,
            plan=config.plan,
            out_dir=config.out_dir,
            redactor=Redactor.from_profile(config.profile, privacy=config.privacy),
        )
        self.results: list[CaseResult] = []
        self.card: dict[str, Any] = {}
        self.started = _now()

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
        result = self.runner.run(case)
        self.results.append(result)
        return result

    def summary(self, interrupted: bool) -> RunSummary:
        config = self.config
        complete = (
            not interrupted
            and len(self.results) == len(self.cases)
            and self.runner.bench_lost is None
        )
        notes = []
        if self.runner.bench_lost:
            notes.append(f"bench lost during the run: {self.runner.bench_lost}")
        if len(self.results) != len(self.cases):
            notes.append(
                f"{len(self.results)} of the {len(self.cases)} cases of plan {config.plan.name} "
                "ran (a selection such as -k, or an interruption): no certification verdict"
            )
        return RunSummary(
            verdict=conclude(self.results, complete=complete),
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
            card={**self.card, "kind": config.card, "faults": list(config.faults)},
            product=config.product.model_dump(),
            plan={
                "name": config.plan.name,
                "file": config.plan.source,
                "sha256": config.plan.sha256,
                "parameters": config.plan.parameters,
            },
            profile={
                "name": config.profile.spec.profile.name,
                "file": str(config.profile.source),
                "sha256": config.profile.sha256,
                "standard": config.profile.spec.profile.standard,
            },
            bench=bench_info(config.card, self.card.get("reader")),
            suite_version=__version__,
            started=self.started,
            finished=_now(),
            notes=notes,
            privacy=self.privacy(),
        )

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

    def write(self, summary: RunSummary) -> None:
        if self.out_dir is None:
            return
        if self.config.seal_cert is not None:
            from conformance.report.seal import write_sealed

            write_sealed(self.out_dir, self.runner.redactor.salt, self.config.seal_cert)
        lines = "".join(r.to_json() + "\n" for r in self.results)
        (self.out_dir / "results.jsonl").write_text(lines, encoding="utf-8")
        (self.out_dir / "summary.json").write_text(summary.to_json() + "\n", encoding="utf-8")

    def close(self) -> None:
        self.runner.close()


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


__all__ = ["CertificationRun", "bench_info"]
