"""Progress reports for long engine work (backup, restore), delivered to a callback.

The engine never prints: it hands :class:`Progress` snapshots to a callback the caller
passes in (the CLI renders them, a worker stores them). :class:`ProgressMeter` computes
rate and ETA from an injected monotonic clock and throttles the callback.

    >>> seen = []
    >>> class Tick:
    ...     t = 0.0
    ...     def monotonic(self): return self.t
    >>> m = ProgressMeter("backup", seen.append, Tick(), interval=1.0)
    >>> m.advance(files=1, nbytes=10, current="a"); m.finish(); seen[-1].files_done
    1

Depends only on the standard library (a Clock-like object with ``monotonic()``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Progress:
    phase: str
    files_done: int
    files_total: int | None
    bytes_done: int
    bytes_total: int | None
    rate: float
    eta_seconds: float | None
    current: str
    errors: int = 0


ProgressCallback = Callable[[Progress], None]


class Monotonic(Protocol):
    def monotonic(self) -> float: ...


class ProgressMeter:
    """Counts work, reports at most once per ``interval`` seconds. Thread-safe."""

    def __init__(
        self,
        phase: str,
        callback: ProgressCallback | None,
        clock: Monotonic,
        *,
        interval: float = 0.2,
        files_total: int | None = None,
        bytes_total: int | None = None,
    ) -> None:
        self.phase = phase
        self._callback = callback
        self._clock = clock
        self._interval = interval
        self._start = clock.monotonic()
        self._last: float | None = None  # the first advance always reports
        self.files_done = 0
        self.bytes_done = 0
        self.errors = 0
        self.files_total = files_total
        self.bytes_total = bytes_total
        self.current: str | bytes = ""
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return self._clock.monotonic() - self._start

    def advance(
        self, *, files: int = 0, nbytes: int = 0, current: str | bytes | None = None
    ) -> None:
        with self._lock:
            self.files_done += files
            self.bytes_done += nbytes
            if current is not None:
                self.current = current
        self._maybe_report(force=False)

    def error(self, current: str | bytes) -> None:
        with self._lock:
            self.errors += 1
            self.current = current
        self._maybe_report(force=True)

    def finish(self) -> None:
        self._maybe_report(force=True)

    def snapshot(self) -> Progress:
        elapsed = self.elapsed()
        rate = self.bytes_done / elapsed if elapsed > 0 else 0.0
        eta = None
        if self.bytes_total is not None and rate > 0:
            eta = max(0.0, (self.bytes_total - self.bytes_done) / rate)
        return Progress(
            phase=self.phase,
            files_done=self.files_done,
            files_total=self.files_total,
            bytes_done=self.bytes_done,
            bytes_total=self.bytes_total,
            rate=rate,
            eta_seconds=eta,
            current=_text(self.current),
            errors=self.errors,
        )

    def _maybe_report(self, *, force: bool) -> None:
        if self._callback is None:
            return
        now = self._clock.monotonic()
        with self._lock:
            if not force and self._last is not None and now - self._last < self._interval:
                return
            self._last = now
            snap = self.snapshot()
        self._callback(snap)


def _text(path: str | bytes) -> str:
    """Paths may be raw bytes (decoded only when a report is made, to keep counting cheap)."""
    if isinstance(path, bytes):
        return path.decode("utf-8", "backslashreplace")
    return path
