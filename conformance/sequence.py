"""Report numbers: a per-lab counter that never hands out the same number twice.

The counter is a small file in the lab's state directory, read and advanced under an
exclusive lock (fcntl.flock), so runs started at the same moment on one machine get
different numbers. Every number handed out is also appended to issued.log (number, time,
run directory): a gap in the sequence (a run that never issued its report) stays explainable.
The date part of a number is the lab-local date.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from pathlib import Path

from conformance.lab import LabFile, LabFileError

STATE_ENV = "RHC_STATE_DIR"
COUNTER = "report-sequence"
LOCK = "report-sequence.lock"
LOG = "issued.log"


def state_dir(lab: LabFile, lab_path: Path | str | None = None) -> Path:
    """The lab's state directory: its `state_dir` (relative to the lab file), else
    $RHC_STATE_DIR/<code>, else ~/.local/state/rhc/<code> ($XDG_STATE_HOME honoured)."""
    if lab.state_dir:
        base = Path(lab_path).parent if lab_path else Path.cwd()
        return (base / lab.state_dir).expanduser()
    root = os.environ.get(STATE_ENV)
    if not root:
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        root = str(Path(xdg) / "rhc")
    return Path(root).expanduser() / lab.code


def next_report_number(
    lab: LabFile, when: dt.datetime, *, lab_path: Path | str | None = None, run: str = ""
) -> str:
    """Advance the lab's counter and format its next report number (LabFileError if the
    state directory cannot be used)."""
    directory = state_dir(lab, lab_path)
    local = when.astimezone(lab.tz)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / LOCK).open("a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                seq = _read(directory / COUNTER) + 1
                number = lab.report_number.format(code=lab.code, date=local, seq=seq)
                _write(directory / COUNTER, seq)
                with (directory / LOG).open("a", encoding="utf-8") as log:
                    log.write(f"{number}\t{local.isoformat()}\t{run}\n")
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    except OSError as exc:
        raise LabFileError(f"report-number counter in {directory}: {exc}") from None
    return number


def _read(path: Path) -> int:
    if not path.exists():
        return 0
    text = path.read_text(encoding="utf-8").strip()
    if not text.isdigit():
        raise LabFileError(f"report-number counter {path} holds {text[:20]!r}, not a number: "
                           "restore it from issued.log (the last number issued)")
    return int(text)


def _write(path: Path, seq: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(f"{seq}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


__all__ = ["STATE_ENV", "next_report_number", "state_dir"]
