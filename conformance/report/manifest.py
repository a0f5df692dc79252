"""The signed manifest: every file of a run directory, by path, size and SHA-256.

report.xml lists each file the run wrote (summary.json, results.jsonl, junit.xml, evidence/,
allure-results/, anything else present when the report is issued) and report.html. report.pdf
is bound differently, because its PAdES signature is appended after report.xml is signed: the
manifest records the digest and length of the PDF as rendered, and the signed PDF must start
with exactly those bytes (pyHanko signs by incremental update, so the rendered PDF is a prefix).

Not listed: report.xml itself, report.pdf (bound as above) and allure-report/, the dashboard
`rhc report allure` builds later from the signed allure-results (verify names it as unsigned).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from conformance.report.model import ReportError, sha256_bytes, sha256_path

REPORT_XML = "report.xml"
REPORT_HTML = "report.html"
REPORT_PDF = "report.pdf"
DASHBOARD_DIR = "allure-report"
NOT_FILES = frozenset({REPORT_XML, REPORT_PDF})  # bound otherwise (see above)


@dataclass(frozen=True)
class FileEntry:
    """One file of the run: path relative to the run directory ('/'-separated)."""

    path: str
    size: int
    sha256: str

    @classmethod
    def of_bytes(cls, path: str, data: bytes) -> FileEntry:
        return cls(path=path, size=len(data), sha256=sha256_bytes(data))


@dataclass(frozen=True)
class Manifest:
    files: list[FileEntry]
    pdf: FileEntry | None = None  # the rendered PDF before its PAdES signature


def run_files(run_dir: Path) -> tuple[list[str], list[str]]:
    """(regular files, other entries such as symbolic links) under run_dir, '/'-separated,
    sorted; report.xml, report.pdf and allure-report/ left out."""
    files: list[str] = []
    odd: list[str] = []
    for top, dirs, names in os.walk(run_dir, followlinks=False):
        rel_top = Path(top).relative_to(run_dir)
        if rel_top == Path("."):
            dirs[:] = [d for d in dirs if d != DASHBOARD_DIR]
        for d in list(dirs):
            if (Path(top) / d).is_symlink():
                odd.append((rel_top / d).as_posix())
                dirs.remove(d)
        for name in names:
            rel = (rel_top / name).as_posix()
            if rel in NOT_FILES:
                continue
            path = Path(top) / name
            (files if path.is_file() and not path.is_symlink() else odd).append(rel)
    return sorted(files), sorted(odd)


def collect(run_dir: Path) -> list[FileEntry]:
    """Every file of the run as it is now but report.html (the writer lists the one it is about
    to write); ReportError for a link or special file."""
    files, odd = run_files(run_dir)
    files = [f for f in files if f != REPORT_HTML]
    if odd:
        raise ReportError(
            f"{run_dir} holds {', '.join(odd[:3])}{' …' if len(odd) > 3 else ''}: not a regular "
            "file (a symbolic link?) — a signed report lists regular files only"
        )
    try:
        return [
            FileEntry(rel, (run_dir / rel).stat().st_size, sha256_path(run_dir / rel))
            for rel in files
        ]
    except OSError as exc:
        raise ReportError(f"cannot read {exc.filename}: {exc.strerror or exc}") from None
