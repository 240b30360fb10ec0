"""The planner and the one loop: due rules -> jobs, then the sweeps, on a tick.

    scheduler = Scheduler(deps, tick_seconds=5)
    scheduler.start() ... scheduler.stop()       # THE loop: a thread calling tick()
    tick(deps)                                   # one pass at deps.clock.now()

One tick, at ``now``: create the jobs of every rule occurrence that is due and whose
start window is still open (exactly once per rule, occurrence and resource, whatever
number of servers tick: the catalog's run ledger decides), then run every sweep of
:data:`sweepers.SWEEPS` once, in its documented order (job windows, lost leases,
expiry, cold transitions, prunes, store retention, KMS keys). Occurrences missed while
no server ran are not backfilled beyond their start window.

Test mode moves the clock and ticks step by step: see :mod:`.simulation`.

Must not depend on the composition root or any interface.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime

from snowvault.control.catalog import leadership
from snowvault.control.scheduler import sweepers
from snowvault.control.services import scheduling
from snowvault.control.services.base import Deps

log = logging.getLogger("snowvault.scheduler")

DEFAULT_TICK_SECONDS = 5.0
"""The loop's pace: the server passes its ``worker.sweep_seconds`` (default 5 s)."""


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


def tick(
    deps: Deps, now: datetime | None = None, roles: leadership.Leadership | None = None
) -> TickResult:
    """One scheduler pass at ``now`` (default: the clock's now); ``roles``: this
    server's, in a fleet (sweeps with a role run where it is held)."""
    at = now or deps.clock.now()
    planned = scheduling.plan_due(deps, at)
    swept = sweepers.run(deps, at, roles=roles)
    result = TickResult(
        planned.jobs,
        swept.get("expire-unstarted"),
        swept.get("abort-overdue"),
        swept.get("cold"),
        swept.get("expire-points"),
    )
    if result.jobs_created:  # each sweep logs what it did itself
        log.info("tick %s: %d jobs created", at.isoformat(), len(result.jobs_created))
    return result


class Scheduler:
    """The one loop: a thread that ticks (plans, then sweeps) every ``tick_seconds``
    until stopped."""

    def __init__(
        self,
        deps: Deps,
        tick_seconds: float = DEFAULT_TICK_SECONDS,
        roles: leadership.Leadership | None = None,
    ) -> None:
        self.deps = deps
        self.roles = roles
        self.tick_seconds = tick_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lock = threading.Lock()  # one tick at a time in this process

    def tick(self) -> TickResult:
        with self.lock:
            return tick(self.deps, roles=self.roles)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
            self._thread.start()

    def alive(self) -> bool:
        """The loop thread is running (health probe, metrics)."""
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stop.is_set()

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
