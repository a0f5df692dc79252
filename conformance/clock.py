"""Wall-clock time in the lab's time zone, for evidence a reader can place in the day.

The trace keeps monotonic seconds (only differences mean anything, and they cost nothing per
APDU); a `WallClock` taken once at the start of a run turns such a reading into the wall-clock
time it stood for: start wall time + (reading − start reading), in the lab's time zone with its
UTC offset. The zone is the lab file's (`conformance.lab`).
"""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

from conformance.lab import DEFAULT_TIMEZONE


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


__all__ = ["WallClock"]
