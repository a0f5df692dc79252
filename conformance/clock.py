"""Wall-clock time in the lab's time zone, for evidence a reader can place in the day.

The trace keeps monotonic seconds (only differences mean anything, and they cost nothing per
APDU); a `WallClock` taken once at the start of a run turns such a reading into the wall-clock
time it stood for: start wall time + (reading − start reading), in the lab's time zone with its
UTC offset. The lab file names the zone (`timezone:`, an IANA name); without one, the demo
lab's, and without that Asia/Shanghai.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

DEFAULT_TIMEZONE = "Asia/Shanghai"


def lab_timezone(lab: Path | str | None = None) -> ZoneInfo:
    """The time zone the lab file names (default: the demo lab's, else Asia/Shanghai).

    Raises ValueError (one line) for a lab file that cannot be read or names no known zone.
    """
    from conformance.resources import DEMO_LAB

    path = Path(lab) if lab else DEMO_LAB
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        if lab is None:
            return ZoneInfo(DEFAULT_TIMEZONE)
        raise ValueError(f"{path}: cannot read the lab file: {exc}") from None
    name = data.get("timezone") if isinstance(data, dict) else None
    if name is None:
        return ZoneInfo(DEFAULT_TIMEZONE)
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{path}: timezone {name!r} is not an IANA time zone name such as "
                         f"{DEFAULT_TIMEZONE}") from None


class WallClock:
    """One reading of the wall clock and of the monotonic clock, taken together.

    A run's evidence holds tens of thousands of times; each is formatted from the text of its
    whole second, made once per second, and its milliseconds.
    """

    def __init__(self, zone: dt.tzinfo | None = None, wall: dt.datetime | None = None,
                 mono: float | None = None):
        self.zone = zone or ZoneInfo(DEFAULT_TIMEZONE)
        wall = wall or dt.datetime.now(dt.UTC)
        mono = time.monotonic() if mono is None else mono
        self.epoch = wall.timestamp() - mono  # POSIX time of monotonic reading 0
        self._second: int | None = None
        self._prefix = self._offset = ""

    def at(self, reading: float) -> str:
        """The monotonic reading as ISO 8601 wall-clock time with the zone's offset (ms)."""
        second, micros = divmod(round((self.epoch + reading) * 1_000_000), 1_000_000)
        if second != self._second:
            text = dt.datetime.fromtimestamp(second, self.zone).isoformat()
            self._second, self._prefix, self._offset = second, text[:19], text[19:]
        return f"{self._prefix}.{micros // 1000:03d}{self._offset}"

    def now(self) -> str:
        """The current time, the same way (seconds)."""
        return dt.datetime.now(self.zone).isoformat(timespec="seconds")


__all__ = ["DEFAULT_TIMEZONE", "WallClock", "lab_timezone"]
