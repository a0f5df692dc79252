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
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class WallClock:
    """One reading of the wall clock and of the monotonic clock, taken together."""

    zone: dt.tzinfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    wall: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    mono: float = field(default_factory=time.monotonic)

    def at(self, reading: float) -> str:
        """The monotonic reading as ISO 8601 wall-clock time with the zone's offset (ms)."""
        moment = self.wall + dt.timedelta(seconds=reading - self.mono)
        return moment.astimezone(self.zone).isoformat(timespec="milliseconds")

    def now(self) -> str:
        """The current time, the same way (seconds)."""
        return dt.datetime.now(self.zone).isoformat(timespec="seconds")


__all__ = ["DEFAULT_TIMEZONE", "WallClock", "lab_timezone"]
