"""The Allure dashboard of a run: run_dir/allure-results → run_dir/allure-report/index.html.

Allure 3 is an npm package (`npx --yes allure@3 generate`): Node.js, no Java. Its HTML only
renders over HTTP unless built as a single file, so the awesome plugin is configured with
singleFile: the result opens straight from disk. The pytest plugin writes allure-results.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from conformance.report.model import ReportError

ALLURE_PACKAGE = "allure@3"
_FETCH_FAILURE = re.compile(
    r"E404|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|ECONNRESET|network|registry|"
    r"npm (ERR!|error)|could not determine executable",
    re.IGNORECASE,
)


class AllureUnavailable(ReportError):
    """Node/npx is missing or the allure@3 package cannot be fetched: says which."""


def _tail(text: str, lines: int = 6) -> str:
    """The telling lines of npm/allure output: npm's error code and reason, else the end."""
    clean = re.sub(r"\x1b\[[0-9;]*m", "", text).strip().splitlines()
    npm = [
        line
        for line in clean
        if re.match(r"npm (ERR!|error) (code|\d{3}|FetchError|404)", line) or "request to" in line
    ]
    kept = npm[:3] if npm else [line for line in clean if line.strip()][-lines:]
    return "\n".join(kept)


def build_allure(run_dir: Path | str, *, timeout_s: float = 600.0) -> Path:
    """Build run_dir/allure-report/index.html (single file); raise with what is missing.

    Raises ReportError when there are no allure results, AllureUnavailable (a ReportError)
    when node/npx is not installed or `npx --yes allure@3` cannot fetch the package.
    The first call downloads allure@3 into the npm cache (needs the npm registry once).
    """
    run_dir = Path(run_dir)
    results = run_dir / "allure-results"
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise ReportError(
            f"no Allure results in {results} (the pytest plugin writes them during `rhc run`)"
        )
    node, npx = shutil.which("node"), shutil.which("npx")
    if node is None or npx is None:
        missing = " and ".join(n for n, p in (("node", node), ("npx", npx)) if p is None)
        raise AllureUnavailable(
            f"cannot build the Allure dashboard: {missing} not found on PATH. Install Node.js "
            "20+ with npm (Debian: apt-get install nodejs npm); the signed report does not "
            "need it."
        )
    output = run_dir / "allure-report"
    with tempfile.TemporaryDirectory(prefix="rhc-allure-") as tmp:
        config = Path(tmp) / "allurerc.json"
        config.write_text(
            json.dumps(
                {
                    "name": f"rhc conformance run {run_dir.name}",
                    "output": str(output),
                    "plugins": {
                        "awesome": {
                            "options": {
                                "singleFile": True,
                                "reportName": f"rhc conformance — {run_dir.name}",
                                "groupBy": ["parentSuite", "suite", "subSuite"],
                            }
                        }
                    },
                }
            ),
            encoding="utf-8",
        )
        command = [
            npx,
            "--yes",
            ALLURE_PACKAGE,
            "generate",
            str(results.resolve()),
            "--config",
            str(config),
            "--output",
            str(output.resolve()),
        ]
        env = {**os.environ, "NO_COLOR": "1", "npm_config_update_notifier": "false"}
        try:
            done = subprocess.run(
                command,
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise AllureUnavailable(
                f"`npx --yes {ALLURE_PACKAGE} generate` did not finish in {timeout_s:.0f} s "
                "(fetching the package from the npm registry?)"
            ) from None
        except OSError as exc:
            raise AllureUnavailable(f"cannot run {npx}: {exc}") from None
    index = output / "index.html"
    if done.returncode != 0:
        detail = _tail(done.stderr or done.stdout)
        if _FETCH_FAILURE.search(detail) and not index.exists():
            raise AllureUnavailable(
                f"the npm package {ALLURE_PACKAGE} could not be fetched or started "
                f"(npx exit {done.returncode}):\n{detail}"
            )
        raise ReportError(f"allure generate failed (exit {done.returncode}):\n{detail}")
    if not index.is_file():
        raise ReportError(f"allure generate ran but wrote no {index}:\n{_tail(done.stdout)}")
    return index
