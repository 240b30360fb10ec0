"""Test mode (``snowvault server --test-mode``): a simulated clock the test moves forward.

    clock = start_clock()                          # now = the wall clock's now, then frozen
    app = App(config, clock, test_mode=True)       # resume(clock, deps) continues a saved time
    result = advance(deps, clock, target, run_jobs=lambda: drain(worker))
    reset(deps)                                    # empty every vault and account but root

The simulated clock drives what the server decides by time: schedules, start and
completion windows, lifecycles, leases. It never moves on its own; :func:`advance`
moves it to a target in steps — every rule occurrence and lifecycle date on the way is
a step — ticking the planner and running the runnable jobs at each step, so a simulated
month behaves like a real one. Each step is saved in the catalog, so a restarted test
server continues from it (:func:`resume`).

What it does NOT drive: request signatures. SigV4 freshness is checked against the wall
clock (:func:`wall_clock`), as clients sign with real time.

Who may ask: only a server started with ``--test-mode`` builds these; production
servers run on the system clock and answer 404 for the routes that call this module.
Must not depend on the composition root or any interface.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from snowvault.control import catalog
from snowvault.control.scheduler import planner, runner
from snowvault.control.services import accounts, scheduling, vaults
from snowvault.control.services.base import Deps
from snowvault.core.clock import Clock, SystemClock
from snowvault.core.errors import InvalidInput, Unavailable

DRAIN_TIMEOUT_SECONDS = 600.0
SAVED_CLOCK_KEY = "test-mode-clock"
"""The catalog setting holding the simulated time of the last step."""


class SettableClock:
    """Test mode's clock: starts at ``start`` and moves only when set forward.

    ``monotonic`` is the real one (request timings, timeouts), ``now`` never moves on
    its own, so what is due is decided by the test alone. ``wall`` is the real clock.
    """

    def __init__(self, start: datetime, real: Clock) -> None:
        self._now = start
        self._real = real
        self._lock = threading.Lock()

    @property
    def wall(self) -> Clock:
        return self._real

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


def start_clock() -> SettableClock:
    """A simulated clock starting at the wall clock's now."""
    wall = SystemClock()
    return SettableClock(wall.now(), wall)


def is_simulated(clock: Clock) -> bool:
    return isinstance(clock, SettableClock)


def wall_clock(clock: Clock) -> Clock:
    """The clock request signatures are checked against: the real clock behind a
    simulated one, else ``clock`` itself (production, or a test's FakeClock)."""
    return clock.wall if isinstance(clock, SettableClock) else clock


def save(deps: Deps, when: datetime) -> None:
    """Remember the simulated time, so a restarted server continues from it."""
    with catalog.db.transaction(deps.engine) as conn:
        catalog.settings.put(conn, SAVED_CLOCK_KEY, when.isoformat())


def saved(deps: Deps) -> datetime | None:
    """The simulated time of the last step saved in this catalog, if any."""
    with catalog.db.transaction(deps.engine) as conn:
        value = catalog.settings.get(conn, SAVED_CLOCK_KEY)
    return None if value is None else datetime.fromisoformat(value)


def resume(clock: SettableClock, deps: Deps) -> None:
    """After a restart: continue from the simulated time saved by :func:`advance`."""
    when = saved(deps)
    if when is not None and when > clock.now():
        clock.set(when)


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
    ticks: planner.TickResult


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
    total, steps, ran = planner.TickResult(), 0, 0
    with lock or threading.Lock():
        while True:
            upcoming = scheduling.next_event(deps, after=clock.now())
            step = upcoming if upcoming is not None and upcoming < target else target
            clock.set(step)
            save(deps, step)
            total.merge(planner.tick(deps))
            ran += run_jobs()
            total.merge(planner.tick(deps))
            steps += 1
            if step >= target:
                return AdvanceResult(clock.now(), steps, ran, total)


def reset(deps: Deps) -> None:
    """Empty all state except the root account and its keys (vault storage included)."""
    for vault in vaults.all_vaults(deps):
        vaults.destroy_storage(deps, vault)
    accounts.reset_keep_root(deps.engine)
