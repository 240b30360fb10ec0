"""A clock that moves only when told to.

>>> from datetime import UTC, datetime, timedelta
>>> c = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
>>> c.advance(timedelta(days=1)); c.now().day
2
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, delta: timedelta | float) -> None:
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("a FakeClock never goes backwards")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds

    def set(self, when: datetime) -> None:
        with self._lock:
            if when < self._now:
                raise ValueError("a FakeClock never goes backwards")
            self._mono += (when - self._now).total_seconds()
            self._now = when
