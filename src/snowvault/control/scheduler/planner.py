"""The planner: due rules -> jobs, job windows, lifecycle, on a tick; and the test clock.

    scheduler = Scheduler(deps, tick_seconds=30)
    scheduler.start() ... scheduler.stop()       # a thread calling tick() forever
    tick(deps)                                   # one pass at deps.clock.now()

One tick, at ``now``: create the jobs of every rule occurrence that is due and whose
start window is still open (exactly once per rule, occurrence and resource, whatever
number of servers tick: the catalog's run ledger decides), expire waiting jobs past
StartBy, ask running jobs past their completion window to stop, record cold
transitions, expire recovery points at DeleteAt (forget, then prune). Occurrences
missed while no server ran are not backfilled beyond their start window.

Test mode (``--test-mode``): the app runs on a :class:`SettableClock` and
:func:`advance` moves it forward to a target instant in steps — every rule occurrence
and lifecycle date on the way is a step — ticking and running the runnable jobs at each
step, so a simulated month behaves like a real one.

Must not depend on the composition root or any interface.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from snowvault.control.scheduler import runner
from snowvault.control.services import scheduling
from snowvault.control.services.base import Deps
from snowvault.core.clock import Clock
from snowvault.core.errors import InvalidInput, Unavailable

log = logging.getLogger("snowvault.scheduler")

DEFAULT_TICK_SECONDS = 30.0
DRAIN_TIMEOUT_SECONDS = 600.0


@dataclass
class TickResult:
    jobs_created: list[str] = field(default_factory=list)
    jobs_expired: list[str] = field(default_factory=list)
    jobs_aborting: list[str] = field(default_factory=list)
    moved_to_cold: list[str] = field(default_factory=list)
    recovery_points_expired: list[str] = field(default_factory=list)

    def merge(self, other: TickResult) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))


def tick(deps: Deps, now: datetime | None = None) -> TickResult:
    """One scheduler pass at ``now`` (default: the clock's now)."""
    at = now or deps.clock.now()
    planned = scheduling.plan_due(deps, at)
    expired, aborting = scheduling.enforce_windows(deps, at)
    lifecycle = scheduling.run_lifecycle(deps, at)
    result = TickResult(planned.jobs, expired, aborting, lifecycle.cold, lifecycle.expired)
    if any(getattr(result, n) for n in result.__dataclass_fields__):
        log.info(
            "tick %s: %d jobs created, %d expired, %d aborting, %d cold, %d points expired",
            at.isoformat(),
            len(result.jobs_created),
            len(result.jobs_expired),
            len(result.jobs_aborting),
            len(result.moved_to_cold),
            len(result.recovery_points_expired),
        )
    return result


class Scheduler:
    """A thread that ticks every ``tick_seconds`` until stopped."""

    def __init__(self, deps: Deps, tick_seconds: float = DEFAULT_TICK_SECONDS) -> None:
        self.deps = deps
        self.tick_seconds = tick_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lock = threading.Lock()  # one tick at a time in this process

    def tick(self) -> TickResult:
        with self.lock:
            return tick(self.deps)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("scheduler tick failed; continuing")
            self._stop.wait(self.tick_seconds)


# --- test mode ---------------------------------------------------------------------------


class SettableClock:
    """Test mode's clock: starts at ``start`` and moves only when set forward.

    ``monotonic`` is the real one (request timings, timeouts), ``now`` never moves on
    its own, so what is due is decided by the test alone.
    """

    def __init__(self, start: datetime, real: Clock) -> None:
        self._now = start
        self._real = real
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        return self._real.monotonic()

    def set(self, when: datetime) -> None:
        with self._lock:
            if when.tzinfo is None:
                raise InvalidInput("now: must carry a time zone", field="now", detail="naive")
            if when < self._now:
                raise InvalidInput(
                    f"now: the clock never goes backwards ({when.isoformat()} is before "
                    f"{self._now.isoformat()})",
                    field="now",
                    detail="the clock never goes backwards",
                )
            self._now = when

    def resume(self, deps: Deps) -> None:
        """After a restart: continue from the simulated time saved by :func:`advance`."""
        saved = scheduling.saved_test_clock(deps)
        if saved is not None and saved > self.now():
            self.set(saved)


def drain(worker: runner.Worker, timeout: float = DRAIN_TIMEOUT_SECONDS) -> int:
    """Run jobs on this thread until none is runnable or running (other threads of the
    worker may take some); returns how many ran here."""
    deps = worker.deps
    started = deps.clock.monotonic()
    ran = 0
    idle = threading.Event()
    while True:
        if worker.run_once() is not None:
            ran += 1
            continue
        if scheduling.runnable_jobs(deps, deps.clock.now()) == 0:
            return ran
        if deps.clock.monotonic() - started > timeout:
            raise Unavailable(detail=f"jobs still running after {timeout:.0f}s")
        idle.wait(0.05)


@dataclass
class AdvanceResult:
    now: datetime
    steps: int
    jobs_run: int
    ticks: TickResult


def advance(
    deps: Deps,
    clock: SettableClock,
    target: datetime,
    run_jobs: Callable[[], int],
    lock: threading.Lock | None = None,
) -> AdvanceResult:
    """Move ``clock`` forward to ``target``, stopping at every rule occurrence and
    lifecycle date on the way: at each stop tick, run the runnable jobs, tick again."""
    if target < clock.now():
        raise InvalidInput(
            "now: the clock never goes backwards", field="now", detail="never backwards"
        )
    total, steps, ran = TickResult(), 0, 0
    with lock or threading.Lock():
        while True:
            upcoming = scheduling.next_event(deps, after=clock.now())
            step = upcoming if upcoming is not None and upcoming < target else target
            clock.set(step)
            scheduling.save_test_clock(deps, step)
            total.merge(tick(deps))
            ran += run_jobs()
            total.merge(tick(deps))
            steps += 1
            if step >= target:
                return AdvanceResult(clock.now(), steps, ran, total)
